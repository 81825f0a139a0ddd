// The dnnl suite: randomized checks of the high-performance mode (graph
// passes + oneDNN kernels) against the reference kernels.
//
// Each case builds a small program in memory (1-8 ops; legacy or PIR form,
// chosen at random, parameters as constant values, activations declared with
// their shapes, sometimes with a dynamic batch dimension) and runs it three
// ways on the same random inputs:
//   ref     pif::Executor with no options (the reference kernels: the oracle)
//   passes  ExecutorOptions{passes = every pass}: fused ops on the reference
//           kernels (checks the rewrites)
//   hpi     ExecutorOptions{hpi = true}: the passes + oneDNN kernels
// and compares passes and hpi with ref: |got - want| <= 1e-4 * max(1, |want|).
// Every executor runs twice (two input draws, 1 and 2 threads), so cached
// primitives are reused with fresh buffers.
//
// It also proves that the fast path ran, not a fallback:
// - each case states the nodes expected after the passes (Executor::nodes()
//   names as a multiset: e.g. one "pif.fused_conv2d" and no "batch_norm",
//   "add" or "relu" where those must fuse; "dnnl.fused_conv2d" etc. in hpi),
//   and dnnl_nodes() must count the dnnl.* nodes;
// - each expected hpi node says whether it must execute a oneDNN primitive,
//   must not (a documented fallback), or may do either (convolutions outside
//   the canonical configurations, where the kernel keeps the reference
//   convolution if oneDNN would pick a gemm / reference implementation, which
//   depends on the CPU; windowed pooling with padding oneDNN cannot express;
//   softmax on a blocked layout). Executions are counted from oneDNN's own
//   verbose log, captured from stdout during the first hpi run.
//
// Families: conv (conv2d / depthwise_conv2d, groups 1 / C / other, strides,
// dilations, 2- and 4-value pads, SAME / VALID, then batch_norm, bias adds in
// legacy and PIR spellings, activations, a residual add of the input / a graph
// input / an earlier or later conv, activations after it, intermediate graph
// outputs that must stop fusion), se (squeeze-and-excitation), pool, matmul
// (2-D, linear layers, batched with broadcasting, transposes as attributes or
// transpose ops, 1-D operands, legacy matmul with alpha, bias, activations,
// QuickGELU, residuals), attention (QK^T scale softmax V, ViT MLP block),
// eltwise, binary (NumPy and legacy axis broadcasting, either operand
// broadcast), softmax, layer_norm.
//
// Bugs this tool found, now handled by the backend and checked here:
// - oneDNN 2.6.3 computes the second of two eltwise post-ops of the same
//   algorithm with the first one's parameters (scale + dropout, leaky_relu +
//   relu, relu6 + clip, swish + QuickGELU, matmul alpha + scale, ...): the
//   backend re-encodes or falls back (such nodes may run either way);
// - max pool2d windows lying entirely past the bottom/right edge: -FLT_MAX
//   on oneDNN, 0 in the reference kernel: the backend falls back.
// Cases marked known_failure (none at present) skip the hpi number check
// unless PIF_DNNL_INCLUDE_KNOWN=1.
//
//
// This header holds the program builder, the expectations and the op emitters the generators
// (dnnl_1_conv.cc, dnnl_2_matmul.cc, dnnl_3_eltwise.cc) share; dnnl_run.cc runs and checks.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "runtime/executor.h"
#include "tests/harness.h"
#include "tests/util.h"

namespace pif::test {

std::string num(double v);

// ---------------------------------------------------------------------------
// Program builder: ops are appended one at a time (op(), then in() / out() /
// attr() on the op being built). Legacy ops use named slots; PIR ops one
// unnamed slot per operand, in operand order. Every tensor value carries its
// declared shape (the passes read declared shapes); with `dyn` the leading
// dimension of activations is declared -1, as in exports with a dynamic batch.

struct T {  // a value and its (actual) shape
  ValueId id = kNoValue;
  std::vector<int64_t> dims;
};

struct FeedSpec {
  double lo = -1, hi = 1;
  bool away_from_zero = false;  // |v| in [lo, hi] with a random sign
  std::vector<int64_t> ints;    // int64 feed: fixed data
};

class Graph {
 public:
  Graph(bool pir, bool dyn) : pir_(pir), dyn_(dyn) {
    p_.format = pir ? ProgramFormat::Pir : ProgramFormat::Legacy;
    p_.blocks.resize(1);
  }
  bool pir() const { return pir_; }
  bool dyn() const { return dyn_; }

  T feed(const std::vector<int64_t>& dims, double lo = -1, double hi = 1, bool away = false) {
    FeedSpec s;
    s.lo = lo;
    s.hi = hi;
    s.away_from_zero = away;
    ValueId id = value("x" + std::to_string(p_.inputs.size()), DType::Float32, dims, true);
    p_.inputs.push_back(IoBinding{p_.values[id].name, id, static_cast<int32_t>(p_.inputs.size())});
    specs_.push_back(s);
    feed_dims_.push_back(dims);
    return T{id, dims};
  }
  T feed_i64(const std::vector<int64_t>& data) {
    FeedSpec s;
    s.ints = data;
    std::vector<int64_t> dims{static_cast<int64_t>(data.size())};
    ValueId id = value("x" + std::to_string(p_.inputs.size()), DType::Int64, dims, false);
    p_.inputs.push_back(IoBinding{p_.values[id].name, id, static_cast<int32_t>(p_.inputs.size())});
    specs_.push_back(s);
    feed_dims_.push_back(dims);
    return T{id, dims};
  }
  T cst(const std::vector<int64_t>& dims, const std::vector<float>& data) {
    return constant(DType::Float32, dims, data.data(), data.size() * 4);
  }
  T cst_i64(const std::vector<int64_t>& data) {
    return constant(DType::Int64, {static_cast<int64_t>(data.size())}, data.data(),
                    data.size() * 8);
  }

  // Starts an op of the given legacy / PIR type.
  void op(const std::string& legacy, const std::string& pir_type) {
    p_.blocks[0].ops.emplace_back();
    p_.blocks[0].ops.back().type = pir_ ? pir_type : legacy;
  }
  // An input slot (legacy: named; PIR: the next operand). A PIR null operand
  // is kNoValue; legacy slots with kNoValue are left out.
  void in(const std::string& slot, ValueId v) {
    if (!pir_ && v == kNoValue) return;
    OpSlot s;
    s.name = pir_ ? "" : slot;
    s.args = {v};
    cur().inputs.push_back(std::move(s));
  }
  // An output slot holding a new value of shape `dims`.
  T out(const std::string& slot, const std::vector<int64_t>& dims, bool dyn = true) {
    ValueId id = value("t" + std::to_string(p_.values.size()), DType::Float32, dims, dyn);
    OpSlot s;
    s.name = pir_ ? "" : slot;
    s.args = {id};
    cur().outputs.push_back(std::move(s));
    return T{id, dims};
  }
  void attr(const std::string& name, Attr a) {
    cur().attrs.push_back(NamedAttr{name, std::move(a)});
  }
  void fetch(const T& t) {
    for (const IoBinding& io : p_.outputs)
      if (io.value == t.id) return;
    p_.outputs.push_back(IoBinding{"out" + std::to_string(p_.outputs.size()), t.id,
                                   static_cast<int32_t>(p_.outputs.size())});
    fetched_dims_.push_back(t.dims);
  }
  const std::vector<std::vector<int64_t>>& fetched_dims() const { return fetched_dims_; }
  size_t op_count() const { return p_.blocks[0].ops.size(); }

  std::shared_ptr<const LoadedModel> model() const {
    auto m = std::make_shared<LoadedModel>();
    m->program_file = "<memory:check_dnnl_kernels>";
    m->program = p_;
    return m;
  }
  // Fresh random data for every graph input.
  std::vector<NamedTensor> draw_feeds(Rng& r) const {
    std::vector<NamedTensor> feeds;
    for (size_t k = 0; k < p_.inputs.size(); ++k) {
      const FeedSpec& s = specs_[k];
      NamedTensor t;
      t.name = p_.inputs[k].name;
      t.dims = feed_dims_[k];
      if (!s.ints.empty()) {
        t.dtype = DType::Int64;
        t.data.resize(s.ints.size() * 8);
        std::memcpy(t.data.data(), s.ints.data(), t.data.size());
      } else {
        t.dtype = DType::Float32;
        std::vector<float> v = r.vec(prod(t.dims), s.lo, s.hi);
        if (s.away_from_zero)
          for (float& x : v) x = r.b() ? x : -x;
        t.data.resize(v.size() * 4);
        std::memcpy(t.data.data(), v.data(), t.data.size());
      }
      feeds.push_back(std::move(t));
    }
    return feeds;
  }

 private:
  Op& cur() { return p_.blocks[0].ops.back(); }
  ValueId value(const std::string& name, DType dt, std::vector<int64_t> dims, bool dyn) {
    Value v;
    v.name = name;
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = dt;
    if (dyn && dyn_ && !dims.empty()) dims[0] = -1;
    v.type.dims = dims;
    return p_.add_value(std::move(v));
  }
  T constant(DType dt, const std::vector<int64_t>& dims, const void* data, size_t nbytes) {
    ValueId id = value("p" + std::to_string(p_.values.size()), dt, dims, false);
    p_.values[id].persistable = true;
    p_.values[id].constant = make_tensor(dt, dims, data, nbytes);
    return T{id, dims};
  }

  bool pir_, dyn_;
  Program p_;
  std::vector<FeedSpec> specs_;
  std::vector<std::vector<int64_t>> feed_dims_;
  std::vector<std::vector<int64_t>> fetched_dims_;
  int64_t next_id_ = 1;
};

// ---------------------------------------------------------------------------
// Cases and their expectations.
// One node expected after the passes.
struct Want {
  std::string passes;  // its name in the passes-only executor
  std::string hpi;     // its name in the hpi executor
  int fast = 0;        // hpi: 1 = must run a oneDNN primitive, 0 = must not, -1 = either
  std::string prim;    // the oneDNN primitive kind it runs ("convolution", ...)
};

inline Want w_ref(const std::string& name) { return Want{name, name, 0, ""}; }

inline Want w_fused_conv() {
  return Want{"pif.fused_conv2d", "dnnl.fused_conv2d", 1, "convolution"};
}

inline Want w_fused_mm(int fast) {
  return Want{"pif.fused_matmul", "dnnl.fused_matmul", fast, "matmul"};
}
Want w_binary(const std::string& name, int fast);

struct Case {
  Case(bool pir, bool dyn) : g(pir, dyn) {}
  std::string family;
  std::ostringstream d;  // description
  Graph g;
  std::vector<Want> want;
  int threads = 1;
  // Non-empty: a known bug makes the hpi numbers wrong; they are not compared
  // unless PIF_DNNL_INCLUDE_KNOWN=1 (everything else is still checked).
  std::string known_failure;
};

// ---------------------------------------------------------------------------
// Unary ops (activations, scale, dropout, clip, assign).

struct Act {
  std::string name;  // canonical op name (the reference OpDef's)
  double a = 0, b = 0, c = 0;
  bool flag = false;      // gelu: approximate; scale: bias_after_scale; dropout: upscale_in_train
  bool operands = false;  // PIR clip: min/max operands (read at run time, not an attribute)

  bool identity() const {
    return name == "assign" || (name == "dropout" && flag) ||
           (name == "scale" && a == 1.0 && b == 0.0);
  }
  // passes/fuse.cc fusable_unary (+ plain_unary: clip operands are not).
  bool fusable() const {
    if (name == "hard_sigmoid" || name == "pow") return false;
    if (name == "hard_swish") return a == 6.0 && b == 6.0 && c == 3.0;
    if (name == "clip") return !operands;
    return true;
  }
  // kernels/dnnl/registry.cc: ops bound to dnnl.eltwise.
  bool bound() const {
    static const std::set<std::string> names = {
        "relu",  "relu6", "sigmoid",    "tanh", "exp",   "sqrt", "abs",        "square",
        "swish", "silu",  "hard_swish", "gelu", "scale", "clip", "leaky_relu", "pow"};
    if (!names.count(name)) return false;
    if (name == "hard_swish") return a == 6.0 && b == 6.0 && c == 3.0;
    if (name == "clip") return !operands;
    return true;
  }
  std::string desc() const {
    std::string s = name;
    if (name == "relu6" || name == "swish" || name == "leaky_relu") s += "(" + num(a) + ")";
    if (name == "hard_swish" || name == "hard_sigmoid")
      s += "(" + num(a) + "," + num(b) + (name == "hard_swish" ? "," + num(c) : "") + ")";
    if (name == "gelu") s += flag ? "(tanh)" : "(erf)";
    if (name == "scale") s += "(" + num(a) + "," + num(b) + (flag ? ",after" : ",before") + ")";
    if (name == "dropout") s += flag ? "(upscale_in_train)" : "(downscale " + num(a) + ")";
    if (name == "clip") s += "(" + num(a) + "," + num(b) + (operands ? ",operands)" : ")");
    if (name == "pow") s += "(" + num(a) + ")";
    return s;
  }
};
Act act(const std::string& name, double a = 0, double b = 0, double c = 0, bool flag = false);
// The activations that follow convolutions / products in real models (all
// fusable, with default parameters where oneDNN needs them).
Act random_post_act(Rng& r, bool pir);
// Any unary op, including those that do not fuse or bind to oneDNN. sqrt and
// pow only for positive inputs (NaN propagation through clip differs).
Act random_any_act(Rng& r, bool pir, bool positive = false);
Want act_want(const Act& a);

// The oneDNN eltwise algorithm and parameters of an activation fused as a
// post-op (kernels/dnnl/common.cc eltwise_of).
struct EltAlg {
  std::string alg;
  float alpha = 0, beta = 0;
};
EltAlg elt_alg(const Act& a);
T emit_act(Graph& g, const T& x, const Act& a);
// ---------------------------------------------------------------------------
// Op emitters.
std::string bin_legacy(const std::string& name);
T emit_binary(Graph& g, const std::string& name, const T& x, const T& y,
              const std::vector<int64_t>& out_dims, int64_t axis = -1);

struct ConvSpec {
  int64_t C = 1, OC = 1, G = 1, KH = 1, KW = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  std::vector<int64_t> pads{0, 0};
  std::string algo = "EXPLICIT";
  bool dw_type = false;  // spelled depthwise_conv2d

  std::string desc() const {
    std::ostringstream o;
    o << (dw_type ? "depthwise_conv2d" : "conv2d") << " f[" << OC << "," << C / G << "," << KH
      << "," << KW << "] g" << G << " s" << sh << "x" << sw << " d" << dh << "x" << dw << " p"
      << dims_str(pads) << " " << algo;
    return o.str();
  }
};
// Output height/width of a convolution (values < 1: invalid geometry).
void conv_out_hw(const ConvSpec& s, int64_t H, int64_t W, int64_t* OH, int64_t* OW);
// Random kernel geometry (channels given).
void random_geometry(Rng& r, ConvSpec* s);
// Random channel structure: plain, depthwise or grouped.
void random_channels(Rng& r, ConvSpec* s);
T emit_conv(Graph& g, Rng& r, const T& x, const ConvSpec& s, bool legacy_bias = false,
            bool filter_feed = false, bool nhwc = false);
T emit_batch_norm(Graph& g, Rng& r, const T& x);
T emit_reshape(Graph& g, const T& x, const std::vector<int64_t>& shape, bool dyn);
T emit_transpose(Graph& g, const T& x, const std::vector<int64_t>& perm);

struct PoolSpec {
  bool is_max = true, adaptive = false, global = false, exclusive = true, ceil_mode = false;
  int64_t kh = 2, kw = 2, sh = 2, sw = 2;
  std::vector<int64_t> pads{0, 0};
  std::string algo = "EXPLICIT";
  bool nhwc = false;
  bool ksize_feed = false;  // PIR kernel_size as a run-time graph input

  std::string desc() const {
    std::ostringstream o;
    o << "pool2d " << (is_max ? "max" : "avg") << " k" << kh << "x" << kw << " s" << sh << "x" << sw
      << " p" << dims_str(pads) << " " << algo << (adaptive ? " adaptive" : "")
      << (global ? " global" : "") << (exclusive ? " excl" : " incl") << (ceil_mode ? " ceil" : "")
      << (nhwc ? " NHWC" : "") << (ksize_feed ? " kernel_size-input" : "");
    return o.str();
  }
};
// Output H/W of a pooling (values < 1: invalid geometry).
void pool_out_hw(const PoolSpec& s, int64_t H, int64_t W, int64_t* OH, int64_t* OW);
T emit_pool(Graph& g, const T& x, const PoolSpec& s);
// Output shape of matmul_v2 with Paddle's 1-D rules; empty if invalid.
std::vector<int64_t> matmul_dims(std::vector<int64_t> xd, std::vector<int64_t> yd, bool tx,
                                 bool ty);
// matmul_v2 / pd_op.matmul, or (v1) the old matmul with alpha.
T emit_matmul(Graph& g, const T& x, const T& y, bool tx, bool ty, bool v1 = false,
              double alpha = 1.0);
T emit_softmax(Graph& g, const T& x, int64_t axis);
T emit_layer_norm(Graph& g, Rng& r, const T& x, int64_t axis, bool scale, bool bias, double eps);

// ---------------------------------------------------------------------------
// Chains: a fused op (conv / matmul) and what follows it, with the
// expectation of what the passes fuse. The rules restate passes/fuse.h:
// a bias add fuses right after the op (before batch norm is folded); batch
// norm folds into a conv with at most a bias before it; activations fuse
// while the value is read once and is not a graph output; a residual add
// fuses into the later of its two producers; identities vanish unless they
// produce a graph output.

struct Chain {
  T cur;
  bool open = false;     // cur is produced by a fused op that may still absorb its consumer
  int stage = 0;         // 0 right after the op, 1 bias fused, 2 batch norm folded, 3 post-ops
  bool bias_ok = false;  // a per-channel / per-column constant bias may still fuse
  bool is_conv = false;
  // The last op was an identity counted as removed: if it ends up producing
  // a graph output it stays (finish()).
  bool tail_identity = false;
  Act tail;
  std::vector<EltAlg> post;  // eltwise post-ops of the fused op, as oneDNN gets them
  int want_index = -1;       // the fused op's entry in Case::want
};

struct Builder {
  Case& c;
  Rng& r;
  Graph& g;
  bool pir;
  Builder(Case& cs, Rng& rng) : c(cs), r(rng), g(cs.g), pir(cs.g.pir()) {}

  // Records an eltwise post-op fused into the chain's op. oneDNN 2.6.3 (jit
  // convolution and gemm matmul alike) computes the second of two eltwise
  // post-ops of the same algorithm with the first one's alpha/beta; the
  // backend re-encodes such steps (merged linears, relu as clip, ...) or
  // uses the reference kernel for the node. So a chain with a repeated
  // algorithm may run either way, and its numbers are always compared.
  void add_post(Chain& ch, const EltAlg& e) {
    for (const EltAlg& p : ch.post) {
      if (p.alg == e.alg && (p.alpha != e.alpha || p.beta != e.beta) && ch.want_index >= 0 &&
          c.want[static_cast<size_t>(ch.want_index)].fast == 1)
        c.want[static_cast<size_t>(ch.want_index)].fast = -1;
    }
    ch.post.push_back(e);
  }

  // `n` relus after the chain's op, then finish().
  void relus_and_finish(Chain& ch, int n) {
    for (int k = 0; k < n; ++k) unary(ch, act("relu"));
    finish(ch);
  }

  // Fetches the chain's value as a graph output.
  void finish(Chain& ch) {
    if (ch.tail_identity) {
      // A graph output: remove_identity keeps it; it fuses as a post-op
      // when the chain is open, else stays a node.
      if (!ch.open)
        c.want.push_back(act_want(ch.tail));
      else
        add_post(ch, elt_alg(ch.tail));
      ch.tail_identity = false;
    }
    g.fetch(ch.cur);
  }

  void fetch_if(Chain& ch, bool fetch) {
    if (!fetch) return;
    g.fetch(ch.cur);
    ch.open = false;
    c.d << " (fetched)";
  }

  // `fast`: the hpi node must run oneDNN's convolution (1), or may fall back
  // (-1: the kernel uses the reference convolution where oneDNN would pick a
  // gemm / reference implementation, which depends on the CPU).
  Chain conv(const T& x, const ConvSpec& s, int fast = -1, bool legacy_bias = false,
             bool filter_feed = false, bool nhwc = false) {
    Chain ch;
    ch.cur = emit_conv(g, r, x, s, legacy_bias, filter_feed, nhwc);
    ch.is_conv = true;
    c.d << (pir ? "pd_op." : "") << s.desc() << (legacy_bias ? " Bias" : "")
        << (filter_feed ? " filter-input" : "") << (nhwc ? " NHWC" : "") << " -> "
        << dims_str(ch.cur.dims);
    if (filter_feed || nhwc) {
      c.want.push_back(w_ref("conv2d"));  // not fusable: reference conv2d
      return ch;
    }
    c.want.push_back(w_fused_conv());
    c.want.back().fast = fast;
    ch.want_index = static_cast<int>(c.want.size()) - 1;
    ch.open = true;
    ch.bias_ok = !legacy_bias;
    return ch;
  }

  // Per-channel (conv) or per-column (matmul) constant bias add.
  void bias(Chain& ch, bool fetch = false) {
    ch.tail_identity = false;
    bool fused = ch.open && ch.stage == 0 && ch.bias_ok;
    T b;
    bool reshape = false, swap = false;
    int64_t axis = -1;
    std::string form;
    const std::vector<int64_t>& od = ch.cur.dims;
    if (ch.is_conv) {
      int64_t C = od[1];
      std::vector<float> v = r.vec(C, -0.5, 0.5);
      int k = static_cast<int>(r.i(0, 2));
      // An unfused add of a constant of the output's own shape is a residual
      // add (fuse_residual), not a bias: keep the cases apart.
      if (!fused && od[0] == 1 && od[2] == 1 && od[3] == 1) k = 2;
      if (!pir) {
        if (k < 2) {
          b = g.cst({C}, v);
          axis = 1;
          form = "[C] axis=1";
        } else {
          b = g.cst({C, 1, 1}, v);
          form = "[C,1,1]";
        }
      } else if (k == 0) {
        b = emit_reshape(g, g.cst({C}, v), {1, C, 1, 1}, false);
        reshape = true;
        form = "reshape([C])->[1,C,1,1]";
      } else {
        b = k == 1 ? g.cst({1, C, 1, 1}, v) : g.cst({C, 1, 1}, v);
        form = dims_str(b.dims);
      }
    } else {
      int64_t N = od.back(), rank = static_cast<int64_t>(od.size());
      std::vector<float> v = r.vec(N, -0.5, 0.5);
      if (!pir && rank >= 2 && r.b(0.3)) {
        axis = rank - 1;
        b = g.cst({N}, v);
        form = "[N] axis=" + std::to_string(axis);
      } else if (rank >= 2 && r.b(0.2) && (fused || od != std::vector<int64_t>{1, N})) {
        b = g.cst({1, N}, v);
        form = "[1,N]";
      } else {
        b = g.cst({N}, v);
        form = "[N]";
      }
    }
    if (!fused && b.dims == od) throw std::logic_error("generator: bias of the output's shape");
    swap = pir && r.b(0.3);
    T y = swap ? emit_binary(g, "add", b, ch.cur, od) : emit_binary(g, "add", ch.cur, b, od, axis);
    c.d << " | +bias " << form << (swap ? " (bias first)" : "");
    if (fused) {
      ch.stage = 1;
      ch.bias_ok = false;
    } else {
      c.want.push_back(w_binary("add", 1));
      if (reshape) c.want.push_back(w_ref("reshape"));
      ch.open = false;
    }
    ch.cur = y;
    fetch_if(ch, fetch);
  }

  void batch_norm(Chain& ch, bool fetch = false) {
    ch.tail_identity = false;
    bool fused = ch.open && ch.is_conv && ch.stage <= 1;
    ch.cur = emit_batch_norm(g, r, ch.cur);
    c.d << " | batch_norm";
    if (fused) {
      ch.stage = 2;
      ch.bias_ok = false;
    } else {
      c.want.push_back(w_ref("batch_norm"));
      ch.open = false;
    }
    fetch_if(ch, fetch);
  }

  void unary(Chain& ch, const Act& a, bool fetch = false) {
    ch.cur = emit_act(g, ch.cur, a);
    c.d << " | " << a.desc();
    ch.tail_identity = false;
    if (a.identity() && !fetch) {
      // remove_identity: consumers read the input.
      ch.tail_identity = true;
      ch.tail = a;
    } else if (a.fusable() && ch.open) {
      ch.stage = 3;
      ch.bias_ok = false;
      add_post(ch, elt_alg(a));
    } else {
      c.want.push_back(act_want(a));
      ch.open = false;
    }
    fetch_if(ch, fetch);
  }

  // QuickGELU as exported: multiply(x, sigmoid(scale(x, 1.702))). With a
  // zero scale bias fuse_swish makes it one swish(x, 1.702) activation (which
  // then fuses like any other); with a bias it stays three ops.
  void quick_gelu(Chain& ch, bool match) {
    ch.tail_identity = false;
    T x = ch.cur;
    Act sc = act("scale", 1.702, match ? 0.0 : 0.5, 0, r.b());
    T s = emit_act(g, x, sc);
    T sg = emit_act(g, s, act("sigmoid"));
    bool swap = r.b();
    ch.cur = swap ? emit_binary(g, "multiply", sg, x, x.dims)
                  : emit_binary(g, "multiply", x, sg, x.dims);
    c.d << " | quick_gelu(" << sc.desc() << (swap ? ", sigmoid first)" : ")");
    if (match && ch.open) {
      ch.stage = 3;
      ch.bias_ok = false;
      add_post(ch, EltAlg{"swish", 1.702f});
    } else if (match) {
      c.want.push_back(act_want(act("swish", 1.702)));
    } else {
      c.want.push_back(act_want(sc));
      c.want.push_back(act_want(act("sigmoid")));
      c.want.push_back(w_binary("multiply", x.dims.empty() ? 0 : 1));  // 0-D: reference
      ch.open = false;
    }
  }

  // add(main, other) with `other` of the same shape. `later`: other's chain
  // when its producer comes after main's (the add then fuses into it).
  void residual(Chain& main, const T& other, Chain* later, const std::string& what,
                bool fetch = false) {
    main.tail_identity = false;
    bool swap = r.b();
    T y = swap ? emit_binary(g, "add", other, main.cur, main.cur.dims)
               : emit_binary(g, "add", main.cur, other, main.cur.dims);
    c.d << " | +residual(" << what << ")";
    bool fused = later ? later->open : main.open;
    if (later) main = *later;
    if (fused) {
      main.stage = 3;
      main.bias_ok = false;
    } else {
      c.want.push_back(w_binary("add", 1));
      main.open = false;
    }
    main.cur = y;
    fetch_if(main, fetch);
  }
};

// Runs the cases of one family (its share of --cases, default 150; seed 20240611): each case has
// its own generator seeded from the seed and its index, so PIF_DNNL_ONLY=IDX reproduces it alone.
using GenFn = void (*)(Case&, Rng&);
void run_family(const char* family, GenFn gen);

}  // namespace pif::test
