// ONNX exporter, encoding: dtype codes, TensorProto / AttributeProto bytes and the numeric
// conversions of constants (scalar bytes, tensor values as ints / doubles).
#include <cstring>

#include "common/error.h"
#include "export/onnx_internal.h"

namespace pif {
namespace onnx {

// ONNX TensorProto.DataType codes.
int onnx_dtype(DType t) {
  switch (t) {
    case DType::Float32: return 1;
    case DType::UInt8: return 2;
    case DType::Int8: return 3;
    case DType::Int16: return 5;
    case DType::Int32: return 6;
    case DType::Int64: return 7;
    case DType::Bool: return 9;
    case DType::Float16: return 10;
    case DType::Float64: return 11;
    case DType::Complex64: return 14;
    case DType::Complex128: return 15;
    case DType::BFloat16: return 16;
    case DType::Float8E4M3FN: return 17;
    case DType::Float8E5M2: return 19;
    default: return 0;
  }
}

bool is_float(DType t) {
  return t == DType::Float32 || t == DType::Float64 || t == DType::Float16 || t == DType::BFloat16;
}
bool is_int(DType t) {
  return t == DType::Int8 || t == DType::UInt8 || t == DType::Int16 || t == DType::Int32 ||
         t == DType::Int64;
}

// ---------------------------------------------------------------- protobuf

std::string tensor_proto(const std::string& name, DType dt, const std::vector<int64_t>& dims,
                         const void* data, size_t nbytes) {
  std::string s;
  Writer w(&s);
  for (int64_t d : dims) w.int_field(1, d);
  w.int_field(2, onnx_dtype(dt));
  if (!name.empty()) w.bytes_field(8, name);
  w.bytes_field(9, std::string(static_cast<const char*>(data), nbytes));
  return s;
}

namespace {
// An AttributeProto: name (1), type (20), then the payload `put` writes.
template <typename F>
OA attr(const std::string& name, int type, F put) {
  OA a;
  Writer w(&a.bytes);
  w.bytes_field(1, name);
  w.int_field(20, type);
  put(w);
  return a;
}
}  // namespace

OA a_i(const std::string& name, int64_t v) {
  return attr(name, 2, [&](Writer& w) { w.int_field(3, v); });
}
OA a_f(const std::string& name, double v) {
  return attr(name, 1, [&](Writer& w) { w.float_field(2, static_cast<float>(v)); });
}
OA a_s(const std::string& name, const std::string& v) {
  return attr(name, 3, [&](Writer& w) { w.bytes_field(4, v); });
}
OA a_is(const std::string& name, const std::vector<int64_t>& v) {
  return attr(name, 7, [&](Writer& w) {
    for (int64_t x : v) w.int_field(8, x);
  });
}
OA a_t(const std::string& name, const std::string& tensor) {
  return attr(name, 4, [&](Writer& w) { w.bytes_field(5, tensor); });
}

// ---------------------------------------------------------------- numbers

// Bytes of one element of `dt` holding `v` (integers exact when v.is_int).
std::vector<uint8_t> scalar_bytes(DType dt, const Num& v) {
  std::vector<uint8_t> b(dtype_size(dt));
  auto put = [&](auto x) { std::memcpy(b.data(), &x, sizeof(x)); };
  switch (dt) {
    case DType::Float32: put(static_cast<float>(v.d)); break;
    case DType::Float64: put(v.d); break;
    case DType::Int8: put(static_cast<int8_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::UInt8: put(static_cast<uint8_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Int16: put(static_cast<int16_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Int32: put(static_cast<int32_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Int64: put(static_cast<int64_t>(v.is_int ? v.i : static_cast<int64_t>(v.d))); break;
    case DType::Bool: put(static_cast<uint8_t>(v.d != 0 ? 1 : 0)); break;
    case DType::Float16: {
      // Round-to-nearest float -> half (finite values; inf/nan kept).
      float f = static_cast<float>(v.d);
      uint32_t x;
      std::memcpy(&x, &f, 4);
      uint32_t sign = (x >> 16) & 0x8000u;
      int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
      uint32_t mant = x & 0x7fffffu;
      uint16_t h;
      if (((x >> 23) & 0xff) == 0xff)
        h = static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
      else if (exp >= 31)
        h = static_cast<uint16_t>(sign | 0x7c00u);
      else if (exp <= 0) {
        if (exp < -10)
          h = static_cast<uint16_t>(sign);
        else {
          mant |= 0x800000u;
          uint32_t shift = static_cast<uint32_t>(14 - exp);
          uint32_t hm = mant >> shift;
          if ((mant >> (shift - 1)) & 1u) ++hm;
          h = static_cast<uint16_t>(sign | hm);
        }
      } else {
        uint32_t hm = mant >> 13;
        uint32_t r = static_cast<uint32_t>(sign) | (static_cast<uint32_t>(exp) << 10) | hm;
        if (mant & 0x1000u) ++r;
        h = static_cast<uint16_t>(r);
      }
      put(h);
      break;
    }
    case DType::BFloat16: {
      float f = static_cast<float>(v.d);
      uint32_t x;
      std::memcpy(&x, &f, 4);
      x += 0x7fffu + ((x >> 16) & 1u);
      put(static_cast<uint16_t>(x >> 16));
      break;
    }
    default:
      throw OpError(code::kUnsupported, std::string("no constant of dtype ") + dtype_name(dt));
  }
  return b;
}

// Legacy / PIR dtype attribute (mirrors shape_ops.cc attr_dtype).
DType attr_dtype(const Op& op, const std::string& name, DType def) {
  const Attr* a = op.attr(name);
  if (!a) return def;
  DType t;
  int64_t code;
  if (a->kind == Attr::Kind::DType || a->kind == Attr::Kind::String) {
    if (!dtype_from_name(a->s, &t)) throw OpError(code::kFormat, "unknown dtype '" + a->s + "'");
    return t;
  }
  if (a->as_int(&code)) {
    if (code == -1) return DType::Undefined;
    if (!dtype_from_legacy(code, &t))
      throw OpError(code::kFormat, "unknown dtype code " + std::to_string(code));
    return t;
  }
  throw OpError(code::kFormat, "attribute '" + name + "' is not a dtype");
}

// Values of an integer / float tensor as int64 (false for other dtypes).
bool tensor_ints(const Tensor& t, std::vector<int64_t>* out) {
  int64_t n = t.numel();
  out->assign(static_cast<size_t>(n), 0);
  const uint8_t* p = t.data();
  if (n && !p) return false;
  for (int64_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::Int64: {
        int64_t v;
        std::memcpy(&v, p + i * 8, 8);
        (*out)[i] = v;
        break;
      }
      case DType::Int32: {
        int32_t v;
        std::memcpy(&v, p + i * 4, 4);
        (*out)[i] = v;
        break;
      }
      case DType::Int16: {
        int16_t v;
        std::memcpy(&v, p + i * 2, 2);
        (*out)[i] = v;
        break;
      }
      case DType::Int8: (*out)[i] = static_cast<int8_t>(p[i]); break;
      case DType::UInt8:
      case DType::Bool: (*out)[i] = p[i]; break;
      default: return false;
    }
  }
  return true;
}

bool tensor_doubles(const Tensor& t, std::vector<double>* out) {
  int64_t n = t.numel();
  const uint8_t* p = t.data();
  if (n && !p) return false;
  out->assign(static_cast<size_t>(n), 0);
  if (t.dtype == DType::Float32) {
    for (int64_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, p + i * 4, 4);
      (*out)[i] = v;
    }
    return true;
  }
  if (t.dtype == DType::Float64) {
    for (int64_t i = 0; i < n; ++i) std::memcpy(&(*out)[i], p + i * 8, 8);
    return true;
  }
  std::vector<int64_t> iv;
  if (!tensor_ints(t, &iv)) return false;
  for (int64_t i = 0; i < n; ++i) (*out)[i] = static_cast<double>(iv[i]);
  return true;
}

int64_t tensor_numel(const std::vector<int64_t>& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

}  // namespace onnx
}  // namespace pif
