// The last-stage tier (issue 17, `tier: last-stage`): PP-ShiTuV2_rec's stage 4 (its last two
// re-parameterised blocks, train/shitu_tail.h RepBlock) and the tail trained end to end in the
// exported (fused) form, on stage-3 activations that the frozen part computes for each batch
// of freshly augmented images (../shared/spec/training-packaging.md A2):
//   per block  a = relu(dwconv(x) + b); q = relu(BN_batch(pw(a))); out = q (+ x with a shortcut)
//   then       pooled = mean over positions; the head tier's tail (train/head.h) on pooled.
// BN trains on batch statistics (running ones updated with momentum) as PaddleClas does; the
// optimiser, schedule, PK batches and generator are the head tier's. The first block's input
// is frozen, so its data gradient is never computed.
//
// T is float (training) or double (the finite-difference tests). The float kernels are the
// reference ones (train/stage_ops.h) or oneDNN's (train/stage_dnnl.h), chosen per call.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/loaded_model.h"
#include "train/head.h"
#include "train/head_tier.h"
#include "train/shitu_tail.h"

namespace pif {
namespace train {

template <typename T>
struct BlockWeights {
  int64_t cin = 0, cout = 0, k = 5, stride = 1, pad = 2;
  bool residual = false;
  double bn_epsilon = 1e-5;
  std::vector<T> dw_w, dw_b;              // [cin, 1, k, k], [cin]
  std::vector<T> pw_w;                    // [cout, cin]
  std::vector<T> gamma, beta, mean, var;  // [cout]
};

template <typename T>
struct BlockGrads {
  std::vector<T> dw_w, dw_b, pw_w, gamma, beta;
};

template <typename T>
struct StageWeights {
  std::vector<BlockWeights<T>> blocks;
  HeadWeights<T> head;
};

template <typename T>
struct StageGrads {
  std::vector<BlockGrads<T>> blocks;
  HeadGrads<T> head;
};

// The batch statistics of a step: per block, and the BNNeck's.
template <typename T>
struct StageStats {
  std::vector<std::vector<T>> mean, var;
  std::vector<T> head_mean, head_var;
};

enum class StageKernels { Reference, Dnnl };

// A step's buffers (each block's saved activations and the gradients in flight), kept between
// steps so that the tens of MB they take are allocated once.
template <typename T>
struct StageWorkspace {
  struct Tape {
    int64_t h = 0, w = 0;  // the block's output size
    std::vector<T> a, p, q, out, mean, var;
  };
  std::vector<Tape> tape;
  std::vector<T> pooled, dout, dq, dp, da, dx;
};

// One training forward and backward over x [n, cin0, h, w] (the first block's input) with its
// labels; `keep` as head_train_step's. Fills grads and stats unless null.
template <typename T>
HeadLoss stage_train_step(const StageWeights<T>& w, const HeadConfig& cfg, const T* x, int64_t n,
                          int64_t h, int64_t wd, const int64_t* labels, const uint8_t* keep,
                          typename NoDeduce<StageGrads<T>>::type* grads,
                          typename NoDeduce<StageStats<T>>::type* stats, StageKernels kernels,
                          typename NoDeduce<StageWorkspace<T>>::type* workspace = nullptr);

// The pooled features [n, cout_last] of x through the blocks in inference form (BN on running
// statistics): what the exported graph computes from the same stage-3 activations.
template <typename T>
void stage_pooled(const StageWeights<T>& w, const T* x, int64_t n, int64_t h, int64_t wd, T* pooled,
                  StageKernels kernels);

// The blocks' and the tail's weights from the program, the FC head as tail_weights draws it.
StageWeights<float> stage_weights(const Program& p, const std::vector<RepBlock>& blocks,
                                  const ShituTail& t, int64_t classes, double fc_init_std,
                                  uint64_t seed);

// A run in progress (as HeadTrainState): the weights, one velocity per trained vector (zero at
// the start; the order of stage_trained_vectors), the generator, the counts.
struct StageTrainState {
  StageWeights<float> weights;
  std::vector<std::vector<float>> velocity;
  std::mt19937_64 rng;
  int64_t step = 0, epoch = 0;
  // The steps' buffers (not part of the state; shared by copies).
  std::shared_ptr<StageWorkspace<float>> workspace = std::make_shared<StageWorkspace<float>>();
};

StageTrainState start_stage(const StageWeights<float>& init, const HeadTrainConfig& cfg);

// The batches (row indexes into `labels`) of the next epoch, drawn from the run's generator
// (PK or shuffled as cfg says); counts the epoch as begun.
std::vector<std::vector<int64_t>> stage_epoch_batches(StageTrainState* s,
                                                      const std::vector<int64_t>& labels,
                                                      const HeadTrainConfig& cfg);

struct StageStep {
  HeadLoss loss;
  double lr = 0;
};

// One optimiser step on a batch x [n, cin0, h, w] with its labels: dropout masks from the
// run's generator, Momentum + L2 at the step's cosine learning rate (`steps_per_epoch` sets the
// schedule), running statistics updated, the BNNeck shift frozen.
StageStep stage_step(StageTrainState* s, const float* x, int64_t n, int64_t h, int64_t wd,
                     const int64_t* labels, int64_t steps_per_epoch, const HeadTrainConfig& cfg,
                     StageKernels kernels);

// save_head_state / load_head_state for a stage run (magic "PIFSTG01").
std::vector<uint8_t> save_stage_state(const StageTrainState& s);
void load_stage_state(const uint8_t* data, size_t size, StageTrainState* s);

// The program's parameters that a stage run replaces, with their new values and roles
// (stageDwWeight, stageDwBias, stagePwWeight, stageBnScale, stageBnBias, stageBnMean,
// stageBnVariance) for the blocks.
std::vector<ParamValue> stage_param_values(const std::vector<RepBlock>& blocks,
                                           const StageWeights<float>& w);

}  // namespace train
}  // namespace pif
