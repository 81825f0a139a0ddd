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

// Window attributes of convolution and pooling: `paddings` (2 values: top =
// bottom, left = right; or 4: top, bottom, left, right; non-negative) and
// `padding_algorithm`.
inline void read_pads(const AttrReader& a, int64_t pads[4]) {
  std::vector<int64_t> p = a.ints("paddings", {0, 0});
  if (p.size() == 2) {
    pads[0] = pads[1] = p[0];
    pads[2] = pads[3] = p[1];
  } else if (p.size() == 4) {
    for (int i = 0; i < 4; ++i) pads[i] = p[static_cast<size_t>(i)];
  } else {
    op_fail("attribute 'paddings' must have 2 or 4 values, got " + std::to_string(p.size()));
  }
  for (int i = 0; i < 4; ++i)
    if (pads[i] < 0) op_fail("paddings must be non-negative");
}

inline PadAlgo read_pad_algo(const AttrReader& a) {
  std::string s = a.s("padding_algorithm", "EXPLICIT");
  if (s == "EXPLICIT" || s.empty()) return PadAlgo::Explicit;
  if (s == "SAME") return PadAlgo::Same;
  if (s == "VALID") return PadAlgo::Valid;
  op_fail("unknown padding_algorithm '" + s + "'");
}

// Whether a result that loses every dimension should be [1] rather than 0-D:
// PIR programs (Paddle 3) give 0-D; legacy programs give [1] unless the
// output's declared VarDesc dims say rank 0 (Paddle >= 2.6).
inline bool rank0_as_1d(const PrepareCtx& c, size_t out_slot = 0) {
  if (c.program.format == ProgramFormat::Pir) return false;
  if (out_slot >= c.node.outputs.size() || c.node.outputs[out_slot].empty()) return true;
  ValueId v = c.node.outputs[out_slot][0];
  if (v == kNoValue) return true;
  const ValueType& t = c.program.values[v].type;
  return !(t.kind == ValueType::Kind::DenseTensor && t.dims.empty());
}

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
