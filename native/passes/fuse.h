// Graph passes of the high-performance mode. They rewrite the executor's
// lowered node list (one Node per computing op) before execution planning:
// each pass is a separate unit that keeps the graph's numbers, checked by
// running the rewritten graph on the reference kernels against the original
// (test/passes.test.ts). Order matters only for how much fuses, never for
// correctness.
//
//   remove_identity    assign, upscale_in_train dropout, scale(1, 0): consumers
//                      read the input directly
//   conv_to_fused      conv2d/depthwise_conv2d with constant filter (NCHW,
//                      float32) -> pif.fused_conv2d
//   matmul_to_fused    matmul(_v2) -> pif.fused_matmul
//   fold_transpose     a transpose swapping the last two axes that feeds a
//                      fused matmul becomes the matmul's trans_x/trans_y
//   fold_batch_norm    batch_norm after a fused conv: scales folded into the
//                      weights and bias (no post-ops yet)
//   fuse_bias          add(conv|matmul, constant per-channel vector) -> bias
//   fuse_swish         QuickGELU's x * sigmoid(a x) (scale, sigmoid, multiply)
//                      -> one swish activation
//   fuse_activation    activations, scale and inference dropout (x (1-p))
//                      after a fused op -> post-ops
//   fuse_residual      add(fused op, tensor of the same shape computed earlier)
//                      -> binary post-op
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "graph/op_def.h"

namespace pif {

struct PassGraph {
  const Program& program;
  std::vector<Node>& nodes;
  // Resolves a canonical op name (e.g. "pif.fused_conv2d") to its OpDef.
  std::function<const OpDef*(const std::string&)> def_by_name;
};

using PassFn = int (*)(PassGraph&);  // returns the number of rewrites

struct PassInfo {
  const char* name;
  PassFn run;
};

// All passes in the order the high-performance mode applies them.
const std::vector<PassInfo>& hpi_passes();

// Runs the named passes (all of hpi_passes() when `names` is empty) in the
// canonical order; returns "name=count" per pass. Unknown names throw
// std::invalid_argument.
std::vector<std::pair<std::string, int>> run_passes(PassGraph& g,
                                                    const std::vector<std::string>& names);

}  // namespace pif
