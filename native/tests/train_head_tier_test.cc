// The head tier's run (native/train/head_tier.h): the PK sampler's batches and its refusals, a
// seeded run on synthetic pooled features that cuts the loss and repeats bit for bit, and the
// trained tail written back into a copy of a saved PP-ShiTuV2_rec directory: program file
// unchanged, the new parameters read back exactly, and the reloaded model's features equal
// to the trained tail's on its own pooled output.
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "builder/model_builder.h"
#include "format/model_dir.h"
#include "passes/constant_fold.h"
#include "tests/harness.h"
#include "tests/util.h"
#include "train/head_tier.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::shared_ptr<LoadedModel> load_folded(const std::string& dir) {
  LoadOptions opts;
  auto m = std::make_shared<LoadedModel>(load_model(dir, opts));
  fold_constants(&m->program);
  return m;
}

// 8 labels x 24 rows of non-negative 1024-d "pooled features" (cluster centre + noise).
void clustered(std::vector<float>* x, std::vector<int64_t>* labels) {
  std::mt19937_64 rng(12);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> centre(1024);
  for (int64_t c = 0; c < 8; ++c) {
    for (float& v : centre) v = std::fabs(nd(rng));
    for (int k = 0; k < 24; ++k) {
      for (float v : centre) x->push_back(std::max(0.f, v + 0.7f * nd(rng)));
      labels->push_back(c);
    }
  }
}

// A 1024 -> 32 tail with 8 classes: Normal(0, std) weights, an identity BNNeck.
train::HeadWeights<float> small_tail(float std, uint64_t seed) {
  train::HeadWeights<float> w;
  w.in = 1024, w.dim = 32, w.classes = 8;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, std);
  w.w.resize(32 * 1024);
  for (float& v : w.w) v = nd(rng);
  w.b.assign(32, 0.f), w.gamma.assign(32, 1.f), w.beta.assign(32, 0.f);
  w.mean.assign(32, 0.f), w.var.assign(32, 1.f);
  w.fc.resize(32 * 8);
  for (float& v : w.fc) v = nd(rng);
  return w;
}

}  // namespace

PIF_TEST(train_head_tier, pk_sampler) {
  std::vector<int64_t> labels = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 7, 7, 7, 7};
  std::mt19937_64 rng(1);
  auto batches = train::pk_batches(labels, 8, 4, rng);
  if (batches.size() != 2) return FAILF("batches: " + std::to_string(batches.size()));
  for (const auto& b : batches) {
    std::set<int64_t> seen;
    for (size_t k = 0; k < b.size(); k += 4) {
      const int64_t l = labels[b[k]];
      if (!seen.insert(l).second) FAILF("a label drawn twice in one batch");
      for (size_t q = k; q < k + 4; ++q)
        if (labels[b[q]] != l) FAILF("a row of another label in a label's group");
    }
  }
  auto refused = [&](int64_t batch, int64_t k, const std::string& words) {
    try {
      train::pk_batches(labels, batch, k, rng);
      FAILF("batch " + std::to_string(batch) + " accepted");
    } catch (const std::invalid_argument& e) {
      if (std::string(e.what()).find(words) == std::string::npos) FAILF(e.what());
    }
  };
  refused(6, 4, "batch size (6) must be a multiple of the images per label (4)");
  refused(20, 4, "needs at least 5 labels of 4 images, but the dataset has 4");
}

PIF_TEST(train_head_tier, train_write_reload) {
  char tmpl[] = "/tmp/pif-head-tier-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return FAILF("mkdtemp");
  const std::string root = tmpl, base = root + "/base", trained = root + "/trained";
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{root};
  save_model(build_model("PP-ShiTuV2_rec", ProgramFormat::Pir, 7).model, base,
             ParamsLayout::Combined);
  std::shared_ptr<LoadedModel> m = load_folded(base);
  Executor ex(m);
  const train::ShituTail t = train::find_shitu_tail(ex, base);
  std::vector<float> x;
  std::vector<int64_t> labels;
  clustered(&x, &labels);
  train::HeadTrainConfig cfg;
  cfg.classes = 8, cfg.epochs = 6, cfg.batch = 16, cfg.warmup_epochs = 1, cfg.lr = 0.05;
  cfg.seed = 3;
  cfg.head.dropout = 1 - t.dropout_scale;
  cfg.head.bn_epsilon = t.bn_epsilon;
  const train::HeadWeights<float> init = train::tail_weights(m->program, t, 8, 0.001, 1);
  int seen_epochs = 0;
  const train::HeadTrainResult r = train::train_head(init, x.data(), labels, cfg, [&](auto&) {
    ++seen_epochs;
    return true;
  });
  if (seen_epochs != 6 || r.epochs.size() != 6 || r.steps_per_epoch != 12)
    return FAILF("epochs " + std::to_string(seen_epochs));
  if (verbose())
    std::printf("loss %.4f -> %.4f\n", r.epochs.front().loss.total, r.epochs.back().loss.total);
  if (!(r.epochs.back().loss.total < 0.8 * r.epochs.front().loss.total))
    FAILF("loss did not fall: " + std::to_string(r.epochs.front().loss.total) + " -> " +
          std::to_string(r.epochs.back().loss.total));
  const train::HeadTrainResult again = train::train_head(init, x.data(), labels, cfg, nullptr);
  if (again.weights.w != r.weights.w || again.weights.fc != r.weights.fc ||
      again.weights.mean != r.weights.mean)
    FAILF("the same seed gave other weights");
  const train::HeadTrainResult stopped =
      train::train_head(init, x.data(), labels, cfg, [](auto& e) { return e.epoch < 2; });
  if (stopped.epochs.size() != 2)
    FAILF("cancel after epoch 2 ran " + std::to_string(stopped.epochs.size()));

  train::write_trained_model(*m, t, r.weights, trained);
  if (slurp(base + "/inference.json") != slurp(trained + "/inference.json"))
    FAILF("the program file changed");
  if (slurp(base + "/inference.yml") != slurp(trained + "/inference.yml"))
    FAILF("inference.yml changed");
  std::shared_ptr<LoadedModel> m2 = load_folded(trained);
  Executor ex2(m2);
  const train::ShituTail t2 = train::find_shitu_tail(ex2, trained);
  const train::HeadWeights<float> back = train::tail_weights(m2->program, t2, 8, 0.001, 1);
  if (back.w != r.weights.w || back.b != r.weights.b || back.gamma != r.weights.gamma ||
      back.beta != r.weights.beta || back.mean != r.weights.mean || back.var != r.weights.var)
    FAILF("the written parameters differ from the trained ones");
  // The reloaded model's features = the trained tail on the model's own pooled output.
  auto cut = std::make_shared<LoadedModel>(*m2);
  cut->program.outputs.push_back({"pooled", t2.pooled, 1});
  Executor ex3(cut);
  NamedTensor in;
  in.name = cut->program.inputs[0].name;
  in.dtype = DType::Float32;
  in.dims = {2, 3, 224, 224};
  std::vector<double> img = gaussian_values(2 * 3 * 224 * 224, 9);
  in.data.resize(img.size() * sizeof(float));
  for (size_t i = 0; i < img.size(); ++i)
    reinterpret_cast<float*>(in.data.data())[i] = static_cast<float>(img[i]);
  std::vector<NamedTensor> out = ex3.run({in}, 1);
  std::vector<float> y(2 * 512);
  train::head_features(r.weights, cfg.head, reinterpret_cast<const float*>(out[1].data.data()), 2,
                       y.data());
  const float* want = reinterpret_cast<const float*>(out[0].data.data());
  double worst = 0;
  for (size_t k = 0; k < y.size(); ++k) worst = std::max(worst, double(std::fabs(y[k] - want[k])));
  if (worst > 1e-5) FAILF("reloaded features differ by " + std::to_string(worst));
}

}  // namespace pif::test

namespace pif::test {

// A run stopped after epoch 2, its state saved and loaded into a fresh run, goes on to the
// same weights bit for bit as the uninterrupted run; bytes it did not write are refused.
PIF_TEST(train_head_tier, state_resume_is_exact) {
  std::vector<float> x;
  std::vector<int64_t> labels;
  clustered(&x, &labels);
  train::HeadTrainConfig cfg;
  cfg.classes = 8, cfg.epochs = 4, cfg.batch = 16, cfg.warmup_epochs = 1, cfg.lr = 0.05;
  cfg.seed = 11;
  const train::HeadWeights<float> init = small_tail(0.02f, 4);

  train::HeadTrainState full = train::start_head(init, cfg);
  for (int e = 0; e < 4; ++e) train::train_head_epoch(&full, x.data(), labels, cfg);

  train::HeadTrainState first = train::start_head(init, cfg);
  for (int e = 0; e < 2; ++e) train::train_head_epoch(&first, x.data(), labels, cfg);
  const std::vector<uint8_t> bytes = train::save_head_state(first);
  train::HeadTrainState resumed = train::start_head(init, cfg);
  train::load_head_state(bytes.data(), bytes.size(), &resumed);
  if (resumed.epoch != 2 || resumed.step != first.step) return FAILF("counts not restored");
  for (int e = 0; e < 2; ++e) train::train_head_epoch(&resumed, x.data(), labels, cfg);
  if (resumed.weights.w != full.weights.w || resumed.weights.fc != full.weights.fc ||
      resumed.weights.var != full.weights.var || resumed.vfc != full.vfc)
    return FAILF("the resumed run differs from the uninterrupted one");

  // Refusals: every truncation, a bad magic, another class count; the state stays as it was.
  train::HeadTrainState fresh = train::start_head(init, cfg);
  const std::vector<float> before = fresh.weights.w;
  for (size_t cut = 0; cut < bytes.size(); cut += (cut < 64 ? 1 : 997)) {
    bool threw = false;
    try {
      train::load_head_state(bytes.data(), cut, &fresh);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (!threw) return FAILF("a state cut at byte " + std::to_string(cut) + " was accepted");
  }
  std::vector<uint8_t> bad = bytes;
  bad[0] = 'X';
  bool threw = false;
  try {
    train::load_head_state(bad.data(), bad.size(), &fresh);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("magic") != std::string::npos;
  }
  if (!threw) FAILF("bad magic not named");
  train::HeadWeights<float> other = init;
  other.classes = 9;
  other.fc.resize(32 * 9);
  train::HeadTrainState wrong = train::start_head(other, cfg);
  threw = false;
  try {
    train::load_head_state(bytes.data(), bytes.size(), &wrong);
  } catch (const std::invalid_argument& e) {
    threw = std::string(e.what()).find("8 classes") != std::string::npos;
  }
  if (!threw) FAILF("a state for 8 classes loaded into 9");
  if (fresh.weights.w != before || fresh.epoch != 0) FAILF("a refused load changed the state");
}

}  // namespace pif::test

namespace pif::test {

// The CLIP recipe's run: shuffled batches (no PK sampling) over every row once per epoch, an FC
// neck with ArcMargin + CE, the loss falling on clustered rows, the same seed repeating it.
PIF_TEST(train_head_tier, clip_run_shuffled_batches) {
  std::mt19937_64 rng(3);
  const std::vector<std::vector<int64_t>> b = train::shuffled_batches(50, 16, rng);
  std::set<int64_t> seen;
  for (const auto& batch : b)
    for (int64_t r : batch) seen.insert(r);
  if (b.size() != 3 || seen.size() != 48 || *seen.rbegin() > 49) return FAILF("shuffled batches");
  std::vector<float> x;
  std::vector<int64_t> labels;
  clustered(&x, &labels);
  train::HeadTrainConfig cfg;
  cfg.classes = 8, cfg.epochs = 8, cfg.batch = 16, cfg.per_label = 0, cfg.warmup_epochs = 1;
  cfg.lr = 0.01, cfg.seed = 5;
  cfg.head.dropout = 0, cfg.head.bnneck = false, cfg.head.arc_margin = true;
  cfg.head.ce_epsilon = 0;
  const train::HeadWeights<float> init = small_tail(0.03f, 6);
  const train::HeadTrainResult r = train::train_head(init, x.data(), labels, cfg, nullptr);
  if (verbose())
    std::printf("CLIP loss %.4f -> %.4f\n", r.epochs.front().loss.total,
                r.epochs.back().loss.total);
  if (!(r.epochs.back().loss.total < 0.7 * r.epochs.front().loss.total))
    FAILF("loss did not fall: " + std::to_string(r.epochs.front().loss.total) + " -> " +
          std::to_string(r.epochs.back().loss.total));
  if (r.weights.gamma != init.gamma || r.weights.var != init.var)
    FAILF("the CLIP run touched the (absent) BNNeck");
  const train::HeadTrainResult again = train::train_head(init, x.data(), labels, cfg, nullptr);
  if (again.weights.w != r.weights.w || again.weights.fc != r.weights.fc)
    FAILF("the same seed gave other weights");
}

}  // namespace pif::test
