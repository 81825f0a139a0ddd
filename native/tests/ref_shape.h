// The ref_shape suite's shared pieces: its random stream, a program builder, the case runner and
// the naive references. Every case builds a tiny in-memory Program (legacy form: named slots and
// attributes; PIR form: positional operands, constant operands as folded Value::constant
// tensors, builtin.combine / builtin.split plumbing) and runs it through pif::Executor; results
// are compared with plain-loop reference code (double accumulation for matmul / softmax /
// reductions). The suite's cases draw from one stream (seed 12345) in file order:
// ref_shape_1_*.cc, ref_shape_2_*.cc, ref_shape_3_*.cc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/ir.h"
#include "runtime/executor.h"
#include "tests/harness.h"
#include "tests/util.h"

namespace pif::test {

inline Rng& shape_rng() { return suite_stream("ref_shape", 12345).rng; }
inline int64_t ri(int64_t lo, int64_t hi) { return shape_rng().i(lo, hi); }
inline double rf(double lo, double hi) { return shape_rng().u(lo, hi); }
inline bool coin(double p = 0.5) { return shape_rng().b(p); }

HT rand_t(const std::vector<int64_t>& dims, DType dt = DType::Float32, double scale = 2.0);
HT ints_t(const std::vector<int64_t>& vals, DType dt = DType::Int64,
          std::vector<int64_t> dims = {-2});
std::vector<int64_t> rand_dims(int rank, int64_t lo = 1, int64_t hi = 5);
std::vector<int64_t> rand_perm(size_t r);

using Slots = std::vector<std::pair<std::string, std::vector<ValueId>>>;
using Attrs = std::vector<std::pair<std::string, Attr>>;

struct G {
  Program p;
  std::vector<NamedTensor> feeds;
  bool pir;
  int next_id = 0;

  explicit G(bool is_pir) : pir(is_pir) {
    p.format = pir ? ProgramFormat::Pir : ProgramFormat::Legacy;
    p.blocks.resize(1);
  }
  ValueId val(const std::string& hint = "v") {
    Value v;
    v.pir_id = ++next_id;
    v.name = pir ? "" : hint + std::to_string(next_id);
    return p.add_value(v);
  }
  ValueId input(const HT& t) {
    ValueId id = val("in");
    Value& v = p.values[id];
    std::string name = "in" + std::to_string(p.inputs.size());
    if (!pir) v.name = name;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = t.dt;
    v.type.dims = t.dims;
    p.inputs.push_back(IoBinding{name, id, static_cast<int32_t>(p.inputs.size())});
    feeds.push_back(to_named(name, t));
    return id;
  }
  ValueId cst(const HT& t) {
    ValueId id = val("c");
    std::vector<uint8_t> bytes = to_bytes(t);
    Value& v = p.values[id];
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = t.dt;
    v.type.dims = t.dims;
    v.constant = make_tensor(t.dt, t.dims, bytes.data(), bytes.size());
    return id;
  }
  // Declares the legacy output type (rank 0 declarations matter).
  void declare(ValueId id, DType dt, const std::vector<int64_t>& dims) {
    p.values[id].type.kind = ValueType::Kind::DenseTensor;
    p.values[id].type.dtype = dt;
    p.values[id].type.dims = dims;
  }
  ValueId combine(const std::vector<ValueId>& elems) {
    Op op;
    op.type = "builtin.combine";
    for (ValueId e : elems) op.inputs.push_back(OpSlot{"", {e}});
    ValueId r = val();
    p.values[r].elements = elems;
    p.values[r].type.kind = ValueType::Kind::Vector;
    op.outputs.push_back(OpSlot{"", {r}});
    p.blocks[0].ops.push_back(op);
    return r;
  }
  std::vector<ValueId> unpack(ValueId vec, size_t n) {
    Op op;
    op.type = "builtin.split";
    op.inputs.push_back(OpSlot{"", {vec}});
    std::vector<ValueId> res;
    for (size_t i = 0; i < n; ++i) {
      res.push_back(val());
      op.outputs.push_back(OpSlot{"", {res.back()}});
    }
    p.blocks[0].ops.push_back(op);
    return res;
  }
  void op(const std::string& type, const Slots& ins, const Slots& outs, const Attrs& attrs) {
    Op o;
    o.type = type;
    for (const auto& s : ins) o.inputs.push_back(OpSlot{pir ? "" : s.first, s.second});
    for (const auto& s : outs) o.outputs.push_back(OpSlot{pir ? "" : s.first, s.second});
    for (const auto& a : attrs) o.attrs.push_back(NamedAttr{a.first, a.second});
    p.blocks[0].ops.push_back(o);
  }
  void output(ValueId v) {
    p.outputs.push_back(IoBinding{"out" + std::to_string(p.outputs.size()), v,
                                  static_cast<int32_t>(p.outputs.size())});
  }
  std::vector<HT> run(int threads) {
    LoadedModel m;
    m.program_file = "<memory>";
    m.program = p;
    auto sp = std::make_shared<const LoadedModel>(std::move(m));
    Executor ex(sp);
    auto outs = ex.run(feeds, threads);
    std::vector<HT> r;
    for (const auto& o : outs) r.push_back(from_named(o));
    return r;
  }
};

// Runs the program (--threads, default 4) and checks every output against `want`.
void run_case(const std::string& op, const std::string& what, G& g, const std::vector<HT>& want,
              double tol = 1e-5);
// Expects the program to fail at construction or run with a ModelError.
void expect_error(const std::string& op, const std::string& what, G& g);
// Expects a legacy one-op program to fail: `inputs` adds the op's inputs, its output is "Out".
void expect_op_error(const std::string& type, const std::string& what,
                     const std::function<Slots(G&)>& inputs, const Attrs& attrs = {});

// Naive references.
HT ref_matmul(const HT& x, const HT& y, bool tx, bool ty, double alpha, bool rank0_1d);
HT ref_softmax(const HT& x, int64_t axis);
HT ref_transpose(const HT& x, const std::vector<int64_t>& perm);
HT with_dims(HT t, const std::vector<int64_t>& d);
// Python's slice.indices(): the index list along one axis.
std::vector<int64_t> py_slice(int64_t start, int64_t stop, int64_t step, int64_t len);
HT ref_slice(const HT& x, const std::vector<int64_t>& axes, const std::vector<int64_t>& st,
             const std::vector<int64_t>& en, const std::vector<int64_t>& steps);
HT ref_concat(const std::vector<HT>& xs, int64_t axis);
// Broadcast x (aligned right) to `od`.
HT ref_broadcast(const HT& x, const std::vector<int64_t>& od);
HT ref_tile(const HT& x, std::vector<int64_t> rep);
// Reductions with double accumulation. kind: 0 mean, 1 sum, 2 max, 3 min, 4 prod.
HT ref_reduce(const HT& x, std::vector<bool> red, bool keep, int kind, DType out_dt, bool rank0_1d);

}  // namespace pif::test
