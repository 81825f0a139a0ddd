#pragma once
// Private to native/format/program_desc*.cc: the legacy attribute type codes the reader and the
// writer share, and their attribute kinds.

#include <cstdint>

#include "graph/ir.h"

namespace pif {
namespace program_desc {

// Legacy AttrType enum.
enum LegacyAttrType : int32_t {
  kInt = 0,
  kFloat = 1,
  kString = 2,
  kInts = 3,
  kFloats = 4,
  kStrings = 5,
  kBoolean = 6,
  kBooleans = 7,
  kBlock = 8,
  kLong = 9,
  kBlocks = 10,
  kLongs = 11,
  kFloat64s = 12,
  kVar = 13,
  kVars = 14,
  kFloat64 = 15,
  kScalar = 16,
  kScalars = 17,
};

// Each legacy AttrType and the attribute kind it reads as (and is written from).
struct LegacyAttrKind {
  LegacyAttrType type;
  Attr::Kind kind;
};
inline constexpr LegacyAttrKind kLegacyAttrKinds[] = {
    {kInt, Attr::Kind::Int32},         {kFloat, Attr::Kind::Float32},
    {kString, Attr::Kind::String},     {kInts, Attr::Kind::Int32s},
    {kFloats, Attr::Kind::Float32s},   {kStrings, Attr::Kind::Strings},
    {kBoolean, Attr::Kind::Bool},      {kBooleans, Attr::Kind::Bools},
    {kBlock, Attr::Kind::Block},       {kLong, Attr::Kind::Int64},
    {kBlocks, Attr::Kind::Blocks},     {kLongs, Attr::Kind::Int64s},
    {kFloat64s, Attr::Kind::Float64s}, {kVar, Attr::Kind::Var},
    {kVars, Attr::Kind::Vars},         {kFloat64, Attr::Kind::Float64},
    {kScalar, Attr::Kind::Scalar},     {kScalars, Attr::Kind::Scalars},
};

// The kind of AttrType `type`; false for an unknown type.
inline bool legacy_attr_kind(int32_t type, Attr::Kind* kind) {
  for (const LegacyAttrKind& e : kLegacyAttrKinds) {
    if (e.type == type) {
      *kind = e.kind;
      return true;
    }
  }
  return false;
}

// The AttrType of attribute kind `kind`; false for a kind legacy files cannot hold.
inline bool legacy_attr_type(Attr::Kind kind, LegacyAttrType* type) {
  for (const LegacyAttrKind& e : kLegacyAttrKinds) {
    if (e.kind == kind) {
      *type = e.type;
      return true;
    }
  }
  return false;
}

}  // namespace program_desc
}  // namespace pif
