// ONNX exporter: lowered Nodes -> ONNX ModelProto (see onnx.h).
//
// Each converter mirrors the attribute parsing of the matching reference
// kernel (kernels/ref/*.cc). Ranks and dims come from the declared value
// types (exact for parameters and folded constants); an op whose translation
// needs a dim that is only known at run time fails with PIF_MODEL_UNSUPPORTED
// instead of guessing.
//
// onnx.proto field numbers used here:
//   ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7,
//     opset_import 8.  OperatorSetIdProto: domain 1, version 2.
//   GraphProto: node 1, name 2, initializer 5, input 11, output 12.
//   NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
//   AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20
//     (FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7).
//   TensorProto: dims 1, data_type 2, name 8, raw_data 9.
//   ValueInfoProto: name 1, type 2.  TypeProto: tensor_type 1.
//   TypeProto.Tensor: elem_type 1, shape 2.  TensorShapeProto: dim 1.
//   Dimension: dim_value 1, dim_param 2.
#include "export/onnx.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "format/wire.h"
#include "graph/attr_num.h"
#include "graph/op_def.h"

namespace pif {
namespace {

using wire::Writer;

// ONNX TensorProto.DataType codes.
int onnx_dtype(DType t) {
  switch (t) {
    case DType::Float32: return 1;
    case DType::UInt8: return 2;
    case DType::Int8: return 3;
    case DType::Int16: return 5;
    case DType::Int32: return 6;
    case DType::Int64: return 7;
    case DType::Bool: return 9;
    case DType::Float16: return 10;
    case DType::Float64: return 11;
    case DType::Complex64: return 14;
    case DType::Complex128: return 15;
    case DType::BFloat16: return 16;
    case DType::Float8E4M3FN: return 17;
    case DType::Float8E5M2: return 19;
    default: return 0;
  }
}

bool is_float(DType t) {
  return t == DType::Float32 || t == DType::Float64 || t == DType::Float16 || t == DType::BFloat16;
}
bool is_int(DType t) {
  return t == DType::Int8 || t == DType::UInt8 || t == DType::Int16 || t == DType::Int32 ||
         t == DType::Int64;
}

// ---------------------------------------------------------------- protobuf

std::string tensor_proto(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                         const void* data, size_t nbytes) {
  std::string s;
  Writer w(&s);
  for (int64_t d : dims) w.int_field(1, d);
  w.int_field(2, onnx_dtype(dt));
  if (!name.empty()) w.bytes_field(8, name);
  w.bytes_field(9, std::string(static_cast<const char*>(data), nbytes));
  return s;
}

// A serialized AttributeProto.
struct OA {
  std::string bytes;
};

OA attr_head(const std::string& name, int type, std::string* s) {
  Writer w(s);
  w.bytes_field(1, name);
  w.int_field(20, type);
  return OA{};
}

OA a_i(const std::string& name, int64_t v) {
  OA a;
  attr_head(name, 2, &a.bytes);
  Writer(&a.bytes).int_field(3, v);
  return a;
}
OA a_f(const std::string& name, double v) {
  OA a;
  attr_head(name, 1, &a.bytes);
  Writer(&a.bytes).float_field(2, static_cast<float>(v));
  return a;
}
OA a_s(const std::string& name, const std::string& v) {
  OA a;
  attr_head(name, 3, &a.bytes);
  Writer(&a.bytes).bytes_field(4, v);
  return a;
}
OA a_is(const std::string& name, const std::vector<int64_t>& v) {
  OA a;
  attr_head(name, 7, &a.bytes);
  Writer w(&a.bytes);
  for (int64_t x : v) w.int_field(8, x);
  return a;
}
OA a_t(const std::string& name, const std::string& tensor) {
  OA a;
  attr_head(name, 4, &a.bytes);
  Writer(&a.bytes).bytes_field(5, tensor);
  return a;
}

// ---------------------------------------------------------------- numbers

// A numeric attribute value, exact for integers.

// Bytes of one element of `dt` holding `v` (integers exact when v.is_int).
std::vector<uint8_t> scalar_bytes(DType dt, const Num& v) {
  std::vector<uint8_t> b(dtype_size(dt));
  auto put = [&](auto x) { std::memcpy(b.data(), &x, sizeof(x)); };
  switch (dt) {
    case DType::Float32: put(static_cast<float>(v.d)); break;
    case DType::Float64: put(v.d); break;
    case DType::Int8: put(static_cast<int8_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::UInt8: put(static_cast<uint8_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Int16: put(static_cast<int16_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Int32: put(static_cast<int32_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Int64: put(static_cast<int64_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Bool: put(static_cast<uint8_t>(v.d != 0 ? 1 : 0)); break;
    case DType::Float16: {
      // Round-to-nearest float -> half (finite values; inf/nan kept).
      float f = static_cast<float>(v.d);
      uint32_t x;
      std::memcpy(&x, &f, 4);
      uint32_t sign = (x >> 16) & 0x8000u;
      int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
      uint32_t mant = x & 0x7fffffu;
      uint16_t h;
      if (((x >> 23) & 0xff) == 0xff)
        h = static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
      else if (exp >= 31)
        h = static_cast<uint16_t>(sign | 0x7c00u);
      else if (exp <= 0) {
        if (exp < -10)
          h = static_cast<uint16_t>(sign);
        else {
          mant |= 0x800000u;
          uint32_t shift = static_cast<uint32_t>(14 - exp);
          uint32_t hm = mant >> shift;
          if ((mant >> (shift - 1)) & 1u) ++hm;
          h = static_cast<uint16_t>(sign | hm);
        }
      } else {
        uint32_t hm = mant >> 13;
        uint32_t r = static_cast<uint32_t>(sign) | (static_cast<uint32_t>(exp) << 10) | hm;
        if (mant & 0x1000u) ++r;
        h = static_cast<uint16_t>(r);
      }
      put(h);
      break;
    }
    case DType::BFloat16: {
      float f = static_cast<float>(v.d);
      uint32_t x;
      std::memcpy(&x, &f, 4);
      x += 0x7fffu + ((x >> 16) & 1u);
      put(static_cast<uint16_t>(x >> 16));
      break;
    }
    default:
      throw OpError(code::kUnsupported, std::string("no constant of dtype ") + dtype_name(dt));
  }
  return b;
}

// Legacy / PIR dtype attribute (mirrors shape_ops.cc attr_dtype).
DType attr_dtype(const Op& op, const std::string& name, DType def) {
  const Attr* a = op.attr(name);
  if (!a) return def;
  DType t;
  int64_t code;
  if (a->kind == Attr::Kind::DType || a->kind == Attr::Kind::String) {
    if (!dtype_from_name(a->s, &t)) throw OpError(code::kFormat, "unknown dtype '" + a->s + "'");
    return t;
  }
  if (a->as_int(&code)) {
    if (code == -1) return DType::Undefined;
    if (!dtype_from_legacy(code, &t))
      throw OpError(code::kFormat, "unknown dtype code " + std::to_string(code));
    return t;
  }
  throw OpError(code::kFormat, "attribute '" + name + "' is not a dtype");
}

// Values of an integer / float tensor as int64 (false for other dtypes).
bool tensor_ints(const Tensor& t, std::vector<int64_t>* out) {
  int64_t n = t.numel();
  out->assign(static_cast<size_t>(n), 0);
  const uint8_t* p = t.data();
  if (n && !p) return false;
  for (int64_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::Int64: {
        int64_t v;
        std::memcpy(&v, p + i * 8, 8);
        (*out)[i] = v;
        break;
      }
      case DType::Int32: {
        int32_t v;
        std::memcpy(&v, p + i * 4, 4);
        (*out)[i] = v;
        break;
      }
      case DType::Int16: {
        int16_t v;
        std::memcpy(&v, p + i * 2, 2);
        (*out)[i] = v;
        break;
      }
      case DType::Int8: (*out)[i] = static_cast<int8_t>(p[i]); break;
      case DType::UInt8:
      case DType::Bool: (*out)[i] = p[i]; break;
      default: return false;
    }
  }
  return true;
}

bool tensor_doubles(const Tensor& t, std::vector<double>* out) {
  int64_t n = t.numel();
  const uint8_t* p = t.data();
  if (n && !p) return false;
  out->assign(static_cast<size_t>(n), 0);
  if (t.dtype == DType::Float32) {
    for (int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, p + i * 4, 4);
      (*out)[i] = v;
    }
    return true;
  }
  if (t.dtype == DType::Float64) {
    for (int64_t i = 0; i < n; ++i) std::memcpy(&(*out)[i], p + i * 8, 8);
    return true;
  }
  std::vector<int64_t> iv;
  if (!tensor_ints(t, &iv)) return false;
  for (int64_t i = 0; i < n; ++i) (*out)[i] = static_cast<double>(iv[i]);
  return true;
}

int64_t tensor_numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// ---------------------------------------------------------------- exporter

struct Info {
  DType dtype = DType::Undefined;
  bool rank_known = false;
  std::vector<int64_t> dims;       // -1 = unknown
  const Tensor* tensor = nullptr;  // constant data (params / folded)
  std::shared_ptr<Tensor> own;     // constant data made here
};

class Exporter {
 public:
  Exporter(const Program& p, const std::vector<Node>& nodes, const OnnxOptions& o)
      : nodes_in_(nodes), p_(p), o_(o) {}
  std::string run();

 private:
  // ---- names and infos
  void assign_names();
  std::string fresh(const std::string& hint);
  const std::string& val(ValueId v);
  std::string in(const Node& n, size_t slot, size_t k = 0);
  bool has(const Node& n, size_t slot) const {
    return slot < n.inputs.size() && !n.inputs[slot].empty() && n.inputs[slot][0] != kNoValue;
  }
  std::string out(const Node& n, size_t slot, DType dt, size_t k = 0);
  // Constant data of an input (folded constant / parameter), without
  // emitting it as an initializer; null for computed values.
  const Tensor* cval(const Node& n, size_t slot, size_t k = 0) const;
  bool cints(const Node& n, size_t slot, std::vector<int64_t>* v) const;
  bool cdoubles(const Node& n, size_t slot, std::vector<double>* v) const;
  Info& info(const std::string& name);
  DType dtype_of(const std::string& name);
  int64_t rank_of(const std::string& name);
  std::vector<int64_t> dims_of(const std::string& name);
  const Tensor* const_of(const std::string& name);
  bool const_doubles(const std::string& name, std::vector<double>* v);

  // ---- emission
  void emit(const std::string& op, const std::vector<std::string>& ins,
            const std::vector<std::string>& outs, const std::vector<OA>& attrs = {});
  std::string op(const std::string& type, const std::vector<std::string>& ins,
                 const std::vector<OA>& attrs = {}, const std::string& out = "");
  void initializer(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                   const void* data, size_t nbytes);
  std::string constant(DType dt, const std::vector<int64_t>& dims,
                       const std::vector<uint8_t>& bytes);
  std::string c_i64(const std::vector<int64_t>& v);
  std::string c_i64_scalar(int64_t v);
  std::string c_scalar(DType dt, double v);  // 0-D
  std::string cast(const std::string& x, DType to);
  std::string shape_slice(const std::string& x, int64_t start, int64_t end);
  std::string ints_from_slot(const Node& n, size_t slot, std::vector<int64_t>* vals,
                             bool* is_const);
  std::string to_nchw(const std::string& x);
  std::string from_nchw(const std::string& x, const std::string& out);

  [[noreturn]] void unsupported(const std::string& msg) const;
  [[noreturn]] void bad(const std::string& msg) const;

  // ---- converters
  void convert(const Node& n);
  void cv_binary(const Node& n);
  std::string align_legacy(const std::string& s, int64_t rb, int64_t axis);
  void cv_unary(const Node& n);
  void cv_conv(const Node& n, bool transpose);
  void cv_pool(const Node& n);
  std::string adaptive_uneven(const std::string& x, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              bool is_max, const std::string& res);
  void cv_batch_norm(const Node& n);
  void cv_layer_norm(const Node& n);
  void cv_matmul(const Node& n, bool v1);
  void cv_mul(const Node& n);
  void cv_softmax(const Node& n);
  void cv_reshape(const Node& n);
  void cv_transpose(const Node& n);
  void cv_flatten(const Node& n, bool legacy2);
  void cv_squeeze(const Node& n);
  void cv_unsqueeze(const Node& n);
  void cv_concat(const Node& n);
  void cv_stack(const Node& n);
  void cv_split(const Node& n);
  void cv_slice(const Node& n);
  void cv_shape(const Node& n);
  void cv_fill(const Node& n, bool with_tensor);
  void cv_full_int_array(const Node& n);
  void cv_full_like(const Node& n);
  void cv_cast(const Node& n);
  void cv_expand(const Node& n);
  void cv_tile(const Node& n, bool strict);
  void cv_gather(const Node& n);
  void cv_reduce(const Node& n);
  void cv_interp(const Node& n);
  void cv_pixel_shuffle(const Node& n);
  void cv_grid_sample(const Node& n);

  bool rank0_as_1d(const Node& n) const;
  std::vector<int64_t> axes_attr(const Node& n, size_t tensor_slot, size_t list_slot,
                                 const std::vector<int64_t>& def_attr);

  const std::vector<Node>& nodes_in_;
  const Program& p_;
  OnnxOptions o_;
  std::string nodes_, inits_;
  std::vector<std::string> vname_;
  std::unordered_set<std::string> used_;
  std::unordered_map<std::string, Info> info_;
  std::unordered_set<std::string> defined_;
  std::map<std::string, std::string> const_cache_;
  int64_t tmp_ = 0, node_count_ = 0;
  const Node* cur_ = nullptr;
};

void Exporter::unsupported(const std::string& msg) const {
  throw ModelError(code::kUnsupported, "", -1, cur_ ? cur_->where() : std::string("onnx export"),
                   "ONNX export: " + msg);
}
void Exporter::bad(const std::string& msg) const {
  throw ModelError(code::kFormat, "", -1, cur_ ? cur_->where() : std::string("onnx export"),
                   "ONNX export: " + msg);
}

void Exporter::assign_names() {
  vname_.assign(p_.values.size(), std::string());
  // Graph inputs/outputs first so that they keep their Paddle names.
  for (const IoBinding& io : p_.inputs) {
    if (io.value >= 0 && vname_[io.value].empty() && !used_.count(io.name)) {
      vname_[io.value] = io.name;
      used_.insert(io.name);
    }
  }
  for (size_t v = 0; v < p_.values.size(); ++v) {
    if (!vname_[v].empty()) continue;
    const Value& val = p_.values[v];
    std::string n = val.name;
    if (n.empty() || used_.count(n)) {
      n = val.pir_id ? "v" + std::to_string(val.pir_id) : "value_" + std::to_string(v);
      while (used_.count(n)) n += "_";
    }
    vname_[v] = n;
    used_.insert(n);
  }
  for (const IoBinding& io : p_.outputs) used_.insert(io.name);
}

std::string Exporter::fresh(const std::string& hint) {
  std::string n;
  do {
    n = "_pif_" + std::to_string(tmp_++) + (hint.empty() ? "" : "_" + hint);
  } while (used_.count(n));
  used_.insert(n);
  return n;
}

Info& Exporter::info(const std::string& name) { return info_[name]; }

DType Exporter::dtype_of(const std::string& name) {
  auto it = info_.find(name);
  return it == info_.end() ? DType::Undefined : it->second.dtype;
}

int64_t Exporter::rank_of(const std::string& name) {
  auto it = info_.find(name);
  if (it == info_.end() || !it->second.rank_known)
    unsupported("the rank of '" + name + "' is not declared; it is needed for this op");
  return static_cast<int64_t>(it->second.dims.size());
}

std::vector<int64_t> Exporter::dims_of(const std::string& name) {
  rank_of(name);
  return info_[name].dims;
}

const Tensor* Exporter::const_of(const std::string& name) {
  auto it = info_.find(name);
  if (it == info_.end()) return nullptr;
  if (it->second.own) return it->second.own.get();
  return it->second.tensor;
}

bool Exporter::const_doubles(const std::string& name, std::vector<double>* v) {
  const Tensor* t = const_of(name);
  return t && tensor_doubles(*t, v);
}

const std::string& Exporter::val(ValueId v) {
  if (v < 0 || static_cast<size_t>(v) >= p_.values.size()) bad("invalid value id");
  const std::string& nm = vname_[v];
  if (defined_.count(nm)) return nm;
  const Value& value = p_.values[v];
  const Tensor* t = nullptr;
  if (value.constant)
    t = value.constant.get();
  else if (value.param_index >= 0)
    t = &p_.params[value.param_index].tensor;
  if (!t) {
    bad("value '" + nm +
        "' is read before any exported op produces it (an output the exporter "
        "does not compute?)");
  }
  if (t->nbytes && !t->data()) bad("parameter '" + nm + "' has no data");
  initializer(nm, t->dtype, t->dims, t->data(), t->nbytes);
  Info& i = info(nm);
  i.tensor = t;
  return nm;
}

std::string Exporter::in(const Node& n, size_t slot, size_t k) {
  if (slot >= n.inputs.size() || k >= n.inputs[slot].size() || n.inputs[slot][k] == kNoValue)
    return std::string();
  return val(n.inputs[slot][k]);
}

const Tensor* Exporter::cval(const Node& n, size_t slot, size_t k) const {
  if (slot >= n.inputs.size() || k >= n.inputs[slot].size() || n.inputs[slot][k] == kNoValue)
    return nullptr;
  const Value& v = p_.values[n.inputs[slot][k]];
  if (v.constant) return v.constant.get();
  if (v.param_index >= 0 && p_.params[v.param_index].loaded)
    return &p_.params[v.param_index].tensor;
  return nullptr;
}

bool Exporter::cints(const Node& n, size_t slot, std::vector<int64_t>* v) const {
  const Tensor* t = cval(n, slot);
  return t && tensor_ints(*t, v);
}

bool Exporter::cdoubles(const Node& n, size_t slot, std::vector<double>* v) const {
  const Tensor* t = cval(n, slot);
  return t && tensor_doubles(*t, v);
}

std::string Exporter::out(const Node& n, size_t slot, DType dt, size_t k) {
  if (slot >= n.outputs.size() || k >= n.outputs[slot].size() || n.outputs[slot][k] == kNoValue)
    bad("missing output slot " + std::to_string(slot));
  ValueId v = n.outputs[slot][k];
  const std::string& nm = vname_[v];
  const ValueType& t = p_.values[v].type;
  Info& i = info(nm);
  i.dtype = dt != DType::Undefined ? dt : t.dtype;
  i.rank_known = t.kind == ValueType::Kind::DenseTensor;
  i.dims = t.dims;
  defined_.insert(nm);
  return nm;
}

void Exporter::emit(const std::string& op, const std::vector<std::string>& ins,
                    const std::vector<std::string>& outs, const std::vector<OA>& attrs) {
  std::string s;
  Writer w(&s);
  for (const std::string& i : ins) w.bytes_field(1, i);
  for (const std::string& o : outs) w.bytes_field(2, o);
  w.bytes_field(3, op + "_" + std::to_string(node_count_++));
  w.bytes_field(4, op);
  for (const OA& a : attrs) w.bytes_field(5, a.bytes);
  Writer(&nodes_).bytes_field(1, s);
  for (const std::string& o : outs) defined_.insert(o);
}

std::string Exporter::op(const std::string& type, const std::vector<std::string>& ins,
                         const std::vector<OA>& attrs, const std::string& out) {
  std::string o = out.empty() ? fresh(type) : out;
  emit(type, ins, {o}, attrs);
  return o;
}

void Exporter::initializer(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                           const void* data, size_t nbytes) {
  if (onnx_dtype(dt) == 0) unsupported(std::string("constant of dtype ") + dtype_name(dt));
  Writer(&inits_).bytes_field(5, tensor_proto(name, dt, dims, data, nbytes));
  Info& i = info(name);
  i.dtype = dt;
  i.rank_known = true;
  i.dims = dims;
  defined_.insert(name);
}

std::string Exporter::constant(DType dt, const std::vector<int64_t>& dims,
                               const std::vector<uint8_t>& bytes) {
  std::string key = std::to_string(static_cast<int>(dt)) + "|";
  for (int64_t d : dims) key += std::to_string(d) + ",";
  key += "|" + std::string(bytes.begin(), bytes.end());
  auto it = const_cache_.find(key);
  if (it != const_cache_.end()) return it->second;
  std::string name = fresh("const");
  initializer(name, dt, dims, bytes.data(), bytes.size());
  auto t = std::make_shared<Tensor>();
  t->dtype = dt;
  t->dims = dims;
  t->storage = std::make_shared<std::vector<uint8_t>>(bytes);
  t->nbytes = bytes.size();
  info(name).own = t;
  const_cache_[key] = name;
  return name;
}

std::string Exporter::c_i64(const std::vector<int64_t>& v) {
  std::vector<uint8_t> b(v.size() * 8);
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return constant(DType::Int64, {static_cast<int64_t>(v.size())}, b);
}

std::string Exporter::c_i64_scalar(int64_t v) {
  std::vector<uint8_t> b(8);
  std::memcpy(b.data(), &v, 8);
  return constant(DType::Int64, {}, b);
}

std::string Exporter::c_scalar(DType dt, double v) {
  return constant(dt, {}, scalar_bytes(dt, num_from_double(v)));
}

std::string Exporter::cast(const std::string& x, DType to) {
  if (dtype_of(x) == to) return x;
  std::string o = op("Cast", {x}, {a_i("to", onnx_dtype(to))});
  info(o).dtype = to;
  return o;
}

// Slice of Shape(x) as int64 [end - start].
std::string Exporter::shape_slice(const std::string& x, int64_t start, int64_t end) {
  std::string s = op("Shape", {x});
  info(s).dtype = DType::Int64;
  if (start == 0 && end == std::numeric_limits<int64_t>::max()) return s;
  std::string r = op("Slice", {s, c_i64({start}), c_i64({end}), c_i64({0})});
  info(r).dtype = DType::Int64;
  return r;
}

// The integer values of a slot (one tensor, or a list of scalars / [1]
// tensors) as one int64 1-D tensor. Constant when every part is.
std::string Exporter::ints_from_slot(const Node& n, size_t slot, std::vector<int64_t>* vals,
                                     bool* is_const) {
  vals->clear();
  *is_const = true;
  for (size_t k = 0; k < n.inputs[slot].size() && *is_const; ++k) {
    if (n.inputs[slot][k] == kNoValue) continue;
    const Tensor* t = cval(n, slot, k);
    std::vector<int64_t> v;
    if (t && tensor_ints(*t, &v))
      vals->insert(vals->end(), v.begin(), v.end());
    else
      *is_const = false;
  }
  if (*is_const) return c_i64(*vals);
  vals->clear();
  std::vector<std::string> parts;
  for (size_t k = 0; k < n.inputs[slot].size(); ++k) {
    std::string t = in(n, slot, k);
    if (!t.empty()) parts.push_back(t);
  }
  std::vector<std::string> flat;
  for (const std::string& t : parts) {
    std::string c = cast(t, DType::Int64);
    std::string r = op("Reshape", {c, c_i64({-1})});
    info(r).dtype = DType::Int64;
    flat.push_back(r);
  }
  if (flat.size() == 1) return flat[0];
  std::string r = op("Concat", flat, {a_i("axis", 0)});
  info(r).dtype = DType::Int64;
  return r;
}

std::string Exporter::to_nchw(const std::string& x) {
  return op("Transpose", {x}, {a_is("perm", {0, 3, 1, 2})});
}
std::string Exporter::from_nchw(const std::string& x, const std::string& out) {
  return op("Transpose", {x}, {a_is("perm", {0, 2, 3, 1})}, out);
}

bool Exporter::rank0_as_1d(const Node& n) const {
  if (p_.format == ProgramFormat::Pir) return false;
  if (n.outputs.empty() || n.outputs[0].empty() || n.outputs[0][0] == kNoValue) return true;
  const ValueType& t = p_.values[n.outputs[0][0]].type;
  return !(t.kind == ValueType::Kind::DenseTensor && t.dims.empty());
}

// ---------------------------------------------------------------- run

std::string Exporter::run() {
  if (o_.opset < 13 || o_.opset > 17) {
    throw ModelError(code::kUnsupported, "", -1, "onnx export",
                     "opset " + std::to_string(o_.opset) + " is not supported (13..17)");
  }
  assign_names();
  // Graph inputs.
  std::string inputs;
  for (const IoBinding& io : p_.inputs) {
    const std::string& nm = vname_[io.value];
    const ValueType& t = p_.values[io.value].type;
    Info& i = info(nm);
    i.dtype = t.dtype;
    i.rank_known = t.kind == ValueType::Kind::DenseTensor;
    i.dims = t.dims;
    defined_.insert(nm);
  }
  for (const Node& n : nodes_in_) {
    cur_ = &n;
    try {
      convert(n);
    } catch (const OpError& e) {
      throw ModelError(e.code == code::kFormat ? code::kFormat : e.code, "", -1, n.where(),
                       std::string("ONNX export: ") + e.what());
    }
  }
  cur_ = nullptr;
  // Outputs: an Identity where the graph output name differs from the value.
  std::vector<std::pair<std::string, ValueId>> outs;
  for (const IoBinding& io : p_.outputs) {
    std::string src = val(io.value);
    if (src != io.name) {
      emit("Identity", {src}, {io.name});
      info(io.name) = info(src);
      info(io.name).tensor = nullptr;
      info(io.name).own.reset();
    }
    outs.emplace_back(io.name, io.value);
  }

  auto value_info = [&](const std::string& name, DType dt, const ValueType& t, bool is_input) {
    std::string shape;
    if (t.kind == ValueType::Kind::DenseTensor) {
      Writer sw(&shape);
      for (size_t k = 0; k < t.dims.size(); ++k) {
        std::string dim;
        Writer dw(&dim);
        if (t.dims[k] >= 0)
          dw.int_field(1, t.dims[k]);
        else if (k == 0)
          dw.bytes_field(2, "N");
        else if (is_input)
          dw.bytes_field(2, name + "_d" + std::to_string(k));
        sw.bytes_field(1, dim);
      }
    }
    std::string tensor;
    Writer tw(&tensor);
    tw.int_field(1, onnx_dtype(dt));
    if (t.kind == ValueType::Kind::DenseTensor) tw.bytes_field(2, shape);
    std::string type;
    Writer(&type).bytes_field(1, tensor);
    std::string vi;
    Writer vw(&vi);
    vw.bytes_field(1, name);
    vw.bytes_field(2, type);
    return vi;
  };

  std::string graph;
  Writer gw(&graph);
  graph += nodes_;
  gw.bytes_field(2, o_.graph_name);
  graph += inits_;
  for (const IoBinding& io : p_.inputs) {
    const std::string& nm = vname_[io.value];
    DType dt = dtype_of(nm);
    if (onnx_dtype(dt) == 0) {
      throw ModelError(code::kUnsupported, "", -1, "input '" + io.name + "'",
                       std::string("ONNX export: input dtype ") + dtype_name(dt));
    }
    gw.bytes_field(11, value_info(nm, dt, p_.values[io.value].type, true));
  }
  for (const auto& o : outs) {
    DType dt = dtype_of(o.first);
    if (dt == DType::Undefined) dt = p_.values[o.second].type.dtype;
    gw.bytes_field(12, value_info(o.first, dt, p_.values[o.second].type, false));
  }

  std::string model;
  Writer mw(&model);
  mw.int_field(1, 8);  // IR version 8 (opset <= 17)
  mw.bytes_field(2, o_.producer_name);
  if (!o_.producer_version.empty()) mw.bytes_field(3, o_.producer_version);
  mw.bytes_field(7, graph);
  std::string opset;
  Writer ow(&opset);
  ow.bytes_field(1, "");
  ow.int_field(2, o_.opset);
  mw.bytes_field(8, opset);
  return model;
}

// ---------------------------------------------------------------- dispatch

void Exporter::convert(const Node& n) {
  const std::string& k = n.def->name;
  static const std::unordered_set<std::string> binary = {"add",     "subtract",        "multiply",
                                                         "divide",  "elementwise_pow", "maximum",
                                                         "minimum", "floor_divide",    "remainder"};
  static const std::unordered_set<std::string> unary = {
      "relu", "relu6",      "sigmoid", "tanh",  "exp",        "log",          "sqrt",  "rsqrt",
      "abs",  "square",     "erf",     "floor", "hard_swish", "hard_sigmoid", "swish", "silu",
      "gelu", "leaky_relu", "scale",   "clip",  "pow",        "dropout",      "assign"};
  if (binary.count(k)) return cv_binary(n);
  if (unary.count(k)) return cv_unary(n);
  if (k == "conv2d") return cv_conv(n, false);
  if (k == "conv2d_transpose") return cv_conv(n, true);
  if (k == "pool2d") return cv_pool(n);
  if (k == "batch_norm") return cv_batch_norm(n);
  if (k == "layer_norm") return cv_layer_norm(n);
  if (k == "matmul") return cv_matmul(n, false);
  if (k == "matmul_v1") return cv_matmul(n, true);
  if (k == "mul") return cv_mul(n);
  if (k == "softmax") return cv_softmax(n);
  if (k == "reshape") return cv_reshape(n);
  if (k == "transpose") return cv_transpose(n);
  if (k == "flatten") return cv_flatten(n, false);
  if (k == "flatten2") return cv_flatten(n, true);
  if (k == "squeeze") return cv_squeeze(n);
  if (k == "unsqueeze") return cv_unsqueeze(n);
  if (k == "concat") return cv_concat(n);
  if (k == "stack") return cv_stack(n);
  if (k == "split" || k == "split_with_num") return cv_split(n);
  if (k == "slice" || k == "strided_slice") return cv_slice(n);
  if (k == "shape") return cv_shape(n);
  if (k == "fill_constant") return cv_fill(n, false);
  if (k == "full_with_tensor") return cv_fill(n, true);
  if (k == "full_int_array") return cv_full_int_array(n);
  if (k == "full_like") return cv_full_like(n);
  if (k == "cast") return cv_cast(n);
  if (k == "expand") return cv_expand(n);
  if (k == "tile") return cv_tile(n, false);
  if (k == "expand_times") return cv_tile(n, true);
  if (k == "gather") return cv_gather(n);
  if (k == "reduce_mean" || k == "mean_all" || k == "reduce_sum" || k == "reduce_max" ||
      k == "reduce_min" || k == "reduce_prod")
    return cv_reduce(n);
  if (k == "interpolate") return cv_interp(n);
  if (k == "pixel_shuffle") return cv_pixel_shuffle(n);
  if (k == "grid_sample") return cv_grid_sample(n);
  unsupported("no ONNX translation for op '" + n.source->type + "' (kernel " + k + ")");
}

// ---------------------------------------------------------------- elementwise

// Legacy axis alignment (elementwise.cc align_to): `s` of lower rank is
// placed at `axis` of a rank-`rb` operand. Trailing unit dims that would
// overflow are dropped; the remaining trailing positions become unit dims
// (leading ones come from NumPy broadcasting).
std::string Exporter::align_legacy(const std::string& s, int64_t rb, int64_t axis) {
  std::vector<int64_t> d = dims_of(s);
  int64_t rs0 = static_cast<int64_t>(d.size());
  while (!d.empty() && axis + static_cast<int64_t>(d.size()) > rb && d.back() == 1) d.pop_back();
  int64_t rs = static_cast<int64_t>(d.size());
  if (axis + rs > rb) {
    bad("cannot align shape " + shape_str(dims_of(s)) + " at axis " + std::to_string(axis) +
        " with rank " + std::to_string(rb));
  }
  std::string r = s;
  if (rs < rs0) {
    std::vector<int64_t> ax;
    for (int64_t i = rs; i < rs0; ++i) ax.push_back(i);
    r = op("Squeeze", {r, c_i64(ax)});
  }
  if (axis + rs < rb) {
    std::vector<int64_t> ax;
    for (int64_t i = rs; i < rb - axis; ++i) ax.push_back(i);
    r = op("Unsqueeze", {r, c_i64(ax)});
  }
  return r;
}

void Exporter::cv_binary(const Node& n) {
  std::string x = in(n, 0), y = in(n, 1);
  if (x.empty() || y.empty()) bad("missing operand");
  bool pir = n.source->type.rfind("pd_op.", 0) == 0;
  int64_t axis = pir ? -1 : AttrReader(*n.source).i("axis", -1);
  DType dt = dtype_of(x);
  if (axis >= 0) {
    int64_t rx = rank_of(x), ry = rank_of(y);
    if (rx != ry) {
      if (ry < rx)
        y = align_legacy(y, rx, axis);
      else
        x = align_legacy(x, ry, axis);
    }
  }
  const std::string& k = n.def->name;
  std::string o = out(n, 0, dt);
  if (k == "add")
    op("Add", {x, y}, {}, o);
  else if (k == "subtract")
    op("Sub", {x, y}, {}, o);
  else if (k == "multiply")
    op("Mul", {x, y}, {}, o);
  else if (k == "divide")
    op("Div", {x, y}, {}, o);
  else if (k == "elementwise_pow")
    op("Pow", {x, y}, {}, o);
  else if (k == "maximum")
    op("Max", {x, y}, {}, o);
  else if (k == "minimum")
    op("Min", {x, y}, {}, o);
  else if (k == "floor_divide") {
    if (is_float(dt)) {
      op("Floor", {op("Div", {x, y})}, {}, o);
    } else {
      std::string q = op("Floor", {op("Div", {cast(x, DType::Float64), cast(y, DType::Float64)})});
      op("Cast", {q}, {a_i("to", onnx_dtype(dt))}, o);
    }
  } else if (k == "remainder") {
    if (!is_float(dt)) {
      op("Mod", {x, y}, {a_i("fmod", 0)}, o);
    } else {
      // r = fmod(x, y); r += y where r != 0 and sign(r) != sign(y).
      std::string r = op("Mod", {x, y}, {a_i("fmod", 1)});
      std::string zero = c_scalar(dt, 0);
      std::string nz = op("Not", {op("Equal", {r, zero})});
      std::string diff = op("Xor", {op("Less", {r, zero}), op("Less", {y, zero})});
      op("Where", {op("And", {nz, diff}), op("Add", {r, y}), r}, {}, o);
    }
  } else {
    unsupported("binary op " + k);
  }
}

// ---------------------------------------------------------------- unary

void Exporter::cv_unary(const Node& n) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  if (x.empty()) bad("missing input X");
  DType dt = dtype_of(x);
  const std::string& k = n.def->name;
  std::string o = out(n, 0, dt);
  auto C = [&](double v) { return c_scalar(dt == DType::Undefined ? DType::Float32 : dt, v); };
  if (k == "relu")
    op("Relu", {x}, {}, o);
  else if (k == "relu6")
    op("Clip", {x, C(0), C(a.f("threshold", 6.0))}, {}, o);
  else if (k == "sigmoid")
    op("Sigmoid", {x}, {}, o);
  else if (k == "tanh")
    op("Tanh", {x}, {}, o);
  else if (k == "exp")
    op("Exp", {x}, {}, o);
  else if (k == "log")
    op("Log", {x}, {}, o);
  else if (k == "sqrt")
    op("Sqrt", {x}, {}, o);
  else if (k == "rsqrt")
    op("Reciprocal", {op("Sqrt", {x})}, {}, o);
  else if (k == "abs")
    op("Abs", {x}, {}, o);
  else if (k == "square")
    op("Mul", {x, x}, {}, o);
  else if (k == "erf")
    op("Erf", {x}, {}, o);
  else if (k == "floor")
    op("Floor", {x}, {}, o);
  else if (k == "hard_swish") {
    double thr = a.f("threshold", 6.0), sc = a.f("scale", 6.0), off = a.f("offset", 3.0);
    if (thr == 6.0 && sc == 6.0 && off == 3.0) {
      op("HardSwish", {x}, {}, o);
    } else {
      // y = x * min(max(x + offset, 0), threshold) / scale
      std::string c = op("Clip", {op("Add", {x, C(off)}), C(0), C(thr)});
      op("Div", {op("Mul", {x, c}), C(sc)}, {}, o);
    }
  } else if (k == "hard_sigmoid") {
    op("HardSigmoid", {x}, {a_f("alpha", a.f("slope", 0.2)), a_f("beta", a.f("offset", 0.5))}, o);
  } else if (k == "swish" || k == "silu") {
    double beta = k == "swish" ? a.f("beta", 1.0) : 1.0;
    std::string z = beta == 1.0 ? x : op("Mul", {x, C(beta)});
    op("Mul", {x, op("Sigmoid", {z})}, {}, o);
  } else if (k == "gelu") {
    if (a.b("approximate", false)) {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      std::string x3 = op("Mul", {op("Mul", {x, x}), x});
      std::string inner =
          op("Mul", {op("Add", {x, op("Mul", {x3, C(0.044715)})}), C(std::sqrt(2.0 / M_PI))});
      std::string t = op("Add", {op("Tanh", {inner}), C(1.0)});
      op("Mul", {op("Mul", {x, C(0.5)}), t}, {}, o);
    } else {
      // 0.5 x (1 + erf(x / sqrt(2)))
      std::string e = op("Add", {op("Erf", {op("Mul", {x, C(M_SQRT1_2)})}), C(1.0)});
      op("Mul", {op("Mul", {x, C(0.5)}), e}, {}, o);
    }
  } else if (k == "leaky_relu") {
    double alpha = a.f(a.has("negative_slope") ? "negative_slope" : "alpha", 0.02);
    op("LeakyRelu", {x}, {a_f("alpha", alpha)}, o);
  } else if (k == "scale") {
    double scale = a.f("scale", 1.0), bias = a.f("bias", 0.0);
    bool after = a.b("bias_after_scale", true);
    std::string st;
    if (has(n, 1)) {
      std::vector<double> v;
      if (cdoubles(n, 1, &v) && !v.empty())
        scale = v[0];
      else
        st = in(n, 1);
    }
    DType cdt = dt;
    std::string xx = x;
    bool int_x = is_int(dt);
    bool exact_int = st.empty() && scale == std::floor(scale) && bias == std::floor(bias);
    if (int_x && !exact_int) {
      cdt = DType::Float64;
      xx = cast(x, cdt);
    }
    std::string s =
        st.empty() ? (scale == 1.0 ? std::string() : c_scalar(cdt, scale)) : cast(st, cdt);
    std::string b = bias == 0.0 ? std::string() : c_scalar(cdt, bias);
    std::string r = xx;
    if (after) {
      if (!s.empty()) r = op("Mul", {r, s});
      if (!b.empty()) r = op("Add", {r, b});
    } else {
      if (!b.empty()) r = op("Add", {r, b});
      if (!s.empty()) r = op("Mul", {r, s});
    }
    if (cdt != dt)
      op("Cast", {r}, {a_i("to", onnx_dtype(dt))}, o);
    else
      op("Identity", {r}, {}, o);
  } else if (k == "clip") {
    double mn = a.f("min", -INFINITY), mx = a.f("max", INFINITY);
    std::string tmin, tmax;
    auto bound = [&](size_t slot, double* v, std::string* t) {
      if (!has(n, slot)) return;
      std::vector<double> d;
      if (cdoubles(n, slot, &d) && !d.empty()) {
        *v = d[0];
        return;
      }
      *t = op("Reshape", {cast(in(n, slot), dt), c_i64({})});
    };
    bound(1, &mn, &tmin);
    bound(2, &mx, &tmax);
    if (tmin.empty() && std::isfinite(mn)) tmin = C(mn);
    if (tmax.empty() && std::isfinite(mx)) tmax = C(mx);
    if (is_int(dt)) {
      // The int kernel clips in double; infinite bounds mean no bound.
      if (tmin.empty() && mn > -INFINITY) tmin = C(mn);
    }
    std::vector<std::string> ins = {x, tmin, tmax};
    while (!ins.empty() && ins.back().empty()) ins.pop_back();
    op("Clip", ins, {}, o);
  } else if (k == "pow") {
    double f = a.f(a.has("factor") ? "factor" : "y", 1.0);
    op("Pow", {x, C(f)}, {}, o);
  } else if (k == "dropout") {
    std::string mode = a.s(a.has("mode") ? "mode" : "dropout_implementation", "downgrade_in_infer");
    double p = a.f("dropout_prob", 0.5);
    if (has(n, 2)) {
      std::vector<double> v;
      if (!cdoubles(n, 2, &v) || v.empty())
        unsupported("dropout probability operand is not a constant");
      p = v[0];
    }
    if (mode == "upscale_in_train")
      op("Identity", {x}, {}, o);
    else if (mode == "downgrade_in_infer" || mode == "downscale_in_infer")
      op("Mul", {x, C(1.0 - p)}, {}, o);
    else
      bad("unknown dropout mode '" + mode + "'");
  } else if (k == "assign") {
    op("Identity", {x}, {}, o);
  } else {
    unsupported("unary op " + k);
  }
}

// ---------------------------------------------------------------- conv

namespace {
void pair_attr(const AttrReader& a, const char* name, int64_t def, int64_t* h, int64_t* w) {
  std::vector<int64_t> v = a.ints(name, {def, def});
  if (v.size() == 1) v.push_back(v[0]);
  if (v.size() != 2)
    throw OpError(code::kFormat, std::string("attribute '") + name + "' must have 2 values");
  *h = v[0];
  *w = v[1];
}
void pads4(const AttrReader& a, int64_t p[4]) {
  std::vector<int64_t> v = a.ints("paddings", {0, 0});
  if (v.size() == 2) {
    p[0] = p[1] = v[0];
    p[2] = p[3] = v[1];
  } else if (v.size() == 4) {
    for (int i = 0; i < 4; ++i) p[i] = v[static_cast<size_t>(i)];
  } else {
    throw OpError(code::kFormat, "attribute 'paddings' must have 2 or 4 values");
  }
}
bool layout_nhwc(const AttrReader& a, const char* name) {
  std::string f = a.s(name, "NCHW");
  if (f == "NCHW" || f == "AnyLayout" || f.empty()) return false;
  if (f == "NHWC") return true;
  throw OpError(code::kUnsupported, std::string("unsupported ") + name + " '" + f + "'");
}
void same_pad(int64_t in, int64_t st, int64_t k, int64_t* p0, int64_t* p1) {
  int64_t out = (in + st - 1) / st;
  int64_t sum = std::max<int64_t>((out - 1) * st + k - in, 0);
  *p0 = sum / 2;
  *p1 = sum - *p0;
}
}  // namespace

void Exporter::cv_conv(const Node& n, bool transpose) {
  AttrReader a(*n.source);
  int64_t sh, sw, dh, dw, p[4];
  pair_attr(a, "strides", 1, &sh, &sw);
  pair_attr(a, "dilations", 1, &dh, &dw);
  pads4(a, p);  // top, bottom, left, right
  int64_t groups = a.i("groups", 1);
  std::string algo = a.s("padding_algorithm", "EXPLICIT");
  bool nhwc = layout_nhwc(a, "data_format");
  std::string x = in(n, 0), f = in(n, 1);
  if (x.empty() || f.empty()) bad("missing Input or Filter");
  std::vector<int64_t> fd = dims_of(f);
  if (fd.size() != 4) unsupported("filter must be 4-D");
  std::vector<int64_t> xd = dims_of(x);
  if (xd.size() != 4) unsupported("input must be 4-D");
  if (nhwc) xd = {xd[0], xd[3], xd[1], xd[2]};
  int64_t H = xd[2], W = xd[3], KH = fd[2], KW = fd[3];
  std::vector<OA> attrs;
  bool auto_same = false;
  if (algo == "VALID") {
    p[0] = p[1] = p[2] = p[3] = 0;
  } else if (algo == "SAME") {
    dh = dw = 1;
    if (H >= 0 && W >= 0) {
      same_pad(H, sh, KH, &p[0], &p[1]);
      same_pad(W, sw, KW, &p[2], &p[3]);
    } else if (!transpose) {
      auto_same = true;
    } else {
      unsupported("conv2d_transpose with padding_algorithm SAME needs static input H/W");
    }
  } else if (algo != "EXPLICIT" && !algo.empty()) {
    bad("unknown padding_algorithm '" + algo + "'");
  }
  attrs.push_back(a_is("kernel_shape", {KH, KW}));
  attrs.push_back(a_is("strides", {sh, sw}));
  attrs.push_back(a_is("dilations", {dh, dw}));
  attrs.push_back(a_i("group", groups));
  if (auto_same)
    attrs.push_back(a_s("auto_pad", "SAME_UPPER"));
  else
    attrs.push_back(a_is("pads", {p[0], p[2], p[1], p[3]}));
  std::vector<std::string> ins = {nhwc ? to_nchw(x) : x, f};
  if (has(n, 2)) {
    std::string b = in(n, 2);
    if (rank_of(b) != 1) b = op("Reshape", {b, c_i64({-1})});
    ins.push_back(b);
  }
  if (transpose) {
    std::vector<int64_t> osize = a.ints("output_size", {});
    if (has(n, 3)) {
      std::vector<int64_t> v;
      if (!cints(n, 3, &v)) unsupported("conv2d_transpose output_size is not a constant");
      osize = v;
    }
    std::vector<int64_t> opad = a.ints("output_padding", {});
    if (opad.size() == 1) opad.push_back(opad[0]);
    if (!osize.empty()) {
      if (osize.size() == 1) osize.push_back(osize[0]);
      if (H < 0 || W < 0) unsupported("conv2d_transpose output_size with dynamic input H/W");
      int64_t ih = (H - 1) * sh - p[0] - p[1] + dh * (KH - 1) + 1;
      int64_t iw = (W - 1) * sw - p[2] - p[3] + dw * (KW - 1) + 1;
      opad = {osize[0] - ih, osize[1] - iw};
      if (opad[0] < 0 || opad[1] < 0) bad("output_size is smaller than the inferred size");
    }
    if (!opad.empty() && (opad[0] || opad[1])) attrs.push_back(a_is("output_padding", opad));
  }
  std::string o = out(n, 0, DType::Float32);
  const char* type = transpose ? "ConvTranspose" : "Conv";
  if (nhwc)
    from_nchw(op(type, ins, attrs), o);
  else
    op(type, ins, attrs, o);
}

// ---------------------------------------------------------------- pool

void Exporter::cv_pool(const Node& n) {
  AttrReader a(*n.source);
  std::string type = a.s("pooling_type", "max");
  bool is_max = type == "max";
  if (!is_max && type != "avg") bad("unknown pooling_type '" + type + "'");
  std::vector<int64_t> k;
  if (has(n, 1)) {
    if (!cints(n, 1, &k)) unsupported("pool2d kernel_size is not a constant");
  } else {
    k = a.ints("ksize", {});
  }
  bool global = a.b("global_pooling", false), adaptive = a.b("adaptive", false);
  bool exclusive = a.b("exclusive", true), ceil_mode = a.b("ceil_mode", false);
  int64_t sh, sw, p[4];
  pair_attr(a, "strides", 1, &sh, &sw);
  pads4(a, p);
  std::string algo = a.s("padding_algorithm", "EXPLICIT");
  bool nhwc = layout_nhwc(a, "data_format");
  std::string x = in(n, 0);
  std::vector<int64_t> xd = dims_of(x);
  if (xd.size() != 4) unsupported("pool2d input must be 4-D");
  if (nhwc) xd = {xd[0], xd[3], xd[1], xd[2]};
  int64_t H = xd[2], W = xd[3];
  if (!global) {
    if (k.size() == 1) k.push_back(k[0]);
    if (k.size() != 2) bad("pool2d kernel size must have 2 values");
  }
  std::string xi = nhwc ? to_nchw(x) : x;
  std::string o = out(n, 0, DType::Float32);
  std::string res = nhwc ? std::string() : o;
  std::string r;
  if (global || (adaptive && k[0] == 1 && k[1] == 1)) {
    r = op(is_max ? "GlobalMaxPool" : "GlobalAveragePool", {xi}, {}, res);
  } else if (adaptive) {
    // Exact only when every bin has the same size: in % out == 0.
    if (H < 0 || W < 0) {
      unsupported("adaptive pool2d to " + shape_str(k) +
                  " needs static input H/W (ONNX has no "
                  "adaptive pooling)");
    }
    if (k[0] <= 0 || k[1] <= 0) bad("adaptive pool2d output size must be positive");
    if (H % k[0] == 0 && W % k[1] == 0) {
      int64_t kh = H / k[0], kw = W / k[1];
      std::vector<OA> at = {a_is("kernel_shape", {kh, kw}), a_is("strides", {kh, kw}),
                            a_is("pads", {0, 0, 0, 0})};
      r = op(is_max ? "MaxPool" : "AveragePool", {xi}, at, res);
    } else {
      r = adaptive_uneven(xi, H, W, k[0], k[1], is_max, res);
    }
  } else {
    bool auto_same = false;
    if (algo == "VALID") {
      p[0] = p[1] = p[2] = p[3] = 0;
    } else if (algo == "SAME") {
      if (H >= 0 && W >= 0) {
        same_pad(H, sh, k[0], &p[0], &p[1]);
        same_pad(W, sw, k[1], &p[2], &p[3]);
      } else {
        auto_same = true;
      }
    } else if (algo != "EXPLICIT" && !algo.empty()) {
      bad("unknown padding_algorithm '" + algo + "'");
    }
    std::vector<OA> at = {a_is("kernel_shape", k), a_is("strides", {sh, sw})};
    if (!is_max && !exclusive && ceil_mode && !auto_same) {
      // Paddle divides by kh*kw even where a ceil-mode window runs past the
      // padded input; ONNX clips the divisor there. Zero-pad explicitly,
      // with stride - 1 extra at the end so that floor-mode pooling yields
      // the ceil-mode output count and every window is full.
      std::string padded =
          op("Pad", {xi, c_i64({0, 0, p[0], p[2], 0, 0, p[1] + sh - 1, p[3] + sw - 1})});
      at.push_back(a_is("pads", {0, 0, 0, 0}));
      at.push_back(a_i("count_include_pad", 1));
      r = op("AveragePool", {padded}, at, res);
      if (nhwc) from_nchw(r, o);
      return;
    }
    if (auto_same)
      at.push_back(a_s("auto_pad", "SAME_UPPER"));
    else
      at.push_back(a_is("pads", {p[0], p[2], p[1], p[3]}));
    if (ceil_mode) at.push_back(a_i("ceil_mode", 1));
    if (!is_max) at.push_back(a_i("count_include_pad", exclusive ? 0 : 1));
    r = op(is_max ? "MaxPool" : "AveragePool", {xi}, at, res);
  }
  if (nhwc) from_nchw(r, o);
}

// Adaptive pooling with uneven bins (Paddle: bin o of an axis covers
// [floor(o*in/out), ceil((o+1)*in/out))). Both reductions are separable:
// avg = Ah . X . Aw^T with per-axis averaging matrices (MatMul); max = the
// elementwise Max over Gathers of each bin's j-th index (short bins repeat
// their last index), first along W, then along H.
std::string Exporter::adaptive_uneven(const std::string& x, int64_t H, int64_t W, int64_t OH,
                                      int64_t OW, bool is_max, const std::string& res) {
  auto bins = [](int64_t in, int64_t out, std::vector<int64_t>* a, std::vector<int64_t>* b) {
    for (int64_t o = 0; o < out; ++o) {
      a->push_back((o * in) / out);
      b->push_back(((o + 1) * in + out - 1) / out);
    }
  };
  std::vector<int64_t> ha, hb, wa, wb;
  bins(H, OH, &ha, &hb);
  bins(W, OW, &wa, &wb);
  if (!is_max) {
    auto matrix = [&](int64_t in, int64_t out, const std::vector<int64_t>& a,
                      const std::vector<int64_t>& b, bool transposed) {
      std::vector<float> m(static_cast<size_t>(in * out), 0.f);
      for (int64_t o = 0; o < out; ++o) {
        float w = 1.f / static_cast<float>(b[o] - a[o]);
        for (int64_t i = a[o]; i < b[o]; ++i) m[transposed ? i * out + o : o * in + i] = w;
      }
      std::vector<uint8_t> bytes(m.size() * 4);
      std::memcpy(bytes.data(), m.data(), bytes.size());
      return constant(DType::Float32,
                      transposed ? std::vector<int64_t>{in, out} : std::vector<int64_t>{out, in},
                      bytes);
    };
    std::string z = W == OW ? x : op("MatMul", {x, matrix(W, OW, wa, wb, true)});
    return H == OH ? op("Identity", {z}, {}, res)
                   : op("MatMul", {matrix(H, OH, ha, hb, false), z}, {}, res);
  }
  auto reduce_axis = [&](const std::string& t, int64_t axis, const std::vector<int64_t>& a,
                         const std::vector<int64_t>& b, const std::string& o) {
    int64_t maxlen = 0;
    for (size_t i = 0; i < a.size(); ++i) maxlen = std::max(maxlen, b[i] - a[i]);
    std::vector<std::string> parts;
    for (int64_t j = 0; j < maxlen; ++j) {
      std::vector<int64_t> idx;
      for (size_t i = 0; i < a.size(); ++i) idx.push_back(std::min(a[i] + j, b[i] - 1));
      parts.push_back(op("Gather", {t, c_i64(idx)}, {a_i("axis", axis)}));
    }
    return parts.size() == 1 ? op("Identity", parts, {}, o) : op("Max", parts, {}, o);
  };
  std::string z = reduce_axis(x, 3, wa, wb, "");
  return reduce_axis(z, 2, ha, hb, res);
}

// ---------------------------------------------------------------- norms

void Exporter::cv_batch_norm(const Node& n) {
  AttrReader a(*n.source);
  double eps = a.f("epsilon", 1e-5);
  std::string fmt = a.s(a.has("data_layout") ? "data_layout" : "data_format", "NCHW");
  bool last;
  if (fmt == "NCHW" || fmt == "NCL" || fmt == "NC" || fmt == "NCDHW" || fmt == "AnyLayout" ||
      fmt.empty())
    last = false;
  else if (fmt == "NHWC" || fmt == "NLC" || fmt == "NDHWC")
    last = true;
  else
    bad("unsupported data_layout '" + fmt + "'");
  std::string x = in(n, 0), scale = in(n, 1), bias = in(n, 2), mean = in(n, 3), var = in(n, 4);
  if (x.empty() || scale.empty() || bias.empty() || mean.empty() || var.empty())
    bad("batch_norm needs X, Scale, Bias, Mean and Variance");
  std::string o = out(n, 0, DType::Float32);
  if (!last) {
    op("BatchNormalization", {x, scale, bias, mean, var}, {a_f("epsilon", eps)}, o);
    return;
  }
  // Channel-last: y = (x - mean) * a + bias, a = scale / sqrt(var + eps),
  // folded at export when the statistics are constants (as the kernel does).
  std::vector<double> s, v;
  if (const_doubles(scale, &s) && const_doubles(var, &v) && s.size() == v.size()) {
    std::vector<uint8_t> b(s.size() * 4);
    for (size_t c = 0; c < s.size(); ++c) {
      float f = static_cast<float>(static_cast<float>(s[c]) * (1.0 / std::sqrt(v[c] + eps)));
      std::memcpy(b.data() + c * 4, &f, 4);
    }
    std::string av = constant(DType::Float32, {static_cast<int64_t>(s.size())}, b);
    op("Add", {op("Mul", {op("Sub", {x, mean}), av}), bias}, {}, o);
    return;
  }
  int64_t r = rank_of(x);
  std::vector<int64_t> perm = {0, r - 1}, inv(static_cast<size_t>(r));
  for (int64_t i = 1; i < r - 1; ++i) perm.push_back(i);
  for (int64_t i = 0; i < r; ++i) inv[perm[i]] = i;
  std::string t = op("Transpose", {x}, {a_is("perm", perm)});
  std::string y = op("BatchNormalization", {t, scale, bias, mean, var}, {a_f("epsilon", eps)});
  op("Transpose", {y}, {a_is("perm", inv)}, o);
}

void Exporter::cv_layer_norm(const Node& n) {
  AttrReader a(*n.source);
  double eps = a.f("epsilon", 1e-5);
  int64_t axis = a.i("begin_norm_axis", 1);
  std::string x = in(n, 0), scale = in(n, 1), bias = in(n, 2);
  int64_t r = rank_of(x);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) bad("begin_norm_axis out of range");
  std::vector<int64_t> xd = dims_of(x);
  std::string o = out(n, 0, DType::Float32);
  // Normalise over one (flattened) last axis.
  std::string xx = x;
  bool flat = axis != r - 1;
  if (flat) {
    std::vector<int64_t> shp(static_cast<size_t>(axis), 0);
    shp.push_back(-1);
    xx = op("Reshape", {x, c_i64(shp)});
  }
  int64_t right = 1;
  for (int64_t i = axis; i < r; ++i) right = (right < 0 || xd[i] < 0) ? -1 : right * xd[i];
  std::string res = flat ? std::string() : o;
  std::string y;
  if (scale.empty() && right > 0) {
    std::vector<uint8_t> ones(static_cast<size_t>(right) * 4);
    float one = 1.f;
    for (int64_t i = 0; i < right; ++i) std::memcpy(ones.data() + i * 4, &one, 4);
    scale = constant(DType::Float32, {right}, ones);
  }
  auto flat1 = [&](const std::string& t) {
    return rank_of(t) == 1 ? t : op("Reshape", {t, c_i64({-1})});
  };
  if (o_.opset >= 17 && !scale.empty()) {
    std::vector<std::string> ins = {xx, flat1(scale)};
    if (!bias.empty()) ins.push_back(flat1(bias));
    y = op("LayerNormalization", ins, {a_i("axis", -1), a_f("epsilon", eps)}, res);
  } else {
    std::vector<OA> ra = {a_is("axes", {-1}), a_i("keepdims", 1)};
    std::string mean = op("ReduceMean", {xx}, ra);
    std::string d = op("Sub", {xx, mean});
    std::string var = op("ReduceMean", {op("Mul", {d, d})}, ra);
    std::string z = op("Div", {d, op("Sqrt", {op("Add", {var, c_scalar(DType::Float32, eps)})})});
    if (!scale.empty()) z = op("Mul", {z, flat1(scale)});
    if (!bias.empty()) z = op("Add", {z, flat1(bias)});
    y = op("Identity", {z}, {}, res);
  }
  if (flat) op("Reshape", {y, op("Shape", {x})}, {}, o);
}

// ---------------------------------------------------------------- matmul

void Exporter::cv_matmul(const Node& n, bool v1) {
  AttrReader a(*n.source);
  bool tx, ty;
  double alpha = 1.0;
  if (v1) {
    tx = a.b("transpose_X", false);
    ty = a.b("transpose_Y", false);
    alpha = a.f("alpha", 1.0);
  } else {
    tx = a.b(a.has("transpose_x") ? "transpose_x" : "trans_x", false);
    ty = a.b(a.has("transpose_y") ? "transpose_y" : "trans_y", false);
  }
  std::string x = in(n, 0), y = in(n, 1);
  int64_t rx = rank_of(x), ry = rank_of(y);
  auto swap_last = [&](const std::string& t, int64_t r) {
    std::vector<int64_t> perm;
    for (int64_t i = 0; i < r - 2; ++i) perm.push_back(i);
    perm.push_back(r - 1);
    perm.push_back(r - 2);
    return op("Transpose", {t}, {a_is("perm", perm)});
  };
  if (tx && rx >= 2) x = swap_last(x, rx);
  if (ty && ry >= 2) y = swap_last(y, ry);
  std::string o = out(n, 0, DType::Float32);
  bool vec = rx == 1 && ry == 1 && rank0_as_1d(n);
  std::string r = op("MatMul", {x, y}, {}, (alpha == 1.0 && !vec) ? o : std::string());
  if (alpha != 1.0)
    r = op("Mul", {r, c_scalar(DType::Float32, alpha)}, {}, vec ? std::string() : o);
  if (vec) op("Reshape", {r, c_i64({1})}, {}, o);
}

void Exporter::cv_mul(const Node& n) {
  AttrReader a(*n.source);
  int64_t xn = a.i("x_num_col_dims", 1), yn = a.i("y_num_col_dims", 1);
  std::string x = in(n, 0), y = in(n, 1);
  int64_t rx = rank_of(x), ry = rank_of(y);
  std::vector<int64_t> yd = dims_of(y);
  if (xn < 1 || xn > std::max<int64_t>(rx, 1) || yn < 1 || yn > std::max<int64_t>(ry, 1))
    bad("mul: num_col_dims out of range");
  std::string o = out(n, 0, DType::Float32);
  std::string x2 = rx == 2 && xn == 1 ? x : op("Flatten", {x}, {a_i("axis", xn)});
  std::string y2 = ry == 2 && yn == 1 ? y : op("Flatten", {y}, {a_i("axis", yn)});
  if (xn == 1 && ry - yn == 1) {
    op("MatMul", {x2, y2}, {}, o);
    return;
  }
  std::string m = op("MatMul", {x2, y2});
  // Output dims: x[:xn] + y[yn:].
  std::vector<std::string> parts = {shape_slice(x, 0, xn)};
  bool ystatic = true;
  std::vector<int64_t> tail;
  for (int64_t i = yn; i < ry; ++i) {
    if (yd[i] < 0) ystatic = false;
    tail.push_back(yd[i]);
  }
  if (ry > yn) parts.push_back(ystatic ? c_i64(tail) : shape_slice(y, yn, ry));
  std::string shp = parts.size() == 1 ? parts[0] : op("Concat", parts, {a_i("axis", 0)});
  op("Reshape", {m, shp}, {}, o);
}

void Exporter::cv_softmax(const Node& n) {
  int64_t axis = AttrReader(*n.source).i("axis", -1);
  std::string x = in(n, 0);
  op("Softmax", {x}, {a_i("axis", axis)}, out(n, 0, DType::Float32));
}

// ---------------------------------------------------------------- shape ops

void Exporter::cv_reshape(const Node& n) {
  std::string x = in(n, 0);
  std::string shape;
  std::vector<int64_t> v;
  bool c;
  if (n.inputs.size() > 2 && has(n, 2))
    shape = ints_from_slot(n, 2, &v, &c);
  else if (has(n, 1))
    shape = ints_from_slot(n, 1, &v, &c);
  else
    shape = c_i64(AttrReader(*n.source).ints("shape", {}));
  op("Reshape", {x, shape}, {}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_transpose(const Node& n) {
  AttrReader a(*n.source);
  std::vector<int64_t> perm = a.ints(a.has("perm") ? "perm" : "axis", {});
  std::string x = in(n, 0);
  bool neg = false;
  for (int64_t p : perm) neg = neg || p < 0;
  if (neg) {
    int64_t r = rank_of(x);
    for (int64_t& p : perm)
      if (p < 0) p += r;
  }
  op("Transpose", {x}, {a_is("perm", perm)}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_flatten(const Node& n, bool legacy2) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  std::string o = out(n, 0, dtype_of(x));
  if (legacy2) {
    op("Flatten", {x}, {a_i("axis", a.i("axis", 1))}, o);
    return;
  }
  int64_t r = rank_of(x);
  if (r == 0) {
    op("Reshape", {x, c_i64({1})}, {}, o);
    return;
  }
  int64_t s = a.i("start_axis", 1), e = a.i("stop_axis", -1);
  if (s < 0) s += r;
  if (e < 0) e += r;
  if (s < 0 || e >= r || s > e) bad("flatten: bad start_axis/stop_axis");
  if (s == e) {
    op("Identity", {x}, {}, o);
    return;
  }
  std::vector<int64_t> xd = dims_of(x);
  std::vector<int64_t> shp(static_cast<size_t>(s), 0);
  shp.push_back(-1);
  bool ok = true;
  for (int64_t i = e + 1; i < r; ++i) {
    if (xd[i] < 0) ok = false;
    shp.push_back(xd[i]);
  }
  std::string shape;
  if (ok) {
    shape = c_i64(shp);
  } else {
    std::vector<std::string> parts;
    if (s > 0) parts.push_back(shape_slice(x, 0, s));
    parts.push_back(c_i64({-1}));
    parts.push_back(shape_slice(x, e + 1, r));
    shape = op("Concat", parts, {a_i("axis", 0)});
  }
  op("Reshape", {x, shape}, {}, o);
}

// Axes from a constant tensor / list slot, else the attribute.
std::vector<int64_t> Exporter::axes_attr(const Node& n, size_t tensor_slot, size_t list_slot,
                                         const std::vector<int64_t>& def_attr) {
  for (size_t slot : {list_slot, tensor_slot}) {
    if (slot < n.inputs.size() && has(n, slot)) {
      std::vector<int64_t> v;
      bool c;
      ints_from_slot(n, slot, &v, &c);
      if (!c) unsupported("axes operand is not a constant");
      return v;
    }
  }
  return def_attr;
}

void Exporter::cv_squeeze(const Node& n) {
  AttrReader a(*n.source);
  std::vector<int64_t> axes = axes_attr(n, 1, 2, a.ints(a.has("axes") ? "axes" : "axis", {}));
  std::string x = in(n, 0);
  std::string o = out(n, 0, dtype_of(x));
  int64_t r = rank_of(x);
  std::vector<int64_t> xd = dims_of(x);
  if (r == 0) {
    op("Identity", {x}, {}, o);
    return;
  }
  std::vector<bool> drop(static_cast<size_t>(r), false);
  if (axes.empty()) {
    for (int64_t k = 0; k < r; ++k) {
      if (xd[k] < 0) {
        // Unknown dims: let ONNX decide at run time.
        op("Squeeze", {x}, {}, o);
        return;
      }
      drop[k] = xd[k] == 1;
    }
  } else {
    for (int64_t ax : axes) {
      int64_t k = ax < 0 ? ax + r : ax;
      if (k < 0 || k >= r) bad("squeeze axis out of range");
      if (xd[k] == 1 || xd[k] < 0) drop[k] = true;  // non-unit axes are kept (Paddle)
    }
  }
  std::vector<int64_t> d;
  for (int64_t k = 0; k < r; ++k)
    if (drop[k]) d.push_back(k);
  if (d.empty())
    op("Identity", {x}, {}, o);
  else if (static_cast<int64_t>(d.size()) == r && rank0_as_1d(n))
    op("Reshape", {x, c_i64({1})}, {}, o);
  else
    op("Squeeze", {x, c_i64(d)}, {}, o);
}

void Exporter::cv_unsqueeze(const Node& n) {
  AttrReader a(*n.source);
  std::vector<int64_t> axes = axes_attr(n, 1, 2, a.ints(a.has("axes") ? "axes" : "axis", {}));
  std::string x = in(n, 0);
  int64_t cur = rank_of(x);
  int64_t total = cur + static_cast<int64_t>(axes.size());
  std::vector<int> mark(static_cast<size_t>(total + 1), 0);
  for (int64_t ax : axes) {
    int64_t pp = ax < 0 ? ax + cur + 1 : ax;
    if (pp < 0 || pp > cur) bad("unsqueeze: axis out of range");
    for (int64_t i = cur; i >= pp; --i) {
      if (mark[i] == 1) {
        mark[i + 1] = 1;
        mark[i] = 0;
      }
    }
    mark[pp] = 1;
    ++cur;
  }
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < total; ++i)
    if (mark[i]) pos.push_back(i);
  std::string o = out(n, 0, dtype_of(x));
  if (pos.empty())
    op("Identity", {x}, {}, o);
  else
    op("Unsqueeze", {x, c_i64(pos)}, {}, o);
}

void Exporter::cv_concat(const Node& n) {
  if (n.inputs.empty() || n.inputs[0].empty()) bad("concat needs inputs");
  std::vector<std::string> xs;
  for (size_t k = 0; k < n.inputs[0].size(); ++k) xs.push_back(in(n, 0, k));
  int64_t axis = AttrReader(*n.source).i("axis", 0);
  if (has(n, 1)) {
    std::vector<int64_t> v;
    if (!cints(n, 1, &v) || v.size() != 1) unsupported("concat axis is not a constant");
    axis = v[0];
  }
  if (axis < 0) axis += rank_of(xs[0]);
  op("Concat", xs, {a_i("axis", axis)}, out(n, 0, dtype_of(xs[0])));
}

void Exporter::cv_stack(const Node& n) {
  if (n.inputs.empty() || n.inputs[0].empty()) bad("stack needs inputs");
  int64_t axis = AttrReader(*n.source).i("axis", 0);
  std::string x0 = in(n, 0, 0);
  int64_t r = rank_of(x0);
  if (axis < 0) axis += r + 1;
  if (axis < 0 || axis > r) bad("stack axis out of range");
  std::vector<std::string> us;
  for (size_t k = 0; k < n.inputs[0].size(); ++k)
    us.push_back(op("Unsqueeze", {in(n, 0, k), c_i64({axis})}));
  op("Concat", us, {a_i("axis", axis)}, out(n, 0, dtype_of(x0)));
}

void Exporter::cv_split(const Node& n) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  int64_t axis = a.i("axis", 0);
  if (has(n, 1)) {
    std::vector<int64_t> v;
    if (!cints(n, 1, &v) || v.size() != 1) unsupported("split axis is not a constant");
    axis = v[0];
  }
  int64_t r = rank_of(x);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) bad("split axis out of range");
  size_t nout = n.outputs.empty() ? 0 : n.outputs[0].size();
  std::vector<int64_t> sec = a.ints("sections", {});
  if (n.inputs.size() > 2 && has(n, 2)) {
    bool c;
    ints_from_slot(n, 2, &sec, &c);
    if (!c) unsupported("split sections are not constants");
  }
  int64_t num = a.i("num", 0);
  std::vector<std::string> outs;
  DType dt = dtype_of(x);
  for (size_t i = 0; i < nout; ++i) outs.push_back(out(n, 0, dt, i));
  std::vector<std::string> ins = {x};
  if (!sec.empty()) {
    int64_t known = 0, at = -1;
    for (size_t i = 0; i < sec.size(); ++i) {
      if (sec[i] == -1)
        at = static_cast<int64_t>(i);
      else
        known += sec[i];
    }
    if (at >= 0) {
      int64_t d = dims_of(x)[axis];
      if (d < 0) unsupported("split with a -1 section over a dynamic dimension");
      sec[at] = d - known;
    }
    if (sec.size() != nout) bad("split: sections do not match the outputs");
    ins.push_back(c_i64(sec));
  } else if (num > 0 && static_cast<size_t>(num) != nout) {
    bad("split: num does not match the outputs");
  }
  emit("Split", ins, outs, {a_i("axis", axis)});
}

void Exporter::cv_slice(const Node& n) {
  AttrReader a(*n.source);
  bool strided = n.source->type.find("strided_slice") != std::string::npos;
  std::vector<int64_t> axes = a.ints("axes", {}), decrease = a.ints("decrease_axis", {});
  std::vector<int64_t> flags = a.ints("infer_flags", {});
  size_t s_t = 1, e_t = 2, st_t = strided ? 3 : 99;
  size_t s_l = strided ? 4 : 3, e_l = strided ? 5 : 4, st_l = strided ? 6 : 99;
  auto source = [&](size_t t_slot, size_t l_slot, const char* attr, bool* is_const,
                    std::vector<int64_t>* vals) {
    if (t_slot < n.inputs.size() && has(n, t_slot))
      return ints_from_slot(n, t_slot, vals, is_const);
    if (l_slot < n.inputs.size() && has(n, l_slot))
      return ints_from_slot(n, l_slot, vals, is_const);
    *vals = a.ints(attr, {});
    *is_const = true;
    return std::string();
  };
  bool cs, ce, cst = true;
  std::vector<int64_t> sv, ev, stv;
  std::string st = source(s_t, s_l, "starts", &cs, &sv);
  std::string en = source(e_t, e_l, "ends", &ce, &ev);
  std::string stp;
  if (strided)
    stp = source(st_t, st_l, "strides", &cst, &stv);
  else
    stv.assign(axes.size(), 1);
  std::string x = in(n, 0);
  int64_t r = rank_of(x);
  std::vector<int64_t> xd = dims_of(x);
  if (cs && ce) {
    if (sv.size() != axes.size() || ev.size() != axes.size())
      bad("slice: axes/starts/ends differ in length");
    // x[-1] written with dynamic starts: start -1, end 0, decreased axis.
    for (size_t i = 0; i < axes.size(); ++i) {
      bool dec = std::find(decrease.begin(), decrease.end(), axes[i]) != decrease.end();
      if (!strided && sv[i] == -1 && ev[i] == 0 && dec && i < flags.size() && flags[i] == -1)
        ev[i] = std::numeric_limits<int64_t>::max();
    }
  }
  if (cs) st = c_i64(sv);
  if (ce) en = c_i64(ev);
  if (cst) stp = c_i64(stv);
  for (int64_t& ax : axes)
    if (ax < 0) ax += r;
  std::string o = out(n, 0, dtype_of(x));
  std::vector<std::string> ins = {x, st, en, c_i64(axes), stp};
  if (decrease.empty()) {
    op("Slice", ins, {}, o);
    return;
  }
  std::string s = op("Slice", ins);
  std::vector<int64_t> d;
  for (int64_t ax : decrease) d.push_back(ax < 0 ? ax + r : ax);
  std::sort(d.begin(), d.end());
  d.erase(std::unique(d.begin(), d.end()), d.end());
  if (static_cast<int64_t>(d.size()) == r && rank0_as_1d(n))
    op("Reshape", {s, c_i64({1})}, {}, o);
  else
    op("Squeeze", {s, c_i64(d)}, {}, o);
}

void Exporter::cv_shape(const Node& n) {
  DType dt = n.source->type == "pd_op.shape64" ? DType::Int64 : DType::Int32;
  std::string x = in(n, 0);
  std::string o = out(n, 0, dt);
  std::string s = op("Shape", {x}, {}, dt == DType::Int64 ? o : std::string());
  if (dt != DType::Int64) op("Cast", {s}, {a_i("to", onnx_dtype(dt))}, o);
}

void Exporter::cv_fill(const Node& n, bool with_tensor) {
  AttrReader a(*n.source);
  DType dt = attr_dtype(*n.source, "dtype", DType::Float32);
  if (dt == DType::Undefined) dt = DType::Float32;
  Num value = attr_num(*n.source, "value", 0.0);
  const Attr* sv = n.source->attr("str_value");
  if (sv && sv->kind == Attr::Kind::String && !sv->s.empty()) {
    if (!parse_str_num(sv->s, &value)) bad("str_value '" + sv->s + "' is not a number");
  }
  std::string o = out(n, 0, dt);
  // Slots: fill_constant (ValueTensor, ShapeTensor, ShapeTensorList);
  // full_with_tensor (value, shape).
  std::string vt;
  if (has(n, 0)) {
    std::vector<double> d;
    std::vector<int64_t> iv;
    if (cints(n, 0, &iv) && !iv.empty()) {
      value.is_int = true;
      value.i = iv[0];
      value.d = static_cast<double>(iv[0]);
    } else if (cdoubles(n, 0, &d) && !d.empty()) {
      value = num_from_double(d[0]);
    } else {
      vt = in(n, 0);
    }
  }
  std::vector<int64_t> shape = a.ints("shape", {});
  std::string shp;
  bool c = true;
  if (!with_tensor && n.inputs.size() > 2 && has(n, 2))
    shp = ints_from_slot(n, 2, &shape, &c);
  else if (has(n, 1))
    shp = ints_from_slot(n, 1, &shape, &c);
  if (c && vt.empty()) {
    std::vector<uint8_t> one = scalar_bytes(dt, value);
    int64_t cnt = tensor_numel(shape);
    std::vector<uint8_t> all(one.size() * static_cast<size_t>(cnt));
    for (int64_t i = 0; i < cnt; ++i)
      std::memcpy(all.data() + i * one.size(), one.data(), one.size());
    initializer(o, dt, shape, all.data(), all.size());
    return;
  }
  if (c) shp = c_i64(shape);
  if (vt.empty()) {
    std::string t = tensor_proto("", dt, {1}, scalar_bytes(dt, value).data(), dtype_size(dt));
    op("ConstantOfShape", {shp}, {a_t("value", t)}, o);
  } else {
    op("Expand", {op("Reshape", {cast(vt, dt), c_i64({})}), shp}, {}, o);
  }
}

void Exporter::cv_full_int_array(const Node& n) {
  AttrReader a(*n.source);
  DType dt = attr_dtype(*n.source, "dtype", DType::Int64);
  if (dt == DType::Undefined) dt = DType::Int64;
  std::vector<int64_t> v = a.ints("value", {});
  std::string o = out(n, 0, dt);
  std::vector<uint8_t> all;
  for (int64_t x : v) {
    Num nm;
    nm.is_int = true;
    nm.i = x;
    nm.d = static_cast<double>(x);
    std::vector<uint8_t> b = scalar_bytes(dt, nm);
    all.insert(all.end(), b.begin(), b.end());
  }
  initializer(o, dt, {static_cast<int64_t>(v.size())}, all.data(), all.size());
}

void Exporter::cv_full_like(const Node& n) {
  std::string x = in(n, 0);
  DType dt = attr_dtype(*n.source, "dtype", DType::Undefined);
  if (dt == DType::Undefined) dt = dtype_of(x);
  Num value =
      n.source->type == "fill_zeros_like" ? num_from_double(0) : attr_num(*n.source, "value", 0.0);
  std::string o = out(n, 0, dt);
  std::string vt;
  if (has(n, 1)) {
    std::vector<double> d;
    std::vector<int64_t> iv;
    if (cints(n, 1, &iv) && !iv.empty()) {
      value.is_int = true;
      value.i = iv[0];
      value.d = static_cast<double>(iv[0]);
    } else if (cdoubles(n, 1, &d) && !d.empty()) {
      value = num_from_double(d[0]);
    } else {
      vt = in(n, 1);
    }
  }
  std::string shp = op("Shape", {x});
  if (vt.empty()) {
    std::string t = tensor_proto("", dt, {1}, scalar_bytes(dt, value).data(), dtype_size(dt));
    op("ConstantOfShape", {shp}, {a_t("value", t)}, o);
  } else {
    op("Expand", {op("Reshape", {cast(vt, dt), c_i64({})}), shp}, {}, o);
  }
}

void Exporter::cv_cast(const Node& n) {
  DType t =
      attr_dtype(*n.source, n.source->attr("out_dtype") ? "out_dtype" : "dtype", DType::Undefined);
  if (t == DType::Undefined || onnx_dtype(t) == 0) unsupported("cast to an unsupported dtype");
  std::string x = in(n, 0);
  std::string o = out(n, 0, t);
  if (dtype_of(x) == t)
    op("Identity", {x}, {}, o);
  else
    op("Cast", {x}, {a_i("to", onnx_dtype(t))}, o);
}

void Exporter::cv_expand(const Node& n) {
  std::string x = in(n, 0);
  std::vector<int64_t> shape;
  bool c = true;
  std::string shp;
  if (has(n, 1))
    shp = ints_from_slot(n, 1, &shape, &c);
  else if (n.inputs.size() > 2 && has(n, 2))
    shp = ints_from_slot(n, 2, &shape, &c);
  else
    shape = AttrReader(*n.source).ints("shape", {});
  // Paddle's -1 keeps the input dim; ONNX Expand's bidirectional broadcast
  // does the same with a 1.
  if (c) {
    for (int64_t& s : shape)
      if (s == -1) s = 1;
    shp = c_i64(shape);
  } else {
    std::string m1 = c_i64_scalar(-1), one = c_i64_scalar(1);
    shp = op("Where", {op("Equal", {shp, m1}), one, shp});
  }
  op("Expand", {x, shp}, {}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_tile(const Node& n, bool strict) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  std::vector<int64_t> times = a.ints(strict ? "expand_times" : "repeat_times", {});
  bool c = true;
  std::string tt;
  if (has(n, 1))
    tt = ints_from_slot(n, 1, &times, &c);
  else if (n.inputs.size() > 2 && has(n, 2))
    tt = ints_from_slot(n, 2, &times, &c);
  int64_t r = rank_of(x);
  int64_t len;
  if (c) {
    len = static_cast<int64_t>(times.size());
  } else {
    // Length of a dynamic repeat tensor from its declared dims.
    len = -1;
    if (n.inputs[1].size() == 1 || (n.inputs.size() > 2 && n.inputs[2].size() > 1)) {
      std::string t = n.inputs[1].empty() ? std::string() : in(n, 1);
      if (!t.empty()) {
        std::vector<int64_t> d = dims_of(t);
        if (d.size() == 1 && d[0] >= 0) len = d[0];
      } else {
        len = static_cast<int64_t>(n.inputs[2].size());
      }
    }
    if (len < 0) unsupported("tile with a repeat tensor of unknown length");
  }
  if (strict && len != r) bad("expand: expand_times does not match the rank");
  std::string xx = x;
  if (r < len) {
    std::vector<int64_t> ax;
    for (int64_t i = 0; i < len - r; ++i) ax.push_back(i);
    xx = op("Unsqueeze", {x, c_i64(ax)});
  }
  if (c) {
    while (static_cast<int64_t>(times.size()) < r) times.insert(times.begin(), 1);
    tt = c_i64(times);
  } else if (len < r) {
    tt = op("Concat", {c_i64(std::vector<int64_t>(static_cast<size_t>(r - len), 1)), tt},
            {a_i("axis", 0)});
  }
  op("Tile", {xx, tt}, {}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_gather(const Node& n) {
  std::string x = in(n, 0), idx = in(n, 1);
  int64_t axis = AttrReader(*n.source).i("axis", 0);
  if (has(n, 2)) {
    std::vector<int64_t> v;
    if (!cints(n, 2, &v) || v.size() != 1) unsupported("gather axis is not a constant");
    axis = v[0];
  }
  int64_t r = rank_of(x);
  if (axis < 0) axis += r;
  int64_t ri = rank_of(idx);
  if (ri > 1) idx = op("Reshape", {idx, c_i64({-1})});
  op("Gather", {x, idx}, {a_i("axis", axis)}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_reduce(const Node& n) {
  AttrReader a(*n.source);
  const std::string& k = n.def->name;
  const std::string& type = n.source->type;
  bool mean_all = type == "mean" || type == "pd_op.mean_all";
  std::vector<int64_t> axes = a.ints(a.has("dim") ? "dim" : (a.has("axis") ? "axis" : "dims"), {});
  bool keep = a.b(a.has("keep_dim") ? "keep_dim" : "keepdim", false);
  bool all = mean_all || a.b("reduce_all", false);
  if (mean_all) keep = false;
  if (n.inputs.size() > 1 && has(n, 1)) {
    bool c;
    ints_from_slot(n, 1, &axes, &c);
    if (!c) unsupported("reduce axes operand is not a constant");
  }
  std::string x = in(n, 0);
  DType dt = dtype_of(x), od = dt;
  if (k == "reduce_sum") {
    const Attr* d = n.source->attr(a.has("out_dtype") ? "out_dtype" : "dtype");
    DType want = DType::Undefined;
    int64_t code;
    if (d && (d->kind == Attr::Kind::DType || d->kind == Attr::Kind::String)) {
      if (!dtype_from_name(d->s, &want)) bad("unknown dtype '" + d->s + "'");
    } else if (d && d->as_int(&code) && code >= 0) {
      if (!dtype_from_legacy(code, &want)) bad("unknown dtype code");
    }
    if (want == DType::Undefined && p_.format == ProgramFormat::Legacy && !n.outputs.empty() &&
        !n.outputs[0].empty() && n.outputs[0][0] != kNoValue) {
      DType decl = p_.values[n.outputs[0][0]].type.dtype;
      if (decl == DType::Int32 || decl == DType::Int64) want = decl;
    }
    if (want != DType::Undefined)
      od = want;
    else if (dt == DType::Int32 || dt == DType::Bool)
      od = DType::Int64;
  }
  int64_t r = rank_of(x);
  std::vector<int64_t> ax;
  bool full = all || axes.empty();
  if (!full) {
    std::vector<bool> red(static_cast<size_t>(r), false);
    for (int64_t v : axes) {
      if (r == 0 && (v == 0 || v == -1)) continue;
      int64_t q = v < 0 ? v + r : v;
      if (q < 0 || q >= r) bad("reduce axis out of range");
      red[q] = true;
    }
    for (int64_t i = 0; i < r; ++i)
      if (red[i]) ax.push_back(i);
    if (static_cast<int64_t>(ax.size()) == r) full = true;
    if (r == 0) full = true;
  }
  std::string o = out(n, 0, od);
  std::string xx = cast(x, od);
  bool to1 = (r > 0 && full && !keep && rank0_as_1d(n)) || (r == 0 && rank0_as_1d(n));
  const char* onnx_op = k == "reduce_mean" || k == "mean_all" ? "ReduceMean"
                        : k == "reduce_sum"                   ? "ReduceSum"
                        : k == "reduce_max"                   ? "ReduceMax"
                        : k == "reduce_min"                   ? "ReduceMin"
                                                              : "ReduceProd";
  std::vector<std::string> ins = {xx};
  std::vector<OA> at = {a_i("keepdims", keep ? 1 : 0)};
  if (!full) {
    if (k == "reduce_sum")
      ins.push_back(c_i64(ax));
    else
      at.push_back(a_is("axes", ax));
  }
  std::string res;
  if (r == 0)
    res = op("Identity", {xx}, {}, to1 ? std::string() : o);
  else
    res = op(onnx_op, ins, at, to1 ? std::string() : o);
  if (to1) op("Reshape", {res, c_i64({1})}, {}, o);
}

// ---------------------------------------------------------------- resample

void Exporter::cv_interp(const Node& n) {
  AttrReader a(*n.source);
  const std::string& type = n.source->type;
  bool type_bilinear = type.find("bilinear") != std::string::npos;
  std::string method = a.s("interp_method", type_bilinear ? "bilinear" : "nearest");
  bool bilinear;
  if (method == "bilinear")
    bilinear = true;
  else if (method == "nearest")
    bilinear = false;
  else
    unsupported("interp_method '" + method + "'");
  int64_t out_h = a.i("out_h", -1), out_w = a.i("out_w", -1);
  std::vector<double> scale;
  if (const Attr* sa = n.source->attr("scale")) {
    std::vector<double> v;
    double one;
    if (sa->as_doubles(&v)) {
      for (double d : v) scale.push_back(static_cast<float>(d));
    } else if (sa->as_double(&one)) {
      if (one > 0) scale = {static_cast<float>(one)};
    }
  }
  bool align_corners = a.b("align_corners", true);
  int64_t align_mode = a.i("align_mode", 1);
  bool nhwc = layout_nhwc(a, a.has("data_layout") ? "data_layout" : "data_format");
  std::string x = in(n, 0);
  std::string xi = nhwc ? to_nchw(x) : x;

  // Output size: SizeTensor list > Scale tensor / attr (> OutSize) > out_h/w.
  std::string scales, sizes;
  auto sizes_from = [&](const std::string& hw) {
    std::string nc = shape_slice(xi, 0, 2);
    return op("Concat", {nc, hw}, {a_i("axis", 0)});
  };
  if (n.inputs.size() > 2 && has(n, 2)) {
    std::vector<int64_t> v;
    bool c;
    std::string hw = ints_from_slot(n, 2, &v, &c);
    if (c && v.size() >= 2) hw = c_i64({v[0], v[1]});
    sizes = sizes_from(hw);
  } else {
    std::vector<double> sc = scale;
    std::string st;
    if (n.inputs.size() > 3 && has(n, 3)) {
      std::vector<double> v;
      if (cdoubles(n, 3, &v) && !v.empty())
        sc = v;
      else
        st = in(n, 3);
    }
    bool out_size = n.inputs.size() > 1 && has(n, 1);
    if (!out_size && !st.empty()) {
      std::string f = op("Reshape", {cast(st, DType::Float32), c_i64({-1})});
      f = op("Expand", {f, c_i64({2})});
      scales = op(
          "Concat",
          {constant(DType::Float32, {2}, std::vector<uint8_t>{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x3f}),
           f},
          {a_i("axis", 0)});
    } else if (!out_size && sc.size() >= 1 && sc[0] > 0 && (sc.size() == 1 || sc[1] > 0)) {
      if (sc.size() == 1) sc.push_back(sc[0]);
      float v4[4] = {1.f, 1.f, static_cast<float>(sc[0]), static_cast<float>(sc[1])};
      std::vector<uint8_t> b(16);
      std::memcpy(b.data(), v4, 16);
      scales = constant(DType::Float32, {4}, b);
    } else if (out_size) {
      std::vector<int64_t> v;
      bool c;
      std::string hw = ints_from_slot(n, 1, &v, &c);
      if (c && v.size() >= 2)
        hw = c_i64({v[0], v[1]});
      else
        hw = op("Slice", {hw, c_i64({0}), c_i64({2}), c_i64({0})});
      sizes = sizes_from(hw);
    } else {
      if (out_h <= 0 || out_w <= 0) bad("interpolation output size is not set");
      sizes = sizes_from(c_i64({out_h, out_w}));
    }
  }
  std::vector<OA> at;
  if (bilinear) {
    at.push_back(a_s("mode", "linear"));
    if (align_corners)
      at.push_back(a_s("coordinate_transformation_mode", "align_corners"));
    else if (align_mode == 0)
      at.push_back(a_s("coordinate_transformation_mode", "pytorch_half_pixel"));
    else
      at.push_back(a_s("coordinate_transformation_mode", "asymmetric"));
  } else {
    at.push_back(a_s("mode", "nearest"));
    if (align_corners) {
      at.push_back(a_s("coordinate_transformation_mode", "align_corners"));
      at.push_back(a_s("nearest_mode", "round_prefer_ceil"));
    } else {
      at.push_back(a_s("coordinate_transformation_mode", "asymmetric"));
      at.push_back(a_s("nearest_mode", "floor"));
    }
  }
  std::vector<std::string> ins = {xi, "", scales};
  if (!sizes.empty()) ins = {xi, "", "", sizes};
  std::string o = out(n, 0, DType::Float32);
  if (nhwc)
    from_nchw(op("Resize", ins, at), o);
  else
    op("Resize", ins, at, o);
}

void Exporter::cv_pixel_shuffle(const Node& n) {
  AttrReader a(*n.source);
  int64_t r = a.i("upscale_factor", 1);
  bool nhwc = layout_nhwc(a, a.has("data_layout") ? "data_layout" : "data_format");
  std::string x = in(n, 0);
  std::string o = out(n, 0, DType::Float32);
  std::vector<OA> at = {a_i("blocksize", r), a_s("mode", "CRD")};
  if (nhwc)
    from_nchw(op("DepthToSpace", {to_nchw(x)}, at), o);
  else
    op("DepthToSpace", {x}, at, o);
}

void Exporter::cv_grid_sample(const Node& n) {
  if (o_.opset < 16) unsupported("grid_sample needs opset 16 (GridSample)");
  AttrReader a(*n.source);
  std::string mode = a.s("mode", "bilinear"), pm = a.s("padding_mode", "zeros");
  if (mode != "bilinear" && mode != "nearest") unsupported("grid_sample mode '" + mode + "'");
  if (pm != "zeros" && pm != "border" && pm != "reflection")
    unsupported("grid_sample padding_mode '" + pm + "'");
  bool ac = a.b("align_corners", true);
  op("GridSample", {in(n, 0), in(n, 1)},
     {a_s("mode", mode), a_s("padding_mode", pm), a_i("align_corners", ac ? 1 : 0)},
     out(n, 0, DType::Float32));
}

}  // namespace

std::string export_onnx(const Program& program, const std::vector<Node>& nodes,
                        const OnnxOptions& opts) {
  Exporter e(program, nodes, opts);
  return e.run();
}

}  // namespace pif
