// Binds lowered (and fused) nodes to the oneDNN kernels of this folder. A
// node keeps its reference kernel when no oneDNN kernel covers its op; the
// executor converts blocked inputs to plain for it.
#include <unordered_set>

#include "kernels/dnnl/common.h"

namespace pif {

namespace {

bool inputs_after_are_constant(const Program& p, const Node& n, size_t first) {
  for (size_t s = first; s < n.inputs.size(); ++s) {
    for (ValueId v : n.inputs[s]) {
      const Value& val = p.values[v];
      if (!val.constant && val.param_index < 0) return false;
    }
  }
  return true;
}

bool is_static(const Program& p, ValueId v) {
  return p.values[v].constant != nullptr || p.values[v].param_index >= 0;
}

}  // namespace

int bind_dnnl_kernels(const Program& program, std::vector<Node>* nodes, const HpiOptions& opt,
                      std::vector<std::shared_ptr<const PathLog>>* logs) {
  using namespace dnnl_backend;
  static const std::unordered_set<std::string> unary = {
      "relu",  "relu6", "sigmoid",    "tanh", "exp",   "sqrt", "abs",        "square",
      "swish", "silu",  "hard_swish", "gelu", "scale", "clip", "leaky_relu", "pow"};
  static const std::unordered_set<std::string> binary = {"add",    "subtract", "multiply",
                                                         "divide", "maximum",  "minimum"};
  int bound = 0;
  if (logs) logs->assign(nodes->size(), nullptr);
  for (size_t i = 0; i < nodes->size(); ++i) {
    Node& n = (*nodes)[i];
    const std::string& name = n.def->name;
    const OpDef* def = nullptr;
    std::shared_ptr<const void> state;
    RefFallback ref{n.def, n.state, std::make_shared<PathLog>()};
    if (name == kFusedConvName) {
      def = &conv_def();
      state = make_conv_node(n, ref, opt.bf16);
    } else if (name == kFusedMatmulName) {
      def = &matmul_def();
      state = make_matmul_node(n, ref, opt.bf16, is_static(program, n.inputs[1][0]));
    } else if (name == "pool2d") {
      def = &pool_def();
      state = make_pool_node(n, ref);
    } else if (unary.count(name)) {
      dnnl::algorithm alg;
      float a, b;
      const UnState& s = n.attrs<UnState>();
      bool operands_ok = s.kind == UnKind::Clip
                             ? n.inputs.size() < 2 || (n.inputs[1].empty() &&
                                                       (n.inputs.size() < 3 || n.inputs[2].empty()))
                             : inputs_after_are_constant(program, n, 1);
      if (operands_ok && eltwise_of(s, &alg, &a, &b)) {
        def = &eltwise_def();
        state = make_eltwise_node(n, ref);
      }
    } else if (binary.count(name)) {
      def = &binary_def();
      state = make_binary_node(n, ref);
    } else if (name == "softmax") {
      def = &softmax_def();
      state = make_softmax_node(n, ref);
    } else if (name == "layer_norm") {
      def = &layer_norm_def();
      state = make_layer_norm_node(n, ref);
    }
    if (!def) continue;
    if (logs) (*logs)[i] = ref.log;
    n.def = def;
    n.state = std::move(state);
    ++bound;
  }
  return bound;
}

}  // namespace pif
