// ONNX exporter, layer converters: conv / conv transpose, pool (adaptive too), batch / layer norm,
// matmul, mul and softmax, with their conv / pool attribute readers.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "common/error.h"
#include "export/onnx_internal.h"

namespace pif {
namespace onnx {

void pair_attr(const AttrReader& a, const char* name, int64_t def, int64_t* h, int64_t* w) {
  std::vector<int64_t> v = a.ints(name, {def, def});
  if (v.size() == 1) v.push_back(v[0]);
  if (v.size() != 2)
    throw OpError(code::kFormat, std::string("attribute '") + name + "' must have 2 values");
  *h = v[0];
  *w = v[1];
}
void pads4(const AttrReader& a, int64_t p[4]) {
  std::vector<int64_t> v = a.ints("paddings", {0, 0});
  if (v.size() == 2) {
    p[0] = p[1] = v[0];
    p[2] = p[3] = v[1];
  } else if (v.size() == 4) {
    for (int i = 0; i < 4; ++i) p[i] = v[static_cast<size_t>(i)];
  } else {
    throw OpError(code::kFormat, "attribute 'paddings' must have 2 or 4 values");
  }
}
bool layout_nhwc(const AttrReader& a, const char* name) {
  std::string f = a.s(name, "NCHW");
  if (f == "NCHW" || f == "AnyLayout" || f.empty()) return false;
  if (f == "NHWC") return true;
  throw OpError(code::kUnsupported, std::string("unsupported ") + name + " '" + f + "'");
}
void same_pad(int64_t in, int64_t st, int64_t k, int64_t* p0, int64_t* p1) {
  int64_t out = (in + st - 1) / st;
  int64_t sum = std::max<int64_t>((out - 1) * st + k - in, 0);
  *p0 = sum / 2;
  *p1 = sum - *p0;
}

void Exporter::cv_conv(const Node& n, bool transpose) {
  AttrReader a(*n.source);
  int64_t sh, sw, dh, dw, p[4];
  pair_attr(a, "strides", 1, &sh, &sw);
  pair_attr(a, "dilations", 1, &dh, &dw);
  pads4(a, p);  // top, bottom, left, right
  int64_t groups = a.i("groups", 1);
  std::string algo = a.s("padding_algorithm", "EXPLICIT");
  bool nhwc = layout_nhwc(a, "data_format");
  std::string x = in(n, 0), f = in(n, 1);
  if (x.empty() || f.empty()) bad("missing Input or Filter");
  std::vector<int64_t> fd = dims_of(f);
  if (fd.size() != 4) unsupported("filter must be 4-D");
  std::vector<int64_t> xd = dims_of(x);
  if (xd.size() != 4) unsupported("input must be 4-D");
  if (nhwc) xd = {xd[0], xd[3], xd[1], xd[2]};
  int64_t H = xd[2], W = xd[3], KH = fd[2], KW = fd[3];
  std::vector<OA> attrs;
  bool auto_same = false;
  if (algo == "VALID") {
    p[0] = p[1] = p[2] = p[3] = 0;
  } else if (algo == "SAME") {
    dh = dw = 1;
    if (H >= 0 && W >= 0) {
      same_pad(H, sh, KH, &p[0], &p[1]);
      same_pad(W, sw, KW, &p[2], &p[3]);
    } else if (!transpose) {
      auto_same = true;
    } else {
      unsupported("conv2d_transpose with padding_algorithm SAME needs static input H/W");
    }
  } else if (algo != "EXPLICIT" && !algo.empty()) {
    bad("unknown padding_algorithm '" + algo + "'");
  }
  attrs.push_back(a_is("kernel_shape", {KH, KW}));
  attrs.push_back(a_is("strides", {sh, sw}));
  attrs.push_back(a_is("dilations", {dh, dw}));
  attrs.push_back(a_i("group", groups));
  if (auto_same)
    attrs.push_back(a_s("auto_pad", "SAME_UPPER"));
  else
    attrs.push_back(a_is("pads", {p[0], p[2], p[1], p[3]}));
  std::vector<std::string> ins = {nhwc ? to_nchw(x) : x, f};
  if (has(n, 2)) {
    std::string b = in(n, 2);
    if (rank_of(b) != 1) b = op("Reshape", {b, c_i64({-1})});
    ins.push_back(b);
  }
  if (transpose) {
    std::vector<int64_t> osize = a.ints("output_size", {});
    if (has(n, 3)) {
      std::vector<int64_t> v;
      if (!cints(n, 3, &v)) unsupported("conv2d_transpose output_size is not a constant");
      osize = v;
    }
    std::vector<int64_t> opad = a.ints("output_padding", {});
    if (opad.size() == 1) opad.push_back(opad[0]);
    if (!osize.empty()) {
      if (osize.size() == 1) osize.push_back(osize[0]);
      if (H < 0 || W < 0) unsupported("conv2d_transpose output_size with dynamic input H/W");
      int64_t ih = (H - 1) * sh - p[0] - p[1] + dh * (KH - 1) + 1;
      int64_t iw = (W - 1) * sw - p[2] - p[3] + dw * (KW - 1) + 1;
      opad = {osize[0] - ih, osize[1] - iw};
      if (opad[0] < 0 || opad[1] < 0) bad("output_size is smaller than the inferred size");
    }
    if (!opad.empty() && (opad[0] || opad[1])) attrs.push_back(a_is("output_padding", opad));
  }
  std::string o = out(n, 0, DType::Float32);
  const char* type = transpose ? "ConvTranspose" : "Conv";
  if (nhwc)
    from_nchw(op(type, ins, attrs), o);
  else
    op(type, ins, attrs, o);
}

// ---------------------------------------------------------------- pool

void Exporter::cv_pool(const Node& n) {
  AttrReader a(*n.source);
  std::string type = a.s("pooling_type", "max");
  bool is_max = type == "max";
  if (!is_max && type != "avg") bad("unknown pooling_type '" + type + "'");
  std::vector<int64_t> k;
  if (has(n, 1)) {
    if (!cints(n, 1, &k)) unsupported("pool2d kernel_size is not a constant");
  } else {
    k = a.ints("ksize", {});
  }
  bool global = a.b("global_pooling", false), adaptive = a.b("adaptive", false);
  bool exclusive = a.b("exclusive", true), ceil_mode = a.b("ceil_mode", false);
  int64_t sh, sw, p[4];
  pair_attr(a, "strides", 1, &sh, &sw);
  pads4(a, p);
  std::string algo = a.s("padding_algorithm", "EXPLICIT");
  bool nhwc = layout_nhwc(a, "data_format");
  std::string x = in(n, 0);
  std::vector<int64_t> xd = dims_of(x);
  if (xd.size() != 4) unsupported("pool2d input must be 4-D");
  if (nhwc) xd = {xd[0], xd[3], xd[1], xd[2]};
  int64_t H = xd[2], W = xd[3];
  if (!global) {
    if (k.size() == 1) k.push_back(k[0]);
    if (k.size() != 2) bad("pool2d kernel size must have 2 values");
  }
  std::string xi = nhwc ? to_nchw(x) : x;
  std::string o = out(n, 0, DType::Float32);
  std::string res = nhwc ? std::string() : o;
  std::string r;
  if (global || (adaptive && k[0] == 1 && k[1] == 1)) {
    r = op(is_max ? "GlobalMaxPool" : "GlobalAveragePool", {xi}, {}, res);
  } else if (adaptive) {
    // Exact only when every bin has the same size: in % out == 0.
    if (H < 0 || W < 0) {
      unsupported("adaptive pool2d to " + shape_str(k) +
                  " needs static input H/W (ONNX has no "
                  "adaptive pooling)");
    }
    if (k[0] <= 0 || k[1] <= 0) bad("adaptive pool2d output size must be positive");
    if (H % k[0] == 0 && W % k[1] == 0) {
      int64_t kh = H / k[0], kw = W / k[1];
      std::vector<OA> at = {a_is("kernel_shape", {kh, kw}), a_is("strides", {kh, kw}),
                            a_is("pads", {0, 0, 0, 0})};
      r = op(is_max ? "MaxPool" : "AveragePool", {xi}, at, res);
    } else {
      r = adaptive_uneven(xi, H, W, k[0], k[1], is_max, res);
    }
  } else {
    bool auto_same = false;
    if (algo == "VALID") {
      p[0] = p[1] = p[2] = p[3] = 0;
    } else if (algo == "SAME") {
      if (H >= 0 && W >= 0) {
        same_pad(H, sh, k[0], &p[0], &p[1]);
        same_pad(W, sw, k[1], &p[2], &p[3]);
      } else {
        auto_same = true;
      }
    } else if (algo != "EXPLICIT" && !algo.empty()) {
      bad("unknown padding_algorithm '" + algo + "'");
    }
    std::vector<OA> at = {a_is("kernel_shape", k), a_is("strides", {sh, sw})};
    if (!is_max && !exclusive && ceil_mode && !auto_same) {
      // Paddle divides by kh*kw even where a ceil-mode window runs past the
      // padded input; ONNX clips the divisor there. Zero-pad explicitly,
      // with stride - 1 extra at the end so that floor-mode pooling yields
      // the ceil-mode output count and every window is full.
      std::string padded =
          op("Pad", {xi, c_i64({0, 0, p[0], p[2], 0, 0, p[1] + sh - 1, p[3] + sw - 1})});
      at.push_back(a_is("pads", {0, 0, 0, 0}));
      at.push_back(a_i("count_include_pad", 1));
      r = op("AveragePool", {padded}, at, res);
      if (nhwc) from_nchw(r, o);
      return;
    }
    if (auto_same)
      at.push_back(a_s("auto_pad", "SAME_UPPER"));
    else
      at.push_back(a_is("pads", {p[0], p[2], p[1], p[3]}));
    if (ceil_mode) at.push_back(a_i("ceil_mode", 1));
    if (!is_max) at.push_back(a_i("count_include_pad", exclusive ? 0 : 1));
    r = op(is_max ? "MaxPool" : "AveragePool", {xi}, at, res);
  }
  if (nhwc) from_nchw(r, o);
}

// Adaptive pooling with uneven bins (Paddle: bin o of an axis covers
// [floor(o*in/out), ceil((o+1)*in/out))). Both reductions are separable:
// avg = Ah . X . Aw^T with per-axis averaging matrices (MatMul); max = the
// elementwise Max over Gathers of each bin's j-th index (short bins repeat
// their last index), first along W, then along H.
std::string Exporter::adaptive_uneven(const std::string& x, int64_t H, int64_t W, int64_t OH,
                                      int64_t OW, bool is_max, const std::string& res) {
  auto bins = [](int64_t in, int64_t out, std::vector<int64_t>* a, std::vector<int64_t>* b) {
    for (int64_t o = 0; o < out; ++o) {
      a->push_back((o * in) / out);
      b->push_back(((o + 1) * in + out - 1) / out);
    }
  };
  std::vector<int64_t> ha, hb, wa, wb;
  bins(H, OH, &ha, &hb);
  bins(W, OW, &wa, &wb);
  if (!is_max) {
    auto matrix = [&](int64_t in, int64_t out, const std::vector<int64_t>& a,
                      const std::vector<int64_t>& b, bool transposed) {
      std::vector<float> m(static_cast<size_t>(in * out), 0.f);
      for (int64_t o = 0; o < out; ++o) {
        float w = 1.f / static_cast<float>(b[o] - a[o]);
        for (int64_t i = a[o]; i < b[o]; ++i) m[transposed ? i * out + o : o * in + i] = w;
      }
      std::vector<uint8_t> bytes(m.size() * 4);
      std::memcpy(bytes.data(), m.data(), bytes.size());
      return constant(DType::Float32,
                      transposed ? std::vector<int64_t>{in, out} : std::vector<int64_t>{out, in},
                      bytes);
    };
    std::string z = W == OW ? x : op("MatMul", {x, matrix(W, OW, wa, wb, true)});
    return H == OH ? op("Identity", {z}, {}, res)
                   : op("MatMul", {matrix(H, OH, ha, hb, false), z}, {}, res);
  }
  auto reduce_axis = [&](const std::string& t, int64_t axis, const std::vector<int64_t>& a,
                         const std::vector<int64_t>& b, const std::string& o) {
    int64_t maxlen = 0;
    for (size_t i = 0; i < a.size(); ++i) maxlen = std::max(maxlen, b[i] - a[i]);
    std::vector<std::string> parts;
    for (int64_t j = 0; j < maxlen; ++j) {
      std::vector<int64_t> idx;
      for (size_t i = 0; i < a.size(); ++i) idx.push_back(std::min(a[i] + j, b[i] - 1));
      parts.push_back(op("Gather", {t, c_i64(idx)}, {a_i("axis", axis)}));
    }
    return parts.size() == 1 ? op("Identity", parts, {}, o) : op("Max", parts, {}, o);
  };
  std::string z = reduce_axis(x, 3, wa, wb, "");
  return reduce_axis(z, 2, ha, hb, res);
}

// ---------------------------------------------------------------- norms

void Exporter::cv_batch_norm(const Node& n) {
  AttrReader a(*n.source);
  double eps = a.f("epsilon", 1e-5);
  std::string fmt = a.s(a.has("data_layout") ? "data_layout" : "data_format", "NCHW");
  // Channels first or last, as the batch_norm kernel reads the layout.
  static const std::map<std::string, bool> kChannelsLast = {
      {"NCHW", false}, {"NCL", false}, {"NC", false}, {"NCDHW", false}, {"AnyLayout", false},
      {"", false},     {"NHWC", true}, {"NLC", true}, {"NDHWC", true}};
  auto layout = kChannelsLast.find(fmt);
  if (layout == kChannelsLast.end()) bad("unsupported data_layout '" + fmt + "'");
  const bool last = layout->second;
  std::string x = in(n, 0), scale = in(n, 1), bias = in(n, 2), mean = in(n, 3), var = in(n, 4);
  if (x.empty() || scale.empty() || bias.empty() || mean.empty() || var.empty())
    bad("batch_norm needs X, Scale, Bias, Mean and Variance");
  std::string o = out(n, 0, DType::Float32);
  if (!last) {
    op("BatchNormalization", {x, scale, bias, mean, var}, {a_f("epsilon", eps)}, o);
    return;
  }
  // Channel-last: y = (x - mean) * a + bias, a = scale / sqrt(var + eps),
  // folded at export when the statistics are constants (as the kernel does).
  std::vector<double> s, v;
  if (const_doubles(scale, &s) && const_doubles(var, &v) && s.size() == v.size()) {
    std::vector<uint8_t> b(s.size() * 4);
    for (size_t c = 0; c < s.size(); ++c) {
      float f = static_cast<float>(static_cast<float>(s[c]) * (1.0 / std::sqrt(v[c] + eps)));
      std::memcpy(b.data() + c * 4, &f, 4);
    }
    std::string av = constant(DType::Float32, {static_cast<int64_t>(s.size())}, b);
    op("Add", {op("Mul", {op("Sub", {x, mean}), av}), bias}, {}, o);
    return;
  }
  int64_t r = rank_of(x);
  std::vector<int64_t> perm = {0, r - 1}, inv(static_cast<size_t>(r));
  for (int64_t i = 1; i < r - 1; ++i) perm.push_back(i);
  for (int64_t i = 0; i < r; ++i) inv[perm[i]] = i;
  std::string t = op("Transpose", {x}, {a_is("perm", perm)});
  std::string y = op("BatchNormalization", {t, scale, bias, mean, var}, {a_f("epsilon", eps)});
  op("Transpose", {y}, {a_is("perm", inv)}, o);
}

void Exporter::cv_layer_norm(const Node& n) {
  AttrReader a(*n.source);
  double eps = a.f("epsilon", 1e-5);
  int64_t axis = a.i("begin_norm_axis", 1);
  std::string x = in(n, 0), scale = in(n, 1), bias = in(n, 2);
  int64_t r = rank_of(x);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) bad("begin_norm_axis out of range");
  std::vector<int64_t> xd = dims_of(x);
  std::string o = out(n, 0, DType::Float32);
  // Normalise over one (flattened) last axis.
  std::string xx = x;
  bool flat = axis != r - 1;
  if (flat) {
    std::vector<int64_t> shp(static_cast<size_t>(axis), 0);
    shp.push_back(-1);
    xx = op("Reshape", {x, c_i64(shp)});
  }
  int64_t right = 1;
  for (int64_t i = axis; i < r; ++i) right = (right < 0 || xd[i] < 0) ? -1 : right * xd[i];
  std::string res = flat ? std::string() : o;
  std::string y;
  if (scale.empty() && right > 0) {
    std::vector<uint8_t> ones(static_cast<size_t>(right) * 4);
    float one = 1.f;
    for (int64_t i = 0; i < right; ++i) std::memcpy(ones.data() + i * 4, &one, 4);
    scale = constant(DType::Float32, {right}, ones);
  }
  auto flat1 = [&](const std::string& t) {
    return rank_of(t) == 1 ? t : op("Reshape", {t, c_i64({-1})});
  };
  if (o_.opset >= 17 && !scale.empty()) {
    std::vector<std::string> ins = {xx, flat1(scale)};
    if (!bias.empty()) ins.push_back(flat1(bias));
    y = op("LayerNormalization", ins, {a_i("axis", -1), a_f("epsilon", eps)}, res);
  } else {
    std::vector<OA> ra = {a_is("axes", {-1}), a_i("keepdims", 1)};
    std::string mean = op("ReduceMean", {xx}, ra);
    std::string d = op("Sub", {xx, mean});
    std::string var = op("ReduceMean", {op("Mul", {d, d})}, ra);
    std::string z = op("Div", {d, op("Sqrt", {op("Add", {var, c_scalar(DType::Float32, eps)})})});
    if (!scale.empty()) z = op("Mul", {z, flat1(scale)});
    if (!bias.empty()) z = op("Add", {z, flat1(bias)});
    y = op("Identity", {z}, {}, res);
  }
  if (flat) op("Reshape", {y, op("Shape", {x})}, {}, o);
}

// ---------------------------------------------------------------- matmul

void Exporter::cv_matmul(const Node& n, bool v1) {
  AttrReader a(*n.source);
  bool tx, ty;
  double alpha = 1.0;
  if (v1) {
    tx = a.b("transpose_X", false);
    ty = a.b("transpose_Y", false);
    alpha = a.f("alpha", 1.0);
  } else {
    tx = a.b(a.has("transpose_x") ? "transpose_x" : "trans_x", false);
    ty = a.b(a.has("transpose_y") ? "transpose_y" : "trans_y", false);
  }
  std::string x = in(n, 0), y = in(n, 1);
  int64_t rx = rank_of(x), ry = rank_of(y);
  auto swap_last = [&](const std::string& t, int64_t r) {
    std::vector<int64_t> perm;
    for (int64_t i = 0; i < r - 2; ++i) perm.push_back(i);
    perm.push_back(r - 1);
    perm.push_back(r - 2);
    return op("Transpose", {t}, {a_is("perm", perm)});
  };
  if (tx && rx >= 2) x = swap_last(x, rx);
  if (ty && ry >= 2) y = swap_last(y, ry);
  std::string o = out(n, 0, DType::Float32);
  bool vec = rx == 1 && ry == 1 && rank0_as_1d(n);
  std::string r = op("MatMul", {x, y}, {}, (alpha == 1.0 && !vec) ? o : std::string());
  if (alpha != 1.0)
    r = op("Mul", {r, c_scalar(DType::Float32, alpha)}, {}, vec ? std::string() : o);
  if (vec) op("Reshape", {r, c_i64({1})}, {}, o);
}

void Exporter::cv_mul(const Node& n) {
  AttrReader a(*n.source);
  int64_t xn = a.i("x_num_col_dims", 1), yn = a.i("y_num_col_dims", 1);
  std::string x = in(n, 0), y = in(n, 1);
  int64_t rx = rank_of(x), ry = rank_of(y);
  std::vector<int64_t> yd = dims_of(y);
  if (xn < 1 || xn > std::max<int64_t>(rx, 1) || yn < 1 || yn > std::max<int64_t>(ry, 1))
    bad("mul: num_col_dims out of range");
  std::string o = out(n, 0, DType::Float32);
  std::string x2 = rx == 2 && xn == 1 ? x : op("Flatten", {x}, {a_i("axis", xn)});
  std::string y2 = ry == 2 && yn == 1 ? y : op("Flatten", {y}, {a_i("axis", yn)});
  if (xn == 1 && ry - yn == 1) {
    op("MatMul", {x2, y2}, {}, o);
    return;
  }
  std::string m = op("MatMul", {x2, y2});
  // Output dims: x[:xn] + y[yn:].
  std::vector<std::string> parts = {shape_slice(x, 0, xn)};
  bool ystatic = true;
  std::vector<int64_t> tail;
  for (int64_t i = yn; i < ry; ++i) {
    if (yd[i] < 0) ystatic = false;
    tail.push_back(yd[i]);
  }
  if (ry > yn) parts.push_back(ystatic ? c_i64(tail) : shape_slice(y, yn, ry));
  std::string shp = parts.size() == 1 ? parts[0] : op("Concat", parts, {a_i("axis", 0)});
  op("Reshape", {m, shp}, {}, o);
}

void Exporter::cv_softmax(const Node& n) {
  int64_t axis = AttrReader(*n.source).i("axis", -1);
  std::string x = in(n, 0);
  op("Softmax", {x}, {a_i("axis", axis)}, out(n, 0, DType::Float32));
}

}  // namespace onnx
}  // namespace pif
