#include "train/head_tier.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>

#include "common/error.h"
#include "format/limits.h"
#include "format/model_dir.h"
#include "format/params.h"

namespace pif {
namespace train {

template <typename Rng>
std::vector<std::vector<int64_t>> pk_batches(const std::vector<int64_t>& labels, int64_t batch,
                                             int64_t per_label, Rng& rng) {
  if (per_label < 1 || batch < per_label || batch % per_label != 0)
    throw std::invalid_argument("PK sampler: the batch size (" + std::to_string(batch) +
                                ") must be a multiple of the images per label (" +
                                std::to_string(per_label) + ")");
  std::map<int64_t, std::vector<int64_t>> rows;
  for (size_t i = 0; i < labels.size(); ++i) rows[labels[i]].push_back(static_cast<int64_t>(i));
  std::vector<int64_t> label_list;
  for (const auto& kv : rows) label_list.push_back(kv.first);
  const int64_t p = batch / per_label;
  if (static_cast<int64_t>(label_list.size()) < p)
    throw std::invalid_argument(
        "PK sampler: a batch of " + std::to_string(batch) + " needs at least " + std::to_string(p) +
        " labels of " + std::to_string(per_label) + " images, but the " + "dataset has " +
        std::to_string(label_list.size()) + "; lower the batch size or add labels");
  std::vector<std::vector<int64_t>> out;
  const int64_t count = static_cast<int64_t>(labels.size()) / batch;
  for (int64_t b = 0; b < count; ++b) {
    // P labels without replacement: a partial Fisher-Yates shuffle.
    std::vector<int64_t> pool = label_list;
    std::vector<int64_t> idx;
    for (int64_t k = 0; k < p; ++k) {
      const size_t j = k + static_cast<size_t>(rng() % (pool.size() - k));
      std::swap(pool[k], pool[j]);
      const std::vector<int64_t>& r = rows[pool[k]];
      if (static_cast<int64_t>(r.size()) >= per_label) {
        std::vector<int64_t> take = r;
        for (int64_t q = 0; q < per_label; ++q) {
          const size_t s = q + static_cast<size_t>(rng() % (take.size() - q));
          std::swap(take[q], take[s]);
          idx.push_back(take[q]);
        }
      } else {
        for (int64_t q = 0; q < per_label; ++q) idx.push_back(r[rng() % r.size()]);
      }
    }
    out.push_back(std::move(idx));
  }
  return out;
}

template <typename Rng>
std::vector<std::vector<int64_t>> shuffled_batches(size_t rows, int64_t batch, Rng& rng) {
  std::vector<int64_t> order(rows);
  for (size_t i = 0; i < rows; ++i) order[i] = static_cast<int64_t>(i);
  for (size_t i = rows; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  std::vector<std::vector<int64_t>> out;
  for (size_t b = 0; b + static_cast<size_t>(batch) <= rows; b += static_cast<size_t>(batch))
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(b),
                     order.begin() + static_cast<std::ptrdiff_t>(b + batch));
  return out;
}

template std::vector<std::vector<int64_t>> shuffled_batches<std::mt19937_64>(size_t, int64_t,
                                                                             std::mt19937_64&);

template std::vector<std::vector<int64_t>> pk_batches<std::mt19937_64>(const std::vector<int64_t>&,
                                                                       int64_t, int64_t,
                                                                       std::mt19937_64&);

namespace {

std::vector<float> param_floats(const Program& p, int32_t k) {
  const Parameter& prm = p.params[k];
  if (!prm.loaded || prm.tensor.dtype != DType::Float32)
    throw std::invalid_argument("parameter " + prm.name + " is not loaded float32");
  std::vector<float> v(static_cast<size_t>(prm.tensor.numel()));
  std::memcpy(v.data(), prm.tensor.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace

HeadWeights<float> tail_weights(const Program& p, const ShituTail& t, int64_t classes,
                                double fc_init_std, uint64_t seed) {
  if (classes < 1) throw std::invalid_argument("the number of classes must be at least 1");
  HeadWeights<float> w;
  w.in = t.in, w.dim = t.dim, w.classes = classes;
  w.w = param_floats(p, t.conv_weight);
  w.b = param_floats(p, t.conv_bias);
  if (t.clip) {
    // [in, dim] -> [dim, in]; no BNNeck: its statistics stay the identity, unused.
    std::vector<float> r(w.w.size());
    for (int64_t i = 0; i < t.in; ++i)
      for (int64_t j = 0; j < t.dim; ++j) r[j * t.in + i] = w.w[i * t.dim + j];
    w.w.swap(r);
    w.gamma.assign(static_cast<size_t>(t.dim), 1.f);
    w.beta.assign(static_cast<size_t>(t.dim), 0.f);
    w.mean.assign(static_cast<size_t>(t.dim), 0.f);
    w.var.assign(static_cast<size_t>(t.dim), 1.f);
  } else {
    w.gamma = param_floats(p, t.bn_scale);
    w.beta = param_floats(p, t.bn_bias);
    w.mean = param_floats(p, t.bn_mean);
    w.var = param_floats(p, t.bn_var);
  }
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, fc_init_std);
  w.fc.resize(static_cast<size_t>(t.dim * classes));
  for (float& f : w.fc) f = static_cast<float>(nd(rng));
  return w;
}

std::vector<float> program_layout_weight(const ShituTail& t, const HeadWeights<float>& w) {
  if (!t.clip) return w.w;
  std::vector<float> r(w.w.size());
  for (int64_t j = 0; j < t.dim; ++j)
    for (int64_t i = 0; i < t.in; ++i) r[i * t.dim + j] = w.w[j * t.in + i];
  return r;
}

std::vector<TailParam> tail_params(const Program& p, const ShituTail& t,
                                   const HeadWeights<float>& w,
                                   const std::vector<ParamValue>& extra) {
  const std::vector<float> neck = program_layout_weight(t, w);
  const std::pair<int32_t, std::pair<const char*, const std::vector<float>*>> tail[] = {
      {t.conv_weight, {"convWeight", &neck}}, {t.conv_bias, {"convBias", &w.b}},
      {t.bn_scale, {"bnScale", &w.gamma}},    {t.bn_bias, {"bnBias", &w.beta}},
      {t.bn_mean, {"bnMean", &w.mean}},       {t.bn_var, {"bnVariance", &w.var}}};
  std::vector<TailParam> out;
  for (int32_t k = 0; k < static_cast<int32_t>(p.params.size()); ++k) {
    const Parameter& prm = p.params[k];
    if (!prm.loaded || prm.tensor.dtype != DType::Float32) continue;
    TailParam e{prm.name, "", prm.tensor.dims, {}};
    for (const auto& r : tail)
      if (r.first == k) e.role = r.second.first, e.data = *r.second.second;
    for (const ParamValue& v : extra)
      if (v.index == k) e.role = v.role, e.data = v.data;
    if (e.role.empty()) {
      const float* f = reinterpret_cast<const float*>(prm.tensor.data());
      e.data.assign(f, f + prm.tensor.numel());
    }
    out.push_back(std::move(e));
  }
  out.push_back(TailParam{"", "fc", {w.dim, w.classes}, w.fc});
  return out;
}

HeadTrainState start_head(const HeadWeights<float>& init, const HeadTrainConfig& cfg) {
  HeadTrainState s;
  s.weights = init;
  s.rng.seed(cfg.seed);
  return s;
}

namespace {

constexpr char kStateMagic[8] = {'P', 'I', 'F', 'H', 'E', 'A', 'D', '1'};

template <typename T>
void put(std::vector<uint8_t>* out, const T& v) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
  out->insert(out->end(), p, p + sizeof(T));
}

// The float vectors of a state, in the file's order.
std::vector<std::vector<float>*> state_vectors(HeadTrainState* s) {
  HeadWeights<float>& w = s->weights;
  return {&w.w,  &w.b,   &w.gamma, &w.beta,    &w.mean, &w.var,
          &w.fc, &s->vw, &s->vb,   &s->vgamma, &s->vfc};
}

struct StateReader {
  const uint8_t* data;
  size_t size, at = 0;
  template <typename T>
  T get(const char* what) {
    T v;
    if (size - at < sizeof(T))
      throw std::invalid_argument("training state: ends at byte " + std::to_string(at) +
                                  " inside the " + what);
    std::memcpy(&v, data + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
};

}  // namespace

std::vector<uint8_t> save_head_state(const HeadTrainState& s) {
  std::vector<uint8_t> out(kStateMagic, kStateMagic + sizeof(kStateMagic));
  const HeadWeights<float>& w = s.weights;
  for (int64_t v : {w.in, w.dim, w.classes, s.step, s.epoch}) put(&out, v);
  for (std::vector<float>* v : state_vectors(const_cast<HeadTrainState*>(&s))) {
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

void load_head_state(const uint8_t* data, size_t size, HeadTrainState* s) {
  StateReader r{data, size};
  if (size < sizeof(kStateMagic) || std::memcmp(data, kStateMagic, sizeof(kStateMagic)) != 0)
    throw std::invalid_argument("training state: not a head-tier state (bad magic at byte 0)");
  r.at = sizeof(kStateMagic);
  HeadTrainState t = *s;
  const int64_t in = r.get<int64_t>("header"), dim = r.get<int64_t>("header"),
                classes = r.get<int64_t>("header");
  if (in != t.weights.in || dim != t.weights.dim || classes != t.weights.classes)
    throw std::invalid_argument("training state: it is for a tail of " + std::to_string(in) +
                                " -> " + std::to_string(dim) + " with " + std::to_string(classes) +
                                " classes, this run has " + std::to_string(t.weights.in) + " -> " +
                                std::to_string(t.weights.dim) + " with " +
                                std::to_string(t.weights.classes));
  t.step = r.get<int64_t>("header");
  t.epoch = r.get<int64_t>("header");
  if (t.step < 0 || t.epoch < 0) throw std::invalid_argument("training state: negative counts");
  std::vector<std::vector<float>*> vs = state_vectors(&t), shapes = state_vectors(s);
  for (size_t k = 0; k < vs.size(); ++k) {
    const size_t at = r.at;
    const uint64_t n = r.get<uint64_t>("vector size");
    // Weights keep their shapes; a velocity is empty before its first step.
    static const size_t kVelocityOf[4] = {0, 1, 2, 6};  // vw, vb, vgamma, vfc
    const size_t want = k < 7 ? shapes[k]->size() : shapes[kVelocityOf[k - 7]]->size();
    if (n != want && !(k >= 7 && n == 0))
      throw std::invalid_argument("training state: vector " + std::to_string(k) + " at byte " +
                                  std::to_string(at) + " holds " + std::to_string(n) +
                                  " values, expected " + std::to_string(want));
    if ((size - r.at) / sizeof(float) < n)
      throw std::invalid_argument("training state: ends at byte " + std::to_string(size) +
                                  " inside vector " + std::to_string(k));
    vs[k]->resize(static_cast<size_t>(n));
    if (n > 0) std::memcpy(vs[k]->data(), data + r.at, static_cast<size_t>(n) * sizeof(float));
    r.at += static_cast<size_t>(n) * sizeof(float);
  }
  const uint64_t len = r.get<uint64_t>("generator size");
  if (len != size - r.at)
    throw std::invalid_argument("training state: the generator at byte " + std::to_string(r.at) +
                                " has " + std::to_string(size - r.at) + " bytes, the header says " +
                                std::to_string(len));
  std::istringstream rng(std::string(reinterpret_cast<const char*>(data + r.at), len));
  rng >> t.rng;
  if (rng.fail()) throw std::invalid_argument("training state: the generator state is unreadable");
  *s = std::move(t);
}

void check_labels(const std::vector<int64_t>& labels, int64_t classes) {
  for (int64_t l : labels)
    if (l < 0 || l >= classes)
      throw std::invalid_argument("label " + std::to_string(l) + " is not in [0, " +
                                  std::to_string(classes) + ")");
}

HeadEpoch train_head_epoch(HeadTrainState* s, const float* x, const std::vector<int64_t>& labels,
                           const HeadTrainConfig& cfg) {
  const int64_t per_epoch = static_cast<int64_t>(labels.size()) / cfg.batch;
  if (cfg.batch < 2 || per_epoch < 1)
    throw std::invalid_argument("fewer rows (" + std::to_string(labels.size()) +
                                ") than one batch (" + std::to_string(cfg.batch) + ")");
  HeadWeights<float>& w = s->weights;
  const int64_t total = per_epoch * cfg.epochs, warmup = per_epoch * cfg.warmup_epochs;
  std::vector<float> bx(static_cast<size_t>(cfg.batch * w.in));
  std::vector<int64_t> by(static_cast<size_t>(cfg.batch));
  std::vector<uint8_t> keep(static_cast<size_t>(cfg.batch * w.dim));
  std::bernoulli_distribution kept(1.0 - cfg.head.dropout);
  HeadEpoch ep;
  ep.epoch = ++s->epoch;
  const std::vector<std::vector<int64_t>> batches =
      cfg.per_label > 0 ? pk_batches(labels, cfg.batch, cfg.per_label, s->rng)
                        : shuffled_batches(labels.size(), cfg.batch, s->rng);
  for (const std::vector<int64_t>& b : batches) {
    for (size_t r = 0; r < b.size(); ++r) {
      std::memcpy(&bx[r * w.in], x + b[r] * w.in, static_cast<size_t>(w.in) * sizeof(float));
      by[r] = labels[static_cast<size_t>(b[r])];
    }
    for (uint8_t& m : keep) m = kept(s->rng) ? 1 : 0;
    HeadGrads<float> g;
    std::vector<float> bm, bv;
    const HeadLoss l =
        head_train_step(w, cfg.head, bx.data(), by.data(), cfg.batch, keep.data(), &g, &bm, &bv);
    ep.loss.ce += l.ce / per_epoch;
    ep.loss.triplet += l.triplet / per_epoch;
    ep.loss.total += l.total / per_epoch;
    if (cfg.head.bnneck) update_running_stats(&w, cfg.head, bm, bv);
    ep.lr = cosine_warmup_lr(s->step, total, warmup, cfg.lr, cfg.eta_min, cfg.warmup_start_lr);
    momentum_step(&w.w, &s->vw, g.w, ep.lr, cfg.momentum, cfg.l2);
    momentum_step(&w.b, &s->vb, g.b, ep.lr, cfg.momentum, cfg.l2);
    if (cfg.head.bnneck) momentum_step(&w.gamma, &s->vgamma, g.gamma, ep.lr, cfg.momentum, cfg.l2);
    momentum_step(&w.fc, &s->vfc, g.fc, ep.lr, cfg.momentum, cfg.l2);  // beta stays (frozen)
    ++s->step;
  }
  return ep;
}

HeadTrainResult train_head(const HeadWeights<float>& init, const float* x,
                           const std::vector<int64_t>& labels, const HeadTrainConfig& cfg,
                           const std::function<bool(const HeadEpoch&)>& on_epoch) {
  if (cfg.epochs < 1) throw std::invalid_argument("epochs must be at least 1");
  check_labels(labels, cfg.classes);
  HeadTrainState s = start_head(init, cfg);
  HeadTrainResult r;
  r.steps_per_epoch = cfg.batch > 0 ? static_cast<int64_t>(labels.size()) / cfg.batch : 0;
  for (int64_t e = 1; e <= cfg.epochs; ++e) {
    r.epochs.push_back(train_head_epoch(&s, x, labels, cfg));
    if (on_epoch && !on_epoch(r.epochs.back())) break;
  }
  r.weights = std::move(s.weights);
  return r;
}

void write_trained_model(const LoadedModel& m, const ShituTail& t, const HeadWeights<float>& w,
                         const std::string& out_dir, const std::vector<ParamValue>& extra) {
  Program p = m.program;  // parameters share the loaded arena until replaced
  auto replace = [&](int32_t k, const std::vector<float>& v) {
    Tensor& tensor = p.params[k].tensor;
    if (static_cast<int64_t>(v.size()) != tensor.numel())
      throw std::invalid_argument("parameter " + p.params[k].name + ": size differs");
    tensor.storage = std::make_shared<std::vector<uint8_t>>(v.size() * sizeof(float));
    std::memcpy(tensor.storage->data(), v.data(), v.size() * sizeof(float));
    tensor.offset = 0;
    tensor.nbytes = v.size() * sizeof(float);
  };
  replace(t.conv_weight, program_layout_weight(t, w));
  replace(t.conv_bias, w.b);
  if (!t.clip) {
    replace(t.bn_scale, w.gamma);
    replace(t.bn_bias, w.beta);
    replace(t.bn_mean, w.mean);
    replace(t.bn_var, w.var);
  }
  for (const ParamValue& v : extra) replace(v.index, v.data);
  if (m.params_layout != ParamsLayout::Combined)
    throw ModelError(code::kUnsupported, m.dir, -1, "",
                     "only models with one combined parameters file can be written back");
  if (::mkdir(out_dir.c_str(), 0777) != 0 && errno != EEXIST)
    throw ModelError(code::kIo, out_dir, -1, "", "cannot create the directory");
  auto base = [](const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  };
  const LoadLimits limits;
  write_file_atomic(out_dir + "/" + base(m.program_file),
                    read_file_limited(m.program_file, limits.max_file_bytes));
  const std::string yml = m.dir + "/inference.yml";
  struct stat st;
  if (::stat(yml.c_str(), &st) == 0)
    write_file_atomic(out_dir + "/inference.yml", read_file_limited(yml, 1 << 20));
  write_file_atomic(out_dir + "/" + base(m.params_file), write_combined_params(p));
}

}  // namespace train
}  // namespace pif
