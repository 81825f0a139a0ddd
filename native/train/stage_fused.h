// Our own float kernels for the pointwise half of a stage-4 block where oneDNN 2.6 is slower
// on plain NCHW (issue 17, tier `last-stage`): batch norm on batch statistics fused with the
// ReLU after it, forward and backward. oneDNN's batch norm needs a reorder to a blocked layout
// and back around each call, and the ReLU is one more pass over the tensor either way; these
// read and write each NCHW tensor the fewest times (forward: 2 reads, 1 write; backward: 2
// passes). Same results as stage_ops.h's bn_train_forward + relu_forward and relu_backward +
// bn_train_backward (checked in native/tests/train_stage_test.cc); per-channel sums in double
// over per-row float partial sums. Channels run in parallel on the caller's OpenMP team.
#pragma once

#include <cstdint>

namespace pif {
namespace train {

// y = max(0, gamma * (x - mean) / sqrt(var + eps) + beta), mean and var (biased) of the batch.
void bn_relu_train_forward(const float* x, const float* gamma, const float* beta, double eps,
                           int64_t n, int64_t c, int64_t hw, float* y, float* mean, float* var);

// The backward of bn_relu_train_forward given its output y and d loss / d y: dx, dgamma, dbeta.
void bn_relu_train_backward(const float* x, const float* y, const float* dy, const float* gamma,
                            const float* mean, const float* var, double eps, int64_t n, int64_t c,
                            int64_t hw, float* dx, float* dgamma, float* dbeta);

}  // namespace train
}  // namespace pif
