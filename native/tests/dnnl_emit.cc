// The dnnl suite's op emitters and expectations (dnnl.h).
#include <algorithm>
#include <cmath>
#include <sstream>

#include "tests/dnnl.h"

namespace pif::test {

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

Want w_binary(const std::string& name, int fast) {
  return Want{name, "dnnl.binary", fast, "binary"};
}

Act act(const std::string& name, double a, double b, double c, bool flag) {
  Act x;
  x.name = name;
  x.a = a;
  x.b = b;
  x.c = c;
  x.flag = flag;
  return x;
}

// The activations that follow convolutions / products in real models (all
// fusable, with default parameters where oneDNN needs them).
Act random_post_act(Rng& r, bool pir) {
  switch (r.i(0, 12)) {
    case 0:
    case 1: return act("relu");
    case 2: return act("relu6", 6);
    case 3: return act("sigmoid");
    case 4: return act("tanh");
    case 5: return act("hard_swish", 6, 6, 3);
    case 6: return act("swish", pir ? 1.0 : r.pick(std::vector<double>{1.0, 0.5, 1.5}));
    case 7: return act("gelu", 0, 0, 0, r.b(0.3));
    case 8: return act("leaky_relu", r.pick(std::vector<double>{0.02, 0.1, 0.2}));
    case 9:
      return act("scale", r.pick(std::vector<double>{0.125, 2.0, -0.5}), r.b() ? 0.0 : r.u(-1, 1),
                 0, r.b());
    case 10:  // downscale_in_infer: x * (1 - p); c picks the legacy spelling
      return act("dropout", 0.2, 0, r.b() ? 1 : 0, false);
    case 11: return act("silu");
    default: return act("relu");
  }
}

// Any unary op, including those that do not fuse or bind to oneDNN. sqrt and
// pow only for positive inputs (NaN propagation through clip differs).
Act random_any_act(Rng& r, bool pir, bool positive) {
  switch (r.i(0, 12)) {
    case 0: return random_post_act(r, pir);
    case 11:
      return positive ? act("pow", r.pick(std::vector<double>{2.0, 3.0, 0.5, 1.5})) : act("square");
    case 1: return act("exp");
    case 2: return positive ? act("sqrt") : act("abs");
    case 3: return act("abs");
    case 4: return act("square");
    case 5:  // non-default hard_swish: no oneDNN equivalent
      return pir ? act("hard_swish", 6, 6, 3) : act("hard_swish", 5, 6, 2.5);
    case 6: return act("hard_sigmoid", r.pick(std::vector<double>{0.2, 1.0 / 6}), 0.5);
    case 7: {
      Act x = act("clip", r.u(-1, 0), r.u(0, 1));
      x.operands = pir;
      return x;
    }
    case 8: return act("assign");
    case 9: return r.b() ? act("dropout", 0, 0, 0, true) : act("scale", 1, 0, 0, r.b());
    case 10: return act("dropout", r.pick(std::vector<double>{0.1, 0.2, 0.5}), 0, r.b() ? 1 : 0);
    default: return random_post_act(r, pir);
  }
}

Want act_want(const Act& a) {
  if (a.bound()) return Want{a.name, "dnnl.eltwise", 1, "eltwise"};
  return w_ref(a.name);
}

EltAlg elt_alg(const Act& a) {
  const std::string& n = a.name;
  float x = static_cast<float>(a.a), y = static_cast<float>(a.b);
  if (n == "relu") return {"relu"};
  if (n == "leaky_relu") return {"relu", x};
  if (n == "relu6") return {"clip", 0, x};
  if (n == "clip") return {"clip", x, y};
  if (n == "swish") return {"swish", x};
  if (n == "silu") return {"swish", 1};
  if (n == "gelu") return {a.flag ? "gelu_tanh" : "gelu_erf"};
  if (n == "scale") return {"linear", x, a.flag ? y : x * y};
  if (n == "dropout") return a.flag ? EltAlg{"linear", 1, 0} : EltAlg{"linear", 1 - x, 0};
  if (n == "assign") return {"linear", 1, 0};
  return {n};
}

T emit_act(Graph& g, const T& x, const Act& a) {
  bool pir = g.pir();
  const std::string& n = a.name;
  static const std::map<std::string, std::string> pir_names = {
      {"relu", "pd_op.relu"},
      {"relu6", "pd_op.relu6"},
      {"sigmoid", "pd_op.sigmoid"},
      {"tanh", "pd_op.tanh"},
      {"exp", "pd_op.exp"},
      {"sqrt", "pd_op.sqrt"},
      {"abs", "pd_op.abs"},
      {"square", "pd_op.square"},
      {"silu", "pd_op.silu"},
      {"hard_swish", "pd_op.hardswish"},
      {"hard_sigmoid", "pd_op.hardsigmoid"},
      {"swish", "pd_op.swish"},
      {"gelu", "pd_op.gelu"},
      {"leaky_relu", "pd_op.leaky_relu"},
      {"scale", "pd_op.scale"},
      {"clip", "pd_op.clip"},
      {"dropout", "pd_op.dropout"},
      {"assign", "pd_op.assign"},
      {"pow", "pd_op.pow"}};
  g.op(n, pir_names.at(n));
  g.in("X", x.id);
  if (pir && n == "scale") g.in("", g.cst({1}, {static_cast<float>(a.a)}).id);
  if (pir && n == "clip") {
    g.in("", g.cst({1}, {static_cast<float>(a.a)}).id);
    g.in("", g.cst({1}, {static_cast<float>(a.b)}).id);
  }
  if (pir && n == "dropout") {
    g.in("", kNoValue);  // seed_tensor
    g.in("", g.cst({1}, {static_cast<float>(a.a)}).id);
  }
  T y = g.out("Out", x.dims);
  if (n == "dropout") g.out("Mask", x.dims);
  if (n == "relu6" && !pir) g.attr("threshold", attr_float(a.a));
  if (n == "hard_swish" && !pir) {
    g.attr("threshold", attr_float(a.a));
    g.attr("scale", attr_float(a.b));
    g.attr("offset", attr_float(a.c));
  }
  if (n == "hard_sigmoid") {
    g.attr("slope", attr_float(a.a));
    g.attr("offset", attr_float(a.b));
  }
  if (n == "swish" && !pir) g.attr("beta", attr_float(a.a));
  if (n == "gelu") g.attr("approximate", attr_bool(a.flag));
  if (n == "leaky_relu") g.attr(pir ? "negative_slope" : "alpha", attr_float(a.a));
  if (n == "scale") {
    if (!pir) g.attr("scale", attr_float(a.a));
    g.attr("bias", attr_float(a.b));
    g.attr("bias_after_scale", attr_bool(a.flag));
  }
  if (n == "pow") g.attr(pir ? "y" : "factor", attr_float(a.a));
  if (n == "clip" && !pir) {
    g.attr("min", attr_float(a.a));
    g.attr("max", attr_float(a.b));
  }
  if (n == "dropout") {
    g.attr("is_test", attr_bool(true));
    if (pir) {
      g.attr("mode", attr_str(a.flag ? "upscale_in_train" : "downscale_in_infer"));
    } else {
      g.attr("dropout_prob", attr_float(a.a));
      // Both legacy spellings of the inference-time downscale.
      g.attr("dropout_implementation",
             attr_str(a.flag ? "upscale_in_train"
                             : (a.c != 0 ? "downgrade_in_infer" : "downscale_in_infer")));
    }
  }
  return y;
}

// ---------------------------------------------------------------------------
// Op emitters.

std::string bin_legacy(const std::string& name) {
  static const std::map<std::string, std::string> m = {
      {"add", "elementwise_add"},      {"subtract", "elementwise_sub"},
      {"multiply", "elementwise_mul"}, {"divide", "elementwise_div"},
      {"maximum", "elementwise_max"},  {"minimum", "elementwise_min"}};
  return m.at(name);
}

T emit_binary(Graph& g, const std::string& name, const T& x, const T& y,
              const std::vector<int64_t>& out_dims, int64_t axis) {
  g.op(bin_legacy(name), "pd_op." + name);
  g.in("X", x.id);
  g.in("Y", y.id);
  T o = g.out("Out", out_dims);
  if (!g.pir()) g.attr("axis", attr_int(axis));
  return o;
}

// Output height/width of a convolution (values < 1: invalid geometry).
void conv_out_hw(const ConvSpec& s, int64_t H, int64_t W, int64_t* OH, int64_t* OW) {
  Pads p = resolve_pads(s.pads, s.algo, H, W, s.sh, s.sw, s.KH, s.KW, s.dh, s.dw);
  int64_t pt = p.t, pb = p.b, pl = p.l, pr = p.r, edh = p.dh, edw = p.dw;
  int64_t eh = H + pt + pb - (edh * (s.KH - 1) + 1);
  int64_t ew = W + pl + pr - (edw * (s.KW - 1) + 1);
  *OH = eh < 0 ? 0 : eh / s.sh + 1;
  *OW = ew < 0 ? 0 : ew / s.sw + 1;
}

// Random kernel geometry (channels given).
void random_geometry(Rng& r, ConvSpec* s) {
  static const std::vector<int64_t> ks = {1, 1, 3, 3, 3, 5};
  s->KH = r.pick(ks);
  s->KW = r.b(0.1) ? r.pick(ks) : s->KH;
  s->sh = r.b(0.65) ? 1 : 2;
  s->sw = r.b(0.9) ? s->sh : 3 - s->sh;
  s->dh = s->KH > 1 && r.b(0.25) ? 2 : 1;
  s->dw = s->KW > 1 && r.b(0.25) ? 2 : 1;
  if (r.b(0.6))
    s->pads = {r.i(0, 2), r.i(0, 2)};
  else
    s->pads = {r.i(0, 3), r.i(0, 3), r.i(0, 3), r.i(0, 3)};
  double u = r.u(0, 1);
  s->algo = u < 0.7 ? "EXPLICIT" : (u < 0.85 ? "SAME" : "VALID");
}

// Random channel structure: plain, depthwise or grouped.
void random_channels(Rng& r, ConvSpec* s) {
  static const std::vector<int64_t> ch = {1, 2, 3, 4, 5, 7, 8, 12, 16};
  int kind = static_cast<int>(r.i(0, 9));
  if (kind < 5) {
    s->G = 1;
    s->C = r.pick(ch);
    s->OC = r.pick(ch);
  } else if (kind < 8) {
    s->C = r.pick(std::vector<int64_t>{2, 3, 5, 8, 12});
    s->G = s->C;
    s->OC = s->C * (r.b(0.8) ? 1 : 2);
    s->dw_type = r.b(0.6);
  } else {
    s->G = r.i(2, 4);
    s->C = s->G * r.i(1, 4);
    s->OC = s->G * r.i(1, 3);
  }
}

T emit_conv(Graph& g, Rng& r, const T& x, const ConvSpec& s, bool legacy_bias, bool filter_feed,
            bool nhwc) {
  int64_t H = nhwc ? x.dims[1] : x.dims[2], W = nhwc ? x.dims[2] : x.dims[3], OH, OW;
  conv_out_hw(s, H, W, &OH, &OW);
  int64_t N = x.dims[0];
  int64_t fan_in = s.C / s.G * s.KH * s.KW;
  double a = std::sqrt(3.0 / static_cast<double>(fan_in));
  std::vector<int64_t> fd{s.OC, s.C / s.G, s.KH, s.KW};
  T w = filter_feed ? g.feed(fd, -a, a) : g.cst(fd, r.vec(prod(fd), -a, a));
  std::string type = s.dw_type ? "depthwise_conv2d" : "conv2d";
  g.op(type, "pd_op." + type);
  g.in("Input", x.id);
  g.in("Filter", w.id);
  if (legacy_bias) g.in("Bias", g.cst({s.OC}, r.vec(s.OC, -0.5, 0.5)).id);
  T y = g.out("Output",
              nhwc ? std::vector<int64_t>{N, OH, OW, s.OC} : std::vector<int64_t>{N, s.OC, OH, OW});
  bool pir = g.pir();
  g.attr("strides", attr_ints({s.sh, s.sw}, pir));
  g.attr("paddings", attr_ints(s.pads, pir));
  g.attr("dilations", attr_ints({s.dh, s.dw}, pir));
  g.attr("groups", attr_int(s.G));
  g.attr("padding_algorithm", attr_str(s.algo));
  g.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
  return y;
}

T emit_batch_norm(Graph& g, Rng& r, const T& x) {
  int64_t C = x.dims[1];
  T scale = g.cst({C}, r.vec(C, 0.5, 1.5)), bias = g.cst({C}, r.vec(C, -0.5, 0.5)),
    mean = g.cst({C}, r.vec(C, -0.5, 0.5)), var = g.cst({C}, r.vec(C, 0.05, 2.0));
  double eps = r.b() ? 1e-5 : 1e-3;
  T y;
  if (g.pir()) {
    g.op("", r.b() ? "pd_op.batch_norm_" : "pd_op.batch_norm");
    for (ValueId v : {x.id, mean.id, var.id, scale.id, bias.id}) g.in("", v);
    y = g.out("", x.dims);
    for (int k = 0; k < 5; ++k) g.out("", {C}, false);
    g.attr("data_format", attr_str("NCHW"));
  } else {
    g.op("batch_norm", "");
    g.in("X", x.id);
    g.in("Scale", scale.id);
    g.in("Bias", bias.id);
    g.in("Mean", mean.id);
    g.in("Variance", var.id);
    y = g.out("Y", x.dims);
    g.out("MeanOut", {C}, false);
    g.out("VarianceOut", {C}, false);
    g.out("SavedMean", {C}, false);
    g.out("SavedVariance", {C}, false);
    g.attr("data_layout", attr_str("NCHW"));
  }
  g.attr("epsilon", attr_float(eps));
  g.attr("is_test", attr_bool(true));
  g.attr("momentum", attr_float(0.9));
  return y;
}

T emit_reshape(Graph& g, const T& x, const std::vector<int64_t>& shape, bool dyn) {
  g.op("reshape2", "pd_op.reshape");
  g.in("X", x.id);
  if (g.pir()) g.in("", g.cst_i64(shape).id);
  T y = g.out("Out", shape, dyn);
  if (!g.pir()) g.attr("shape", attr_ints(shape, false));
  return y;
}

T emit_transpose(Graph& g, const T& x, const std::vector<int64_t>& perm) {
  std::vector<int64_t> od;
  for (int64_t p : perm) od.push_back(x.dims[static_cast<size_t>(p)]);
  g.op("transpose2", "pd_op.transpose");
  g.in("X", x.id);
  T y = g.out("Out", od);
  g.attr(g.pir() ? "perm" : "axis", attr_ints(perm, g.pir()));
  return y;
}

// Output H/W of a pooling (values < 1: invalid geometry).
void pool_out_hw(const PoolSpec& s, int64_t H, int64_t W, int64_t* OH, int64_t* OW) {
  if (s.global) {
    *OH = *OW = 1;
    return;
  }
  if (s.adaptive) {
    *OH = s.kh;
    *OW = s.kw;
    return;
  }
  Pads p = resolve_pads(s.pads, s.algo, H, W, s.sh, s.sw, s.kh, s.kw, 1, 1);
  int64_t pt = p.t, pb = p.b, pl = p.l, pr = p.r;
  int64_t nh = H - s.kh + pt + pb + (s.ceil_mode ? s.sh - 1 : 0);
  int64_t nw = W - s.kw + pl + pr + (s.ceil_mode ? s.sw - 1 : 0);
  *OH = nh < 0 ? 0 : nh / s.sh + 1;
  *OW = nw < 0 ? 0 : nw / s.sw + 1;
}

T emit_pool(Graph& g, const T& x, const PoolSpec& s) {
  int64_t H = s.nhwc ? x.dims[1] : x.dims[2], W = s.nhwc ? x.dims[2] : x.dims[3], OH, OW;
  pool_out_hw(s, H, W, &OH, &OW);
  int64_t N = x.dims[0], C = s.nhwc ? x.dims[3] : x.dims[1];
  bool pir = g.pir();
  T ks;
  if (pir) ks = s.ksize_feed ? g.feed_i64({s.kh, s.kw}) : g.cst_i64({s.kh, s.kw});
  g.op("pool2d", "pd_op.pool2d");
  g.in("X", x.id);
  if (pir) g.in("", ks.id);
  T y = g.out("Out",
              s.nhwc ? std::vector<int64_t>{N, OH, OW, C} : std::vector<int64_t>{N, C, OH, OW});
  if (!pir) g.attr("ksize", attr_ints({s.kh, s.kw}, false));
  g.attr("pooling_type", attr_str(s.is_max ? "max" : "avg"));
  g.attr("strides", attr_ints({s.sh, s.sw}, pir));
  g.attr("paddings", attr_ints(s.pads, pir));
  g.attr("global_pooling", attr_bool(s.global));
  g.attr("adaptive", attr_bool(s.adaptive));
  g.attr("exclusive", attr_bool(s.exclusive));
  g.attr("ceil_mode", attr_bool(s.ceil_mode));
  g.attr("padding_algorithm", attr_str(s.algo));
  g.attr("data_format", attr_str(s.nhwc ? "NHWC" : "NCHW"));
  return y;
}

// Output shape of matmul_v2 with Paddle's 1-D rules; empty if invalid.
std::vector<int64_t> matmul_dims(std::vector<int64_t> xd, std::vector<int64_t> yd, bool tx,
                                 bool ty) {
  bool x1 = xd.size() == 1, y1 = yd.size() == 1;
  if (x1) tx = false, xd.insert(xd.begin(), 1);
  if (y1) ty = false, yd.push_back(1);
  size_t xr = xd.size(), yr = yd.size();
  int64_t m = tx ? xd[xr - 1] : xd[xr - 2], kx = tx ? xd[xr - 2] : xd[xr - 1];
  int64_t ky = ty ? yd[yr - 1] : yd[yr - 2], n = ty ? yd[yr - 2] : yd[yr - 1];
  if (kx != ky) return {};
  std::vector<int64_t> xb(xd.begin(), xd.end() - 2), yb(yd.begin(), yd.end() - 2);
  size_t r = std::max(xb.size(), yb.size());
  xb.insert(xb.begin(), r - xb.size(), 1);
  yb.insert(yb.begin(), r - yb.size(), 1);
  std::vector<int64_t> out;
  for (size_t i = 0; i < r; ++i) {
    if (xb[i] != yb[i] && xb[i] != 1 && yb[i] != 1) return {};
    out.push_back(std::max(xb[i], yb[i]));
  }
  if (!x1) out.push_back(m);
  if (!y1) out.push_back(n);
  return out;
}

// matmul_v2 / pd_op.matmul, or (v1) the old matmul with alpha.
T emit_matmul(Graph& g, const T& x, const T& y, bool tx, bool ty, bool v1, double alpha) {
  std::vector<int64_t> od = matmul_dims(x.dims, y.dims, tx, ty);
  if (od.empty() && !(x.dims.size() == 1 && y.dims.size() == 1))
    throw std::logic_error("generator: bad matmul shapes");
  if (od.empty() && !g.pir()) od = {1};  // legacy vector . vector is [1]
  g.op(v1 ? "matmul" : "matmul_v2", "pd_op.matmul");
  g.in("X", x.id);
  g.in("Y", y.id);
  T o = g.out("Out", od);
  if (v1) {
    g.attr("transpose_X", attr_bool(tx));
    g.attr("transpose_Y", attr_bool(ty));
    g.attr("alpha", attr_float(alpha));
  } else {
    g.attr(g.pir() ? "transpose_x" : "trans_x", attr_bool(tx));
    g.attr(g.pir() ? "transpose_y" : "trans_y", attr_bool(ty));
  }
  return o;
}

T emit_softmax(Graph& g, const T& x, int64_t axis) {
  g.op("softmax", "pd_op.softmax");
  g.in("X", x.id);
  T y = g.out("Out", x.dims);
  g.attr("axis", attr_int(axis));
  return y;
}

T emit_layer_norm(Graph& g, Rng& r, const T& x, int64_t axis, bool scale, bool bias, double eps) {
  int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t a = axis < 0 ? axis + rank : axis, left = 1, right = 1;
  for (int64_t k = 0; k < rank; ++k) (k < a ? left : right) *= x.dims[static_cast<size_t>(k)];
  ValueId s = scale ? g.cst({right}, r.vec(right, 0.5, 1.5)).id : kNoValue;
  ValueId b = bias ? g.cst({right}, r.vec(right, -0.5, 0.5)).id : kNoValue;
  g.op("layer_norm", "pd_op.layer_norm");
  g.in("X", x.id);
  g.in("Scale", s);
  g.in("Bias", b);
  T y = g.out("Y", x.dims);
  g.out("Mean", {left}, false);
  g.out("Variance", {left}, false);
  g.attr("epsilon", attr_float(eps));
  g.attr("begin_norm_axis", attr_int(axis));
  return y;
}

}  // namespace pif::test
