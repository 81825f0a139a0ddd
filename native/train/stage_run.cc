// The last-stage tier's run (train/stage_tier.h): weights from the program, the epoch's batches,
// the optimiser step, and the run's state as bytes.
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "train/stage_tier.h"

namespace pif {
namespace train {
namespace {

std::vector<float> floats_of(const Program& p, int32_t k) {
  const Parameter& prm = p.params[k];
  if (!prm.loaded || prm.tensor.dtype != DType::Float32)
    throw std::invalid_argument("parameter " + prm.name + " is not loaded float32");
  const float* f = reinterpret_cast<const float*>(prm.tensor.data());
  return std::vector<float>(f, f + prm.tensor.numel());
}

// The vectors a run trains, in the velocities' order: per block dw_w, dw_b, pw_w, gamma, beta;
// then the tail's last_conv weight and bias, BNNeck scale and the FC head (BNNeck's shift is
// frozen). With the L2 coefficient each takes (PPLCNetV2's batch norms have L2Decay(0)).
std::vector<std::pair<std::vector<float>*, bool>> trained(StageWeights<float>* w) {
  std::vector<std::pair<std::vector<float>*, bool>> v;
  for (BlockWeights<float>& b : w->blocks) {
    v.push_back({&b.dw_w, true});
    v.push_back({&b.dw_b, true});
    v.push_back({&b.pw_w, true});
    v.push_back({&b.gamma, false});
    v.push_back({&b.beta, false});
  }
  v.push_back({&w->head.w, true});
  v.push_back({&w->head.b, true});
  v.push_back({&w->head.gamma, true});
  v.push_back({&w->head.fc, true});
  return v;
}

// Every float vector of a state, in the file's order: the weights (trained or not), then the
// velocities.
std::vector<std::vector<float>*> state_vectors(StageTrainState* s) {
  std::vector<std::vector<float>*> v;
  for (BlockWeights<float>& b : s->weights.blocks)
    for (std::vector<float>* x : {&b.dw_w, &b.dw_b, &b.pw_w, &b.gamma, &b.beta, &b.mean, &b.var})
      v.push_back(x);
  HeadWeights<float>& h = s->weights.head;
  for (std::vector<float>* x : {&h.w, &h.b, &h.gamma, &h.beta, &h.mean, &h.var, &h.fc})
    v.push_back(x);
  for (std::vector<float>& x : s->velocity) v.push_back(&x);
  return v;
}

constexpr char kMagic[8] = {'P', 'I', 'F', 'S', 'T', 'G', '0', '1'};

template <typename T>
void put(std::vector<uint8_t>* out, const T& v) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), p, p + sizeof(T));
}

std::vector<int64_t> header_of(const StageTrainState& s) {
  std::vector<int64_t> h{static_cast<int64_t>(s.weights.blocks.size())};
  for (const BlockWeights<float>& b : s.weights.blocks) h.insert(h.end(), {b.cin, b.cout, b.k});
  h.insert(h.end(), {s.weights.head.in, s.weights.head.dim, s.weights.head.classes});
  return h;
}

}  // namespace

StageWeights<float> stage_weights(const Program& p, const std::vector<RepBlock>& blocks,
                                  const ShituTail& t, int64_t classes, double fc_init_std,
                                  uint64_t seed) {
  StageWeights<float> w;
  for (const RepBlock& r : blocks) {
    BlockWeights<float> b;
    b.cin = r.cin, b.cout = r.cout, b.k = r.k, b.stride = r.stride, b.pad = r.pad;
    b.residual = r.residual;
    b.bn_epsilon = r.bn_epsilon;
    b.dw_w = floats_of(p, r.dw_weight);
    b.dw_b = floats_of(p, r.dw_bias);
    b.pw_w = floats_of(p, r.pw_weight);
    b.gamma = floats_of(p, r.bn_scale);
    b.beta = floats_of(p, r.bn_bias);
    b.mean = floats_of(p, r.bn_mean);
    b.var = floats_of(p, r.bn_var);
    w.blocks.push_back(std::move(b));
  }
  w.head = tail_weights(p, t, classes, fc_init_std, seed);
  return w;
}

StageTrainState start_stage(const StageWeights<float>& init, const HeadTrainConfig& cfg) {
  StageTrainState s;
  s.weights = init;
  s.rng.seed(cfg.seed);
  for (const auto& v : trained(&s.weights)) s.velocity.emplace_back(v.first->size(), 0.f);
  return s;
}

std::vector<std::vector<int64_t>> stage_epoch_batches(StageTrainState* s,
                                                      const std::vector<int64_t>& labels,
                                                      const HeadTrainConfig& cfg) {
  check_labels(labels, cfg.classes);
  if (cfg.batch < 2 || static_cast<int64_t>(labels.size()) < cfg.batch)
    throw std::invalid_argument("fewer images (" + std::to_string(labels.size()) +
                                ") than one batch (" + std::to_string(cfg.batch) + ")");
  ++s->epoch;
  return cfg.per_label > 0 ? pk_batches(labels, cfg.batch, cfg.per_label, s->rng)
                           : shuffled_batches(labels.size(), cfg.batch, s->rng);
}

StageStep stage_step(StageTrainState* s, const float* x, int64_t n, int64_t h, int64_t wd,
                     const int64_t* labels, int64_t steps_per_epoch, const HeadTrainConfig& cfg,
                     StageKernels kernels) {
  StageWeights<float>& w = s->weights;
  std::vector<uint8_t> keep(static_cast<size_t>(n * w.head.dim));
  std::bernoulli_distribution kept(1.0 - cfg.head.dropout);
  for (uint8_t& m : keep) m = kept(s->rng) ? 1 : 0;
  StageGrads<float> g;
  StageStats<float> st;
  StageStep out;
  out.loss = stage_train_step(w, cfg.head, x, n, h, wd, labels, keep.data(), &g, &st, kernels,
                              s->workspace.get());
  const double m = cfg.head.bn_momentum;
  for (size_t b = 0; b < w.blocks.size(); ++b)
    for (size_t j = 0; j < w.blocks[b].mean.size(); ++j) {
      w.blocks[b].mean[j] = static_cast<float>(m * w.blocks[b].mean[j] + (1 - m) * st.mean[b][j]);
      w.blocks[b].var[j] = static_cast<float>(m * w.blocks[b].var[j] + (1 - m) * st.var[b][j]);
    }
  update_running_stats(&w.head, cfg.head, st.head_mean, st.head_var);
  const int64_t total = steps_per_epoch * cfg.epochs, warmup = steps_per_epoch * cfg.warmup_epochs;
  out.lr = cosine_warmup_lr(s->step, total, warmup, cfg.lr, cfg.eta_min, cfg.warmup_start_lr);
  std::vector<const std::vector<float>*> grads;
  for (const BlockGrads<float>& b : g.blocks)
    for (const std::vector<float>* v : {&b.dw_w, &b.dw_b, &b.pw_w, &b.gamma, &b.beta})
      grads.push_back(v);
  for (const std::vector<float>* v : {&g.head.w, &g.head.b, &g.head.gamma, &g.head.fc})
    grads.push_back(v);
  const auto params = trained(&w);
  for (size_t k = 0; k < params.size(); ++k)
    momentum_step(params[k].first, &s->velocity[k], *grads[k], out.lr, cfg.momentum,
                  params[k].second ? cfg.l2 : 0.0);
  ++s->step;
  return out;
}

std::vector<uint8_t> save_stage_state(const StageTrainState& s) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof(kMagic));
  for (int64_t v : header_of(s)) put(&out, v);
  put(&out, s.step);
  put(&out, s.epoch);
  for (std::vector<float>* v : state_vectors(const_cast<StageTrainState*>(&s))) {
    put(&out, static_cast<uint64_t>(v->size()));
    const uint8_t* p = reinterpret_cast<const uint8_t*>(v->data());
    out.insert(out.end(), p, p + v->size() * sizeof(float));
  }
  std::ostringstream rng;
  rng << s.rng;
  const std::string text = rng.str();
  put(&out, static_cast<uint64_t>(text.size()));
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

void load_stage_state(const uint8_t* data, size_t size, StageTrainState* s) {
  size_t at = 0;
  auto get = [&](auto* v, const char* what) {
    if (size - at < sizeof(*v))
      throw std::invalid_argument("training state: ends at byte " + std::to_string(at) +
                                  " inside the " + what);
    std::memcpy(v, data + at, sizeof(*v));
    at += sizeof(*v);
  };
  if (size < sizeof(kMagic) || std::memcmp(data, kMagic, sizeof(kMagic)) != 0)
    throw std::invalid_argument("training state: not a last-stage state (bad magic at byte 0)");
  at = sizeof(kMagic);
  StageTrainState t = *s;
  for (int64_t want : header_of(t)) {
    const size_t where = at;
    int64_t v = 0;
    get(&v, "header");
    if (v != want)
      throw std::invalid_argument("training state: the header at byte " + std::to_string(where) +
                                  " says " + std::to_string(v) + ", this run has " +
                                  std::to_string(want) + " (another model or class count)");
  }
  get(&t.step, "header");
  get(&t.epoch, "header");
  if (t.step < 0 || t.epoch < 0) throw std::invalid_argument("training state: negative counts");
  std::vector<std::vector<float>*> vs = state_vectors(&t);
  for (size_t k = 0; k < vs.size(); ++k) {
    const size_t where = at;
    uint64_t n = 0;
    get(&n, "vector size");
    if (n != vs[k]->size())
      throw std::invalid_argument("training state: vector " + std::to_string(k) + " at byte " +
                                  std::to_string(where) + " holds " + std::to_string(n) +
                                  " values, expected " + std::to_string(vs[k]->size()));
    if ((size - at) / sizeof(float) < n)
      throw std::invalid_argument("training state: ends at byte " + std::to_string(size) +
                                  " inside vector " + std::to_string(k));
    if (n > 0) std::memcpy(vs[k]->data(), data + at, static_cast<size_t>(n) * sizeof(float));
    at += static_cast<size_t>(n) * sizeof(float);
  }
  uint64_t len = 0;
  get(&len, "generator size");
  if (len != size - at)
    throw std::invalid_argument("training state: the generator at byte " + std::to_string(at) +
                                " has " + std::to_string(size - at) + " bytes, the header says " +
                                std::to_string(len));
  std::istringstream rng(std::string(reinterpret_cast<const char*>(data + at), len));
  rng >> t.rng;
  if (rng.fail()) throw std::invalid_argument("training state: the generator state is unreadable");
  *s = std::move(t);
}

std::vector<ParamValue> stage_param_values(const std::vector<RepBlock>& blocks,
                                           const StageWeights<float>& w) {
  if (blocks.size() != w.blocks.size()) throw std::invalid_argument("stage: block counts differ");
  std::vector<ParamValue> out;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const RepBlock& r = blocks[b];
    const BlockWeights<float>& k = w.blocks[b];
    out.push_back({r.dw_weight, "stageDwWeight", k.dw_w});
    out.push_back({r.dw_bias, "stageDwBias", k.dw_b});
    out.push_back({r.pw_weight, "stagePwWeight", k.pw_w});
    out.push_back({r.bn_scale, "stageBnScale", k.gamma});
    out.push_back({r.bn_bias, "stageBnBias", k.beta});
    out.push_back({r.bn_mean, "stageBnMean", k.mean});
    out.push_back({r.bn_var, "stageBnVariance", k.var});
  }
  return out;
}

}  // namespace train
}  // namespace pif
