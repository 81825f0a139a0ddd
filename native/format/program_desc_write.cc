// Legacy ProgramDesc writer: a legacy Program back to ProgramDesc bytes, fields in the order and
// with the defaults Paddle writes.
#include <algorithm>
#include <map>

#include "format/program_desc.h"
#include "format/program_desc_internal.h"
#include "format/wire.h"

namespace pif {
namespace program_desc {

using wire::Writer;

namespace {

void write_attr(Writer& w, const NamedAttr& na) {
  const Attr& a = na.value;
  using K = Attr::Kind;
  w.bytes_field(1, na.name);
  LegacyAttrType type;
  if (!legacy_attr_type(a.kind, &type)) {
    throw ModelError(code::kUnsupported, "", -1, "attribute '" + na.name + "'",
                     "attribute kind has no legacy ProgramDesc encoding");
  }
  w.int_field(2, type);
  switch (a.kind) {
    case K::Int32: w.int_field(3, static_cast<int32_t>(a.i)); break;
    case K::Float32: w.float_field(4, static_cast<float>(a.f)); break;
    case K::String: w.bytes_field(5, a.s); break;
    case K::Int32s:
      for (int64_t v : a.ints) w.int_field(6, static_cast<int32_t>(v));
      break;
    case K::Float32s:
      for (double v : a.floats) w.float_field(7, static_cast<float>(v));
      break;
    case K::Strings:
      for (const auto& s : a.strs) w.bytes_field(8, s);
      break;
    case K::Bool: w.bool_field(10, a.b); break;
    case K::Bools:
      for (int64_t v : a.ints) w.bool_field(11, v != 0);
      break;
    case K::Block: w.int_field(12, static_cast<int32_t>(a.i)); break;
    case K::Int64: w.int_field(13, a.i); break;
    case K::Blocks:
      for (int64_t v : a.ints) w.int_field(14, static_cast<int32_t>(v));
      break;
    case K::Int64s:
      for (int64_t v : a.ints) w.int_field(15, v);
      break;
    case K::Float64s:
      for (double v : a.floats) w.double_field(16, v);
      break;
    case K::Var: w.bytes_field(17, a.s); break;
    case K::Vars:
      for (const auto& s : a.strs) w.bytes_field(18, s);
      break;
    case K::Float64: w.double_field(19, a.f); break;
    case K::Scalar:
    case K::Scalars: {
      for (const ScalarAttr& s : a.scalars) {
        std::string body;
        Writer sw(&body);
        sw.int_field(1, s.type);
        sw.bool_field(2, s.b);
        sw.int_field(3, s.i);
        sw.double_field(4, s.r);
        if (s.has_complex) {
          std::string cb;
          Writer cw(&cb);
          cw.double_field(1, s.c_real);
          cw.double_field(2, s.c_imag);
          sw.bytes_field(5, cb);
        }
        w.bytes_field(a.kind == K::Scalar ? 20 : 21, body);
        if (a.kind == K::Scalar) break;
      }
      break;
    }
    default: break;  // legacy_attr_type refused it above
  }
}

std::string var_body(const Program& p, const Value& v) {
  std::string body;
  Writer w(&body);
  w.bytes_field(1, v.name);
  std::string vt;
  Writer tw(&vt);
  tw.int_field(1, v.var_type);
  if (v.desc_field != 0) {
    std::string td;
    Writer dw(&td);
    dw.int_field(1, v.type.dtype == DType::Undefined ? -1 : dtype_to_legacy(v.type.dtype));
    for (int64_t d : v.type.dims) dw.int_field(2, d);
    if (v.desc_field == 2) {
      tw.bytes_field(2, td);
    } else {
      std::string ld;
      Writer lw(&ld);
      lw.bytes_field(1, td);
      if (v.lod_level != 0 || (v.present & Value::kHasLodLevel)) lw.int_field(2, v.lod_level);
      tw.bytes_field(static_cast<uint32_t>(v.desc_field), ld);
    }
  }
  w.bytes_field(2, vt);
  // Optional fields: written when set or when the source file had them.
  if (v.persistable || (v.present & Value::kHasPersistable)) w.bool_field(3, v.persistable);
  if (v.need_check_feed || (v.present & Value::kHasNeedCheckFeed))
    w.bool_field(4, v.need_check_feed);
  if (v.is_parameter || (v.present & Value::kHasIsParameter)) w.bool_field(5, v.is_parameter);
  if (v.stop_gradient || (v.present & Value::kHasStopGradient)) w.bool_field(6, v.stop_gradient);
  for (const NamedAttr& a : v.var_attrs) {
    std::string ab;
    Writer aw(&ab);
    write_attr(aw, a);
    w.bytes_field(7, ab);
  }
  (void)p;
  return body;
}

std::string slot_body(const Program& p, const OpSlot& s) {
  std::string body;
  Writer w(&body);
  w.bytes_field(1, s.name);
  for (ValueId id : s.args) w.bytes_field(2, p.values[id].name);
  return body;
}

}  // namespace

std::string write(const Program& p) {
  if (p.format != ProgramFormat::Legacy) {
    throw ModelError(code::kUnsupported, "", -1, "",
                     "write_program_desc needs a legacy program (PIR to legacy conversion is "
                     "not implemented)");
  }
  std::string out;
  Writer w(&out);
  for (const Block& b : p.blocks) {
    std::string bb;
    Writer bw(&bb);
    bw.int_field(1, b.idx);
    bw.int_field(2, b.parent_idx);
    for (ValueId id : b.vars) bw.bytes_field(3, var_body(p, p.values[id]));
    for (const Op& op : b.ops) {
      std::string ob;
      Writer ow(&ob);
      for (const OpSlot& s : op.inputs) ow.bytes_field(1, slot_body(p, s));
      for (const OpSlot& s : op.outputs) ow.bytes_field(2, slot_body(p, s));
      ow.bytes_field(3, op.type);
      for (const NamedAttr& a : op.attrs) {
        std::string ab;
        Writer aw(&ab);
        write_attr(aw, a);
        ow.bytes_field(4, ab);
      }
      if (op.is_target) ow.bool_field(5, true);
      bw.bytes_field(4, ob);
    }
    if (b.forward_block_idx != -1) bw.int_field(5, b.forward_block_idx);
    w.bytes_field(1, bb);
  }
  if (p.has_version) {
    std::string vb;
    Writer vw(&vb);
    vw.int_field(1, p.version);
    w.bytes_field(4, vb);
  }
  if (!p.op_versions.empty()) {
    std::string mb;
    Writer mw(&mb);
    for (const auto& kv : p.op_versions) {
      std::string pb;
      Writer pw(&pb);
      pw.bytes_field(1, kv.first);
      std::string ov;
      Writer vw(&ov);
      vw.int_field(1, kv.second);
      pw.bytes_field(2, ov);
      mw.bytes_field(1, pb);
    }
    w.bytes_field(5, mb);
  }
  return out;
}

}  // namespace program_desc

std::string write_program_desc(const Program& p) { return program_desc::write(p); }

}  // namespace pif
