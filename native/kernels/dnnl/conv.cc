// pif.fused_conv2d on oneDNN: one convolution primitive with bias and the
// fused post-ops (eltwise, binary residual add). Source and destination use
// format_tag::any so oneDNN picks its blocked layouts (nChw8c / nChw16c);
// outputs stay blocked for the next oneDNN op. Weights are reordered once per
// chosen weight layout and kept.
//
// A fused primitive oneDNN refuses (or offers only as its reference or GEMM
// implementation; e.g. oneDNN 2.6's AVX-512 brgemm convolutions take no binary
// post-op, so a residual add gets `ref:any`) does not send the convolution to
// our reference kernel. The paths, in order:
//   fused  the convolution with every post-op;
//   sum    a single residual add as a sum post-op: the destination is filled
//          with the residual first and the convolution accumulates into it;
//   split  the convolution with the post-ops before the first binary one,
//          then one in-place oneDNN primitive (binary or eltwise) per
//          remaining step (make_post_stage);
// first with jit implementations only, then also oneDNN's im2col+GEMM
// (except for depthwise convolutions). Only when the bare convolution itself
// has neither (oneDNN offers only its reference implementation, or GEMM for a
// depthwise one, where our direct loop is faster) does the node run its
// reference kernel. Every departure from the fused path
// is recorded in the node's PathLog with what oneDNN offered and why it was
// not taken; PIF_TEST_DNNL_REFUSE forces refusals (common.h).
#include <algorithm>
#include <cstring>

#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"
#include "kernels/registry.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct ConvEntry : EntryBase {
  dnnl::convolution_forward prim;
  memory::desc src, wei, dst, scratch;
  std::vector<int64_t> out_dims;
  std::shared_ptr<void> weights;         // in the primitive's layout
  std::vector<memory::desc> extra;       // binary post-op inputs as the primitives read them
  std::vector<memory::desc> extra_have;  // ... and as they arrive (reordered when different)
  std::vector<PostOp> conv_post;         // the post-ops inside the convolution primitive
  std::vector<int> binary_index;         // oneDNN post-op index per conv_post entry
  int sum_input = -1;                    // sum path: extra input copied into the destination
  std::vector<PostStage> stages;         // split path
};

struct ConvNode {
  const FusedConvState* fused;
  RefFallback ref;
  bool bf16 = false;
  PrimCache<ConvEntry> cache;
  WeightCache weights;
};

// One attempt at a primitive: what oneDNN offered and, if it is not taken, why.
struct Attempt {
  std::string impl;
  std::string why;
};

bool jit_impl(const std::string& impl) {
  return impl.rfind("ref", 0) != 0 && impl.find("gemm") == std::string::npos;
}

// Creates the convolution with `post` fused (sum_at: see append_post_ops).
// Accepts jit implementations, and with allow_gemm also GEMM for ungrouped
// convolutions. Returns false with the reason in `a`.
bool try_conv(const ConvGeom& g, const std::vector<PostOp>& post,
              const std::vector<memory::desc>& extra, int sum_at, bool allow_gemm,
              dnnl::convolution_forward::primitive_desc* pd, std::vector<int>* binary_index,
              Attempt* a) {
  dnnl::post_ops po;
  if (!append_post_ops(post, extra, &po, binary_index, sum_at)) {
    a->why = "post-op chain oneDNN 2.6 computes wrongly (a repeated eltwise algorithm)";
    return false;
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    *pd = dnnl::convolution_forward::primitive_desc(g.desc(), attr, engine());
  } catch (const dnnl::error& e) {
    a->why = std::string("oneDNN: ") + e.what();
    return false;
  }
  a->impl = pd->impl_info_str();
  if (jit_impl(a->impl)) return true;
  // oneDNN's GEMM convolution is im2col + sgemm per group, as our reference
  // kernel computes it, but with the post-ops fused: taken, except for one
  // input channel per group (depthwise), where the reference kernel's direct
  // loop is much faster than a GEMM per channel.
  bool depthwise = g.groups > 1 && g.wei.dims()[2] == 1;
  if (allow_gemm && !depthwise && a->impl.find("gemm") != std::string::npos) return true;
  a->why =
      "oneDNN offered only " + a->impl +
      (depthwise ? " for a depthwise convolution (the reference kernel's direct loop is faster)"
                 : "");
  return false;
}

ConvEntry make_entry(const ConvNode& n, const RunCtx& c) {
  const FusedConvState& st = *n.fused;
  const RTensor& x = need_input(c, 0, "Input");
  ConvEntry e;
  if (x.dims.size() != 4) {
    e.use_ref("not a 4-D input");
    return e;
  }
  dt act = n.bf16 ? dt::bf16 : dt::f32;
  ConvGeom g;
  if (!conv_geom(st, x.dims, act, act, &g)) {
    e.use_ref("empty output");
    return e;
  }
  e.out_dims = g.out_dims;
  // Binary post-op inputs keep the layout they arrive in; the destination
  // then matches them.
  for (size_t k = 0; k < (c.in.size() > kFusedConvExtra ? c.in[kFusedConvExtra].size() : 0); ++k) {
    e.extra.push_back(md_of(*c.in[kFusedConvExtra][k]));
    if (e.extra.back().dims() != memory::dims(e.out_dims.begin(), e.out_dims.end())) {
      e.use_ref("a post-op input of another shape than the output");
      return e;
    }
  }
  e.extra_have = e.extra;
  if (!e.extra.empty()) {
    // The destination takes the layout oneDNN prefers for this convolution
    // (found without post-ops); residual inputs in another layout (e.g. a
    // plain graph input) are reordered to it rather than forcing the
    // convolution into a plain destination, where oneDNN falls back to GEMM.
    memory::desc want = e.extra[0];
    try {
      dnnl::primitive_attr probe_attr;
      probe_attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      want = dnnl::convolution_forward::primitive_desc(g.desc(), probe_attr, engine()).dst_desc();
    } catch (const dnnl::error&) {
    }
    for (memory::desc& m : e.extra) m = want;
    g.dst = want;
  }

  const std::vector<PostOp>& post = st.post;
  size_t first_binary = post.size(), binaries = 0;
  for (size_t i = post.size(); i-- > 0;)
    if (post[i].kind == PostOp::Kind::Binary) first_binary = i, ++binaries;
  // oneDNN 2.6.3's AVX-512 brgemm convolution crashes (SIGSEGV in its jit
  // code) with a sum post-op when a padding spans a whole dilated kernel
  // window (output rows that read no input); such convolutions take the split
  // path.
  bool pad_spans_window = std::max(g.pads[0], g.pads[1]) >= g.dh * (g.kh - 1) + 1 ||
                          std::max(g.pads[2], g.pads[3]) >= g.dw * (g.kw - 1) + 1;
  bool sum_fits = binaries == 1 && post[first_binary].bin == BinKind::Add && !pad_spans_window;
  std::vector<PostOp> prefix(post.begin(),
                             post.begin() + static_cast<std::ptrdiff_t>(first_binary));

  dnnl::convolution_forward::primitive_desc pd;
  Attempt fused, sum, split;
  std::string path;
  // Destination candidates: the layout chosen above, then (with post-op
  // inputs) any layout, which lets oneDNN pick a GEMM convolution's plain
  // destination where its jit kernels do not take the blocked one (e.g.
  // SSE4.1); the post-op inputs are then reordered to what it picked.
  std::vector<memory::desc> dsts{g.dst};
  if (!e.extra.empty()) dsts.push_back(memory::desc(g.dst.dims(), dt::f32, tag::any));
  for (bool allow_gemm : {false, true}) {
    for (size_t d = 0; d < dsts.size() && path.empty(); ++d) {
      g.dst = dsts[d];
      bool fixed_dst = d == 0;  // binary post-ops need their inputs' layout up front
      if (fixed_dst || binaries == 0) {
        if (!post.empty() && test_refuses("fused")) {
          fused.why = "refused by the test hook PIF_TEST_DNNL_REFUSE";
        } else if (try_conv(g, post, e.extra, -1, allow_gemm, &pd, &e.binary_index, &fused)) {
          e.conv_post = post;
          path = "fused";
          break;
        }
      }
      if (sum_fits && !test_refuses("sum") &&
          try_conv(g, post, e.extra, static_cast<int>(first_binary), allow_gemm, &pd,
                   &e.binary_index, &sum)) {
        e.conv_post = post;
        e.sum_input = static_cast<int>(post[first_binary].input);
        path = "sum";
        break;
      }
      if (post.empty() || test_refuses("split")) continue;
      // The longest unary prefix the convolution takes (short of the whole
      // chain: that is the fused primitive); the rest as stages.
      for (size_t keep = std::min(prefix.size(), post.size() - 1) + 1; keep-- > 0;) {
        std::vector<PostOp> head(prefix.begin(),
                                 prefix.begin() + static_cast<std::ptrdiff_t>(keep));
        if (!try_conv(g, head, e.extra, -1, allow_gemm, &pd, &e.binary_index, &split)) continue;
        e.dst = pd.dst_desc();
        for (memory::desc& m : e.extra) m = e.dst;
        e.stages.clear();
        bool staged = true;
        for (size_t i = keep; i < post.size() && staged; ++i) {
          e.stages.emplace_back();
          staged = make_post_stage(post[i], e.dst, e.extra, &e.stages.back());
        }
        if (staged) {
          e.conv_post = head;
          path = "split";
        }
        break;
      }
    }
    if (!path.empty()) break;
  }
  if (path.empty()) {
    // Is it the convolution itself oneDNN has nothing good for (then the
    // reference kernel is the right choice), or only its post-ops?
    Attempt bare;
    g.dst = memory::desc(g.dst.dims(), dt::f32, tag::any);
    std::vector<int> unused;
    if (!try_conv(g, {}, {}, -1, true, &pd, &unused, &bare)) {
      e.use_ref("oneDNN has no usable implementation of this convolution even without post-ops: " +
                    bare.why,
                bare.impl);
      return e;
    }
    std::string why = fused.why;
    if (!sum.why.empty()) why += "; as a sum post-op: " + sum.why;
    if (!split.why.empty()) why += "; split: " + split.why;
    e.use_ref(why, !fused.impl.empty() ? fused.impl : !sum.impl.empty() ? sum.impl : split.impl);
    e.note.fused_refused = true;
    return e;
  }
  if (path != "fused") {
    e.note.path = path;
    e.note.impl = fused.impl;
    e.note.reason = fused.why;
    e.note.stages = static_cast<int>(e.stages.size());
  }
  for (memory::desc& m : e.extra) m = pd.dst_desc();
  e.prim = dnnl::convolution_forward(pd);
  e.src = pd.src_desc();
  e.dst = pd.dst_desc();
  e.scratch = pd.scratchpad_desc();
  e.wei = pd.weights_desc();
  memory::desc w_plain(g.wdims, dt::f32, g.groups == 1 ? tag::oihw : tag::goihw);
  e.weights = n.weights.get(pd.weights_desc(), [&] {
    return reorder_to(rtensor_of(st.weight), w_plain, pd.weights_desc());
  });
  return e;
}

std::shared_ptr<const ConvEntry> entry_for(const RunCtx& c) {
  const ConvNode& n = c.node.attrs<ConvNode>();
  return n.cache.get(
      fused_conv_key(c), [&] { return make_entry(n, c); }, n.ref.log.get());
}

void set_out(RunCtx& c, const ConvEntry& e) { set_output_md(c.output(0), e.out_dims, e.dst); }

void exec(RunCtx& c, const ConvEntry& e) {
  const ConvNode& n = c.node.attrs<ConvNode>();
  const RTensor& x = *c.input(0);
  memory::desc have = md_of(x);
  std::shared_ptr<void> tmp;
  void* src = x.data;
  if (have != e.src) {
    tmp = reorder_to(x, have, e.src);
    src = tmp.get();
  }
  void* out = c.output(0)->data;
  std::vector<RTensor> converted;
  std::vector<const RTensor*> extra = residuals_for(c.in[kFusedConvExtra], e.extra_have, e.extra,
                                                    e.dst, e.sum_input, out, &converted);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e.src, engine(), src)},
                                       {DNNL_ARG_WEIGHTS, memory(e.wei, engine(), e.weights.get())},
                                       {DNNL_ARG_DST, memory(e.dst, engine(), out)}};
  if (n.fused->bias.dtype != DType::Undefined)
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({n.fused->bias.dims[0]}, dt::f32, tag::a),
                                       engine(), const_cast<uint8_t*>(n.fused->bias.data())));
  add_post_op_inputs(e.conv_post, e.binary_index, e.extra, extra, &args);
  execute(e.prim, e.scratch, std::move(args));
  run_post_stages(e.stages, e.dst, out, e.extra, extra);
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_conv(std::vector<DnnlBinding>* t) {
  using namespace dnnl_backend;
  t->push_back({{kFusedConvName},
                nullptr,
                [](const DnnlBindCtx& b, RefFallback ref) -> std::shared_ptr<const void> {
                  return make_fused_node<ConvNode, FusedConvState>(b, std::move(ref));
                },
                []() -> const OpDef& {
                  return kernel_def<ConvNode, ConvEntry, entry_for, set_out, exec>(
                      "dnnl.fused_conv2d");
                }});
}

}  // namespace pif
