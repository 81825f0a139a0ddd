// Activations and scale on oneDNN's eltwise primitive, in whatever layout the
// input has (no reorder around a blocked conv output).
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct EltEntry : EntryBase {
  dnnl::eltwise_forward prim;
  memory::desc md, scratch;
};

struct EltNode {
  UnState un;
  RefFallback ref;
  PrimCache<EltEntry> cache;
};

std::shared_ptr<const EltEntry> entry_for(const RunCtx& c) {
  const EltNode& n = c.node.attrs<EltNode>();
  const RTensor& x = need_input(c, 0, "X");
  if (x.dtype != DType::Float32 || x.numel() == 0) {
    static const auto ref = [] {
      EltEntry e;
      e.use_ref("not a float32 tensor, or empty");
      return std::make_shared<const EltEntry>(e);
    }();
    return ref;
  }
  memory::desc md = md_of(x);
  return n.cache.get(
      {md},
      [&] {
        EltEntry e;
        dnnl::algorithm alg;
        float alpha, beta;
        if (!eltwise_of(n.un, &alg, &alpha, &beta)) {
          e.use_ref("no oneDNN eltwise algorithm for this unary op");
          return e;
        }
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        try {
          dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, alg, md, alpha, beta);
          dnnl::eltwise_forward::primitive_desc pd(d, attr, engine());
          e.prim = dnnl::eltwise_forward(pd);
          e.md = md;
          e.scratch = pd.scratchpad_desc();
        } catch (const dnnl::error&) {
          e.use_ref("oneDNN: no eltwise primitive for this layout");
        }
        return e;
      },
      n.ref.log.get());
}

void infer(RunCtx& c) {
  auto e = entry_for(c);
  if (e->ref) return run_ref(c.node.attrs<EltNode>().ref, c, true);
  set_output_md(c.output(0), c.input(0)->dims, e->md);
}

void run(RunCtx& c) {
  auto e = entry_for(c);
  if (e->ref) return run_ref(c.node.attrs<EltNode>().ref, c, false);
  execute(
      e->prim, e->scratch,
      {{DNNL_ARG_SRC, mem_of(*c.input(0), e->md)}, {DNNL_ARG_DST, mem_of(*c.output(0), e->md)}});
}

}  // namespace

const OpDef& eltwise_def() {
  static const OpDef d = layout_aware(make_op_def("dnnl.eltwise", {}, {}, {}, nullptr, infer, run));
  return d;
}

std::shared_ptr<const void> make_eltwise_node(const Node& n, RefFallback ref) {
  auto s = std::make_shared<EltNode>();
  s->un = n.attrs<UnState>();
  s->ref = std::move(ref);
  return s;
}

}  // namespace dnnl_backend
}  // namespace pif
