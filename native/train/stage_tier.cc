#include "train/stage_tier.h"

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "train/stage_dnnl.h"
#include "train/stage_fused.h"
#include "train/stage_ops.h"

namespace pif {
namespace train {
namespace {

// The kernels of a step: oneDNN's for float when asked, else the reference ones.
template <typename T>
struct Ops {
  StageKernels k;
  bool dnnl() const { return std::is_same_v<T, float> && k == StageKernels::Dnnl; }
  void dw_fwd(const T* x, const T* w, const T* b, T* y, const DwShape& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return stage_dnnl::dw_conv_forward(x, w, b, y, s);
    dw_conv_forward(x, w, b, y, s);
  }
  void dw_bwd_d(const T* dy, const T* w, T* dx, const DwShape& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return stage_dnnl::dw_conv_backward_data(dy, w, dx, s);
    dw_conv_backward_data(dy, w, dx, s);
  }
  void dw_bwd_w(const T* x, const T* dy, T* dw, T* db, const DwShape& s) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return stage_dnnl::dw_conv_backward_weights(x, dy, dw, db, s);
    dw_conv_backward_weights(x, dy, dw, db, s);
  }
  void pw_fwd(const T* x, const T* w, T* y, int64_t n, int64_t ci, int64_t co, int64_t hw) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return stage_dnnl::pw_conv_forward(x, w, y, n, ci, co, hw);
    pw_conv_forward(x, w, y, n, ci, co, hw);
  }
  void pw_bwd_d(const T* dy, const T* w, T* dx, int64_t n, int64_t ci, int64_t co,
                int64_t hw) const {
    // dnnl_sgemm on a transposed copy of W (stage_ops.cc) beats oneDNN's backward-data
    // primitive on NCHW here (171 against 195 ms at batch 32, one AVX-512 thread), both kernels.
    pw_conv_backward_data(dy, w, dx, n, ci, co, hw);
  }
  void pw_bwd_w(const T* x, const T* dy, T* dw, int64_t n, int64_t ci, int64_t co,
                int64_t hw) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return stage_dnnl::pw_conv_backward_weights(x, dy, dw, n, ci, co, hw);
    pw_conv_backward_weights(x, dy, dw, n, ci, co, hw);
  }
  // Batch norm + ReLU: our fused float kernels (stage_fused.h) in high-performance mode, where
  // oneDNN's batch norm pays a reorder each way on NCHW and the ReLU a pass of its own.
  void bn_relu_fwd(const T* x, const T* g, const T* b, double eps, int64_t n, int64_t c, int64_t hw,
                   T* y, T* mean, T* var) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return bn_relu_train_forward(x, g, b, eps, n, c, hw, y, mean, var);
    bn_train_forward(x, g, b, eps, n, c, hw, y, mean, var);
    relu_forward(y, n * c * hw);
  }
  // Given the ReLU's output y and d loss / d y (left as it is): dx, dgamma, dbeta.
  void bn_relu_bwd(const T* x, const T* y, const T* dy, const T* g, const T* mean, const T* var,
                   double eps, int64_t n, int64_t c, int64_t hw, T* dx, T* dg, T* db,
                   std::vector<T>* scratch) const {
    if constexpr (std::is_same_v<T, float>)
      if (dnnl()) return bn_relu_train_backward(x, y, dy, g, mean, var, eps, n, c, hw, dx, dg, db);
    scratch->assign(dy, dy + n * c * hw);
    relu_backward(y, scratch->data(), n * c * hw);
    bn_train_backward(x, scratch->data(), g, mean, var, eps, n, c, hw, dx, dg, db);
  }
};

template <typename T>
DwShape dw_shape(const BlockWeights<T>& b, int64_t n, int64_t h, int64_t w) {
  DwShape s;
  s.n = n, s.c = b.cin, s.h = h, s.w = w, s.k = b.k, s.stride = b.stride, s.pad = b.pad;
  return s;
}

// out = a + b elementwise (out may alias a or b).
template <typename T>
void add_into(const T* a, const T* b, T* out, int64_t size) {
#pragma omp parallel for schedule(static) if (size > (1 << 16))
  for (int64_t e = 0; e < size; ++e) out[e] = a[e] + b[e];
}

template <typename T>
void check_stage(const StageWeights<T>& w, int64_t n, int64_t h, int64_t wd) {
  if (w.blocks.empty() || n < 1 || h < 1 || wd < 1)
    throw std::invalid_argument("stage: no blocks or an empty batch");
  for (size_t b = 0; b < w.blocks.size(); ++b) {
    const BlockWeights<T>& k = w.blocks[b];
    const size_t ci = static_cast<size_t>(k.cin), co = static_cast<size_t>(k.cout);
    if (k.dw_w.size() != ci * static_cast<size_t>(k.k * k.k) || k.dw_b.size() != ci ||
        k.pw_w.size() != ci * co || k.gamma.size() != co || k.beta.size() != co ||
        k.mean.size() != co || k.var.size() != co || (b > 0 && w.blocks[b - 1].cout != k.cin) ||
        (k.residual && (k.cin != k.cout || k.stride != 1)))
      throw std::invalid_argument("stage: block " + std::to_string(b) + " has inconsistent sizes");
  }
  if (w.blocks.back().cout != w.head.in)
    throw std::invalid_argument("stage: the last block does not feed the tail");
}

}  // namespace

template <typename T>
HeadLoss stage_train_step(const StageWeights<T>& w, const HeadConfig& cfg, const T* x, int64_t n,
                          int64_t h, int64_t wd, const int64_t* labels, const uint8_t* keep,
                          typename NoDeduce<StageGrads<T>>::type* grads,
                          typename NoDeduce<StageStats<T>>::type* stats, StageKernels kernels,
                          typename NoDeduce<StageWorkspace<T>>::type* workspace) {
  check_stage(w, n, h, wd);
  const Ops<T> ops{kernels};
  const size_t nb = w.blocks.size();
  // Buffers of tens of MB each: reused from step to step (no page faults on fresh memory).
  StageWorkspace<T> local;
  StageWorkspace<T>& ws = workspace != nullptr ? *workspace : local;
  ws.tape.resize(nb);
  std::vector<const T*> in(nb);
  std::vector<int64_t> ih(nb), iw(nb);
  const T* cur = x;
  int64_t ch = h, cw = wd;
  for (size_t b = 0; b < nb; ++b) {
    const BlockWeights<T>& k = w.blocks[b];
    typename StageWorkspace<T>::Tape& t = ws.tape[b];
    in[b] = cur, ih[b] = ch, iw[b] = cw;
    const DwShape s = dw_shape(k, n, ch, cw);
    t.h = s.oh(), t.w = s.ow();
    const int64_t hw = t.h * t.w;
    t.a.resize(static_cast<size_t>(n * k.cin * hw));
    ops.dw_fwd(cur, k.dw_w.data(), k.dw_b.data(), t.a.data(), s);
    relu_forward(t.a.data(), static_cast<int64_t>(t.a.size()));
    t.p.resize(static_cast<size_t>(n * k.cout * hw));
    ops.pw_fwd(t.a.data(), k.pw_w.data(), t.p.data(), n, k.cin, k.cout, hw);
    t.q.resize(t.p.size());
    t.mean.resize(static_cast<size_t>(k.cout));
    t.var.resize(static_cast<size_t>(k.cout));
    ops.bn_relu_fwd(t.p.data(), k.gamma.data(), k.beta.data(), k.bn_epsilon, n, k.cout, hw,
                    t.q.data(), t.mean.data(), t.var.data());
    if (k.residual) {
      t.out.resize(t.q.size());
      add_into(t.q.data(), cur, t.out.data(), static_cast<int64_t>(t.q.size()));
      cur = t.out.data();
    } else {
      cur = t.q.data();
    }
    ch = t.h, cw = t.w;
  }
  const int64_t c_last = w.blocks.back().cout, hw_last = ch * cw;
  ws.pooled.resize(static_cast<size_t>(n * c_last));
  avg_pool_forward(cur, ws.pooled.data(), n, c_last, hw_last);
  HeadGrads<T> hg;
  hg.want_input = true;
  HeadLoss loss = head_train_step(w.head, cfg, ws.pooled.data(), labels, n, keep,
                                  grads != nullptr ? &hg : nullptr,
                                  stats != nullptr ? &stats->head_mean : nullptr,
                                  stats != nullptr ? &stats->head_var : nullptr);
  if (stats != nullptr) {
    stats->mean.resize(nb), stats->var.resize(nb);
    for (size_t b = 0; b < nb; ++b)
      stats->mean[b] = ws.tape[b].mean, stats->var[b] = ws.tape[b].var;
  }
  if (grads == nullptr) return loss;
  grads->blocks.assign(nb, BlockGrads<T>());
  std::vector<T>& dout = ws.dout;
  dout.resize(static_cast<size_t>(n * c_last * hw_last));
  avg_pool_backward(hg.x.data(), dout.data(), n, c_last, hw_last);
  grads->head = std::move(hg);
  grads->head.x.clear();
  for (size_t b = nb; b-- > 0;) {
    const BlockWeights<T>& k = w.blocks[b];
    typename StageWorkspace<T>::Tape& t = ws.tape[b];
    BlockGrads<T>& g = grads->blocks[b];
    const int64_t hw = t.h * t.w;
    // d out / d q is the identity (the shortcut adds the input); dout stays for the shortcut.
    ws.dp.resize(dout.size());
    g.gamma.resize(static_cast<size_t>(k.cout));
    g.beta.resize(static_cast<size_t>(k.cout));
    ops.bn_relu_bwd(t.p.data(), t.q.data(), dout.data(), k.gamma.data(), t.mean.data(),
                    t.var.data(), k.bn_epsilon, n, k.cout, hw, ws.dp.data(), g.gamma.data(),
                    g.beta.data(), &ws.dq);
    g.pw_w.resize(k.pw_w.size());
    ops.pw_bwd_w(t.a.data(), ws.dp.data(), g.pw_w.data(), n, k.cin, k.cout, hw);
    ws.da.resize(t.a.size());
    ops.pw_bwd_d(ws.dp.data(), k.pw_w.data(), ws.da.data(), n, k.cin, k.cout, hw);
    relu_backward(t.a.data(), ws.da.data(), static_cast<int64_t>(ws.da.size()));
    const DwShape s = dw_shape(k, n, ih[b], iw[b]);
    g.dw_w.resize(k.dw_w.size());
    g.dw_b.resize(k.dw_b.size());
    ops.dw_bwd_w(in[b], ws.da.data(), g.dw_w.data(), g.dw_b.data(), s);
    if (b == 0) break;  // the stage's input is frozen
    ws.dx.resize(static_cast<size_t>(n * k.cin * ih[b] * iw[b]));
    ops.dw_bwd_d(ws.da.data(), k.dw_w.data(), ws.dx.data(), s);
    if (k.residual)
      add_into(ws.dx.data(), dout.data(), ws.dx.data(), static_cast<int64_t>(ws.dx.size()));
    dout.swap(ws.dx);
  }
  return loss;
}

template <typename T>
void stage_pooled(const StageWeights<T>& w, const T* x, int64_t n, int64_t h, int64_t wd, T* pooled,
                  StageKernels kernels) {
  check_stage(w, n, h, wd);
  const Ops<T> ops{kernels};
  std::vector<T> cur(x, x + n * w.blocks[0].cin * h * wd), a, p, q;
  for (const BlockWeights<T>& k : w.blocks) {
    const DwShape s = dw_shape(k, n, h, wd);
    const int64_t hw = s.oh() * s.ow();
    a.resize(static_cast<size_t>(n * k.cin * hw));
    ops.dw_fwd(cur.data(), k.dw_w.data(), k.dw_b.data(), a.data(), s);
    relu_forward(a.data(), static_cast<int64_t>(a.size()));
    p.resize(static_cast<size_t>(n * k.cout * hw));
    ops.pw_fwd(a.data(), k.pw_w.data(), p.data(), n, k.cin, k.cout, hw);
    q.resize(p.size());
    bn_infer(p.data(), k.gamma.data(), k.beta.data(), k.mean.data(), k.var.data(), k.bn_epsilon, n,
             k.cout, hw, q.data());
    relu_forward(q.data(), static_cast<int64_t>(q.size()));
    if (k.residual)
      for (size_t e = 0; e < q.size(); ++e) q[e] += cur[e];
    cur.swap(q);
    h = s.oh(), wd = s.ow();
  }
  avg_pool_forward(cur.data(), pooled, n, w.blocks.back().cout, h * wd);
}

#define PIF_STAGE_TIER_INSTANTIATE(T)                                                              \
  template HeadLoss stage_train_step<T>(const StageWeights<T>&, const HeadConfig&, const T*,       \
                                        int64_t, int64_t, int64_t, const int64_t*, const uint8_t*, \
                                        StageGrads<T>*, StageStats<T>*, StageKernels,              \
                                        StageWorkspace<T>*);                                       \
  template void stage_pooled<T>(const StageWeights<T>&, const T*, int64_t, int64_t, int64_t, T*,   \
                                StageKernels);
PIF_STAGE_TIER_INSTANTIATE(float)
PIF_STAGE_TIER_INSTANTIATE(double)
#undef PIF_STAGE_TIER_INSTANTIATE

}  // namespace train
}  // namespace pif
