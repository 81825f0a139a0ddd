// The float kernels of PP-ShiTuV2_rec's stage 4 in high-performance form (issue 17, tier
// `last-stage`): the same functions, arguments and results as train/stage_ops.h's reference
// kernels, over oneDNN 2.6 primitives, plus our own kernel for the depthwise convolution's
// weight gradient (oneDNN 2.6 has a jit kernel for it only up to 3x3 windows).
// native/tests/train_stage_dnnl_test.cc checks every one against the reference.
//
// Tensors stay plain NCHW for the caller; inside, the depthwise convolution and batch norm
// reorder to the blocked layouts oneDNN's jit kernels run on (nChw16c / nChw8c) and back, which
// costs less than what oneDNN offers on NCHW for them (stage_dnnl.cc has the numbers).
// Primitives are created once per shape and kept (thread-safe); the blocked copies live in
// per-thread buffers that grow to the largest call and stay until release_thread_workspace().
// Every function may be called from any thread and runs on the calling thread's OpenMP team
// (the caller sets its size). Shapes that are empty or inconsistent, and null pointers other
// than an optional bias, throw std::invalid_argument.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/stage_ops.h"

namespace pif {
namespace train {
namespace stage_dnnl {

// Depthwise convolution, see stage_ops.h. oneDNN's jit depthwise forward / backward data.
void dw_conv_forward(const float* x, const float* w, const float* b, float* y, const DwShape& s);
void dw_conv_backward_data(const float* dy, const float* w, float* dx, const DwShape& s);
// Our own vectorised kernel (see stage_dnnl.cc for why not oneDNN's).
void dw_conv_backward_weights(const float* x, const float* dy, float* dw, float* db,
                              const DwShape& s);
// oneDNN's own backward-weights primitive for the same convolution (in 2.6 its jit kernel for
// 1x1 and 3x3 windows, GEMM for larger ones): kept for the comparison in the tests, not for
// training.
void dw_conv_backward_weights_onednn(const float* x, const float* dy, float* dw, float* db,
                                     const DwShape& s);

// 1x1 convolution, see stage_ops.h. oneDNN's convolution primitives on NCHW (its GEMM
// implementation, as fast there as its jit one on blocked layouts).
void pw_conv_forward(const float* x, const float* w, float* y, int64_t n, int64_t ci, int64_t co,
                     int64_t hw);
void pw_conv_backward_data(const float* dy, const float* w, float* dx, int64_t n, int64_t ci,
                           int64_t co, int64_t hw);
void pw_conv_backward_weights(const float* x, const float* dy, float* dw, int64_t n, int64_t ci,
                              int64_t co, int64_t hw);

// Batch norm on batch statistics, see stage_ops.h. oneDNN's batch_normalization forward_training
// and backward (use_scale | use_shift).
void bn_train_forward(const float* x, const float* gamma, const float* beta, double eps, int64_t n,
                      int64_t c, int64_t hw, float* y, float* mean, float* var);
void bn_train_backward(const float* x, const float* dy, const float* gamma, const float* mean,
                       const float* var, double eps, int64_t n, int64_t c, int64_t hw, float* dx,
                       float* dgamma, float* dbeta);

// Frees the calling thread's layout buffers (a run's end; the next call allocates again).
void release_thread_workspace();

// What computes each shape created so far: (function and shape, oneDNN's impl_info_str() or our
// kernel's vector width), in creation order. For logs and tests.
std::vector<std::pair<std::string, std::string>> implementations();

}  // namespace stage_dnnl
}  // namespace train
}  // namespace pif
