// The CLIP ViT feature models (PP-ShiTuV2_rec_CLIP_vit_base / _large): PaddleClas's foundation_vit
// VisionTransformer and the FC neck.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <utility>

#include "builder/graph_builder.h"
#include "common/error.h"

namespace pif {
namespace builder {

// CLIP ViT feature model (architectures.md section 2): PaddleClas
// foundation_vit VisionTransformer with return_embed/return_mean_embed, then
// the FC neck.
void build_vit(GraphBuilder& g, const VitConfig& c, ClipActivation act) {
  const int64_t grid = 224 / c.patch;
  const int64_t T = grid * grid + 1;
  const int64_t d = c.width;
  const int64_t hd = d / c.heads;
  const float lin_std = 0.02f;

  ValueId x = g.input("x", {-1, 3, 224, 224});
  g.push("RecModel");
  g.push("VisionTransformer");
  ValueId B = g.batch_size(x);
  g.push("PatchEmbed");
  g.push("Conv2D");
  ValueId pw = g.param("conv2d_0.w_0", {d, 3, c.patch, c.patch},
                       normal_init(0.f, std::sqrt(1.0f / (3 * c.patch * c.patch))));
  ValueId y = g.conv2d(x, pw, c.patch, 0, 1);
  g.pop();
  y = g.flatten(y, 2, 3);
  y = g.transpose(y, {0, 2, 1});
  g.pop();
  ValueId pos = g.param("vision_transformer_0.w_0", {1, T, d}, normal_init(0.f, lin_std));
  ValueId cls = g.param("vision_transformer_0.w_1", {1, 1, d}, normal_init(0.f, lin_std));
  ValueId cls_b = g.expand_batch(cls, B);
  y = g.concat({cls_b, y}, 1);
  y = g.add(y, pos);
  g.push("LayerNorm");
  y = g.layer_norm(y, "layer_norm_0");
  g.pop();

  for (int64_t i = 0; i < c.depth; ++i) {
    g.push(i == 0 ? std::string("Block") : "Block_" + std::to_string(i));
    const std::string ln1 = "layer_norm_" + std::to_string(2 * i + 1);
    const std::string ln2 = "layer_norm_" + std::to_string(2 * i + 2);
    const std::string qkv = "linear_" + std::to_string(4 * i);
    const std::string proj = "linear_" + std::to_string(4 * i + 1);
    const std::string fc1 = "linear_" + std::to_string(4 * i + 2);
    const std::string fc2 = "linear_" + std::to_string(4 * i + 3);
    g.push("LayerNorm");
    ValueId h = g.layer_norm(y, ln1);
    g.pop();
    g.push("Attention");
    h = g.linear(h, qkv, d, 3 * d, lin_std);
    h = g.reshape(h, {-1, T, 3, c.heads, hd});
    h = g.transpose(h, {2, 0, 3, 1, 4});
    ValueId q = g.slice(h, {0}, {0}, {1}, {0});
    ValueId k = g.slice(h, {0}, {1}, {2}, {0});
    ValueId v = g.slice(h, {0}, {2}, {3}, {0});
    ValueId kt = g.transpose(k, {0, 1, 3, 2});
    ValueId a = g.matmul(q, kt);
    a = g.scale(a, 1.0 / std::sqrt(static_cast<double>(hd)));
    a = g.softmax(a);
    ValueId o = g.matmul(a, v);
    o = g.transpose(o, {0, 2, 1, 3});
    o = g.reshape(o, {-1, T, d});
    o = g.linear(o, proj, d, d, lin_std);
    g.pop();
    y = g.add(y, o);
    g.push("LayerNorm_1");
    h = g.layer_norm(y, ln2);
    g.pop();
    g.push("Mlp");
    h = g.linear(h, fc1, d, 4 * d, lin_std);
    if (act == ClipActivation::QuickGelu) {
      g.push("QuickGELU");
      ValueId s = g.scale(h, 1.702);
      s = g.act("sigmoid", s);
      h = g.multiply(h, s);
      g.pop();
    } else {
      g.push("GELU");
      h = g.gelu(h);
      g.pop();
    }
    h = g.linear(h, fc2, 4 * d, d, lin_std);
    g.pop();
    y = g.add(y, h);
    g.pop();
  }
  if (c.drop_cls) y = g.slice(y, {1}, {1}, {std::numeric_limits<int32_t>::max()}, {});
  g.push("LayerNorm");
  y = g.layer_norm(y, "layer_norm_" + std::to_string(2 * c.depth + 1));
  g.pop();
  ValueId pj = g.param("vision_transformer_0.w_2", {d, 512},
                       normal_init(0.f, 1.0f / std::sqrt(static_cast<float>(d))));
  y = g.matmul(y, pj);
  y = g.mean(y, 1);
  g.pop();  // VisionTransformer
  g.push("FC");
  g.push("Linear");
  y = g.linear(y, "linear_" + std::to_string(4 * c.depth), 512, 512, std::sqrt(2.0f / 1024));
  g.pop();
  g.pop();
  g.pop();
  g.output(y);
}

}  // namespace builder
}  // namespace pif
