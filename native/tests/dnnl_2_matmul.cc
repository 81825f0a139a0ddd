// The dnnl suite: matmul and attention cases (dnnl.h describes the checks).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/dnnl.h"

namespace pif::test {
namespace {

void random_batch(Rng& r, std::vector<int64_t>* xb, std::vector<int64_t>* yb) {
  int nb = static_cast<int>(r.i(1, 2));
  std::vector<int64_t> ob;
  for (int k = 0; k < nb; ++k) ob.push_back(r.i(1, 3));
  *xb = ob;
  *yb = ob;
  if (r.b(0.5)) {  // broadcast
    for (int k = 0; k < nb; ++k) {
      if (r.b(0.4))
        (*xb)[k] = 1;
      else if (r.b(0.4))
        (*yb)[k] = 1;
    }
    if (r.b(0.25))
      yb->erase(yb->begin());
    else if (r.b(0.25))
      xb->erase(xb->begin());
  }
}

// matmul_v2 / pd_op.matmul (and the old matmul with alpha), then bias,
// activations, a residual add and an activation after it.
void gen_matmul(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  bool pir = g.pir();
  int64_t M = r.i(1, 12), K = r.pick(std::vector<int64_t>{1, 3, 8, 16, 17, 32}),
          N = r.pick(std::vector<int64_t>{1, 4, 5, 8, 16, 24});
  if (r.b(0.2)) K = N;  // allows the input as residual
  if (r.b(0.08)) {      // a bigger product (blocking, threading)
    M = r.i(30, 100);
    K = r.pick(std::vector<int64_t>{64, 96, 128});
    N = r.pick(std::vector<int64_t>{48, 96, 128});
  }
  // Pattern: 0 2-D x 2-D, 1 3-D x 2-D (linear layer), 2 batched, 3 1-D operand.
  int pat = static_cast<int>(r.i(0, 9));
  pat = pat < 3 ? 0 : pat < 6 ? 1 : pat < 9 ? 2 : 3;
  std::vector<int64_t> xd, yd;  // logical (untransposed) operand shapes
  if (pat == 0) {
    xd = {M, K};
    yd = {K, N};
  } else if (pat == 1) {
    xd = {r.i(1, 3), M, K};
    yd = {K, N};
  } else if (pat == 2) {
    std::vector<int64_t> xb, yb;
    random_batch(r, &xb, &yb);
    xd = xb;
    xd.push_back(M);
    xd.push_back(K);
    yd = yb;
    yd.push_back(K);
    yd.push_back(N);
  } else {
    int k = static_cast<int>(r.i(0, 3));
    xd = k == 0 || k == 2 ? std::vector<int64_t>{K} : std::vector<int64_t>{r.i(1, 3), M, K};
    yd = k == 1 || k == 2 ? std::vector<int64_t>{K} : std::vector<int64_t>{K, N};
    if (k == 3) xd = {K}, yd = {r.i(1, 2), K, N};
  }
  bool y_const = (pat == 0 || pat == 1 || (pat == 3 && yd.size() <= 2)) && r.b(0.75);
  bool v1 = !pir && pat != 3 && r.b(0.15);
  double alpha = v1 && r.b(0.7) ? r.pick(std::vector<double>{0.5, 0.125, 2.0}) : 1.0;
  // Transposes: an attribute, or a transpose op (folded into the product
  // when it swaps the last two axes); the stored operand is transposed.
  auto swap_last = [](std::vector<int64_t> d) {
    if (d.size() >= 2) std::swap(d[d.size() - 1], d[d.size() - 2]);
    return d;
  };
  bool tx = xd.size() >= 2 && r.b(0.2), ty = yd.size() >= 2 && r.b(0.35);
  // 0 attribute only, 1 transpose op feeding X/Y, 2 non-swapping transpose (not folded)
  int yop = yd.size() >= 2 && r.b(0.3) ? (yd.size() >= 3 && r.b(0.3) ? 2 : 1) : 0;
  int xop = xd.size() >= 2 && !yop && r.b(0.15) ? 1 : 0;
  double ka = std::sqrt(3.0 / static_cast<double>(K));

  auto make_operand = [&](const std::vector<int64_t>& logical, bool trans, int op, bool cst,
                          double lo, double hi, bool* attr_trans, bool* still_const,
                          std::string* note) -> T {
    // op 1: the graph holds the transposed tensor; a transpose op restores it
    // and the attribute carries `trans` (the pass toggles it).
    // op 2: a transpose swapping two leading axes (not foldable) in front.
    std::vector<int64_t> stored = trans ? swap_last(logical) : logical;
    *attr_trans = trans;
    *still_const = cst;
    if (op == 0) {
      if (cst) return g.cst(stored, r.vec(prod(stored), lo, hi));
      return g.feed(stored, lo, hi);
    }
    std::vector<int64_t> perm(stored.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    if (op == 1) {
      std::swap(perm[perm.size() - 1], perm[perm.size() - 2]);
    } else {
      std::swap(perm[0], perm[1]);
      *still_const = false;
    }
    std::vector<int64_t> src_dims;
    for (int64_t p : perm) src_dims.push_back(stored[static_cast<size_t>(p)]);
    T src = cst ? g.cst(src_dims, r.vec(prod(src_dims), lo, hi)) : g.feed(src_dims, lo, hi);
    T t = emit_transpose(g, src, perm);
    *note =
        " transpose" + dims_str(perm) + "(" + (cst ? "const" : "input") + dims_str(src_dims) + ")";
    if (op == 2) c.want.push_back(w_ref("transpose"));
    return t;
  };
  bool atx, aty, x_c, y_c;
  std::string xn, yn;
  T x = make_operand(xd, tx, xop, false, -1, 1, &atx, &x_c, &xn);
  T y = make_operand(yd, ty, yop, y_const, -ka, ka, &aty, &y_c, &yn);
  std::vector<int64_t> od = matmul_dims(x.dims, y.dims, atx, aty);
  bool one_d = xd.size() < 2 || yd.size() < 2;
  // Residual source: 0 none, 1 the input X, 2 a graph input, 3 a product before, 4 one after.
  int res = static_cast<int>(r.i(0, 4));
  if (res == 1 && (xop || atx || x.dims != od)) res = 2;
  if ((res == 3 || res == 4) && (one_d || xop)) res = 2;
  if (od.empty()) res = 0;
  bool bias = r.b(0.6) && od.size() >= 2;  // (a [N] bias of a 1-D result is a residual)
  int nact = static_cast<int>(r.i(0, 2));
  std::vector<Act> acts;
  for (int k = 0; k < nact; ++k) {
    double u = r.u(0, 1);
    acts.push_back(u < 0.3   ? act("gelu", 0, 0, 0, r.b(0.3))
                   : u < 0.5 ? act("scale", 0.125, 0, 0, true)
                             : random_post_act(r, pir));
  }
  int nact2 = res && r.b(0.4) ? 1 : 0;
  int npos = (bias ? 1 : 0) + nact;
  int fetch_at = npos > 0 && r.b(0.1) ? static_cast<int>(r.i(0, npos - 1)) : -1;
  int pos = 0;

  c.d << (v1    ? "matmul(alpha " + num(alpha) + ")"
          : pir ? "pd_op.matmul"
                : "matmul_v2")
      << " x" << dims_str(x.dims) << xn << (atx ? "^T" : "") << " y" << (y_const ? "const" : "")
      << dims_str(y.dims) << yn << (aty ? "^T" : "") << " -> " << dims_str(od);
  // oneDNN: 2-D and up; alpha with a bias uses the reference kernel.
  auto mm_fast = [&](bool with_bias) { return one_d || (alpha != 1.0 && with_bias) ? 0 : 1; };
  Chain other;
  T other_x;
  auto other_product = [&]() {
    // Another product of the same shape (same X, fresh constant weights).
    T w = g.cst(y.dims, r.vec(prod(y.dims), -ka, ka));
    Chain o;
    o.cur = emit_matmul(g, x, w, atx, aty);
    o.open = true;
    c.want.push_back(w_fused_mm(xd.size() < 2 ? 0 : 1));
    o.want_index = static_cast<int>(c.want.size()) - 1;
    c.d << " ; matmul x w" << dims_str(w.dims);
    return o;
  };
  if (res == 3) other = other_product();
  Chain ch;
  ch.cur = emit_matmul(g, x, y, atx, aty, v1, alpha);
  ch.open = true;
  if (alpha != 1.0) b.add_post(ch, EltAlg{"linear", static_cast<float>(alpha), 0});
  ch.bias_ok = y_c && yd.size() >= 2 && od.size() >= 2;
  size_t mm_want = c.want.size();
  c.want.push_back(w_fused_mm(mm_fast(false)));
  ch.want_index = static_cast<int>(mm_want);
  if (bias) {
    bool fuses = ch.open && ch.bias_ok;
    b.bias(ch, fetch_at == pos++);
    if (fuses) c.want[mm_want].fast = mm_fast(true);
  }
  for (const Act& a : acts) b.unary(ch, a, fetch_at == pos++);
  if (r.b(0.15)) b.quick_gelu(ch, r.b(0.8));
  if (res == 1) b.residual(ch, x, nullptr, "input");
  if (res == 2) b.residual(ch, g.feed(ch.cur.dims), nullptr, "graph input");
  if (res == 3) b.residual(ch, other.cur, nullptr, "earlier product");
  if (res == 4) {
    Chain later = other_product();
    b.residual(ch, later.cur, &later, "later product");
  }
  b.relus_and_finish(ch, nact2);
}

// Attention: softmax(Q K^T * scale [+ mask]) V [+ residual], and a ViT MLP
// block: layer_norm -> linear + bias -> gelu -> linear + bias -> + input.
void gen_attention(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  bool pir = g.pir();
  if (r.b(0.3)) {
    int64_t B = r.i(1, 2), S = r.i(1, 9), E = r.pick(std::vector<int64_t>{4, 8, 12, 16}),
            F = E * r.i(1, 4);
    T x = g.feed({B, S, E});
    c.d << "vit-mlp x" << dims_str(x.dims) << " | layer_norm";
    bool ln_scale = r.b(0.9), ln_bias = r.b(0.9);
    T h = emit_layer_norm(g, r, x, r.b() ? 2 : -1, ln_scale, ln_bias, 1e-6);
    c.want.push_back(Want{"layer_norm", "dnnl.layer_norm", 1, "layer_normalization"});
    double k1 = std::sqrt(3.0 / static_cast<double>(E)),
           k2 = std::sqrt(3.0 / static_cast<double>(F));
    T w1 = g.cst({E, F}, r.vec(E * F, -k1, k1));
    Chain m1;
    m1.cur = emit_matmul(g, h, w1, false, false);
    m1.open = m1.bias_ok = true;
    c.want.push_back(w_fused_mm(1));
    c.d << " | matmul w1" << dims_str(w1.dims);
    b.bias(m1);
    b.unary(m1, act("gelu", 0, 0, 0, r.b(0.2)));
    T w2 = g.cst({F, E}, r.vec(E * F, -k2, k2));
    Chain m2;
    m2.cur = emit_matmul(g, m1.cur, w2, false, false);
    m2.open = m2.bias_ok = true;
    c.want.push_back(w_fused_mm(1));
    c.d << " | matmul w2" << dims_str(w2.dims);
    b.bias(m2);
    if (r.b(0.3)) b.unary(m2, act("dropout", 0.1));
    b.residual(m2, x, nullptr, "input");
    b.finish(m2);
    return;
  }
  int64_t B = r.i(1, 2), Hh = r.i(1, 3), S = r.i(1, 9),
          D = r.pick(std::vector<int64_t>{1, 4, 5, 8, 16}), Dv = r.b(0.7) ? D : r.i(1, 9);
  int64_t St = r.b(0.8) ? S : r.i(1, 9);  // key/value length
  T q = g.feed({B, Hh, S, D});
  c.d << "q" << dims_str(q.dims);
  // K: [B,H,St,D] with transpose_y, or [B,H,St,D] through a transpose op.
  int kmode = static_cast<int>(r.i(0, 2));  // 0 attr, 1 transpose op, 2 legacy matmul alpha
  if (kmode == 2 && pir) kmode = 0;
  T k = g.feed({B, Hh, St, D});
  Chain s;
  double scale = 1.0 / std::sqrt(static_cast<double>(D));
  if (kmode == 1) {
    T kt = emit_transpose(g, k, {0, 1, 3, 2});
    s.cur = emit_matmul(g, q, kt, false, false);
    c.d << " k" << dims_str(k.dims) << " transpose[0,1,3,2] | matmul";
  } else if (kmode == 2) {
    s.cur = emit_matmul(g, q, k, false, true, true, scale);
    b.add_post(s, EltAlg{"linear", static_cast<float>(scale), 0});
    c.d << " k" << dims_str(k.dims) << " | matmul(transpose_Y, alpha " << num(scale) << ")";
  } else {
    s.cur = emit_matmul(g, q, k, false, true);
    c.d << " k" << dims_str(k.dims) << " | matmul(transpose_y)";
  }
  s.open = true;
  c.want.push_back(w_fused_mm(1));
  if (kmode != 2) b.unary(s, r.b(0.7) ? act("scale", 0.125, 0, 0, true) : act("scale", scale));
  if (r.b(0.3) && (Hh > 1 || S > 1)) {  // (a mask of the scores' shape is a residual)
    T mask = g.feed({B, 1, 1, St}, -2, 0);
    s.cur = emit_binary(g, "add", s.cur, mask, s.cur.dims);
    c.want.push_back(w_binary("add", 1));
    s.open = false;
    c.d << " | +mask" << dims_str(mask.dims);
  }
  int64_t axis = r.b(0.8) ? -1 : 3;
  T p = emit_softmax(g, s.cur, axis);
  c.want.push_back(Want{"softmax", "dnnl.softmax", 1, "softmax"});
  c.d << " | softmax(" << axis << ")";
  T v = g.feed({B, Hh, St, Dv});
  Chain o;
  o.cur = emit_matmul(g, p, v, false, false);
  o.open = true;
  c.want.push_back(w_fused_mm(1));
  c.d << " | matmul v" << dims_str(v.dims);
  if (r.b(0.3)) b.residual(o, g.feed(o.cur.dims), nullptr, "graph input");
  g.fetch(o.cur);
}

}  // namespace

PIF_TEST(dnnl, matmul) { run_family("matmul", gen_matmul); }
PIF_TEST(dnnl, attention) { run_family("attention", gen_attention); }

}  // namespace pif::test
