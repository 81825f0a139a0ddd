#include "passes/constant_fold.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "graph/dtype.h"

namespace pif {
namespace {

// Folded constants are meant for shapes, axes and small fills; bigger `full`
// tensors are left to the runtime instead of being materialised at load.
constexpr uint64_t kMaxFoldBytes = 16u << 20;

// ---------------------------------------------------------------- element IO

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t exp = (x >> 23) & 0xFF;
  uint32_t man = x & 0x7FFFFF;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00 | (man ? 0x200 : 0));
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 0x1F) return static_cast<uint16_t>(sign | 0x7C00);  // overflow -> inf
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);  // underflow -> 0
    man |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (man >> 13);
  uint32_t rem = man & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into exp: fine
  return static_cast<uint16_t>(sign | half);
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7F800000) == 0x7F800000 && (x & 0x7FFFFF))
    return static_cast<uint16_t>((x >> 16) | 0x40);
  uint32_t rounding = 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

// double -> integer of the given range: truncation toward zero, saturated,
// NaN -> 0 (a plain static_cast would be undefined behaviour out of range).
int64_t saturate(double v, int64_t lo, int64_t hi) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<double>(lo)) return lo;
  if (v >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(v);
}

int64_t clamp_int(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// A scalar to fill with: integers stay exact, everything else is a double.
struct Scalar {
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
  double as_double() const { return is_int ? static_cast<double>(i) : d; }
};

// Stores `s` converted to `t` at `dst`. False for element types we do not
// fold (float8).
bool store(DType t, const Scalar& s, uint8_t* dst) {
  auto int_of = [&](int64_t lo, int64_t hi) {
    return s.is_int ? clamp_int(s.i, lo, hi) : saturate(s.d, lo, hi);
  };
  switch (t) {
    case DType::Bool: {
      uint8_t b = s.is_int ? s.i != 0 : s.d != 0;
      *dst = b;
      return true;
    }
    case DType::Int8: {
      int8_t v = static_cast<int8_t>(int_of(INT8_MIN, INT8_MAX));
      std::memcpy(dst, &v, 1);
      return true;
    }
    case DType::UInt8: {
      uint8_t v = static_cast<uint8_t>(int_of(0, UINT8_MAX));
      *dst = v;
      return true;
    }
    case DType::Int16: {
      int16_t v = static_cast<int16_t>(int_of(INT16_MIN, INT16_MAX));
      std::memcpy(dst, &v, 2);
      return true;
    }
    case DType::Int32: {
      int32_t v = static_cast<int32_t>(int_of(INT32_MIN, INT32_MAX));
      std::memcpy(dst, &v, 4);
      return true;
    }
    case DType::Int64: {
      int64_t v = s.is_int ? s.i : saturate(s.d, INT64_MIN, INT64_MAX);
      std::memcpy(dst, &v, 8);
      return true;
    }
    case DType::Float16: {
      uint16_t v = float_to_half(static_cast<float>(s.as_double()));
      std::memcpy(dst, &v, 2);
      return true;
    }
    case DType::BFloat16: {
      uint16_t v = float_to_bf16(static_cast<float>(s.as_double()));
      std::memcpy(dst, &v, 2);
      return true;
    }
    case DType::Float32: {
      float v = static_cast<float>(s.as_double());
      std::memcpy(dst, &v, 4);
      return true;
    }
    case DType::Float64: {
      double v = s.as_double();
      std::memcpy(dst, &v, 8);
      return true;
    }
    case DType::Complex64: {
      float v[2] = {static_cast<float>(s.as_double()), 0.0f};
      std::memcpy(dst, v, 8);
      return true;
    }
    case DType::Complex128: {
      double v[2] = {s.as_double(), 0.0};
      std::memcpy(dst, v, 16);
      return true;
    }
    default: return false;
  }
}

// Reads element `k` of an integer (or bool) tensor.
bool load_int(const Tensor& t, uint64_t k, int64_t* out) {
  const uint8_t* p = t.data();
  size_t es = dtype_size(t.dtype);
  if (!p || es == 0 || (k + 1) * es > t.nbytes) return false;
  p += k * es;
  switch (t.dtype) {
    case DType::Bool:
    case DType::UInt8: *out = *p; return true;
    case DType::Int8: {
      int8_t v;
      std::memcpy(&v, p, 1);
      *out = v;
      return true;
    }
    case DType::Int16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      *out = v;
      return true;
    }
    case DType::Int32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      *out = v;
      return true;
    }
    case DType::Int64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      *out = v;
      return true;
    }
    default: return false;
  }
}

bool numel_of(const std::vector<int64_t>& dims, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  *out = n;
  return true;
}

// A zero-filled tensor owning its storage, or nullptr when too big / bad.
std::shared_ptr<Tensor> make_tensor(DType t, std::vector<int64_t> dims) {
  uint64_t n;
  size_t es = dtype_size(t);
  if (es == 0 || !numel_of(dims, &n) || n > kMaxFoldBytes / es) return nullptr;
  auto out = std::make_shared<Tensor>();
  out->dtype = t;
  out->dims = std::move(dims);
  out->nbytes = n * es;
  out->storage = std::make_shared<std::vector<uint8_t>>(out->nbytes);
  out->offset = 0;
  return out;
}

std::shared_ptr<Tensor> filled(DType t, std::vector<int64_t> dims, const Scalar& s) {
  auto out = make_tensor(t, std::move(dims));
  if (!out) return nullptr;
  size_t es = dtype_size(t);
  uint8_t one[16];
  if (!store(t, s, one)) return nullptr;
  uint8_t* p = out->storage->data();
  for (uint64_t k = 0; k < out->nbytes; k += es) std::memcpy(p + k, one, es);
  return out;
}

std::shared_ptr<Tensor> int_vector(DType t, const std::vector<int64_t>& vals) {
  auto out = make_tensor(t, {static_cast<int64_t>(vals.size())});
  if (!out) return nullptr;
  size_t es = dtype_size(t);
  for (size_t k = 0; k < vals.size(); ++k) {
    Scalar s;
    s.is_int = true;
    s.i = vals[k];
    if (!store(t, s, out->storage->data() + k * es)) return nullptr;
  }
  return out;
}

// Integer element type named by a PIR `dtype` attribute (1.a_dtype).
bool attr_dtype(const Attr* a, DType* out) {
  if (!a) return false;
  if (a->kind == Attr::Kind::DType || a->kind == Attr::Kind::String) {
    return dtype_from_name(a->s, out);
  }
  return false;
}

// Parses a legacy fill_constant `str_value` ("1", "-3.5", "1e-05", "inf",
// "-inf", "nan"); integers are kept exact.
bool parse_str_value(const std::string& str, Scalar* out) {
  if (str == "inf" || str == "+inf") {
    out->d = std::numeric_limits<double>::infinity();
    return true;
  }
  if (str == "-inf") {
    out->d = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (str == "nan" || str == "-nan") {
    out->d = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  const char* first = str.data();
  const char* last = first + str.size();
  if (first != last && *first == '+') ++first;
  int64_t iv;
  auto ri = std::from_chars(first, last, iv);
  if (ri.ec == std::errc() && ri.ptr == last) {
    out->is_int = true;
    out->i = iv;
    return true;
  }
  double dv;
  auto rd = std::from_chars(first, last, dv);
  if (rd.ec == std::errc() && rd.ptr == last) {
    out->d = dv;
    return true;
  }
  return false;
}

bool attr_scalar(const Attr* a, Scalar* out) {
  if (!a) return false;
  switch (a->kind) {
    case Attr::Kind::Int32:
    case Attr::Kind::Int64:
    case Attr::Kind::Index:
      out->is_int = true;
      out->i = a->i;
      return true;
    case Attr::Kind::Bool:
      out->is_int = true;
      out->i = a->b;
      return true;
    case Attr::Kind::Float32:
    case Attr::Kind::Float64: out->d = a->f; return true;
    case Attr::Kind::Scalar:
      if (a->scalars.empty()) return false;
      switch (a->scalars[0].type) {
        case 1:
          out->is_int = true;
          out->i = a->scalars[0].b;
          return true;
        case 2:
          out->is_int = true;
          out->i = a->scalars[0].i;
          return true;
        case 3: out->d = a->scalars[0].r; return true;
        default: return false;
      }
    default: return false;
  }
}

class Folder {
 public:
  explicit Folder(Program* p) : p_(p) {}

  size_t run() {
    for (Block& b : p_->blocks) {
      for (const Op& op : b.ops) fold(op);
    }
    return count_;
  }

 private:
  bool valid(ValueId v) const { return v >= 0 && static_cast<size_t>(v) < p_->values.size(); }

  const Tensor* constant(ValueId v) const {
    return valid(v) ? p_->values[v].constant.get() : nullptr;
  }

  // Sets a result's constant unless it already has one (folding is idempotent).
  void set(ValueId v, std::shared_ptr<const Tensor> t) {
    if (!t || !valid(v) || p_->values[v].constant) return;
    p_->values[v].constant = std::move(t);
    ++count_;
  }

  // Operand/result access for PIR ops (one unnamed slot per value) and legacy
  // ops (named slots).
  ValueId in(const Op& op, const char* slot, size_t n) const {
    return op.input(op.type.find('.') != std::string::npos ? "" : slot, n);
  }
  ValueId out(const Op& op, const char* slot) const {
    return op.output(op.type.find('.') != std::string::npos ? "" : slot, 0);
  }
  bool legacy_slot_used(const Op& op, const char* slot) const {
    for (const OpSlot& s : op.inputs) {
      if (s.name == slot && !s.args.empty()) return true;
    }
    return false;
  }

  // Values of a list operand: a folded builtin.combine tuple (PIR) or the
  // arguments of a legacy slot.
  bool list_operand(const Op& op, const char* legacy_slot, std::vector<ValueId>* out) const {
    if (op.type.find('.') != std::string::npos) {
      ValueId v = op.input("", 0);
      if (!valid(v) || p_->values[v].elements.empty()) return false;
      *out = p_->values[v].elements;
      return true;
    }
    for (const OpSlot& s : op.inputs) {
      if (s.name == legacy_slot) {
        *out = s.args;
        return !out->empty();
      }
    }
    return false;
  }

  bool const_ints(ValueId v, std::vector<int64_t>* out) const {
    const Tensor* t = constant(v);
    if (!t || t->dims.size() > 1) return false;
    uint64_t n;
    if (!numel_of(t->dims, &n)) return false;
    out->clear();
    for (uint64_t k = 0; k < n; ++k) {
      int64_t x;
      if (!load_int(*t, k, &x)) return false;
      out->push_back(x);
    }
    return true;
  }

  void fold(const Op& op) {
    const std::string& t = op.type;
    if (t == "pd_op.full") return fold_full(op);
    if (t == "pd_op.full_int_array") return fold_full_int_array(op);
    if (t == "builtin.combine") return fold_combine(op);
    if (t == "fill_constant") return fold_fill_constant(op);
    if (t == "pd_op.shape" || t == "pd_op.shape64" || t == "shape") return fold_shape(op);
    if (t == "pd_op.slice" || t == "slice") return fold_slice(op);
    if (t == "pd_op.stack" || t == "stack") return fold_stack_concat(op, true);
    if (t == "pd_op.concat" || t == "concat") return fold_stack_concat(op, false);
    if (t == "pd_op.assign" || t == "assign") return fold_assign(op);
  }

  void fold_full(const Op& op) {
    std::vector<int64_t> shape;
    const Attr* sa = op.attr("shape");
    Scalar s;
    DType dt;
    if (!sa || !sa->as_ints(&shape) || !attr_scalar(op.attr("value"), &s) ||
        !attr_dtype(op.attr("dtype"), &dt)) {
      return;
    }
    set(out(op, "Out"), filled(dt, shape, s));
  }

  void fold_full_int_array(const Op& op) {
    std::vector<int64_t> vals;
    const Attr* va = op.attr("value");
    if (!va || !va->as_ints(&vals)) return;
    DType dt = DType::Int64;
    if (op.attr("dtype") && !attr_dtype(op.attr("dtype"), &dt)) return;
    if (dt != DType::Int64 && dt != DType::Int32) return;
    set(out(op, "Out"), int_vector(dt, vals));
  }

  void fold_combine(const Op& op) {
    ValueId r = op.output("", 0);
    if (!valid(r) || !p_->values[r].elements.empty()) return;
    std::vector<ValueId> elems;
    for (const OpSlot& s : op.inputs) {
      for (ValueId v : s.args) {
        if (!valid(v)) return;
        elems.push_back(v);
      }
    }
    if (elems.empty()) return;
    p_->values[r].elements = std::move(elems);
    ++count_;
  }

  // Legacy fill_constant: dtype is a VarType code, `str_value` wins over
  // `value` when set; shape/value given as tensors are not folded.
  void fold_fill_constant(const Op& op) {
    if (legacy_slot_used(op, "ShapeTensor") || legacy_slot_used(op, "ShapeTensorList") ||
        legacy_slot_used(op, "ValueTensor")) {
      return;
    }
    int64_t code = 5;  // FP32, the op's default
    const Attr* da = op.attr("dtype");
    if (da && !da->as_int(&code)) return;
    DType dt;
    if (!dtype_from_legacy(code, &dt)) return;
    std::vector<int64_t> shape;
    const Attr* sa = op.attr("shape");
    if (!sa || !sa->as_ints(&shape)) return;
    Scalar s;
    const Attr* str = op.attr("str_value");
    if (str && str->kind == Attr::Kind::String && !str->s.empty()) {
      if (!parse_str_value(str->s, &s)) return;
    } else if (!attr_scalar(op.attr("value"), &s)) {
      s = Scalar();  // value defaults to 0
    }
    set(out(op, "Out"), filled(dt, shape, s));
  }

  void fold_shape(const Op& op) {
    ValueId x = in(op, "Input", 0);
    ValueId r = out(op, "Out");
    if (!valid(x) || !valid(r)) return;
    std::vector<int64_t> dims;
    if (const Tensor* c = constant(x)) {
      dims = c->dims;
    } else {
      const ValueType& vt = p_->values[x].type;
      if (vt.kind != ValueType::Kind::DenseTensor) return;
      dims = vt.dims;
    }
    for (int64_t d : dims) {
      if (d < 0) return;  // dynamic: only known at run time
    }
    DType dt = op.type == "pd_op.shape64" ? DType::Int64 : DType::Int32;
    const ValueType& rt = p_->values[r].type;
    if (rt.kind == ValueType::Kind::DenseTensor &&
        (rt.dtype == DType::Int32 || rt.dtype == DType::Int64)) {
      dt = rt.dtype;
    }
    set(r, int_vector(dt, dims));
  }

  // slice of a constant 1-D tensor (the shape-chain case): PIR operands
  // (input, starts, ends) with attrs axes/decrease_axis; legacy attrs.
  void fold_slice(const Op& op) {
    bool pir = op.type.find('.') != std::string::npos;
    ValueId x = in(op, "Input", 0);
    const Tensor* c = constant(x);
    if (!c || c->dims.size() != 1) return;
    std::vector<int64_t> axes, starts, ends, decrease;
    const Attr* aa = op.attr("axes");
    if (!aa || !aa->as_ints(&axes) || axes.size() != 1 || axes[0] != 0) return;
    if (pir) {
      if (!const_ints(op.input("", 1), &starts) || !const_ints(op.input("", 2), &ends)) return;
    } else {
      if (legacy_slot_used(op, "StartsTensor") || legacy_slot_used(op, "EndsTensor") ||
          legacy_slot_used(op, "StartsTensorList") || legacy_slot_used(op, "EndsTensorList")) {
        return;
      }
      const Attr* sa = op.attr("starts");
      const Attr* ea = op.attr("ends");
      if (!sa || !ea || !sa->as_ints(&starts) || !ea->as_ints(&ends)) return;
    }
    if (starts.size() != 1 || ends.size() != 1) return;
    if (const Attr* da = op.attr("decrease_axis")) {
      if (!da->as_ints(&decrease)) return;
    }
    int64_t n = c->dims[0];
    int64_t b = starts[0], e = ends[0];
    if (b < 0) b = std::max<int64_t>(b + n, 0);
    if (e < 0) e = std::max<int64_t>(e + n, 0);
    b = std::min(b, n);
    e = std::min(e, n);
    int64_t len = e > b ? e - b : 0;
    std::vector<int64_t> dims = {len};
    if (!decrease.empty()) {
      if (decrease.size() != 1 || decrease[0] != 0 || len != 1) return;
      dims.clear();
    }
    size_t es = dtype_size(c->dtype);
    if (!c->data() || static_cast<uint64_t>(b + len) * es > c->nbytes) return;
    auto r = make_tensor(c->dtype, dims);
    if (!r) return;
    if (len > 0) std::memcpy(r->storage->data(), c->data() + b * es, len * es);
    set(out(op, "Out"), r);
  }

  // stack (new axis) / concat (existing axis) of constants of one dtype.
  void fold_stack_concat(const Op& op, bool stack) {
    std::vector<ValueId> ins;
    if (!list_operand(op, "X", &ins)) return;
    std::vector<const Tensor*> ts;
    for (ValueId v : ins) {
      const Tensor* t = constant(v);
      if (!t || (!ts.empty() && t->dtype != ts[0]->dtype)) return;
      ts.push_back(t);
    }
    const Tensor& t0 = *ts[0];
    int64_t axis = 0;
    bool pir = op.type.find('.') != std::string::npos;
    if (!stack && pir) {
      std::vector<int64_t> ax;
      if (!const_ints(op.input("", 1), &ax) || ax.size() != 1) return;
      axis = ax[0];
    } else {
      const Attr* a = op.attr("axis");
      if (a && !a->as_int(&axis)) return;
    }
    int64_t rank = static_cast<int64_t>(t0.dims.size());
    int64_t out_rank = stack ? rank + 1 : rank;
    if (axis < 0) axis += out_rank;
    if (axis < 0 || axis >= out_rank) return;
    // Shapes: stack needs equal shapes; concat needs equal shapes except axis.
    std::vector<int64_t> dims = t0.dims;
    int64_t cat = 0;
    for (const Tensor* t : ts) {
      if (static_cast<int64_t>(t->dims.size()) != rank) return;
      for (int64_t k = 0; k < rank; ++k) {
        if (!stack && k == axis) continue;
        if (t->dims[k] != t0.dims[k]) return;
      }
      if (!stack) cat += t->dims[axis];
    }
    if (stack) {
      dims.insert(dims.begin() + axis, static_cast<int64_t>(ts.size()));
    } else {
      dims[axis] = cat;
    }
    auto r = make_tensor(t0.dtype, dims);
    if (!r) return;
    // out = [outer][sum of per-input chunks]; chunk = input elems from axis on.
    size_t es = dtype_size(t0.dtype);
    uint64_t outer = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= static_cast<uint64_t>(dims[k]);
    uint8_t* dst = r->storage->data();
    uint64_t written = 0;
    for (uint64_t o = 0; o < outer; ++o) {
      for (const Tensor* t : ts) {
        uint64_t n;
        if (!numel_of(t->dims, &n)) return;
        uint64_t chunk = outer ? n / outer : 0;
        uint64_t bytes = chunk * es;
        if (bytes > t->nbytes || written + bytes > r->nbytes) return;
        if (bytes) std::memcpy(dst + written, t->data() + o * bytes, bytes);
        written += bytes;
      }
    }
    if (written != r->nbytes) return;
    set(out(op, stack ? "Y" : "Out"), r);
  }

  void fold_assign(const Op& op) {
    ValueId x = in(op, "X", 0);
    if (constant(x)) set(out(op, "Out"), p_->values[x].constant);
  }

  Program* p_;
  size_t count_ = 0;
};

}  // namespace

size_t fold_constants(Program* p) {
  if (!p) return 0;
  Folder f(p);
  return f.run();
}

}  // namespace pif
