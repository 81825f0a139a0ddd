// The stage-4 kernels over oneDNN (native/train/stage_dnnl.h) against the float reference
// kernels (native/train/stage_ops.h): every function on random shapes (depthwise: n 1-4,
// c 1-48, h and w 1-17, k 1/3/5, stride 1/2, pad (k-1)/2, with and without bias; 1x1: ci and
// co 1-64, hw 1-50; batch norm: c 1-64, hw 1-50, n * hw >= 3), then once on the real stage-4 shape
// (N=2, 512 -> 1024 channels, 14x14, k5). Error: max |got - ref| / max |ref| <= 1e-4 per output.
// Also: other kernel sizes, strides and paddings, calls from several threads at once, bad shapes
// refused, and with --verbose the chosen implementations and timings on one thread (--threads N
// for more) at the training shape (our depthwise weight gradient against oneDNN's).
// ctest runs the suite under every oneDNN ISA cap (our kernel follows the cap).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness.h"
#include "tests/util.h"
#include "train/stage_dnnl.h"
#include "train/stage_ops.h"

namespace pif::test {
namespace {

namespace sd = train::stage_dnnl;
using train::DwShape;
using Vec = std::vector<float>;

constexpr double kTol = 1e-4;

// max |got - want| / max |want| over several outputs of one call (0 when both are all zero).
double rel_err(std::initializer_list<std::pair<const Vec*, const Vec*>> outs) {
  double err = 0;
  for (const auto& o : outs) {
    const Vec &got = *o.first, &want = *o.second;
    double diff = got.size() == want.size() ? 0 : INFINITY, scale = 0;
    for (size_t k = 0; k < std::min(got.size(), want.size()); ++k) {
      const double d = std::fabs(static_cast<double>(got[k]) - want[k]);
      diff = std::isnan(d) ? INFINITY : std::max(diff, d);
      scale = std::max(scale, std::fabs(static_cast<double>(want[k])));
    }
    err = std::max(err, diff == 0 ? 0 : diff / std::max(scale, 1e-30));
  }
  return err;
}

void check(const std::string& op, const std::string& desc, double err) {
  record(op, desc, err, err <= kTol ? "" : "relative error " + std::to_string(err));
}

std::string dw_desc(const DwShape& s, bool bias) {
  return "n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) + "x" +
         std::to_string(s.w) + " k" + std::to_string(s.k) + " s" + std::to_string(s.stride) +
         (bias ? " bias" : "");
}

// Every depthwise function on one shape; `bias` also selects db in the weight gradient.
void dw_case(const DwShape& s, bool bias, Rng& r, bool with_onednn_weights) {
  const std::string desc = dw_desc(s, bias);
  const int64_t ys = s.n * s.c * s.oh() * s.ow();
  const Vec x = r.vec(s.n * s.c * s.h * s.w), w = r.vec(s.c * s.k * s.k), b = r.vec(s.c);
  const Vec dy = r.vec(ys);
  const float* bp = bias ? b.data() : nullptr;
  guarded("dw_conv_forward", desc, [&] {
    Vec got(ys, NAN), want(ys);
    train::dw_conv_forward<float>(x.data(), w.data(), bp, want.data(), s);
    sd::dw_conv_forward(x.data(), w.data(), bp, got.data(), s);
    check("dw_conv_forward", desc, rel_err({{&got, &want}}));
  });
  guarded("dw_conv_backward_data", desc, [&] {
    Vec got(x.size(), NAN), want(x.size());
    train::dw_conv_backward_data<float>(dy.data(), w.data(), want.data(), s);
    sd::dw_conv_backward_data(dy.data(), w.data(), got.data(), s);
    check("dw_conv_backward_data", desc, rel_err({{&got, &want}}));
  });
  auto weights = [&](const char* op, decltype(&sd::dw_conv_backward_weights) fn) {
    guarded(op, desc, [&] {
      Vec gw(w.size(), NAN), ww(w.size()), gb(s.c, NAN), wb(s.c);
      train::dw_conv_backward_weights<float>(x.data(), dy.data(), ww.data(),
                                             bias ? wb.data() : nullptr, s);
      fn(x.data(), dy.data(), gw.data(), bias ? gb.data() : nullptr, s);
      check(op, desc, bias ? rel_err({{&gw, &ww}, {&gb, &wb}}) : rel_err({{&gw, &ww}}));
    });
  };
  weights("dw_conv_backward_weights", sd::dw_conv_backward_weights);
  if (with_onednn_weights)
    weights("dw_conv_backward_weights_onednn", sd::dw_conv_backward_weights_onednn);
}

void pw_case(int64_t n, int64_t ci, int64_t co, int64_t hw, Rng& r) {
  const std::string desc = "n" + std::to_string(n) + " " + std::to_string(ci) + "->" +
                           std::to_string(co) + " hw" + std::to_string(hw);
  const Vec x = r.vec(n * ci * hw), w = r.vec(co * ci), dy = r.vec(n * co * hw);
  guarded("pw_conv_forward", desc, [&] {
    Vec got(dy.size(), NAN), want(dy.size());
    train::pw_conv_forward<float>(x.data(), w.data(), want.data(), n, ci, co, hw);
    sd::pw_conv_forward(x.data(), w.data(), got.data(), n, ci, co, hw);
    check("pw_conv_forward", desc, rel_err({{&got, &want}}));
  });
  guarded("pw_conv_backward_data", desc, [&] {
    Vec got(x.size(), NAN), want(x.size());
    train::pw_conv_backward_data<float>(dy.data(), w.data(), want.data(), n, ci, co, hw);
    sd::pw_conv_backward_data(dy.data(), w.data(), got.data(), n, ci, co, hw);
    check("pw_conv_backward_data", desc, rel_err({{&got, &want}}));
  });
  guarded("pw_conv_backward_weights", desc, [&] {
    Vec got(w.size(), NAN), want(w.size());
    train::pw_conv_backward_weights<float>(x.data(), dy.data(), want.data(), n, ci, co, hw);
    sd::pw_conv_backward_weights(x.data(), dy.data(), got.data(), n, ci, co, hw);
    check("pw_conv_backward_weights", desc, rel_err({{&got, &want}}));
  });
}

void bn_case(int64_t n, int64_t c, int64_t hw, double eps, Rng& r) {
  const std::string desc = "n" + std::to_string(n) + " c" + std::to_string(c) + " hw" +
                           std::to_string(hw) + " eps" + std::to_string(eps);
  Vec x = r.vec(n * c * hw, -1, 1);
  // Channels with their own offset and spread, as activations have.
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t e = 0; e < hw; ++e)
        x[(b * c + ch) * hw + e] = x[(b * c + ch) * hw + e] * (0.5f + ch % 3) + 0.1f * (ch % 5);
  const Vec gamma = r.vec(c, 0.5, 1.5), beta = r.vec(c), dy = r.vec(x.size());
  Vec mean(c), var(c);
  guarded("bn_train_forward", desc, [&] {
    Vec gy(x.size(), NAN), gm(c, NAN), gv(c, NAN), wy(x.size());
    train::bn_train_forward<float>(x.data(), gamma.data(), beta.data(), eps, n, c, hw, wy.data(),
                                   mean.data(), var.data());
    sd::bn_train_forward(x.data(), gamma.data(), beta.data(), eps, n, c, hw, gy.data(), gm.data(),
                         gv.data());
    check("bn_train_forward", desc, rel_err({{&gy, &wy}, {&gm, &mean}, {&gv, &var}}));
  });
  guarded("bn_train_backward", desc, [&] {
    Vec gx(x.size(), NAN), gg(c, NAN), gb(c, NAN), wx(x.size()), wg(c), wb(c);
    train::bn_train_backward<float>(x.data(), dy.data(), gamma.data(), mean.data(), var.data(), eps,
                                    n, c, hw, wx.data(), wg.data(), wb.data());
    sd::bn_train_backward(x.data(), dy.data(), gamma.data(), mean.data(), var.data(), eps, n, c, hw,
                          gx.data(), gg.data(), gb.data());
    check("bn_train_backward", desc, rel_err({{&gx, &wx}, {&gg, &wg}, {&gb, &wb}}));
  });
}

// Runs fn with the OpenMP team of the calling thread set to `threads`, restoring it after.
double best_ms(int threads, int reps, const std::function<void()>& fn) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  fn();  // primitive creation, first touch
  double best = INFINITY;
  for (int k = 0; k < reps; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  omp_set_num_threads(saved);
  return best;
}

}  // namespace

PIF_TEST(train_stage_dnnl, depthwise_vs_reference) {
  SuiteStream& st = suite_stream("train_stage_dnnl", 20240917);
  const int cases = cases_or(100);
  for (int k = 0; k < cases; ++k, ++st.idx) {
    Rng& r = st.rng;
    DwShape s;
    s.n = r.i(1, 4);
    s.c = r.i(1, 48);
    s.h = r.i(1, 17);
    s.w = r.b(0.2) ? s.h : r.i(1, 17);
    s.k = r.pick(std::vector<int64_t>{1, 3, 5});
    s.stride = r.i(1, 2);
    s.pad = (s.k - 1) / 2;
    // oneDNN's own weight gradient on a share of the cases: it is only a comparison.
    dw_case(s, r.b(), r, k % 4 == 0);
  }
}

PIF_TEST(train_stage_dnnl, depthwise_other_kernels) {
  // Kernel sizes our weight-gradient kernel does not specialise (2, 4, 9) or keeps out of its
  // all-in-registers form (7), wider rows (several vectors per output row), stride 3 and any
  // padding up to k - 1.
  SuiteStream& st = suite_stream("train_stage_dnnl", 20240917);
  for (int k = 0; k < std::max(1, cases_or(100) / 4); ++k, ++st.idx) {
    Rng& r = st.rng;
    DwShape s;
    s.n = r.i(1, 3);
    s.c = r.i(1, 20);
    s.k = r.pick(std::vector<int64_t>{2, 4, 7, 9});
    s.h = r.i(1, 40);
    s.w = r.i(1, 70);
    s.stride = r.i(1, 3);
    s.pad = r.i(0, s.k - 1);
    if (s.h + 2 * s.pad < s.k) s.h = s.k;
    if (s.w + 2 * s.pad < s.k) s.w = s.k;
    dw_case(s, r.b(), r, false);
  }
}

PIF_TEST(train_stage_dnnl, pointwise_vs_reference) {
  SuiteStream& st = suite_stream("train_stage_dnnl", 20240917);
  for (int k = 0; k < cases_or(100) * 3 / 4; ++k, ++st.idx) {
    Rng& r = st.rng;
    pw_case(r.i(1, 4), r.i(1, 64), r.i(1, 64), r.i(1, 50), r);
  }
}

PIF_TEST(train_stage_dnnl, batch_norm_vs_reference) {
  SuiteStream& st = suite_stream("train_stage_dnnl", 20240917);
  for (int k = 0; k < cases_or(100) * 3 / 4; ++k, ++st.idx) {
    Rng& r = st.rng;
    const int64_t n = r.i(1, 4);
    int64_t hw = r.i(1, 50);
    // At least 3 values per channel: with 2, x_hat = +-sqrt(var / (var + eps)) and dx is
    // g (dy1 - dy2) eps / (var + eps) / 2, a difference of nearly equal terms that float cannot
    // match to the double reference relative to its own tiny size.
    if (n * hw < 3) hw = 3;
    bn_case(n, r.i(1, 64), hw, r.pick(std::vector<double>{1e-5, 1e-3, 0.1}), r);
  }
}

PIF_TEST(train_stage_dnnl, stage4_shape) {
  Rng r(seed_or(4));
  DwShape s;
  s.n = 2, s.c = 512, s.h = 14, s.w = 14, s.k = 5, s.stride = 1, s.pad = 2;
  dw_case(s, true, r, false);
  pw_case(2, 512, 1024, 196, r);
  bn_case(2, 512, 196, 1e-5, r);
  bn_case(2, 1024, 196, 1e-5, r);
}

PIF_TEST(train_stage_dnnl, concurrent_calls) {
  // Four threads share the cached primitives of two shapes (and create them concurrently); each
  // result must equal the one computed alone.
  Rng r(seed_or(5));
  DwShape a, b;
  a.n = 2, a.c = 24, a.h = 9, a.w = 11, a.k = 5, a.stride = 1, a.pad = 2;
  b = a;
  b.c = 40, b.stride = 2;
  struct Job {
    DwShape s;
    Vec x, w, dy, y, dx, dw, p, bn, mean, var;
  };
  std::vector<Job> jobs(4);
  for (size_t k = 0; k < jobs.size(); ++k) {
    Job& j = jobs[k];
    j.s = k % 2 ? b : a;
    j.x = r.vec(j.s.n * j.s.c * j.s.h * j.s.w);
    j.w = r.vec(j.s.c * j.s.k * j.s.k);
    j.dy = r.vec(j.s.n * j.s.c * j.s.oh() * j.s.ow());
  }
  auto work = [](Job& j) {
    const DwShape& s = j.s;
    const int64_t hw = s.h * s.w;
    const Vec gamma(s.c, 1.f), beta(s.c, 0.f), pw(s.c * s.c, 0.01f);
    j.y.assign(j.dy.size(), 0), j.dx.assign(j.x.size(), 0), j.dw.assign(j.w.size(), 0);
    j.p.assign(j.x.size(), 0), j.bn.assign(j.x.size(), 0), j.mean.assign(s.c, 0);
    j.var.assign(s.c, 0);
    for (int rep = 0; rep < 3; ++rep) {
      sd::dw_conv_forward(j.x.data(), j.w.data(), nullptr, j.y.data(), s);
      sd::dw_conv_backward_data(j.dy.data(), j.w.data(), j.dx.data(), s);
      sd::dw_conv_backward_weights(j.x.data(), j.dy.data(), j.dw.data(), nullptr, s);
      sd::pw_conv_forward(j.x.data(), pw.data(), j.p.data(), s.n, s.c, s.c, hw);
      sd::bn_train_forward(j.x.data(), gamma.data(), beta.data(), 1e-5, s.n, s.c, hw, j.bn.data(),
                           j.mean.data(), j.var.data());
    }
  };
  std::vector<std::thread> threads;
  for (Job& j : jobs) threads.emplace_back([&work, &j] { work(j); });
  for (std::thread& t : threads) t.join();
  for (size_t k = 0; k < jobs.size(); ++k) {
    Job alone = jobs[k];
    work(alone);
    const Job& j = jobs[k];
    const bool same = j.y == alone.y && j.dx == alone.dx && j.dw == alone.dw && j.p == alone.p &&
                      j.bn == alone.bn && j.mean == alone.mean && j.var == alone.var;
    record("concurrent", "thread " + std::to_string(k), 0, same ? "" : "differs from alone");
  }
  sd::release_thread_workspace();
}

PIF_TEST(train_stage_dnnl, bad_shapes_refused) {
  const Vec buf(4096, 1.f);
  Vec out(4096);
  const float* in = buf.data();
  float* o = out.data();
  auto expect = [](const std::string& desc, const std::function<void()>& body) {
    std::string why = "no error";
    try {
      body();
    } catch (const std::invalid_argument&) {
      why.clear();
    } catch (const std::exception& e) {
      why = std::string("threw another exception: ") + e.what();
    }
    record("bad_shape", desc, 0, why);
  };
  DwShape s;
  s.n = 1, s.c = 2, s.h = 3, s.w = 3, s.k = 3, s.stride = 1, s.pad = 1;
  for (int field = 0; field < 7; ++field) {
    DwShape b = s;
    int64_t* f[] = {&b.n, &b.c, &b.h, &b.w, &b.k, &b.stride, &b.pad};
    *f[field] = field == 6 ? -1 : 0;
    const std::string d = "depthwise field " + std::to_string(field);
    expect(d + " forward", [&] { sd::dw_conv_forward(in, in, nullptr, o, b); });
    expect(d + " backward data", [&] { sd::dw_conv_backward_data(in, in, o, b); });
    expect(d + " backward weights", [&] { sd::dw_conv_backward_weights(in, in, o, o, b); });
  }
  DwShape big = s;
  big.k = 7, big.pad = 1;  // the kernel is larger than the padded input
  expect("depthwise kernel > padded input", [&] { sd::dw_conv_forward(in, in, in, o, big); });
  expect("depthwise null x", [&] { sd::dw_conv_forward(nullptr, in, in, o, s); });
  expect("pointwise ci 0", [&] { sd::pw_conv_forward(in, in, o, 1, 0, 2, 3); });
  expect("pointwise hw -1", [&] { sd::pw_conv_backward_data(in, in, o, 1, 2, 2, -1); });
  expect("pointwise n 0", [&] { sd::pw_conv_backward_weights(in, in, o, 0, 2, 2, 3); });
  expect("batch norm c 0", [&] { sd::bn_train_forward(in, in, in, 1e-5, 1, 0, 3, o, o, o); });
  expect("batch norm eps < 0", [&] { sd::bn_train_forward(in, in, in, -1, 1, 2, 3, o, o, o); });
  expect("batch norm eps NaN",
         [&] { sd::bn_train_backward(in, in, in, in, in, NAN, 1, 2, 3, o, o, o); });
}

PIF_TEST(train_stage_dnnl, timings_verbose) {
  if (!verbose()) skip("timings print with --verbose only");
  // The training shape of the depthwise weight gradient and the stage's other layers, on one
  // OpenMP thread (--threads N for more), best of 3 after a first call.
  DwShape s;
  s.n = 32, s.c = 1024, s.h = 14, s.w = 14, s.k = 5, s.stride = 1, s.pad = 2;
  DwShape s3 = s;
  s3.k = 3, s3.pad = 1;
  Rng r(6);
  const Vec x = r.vec(s.n * s.c * s.h * s.w), dy = r.vec(x.size()), w = r.vec(s.c * 25),
            b = r.vec(s.c);
  Vec out(x.size()), dw(w.size()), db(s.c);
  const int64_t n = s.n, hw = 196, ci = 512, co = 1024;
  const Vec px(n * ci * hw, 0.5f), pw(co * ci, 0.01f);
  const Vec gamma(co, 1.f), beta(co, 0.f);
  Vec mean(co), var(co), pdx(n * ci * hw), pdw(co * ci);
  const int threads = threads_or(1);
  std::printf(
      "  OpenMP threads: %d; shapes: depthwise N=32 C=1024 14x14 k5 s1 (and k3), 1x1 "
      "512->1024 hw196, batch norm C=1024 hw196\n",
      threads);
  struct Row {
    const char* name;
    std::function<void()> fn;
    int reps;
  } rows[] = {
      {"dw_conv_backward_weights (ours)",
       [&] { sd::dw_conv_backward_weights(x.data(), dy.data(), dw.data(), db.data(), s); }, 3},
      {"dw_conv_backward_weights (oneDNN)",
       [&] { sd::dw_conv_backward_weights_onednn(x.data(), dy.data(), dw.data(), db.data(), s); },
       1},
      {"dw_conv_backward_weights (reference)",
       [&] {
         train::dw_conv_backward_weights<float>(x.data(), dy.data(), dw.data(), db.data(), s);
       },
       1},
      // oneDNN 2.6 has a jit depthwise weight gradient for 3x3 (not 5x5): the two side by side.
      {"dw_conv_backward_weights k3 (ours)",
       [&] { sd::dw_conv_backward_weights(x.data(), dy.data(), dw.data(), db.data(), s3); }, 3},
      {"dw_conv_backward_weights k3 (oneDNN)",
       [&] { sd::dw_conv_backward_weights_onednn(x.data(), dy.data(), dw.data(), db.data(), s3); },
       3},
      {"dw_conv_forward", [&] { sd::dw_conv_forward(x.data(), w.data(), b.data(), out.data(), s); },
       3},
      {"dw_conv_backward_data",
       [&] { sd::dw_conv_backward_data(dy.data(), w.data(), out.data(), s); }, 3},
      {"pw_conv_forward",
       [&] { sd::pw_conv_forward(px.data(), pw.data(), out.data(), n, ci, co, hw); }, 3},
      {"pw_conv_backward_data",
       [&] { sd::pw_conv_backward_data(dy.data(), pw.data(), pdx.data(), n, ci, co, hw); }, 3},
      {"pw_conv_backward_weights",
       [&] { sd::pw_conv_backward_weights(px.data(), dy.data(), pdw.data(), n, ci, co, hw); }, 3},
      {"bn_train_forward",
       [&] {
         sd::bn_train_forward(x.data(), gamma.data(), beta.data(), 1e-5, n, co, hw, out.data(),
                              mean.data(), var.data());
       },
       3},
      {"bn_train_backward",
       [&] {
         sd::bn_train_backward(x.data(), dy.data(), gamma.data(), mean.data(), var.data(), 1e-5, n,
                               co, hw, out.data(), dw.data(), db.data());
       },
       3},
  };
  for (const Row& row : rows)
    std::printf("  %-40s %8.2f ms\n", row.name, best_ms(threads, row.reps, row.fn));
  std::printf("  implementations (oneDNN's impl_info_str()):\n");
  for (const auto& impl : sd::implementations())
    if (impl.first.find(" [32,") != std::string::npos)
      std::printf("    %-60s %s\n", impl.first.c_str(), impl.second.c_str());
  sd::release_thread_workspace();
}

}  // namespace pif::test
