#pragma once
// Private to native/export/: the ONNX exporter's shared declarations (the Exporter class, the
// protobuf encoders and numeric helpers), used by onnx*.cc only.
//
// onnx.proto field numbers used here:
//   ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7,
//     opset_import 8.  OperatorSetIdProto: domain 1, version 2.
//   GraphProto: node 1, name 2, initializer 5, input 11, output 12.
//   NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
//   AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20
//     (FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7).
//   TensorProto: dims 1, data_type 2, name 8, raw_data 9.
//   ValueInfoProto: name 1, type 2.  TypeProto: tensor_type 1.
//   TypeProto.Tensor: elem_type 1, shape 2.  TensorShapeProto: dim 1.
//   Dimension: dim_value 1, dim_param 2.

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "export/onnx.h"
#include "format/wire.h"
#include "graph/attr_num.h"
#include "graph/ir.h"
#include "graph/op_def.h"

namespace pif {
namespace onnx {

using wire::Writer;

// ---- encoding (onnx_proto.cc)
int onnx_dtype(DType t);  // ONNX TensorProto.DataType code, 0 when there is none
bool is_float(DType t);
bool is_int(DType t);
std::string tensor_proto(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                         const void* data, size_t nbytes);
// A serialized AttributeProto.
struct OA {
  std::string bytes;
};
OA a_i(const std::string& name, int64_t v);
OA a_f(const std::string& name, double v);
OA a_s(const std::string& name, const std::string& v);
OA a_is(const std::string& name, const std::vector<int64_t>& v);
OA a_t(const std::string& name, const std::string& tensor);
// Bytes of one element of `dt` holding `v` (integers exact when v.is_int).
std::vector<uint8_t> scalar_bytes(DType dt, const Num& v);
// Legacy / PIR dtype attribute (mirrors shape_ops.cc attr_dtype).
DType attr_dtype(const Op& op, const std::string& name, DType def);
// Values of an integer / float tensor as int64 (false for other dtypes).
bool tensor_ints(const Tensor& t, std::vector<int64_t>* out);
bool tensor_doubles(const Tensor& t, std::vector<double>* out);
int64_t tensor_numel(const std::vector<int64_t>& d);

// ---- conv / pool attribute readers (onnx_nn.cc)
void pair_attr(const AttrReader& a, const char* name, int64_t def, int64_t* h, int64_t* w);
void pads4(const AttrReader& a, int64_t p[4]);
bool layout_nhwc(const AttrReader& a, const char* name);
void same_pad(int64_t in, int64_t st, int64_t k, int64_t* p0, int64_t* p1);

// ---- the exporter (onnx.cc; converters in onnx_elementwise.cc, onnx_nn.cc, onnx_shape.cc,
// onnx_resample.cc)
struct Info {
  DType dtype = DType::Undefined;
  bool rank_known = false;
  std::vector<int64_t> dims;       // -1 = unknown
  const Tensor* tensor = nullptr;  // constant data (params / folded)
  std::shared_ptr<Tensor> own;     // constant data made here
};

class Exporter {
 public:
  Exporter(const Program& p, const std::vector<Node>& nodes, const OnnxOptions& o)
      : nodes_in_(nodes), p_(p), o_(o) {}
  std::string run();

 private:
  // ---- names and infos
  void assign_names();
  std::string fresh(const std::string& hint);
  const std::string& val(ValueId v);
  std::string in(const Node& n, size_t slot, size_t k = 0);
  bool has(const Node& n, size_t slot) const {
    return slot < n.inputs.size() && !n.inputs[slot].empty() && n.inputs[slot][0] != kNoValue;
  }
  std::string out(const Node& n, size_t slot, DType dt, size_t k = 0);
  // Constant data of an input (folded constant / parameter), without
  // emitting it as an initializer; null for computed values.
  const Tensor* cval(const Node& n, size_t slot, size_t k = 0) const;
  // The data of a parameter or folded constant, null for a computed value (and, with
  // loaded_only, for a parameter whose data was not loaded).
  const Tensor* static_tensor(ValueId id, bool loaded_only) const;
  bool cints(const Node& n, size_t slot, std::vector<int64_t>* v) const;
  bool cdoubles(const Node& n, size_t slot, std::vector<double>* v) const;
  Info& info(const std::string& name);
  DType dtype_of(const std::string& name);
  int64_t rank_of(const std::string& name);
  std::vector<int64_t> dims_of(const std::string& name);
  const Tensor* const_of(const std::string& name);
  bool const_doubles(const std::string& name, std::vector<double>* v);

  // ---- emission
  void emit(const std::string& op, const std::vector<std::string>& ins,
            const std::vector<std::string>& outs, const std::vector<OA>& attrs = {});
  std::string op(const std::string& type, const std::vector<std::string>& ins,
                 const std::vector<OA>& attrs = {}, const std::string& out = "");
  void initializer(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                   const void* data, size_t nbytes);
  std::string constant(DType dt, const std::vector<int64_t>& dims,
                       const std::vector<uint8_t>& bytes);
  std::string c_i64(const std::vector<int64_t>& v);
  std::string c_i64_scalar(int64_t v);
  std::string c_scalar(DType dt, double v);  // 0-D
  std::string cast(const std::string& x, DType to);
  std::string shape_slice(const std::string& x, int64_t start, int64_t end);
  std::string ints_from_slot(const Node& n, size_t slot, std::vector<int64_t>* vals,
                             bool* is_const);
  // ints_from_slot of slot 1 (a tensor) or else slot 2 (a list); "" when neither is given.
  std::string ints_input(const Node& n, std::vector<int64_t>* vals, bool* is_const);
  std::string to_nchw(const std::string& x);
  std::string from_nchw(const std::string& x, const std::string& out);

  [[noreturn]] void unsupported(const std::string& msg) const;
  [[noreturn]] void bad(const std::string& msg) const;

  // ---- converters
  void convert(const Node& n);
  void cv_binary(const Node& n);
  std::string align_legacy(const std::string& s, int64_t rb, int64_t axis);
  void cv_unary(const Node& n);
  void cv_conv(const Node& n, bool transpose);
  void cv_pool(const Node& n);
  std::string adaptive_uneven(const std::string& x, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              bool is_max, const std::string& res);
  void cv_batch_norm(const Node& n);
  void cv_layer_norm(const Node& n);
  void cv_matmul(const Node& n, bool v1);
  void cv_mul(const Node& n);
  void cv_softmax(const Node& n);
  void cv_reshape(const Node& n);
  void cv_transpose(const Node& n);
  void cv_flatten(const Node& n, bool legacy2);
  void cv_squeeze(const Node& n);
  void cv_unsqueeze(const Node& n);
  void cv_concat(const Node& n);
  void cv_stack(const Node& n);
  // The axis input in `slot` (a one-element constant) when present, else `axis` (the attribute).
  int64_t const_axis(const Node& n, size_t slot, int64_t axis, const char* what);
  void cv_split(const Node& n);
  void cv_slice(const Node& n);
  void cv_shape(const Node& n);
  // The fill value of fill_constant / full_like: a constant in `slot` goes to *value (""
  // returned), a computed one is returned by name; "" with *value kept when the slot is empty.
  std::string fill_value(const Node& n, size_t slot, Num* value);
  // `o` = a tensor of shape `shp` (an int64 1-D value) filled with `value`, or with the scalar
  // value `vt` when it is not empty.
  void fill_shape(const std::string& shp, DType dt, const Num& value, const std::string& vt,
                  const std::string& o);
  void cv_fill(const Node& n, bool with_tensor);
  void cv_full_int_array(const Node& n);
  void cv_full_like(const Node& n);
  void cv_cast(const Node& n);
  void cv_expand(const Node& n);
  void cv_tile(const Node& n, bool strict);
  void cv_gather(const Node& n);
  void cv_reduce(const Node& n);
  void cv_interp(const Node& n);
  void cv_pixel_shuffle(const Node& n);
  void cv_grid_sample(const Node& n);

  bool rank0_as_1d(const Node& n) const;
  std::vector<int64_t> axes_attr(const Node& n, size_t tensor_slot, size_t list_slot,
                                 const std::vector<int64_t>& def_attr);

  const std::vector<Node>& nodes_in_;
  const Program& p_;
  OnnxOptions o_;
  std::string nodes_, inits_;
  std::vector<std::string> vname_;
  std::unordered_set<std::string> used_;
  std::unordered_map<std::string, Info> info_;
  std::unordered_set<std::string> defined_;
  std::map<std::string, std::string> const_cache_;
  int64_t tmp_ = 0, node_count_ = 0;
  const Node* cur_ = nullptr;
};

}  // namespace onnx
}  // namespace pif
