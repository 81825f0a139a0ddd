// ONNX exporter: lowered Nodes -> ONNX ModelProto (see onnx.h); this file owns the Exporter's
// names, value infos, node emission, the graph / model writer and the op dispatch.
//
// Each converter (onnx_elementwise.cc, onnx_nn.cc, onnx_shape.cc, onnx_resample.cc) mirrors the
// attribute parsing of the matching reference kernel (kernels/ref/*.cc). Ranks and dims come
// from the declared value types (exact for parameters and folded constants); an op whose
// translation needs a dim that is only known at run time fails with PIF_MODEL_UNSUPPORTED
// instead of guessing. The onnx.proto field numbers used are listed in onnx_internal.h.
#include "export/onnx.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "export/onnx_internal.h"

namespace pif {
namespace onnx {

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
  const Tensor* t = static_tensor(v, false);
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
  return static_tensor(n.inputs[slot][k], true);
}

const Tensor* Exporter::static_tensor(ValueId id, bool loaded_only) const {
  const Value& v = p_.values[id];
  if (v.constant) return v.constant.get();
  if (v.param_index < 0) return nullptr;
  const Parameter& prm = p_.params[v.param_index];
  return loaded_only && !prm.loaded ? nullptr : &prm.tensor;
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

}  // namespace onnx

std::string export_onnx(const Program& program, const std::vector<Node>& nodes,
                        const OnnxOptions& opts) {
  onnx::Exporter e(program, nodes, opts);
  return e.run();
}

}  // namespace pif
