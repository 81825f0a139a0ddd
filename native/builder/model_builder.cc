// Model builder: see model_builder.h. The graph idioms imitate real exports:
// PIR as Paddle 3.0.0 writes it (shared/fixtures: pplcnet_x0_25_textline_ori_pir,
// ppocrv5_server_rec_pir_graphonly) and legacy ProgramDesc as Paddle 2.6
// `paddle.jit.save` writes it (mobilenetv3_small_x0_35_meter_legacy;
// svtrnet_rus_rec_legacy_graphonly for the ViT-specific ops), or for
// PP-ShiTuV2_rec as Paddle 2.3.2 wrote the official export
// (pp_shituv2_rec_legacy_graphonly, compared in test/builder-official).
#include "builder/model_builder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <utility>

#include "common/error.h"

namespace pif {
namespace {

// ------------------------------------------------------------------ random

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct SplitMix {
  uint64_t s;
  uint64_t next() {
    s += 0x9E3779B97F4A7C15ull;
    return mix64(s);
  }
};

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Uniform in [0, 1) from the top 24 bits.
inline float unit(uint64_t r) { return static_cast<float>(r >> 40) * (1.0f / 16777216.0f); }

// Approximately standard normal (Irwin-Hall of four 16-bit uniforms, scaled
// to unit variance; support +-3.46): no transcendental functions, so the
// bytes are the same with every libm.
inline float normal(uint64_t r) {
  float s =
      static_cast<float>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48)) +
      2.0f;  // (k + 0.5) per term
  return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508075688772f;
}

struct Init {
  enum Kind : uint8_t { Normal, Uniform } kind = Normal;
  float a = 0, b = 0;  // Normal: mean, std. Uniform: lo, hi.
};
Init normal_init(float mean, float std) { return Init{Init::Normal, mean, std}; }
Init uniform_init(float lo, float hi) { return Init{Init::Uniform, lo, hi}; }
Init he_init(int64_t fan_in) {
  return normal_init(0.f, std::sqrt(2.0f / static_cast<float>(fan_in)));
}

// Fills `n` floats; element i depends only on (seed, name, i), in chunks so
// that large tensors are generated in parallel with the same bytes.
void fill_param(float* out, int64_t n, const Init& init, uint64_t seed, const std::string& name) {
  constexpr int64_t kChunk = 1 << 16;
  const uint64_t base = mix64(seed ^ mix64(hash_name(name)));
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 4)
  for (int64_t c = 0; c < chunks; ++c) {
    SplitMix rng{mix64(base + static_cast<uint64_t>(c) * 0xD1B54A32D192ED03ull)};
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) {
      const uint64_t r = rng.next();
      out[i] = init.kind == Init::Normal ? init.a + init.b * normal(r)
                                         : init.a + (init.b - init.a) * unit(r);
    }
  }
}

// --------------------------------------------------------------- attributes

Attr a_bool(bool b) {
  Attr a;
  a.kind = Attr::Kind::Bool;
  a.b = b;
  return a;
}
Attr a_int(Attr::Kind k, int64_t v) {
  Attr a;
  a.kind = k;
  a.i = v;
  return a;
}
Attr a_i32(int64_t v) { return a_int(Attr::Kind::Int32, v); }
// float attributes hold the value as the float the file stores.
Attr a_f32(double v) {
  Attr a;
  a.kind = Attr::Kind::Float32;
  a.f = static_cast<double>(static_cast<float>(v));
  return a;
}
Attr a_f64(double v) {
  Attr a;
  a.kind = Attr::Kind::Float64;
  a.f = v;
  return a;
}
Attr a_str(const std::string& s) {
  Attr a;
  a.kind = Attr::Kind::String;
  a.s = s;
  return a;
}
Attr a_strs(std::vector<std::string> v) {
  Attr a;
  a.kind = Attr::Kind::Strings;
  a.strs = std::move(v);
  return a;
}
Attr a_ints(Attr::Kind k, std::vector<int64_t> v) {  // legacy INTS/LONGS, PIR a_intarray
  Attr a;
  a.kind = k;
  a.ints = std::move(v);
  return a;
}
Attr a_i32s(std::vector<int64_t> v) { return a_ints(Attr::Kind::Int32s, std::move(v)); }
Attr a_i64s(std::vector<int64_t> v) { return a_ints(Attr::Kind::Int64s, std::move(v)); }
Attr a_intarray(std::vector<int64_t> v) { return a_ints(Attr::Kind::Int64s, std::move(v)); }
// PIR 0.a_array of 0.a_i32 / 0.a_i64.
Attr a_array(Attr::Kind item, const std::vector<int64_t>& v) {
  Attr a;
  a.kind = Attr::Kind::Array;
  for (int64_t x : v) a.items.push_back(a_int(item, x));
  return a;
}
Attr a_arr32(const std::vector<int64_t>& v) { return a_array(Attr::Kind::Int32, v); }
Attr a_arr64(const std::vector<int64_t>& v) { return a_array(Attr::Kind::Int64, v); }
Attr a_bools(const std::vector<bool>& v) {
  Attr a;
  a.kind = Attr::Kind::Array;
  for (bool b : v) a.items.push_back(a_bool(b));
  return a;
}
Attr a_dtype(const std::string& s) {
  Attr a;
  a.kind = Attr::Kind::DType;
  a.s = s;
  return a;
}
Attr a_place(int64_t alloc, int64_t dev) {
  Attr a;
  a.kind = Attr::Kind::Place;
  a.ints = {alloc, dev};
  return a;
}

using Attrs = std::vector<NamedAttr>;
using Dims = std::vector<int64_t>;

// ------------------------------------------------------------ graph builder

struct PendingParam {
  std::string name;
  Dims dims;
  Init init;
  bool trainable = true;
  ValueId value = kNoValue;
};

// The Paddle release whose legacy ProgramDesc a build imitates: the official
// PP-ShiTuV2_rec export was written by Paddle 2.3.2 (dygraph-to-static in
// `paddle.jit.save`), which differs from 2.6 in the empty conv2d input slots
// it keeps and in not appending scale(1.0) before the fetch.
enum class LegacyWriter : uint8_t { Paddle26, Paddle23 };

class GraphBuilder {
 public:
  explicit GraphBuilder(ProgramFormat f, LegacyWriter w = LegacyWriter::Paddle26)
      : pir_(f == ProgramFormat::Pir), paddle23_(w == LegacyWriter::Paddle23) {
    p_.format = f;
    p_.has_version = true;
    if (pir_) {
      p_.version = 1;
      p_.pir_trainable = true;
      p_.pir_region_name = "region_0";
    } else {
      p_.version = paddle23_ ? 2003002 : 2006002;
    }
    p_.blocks.emplace_back();
    p_.blocks[0].idx = 0;
    p_.blocks[0].parent_idx = -1;
    if (pir_) p_.blocks[0].pir_name = "block_0";
  }

  bool pir() const { return pir_; }
  const Dims& dims(ValueId v) const { return p_.values[v].type.dims; }

  // Debug scope for PIR struct_name ("/PPLCNetV2/...").
  void push(const std::string& s) { scope_.push_back(s); }
  void pop() { scope_.pop_back(); }

  // ---- values and params

  ValueId value(Dims d, DType dt = DType::Float32, const std::string& name = "") {
    Value v;
    v.name = name;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = dt;
    v.type.dims = std::move(d);
    if (pir_) {
      v.type.layout = "NCHW";
    } else {
      v.var_type = 7;
      v.desc_field = 3;
      v.present = Value::kHasPersistable;
    }
    ValueId id = p_.add_value(std::move(v));
    sg_.push_back(false);
    return id;
  }

  // Legacy temporary names: "<prefix>_<k>.tmp_<j>", k from Paddle's
  // unique-name counter of <prefix>.
  std::string tmp_prefix(const std::string& prefix) {
    return prefix + "_" + std::to_string(counters_[prefix]++);
  }
  // Starts the counter of `prefix` at n: layers constructed before the traced
  // forward (a Conv2D takes conv2d_N, an nn.Sigmoid sigmoid_N) share the
  // counter with the op helpers of the same name.
  void seed_counter(const std::string& prefix, int n) { counters_[prefix] = n; }
  // Python operators on tensors (math_op_patch) name their result tmp_<k>.
  std::string py_tmp() { return "tmp_" + std::to_string(counters_["tmp"]++); }
  ValueId tmp(const std::string& prefix, Dims d, DType dt = DType::Float32) {
    return value(std::move(d), dt, pir_ ? "" : tmp_prefix(prefix) + ".tmp_0");
  }

  ValueId param(const std::string& name, Dims d, Init init, bool trainable = true) {
    ValueId v = value(d, DType::Float32, name);
    Value& val = p_.values[v];
    val.persistable = true;
    if (pir_) {
      val.is_parameter = true;
      val.stop_gradient = !trainable;
    }
    sg_[v] = !trainable;
    params_.push_back(PendingParam{name, std::move(d), init, trainable, v});
    return v;
  }

  ValueId input(const std::string& name, Dims d) {
    if (pir_) {
      ValueId v = value(d, DType::Float32, name);
      Op op;
      op.type = "pd_op.data";
      op.attrs = {{"name", a_str(name)},
                  {"shape", a_intarray(d)},
                  {"dtype", a_dtype("float32")},
                  {"place", a_place(0, 0)}};
      op.outputs.push_back(OpSlot{"", {v}});
      op.result_attrs = {{"stop_gradient", a_bools({false})}};
      ops_.push_back(std::move(op));
      p_.inputs.push_back(IoBinding{name, v, 0});
      return v;
    }
    feed_ = value({}, DType::Undefined, "feed");
    {
      Value& f = p_.values[feed_];
      f.type.kind = ValueType::Kind::Null;
      f.var_type = 9;
      f.desc_field = 0;
      f.persistable = true;
    }
    ValueId v = value(d, DType::Float32, name);
    p_.values[v].present = 0;
    legacy_op("feed", {{"X", {feed_}}}, {{"Out", {v}}}, {{"col", a_i32(0)}}, true);
    p_.inputs.push_back(IoBinding{name, v, 0});
    return v;
  }

  void output(ValueId v) {
    if (pir_) {
      ValueId r = value(dims(v));
      Op op;
      op.type = "pd_op.fetch";
      op.attrs = {{"name", a_str("fetch_name_0")}, {"col", a_i32(0)}};
      op.inputs.push_back(OpSlot{"", {v}});
      op.outputs.push_back(OpSlot{"", {r}});
      op.result_attrs = {{"persistable", a_bools({true})}, {"stop_gradient", a_bools({false})}};
      ops_.push_back(std::move(op));
      p_.outputs.push_back(IoBinding{"fetch_name_0", v, 0});
      return;
    }
    ValueId f = value({}, DType::Undefined, "fetch");
    {
      Value& fv = p_.values[f];
      fv.type.kind = ValueType::Kind::Null;
      fv.var_type = 10;
      fv.desc_field = 0;
      fv.persistable = true;
    }
    if (paddle23_) {  // Paddle 2.3 fetches the output itself
      legacy_op("fetch", {{"X", {v}}}, {{"Out", {f}}}, {{"col", a_i32(0)}}, true);
      p_.outputs.push_back(IoBinding{p_.values[v].name, v, 0});
      return;
    }
    // Paddle 2.6 `paddle.jit.save` appends scale(1.0) before each fetch.
    ValueId s = value(dims(v), DType::Float32, "save_infer_model/scale_0.tmp_0");
    legacy_op("scale", {{"ScaleTensor", {}}, {"X", {v}}}, {{"Out", {s}}},
              {{"bias", a_f32(0)}, {"bias_after_scale", a_bool(true)}, {"scale", a_f32(1)}});
    legacy_op("fetch", {{"X", {s}}}, {{"Out", {f}}}, {{"col", a_i32(0)}}, true);
    p_.outputs.push_back(IoBinding{p_.values[s].name, s, 0});
  }

  // ---- raw op emission

  // PIR op: one operand per input (kNoValue = null operand), fresh results
  // of the given types, struct_name appended, OA stop_gradient computed as
  // Paddle does (a result stops gradients iff every operand does).
  std::vector<ValueId> pir_op(const std::string& name, const std::vector<ValueId>& ins,
                              const std::vector<std::pair<Dims, DType>>& outs, Attrs attrs) {
    Op op;
    op.type = "pd_op." + name;
    bool stop = true;
    for (ValueId v : ins) {
      op.inputs.push_back(OpSlot{"", {v}});
      if (v != kNoValue) stop = stop && sg_[v];
    }
    std::vector<ValueId> res;
    for (const auto& o : outs) {
      ValueId r = value(o.first, o.second);
      sg_[r] = stop;
      op.outputs.push_back(OpSlot{"", {r}});
      res.push_back(r);
    }
    attrs.push_back({"struct_name", a_str(struct_name())});
    op.attrs = std::move(attrs);
    op.result_attrs = {{"stop_gradient", a_bools(std::vector<bool>(res.size(), stop))}};
    ops_.push_back(std::move(op));
    return res;
  }
  ValueId pir1(const std::string& name, const std::vector<ValueId>& ins, Dims d, Attrs attrs,
               DType dt = DType::Float32) {
    return pir_op(name, ins, {{std::move(d), dt}}, std::move(attrs))[0];
  }

  // Legacy op: named slots, attributes sorted by name with Paddle's role
  // attributes added.
  void legacy_op(const std::string& type, std::vector<OpSlot> ins, std::vector<OpSlot> outs,
                 Attrs attrs, bool quant_attr = false) {
    Op op;
    op.type = type;
    op.inputs = std::move(ins);
    op.outputs = std::move(outs);
    attrs.push_back({"op_device", a_str("")});
    attrs.push_back({"op_namescope", a_str("/")});
    attrs.push_back({"op_role", a_i32(0)});
    attrs.push_back({"op_role_var", a_strs({})});
    if (quant_attr) attrs.push_back({"with_quant_attr", a_bool(false)});
    std::stable_sort(attrs.begin(), attrs.end(),
                     [](const NamedAttr& a, const NamedAttr& b) { return a.name < b.name; });
    op.attrs = std::move(attrs);
    ops_.push_back(std::move(op));
  }
  // Common legacy shape: X -> Out.
  ValueId legacy_unary(const std::string& type, const std::string& prefix, ValueId x, Dims d,
                       Attrs attrs) {
    ValueId y = tmp(prefix, std::move(d));
    legacy_op(type, {{"X", {x}}}, {{"Out", {y}}}, std::move(attrs));
    return y;
  }
  // Legacy ops with an XShape output (reshape2, transpose2, flatten_contiguous_range).
  ValueId legacy_xshape(const std::string& type, const std::string& prefix, std::vector<OpSlot> ins,
                        ValueId x, Dims d, Attrs attrs) {
    std::string base = tmp_prefix(prefix);
    ValueId y = value(std::move(d), DType::Float32, base + ".tmp_0");
    Dims xs = {0};
    for (int64_t v : dims(x)) xs.push_back(v);
    ValueId xshape = value(xs, DType::Float32, base + ".tmp_1");
    legacy_op(type, std::move(ins), {{"Out", {y}}, {"XShape", {xshape}}}, std::move(attrs));
    return y;
  }

  // ---- PIR constants

  ValueId full_int_array(const Dims& v) {
    return pir1("full_int_array", {}, {static_cast<int64_t>(v.size())},
                {{"value", a_arr64(v)}, {"dtype", a_dtype("int64")}, {"place", a_place(1, 0)}},
                DType::Int64);
  }
  ValueId full(const Dims& shape, double v, DType dt) {
    const char* dn = dt == DType::Float32 ? "float32" : dt == DType::Int32 ? "int32" : "int64";
    if (dt == DType::Float32) v = static_cast<double>(static_cast<float>(v));
    return pir1("full", {}, shape,
                {{"shape", a_intarray(shape)},
                 {"value", a_f64(v)},
                 {"dtype", a_dtype(dn)},
                 {"place", a_place(1, 0)}},
                dt);
  }

  // ---- layers (format-neutral)

  ValueId conv2d(ValueId x, ValueId w, int64_t stride, int64_t pad, int64_t groups) {
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

  // Conv bias. PIR: reshape(bias, [1,C,1,1]) + add. Legacy: the static
  // conv helper's append_bias_op, an elementwise_add of the 1-D bias with
  // axis=1 whose output is the helper's next temporary (conv2d_N.tmp_1).
  ValueId conv_bias(ValueId y, ValueId b) {
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

  ValueId batch_norm(ValueId x, const std::string& prefix) {
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

  ValueId act(const std::string& type, ValueId x) {
    if (pir_) return pir1(type, {x}, dims(x), {});
    return legacy_unary(type, type, x, dims(x), {});
  }

  static Dims broadcast(const Dims& a, const Dims& b) {
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
  ValueId binary(const std::string& pir_name, const std::string& legacy, ValueId x, ValueId y) {
    Dims d = broadcast(dims(x), dims(y));
    if (pir_) return pir1(pir_name, {x, y}, d, {});
    ValueId o = value(d, DType::Float32, tmp_prefix(legacy));
    legacy_op(legacy, {{"X", {x}}, {"Y", {y}}}, {{"Out", {o}}}, {{"axis", a_i32(-1)}});
    return o;
  }
  ValueId add(ValueId x, ValueId y) { return binary("add", "elementwise_add", x, y); }
  // Python `x + y` (a residual): the legacy result is named tmp_<k>.
  ValueId plus(ValueId x, ValueId y) {
    if (pir_) return add(x, y);
    ValueId o = value(broadcast(dims(x), dims(y)), DType::Float32, py_tmp());
    legacy_op("elementwise_add", {{"X", {x}}, {"Y", {y}}}, {{"Out", {o}}}, {{"axis", a_i32(-1)}});
    return o;
  }
  ValueId multiply(ValueId x, ValueId y) { return binary("multiply", "elementwise_mul", x, y); }

  // Adaptive average pooling to 1x1.
  ValueId avg_pool_1x1(ValueId x) {
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

  // nn.Dropout(p, mode="downscale_in_infer") in eval mode.
  ValueId dropout(ValueId x, double prob) {
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

  ValueId flatten(ValueId x, int64_t start, int64_t stop) {
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

  ValueId layer_norm(ValueId x, const std::string& prefix) {
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

  ValueId matmul(ValueId x, ValueId y) {
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
  ValueId linear(ValueId x, const std::string& prefix, int64_t in, int64_t out, float w_std) {
    ValueId w = param(prefix + ".w_0", {in, out}, normal_init(0.f, w_std));
    ValueId b = param(prefix + ".b_0", {out}, normal_init(0.f, 0.01f));
    return add(matmul(x, w), b);
  }

  ValueId reshape(ValueId x, const Dims& shape) {
    Dims od = shape;
    for (size_t k = 0; k < od.size(); ++k)
      if (od[k] == 0) od[k] = dims(x)[k];
    if (pir_) {
      ValueId s = full_int_array(shape);
      return pir1("reshape", {x, s}, od, {});
    }
    return legacy_xshape("reshape2", "reshape2", {{"Shape", {}}, {"ShapeTensor", {}}, {"X", {x}}},
                         x, od, {{"shape", a_i32s(shape)}});
  }

  ValueId transpose(ValueId x, const Dims& perm) {
    Dims od;
    for (int64_t k : perm) od.push_back(dims(x)[k]);
    if (pir_) return pir1("transpose", {x}, od, {{"perm", a_arr32(perm)}});
    return legacy_xshape("transpose2", "transpose", {{"X", {x}}}, x, od, {{"axis", a_i32s(perm)}});
  }

  ValueId slice(ValueId x, const Dims& axes, const Dims& starts, const Dims& ends,
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

  // x * s (Python scalar multiply).
  ValueId scale(ValueId x, double s) {
    if (pir_) {
      ValueId f = full({1}, s, DType::Float32);
      return pir1("scale", {x, f}, dims(x),
                  {{"bias", a_f32(0)}, {"bias_after_scale", a_bool(true)}});
    }
    ValueId o = value(dims(x), DType::Float32, py_tmp());
    legacy_op("scale", {{"ScaleTensor", {}}, {"X", {x}}}, {{"Out", {o}}},
              {{"bias", a_f32(0)}, {"bias_after_scale", a_bool(true)}, {"scale", a_f32(s)}});
    return o;
  }

  ValueId softmax(ValueId x) {
    if (pir_) return pir1("softmax", {x}, dims(x), {{"axis", a_i32(-1)}});
    return legacy_unary("softmax", "softmax", x, dims(x), {{"axis", a_i32(-1)}});
  }

  ValueId gelu(ValueId x) {
    if (pir_) return pir1("gelu", {x}, dims(x), {{"approximate", a_bool(false)}});
    return legacy_unary("gelu", "gelu", x, dims(x), {{"approximate", a_bool(false)}});
  }

  ValueId mean(ValueId x, int64_t axis) {
    Dims od;
    for (size_t k = 0; k < dims(x).size(); ++k)
      if (static_cast<int64_t>(k) != axis) od.push_back(dims(x)[k]);
    if (pir_)
      return pir1("mean", {x}, od, {{"axis", a_intarray({axis})}, {"keepdim", a_bool(false)}});
    return legacy_unary(
        "reduce_mean", "mean", x, od,
        {{"dim", a_i32s({axis})}, {"keep_dim", a_bool(false)}, {"reduce_all", a_bool(false)}});
  }

  // B = paddle.shape(x)[0]: shape op + slice with decrease_axis (0-D).
  ValueId batch_size(ValueId x) {
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

  // t.expand((B, -1, -1)) for a [1,1,d] parameter.
  ValueId expand_batch(ValueId t, ValueId b) {
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
      legacy_op("fill_constant",
                {{"ShapeTensor", {}}, {"ShapeTensorList", {}}, {"ValueTensor", {}}}, {{"Out", {f}}},
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

  ValueId combine(const std::vector<ValueId>& xs) {
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

  ValueId concat(const std::vector<ValueId>& xs, int64_t axis) {
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

  // ---- finish

  Program finish(uint64_t seed, std::shared_ptr<std::vector<uint8_t>>* arena_out);

 private:
  std::string struct_name() const {
    std::string s = "/";
    for (const auto& x : scope_) s += x + "/";
    return s;
  }
  void remap(const std::vector<ValueId>& order);

  bool pir_;
  bool paddle23_;
  Program p_;
  std::vector<bool> sg_;  // stop_gradient per value (PIR OA)
  std::vector<Op> ops_;
  std::vector<PendingParam> params_;
  std::map<std::string, int> counters_;
  std::vector<std::string> scope_;
  ValueId feed_ = kNoValue;
};

// Renumbers values so that p_.values follows `order` (old ids, each once).
void GraphBuilder::remap(const std::vector<ValueId>& order) {
  std::vector<ValueId> nid(p_.values.size(), kNoValue);
  std::vector<Value> vals;
  vals.reserve(order.size());
  for (ValueId old : order) {
    nid[old] = static_cast<ValueId>(vals.size());
    vals.push_back(std::move(p_.values[old]));
  }
  auto m = [&](ValueId v) { return v == kNoValue ? kNoValue : nid[v]; };
  for (Block& b : p_.blocks) {
    for (Op& op : b.ops) {
      for (OpSlot& s : op.inputs)
        for (ValueId& v : s.args) v = m(v);
      for (OpSlot& s : op.outputs)
        for (ValueId& v : s.args) v = m(v);
    }
    for (ValueId& v : b.vars) v = m(v);
    for (ValueId& v : b.args) v = m(v);
  }
  for (IoBinding& io : p_.inputs) io.value = m(io.value);
  for (IoBinding& io : p_.outputs) io.value = m(io.value);
  for (PendingParam& pp : params_) pp.value = m(pp.value);
  p_.values = std::move(vals);
}

Program GraphBuilder::finish(uint64_t seed, std::shared_ptr<std::vector<uint8_t>>* arena_out) {
  Block& blk = p_.blocks[0];
  std::vector<ValueId> order;
  std::vector<bool> seen(p_.values.size(), false);
  if (pir_) {
    // Parameter ops first, in reverse creation order (as Paddle writes them),
    // then the body; values are numbered in definition order from 1.
    for (auto it = params_.rbegin(); it != params_.rend(); ++it) {
      Op op;
      op.type = "builtin.parameter";
      op.attrs = {{"is_distributed", a_bool(false)},
                  {"is_parameter", a_bool(true)},
                  {"need_clip", a_bool(true)},
                  {"parameter_name", a_str(it->name)}};
      op.outputs.push_back(OpSlot{"", {it->value}});
      op.result_attrs = {{"persistable", a_bool(true)},
                         {"stop_gradient", a_bool(!it->trainable)},
                         {"trainable", a_bool(it->trainable)}};
      op.extra = {{"DA", "[]"}, {"QA", "[]"}};
      blk.ops.push_back(std::move(op));
    }
    for (Op& op : ops_) blk.ops.push_back(std::move(op));
    for (const Op& op : blk.ops)
      for (const OpSlot& s : op.outputs)
        for (ValueId v : s.args)
          if (!seen[v]) {
            seen[v] = true;
            order.push_back(v);
          }
    for (size_t v = 0; v < p_.values.size(); ++v)
      if (!seen[v]) order.push_back(static_cast<ValueId>(v));
    remap(order);
    for (size_t k = 0; k < p_.values.size(); ++k) p_.values[k].pir_id = static_cast<int64_t>(k + 1);
  } else {
    // Paddle writes block vars sorted by name, with feed/fetch appended.
    for (Op& op : ops_) blk.ops.push_back(std::move(op));
    for (size_t v = 0; v < p_.values.size(); ++v) order.push_back(static_cast<ValueId>(v));
    auto rank = [&](ValueId v) {
      const std::string& n = p_.values[v].name;
      return n == "feed" ? 1 : n == "fetch" ? 2 : 0;
    };
    std::stable_sort(order.begin(), order.end(), [&](ValueId a, ValueId b) {
      int ra = rank(a), rb = rank(b);
      if (ra != rb) return ra < rb;
      return p_.values[a].name < p_.values[b].name;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      if (p_.values[order[k]].name == p_.values[order[k - 1]].name) {
        throw ModelError(code::kFormat, "", -1, "model builder",
                         "duplicate variable name " + p_.values[order[k]].name);
      }
    }
    remap(order);
    blk.vars.clear();
    for (size_t k = 0; k < p_.values.size(); ++k) blk.vars.push_back(static_cast<ValueId>(k));
  }

  // Parameters sorted by name, bound in one 64-byte-aligned arena.
  std::vector<size_t> idx(params_.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(),
            [&](size_t a, size_t b) { return params_[a].name < params_[b].name; });
  uint64_t total = 0;
  std::vector<uint64_t> offs;
  for (size_t k : idx) {
    int64_t n = 1;
    for (int64_t d : params_[k].dims) n *= d;
    offs.push_back(total);
    total += (static_cast<uint64_t>(n) * 4 + 63) & ~uint64_t{63};
  }
  auto arena = std::make_shared<std::vector<uint8_t>>(total);
  p_.params.clear();
  for (size_t j = 0; j < idx.size(); ++j) {
    const PendingParam& pp = params_[idx[j]];
    if (j > 0 && pp.name == params_[idx[j - 1]].name) {
      throw ModelError(code::kFormat, "", -1, "model builder", "duplicate parameter " + pp.name);
    }
    Parameter prm;
    prm.name = pp.name;
    prm.value = pp.value;
    prm.tensor.dtype = DType::Float32;
    prm.tensor.dims = pp.dims;
    prm.tensor.storage = arena;
    prm.tensor.offset = offs[j];
    prm.tensor.nbytes = static_cast<uint64_t>(prm.tensor.numel()) * 4;
    prm.loaded = true;
    fill_param(reinterpret_cast<float*>(arena->data() + offs[j]), prm.tensor.numel(), pp.init, seed,
               pp.name);
    p_.values[pp.value].param_index = static_cast<int32_t>(j);
    p_.params.push_back(std::move(prm));
  }
  if (arena_out) *arena_out = arena;
  return std::move(p_);
}

// ------------------------------------------------------------- PP-ShiTuV2_rec

// PPLCNetV2_base_ShiTu + BNNeck (architectures.md section 1), as PaddleClas
// (the revision of 2022-08 that exported the official model) constructs it.
// Paddle names a parameter after its layer: each Conv2D / BatchNorm2D takes
// the next conv2d_N / batch_norm2d_N of a per-type unique-name counter when
// it is constructed, whether or not the exported forward uses it. So the
// names follow __init__ order, not the forward: the training-only
// re-parameterisation branches (dw_conv_list) take numbers, and
// PPLCNetV2_base_ShiTu replaces layers after PPLCNetV2 has built them all:
// last_conv (re-created with a bias) and the two stage-4 blocks (re-created
// with stride 1, so block 0 gains a third branch), in that order. Checked
// against the official inference.pdiparams.info (test/builder-official).

struct ShituBlock {
  int64_t cin, cout, stride, dw;
  bool rep, se, split, shortcut;
};

// Block i of stage s (0..3) as PPLCNetV2 configures it; the stem's block is
// stage -1.
ShituBlock shitu_block(int s, int64_t i, bool shitu_stride) {
  if (s < 0) return {32, 64, 1, 3, false, false, false, false};
  const int64_t base[4] = {64, 128, 256, 512};
  ShituBlock b;
  b.cin = i == 0 ? base[s] : base[s] * 2;
  b.cout = base[s] * 2;
  b.stride = (i == 0 && !(s == 3 && shitu_stride)) ? 2 : 1;
  b.dw = s < 2 ? 3 : 5;
  b.rep = s >= 2;
  b.se = s == 2;
  b.split = s == 2;
  b.shortcut = s == 3;
  return b;
}

struct ConvBnNames {
  std::string conv, bn;
};
struct ShituBlockNames {
  ConvBnNames dw;  // rep blocks: the re-parameterised conv (bias, no BN)
  std::string se1, se2;
  std::vector<ConvBnNames> pw;  // one, or two when split
};
struct ShituNames {
  ConvBnNames stem;
  ShituBlockNames stem_block;
  std::vector<std::vector<ShituBlockNames>> stages;  // what the forward uses
  std::string last_conv;
  // Layers constructed per unique-name key that the traced forward's op
  // helpers share (legacy temporaries continue these counters).
  int conv_layers = 0, sigmoid_layers = 0, dropout_layers = 0, flatten_layers = 0;
};

ShituNames shitu_names() {
  ShituNames n;
  int conv = 0, bn = 0;
  auto conv_bn = [&] {
    return ConvBnNames{"conv2d_" + std::to_string(conv++), "batch_norm2d_" + std::to_string(bn++)};
  };
  auto block = [&](const ShituBlock& b) {
    ShituBlockNames k;
    if (b.rep) {
      // dw_conv_list: kernels dw, dw-2, ..., 1 (1 only at stride 1), each a
      // ConvBNLayer; then the Conv2D (with bias) they are folded into.
      for (int64_t ks = b.dw; ks > 0; ks -= 2)
        if (ks != 1 || b.stride == 1) conv_bn();
      k.dw.conv = "conv2d_" + std::to_string(conv++);
    } else {
      k.dw = conv_bn();
    }
    if (b.se) {
      k.se1 = "conv2d_" + std::to_string(conv++);
      k.se2 = "conv2d_" + std::to_string(conv++);
      ++n.sigmoid_layers;
    }
    k.pw.push_back(conv_bn());
    if (b.split) k.pw.push_back(conv_bn());
    return k;
  };
  const int64_t depths[4] = {2, 2, 6, 2};
  // PPLCNetV2.__init__: stem, stages, last_conv (bias-free), dropout,
  // flatten, fc (a Linear: no conv/bn name).
  n.stem = conv_bn();
  n.stem_block = block(shitu_block(-1, 0, false));
  n.stages.resize(4);
  for (int s = 0; s < 4; ++s)
    for (int64_t i = 0; i < depths[s]; ++i) n.stages[s].push_back(block(shitu_block(s, i, false)));
  ++conv;  // the original last_conv
  ++n.dropout_layers;
  ++n.flatten_layers;
  // PPLCNetV2_base_ShiTu: upgrade_sublayer("last_conv") then the stage-4
  // blocks; the replaced layers keep the numbers they took.
  n.last_conv = "conv2d_" + std::to_string(conv++);
  for (int64_t i = 0; i < depths[3]; ++i) n.stages[3][i] = block(shitu_block(3, i, true));
  ++n.flatten_layers;  // BNNeck.flatten (its BatchNorm1D is batch_norm1d_0)
  n.conv_layers = conv;
  return n;
}

void build_shitu(GraphBuilder& g) {
  const ShituNames names = shitu_names();
  if (!g.pir()) {
    g.seed_counter("conv2d", names.conv_layers);
    g.seed_counter("dropout", names.dropout_layers);
    g.seed_counter("flatten", names.flatten_layers);
    // The official export's first sigmoid temporary is sigmoid_7: one more
    // sigmoid name was taken before tracing than the six SE layers account
    // for (by the exporting process, not by PaddleClas's model code).
    g.seed_counter("sigmoid", names.sigmoid_layers + 1);
  }

  auto conv_bn = [&](ValueId x, const ConvBnNames& nm, int64_t cin, int64_t cout, int64_t k,
                     int64_t stride, int64_t groups) {
    g.push("ConvBNLayer");
    g.push("Conv2D");
    ValueId w =
        g.param(nm.conv + ".w_0", {cout, cin / groups, k, k}, he_init(cin / groups * k * k));
    ValueId y = g.conv2d(x, w, stride, (k - 1) / 2, groups);
    g.pop();
    g.push("BatchNorm2D");
    y = g.batch_norm(y, nm.bn);
    g.pop();
    g.push("ReLU");
    y = g.act("relu", y);
    g.pop();
    g.pop();
    return y;
  };
  auto conv_with_bias = [&](ValueId x, const std::string& cn, int64_t cin, int64_t cout, int64_t k,
                            int64_t stride, int64_t groups, Init wi) {
    ValueId w = g.param(cn + ".w_0", {cout, cin / groups, k, k}, wi);
    ValueId b = g.param(cn + ".b_0", {cout}, normal_init(0.f, 0.05f));
    ValueId y = g.conv2d(x, w, stride, (k - 1) / 2, groups);
    return g.conv_bias(y, b);
  };
  auto se = [&](ValueId x, const ShituBlockNames& nm, int64_t c) {
    g.push("SEModule");
    ValueId id = x;
    g.push("AdaptiveAvgPool2D");
    ValueId y = g.avg_pool_1x1(x);
    g.pop();
    g.push("Conv2D");
    y = conv_with_bias(y, nm.se1, c, c / 4, 1, 1, 1, he_init(c));
    g.pop();
    g.push("ReLU");
    y = g.act("relu", y);
    g.pop();
    g.push("Conv2D_1");
    y = conv_with_bias(y, nm.se2, c / 4, c, 1, 1, 1, normal_init(0.f, std::sqrt(1.0f / (c / 4))));
    g.pop();
    g.push("Sigmoid");
    y = g.act("sigmoid", y);
    g.pop();
    y = g.multiply(id, y);
    g.pop();
    return y;
  };
  // RepDepthwiseSeparable in eval mode, re-parameterised.
  auto rep_ds = [&](ValueId x, const ShituBlock& b, const ShituBlockNames& nm) {
    g.push("RepDepthwiseSeparable");
    ValueId y;
    if (b.rep) {
      g.push("Conv2D");
      y = conv_with_bias(x, nm.dw.conv, b.cin, b.cin, b.dw, b.stride, b.cin, he_init(b.dw * b.dw));
      g.pop();
      g.push("ReLU");
      y = g.act("relu", y);
      g.pop();
    } else {
      y = conv_bn(x, nm.dw, b.cin, b.cin, b.dw, b.stride, b.cin);
    }
    if (b.se) y = se(y, nm, b.cin);
    if (b.split) {
      y = conv_bn(y, nm.pw[0], b.cin, b.cout / 2, 1, 1, 1);
      y = conv_bn(y, nm.pw[1], b.cout / 2, b.cout, 1, 1, 1);
    } else {
      y = conv_bn(y, nm.pw[0], b.cin, b.cout, 1, 1, 1);
    }
    if (b.shortcut && b.stride == 1 && b.cin == b.cout) y = g.plus(y, x);
    g.pop();
    return y;
  };

  ValueId x = g.input("x", {-1, 3, 224, 224});
  g.push("RecModel");
  g.push("PPLCNetV2");
  g.push("Sequential");
  x = conv_bn(x, names.stem, 3, 32, 3, 2, 1);
  x = rep_ds(x, shitu_block(-1, 0, true), names.stem_block);
  g.pop();
  for (int s = 0; s < 4; ++s) {
    g.push(s == 0 ? std::string("Sequential_1") : "Sequential_" + std::to_string(s + 1));
    for (size_t i = 0; i < names.stages[s].size(); ++i)
      x = rep_ds(x, shitu_block(s, static_cast<int64_t>(i), true), names.stages[s][i]);
    g.pop();
  }
  g.push("AdaptiveAvgPool2D");
  x = g.avg_pool_1x1(x);
  g.pop();
  // last_conv with bias; its ReLU is an Identity in the ShiTu variant.
  g.push("Conv2D");
  x = conv_with_bias(x, names.last_conv, 1024, 512, 1, 1, 1,
                     normal_init(0.f, std::sqrt(1.0f / 1024)));
  g.pop();
  g.push("Dropout");
  x = g.dropout(x, 0.2);
  g.pop();
  g.push("Flatten");
  x = g.flatten(x, 1, 3);
  g.pop();
  g.pop();  // PPLCNetV2
  g.push("BNNeck");
  g.push("Flatten");
  x = g.flatten(x, 1, 1);
  g.pop();
  g.push("BatchNorm1D");
  x = g.batch_norm(x, "batch_norm1d_0");
  g.pop();
  g.pop();
  g.pop();  // RecModel
  g.output(x);
}

// -------------------------------------------------------------- CLIP ViT

struct VitConfig {
  int64_t patch, width, depth, heads;
  bool drop_cls;
};

// CLIP ViT feature model (architectures.md section 2): PaddleClas
// foundation_vit VisionTransformer with return_embed/return_mean_embed, then
// the FC neck.
void build_vit(GraphBuilder& g, const VitConfig& c, ClipActivation act) {
  const int64_t grid = 224 / c.patch;
  const int64_t T = grid * grid + 1;
  const int64_t d = c.width;
  const int64_t hd = d / c.heads;
  const float lin_std = 0.02f;

  ValueId x = g.input("x", {-1, 3, 224, 224});
  g.push("RecModel");
  g.push("VisionTransformer");
  ValueId B = g.batch_size(x);
  g.push("PatchEmbed");
  g.push("Conv2D");
  ValueId pw = g.param("conv2d_0.w_0", {d, 3, c.patch, c.patch},
                       normal_init(0.f, std::sqrt(1.0f / (3 * c.patch * c.patch))));
  ValueId y = g.conv2d(x, pw, c.patch, 0, 1);
  g.pop();
  y = g.flatten(y, 2, 3);
  y = g.transpose(y, {0, 2, 1});
  g.pop();
  ValueId pos = g.param("vision_transformer_0.w_0", {1, T, d}, normal_init(0.f, lin_std));
  ValueId cls = g.param("vision_transformer_0.w_1", {1, 1, d}, normal_init(0.f, lin_std));
  ValueId cls_b = g.expand_batch(cls, B);
  y = g.concat({cls_b, y}, 1);
  y = g.add(y, pos);
  g.push("LayerNorm");
  y = g.layer_norm(y, "layer_norm_0");
  g.pop();

  for (int64_t i = 0; i < c.depth; ++i) {
    g.push(i == 0 ? std::string("Block") : "Block_" + std::to_string(i));
    const std::string ln1 = "layer_norm_" + std::to_string(2 * i + 1);
    const std::string ln2 = "layer_norm_" + std::to_string(2 * i + 2);
    const std::string qkv = "linear_" + std::to_string(4 * i);
    const std::string proj = "linear_" + std::to_string(4 * i + 1);
    const std::string fc1 = "linear_" + std::to_string(4 * i + 2);
    const std::string fc2 = "linear_" + std::to_string(4 * i + 3);
    g.push("LayerNorm");
    ValueId h = g.layer_norm(y, ln1);
    g.pop();
    g.push("Attention");
    h = g.linear(h, qkv, d, 3 * d, lin_std);
    h = g.reshape(h, {-1, T, 3, c.heads, hd});
    h = g.transpose(h, {2, 0, 3, 1, 4});
    ValueId q = g.slice(h, {0}, {0}, {1}, {0});
    ValueId k = g.slice(h, {0}, {1}, {2}, {0});
    ValueId v = g.slice(h, {0}, {2}, {3}, {0});
    ValueId kt = g.transpose(k, {0, 1, 3, 2});
    ValueId a = g.matmul(q, kt);
    a = g.scale(a, 1.0 / std::sqrt(static_cast<double>(hd)));
    a = g.softmax(a);
    ValueId o = g.matmul(a, v);
    o = g.transpose(o, {0, 2, 1, 3});
    o = g.reshape(o, {-1, T, d});
    o = g.linear(o, proj, d, d, lin_std);
    g.pop();
    y = g.add(y, o);
    g.push("LayerNorm_1");
    h = g.layer_norm(y, ln2);
    g.pop();
    g.push("Mlp");
    h = g.linear(h, fc1, d, 4 * d, lin_std);
    if (act == ClipActivation::QuickGelu) {
      g.push("QuickGELU");
      ValueId s = g.scale(h, 1.702);
      s = g.act("sigmoid", s);
      h = g.multiply(h, s);
      g.pop();
    } else {
      g.push("GELU");
      h = g.gelu(h);
      g.pop();
    }
    h = g.linear(h, fc2, 4 * d, d, lin_std);
    g.pop();
    y = g.add(y, h);
    g.pop();
  }
  if (c.drop_cls) y = g.slice(y, {1}, {1}, {std::numeric_limits<int32_t>::max()}, {});
  g.push("LayerNorm");
  y = g.layer_norm(y, "layer_norm_" + std::to_string(2 * c.depth + 1));
  g.pop();
  ValueId pj = g.param("vision_transformer_0.w_2", {d, 512},
                       normal_init(0.f, 1.0f / std::sqrt(static_cast<float>(d))));
  y = g.matmul(y, pj);
  y = g.mean(y, 1);
  g.pop();  // VisionTransformer
  g.push("FC");
  g.push("Linear");
  y = g.linear(y, "linear_" + std::to_string(4 * c.depth), 512, 512, std::sqrt(2.0f / 1024));
  g.pop();
  g.pop();
  g.pop();
  g.output(y);
}

const char* const kShitu = "PP-ShiTuV2_rec";
const char* const kVitB = "PP-ShiTuV2_rec_CLIP_vit_base";
const char* const kVitL = "PP-ShiTuV2_rec_CLIP_vit_large";

}  // namespace

const std::vector<std::string>& buildable_model_names() {
  static const std::vector<std::string> names = {kShitu, kVitB, kVitL};
  return names;
}

std::string model_inference_yml(const std::string& name) {
  const auto& names = buildable_model_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw ModelError(code::kUnsupported, "", -1, "model builder",
                     "unknown model '" + name + "'; buildable models: " + list);
  }
  const bool shitu = name == kShitu;
  std::string y;
  y += "Global:\n  model_name: " + name + "\n";
  y += "Hpi:\n"
       "  backend_configs:\n"
       "    paddle_infer:\n"
       "      trt_dynamic_shapes: &id001\n"
       "        x:\n"
       "        - - 1\n          - 3\n          - 224\n          - 224\n"
       "        - - 1\n          - 3\n          - 224\n          - 224\n"
       "        - - 8\n          - 3\n          - 224\n          - 224\n"
       "    tensorrt:\n"
       "      dynamic_shapes: *id001\n";
  y += "PreProcess:\n  transform_ops:\n  - ResizeImage:\n";
  if (shitu) {
    y += "      backend: cv2\n"
         "      interpolation: bilinear\n"
         "      return_numpy: false\n"
         "      size:\n"
         "      - 224\n"
         "      - 224\n";
  } else {
    y += "      interpolation: bicubic\n"
         "      size: 224\n";
  }
  y += "  - NormalizeImage:\n"
       "      channel_num: 3\n"
       "      mean:\n"
       "      - 0.485\n"
       "      - 0.456\n"
       "      - 0.406\n";
  y += shitu ? "      order: hwc\n" : "      order: ''\n";
  y += "      scale: 0.00392156862745098\n"
       "      std:\n"
       "      - 0.229\n"
       "      - 0.224\n"
       "      - 0.225\n"
       "  - ToCHWImage: null\n"
       "PostProcess:\n"
       "  NormalizeFeatures: null\n";
  return y;
}

BuiltModel build_model(const std::string& name, ProgramFormat format, uint64_t seed,
                       const BuildOptions& opts) {
  BuiltModel out;
  out.inference_yml = model_inference_yml(name);  // validates the name
  // The official PP-ShiTuV2_rec legacy export is Paddle 2.3.2's.
  GraphBuilder g(format, name == kShitu ? LegacyWriter::Paddle23 : LegacyWriter::Paddle26);
  if (name == kShitu) {
    build_shitu(g);
  } else if (name == kVitB) {
    build_vit(g, VitConfig{16, 768, 12, 12, true}, opts.clip_activation);
  } else {
    build_vit(g, VitConfig{14, 1024, 24, 16, false}, opts.clip_activation);
  }
  out.model.program = g.finish(seed, nullptr);
  out.model.params_layout = ParamsLayout::Combined;
  return out;
}

}  // namespace pif
