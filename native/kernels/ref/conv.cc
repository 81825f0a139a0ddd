// 2-D convolution and transposed convolution (reference kernels).
//
// conv2d / depthwise_conv2d: filter OIHW [OC, C/groups, KH, KW]. Three paths,
// all with the same result: 1x1 stride-1 unpadded -> one sgemm per group;
// one input channel per group (depthwise, any channel multiplier) -> direct
// loop; otherwise im2col (tiled over output rows to bound the scratch size)
// + sgemm per group.
// conv2d_transpose / depthwise_conv2d_transpose: filter [C, OC/groups, KH,
// KW]; sgemm (W^T x) into columns, then col2im scatter-add.
//
// Geometry follows Paddle: `paddings` of 2 values [h, w] are symmetric, 4 are
// [top, bottom, left, right]; padding_algorithm SAME computes
// pad_sum = max((ceil(in/stride) - 1) * stride + k - in, 0), split
// pad_sum/2 before, the rest after, and resets dilation to 1; VALID zeroes the
// paddings. NHWC inputs are transposed to NCHW and back.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/ref/gemm.h"
#include "kernels/registry.h"

namespace pif {
namespace {

// Canonical input slots.
enum : size_t { kInput = 0, kFilter = 1, kBias = 2, kOutputSize = 3 };

// Scratch for im2col / col2im columns: at most this many floats per tile.
constexpr int64_t kColTileFloats = int64_t(1) << 22;  // 16 MiB

// read_ints of a possibly empty tensor (an empty PIR int array operand).
std::vector<int64_t> ints_of(const RTensor& t) {
  if (t.numel() == 0) return {};
  return read_ints(t);
}

void read_pair(const AttrReader& a, const char* name, int64_t def, int64_t* h, int64_t* w) {
  std::vector<int64_t> v = a.ints(name, {def, def});
  if (v.size() == 1) v.push_back(v[0]);
  if (v.size() != 2) {
    op_fail(std::string("attribute '") + name + "' must have 2 values, got " +
            std::to_string(v.size()));
  }
  *h = v[0];
  *w = v[1];
}

std::shared_ptr<const void> prepare_conv_common(const PrepareCtx& c, bool transpose) {
  ConvState s;
  s.transpose = transpose;
  const AttrReader& a = c.attr;
  read_pair(a, "strides", 1, &s.sh, &s.sw);
  read_pair(a, "dilations", 1, &s.dh, &s.dw);
  if (s.sh <= 0 || s.sw <= 0) op_fail("strides must be positive");
  if (s.dh <= 0 || s.dw <= 0) op_fail("dilations must be positive");
  read_pads(a, s.pads);
  s.groups = a.i("groups", 1);
  if (s.groups <= 0) op_fail("groups must be positive");
  s.algo = read_pad_algo(a);
  s.nhwc = layout_is_nhwc(a, "data_format");
  if (transpose) {
    s.output_padding = a.ints("output_padding", {});
    s.output_size = a.ints("output_size", {});
    for (int64_t v : s.output_padding)
      if (v < 0) op_fail("output_padding must be non-negative");
    if (const Tensor* t = c.constant(kOutputSize)) {
      if (t->dtype != DType::Int32 && t->dtype != DType::Int64)
        op_fail("output_size operand must be an integer tensor");
    }
  }
  return std::make_shared<const ConvState>(s);
}

std::shared_ptr<const void> prepare_conv(const PrepareCtx& c) {
  return prepare_conv_common(c, false);
}
std::shared_ptr<const void> prepare_conv_transpose(const PrepareCtx& c) {
  return prepare_conv_common(c, true);
}

// Resolved geometry, NCHW.
struct Geo {
  int64_t N, C, H, W;  // input
  int64_t OC, OH, OW;  // output
  int64_t KH, KW, G;
  int64_t sh, sw, dh, dw;
  int64_t pt, pb, pl, pr;
};

std::vector<int64_t> to_nchw(const std::vector<int64_t>& d) { return {d[0], d[3], d[1], d[2]}; }
std::vector<int64_t> to_nhwc(const std::vector<int64_t>& d) { return {d[0], d[2], d[3], d[1]}; }

void update_padding(const ConvState& s, int64_t H, int64_t W, int64_t KH, int64_t KW, Geo* g) {
  g->sh = s.sh;
  g->sw = s.sw;
  int64_t pads[4];
  conv_resolved_padding(s, H, W, KH, KW, pads, &g->dh, &g->dw);
  g->pt = pads[0];
  g->pb = pads[1];
  g->pl = pads[2];
  g->pr = pads[3];
}

Geo conv_geometry(const RunCtx& c) {
  const ConvState& s = c.node.attrs<ConvState>();
  const RTensor& x = need_input(c, kInput, "Input");
  const RTensor& f = need_input(c, kFilter, "Filter");
  expect_f32(x, "Input");
  expect_f32(f, "Filter");
  if (x.dims.size() != 4) op_fail("Input must be 4-D, got " + shape_str(x.dims));
  if (f.dims.size() != 4) op_fail("Filter must be 4-D, got " + shape_str(f.dims));
  std::vector<int64_t> xd = s.nhwc ? to_nchw(x.dims) : x.dims;
  Geo g{};
  g.N = xd[0];
  g.C = xd[1];
  g.H = xd[2];
  g.W = xd[3];
  g.KH = f.dims[2];
  g.KW = f.dims[3];
  g.G = s.groups;
  if (g.KH <= 0 || g.KW <= 0) op_fail("empty filter " + shape_str(f.dims));
  if (g.C % g.G != 0) {
    op_fail("input channels " + std::to_string(g.C) + " not divisible by groups " +
            std::to_string(g.G));
  }
  update_padding(s, g.H, g.W, g.KH, g.KW, &g);
  if (!s.transpose) {
    g.OC = f.dims[0];
    if (f.dims[1] * g.G != g.C) {
      op_fail("filter " + shape_str(f.dims) + " does not match input channels " +
              std::to_string(g.C) + " with groups " + std::to_string(g.G));
    }
    if (g.OC % g.G != 0) {
      op_fail("output channels " + std::to_string(g.OC) + " not divisible by groups " +
              std::to_string(g.G));
    }
    int64_t ekh = g.dh * (g.KH - 1) + 1, ekw = g.dw * (g.KW - 1) + 1;
    int64_t hp = g.H + g.pt + g.pb, wp = g.W + g.pl + g.pr;
    if (hp < ekh || wp < ekw) {
      op_fail("padded input " + std::to_string(hp) + "x" + std::to_string(wp) +
              " is smaller than the dilated kernel " + std::to_string(ekh) + "x" +
              std::to_string(ekw));
    }
    g.OH = (hp - ekh) / g.sh + 1;
    g.OW = (wp - ekw) / g.sw + 1;
  } else {
    if (f.dims[0] != g.C) {
      op_fail("filter " + shape_str(f.dims) + " does not match input channels " +
              std::to_string(g.C));
    }
    g.OC = f.dims[1] * g.G;
    int64_t ih = (g.H - 1) * g.sh - g.pt - g.pb + g.dh * (g.KH - 1) + 1;
    int64_t iw = (g.W - 1) * g.sw - g.pl - g.pr + g.dw * (g.KW - 1) + 1;
    std::vector<int64_t> osize = s.output_size;
    if (const RTensor* t = c.input(kOutputSize)) osize = ints_of(*t);
    if (!osize.empty()) {
      if (osize.size() == 1) osize.push_back(osize[0]);
      if (osize.size() != 2) op_fail("output_size must have 2 values");
      for (int k = 0; k < 2; ++k) {
        int64_t inf = k == 0 ? ih : iw, st = k == 0 ? g.sh : g.sw;
        if (osize[k] < inf || osize[k] >= inf + st) {
          op_fail("output_size " + shape_str(osize) + " is outside the valid range [" +
                  std::to_string(inf) + ", " + std::to_string(inf + st) + ") of dim " +
                  std::to_string(k));
        }
      }
      g.OH = osize[0];
      g.OW = osize[1];
    } else if (!s.output_padding.empty()) {
      std::vector<int64_t> op = s.output_padding;
      if (op.size() == 1) op.push_back(op[0]);
      if (op.size() != 2) op_fail("output_padding must have 2 values");
      if (op[0] >= std::max(g.sh, g.dh) || op[1] >= std::max(g.sw, g.dw))
        op_fail("output_padding must be smaller than stride or dilation");
      g.OH = ih + op[0];
      g.OW = iw + op[1];
    } else {
      g.OH = ih;
      g.OW = iw;
    }
    if (g.OH <= 0 || g.OW <= 0) op_fail("non-positive output size");
  }
  if (const RTensor* b = c.input(kBias)) {
    expect_f32(*b, "Bias");
    if (b->numel() != g.OC) {
      op_fail("Bias " + shape_str(b->dims) + " does not match " + std::to_string(g.OC) +
              " output channels");
    }
  }
  return g;
}

void infer_conv(RunCtx& c) {
  const ConvState& s = c.node.attrs<ConvState>();
  Geo g = conv_geometry(c);
  std::vector<int64_t> od = {g.N, g.OC, g.OH, g.OW};
  set_output(c.output(0), DType::Float32, s.nhwc ? to_nhwc(od) : od);
}

// Indices i in [0, n) with off + i * stride in [0, size): [*lo, *hi).
inline void valid_range(int64_t off, int64_t stride, int64_t size, int64_t n, int64_t* lo,
                        int64_t* hi) {
  int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
  int64_t b = off > size - 1 ? 0 : (size - 1 - off) / stride + 1;
  *lo = std::min(a, n);
  *hi = std::max(*lo, std::min(b, n));
}

void add_bias(const Geo& g, const float* bias, float* y) {
  if (!bias) return;
  int64_t HW = g.OH * g.OW;
#pragma omp parallel for collapse(2) schedule(static) if (g.N * g.OC * HW > (1 << 16))
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      float* p = y + (n * g.OC + oc) * HW;
      float b = bias[oc];
      for (int64_t i = 0; i < HW; ++i) p[i] += b;
    }
}

// One input channel per group: direct accumulation per output plane.
void conv_depthwise(const Geo& g, const float* x, const float* w, float* y) {
  int64_t mult = g.OC / g.G;  // output channels per input channel
  int64_t OHW = g.OH * g.OW;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oc = 0; oc < g.OC; ++oc) {
      const float* in = x + (n * g.C + oc / mult) * g.H * g.W;
      const float* k = w + oc * g.KH * g.KW;
      float* out = y + (n * g.OC + oc) * OHW;
      std::fill(out, out + OHW, 0.f);
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        int64_t ho = kh * g.dh - g.pt, oh0, oh1;
        valid_range(ho, g.sh, g.H, g.OH, &oh0, &oh1);
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          int64_t wo = kw * g.dw - g.pl, ow0, ow1;
          valid_range(wo, g.sw, g.W, g.OW, &ow0, &ow1);
          if (ow0 >= ow1) continue;
          float kv = k[kh * g.KW + kw];
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            const float* row = in + (oh * g.sh + ho) * g.W;
            float* orow = out + oh * g.OW;
            if (g.sw == 1) {
              for (int64_t ow = ow0; ow < ow1; ++ow) orow[ow] += kv * row[ow + wo];
            } else {
              for (int64_t ow = ow0; ow < ow1; ++ow) orow[ow] += kv * row[ow * g.sw + wo];
            }
          }
        }
      }
    }
  }
}

// im2col of one group's input channels for output rows [r0, r1):
// col[(c*KH + kh)*KW + kw][(oh - r0)*OW + ow].
void im2col(const Geo& g, const float* x, int64_t Cg, int64_t r0, int64_t r1, float* col) {
  int64_t rows = Cg * g.KH * g.KW;
  int64_t ncols = (r1 - r0) * g.OW;
#pragma omp parallel for schedule(static) if (rows * ncols > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    int64_t kw = r % g.KW, kh = (r / g.KW) % g.KH, ch = r / (g.KW * g.KH);
    const float* in = x + ch * g.H * g.W;
    float* dst = col + r * ncols;
    int64_t wo = kw * g.dw - g.pl, ow0, ow1;
    valid_range(wo, g.sw, g.W, g.OW, &ow0, &ow1);
    for (int64_t oh = r0; oh < r1; ++oh) {
      float* d = dst + (oh - r0) * g.OW;
      int64_t ih = oh * g.sh + kh * g.dh - g.pt;
      if (ih < 0 || ih >= g.H || ow0 >= ow1) {
        std::fill(d, d + g.OW, 0.f);
        continue;
      }
      const float* s = in + ih * g.W;
      std::fill(d, d + ow0, 0.f);
      if (g.sw == 1) {
        std::memcpy(d + ow0, s + ow0 + wo, static_cast<size_t>(ow1 - ow0) * sizeof(float));
      } else {
        for (int64_t ow = ow0; ow < ow1; ++ow) d[ow] = s[ow * g.sw + wo];
      }
      std::fill(d + ow1, d + g.OW, 0.f);
    }
  }
}

void conv_forward(const Geo& g, const float* x, const float* w, float* y) {
  int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  int64_t OHW = g.OH * g.OW, HW = g.H * g.W;
  if (OHW == 0 || g.OC == 0 || g.N == 0) return;
  if (Cg == 0) {
    std::fill(y, y + g.N * g.OC * OHW, 0.f);
    return;
  }
  bool pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pb == 0 &&
                   g.pl == 0 && g.pr == 0;
  if (pointwise) {
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t gi = 0; gi < g.G; ++gi)
        sgemm(false, false, OCg, HW, Cg, 1.f, w + gi * OCg * Cg, Cg, x + (n * g.C + gi * Cg) * HW,
              HW, 0.f, y + (n * g.OC + gi * OCg) * HW, HW);
    return;
  }
  if (Cg == 1) {
    conv_depthwise(g, x, w, y);
    return;
  }
  int64_t K = Cg * g.KH * g.KW;
  int64_t tile_rows =
      std::max<int64_t>(1, std::min(g.OH, kColTileFloats / std::max<int64_t>(1, K * g.OW)));
  std::vector<float> col(static_cast<size_t>(K * tile_rows * g.OW));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t gi = 0; gi < g.G; ++gi) {
      const float* xg = x + (n * g.C + gi * Cg) * HW;
      const float* wg = w + gi * OCg * K;
      float* yg = y + (n * g.OC + gi * OCg) * OHW;
      for (int64_t r0 = 0; r0 < g.OH; r0 += tile_rows) {
        int64_t r1 = std::min(g.OH, r0 + tile_rows);
        int64_t ncols = (r1 - r0) * g.OW;
        im2col(g, xg, Cg, r0, r1, col.data());
        sgemm(false, false, OCg, ncols, K, 1.f, wg, K, col.data(), ncols, 0.f, yg + r0 * g.OW, OHW);
      }
    }
  }
}

// Transposed convolution: for each input-row tile, col = W_g^T x_g, then
// scatter-add col into the output (each output channel by one thread).
void conv_transpose_forward(const Geo& g, const float* x, const float* w, float* y) {
  int64_t Cg = g.C / g.G, OCg = g.OC / g.G;
  int64_t OHW = g.OH * g.OW, HW = g.H * g.W;
  std::fill(y, y + g.N * g.OC * OHW, 0.f);
  if (Cg == 0 || OCg == 0 || HW == 0) return;
  int64_t M = OCg * g.KH * g.KW;  // col rows
  int64_t tile_rows =
      std::max<int64_t>(1, std::min(g.H, kColTileFloats / std::max<int64_t>(1, M * g.W)));
  std::vector<float> col(static_cast<size_t>(M * tile_rows * g.W));
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t gi = 0; gi < g.G; ++gi) {
      const float* xg = x + (n * g.C + gi * Cg) * HW;
      const float* wg = w + gi * Cg * M;  // [Cg, M] rows of the filter
      float* yg = y + (n * g.OC + gi * OCg) * OHW;
      for (int64_t r0 = 0; r0 < g.H; r0 += tile_rows) {
        int64_t r1 = std::min(g.H, r0 + tile_rows);
        int64_t ncols = (r1 - r0) * g.W;
        sgemm(true, false, M, ncols, Cg, 1.f, wg, M, xg + r0 * g.W, HW, 0.f, col.data(), ncols);
#pragma omp parallel for schedule(static) if (M * ncols > (1 << 15))
        for (int64_t oc = 0; oc < OCg; ++oc) {
          float* out = yg + oc * OHW;
          for (int64_t kh = 0; kh < g.KH; ++kh) {
            for (int64_t kw = 0; kw < g.KW; ++kw) {
              const float* src = col.data() + ((oc * g.KH + kh) * g.KW + kw) * ncols;
              // ow = iw * sw + wo must lie in [0, OW).
              int64_t wo = kw * g.dw - g.pl, iw0, iw1;
              valid_range(wo, g.sw, g.OW, g.W, &iw0, &iw1);
              if (iw0 >= iw1) continue;
              for (int64_t ih = r0; ih < r1; ++ih) {
                int64_t oh = ih * g.sh + kh * g.dh - g.pt;
                if (oh < 0 || oh >= g.OH) continue;
                const float* s = src + (ih - r0) * g.W;
                float* orow = out + oh * g.OW;
                for (int64_t iw = iw0; iw < iw1; ++iw) orow[iw * g.sw + wo] += s[iw];
              }
            }
          }
        }
      }
    }
  }
}

void run_conv(RunCtx& c) {
  const ConvState& s = c.node.attrs<ConvState>();
  Geo g = conv_geometry(c);
  const float* x = c.input(kInput)->ptr<float>();
  const float* w = c.input(kFilter)->ptr<float>();
  const float* bias = c.input(kBias) ? c.input(kBias)->ptr<float>() : nullptr;
  float* y = c.output(0)->ptr<float>();
  std::vector<float> xt, yt;
  if (s.nhwc) {
    xt.resize(static_cast<size_t>(g.N * g.C * g.H * g.W));
    yt.resize(static_cast<size_t>(g.N * g.OC * g.OH * g.OW));
    nhwc_to_nchw(x, xt.data(), g.N, g.C, g.H * g.W);
    x = xt.data();
  }
  float* dst = s.nhwc ? yt.data() : y;
  if (s.transpose)
    conv_transpose_forward(g, x, w, dst);
  else
    conv_forward(g, x, w, dst);
  add_bias(g, bias, dst);
  if (s.nhwc) nchw_to_nhwc(yt.data(), y, g.N, g.OC, g.OH * g.OW);
}

OpDef conv_def(const char* name, std::vector<std::string> types, bool transpose) {
  OpDef d;
  d.name = name;
  d.types = std::move(types);
  if (transpose) {
    // PIR: conv2d_transpose(x, filter, output_size).
    d.legacy_inputs = {"Input", "Filter", "Bias", ""};
    d.pir_inputs = {0, 1, -1, 2};
    d.prepare = prepare_conv_transpose;
  } else {
    // PIR: conv2d(input, filter); a bias is a separate add.
    d.legacy_inputs = {"Input", "Filter", "Bias"};
    d.pir_inputs = {0, 1, -1};
    d.prepare = prepare_conv;
  }
  d.legacy_outputs = {"Output"};
  d.infer = infer_conv;
  d.run = run_conv;
  return d;
}

}  // namespace

void register_conv_ops(std::vector<OpDef>* t) {
  t->push_back(conv_def(
      "conv2d", {"conv2d", "depthwise_conv2d", "pd_op.conv2d", "pd_op.depthwise_conv2d"}, false));
  t->push_back(conv_def("conv2d_transpose",
                        {"conv2d_transpose", "depthwise_conv2d_transpose", "pd_op.conv2d_transpose",
                         "pd_op.depthwise_conv2d_transpose"},
                        true));
}

}  // namespace pif
