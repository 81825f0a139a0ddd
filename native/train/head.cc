#include "train/head.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "train/gemm.h"

namespace pif {
namespace train {
namespace {

constexpr double kPi = 3.14159265358979323846;

template <typename T>
void check_weights(const HeadWeights<T>& w) {
  const size_t in = static_cast<size_t>(w.in), dim = static_cast<size_t>(w.dim);
  if (w.in < 1 || w.dim < 1 || w.classes < 1 || w.w.size() != dim * in || w.b.size() != dim ||
      w.gamma.size() != dim || w.beta.size() != dim || w.mean.size() != dim ||
      w.var.size() != dim || w.fc.size() != dim * static_cast<size_t>(w.classes))
    throw std::invalid_argument("head: weights of inconsistent sizes");
}

// The CLIP tail's step: y = z (the FC neck's output), ArcMargin + CE, and the neck's gradients.
template <typename T>
HeadLoss neck_train_step(const HeadWeights<T>& w, const HeadConfig& cfg, const T* x,
                         const int64_t* labels, int64_t n, std::vector<T> y, HeadGrads<T>* grads) {
  if (!cfg.arc_margin) throw std::invalid_argument("head: a tail without BNNeck trains ArcMargin");
  const int64_t in = w.in, dim = w.dim, classes = w.classes;
  std::vector<T> dy(grads != nullptr ? y.size() : 0);
  if (grads != nullptr) grads->fc.assign(w.fc.size(), T(0));
  HeadLoss loss;
  loss.ce = arc_margin_ce(y.data(), w.fc.data(), labels, n, dim, classes, cfg.arc,
                          grads != nullptr ? dy.data() : nullptr,
                          grads != nullptr ? grads->fc.data() : nullptr);
  loss.total = loss.ce;
  if (grads == nullptr) return loss;
  grads->gamma.assign(static_cast<size_t>(dim), T(0));
  grads->beta.assign(static_cast<size_t>(dim), T(0));
  grads->w.assign(w.w.size(), T(0));
  gemm<T>(true, false, dim, in, n, dy.data(), dim, x, in, T(0), grads->w.data(), in);
  grads->b.assign(static_cast<size_t>(dim), T(0));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) grads->b[j] += dy[i * dim + j];
  return loss;
}

}  // namespace

template <typename T>
HeadLoss head_train_step(const HeadWeights<T>& w, const HeadConfig& cfg, const T* x,
                         const int64_t* labels, int64_t n, const uint8_t* keep,
                         typename NoDeduce<HeadGrads<T>>::type* grads,
                         typename NoDeduce<std::vector<T>>::type* batch_mean,
                         typename NoDeduce<std::vector<T>>::type* batch_var) {
  check_weights(w);
  if (n < 2) throw std::invalid_argument("head: a training batch needs at least 2 rows");
  const int64_t in = w.in, dim = w.dim, classes = w.classes;
  const size_t nd = static_cast<size_t>(n * dim);
  // Forward: z = x W^T + b, dropped, batch-normalised.
  std::vector<T> z(nd);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) z[i * dim + j] = w.b[j];
  gemm<T>(false, true, n, dim, in, x, in, w.w.data(), in, T(1), z.data(), dim);
  if (!cfg.bnneck) return neck_train_step(w, cfg, x, labels, n, std::move(z), grads);
  if (keep != nullptr)
    for (size_t k = 0; k < nd; ++k)
      if (keep[k] == 0) z[k] = 0;
  std::vector<double> mu(dim, 0.0), var(dim, 0.0), inv_std(dim);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) mu[j] += z[i * dim + j];
  for (int64_t j = 0; j < dim; ++j) mu[j] /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) {
      const double d = z[i * dim + j] - mu[j];
      var[j] += d * d;
    }
  for (int64_t j = 0; j < dim; ++j) {
    var[j] /= static_cast<double>(n);
    inv_std[j] = 1.0 / std::sqrt(var[j] + cfg.bn_epsilon);
  }
  std::vector<T> xhat(nd), y(nd);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) {
      const size_t k = static_cast<size_t>(i * dim + j);
      xhat[k] = static_cast<T>((z[k] - mu[j]) * inv_std[j]);
      y[k] = w.gamma[j] * xhat[k] + w.beta[j];
    }
  if (batch_mean != nullptr) batch_mean->assign(mu.begin(), mu.end());
  if (batch_var != nullptr) batch_var->assign(var.begin(), var.end());
  // Losses: CE on y FC, the triplet loss on y.
  std::vector<T> logits(static_cast<size_t>(n * classes));
  gemm<T>(false, false, n, classes, dim, y.data(), dim, w.fc.data(), classes, T(0), logits.data(),
          classes);
  std::vector<T> dlogits(grads != nullptr ? logits.size() : 0);
  std::vector<T> dy(grads != nullptr ? nd : 0);
  HeadLoss loss;
  loss.ce = ce_label_smoothing(logits.data(), labels, n, classes, cfg.ce_epsilon,
                               grads != nullptr ? dlogits.data() : nullptr);
  if (cfg.use_triplet)
    loss.triplet = triplet_angular_margin(y.data(), labels, n, dim, cfg.triplet,
                                          grads != nullptr ? dy.data() : nullptr);
  loss.total = loss.ce + loss.triplet;
  if (grads == nullptr) return loss;
  // Backward. FC: dFC = y^T dlogits; dy += dlogits FC^T.
  grads->fc.assign(w.fc.size(), T(0));
  gemm<T>(true, false, dim, classes, n, y.data(), dim, dlogits.data(), classes, T(0),
          grads->fc.data(), classes);
  gemm<T>(false, true, n, dim, classes, dlogits.data(), classes, w.fc.data(), classes,
          cfg.use_triplet ? T(1) : T(0), dy.data(), dim);
  // BN: dgamma, dbeta, and dz = inv_std / n * (n dxhat - sum dxhat - xhat sum(dxhat xhat)).
  grads->gamma.assign(dim, T(0));
  grads->beta.assign(dim, T(0));
  std::vector<double> sum_dxhat(dim, 0.0), sum_dxhat_xhat(dim, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) {
      const size_t k = static_cast<size_t>(i * dim + j);
      grads->gamma[j] += dy[k] * xhat[k];
      grads->beta[j] += dy[k];
      const double dxhat = static_cast<double>(dy[k]) * w.gamma[j];
      sum_dxhat[j] += dxhat;
      sum_dxhat_xhat[j] += dxhat * xhat[k];
    }
  std::vector<T> dz(nd);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) {
      const size_t k = static_cast<size_t>(i * dim + j);
      const double dxhat = static_cast<double>(dy[k]) * w.gamma[j];
      double g = inv_std[j] / static_cast<double>(n) *
                 (static_cast<double>(n) * dxhat - sum_dxhat[j] - xhat[k] * sum_dxhat_xhat[j]);
      if (keep != nullptr && keep[k] == 0) g = 0;
      dz[k] = static_cast<T>(g);
    }
  // last_conv: dW = dz^T x, db = sum over rows of dz.
  grads->w.assign(w.w.size(), T(0));
  gemm<T>(true, false, dim, in, n, dz.data(), dim, x, in, T(0), grads->w.data(), in);
  grads->b.assign(dim, T(0));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) grads->b[j] += dz[i * dim + j];
  // dx = dz W.
  if (grads->want_input) {
    grads->x.assign(static_cast<size_t>(n * in), T(0));
    gemm<T>(false, false, n, in, dim, dz.data(), dim, w.w.data(), in, T(0), grads->x.data(), in);
  }
  return loss;
}

template <typename T>
void head_features(const HeadWeights<T>& w, const HeadConfig& cfg, const T* x, int64_t n, T* y) {
  check_weights(w);
  const int64_t dim = w.dim;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) y[i * dim + j] = w.b[j];
  gemm<T>(false, true, n, dim, w.in, x, w.in, w.w.data(), w.in, T(1), y, dim);
  if (!cfg.bnneck) return;
  const double scale = 1.0 - cfg.dropout;
  for (int64_t j = 0; j < dim; ++j) {
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(w.var[j]) + cfg.bn_epsilon);
    for (int64_t i = 0; i < n; ++i) {
      T& v = y[i * dim + j];
      v = static_cast<T>((static_cast<double>(v) * scale - w.mean[j]) * inv_std * w.gamma[j] +
                         w.beta[j]);
    }
  }
}

template <typename T>
void update_running_stats(HeadWeights<T>* w, const HeadConfig& cfg, const std::vector<T>& mean,
                          const std::vector<T>& var) {
  const double m = cfg.bn_momentum;
  for (size_t j = 0; j < w->mean.size(); ++j) {
    w->mean[j] = static_cast<T>(m * w->mean[j] + (1 - m) * mean[j]);
    w->var[j] = static_cast<T>(m * w->var[j] + (1 - m) * var[j]);
  }
}

void momentum_step(std::vector<float>* param, std::vector<float>* velocity,
                   const std::vector<float>& grad, double lr, double momentum, double l2) {
  if (velocity->size() != param->size()) velocity->assign(param->size(), 0.f);
  if (grad.size() != param->size()) throw std::invalid_argument("momentum_step: sizes differ");
  for (size_t k = 0; k < param->size(); ++k) {
    float& p = (*param)[k];
    float& v = (*velocity)[k];
    const float g = grad[k] + static_cast<float>(l2) * p;
    v = static_cast<float>(momentum) * v + g;
    p -= static_cast<float>(lr) * v;
  }
}

double cosine_warmup_lr(int64_t step, int64_t total_steps, int64_t warmup_steps, double lr,
                        double eta_min, double warmup_start_lr) {
  if (step < warmup_steps)
    return warmup_start_lr +
           (lr - warmup_start_lr) * static_cast<double>(step) / static_cast<double>(warmup_steps);
  const int64_t span = total_steps - warmup_steps;
  if (span <= 0) return lr;
  const double t = static_cast<double>(std::min(step - warmup_steps, span));
  return eta_min + (lr - eta_min) * (1 + std::cos(kPi * t / static_cast<double>(span))) / 2;
}

#define PIF_HEAD_INSTANTIATE(T)                                                                    \
  template HeadLoss head_train_step<T>(const HeadWeights<T>&, const HeadConfig&, const T*,         \
                                       const int64_t*, int64_t, const uint8_t*, HeadGrads<T>*,     \
                                       std::vector<T>*, std::vector<T>*);                          \
  template void head_features<T>(const HeadWeights<T>&, const HeadConfig&, const T*, int64_t, T*); \
  template void update_running_stats<T>(HeadWeights<T>*, const HeadConfig&, const std::vector<T>&, \
                                        const std::vector<T>&);
PIF_HEAD_INSTANTIATE(float)
PIF_HEAD_INSTANTIATE(double)
#undef PIF_HEAD_INSTANTIATE

}  // namespace train
}  // namespace pif
