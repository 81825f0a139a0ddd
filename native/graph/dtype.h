// Element types shared by every layer. Kept free of file-format details: the
// legacy VarType.Type codes and PIR type ids are mapped in format/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pif {

enum class DType : uint8_t {
  Undefined = 0,
  Bool,
  Int8,
  UInt8,
  Int16,
  Int32,
  Int64,
  Float16,
  BFloat16,
  Float32,
  Float64,
  Complex64,
  Complex128,
  Float8E4M3FN,
  Float8E5M2,
};

// Bytes per element; 0 for Undefined.
size_t dtype_size(DType t);

// Stable lower-case name used in the JS API ("float32", "int64", ...).
const char* dtype_name(DType t);

// Inverse of dtype_name; also accepts Paddle's `a_dtype` spellings
// ("float32", "int64", "bool", "float16", "bfloat16", "uint8", ...).
bool dtype_from_name(const std::string& name, DType* out);

// Legacy `VarType.Type` enum (framework.proto) <-> DType. Returns false for
// codes that are not element types (LOD_TENSOR, FEED_MINIBATCH, ...).
bool dtype_from_legacy(int64_t code, DType* out);
int dtype_to_legacy(DType t);

}  // namespace pif
