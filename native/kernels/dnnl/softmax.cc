// softmax on oneDNN (plain layout; the attention scores of a ViT block).
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct SoftmaxEntry : EntryBase {
  dnnl::softmax_forward prim;
  memory::desc md, scratch;
};

struct SoftmaxNode {
  int64_t axis;
  RefFallback ref;
  PrimCache<SoftmaxEntry> cache;
};

std::shared_ptr<const SoftmaxEntry> entry_for(const RunCtx& c) {
  const SoftmaxNode& n = c.node.attrs<SoftmaxNode>();
  const RTensor& x = need_input(c, 0, "X");
  if (x.dtype != DType::Float32 || x.dims.empty() || x.dims.size() > 6 || x.numel() == 0) {
    static const auto ref = [] {
      SoftmaxEntry e;
      e.use_ref("not float32, rank 0 or above 6, or empty");
      return std::make_shared<const SoftmaxEntry>(e);
    }();
    return ref;
  }
  memory::desc md = md_of(x);
  return n.cache.get(
      {md},
      [&] {
        SoftmaxEntry e;
        if (x.layout) {
          // oneDNN's softmax over a blocked channel axis is its slow reference
          // implementation; a reorder plus the reference kernel is faster.
          e.use_ref("blocked input layout");
          return e;
        }
        int64_t r = static_cast<int64_t>(x.dims.size());
        int64_t axis = n.axis < 0 ? n.axis + r : n.axis;
        if (axis < 0 || axis >= r) {
          e.use_ref("bad axis (the reference kernel reports it)");  // the reference kernel reports
                                                                    // the bad axis
          return e;
        }
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        try {
          dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md,
                                        static_cast<int>(axis));
          dnnl::softmax_forward::primitive_desc pd(d, attr, engine());
          e.prim = dnnl::softmax_forward(pd);
          e.md = md;
          e.scratch = pd.scratchpad_desc();
        } catch (const dnnl::error&) {
          e.use_ref("oneDNN: no softmax primitive for this shape");
        }
        return e;
      },
      n.ref.log.get());
}

void infer(RunCtx& c) {
  auto e = entry_for(c);
  if (e->ref) return run_ref(c.node.attrs<SoftmaxNode>().ref, c, true);
  set_output_md(c.output(0), c.input(0)->dims, e->md);
}

void run(RunCtx& c) {
  auto e = entry_for(c);
  if (e->ref) return run_ref(c.node.attrs<SoftmaxNode>().ref, c, false);
  execute(
      e->prim, e->scratch,
      {{DNNL_ARG_SRC, mem_of(*c.input(0), e->md)}, {DNNL_ARG_DST, mem_of(*c.output(0), e->md)}});
}

}  // namespace

const OpDef& softmax_def() {
  static const OpDef d = layout_aware(make_op_def("dnnl.softmax", {}, {}, {}, nullptr, infer, run));
  return d;
}

std::shared_ptr<const void> make_softmax_node(const Node& n, RefFallback ref) {
  auto s = std::make_shared<SoftmaxNode>();
  s->axis = n.attrs<SoftmaxAttr>().axis;
  s->ref = std::move(ref);
  return s;
}

}  // namespace dnnl_backend
}  // namespace pif
