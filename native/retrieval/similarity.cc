#include "retrieval/similarity.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/timing.h"

namespace pif {
namespace retrieval {

namespace {

// One heap entry of the top-k selection.
struct Cand {
  float key;
  int32_t idx;
};

// "a ranks before b": larger key first, then lower gallery index.
inline bool better(const Cand& a, const Cand& b) {
  return a.key > b.key || (a.key == b.key && a.idx < b.idx);
}

// Top-k of one row of keys (key = score for IP, -distance for L2). `heap` has room for k.
// Items arrive in increasing gallery index, so an item whose key equals the current worst key
// ranks after it and is rejected.
template <typename KeyOf>
void topk_row(int64_t ng, int64_t k, KeyOf key_of, Cand* heap) {
  int64_t h = 0;
  for (int64_t i = 0; i < ng; ++i) {
    const float key = key_of(i);
    if (h < k) {
      heap[h++] = {key, static_cast<int32_t>(i)};
      std::push_heap(heap, heap + h, better);
    } else if (key > heap[0].key) {
      std::pop_heap(heap, heap + h, better);
      heap[h - 1] = {key, static_cast<int32_t>(i)};
      std::push_heap(heap, heap + h, better);
    }
  }
  std::sort_heap(heap, heap + h, better);  // best first
}

}  // namespace

void check_shape(int64_t rows, int64_t dim, const std::string& what) {
  if (dim < 1 || dim > (int64_t{1} << 24))
    throw RetrievalError(what + ": dim must be an integer from 1 to 16777216, got " +
                         std::to_string(dim));
  if (rows < 0 || rows > kMaxRows)
    throw RetrievalError(what + ": " + std::to_string(rows) + " rows; at most " +
                         std::to_string(kMaxRows) + " are supported");
  if (rows > 0 && dim > std::numeric_limits<int64_t>::max() / 4 / rows)
    throw RetrievalError(what + ": " + std::to_string(rows) + " x " + std::to_string(dim) +
                         " floats do not fit in memory");
}

void check_finite(const float* data, int64_t rows, int64_t dim, const std::string& what) {
  const int64_t n = rows * dim;
  // A vectorisable pass first (exponent bits all ones = NaN or infinity); locate on failure.
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, data + i, sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (bad == 0) return;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i])) {
      throw RetrievalError(what + ": row " + std::to_string(i / dim) + ", column " +
                           std::to_string(i % dim) + " is " +
                           (std::isnan(data[i]) ? "NaN" : "infinite") +
                           "; features must be finite numbers");
    }
  }
}

void l2_normalize_rows(float* data, int64_t rows, int64_t dim) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float* x = data + r * dim;
    double ss = 0;
    for (int64_t j = 0; j < dim; ++j) ss += static_cast<double>(x[j]) * x[j];
    const float norm = static_cast<float>(std::sqrt(ss));
    const float denom = std::max(norm, 1e-12f);
    for (int64_t j = 0; j < dim; ++j) x[j] /= denom;
  }
}

double max_row_norm(const float* data, int64_t rows, int64_t dim) {
  double best = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = data + r * dim;
    double ss = 0;
    for (int64_t j = 0; j < dim; ++j) ss += static_cast<double>(x[j]) * x[j];
    best = std::max(best, ss);
  }
  return std::sqrt(best);
}

void check_score_range(double max_query_norm, double max_gallery_norm, bool l2) {
  const double bound =
      l2 ? (max_query_norm + max_gallery_norm) * (max_query_norm + max_gallery_norm)
         : max_query_norm * max_gallery_norm;
  if (!(bound < 1e37))
    throw RetrievalError(
        "features too large: the largest query norm (" + std::to_string(max_query_norm) +
        ") and gallery norm (" + std::to_string(max_gallery_norm) + ") could make " +
        (l2 ? "squared distances" : "similarities") + " overflow float32; normalize them");
}

int64_t chunk_rows_for(int64_t nq, int64_t ng) {
  constexpr int64_t kBudgetBytes = int64_t{32} << 20;
  int64_t rows = kBudgetBytes / (4 * std::max<int64_t>(ng, 1));
  rows = std::min<int64_t>(std::max<int64_t>(rows, 1), 256);
  return std::max<int64_t>(std::min(rows, nq), 1);
}

void for_each_similarity_chunk(const float* q, int64_t nq, const float* g, int64_t ng, int64_t dim,
                               const SimilarityChunkFn& fn, double* gemm_seconds) {
  if (nq <= 0 || ng <= 0) return;
  const int64_t chunk = chunk_rows_for(nq, ng);
  std::vector<float> sims(static_cast<size_t>(chunk * ng));
  for (int64_t row0 = 0; row0 < nq; row0 += chunk) {
    const int64_t rows = std::min(chunk, nq - row0);
    const auto t0 = std::chrono::steady_clock::now();
    // Row-major: S[rows, ng] = Q[rows, dim] . G[ng, dim]^T.
    const dnnl_status_t st =
        dnnl_sgemm('N', 'T', rows, ng, dim, 1.f, q + row0 * dim, dim, g, dim, 0.f, sims.data(), ng);
    if (st != dnnl_success)
      throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(st));
    if (gemm_seconds != nullptr) *gemm_seconds += seconds_since(t0);
    fn(row0, rows, sims.data());
  }
}

ScopedThreads::ScopedThreads(int threads) : saved_(omp_get_max_threads()) {
  omp_set_num_threads(std::max(threads, 1));
}

ScopedThreads::~ScopedThreads() { omp_set_num_threads(saved_); }

TopKResult search_topk(const float* q, int64_t nq, const float* g, int64_t ng, int64_t dim,
                       int64_t k, SearchMetric metric, int threads) {
  check_shape(nq, dim, "queries");
  check_shape(ng, dim, "gallery");
  if (ng < 1) throw RetrievalError("gallery is empty");
  if (k < 1) throw RetrievalError("k must be a positive integer, got " + std::to_string(k));
  if (threads < 1 || threads > 1024)
    throw RetrievalError("threads must be an integer from 1 to 1024");
  check_finite(q, nq, dim, "queries");
  check_finite(g, ng, dim, "gallery");
  const bool l2 = metric == SearchMetric::kL2;
  check_score_range(max_row_norm(q, nq, dim), max_row_norm(g, ng, dim), l2);
  ScopedThreads scoped(threads);

  TopKResult out;
  out.k = std::min(k, ng);
  const int64_t kk = out.k;
  out.ids.resize(static_cast<size_t>(nq * kk));
  out.scores.resize(static_cast<size_t>(nq * kk));
  if (nq == 0) return out;

  // Squared norms for L2: |q - g|^2 = |q|^2 + |g|^2 - 2 q.g (what faiss' IndexFlatL2 does
  // with BLAS), clamped at 0 against round-off.
  auto sq_norms = [dim](const float* x, int64_t rows) {
    std::vector<float> n(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t j = 0; j < dim; ++j) ss += static_cast<double>(x[r * dim + j]) * x[r * dim + j];
      n[static_cast<size_t>(r)] = static_cast<float>(ss);
    }
    return n;
  };
  std::vector<float> qn, gn;
  if (l2) {
    qn = sq_norms(q, nq);
    gn = sq_norms(g, ng);
  }
  std::vector<std::vector<Cand>> heaps(static_cast<size_t>(threads),
                                       std::vector<Cand>(static_cast<size_t>(kk)));

  for_each_similarity_chunk(q, nq, g, ng, dim, [&](int64_t row0, int64_t rows, const float* sims) {
#pragma omp parallel for schedule(dynamic, 1) if (threads > 1)
    for (int64_t r = 0; r < rows; ++r) {
      Cand* heap = heaps[static_cast<size_t>(omp_get_thread_num())].data();
      const float* s = sims + r * ng;
      const int64_t qi = row0 + r;
      if (l2) {
        const float qq = qn[static_cast<size_t>(qi)];
        const float* gg = gn.data();
        topk_row(
            ng, kk,
            [&](int64_t i) {
              float d = qq + gg[i] - 2.f * s[i];
              return d > 0.f ? -d : -0.f;
            },
            heap);
      } else {
        topk_row(
            ng, kk, [&](int64_t i) { return s[i]; }, heap);
      }
      int32_t* ids = out.ids.data() + qi * kk;
      float* sc = out.scores.data() + qi * kk;
      for (int64_t j = 0; j < kk; ++j) {
        ids[j] = heap[j].idx;
        sc[j] = l2 ? -heap[j].key : heap[j].key;
      }
    }
  });
  return out;
}

}  // namespace retrieval
}  // namespace pif
