// PIR JSON reader, types and attributes: value types (dense tensors, vectors, others) and
// attribute values of every PIR attribute kind, with their limits.
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

ValueType Reader::parse_type(const JsonValue& j) {
  ValueType t;
  if (!j.is_object()) fail(&j, "a type is not a JSON object");
  const JsonValue* id = j.find("#");
  bool plain = id && id->is_string() && j.count("#") == 1 && j.count("D") <= 1;
  for (const auto& m : j.members) {
    if (m.first != "#" && m.first != "D") plain = false;
  }
  auto other = [&]() {
    ValueType o;
    o.kind = ValueType::Kind::Other;
    o.raw = json_text(j);
    return o;
  };
  if (!plain) return other();
  const JsonValue* d = j.find("D");
  const std::string& name = id->s;
  if (name == "NULL" && !d) {
    t.kind = ValueType::Kind::Null;
    return t;
  }
  DType dt;
  if (!d && scalar_type_from_id(name, &dt)) {
    t.kind = ValueType::Kind::Scalar;
    t.dtype = dt;
    return t;
  }
  if (name == "0.t_vec" && d && d->is_array()) {
    t.kind = ValueType::Kind::Vector;
    t.elements.reserve(d->items.size());
    for (const auto& e : d->items) t.elements.push_back(parse_type(e));
    return t;
  }
  if (name == "0.t_dtensor" && d && d->is_array() && d->items.size() == 5) {
    const auto& it = d->items;
    if (!it[1].is_array() || !it[2].is_string() || !it[3].is_array() || !it[4].is_int() ||
        it[4].i < 0) {
      return other();
    }
    ValueType elem = parse_type(it[0]);
    if (elem.kind != ValueType::Kind::Scalar) return other();
    if (it[1].items.size() > limits_.max_rank) {
      fail(&it[1],
           "tensor rank " + std::to_string(it[1].items.size()) + " exceeds the limit of " +
               std::to_string(limits_.max_rank),
           code::kLimit);
    }
    for (const auto& dim : it[1].items) {
      if (!dim.is_int()) return other();
    }
    for (const auto& level : it[3].items) {
      if (!level.is_array()) return other();
      for (const auto& x : level.items) {
        if (!x.is_int() || x.i < 0) return other();
      }
    }
    t.kind = ValueType::Kind::DenseTensor;
    t.dtype = elem.dtype;
    t.dims.reserve(it[1].items.size());
    for (const auto& dim : it[1].items) t.dims.push_back(dim.i);
    // An empty layout string means Paddle's default, which the writer spells out as NCHW:
    // read it as that, so write -> read gives back the same program (found by fuzz_pir_json).
    t.layout = it[2].s.empty() ? std::string("NCHW") : it[2].s;
    for (const auto& level : it[3].items) {
      t.lod.emplace_back();
      for (const auto& x : level.items) t.lod.back().push_back(static_cast<uint64_t>(x.i));
    }
    t.offset = static_cast<uint64_t>(it[4].i);
    return t;
  }
  return other();
}

// Attribute objects {"#": id, "D": data} (or "VD" for non-finite floats).
// Anything that does not have exactly the documented shape becomes Kind::Raw
// holding its JSON text, so that attribute drift in newer writers neither
// fails the load nor gets lost on write.
Attr Reader::parse_attr(const JsonValue& j) {
  Attr a;
  auto raw = [&]() {
    Attr r;
    r.kind = Attr::Kind::Raw;
    r.s = json_text(j);
    return r;
  };
  if (!j.is_object()) return raw();
  for (const auto& m : j.members) {
    if (m.first != "#" && m.first != "D" && m.first != "VD") return raw();
  }
  if (j.count("#") != 1 || j.count("D") + j.count("VD") != 1) return raw();
  const JsonValue* idv = j.find("#");
  if (!idv->is_string()) return raw();
  const std::string& id = idv->s;
  const JsonValue* d = j.find("D");
  const JsonValue* vd = j.find("VD");
  if (vd) {
    if ((id != "0.a_f32" && id != "0.a_f64") || !vd->is_string()) return raw();
    a.kind = id == "0.a_f32" ? Attr::Kind::Float32 : Attr::Kind::Float64;
    if (vd->s == "NaN") {
      a.f = std::numeric_limits<double>::quiet_NaN();
    } else if (vd->s == "INF") {
      a.f = std::numeric_limits<double>::infinity();
    } else if (vd->s == "-INF") {
      a.f = -std::numeric_limits<double>::infinity();
    } else {
      return raw();
    }
    return a;
  }
  if (id == "0.a_bool") {
    if (!d->is_bool()) return raw();
    a.kind = Attr::Kind::Bool;
    a.b = d->b;
  } else if (id == "0.a_i32" || id == "0.a_i64" || id == "0.a_index") {
    if (!d->is_int()) return raw();
    if (id == "0.a_i32") {
      if (d->i < std::numeric_limits<int32_t>::min() ||
          d->i > std::numeric_limits<int32_t>::max()) {
        return raw();
      }
      a.kind = Attr::Kind::Int32;
    } else {
      a.kind = id == "0.a_i64" ? Attr::Kind::Int64 : Attr::Kind::Index;
    }
    a.i = d->i;
  } else if (id == "0.a_f32" || id == "0.a_f64") {
    if (!d->is_number()) return raw();
    a.kind = id == "0.a_f32" ? Attr::Kind::Float32 : Attr::Kind::Float64;
    a.f = d->number();
  } else if (id == "0.a_str" || id == "0.a_tensorname" || id == "1.a_dtype" || id == "1.a_layout") {
    if (!d->is_string()) return raw();
    a.kind = id == "0.a_str"          ? Attr::Kind::String
             : id == "0.a_tensorname" ? Attr::Kind::TensorName
             : id == "1.a_dtype"      ? Attr::Kind::DType
                                      : Attr::Kind::Layout;
    a.s = d->s;
  } else if (id == "0.a_array") {
    if (!d->is_array()) return raw();
    a.kind = Attr::Kind::Array;
    a.items.reserve(d->items.size());
    for (const auto& e : d->items) a.items.push_back(parse_attr(e));
  } else if (id == "0.a_type") {
    if (!d->is_object()) return raw();
    a.kind = Attr::Kind::Type;
    a.type = std::make_shared<ValueType>(parse_type(*d));
  } else if (id == "0.a_c64" || id == "0.a_c128") {
    if (!d->is_array() || d->items.size() != 2 || !d->items[0].is_number() ||
        !d->items[1].is_number()) {
      return raw();
    }
    a.kind = id == "0.a_c64" ? Attr::Kind::Complex64 : Attr::Kind::Complex128;
    a.floats = {d->items[0].number(), d->items[1].number()};
  } else if (id == "1.a_intarray") {
    if (!d->is_array()) return raw();
    for (const auto& e : d->items) {
      if (!e.is_int()) return raw();
    }
    a.kind = Attr::Kind::Int64s;
    a.ints.reserve(d->items.size());
    for (const auto& e : d->items) a.ints.push_back(e.i);
  } else if (id == "1.a_place") {
    if (!d->is_array() || d->items.size() != 3 || !d->items[0].is_int() || !d->items[1].is_int() ||
        !d->items[2].is_string()) {
      return raw();
    }
    a.kind = Attr::Kind::Place;
    a.ints = {d->items[0].i, d->items[1].i};
    a.s = d->items[2].s;
  } else {
    return raw();
  }
  return a;
}

std::vector<NamedAttr> Reader::parse_named_attrs(const JsonValue& list, const char* what) {
  if (!list.is_array()) fail(&list, std::string("\"") + what + "\" is not a list");
  std::vector<NamedAttr> out;
  out.reserve(list.items.size());
  for (const auto& e : list.items) {
    if (!e.is_object()) fail(&e, std::string("an entry of \"") + what + "\" is not an object");
    const JsonValue* n = e.find("N");
    const JsonValue* at = e.find("AT");
    if (!n || !n->is_string() || !at) {
      fail(&e, std::string("an entry of \"") + what + "\" lacks \"N\" or \"AT\"");
    }
    out.push_back(NamedAttr{n->s, parse_attr(*at)});
  }
  return out;
}

// A result {"%": id, "TT": type} (pre-release: "#" instead of "%").

}  // namespace pir_json
}  // namespace pif
