// The GraphBuilder's format-neutral layers: conv, batch / layer norm, activations, binary ops,
// pooling, dropout, reshapes, slices, matmul / linear, softmax, concat, in the op form each format
// and Paddle release writes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <utility>

#include "builder/graph_builder.h"
#include "common/error.h"

namespace pif {
namespace builder {

ValueId GraphBuilder::conv2d(ValueId x, ValueId w, int64_t stride, int64_t pad, int64_t groups) {
  const Dims& xd = dims(x);
  const Dims& wd = dims(w);
  auto out = [&](int64_t in, int64_t k) { return in < 0 ? -1 : (in + 2 * pad - k) / stride + 1; };
  Dims od = {xd[0], wd[0], out(xd[2], wd[2]), out(xd[3], wd[3])};
  const bool dw = groups == xd[1] && groups == wd[0] && groups != 1;
  if (pir_) {
    Attrs a;
    if (dw) {
      a = {{"strides", a_arr32({stride, stride})},   {"paddings", a_arr32({pad, pad})},
           {"padding_algorithm", a_str("EXPLICIT")}, {"groups", a_i32(groups)},
           {"dilations", a_arr32({1, 1})},           {"data_format", a_str("NCHW")}};
    } else {
      a = {{"strides", a_arr32({stride, stride})},
           {"paddings", a_arr32({pad, pad})},
           {"padding_algorithm", a_str("EXPLICIT")},
           {"dilations", a_arr32({1, 1})},
           {"groups", a_i32(groups)},
           {"data_format", a_str("NCHW")}};
    }
    return pir1(dw ? "depthwise_conv2d" : "conv2d", {x, w}, od, std::move(a));
  }
  const std::string type = dw ? "depthwise_conv2d" : "conv2d";
  ValueId y = tmp(type, od);
  std::vector<OpSlot> ins = {{"Filter", {w}}, {"Input", {x}}};
  if (paddle23_) ins = {{"Bias", {}}, {"Filter", {w}}, {"Input", {x}}, {"ResidualData", {}}};
  legacy_op(type, std::move(ins), {{"Output", {y}}},
            {{"data_format", a_str("NCHW")},
             {"dilations", a_i32s({1, 1})},
             {"groups", a_i32(groups)},
             {"padding_algorithm", a_str("EXPLICIT")},
             {"paddings", a_i32s({pad, pad})},
             {"strides", a_i32s({stride, stride})}});
  return y;
}

ValueId GraphBuilder::conv_bias(ValueId y, ValueId b) {
  if (pir_) {
    const int64_t c = dims(b)[0];
    ValueId s = full_int_array({1, -1, 1, 1});
    ValueId r = pir1("reshape", {b, s}, {1, c, 1, 1}, {});
    return add(y, r);
  }
  std::string name = p_.values[y].name;
  name.replace(name.size() - 1, 1, "1");  // <helper>.tmp_0 -> <helper>.tmp_1
  ValueId o = value(dims(y), DType::Float32, name);
  legacy_op("elementwise_add", {{"X", {y}}, {"Y", {b}}}, {{"Out", {o}}}, {{"axis", a_i32(1)}});
  return o;
}

ValueId GraphBuilder::batch_norm(ValueId x, const std::string& prefix) {
  const int64_t c = dims(x)[1];
  ValueId scale = param(prefix + ".w_0", {c}, uniform_init(0.5f, 1.5f));
  ValueId bias = param(prefix + ".b_0", {c}, normal_init(0.f, 0.1f));
  ValueId mean = param(prefix + ".w_1", {c}, normal_init(0.f, 0.1f), false);
  ValueId var = param(prefix + ".w_2", {c}, uniform_init(0.5f, 1.5f), false);
  if (pir_) {
    return pir_op("batch_norm_", {x, mean, var, scale, bias},
                  {{dims(x), DType::Float32},
                   {{c}, DType::Float32},
                   {{c}, DType::Float32},
                   {{c}, DType::Float32},
                   {{c}, DType::Float32},
                   {{-1}, DType::UInt8}},
                  {{"is_test", a_bool(true)},
                   {"momentum", a_f32(0.9)},
                   {"epsilon", a_f32(1e-5)},
                   {"data_format", a_str("NCHW")},
                   {"use_global_stats", a_bool(true)},
                   {"trainable_statistics", a_bool(false)}})[0];
  }
  std::string base = tmp_prefix("batch_norm");
  ValueId saved_mean = value({c}, DType::Float32, base + ".tmp_0");
  ValueId saved_var = value({c}, DType::Float32, base + ".tmp_1");
  ValueId y = value(dims(x), DType::Float32, base + ".tmp_2");
  legacy_op("batch_norm",
            {{"Bias", {bias}},
             {"Mean", {mean}},
             {"MomentumTensor", {}},
             {"Scale", {scale}},
             {"Variance", {var}},
             {"X", {x}}},
            {{"MeanOut", {mean}},
             {"SavedMean", {saved_mean}},
             {"SavedVariance", {saved_var}},
             {"VarianceOut", {var}},
             {"Y", {y}}},
            {{"data_layout", a_str("NCHW")},
             {"epsilon", a_f32(1e-5)},
             {"is_test", a_bool(true)},
             {"momentum", a_f32(0.9)},
             {"trainable_statistics", a_bool(false)},
             {"use_global_stats", a_bool(true)}});
  return y;
}

ValueId GraphBuilder::act(const std::string& type, ValueId x) {
  if (pir_) return pir1(type, {x}, dims(x), {});
  return legacy_unary(type, type, x, dims(x), {});
}

Dims GraphBuilder::broadcast(const Dims& a, const Dims& b) {
  const Dims& big = a.size() >= b.size() ? a : b;
  const Dims& small = a.size() >= b.size() ? b : a;
  Dims out = big;
  const size_t off = big.size() - small.size();
  for (size_t k = 0; k < small.size(); ++k) {
    int64_t x = big[off + k], y = small[k];
    out[off + k] = (x == 1) ? y : (y == 1 ? x : (x < 0 ? y : x));
  }
  return out;
}

ValueId GraphBuilder::binary(const std::string& pir_name, const std::string& legacy, ValueId x,
                             ValueId y) {
  Dims d = broadcast(dims(x), dims(y));
  if (pir_) return pir1(pir_name, {x, y}, d, {});
  ValueId o = value(d, DType::Float32, tmp_prefix(legacy));
  legacy_op(legacy, {{"X", {x}}, {"Y", {y}}}, {{"Out", {o}}}, {{"axis", a_i32(-1)}});
  return o;
}

ValueId GraphBuilder::plus(ValueId x, ValueId y) {
  if (pir_) return add(x, y);
  ValueId o = value(broadcast(dims(x), dims(y)), DType::Float32, py_tmp());
  legacy_op("elementwise_add", {{"X", {x}}, {"Y", {y}}}, {{"Out", {o}}}, {{"axis", a_i32(-1)}});
  return o;
}

ValueId GraphBuilder::avg_pool_1x1(ValueId x) {
  Dims od = {dims(x)[0], dims(x)[1], 1, 1};
  if (pir_) {
    ValueId k = full_int_array({1, 1});
    return pir1("pool2d", {x, k}, od,
                {{"strides", a_arr32({1, 1})},
                 {"paddings", a_arr32({0, 0})},
                 {"ceil_mode", a_bool(false)},
                 {"exclusive", a_bool(true)},
                 {"data_format", a_str("NCHW")},
                 {"pooling_type", a_str("avg")},
                 {"global_pooling", a_bool(false)},
                 {"adaptive", a_bool(true)},
                 {"padding_algorithm", a_str("EXPLICIT")}});
  }
  return legacy_unary("pool2d", "pool2d", x, od,
                      {{"adaptive", a_bool(true)},
                       {"ceil_mode", a_bool(false)},
                       {"data_format", a_str("NCHW")},
                       {"exclusive", a_bool(true)},
                       {"global_pooling", a_bool(false)},
                       {"ksize", a_i32s({1, 1})},
                       {"padding_algorithm", a_str("EXPLICIT")},
                       {"paddings", a_i32s({0, 0})},
                       {"pooling_type", a_str("avg")},
                       {"strides", a_i32s({1, 1})},
                       {"use_cudnn", a_bool(false)}});
}

ValueId GraphBuilder::dropout(ValueId x, double prob) {
  if (pir_) {
    ValueId pv = full({1}, prob, DType::Float32);
    return pir_op("dropout", {x, kNoValue, pv},
                  {{dims(x), DType::Float32}, {dims(x), DType::UInt8}},
                  {{"is_test", a_bool(true)},
                   {"mode", a_str("downgrade_in_infer")},
                   {"seed", a_i32(0)},
                   {"fix_seed", a_bool(false)}})[0];
  }
  std::string base = tmp_prefix("dropout");
  ValueId y = value(dims(x), DType::Float32, base + ".tmp_0");
  ValueId mask = value(dims(x), DType::UInt8, base + ".tmp_1");
  legacy_op("dropout", {{"Seed", {}}, {"X", {x}}}, {{"Mask", {mask}}, {"Out", {y}}},
            {{"dropout_implementation", a_str("downgrade_in_infer")},
             {"dropout_prob", a_f32(prob)},
             {"is_test", a_bool(true)}});
  return y;
}

ValueId GraphBuilder::flatten(ValueId x, int64_t start, int64_t stop) {
  const Dims& xd = dims(x);
  Dims od(xd.begin(), xd.begin() + start);
  int64_t m = 1;
  for (int64_t k = start; k <= stop; ++k) m = (xd[k] < 0 || m < 0) ? -1 : m * xd[k];
  od.push_back(m);
  od.insert(od.end(), xd.begin() + stop + 1, xd.end());
  if (pir_)
    return pir1("flatten", {x}, od, {{"start_axis", a_i32(start)}, {"stop_axis", a_i32(stop)}});
  return legacy_xshape("flatten_contiguous_range", "flatten", {{"X", {x}}}, x, od,
                       {{"start_axis", a_i32(start)}, {"stop_axis", a_i32(stop)}});
}

ValueId GraphBuilder::layer_norm(ValueId x, const std::string& prefix) {
  const Dims& xd = dims(x);
  const int64_t d = xd.back();
  const int64_t axis = static_cast<int64_t>(xd.size()) - 1;
  ValueId w = param(prefix + ".w_0", {d}, normal_init(1.f, 0.05f));
  ValueId b = param(prefix + ".b_0", {d}, normal_init(0.f, 0.02f));
  Dims stat(xd.begin(), xd.end() - 1);
  if (pir_) {
    return pir_op("layer_norm", {x, w, b},
                  {{xd, DType::Float32}, {stat, DType::Float32}, {stat, DType::Float32}},
                  {{"epsilon", a_f32(1e-5)}, {"begin_norm_axis", a_i32(axis)}})[0];
  }
  std::string base = tmp_prefix("layer_norm");
  ValueId mean = value(stat, DType::Float32, base + ".tmp_0");
  ValueId var = value(stat, DType::Float32, base + ".tmp_1");
  ValueId y = value(xd, DType::Float32, base + ".tmp_2");
  legacy_op("layer_norm", {{"Bias", {b}}, {"Scale", {w}}, {"X", {x}}},
            {{"Mean", {mean}}, {"Variance", {var}}, {"Y", {y}}},
            {{"begin_norm_axis", a_i32(axis)}, {"epsilon", a_f32(1e-5)}});
  return y;
}

ValueId GraphBuilder::matmul(ValueId x, ValueId y) {
  const Dims& xd = dims(x);
  const Dims& yd = dims(y);
  Dims bx(xd.begin(), xd.end() - 2), by(yd.begin(), yd.end() - 2);
  Dims od = broadcast(bx, by);
  od.push_back(xd[xd.size() - 2]);
  od.push_back(yd.back());
  if (pir_)
    return pir1("matmul", {x, y}, od,
                {{"transpose_x", a_bool(false)}, {"transpose_y", a_bool(false)}});
  ValueId o = tmp("matmul_v2", od);
  legacy_op("matmul_v2", {{"X", {x}}, {"Y", {y}}}, {{"Out", {o}}},
            {{"trans_x", a_bool(false)}, {"trans_y", a_bool(false)}});
  return o;
}

ValueId GraphBuilder::linear(ValueId x, const std::string& prefix, int64_t in, int64_t out,
                             float w_std) {
  ValueId w = param(prefix + ".w_0", {in, out}, normal_init(0.f, w_std));
  ValueId b = param(prefix + ".b_0", {out}, normal_init(0.f, 0.01f));
  return add(matmul(x, w), b);
}

ValueId GraphBuilder::reshape(ValueId x, const Dims& shape) {
  Dims od = shape;
  for (size_t k = 0; k < od.size(); ++k)
    if (od[k] == 0) od[k] = dims(x)[k];
  if (pir_) {
    ValueId s = full_int_array(shape);
    return pir1("reshape", {x, s}, od, {});
  }
  return legacy_xshape("reshape2", "reshape2", {{"Shape", {}}, {"ShapeTensor", {}}, {"X", {x}}}, x,
                       od, {{"shape", a_i32s(shape)}});
}

ValueId GraphBuilder::transpose(ValueId x, const Dims& perm) {
  Dims od;
  for (int64_t k : perm) od.push_back(dims(x)[k]);
  if (pir_) return pir1("transpose", {x}, od, {{"perm", a_arr32(perm)}});
  return legacy_xshape("transpose2", "transpose", {{"X", {x}}}, x, od, {{"axis", a_i32s(perm)}});
}

ValueId GraphBuilder::slice(ValueId x, const Dims& axes, const Dims& starts, const Dims& ends,
                            const Dims& decrease) {
  const Dims& xd = dims(x);
  Dims od = xd;
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t d = xd[axes[k]];
    if (d < 0) continue;
    int64_t s = std::min(std::max<int64_t>(starts[k] < 0 ? starts[k] + d : starts[k], 0), d);
    int64_t e = std::min(std::max<int64_t>(ends[k] < 0 ? ends[k] + d : ends[k], 0), d);
    od[axes[k]] = std::max<int64_t>(e - s, 0);
  }
  Dims out;
  for (size_t k = 0; k < od.size(); ++k)
    if (std::find(decrease.begin(), decrease.end(), static_cast<int64_t>(k)) == decrease.end())
      out.push_back(od[k]);
  const DType dt = p_.values[x].type.dtype;
  if (pir_) {
    ValueId s = full_int_array(starts);
    ValueId e = full_int_array(ends);
    return pir1("slice", {x, s, e}, out,
                {{"axes", a_arr64(axes)},
                 {"infer_flags", a_arr64(Dims(axes.size(), 1))},
                 {"decrease_axis", a_arr64(decrease)}},
                dt);
  }
  ValueId o = value(
      out, dt,
      p_.values[x].name + "_slice_" + std::to_string(counters_["slice@" + p_.values[x].name]++));
  legacy_op("slice",
            {{"EndsTensor", {}},
             {"EndsTensorList", {}},
             {"Input", {x}},
             {"StartsTensor", {}},
             {"StartsTensorList", {}}},
            {{"Out", {o}}},
            {{"axes", a_i32s(axes)},
             {"decrease_axis", a_i32s(decrease)},
             {"ends", a_i32s(ends)},
             {"infer_flags", a_i32s(Dims(axes.size(), 1))},
             {"starts", a_i32s(starts)}});
  return o;
}

ValueId GraphBuilder::scale(ValueId x, double s) {
  if (pir_) {
    ValueId f = full({1}, s, DType::Float32);
    return pir1("scale", {x, f}, dims(x), {{"bias", a_f32(0)}, {"bias_after_scale", a_bool(true)}});
  }
  ValueId o = value(dims(x), DType::Float32, py_tmp());
  legacy_op("scale", {{"ScaleTensor", {}}, {"X", {x}}}, {{"Out", {o}}},
            {{"bias", a_f32(0)}, {"bias_after_scale", a_bool(true)}, {"scale", a_f32(s)}});
  return o;
}

ValueId GraphBuilder::softmax(ValueId x) {
  if (pir_) return pir1("softmax", {x}, dims(x), {{"axis", a_i32(-1)}});
  return legacy_unary("softmax", "softmax", x, dims(x), {{"axis", a_i32(-1)}});
}

ValueId GraphBuilder::gelu(ValueId x) {
  if (pir_) return pir1("gelu", {x}, dims(x), {{"approximate", a_bool(false)}});
  return legacy_unary("gelu", "gelu", x, dims(x), {{"approximate", a_bool(false)}});
}

ValueId GraphBuilder::mean(ValueId x, int64_t axis) {
  Dims od;
  for (size_t k = 0; k < dims(x).size(); ++k)
    if (static_cast<int64_t>(k) != axis) od.push_back(dims(x)[k]);
  if (pir_)
    return pir1("mean", {x}, od, {{"axis", a_intarray({axis})}, {"keepdim", a_bool(false)}});
  return legacy_unary(
      "reduce_mean", "mean", x, od,
      {{"dim", a_i32s({axis})}, {"keep_dim", a_bool(false)}, {"reduce_all", a_bool(false)}});
}

ValueId GraphBuilder::batch_size(ValueId x) {
  const int64_t rank = static_cast<int64_t>(dims(x).size());
  ValueId s;
  if (pir_) {
    // Paddle marks shape results stop_gradient.
    s = pir1("shape64", {x}, {rank}, {}, DType::Int64);
    sg_[s] = true;
    ops_.back().result_attrs = {{"stop_gradient", a_bools({true})}};
  } else {
    s = tmp("shape", {rank}, DType::Int32);
    legacy_op("shape", {{"Input", {x}}}, {{"Out", {s}}}, {});
  }
  return slice(s, {0}, {0}, {1}, {0});
}

ValueId GraphBuilder::expand_batch(ValueId t, ValueId b) {
  const Dims& td = dims(t);
  Dims od = {-1, td[1], td[2]};
  if (pir_) {
    ValueId m1 = full({}, -1, DType::Int64);
    ValueId m2 = full({}, -1, DType::Int64);
    ValueId c = combine({b, m1, m2});
    ValueId st = pir1("stack", {c}, {3}, {{"axis", a_i32(0)}}, DType::Int64);
    return pir1("expand", {t, st}, od, {});
  }
  auto fill = [&]() {
    ValueId f = tmp("fill_constant", {1}, DType::Int32);
    legacy_op("fill_constant", {{"ShapeTensor", {}}, {"ShapeTensorList", {}}, {"ValueTensor", {}}},
              {{"Out", {f}}},
              {{"dtype", a_i32(2)},
               {"force_cpu", a_bool(true)},
               {"place_type", a_i32(-1)},
               {"shape", a_i64s({1})},
               {"str_value", a_str("-1")},
               {"value", a_f32(-1)}});
    return f;
  };
  ValueId f1 = fill();
  ValueId f2 = fill();
  ValueId o = tmp("expand", od);
  legacy_op("expand_v2", {{"Shape", {}}, {"X", {t}}, {"expand_shapes_tensor", {b, f1, f2}}},
            {{"Out", {o}}}, {{"shape", a_i32s({-2, -1, -1})}});
  return o;
}

ValueId GraphBuilder::combine(const std::vector<ValueId>& xs) {
  Value v;
  v.type.kind = ValueType::Kind::Vector;
  bool stop = true;
  for (ValueId x : xs) {
    v.type.elements.push_back(p_.values[x].type);
    stop = stop && sg_[x];
  }
  ValueId r = p_.add_value(std::move(v));
  sg_.push_back(stop);
  Op op;
  op.type = "builtin.combine";
  for (ValueId x : xs) op.inputs.push_back(OpSlot{"", {x}});
  op.outputs.push_back(OpSlot{"", {r}});
  op.attrs = {{"struct_name", a_str(struct_name())}};
  op.result_attrs = {{"stop_gradient", a_bools({stop})}};
  ops_.push_back(std::move(op));
  return r;
}

ValueId GraphBuilder::concat(const std::vector<ValueId>& xs, int64_t axis) {
  Dims od = dims(xs[0]);
  for (size_t k = 1; k < xs.size(); ++k) {
    int64_t d = dims(xs[k])[axis];
    od[axis] = (od[axis] < 0 || d < 0) ? -1 : od[axis] + d;
  }
  for (size_t k = 0; k < od.size(); ++k)
    if (static_cast<int64_t>(k) != axis && od[k] < 0)
      for (ValueId x : xs) od[k] = std::max(od[k], dims(x)[k]);
  if (pir_) {
    ValueId a = full({1}, static_cast<double>(axis), DType::Int32);
    ValueId c = combine(xs);
    return pir1("concat", {c, a}, od, {});
  }
  ValueId o = tmp("concat", od);
  legacy_op("concat", {{"AxisTensor", {}}, {"X", xs}}, {{"Out", {o}}}, {{"axis", a_i32(axis)}});
  return o;
}

std::string GraphBuilder::struct_name() const {
  std::string s = "/";
  for (const auto& x : scope_) s += x + "/";
  return s;
}

}  // namespace builder
}  // namespace pif
