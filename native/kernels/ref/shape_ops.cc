// Shape and data-movement ops: reshape, transpose, flatten, squeeze,
// unsqueeze, concat, split, slice, strided_slice, shape, fill_constant / full,
// full_int_array, full_like, cast, expand, tile, stack, gather.
//
// These carry shape arithmetic as well as activations, so every op moves
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
#include "kernels/registry.h"

namespace pif {
namespace {

bool is_pir(const PrepareCtx& c) { return c.program.format == ProgramFormat::Pir; }

// Whether a result that loses every dimension should be [1] rather than 0-D
// (see the header comment).
bool rank0_as_1d(const PrepareCtx& c, size_t out_slot = 0) {
  if (is_pir(c)) return false;
  if (out_slot >= c.node.outputs.size() || c.node.outputs[out_slot].empty()) return true;
  ValueId v = c.node.outputs[out_slot][0];
  if (v == kNoValue) return true;
  const ValueType& t = c.program.values[v].type;
  return !(t.kind == ValueType::Kind::DenseTensor && t.dims.empty());
}

bool slot_given(const RunCtx& c, size_t slot) { return slot < c.in.size() && !c.in[slot].empty(); }

// All integer values of the tensors in `slot`, concatenated.
std::vector<int64_t> slot_ints(const RunCtx& c, size_t slot) {
  std::vector<int64_t> v;
  if (slot >= c.in.size()) return v;
  for (const RTensor* t : c.in[slot]) {
    if (!t || t->numel() == 0) continue;
    std::vector<int64_t> part = read_ints(*t);
    v.insert(v.end(), part.begin(), part.end());
  }
  return v;
}

int64_t prod(const std::vector<int64_t>& d, size_t b = 0, size_t e = SIZE_MAX) {
  int64_t n = 1;
  for (size_t i = b; i < std::min(e, d.size()); ++i) n *= d[i];
  return n;
}

void copy_if_needed(const RTensor& in, RTensor* out) {
  if (out->data != in.data && out->nbytes) std::memcpy(out->data, in.data, out->nbytes);
}

size_t esize_of(const RTensor& t) {
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
View simplify(View v) {
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
void strided_copy_t(const T* in, T* out, const View& v) {
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

void strided_copy(const void* in, void* out, size_t esize, const View& view) {
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

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size());
  int64_t p = 1;
  for (size_t k = d.size(); k-- > 0;) {
    s[k] = p;
    p *= d[k];
  }
  return s;
}

// ------------------------------------------------------------ reshape

struct ShapeAttr {
  std::vector<int64_t> shape;
};

std::shared_ptr<const void> prep_reshape(const PrepareCtx& c) {
  return make_state<ShapeAttr>(c.attr.ints("shape", {}));
}

std::vector<int64_t> resolve_shape(const std::vector<int64_t>& in_dims,
                                   std::vector<int64_t> shape) {
  int64_t numel = prod(in_dims);
  int64_t infer_at = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer_at >= 0) op_fail("reshape: more than one -1 in shape " + shape_str(shape));
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (shape[i] == 0) {
      if (i >= in_dims.size()) {
        op_fail("reshape: 0 at position " + std::to_string(i) + " but the input " +
                shape_str(in_dims) + " has no such dimension");
      }
      shape[i] = in_dims[i];
    }
    if (shape[i] < 0) op_fail("reshape: invalid dimension in shape " + shape_str(shape));
    known *= shape[i];
  }
  if (infer_at >= 0) {
    if (known == 0) {
      if (numel != 0) op_fail("reshape: cannot infer -1 with a zero-size shape");
      shape[infer_at] = 0;
    } else {
      if (numel % known) {
        op_fail("reshape: cannot reshape " + shape_str(in_dims) + " to " + shape_str(shape));
      }
      shape[infer_at] = numel / known;
    }
  } else if (known != numel) {
    op_fail("reshape: cannot reshape " + shape_str(in_dims) + " (" + std::to_string(numel) +
            " elements) to " + shape_str(shape));
  }
  return shape;
}

void infer_reshape(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  std::vector<int64_t> shape;
  if (slot_given(c, 2))
    shape = slot_ints(c, 2);  // ShapeTensor list (legacy)
  else if (slot_given(c, 1))
    shape = slot_ints(c, 1);  // Shape / PIR shape operand
  else
    shape = c.node.attrs<ShapeAttr>().shape;
  set_output(c.output(0), x.dtype, resolve_shape(x.dims, shape));
}

void run_alias(RunCtx& c) { copy_if_needed(*c.input(0), c.output(0)); }

// ------------------------------------------------------------ transpose

std::shared_ptr<const void> prep_transpose(const PrepareCtx& c) {
  return make_state<PermAttr>(c.attr.ints(c.attr.has("perm") ? "perm" : "axis", {}));
}

std::vector<int64_t> norm_perm(const RTensor& x, const std::vector<int64_t>& p) {
  int64_t r = static_cast<int64_t>(x.dims.size());
  if (static_cast<int64_t>(p.size()) != r) {
    op_fail("transpose: perm " + shape_str(p) + " does not match input rank " + std::to_string(r));
  }
  std::vector<int64_t> out(p.size());
  std::vector<bool> seen(p.size(), false);
  for (size_t i = 0; i < p.size(); ++i) {
    int64_t a = norm_axis(p[i], r, "perm axis");
    if (seen[a]) op_fail("transpose: repeated axis in perm " + shape_str(p));
    seen[a] = true;
    out[i] = a;
  }
  return out;
}

void infer_transpose(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  auto p = norm_perm(x, c.node.attrs<PermAttr>().perm);
  std::vector<int64_t> od(p.size());
  for (size_t i = 0; i < p.size(); ++i) od[i] = x.dims[p[i]];
  set_output(c.output(0), x.dtype, od);
}

// Blocked transpose for the case where the input's innermost axis is not the
// output's innermost one.
template <typename T>
void transpose_blocked(const T* in, T* out, const View& v) {
  size_t r = v.od.size();
  size_t j = r;  // output axis whose input stride is 1
  for (size_t k = 0; k < r; ++k)
    if (v.is[k] == 1) j = k;
  std::vector<int64_t> os = contiguous_strides(v.od);
  std::vector<size_t> others;
  for (size_t k = 0; k + 1 < r; ++k)
    if (k != j) others.push_back(k);
  int64_t outer = 1;
  for (size_t k : others) outer *= v.od[k];
  const int64_t nj = v.od[j], nl = v.od[r - 1], sl = v.is[r - 1], oj = os[j];
  constexpr int64_t B = 32;
  const int64_t bj = (nj + B - 1) / B;
  int64_t total = outer * nj * nl;
#pragma omp parallel for schedule(static) if (total > (1 << 15))
  for (int64_t t = 0; t < outer * bj; ++t) {
    int64_t o = t / bj, jb = (t % bj) * B;
    int64_t rem = o, ioff = v.base, ooff = 0;
    for (size_t q = others.size(); q-- > 0;) {
      size_t k = others[q];
      int64_t idx = rem % v.od[k];
      rem /= v.od[k];
      ioff += idx * v.is[k];
      ooff += idx * os[k];
    }
    int64_t je = std::min(nj, jb + B);
    for (int64_t lb = 0; lb < nl; lb += B) {
      int64_t le = std::min(nl, lb + B);
      for (int64_t a = jb; a < je; ++a) {
        T* dst = out + ooff + a * oj;
        const T* src = in + ioff + a;
        for (int64_t b = lb; b < le; ++b) dst[b] = src[b * sl];
      }
    }
  }
}

void run_transpose(RunCtx& c) {
  const RTensor& x = *c.input(0);
  RTensor* y = c.output(0);
  if (y->numel() == 0) return;
  auto p = norm_perm(x, c.node.attrs<PermAttr>().perm);
  std::vector<int64_t> xs = contiguous_strides(x.dims);
  View v;
  for (size_t i = 0; i < p.size(); ++i) {
    v.od.push_back(x.dims[p[i]]);
    v.is.push_back(xs[p[i]]);
  }
  v = simplify(v);
  size_t es = esize_of(x);
  if (v.od.empty() || v.is.back() == 1) {
    strided_copy(x.data, y->data, es, v);
    return;
  }
  switch (es) {
    case 1: transpose_blocked(x.ptr<uint8_t>(), y->ptr<uint8_t>(), v); break;
    case 2: transpose_blocked(x.ptr<uint16_t>(), y->ptr<uint16_t>(), v); break;
    case 4: transpose_blocked(x.ptr<uint32_t>(), y->ptr<uint32_t>(), v); break;
    case 8: transpose_blocked(x.ptr<uint64_t>(), y->ptr<uint64_t>(), v); break;
    default: strided_copy(x.data, y->data, es, v); break;
  }
}

// ------------------------------------------------------------ flatten

struct FlattenAttr {
  int64_t start, stop;  // flatten_contiguous_range; legacy flatten: start = axis
  bool to_2d;           // legacy flatten / flatten2
};

std::shared_ptr<const void> prep_flatten_range(const PrepareCtx& c) {
  return make_state<FlattenAttr>(c.attr.i("start_axis", 1), c.attr.i("stop_axis", -1), false);
}
std::shared_ptr<const void> prep_flatten2(const PrepareCtx& c) {
  return make_state<FlattenAttr>(c.attr.i("axis", 1), int64_t(0), true);
}

void infer_flatten(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  const auto& a = c.node.attrs<FlattenAttr>();
  int64_t r = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> od;
  if (a.to_2d) {  // legacy flatten/flatten2: [prod(:axis), prod(axis:)]
    if (a.start < 0 || a.start > r)
      op_fail("flatten: axis " + std::to_string(a.start) + " out of range");
    od = {prod(x.dims, 0, a.start), prod(x.dims, a.start)};
  } else if (r == 0) {
    od = {1};
  } else {
    int64_t s = norm_axis(a.start, r, "start_axis"), e = norm_axis(a.stop, r, "stop_axis");
    if (s > e) op_fail("flatten: start_axis must not be greater than stop_axis");
    od.assign(x.dims.begin(), x.dims.begin() + s);
    od.push_back(prod(x.dims, s, e + 1));
    od.insert(od.end(), x.dims.begin() + e + 1, x.dims.end());
  }
  set_output(c.output(0), x.dtype, od);
}

// ------------------------------------------------------------ squeeze / unsqueeze

struct AxesAttr {
  std::vector<int64_t> axes;
  bool rank0_1d;
};

std::shared_ptr<const void> prep_axes(const PrepareCtx& c) {
  return make_state<AxesAttr>(c.attr.ints(c.attr.has("axes") ? "axes" : "axis", {}),
                              rank0_as_1d(c));
}

std::vector<int64_t> axes_of(const RunCtx& c) {
  if (slot_given(c, 2)) return slot_ints(c, 2);
  if (slot_given(c, 1)) return slot_ints(c, 1);
  return c.node.attrs<AxesAttr>().axes;
}

void infer_squeeze(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  int64_t r = static_cast<int64_t>(x.dims.size());
  std::vector<int64_t> axes = axes_of(c);
  std::vector<bool> drop(x.dims.size(), false);
  if (axes.empty()) {
    for (int64_t k = 0; k < r; ++k) drop[k] = x.dims[k] == 1;
  } else {
    for (int64_t a : axes) {
      if (r == 0 && (a == 0 || a == -1)) continue;  // squeeze of a 0-D tensor
      int64_t k = norm_axis(a, r, "squeeze axis");
      if (x.dims[k] == 1) drop[k] = true;  // non-unit axes are kept (Paddle)
    }
  }
  std::vector<int64_t> od;
  for (int64_t k = 0; k < r; ++k)
    if (!drop[k]) od.push_back(x.dims[k]);
  if (od.empty() && r > 0 && c.node.attrs<AxesAttr>().rank0_1d) od.push_back(1);
  set_output(c.output(0), x.dtype, od);
}

void infer_unsqueeze(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  std::vector<int64_t> axes = axes_of(c);
  // Paddle's rule: axes are inserted one after another; a negative axis
  // counts from the end of the result so far.
  int64_t cur = static_cast<int64_t>(x.dims.size());
  int64_t total = cur + static_cast<int64_t>(axes.size());
  std::vector<int> mark(static_cast<size_t>(total + 1), 0);  // 1 = inserted axis
  for (int64_t a : axes) {
    int64_t p = a < 0 ? a + cur + 1 : a;
    if (p < 0 || p > cur) op_fail("unsqueeze: axis " + std::to_string(a) + " out of range");
    for (int64_t i = cur; i >= p; --i) {
      if (mark[i] == 1) {
        mark[i + 1] = 1;
        mark[i] = 0;
      }
    }
    mark[p] = 1;
    ++cur;
  }
  std::vector<int64_t> od;
  size_t k = 0;
  for (int64_t i = 0; i < total; ++i) od.push_back(mark[i] ? 1 : x.dims[k++]);
  set_output(c.output(0), x.dtype, od);
}

// ------------------------------------------------------------ concat / stack

struct AxisAttr {
  int64_t axis;
};

std::shared_ptr<const void> prep_axis0(const PrepareCtx& c) {
  return make_state<AxisAttr>(c.attr.i("axis", 0));
}

int64_t concat_axis(const RunCtx& c, size_t slot, int64_t rank) {
  int64_t axis = c.node.attrs<AxisAttr>().axis;
  if (slot_given(c, slot)) {
    auto v = slot_ints(c, slot);
    if (v.size() != 1) op_fail("axis tensor must hold one value");
    axis = v[0];
  }
  return norm_axis(axis, rank, "axis");
}

void infer_concat(RunCtx& c) {
  if (!slot_given(c, 0)) op_fail("concat needs at least one input");
  const RTensor& x0 = *c.input(0, 0);
  int64_t r = static_cast<int64_t>(x0.dims.size());
  if (r == 0) op_fail("concat: 0-D inputs cannot be concatenated");
  int64_t axis = concat_axis(c, 1, r);
  std::vector<int64_t> od = x0.dims;
  od[axis] = 0;
  for (const RTensor* t : c.in[0]) {
    if (t->dtype != x0.dtype) op_fail("concat: inputs have different dtypes");
    if (t->dims.size() != x0.dims.size()) op_fail("concat: inputs have different ranks");
    for (int64_t k = 0; k < r; ++k) {
      if (k != axis && t->dims[k] != x0.dims[k]) {
        op_fail("concat: shapes " + shape_str(x0.dims) + " and " + shape_str(t->dims) +
                " differ outside axis " + std::to_string(axis));
      }
    }
    od[axis] += t->dims[axis];
  }
  set_output(c.output(0), x0.dtype, od);
}

// Copies inputs side by side: out[o, :] = concat_i(in_i[o, 0:chunk_i]).
void join(const std::vector<const RTensor*>& ins, const std::vector<int64_t>& chunks, int64_t outer,
          size_t es, RTensor* out) {
  int64_t row = 0;
  for (int64_t ch : chunks) row += ch;
  uint8_t* o = out->ptr<uint8_t>();
  int64_t total = outer * row;
#pragma omp parallel for schedule(static) if (total > (1 << 16) && outer > 1)
  for (int64_t i = 0; i < outer; ++i) {
    int64_t off = 0;
    for (size_t k = 0; k < ins.size(); ++k) {
      size_t n = static_cast<size_t>(chunks[k]) * es;
      if (n) std::memcpy(o + (i * row + off) * es, ins[k]->ptr<uint8_t>() + i * chunks[k] * es, n);
      off += chunks[k];
    }
  }
}

void run_concat(RunCtx& c) {
  RTensor* y = c.output(0);
  if (y->numel() == 0) return;
  const RTensor& x0 = *c.input(0, 0);
  int64_t axis = concat_axis(c, 1, static_cast<int64_t>(x0.dims.size()));
  int64_t outer = prod(x0.dims, 0, axis);
  std::vector<int64_t> chunks;
  for (const RTensor* t : c.in[0]) chunks.push_back(prod(t->dims, axis));
  join(c.in[0], chunks, outer, esize_of(x0), y);
}

void infer_stack(RunCtx& c) {
  if (!slot_given(c, 0)) op_fail("stack needs at least one input");
  const RTensor& x0 = *c.input(0, 0);
  int64_t r = static_cast<int64_t>(x0.dims.size());
  int64_t axis = norm_axis(c.node.attrs<AxisAttr>().axis, r + 1, "axis");
  for (const RTensor* t : c.in[0]) {
    if (t->dtype != x0.dtype || t->dims != x0.dims) {
      op_fail("stack: inputs differ in dtype or shape (" + shape_str(x0.dims) + " vs " +
              shape_str(t->dims) + ")");
    }
  }
  std::vector<int64_t> od = x0.dims;
  od.insert(od.begin() + axis, static_cast<int64_t>(c.in[0].size()));
  set_output(c.output(0), x0.dtype, od);
}

void run_stack(RunCtx& c) {
  RTensor* y = c.output(0);
  if (y->numel() == 0) return;
  const RTensor& x0 = *c.input(0, 0);
  int64_t r = static_cast<int64_t>(x0.dims.size());
  int64_t axis = norm_axis(c.node.attrs<AxisAttr>().axis, r + 1, "axis");
  std::vector<int64_t> chunks(c.in[0].size(), prod(x0.dims, axis));
  join(c.in[0], chunks, prod(x0.dims, 0, axis), esize_of(x0), y);
}

// ------------------------------------------------------------ split

struct SplitAttr {
  int64_t num;
  std::vector<int64_t> sections;
  int64_t axis;
};

std::shared_ptr<const void> prep_split(const PrepareCtx& c) {
  return make_state<SplitAttr>(c.attr.i("num", 0), c.attr.ints("sections", {}),
                               c.attr.i("axis", 0));
}

// Canonical inputs: X, axis tensor, sections tensors.
void split_plan(const RunCtx& c, int64_t* axis, std::vector<int64_t>* sizes) {
  const RTensor& x = need_input(c, 0, "X");
  const auto& a = c.node.attrs<SplitAttr>();
  int64_t r = static_cast<int64_t>(x.dims.size());
  int64_t ax = a.axis;
  if (slot_given(c, 1)) {
    auto v = slot_ints(c, 1);
    if (v.size() != 1) op_fail("split: axis tensor must hold one value");
    ax = v[0];
  }
  *axis = norm_axis(ax, r, "axis");
  int64_t d = x.dims[*axis];
  size_t nout = c.out.empty() ? 0 : c.out[0].size();
  std::vector<int64_t> sec = slot_given(c, 2) ? slot_ints(c, 2) : a.sections;
  if (sec.empty()) {
    int64_t num = a.num > 0 ? a.num : static_cast<int64_t>(nout);
    if (num <= 0 || d % num) {
      op_fail("split: dimension " + std::to_string(d) + " is not divisible into " +
              std::to_string(num));
    }
    sec.assign(static_cast<size_t>(num), d / num);
  } else {
    int64_t known = 0, infer_at = -1;
    for (size_t i = 0; i < sec.size(); ++i) {
      if (sec[i] == -1) {
        if (infer_at >= 0) op_fail("split: more than one -1 in sections");
        infer_at = static_cast<int64_t>(i);
      } else if (sec[i] < 0) {
        op_fail("split: negative section");
      } else {
        known += sec[i];
      }
    }
    if (infer_at >= 0) {
      if (known > d) op_fail("split: sections exceed the dimension");
      sec[infer_at] = d - known;
    } else if (known != d) {
      op_fail("split: sections " + shape_str(sec) + " do not add up to " + std::to_string(d));
    }
  }
  if (sec.size() != nout) {
    op_fail("split: " + std::to_string(sec.size()) + " sections but " + std::to_string(nout) +
            " outputs");
  }
  *sizes = sec;
}

void infer_split(RunCtx& c) {
  const RTensor& x = *c.input(0);
  int64_t axis;
  std::vector<int64_t> sizes;
  split_plan(c, &axis, &sizes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<int64_t> od = x.dims;
    od[axis] = sizes[i];
    set_output(c.output(0, i), x.dtype, od);
  }
}

void run_split(RunCtx& c) {
  const RTensor& x = *c.input(0);
  int64_t axis;
  std::vector<int64_t> sizes;
  split_plan(c, &axis, &sizes);
  size_t es = esize_of(x);
  int64_t outer = prod(x.dims, 0, axis), inner = prod(x.dims, axis + 1);
  int64_t row = x.dims[axis] * inner, off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    RTensor* y = c.output(0, i);
    int64_t ch = sizes[i] * inner;
    if (y && ch > 0) {
      const uint8_t* src = x.ptr<uint8_t>();
      uint8_t* dst = y->ptr<uint8_t>();
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + o * ch * es, src + (o * row + off) * es, static_cast<size_t>(ch) * es);
    }
    off += ch;
  }
}

// ------------------------------------------------------------ slice / strided_slice

struct SliceAttr {
  std::vector<int64_t> axes, starts, ends, strides, infer_flags, decrease;
  bool strided;
  bool rank0_1d;
};

std::shared_ptr<const void> prep_slice(const PrepareCtx& c) {
  bool strided = c.node.source->type.find("strided_slice") != std::string::npos;
  return make_state<SliceAttr>(c.attr.ints("axes", {}), c.attr.ints("starts", {}),
                               c.attr.ints("ends", {}), c.attr.ints("strides", {}),
                               c.attr.ints("infer_flags", {}), c.attr.ints("decrease_axis", {}),
                               strided, rank0_as_1d(c));
}

// Paddle's slice interval normalisation (phi funcs::normalize_interval):
// returns the first index and the element count along the axis.
void normalize_interval(int64_t st, int64_t ed, int64_t step, int64_t dim, int64_t* first,
                        int64_t* count) {
  *first = 0;
  *count = 0;
  if (dim <= 0) return;
  if (step > 0) {
    if (st >= dim || ed <= -dim) return;
    if (st < 0 && st >= -dim) st += dim;
    st = std::max<int64_t>(st, 0);
    if (ed < 0 && ed >= -dim) ed += dim;
    ed = std::min(ed, dim);
    if (st >= ed) return;
    *first = st;
    *count = (ed - st + step - 1) / step;
  } else {
    if (st <= -dim - 1 || ed >= dim - 1) return;
    if (st < 0 && st >= -dim) st += dim;
    st = std::min(st, dim - 1);
    if (ed < 0 && ed >= -dim) ed += dim;
    ed = std::max(ed, -dim - 1);
    if (ed == -dim - 1) ed = -1;
    if (ed >= st) return;
    *first = st;
    *count = (st - ed + (-step) - 1) / (-step);
  }
}

// Output view of a slice; *dims gets the output dims after decrease_axis.
View slice_plan(const RunCtx& c, std::vector<int64_t>* dims) {
  const RTensor& x = need_input(c, 0, "Input");
  const auto& a = c.node.attrs<SliceAttr>();
  int64_t r = static_cast<int64_t>(x.dims.size());
  // Canonical inputs: slice: Input, StartsTensor, EndsTensor, StartsTensorList,
  // EndsTensorList; strided_slice adds StridesTensor (3) and the lists move
  // to 4, 5, 6.
  size_t s_t = 1, e_t = 2, st_t = a.strided ? 3 : 99;
  size_t s_l = a.strided ? 4 : 3, e_l = a.strided ? 5 : 4, st_l = a.strided ? 6 : 99;
  std::vector<int64_t> starts = slot_given(c, s_t)   ? slot_ints(c, s_t)
                                : slot_given(c, s_l) ? slot_ints(c, s_l)
                                                     : a.starts;
  std::vector<int64_t> ends = slot_given(c, e_t)   ? slot_ints(c, e_t)
                              : slot_given(c, e_l) ? slot_ints(c, e_l)
                                                   : a.ends;
  std::vector<int64_t> steps;
  if (a.strided) {
    steps = slot_given(c, st_t)   ? slot_ints(c, st_t)
            : slot_given(c, st_l) ? slot_ints(c, st_l)
                                  : a.strides;
  } else {
    steps.assign(a.axes.size(), 1);
  }
  if (starts.size() != a.axes.size() || ends.size() != a.axes.size() ||
      steps.size() != a.axes.size()) {
    op_fail("slice: axes " + shape_str(a.axes) + ", starts " + shape_str(starts) + " and ends " +
            shape_str(ends) + " differ in length");
  }
  std::vector<int64_t> xs = contiguous_strides(x.dims);
  View v;
  v.od = x.dims;
  v.is = xs;
  std::vector<bool> sliced(x.dims.size(), false);
  for (size_t i = 0; i < a.axes.size(); ++i) {
    int64_t ax = norm_axis(a.axes[i], r, "slice axis");
    if (sliced[ax]) op_fail("slice: axis " + std::to_string(ax) + " given twice");
    sliced[ax] = true;
    int64_t st = starts[i], ed = ends[i], step = steps[i];
    if (step == 0) op_fail("slice: step must not be 0");
    // x[-1] written with dynamic starts: start -1, end 0, decreased axis.
    bool dec = std::find(a.decrease.begin(), a.decrease.end(), a.axes[i]) != a.decrease.end();
    if (!a.strided && st == -1 && ed == 0 && dec && i < a.infer_flags.size() &&
        a.infer_flags[i] == -1)
      ed = x.dims[ax];
    int64_t first, count;
    normalize_interval(st, ed, step, x.dims[ax], &first, &count);
    v.base += first * xs[ax];
    v.od[ax] = count;
    v.is[ax] = xs[ax] * step;
  }
  std::vector<bool> drop(x.dims.size(), false);
  for (int64_t d : a.decrease) {
    int64_t ax = norm_axis(d, r, "decrease_axis");
    if (v.od[ax] != 1) {
      op_fail("slice: decreased axis " + std::to_string(ax) + " has size " +
              std::to_string(v.od[ax]) + ", not 1");
    }
    drop[ax] = true;
  }
  dims->clear();
  for (int64_t k = 0; k < r; ++k)
    if (!drop[k]) dims->push_back(v.od[k]);
  if (dims->empty() && !a.decrease.empty() && a.rank0_1d) dims->push_back(1);
  return v;
}

void infer_slice(RunCtx& c) {
  std::vector<int64_t> dims;
  slice_plan(c, &dims);
  set_output(c.output(0), c.input(0)->dtype, dims);
}

void run_slice(RunCtx& c) {
  std::vector<int64_t> dims;
  View v = slice_plan(c, &dims);
  if (c.output(0)->numel() == 0) return;
  strided_copy(c.input(0)->data, c.output(0)->data, esize_of(*c.input(0)), v);
}

// ------------------------------------------------------------ shape

struct DTypeAttr {
  DType dtype;
};

std::shared_ptr<const void> prep_shape(const PrepareCtx& c) {
  return make_state<DTypeAttr>(c.node.source->type == "pd_op.shape64" ? DType::Int64
                                                                      : DType::Int32);
}

void infer_shape(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "Input");
  set_output(c.output(0), c.node.attrs<DTypeAttr>().dtype, {static_cast<int64_t>(x.dims.size())});
}

void run_shape(RunCtx& c) {
  const RTensor& x = *c.input(0);
  RTensor* y = c.output(0);
  for (size_t i = 0; i < x.dims.size(); ++i) {
    if (y->dtype == DType::Int64)
      y->ptr<int64_t>()[i] = x.dims[i];
    else
      y->ptr<int32_t>()[i] = static_cast<int32_t>(x.dims[i]);
  }
}

// ------------------------------------------------------------ element conversion

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
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
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
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
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

// ------------------------------------------------------------ expand / tile

// expand_v2 / pd_op.expand: canonical (X, Shape, expand_shapes_tensor list).
void expand_dims(const RunCtx& c, std::vector<int64_t>* in_aligned, std::vector<int64_t>* od) {
  const RTensor& x = need_input(c, 0, "X");
  std::vector<int64_t> shape;
  if (slot_given(c, 1))
    shape = slot_ints(c, 1);
  else if (slot_given(c, 2))
    shape = slot_ints(c, 2);
  else
    shape = c.node.attrs<ShapeAttr>().shape;
  size_t r = x.dims.size();
  if (shape.size() < r) {
    op_fail("expand: target shape " + shape_str(shape) + " has lower rank than the input " +
            shape_str(x.dims));
  }
  size_t lead = shape.size() - r;
  in_aligned->assign(lead, 1);
  in_aligned->insert(in_aligned->end(), x.dims.begin(), x.dims.end());
  od->resize(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t s = shape[i], d = (*in_aligned)[i];
    if (s == -1) {
      if (i < lead) op_fail("expand: -1 is only allowed for existing dimensions");
      (*od)[i] = d;
    } else if (s < 0) {
      op_fail("expand: invalid target dimension in " + shape_str(shape));
    } else if (d != 1 && d != s) {
      op_fail("expand: cannot expand " + shape_str(x.dims) + " to " + shape_str(shape));
    } else {
      (*od)[i] = s;
    }
  }
}

void infer_expand(RunCtx& c) {
  std::vector<int64_t> ia, od;
  expand_dims(c, &ia, &od);
  set_output(c.output(0), c.input(0)->dtype, od);
}

void broadcast_copy(const RTensor& x, const std::vector<int64_t>& ia, RTensor* y) {
  if (y->numel() == 0) return;
  View v;
  v.od = y->dims;
  v.is = contiguous_strides(ia);
  for (size_t i = 0; i < ia.size(); ++i)
    if (ia[i] == 1 && v.od[i] != 1) v.is[i] = 0;
  strided_copy(x.data, y->data, esize_of(x), v);
}

void run_expand(RunCtx& c) {
  std::vector<int64_t> ia, od;
  expand_dims(c, &ia, &od);
  broadcast_copy(*c.input(0), ia, c.output(0));
}

// tile / pd_op.tile (X, RepeatTimes, repeat_times_tensor) and the old legacy
// expand (X, ExpandTimes, expand_times_tensor): out = x repeated.
struct TileAttr {
  std::vector<int64_t> times;
  bool strict;  // legacy expand: one entry per input dimension
};

std::shared_ptr<const void> prep_tile(const PrepareCtx& c) {
  bool old = c.node.source->type == "expand";
  return make_state<TileAttr>(c.attr.ints(old ? "expand_times" : "repeat_times", {}), old);
}

// View of the output as [t0, d0, t1, d1, ...] with the input broadcast over
// the t axes.
void tile_plan(const RunCtx& c, std::vector<int64_t>* ia, std::vector<int64_t>* od2,
               std::vector<int64_t>* od) {
  const RTensor& x = need_input(c, 0, "X");
  const auto& a = c.node.attrs<TileAttr>();
  std::vector<int64_t> times = slot_given(c, 1)   ? slot_ints(c, 1)
                               : slot_given(c, 2) ? slot_ints(c, 2)
                                                  : a.times;
  std::vector<int64_t> d = x.dims;
  if (a.strict && times.size() != d.size()) {
    op_fail("expand: expand_times " + shape_str(times) + " does not match rank " +
            std::to_string(d.size()));
  }
  while (times.size() < d.size()) times.insert(times.begin(), 1);
  while (d.size() < times.size()) d.insert(d.begin(), 1);
  ia->clear();
  od2->clear();
  od->clear();
  for (size_t i = 0; i < d.size(); ++i) {
    if (times[i] < 0) op_fail("tile: negative repeat count in " + shape_str(times));
    ia->push_back(1);
    ia->push_back(d[i]);
    od2->push_back(times[i]);
    od2->push_back(d[i]);
    od->push_back(times[i] * d[i]);
  }
}

void infer_tile(RunCtx& c) {
  std::vector<int64_t> ia, od2, od;
  tile_plan(c, &ia, &od2, &od);
  set_output(c.output(0), c.input(0)->dtype, od);
}

void run_tile(RunCtx& c) {
  std::vector<int64_t> ia, od2, od;
  tile_plan(c, &ia, &od2, &od);
  RTensor* y = c.output(0);
  if (y->numel() == 0) return;
  View v;
  v.od = od2;
  v.is = contiguous_strides(ia);
  for (size_t i = 0; i < ia.size(); i += 2) v.is[i] = 0;
  strided_copy(c.input(0)->data, y->data, esize_of(*c.input(0)), v);
}

// ------------------------------------------------------------ gather

// gather (X, Index, Axis tensor) / pd_op.gather (x, index, axis operand).
void gather_plan(const RunCtx& c, int64_t* axis, std::vector<int64_t>* idx,
                 std::vector<int64_t>* od) {
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& ind = need_input(c, 1, "Index");
  int64_t r = static_cast<int64_t>(x.dims.size());
  if (r == 0) op_fail("gather: input must have rank >= 1");
  *axis = concat_axis(c, 2, r);
  *idx = read_ints(ind);
  if (ind.dims.size() > 1 && !(ind.dims.size() == 2 && ind.dims[1] == 1))
    op_fail("gather: index must be 1-D, got " + shape_str(ind.dims));
  int64_t d = x.dims[*axis];
  for (int64_t& i : *idx) {
    if (i < 0) i += d;
    if (i < 0 || i >= d) op_fail("gather: index out of range for dimension " + std::to_string(d));
  }
  *od = x.dims;
  if (ind.dims.empty())
    od->erase(od->begin() + *axis);  // 0-D index drops the axis
  else
    (*od)[*axis] = static_cast<int64_t>(idx->size());
}

void infer_gather(RunCtx& c) {
  int64_t axis;
  std::vector<int64_t> idx, od;
  gather_plan(c, &axis, &idx, &od);
  set_output(c.output(0), c.input(0)->dtype, od);
}

void run_gather(RunCtx& c) {
  int64_t axis;
  std::vector<int64_t> idx, od;
  gather_plan(c, &axis, &idx, &od);
  const RTensor& x = *c.input(0);
  size_t es = esize_of(x);
  int64_t outer = prod(x.dims, 0, axis), inner = prod(x.dims, axis + 1), d = x.dims[axis];
  int64_t n = static_cast<int64_t>(idx.size());
  const uint8_t* src = x.ptr<uint8_t>();
  uint8_t* dst = c.output(0)->ptr<uint8_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < n; ++k)
      std::memcpy(dst + (o * n + k) * inner * es, src + (o * d + idx[k]) * inner * es,
                  static_cast<size_t>(inner) * es);
}

// ------------------------------------------------------------ registration

OpDef def(const char* name, std::vector<std::string> types, std::vector<std::string> ins,
          std::vector<std::string> outs, PrepareFn prep, InferFn inf, RunFn run,
          std::vector<int> pir = {}, bool alias = false) {
  OpDef d = make_op_def(name, std::move(types), std::move(ins), std::move(outs), prep, inf, run);
  d.pir_inputs = std::move(pir);
  d.alias_input0 = alias;
  return d;
}

}  // namespace

void register_shape_ops(std::vector<OpDef>* t) {
  t->push_back(def("reshape", {"reshape", "reshape2", "pd_op.reshape", "pd_op.reshape_"},
                   {"X", "Shape", "ShapeTensor*"}, {"Out"}, prep_reshape, infer_reshape, run_alias,
                   {0, 1, -1}, true));
  t->push_back(def("transpose", {"transpose", "transpose2", "pd_op.transpose", "pd_op.transpose_"},
                   {"X"}, {"Out"}, prep_transpose, infer_transpose, run_transpose));
  t->push_back(def("flatten", {"flatten_contiguous_range", "pd_op.flatten", "pd_op.flatten_"},
                   {"X"}, {"Out"}, prep_flatten_range, infer_flatten, run_alias, {}, true));
  t->push_back(def("flatten2", {"flatten", "flatten2"}, {"X"}, {"Out"}, prep_flatten2,
                   infer_flatten, run_alias, {}, true));
  t->push_back(def("squeeze", {"squeeze", "squeeze2", "pd_op.squeeze", "pd_op.squeeze_"}, {"X", ""},
                   {"Out"}, prep_axes, infer_squeeze, run_alias, {0, 1, -1}, true));
  t->push_back(def("unsqueeze", {"unsqueeze", "unsqueeze2", "pd_op.unsqueeze", "pd_op.unsqueeze_"},
                   {"X", "AxesTensor", "AxesTensorList*"}, {"Out"}, prep_axes, infer_unsqueeze,
                   run_alias, {0, 1, -1}, true));
  t->push_back(def("concat", {"concat", "pd_op.concat"}, {"X*", "AxisTensor"}, {"Out"}, prep_axis0,
                   infer_concat, run_concat));
  t->push_back(
      def("stack", {"stack", "pd_op.stack"}, {"X*"}, {"Y"}, prep_axis0, infer_stack, run_stack));
  t->push_back(def("split", {"split", "pd_op.split"}, {"X", "AxisTensor", "SectionsTensorList*"},
                   {"Out*"}, prep_split, infer_split, run_split, {0, 2, 1}));
  t->push_back(def("split_with_num", {"pd_op.split_with_num"}, {"X", "AxisTensor", ""}, {"Out*"},
                   prep_split, infer_split, run_split, {0, 1, -1}));
  t->push_back(def("slice", {"slice", "pd_op.slice"},
                   {"Input", "StartsTensor", "EndsTensor", "StartsTensorList*", "EndsTensorList*"},
                   {"Out"}, prep_slice, infer_slice, run_slice, {0, 1, 2, -1, -1}));
  t->push_back(def("strided_slice", {"strided_slice", "pd_op.strided_slice"},
                   {"Input", "StartsTensor", "EndsTensor", "StridesTensor", "StartsTensorList*",
                    "EndsTensorList*", "StridesTensorList*"},
                   {"Out"}, prep_slice, infer_slice, run_slice, {0, 1, 2, 3, -1, -1, -1}));
  t->push_back(def("shape", {"shape", "pd_op.shape", "pd_op.shape64"}, {"Input"}, {"Out"},
                   prep_shape, infer_shape, run_shape));
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
  t->push_back(def("expand", {"expand_v2", "pd_op.expand"}, {"X", "Shape", "expand_shapes_tensor*"},
                   {"Out"}, prep_reshape, infer_expand, run_expand, {0, 1, -1}));
  t->push_back(def("tile", {"tile", "pd_op.tile"}, {"X", "RepeatTimes", "repeat_times_tensor*"},
                   {"Out"}, prep_tile, infer_tile, run_tile, {0, 1, -1}));
  t->push_back(def("expand_times", {"expand"}, {"X", "ExpandTimes", "expand_times_tensor*"},
                   {"Out"}, prep_tile, infer_tile, run_tile));
  t->push_back(def("gather", {"gather", "pd_op.gather"}, {"X", "Index", "Axis"}, {"Out"},
                   prep_axis0, infer_gather, run_gather));
}

}  // namespace pif
