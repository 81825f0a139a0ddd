// PIR JSON (see pir_json.h): the public entry points and the names the reader and writer share
// (element type ids, dialect ids of compressed op names).
#include "format/pir_json.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/json.h"
#include "format/pir_json_internal.h"

namespace pif {
namespace pir_json {

// Compressed dialect ids ("1.conv2d" = pd_op.conv2d). Index = id.
const char* const kDialects[] = {"builtin", "pd_op", "cf", "custom_op", "dist"};
constexpr int kNumDialects = sizeof(kDialects) / sizeof(kDialects[0]);

// PIR builtin element types <-> DType. t_index has no DType and stays an
// Other type, so that it is written back unchanged.
const struct {
  const char* id;
  DType dtype;
} kScalarTypes[] = {
    {"0.t_bool", DType::Bool},
    {"0.t_i8", DType::Int8},
    {"0.t_ui8", DType::UInt8},
    {"0.t_i16", DType::Int16},
    {"0.t_i32", DType::Int32},
    {"0.t_i64", DType::Int64},
    {"0.t_f16", DType::Float16},
    {"0.t_bf16", DType::BFloat16},
    {"0.t_f32", DType::Float32},
    {"0.t_f64", DType::Float64},
    {"0.t_c64", DType::Complex64},
    {"0.t_c128", DType::Complex128},
    {"0.t_f8e4m3fn", DType::Float8E4M3FN},
    {"0.t_f8e5m2", DType::Float8E5M2},
    {"0.t_undefined", DType::Undefined},
};

bool scalar_type_from_id(const std::string& id, DType* out) {
  for (const auto& t : kScalarTypes) {
    if (id == t.id) {
      *out = t.dtype;
      return true;
    }
  }
  return false;
}

const char* scalar_type_id(DType t) {
  for (const auto& s : kScalarTypes) {
    if (s.dtype == t) return s.id;
  }
  return "0.t_undefined";
}

std::string json_text(const JsonValue& j) {
  std::string s;
  write_json(j, &s);
  return s;
}

// "1.conv2d" -> "pd_op.conv2d". Names that are not "<known id>.<name>" (the
// pre-release long form, test dialects with negative ids) are kept verbatim.
std::string expand_op_name(const std::string& name) {
  size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 2) return name;
  int id = 0;
  for (size_t k = 0; k < dot; ++k) {
    char c = name[k];
    if (c < '0' || c > '9') return name;
    id = id * 10 + (c - '0');
  }
  if (dot == 2 && name[0] == '0') return name;  // "01.x" is not a dialect id
  if (id >= kNumDialects) return name;
  return std::string(kDialects[id]) + name.substr(dot);
}

// Inverse of expand_op_name.
std::string compress_op_name(const std::string& name) {
  size_t dot = name.find('.');
  if (dot == std::string::npos) return name;
  for (int id = 0; id < kNumDialects; ++id) {
    if (name.compare(0, dot, kDialects[id]) == 0 && std::strlen(kDialects[id]) == dot) {
      return std::to_string(id) + name.substr(dot);
    }
  }
  return name;
}

}  // namespace pir_json

Program parse_pir_json(const uint8_t* data, size_t size, const std::string& file,
                       const LoadLimits& limits) {
  Program prog;
  prog.format = ProgramFormat::Pir;
  pir_json::Reader reader(file, limits, &prog);
  reader.run(data, size);
  return prog;
}

std::string write_pir_json(const Program& p) { return pir_json::write_program(p); }

}  // namespace pif
