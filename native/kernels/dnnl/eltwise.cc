// Activations and scale on oneDNN's eltwise primitive, in whatever layout the
// input has (no reorder around a blocked conv output).
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

using EltNode = KernelNode<SrcDstEntry, UnState>;

std::shared_ptr<const SrcDstEntry> entry_for(const RunCtx& c) {
  const EltNode& n = c.node.attrs<EltNode>();
  const RTensor& x = need_input(c, 0, "X");
  if (x.dtype != DType::Float32 || x.numel() == 0) {
    static const auto ref = ref_entry<SrcDstEntry>("not a float32 tensor, or empty");
    return ref;
  }
  memory::desc md = md_of(x);
  return n.cache.get(
      {md},
      [&] {
        SrcDstEntry e;
        dnnl::algorithm alg;
        float alpha, beta;
        if (!eltwise_of(n.attrs, &alg, &alpha, &beta)) {
          e.use_ref("no oneDNN eltwise algorithm for this unary op");
          return e;
        }
        e.md = md;
        if (!make_primitive<dnnl::eltwise_forward>(
                [&] {
                  return dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg, md,
                                                     alpha, beta);
                },
                &e.prim, &e.scratch))
          e.use_ref("oneDNN: no eltwise primitive for this layout");
        return e;
      },
      n.ref.log.get());
}

const OpDef& def() {
  return kernel_def<EltNode, SrcDstEntry, entry_for, set_output_as_input, execute_src_dst>(
      "dnnl.eltwise");
}

// A unary op runs here when oneDNN has its algorithm and its operands beyond X
// (scale's or pow's factor) are constants; clip only without min/max tensors.
bool applies(const DnnlBindCtx& b) {
  const Node& n = b.node;
  const UnState& s = n.attrs<UnState>();
  bool operands_ok = s.kind == UnKind::Clip
                         ? n.inputs.size() < 2 ||
                               (n.inputs[1].empty() && (n.inputs.size() < 3 || n.inputs[2].empty()))
                         : b.inputs_static_from(1);
  dnnl::algorithm alg;
  float a, c;
  return operands_ok && eltwise_of(s, &alg, &a, &c);
}

std::shared_ptr<const void> make(const DnnlBindCtx& b, RefFallback ref) {
  return make_kernel_node<EltNode>(b.node.attrs<UnState>(), std::move(ref));
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_eltwise(std::vector<DnnlBinding>* t) {
  using namespace dnnl_backend;
  t->push_back({{"relu", "relu6", "sigmoid", "tanh", "exp", "sqrt", "abs", "square", "swish",
                 "silu", "hard_swish", "gelu", "scale", "clip", "leaky_relu", "pow"},
                applies,
                make,
                def});
}

}  // namespace pif
