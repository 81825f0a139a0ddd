// The last-stage tier (native/train/stage_ops.h, stage_tier.h): each backward kernel against
// central finite differences in double precision on random shapes (a random linear functional
// of the output as the loss), the forward kernels against direct sums, the whole stage + tail
// step's gradients for every trained vector, float against double, the inference form against
// the training form's statistics, and a short run that must cut the loss.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/util.h"
#include "train/stage_fused.h"
#include "train/stage_ops.h"
#include "train/stage_tier.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {
namespace {

using train::DwShape;

std::vector<double> rnd(size_t n, std::mt19937_64& rng, double scale = 1, double shift = 0) {
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = shift + scale * nd(rng);
  return v;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

// max |numeric - analytic| / max(|numeric|) over every entry of `v`, for loss().
double fd_error(std::vector<double>* v, const std::vector<double>& analytic,
                const std::function<double()>& loss) {
  double worst = 0, scale = 1e-8;
  for (size_t k = 0; k < v->size(); ++k) {
    const double keep = (*v)[k], h = 1e-6;
    (*v)[k] = keep + h;
    const double up = loss();
    (*v)[k] = keep - h;
    const double down = loss();
    (*v)[k] = keep;
    const double numeric = (up - down) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - analytic[k]));
    scale = std::max(scale, std::fabs(numeric));
  }
  return worst / scale;
}

void check(const std::string& op, const std::string& desc, double err, double tol = 1e-6) {
  record(op, desc, err, err <= tol ? "" : "relative error " + std::to_string(err));
}

}  // namespace

PIF_TEST(train_stage, kernel_gradients_vs_finite_differences) {
  std::mt19937_64 rng(seed_or(17));
  const int cases = cases_or(40);
  for (int c = 0; c < cases; ++c) {
    DwShape s;
    s.n = 1 + static_cast<int64_t>(rng() % 3);
    s.c = 1 + static_cast<int64_t>(rng() % 4);
    s.h = 1 + static_cast<int64_t>(rng() % 7);
    s.w = 1 + static_cast<int64_t>(rng() % 7);
    s.k = 1 + 2 * static_cast<int64_t>(rng() % 3);
    s.stride = 1 + static_cast<int64_t>(rng() % 2);
    s.pad = (s.k - 1) / 2;
    const std::string desc = "n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " +
                             std::to_string(s.h) + "x" + std::to_string(s.w) + " k" +
                             std::to_string(s.k) + " s" + std::to_string(s.stride);
    const size_t xs = s.n * s.c * s.h * s.w, ys = s.n * s.c * s.oh() * s.ow();
    std::vector<double> x = rnd(xs, rng), w = rnd(s.c * s.k * s.k, rng), b = rnd(s.c, rng);
    const std::vector<double> r = rnd(ys, rng);  // loss = r . y
    std::vector<double> y(ys), dx(xs), dw(w.size()), db(b.size());
    auto dw_loss = [&] {
      train::dw_conv_forward(x.data(), w.data(), b.data(), y.data(), s);
      return dot(r, y);
    };
    train::dw_conv_backward_data(r.data(), w.data(), dx.data(), s);
    train::dw_conv_backward_weights(x.data(), r.data(), dw.data(), db.data(), s);
    check("dw_conv backward_data", desc, fd_error(&x, dx, dw_loss));
    check("dw_conv backward_weights", desc, fd_error(&w, dw, dw_loss));
    check("dw_conv backward_bias", desc, fd_error(&b, db, dw_loss));
    // The forward against a direct sum at every output.
    dw_loss();
    double worst = 0;
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t ch = 0; ch < s.c; ++ch)
        for (int64_t i = 0; i < s.oh(); ++i)
          for (int64_t j = 0; j < s.ow(); ++j) {
            double v = b[ch];
            for (int64_t p = 0; p < s.k; ++p)
              for (int64_t q = 0; q < s.k; ++q) {
                const int64_t ii = i * s.stride - s.pad + p, jj = j * s.stride - s.pad + q;
                if (ii >= 0 && ii < s.h && jj >= 0 && jj < s.w)
                  v += x[((n * s.c + ch) * s.h + ii) * s.w + jj] * w[(ch * s.k + p) * s.k + q];
              }
            worst = std::max(worst, std::fabs(v - y[((n * s.c + ch) * s.oh() + i) * s.ow() + j]));
          }
    check("dw_conv forward", desc, worst, 1e-12);

    const int64_t n = s.n, ci = s.c, co = 1 + static_cast<int64_t>(rng() % 5), hw = s.h * s.w;
    std::vector<double> px = rnd(n * ci * hw, rng), pw = rnd(co * ci, rng),
                        pr = rnd(n * co * hw, rng);
    std::vector<double> py(pr.size()), pdx(px.size()), pdw(pw.size());
    auto pw_loss = [&] {
      train::pw_conv_forward(px.data(), pw.data(), py.data(), n, ci, co, hw);
      return dot(pr, py);
    };
    train::pw_conv_backward_data(pr.data(), pw.data(), pdx.data(), n, ci, co, hw);
    train::pw_conv_backward_weights(px.data(), pr.data(), pdw.data(), n, ci, co, hw);
    check("pw_conv backward_data", desc, fd_error(&px, pdx, pw_loss));
    check("pw_conv backward_weights", desc, fd_error(&pw, pdw, pw_loss));

    if (n * hw < 2) continue;  // batch statistics of one value have no gradient to speak of
    std::vector<double> bx = rnd(n * co * hw, rng, 2, 0.5), g = rnd(co, rng, 0.3, 1),
                        be = rnd(co, rng), br = rnd(bx.size(), rng);
    std::vector<double> by(bx.size()), mean(co), var(co), bdx(bx.size()), dg(co), dbe(co);
    auto bn_loss = [&] {
      train::bn_train_forward(bx.data(), g.data(), be.data(), 1e-5, n, co, hw, by.data(),
                              mean.data(), var.data());
      return dot(br, by);
    };
    bn_loss();
    train::bn_train_backward(bx.data(), br.data(), g.data(), mean.data(), var.data(), 1e-5, n, co,
                             hw, bdx.data(), dg.data(), dbe.data());
    check("batch_norm backward_data", desc, fd_error(&bx, bdx, bn_loss), 1e-5);
    check("batch_norm backward_scale", desc, fd_error(&g, dg, bn_loss));
    check("batch_norm backward_shift", desc, fd_error(&be, dbe, bn_loss));

    std::vector<double> ax = rnd(n * co * hw, rng), ar = rnd(n * co, rng), ap(n * co),
                        adx(ax.size());
    auto pool_loss = [&] {
      train::avg_pool_forward(ax.data(), ap.data(), n, co, hw);
      return dot(ar, ap);
    };
    train::avg_pool_backward(ar.data(), adx.data(), n, co, hw);
    check("avg_pool backward", desc, fd_error(&ax, adx, pool_loss));
    std::vector<double> rx = rnd(ax.size(), rng), rr = rnd(ax.size(), rng), ry, rdx = rr;
    auto relu_loss = [&] {
      ry = rx;
      train::relu_forward(ry.data(), static_cast<int64_t>(ry.size()));
      return dot(rr, ry);
    };
    relu_loss();
    train::relu_backward(ry.data(), rdx.data(), static_cast<int64_t>(rdx.size()));
    check("relu backward", desc, fd_error(&rx, rdx, relu_loss));
  }
}

namespace {

template <typename T>
train::StageWeights<T> random_stage(std::mt19937_64& rng, int64_t c0, int64_t c1, int64_t dim,
                                    int64_t classes) {
  train::StageWeights<T> w;
  auto fill = [&](std::vector<T>& v, size_t n, double scale, double shift) {
    std::vector<double> d = rnd(n, rng, scale, shift);
    v.assign(d.begin(), d.end());
  };
  for (int b = 0; b < 2; ++b) {
    train::BlockWeights<T> k;
    k.cin = b == 0 ? c0 : c1, k.cout = c1, k.k = 5, k.stride = 1, k.pad = 2;
    k.residual = b == 1;
    fill(k.dw_w, k.cin * 25, 0.2, 0);
    fill(k.dw_b, k.cin, 0.1, 0.1);
    fill(k.pw_w, k.cin * k.cout, 1.0 / std::sqrt(static_cast<double>(k.cin)), 0);
    fill(k.gamma, k.cout, 0.1, 1);
    fill(k.beta, k.cout, 0.1, 0.1);
    fill(k.mean, k.cout, 0.1, 0);
    fill(k.var, k.cout, 0.1, 1);
    for (T& v : k.var) v = std::fabs(v);
    w.blocks.push_back(std::move(k));
  }
  train::HeadWeights<T>& h = w.head;
  h.in = c1, h.dim = dim, h.classes = classes;
  fill(h.w, dim * c1, 1.0 / std::sqrt(static_cast<double>(c1)), 0);
  fill(h.b, dim, 0.1, 0);
  fill(h.gamma, dim, 0.1, 1);
  fill(h.beta, dim, 0.1, 0);
  fill(h.mean, dim, 0.1, 0);
  h.var.assign(dim, T(1));
  fill(h.fc, dim * classes, 0.3, 0);
  return w;
}

}  // namespace

PIF_TEST(train_stage, step_gradients_vs_finite_differences) {
  std::mt19937_64 rng(seed_or(23));
  const int64_t c0 = 3, c1 = 4, dim = 5, classes = 3, n = 6, h = 5, wd = 4;
  const std::vector<int64_t> labels = {0, 0, 1, 1, 2, 2};
  train::StageWeights<double> w = random_stage<double>(rng, c0, c1, dim, classes);
  const std::vector<double> x = rnd(n * c0 * h * wd, rng, 1, 0.3);
  std::vector<uint8_t> keep(n * dim, 1);
  for (size_t k = 0; k < keep.size(); k += 4) keep[k] = 0;
  train::HeadConfig cfg;
  train::StageGrads<double> g;
  train::stage_train_step(w, cfg, x.data(), n, h, wd, labels.data(), keep.data(), &g, nullptr,
                          train::StageKernels::Reference);
  auto loss = [&] {
    return train::stage_train_step(w, cfg, x.data(), n, h, wd, labels.data(), keep.data(), nullptr,
                                   nullptr, train::StageKernels::Reference)
        .total;
  };
  for (size_t b = 0; b < 2; ++b) {
    train::BlockWeights<double>& k = w.blocks[b];
    const train::BlockGrads<double>& kg = g.blocks[b];
    const std::string blk = "block " + std::to_string(b) + " ";
    check("stage step", blk + "dw_w", fd_error(&k.dw_w, kg.dw_w, loss), 1e-4);
    check("stage step", blk + "dw_b", fd_error(&k.dw_b, kg.dw_b, loss), 1e-4);
    check("stage step", blk + "pw_w", fd_error(&k.pw_w, kg.pw_w, loss), 1e-4);
    check("stage step", blk + "gamma", fd_error(&k.gamma, kg.gamma, loss), 1e-4);
    check("stage step", blk + "beta", fd_error(&k.beta, kg.beta, loss), 1e-4);
  }
  check("stage step", "tail w", fd_error(&w.head.w, g.head.w, loss), 1e-4);
  check("stage step", "tail gamma", fd_error(&w.head.gamma, g.head.gamma, loss), 1e-4);
  check("stage step", "fc", fd_error(&w.head.fc, g.head.fc, loss), 1e-4);
}

PIF_TEST(train_stage, float_matches_double_and_inference_form) {
  std::mt19937_64 rng(seed_or(29));
  const int64_t c0 = 16, c1 = 32, dim = 16, classes = 4, n = 8, h = 7, wd = 7;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i / 2);
  std::mt19937_64 r2 = rng;
  train::StageWeights<double> wd64 = random_stage<double>(rng, c0, c1, dim, classes);
  train::StageWeights<float> wf = random_stage<float>(r2, c0, c1, dim, classes);
  const std::vector<double> xd = rnd(n * c0 * h * wd, rng, 1, 0.3);
  const std::vector<float> xf(xd.begin(), xd.end());
  train::HeadConfig cfg;
  train::StageGrads<double> gd;
  train::StageGrads<float> gf;
  const double ld = train::stage_train_step(wd64, cfg, xd.data(), n, h, wd, labels.data(), nullptr,
                                            &gd, nullptr, train::StageKernels::Reference)
                        .total;
  const double lf = train::stage_train_step(wf, cfg, xf.data(), n, h, wd, labels.data(), nullptr,
                                            &gf, nullptr, train::StageKernels::Reference)
                        .total;
  if (std::fabs(lf - ld) > 1e-4 * std::fabs(ld)) FAILF("loss differs: " + std::to_string(lf - ld));
  double worst = 0, scale = 0;
  for (size_t k = 0; k < gd.blocks[0].dw_w.size(); ++k) {
    worst = std::max(worst, std::fabs(gf.blocks[0].dw_w[k] - gd.blocks[0].dw_w[k]));
    scale = std::max(scale, std::fabs(gd.blocks[0].dw_w[k]));
  }
  if (worst > 1e-3 * scale)
    FAILF("block 0 dw_w: float differs by " + std::to_string(worst / scale));
  // With the running statistics set to a batch's own, the inference form gives the training
  // form's pooled features (no dropout: the head is not involved).
  train::StageStats<double> st;
  train::stage_train_step(wd64, cfg, xd.data(), n, h, wd, labels.data(), nullptr, nullptr, &st,
                          train::StageKernels::Reference);
  train::StageWeights<double> inf = wd64;
  inf.blocks[0].mean = st.mean[0], inf.blocks[0].var = st.var[0];
  // Block 0 alone (a one-block stage), against its training form built from the kernels.
  train::StageWeights<double> one = inf;
  one.blocks.resize(1);
  one.head.in = c1;
  std::vector<double> p1(n * c1), p2(n * c1);
  train::stage_pooled(one, xd.data(), n, h, wd, p1.data(), train::StageKernels::Reference);
  const train::BlockWeights<double>& k = wd64.blocks[0];
  DwShape s;
  s.n = n, s.c = c0, s.h = h, s.w = wd;
  std::vector<double> a(n * c0 * h * wd), p(n * c1 * h * wd), q(p.size()), m(c1), v(c1);
  train::dw_conv_forward(xd.data(), k.dw_w.data(), k.dw_b.data(), a.data(), s);
  train::relu_forward(a.data(), static_cast<int64_t>(a.size()));
  train::pw_conv_forward(a.data(), k.pw_w.data(), p.data(), n, c0, c1, h * wd);
  train::bn_train_forward(p.data(), k.gamma.data(), k.beta.data(), k.bn_epsilon, n, c1, h * wd,
                          q.data(), m.data(), v.data());
  train::relu_forward(q.data(), static_cast<int64_t>(q.size()));
  train::avg_pool_forward(q.data(), p2.data(), n, c1, h * wd);
  double d = 0;
  for (size_t e = 0; e < p1.size(); ++e) d = std::max(d, std::fabs(p1[e] - p2[e]));
  if (d > 1e-9) FAILF("inference form differs from training form: " + std::to_string(d));
}

PIF_TEST(train_stage, short_run_cuts_the_loss_and_state_round_trips) {
  std::mt19937_64 rng(seed_or(31));
  const int64_t c0 = 8, c1 = 16, dim = 8, classes = 4, h = 6, wd = 6, per = 6;
  train::StageWeights<float> init = random_stage<float>(rng, c0, c1, dim, classes);
  // Each class: a fixed random pattern plus noise.
  std::vector<std::vector<double>> centre;
  for (int64_t c = 0; c < classes; ++c) centre.push_back(rnd(c0 * h * wd, rng, 1, 0));
  std::vector<int64_t> labels;
  std::vector<float> xs;
  for (int64_t c = 0; c < classes; ++c)
    for (int64_t i = 0; i < per; ++i) {
      std::vector<double> noise = rnd(c0 * h * wd, rng, 0.5, 0);
      for (size_t e = 0; e < noise.size(); ++e)
        xs.push_back(static_cast<float>(centre[c][e] + noise[e]));
      labels.push_back(c);
    }
  train::HeadTrainConfig cfg;
  cfg.classes = classes, cfg.epochs = 12, cfg.batch = 8, cfg.per_label = 2, cfg.warmup_epochs = 1;
  cfg.lr = 0.01, cfg.seed = 5;
  const int64_t img = c0 * h * wd;
  auto run = [&](train::StageTrainState* s, int64_t epochs, std::vector<double>* losses) {
    const int64_t steps = static_cast<int64_t>(labels.size()) / cfg.batch;
    for (int64_t e = 0; e < epochs; ++e) {
      double sum = 0;
      for (const std::vector<int64_t>& b : train::stage_epoch_batches(s, labels, cfg)) {
        std::vector<float> bx;
        std::vector<int64_t> by;
        for (int64_t r : b) {
          bx.insert(bx.end(), xs.begin() + r * img, xs.begin() + (r + 1) * img);
          by.push_back(labels[r]);
        }
        sum += train::stage_step(s, bx.data(), cfg.batch, h, wd, by.data(), steps, cfg,
                                 train::StageKernels::Reference)
                   .loss.total;
      }
      if (losses) losses->push_back(sum / steps);
    }
  };
  train::StageTrainState a = train::start_stage(init, cfg);
  std::vector<double> losses;
  run(&a, cfg.epochs, &losses);
  if (!(losses.back() < 0.7 * losses.front()))
    FAILF("loss " + std::to_string(losses.front()) + " -> " + std::to_string(losses.back()));
  // Interrupted after 5 epochs, saved, restored into a fresh run: the same weights bit for bit.
  train::StageTrainState b = train::start_stage(init, cfg);
  run(&b, 5, nullptr);
  const std::vector<uint8_t> bytes = train::save_stage_state(b);
  train::StageTrainState c = train::start_stage(init, cfg);
  train::load_stage_state(bytes.data(), bytes.size(), &c);
  run(&c, cfg.epochs - 5, nullptr);
  if (train::save_stage_state(c) != train::save_stage_state(a))
    FAILF("a resumed run differs from an uninterrupted one");
  // Damaged bytes are refused with the offset, and leave the state as it was.
  std::vector<uint8_t> bad = bytes;
  bad.resize(bad.size() / 2);
  bool threw = false;
  try {
    train::load_stage_state(bad.data(), bad.size(), &c);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("byte") != std::string::npos;
  }
  if (!threw) FAILF("a truncated state was not refused with its offset");
}

}  // namespace pif::test

namespace pif::test {

// The whole step on oneDNN's kernels against the reference ones, at stage 4's real widths on a
// small batch: the loss and every gradient agree (float sums in other orders).
PIF_TEST(train_stage, dnnl_step_matches_reference) {
  std::mt19937_64 rng(seed_or(37));
  const int64_t c0 = 512, c1 = 1024, dim = 64, classes = 2, n = 4, h = 10, wd = 10;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i / 2);
  train::StageWeights<float> w = random_stage<float>(rng, c0, c1, dim, classes);
  const std::vector<double> xd = rnd(n * c0 * h * wd, rng, 1, 0.3);
  const std::vector<float> x(xd.begin(), xd.end());
  train::HeadConfig cfg;
  train::StageGrads<float> gr, gd;
  train::StageStats<float> sr, sd;
  const double lr = train::stage_train_step(w, cfg, x.data(), n, h, wd, labels.data(), nullptr, &gr,
                                            &sr, train::StageKernels::Reference)
                        .total;
  const double ld = train::stage_train_step(w, cfg, x.data(), n, h, wd, labels.data(), nullptr, &gd,
                                            &sd, train::StageKernels::Dnnl)
                        .total;
  if (std::fabs(lr - ld) > 1e-4 * std::fabs(lr)) FAILF("loss " + std::to_string(ld - lr));
  auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, scale = 1e-30;
    for (size_t k = 0; k < a.size(); ++k) {
      worst = std::max(worst, std::fabs(static_cast<double>(a[k]) - b[k]));
      scale = std::max(scale, std::fabs(static_cast<double>(a[k])));
    }
    return a.size() == b.size() ? worst / scale : 1e30;
  };
  // The same step in double from the same weights: the float error of each.
  train::StageWeights<double> w64;
  auto up = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  for (const train::BlockWeights<float>& k : w.blocks) {
    train::BlockWeights<double> q;
    q.cin = k.cin, q.cout = k.cout, q.k = k.k, q.stride = k.stride, q.pad = k.pad;
    q.residual = k.residual, q.bn_epsilon = k.bn_epsilon;
    q.dw_w = up(k.dw_w), q.dw_b = up(k.dw_b), q.pw_w = up(k.pw_w), q.gamma = up(k.gamma);
    q.beta = up(k.beta), q.mean = up(k.mean), q.var = up(k.var);
    w64.blocks.push_back(q);
  }
  w64.head.in = w.head.in, w64.head.dim = w.head.dim, w64.head.classes = w.head.classes;
  w64.head.w = up(w.head.w), w64.head.b = up(w.head.b), w64.head.gamma = up(w.head.gamma);
  w64.head.beta = up(w.head.beta), w64.head.mean = up(w.head.mean), w64.head.var = up(w.head.var);
  w64.head.fc = up(w.head.fc);
  const std::vector<double> x64(x.begin(), x.end());
  train::StageGrads<double> g64;
  train::stage_train_step(w64, cfg, x64.data(), n, h, wd, labels.data(), nullptr, &g64, nullptr,
                          train::StageKernels::Reference);
  // Block 0's gradients come through two batch norms whose backward cancels nearly equal terms
  // (the pooled gradient is constant over positions), so float itself is off there by up to
  // ~1e-2 of the largest value; the oneDNN step must be as close to double as the reference
  // float step is (a wrong kernel is off by order 1).
  auto down = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  auto against = [&](const std::string& what, const std::vector<double>& exact,
                     const std::vector<float>& ref, const std::vector<float>& dnnl) {
    const double er = rel(down(exact), ref), ed = rel(down(exact), dnnl);
    record("dnnl step vs double", what, ed,
           ed <= 2 * er + 1e-4 ? ""
                               : "relative error " + std::to_string(ed) + ", the reference's " +
                                     std::to_string(er));
  };
  for (size_t b = 0; b < 2; ++b) {
    const std::string blk = "block " + std::to_string(b) + " ";
    const train::BlockGrads<double>& e = g64.blocks[b];
    const train::BlockGrads<float>& r = gr.blocks[b];
    const train::BlockGrads<float>& d = gd.blocks[b];
    against(blk + "dw_w", e.dw_w, r.dw_w, d.dw_w);
    against(blk + "dw_b", e.dw_b, r.dw_b, d.dw_b);
    against(blk + "pw_w", e.pw_w, r.pw_w, d.pw_w);
    against(blk + "gamma", e.gamma, r.gamma, d.gamma);
    against(blk + "beta", e.beta, r.beta, d.beta);
    check("dnnl step", blk + "batch mean", rel(sr.mean[b], sd.mean[b]), 1e-4);
    check("dnnl step", blk + "batch var", rel(sr.var[b], sd.var[b]), 1e-4);
  }
  check("dnnl step", "tail w", rel(gr.head.w, gd.head.w), 1e-3);
  std::vector<float> pr(n * c1), pd(n * c1);
  train::stage_pooled(w, x.data(), n, h, wd, pr.data(), train::StageKernels::Reference);
  train::stage_pooled(w, x.data(), n, h, wd, pd.data(), train::StageKernels::Dnnl);
  check("dnnl step", "pooled (inference form)", rel(pr, pd), 1e-4);
}

}  // namespace pif::test

namespace pif::test {

// Timing of one stage + tail step at stage 4's real shape and a PaddleClas batch (--verbose
// only; speed targets live in npm run bench:train, not in tests).
PIF_TEST(train_stage, step_timings_verbose) {
  if (!verbose()) skip("timings: run with --verbose");
  std::mt19937_64 rng(seed_or(41));
  const int64_t n = 32, h = 14, wd = 14;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back(i / 4);
  train::StageWeights<float> w = random_stage<float>(rng, 512, 1024, 512, 8);
  const std::vector<double> xd = rnd(n * 512 * h * wd, rng, 1, 0.3);
  const std::vector<float> x(xd.begin(), xd.end());
  train::HeadConfig cfg;
  for (train::StageKernels k : {train::StageKernels::Dnnl, train::StageKernels::Reference}) {
    train::StageWorkspace<float> ws;
    double best = 1e30;
    for (int rep = 0; rep < 4; ++rep) {
      train::StageGrads<float> g;
      const auto t0 = std::chrono::steady_clock::now();
      train::stage_train_step(w, cfg, x.data(), n, h, wd, labels.data(), nullptr, &g, nullptr, k,
                              &ws);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (rep > 0) best = std::min(best, ms);
    }
    std::printf("  stage 4 + tail step, batch %lld, %s kernels: %.1f ms (%.2f ms/image)\n",
                static_cast<long long>(n), k == train::StageKernels::Dnnl ? "oneDNN" : "reference",
                best, best / static_cast<double>(n));
  }
}

}  // namespace pif::test

namespace pif::test {

// The fused batch norm + ReLU kernels (stage_fused.h) against the reference composition on
// random shapes: outputs, statistics and every gradient.
PIF_TEST(train_stage, fused_bn_relu_matches_reference) {
  std::mt19937_64 rng(seed_or(43));
  const int cases = cases_or(60);
  for (int cs = 0; cs < cases; ++cs) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 5), c = 1 + static_cast<int64_t>(rng() % 40),
                  hw = 1 + static_cast<int64_t>(rng() % 60);
    if (n * hw < 3) continue;  // see train_stage_dnnl: two values per channel are ill-conditioned
    const std::string desc =
        "n" + std::to_string(n) + " c" + std::to_string(c) + " hw" + std::to_string(hw);
    auto f = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    const std::vector<float> x = f(rnd(n * c * hw, rng, 2, 3)), g = f(rnd(c, rng, 0.3, 1)),
                             b = f(rnd(c, rng, 0.5, 0.2)), dy = f(rnd(n * c * hw, rng));
    std::vector<float> y1(x.size()), y2(x.size()), m1(c), m2(c), v1(c), v2(c);
    train::bn_train_forward(x.data(), g.data(), b.data(), 1e-5, n, c, hw, y1.data(), m1.data(),
                            v1.data());
    train::relu_forward(y1.data(), static_cast<int64_t>(y1.size()));
    train::bn_relu_train_forward(x.data(), g.data(), b.data(), 1e-5, n, c, hw, y2.data(), m2.data(),
                                 v2.data());
    auto rel = [](const std::vector<float>& a, const std::vector<float>& e) {
      double worst = 0, scale = 1e-30;
      for (size_t k = 0; k < a.size(); ++k) {
        worst = std::max(worst, std::fabs(static_cast<double>(a[k]) - e[k]));
        scale = std::max(scale, std::fabs(static_cast<double>(e[k])));
      }
      return worst / scale;
    };
    check("bn_relu forward", desc, rel(y2, y1), 1e-5);
    check("bn_relu mean", desc, rel(m2, m1), 1e-5);
    check("bn_relu var", desc, rel(v2, v1), 1e-4);
    std::vector<float> d(dy), dx1(x.size()), dx2(x.size()), dg1(c), dg2(c), db1(c), db2(c);
    train::relu_backward(y1.data(), d.data(), static_cast<int64_t>(d.size()));
    train::bn_train_backward(x.data(), d.data(), g.data(), m1.data(), v1.data(), 1e-5, n, c, hw,
                             dx1.data(), dg1.data(), db1.data());
    train::bn_relu_train_backward(x.data(), y1.data(), dy.data(), g.data(), m1.data(), v1.data(),
                                  1e-5, n, c, hw, dx2.data(), dg2.data(), db2.data());
    check("bn_relu backward_data", desc, rel(dx2, dx1), 1e-4);
    check("bn_relu backward_scale", desc, rel(dg2, dg1), 1e-4);
    check("bn_relu backward_shift", desc, rel(db2, db1), 1e-4);
  }
}

}  // namespace pif::test

namespace pif::test {

// A saved state with random damage (truncation, byte flips, huge counts): load_stage_state
// either loads it or throws std::invalid_argument, and a refused load leaves the run as it was.
PIF_TEST(train_stage, damaged_states_are_refused_or_loaded) {
  std::mt19937_64 rng(seed_or(47));
  train::StageWeights<float> init = random_stage<float>(rng, 4, 8, 4, 3);
  train::HeadTrainConfig cfg;
  cfg.classes = 3;
  train::StageTrainState s = train::start_stage(init, cfg);
  const std::vector<uint8_t> good = train::save_stage_state(s);
  int refused = 0, loaded = 0;
  const int cases = cases_or(2000);
  for (int c = 0; c < cases; ++c) {
    std::vector<uint8_t> b = good;
    switch (rng() % 3) {
      case 0: b.resize(rng() % b.size()); break;
      case 1:
        for (int k = 0, m = 1 + static_cast<int>(rng() % 4); k < m; ++k)
          b[rng() % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      default: {  // a huge or negative 8-byte field somewhere in the first kilobyte
        const size_t at = rng() % std::min<size_t>(b.size() - 8, 1024);
        const uint64_t v = rng() % 2 ? ~uint64_t{0} : uint64_t{1} << 62;
        std::memcpy(b.data() + at, &v, 8);
      }
    }
    train::StageTrainState t = train::start_stage(init, cfg);
    try {
      train::load_stage_state(b.data(), b.size(), &t);
      ++loaded;
    } catch (const std::invalid_argument&) {
      ++refused;
      if (train::save_stage_state(t) != good) FAILF("a refused load changed the run");
    }
  }
  if (refused == 0 || refused + loaded != cases)
    FAILF("refused " + std::to_string(refused) + ", loaded " + std::to_string(loaded));
}

}  // namespace pif::test
