// Test-model builder: emits the exported inference graphs of the three
// PaddleX image-feature models (PP-ShiTuV2_rec and the two CLIP ViT feature
// models) in Paddle's own op vocabulary, in either format a real export uses
// (PIR inference.json as Paddle 3.0 writes it, or a legacy ProgramDesc as
// `paddle.jit.save` writes it: Paddle 2.3.2 for PP-ShiTuV2_rec, whose legacy
// build equals the official export apart from run-time extra attributes,
// Paddle 2.6 for the CLIP models), with seeded random weights of realistic
// scale. Official weights cannot be downloaded here; tests and
// benchmarks run these instead. Structure per shared/spec/architectures.md.
//
// Weights depend only on (seed, parameter name), never on the format, so the
// PIR and legacy builds of one model with one seed compute the same function.
// The generator is a hand-written splitmix64 stream (no <random>
// distributions), so a seed gives the same bytes on every platform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/model_dir.h"
#include "graph/ir.h"

namespace pif {

// Activation of the CLIP MLP. PaddleClas's foundation_vit.py used QuickGELU
// (x * sigmoid(1.702 x), exported as scale -> sigmoid -> multiply) for the
// CLIP models until 2024-05-27 (commit 0bfed92c, "use nn.GELU instead of
// QuickGELU"); since then, including the PP-ShiTuV2 CLIP configs PaddleX
// trains and exports with (2024-09), they use nn.GELU: exact GELU, exported
// as gelu with approximate=false. QuickGelu stays for older CLIP exports.
enum class ClipActivation : uint8_t { QuickGelu, Gelu };

struct BuildOptions {
  ClipActivation clip_activation = ClipActivation::Gelu;
  // CLIP models with this many encoder blocks instead of 12 / 24 (0: the model's own): the
  // same graph shape and tail, small enough for training tests.
  int64_t vit_depth = 0;
};

// Bumped whenever a built graph or its weights change for some (name,
// format, seed), so that caches of built models (the benchmark's) rebuild.
// 2: PP-ShiTuV2_rec as the official export (names, Paddle 2.3 legacy form);
//    CLIP MLPs default to exact GELU.
constexpr int kBuilderVersion = 2;

struct BuiltModel {
  LoadedModel model;          // program + bound params (one arena); dir empty
  std::string inference_yml;  // the inference.yml PaddleX would write beside it
};

// The names build_model accepts.
const std::vector<std::string>& buildable_model_names();

// Builds `name` (one of buildable_model_names()) in `format`. Throws
// ModelError code::kUnsupported for an unknown name.
BuiltModel build_model(const std::string& name, ProgramFormat format, uint64_t seed,
                       const BuildOptions& opts = BuildOptions());

// The inference.yml text for `name` (PaddleX form; paddlex-behaviour.md 1.5).
std::string model_inference_yml(const std::string& name);

}  // namespace pif
