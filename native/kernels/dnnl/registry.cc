// Binds lowered (and fused) nodes to the oneDNN kernels of this folder. Each
// family file registers what it takes (register_dnnl_<family>); this file only
// lists the families and applies their bindings. A node keeps its reference
// kernel when no binding takes it; the executor converts blocked inputs to
// plain for it.
#include <algorithm>

#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {

namespace {

const std::vector<DnnlBinding>& bindings() {
  static const std::vector<DnnlBinding> table = [] {
    std::vector<DnnlBinding> t;
    register_dnnl_conv_int8(&t);
    register_dnnl_conv(&t);
    register_dnnl_matmul(&t);
    register_dnnl_pool(&t);
    register_dnnl_eltwise(&t);
    register_dnnl_binary(&t);
    register_dnnl_softmax(&t);
    register_dnnl_layer_norm(&t);
    return t;
  }();
  return table;
}

// The first binding (in registration order) that takes the node.
const DnnlBinding* binding_for(const DnnlBindCtx& ctx) {
  for (const DnnlBinding& b : bindings()) {
    if (std::find(b.ops.begin(), b.ops.end(), ctx.node.def->name) == b.ops.end()) continue;
    if (!b.applies || b.applies(ctx)) return &b;
  }
  return nullptr;
}

}  // namespace

bool DnnlBindCtx::is_static(ValueId v) const {
  return program.values[v].constant != nullptr || program.values[v].param_index >= 0;
}

bool DnnlBindCtx::inputs_static_from(size_t first) const {
  for (size_t s = first; s < node.inputs.size(); ++s)
    for (ValueId v : node.inputs[s])
      if (!is_static(v)) return false;
  return true;
}

int bind_dnnl_kernels(const Program& program, std::vector<Node>* nodes, const HpiOptions& opt,
                      std::vector<std::shared_ptr<const PathLog>>* logs) {
  int bound = 0;
  if (logs) logs->assign(nodes->size(), nullptr);
  int convs = 0;
  for (size_t i = 0; i < nodes->size(); ++i) {
    Node& n = (*nodes)[i];
    DnnlBindCtx ctx{program, n, opt};
    if (n.def->name == kFusedConvName) ctx.conv_ordinal = convs++;
    const DnnlBinding* b = binding_for(ctx);
    if (!b) continue;
    dnnl_backend::RefFallback ref{n.def, n.state, std::make_shared<PathLog>()};
    std::shared_ptr<const void> state = b->make(ctx, ref);
    if (logs) (*logs)[i] = ref.log;
    n.def = &b->def();
    n.state = std::move(state);
    ++bound;
  }
  return bound;
}

}  // namespace pif
