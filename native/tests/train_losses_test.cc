// The training losses (native/train/losses.h): values on hand-worked batches, gradients against
// central finite differences in double precision, float against double, and bad batches.
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/harness.h"
#include "tests/util.h"
#include "train/losses.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {
namespace {

using train::ce_label_smoothing;
using train::triplet_angular_margin;
using train::TripletAngularMarginOptions;

void near(double got, double want, double tol, const std::string& what) {
  if (!(std::fabs(got - want) <= tol))
    fail(what + ": " + std::to_string(got) + ", want " + std::to_string(want));
}

// max |analytic - numeric| / max(1e-8, max |numeric|) of a loss over x (central differences).
template <typename Loss>
double fd_error(std::vector<double> x, Loss loss) {
  std::vector<double> g(x.size());
  loss(x, g.data());
  double worst = 0, scale = 1e-8;
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = loss(x, nullptr);
    x[i] = keep - h;
    const double down = loss(x, nullptr);
    x[i] = keep;
    const double numeric = (up - down) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - g[i]));
    scale = std::max(scale, std::fabs(numeric));
  }
  return worst / scale;
}

// Runs `f`, which must throw std::invalid_argument with `words` in its message.
template <typename F>
void expect_invalid(F f, const std::string& words) {
  try {
    f();
    fail("accepted; expected an error with '" + words + "'");
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find(words) == std::string::npos) fail(e.what());
  }
}

}  // namespace

PIF_TEST(train_losses, ce_label_smoothing_value) {
  // Two classes, logits (ln 3, 0): softmax (0.75, 0.25); q = (0.95, 0.05) with epsilon 0.1.
  const double logits[] = {std::log(3.0), 0.0, 0.0, 0.0};
  const int64_t labels[] = {0, 1};
  const double row0 = -(0.95 * std::log(0.75) + 0.05 * std::log(0.25));
  near(ce_label_smoothing(logits, labels, 2, 2, 0.1, static_cast<double*>(nullptr)),
       (row0 + std::log(2.0)) / 2, 1e-12, "CE with label smoothing");
  near(ce_label_smoothing(logits, labels, 1, 2, 0.0, static_cast<double*>(nullptr)),
       -std::log(0.75), 1e-12, "plain CE");
}

PIF_TEST(train_losses, ce_gradient_vs_finite_differences) {
  const int64_t rows = 6, classes = 9;
  std::vector<int64_t> labels = {0, 3, 8, 3, 5, 1};
  for (double eps : {0.0, 0.1}) {
    auto loss = [&](const std::vector<double>& x, double* g) {
      return ce_label_smoothing(x.data(), labels.data(), rows, classes, eps, g);
    };
    const double err = fd_error(gaussian_values(rows * classes, 11), loss);
    if (err > 1e-6)
      FAILF("epsilon " + std::to_string(eps) + ": relative error " + std::to_string(err));
  }
}

PIF_TEST(train_losses, ce_float_matches_double_and_refuses_bad_labels) {
  const int64_t rows = 4, classes = 5;
  std::vector<double> xd = gaussian_values(rows * classes, 3);
  std::vector<float> xf(xd.begin(), xd.end());
  std::vector<int64_t> labels = {4, 0, 2, 2};
  std::vector<double> gd(xd.size());
  std::vector<float> gf(xd.size());
  const double ld = ce_label_smoothing(xd.data(), labels.data(), rows, classes, 0.1, gd.data());
  const double lf = ce_label_smoothing(xf.data(), labels.data(), rows, classes, 0.1, gf.data());
  near(lf, ld, 1e-6, "float loss");
  for (size_t i = 0; i < gd.size(); ++i) near(gf[i], gd[i], 1e-6, "float gradient");
  labels[1] = 5;
  expect_invalid(
      [&] { ce_label_smoothing(xd.data(), labels.data(), rows, classes, 0.1, gd.data()); },
      "label 5 of row 1");
}

PIF_TEST(train_losses, triplet_value_on_a_worked_batch) {
  // Unit directions at 0 and 60 degrees (label 0), 90 and 180 degrees (label 1), scaled by 2, 3,
  // 0.5 and 1 (normalised away). Cosines: (0,1) 0.5, (0,2) 0, (0,3) -1, (1,2) s, (1,3) -0.5,
  // (2,3) 0 with s = sin 60. Hardest positive / negative: 0.5/0, 0.5/s, 0/s, 0/-0.5.
  const double s = std::sqrt(3.0) / 2;
  const double x[] = {2, 0, 3 * 0.5, 3 * s, 0, 0.5, -1, 0};
  const int64_t labels[] = {0, 0, 1, 1};
  TripletAngularMarginOptions plain;
  const double ranking = (0 + s + (s + 0.5) + 0) / 4;
  near(triplet_angular_margin(x, labels, 4, 2, plain, static_cast<double*>(nullptr)), ranking,
       1e-12, "ranking term");
  // Absolute term: max(0, 0.8 - ap) = 0.3, 0.3, 0.8, 0.8; an - 0.4 or 1: 1, s - 0.4, s - 0.4, 1.
  const double absolute = 0.1 * ((0.3 + 0.3 + 0.8 + 0.8) / 4 + (1 + 2 * (s - 0.4) + 1) / 4);
  near(triplet_angular_margin(x, labels, 4, 2, train::shitu_v2_triplet_options(),
                              static_cast<double*>(nullptr)),
       ranking + absolute, 1e-12, "PP-ShiTuV2 options");
}

PIF_TEST(train_losses, triplet_gradient_vs_finite_differences) {
  const int64_t rows = 12, dim = 16;
  std::vector<int64_t> labels;
  for (int64_t c = 0; c < 4; ++c)
    for (int k = 0; k < 3; ++k) labels.push_back(c * 7);  // P = 4 classes x K = 3
  TripletAngularMarginOptions unnormalised;
  unnormalised.normalize = false;
  unnormalised.margin = 20;  // every hinge active on unnormalised dot products
  const TripletAngularMarginOptions sets[] = {TripletAngularMarginOptions(),
                                              train::shitu_v2_triplet_options(), unnormalised};
  int k = 0;
  for (const TripletAngularMarginOptions& o : sets) {
    for (uint64_t seed : {1, 2, 3}) {
      auto loss = [&](const std::vector<double>& x, double* g) {
        return triplet_angular_margin(x.data(), labels.data(), rows, dim, o, g);
      };
      const double err = fd_error(gaussian_values(rows * dim, seed), loss);
      if (err > 1e-6)
        FAILF("option set " + std::to_string(k) + ", seed " + std::to_string(seed) +
              ": relative error " + std::to_string(err));
    }
    ++k;
  }
}

PIF_TEST(train_losses, triplet_refuses_batches_without_negatives) {
  struct Case {
    double x[4];
    int64_t labels[2];
    const char* words;
  } cases[] = {{{1, 0, 0, 1}, {3, 3}, "row 0, label 3"},
               {{0, 0, 1, 0}, {0, 1}, "row 0 has norm 0"}};
  for (const Case& c : cases)
    expect_invalid(
        [&] {
          triplet_angular_margin(c.x, c.labels, 2, 2, TripletAngularMarginOptions(),
                                 static_cast<double*>(nullptr));
        },
        c.words);
}

}  // namespace pif::test

namespace pif::test {

// ArcMargin + CE: the value on a batch worked by hand, and the gradients in y and W against
// central differences on both sides of PaddleClas's cos > cos(pi - margin) switch.
PIF_TEST(train_losses, arc_margin_value_and_gradients) {
  {
    // y along W's class 0 (cos 1 with it, 0 with class 1): logits s * phi(1) and 0.
    const double y[2] = {2, 0}, w[4] = {3, 0, 0, 5};  // W [dim 2, classes 2]
    const int64_t label = 0;
    train::ArcMarginOptions o;
    const double sn = std::sqrt(1e-6);
    const double phi = std::cos(o.margin) - sn * std::sin(o.margin);
    const double a = o.scale * phi;
    const double want = std::log(std::exp(a) + 1.0) - a;
    const double got = train::arc_margin_ce<double>(y, w, &label, 1, 2, 2, o, nullptr, nullptr);
    if (!(std::fabs(got - want) < 1e-12))
      FAILF("value " + std::to_string(got) + ", want " + std::to_string(want));
  }
  const int64_t rows = 6, dim = 8, classes = 5;
  const std::vector<int64_t> labels = {0, 3, 1, 4, 3, 2};
  for (double margin : {0.2, 2.5}) {  // 2.5: most label cosines fall under cos(pi - margin)
    train::ArcMarginOptions o;
    o.margin = margin;
    o.scale = 4;
    for (double eps : {0.0, 0.1}) {
      o.epsilon = eps;
      for (uint64_t seed : {1, 2}) {
        const std::vector<double> y0 = gaussian_values(rows * dim, seed);
        const std::vector<double> w0 = gaussian_values(dim * classes, seed + 10);
        auto in_y = [&](const std::vector<double>& y, double* g) {
          return train::arc_margin_ce(y.data(), w0.data(), labels.data(), rows, dim, classes, o, g,
                                      static_cast<double*>(nullptr));
        };
        auto in_w = [&](const std::vector<double>& w, double* g) {
          return train::arc_margin_ce(y0.data(), w.data(), labels.data(), rows, dim, classes, o,
                                      static_cast<double*>(nullptr), g);
        };
        const double ey = fd_error(y0, in_y), ew = fd_error(w0, in_w);
        if (ey > 1e-6 || ew > 1e-6)
          FAILF("margin " + std::to_string(margin) + " eps " + std::to_string(eps) + ": dy " +
                std::to_string(ey) + ", dW " + std::to_string(ew));
        // float follows double.
        std::vector<float> yf(y0.begin(), y0.end()), wf(w0.begin(), w0.end());
        const double lf = train::arc_margin_ce<float>(yf.data(), wf.data(), labels.data(), rows,
                                                      dim, classes, o, nullptr, nullptr);
        const double ld = in_y(y0, nullptr);
        if (!(std::fabs(lf - ld) <= 1e-5 * std::max(1.0, std::fabs(ld))))
          FAILF("float " + std::to_string(lf) + " vs double " + std::to_string(ld));
      }
    }
  }
  const std::vector<double> y = gaussian_values(rows * dim, 3),
                            w = gaussian_values(dim * classes, 4);
  const std::vector<int64_t> bad = {0, 3, 1, 5, 3, 2};
  expect_invalid(
      [&] {
        train::arc_margin_ce<double>(y.data(), w.data(), bad.data(), rows, dim, classes, {},
                                     nullptr, nullptr);
      },
      "label 5 of row 3");
  std::vector<double> zero = y;
  std::fill(zero.begin() + dim, zero.begin() + 2 * dim, 0.0);
  expect_invalid(
      [&] {
        train::arc_margin_ce<double>(zero.data(), w.data(), labels.data(), rows, dim, classes, {},
                                     nullptr, nullptr);
      },
      "row 1 is zero");
}

}  // namespace pif::test
