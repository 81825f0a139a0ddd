// preprocessImage(pixels, {width, height, channels}, {width, height, scale, mean, std}):
// OpenCV-exact INTER_LINEAR resize of interleaved uint8 pixels, then
// (x * scale - mean) / std into planar CHW float32, off the main thread.
// Resolves { resized: Uint8Array (HWC), tensor: Float32Array (CHW) }.
// prepareImages(images, {scale, mean, std}, {input}): runImages' preparation without a model
// (the onnxruntime backend runs the tensors): JPEGs decoded, images resized and normalised into
// one NCHW float32 tensor per run of equal target sizes. Resolves { groups: [{ data, shape,
// rows }], failed: [{ index, message }] }.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "addon/addon.h"
#include "addon/args.h"
#include "addon/image_batch.h"
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

struct Prepared {
  std::vector<ImageGroup> groups;
  ImageBatchResult result;  // failed only
};

Napi::Value prepared_to_js(Napi::Env env, const Prepared& p) {
  Napi::Array groups = Napi::Array::New(env, p.groups.size());
  for (size_t k = 0; k < p.groups.size(); ++k) {
    const ImageGroup& g = p.groups[k];
    Napi::Object o = Napi::Object::New(env);
    auto data = Napi::Float32Array::New(env, g.input.data.size() / sizeof(float));
    std::copy(g.input.data.begin(), g.input.data.end(), reinterpret_cast<uint8_t*>(data.Data()));
    Napi::Array shape = Napi::Array::New(env, g.input.dims.size());
    for (size_t d = 0; d < g.input.dims.size(); ++d)
      shape.Set(static_cast<uint32_t>(d), static_cast<double>(g.input.dims[d]));
    o.Set("data", data);
    o.Set("shape", shape);
    o.Set("rows", static_cast<double>(g.rows));
    groups.Set(static_cast<uint32_t>(k), o);
  }
  Napi::Object o = image_batch_to_js(env, p.result).As<Napi::Object>();
  o.Delete("features");
  o.Delete("rows");
  o.Set("groups", groups);
  return o;
}

Napi::Value PrepareImages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsObject())
    throw_arg(env, "prepareImages(images, norm): bad arguments");
  ImageBatch b;
  Napi::Array arr = info[0].As<Napi::Array>();
  images_and_norm(env, arr, info[1].As<Napi::Object>(), "prepareImages", &b);
  return start_job(
      env,
      [b = std::move(b)]() mutable {
        Prepared p;
        p.groups = prepare_image_groups(b, &p.result);
        return p;
      },
      prepared_to_js, arr);
}

}  // namespace

void init_preprocess(Napi::Env env, Napi::Object exports) {
  exports.Set("preprocessImage", Napi::Function::New(env, PreprocessImage, "preprocessImage"));
  exports.Set("prepareImages", Napi::Function::New(env, PrepareImages, "prepareImages"));
}

}  // namespace addon
}  // namespace pif
