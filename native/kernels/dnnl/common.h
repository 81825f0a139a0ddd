// Shared pieces of the oneDNN backend (high-performance mode): the engine, a
// per-thread stream and scratchpad, memory descriptors of run-time tensors
// (RTensor::layout carries a dnnl::memory::desc when a tensor is in a blocked
// layout chosen by oneDNN), conversion back to plain row-major, the mapping of
// unary ops to oneDNN eltwise algorithms, and a per-node primitive cache.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "graph/fused_ops.h"
#include "graph/op_def.h"

namespace pif {

// How a oneDNN-bound node computed one input configuration when it did not
// use its primary (fully fused) primitive.
struct PathNote {
  // "sum" (residual as a sum post-op), "split" (the convolution and its
  // post-ops as separate oneDNN primitives), or "reference" (the node's
  // reference kernel).
  std::string path;
  std::string impl;    // what oneDNN offered for the refused primitive ("" if nothing)
  std::string reason;  // why it was refused
  std::string shape;   // the node's first input dims, e.g. "[1,1024,7,7]"
  int stages = 0;      // split: oneDNN primitives run after the main one
  // reference: a fused primitive was refused although oneDNN has the bare
  // op (without post-ops); hpi promises this never happens.
  bool fused_refused = false;
};

// Per-node record of PathNotes (thread-safe; written once per configuration).
class PathLog {
 public:
  void add(PathNote note) {
    std::lock_guard<std::mutex> lock(mu_);
    notes_.push_back(std::move(note));
  }
  std::vector<PathNote> notes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return notes_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<PathNote> notes_;
};

namespace dnnl_backend {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& engine();
dnnl::stream& stream();  // one per calling thread

// Row-major format tag of a rank (a, ab, abc, ...); rank 1..6.
tag plain_tag(size_t rank);
memory::dims to_dims(const std::vector<int64_t>& d);
std::string dims_text(const memory::dims& d);  // "[1,3,224,224]"

// Base of every kernel's cached entry: whether it runs the reference kernel,
// and how it departs from the node's primary primitive (path empty: it does
// not).
struct EntryBase {
  bool ref = false;
  PathNote note;
  void use_ref(std::string reason, std::string impl = "") {
    ref = true;
    note.path = "reference";
    note.reason = std::move(reason);
    note.impl = std::move(impl);
  }
};
// The descriptor of a run-time tensor: its layout if it has one, else plain.
memory::desc md_of(const RTensor& t);
bool is_plain(const memory::desc& md);
// Sets an output tensor's dims and, for a non-plain descriptor, its layout
// and buffer size (blocked layouts may pad channels).
void set_output_md(RTensor* t, const std::vector<int64_t>& dims, const memory::desc& md);
// A memory object over a run-time tensor's buffer.
memory mem_of(const RTensor& t, const memory::desc& md);
// A 64-byte aligned buffer of n bytes (at least 1), freed with the last reference.
std::shared_ptr<void> alloc(size_t n);
// Copies a tensor with a layout into `out` (plain row-major, same dims).
void to_plain(const RTensor& in, RTensor* out);
// Reorders src (md a) into a new buffer laid out as b; the buffer is owned
// by the returned shared_ptr (scratch for one execution).
std::shared_ptr<void> reorder_to(const RTensor& src, const memory::desc& a, const memory::desc& b);
// Reorders src (md a) into the caller's buffer `dst` laid out as b.
void reorder_into(const RTensor& src, const memory::desc& a, const memory::desc& b, void* dst);

// Executes a primitive created with scratchpad_mode::user, providing a
// per-thread scratchpad of the descriptor's size.
void execute(const dnnl::primitive& p, const memory::desc& scratch,
             std::unordered_map<int, memory> args);

// oneDNN eltwise algorithm for a unary op; false when there is none.
bool eltwise_of(const UnState& s, dnnl::algorithm* alg, float* alpha, float* beta);
// Appends fused post-ops to `po`; binary inputs take the descriptors given.
// False when oneDNN cannot compute the chain correctly (the node then uses
// its reference kernel).
// binary_index[i]: oneDNN's post-op index of post[i] when it is binary
// (kSumPostOp for the one appended as a sum).
constexpr int kSumPostOp = -2;
// sum_at: the index in `post` of a binary Add appended as a sum post-op
// instead (the destination then holds that input before execution); -1 none.
bool append_post_ops(const std::vector<PostOp>& post, const std::vector<memory::desc>& extra,
                     dnnl::post_ops* po, std::vector<int>* binary_index, int sum_at = -1);

// Execution arguments of the binary post-ops' inputs (extra[k] for the post-op
// whose input is k).
void add_post_op_inputs(const std::vector<PostOp>& post, const std::vector<int>& binary_index,
                        const std::vector<memory::desc>& mds,
                        const std::vector<const RTensor*>& extra,
                        std::unordered_map<int, memory>* args);

// Split path of a fused node whose primitive with post-ops oneDNN refused:
// a post-op run as its own primitive after the main one, in place on the
// destination: binary (src1 = extra[input]) or eltwise. Binary stages take no
// post-ops: oneDNN 2.6.3's jit binary with an eltwise post-op computes wrong
// values (AVX) or crashes (AVX-512) on nChw8c tensors whose channels are not a
// multiple of the vector width.
struct PostStage {
  dnnl::primitive prim;
  memory::desc scratch;
  int input = -1;  // binary: the extra input read as src1; -1 for eltwise
};
// False if oneDNN has no primitive for the step.
bool make_post_stage(const PostOp& op, const memory::desc& dst,
                     const std::vector<memory::desc>& extra, PostStage* stage);
// Runs `stages` in order on `out` (laid out as dst); extra[k] is read as
// extra_md[k].
void run_post_stages(const std::vector<PostStage>& stages, const memory::desc& dst, void* out,
                     const std::vector<memory::desc>& extra_md,
                     const std::vector<const RTensor*>& extra);

// Whether the CPU runs oneDNN bf16 kernels natively (AVX512-BF16 or AMX).
bool cpu_has_bf16();
// Whether oneDNN's effective ISA multiplies u8 x s8 with VNNI (or AMX).
bool cpu_has_vnni();

// A fused convolution on a 4-D input as oneDNN descriptors (src, wei and dst with
// format_tag::any; dst f32; bias f32 or empty) and its resolved geometry.
struct ConvGeom {
  memory::desc src, wei, bias, dst;
  memory::dims strides, dilates, pad_l, pad_r;
  memory::dims wdims;  // the weights' logical dims (goihw when grouped)
  int64_t groups = 1, kh = 1, kw = 1;
  int64_t dh = 1, dw = 1;          // Paddle's dilations (oneDNN's + 1)
  int64_t pads[4] = {0, 0, 0, 0};  // top, bottom, left, right
  std::vector<int64_t> out_dims;

  dnnl::convolution_forward::desc desc() const;
};
// The geometry of `st` on input dims `x` (4-D) with activations in src_dt and weights in
// wei_dt; false when the output is empty. op_fail when the channels do not match the filter.
bool conv_geom(const FusedConvState& st, const std::vector<int64_t>& x, dt src_dt, dt wei_dt,
               ConvGeom* g);

// The primitive-cache key of a fused convolution call: the descriptors of its input and of its
// residual inputs.
std::vector<memory::desc> fused_conv_key(const RunCtx& c);

// A fused convolution's residual inputs `in` (arriving as `have`) as its
// primitive reads them (`want`): the sum post-op's input (sum_input >= 0)
// copied or reordered into the destination `out` (laid out as dst), the
// others reordered where their layout differs (buffers kept in `converted`).
std::vector<const RTensor*> residuals_for(const std::vector<const RTensor*>& in,
                                          const std::vector<memory::desc>& have,
                                          const std::vector<memory::desc>& want,
                                          const memory::desc& dst, int sum_input, void* out,
                                          std::vector<RTensor>* converted);

// Test hook: PIF_TEST_DNNL_REFUSE is a comma-separated list of steps the
// kernels must treat as refused by oneDNN ("fused": a convolution's or
// matmul's primitive with its post-ops; "sum": a convolution's residual as a
// sum post-op; "split": the primitive and its post-ops as separate
// primitives), so the degraded paths run on any CPU. Read when a primitive is
// created (once per node and shape).
bool test_refuses(const char* step);

// Input descriptors -> cached primitive entry. Creation happens once per
// distinct input layout/shape; lookups are cheap and thread-safe. Entries
// derive from EntryBase; an entry that did not get the node's primary
// primitive is recorded in the node's PathLog (predictor.engine reports it).
template <typename Entry>
class PrimCache {
 public:
  template <typename Make>
  std::shared_ptr<const Entry> get(const std::vector<memory::desc>& key, Make make,
                                   PathLog* log) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_)
      if (e.first == key) return e.second;
    auto made = std::make_shared<const Entry>(make());
    entries_.emplace_back(key, made);
    if (log && !made->note.path.empty()) {
      PathNote note = made->note;
      if (!key.empty()) note.shape = dims_text(key[0].dims());
      log->add(std::move(note));
    }
    return made;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::pair<std::vector<memory::desc>, std::shared_ptr<const Entry>>> entries_;
};

// A node's constant weights in each layout its primitives asked for, made once per layout:
// entries for other input shapes usually want the same layout and share the copy.
class WeightCache {
 public:
  template <typename Make>
  std::shared_ptr<void> get(const memory::desc& want, Make make) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& w : by_layout_)
      if (w.first == want) return w.second;
    std::shared_ptr<void> buf = make();
    by_layout_.emplace_back(want, buf);
    return buf;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::pair<memory::desc, std::shared_ptr<void>>> by_layout_;
};

// The reference op a dnnl node falls back to for configurations oneDNN does
// not cover (inputs converted to plain first), and the node's path log.
struct RefFallback {
  const OpDef* def;
  std::shared_ptr<const void> state;
  std::shared_ptr<PathLog> log;
};
void run_ref(const RefFallback& ref, RunCtx& c, bool infer_only);

inline OpDef layout_aware(OpDef d) {
  d.layout_aware = true;
  return d;
}

// ---------------------------------------------------------------------------
// The skeleton every oneDNN kernel of this folder shares: a node state holding
// the op's parsed attributes, the reference fallback and the primitive cache;
// an OpDef whose infer/run look up the cached entry for the call's inputs and
// either hand the call to the reference kernel or set the output / execute.

// Node state of a kernel: A is what it keeps of the reference node's state.
template <typename Entry, typename A>
struct KernelNode {
  A attrs;
  RefFallback ref;
  PrimCache<Entry> cache;
};

template <typename N>
std::shared_ptr<const void> make_kernel_node(decltype(N::attrs) attrs, RefFallback ref) {
  auto s = std::make_shared<N>();
  s->attrs = std::move(attrs);
  s->ref = std::move(ref);
  return s;
}

// An entry that sends every call to the reference kernel; call sites keep one
// (`static const auto e = ref_entry<E>("why");`).
template <typename Entry>
std::shared_ptr<const Entry> ref_entry(std::string reason) {
  auto e = std::make_shared<Entry>();
  e->use_ref(std::move(reason));
  return e;
}

// The OpDef of a kernel whose node state is N (with a `ref` member) and whose
// cached entry for a call comes from EntryFor.
template <typename N, typename E, std::shared_ptr<const E> (*EntryFor)(const RunCtx&),
          void (*SetOutput)(RunCtx&, const E&), void (*Execute)(RunCtx&, const E&)>
const OpDef& kernel_def(const char* name) {
  struct Fns {
    static void infer(RunCtx& c) {
      auto e = EntryFor(c);
      if (e->ref) return run_ref(c.node.attrs<N>().ref, c, true);
      SetOutput(c, *e);
    }
    static void run(RunCtx& c) {
      auto e = EntryFor(c);
      if (e->ref) return run_ref(c.node.attrs<N>().ref, c, false);
      Execute(c, *e);
    }
  };
  static const OpDef d =
      layout_aware(make_op_def(name, {}, {}, {}, nullptr, &Fns::infer, &Fns::run));
  return d;
}

// Makes a primitive P (with a user scratchpad) from the descriptor `desc()`
// returns; false when oneDNN refuses (desc() may throw dnnl::error too). `pd`
// (if given) receives the primitive descriptor.
template <typename P, typename DescFn>
bool make_primitive(DescFn desc, dnnl::primitive* prim, memory::desc* scratch,
                    typename P::primitive_desc* pd = nullptr) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  try {
    typename P::primitive_desc made(desc(), attr, engine());
    *prim = P(made);
    *scratch = made.scratchpad_desc();
    if (pd) *pd = made;
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

// The entry of a kernel that reads input 0 and writes output 0 in one
// descriptor (eltwise, softmax), and its output / execution steps.
struct SrcDstEntry : EntryBase {
  dnnl::primitive prim;
  memory::desc md, scratch;
};
void set_output_as_input(RunCtx& c, const SrcDstEntry& e);
void execute_src_dst(RunCtx& c, const SrcDstEntry& e);

}  // namespace dnnl_backend

// int8 (hpi precision int8): a fused convolution run as u8/s8 x s8 -> f32
// (conv_int8.cc). x ~= src_scale * q, q in u8 when the calibrated input is
// never negative, else s8.
struct QuantConv {
  float src_scale = 1.f;
  bool src_unsigned = true;
};
// The quantised convolutions by fused-convolution ordinal (the k-th
// pif.fused_conv2d of the lowered graph, counted in node order).
struct QuantTable {
  std::map<int, QuantConv> conv;
};

struct HpiOptions {
  bool bf16 = false;
  std::shared_ptr<const QuantTable> quant;  // null: no int8
};

// ---------------------------------------------------------------------------
// Registration: each family file (conv.cc, matmul.cc, ...) defines one
// register_dnnl_<family> function that appends its bindings: the canonical op
// names it takes, whether it takes a given node, and the node factory.
// registry.cc calls every one of them (an explicit list, as kernels/registry.cc
// does for the reference families: pif_core is a static library, whose
// unreferenced self-registering objects the linker would drop).

struct DnnlBindCtx {
  const Program& program;
  const Node& node;
  const HpiOptions& opt;
  int conv_ordinal = -1;  // a pif.fused_conv2d node: its ordinal (QuantTable), else -1
  // Whether value v is a parameter or a folded constant.
  bool is_static(ValueId v) const;
  // Whether every input in canonical slots >= first is static.
  bool inputs_static_from(size_t first) const;
};

// The node state of a fused oneDNN kernel (conv, matmul): the node's parsed fused attributes,
// its reference fallback and the precision.
template <typename NodeT, typename FusedStateT>
std::shared_ptr<NodeT> make_fused_node(const DnnlBindCtx& b, dnnl_backend::RefFallback ref) {
  auto s = std::make_shared<NodeT>();
  s->fused = &b.node.attrs<FusedStateT>();
  s->ref = std::move(ref);
  s->bf16 = b.opt.bf16;
  return s;
}

struct DnnlBinding {
  std::vector<std::string> ops;  // canonical op names (e.g. "softmax", kFusedConvName)
  // Whether the node runs on this kernel (null: every node of those ops).
  bool (*applies)(const DnnlBindCtx&) = nullptr;
  // The kernel's node state, wrapping the node's reference op and state.
  std::shared_ptr<const void> (*make)(const DnnlBindCtx&, dnnl_backend::RefFallback ref) = nullptr;
  const OpDef& (*def)() = nullptr;  // the kernel (layout-aware)
};

void register_dnnl_conv_int8(std::vector<DnnlBinding>* t);  // before conv: it applies first
void register_dnnl_conv(std::vector<DnnlBinding>* t);
void register_dnnl_matmul(std::vector<DnnlBinding>* t);
void register_dnnl_pool(std::vector<DnnlBinding>* t);
void register_dnnl_eltwise(std::vector<DnnlBinding>* t);
void register_dnnl_binary(std::vector<DnnlBinding>* t);
void register_dnnl_softmax(std::vector<DnnlBinding>* t);
void register_dnnl_layer_norm(std::vector<DnnlBinding>* t);

// Replaces each node's def/state by the oneDNN kernel when one covers it
// (conv, matmul, pooling, eltwise, binary, softmax, layer_norm); the rest keep
// their reference kernels. Returns how many nodes were bound; `logs` (if
// given) gets each bound node's path log, null for the others.
int bind_dnnl_kernels(const Program& program, std::vector<Node>* nodes, const HpiOptions& opt,
                      std::vector<std::shared_ptr<const PathLog>>* logs = nullptr);

}  // namespace pif
