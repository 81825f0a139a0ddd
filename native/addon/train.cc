// Training (issue 17, head tier): openHeadTier(path, { runMode, threads }) resolves a
// NativeHeadTier, a PP-ShiTuV2_rec model cut at its global pool (native/train/shitu_tail.h)
// with an executor that outputs the pooled features, and the training state:
//   pooled(images, norm)        the pooled rows [n, in] of a batch (as runImages, no L2)
//   begin(features, labels, config)   copies the cached features once and starts a run
//   trainEpoch()                one epoch (a job each: progress and cancellation in between)
//   features(pooled)            the run's current model features (unit rows) of pooled rows
//   state() / restore(bytes)    the run's state, to resume it exactly (Train.resume_path)
//   params()                    every float32 parameter, the tail's as trained so far
//   save(outDir)                the trained model directory (program unchanged)
//   close()
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/image_batch.h"
#include "addon/job.h"
#include "addon/train_tier.h"
#include "train/head_tier.h"
#include "train/shitu_tail.h"

namespace pif {
namespace addon {
namespace {

class NativeHeadTier : public Napi::ObjectWrap<NativeHeadTier> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeHeadTier",
                       {InstanceMethod("info", &NativeHeadTier::Info),
                        InstanceMethod("pooled", &NativeHeadTier::Pooled),
                        InstanceMethod("begin", &NativeHeadTier::Begin),
                        InstanceMethod("trainEpoch", &NativeHeadTier::TrainEpoch),
                        InstanceMethod("epochBatches", &NativeHeadTier::EpochBatches),
                        InstanceMethod("step", &NativeHeadTier::Step),
                        InstanceMethod("features", &NativeHeadTier::Features),
                        InstanceMethod("state", &NativeHeadTier::State),
                        InstanceMethod("restore", &NativeHeadTier::Restore),
                        InstanceMethod("params", &NativeHeadTier::Params),
                        InstanceMethod("save", &NativeHeadTier::Save),
                        InstanceMethod("close", &NativeHeadTier::Close)});
  }
  explicit NativeHeadTier(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeHeadTier>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw_arg(info.Env(), "NativeHeadTier cannot be constructed directly; use openHeadTier()");
    tier_ = *info[0].As<Napi::External<std::shared_ptr<HeadTier>>>().Data();
  }

 private:
  std::shared_ptr<HeadTier> live(Napi::Env env) {
    if (!tier_) {
      ErrorInfo e;
      e.code = code::kClosed;
      e.message = "the head tier is closed";
      throw make_error(env, e);
    }
    return tier_;
  }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    std::shared_ptr<HeadTier> h = live(info.Env());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("in", static_cast<double>(h->tail.in));
    o.Set("dim", static_cast<double>(h->tail.dim));
    o.Set("dropoutScale", h->tail.dropout_scale);
    o.Set("bnEpsilon", h->tail.bn_epsilon);
    o.Set("kind", h->tail.clip ? "clip" : "shitu");
    o.Set("tier", h->stage ? "last-stage" : "head");
    o.Set("blocks", static_cast<double>(h->blocks.size()));
    o.Set("input", h->model->program.inputs.empty() ? "" : h->model->program.inputs[0].name);
    return o;
  }
  // pooled(images, norm): as NativeModel.runImages, the rows not scaled.
  Napi::Value Pooled(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<HeadTier> h = live(env);
    if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsObject())
      throw_arg(env, "pooled(images, norm): bad arguments");
    ImageBatch b;
    b.dir = h->model->dir;
    b.input = h->model->program.inputs[0].name;
    Napi::Array arr = info[0].As<Napi::Array>();
    for (uint32_t k = 0; k < arr.Length(); ++k) b.items.push_back(image_arg(env, arr.Get(k), k));
    b.norm = norm_fields(env, info[1].As<Napi::Object>(), 3);
    b.threads = h->threads;
    b.unit_length = false;
    return start_job(
        env,
        [h, b = std::move(b)]() mutable {
          return h->stage ? stage_pooled_rows(*h, b) : run_image_batch(*h->pooled, b);
        },
        image_batch_to_js, arr);
  }
  // begin(features: Float32Array [n * in], labels: BigInt64Array [n], config)
  Napi::Value Begin(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<HeadTier> h = live(env);
    if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsTypedArray() ||
        !info[2].IsObject())
      throw_arg(env, "begin(features, labels, config): bad arguments");
    Napi::TypedArray fa = info[0].As<Napi::TypedArray>(), la = info[1].As<Napi::TypedArray>();
    if (fa.TypedArrayType() != napi_float32_array || la.TypedArrayType() != napi_bigint64_array)
      throw_arg(env, "features must be a Float32Array and labels a BigInt64Array");
    const size_t n = la.ElementLength();
    if (n == 0 || fa.ElementLength() != (h->stage ? 0 : n * static_cast<size_t>(h->tail.in)))
      throw_arg(
          env, h->stage ? "the last-stage tier takes no cached features (an empty array)"
                        : "features must hold labels.length rows of " + std::to_string(h->tail.in));
    train::HeadTrainConfig cfg = config_arg(env, info[2].As<Napi::Object>(), *h);
    const float* f = reinterpret_cast<const float*>(
        static_cast<const uint8_t*>(fa.ArrayBuffer().Data()) + fa.ByteOffset());
    const int64_t* l = reinterpret_cast<const int64_t*>(
        static_cast<const uint8_t*>(la.ArrayBuffer().Data()) + la.ByteOffset());
    std::vector<float> features(f, f + fa.ElementLength());
    std::vector<int64_t> labels(l, l + n);
    return start_job(
        env,
        [h, features = std::move(features), labels = std::move(labels), cfg]() mutable {
          try {
            train::check_labels(labels, cfg.classes);
          } catch (const std::invalid_argument& e) {
            throw ModelError(code::kInvalidArg, "", -1, "", e.what());
          }
          // The last-stage tier's weights hold the tail's (stage_weights draws them as
          // tail_weights does).
          std::unique_ptr<train::StageTrainState> stage;
          std::unique_ptr<train::HeadTrainState> head;
          if (h->stage)
            stage = std::make_unique<train::StageTrainState>(
                train::start_stage(train::stage_weights(h->model->program, h->blocks, h->tail,
                                                        cfg.classes, cfg.fc_init_std, cfg.seed),
                                   cfg));
          else
            head = std::make_unique<train::HeadTrainState>(
                train::start_head(train::tail_weights(h->model->program, h->tail, cfg.classes,
                                                      cfg.fc_init_std, cfg.seed),
                                  cfg));
          std::lock_guard<std::mutex> lock(h->mu);
          h->features = std::move(features);
          h->labels = std::move(labels);
          h->config = cfg;
          h->stage_state = std::move(stage);
          h->state = std::move(head);
          return true;
        },
        [](Napi::Env env, bool) { return env.Undefined(); });
  }
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    std::shared_ptr<HeadTier> h = live(info.Env());
    return start_job(
        info.Env(),
        [h]() {
          std::unique_lock<std::mutex> lock = h->begun();
          if (h->stage)
            throw ModelError(code::kInvalidArg, "", -1, "",
                             "the last-stage tier trains with epochBatches() and step()");
          try {
            return train::train_head_epoch(h->state.get(), h->features.data(), h->labels,
                                           h->config);
          } catch (const std::invalid_argument& e) {  // the PK sampler's and the losses' refusals
            throw ModelError(code::kInvalidArg, "", -1, "", e.what());
          }
        },
        epoch_to_js);
  }
  // features(pooled: Float32Array [n * in]) -> Float32Array [n * dim], unit rows: what the
  // model written by save() now would give for these pooled rows.
  Napi::Value Features(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<HeadTier> h = live(env);
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw_arg(env, "features(pooled): pooled must be a Float32Array");
    Napi::Float32Array a = info[0].As<Napi::Float32Array>();
    if (a.ElementLength() % static_cast<size_t>(h->tail.in) != 0)
      throw_arg(env, "pooled must hold rows of " + std::to_string(h->tail.in));
    std::vector<float> x(a.Data(), a.Data() + a.ElementLength());
    return start_job(
        env,
        [h, x = std::move(x)]() {
          std::unique_lock<std::mutex> lock = h->begun();
          const int64_t n = static_cast<int64_t>(x.size()) / h->tail.in;
          std::vector<float> y(static_cast<size_t>(n * h->tail.dim));
          train::head_features(h->head(), h->config.head, x.data(), n, y.data());
          unit_rows(y.data(), n, h->tail.dim);
          return y;
        },
        [](Napi::Env env, const std::vector<float>& y) -> Napi::Value {
          Napi::Float32Array out = Napi::Float32Array::New(env, y.size());
          if (!y.empty()) std::memcpy(out.Data(), y.data(), y.size() * sizeof(float));
          return out;
        });
  }
  Napi::Value State(const Napi::CallbackInfo& info) {
    std::shared_ptr<HeadTier> h = live(info.Env());
    return start_job(
        info.Env(),
        [h]() {
          std::unique_lock<std::mutex> lock = h->begun();
          return h->stage ? train::save_stage_state(*h->stage_state)
                          : train::save_head_state(*h->state);
        },
        [](Napi::Env env, const std::vector<uint8_t>& b) -> Napi::Value {
          return Napi::Buffer<uint8_t>::Copy(env, b.data(), b.size());
        });
  }
  // restore(bytes: Uint8Array): after begin() with the same data and config.
  Napi::Value Restore(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<HeadTier> h = live(env);
    size_t len = 0;
    const uint8_t* p = info.Length() < 1 ? nullptr : u8_bytes(info[0], &len);
    if (p == nullptr) throw_arg(env, "restore(bytes): bytes must be a Uint8Array");
    std::vector<uint8_t> bytes(p, p + len);
    return start_job(
        env,
        [h, bytes = std::move(bytes)]() {
          std::unique_lock<std::mutex> lock = h->begun();
          try {
            if (h->stage)
              train::load_stage_state(bytes.data(), bytes.size(), h->stage_state.get());
            else
              train::load_head_state(bytes.data(), bytes.size(), h->state.get());
          } catch (const std::invalid_argument& e) {
            throw ModelError(code::kInvalidArg, "", -1, "", e.what());
          }
          return h->stage ? h->stage_state->epoch : h->state->epoch;
        },
        [](Napi::Env env, int64_t epoch) { return Napi::Number::New(env, epoch); });
  }
  // params() -> [{ name, dims, data: Float32Array, role }]: every loaded float32 parameter in
  // program order, the tail's with the run's weights (role: convWeight, convBias, bnScale,
  // bnBias, bnMean, bnVariance; '' for the frozen rest), then the FC head (role fc, name '').
  Napi::Value Params(const Napi::CallbackInfo& info) {
    std::shared_ptr<HeadTier> h = live(info.Env());
    return start_job(
        info.Env(),
        [h]() {
          std::unique_lock<std::mutex> lock = h->begun();
          return train::tail_params(h->model->program, h->tail, h->head(), stage_values(*h));
        },
        [](Napi::Env env, const std::vector<train::TailParam>& es) -> Napi::Value {
          Napi::Array arr = Napi::Array::New(env, es.size());
          for (size_t k = 0; k < es.size(); ++k) {
            Napi::Object o = Napi::Object::New(env);
            o.Set("name", es[k].name);
            o.Set("role", es[k].role);
            Napi::Array dims = Napi::Array::New(env, es[k].dims.size());
            for (size_t d = 0; d < es[k].dims.size(); ++d)
              dims.Set(static_cast<uint32_t>(d), static_cast<double>(es[k].dims[d]));
            o.Set("dims", dims);
            Napi::Float32Array a = Napi::Float32Array::New(env, es[k].data.size());
            if (!es[k].data.empty())
              std::memcpy(a.Data(), es[k].data.data(), es[k].data.size() * sizeof(float));
            o.Set("data", a);
            arr.Set(static_cast<uint32_t>(k), o);
          }
          return arr;
        });
  }
  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<HeadTier> h = live(env);
    std::string dir = nonempty_string_arg(info, 0, "output directory must be a non-empty string");
    return start_job(
        env,
        [h, dir]() {
          std::unique_lock<std::mutex> lock = h->begun();
          train::write_trained_model(*h->model, h->tail, h->head(), dir, stage_values(*h));
          return dir;
        },
        [](Napi::Env env, const std::string& d) { return Napi::String::New(env, d); });
  }
  Napi::Value EpochBatches(const Napi::CallbackInfo& info) {
    std::shared_ptr<HeadTier> h = live(info.Env());
    if (!h->stage) throw_arg(info.Env(), "epochBatches(): the last-stage tier only");
    return stage_epoch_batches(info, h);
  }
  Napi::Value Step(const Napi::CallbackInfo& info) {
    std::shared_ptr<HeadTier> h = live(info.Env());
    if (!h->stage) throw_arg(info.Env(), "step(): the last-stage tier only");
    return stage_step(info, h);
  }
  static std::vector<train::ParamValue> stage_values(const HeadTier& h) {
    return h.stage ? train::stage_param_values(h.blocks, h.stage_state->weights)
                   : std::vector<train::ParamValue>();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    tier_.reset();  // jobs in flight hold their own reference
    return info.Env().Undefined();
  }

  std::shared_ptr<HeadTier> tier_;
};

// openHeadTier(path, { runMode, threads, tier, ...load options }): loads the model, finds its
// tail (normal mode) and builds the executor of the frozen part (in the run mode asked for):
// up to the pooled features (tier 'head'), or up to stage 4 (tier 'last-stage').
Napi::Value OpenHeadTier(const Napi::CallbackInfo& info) {
  Request req = parse_request(info, 1);
  int64_t threads = 1;
  bool stage = false;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value tv = info[1].As<Napi::Object>().Get("threads");
    if (!tv.IsUndefined() && !integer_in(tv, 1, 1024, &threads))
      throw_arg(info.Env(), "threads must be an integer between 1 and 1024");
    Napi::Value tier = info[1].As<Napi::Object>().Get("tier");
    if (!tier.IsUndefined() &&
        (!tier.IsString() || (tier.As<Napi::String>().Utf8Value() != "head" &&
                              tier.As<Napi::String>().Utf8Value() != "last-stage")))
      throw_arg(info.Env(), "tier must be 'head' or 'last-stage'");
    stage = tier.IsString() && tier.As<Napi::String>().Utf8Value() == "last-stage";
  }
  return start_job(
      info.Env(),
      [req = std::move(req), threads, stage]() {
        auto h = std::make_shared<HeadTier>();
        h->model = load(req);
        h->threads = static_cast<int>(threads);
        Executor normal(h->model);
        h->tail = train::find_shitu_tail(normal, h->model->dir);
        if (stage) {
          open_stage(h.get(), normal, req.exec);
          return h;
        }
        auto cut = std::make_shared<LoadedModel>(*h->model);
        cut->program.outputs = {{"pooled", h->tail.pooled, 0}};
        h->pooled = std::make_shared<Executor>(cut, req.exec);
        return h;
      },
      [](Napi::Env env, std::shared_ptr<HeadTier>& h) -> Napi::Value {
        auto* data = env.GetInstanceData<AddonData>();
        auto holder = Napi::External<std::shared_ptr<HeadTier>>::New(
            env, new std::shared_ptr<HeadTier>(std::move(h)),
            [](Napi::Env, std::shared_ptr<HeadTier>* p) { delete p; });
        return data->head_tier.New({holder});
      });
}

}  // namespace

void init_train(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = NativeHeadTier::Init(env);
  env.GetInstanceData<AddonData>()->head_tier = Napi::Persistent(cls);
  exports.Set("openHeadTier", Napi::Function::New(env, OpenHeadTier, "openHeadTier"));
}

}  // namespace addon
}  // namespace pif
