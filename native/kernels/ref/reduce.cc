// Reductions: reduce_mean / pd_op.mean, reduce_sum / pd_op.sum, reduce_max /
// pd_op.max, reduce_min / pd_op.min, reduce_prod / pd_op.prod, and the
// all-elements mean (legacy `mean`, pd_op.mean_all).
//
// Axes: legacy attribute `dim` (+ `reduce_all`), PIR operand 1 (an int
// array, usually a folded full_int_array) or attribute `axis`. An empty axis
// list reduces everything. keep_dim / keepdim keeps reduced axes as 1.
// A full reduction without keepdim is 0-D in PIR programs; in legacy ones it
// is [1] unless the declared output has rank 0 (Paddle <= 2.5 wrote [1]).
//
// Sums and means of float32 accumulate in double. dtypes: mean float32/64;
// sum float32/64, int32, int64, bool (int32/bool sum to int64 unless a dtype
// is given, as Paddle does); max/min/prod float32/64, int32, int64.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

enum class RedKind { Mean, Sum, Max, Min, Prod };

struct RedAttr {
  RedKind kind;
  std::vector<int64_t> axes;
  bool keepdim;
  bool all;         // reduce_all / mean_all
  DType out_dtype;  // Undefined = by rule
  bool rank0_1d;
};

template <RedKind K>
std::shared_ptr<const void> prep_reduce(const PrepareCtx& c) {
  RedAttr a;
  a.kind = K;
  const std::string& type = c.node.source->type;
  bool mean_all = type == "mean" || type == "pd_op.mean_all";
  a.axes = c.attr.ints(c.attr.has("dim") ? "dim" : (c.attr.has("axis") ? "axis" : "dims"), {});
  a.keepdim = c.attr.b(c.attr.has("keep_dim") ? "keep_dim" : "keepdim", false);
  a.all = mean_all || c.attr.b("reduce_all", false);
  if (mean_all) a.keepdim = false;
  a.out_dtype = DType::Undefined;
  if (K == RedKind::Sum) {
    const Attr* d = c.node.source->attr(c.attr.has("out_dtype") ? "out_dtype" : "dtype");
    int64_t code;
    if (d && (d->kind == Attr::Kind::DType || d->kind == Attr::Kind::String)) {
      if (!dtype_from_name(d->s, &a.out_dtype)) op_fail("unknown dtype '" + d->s + "'");
    } else if (d && d->as_int(&code) && code >= 0) {
      if (!dtype_from_legacy(code, &a.out_dtype))
        op_fail("unknown dtype code " + std::to_string(code));
    }
    // Legacy graphs declare the result dtype; trust it for integer sums
    // (older Paddle kept int32).
    if (a.out_dtype == DType::Undefined && c.program.format == ProgramFormat::Legacy &&
        !c.node.outputs.empty() && !c.node.outputs[0].empty() && c.node.outputs[0][0] != kNoValue) {
      DType decl = c.program.values[c.node.outputs[0][0]].type.dtype;
      if (decl == DType::Int32 || decl == DType::Int64) a.out_dtype = decl;
    }
  }
  a.rank0_1d = rank0_as_1d(c);
  return std::make_shared<const RedAttr>(a);
}

// Reduced-axis flags for input `x`.
std::vector<bool> reduced_axes(const RunCtx& c, const RTensor& x) {
  const auto& a = c.node.attrs<RedAttr>();
  int64_t r = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> axes = a.axes;
  if (c.in.size() > 1 && !c.in[1].empty()) {
    axes.clear();
    for (const RTensor* t : c.in[1]) {
      if (t->numel() == 0) continue;
      auto v = read_ints(*t);
      axes.insert(axes.end(), v.begin(), v.end());
    }
  }
  std::vector<bool> red(static_cast<size_t>(r), false);
  if (a.all || axes.empty()) {
    std::fill(red.begin(), red.end(), true);
    return red;
  }
  for (int64_t ax : axes) {
    if (r == 0 && (ax == 0 || ax == -1)) continue;
    red[norm_axis(ax, r, "reduce axis")] = true;
  }
  return red;
}

DType out_dtype_of(const RunCtx& c, DType in) {
  const auto& a = c.node.attrs<RedAttr>();
  if (a.kind == RedKind::Sum) {
    if (a.out_dtype != DType::Undefined) return a.out_dtype;
    if (in == DType::Int32 || in == DType::Bool) return DType::Int64;
  }
  return in;
}

void infer_reduce(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  const auto& a = c.node.attrs<RedAttr>();
  bool ok;
  switch (a.kind) {
    case RedKind::Mean: ok = x.dtype == DType::Float32 || x.dtype == DType::Float64; break;
    case RedKind::Sum:
      ok = x.dtype == DType::Float32 || x.dtype == DType::Float64 || x.dtype == DType::Int32 ||
           x.dtype == DType::Int64 || x.dtype == DType::Bool;
      break;
    default:
      ok = x.dtype == DType::Float32 || x.dtype == DType::Float64 || x.dtype == DType::Int32 ||
           x.dtype == DType::Int64;
  }
  if (!ok) op_fail(std::string("unsupported dtype ") + dtype_name(x.dtype));
  DType od = out_dtype_of(c, x.dtype);
  if (od != DType::Float32 && od != DType::Float64 && od != DType::Int32 && od != DType::Int64)
    op_fail(std::string("unsupported result dtype ") + dtype_name(od));
  std::vector<bool> red = reduced_axes(c, x);
  std::vector<int64_t> dims;
  for (size_t k = 0; k < x.dims.size(); ++k) {
    if (!red[k])
      dims.push_back(x.dims[k]);
    else if (a.keepdim)
      dims.push_back(1);
  }
  if (dims.empty() && !x.dims.empty() && a.rank0_1d) dims.push_back(1);
  set_output(c.output(0), od, dims);
}

template <typename In, typename Acc, typename Out, RedKind K>
struct Reducer {
  static Acc init() {
    if (K == RedKind::Max) return std::numeric_limits<Acc>::lowest();
    if (K == RedKind::Min) return std::numeric_limits<Acc>::max();
    if (K == RedKind::Prod) return Acc(1);
    return Acc(0);
  }
  static Acc add(Acc a, In v) {
    Acc x = static_cast<Acc>(v);
    switch (K) {
      case RedKind::Max: return std::isnan(static_cast<double>(x)) || x > a ? x : a;
      case RedKind::Min: return std::isnan(static_cast<double>(x)) || x < a ? x : a;
      case RedKind::Prod: return a * x;
      default: return a + x;
    }
  }
  static Out finish(Acc a, int64_t n) {
    if (K == RedKind::Mean) return static_cast<Out>(n ? a / static_cast<Acc>(n) : NAN);
    return static_cast<Out>(a);
  }
};

// Reduction over the grouped view: kept/reduced groups after merging.
template <typename In, typename Acc, typename Out, RedKind K>
void reduce_typed(const RTensor& x, const std::vector<bool>& red, RTensor* y) {
  using R = Reducer<In, Acc, Out, K>;
  const In* src = x.ptr<In>();
  Out* dst = y->ptr<Out>();
  int64_t nout = y->numel();
  if (nout == 0) return;
  // Merge adjacent axes with the same flag, dropping unit axes.
  std::vector<int64_t> gd;
  std::vector<bool> gr;
  for (size_t k = 0; k < x.dims.size(); ++k) {
    if (x.dims[k] == 1) continue;
    if (!gd.empty() && gr.back() == red[k]) {
      gd.back() *= x.dims[k];
    } else {
      gd.push_back(x.dims[k]);
      gr.push_back(red[k]);
    }
  }
  int64_t nred = 1;
  for (size_t g = 0; g < gd.size(); ++g)
    if (gr[g]) nred *= gd[g];
  size_t nredgroups = static_cast<size_t>(std::count(gr.begin(), gr.end(), true));
  if (nredgroups <= 1) {
    // [outer, R, inner]
    int64_t outer = 1, inner = 1, rn = 1;
    bool seen = false;
    for (size_t g = 0; g < gd.size(); ++g) {
      if (gr[g]) {
        rn = gd[g];
        seen = true;
      } else if (seen) {
        inner *= gd[g];
      } else {
        outer *= gd[g];
      }
    }
    constexpr int64_t kBlock = 256;
    int64_t nb = (inner + kBlock - 1) / kBlock;
    int64_t tasks = outer * nb;
#pragma omp parallel for schedule(static) if (outer * rn * inner > (1 << 15) && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      int64_t o = t / nb, j0 = (t % nb) * kBlock, j1 = std::min(inner, j0 + kBlock);
      const In* s = src + o * rn * inner;
      if (inner == 1) {
        Acc acc = R::init();
        for (int64_t i = 0; i < rn; ++i) acc = R::add(acc, s[i]);
        dst[o] = R::finish(acc, rn);
        continue;
      }
      Acc acc[kBlock];
      for (int64_t j = j0; j < j1; ++j) acc[j - j0] = R::init();
      for (int64_t i = 0; i < rn; ++i) {
        const In* row = s + i * inner;
        for (int64_t j = j0; j < j1; ++j) acc[j - j0] = R::add(acc[j - j0], row[j]);
      }
      for (int64_t j = j0; j < j1; ++j) dst[o * inner + j] = R::finish(acc[j - j0], rn);
    }
    return;
  }
  // General: offsets of the reduced elements relative to an output's base.
  size_t ng = gd.size();
  std::vector<int64_t> stride(ng);
  int64_t p = 1;
  for (size_t g = ng; g-- > 0;) {
    stride[g] = p;
    p *= gd[g];
  }
  std::vector<int64_t> roff(static_cast<size_t>(nred));
  for (int64_t i = 0; i < nred; ++i) {
    int64_t rem = i, off = 0;
    for (size_t g = ng; g-- > 0;) {
      if (!gr[g]) continue;
      off += (rem % gd[g]) * stride[g];
      rem /= gd[g];
    }
    roff[i] = off;
  }
#pragma omp parallel for schedule(static) if (nout * nred > (1 << 15))
  for (int64_t o = 0; o < nout; ++o) {
    int64_t rem = o, base = 0;
    for (size_t g = ng; g-- > 0;) {
      if (gr[g]) continue;
      base += (rem % gd[g]) * stride[g];
      rem /= gd[g];
    }
    Acc acc = R::init();
    for (int64_t i = 0; i < nred; ++i) acc = R::add(acc, src[base + roff[i]]);
    dst[o] = R::finish(acc, nred);
  }
}

template <RedKind K>
void run_kind(const RTensor& x, const std::vector<bool>& red, RTensor* y) {
  DType in = x.dtype, out = y->dtype;
  bool avg = K == RedKind::Mean || K == RedKind::Sum || K == RedKind::Prod;
  if (in == DType::Float32 && out == DType::Float32) {
    if (avg)
      reduce_typed<float, double, float, K>(x, red, y);
    else
      reduce_typed<float, float, float, K>(x, red, y);
  } else if (in == DType::Float32 && out == DType::Float64) {
    reduce_typed<float, double, double, K>(x, red, y);
  } else if (in == DType::Float64 && out == DType::Float64) {
    reduce_typed<double, double, double, K>(x, red, y);
  } else if (in == DType::Float64 && out == DType::Float32) {
    reduce_typed<double, double, float, K>(x, red, y);
  } else if (in == DType::Int32 && out == DType::Int32) {
    reduce_typed<int32_t, int64_t, int32_t, K>(x, red, y);
  } else if (in == DType::Int32 && out == DType::Int64) {
    reduce_typed<int32_t, int64_t, int64_t, K>(x, red, y);
  } else if (in == DType::Int64 && out == DType::Int64) {
    reduce_typed<int64_t, int64_t, int64_t, K>(x, red, y);
  } else if (in == DType::Int64 && out == DType::Int32) {
    reduce_typed<int64_t, int64_t, int32_t, K>(x, red, y);
  } else if (in == DType::Bool && out == DType::Int64) {
    reduce_typed<uint8_t, int64_t, int64_t, K>(x, red, y);
  } else if (in == DType::Bool && out == DType::Int32) {
    reduce_typed<uint8_t, int64_t, int32_t, K>(x, red, y);
  } else if ((in == DType::Int32 || in == DType::Int64) &&
             (out == DType::Float32 || out == DType::Float64)) {
    if (in == DType::Int32 && out == DType::Float32)
      reduce_typed<int32_t, double, float, K>(x, red, y);
    else if (in == DType::Int32)
      reduce_typed<int32_t, double, double, K>(x, red, y);
    else if (out == DType::Float32)
      reduce_typed<int64_t, double, float, K>(x, red, y);
    else
      reduce_typed<int64_t, double, double, K>(x, red, y);
  } else {
    op_fail(std::string("unsupported dtypes ") + dtype_name(in) + " -> " + dtype_name(out));
  }
}

void run_reduce(RunCtx& c) {
  const RTensor& x = *c.input(0);
  RTensor* y = c.output(0);
  std::vector<bool> red = reduced_axes(c, x);
  switch (c.node.attrs<RedAttr>().kind) {
    case RedKind::Mean: run_kind<RedKind::Mean>(x, red, y); break;
    case RedKind::Sum: run_kind<RedKind::Sum>(x, red, y); break;
    case RedKind::Max: run_kind<RedKind::Max>(x, red, y); break;
    case RedKind::Min: run_kind<RedKind::Min>(x, red, y); break;
    case RedKind::Prod: run_kind<RedKind::Prod>(x, red, y); break;
  }
}

OpDef def(const char* name, std::vector<std::string> types, std::vector<std::string> ins,
          PrepareFn prep) {
  return make_op_def(name, std::move(types), std::move(ins), {"Out"}, prep, infer_reduce,
                     run_reduce);
}

}  // namespace

void register_reduce_ops(std::vector<OpDef>* t) {
  t->push_back(
      def("reduce_mean", {"reduce_mean", "pd_op.mean"}, {"X", ""}, prep_reduce<RedKind::Mean>));
  t->push_back(def("mean_all", {"mean", "pd_op.mean_all"}, {"X"}, prep_reduce<RedKind::Mean>));
  t->push_back(
      def("reduce_sum", {"reduce_sum", "pd_op.sum"}, {"X", ""}, prep_reduce<RedKind::Sum>));
  t->push_back(
      def("reduce_max", {"reduce_max", "pd_op.max"}, {"X", ""}, prep_reduce<RedKind::Max>));
  t->push_back(
      def("reduce_min", {"reduce_min", "pd_op.min"}, {"X", ""}, prep_reduce<RedKind::Min>));
  t->push_back(
      def("reduce_prod", {"reduce_prod", "pd_op.prod"}, {"X", ""}, prep_reduce<RedKind::Prod>));
}

}  // namespace pif
