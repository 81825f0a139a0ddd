// preprocessImage(pixels, {width, height, channels}, {width, height, scale, mean, std}):
// OpenCV-exact INTER_LINEAR resize of interleaved uint8 pixels, then
// (x * scale - mean) / std into planar CHW float32, off the main thread.
// Resolves { resized: Uint8Array (HWC), tensor: Float32Array (CHW) }.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/job.h"
#include "preprocess/resize_linear.h"

namespace pif {
namespace addon {
namespace {

// The arguments, copied on the main thread.
struct Preprocess {
  std::vector<uint8_t> src;
  int sw = 0, sh = 0, cn = 0, dw = 0, dh = 0;
  float scale = 1.f / 255.f;
  std::vector<float> mean, std;
};

struct Preprocessed {
  std::vector<uint8_t> resized;
  std::vector<float> tensor;
};

Preprocessed preprocess(const Preprocess& a) {
  Preprocessed r;
  r.resized.resize(static_cast<size_t>(a.dw) * a.dh * a.cn);
  resize_linear_u8(a.src.data(), a.sw, a.sh, a.cn, r.resized.data(), a.dw, a.dh);
  r.tensor.resize(r.resized.size());
  normalize_to_chw(r.resized.data(), a.dw, a.dh, a.cn, a.scale, a.mean.data(), a.std.data(),
                   r.tensor.data());
  return r;
}

Napi::Value preprocessed_to_js(Napi::Env env, const Preprocessed& p) {
  Napi::Object o = Napi::Object::New(env);
  auto r = Napi::Uint8Array::New(env, p.resized.size());
  std::copy(p.resized.begin(), p.resized.end(), r.Data());
  auto t = Napi::Float32Array::New(env, p.tensor.size());
  std::copy(p.tensor.begin(), p.tensor.end(), t.Data());
  o.Set("resized", r);
  o.Set("tensor", t);
  return o;
}

int int_of(Napi::Env env, const Napi::Object& o, const char* k, int lo, int hi) {
  int64_t n = 0;
  if (!integer_in(o.Get(k), lo, hi, &n))
    throw_arg(env, std::string(k) + " must be an integer from " + std::to_string(lo) + " to " +
                       std::to_string(hi));
  return static_cast<int>(n);
}

// One number per channel under `k`, each `def` when `k` is undefined.
std::vector<float> floats(Napi::Env env, const Napi::Object& o, const char* k, int cn, float def) {
  std::vector<float> v(static_cast<size_t>(cn), def);
  Napi::Value a = o.Get(k);
  if (a.IsUndefined()) return v;
  if (!a.IsArray() || a.As<Napi::Array>().Length() != static_cast<uint32_t>(cn))
    throw_arg(env, std::string(k) + " must be an array of one number per channel");
  for (uint32_t i = 0; i < static_cast<uint32_t>(cn); ++i) {
    Napi::Value x = a.As<Napi::Array>().Get(i);
    if (!x.IsNumber()) throw_arg(env, std::string(k) + " must hold numbers");
    v[i] = x.As<Napi::Number>().FloatValue();
  }
  return v;
}

Napi::Value PreprocessImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsObject() || !info[2].IsObject())
    throw_arg(env, "preprocessImage(pixels, source, target): bad arguments");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array && ta.TypedArrayType() != napi_uint8_clamped_array)
    throw_arg(env, "pixels must be a Uint8Array");
  Napi::Object so = info[1].As<Napi::Object>(), to = info[2].As<Napi::Object>();
  Preprocess a;
  a.sw = int_of(env, so, "width", 1, 1 << 16);
  a.sh = int_of(env, so, "height", 1, 1 << 16);
  a.cn = int_of(env, so, "channels", 1, 4);
  a.dw = int_of(env, to, "width", 1, 1 << 14);
  a.dh = int_of(env, to, "height", 1, 1 << 14);
  size_t need = static_cast<size_t>(a.sw) * a.sh * a.cn;
  if (ta.ByteLength() != need)
    throw_arg(env, "pixels has " + std::to_string(ta.ByteLength()) + " bytes, width * height * " +
                       "channels is " + std::to_string(need));
  if (to.Get("scale").IsNumber()) a.scale = to.Get("scale").As<Napi::Number>().FloatValue();
  a.mean = floats(env, to, "mean", a.cn, 0.f);
  a.std = floats(env, to, "std", a.cn, 1.f);
  for (float s : a.std)
    if (s == 0.f) throw_arg(env, "std must not contain 0");
  const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  a.src.assign(p, p + need);
  return start_job(
      env, [a = std::move(a)]() { return preprocess(a); }, preprocessed_to_js);
}

}  // namespace

void init_preprocess(Napi::Env env, Napi::Object exports) {
  exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage, "preprocessImage"));
}

}  // namespace addon
}  // namespace pif
