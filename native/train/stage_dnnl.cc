// The stage-4 kernels over oneDNN 2.6 (stage_dnnl.h). Choices, measured through these functions
// on one thread of a Xeon with AVX-512 (N=32, C=1024, 14x14, k5; the 1x1 convolution 512 ->
// 1024), NCHW in and out:
// - The depthwise convolution takes format_tag::any, which gives oneDNN's jit kernels on
//   blocked layouts (nChw16c / nChw8c), reordered there and back per call. On plain NCHW oneDNN
//   offers only its GEMM implementation: forward 124 ms and backward data 181 ms against 13
//   and 15 ms here (of which the reorders are about 9 ms).
// - The 1x1 convolution stays on plain NCHW, where oneDNN runs GEMM: as fast as its jit 1x1
//   kernel with the reorders (54 ms both, compute-bound; 27-30 ms both on two threads), faster
//   under an AVX2 cap (71-82 against 82-93 ms), and without layout buffers.
// - Batch norm runs on the blocked layouts: oneDNN's NCHW batch norm ("ncsp") takes 16.4 ms
//   forward and 31.5 ms backward, the blocked jit one with its reorders 13.7 and 20.7 ms (on two
//   threads 7.7 / 14.2 against 8.1 / 9.9 ms).
// - The depthwise weight gradient is our own kernel: oneDNN 2.6 has a jit implementation of it
//   only for 1x1 and 3x3 windows; 5x5 falls back to GEMM (about 120 ms). Ours works on the NCHW
//   planes directly (no reorders) and takes about 9 ms for any window size.
#include "train/stage_dnnl.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_map>

#include "kernels/dnnl/common.h"

namespace pif {
namespace train {
namespace stage_dnnl {
namespace {

namespace be = dnnl_backend;
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("stage_dnnl: " + what);
}

void check_dw(const DwShape& s, const char* fn) {
  if (s.n < 1 || s.c < 1 || s.h < 1 || s.w < 1 || s.k < 1 || s.stride < 1 || s.pad < 0)
    bad(std::string(fn) + ": empty or negative shape");
  if (s.h + 2 * s.pad < s.k || s.w + 2 * s.pad < s.k)
    bad(std::string(fn) + ": kernel larger than the padded input");
}

void check_pw(int64_t n, int64_t ci, int64_t co, int64_t hw, const char* fn) {
  if (n < 1 || ci < 1 || co < 1 || hw < 1) bad(std::string(fn) + ": empty or negative shape");
}

void check_bn(int64_t n, int64_t c, int64_t hw, double eps, const char* fn) {
  if (n < 1 || c < 1 || hw < 1) bad(std::string(fn) + ": empty or negative shape");
  if (!(eps >= 0) || eps > 1e30) bad(std::string(fn) + ": epsilon must be finite and >= 0");
}

template <typename... P>
void need(const char* fn, const P*... ptrs) {
  if (((ptrs == nullptr) || ...)) bad(std::string(fn) + ": a null tensor");
}

// Vector lanes of our kernel: what oneDNN itself may use (ONEDNN_MAX_CPU_ISA caps it, so the
// tests' ISA matrix runs every width) and the CPU has.
int kernel_lanes() {
#if defined(__x86_64__) || defined(__i386__)
  static const int lanes = [] {
    const unsigned isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    auto has = [isa](dnnl::cpu_isa i) {
      const unsigned m = static_cast<unsigned>(i);
      return isa == 0 || (isa & m) == m;
    };
    if (has(dnnl::cpu_isa::avx512_core) && __builtin_cpu_supports("avx512f")) return 16;
    if (has(dnnl::cpu_isa::avx2) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return 8;
    return 4;
  }();
  return lanes;
#else
  return 4;
#endif
}

// ---------------------------------------------------------------------------------------------
// oneDNN plans: a primitive with its arguments' plain (caller) and inner (primitive) layouts
// and the reorders between them, created once per shape.

struct Io {
  int arg = 0;
  memory::desc user, inner;
  bool out = false;
  dnnl::primitive reorder;  // user -> inner (inputs) or inner -> user (outputs)
  memory::desc reorder_scratch;
};

struct Plan {
  dnnl::primitive prim;
  memory::desc scratch;
  std::vector<Io> io;
};

dnnl::primitive_attr user_scratch() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void add_io(Plan* p, int arg, const memory::desc& user, const memory::desc& inner, bool out) {
  Io io;
  io.arg = arg;
  io.user = user;
  io.inner = inner;
  io.out = out;
  if (user != inner) {
    const memory::desc& from = out ? inner : user;
    const memory::desc& to = out ? user : inner;
    dnnl::reorder::primitive_desc pd(be::engine(), from, be::engine(), to, user_scratch());
    io.reorder = dnnl::reorder(pd);
    io.reorder_scratch = pd.scratchpad_desc();
  }
  p->io.push_back(std::move(io));
}

class PlanCache {
 public:
  template <typename Make>
  std::shared_ptr<const Plan> get(const std::vector<int64_t>& key, const std::string& name,
                                  Make make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    std::string impl;
    auto plan = std::make_shared<const Plan>(make(&impl));
    plans_.emplace(key, plan);
    names_.emplace_back(name, impl);
    return plan;
  }
  std::vector<std::pair<std::string, std::string>> names() const {
    std::lock_guard<std::mutex> lock(mu_);
    return names_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::vector<int64_t>, std::shared_ptr<const Plan>> plans_;
  std::vector<std::pair<std::string, std::string>> names_;
};

PlanCache& cache() {
  static PlanCache* c = new PlanCache();  // never destroyed: used until the process exits
  return *c;
}

// Per-thread buffers of the inner layouts, one slot per argument of a call, grown on demand.
struct Workspace {
  struct Slot {
    void* p = nullptr;
    size_t bytes = 0;
  };
  std::vector<Slot> slots;
  void* get(size_t i, size_t bytes) {
    if (slots.size() <= i) slots.resize(i + 1);
    Slot& s = slots[i];
    if (s.bytes < bytes) {
      std::free(s.p);
      s.p = std::aligned_alloc(64, (bytes + 63) & ~size_t(63));
      if (s.p == nullptr) {
        s.bytes = 0;
        throw std::bad_alloc();
      }
      s.bytes = bytes;
    }
    return s.p;
  }
  void release() {
    for (Slot& s : slots) std::free(s.p);
    slots.clear();
  }
  ~Workspace() { release(); }
};
thread_local Workspace t_workspace;

struct Ptr {
  int arg;
  const void* p;
};

void run(const Plan& plan, std::initializer_list<Ptr> ptrs) {
  std::unordered_map<int, memory> args;
  std::vector<std::pair<const Io*, std::pair<memory, memory>>> back;  // (inner, user)
  size_t slot = 0;
  for (const Io& io : plan.io) {
    const void* user = nullptr;
    for (const Ptr& p : ptrs)
      if (p.arg == io.arg) user = p.p;
    // oneDNN's memory wraps mutable pointers; it only reads the inputs.
    memory um(io.user, be::engine(), const_cast<void*>(user));
    if (io.user == io.inner) {
      args.emplace(io.arg, um);
      continue;
    }
    memory im(io.inner, be::engine(), t_workspace.get(slot++, io.inner.get_size()));
    if (io.out)
      back.push_back({&io, {im, um}});
    else
      be::execute(io.reorder, io.reorder_scratch, {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, im}});
    args.emplace(io.arg, im);
  }
  be::execute(plan.prim, plan.scratch, args);
  for (auto& b : back)
    be::execute(b.first->reorder, b.first->reorder_scratch,
                {{DNNL_ARG_FROM, b.second.first}, {DNNL_ARG_TO, b.second.second}});
}

memory::desc plain(const memory::dims& d, tag t) { return memory::desc(d, dt::f32, t); }
memory::desc any(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }

// A convolution as oneDNN sees it, with the caller's plain layouts: the depthwise one has
// groups = channels and weights [c, 1, 1, k, k]; the 1x1 one is [n, ci, 1, hw] -> [n, co, 1, hw]
// with weights [co, ci, 1, 1].
struct ConvGeom {
  memory::dims src, wei, dst, bias, strides, pad;
  tag wei_tag = tag::oihw;
  bool with_bias = false;
  bool blocked = true;  // format_tag::any (oneDNN's choice), else plain NCHW throughout
  std::string name;     // shape as implementations() names it

  memory::desc data(const memory::dims& d) const { return blocked ? any(d) : plain(d, tag::nchw); }
  memory::desc weights() const { return blocked ? any(wei) : plain(wei, wei_tag); }

  dnnl::convolution_forward::primitive_desc forward() const {
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, data(src),
        weights(), with_bias ? plain(bias, tag::a) : memory::desc(), data(dst), strides, pad, pad);
    return dnnl::convolution_forward::primitive_desc(d, user_scratch(), be::engine());
  }
  std::vector<int64_t> key(int op) const {
    std::vector<int64_t> k = {op, with_bias ? 1 : 0};
    for (const memory::dims* d : {&src, &wei, &strides, &pad})
      k.insert(k.end(), d->begin(), d->end());
    return k;
  }
};

ConvGeom dw_geom(const DwShape& s, bool bias) {
  ConvGeom g;
  g.src = {s.n, s.c, s.h, s.w};
  g.wei = {s.c, 1, 1, s.k, s.k};
  g.dst = {s.n, s.c, s.oh(), s.ow()};
  g.bias = {s.c};
  g.strides = {s.stride, s.stride};
  g.pad = {s.pad, s.pad};
  g.wei_tag = tag::goihw;
  g.with_bias = bias;
  g.name = "[" + std::to_string(s.n) + "," + std::to_string(s.c) + "," + std::to_string(s.h) + "," +
           std::to_string(s.w) + "] k" + std::to_string(s.k) + " s" + std::to_string(s.stride) +
           " p" + std::to_string(s.pad) + (bias ? " bias" : "");
  return g;
}

ConvGeom pw_geom(int64_t n, int64_t ci, int64_t co, int64_t hw) {
  ConvGeom g;
  g.src = {n, ci, 1, hw};
  g.wei = {co, ci, 1, 1};
  g.dst = {n, co, 1, hw};
  g.strides = {1, 1};
  g.pad = {0, 0};
  g.blocked = false;
  g.name = "[" + std::to_string(n) + "," + std::to_string(ci) + "," + std::to_string(hw) + "] -> " +
           std::to_string(co);
  return g;
}

enum Op { kForward, kBackwardData, kBackwardWeights, kBnForward, kBnBackward, kOwnKernel };

template <typename P>
Plan plan_of(const typename P::primitive_desc& pd, std::string* impl) {
  *impl = pd.impl_info_str();
  Plan p;
  p.prim = P(pd);
  p.scratch = pd.scratchpad_desc();
  return p;
}

// The cached plan of one pass of a convolution. Its arguments: forward SRC, WEIGHTS, [BIAS] ->
// DST; backward data DIFF_DST, WEIGHTS -> DIFF_SRC; backward weights SRC, DIFF_DST ->
// DIFF_WEIGHTS, [DIFF_BIAS].
std::shared_ptr<const Plan> conv_plan(const ConvGeom& g, Op op, const char* fn) {
  return cache().get(g.key(op), std::string(fn) + " " + g.name, [&](std::string* impl) {
    const memory::desc src = plain(g.src, tag::nchw), dst = plain(g.dst, tag::nchw);
    const memory::desc wei = plain(g.wei, g.wei_tag);
    const memory::desc bias = g.with_bias ? plain(g.bias, tag::a) : memory::desc();
    Plan p;
    if (op == kForward) {
      const auto pd = g.forward();
      p = plan_of<dnnl::convolution_forward>(pd, impl);
      add_io(&p, DNNL_ARG_SRC, src, pd.src_desc(), false);
      add_io(&p, DNNL_ARG_WEIGHTS, wei, pd.weights_desc(), false);
      if (g.with_bias) add_io(&p, DNNL_ARG_BIAS, bias, pd.bias_desc(), false);
      add_io(&p, DNNL_ARG_DST, dst, pd.dst_desc(), true);
    } else if (op == kBackwardData) {
      dnnl::convolution_backward_data::desc d(dnnl::algorithm::convolution_direct, g.data(g.src),
                                              g.weights(), g.data(g.dst), g.strides, g.pad, g.pad);
      const dnnl::convolution_backward_data::primitive_desc pd(d, user_scratch(), be::engine(),
                                                               g.forward());
      p = plan_of<dnnl::convolution_backward_data>(pd, impl);
      add_io(&p, DNNL_ARG_DIFF_DST, dst, pd.diff_dst_desc(), false);
      add_io(&p, DNNL_ARG_WEIGHTS, wei, pd.weights_desc(), false);
      add_io(&p, DNNL_ARG_DIFF_SRC, src, pd.diff_src_desc(), true);
    } else {
      dnnl::convolution_backward_weights::desc d(dnnl::algorithm::convolution_direct, g.data(g.src),
                                                 g.weights(), bias, g.data(g.dst), g.strides, g.pad,
                                                 g.pad);
      const dnnl::convolution_backward_weights::primitive_desc pd(d, user_scratch(), be::engine(),
                                                                  g.forward());
      p = plan_of<dnnl::convolution_backward_weights>(pd, impl);
      add_io(&p, DNNL_ARG_SRC, src, pd.src_desc(), false);
      add_io(&p, DNNL_ARG_DIFF_DST, dst, pd.diff_dst_desc(), false);
      add_io(&p, DNNL_ARG_DIFF_WEIGHTS, wei, pd.diff_weights_desc(), true);
      if (g.with_bias) add_io(&p, DNNL_ARG_DIFF_BIAS, bias, pd.diff_bias_desc(), true);
    }
    return p;
  });
}

// Batch norm's data layout inside: channel blocks of the vector width oneDNN's jit uses.
memory::desc bn_inner(int64_t n, int64_t c, int64_t hw) {
  return plain({n, c, 1, hw}, kernel_lanes() == 16 ? tag::nChw16c : tag::nChw8c);
}

const dnnl::normalization_flags kBnFlags =
    dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;

dnnl::batch_normalization_forward::primitive_desc bn_forward_pd(int64_t n, int64_t c, int64_t hw,
                                                                double eps) {
  dnnl::batch_normalization_forward::desc d(dnnl::prop_kind::forward_training, bn_inner(n, c, hw),
                                            static_cast<float>(eps), kBnFlags);
  return dnnl::batch_normalization_forward::primitive_desc(d, user_scratch(), be::engine());
}

std::string bn_name(int64_t n, int64_t c, int64_t hw) {
  return "[" + std::to_string(n) + "," + std::to_string(c) + "," + std::to_string(hw) + "]";
}

std::vector<int64_t> bn_key(Op op, int64_t n, int64_t c, int64_t hw, double eps) {
  const float e = static_cast<float>(eps);
  uint32_t bits;
  std::memcpy(&bits, &e, sizeof bits);
  return {op, n, c, hw, static_cast<int64_t>(bits)};
}

// ---------------------------------------------------------------------------------------------
// Our depthwise weight-gradient kernel. Per channel, dw[p][q] = sum over images and output
// positions (i, j) of x[i*s + p - pad][j*s + q - pad] * dy[i][j]. Vector lanes run over output
// columns j: for each input row, k shifted copies (one per q, lanes outside the row zeroed) go
// to a small aligned buffer with zero rows for the padding, so the inner loop is aligned loads
// and FMAs only; the lanes are summed once per channel at the end. Channels are split into
// chunks of up to 16 planes per image (contiguous memory), the chunks shared by the OpenMP team.

template <int L>
struct Vec {
  typedef float f __attribute__((vector_size(L * sizeof(float))));
  typedef int32_t i __attribute__((vector_size(L * sizeof(float))));
};

// Loads and stores through memcpy: unaligned-safe, and no vector passes a function boundary
// (whose ABI would differ between the ISA variants).
template <typename V>
inline void vload(V* v, const void* p) {
  std::memcpy(v, p, sizeof(V));
}
template <typename V>
inline void vstore(void* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

struct DwGeo {
  int64_t oh, ow, nch;  // nch: vector chunks per output row
  int64_t hp;           // rows of the shifted-x buffer (input rows and padding)
  int64_t phase_len;    // floats per stride phase of the staged input row
  int64_t work;         // floats of a thread's work buffer
};

DwGeo dw_geometry(const DwShape& s, int lanes, int64_t cb) {
  DwGeo g;
  g.oh = s.oh();
  g.ow = s.ow();
  g.nch = (g.ow + lanes - 1) / lanes;
  g.hp = s.h + 2 * s.pad;
  g.phase_len = (s.pad + s.stride - 1) / s.stride + g.nch * lanes + s.k + s.w + 1;
  const int64_t k = s.k, chunk = g.nch * lanes;
  g.work = cb * (k * k + 1) * lanes                      // accumulators
           + (k + 1) * chunk                             // lane masks
           + g.hp * k * chunk                            // shifted x rows
           + ((s.stride * g.phase_len + 15) & ~15)       // staged input row
           + ((g.oh - 1) * g.ow + chunk + 15) / 16 * 16  // staged dy plane
           + 4 * k;                                      // row offsets (int64)
  return g;
}

// One chunk of channels [c0, c1) over all images. K: the kernel size when it is a compile-time
// constant (the loops unroll, the sums stay in registers), else 0. BLOCK: all k*k sums of a
// channel in registers at once (AVX-512's 32 registers; K <= 5).
template <int L, int K, bool BLOCK>
inline __attribute__((always_inline)) void dw_bww_chunk(const float* x, const float* dy, float* dw,
                                                        float* db, const DwShape& s, const DwGeo& g,
                                                        int64_t c0, int64_t c1, float* work) {
  using V = typename Vec<L>::f;
  using VI = typename Vec<L>::i;
  const int64_t k = K ? K : s.k, st = s.stride, pad = s.pad, h = s.h, w = s.w;
  const int64_t oh = g.oh, ow = g.ow, nch = g.nch, kk = k * k;
  const int64_t plane_x = h * w, plane_y = oh * ow;
  const int64_t total_x = s.n * s.c * plane_x, total_y = s.n * s.c * plane_y;
  const int64_t gap = (pad + st - 1) / st;  // staged row: zeros before column 0
  float* acc = work;                        // [c1 - c0][kk + 1][L]; the last: bias
  int32_t* masks = reinterpret_cast<int32_t*>(acc + (c1 - c0) * (kk + 1) * L);  // [k+1][nch][L]
  float* xs = reinterpret_cast<float*>(masks + (k + 1) * nch * L);              // [nch][hp][k][L]
  float* row = xs + g.hp * nch * k * L;                                         // [st][phase_len]
  float* ys = row + ((st * g.phase_len + 15) & ~int64_t(15));
  std::memset(work, 0, sizeof(float) * g.work);
  // masks[q]: lanes whose output column exists and reads inside the row; masks[k]: lanes whose
  // output column exists.
  for (int64_t q = 0; q <= k; ++q)
    for (int64_t j = 0; j < nch * L; ++j) {
      const int64_t col = j * st + q - pad;
      masks[q * nch * L + j] = j < ow && (q == k || (col >= 0 && col < w)) ? -1 : 0;
    }
  // Where lane 0 of the shifted row q starts: in the x row itself (unit stride), or in the
  // staged row's stride phase.
  int64_t* off_direct =
      reinterpret_cast<int64_t*>(ys + ((g.oh - 1) * g.ow + nch * L + 15) / 16 * 16);
  int64_t* off_staged = off_direct + k;
  for (int64_t q = 0; q < k; ++q) {
    const int64_t t = q - pad, e = t >= 0 ? t / st : -((-t + st - 1) / st);
    off_direct[q] = t;
    off_staged[q] = (t - e * st) * g.phase_len + gap + e;
  }
  // Unit stride reads the x rows in place, as long as a vector stays inside the tensor.
  const int64_t reach_lo = -pad, reach_hi = (nch - 1) * L + k - 1 - pad + L;
  const int64_t xstep = st * k * L;  // one output row down
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      float* a = acc + (c - c0) * (kk + 1) * L;
      const int64_t px = (n * s.c + c) * plane_x, py = (n * s.c + c) * plane_y;
      {
        // The next plane streams in while this one computes (hardware prefetch does not
        // cross from one image's channels to the next).
        const int64_t nx = c + 1 < c1 ? px + plane_x : ((n + 1) * s.c + c0) * plane_x;
        const int64_t ny = c + 1 < c1 ? py + plane_y : ((n + 1) * s.c + c0) * plane_y;
        for (int64_t e = 0; e < plane_x && nx + e < total_x; e += 16)
          __builtin_prefetch(x + nx + e);
        for (int64_t e = 0; e < plane_y && ny + e < total_y; e += 16)
          __builtin_prefetch(dy + ny + e);
      }
      for (int64_t r = 0; r < h; ++r) {
        const float* xr = x + px + r * w;
        float* o = xs + (r + pad) * k * L;
        const bool direct =
            st == 1 && px + r * w + reach_lo >= 0 && px + r * w + reach_hi <= total_x;
        if (!direct) {
          // Staged: the row split into its stride phases, zeros around.
          for (int64_t ph = 0; ph < st; ++ph)
            for (int64_t m = 0, jj = ph; jj < w; ++m, jj += st)
              row[ph * g.phase_len + gap + m] = xr[jj];
        }
        const float* base = direct ? xr : row;
        const int64_t* off = direct ? off_direct : off_staged;
        for (int64_t ch = 0; ch < nch; ++ch)
          for (int64_t q = 0; q < k; ++q) {
            const float* src = base + ch * L + off[q];
            VI v, m;
            vload(&v, src);
            vload(&m, masks + (q * nch + ch) * L);
            vstore(o + (ch * g.hp * k + q) * L, v & m);
          }
      }
      const float* yb = dy + py;
      if (py + (oh - 1) * ow + nch * L > total_y) {  // a vector would run past the tensor
        std::memcpy(ys, dy + py, sizeof(float) * plane_y);
        yb = ys;
      }
      V bsum;
      vload(&bsum, a + kk * L);
      if constexpr (BLOCK) {
        V r[K][K];
        for (int p = 0; p < K; ++p)
          for (int q = 0; q < K; ++q) vload(&r[p][q], a + (p * K + q) * L);
        for (int64_t ch = 0; ch < nch; ++ch) {
          VI tail;
          vload(&tail, masks + (k * nch + ch) * L);
          const float* xr = xs + ch * g.hp * K * L;
          const float* yr = yb + ch * L;
          for (int64_t i = 0; i < oh; ++i, xr += xstep, yr += ow) {
            VI di;
            vload(&di, yr);
            const V d = (V)(di & tail);
            bsum += d;
            for (int p = 0; p < K; ++p)
              for (int q = 0; q < K; ++q) {
                V xv;
                vload(&xv, xr + (p * K + q) * L);
                r[p][q] += xv * d;
              }
          }
        }
        for (int p = 0; p < K; ++p)
          for (int q = 0; q < K; ++q) vstore(a + (p * K + q) * L, r[p][q]);
      } else {
        for (int64_t ch = 0; ch < nch; ++ch) {
          VI tail;
          vload(&tail, masks + (k * nch + ch) * L);
          for (int64_t i = 0; i < oh; ++i) {
            VI di;
            vload(&di, yb + i * ow + ch * L);
            bsum += (V)(di & tail);
          }
        }
        // One kernel row p at a time; q in groups of up to 8 (a runtime k); two output rows per
        // step give twice the independent sums, hiding the FMA latency.
        for (int64_t p = 0; p < k; ++p)
          for (int64_t q0 = 0; q0 < k; q0 += 8) {
            const int64_t qn = K ? K : std::min<int64_t>(8, k - q0);
            V r0[K ? K : 8], r1[K ? K : 8];
            for (int64_t q = 0; q < qn; ++q) {
              vload(&r0[q], a + (p * k + q0 + q) * L);
              r1[q] = V{};
            }
            for (int64_t ch = 0; ch < nch; ++ch) {
              VI tail;
              vload(&tail, masks + (k * nch + ch) * L);
              const float* xr = xs + ((ch * g.hp + p) * k + q0) * L;
              const float* yr = yb + ch * L;
              int64_t i = 0;
              for (; i + 1 < oh; i += 2, xr += 2 * xstep, yr += 2 * ow) {
                VI d0i, d1i;
                vload(&d0i, yr);
                vload(&d1i, yr + ow);
                const V d0 = (V)(d0i & tail), d1 = (V)(d1i & tail);
                for (int64_t q = 0; q < qn; ++q) {
                  V x0, x1;
                  vload(&x0, xr + q * L);
                  vload(&x1, xr + xstep + q * L);
                  r0[q] += x0 * d0;
                  r1[q] += x1 * d1;
                }
              }
              if (i < oh) {
                VI d0i;
                vload(&d0i, yr);
                const V d0 = (V)(d0i & tail);
                for (int64_t q = 0; q < qn; ++q) {
                  V x0;
                  vload(&x0, xr + q * L);
                  r0[q] += x0 * d0;
                }
              }
            }
            for (int64_t q = 0; q < qn; ++q) vstore(a + (p * k + q0 + q) * L, r0[q] + r1[q]);
            if (K) break;
          }
      }
      vstore(a + kk * L, bsum);
    }
  for (int64_t c = c0; c < c1; ++c) {
    const float* a = acc + (c - c0) * (kk + 1) * L;
    for (int64_t e = 0; e <= kk; ++e) {
      float sum = 0;
      for (int l = 0; l < L; ++l) sum += a[e * L + l];
      if (e < kk)
        dw[c * kk + e] = sum;
      else if (db != nullptr)
        db[c] = sum;
    }
  }
}

template <int L>
inline __attribute__((always_inline)) void dw_bww_dispatch(const float* x, const float* dy,
                                                           float* dw, float* db, const DwShape& s,
                                                           const DwGeo& g, int64_t c0, int64_t c1,
                                                           float* work) {
  constexpr bool kBlock = L == 16;
  switch (s.k) {
    case 1: return dw_bww_chunk<L, 1, kBlock>(x, dy, dw, db, s, g, c0, c1, work);
    case 3: return dw_bww_chunk<L, 3, kBlock>(x, dy, dw, db, s, g, c0, c1, work);
    case 5: return dw_bww_chunk<L, 5, kBlock>(x, dy, dw, db, s, g, c0, c1, work);
    case 7: return dw_bww_chunk<L, 7, false>(x, dy, dw, db, s, g, c0, c1, work);
    default: return dw_bww_chunk<L, 0, false>(x, dy, dw, db, s, g, c0, c1, work);
  }
}

using ChunkFn = void (*)(const float*, const float*, float*, float*, const DwShape&, const DwGeo&,
                         int64_t, int64_t, float*);

void dw_bww_lanes4(const float* x, const float* dy, float* dw, float* db, const DwShape& s,
                   const DwGeo& g, int64_t c0, int64_t c1, float* work) {
  dw_bww_dispatch<4>(x, dy, dw, db, s, g, c0, c1, work);
}
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) void dw_bww_lanes8(const float* x, const float* dy, float* dw,
                                                       float* db, const DwShape& s, const DwGeo& g,
                                                       int64_t c0, int64_t c1, float* work) {
  dw_bww_dispatch<8>(x, dy, dw, db, s, g, c0, c1, work);
}
__attribute__((target("avx512f"))) void dw_bww_lanes16(const float* x, const float* dy, float* dw,
                                                       float* db, const DwShape& s, const DwGeo& g,
                                                       int64_t c0, int64_t c1, float* work) {
  dw_bww_dispatch<16>(x, dy, dw, db, s, g, c0, c1, work);
}
#endif

ChunkFn chunk_fn(int lanes) {
#if defined(__x86_64__) || defined(__i386__)
  if (lanes == 16) return dw_bww_lanes16;
  if (lanes == 8) return dw_bww_lanes8;
#endif
  return dw_bww_lanes4;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void dw_conv_forward(const float* x, const float* w, const float* b, float* y, const DwShape& s) {
  check_dw(s, "dw_conv_forward");
  need("dw_conv_forward", x, w, y);
  auto plan = conv_plan(dw_geom(s, b != nullptr), kForward, "dw_conv_forward");
  run(*plan, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, y}});
}

void dw_conv_backward_data(const float* dy, const float* w, float* dx, const DwShape& s) {
  check_dw(s, "dw_conv_backward_data");
  need("dw_conv_backward_data", dy, w, dx);
  auto plan = conv_plan(dw_geom(s, false), kBackwardData, "dw_conv_backward_data");
  run(*plan, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
}

void dw_conv_backward_weights(const float* x, const float* dy, float* dw, float* db,
                              const DwShape& s) {
  check_dw(s, "dw_conv_backward_weights");
  need("dw_conv_backward_weights", x, dy, dw);
  const int lanes = kernel_lanes();
  // Registered like a plan so that implementations() names it.
  const ConvGeom geom = dw_geom(s, db != nullptr);
  cache().get(geom.key(kOwnKernel), "dw_conv_backward_weights " + geom.name,
              [&](std::string* impl) {
                *impl = "own kernel, " + std::to_string(lanes) + " float lanes";
                return Plan();
              });
  const int64_t threads = std::max(1, omp_get_max_threads());
  const int64_t cb = std::clamp<int64_t>((s.c + threads - 1) / threads, 1, 16);
  const DwGeo g = dw_geometry(s, lanes, cb);
  const ChunkFn fn = chunk_fn(lanes);
  const int64_t chunks = (s.c + cb - 1) / cb;
  bool failed = false;
#pragma omp parallel if (chunks > 1)
  {
    float* work = static_cast<float*>(
        std::aligned_alloc(64, (static_cast<size_t>(g.work) * sizeof(float) + 63) & ~size_t(63)));
    if (work == nullptr) {
#pragma omp atomic write
      failed = true;
    } else {
#pragma omp for schedule(static)
      for (int64_t ck = 0; ck < chunks; ++ck)
        fn(x, dy, dw, db, s, g, ck * cb, std::min(s.c, (ck + 1) * cb), work);
    }
    std::free(work);
  }
  if (failed) throw std::bad_alloc();
}

void dw_conv_backward_weights_onednn(const float* x, const float* dy, float* dw, float* db,
                                     const DwShape& s) {
  check_dw(s, "dw_conv_backward_weights_onednn");
  need("dw_conv_backward_weights_onednn", x, dy, dw);
  auto plan =
      conv_plan(dw_geom(s, db != nullptr), kBackwardWeights, "dw_conv_backward_weights_onednn");
  run(*plan, {{DNNL_ARG_SRC, x},
              {DNNL_ARG_DIFF_DST, dy},
              {DNNL_ARG_DIFF_WEIGHTS, dw},
              {DNNL_ARG_DIFF_BIAS, db}});
}

void pw_conv_forward(const float* x, const float* w, float* y, int64_t n, int64_t ci, int64_t co,
                     int64_t hw) {
  check_pw(n, ci, co, hw, "pw_conv_forward");
  need("pw_conv_forward", x, w, y);
  auto plan = conv_plan(pw_geom(n, ci, co, hw), kForward, "pw_conv_forward");
  run(*plan, {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}});
}

void pw_conv_backward_data(const float* dy, const float* w, float* dx, int64_t n, int64_t ci,
                           int64_t co, int64_t hw) {
  check_pw(n, ci, co, hw, "pw_conv_backward_data");
  need("pw_conv_backward_data", dy, w, dx);
  auto plan = conv_plan(pw_geom(n, ci, co, hw), kBackwardData, "pw_conv_backward_data");
  run(*plan, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_SRC, dx}});
}

void pw_conv_backward_weights(const float* x, const float* dy, float* dw, int64_t n, int64_t ci,
                              int64_t co, int64_t hw) {
  check_pw(n, ci, co, hw, "pw_conv_backward_weights");
  need("pw_conv_backward_weights", x, dy, dw);
  auto plan = conv_plan(pw_geom(n, ci, co, hw), kBackwardWeights, "pw_conv_backward_weights");
  run(*plan, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
}

void bn_train_forward(const float* x, const float* gamma, const float* beta, double eps, int64_t n,
                      int64_t c, int64_t hw, float* y, float* mean, float* var) {
  check_bn(n, c, hw, eps, "bn_train_forward");
  need("bn_train_forward", x, gamma, beta, y, mean, var);
  auto plan = cache().get(
      bn_key(kBnForward, n, c, hw, eps), "bn_train_forward " + bn_name(n, c, hw),
      [&](std::string* impl) {
        const auto pd = bn_forward_pd(n, c, hw, eps);
        Plan p = plan_of<dnnl::batch_normalization_forward>(pd, impl);
        const memory::desc data = plain({n, c, 1, hw}, tag::nchw), vec = plain({c}, tag::a);
        add_io(&p, DNNL_ARG_SRC, data, pd.src_desc(), false);
        add_io(&p, DNNL_ARG_SCALE, vec, vec, false);
        add_io(&p, DNNL_ARG_SHIFT, vec, vec, false);
        add_io(&p, DNNL_ARG_DST, data, pd.dst_desc(), true);
        add_io(&p, DNNL_ARG_MEAN, vec, vec, true);
        add_io(&p, DNNL_ARG_VARIANCE, vec, vec, true);
        return p;
      });
  run(*plan, {{DNNL_ARG_SRC, x},
              {DNNL_ARG_SCALE, gamma},
              {DNNL_ARG_SHIFT, beta},
              {DNNL_ARG_DST, y},
              {DNNL_ARG_MEAN, mean},
              {DNNL_ARG_VARIANCE, var}});
}

void bn_train_backward(const float* x, const float* dy, const float* gamma, const float* mean,
                       const float* var, double eps, int64_t n, int64_t c, int64_t hw, float* dx,
                       float* dgamma, float* dbeta) {
  check_bn(n, c, hw, eps, "bn_train_backward");
  need("bn_train_backward", x, dy, gamma, mean, var, dx, dgamma, dbeta);
  auto plan = cache().get(
      bn_key(kBnBackward, n, c, hw, eps), "bn_train_backward " + bn_name(n, c, hw),
      [&](std::string* impl) {
        const memory::desc inner = bn_inner(n, c, hw);
        dnnl::batch_normalization_backward::desc d(dnnl::prop_kind::backward, inner, inner,
                                                   static_cast<float>(eps), kBnFlags);
        const dnnl::batch_normalization_backward::primitive_desc pd(d, user_scratch(), be::engine(),
                                                                    bn_forward_pd(n, c, hw, eps));
        Plan p = plan_of<dnnl::batch_normalization_backward>(pd, impl);
        const memory::desc data = plain({n, c, 1, hw}, tag::nchw), vec = plain({c}, tag::a);
        add_io(&p, DNNL_ARG_SRC, data, pd.src_desc(), false);
        add_io(&p, DNNL_ARG_DIFF_DST, data, pd.diff_dst_desc(), false);
        for (int arg : {DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_SCALE, DNNL_ARG_SHIFT})
          add_io(&p, arg, vec, vec, false);
        add_io(&p, DNNL_ARG_DIFF_SRC, data, pd.diff_src_desc(), true);
        add_io(&p, DNNL_ARG_DIFF_SCALE, vec, vec, true);
        add_io(&p, DNNL_ARG_DIFF_SHIFT, vec, vec, true);
        return p;
      });
  // oneDNN 2.6's backward with use_shift refuses to run (invalid_arguments) without a shift
  // argument, although the gradients do not depend on beta; zeros stand in for it.
  const std::vector<float> shift(static_cast<size_t>(c), 0.f);
  run(*plan, {{DNNL_ARG_SRC, x},
              {DNNL_ARG_DIFF_DST, dy},
              {DNNL_ARG_MEAN, mean},
              {DNNL_ARG_VARIANCE, var},
              {DNNL_ARG_SCALE, gamma},
              {DNNL_ARG_SHIFT, shift.data()},
              {DNNL_ARG_DIFF_SRC, dx},
              {DNNL_ARG_DIFF_SCALE, dgamma},
              {DNNL_ARG_DIFF_SHIFT, dbeta}});
}

void release_thread_workspace() { t_workspace.release(); }

std::vector<std::pair<std::string, std::string>> implementations() { return cache().names(); }

}  // namespace stage_dnnl
}  // namespace train
}  // namespace pif
