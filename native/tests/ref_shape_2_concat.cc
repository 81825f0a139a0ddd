// Randomised checks of the reference concat / split / stack / slice ops against naive
// implementations (ref_shape.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/ref_shape.h"

namespace pif::test {
namespace {

PIF_TEST(ref_shape, concat_split_stack) {
  for (int t = 0; t < 50; ++t) {
    int mode = t % 3;  // 0 legacy attr, 1 legacy AxisTensor, 2 PIR
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 5);
    int64_t axis = ri(-r, r - 1), ax = axis < 0 ? axis + r : axis;
    int n = static_cast<int>(ri(1, 4));
    DType dt = t % 4 == 1 ? DType::Int32 : DType::Float32;
    std::vector<HT> xs;
    for (int i = 0; i < n; ++i) {
      auto di = d;
      di[ax] = ri(0, 4);
      xs.push_back(rand_t(di, dt));
    }
    G g(mode == 2);
    std::vector<ValueId> ins;
    for (auto& x : xs) ins.push_back(g.input(x));
    ValueId o = g.val();
    if (mode == 0)
      g.op("concat", {{"X", ins}}, {{"Out", {o}}}, {{"axis", attr_int(axis)}});
    else if (mode == 1)
      g.op("concat", {{"X", ins}, {"AxisTensor", {g.cst(ints_t({axis}, DType::Int32, {1}))}}},
           {{"Out", {o}}}, {{"axis", attr_int(0)}});
    else
      g.op("pd_op.concat",
           {{"", {g.combine(ins)}}, {"", {g.cst(ints_t({axis}, DType::Int32, {1}))}}}, {{"", {o}}},
           {});
    g.output(o);
    run_case(mode == 2 ? "pd_op.concat" : "concat",
             std::to_string(n) + " x " + dims_str(d) + " axis " + std::to_string(axis), g,
             {ref_concat(xs, axis)});
  }
  // split
  for (int t = 0; t < 50; ++t) {
    int mode = t % 5;  // 0 legacy num, 1 legacy sections(-1), 2 legacy
                       // AxisTensor+SectionsTensorList, 3 PIR split, 4 PIR split_with_num
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 4);
    int64_t axis = ri(-r, r - 1), ax = axis < 0 ? axis + r : axis;
    int n = static_cast<int>(ri(1, 4));
    std::vector<int64_t> sections;
    bool by_num = mode == 0 || mode == 4;
    if (by_num) {
      d[ax] = n * ri(1, 3);
      sections.assign(static_cast<size_t>(n), d[ax] / n);
    } else {
      int64_t tot = 0;
      for (int i = 0; i < n; ++i) {
        sections.push_back(ri(0, 3));
        tot += sections.back();
      }
      d[ax] = tot;
    }
    HT x = rand_t(d);
    std::vector<HT> want;
    int64_t off = 0;
    for (int64_t s : sections) {
      std::vector<int64_t> axes = {ax}, st = {off}, en = {off + s}, stp = {1};
      want.push_back(ref_slice(x, axes, st, en, stp));
      off += s;
    }
    std::vector<int64_t> sec_attr = sections;
    if (mode == 1 && n > 1) sec_attr[static_cast<size_t>(ri(0, n - 1))] = -1;
    G g(mode >= 3);
    ValueId a = g.input(x);
    std::vector<ValueId> outs;
    if (mode < 3) {
      for (int i = 0; i < n; ++i) outs.push_back(g.val());
      if (mode == 0)
        g.op("split", {{"X", {a}}}, {{"Out", outs}},
             {{"num", attr_int(n)}, {"axis", attr_int(axis)}, {"sections", attr_ints({})}});
      else if (mode == 1)
        g.op("split", {{"X", {a}}}, {{"Out", outs}},
             {{"num", attr_int(0)}, {"axis", attr_int(axis)}, {"sections", attr_ints(sec_attr)}});
      else {
        std::vector<ValueId> list;
        for (int64_t s : sections) list.push_back(g.cst(ints_t({s}, DType::Int32)));
        g.op("split",
             {{"X", {a}},
              {"AxisTensor", {g.cst(ints_t({axis}, DType::Int32))}},
              {"SectionsTensorList", list}},
             {{"Out", outs}},
             {{"num", attr_int(0)}, {"axis", attr_int(0)}, {"sections", attr_ints({})}});
      }
    } else {
      ValueId vec = g.val();
      if (mode == 3)
        g.op("pd_op.split",
             {{"", {a}},
              {"", {g.cst(ints_t(sections))}},
              {"", {g.cst(ints_t({axis}, DType::Int32, {1}))}}},
             {{"", {vec}}}, {});
      else
        g.op("pd_op.split_with_num", {{"", {a}}, {"", {g.cst(ints_t({axis}, DType::Int32, {1}))}}},
             {{"", {vec}}}, {{"num", attr_int(n)}});
      outs = g.unpack(vec, static_cast<size_t>(n));
    }
    for (ValueId o : outs) g.output(o);
    const char* name = mode == 3 ? "pd_op.split" : mode == 4 ? "pd_op.split_with_num" : "split";
    run_case(name,
             dims_str(d) + " axis " + std::to_string(axis) + " sections " + dims_str(sec_attr), g,
             want);
  }
  // stack
  for (int t = 0; t < 30; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(0, 3));
    auto d = rand_dims(r, 1, 4);
    int n = static_cast<int>(ri(1, 4));
    int64_t axis = ri(-(r + 1), r), ax = axis < 0 ? axis + r + 1 : axis;
    DType dt = t % 3 == 0 ? DType::Int64 : DType::Float32;
    std::vector<HT> xs;
    std::vector<HT> us;  // unsqueezed for the concat reference
    for (int i = 0; i < n; ++i) {
      xs.push_back(rand_t(d, dt));
      auto ud = d;
      ud.insert(ud.begin() + ax, 1);
      us.push_back(with_dims(xs.back(), ud));
    }
    G g(pir);
    std::vector<ValueId> ins;
    for (auto& x : xs) ins.push_back(g.input(x));
    ValueId o = g.val();
    if (pir)
      g.op("pd_op.stack", {{"", {g.combine(ins)}}}, {{"", {o}}}, {{"axis", attr_int(axis)}});
    else
      g.op("stack", {{"X", ins}}, {{"Y", {o}}}, {{"axis", attr_int(axis)}});
    g.output(o);
    run_case(pir ? "pd_op.stack" : "stack",
             std::to_string(n) + " x " + dims_str(d) + " axis " + std::to_string(axis), g,
             {ref_concat(us, ax)});
  }
}

// Legacy slice of axis 0 from `start` to `end`, decreasing it.
Attrs slice0_attrs(int64_t start, int64_t end) {
  return {{"axes", attr_ints({0})},
          {"starts", attr_ints({start})},
          {"ends", attr_ints({end})},
          {"decrease_axis", attr_ints({0})}};
}

PIF_TEST(ref_shape, slice) {
  const int64_t BIG = std::numeric_limits<int64_t>::max();
  auto rand_bound = [&](int64_t dim) -> int64_t {
    switch (ri(0, 6)) {
      case 0: return ri(-dim - 3, -1);
      case 1: return BIG;
      case 2: return 2147483647;
      case 3: return -BIG;
      default: return ri(0, dim + 2);
    }
  };
  for (int t = 0; t < 120; ++t) {
    int mode = t % 5;  // 0 legacy attrs, 1 legacy Starts/EndsTensor, 2 legacy tensor lists, 3 PIR,
                       // 4 strided_slice
    bool pir = mode == 3 || (mode == 4 && t % 2);
    int r = static_cast<int>(ri(1, 4));
    auto d = rand_dims(r, 1, 6);
    DType dt = t % 3 == 0 ? DType::Int64 : DType::Float32;
    HT x = rand_t(d, dt);
    std::vector<int64_t> axes = rand_perm(static_cast<size_t>(r));
    axes.resize(static_cast<size_t>(ri(1, r)));
    std::vector<int64_t> st, en, steps;
    for (int64_t a : axes) {
      st.push_back(rand_bound(d[a]));
      en.push_back(rand_bound(d[a]));
      steps.push_back(mode == 4 ? (coin() ? ri(1, 3) : -ri(1, 3)) : 1);
    }
    // decrease_axis on axes that come out with size 1 (slice only).
    HT full = ref_slice(x, axes, st, en, steps);
    std::vector<int64_t> dec;
    if (mode != 4)
      for (int64_t a : axes)
        if (full.dims[a] == 1 && coin(0.6)) dec.push_back(a);
    if (mode != 4 && t % 10 == 0) {  // x[i] on a 1-D shape-like tensor: 0-D / [1]
      x = rand_t({4}, DType::Int32);
      axes = {0};
      int64_t i0 = ri(-4, 3);
      st = {i0};
      en = {i0 == -1 ? BIG : i0 + 1};
      steps = {1};
      dec = {0};
      full = ref_slice(x, axes, st, en, steps);
    }
    std::vector<int64_t> od;
    for (int64_t k = 0; k < static_cast<int64_t>(full.dims.size()); ++k)
      if (std::find(dec.begin(), dec.end(), k) == dec.end()) od.push_back(full.dims[k]);
    if (od.empty() && !dec.empty() && !pir) od = {1};
    HT want = with_dims(full, od);
    std::vector<int64_t> axes_attr = axes;
    if (coin(0.3))
      for (auto& a : axes_attr) a -= static_cast<int64_t>(x.dims.size());
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    std::vector<int64_t> flags(axes.size(), 1);
    if (mode == 0) {
      g.op("slice", {{"Input", {a}}}, {{"Out", {o}}},
           {{"axes", attr_ints(axes_attr)},
            {"starts", attr_i64s(st)},
            {"ends", attr_i64s(en)},
            {"decrease_axis", attr_ints(dec)},
            {"infer_flags", attr_ints(flags)}});
    } else if (mode == 1) {
      g.op("slice",
           {{"Input", {a}},
            {"StartsTensor", {g.input(ints_t(st))}},
            {"EndsTensor", {g.cst(ints_t(en))}}},
           {{"Out", {o}}},
           {{"axes", attr_ints(axes_attr)},
            {"starts", attr_ints(std::vector<int64_t>(axes.size(), 0))},
            {"ends", attr_ints(std::vector<int64_t>(axes.size(), 0))},
            {"decrease_axis", attr_ints(dec)},
            {"infer_flags", attr_ints(std::vector<int64_t>(axes.size(), -1))}});
    } else if (mode == 2) {
      std::vector<ValueId> sl, el;
      for (int64_t v : st) sl.push_back(g.cst(ints_t({v}, DType::Int64)));
      for (int64_t v : en) el.push_back(g.input(ints_t({v}, DType::Int64)));
      g.op("slice", {{"Input", {a}}, {"StartsTensorList", sl}, {"EndsTensorList", el}},
           {{"Out", {o}}},
           {{"axes", attr_ints(axes_attr)},
            {"starts", attr_ints({})},
            {"ends", attr_ints({})},
            {"decrease_axis", attr_ints(dec)},
            {"infer_flags", attr_ints(std::vector<int64_t>(axes.size(), -1))}});
    } else if (mode == 3) {
      g.op("pd_op.slice", {{"", {a}}, {"", {g.cst(ints_t(st))}}, {"", {g.cst(ints_t(en))}}},
           {{"", {o}}},
           {{"axes", attr_i64s(axes_attr)},
            {"infer_flags", attr_i64s(flags)},
            {"decrease_axis", attr_i64s(dec)}});
    } else if (pir) {
      g.op("pd_op.strided_slice",
           {{"", {a}},
            {"", {g.cst(ints_t(st))}},
            {"", {g.cst(ints_t(en))}},
            {"", {g.cst(ints_t(steps))}}},
           {{"", {o}}}, {{"axes", attr_i64s(axes_attr)}});
    } else {
      g.op("strided_slice", {{"Input", {a}}}, {{"Out", {o}}},
           {{"axes", attr_ints(axes_attr)},
            {"starts", attr_i64s(st)},
            {"ends", attr_i64s(en)},
            {"strides", attr_i64s(steps)},
            {"decrease_axis", attr_ints({})},
            {"infer_flags", attr_ints(flags)}});
    }
    g.output(o);
    std::string name = mode == 4 ? (pir ? "pd_op.strided_slice" : "strided_slice")
                                 : (pir ? "pd_op.slice" : "slice");
    run_case(name,
             dims_str(x.dims) + " axes " + dims_str(axes) + " st " + dims_str(st) + " en " +
                 dims_str(en) + " step " + dims_str(steps) + " dec " + dims_str(dec),
             g, {want});
  }
  // decreasing an axis of size != 1 fails
  expect_op_error(
      "slice", "decrease of size 2",
      [](G& g) -> Slots {
        return {{"Input", {g.input(rand_t({4, 3}))}}};
      },
      slice0_attrs(0, 2));
  {  // legacy output declared 0-D: result is 0-D
    G g(false);
    HT x = rand_t({4}, DType::Int32);
    ValueId a = g.input(x), o = g.val();
    g.declare(o, DType::Int32, {});
    g.op("slice", {{"Input", {a}}}, {{"Out", {o}}}, slice0_attrs(2, 3));
    g.output(o);
    HT want = with_dims(ref_slice(x, {0}, {2}, {3}, {1}), {});
    run_case("slice", "declared 0-D", g, {want});
  }
}

}  // namespace
}  // namespace pif::test
