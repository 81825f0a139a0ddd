// Randomised checks of the reference shape / fill / cast / expand / tile / gather / reduce ops
// against naive implementations (ref_shape.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tests/ref_shape.h"

namespace pif::test {
namespace {

PIF_TEST(ref_shape, shape_fill_cast) {
  for (int t = 0; t < 20; ++t) {
    int mode = t % 3;  // shape, pd_op.shape, pd_op.shape64
    auto d = rand_dims(static_cast<int>(ri(0, 5)), 0, 6);
    HT x = rand_t(d);
    G g(mode > 0);
    ValueId a = g.input(x), o = g.val();
    const char* type = mode == 0 ? "shape" : mode == 1 ? "pd_op.shape" : "pd_op.shape64";
    g.op(type, {{"Input", {a}}}, {{"Out", {o}}}, {});
    g.output(o);
    run_case(type, dims_str(d), g, {ints_t(d, mode == 2 ? DType::Int64 : DType::Int32)});
  }
  // fill_constant / full
  struct DT {
    DType dt;
    int code;
    const char* name;
  };
  const DT dts[] = {{DType::Float32, 5, "float32"}, {DType::Int32, 2, "int32"},
                    {DType::Int64, 3, "int64"},     {DType::Float64, 6, "float64"},
                    {DType::Bool, 0, "bool"},       {DType::UInt8, 20, "uint8"}};
  for (int t = 0; t < 40; ++t) {
    const DT& dt = dts[t % 6];
    auto d = rand_dims(static_cast<int>(ri(0, 3)), 0, 4);
    double val = dt.dt == DType::Bool    ? static_cast<double>(ri(0, 1))
                 : dt.dt == DType::UInt8 ? static_cast<double>(ri(0, 255))
                 : (dt.dt == DType::Float32 || dt.dt == DType::Float64)
                     ? static_cast<float>(rf(-5, 5))
                     : static_cast<double>(ri(-1000, 1000));
    int mode = t % 4;  // 0 legacy attrs, 1 legacy str_value + ShapeTensor, 2 legacy
                       // ShapeTensorList, 3 pd_op.full
    G g(mode == 3);
    ValueId o = g.val();
    if (mode == 0) {
      g.op("fill_constant", {}, {{"Out", {o}}},
           {{"dtype", attr_int(dt.code)},
            {"shape", attr_i64s(d)},
            {"value", attr_float(val)},
            {"str_value", attr_str("")}});
    } else if (mode == 1) {
      std::ostringstream s;
      s.precision(17);
      s << val;
      g.op("fill_constant", {{"ShapeTensor", {g.cst(ints_t(d, DType::Int64))}}}, {{"Out", {o}}},
           {{"dtype", attr_int(dt.code)},
            {"shape", attr_i64s({})},
            {"value", attr_float(0)},
            {"str_value", attr_str(s.str())}});
    } else if (mode == 2) {
      std::vector<ValueId> list;
      for (int64_t v : d) list.push_back(g.input(ints_t({v}, DType::Int32)));
      g.op("fill_constant", {{"ShapeTensorList", list}}, {{"Out", {o}}},
           {{"dtype", attr_int(dt.code)}, {"shape", attr_i64s({})}, {"value", attr_float(val)}});
    } else {
      g.op("pd_op.full", {}, {{"", {o}}},
           {{"shape", attr_i64s(d)}, {"value", attr_f64(val)}, {"dtype", attr_dtype(dt.name)}});
    }
    g.output(o);
    HT want;
    want.dt = dt.dt;
    want.dims = d;
    want.v.assign(static_cast<size_t>(prod(d)), val);
    if (mode == 2 && d.empty()) {
      // no list entries: falls back to the shape attribute ([] -> 0-D)
    }
    run_case(mode == 3 ? "pd_op.full" : "fill_constant",
             std::string(dt.name) + " " + dims_str(d) + " mode " + std::to_string(mode), g, {want});
  }
  {  // big int64 via str_value
    G g(false);
    ValueId o = g.val();
    g.op("fill_constant", {}, {{"Out", {o}}},
         {{"dtype", attr_int(3)},
          {"shape", attr_i64s({2})},
          {"value", attr_float(0)},
          {"str_value", attr_str("9007199254740993")}});
    g.output(o);
    guarded("fill_constant", "big str_value", [&] {
      LoadedModel m;
      m.program = g.p;
      Executor ex(std::make_shared<const LoadedModel>(std::move(m)));
      auto r = ex.run({}, 1);
      int64_t v;
      std::memcpy(&v, r[0].data.data(), 8);
      record("fill_constant", "big str_value", 0,
             v != 9007199254740993LL ? "got " + std::to_string(v) : "");
    });
  }
  // full_int_array
  for (int t = 0; t < 10; ++t) {
    std::vector<int64_t> vals;
    for (int i = 0; i < ri(0, 5); ++i) vals.push_back(ri(-100, 100));
    bool i32 = t % 2;
    G g(true);
    ValueId o = g.val();
    g.op("pd_op.full_int_array", {}, {{"", {o}}},
         {{"value", attr_arr(vals)}, {"dtype", attr_dtype(i32 ? "int32" : "int64")}});
    g.output(o);
    run_case("pd_op.full_int_array", dims_str(vals), g,
             {ints_t(vals, i32 ? DType::Int32 : DType::Int64)});
  }
  // full_like / fill_any_like
  for (int t = 0; t < 20; ++t) {
    int mode = t % 3;  // 0 fill_any_like dtype -1, 1 fill_any_like dtype int64, 2 pd_op.full_like
                       // value operand
    auto d = rand_dims(static_cast<int>(ri(0, 3)), 1, 4);
    HT x = rand_t(d);
    double val = static_cast<float>(rf(-3, 3));
    if (mode == 1) val = std::trunc(val);
    G g(mode == 2);
    ValueId a = g.input(x), o = g.val();
    HT want;
    want.dims = d;
    want.dt = mode == 1 ? DType::Int64 : DType::Float32;
    want.v.assign(static_cast<size_t>(prod(d)), val);
    if (mode == 0)
      g.op("fill_any_like", {{"X", {a}}}, {{"Out", {o}}},
           {{"value", attr_float(val)}, {"dtype", attr_int(-1)}});
    else if (mode == 1)
      g.op("fill_any_like", {{"X", {a}}}, {{"Out", {o}}},
           {{"value", attr_float(val)}, {"dtype", attr_int(3)}});
    else
      g.op("pd_op.full_like", {{"", {a}}, {"", {g.cst(ints_t({0}, DType::Float32, {1}))}}},
           {{"", {o}}}, {{"dtype", attr_dtype("float32")}});
    if (mode == 2) want.v.assign(want.v.size(), 0.0);
    g.output(o);
    run_case(mode == 2 ? "pd_op.full_like" : "fill_any_like", dims_str(d), g, {want});
  }
  // cast
  const DT cdts[] = {
      {DType::Float32, 5, "float32"}, {DType::Int32, 2, "int32"}, {DType::Int64, 3, "int64"},
      {DType::Float64, 6, "float64"}, {DType::Bool, 0, "bool"},   {DType::UInt8, 20, "uint8"},
      {DType::Int8, 21, "int8"},      {DType::Int16, 1, "int16"}, {DType::Float16, 4, "float16"}};
  for (int t = 0; t < 60; ++t) {
    const DT& from = cdts[t % 8];  // no float16 input generator
    const DT& to = cdts[static_cast<size_t>(ri(0, 8))];
    auto d = rand_dims(static_cast<int>(ri(0, 3)), 1, 5);
    HT x = rand_t(d, from.dt, 100.0);
    if (from.dt == DType::Int8 || from.dt == DType::Int16)
      for (auto& v : x.v) v = static_cast<double>(ri(-100, 100));
    bool pir = t % 2;
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (pir)
      g.op("pd_op.cast", {{"", {a}}}, {{"", {o}}}, {{"dtype", attr_dtype(to.name)}});
    else
      g.op("cast", {{"X", {a}}}, {{"Out", {o}}},
           {{"in_dtype", attr_int(from.code)}, {"out_dtype", attr_int(to.code)}});
    g.output(o);
    HT want;
    want.dt = to.dt;
    want.dims = d;
    bool src_float = from.dt == DType::Float32 || from.dt == DType::Float64;
    for (double v : x.v) {
      double w;
      switch (to.dt) {
        case DType::Bool: w = v != 0; break;
        case DType::UInt8:
          w = src_float ? std::min(255.0, std::max(0.0, std::trunc(v)))
                        : static_cast<double>(static_cast<uint8_t>(static_cast<int64_t>(v)));
          break;
        case DType::Int8:
          w = src_float ? std::min(127.0, std::max(-128.0, std::trunc(v)))
                        : static_cast<double>(static_cast<int8_t>(static_cast<int64_t>(v)));
          break;
        case DType::Int16:
        case DType::Int32:
        case DType::Int64: w = std::trunc(v); break;
        case DType::Float32: w = static_cast<float>(v); break;
        case DType::Float16: w = v; break;  // compared with a half tolerance below
        default: w = v;
      }
      want.v.push_back(w);
    }
    run_case(pir ? "pd_op.cast" : "cast",
             std::string(from.name) + "->" + to.name + " " + dims_str(d), g, {want},
             to.dt == DType::Float16 ? 1e-3 : 1e-7);
  }
}

// A legacy op on X whose int list comes as the attribute `attr`, or (by_tensor) as an int32
// constant in `slot` with the attribute empty.
void op_with_list(G& g, const std::string& type, ValueId a, ValueId o, const std::string& attr,
                  const std::string& slot, const std::vector<int64_t>& v, bool by_tensor) {
  Slots ins = {{"X", {a}}};
  if (by_tensor) ins.push_back({slot, {g.cst(ints_t(v, DType::Int32))}});
  g.op(type, ins, {{"Out", {o}}}, {{attr, attr_ints(by_tensor ? std::vector<int64_t>{} : v)}});
}

PIF_TEST(ref_shape, expand_tile) {
  for (int t = 0; t < 50; ++t) {
    int mode = t % 4;  // 0 legacy attr, 1 legacy Shape tensor, 2 legacy expand_shapes_tensor, 3 PIR
    int r = static_cast<int>(ri(0, 3));
    auto d = rand_dims(r, 1, 3);
    for (auto& x : d)
      if (coin(0.5)) x = 1;
    int lead = static_cast<int>(ri(0, 2));
    std::vector<int64_t> od = rand_dims(lead, 1, 3), target = od;
    for (int64_t x : d) {
      int64_t o = x == 1 ? ri(1, 4) : x;
      od.push_back(o);
      target.push_back(coin(0.3) ? -1 : o);
      if (target.back() == -1) od.back() = x;
    }
    HT x = rand_t(d, t % 3 == 0 ? DType::Int64 : DType::Float32);
    G g(mode == 3);
    ValueId a = g.input(x), o = g.val();
    if (mode <= 1)
      op_with_list(g, "expand_v2", a, o, "shape", "Shape", target, mode == 1);
    else if (mode == 2) {
      std::vector<ValueId> list;
      for (int64_t v : target) list.push_back(g.input(ints_t({v}, DType::Int32)));
      g.op("expand_v2", {{"X", {a}}, {"expand_shapes_tensor", list}}, {{"Out", {o}}},
           {{"shape", attr_ints(std::vector<int64_t>(target.size(), -2))}});
    } else {
      g.op("pd_op.expand", {{"", {a}}, {"", {g.cst(ints_t(target))}}}, {{"", {o}}}, {});
    }
    g.output(o);
    run_case(mode == 3 ? "pd_op.expand" : "expand_v2", dims_str(d) + " -> " + dims_str(target), g,
             {ref_broadcast(x, od)});
  }
  for (int t = 0; t < 40; ++t) {
    int mode = t % 4;  // 0 tile attr, 1 tile RepeatTimes, 2 pd_op.tile, 3 legacy expand
    int r = static_cast<int>(ri(mode == 3 ? 1 : 0, 3));
    auto d = rand_dims(r, 1, 3);
    std::vector<int64_t> rep = rand_dims(mode == 3 ? r : static_cast<int>(ri(0, 4)), 0, 3);
    if (coin(0.7))
      for (auto& x : rep) x = std::max<int64_t>(x, 1);
    HT x = rand_t(d);
    G g(mode == 2);
    ValueId a = g.input(x), o = g.val();
    if (mode <= 1)
      op_with_list(g, "tile", a, o, "repeat_times", "RepeatTimes", rep, mode == 1);
    else if (mode == 2)
      g.op("pd_op.tile", {{"", {a}}, {"", {g.cst(ints_t(rep))}}}, {{"", {o}}}, {});
    else
      g.op("expand", {{"X", {a}}}, {{"Out", {o}}}, {{"expand_times", attr_ints(rep)}});
    g.output(o);
    const char* name = mode == 2 ? "pd_op.tile" : mode == 3 ? "expand" : "tile";
    run_case(name, dims_str(d) + " x " + dims_str(rep), g, {ref_tile(x, rep)});
  }
}

PIF_TEST(ref_shape, gather) {
  for (int t = 0; t < 20; ++t) {
    bool pir = t % 2;
    int r = static_cast<int>(ri(1, 3));
    auto d = rand_dims(r, 1, 5);
    int64_t axis = ri(0, r - 1);
    std::vector<int64_t> idx;
    for (int i = 0; i < ri(1, 5); ++i) idx.push_back(ri(0, d[axis] - 1));
    HT x = rand_t(d);
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    ValueId ix = g.input(ints_t(idx, t % 4 < 2 ? DType::Int64 : DType::Int32));
    if (pir)
      g.op("pd_op.gather",
           {{"", {a}}, {"", {ix}}, {"", {g.cst(ints_t({axis}, DType::Int64, {1}))}}}, {{"", {o}}},
           {});
    else
      g.op("gather", {{"X", {a}}, {"Index", {ix}}}, {{"Out", {o}}}, {{"axis", attr_int(axis)}});
    g.output(o);
    std::vector<HT> parts;
    for (int64_t i : idx) parts.push_back(ref_slice(x, {axis}, {i}, {i + 1}, {1}));
    run_case(pir ? "pd_op.gather" : "gather",
             dims_str(d) + " axis " + std::to_string(axis) + " idx " + dims_str(idx), g,
             {ref_concat(parts, axis)});
  }
}

PIF_TEST(ref_shape, reduce) {
  const char* legacy[] = {"reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod"};
  const char* pirn[] = {"pd_op.mean", "pd_op.sum", "pd_op.max", "pd_op.min", "pd_op.prod"};
  for (int t = 0; t < 150; ++t) {
    int kind = t % 5;
    int mode = (t / 5) % 3;  // 0 legacy dims, 1 legacy reduce_all, 2 PIR axis operand
    bool pir = mode == 2;
    int r = static_cast<int>(ri(0, 4));
    auto d = rand_dims(r, 1, 6);
    if (t % 17 == 0) d = {2, 300, 40};
    r = static_cast<int>(d.size());
    DType dt = DType::Float32;
    if (kind == 1 && t % 3 == 0) dt = t % 2 ? DType::Int64 : DType::Int32;
    if ((kind == 2 || kind == 3) && t % 4 == 0) dt = DType::Int64;
    HT x = rand_t(d, dt, kind == 4 ? 1.5 : 2.0);
    std::vector<int64_t> axes;
    for (int k = 0; k < r; ++k)
      if (coin()) axes.push_back(coin() ? k - r : k);
    bool keep = coin();
    std::vector<bool> red(static_cast<size_t>(r), false);
    if (axes.empty() || mode == 1) std::fill(red.begin(), red.end(), true);
    for (int64_t a : axes) red[a < 0 ? a + r : a] = true;
    DType odt = dt;
    if (kind == 1 && dt == DType::Int32)
      odt = pir ? DType::Int64 : DType::Int32;  // legacy: declared dtype wins
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    if (!pir) g.declare(o, odt, {-1});
    if (mode == 0)
      g.op(legacy[kind], {{"X", {a}}}, {{"Out", {o}}},
           {{"dim", attr_ints(axes)},
            {"keep_dim", attr_bool(keep)},
            {"reduce_all", attr_bool(false)}});
    else if (mode == 1)
      g.op(legacy[kind], {{"X", {a}}}, {{"Out", {o}}},
           {{"dim", attr_ints(axes)},
            {"keep_dim", attr_bool(keep)},
            {"reduce_all", attr_bool(true)}});
    else if (kind == 1)
      g.op(pirn[kind], {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}},
           {{"dtype", attr_dtype("undefined")}, {"keepdim", attr_bool(keep)}});
    else
      g.op(pirn[kind], {{"", {a}}, {"", {g.cst(ints_t(axes))}}}, {{"", {o}}},
           {{"keepdim", attr_bool(keep)}});
    g.output(o);
    HT want = ref_reduce(x, red, keep, kind, odt, !pir);
    run_case(pir ? pirn[kind] : legacy[kind],
             std::string(dtype_name(dt)) + " " + dims_str(d) + " axes " + dims_str(axes) +
                 (keep ? " keep" : "") + (mode == 1 ? " all" : ""),
             g, {want}, kind == 4 ? 1e-4 : 2e-6);
  }
  for (int t = 0; t < 10; ++t) {
    bool pir = t % 2;
    auto d = rand_dims(static_cast<int>(ri(1, 3)), 1, 6);
    HT x = rand_t(d);
    G g(pir);
    ValueId a = g.input(x), o = g.val();
    g.op(pir ? "pd_op.mean_all" : "mean", {{"X", {a}}}, {{"Out", {o}}}, {});
    g.output(o);
    run_case(pir ? "pd_op.mean_all" : "mean", dims_str(d), g,
             {ref_reduce(x, std::vector<bool>(d.size(), true), false, 0, DType::Float32, !pir)},
             2e-6);
  }
}

// The CLIP-style class-token chain: shape64 -> slice -> stack -> expand ->
// concat -> transpose/reshape -> matmul(transpose_y) -> softmax -> mean.
PIF_TEST(ref_shape, chain) {
  for (int t = 0; t < 6; ++t) {
    int64_t N = ri(1, 3), T = ri(2, 5), D = 4 * ri(1, 3), H = 2;
    HT x = rand_t({N, T, D}), cls = rand_t({1, 1, D});
    G g(true);
    ValueId xi = g.input(x), ci = g.cst(cls);
    ValueId shp = g.val(), n0 = g.val(), sv = g.val(), ex = g.val(), cat = g.val();
    g.op("pd_op.shape64", {{"", {xi}}}, {{"", {shp}}}, {});
    g.op("pd_op.slice", {{"", {shp}}, {"", {g.cst(ints_t({0}))}}, {"", {g.cst(ints_t({1}))}}},
         {{"", {n0}}},
         {{"axes", attr_i64s({0})},
          {"infer_flags", attr_i64s({1})},
          {"decrease_axis", attr_i64s({0})}});
    ValueId m1 = g.cst(ints_t({-1}, DType::Int64, {})), m2 = g.cst(ints_t({-1}, DType::Int64, {}));
    g.op("pd_op.stack", {{"", {g.combine({n0, m1, m2})}}}, {{"", {sv}}}, {{"axis", attr_int(0)}});
    g.op("pd_op.expand", {{"", {ci}}, {"", {sv}}}, {{"", {ex}}}, {});
    g.op("pd_op.concat",
         {{"", {g.combine({ex, xi})}}, {"", {g.cst(ints_t({1}, DType::Int32, {1}))}}},
         {{"", {cat}}}, {});
    // heads: [N,T+1,D] -> [N,T+1,H,D/H] -> [N,H,T+1,D/H]
    ValueId r1 = g.val(), q = g.val(), sc = g.val(), sm = g.val(), ctx = g.val(), mean = g.val();
    g.op("pd_op.reshape", {{"", {cat}}, {"", {g.cst(ints_t({0, -1, H, D / H}))}}}, {{"", {r1}}},
         {});
    g.op("pd_op.transpose", {{"", {r1}}}, {{"", {q}}}, {{"perm", attr_arr({0, 2, 1, 3})}});
    g.op("pd_op.matmul", {{"", {q}}, {"", {q}}}, {{"", {sc}}},
         {{"transpose_x", attr_bool(false)}, {"transpose_y", attr_bool(true)}});
    g.op("pd_op.softmax", {{"", {sc}}}, {{"", {sm}}}, {{"axis", attr_int(-1)}});
    g.op("pd_op.matmul", {{"", {sm}}, {"", {q}}}, {{"", {ctx}}},
         {{"transpose_x", attr_bool(false)}, {"transpose_y", attr_bool(false)}});
    g.op("pd_op.mean", {{"", {ctx}}, {"", {g.cst(ints_t({2}))}}}, {{"", {mean}}},
         {{"keepdim", attr_bool(false)}});
    g.output(mean);
    HT catr = ref_concat({ref_broadcast(cls, {N, 1, D}), x}, 1);
    HT qr = ref_transpose(with_dims(catr, {N, T + 1, H, D / H}), {0, 2, 1, 3});
    HT s = ref_matmul(qr, qr, false, true, 1.0, false);
    HT smr = ref_softmax(s, -1);
    HT cr = ref_matmul(smr, qr, false, false, 1.0, false);
    std::vector<bool> red = {false, false, true, false};
    run_case("chain(clip-like)",
             "N=" + std::to_string(N) + " T=" + std::to_string(T) + " D=" + std::to_string(D), g,
             {ref_reduce(cr, red, false, 0, DType::Float32, false)}, 1e-4);
  }
}

}  // namespace
}  // namespace pif::test
