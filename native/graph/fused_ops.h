// Ops that exist only after the fusion passes (passes/fuse): a convolution or
// matrix product with its bias, folded batch norm and a chain of post-ops
// (activations, scales, residual adds) applied to its output in order.
// kernels/ref/fused.cc computes them with the reference kernels (the oracle
// for every pass); kernels/dnnl computes them as one oneDNN primitive.
#pragma once

#include <cstddef>
#include <vector>

#include "graph/ir.h"
#include "graph/op_states.h"

namespace pif {

// One step applied to the op's output y.
struct PostOp {
  enum class Kind { Unary, Binary };
  Kind kind = Kind::Unary;
  UnState unary{UnKind::Identity};  // Unary: y = unary(y)
  BinKind bin = BinKind::Add;       // Binary: y = y (bin) extra[input] (Add or Mul)
  size_t input = 0;                 // Binary: index into the node's extra-input slot
};

// pif.fused_conv2d: inputs {0: X, 1: extra inputs of binary post-ops};
// output {0: Out}. NCHW, float32, not transposed.
struct FusedConvState {
  ConvState conv;
  Tensor weight;  // [O, I/groups, KH, KW] float32 (batch norm folded in)
  Tensor bias;    // [O] float32, or dtype Undefined when absent
  std::vector<PostOp> post;
};

// pif.fused_matmul: inputs {0: X, 1: Y, 2: extra inputs}; output {0: Out}.
// out = post(alpha * op(X) . op(Y) + bias), bias broadcast on the last axis.
struct FusedMatmulState {
  MatmulAttr mm;
  Tensor bias;  // [N] float32, or dtype Undefined when absent
  std::vector<PostOp> post;
};

// Canonical names and slot numbers.
constexpr const char* kFusedConvName = "pif.fused_conv2d";
constexpr const char* kFusedMatmulName = "pif.fused_matmul";
enum : size_t { kFusedConvExtra = 1, kFusedMatmulExtra = 2 };

}  // namespace pif
