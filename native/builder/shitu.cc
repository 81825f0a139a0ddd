// PP-ShiTuV2_rec (PPLCNetV2_base_ShiTu + BNNeck) as PaddleClas builds and Paddle 2.3.2 exported it,
// with PaddleClas's parameter names.
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
namespace {

// PPLCNetV2_base_ShiTu + BNNeck (architectures.md section 1), as PaddleClas
// (the revision of 2022-08 that exported the official model) constructs it.
// Paddle names a parameter after its layer: each Conv2D / BatchNorm2D takes
// the next conv2d_N / batch_norm2d_N of a per-type unique-name counter when
// it is constructed, whether or not the exported forward uses it. So the
// names follow __init__ order, not the forward: the training-only
// re-parameterisation branches (dw_conv_list) take numbers, and
// PPLCNetV2_base_ShiTu replaces layers after PPLCNetV2 has built them all:
// last_conv (re-created with a bias) and the two stage-4 blocks (re-created
// with stride 1, so block 0 gains a third branch), in that order. Checked
// against the official inference.pdiparams.info (test/builder-official).

struct ShituBlock {
  int64_t cin, cout, stride, dw;
  bool rep, se, split, shortcut;
};

// Block i of stage s (0..3) as PPLCNetV2 configures it; the stem's block is
// stage -1.
ShituBlock shitu_block(int s, int64_t i, bool shitu_stride) {
  if (s < 0) return {32, 64, 1, 3, false, false, false, false};
  const int64_t base[4] = {64, 128, 256, 512};
  ShituBlock b;
  b.cin = i == 0 ? base[s] : base[s] * 2;
  b.cout = base[s] * 2;
  b.stride = (i == 0 && !(s == 3 && shitu_stride)) ? 2 : 1;
  b.dw = s < 2 ? 3 : 5;
  b.rep = s >= 2;
  b.se = s == 2;
  b.split = s == 2;
  b.shortcut = s == 3;
  return b;
}

struct ConvBnNames {
  std::string conv, bn;
};
struct ShituBlockNames {
  ConvBnNames dw;  // rep blocks: the re-parameterised conv (bias, no BN)
  std::string se1, se2;
  std::vector<ConvBnNames> pw;  // one, or two when split
};
struct ShituNames {
  ConvBnNames stem;
  ShituBlockNames stem_block;
  std::vector<std::vector<ShituBlockNames>> stages;  // what the forward uses
  std::string last_conv;
  // Layers constructed per unique-name key that the traced forward's op
  // helpers share (legacy temporaries continue these counters).
  int conv_layers = 0, sigmoid_layers = 0, dropout_layers = 0, flatten_layers = 0;
};

ShituNames shitu_names() {
  ShituNames n;
  int conv = 0, bn = 0;
  auto conv_bn = [&] {
    return ConvBnNames{"conv2d_" + std::to_string(conv++), "batch_norm2d_" + std::to_string(bn++)};
  };
  auto block = [&](const ShituBlock& b) {
    ShituBlockNames k;
    if (b.rep) {
      // dw_conv_list: kernels dw, dw-2, ..., 1 (1 only at stride 1), each a
      // ConvBNLayer; then the Conv2D (with bias) they are folded into.
      for (int64_t ks = b.dw; ks > 0; ks -= 2)
        if (ks != 1 || b.stride == 1) conv_bn();
      k.dw.conv = "conv2d_" + std::to_string(conv++);
    } else {
      k.dw = conv_bn();
    }
    if (b.se) {
      k.se1 = "conv2d_" + std::to_string(conv++);
      k.se2 = "conv2d_" + std::to_string(conv++);
      ++n.sigmoid_layers;
    }
    k.pw.push_back(conv_bn());
    if (b.split) k.pw.push_back(conv_bn());
    return k;
  };
  const int64_t depths[4] = {2, 2, 6, 2};
  // PPLCNetV2.__init__: stem, stages, last_conv (bias-free), dropout,
  // flatten, fc (a Linear: no conv/bn name).
  n.stem = conv_bn();
  n.stem_block = block(shitu_block(-1, 0, false));
  n.stages.resize(4);
  for (int s = 0; s < 4; ++s)
    for (int64_t i = 0; i < depths[s]; ++i) n.stages[s].push_back(block(shitu_block(s, i, false)));
  ++conv;  // the original last_conv
  ++n.dropout_layers;
  ++n.flatten_layers;
  // PPLCNetV2_base_ShiTu: upgrade_sublayer("last_conv") then the stage-4
  // blocks; the replaced layers keep the numbers they took.
  n.last_conv = "conv2d_" + std::to_string(conv++);
  for (int64_t i = 0; i < depths[3]; ++i) n.stages[3][i] = block(shitu_block(3, i, true));
  ++n.flatten_layers;  // BNNeck.flatten (its BatchNorm1D is batch_norm1d_0)
  n.conv_layers = conv;
  return n;
}

}  // namespace

void build_shitu(GraphBuilder& g) {
  const ShituNames names = shitu_names();
  if (!g.pir()) {
    g.seed_counter("conv2d", names.conv_layers);
    g.seed_counter("dropout", names.dropout_layers);
    g.seed_counter("flatten", names.flatten_layers);
    // The official export's first sigmoid temporary is sigmoid_7: one more
    // sigmoid name was taken before tracing than the six SE layers account
    // for (by the exporting process, not by PaddleClas's model code).
    g.seed_counter("sigmoid", names.sigmoid_layers + 1);
  }

  auto conv_bn = [&](ValueId x, const ConvBnNames& nm, int64_t cin, int64_t cout, int64_t k,
                     int64_t stride, int64_t groups) {
    g.push("ConvBNLayer");
    g.push("Conv2D");
    ValueId w =
        g.param(nm.conv + ".w_0", {cout, cin / groups, k, k}, he_init(cin / groups * k * k));
    ValueId y = g.conv2d(x, w, stride, (k - 1) / 2, groups);
    g.pop();
    g.push("BatchNorm2D");
    y = g.batch_norm(y, nm.bn);
    g.pop();
    g.push("ReLU");
    y = g.act("relu", y);
    g.pop();
    g.pop();
    return y;
  };
  auto conv_with_bias = [&](ValueId x, const std::string& cn, int64_t cin, int64_t cout, int64_t k,
                            int64_t stride, int64_t groups, Init wi) {
    ValueId w = g.param(cn + ".w_0", {cout, cin / groups, k, k}, wi);
    ValueId b = g.param(cn + ".b_0", {cout}, normal_init(0.f, 0.05f));
    ValueId y = g.conv2d(x, w, stride, (k - 1) / 2, groups);
    return g.conv_bias(y, b);
  };
  auto se = [&](ValueId x, const ShituBlockNames& nm, int64_t c) {
    g.push("SEModule");
    ValueId id = x;
    g.push("AdaptiveAvgPool2D");
    ValueId y = g.avg_pool_1x1(x);
    g.pop();
    g.push("Conv2D");
    y = conv_with_bias(y, nm.se1, c, c / 4, 1, 1, 1, he_init(c));
    g.pop();
    g.push("ReLU");
    y = g.act("relu", y);
    g.pop();
    g.push("Conv2D_1");
    y = conv_with_bias(y, nm.se2, c / 4, c, 1, 1, 1, normal_init(0.f, std::sqrt(1.0f / (c / 4))));
    g.pop();
    g.push("Sigmoid");
    y = g.act("sigmoid", y);
    g.pop();
    y = g.multiply(id, y);
    g.pop();
    return y;
  };
  // RepDepthwiseSeparable in eval mode, re-parameterised.
  auto rep_ds = [&](ValueId x, const ShituBlock& b, const ShituBlockNames& nm) {
    g.push("RepDepthwiseSeparable");
    ValueId y;
    if (b.rep) {
      g.push("Conv2D");
      y = conv_with_bias(x, nm.dw.conv, b.cin, b.cin, b.dw, b.stride, b.cin, he_init(b.dw * b.dw));
      g.pop();
      g.push("ReLU");
      y = g.act("relu", y);
      g.pop();
    } else {
      y = conv_bn(x, nm.dw, b.cin, b.cin, b.dw, b.stride, b.cin);
    }
    if (b.se) y = se(y, nm, b.cin);
    if (b.split) {
      y = conv_bn(y, nm.pw[0], b.cin, b.cout / 2, 1, 1, 1);
      y = conv_bn(y, nm.pw[1], b.cout / 2, b.cout, 1, 1, 1);
    } else {
      y = conv_bn(y, nm.pw[0], b.cin, b.cout, 1, 1, 1);
    }
    if (b.shortcut && b.stride == 1 && b.cin == b.cout) y = g.plus(y, x);
    g.pop();
    return y;
  };

  ValueId x = g.input("x", {-1, 3, 224, 224});
  g.push("RecModel");
  g.push("PPLCNetV2");
  g.push("Sequential");
  x = conv_bn(x, names.stem, 3, 32, 3, 2, 1);
  x = rep_ds(x, shitu_block(-1, 0, true), names.stem_block);
  g.pop();
  for (int s = 0; s < 4; ++s) {
    g.push(s == 0 ? std::string("Sequential_1") : "Sequential_" + std::to_string(s + 1));
    for (size_t i = 0; i < names.stages[s].size(); ++i)
      x = rep_ds(x, shitu_block(s, static_cast<int64_t>(i), true), names.stages[s][i]);
    g.pop();
  }
  g.push("AdaptiveAvgPool2D");
  x = g.avg_pool_1x1(x);
  g.pop();
  // last_conv with bias; its ReLU is an Identity in the ShiTu variant.
  g.push("Conv2D");
  x = conv_with_bias(x, names.last_conv, 1024, 512, 1, 1, 1,
                     normal_init(0.f, std::sqrt(1.0f / 1024)));
  g.pop();
  g.push("Dropout");
  x = g.dropout(x, 0.2);
  g.pop();
  g.push("Flatten");
  x = g.flatten(x, 1, 3);
  g.pop();
  g.pop();  // PPLCNetV2
  g.push("BNNeck");
  g.push("Flatten");
  x = g.flatten(x, 1, 1);
  g.pop();
  g.push("BatchNorm1D");
  x = g.batch_norm(x, "batch_norm1d_0");
  g.pop();
  g.pop();
  g.pop();  // RecModel
  g.output(x);
}

}  // namespace builder
}  // namespace pif
