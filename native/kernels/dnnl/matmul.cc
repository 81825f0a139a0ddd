// pif.fused_matmul on oneDNN: one matmul primitive with broadcast batch
// dimensions, transposes expressed as strides (no copies), bias and fused
// post-ops (GELU, scale, residual add). Constant weights are created with
// format_tag::any and reordered once into the layout oneDNN picks (blocked,
// and bf16 in bf16 mode), kept per node: given plain strided weights, oneDNN
// repacks B on every call, which cost ViT's fc1 more than half its time. When
// oneDNN refuses the primitive with its post-ops, the matmul keeps what it
// takes of them and runs the rest as separate oneDNN primitives (split).
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct MatmulEntry : EntryBase {
  dnnl::matmul prim;
  memory::desc x, y, x_plain, y_plain, dst, bias, scratch;
  std::vector<int64_t> out_dims;
  std::vector<memory::desc> extra;
  std::vector<int> binary_index;      // oneDNN post-op index per post-op
  std::shared_ptr<void> y_converted;  // constant weights in the primitive's layout
  std::vector<PostOp> post;           // as given to oneDNN
  std::vector<PostStage> stages;      // split path: post-ops after the matmul
};

struct MatmulNode {
  const FusedMatmulState* fused;
  RefFallback ref;
  bool bf16 = false;
  bool y_const = false;
  PrimCache<MatmulEntry> cache;
  WeightCache packed;  // constant weights per layout a primitive asked for
};

// Descriptor of a stored [.., R, C] operand read as [.., C, R] when `trans`.
memory::desc operand_md(const std::vector<int64_t>& stored, size_t rank, bool trans, dt type) {
  std::vector<int64_t> d(rank - stored.size(), 1);
  d.insert(d.end(), stored.begin(), stored.end());
  memory::dims strides(rank);
  int64_t s = 1;
  for (size_t i = rank; i-- > 0;) {
    strides[i] = s;
    s *= d[i];
  }
  memory::dims dims = to_dims(d);
  if (trans) {
    std::swap(dims[rank - 1], dims[rank - 2]);
    std::swap(strides[rank - 1], strides[rank - 2]);
  }
  return memory::desc(dims, type, strides);
}

MatmulEntry make_entry(const MatmulNode& n, const RunCtx& c) {
  const FusedMatmulState& st = *n.fused;
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& y = need_input(c, 1, "Y");
  MatmulEntry e;
  size_t rx = x.dims.size(), ry = y.dims.size(), r = std::max(rx, ry);
  bool has_bias = st.bias.dtype != DType::Undefined;
  if (rx < 2 || ry < 2 || r > 6 || (st.mm.alpha != 1.f && has_bias)) {
    e.use_ref("1-D operand, rank above 6, or alpha with a bias");
    return e;
  }
  dt act = n.bf16 ? dt::bf16 : dt::f32;
  // [.., M, K] x [K, N] with shared 2-D weights is one GEMM with M' = all
  // rows: bigger M amortises oneDNN's packing of the weights.
  std::vector<int64_t> xs = x.dims;
  bool collapse = ry == 2 && rx > 2 && !st.mm.trans_x;
  if (collapse) {
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < rx; ++i) rows *= x.dims[i];
    xs = {rows, x.dims[rx - 1]};
    r = 2;
  }
  e.x_plain = operand_md(xs, r, st.mm.trans_x, dt::f32);
  e.y_plain = operand_md(y.dims, r, st.mm.trans_y, dt::f32);
  e.x = operand_md(xs, r, st.mm.trans_x, act);
  e.y = operand_md(y.dims, r, st.mm.trans_y, act);
  // Constant weights: oneDNN picks their layout (reordered once below).
  const memory::desc y_req = n.y_const ? memory::desc(e.y.dims(), act, tag::any) : e.y;
  memory::dims xd = e.x.dims(), yd = e.y.dims();
  if (xd[r - 1] != yd[r - 2]) {
    e.use_ref("inner dimensions differ (the reference kernel reports it)");  // the reference kernel
                                                                             // reports the mismatch
    return e;
  }
  std::vector<int64_t> gemm_out(r, 1);
  for (size_t i = 0; i + 2 < r; ++i) {
    if (xd[i] != yd[i] && xd[i] != 1 && yd[i] != 1) {
      e.use_ref("batch dimensions do not broadcast");
      return e;
    }
    gemm_out[i] = std::max(xd[i], yd[i]);
  }
  gemm_out[r - 2] = xd[r - 2];
  gemm_out[r - 1] = yd[r - 1];
  if (collapse) {
    e.out_dims.assign(x.dims.begin(), x.dims.end() - 1);
    e.out_dims.push_back(yd[r - 1]);
  } else {
    e.out_dims = gemm_out;
  }
  for (int64_t v : e.out_dims)
    if (v == 0) {
      e.use_ref("empty result");
      return e;
    }
  e.dst = memory::desc(to_dims(gemm_out), dt::f32, plain_tag(r));
  if (has_bias) {
    memory::dims bd(r, 1);
    bd[r - 1] = st.bias.numel();
    if (bd[r - 1] != gemm_out[r - 1]) {
      e.use_ref("bias length differs from the output columns");
      return e;
    }
    e.bias = memory::desc(bd, dt::f32, plain_tag(r));
  }
  for (size_t k = 0; k < (c.in.size() > kFusedMatmulExtra ? c.in[kFusedMatmulExtra].size() : 0);
       ++k) {
    const RTensor& t = *c.in[kFusedMatmulExtra][k];
    if (t.layout || t.dims != e.out_dims) {
      e.use_ref("a residual input in a blocked layout or of another shape");
      return e;
    }
    e.extra.push_back(e.dst);  // plain, same element order as the output
  }
  // The matmul with post-ops post[0..keep); why not, if oneDNN refuses.
  auto try_matmul = [&](size_t keep, std::string* why) {
    std::vector<PostOp> head(st.post.begin(), st.post.begin() + static_cast<std::ptrdiff_t>(keep));
    dnnl::post_ops po;
    if (!append_post_ops(head, e.extra, &po, &e.binary_index)) {
      *why = "post-op chain oneDNN 2.6 computes wrongly (a repeated eltwise algorithm)";
      return false;
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    // alpha scales the product before the post-ops (no bias here: see above).
    if (st.mm.alpha != 1.f) attr.set_output_scales(0, {st.mm.alpha});
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    try {
      dnnl::matmul::desc d(e.x, y_req, has_bias ? e.bias : memory::desc(), e.dst);
      dnnl::matmul::primitive_desc pd(d, attr, engine());
      e.prim = dnnl::matmul(pd);
      e.scratch = pd.scratchpad_desc();
      e.y = pd.weights_desc();
    } catch (const dnnl::error& err) {
      *why = std::string("oneDNN: ") + err.what();
      return false;
    }
    e.post = head;
    return true;
  };
  std::string why;
  const std::vector<PostOp>& post = st.post;
  if (!post.empty() && test_refuses("fused")) {
    why = "refused by the test hook PIF_TEST_DNNL_REFUSE";
  } else if (try_matmul(post.size(), &why)) {
    why.clear();
  }
  if (!why.empty()) {
    // Split: the longest prefix the matmul takes (short of the whole chain),
    // then one in-place oneDNN primitive per remaining post-op.
    bool done = false, bare_ok = false;
    for (size_t keep = post.empty() ? 0 : post.size(); keep-- > 0 && !done;) {
      std::string unused;
      if (!try_matmul(keep, &unused)) continue;
      bare_ok = true;
      if (test_refuses("split")) break;
      e.stages.clear();
      done = true;
      for (size_t i = keep; i < post.size() && done; ++i) {
        e.stages.emplace_back();
        done = make_post_stage(post[i], e.dst, e.extra, &e.stages.back());
      }
      if (!done) break;
    }
    if (!done) {
      e.use_ref(why);
      e.note.fused_refused = bare_ok;
      return e;
    }
    e.note.path = "split";
    e.note.reason = why;
    e.note.stages = static_cast<int>(e.stages.size());
  }
  if (n.y_const) e.y_converted = n.packed.get(e.y, [&] { return reorder_to(y, e.y_plain, e.y); });
  return e;
}

std::shared_ptr<const MatmulEntry> entry_for(const RunCtx& c) {
  const MatmulNode& n = c.node.attrs<MatmulNode>();
  std::vector<memory::desc> key{md_of(need_input(c, 0, "X")), md_of(need_input(c, 1, "Y"))};
  if (c.in.size() > kFusedMatmulExtra)
    for (const RTensor* t : c.in[kFusedMatmulExtra]) key.push_back(md_of(*t));
  return n.cache.get(
      key, [&] { return make_entry(n, c); }, n.ref.log.get());
}

// The output is plain row-major.
void set_out(RunCtx& c, const MatmulEntry& e) {
  set_output(c.output(0), DType::Float32, e.out_dims);
}

// The operand's data in the descriptor `want` (converting layout / dtype).
void* operand(const RTensor& t, const memory::desc& plain, const memory::desc& want,
              std::shared_ptr<void>* keep) {
  std::shared_ptr<void> flat;
  const RTensor* src = &t;
  RTensor tmp;
  if (t.layout) {
    to_plain(t, &tmp);
    src = &tmp;
  }
  if (plain == want && !t.layout) return t.data;
  if (plain == want) {
    *keep = tmp.owner;
    return tmp.data;
  }
  *keep = reorder_to(*src, plain, want);
  return keep->get();
}

void exec(RunCtx& c, const MatmulEntry& e) {
  const MatmulNode& n = c.node.attrs<MatmulNode>();
  std::shared_ptr<void> kx, ky;
  void* xp = operand(*c.input(0), e.x_plain, e.x, &kx);
  void* yp = e.y_converted ? e.y_converted.get() : operand(*c.input(1), e.y_plain, e.y, &ky);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e.x, engine(), xp)},
                                       {DNNL_ARG_WEIGHTS, memory(e.y, engine(), yp)},
                                       {DNNL_ARG_DST, memory(e.dst, engine(), c.output(0)->data)}};
  if (n.fused->bias.dtype != DType::Undefined)
    args.emplace(DNNL_ARG_BIAS,
                 memory(e.bias, engine(), const_cast<uint8_t*>(n.fused->bias.data())));
  const std::vector<const RTensor*>& extra =
      c.in.size() > kFusedMatmulExtra ? c.in[kFusedMatmulExtra] : std::vector<const RTensor*>{};
  add_post_op_inputs(e.post, e.binary_index, e.extra, extra, &args);
  execute(e.prim, e.scratch, std::move(args));
  run_post_stages(e.stages, e.dst, c.output(0)->data, e.extra, extra);
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_matmul(std::vector<DnnlBinding>* t) {
  using namespace dnnl_backend;
  t->push_back({{kFusedMatmulName},
                nullptr,
                [](const DnnlBindCtx& b, RefFallback ref) -> std::shared_ptr<const void> {
                  auto s = make_fused_node<MatmulNode, FusedMatmulState>(b, std::move(ref));
                  s->y_const = b.is_static(b.node.inputs[1][0]);
                  return s;
                },
                []() -> const OpDef& {
                  return kernel_def<MatmulNode, MatmulEntry, entry_for, set_out, exec>(
                      "dnnl.fused_matmul");
                }});
}

}  // namespace pif
