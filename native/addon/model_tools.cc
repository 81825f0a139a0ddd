// Model tools: inspectModel, dumpModel, saveModel, exportOnnx and buildModel. Each loads (or
// builds) a model off the main thread and resolves a plain description or the files written.
#include <algorithm>
#include <string>
#include <utility>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/job.h"
#include "addon/model_info.h"
#include "builder/model_builder.h"
#include "export/onnx.h"
#include "format/model_dir.h"
#include "runtime/executor.h"

namespace pif {
namespace addon {
namespace {

Napi::Value string_to_js(Napi::Env env, const std::string& s) { return Napi::String::New(env, s); }

// inspectModel(path, opts): the model's ModelInfo.
Napi::Value InspectModel(const Napi::CallbackInfo& info) {
  return start_job(
      info.Env(), [req = parse_request(info, 1)]() { return describe(*load(req)); },
      [](Napi::Env env, const ModelInfo& m) { return to_js(env, m); });
}

// dumpModel(path, opts): the canonical IR text, or with opts.json the
// program as JSON (program_json: ops, slots, attributes, parameters).
Napi::Value DumpModel(const Napi::CallbackInfo& info) {
  Request r = parse_request(info, 1);
  bool json = info.Length() > 1 && info[1].IsObject() &&
              info[1].As<Napi::Object>().Get("json").ToBoolean().Value();
  return start_job(
      info.Env(),
      [req = std::move(r), json]() {
        auto m = load(req);
        return json ? program_json(m->program) : dump_program(m->program);
      },
      string_to_js);
}

// saveModel(path, dstDir, { paramsLayout: 'combined'|'separate', ...load options })
Napi::Value SaveModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request r = parse_request(info, 2);
  std::string dst =
      nonempty_string_arg(info, 1, "destination directory must be a non-empty string");
  ParamsLayout layout = ParamsLayout::None;
  if (info.Length() > 2 && info[2].IsObject())
    layout = choice(env, info[2].As<Napi::Object>().Get("paramsLayout"),
                    {{"combined", ParamsLayout::Combined}, {"separate", ParamsLayout::Separate}},
                    layout, "paramsLayout must be 'combined' or 'separate'");
  return start_job(
      env,
      [req = std::move(r), dst = std::move(dst), layout]() {
        auto m = load(req);
        return save_model(*m, dst, layout != ParamsLayout::None ? layout : m->params_layout);
      },
      [](Napi::Env env, const SavedFiles& saved) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("programFile", saved.program_file);
        o.Set("paramsFile",
              saved.params_file.empty() ? env.Null() : Napi::String::New(env, saved.params_file));
        return o;
      });
}

// exportOnnx(modelPath, outFile, { opset?, randomWeights?, limits? }) -> { file, bytes }.
// outFile null: nothing is written and the model comes back in memory as { file: null, bytes,
// onnx: Uint8Array } (the onnxruntime backend's session is made from it).
Napi::Value ExportOnnx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request r = parse_request(info, 2);
  const bool in_memory = info.Length() > 1 && info[1].IsNull();
  std::string out =
      in_memory ? std::string()
                : nonempty_string_arg(info, 1, "output file must be a non-empty string or null");
  OnnxOptions opts;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Value v = info[2].As<Napi::Object>().Get("opset");
    if (!v.IsUndefined() && !integer_in(v, 13, 17, &opts.opset))
      throw_arg(env, "opset must be an integer from 13 to 17");
  }
  opts.producer_version = "0.1.0";
  struct Written {
    std::string file;
    size_t bytes;
    std::string onnx;  // in memory only
  };
  return start_job(
      env,
      [req = std::move(r), out = std::move(out), opts = std::move(opts)]() {
        Executor ex(load(req));
        std::string bytes = export_onnx(ex, opts);
        if (out.empty()) return Written{out, bytes.size(), std::move(bytes)};
        write_file_atomic(out, bytes);
        return Written{out, bytes.size(), std::string()};
      },
      [](Napi::Env env, const Written& w) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("file", w.file.empty() ? env.Null() : Napi::String::New(env, w.file));
        o.Set("bytes", Napi::Number::New(env, static_cast<double>(w.bytes)));
        if (w.file.empty()) {
          auto a = Napi::Uint8Array::New(env, w.onnx.size());
          std::copy(w.onnx.begin(), w.onnx.end(), a.Data());
          o.Set("onnx", a);
        }
        return o;
      });
}

// buildModel(name, outDir, { format: 'pir'|'legacy', seed, clipActivation: 'quick_gelu'|'gelu',
//                            vitDepth })
// -> { programFile, paramsFile, configFile }
Napi::Value BuildModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    throw_arg(env, "buildModel(name, outDir, options): name and outDir must be strings");
  struct Args {
    std::string name, dir;
    ProgramFormat format = ProgramFormat::Pir;
    int64_t seed = 0;
    BuildOptions opts;
  } a;
  a.name = info[0].As<Napi::String>().Utf8Value();
  a.dir = info[1].As<Napi::String>().Utf8Value();
  if (a.dir.empty()) throw_arg(env, "outDir must not be empty");
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    a.format = choice(env, o.Get("format"),
                      {{"pir", ProgramFormat::Pir}, {"legacy", ProgramFormat::Legacy}}, a.format,
                      "format must be 'pir' or 'legacy'");
    Napi::Value sv = o.Get("seed");
    if (!sv.IsUndefined() && !integer_in(sv, 0, kMaxSafeInteger, &a.seed))
      throw_arg(env, "seed must be a non-negative integer");
    a.opts.clip_activation =
        choice(env, o.Get("clipActivation"),
               {{"quick_gelu", ClipActivation::QuickGelu}, {"gelu", ClipActivation::Gelu}},
               a.opts.clip_activation, "clipActivation must be 'quick_gelu' or 'gelu'");
    Napi::Value dv = o.Get("vitDepth");
    if (!dv.IsUndefined() && !integer_in(dv, 1, 64, &a.opts.vit_depth))
      throw_arg(env, "vitDepth must be an integer from 1 to 64");
  }
  struct Built {
    SavedFiles saved;
    std::string yml;
  };
  return start_job(
      env,
      [a = std::move(a)]() {
        BuiltModel b = build_model(a.name, a.format, static_cast<uint64_t>(a.seed), a.opts);
        Built built{save_model(b.model, a.dir, ParamsLayout::Combined), a.dir + "/inference.yml"};
        write_file_atomic(built.yml, b.inference_yml);
        return built;
      },
      [](Napi::Env env, const Built& b) -> Napi::Value {
        Napi::Object o = Napi::Object::New(env);
        o.Set("programFile", b.saved.program_file);
        o.Set("paramsFile", b.saved.params_file);
        o.Set("configFile", b.yml);
        return o;
      });
}

}  // namespace

void init_model_tools(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectModel", Napi::Function::New(env, InspectModel, "inspectModel"));
  exports.Set("dumpModel", Napi::Function::New(env, DumpModel, "dumpModel"));
  exports.Set("saveModel", Napi::Function::New(env, SaveModel, "saveModel"));
  exports.Set("exportOnnx", Napi::Function::New(env, ExportOnnx, "exportOnnx"));
  exports.Set("buildModel", Napi::Function::New(env, BuildModel, "buildModel"));
  Napi::Array names = Napi::Array::New(env);
  for (const std::string& n : buildable_model_names()) names.Set(names.Length(), n);
  exports.Set("buildableModels", names);
  exports.Set("builderVersion", Napi::Number::New(env, kBuilderVersion));
}

}  // namespace addon
}  // namespace pif
