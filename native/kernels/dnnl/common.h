// Shared pieces of the oneDNN backend (high-performance mode): the engine, a
// per-thread stream and scratchpad, memory descriptors of run-time tensors
// (RTensor::layout carries a dnnl::memory::desc when a tensor is in a blocked
// layout chosen by oneDNN), conversion back to plain row-major, the mapping of
// unary ops to oneDNN eltwise algorithms, and a per-node primitive cache.
#pragma once

#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "graph/fused_ops.h"
#include "graph/op_def.h"

namespace pif {
namespace dnnl_backend {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& engine();
dnnl::stream& stream();  // one per calling thread

// Row-major format tag of a rank (a, ab, abc, ...); rank 1..6.
tag plain_tag(size_t rank);
memory::dims to_dims(const std::vector<int64_t>& d);
// The descriptor of a run-time tensor: its layout if it has one, else plain.
memory::desc md_of(const RTensor& t);
bool is_plain(const memory::desc& md);
// Sets an output tensor's dims and, for a non-plain descriptor, its layout
// and buffer size (blocked layouts may pad channels).
void set_output_md(RTensor* t, const std::vector<int64_t>& dims, const memory::desc& md);
// A memory object over a run-time tensor's buffer.
memory mem_of(const RTensor& t, const memory::desc& md);
// Copies a tensor with a layout into `out` (plain row-major, same dims).
void to_plain(const RTensor& in, RTensor* out);
// Reorders src (md a) into a new buffer laid out as b; the buffer is owned
// by the returned shared_ptr (scratch for one execution).
std::shared_ptr<void> reorder_to(const RTensor& src, const memory::desc& a, const memory::desc& b);

// Executes a primitive created with scratchpad_mode::user, providing a
// per-thread scratchpad of the descriptor's size.
void execute(const dnnl::primitive& p, const memory::desc& scratch,
             std::unordered_map<int, memory> args);

// oneDNN eltwise algorithm for a unary op; false when there is none.
bool eltwise_of(const UnState& s, dnnl::algorithm* alg, float* alpha, float* beta);
// Appends fused post-ops to `po`; binary inputs take the descriptors given.
// False when oneDNN cannot compute the chain correctly (the node then uses
// its reference kernel).
// binary_index[i]: oneDNN's post-op index of post[i] when it is binary.
bool append_post_ops(const std::vector<PostOp>& post, const std::vector<memory::desc>& extra,
                     dnnl::post_ops* po, std::vector<int>* binary_index);

// Execution arguments of the binary post-ops' inputs (extra[k] for the post-op
// whose input is k).
void add_post_op_inputs(const std::vector<PostOp>& post, const std::vector<int>& binary_index,
                        const std::vector<memory::desc>& mds,
                        const std::vector<const RTensor*>& extra,
                        std::unordered_map<int, memory>* args);

// Whether the CPU runs oneDNN bf16 kernels natively (AVX512-BF16 or AMX).
bool cpu_has_bf16();

// Input descriptors -> cached primitive entry. Creation happens once per
// distinct input layout/shape; lookups are cheap and thread-safe.
template <typename Entry>
class PrimCache {
 public:
  template <typename Make>
  std::shared_ptr<const Entry> get(const std::vector<memory::desc>& key, Make make) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_)
      if (e.first == key) return e.second;
    auto made = std::make_shared<const Entry>(make());
    entries_.emplace_back(key, made);
    return made;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::pair<std::vector<memory::desc>, std::shared_ptr<const Entry>>> entries_;
};

// The reference op a dnnl node falls back to for configurations oneDNN does
// not cover (inputs converted to plain first).
struct RefFallback {
  const OpDef* def;
  std::shared_ptr<const void> state;
};
void run_ref(const RefFallback& ref, RunCtx& c, bool infer_only);

inline OpDef layout_aware(OpDef d) {
  d.layout_aware = true;
  return d;
}

// Backend kernels: each returns its OpDef (blocked inputs accepted).
const OpDef& conv_def();
const OpDef& matmul_def();
const OpDef& pool_def();
const OpDef& eltwise_def();
const OpDef& binary_def();
const OpDef& softmax_def();
const OpDef& layer_norm_def();

// Node states of the backend kernels (wrapping the node's reference state).
std::shared_ptr<const void> make_conv_node(const Node& n, bool bf16);
std::shared_ptr<const void> make_matmul_node(const Node& n, bool bf16, bool y_const);
std::shared_ptr<const void> make_pool_node(const Node& n);
std::shared_ptr<const void> make_eltwise_node(const Node& n);
std::shared_ptr<const void> make_binary_node(const Node& n);
std::shared_ptr<const void> make_softmax_node(const Node& n);
std::shared_ptr<const void> make_layer_norm_node(const Node& n);

}  // namespace dnnl_backend

struct HpiOptions {
  bool bf16 = false;
};

// Replaces each node's def/state by the oneDNN kernel when one covers it
// (conv, matmul, pooling, eltwise, binary, softmax, layer_norm); the rest keep
// their reference kernels. Returns how many nodes were bound.
int bind_dnnl_kernels(const Program& program, std::vector<Node>* nodes, const HpiOptions& opt);

}  // namespace pif
