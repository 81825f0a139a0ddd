// Numbers read from op attributes (any integer or float kind, bool, or a
// Scalar) and from legacy string values, keeping int64 exactness. Shared by
// the kernels that fill constants and by the ONNX exporter, which must agree
// on the value.
#pragma once

#include <cstdint>
#include <string>

#include "graph/ir.h"

namespace pif {

// A number read from an attribute or a tensor: integral values keep their
// exact int64 (fill values of int64 tensors can exceed double precision).
struct Num {
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
};
Num num_from_double(double d);
// A numeric attribute (any int/float kind, bool, or a Scalar), or `def`.
Num attr_num(const Op& op, const std::string& name, double def);
// Legacy fill_constant's str_value: exact for big integers, accepts inf/nan.
bool parse_str_num(const std::string& s, Num* out);

}  // namespace pif
