// N-API module registration: wires each area's entry points into the exports. The areas
// (see addon/addon.h) read and copy their arguments on the main thread and do all file,
// model and numeric work in jobs off it (addon/job.h).
#include "addon/addon.h"
#include "preprocess/jpeg_decode.h"

namespace pif {
namespace addon {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  init_predictor(env, exports);
  init_model_tools(env, exports);
  init_probe(env, exports);
  init_preprocess(env, exports);
  init_retrieval(env, exports);
  init_train(env, exports);
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  // Whether runImages decodes JPEG bytes itself (built with libjpeg); lib/ uses sharp if not.
  exports.Set("jpegDecode", Napi::Boolean::New(env, jpeg_decode_available()));
  return exports;
}

}  // namespace
}  // namespace addon
}  // namespace pif

// NODE_API_MODULE registers a context-aware module (safe in worker_threads).
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return pif::addon::Init(env, exports);
}
NODE_API_MODULE(paddle_image_feature, InitAddon)
