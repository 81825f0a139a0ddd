// Small helpers shared by the reference kernels.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "graph/op_def.h"

namespace pif {

// Typed state for prepare(): make_state<T>(...) -> shared_ptr<const void>.
template <typename T, typename... A>
std::shared_ptr<const void> make_state(A&&... args) {
  return std::make_shared<const T>(T{std::forward<A>(args)...});
}

// Normalises a possibly negative axis against `rank`; fails when out of range.
int64_t norm_axis(int64_t axis, int64_t rank, const char* what = "axis");

// Requires input `slot` to be present, returning it.
const RTensor& need_input(const RunCtx& c, size_t slot, const char* name);

// Reads an integer tensor (int32/int64) as int64 values.
std::vector<int64_t> read_ints(const RTensor& t);
// Reads a float/int tensor's single value as double (for scalar operands).
double read_scalar(const RTensor& t);

// Requires a float32 tensor.
void expect_f32(const RTensor& t, const char* name);

// NumPy broadcast of two shapes (aligned at the trailing end).
std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

}  // namespace pif
