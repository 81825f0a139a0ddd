// Exact similarity search over float32 feature matrices (row-major, one feature per row),
// computed chunk by chunk with oneDNN's plain dnnl_sgemm so that the full nq x ng similarity
// matrix is never materialised: one chunk holds at most ~32 MiB of scores (or one query row).
// A leaf like kernels/: depends on oneDNN and OpenMP only.
//
// Ranking rule, used by every function in native/retrieval: a gallery item ranks before another
// when its key is larger (inner product: the similarity; L2: the negated squared distance); equal
// keys keep gallery order, i.e. the lower gallery index ranks first (a stable descending sort).
// PaddleClas sorts with paddle.argsort, which does not promise any order among equal scores;
// this rule makes ties deterministic.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pif {
namespace retrieval {

// A bad argument: shape, size, option, or a non-finite feature. The addon turns it into an
// Error with code PIF_INVALID_ARG; everything else thrown from here is an internal error.
class RetrievalError : public std::invalid_argument {
 public:
  explicit RetrievalError(const std::string& msg) : std::invalid_argument(msg) {}
};

// Gallery and query sizes are limited to what int32 ids can address.
constexpr int64_t kMaxRows = 2147483647;

// Checks rows in [0, kMaxRows], dim >= 1 and rows * dim addressable; `what` names the matrix
// ("query features") in the message.
void check_shape(int64_t rows, int64_t dim, const std::string& what);

// Throws RetrievalError naming `what`, the row and the column of the first NaN or infinity.
void check_finite(const float* data, int64_t rows, int64_t dim, const std::string& what);

// In place, per row: x / max(||x||_2, 1e-12), as paddle.nn.functional.normalize(x, p=2)
// (PaddleClas Global.feature_normalize). The norm is summed in double. Zero rows stay zero.
void l2_normalize_rows(float* data, int64_t rows, int64_t dim);

// The largest Euclidean norm of a row (0 for no rows).
double max_row_norm(const float* data, int64_t rows, int64_t dim);

// Refuses features whose similarities could overflow float32 (|q . g| <= ||q|| ||g||, and the
// squared L2 distance <= (||q|| + ||g||)^2), so every score computed here is finite.
void check_score_range(double max_query_norm, double max_gallery_norm, bool l2);

// Query rows per similarity chunk: as many as fit a ~32 MiB score buffer, at least 1, at most
// 256 and nq.
int64_t chunk_rows_for(int64_t nq, int64_t ng);

// Visits S = Q . G^T chunk by chunk: fn(row0, rows, sims) where sims[r * ng + j] is the inner
// product of query row0 + r with gallery row j. The buffer is reused between calls. The time
// spent in dnnl_sgemm is added to *gemm_seconds when given. dnnl_sgemm runs with the calling
// thread's OpenMP thread count (see ScopedThreads).
using SimilarityChunkFn = std::function<void(int64_t row0, int64_t rows, const float* sims)>;
void for_each_similarity_chunk(const float* q, int64_t nq, const float* g, int64_t ng, int64_t dim,
                               const SimilarityChunkFn& fn, double* gemm_seconds = nullptr);

// Sets the calling thread's OpenMP thread count (dnnl_sgemm and the ranking loops use it) for
// the lifetime of the object, then restores the previous value.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads);
  ~ScopedThreads();
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int saved_;
};

enum class SearchMetric { kInnerProduct, kL2 };

struct TopKResult {
  int64_t k = 0;              // results per query: min(requested k, ng)
  std::vector<int32_t> ids;   // nq * k gallery indices, row-major, best first
  std::vector<float> scores;  // inner products (IP, larger first) or squared L2 distances
                              // (|q|^2 + |g|^2 - 2 q.g clamped at 0, smaller first)
};

// Exact top-k of every query over the gallery, blockwise (one GEMM per chunk, then one linear
// pass with a k-heap per query row). Ties: the lower gallery index first. Runs with `threads`
// OpenMP threads. Throws RetrievalError on bad shapes, k < 1, or non-finite features.
TopKResult search_topk(const float* q, int64_t nq, const float* g, int64_t ng, int64_t dim,
                       int64_t k, SearchMetric metric, int threads);

}  // namespace retrieval
}  // namespace pif
