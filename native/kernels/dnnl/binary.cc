// Elementwise add / subtract / multiply / divide / max / min on oneDNN's
// binary primitive with Paddle's broadcasting (legacy `axis` alignment or
// NumPy). The first operand keeps its layout (e.g. the SE block's x * scale
// on nChw8c); shapes oneDNN cannot broadcast use the reference kernel.
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct BinEntry : EntryBase {
  bool swapped = false;  // operands exchanged (commutative op, x broadcast)
  dnnl::primitive prim;
  memory::desc a, b, dst, scratch;
  memory::desc a_have, b_have;  // layouts as they arrive (reordered when different)
  std::vector<int64_t> out_dims;
};

using BinNode = KernelNode<BinEntry, BinState>;

// `small` aligned to rank r as Paddle does; empty when it cannot be.
std::vector<int64_t> aligned(const std::vector<int64_t>& small, size_t r, int64_t axis) {
  if (small.size() == r) return small;
  if (small.size() > r) return {};
  std::vector<int64_t> out(r, 1);
  if (axis < 0) {
    std::copy(small.begin(), small.end(), out.begin() + static_cast<int64_t>(r - small.size()));
    return out;
  }
  std::vector<int64_t> s = small;
  while (!s.empty() && axis + static_cast<int64_t>(s.size()) > static_cast<int64_t>(r) &&
         s.back() == 1)
    s.pop_back();
  if (axis + static_cast<int64_t>(s.size()) > static_cast<int64_t>(r)) return {};
  std::copy(s.begin(), s.end(), out.begin() + axis);
  return out;
}

dnnl::algorithm alg_of(BinKind k, bool* ok) {
  *ok = true;
  switch (k) {
    case BinKind::Add: return dnnl::algorithm::binary_add;
    case BinKind::Sub: return dnnl::algorithm::binary_sub;
    case BinKind::Mul: return dnnl::algorithm::binary_mul;
    case BinKind::Div: return dnnl::algorithm::binary_div;
    case BinKind::Max: return dnnl::algorithm::binary_max;
    case BinKind::Min: return dnnl::algorithm::binary_min;
    default: *ok = false; return dnnl::algorithm::binary_add;
  }
}

BinEntry make_entry(const BinNode& n, const RTensor& x, const RTensor& y) {
  BinEntry e;
  bool ok;
  dnnl::algorithm alg = alg_of(n.attrs.kind, &ok);
  if (!ok || x.dims.empty() || y.dims.empty()) {
    e.use_ref("no oneDNN binary algorithm for this op, or a scalar operand");
    return e;
  }
  bool commutative = n.attrs.kind == BinKind::Add || n.attrs.kind == BinKind::Mul ||
                     n.attrs.kind == BinKind::Max || n.attrs.kind == BinKind::Min;
  const RTensor* a = &x;
  const RTensor* b = &y;
  size_t r = std::max(x.dims.size(), y.dims.size());
  std::vector<int64_t> ad = x.dims.size() == r ? x.dims : aligned(x.dims, r, n.attrs.axis);
  std::vector<int64_t> bd = y.dims.size() == r ? y.dims : aligned(y.dims, r, n.attrs.axis);
  if (ad.empty() || bd.empty() || r > 6) {
    e.use_ref("rank above 6 or operands that do not align");
    return e;
  }
  // oneDNN broadcasts only the second operand.
  bool b_fits = true, a_fits = true;
  for (size_t i = 0; i < r; ++i) {
    if (bd[i] != ad[i] && bd[i] != 1) b_fits = false;
    if (ad[i] != bd[i] && ad[i] != 1) a_fits = false;
  }
  if (!b_fits) {
    if (!a_fits || !commutative) {
      e.use_ref(
          "the first operand would need broadcasting (oneDNN broadcasts only the second) and the "
          "op is not commutative");
      return e;
    }
    std::swap(a, b);
    std::swap(ad, bd);
    e.swapped = true;
  }
  // Operands whose rank changed are plain; blocked operands keep their layout.
  auto md_for = [&](const RTensor* t, const std::vector<int64_t>& d) -> memory::desc {
    if (t->dims.size() == d.size()) return md_of(*t);
    if (t->layout) return memory::desc();
    return memory::desc(to_dims(d), dt::f32, plain_tag(d.size()));
  };
  e.a = md_for(a, ad);
  e.b = md_for(b, bd);
  if (e.a.is_zero() || e.b.is_zero() || a->dtype != DType::Float32 || b->dtype != DType::Float32 ||
      a->numel() == 0 || b->numel() == 0) {
    e.use_ref("zero-size or non-float32 operand");
    return e;
  }
  e.a_have = e.a;
  e.b_have = e.b;
  e.out_dims = ad;
  // oneDNN's jit binary kernels want the operands in one layout family and
  // do not divide by a channel-padded blocked operand; other combinations fall
  // to its slow reference implementation. Candidates in order of preference:
  //  1. a blocked: b in a's blocking when b has a's channels (or is
  //     per-channel), plain when b broadcasts over channels;
  //     a plain, b blocked with a's dims: a into b's blocking;
  //  2. both plain (dst plain).
  auto family_of = [&](const memory::desc& m, const std::vector<int64_t>& d, tag* out) {
    for (tag t : {tag::aBcd8b, tag::aBcd16b, tag::acdb}) {
      if (m == memory::desc(to_dims(d), dt::f32, t)) {
        *out = t;
        return true;
      }
    }
    return false;
  };
  auto plain = [&](const std::vector<int64_t>& d) {
    return memory::desc(to_dims(d), dt::f32, plain_tag(d.size()));
  };
  std::vector<std::pair<memory::desc, memory::desc>> candidates;
  tag fam;
  if (r == 4 && !is_plain(e.a) && family_of(e.a, ad, &fam)) {
    bool b_channels = bd[1] == ad[1];
    candidates.emplace_back(e.a, b_channels ? memory::desc(to_dims(bd), dt::f32, fam) : plain(bd));
  } else if (r == 4 && is_plain(e.a) && !is_plain(e.b) && bd == ad && family_of(e.b, bd, &fam)) {
    candidates.emplace_back(memory::desc(to_dims(ad), dt::f32, fam), e.b);
  } else {
    candidates.emplace_back(e.a, e.b);
  }
  candidates.emplace_back(plain(ad), plain(bd));
  bool made = false;
  for (size_t k = 0; k < candidates.size() && !made; ++k) {
    dnnl::binary::primitive_desc pd;
    const memory::desc& a_md = candidates[k].first;
    const memory::desc& b_md = candidates[k].second;
    if (!make_primitive<dnnl::binary>([&] { return dnnl::binary::desc(alg, a_md, b_md, a_md); },
                                      &e.prim, &e.scratch, &pd))
      continue;
    bool last = k + 1 == candidates.size();
    if (!last && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) continue;
    e.a = a_md;
    e.b = b_md;
    e.dst = e.a;
    made = true;
  }
  if (!made) e.use_ref("oneDNN refused every operand layout");
  return e;
}

std::shared_ptr<const BinEntry> entry_for(const RunCtx& c) {
  const BinNode& n = c.node.attrs<BinNode>();
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& y = need_input(c, 1, "Y");
  if (x.dtype != DType::Float32 || y.dtype != DType::Float32) {
    static const auto ref = ref_entry<BinEntry>("a non-float32 operand");
    return ref;
  }
  return n.cache.get(
      {md_of(x), md_of(y)}, [&] { return make_entry(n, x, y); }, n.ref.log.get());
}

void set_out(RunCtx& c, const BinEntry& e) { set_output_md(c.output(0), e.out_dims, e.dst); }

void exec(RunCtx& c, const BinEntry& e) {
  const RTensor* a = c.input(0);
  const RTensor* b = c.input(1);
  if (e.swapped) std::swap(a, b);
  std::shared_ptr<void> a_tmp, b_tmp;
  void* a_data = a->data;
  void* b_data = b->data;
  if (e.a_have != e.a) {
    a_tmp = reorder_to(*a, e.a_have, e.a);
    a_data = a_tmp.get();
  }
  if (e.b_have != e.b) {
    b_tmp = reorder_to(*b, e.b_have, e.b);
    b_data = b_tmp.get();
  }
  execute(e.prim, e.scratch,
          {{DNNL_ARG_SRC_0, memory(e.a, engine(), a_data)},
           {DNNL_ARG_SRC_1, memory(e.b, engine(), b_data)},
           {DNNL_ARG_DST, mem_of(*c.output(0), e.dst)}});
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_binary(std::vector<DnnlBinding>* t) {
  using namespace dnnl_backend;
  t->push_back({{"add", "subtract", "multiply", "divide", "maximum", "minimum"},
                nullptr,
                [](const DnnlBindCtx& b, RefFallback ref) {
                  return make_kernel_node<BinNode>(b.node.attrs<BinState>(), std::move(ref));
                },
                []() -> const OpDef& {
                  return kernel_def<BinNode, BinEntry, entry_for, set_out, exec>("dnnl.binary");
                }});
}

}  // namespace pif
