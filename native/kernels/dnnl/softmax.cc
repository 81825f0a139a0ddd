// softmax on oneDNN (plain layout; the attention scores of a ViT block).
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

using SoftmaxNode = KernelNode<SrcDstEntry, int64_t>;  // attrs: the axis

std::shared_ptr<const SrcDstEntry> entry_for(const RunCtx& c) {
  const SoftmaxNode& n = c.node.attrs<SoftmaxNode>();
  const RTensor& x = need_input(c, 0, "X");
  if (x.dtype != DType::Float32 || x.dims.empty() || x.dims.size() > 6 || x.numel() == 0) {
    static const auto ref = ref_entry<SrcDstEntry>("not float32, rank 0 or above 6, or empty");
    return ref;
  }
  memory::desc md = md_of(x);
  return n.cache.get(
      {md},
      [&] {
        SrcDstEntry e;
        if (x.layout) {
          // oneDNN's softmax over a blocked channel axis is its slow reference
          // implementation; a reorder plus the reference kernel is faster.
          e.use_ref("blocked input layout");
          return e;
        }
        int64_t r = static_cast<int64_t>(x.dims.size());
        int64_t axis = n.attrs < 0 ? n.attrs + r : n.attrs;
        if (axis < 0 || axis >= r) {
          e.use_ref("bad axis (the reference kernel reports it)");
          return e;
        }
        e.md = md;
        if (!make_primitive<dnnl::softmax_forward>(
                [&] {
                  return dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md,
                                                     static_cast<int>(axis));
                },
                &e.prim, &e.scratch))
          e.use_ref("oneDNN: no softmax primitive for this shape");
        return e;
      },
      n.ref.log.get());
}

const OpDef& def() {
  return kernel_def<SoftmaxNode, SrcDstEntry, entry_for, set_output_as_input, execute_src_dst>(
      "dnnl.softmax");
}

std::shared_ptr<const void> make(const DnnlBindCtx& b, RefFallback ref) {
  return make_kernel_node<SoftmaxNode>(b.node.attrs<SoftmaxAttr>().axis, std::move(ref));
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_softmax(std::vector<DnnlBinding>* t) {
  t->push_back({{"softmax"}, nullptr, dnnl_backend::make, dnnl_backend::def});
}

}  // namespace pif
