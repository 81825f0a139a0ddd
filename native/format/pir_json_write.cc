// PIR JSON writer: a Program as version-1 compressed JSON (one line, keys in Paddle's order).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/json.h"
#include "format/pir_json_internal.h"

namespace pif {
namespace pir_json {

namespace {

// ----------------------------------------------------------------- writer

class Writer {
 public:
  explicit Writer(const Program& p) : p_(p) {}
  std::string run();

 private:
  void type(const ValueType& t, std::string* out) const;
  void attr(const Attr& a, std::string* out) const;
  void named_attrs(const std::vector<NamedAttr>& list, std::string* out) const;
  void value_ref(ValueId v, std::string* out) const;
  void result(ValueId v, std::string* out) const;
  void op(const Op& o, std::string* out) const;
  bool fits_param_form(const Op& o) const;
  void assign_ids();

  const Program& p_;
  std::vector<int64_t> out_id_;  // per ValueId; 0 = not assigned / null
};

void Writer::type(const ValueType& t, std::string* out) const {
  switch (t.kind) {
    case ValueType::Kind::DenseTensor:
      out->append("{\"#\":\"0.t_dtensor\",\"D\":[{\"#\":");
      write_json_string(scalar_type_id(t.dtype), out);
      out->append("},");
      write_json_list(t.dims, out, [out](int64_t d) { write_json_int(d, out); });
      out->push_back(',');
      // Programs converted from legacy files carry no layout; Paddle's
      // default is NCHW.
      write_json_string(t.layout.empty() ? "NCHW" : t.layout, out);
      out->push_back(',');
      write_json_list(t.lod, out, [out](const std::vector<uint64_t>& level) {
        write_json_list(level, out, [out](uint64_t x) { out->append(std::to_string(x)); });
      });
      out->push_back(',');
      out->append(std::to_string(t.offset));
      out->append("]}");
      return;
    case ValueType::Kind::Vector:
      out->append("{\"#\":\"0.t_vec\",\"D\":");
      write_json_list(t.elements, out, [&](const ValueType& e) { type(e, out); });
      out->push_back('}');
      return;
    case ValueType::Kind::Scalar:
      out->append("{\"#\":");
      write_json_string(scalar_type_id(t.dtype), out);
      out->push_back('}');
      return;
    case ValueType::Kind::Other:
      if (!t.raw.empty()) {
        out->append(t.raw);
        return;
      }
      break;
    case ValueType::Kind::Null: break;
  }
  out->append("{\"#\":\"NULL\"}");
}

void write_float_attr(const char* id, double f, std::string* out) {
  out->append("{\"#\":\"");
  out->append(id);
  out->append("\",");
  if (std::isnan(f)) {
    out->append("\"VD\":\"NaN\"}");
  } else if (std::isinf(f)) {
    out->append(f > 0 ? "\"VD\":\"INF\"}" : "\"VD\":\"-INF\"}");
  } else {
    out->append("\"D\":");
    write_json_double(f, out);
    out->push_back('}');
  }
}

void Writer::attr(const Attr& a, std::string* out) const {
  auto head = [out](const char* id) {
    out->append("{\"#\":\"");
    out->append(id);
    out->append("\",\"D\":");
  };
  auto int_attr = [&](const char* id, int64_t v) {
    head(id);
    write_json_int(v, out);
    out->push_back('}');
  };
  auto str_attr = [&](const char* id, const std::string& s) {
    head(id);
    write_json_string(s, out);
    out->push_back('}');
  };
  // Legacy list kinds have no PIR twin; they are written as arrays of the
  // element attribute so that a legacy-derived program still serialises.
  auto list = [&](size_t n, const std::function<void(size_t)>& each) {
    head("0.a_array");
    out->push_back('[');
    for (size_t k = 0; k < n; ++k) {
      if (k) out->push_back(',');
      each(k);
    }
    out->append("]}");
  };
  switch (a.kind) {
    case Attr::Kind::Bool:
      head("0.a_bool");
      out->append(a.b ? "true}" : "false}");
      return;
    case Attr::Kind::Int32: return int_attr("0.a_i32", a.i);
    case Attr::Kind::Int64: return int_attr("0.a_i64", a.i);
    case Attr::Kind::Index: return int_attr("0.a_index", a.i);
    case Attr::Kind::Block: return int_attr("0.a_i32", a.i);
    case Attr::Kind::Float32: return write_float_attr("0.a_f32", a.f, out);
    case Attr::Kind::Float64: return write_float_attr("0.a_f64", a.f, out);
    case Attr::Kind::String:
    case Attr::Kind::Var: return str_attr("0.a_str", a.s);
    case Attr::Kind::TensorName: return str_attr("0.a_tensorname", a.s);
    case Attr::Kind::DType: return str_attr("1.a_dtype", a.s);
    case Attr::Kind::Layout: return str_attr("1.a_layout", a.s);
    case Attr::Kind::Array: return list(a.items.size(), [&](size_t k) { attr(a.items[k], out); });
    case Attr::Kind::Type:
      head("0.a_type");
      if (a.type) {
        type(*a.type, out);
      } else {
        out->append("{\"#\":\"NULL\"}");
      }
      out->push_back('}');
      return;
    case Attr::Kind::Complex64:
    case Attr::Kind::Complex128:
      head(a.kind == Attr::Kind::Complex64 ? "0.a_c64" : "0.a_c128");
      out->push_back('[');
      write_json_double(a.floats.size() > 0 ? a.floats[0] : 0.0, out);
      out->push_back(',');
      write_json_double(a.floats.size() > 1 ? a.floats[1] : 0.0, out);
      out->append("]}");
      return;
    case Attr::Kind::Int64s:
      head("1.a_intarray");
      write_json_list(a.ints, out, [out](int64_t x) { write_json_int(x, out); });
      out->push_back('}');
      return;
    case Attr::Kind::Place:
      head("1.a_place");
      out->push_back('[');
      write_json_int(a.ints.size() > 0 ? a.ints[0] : 0, out);
      out->push_back(',');
      write_json_int(a.ints.size() > 1 ? a.ints[1] : 0, out);
      out->push_back(',');
      write_json_string(a.s, out);
      out->append("]}");
      return;
    case Attr::Kind::Raw:
      if (a.s.empty()) {
        out->append("{\"#\":\"NULL\"}");
      } else {
        out->append(a.s);
      }
      return;
    case Attr::Kind::Bools:
      return list(a.ints.size(), [&](size_t k) {
        out->append(a.ints[k] ? "{\"#\":\"0.a_bool\",\"D\":true}"
                              : "{\"#\":\"0.a_bool\",\"D\":false}");
      });
    case Attr::Kind::Int32s:
    case Attr::Kind::Blocks:
      return list(a.ints.size(), [&](size_t k) { int_attr("0.a_i32", a.ints[k]); });
    case Attr::Kind::Float32s:
      return list(a.floats.size(),
                  [&](size_t k) { write_float_attr("0.a_f32", a.floats[k], out); });
    case Attr::Kind::Float64s:
      return list(a.floats.size(),
                  [&](size_t k) { write_float_attr("0.a_f64", a.floats[k], out); });
    case Attr::Kind::Strings:
    case Attr::Kind::Vars:
      return list(a.strs.size(), [&](size_t k) { str_attr("0.a_str", a.strs[k]); });
    case Attr::Kind::Scalar:
    case Attr::Kind::Scalars: {
      auto scalar = [&](const ScalarAttr& s) {
        switch (s.type) {
          case 1:
            head("0.a_bool");
            out->append(s.b ? "true}" : "false}");
            return;
          case 2: return int_attr("0.a_i64", s.i);
          case 4:
            head("0.a_c128");
            out->push_back('[');
            write_json_double(s.c_real, out);
            out->push_back(',');
            write_json_double(s.c_imag, out);
            out->append("]}");
            return;
          default: return write_float_attr("0.a_f64", s.r, out);
        }
      };
      if (a.kind == Attr::Kind::Scalars) {
        return list(a.scalars.size(), [&](size_t k) { scalar(a.scalars[k]); });
      }
      if (a.scalars.empty()) return write_float_attr("0.a_f64", 0.0, out);
      return scalar(a.scalars[0]);
    }
  }
  out->append("{\"#\":\"NULL\"}");
}

void Writer::named_attrs(const std::vector<NamedAttr>& list, std::string* out) const {
  write_json_list(list, out, [&](const NamedAttr& na) {
    out->append("{\"AT\":");
    attr(na.value, out);
    out->append(",\"N\":");
    write_json_string(na.name, out);
    out->push_back('}');
  });
}

void Writer::value_ref(ValueId v, std::string* out) const {
  out->append("{\"%\":");
  int64_t id = 0;
  if (v >= 0 && static_cast<size_t>(v) < out_id_.size()) id = out_id_[v];
  write_json_int(id, out);
  out->push_back('}');
}

void Writer::result(ValueId v, std::string* out) const {
  out->append("{\"%\":");
  bool ok = v >= 0 && static_cast<size_t>(v) < p_.values.size();
  write_json_int(ok ? out_id_[v] : 0, out);
  out->append(",\"TT\":");
  if (ok) {
    type(p_.values[v].type, out);
  } else {
    out->append("{\"#\":\"NULL\"}");
  }
  out->push_back('}');
}

bool is_null_result(const Value& v) {
  return v.pir_id == 0 && v.type.kind == ValueType::Kind::Null;
}

// Values keep their PIR ids; values without one (or with a clashing one, e.g.
// after a pass copied a value) get fresh ids above the largest in use.
void Writer::assign_ids() {
  out_id_.assign(p_.values.size(), 0);
  if (p_.blocks.empty()) return;
  const Block& b = p_.blocks[0];
  std::unordered_set<int64_t> used;
  std::vector<ValueId> defs;
  for (ValueId v : b.args) defs.push_back(v);
  for (const Op& o : b.ops) {
    for (const OpSlot& s : o.outputs) {
      for (ValueId v : s.args) defs.push_back(v);
    }
  }
  int64_t max_id = 0, min_id = 0;
  for (const Value& v : p_.values) {
    max_id = std::max(max_id, v.pir_id);
    min_id = std::min(min_id, v.pir_id);
  }
  std::vector<ValueId> need;
  size_t nargs = b.args.size();
  for (size_t k = 0; k < defs.size(); ++k) {
    ValueId v = defs[k];
    if (v < 0 || static_cast<size_t>(v) >= p_.values.size()) continue;
    const Value& val = p_.values[v];
    if (k >= nargs && is_null_result(val)) continue;
    if (val.pir_id != 0 && used.insert(val.pir_id).second) {
      out_id_[v] = val.pir_id;
    } else {
      out_id_[v] = k < nargs ? --min_id : ++max_id;  // block args are negative
      used.insert(out_id_[v]);
    }
  }
  // Operands that no op defines (a broken IR) still get a stable id.
  for (size_t v = 0; v < p_.values.size(); ++v) {
    if (out_id_[v] == 0 && !is_null_result(p_.values[v])) {
      int64_t id = p_.values[v].pir_id;
      out_id_[v] = id != 0 ? id : ++max_id;
    }
  }
}

bool Writer::fits_param_form(const Op& o) const {
  if (!o.inputs.empty() || o.outputs.size() != 1 || o.outputs[0].args.size() != 1) return false;
  if (o.attrs.size() != 4) return false;
  for (int k = 0; k < 3; ++k) {
    if (o.attrs[k].name != kParamAttrs[k] || o.attrs[k].value.kind != Attr::Kind::Bool)
      return false;
  }
  if (o.attrs[3].name != "parameter_name" || o.attrs[3].value.kind != Attr::Kind::String)
    return false;
  if (o.result_attrs.empty()) return true;
  if (o.result_attrs.size() != 3) return false;
  for (int k = 0; k < 3; ++k) {
    if (o.result_attrs[k].name != kParamResultAttrs[k] ||
        o.result_attrs[k].value.kind != Attr::Kind::Bool) {
      return false;
    }
  }
  return true;
}

void Writer::op(const Op& o, std::string* out) const {
  std::vector<std::pair<std::string, std::string>> m;
  std::string s;
  if (o.type == "builtin.parameter" && fits_param_form(o)) {
    m.emplace_back("#", "\"p\"");
    s = "[";
    for (int k = 0; k < 3; ++k) s += o.attrs[k].value.b ? "1," : "0,";
    write_json_string(o.attrs[3].value.s, &s);
    s += "]";
    m.emplace_back("A", std::move(s));
    s.clear();
    result(o.outputs[0].args[0], &s);
    m.emplace_back("O", std::move(s));
    if (!o.result_attrs.empty()) {
      s = "[";
      for (int k = 0; k < 3; ++k) {
        if (k) s += ",";
        s += o.result_attrs[k].value.b ? "1" : "0";
      }
      s += "]";
      m.emplace_back("OA", std::move(s));
    }
  } else {
    s.clear();
    write_json_string(compress_op_name(o.type), &s);
    m.emplace_back("#", std::move(s));
    s.clear();
    named_attrs(o.attrs, &s);
    m.emplace_back("A", std::move(s));
    // Operands and results: the slots' arguments, flattened in order.
    auto flat = [](const std::vector<OpSlot>& slots) {
      std::vector<ValueId> vs;
      for (const OpSlot& slot : slots) vs.insert(vs.end(), slot.args.begin(), slot.args.end());
      return vs;
    };
    s.clear();
    write_json_list(flat(o.inputs), &s, [&](ValueId v) { value_ref(v, &s); });
    m.emplace_back("I", std::move(s));
    s.clear();
    write_json_list(flat(o.outputs), &s, [&](ValueId v) { result(v, &s); });
    m.emplace_back("O", std::move(s));
    // Paddle writes "OA" on every op of a trainable program.
    if (p_.pir_trainable || !o.result_attrs.empty()) {
      s.clear();
      named_attrs(o.result_attrs, &s);
      m.emplace_back("OA", std::move(s));
    }
  }
  // Modeled keys are emitted sorted, as nlohmann::json (std::map) does. The
  // carried keys are merged in by key while keeping their stored relative
  // order, so that a file with sorted keys is reproduced exactly and any
  // other file still re-reads to the same `extra` sequence.
  std::sort(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, std::string>> extra;
  for (const auto& e : o.extra) {
    bool clash = false;
    for (const auto& have : m) clash = clash || have.first == e.first;
    if (!clash) extra.push_back(e);
  }
  std::vector<std::pair<std::string, std::string>> merged;
  merged.reserve(m.size() + extra.size());
  size_t i = 0, k = 0;
  while (i < m.size() || k < extra.size()) {
    if (k >= extra.size() || (i < m.size() && !(extra[k].first < m[i].first))) {
      merged.push_back(std::move(m[i++]));
    } else {
      merged.push_back(std::move(extra[k++]));
    }
  }
  m.swap(merged);
  out->push_back('{');
  for (size_t k = 0; k < m.size(); ++k) {
    if (k) out->push_back(',');
    write_json_string(m[k].first, out);
    out->push_back(':');
    out->append(m[k].second);
  }
  out->push_back('}');
}

std::string Writer::run() {
  assign_ids();
  std::string out;
  out.reserve(1 << 16);
  out.append("{\"base_code\":{\"magic\":\"pir\",\"trainable\":");
  out.append(p_.pir_trainable ? "true" : "false");
  if (p_.has_version) {
    out.append(",\"version\":");
    write_json_int(p_.version, &out);
  }
  out.append("},\"program\":{\"regions\":[{\"#\":");
  write_json_string(p_.pir_region_name.empty() ? kDefaultRegionName : p_.pir_region_name, &out);
  out.append(",\"blocks\":[{\"#\":");
  const Block* b = p_.blocks.empty() ? nullptr : &p_.blocks[0];
  write_json_string(b && !b->pir_name.empty() ? b->pir_name : kDefaultBlockName, &out);
  const Block empty;
  if (!b) b = &empty;
  out.append(",\"args\":");
  write_json_list(b->args, &out, [&](ValueId v) { result(v, &out); });
  out.append(",\"ops\":");
  write_json_list(b->ops, &out, [&](const Op& o) { op(o, &out); });
  out.append("}]}]}}");
  return out;
}

}  // namespace

std::string write_program(const Program& p) {
  Writer w(p);
  return w.run();
}

}  // namespace pir_json
}  // namespace pif
