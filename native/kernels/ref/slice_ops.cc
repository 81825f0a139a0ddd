// Data-movement ops that pick or join parts of tensors: concat, stack,
// split, slice, strided_slice, gather (shared rules in shape_common.h).
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

}  // namespace

void register_slice_ops(std::vector<OpDef>* t) {
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
  t->push_back(def("gather", {"gather", "pd_op.gather"}, {"X", "Index", "Axis"}, {"Out"},
                   prep_axis0, infer_gather, run_gather));
}

}  // namespace pif
