#include "addon/image_batch.h"

#include <cstring>
#include <utility>

#include "addon/args.h"
#include "addon/job.h"
#include "common/error.h"
#include "preprocess/jpeg_decode.h"

namespace pif {
namespace addon {

namespace {

// The optional `augmentSeed` of an image: a training view with that seed (preprocess/augment.h).
void augment_arg(Napi::Env env, const Napi::Object& o, const std::string& where, BatchImage* img) {
  Napi::Value s = o.Get("augmentSeed");
  if (s.IsUndefined()) return;
  int64_t seed = 0;
  if (!integer_in(s, 0, kMaxSafeInteger, &seed))
    throw_arg(env, where + "augmentSeed must be a non-negative safe integer");
  img->augment = true;
  img->augment_seed = static_cast<uint64_t>(seed);
}

}  // namespace

BatchItem image_arg(Napi::Env env, const Napi::Value& v, uint32_t k) {
  std::string where = "image " + std::to_string(k) + ": ";
  if (!v.IsObject()) throw_arg(env, where + "must be an object");
  Napi::Object o = v.As<Napi::Object>();
  BatchItem item;
  if (o.Has("jpeg")) {
    Napi::Object dims = Napi::Object::New(env);
    dims.Set("width", o.Get("width"));
    dims.Set("height", o.Get("height"));
    dims.Set("channels", 3);
    item.image = image_dims(env, dims, o, "targetWidth", "targetHeight");
    item.jpeg = u8_bytes(o.Get("jpeg"), &item.jpeg_size);
    if (item.jpeg == nullptr || item.jpeg_size == 0)
      throw_arg(env, where + "jpeg must be a non-empty Uint8Array");
    augment_arg(env, o, where, &item.image);
    return item;
  }
  item.image = image_dims(env, o, o, "targetWidth", "targetHeight");
  size_t len = 0;
  const uint8_t* p = u8_bytes(o.Get("data"), &len);
  const size_t need = static_cast<size_t>(item.image.width) * item.image.height *
                      static_cast<size_t>(item.image.channels);
  if (p == nullptr || len != need)
    throw_arg(env, where + "data must be a Uint8Array of width * height * channels bytes");
  item.image.pixels = p;
  augment_arg(env, o, where, &item.image);
  return item;
}

void images_and_norm(Napi::Env env, const Napi::Array& arr, const Napi::Object& norm,
                     const char* what, ImageBatch* b) {
  for (uint32_t k = 0; k < arr.Length(); ++k) b->items.push_back(image_arg(env, arr.Get(k), k));
  const int cn = b->items.empty() ? 3 : b->items[0].image.channels;
  for (const BatchItem& it : b->items)
    if (it.image.channels != cn)
      throw_arg(env, std::string(what) + ": every image must have one channel count");
  b->norm = norm_fields(env, norm, cn);
}

// Decodes, resizes and normalises every image into the inputs of its group. A decoded image
// is dropped as soon as it is in its slot (a batch holds one decoded image at a time).
std::vector<ImageGroup> prepare_image_groups(ImageBatch& b, ImageBatchResult* r) {
  std::vector<ImageGroup> groups;
  std::vector<uint8_t> scratch;
  const BatchImage* last = nullptr;
  for (size_t k = 0; k < b.items.size(); ++k) {
    BatchItem& it = b.items[k];
    BatchImage& img = it.image;
    if (it.jpeg != nullptr) {
      std::string why = decode_jpeg_rgb(it.jpeg, it.jpeg_size, img.width, img.height, &img.owned);
      if (!why.empty()) {
        r->failed.emplace_back(static_cast<uint32_t>(k), why);
        continue;
      }
      img.pixels = img.owned.data();
    }
    const size_t per = static_cast<size_t>(img.channels) * img.target_height *
                       static_cast<size_t>(img.target_width);
    if (last == nullptr || img.target_width != last->target_width ||
        img.target_height != last->target_height || img.channels != last->channels) {
      groups.emplace_back();
      NamedTensor& t = groups.back().input;
      t.name = b.input;
      t.dtype = DType::Float32;
      t.dims = {0, img.channels, img.target_height, img.target_width};
    }
    ImageGroup& g = groups.back();
    g.input.data.resize((g.rows + 1) * per * sizeof(float));
    preprocess_into(img, b.norm, &scratch,
                    reinterpret_cast<float*>(g.input.data.data()) + g.rows * per);
    g.input.dims[0] = ++g.rows;
    std::vector<uint8_t>().swap(img.owned);
    img.pixels = nullptr;
    last = &img;
  }
  return groups;
}

ImageBatchResult run_image_batch(Executor& ex, ImageBatch& b) {
  ImageBatchResult r;
  std::vector<ImageGroup> groups = prepare_image_groups(b, &r);
  std::unique_lock<std::mutex> lock;
  if (b.gate) lock = std::unique_lock<std::mutex>(*b.gate);
  int64_t dim = -1;
  for (ImageGroup& g : groups) {
    std::vector<NamedTensor> in(1);
    in[0] = std::move(g.input);
    std::vector<NamedTensor> out = ex.run(in, b.threads);
    if (out.empty() || out[0].dtype != DType::Float32)
      throw ModelError(code::kInvalidArg, "", -1, "",
                       b.dir + ": the model's first output is not a float32 tensor");
    const int64_t n = static_cast<int64_t>(out[0].data.size() / sizeof(float));
    if (n % g.rows != 0 || (dim >= 0 && n / g.rows != dim))
      throw ModelError(code::kRun, "", -1, "", "the model's first output has no row per image");
    dim = n / g.rows;
    float* o = reinterpret_cast<float*>(out[0].data.data());
    if (b.unit_length) unit_rows(o, g.rows, dim);
    r.features.insert(r.features.end(), o, o + n);
    r.rows += g.rows;
  }
  return r;
}

Napi::Value image_batch_to_js(Napi::Env env, const ImageBatchResult& r) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Float32Array a = Napi::Float32Array::New(env, r.features.size());
  if (!r.features.empty())
    std::memcpy(a.Data(), r.features.data(), r.features.size() * sizeof(float));
  o.Set("features", a);
  o.Set("rows", static_cast<double>(r.rows));
  Napi::Array failed = Napi::Array::New(env, r.failed.size());
  for (size_t k = 0; k < r.failed.size(); ++k) {
    Napi::Object f = Napi::Object::New(env);
    f.Set("index", r.failed[k].first);
    f.Set("message", r.failed[k].second);
    failed.Set(static_cast<uint32_t>(k), f);
  }
  o.Set("failed", failed);
  return o;
}

}  // namespace addon
}  // namespace pif
