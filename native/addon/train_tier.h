// The training tiers' shared state (train.cc: NativeHeadTier; train_stage.cc: the last-stage
// tier's jobs and the run configuration read from JS).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "addon/image_batch.h"
#include "addon/napi_include.h"
#include "train/head_tier.h"
#include "train/shitu_tail.h"
#include "train/stage_tier.h"

namespace pif {
namespace addon {

// The model, its tail, the executor of the frozen part and the run (guarded by `mu`: one job
// at a time touches the run; JS awaits each). The head tier's frozen part ends at the pooled
// features (`pooled`); the last-stage tier's at stage 4's input (`pooled` then outputs that
// value, and `blocks` are trained with the tail).
struct HeadTier {
  std::shared_ptr<LoadedModel> model;
  train::ShituTail tail;
  std::shared_ptr<Executor> pooled;
  int threads = 1;
  std::mutex mu;
  std::vector<float> features;
  std::vector<int64_t> labels;
  train::HeadTrainConfig config;
  std::unique_ptr<train::HeadTrainState> state;
  // The last-stage tier.
  bool stage = false;
  std::vector<train::RepBlock> blocks;
  train::StageKernels kernels = train::StageKernels::Reference;
  std::unique_ptr<train::StageTrainState> stage_state;

  bool running() const { return stage ? stage_state != nullptr : state != nullptr; }
  // The lock on the run, for a job that needs begin() to have run.
  std::unique_lock<std::mutex> begun() {
    std::unique_lock<std::mutex> lock(mu);
    if (!running()) throw ModelError(code::kInvalidArg, "", -1, "", "call begin() first");
    return lock;
  }
  const train::HeadWeights<float>& head() const {
    return stage ? stage_state->weights.head : state->weights;
  }
};

train::HeadTrainConfig config_arg(Napi::Env env, const Napi::Object& o, const HeadTier& h);
Napi::Value epoch_to_js(Napi::Env env, const train::HeadEpoch& e);

// The last-stage tier: finds stage 4 on the normal-mode executor and cuts the frozen part
// before it (called by openHeadTier's job).
void open_stage(HeadTier* h, const Executor& normal, const ExecutorOptions& exec);
// pooled(images, norm) of the last-stage tier: the frozen part, then stage 4 as trained so far
// (inference form), pooled.
ImageBatchResult stage_pooled_rows(HeadTier& h, ImageBatch& b);
// epochBatches() -> number[][]: the next epoch's batches of train rows.
Napi::Value stage_epoch_batches(const Napi::CallbackInfo& info, std::shared_ptr<HeadTier> h);
// step(images, norm, labels: BigInt64Array, stepsPerEpoch) -> { loss, lr }: one optimiser step
// on a batch of training views.
Napi::Value stage_step(const Napi::CallbackInfo& info, std::shared_ptr<HeadTier> h);

}  // namespace addon
}  // namespace pif
