// The head tier's tail (native/train/head.h): every parameter's gradient against central finite
// differences in double precision (dropout mask, BN batch statistics and both losses included),
// float against double, inference features against a direct computation, the learning-rate
// schedule and the Momentum update by hand, and a few hundred steps on clustered synthetic
// features that must cut the loss and separate the classes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/util.h"
#include "train/head.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {
namespace {

using train::HeadConfig;
using train::HeadGrads;
using train::HeadWeights;

template <typename T>
HeadWeights<T> random_head(int64_t in, int64_t dim, int64_t classes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  HeadWeights<T> w;
  w.in = in, w.dim = dim, w.classes = classes;
  auto fill = [&](std::vector<T>& v, size_t n, double scale, double shift) {
    v.resize(n);
    for (T& x : v) x = static_cast<T>(shift + scale * nd(rng));
  };
  fill(w.w, dim * in, 1.0 / std::sqrt(static_cast<double>(in)), 0);
  fill(w.b, dim, 0.1, 0);
  fill(w.gamma, dim, 0.1, 1);
  fill(w.beta, dim, 0.1, 0);
  fill(w.mean, dim, 0.1, 0);
  w.var.assign(dim, T(1));
  fill(w.fc, dim * classes, 0.3, 0);
  return w;
}

void near(double got, double want, double tol, const std::string& what) {
  if (!(std::fabs(got - want) <= tol))
    fail(what + ": " + std::to_string(got) + ", want " + std::to_string(want));
}

}  // namespace

PIF_TEST(train_head, gradients_vs_finite_differences) {
  const int64_t in = 7, dim = 6, classes = 5, n = 8;
  const std::vector<int64_t> labels = {0, 0, 3, 3, 1, 1, 4, 4};
  std::vector<double> x = gaussian_values(n * in, 21);
  std::vector<uint8_t> keep(n * dim, 1);
  for (size_t k = 0; k < keep.size(); k += 5) keep[k] = 0;
  // CE, CE + triplet (PP-ShiTuV2_rec), and the CLIP tail (no BNNeck, ArcMargin + CE).
  for (int mode : {0, 1, 2}) {
    HeadConfig cfg;
    cfg.use_triplet = mode == 1;
    cfg.bnneck = mode != 2;
    cfg.arc_margin = mode == 2;
    cfg.arc.scale = 4;
    HeadWeights<double> w = random_head<double>(in, dim, classes, 5);
    HeadGrads<double> g;
    train::head_train_step(w, cfg, x.data(), labels.data(), n, keep.data(), &g, nullptr, nullptr);
    struct Param {
      const char* name;
      std::vector<double>* value;
      const std::vector<double>* grad;
    } params[] = {{"w", &w.w, &g.w},
                  {"b", &w.b, &g.b},
                  {"gamma", &w.gamma, &g.gamma},
                  {"beta", &w.beta, &g.beta},
                  {"fc", &w.fc, &g.fc}};
    for (const Param& p : params) {
      double worst = 0, scale = 1e-8;
      for (size_t k = 0; k < p.value->size(); ++k) {
        const double keep_v = (*p.value)[k], h = 1e-6;
        (*p.value)[k] = keep_v + h;
        const double up = train::head_train_step(w, cfg, x.data(), labels.data(), n, keep.data(),
                                                 nullptr, nullptr, nullptr)
                              .total;
        (*p.value)[k] = keep_v - h;
        const double down = train::head_train_step(w, cfg, x.data(), labels.data(), n, keep.data(),
                                                   nullptr, nullptr, nullptr)
                                .total;
        (*p.value)[k] = keep_v;
        const double numeric = (up - down) / (2 * h);
        worst = std::max(worst, std::fabs(numeric - (*p.grad)[k]));
        scale = std::max(scale, std::fabs(numeric));
      }
      if (worst / scale > 1e-5)
        FAILF(std::string(p.name) + " (mode " + std::to_string(mode) + "): relative error " +
              std::to_string(worst / scale));
    }
  }
}

PIF_TEST(train_head, float_matches_double) {
  const int64_t in = 64, dim = 32, classes = 10, n = 16;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i / 4);
  HeadWeights<double> wd = random_head<double>(in, dim, classes, 9);
  HeadWeights<float> wf;
  wf.in = in, wf.dim = dim, wf.classes = classes;
  auto cast = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  wf.w = cast(wd.w), wf.b = cast(wd.b), wf.gamma = cast(wd.gamma), wf.beta = cast(wd.beta);
  wf.mean = cast(wd.mean), wf.var = cast(wd.var), wf.fc = cast(wd.fc);
  std::vector<double> xd = gaussian_values(n * in, 4);
  std::vector<float> xf = cast(xd);
  HeadConfig cfg;
  HeadGrads<double> gd;
  HeadGrads<float> gf;
  const double ld =
      train::head_train_step(wd, cfg, xd.data(), labels.data(), n, nullptr, &gd, nullptr, nullptr)
          .total;
  const double lf =
      train::head_train_step(wf, cfg, xf.data(), labels.data(), n, nullptr, &gf, nullptr, nullptr)
          .total;
  near(lf, ld, 1e-4 * std::fabs(ld), "loss");
  double worst = 0, scale = 0;
  for (size_t k = 0; k < gd.w.size(); ++k) {
    worst = std::max(worst, std::fabs(gf.w[k] - gd.w[k]));
    scale = std::max(scale, std::fabs(gd.w[k]));
  }
  if (worst > 1e-3 * scale) FAILF("dW: float differs by " + std::to_string(worst / scale));
}

PIF_TEST(train_head, features_and_running_statistics) {
  const int64_t in = 5, dim = 4, classes = 3, n = 6;
  HeadWeights<double> w = random_head<double>(in, dim, classes, 2);
  std::vector<double> x = gaussian_values(n * in, 8);
  std::vector<int64_t> labels = {0, 0, 1, 1, 2, 2};
  HeadConfig cfg;
  std::vector<double> bm, bv;
  train::head_train_step(w, cfg, x.data(), labels.data(), n, nullptr, nullptr, &bm, &bv);
  HeadWeights<double> updated = w;
  train::update_running_stats(&updated, cfg, bm, bv);
  std::vector<double> y(n * dim);
  train::head_features(updated, cfg, x.data(), n, y.data());
  for (int64_t j = 0; j < dim; ++j) {
    // The batch statistics of z, by hand, and the running update with momentum 0.9.
    double mu = 0, var = 0;
    std::vector<double> z(n);
    for (int64_t i = 0; i < n; ++i) {
      z[i] = w.b[j];
      for (int64_t p = 0; p < in; ++p) z[i] += x[i * in + p] * w.w[j * in + p];
      mu += z[i] / n;
    }
    for (int64_t i = 0; i < n; ++i) var += (z[i] - mu) * (z[i] - mu) / n;
    near(updated.mean[j], 0.9 * w.mean[j] + 0.1 * mu, 1e-12, "running mean");
    near(updated.var[j], 0.9 * w.var[j] + 0.1 * var, 1e-12, "running var");
    for (int64_t i = 0; i < n; ++i) {
      const double want =
          (z[i] * 0.8 - updated.mean[j]) / std::sqrt(updated.var[j] + 1e-5) * w.gamma[j] +
          w.beta[j];
      near(y[i * dim + j], want, 1e-12, "feature");
    }
  }
}

PIF_TEST(train_head, learning_rate_and_momentum) {
  // Warmup 10 steps from 0 to 0.06, then cosine to 0.01 over 90 steps.
  near(train::cosine_warmup_lr(0, 100, 10, 0.06, 0.01, 0), 0, 1e-15, "step 0");
  near(train::cosine_warmup_lr(5, 100, 10, 0.06, 0.01, 0), 0.03, 1e-15, "mid warmup");
  near(train::cosine_warmup_lr(10, 100, 10, 0.06, 0.01, 0), 0.06, 1e-15, "end of warmup");
  near(train::cosine_warmup_lr(55, 100, 10, 0.06, 0.01, 0), 0.035, 1e-12, "mid cosine");
  near(train::cosine_warmup_lr(100, 100, 10, 0.06, 0.01, 0), 0.01, 1e-15, "end");
  std::vector<float> p = {1.f, -2.f}, v, g = {0.5f, 0.25f};
  train::momentum_step(&p, &v, g, 0.1, 0.9, 0.01);  // v = g + 0.01 p
  near(v[0], 0.51, 1e-6, "velocity");
  near(p[0], 1 - 0.1 * 0.51, 1e-6, "param");
  train::momentum_step(&p, &v, g, 0.1, 0.9, 0.01);  // v = 0.9 v + g + 0.01 p
  near(v[1], 0.9 * 0.23 + 0.25 + 0.01 * (-2 - 0.1 * 0.23), 1e-6, "second velocity");
}

PIF_TEST(train_head, training_separates_clustered_classes) {
  // 8 classes of 64-d "pooled features": a random centre each plus 2.5x as much noise, so that
  // the untrained random head confuses them (recall@1 about 0.3) and training must find the
  // directions that separate them.
  const int64_t in = 64, dim = 32, classes = 8, per_class = 64;
  std::mt19937_64 rng(77);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> centres(classes * in);
  for (float& c : centres) c = nd(rng);
  auto sample = [&](int64_t c, float* out) {
    for (int64_t p = 0; p < in; ++p) out[p] = centres[c * in + p] + 2.5f * nd(rng);
  };
  std::vector<float> train_x(classes * per_class * in), test_x(classes * 8 * in);
  std::vector<int64_t> train_y, test_y;
  for (int64_t c = 0; c < classes; ++c) {
    for (int64_t k = 0; k < per_class; ++k) {
      sample(c, &train_x[(c * per_class + k) * in]);
      train_y.push_back(c);
    }
    for (int64_t k = 0; k < 8; ++k) {
      sample(c, &test_x[(c * 8 + k) * in]);
      test_y.push_back(c);
    }
  }
  HeadWeights<float> w = random_head<float>(in, dim, classes, 3);
  for (float& f : w.fc) f *= 0.01f;
  HeadConfig cfg;
  // Recall@1 on the test rows (leave-one-out among them), by cosine.
  auto recall1 = [&]() {
    const int64_t n = static_cast<int64_t>(test_y.size());
    std::vector<float> y(n * dim);
    train::head_features(w, cfg, test_x.data(), n, y.data());
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int64_t j = 0; j < dim; ++j) s += y[i * dim + j] * y[i * dim + j];
      for (int64_t j = 0; j < dim; ++j) y[i * dim + j] /= static_cast<float>(std::sqrt(s));
    }
    int hits = 0;
    for (int64_t i = 0; i < n; ++i) {
      int64_t best = -1;
      double best_cos = -2;
      for (int64_t k = 0; k < n; ++k) {
        if (k == i) continue;
        double s = 0;
        for (int64_t j = 0; j < dim; ++j) s += y[i * dim + j] * y[k * dim + j];
        if (s > best_cos) best_cos = s, best = k;
      }
      hits += test_y[best] == test_y[i];
    }
    return static_cast<double>(hits) / n;
  };
  const double before = recall1();
  // PK batches: 4 classes x 4 rows, seeded; Momentum 0.9, L2 1e-5, cosine with warmup.
  std::vector<std::vector<float>> vel(5);
  const int64_t steps = 300, batch = 16;
  std::vector<float> bx(batch * in);
  std::vector<int64_t> by(batch);
  std::vector<uint8_t> keep(batch * dim);
  std::bernoulli_distribution kept(0.8);
  double first = 0, last = 0;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<int64_t> order(classes);
    for (int64_t c = 0; c < classes; ++c) order[c] = c;
    std::shuffle(order.begin(), order.end(), rng);
    for (int64_t r = 0; r < batch; ++r) {
      const int64_t c = order[r / 4];
      const int64_t k = std::uniform_int_distribution<int64_t>(0, per_class - 1)(rng);
      std::copy_n(&train_x[(c * per_class + k) * in], in, &bx[r * in]);
      by[r] = c;
    }
    for (uint8_t& m : keep) m = kept(rng);
    HeadGrads<float> g;
    std::vector<float> bm, bv;
    const double loss =
        train::head_train_step(w, cfg, bx.data(), by.data(), batch, keep.data(), &g, &bm, &bv)
            .total;
    if (s < 10) first += loss / 10;
    if (s >= steps - 10) last += loss / 10;
    train::update_running_stats(&w, cfg, bm, bv);
    const double lr = train::cosine_warmup_lr(s, steps, 20, 0.05, 0.001, 0);
    train::momentum_step(&w.w, &vel[0], g.w, lr, 0.9, 1e-5);
    train::momentum_step(&w.b, &vel[1], g.b, lr, 0.9, 1e-5);
    train::momentum_step(&w.gamma, &vel[2], g.gamma, lr, 0.9, 1e-5);
    train::momentum_step(&w.fc, &vel[4], g.fc, lr, 0.9, 1e-5);
  }
  const double after = recall1();
  if (verbose())
    std::printf("loss %.4f -> %.4f, recall@1 %.3f -> %.3f\n", first, last, before, after);
  if (!(last < 0.7 * first)) FAILF("loss " + std::to_string(first) + " -> " + std::to_string(last));
  if (!(after >= before + 0.2))
    FAILF("recall@1 " + std::to_string(before) + " -> " + std::to_string(after));
}

}  // namespace pif::test
