// check_ref_conv_family: randomized checks of the reference conv / pool /
// norm / resample kernels against naive loops written independently here.
//
//   check_ref_conv_family [--seed N] [--cases N] [--verbose]
//
// Each case builds a one-op program in memory (legacy or PIR form, chosen at
// random, so that the lowering of slots / PIR operand orders is tested too),
// with parameters as constant values, runs it through pif::Executor with
// random inputs, and compares the output with a direct nested-loop
// implementation (double accumulation). Tolerance: |got - want| <=
// 1e-4 * max(1, |want|). Prints cases and max error per op; exit status 0
// when every case passed.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "format/model_dir.h"
#include "graph/ir.h"
#include "runtime/executor.h"

using namespace pif;

namespace {

// ---------------------------------------------------------------------------
// Random numbers.

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  int64_t i(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(g);
  }
  double u(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
  bool b(double p = 0.5) { return u(0, 1) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(i(0, static_cast<int64_t>(v.size()) - 1))];
  }
  std::vector<float> vec(int64_t n, double lo = -1, double hi = 1) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>(u(lo, hi));
    return v;
  }
};

int64_t prod(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

// ---------------------------------------------------------------------------
// One-op program builder. Legacy ops use named slots; PIR ops one unnamed
// slot per operand, added in operand order.

Attr attr_int(int64_t v) {
  Attr a;
  a.kind = Attr::Kind::Int32;
  a.i = v;
  return a;
}
Attr attr_float(double v) {
  Attr a;
  a.kind = Attr::Kind::Float32;
  a.f = v;
  return a;
}
Attr attr_bool(bool v) {
  Attr a;
  a.kind = Attr::Kind::Bool;
  a.b = v;
  return a;
}
Attr attr_str(const std::string& v) {
  Attr a;
  a.kind = Attr::Kind::String;
  a.s = v;
  return a;
}
// PIR writes int lists as a_array of a_i32/a_i64; legacy as INTS/LONGS.
Attr attr_ints(const std::vector<int64_t>& v, bool pir) {
  Attr a;
  if (pir) {
    a.kind = Attr::Kind::Array;
    for (int64_t x : v) {
      Attr e;
      e.kind = Attr::Kind::Int32;
      e.i = x;
      a.items.push_back(e);
    }
  } else {
    a.kind = Attr::Kind::Int32s;
    a.ints = v;
  }
  return a;
}
Attr attr_floats(const std::vector<double>& v, bool pir) {
  Attr a;
  if (pir) {
    a.kind = Attr::Kind::Array;
    for (double x : v) {
      Attr e;
      e.kind = Attr::Kind::Float32;
      e.f = x;
      a.items.push_back(e);
    }
  } else {
    a.kind = Attr::Kind::Float32s;
    a.floats = v;
  }
  return a;
}

class OneOp {
 public:
  OneOp(const std::string& type, bool pir) : pir_(pir) {
    p_.format = pir ? ProgramFormat::Pir : ProgramFormat::Legacy;
    p_.blocks.resize(1);
    op_.type = type;
  }
  bool pir() const { return pir_; }

  ValueId feed_f32(const std::string& name, const std::vector<int64_t>& dims,
                   const std::vector<float>& data) {
    return feed(name, DType::Float32, dims, data.data(), data.size() * 4);
  }
  ValueId feed_i64(const std::string& name, const std::vector<int64_t>& data) {
    return feed(name, DType::Int64, {static_cast<int64_t>(data.size())}, data.data(),
                data.size() * 8);
  }
  ValueId const_f32(const std::string& name, const std::vector<int64_t>& dims,
                    const std::vector<float>& data) {
    return constant(name, DType::Float32, dims, data.data(), data.size() * 4);
  }
  ValueId const_i64(const std::string& name, const std::vector<int64_t>& data) {
    return constant(name, DType::Int64, {static_cast<int64_t>(data.size())}, data.data(),
                    data.size() * 8);
  }
  ValueId const_i32(const std::string& name, const std::vector<int32_t>& data) {
    return constant(name, DType::Int32, {static_cast<int64_t>(data.size())}, data.data(),
                    data.size() * 4);
  }
  // A folded builtin.combine tuple (PIR vector operand).
  ValueId combine(const std::vector<ValueId>& elems) {
    Value v;
    v.name = "";
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::Vector;
    v.elements = elems;
    return p_.add_value(std::move(v));
  }

  // Adds an input slot. Legacy: named; PIR: positional (name ignored), with
  // kNoValue for a null operand.
  void in(const std::string& slot, std::vector<ValueId> ids) {
    OpSlot s;
    s.name = pir_ ? "" : slot;
    s.args = std::move(ids);
    op_.inputs.push_back(std::move(s));
  }
  void null_in() { in("", {kNoValue}); }
  // Adds an output slot holding one value; `fetch` makes it a graph output.
  ValueId out(const std::string& slot, bool fetch) {
    Value v;
    v.name = slot + "_out";
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = DType::Float32;
    ValueId id = p_.add_value(std::move(v));
    OpSlot s;
    s.name = pir_ ? "" : slot;
    s.args = {id};
    op_.outputs.push_back(std::move(s));
    if (fetch) p_.outputs.push_back(IoBinding{slot, id, static_cast<int32_t>(p_.outputs.size())});
    return id;
  }
  void attr(const std::string& name, Attr a) { op_.attrs.push_back(NamedAttr{name, std::move(a)}); }

  // Builds, lowers and runs; returns the first fetched output.
  NamedTensor run(int threads) {
    p_.blocks[0].ops.push_back(op_);
    auto m = std::make_shared<LoadedModel>();
    m->program_file = "<memory:" + op_.type + ">";
    m->program = p_;
    Executor ex(m);
    std::vector<NamedTensor> outs = ex.run(feeds_, threads);
    if (outs.empty()) throw std::runtime_error("no outputs");
    return outs[0];
  }

 private:
  ValueId feed(const std::string& name, DType dt, const std::vector<int64_t>& dims,
               const void* data, size_t nbytes) {
    Value v;
    v.name = name;
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = dt;
    v.type.dims = dims;
    ValueId id = p_.add_value(std::move(v));
    p_.inputs.push_back(IoBinding{name, id, static_cast<int32_t>(p_.inputs.size())});
    NamedTensor t;
    t.name = name;
    t.dtype = dt;
    t.dims = dims;
    t.data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + nbytes);
    feeds_.push_back(std::move(t));
    return id;
  }
  ValueId constant(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                   const void* data, size_t nbytes) {
    auto t = std::make_shared<Tensor>();
    t->dtype = dt;
    t->dims = dims;
    t->storage = std::make_shared<std::vector<uint8_t>>(static_cast<const uint8_t*>(data),
                                                        static_cast<const uint8_t*>(data) + nbytes);
    t->nbytes = nbytes;
    Value v;
    v.name = name;
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = dt;
    v.type.dims = dims;
    v.persistable = true;
    v.constant = t;
    return p_.add_value(std::move(v));
  }

  bool pir_;
  Program p_;
  Op op_;
  std::vector<NamedTensor> feeds_;
  int64_t next_id_ = 1;
};

// ---------------------------------------------------------------------------
// Result bookkeeping.

struct OpStats {
  int cases = 0, failures = 0;
  double max_err = 0;
};
std::map<std::string, OpStats> g_stats;
bool g_verbose = false;
int g_failures = 0;

// Compares and records. `desc` describes the case for failure messages.
void check(const std::string& op, const std::string& desc, const NamedTensor& got,
           const std::vector<int64_t>& want_dims, const std::vector<double>& want) {
  OpStats& st = g_stats[op];
  ++st.cases;
  std::string why;
  double err = 0;
  if (got.dtype != DType::Float32) {
    why = "dtype " + std::string(dtype_name(got.dtype));
  } else if (got.dims != want_dims) {
    why = "dims " + dims_str(got.dims) + " want " + dims_str(want_dims);
  } else if (got.data.size() != want.size() * 4) {
    why = "byte size mismatch";
  } else {
    const float* g = reinterpret_cast<const float*>(got.data.data());
    size_t worst = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      double e = std::fabs(static_cast<double>(g[k]) - want[k]) / std::max(1.0, std::fabs(want[k]));
      if (!(e <= err)) {  // NaN counts as failure
        if (std::isnan(e)) e = INFINITY;
        err = e;
        worst = k;
      }
    }
    if (err > 1e-4) {
      std::ostringstream o;
      o << "max error " << err << " at " << worst << ": got " << g[worst] << " want "
        << want[worst];
      why = o.str();
    }
  }
  st.max_err = std::max(st.max_err, err);
  if (!why.empty()) {
    ++st.failures;
    ++g_failures;
    std::cout << "FAIL " << op << " " << desc << ": " << why << "\n";
  } else if (g_verbose) {
    std::cout << "ok   " << op << " " << desc << " err=" << err << "\n";
  }
}

void record_error(const std::string& op, const std::string& desc, const std::exception& e) {
  OpStats& st = g_stats[op];
  ++st.cases;
  ++st.failures;
  ++g_failures;
  std::cout << "FAIL " << op << " " << desc << ": exception: " << e.what() << "\n";
}

// Runs `body` and reports an exception as a failure of the case.
void guarded(const std::string& op, const std::string& desc, const std::function<void()>& body) {
  try {
    body();
  } catch (const ModelError& e) {
    record_error(op, desc + " [" + e.code() + " " + e.where() + ": " + e.detail() + "]", e);
  } catch (const std::exception& e) {
    record_error(op, desc, e);
  }
}

std::vector<float> nchw_to_nhwc(const std::vector<float>& x, int64_t N, int64_t C, int64_t H,
                                int64_t W) {
  std::vector<float> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          y[((n * H + h) * W + w) * C + c] = x[((n * C + c) * H + h) * W + w];
  return y;
}
std::vector<double> nchw_to_nhwc_d(const std::vector<double>& x, int64_t N, int64_t C, int64_t H,
                                   int64_t W) {
  std::vector<double> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          y[((n * H + h) * W + w) * C + c] = x[((n * C + c) * H + h) * W + w];
  return y;
}

// Paddle's SAME padding split for one axis.
void same_pad(int64_t in, int64_t stride, int64_t k, int64_t* before, int64_t* after) {
  int64_t out = (in + stride - 1) / stride;
  int64_t total = (out - 1) * stride + k - in;
  if (total < 0) total = 0;
  *before = total / 2;
  *after = total - *before;
}

// ---------------------------------------------------------------------------
// conv2d / depthwise_conv2d

void case_conv(Rng& r, int idx, bool big = false) {
  bool pir = r.b(0.4);
  int64_t N = r.i(1, 2), G, Cg, OCg;
  int kind = static_cast<int>(r.i(0, 9));  // 0-2 depthwise, 3-4 pointwise, else general
  if (kind <= 2) {
    G = r.i(1, 6);
    Cg = 1;
    OCg = r.b(0.7) ? 1 : r.i(2, 3);
  } else {
    G = r.b(0.6) ? 1 : r.i(2, 3);
    Cg = r.i(1, 5);
    OCg = r.i(1, 5);
  }
  int64_t C = G * Cg, OC = G * OCg;
  int64_t H = r.i(1, 13), W = r.i(1, 13);
  int64_t KH = r.i(1, 4), KW = r.i(1, 4), sh = r.i(1, 3), sw = r.i(1, 3), dh = r.i(1, 3),
          dw = r.i(1, 3);
  std::vector<int64_t> pads;
  if (r.b())
    pads = {r.i(0, 3), r.i(0, 3)};
  else
    pads = {r.i(0, 3), r.i(0, 3), r.i(0, 3), r.i(0, 3)};
  std::string algo = r.b(0.7) ? "EXPLICIT" : (r.b() ? "SAME" : "VALID");
  if (kind == 3 || kind == 4) {
    KH = KW = 1;
    if (r.b(0.8)) {
      sh = sw = 1;
      pads = {0, 0};
      algo = "EXPLICIT";
    }
  }
  if (big) {
    N = 1;
    G = 1;
    Cg = 16;
    OCg = 8;
    C = 16;
    OC = 8;
    H = 190;
    W = 187;
    KH = KW = 3;
    sh = sw = 1;
    dh = dw = 1;
    pads = {1, 1};
    algo = "EXPLICIT";
  }
  bool nhwc = !big && r.b(0.1);
  bool bias = !pir && r.b(0.2);
  // Resolve geometry (independently of the kernel).
  int64_t pt, pb, pl, pr, edh = dh, edw = dw;
  if (pads.size() == 2) {
    pt = pb = pads[0];
    pl = pr = pads[1];
  } else {
    pt = pads[0];
    pb = pads[1];
    pl = pads[2];
    pr = pads[3];
  }
  if (algo == "VALID") pt = pb = pl = pr = 0;
  if (algo == "SAME") {
    same_pad(H, sh, KH, &pt, &pb);
    same_pad(W, sw, KW, &pl, &pr);
    edh = edw = 1;
  }
  int64_t OH = (H + pt + pb - (edh * (KH - 1) + 1));
  int64_t OW = (W + pl + pr - (edw * (KW - 1) + 1));
  if (OH < 0 || OW < 0) return case_conv(r, idx, big);  // invalid geometry: redraw
  OH = OH / sh + 1;
  OW = OW / sw + 1;

  std::vector<float> x = r.vec(N * C * H * W), w = r.vec(OC * Cg * KH * KW), b = r.vec(OC);
  std::vector<double> want(static_cast<size_t>(N * OC * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc) {
      int64_t g = oc / OCg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bias ? b[oc] : 0.0;
          for (int64_t ic = 0; ic < Cg; ++ic)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t ih = oh * sh - pt + kh * edh, iw = ow * sw - pl + kw * edw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += static_cast<double>(x[((n * C + g * Cg + ic) * H + ih) * W + iw]) *
                       w[((oc * Cg + ic) * KH + kh) * KW + kw];
              }
          want[((n * OC + oc) * OH + oh) * OW + ow] = acc;
        }
    }
  bool dw_type = Cg == 1 && G > 1 && r.b();
  std::string type = dw_type ? "depthwise_conv2d" : "conv2d";
  std::ostringstream d;
  d << "#" << idx << (pir ? " pir " : " legacy ") << type << " x[" << N << "," << C << "," << H
    << "," << W << "] f[" << OC << "," << Cg << "," << KH << "," << KW << "] g" << G << " s" << sh
    << "x" << sw << " d" << dh << "x" << dw << " p" << dims_str(pads) << " " << algo
    << (nhwc ? " NHWC" : "") << (bias ? " bias" : "");
  guarded("conv2d", d.str(), [&] {
    OneOp op(pir ? "pd_op." + type : type, pir);
    std::vector<int64_t> xd =
        nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W};
    ValueId xi = op.feed_f32("x", xd, nhwc ? nchw_to_nhwc(x, N, C, H, W) : x);
    ValueId wi = op.const_f32("w", {OC, Cg, KH, KW}, w);
    op.in("Input", {xi});
    op.in("Filter", {wi});
    if (bias) op.in("Bias", {op.const_f32("b", {OC}, b)});
    op.out("Output", true);
    op.attr("strides", attr_ints({sh, sw}, pir));
    op.attr("paddings", attr_ints(pads, pir));
    op.attr("dilations", attr_ints({dh, dw}, pir));
    op.attr("groups", attr_int(G));
    op.attr("padding_algorithm", attr_str(algo));
    op.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    if (nhwc)
      check("conv2d", d.str(), got, {N, OH, OW, OC}, nchw_to_nhwc_d(want, N, OC, OH, OW));
    else
      check("conv2d", d.str(), got, {N, OC, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// conv2d_transpose

void case_conv_transpose(Rng& r, int idx, bool big = false) {
  bool pir = r.b(0.4);
  int64_t N = r.i(1, 2), G = r.b(0.6) ? 1 : r.i(2, 3), Cg = r.i(1, 4), OCg = r.i(1, 4);
  if (r.b(0.15)) {  // depthwise transpose
    G = r.i(2, 5);
    Cg = 1;
    OCg = 1;
  }
  int64_t C = G * Cg, OC = G * OCg;
  int64_t H = r.i(1, 9), W = r.i(1, 9);
  int64_t KH = r.i(1, 4), KW = r.i(1, 4), sh = r.i(1, 3), sw = r.i(1, 3), dh = r.i(1, 2),
          dw = r.i(1, 2);
  std::vector<int64_t> pads;
  if (r.b())
    pads = {r.i(0, 2), r.i(0, 2)};
  else
    pads = {r.i(0, 2), r.i(0, 2), r.i(0, 2), r.i(0, 2)};
  std::string algo = r.b(0.8) ? "EXPLICIT" : (r.b() ? "SAME" : "VALID");
  if (big) {
    N = 1;
    G = 1;
    Cg = 8;
    OCg = 16;
    C = 8;
    OC = 16;
    H = 150;
    W = 170;
    KH = KW = 4;
    sh = sw = 2;
    dh = dw = 1;
    pads = {1, 1};
    algo = "EXPLICIT";
  }
  int64_t pt, pb, pl, pr, edh = dh, edw = dw;
  if (pads.size() == 2) {
    pt = pb = pads[0];
    pl = pr = pads[1];
  } else {
    pt = pads[0];
    pb = pads[1];
    pl = pads[2];
    pr = pads[3];
  }
  if (algo == "VALID") pt = pb = pl = pr = 0;
  if (algo == "SAME") {
    same_pad(H, sh, KH, &pt, &pb);
    same_pad(W, sw, KW, &pl, &pr);
    edh = edw = 1;
  }
  int64_t IH = (H - 1) * sh - pt - pb + edh * (KH - 1) + 1;
  int64_t IW = (W - 1) * sw - pl - pr + edw * (KW - 1) + 1;
  if (IH <= 0 || IW <= 0) return case_conv_transpose(r, idx, big);
  // Output size: inferred, + output_padding, or explicit output_size.
  int mode = big ? 0 : static_cast<int>(r.i(0, 2));
  std::vector<int64_t> opad, osize;
  int64_t OH = IH, OW = IW;
  if (mode == 1) {
    opad = {r.i(0, std::max(sh, edh) - 1), r.i(0, std::max(sw, edw) - 1)};
    OH += opad[0];
    OW += opad[1];
  } else if (mode == 2) {
    osize = {IH + r.i(0, sh - 1), IW + r.i(0, sw - 1)};
    OH = osize[0];
    OW = osize[1];
  }
  bool bias = !pir && r.b(0.2);
  bool nhwc = !big && r.b(0.1);
  std::vector<float> x = r.vec(N * C * H * W), w = r.vec(C * OCg * KH * KW), b = r.vec(OC);
  std::vector<double> want(static_cast<size_t>(N * OC * OH * OW), 0.0);
  // Scatter formulation.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < C; ++ci) {
      int64_t g = ci / Cg;
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw) {
          double xv = x[((n * C + ci) * H + ih) * W + iw];
          for (int64_t oc = 0; oc < OCg; ++oc)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t oh = ih * sh - pt + kh * edh, ow = iw * sw - pl + kw * edw;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                want[((n * OC + g * OCg + oc) * OH + oh) * OW + ow] +=
                    xv * w[((ci * OCg + oc) * KH + kh) * KW + kw];
              }
        }
    }
  if (bias)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oc = 0; oc < OC; ++oc)
        for (int64_t k = 0; k < OH * OW; ++k) want[(n * OC + oc) * OH * OW + k] += b[oc];
  bool dw_type = Cg == 1 && OCg == 1 && G > 1 && r.b();
  std::string type = dw_type ? "depthwise_conv2d_transpose" : "conv2d_transpose";
  if (pir) type = dw_type ? "pd_op.depthwise_conv2d_transpose" : "pd_op.conv2d_transpose";
  // PIR output_size operand: constant (folded full_int_array), a run-time
  // int64 input, or an empty constant.
  int osize_src = pir ? static_cast<int>(r.i(0, 2)) : 0;
  std::ostringstream d;
  d << "#" << idx << " " << type << " x[" << N << "," << C << "," << H << "," << W << "] f[" << C
    << "," << OCg << "," << KH << "," << KW << "] g" << G << " s" << sh << "x" << sw << " d" << dh
    << "x" << dw << " p" << dims_str(pads) << " " << algo << " opad" << dims_str(opad) << " osize"
    << dims_str(osize) << (bias ? " bias" : "") << (nhwc ? " NHWC" : "")
    << (pir ? " osize_src" + std::to_string(osize_src) : "");
  guarded("conv2d_transpose", d.str(), [&] {
    OneOp op(type, pir);
    std::vector<int64_t> xd =
        nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W};
    op.in("Input", {op.feed_f32("x", xd, nhwc ? nchw_to_nhwc(x, N, C, H, W) : x)});
    op.in("Filter", {op.const_f32("w", {C, OCg, KH, KW}, w)});
    if (bias) op.in("Bias", {op.const_f32("b", {OC}, b)});
    if (pir) {
      if (osize_src == 1 && !osize.empty())
        op.in("", {op.feed_i64("output_size", osize)});
      else
        op.in("", {op.const_i64("output_size", osize)});
    } else if (!osize.empty()) {
      op.attr("output_size", attr_ints(osize, false));
    }
    op.out("Output", true);
    op.attr("strides", attr_ints({sh, sw}, pir));
    op.attr("paddings", attr_ints(pads, pir));
    op.attr("dilations", attr_ints({dh, dw}, pir));
    op.attr("output_padding", attr_ints(opad, pir));
    op.attr("groups", attr_int(G));
    op.attr("padding_algorithm", attr_str(algo));
    op.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    if (nhwc)
      check("conv2d_transpose", d.str(), got, {N, OH, OW, OC}, nchw_to_nhwc_d(want, N, OC, OH, OW));
    else
      check("conv2d_transpose", d.str(), got, {N, OC, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// pool2d

void case_pool(Rng& r, int idx) {
  bool pir = r.b(0.4);
  int64_t N = r.i(1, 2), C = r.i(1, 3), H = r.i(1, 14), W = r.i(1, 14);
  bool is_max = r.b();
  bool adaptive = r.b(0.25), global = !adaptive && r.b(0.1);
  bool exclusive = r.b(0.7), ceil_mode = r.b(0.3);
  int64_t kh = r.i(1, 5), kw = r.i(1, 5), sh = r.i(1, 4), sw = r.i(1, 4);
  if (adaptive) {
    kh = r.i(1, H + 3);
    kw = r.i(1, W + 3);
  }
  std::vector<int64_t> pads;
  if (r.b())
    pads = {r.i(0, 2), r.i(0, 2)};
  else
    pads = {r.i(0, 2), r.i(0, 2), r.i(0, 2), r.i(0, 2)};
  std::string algo = r.b(0.7) ? "EXPLICIT" : (r.b() ? "SAME" : "VALID");
  bool nhwc = r.b(0.1);
  // Geometry.
  int64_t pt, pb, pl, pr;
  if (pads.size() == 2) {
    pt = pb = pads[0];
    pl = pr = pads[1];
  } else {
    pt = pads[0];
    pb = pads[1];
    pl = pads[2];
    pr = pads[3];
  }
  if (algo == "SAME") {
    same_pad(H, sh, kh, &pt, &pb);
    same_pad(W, sw, kw, &pl, &pr);
  }
  if (algo == "VALID" || global || adaptive) pt = pb = pl = pr = 0;
  int64_t ekh = global ? H : kh, ekw = global ? W : kw;
  int64_t OH, OW;
  if (adaptive) {
    OH = kh;
    OW = kw;
  } else {
    int64_t nh = H - ekh + pt + pb + (ceil_mode ? sh - 1 : 0);
    int64_t nw = W - ekw + pl + pr + (ceil_mode ? sw - 1 : 0);
    if (nh < 0 || nw < 0) return case_pool(r, idx);
    OH = nh / sh + 1;
    OW = nw / sw + 1;
  }
  std::vector<float> x = r.vec(N * C * H * W, -2, 2);
  std::vector<double> want(static_cast<size_t>(N * C * OH * OW));
  int empty_windows = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t h0, h1, w0, w1;
          if (adaptive) {
            h0 = static_cast<int64_t>(std::floor(static_cast<double>(oh * H) / OH));
            h1 = static_cast<int64_t>(std::ceil(static_cast<double>((oh + 1) * H) / OH));
            w0 = static_cast<int64_t>(std::floor(static_cast<double>(ow * W) / OW));
            w1 = static_cast<int64_t>(std::ceil(static_cast<double>((ow + 1) * W) / OW));
          } else {
            h0 = oh * sh - pt;
            w0 = ow * sw - pl;
            h1 = std::min(h0 + ekh, H);
            w1 = std::min(w0 + ekw, W);
            h0 = std::max<int64_t>(h0, 0);
            w0 = std::max<int64_t>(w0, 0);
          }
          double v;
          if (h0 >= h1 || w0 >= w1) {
            v = 0;  // degenerate window: this implementation's convention
            ++empty_windows;
          } else if (is_max) {
            v = -INFINITY;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w)
                v = std::max<double>(v, x[((n * C + c) * H + h) * W + w]);
          } else {
            double s = 0;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) s += x[((n * C + c) * H + h) * W + w];
            double cnt = (exclusive || adaptive) ? static_cast<double>((h1 - h0) * (w1 - w0))
                                                 : static_cast<double>(ekh * ekw);
            v = s / cnt;
          }
          want[((n * C + c) * OH + oh) * OW + ow] = v;
        }
  int ksrc = pir ? static_cast<int>(r.i(0, 1)) : 0;  // PIR kernel_size: constant or run-time input
  std::ostringstream d;
  d << "#" << idx << (pir ? " pir" : " legacy") << (is_max ? " max" : " avg") << " x[" << N << ","
    << C << "," << H << "," << W << "] k" << kh << "x" << kw << " s" << sh << "x" << sw << " p"
    << dims_str(pads) << " " << algo << (adaptive ? " adaptive" : "") << (global ? " global" : "")
    << (exclusive ? " excl" : " incl") << (ceil_mode ? " ceil" : "") << (nhwc ? " NHWC" : "")
    << (ksrc ? " kernel_size-input" : "") << (empty_windows ? " empty-windows" : "");
  guarded("pool2d", d.str(), [&] {
    OneOp op(pir ? "pd_op.pool2d" : "pool2d", pir);
    std::vector<int64_t> xd =
        nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W};
    op.in("X", {op.feed_f32("x", xd, nhwc ? nchw_to_nhwc(x, N, C, H, W) : x)});
    if (pir) {
      if (ksrc == 1)
        op.in("", {op.feed_i64("kernel_size", {kh, kw})});
      else
        op.in("", {op.const_i64("kernel_size", {kh, kw})});
    } else {
      op.attr("ksize", attr_ints({kh, kw}, false));
    }
    op.out("Out", true);
    op.attr("pooling_type", attr_str(is_max ? "max" : "avg"));
    op.attr("strides", attr_ints({sh, sw}, pir));
    op.attr("paddings", attr_ints(pads, pir));
    op.attr("global_pooling", attr_bool(global));
    op.attr("adaptive", attr_bool(adaptive));
    op.attr("exclusive", attr_bool(exclusive));
    op.attr("ceil_mode", attr_bool(ceil_mode));
    op.attr("padding_algorithm", attr_str(algo));
    op.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    if (nhwc)
      check("pool2d", d.str(), got, {N, OH, OW, C}, nchw_to_nhwc_d(want, N, C, OH, OW));
    else
      check("pool2d", d.str(), got, {N, C, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// batch_norm

void case_batch_norm(Rng& r, int idx) {
  bool pir = r.b(0.5);
  int rank = static_cast<int>(r.i(2, 5));
  std::vector<int64_t> dims;
  for (int k = 0; k < rank; ++k) dims.push_back(r.i(1, k < 2 ? 6 : 7));
  bool last = r.b(0.15);
  int64_t C = last ? dims.back() : dims[1];
  double eps = r.pick(std::vector<double>{1e-5, 1e-3, 0.1});
  std::vector<float> x = r.vec(prod(dims), -3, 3), scale = r.vec(C), bias = r.vec(C),
                     mean = r.vec(C), var = r.vec(C, 0.05, 2.0);
  std::vector<double> want(x.size());
  int64_t inner = 1;
  if (!last)
    for (int k = 2; k < rank; ++k) inner *= dims[k];
  for (size_t k = 0; k < x.size(); ++k) {
    int64_t c = last ? static_cast<int64_t>(k) % C : (static_cast<int64_t>(k) / inner) % C;
    want[k] = (x[k] - static_cast<double>(mean[c])) / std::sqrt(static_cast<double>(var[c]) + eps) *
                  scale[c] +
              bias[c];
  }
  std::ostringstream d;
  d << "#" << idx << (pir ? " pir" : " legacy") << " x" << dims_str(dims) << " eps " << eps
    << (last ? " channel-last" : "");
  guarded("batch_norm", d.str(), [&] {
    OneOp op(pir ? (r.b() ? "pd_op.batch_norm_" : "pd_op.batch_norm") : "batch_norm", pir);
    ValueId xi = op.feed_f32("x", dims, x);
    ValueId si = op.const_f32("scale", {C}, scale), bi = op.const_f32("bias", {C}, bias),
            mi = op.const_f32("mean", {C}, mean), vi = op.const_f32("var", {C}, var);
    std::string layout = last ? (rank == 4 ? "NHWC" : "NLC") : "NCHW";
    if (pir) {
      // PIR operand order: (x, mean, variance, scale, bias); 6 results.
      op.in("", {xi});
      op.in("", {mi});
      op.in("", {vi});
      op.in("", {si});
      op.in("", {bi});
      op.out("out", true);
      for (int k = 0; k < 5; ++k) op.out("aux" + std::to_string(k), false);
      op.attr("data_format", attr_str(layout));
    } else {
      // Legacy slots in file order differ from the canonical order on purpose.
      op.in("Bias", {bi});
      op.in("Mean", {mi});
      op.in("Scale", {si});
      op.in("Variance", {vi});
      op.in("X", {xi});
      op.out("MeanOut", false);
      op.out("SavedMean", false);
      op.out("SavedVariance", false);
      op.out("VarianceOut", false);
      op.out("Y", true);
      op.attr("data_layout", attr_str(layout));
    }
    op.attr("epsilon", attr_float(eps));
    op.attr("is_test", attr_bool(true));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    check("batch_norm", d.str(), got, dims, want);
  });
}

// ---------------------------------------------------------------------------
// layer_norm

void case_layer_norm(Rng& r, int idx) {
  bool pir = r.b(0.5);
  int rank = static_cast<int>(r.i(1, 4));
  std::vector<int64_t> dims;
  for (int k = 0; k < rank; ++k) dims.push_back(r.i(1, 9));
  if (r.b(0.1)) dims.back() = r.i(200, 700);  // long rows
  int64_t axis = r.i(0, rank - 1);
  bool neg_axis = r.b(0.2);
  bool has_scale = r.b(0.85), has_bias = r.b(0.85);
  double eps = r.pick(std::vector<double>{1e-5, 1e-6, 1e-3});
  int64_t left = 1, right = 1;
  for (int k = 0; k < rank; ++k) (k < axis ? left : right) *= dims[k];
  std::vector<float> x = r.vec(left * right, -2, 2), scale = r.vec(right), bias = r.vec(right);
  if (r.b(0.2))
    for (float& v : x) v += 100.f;  // large mean
  std::vector<double> want(x.size());
  for (int64_t i = 0; i < left; ++i) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < right; ++j) m += x[i * right + j];
    m /= right;
    for (int64_t j = 0; j < right; ++j) v += (x[i * right + j] - m) * (x[i * right + j] - m);
    v /= right;
    for (int64_t j = 0; j < right; ++j) {
      double y = (x[i * right + j] - m) / std::sqrt(v + eps);
      if (has_scale) y *= scale[j];
      if (has_bias) y += bias[j];
      want[i * right + j] = y;
    }
  }
  std::ostringstream d;
  d << "#" << idx << (pir ? " pir" : " legacy") << " x" << dims_str(dims) << " axis " << axis
    << (neg_axis ? " (negative)" : "") << (has_scale ? " scale" : "") << (has_bias ? " bias" : "");
  guarded("layer_norm", d.str(), [&] {
    OneOp op(pir ? "pd_op.layer_norm" : "layer_norm", pir);
    ValueId xi = op.feed_f32("x", dims, x);
    ValueId si = has_scale ? op.const_f32("scale", {right}, scale) : kNoValue;
    ValueId bi = has_bias ? op.const_f32("bias", {right}, bias) : kNoValue;
    if (pir) {
      op.in("", {xi});
      op.in("", {si});
      op.in("", {bi});
      op.out("y", true);
      op.out("mean", false);
      op.out("variance", false);
    } else {
      op.in("X", {xi});
      if (has_scale) op.in("Scale", {si});
      if (has_bias) op.in("Bias", {bi});
      op.out("Y", true);
      op.out("Mean", false);
      op.out("Variance", false);
    }
    op.attr("epsilon", attr_float(eps));
    op.attr("begin_norm_axis", attr_int(neg_axis ? axis - rank : axis));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    check("layer_norm", d.str(), got, dims, want);
  });
}

// ---------------------------------------------------------------------------
// nearest_interp_v2 / bilinear_interp_v2

void case_interp(Rng& r, int idx) {
  bool pir = r.b(0.4);
  bool bilinear = r.b();
  int64_t N = r.i(1, 2), C = r.i(1, 3), H = r.i(1, 10), W = r.i(1, 10);
  bool align_corners = r.b(0.4);
  int64_t align_mode = r.i(0, 1);
  bool nhwc = r.b(0.1);
  // Size source: 0 attrs, 1 scale attr, 2 Scale tensor, 3 OutSize tensor,
  // 4 SizeTensor list, 5 scale attr + OutSize tensor.
  int src = static_cast<int>(r.i(0, 5));
  int64_t oh_attr = r.i(1, 20), ow_attr = r.i(1, 20);
  std::vector<float> scale;
  if (src == 1 || src == 2 || src == 5) {
    static const std::vector<float> nice = {0.5f,  2.f,       3.f,  4.f, 1.5f,
                                            0.25f, 1.f / 3.f, 0.7f, 1.3f};
    if (r.b(0.6))
      scale = {r.pick(nice), r.pick(nice)};
    else
      scale = {static_cast<float>(r.u(0.3, 3.0)), static_cast<float>(r.u(0.3, 3.0))};
    if (src == 2 && r.b(0.3)) scale = {scale[0]};  // one value for both axes
  }
  std::vector<int64_t> tensor_size = {r.i(1, 20), r.i(1, 20)};
  // Output size and scale as the reference sees them (Paddle's precedence).
  float scale_h = -1, scale_w = -1;
  int64_t OH = oh_attr, OW = ow_attr;
  if (src == 4) {
    OH = tensor_size[0];
    OW = tensor_size[1];
  } else {
    if (!scale.empty()) {
      scale_h = scale[0];
      scale_w = scale.size() > 1 ? scale[1] : scale[0];
      OH = static_cast<int64_t>(static_cast<float>(H) * scale_h);
      OW = static_cast<int64_t>(static_cast<float>(W) * scale_w);
    }
    if (src == 3 || src == 5) {
      OH = tensor_size[0];
      OW = tensor_size[1];
    }
  }
  if (OH <= 0 || OW <= 0) return case_interp(r, idx);
  auto ratio = [&](int64_t in, int64_t out, float sc) -> float {
    if (out <= 1) return 0.f;
    if (align_corners) return static_cast<float>(in - 1) / static_cast<float>(out - 1);
    return sc > 0 ? static_cast<float>(1.0 / sc) : static_cast<float>(in) / static_cast<float>(out);
  };
  float rh = ratio(H, OH, scale_h), rw = ratio(W, OW, scale_w);
  std::vector<float> x = r.vec(N * C * H * W, -2, 2);
  std::vector<double> want(static_cast<size_t>(N * C * OH * OW));
  bool same = OH == H && OW == W;
  // Per-axis source taps.
  auto taps = [&](float rat, int64_t out, int64_t in, std::vector<int64_t>* i0,
                  std::vector<int64_t>* i1, std::vector<double>* f) {
    for (int64_t k = 0; k < out; ++k) {
      int64_t a, b;
      double frac;
      if (same) {
        a = b = k;
        frac = 0;
      } else if (!bilinear) {
        double pos = align_corners ? static_cast<double>(rat * static_cast<float>(k)) + 0.5
                                   : static_cast<double>(rat * static_cast<float>(k));
        a = b = static_cast<int64_t>(std::floor(pos));
        frac = 0;
      } else if (align_mode == 0 && !align_corners) {
        double src_pos = static_cast<double>(rat) * (k + 0.5) - 0.5;
        a = src_pos < 0 ? 0 : static_cast<int64_t>(src_pos);
        float sf = static_cast<float>(src_pos);
        if (sf < 0) sf = 0;
        frac = sf - static_cast<float>(a);
        b = std::min(a + 1, in - 1);
      } else {
        float pos = rat * static_cast<float>(k);
        a = static_cast<int64_t>(pos);
        frac = pos - static_cast<float>(a);
        b = std::min(a + 1, in - 1);
      }
      // Past the last row (only when an OutSize tensor overrides a scale):
      // the edge value.
      if (a > in - 1) {
        a = b = in - 1;
        frac = 0;
      }
      i0->push_back(a);
      i1->push_back(b);
      f->push_back(frac);
    }
  };
  std::vector<int64_t> ya, yb, xa, xb;
  std::vector<double> fy, fx;
  taps(rh, OH, H, &ya, &yb, &fy);
  taps(rw, OW, W, &xa, &xb, &fx);
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float* pl = x.data() + p * H * W;
        double v00 = pl[ya[oh] * W + xa[ow]], v01 = pl[ya[oh] * W + xb[ow]];
        double v10 = pl[yb[oh] * W + xa[ow]], v11 = pl[yb[oh] * W + xb[ow]];
        double a = fy[oh], b = fx[ow];
        want[(p * OH + oh) * OW + ow] =
            v00 * (1 - a) * (1 - b) + v01 * (1 - a) * b + v10 * a * (1 - b) + v11 * a * b;
      }
  std::string type = bilinear ? (pir ? "pd_op.bilinear_interp" : "bilinear_interp_v2")
                              : (pir ? "pd_op.nearest_interp" : "nearest_interp_v2");
  std::ostringstream d;
  d << "#" << idx << " " << type << " x[" << N << "," << C << "," << H << "," << W << "] -> " << OH
    << "x" << OW << " src" << src << " scale"
    << (scale.empty() ? std::string("[]") : "[" + std::to_string(scale[0]) + "..]")
    << (align_corners ? " align_corners" : "") << " mode" << align_mode << (nhwc ? " NHWC" : "");
  guarded("interp", d.str(), [&] {
    OneOp op(type, pir);
    std::vector<int64_t> xd =
        nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W};
    ValueId xi = op.feed_f32("x", xd, nhwc ? nchw_to_nhwc(x, N, C, H, W) : x);
    ValueId out_size = kNoValue, scale_t = kNoValue;
    std::vector<ValueId> size_list;
    if (src == 3 || src == 5) {
      if (r.b())
        out_size = op.const_i32("out_size", {static_cast<int32_t>(tensor_size[0]),
                                             static_cast<int32_t>(tensor_size[1])});
      else
        out_size = op.feed_i64("out_size", tensor_size);
    }
    if (src == 4) {
      size_list.push_back(op.const_i32("sz_h", {static_cast<int32_t>(tensor_size[0])}));
      size_list.push_back(op.const_i64("sz_w", {tensor_size[1]}));
    }
    if (src == 2) scale_t = op.const_f32("scale", {static_cast<int64_t>(scale.size())}, scale);
    if (pir) {
      op.in("", {xi});
      op.in("", {out_size});
      op.in("", {size_list.empty() ? kNoValue : op.combine(size_list)});
      op.in("", {scale_t});
    } else {
      op.in("X", {xi});
      if (out_size != kNoValue) op.in("OutSize", {out_size});
      if (!size_list.empty()) op.in("SizeTensor", size_list);
      if (scale_t != kNoValue) op.in("Scale", {scale_t});
    }
    op.out("Out", true);
    op.attr("out_d", attr_int(-1));
    op.attr("out_h", attr_int(src == 0 ? oh_attr : (r.b() ? -1 : oh_attr)));
    op.attr("out_w", attr_int(src == 0 ? ow_attr : (r.b() ? -1 : ow_attr)));
    std::vector<double> sattr;
    if (src == 1 || src == 5) sattr = {scale[0], scale[1]};
    op.attr("scale", attr_floats(sattr, pir));
    op.attr("interp_method", attr_str(bilinear ? "bilinear" : "nearest"));
    op.attr("align_corners", attr_bool(align_corners));
    op.attr("align_mode", attr_int(align_mode));
    op.attr(pir ? "data_format" : "data_layout", attr_str(nhwc ? "NHWC" : "NCHW"));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    if (nhwc)
      check("interp", d.str(), got, {N, OH, OW, C}, nchw_to_nhwc_d(want, N, C, OH, OW));
    else
      check("interp", d.str(), got, {N, C, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// pixel_shuffle

void case_pixel_shuffle(Rng& r, int idx) {
  bool pir = r.b(0.4);
  int64_t rr = r.i(1, 3), N = r.i(1, 2), OC = r.i(1, 3), H = r.i(1, 6), W = r.i(1, 6);
  int64_t C = OC * rr * rr;
  bool nhwc = r.b(0.3);
  std::vector<float> x = r.vec(N * C * H * W);
  int64_t OH = H * rr, OW = W * rr;
  std::vector<double> want(static_cast<size_t>(N * OC * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t c = oc * rr * rr + (oh % rr) * rr + (ow % rr);
          want[((n * OC + oc) * OH + oh) * OW + ow] = x[((n * C + c) * H + oh / rr) * W + ow / rr];
        }
  std::ostringstream d;
  d << "#" << idx << (pir ? " pir" : " legacy") << " x[" << N << "," << C << "," << H << "," << W
    << "] r" << rr << (nhwc ? " NHWC" : "");
  guarded("pixel_shuffle", d.str(), [&] {
    OneOp op(pir ? "pd_op.pixel_shuffle" : "pixel_shuffle", pir);
    std::vector<int64_t> xd =
        nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W};
    op.in("X", {op.feed_f32("x", xd, nhwc ? nchw_to_nhwc(x, N, C, H, W) : x)});
    op.out("Out", true);
    op.attr("upscale_factor", attr_int(rr));
    op.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    if (nhwc)
      check("pixel_shuffle", d.str(), got, {N, OH, OW, OC}, nchw_to_nhwc_d(want, N, OC, OH, OW));
    else
      check("pixel_shuffle", d.str(), got, {N, OC, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// grid_sampler

// Source coordinate (PyTorch-style formulation, double precision).
double gs_coord(double g, int64_t size, bool align, int pad) {
  double x = align ? (g + 1) / 2 * (size - 1) : ((g + 1) * size - 1) / 2;
  if (pad == 1) {
    x = std::min(std::max(x, 0.0), static_cast<double>(size - 1));
  } else if (pad == 2) {
    // Reflect about the borders (pixel centres if align, else edges).
    double lo = align ? 0.0 : -0.5, hi = align ? size - 1.0 : size - 0.5;
    double span = hi - lo;
    if (span <= 0) {
      x = 0;
    } else {
      double v = std::fabs(x - lo);
      double flips = std::floor(v / span);
      double extra = std::fmod(v, span);
      x = (static_cast<int64_t>(flips) % 2 == 0) ? lo + extra : hi - extra;
      x = std::min(std::max(x, 0.0), static_cast<double>(size - 1));
    }
  }
  return x;
}

void case_grid_sample(Rng& r, int idx) {
  bool pir = r.b(0.4);
  int64_t N = r.i(1, 2), C = r.i(1, 3), H = r.i(1, 8), W = r.i(1, 8), OH = r.i(1, 7),
          OW = r.i(1, 7);
  bool nearest = r.b(0.3), align = r.b();
  int pad = static_cast<int>(r.i(0, 2));
  static const char* pad_names[] = {"zeros", "border", "reflection"};
  std::vector<float> x = r.vec(N * C * H * W), grid = r.vec(N * OH * OW * 2, -1.4, 1.4);
  std::vector<double> want(static_cast<size_t>(N * C * OH * OW));
  auto at = [&](int64_t n, int64_t c, int64_t yy, int64_t xx) -> double {
    if (yy < 0 || yy >= H || xx < 0 || xx >= W) return 0.0;
    return x[((n * C + c) * H + yy) * W + xx];
  };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float* gp = grid.data() + ((n * OH + oh) * OW + ow) * 2;
        double gx = gs_coord(gp[0], W, align, pad), gy = gs_coord(gp[1], H, align, pad);
        for (int64_t c = 0; c < C; ++c) {
          double v;
          if (nearest) {
            v = at(n, c, static_cast<int64_t>(std::round(gy)),
                   static_cast<int64_t>(std::round(gx)));
          } else {
            double fx = std::floor(gx), fy = std::floor(gy);
            int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
            double ax = gx - fx, ay = gy - fy;
            v = at(n, c, y0, x0) * (1 - ax) * (1 - ay) + at(n, c, y0, x0 + 1) * ax * (1 - ay) +
                at(n, c, y0 + 1, x0) * (1 - ax) * ay + at(n, c, y0 + 1, x0 + 1) * ax * ay;
          }
          want[((n * C + c) * OH + oh) * OW + ow] = v;
        }
      }
  std::ostringstream d;
  d << "#" << idx << (pir ? " pir" : " legacy") << " x[" << N << "," << C << "," << H << "," << W
    << "] grid[" << OH << "," << OW << "] " << (nearest ? "nearest" : "bilinear") << " "
    << pad_names[pad] << (align ? " align_corners" : "");
  guarded("grid_sample", d.str(), [&] {
    OneOp op(pir ? "pd_op.grid_sample" : "grid_sampler", pir);
    op.in("X", {op.feed_f32("x", {N, C, H, W}, x)});
    op.in("Grid", {op.feed_f32("grid", {N, OH, OW, 2}, grid)});
    op.out("Output", true);
    op.attr("mode", attr_str(nearest ? "nearest" : "bilinear"));
    op.attr("padding_mode", attr_str(pad_names[pad]));
    op.attr("align_corners", attr_bool(align));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    check("grid_sample", d.str(), got, {N, C, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// Invalid attributes must fail with ModelError at load (not crash).

void case_errors() {
  auto expect_fail = [](const std::string& what, const std::function<void()>& body) {
    OpStats& st = g_stats["errors"];
    ++st.cases;
    try {
      body();
      ++st.failures;
      ++g_failures;
      std::cout << "FAIL errors " << what << ": no error\n";
    } catch (const ModelError& e) {
      if (g_verbose)
        std::cout << "ok   errors " << what << ": " << e.code() << " " << e.detail() << "\n";
    } catch (const std::exception& e) {
      ++st.failures;
      ++g_failures;
      std::cout << "FAIL errors " << what << ": wrong exception " << e.what() << "\n";
    }
  };
  std::vector<float> x(2 * 3 * 4 * 4, 0.5f), w(4 * 3 * 3 * 3, 0.1f);
  expect_fail("conv paddings of 3 values", [&] {
    OneOp op("conv2d", false);
    op.in("Input", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.in("Filter", {op.const_f32("w", {4, 3, 3, 3}, w)});
    op.out("Output", true);
    op.attr("paddings", attr_ints({1, 1, 1}, false));
    op.run(1);
  });
  expect_fail("conv channel mismatch", [&] {
    OneOp op("conv2d", false);
    op.in("Input", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.in("Filter", {op.const_f32("w", {4, 3, 3, 3}, w)});
    op.out("Output", true);
    op.attr("groups", attr_int(3));
    op.run(1);
  });
  expect_fail("conv kernel larger than input", [&] {
    OneOp op("conv2d", false);
    std::vector<float> big(4 * 3 * 5 * 5, 0.1f);
    op.in("Input", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.in("Filter", {op.const_f32("w", {4, 3, 5, 5}, big)});
    op.out("Output", true);
    op.run(1);
  });
  expect_fail("pool unknown type", [&] {
    OneOp op("pool2d", false);
    op.in("X", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.out("Out", true);
    op.attr("pooling_type", attr_str("median"));
    op.attr("ksize", attr_ints({2, 2}, false));
    op.run(1);
  });
  expect_fail("batch_norm channel mismatch", [&] {
    OneOp op("batch_norm", false);
    std::vector<float> p(2, 1.f);
    op.in("X", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.in("Scale", {op.const_f32("s", {2}, p)});
    op.in("Bias", {op.const_f32("b", {2}, p)});
    op.in("Mean", {op.const_f32("m", {2}, p)});
    op.in("Variance", {op.const_f32("v", {2}, p)});
    op.out("Y", true);
    op.run(1);
  });
  expect_fail("interp without size", [&] {
    OneOp op("nearest_interp_v2", false);
    op.in("X", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.out("Out", true);
    op.attr("interp_method", attr_str("nearest"));
    op.run(1);
  });
  expect_fail("pixel_shuffle indivisible channels", [&] {
    OneOp op("pixel_shuffle", false);
    op.in("X", {op.feed_f32("x", {2, 3, 4, 4}, x)});
    op.out("Out", true);
    op.attr("upscale_factor", attr_int(2));
    op.run(1);
  });
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 12345;
  int cases = 60;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a == "--seed" && k + 1 < argc)
      seed = std::stoull(argv[++k]);
    else if (a == "--cases" && k + 1 < argc)
      cases = std::stoi(argv[++k]);
    else if (a == "--verbose")
      g_verbose = true;
    else {
      std::cerr << "usage: check_ref_conv_family [--seed N] [--cases N] [--verbose]\n";
      return 2;
    }
  }
  Rng r(seed);
  int idx = 0;
  for (int k = 0; k < cases * 2; ++k) case_conv(r, idx++);
  case_conv(r, idx++, true);  // exercises the im2col row tiling
  for (int k = 0; k < cases; ++k) case_conv_transpose(r, idx++);
  case_conv_transpose(r, idx++, true);  // exercises the col2im row tiling
  for (int k = 0; k < cases * 2; ++k) case_pool(r, idx++);
  for (int k = 0; k < cases; ++k) case_batch_norm(r, idx++);
  for (int k = 0; k < cases; ++k) case_layer_norm(r, idx++);
  for (int k = 0; k < cases * 2; ++k) case_interp(r, idx++);
  for (int k = 0; k < cases / 2; ++k) case_pixel_shuffle(r, idx++);
  for (int k = 0; k < cases; ++k) case_grid_sample(r, idx++);
  case_errors();

  std::printf("%-18s %7s %9s %12s\n", "op", "cases", "failures", "max error");
  for (const auto& kv : g_stats)
    std::printf("%-18s %7d %9d %12.3g\n", kv.first.c_str(), kv.second.cases, kv.second.failures,
                kv.second.max_err);
  std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed),
              g_failures ? "FAILED" : "all passed");
  return g_failures ? 1 : 0;
}
