// 2-D pooling (pool2d), reference kernel, following Paddle's phi pooling:
// - paddings: 2 values [h, w] symmetric or 4 [top, bottom, left, right];
//   SAME: pad_sum = max((ceil(in/stride) - 1) * stride + k - in, 0) split
//   pad_sum/2 before, rest after; VALID, global_pooling and adaptive zero them.
// - global_pooling: kernel = whole input plane.
// - output size: adaptive -> ksize; else (in - k + pad0 + pad1) / stride + 1,
//   with ceil_mode adding stride - 1 to the numerator.
// - window: start = o*stride - pad_before, end = min(start + k, in),
//   start = max(start, 0) (the after-padding only shapes the output size);
//   adaptive: start = floor(o*in/out), end = ceil((o+1)*in/out).
// - avg divides by the clipped window size when exclusive or adaptive, else
//   by kh*kw. An empty window (possible only in degenerate ceil_mode/padding
//   cases) yields 0.
// PIR pool2d(x, kernel_size): kernel_size is a folded int array constant (read
// from the input tensor at run time). NHWC inputs are transposed.
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <vector>

#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

// read_ints of a possibly empty tensor (an empty PIR int array operand).
std::vector<int64_t> ints_of(const RTensor& t) {
  if (t.numel() == 0) return {};
  return read_ints(t);
}

std::vector<int64_t> check_ksize(std::vector<int64_t> k) {
  if (k.size() == 1) k.push_back(k[0]);
  if (k.size() != 2)
    op_fail("pool2d kernel size must have 2 values, got " + std::to_string(k.size()));
  return k;
}

std::shared_ptr<const void> prepare_pool(const PrepareCtx& c) {
  PoolState s;
  const AttrReader& a = c.attr;
  std::string type = a.s("pooling_type", "max");
  if (type == "max")
    s.is_max = true;
  else if (type == "avg")
    s.is_max = false;
  else
    op_fail("unknown pooling_type '" + type + "'");
  if (c.has_input(1)) {
    if (const Tensor* t = c.constant(1)) {
      if (t->dtype != DType::Int32 && t->dtype != DType::Int64)
        op_fail("kernel_size operand must be an integer tensor");
    }
  } else {
    s.ksize = a.ints("ksize", {});
  }
  s.global = a.b("global_pooling", false);
  s.adaptive = a.b("adaptive", false);
  s.exclusive = a.b("exclusive", true);
  s.ceil_mode = a.b("ceil_mode", false);
  std::vector<int64_t> st = a.ints("strides", {1, 1});
  if (st.size() == 1) st.push_back(st[0]);
  if (st.size() != 2) op_fail("attribute 'strides' must have 2 values");
  s.sh = st[0];
  s.sw = st[1];
  if (s.sh <= 0 || s.sw <= 0) op_fail("strides must be positive");
  read_pads(a, s.pads);
  s.algo = read_pad_algo(a);
  s.nhwc = layout_is_nhwc(a, "data_format");
  return std::make_shared<const PoolState>(s);
}

struct PoolGeo {
  int64_t N, C, H, W, OH, OW, kh, kw, sh, sw, pt, pl;
  bool adaptive;
};

PoolGeo pool_geometry(const RunCtx& c) {
  const PoolState& s = c.node.attrs<PoolState>();
  const RTensor& x = need_input(c, 0, "X");
  expect_f32(x, "X");
  if (x.dims.size() != 4) op_fail("pool2d input must be 4-D, got " + shape_str(x.dims));
  PoolGeo g{};
  dims_nchw(x.dims, s.nhwc, &g.N, &g.C, &g.H, &g.W);
  std::vector<int64_t> k = s.ksize;
  if (const RTensor* kt = c.input(1)) k = ints_of(*kt);
  if (!s.global)
    k = check_ksize(k);
  else
    k = {g.H, g.W};
  g.kh = k[0];
  g.kw = k[1];
  g.sh = s.sh;
  g.sw = s.sw;
  int64_t pads[4] = {s.pads[0], s.pads[1], s.pads[2], s.pads[3]};
  if (s.algo == PadAlgo::Same) {
    auto same = [](int64_t in, int64_t st, int64_t kk, int64_t* p0, int64_t* p1) {
      int64_t out = (in + st - 1) / st;
      int64_t sum = std::max<int64_t>((out - 1) * st + kk - in, 0);
      *p0 = sum / 2;
      *p1 = sum - *p0;
    };
    same(g.H, g.sh, g.kh, &pads[0], &pads[1]);
    same(g.W, g.sw, g.kw, &pads[2], &pads[3]);
  }
  if (s.algo == PadAlgo::Valid || s.global || s.adaptive) pads[0] = pads[1] = pads[2] = pads[3] = 0;
  g.pt = pads[0];
  g.pl = pads[2];
  g.adaptive = s.adaptive;
  if (s.adaptive) {
    g.OH = g.kh;
    g.OW = g.kw;
    if (g.OH <= 0 || g.OW <= 0) op_fail("adaptive pool2d output size must be positive");
  } else {
    if (g.kh <= 0 || g.kw <= 0) op_fail("pool2d kernel size must be positive");
    auto osz = [&](int64_t in, int64_t kk, int64_t p0, int64_t p1, int64_t st) {
      int64_t num = in - kk + p0 + p1 + (s.ceil_mode ? st - 1 : 0);
      if (num < 0) {
        op_fail("pool2d kernel " + std::to_string(kk) + " is larger than the padded input " +
                std::to_string(in + p0 + p1));
      }
      return num / st + 1;
    };
    g.OH = osz(g.H, g.kh, pads[0], pads[1], g.sh);
    g.OW = osz(g.W, g.kw, pads[2], pads[3], g.sw);
  }
  return g;
}

void infer_pool(RunCtx& c) {
  const PoolState& s = c.node.attrs<PoolState>();
  PoolGeo g = pool_geometry(c);
  set_output(c.output(0), DType::Float32,
             s.nhwc ? std::vector<int64_t>{g.N, g.OH, g.OW, g.C}
                    : std::vector<int64_t>{g.N, g.C, g.OH, g.OW});
}

// Window bounds along one axis for output index o.
inline void window(const PoolGeo& g, bool h_axis, int64_t o, int64_t* a, int64_t* b) {
  int64_t in = h_axis ? g.H : g.W;
  if (g.adaptive) {
    int64_t out = h_axis ? g.OH : g.OW;
    *a = (o * in) / out;
    *b = ((o + 1) * in + out - 1) / out;
    return;
  }
  int64_t st = h_axis ? g.sh : g.sw, k = h_axis ? g.kh : g.kw, p = h_axis ? g.pt : g.pl;
  int64_t s = o * st - p;
  *b = std::min(s + k, in);
  *a = std::max<int64_t>(s, 0);
}

void pool_nchw(const PoolGeo& g, bool is_max, bool exclusive, const float* x, float* y) {
  int64_t planes = g.N * g.C;
  std::vector<int64_t> h0(g.OH), h1(g.OH), w0(g.OW), w1(g.OW);
  for (int64_t o = 0; o < g.OH; ++o) window(g, true, o, &h0[o], &h1[o]);
  for (int64_t o = 0; o < g.OW; ++o) window(g, false, o, &w0[o], &w1[o]);
  bool by_window = exclusive || g.adaptive;
  double full = static_cast<double>(g.kh * g.kw);
#pragma omp parallel for schedule(static) if (planes * g.OH * g.OW > (1 << 14))
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* in = x + pl * g.H * g.W;
    float* out = y + pl * g.OH * g.OW;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t ha = h0[oh], hb = h1[oh], wa = w0[ow], wb = w1[ow];
        float r;
        if (ha >= hb || wa >= wb) {
          r = 0.f;
        } else if (is_max) {
          float m = -FLT_MAX;
          for (int64_t h = ha; h < hb; ++h)
            for (int64_t w = wa; w < wb; ++w) m = std::max(m, in[h * g.W + w]);
          r = m;
        } else {
          double sum = 0.0;
          for (int64_t h = ha; h < hb; ++h)
            for (int64_t w = wa; w < wb; ++w) sum += in[h * g.W + w];
          r = static_cast<float>(sum /
                                 (by_window ? static_cast<double>((hb - ha) * (wb - wa)) : full));
        }
        out[oh * g.OW + ow] = r;
      }
    }
  }
}

void run_pool(RunCtx& c) {
  const PoolState& s = c.node.attrs<PoolState>();
  PoolGeo g = pool_geometry(c);
  const float* x = c.input(0)->ptr<float>();
  float* y = c.output(0)->ptr<float>();
  if (g.N * g.C * g.OH * g.OW == 0) return;
  if (!s.nhwc) {
    pool_nchw(g, s.is_max, s.exclusive, x, y);
    return;
  }
  int64_t HW = g.H * g.W, OHW = g.OH * g.OW;
  std::vector<float> xt(static_cast<size_t>(g.N * g.C * HW)),
      yt(static_cast<size_t>(g.N * g.C * OHW));
  nhwc_to_nchw(x, xt.data(), g.N, g.C, HW);
  pool_nchw(g, s.is_max, s.exclusive, xt.data(), yt.data());
  nchw_to_nhwc(yt.data(), y, g.N, g.C, OHW);
}

}  // namespace

void register_pool_ops(std::vector<OpDef>* t) {
  // PIR: pool2d(x, kernel_size); legacy pool2d has the kernel size as an attribute.
  t->push_back(make_op_def("pool2d", {"pool2d", "pd_op.pool2d"}, {"X", ""}, {"Out"}, prepare_pool,
                           infer_pool, run_pool));
}

}  // namespace pif
