// The GraphBuilder's core: seeded weight generation, attribute constructors, values, parameters,
// inputs / outputs, raw PIR and legacy op emission, and finish (renumbering, weights).
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

}  // namespace

Init normal_init(float mean, float std) { return Init{Init::Normal, mean, std}; }
Init uniform_init(float lo, float hi) { return Init{Init::Uniform, lo, hi}; }
Init he_init(int64_t fan_in) {
  return normal_init(0.f, std::sqrt(2.0f / static_cast<float>(fan_in)));
}

namespace {
Attr attr_of(Attr::Kind k) {
  Attr a;
  a.kind = k;
  return a;
}
Attr a_int(Attr::Kind k, int64_t v) {
  Attr a = attr_of(k);
  a.i = v;
  return a;
}
Attr a_ints(Attr::Kind k, std::vector<int64_t> v) {
  Attr a = attr_of(k);
  a.ints = std::move(v);
  return a;
}
Attr a_array(Attr::Kind item, const std::vector<int64_t>& v) {
  Attr a = attr_of(Attr::Kind::Array);
  for (int64_t x : v) a.items.push_back(a_int(item, x));
  return a;
}
}  // namespace

Attr a_bool(bool b) {
  Attr a = attr_of(Attr::Kind::Bool);
  a.b = b;
  return a;
}
Attr a_i32(int64_t v) { return a_int(Attr::Kind::Int32, v); }
Attr a_f32(double v) {
  Attr a = attr_of(Attr::Kind::Float32);
  a.f = static_cast<double>(static_cast<float>(v));
  return a;
}
Attr a_f64(double v) {
  Attr a = attr_of(Attr::Kind::Float64);
  a.f = v;
  return a;
}
Attr a_str(const std::string& s) {
  Attr a = attr_of(Attr::Kind::String);
  a.s = s;
  return a;
}
Attr a_strs(std::vector<std::string> v) {
  Attr a = attr_of(Attr::Kind::Strings);
  a.strs = std::move(v);
  return a;
}
Attr a_i32s(std::vector<int64_t> v) { return a_ints(Attr::Kind::Int32s, std::move(v)); }
Attr a_i64s(std::vector<int64_t> v) { return a_ints(Attr::Kind::Int64s, std::move(v)); }
Attr a_intarray(std::vector<int64_t> v) { return a_ints(Attr::Kind::Int64s, std::move(v)); }
Attr a_arr32(const std::vector<int64_t>& v) { return a_array(Attr::Kind::Int32, v); }
Attr a_arr64(const std::vector<int64_t>& v) { return a_array(Attr::Kind::Int64, v); }
Attr a_bools(const std::vector<bool>& v) {
  Attr a = attr_of(Attr::Kind::Array);
  for (bool b : v) a.items.push_back(a_bool(b));
  return a;
}
Attr a_dtype(const std::string& s) {
  Attr a = attr_of(Attr::Kind::DType);
  a.s = s;
  return a;
}
Attr a_place(int64_t alloc, int64_t dev) {
  Attr a = attr_of(Attr::Kind::Place);
  a.ints = {alloc, dev};
  return a;
}

// ------------------------------------------------------------ graph builder

ValueId GraphBuilder::value(Dims d, DType dt, const std::string& name) {
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

std::string GraphBuilder::tmp_prefix(const std::string& prefix) {
  return prefix + "_" + std::to_string(counters_[prefix]++);
}

ValueId GraphBuilder::tmp(const std::string& prefix, Dims d, DType dt) {
  return value(std::move(d), dt, pir_ ? "" : tmp_prefix(prefix) + ".tmp_0");
}

ValueId GraphBuilder::param(const std::string& name, Dims d, Init init, bool trainable) {
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

ValueId GraphBuilder::input(const std::string& name, Dims d) {
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

void GraphBuilder::output(ValueId v) {
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

std::vector<ValueId> GraphBuilder::pir_op(const std::string& name, const std::vector<ValueId>& ins,
                                          const std::vector<std::pair<Dims, DType>>& outs,
                                          Attrs attrs) {
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

ValueId GraphBuilder::pir1(const std::string& name, const std::vector<ValueId>& ins, Dims d,
                           Attrs attrs, DType dt) {
  return pir_op(name, ins, {{std::move(d), dt}}, std::move(attrs))[0];
}

void GraphBuilder::legacy_op(const std::string& type, std::vector<OpSlot> ins,
                             std::vector<OpSlot> outs, Attrs attrs, bool quant_attr) {
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

ValueId GraphBuilder::legacy_unary(const std::string& type, const std::string& prefix, ValueId x,
                                   Dims d, Attrs attrs) {
  ValueId y = tmp(prefix, std::move(d));
  legacy_op(type, {{"X", {x}}}, {{"Out", {y}}}, std::move(attrs));
  return y;
}

ValueId GraphBuilder::legacy_xshape(const std::string& type, const std::string& prefix,
                                    std::vector<OpSlot> ins, ValueId x, Dims d, Attrs attrs) {
  std::string base = tmp_prefix(prefix);
  ValueId y = value(std::move(d), DType::Float32, base + ".tmp_0");
  Dims xs = {0};
  for (int64_t v : dims(x)) xs.push_back(v);
  ValueId xshape = value(xs, DType::Float32, base + ".tmp_1");
  legacy_op(type, std::move(ins), {{"Out", {y}}, {"XShape", {xshape}}}, std::move(attrs));
  return y;
}

ValueId GraphBuilder::full_int_array(const Dims& v) {
  return pir1("full_int_array", {}, {static_cast<int64_t>(v.size())},
              {{"value", a_arr64(v)}, {"dtype", a_dtype("int64")}, {"place", a_place(1, 0)}},
              DType::Int64);
}

ValueId GraphBuilder::full(const Dims& shape, double v, DType dt) {
  const char* dn = dt == DType::Float32 ? "float32" : dt == DType::Int32 ? "int32" : "int64";
  if (dt == DType::Float32) v = static_cast<double>(static_cast<float>(v));
  return pir1("full", {}, shape,
              {{"shape", a_intarray(shape)},
               {"value", a_f64(v)},
               {"dtype", a_dtype(dn)},
               {"place", a_place(1, 0)}},
              dt);
}
namespace {

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

}  // namespace

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

}  // namespace builder
}  // namespace pif
