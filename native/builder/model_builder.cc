// Model builder: see model_builder.h; the public entry points (names, inference.yml, build_model).
// The graph itself is built by GraphBuilder (graph_builder.h); the graph idioms imitate real
// exports: PIR as Paddle 3.0.0 writes it (shared/fixtures: pplcnet_x0_25_textline_ori_pir,
// ppocrv5_server_rec_pir_graphonly) and legacy ProgramDesc as Paddle 2.6
// `paddle.jit.save` writes it (mobilenetv3_small_x0_35_meter_legacy;
// svtrnet_rus_rec_legacy_graphonly for the ViT-specific ops), or for
// PP-ShiTuV2_rec as Paddle 2.3.2 wrote the official export
// (pp_shituv2_rec_legacy_graphonly, compared in test/builder-official).
#include "builder/model_builder.h"

#include <algorithm>

#include "builder/graph_builder.h"
#include "common/error.h"

namespace pif {

namespace {

const char* const kShitu = "PP-ShiTuV2_rec";
const char* const kVitB = "PP-ShiTuV2_rec_CLIP_vit_base";
const char* const kVitL = "PP-ShiTuV2_rec_CLIP_vit_large";

}  // namespace

using builder::GraphBuilder;
using builder::LegacyWriter;
using builder::VitConfig;

const std::vector<std::string>& buildable_model_names() {
  static const std::vector<std::string> names = {kShitu, kVitB, kVitL};
  return names;
}

std::string model_inference_yml(const std::string& name) {
  const auto& names = buildable_model_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw ModelError(code::kUnsupported, "", -1, "model builder",
                     "unknown model '" + name + "'; buildable models: " + list);
  }
  const bool shitu = name == kShitu;
  std::string y;
  y += "Global:\n  model_name: " + name + "\n";
  y += "Hpi:\n"
       "  backend_configs:\n"
       "    paddle_infer:\n"
       "      trt_dynamic_shapes: &id001\n"
       "        x:\n"
       "        - - 1\n          - 3\n          - 224\n          - 224\n"
       "        - - 1\n          - 3\n          - 224\n          - 224\n"
       "        - - 8\n          - 3\n          - 224\n          - 224\n"
       "    tensorrt:\n"
       "      dynamic_shapes: *id001\n";
  y += "PreProcess:\n  transform_ops:\n  - ResizeImage:\n";
  if (shitu) {
    y += "      backend: cv2\n"
         "      interpolation: bilinear\n"
         "      return_numpy: false\n"
         "      size:\n"
         "      - 224\n"
         "      - 224\n";
  } else {
    y += "      interpolation: bicubic\n"
         "      size: 224\n";
  }
  y += "  - NormalizeImage:\n"
       "      channel_num: 3\n"
       "      mean:\n"
       "      - 0.485\n"
       "      - 0.456\n"
       "      - 0.406\n";
  y += shitu ? "      order: hwc\n" : "      order: ''\n";
  y += "      scale: 0.00392156862745098\n"
       "      std:\n"
       "      - 0.229\n"
       "      - 0.224\n"
       "      - 0.225\n"
       "  - ToCHWImage: null\n"
       "PostProcess:\n"
       "  NormalizeFeatures: null\n";
  return y;
}

BuiltModel build_model(const std::string& name, ProgramFormat format, uint64_t seed,
                       const BuildOptions& opts) {
  BuiltModel out;
  out.inference_yml = model_inference_yml(name);  // validates the name
  // The official PP-ShiTuV2_rec legacy export is Paddle 2.3.2's.
  GraphBuilder g(format, name == kShitu ? LegacyWriter::Paddle23 : LegacyWriter::Paddle26);
  if (name == kShitu) {
    builder::build_shitu(g);
  } else if (name == kVitB) {
    const int64_t depth = opts.vit_depth > 0 ? opts.vit_depth : 12;
    builder::build_vit(g, VitConfig{16, 768, depth, 12, true}, opts.clip_activation);
  } else {
    const int64_t depth = opts.vit_depth > 0 ? opts.vit_depth : 24;
    builder::build_vit(g, VitConfig{14, 1024, depth, 16, false}, opts.clip_activation);
  }
  out.model.program = g.finish(seed, nullptr);
  out.model.params_layout = ParamsLayout::Combined;
  return out;
}

}  // namespace pif
