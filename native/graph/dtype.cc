#include "graph/dtype.h"

#include <cstring>

namespace pif {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Bool:
    case DType::Int8:
    case DType::UInt8:
    case DType::Float8E4M3FN:
    case DType::Float8E5M2: return 1;
    case DType::Int16:
    case DType::Float16:
    case DType::BFloat16: return 2;
    case DType::Int32:
    case DType::Float32: return 4;
    case DType::Int64:
    case DType::Float64:
    case DType::Complex64: return 8;
    case DType::Complex128: return 16;
    case DType::Undefined: return 0;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Complex64: return "complex64";
    case DType::Complex128: return "complex128";
    case DType::Float8E4M3FN: return "float8_e4m3fn";
    case DType::Float8E5M2: return "float8_e5m2";
    case DType::Undefined: return "undefined";
  }
  return "undefined";
}

bool dtype_from_name(const std::string& name, DType* out) {
  static const struct {
    const char* name;
    DType type;
  } kNames[] = {
      {"bool", DType::Bool},
      {"int8", DType::Int8},
      {"uint8", DType::UInt8},
      {"int16", DType::Int16},
      {"int32", DType::Int32},
      {"int64", DType::Int64},
      {"float16", DType::Float16},
      {"bfloat16", DType::BFloat16},
      {"float32", DType::Float32},
      {"float64", DType::Float64},
      {"complex64", DType::Complex64},
      {"complex128", DType::Complex128},
      {"float8_e4m3fn", DType::Float8E4M3FN},
      {"float8_e5m2", DType::Float8E5M2},
      {"undefined", DType::Undefined},
  };
  for (const auto& n : kNames) {
    if (name == n.name) {
      *out = n.type;
      return true;
    }
  }
  return false;
}

bool dtype_from_legacy(int64_t code, DType* out) {
  switch (code) {
    case 0: *out = DType::Bool; return true;
    case 1: *out = DType::Int16; return true;
    case 2: *out = DType::Int32; return true;
    case 3: *out = DType::Int64; return true;
    case 4: *out = DType::Float16; return true;
    case 5: *out = DType::Float32; return true;
    case 6: *out = DType::Float64; return true;
    case 20: *out = DType::UInt8; return true;
    case 21: *out = DType::Int8; return true;
    case 22: *out = DType::BFloat16; return true;
    case 23: *out = DType::Complex64; return true;
    case 24: *out = DType::Complex128; return true;
    case 32: *out = DType::Float8E4M3FN; return true;
    case 33: *out = DType::Float8E5M2; return true;
    default: return false;
  }
}

int dtype_to_legacy(DType t) {
  switch (t) {
    case DType::Bool: return 0;
    case DType::Int16: return 1;
    case DType::Int32: return 2;
    case DType::Int64: return 3;
    case DType::Float16: return 4;
    case DType::Float32: return 5;
    case DType::Float64: return 6;
    case DType::UInt8: return 20;
    case DType::Int8: return 21;
    case DType::BFloat16: return 22;
    case DType::Complex64: return 23;
    case DType::Complex128: return 24;
    case DType::Float8E4M3FN: return 32;
    case DType::Float8E5M2: return 33;
    case DType::Undefined: return -1;
  }
  return -1;
}

}  // namespace pif
