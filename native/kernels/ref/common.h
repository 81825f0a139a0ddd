// Small helpers of the reference kernels (those the oneDNN backend shares
// are in kernels/common/helpers.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/op_def.h"
#include "graph/op_states.h"
#include "kernels/common/helpers.h"

namespace pif {

// Typed state for prepare(): make_state<T>(...) -> shared_ptr<const void>.
template <typename T, typename... A>
std::shared_ptr<const void> make_state(A&&... args) {
  return std::make_shared<const T>(T{std::forward<A>(args)...});
}

// Normalises a possibly negative axis against `rank`; fails when out of range.
int64_t norm_axis(int64_t axis, int64_t rank, const char* what = "axis");

// Reads a float/int tensor's single value as double (for scalar operands).
double read_scalar(const RTensor& t);

// Requires a float32 tensor.
void expect_f32(const RTensor& t, const char* name);

// Layout attribute (data_format / data_layout): true for NHWC, false for
// NCHW/AnyLayout/empty; any other value fails naming the attribute.
bool layout_is_nhwc(const AttrReader& a, const char* name);

// Reads N, C, H, W of a 4-D tensor in NCHW or NHWC order.
void dims_nchw(const std::vector<int64_t>& d, bool nhwc, int64_t* n, int64_t* c, int64_t* h,
               int64_t* w);

// float32 layout copies between [N, HW, C] and [N, C, HW] (HW = spatial size).
void nhwc_to_nchw(const float* src, float* dst, int64_t n, int64_t c, int64_t hw);
void nchw_to_nhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t hw);

// The value of a unary op (activation, scale...) at x: the float32 formula of
// the reference kernel (kernels/ref/activation.cc).
float apply_unary(const UnState& s, float x);

// Applies fused post-ops (graph/fused_ops.h) in order to a float32 output;
// binary post-ops read extra[op.input], which must have the output's shape.
struct PostOp;
void apply_post_ops(const std::vector<PostOp>& post, const std::vector<const RTensor*>& extra,
                    RTensor* out);

// NumPy broadcast of two shapes (aligned at the trailing end).
std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

}  // namespace pif
