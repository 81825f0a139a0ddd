// PIR JSON reader, program: values and operands, parameter and general ops, the program frame
// (version, regions, blocks) and the checks made after parsing.
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

}  // namespace pir_json
}  // namespace pif
