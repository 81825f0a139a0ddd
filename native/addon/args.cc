#include "addon/args.h"

#include <cmath>

#include "addon/job.h"
#include "builder/random_weights.h"
#include "passes/constant_fold.h"

namespace pif {
namespace addon {

bool integer_in(const Napi::Value& v, double lo, double hi, int64_t* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::floor(d)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

std::string string_or_empty(const Napi::Value& v) {
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

std::string nonempty_string_arg(const Napi::CallbackInfo& info, size_t index, const char* msg) {
  std::string s = info.Length() > index ? string_or_empty(info[index]) : std::string();
  if (s.empty()) throw_arg(info.Env(), msg);
  return s;
}

int int_field(Napi::Env env, const Napi::Object& o, const char* key, int lo, int hi) {
  int64_t n = 0;
  if (!integer_in(o.Get(key), lo, hi, &n))
    throw_arg(env, std::string(key) + " must be an integer from " + std::to_string(lo) + " to " +
                       std::to_string(hi));
  return static_cast<int>(n);
}

std::vector<float> floats_field(Napi::Env env, const Napi::Object& o, const char* key, int n,
                                float def) {
  std::vector<float> v(static_cast<size_t>(n), def);
  Napi::Value a = o.Get(key);
  if (a.IsUndefined()) return v;
  if (!a.IsArray() || a.As<Napi::Array>().Length() != static_cast<uint32_t>(n))
    throw_arg(env, std::string(key) + " must be an array of one number per channel");
  for (uint32_t i = 0; i < static_cast<uint32_t>(n); ++i) {
    Napi::Value x = a.As<Napi::Array>().Get(i);
    if (!x.IsNumber()) throw_arg(env, std::string(key) + " must hold numbers");
    v[i] = x.As<Napi::Number>().FloatValue();
  }
  return v;
}

const uint8_t* u8_bytes(const Napi::Value& v, size_t* len) {
  if (!v.IsTypedArray()) return nullptr;
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array && ta.TypedArrayType() != napi_uint8_clamped_array)
    return nullptr;
  *len = ta.ByteLength();
  return static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
}

BatchImage image_dims(Napi::Env env, const Napi::Object& src, const Napi::Object& dst,
                      const char* tw, const char* th) {
  BatchImage img;
  img.width = int_field(env, src, "width", 1, 1 << 16);
  img.height = int_field(env, src, "height", 1, 1 << 16);
  img.channels = int_field(env, src, "channels", 1, 4);
  img.target_width = int_field(env, dst, tw, 1, 1 << 14);
  img.target_height = int_field(env, dst, th, 1, 1 << 14);
  return img;
}

Normalization norm_fields(Napi::Env env, const Napi::Object& o, int cn) {
  Normalization norm;
  if (o.Get("scale").IsNumber()) norm.scale = o.Get("scale").As<Napi::Number>().FloatValue();
  norm.mean = floats_field(env, o, "mean", cn, 0.f);
  norm.std = floats_field(env, o, "std", cn, 1.f);
  for (float s : norm.std)
    if (s == 0.f) throw_arg(env, "std must not contain 0");
  return norm;
}

namespace {

uint64_t limit_value(Napi::Env env, const Napi::Object& o, const char* key, uint64_t def) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return def;
  int64_t n = 0;
  if (!integer_in(o.Get(key), 1, kMaxSafeInteger, &n))
    throw_arg(env, std::string("limits.") + key + " must be a positive integer");
  return static_cast<uint64_t>(n);
}

uint32_t limit_u32(Napi::Env env, const Napi::Object& o, const char* key, uint32_t def) {
  return static_cast<uint32_t>(limit_value(env, o, key, def));
}

void parse_limits(Napi::Env env, const Napi::Object& l, LoadLimits* lim) {
  lim->max_file_bytes = limit_value(env, l, "maxFileBytes", lim->max_file_bytes);
  lim->max_tensor_bytes = limit_value(env, l, "maxTensorBytes", lim->max_tensor_bytes);
  lim->max_total_param_bytes =
      limit_value(env, l, "maxTotalParamBytes", lim->max_total_param_bytes);
  lim->max_rank = limit_u32(env, l, "maxRank", lim->max_rank);
  lim->max_ops = limit_u32(env, l, "maxOps", lim->max_ops);
  lim->max_values = limit_u32(env, l, "maxValues", lim->max_values);
  lim->max_blocks = limit_u32(env, l, "maxBlocks", lim->max_blocks);
  lim->max_depth = limit_u32(env, l, "maxDepth", lim->max_depth);
}

bool given(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined();
}

// quant: { convs: [{ ordinal, scale, unsigned }] } -> the int8 convolutions (hpi).
void parse_quant(Napi::Env env, const Napi::Value& v, ExecutorOptions* exec) {
  const std::string bad = "quant must be { convs: [{ ordinal, scale, unsigned }] }";
  if (!v.IsObject() || !v.As<Napi::Object>().Get("convs").IsArray()) throw_arg(env, bad);
  Napi::Array a = v.As<Napi::Object>().Get("convs").As<Napi::Array>();
  auto table = std::make_shared<QuantTable>();
  for (uint32_t k = 0; k < a.Length(); ++k) {
    if (!a.Get(k).IsObject()) throw_arg(env, bad);
    Napi::Object c = a.Get(k).As<Napi::Object>();
    int64_t ordinal = 0;
    if (!integer_in(c.Get("ordinal"), 0, 1 << 20, &ordinal) || !c.Get("scale").IsNumber())
      throw_arg(env, bad);
    double scale = c.Get("scale").As<Napi::Number>().DoubleValue();
    if (!(scale > 0) || !std::isfinite(scale))
      throw_arg(env, "quant: convs[" + std::to_string(k) + "].scale must be a positive number");
    table->conv[static_cast<int>(ordinal)] =
        QuantConv{static_cast<float>(scale), c.Get("unsigned").ToBoolean().Value()};
  }
  exec->quant = std::move(table);
}

void parse_options(Napi::Env env, const Napi::Object& o, Request* r) {
  if (given(o, "requireParams"))
    r->load.require_params = o.Get("requireParams").ToBoolean().Value();
  if (given(o, "executable")) r->executable = o.Get("executable").ToBoolean().Value();
  if (given(o, "randomWeights")) {
    int64_t seed = 0;
    if (!integer_in(o.Get("randomWeights"), 0, kMaxSafeInteger, &seed))
      throw_arg(env, "randomWeights must be a non-negative integer seed");
    r->random_weights = true;
    r->random_seed = static_cast<uint64_t>(seed);
    r->load.require_params = false;
  }
  r->exec.hpi = choice(env, o.Get("runMode"), {{"normal", false}, {"hpi", true}}, r->exec.hpi,
                       "runMode must be 'normal' or 'hpi'");
  r->exec.bf16 = choice(env, o.Get("precision"), {{"fp32", false}, {"bf16", true}}, r->exec.bf16,
                        "precision must be 'fp32' or 'bf16'");
  if (given(o, "quant")) parse_quant(env, o.Get("quant"), &r->exec);
  if (given(o, "passes")) {
    if (!o.Get("passes").IsArray()) throw_arg(env, "passes must be an array of pass names");
    Napi::Array a = o.Get("passes").As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length(); ++k) {
      if (!a.Get(k).IsString()) throw_arg(env, "passes must be an array of pass names");
      r->exec.passes.push_back(a.Get(k).As<Napi::String>().Utf8Value());
    }
  }
  if (given(o, "limits")) {
    if (!o.Get("limits").IsObject()) throw_arg(env, "limits must be an object");
    parse_limits(env, o.Get("limits").As<Napi::Object>(), &r->load.limits);
  }
}

}  // namespace

Request parse_request(const Napi::CallbackInfo& info, size_t opts_index) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw_arg(env, "model path must be a string");
  Request r;
  r.path = info[0].As<Napi::String>().Utf8Value();
  if (r.path.empty()) throw_arg(env, "model path must not be empty");
  if (info.Length() > opts_index && !info[opts_index].IsUndefined()) {
    if (!info[opts_index].IsObject()) throw_arg(env, "options must be an object");
    parse_options(env, info[opts_index].As<Napi::Object>(), &r);
  }
  return r;
}

std::shared_ptr<LoadedModel> load(const Request& r) {
  auto m = std::make_shared<LoadedModel>(load_model(r.path, r.load));
  if (r.random_weights) bind_random_params(&m->program, r.random_seed);
  fold_constants(&m->program);
  return m;
}

}  // namespace addon
}  // namespace pif
