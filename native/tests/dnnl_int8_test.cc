// The int8 convolution of hpi (kernels/dnnl/conv_int8.cc) against the
// reference kernels, on random shapes, under every oneDNN ISA cap (ctest runs
// this suite with the dnnl one).
//
// The check is exact where the hardware is: inputs lie on the quantisation
// grid (x = src_scale * q, q in u8 or s8) and every filter row on its own grid
// (w[oc] = w_scale[oc] * q with one |q| = 127, so the kernel's per-channel
// scale max|W[oc]|/127 is w_scale[oc] exactly). Then the integer accumulation
// is exact and the int8 output equals the float convolution up to float
// rounding (1e-4 relative) on VNNI / AMX. Without VNNI the kernel quantises
// weights to 7 bits (+-63: vpmaddubsw's 16-bit pair sums saturate with 8-bit
// weights), which costs up to half a 7-bit weight step per product: the bound
// there is that error, summed over the receptive field.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "tests/dnnl.h"

namespace pif::test {
namespace {

struct QCase {
  int64_t N, C, H, W, OC, K, stride, pad;
  bool src_unsigned, bias, relu, residual;
  float src_scale;
};

std::vector<float> grid_weights(Rng& r, int64_t OC, int64_t per, std::vector<float>* ws) {
  std::vector<float> w(static_cast<size_t>(OC * per));
  ws->resize(static_cast<size_t>(OC));
  for (int64_t o = 0; o < OC; ++o) {
    const float s = static_cast<float>(r.u(0.002, 0.05));
    (*ws)[static_cast<size_t>(o)] = s;
    for (int64_t i = 0; i < per; ++i)
      w[static_cast<size_t>(o * per + i)] = s * static_cast<float>(r.i(-127, 127));
    w[static_cast<size_t>(o * per + r.i(0, per - 1))] = s * (r.b() ? 127.f : -127.f);
  }
  return w;
}

NamedTensor grid_feed(Rng& r, const std::string& name, const std::vector<int64_t>& dims,
                      float scale, bool unsigned_q) {
  NamedTensor t;
  t.name = name;
  t.dtype = DType::Float32;
  t.dims = dims;
  std::vector<float> v(static_cast<size_t>(prod(dims)));
  for (float& x : v) x = scale * static_cast<float>(unsigned_q ? r.i(0, 255) : r.i(-128, 127));
  t.data.resize(v.size() * 4);
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

void run_case(Rng& r, const QCase& q, const std::string& desc) {
  Graph g(r.b(), false);
  T x = g.feed({q.N, q.C, q.H, q.W});
  const int64_t OH = (q.H + 2 * q.pad - q.K) / q.stride + 1;
  const int64_t OW = (q.W + 2 * q.pad - q.K) / q.stride + 1;
  std::vector<float> ws;
  std::vector<float> wv = grid_weights(r, q.OC, q.C * q.K * q.K, &ws);
  T w = g.cst({q.OC, q.C, q.K, q.K}, wv);
  g.op("conv2d", "pd_op.conv2d");
  g.in("Input", x.id);
  g.in("Filter", w.id);
  T y = g.out("Output", {q.N, q.OC, OH, OW});
  const bool pir = g.pir();
  g.attr("strides", attr_ints({q.stride, q.stride}, pir));
  g.attr("paddings", attr_ints({q.pad, q.pad}, pir));
  g.attr("dilations", attr_ints({1, 1}, pir));
  g.attr("groups", attr_int(1));
  g.attr("padding_algorithm", attr_str("EXPLICIT"));
  g.attr("data_format", attr_str("NCHW"));
  if (q.bias) {
    T b = g.cst({1, q.OC, 1, 1}, r.vec(q.OC, -0.5, 0.5));
    y = emit_binary(g, "add", y, b, y.dims);
  }
  if (q.relu) y = emit_act(g, y, act("relu"));
  T res;
  if (q.residual) {
    res = g.feed({q.N, q.OC, OH, OW});
    y = emit_binary(g, "add", y, res, y.dims);
  }
  g.fetch(y);
  std::vector<NamedTensor> feeds{grid_feed(r, "x0", x.dims, q.src_scale, q.src_unsigned)};
  if (q.residual) {
    NamedTensor rt = grid_feed(r, "x1", res.dims, 0.05f, false);
    feeds.push_back(rt);
  }
  auto model = g.model();
  Executor ref(model);
  ExecutorOptions o;
  o.hpi = true;
  auto table = std::make_shared<QuantTable>();
  table->conv[0] = QuantConv{q.src_scale, q.src_unsigned};
  o.quant = table;
  Executor int8(model, o);
  const auto& layers = int8.conv_layers();
  if (layers.size() != 1 || !layers[0].int8) {
    fail(desc + ": the convolution is not bound to the int8 kernel");
    return;
  }
  std::vector<NamedTensor> want = ref.run(feeds, 1), got = int8.run(feeds, 1 + r.i(0, 1));
  for (const auto& notes : int8.path_notes())
    for (const PathNote& n : notes)
      if (n.path == "reference") fail(desc + ": int8 ran the reference kernel: " + n.reason);
  const float* a = reinterpret_cast<const float*>(want[0].data.data());
  const float* b = reinterpret_cast<const float*>(got[0].data.data());
  const size_t n = want[0].data.size() / 4;
  // Without VNNI: half a 7-bit weight step (wmax * 127 / 63) per product, |x| at most 255 steps.
  float wmax = *std::max_element(ws.begin(), ws.end());
  const double loose =
      0.5 * wmax * 127.0 / 63.0 * 255.0 * q.src_scale * static_cast<double>(q.C * q.K * q.K);
  double worst = 0;
  // Float rounding of the reference's own sum grows with the sum of |terms|.
  const double terms = 255.0 * q.src_scale * 127.0 * wmax * static_cast<double>(q.C * q.K * q.K);
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(static_cast<double>(a[i]) - b[i]);
    const double tol = 1e-4 * std::max(1.0, std::fabs(static_cast<double>(a[i]))) + 1e-6 * terms +
                       (dnnl_backend::cpu_has_vnni() ? 0.0 : loose);
    worst = std::max(worst, err / tol);
  }
  if (worst > 1.0)
    fail(desc + ": int8 differs from the reference by " + num(worst) + "x the tolerance");
}

}  // namespace

PIF_TEST(dnnl, int8_conv_vs_reference) {
  SuiteStream& s = suite_stream("dnnl_int8", 20261208);
  for (int k = 0; k < 150; ++k) {
    Rng& r = s.rng;
    QCase q;
    q.N = r.i(1, 2);
    q.C = r.pick(std::vector<int64_t>{3, 8, 16, 24, 32, 64});
    q.OC = r.pick(std::vector<int64_t>{8, 16, 24, 48});
    q.K = r.pick(std::vector<int64_t>{1, 1, 3});
    q.stride = r.i(1, 2);
    q.pad = q.K == 3 ? r.i(0, 1) : 0;
    q.H = r.i(q.K, 14);
    q.W = r.i(q.K, 14);
    q.src_unsigned = r.b();
    q.bias = r.b();
    q.relu = r.b();
    q.residual = r.b(0.3);
    q.src_scale = static_cast<float>(r.u(0.005, 0.05));
    std::string desc =
        "int8 conv N" + std::to_string(q.N) + " C" + std::to_string(q.C) + " " +
        std::to_string(q.H) + "x" + std::to_string(q.W) + " OC" + std::to_string(q.OC) + " k" +
        std::to_string(q.K) + " s" + std::to_string(q.stride) + (q.src_unsigned ? " u8" : " s8") +
        (q.bias ? " bias" : "") + (q.relu ? " relu" : "") + (q.residual ? " residual" : "");
    try {
      run_case(r, q, desc);
    } catch (const std::exception& e) {
      fail(desc + ": " + e.what());
    }
  }
}

}  // namespace pif::test
