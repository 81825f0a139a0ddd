// Resampling ops (reference kernels): nearest / bilinear interpolation
// (nearest_interp_v2, bilinear_interp_v2; PIR nearest_interp, bilinear_interp),
// pixel_shuffle and grid_sampler (PIR grid_sample).
//
// Interpolation follows Paddle's CPU kernel, including its float/double mix
// in the coordinate arithmetic so that discrete index choices match:
// - output size: SizeTensor list wins; else scale (Scale tensor, else the
//   `scale` attribute) gives out = int(float(in) * scale), and an OutSize
//   tensor then overrides the size (the scale still sets the ratio); else the
//   out_h / out_w attributes. out == in copies the input.
// - ratio (when out > 1): align_corners ? (in-1)/(out-1)
//   : (scale given ? 1/scale : in/out).
// - nearest: src = align_corners ? int(ratio*k + 0.5) : int(ratio*k).
// - bilinear: align_mode 0 without align_corners is half-pixel
//   (src = ratio*(k+0.5) - 0.5, clamped at 0); otherwise src = ratio*k.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

// read_ints of a possibly empty tensor (an empty PIR int array operand).
std::vector<int64_t> ints_of(const RTensor& t) {
  if (t.numel() == 0) return {};
  return read_ints(t);
}

// Paddle spells the layout attribute data_layout on interpolation ops and
// data_format on pixel_shuffle.
bool layout_is_nhwc(const AttrReader& a) {
  return layout_is_nhwc(a, a.has("data_layout") ? "data_layout" : "data_format");
}

// ---- interpolation --------------------------------------------------------

// Canonical inputs: X, OutSize, SizeTensor (list), Scale.
// PIR: interp(x, out_size, size_tensor (combine), scale_tensor).
enum : size_t { kX = 0, kOutSize = 1, kSizeTensor = 2, kScale = 3 };

struct InterpState {
  bool bilinear;
  int64_t out_h, out_w;
  std::vector<float> scale;
  bool align_corners;
  int64_t align_mode;
  bool nhwc;
};

std::shared_ptr<const void> prepare_interp(const PrepareCtx& c) {
  InterpState s;
  const std::string& type = c.node.source->type;
  bool type_bilinear = type.find("bilinear") != std::string::npos;
  std::string method = c.attr.s("interp_method", type_bilinear ? "bilinear" : "nearest");
  if (method == "bilinear")
    s.bilinear = true;
  else if (method == "nearest")
    s.bilinear = false;
  else
    op_fail("unsupported interp_method '" + method + "'");
  s.out_h = c.attr.i("out_h", -1);
  s.out_w = c.attr.i("out_w", -1);
  if (const Attr* a = c.node.source->attr("scale")) {
    std::vector<double> v;
    double one;
    if (a->as_doubles(&v)) {
      for (double d : v) s.scale.push_back(static_cast<float>(d));
    } else if (a->as_double(&one)) {  // a single float (older exports)
      if (one > 0) s.scale = {static_cast<float>(one)};
    } else {
      op_fail("attribute 'scale' is not a number or a list of numbers");
    }
  }
  s.align_corners = c.attr.b("align_corners", true);
  s.align_mode = c.attr.i("align_mode", 1);
  s.nhwc = layout_is_nhwc(c.attr);
  return std::make_shared<const InterpState>(s);
}

struct InterpGeo {
  int64_t N, C, H, W, OH, OW;
  float ratio_h, ratio_w;
};

std::vector<float> read_floats(const RTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype) {
      case DType::Float32: v[i] = t.ptr<float>()[i]; break;
      case DType::Float64: v[i] = static_cast<float>(t.ptr<double>()[i]); break;
      case DType::Int32: v[i] = static_cast<float>(t.ptr<int32_t>()[i]); break;
      case DType::Int64: v[i] = static_cast<float>(t.ptr<int64_t>()[i]); break;
      default: op_fail(std::string("unsupported scale dtype ") + dtype_name(t.dtype));
    }
  }
  return v;
}

InterpGeo interp_geometry(const RunCtx& c) {
  const InterpState& s = c.node.attrs<InterpState>();
  const RTensor& x = need_input(c, kX, "X");
  expect_f32(x, "X");
  if (x.dims.size() != 4) op_fail("interpolation input must be 4-D, got " + shape_str(x.dims));
  InterpGeo g{};
  dims_nchw(x.dims, s.nhwc, &g.N, &g.C, &g.H, &g.W);
  int64_t out_h = s.out_h, out_w = s.out_w;
  float scale_h = -1.f, scale_w = -1.f;
  std::vector<int64_t> sizes;
  if (c.node.inputs.size() > kSizeTensor) {
    for (size_t k = 0; k < c.in[kSizeTensor].size(); ++k) {
      std::vector<int64_t> v = ints_of(*c.in[kSizeTensor][k]);
      sizes.insert(sizes.end(), v.begin(), v.end());
    }
  }
  if (!sizes.empty()) {
    if (sizes.size() < 2) op_fail("SizeTensor must hold 2 values");
    out_h = sizes[0];
    out_w = sizes[1];
  } else {
    std::vector<float> sc;
    if (const RTensor* st = c.input(kScale)) {
      sc = read_floats(*st);
      if (sc.empty()) op_fail("Scale tensor is empty");
    } else {
      sc = s.scale;
    }
    if (sc.size() == 1) sc.push_back(sc[0]);
    if (sc.size() >= 2 && sc[0] > 0.f && sc[1] > 0.f) {
      scale_h = sc[0];
      scale_w = sc[1];
      out_h = static_cast<int64_t>(static_cast<float>(g.H) * scale_h);
      out_w = static_cast<int64_t>(static_cast<float>(g.W) * scale_w);
    } else if (c.input(kScale)) {
      op_fail("Scale tensor values must be positive");
    }
    if (const RTensor* os = c.input(kOutSize)) {
      std::vector<int64_t> v = ints_of(*os);
      if (v.size() < 2) op_fail("OutSize must hold 2 values, got " + shape_str(os->dims));
      out_h = v[0];
      out_w = v[1];
    }
  }
  if (out_h <= 0 || out_w <= 0) {
    op_fail("interpolation output size " + std::to_string(out_h) + "x" + std::to_string(out_w) +
            " must be positive (set out_h/out_w, scale, OutSize or SizeTensor)");
  }
  g.OH = out_h;
  g.OW = out_w;
  g.ratio_h = g.ratio_w = 0.f;
  if (g.OH > 1) {
    float ns = scale_h > 0 ? static_cast<float>(1. / scale_h)
                           : static_cast<float>(g.H) / static_cast<float>(g.OH);
    g.ratio_h = s.align_corners ? static_cast<float>(g.H - 1) / static_cast<float>(g.OH - 1) : ns;
  }
  if (g.OW > 1) {
    float ns = scale_w > 0 ? static_cast<float>(1. / scale_w)
                           : static_cast<float>(g.W) / static_cast<float>(g.OW);
    g.ratio_w = s.align_corners ? static_cast<float>(g.W - 1) / static_cast<float>(g.OW - 1) : ns;
  }
  return g;
}

void infer_interp(RunCtx& c) {
  const InterpState& s = c.node.attrs<InterpState>();
  InterpGeo g = interp_geometry(c);
  set_output(c.output(0), DType::Float32,
             s.nhwc ? std::vector<int64_t>{g.N, g.OH, g.OW, g.C}
                    : std::vector<int64_t>{g.N, g.C, g.OH, g.OW});
}

// Source index for nearest sampling.
inline int64_t nearest_src(float ratio, int64_t k, bool align_corners, int64_t in) {
  int64_t v = align_corners ? static_cast<int64_t>(ratio * static_cast<float>(k) + 0.5)
                            : static_cast<int64_t>(ratio * static_cast<float>(k));
  return std::min(std::max<int64_t>(v, 0), in - 1);
}

// Bilinear taps along one axis: lo/hi index and weight of hi.
void linear_taps(float ratio, int64_t out, int64_t in, bool align_flag, std::vector<int64_t>* lo,
                 std::vector<int64_t>* hi, std::vector<float>* w_hi) {
  lo->resize(static_cast<size_t>(out));
  hi->resize(static_cast<size_t>(out));
  w_hi->resize(static_cast<size_t>(out));
  for (int64_t k = 0; k < out; ++k) {
    double half = static_cast<double>(ratio) * (static_cast<double>(k) + 0.5) - 0.5;
    float fk = ratio * static_cast<float>(k);
    int64_t a = align_flag ? static_cast<int64_t>(half) : static_cast<int64_t>(fk);
    a = std::max<int64_t>(a, 0);
    int64_t b = std::min(a + 1, in - 1);
    float src = static_cast<float>(half);
    src = src > 0 ? src : 0.f;
    float d = align_flag ? src - static_cast<float>(a) : fk - static_cast<float>(a);
    if (a > in - 1) {
      // Only reachable when an OutSize tensor overrides a scale-derived size
      // (Paddle would read out of bounds): use the edge value.
      a = b = in - 1;
      d = 0.f;
    }
    (*lo)[k] = a;
    (*hi)[k] = b;
    (*w_hi)[k] = d;
  }
}

void interp_nchw(const InterpState& s, const InterpGeo& g, const float* x, float* y) {
  int64_t planes = g.N * g.C, HW = g.H * g.W, OHW = g.OH * g.OW;
  if (g.H == g.OH && g.W == g.OW) {
    std::memcpy(y, x, static_cast<size_t>(planes * HW) * sizeof(float));
    return;
  }
  if (!s.bilinear) {
    std::vector<int64_t> ih(g.OH), iw(g.OW);
    for (int64_t k = 0; k < g.OH; ++k) ih[k] = nearest_src(g.ratio_h, k, s.align_corners, g.H);
    for (int64_t k = 0; k < g.OW; ++k) iw[k] = nearest_src(g.ratio_w, k, s.align_corners, g.W);
#pragma omp parallel for schedule(static) if (planes * OHW > (1 << 15))
    for (int64_t p = 0; p < planes; ++p) {
      const float* in = x + p * HW;
      float* out = y + p * OHW;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const float* row = in + ih[oh] * g.W;
        for (int64_t ow = 0; ow < g.OW; ++ow) out[oh * g.OW + ow] = row[iw[ow]];
      }
    }
    return;
  }
  bool align_flag = s.align_mode == 0 && !s.align_corners;
  std::vector<int64_t> yn, ys, xw, xe;
  std::vector<float> dn, dw;
  linear_taps(g.ratio_h, g.OH, g.H, align_flag, &yn, &ys, &dn);
  linear_taps(g.ratio_w, g.OW, g.W, align_flag, &xw, &xe, &dw);
#pragma omp parallel for schedule(static) if (planes * OHW > (1 << 15))
  for (int64_t p = 0; p < planes; ++p) {
    const float* in = x + p * HW;
    float* out = y + p * OHW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* rn = in + yn[oh] * g.W;
      const float* rs = in + ys[oh] * g.W;
      float d_n = dn[oh], d_s = 1.f - d_n;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float d_w = dw[ow], d_e = 1.f - d_w;
        out[oh * g.OW + ow] = rn[xw[ow]] * d_s * d_e + rs[xw[ow]] * d_n * d_e +
                              rn[xe[ow]] * d_s * d_w + rs[xe[ow]] * d_n * d_w;
      }
    }
  }
}

void run_interp(RunCtx& c) {
  const InterpState& s = c.node.attrs<InterpState>();
  InterpGeo g = interp_geometry(c);
  const float* x = c.input(kX)->ptr<float>();
  float* y = c.output(0)->ptr<float>();
  if (g.N * g.C * g.OH * g.OW == 0) return;
  if (!s.nhwc) {
    interp_nchw(s, g, x, y);
    return;
  }
  std::vector<float> xt(static_cast<size_t>(g.N * g.C * g.H * g.W));
  std::vector<float> yt(static_cast<size_t>(g.N * g.C * g.OH * g.OW));
  nhwc_to_nchw(x, xt.data(), g.N, g.C, g.H * g.W);
  interp_nchw(s, g, xt.data(), yt.data());
  nchw_to_nhwc(yt.data(), y, g.N, g.C, g.OH * g.OW);
}

// ---- pixel_shuffle --------------------------------------------------------

struct ShuffleState {
  int64_t r;
  bool nhwc;
};

std::shared_ptr<const void> prepare_shuffle(const PrepareCtx& c) {
  int64_t r = c.attr.i("upscale_factor", 1);
  if (r <= 0) op_fail("upscale_factor must be positive");
  return make_state<ShuffleState>(r, layout_is_nhwc(c.attr));
}

void infer_shuffle(RunCtx& c) {
  const ShuffleState& s = c.node.attrs<ShuffleState>();
  const RTensor& x = need_input(c, 0, "X");
  expect_f32(x, "X");
  if (x.dims.size() != 4) op_fail("pixel_shuffle input must be 4-D, got " + shape_str(x.dims));
  int64_t C = s.nhwc ? x.dims[3] : x.dims[1];
  if (C % (s.r * s.r) != 0) {
    op_fail("channels " + std::to_string(C) +
            " not divisible by upscale_factor^2 = " + std::to_string(s.r * s.r));
  }
  std::vector<int64_t> d = x.dims;
  if (s.nhwc) {
    d[1] *= s.r;
    d[2] *= s.r;
    d[3] /= s.r * s.r;
  } else {
    d[1] /= s.r * s.r;
    d[2] *= s.r;
    d[3] *= s.r;
  }
  set_output(c.output(0), DType::Float32, d);
}

void run_shuffle(RunCtx& c) {
  const ShuffleState& s = c.node.attrs<ShuffleState>();
  const RTensor& x = *c.input(0);
  const float* in = x.ptr<float>();
  float* out = c.output(0)->ptr<float>();
  int64_t r = s.r, N = x.dims[0];
  if (!s.nhwc) {
    int64_t C = x.dims[1], H = x.dims[2], W = x.dims[3], OC = C / (r * r);
    // out[n][oc][h*r+i][w*r+j] = in[n][oc*r*r + i*r + j][h][w]
#pragma omp parallel for collapse(2) schedule(static) if (x.numel() > (1 << 16))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oc = 0; oc < OC; ++oc)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < r; ++i) {
            float* orow = out + ((n * OC + oc) * H * r + h * r + i) * W * r;
            for (int64_t j = 0; j < r; ++j) {
              const float* irow = in + ((n * C + oc * r * r + i * r + j) * H + h) * W;
              for (int64_t w = 0; w < W; ++w) orow[w * r + j] = irow[w];
            }
          }
  } else {
    int64_t H = x.dims[1], W = x.dims[2], C = x.dims[3], OC = C / (r * r);
    // out[n][h*r+i][w*r+j][oc] = in[n][h][w][oc*r*r + i*r + j]
#pragma omp parallel for collapse(2) schedule(static) if (x.numel() > (1 << 16))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t i = 0; i < r; ++i)
            for (int64_t j = 0; j < r; ++j) {
              const float* ip = in + ((n * H + h) * W + w) * C + i * r + j;
              float* op = out + ((n * H * r + h * r + i) * W * r + w * r + j) * OC;
              for (int64_t oc = 0; oc < OC; ++oc) op[oc] = ip[oc * r * r];
            }
  }
}

// ---- grid_sampler ---------------------------------------------------------

enum class GsPad { Zeros, Border, Reflection };

struct GridState {
  bool nearest;
  GsPad pad;
  bool align_corners;
};

std::shared_ptr<const void> prepare_grid(const PrepareCtx& c) {
  GridState s;
  std::string mode = c.attr.s("mode", "bilinear");
  if (mode == "bilinear")
    s.nearest = false;
  else if (mode == "nearest")
    s.nearest = true;
  else
    op_fail("unsupported grid_sample mode '" + mode + "'");
  std::string pm = c.attr.s("padding_mode", "zeros");
  if (pm == "zeros")
    s.pad = GsPad::Zeros;
  else if (pm == "border")
    s.pad = GsPad::Border;
  else if (pm == "reflection")
    s.pad = GsPad::Reflection;
  else
    op_fail("unsupported grid_sample padding_mode '" + pm + "'");
  s.align_corners = c.attr.b("align_corners", true);
  return std::make_shared<const GridState>(s);
}

void infer_grid(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& g = need_input(c, 1, "Grid");
  expect_f32(x, "X");
  expect_f32(g, "Grid");
  if (x.dims.size() != 4) op_fail("grid_sample supports 4-D input only, got " + shape_str(x.dims));
  if (g.dims.size() != 4 || g.dims[3] != 2 || g.dims[0] != x.dims[0]) {
    op_fail("Grid " + shape_str(g.dims) + " must be [N, H, W, 2] for input " + shape_str(x.dims));
  }
  set_output(c.output(0), DType::Float32, {x.dims[0], x.dims[1], g.dims[1], g.dims[2]});
}

// Grid coordinate in [-1, 1] -> source pixel coordinate with padding applied.
inline float grid_coord(float v, int64_t size, const GridState& s) {
  float max_val = static_cast<float>(size - 1);
  float x =
      s.align_corners ? (v + 1.f) * 0.5f * max_val : ((v + 1.f) * (max_val + 1.f) - 1.f) * 0.5f;
  if (s.pad == GsPad::Border) {
    x = std::min(std::max(x, 0.f), max_val);
  } else if (s.pad == GsPad::Reflection) {
    if (s.align_corners) {
      if (size <= 1) return 0.f;
      float span = 2.f * max_val;
      float a = std::fabs(x);
      float extra = a - std::floor(a / span) * span;
      x = std::min(extra, span - extra);
    } else {
      float span = 2.f * (max_val + 1.f);
      float a = std::fabs(x + 0.5f);
      float extra = a - std::floor(a / span) * span;
      x = std::min(extra, span - extra) - 0.5f;
      x = std::min(std::max(x, 0.f), max_val);
    }
  }
  return x;
}

void run_grid(RunCtx& c) {
  const GridState& s = c.node.attrs<GridState>();
  const RTensor& xt = *c.input(0);
  const RTensor& gt = *c.input(1);
  const float* x = xt.ptr<float>();
  const float* grid = gt.ptr<float>();
  float* y = c.output(0)->ptr<float>();
  int64_t N = xt.dims[0], C = xt.dims[1], H = xt.dims[2], W = xt.dims[3];
  int64_t OH = gt.dims[1], OW = gt.dims[2], OHW = OH * OW;
  if (N * C * OHW == 0) return;
  auto at = [&](const float* plane, int64_t yy, int64_t xx) -> float {
    return (xx >= 0 && xx < W && yy >= 0 && yy < H) ? plane[yy * W + xx] : 0.f;
  };
#pragma omp parallel for collapse(2) schedule(static) if (N * C * OHW > (1 << 14))
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float* gp = grid + ((n * OH + oh) * OW + ow) * 2;
        float gx = grid_coord(gp[0], W, s), gy = grid_coord(gp[1], H, s);
        float* out = y + n * C * OHW + oh * OW + ow;
        const float* in = x + n * C * H * W;
        if (s.nearest) {
          // Round half away from zero (Eigen round, as Paddle's CPU kernel).
          float rx = std::round(gx), ry = std::round(gy);
          bool ok = rx >= 0 && rx <= W - 1 && ry >= 0 && ry <= H - 1;
          int64_t ix = ok ? static_cast<int64_t>(rx) : 0, iy = ok ? static_cast<int64_t>(ry) : 0;
          for (int64_t ch = 0; ch < C; ++ch)
            out[ch * OHW] = ok ? in[ch * H * W + iy * W + ix] : 0.f;
          continue;
        }
        if (!(std::isfinite(gx) && std::isfinite(gy))) {
          for (int64_t ch = 0; ch < C; ++ch) out[ch * OHW] = 0.f;
          continue;
        }
        float fx = std::floor(gx), fy = std::floor(gy);
        // Coordinates far outside contribute nothing; clamp before the cast.
        fx = std::min(std::max(fx, -2.f), static_cast<float>(W) + 1.f);
        fy = std::min(std::max(fy, -2.f), static_cast<float>(H) + 1.f);
        int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
        float dw = gx - std::floor(gx), de = 1.f - dw;
        float dn = gy - std::floor(gy), ds = 1.f - dn;
        for (int64_t ch = 0; ch < C; ++ch) {
          const float* p = in + ch * H * W;
          out[ch * OHW] = at(p, y0, x0) * de * ds + at(p, y0, x0 + 1) * dw * ds +
                          at(p, y0 + 1, x0) * de * dn + at(p, y0 + 1, x0 + 1) * dw * dn;
        }
      }
    }
  }
}

}  // namespace

void register_resample_ops(std::vector<OpDef>* t) {
  OpDef in;
  in.name = "interpolate";
  in.types = {"nearest_interp_v2", "bilinear_interp_v2", "pd_op.nearest_interp",
              "pd_op.bilinear_interp"};
  in.legacy_inputs = {"X", "OutSize", "SizeTensor*", "Scale"};
  in.legacy_outputs = {"Out"};
  in.prepare = prepare_interp;
  in.infer = infer_interp;
  in.run = run_interp;
  t->push_back(std::move(in));

  OpDef ps;
  ps.name = "pixel_shuffle";
  ps.types = {"pixel_shuffle", "pd_op.pixel_shuffle"};
  ps.legacy_inputs = {"X"};
  ps.legacy_outputs = {"Out"};
  ps.prepare = prepare_shuffle;
  ps.infer = infer_shuffle;
  ps.run = run_shuffle;
  t->push_back(std::move(ps));

  OpDef gs;
  gs.name = "grid_sample";
  gs.types = {"grid_sampler", "pd_op.grid_sample"};
  gs.legacy_inputs = {"X", "Grid"};
  gs.legacy_outputs = {"Output"};
  gs.prepare = prepare_grid;
  gs.infer = infer_grid;
  gs.run = run_grid;
  t->push_back(std::move(gs));
}

}  // namespace pif
