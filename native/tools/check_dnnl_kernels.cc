// check_dnnl_kernels: randomized checks of the high-performance mode (graph
// passes + oneDNN kernels) against the reference kernels.
//
//   check_dnnl_kernels [--seed N] [--cases N] [--only IDX] [--verbose]
//                      [--include-known-failures]
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
// unless --include-known-failures.
//
// A failing case prints its family, description, seed and the command that
// reproduces it alone (--only). Exit status 0 when every case passed.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "format/model_dir.h"
#include "graph/ir.h"
#include "passes/fuse.h"
#include "runtime/executor.h"

using namespace pif;

namespace {

// ---------------------------------------------------------------------------
// Random numbers.

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  int64_t i(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(g);
  }
  double u(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
  bool b(double p = 0.5) { return u(0, 1) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(i(0, static_cast<int64_t>(v.size()) - 1))];
  }
  std::vector<float> vec(int64_t n, double lo = -1, double hi = 1) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = static_cast<float>(u(lo, hi));
    return v;
  }
};

int64_t prod(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t v : d) n *= v;
  return n;
}

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// ---------------------------------------------------------------------------
// Attributes (legacy kinds, or PIR's a_array for lists).

Attr attr_int(int64_t v) {
  Attr a;
  a.kind = Attr::Kind::Int32;
  a.i = v;
  return a;
}
Attr attr_float(double v) {
  Attr a;
  a.kind = Attr::Kind::Float32;
  a.f = v;
  return a;
}
Attr attr_bool(bool v) {
  Attr a;
  a.kind = Attr::Kind::Bool;
  a.b = v;
  return a;
}
Attr attr_str(const std::string& v) {
  Attr a;
  a.kind = Attr::Kind::String;
  a.s = v;
  return a;
}
Attr attr_ints(const std::vector<int64_t>& v, bool pir) {
  Attr a;
  if (pir) {
    a.kind = Attr::Kind::Array;
    for (int64_t x : v) {
      Attr e;
      e.kind = Attr::Kind::Int32;
      e.i = x;
      a.items.push_back(e);
    }
  } else {
    a.kind = Attr::Kind::Int32s;
    a.ints = v;
  }
  return a;
}

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
    auto t = std::make_shared<Tensor>();
    t->dtype = dt;
    t->dims = dims;
    t->storage = std::make_shared<std::vector<uint8_t>>(static_cast<const uint8_t*>(data),
                                                        static_cast<const uint8_t*>(data) + nbytes);
    t->nbytes = nbytes;
    ValueId id = value("p" + std::to_string(p_.values.size()), dt, dims, false);
    p_.values[id].persistable = true;
    p_.values[id].constant = t;
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

Want w_ref(const std::string& name) { return Want{name, name, 0, ""}; }
Want w_fused_conv() { return Want{"pif.fused_conv2d", "dnnl.fused_conv2d", 1, "convolution"}; }
Want w_fused_mm(int fast) { return Want{"pif.fused_matmul", "dnnl.fused_matmul", fast, "matmul"}; }
Want w_binary(const std::string& name, int fast) {
  return Want{name, "dnnl.binary", fast, "binary"};
}

struct Case {
  Case(bool pir, bool dyn) : g(pir, dyn) {}
  std::string family;
  std::ostringstream d;  // description
  Graph g;
  std::vector<Want> want;
  int threads = 1;
  // Non-empty: a known bug makes the hpi numbers wrong; they are not compared
  // unless --include-known-failures (everything else is still checked).
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

Act act(const std::string& name, double a = 0, double b = 0, double c = 0, bool flag = false) {
  Act x;
  x.name = name;
  x.a = a;
  x.b = b;
  x.c = c;
  x.flag = flag;
  return x;
}

// The activations that follow convolutions / products in real models (all
// fusable, with default parameters where oneDNN needs them).
Act random_post_act(Rng& r, bool pir) {
  switch (r.i(0, 12)) {
    case 0:
    case 1: return act("relu");
    case 2: return act("relu6", 6);
    case 3: return act("sigmoid");
    case 4: return act("tanh");
    case 5: return act("hard_swish", 6, 6, 3);
    case 6: return act("swish", pir ? 1.0 : r.pick(std::vector<double>{1.0, 0.5, 1.5}));
    case 7: return act("gelu", 0, 0, 0, r.b(0.3));
    case 8: return act("leaky_relu", r.pick(std::vector<double>{0.02, 0.1, 0.2}));
    case 9:
      return act("scale", r.pick(std::vector<double>{0.125, 2.0, -0.5}), r.b() ? 0.0 : r.u(-1, 1),
                 0, r.b());
    case 10:  // downscale_in_infer: x * (1 - p); c picks the legacy spelling
      return act("dropout", 0.2, 0, r.b() ? 1 : 0, false);
    case 11: return act("silu");
    default: return act("relu");
  }
}

// Any unary op, including those that do not fuse or bind to oneDNN. sqrt and
// pow only for positive inputs (NaN propagation through clip differs).
Act random_any_act(Rng& r, bool pir, bool positive = false) {
  switch (r.i(0, 12)) {
    case 0: return random_post_act(r, pir);
    case 11:
      return positive ? act("pow", r.pick(std::vector<double>{2.0, 3.0, 0.5, 1.5})) : act("square");
    case 1: return act("exp");
    case 2: return positive ? act("sqrt") : act("abs");
    case 3: return act("abs");
    case 4: return act("square");
    case 5:  // non-default hard_swish: no oneDNN equivalent
      return pir ? act("hard_swish", 6, 6, 3) : act("hard_swish", 5, 6, 2.5);
    case 6: return act("hard_sigmoid", r.pick(std::vector<double>{0.2, 1.0 / 6}), 0.5);
    case 7: {
      Act x = act("clip", r.u(-1, 0), r.u(0, 1));
      x.operands = pir;
      return x;
    }
    case 8: return act("assign");
    case 9: return r.b() ? act("dropout", 0, 0, 0, true) : act("scale", 1, 0, 0, r.b());
    case 10: return act("dropout", r.pick(std::vector<double>{0.1, 0.2, 0.5}), 0, r.b() ? 1 : 0);
    default: return random_post_act(r, pir);
  }
}

Want act_want(const Act& a) {
  if (a.bound()) return Want{a.name, "dnnl.eltwise", 1, "eltwise"};
  return w_ref(a.name);
}

// The oneDNN eltwise algorithm and parameters of an activation fused as a
// post-op (kernels/dnnl/common.cc eltwise_of).
struct EltAlg {
  std::string alg;
  float alpha = 0, beta = 0;
};
EltAlg elt_alg(const Act& a) {
  const std::string& n = a.name;
  float x = static_cast<float>(a.a), y = static_cast<float>(a.b);
  if (n == "relu") return {"relu"};
  if (n == "leaky_relu") return {"relu", x};
  if (n == "relu6") return {"clip", 0, x};
  if (n == "clip") return {"clip", x, y};
  if (n == "swish") return {"swish", x};
  if (n == "silu") return {"swish", 1};
  if (n == "gelu") return {a.flag ? "gelu_tanh" : "gelu_erf"};
  if (n == "scale") return {"linear", x, a.flag ? y : x * y};
  if (n == "dropout") return a.flag ? EltAlg{"linear", 1, 0} : EltAlg{"linear", 1 - x, 0};
  if (n == "assign") return {"linear", 1, 0};
  return {n};
}

T emit_act(Graph& g, const T& x, const Act& a) {
  bool pir = g.pir();
  const std::string& n = a.name;
  static const std::map<std::string, std::string> pir_names = {
      {"relu", "pd_op.relu"},
      {"relu6", "pd_op.relu6"},
      {"sigmoid", "pd_op.sigmoid"},
      {"tanh", "pd_op.tanh"},
      {"exp", "pd_op.exp"},
      {"sqrt", "pd_op.sqrt"},
      {"abs", "pd_op.abs"},
      {"square", "pd_op.square"},
      {"silu", "pd_op.silu"},
      {"hard_swish", "pd_op.hardswish"},
      {"hard_sigmoid", "pd_op.hardsigmoid"},
      {"swish", "pd_op.swish"},
      {"gelu", "pd_op.gelu"},
      {"leaky_relu", "pd_op.leaky_relu"},
      {"scale", "pd_op.scale"},
      {"clip", "pd_op.clip"},
      {"dropout", "pd_op.dropout"},
      {"assign", "pd_op.assign"},
      {"pow", "pd_op.pow"}};
  g.op(n, pir_names.at(n));
  g.in("X", x.id);
  if (pir && n == "scale") g.in("", g.cst({1}, {static_cast<float>(a.a)}).id);
  if (pir && n == "clip") {
    g.in("", g.cst({1}, {static_cast<float>(a.a)}).id);
    g.in("", g.cst({1}, {static_cast<float>(a.b)}).id);
  }
  if (pir && n == "dropout") {
    g.in("", kNoValue);  // seed_tensor
    g.in("", g.cst({1}, {static_cast<float>(a.a)}).id);
  }
  T y = g.out("Out", x.dims);
  if (n == "dropout") g.out("Mask", x.dims);
  if (n == "relu6" && !pir) g.attr("threshold", attr_float(a.a));
  if (n == "hard_swish" && !pir) {
    g.attr("threshold", attr_float(a.a));
    g.attr("scale", attr_float(a.b));
    g.attr("offset", attr_float(a.c));
  }
  if (n == "hard_sigmoid") {
    g.attr("slope", attr_float(a.a));
    g.attr("offset", attr_float(a.b));
  }
  if (n == "swish" && !pir) g.attr("beta", attr_float(a.a));
  if (n == "gelu") g.attr("approximate", attr_bool(a.flag));
  if (n == "leaky_relu") g.attr(pir ? "negative_slope" : "alpha", attr_float(a.a));
  if (n == "scale") {
    if (!pir) g.attr("scale", attr_float(a.a));
    g.attr("bias", attr_float(a.b));
    g.attr("bias_after_scale", attr_bool(a.flag));
  }
  if (n == "pow") g.attr(pir ? "y" : "factor", attr_float(a.a));
  if (n == "clip" && !pir) {
    g.attr("min", attr_float(a.a));
    g.attr("max", attr_float(a.b));
  }
  if (n == "dropout") {
    g.attr("is_test", attr_bool(true));
    if (pir) {
      g.attr("mode", attr_str(a.flag ? "upscale_in_train" : "downscale_in_infer"));
    } else {
      g.attr("dropout_prob", attr_float(a.a));
      // Both legacy spellings of the inference-time downscale.
      g.attr("dropout_implementation",
             attr_str(a.flag ? "upscale_in_train"
                             : (a.c != 0 ? "downgrade_in_infer" : "downscale_in_infer")));
    }
  }
  return y;
}

// ---------------------------------------------------------------------------
// Op emitters.

std::string bin_legacy(const std::string& name) {
  static const std::map<std::string, std::string> m = {
      {"add", "elementwise_add"},      {"subtract", "elementwise_sub"},
      {"multiply", "elementwise_mul"}, {"divide", "elementwise_div"},
      {"maximum", "elementwise_max"},  {"minimum", "elementwise_min"}};
  return m.at(name);
}

T emit_binary(Graph& g, const std::string& name, const T& x, const T& y,
              const std::vector<int64_t>& out_dims, int64_t axis = -1) {
  g.op(bin_legacy(name), "pd_op." + name);
  g.in("X", x.id);
  g.in("Y", y.id);
  T o = g.out("Out", out_dims);
  if (!g.pir()) g.attr("axis", attr_int(axis));
  return o;
}

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

// Paddle's SAME padding split for one axis.
void same_pad(int64_t in, int64_t stride, int64_t k, int64_t* before, int64_t* after) {
  int64_t out = (in + stride - 1) / stride;
  int64_t total = std::max<int64_t>((out - 1) * stride + k - in, 0);
  *before = total / 2;
  *after = total - *before;
}

// Output height/width of a convolution (values < 1: invalid geometry).
void conv_out_hw(const ConvSpec& s, int64_t H, int64_t W, int64_t* OH, int64_t* OW) {
  int64_t pt, pb, pl, pr, edh = s.dh, edw = s.dw;
  if (s.pads.size() == 2) {
    pt = pb = s.pads[0];
    pl = pr = s.pads[1];
  } else {
    pt = s.pads[0];
    pb = s.pads[1];
    pl = s.pads[2];
    pr = s.pads[3];
  }
  if (s.algo == "VALID") pt = pb = pl = pr = 0;
  if (s.algo == "SAME") {
    same_pad(H, s.sh, s.KH, &pt, &pb);
    same_pad(W, s.sw, s.KW, &pl, &pr);
    edh = edw = 1;
  }
  int64_t eh = H + pt + pb - (edh * (s.KH - 1) + 1);
  int64_t ew = W + pl + pr - (edw * (s.KW - 1) + 1);
  *OH = eh < 0 ? 0 : eh / s.sh + 1;
  *OW = ew < 0 ? 0 : ew / s.sw + 1;
}

// Random kernel geometry (channels given).
void random_geometry(Rng& r, ConvSpec* s) {
  static const std::vector<int64_t> ks = {1, 1, 3, 3, 3, 5};
  s->KH = r.pick(ks);
  s->KW = r.b(0.1) ? r.pick(ks) : s->KH;
  s->sh = r.b(0.65) ? 1 : 2;
  s->sw = r.b(0.9) ? s->sh : 3 - s->sh;
  s->dh = s->KH > 1 && r.b(0.25) ? 2 : 1;
  s->dw = s->KW > 1 && r.b(0.25) ? 2 : 1;
  if (r.b(0.6))
    s->pads = {r.i(0, 2), r.i(0, 2)};
  else
    s->pads = {r.i(0, 3), r.i(0, 3), r.i(0, 3), r.i(0, 3)};
  double u = r.u(0, 1);
  s->algo = u < 0.7 ? "EXPLICIT" : (u < 0.85 ? "SAME" : "VALID");
}

// Random channel structure: plain, depthwise or grouped.
void random_channels(Rng& r, ConvSpec* s) {
  static const std::vector<int64_t> ch = {1, 2, 3, 4, 5, 7, 8, 12, 16};
  int kind = static_cast<int>(r.i(0, 9));
  if (kind < 5) {
    s->G = 1;
    s->C = r.pick(ch);
    s->OC = r.pick(ch);
  } else if (kind < 8) {
    s->C = r.pick(std::vector<int64_t>{2, 3, 5, 8, 12});
    s->G = s->C;
    s->OC = s->C * (r.b(0.8) ? 1 : 2);
    s->dw_type = r.b(0.6);
  } else {
    s->G = r.i(2, 4);
    s->C = s->G * r.i(1, 4);
    s->OC = s->G * r.i(1, 3);
  }
}

T emit_conv(Graph& g, Rng& r, const T& x, const ConvSpec& s, bool legacy_bias = false,
            bool filter_feed = false, bool nhwc = false) {
  int64_t H = nhwc ? x.dims[1] : x.dims[2], W = nhwc ? x.dims[2] : x.dims[3], OH, OW;
  conv_out_hw(s, H, W, &OH, &OW);
  int64_t N = x.dims[0];
  int64_t fan_in = s.C / s.G * s.KH * s.KW;
  double a = std::sqrt(3.0 / static_cast<double>(fan_in));
  std::vector<int64_t> fd{s.OC, s.C / s.G, s.KH, s.KW};
  T w = filter_feed ? g.feed(fd, -a, a) : g.cst(fd, r.vec(prod(fd), -a, a));
  std::string type = s.dw_type ? "depthwise_conv2d" : "conv2d";
  g.op(type, "pd_op." + type);
  g.in("Input", x.id);
  g.in("Filter", w.id);
  if (legacy_bias) g.in("Bias", g.cst({s.OC}, r.vec(s.OC, -0.5, 0.5)).id);
  T y = g.out("Output",
              nhwc ? std::vector<int64_t>{N, OH, OW, s.OC} : std::vector<int64_t>{N, s.OC, OH, OW});
  bool pir = g.pir();
  g.attr("strides", attr_ints({s.sh, s.sw}, pir));
  g.attr("paddings", attr_ints(s.pads, pir));
  g.attr("dilations", attr_ints({s.dh, s.dw}, pir));
  g.attr("groups", attr_int(s.G));
  g.attr("padding_algorithm", attr_str(s.algo));
  g.attr("data_format", attr_str(nhwc ? "NHWC" : "NCHW"));
  return y;
}

T emit_batch_norm(Graph& g, Rng& r, const T& x) {
  int64_t C = x.dims[1];
  T scale = g.cst({C}, r.vec(C, 0.5, 1.5)), bias = g.cst({C}, r.vec(C, -0.5, 0.5)),
    mean = g.cst({C}, r.vec(C, -0.5, 0.5)), var = g.cst({C}, r.vec(C, 0.05, 2.0));
  double eps = r.b() ? 1e-5 : 1e-3;
  T y;
  if (g.pir()) {
    g.op("", r.b() ? "pd_op.batch_norm_" : "pd_op.batch_norm");
    g.in("", x.id);
    g.in("", mean.id);
    g.in("", var.id);
    g.in("", scale.id);
    g.in("", bias.id);
    y = g.out("", x.dims);
    for (int k = 0; k < 5; ++k) g.out("", {C}, false);
    g.attr("data_format", attr_str("NCHW"));
  } else {
    g.op("batch_norm", "");
    g.in("X", x.id);
    g.in("Scale", scale.id);
    g.in("Bias", bias.id);
    g.in("Mean", mean.id);
    g.in("Variance", var.id);
    y = g.out("Y", x.dims);
    g.out("MeanOut", {C}, false);
    g.out("VarianceOut", {C}, false);
    g.out("SavedMean", {C}, false);
    g.out("SavedVariance", {C}, false);
    g.attr("data_layout", attr_str("NCHW"));
  }
  g.attr("epsilon", attr_float(eps));
  g.attr("is_test", attr_bool(true));
  g.attr("momentum", attr_float(0.9));
  return y;
}

T emit_reshape(Graph& g, const T& x, const std::vector<int64_t>& shape, bool dyn) {
  g.op("reshape2", "pd_op.reshape");
  g.in("X", x.id);
  if (g.pir()) g.in("", g.cst_i64(shape).id);
  T y = g.out("Out", shape, dyn);
  if (!g.pir()) g.attr("shape", attr_ints(shape, false));
  return y;
}

T emit_transpose(Graph& g, const T& x, const std::vector<int64_t>& perm) {
  std::vector<int64_t> od;
  for (int64_t p : perm) od.push_back(x.dims[static_cast<size_t>(p)]);
  g.op("transpose2", "pd_op.transpose");
  g.in("X", x.id);
  T y = g.out("Out", od);
  g.attr(g.pir() ? "perm" : "axis", attr_ints(perm, g.pir()));
  return y;
}

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
void pool_out_hw(const PoolSpec& s, int64_t H, int64_t W, int64_t* OH, int64_t* OW) {
  if (s.global) {
    *OH = *OW = 1;
    return;
  }
  if (s.adaptive) {
    *OH = s.kh;
    *OW = s.kw;
    return;
  }
  int64_t pt, pb, pl, pr;
  if (s.pads.size() == 2) {
    pt = pb = s.pads[0];
    pl = pr = s.pads[1];
  } else {
    pt = s.pads[0];
    pb = s.pads[1];
    pl = s.pads[2];
    pr = s.pads[3];
  }
  if (s.algo == "SAME") {
    same_pad(H, s.sh, s.kh, &pt, &pb);
    same_pad(W, s.sw, s.kw, &pl, &pr);
  }
  if (s.algo == "VALID") pt = pb = pl = pr = 0;
  int64_t nh = H - s.kh + pt + pb + (s.ceil_mode ? s.sh - 1 : 0);
  int64_t nw = W - s.kw + pl + pr + (s.ceil_mode ? s.sw - 1 : 0);
  *OH = nh < 0 ? 0 : nh / s.sh + 1;
  *OW = nw < 0 ? 0 : nw / s.sw + 1;
}

T emit_pool(Graph& g, const T& x, const PoolSpec& s) {
  int64_t H = s.nhwc ? x.dims[1] : x.dims[2], W = s.nhwc ? x.dims[2] : x.dims[3], OH, OW;
  pool_out_hw(s, H, W, &OH, &OW);
  int64_t N = x.dims[0], C = s.nhwc ? x.dims[3] : x.dims[1];
  bool pir = g.pir();
  T ks;
  if (pir) ks = s.ksize_feed ? g.feed_i64({s.kh, s.kw}) : g.cst_i64({s.kh, s.kw});
  g.op("pool2d", "pd_op.pool2d");
  g.in("X", x.id);
  if (pir) g.in("", ks.id);
  T y = g.out("Out",
              s.nhwc ? std::vector<int64_t>{N, OH, OW, C} : std::vector<int64_t>{N, C, OH, OW});
  if (!pir) g.attr("ksize", attr_ints({s.kh, s.kw}, false));
  g.attr("pooling_type", attr_str(s.is_max ? "max" : "avg"));
  g.attr("strides", attr_ints({s.sh, s.sw}, pir));
  g.attr("paddings", attr_ints(s.pads, pir));
  g.attr("global_pooling", attr_bool(s.global));
  g.attr("adaptive", attr_bool(s.adaptive));
  g.attr("exclusive", attr_bool(s.exclusive));
  g.attr("ceil_mode", attr_bool(s.ceil_mode));
  g.attr("padding_algorithm", attr_str(s.algo));
  g.attr("data_format", attr_str(s.nhwc ? "NHWC" : "NCHW"));
  return y;
}

// Output shape of matmul_v2 with Paddle's 1-D rules; empty if invalid.
std::vector<int64_t> matmul_dims(std::vector<int64_t> xd, std::vector<int64_t> yd, bool tx,
                                 bool ty) {
  bool x1 = xd.size() == 1, y1 = yd.size() == 1;
  if (x1) tx = false, xd.insert(xd.begin(), 1);
  if (y1) ty = false, yd.push_back(1);
  size_t xr = xd.size(), yr = yd.size();
  int64_t m = tx ? xd[xr - 1] : xd[xr - 2], kx = tx ? xd[xr - 2] : xd[xr - 1];
  int64_t ky = ty ? yd[yr - 1] : yd[yr - 2], n = ty ? yd[yr - 2] : yd[yr - 1];
  if (kx != ky) return {};
  std::vector<int64_t> xb(xd.begin(), xd.end() - 2), yb(yd.begin(), yd.end() - 2);
  size_t r = std::max(xb.size(), yb.size());
  xb.insert(xb.begin(), r - xb.size(), 1);
  yb.insert(yb.begin(), r - yb.size(), 1);
  std::vector<int64_t> out;
  for (size_t i = 0; i < r; ++i) {
    if (xb[i] != yb[i] && xb[i] != 1 && yb[i] != 1) return {};
    out.push_back(std::max(xb[i], yb[i]));
  }
  if (!x1) out.push_back(m);
  if (!y1) out.push_back(n);
  return out;
}

// matmul_v2 / pd_op.matmul, or (v1) the old matmul with alpha.
T emit_matmul(Graph& g, const T& x, const T& y, bool tx, bool ty, bool v1 = false,
              double alpha = 1.0) {
  std::vector<int64_t> od = matmul_dims(x.dims, y.dims, tx, ty);
  if (od.empty() && !(x.dims.size() == 1 && y.dims.size() == 1))
    throw std::logic_error("generator: bad matmul shapes");
  if (od.empty() && !g.pir()) od = {1};  // legacy vector . vector is [1]
  g.op(v1 ? "matmul" : "matmul_v2", "pd_op.matmul");
  g.in("X", x.id);
  g.in("Y", y.id);
  T o = g.out("Out", od);
  if (v1) {
    g.attr("transpose_X", attr_bool(tx));
    g.attr("transpose_Y", attr_bool(ty));
    g.attr("alpha", attr_float(alpha));
  } else {
    g.attr(g.pir() ? "transpose_x" : "trans_x", attr_bool(tx));
    g.attr(g.pir() ? "transpose_y" : "trans_y", attr_bool(ty));
  }
  return o;
}

T emit_softmax(Graph& g, const T& x, int64_t axis) {
  g.op("softmax", "pd_op.softmax");
  g.in("X", x.id);
  T y = g.out("Out", x.dims);
  g.attr("axis", attr_int(axis));
  return y;
}

T emit_layer_norm(Graph& g, Rng& r, const T& x, int64_t axis, bool scale, bool bias, double eps) {
  int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t a = axis < 0 ? axis + rank : axis, left = 1, right = 1;
  for (int64_t k = 0; k < rank; ++k) (k < a ? left : right) *= x.dims[static_cast<size_t>(k)];
  ValueId s = scale ? g.cst({right}, r.vec(right, 0.5, 1.5)).id : kNoValue;
  ValueId b = bias ? g.cst({right}, r.vec(right, -0.5, 0.5)).id : kNoValue;
  g.op("layer_norm", "pd_op.layer_norm");
  g.in("X", x.id);
  g.in("Scale", s);
  g.in("Bias", b);
  T y = g.out("Y", x.dims);
  g.out("Mean", {left}, false);
  g.out("Variance", {left}, false);
  g.attr("epsilon", attr_float(eps));
  g.attr("begin_norm_axis", attr_int(axis));
  return y;
}

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

// ---------------------------------------------------------------------------
// Generators. Each fills a Case (program + expectations).

// conv2d / depthwise_conv2d, then batch norm / bias, activations, a residual
// add and activations after it.
void gen_conv(Case& c, Rng& r) {
  c.family = "conv";
  Builder b(c, r);
  Graph& g = c.g;
  ConvSpec s;
  random_channels(r, &s);
  // Residual source: 0 none, 1 the conv input, 2 a graph input, 3 a shortcut
  // conv before the main one, 4 a shortcut conv after the main chain.
  int res = static_cast<int>(r.i(0, 4));
  // Canonical configurations (8/16 channels, 3x3 pad 1 or 1x1, no dilation,
  // plain or depthwise, blocked residual) have jit kernels on every x86 CPU:
  // there the oneDNN convolution must run. A plain-layout residual (graph
  // input) makes the destination plain, which oneDNN's jit kernels lack.
  bool canonical = r.b(0.3);
  if (canonical) {
    s = ConvSpec();
    s.C = r.b() ? 8 : 16;
    s.OC = r.b() ? 8 : 16;
    if (r.b(0.3)) s.G = s.OC = s.C, s.dw_type = r.b();
    res = r.pick(std::vector<int>{0, 3, 4});
  }
  // Now and then a bigger canonical problem (channel blocks, spatial tails,
  // threading).
  bool big = canonical && r.b(0.15);
  if (big) {
    s.C = r.pick(std::vector<int64_t>{24, 32});
    s.OC = s.G > 1 ? s.C : r.pick(std::vector<int64_t>{16, 40});
    if (s.G > 1) s.G = s.C;
  }
  int fast = canonical ? 1 : -1;
  if (res == 1) s.OC = s.C;  // shape-preserving conv
  int64_t N = big ? r.i(1, 2) : r.i(1, 3), H, W, OH, OW;
  for (;;) {
    random_geometry(r, &s);
    if (canonical) {
      s.KH = s.KW = r.b(0.6) ? 3 : 1;
      s.sh = s.sw = s.G > 1 && r.b(0.3) ? 2 : 1;
      s.dh = s.dw = 1;
      s.pads = s.KH == 3 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{0, 0};
      s.algo = "EXPLICIT";
      if (s.KH == 1 && s.G > 1) s.KH = s.KW = 3, s.pads = {1, 1};
    }
    if (res == 1) {
      s.sh = s.sw = 1;
      if (s.algo == "VALID") s.algo = "SAME";
      if (s.algo == "EXPLICIT") s.pads = {s.dh * (s.KH - 1) / 2, s.dw * (s.KW - 1) / 2};
    }
    H = big ? r.i(17, 41) : r.i(1, 15);
    W = big ? r.i(17, 41) : r.i(1, 15);
    conv_out_hw(s, H, W, &OH, &OW);
    if (OH >= 1 && OW >= 1) break;
  }
  if (res == 1 && (s.OC != s.C || OH != H || OW != W)) res = 2;
  // On tiny planes (a 3x3 kernel over a 1x1 or 2x2 input) oneDNN picks its
  // GEMM convolution, which the backend leaves to the reference kernel.
  if (canonical && s.KH == 3 && (H < 3 || W < 3)) fast = -1;
  bool nhwc = !canonical && r.b(0.04), filter_feed = !canonical && !nhwc && r.b(0.04);
  // Before activations: 0 none, 1 bn, 2 bias, 3 bias + bn, 4 bn + bias (bias not fusable).
  int pre = static_cast<int>(r.i(0, 9));
  pre = pre < 2 ? 0 : pre < 5 ? 1 : pre < 8 ? 2 : pre < 9 ? 3 : 4;
  bool legacy_bias = !c.g.pir() && (pre == 0 || pre == 1) && r.b(0.15);
  int nact = static_cast<int>(r.i(0, 2));
  std::vector<Act> acts;
  for (int k = 0; k < nact; ++k) {
    acts.push_back(r.b(0.85) ? random_post_act(r, g.pir()) : random_any_act(r, g.pir()));
    if (k && acts[k].name == "exp" && acts[k - 1].name == "exp") acts[k] = act("tanh");  // inf
  }
  int nact2 = res ? static_cast<int>(r.i(0, 1)) : 0;
  if (nhwc || filter_feed) pre = 0, res = 0, nact2 = 0;
  // Fetch one intermediate value (the ops after it must not fuse into it).
  int npos = (pre == 0 ? 0 : pre <= 2 ? 1 : 2) + nact;
  int fetch_at = npos > 0 && r.b(0.1) ? static_cast<int>(r.i(0, npos - 1)) : -1;
  int pos = 0;

  T x = g.feed(nhwc ? std::vector<int64_t>{N, H, W, s.C} : std::vector<int64_t>{N, s.C, H, W});
  c.d << "x" << dims_str(x.dims) << " ";
  Chain sc;
  if (res == 3) {
    sc = b.conv(x, s, fast);
    if (r.b()) b.batch_norm(sc);
    c.d << " ; ";
  }
  Chain ch = b.conv(x, s, fast, legacy_bias, filter_feed, nhwc);
  if (pre == 1) b.batch_norm(ch, fetch_at == pos++);
  if (pre == 2) b.bias(ch, fetch_at == pos++);
  if (pre == 3) {
    b.bias(ch, fetch_at == pos++);
    b.batch_norm(ch, fetch_at == pos++);
  }
  if (pre == 4) {
    b.batch_norm(ch, fetch_at == pos++);
    b.bias(ch, fetch_at == pos++);
  }
  for (const Act& a : acts) b.unary(ch, a, fetch_at == pos++);
  if (res == 1) b.residual(ch, x, nullptr, "input");
  if (res == 2) b.residual(ch, g.feed(ch.cur.dims), nullptr, "graph input");
  if (res == 3) b.residual(ch, sc.cur, nullptr, "earlier conv");
  if (res == 4) {
    c.d << " ; ";
    // The residual input (the main chain's value) keeps the conv's blocked
    // layout only when everything after the main conv fused into it.
    Chain later = b.conv(x, s, ch.open ? fast : -1);
    if (r.b()) b.batch_norm(later);
    b.residual(ch, later.cur, &later, "later conv");
  }
  for (int k = 0; k < nact2; ++k) b.unary(ch, act("relu"));
  b.finish(ch);
}

// Squeeze-and-excitation: pool -> 1x1 conv + bias -> relu -> 1x1 conv + bias
// -> sigmoid -> multiply with the block input (a graph input or a conv block).
void gen_se(Case& c, Rng& r) {
  c.family = "se";
  Builder b(c, r);
  Graph& g = c.g;
  int64_t N = r.i(1, 2), C = r.pick(std::vector<int64_t>{4, 6, 8, 12, 16}), H = r.i(1, 12),
          W = r.i(1, 12);
  int64_t Cr = r.b(0.7) ? std::max<int64_t>(1, C / 4) : r.i(1, C);
  T x;
  if (r.b(0.6)) {  // conv + bn + activation block (blocked layout)
    ConvSpec s;
    s.C = r.pick(std::vector<int64_t>{3, 4, 8});
    s.OC = C;
    s.KH = s.KW = 3;
    s.pads = {1, 1};
    if (r.b(0.3)) {  // depthwise, as in MobileNetV3
      s.C = C;
      s.G = C;
      s.dw_type = r.b();
    }
    T in = g.feed({N, s.C, H, W});
    c.d << "x" << dims_str(in.dims) << " ";
    Chain ch = b.conv(in, s);
    b.batch_norm(ch);
    b.unary(ch, r.b() ? act("relu") : act("hard_swish", 6, 6, 3));
    x = ch.cur;
    c.d << " ; ";
  } else {
    x = g.feed({N, C, H, W});
    c.d << "x" << dims_str(x.dims) << " ";
  }
  PoolSpec ps;
  ps.is_max = false;
  if (r.b(0.7)) {
    ps.adaptive = true;
    ps.kh = ps.kw = 1;
  } else {
    ps.global = true;
    ps.kh = x.dims[2];
    ps.kw = x.dims[3];
  }
  ps.sh = ps.sw = 1;
  T p = emit_pool(g, x, ps);
  c.want.push_back(Want{"pool2d", "dnnl.pool2d", 1, "pooling"});
  c.d << ps.desc();
  ConvSpec s1;
  s1.C = C;
  s1.OC = Cr;
  Chain c1 = b.conv(p, s1);
  b.bias(c1);
  b.unary(c1, act("relu"));
  ConvSpec s2;
  s2.C = Cr;
  s2.OC = C;
  c.d << " ; ";
  Chain c2 = b.conv(c1.cur, s2);
  b.bias(c2);
  b.unary(c2, r.b(0.85) ? act("sigmoid") : act("hard_sigmoid", 1.0 / 6, 0.5));
  bool swap = r.b(0.3);
  T y = swap ? emit_binary(g, "multiply", c2.cur, x, x.dims)
             : emit_binary(g, "multiply", x, c2.cur, x.dims);
  c.want.push_back(w_binary("multiply", 1));
  c.d << " | multiply" << (swap ? "(scale, x)" : "(x, scale)");
  g.fetch(y);
}

// pool2d on a graph input (plain layout) or after a conv (blocked layout).
void gen_pool(Case& c, Rng& r) {
  c.family = "pool";
  Builder b(c, r);
  Graph& g = c.g;
  PoolSpec s;
  int64_t N = r.i(1, 3), C = r.pick(std::vector<int64_t>{1, 2, 3, 5, 8, 12, 16}), H, W, OH, OW;
  bool after_conv = r.b(0.5);
  s.nhwc = !after_conv && r.b(0.05);
  for (;;) {
    H = r.i(1, 15);
    W = r.i(1, 15);
    s.is_max = r.b();
    double u = r.u(0, 1);
    s.adaptive = u < 0.25;
    s.global = !s.adaptive && u < 0.35;
    s.exclusive = r.b(0.6);
    s.ceil_mode = r.b(0.3);
    s.kh = r.i(1, 5);
    s.kw = r.b(0.8) ? s.kh : r.i(1, 5);
    s.sh = r.i(1, 3);
    s.sw = r.b(0.8) ? s.sh : r.i(1, 3);
    if (s.adaptive) {
      if (r.b(0.5)) {
        s.kh = s.kw = 1;
      } else {
        s.kh = r.i(1, H + 2);
        s.kw = r.i(1, W + 2);
      }
    }
    if (r.b(0.6))
      s.pads = {r.i(0, 2), r.i(0, 2)};
    else
      s.pads = {r.i(0, 2), r.i(0, 2), r.i(0, 2), r.i(0, 2)};
    double v = r.u(0, 1);
    s.algo = v < 0.7 ? "EXPLICIT" : (v < 0.85 ? "SAME" : "VALID");
    s.ksize_feed = g.pir() && !after_conv && r.b(0.1);
    pool_out_hw(s, H, W, &OH, &OW);
    if (OH >= 1 && OW >= 1) break;
  }
  T x;
  if (after_conv) {
    ConvSpec cs;
    cs.C = r.pick(std::vector<int64_t>{1, 3, 4});
    cs.OC = C;
    if (r.b()) {
      cs.KH = cs.KW = 3;
      cs.pads = {1, 1};
    }
    T in = g.feed({N, cs.C, H, W});
    c.d << "x" << dims_str(in.dims) << " ";
    Chain ch = b.conv(in, cs);
    if (r.b()) b.unary(ch, act("relu"));
    x = ch.cur;
    c.d << " ; ";
  } else {
    x = g.feed(s.nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W}, -2, 2);
    c.d << "x" << dims_str(x.dims) << " ";
  }
  T y = emit_pool(g, x, s);
  c.d << s.desc() << " -> " << dims_str(y.dims);
  bool empty_window = false;
  if (s.is_max && !s.nhwc && !s.global && !s.adaptive) {
    // A window entirely past the bottom/right edge (ceil_mode overhang, or
    // padding wider than the kernel) is empty. For max pooling the reference
    // kernel writes 0; the oneDNN path (taken when it can express the
    // padding) gives -FLT_MAX, as Paddle's own CPU kernel does. (Average
    // pooling gives 0 in both.)
    int64_t pt, pb, pl, pr;
    if (s.pads.size() == 2) {
      pt = pb = s.pads[0];
      pl = pr = s.pads[1];
    } else {
      pt = s.pads[0], pb = s.pads[1], pl = s.pads[2], pr = s.pads[3];
    }
    if (s.algo == "SAME") {
      same_pad(H, s.sh, s.kh, &pt, &pb);
      same_pad(W, s.sw, s.kw, &pl, &pr);
    }
    if (s.algo == "VALID") pt = pb = pl = pr = 0;
    int64_t need_b = (OH - 1) * s.sh + s.kh - H - pt, need_r = (OW - 1) * s.sw + s.kw - W - pl;
    bool dnnl_path = need_b >= 0 && need_r >= 0 && pt < s.kh && pl < s.kw;
    bool empty = (OH - 1) * s.sh - pt >= H || (OW - 1) * s.sw - pl >= W;
    // A window wholly in the padding: oneDNN's max pooling would give
    // -FLT_MAX there, the reference kernel 0; the backend uses the reference.
    if (dnnl_path && empty) empty_window = true;
  }
  // oneDNN: global / adaptive 1x1 and windowed pooling; other adaptive sizes
  // and NHWC use the reference kernel. Windowed geometries whose padding
  // oneDNN cannot express fall back too (counted, not required).
  int fast = s.nhwc                                               ? 0
             : s.global || (s.adaptive && s.kh == 1 && s.kw == 1) ? 1
             : s.adaptive || empty_window                         ? 0
                                                                  : -1;
  c.want.push_back(Want{"pool2d", "dnnl.pool2d", fast, "pooling"});
  g.fetch(y);
}

// Random batch dims for a batched product: out batch dims, and the x / y
// batch dims (broadcast: 1s, or fewer leading dims).
void random_batch(Rng& r, std::vector<int64_t>* xb, std::vector<int64_t>* yb) {
  int nb = static_cast<int>(r.i(1, 2));
  std::vector<int64_t> ob;
  for (int k = 0; k < nb; ++k) ob.push_back(r.i(1, 3));
  *xb = ob;
  *yb = ob;
  if (r.b(0.5)) {  // broadcast
    for (int k = 0; k < nb; ++k) {
      if (r.b(0.4))
        (*xb)[k] = 1;
      else if (r.b(0.4))
        (*yb)[k] = 1;
    }
    if (r.b(0.25))
      yb->erase(yb->begin());
    else if (r.b(0.25))
      xb->erase(xb->begin());
  }
}

// matmul_v2 / pd_op.matmul (and the old matmul with alpha), then bias,
// activations, a residual add and an activation after it.
void gen_matmul(Case& c, Rng& r) {
  c.family = "matmul";
  Builder b(c, r);
  Graph& g = c.g;
  bool pir = g.pir();
  int64_t M = r.i(1, 12), K = r.pick(std::vector<int64_t>{1, 3, 8, 16, 17, 32}),
          N = r.pick(std::vector<int64_t>{1, 4, 5, 8, 16, 24});
  if (r.b(0.2)) K = N;  // allows the input as residual
  if (r.b(0.08)) {      // a bigger product (blocking, threading)
    M = r.i(30, 100);
    K = r.pick(std::vector<int64_t>{64, 96, 128});
    N = r.pick(std::vector<int64_t>{48, 96, 128});
  }
  // Pattern: 0 2-D x 2-D, 1 3-D x 2-D (linear layer), 2 batched, 3 1-D operand.
  int pat = static_cast<int>(r.i(0, 9));
  pat = pat < 3 ? 0 : pat < 6 ? 1 : pat < 9 ? 2 : 3;
  std::vector<int64_t> xd, yd;  // logical (untransposed) operand shapes
  if (pat == 0) {
    xd = {M, K};
    yd = {K, N};
  } else if (pat == 1) {
    xd = {r.i(1, 3), M, K};
    yd = {K, N};
  } else if (pat == 2) {
    std::vector<int64_t> xb, yb;
    random_batch(r, &xb, &yb);
    xd = xb;
    xd.push_back(M);
    xd.push_back(K);
    yd = yb;
    yd.push_back(K);
    yd.push_back(N);
  } else {
    int k = static_cast<int>(r.i(0, 3));
    xd = k == 0 || k == 2 ? std::vector<int64_t>{K} : std::vector<int64_t>{r.i(1, 3), M, K};
    yd = k == 1 || k == 2 ? std::vector<int64_t>{K} : std::vector<int64_t>{K, N};
    if (k == 3) xd = {K}, yd = {r.i(1, 2), K, N};
  }
  bool y_const = (pat == 0 || pat == 1 || (pat == 3 && yd.size() <= 2)) && r.b(0.75);
  bool v1 = !pir && pat != 3 && r.b(0.15);
  double alpha = v1 && r.b(0.7) ? r.pick(std::vector<double>{0.5, 0.125, 2.0}) : 1.0;
  // Transposes: an attribute, or a transpose op (folded into the product
  // when it swaps the last two axes); the stored operand is transposed.
  auto swap_last = [](std::vector<int64_t> d) {
    if (d.size() >= 2) std::swap(d[d.size() - 1], d[d.size() - 2]);
    return d;
  };
  bool tx = xd.size() >= 2 && r.b(0.2), ty = yd.size() >= 2 && r.b(0.35);
  // 0 attribute only, 1 transpose op feeding X/Y, 2 non-swapping transpose (not folded)
  int yop = yd.size() >= 2 && r.b(0.3) ? (yd.size() >= 3 && r.b(0.3) ? 2 : 1) : 0;
  int xop = xd.size() >= 2 && !yop && r.b(0.15) ? 1 : 0;
  double ka = std::sqrt(3.0 / static_cast<double>(K));

  auto make_operand = [&](const std::vector<int64_t>& logical, bool trans, int op, bool cst,
                          double lo, double hi, bool* attr_trans, bool* still_const,
                          std::string* note) -> T {
    // op 1: the graph holds the transposed tensor; a transpose op restores it
    // and the attribute carries `trans` (the pass toggles it).
    // op 2: a transpose swapping two leading axes (not foldable) in front.
    std::vector<int64_t> stored = trans ? swap_last(logical) : logical;
    *attr_trans = trans;
    *still_const = cst;
    if (op == 0) {
      if (cst) return g.cst(stored, r.vec(prod(stored), lo, hi));
      return g.feed(stored, lo, hi);
    }
    std::vector<int64_t> perm(stored.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    if (op == 1) {
      std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    } else {
      std::swap(perm[0], perm[1]);
      *still_const = false;
    }
    std::vector<int64_t> src_dims;
    for (int64_t p : perm) src_dims.push_back(stored[static_cast<size_t>(p)]);
    T src = cst ? g.cst(src_dims, r.vec(prod(src_dims), lo, hi)) : g.feed(src_dims, lo, hi);
    T t = emit_transpose(g, src, perm);
    *note =
        " transpose" + dims_str(perm) + "(" + (cst ? "const" : "input") + dims_str(src_dims) + ")";
    if (op == 2) c.want.push_back(w_ref("transpose"));
    return t;
  };
  bool atx, aty, x_c, y_c;
  std::string xn, yn;
  T x = make_operand(xd, tx, xop, false, -1, 1, &atx, &x_c, &xn);
  T y = make_operand(yd, ty, yop, y_const, -ka, ka, &aty, &y_c, &yn);
  std::vector<int64_t> od = matmul_dims(x.dims, y.dims, atx, aty);
  bool one_d = xd.size() < 2 || yd.size() < 2;
  // Residual source: 0 none, 1 the input X, 2 a graph input, 3 a product before, 4 one after.
  int res = static_cast<int>(r.i(0, 4));
  if (res == 1 && (xop || atx || x.dims != od)) res = 2;
  if ((res == 3 || res == 4) && (one_d || xop)) res = 2;
  if (od.empty()) res = 0;
  bool bias = r.b(0.6) && od.size() >= 2;  // (a [N] bias of a 1-D result is a residual)
  int nact = static_cast<int>(r.i(0, 2));
  std::vector<Act> acts;
  for (int k = 0; k < nact; ++k) {
    double u = r.u(0, 1);
    acts.push_back(u < 0.3   ? act("gelu", 0, 0, 0, r.b(0.3))
                   : u < 0.5 ? act("scale", 0.125, 0, 0, true)
                             : random_post_act(r, pir));
  }
  int nact2 = res && r.b(0.4) ? 1 : 0;
  int npos = (bias ? 1 : 0) + nact;
  int fetch_at = npos > 0 && r.b(0.1) ? static_cast<int>(r.i(0, npos - 1)) : -1;
  int pos = 0;

  c.d << (v1    ? "matmul(alpha " + num(alpha) + ")"
          : pir ? "pd_op.matmul"
                : "matmul_v2")
      << " x" << dims_str(x.dims) << xn << (atx ? "^T" : "") << " y" << (y_const ? "const" : "")
      << dims_str(y.dims) << yn << (aty ? "^T" : "") << " -> " << dims_str(od);
  // oneDNN: 2-D and up; alpha with a bias uses the reference kernel.
  auto mm_fast = [&](bool with_bias) { return one_d || (alpha != 1.0 && with_bias) ? 0 : 1; };
  Chain other;
  T other_x;
  auto other_product = [&]() {
    // Another product of the same shape (same X, fresh constant weights).
    T w = g.cst(y.dims, r.vec(prod(y.dims), -ka, ka));
    Chain o;
    o.cur = emit_matmul(g, x, w, atx, aty);
    o.open = true;
    c.want.push_back(w_fused_mm(xd.size() < 2 ? 0 : 1));
    o.want_index = static_cast<int>(c.want.size()) - 1;
    c.d << " ; matmul x w" << dims_str(w.dims);
    return o;
  };
  if (res == 3) other = other_product();
  Chain ch;
  ch.cur = emit_matmul(g, x, y, atx, aty, v1, alpha);
  ch.open = true;
  if (alpha != 1.0) b.add_post(ch, EltAlg{"linear", static_cast<float>(alpha), 0});
  ch.bias_ok = y_c && yd.size() >= 2 && od.size() >= 2;
  size_t mm_want = c.want.size();
  c.want.push_back(w_fused_mm(mm_fast(false)));
  ch.want_index = static_cast<int>(mm_want);
  if (bias) {
    bool fuses = ch.open && ch.bias_ok;
    b.bias(ch, fetch_at == pos++);
    if (fuses) c.want[mm_want].fast = mm_fast(true);
  }
  for (const Act& a : acts) b.unary(ch, a, fetch_at == pos++);
  if (r.b(0.15)) b.quick_gelu(ch, r.b(0.8));
  if (res == 1) b.residual(ch, x, nullptr, "input");
  if (res == 2) b.residual(ch, g.feed(ch.cur.dims), nullptr, "graph input");
  if (res == 3) b.residual(ch, other.cur, nullptr, "earlier product");
  if (res == 4) {
    Chain later = other_product();
    b.residual(ch, later.cur, &later, "later product");
  }
  for (int k = 0; k < nact2; ++k) b.unary(ch, act("relu"));
  b.finish(ch);
}

// Attention: softmax(Q K^T * scale [+ mask]) V [+ residual], and a ViT MLP
// block: layer_norm -> linear + bias -> gelu -> linear + bias -> + input.
void gen_attention(Case& c, Rng& r) {
  c.family = "attention";
  Builder b(c, r);
  Graph& g = c.g;
  bool pir = g.pir();
  if (r.b(0.3)) {
    int64_t B = r.i(1, 2), S = r.i(1, 9), E = r.pick(std::vector<int64_t>{4, 8, 12, 16}),
            F = E * r.i(1, 4);
    T x = g.feed({B, S, E});
    c.d << "vit-mlp x" << dims_str(x.dims) << " | layer_norm";
    bool ln_scale = r.b(0.9), ln_bias = r.b(0.9);
    T h = emit_layer_norm(g, r, x, r.b() ? 2 : -1, ln_scale, ln_bias, 1e-6);
    c.want.push_back(Want{"layer_norm", "dnnl.layer_norm", 1, "layer_normalization"});
    double k1 = std::sqrt(3.0 / static_cast<double>(E)),
           k2 = std::sqrt(3.0 / static_cast<double>(F));
    T w1 = g.cst({E, F}, r.vec(E * F, -k1, k1));
    Chain m1;
    m1.cur = emit_matmul(g, h, w1, false, false);
    m1.open = m1.bias_ok = true;
    c.want.push_back(w_fused_mm(1));
    c.d << " | matmul w1" << dims_str(w1.dims);
    b.bias(m1);
    b.unary(m1, act("gelu", 0, 0, 0, r.b(0.2)));
    T w2 = g.cst({F, E}, r.vec(E * F, -k2, k2));
    Chain m2;
    m2.cur = emit_matmul(g, m1.cur, w2, false, false);
    m2.open = m2.bias_ok = true;
    c.want.push_back(w_fused_mm(1));
    c.d << " | matmul w2" << dims_str(w2.dims);
    b.bias(m2);
    if (r.b(0.3)) b.unary(m2, act("dropout", 0.1));
    b.residual(m2, x, nullptr, "input");
    b.finish(m2);
    return;
  }
  int64_t B = r.i(1, 2), Hh = r.i(1, 3), S = r.i(1, 9),
          D = r.pick(std::vector<int64_t>{1, 4, 5, 8, 16}), Dv = r.b(0.7) ? D : r.i(1, 9);
  int64_t St = r.b(0.8) ? S : r.i(1, 9);  // key/value length
  T q = g.feed({B, Hh, S, D});
  c.d << "q" << dims_str(q.dims);
  // K: [B,H,St,D] with transpose_y, or [B,H,St,D] through a transpose op.
  int kmode = static_cast<int>(r.i(0, 2));  // 0 attr, 1 transpose op, 2 legacy matmul alpha
  if (kmode == 2 && pir) kmode = 0;
  T k = g.feed({B, Hh, St, D});
  Chain s;
  double scale = 1.0 / std::sqrt(static_cast<double>(D));
  if (kmode == 1) {
    T kt = emit_transpose(g, k, {0, 1, 3, 2});
    s.cur = emit_matmul(g, q, kt, false, false);
    c.d << " k" << dims_str(k.dims) << " transpose[0,1,3,2] | matmul";
  } else if (kmode == 2) {
    s.cur = emit_matmul(g, q, k, false, true, true, scale);
    b.add_post(s, EltAlg{"linear", static_cast<float>(scale), 0});
    c.d << " k" << dims_str(k.dims) << " | matmul(transpose_Y, alpha " << num(scale) << ")";
  } else {
    s.cur = emit_matmul(g, q, k, false, true);
    c.d << " k" << dims_str(k.dims) << " | matmul(transpose_y)";
  }
  s.open = true;
  c.want.push_back(w_fused_mm(1));
  if (kmode != 2) b.unary(s, r.b(0.7) ? act("scale", 0.125, 0, 0, true) : act("scale", scale));
  if (r.b(0.3) && (Hh > 1 || S > 1)) {  // (a mask of the scores' shape is a residual)
    T mask = g.feed({B, 1, 1, St}, -2, 0);
    s.cur = emit_binary(g, "add", s.cur, mask, s.cur.dims);
    c.want.push_back(w_binary("add", 1));
    s.open = false;
    c.d << " | +mask" << dims_str(mask.dims);
  }
  int64_t axis = r.b(0.8) ? -1 : 3;
  T p = emit_softmax(g, s.cur, axis);
  c.want.push_back(Want{"softmax", "dnnl.softmax", 1, "softmax"});
  c.d << " | softmax(" << axis << ")";
  T v = g.feed({B, Hh, St, Dv});
  Chain o;
  o.cur = emit_matmul(g, p, v, false, false);
  o.open = true;
  c.want.push_back(w_fused_mm(1));
  c.d << " | matmul v" << dims_str(v.dims);
  if (r.b(0.3)) b.residual(o, g.feed(o.cur.dims), nullptr, "graph input");
  g.fetch(o.cur);
}

std::vector<int64_t> random_dims(Rng& r, int rank, int64_t hi = 7) {
  std::vector<int64_t> d;
  for (int k = 0; k < rank; ++k) d.push_back(r.i(1, hi));
  return d;
}

// Unary ops on a graph input (plain layout): 1-2 in a row.
void gen_eltwise(Case& c, Rng& r) {
  c.family = "eltwise";
  Builder b(c, r);
  Graph& g = c.g;
  std::vector<int64_t> dims = random_dims(r, static_cast<int>(r.i(1, 4)));
  if (r.b(0.15)) dims = {r.i(1, 2), r.i(17, 40), r.i(17, 40)};  // vector tails
  int n = r.b(0.7) ? 1 : 2;
  std::vector<Act> acts;
  bool positive = r.b(0.3);
  for (int k = 0; k < n; ++k) acts.push_back(random_any_act(r, g.pir(), positive));
  T x = positive ? g.feed(dims, 0.01, 3) : g.feed(dims, -3, 3);
  c.d << "x" << dims_str(dims);
  Chain ch;
  ch.cur = x;
  if (r.b(0.1)) {
    b.quick_gelu(ch, r.b(0.7));
    g.fetch(ch.cur);
    return;
  }
  for (size_t k = 0; k < acts.size(); ++k) b.unary(ch, acts[k], k + 1 == acts.size());
}

// Binary ops with NumPy broadcasting and legacy axis alignment.
void gen_binary(Case& c, Rng& r) {
  c.family = "binary";
  Graph& g = c.g;
  bool pir = g.pir();
  static const std::vector<std::string> ops = {"add",    "subtract", "multiply",
                                               "divide", "maximum",  "minimum"};
  std::string op = r.pick(ops);
  bool commutative = op == "add" || op == "multiply" || op == "maximum" || op == "minimum";
  int rank = static_cast<int>(r.i(1, 4));
  if (r.b(0.1)) rank = 5;
  std::vector<int64_t> big = random_dims(r, rank, 6), small;
  int64_t axis = -1;
  // Modes: 0 same shape, 1 NumPy (trailing dims, some 1), 2 legacy axis,
  // 3 both broadcast, 4 scalar [1] / 0-D.
  int mode = static_cast<int>(r.i(0, 9));
  mode = mode < 2 ? 0 : mode < 5 ? 1 : mode < 7 ? 2 : mode < 8 ? 3 : 4;
  if (mode == 2 && pir) mode = 1;
  std::vector<int64_t> a_al, b_al;  // both aligned to the output rank
  if (mode == 0) {
    small = big;
  } else if (mode == 1) {
    int k = static_cast<int>(r.i(1, rank));
    small.assign(big.end() - k, big.end());
    for (int64_t& v : small)
      if (r.b(0.3)) v = 1;
  } else if (mode == 2) {
    int k = static_cast<int>(r.i(1, rank));
    axis = r.i(0, rank - k);
    small.assign(big.begin() + axis, big.begin() + axis + k);
    for (int64_t& v : small)
      if (r.b(0.15)) v = 1;
    // Trailing 1s past the end are trimmed by Paddle's rule.
    if (axis + k == rank && k + 1 < rank && r.b(0.2)) small.push_back(1);
  } else if (mode == 3) {
    small = big;
    for (size_t i = 0; i < big.size(); ++i) {
      if (r.b(0.5))
        big[i] = 1;
      else
        small[i] = 1;
    }
  } else {
    small = r.b() ? std::vector<int64_t>{1} : std::vector<int64_t>{};
  }
  bool x_small = mode != 0 && r.b(0.35);  // X is the broadcast operand
  std::vector<int64_t> xd = x_small ? small : big, yd = x_small ? big : small;
  // Aligned shapes and output (the executor's rules, restated).
  auto align = [&](const std::vector<int64_t>& s, size_t rr) {
    std::vector<int64_t> out(rr, 1), v = s;
    if (axis < 0 || s.size() == rr) {
      std::copy(v.begin(), v.end(), out.begin() + static_cast<int64_t>(rr - v.size()));
      return out;
    }
    while (!v.empty() && axis + static_cast<int64_t>(v.size()) > static_cast<int64_t>(rr) &&
           v.back() == 1)
      v.pop_back();
    std::copy(v.begin(), v.end(), out.begin() + axis);
    return out;
  };
  size_t rr = std::max(xd.size(), yd.size());
  a_al = align(xd, rr);
  b_al = align(yd, rr);
  std::vector<int64_t> od(rr);
  bool a_fits = true, b_fits = true;
  for (size_t i = 0; i < rr; ++i) {
    od[i] = std::max(a_al[i], b_al[i]);
    if (b_al[i] != a_al[i] && b_al[i] != 1) b_fits = false;
    if (a_al[i] != b_al[i] && a_al[i] != 1) a_fits = false;
  }
  bool y_const = r.b(0.3);
  bool div = op == "divide";
  T x = g.feed(xd, -2, 2);
  T y;
  if (y_const) {
    std::vector<float> v = div ? r.vec(prod(yd), 0.5, 2) : r.vec(prod(yd), -2, 2);
    if (div)
      for (float& e : v) e = r.b() ? e : -e;
    y = g.cst(yd, v);
  } else {
    y = div ? g.feed(yd, 0.5, 2, true) : g.feed(yd, -2, 2);
  }
  T o = emit_binary(g, op, x, y, od, axis);
  // oneDNN broadcasts the second operand only (commutative ops swap); 0-D
  // operands use the reference kernel.
  int fast = !xd.empty() && !yd.empty() && (b_fits || (a_fits && commutative)) ? 1 : 0;
  c.want.push_back(w_binary(op, fast));
  c.d << (pir ? "pd_op." : "elementwise ") << op << " x" << dims_str(xd) << " y"
      << (y_const ? "const" : "") << dims_str(yd) << (pir ? "" : " axis=" + std::to_string(axis))
      << " -> " << dims_str(od) << (fast ? "" : " (reference)");
  g.fetch(o);
}

// softmax on a graph input (plain), or after a conv (blocked: reference).
void gen_softmax(Case& c, Rng& r) {
  c.family = "softmax";
  Builder b(c, r);
  Graph& g = c.g;
  T x;
  int fast = 1;
  if (r.b(0.15)) {
    ConvSpec s;
    s.C = r.i(1, 4);
    s.OC = r.i(1, 16);
    T in = g.feed({r.i(1, 2), s.C, r.i(1, 7), r.i(1, 7)});
    c.d << "x" << dims_str(in.dims) << " ";
    Chain ch = b.conv(in, s);
    x = ch.cur;
    c.d << " | ";
    fast = -1;  // blocked input: reference (plain if oneDNN chose plain)
  } else {
    std::vector<int64_t> dims = random_dims(r, static_cast<int>(r.i(1, 4)), 8);
    if (r.b(0.2)) dims.back() = r.i(30, 200);
    x = g.feed(dims, -4, 4);
    c.d << "x" << dims_str(dims) << " ";
  }
  int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = r.b(0.5) ? -1 : r.i(-rank, rank - 1);
  T y = emit_softmax(g, x, axis);
  c.want.push_back(Want{"softmax", "dnnl.softmax", fast, "softmax"});
  c.d << "softmax(axis " << axis << ")";
  g.fetch(y);
}

void gen_layer_norm(Case& c, Rng& r) {
  c.family = "layer_norm";
  Graph& g = c.g;
  int rank = static_cast<int>(r.i(1, 4));
  std::vector<int64_t> dims = random_dims(r, rank, 9);
  if (r.b(0.15)) dims.back() = r.i(60, 300);
  // begin_norm_axis: rank-1 usually, smaller sometimes; 0 (and rank 1) use
  // the reference kernel.
  int64_t axis = rank == 1 ? 0 : r.b(0.6) ? rank - 1 : r.i(0, rank - 1);
  bool neg = r.b(0.2);
  bool scale = r.b(0.8), bias = r.b(0.8);
  double eps = r.pick(std::vector<double>{1e-5, 1e-6, 1e-3});
  int64_t right = 1;
  for (int k = static_cast<int>(axis); k < rank; ++k) right *= dims[static_cast<size_t>(k)];
  // A large mean only over rows long enough to be well conditioned (short
  // rows of nearly equal values amplify float rounding of the mean).
  double off = right >= 8 && r.b(0.2) ? 5.0 : 0.0;
  T x = g.feed(dims, -2 + off, 2 + off);
  T y = emit_layer_norm(g, r, x, neg ? axis - rank : axis, scale, bias, eps);
  c.want.push_back(Want{"layer_norm", "dnnl.layer_norm", axis > 0 ? 1 : 0, "layer_normalization"});
  c.d << "x" << dims_str(dims) << (off ? "+5" : "") << " layer_norm(begin_norm_axis "
      << (neg ? axis - rank : axis) << (scale ? ", scale" : "") << (bias ? ", bias" : "")
      << ", eps " << eps << ")";
  g.fetch(y);
}

// ---------------------------------------------------------------------------
// oneDNN's verbose log: counts primitive executions during one run. The log
// goes to stdout; it is redirected to a temporary file meanwhile.

class DnnlTrace {
 public:
  ~DnnlTrace() { stop(); }
  void start() {
    std::cout.flush();
    std::fflush(stdout);
    tmp_ = std::tmpfile();
    if (!tmp_) throw std::runtime_error("tmpfile failed");
    saved_ = dup(1);
    dup2(fileno(tmp_), 1);
    dnnl::set_verbose(1);
  }
  // Primitive kind -> executions; `impls` gets kind -> implementation counts.
  std::map<std::string, int> stop(
      std::map<std::string, std::map<std::string, int>>* impls = nullptr) {
    std::map<std::string, int> counts;
    if (!tmp_) return counts;
    dnnl::set_verbose(0);
    std::fflush(stdout);
    dup2(saved_, 1);
    close(saved_);
    std::rewind(tmp_);
    char* line = nullptr;
    size_t cap = 0;
    while (getline(&line, &cap, tmp_) > 0) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      std::string part;
      while (f.size() < 5 && std::getline(ss, part, ',')) f.push_back(part);
      if (f.size() < 5 || f[1] != "exec") continue;
      std::string kind = f[3];  // pooling_v2, softmax_v2: same kinds
      if (kind.size() > 3 && kind.compare(kind.size() - 3, 3, "_v2") == 0)
        kind.resize(kind.size() - 3);
      ++counts[kind];
      if (impls) ++(*impls)[kind][f[4]];
    }
    std::free(line);
    std::fclose(tmp_);
    tmp_ = nullptr;
    return counts;
  }

 private:
  FILE* tmp_ = nullptr;
  int saved_ = -1;
};

// ---------------------------------------------------------------------------
// Running and checking.

struct FamilyStats {
  int cases = 0, failures = 0, known = 0;
  double err_passes = 0, err_hpi = 0;
  int maybe_nodes = 0, maybe_fast = 0;  // nodes allowed either path, and how many ran oneDNN
};
std::map<std::string, FamilyStats> g_stats;
std::map<std::string, std::map<std::string, int>> g_impls;  // primitive -> impl -> executions
std::map<std::string, std::map<std::string, int>> g_paths;  // kernel -> path -> configurations
std::map<std::string, int> g_ref_reasons;  // "kernel: reason" -> reference configurations
// Convolution configurations on the reference kernel, by what oneDNN offered.
std::map<std::string, int> g_conv_reference, g_conv_reference_by_design;
bool g_verbose = false;
int g_failures = 0;
bool g_trace_ok = true;  // oneDNN's verbose log works (fast-path checks possible)

// Runs one eltwise primitive under a trace: false if oneDNN logs nothing
// (a build without verbose support).
bool probe_trace() {
  using namespace dnnl;
  engine e(engine::kind::cpu, 0);
  stream st(e);
  memory::desc md({1, 8}, memory::data_type::f32, memory::format_tag::ab);
  eltwise_forward prim(eltwise_forward::primitive_desc(
      eltwise_forward::desc(prop_kind::forward_inference, algorithm::eltwise_relu, md, 0.f), e));
  memory m(md, e);
  DnnlTrace trace;
  trace.start();
  prim.execute(st, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
  st.wait();
  std::map<std::string, int> n = trace.stop();
  return n.count("eltwise") && n.at("eltwise") == 1;
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "SSE41";
    case dnnl::cpu_isa::avx: return "AVX";
    case dnnl::cpu_isa::avx2: return "AVX2";
    case dnnl::cpu_isa::avx2_vnni: return "AVX2_VNNI";
    case dnnl::cpu_isa::avx512_mic: return "AVX512_MIC";
    case dnnl::cpu_isa::avx512_mic_4ops: return "AVX512_MIC_4OPS";
    case dnnl::cpu_isa::avx512_core: return "AVX512_CORE";
    case dnnl::cpu_isa::avx512_core_vnni: return "AVX512_CORE_VNNI";
    case dnnl::cpu_isa::avx512_core_bf16: return "AVX512_CORE_BF16";
    case dnnl::cpu_isa::avx512_core_amx: return "AVX512_CORE_AMX";
    default: return "ALL/unknown";
  }
}

const std::vector<std::string>& all_passes() {
  static const std::vector<std::string> names = {
      "remove_identity", "conv_to_fused", "matmul_to_fused", "fold_transpose", "fuse_bias",
      "fold_batch_norm", "fuse_swish",    "fuse_activation", "fuse_residual"};
  return names;
}

// Max relative error of `got` vs `want`; sets `why` on a mismatch.
double compare(const std::vector<NamedTensor>& got, const std::vector<NamedTensor>& want,
               std::string* why) {
  double worst = 0;
  if (got.size() != want.size()) {
    *why = std::to_string(got.size()) + " outputs, want " + std::to_string(want.size());
    return INFINITY;
  }
  for (size_t o = 0; o < got.size(); ++o) {
    const NamedTensor& a = got[o];
    const NamedTensor& b = want[o];
    if (a.dtype != b.dtype || a.dims != b.dims || a.data.size() != b.data.size()) {
      *why = "output " + std::to_string(o) + ": dims " + dims_str(a.dims) + " want " +
             dims_str(b.dims);
      return INFINITY;
    }
    if (a.dtype != DType::Float32) continue;
    const float* p = reinterpret_cast<const float*>(a.data.data());
    const float* q = reinterpret_cast<const float*>(b.data.data());
    size_t n = a.data.size() / 4, at = 0, bad = 0;
    double err = 0;
    std::string first;  // coordinates of the first bad elements
    for (size_t k = 0; k < n; ++k) {
      double want_k = q[k];
      double e = std::fabs(static_cast<double>(p[k]) - want_k) / std::max(1.0, std::fabs(want_k));
      if (p[k] == q[k] || (std::isnan(p[k]) && std::isnan(q[k]))) e = 0;  // same inf, NaN
      if (std::isnan(e)) e = INFINITY;
      if (e > err) {
        err = e;
        at = k;
      }
      if (e > 1e-4 && ++bad <= 4) {
        std::vector<int64_t> idx(a.dims.size());
        size_t rem = k;
        for (size_t d = a.dims.size(); d-- > 0;) {
          idx[d] = static_cast<int64_t>(rem % static_cast<size_t>(a.dims[d]));
          rem /= static_cast<size_t>(a.dims[d]);
        }
        std::ostringstream s;
        s << " " << dims_str(idx) << " got " << p[k] << " want " << q[k] << ";";
        first += s.str();
      }
    }
    if (err > 1e-4 && why->empty()) {
      std::ostringstream s;
      s << "output " << o << " " << dims_str(a.dims) << ": max error " << err << " at " << at
        << ": got " << p[at] << " want " << q[at] << "; " << bad << " of " << n
        << " elements off; first:" << first;
      *why = s.str();
    }
    worst = std::max(worst, err);
  }
  return worst;
}

std::string join_sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return "{" + s + "}";
}

std::vector<std::string> node_names(const Executor& e) {
  std::vector<std::string> v;
  for (const Node& n : e.nodes()) v.push_back(n.def->name);
  return v;
}

// Runs one case; returns the failure reason ("" = passed).
std::string run_case(Case& c, Rng& r, FamilyStats& st, bool hpi_numbers) {
  std::shared_ptr<const LoadedModel> m = c.g.model();
  std::vector<NamedTensor> feeds[2] = {c.g.draw_feeds(r), c.g.draw_feeds(r)};
  int threads[2] = {c.threads, 3 - c.threads};
  std::vector<NamedTensor> want[2];
  Executor ref(m);
  for (int k = 0; k < 2; ++k) want[k] = ref.run(feeds[k], threads[k]);
  // Self-check of the generator's shape arithmetic.
  const auto& fd = c.g.fetched_dims();
  for (size_t o = 0; o < want[0].size() && o < fd.size(); ++o)
    if (want[0][o].dims != fd[o])
      return "generator: output " + std::to_string(o) + " is " + dims_str(want[0][o].dims) +
             ", expected " + dims_str(fd[o]);

  std::vector<std::string> wp, wh;
  for (const Want& w : c.want) {
    wp.push_back(w.passes);
    wh.push_back(w.hpi);
  }
  // Passes on the reference kernels.
  ExecutorOptions po;
  po.passes = all_passes();
  Executor pe(m, po);
  std::vector<std::string> got = node_names(pe);
  if (join_sorted(got) != join_sorted(wp))
    return "passes: nodes " + join_sorted(got) + ", want " + join_sorted(wp);
  for (int k = 0; k < 2; ++k) {
    std::string why;
    st.err_passes = std::max(st.err_passes, compare(pe.run(feeds[k], threads[k]), want[k], &why));
    if (!why.empty()) return "passes: " + why;
  }
  // High-performance mode.
  ExecutorOptions ho;
  ho.hpi = true;
  Executor he(m, ho);
  got = node_names(he);
  if (join_sorted(got) != join_sorted(wh))
    return "hpi: nodes " + join_sorted(got) + ", want " + join_sorted(wh);
  int dnnl_named = 0;
  for (const std::string& n : got) dnnl_named += n.rfind("dnnl.", 0) == 0;
  if (he.dnnl_nodes() != dnnl_named)
    return "hpi: dnnl_nodes() " + std::to_string(he.dnnl_nodes()) + " but " +
           std::to_string(dnnl_named) + " dnnl.* nodes";
  std::map<std::string, int> execs;
  for (int k = 0; k < 2; ++k) {
    std::vector<NamedTensor> out;
    if (k == 0) {
      DnnlTrace trace;
      trace.start();
      out = he.run(feeds[k], threads[k]);
      execs = trace.stop(&g_impls);
    } else {
      out = he.run(feeds[k], threads[k]);
    }
    if (!hpi_numbers) continue;
    std::string why;
    st.err_hpi = std::max(st.err_hpi, compare(out, want[k], &why));
    if (!why.empty()) return "hpi: " + why;
  }
  // Paths off the fused primitives (recorded at the first run): a split
  // convolution runs its remaining post-ops as extra binary / eltwise
  // primitives, one execution each.
  // A node may run its reference kernel only where oneDNN 2.6 has no usable
  // implementation of the bare op (for a convolution: its reference one, or
  // GEMM for a depthwise convolution with a channel multiplier or dilation,
  // where our direct loop is faster). Never because a fused primitive was
  // refused.
  int split_stages = 0;
  std::vector<std::vector<PathNote>> notes = he.path_notes();
  for (size_t i = 0; i < notes.size(); ++i) {
    const std::string& kernel = he.nodes()[i].def->name;
    for (const PathNote& pn : notes[i]) {
      ++g_paths[kernel][pn.path];
      if (pn.path == "reference") ++g_ref_reasons[kernel + ": " + pn.reason.substr(0, 110)];
      if (pn.path == "split") split_stages += pn.stages;
      if (pn.path != "reference") continue;
      if (kernel == "dnnl.fused_conv2d")
        ++(pn.fused_refused ? g_conv_reference : g_conv_reference_by_design)[pn.impl];
      if (pn.fused_refused)
        return "hpi: " + kernel + " on the reference kernel after a refused fused primitive (" +
               he.nodes()[i].where() + ", oneDNN offered '" + pn.impl + "'): " + pn.reason;
    }
  }
  if (!g_trace_ok) return "";
  // Fast path: primitive executions per kind within [required, required + optional].
  std::map<std::string, std::pair<int, int>> range;
  for (const Want& w : c.want) {
    if (w.prim.empty()) continue;
    auto& rg = range[w.prim];
    if (w.fast == 1) ++rg.first;
    if (w.fast != 0) ++rg.second;
    if (w.fast == -1) ++st.maybe_nodes;
  }
  if (split_stages > 0) {
    // The stages' kinds (binary or eltwise) are pooled with the nodes' own.
    int lo = 0, hi = 0, n = 0;
    for (const char* kind : {"binary", "eltwise"}) {
      if (range.count(kind)) lo += range[kind].first, hi += range[kind].second;
      if (execs.count(kind)) n += execs[kind];
      range.erase(kind);
      execs.erase(kind);
    }
    if (n < lo + split_stages || n > hi + split_stages)
      return "hpi: " + std::to_string(n) + " oneDNN binary/eltwise execution(s), want " +
             std::to_string(lo + split_stages) + ".." + std::to_string(hi + split_stages) +
             " (with " + std::to_string(split_stages) + " split-convolution stage(s))";
    st.maybe_fast += n - lo - split_stages;
  }
  for (const auto& kv : range) {
    int n = execs.count(kv.first) ? execs.at(kv.first) : 0;
    if (n < kv.second.first || n > kv.second.second)
      return "hpi: " + std::to_string(n) + " oneDNN " + kv.first + " execution(s), want " +
             (kv.second.first == kv.second.second
                  ? std::to_string(kv.second.first)
                  : std::to_string(kv.second.first) + ".." + std::to_string(kv.second.second)) +
             " (a node fell back to the reference kernel?)";
    st.maybe_fast += n - kv.second.first;
  }
  for (const auto& kv : execs) {
    if (kv.first == "reorder") continue;
    if (!range.count(kv.first))
      return "hpi: unexpected oneDNN " + kv.first + " execution(s): " + std::to_string(kv.second);
  }
  return "";
}

using GenFn = void (*)(Case&, Rng&);

struct Family {
  const char* name;
  GenFn gen;
  double weight;  // cases per --cases unit
};

const std::vector<Family>& families() {
  static const std::vector<Family> f = {{"conv", gen_conv, 2.0},
                                        {"se", gen_se, 0.5},
                                        {"pool", gen_pool, 1.0},
                                        {"matmul", gen_matmul, 1.5},
                                        {"attention", gen_attention, 0.5},
                                        {"eltwise", gen_eltwise, 1.0},
                                        {"binary", gen_binary, 1.0},
                                        {"softmax", gen_softmax, 0.5},
                                        {"layer_norm", gen_layer_norm, 0.5}};
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 20240611;
  int cases = 150;
  int only = -1;
  bool include_known = false;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a == "--seed" && k + 1 < argc)
      seed = std::stoull(argv[++k]);
    else if (a == "--cases" && k + 1 < argc)
      cases = std::stoi(argv[++k]);
    else if (a == "--only" && k + 1 < argc)
      only = std::stoi(argv[++k]);
    else if (a == "--verbose")
      g_verbose = true;
    else if (a == "--include-known-failures")
      include_known = true;
    else {
      std::cerr << "usage: check_dnnl_kernels [--seed N] [--cases N] [--only IDX] [--verbose] "
                   "[--include-known-failures]\n";
      return 2;
    }
  }
  // Every pass of the high-performance mode is named in all_passes().
  for (const PassInfo& p : hpi_passes()) {
    if (std::find(all_passes().begin(), all_passes().end(), p.name) == all_passes().end()) {
      std::cout << "FAIL pass '" << p.name << "' is not in this tool's pass list\n";
      return 1;
    }
  }
  auto started = std::chrono::steady_clock::now();
  g_trace_ok = probe_trace();
  if (!g_trace_ok)
    std::cout << "WARNING: oneDNN writes no verbose log (built without it?): the fast-path "
                 "checks (oneDNN primitive executions) are skipped\n";
  // The case list: each family's share of --cases, grouped by family.
  std::vector<const Family*> plan;
  for (const Family& f : families()) {
    int n = std::max(1, static_cast<int>(std::lround(f.weight * cases)));
    for (int k = 0; k < n; ++k) plan.push_back(&f);
  }
  for (int idx = 0; idx < static_cast<int>(plan.size()); ++idx) {
    if (only >= 0 && idx != only) continue;
    const Family& f = *plan[static_cast<size_t>(idx)];
    // Each case has its own generator, so --only reproduces it alone.
    Rng r(seed * 1000003ULL + static_cast<uint64_t>(idx) * 7919ULL + 17);
    bool pir = r.b(0.45), dyn = r.b(0.3);
    Case c(pir, dyn);
    c.threads = r.b() ? 1 : 2;
    FamilyStats& st = g_stats[f.name];
    std::string why;
    try {
      f.gen(c, r);
    } catch (const std::exception& e) {
      why = std::string("generator: ") + e.what();
    }
    std::string label = "#" + std::to_string(idx) + (pir ? " pir" : " legacy") +
                        (dyn ? " dyn-batch" : "") + " t" + std::to_string(c.threads) + " " +
                        c.d.str();
    ++st.cases;
    bool hpi_numbers = c.known_failure.empty() || include_known;
    if (!hpi_numbers) {
      ++st.known;
      if (g_verbose)
        std::cout << "known " << f.name << " " << label << ": " << c.known_failure
                  << " (hpi numbers not compared)\n";
    }
    if (g_verbose) std::cout << "run  " << f.name << " " << label << std::endl;
    if (why.empty()) {
      try {
        why = run_case(c, r, st, hpi_numbers);
      } catch (const ModelError& e) {
        why = std::string("exception: ") + e.what() + " [" + e.code() + " " + e.where() + ": " +
              e.detail() + "]";
      } catch (const std::exception& e) {
        why = std::string("exception: ") + e.what();
      }
    }
    if (!why.empty() && !c.known_failure.empty()) why += "\n     known failure: " + c.known_failure;
    if (!why.empty()) {
      ++st.failures;
      ++g_failures;
      std::cout << "FAIL " << f.name << " " << label << "\n     " << why
                << "\n     reproduce: check_dnnl_kernels --seed " << seed << " --cases " << cases
                << " --only " << idx << "\n";
    } else if (g_verbose) {
      std::cout << "ok   " << f.name << " " << label << "\n";
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::printf("%-12s %6s %8s %6s %12s %12s %s\n", "family", "cases", "failures", "known",
              "err passes", "err hpi", "either-path nodes on oneDNN");
  for (const auto& kv : g_stats) {
    const FamilyStats& s = kv.second;
    std::printf("%-12s %6d %8d %6d %12.3g %12.3g", kv.first.c_str(), s.cases, s.failures, s.known,
                s.err_passes, s.err_hpi);
    if (s.maybe_nodes) std::printf(" %d/%d", s.maybe_fast, s.maybe_nodes);
    std::printf("\n");
  }
  std::printf("oneDNN executions in the checked hpi runs:\n");
  for (const auto& kv : g_impls) {
    int total = 0;
    std::string list;
    for (const auto& im : kv.second) {
      total += im.second;
      list += (list.empty() ? "" : ", ") + im.first + " " + std::to_string(im.second);
    }
    std::printf("  %-20s %6d (%s)\n", kv.first.c_str(), total, list.c_str());
  }
  // Nodes off their fused primitive, and every convolution on the reference
  // kernel (issue 13: none may be there because a fused primitive was
  // refused; under every ISA cap the count printed here must be 0).
  std::printf("oneDNN nodes off their fused primitive (configurations):\n");
  for (const auto& kv : g_paths) {
    std::string list;
    for (const auto& p : kv.second)
      list += (list.empty() ? "" : ", ") + p.first + " " + std::to_string(p.second);
    std::printf("  %-20s %s\n", kv.first.c_str(), list.c_str());
  }
  std::printf("why nodes ran their reference kernel (configurations):\n");
  for (const auto& kv : g_ref_reasons) std::printf("  %5d  %s\n", kv.second, kv.first.c_str());
  int conv_ref = 0, conv_dw = 0;
  for (const auto& kv : g_conv_reference) conv_ref += kv.second;
  for (const auto& kv : g_conv_reference_by_design) conv_dw += kv.second;
  std::printf("convolutions on the reference kernel because a fused primitive was refused: %d\n",
              conv_ref);
  std::printf(
      "convolutions on the reference kernel because oneDNN has no usable implementation "
      "even without post-ops: %d",
      conv_dw);
  for (const auto& kv : g_conv_reference_by_design)
    std::printf("%s%s %d", &kv == &*g_conv_reference_by_design.begin() ? " (" : ", ",
                kv.first.c_str(), kv.second);
  std::printf("%s\n", conv_dw ? ")" : "");
  std::printf("oneDNN ISA: %s\n", isa_name(dnnl::get_effective_cpu_isa()));
  std::printf("seed %llu, %.1f s: %s\n", static_cast<unsigned long long>(seed), secs,
              g_failures ? "FAILED" : "all passed");
  return g_failures ? 1 : 0;
}
