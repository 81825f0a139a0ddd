// The head tier's training run on cached pooled features (issue 17, `tier: head`), as the
// PP-ShiTuV2_rec recipe runs it (../shared/spec/architectures.md §3.1): PK batches (P labels
// without replacement, K rows each, with replacement when a label has fewer), Momentum + L2
// with a per-iteration cosine schedule after a linear warmup, the BNNeck shift frozen, dropout
// masks and batches from one seeded generator, so the same seed and inputs give the same
// weights bit for bit. Then the tail's parameters are written back into a copy of the model
// directory: the program file and inference.yml unchanged, a new inference.pdiparams.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "graph/loaded_model.h"
#include "train/head.h"
#include "train/shitu_tail.h"

namespace pif {
namespace train {

struct HeadTrainConfig {
  int64_t classes = 0;  // labels are in [0, classes)
  int64_t epochs = 20;
  int64_t batch = 128;
  int64_t per_label = 4;  // K of the PK sampler; 0: shuffled batches (no PK sampling)
  int64_t warmup_epochs = 5;
  double lr = 0.01, eta_min = 0, warmup_start_lr = 0;
  double momentum = 0.9, l2 = 1e-5;
  double fc_init_std = 0.001;
  uint64_t seed = 0;
  HeadConfig head;
};

struct HeadEpoch {
  int64_t epoch = 0;  // 1-based
  HeadLoss loss;      // the epoch's mean per step
  double lr = 0;      // at its last step
};

struct HeadTrainResult {
  HeadWeights<float> weights;
  std::vector<HeadEpoch> epochs;
  int64_t steps_per_epoch = 0;
};

// The PK batches of one epoch: len(rows) / batch of them, each of batch / per_label labels
// drawn without replacement and per_label rows of each. Throws std::invalid_argument (naming
// the numbers) when batch is not a multiple of per_label or there are too few labels.
template <typename Rng>
std::vector<std::vector<int64_t>> pk_batches(const std::vector<int64_t>& labels, int64_t batch,
                                             int64_t per_label, Rng& rng);

// The tail's weights read from the model's parameters, with a new FC head of `classes`
// columns drawn from Normal(0, fc_init_std) with `seed`.
HeadWeights<float> tail_weights(const Program& p, const ShituTail& t, int64_t classes,
                                double fc_init_std, uint64_t seed);

// A run in progress: the weights, the optimiser's velocities, the generator and the step count,
// so that a caller may run it one epoch at a time (progress, cancellation between epochs).
struct HeadTrainState {
  HeadWeights<float> weights;
  std::vector<float> vw, vb, vgamma, vfc;
  std::mt19937_64 rng;
  int64_t step = 0, epoch = 0;
};

// The batches of one epoch without PK sampling (the CLIP recipe's DistributedBatchSampler):
// the rows shuffled, cut into len(rows) / batch batches (the rest dropped).
template <typename Rng>
std::vector<std::vector<int64_t>> shuffled_batches(size_t rows, int64_t batch, Rng& rng);

// The trained neck weight in the program's layout: [dim, in, 1, 1] for PP-ShiTuV2_rec's
// last_conv (HeadWeights' own), [in, dim] for the CLIP neck's matmul.
std::vector<float> program_layout_weight(const ShituTail& t, const HeadWeights<float>& w);

// One parameter of a run as a checkpoint lists it.
struct TailParam {
  std::string name;  // the program's ('' for the FC head, which the program has not)
  std::string role;  // convWeight, convBias, bnScale, bnBias, bnMean, bnVariance, fc; '' frozen
  std::vector<int64_t> dims;
  std::vector<float> data;
};

// A parameter of the program (index into Program::params) given a new value by a run beyond
// the tail's (the last-stage tier's blocks).
struct ParamValue {
  int32_t index = -1;
  std::string role;
  std::vector<float> data;
};

// Every loaded float32 parameter of `p` in program order, the tail's with `w`'s values (in the
// program's layout) and `extra`'s with theirs, then the FC head.
std::vector<TailParam> tail_params(const Program& p, const ShituTail& t,
                                   const HeadWeights<float>& w,
                                   const std::vector<ParamValue>& extra = {});

HeadTrainState start_head(const HeadWeights<float>& init, const HeadTrainConfig& cfg);

// A run's state as bytes, so that a run resumed from them goes on exactly as an uninterrupted
// one (Train.resume_path): the weights, the velocities, the step and epoch counts and the
// generator's state.
std::vector<uint8_t> save_head_state(const HeadTrainState& s);

// Reads save_head_state's bytes into `s`, which start_head made for the same model and classes.
// Throws std::invalid_argument (naming the byte offset) on bytes it did not write or on other
// shapes; `s` is unchanged then.
void load_head_state(const uint8_t* data, size_t size, HeadTrainState* s);

// Throws std::invalid_argument naming the first label outside [0, classes).
void check_labels(const std::vector<int64_t>& labels, int64_t classes);

// One epoch of `s` on x [n, in] with labels (check_labels'd by the caller; the loss refuses
// a label out of range too).
HeadEpoch train_head_epoch(HeadTrainState* s, const float* x, const std::vector<int64_t>& labels,
                           const HeadTrainConfig& cfg);

// Trains from `init` on x [n, in] with labels. `on_epoch` (may be empty) sees each finished
// epoch and returns false to stop (cancellation): the result then holds the epochs done.
HeadTrainResult train_head(const HeadWeights<float>& init, const float* x,
                           const std::vector<int64_t>& labels, const HeadTrainConfig& cfg,
                           const std::function<bool(const HeadEpoch&)>& on_epoch);

// Writes `out_dir` (created if needed): `m`'s program file and inference.yml copied byte for
// byte, and inference.pdiparams with the tail's parameters replaced by `w`'s and `extra`'s by
// theirs (the others as loaded). Each file is written atomically.
void write_trained_model(const LoadedModel& m, const ShituTail& t, const HeadWeights<float>& w,
                         const std::string& out_dir, const std::vector<ParamValue>& extra = {});

}  // namespace train
}  // namespace pif
