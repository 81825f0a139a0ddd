// Ops that make or convert values: fill_constant / full, full_int_array,
// full_like, cast, and the element conversions between dtypes they share
// (shared rules in shape_common.h).
#include <omp.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "graph/attr_num.h"
#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/ref/shape_common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

using namespace shape_kernels;

// ------------------------------------------------------------ element conversion

// The bits of `v` read as a To (same size).
template <typename To, typename From>
To bits_as(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "bits_as: sizes differ");
  To t;
  std::memcpy(&t, &v, sizeof t);
  return t;
}

float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while (!(man & 0x400));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (man & 0x3FF) << 13;
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000 | man << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  return bits_as<float>(bits);
}

uint16_t float_to_half(float f) {
  uint32_t x = bits_as<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xFF, man = x & 0x7FFFFF;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00 | (man ? 0x200 : 0));
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 0x1F) return static_cast<uint16_t>(sign | 0x7C00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    man |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = static_cast<uint32_t>(e) << 10 | man >> 13, rem = man & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  return bits_as<float>(bits);
}

uint16_t float_to_bf16(float f) {
  uint32_t x = bits_as<uint32_t>(f);
  if ((x & 0x7F800000) == 0x7F800000 && (x & 0x7FFFFF))
    return static_cast<uint16_t>(x >> 16 | 0x40);
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

bool is_int_dtype(DType t) {
  return t == DType::Bool || t == DType::Int8 || t == DType::UInt8 || t == DType::Int16 ||
         t == DType::Int32 || t == DType::Int64;
}
bool is_float_dtype(DType t) {
  return t == DType::Float16 || t == DType::BFloat16 || t == DType::Float32 || t == DType::Float64;
}

// A number as both an exact integer (when integral) and a double.

int64_t saturate(double v, int64_t lo, int64_t hi) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<double>(lo)) return lo;
  if (v >= static_cast<double>(hi)) return hi;
  return static_cast<int64_t>(v);
}

// Converts `n` elements; integer -> integer wraps like static_cast,
// float -> integer truncates toward zero with saturation (NaN -> 0).
void convert(const void* src, DType st, void* dst, DType dt, int64_t n) {
  auto load_i = [&](int64_t k) -> int64_t {
    switch (st) {
      case DType::Bool: return static_cast<const uint8_t*>(src)[k] != 0;
      case DType::Int8: return static_cast<const int8_t*>(src)[k];
      case DType::UInt8: return static_cast<const uint8_t*>(src)[k];
      case DType::Int16: return static_cast<const int16_t*>(src)[k];
      case DType::Int32: return static_cast<const int32_t*>(src)[k];
      default: return static_cast<const int64_t*>(src)[k];
    }
  };
  auto load_f = [&](int64_t k) -> double {
    switch (st) {
      case DType::Float16: return half_to_float(static_cast<const uint16_t*>(src)[k]);
      case DType::BFloat16: return bf16_to_float(static_cast<const uint16_t*>(src)[k]);
      case DType::Float32: return static_cast<const float*>(src)[k];
      default: return static_cast<const double*>(src)[k];
    }
  };
  bool src_int = is_int_dtype(st);
  auto store = [&](int64_t k, int64_t iv, double fv) {
    switch (dt) {
      case DType::Bool:
        static_cast<uint8_t*>(dst)[k] = src_int ? iv != 0 : fv != 0;
        break;
#define PIF_STORE_INT(D, T)                                                                        \
  case D:                                                                                          \
    static_cast<T*>(dst)[k] = src_int ? static_cast<T>(iv)                                         \
                                      : static_cast<T>(saturate(fv, std::numeric_limits<T>::min(), \
                                                                std::numeric_limits<T>::max()));   \
    break;
        PIF_STORE_INT(DType::Int8, int8_t)
        PIF_STORE_INT(DType::UInt8, uint8_t)
        PIF_STORE_INT(DType::Int16, int16_t)
        PIF_STORE_INT(DType::Int32, int32_t)
        PIF_STORE_INT(DType::Int64, int64_t)
#undef PIF_STORE_INT
      case DType::Float16:
        static_cast<uint16_t*>(dst)[k] =
            float_to_half(static_cast<float>(src_int ? static_cast<double>(iv) : fv));
        break;
      case DType::BFloat16:
        static_cast<uint16_t*>(dst)[k] =
            float_to_bf16(static_cast<float>(src_int ? static_cast<double>(iv) : fv));
        break;
      case DType::Float32:
        static_cast<float*>(dst)[k] = src_int ? static_cast<float>(iv) : static_cast<float>(fv);
        break;
      case DType::Float64:
        static_cast<double*>(dst)[k] = src_int ? static_cast<double>(iv) : fv;
        break;
      default: break;
    }
  };
  if (src_int) {
    for (int64_t k = 0; k < n; ++k) store(k, load_i(k), 0);
  } else {
    for (int64_t k = 0; k < n; ++k) store(k, 0, load_f(k));
  }
}

bool castable(DType t) { return is_int_dtype(t) || is_float_dtype(t); }

// Fills `t` with `v` converted to its dtype.
void fill(RTensor* t, const Num& v) {
  int64_t n = t->numel();
  if (n == 0) return;
  size_t es = dtype_size(t->dtype);
  std::vector<uint8_t> one(es);
  if (v.is_int)
    convert(&v.i, DType::Int64, one.data(), t->dtype, 1);
  else
    convert(&v.d, DType::Float64, one.data(), t->dtype, 1);
  uint8_t* p = t->ptr<uint8_t>();
  if (es == 4) {
    uint32_t w;
    std::memcpy(&w, one.data(), 4);
    std::fill(reinterpret_cast<uint32_t*>(p), reinterpret_cast<uint32_t*>(p) + n, w);
  } else {
    for (int64_t k = 0; k < n; ++k) std::memcpy(p + k * es, one.data(), es);
  }
}

Num read_num(const RTensor& t) {
  if (t.numel() < 1) op_fail("expected a scalar tensor, got an empty one");
  if (is_int_dtype(t.dtype)) {
    Num n;
    convert(t.data, t.dtype, &n.i, DType::Int64, 1);
    n.is_int = true;
    n.d = static_cast<double>(n.i);
    return n;
  }
  if (!is_float_dtype(t.dtype))
    op_fail(std::string("unsupported value dtype ") + dtype_name(t.dtype));
  double d;
  convert(t.data, t.dtype, &d, DType::Float64, 1);
  return num_from_double(d);
}

// DType attribute: PIR a_dtype string, or a legacy VarType code.
DType attr_dtype(const PrepareCtx& c, const std::string& name, DType def) {
  const Attr* a = c.node.source->attr(name);
  if (!a) return def;
  DType t;
  int64_t code;
  if (a->kind == Attr::Kind::DType || a->kind == Attr::Kind::String) {
    if (!dtype_from_name(a->s, &t)) op_fail("unknown dtype '" + a->s + "'");
    return t;
  }
  if (a->as_int(&code)) {
    if (code == -1) return DType::Undefined;
    if (!dtype_from_legacy(code, &t)) op_fail("unknown dtype code " + std::to_string(code));
    return t;
  }
  op_fail("attribute '" + name + "' is not a dtype");
}

// ------------------------------------------------------------ fill_constant / full

struct FillAttr {
  DType dtype;
  std::vector<int64_t> shape;
  Num value;
};

std::shared_ptr<const void> prep_fill(const PrepareCtx& c) {
  FillAttr a;
  a.dtype = attr_dtype(c, "dtype", DType::Float32);
  if (a.dtype == DType::Undefined) a.dtype = DType::Float32;
  if (!castable(a.dtype)) op_fail(std::string("unsupported fill dtype ") + dtype_name(a.dtype));
  a.shape = c.attr.ints("shape", {});
  a.value = attr_num(*c.node.source, "value", 0.0);
  const Attr* sv = c.node.source->attr("str_value");
  if (sv && sv->kind == Attr::Kind::String && !sv->s.empty()) {
    if (!parse_str_num(sv->s, &a.value)) op_fail("str_value '" + sv->s + "' is not a number");
  }
  return std::make_shared<const FillAttr>(a);
}

// fill_constant canonical inputs: ValueTensor, ShapeTensor, ShapeTensorList.
// pd_op.full_with_tensor: (value, shape).
std::vector<int64_t> fill_shape(const RunCtx& c) {
  std::vector<int64_t> s;
  if (slot_given(c, 2))
    s = slot_ints(c, 2);
  else if (slot_given(c, 1))
    s = slot_ints(c, 1);
  else
    s = c.node.attrs<FillAttr>().shape;
  for (int64_t d : s)
    if (d < 0) op_fail("fill: negative dimension in shape " + shape_str(s));
  return s;
}

void infer_fill(RunCtx& c) {
  set_output(c.output(0), c.node.attrs<FillAttr>().dtype, fill_shape(c));
}

void run_fill(RunCtx& c) {
  Num v = c.node.attrs<FillAttr>().value;
  if (c.input(0)) v = read_num(*c.input(0));
  fill(c.output(0), v);
}

// pd_op.full_int_array: attr value (ints), dtype.
struct IntArrayAttr {
  DType dtype;
  std::vector<int64_t> values;
};

std::shared_ptr<const void> prep_full_int_array(const PrepareCtx& c) {
  DType t = attr_dtype(c, "dtype", DType::Int64);
  if (t == DType::Undefined) t = DType::Int64;
  if (!castable(t)) op_fail(std::string("unsupported dtype ") + dtype_name(t));
  return make_state<IntArrayAttr>(t, c.attr.ints("value", {}));
}

void infer_full_int_array(RunCtx& c) {
  const auto& a = c.node.attrs<IntArrayAttr>();
  set_output(c.output(0), a.dtype, {static_cast<int64_t>(a.values.size())});
}

void run_full_int_array(RunCtx& c) {
  const auto& a = c.node.attrs<IntArrayAttr>();
  convert(a.values.data(), DType::Int64, c.output(0)->data, a.dtype,
          static_cast<int64_t>(a.values.size()));
}

// full_like / fill_any_like / fill_zeros_like: canonical (X, value tensor).
std::shared_ptr<const void> prep_full_like(const PrepareCtx& c) {
  FillAttr a;
  a.dtype = attr_dtype(c, "dtype", DType::Undefined);
  a.value = c.node.source->type == "fill_zeros_like" ? num_from_double(0)
                                                     : attr_num(*c.node.source, "value", 0.0);
  if (a.dtype != DType::Undefined && !castable(a.dtype))
    op_fail(std::string("unsupported dtype ") + dtype_name(a.dtype));
  return std::make_shared<const FillAttr>(a);
}

void infer_full_like(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  DType t = c.node.attrs<FillAttr>().dtype;
  if (t == DType::Undefined) t = x.dtype;
  if (!castable(t)) op_fail(std::string("unsupported dtype ") + dtype_name(t));
  set_output(c.output(0), t, x.dims);
}

void run_full_like(RunCtx& c) {
  Num v = c.node.attrs<FillAttr>().value;
  if (c.input(1)) v = read_num(*c.input(1));
  fill(c.output(0), v);
}

// ------------------------------------------------------------ cast

std::shared_ptr<const void> prep_cast(const PrepareCtx& c) {
  DType t = attr_dtype(c, c.attr.has("out_dtype") ? "out_dtype" : "dtype", DType::Undefined);
  if (t == DType::Undefined || !castable(t)) op_fail("cast: unsupported target dtype");
  return make_state<DTypeAttr>(t);
}

void infer_cast(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  if (!castable(x.dtype))
    op_fail(std::string("cast: unsupported input dtype ") + dtype_name(x.dtype));
  set_output(c.output(0), c.node.attrs<DTypeAttr>().dtype, x.dims);
}

void run_cast(RunCtx& c) {
  const RTensor& x = *c.input(0);
  RTensor* y = c.output(0);
  if (x.dtype == y->dtype) {
    copy_if_needed(x, y);
    return;
  }
  int64_t n = x.numel();
  size_t si = dtype_size(x.dtype), so = dtype_size(y->dtype);
  const int64_t chunk = 1 << 14;
  int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nchunks > 4)
  for (int64_t b = 0; b < nchunks; ++b) {
    int64_t s = b * chunk, len = std::min(chunk, n - s);
    convert(x.ptr<uint8_t>() + s * si, x.dtype, y->ptr<uint8_t>() + s * so, y->dtype, len);
  }
}

}  // namespace

void register_fill_ops(std::vector<OpDef>* t) {
  t->push_back(def("fill_constant", {"fill_constant", "pd_op.full", "pd_op.full_"},
                   {"ValueTensor", "ShapeTensor", "ShapeTensorList*"}, {"Out"}, prep_fill,
                   infer_fill, run_fill, {-1, -1, -1}));
  t->push_back(def("full_with_tensor", {"pd_op.full_with_tensor"}, {"", "", ""}, {"Out"}, prep_fill,
                   infer_fill, run_fill, {0, 1, -1}));
  t->push_back(def("full_int_array", {"pd_op.full_int_array"}, {}, {"Out"}, prep_full_int_array,
                   infer_full_int_array, run_full_int_array));
  t->push_back(def("full_like", {"fill_any_like", "fill_zeros_like", "pd_op.full_like"}, {"X", ""},
                   {"Out"}, prep_full_like, infer_full_like, run_full_like));
  t->push_back(def("cast", {"cast", "pd_op.cast", "pd_op.cast_"}, {"X"}, {"Out"}, prep_cast,
                   infer_cast, run_cast));
}

}  // namespace pif
