#include "kernels/ref/common.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace pif {

int64_t norm_axis(int64_t axis, int64_t rank, const char* what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= (rank == 0 ? 1 : rank)) {
    op_fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
            std::to_string(rank));
  }
  return a;
}

const RTensor& need_input(const RunCtx& c, size_t slot, const char* name) {
  const RTensor* t = c.input(slot);
  if (!t) op_fail(std::string("missing input ") + name);
  return *t;
}

std::vector<int64_t> read_ints(const RTensor& t) {
  int64_t n = t.numel();
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (t.dtype == DType::Int64) {
    if (n) std::memcpy(v.data(), t.data, static_cast<size_t>(n) * 8);
  } else if (t.dtype == DType::Int32) {
    const int32_t* p = t.ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  } else {
    op_fail(std::string("expected an int32/int64 tensor, got ") + dtype_name(t.dtype));
  }
  return v;
}

double read_scalar(const RTensor& t) {
  if (t.numel() < 1) op_fail("expected a scalar tensor, got an empty one");
  switch (t.dtype) {
    case DType::Float32: return t.ptr<float>()[0];
    case DType::Float64: return t.ptr<double>()[0];
    case DType::Int32: return t.ptr<int32_t>()[0];
    case DType::Int64: return static_cast<double>(t.ptr<int64_t>()[0]);
    default: op_fail(std::string("unsupported scalar dtype ") + dtype_name(t.dtype));
  }
}

void expect_f32(const RTensor& t, const char* name) {
  if (t.dtype != DType::Float32) {
    op_fail(std::string(name) + " must be float32, got " + dtype_name(t.dtype));
  }
}

bool layout_is_nhwc(const AttrReader& a, const char* name) {
  std::string f = a.s(name, "NCHW");
  if (f == "NCHW" || f == "AnyLayout" || f.empty()) return false;
  if (f == "NHWC") return true;
  op_fail(std::string("unsupported ") + name + " '" + f + "'");
}

void dims_nchw(const std::vector<int64_t>& d, bool nhwc, int64_t* n, int64_t* c, int64_t* h,
               int64_t* w) {
  *n = d[0];
  *c = nhwc ? d[3] : d[1];
  *h = nhwc ? d[1] : d[2];
  *w = nhwc ? d[2] : d[3];
}

void nhwc_to_nchw(const float* src, float* dst, int64_t n, int64_t c, int64_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > (1 << 16))
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = src + b * hw * c + ch;
      float* d = dst + (b * c + ch) * hw;
      for (int64_t i = 0; i < hw; ++i) d[i] = s[i * c];
    }
}

void nchw_to_nhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > (1 << 16))
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < hw; ++i) {
      const float* s = src + b * c * hw + i;
      float* d = dst + (b * hw + i) * c;
      for (int64_t ch = 0; ch < c; ++ch) d[ch] = s[ch * hw];
    }
}

Num num_from_double(double d) {
  Num n;
  n.d = d;
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
    n.is_int = true;
    n.i = static_cast<int64_t>(d);
  }
  return n;
}

Num attr_num(const Op& op, const std::string& name, double def) {
  const Attr* a = op.attr(name);
  if (!a) return num_from_double(def);
  if (a->kind == Attr::Kind::Scalar && !a->scalars.empty()) {
    const ScalarAttr& s = a->scalars[0];
    if (s.type == 1) return num_from_double(s.b ? 1 : 0);
    if (s.type == 2) {
      Num n;
      n.is_int = true;
      n.i = s.i;
      n.d = static_cast<double>(s.i);
      return n;
    }
    return num_from_double(s.type == 4 ? s.c_real : s.r);
  }
  if (a->is_int() || a->kind == Attr::Kind::Bool) {
    Num n;
    a->as_int(&n.i);
    n.is_int = true;
    n.d = static_cast<double>(n.i);
    return n;
  }
  double d;
  if (a->as_double(&d)) return num_from_double(d);
  op_fail("attribute '" + name + "' is not a number");
}

bool parse_str_num(const std::string& s, Num* out) {
  if (s.empty()) return false;
  const char* b = s.c_str();
  char* e = nullptr;
  errno = 0;
  long long i = std::strtoll(b, &e, 10);
  if (e && *e == 0 && errno == 0) {
    out->is_int = true;
    out->i = i;
    out->d = static_cast<double>(i);
    return true;
  }
  double d = std::strtod(b, &e);
  if (!e || *e != 0) return false;
  *out = num_from_double(d);
  return true;
}

std::vector<int64_t> broadcast_shapes(const std::vector<int64_t>& a,
                                      const std::vector<int64_t>& b) {
  size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1) {
      op_fail("shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace pif
