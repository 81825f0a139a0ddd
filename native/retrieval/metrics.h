// Retrieval evaluation with the definitions of PaddleClas (ppcls/metric/metrics.py Recallk and
// mAP, ppcls/engine/evaluation/retrieval.py), features given:
//
//  - optional L2 normalisation of every row (Global.feature_normalize, default on);
//  - similarity = query . gallery^T; each query ranks the whole gallery by descending
//    similarity, ties by gallery index (see similarity.h). Nothing is excluded: an identical
//    image in query and gallery counts as a match (no camera ids);
//  - relevant = gallery items with the query's label. A query with no relevant item counts in
//    no numerator or denominator of its block, but its block still weighs block_size / nq;
//  - recall@k of a block = (#queries with a relevant item within the first k) / (#queries of
//    the block with at least one relevant item); AP of a query = mean over ALL its relevant
//    items of the precision at that item's rank in the full ranking; mAP of a block = mean AP
//    over its queries with a relevant item;
//  - queries are split into blocks of block_size (PaddleClas sim_block_size, the last one
//    shorter); final metric = sum over blocks of metric_block * block_len / nq, accumulated in
//    that order in double, as Python does. Block values are rounded to float32 first, as the
//    paddle tensors hold them (recall exactly; mAP from a double mean);
//  - a block in which no query has a relevant item gives NaN for every metric (PaddleClas: 0/0
//    in Recallk, np.nan in mAP); added into the sum it makes the final metric NaN, exactly as
//    in PaddleClas, whose log line then reads "nan".
//
// We do not sort whole rows: per query only the R relevant scores are sorted; the rank of each
// is found by one pass over the row that classifies every gallery item between consecutive
// relevant scores (a lookup table over the score range, then a binary search only inside a
// cell that holds relevant scores): O(ng + R log R) per query, O(ng log R) at worst. The
// GEMM runs in chunks (similarity.h); memory is one chunk of scores plus O(nq) results.
#pragma once

#include <cstdint>
#include <vector>

namespace pif {
namespace retrieval {

struct EvalOptions {
  int64_t block_size = 64;          // PaddleClas Global.sim_block_size
  std::vector<int64_t> topk{1, 5};  // Recallk topk; each k <= gallery size
  bool normalize = true;            // Global.feature_normalize (in place on the inputs)
  int threads = 1;                  // OpenMP threads for GEMM and ranking
};

struct EvalTiming {
  double check_seconds = 0;      // finiteness and range checks, label grouping
  double normalize_seconds = 0;  // L2 normalisation
  double gemm_seconds = 0;       // dnnl_sgemm
  double rank_seconds = 0;       // ranking and per-query AP
  double total_seconds = 0;      // the whole evaluate_retrieval call
};

struct EvalResult {
  std::vector<int64_t> topk;
  std::vector<double> recall;  // recall@topk[i], block-weighted; NaN as described above
  double map = 0;              // mAP, block-weighted
  int64_t num_query = 0, num_gallery = 0;
  int64_t num_valid_query = 0;  // queries with at least one relevant gallery item
  int64_t blocks = 0;
  int64_t empty_blocks = 0;  // blocks in which no query has a relevant item (NaN blocks)
  EvalTiming timing;
};

// What one query contributes: the 0-based rank of its best relevant gallery item (-1 when it
// has none) and its AP (0 when it has none).
struct QueryRank {
  int64_t first_rank = -1;
  double ap = 0;
};

// Evaluates query (nq x dim, labels ql) against gallery (ng x dim, labels gl). With
// opts.normalize the feature rows are normalised IN PLACE. Throws RetrievalError for empty sets,
// a gallery smaller than max(topk) (naming both sizes), bad options, non-finite features.
EvalResult evaluate_retrieval(float* query, const int64_t* query_labels, int64_t nq, float* gallery,
                              const int64_t* gallery_labels, int64_t ng, int64_t dim,
                              const EvalOptions& opts);

// The block aggregation alone (PaddleClas' retrieval_eval loop), from per-query ranks.
void aggregate_blocks(const std::vector<QueryRank>& ranks, int64_t block_size,
                      const std::vector<int64_t>& topk, EvalResult* out);

}  // namespace retrieval
}  // namespace pif
