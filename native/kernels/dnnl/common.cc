#include "kernels/dnnl/common.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>

#include "kernels/common/helpers.h"

namespace pif {
namespace dnnl_backend {

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

tag plain_tag(size_t rank) {
  switch (rank) {
    case 1: return tag::a;
    case 2: return tag::ab;
    case 3: return tag::abc;
    case 4: return tag::abcd;
    case 5: return tag::abcde;
    case 6: return tag::abcdef;
    default: op_fail("oneDNN backend: rank " + std::to_string(rank) + " is not supported");
  }
}

memory::dims to_dims(const std::vector<int64_t>& d) { return memory::dims(d.begin(), d.end()); }

std::string dims_text(const memory::dims& d) {
  std::string s = "[";
  for (size_t k = 0; k < d.size(); ++k) s += (k ? "," : "") + std::to_string(d[k]);
  return s + "]";
}

bool test_refuses(const char* step) {
  const char* env = std::getenv("PIF_TEST_DNNL_REFUSE");
  if (!env || !*env) return false;
  std::string list = std::string(",") + env + ",";
  return list.find(std::string(",") + step + ",") != std::string::npos;
}

memory::desc md_of(const RTensor& t) {
  if (t.layout) return *static_cast<const memory::desc*>(t.layout.get());
  if (t.dtype != DType::Float32) op_fail("oneDNN backend: expected a float32 tensor");
  if (t.dims.empty()) return memory::desc({1}, dt::f32, tag::a);
  return memory::desc(to_dims(t.dims), dt::f32, plain_tag(t.dims.size()));
}

bool is_plain(const memory::desc& md) {
  memory::dims d = md.dims();
  if (d.empty()) return true;
  return md == memory::desc(d, md.data_type(), plain_tag(d.size()));
}

void set_output_md(RTensor* t, const std::vector<int64_t>& dims, const memory::desc& md) {
  set_output(t, DType::Float32, dims);
  if (!is_plain(md)) {
    t->layout = std::make_shared<const memory::desc>(md);
    t->nbytes = md.get_size();
  }
}

memory mem_of(const RTensor& t, const memory::desc& md) { return memory(md, engine(), t.data); }

std::shared_ptr<void> alloc(size_t n) {
  void* p = std::aligned_alloc(64, (std::max<size_t>(n, 1) + 63) & ~size_t(63));
  if (!p) throw std::bad_alloc();
  return std::shared_ptr<void>(p, std::free);
}

std::shared_ptr<void> reorder_to(const RTensor& src, const memory::desc& a, const memory::desc& b) {
  std::shared_ptr<void> buf = alloc(b.get_size());
  reorder_into(src, a, b, buf.get());
  return buf;
}

void reorder_into(const RTensor& src, const memory::desc& a, const memory::desc& b, void* dst) {
  memory from(a, engine(), src.data), to(b, engine(), dst);
  dnnl::reorder(from, to).execute(stream(), from, to);
  stream().wait();
}

void to_plain(const RTensor& in, RTensor* out) {
  memory::desc a = md_of(in);
  memory::desc b(a.dims(), a.data_type(), plain_tag(a.dims().size()));
  out->dtype = in.dtype;
  out->dims = in.dims;
  out->layout.reset();
  out->nbytes = b.get_size();
  out->owner = reorder_to(in, a, b);
  out->data = out->owner.get();
}

void execute(const dnnl::primitive& p, const memory::desc& scratch,
             std::unordered_map<int, memory> args) {
  // Scratchpad per calling thread, grown on demand: concurrent runs on other
  // threads never share it.
  thread_local std::shared_ptr<void> buf;
  thread_local size_t cap = 0;
  size_t need = scratch.get_size();
  if (need > 0) {
    if (need > cap) {
      buf = alloc(need);
      cap = need;
    }
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratch, engine(), buf.get()));
  }
  p.execute(stream(), args);
  stream().wait();
}

bool eltwise_of(const UnState& s, dnnl::algorithm* alg, float* alpha, float* beta) {
  using A = dnnl::algorithm;
  float a = static_cast<float>(s.a), b = static_cast<float>(s.b);
  *alpha = 0.f;
  *beta = 0.f;
  switch (s.kind) {
    case UnKind::Relu: *alg = A::eltwise_relu; return true;
    case UnKind::LeakyRelu:
      *alg = A::eltwise_relu;
      *alpha = a;
      return true;
    case UnKind::Relu6:
      *alg = A::eltwise_clip_v2;
      *alpha = 0.f;
      *beta = a;
      return true;
    case UnKind::Clip:
      *alg = A::eltwise_clip_v2;
      *alpha = a;
      *beta = b;
      return true;
    case UnKind::Sigmoid: *alg = A::eltwise_logistic; return true;
    case UnKind::Tanh: *alg = A::eltwise_tanh; return true;
    case UnKind::Exp: *alg = A::eltwise_exp; return true;
    case UnKind::Sqrt: *alg = A::eltwise_sqrt; return true;
    case UnKind::Abs: *alg = A::eltwise_abs; return true;
    case UnKind::Square: *alg = A::eltwise_square; return true;
    case UnKind::Swish:
      *alg = A::eltwise_swish;
      *alpha = a;
      return true;
    case UnKind::Silu:
      *alg = A::eltwise_swish;
      *alpha = 1.f;
      return true;
    case UnKind::GeluErf: *alg = A::eltwise_gelu_erf; return true;
    case UnKind::GeluTanh: *alg = A::eltwise_gelu_tanh; return true;
    case UnKind::HardSwish:
      if (s.a != 6.0 || s.b != 6.0 || s.c != 3.0) return false;
      *alg = A::eltwise_hardswish;
      return true;
    case UnKind::Scale:
      *alg = A::eltwise_linear;
      *alpha = a;
      *beta = s.flag ? b : a * b;  // (x + b) * a = a x + a b
      return true;
    case UnKind::Pow:  // alpha * x^beta
      *alg = A::eltwise_pow;
      *alpha = 1.f;
      *beta = a;
      return true;
    case UnKind::Identity:
      *alg = A::eltwise_linear;
      *alpha = 1.f;
      return true;
    default: return false;
  }
}

namespace {

struct Elt {
  dnnl::algorithm alg;
  float alpha, beta;
};

// Equivalent oneDNN encodings of one eltwise step (the first is preferred).
std::vector<Elt> encodings(const Elt& e) {
  using A = dnnl::algorithm;
  std::vector<Elt> v{e};
  const float inf = std::numeric_limits<float>::max();
  if (e.alg == A::eltwise_relu && e.alpha == 0.f) {
    v.push_back({A::eltwise_clip_v2, 0.f, inf});
    v.push_back({A::eltwise_clip, 0.f, inf});
  } else if (e.alg == A::eltwise_clip_v2) {
    v.push_back({A::eltwise_clip, e.alpha, e.beta});
    if (e.alpha == 0.f) v.push_back({A::eltwise_bounded_relu, e.beta, 0.f});
  }
  return v;
}

}  // namespace

bool append_post_ops(const std::vector<PostOp>& post, const std::vector<memory::desc>& extra,
                     dnnl::post_ops* po, std::vector<int>* binary_index, int sum_at) {
  // oneDNN 2.6.3 applies the parameters of the first eltwise post-op of an
  // algorithm to every later one of the same algorithm (seen in jit conv and
  // gemm matmul). So adjacent linear steps are merged into one, and each step
  // gets an encoding (relu as clip, relu6 as bounded_relu, ...) such that no
  // algorithm repeats with other parameters; a chain with no such choice is
  // refused (the caller uses the reference kernel).
  struct Step {
    bool binary;
    size_t index;  // into post
    Elt e;
  };
  std::vector<Step> steps;
  for (size_t i = 0; i < post.size(); ++i) {
    const PostOp& p = post[i];
    if (p.kind == PostOp::Kind::Binary) {
      if (p.input >= extra.size()) op_fail("oneDNN backend: missing post-op input");
      steps.push_back({true, i, {}});
      continue;
    }
    Elt e;
    if (!eltwise_of(p.unary, &e.alg, &e.alpha, &e.beta)) return false;
    if (e.alg == dnnl::algorithm::eltwise_linear && !steps.empty() && !steps.back().binary &&
        steps.back().e.alg == dnnl::algorithm::eltwise_linear) {
      Elt& q = steps.back().e;  // a2 (a1 x + b1) + b2
      q.beta = e.alpha * q.beta + e.beta;
      q.alpha = e.alpha * q.alpha;
      continue;
    }
    steps.push_back({false, i, e});
  }
  // Depth-first choice of encodings (chains are short).
  std::vector<Elt> chosen(steps.size());
  std::function<bool(size_t)> choose = [&](size_t k) -> bool {
    if (k == steps.size()) return true;
    if (steps[k].binary) return choose(k + 1);
    for (const Elt& alt : encodings(steps[k].e)) {
      bool clash = false;
      for (size_t j = 0; j < k; ++j) {
        const Elt& s2 = chosen[j];
        if (!steps[j].binary && s2.alg == alt.alg && (s2.alpha != alt.alpha || s2.beta != alt.beta))
          clash = true;
      }
      if (clash) continue;
      chosen[k] = alt;
      if (choose(k + 1)) return true;
    }
    return false;
  };
  if (!choose(0)) return false;
  if (binary_index) binary_index->assign(post.size(), -1);
  for (size_t k = 0; k < steps.size(); ++k) {
    if (steps[k].binary && static_cast<int>(steps[k].index) == sum_at) {
      if (post[steps[k].index].bin != BinKind::Add)
        op_fail("oneDNN backend: sum post-op of a non-add");
      po->append_sum(1.f);
      if (binary_index) (*binary_index)[steps[k].index] = kSumPostOp;
    } else if (steps[k].binary) {
      const PostOp& p = post[steps[k].index];
      po->append_binary(
          p.bin == BinKind::Add ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul,
          extra[p.input]);
      if (binary_index) (*binary_index)[steps[k].index] = static_cast<int>(k);
    } else {
      po->append_eltwise(1.f, chosen[k].alg, chosen[k].alpha, chosen[k].beta);
    }
  }
  return true;
}

void add_post_op_inputs(const std::vector<PostOp>& post, const std::vector<int>& binary_index,
                        const std::vector<memory::desc>& mds,
                        const std::vector<const RTensor*>& extra,
                        std::unordered_map<int, memory>* args) {
  for (size_t i = 0; i < post.size(); ++i) {
    if (post[i].kind != PostOp::Kind::Binary) continue;
    if (i < binary_index.size() && binary_index[i] == kSumPostOp) continue;  // in the destination
    size_t k = post[i].input;
    if (k >= mds.size() || k >= extra.size() || i >= binary_index.size() || binary_index[i] < 0)
      op_fail("oneDNN backend: missing post-op input");
    args->emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(binary_index[i]) | DNNL_ARG_SRC_1,
                  memory(mds[k], engine(), extra[k]->data));
  }
}

bool make_post_stage(const PostOp& op, const memory::desc& dst,
                     const std::vector<memory::desc>& extra, PostStage* stage) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    if (op.kind == PostOp::Kind::Binary) {
      if (op.input >= extra.size()) return false;
      dnnl::algorithm alg =
          op.bin == BinKind::Add ? dnnl::algorithm::binary_add : dnnl::algorithm::binary_mul;
      dnnl::binary::primitive_desc pd(dnnl::binary::desc(alg, dst, extra[op.input], dst), attr,
                                      engine());
      stage->prim = dnnl::binary(pd);
      stage->scratch = pd.scratchpad_desc();
      stage->input = static_cast<int>(op.input);
    } else {
      dnnl::algorithm alg;
      float alpha, beta;
      if (!eltwise_of(op.unary, &alg, &alpha, &beta)) return false;
      dnnl::eltwise_forward::primitive_desc pd(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, alg, dst, alpha, beta),
          attr, engine());
      stage->prim = dnnl::eltwise_forward(pd);
      stage->scratch = pd.scratchpad_desc();
      stage->input = -1;
    }
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}

void run_post_stages(const std::vector<PostStage>& stages, const memory::desc& dst, void* out,
                     const std::vector<memory::desc>& extra_md,
                     const std::vector<const RTensor*>& extra) {
  for (const PostStage& s : stages) {
    memory d(dst, engine(), out);
    if (s.input >= 0) {
      size_t k = static_cast<size_t>(s.input);
      if (k >= extra.size() || k >= extra_md.size())
        op_fail("oneDNN backend: missing post-op input");
      execute(s.prim, s.scratch,
              {{DNNL_ARG_SRC_0, d},
               {DNNL_ARG_SRC_1, memory(extra_md[k], engine(), extra[k]->data)},
               {DNNL_ARG_DST, d}});
    } else {
      execute(s.prim, s.scratch, {{DNNL_ARG_SRC, d}, {DNNL_ARG_DST, d}});
    }
  }
}

bool cpu_has_bf16() {
  static const bool has = [] {
    dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  }();
  return has;
}

bool cpu_has_vnni() {
  using I = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case I::avx2_vnni:
    case I::avx512_core_vnni:
    case I::avx512_core_bf16:
    case I::avx512_core_amx: return true;
    default: return false;
  }
}

dnnl::convolution_forward::desc ConvGeom::desc() const {
  return dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, src, wei, bias, dst,
                                         strides, dilates, pad_l, pad_r);
}

bool conv_geom(const FusedConvState& st, const std::vector<int64_t>& x, dt src_dt, dt wei_dt,
               ConvGeom* g) {
  const auto& wd = st.weight.dims;
  int64_t N = x[0], C = x[1], H = x[2], W = x[3];
  int64_t O = wd[0], KH = wd[2], KW = wd[3], G = st.conv.groups;
  if (C != wd[1] * G || O % G != 0) op_fail("fused conv: input channels do not match the filter");
  conv_resolved_padding(st.conv, H, W, KH, KW, g->pads, &g->dh, &g->dw);
  const int64_t* p = g->pads;
  int64_t OH = (H + p[0] + p[1] - (g->dh * (KH - 1) + 1)) / st.conv.sh + 1;
  int64_t OW = (W + p[2] + p[3] - (g->dw * (KW - 1) + 1)) / st.conv.sw + 1;
  if (OH <= 0 || OW <= 0 || N == 0) return false;
  g->out_dims = {N, O, OH, OW};
  g->groups = G;
  g->kh = KH;
  g->kw = KW;
  g->src = memory::desc({N, C, H, W}, src_dt, tag::any);
  g->dst = memory::desc({N, O, OH, OW}, dt::f32, tag::any);
  g->wdims = G == 1 ? memory::dims{O, C, KH, KW} : memory::dims{G, O / G, C / G, KH, KW};
  g->wei = memory::desc(g->wdims, wei_dt, tag::any);
  g->bias = st.bias.dtype != DType::Undefined ? memory::desc({O}, dt::f32, tag::a) : memory::desc();
  g->strides = {st.conv.sh, st.conv.sw};
  g->dilates = {g->dh - 1, g->dw - 1};
  g->pad_l = {p[0], p[2]};
  g->pad_r = {p[1], p[3]};
  return true;
}

std::vector<memory::desc> fused_conv_key(const RunCtx& c) {
  std::vector<memory::desc> key{md_of(need_input(c, 0, "Input"))};
  if (c.in.size() > kFusedConvExtra)
    for (const RTensor* t : c.in[kFusedConvExtra]) key.push_back(md_of(*t));
  return key;
}

std::vector<const RTensor*> residuals_for(const std::vector<const RTensor*>& in,
                                          const std::vector<memory::desc>& have,
                                          const std::vector<memory::desc>& want,
                                          const memory::desc& dst, int sum_input, void* out,
                                          std::vector<RTensor>* converted) {
  std::vector<const RTensor*> extra = in;
  if (sum_input >= 0) {
    // The sum post-op accumulates into the destination: put the residual there.
    size_t k = static_cast<size_t>(sum_input);
    if (have[k] == dst)
      std::memcpy(out, extra[k]->data, dst.get_size());
    else
      reorder_into(*extra[k], have[k], dst, out);
  }
  converted->assign(extra.size(), RTensor());
  for (size_t k = 0; k < extra.size() && k < want.size(); ++k) {
    if (have[k] == want[k] || static_cast<int>(k) == sum_input) continue;
    (*converted)[k].owner = reorder_to(*extra[k], have[k], want[k]);
    (*converted)[k].data = (*converted)[k].owner.get();
    extra[k] = &(*converted)[k];
  }
  return extra;
}

void run_ref(const RefFallback& ref, RunCtx& c, bool infer_only) {
  // Plain copies of inputs that carry a layout.
  std::vector<RTensor> plain;
  plain.reserve(16);
  Node node = c.node;
  node.state = ref.state;
  RunCtx rc{node, c.in, c.out, c.threads};
  for (auto& grp : rc.in) {
    if (infer_only) break;  // dims are the same in any layout
    for (const RTensor*& t : grp) {
      if (t && t->layout) {
        plain.emplace_back();
        if (plain.size() > 16) op_fail("oneDNN backend: too many blocked inputs");
        to_plain(*t, &plain.back());
        t = &plain.back();
      }
    }
  }
  if (infer_only)
    ref.def->infer(rc);
  else
    ref.def->run(rc);
}

void set_output_as_input(RunCtx& c, const SrcDstEntry& e) {
  set_output_md(c.output(0), c.input(0)->dims, e.md);
}

void execute_src_dst(RunCtx& c, const SrcDstEntry& e) {
  execute(e.prim, e.scratch,
          {{DNNL_ARG_SRC, mem_of(*c.input(0), e.md)}, {DNNL_ARG_DST, mem_of(*c.output(0), e.md)}});
}

}  // namespace dnnl_backend
}  // namespace pif
