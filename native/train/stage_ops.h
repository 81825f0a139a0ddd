// The forward (training form) and backward kernels of PP-ShiTuV2_rec's stage 4 (issue 17, tier
// `last-stage`; ../shared/spec/architectures.md §1.2 rows 13-15, training-packaging.md A2): the
// re-parameterised depthwise convolution with bias, the pointwise (1x1) convolution, batch norm
// on batch statistics, ReLU and the global average pool. All tensors are plain NCHW.
//
// These are the reference kernels: plain loops, T = float (training in normal mode; the 1x1
// convolutions through dnnl_sgemm) or double (the finite-difference tests). train/stage_dnnl.h
// has the float versions over oneDNN's backward primitives (high-performance mode), checked
// against these.
#pragma once

#include <cstdint>

namespace pif {
namespace train {

// A depthwise convolution (groups = channels, one k x k filter per channel, square stride and
// padding on every side).
struct DwShape {
  int64_t n = 0, c = 0, h = 0, w = 0, k = 5, stride = 1, pad = 2;
  int64_t oh() const { return (h + 2 * pad - k) / stride + 1; }
  int64_t ow() const { return (w + 2 * pad - k) / stride + 1; }
};

// y[n,c,i,j] = b[c] + sum_{p,q} x[n,c,i*s-pad+p, j*s-pad+q] * w[c,p,q] (out-of-range x are 0).
// b may be null (no bias).
template <typename T>
void dw_conv_forward(const T* x, const T* w, const T* b, T* y, const DwShape& s);

// dx = d loss / d x of the convolution, given dy (overwrites dx).
template <typename T>
void dw_conv_backward_data(const T* dy, const T* w, T* dx, const DwShape& s);

// dw [c,k,k] and db [c] (db may be null) = d loss / d w, d loss / d b (overwritten).
template <typename T>
void dw_conv_backward_weights(const T* x, const T* dy, T* dw, T* db, const DwShape& s);

// The 1x1 convolution y[n, co, p] = sum_ci w[co, ci] x[n, ci, p], p over hw positions.
template <typename T>
void pw_conv_forward(const T* x, const T* w, T* y, int64_t n, int64_t ci, int64_t co, int64_t hw);

// dx[n, ci, p] = sum_co w[co, ci] dy[n, co, p] (overwritten).
template <typename T>
void pw_conv_backward_data(const T* dy, const T* w, T* dx, int64_t n, int64_t ci, int64_t co,
                           int64_t hw);

// dw[co, ci] = sum_{n,p} dy[n, co, p] x[n, ci, p] (overwritten).
template <typename T>
void pw_conv_backward_weights(const T* x, const T* dy, T* dw, int64_t n, int64_t ci, int64_t co,
                              int64_t hw);

// Batch norm on the batch's statistics over (n, hw) per channel, as Paddle's batch_norm in
// training: mean and var (biased) are written out; y = gamma * (x - mean) / sqrt(var + eps) +
// beta.
template <typename T>
void bn_train_forward(const T* x, const T* gamma, const T* beta, double eps, int64_t n, int64_t c,
                      int64_t hw, T* y, T* mean, T* var);

// Its backward with the same batch statistics: dx, dgamma, dbeta (overwritten).
template <typename T>
void bn_train_backward(const T* x, const T* dy, const T* gamma, const T* mean, const T* var,
                       double eps, int64_t n, int64_t c, int64_t hw, T* dx, T* dgamma, T* dbeta);

// Batch norm on running statistics (inference): y = gamma * (x - mean) / sqrt(var + eps) + beta.
template <typename T>
void bn_infer(const T* x, const T* gamma, const T* beta, const T* mean, const T* var, double eps,
              int64_t n, int64_t c, int64_t hw, T* y);

// In place: y = max(y, 0).
template <typename T>
void relu_forward(T* y, int64_t size);

// In place: dy = 0 where the ReLU's output y is not positive.
template <typename T>
void relu_backward(const T* y, T* dy, int64_t size);

// pooled[n, c] = mean over hw of x[n, c, :]; and its backward dx[n, c, p] = dpooled[n, c] / hw.
template <typename T>
void avg_pool_forward(const T* x, T* pooled, int64_t n, int64_t c, int64_t hw);
template <typename T>
void avg_pool_backward(const T* dpooled, T* dx, int64_t n, int64_t c, int64_t hw);

}  // namespace train
}  // namespace pif
