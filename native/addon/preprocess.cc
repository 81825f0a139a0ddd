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
#include "preprocess/batch.h"

namespace pif {
namespace addon {
namespace {

struct Preprocessed {
  std::vector<uint8_t> resized;
  std::vector<float> tensor;
};

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

Napi::Value PreprocessImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() || !info[1].IsObject() || !info[2].IsObject())
    throw_arg(env, "preprocessImage(pixels, source, target): bad arguments");
  size_t len = 0;
  const uint8_t* p = u8_bytes(info[0], &len);
  if (p == nullptr) throw_arg(env, "pixels must be a Uint8Array");
  Napi::Object so = info[1].As<Napi::Object>(), to = info[2].As<Napi::Object>();
  BatchImage img = image_dims(env, so, to, "width", "height");
  size_t need = static_cast<size_t>(img.width) * img.height * img.channels;
  if (len != need)
    throw_arg(env, "pixels has " + std::to_string(len) + " bytes, width * height * " +
                       "channels is " + std::to_string(need));
  Normalization norm = norm_fields(env, to, img.channels);
  img.owned.assign(p, p + need);
  img.pixels = img.owned.data();
  return start_job(
      env,
      [img = std::move(img), norm = std::move(norm)]() {
        Preprocessed r;
        r.tensor.resize(static_cast<size_t>(img.target_width) * img.target_height * img.channels);
        preprocess_into(img, norm, &r.resized, r.tensor.data());
        return r;
      },
      preprocessed_to_js);
}

}  // namespace

void init_preprocess(Napi::Env env, Napi::Object exports) {
  exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage, "preprocessImage"));
}

}  // namespace addon
}  // namespace pif
