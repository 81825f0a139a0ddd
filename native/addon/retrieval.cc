// Retrieval (native/retrieval): evaluateRetrieval and searchTopK. Features and labels are
// copied on the main thread (JS may reuse its buffers as soon as the call returns); the GEMM,
// ranking and metrics run in the job. RetrievalError becomes PIF_INVALID_ARG (addon/job.cc).
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/job.h"
#include "retrieval/metrics.h"
#include "retrieval/similarity.h"

namespace pif {
namespace addon {
namespace {

// A positive integer no larger than `max` (the option `name`), or `def` when undefined.
int64_t int_option(Napi::Env env, const Napi::Object& o, const char* name, int64_t def,
                   int64_t max) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return def;
  int64_t n = 0;
  if (!integer_in(v, 1, static_cast<double>(max), &n))
    throw_arg(env, std::string(name) + " must be an integer from 1 to " + std::to_string(max));
  return n;
}

// The feature dimension argument: an integer >= 1.
int64_t dim_arg(Napi::Env env, const Napi::Value& v) {
  int64_t n = 0;
  if (!integer_in(v, 1, 16777216, &n)) throw_arg(env, "dim must be an integer from 1 to 16777216");
  return n;
}

// Checks a Float32Array of rows x dim features and sets *rows; returns a copy (empty when !copy).
std::vector<float> feature_rows(Napi::Env env, const Napi::Value& v, int64_t dim,
                                const std::string& what, int64_t* rows, bool copy = true) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_arg(env, what + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  size_t n = a.ElementLength();
  if (n % static_cast<size_t>(dim) != 0)
    throw_arg(env, what + " has " + std::to_string(n) + " values, not a multiple of dim (" +
                       std::to_string(dim) + ")");
  *rows = static_cast<int64_t>(n / static_cast<size_t>(dim));
  if (*rows > retrieval::kMaxRows)
    throw_arg(env, what + ": more than " + std::to_string(retrieval::kMaxRows) + " rows");
  if (!copy) return {};
  return std::vector<float>(a.Data(), a.Data() + n);
}

// Copies a BigInt64Array of `rows` labels.
std::vector<int64_t> label_rows(Napi::Env env, const Napi::Value& v, int64_t rows,
                                const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
    throw_arg(env, what + " must be a BigInt64Array");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  if (a.ElementLength() != static_cast<size_t>(rows))
    throw_arg(env, what + " has " + std::to_string(a.ElementLength()) + " labels for " +
                       std::to_string(rows) + " feature rows");
  const auto* p = reinterpret_cast<const int64_t*>(
      static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  return std::vector<int64_t>(p, p + rows);
}

Napi::Value eval_to_js(Napi::Env env, const retrieval::EvalResult& res) {
  auto num = [&](double x) { return Napi::Number::New(env, x); };
  Napi::Object o = Napi::Object::New(env);
  Napi::Array topk = Napi::Array::New(env, res.topk.size());
  Napi::Array recall = Napi::Array::New(env, res.recall.size());
  for (size_t t = 0; t < res.topk.size(); ++t) {
    topk.Set(static_cast<uint32_t>(t), num(static_cast<double>(res.topk[t])));
    recall.Set(static_cast<uint32_t>(t), num(res.recall[t]));
  }
  o.Set("topk", topk);
  o.Set("recall", recall);
  o.Set("mAP", num(res.map));
  o.Set("numQuery", num(static_cast<double>(res.num_query)));
  o.Set("numGallery", num(static_cast<double>(res.num_gallery)));
  o.Set("numValidQuery", num(static_cast<double>(res.num_valid_query)));
  o.Set("blocks", num(static_cast<double>(res.blocks)));
  o.Set("emptyBlocks", num(static_cast<double>(res.empty_blocks)));
  Napi::Object t = Napi::Object::New(env);
  t.Set("checkSeconds", num(res.timing.check_seconds));
  t.Set("normalizeSeconds", num(res.timing.normalize_seconds));
  t.Set("gemmSeconds", num(res.timing.gemm_seconds));
  t.Set("rankSeconds", num(res.timing.rank_seconds));
  t.Set("totalSeconds", num(res.timing.total_seconds));
  o.Set("timing", t);
  return o;
}

void parse_eval_options(Napi::Env env, const Napi::Object& o, retrieval::EvalOptions* opts) {
  opts->block_size = int_option(env, o, "blockSize", 64, retrieval::kMaxRows);
  opts->threads = static_cast<int>(int_option(env, o, "threads", 1, 1024));
  Napi::Value nv = o.Get("normalize");
  if (!nv.IsUndefined()) {
    if (!nv.IsBoolean()) throw_arg(env, "normalize must be a boolean");
    opts->normalize = nv.As<Napi::Boolean>().Value();
  }
  Napi::Value tv = o.Get("topk");
  if (!tv.IsUndefined()) {
    if (!tv.IsArray()) throw_arg(env, "topk must be an array of positive integers");
    Napi::Array a = tv.As<Napi::Array>();
    opts->topk.clear();
    for (uint32_t k = 0; k < a.Length(); ++k) {
      int64_t n = 0;
      if (!integer_in(a.Get(k), 1, 2147483647.0, &n))
        throw_arg(env, "topk must be an array of positive integers");
      opts->topk.push_back(n);
    }
  }
}

// evaluateRetrieval(query: Float32Array, queryLabels: BigInt64Array, gallery: Float32Array,
//                   galleryLabels: BigInt64Array, dim, {blockSize, topk, normalize, threads})
Napi::Value EvaluateRetrieval(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5)
    throw_arg(env,
              "evaluateRetrieval(query, queryLabels, gallery, galleryLabels, dim, options): "
              "missing arguments");
  struct Args {
    std::vector<float> q, g;
    std::vector<int64_t> ql, gl;
    int64_t dim = 0;
    retrieval::EvalOptions opts;
  } a;
  a.dim = dim_arg(env, info[4]);
  int64_t nq = 0, ng = 0;
  a.q = feature_rows(env, info[0], a.dim, "query features", &nq);
  a.ql = label_rows(env, info[1], nq, "query labels");
  a.g = feature_rows(env, info[2], a.dim, "gallery features", &ng);
  a.gl = label_rows(env, info[3], ng, "gallery labels");
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    if (!info[5].IsObject()) throw_arg(env, "options must be an object");
    parse_eval_options(env, info[5].As<Napi::Object>(), &a.opts);
  }
  return start_job(
      env,
      [a = std::move(a)]() mutable {
        retrieval::EvalResult res = retrieval::evaluate_retrieval(
            a.q.data(), a.ql.data(), static_cast<int64_t>(a.ql.size()), a.g.data(), a.gl.data(),
            static_cast<int64_t>(a.gl.size()), a.dim, a.opts);
        std::vector<float>().swap(a.q);
        std::vector<float>().swap(a.g);
        return res;
      },
      eval_to_js);
}

Napi::Value topk_to_js(Napi::Env env, const retrieval::TopKResult& res) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("k", Napi::Number::New(env, static_cast<double>(res.k)));
  auto ids = Napi::Int32Array::New(env, res.ids.size());
  if (!res.ids.empty()) std::memcpy(ids.Data(), res.ids.data(), res.ids.size() * 4);
  auto scores = Napi::Float32Array::New(env, res.scores.size());
  if (!res.scores.empty()) std::memcpy(scores.Data(), res.scores.data(), res.scores.size() * 4);
  o.Set("ids", ids);
  o.Set("scores", scores);
  return o;
}

// searchTopK(queries: Float32Array, gallery: Float32Array, dim, k,
//            {metric: 'IP'|'L2', threads, borrowGallery})
// -> { k: min(k, gallery rows), ids: Int32Array (nq * k), scores: Float32Array (nq * k) }
//
// The gallery is either copied or, with `borrowGallery`, read in place: the job keeps a
// reference to the JS Float32Array so its buffer stays alive, and the caller promises not to
// change the searched values until the promise settles (the Flat index allocates a new array
// instead of compacting in place). Borrowing saves a full gallery copy on the main thread per
// search, which for a 50k x 512 gallery costs tens of milliseconds.
Napi::Value SearchTopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4)
    throw_arg(env, "searchTopK(queries, gallery, dim, k, options): missing arguments");
  struct Args {
    std::vector<float> q, g;
    const float* gp = nullptr;  // the gallery: g's data or the borrowed array's
    int64_t ng = 0, dim = 0, k = 0;
    retrieval::SearchMetric metric = retrieval::SearchMetric::kInnerProduct;
    int threads = 1;
  } a;
  a.dim = dim_arg(env, info[2]);
  int64_t nq = 0;
  a.q = feature_rows(env, info[0], a.dim, "queries", &nq);
  if (!integer_in(info[3], 1, 2147483647.0, &a.k)) throw_arg(env, "k must be a positive integer");
  bool borrow = false;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!info[4].IsObject()) throw_arg(env, "options must be an object");
    Napi::Object o = info[4].As<Napi::Object>();
    a.metric = choice(
        env, o.Get("metric"),
        {{"IP", retrieval::SearchMetric::kInnerProduct}, {"L2", retrieval::SearchMetric::kL2}},
        a.metric, "metric must be 'IP' or 'L2'");
    a.threads = static_cast<int>(int_option(env, o, "threads", 1, 1024));
    Napi::Value bv = o.Get("borrowGallery");
    if (!bv.IsUndefined()) {
      if (!bv.IsBoolean()) throw_arg(env, "borrowGallery must be a boolean");
      borrow = bv.As<Napi::Boolean>().Value();
    }
  }
  Napi::Object keep;
  if (borrow) {
    feature_rows(env, info[1], a.dim, "gallery", &a.ng, /*copy=*/false);
    a.gp = info[1].As<Napi::Float32Array>().Data();
    keep = info[1].As<Napi::Object>();
  } else {
    a.g = feature_rows(env, info[1], a.dim, "gallery", &a.ng);
  }
  return start_job(
      env,
      [a = std::move(a)]() mutable {
        const float* gallery = a.gp ? a.gp : a.g.data();
        retrieval::TopKResult res =
            retrieval::search_topk(a.q.data(), static_cast<int64_t>(a.q.size()) / a.dim, gallery,
                                   a.ng, a.dim, a.k, a.metric, a.threads);
        std::vector<float>().swap(a.q);
        std::vector<float>().swap(a.g);
        return res;
      },
      topk_to_js, keep);
}

}  // namespace

void init_retrieval(Napi::Env env, Napi::Object exports) {
  exports.Set("evaluateRetrieval",
              Napi::Function::New(env, EvaluateRetrieval, "evaluateRetrieval"));
  exports.Set("searchTopK", Napi::Function::New(env, SearchTopK, "searchTopK"));
}

}  // namespace addon
}  // namespace pif
