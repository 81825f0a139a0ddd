// hpi bf16 (precision 'bf16') matrix products against the reference kernels, on random shapes:
// constant weights packed once into oneDNN's bf16 layout (matmul.cc), linear layers with a
// bias, transposed weights, batched activations; and the same executor run twice with other
// batch sizes, so the packed copy serves every shape. bf16 keeps 8 mantissa bits and oneDNN
// accumulates in f32: the bound is relative to the sum of |terms| (2^-8 per operand).
// Skipped (with the reason) where the effective ISA has no bf16 (below AVX512_CORE_BF16).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/dnnl.h"

namespace pif::test {

PIF_TEST(dnnl, bf16_matmul_vs_reference) {
  if (!dnnl_backend::cpu_has_bf16()) skip("oneDNN's effective ISA has no bf16 here");
  SuiteStream& s = suite_stream("dnnl_bf16", 20261208);
  for (int k = 0; k < 60; ++k) {
    Rng& r = s.rng;
    const int64_t K = r.pick(std::vector<int64_t>{16, 64, 96, 200});
    const int64_t N = r.pick(std::vector<int64_t>{8, 32, 48, 130});
    const int64_t rows = r.i(1, 40);
    const bool ty = r.b(), batched = r.b(), bias = r.b();
    std::string desc = "bf16 matmul [" + std::to_string(rows) + "," + std::to_string(K) + "]x[" +
                       std::to_string(K) + "," + std::to_string(N) + "]" + (ty ? " trans_y" : "") +
                       (batched ? " batched" : "") + (bias ? " bias" : "");
    try {
      Graph g(r.b(), true);
      std::vector<int64_t> xd =
          batched ? std::vector<int64_t>{2, rows, K} : std::vector<int64_t>{rows, K};
      T x = g.feed(xd);
      std::vector<int64_t> wd = ty ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N};
      T w = g.cst(wd, r.vec(K * N, -0.5, 0.5));
      T y = emit_matmul(g, x, w, false, ty);
      if (bias) {
        T b = g.cst({N}, r.vec(N, -0.5, 0.5));
        y = emit_binary(g, "add", y, b, y.dims);
      }
      g.fetch(y);
      auto model = g.model();
      Executor ref(model);
      ExecutorOptions o;
      o.hpi = true;
      o.bf16 = true;
      Executor bf(model, o);
      for (int64_t batch : {xd[0], static_cast<int64_t>(r.i(1, 8)), xd[0]}) {
        std::vector<NamedTensor> feeds = g.draw_feeds(r);
        feeds[0].dims[0] = batch;
        std::vector<float> v = r.vec(prod(feeds[0].dims), -1, 1);
        feeds[0].data.resize(v.size() * 4);
        std::memcpy(feeds[0].data.data(), v.data(), feeds[0].data.size());
        std::vector<NamedTensor> want = ref.run(feeds, 1), got = bf.run(feeds, 1);
        const float* a = reinterpret_cast<const float*>(want[0].data.data());
        const float* b = reinterpret_cast<const float*>(got[0].data.data());
        const size_t n = want[0].data.size() / 4;
        if (got[0].data.size() != want[0].data.size()) {
          fail(desc + ": output sizes differ");
          break;
        }
        // |x| <= 1, |w| <= 0.5: the sum of |terms| is at most K / 2.
        const double tol = 2.0 * std::ldexp(1.0, -8) * static_cast<double>(K) * 0.5 + 1e-3;
        double worst = 0;
        for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
        if (!(worst <= tol))
          fail(desc + " batch " + std::to_string(batch) + ": max |bf16 - ref| " + num(worst) +
               " above " + num(tol));
      }
    } catch (const std::exception& e) {
      fail(desc + ": " + e.what());
    }
  }
}

}  // namespace pif::test
