#include "train/losses.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace pif {
namespace train {

namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

template <typename T>
double ce_label_smoothing(const T* logits, const int64_t* labels, int64_t rows, int64_t classes,
                          double epsilon, T* grad) {
  if (rows < 1 || classes < 1) throw std::invalid_argument("CELoss: empty batch");
  const double off = epsilon / static_cast<double>(classes);
  const double on = 1.0 - epsilon + off;
  double total = 0;
  std::vector<double> p(static_cast<size_t>(classes));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t label = labels[r];
    if (label < 0 || label >= classes)
      throw std::invalid_argument("CELoss: label " + std::to_string(label) + " of row " +
                                  std::to_string(r) + " is not in [0, " + std::to_string(classes) +
                                  ")");
    const T* x = logits + r * classes;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, static_cast<double>(x[c]));
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(x[c]) - mx);
    const double log_sum = std::log(sum) + mx;
    // -sum_c q_c (x_c - log_sum) = log_sum - sum_c q_c x_c, since sum_c q_c = 1.
    double qx = 0;
    for (int64_t c = 0; c < classes; ++c) qx += (c == label ? on : off) * static_cast<double>(x[c]);
    total += log_sum - qx;
    if (grad != nullptr) {
      T* g = grad + r * classes;
      for (int64_t c = 0; c < classes; ++c) {
        const double softmax = std::exp(static_cast<double>(x[c]) - log_sum);
        g[c] = static_cast<T>((softmax - (c == label ? on : off)) / static_cast<double>(rows));
      }
    }
  }
  return total / static_cast<double>(rows);
}

TripletAngularMarginOptions shitu_v2_triplet_options() {
  TripletAngularMarginOptions o;
  o.margin = 0.5;
  o.normalize = true;
  o.add_absolute = true;
  o.absolute_loss_weight = 0.1;
  o.ap_value = 0.8;
  o.an_value = 0.4;
  return o;
}

template <typename T>
double triplet_angular_margin(const T* features, const int64_t* labels, int64_t rows, int64_t dim,
                              const TripletAngularMarginOptions& o, T* grad) {
  if (rows < 1 || dim < 1) throw std::invalid_argument("TripletAngularMarginLoss: empty batch");
  const size_t n = static_cast<size_t>(rows), d = static_cast<size_t>(dim);
  // Unit rows (or the rows as they are) and their norms.
  std::vector<double> u(n * d), norm(n, 1.0);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t k = 0; k < d; ++k)
      s += static_cast<double>(features[i * d + k]) * features[i * d + k];
    if (o.normalize) {
      if (s == 0)
        throw std::invalid_argument("TripletAngularMarginLoss: row " + std::to_string(i) +
                                    " has norm 0");
      norm[i] = std::sqrt(s);
    }
    for (size_t k = 0; k < d; ++k) u[i * d + k] = features[i * d + k] / norm[i];
  }
  auto cos = [&](size_t i, size_t j) {
    double s = 0;
    for (size_t k = 0; k < d; ++k) s += u[i * d + k] * u[j * d + k];
    return s;
  };
  // Hardest positive and negative per anchor; first index on ties.
  std::vector<size_t> pos(n), neg(n);
  std::vector<double> ap(n), an(n);
  for (size_t i = 0; i < n; ++i) {
    bool has_neg = false;
    ap[i] = std::numeric_limits<double>::infinity();
    an[i] = -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < n; ++j) {
      const double c = cos(i, j);
      if (labels[j] == labels[i]) {
        if (c < ap[i]) ap[i] = c, pos[i] = j;
      } else {
        has_neg = true;
        if (c > an[i]) an[i] = c, neg[i] = j;
      }
    }
    if (!has_neg)
      throw std::invalid_argument(
          "TripletAngularMarginLoss: every row needs a row of another label in its batch (row " +
          std::to_string(i) + ", label " + std::to_string(labels[i]) + ")");
  }
  // The loss, and its derivative by each selected cosine.
  const double inv_n = 1.0 / static_cast<double>(n);
  double ranking = 0, abs_ap = 0, abs_an = 0;
  std::vector<double> g_ap(n, 0.0), g_an(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const double h = an[i] - ap[i] + o.margin;
    if (h > 0) {
      ranking += h;
      g_ap[i] -= inv_n;
      g_an[i] += inv_n;
    }
    if (o.add_absolute) {
      const double w = o.absolute_loss_weight * inv_n;
      if (o.ap_value - ap[i] > 0) {
        abs_ap += o.ap_value - ap[i];
        g_ap[i] -= w;
      }
      if (an[i] - o.an_value > 0) {
        abs_an += an[i] - o.an_value;
        g_an[i] += w;
      } else {
        abs_an += 1.0;
      }
    }
  }
  double loss = ranking * inv_n;
  if (o.add_absolute) loss += (abs_an * inv_n + abs_ap * inv_n) * o.absolute_loss_weight;
  if (grad == nullptr) return loss;
  // d cos_ij = u_j . du_i + u_i . du_j, then through u = x / |x|: dx = (du - u (u . du)) / |x|.
  std::vector<double> gu(n * d, 0.0);
  auto add = [&](size_t i, size_t j, double g) {
    if (g == 0) return;
    for (size_t k = 0; k < d; ++k) {
      gu[i * d + k] += g * u[j * d + k];
      gu[j * d + k] += g * u[i * d + k];
    }
  };
  for (size_t i = 0; i < n; ++i) {
    add(i, pos[i], g_ap[i]);
    add(i, neg[i], g_an[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    double ug = 0;
    if (o.normalize)
      for (size_t k = 0; k < d; ++k) ug += u[i * d + k] * gu[i * d + k];
    for (size_t k = 0; k < d; ++k)
      grad[i * d + k] = static_cast<T>((gu[i * d + k] - u[i * d + k] * ug) / norm[i]);
  }
  return loss;
}

template <typename T>
double arc_margin_ce(const T* y, const T* w, const int64_t* labels, int64_t rows, int64_t dim,
                     int64_t classes, const ArcMarginOptions& o, T* dy, T* dw) {
  if (rows < 1 || dim < 1 || classes < 1) throw std::invalid_argument("ArcMargin: empty batch");
  const size_t nc = static_cast<size_t>(rows * classes);
  std::vector<double> rn(static_cast<size_t>(rows)), cn(static_cast<size_t>(classes));
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t k = 0; k < dim; ++k) s += static_cast<double>(y[i * dim + k]) * y[i * dim + k];
    if (s == 0) throw std::invalid_argument("ArcMargin: row " + std::to_string(i) + " is zero");
    rn[i] = std::sqrt(s);
  }
  for (int64_t c = 0; c < classes; ++c) {
    double s = 0;
    for (int64_t k = 0; k < dim; ++k)
      s += static_cast<double>(w[k * classes + c]) * w[k * classes + c];
    if (s == 0) throw std::invalid_argument("ArcMargin: class " + std::to_string(c) + " is zero");
    cn[c] = std::sqrt(s);
  }
  std::vector<double> cosv(nc, 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t k = 0; k < dim; ++k) {
      const double u = y[i * dim + k] / rn[i];
      for (int64_t c = 0; c < classes; ++c)
        cosv[i * classes + c] += u * (w[k * classes + c] / cn[c]);
    }
  const double cos_m = std::cos(o.margin), sin_m = std::sin(o.margin);
  const double th = std::cos(kPi - o.margin), mm = std::sin(kPi - o.margin) * o.margin;
  std::vector<T> logits(nc);
  std::vector<double> dphi(static_cast<size_t>(rows), 1.0);  // d label logit / d its cos
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t l = labels[i];
    if (l < 0 || l >= classes)
      throw std::invalid_argument("ArcMargin: label " + std::to_string(l) + " of row " +
                                  std::to_string(i) + " is not in [0, " + std::to_string(classes) +
                                  ")");
    for (int64_t c = 0; c < classes; ++c)
      logits[i * classes + c] = static_cast<T>(o.scale * cosv[i * classes + c]);
    const double cs = cosv[i * classes + l];
    const double sn = std::sqrt(1.0 - cs * cs + 1e-6);
    double phi = cs - mm;
    if (cs > th) {
      phi = cs * cos_m - sn * sin_m;
      dphi[i] = cos_m + sin_m * cs / sn;
    }
    logits[i * classes + l] = static_cast<T>(o.scale * phi);
  }
  std::vector<T> dlogits(dy != nullptr || dw != nullptr ? nc : 0);
  const double loss = ce_label_smoothing(logits.data(), labels, rows, classes, o.epsilon,
                                         dlogits.empty() ? nullptr : dlogits.data());
  if (dlogits.empty()) return loss;
  // d cos, then through the row and column normalisations: for v = u / |u|,
  // du = (dv - v (v . dv)) / |u|.
  std::vector<double> dcos(nc);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < classes; ++c)
      dcos[i * classes + c] = o.scale * dlogits[i * classes + c] * (c == labels[i] ? dphi[i] : 1.0);
  if (dy != nullptr) {
    std::vector<double> du(static_cast<size_t>(dim));
    for (int64_t i = 0; i < rows; ++i) {
      double dot = 0;
      for (int64_t k = 0; k < dim; ++k) {
        double s = 0;
        for (int64_t c = 0; c < classes; ++c)
          s += dcos[i * classes + c] * (w[k * classes + c] / cn[c]);
        du[k] = s;
        dot += s * (y[i * dim + k] / rn[i]);
      }
      for (int64_t k = 0; k < dim; ++k)
        dy[i * dim + k] = static_cast<T>((du[k] - (y[i * dim + k] / rn[i]) * dot) / rn[i]);
    }
  }
  if (dw != nullptr) {
    std::vector<double> dv(static_cast<size_t>(dim * classes), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t k = 0; k < dim; ++k) {
        const double u = y[i * dim + k] / rn[i];
        for (int64_t c = 0; c < classes; ++c) dv[k * classes + c] += u * dcos[i * classes + c];
      }
    for (int64_t c = 0; c < classes; ++c) {
      double dot = 0;
      for (int64_t k = 0; k < dim; ++k) dot += dv[k * classes + c] * (w[k * classes + c] / cn[c]);
      for (int64_t k = 0; k < dim; ++k)
        dw[k * classes + c] =
            static_cast<T>((dv[k * classes + c] - (w[k * classes + c] / cn[c]) * dot) / cn[c]);
    }
  }
  return loss;
}

template double arc_margin_ce<float>(const float*, const float*, const int64_t*, int64_t, int64_t,
                                     int64_t, const ArcMarginOptions&, float*, float*);
template double arc_margin_ce<double>(const double*, const double*, const int64_t*, int64_t,
                                      int64_t, int64_t, const ArcMarginOptions&, double*, double*);

template double ce_label_smoothing<float>(const float*, const int64_t*, int64_t, int64_t, double,
                                          float*);
template double ce_label_smoothing<double>(const double*, const int64_t*, int64_t, int64_t, double,
                                           double*);
template double triplet_angular_margin<float>(const float*, const int64_t*, int64_t, int64_t,
                                              const TripletAngularMarginOptions&, float*);
template double triplet_angular_margin<double>(const double*, const int64_t*, int64_t, int64_t,
                                               const TripletAngularMarginOptions&, double*);

}  // namespace train
}  // namespace pif
