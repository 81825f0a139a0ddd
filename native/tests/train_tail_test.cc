// The head tier's cut of PP-ShiTuV2_rec (native/train/shitu_tail.h) on the builder's model in
// both export forms: the tail found with its parameters, and the tail recomputed by the head
// tier's inference (native/train/head.h) from the pooled features the program gives when the
// pool's output is made a graph output equals the program's own features, in normal and hpi
// mode. A program whose output is not a BNNeck is refused, naming the op.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "builder/model_builder.h"
#include "common/error.h"
#include "passes/constant_fold.h"
#include "tests/harness.h"
#include "tests/util.h"
#include "train/head.h"
#include "train/head_tier.h"
#include "train/shitu_tail.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {
namespace {

// Features and pooled features of `n` images through `m` with the pool as a second output.
std::vector<NamedTensor> run_with_pooled(const LoadedModel& m, ValueId pooled, bool hpi, int n) {
  auto cut = std::make_shared<LoadedModel>(m);
  IoBinding out;
  out.name = "pooled";
  out.value = pooled;
  out.col = static_cast<int32_t>(cut->program.outputs.size());
  cut->program.outputs.push_back(out);
  ExecutorOptions opts;
  opts.hpi = hpi;
  Executor ex(cut, opts);
  NamedTensor in;
  in.name = cut->program.inputs[0].name;
  in.dtype = DType::Float32;
  in.dims = {n, 3, 224, 224};
  std::vector<double> x = gaussian_values(static_cast<size_t>(n) * 3 * 224 * 224, 5);
  in.data.resize(x.size() * sizeof(float));
  for (size_t i = 0; i < x.size(); ++i) reinterpret_cast<float*>(in.data.data())[i] = float(x[i]);
  return ex.run({in}, 1);
}

}  // namespace

// The builder's model as a loader gives it: constants folded.
std::shared_ptr<LoadedModel> built_shitu(ProgramFormat fmt) {
  auto m = std::make_shared<LoadedModel>(build_model("PP-ShiTuV2_rec", fmt, 7).model);
  fold_constants(&m->program);
  return m;
}

PIF_TEST(train_tail, shitu_tail_matches_the_program) {
  for (ProgramFormat fmt : {ProgramFormat::Pir, ProgramFormat::Legacy}) {
    const std::string form = fmt == ProgramFormat::Pir ? "PIR" : "legacy";
    std::shared_ptr<LoadedModel> model = built_shitu(fmt);
    Executor ex(model);
    const train::ShituTail t = train::find_shitu_tail(ex, "<built>");
    if (t.in != 1024 || t.dim != 512) FAILF(form + ": in/dim " + std::to_string(t.in));
    if (std::fabs(t.dropout_scale - 0.8) > 1e-6) FAILF(form + ": dropout scale");
    if (std::fabs(t.bn_epsilon - 1e-5) > 1e-12) FAILF(form + ": BN epsilon");
    const Program& p = model->program;
    const train::HeadWeights<float> w = train::tail_weights(p, t, 1, 0.001, 0);
    train::HeadConfig cfg;
    cfg.dropout = 1 - t.dropout_scale;
    cfg.bn_epsilon = t.bn_epsilon;
    for (bool hpi : {false, true}) {
      const int n = 2;
      std::vector<NamedTensor> out = run_with_pooled(*model, t.pooled, hpi, n);
      if (out.size() != 2 || out[1].dims != std::vector<int64_t>{n, t.in, 1, 1}) {
        FAILF(form + ": no pooled output");
        continue;
      }
      std::vector<float> y(static_cast<size_t>(n * t.dim));
      train::head_features(w, cfg, reinterpret_cast<const float*>(out[1].data.data()), n, y.data());
      const float* want = reinterpret_cast<const float*>(out[0].data.data());
      double worst = 0;
      for (size_t k = 0; k < y.size(); ++k)
        worst = std::max(worst, double(std::fabs(y[k] - want[k])));
      if (verbose())
        std::printf("%s %s: max |head - program| %.3g\n", form.c_str(), hpi ? "hpi" : "normal",
                    worst);
      if (worst > 1e-5)
        FAILF(form + (hpi ? " hpi" : " normal") + ": head features differ by " +
              std::to_string(worst));
    }
  }
}

PIF_TEST(train_tail, refuses_another_tail) {
  std::shared_ptr<LoadedModel> model = built_shitu(ProgramFormat::Pir);
  Executor full(model);
  const train::ShituTail t = train::find_shitu_tail(full, "<built>");
  auto cut = std::make_shared<LoadedModel>(*model);
  cut->program.outputs[0].value = t.pooled;  // the output is now the pool itself
  Executor ex(cut);
  try {
    train::find_shitu_tail(ex, "/models/x");
    FAILF("a program ending in the pool was taken for a ShiTu tail");
  } catch (const ModelError& e) {
    if (e.code() != code::kUnsupported || e.file() != "/models/x" ||
        e.detail().find("pool2d) stands where the output's batch_norm") == std::string::npos)
      FAILF(e.code() + ": " + e.detail());
  }
}

}  // namespace pif::test

namespace pif::test {

// The CLIP models' tail (the mean of the projected tokens -> FC neck): found on a one-block
// ViT-B in both export forms, and the neck recomputed from the pooled rows equals the program's
// output in normal and hpi mode; the written-back weight keeps the program's [in, dim] layout.
PIF_TEST(train_tail, clip_tail_matches_the_program) {
  BuildOptions opts;
  opts.vit_depth = 1;
  for (ProgramFormat fmt : {ProgramFormat::Pir, ProgramFormat::Legacy}) {
    const std::string form = fmt == ProgramFormat::Pir ? "PIR" : "legacy";
    auto model = std::make_shared<LoadedModel>(
        build_model("PP-ShiTuV2_rec_CLIP_vit_base", fmt, 3, opts).model);
    fold_constants(&model->program);
    Executor ex(model);
    const train::ShituTail t = train::find_shitu_tail(ex, "<built>");
    if (!t.clip || t.in != 512 || t.dim != 512 || t.bn_scale != -1)
      return FAILF(form + ": not a CLIP tail of 512 -> 512");
    const train::HeadWeights<float> w = train::tail_weights(model->program, t, 3, 0.001, 0);
    const Parameter& wp = model->program.params[t.conv_weight];
    if (train::program_layout_weight(t, w) !=
        std::vector<float>(reinterpret_cast<const float*>(wp.tensor.data()),
                           reinterpret_cast<const float*>(wp.tensor.data()) + wp.tensor.numel()))
      FAILF(form + ": the neck weight does not go back to the program's layout");
    train::HeadConfig cfg;
    cfg.bnneck = false;
    cfg.arc_margin = true;
    for (bool hpi : {false, true}) {
      const int n = 2;
      std::vector<NamedTensor> out = run_with_pooled(*model, t.pooled, hpi, n);
      if (out.size() != 2 || out[1].dims != std::vector<int64_t>{n, t.in}) {
        FAILF(form + ": no pooled output");
        continue;
      }
      std::vector<float> y(static_cast<size_t>(n * t.dim));
      train::head_features(w, cfg, reinterpret_cast<const float*>(out[1].data.data()), n, y.data());
      const float* want = reinterpret_cast<const float*>(out[0].data.data());
      double worst = 0, scale = 0;
      for (size_t k = 0; k < y.size(); ++k) {
        worst = std::max(worst, double(std::fabs(y[k] - want[k])));
        scale = std::max(scale, double(std::fabs(want[k])));
      }
      if (verbose())
        std::printf("CLIP %s %s: max |neck - program| %.3g of %.3g\n", form.c_str(),
                    hpi ? "hpi" : "normal", worst, scale);
      if (worst > 1e-5 * std::max(1.0, scale))
        FAILF(form + (hpi ? " hpi" : " normal") + ": neck features differ by " +
              std::to_string(worst));
    }
  }
}

}  // namespace pif::test
