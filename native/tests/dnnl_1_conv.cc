// The dnnl suite: convolution, squeeze-and-excitation and pooling cases (dnnl.h describes the
// checks).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/dnnl.h"

namespace pif::test {
namespace {

void gen_conv(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  ConvSpec s;
  random_channels(r, &s);
  // Residual source: 0 none, 1 the conv input, 2 a graph input, 3 a shortcut
  // conv before the main one, 4 a shortcut conv after the main chain.
  int res = static_cast<int>(r.i(0, 4));
  // Canonical configurations (8/16 channels, 3x3 pad 1 or 1x1, no dilation,
  // plain or depthwise, blocked residual) have jit kernels on every x86 CPU:
  // there the oneDNN convolution must run. A plain-layout residual (graph
  // input) makes the destination plain, which oneDNN's jit kernels lack.
  bool canonical = r.b(0.3);
  if (canonical) {
    s = ConvSpec();
    s.C = r.b() ? 8 : 16;
    s.OC = r.b() ? 8 : 16;
    if (r.b(0.3)) s.G = s.OC = s.C, s.dw_type = r.b();
    res = r.pick(std::vector<int>{0, 3, 4});
  }
  // Now and then a bigger canonical problem (channel blocks, spatial tails,
  // threading).
  bool big = canonical && r.b(0.15);
  if (big) {
    s.C = r.pick(std::vector<int64_t>{24, 32});
    s.OC = s.G > 1 ? s.C : r.pick(std::vector<int64_t>{16, 40});
    if (s.G > 1) s.G = s.C;
  }
  int fast = canonical ? 1 : -1;
  if (res == 1) s.OC = s.C;  // shape-preserving conv
  int64_t N = big ? r.i(1, 2) : r.i(1, 3), H, W, OH, OW;
  for (;;) {
    random_geometry(r, &s);
    if (canonical) {
      s.KH = s.KW = r.b(0.6) ? 3 : 1;
      s.sh = s.sw = s.G > 1 && r.b(0.3) ? 2 : 1;
      s.dh = s.dw = 1;
      s.pads = s.KH == 3 ? std::vector<int64_t>{1, 1} : std::vector<int64_t>{0, 0};
      s.algo = "EXPLICIT";
      if (s.KH == 1 && s.G > 1) s.KH = s.KW = 3, s.pads = {1, 1};
    }
    if (res == 1) {
      s.sh = s.sw = 1;
      if (s.algo == "VALID") s.algo = "SAME";
      if (s.algo == "EXPLICIT") s.pads = {s.dh * (s.KH - 1) / 2, s.dw * (s.KW - 1) / 2};
    }
    H = big ? r.i(17, 41) : r.i(1, 15);
    W = big ? r.i(17, 41) : r.i(1, 15);
    conv_out_hw(s, H, W, &OH, &OW);
    if (OH >= 1 && OW >= 1) break;
  }
  if (res == 1 && (s.OC != s.C || OH != H || OW != W)) res = 2;
  // On tiny planes (a 3x3 kernel over a 1x1 or 2x2 input) oneDNN picks its
  // GEMM convolution, which the backend leaves to the reference kernel.
  if (canonical && s.KH == 3 && (H < 3 || W < 3)) fast = -1;
  bool nhwc = !canonical && r.b(0.04), filter_feed = !canonical && !nhwc && r.b(0.04);
  // Before activations: 0 none, 1 bn, 2 bias, 3 bias + bn, 4 bn + bias (bias not fusable).
  int pre = static_cast<int>(r.i(0, 9));
  pre = pre < 2 ? 0 : pre < 5 ? 1 : pre < 8 ? 2 : pre < 9 ? 3 : 4;
  bool legacy_bias = !c.g.pir() && (pre == 0 || pre == 1) && r.b(0.15);
  int nact = static_cast<int>(r.i(0, 2));
  std::vector<Act> acts;
  for (int k = 0; k < nact; ++k) {
    acts.push_back(r.b(0.85) ? random_post_act(r, g.pir()) : random_any_act(r, g.pir()));
    if (k && acts[k].name == "exp" && acts[k - 1].name == "exp") acts[k] = act("tanh");  // inf
  }
  int nact2 = res ? static_cast<int>(r.i(0, 1)) : 0;
  if (nhwc || filter_feed) pre = 0, res = 0, nact2 = 0;
  // Fetch one intermediate value (the ops after it must not fuse into it).
  int npos = (pre == 0 ? 0 : pre <= 2 ? 1 : 2) + nact;
  int fetch_at = npos > 0 && r.b(0.1) ? static_cast<int>(r.i(0, npos - 1)) : -1;
  int pos = 0;

  T x = g.feed(nhwc ? std::vector<int64_t>{N, H, W, s.C} : std::vector<int64_t>{N, s.C, H, W});
  c.d << "x" << dims_str(x.dims) << " ";
  Chain sc;
  if (res == 3) {
    sc = b.conv(x, s, fast);
    if (r.b()) b.batch_norm(sc);
    c.d << " ; ";
  }
  Chain ch = b.conv(x, s, fast, legacy_bias, filter_feed, nhwc);
  if (pre == 1) b.batch_norm(ch, fetch_at == pos++);
  if (pre == 2) b.bias(ch, fetch_at == pos++);
  if (pre == 3) {
    b.bias(ch, fetch_at == pos++);
    b.batch_norm(ch, fetch_at == pos++);
  }
  if (pre == 4) {
    b.batch_norm(ch, fetch_at == pos++);
    b.bias(ch, fetch_at == pos++);
  }
  for (const Act& a : acts) b.unary(ch, a, fetch_at == pos++);
  if (res == 1) b.residual(ch, x, nullptr, "input");
  if (res == 2) b.residual(ch, g.feed(ch.cur.dims), nullptr, "graph input");
  if (res == 3) b.residual(ch, sc.cur, nullptr, "earlier conv");
  if (res == 4) {
    c.d << " ; ";
    // The residual input (the main chain's value) keeps the conv's blocked
    // layout only when everything after the main conv fused into it.
    Chain later = b.conv(x, s, ch.open ? fast : -1);
    if (r.b()) b.batch_norm(later);
    b.residual(ch, later.cur, &later, "later conv");
  }
  b.relus_and_finish(ch, nact2);
}

// Squeeze-and-excitation: pool -> 1x1 conv + bias -> relu -> 1x1 conv + bias
// -> sigmoid -> multiply with the block input (a graph input or a conv block).
void gen_se(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  int64_t N = r.i(1, 2), C = r.pick(std::vector<int64_t>{4, 6, 8, 12, 16}), H = r.i(1, 12),
          W = r.i(1, 12);
  int64_t Cr = r.b(0.7) ? std::max<int64_t>(1, C / 4) : r.i(1, C);
  T x;
  if (r.b(0.6)) {  // conv + bn + activation block (blocked layout)
    ConvSpec s;
    s.C = r.pick(std::vector<int64_t>{3, 4, 8});
    s.OC = C;
    s.KH = s.KW = 3;
    s.pads = {1, 1};
    if (r.b(0.3)) {  // depthwise, as in MobileNetV3
      s.C = C;
      s.G = C;
      s.dw_type = r.b();
    }
    T in = g.feed({N, s.C, H, W});
    c.d << "x" << dims_str(in.dims) << " ";
    Chain ch = b.conv(in, s);
    b.batch_norm(ch);
    b.unary(ch, r.b() ? act("relu") : act("hard_swish", 6, 6, 3));
    x = ch.cur;
    c.d << " ; ";
  } else {
    x = g.feed({N, C, H, W});
    c.d << "x" << dims_str(x.dims) << " ";
  }
  PoolSpec ps;
  ps.is_max = false;
  if (r.b(0.7)) {
    ps.adaptive = true;
    ps.kh = ps.kw = 1;
  } else {
    ps.global = true;
    ps.kh = x.dims[2];
    ps.kw = x.dims[3];
  }
  ps.sh = ps.sw = 1;
  T p = emit_pool(g, x, ps);
  c.want.push_back(Want{"pool2d", "dnnl.pool2d", 1, "pooling"});
  c.d << ps.desc();
  ConvSpec s1;
  s1.C = C;
  s1.OC = Cr;
  Chain c1 = b.conv(p, s1);
  b.bias(c1);
  b.unary(c1, act("relu"));
  ConvSpec s2;
  s2.C = Cr;
  s2.OC = C;
  c.d << " ; ";
  Chain c2 = b.conv(c1.cur, s2);
  b.bias(c2);
  b.unary(c2, r.b(0.85) ? act("sigmoid") : act("hard_sigmoid", 1.0 / 6, 0.5));
  bool swap = r.b(0.3);
  T y = swap ? emit_binary(g, "multiply", c2.cur, x, x.dims)
             : emit_binary(g, "multiply", x, c2.cur, x.dims);
  c.want.push_back(w_binary("multiply", 1));
  c.d << " | multiply" << (swap ? "(scale, x)" : "(x, scale)");
  g.fetch(y);
}

// pool2d on a graph input (plain layout) or after a conv (blocked layout).
void gen_pool(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  PoolSpec s;
  int64_t N = r.i(1, 3), C = r.pick(std::vector<int64_t>{1, 2, 3, 5, 8, 12, 16}), H, W, OH, OW;
  bool after_conv = r.b(0.5);
  s.nhwc = !after_conv && r.b(0.05);
  for (;;) {
    H = r.i(1, 15);
    W = r.i(1, 15);
    s.is_max = r.b();
    double u = r.u(0, 1);
    s.adaptive = u < 0.25;
    s.global = !s.adaptive && u < 0.35;
    s.exclusive = r.b(0.6);
    s.ceil_mode = r.b(0.3);
    s.kh = r.i(1, 5);
    s.kw = r.b(0.8) ? s.kh : r.i(1, 5);
    s.sh = r.i(1, 3);
    s.sw = r.b(0.8) ? s.sh : r.i(1, 3);
    if (s.adaptive) {
      if (r.b(0.5)) {
        s.kh = s.kw = 1;
      } else {
        s.kh = r.i(1, H + 2);
        s.kw = r.i(1, W + 2);
      }
    }
    if (r.b(0.6))
      s.pads = {r.i(0, 2), r.i(0, 2)};
    else
      s.pads = {r.i(0, 2), r.i(0, 2), r.i(0, 2), r.i(0, 2)};
    double v = r.u(0, 1);
    s.algo = v < 0.7 ? "EXPLICIT" : (v < 0.85 ? "SAME" : "VALID");
    s.ksize_feed = g.pir() && !after_conv && r.b(0.1);
    pool_out_hw(s, H, W, &OH, &OW);
    if (OH >= 1 && OW >= 1) break;
  }
  T x;
  if (after_conv) {
    ConvSpec cs;
    cs.C = r.pick(std::vector<int64_t>{1, 3, 4});
    cs.OC = C;
    if (r.b()) {
      cs.KH = cs.KW = 3;
      cs.pads = {1, 1};
    }
    T in = g.feed({N, cs.C, H, W});
    c.d << "x" << dims_str(in.dims) << " ";
    Chain ch = b.conv(in, cs);
    if (r.b()) b.unary(ch, act("relu"));
    x = ch.cur;
    c.d << " ; ";
  } else {
    x = g.feed(s.nhwc ? std::vector<int64_t>{N, H, W, C} : std::vector<int64_t>{N, C, H, W}, -2, 2);
    c.d << "x" << dims_str(x.dims) << " ";
  }
  T y = emit_pool(g, x, s);
  c.d << s.desc() << " -> " << dims_str(y.dims);
  bool empty_window = false;
  if (s.is_max && !s.nhwc && !s.global && !s.adaptive) {
    // A window entirely past the bottom/right edge (ceil_mode overhang, or
    // padding wider than the kernel) is empty. For max pooling the reference
    // kernel writes 0; the oneDNN path (taken when it can express the
    // padding) gives -FLT_MAX, as Paddle's own CPU kernel does. (Average
    // pooling gives 0 in both.)
    int64_t pt, pb, pl, pr;
    if (s.pads.size() == 2) {
      pt = pb = s.pads[0];
      pl = pr = s.pads[1];
    } else {
      pt = s.pads[0], pb = s.pads[1], pl = s.pads[2], pr = s.pads[3];
    }
    if (s.algo == "SAME") {
      same_pad(H, s.sh, s.kh, &pt, &pb);
      same_pad(W, s.sw, s.kw, &pl, &pr);
    }
    if (s.algo == "VALID") pt = pb = pl = pr = 0;
    int64_t need_b = (OH - 1) * s.sh + s.kh - H - pt, need_r = (OW - 1) * s.sw + s.kw - W - pl;
    bool dnnl_path = need_b >= 0 && need_r >= 0 && pt < s.kh && pl < s.kw;
    bool empty = (OH - 1) * s.sh - pt >= H || (OW - 1) * s.sw - pl >= W;
    // A window wholly in the padding: oneDNN's max pooling would give
    // -FLT_MAX there, the reference kernel 0; the backend uses the reference.
    if (dnnl_path && empty) empty_window = true;
  }
  // oneDNN: global / adaptive 1x1 and windowed pooling; other adaptive sizes
  // and NHWC use the reference kernel. Windowed geometries whose padding
  // oneDNN cannot express fall back too (counted, not required).
  int fast = s.nhwc                                               ? 0
             : s.global || (s.adaptive && s.kh == 1 && s.kw == 1) ? 1
             : s.adaptive || empty_window                         ? 0
                                                                  : -1;
  c.want.push_back(Want{"pool2d", "dnnl.pool2d", fast, "pooling"});
  g.fetch(y);
}

// Random batch dims for a batched product: out batch dims, and the x / y
// batch dims (broadcast: 1s, or fewer leading dims).

}  // namespace

PIF_TEST(dnnl, conv) { run_family("conv", gen_conv); }
PIF_TEST(dnnl, se) { run_family("se", gen_se); }
PIF_TEST(dnnl, pool) { run_family("pool", gen_pool); }

}  // namespace pif::test
