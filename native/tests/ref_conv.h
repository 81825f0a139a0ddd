// The ref_conv suite's shared pieces: its random stream and a one-op program builder. Legacy
// ops use named slots; PIR ops one unnamed slot per operand, added in operand order.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "graph/ir.h"
#include "runtime/executor.h"
#include "tests/harness.h"
#include "tests/util.h"

namespace pif::test {

// One stream for the suite, in its case order (seed 12345, as check_ref_conv_family had).
inline SuiteStream& ref_conv_stream() { return suite_stream("ref_conv", 12345); }

// A random convolution window: input H, W in [1, hw]; kernel in [1, 4]; strides in [1, 3];
// dilations in [1, dil].
std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t> random_window(
    Rng& r, int64_t hw, int64_t dil);
// 2 or 4 random pads in [0, hi], and a padding algorithm (EXPLICIT with probability p).
std::vector<int64_t> random_pads(Rng& r, int64_t hi);
std::string random_algo(Rng& r, double p);
// Checks an NCHW reference against the output, NHWC when `nhwc`.
void check_image(const std::string& op, const std::string& desc, const NamedTensor& got,
                 const std::vector<int64_t>& nchw, const std::vector<double>& want, bool nhwc);

class OneOp {
 public:
  OneOp(const std::string& type, bool pir) : pir_(pir) {
    p_.format = pir ? ProgramFormat::Pir : ProgramFormat::Legacy;
    p_.blocks.resize(1);
    op_.type = type;
  }
  bool pir() const { return pir_; }

  ValueId feed_f32(const std::string& name, const std::vector<int64_t>& dims,
                   const std::vector<float>& data) {
    return feed(name, DType::Float32, dims, data.data(), data.size() * 4);
  }
  // An NCHW image [N, C, H, W], fed as is or transposed to NHWC.
  ValueId feed_image(const std::string& name, const std::vector<float>& x,
                     const std::vector<int64_t>& nchw, bool nhwc) {
    if (!nhwc) return feed_f32(name, nchw, x);
    return feed_f32(name, {nchw[0], nchw[2], nchw[3], nchw[1]},
                    nchw_to_nhwc(x, nchw[0], nchw[1], nchw[2], nchw[3]));
  }
  ValueId feed_i64(const std::string& name, const std::vector<int64_t>& data) {
    return feed(name, DType::Int64, {static_cast<int64_t>(data.size())}, data.data(),
                data.size() * 8);
  }
  ValueId const_f32(const std::string& name, const std::vector<int64_t>& dims,
                    const std::vector<float>& data) {
    return constant(name, DType::Float32, dims, data.data(), data.size() * 4);
  }
  ValueId const_i64(const std::string& name, const std::vector<int64_t>& data) {
    return constant(name, DType::Int64, {static_cast<int64_t>(data.size())}, data.data(),
                    data.size() * 8);
  }
  ValueId const_i32(const std::string& name, const std::vector<int32_t>& data) {
    return constant(name, DType::Int32, {static_cast<int64_t>(data.size())}, data.data(),
                    data.size() * 4);
  }
  // A folded builtin.combine tuple (PIR vector operand).
  ValueId combine(const std::vector<ValueId>& elems) {
    Value v;
    v.name = "";
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::Vector;
    v.elements = elems;
    return p_.add_value(std::move(v));
  }

  // Adds an input slot. Legacy: named; PIR: positional (name ignored), with
  // kNoValue for a null operand.
  void in(const std::string& slot, std::vector<ValueId> ids) {
    OpSlot s;
    s.name = pir_ ? "" : slot;
    s.args = std::move(ids);
    op_.inputs.push_back(std::move(s));
  }
  void null_in() { in("", {kNoValue}); }
  // Adds an output slot holding one value; `fetch` makes it a graph output.
  ValueId out(const std::string& slot, bool fetch) {
    ValueId id = p_.add_value(tensor_value(slot + "_out", DType::Float32, {}));
    OpSlot s;
    s.name = pir_ ? "" : slot;
    s.args = {id};
    op_.outputs.push_back(std::move(s));
    if (fetch) p_.outputs.push_back(IoBinding{slot, id, static_cast<int32_t>(p_.outputs.size())});
    return id;
  }
  void attr(const std::string& name, Attr a) { op_.attrs.push_back(NamedAttr{name, std::move(a)}); }

  // Builds, lowers and runs; returns the first fetched output.
  NamedTensor run(int threads) {
    p_.blocks[0].ops.push_back(op_);
    auto m = std::make_shared<LoadedModel>();
    m->program_file = "<memory:" + op_.type + ">";
    m->program = p_;
    Executor ex(m);
    std::vector<NamedTensor> outs = ex.run(feeds_, threads);
    if (outs.empty()) throw std::runtime_error("no outputs");
    return outs[0];
  }

 private:
  // A dense tensor value with its declared dtype and dims.
  Value tensor_value(const std::string& name, DType dt, const std::vector<int64_t>& dims) {
    Value v;
    v.name = name;
    v.pir_id = next_id_++;
    v.type.kind = ValueType::Kind::DenseTensor;
    v.type.dtype = dt;
    v.type.dims = dims;
    return v;
  }
  ValueId feed(const std::string& name, DType dt, const std::vector<int64_t>& dims,
               const void* data, size_t nbytes) {
    ValueId id = p_.add_value(tensor_value(name, dt, dims));
    p_.inputs.push_back(IoBinding{name, id, static_cast<int32_t>(p_.inputs.size())});
    NamedTensor t;
    t.name = name;
    t.dtype = dt;
    t.dims = dims;
    t.data.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + nbytes);
    feeds_.push_back(std::move(t));
    return id;
  }
  ValueId constant(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                   const void* data, size_t nbytes) {
    Value v = tensor_value(name, dt, dims);
    v.persistable = true;
    v.constant = make_tensor(dt, dims, data, nbytes);
    return p_.add_value(std::move(v));
  }

  bool pir_;
  Program p_;
  Op op_;
  std::vector<NamedTensor> feeds_;
  int64_t next_id_ = 1;
};

}  // namespace pif::test
