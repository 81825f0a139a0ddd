#include "kernels/ref/common.h"

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
