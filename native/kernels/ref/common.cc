#include "kernels/ref/common.h"

#include <algorithm>
#include <string>

namespace pif {

int64_t norm_axis(int64_t axis, int64_t rank, const char* what) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= (rank == 0 ? 1 : rank)) {
    op_fail(std::string(what) + " " + std::to_string(axis) + " is out of range for rank " +
            std::to_string(rank));
  }
  return a;
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

namespace {

// [n, rows, cols] -> [n, cols, rows], float32.
void transpose_inner(const float* src, float* dst, int64_t n, int64_t rows, int64_t cols) {
#pragma omp parallel for collapse(2) schedule(static) if (n * rows * cols > (1 << 16))
  for (int64_t b = 0; b < n; ++b)
    for (int64_t j = 0; j < cols; ++j) {
      const float* s = src + b * rows * cols + j;
      float* d = dst + (b * cols + j) * rows;
      for (int64_t i = 0; i < rows; ++i) d[i] = s[i * cols];
    }
}

}  // namespace

void nhwc_to_nchw(const float* src, float* dst, int64_t n, int64_t c, int64_t hw) {
  transpose_inner(src, dst, n, hw, c);
}

void nchw_to_nhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t hw) {
  transpose_inner(src, dst, n, c, hw);
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
