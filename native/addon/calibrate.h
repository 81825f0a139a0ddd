// int8 calibration (hpi): the input statistics of every fused convolution over one batch, and
// the fused convolutions of an executor. NativeModel.calibrate / convLayers (predictor.cc).
#pragma once

#include <memory>
#include <vector>

#include "addon/napi_include.h"
#include "runtime/executor.h"

namespace pif {
namespace addon {

// Runs `inputs` through `ex` off the main thread; resolves { layers, outputs }: one entry per
// fused convolution { ordinal, min, max, absMax, pixels (input H * W), percentiles: [|x| at
// each requested percentile] }, and the run's outputs as run() gives them.
Napi::Value start_calibration(Napi::Env env, std::shared_ptr<Executor> ex,
                              std::vector<NamedTensor> inputs, int threads,
                              std::vector<double> percentiles);

// [{ ordinal, outChannels, inChannels, kh, kw, groups, int8, node }] (node as engine fallbacks
// name it, e.g. "op 12 (pd_op.conv2d)")
Napi::Value conv_layers_to_js(Napi::Env env, const Executor& ex);

}  // namespace addon
}  // namespace pif
