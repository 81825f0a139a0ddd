// Test-model builder: emits the exported inference graphs of the three
// PaddleX image-feature models (PP-ShiTuV2_rec and the two CLIP ViT feature
// models) in Paddle's own op vocabulary, in either format a real export uses
// (PIR inference.json as Paddle 3.0 writes it, or a legacy ProgramDesc as
// Paddle 2.6 `paddle.jit.save` writes it), with seeded random weights of
// realistic scale. Official weights cannot be downloaded here; tests and
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

// Activation of the CLIP MLP. The PaddleClas revision that the official
// CLIP feature models were exported with is not known: older revisions use
// QuickGELU (exported as scale(1.702) -> sigmoid -> multiply), the revision
// PaddleX trains with uses exact GELU (gelu, approximate=false).
enum class ClipActivation : uint8_t { QuickGelu, Gelu };

struct BuildOptions {
  ClipActivation clip_activation = ClipActivation::QuickGelu;
};

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
