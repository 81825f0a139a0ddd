// Reading JS arguments on the main thread: checks that throw PIF_INVALID_ARG (throw_arg), and
// the model request shared by every entry point that takes a model path and load options.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon/job.h"
#include "addon/napi_include.h"
#include "format/model_dir.h"
#include "preprocess/batch.h"
#include "runtime/executor.h"

namespace pif {
namespace addon {

// The largest integer a JS number holds exactly (2^53 - 1).
constexpr double kMaxSafeInteger = 9007199254740991.0;

// True when `v` is a number holding an integer in [lo, hi]; stores it in *out.
bool integer_in(const Napi::Value& v, double lo, double hi, int64_t* out);

// The string `v`, or "" when it is not a string (so that it fails an enum check).
std::string string_or_empty(const Napi::Value& v);

// The value of `v` named by one of `choices`, `def` when `v` is undefined; otherwise throws
// PIF_INVALID_ARG with `msg`.
template <typename T>
T choice(Napi::Env env, const Napi::Value& v,
         std::initializer_list<std::pair<const char*, T>> choices, T def, const char* msg) {
  if (v.IsUndefined()) return def;
  std::string s = string_or_empty(v);
  for (const auto& c : choices)
    if (s == c.first) return c.second;
  throw_arg(env, msg);
}

// o[key] as an integer in [lo, hi]; otherwise throws PIF_INVALID_ARG naming `key`.
int int_field(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi);

// o[key] as `n` numbers (float32), each `def` when o[key] is undefined; otherwise throws
// PIF_INVALID_ARG naming `key`.
std::vector<float> floats_field(Napi::Env env, const Napi::Object& o, const char* key, int n,
                                float def);

// The bytes of a Uint8Array (or Uint8ClampedArray) `v`, viewed in place (valid while `v`
// lives), or null when `v` is neither; *len receives the length.
const uint8_t* u8_bytes(const Napi::Value& v, size_t* len);

// An image's { width, height, channels } from `src` and its target size from dst[tw], dst[th],
// checked (sides up to 65536, targets up to 16384, 1 to 4 channels); no pixels yet.
BatchImage image_dims(Napi::Env env, const Napi::Object& src, const Napi::Object& dst,
                      const char* tw, const char* th);

// { scale, mean, std } for `cn` channels: scale 1/255 unless a number, mean 0 and std 1 per
// channel when absent; a std of 0 throws PIF_INVALID_ARG.
Normalization norm_fields(Napi::Env env, const Napi::Object& o, int cn);

// info[index] as a non-empty string; otherwise throws PIF_INVALID_ARG with `msg`.
std::string nonempty_string_arg(const Napi::CallbackInfo& info, size_t index, const char* msg);

// modelPath plus { requireParams, executable, randomWeights, runMode, precision, passes,
// limits }: what loadModel, inspectModel, dumpModel, saveModel and exportOnnx read.
struct Request {
  std::string path;
  LoadOptions load;
  bool executable = false;      // build the executor at load (loadPredictor)
  bool random_weights = false;  // bind seeded random data to missing parameters
  uint64_t random_seed = 0;
  ExecutorOptions exec;  // runMode 'hpi', precision, passes (tests)
};

// info[0] is the model path, info[opts_index] the options object (or undefined).
Request parse_request(const Napi::CallbackInfo& info, size_t opts_index);

// Loads and folds: the one place the addon turns a path into an IR (worker thread).
std::shared_ptr<LoadedModel> load(const Request& r);

}  // namespace addon
}  // namespace pif
