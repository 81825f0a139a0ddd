#pragma once
// Private to native/format/pir_json*.cc: the PIR JSON reader class and what the reader and the
// writer share (default names, the parameter op layout, type ids and op-name compression).

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "common/json.h"
#include "format/limits.h"
#include "graph/ir.h"

namespace pif {
namespace pir_json {

using JType = JsonValue::Type;

// Names the writer uses for a program without a region or block name (one
// built in memory); the reader maps an empty name to them.
inline const char* const kDefaultRegionName = "region_0";
inline const char* const kDefaultBlockName = "block_0";

// Parameter op layout shared by the reader and the writer: the compressed
// "p" op stores these positionally.
inline const char* const kParamAttrs[] = {"is_distributed", "is_parameter", "need_clip"};
inline const bool kParamAttrDefaults[] = {false, true, false};
inline const char* const kParamResultAttrs[] = {"persistable", "stop_gradient", "trainable"};

// PIR builtin element type ids ("0.t_f32") <-> DType (pir_json.cc).
bool scalar_type_from_id(const std::string& id, DType* out);
const char* scalar_type_id(DType t);
// A JSON value's text, for error messages and carried-through keys.
std::string json_text(const JsonValue& j);
// "1.conv2d" -> "pd_op.conv2d" and back (pir_json.cc).
std::string expand_op_name(const std::string& name);
std::string compress_op_name(const std::string& name);

// The reader: pir_json_types.cc parses value types and attributes, pir_json_read.cc the values,
// ops, the program's frame and its checks.
class Reader {
 public:
  Reader(const std::string& file, const LoadLimits& limits, Program* prog)
      : file_(file), limits_(limits), prog_(prog) {}

  void run(const uint8_t* data, size_t size);

 private:
  [[noreturn]] void fail(const JsonValue* at, const std::string& detail,
                         const char* code = code::kFormat) const {
    std::string where;
    if (op_index_ >= 0) {
      where = "op " + std::to_string(op_index_) + " (" + op_name_ + ")";
    } else {
      where = where_;
    }
    int64_t offset = -1;
    if (at) {
      offset = static_cast<int64_t>(at->offset);
    } else if (op_index_ >= 0 && static_cast<size_t>(op_index_) < op_offsets_.size()) {
      offset = static_cast<int64_t>(op_offsets_[op_index_]);  // checks made after parsing
    }
    throw ModelError(code, file_, offset, where, detail);
  }

  const JsonValue& member(const JsonValue& obj, const char* key, JType type, const char* what) {
    if (obj.count(key) > 1) fail(&obj, std::string("duplicate key \"") + key + "\" in " + what);
    const JsonValue* v = obj.find(key);
    if (!v) fail(&obj, std::string(what) + " has no \"" + key + "\"");
    if (v->type != type)
      fail(v, std::string("\"") + key + "\" in " + what + " has the wrong JSON type");
    return *v;
  }

  ValueType parse_type(const JsonValue& j);
  Attr parse_attr(const JsonValue& j);
  std::vector<NamedAttr> parse_named_attrs(const JsonValue& list, const char* what);
  ValueId define_value(const JsonValue& res, const char* id_key, bool allow_null);
  ValueId operand(const JsonValue& opnd);
  void parse_param_op(const JsonValue& j, Op* op);
  void parse_general_op(const JsonValue& j, Op* op);
  void normalise_named_param(Op* op);
  void finish();

  const std::string& file_;
  const LoadLimits& limits_;
  Program* prog_;
  std::unordered_map<int64_t, ValueId> ids_;
  std::vector<uint64_t> op_offsets_;  // byte offset of each op object
  int64_t op_index_ = -1;
  std::string op_name_;
  std::string where_ = "program";
};

// The writer (pir_json_write.cc): a Program as version-1 compressed JSON.
std::string write_program(const Program& p);

}  // namespace pir_json
}  // namespace pif
