// Shape ops: reshape, transpose, flatten, squeeze, unsqueeze, shape, expand,
// tile (the rules all shape and data-movement families share are in
// shape_common.h).
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

// ------------------------------------------------------------ shape

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
  t->push_back(def("shape", {"shape", "pd_op.shape", "pd_op.shape64"}, {"Input"}, {"Out"},
                   prep_shape, infer_shape, run_shape));
  t->push_back(def("expand", {"expand_v2", "pd_op.expand"}, {"X", "Shape", "expand_shapes_tensor*"},
                   {"Out"}, prep_reshape, infer_expand, run_expand, {0, 1, -1}));
  t->push_back(def("tile", {"tile", "pd_op.tile"}, {"X", "RepeatTimes", "repeat_times_tensor*"},
                   {"Out"}, prep_tile, infer_tile, run_tile, {0, 1, -1}));
  t->push_back(def("expand_times", {"expand"}, {"X", "ExpandTimes", "expand_times_tensor*"},
                   {"Out"}, prep_tile, infer_tile, run_tile));
}

}  // namespace pif
