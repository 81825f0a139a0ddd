#pragma once
// Private to native/builder/: the GraphBuilder (values, parameters, ops in PIR or legacy form), its
// seeded weight initialisers and attribute constructors, and the per-architecture builders.
// Used by model_builder.cc, graph_builder*.cc, shitu.cc and clip_vit.cc only.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "builder/model_builder.h"
#include "graph/ir.h"

namespace pif {
namespace builder {

using Attrs = std::vector<NamedAttr>;
using Dims = std::vector<int64_t>;

// ---- seeded initialisers (graph_builder.cc)

struct Init {
  enum Kind : uint8_t { Normal, Uniform } kind = Normal;
  float a = 0, b = 0;  // Normal: mean, std. Uniform: lo, hi.
};
Init normal_init(float mean, float std);
Init uniform_init(float lo, float hi);
Init he_init(int64_t fan_in);

// ---- attribute constructors (graph_builder.cc), in the kinds the file formats store

Attr a_bool(bool b);
Attr a_i32(int64_t v);
Attr a_f32(double v);  // the value as the float the file stores
Attr a_f64(double v);
Attr a_str(const std::string& s);
Attr a_strs(std::vector<std::string> v);
Attr a_i32s(std::vector<int64_t> v);          // legacy INTS
Attr a_i64s(std::vector<int64_t> v);          // legacy LONGS
Attr a_intarray(std::vector<int64_t> v);      // PIR pd_op.a_intarray
Attr a_arr32(const std::vector<int64_t>& v);  // PIR 0.a_array of 0.a_i32
Attr a_arr64(const std::vector<int64_t>& v);  // PIR 0.a_array of 0.a_i64
Attr a_bools(const std::vector<bool>& v);
Attr a_dtype(const std::string& s);
Attr a_place(int64_t alloc, int64_t dev);

// ---- the graph builder (graph_builder.cc: values, params, raw ops, finish;
// graph_builder_layers.cc: the format-neutral layers)

struct PendingParam {
  std::string name;
  Dims dims;
  Init init;
  bool trainable = true;
  ValueId value = kNoValue;
};

// The Paddle release whose legacy ProgramDesc a build imitates: the official
// PP-ShiTuV2_rec export was written by Paddle 2.3.2 (dygraph-to-static in
// `paddle.jit.save`), which differs from 2.6 in the empty conv2d input slots
// it keeps and in not appending scale(1.0) before the fetch.
enum class LegacyWriter : uint8_t { Paddle26, Paddle23 };

class GraphBuilder {
 public:
  explicit GraphBuilder(ProgramFormat f, LegacyWriter w = LegacyWriter::Paddle26)
      : pir_(f == ProgramFormat::Pir), paddle23_(w == LegacyWriter::Paddle23) {
    p_.format = f;
    p_.has_version = true;
    if (pir_) {
      p_.version = 1;
      p_.pir_trainable = true;
      p_.pir_region_name = "region_0";
    } else {
      p_.version = paddle23_ ? 2003002 : 2006002;
    }
    p_.blocks.emplace_back();
    p_.blocks[0].idx = 0;
    p_.blocks[0].parent_idx = -1;
    if (pir_) p_.blocks[0].pir_name = "block_0";
  }

  bool pir() const { return pir_; }
  const Dims& dims(ValueId v) const { return p_.values[v].type.dims; }

  // Debug scope for PIR struct_name ("/PPLCNetV2/...").
  void push(const std::string& s) { scope_.push_back(s); }
  void pop() { scope_.pop_back(); }

  // ---- values and params

  ValueId value(Dims d, DType dt = DType::Float32, const std::string& name = "");

  // Legacy temporary names: "<prefix>_<k>.tmp_<j>", k from Paddle's
  // unique-name counter of <prefix>.
  std::string tmp_prefix(const std::string& prefix);
  // Starts the counter of `prefix` at n: layers constructed before the traced
  // forward (a Conv2D takes conv2d_N, an nn.Sigmoid sigmoid_N) share the
  // counter with the op helpers of the same name.
  void seed_counter(const std::string& prefix, int n) { counters_[prefix] = n; }
  // Python operators on tensors (math_op_patch) name their result tmp_<k>.
  std::string py_tmp() { return "tmp_" + std::to_string(counters_["tmp"]++); }
  ValueId tmp(const std::string& prefix, Dims d, DType dt = DType::Float32);

  ValueId param(const std::string& name, Dims d, Init init, bool trainable = true);

  ValueId input(const std::string& name, Dims d);

  void output(ValueId v);

  // ---- raw op emission

  // PIR op: one operand per input (kNoValue = null operand), fresh results
  // of the given types, struct_name appended, OA stop_gradient computed as
  // Paddle does (a result stops gradients iff every operand does).
  std::vector<ValueId> pir_op(const std::string& name, const std::vector<ValueId>& ins,
                              const std::vector<std::pair<Dims, DType>>& outs, Attrs attrs);
  ValueId pir1(const std::string& name, const std::vector<ValueId>& ins, Dims d, Attrs attrs,
               DType dt = DType::Float32);

  // Legacy op: named slots, attributes sorted by name with Paddle's role
  // attributes added.
  void legacy_op(const std::string& type, std::vector<OpSlot> ins, std::vector<OpSlot> outs,
                 Attrs attrs, bool quant_attr = false);
  // Common legacy shape: X -> Out.
  ValueId legacy_unary(const std::string& type, const std::string& prefix, ValueId x, Dims d,
                       Attrs attrs);
  // Legacy ops with an XShape output (reshape2, transpose2, flatten_contiguous_range).
  ValueId legacy_xshape(const std::string& type, const std::string& prefix, std::vector<OpSlot> ins,
                        ValueId x, Dims d, Attrs attrs);

  // ---- PIR constants

  ValueId full_int_array(const Dims& v);
  ValueId full(const Dims& shape, double v, DType dt);

  // ---- layers (format-neutral)

  ValueId conv2d(ValueId x, ValueId w, int64_t stride, int64_t pad, int64_t groups);

  // Conv bias. PIR: reshape(bias, [1,C,1,1]) + add. Legacy: the static
  // conv helper's append_bias_op, an elementwise_add of the 1-D bias with
  // axis=1 whose output is the helper's next temporary (conv2d_N.tmp_1).
  ValueId conv_bias(ValueId y, ValueId b);

  ValueId batch_norm(ValueId x, const std::string& prefix);

  ValueId act(const std::string& type, ValueId x);

  static Dims broadcast(const Dims& a, const Dims& b);
  ValueId binary(const std::string& pir_name, const std::string& legacy, ValueId x, ValueId y);
  ValueId add(ValueId x, ValueId y) { return binary("add", "elementwise_add", x, y); }
  // Python `x + y` (a residual): the legacy result is named tmp_<k>.
  ValueId plus(ValueId x, ValueId y);
  ValueId multiply(ValueId x, ValueId y) { return binary("multiply", "elementwise_mul", x, y); }

  // Adaptive average pooling to 1x1.
  ValueId avg_pool_1x1(ValueId x);

  // nn.Dropout(p, mode="downscale_in_infer") in eval mode.
  ValueId dropout(ValueId x, double prob);

  ValueId flatten(ValueId x, int64_t start, int64_t stop);

  ValueId layer_norm(ValueId x, const std::string& prefix);

  ValueId matmul(ValueId x, ValueId y);
  ValueId linear(ValueId x, const std::string& prefix, int64_t in, int64_t out, float w_std);

  ValueId reshape(ValueId x, const Dims& shape);

  ValueId transpose(ValueId x, const Dims& perm);

  ValueId slice(ValueId x, const Dims& axes, const Dims& starts, const Dims& ends,
                const Dims& decrease);

  // x * s (Python scalar multiply).
  ValueId scale(ValueId x, double s);

  ValueId softmax(ValueId x);

  ValueId gelu(ValueId x);

  ValueId mean(ValueId x, int64_t axis);

  // B = paddle.shape(x)[0]: shape op + slice with decrease_axis (0-D).
  ValueId batch_size(ValueId x);

  // t.expand((B, -1, -1)) for a [1,1,d] parameter.
  ValueId expand_batch(ValueId t, ValueId b);

  ValueId combine(const std::vector<ValueId>& xs);

  ValueId concat(const std::vector<ValueId>& xs, int64_t axis);

  // ---- finish

  Program finish(uint64_t seed, std::shared_ptr<std::vector<uint8_t>>* arena_out);

 private:
  std::string struct_name() const;
  void remap(const std::vector<ValueId>& order);

  bool pir_;
  bool paddle23_;
  Program p_;
  std::vector<bool> sg_;  // stop_gradient per value (PIR OA)
  std::vector<Op> ops_;
  std::vector<PendingParam> params_;
  std::map<std::string, int> counters_;
  std::vector<std::string> scope_;
  ValueId feed_ = kNoValue;
};

// ---- the architectures

// PP-ShiTuV2_rec (shitu.cc).
void build_shitu(GraphBuilder& g);

// CLIP ViT feature models (clip_vit.cc).
struct VitConfig {
  int64_t patch, width, depth, heads;
  bool drop_cls;
};
void build_vit(GraphBuilder& g, const VitConfig& c, ClipActivation act);

}  // namespace builder
}  // namespace pif
