// layer_norm on oneDNN: the normalised dims [begin_norm_axis, rank) are
// flattened into one row (plain layout), with Scale / Bias as oneDNN's scale
// and shift. Only Y is produced, as in the reference kernel.
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct LnEntry : EntryBase {
  dnnl::primitive prim;
  memory::desc md, scratch, param;
  bool scale = false, shift = false;
};

using LnNode = KernelNode<LnEntry, LnState>;

std::shared_ptr<const LnEntry> entry_for(const RunCtx& c) {
  const LnNode& n = c.node.attrs<LnNode>();
  const RTensor& x = need_input(c, 0, "X");
  const RTensor* scale = c.input(1);
  const RTensor* bias = c.input(2);
  auto bad = [](const RTensor* t) {
    return t && (t->dtype != DType::Float32 || t->layout != nullptr);
  };
  int64_t r = static_cast<int64_t>(x.dims.size());
  int64_t axis =
      n.attrs.begin_norm_axis < 0 ? n.attrs.begin_norm_axis + r : n.attrs.begin_norm_axis;
  static const auto refused =
      ref_entry<LnEntry>("not float32, a blocked layout, or a normalised axis oneDNN cannot take");
  if (x.dtype != DType::Float32 || x.layout || r == 0 || axis <= 0 || axis >= r || x.numel() == 0 ||
      bad(scale) || bad(bias))
    return refused;
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < r; ++i) (i < axis ? rows : cols) *= x.dims[static_cast<size_t>(i)];
  if ((scale && scale->numel() != cols) || (bias && bias->numel() != cols)) return refused;
  memory::desc md({rows, cols}, dt::f32, tag::ab);
  memory::desc key_scale({scale ? 1 : 0, bias ? 1 : 0}, dt::f32, tag::ab);
  return n.cache.get(
      {md, key_scale},
      [&] {
        LnEntry e;
        e.md = md;
        e.param = memory::desc({cols}, dt::f32, tag::a);
        e.scale = scale != nullptr;
        e.shift = bias != nullptr;
        auto flags = dnnl::normalization_flags::none;
        if (e.scale) flags |= dnnl::normalization_flags::use_scale;
        if (e.shift) flags |= dnnl::normalization_flags::use_shift;
        if (!make_primitive<dnnl::layer_normalization_forward>(
                [&] {
                  return dnnl::layer_normalization_forward::desc(
                      dnnl::prop_kind::forward_inference, md, static_cast<float>(n.attrs.epsilon),
                      flags);
                },
                &e.prim, &e.scratch))
          e.use_ref("oneDNN: no layer normalization primitive for this shape");
        return e;
      },
      n.ref.log.get());
}

void set_out(RunCtx& c, const LnEntry&) {
  set_output(c.output(0), DType::Float32, c.input(0)->dims);
}

void exec(RunCtx& c, const LnEntry& e) {
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem_of(*c.input(0), e.md)},
                                       {DNNL_ARG_DST, mem_of(*c.output(0), e.md)}};
  if (e.scale) args.emplace(DNNL_ARG_SCALE, mem_of(*c.input(1), e.param));
  if (e.shift) args.emplace(DNNL_ARG_SHIFT, mem_of(*c.input(2), e.param));
  execute(e.prim, e.scratch, std::move(args));
}

const OpDef& def() {
  return kernel_def<LnNode, LnEntry, entry_for, set_out, exec>("dnnl.layer_norm");
}

std::shared_ptr<const void> make(const DnnlBindCtx& b, RefFallback ref) {
  return make_kernel_node<LnNode>(b.node.attrs<LnState>(), std::move(ref));
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_layer_norm(std::vector<DnnlBinding>* t) {
  t->push_back({{"layer_norm"}, nullptr, dnnl_backend::make, dnnl_backend::def});
}

}  // namespace pif
