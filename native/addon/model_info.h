// What inspectModel() resolves and NativeModel.info() returns: a plain summary of a loaded
// model (made on any thread) and its JS form (main thread).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "addon/napi_include.h"
#include "format/model_dir.h"
#include "runtime/executor.h"

namespace pif {
namespace addon {

struct IoInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

struct ModelInfo {
  std::string format;
  bool has_version = false;
  int64_t version = 0;
  std::string program_file, params_file, params_layout;
  size_t blocks = 0, op_count = 0;
  std::map<std::string, uint64_t> ops;
  std::vector<IoInfo> inputs, outputs;
  size_t param_count = 0;
  uint64_t param_bytes = 0;
  bool params_loaded = false;
};

ModelInfo describe(const LoadedModel& m);

Napi::Value to_js(Napi::Env env, const ModelInfo& info);

// A JS array of numbers (a tensor shape).
Napi::Array shape_to_js(Napi::Env env, const std::vector<int64_t>& dims);

// Run outputs as [{ name, dtype, shape, data: ArrayBuffer }], copied into JS-owned buffers.
Napi::Value outputs_to_js(Napi::Env env, const std::vector<NamedTensor>& outputs);

}  // namespace addon
}  // namespace pif
