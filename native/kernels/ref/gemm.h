// Row-major single-precision GEMM for the reference kernels:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// backed by oneDNN's plain dnnl_sgemm (no primitives: that is hpi's job).
#pragma once

#include <cstdint>

namespace pif {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace pif
