#include "graph/ir.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/json.h"

namespace pif {

bool ValueType::operator==(const ValueType& o) const {
  return kind == o.kind && dtype == o.dtype && dims == o.dims && layout == o.layout &&
         lod == o.lod && offset == o.offset && elements == o.elements && raw == o.raw;
}

bool ScalarAttr::operator==(const ScalarAttr& o) const {
  auto same = [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; };
  return type == o.type && b == o.b && i == o.i && same(r, o.r) && same(c_real, o.c_real) &&
         same(c_imag, o.c_imag) && has_complex == o.has_complex;
}

namespace {
// Bitwise comparison so NaN payloads compare equal to themselves.
bool same_doubles(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}
}  // namespace

bool Attr::operator==(const Attr& o) const {
  if (kind != o.kind || b != o.b || i != o.i || s != o.s || ints != o.ints || strs != o.strs ||
      items != o.items || scalars != o.scalars || !same_doubles(floats, o.floats) ||
      std::memcmp(&f, &o.f, sizeof f) != 0) {
    return false;
  }
  if (static_cast<bool>(type) != static_cast<bool>(o.type)) return false;
  return !type || *type == *o.type;
}

bool Attr::is_int() const {
  return kind == Kind::Int32 || kind == Kind::Int64 || kind == Kind::Index;
}

bool Attr::is_float() const { return kind == Kind::Float32 || kind == Kind::Float64; }

bool Attr::as_int(int64_t* out) const {
  if (is_int()) {
    *out = i;
    return true;
  }
  if (kind == Kind::Bool) {
    *out = b ? 1 : 0;
    return true;
  }
  return false;
}

bool Attr::as_double(double* out) const {
  if (is_float()) {
    *out = f;
    return true;
  }
  if (is_int()) {
    *out = static_cast<double>(i);
    return true;
  }
  return false;
}

bool Attr::as_ints(std::vector<int64_t>* out) const {
  switch (kind) {
    case Kind::Int32s:
    case Kind::Int64s:
    case Kind::Bools:
    case Kind::Blocks: *out = ints; return true;
    case Kind::Array: {
      std::vector<int64_t> v;
      for (const Attr& a : items) {
        int64_t x;
        if (!a.as_int(&x)) return false;
        v.push_back(x);
      }
      *out = std::move(v);
      return true;
    }
    default: return false;
  }
}

bool Attr::as_doubles(std::vector<double>* out) const {
  switch (kind) {
    case Kind::Float32s:
    case Kind::Float64s: *out = floats; return true;
    case Kind::Int32s:
    case Kind::Int64s: out->assign(ints.begin(), ints.end()); return true;
    case Kind::Array: {
      std::vector<double> v;
      for (const Attr& a : items) {
        double x;
        if (!a.as_double(&x)) return false;
        v.push_back(x);
      }
      *out = std::move(v);
      return true;
    }
    default: return false;
  }
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

const Attr* Op::attr(const std::string& name) const {
  for (const NamedAttr& a : attrs) {
    if (a.name == name) return &a.value;
  }
  return nullptr;
}

namespace {
ValueId slot_arg(const std::vector<OpSlot>& slots, const std::string& slot, size_t n) {
  if (slot.empty()) {
    if (n < slots.size() && !slots[n].args.empty()) return slots[n].args[0];
    return kNoValue;
  }
  for (const OpSlot& s : slots) {
    if (s.name == slot) return n < s.args.size() ? s.args[n] : kNoValue;
  }
  return kNoValue;
}
}  // namespace

ValueId Op::input(const std::string& slot, size_t n) const { return slot_arg(inputs, slot, n); }
ValueId Op::output(const std::string& slot, size_t n) const { return slot_arg(outputs, slot, n); }

size_t Program::op_count() const {
  size_t n = 0;
  for (const Block& b : blocks) n += b.ops.size();
  return n;
}

// ---------------------------------------------------------------------------
// Canonical dump.

namespace {

void put_double(std::string* out, double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  *out += buf;
}

void put_ints(std::string* out, const std::vector<int64_t>& v) {
  *out += "[";
  for (size_t k = 0; k < v.size(); ++k) {
    if (k) *out += ",";
    *out += std::to_string(v[k]);
  }
  *out += "]";
}

void put_quoted(std::string* out, const std::string& s) {
  *out += '"';
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      *out += buf;
    } else {
      *out += static_cast<char>(c);
    }
  }
  *out += '"';
}

void put_type(std::string* out, const ValueType& t) {
  switch (t.kind) {
    case ValueType::Kind::DenseTensor:
      *out += dtype_name(t.dtype);
      put_ints(out, t.dims);
      if (!t.layout.empty()) *out += "@" + t.layout;
      if (!t.lod.empty() || t.offset) {
        *out += "{lod=";
        for (const auto& l : t.lod) {
          std::vector<int64_t> li(l.begin(), l.end());
          put_ints(out, li);
        }
        *out += ",offset=" + std::to_string(t.offset) + "}";
      }
      break;
    case ValueType::Kind::Vector:
      *out += "vec<";
      for (size_t k = 0; k < t.elements.size(); ++k) {
        if (k) *out += ",";
        put_type(out, t.elements[k]);
      }
      *out += ">";
      break;
    case ValueType::Kind::Scalar: *out += std::string("scalar:") + dtype_name(t.dtype); break;
    case ValueType::Kind::Null: *out += "null"; break;
    case ValueType::Kind::Other:
      *out += "other:";
      put_quoted(out, t.raw);
      break;
  }
}

const char* kind_name(Attr::Kind k) {
  using K = Attr::Kind;
  switch (k) {
    case K::Bool: return "bool";
    case K::Int32: return "i32";
    case K::Int64: return "i64";
    case K::Float32: return "f32";
    case K::Float64: return "f64";
    case K::String: return "str";
    case K::Bools: return "bools";
    case K::Int32s: return "i32s";
    case K::Int64s: return "i64s";
    case K::Float32s: return "f32s";
    case K::Float64s: return "f64s";
    case K::Strings: return "strs";
    case K::Block: return "block";
    case K::Blocks: return "blocks";
    case K::Var: return "var";
    case K::Vars: return "vars";
    case K::Scalar: return "scalar";
    case K::Scalars: return "scalars";
    case K::Index: return "index";
    case K::TensorName: return "tensorname";
    case K::Array: return "array";
    case K::DType: return "dtype";
    case K::Place: return "place";
    case K::Layout: return "layout";
    case K::Type: return "type";
    case K::Complex64: return "c64";
    case K::Complex128: return "c128";
    case K::Raw: return "raw";
  }
  return "?";
}

void put_attr(std::string* out, const Attr& a) {
  using K = Attr::Kind;
  *out += kind_name(a.kind);
  *out += ":";
  switch (a.kind) {
    case K::Bool: *out += a.b ? "true" : "false"; break;
    case K::Int32:
    case K::Int64:
    case K::Index:
    case K::Block: *out += std::to_string(a.i); break;
    case K::Float32:
    case K::Float64: put_double(out, a.f); break;
    case K::String:
    case K::Var:
    case K::TensorName:
    case K::DType:
    case K::Layout:
    case K::Raw: put_quoted(out, a.s); break;
    case K::Bools:
    case K::Int32s:
    case K::Int64s:
    case K::Blocks: put_ints(out, a.ints); break;
    case K::Float32s:
    case K::Float64s:
    case K::Complex64:
    case K::Complex128:
      *out += "[";
      for (size_t k = 0; k < a.floats.size(); ++k) {
        if (k) *out += ",";
        put_double(out, a.floats[k]);
      }
      *out += "]";
      break;
    case K::Strings:
    case K::Vars:
      *out += "[";
      for (size_t k = 0; k < a.strs.size(); ++k) {
        if (k) *out += ",";
        put_quoted(out, a.strs[k]);
      }
      *out += "]";
      break;
    case K::Scalar:
    case K::Scalars:
      *out += "[";
      for (size_t k = 0; k < a.scalars.size(); ++k) {
        const ScalarAttr& s = a.scalars[k];
        if (k) *out += ",";
        *out += "{t=" + std::to_string(s.type) + ",b=" + (s.b ? "1" : "0") +
                ",i=" + std::to_string(s.i) + ",r=";
        put_double(out, s.r);
        if (s.has_complex) {
          *out += ",c=";
          put_double(out, s.c_real);
          *out += ",";
          put_double(out, s.c_imag);
        }
        *out += "}";
      }
      *out += "]";
      break;
    case K::Array:
      *out += "[";
      for (size_t k = 0; k < a.items.size(); ++k) {
        if (k) *out += ",";
        put_attr(out, a.items[k]);
      }
      *out += "]";
      break;
    case K::Place:
      put_ints(out, a.ints);
      put_quoted(out, a.s);
      break;
    case K::Type:
      if (a.type) put_type(out, *a.type);
      break;
  }
}

void put_attrs(std::string* out, const char* label, const std::vector<NamedAttr>& attrs) {
  if (attrs.empty()) return;
  *out += std::string(" ") + label + "{";
  for (size_t k = 0; k < attrs.size(); ++k) {
    if (k) *out += ", ";
    *out += attrs[k].name + "=";
    put_attr(out, attrs[k].value);
  }
  *out += "}";
}

uint64_t fnv1a(const uint8_t* p, uint64_t n) {
  uint64_t h = 1469598103934665603ull;
  for (uint64_t k = 0; k < n; ++k) {
    h ^= p[k];
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string dump_program(const Program& p, bool with_param_digest) {
  std::string out;
  auto ref = [&](ValueId id) -> std::string {
    if (id == kNoValue) return "null";
    if (id < 0 || static_cast<size_t>(id) >= p.values.size())
      return "<bad:" + std::to_string(id) + ">";
    const Value& v = p.values[id];
    if (p.format == ProgramFormat::Pir) return "%" + std::to_string(v.pir_id);
    std::string s;
    put_quoted(&s, v.name);
    return s + "@" + std::to_string(v.block);
  };
  out += p.format == ProgramFormat::Legacy ? "program legacy" : "program pir";
  out += " version=" + (p.has_version ? std::to_string(p.version) : std::string("none"));
  if (p.format == ProgramFormat::Pir) {
    out +=
        std::string(" trainable=") + (p.pir_trainable ? "1" : "0") + " region=" + p.pir_region_name;
  }
  out += "\n";
  for (const auto& kv : p.op_versions)
    out += "opversion " + kv.first + "=" + std::to_string(kv.second) + "\n";
  for (const Value& v : p.values) {
    out += "value " + ref(static_cast<ValueId>(&v - p.values.data())) + " name=";
    put_quoted(&out, v.name);
    out += " type=";
    put_type(&out, v.type);
    if (p.format == ProgramFormat::Legacy) {
      out += " var_type=" + std::to_string(v.var_type) + " desc=" + std::to_string(v.desc_field) +
             " lod_level=" + std::to_string(v.lod_level) + " present=" + std::to_string(v.present) +
             " persistable=" + (v.persistable ? "1" : "0") +
             " check_feed=" + (v.need_check_feed ? "1" : "0") +
             " is_param=" + (v.is_parameter ? "1" : "0") +
             " stop_grad=" + (v.stop_gradient ? "1" : "0");
      put_attrs(&out, "attrs", v.var_attrs);
    }
    if (v.param_index >= 0) out += " param=" + std::to_string(v.param_index);
    out += "\n";
  }
  for (const Block& b : p.blocks) {
    out += "block " + std::to_string(b.idx) + " parent=" + std::to_string(b.parent_idx) +
           " forward=" + std::to_string(b.forward_block_idx) + " name=" + b.pir_name + "\n";
    if (!b.vars.empty()) {
      out += "  vars";
      for (ValueId id : b.vars) out += " " + ref(id);
      out += "\n";
    }
    if (!b.args.empty()) {
      out += "  args";
      for (ValueId id : b.args) out += " " + ref(id);
      out += "\n";
    }
    for (const Op& op : b.ops) {
      out += "  op " + op.type + " (";
      for (size_t k = 0; k < op.inputs.size(); ++k) {
        if (k) out += ", ";
        if (!op.inputs[k].name.empty()) out += op.inputs[k].name + ":";
        out += "[";
        for (size_t j = 0; j < op.inputs[k].args.size(); ++j)
          out += (j ? "," : "") + ref(op.inputs[k].args[j]);
        out += "]";
      }
      out += ") -> (";
      for (size_t k = 0; k < op.outputs.size(); ++k) {
        if (k) out += ", ";
        if (!op.outputs[k].name.empty()) out += op.outputs[k].name + ":";
        out += "[";
        for (size_t j = 0; j < op.outputs[k].args.size(); ++j)
          out += (j ? "," : "") + ref(op.outputs[k].args[j]);
        out += "]";
      }
      out += ")";
      put_attrs(&out, "attrs", op.attrs);
      put_attrs(&out, "result_attrs", op.result_attrs);
      for (const auto& kv : op.extra) {
        out += " " + kv.first + "=";
        put_quoted(&out, kv.second);
      }
      if (op.is_target) out += " target";
      out += "\n";
    }
  }
  for (const IoBinding& io : p.inputs)
    out += "input " + io.name + " " + ref(io.value) + " col=" + std::to_string(io.col) + "\n";
  for (const IoBinding& io : p.outputs)
    out += "output " + io.name + " " + ref(io.value) + " col=" + std::to_string(io.col) + "\n";
  for (size_t k = 0; k < p.params.size(); ++k) {
    const Parameter& prm = p.params[k];
    const Tensor& t = prm.tensor;
    out += "param " + std::to_string(k) + " " + prm.name + " " + ref(prm.value) + " " +
           dtype_name(t.dtype);
    put_ints(&out, t.dims);
    if (!t.lod.empty()) out += " lod_levels=" + std::to_string(t.lod.size());
    if (with_param_digest && prm.loaded) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " bytes=%llu fnv=%016llx",
                    static_cast<unsigned long long>(t.nbytes),
                    static_cast<unsigned long long>(fnv1a(t.data(), t.nbytes)));
      out += buf;
    } else if (!prm.loaded) {
      out += " unloaded";
    }
    out += "\n";
  }
  return out;
}

namespace {

void json_ints(std::string* out, const std::vector<int64_t>& v) {
  *out += "[";
  for (size_t k = 0; k < v.size(); ++k) {
    if (k) *out += ",";
    write_json_int(v[k], out);
  }
  *out += "]";
}

void json_attr_value(std::string* out, const Attr& a) {
  using K = Attr::Kind;
  switch (a.kind) {
    case K::Bool: *out += a.b ? "true" : "false"; return;
    case K::Int32:
    case K::Int64:
    case K::Index: write_json_int(a.i, out); return;
    case K::Float32:
    case K::Float64: write_json_double(a.f, out); return;
    case K::String:
    case K::DType:
    case K::Layout: write_json_string(a.s, out); return;
    case K::Int32s:
    case K::Int64s: json_ints(out, a.ints); return;
    case K::Bools:
      *out += "[";
      for (size_t k = 0; k < a.ints.size(); ++k)
        *out += std::string(k ? "," : "") + (a.ints[k] ? "true" : "false");
      *out += "]";
      return;
    case K::Float32s:
    case K::Float64s:
      *out += "[";
      for (size_t k = 0; k < a.floats.size(); ++k) {
        if (k) *out += ",";
        write_json_double(a.floats[k], out);
      }
      *out += "]";
      return;
    case K::Strings:
      *out += "[";
      for (size_t k = 0; k < a.strs.size(); ++k) {
        if (k) *out += ",";
        write_json_string(a.strs[k], out);
      }
      *out += "]";
      return;
    default: {
      std::string text;
      put_attr(&text, a);
      write_json_string(text.substr(text.find(':') + 1), out);
    }
  }
}

void json_attrs(std::string* out, const std::vector<NamedAttr>& attrs) {
  *out += "[";
  for (size_t k = 0; k < attrs.size(); ++k) {
    if (k) *out += ",";
    *out += "{\"name\":";
    write_json_string(attrs[k].name, out);
    *out += ",\"kind\":";
    write_json_string(kind_name(attrs[k].value.kind), out);
    *out += ",\"value\":";
    json_attr_value(out, attrs[k].value);
    *out += "}";
  }
  *out += "]";
}

}  // namespace

std::string program_json(const Program& p) {
  std::string out;
  auto ref = [&](ValueId id) {
    std::string s;
    if (id == kNoValue || id < 0 || static_cast<size_t>(id) >= p.values.size())
      s = "";
    else if (p.format == ProgramFormat::Pir)
      s = "%" + std::to_string(p.values[id].pir_id);
    else
      s = p.values[id].name;
    write_json_string(s, &out);
  };
  auto slots = [&](const std::vector<OpSlot>& v) {
    out += "[";
    for (size_t k = 0; k < v.size(); ++k) {
      if (k) out += ",";
      out += "{\"slot\":";
      write_json_string(v[k].name, &out);
      out += ",\"args\":[";
      for (size_t j = 0; j < v[k].args.size(); ++j) {
        if (j) out += ",";
        ref(v[k].args[j]);
      }
      out += "]}";
    }
    out += "]";
  };
  auto io = [&](const std::vector<IoBinding>& v) {
    out += "[";
    for (size_t k = 0; k < v.size(); ++k) {
      if (k) out += ",";
      out += "{\"name\":";
      write_json_string(v[k].name, &out);
      out += ",\"var\":";
      ref(v[k].value);
      out += "}";
    }
    out += "]";
  };
  out += "{\"format\":";
  out += p.format == ProgramFormat::Pir ? "\"pir\"" : "\"legacy\"";
  out += ",\"version\":";
  if (p.has_version)
    write_json_int(p.version, &out);
  else
    out += "null";
  out += ",\"inputs\":";
  io(p.inputs);
  out += ",\"outputs\":";
  io(p.outputs);
  out += ",\"params\":[";
  for (size_t k = 0; k < p.params.size(); ++k) {
    const Parameter& prm = p.params[k];
    if (k) out += ",";
    out += "{\"name\":";
    write_json_string(prm.name, &out);
    out += ",\"dtype\":";
    write_json_string(dtype_name(prm.tensor.dtype), &out);
    out += ",\"shape\":";
    json_ints(&out, prm.tensor.dims);
    out += "}";
  }
  out += "],\"blocks\":[";
  for (size_t b = 0; b < p.blocks.size(); ++b) {
    if (b) out += ",";
    out += "{\"idx\":" + std::to_string(p.blocks[b].idx) + ",\"ops\":[";
    for (size_t k = 0; k < p.blocks[b].ops.size(); ++k) {
      const Op& op = p.blocks[b].ops[k];
      if (k) out += ",";
      out += "{\"type\":";
      write_json_string(op.type, &out);
      out += ",\"inputs\":";
      slots(op.inputs);
      out += ",\"outputs\":";
      slots(op.outputs);
      out += ",\"attrs\":";
      json_attrs(&out, op.attrs);
      out += "}";
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

}  // namespace pif
