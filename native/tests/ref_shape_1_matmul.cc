// Randomised checks of the reference matmul / softmax / reshape / transpose / flatten / squeeze ops
// against naive implementations (ref_shape.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/ref_shape.h"

namespace pif::test {
namespace {

// A matmul operand's dims: its batch dims, then [outer, K] for x or [K, outer] for y, swapped
// when transposed; a 1-D operand is [K].
std::vector<int64_t> operand_dims(std::vector<int64_t> batch, int rank, int64_t outer, int64_t K,
                                  bool is_y, bool trans) {
  if (rank == 1) return {K};
  bool k_first = is_y != trans;
  batch.push_back(k_first ? K : outer);
  batch.push_back(k_first ? outer : K);
  return batch;
}

PIF_TEST(ref_shape, matmul) {
  for (int t = 0; t < 80; ++t) {
    bool pir = t % 2;
    int xr = static_cast<int>(ri(1, 4)), yr = static_cast<int>(ri(1, 4));
    if (t % 7 == 0) yr = 2;  // fold path
    int64_t M = ri(1, 13), N = ri(1, 13), K = ri(1, 40);
    bool tx = coin(), ty = coin();
    int br = std::max(xr, yr) - 2;
    std::vector<int64_t> ob = rand_dims(std::max(br, 0), 1, 4);
    auto batch_for = [&](int r) {
      std::vector<int64_t> b;
      for (int i = 0; i < r - 2; ++i) {
        int64_t d = ob[ob.size() - (r - 2) + i];
        b.push_back(coin(0.25) ? 1 : d);
      }
      return b;
    };
    std::vector<int64_t> xd = batch_for(xr), yd = batch_for(yr);
    xd = operand_dims(xd, xr, M, K, false, tx);
    yd = operand_dims(yd, yr, N, K, true, ty);
    HT x = rand_t(xd), y = rand_t(yd);
    G g(pir);
    ValueId a = g.input(x), b = coin(0.3) ? g.cst(y) : g.input(y), o = g.val();
    if (pir)
      g.op("pd_op.matmul", {{"", {a}}, {"", {b}}}, {{"", {o}}},
           {{"transpose_x", attr_bool(tx)}, {"transpose_y", attr_bool(ty)}});
    else
      g.op("matmul_v2", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}},
           {{"trans_x", attr_bool(tx)}, {"trans_y", attr_bool(ty)}});
    g.output(o);
    run_case(pir ? "pd_op.matmul" : "matmul_v2",
             "x" + dims_str(xd) + " y" + dims_str(yd) + (tx ? " tx" : "") + (ty ? " ty" : ""), g,
             {ref_matmul(x, y, tx, ty, 1.0, !pir)}, 1e-4);
  }
  // Old matmul with alpha; legacy 1-D . 1-D is [1] (or 0-D when declared so).
  for (int t = 0; t < 30; ++t) {
    int xr = static_cast<int>(ri(1, 3)), yr = static_cast<int>(ri(1, 3));
    if (t < 3) xr = yr = 1;
    int64_t M = ri(1, 9), N = ri(1, 9), K = ri(1, 20);
    bool tx = coin(), ty = coin();
    std::vector<int64_t> ob = rand_dims(std::max(xr, yr) - 2 > 0 ? std::max(xr, yr) - 2 : 0, 1, 3);
    std::vector<int64_t> xd, yd;
    for (int i = 0; i < xr - 2; ++i) xd.push_back(ob[ob.size() - (xr - 2) + i]);
    for (int i = 0; i < yr - 2; ++i) yd.push_back(ob[ob.size() - (yr - 2) + i]);
    xd = operand_dims(xd, xr, M, K, false, tx);
    yd = operand_dims(yd, yr, N, K, true, ty);
    HT x = rand_t(xd), y = rand_t(yd);
    double alpha = rf(-2, 2);
    G g(false);
    ValueId a = g.input(x), b = g.input(y), o = g.val();
    bool decl0 = t == 1;
    if (decl0) g.declare(o, DType::Float32, {});
    g.op("matmul", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}},
         {{"transpose_X", attr_bool(tx)},
          {"transpose_Y", attr_bool(ty)},
          {"alpha", attr_float(alpha)}});
    g.output(o);
    HT want = ref_matmul(x, y, tx, ty, static_cast<float>(alpha), !decl0);
    run_case("matmul(v1)", "x" + dims_str(xd) + " y" + dims_str(yd), g, {want}, 1e-4);
  }
  // mul.
  for (int t = 0; t < 30; ++t) {
    int xr = static_cast<int>(ri(2, 4)), yr = static_cast<int>(ri(2, 3));
    int64_t xn = ri(1, xr - 1), yn = ri(1, yr - 1);
    std::vector<int64_t> xd = rand_dims(xr, 1, 4), yd = rand_dims(yr, 1, 4);
    // Make the K sides agree: Y's leading dims = X's trailing dims product.
    int64_t K = prod(std::vector<int64_t>(xd.begin() + xn, xd.end()));
    std::vector<int64_t> ylead(static_cast<size_t>(yn), 1);
    ylead[0] = K;
    std::vector<int64_t> yd2 = ylead;
    yd2.insert(yd2.end(), yd.begin() + yn, yd.end());
    HT x = rand_t(xd), y = rand_t(yd2);
    G g(false);
    ValueId a = g.input(x), b = g.cst(y), o = g.val();
    g.op("mul", {{"X", {a}}, {"Y", {b}}}, {{"Out", {o}}},
         {{"x_num_col_dims", attr_int(xn)}, {"y_num_col_dims", attr_int(yn)}});
    g.output(o);
    int64_t M = prod(std::vector<int64_t>(xd.begin(), xd.begin() + xn));
    int64_t N = prod(std::vector<int64_t>(yd2.begin() + yn, yd2.end()));
    HT want = ref_matmul(with_dims(x, {M, K}), with_dims(y, {K, N}), false, false, 1.0, true);
    std::vector<int64_t> od(xd.begin(), xd.begin() + xn);
    od.insert(od.end(), yd2.begin() + yn, yd2.end());
    want.dims = od;
    run_case("mul",
             "x" + dims_str(xd) + " y" + dims_str(yd2) + " xn=" + std::to_string(xn) +
                 " yn=" + std::to_string(yn),
             g, {want}, 1e-4);
  }
  // mismatched K must fail cleanly
  expect_op_error("matmul_v2", "K mismatch", [](G& g) -> Slots {
    ValueId a = g.input(rand_t({2, 3}));
    return {{"X", {a}}, {"Y", {g.input(rand_t({4, 5}))}}};
  });
}

PIF_TEST(ref_shape, softmax) {
  for (int t = 0; t < 50; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(0, 4));
    auto d = rand_dims(r, 1, 7);
    if (t % 10 == 3) {
      d = {3, 1000};
      r = 2;
    }
    HT x = rand_t(d, DType::Float32, t % 5 == 0 ? 80.0 : 3.0);  // large logits: stability
    int64_t axis = r ? ri(-r, r - 1) : -1;
    if (t % 3 == 0) axis = -1;
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    g.op(pir ? "pd_op.softmax" : "softmax", {{"X", {a}}}, {{"Out", {o}}},
         {{"axis", attr_int(axis)}});
    g.output(o);
    run_case(pir ? "pd_op.softmax" : "softmax", dims_str(d) + " axis " + std::to_string(axis), g,
             {ref_softmax(x, axis)}, 1e-5);
  }
}

// A random target shape for `d` using 0 (copy) and -1 (infer).
std::vector<int64_t> rand_reshape_target(const std::vector<int64_t>& d,
                                         std::vector<int64_t>* resolved) {
  // Split the numel into random factors.
  int64_t n = prod(d);
  std::vector<int64_t> out;
  int64_t rem = n;
  int parts = static_cast<int>(ri(1, 4));
  for (int i = 0; i < parts - 1; ++i) {
    std::vector<int64_t> divs;
    for (int64_t k = 1; k <= rem; ++k)
      if (rem % k == 0) divs.push_back(k);
    int64_t f = divs[static_cast<size_t>(ri(0, static_cast<int64_t>(divs.size()) - 1))];
    out.push_back(f);
    rem /= f;
  }
  out.push_back(rem);
  *resolved = out;
  std::vector<int64_t> target = out;
  for (size_t i = 0; i < target.size(); ++i)
    if (i < d.size() && d[i] == target[i] && coin(0.4)) target[i] = 0;
  size_t m = static_cast<size_t>(ri(0, static_cast<int64_t>(target.size()) - 1));
  if (coin(0.6) && target[m] != 0) target[m] = -1;
  return target;
}

PIF_TEST(ref_shape, reshape) {
  for (int t = 0; t < 60; ++t) {
    int mode =
        t % 5;  // 0 attr, 1 Shape tensor, 2 ShapeTensor list, 3 PIR const, 4 PIR combine of 0-D
    bool pir = mode >= 3;
    auto d = rand_dims(static_cast<int>(ri(1, 4)), 1, 6);
    std::vector<int64_t> resolved;
    auto target = rand_reshape_target(d, &resolved);
    DType dt = t % 4 == 0 ? DType::Int64 : DType::Float32;
    HT x = rand_t(d, dt);
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    std::string what = dims_str(d) + " -> " + dims_str(target);
    if (mode == 0) {
      g.op("reshape2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"shape", attr_ints(target)}});
    } else if (mode == 1) {
      g.op("reshape2", {{"X", {a}}, {"Shape", {g.input(ints_t(target, DType::Int32))}}},
           {{"Out", {o}}}, {{"shape", attr_ints(std::vector<int64_t>(target.size(), 7))}});
    } else if (mode == 2) {
      std::vector<ValueId> list;
      for (int64_t v : target) list.push_back(g.cst(ints_t({v}, DType::Int32)));
      g.op("reshape2", {{"X", {a}}, {"ShapeTensor", list}}, {{"Out", {o}}},
           {{"shape", attr_ints(std::vector<int64_t>(target.size(), -1))}});
    } else if (mode == 3) {
      g.op("pd_op.reshape", {{"", {a}}, {"", {g.cst(ints_t(target))}}}, {{"", {o}}}, {});
    } else {
      std::vector<ValueId> list;
      for (int64_t v : target) list.push_back(g.input(ints_t({v}, DType::Int64, {})));
      g.op("pd_op.reshape", {{"", {a}}, {"", {g.combine(list)}}}, {{"", {o}}}, {});
    }
    g.output(o);
    run_case(pir ? "pd_op.reshape" : "reshape2", what, g, {with_dims(x, resolved)});
  }
  expect_op_error("reshape2", "bad numel",
                  [](G& g) -> Slots {
                    return {{"X", {g.input(rand_t({2, 3}))}}};
                  },
                  {{"shape", attr_ints({4, -1})}});
}

PIF_TEST(ref_shape, transpose) {
  for (int t = 0; t < 60; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(1, 5));
    auto d = rand_dims(r, 1, 6);
    if (t % 10 == 4) d = {37, 45};
    if (t % 10 == 8) d = {3, 33, 70};
    if (t % 10 == 9) d = {2, 3, 40, 5, 36};
    r = static_cast<int>(d.size());
    DType dts[] = {DType::Float32, DType::Int64, DType::UInt8, DType::Int16};
    DType dt = dts[t % 4];
    HT x = rand_t(d, dt);
    auto perm = rand_perm(static_cast<size_t>(r));
    std::vector<int64_t> perm_attr = perm;
    if (coin(0.3))
      for (auto& p : perm_attr)
        if (coin()) p -= r;  // negative axes
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (pir)
      g.op("pd_op.transpose", {{"", {a}}}, {{"", {o}}}, {{"perm", attr_arr(perm_attr)}});
    else
      g.op("transpose2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"axis", attr_ints(perm_attr)}});
    g.output(o);
    run_case(pir ? "pd_op.transpose" : "transpose2",
             dims_str(d) + " perm " + dims_str(perm) + " " + dtype_name(dt), g,
             {ref_transpose(x, perm)});
  }
}

PIF_TEST(ref_shape, flatten_squeeze) {
  for (int t = 0; t < 40; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(0, 5));
    auto d = rand_dims(r, 1, 4);
    HT x = rand_t(d);
    std::vector<int64_t> od;
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (r == 0) {
      od = {1};
      g.op(pir ? "pd_op.flatten" : "flatten_contiguous_range", {{"X", {a}}}, {{"Out", {o}}},
           {{"start_axis", attr_int(0)}, {"stop_axis", attr_int(-1)}});
    } else {
      int64_t s = ri(0, r - 1), e = ri(s, r - 1);
      od.assign(d.begin(), d.begin() + s);
      od.push_back(prod(std::vector<int64_t>(d.begin() + s, d.begin() + e + 1)));
      od.insert(od.end(), d.begin() + e + 1, d.end());
      int64_t sa = coin() ? s - r : s, ea = coin() ? e - r : e;
      g.op(pir ? "pd_op.flatten" : "flatten_contiguous_range", {{"X", {a}}}, {{"Out", {o}}},
           {{"start_axis", attr_int(sa)}, {"stop_axis", attr_int(ea)}});
    }
    g.output(o);
    run_case(pir ? "pd_op.flatten" : "flatten_contiguous_range", dims_str(d) + "->" + dims_str(od),
             g, {with_dims(x, od)});
  }
  for (int t = 0; t < 20; ++t) {
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 4);
    int64_t axis = ri(0, r);
    HT x = rand_t(d);
    G g(false);
    ValueId a = g.input(x), o = g.val();
    g.op("flatten2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
         {{"axis", attr_int(axis)}});
    g.output(o);
    std::vector<int64_t> od = {prod(std::vector<int64_t>(d.begin(), d.begin() + axis)),
                               prod(std::vector<int64_t>(d.begin() + axis, d.end()))};
    run_case("flatten2", dims_str(d) + " axis " + std::to_string(axis), g, {with_dims(x, od)});
  }
  // squeeze
  for (int t = 0; t < 40; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(1, 5));
    auto d = rand_dims(r, 1, 3);
    if (t % 8 == 0) d = std::vector<int64_t>(static_cast<size_t>(r), 1);  // all ones
    HT x = rand_t(d);
    std::vector<int64_t> axes;
    if (coin(0.8))
      for (int k = 0; k < r; ++k)
        if (coin()) axes.push_back(coin() ? k - r : k);
    std::vector<bool> drop(static_cast<size_t>(r), false);
    if (axes.empty())
      for (int k = 0; k < r; ++k) drop[k] = d[k] == 1;
    for (int64_t a : axes) {
      int64_t k = a < 0 ? a + r : a;
      if (d[k] == 1) drop[k] = true;
    }
    std::vector<int64_t> od;
    for (int k = 0; k < r; ++k)
      if (!drop[k]) od.push_back(d[k]);
    if (od.empty() && !pir) od = {1};
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (pir)
      g.op("pd_op.squeeze", {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}}, {});
    else
      g.op("squeeze2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"axes", attr_ints(axes)}});
    g.output(o);
    run_case(pir ? "pd_op.squeeze" : "squeeze2", dims_str(d) + " axes " + dims_str(axes), g,
             {with_dims(x, od)});
  }
  // unsqueeze: expected dims by inserting sorted normalised positions when
  // the axes are non-negative and distinct (numpy's rule); negative single axes.
  for (int t = 0; t < 40; ++t) {
    int mode = t % 3;  // 0 attr, 1 AxesTensor, 2 PIR operand
    int r = static_cast<int>(ri(0, 4));
    auto d = rand_dims(r, 2, 4);
    HT x = rand_t(d);
    std::vector<int64_t> axes, od;
    if (coin(0.3)) {
      int64_t a = ri(-(r + 1), r);
      axes = {a};
      int64_t p = a < 0 ? a + r + 1 : a;
      od = d;
      od.insert(od.begin() + p, 1);
    } else {
      int n = static_cast<int>(ri(1, 3));
      int total = r + n;
      std::vector<int64_t> pos = rand_perm(static_cast<size_t>(total));
      pos.resize(static_cast<size_t>(n));
      axes = pos;  // distinct final positions, in random order
      std::vector<bool> ins(static_cast<size_t>(total), false);
      for (int64_t p : pos) ins[p] = true;
      // Paddle inserts one at a time; for distinct final positions given in
      // arbitrary order that equals numpy's expand_dims only if applied in
      // ascending order, so sort.
      std::sort(axes.begin(), axes.end());
      size_t k = 0;
      for (int i = 0; i < total; ++i) od.push_back(ins[i] ? 1 : d[k++]);
    }
    G g(mode == 2);
    ValueId a = g.input(x), o = g.val();
    if (mode == 0)
      g.op("unsqueeze2", {{"X", {a}}}, {{"Out", {o}}, {"XShape", {g.val()}}},
           {{"axes", attr_ints(axes)}});
    else if (mode == 1)
      g.op("unsqueeze2", {{"X", {a}}, {"AxesTensor", {g.cst(ints_t(axes, DType::Int32))}}},
           {{"Out", {o}}}, {{"axes", attr_ints({})}});
    else
      g.op("pd_op.unsqueeze", {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}}, {});
    g.output(o);
    run_case(mode == 2 ? "pd_op.unsqueeze" : "unsqueeze2", dims_str(d) + " axes " + dims_str(axes),
             g, {with_dims(x, od)});
  }
}

}  // namespace
}  // namespace pif::test
