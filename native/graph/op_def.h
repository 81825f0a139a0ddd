// The op interface (graph layer) shared by the lowering pass, the executor and every
// kernel backend. An op is described once (OpDef): which Paddle op types it
// handles, how their slots map to canonical inputs/outputs, how attributes
// are parsed (prepare, at load), how output shapes follow from inputs
// (infer, at run time with concrete dims), and the reference kernel (run).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "graph/ir.h"

namespace pif {

// A tensor during execution: dims are concrete, data is host memory.
struct RTensor {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  void* data = nullptr;
  uint64_t nbytes = 0;
  std::shared_ptr<void> owner;  // keeps the buffer alive (shared by aliases)
  // Set when the data is not plain row-major but a backend layout (the oneDNN
  // backend stores its dnnl::memory::desc here, e.g. nChw8c). Only kernels
  // marked layout_aware ever see such tensors; nbytes may exceed numel *
  // element size (padded channel blocks).
  std::shared_ptr<const void> layout;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
  template <typename T>
  T* ptr() {
    return static_cast<T*>(data);
  }
  template <typename T>
  const T* ptr() const {
    return static_cast<const T*>(data);
  }
};

// An op after lowering: canonical name, inputs grouped by canonical slot
// (most slots hold 0 or 1 value; variadic ones such as concat's hold many),
// outputs likewise, and the source op for attributes and error messages.
struct Node {
  const struct OpDef* def = nullptr;
  const Op* source = nullptr;
  size_t source_index = 0;  // index of the op in block 0
  std::vector<std::vector<ValueId>> inputs;
  std::vector<std::vector<ValueId>> outputs;
  std::shared_ptr<const void> state;  // parsed attributes, from prepare()

  template <typename T>
  const T& attrs() const {
    return *static_cast<const T*>(state.get());
  }
  std::string where() const;  // "op 12 (pd_op.conv2d)"
};

// Thrown by prepare/infer/run for problems with an op or its inputs. The
// executor adds the model file and op location.
struct OpError : std::runtime_error {
  OpError(std::string code, const std::string& msg)
      : std::runtime_error(msg), code(std::move(code)) {}
  std::string code;
};

// Reads attributes of a source op with defaults and type checks.
class AttrReader {
 public:
  explicit AttrReader(const Op& op) : op_(op) {}
  bool has(const std::string& name) const { return op_.attr(name) != nullptr; }
  int64_t i(const std::string& name, int64_t def) const;
  double f(const std::string& name, double def) const;
  bool b(const std::string& name, bool def) const;
  std::string s(const std::string& name, const std::string& def) const;
  std::vector<int64_t> ints(const std::string& name, const std::vector<int64_t>& def) const;
  std::vector<double> floats(const std::string& name, const std::vector<double>& def) const;

 private:
  const Op& op_;
};

// What prepare() sees: the node, the program (for constant inputs such as
// PIR's folded kernel_size / axis operands) and an attribute reader.
struct PrepareCtx {
  const Program& program;
  const Node& node;
  AttrReader attr;
  // Constant data of canonical input `slot` (k-th value), or null if the
  // value is not a folded constant / parameter.
  const Tensor* constant(size_t slot, size_t k = 0) const;
  bool has_input(size_t slot) const {
    return slot < node.inputs.size() && !node.inputs[slot].empty();
  }
};

// Run-time context: inputs are computed tensors (null for an absent
// optional slot); infer() fills out dtypes/dims; run() fills data.
struct RunCtx {
  const Node& node;
  std::vector<std::vector<const RTensor*>> in;
  std::vector<std::vector<RTensor*>> out;
  int threads = 1;

  const RTensor* input(size_t slot, size_t k = 0) const {
    return slot < in.size() && k < in[slot].size() ? in[slot][k] : nullptr;
  }
  RTensor* output(size_t slot, size_t k = 0) const {
    return slot < out.size() && k < out[slot].size() ? out[slot][k] : nullptr;
  }
};

using PrepareFn = std::shared_ptr<const void> (*)(const PrepareCtx&);
using InferFn = void (*)(RunCtx&);
using RunFn = void (*)(RunCtx&);

struct OpDef {
  std::string name;                // canonical name
  std::vector<std::string> types;  // Paddle op types handled (legacy and pd_op.*)
  // Legacy slot names in canonical order. A name ending in '*' takes all
  // arguments of the slot (variadic); "" means the slot does not exist in the
  // legacy op. PIR operands map positionally unless pir_inputs is set.
  std::vector<std::string> legacy_inputs;
  std::vector<std::string> legacy_outputs;
  // PIR operand index for each canonical input slot (-1 = absent); empty =
  // identity. A PIR operand whose value is a builtin.combine result expands
  // into its elements.
  std::vector<int> pir_inputs;
  PrepareFn prepare = nullptr;
  InferFn infer = nullptr;
  RunFn run = nullptr;
  // Output 0 may share input 0's buffer (reshape-like ops: only dims change).
  bool alias_input0 = false;
  // run() accepts inputs in a backend layout (RTensor::layout set); other
  // kernels get plain row-major copies from the executor.
  bool layout_aware = false;
};

// An OpDef with the common fields set (pir_inputs / alias_input0 stay default).
OpDef make_op_def(std::string name, std::vector<std::string> types,
                  std::vector<std::string> legacy_inputs, std::vector<std::string> legacy_outputs,
                  PrepareFn prepare, InferFn infer, RunFn run);

// Helpers for kernels.
std::string shape_str(const std::vector<int64_t>& dims);
void set_output(RTensor* t, DType dtype, std::vector<int64_t> dims);
[[noreturn]] void op_fail(const std::string& msg);

}  // namespace pif
