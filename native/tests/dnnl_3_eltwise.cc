// The dnnl suite: eltwise, binary, softmax and layer_norm cases (dnnl.h describes the checks).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/dnnl.h"

namespace pif::test {
namespace {

std::vector<int64_t> random_dims(Rng& r, int rank, int64_t hi = 7) {
  std::vector<int64_t> d;
  for (int k = 0; k < rank; ++k) d.push_back(r.i(1, hi));
  return d;
}

// Unary ops on a graph input (plain layout): 1-2 in a row.
void gen_eltwise(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  std::vector<int64_t> dims = random_dims(r, static_cast<int>(r.i(1, 4)));
  if (r.b(0.15)) dims = {r.i(1, 2), r.i(17, 40), r.i(17, 40)};  // vector tails
  int n = r.b(0.7) ? 1 : 2;
  std::vector<Act> acts;
  bool positive = r.b(0.3);
  for (int k = 0; k < n; ++k) acts.push_back(random_any_act(r, g.pir(), positive));
  T x = positive ? g.feed(dims, 0.01, 3) : g.feed(dims, -3, 3);
  c.d << "x" << dims_str(dims);
  Chain ch;
  ch.cur = x;
  if (r.b(0.1)) {
    b.quick_gelu(ch, r.b(0.7));
    g.fetch(ch.cur);
    return;
  }
  for (size_t k = 0; k < acts.size(); ++k) b.unary(ch, acts[k], k + 1 == acts.size());
}

// Binary ops with NumPy broadcasting and legacy axis alignment.
void gen_binary(Case& c, Rng& r) {
  Graph& g = c.g;
  bool pir = g.pir();
  static const std::vector<std::string> ops = {"add",    "subtract", "multiply",
                                               "divide", "maximum",  "minimum"};
  std::string op = r.pick(ops);
  bool commutative = op == "add" || op == "multiply" || op == "maximum" || op == "minimum";
  int rank = static_cast<int>(r.i(1, 4));
  if (r.b(0.1)) rank = 5;
  std::vector<int64_t> big = random_dims(r, rank, 6), small;
  int64_t axis = -1;
  // Modes: 0 same shape, 1 NumPy (trailing dims, some 1), 2 legacy axis,
  // 3 both broadcast, 4 scalar [1] / 0-D.
  int mode = static_cast<int>(r.i(0, 9));
  mode = mode < 2 ? 0 : mode < 5 ? 1 : mode < 7 ? 2 : mode < 8 ? 3 : 4;
  if (mode == 2 && pir) mode = 1;
  std::vector<int64_t> a_al, b_al;  // both aligned to the output rank
  if (mode == 0) {
    small = big;
  } else if (mode == 1) {
    int k = static_cast<int>(r.i(1, rank));
    small.assign(big.end() - k, big.end());
    for (int64_t& v : small)
      if (r.b(0.3)) v = 1;
  } else if (mode == 2) {
    int k = static_cast<int>(r.i(1, rank));
    axis = r.i(0, rank - k);
    small.assign(big.begin() + axis, big.begin() + axis + k);
    for (int64_t& v : small)
      if (r.b(0.15)) v = 1;
    // Trailing 1s past the end are trimmed by Paddle's rule.
    if (axis + k == rank && k + 1 < rank && r.b(0.2)) small.push_back(1);
  } else if (mode == 3) {
    small = big;
    for (size_t i = 0; i < big.size(); ++i) {
      if (r.b(0.5))
        big[i] = 1;
      else
        small[i] = 1;
    }
  } else {
    small = r.b() ? std::vector<int64_t>{1} : std::vector<int64_t>{};
  }
  bool x_small = mode != 0 && r.b(0.35);  // X is the broadcast operand
  std::vector<int64_t> xd = x_small ? small : big, yd = x_small ? big : small;
  // Aligned shapes and output (the executor's rules, restated).
  auto align = [&](const std::vector<int64_t>& s, size_t rr) {
    std::vector<int64_t> out(rr, 1), v = s;
    if (axis < 0 || s.size() == rr) {
      std::copy(v.begin(), v.end(), out.begin() + static_cast<int64_t>(rr - v.size()));
      return out;
    }
    while (!v.empty() && axis + static_cast<int64_t>(v.size()) > static_cast<int64_t>(rr) &&
           v.back() == 1)
      v.pop_back();
    std::copy(v.begin(), v.end(), out.begin() + axis);
    return out;
  };
  size_t rr = std::max(xd.size(), yd.size());
  a_al = align(xd, rr);
  b_al = align(yd, rr);
  std::vector<int64_t> od(rr);
  bool a_fits = true, b_fits = true;
  for (size_t i = 0; i < rr; ++i) {
    od[i] = std::max(a_al[i], b_al[i]);
    if (b_al[i] != a_al[i] && b_al[i] != 1) b_fits = false;
    if (a_al[i] != b_al[i] && a_al[i] != 1) a_fits = false;
  }
  bool y_const = r.b(0.3);
  bool div = op == "divide";
  T x = g.feed(xd, -2, 2);
  T y;
  if (y_const) {
    std::vector<float> v = div ? r.vec(prod(yd), 0.5, 2) : r.vec(prod(yd), -2, 2);
    if (div)
      for (float& e : v) e = r.b() ? e : -e;
    y = g.cst(yd, v);
  } else {
    y = div ? g.feed(yd, 0.5, 2, true) : g.feed(yd, -2, 2);
  }
  T o = emit_binary(g, op, x, y, od, axis);
  // oneDNN broadcasts the second operand only (commutative ops swap); 0-D
  // operands use the reference kernel.
  int fast = !xd.empty() && !yd.empty() && (b_fits || (a_fits && commutative)) ? 1 : 0;
  c.want.push_back(w_binary(op, fast));
  c.d << (pir ? "pd_op." : "elementwise ") << op << " x" << dims_str(xd) << " y"
      << (y_const ? "const" : "") << dims_str(yd) << (pir ? "" : " axis=" + std::to_string(axis))
      << " -> " << dims_str(od) << (fast ? "" : " (reference)");
  g.fetch(o);
}

// softmax on a graph input (plain), or after a conv (blocked: reference).
void gen_softmax(Case& c, Rng& r) {
  Builder b(c, r);
  Graph& g = c.g;
  T x;
  int fast = 1;
  if (r.b(0.15)) {
    ConvSpec s;
    s.C = r.i(1, 4);
    s.OC = r.i(1, 16);
    T in = g.feed({r.i(1, 2), s.C, r.i(1, 7), r.i(1, 7)});
    c.d << "x" << dims_str(in.dims) << " ";
    Chain ch = b.conv(in, s);
    x = ch.cur;
    c.d << " | ";
    fast = -1;  // blocked input: reference (plain if oneDNN chose plain)
  } else {
    std::vector<int64_t> dims = random_dims(r, static_cast<int>(r.i(1, 4)), 8);
    if (r.b(0.2)) dims.back() = r.i(30, 200);
    x = g.feed(dims, -4, 4);
    c.d << "x" << dims_str(dims) << " ";
  }
  int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = r.b(0.5) ? -1 : r.i(-rank, rank - 1);
  T y = emit_softmax(g, x, axis);
  c.want.push_back(Want{"softmax", "dnnl.softmax", fast, "softmax"});
  c.d << "softmax(axis " << axis << ")";
  g.fetch(y);
}

void gen_layer_norm(Case& c, Rng& r) {
  Graph& g = c.g;
  int rank = static_cast<int>(r.i(1, 4));
  std::vector<int64_t> dims = random_dims(r, rank, 9);
  if (r.b(0.15)) dims.back() = r.i(60, 300);
  // begin_norm_axis: rank-1 usually, smaller sometimes; 0 (and rank 1) use
  // the reference kernel.
  int64_t axis = rank == 1 ? 0 : r.b(0.6) ? rank - 1 : r.i(0, rank - 1);
  bool neg = r.b(0.2);
  bool scale = r.b(0.8), bias = r.b(0.8);
  double eps = r.pick(std::vector<double>{1e-5, 1e-6, 1e-3});
  int64_t right = 1;
  for (int k = static_cast<int>(axis); k < rank; ++k) right *= dims[static_cast<size_t>(k)];
  // A large mean only over rows long enough to be well conditioned (short
  // rows of nearly equal values amplify float rounding of the mean).
  double off = right >= 8 && r.b(0.2) ? 5.0 : 0.0;
  T x = g.feed(dims, -2 + off, 2 + off);
  T y = emit_layer_norm(g, r, x, neg ? axis - rank : axis, scale, bias, eps);
  c.want.push_back(Want{"layer_norm", "dnnl.layer_norm", axis > 0 ? 1 : 0, "layer_normalization"});
  c.d << "x" << dims_str(dims) << (off ? "+5" : "") << " layer_norm(begin_norm_axis "
      << (neg ? axis - rank : axis) << (scale ? ", scale" : "") << (bias ? ", bias" : "")
      << ", eps " << eps << ")";
  g.fetch(y);
}

}  // namespace

PIF_TEST(dnnl, eltwise) { run_family("eltwise", gen_eltwise); }
PIF_TEST(dnnl, binary) { run_family("binary", gen_binary); }
PIF_TEST(dnnl, softmax) { run_family("softmax", gen_softmax); }
PIF_TEST(dnnl, layer_norm) { run_family("layer_norm", gen_layer_norm); }

}  // namespace pif::test
