// check_ref_shape_family: randomised checks of the reference matmul, shape
// and reduce op families against naive implementations written here.
//
//   check_ref_shape_family [--seed N] [--threads N] [--verbose]
//
// Every case builds a tiny in-memory Program (legacy form: named slots and
// attributes; PIR form: positional operands, constant operands as folded
// Value::constant tensors, builtin.combine / builtin.split plumbing) and runs
// it through pif::Executor. Results are compared with plain-loop reference
// code (double accumulation for matmul / softmax / reductions). Prints cases
// and max error per op; exit status 1 when any case failed.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/executor.h"

using namespace pif;

namespace {

// ------------------------------------------------------------ host tensors

struct HT {
  DType dt = DType::Float32;
  std::vector<int64_t> dims;
  std::vector<double> v;  // values (exact for the small integers used here)
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

std::string dstr(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

int64_t numel_of(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

std::vector<int64_t> unravel(int64_t i, const std::vector<int64_t>& d) {
  std::vector<int64_t> idx(d.size());
  for (size_t k = d.size(); k-- > 0;) {
    idx[k] = d[k] ? i % d[k] : 0;
    if (d[k]) i /= d[k];
  }
  return idx;
}

int64_t ravel(const std::vector<int64_t>& idx, const std::vector<int64_t>& d) {
  int64_t o = 0;
  for (size_t k = 0; k < d.size(); ++k) o = o * d[k] + idx[k];
  return o;
}

std::vector<uint8_t> to_bytes(const HT& t) {
  int64_t n = t.numel();
  std::vector<uint8_t> b(static_cast<size_t>(n) * dtype_size(t.dt));
  for (int64_t i = 0; i < n; ++i) {
    double x = t.v[i];
    switch (t.dt) {
      case DType::Float32: {
        float f = static_cast<float>(x);
        std::memcpy(&b[i * 4], &f, 4);
        break;
      }
      case DType::Float64: std::memcpy(&b[i * 8], &x, 8); break;
      case DType::Int32: {
        int32_t q = static_cast<int32_t>(x);
        std::memcpy(&b[i * 4], &q, 4);
        break;
      }
      case DType::Int64: {
        // Saturate: the INT64_MAX-like bounds used by slice tests are not
        // exact doubles.
        const int64_t big = std::numeric_limits<int64_t>::max();
        int64_t q = x >= 9.2e18 ? big : x <= -9.2e18 ? -big : static_cast<int64_t>(x);
        std::memcpy(&b[i * 8], &q, 8);
        break;
      }
      case DType::Int16: {
        int16_t q = static_cast<int16_t>(x);
        std::memcpy(&b[i * 2], &q, 2);
        break;
      }
      case DType::Int8: {
        int8_t q = static_cast<int8_t>(x);
        b[i] = static_cast<uint8_t>(q);
        break;
      }
      case DType::UInt8: b[i] = static_cast<uint8_t>(x); break;
      case DType::Bool: b[i] = x != 0; break;
      default: throw std::runtime_error("to_bytes: dtype");
    }
  }
  return b;
}

double half_bits_to_double(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 0x1F, m = h & 0x3FF;
  double v;
  if (e == 0)
    v = std::ldexp(m, -24);
  else if (e == 31)
    v = m ? NAN : INFINITY;
  else
    v = std::ldexp(m + 1024, e - 25);
  return s ? -v : v;
}

HT from_named(const NamedTensor& nt) {
  HT t;
  t.dt = nt.dtype;
  t.dims = nt.dims;
  int64_t n = t.numel();
  t.v.resize(static_cast<size_t>(n));
  const uint8_t* b = nt.data.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (nt.dtype) {
      case DType::Float32: {
        float f;
        std::memcpy(&f, b + i * 4, 4);
        t.v[i] = f;
        break;
      }
      case DType::Float64: std::memcpy(&t.v[i], b + i * 8, 8); break;
      case DType::Int32: {
        int32_t q;
        std::memcpy(&q, b + i * 4, 4);
        t.v[i] = q;
        break;
      }
      case DType::Int64: {
        int64_t q;
        std::memcpy(&q, b + i * 8, 8);
        t.v[i] = static_cast<double>(q);
        break;
      }
      case DType::Int16: {
        int16_t q;
        std::memcpy(&q, b + i * 2, 2);
        t.v[i] = q;
        break;
      }
      case DType::Int8: t.v[i] = static_cast<int8_t>(b[i]); break;
      case DType::UInt8:
      case DType::Bool: t.v[i] = b[i]; break;
      case DType::Float16: {
        uint16_t h;
        std::memcpy(&h, b + i * 2, 2);
        t.v[i] = half_bits_to_double(h);
        break;
      }
      default: throw std::runtime_error("from_named: dtype");
    }
  }
  return t;
}

// ------------------------------------------------------------ program builder

Attr A_ints(const std::vector<int64_t>& v) {
  Attr a;
  a.kind = Attr::Kind::Int32s;
  a.ints = v;
  return a;
}
Attr A_i64s(const std::vector<int64_t>& v) {
  Attr a;
  a.kind = Attr::Kind::Int64s;
  a.ints = v;
  return a;
}
Attr A_arr(const std::vector<int64_t>& v) {
  Attr a;
  a.kind = Attr::Kind::Array;
  for (int64_t x : v) {
    Attr e;
    e.kind = Attr::Kind::Int32;
    e.i = x;
    a.items.push_back(e);
  }
  return a;
}
Attr A_i(int64_t v) {
  Attr a;
  a.kind = Attr::Kind::Int32;
  a.i = v;
  return a;
}
Attr A_b(bool v) {
  Attr a;
  a.kind = Attr::Kind::Bool;
  a.b = v;
  return a;
}
Attr A_f(double v) {
  Attr a;
  a.kind = Attr::Kind::Float32;
  a.f = v;
  return a;
}
Attr A_f64(double v) {
  Attr a;
  a.kind = Attr::Kind::Float64;
  a.f = v;
  return a;
}
Attr A_s(const std::string& v) {
  Attr a;
  a.kind = Attr::Kind::String;
  a.s = v;
  return a;
}
Attr A_dt(const std::string& v) {
  Attr a;
  a.kind = Attr::Kind::DType;
  a.s = v;
  return a;
}

using Slots = std::vector<std::pair<std::string, std::vector<ValueId>>>;
using Attrs = std::vector<std::pair<std::string, Attr>>;

struct G {
  Program p;
  std::vector<NamedTensor> feeds;
  bool pir;
  int next_id = 0;

  explicit G(bool is_pir) : pir(is_pir) {
    p.format = pir ? ProgramFormat::Pir : ProgramFormat::Legacy;
    p.blocks.resize(1);
  }
  ValueId val(const std::string& hint = "v") {
    Value v;
    v.pir_id = ++next_id;
    v.name = pir ? "" : hint + std::to_string(next_id);
    return p.add_value(v);
  }
  ValueId input(const HT& t) {
    ValueId id = val("in");
    Value& v = p.values[id];
    std::string name = "in" + std::to_string(p.inputs.size());
    if (!pir) v.name = name;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = t.dt;
    v.type.dims = t.dims;
    p.inputs.push_back(IoBinding{name, id, static_cast<int32_t>(p.inputs.size())});
    NamedTensor nt;
    nt.name = name;
    nt.dtype = t.dt;
    nt.dims = t.dims;
    nt.data = to_bytes(t);
    feeds.push_back(nt);
    return id;
  }
  ValueId cst(const HT& t) {
    ValueId id = val("c");
    auto T = std::make_shared<Tensor>();
    T->dtype = t.dt;
    T->dims = t.dims;
    T->storage = std::make_shared<std::vector<uint8_t>>(to_bytes(t));
    T->nbytes = T->storage->size();
    Value& v = p.values[id];
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = t.dt;
    v.type.dims = t.dims;
    v.constant = T;
    return id;
  }
  // Declares the legacy output type (rank 0 declarations matter).
  void declare(ValueId id, DType dt, const std::vector<int64_t>& dims) {
    p.values[id].type.kind = ValueType::Kind::DenseTensor;
    p.values[id].type.dtype = dt;
    p.values[id].type.dims = dims;
  }
  ValueId combine(const std::vector<ValueId>& elems) {
    Op op;
    op.type = "builtin.combine";
    for (ValueId e : elems) op.inputs.push_back(OpSlot{"", {e}});
    ValueId r = val();
    p.values[r].elements = elems;
    p.values[r].type.kind = ValueType::Kind::Vector;
    op.outputs.push_back(OpSlot{"", {r}});
    p.blocks[0].ops.push_back(op);
    return r;
  }
  std::vector<ValueId> unpack(ValueId vec, size_t n) {
    Op op;
    op.type = "builtin.split";
    op.inputs.push_back(OpSlot{"", {vec}});
    std::vector<ValueId> res;
    for (size_t i = 0; i < n; ++i) {
      res.push_back(val());
      op.outputs.push_back(OpSlot{"", {res.back()}});
    }
    p.blocks[0].ops.push_back(op);
    return res;
  }
  void op(const std::string& type, const Slots& ins, const Slots& outs, const Attrs& attrs) {
    Op o;
    o.type = type;
    for (const auto& s : ins) o.inputs.push_back(OpSlot{pir ? "" : s.first, s.second});
    for (const auto& s : outs) o.outputs.push_back(OpSlot{pir ? "" : s.first, s.second});
    for (const auto& a : attrs) o.attrs.push_back(NamedAttr{a.first, a.second});
    p.blocks[0].ops.push_back(o);
  }
  void output(ValueId v) {
    p.outputs.push_back(IoBinding{"out" + std::to_string(p.outputs.size()), v,
                                  static_cast<int32_t>(p.outputs.size())});
  }
  std::vector<HT> run(int threads) {
    LoadedModel m;
    m.program_file = "<memory>";
    m.program = p;
    auto sp = std::make_shared<const LoadedModel>(std::move(m));
    Executor ex(sp);
    auto outs = ex.run(feeds, threads);
    std::vector<HT> r;
    for (const auto& o : outs) r.push_back(from_named(o));
    return r;
  }
};

// ------------------------------------------------------------ bookkeeping

struct Stat {
  int cases = 0, fails = 0;
  double max_err = 0;
};
std::map<std::string, Stat> g_stats;
bool g_verbose = false;
int g_threads = 4;
std::mt19937_64 rng(12345);

int64_t ri(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }
double rf(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
bool coin(double p = 0.5) { return rf(0, 1) < p; }

HT rand_t(const std::vector<int64_t>& dims, DType dt = DType::Float32, double scale = 2.0) {
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

HT ints_t(const std::vector<int64_t>& vals, DType dt = DType::Int64,
          std::vector<int64_t> dims = {-2}) {
  HT t;
  t.dt = dt;
  t.dims = dims == std::vector<int64_t>{-2}
               ? std::vector<int64_t>{static_cast<int64_t>(vals.size())}
               : dims;
  for (int64_t v : vals) t.v.push_back(static_cast<double>(v));
  return t;
}

std::vector<int64_t> rand_dims(int rank, int64_t lo = 1, int64_t hi = 5) {
  std::vector<int64_t> d(static_cast<size_t>(rank));
  for (auto& x : d) x = ri(lo, hi);
  return d;
}

// Compares; float error is |a-b| / max(1, |b|); integers must match exactly.
void check(const std::string& op, const std::string& what, const HT& got, const HT& want,
           double tol = 1e-5) {
  Stat& s = g_stats[op];
  ++s.cases;
  std::string err;
  double e = 0;
  if (got.dt != want.dt) {
    err = std::string("dtype ") + dtype_name(got.dt) + " != " + dtype_name(want.dt);
  } else if (got.dims != want.dims) {
    err = "dims " + dstr(got.dims) + " != " + dstr(want.dims);
  } else {
    bool is_f = want.dt == DType::Float32 || want.dt == DType::Float64 || want.dt == DType::Float16;
    for (size_t i = 0; i < want.v.size(); ++i) {
      double a = got.v[i], b = want.v[i];
      if (std::isnan(a) && std::isnan(b)) continue;
      double d = is_f ? std::fabs(a - b) / std::max(1.0, std::fabs(b)) : (a == b ? 0 : 1e9);
      if (!(d <= tol) || std::isnan(d)) {
        if (err.empty()) {
          std::ostringstream o;
          o << "element " << i << ": got " << a << ", want " << b;
          err = o.str();
        }
      }
      if (!std::isnan(d)) e = std::max(e, d);
    }
  }
  s.max_err = std::max(s.max_err, e);
  if (!err.empty()) {
    ++s.fails;
    std::cout << "FAIL " << op << " " << what << ": " << err << "\n";
  } else if (g_verbose) {
    std::cout << "ok   " << op << " " << what << "\n";
  }
}

void fail(const std::string& op, const std::string& what, const std::string& msg) {
  Stat& s = g_stats[op];
  ++s.cases;
  ++s.fails;
  std::cout << "FAIL " << op << " " << what << ": " << msg << "\n";
}

// Runs `build` (which returns the expected outputs) and checks every output.
void run_case(const std::string& op, const std::string& what, G& g, const std::vector<HT>& want,
              double tol = 1e-5) {
  std::vector<HT> got;
  try {
    got = g.run(g_threads);
  } catch (const std::exception& e) {
    fail(op, what, std::string("threw: ") + e.what());
    return;
  }
  if (got.size() != want.size()) {
    fail(op, what, "output count " + std::to_string(got.size()));
    return;
  }
  for (size_t i = 0; i < got.size(); ++i)
    check(op, what + (want.size() > 1 ? "#" + std::to_string(i) : ""), got[i], want[i], tol);
}

// Expects the program to fail at construction or run.
void expect_error(const std::string& op, const std::string& what, G& g) {
  Stat& s = g_stats[op];
  ++s.cases;
  try {
    g.run(g_threads);
  } catch (const ModelError&) {
    if (g_verbose) std::cout << "ok   " << op << " " << what << " (error as expected)\n";
    return;
  } catch (const std::exception& e) {
    ++s.fails;
    std::cout << "FAIL " << op << " " << what << ": threw a non-ModelError: " << e.what() << "\n";
    return;
  }
  ++s.fails;
  std::cout << "FAIL " << op << " " << what << ": no error\n";
}

// ------------------------------------------------------------ naive references

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
  int64_t B = numel_of(ob);
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
  int64_t n = numel_of(full);
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
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

void test_matmul() {
  for (int t = 0; t < 80; ++t) {
    bool pir = t % 2;
    int xr = static_cast<int>(ri(1, 4)), yr = static_cast<int>(ri(1, 4));
    if (t % 7 == 0) yr = 2;  // fold path
    int64_t M = ri(1, 13), N = ri(1, 13), K = ri(1, 40);
    bool tx = coin(), ty = coin();
    int br = std::max(xr, yr) - 2;
    std::vector<int64_t> ob = rand_dims(std::max(br, 0), 1, 4);
    auto batch_for = [&](int r) {
      std::vector<int64_t> b;
      for (int i = 0; i < r - 2; ++i) {
        int64_t d = ob[ob.size() - (r - 2) + i];
        b.push_back(coin(0.25) ? 1 : d);
      }
      return b;
    };
    std::vector<int64_t> xd = batch_for(xr), yd = batch_for(yr);
    if (xr == 1)
      xd = {K};
    else if (tx) {
      xd.push_back(K);
      xd.push_back(M);
    } else {
      xd.push_back(M);
      xd.push_back(K);
    }
    if (yr == 1)
      yd = {K};
    else if (ty) {
      yd.push_back(N);
      yd.push_back(K);
    } else {
      yd.push_back(K);
      yd.push_back(N);
    }
    HT x = rand_t(xd), y = rand_t(yd);
    G g(pir);
    ValueId a = g.input(x), b = coin(0.3) ? g.cst(y) : g.input(y), o = g.val();
    if (pir)
      g.op("pd_op.matmul", {{"", {a}}, {"", {b}}}, {{"", {o}}},
           {{"transpose_x", A_b(tx)}, {"transpose_y", A_b(ty)}});
    else
      g.op("matmul_v2", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}},
           {{"trans_x", A_b(tx)}, {"trans_y", A_b(ty)}});
    g.output(o);
    run_case(pir ? "pd_op.matmul" : "matmul_v2",
             "x" + dstr(xd) + " y" + dstr(yd) + (tx ? " tx" : "") + (ty ? " ty" : ""), g,
             {ref_matmul(x, y, tx, ty, 1.0, !pir)}, 1e-4);
  }
  // Old matmul with alpha; legacy 1-D . 1-D is [1] (or 0-D when declared so).
  for (int t = 0; t < 30; ++t) {
    int xr = static_cast<int>(ri(1, 3)), yr = static_cast<int>(ri(1, 3));
    if (t < 3) xr = yr = 1;
    int64_t M = ri(1, 9), N = ri(1, 9), K = ri(1, 20);
    bool tx = coin(), ty = coin();
    std::vector<int64_t> ob = rand_dims(std::max(xr, yr) - 2 > 0 ? std::max(xr, yr) - 2 : 0, 1, 3);
    std::vector<int64_t> xd, yd;
    for (int i = 0; i < xr - 2; ++i) xd.push_back(ob[ob.size() - (xr - 2) + i]);
    for (int i = 0; i < yr - 2; ++i) yd.push_back(ob[ob.size() - (yr - 2) + i]);
    if (xr == 1)
      xd = {K};
    else if (tx) {
      xd.push_back(K);
      xd.push_back(M);
    } else {
      xd.push_back(M);
      xd.push_back(K);
    }
    if (yr == 1)
      yd = {K};
    else if (ty) {
      yd.push_back(N);
      yd.push_back(K);
    } else {
      yd.push_back(K);
      yd.push_back(N);
    }
    HT x = rand_t(xd), y = rand_t(yd);
    double alpha = rf(-2, 2);
    G g(false);
    ValueId a = g.input(x), b = g.input(y), o = g.val();
    bool decl0 = t == 1;
    if (decl0) g.declare(o, DType::Float32, {});
    g.op("matmul", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}},
         {{"transpose_X", A_b(tx)}, {"transpose_Y", A_b(ty)}, {"alpha", A_f(alpha)}});
    g.output(o);
    HT want = ref_matmul(x, y, tx, ty, static_cast<float>(alpha), !decl0);
    run_case("matmul(v1)", "x" + dstr(xd) + " y" + dstr(yd), g, {want}, 1e-4);
  }
  // mul.
  for (int t = 0; t < 30; ++t) {
    int xr = static_cast<int>(ri(2, 4)), yr = static_cast<int>(ri(2, 3));
    int64_t xn = ri(1, xr - 1), yn = ri(1, yr - 1);
    std::vector<int64_t> xd = rand_dims(xr, 1, 4), yd = rand_dims(yr, 1, 4);
    // Make the K sides agree: Y's leading dims = X's trailing dims product.
    int64_t K = numel_of(std::vector<int64_t>(xd.begin() + xn, xd.end()));
    std::vector<int64_t> ylead(static_cast<size_t>(yn), 1);
    ylead[0] = K;
    std::vector<int64_t> yd2 = ylead;
    yd2.insert(yd2.end(), yd.begin() + yn, yd.end());
    HT x = rand_t(xd), y = rand_t(yd2);
    G g(false);
    ValueId a = g.input(x), b = g.cst(y), o = g.val();
    g.op("mul", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}},
         {{"x_num_col_dims", A_i(xn)}, {"y_num_col_dims", A_i(yn)}});
    g.output(o);
    int64_t M = numel_of(std::vector<int64_t>(xd.begin(), xd.begin() + xn));
    int64_t N = numel_of(std::vector<int64_t>(yd2.begin() + yn, yd2.end()));
    HT want = ref_matmul(with_dims(x, {M, K}), with_dims(y, {K, N}), false, false, 1.0, true);
    std::vector<int64_t> od(xd.begin(), xd.begin() + xn);
    od.insert(od.end(), yd2.begin() + yn, yd2.end());
    want.dims = od;
    run_case("mul",
             "x" + dstr(xd) + " y" + dstr(yd2) + " xn=" + std::to_string(xn) +
                 " yn=" + std::to_string(yn),
             g, {want}, 1e-4);
  }
  {  // mismatched K must fail cleanly
    G g(false);
    ValueId a = g.input(rand_t({2, 3})), b = g.input(rand_t({4, 5})), o = g.val();
    g.op("matmul_v2", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}}, {});
    g.output(o);
    expect_error("matmul_v2", "K mismatch", g);
  }
}

void test_softmax() {
  for (int t = 0; t < 50; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(0, 4));
    auto d = rand_dims(r, 1, 7);
    if (t % 10 == 3) {
      d = {3, 1000};
      r = 2;
    }
    HT x = rand_t(d, DType::Float32, t % 5 == 0 ? 80.0 : 3.0);  // large logits: stability
    int64_t axis = r ? ri(-r, r - 1) : -1;
    if (t % 3 == 0) axis = -1;
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    g.op(pir ? "pd_op.softmax" : "softmax", {{"X", {a}}}, {{"Out", {o}}}, {{"axis", A_i(axis)}});
    g.output(o);
    run_case(pir ? "pd_op.softmax" : "softmax", dstr(d) + " axis " + std::to_string(axis), g,
             {ref_softmax(x, axis)}, 1e-5);
  }
}

// A random target shape for `d` using 0 (copy) and -1 (infer).
std::vector<int64_t> rand_reshape_target(const std::vector<int64_t>& d,
                                         std::vector<int64_t>* resolved) {
  // Split the numel into random factors.
  int64_t n = numel_of(d);
  std::vector<int64_t> out;
  int64_t rem = n;
  int parts = static_cast<int>(ri(1, 4));
  for (int i = 0; i < parts - 1; ++i) {
    std::vector<int64_t> divs;
    for (int64_t k = 1; k <= rem; ++k)
      if (rem % k == 0) divs.push_back(k);
    int64_t f = divs[static_cast<size_t>(ri(0, static_cast<int64_t>(divs.size()) - 1))];
    out.push_back(f);
    rem /= f;
  }
  out.push_back(rem);
  *resolved = out;
  std::vector<int64_t> target = out;
  for (size_t i = 0; i < target.size(); ++i)
    if (i < d.size() && d[i] == target[i] && coin(0.4)) target[i] = 0;
  size_t m = static_cast<size_t>(ri(0, static_cast<int64_t>(target.size()) - 1));
  if (coin(0.6) && target[m] != 0) target[m] = -1;
  return target;
}

void test_reshape() {
  for (int t = 0; t < 60; ++t) {
    int mode =
        t % 5;  // 0 attr, 1 Shape tensor, 2 ShapeTensor list, 3 PIR const, 4 PIR combine of 0-D
    bool pir = mode >= 3;
    auto d = rand_dims(static_cast<int>(ri(1, 4)), 1, 6);
    std::vector<int64_t> resolved;
    auto target = rand_reshape_target(d, &resolved);
    DType dt = t % 4 == 0 ? DType::Int64 : DType::Float32;
    HT x = rand_t(d, dt);
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    std::string what = dstr(d) + " -> " + dstr(target);
    if (mode == 0) {
      g.op("reshape2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"shape", A_ints(target)}});
    } else if (mode == 1) {
      g.op("reshape2", {{"X", {a}}, {"Shape", {g.input(ints_t(target, DType::Int32))}}},
           {{"Out", {o}}}, {{"shape", A_ints(std::vector<int64_t>(target.size(), 7))}});
    } else if (mode == 2) {
      std::vector<ValueId> list;
      for (int64_t v : target) list.push_back(g.cst(ints_t({v}, DType::Int32)));
      g.op("reshape2", {{"X", {a}}, {"ShapeTensor", list}}, {{"Out", {o}}},
           {{"shape", A_ints(std::vector<int64_t>(target.size(), -1))}});
    } else if (mode == 3) {
      g.op("pd_op.reshape", {{"", {a}}, {"", {g.cst(ints_t(target))}}}, {{"", {o}}}, {});
    } else {
      std::vector<ValueId> list;
      for (int64_t v : target) list.push_back(g.input(ints_t({v}, DType::Int64, {})));
      g.op("pd_op.reshape", {{"", {a}}, {"", {g.combine(list)}}}, {{"", {o}}}, {});
    }
    g.output(o);
    run_case(pir ? "pd_op.reshape" : "reshape2", what, g, {with_dims(x, resolved)});
  }
  {
    G g(false);
    ValueId a = g.input(rand_t({2, 3})), o = g.val();
    g.op("reshape2", {{"X", {a}}}, {{"Out", {o}}}, {{"shape", A_ints({4, -1})}});
    g.output(o);
    expect_error("reshape2", "bad numel", g);
  }
}

void test_transpose() {
  for (int t = 0; t < 60; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(1, 5));
    auto d = rand_dims(r, 1, 6);
    if (t % 10 == 4) d = {37, 45};
    if (t % 10 == 8) d = {3, 33, 70};
    if (t % 10 == 9) d = {2, 3, 40, 5, 36};
    r = static_cast<int>(d.size());
    DType dts[] = {DType::Float32, DType::Int64, DType::UInt8, DType::Int16};
    DType dt = dts[t % 4];
    HT x = rand_t(d, dt);
    auto perm = rand_perm(static_cast<size_t>(r));
    std::vector<int64_t> perm_attr = perm;
    if (coin(0.3))
      for (auto& p : perm_attr)
        if (coin()) p -= r;  // negative axes
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (pir)
      g.op("pd_op.transpose", {{"", {a}}}, {{"", {o}}}, {{"perm", A_arr(perm_attr)}});
    else
      g.op("transpose2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"axis", A_ints(perm_attr)}});
    g.output(o);
    run_case(pir ? "pd_op.transpose" : "transpose2",
             dstr(d) + " perm " + dstr(perm) + " " + dtype_name(dt), g, {ref_transpose(x, perm)});
  }
}

void test_flatten_squeeze() {
  for (int t = 0; t < 40; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(0, 5));
    auto d = rand_dims(r, 1, 4);
    HT x = rand_t(d);
    std::vector<int64_t> od;
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (r == 0) {
      od = {1};
      g.op(pir ? "pd_op.flatten" : "flatten_contiguous_range", {{"X", {a}}}, {{"Out", {o}}},
           {{"start_axis", A_i(0)}, {"stop_axis", A_i(-1)}});
    } else {
      int64_t s = ri(0, r - 1), e = ri(s, r - 1);
      od.assign(d.begin(), d.begin() + s);
      od.push_back(numel_of(std::vector<int64_t>(d.begin() + s, d.begin() + e + 1)));
      od.insert(od.end(), d.begin() + e + 1, d.end());
      int64_t sa = coin() ? s - r : s, ea = coin() ? e - r : e;
      g.op(pir ? "pd_op.flatten" : "flatten_contiguous_range", {{"X", {a}}}, {{"Out", {o}}},
           {{"start_axis", A_i(sa)}, {"stop_axis", A_i(ea)}});
    }
    g.output(o);
    run_case(pir ? "pd_op.flatten" : "flatten_contiguous_range", dstr(d) + "->" + dstr(od), g,
             {with_dims(x, od)});
  }
  for (int t = 0; t < 20; ++t) {
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 4);
    int64_t axis = ri(0, r);
    HT x = rand_t(d);
    G g(false);
    ValueId a = g.input(x), o = g.val();
    g.op("flatten2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}}, {{"axis", A_i(axis)}});
    g.output(o);
    std::vector<int64_t> od = {numel_of(std::vector<int64_t>(d.begin(), d.begin() + axis)),
                               numel_of(std::vector<int64_t>(d.begin() + axis, d.end()))};
    run_case("flatten2", dstr(d) + " axis " + std::to_string(axis), g, {with_dims(x, od)});
  }
  // squeeze
  for (int t = 0; t < 40; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(1, 5));
    auto d = rand_dims(r, 1, 3);
    if (t % 8 == 0) d = std::vector<int64_t>(static_cast<size_t>(r), 1);  // all ones
    HT x = rand_t(d);
    std::vector<int64_t> axes;
    if (coin(0.8))
      for (int k = 0; k < r; ++k)
        if (coin()) axes.push_back(coin() ? k - r : k);
    std::vector<bool> drop(static_cast<size_t>(r), false);
    if (axes.empty())
      for (int k = 0; k < r; ++k) drop[k] = d[k] == 1;
    for (int64_t a : axes) {
      int64_t k = a < 0 ? a + r : a;
      if (d[k] == 1) drop[k] = true;
    }
    std::vector<int64_t> od;
    for (int k = 0; k < r; ++k)
      if (!drop[k]) od.push_back(d[k]);
    if (od.empty() && !pir) od = {1};
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (pir)
      g.op("pd_op.squeeze", {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}}, {});
    else
      g.op("squeeze2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"axes", A_ints(axes)}});
    g.output(o);
    run_case(pir ? "pd_op.squeeze" : "squeeze2", dstr(d) + " axes " + dstr(axes), g,
             {with_dims(x, od)});
  }
  // unsqueeze: expected dims by inserting sorted normalised positions when
  // the axes are non-negative and distinct (numpy's rule); negative single axes.
  for (int t = 0; t < 40; ++t) {
    int mode = t % 3;  // 0 attr, 1 AxesTensor, 2 PIR operand
    int r = static_cast<int>(ri(0, 4));
    auto d = rand_dims(r, 2, 4);
    HT x = rand_t(d);
    std::vector<int64_t> axes, od;
    if (coin(0.3)) {
      int64_t a = ri(-(r + 1), r);
      axes = {a};
      int64_t p = a < 0 ? a + r + 1 : a;
      od = d;
      od.insert(od.begin() + p, 1);
    } else {
      int n = static_cast<int>(ri(1, 3));
      int total = r + n;
      std::vector<int64_t> pos = rand_perm(static_cast<size_t>(total));
      pos.resize(static_cast<size_t>(n));
      axes = pos;  // distinct final positions, in random order
      std::vector<bool> ins(static_cast<size_t>(total), false);
      for (int64_t p : pos) ins[p] = true;
      // Paddle inserts one at a time; for distinct final positions given in
      // arbitrary order that equals numpy's expand_dims only if applied in
      // ascending order, so sort.
      std::sort(axes.begin(), axes.end());
      size_t k = 0;
      for (int i = 0; i < total; ++i) od.push_back(ins[i] ? 1 : d[k++]);
    }
    G g(mode == 2);
    ValueId a = g.input(x), o = g.val();
    if (mode == 0)
      g.op("unsqueeze2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"axes", A_ints(axes)}});
    else if (mode == 1)
      g.op("unsqueeze2", {{"X", {a}}, {"AxesTensor", {g.cst(ints_t(axes, DType::Int32))}}},
           {{"Out", {o}}}, {{"axes", A_ints({})}});
    else
      g.op("pd_op.unsqueeze", {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}}, {});
    g.output(o);
    run_case(mode == 2 ? "pd_op.unsqueeze" : "unsqueeze2", dstr(d) + " axes " + dstr(axes), g,
             {with_dims(x, od)});
  }
}

void test_concat_split_stack() {
  for (int t = 0; t < 50; ++t) {
    int mode = t % 3;  // 0 legacy attr, 1 legacy AxisTensor, 2 PIR
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 5);
    int64_t axis = ri(-r, r - 1), ax = axis < 0 ? axis + r : axis;
    int n = static_cast<int>(ri(1, 4));
    DType dt = t % 4 == 1 ? DType::Int32 : DType::Float32;
    std::vector<HT> xs;
    for (int i = 0; i < n; ++i) {
      auto di = d;
      di[ax] = ri(0, 4);
      xs.push_back(rand_t(di, dt));
    }
    G g(mode == 2);
    std::vector<ValueId> ins;
    for (auto& x : xs) ins.push_back(g.input(x));
    ValueId o = g.val();
    if (mode == 0)
      g.op("concat", {{"X", ins}}, {{"Out", {o}}}, {{"axis", A_i(axis)}});
    else if (mode == 1)
      g.op("concat", {{"X", ins}, {"AxisTensor", {g.cst(ints_t({axis}, DType::Int32, {1}))}}},
           {{"Out", {o}}}, {{"axis", A_i(0)}});
    else
      g.op("pd_op.concat",
           {{"", {g.combine(ins)}}, {"", {g.cst(ints_t({axis}, DType::Int32, {1}))}}}, {{"", {o}}},
           {});
    g.output(o);
    run_case(mode == 2 ? "pd_op.concat" : "concat",
             std::to_string(n) + " x " + dstr(d) + " axis " + std::to_string(axis), g,
             {ref_concat(xs, axis)});
  }
  // split
  for (int t = 0; t < 50; ++t) {
    int mode = t % 5;  // 0 legacy num, 1 legacy sections(-1), 2 legacy
                       // AxisTensor+SectionsTensorList, 3 PIR split, 4 PIR split_with_num
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 4);
    int64_t axis = ri(-r, r - 1), ax = axis < 0 ? axis + r : axis;
    int n = static_cast<int>(ri(1, 4));
    std::vector<int64_t> sections;
    bool by_num = mode == 0 || mode == 4;
    if (by_num) {
      d[ax] = n * ri(1, 3);
      sections.assign(static_cast<size_t>(n), d[ax] / n);
    } else {
      int64_t tot = 0;
      for (int i = 0; i < n; ++i) {
        sections.push_back(ri(0, 3));
        tot += sections.back();
      }
      d[ax] = tot;
    }
    HT x = rand_t(d);
    std::vector<HT> want;
    int64_t off = 0;
    for (int64_t s : sections) {
      std::vector<int64_t> axes = {ax}, st = {off}, en = {off + s}, stp = {1};
      want.push_back(ref_slice(x, axes, st, en, stp));
      off += s;
    }
    std::vector<int64_t> sec_attr = sections;
    if (mode == 1 && n > 1) sec_attr[static_cast<size_t>(ri(0, n - 1))] = -1;
    G g(mode >= 3);
    ValueId a = g.input(x);
    std::vector<ValueId> outs;
    if (mode < 3) {
      for (int i = 0; i < n; ++i) outs.push_back(g.val());
      if (mode == 0)
        g.op("split", {{"X", {a}}}, {{"Out", outs}},
             {{"num", A_i(n)}, {"axis", A_i(axis)}, {"sections", A_ints({})}});
      else if (mode == 1)
        g.op("split", {{"X", {a}}}, {{"Out", outs}},
             {{"num", A_i(0)}, {"axis", A_i(axis)}, {"sections", A_ints(sec_attr)}});
      else {
        std::vector<ValueId> list;
        for (int64_t s : sections) list.push_back(g.cst(ints_t({s}, DType::Int32)));
        g.op("split",
             {{"X", {a}},
              {"AxisTensor", {g.cst(ints_t({axis}, DType::Int32))}},
              {"SectionsTensorList", list}},
             {{"Out", outs}}, {{"num", A_i(0)}, {"axis", A_i(0)}, {"sections", A_ints({})}});
      }
    } else {
      ValueId vec = g.val();
      if (mode == 3)
        g.op("pd_op.split",
             {{"", {a}},
              {"", {g.cst(ints_t(sections))}},
              {"", {g.cst(ints_t({axis}, DType::Int32, {1}))}}},
             {{"", {vec}}}, {});
      else
        g.op("pd_op.split_with_num", {{"", {a}}, {"", {g.cst(ints_t({axis}, DType::Int32, {1}))}}},
             {{"", {vec}}}, {{"num", A_i(n)}});
      outs = g.unpack(vec, static_cast<size_t>(n));
    }
    for (ValueId o : outs) g.output(o);
    const char* name = mode == 3 ? "pd_op.split" : mode == 4 ? "pd_op.split_with_num" : "split";
    run_case(name, dstr(d) + " axis " + std::to_string(axis) + " sections " + dstr(sec_attr), g,
             want);
  }
  // stack
  for (int t = 0; t < 30; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(0, 3));
    auto d = rand_dims(r, 1, 4);
    int n = static_cast<int>(ri(1, 4));
    int64_t axis = ri(-(r + 1), r), ax = axis < 0 ? axis + r + 1 : axis;
    DType dt = t % 3 == 0 ? DType::Int64 : DType::Float32;
    std::vector<HT> xs;
    std::vector<HT> us;  // unsqueezed for the concat reference
    for (int i = 0; i < n; ++i) {
      xs.push_back(rand_t(d, dt));
      auto ud = d;
      ud.insert(ud.begin() + ax, 1);
      us.push_back(with_dims(xs.back(), ud));
    }
    G g(pir);
    std::vector<ValueId> ins;
    for (auto& x : xs) ins.push_back(g.input(x));
    ValueId o = g.val();
    if (pir)
      g.op("pd_op.stack", {{"", {g.combine(ins)}}}, {{"", {o}}}, {{"axis", A_i(axis)}});
    else
      g.op("stack", {{"X", ins}}, {{"Y", {o}}}, {{"axis", A_i(axis)}});
    g.output(o);
    run_case(pir ? "pd_op.stack" : "stack",
             std::to_string(n) + " x " + dstr(d) + " axis " + std::to_string(axis), g,
             {ref_concat(us, ax)});
  }
}

void test_slice() {
  const int64_t BIG = std::numeric_limits<int64_t>::max();
  auto rand_bound = [&](int64_t dim) -> int64_t {
    switch (ri(0, 6)) {
      case 0: return ri(-dim - 3, -1);
      case 1: return BIG;
      case 2: return 2147483647;
      case 3: return -BIG;
      default: return ri(0, dim + 2);
    }
  };
  for (int t = 0; t < 120; ++t) {
    int mode = t % 5;  // 0 legacy attrs, 1 legacy Starts/EndsTensor, 2 legacy tensor lists, 3 PIR,
                       // 4 strided_slice
    bool pir = mode == 3 || (mode == 4 && t % 2);
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 6);
    DType dt = t % 3 == 0 ? DType::Int64 : DType::Float32;
    HT x = rand_t(d, dt);
    std::vector<int64_t> axes = rand_perm(static_cast<size_t>(r));
    axes.resize(static_cast<size_t>(ri(1, r)));
    std::vector<int64_t> st, en, steps;
    for (int64_t a : axes) {
      st.push_back(rand_bound(d[a]));
      en.push_back(rand_bound(d[a]));
      steps.push_back(mode == 4 ? (coin() ? ri(1, 3) : -ri(1, 3)) : 1);
    }
    // decrease_axis on axes that come out with size 1 (slice only).
    HT full = ref_slice(x, axes, st, en, steps);
    std::vector<int64_t> dec;
    if (mode != 4)
      for (int64_t a : axes)
        if (full.dims[a] == 1 && coin(0.6)) dec.push_back(a);
    if (mode != 4 && t % 10 == 0) {  // x[i] on a 1-D shape-like tensor: 0-D / [1]
      x = rand_t({4}, DType::Int32);
      axes = {0};
      int64_t i0 = ri(-4, 3);
      st = {i0};
      en = {i0 == -1 ? BIG : i0 + 1};
      steps = {1};
      dec = {0};
      full = ref_slice(x, axes, st, en, steps);
    }
    std::vector<int64_t> od;
    for (int64_t k = 0; k < static_cast<int64_t>(full.dims.size()); ++k)
      if (std::find(dec.begin(), dec.end(), k) == dec.end()) od.push_back(full.dims[k]);
    if (od.empty() && !dec.empty() && !pir) od = {1};
    HT want = with_dims(full, od);
    std::vector<int64_t> axes_attr = axes;
    if (coin(0.3))
      for (auto& a : axes_attr) a -= static_cast<int64_t>(x.dims.size());
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    std::vector<int64_t> flags(axes.size(), 1);
    if (mode == 0) {
      g.op("slice", {{"Input", {a}}}, {{"Out", {o}}},
           {{"axes", A_ints(axes_attr)},
            {"starts", A_i64s(st)},
            {"ends", A_i64s(en)},
            {"decrease_axis", A_ints(dec)},
            {"infer_flags", A_ints(flags)}});
    } else if (mode == 1) {
      g.op("slice",
           {{"Input", {a}},
            {"StartsTensor", {g.input(ints_t(st))}},
            {"EndsTensor", {g.cst(ints_t(en))}}},
           {{"Out", {o}}},
           {{"axes", A_ints(axes_attr)},
            {"starts", A_ints(std::vector<int64_t>(axes.size(), 0))},
            {"ends", A_ints(std::vector<int64_t>(axes.size(), 0))},
            {"decrease_axis", A_ints(dec)},
            {"infer_flags", A_ints(std::vector<int64_t>(axes.size(), -1))}});
    } else if (mode == 2) {
      std::vector<ValueId> sl, el;
      for (int64_t v : st) sl.push_back(g.cst(ints_t({v}, DType::Int64)));
      for (int64_t v : en) el.push_back(g.input(ints_t({v}, DType::Int64)));
      g.op("slice", {{"Input", {a}}, {"StartsTensorList", sl}, {"EndsTensorList", el}},
           {{"Out", {o}}},
           {{"axes", A_ints(axes_attr)},
            {"starts", A_ints({})},
            {"ends", A_ints({})},
            {"decrease_axis", A_ints(dec)},
            {"infer_flags", A_ints(std::vector<int64_t>(axes.size(), -1))}});
    } else if (mode == 3) {
      g.op("pd_op.slice", {{"", {a}}, {"", {g.cst(ints_t(st))}}, {"", {g.cst(ints_t(en))}}},
           {{"", {o}}},
           {{"axes", A_i64s(axes_attr)},
            {"infer_flags", A_i64s(flags)},
            {"decrease_axis", A_i64s(dec)}});
    } else if (pir) {
      g.op("pd_op.strided_slice",
           {{"", {a}},
            {"", {g.cst(ints_t(st))}},
            {"", {g.cst(ints_t(en))}},
            {"", {g.cst(ints_t(steps))}}},
           {{"", {o}}}, {{"axes", A_i64s(axes_attr)}});
    } else {
      g.op("strided_slice", {{"Input", {a}}}, {{"Out", {o}}},
           {{"axes", A_ints(axes_attr)},
            {"starts", A_i64s(st)},
            {"ends", A_i64s(en)},
            {"strides", A_i64s(steps)},
            {"decrease_axis", A_ints({})},
            {"infer_flags", A_ints(flags)}});
    }
    g.output(o);
    std::string name = mode == 4 ? (pir ? "pd_op.strided_slice" : "strided_slice")
                                 : (pir ? "pd_op.slice" : "slice");
    run_case(name,
             dstr(x.dims) + " axes " + dstr(axes) + " st " + dstr(st) + " en " + dstr(en) +
                 " step " + dstr(steps) + " dec " + dstr(dec),
             g, {want});
  }
  {  // decreasing an axis of size != 1 fails
    G g(false);
    ValueId a = g.input(rand_t({4, 3})), o = g.val();
    g.op("slice", {{"Input", {a}}}, {{"Out", {o}}},
         {{"axes", A_ints({0})},
          {"starts", A_ints({0})},
          {"ends", A_ints({2})},
          {"decrease_axis", A_ints({0})}});
    g.output(o);
    expect_error("slice", "decrease of size 2", g);
  }
  {  // legacy output declared 0-D: result is 0-D
    G g(false);
    HT x = rand_t({4}, DType::Int32);
    ValueId a = g.input(x), o = g.val();
    g.declare(o, DType::Int32, {});
    g.op("slice", {{"Input", {a}}}, {{"Out", {o}}},
         {{"axes", A_ints({0})},
          {"starts", A_ints({2})},
          {"ends", A_ints({3})},
          {"decrease_axis", A_ints({0})}});
    g.output(o);
    HT want = with_dims(ref_slice(x, {0}, {2}, {3}, {1}), {});
    run_case("slice", "declared 0-D", g, {want});
  }
}

void test_shape_fill_cast() {
  for (int t = 0; t < 20; ++t) {
    int mode = t % 3;  // shape, pd_op.shape, pd_op.shape64
    auto d = rand_dims(static_cast<int>(ri(0, 5)), 0, 6);
    HT x = rand_t(d);
    G g(mode > 0);
    ValueId a = g.input(x), o = g.val();
    const char* type = mode == 0 ? "shape" : mode == 1 ? "pd_op.shape" : "pd_op.shape64";
    g.op(type, {{"Input", {a}}}, {{"Out", {o}}}, {});
    g.output(o);
    run_case(type, dstr(d), g, {ints_t(d, mode == 2 ? DType::Int64 : DType::Int32)});
  }
  // fill_constant / full
  struct DT {
    DType dt;
    int code;
    const char* name;
  };
  const DT dts[] = {{DType::Float32, 5, "float32"}, {DType::Int32, 2, "int32"},
                    {DType::Int64, 3, "int64"},     {DType::Float64, 6, "float64"},
                    {DType::Bool, 0, "bool"},       {DType::UInt8, 20, "uint8"}};
  for (int t = 0; t < 40; ++t) {
    const DT& dt = dts[t % 6];
    auto d = rand_dims(static_cast<int>(ri(0, 3)), 0, 4);
    double val = dt.dt == DType::Bool    ? static_cast<double>(ri(0, 1))
                 : dt.dt == DType::UInt8 ? static_cast<double>(ri(0, 255))
                 : (dt.dt == DType::Float32 || dt.dt == DType::Float64)
                     ? static_cast<float>(rf(-5, 5))
                     : static_cast<double>(ri(-1000, 1000));
    int mode = t % 4;  // 0 legacy attrs, 1 legacy str_value + ShapeTensor, 2 legacy
                       // ShapeTensorList, 3 pd_op.full
    G g(mode == 3);
    ValueId o = g.val();
    if (mode == 0) {
      g.op("fill_constant", {}, {{"Out", {o}}},
           {{"dtype", A_i(dt.code)},
            {"shape", A_i64s(d)},
            {"value", A_f(val)},
            {"str_value", A_s("")}});
    } else if (mode == 1) {
      std::ostringstream s;
      s.precision(17);
      s << val;
      g.op("fill_constant", {{"ShapeTensor", {g.cst(ints_t(d, DType::Int64))}}}, {{"Out", {o}}},
           {{"dtype", A_i(dt.code)},
            {"shape", A_i64s({})},
            {"value", A_f(0)},
            {"str_value", A_s(s.str())}});
    } else if (mode == 2) {
      std::vector<ValueId> list;
      for (int64_t v : d) list.push_back(g.input(ints_t({v}, DType::Int32)));
      g.op("fill_constant", {{"ShapeTensorList", list}}, {{"Out", {o}}},
           {{"dtype", A_i(dt.code)}, {"shape", A_i64s({})}, {"value", A_f(val)}});
    } else {
      g.op("pd_op.full", {}, {{"", {o}}},
           {{"shape", A_i64s(d)}, {"value", A_f64(val)}, {"dtype", A_dt(dt.name)}});
    }
    g.output(o);
    HT want;
    want.dt = dt.dt;
    want.dims = d;
    want.v.assign(static_cast<size_t>(numel_of(d)), val);
    if (mode == 2 && d.empty()) {
      // no list entries: falls back to the shape attribute ([] -> 0-D)
    }
    run_case(mode == 3 ? "pd_op.full" : "fill_constant",
             std::string(dt.name) + " " + dstr(d) + " mode " + std::to_string(mode), g, {want});
  }
  {  // big int64 via str_value
    G g(false);
    ValueId o = g.val();
    g.op("fill_constant", {}, {{"Out", {o}}},
         {{"dtype", A_i(3)},
          {"shape", A_i64s({2})},
          {"value", A_f(0)},
          {"str_value", A_s("9007199254740993")}});
    g.output(o);
    std::vector<HT> got;
    Stat& s = g_stats["fill_constant"];
    ++s.cases;
    try {
      LoadedModel m;
      m.program = g.p;
      Executor ex(std::make_shared<const LoadedModel>(std::move(m)));
      auto r = ex.run({}, 1);
      int64_t v;
      std::memcpy(&v, r[0].data.data(), 8);
      if (v != 9007199254740993LL) {
        ++s.fails;
        std::cout << "FAIL fill_constant big str_value: " << v << "\n";
      }
    } catch (const std::exception& e) {
      ++s.fails;
      std::cout << "FAIL fill_constant big str_value threw " << e.what() << "\n";
    }
  }
  // full_int_array
  for (int t = 0; t < 10; ++t) {
    std::vector<int64_t> vals;
    for (int i = 0; i < ri(0, 5); ++i) vals.push_back(ri(-100, 100));
    bool i32 = t % 2;
    G g(true);
    ValueId o = g.val();
    g.op("pd_op.full_int_array", {}, {{"", {o}}},
         {{"value", A_arr(vals)}, {"dtype", A_dt(i32 ? "int32" : "int64")}});
    g.output(o);
    run_case("pd_op.full_int_array", dstr(vals), g,
             {ints_t(vals, i32 ? DType::Int32 : DType::Int64)});
  }
  // full_like / fill_any_like
  for (int t = 0; t < 20; ++t) {
    int mode = t % 3;  // 0 fill_any_like dtype -1, 1 fill_any_like dtype int64, 2 pd_op.full_like
                       // value operand
    auto d = rand_dims(static_cast<int>(ri(0, 3)), 1, 4);
    HT x = rand_t(d);
    double val = static_cast<float>(rf(-3, 3));
    if (mode == 1) val = std::trunc(val);
    G g(mode == 2);
    ValueId a = g.input(x), o = g.val();
    HT want;
    want.dims = d;
    want.dt = mode == 1 ? DType::Int64 : DType::Float32;
    want.v.assign(static_cast<size_t>(numel_of(d)), val);
    if (mode == 0)
      g.op("fill_any_like", {{"X", {a}}}, {{"Out", {o}}},
           {{"value", A_f(val)}, {"dtype", A_i(-1)}});
    else if (mode == 1)
      g.op("fill_any_like", {{"X", {a}}}, {{"Out", {o}}}, {{"value", A_f(val)}, {"dtype", A_i(3)}});
    else
      g.op("pd_op.full_like", {{"", {a}}, {"", {g.cst(ints_t({0}, DType::Float32, {1}))}}},
           {{"", {o}}}, {{"dtype", A_dt("float32")}});
    if (mode == 2) want.v.assign(want.v.size(), 0.0);
    g.output(o);
    run_case(mode == 2 ? "pd_op.full_like" : "fill_any_like", dstr(d), g, {want});
  }
  // cast
  const DT cdts[] = {
      {DType::Float32, 5, "float32"}, {DType::Int32, 2, "int32"}, {DType::Int64, 3, "int64"},
      {DType::Float64, 6, "float64"}, {DType::Bool, 0, "bool"},   {DType::UInt8, 20, "uint8"},
      {DType::Int8, 21, "int8"},      {DType::Int16, 1, "int16"}, {DType::Float16, 4, "float16"}};
  for (int t = 0; t < 60; ++t) {
    const DT& from = cdts[t % 8];  // no float16 input generator
    const DT& to = cdts[static_cast<size_t>(ri(0, 8))];
    auto d = rand_dims(static_cast<int>(ri(0, 3)), 1, 5);
    HT x = rand_t(d, from.dt, 100.0);
    if (from.dt == DType::Int8 || from.dt == DType::Int16)
      for (auto& v : x.v) v = static_cast<double>(ri(-100, 100));
    bool pir = t % 2;
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (pir)
      g.op("pd_op.cast", {{"", {a}}}, {{"", {o}}}, {{"dtype", A_dt(to.name)}});
    else
      g.op("cast", {{"X", {a}}}, {{"Out", {o}}},
           {{"in_dtype", A_i(from.code)}, {"out_dtype", A_i(to.code)}});
    g.output(o);
    HT want;
    want.dt = to.dt;
    want.dims = d;
    bool src_float = from.dt == DType::Float32 || from.dt == DType::Float64;
    for (double v : x.v) {
      double w;
      switch (to.dt) {
        case DType::Bool: w = v != 0; break;
        case DType::UInt8:
          w = src_float ? std::min(255.0, std::max(0.0, std::trunc(v)))
                        : static_cast<double>(static_cast<uint8_t>(static_cast<int64_t>(v)));
          break;
        case DType::Int8:
          w = src_float ? std::min(127.0, std::max(-128.0, std::trunc(v)))
                        : static_cast<double>(static_cast<int8_t>(static_cast<int64_t>(v)));
          break;
        case DType::Int16:
        case DType::Int32:
        case DType::Int64: w = std::trunc(v); break;
        case DType::Float32: w = static_cast<float>(v); break;
        case DType::Float16: w = v; break;  // compared with a half tolerance below
        default: w = v;
      }
      want.v.push_back(w);
    }
    run_case(pir ? "pd_op.cast" : "cast", std::string(from.name) + "->" + to.name + " " + dstr(d),
             g, {want}, to.dt == DType::Float16 ? 1e-3 : 1e-7);
  }
}

void test_expand_tile() {
  for (int t = 0; t < 50; ++t) {
    int mode = t % 4;  // 0 legacy attr, 1 legacy Shape tensor, 2 legacy expand_shapes_tensor, 3 PIR
    int r = static_cast<int>(ri(0, 3));
    auto d = rand_dims(r, 1, 3);
    for (auto& x : d)
      if (coin(0.5)) x = 1;
    int lead = static_cast<int>(ri(0, 2));
    std::vector<int64_t> od = rand_dims(lead, 1, 3), target = od;
    for (int64_t x : d) {
      int64_t o = x == 1 ? ri(1, 4) : x;
      od.push_back(o);
      target.push_back(coin(0.3) ? -1 : o);
      if (target.back() == -1) od.back() = x;
    }
    HT x = rand_t(d, t % 3 == 0 ? DType::Int64 : DType::Float32);
    G g(mode == 3);
    ValueId a = g.input(x), o = g.val();
    if (mode == 0)
      g.op("expand_v2", {{"X", {a}}}, {{"Out", {o}}}, {{"shape", A_ints(target)}});
    else if (mode == 1)
      g.op("expand_v2", {{"X", {a}}, {"Shape", {g.cst(ints_t(target, DType::Int32))}}},
           {{"Out", {o}}}, {{"shape", A_ints({})}});
    else if (mode == 2) {
      std::vector<ValueId> list;
      for (int64_t v : target) list.push_back(g.input(ints_t({v}, DType::Int32)));
      g.op("expand_v2", {{"X", {a}}, {"expand_shapes_tensor", list}}, {{"Out", {o}}},
           {{"shape", A_ints(std::vector<int64_t>(target.size(), -2))}});
    } else {
      g.op("pd_op.expand", {{"", {a}}, {"", {g.cst(ints_t(target))}}}, {{"", {o}}}, {});
    }
    g.output(o);
    run_case(mode == 3 ? "pd_op.expand" : "expand_v2", dstr(d) + " -> " + dstr(target), g,
             {ref_broadcast(x, od)});
  }
  for (int t = 0; t < 40; ++t) {
    int mode = t % 4;  // 0 tile attr, 1 tile RepeatTimes, 2 pd_op.tile, 3 legacy expand
    int r = static_cast<int>(ri(mode == 3 ? 1 : 0, 3));
    auto d = rand_dims(r, 1, 3);
    std::vector<int64_t> rep = rand_dims(mode == 3 ? r : static_cast<int>(ri(0, 4)), 0, 3);
    if (coin(0.7))
      for (auto& x : rep) x = std::max<int64_t>(x, 1);
    HT x = rand_t(d);
    G g(mode == 2);
    ValueId a = g.input(x), o = g.val();
    if (mode == 0)
      g.op("tile", {{"X", {a}}}, {{"Out", {o}}}, {{"repeat_times", A_ints(rep)}});
    else if (mode == 1)
      g.op("tile", {{"X", {a}}, {"RepeatTimes", {g.cst(ints_t(rep, DType::Int32))}}},
           {{"Out", {o}}}, {{"repeat_times", A_ints({})}});
    else if (mode == 2)
      g.op("pd_op.tile", {{"", {a}}, {"", {g.cst(ints_t(rep))}}}, {{"", {o}}}, {});
    else
      g.op("expand", {{"X", {a}}}, {{"Out", {o}}}, {{"expand_times", A_ints(rep)}});
    g.output(o);
    const char* name = mode == 2 ? "pd_op.tile" : mode == 3 ? "expand" : "tile";
    run_case(name, dstr(d) + " x " + dstr(rep), g, {ref_tile(x, rep)});
  }
}

void test_gather() {
  for (int t = 0; t < 20; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(1, 3));
    auto d = rand_dims(r, 1, 5);
    int64_t axis = ri(0, r - 1);
    std::vector<int64_t> idx;
    for (int i = 0; i < ri(1, 5); ++i) idx.push_back(ri(0, d[axis] - 1));
    HT x = rand_t(d);
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    ValueId ix = g.input(ints_t(idx, t % 4 < 2 ? DType::Int64 : DType::Int32));
    if (pir)
      g.op("pd_op.gather",
           {{"", {a}}, {"", {ix}}, {"", {g.cst(ints_t({axis}, DType::Int64, {1}))}}}, {{"", {o}}},
           {});
    else
      g.op("gather", {{"X", {a}}, {"Index", {ix}}}, {{"Out", {o}}}, {{"axis", A_i(axis)}});
    g.output(o);
    std::vector<HT> parts;
    for (int64_t i : idx) parts.push_back(ref_slice(x, {axis}, {i}, {i + 1}, {1}));
    run_case(pir ? "pd_op.gather" : "gather",
             dstr(d) + " axis " + std::to_string(axis) + " idx " + dstr(idx), g,
             {ref_concat(parts, axis)});
  }
}

void test_reduce() {
  const char* legacy[] = {"reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod"};
  const char* pirn[] = {"pd_op.mean", "pd_op.sum", "pd_op.max", "pd_op.min", "pd_op.prod"};
  for (int t = 0; t < 150; ++t) {
    int kind = t % 5;
    int mode = (t / 5) % 3;  // 0 legacy dims, 1 legacy reduce_all, 2 PIR axis operand
    bool pir = mode == 2;
    int r = static_cast<int>(ri(0, 4));
    auto d = rand_dims(r, 1, 6);
    if (t % 17 == 0) d = {2, 300, 40};
    r = static_cast<int>(d.size());
    DType dt = DType::Float32;
    if (kind == 1 && t % 3 == 0) dt = t % 2 ? DType::Int64 : DType::Int32;
    if ((kind == 2 || kind == 3) && t % 4 == 0) dt = DType::Int64;
    HT x = rand_t(d, dt, kind == 4 ? 1.5 : 2.0);
    std::vector<int64_t> axes;
    for (int k = 0; k < r; ++k)
      if (coin()) axes.push_back(coin() ? k - r : k);
    bool keep = coin();
    std::vector<bool> red(static_cast<size_t>(r), false);
    if (axes.empty() || mode == 1) std::fill(red.begin(), red.end(), true);
    for (int64_t a : axes) red[a < 0 ? a + r : a] = true;
    DType odt = dt;
    if (kind == 1 && dt == DType::Int32)
      odt = pir ? DType::Int64 : DType::Int32;  // legacy: declared dtype wins
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (!pir) g.declare(o, odt, {-1});
    if (mode == 0)
      g.op(legacy[kind], {{"X", {a}}}, {{"Out", {o}}},
           {{"dim", A_ints(axes)}, {"keep_dim", A_b(keep)}, {"reduce_all", A_b(false)}});
    else if (mode == 1)
      g.op(legacy[kind], {{"X", {a}}}, {{"Out", {o}}},
           {{"dim", A_ints(axes)}, {"keep_dim", A_b(keep)}, {"reduce_all", A_b(true)}});
    else if (kind == 1)
      g.op(pirn[kind], {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}},
           {{"dtype", A_dt("undefined")}, {"keepdim", A_b(keep)}});
    else
      g.op(pirn[kind], {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}},
           {{"keepdim", A_b(keep)}});
    g.output(o);
    HT want = ref_reduce(x, red, keep, kind, odt, !pir);
    run_case(pir ? pirn[kind] : legacy[kind],
             std::string(dtype_name(dt)) + " " + dstr(d) + " axes " + dstr(axes) +
                 (keep ? " keep" : "") + (mode == 1 ? " all" : ""),
             g, {want}, kind == 4 ? 1e-4 : 2e-6);
  }
  for (int t = 0; t < 10; ++t) {
    bool pir = t % 2;
    auto d = rand_dims(static_cast<int>(ri(1, 3)), 1, 6);
    HT x = rand_t(d);
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    g.op(pir ? "pd_op.mean_all" : "mean", {{"X", {a}}}, {{"Out", {o}}}, {});
    g.output(o);
    run_case(pir ? "pd_op.mean_all" : "mean", dstr(d), g,
             {ref_reduce(x, std::vector<bool>(d.size(), true), false, 0, DType::Float32, !pir)},
             2e-6);
  }
}

// The CLIP-style class-token chain: shape64 -> slice -> stack -> expand ->
// concat -> transpose/reshape -> matmul(transpose_y) -> softmax -> mean.
void test_chain() {
  for (int t = 0; t < 6; ++t) {
    int64_t N = ri(1, 3), T = ri(2, 5), D = 4 * ri(1, 3), H = 2;
    HT x = rand_t({N, T, D}), cls = rand_t({1, 1, D});
    G g(true);
    ValueId xi = g.input(x), ci = g.cst(cls);
    ValueId shp = g.val(), n0 = g.val(), sv = g.val(), ex = g.val(), cat = g.val();
    g.op("pd_op.shape64", {{"", {xi}}}, {{"", {shp}}}, {});
    g.op("pd_op.slice", {{"", {shp}}, {"", {g.cst(ints_t({0}))}}, {"", {g.cst(ints_t({1}))}}},
         {{"", {n0}}},
         {{"axes", A_i64s({0})}, {"infer_flags", A_i64s({1})}, {"decrease_axis", A_i64s({0})}});
    ValueId m1 = g.cst(ints_t({-1}, DType::Int64, {})), m2 = g.cst(ints_t({-1}, DType::Int64, {}));
    g.op("pd_op.stack", {{"", {g.combine({n0, m1, m2})}}}, {{"", {sv}}}, {{"axis", A_i(0)}});
    g.op("pd_op.expand", {{"", {ci}}, {"", {sv}}}, {{"", {ex}}}, {});
    g.op("pd_op.concat",
         {{"", {g.combine({ex, xi})}}, {"", {g.cst(ints_t({1}, DType::Int32, {1}))}}},
         {{"", {cat}}}, {});
    // heads: [N,T+1,D] -> [N,T+1,H,D/H] -> [N,H,T+1,D/H]
    ValueId r1 = g.val(), q = g.val(), sc = g.val(), sm = g.val(), ctx = g.val(), mean = g.val();
    g.op("pd_op.reshape", {{"", {cat}}, {"", {g.cst(ints_t({0, -1, H, D / H}))}}}, {{"", {r1}}},
         {});
    g.op("pd_op.transpose", {{"", {r1}}}, {{"", {q}}}, {{"perm", A_arr({0, 2, 1, 3})}});
    g.op("pd_op.matmul", {{"", {q}}, {"", {q}}}, {{"", {sc}}},
         {{"transpose_x", A_b(false)}, {"transpose_y", A_b(true)}});
    g.op("pd_op.softmax", {{"", {sc}}}, {{"", {sm}}}, {{"axis", A_i(-1)}});
    g.op("pd_op.matmul", {{"", {sm}}, {"", {q}}}, {{"", {ctx}}},
         {{"transpose_x", A_b(false)}, {"transpose_y", A_b(false)}});
    g.op("pd_op.mean", {{"", {ctx}}, {"", {g.cst(ints_t({2}))}}}, {{"", {mean}}},
         {{"keepdim", A_b(false)}});
    g.output(mean);
    HT catr = ref_concat({ref_broadcast(cls, {N, 1, D}), x}, 1);
    HT qr = ref_transpose(with_dims(catr, {N, T + 1, H, D / H}), {0, 2, 1, 3});
    HT s = ref_matmul(qr, qr, false, true, 1.0, false);
    HT smr = ref_softmax(s, -1);
    HT cr = ref_matmul(smr, qr, false, false, 1.0, false);
    std::vector<bool> red = {false, false, true, false};
    run_case("chain(clip-like)",
             "N=" + std::to_string(N) + " T=" + std::to_string(T) + " D=" + std::to_string(D), g,
             {ref_reduce(cr, red, false, 0, DType::Float32, false)}, 1e-4);
  }
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seed" && i + 1 < argc)
      rng.seed(std::stoull(argv[++i]));
    else if (a == "--threads" && i + 1 < argc)
      g_threads = std::stoi(argv[++i]);
    else if (a == "--verbose")
      g_verbose = true;
    else {
      std::cerr << "usage: check_ref_shape_family [--seed N] [--threads N] [--verbose]\n";
      return 2;
    }
  }
  test_matmul();
  test_softmax();
  test_reshape();
  test_transpose();
  test_flatten_squeeze();
  test_concat_split_stack();
  test_slice();
  test_shape_fill_cast();
  test_expand_tile();
  test_gather();
  test_reduce();
  test_chain();
  int cases = 0, fails = 0;
  std::printf("%-26s %6s %6s %12s\n", "op", "cases", "fails", "max err");
  for (const auto& kv : g_stats) {
    std::printf("%-26s %6d %6d %12.3g\n", kv.first.c_str(), kv.second.cases, kv.second.fails,
                kv.second.max_err);
    cases += kv.second.cases;
    fails += kv.second.fails;
  }
  std::printf("total: %d cases, %d failed\n", cases, fails);
  return fails ? 1 : 0;
}
