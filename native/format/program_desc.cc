// Legacy ProgramDesc reader (see program_desc.h): blocks, vars, ops and attributes from the proto2
// wire format, with the load limits, and the params the program declares.
#include "format/program_desc.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "format/program_desc_internal.h"
#include "format/wire.h"

namespace pif {
namespace program_desc {

namespace {

using wire::Reader;
using wire::Writer;

// VarType.Type values that mark non-tensor variables excluded from params.
constexpr int32_t kFeedMinibatch = 9;
constexpr int32_t kFetchList = 10;
constexpr int32_t kRaw = 17;

struct ParsedTensorDesc {
  int64_t data_type = -1;
  std::vector<int64_t> dims;
};

struct Ctx {
  const std::string* file;
  const LoadLimits* limits;
  size_t total_ops = 0;
  size_t total_values = 0;
};

int64_t read_i64(Reader& r, uint32_t wt) { return r.int64_field(wt); }
int64_t read_i32(Reader& r, uint32_t wt) { return r.int32_field(wt); }
double read_f32(Reader& r, uint32_t wt) { return r.float_field(wt); }
double read_f64(Reader& r, uint32_t wt) { return r.double_field(wt); }
int64_t read_bool(Reader& r, uint32_t wt) { return r.bool_field(wt) ? 1 : 0; }

ParsedTensorDesc parse_tensor_desc(Reader r, Ctx& c) {
  ParsedTensorDesc d;
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    if (f == 1) {
      d.data_type = r.int32_field(wt);
    } else if (f == 2) {
      r.repeated(wt, wire::kVarint, &d.dims, read_i64);
      if (d.dims.size() > c.limits->max_rank) r.fail("tensor rank exceeds the limit");
    } else {
      r.skip(wt);
    }
  }
  return d;
}

ScalarAttr parse_scalar(Reader r) {
  ScalarAttr s;
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    switch (f) {
      case 1: s.type = r.int32_field(wt); break;
      case 2: s.b = r.bool_field(wt); break;
      case 3: s.i = r.int64_field(wt); break;
      case 4: s.r = r.double_field(wt); break;
      case 5: {
        r.expect(wt, wire::kLen);
        Reader c = r.sub();
        s.has_complex = true;
        uint32_t cf, cwt;
        while (c.next(&cf, &cwt)) {
          if (cf == 1)
            s.c_real = c.double_field(cwt);
          else if (cf == 2)
            s.c_imag = c.double_field(cwt);
          else
            c.skip(cwt);
        }
        break;
      }
      default: r.skip(wt);
    }
  }
  return s;
}

// OpDesc.Attr -> NamedAttr. All payload fields are collected, then the one
// that matches the declared type is kept.
NamedAttr parse_op_attr(Reader r, Ctx& c, const std::string& where) {
  NamedAttr na;
  int32_t type = -1;
  bool has_name = false, has_type = false;
  int64_t i = 0, l = 0, block_idx = 0;
  double fl = 0, f64 = 0;
  bool b = false;
  std::string s, var_name;
  std::vector<int64_t> ints, bools, blocks, longs;
  std::vector<double> floats, float64s;
  std::vector<std::string> strings, vars;
  std::vector<ScalarAttr> scalars;
  ScalarAttr scalar;
  uint64_t start = r.offset();
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    switch (f) {
      case 1:
        na.name = r.string_field(wt);
        has_name = true;
        break;
      case 2:
        type = r.int32_field(wt);
        has_type = true;
        break;
      case 3: i = r.int32_field(wt); break;
      case 4: fl = r.float_field(wt); break;
      case 5: s = r.string_field(wt); break;
      case 6: r.repeated(wt, wire::kVarint, &ints, read_i32); break;
      case 7: r.repeated(wt, wire::kFixed32, &floats, read_f32); break;
      case 8: strings.push_back(r.string_field(wt)); break;
      case 10: b = r.bool_field(wt); break;
      case 11: r.repeated(wt, wire::kVarint, &bools, read_bool); break;
      case 12: block_idx = r.int32_field(wt); break;
      case 13: l = r.int64_field(wt); break;
      case 14: r.repeated(wt, wire::kVarint, &blocks, read_i32); break;
      case 15: r.repeated(wt, wire::kVarint, &longs, read_i64); break;
      case 16: r.repeated(wt, wire::kFixed64, &float64s, read_f64); break;
      case 17: var_name = r.string_field(wt); break;
      case 18: vars.push_back(r.string_field(wt)); break;
      case 19: f64 = r.double_field(wt); break;
      case 20:
        r.expect(wt, wire::kLen);
        scalar = parse_scalar(r.sub());
        break;
      case 21:
        r.expect(wt, wire::kLen);
        scalars.push_back(parse_scalar(r.sub()));
        break;
      default: r.skip(wt);
    }
    if (ints.size() + bools.size() + blocks.size() + longs.size() + floats.size() +
            float64s.size() + strings.size() + vars.size() + scalars.size() >
        (c.limits->max_tensor_bytes / 4)) {
      r.fail("attribute has too many elements");
    }
  }
  if (!has_name || !has_type) {
    throw ModelError(code::kFormat, *c.file, static_cast<int64_t>(start), where,
                     "attribute without required name/type");
  }
  Attr& a = na.value;
  if (!legacy_attr_kind(type, &a.kind)) {
    throw ModelError(code::kUnsupported, *c.file, static_cast<int64_t>(start), where,
                     "attribute '" + na.name + "' has unknown AttrType " + std::to_string(type));
  }
  switch (type) {
    case kInt: a.i = i; break;
    case kFloat: a.f = fl; break;
    case kString: a.s = std::move(s); break;
    case kInts: a.ints = std::move(ints); break;
    case kFloats: a.floats = std::move(floats); break;
    case kStrings: a.strs = std::move(strings); break;
    case kBoolean: a.b = b; break;
    case kBooleans: a.ints = std::move(bools); break;
    case kBlock: a.i = block_idx; break;
    case kLong: a.i = l; break;
    case kBlocks: a.ints = std::move(blocks); break;
    case kLongs: a.ints = std::move(longs); break;
    case kFloat64s: a.floats = std::move(float64s); break;
    case kVar: a.s = std::move(var_name); break;
    case kVars: a.strs = std::move(vars); break;
    case kFloat64: a.f = f64; break;
    case kScalar: a.scalars = {scalar}; break;
    case kScalars: a.scalars = std::move(scalars); break;
  }
  return na;
}

struct ParsedSlot {
  std::string name;
  std::vector<std::string> args;
};

struct ParsedOp {
  std::string type;
  std::vector<ParsedSlot> inputs, outputs;
  std::vector<NamedAttr> attrs;
  bool is_target = false;
  uint64_t offset = 0;
};

ParsedSlot parse_slot(Reader r) {
  ParsedSlot s;
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    if (f == 1)
      s.name = r.string_field(wt);
    else if (f == 2)
      s.args.push_back(r.string_field(wt));
    else
      r.skip(wt);
  }
  return s;
}

ParsedOp parse_op(Reader r, Ctx& c, size_t op_index) {
  ParsedOp op;
  op.offset = r.offset();
  std::string where = "op " + std::to_string(op_index);
  bool has_type = false;
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    switch (f) {
      case 1:
        r.expect(wt, wire::kLen);
        op.inputs.push_back(parse_slot(r.sub()));
        break;
      case 2:
        r.expect(wt, wire::kLen);
        op.outputs.push_back(parse_slot(r.sub()));
        break;
      case 3:
        op.type = r.string_field(wt);
        has_type = true;
        break;
      case 4:
        r.expect(wt, wire::kLen);
        op.attrs.push_back(parse_op_attr(r.sub(), c, where));
        break;
      case 5: op.is_target = r.bool_field(wt); break;
      default: r.skip(wt);
    }
  }
  if (!has_type || op.type.empty()) {
    throw ModelError(code::kFormat, *c.file, static_cast<int64_t>(op.offset), where,
                     "op without a type");
  }
  return op;
}

Value parse_var(Reader r, Ctx& c, int32_t block) {
  Value v;
  v.block = block;
  uint64_t start = r.offset();
  bool has_name = false;
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    switch (f) {
      case 1:
        v.name = r.string_field(wt);
        has_name = true;
        break;
      case 2: {
        r.expect(wt, wire::kLen);
        Reader t = r.sub();
        uint32_t tf, twt;
        while (t.next(&tf, &twt)) {
          if (tf == 1) {
            v.var_type = t.int32_field(twt);
          } else if (tf == 2 || tf == 3 || tf == 4) {
            t.expect(twt, wire::kLen);
            ParsedTensorDesc d;
            if (tf == 2) {
              d = parse_tensor_desc(t.sub(), c);
            } else {
              Reader ld = t.sub();
              uint32_t lf, lwt;
              while (ld.next(&lf, &lwt)) {
                if (lf == 1) {
                  ld.expect(lwt, wire::kLen);
                  d = parse_tensor_desc(ld.sub(), c);
                } else if (lf == 2) {
                  v.lod_level = ld.int32_field(lwt);
                  v.present |= Value::kHasLodLevel;
                } else {
                  ld.skip(lwt);
                }
              }
            }
            v.desc_field = static_cast<int32_t>(tf);
            v.type.kind = ValueType::Kind::DenseTensor;
            DType dt = DType::Undefined;
            if (d.data_type >= 0 && !dtype_from_legacy(d.data_type, &dt)) {
              t.fail("variable '" + v.name + "' has unknown data type " +
                     std::to_string(d.data_type));
            }
            v.type.dtype = dt;
            v.type.dims = std::move(d.dims);
          } else {
            t.skip(twt);
          }
        }
        break;
      }
      case 3:
        v.persistable = r.bool_field(wt);
        v.present |= Value::kHasPersistable;
        break;
      case 4:
        v.need_check_feed = r.bool_field(wt);
        v.present |= Value::kHasNeedCheckFeed;
        break;
      case 5:
        v.is_parameter = r.bool_field(wt);
        v.present |= Value::kHasIsParameter;
        break;
      case 6:
        v.stop_gradient = r.bool_field(wt);
        v.present |= Value::kHasStopGradient;
        break;
      case 7: {
        // VarDesc.Attr {1 name, 2 type, 3 i, 4 s, 5 ints}: same numbering as
        // the op attribute for these fields, so reuse that parser.
        r.expect(wt, wire::kLen);
        v.var_attrs.push_back(parse_op_attr(r.sub(), c, "variable '" + v.name + "'"));
        break;
      }
      default: r.skip(wt);
    }
  }
  if (!has_name) {
    throw ModelError(code::kFormat, *c.file, static_cast<int64_t>(start), "",
                     "variable without a name");
  }
  return v;
}

struct ParsedBlock {
  Block block;
  std::vector<ParsedOp> ops;
  uint64_t offset = 0;
};

}  // namespace

Program parse(const uint8_t* data, size_t size, const std::string& file, const LoadLimits& limits) {
  Ctx c{&file, &limits};
  Program p;
  p.format = ProgramFormat::Legacy;
  std::vector<ParsedBlock> blocks;
  if (size == 0) throw ModelError(code::kFormat, file, 0, "", "empty program file");
  if (data[0] == '{') {
    throw ModelError(code::kFormat, file, 0, "",
                     "file is JSON (a PIR inference.json?), not a ProgramDesc protobuf");
  }
  Reader r(data, size, &file);
  uint32_t f, wt;
  while (r.next(&f, &wt)) {
    if (f == 1) {
      r.expect(wt, wire::kLen);
      if (blocks.size() >= limits.max_blocks) r.fail("too many blocks");
      ParsedBlock pb;
      pb.offset = r.offset();
      Reader br = r.sub();
      int32_t bidx = static_cast<int32_t>(blocks.size());
      uint32_t bf, bwt;
      while (br.next(&bf, &bwt)) {
        switch (bf) {
          case 1: pb.block.idx = br.int32_field(bwt); break;
          case 2: pb.block.parent_idx = br.int32_field(bwt); break;
          case 3: {
            br.expect(bwt, wire::kLen);
            if (++c.total_values > limits.max_values) br.fail("too many variables");
            Value v = parse_var(br.sub(), c, bidx);
            pb.block.vars.push_back(p.add_value(std::move(v)));
            break;
          }
          case 4: {
            br.expect(bwt, wire::kLen);
            if (++c.total_ops > limits.max_ops) br.fail("too many ops");
            pb.ops.push_back(parse_op(br.sub(), c, pb.ops.size()));
            break;
          }
          case 5: pb.block.forward_block_idx = br.int32_field(bwt); break;
          default: br.skip(bwt);
        }
      }
      blocks.push_back(std::move(pb));
    } else if (f == 4) {
      r.expect(wt, wire::kLen);
      Reader vr = r.sub();
      p.has_version = true;
      uint32_t vf, vwt;
      while (vr.next(&vf, &vwt)) {
        if (vf == 1)
          p.version = vr.int64_field(vwt);
        else
          vr.skip(vwt);
      }
    } else if (f == 5) {
      r.expect(wt, wire::kLen);
      Reader mr = r.sub();
      uint32_t mf, mwt;
      while (mr.next(&mf, &mwt)) {
        if (mf != 1) {
          mr.skip(mwt);
          continue;
        }
        mr.expect(mwt, wire::kLen);
        Reader pr = mr.sub();
        std::string name;
        int32_t version = 0;
        uint32_t pf, pwt;
        while (pr.next(&pf, &pwt)) {
          if (pf == 1) {
            name = pr.string_field(pwt);
          } else if (pf == 2) {
            pr.expect(pwt, wire::kLen);
            Reader ov = pr.sub();
            uint32_t of, owt;
            while (ov.next(&of, &owt)) {
              if (of == 1)
                version = ov.int32_field(owt);
              else
                ov.skip(owt);
            }
          } else {
            pr.skip(pwt);
          }
        }
        p.op_versions.emplace_back(std::move(name), version);
      }
    } else {
      r.skip(wt);
    }
  }
  if (blocks.empty()) throw ModelError(code::kFormat, file, 0, "", "program has no blocks");

  // Resolve names block by block; sub-blocks see their ancestors' variables.
  std::vector<std::unordered_map<std::string, ValueId>> scopes(blocks.size());
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (ValueId id : blocks[b].block.vars) {
      if (!scopes[b].emplace(p.values[id].name, id).second) {
        throw ModelError(code::kFormat, file, static_cast<int64_t>(blocks[b].offset),
                         "block " + std::to_string(b),
                         "variable '" + p.values[id].name + "' declared twice");
      }
    }
    // A sub-block's parent must precede it, which also rules out cycles.
    // Block 0's parent_idx (-1 as Paddle writes it) is never followed.
    int32_t parent = blocks[b].block.parent_idx;
    if (b > 0 && (parent < 0 || static_cast<size_t>(parent) >= b)) {
      throw ModelError(code::kFormat, file, static_cast<int64_t>(blocks[b].offset),
                       "block " + std::to_string(b),
                       "invalid parent_idx " + std::to_string(parent));
    }
  }
  auto lookup = [&](size_t b, const std::string& name) -> ValueId {
    int64_t cur = static_cast<int64_t>(b);
    size_t hops = 0;
    while (cur >= 0 && hops++ <= blocks.size()) {
      auto it = scopes[cur].find(name);
      if (it != scopes[cur].end()) return it->second;
      if (cur == 0) break;
      cur = blocks[cur].block.parent_idx;
    }
    return kNoValue;
  };

  for (size_t b = 0; b < blocks.size(); ++b) {
    ParsedBlock& pb = blocks[b];
    pb.block.ops.reserve(pb.ops.size());
    for (size_t oi = 0; oi < pb.ops.size(); ++oi) {
      ParsedOp& po = pb.ops[oi];
      Op op;
      op.type = std::move(po.type);
      op.attrs = std::move(po.attrs);
      op.is_target = po.is_target;
      auto where = [&] {
        return "block " + std::to_string(b) + " op " + std::to_string(oi) + " (" + op.type + ")";
      };
      auto convert = [&](std::vector<ParsedSlot>& in, std::vector<OpSlot>* out) {
        for (ParsedSlot& s : in) {
          OpSlot slot;
          slot.name = std::move(s.name);
          for (const std::string& a : s.args) {
            ValueId id = lookup(b, a);
            if (id == kNoValue) {
              throw ModelError(
                  code::kFormat, file, static_cast<int64_t>(po.offset), where(),
                  "slot '" + slot.name + "' refers to undeclared variable '" + a + "'");
            }
            slot.args.push_back(id);
          }
          out->push_back(std::move(slot));
        }
      };
      convert(po.inputs, &op.inputs);
      convert(po.outputs, &op.outputs);
      for (const NamedAttr& na : op.attrs) {
        auto check_block = [&](int64_t idx) {
          if (idx < 0 || static_cast<size_t>(idx) >= blocks.size()) {
            throw ModelError(
                code::kFormat, file, static_cast<int64_t>(po.offset), where(),
                "attribute '" + na.name + "' refers to missing block " + std::to_string(idx));
          }
        };
        if (na.value.kind == Attr::Kind::Block) check_block(na.value.i);
        if (na.value.kind == Attr::Kind::Blocks)
          for (int64_t idx : na.value.ints) check_block(idx);
      }
      pb.block.ops.push_back(std::move(op));
    }
    p.blocks.push_back(std::move(pb.block));
  }

  // Graph inputs/outputs from block 0's feed/fetch ops, ordered by col.
  const Block& b0 = p.blocks[0];
  for (size_t oi = 0; oi < b0.ops.size(); ++oi) {
    const Op& op = b0.ops[oi];
    bool feed = op.type == "feed", fetch = op.type == "fetch";
    if (!feed && !fetch) continue;
    int64_t col = 0;
    const Attr* a = op.attr("col");
    if (a && !a->as_int(&col)) col = 0;
    ValueId v = feed ? op.output("Out") : op.input("X");
    if (v == kNoValue) {
      throw ModelError(code::kFormat, file, -1, "op " + std::to_string(oi) + " (" + op.type + ")",
                       feed ? "feed op without an Out variable" : "fetch op without an X variable");
    }
    IoBinding io{p.values[v].name, v, static_cast<int32_t>(col)};
    (feed ? p.inputs : p.outputs).push_back(io);
  }
  auto by_col = [](const IoBinding& a, const IoBinding& b) { return a.col < b.col; };
  std::stable_sort(p.inputs.begin(), p.inputs.end(), by_col);
  std::stable_sort(p.outputs.begin(), p.outputs.end(), by_col);

  // Parameters: persistable block-0 tensors, sorted by name (params order).
  std::vector<ValueId> persist;
  for (ValueId id : b0.vars) {
    const Value& v = p.values[id];
    if (!v.persistable || v.var_type == kFeedMinibatch || v.var_type == kFetchList ||
        v.var_type == kRaw) {
      continue;
    }
    persist.push_back(id);
  }
  std::sort(persist.begin(), persist.end(),
            [&](ValueId a, ValueId b) { return p.values[a].name < p.values[b].name; });
  for (ValueId id : persist) {
    Value& v = p.values[id];
    if (v.type.kind != ValueType::Kind::DenseTensor || v.type.dtype == DType::Undefined) {
      throw ModelError(code::kFormat, file, -1, "variable '" + v.name + "'",
                       "persistable variable has no tensor type");
    }
    Parameter prm;
    prm.name = v.name;
    prm.value = id;
    prm.tensor.dtype = v.type.dtype;
    prm.tensor.dims = v.type.dims;
    v.param_index = static_cast<int32_t>(p.params.size());
    p.params.push_back(std::move(prm));
  }
  return p;
}

}  // namespace program_desc

Program parse_program_desc(const uint8_t* data, size_t size, const std::string& file,
                           const LoadLimits& limits) {
  return program_desc::parse(data, size, file, limits);
}

}  // namespace pif
