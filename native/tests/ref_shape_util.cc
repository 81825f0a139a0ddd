// The ref_shape suite's random tensors, case runner and naive references (ref_shape.h).
#include <algorithm>
#include <cmath>
#include <iostream>

#include "common/error.h"
#include "tests/ref_shape.h"

namespace pif::test {

HT rand_t(const std::vector<int64_t>& dims, DType dt, double scale) {
  HT t;
  t.dt = dt;
  t.dims = dims;
  int64_t n = t.numel();
  t.v.resize(static_cast<size_t>(n));
  for (auto& x : t.v) {
    if (dt == DType::Float32)
      x = static_cast<float>(rf(-scale, scale));
    else if (dt == DType::Float64)
      x = rf(-scale, scale);
    else if (dt == DType::Bool)
      x = static_cast<double>(ri(0, 1));
    else if (dt == DType::UInt8)
      x = static_cast<double>(ri(0, 255));
    else
      x = static_cast<double>(ri(-100, 100));
  }
  return t;
}

HT ints_t(const std::vector<int64_t>& vals, DType dt, std::vector<int64_t> dims) {
  HT t;
  t.dt = dt;
  t.dims = dims == std::vector<int64_t>{-2}
               ? std::vector<int64_t>{static_cast<int64_t>(vals.size())}
               : dims;
  for (int64_t v : vals) t.v.push_back(static_cast<double>(v));
  return t;
}

std::vector<int64_t> rand_dims(int rank, int64_t lo, int64_t hi) {
  std::vector<int64_t> d(static_cast<size_t>(rank));
  for (auto& x : d) x = ri(lo, hi);
  return d;
}

void run_case(const std::string& op, const std::string& what, G& g, const std::vector<HT>& want,
              double tol) {
  std::vector<HT> got;
  try {
    got = g.run(threads_or(4));
  } catch (const std::exception& e) {
    record(op, what, 0, std::string("threw: ") + e.what());
    return;
  }
  if (got.size() != want.size()) {
    record(op, what, 0, "output count " + std::to_string(got.size()));
    return;
  }
  for (size_t i = 0; i < got.size(); ++i)
    check_close(op, what + (want.size() > 1 ? "#" + std::to_string(i) : ""), got[i], want[i], tol);
}

void expect_error(const std::string& op, const std::string& what, G& g) {
  expect_model_error(op, what, [&] { g.run(threads_or(4)); });
}

void expect_op_error(const std::string& type, const std::string& what,
                     const std::function<Slots(G&)>& inputs, const Attrs& attrs) {
  G g(false);
  Slots ins = inputs(g);
  ValueId o = g.val();
  g.op(type, ins, {{"Out", {o}}}, attrs);
  g.output(o);
  expect_error(type, what, g);
}

HT ref_matmul(const HT& x, const HT& y, bool tx, bool ty, double alpha, bool rank0_1d) {
  std::vector<int64_t> xd = x.dims, yd = y.dims;
  bool x1 = xd.size() == 1, y1 = yd.size() == 1;
  if (x1) {
    xd = {1, xd[0]};
    tx = false;
  }
  if (y1) {
    yd = {yd[0], 1};
    ty = false;
  }
  size_t xr = xd.size(), yr = yd.size();
  int64_t M = tx ? xd[xr - 1] : xd[xr - 2], K = tx ? xd[xr - 2] : xd[xr - 1];
  int64_t N = ty ? yd[yr - 2] : yd[yr - 1];
  size_t br = std::max(xr, yr) - 2;
  std::vector<int64_t> xb(br, 1), yb(br, 1), ob(br);
  for (size_t i = 0; i < xr - 2; ++i) xb[br - (xr - 2) + i] = xd[i];
  for (size_t i = 0; i < yr - 2; ++i) yb[br - (yr - 2) + i] = yd[i];
  for (size_t i = 0; i < br; ++i) ob[i] = std::max(xb[i], yb[i]);
  HT o;
  o.dims = ob;
  if (!x1) o.dims.push_back(M);
  if (!y1) o.dims.push_back(N);
  if (o.dims.empty() && rank0_1d) o.dims = {1};
  int64_t B = prod(ob);
  o.v.assign(static_cast<size_t>(B * M * N), 0);
  for (int64_t b = 0; b < B; ++b) {
    auto bi = unravel(b, ob);
    std::vector<int64_t> xi(br), yi(br);
    for (size_t i = 0; i < br; ++i) {
      xi[i] = xb[i] == 1 ? 0 : bi[i];
      yi[i] = yb[i] == 1 ? 0 : bi[i];
    }
    int64_t xo = ravel(xi, xb) * M * K, yo = ravel(yi, yb) * K * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          double a = tx ? x.v[xo + k * M + m] : x.v[xo + m * K + k];
          double c = ty ? y.v[yo + n * K + k] : y.v[yo + k * N + n];
          acc += a * c;
        }
        o.v[(b * M + m) * N + n] = acc * alpha;
      }
  }
  return o;
}

HT ref_softmax(const HT& x, int64_t axis) {
  HT o = x;
  int64_t r = static_cast<int64_t>(x.dims.size());
  if (r == 0) {
    o.v = {1.0};
    return o;
  }
  if (axis < 0) axis += r;
  int64_t n = x.dims[axis];
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto idx = unravel(i, x.dims);
    double mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      idx[axis] = j;
      mx = std::max(mx, x.v[ravel(idx, x.dims)]);
    }
    double s = 0;
    for (int64_t j = 0; j < n; ++j) {
      idx[axis] = j;
      s += std::exp(x.v[ravel(idx, x.dims)] - mx);
    }
    o.v[i] = std::exp(x.v[i] - mx) / s;
  }
  return o;
}

HT ref_transpose(const HT& x, const std::vector<int64_t>& perm) {
  HT o;
  o.dt = x.dt;
  for (int64_t p : perm) o.dims.push_back(x.dims[p]);
  o.v.resize(x.v.size());
  for (int64_t i = 0; i < o.numel(); ++i) {
    auto oi = unravel(i, o.dims);
    std::vector<int64_t> xi(x.dims.size());
    for (size_t k = 0; k < perm.size(); ++k) xi[perm[k]] = oi[k];
    o.v[i] = x.v[ravel(xi, x.dims)];
  }
  return o;
}

HT with_dims(HT t, const std::vector<int64_t>& d) {
  t.dims = d;
  return t;
}

// Python's slice.indices(): the index list along one axis.
std::vector<int64_t> py_slice(int64_t start, int64_t stop, int64_t step, int64_t len) {
  auto adj = [&](int64_t v, bool is_start) {
    (void)is_start;
    if (v < 0) {
      v += len;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= len) {
      v = step < 0 ? len - 1 : len;
    }
    return v;
  };
  int64_t s = adj(start, true), e = adj(stop, false);
  std::vector<int64_t> r;
  if (step > 0)
    for (int64_t i = s; i < e; i += step) r.push_back(i);
  else
    for (int64_t i = s; i > e; i += step) r.push_back(i);
  return r;
}

HT ref_slice(const HT& x, const std::vector<int64_t>& axes, const std::vector<int64_t>& st,
             const std::vector<int64_t>& en, const std::vector<int64_t>& steps) {
  size_t r = x.dims.size();
  std::vector<std::vector<int64_t>> sel(r);
  for (size_t k = 0; k < r; ++k)
    for (int64_t i = 0; i < x.dims[k]; ++i) sel[k].push_back(i);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + static_cast<int64_t>(r) : axes[i];
    sel[a] = py_slice(st[i], en[i], steps[i], x.dims[a]);
  }
  HT o;
  o.dt = x.dt;
  for (auto& s : sel) o.dims.push_back(static_cast<int64_t>(s.size()));
  for (int64_t i = 0; i < o.numel(); ++i) {
    auto oi = unravel(i, o.dims);
    std::vector<int64_t> xi(r);
    for (size_t k = 0; k < r; ++k) xi[k] = sel[k][oi[k]];
    o.v.push_back(x.v[ravel(xi, x.dims)]);
  }
  return o;
}

HT ref_concat(const std::vector<HT>& xs, int64_t axis) {
  HT o;
  o.dt = xs[0].dt;
  o.dims = xs[0].dims;
  int64_t r = static_cast<int64_t>(o.dims.size());
  if (axis < 0) axis += r;
  o.dims[axis] = 0;
  for (auto& x : xs) o.dims[axis] += x.dims[axis];
  o.v.resize(static_cast<size_t>(o.numel()));
  for (int64_t i = 0; i < o.numel(); ++i) {
    auto oi = unravel(i, o.dims);
    int64_t p = oi[axis];
    size_t k = 0;
    while (p >= xs[k].dims[axis]) p -= xs[k++].dims[axis];
    oi[axis] = p;
    o.v[i] = xs[k].v[ravel(oi, xs[k].dims)];
  }
  return o;
}

// Broadcast x (aligned right) to `od`.
HT ref_broadcast(const HT& x, const std::vector<int64_t>& od) {
  HT o;
  o.dt = x.dt;
  o.dims = od;
  size_t lead = od.size() - x.dims.size();
  for (int64_t i = 0; i < o.numel(); ++i) {
    auto oi = unravel(i, od);
    std::vector<int64_t> xi(x.dims.size());
    for (size_t k = 0; k < x.dims.size(); ++k) xi[k] = x.dims[k] == 1 ? 0 : oi[k + lead];
    o.v.push_back(x.v[ravel(xi, x.dims)]);
  }
  return o;
}

HT ref_tile(const HT& x, std::vector<int64_t> rep) {
  std::vector<int64_t> xd = x.dims;
  while (rep.size() < xd.size()) rep.insert(rep.begin(), 1);
  while (xd.size() < rep.size()) xd.insert(xd.begin(), 1);
  HT o;
  o.dt = x.dt;
  for (size_t k = 0; k < xd.size(); ++k) o.dims.push_back(xd[k] * rep[k]);
  for (int64_t i = 0; i < o.numel(); ++i) {
    auto oi = unravel(i, o.dims);
    for (size_t k = 0; k < xd.size(); ++k) oi[k] %= xd[k];
    o.v.push_back(x.v[ravel(oi, xd)]);
  }
  return o;
}

// Reductions with double accumulation. kind: 0 mean, 1 sum, 2 max, 3 min, 4 prod.
HT ref_reduce(const HT& x, std::vector<bool> red, bool keep, int kind, DType out_dt,
              bool rank0_1d) {
  HT o;
  o.dt = out_dt;
  std::vector<int64_t> full;  // keep-dims shape
  for (size_t k = 0; k < x.dims.size(); ++k) full.push_back(red[k] ? 1 : x.dims[k]);
  int64_t n = prod(full);
  std::vector<double> acc(static_cast<size_t>(n), kind == 2   ? -INFINITY
                                                  : kind == 3 ? INFINITY
                                                  : kind == 4 ? 1
                                                              : 0);
  int64_t cnt = 1;
  for (size_t k = 0; k < x.dims.size(); ++k)
    if (red[k]) cnt *= x.dims[k];
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto xi = unravel(i, x.dims);
    for (size_t k = 0; k < xi.size(); ++k)
      if (red[k]) xi[k] = 0;
    int64_t j = ravel(xi, full);
    double v = x.v[i];
    switch (kind) {
      case 0:
      case 1: acc[j] += v; break;
      case 2: acc[j] = std::max(acc[j], v); break;
      case 3: acc[j] = std::min(acc[j], v); break;
      case 4: acc[j] *= v; break;
    }
  }
  if (kind == 0)
    for (auto& a : acc) a /= static_cast<double>(cnt);
  if (out_dt == DType::Float32)
    for (auto& a : acc) a = static_cast<float>(a);
  o.v = acc;
  for (size_t k = 0; k < x.dims.size(); ++k) {
    if (!red[k])
      o.dims.push_back(x.dims[k]);
    else if (keep)
      o.dims.push_back(1);
  }
  if (o.dims.empty() && !x.dims.empty() && rank0_1d) o.dims = {1};
  return o;
}

// ------------------------------------------------------------ tests

std::vector<int64_t> rand_perm(size_t r) {
  std::vector<int64_t> p(r);
  for (size_t i = 0; i < r; ++i) p[i] = static_cast<int64_t>(i);
  std::shuffle(p.begin(), p.end(), shape_rng().g);
  return p;
}

}  // namespace pif::test
