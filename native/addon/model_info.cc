#include "addon/model_info.h"

#include <cstring>

#include "graph/dtype.h"

namespace pif {
namespace addon {

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
      e.Set("shape", shape_to_js(env, list[k].shape));
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

Napi::Array shape_to_js(Napi::Env env, const std::vector<int64_t>& dims) {
  Napi::Array shape = Napi::Array::New(env, dims.size());
  for (size_t d = 0; d < dims.size(); ++d)
    shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(dims[d])));
  return shape;
}

// Outputs are copied into JS-owned ArrayBuffers (Electron forbids external buffers over
// native memory: NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED).
Napi::Value outputs_to_js(Napi::Env env, const std::vector<NamedTensor>& outputs) {
  Napi::Array a = Napi::Array::New(env, outputs.size());
  for (size_t k = 0; k < outputs.size(); ++k) {
    const NamedTensor& t = outputs[k];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("dtype", dtype_name(t.dtype));
    o.Set("shape", shape_to_js(env, t.dims));
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, t.data.size());
    if (!t.data.empty()) std::memcpy(buf.Data(), t.data.data(), t.data.size());
    o.Set("data", buf);
    a.Set(static_cast<uint32_t>(k), o);
  }
  return a;
}

}  // namespace addon
}  // namespace pif
