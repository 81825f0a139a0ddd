// The predictor: loadModel() and the NativeModel it resolves, a loaded model held in native
// memory until close(), with info(), engine(), run() (tensors) and runImages() (the
// image-feature batch: preprocess, run, unit-length rows, all in one job).
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/calibrate.h"
#include "addon/image_batch.h"
#include "addon/job.h"
#include "addon/model_info.h"
#include "runtime/executor.h"

namespace pif {
namespace addon {
namespace {

// What a NativeModel holds: the model and, for predictors, its executor.
struct Loaded {
  std::shared_ptr<const LoadedModel> model;
  std::shared_ptr<Executor> executor;
};

Napi::Object fallback_to_js(Napi::Env env, const Node& node, const PathNote& pn) {
  Napi::Object f = Napi::Object::New(env);
  f.Set("node", node.where());
  f.Set("kernel", node.def->name);
  f.Set("path", pn.path);
  f.Set("impl", pn.impl);
  f.Set("reason", pn.reason);
  f.Set("shape", pn.shape);
  f.Set("stages", pn.stages);
  f.Set("fusedRefused", pn.fused_refused);
  return f;
}

// Adds `n` to the number under `key` (0 when absent).
void count(Napi::Object o, const std::string& key, double n) {
  double prev = o.Has(key) ? o.Get(key).As<Napi::Number>().DoubleValue() : 0;
  o.Set(key, prev + n);
}

// How the executor runs a model: node count, oneDNN-bound nodes, passes, fallbacks.
Napi::Value engine_to_js(Napi::Env env, const Executor& ex) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("nodes", static_cast<double>(ex.nodes().size()));
  o.Set("dnnlNodes", ex.dnnl_nodes());
  Napi::Object passes = Napi::Object::New(env);
  for (const auto& kv : ex.pass_report()) count(passes, kv.first, kv.second);
  o.Set("passes", passes);
  Napi::Object ops = Napi::Object::New(env);
  for (const Node& n : ex.nodes()) count(ops, n.def->name, 1);
  o.Set("ops", ops);
  // hpi: every node on a reference kernel (no oneDNN kernel for its op),
  // and every configuration a oneDNN-bound node ran off its fused primitive.
  Napi::Array fallbacks = Napi::Array::New(env);
  std::vector<std::vector<PathNote>> notes = ex.path_notes();
  for (size_t i = 0; i < notes.size(); ++i) {
    const Node& node = ex.nodes()[i];
    if (ex.hpi() && !ex.dnnl_bound(i)) {
      PathNote ref;
      ref.path = "reference";
      ref.reason = "no oneDNN kernel for this op";
      fallbacks.Set(fallbacks.Length(), fallback_to_js(env, node, ref));
    }
    for (const PathNote& pn : notes[i])
      fallbacks.Set(fallbacks.Length(), fallback_to_js(env, node, pn));
  }
  o.Set("fallbacks", fallbacks);
  return o;
}

// One run() input, copied: JS may reuse its buffer as soon as the call returns.
NamedTensor tensor_arg(Napi::Env env, const Napi::Value& v, uint32_t k) {
  if (!v.IsObject()) throw_arg(env, "input " + std::to_string(k) + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  NamedTensor t;
  if (!o.Get("name").IsString())
    throw_arg(env, "input " + std::to_string(k) + ": name must be a string");
  t.name = o.Get("name").As<Napi::String>().Utf8Value();
  std::string where = "input '" + t.name + "'";
  if (!o.Get("dtype").IsString() ||
      !dtype_from_name(o.Get("dtype").As<Napi::String>().Utf8Value(), &t.dtype) ||
      t.dtype == DType::Undefined)
    throw_arg(env, where + ": dtype must be a dtype name such as 'float32'");
  if (!o.Get("shape").IsArray()) throw_arg(env, where + ": shape must be an array");
  Napi::Array shape = o.Get("shape").As<Napi::Array>();
  if (shape.Length() > 16) throw_arg(env, where + ": rank over 16");
  for (uint32_t d = 0; d < shape.Length(); ++d) {
    int64_t x = 0;
    if (!integer_in(shape.Get(d), 0, kMaxSafeInteger, &x))
      throw_arg(env, where + ": shape entries must be non-negative integers");
    t.dims.push_back(x);
  }
  Napi::Value data = o.Get("data");
  const uint8_t* bytes = nullptr;
  size_t len = 0;
  if (data.IsTypedArray()) {
    Napi::TypedArray ta = data.As<Napi::TypedArray>();
    bytes = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    len = ta.ByteLength();
  } else if (data.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = data.As<Napi::ArrayBuffer>();
    bytes = static_cast<const uint8_t*>(ab.Data());
    len = ab.ByteLength();
  } else {
    throw_arg(env, where + ": data must be a TypedArray, Buffer or ArrayBuffer");
  }
  t.data.assign(bytes, bytes + len);
  return t;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(
        env, "NativeModel",
        {InstanceMethod("info", &NativeModel::Info), InstanceMethod("close", &NativeModel::Close),
         InstanceMethod("run", &NativeModel::Run), InstanceMethod("engine", &NativeModel::Engine),
         InstanceMethod("runImages", &NativeModel::RunImages),
         InstanceMethod("calibrate", &NativeModel::Calibrate),
         InstanceMethod("convLayers", &NativeModel::ConvLayers),
         InstanceAccessor("closed", &NativeModel::Closed, nullptr)});
  }
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw_arg(info.Env(), "NativeModel cannot be constructed directly; use loadModel()");
    loaded_ = *info[0].As<Napi::External<Loaded>>().Data();
    info_ = describe(*loaded_.model);
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    check_open(info.Env());
    return to_js(info.Env(), info_);
  }
  Napi::Value Engine(const Napi::CallbackInfo& info) {
    check_open(info.Env());
    std::shared_ptr<Executor> ex = executor();
    return ex ? engine_to_js(info.Env(), *ex) : info.Env().Null();
  }
  // calibrate(inputs, { threads, percentiles }): see calibrate.h.
  Napi::Value Calibrate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Executor> ex = runnable(env);
    if (!ex->hpi()) throw_arg(env, "calibrate: the model must be loaded in hpi mode");
    if (info.Length() < 1 || !info[0].IsArray())
      throw_arg(env, "inputs must be an array of tensors");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<NamedTensor> inputs;
    for (uint32_t k = 0; k < arr.Length(); ++k) inputs.push_back(tensor_arg(env, arr.Get(k), k));
    std::vector<double> pct;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Value p = info[1].As<Napi::Object>().Get("percentiles");
      if (p.IsArray()) {
        Napi::Array pa = p.As<Napi::Array>();
        for (uint32_t k = 0; k < pa.Length(); ++k) {
          double v = pa.Get(k).ToNumber().DoubleValue();
          if (!(v >= 0 && v <= 100)) throw_arg(env, "percentiles must lie in [0, 100]");
          pct.push_back(v);
        }
      }
    }
    return start_calibration(env, std::move(ex), std::move(inputs), threads_arg(env, info, 1),
                             std::move(pct));
  }
  Napi::Value ConvLayers(const Napi::CallbackInfo& info) {
    std::shared_ptr<Executor> ex = runnable(info.Env());
    return conv_layers_to_js(info.Env(), *ex);
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    // Runs in flight hold their own reference; memory goes when they finish.
    loaded_ = Loaded();
    return info.Env().Undefined();
  }
  Napi::Value Closed(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    return Napi::Boolean::New(info.Env(), !loaded_.model);
  }
  // run(inputs, { threads }): inputs are copied on the main thread.
  Napi::Value Run(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Executor> ex = runnable(env);
    if (info.Length() < 1 || !info[0].IsArray())
      throw_arg(env, "inputs must be an array of tensors");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<NamedTensor> inputs;
    for (uint32_t k = 0; k < arr.Length(); ++k) inputs.push_back(tensor_arg(env, arr.Get(k), k));
    const int threads = threads_arg(env, info, 1);
    return start_job(
        env,
        [ex = std::move(ex), inputs = std::move(inputs), threads]() mutable {
          std::vector<NamedTensor> outputs = ex->run(inputs, threads);
          std::vector<NamedTensor>().swap(inputs);
          return outputs;
        },
        outputs_to_js);
  }
  // runImages(images, { scale, mean, std }, { threads, stream }): see image_batch.h. Batches
  // of one stream (a positive integer the caller picks) run one at a time; each is prepared
  // while the one before it runs. Resolves { features, rows, failed }.
  Napi::Value RunImages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::shared_ptr<Executor> ex = runnable(env);
    if (info_.inputs.size() != 1) throw_arg(env, "runImages: the model must have one input");
    if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsObject())
      throw_arg(env, "runImages(images, norm, options): bad arguments");
    ImageBatch b;
    b.input = info_.inputs[0].name;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (loaded_.model) b.dir = loaded_.model->dir;
    }
    Napi::Array arr = info[0].As<Napi::Array>();
    images_and_norm(env, arr, info[1].As<Napi::Object>(), "runImages", &b);
    b.threads = threads_arg(env, info, 2);
    b.gate = stream_gate(env, info, 2);
    return start_job(
        env, [ex = std::move(ex), b = std::move(b)]() mutable { return run_image_batch(*ex, b); },
        image_batch_to_js, arr);
  }
  // The gate of info[index].stream (null when absent). Gates live while a job holds them.
  std::shared_ptr<std::mutex> stream_gate(Napi::Env env, const Napi::CallbackInfo& info,
                                          size_t index) {
    if (info.Length() <= index || !info[index].IsObject()) return nullptr;
    Napi::Value sv = info[index].As<Napi::Object>().Get("stream");
    if (sv.IsUndefined()) return nullptr;
    int64_t id = 0;
    if (!integer_in(sv, 1, kMaxSafeInteger, &id))
      throw_arg(env, "stream must be a positive integer");
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = gates_.begin(); it != gates_.end();)
      it = it->second.expired() ? gates_.erase(it) : std::next(it);
    std::shared_ptr<std::mutex> gate = gates_[id].lock();
    if (!gate) gates_[id] = gate = std::make_shared<std::mutex>();
    return gate;
  }
  // The executor of an open predictor; throws otherwise.
  std::shared_ptr<Executor> runnable(Napi::Env env) {
    check_open(env);
    std::shared_ptr<Executor> ex = executor();
    if (!ex)
      throw_arg(env, "this model was loaded for inspection only; use loadPredictor() to run it");
    return ex;
  }
  // info[index].threads: 1 when absent.
  static int threads_arg(Napi::Env env, const Napi::CallbackInfo& info, size_t index) {
    int64_t threads = 1;
    if (info.Length() > index && info[index].IsObject()) {
      Napi::Value tv = info[index].As<Napi::Object>().Get("threads");
      if (!tv.IsUndefined() && !integer_in(tv, 1, 1024, &threads))
        throw_arg(env, "threads must be an integer between 1 and 1024");
    }
    return static_cast<int>(threads);
  }
  std::shared_ptr<Executor> executor() {
    std::lock_guard<std::mutex> lock(mu_);
    return loaded_.executor;
  }
  void check_open(Napi::Env env) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!loaded_.model) {
      ErrorInfo e;
      e.code = code::kClosed;
      e.message = "model is closed";
      throw make_error(env, e);
    }
  }

  std::mutex mu_;
  Loaded loaded_;
  std::map<int64_t, std::weak_ptr<std::mutex>> gates_;
  ModelInfo info_;
};

// loadModel(path, options): loads (and with options.executable builds the executor) off the
// main thread; resolves a NativeModel.
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  return start_job(
      info.Env(),
      [req = parse_request(info, 1)]() {
        Loaded loaded;
        auto m = load(req);
        loaded.model = m;
        if (req.executable) loaded.executor = std::make_shared<Executor>(m, req.exec);
        return loaded;
      },
      [](Napi::Env env, Loaded& loaded) -> Napi::Value {
        auto* data = env.GetInstanceData<AddonData>();
        auto holder = Napi::External<Loaded>::New(env, new Loaded(std::move(loaded)),
                                                  [](Napi::Env, Loaded* p) { delete p; });
        return data->native_model.New({holder});
      });
}

}  // namespace

void init_predictor(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = NativeModel::Init(env);
  env.GetInstanceData<AddonData>()->native_model = Napi::Persistent(cls);
  exports.Set("NativeModel", cls);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
}

}  // namespace addon
}  // namespace pif
