#include "passes/fuse.h"

#include <cmath>
#include <stdexcept>
#include <unordered_set>

#include "graph/fused_ops.h"

namespace pif {
namespace {

// Who produces and how often each value is read (node inputs + graph outputs).
struct UseInfo {
  std::vector<int> uses;
  std::vector<int64_t> producer;  // node index, -1 = graph input / static / none
  std::vector<bool> graph_output;
};

UseInfo analyse(const PassGraph& g) {
  size_t nv = g.program.values.size();
  UseInfo u{std::vector<int>(nv, 0), std::vector<int64_t>(nv, -1), std::vector<bool>(nv, false)};
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    for (const auto& grp : g.nodes[k].inputs)
      for (ValueId v : grp) ++u.uses[v];
    for (const auto& grp : g.nodes[k].outputs)
      for (ValueId v : grp) u.producer[v] = static_cast<int64_t>(k);
  }
  for (const IoBinding& io : g.program.outputs) {
    u.graph_output[io.value] = true;
    ++u.uses[io.value];
  }
  return u;
}

const Tensor* const_tensor(const Program& p, ValueId v) {
  const Value& val = p.values[v];
  if (val.constant) return val.constant.get();
  if (val.param_index >= 0 && p.params[val.param_index].loaded)
    return &p.params[val.param_index].tensor;
  return nullptr;
}

bool is_const(const Program& p, ValueId v) { return const_tensor(p, v) != nullptr; }

const std::string& name_of(const Node& n) { return n.def->name; }

ValueId single(const std::vector<std::vector<ValueId>>& groups, size_t slot) {
  return slot < groups.size() && groups[slot].size() == 1 ? groups[slot][0] : kNoValue;
}

bool has_dynamic_inputs_after(const Program& p, const Node& n, size_t first) {
  for (size_t s = first; s < n.inputs.size(); ++s)
    for (ValueId v : n.inputs[s])
      if (!is_const(p, v)) return true;
  return false;
}

void drop_dead(std::vector<Node>& nodes, const std::vector<bool>& dead) {
  size_t w = 0;
  for (size_t r = 0; r < nodes.size(); ++r) {
    if (dead[r]) continue;
    if (w != r) nodes[w] = std::move(nodes[r]);
    ++w;
  }
  nodes.resize(w);
}

bool is_fused(const Node& n) {
  return name_of(n) == kFusedConvName || name_of(n) == kFusedMatmulName;
}

// Copy-on-write access to a fused node's state.
template <typename S>
S& mutable_state(Node& n) {
  auto copy = std::make_shared<S>(n.attrs<S>());
  S& ref = *copy;
  n.state = std::move(copy);
  return ref;
}

bool post_empty(const Node& n) {
  if (name_of(n) == kFusedConvName) return n.attrs<FusedConvState>().post.empty();
  return n.attrs<FusedMatmulState>().post.empty();
}

std::vector<PostOp>& post_of(Node& n) {
  if (name_of(n) == kFusedConvName) return mutable_state<FusedConvState>(n).post;
  return mutable_state<FusedMatmulState>(n).post;
}

const std::unordered_set<std::string>& unary_names() {
  static const std::unordered_set<std::string> s = {
      "relu", "relu6",      "sigmoid", "tanh",  "exp",  "sqrt",    "abs",    "square",    "swish",
      "silu", "hard_swish", "gelu",    "scale", "clip", "dropout", "assign", "leaky_relu"};
  return s;
}

// A unary node whose UnState fully describes it (no run-time operands).
const UnState* plain_unary(const Program& p, const Node& n) {
  if (!unary_names().count(name_of(n))) return nullptr;
  const UnState& s = n.attrs<UnState>();
  if (s.kind == UnKind::Clip && n.inputs.size() > 1) {
    for (size_t k = 1; k < n.inputs.size(); ++k)
      if (!n.inputs[k].empty()) return nullptr;  // min/max operands read at run time
  }
  if (has_dynamic_inputs_after(p, n, 1)) return nullptr;
  if (single(n.inputs, 0) == kNoValue || single(n.outputs, 0) == kNoValue) return nullptr;
  return &s;
}

bool is_identity(const UnState& s) {
  return s.kind == UnKind::Identity || (s.kind == UnKind::Scale && s.a == 1.0 && s.b == 0.0);
}

// Unary kinds every fused backend implements as a post-op.
bool fusable_unary(const UnState& s) {
  switch (s.kind) {
    case UnKind::Relu:
    case UnKind::Relu6:
    case UnKind::Sigmoid:
    case UnKind::Tanh:
    case UnKind::Exp:
    case UnKind::Sqrt:
    case UnKind::Abs:
    case UnKind::Square:
    case UnKind::Swish:
    case UnKind::Silu:
    case UnKind::GeluErf:
    case UnKind::GeluTanh:
    case UnKind::LeakyRelu:
    case UnKind::Scale:
    case UnKind::Clip:
    case UnKind::Identity: return true;
    // oneDNN 2.6's hardswish has Paddle's default parameters only.
    case UnKind::HardSwish: return s.a == 6.0 && s.b == 6.0 && s.c == 3.0;
    default: return false;
  }
}

bool declared_f32(const Program& p, ValueId v) {
  DType d = p.values[v].type.dtype;
  return d == DType::Float32 || d == DType::Undefined;
}

// ----------------------------------------------------------------- passes

int remove_identity(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int n = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const UnState* s = plain_unary(g.program, g.nodes[k]);
    if (!s || !is_identity(*s)) continue;
    ValueId in = g.nodes[k].inputs[0][0], out = g.nodes[k].outputs[0][0];
    if (u.graph_output[out]) continue;  // the output name must keep existing
    for (size_t j = k + 1; j < g.nodes.size(); ++j)
      for (auto& grp : g.nodes[j].inputs)
        for (ValueId& v : grp)
          if (v == out) v = in;
    dead[k] = true;
    ++n;
  }
  drop_dead(g.nodes, dead);
  return n;
}

int conv_to_fused(PassGraph& g) {
  const OpDef* def = g.def_by_name(kFusedConvName);
  int n = 0;
  for (Node& node : g.nodes) {
    if (name_of(node) != "conv2d") continue;
    const ConvState& cs = node.attrs<ConvState>();
    if (cs.transpose || cs.nhwc) continue;
    ValueId x = single(node.inputs, 0), f = single(node.inputs, 1), out = single(node.outputs, 0);
    if (x == kNoValue || f == kNoValue || out == kNoValue || !declared_f32(g.program, x)) continue;
    const Tensor* w = const_tensor(g.program, f);
    if (!w || w->dtype != DType::Float32 || w->dims.size() != 4) continue;
    FusedConvState st;
    st.conv = cs;
    st.weight = *w;
    ValueId b = single(node.inputs, 2);
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      const Tensor* bt = b == kNoValue ? nullptr : const_tensor(g.program, b);
      if (!bt || bt->dtype != DType::Float32 || bt->numel() != w->dims[0]) continue;
      st.bias = *bt;
    }
    if (node.inputs.size() > 3 && !node.inputs[3].empty()) continue;
    node.def = def;
    node.inputs = {{x}, {}};
    node.outputs = {{out}};
    node.state = std::make_shared<const FusedConvState>(std::move(st));
    ++n;
  }
  return n;
}

int matmul_to_fused(PassGraph& g) {
  const OpDef* def = g.def_by_name(kFusedMatmulName);
  int n = 0;
  for (Node& node : g.nodes) {
    if (name_of(node) != "matmul" && name_of(node) != "matmul_v1") continue;
    ValueId x = single(node.inputs, 0), y = single(node.inputs, 1), out = single(node.outputs, 0);
    if (x == kNoValue || y == kNoValue || out == kNoValue) continue;
    if (!declared_f32(g.program, x) || !declared_f32(g.program, y)) continue;
    FusedMatmulState st;
    st.mm = node.attrs<MatmulAttr>();
    node.def = def;
    node.inputs = {{x}, {y}, {}};
    node.outputs = {{out}};
    node.state = std::make_shared<const FusedMatmulState>(std::move(st));
    ++n;
  }
  return n;
}

int fold_transpose(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int n = 0;
  for (Node& m : g.nodes) {
    if (name_of(m) != kFusedMatmulName) continue;
    for (size_t slot = 0; slot < 2; ++slot) {
      ValueId v = m.inputs[slot][0];
      int64_t pk = u.producer[v];
      if (pk < 0 || dead[pk] || u.uses[v] != 1 || u.graph_output[v]) continue;
      const Node& t = g.nodes[pk];
      if (name_of(t) != "transpose" || single(t.inputs, 0) == kNoValue) continue;
      const std::vector<int64_t>& perm = t.attrs<PermAttr>().perm;
      int64_t r = static_cast<int64_t>(perm.size());
      if (r < 2) continue;
      bool swap_last = true;
      for (int64_t i = 0; i < r; ++i) {
        int64_t a = perm[i] < 0 ? perm[i] + r : perm[i];
        int64_t want = i < r - 2 ? i : (i == r - 2 ? r - 1 : r - 2);
        if (a != want) swap_last = false;
      }
      if (!swap_last) continue;
      FusedMatmulState& st = mutable_state<FusedMatmulState>(m);
      if (slot == 0)
        st.mm.trans_x = !st.mm.trans_x;
      else
        st.mm.trans_y = !st.mm.trans_y;
      m.inputs[slot][0] = t.inputs[0][0];
      dead[pk] = true;
      ++n;
    }
  }
  drop_dead(g.nodes, dead);
  return n;
}

// The fused producer of `v` that may absorb its single consumer, or null.
Node* sole_fused_producer(PassGraph& g, const UseInfo& u, ValueId v,
                          const std::vector<bool>& dead) {
  int64_t pk = u.producer[v];
  if (pk < 0 || dead[pk] || u.uses[v] != 1 || u.graph_output[v]) return nullptr;
  Node& f = g.nodes[pk];
  return is_fused(f) ? &f : nullptr;
}

int fuse_bias(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int n = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& a = g.nodes[k];
    if (name_of(a) != "add" || single(a.outputs, 0) == kNoValue) continue;
    const BinState& bs = a.attrs<BinState>();
    for (int side = 0; side < 2; ++side) {
      ValueId x = single(a.inputs, side), b = single(a.inputs, 1 - side);
      if (x == kNoValue || b == kNoValue) continue;
      Node* f = sole_fused_producer(g, u, x, dead);
      const Tensor* bt = const_tensor(g.program, b);
      std::vector<int64_t> bd = bt ? bt->dims : std::vector<int64_t>{};
      int64_t reshape_node = -1;
      if (!bt && u.producer[b] >= 0 && u.uses[b] == 1 && !u.graph_output[b]) {
        // PIR exports reshape the bias parameter to [1, C, 1, 1] first: read
        // through the reshape (same bytes, the declared result shape).
        const Node& r = g.nodes[u.producer[b]];
        ValueId rin = single(r.inputs, 0);
        const ValueType& rt = g.program.values[b].type;
        if ((name_of(r) == "reshape" || name_of(r) == "unsqueeze") && rin != kNoValue &&
            !has_dynamic_inputs_after(g.program, r, 1) && rt.kind == ValueType::Kind::DenseTensor &&
            !rt.dims.empty()) {
          bt = const_tensor(g.program, rin);
          bd = rt.dims;
          int64_t declared = 1;
          for (int64_t d : bd) declared *= d;
          if (bt && declared != bt->numel()) bt = nullptr;
          reshape_node = u.producer[b];
        }
      }
      if (!f || !bt || bt->dtype != DType::Float32 || !post_empty(*f)) continue;
      int64_t nonunit = 0, last_nonunit = -1;
      for (size_t i = 0; i < bd.size(); ++i)
        if (bd[i] != 1) ++nonunit, last_nonunit = static_cast<int64_t>(i);
      if (nonunit > 1) continue;
      int64_t rb = static_cast<int64_t>(bd.size());
      int64_t len = bt->numel();
      bool ok = false;
      if (name_of(*f) == kFusedConvName) {
        const FusedConvState& cs = f->attrs<FusedConvState>();
        if (cs.bias.dtype != DType::Undefined || len != cs.weight.dims[0]) continue;
        // Per-channel on NCHW: legacy axis 1 with [C], or NumPy [C,1,1] / [1,C,1,1].
        if (side == 0 && bs.axis == 1 && rb == 1) ok = true;
        if (bs.axis == -1 && (rb == 3 || rb == 4) && (len == 1 || last_nonunit == rb - 3))
          ok = true;
      } else {
        const FusedMatmulState& ms = f->attrs<FusedMatmulState>();
        if (ms.bias.dtype != DType::Undefined) continue;
        const Tensor* y = const_tensor(g.program, f->inputs[1][0]);
        if (!y || y->dims.size() < 2) continue;
        int64_t ncols = ms.mm.trans_y ? y->dims[y->dims.size() - 2] : y->dims.back();
        int64_t out_rank = static_cast<int64_t>(g.program.values[x].type.dims.size());
        if (len != ncols || out_rank < 2 || rb > out_rank) continue;
        // On the last axis: NumPy alignment, or the legacy axis naming it.
        if ((bs.axis == -1 || (side == 0 && rb == 1 && bs.axis == out_rank - 1)) &&
            (len == 1 || last_nonunit == rb - 1))
          ok = true;
      }
      if (!ok) continue;
      Tensor bias = *bt;
      bias.dims = {len};
      if (name_of(*f) == kFusedConvName)
        mutable_state<FusedConvState>(*f).bias = bias;
      else
        mutable_state<FusedMatmulState>(*f).bias = bias;
      f->outputs[0][0] = a.outputs[0][0];
      dead[k] = true;
      if (reshape_node >= 0) dead[reshape_node] = true;
      ++n;
      break;
    }
  }
  drop_dead(g.nodes, dead);
  return n;
}

std::shared_ptr<std::vector<uint8_t>> float_storage(size_t count) {
  return std::make_shared<std::vector<uint8_t>>(count * sizeof(float));
}

int fold_batch_norm(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int n = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& bn = g.nodes[k];
    if (name_of(bn) != "batch_norm" || bn.attrs<BnState>().channel_last) continue;
    ValueId x = single(bn.inputs, 0), y = single(bn.outputs, 0);
    if (x == kNoValue || y == kNoValue) continue;
    bool other_outputs_used = false;
    for (size_t s = 1; s < bn.outputs.size(); ++s)
      for (ValueId v : bn.outputs[s])
        if (u.uses[v] > 0) other_outputs_used = true;
    if (other_outputs_used) continue;
    Node* f = sole_fused_producer(g, u, x, dead);
    if (!f || name_of(*f) != kFusedConvName || !f->attrs<FusedConvState>().post.empty()) continue;
    const Tensor* t[4];
    bool ok = true;
    int64_t c = f->attrs<FusedConvState>().weight.dims[0];
    for (size_t s = 0; s < 4; ++s) {
      ValueId v = single(bn.inputs, s + 1);
      t[s] = v == kNoValue ? nullptr : const_tensor(g.program, v);
      if (!t[s] || t[s]->dtype != DType::Float32 || t[s]->numel() != c) ok = false;
    }
    if (!ok) continue;
    const float* scale = reinterpret_cast<const float*>(t[0]->data());
    const float* shift = reinterpret_cast<const float*>(t[1]->data());
    const float* mean = reinterpret_cast<const float*>(t[2]->data());
    const float* var = reinterpret_cast<const float*>(t[3]->data());
    double eps = bn.attrs<BnState>().epsilon;
    FusedConvState& st = mutable_state<FusedConvState>(*f);
    int64_t per_oc = st.weight.numel() / c;
    Tensor w = st.weight, b;
    w.storage = float_storage(static_cast<size_t>(st.weight.numel()));
    w.offset = 0;
    w.lod.clear();
    b.dtype = DType::Float32;
    b.dims = {c};
    b.nbytes = static_cast<uint64_t>(c) * sizeof(float);
    b.storage = float_storage(static_cast<size_t>(c));
    const float* w0 = reinterpret_cast<const float*>(st.weight.data());
    const float* b0 = st.bias.dtype == DType::Undefined
                          ? nullptr
                          : reinterpret_cast<const float*>(st.bias.data());
    float* w1 = reinterpret_cast<float*>(w.storage->data());
    float* b1 = reinterpret_cast<float*>(b.storage->data());
    for (int64_t o = 0; o < c; ++o) {
      double kf = static_cast<double>(scale[o]) / std::sqrt(static_cast<double>(var[o]) + eps);
      for (int64_t i = 0; i < per_oc; ++i)
        w1[o * per_oc + i] = static_cast<float>(w0[o * per_oc + i] * kf);
      double b_old = b0 ? b0[o] : 0.0;
      b1[o] = static_cast<float>((b_old - mean[o]) * kf + shift[o]);
    }
    st.weight = std::move(w);
    st.bias = std::move(b);
    f->outputs[0][0] = y;
    dead[k] = true;
    ++n;
  }
  drop_dead(g.nodes, dead);
  return n;
}

int fuse_activation(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int n = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& a = g.nodes[k];
    const UnState* s = plain_unary(g.program, a);
    if (!s || !fusable_unary(*s)) continue;
    Node* f = sole_fused_producer(g, u, a.inputs[0][0], dead);
    if (!f) continue;
    PostOp p;
    p.kind = PostOp::Kind::Unary;
    p.unary = *s;
    post_of(*f).push_back(p);
    f->outputs[0][0] = a.outputs[0][0];
    // The fused node now produces a's output: later consumers see it there.
    u.producer[a.outputs[0][0]] = f - g.nodes.data();
    dead[k] = true;
    ++n;
  }
  drop_dead(g.nodes, dead);
  return n;
}

// QuickGELU as exported: multiply(x, sigmoid(scale(x, a))) -> swish(x, a),
// one activation the fusing passes can then attach to x's producer.
int fuse_swish(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  const OpDef* swish = g.def_by_name("swish");
  int n = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& m = g.nodes[k];
    if (name_of(m) != "multiply" || single(m.outputs, 0) == kNoValue) continue;
    for (int side = 0; side < 2; ++side) {
      ValueId x = single(m.inputs, side), sv = single(m.inputs, 1 - side);
      if (x == kNoValue || sv == kNoValue || u.uses[sv] != 1 || u.graph_output[sv]) continue;
      int64_t sk = u.producer[sv];
      if (sk < 0 || dead[sk]) continue;
      const Node& sig = g.nodes[sk];
      const UnState* ss = plain_unary(g.program, sig);
      if (!ss || ss->kind != UnKind::Sigmoid) continue;
      ValueId t = sig.inputs[0][0];
      int64_t tk = u.producer[t];
      if (tk < 0 || dead[tk] || u.uses[t] != 1 || u.graph_output[t]) continue;
      const UnState* ts = plain_unary(g.program, g.nodes[tk]);
      if (!ts || ts->kind != UnKind::Scale || ts->b != 0.0 || g.nodes[tk].inputs[0][0] != x)
        continue;
      UnState sw{UnKind::Swish, ts->a};
      ValueId out = m.outputs[0][0];
      m.def = swish;
      m.inputs = {{x}};
      m.outputs = {{out}};
      m.state = std::make_shared<const UnState>(sw);
      dead[sk] = dead[tk] = true;
      ++n;
      break;
    }
  }
  drop_dead(g.nodes, dead);
  return n;
}

bool same_declared_shape(const Program& p, ValueId a, ValueId b) {
  const ValueType& ta = p.values[a].type;
  const ValueType& tb = p.values[b].type;
  if (ta.kind != ValueType::Kind::DenseTensor || tb.kind != ValueType::Kind::DenseTensor)
    return false;
  if (ta.dims.empty() || ta.dims != tb.dims) return false;
  return ta.dtype == tb.dtype;
}

int fuse_residual(PassGraph& g) {
  UseInfo u = analyse(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int n = 0;
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    Node& a = g.nodes[k];
    if (name_of(a) != "add" || single(a.outputs, 0) == kNoValue) continue;
    ValueId p = single(a.inputs, 0), q = single(a.inputs, 1);
    if (p == kNoValue || q == kNoValue || !same_declared_shape(g.program, p, q)) continue;
    // Fuse into the later producer; the other operand must exist before it.
    if (u.producer[q] > u.producer[p]) std::swap(p, q);
    Node* f = sole_fused_producer(g, u, p, dead);
    if (!f || u.producer[q] >= u.producer[p]) continue;
    size_t extra = name_of(*f) == kFusedConvName ? kFusedConvExtra : kFusedMatmulExtra;
    PostOp op;
    op.kind = PostOp::Kind::Binary;
    op.bin = BinKind::Add;
    op.input = f->inputs[extra].size();
    post_of(*f).push_back(op);
    f->inputs[extra].push_back(q);
    f->outputs[0][0] = a.outputs[0][0];
    u.producer[a.outputs[0][0]] = f - g.nodes.data();
    dead[k] = true;
    ++n;
  }
  drop_dead(g.nodes, dead);
  return n;
}

}  // namespace

const std::vector<PassInfo>& hpi_passes() {
  static const std::vector<PassInfo> passes = {
      {"remove_identity", remove_identity},
      {"conv_to_fused", conv_to_fused},
      {"matmul_to_fused", matmul_to_fused},
      {"fold_transpose", fold_transpose},
      {"fuse_bias", fuse_bias},
      {"fold_batch_norm", fold_batch_norm},
      {"fuse_swish", fuse_swish},
      {"fuse_activation", fuse_activation},
      {"fuse_residual", fuse_residual},
      // A second round: activations after a fused residual (x + f(x) -> relu).
      {"fuse_activation", fuse_activation}};
  return passes;
}

std::vector<std::pair<std::string, int>> run_passes(PassGraph& g,
                                                    const std::vector<std::string>& names) {
  for (const std::string& want : names) {
    bool known = false;
    for (const PassInfo& p : hpi_passes()) known = known || want == p.name;
    if (!known) throw std::invalid_argument("unknown graph pass '" + want + "'");
  }
  std::vector<std::pair<std::string, int>> report;
  for (const PassInfo& p : hpi_passes()) {
    bool on = names.empty();
    for (const std::string& want : names) on = on || want == p.name;
    if (!on) continue;
    report.emplace_back(p.name, p.run(g));
  }
  return report;
}

}  // namespace pif
