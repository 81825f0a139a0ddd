// The training code's GEMM: row-major C[m,n] = op(A)[m,k] op(B)[k,n] + beta * C, dnnl_sgemm for
// float and plain loops for double (the finite-difference tests need exact double sums).
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/ref/gemm.h"

namespace pif {
namespace train {

template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm(ta, tb, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
  } else {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        T s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
        c[i * ldc + j] = s + (beta == T(0) ? T(0) : beta * c[i * ldc + j]);
      }
  }
}

}  // namespace train
}  // namespace pif
