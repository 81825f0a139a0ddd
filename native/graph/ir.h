// The graph IR: one data model for legacy ProgramDesc programs and PIR
// programs. Readers in format/ fill it, writers in format/ serialise it, and
// passes/runtime consume it. It keeps everything a writer needs to reproduce
// an equivalent file (slot names, attribute kinds, PIR value ids), so that
// read -> write -> read yields the same IR (checked by `dump_program`).
//
// Conventions
// - Values live in Program::values and are referred to by ValueId (index).
// - Legacy ops keep their named slots (`Input`, `Filter`, ...). PIR ops have
//   one unnamed slot per operand/result holding exactly one value, kNoValue
//   for PIR's null operand (`{"%":0}`).
// - Op type names are Paddle's own: legacy names for legacy files, full
//   dialect names (`pd_op.conv2d`, `builtin.parameter`) for PIR.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/dtype.h"

namespace pif {

using ValueId = int32_t;
constexpr ValueId kNoValue = -1;

// Static type of a value.
struct ValueType {
  enum class Kind : uint8_t {
    DenseTensor,  // dtype + dims (-1 = unknown)
    Vector,       // PIR t_vec (result of builtin.combine): `elements`
    Scalar,       // a bare PIR builtin element type, e.g. {"#":"0.t_f32"}
    Null,         // PIR {"#":"NULL"}, or a legacy var without tensor desc
    Other,        // anything else: `raw` holds the type's JSON text verbatim
  };
  Kind kind = Kind::Null;
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  std::string layout;                      // PIR dtensor layout ("NCHW")
  std::vector<std::vector<uint64_t>> lod;  // PIR dtensor lod
  uint64_t offset = 0;                     // PIR dtensor offset
  std::vector<ValueType> elements;         // Vector
  std::string raw;                         // Other: JSON text

  bool operator==(const ValueType& o) const;
  bool operator!=(const ValueType& o) const { return !(*this == o); }
};

// A legacy `Scalar` attribute payload (framework.proto, newer files).
struct ScalarAttr {
  int32_t type = 0;  // 1 BOOLEAN, 2 LONG, 3 FLOAT64, 4 COMPLEX128
  bool b = false;
  int64_t i = 0;
  double r = 0;
  double c_real = 0, c_imag = 0;
  bool has_complex = false;
  bool operator==(const ScalarAttr& o) const;
};

struct Attr {
  enum class Kind : uint8_t {
    // Legacy AttrType values and their PIR equivalents.
    Bool,      // b          | 0.a_bool
    Int32,     // i          | 0.a_i32
    Int64,     // i          | 0.a_i64
    Float32,   // f          | 0.a_f32
    Float64,   // f          | 0.a_f64
    String,    // s          | 0.a_str
    Bools,     // ints (0/1)
    Int32s,    // ints
    Int64s,    // ints       | 1.a_intarray
    Float32s,  // floats
    Float64s,  // floats
    Strings,   // strs
    Block,     // i = block index
    Blocks,    // ints = block indices
    Var,       // s = variable name
    Vars,      // strs = variable names
    Scalar,    // scalars[0]
    Scalars,   // scalars
    // PIR-only kinds.
    Index,       // i          | 0.a_index
    TensorName,  // s          | 0.a_tensorname
    Array,       // items      | 0.a_array (heterogeneous, may be empty)
    DType,       // s          | 1.a_dtype ("float32", ...)
    Place,       // ints = [allocation type, device id], s = device type | 1.a_place
    Layout,      // s          | 1.a_layout
    Type,        // type       | 0.a_type
    Complex64,   // floats = [re, im] | 0.a_c64
    Complex128,  // floats = [re, im] | 0.a_c128
    Raw,         // s = full JSON text of an attribute we do not model
  };
  Kind kind = Kind::Bool;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strs;
  std::vector<Attr> items;
  std::vector<ScalarAttr> scalars;
  std::shared_ptr<ValueType> type;

  bool operator==(const Attr& o) const;
  bool operator!=(const Attr& o) const { return !(*this == o); }

  // Lenient accessors for consumers (passes, kernels): any integer kind (or an
  // Array of integers) reads as ints; any float kind reads as double.
  bool is_int() const;
  bool is_float() const;
  bool as_int(int64_t* out) const;
  bool as_double(double* out) const;
  bool as_ints(std::vector<int64_t>* out) const;
  bool as_doubles(std::vector<double>* out) const;
};

struct NamedAttr {
  std::string name;
  Attr value;
  bool operator==(const NamedAttr& o) const { return name == o.name && value == o.value; }
};

// A tensor held by the IR: a parameter bound from a params file, or a
// constant produced by constant folding. Bytes are little-endian, row-major.
struct Tensor {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  std::vector<std::vector<uint64_t>> lod;         // legacy LoD (empty for weights)
  std::shared_ptr<std::vector<uint8_t>> storage;  // shared arena
  uint64_t offset = 0;                            // into storage
  uint64_t nbytes = 0;

  const uint8_t* data() const { return storage ? storage->data() + offset : nullptr; }
  int64_t numel() const;
};

struct Value {
  std::string name;    // legacy variable name; PIR: data/parameter name or ""
  int64_t pir_id = 0;  // PIR value id as read (0 for legacy values)
  ValueType type;
  // Legacy VarDesc fields.
  int32_t var_type = 7;    // VarType.Type of the variable (7 = LOD_TENSOR)
  int32_t desc_field = 0;  // which VarType field held the tensor desc: 2, 3, 4 or 0
  int32_t lod_level = 0;
  bool persistable = false;
  bool need_check_feed = false;
  bool is_parameter = false;
  bool stop_gradient = false;
  std::vector<NamedAttr> var_attrs;
  // proto2 presence of optional VarDesc fields, kept so that a rewrite
  // reproduces Paddle's bytes (Paddle writes some defaults, omits others).
  enum PresentBits : uint8_t {
    kHasPersistable = 1,
    kHasNeedCheckFeed = 2,
    kHasIsParameter = 4,
    kHasStopGradient = 8,
    kHasLodLevel = 16,
  };
  uint8_t present = 0;
  int32_t block = 0;  // owning block
  // Binding.
  int32_t param_index = -1;                // index into Program::params
  std::shared_ptr<const Tensor> constant;  // set by constant folding
  std::vector<ValueId> elements;           // folded builtin.combine tuple
};

struct OpSlot {
  std::string name;
  std::vector<ValueId> args;
  bool operator==(const OpSlot& o) const { return name == o.name && args == o.args; }
};

struct Op {
  std::string type;
  std::vector<OpSlot> inputs;
  std::vector<OpSlot> outputs;
  std::vector<NamedAttr> attrs;
  // PIR only: "OA" result attributes and keys we carry through unmodelled
  // ("DA", "QA", "regions", ...), as (key, raw JSON text) in file order.
  std::vector<NamedAttr> result_attrs;
  std::vector<std::pair<std::string, std::string>> extra;
  bool is_target = false;  // legacy OpDesc.is_target

  const Attr* attr(const std::string& name) const;
  // First argument of the named slot (legacy) or the n-th operand (PIR).
  ValueId input(const std::string& slot, size_t n = 0) const;
  ValueId output(const std::string& slot, size_t n = 0) const;
};

struct Block {
  int32_t idx = 0;
  int32_t parent_idx = -1;
  int32_t forward_block_idx = -1;
  std::vector<ValueId> vars;  // legacy VarDescs of this block, in file order
  std::vector<ValueId> args;  // PIR block arguments
  std::vector<Op> ops;
  std::string pir_name;  // PIR block "#" ("block_0")
};

// Graph inputs and outputs, ordered by column.
struct IoBinding {
  std::string name;  // feed target / PIR data name; fetch source var / PIR fetch name
  ValueId value = kNoValue;
  int32_t col = 0;
};

struct Parameter {
  std::string name;
  ValueId value = kNoValue;
  Tensor tensor;  // declared dtype/dims; storage set once loaded
  bool loaded = false;
};

enum class ProgramFormat : uint8_t { Legacy, Pir };

struct Program {
  ProgramFormat format = ProgramFormat::Legacy;
  // Legacy: ProgramDesc.version (major*1e6+minor*1e3+patch). PIR: base_code.version.
  int64_t version = 0;
  bool has_version = false;
  bool pir_trainable = true;
  std::string pir_region_name;                               // "region_0"
  std::vector<std::pair<std::string, int32_t>> op_versions;  // legacy op_version_map
  std::vector<Value> values;
  std::vector<Block> blocks;
  std::vector<Parameter> params;  // in params-file order (sorted by name)
  std::vector<IoBinding> inputs;
  std::vector<IoBinding> outputs;

  ValueId add_value(Value v) {
    values.push_back(std::move(v));
    return static_cast<ValueId>(values.size() - 1);
  }
  size_t op_count() const;  // all blocks
};

// Canonical text form of a program (and parameter digests), used to compare
// IRs for equality in tests and by `inspect --ir`. Value ids are printed by
// their name / PIR id, so two IRs of the same program compare equal even if
// their internal ValueId numbering differs.
std::string dump_program(const Program& p, bool with_param_digest = true);

// The program as JSON, for tests that compare graphs op by op: format,
// version, inputs/outputs, parameters (name, dtype, shape) and per block the
// ops with their slots (argument names; PIR values as "%<id>") and attributes
// ({name, kind, value}: booleans, numbers, strings and their lists as JSON;
// other kinds as the text dump_program prints).
std::string program_json(const Program& p);

}  // namespace pif
