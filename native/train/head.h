// The tail that the head tier trains on cached features (issue 17, tier `head`), PP-ShiTuV2_rec's
// form (../shared/spec/architectures.md §1.2 rows 16-19, §3.1):
//   z = x W^T + b                 last_conv, 1x1 conv in -> dim with bias, on pooled features
//   z' = z * keep                 dropout p, mode downscale_in_infer: a kept/dropped mask when
//                                 training, * (1 - p) at inference
//   y = BNNeck(z')                BatchNorm1D: batch statistics when training (the running
//                                 ones updated with momentum), running statistics at inference
//   logits = y FC                 the training-only FC head, [dim, classes], no bias
//   loss = CE(label smoothing)(logits) + TripletAngularMargin(y)
// or, for the CLIP models (HeadConfig::bnneck false, arc_margin true), y = z and
//   loss = CE(ArcMargin(y, FC))
// with its gradients, the Momentum + L2 update and the cosine learning rate with warmup.
//
// T is float (training; GEMMs through dnnl_sgemm) or double (the finite-difference tests).
#pragma once

#include <cstdint>
#include <vector>

#include "train/losses.h"

namespace pif {
namespace train {

template <typename T>
struct HeadWeights {
  int64_t in = 0, dim = 0, classes = 0;
  std::vector<T> w;                       // [dim, in] (the conv's [dim, in, 1, 1])
  std::vector<T> b;                       // [dim]
  std::vector<T> gamma, beta, mean, var;  // [dim] each
  std::vector<T> fc;                      // [dim, classes]
};

struct HeadConfig {
  double dropout = 0.2;
  double bn_epsilon = 1e-5;
  double bn_momentum = 0.9;  // running = momentum * running + (1 - momentum) * batch
  double ce_epsilon = 0.1;
  bool use_triplet = true;
  TripletAngularMarginOptions triplet = shitu_v2_triplet_options();
  // The CLIP models' tail instead (architectures.md §3.2): an FC neck with no dropout and no
  // BNNeck (bnneck false; gamma/beta/mean/var are then unused), and ArcMargin + CE as the
  // loss (arc_margin true; use_triplet and ce_epsilon unused, arc.epsilon applies).
  bool bnneck = true;
  bool arc_margin = false;
  ArcMarginOptions arc;
};

template <typename T>
struct HeadGrads {
  std::vector<T> w, b, gamma, beta, fc;
  // Set before the step to also get d loss / d x [n, in] in `x` (the last-stage tier
  // back-propagates into the pooled features); BNNeck tails only.
  bool want_input = false;
  std::vector<T> x;
};

struct HeadLoss {
  double ce = 0, triplet = 0, total = 0;
};

// One training forward and backward over a batch x [n, in] with its labels (in [0, classes)).
// `keep` holds n * dim dropout flags (1 kept, 0 dropped; null keeps all). Fills `grads` (sized
// here) unless null, and the batch's BN statistics into `batch_mean` / `batch_var` (biased)
// unless null. Throws std::invalid_argument for a batch the losses refuse.
// (NoDeduce: T comes from the weights, so the outputs may be passed as nullptr.)
template <typename T>
struct NoDeduce {
  using type = T;
};
template <typename T>
HeadLoss head_train_step(const HeadWeights<T>& w, const HeadConfig& cfg, const T* x,
                         const int64_t* labels, int64_t n, const uint8_t* keep,
                         typename NoDeduce<HeadGrads<T>>::type* grads,
                         typename NoDeduce<std::vector<T>>::type* batch_mean,
                         typename NoDeduce<std::vector<T>>::type* batch_var);

// Inference features y [n, dim] of x [n, in]: dropout as * (1 - p), BN on running statistics.
template <typename T>
void head_features(const HeadWeights<T>& w, const HeadConfig& cfg, const T* x, int64_t n, T* y);

// running = momentum * running + (1 - momentum) * batch, for the mean and the variance.
template <typename T>
void update_running_stats(HeadWeights<T>* w, const HeadConfig& cfg, const std::vector<T>& mean,
                          const std::vector<T>& var);

// Paddle's Momentum with L2Decay: g' = grad + l2 * param; velocity = momentum * velocity + g';
// param -= lr * velocity.
void momentum_step(std::vector<float>* param, std::vector<float>* velocity,
                   const std::vector<float>& grad, double lr, double momentum, double l2);

// PaddleClas's Cosine schedule with linear warmup, per iteration: from warmup_start_lr to lr
// over warmup_steps, then eta_min + (lr - eta_min) * (1 + cos(pi * t / (total - warmup))) / 2.
double cosine_warmup_lr(int64_t step, int64_t total_steps, int64_t warmup_steps, double lr,
                        double eta_min, double warmup_start_lr);

}  // namespace train
}  // namespace pif
