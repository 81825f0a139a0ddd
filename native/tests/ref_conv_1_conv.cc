// Randomised checks of the reference conv2d / conv2d_transpose / pool2d kernels against naive loops
// written independently here (double accumulation). Each case builds a one-op program in memory
// (legacy or PIR form, chosen at random, so that the lowering of slots / PIR operand orders is
// tested too), with parameters as constant values, runs it through pif::Executor with random inputs
// and compares the output: |got - want| <= 1e-4 * max(1, |want|). The suite's cases draw from one
// stream (ref_conv.h), in file order: ref_conv_1_*.cc, then ref_conv_2_*.cc.

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/error.h"
#include "tests/ref_conv.h"

namespace pif::test {
namespace {

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
  int64_t H, W, KH, KW, sh, sw, dh, dw;
  std::tie(H, W, KH, KW, sh, sw, dh, dw) = random_window(r, 13, 3);
  std::vector<int64_t> pads = random_pads(r, 3);
  std::string algo = random_algo(r, 0.7);
  if (kind == 3 || kind == 4) {
    KH = KW = 1;
    if (r.b(0.8)) {
      sh = sw = 1;
      pads = {0, 0};
      algo = "EXPLICIT";
    }
  }
  if (big) {
    std::tie(N, G, Cg, OCg, C, OC, H, W) = std::make_tuple(1, 1, 16, 8, 16, 8, 190, 187);
    std::tie(KH, KW, sh, sw, dh, dw) = std::make_tuple(3, 3, 1, 1, 1, 1);
    pads = {1, 1};
    algo = "EXPLICIT";
  }
  bool nhwc = !big && r.b(0.1);
  bool bias = !pir && r.b(0.2);
  // Resolve geometry (independently of the kernel).
  Pads pd = resolve_pads(pads, algo, H, W, sh, sw, KH, KW, dh, dw);
  int64_t pt = pd.t, pb = pd.b, pl = pd.l, pr = pd.r, edh = pd.dh, edw = pd.dw;
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
    ValueId xi = op.feed_image("x", x, {N, C, H, W}, nhwc);
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
    check_image("conv2d", d.str(), got, {N, OC, OH, OW}, want, nhwc);
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
  int64_t H, W, KH, KW, sh, sw, dh, dw;
  std::tie(H, W, KH, KW, sh, sw, dh, dw) = random_window(r, 9, 2);
  std::vector<int64_t> pads = random_pads(r, 2);
  std::string algo = random_algo(r, 0.8);
  if (big) {
    std::tie(N, G, Cg, OCg, C, OC, H, W) = std::make_tuple(1, 1, 8, 16, 8, 16, 150, 170);
    std::tie(KH, KW, sh, sw, dh, dw) = std::make_tuple(4, 4, 2, 2, 1, 1);
    pads = {1, 1};
    algo = "EXPLICIT";
  }
  Pads pd = resolve_pads(pads, algo, H, W, sh, sw, KH, KW, dh, dw);
  int64_t pt = pd.t, pb = pd.b, pl = pd.l, pr = pd.r, edh = pd.dh, edw = pd.dw;
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
    op.in("Input", {op.feed_image("x", x, {N, C, H, W}, nhwc)});
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
    check_image("conv2d_transpose", d.str(), got, {N, OC, OH, OW}, want, nhwc);
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
  std::vector<int64_t> pads = random_pads(r, 2);
  std::string algo = random_algo(r, 0.7);
  bool nhwc = r.b(0.1);
  // Geometry.
  Pads pd = resolve_pads(pads, algo, H, W, sh, sw, kh, kw, 1, 1);
  int64_t pt = pd.t, pb = pd.b, pl = pd.l, pr = pd.r;
  if (global || adaptive) pt = pb = pl = pr = 0;
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
    op.in("X", {op.feed_image("x", x, {N, C, H, W}, nhwc)});
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
    check_image("pool2d", d.str(), got, {N, C, OH, OW}, want, nhwc);
  });
}
}  // namespace

PIF_TEST(ref_conv, conv2d) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60) * 2; ++k) case_conv(s.rng, s.idx++);
  case_conv(s.rng, s.idx++, true);  // exercises the im2col row tiling
}

PIF_TEST(ref_conv, conv2d_transpose) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60); ++k) case_conv_transpose(s.rng, s.idx++);
  case_conv_transpose(s.rng, s.idx++, true);  // exercises the col2im row tiling
}

PIF_TEST(ref_conv, pool2d) {
  SuiteStream& s = ref_conv_stream();
  for (int k = 0; k < cases_or(60) * 2; ++k) case_pool(s.rng, s.idx++);
}

}  // namespace pif::test
