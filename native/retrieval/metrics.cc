#include "retrieval/metrics.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "common/timing.h"
#include "retrieval/similarity.h"

namespace pif {
namespace retrieval {

namespace {

// A relevant gallery item of the current query: its score and gallery index.
struct Rel {
  float s;
  int32_t idx;
};

constexpr int kCopies = 4;       // gap counters kept in 4 sets (no store-to-load chains)
constexpr int64_t kSpan = 1024;  // gallery items classified per pass (cell ids stay in L1)

// Cells of the lookup table over [lowest, highest relevant score]: ~64 per relevant item, so
// that few gallery items share a cell with a relevant score, but at most ng / 2 (building the
// table must stay cheap next to the pass over the gallery), at least 256, at most 2^17.
int32_t cells_for(int64_t r, int64_t ng) {
  const int64_t c = std::min<int64_t>(64 * r, ng / 2);
  return static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(c, 256), 1 << 17));
}

struct Scratch {
  std::vector<Rel> rels;
  std::vector<int32_t> code;          // per cell: gap index, or -1 - cell when the cell holds
                                      // relevant scores (exact comparison needed)
  std::vector<int32_t> lo_of, hi_of;  // per cell: the relevant items in it are [lo_of, hi_of)
  std::vector<int32_t> cell_ids;      // kSpan cell ids
  std::vector<int32_t> gap;           // kCopies x (r + 1) counters
  void reserve(int64_t max_r, int64_t ng) {
    const size_t c = static_cast<size_t>(cells_for(max_r, ng)) + 1;
    rels.resize(static_cast<size_t>(max_r));
    code.resize(c);
    lo_of.resize(c);
    hi_of.resize(c);
    cell_ids.resize(static_cast<size_t>(kSpan));
    gap.resize(static_cast<size_t>(kCopies * (max_r + 1)));
  }
};

// The cell of a score: floor((s - lo) * inv_w) clamped to [0, ncell - 1], or ncell when
// s < lo. Monotone in s (every step is), which is all the classification relies on; scores are
// bounded (check_score_range) and inv_w <= 1e30, so nothing overflows into NaN. Written
// branch-free so that the loop over a span vectorises.
inline int32_t cell_of(float s, float lo, float inv_w, float cmax, int32_t ncell) {
  float d = (s - lo) * inv_w;
  d = d > 0.f ? d : 0.f;
  d = d < cmax ? d : cmax;
  const int32_t c = static_cast<int32_t>(d);
  return s < lo ? ncell : c;
}

// Ranks one query. row: its ng similarities; rel: the gallery indices of its relevant items
// (r of them). Every gallery item i (relevant ones included) is put into gap p = the number of
// relevant items ranking before it (larger score, or equal score and lower index). The relevant
// item m itself lands in gap m; without it, gap m holds the non-relevant items ranked between
// relevant m-1 and m, so rank(m) = m + the non-relevant items of gaps 0..m.
// The gap of an item comes from a lookup table over [lowest, highest relevant score]: a cell
// without relevant scores maps to one gap; only items in a cell holding relevant scores are
// compared exactly (binary search among that cell's relevant items).
QueryRank rank_query(const float* row, int64_t ng, const int32_t* rel, int64_t r, Scratch* sc) {
  QueryRank out;
  if (r == 0) return out;
  Rel* rels = sc->rels.data();
  for (int64_t m = 0; m < r; ++m) rels[m] = {row[rel[m]], rel[m]};
  std::sort(rels, rels + r,
            [](const Rel& x, const Rel& y) { return x.s > y.s || (x.s == y.s && x.idx < y.idx); });
  const float lo = rels[r - 1].s, hi = rels[0].s;
  const int32_t ncell = cells_for(r, ng);
  const float cmax = static_cast<float>(ncell - 1);
  float inv_w = 0.f;
  if (hi > lo) {
    const double w = static_cast<double>(ncell) / (static_cast<double>(hi) - lo);
    inv_w = static_cast<float>(std::min(w, 1e30));
  }
  const int32_t rr = static_cast<int32_t>(r);
  int32_t* code = sc->code.data();
  int32_t* lo_of = sc->lo_of.data();
  int32_t* hi_of = sc->hi_of.data();
  // Relevant items per cell (cells are non-increasing in m since rels is sorted), then
  // hi_of[c] = #relevant in cells >= c, lo_of[c] = #relevant in cells > c.
  std::fill(hi_of, hi_of + ncell, 0);
  for (int64_t m = 0; m < r; ++m) ++hi_of[cell_of(rels[m].s, lo, inv_w, cmax, ncell)];
  int32_t acc = 0;
  for (int32_t c = ncell - 1; c >= 0; --c) {
    lo_of[c] = acc;
    acc += hi_of[c];
    hi_of[c] = acc;
    code[c] = hi_of[c] == lo_of[c] ? lo_of[c] : -1 - c;
  }
  code[ncell] = rr;  // below the lowest relevant score: after every relevant item

  int32_t* gap = sc->gap.data();
  const int64_t stride = r + 1;
  std::fill(gap, gap + kCopies * stride, 0);
  int32_t* cells = sc->cell_ids.data();
  int64_t below = 0;  // items below the lowest relevant score (gap r), counted apart
  for (int64_t i0 = 0; i0 < ng; i0 += kSpan) {
    const int64_t n = std::min(kSpan, ng - i0);
    const float* s = row + i0;
    // 1. Cell of every score (vectorised).
    for (int64_t k = 0; k < n; ++k) cells[k] = cell_of(s[k], lo, inv_w, cmax, ncell);
    // 2. Gap of every item at or above the lowest relevant score, compacted in place: the cell's
    //    gap, or a binary search among the relevant items of the cell (rare). Items below the
    //    lowest relevant score (cell ncell, code r) are only counted.
    int32_t* gaps = cells;
    int64_t m = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int32_t c = cells[k];
      int32_t v = code[c];
      if (v < 0) {
        const int32_t cc = -1 - v;
        const float x = s[k];
        const int64_t i = i0 + k;
        int32_t a = lo_of[cc], b = hi_of[cc];
        while (a < b) {
          const int32_t mid = a + ((b - a) >> 1);
          if (rels[mid].s > x || (rels[mid].s == x && rels[mid].idx < i))
            a = mid + 1;
          else
            b = mid;
        }
        v = a;
      }
      gaps[m] = v;
      m += c != ncell;  // branch-free: below-lowest items are frequent and unpredictable
    }
    below += n - m;
    // 3. Histogram of the gaps, into kCopies counter sets.
    static_assert(kCopies == 4, "the histogram below is unrolled 4 times");
    int32_t* g0 = gap;
    int32_t* g1 = gap + stride;
    int32_t* g2 = gap + 2 * stride;
    int32_t* g3 = gap + 3 * stride;
    int64_t k = 0;
    for (; k + 4 <= m; k += 4) {
      ++g0[gaps[k]];
      ++g1[gaps[k + 1]];
      ++g2[gaps[k + 2]];
      ++g3[gaps[k + 3]];
    }
    for (; k < m; ++k) ++g0[gaps[k]];
  }
  gap[r] += static_cast<int32_t>(below);

  int64_t above = 0;  // non-relevant items ranked before relevant m
  double sum = 0;
  for (int64_t m = 0; m < r; ++m) {
    int64_t g = -1;  // minus the relevant item m itself
    for (int u = 0; u < kCopies; ++u) g += gap[u * stride + m];
    above += g;
    if (m == 0) out.first_rank = above;
    sum += static_cast<double>(m + 1) / static_cast<double>(m + above + 1);
  }
  out.ap = sum / static_cast<double>(r);
  return out;
}

}  // namespace

void aggregate_blocks(const std::vector<QueryRank>& ranks, int64_t block_size,
                      const std::vector<int64_t>& topk, EvalResult* out) {
  const int64_t nq = static_cast<int64_t>(ranks.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out->topk = topk;
  out->recall.assign(topk.size(), 0.0);
  out->map = 0;
  out->num_query = nq;
  out->num_valid_query = 0;
  out->blocks = 0;
  out->empty_blocks = 0;
  std::vector<int64_t> hits(topk.size());
  for (int64_t s = 0; s < nq; s += block_size) {
    const int64_t n = std::min(block_size, nq - s);
    int64_t valid = 0;
    double ap_sum = 0;
    std::fill(hits.begin(), hits.end(), 0);
    for (int64_t q = s; q < s + n; ++q) {
      const QueryRank& qr = ranks[static_cast<size_t>(q)];
      if (qr.first_rank < 0) continue;
      ++valid;
      ap_sum += qr.ap;
      for (size_t t = 0; t < topk.size(); ++t)
        if (qr.first_rank < topk[t]) ++hits[t];
    }
    ++out->blocks;
    out->num_valid_query += valid;
    if (valid == 0) ++out->empty_blocks;
    // Block values as PaddleClas' float32 tensors hold them; then metric * len / nq in double.
    for (size_t t = 0; t < topk.size(); ++t) {
      const double rb =
          valid == 0 ? nan
                     : static_cast<double>(static_cast<float>(hits[t]) / static_cast<float>(valid));
      out->recall[t] += rb * static_cast<double>(n) / static_cast<double>(nq);
    }
    const double mb =
        valid == 0 ? nan
                   : static_cast<double>(static_cast<float>(ap_sum / static_cast<double>(valid)));
    out->map += mb * static_cast<double>(n) / static_cast<double>(nq);
  }
}

EvalResult evaluate_retrieval(float* query, const int64_t* query_labels, int64_t nq, float* gallery,
                              const int64_t* gallery_labels, int64_t ng, int64_t dim,
                              const EvalOptions& opts) {
  const auto t_start = std::chrono::steady_clock::now();
  check_shape(nq, dim, "query features");
  check_shape(ng, dim, "gallery features");
  if (nq < 1) throw RetrievalError("the query set is empty");
  if (ng < 1) throw RetrievalError("the gallery is empty");
  if (opts.block_size < 1 || opts.block_size > kMaxRows)
    throw RetrievalError("blockSize must be a positive integer, got " +
                         std::to_string(opts.block_size));
  if (opts.threads < 1 || opts.threads > 1024)
    throw RetrievalError("threads must be an integer from 1 to 1024");
  if (opts.topk.empty()) throw RetrievalError("topk must list at least one k");
  int64_t max_k = 0;
  for (size_t t = 0; t < opts.topk.size(); ++t) {
    const int64_t k = opts.topk[t];
    if (k < 1)
      throw RetrievalError("topk values must be positive integers, got " + std::to_string(k));
    for (size_t u = 0; u < t; ++u)
      if (opts.topk[u] == k) throw RetrievalError("topk lists k = " + std::to_string(k) + " twice");
    max_k = std::max(max_k, k);
  }
  if (ng < max_k)
    throw RetrievalError("the gallery has " + std::to_string(ng) + " item" + (ng == 1 ? "" : "s") +
                         ", fewer than k = " + std::to_string(max_k) +
                         " (the largest topk): recall@" + std::to_string(max_k) +
                         " needs at least " + std::to_string(max_k) + " gallery items");
  EvalResult res;
  res.num_gallery = ng;
  const int threads = opts.threads;
  ScopedThreads scoped(threads);

  auto t0 = std::chrono::steady_clock::now();
  check_finite(query, nq, dim, "query features");
  check_finite(gallery, ng, dim, "gallery features");
  res.timing.check_seconds += seconds_since(t0);
  if (opts.normalize) {
    t0 = std::chrono::steady_clock::now();
    l2_normalize_rows(query, nq, dim);
    l2_normalize_rows(gallery, ng, dim);
    res.timing.normalize_seconds = seconds_since(t0);
  }
  t0 = std::chrono::steady_clock::now();
  check_score_range(max_row_norm(query, nq, dim), max_row_norm(gallery, ng, dim), false);

  // Gallery indices grouped by label (stable: ascending index within a label).
  std::vector<int32_t> order(static_cast<size_t>(ng));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [gallery_labels](int32_t a, int32_t b) {
    return gallery_labels[a] < gallery_labels[b];
  });
  std::vector<int64_t> sorted_labels(static_cast<size_t>(ng));
  for (int64_t j = 0; j < ng; ++j) sorted_labels[static_cast<size_t>(j)] = gallery_labels[order[j]];
  std::vector<int64_t> rel_begin(static_cast<size_t>(nq)), rel_count(static_cast<size_t>(nq));
  int64_t max_r = 0;
  for (int64_t q = 0; q < nq; ++q) {
    auto range = std::equal_range(sorted_labels.begin(), sorted_labels.end(), query_labels[q]);
    rel_begin[static_cast<size_t>(q)] = range.first - sorted_labels.begin();
    rel_count[static_cast<size_t>(q)] = range.second - range.first;
    max_r = std::max<int64_t>(max_r, range.second - range.first);
  }
  std::vector<Scratch> scratch(static_cast<size_t>(threads));
  for (Scratch& s : scratch) s.reserve(max_r, ng);
  std::vector<QueryRank> ranks(static_cast<size_t>(nq));
  res.timing.check_seconds += seconds_since(t0);

  double rank_seconds = 0;
  for_each_similarity_chunk(
      query, nq, gallery, ng, dim,
      [&](int64_t row0, int64_t rows, const float* sims) {
        const auto tr = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(dynamic, 1) if (threads > 1)
        for (int64_t r = 0; r < rows; ++r) {
          const size_t q = static_cast<size_t>(row0 + r);
          if (rel_count[q] == 0) continue;
          ranks[q] = rank_query(sims + r * ng, ng, order.data() + rel_begin[q], rel_count[q],
                                &scratch[static_cast<size_t>(omp_get_thread_num())]);
        }
        rank_seconds += seconds_since(tr);
      },
      &res.timing.gemm_seconds);
  res.timing.rank_seconds = rank_seconds;

  const EvalTiming timing = res.timing;
  aggregate_blocks(ranks, opts.block_size, opts.topk, &res);
  res.num_gallery = ng;
  res.timing = timing;
  res.timing.total_seconds = seconds_since(t_start);
  return res;
}

}  // namespace retrieval
}  // namespace pif
