// Randomised checks of the reference batch_norm / layer_norm / interp / pixel_shuffle / grid_sample
// kernels against naive loops written independently here (double accumulation). Each case builds a
// one-op program in memory (legacy or PIR form, chosen at random, so that the lowering of slots /
// PIR operand orders is tested too), with parameters as constant values, runs it through
// pif::Executor with random inputs and compares the output: |got - want| <= 1e-4 * max(1, |want|).
// The suite's cases draw from one stream (ref_conv.h), in file order: ref_conv_1_*.cc, then
// ref_conv_2_*.cc.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/ref_conv.h"

namespace pif::test {
namespace {

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
      for (ValueId v : {xi, mi, vi, si, bi}) op.in("", {v});
      op.out("out", true);
      for (int k = 0; k < 5; ++k) op.out("aux" + std::to_string(k), false);
      op.attr("data_format", attr_str(layout));
    } else {
      // Legacy slots in file order differ from the canonical order on purpose.
      const std::pair<const char*, ValueId> ins[] = {
          {"Bias", bi}, {"Mean", mi}, {"Scale", si}, {"Variance", vi}, {"X", xi}};
      for (const auto& in : ins) op.in(in.first, {in.second});
      for (const char* o : {"MeanOut", "SavedMean", "SavedVariance", "VarianceOut"})
        op.out(o, false);
      op.out("Y", true);
      op.attr("data_layout", attr_str(layout));
    }
    op.attr("epsilon", attr_float(eps));
    op.attr("is_test", attr_bool(true));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    check_f32("batch_norm", d.str(), got, dims, want);
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
    check_f32("layer_norm", d.str(), got, dims, want);
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
    ValueId xi = op.feed_image("x", x, {N, C, H, W}, nhwc);
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
    check_image("interp", d.str(), got, {N, C, OH, OW}, want, nhwc);
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
    op.in("X", {op.feed_image("x", x, {N, C, H, W}, nhwc)});
    op.out("Out", true);
    op.attr("upscale_factor", attr_int(rr));
    op.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
    NamedTensor got = op.run(r.b() ? 1 : 4);
    check_image("pixel_shuffle", d.str(), got, {N, OC, OH, OW}, want, nhwc);
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
    check_f32("grid_sample", d.str(), got, {N, C, OH, OW}, want);
  });
}

// ---------------------------------------------------------------------------
// Invalid attributes must fail with ModelError at load (not crash).

void case_errors() {
  std::vector<float> x(2 * 3 * 4 * 4, 0.5f), w(4 * 3 * 3 * 3, 0.1f);
  // One legacy op on an input x[2,3,4,4] that must fail with a ModelError.
  auto expect_fail = [&](const std::string& what, const char* type, const char* in_slot,
                         const char* out_slot, const std::function<void(OneOp&)>& more) {
    expect_model_error("errors", what, [&] {
      OneOp op(type, false);
      op.in(in_slot, {op.feed_f32("x", {2, 3, 4, 4}, x)});
      more(op);
      op.out(out_slot, true);
      op.run(1);
    });
  };
  expect_fail("conv paddings of 3 values", "conv2d", "Input", "Output", [&](OneOp& op) {
    op.in("Filter", {op.const_f32("w", {4, 3, 3, 3}, w)});
    op.attr("paddings", attr_ints({1, 1, 1}, false));
  });
  expect_fail("conv channel mismatch", "conv2d", "Input", "Output", [&](OneOp& op) {
    op.in("Filter", {op.const_f32("w", {4, 3, 3, 3}, w)});
    op.attr("groups", attr_int(3));
  });
  expect_fail("conv kernel larger than input", "conv2d", "Input", "Output", [&](OneOp& op) {
    std::vector<float> big(4 * 3 * 5 * 5, 0.1f);
    op.in("Filter", {op.const_f32("w", {4, 3, 5, 5}, big)});
  });
  expect_fail("pool unknown type", "pool2d", "X", "Out", [&](OneOp& op) {
    op.attr("pooling_type", attr_str("median"));
    op.attr("ksize", attr_ints({2, 2}, false));
  });
  expect_fail("batch_norm channel mismatch", "batch_norm", "X", "Y", [&](OneOp& op) {
    std::vector<float> p(2, 1.f);
    for (const char* slot : {"Scale", "Bias", "Mean", "Variance"})
      op.in(slot, {op.const_f32(std::string(1, static_cast<char>(std::tolower(slot[0]))), {2}, p)});
  });
  expect_fail("interp without size", "nearest_interp_v2", "X", "Out",
              [&](OneOp& op) { op.attr("interp_method", attr_str("nearest")); });
  expect_fail("pixel_shuffle indivisible channels", "pixel_shuffle", "X", "Out",
              [&](OneOp& op) { op.attr("upscale_factor", attr_int(2)); });
}

}  // namespace

PIF_TEST(ref_conv, batch_norm) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60); ++k) case_batch_norm(s.rng, s.idx++);
}

PIF_TEST(ref_conv, layer_norm) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60); ++k) case_layer_norm(s.rng, s.idx++);
}

PIF_TEST(ref_conv, interp) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60) * 2; ++k) case_interp(s.rng, s.idx++);
}

PIF_TEST(ref_conv, pixel_shuffle) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60) / 2; ++k) case_pixel_shuffle(s.rng, s.idx++);
}

PIF_TEST(ref_conv, grid_sample) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60); ++k) case_grid_sample(s.rng, s.idx++);
}

// Invalid attributes must fail with ModelError at load (not crash).
PIF_TEST(ref_conv, errors) { case_errors(); }

}  // namespace pif::test
