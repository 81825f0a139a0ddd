// The addon's areas. Each init_* adds its entry points to the module's exports; addon.cc
// calls them all from the module's Init.
#pragma once

#include "addon/napi_include.h"

namespace pif {
namespace addon {

// Per-environment state (one per main thread or worker_thread), owned by Node.
struct AddonData {
  Napi::FunctionReference native_model;  // the NativeModel class (loadModel resolves one)
  Napi::FunctionReference head_tier;     // the NativeHeadTier class (openHeadTier)
};

// predictor.cc: NativeModel (info, engine, run, close, closed) and loadModel.
void init_predictor(Napi::Env env, Napi::Object exports);
// model_tools.cc: inspectModel, dumpModel, saveModel, exportOnnx, buildModel and the
// builder's buildableModels and builderVersion.
void init_model_tools(Napi::Env env, Napi::Object exports);
// preprocess.cc: preprocessImage.
void init_preprocess(Napi::Env env, Napi::Object exports);
// retrieval.cc: evaluateRetrieval and searchTopK.
void init_retrieval(Napi::Env env, Napi::Object exports);
// train.cc: openHeadTier (the head tier of training).
void init_train(Napi::Env env, Napi::Object exports);
// probe.cc: probePeak.
void init_probe(Napi::Env env, Napi::Object exports);

}  // namespace addon
}  // namespace pif
