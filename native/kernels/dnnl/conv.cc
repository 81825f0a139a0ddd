// pif.fused_conv2d on oneDNN: one convolution primitive with bias and the
// fused post-ops (eltwise, binary residual add). Source and destination use
// format_tag::any so oneDNN picks its blocked layouts (nChw8c / nChw16c);
// outputs stay blocked for the next oneDNN op. Weights are reordered once per
// chosen weight layout and kept.
#include <algorithm>

#include "kernels/dnnl/common.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct ConvEntry {
  bool ref = false;  // oneDNN has no implementation: reference kernel
  dnnl::convolution_forward prim;
  memory::desc src, wei, dst, scratch;
  std::vector<int64_t> out_dims;
  std::shared_ptr<void> weights;         // in the primitive's layout
  std::vector<memory::desc> extra;       // binary post-op inputs as the primitive reads them
  std::vector<memory::desc> extra_have;  // ... and as they arrive (reordered when different)
  std::vector<int> binary_index;         // oneDNN post-op index per post-op
};

struct ConvNode {
  const FusedConvState* fused;
  RefFallback ref;
  bool bf16 = false;
  PrimCache<ConvEntry> cache;
  mutable std::mutex wmu;
  mutable std::vector<std::pair<memory::desc, std::shared_ptr<void>>> weights;

  std::shared_ptr<void> weights_in(const memory::desc& want, const memory::desc& plain) const {
    std::lock_guard<std::mutex> lock(wmu);
    for (const auto& w : weights)
      if (w.first == want) return w.second;
    RTensor src = rtensor_of(fused->weight);
    std::shared_ptr<void> buf = reorder_to(src, plain, want);
    weights.emplace_back(want, buf);
    return buf;
  }
};

ConvEntry make_entry(const ConvNode& n, const RunCtx& c) {
  const FusedConvState& st = *n.fused;
  const RTensor& x = need_input(c, 0, "Input");
  ConvEntry e;
  if (x.dims.size() != 4) {
    e.ref = true;
    return e;
  }
  const auto& wd = st.weight.dims;
  int64_t N = x.dims[0], C = x.dims[1], H = x.dims[2], W = x.dims[3];
  int64_t O = wd[0], KH = wd[2], KW = wd[3], G = st.conv.groups;
  if (C != wd[1] * G || O % G != 0) op_fail("fused conv: input channels do not match the filter");
  int64_t pads[4], dh, dw;
  conv_resolved_padding(st.conv, H, W, KH, KW, pads, &dh, &dw);
  int64_t OH = (H + pads[0] + pads[1] - (dh * (KH - 1) + 1)) / st.conv.sh + 1;
  int64_t OW = (W + pads[2] + pads[3] - (dw * (KW - 1) + 1)) / st.conv.sw + 1;
  if (OH <= 0 || OW <= 0 || N == 0) {
    e.ref = true;
    return e;
  }
  e.out_dims = {N, O, OH, OW};
  dt act = n.bf16 ? dt::bf16 : dt::f32;
  memory::desc src_any({N, C, H, W}, act, tag::any);
  memory::desc dst_any({N, O, OH, OW}, dt::f32, tag::any);
  memory::dims wdims = G == 1 ? memory::dims{O, C, KH, KW} : memory::dims{G, O / G, C / G, KH, KW};
  memory::desc w_any(wdims, act, tag::any);
  memory::desc b_md({O}, dt::f32, tag::a);
  // Binary post-op inputs keep the layout they arrive in; the destination
  // then matches them.
  for (size_t k = 0; k < (c.in.size() > kFusedConvExtra ? c.in[kFusedConvExtra].size() : 0); ++k) {
    e.extra.push_back(md_of(*c.in[kFusedConvExtra][k]));
    if (e.extra.back().dims() != memory::dims(e.out_dims.begin(), e.out_dims.end())) {
      e.ref = true;
      return e;
    }
  }
  e.extra_have = e.extra;
  bool has_bias = st.bias.dtype != DType::Undefined;
  if (!e.extra.empty()) {
    // The destination takes the layout oneDNN prefers for this convolution
    // (found without post-ops); residual inputs in another layout (e.g. a
    // plain graph input) are reordered to it rather than forcing the
    // convolution into a plain destination, where oneDNN falls back to GEMM.
    memory::desc want = e.extra[0];
    try {
      dnnl::primitive_attr probe_attr;
      probe_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::convolution_forward::desc probe(
          dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any, w_any,
          has_bias ? b_md : memory::desc(), dst_any, {st.conv.sh, st.conv.sw}, {dh - 1, dw - 1},
          {pads[0], pads[2]}, {pads[1], pads[3]});
      want = dnnl::convolution_forward::primitive_desc(probe, probe_attr, engine()).dst_desc();
    } catch (const dnnl::error&) {
    }
    for (memory::desc& m : e.extra) m = want;
    dst_any = want;
  }
  dnnl::post_ops po;
  if (!append_post_ops(st.post, e.extra, &po, &e.binary_index)) {
    e.ref = true;
    return e;
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any, w_any,
        has_bias ? b_md : memory::desc(), dst_any, {st.conv.sh, st.conv.sw}, {dh - 1, dw - 1},
        {pads[0], pads[2]}, {pads[1], pads[3]});
    dnnl::convolution_forward::primitive_desc pd(d, attr, engine());
    // oneDNN's im2col+GEMM and reference convolutions (e.g. dilated depthwise
    // on AVX2) are slower than our reference kernels' direct paths.
    std::string impl = pd.impl_info_str();
    if (impl.rfind("ref", 0) == 0 || impl.find("gemm") != std::string::npos) {
      e.ref = true;
      return e;
    }
    e.prim = dnnl::convolution_forward(pd);
    e.src = pd.src_desc();
    e.dst = pd.dst_desc();
    e.scratch = pd.scratchpad_desc();
    e.wei = pd.weights_desc();
    memory::desc w_plain(wdims, dt::f32, G == 1 ? tag::oihw : tag::goihw);
    e.weights = n.weights_in(pd.weights_desc(), w_plain);
  } catch (const dnnl::error&) {
    e.ref = true;
  }
  return e;
}

std::shared_ptr<const ConvEntry> entry_for(const RunCtx& c) {
  const ConvNode& n = c.node.attrs<ConvNode>();
  std::vector<memory::desc> key{md_of(need_input(c, 0, "Input"))};
  if (c.in.size() > kFusedConvExtra)
    for (const RTensor* t : c.in[kFusedConvExtra]) key.push_back(md_of(*t));
  return n.cache.get(key, [&] { return make_entry(n, c); });
}

void infer(RunCtx& c) {
  auto e = entry_for(c);
  if (e->ref) return run_ref(c.node.attrs<ConvNode>().ref, c, true);
  set_output_md(c.output(0), e->out_dims, e->dst);
}

void run(RunCtx& c) {
  const ConvNode& n = c.node.attrs<ConvNode>();
  auto e = entry_for(c);
  if (e->ref) return run_ref(n.ref, c, false);
  const RTensor& x = *c.input(0);
  memory::desc have = md_of(x);
  std::shared_ptr<void> tmp;
  void* src = x.data;
  if (have != e->src) {
    tmp = reorder_to(x, have, e->src);
    src = tmp.get();
  }
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(e->src, engine(), src)},
      {DNNL_ARG_WEIGHTS, memory(e->wei, engine(), e->weights.get())},
      {DNNL_ARG_DST, memory(e->dst, engine(), c.output(0)->data)}};
  if (n.fused->bias.dtype != DType::Undefined)
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({n.fused->bias.dims[0]}, dt::f32, tag::a),
                                       engine(), const_cast<uint8_t*>(n.fused->bias.data())));
  std::vector<const RTensor*> extra = c.in[kFusedConvExtra];
  std::vector<RTensor> converted(extra.size());
  for (size_t k = 0; k < extra.size() && k < e->extra.size(); ++k) {
    if (e->extra_have[k] == e->extra[k]) continue;
    converted[k].owner = reorder_to(*extra[k], e->extra_have[k], e->extra[k]);
    converted[k].data = converted[k].owner.get();
    extra[k] = &converted[k];
  }
  add_post_op_inputs(n.fused->post, e->binary_index, e->extra, extra, &args);
  execute(e->prim, e->scratch, std::move(args));
}

}  // namespace

const OpDef& conv_def() {
  static const OpDef d =
      layout_aware(make_op_def("dnnl.fused_conv2d", {}, {}, {}, nullptr, infer, run));
  return d;
}

std::shared_ptr<const void> make_conv_node(const Node& n, bool bf16) {
  auto s = std::make_shared<ConvNode>();
  s->fused = &n.attrs<FusedConvState>();
  s->ref = RefFallback{n.def, n.state};
  s->bf16 = bf16;
  return s;
}

}  // namespace dnnl_backend
}  // namespace pif
