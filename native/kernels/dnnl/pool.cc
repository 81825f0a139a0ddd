// pool2d on oneDNN (NCHW in any layout oneDNN chose, e.g. the SE block's
// global average pool on nChw8c): global / adaptive-to-1x1 and windowed
// max / average pooling with Paddle's padding and ceil_mode rules. Other
// adaptive sizes use the reference kernel.
#include "kernels/common/helpers.h"
#include "kernels/dnnl/common.h"

namespace pif {
namespace dnnl_backend {
namespace {

struct PoolEntry : EntryBase {
  dnnl::primitive prim;
  memory::desc dst, scratch;
  std::vector<int64_t> out_dims;
};

using PoolNode = KernelNode<PoolEntry, const PoolState*>;

PoolEntry make_entry(const PoolNode& n, const RunCtx& c) {
  const PoolState& s = *n.attrs;
  const RTensor& x = need_input(c, 0, "X");
  PoolEntry e;
  if (x.dims.size() != 4 || s.nhwc) {
    e.use_ref("not a 4-D NCHW input");
    return e;
  }
  int64_t N = x.dims[0], C = x.dims[1], H = x.dims[2], W = x.dims[3];
  std::vector<int64_t> k = s.ksize;
  if (const RTensor* kt = c.input(1)) k = kt->numel() ? read_ints(*kt) : std::vector<int64_t>{};
  if (k.size() == 1) k.push_back(k[0]);
  int64_t kh, kw, sh = s.sh, sw = s.sw, pt = 0, pb = 0, pl = 0, pr = 0, OH, OW;
  if (s.global || (s.adaptive && k.size() == 2 && k[0] == 1 && k[1] == 1)) {
    kh = H, kw = W, sh = sw = 1, OH = OW = 1;
  } else if (s.adaptive || k.size() != 2) {
    e.use_ref("adaptive pooling to sizes other than 1x1");
    return e;
  } else {
    kh = k[0], kw = k[1];
    ConvState geo;  // pooling pads resolve like convolution pads
    geo.sh = s.sh, geo.sw = s.sw;
    for (int i = 0; i < 4; ++i) geo.pads[i] = s.pads[i];
    geo.algo = s.algo;
    int64_t pads[4], dh, dw;
    conv_resolved_padding(geo, H, W, kh, kw, pads, &dh, &dw);
    pt = pads[0], pb = pads[1], pl = pads[2], pr = pads[3];
    int64_t ch = s.ceil_mode ? sh - 1 : 0, cw = s.ceil_mode ? sw - 1 : 0;
    OH = (H - kh + pt + pb + ch) / sh + 1;
    OW = (W - kw + pl + pr + cw) / sw + 1;
    // The right/bottom padding oneDNN needs to produce that many outputs.
    pb = (OH - 1) * sh + kh - H - pt;
    pr = (OW - 1) * sw + kw - W - pl;
    // A window wholly in the padding is empty: the reference kernel gives 0,
    // oneDNN's max pooling -FLT_MAX. Such geometries use the reference.
    bool empty_window = pt >= kh || pl >= kw || (OH - 1) * sh - pt >= H || (OW - 1) * sw - pl >= W;
    if (pb < 0 || pr < 0 || OH <= 0 || OW <= 0 || empty_window) {
      e.use_ref(
          "a pooling window lies wholly in the padding (oneDNN gives -FLT_MAX there, the reference "
          "0)");
      return e;
    }
  }
  if (N == 0 || C == 0) {
    e.use_ref("empty batch or channels");
    return e;
  }
  e.out_dims = {N, C, OH, OW};
  memory::desc src = md_of(x);
  memory::desc dst({N, C, OH, OW}, dt::f32, tag::any);
  dnnl::algorithm alg = s.is_max ? dnnl::algorithm::pooling_max
                        : (s.exclusive || s.adaptive || s.global)
                            ? dnnl::algorithm::pooling_avg_exclude_padding
                            : dnnl::algorithm::pooling_avg_include_padding;
  dnnl::pooling_forward::primitive_desc pd;
  if (make_primitive<dnnl::pooling_forward>(
          [&] {
            return dnnl::pooling_forward::desc(dnnl::prop_kind::forward_inference, alg, src, dst,
                                               {sh, sw}, {kh, kw}, {pt, pl}, {pb, pr});
          },
          &e.prim, &e.scratch, &pd))
    e.dst = pd.dst_desc();
  else
    e.use_ref("oneDNN: no pooling primitive for this configuration");
  return e;
}

std::shared_ptr<const PoolEntry> entry_for(const RunCtx& c) {
  const PoolNode& n = c.node.attrs<PoolNode>();
  std::vector<memory::desc> key{md_of(need_input(c, 0, "X"))};
  if (const RTensor* kt = c.input(1)) {
    // The kernel-size operand is data: make it part of the key.
    std::vector<int64_t> k = kt->numel() ? read_ints(*kt) : std::vector<int64_t>{};
    key.emplace_back(memory::dims(k.begin(), k.end()).empty() ? memory::dims{1}
                                                              : memory::dims(k.begin(), k.end()),
                     dt::f32, k.size() <= 1 ? tag::a : tag::ab);
  }
  return n.cache.get(
      key, [&] { return make_entry(n, c); }, n.ref.log.get());
}

void set_out(RunCtx& c, const PoolEntry& e) { set_output_md(c.output(0), e.out_dims, e.dst); }

void exec(RunCtx& c, const PoolEntry& e) {
  const RTensor& x = *c.input(0);
  execute(e.prim, e.scratch,
          {{DNNL_ARG_SRC, mem_of(x, md_of(x))}, {DNNL_ARG_DST, mem_of(*c.output(0), e.dst)}});
}

}  // namespace
}  // namespace dnnl_backend

void register_dnnl_pool(std::vector<DnnlBinding>* t) {
  using namespace dnnl_backend;
  t->push_back({{"pool2d"},
                nullptr,
                [](const DnnlBindCtx& b, RefFallback ref) {
                  return make_kernel_node<PoolNode>(&b.node.attrs<PoolState>(), std::move(ref));
                },
                []() -> const OpDef& {
                  return kernel_def<PoolNode, PoolEntry, entry_for, set_out, exec>("dnnl.pool2d");
                }});
}

}  // namespace pif
