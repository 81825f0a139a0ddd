#include "graph/op_def.h"

namespace pif {

std::string Node::where() const {
  return "op " + std::to_string(source_index) + " (" + (source ? source->type : std::string("?")) +
         ")";
}

OpDef make_op_def(std::string name, std::vector<std::string> types,
                  std::vector<std::string> legacy_inputs, std::vector<std::string> legacy_outputs,
                  PrepareFn prepare, InferFn infer, RunFn run) {
  OpDef d;
  d.name = std::move(name);
  d.types = std::move(types);
  d.legacy_inputs = std::move(legacy_inputs);
  d.legacy_outputs = std::move(legacy_outputs);
  d.prepare = prepare;
  d.infer = infer;
  d.run = run;
  return d;
}

void op_fail(const std::string& msg) { throw OpError(code::kFormat, msg); }

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

void set_output(RTensor* t, DType dtype, std::vector<int64_t> dims) {
  if (!t) return;
  t->dtype = dtype;
  t->dims = std::move(dims);
}

namespace {
[[noreturn]] void bad_attr(const std::string& name, const char* want) {
  op_fail("attribute '" + name + "' is not " + want);
}
}  // namespace

int64_t AttrReader::i(const std::string& name, int64_t def) const {
  const Attr* a = op_.attr(name);
  if (!a) return def;
  int64_t v;
  if (a->as_int(&v)) return v;
  double d;
  if (a->as_double(&d)) return static_cast<int64_t>(d);
  bad_attr(name, "an integer");
}

double AttrReader::f(const std::string& name, double def) const {
  const Attr* a = op_.attr(name);
  if (!a) return def;
  double v;
  if (a->as_double(&v)) return v;
  bad_attr(name, "a number");
}

bool AttrReader::b(const std::string& name, bool def) const {
  const Attr* a = op_.attr(name);
  if (!a) return def;
  if (a->kind == Attr::Kind::Bool) return a->b;
  int64_t v;
  if (a->as_int(&v)) return v != 0;
  bad_attr(name, "a boolean");
}

std::string AttrReader::s(const std::string& name, const std::string& def) const {
  const Attr* a = op_.attr(name);
  if (!a) return def;
  switch (a->kind) {
    case Attr::Kind::String:
    case Attr::Kind::DType:
    case Attr::Kind::Layout:
    case Attr::Kind::TensorName: return a->s;
    default: bad_attr(name, "a string");
  }
}

std::vector<int64_t> AttrReader::ints(const std::string& name,
                                      const std::vector<int64_t>& def) const {
  const Attr* a = op_.attr(name);
  if (!a) return def;
  std::vector<int64_t> v;
  if (a->as_ints(&v)) return v;
  int64_t one;
  if (a->as_int(&one)) return {one};
  bad_attr(name, "a list of integers");
}

std::vector<double> AttrReader::floats(const std::string& name,
                                       const std::vector<double>& def) const {
  const Attr* a = op_.attr(name);
  if (!a) return def;
  std::vector<double> v;
  if (a->as_doubles(&v)) return v;
  bad_attr(name, "a list of numbers");
}

const Tensor* PrepareCtx::constant(size_t slot, size_t k) const {
  if (slot >= node.inputs.size() || k >= node.inputs[slot].size()) return nullptr;
  ValueId id = node.inputs[slot][k];
  if (id == kNoValue) return nullptr;
  const Value& v = program.values[id];
  if (v.constant) return v.constant.get();
  if (v.param_index >= 0 && program.params[v.param_index].loaded) {
    return &program.params[v.param_index].tensor;
  }
  return nullptr;
}

}  // namespace pif
