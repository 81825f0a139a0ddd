// The run configuration read from JS (both tiers), and the last-stage tier's jobs
// (train/stage_tier.h): the frozen part cut before stage 4, pooled features through stage 4 as
// trained so far, the epoch's batches and one optimiser step per native call (JS decodes each
// batch's images and draws their training views, so progress and cancellation come per step).
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "addon/args.h"
#include "addon/job.h"
#include "addon/train_tier.h"

namespace pif {
namespace addon {
namespace {

double number_field(Napi::Env env, const Napi::Object& o, const char* key, double def, double lo,
                    double hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() >= lo) ||
      !(v.As<Napi::Number>().DoubleValue() <= hi))
    throw_arg(env, std::string("config.") + key + " must be a number from " + std::to_string(lo) +
                       " to " + std::to_string(hi));
  return v.As<Napi::Number>().DoubleValue();
}

int64_t int_config(Napi::Env env, const Napi::Object& o, const char* key, int64_t def, int64_t lo,
                   int64_t hi) {
  if (o.Get(key).IsUndefined()) return def;
  int64_t x = 0;
  if (!integer_in(o.Get(key), lo, hi, &x))
    throw_arg(env, std::string("config.") + key + " must be an integer from " + std::to_string(lo) +
                       " to " + std::to_string(hi));
  return x;
}

}  // namespace

train::HeadTrainConfig config_arg(Napi::Env env, const Napi::Object& o, const HeadTier& h) {
  train::HeadTrainConfig c;
  c.classes = int_config(env, o, "classes", 0, 1, 1 << 24);
  c.epochs = int_config(env, o, "epochs", 20, 1, 100000);
  c.batch = int_config(env, o, "batchSize", 128, 2, 1 << 16);
  c.per_label = int_config(env, o, "perLabel", h.tail.clip ? 0 : 4, 0, 1 << 16);
  c.warmup_epochs = int_config(env, o, "warmupEpochs", 5, 0, 100000);
  c.lr = number_field(env, o, "learningRate", 0.01, 0, 100);
  c.eta_min = number_field(env, o, "etaMin", 0, 0, 100);
  c.warmup_start_lr = number_field(env, o, "warmupStartLr", 0, 0, 100);
  c.momentum = number_field(env, o, "momentum", 0.9, 0, 1);
  c.l2 = number_field(env, o, "l2", 1e-5, 0, 1);
  c.seed = static_cast<uint64_t>(int_config(env, o, "seed", 0, 0, kMaxSafeInteger));
  c.head.dropout = 1 - h.tail.dropout_scale;
  c.head.bn_epsilon = h.tail.bn_epsilon;
  c.head.ce_epsilon = number_field(env, o, "labelSmoothing", h.tail.clip ? 0 : 0.1, 0, 1);
  // PaddleClas's head initialisers: Normal(0, 0.001) for PP-ShiTuV2_rec's FC; XavierNormal for
  // ArcMargin, whose columns are normalised (a tiny column would turn with every step).
  c.fc_init_std =
      h.tail.clip ? std::sqrt(2.0 / static_cast<double>(h.tail.dim + c.classes)) : 0.001;
  c.head.bnneck = !h.tail.clip;
  c.head.arc_margin = h.tail.clip;
  c.head.arc.epsilon = c.head.ce_epsilon;
  return c;
}

namespace {

Napi::Object loss_to_js(Napi::Env env, const train::HeadLoss& l) {
  Napi::Object loss = Napi::Object::New(env);
  loss.Set("ce", l.ce);
  loss.Set("triplet", l.triplet);
  loss.Set("total", l.total);
  return loss;
}

}  // namespace

Napi::Value epoch_to_js(Napi::Env env, const train::HeadEpoch& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("epoch", static_cast<double>(e.epoch));
  o.Set("lr", e.lr);
  o.Set("loss", loss_to_js(env, e.loss));
  return o;
}

void open_stage(HeadTier* h, const Executor& normal, const ExecutorOptions& exec) {
  h->stage = true;
  h->blocks = train::find_stage_blocks(normal, h->tail, h->model->dir, 2);
  auto cut = std::make_shared<LoadedModel>(*h->model);
  cut->program.outputs = {{"stage_input", h->blocks[0].input, 0}};
  h->pooled = std::make_shared<Executor>(cut, exec);
  h->kernels = exec.hpi ? train::StageKernels::Dnnl : train::StageKernels::Reference;
}

namespace {

// The stage's input activations [rows, cin, ih, iw] of a batch through the frozen part.
struct Activations {
  std::vector<float> data;
  int64_t rows = 0, h = 0, w = 0;
};

Activations activations(HeadTier& h, ImageBatch& b) {
  ImageBatchResult r = run_image_batch(*h.pooled, b);
  if (!r.failed.empty())
    throw ModelError(code::kInput, "", -1, "",
                     "image " + std::to_string(r.failed[0].first) + ": " + r.failed[0].second);
  Activations a;
  a.rows = r.rows;
  const int64_t cin = h.blocks[0].cin;
  const int64_t per_row = r.rows > 0 ? static_cast<int64_t>(r.features.size()) / r.rows : 0;
  const std::vector<int64_t>& dims = h.model->program.values[h.blocks[0].input].type.dims;
  if (dims.size() == 4 && dims[2] > 0 && dims[3] > 0) {
    a.h = dims[2], a.w = dims[3];
  } else {
    a.h = a.w = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(per_row / cin))));
  }
  if (per_row != cin * a.h * a.w)
    throw ModelError(code::kUnsupported, h.model->dir, -1, "",
                     "stage 4's input has " + std::to_string(per_row) + " values per image, not " +
                         std::to_string(cin) + " x " + std::to_string(a.h) + " x " +
                         std::to_string(a.w));
  a.data = std::move(r.features);
  return a;
}

// A step and where its time went: the frozen part (decoded images to stage 4's input, with
// their training views) and stage 4 + tail forward, backward and update.
struct Timed {
  train::StageStep step;
  double frozen_ms = 0, train_ms = 0;
};

ImageBatch batch_arg(Napi::Env env, HeadTier& h, const Napi::Array& arr, const Napi::Object& norm) {
  ImageBatch b;
  b.dir = h.model->dir;
  b.input = h.model->program.inputs[0].name;
  for (uint32_t k = 0; k < arr.Length(); ++k) b.items.push_back(image_arg(env, arr.Get(k), k));
  b.norm = norm_fields(env, norm, 3);
  b.threads = h.threads;
  b.unit_length = false;
  return b;
}

}  // namespace

ImageBatchResult stage_pooled_rows(HeadTier& h, ImageBatch& b) {
  std::unique_lock<std::mutex> lock = h.begun();
  Activations a = activations(h, b);
  ImageBatchResult out;
  out.rows = a.rows;
  out.features.resize(static_cast<size_t>(a.rows * h.tail.in));
  if (a.rows > 0)
    train::stage_pooled(h.stage_state->weights, a.data.data(), a.rows, a.h, a.w,
                        out.features.data(), h.kernels);
  return out;
}

Napi::Value stage_epoch_batches(const Napi::CallbackInfo& info, std::shared_ptr<HeadTier> h) {
  return start_job(
      info.Env(),
      [h]() {
        std::unique_lock<std::mutex> lock = h->begun();
        try {
          return train::stage_epoch_batches(h->stage_state.get(), h->labels, h->config);
        } catch (const std::invalid_argument& e) {  // the PK sampler's refusals
          throw ModelError(code::kInvalidArg, "", -1, "", e.what());
        }
      },
      [](Napi::Env env, const std::vector<std::vector<int64_t>>& batches) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, batches.size());
        for (size_t b = 0; b < batches.size(); ++b) {
          Napi::Array rows = Napi::Array::New(env, batches[b].size());
          for (size_t r = 0; r < batches[b].size(); ++r)
            rows.Set(static_cast<uint32_t>(r), static_cast<double>(batches[b][r]));
          out.Set(static_cast<uint32_t>(b), rows);
        }
        return out;
      });
}

Napi::Value stage_step(const Napi::CallbackInfo& info, std::shared_ptr<HeadTier> h) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsObject() || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
    throw_arg(env, "step(images, norm, labels: BigInt64Array, stepsPerEpoch): bad arguments");
  int64_t steps = 0;
  if (!integer_in(info[3], 1, kMaxSafeInteger, &steps))
    throw_arg(env, "stepsPerEpoch must be a positive integer");
  Napi::Array arr = info[0].As<Napi::Array>();
  ImageBatch b = batch_arg(env, *h, arr, info[1].As<Napi::Object>());
  Napi::TypedArray la = info[2].As<Napi::TypedArray>();
  const int64_t* l = reinterpret_cast<const int64_t*>(
      static_cast<const uint8_t*>(la.ArrayBuffer().Data()) + la.ByteOffset());
  std::vector<int64_t> labels(l, l + la.ElementLength());
  if (labels.size() != b.items.size() || labels.size() < 2)
    throw_arg(env, "step: one label per image, and at least 2 images");
  return start_job(
      env,
      [h, b = std::move(b), labels = std::move(labels), steps]() mutable {
        std::unique_lock<std::mutex> lock = h->begun();
        const auto t0 = std::chrono::steady_clock::now();
        Activations a = activations(*h, b);
        const auto t1 = std::chrono::steady_clock::now();
        try {
          train::check_labels(labels, h->config.classes);
          Timed r;
          r.step = train::stage_step(h->stage_state.get(), a.data.data(), a.rows, a.h, a.w,
                                     labels.data(), steps, h->config, h->kernels);
          r.frozen_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
          r.train_ms =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1)
                  .count();
          return r;
        } catch (const std::invalid_argument& e) {  // the losses' refusals
          throw ModelError(code::kInvalidArg, "", -1, "", e.what());
        }
      },
      [](Napi::Env env, const Timed& t) -> Napi::Value {
        const train::StageStep& s = t.step;
        Napi::Object o = Napi::Object::New(env);
        o.Set("lr", s.lr);
        o.Set("frozenMs", t.frozen_ms);
        o.Set("trainMs", t.train_ms);
        o.Set("loss", loss_to_js(env, s.loss));
        return o;
      },
      arr);
}

}  // namespace addon
}  // namespace pif
