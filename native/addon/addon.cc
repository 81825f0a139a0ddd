// N-API bindings. Each exported function validates and copies its arguments
// into a plain struct on the main thread, does all file and model work in an
// AsyncWorker (the event loop never blocks on it), and settles a promise with
// the result or with an Error carrying a stable `code`, `file`, `offset` and
// `where`. C++ exceptions never cross into JS unconverted.
//
// worker_threads: while a worker's environment stops (Worker.terminate(), process.exit() in
// the worker) JS can no longer run, and every N-API call that could run JS fails. A binding
// called then (its JS was interrupted mid-call) throws Napi::Error, and node-addon-api's
// callback wrapper converts it with napi_throw, which fails too: without the define below it
// rethrows into Node's C frames and std::terminate aborts the whole process. With it, an
// exception that cannot be thrown any more is dropped. (It must precede napi.h; this is the
// only file that includes napi.h, so every inline copy of node-addon-api agrees.)
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "builder/model_builder.h"
#include "builder/random_weights.h"
#include "export/onnx.h"
#include "format/model_dir.h"
#include "passes/constant_fold.h"
#include "preprocess/resize_linear.h"
#include "retrieval/metrics.h"
#include "retrieval/similarity.h"
#include "runtime/executor.h"
#include "runtime/peak_probe.h"

namespace pif {
namespace {

constexpr const char* kInvalidArg = "PIF_INVALID_ARG";

// ---------------------------------------------------------------------------
// Plain result structs, filled off the main thread.

struct IoInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

struct ModelInfo {
  std::string format;
  bool has_version = false;
  int64_t version = 0;
  std::string program_file, params_file, params_layout;
  size_t blocks = 0, op_count = 0;
  std::map<std::string, uint64_t> ops;
  std::vector<IoInfo> inputs, outputs;
  size_t param_count = 0;
  uint64_t param_bytes = 0;
  bool params_loaded = false;
};

struct ErrorInfo {
  std::string code, message, file, where;
  int64_t offset = -1;
};

ModelInfo describe(const LoadedModel& m) {
  const Program& p = m.program;
  ModelInfo info;
  info.format = p.format == ProgramFormat::Pir ? "pir" : "pdmodel";
  info.has_version = p.has_version;
  info.version = p.version;
  info.program_file = m.program_file;
  info.params_file = m.params_file;
  info.params_layout = m.params_layout == ParamsLayout::Combined   ? "combined"
                       : m.params_layout == ParamsLayout::Separate ? "separate"
                                                                   : "none";
  info.blocks = p.blocks.size();
  info.op_count = p.op_count();
  for (const Block& b : p.blocks)
    for (const Op& op : b.ops) ++info.ops[op.type];
  auto io = [&](const std::vector<IoBinding>& list, std::vector<IoInfo>* out) {
    for (const IoBinding& b : list) {
      const Value& v = p.values[b.value];
      out->push_back({b.name, dtype_name(v.type.dtype), v.type.dims});
    }
  };
  io(p.inputs, &info.inputs);
  io(p.outputs, &info.outputs);
  info.param_count = p.params.size();
  info.params_loaded = !p.params.empty();
  for (const Parameter& prm : p.params) {
    uint64_t n = dtype_size(prm.tensor.dtype);
    for (int64_t d : prm.tensor.dims) n *= static_cast<uint64_t>(d < 0 ? 0 : d);
    info.param_bytes += n;
    info.params_loaded = info.params_loaded && prm.loaded;
  }
  return info;
}

Napi::Value to_js(Napi::Env env, const ModelInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("format", info.format);
  o.Set("version", info.has_version
                       ? Napi::Value(Napi::Number::New(env, static_cast<double>(info.version)))
                       : env.Null());
  o.Set("programFile", info.program_file);
  o.Set("paramsFile",
        info.params_file.empty() ? env.Null() : Napi::String::New(env, info.params_file));
  o.Set("paramsLayout", info.params_layout);
  o.Set("blocks", Napi::Number::New(env, static_cast<double>(info.blocks)));
  o.Set("opCount", Napi::Number::New(env, static_cast<double>(info.op_count)));
  Napi::Object ops = Napi::Object::New(env);
  for (const auto& kv : info.ops)
    ops.Set(kv.first, Napi::Number::New(env, static_cast<double>(kv.second)));
  o.Set("ops", ops);
  auto io = [&](const std::vector<IoInfo>& list) {
    Napi::Array a = Napi::Array::New(env, list.size());
    for (size_t k = 0; k < list.size(); ++k) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("name", list[k].name);
      e.Set("dtype", list[k].dtype);
      Napi::Array shape = Napi::Array::New(env, list[k].shape.size());
      for (size_t d = 0; d < list[k].shape.size(); ++d)
        shape.Set(static_cast<uint32_t>(d),
                  Napi::Number::New(env, static_cast<double>(list[k].shape[d])));
      e.Set("shape", shape);
      a.Set(static_cast<uint32_t>(k), e);
    }
    return a;
  };
  o.Set("inputs", io(info.inputs));
  o.Set("outputs", io(info.outputs));
  Napi::Object params = Napi::Object::New(env);
  params.Set("count", Napi::Number::New(env, static_cast<double>(info.param_count)));
  params.Set("bytes", Napi::Number::New(env, static_cast<double>(info.param_bytes)));
  params.Set("loaded", Napi::Boolean::New(env, info.params_loaded));
  o.Set("parameters", params);
  return o;
}

Napi::Error make_error(Napi::Env env, const ErrorInfo& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  err.Set("code", e.code);
  err.Set("file", e.file);
  err.Set("offset", Napi::Number::New(env, static_cast<double>(e.offset)));
  err.Set("where", e.where);
  return err;
}

[[noreturn]] void throw_arg(Napi::Env env, const std::string& msg) {
  ErrorInfo e;
  e.code = kInvalidArg;
  e.message = msg;
  throw make_error(env, e);
}

// ---------------------------------------------------------------------------
// Argument parsing (main thread).

struct Request {
  std::string path;
  LoadOptions load;
  bool executable = false;      // build the executor at load (loadPredictor)
  bool random_weights = false;  // bind seeded random data to missing parameters
  uint64_t random_seed = 0;
  ExecutorOptions exec;  // runMode 'hpi', precision, passes (tests)
};

uint64_t limit_value(Napi::Env env, const Napi::Object& o, const char* key, uint64_t def) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return def;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_arg(env, std::string("limits.") + key + " must be a positive integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 1) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    throw_arg(env, std::string("limits.") + key + " must be a positive integer");
  return static_cast<uint64_t>(d);
}

Request parse_request(const Napi::CallbackInfo& info, size_t opts_index) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_arg(env, "model path must be a string");
  Request r;
  r.path = info[0].As<Napi::String>().Utf8Value();
  if (r.path.empty()) throw_arg(env, "model path must not be empty");
  if (info.Length() > opts_index && !info[opts_index].IsUndefined()) {
    if (!info[opts_index].IsObject()) throw_arg(env, "options must be an object");
    Napi::Object o = info[opts_index].As<Napi::Object>();
    if (o.Has("requireParams") && !o.Get("requireParams").IsUndefined())
      r.load.require_params = o.Get("requireParams").ToBoolean().Value();
    if (o.Has("executable") && !o.Get("executable").IsUndefined())
      r.executable = o.Get("executable").ToBoolean().Value();
    if (o.Has("randomWeights") && !o.Get("randomWeights").IsUndefined()) {
      Napi::Value v = o.Get("randomWeights");
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
        throw_arg(env, "randomWeights must be a non-negative integer seed");
      r.random_weights = true;
      r.random_seed = static_cast<uint64_t>(d);
      r.load.require_params = false;
    }
    if (o.Has("runMode") && !o.Get("runMode").IsUndefined()) {
      Napi::Value v = o.Get("runMode");
      std::string mode = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      if (mode != "normal" && mode != "hpi") throw_arg(env, "runMode must be 'normal' or 'hpi'");
      r.exec.hpi = mode == "hpi";
    }
    if (o.Has("precision") && !o.Get("precision").IsUndefined()) {
      Napi::Value v = o.Get("precision");
      std::string prec = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      if (prec != "fp32" && prec != "bf16") throw_arg(env, "precision must be 'fp32' or 'bf16'");
      r.exec.bf16 = prec == "bf16";
    }
    if (o.Has("passes") && !o.Get("passes").IsUndefined()) {
      if (!o.Get("passes").IsArray()) throw_arg(env, "passes must be an array of pass names");
      Napi::Array a = o.Get("passes").As<Napi::Array>();
      for (uint32_t k = 0; k < a.Length(); ++k) {
        if (!a.Get(k).IsString()) throw_arg(env, "passes must be an array of pass names");
        r.exec.passes.push_back(a.Get(k).As<Napi::String>().Utf8Value());
      }
    }
    if (o.Has("limits") && !o.Get("limits").IsUndefined()) {
      if (!o.Get("limits").IsObject()) throw_arg(env, "limits must be an object");
      Napi::Object l = o.Get("limits").As<Napi::Object>();
      LoadLimits& lim = r.load.limits;
      lim.max_file_bytes = limit_value(env, l, "maxFileBytes", lim.max_file_bytes);
      lim.max_tensor_bytes = limit_value(env, l, "maxTensorBytes", lim.max_tensor_bytes);
      lim.max_total_param_bytes =
          limit_value(env, l, "maxTotalParamBytes", lim.max_total_param_bytes);
      lim.max_rank = static_cast<uint32_t>(limit_value(env, l, "maxRank", lim.max_rank));
      lim.max_ops = static_cast<uint32_t>(limit_value(env, l, "maxOps", lim.max_ops));
      lim.max_values = static_cast<uint32_t>(limit_value(env, l, "maxValues", lim.max_values));
      lim.max_blocks = static_cast<uint32_t>(limit_value(env, l, "maxBlocks", lim.max_blocks));
      lim.max_depth = static_cast<uint32_t>(limit_value(env, l, "maxDepth", lim.max_depth));
    }
  }
  return r;
}

// Loads and folds: the one place the addon turns a path into an IR.
std::shared_ptr<LoadedModel> load(const Request& r) {
  auto m = std::make_shared<LoadedModel>(load_model(r.path, r.load));
  if (r.random_weights) bind_random_params(&m->program, r.random_seed);
  fold_constants(&m->program);
  return m;
}

// What a NativeModel holds: the model and, for predictors, its executor.
struct Loaded {
  std::shared_ptr<const LoadedModel> model;
  std::shared_ptr<Executor> executor;
};

// ---------------------------------------------------------------------------
// Worker: runs `work` off the main thread, settles a promise.

class Worker : public Napi::AsyncWorker {
 public:
  explicit Worker(Napi::Env env)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Work() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  void Execute() override {
    try {
      Work();
    } catch (const ModelError& e) {
      err_ = {e.code(), e.what(), e.file(), e.where(), e.offset()};
      SetError(e.what());
    } catch (const retrieval::RetrievalError& e) {
      err_ = {kInvalidArg, e.what(), "", "", -1};
      SetError(err_.message);
    } catch (const std::bad_alloc&) {
      err_ = {code::kLimit, "out of memory (the model, its inputs or results are too large here)",
              "", "", -1};
      SetError(err_.message);
    } catch (const std::exception& e) {
      err_ = {"PIF_INTERNAL", std::string("internal error: ") + e.what(), "", "", -1};
      SetError(err_.message);
    }
  }
  void OnOK() override { Settle(true); }
  void OnError(const Napi::Error&) override { Settle(false); }

 private:
  // Settles the promise on the JS thread. Node also completes a job that is in flight while a
  // worker_thread's environment stops: it waits for Execute, then calls OnOK/OnError with JS
  // disabled, and Object::Set, Resolve and Reject all fail with Napi::Error. Nobody can observe
  // the promise then, so it is dropped here rather than left to node-addon-api's wrapper (see
  // the top of the file). Any other exception becomes a rejection: the wrapper converts only
  // Napi::Error, and anything else escaping would terminate the process.
  void Settle(bool ok) {
    Napi::Env env = Env();
    try {
      Napi::HandleScope scope(env);
      try {
        if (ok)
          deferred_.Resolve(Result(env));
        else
          deferred_.Reject(make_error(env, err_).Value());
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      } catch (const std::exception& e) {
        // Building the result ran out of memory, or the like: still a rejection.
        deferred_.Reject(make_error(env, {"PIF_INTERNAL",
                                          std::string("internal error: ") + e.what(), "", "", -1})
                             .Value());
      }
    } catch (const Napi::Error&) {
      // The environment is going away (JS cannot run): nothing is left to settle.
    } catch (const std::exception&) {
      // Making the PIF_INTERNAL error failed as well: the same.
    }
  }

  Napi::Promise::Deferred deferred_;
  ErrorInfo err_;
};

class InspectWorker : public Worker {
 public:
  enum class Mode : uint8_t { Info, Text, Json };
  InspectWorker(Napi::Env env, Request r, Mode mode)
      : Worker(env), req_(std::move(r)), mode_(mode) {}
  void Work() override {
    auto m = load(req_);
    if (mode_ == Mode::Text)
      text_ = dump_program(m->program);
    else if (mode_ == Mode::Json)
      text_ = program_json(m->program);
    else
      info_ = describe(*m);
  }
  Napi::Value Result(Napi::Env env) override {
    return mode_ == Mode::Info ? to_js(env, info_) : Napi::Value(Napi::String::New(env, text_));
  }

 private:
  Request req_;
  Mode mode_;
  ModelInfo info_;
  std::string text_;
};

class SaveWorker : public Worker {
 public:
  SaveWorker(Napi::Env env, Request r, std::string dst, ParamsLayout layout)
      : Worker(env), req_(std::move(r)), dst_(std::move(dst)), layout_(layout) {}
  void Work() override {
    auto m = load(req_);
    ParamsLayout layout = layout_ != ParamsLayout::None ? layout_ : m->params_layout;
    saved_ = save_model(*m, dst_, layout);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("programFile", saved_.program_file);
    o.Set("paramsFile",
          saved_.params_file.empty() ? env.Null() : Napi::String::New(env, saved_.params_file));
    return o;
  }

 private:
  Request req_;
  std::string dst_;
  ParamsLayout layout_;
  SavedFiles saved_;
};

// ---------------------------------------------------------------------------
// NativeModel: a loaded model held in native memory until close().

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(
        env, "NativeModel",
        {InstanceMethod("info", &NativeModel::Info), InstanceMethod("close", &NativeModel::Close),
         InstanceMethod("run", &NativeModel::Run), InstanceMethod("engine", &NativeModel::Engine),
         InstanceAccessor("closed", &NativeModel::Closed, nullptr)});
  }
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    if (info.Length() != 1 || !info[0].IsExternal())
      throw_arg(info.Env(), "NativeModel cannot be constructed directly; use loadModel()");
    auto* holder = info[0].As<Napi::External<Loaded>>().Data();
    loaded_ = *holder;
    info_ = describe(*loaded_.model);
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    check_open(info.Env());
    return to_js(info.Env(), info_);
  }
  // How the executor runs this model: node count, oneDNN-bound nodes, passes.
  Napi::Value Engine(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_open(env);
    std::shared_ptr<Executor> ex;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ex = loaded_.executor;
    }
    if (!ex) return env.Null();
    Napi::Object o = Napi::Object::New(env);
    o.Set("nodes", static_cast<double>(ex->nodes().size()));
    o.Set("dnnlNodes", ex->dnnl_nodes());
    Napi::Object passes = Napi::Object::New(env);
    for (const auto& kv : ex->pass_report()) {
      double prev =
          passes.Has(kv.first) ? passes.Get(kv.first).As<Napi::Number>().DoubleValue() : 0;
      passes.Set(kv.first, prev + kv.second);
    }
    o.Set("passes", passes);
    Napi::Object ops = Napi::Object::New(env);
    for (const Node& n : ex->nodes()) {
      double prev =
          ops.Has(n.def->name) ? ops.Get(n.def->name).As<Napi::Number>().DoubleValue() : 0;
      ops.Set(n.def->name, prev + 1);
    }
    o.Set("ops", ops);
    // hpi: every node on a reference kernel (no oneDNN kernel for its op),
    // and every configuration a oneDNN-bound node ran off its fused primitive.
    Napi::Array fallbacks = Napi::Array::New(env);
    std::vector<std::vector<PathNote>> notes = ex->path_notes();
    for (size_t i = 0; i < notes.size(); ++i) {
      const Node& node = ex->nodes()[i];
      if (ex->hpi() && !ex->dnnl_bound(i)) {
        Napi::Object f = Napi::Object::New(env);
        f.Set("node", node.where());
        f.Set("kernel", node.def->name);
        f.Set("path", "reference");
        f.Set("impl", "");
        f.Set("reason", "no oneDNN kernel for this op");
        f.Set("shape", "");
        f.Set("stages", 0);
        f.Set("fusedRefused", false);
        fallbacks.Set(fallbacks.Length(), f);
      }
      for (const PathNote& pn : notes[i]) {
        Napi::Object f = Napi::Object::New(env);
        f.Set("node", ex->nodes()[i].where());
        f.Set("kernel", ex->nodes()[i].def->name);
        f.Set("path", pn.path);
        f.Set("impl", pn.impl);
        f.Set("reason", pn.reason);
        f.Set("shape", pn.shape);
        f.Set("stages", pn.stages);
        f.Set("fusedRefused", pn.fused_refused);
        fallbacks.Set(fallbacks.Length(), f);
      }
    }
    o.Set("fallbacks", fallbacks);
    return o;
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
  Napi::Value Run(const Napi::CallbackInfo& info);
  void check_open(Napi::Env env) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!loaded_.model) {
      ErrorInfo e;
      e.code = "PIF_CLOSED";
      e.message = "model is closed";
      throw make_error(env, e);
    }
  }

  std::mutex mu_;
  Loaded loaded_;
  ModelInfo info_;
};

struct AddonData {
  Napi::FunctionReference native_model;
};

class LoadWorker : public Worker {
 public:
  LoadWorker(Napi::Env env, Request r) : Worker(env), req_(std::move(r)) {}
  void Work() override {
    auto m = load(req_);
    loaded_.model = m;
    if (req_.executable) loaded_.executor = std::make_shared<Executor>(m, req_.exec);
  }
  Napi::Value Result(Napi::Env env) override {
    auto* data = env.GetInstanceData<AddonData>();
    auto holder = Napi::External<Loaded>::New(env, new Loaded(loaded_),
                                              [](Napi::Env, Loaded* p) { delete p; });
    return data->native_model.New({holder});
  }

 private:
  Request req_;
  Loaded loaded_;
};

// run(): inputs are copied on the main thread (JS may reuse its buffers as
// soon as the call returns); outputs are copied into JS-owned ArrayBuffers
// (Electron forbids external buffers over native memory).
class RunWorker : public Worker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<Executor> ex, std::vector<NamedTensor> inputs,
            int threads)
      : Worker(env), ex_(std::move(ex)), inputs_(std::move(inputs)), threads_(threads) {}
  void Work() override {
    outputs_ = ex_->run(inputs_, threads_);
    inputs_.clear();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array a = Napi::Array::New(env, outputs_.size());
    for (size_t k = 0; k < outputs_.size(); ++k) {
      const NamedTensor& t = outputs_[k];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t.name);
      o.Set("dtype", dtype_name(t.dtype));
      Napi::Array shape = Napi::Array::New(env, t.dims.size());
      for (size_t d = 0; d < t.dims.size(); ++d)
        shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(t.dims[d])));
      o.Set("shape", shape);
      Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, t.data.size());
      if (!t.data.empty()) std::memcpy(buf.Data(), t.data.data(), t.data.size());
      o.Set("data", buf);
      a.Set(static_cast<uint32_t>(k), o);
    }
    return a;
  }

 private:
  std::shared_ptr<Executor> ex_;
  std::vector<NamedTensor> inputs_;
  std::vector<NamedTensor> outputs_;
  int threads_;
};

Napi::Value NativeModel::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Executor> ex;
  {
    check_open(env);
    std::lock_guard<std::mutex> lock(mu_);
    ex = loaded_.executor;
  }
  if (!ex)
    throw_arg(env, "this model was loaded for inspection only; use loadPredictor() to run it");
  if (info.Length() < 1 || !info[0].IsArray()) throw_arg(env, "inputs must be an array of tensors");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<NamedTensor> inputs;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
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
      Napi::Value dv = shape.Get(d);
      double x = dv.IsNumber() ? dv.As<Napi::Number>().DoubleValue() : -1;
      if (!(x >= 0) || x > 9007199254740991.0 || x != static_cast<double>(static_cast<int64_t>(x)))
        throw_arg(env, where + ": shape entries must be non-negative integers");
      t.dims.push_back(static_cast<int64_t>(x));
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
    inputs.push_back(std::move(t));
  }
  int threads = 1;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value tv = info[1].As<Napi::Object>().Get("threads");
    if (!tv.IsUndefined()) {
      double x = tv.IsNumber() ? tv.As<Napi::Number>().DoubleValue() : 0;
      if (!(x >= 1) || x > 1024 || x != static_cast<double>(static_cast<int>(x)))
        throw_arg(env, "threads must be an integer between 1 and 1024");
      threads = static_cast<int>(x);
    }
  }
  auto* w = new RunWorker(env, std::move(ex), std::move(inputs), threads);
  auto p = w->Promise();
  w->Queue();
  return p;
}

class ExportOnnxWorker : public Worker {
 public:
  ExportOnnxWorker(Napi::Env env, Request r, std::string out, OnnxOptions opts)
      : Worker(env), req_(std::move(r)), out_(std::move(out)), opts_(std::move(opts)) {}
  void Work() override {
    auto m = load(req_);
    Executor ex(m);
    std::string bytes = export_onnx(ex, opts_);
    bytes_ = bytes.size();
    write_file_atomic(out_, bytes);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("file", out_);
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    return o;
  }

 private:
  Request req_;
  std::string out_;
  OnnxOptions opts_;
  size_t bytes_ = 0;
};

class BuildModelWorker : public Worker {
 public:
  BuildModelWorker(Napi::Env env, std::string name, std::string dir, ProgramFormat format,
                   uint64_t seed, BuildOptions opts)
      : Worker(env),
        name_(std::move(name)),
        dir_(std::move(dir)),
        format_(format),
        seed_(seed),
        opts_(opts) {}
  void Work() override {
    BuiltModel b = build_model(name_, format_, seed_, opts_);
    saved_ = save_model(b.model, dir_, ParamsLayout::Combined);
    yml_ = dir_ + "/inference.yml";
    write_file_atomic(yml_, b.inference_yml);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("programFile", saved_.program_file);
    o.Set("paramsFile", saved_.params_file);
    o.Set("configFile", yml_);
    return o;
  }

 private:
  std::string name_, dir_;
  ProgramFormat format_;
  uint64_t seed_;
  BuildOptions opts_;
  SavedFiles saved_;
  std::string yml_;
};

// exportOnnx(modelPath, outFile, { opset?, randomWeights?, limits? })
Napi::Value ExportOnnx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request r = parse_request(info, 2);
  if (info.Length() < 2 || !info[1].IsString() || info[1].As<Napi::String>().Utf8Value().empty())
    throw_arg(env, "output file must be a non-empty string");
  OnnxOptions opts;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Value v = info[2].As<Napi::Object>().Get("opset");
    if (!v.IsUndefined()) {
      double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
      if (d != 13 && d != 14 && d != 15 && d != 16 && d != 17)
        throw_arg(env, "opset must be an integer from 13 to 17");
      opts.opset = static_cast<int64_t>(d);
    }
  }
  opts.producer_version = "0.1.0";
  auto* w = new ExportOnnxWorker(env, std::move(r), info[1].As<Napi::String>().Utf8Value(), opts);
  auto p = w->Promise();
  w->Queue();
  return p;
}

// buildModel(name, outDir, { format: 'pir'|'legacy', seed, clipActivation: 'quick_gelu'|'gelu' })
Napi::Value BuildModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw_arg(env, "buildModel(name, outDir, options): name and outDir must be strings");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string dir = info[1].As<Napi::String>().Utf8Value();
  if (dir.empty()) throw_arg(env, "outDir must not be empty");
  ProgramFormat format = ProgramFormat::Pir;
  uint64_t seed = 0;
  BuildOptions opts;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    Napi::Value f = o.Get("format");
    if (!f.IsUndefined()) {
      std::string s = f.IsString() ? f.As<Napi::String>().Utf8Value() : "";
      if (s == "pir")
        format = ProgramFormat::Pir;
      else if (s == "legacy")
        format = ProgramFormat::Legacy;
      else
        throw_arg(env, "format must be 'pir' or 'legacy'");
    }
    Napi::Value sv = o.Get("seed");
    if (!sv.IsUndefined()) {
      double d = sv.IsNumber() ? sv.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
        throw_arg(env, "seed must be a non-negative integer");
      seed = static_cast<uint64_t>(d);
    }
    Napi::Value a = o.Get("clipActivation");
    if (!a.IsUndefined()) {
      std::string s = a.IsString() ? a.As<Napi::String>().Utf8Value() : "";
      if (s == "quick_gelu")
        opts.clip_activation = ClipActivation::QuickGelu;
      else if (s == "gelu")
        opts.clip_activation = ClipActivation::Gelu;
      else
        throw_arg(env, "clipActivation must be 'quick_gelu' or 'gelu'");
    }
  }
  auto* w = new BuildModelWorker(env, name, dir, format, seed, opts);
  auto p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value InspectModel(const Napi::CallbackInfo& info) {
  auto* w = new InspectWorker(info.Env(), parse_request(info, 1), InspectWorker::Mode::Info);
  auto p = w->Promise();
  w->Queue();
  return p;
}

// dumpModel(path, opts): the canonical IR text, or with opts.json the
// program as JSON (program_json: ops, slots, attributes, parameters).
Napi::Value DumpModel(const Napi::CallbackInfo& info) {
  Request r = parse_request(info, 1);
  bool json = info.Length() > 1 && info[1].IsObject() &&
              info[1].As<Napi::Object>().Get("json").ToBoolean().Value();
  auto* w = new InspectWorker(info.Env(), std::move(r),
                              json ? InspectWorker::Mode::Json : InspectWorker::Mode::Text);
  auto p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value SaveModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request r = parse_request(info, 2);
  if (info.Length() < 2 || !info[1].IsString() || info[1].As<Napi::String>().Utf8Value().empty())
    throw_arg(env, "destination directory must be a non-empty string");
  ParamsLayout layout = ParamsLayout::None;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Value l = info[2].As<Napi::Object>().Get("paramsLayout");
    if (!l.IsUndefined()) {
      std::string s = l.IsString() ? l.As<Napi::String>().Utf8Value() : "";
      if (s == "combined")
        layout = ParamsLayout::Combined;
      else if (s == "separate")
        layout = ParamsLayout::Separate;
      else
        throw_arg(env, "paramsLayout must be 'combined' or 'separate'");
    }
  }
  auto* w = new SaveWorker(env, std::move(r), info[1].As<Napi::String>().Utf8Value(), layout);
  auto p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  auto* w = new LoadWorker(info.Env(), parse_request(info, 1));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// preprocessImage(pixels, {width, height, channels}, {width, height, scale, mean, std}):
// OpenCV-exact INTER_LINEAR resize of interleaved uint8 pixels, then
// (x * scale - mean) / std into planar CHW float32, off the main thread.
// Resolves { resized: Uint8Array (HWC), tensor: Float32Array (CHW) }.
class PreprocessWorker : public Worker {
 public:
  PreprocessWorker(Napi::Env env, std::vector<uint8_t> src, int sw, int sh, int cn, int dw, int dh,
                   float scale, std::vector<float> mean, std::vector<float> stdv)
      : Worker(env),
        src_(std::move(src)),
        sw_(sw),
        sh_(sh),
        cn_(cn),
        dw_(dw),
        dh_(dh),
        scale_(scale),
        mean_(std::move(mean)),
        std_(std::move(stdv)) {}
  void Work() override {
    resized_.resize(static_cast<size_t>(dw_) * dh_ * cn_);
    resize_linear_u8(src_.data(), sw_, sh_, cn_, resized_.data(), dw_, dh_);
    tensor_.resize(resized_.size());
    normalize_to_chw(resized_.data(), dw_, dh_, cn_, scale_, mean_.data(), std_.data(),
                     tensor_.data());
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    auto r = Napi::Uint8Array::New(env, resized_.size());
    std::copy(resized_.begin(), resized_.end(), r.Data());
    auto t = Napi::Float32Array::New(env, tensor_.size());
    std::copy(tensor_.begin(), tensor_.end(), t.Data());
    o.Set("resized", r);
    o.Set("tensor", t);
    return o;
  }

 private:
  std::vector<uint8_t> src_;
  int sw_, sh_, cn_, dw_, dh_;
  float scale_;
  std::vector<float> mean_, std_;
  std::vector<uint8_t> resized_;
  std::vector<float> tensor_;
};

Napi::Value PreprocessImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsObject() || !info[2].IsObject())
    throw_arg(env, "preprocessImage(pixels, source, target): bad arguments");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array && ta.TypedArrayType() != napi_uint8_clamped_array)
    throw_arg(env, "pixels must be a Uint8Array");
  auto int_of = [&](const Napi::Object& o, const char* k, int lo, int hi) {
    Napi::Value v = o.Get(k);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int>(d)))
      throw_arg(env, std::string(k) + " must be an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
    return static_cast<int>(d);
  };
  Napi::Object so = info[1].As<Napi::Object>(), to = info[2].As<Napi::Object>();
  int sw = int_of(so, "width", 1, 1 << 16), sh = int_of(so, "height", 1, 1 << 16);
  int cn = int_of(so, "channels", 1, 4);
  int dw = int_of(to, "width", 1, 1 << 14), dh = int_of(to, "height", 1, 1 << 14);
  size_t need = static_cast<size_t>(sw) * sh * cn;
  if (ta.ByteLength() != need)
    throw_arg(env, "pixels has " + std::to_string(ta.ByteLength()) + " bytes, width * height * " +
                       "channels is " + std::to_string(need));
  float scale =
      to.Get("scale").IsNumber() ? to.Get("scale").As<Napi::Number>().FloatValue() : 1.f / 255.f;
  auto floats = [&](const char* k, float def) {
    std::vector<float> v(static_cast<size_t>(cn), def);
    Napi::Value a = to.Get(k);
    if (a.IsUndefined()) return v;
    if (!a.IsArray() || a.As<Napi::Array>().Length() != static_cast<uint32_t>(cn))
      throw_arg(env, std::string(k) + " must be an array of one number per channel");
    for (uint32_t i = 0; i < static_cast<uint32_t>(cn); ++i) {
      Napi::Value x = a.As<Napi::Array>().Get(i);
      if (!x.IsNumber()) throw_arg(env, std::string(k) + " must hold numbers");
      v[i] = x.As<Napi::Number>().FloatValue();
    }
    return v;
  };
  std::vector<float> mean = floats("mean", 0.f), stdv = floats("std", 1.f);
  for (float s : stdv)
    if (s == 0.f) throw_arg(env, "std must not contain 0");
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  auto* w = new PreprocessWorker(env, std::vector<uint8_t>(p, p + need), sw, sh, cn, dw, dh, scale,
                                 std::move(mean), std::move(stdv));
  w->Queue();
  return w->Promise();
}

// ---------------------------------------------------------------------------
// Retrieval (native/retrieval): evaluateRetrieval and searchTopK. Features and labels are
// copied on the main thread (JS may reuse its buffers as soon as the call returns); the GEMM,
// ranking and metrics run in the worker. RetrievalError becomes PIF_INVALID_ARG.

// A positive integer no larger than `max` (the option `name`), or `def` when undefined.
int64_t int_option(Napi::Env env, const Napi::Object& o, const char* name, int64_t def,
                   int64_t max) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return def;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1) || d > static_cast<double>(max) ||
      d != static_cast<double>(static_cast<int64_t>(d)))
    throw_arg(env, std::string(name) + " must be an integer from 1 to " + std::to_string(max));
  return static_cast<int64_t>(d);
}

// The feature dimension argument: an integer >= 1.
int64_t dim_arg(Napi::Env env, const Napi::Value& v) {
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1) || d > 16777216 || d != static_cast<double>(static_cast<int64_t>(d)))
    throw_arg(env, "dim must be an integer from 1 to 16777216");
  return static_cast<int64_t>(d);
}

// Checks a Float32Array of rows x dim features and sets *rows; returns a copy (empty when !copy).
std::vector<float> feature_rows(Napi::Env env, const Napi::Value& v, int64_t dim,
                                const std::string& what, int64_t* rows, bool copy = true) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_arg(env, what + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  size_t n = a.ElementLength();
  if (n % static_cast<size_t>(dim) != 0)
    throw_arg(env, what + " has " + std::to_string(n) + " values, not a multiple of dim (" +
                       std::to_string(dim) + ")");
  *rows = static_cast<int64_t>(n / static_cast<size_t>(dim));
  if (*rows > retrieval::kMaxRows)
    throw_arg(env, what + ": more than " + std::to_string(retrieval::kMaxRows) + " rows");
  if (!copy) return {};
  return std::vector<float>(a.Data(), a.Data() + n);
}

// Copies a BigInt64Array of `rows` labels.
std::vector<int64_t> label_rows(Napi::Env env, const Napi::Value& v, int64_t rows,
                                const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array)
    throw_arg(env, what + " must be a BigInt64Array");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  if (a.ElementLength() != static_cast<size_t>(rows))
    throw_arg(env, what + " has " + std::to_string(a.ElementLength()) + " labels for " +
                       std::to_string(rows) + " feature rows");
  const auto* p = reinterpret_cast<const int64_t*>(
      static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  return std::vector<int64_t>(p, p + rows);
}

class EvaluateRetrievalWorker : public Worker {
 public:
  EvaluateRetrievalWorker(Napi::Env env, std::vector<float> q, std::vector<int64_t> ql,
                          std::vector<float> g, std::vector<int64_t> gl, int64_t dim,
                          retrieval::EvalOptions opts)
      : Worker(env),
        q_(std::move(q)),
        ql_(std::move(ql)),
        g_(std::move(g)),
        gl_(std::move(gl)),
        dim_(dim),
        opts_(std::move(opts)) {}
  void Work() override {
    res_ = retrieval::evaluate_retrieval(q_.data(), ql_.data(), static_cast<int64_t>(ql_.size()),
                                         g_.data(), gl_.data(), static_cast<int64_t>(gl_.size()),
                                         dim_, opts_);
    std::vector<float>().swap(q_);
    std::vector<float>().swap(g_);
  }
  Napi::Value Result(Napi::Env env) override {
    auto num = [&](double x) { return Napi::Number::New(env, x); };
    Napi::Object o = Napi::Object::New(env);
    Napi::Array topk = Napi::Array::New(env, res_.topk.size());
    Napi::Array recall = Napi::Array::New(env, res_.recall.size());
    for (size_t t = 0; t < res_.topk.size(); ++t) {
      topk.Set(static_cast<uint32_t>(t), num(static_cast<double>(res_.topk[t])));
      recall.Set(static_cast<uint32_t>(t), num(res_.recall[t]));
    }
    o.Set("topk", topk);
    o.Set("recall", recall);
    o.Set("mAP", num(res_.map));
    o.Set("numQuery", num(static_cast<double>(res_.num_query)));
    o.Set("numGallery", num(static_cast<double>(res_.num_gallery)));
    o.Set("numValidQuery", num(static_cast<double>(res_.num_valid_query)));
    o.Set("blocks", num(static_cast<double>(res_.blocks)));
    o.Set("emptyBlocks", num(static_cast<double>(res_.empty_blocks)));
    Napi::Object t = Napi::Object::New(env);
    t.Set("checkSeconds", num(res_.timing.check_seconds));
    t.Set("normalizeSeconds", num(res_.timing.normalize_seconds));
    t.Set("gemmSeconds", num(res_.timing.gemm_seconds));
    t.Set("rankSeconds", num(res_.timing.rank_seconds));
    t.Set("totalSeconds", num(res_.timing.total_seconds));
    o.Set("timing", t);
    return o;
  }

 private:
  std::vector<float> q_;
  std::vector<int64_t> ql_;
  std::vector<float> g_;
  std::vector<int64_t> gl_;
  int64_t dim_;
  retrieval::EvalOptions opts_;
  retrieval::EvalResult res_;
};

// evaluateRetrieval(query: Float32Array, queryLabels: BigInt64Array, gallery: Float32Array,
//                   galleryLabels: BigInt64Array, dim, {blockSize, topk, normalize, threads})
Napi::Value EvaluateRetrieval(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5)
    throw_arg(env,
              "evaluateRetrieval(query, queryLabels, gallery, galleryLabels, dim, options): "
              "missing arguments");
  int64_t dim = dim_arg(env, info[4]);
  int64_t nq = 0, ng = 0;
  std::vector<float> q = feature_rows(env, info[0], dim, "query features", &nq);
  std::vector<int64_t> ql = label_rows(env, info[1], nq, "query labels");
  std::vector<float> g = feature_rows(env, info[2], dim, "gallery features", &ng);
  std::vector<int64_t> gl = label_rows(env, info[3], ng, "gallery labels");
  retrieval::EvalOptions opts;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    if (!info[5].IsObject()) throw_arg(env, "options must be an object");
    Napi::Object o = info[5].As<Napi::Object>();
    opts.block_size = int_option(env, o, "blockSize", 64, retrieval::kMaxRows);
    opts.threads = static_cast<int>(int_option(env, o, "threads", 1, 1024));
    Napi::Value nv = o.Get("normalize");
    if (!nv.IsUndefined()) {
      if (!nv.IsBoolean()) throw_arg(env, "normalize must be a boolean");
      opts.normalize = nv.As<Napi::Boolean>().Value();
    }
    Napi::Value tv = o.Get("topk");
    if (!tv.IsUndefined()) {
      if (!tv.IsArray()) throw_arg(env, "topk must be an array of positive integers");
      Napi::Array a = tv.As<Napi::Array>();
      opts.topk.clear();
      for (uint32_t k = 0; k < a.Length(); ++k) {
        Napi::Value x = a.Get(k);
        double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 1) || d > 2147483647.0 || d != static_cast<double>(static_cast<int64_t>(d)))
          throw_arg(env, "topk must be an array of positive integers");
        opts.topk.push_back(static_cast<int64_t>(d));
      }
    }
  }
  auto* w = new EvaluateRetrievalWorker(env, std::move(q), std::move(ql), std::move(g),
                                        std::move(gl), dim, std::move(opts));
  w->Queue();
  return w->Promise();
}

// The gallery is either copied or, with `borrowGallery`, read in place: the worker keeps a
// reference to the JS Float32Array so its buffer stays alive, and the caller promises not to
// change the searched values until the promise settles (the Flat index allocates a new array
// instead of compacting in place). Borrowing saves a full gallery copy on the main thread per
// search, which for a 50k x 512 gallery costs tens of milliseconds.
class SearchTopKWorker : public Worker {
 public:
  SearchTopKWorker(Napi::Env env, std::vector<float> q, std::vector<float> g,
                   Napi::Float32Array borrowed, int64_t ng, int64_t dim, int64_t k,
                   retrieval::SearchMetric metric, int threads)
      : Worker(env),
        q_(std::move(q)),
        g_(std::move(g)),
        gp_(borrowed.IsEmpty() ? g_.data() : borrowed.Data()),
        ng_(ng),
        dim_(dim),
        k_(k),
        metric_(metric),
        threads_(threads) {
    if (!borrowed.IsEmpty()) borrowed_ = Napi::Persistent(borrowed);
  }
  void Work() override {
    res_ = retrieval::search_topk(q_.data(), static_cast<int64_t>(q_.size()) / dim_, gp_, ng_, dim_,
                                  k_, metric_, threads_);
    std::vector<float>().swap(q_);
    std::vector<float>().swap(g_);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("k", Napi::Number::New(env, static_cast<double>(res_.k)));
    auto ids = Napi::Int32Array::New(env, res_.ids.size());
    if (!res_.ids.empty()) std::memcpy(ids.Data(), res_.ids.data(), res_.ids.size() * 4);
    auto scores = Napi::Float32Array::New(env, res_.scores.size());
    if (!res_.scores.empty())
      std::memcpy(scores.Data(), res_.scores.data(), res_.scores.size() * 4);
    o.Set("ids", ids);
    o.Set("scores", scores);
    return o;
  }

 private:
  std::vector<float> q_, g_;
  Napi::Reference<Napi::Float32Array> borrowed_;
  const float* gp_;
  int64_t ng_, dim_, k_;
  retrieval::SearchMetric metric_;
  int threads_;
  retrieval::TopKResult res_;
};

// searchTopK(queries: Float32Array, gallery: Float32Array, dim, k,
//            {metric: 'IP'|'L2', threads, borrowGallery})
// -> { k: min(k, gallery rows), ids: Int32Array (nq * k), scores: Float32Array (nq * k) }
Napi::Value SearchTopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4)
    throw_arg(env, "searchTopK(queries, gallery, dim, k, options): missing arguments");
  int64_t dim = dim_arg(env, info[2]);
  int64_t nq = 0, ng = 0;
  std::vector<float> q = feature_rows(env, info[0], dim, "queries", &nq);
  double kd = info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : -1;
  if (!(kd >= 1) || kd > 2147483647.0 || kd != static_cast<double>(static_cast<int64_t>(kd)))
    throw_arg(env, "k must be a positive integer");
  retrieval::SearchMetric metric = retrieval::SearchMetric::kInnerProduct;
  int threads = 1;
  bool borrow = false;
  if (info.Length() > 4 && !info[4].IsUndefined()) {
    if (!info[4].IsObject()) throw_arg(env, "options must be an object");
    Napi::Object o = info[4].As<Napi::Object>();
    Napi::Value mv = o.Get("metric");
    if (!mv.IsUndefined()) {
      std::string m = mv.IsString() ? mv.As<Napi::String>().Utf8Value() : "";
      if (m == "IP")
        metric = retrieval::SearchMetric::kInnerProduct;
      else if (m == "L2")
        metric = retrieval::SearchMetric::kL2;
      else
        throw_arg(env, "metric must be 'IP' or 'L2'");
    }
    threads = static_cast<int>(int_option(env, o, "threads", 1, 1024));
    Napi::Value bv = o.Get("borrowGallery");
    if (!bv.IsUndefined()) {
      if (!bv.IsBoolean()) throw_arg(env, "borrowGallery must be a boolean");
      borrow = bv.As<Napi::Boolean>().Value();
    }
  }
  std::vector<float> g;
  Napi::Float32Array borrowed;
  if (borrow) {
    feature_rows(env, info[1], dim, "gallery", &ng, /*copy=*/false);
    borrowed = info[1].As<Napi::Float32Array>();
  } else {
    g = feature_rows(env, info[1], dim, "gallery", &ng);
  }
  auto* w = new SearchTopKWorker(env, std::move(q), std::move(g), borrowed, ng, dim,
                                 static_cast<int64_t>(kd), metric, threads);
  w->Queue();
  return w->Promise();
}

// probePeak({threads, seconds}): this machine's fp32 peak (FMA loop and
// sgemm), measured synchronously on the calling thread. For the benchmark.
Napi::Value ProbePeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads = 1;
  double seconds = 0.5;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("threads").IsNumber()) threads = o.Get("threads").As<Napi::Number>().Int32Value();
    if (o.Get("seconds").IsNumber()) seconds = o.Get("seconds").As<Napi::Number>().DoubleValue();
  }
  if (threads < 1 || threads > 1024) throw_arg(env, "threads must be an integer from 1 to 1024");
  if (!(seconds > 0) || seconds > 60) throw_arg(env, "seconds must be in (0, 60]");
  PeakProbe p = probe_peak(threads, seconds);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fmaGflops", p.fma_gflops);
  o.Set("sgemmGflops", p.sgemm_gflops);
  o.Set("threads", p.threads);
  o.Set("avx2Fma", p.avx2_fma);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function cls = NativeModel::Init(env);
  data->native_model = Napi::Persistent(cls);
  env.SetInstanceData(data);
  exports.Set("NativeModel", cls);
  exports.Set("inspectModel", Napi::Function::New(env, InspectModel, "inspectModel"));
  exports.Set("dumpModel", Napi::Function::New(env, DumpModel, "dumpModel"));
  exports.Set("saveModel", Napi::Function::New(env, SaveModel, "saveModel"));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("exportOnnx", Napi::Function::New(env, ExportOnnx, "exportOnnx"));
  exports.Set("buildModel", Napi::Function::New(env, BuildModel, "buildModel"));
  exports.Set("probePeak", Napi::Function::New(env, ProbePeak, "probePeak"));
  exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage, "preprocessImage"));
  exports.Set("evaluateRetrieval",
              Napi::Function::New(env, EvaluateRetrieval, "evaluateRetrieval"));
  exports.Set("searchTopK", Napi::Function::New(env, SearchTopK, "searchTopK"));
  Napi::Array names = Napi::Array::New(env);
  for (const std::string& n : buildable_model_names()) names.Set(names.Length(), n);
  exports.Set("buildableModels", names);
  exports.Set("builderVersion", Napi::Number::New(env, kBuilderVersion));
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  return exports;
}

}  // namespace
}  // namespace pif

// NODE_API_MODULE registers a context-aware module (safe in worker_threads).
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return pif::Init(env, exports);
}
NODE_API_MODULE(paddle_image_feature, InitAddon)
