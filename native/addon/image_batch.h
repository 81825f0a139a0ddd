// runImages' work: the image-feature batch of one NativeModel call. Arguments are copied (or
// pinned) on the main thread; off it, the batch is prepared (JPEGs decoded, every image resized
// and normalised into the model's input) without any lock, then run: under the caller's stream
// gate when it names one, so that a stream's next batch is prepared while this one runs.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon/napi_include.h"
#include "preprocess/batch.h"
#include "runtime/executor.h"

namespace pif {
namespace addon {

// One image of the batch: decoded pixels, or a JPEG file's bytes (`jpeg`) that the job decodes.
struct BatchItem {
  BatchImage image;  // pixels unset (and channels 3) for a JPEG until it is decoded
  const uint8_t* jpeg = nullptr;
  size_t jpeg_size = 0;
};

// runImages' arguments.
struct ImageBatch {
  std::string dir;    // the model directory, for messages
  std::string input;  // the model's one input
  std::vector<BatchItem> items;
  Normalization norm;
  int threads = 1;
  std::shared_ptr<std::mutex> gate;  // held while the batch runs; null: no gate
  bool unit_length = true;           // false: the output rows as they are (pooled features)
};

// What the job gives back: one unit-length row per image that could be decoded, in image
// order, and for each JPEG that could not (the caller decodes those another way), its index
// and why.
struct ImageBatchResult {
  std::vector<float> features;
  int64_t rows = 0;
  std::vector<std::pair<uint32_t, std::string>> failed;
};

// Item k of runImages' image array: { data: Uint8Array (HWC), width, height, channels,
// targetWidth, targetHeight } or { jpeg: Uint8Array, width, height, targetWidth,
// targetHeight }. Bytes are read in place: runImages keeps the array alive until its job is
// done, and lib/ hands over buffers only it holds.
BatchItem image_arg(Napi::Env env, const Napi::Value& v, uint32_t k);

// The images of `arr` (image_arg each; one channel count for all) and their normalisation into
// b->items and b->norm; `what` names the call in errors.
void images_and_norm(Napi::Env env, const Napi::Array& arr, const Napi::Object& norm,
                     const char* what, ImageBatch* b);

// One model input: consecutive prepared images of one target size.
struct ImageGroup {
  NamedTensor input;
  int64_t rows = 0;
};

// The batch's images decoded, resized and normalised into one input per run of equal target
// sizes; JPEGs that fail to decode go to r->failed. (prepareImages: another runtime runs them.)
std::vector<ImageGroup> prepare_image_groups(ImageBatch& b, ImageBatchResult* r);

ImageBatchResult run_image_batch(Executor& ex, ImageBatch& b);

Napi::Value image_batch_to_js(Napi::Env env, const ImageBatchResult& r);

}  // namespace addon
}  // namespace pif
