#include "tests/util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "tests/harness.h"

namespace pif::test {

std::vector<float> Rng::vec(int64_t n, double lo, double hi) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(u(lo, hi));
  return v;
}

SuiteStream& suite_stream(const std::string& suite, uint64_t seed) {
  static std::map<std::string, std::unique_ptr<SuiteStream>> streams;
  auto& s = streams[suite];
  if (!s) s.reset(new SuiteStream{Rng(seed_or(seed)), 0});
  return *s;
}

std::vector<double> gaussian_values(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = nd(rng);
  return v;
}

int64_t prod(const std::vector<int64_t>& d) {
  return std::accumulate(d.begin(), d.end(), int64_t{1}, std::multiplies<int64_t>());
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

namespace {

template <typename T>
void put(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}
template <typename T>
double get(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return static_cast<double>(v);
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

}  // namespace

std::vector<uint8_t> to_bytes(const HT& t) {
  int64_t n = t.numel();
  size_t es = dtype_size(t.dt);
  std::vector<uint8_t> b(static_cast<size_t>(n) * es);
  for (int64_t i = 0; i < n; ++i) {
    double x = t.v[i];
    uint8_t* p = &b[static_cast<size_t>(i) * es];
    switch (t.dt) {
      case DType::Float32: put(p, static_cast<float>(x)); break;
      case DType::Float64: put(p, x); break;
      case DType::Int32: put(p, static_cast<int32_t>(x)); break;
      case DType::Int64: {
        // Saturate: the INT64_MAX-like bounds used by slice tests are not exact doubles.
        const int64_t big = std::numeric_limits<int64_t>::max();
        put(p, x >= 9.2e18 ? big : x <= -9.2e18 ? -big : static_cast<int64_t>(x));
        break;
      }
      case DType::Int16: put(p, static_cast<int16_t>(x)); break;
      case DType::Int8: put(p, static_cast<int8_t>(x)); break;
      case DType::UInt8: *p = static_cast<uint8_t>(x); break;
      case DType::Bool: *p = x != 0; break;
      default: throw std::runtime_error("to_bytes: dtype");
    }
  }
  return b;
}

HT from_named(const NamedTensor& nt) {
  HT t;
  t.dt = nt.dtype;
  t.dims = nt.dims;
  int64_t n = t.numel();
  size_t es = dtype_size(nt.dtype);
  if (nt.data.size() != static_cast<size_t>(n) * es)
    throw std::runtime_error("from_named: " + std::to_string(nt.data.size()) + " bytes for " +
                             dims_str(nt.dims));
  t.v.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = nt.data.data() + static_cast<size_t>(i) * es;
    switch (nt.dtype) {
      case DType::Float32: t.v[i] = get<float>(p); break;
      case DType::Float64: t.v[i] = get<double>(p); break;
      case DType::Int32: t.v[i] = get<int32_t>(p); break;
      case DType::Int64: t.v[i] = get<int64_t>(p); break;
      case DType::Int16: t.v[i] = get<int16_t>(p); break;
      case DType::Int8: t.v[i] = get<int8_t>(p); break;
      case DType::UInt8:
      case DType::Bool: t.v[i] = *p; break;
      case DType::Float16:
        t.v[i] = half_bits_to_double(static_cast<uint16_t>(get<uint16_t>(p)));
        break;
      default: throw std::runtime_error("from_named: dtype");
    }
  }
  return t;
}

NamedTensor to_named(const std::string& name, const HT& t) {
  NamedTensor nt;
  nt.name = name;
  nt.dtype = t.dt;
  nt.dims = t.dims;
  nt.data = to_bytes(t);
  return nt;
}

std::shared_ptr<Tensor> make_tensor(DType dt, const std::vector<int64_t>& dims, const void* data,
                                    size_t nbytes) {
  auto t = std::make_shared<Tensor>();
  t->dtype = dt;
  t->dims = dims;
  const uint8_t* b = static_cast<const uint8_t*>(data);
  t->storage = std::make_shared<std::vector<uint8_t>>(b, b + nbytes);
  t->nbytes = nbytes;
  return t;
}

void check_close(const std::string& op, const std::string& desc, const HT& got, const HT& want,
                 double tol) {
  std::string err;
  double e = 0;
  if (got.dt != want.dt) {
    err = std::string("dtype ") + dtype_name(got.dt) + " != " + dtype_name(want.dt);
  } else if (got.dims != want.dims) {
    err = "dims " + dims_str(got.dims) + " != " + dims_str(want.dims);
  } else {
    bool is_f = want.dt == DType::Float32 || want.dt == DType::Float64 || want.dt == DType::Float16;
    for (size_t i = 0; i < want.v.size(); ++i) {
      double a = got.v[i], b = want.v[i];
      if (std::isnan(a) && std::isnan(b)) continue;
      double d = is_f ? std::fabs(a - b) / std::max(1.0, std::fabs(b)) : (a == b ? 0 : 1e9);
      if (std::isnan(d)) d = INFINITY;
      if (!(d <= tol) && err.empty()) {
        std::ostringstream o;
        o << "element " << i << ": got " << a << ", want " << b;
        err = o.str();
      }
      e = std::max(e, d);
    }
  }
  record(op, desc, e, err);
}

void check_f32(const std::string& op, const std::string& desc, const NamedTensor& got,
               const std::vector<int64_t>& want_dims, const std::vector<double>& want, double tol) {
  HT w;
  w.dims = want_dims;
  w.v = want;
  if (got.dtype == DType::Float32 && got.data.size() != want.size() * 4 && got.dims == want_dims) {
    record(op, desc, 0, "byte size mismatch");
    return;
  }
  check_close(op, desc,
              got.dtype == DType::Float32 && got.dims == want_dims ? from_named(got)
                                                                   : HT{got.dtype, got.dims, {}},
              w, tol);
}

namespace {
template <typename F>
Attr make_attr(Attr::Kind k, F set) {
  Attr a;
  a.kind = k;
  set(a);
  return a;
}
}  // namespace

Attr attr_int(int64_t v) {
  return make_attr(Attr::Kind::Int32, [&](Attr& a) { a.i = v; });
}
Attr attr_float(double v) {
  return make_attr(Attr::Kind::Float32, [&](Attr& a) { a.f = v; });
}
Attr attr_f64(double v) {
  return make_attr(Attr::Kind::Float64, [&](Attr& a) { a.f = v; });
}
Attr attr_bool(bool v) {
  return make_attr(Attr::Kind::Bool, [&](Attr& a) { a.b = v; });
}
Attr attr_str(const std::string& v) {
  return make_attr(Attr::Kind::String, [&](Attr& a) { a.s = v; });
}
Attr attr_dtype(const std::string& v) {
  return make_attr(Attr::Kind::DType, [&](Attr& a) { a.s = v; });
}
Attr attr_ints(const std::vector<int64_t>& v) {
  return make_attr(Attr::Kind::Int32s, [&](Attr& a) { a.ints = v; });
}
Attr attr_i64s(const std::vector<int64_t>& v) {
  return make_attr(Attr::Kind::Int64s, [&](Attr& a) { a.ints = v; });
}
Attr attr_arr(const std::vector<int64_t>& v) {
  return make_attr(Attr::Kind::Array, [&](Attr& a) {
    for (int64_t x : v) a.items.push_back(attr_int(x));
  });
}
Attr attr_ints(const std::vector<int64_t>& v, bool pir) { return pir ? attr_arr(v) : attr_ints(v); }
Attr attr_floats(const std::vector<double>& v, bool pir) {
  return make_attr(pir ? Attr::Kind::Array : Attr::Kind::Float32s, [&](Attr& a) {
    if (pir)
      for (double x : v) a.items.push_back(attr_float(x));
    else
      a.floats = v;
  });
}

void same_pad(int64_t in, int64_t stride, int64_t k, int64_t* before, int64_t* after) {
  int64_t out = (in + stride - 1) / stride;
  int64_t total = (out - 1) * stride + k - in;
  if (total < 0) total = 0;
  *before = total / 2;
  *after = total - *before;
}

Pads resolve_pads(const std::vector<int64_t>& pads, const std::string& algo, int64_t H, int64_t W,
                  int64_t sh, int64_t sw, int64_t KH, int64_t KW, int64_t dh, int64_t dw) {
  Pads p{};
  bool two = pads.size() == 2;
  p.t = pads[0];
  p.b = two ? pads[0] : pads[1];
  p.l = two ? pads[1] : pads[2];
  p.r = two ? pads[1] : pads[3];
  p.dh = dh;
  p.dw = dw;
  if (algo == "VALID") p.t = p.b = p.l = p.r = 0;
  if (algo == "SAME") {
    same_pad(H, sh, KH, &p.t, &p.b);
    same_pad(W, sw, KW, &p.l, &p.r);
    p.dh = p.dw = 1;
  }
  return p;
}

}  // namespace pif::test
