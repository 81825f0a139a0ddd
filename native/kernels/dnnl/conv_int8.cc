// pif.fused_conv2d in int8 (hpi precision int8): the fused convolutions that
// the quantisation table names (HpiOptions::quant, by fused-convolution
// ordinal) run as u8/s8 activations x s8 weights -> f32 on oneDNN, the rest on
// conv.cc in f32. The float input (in whatever layout it arrives) is quantised
// by one scaled reorder, x_q = round(x / src_scale) saturated to u8 or s8; the
// weights are quantised once per output channel (symmetric, max|W[oc]|/127,
// or /63 without VNNI: see weight_levels;
// batch norm already folded); the primitive's per-channel output scales
// src_scale * w_scale[oc] bring the accumulator back to float before the
// fused post-ops, so the output is the f32 tensor the next op expects.
//
// oneDNN 2.6 adds the bias before the output scale (dst = scale * (acc +
// bias)), so the bias is given in accumulator units: bias / (src_scale *
// w_scale[oc]). A residual add runs as a binary post-op, or as a sum post-op
// into a destination filled with the residual first (the AVX-512 brgemm
// convolutions take no binary post-op). A configuration oneDNN refuses in int8
// goes to the reference kernel and is recorded in the node's path log; the
// quantiser drops such layers (lib/quantize.ts).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct QConvEntry : EntryBase {
  dnnl::convolution_forward prim;
  dnnl::reorder quantize;  // the f32 input (as it arrives) -> src
  memory::desc have, src, wei, dst, scratch, bias_md;
  std::vector<int64_t> out_dims;
  std::shared_ptr<void> weights;  // s8, in the primitive's layout
  std::vector<float> bias;        // accumulator units
  std::vector<memory::desc> extra, extra_have;
  std::vector<PostOp> conv_post;
  std::vector<int> binary_index;
  int sum_input = -1;
};

struct QConvNode {
  const FusedConvState* fused;
  RefFallback ref;
  QuantConv q;
  std::vector<float> w_scale;  // per output channel
  PrimCache<QConvEntry> cache;
  WeightCache weights;  // quantised, per layout
};

// The weight levels: 127 where the CPU multiplies u8 x s8 with VNNI (or AMX);
// without VNNI oneDNN's u8 x s8 kernels sum pairs of products in 16 bits
// (vpmaddubsw), which saturates for 8-bit weights (255 * 127 * 2 > 32767):
// oneDNN's guidance there is 7-bit weights, so +-63.
float weight_levels() { return cpu_has_vnni() ? 127.f : 63.f; }

// Per-output-channel symmetric scales of the folded weights.
std::vector<float> weight_scales(const Tensor& w) {
  const float levels = weight_levels();
  const int64_t O = w.dims[0];
  const int64_t per = w.numel() / std::max<int64_t>(O, 1);
  const float* d = reinterpret_cast<const float*>(w.data());
  std::vector<float> s(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    float m = 0.f;
    for (int64_t i = 0; i < per; ++i) m = std::max(m, std::fabs(d[o * per + i]));
    s[static_cast<size_t>(o)] = m > 0.f ? m / levels : 1.f;
  }
  return s;
}

// The folded f32 weights quantised into the primitive's s8 layout (a scaled
// reorder, which also fills any compensation oneDNN's layout carries).
std::shared_ptr<void> quantized_weights(const QConvNode& n, const memory::desc& want) {
  const Tensor& w = n.fused->weight;
  memory::desc plain(to_dims(w.dims), dt::f32, tag::oihw);
  std::vector<float> inv(n.w_scale.size());
  for (size_t o = 0; o < inv.size(); ++o) inv[o] = 1.f / n.w_scale[o];
  dnnl::primitive_attr a;
  a.set_output_scales(1 << 0, inv);
  std::shared_ptr<void> buf = alloc(want.get_size());
  memory from(plain, engine(), const_cast<uint8_t*>(w.data())), to(want, engine(), buf.get());
  dnnl::reorder(dnnl::reorder::primitive_desc(engine(), plain, engine(), want, a))
      .execute(stream(), from, to);
  stream().wait();
  return buf;
}

bool try_qconv(const dnnl::convolution_forward::desc& d, const std::vector<float>& scales,
               const std::vector<PostOp>& post, const std::vector<memory::desc>& extra, int sum_at,
               dnnl::convolution_forward::primitive_desc* pd, std::vector<int>* binary_index,
               std::string* why) {
  dnnl::post_ops po;
  if (!append_post_ops(post, extra, &po, binary_index, sum_at)) {
    *why = "post-op chain oneDNN 2.6 computes wrongly";
    return false;
  }
  dnnl::primitive_attr attr;
  attr.set_output_scales(1 << 1, scales);
  attr.set_post_ops(po);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    *pd = dnnl::convolution_forward::primitive_desc(d, attr, engine());
  } catch (const dnnl::error& e) {
    *why = std::string("oneDNN: ") + e.what();
    return false;
  }
  const std::string impl = pd->impl_info_str();
  if (impl.rfind("ref", 0) == 0) {
    *why = "oneDNN offered only " + impl + " in int8";
    return false;
  }
  return true;
}

QConvEntry make_entry(const QConvNode& n, const RunCtx& c) {
  const FusedConvState& st = *n.fused;
  const RTensor& x = need_input(c, 0, "Input");
  QConvEntry e;
  if (x.dims.size() != 4 || x.dtype != DType::Float32) {
    e.use_ref("int8: not a 4-D float input");
    return e;
  }
  ConvGeom g;
  if (!conv_geom(st, x.dims, n.q.src_unsigned ? dt::u8 : dt::s8, dt::s8, &g)) {
    e.use_ref("empty output");
    return e;
  }
  e.out_dims = g.out_dims;
  const int64_t O = g.out_dims[1];
  const bool has_bias = st.bias.dtype != DType::Undefined;
  e.bias_md = g.bias;
  auto desc = [&](const memory::desc& d) {
    g.dst = d;
    return g.desc();
  };
  memory::desc dst = g.dst;
  std::vector<float> scales(static_cast<size_t>(O));
  for (size_t o = 0; o < scales.size(); ++o) scales[o] = n.q.src_scale * n.w_scale[o];
  // The destination layout oneDNN prefers without post-ops; residual inputs
  // are read (or reordered) in it.
  dnnl::convolution_forward::primitive_desc pd;
  std::string why;
  std::vector<int> unused;
  if (!try_qconv(desc(dst), scales, {}, {}, -1, &pd, &unused, &why)) {
    e.use_ref("int8: " + why);
    return e;
  }
  dst = pd.dst_desc();
  const size_t n_extra = c.in.size() > kFusedConvExtra ? c.in[kFusedConvExtra].size() : 0;
  for (size_t k = 0; k < n_extra; ++k) {
    e.extra_have.push_back(md_of(*c.in[kFusedConvExtra][k]));
    if (e.extra_have.back().dims() != dst.dims()) {
      e.use_ref("int8: a post-op input of another shape than the output");
      return e;
    }
    e.extra.push_back(dst);
  }
  const std::vector<PostOp>& post = st.post;
  size_t binaries = 0, first_binary = post.size();
  for (size_t i = post.size(); i-- > 0;)
    if (post[i].kind == PostOp::Kind::Binary) first_binary = i, ++binaries;
  std::string fused_why, sum_why;
  if (try_qconv(desc(dst), scales, post, e.extra, -1, &pd, &e.binary_index, &fused_why)) {
    e.conv_post = post;
  } else if (binaries == 1 && post[first_binary].bin == BinKind::Add &&
             try_qconv(desc(dst), scales, post, e.extra, static_cast<int>(first_binary), &pd,
                       &e.binary_index, &sum_why)) {
    e.conv_post = post;
    e.sum_input = static_cast<int>(post[first_binary].input);
    e.note.path = "sum";
    e.note.reason = fused_why;
  } else {
    e.use_ref("int8: " + fused_why + (sum_why.empty() ? "" : "; as a sum post-op: " + sum_why));
    return e;
  }
  e.prim = dnnl::convolution_forward(pd);
  e.src = pd.src_desc();
  e.wei = pd.weights_desc();
  e.dst = pd.dst_desc();
  e.scratch = pd.scratchpad_desc();
  e.have = md_of(x);
  dnnl::primitive_attr qa;
  qa.set_output_scales(0, {1.f / n.q.src_scale});
  e.quantize = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), e.have, engine(), e.src, qa));
  e.weights = n.weights.get(e.wei, [&] { return quantized_weights(n, e.wei); });
  if (has_bias) {
    const float* b = reinterpret_cast<const float*>(st.bias.data());
    e.bias.resize(static_cast<size_t>(O));
    for (size_t o = 0; o < e.bias.size(); ++o) e.bias[o] = b[o] / scales[o];
  }
  return e;
}

std::shared_ptr<const QConvEntry> entry_for(const RunCtx& c) {
  const QConvNode& n = c.node.attrs<QConvNode>();
  return n.cache.get(
      fused_conv_key(c), [&] { return make_entry(n, c); }, n.ref.log.get());
}

void set_out(RunCtx& c, const QConvEntry& e) { set_output_md(c.output(0), e.out_dims, e.dst); }

void exec(RunCtx& c, const QConvEntry& e) {
  const RTensor& x = *c.input(0);
  // The quantised input: per call (two calls of one predictor may run at once).
  std::shared_ptr<void> q = alloc(e.src.get_size());
  {
    memory from(e.have, engine(), x.data), to(e.src, engine(), q.get());
    e.quantize.execute(stream(), from, to);
  }
  void* out = c.output(0)->data;
  std::vector<RTensor> converted;
  std::vector<const RTensor*> extra = residuals_for(
      c.in.size() > kFusedConvExtra ? c.in[kFusedConvExtra] : std::vector<const RTensor*>{},
      e.extra_have, e.extra, e.dst, e.sum_input, out, &converted);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e.src, engine(), q.get())},
                                       {DNNL_ARG_WEIGHTS, memory(e.wei, engine(), e.weights.get())},
                                       {DNNL_ARG_DST, memory(e.dst, engine(), out)}};
  if (!e.bias.empty())
    args.emplace(DNNL_ARG_BIAS, memory(e.bias_md, engine(), const_cast<float*>(e.bias.data())));
  add_post_op_inputs(e.conv_post, e.binary_index, e.extra, extra, &args);
  execute(e.prim, e.scratch, std::move(args));
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_conv_int8(std::vector<DnnlBinding>* t) {
  using namespace dnnl_backend;
  t->push_back({{kFusedConvName},
                [](const DnnlBindCtx& b) {
                  if (!b.opt.quant || b.conv_ordinal < 0) return false;
                  const FusedConvState& st = b.node.attrs<FusedConvState>();
                  return st.conv.groups == 1 && st.weight.dtype == DType::Float32 &&
                         st.weight.dims.size() == 4 && b.opt.quant->conv.count(b.conv_ordinal) > 0;
                },
                [](const DnnlBindCtx& b, RefFallback ref) -> std::shared_ptr<const void> {
                  auto s = std::make_shared<QConvNode>();
                  s->fused = &b.node.attrs<FusedConvState>();
                  s->ref = std::move(ref);
                  s->q = b.opt.quant->conv.at(b.conv_ordinal);
                  s->w_scale = weight_scales(s->fused->weight);
                  return s;
                },
                []() -> const OpDef& {
                  return kernel_def<QConvNode, QConvEntry, entry_for, set_out, exec>(
                      "dnnl.qconv2d");
                }});
}

}  // namespace pif
