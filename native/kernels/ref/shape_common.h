// Shared pieces of the shape and data-movement families (shape_ops.cc,
// slice_ops.cc, fill_ops.cc).
//
// These ops carry shape arithmetic as well as activations, so every op moves
// elements of any dtype (by element size); only fill and cast look at values.
//
// Operands that PIR turns into tensors (reshape's shape, slice's starts/ends,
// concat's axis, ...) are read at run time from the input tensors: a folded
// constant is an input like any other, and dynamic ones (shape64 -> slice ->
// stack) work the same way. A PIR operand that is a builtin.combine of
// tensors arrives as several values in one slot; their values concatenate.
//
// 0-D results: PIR programs (Paddle 3) produce 0-D tensors where an op removes
// every dimension (slice with decrease_axis of a 1-D shape, squeeze of [1]).
// Legacy programs were written by Paddle versions that produced [1] there
// (<= 2.5, FLAGS_set_to_1d) or 0-D (>= 2.6); the declared VarDesc dims tell
// which, and [1] is used when the declaration does not say rank 0.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "graph/op_states.h"
#include "kernels/ref/common.h"

namespace pif {
namespace shape_kernels {

inline bool slot_given(const RunCtx& c, size_t slot) {
  return slot < c.in.size() && !c.in[slot].empty();
}

// All integer values of the tensors in `slot`, concatenated.
inline std::vector<int64_t> slot_ints(const RunCtx& c, size_t slot) {
  std::vector<int64_t> v;
  if (slot >= c.in.size()) return v;
  for (const RTensor* t : c.in[slot]) {
    if (!t || t->numel() == 0) continue;
    std::vector<int64_t> part = read_ints(*t);
    v.insert(v.end(), part.begin(), part.end());
  }
  return v;
}

inline int64_t prod(const std::vector<int64_t>& d, size_t b = 0, size_t e = SIZE_MAX) {
  int64_t n = 1;
  for (size_t i = b; i < e && i < d.size(); ++i) n *= d[i];
  return n;
}

inline void copy_if_needed(const RTensor& in, RTensor* out) {
  if (out->data != in.data && out->nbytes) std::memcpy(out->data, in.data, out->nbytes);
}

inline size_t esize_of(const RTensor& t) {
  size_t s = dtype_size(t.dtype);
  if (!s) op_fail(std::string("unsupported dtype ") + dtype_name(t.dtype));
  return s;
}

// ------------------------------------------------------------ strided copy
// Copies an N-D strided view of `in` into the contiguous `out`.
// Axis k: output size od[k], input offset start st[k] (elements) and input
// stride is[k] (elements, may be 0 for broadcasting or negative).
struct View {
  std::vector<int64_t> od, is;
  int64_t base = 0;
};

// Drops unit output axes and merges axes that are contiguous with each other.
inline View simplify(View v) {
  View r;
  r.base = v.base;
  for (size_t k = 0; k < v.od.size(); ++k) {
    if (v.od[k] == 1) continue;
    if (!r.od.empty() && r.is.back() == v.is[k] * v.od[k]) {
      r.od.back() *= v.od[k];
      r.is.back() = v.is[k];
    } else {
      r.od.push_back(v.od[k]);
      r.is.push_back(v.is[k]);
    }
  }
  return r;
}

template <typename T>
inline void strided_copy_t(const T* in, T* out, const View& v) {
  size_t r = v.od.size();
  if (r == 0) {
    out[0] = in[v.base];
    return;
  }
  int64_t n = v.od[r - 1], s = v.is[r - 1];
  int64_t rows = 1;
  for (size_t k = 0; k + 1 < r; ++k) rows *= v.od[k];
  int64_t total = rows * n;
#pragma omp parallel for schedule(static) if (total > (1 << 16) && rows > 1)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t rem = row, off = v.base;
    for (size_t k = r - 1; k-- > 0;) {
      off += (rem % v.od[k]) * v.is[k];
      rem /= v.od[k];
    }
    const T* src = in + off;
    T* dst = out + row * n;
    if (s == 1) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
    } else if (s == 0) {
      T x = src[0];
      for (int64_t i = 0; i < n; ++i) dst[i] = x;
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i * s];
    }
  }
}

struct B16 {
  uint64_t a, b;
};

inline void strided_copy(const void* in, void* out, size_t esize, const View& view) {
  View v = simplify(view);
  for (int64_t d : v.od)
    if (d == 0) return;
  switch (esize) {
    case 1: strided_copy_t(static_cast<const uint8_t*>(in), static_cast<uint8_t*>(out), v); break;
    case 2: strided_copy_t(static_cast<const uint16_t*>(in), static_cast<uint16_t*>(out), v); break;
    case 4: strided_copy_t(static_cast<const uint32_t*>(in), static_cast<uint32_t*>(out), v); break;
    case 8: strided_copy_t(static_cast<const uint64_t*>(in), static_cast<uint64_t*>(out), v); break;
    case 16: strided_copy_t(static_cast<const B16*>(in), static_cast<B16*>(out), v); break;
    default: op_fail("unsupported element size " + std::to_string(esize));
  }
}

inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size());
  int64_t p = 1;
  for (size_t k = d.size(); k-- > 0;) {
    s[k] = p;
    p *= d[k];
  }
  return s;
}

// Output dtype of shape / cast.
struct DTypeAttr {
  DType dtype;
};

// An OpDef with the PIR operand map and the aliasing flag.
inline OpDef def(const char* name, std::vector<std::string> types, std::vector<std::string> ins,
                 std::vector<std::string> outs, PrepareFn prep, InferFn inf, RunFn run,
                 std::vector<int> pir = {}, bool alias = false) {
  OpDef d = make_op_def(name, std::move(types), std::move(ins), std::move(outs), prep, inf, run);
  d.pir_inputs = std::move(pir);
  d.alias_input0 = alias;
  return d;
}

}  // namespace shape_kernels
}  // namespace pif
