#include "format/pir_json.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/json.h"

namespace pif {
namespace {

using JType = JsonValue::Type;

// Names the writer uses for a program without a region or block name (one
// built in memory); the reader maps an empty name to them.
const char* const kDefaultRegionName = "region_0";
const char* const kDefaultBlockName = "block_0";

// Compressed dialect ids ("1.conv2d" = pd_op.conv2d). Index = id.
const char* const kDialects[] = {"builtin", "pd_op", "cf", "custom_op", "dist"};
constexpr int kNumDialects = sizeof(kDialects) / sizeof(kDialects[0]);

// PIR builtin element types <-> DType. t_index has no DType and stays an
// Other type, so that it is written back unchanged.
const struct {
  const char* id;
  DType dtype;
} kScalarTypes[] = {
    {"0.t_bool", DType::Bool},
    {"0.t_i8", DType::Int8},
    {"0.t_ui8", DType::UInt8},
    {"0.t_i16", DType::Int16},
    {"0.t_i32", DType::Int32},
    {"0.t_i64", DType::Int64},
    {"0.t_f16", DType::Float16},
    {"0.t_bf16", DType::BFloat16},
    {"0.t_f32", DType::Float32},
    {"0.t_f64", DType::Float64},
    {"0.t_c64", DType::Complex64},
    {"0.t_c128", DType::Complex128},
    {"0.t_f8e4m3fn", DType::Float8E4M3FN},
    {"0.t_f8e5m2", DType::Float8E5M2},
    {"0.t_undefined", DType::Undefined},
};

bool scalar_type_from_id(const std::string& id, DType* out) {
  for (const auto& t : kScalarTypes) {
    if (id == t.id) {
      *out = t.dtype;
      return true;
    }
  }
  return false;
}

const char* scalar_type_id(DType t) {
  for (const auto& s : kScalarTypes) {
    if (s.dtype == t) return s.id;
  }
  return "0.t_undefined";
}

// Parameter op layout shared by the reader and the writer: the compressed
// "p" op stores these positionally.
const char* const kParamAttrs[] = {"is_distributed", "is_parameter", "need_clip"};
const bool kParamAttrDefaults[] = {false, true, false};
const char* const kParamResultAttrs[] = {"persistable", "stop_gradient", "trainable"};

std::string json_text(const JsonValue& j) {
  std::string s;
  write_json(j, &s);
  return s;
}

// "1.conv2d" -> "pd_op.conv2d". Names that are not "<known id>.<name>" (the
// pre-release long form, test dialects with negative ids) are kept verbatim.
std::string expand_op_name(const std::string& name) {
  size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 2) return name;
  int id = 0;
  for (size_t k = 0; k < dot; ++k) {
    char c = name[k];
    if (c < '0' || c > '9') return name;
    id = id * 10 + (c - '0');
  }
  if (dot == 2 && name[0] == '0') return name;  // "01.x" is not a dialect id
  if (id >= kNumDialects) return name;
  return std::string(kDialects[id]) + name.substr(dot);
}

// Inverse of expand_op_name.
std::string compress_op_name(const std::string& name) {
  size_t dot = name.find('.');
  if (dot == std::string::npos) return name;
  for (int id = 0; id < kNumDialects; ++id) {
    if (name.compare(0, dot, kDialects[id]) == 0 && std::strlen(kDialects[id]) == dot) {
      return std::to_string(id) + name.substr(dot);
    }
  }
  return name;
}

class Reader {
 public:
  Reader(const std::string& file, const LoadLimits& limits, Program* prog)
      : file_(file), limits_(limits), prog_(prog) {}

  void run(const uint8_t* data, size_t size);

 private:
  [[noreturn]] void fail(const JsonValue* at, const std::string& detail,
                         const char* code = code::kFormat) const {
    std::string where;
    if (op_index_ >= 0) {
      where = "op " + std::to_string(op_index_) + " (" + op_name_ + ")";
    } else {
      where = where_;
    }
    int64_t offset = -1;
    if (at) {
      offset = static_cast<int64_t>(at->offset);
    } else if (op_index_ >= 0 && static_cast<size_t>(op_index_) < op_offsets_.size()) {
      offset = static_cast<int64_t>(op_offsets_[op_index_]);  // checks made after parsing
    }
    throw ModelError(code, file_, offset, where, detail);
  }

  const JsonValue& member(const JsonValue& obj, const char* key, JType type, const char* what) {
    if (obj.count(key) > 1) fail(&obj, std::string("duplicate key \"") + key + "\" in " + what);
    const JsonValue* v = obj.find(key);
    if (!v) fail(&obj, std::string(what) + " has no \"" + key + "\"");
    if (v->type != type)
      fail(v, std::string("\"") + key + "\" in " + what + " has the wrong JSON type");
    return *v;
  }

  ValueType parse_type(const JsonValue& j);
  Attr parse_attr(const JsonValue& j);
  std::vector<NamedAttr> parse_named_attrs(const JsonValue& list, const char* what);
  ValueId define_value(const JsonValue& res, const char* id_key, bool allow_null);
  ValueId operand(const JsonValue& opnd);
  void parse_param_op(const JsonValue& j, Op* op);
  void parse_general_op(const JsonValue& j, Op* op);
  void normalise_named_param(Op* op);
  void finish();

  const std::string& file_;
  const LoadLimits& limits_;
  Program* prog_;
  std::unordered_map<int64_t, ValueId> ids_;
  std::vector<uint64_t> op_offsets_;  // byte offset of each op object
  int64_t op_index_ = -1;
  std::string op_name_;
  std::string where_ = "program";
};

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
ValueId Reader::define_value(const JsonValue& res, const char* id_key, bool allow_null) {
  if (!res.is_object()) fail(&res, "a result is not an object");
  const JsonValue* idv = res.find(id_key);
  if (!idv) idv = res.find("#");
  if (!idv || !idv->is_int()) fail(&res, "a result has no integer value id");
  const JsonValue* tt = res.find("TT");
  if (prog_->values.size() >= limits_.max_values) {
    fail(&res, "more than " + std::to_string(limits_.max_values) + " values", code::kLimit);
  }
  Value v;
  v.pir_id = idv->i;
  if (tt) {
    v.type = parse_type(*tt);
  } else {
    v.type.kind = ValueType::Kind::Null;
  }
  if (idv->i == 0) {
    // Paddle writes an absent optional result as {"%":0,"TT":{"#":"NULL"}}.
    if (!allow_null || v.type.kind != ValueType::Kind::Null) {
      fail(idv, "value id 0 is reserved for null values");
    }
    return prog_->add_value(std::move(v));
  }
  if (!tt) fail(&res, "result %" + std::to_string(idv->i) + " has no type \"TT\"");
  if (ids_.count(idv->i)) fail(idv, "value id %" + std::to_string(idv->i) + " is defined twice");
  ValueId vid = prog_->add_value(std::move(v));
  ids_.emplace(idv->i, vid);
  return vid;
}

ValueId Reader::operand(const JsonValue& opnd) {
  if (!opnd.is_object()) fail(&opnd, "an operand is not an object");
  const JsonValue* idv = opnd.find("%");
  if (!idv) idv = opnd.find("#");
  if (!idv || !idv->is_int()) fail(&opnd, "an operand has no integer value id");
  if (idv->i == 0) return kNoValue;
  auto it = ids_.find(idv->i);
  if (it == ids_.end()) {
    fail(idv, "operand %" + std::to_string(idv->i) +
                  " refers to a value not defined by an earlier op or block argument");
  }
  return it->second;
}

bool flag_value(const JsonValue& j, bool* out) {
  if (j.is_bool()) {
    *out = j.b;
    return true;
  }
  if (j.is_int() && (j.i == 0 || j.i == 1)) {
    *out = j.i == 1;
    return true;
  }
  return false;
}

Attr bool_attr(bool b) {
  Attr a;
  a.kind = Attr::Kind::Bool;
  a.b = b;
  return a;
}

// Compressed parameter op: {"#":"p","A":[dist,param,clip,"name"],"O":{...},
// "OA":[persistable,stop_gradient,trainable],"DA":[...],"QA":[...]}.
void Reader::parse_param_op(const JsonValue& j, Op* op) {
  op->type = "builtin.parameter";
  op_name_ = op->type;
  const JsonValue& a = member(j, "A", JType::Array, "parameter op");
  if (a.items.size() != 4 || !a.items[3].is_string()) {
    fail(&a, "\"A\" must be [is_distributed, is_parameter, need_clip, parameter_name]");
  }
  for (int k = 0; k < 3; ++k) {
    bool b;
    if (!flag_value(a.items[k], &b)) fail(&a.items[k], "a parameter flag is not 0/1");
    op->attrs.push_back(NamedAttr{kParamAttrs[k], bool_attr(b)});
  }
  Attr name;
  name.kind = Attr::Kind::String;
  name.s = a.items[3].s;
  op->attrs.push_back(NamedAttr{"parameter_name", name});

  if (j.count("O") != 1) fail(&j, "parameter op needs exactly one \"O\"");
  const JsonValue* o = j.find("O");
  // Written as a single object; accept a one-element list too.
  if (o->is_array()) {
    if (o->items.size() != 1) fail(o, "parameter op must have exactly one result");
    o = &o->items[0];
  }
  ValueId vid = define_value(*o, "%", false);
  op->outputs.push_back(OpSlot{"", {vid}});

  if (j.count("OA") > 1) fail(&j, "duplicate key \"OA\" in parameter op");
  if (const JsonValue* oa = j.find("OA")) {
    if (!oa->is_array() || oa->items.size() != 3) {
      fail(oa, "\"OA\" must be [persistable, stop_gradient, trainable]");
    }
    for (int k = 0; k < 3; ++k) {
      bool b;
      if (!flag_value(oa->items[k], &b)) fail(&oa->items[k], "a parameter flag is not 0/1");
      op->result_attrs.push_back(NamedAttr{kParamResultAttrs[k], bool_attr(b)});
    }
  }
  for (const auto& m : j.members) {
    if (m.first != "#" && m.first != "A" && m.first != "O" && m.first != "OA") {
      op->extra.emplace_back(m.first, json_text(m.second));
    }
  }
}

// The pre-release writer stored builtin.parameter as an ordinary op: flags as
// one-element bool arrays, `trainable` among the attributes and
// persistable/stop_gradient in "OA". Bring it to the layout parse_param_op
// produces, filling the defaults Paddle's compressing writer uses.
void Reader::normalise_named_param(Op* op) {
  auto unwrap = [](Attr* a) {
    if (a->kind == Attr::Kind::Array && a->items.size() == 1 &&
        a->items[0].kind == Attr::Kind::Bool) {
      Attr b = a->items[0];
      *a = b;
    }
  };
  std::vector<NamedAttr> pool = std::move(op->attrs);
  bool had_result_attrs = !op->result_attrs.empty();
  for (auto& r : op->result_attrs) pool.push_back(std::move(r));
  op->attrs.clear();
  op->result_attrs.clear();
  for (auto& na : pool) unwrap(&na.value);
  // First entry with this name that has the expected kind; marked as used.
  std::vector<bool> used(pool.size(), false);
  auto take = [&](const char* name, Attr::Kind kind) -> const Attr* {
    for (size_t k = 0; k < pool.size(); ++k) {
      if (!used[k] && pool[k].name == name && pool[k].value.kind == kind) {
        used[k] = true;
        return &pool[k].value;
      }
    }
    return nullptr;
  };
  auto present = [&](const char* name) {
    for (const auto& na : pool) {
      if (na.name == name) return true;
    }
    return false;
  };
  for (int k = 0; k < 3; ++k) {
    const Attr* a = take(kParamAttrs[k], Attr::Kind::Bool);
    op->attrs.push_back(NamedAttr{kParamAttrs[k], bool_attr(a ? a->b : kParamAttrDefaults[k])});
  }
  const Attr* name = take("parameter_name", Attr::Kind::String);
  if (!name) fail(nullptr, "parameter op has no string attribute parameter_name");
  op->attrs.push_back(NamedAttr{"parameter_name", *name});
  bool any_result = had_result_attrs;
  for (int k = 0; k < 3; ++k) any_result = any_result || present(kParamResultAttrs[k]);
  if (any_result) {
    for (int k = 0; k < 3; ++k) {
      const Attr* a = take(kParamResultAttrs[k], Attr::Kind::Bool);
      // Paddle's default for all three flags is true.
      op->result_attrs.push_back(NamedAttr{kParamResultAttrs[k], bool_attr(a ? a->b : true)});
    }
  }
  // Keep anything else (the writer then falls back to the long form).
  for (size_t k = 0; k < pool.size(); ++k) {
    if (!used[k]) op->attrs.push_back(std::move(pool[k]));
  }
}

void Reader::parse_general_op(const JsonValue& j, Op* op) {
  const JsonValue* id = j.find("#");
  op->type = expand_op_name(id->s);
  op_name_ = op->type;
  for (const char* key : {"A", "I", "O", "OA"}) {
    if (j.count(key) > 1) fail(&j, std::string("duplicate key \"") + key + "\" in op");
  }
  if (const JsonValue* ins = j.find("I")) {
    if (!ins->is_array()) fail(ins, "\"I\" is not a list");
    op->inputs.reserve(ins->items.size());
    for (const auto& e : ins->items) op->inputs.push_back(OpSlot{"", {operand(e)}});
  }
  if (const JsonValue* outs = j.find("O")) {
    if (!outs->is_array()) fail(outs, "\"O\" is not a list");
    op->outputs.reserve(outs->items.size());
    for (const auto& e : outs->items)
      op->outputs.push_back(OpSlot{"", {define_value(e, "%", true)}});
  }
  if (const JsonValue* a = j.find("A")) op->attrs = parse_named_attrs(*a, "A");
  if (const JsonValue* oa = j.find("OA")) op->result_attrs = parse_named_attrs(*oa, "OA");
  for (const auto& m : j.members) {
    const std::string& k = m.first;
    if (k != "#" && k != "A" && k != "I" && k != "O" && k != "OA") {
      op->extra.emplace_back(k, json_text(m.second));
    }
  }
  if (op->type == "builtin.parameter") {
    if (!op->inputs.empty() || op->outputs.size() != 1 ||
        prog_->values[op->outputs[0].args[0]].pir_id == 0) {
      fail(&j, "parameter op must have no operands and exactly one result");
    }
    normalise_named_param(op);
  }
}

int64_t attr_int(const Attr* a, int64_t dflt) {
  if (!a) return dflt;
  switch (a->kind) {
    case Attr::Kind::Int32:
    case Attr::Kind::Int64:
    case Attr::Kind::Index: return a->i;
    default: return dflt;
  }
}

const Attr* find_attr(const std::vector<NamedAttr>& list, const char* name) {
  for (const auto& na : list) {
    if (na.name == name) return &na.value;
  }
  return nullptr;
}

void Reader::finish() {
  Block& blk = prog_->blocks[0];
  std::unordered_set<std::string> input_names;
  struct Fetch {
    int64_t col;
    size_t order;
    IoBinding io;
  };
  std::vector<Fetch> fetches;
  uint64_t total_bytes = 0;
  for (size_t k = 0; k < blk.ops.size(); ++k) {
    Op& op = blk.ops[k];
    op_index_ = static_cast<int64_t>(k);
    op_name_ = op.type;
    if (op.type == "pd_op.data") {
      const Attr* name = find_attr(op.attrs, "name");
      if (!name || name->kind != Attr::Kind::String)
        fail(nullptr, "data op has no string \"name\"");
      if (op.outputs.empty() || op.outputs[0].args.empty() ||
          prog_->values[op.outputs[0].args[0]].pir_id == 0) {
        fail(nullptr, "data op has no result");
      }
      if (!input_names.insert(name->s).second)
        fail(nullptr, "duplicate input name \"" + name->s + "\"");
      ValueId v = op.outputs[0].args[0];
      prog_->values[v].name = name->s;
      IoBinding io;
      io.name = name->s;
      io.value = v;
      io.col = static_cast<int32_t>(prog_->inputs.size());
      prog_->inputs.push_back(io);
    } else if (op.type == "pd_op.fetch") {
      const Attr* name = find_attr(op.attrs, "name");
      if (!name || name->kind != Attr::Kind::String)
        fail(nullptr, "fetch op has no string \"name\"");
      if (op.inputs.empty() || op.inputs[0].args.empty() || op.inputs[0].args[0] == kNoValue) {
        fail(nullptr, "fetch op has no operand");
      }
      int64_t col = attr_int(find_attr(op.attrs, "col"), static_cast<int64_t>(fetches.size()));
      if (col < 0 || col > std::numeric_limits<int32_t>::max())
        fail(nullptr, "fetch col out of range");
      IoBinding io;
      io.name = name->s;
      io.value = op.inputs[0].args[0];
      io.col = static_cast<int32_t>(col);
      fetches.push_back(Fetch{col, fetches.size(), io});
    } else if (op.type == "builtin.parameter") {
      if (op.outputs.size() != 1 || op.outputs[0].args.size() != 1)
        fail(nullptr, "parameter op has no result");
      ValueId vid = op.outputs[0].args[0];
      Value& v = prog_->values[vid];
      const Attr* pname = find_attr(op.attrs, "parameter_name");
      if (!pname || pname->kind != Attr::Kind::String)
        fail(nullptr, "parameter op has no parameter_name");
      v.name = pname->s;
      const Attr* is_param = find_attr(op.attrs, "is_parameter");
      v.is_parameter = is_param && is_param->kind == Attr::Kind::Bool && is_param->b;
      const Attr* persist = find_attr(op.result_attrs, "persistable");
      v.persistable = !persist || persist->kind != Attr::Kind::Bool || persist->b;
      const Attr* sg = find_attr(op.result_attrs, "stop_gradient");
      v.stop_gradient = sg && sg->kind == Attr::Kind::Bool && sg->b;
      if (!v.persistable) continue;
      const ValueType& t = v.type;
      if (t.kind != ValueType::Kind::DenseTensor || dtype_size(t.dtype) == 0) {
        fail(nullptr, "parameter \"" + v.name + "\" is not a dense tensor of a known element type");
      }
      uint64_t numel = 1;
      for (int64_t d : t.dims) {
        if (d < 0) fail(nullptr, "parameter \"" + v.name + "\" has a dynamic dimension");
        if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
          fail(nullptr, "parameter \"" + v.name + "\" is too large", code::kLimit);
        }
        numel *= static_cast<uint64_t>(d);
      }
      uint64_t esize = dtype_size(t.dtype);
      if (numel > limits_.max_tensor_bytes / esize) {
        fail(nullptr, "parameter \"" + v.name + "\" exceeds the tensor size limit", code::kLimit);
      }
      uint64_t nbytes = numel * esize;
      total_bytes += nbytes;
      if (total_bytes > limits_.max_total_param_bytes) {
        fail(nullptr, "parameters exceed the total size limit", code::kLimit);
      }
      Parameter p;
      p.name = v.name;
      p.value = vid;
      p.tensor.dtype = t.dtype;
      p.tensor.dims = t.dims;
      p.tensor.nbytes = nbytes;
      prog_->params.push_back(std::move(p));
    }
  }
  op_index_ = -1;
  where_ = "parameters";
  std::sort(prog_->params.begin(), prog_->params.end(),
            [](const Parameter& a, const Parameter& b) { return a.name < b.name; });
  for (size_t k = 0; k < prog_->params.size(); ++k) {
    if (k > 0 && prog_->params[k].name == prog_->params[k - 1].name) {
      fail(nullptr, "parameter name \"" + prog_->params[k].name + "\" is used twice");
    }
    prog_->values[prog_->params[k].value].param_index = static_cast<int32_t>(k);
  }
  std::stable_sort(fetches.begin(), fetches.end(),
                   [](const Fetch& a, const Fetch& b) { return a.col < b.col; });
  for (auto& f : fetches) prog_->outputs.push_back(f.io);
}

void Reader::run(const uint8_t* data, size_t size) {
  if (size > limits_.max_file_bytes) {
    fail(nullptr,
         "file is larger than the limit of " + std::to_string(limits_.max_file_bytes) + " bytes",
         code::kLimit);
  }
  JsonParseOptions jopts;
  jopts.max_depth = limits_.max_depth;
  // Every op needs a few dozen JSON values; this bounds memory for hostile
  // files long before max_ops is checked on the parsed DOM.
  jopts.max_nodes = std::min<uint64_t>(uint64_t{limits_.max_ops} * 512 + 65536, uint64_t{1} << 27);
  JsonValue root;
  JsonParseError jerr;
  where_ = "JSON";
  if (!parse_json(reinterpret_cast<const char*>(data), size, jopts, &root, &jerr)) {
    throw ModelError(code::kFormat, file_, static_cast<int64_t>(jerr.offset), "JSON", jerr.message);
  }
  where_ = "program";
  if (!root.is_object()) fail(&root, "top level is not a JSON object");

  where_ = "base_code";
  const JsonValue& base = member(root, "base_code", JType::Object, "top level");
  const JsonValue& magic = member(base, "magic", JType::String, "base_code");
  if (magic.s != "pir") fail(&magic, "base_code.magic is not \"pir\"");
  prog_->format = ProgramFormat::Pir;
  if (const JsonValue* ver = base.find("version")) {
    if (!ver->is_int()) fail(ver, "base_code.version is not an integer");
    if (ver->i < 1 || ver->i > 4) {
      fail(ver, "PIR serialization version " + std::to_string(ver->i) + " is not supported (1-4)",
           code::kUnsupported);
    }
    prog_->version = ver->i;
    prog_->has_version = true;
  }
  if (const JsonValue* tr = base.find("trainable")) {
    if (!tr->is_bool()) fail(tr, "base_code.trainable is not a bool");
    prog_->pir_trainable = tr->b;
  }

  where_ = "program";
  const JsonValue& program = member(root, "program", JType::Object, "top level");
  const JsonValue& regions = member(program, "regions", JType::Array, "program");
  if (regions.items.size() != 1) fail(&regions, "program must have exactly one region");
  const JsonValue& region = regions.items[0];
  if (!region.is_object()) fail(&region, "region is not an object");
  where_ = "region";
  const JsonValue& rname = member(region, "#", JType::String, "region");
  // An empty name reads as the default the writer puts in its place, so a
  // write -> read round trip keeps the IR (found by fuzz_pir_json).
  prog_->pir_region_name = rname.s.empty() ? kDefaultRegionName : rname.s;
  const JsonValue& blocks = member(region, "blocks", JType::Array, "region");
  if (blocks.items.size() != 1) fail(&blocks, "region must have exactly one block");
  const JsonValue& block = blocks.items[0];
  if (!block.is_object()) fail(&block, "block is not an object");
  where_ = "block";
  const JsonValue& bname = member(block, "#", JType::String, "block");
  const JsonValue& ops = member(block, "ops", JType::Array, "block");
  if (ops.items.size() > limits_.max_ops) {
    fail(&ops, "more than " + std::to_string(limits_.max_ops) + " ops", code::kLimit);
  }

  prog_->blocks.emplace_back();
  Block& blk = prog_->blocks.back();
  blk.idx = 0;
  blk.parent_idx = -1;
  blk.pir_name = bname.s.empty() ? kDefaultBlockName : bname.s;
  if (const JsonValue* args = block.find("args")) {
    if (!args->is_array()) fail(args, "block args is not a list");
    where_ = "block argument";
    for (const auto& a : args->items) {
      ValueId vid = define_value(a, "%", false);
      blk.args.push_back(vid);
    }
  }
  // "kwargs" (keyword block arguments) only occurs in control-flow sub-blocks
  // and has no place in the IR; it is not carried.

  blk.ops.reserve(ops.items.size());
  for (size_t k = 0; k < ops.items.size(); ++k) {
    const JsonValue& j = ops.items[k];
    op_index_ = static_cast<int64_t>(k);
    op_name_ = "?";
    if (!j.is_object()) fail(&j, "op is not an object");
    op_offsets_.push_back(j.offset);
    if (j.count("#") != 1) fail(&j, "op needs exactly one name \"#\"");
    const JsonValue* id = j.find("#");
    if (!id->is_string()) fail(id, "op name is not a string");
    op_name_ = id->s;
    blk.ops.emplace_back();
    Op& op = blk.ops.back();
    if (id->s == "p") {
      parse_param_op(j, &op);
    } else {
      parse_general_op(j, &op);
    }
  }
  op_index_ = -1;
  finish();
}

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
      out->append("},[");
      for (size_t k = 0; k < t.dims.size(); ++k) {
        if (k) out->push_back(',');
        write_json_int(t.dims[k], out);
      }
      out->append("],");
      // Programs converted from legacy files carry no layout; Paddle's
      // default is NCHW.
      write_json_string(t.layout.empty() ? "NCHW" : t.layout, out);
      out->append(",[");
      for (size_t k = 0; k < t.lod.size(); ++k) {
        if (k) out->push_back(',');
        out->push_back('[');
        for (size_t m = 0; m < t.lod[k].size(); ++m) {
          if (m) out->push_back(',');
          out->append(std::to_string(t.lod[k][m]));
        }
        out->push_back(']');
      }
      out->append("],");
      out->append(std::to_string(t.offset));
      out->append("]}");
      return;
    case ValueType::Kind::Vector:
      out->append("{\"#\":\"0.t_vec\",\"D\":[");
      for (size_t k = 0; k < t.elements.size(); ++k) {
        if (k) out->push_back(',');
        type(t.elements[k], out);
      }
      out->append("]}");
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
      out->push_back('[');
      for (size_t k = 0; k < a.ints.size(); ++k) {
        if (k) out->push_back(',');
        write_json_int(a.ints[k], out);
      }
      out->append("]}");
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
  out->push_back('[');
  for (size_t k = 0; k < list.size(); ++k) {
    if (k) out->push_back(',');
    out->append("{\"AT\":");
    attr(list[k].value, out);
    out->append(",\"N\":");
    write_json_string(list[k].name, out);
    out->push_back('}');
  }
  out->push_back(']');
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
    s = "[";
    bool first = true;
    for (const OpSlot& slot : o.inputs) {
      for (ValueId v : slot.args) {
        if (!first) s += ",";
        first = false;
        value_ref(v, &s);
      }
    }
    s += "]";
    m.emplace_back("I", std::move(s));
    s = "[";
    first = true;
    for (const OpSlot& slot : o.outputs) {
      for (ValueId v : slot.args) {
        if (!first) s += ",";
        first = false;
        result(v, &s);
      }
    }
    s += "]";
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
  out.append(",\"args\":[");
  if (b) {
    for (size_t k = 0; k < b->args.size(); ++k) {
      if (k) out.push_back(',');
      result(b->args[k], &out);
    }
  }
  out.append("],\"ops\":[");
  if (b) {
    for (size_t k = 0; k < b->ops.size(); ++k) {
      if (k) out.push_back(',');
      op(b->ops[k], &out);
    }
  }
  out.append("]}]}]}}");
  return out;
}

}  // namespace

Program parse_pir_json(const uint8_t* data, size_t size, const std::string& file,
                       const LoadLimits& limits) {
  Program prog;
  prog.format = ProgramFormat::Pir;
  Reader reader(file, limits, &prog);
  reader.run(data, size);
  return prog;
}

std::string write_pir_json(const Program& p) {
  Writer w(p);
  return w.run();
}

}  // namespace pif
