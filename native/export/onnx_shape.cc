// ONNX exporter, shape and tensor converters: reshape, transpose, flatten, (un)squeeze, concat,
// stack, split, slice, shape, fills, cast, expand, tile, gather and reductions.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "export/onnx_internal.h"

namespace pif {
namespace onnx {

// ---------------------------------------------------------------- shape ops

void Exporter::cv_reshape(const Node& n) {
  std::string x = in(n, 0);
  std::string shape;
  std::vector<int64_t> v;
  bool c;
  if (n.inputs.size() > 2 && has(n, 2))
    shape = ints_from_slot(n, 2, &v, &c);
  else if (has(n, 1))
    shape = ints_from_slot(n, 1, &v, &c);
  else
    shape = c_i64(AttrReader(*n.source).ints("shape", {}));
  op("Reshape", {x, shape}, {}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_transpose(const Node& n) {
  AttrReader a(*n.source);
  std::vector<int64_t> perm = a.ints(a.has("perm") ? "perm" : "axis", {});
  std::string x = in(n, 0);
  bool neg = false;
  for (int64_t p : perm) neg = neg || p < 0;
  if (neg) {
    int64_t r = rank_of(x);
    for (int64_t& p : perm)
      if (p < 0) p += r;
  }
  op("Transpose", {x}, {a_is("perm", perm)}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_flatten(const Node& n, bool legacy2) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  std::string o = out(n, 0, dtype_of(x));
  if (legacy2) {
    op("Flatten", {x}, {a_i("axis", a.i("axis", 1))}, o);
    return;
  }
  int64_t r = rank_of(x);
  if (r == 0) {
    op("Reshape", {x, c_i64({1})}, {}, o);
    return;
  }
  int64_t s = a.i("start_axis", 1), e = a.i("stop_axis", -1);
  if (s < 0) s += r;
  if (e < 0) e += r;
  if (s < 0 || e >= r || s > e) bad("flatten: bad start_axis/stop_axis");
  if (s == e) {
    op("Identity", {x}, {}, o);
    return;
  }
  std::vector<int64_t> xd = dims_of(x);
  std::vector<int64_t> shp(static_cast<size_t>(s), 0);
  shp.push_back(-1);
  bool ok = true;
  for (int64_t i = e + 1; i < r; ++i) {
    if (xd[i] < 0) ok = false;
    shp.push_back(xd[i]);
  }
  std::string shape;
  if (ok) {
    shape = c_i64(shp);
  } else {
    std::vector<std::string> parts;
    if (s > 0) parts.push_back(shape_slice(x, 0, s));
    parts.push_back(c_i64({-1}));
    parts.push_back(shape_slice(x, e + 1, r));
    shape = op("Concat", parts, {a_i("axis", 0)});
  }
  op("Reshape", {x, shape}, {}, o);
}

// Axes from a constant tensor / list slot, else the attribute.
std::vector<int64_t> Exporter::axes_attr(const Node& n, size_t tensor_slot, size_t list_slot,
                                         const std::vector<int64_t>& def_attr) {
  for (size_t slot : {list_slot, tensor_slot}) {
    if (slot < n.inputs.size() && has(n, slot)) {
      std::vector<int64_t> v;
      bool c;
      ints_from_slot(n, slot, &v, &c);
      if (!c) unsupported("axes operand is not a constant");
      return v;
    }
  }
  return def_attr;
}

void Exporter::cv_squeeze(const Node& n) {
  AttrReader a(*n.source);
  std::vector<int64_t> axes = axes_attr(n, 1, 2, a.ints(a.has("axes") ? "axes" : "axis", {}));
  std::string x = in(n, 0);
  std::string o = out(n, 0, dtype_of(x));
  int64_t r = rank_of(x);
  std::vector<int64_t> xd = dims_of(x);
  if (r == 0) {
    op("Identity", {x}, {}, o);
    return;
  }
  std::vector<bool> drop(static_cast<size_t>(r), false);
  if (axes.empty()) {
    for (int64_t k = 0; k < r; ++k) {
      if (xd[k] < 0) {
        // Unknown dims: let ONNX decide at run time.
        op("Squeeze", {x}, {}, o);
        return;
      }
      drop[k] = xd[k] == 1;
    }
  } else {
    for (int64_t ax : axes) {
      int64_t k = ax < 0 ? ax + r : ax;
      if (k < 0 || k >= r) bad("squeeze axis out of range");
      if (xd[k] == 1 || xd[k] < 0) drop[k] = true;  // non-unit axes are kept (Paddle)
    }
  }
  std::vector<int64_t> d;
  for (int64_t k = 0; k < r; ++k)
    if (drop[k]) d.push_back(k);
  if (d.empty())
    op("Identity", {x}, {}, o);
  else if (static_cast<int64_t>(d.size()) == r && rank0_as_1d(n))
    op("Reshape", {x, c_i64({1})}, {}, o);
  else
    op("Squeeze", {x, c_i64(d)}, {}, o);
}

void Exporter::cv_unsqueeze(const Node& n) {
  AttrReader a(*n.source);
  std::vector<int64_t> axes = axes_attr(n, 1, 2, a.ints(a.has("axes") ? "axes" : "axis", {}));
  std::string x = in(n, 0);
  // The result's axes in order, true where one is inserted; each axis counts from the end of
  // the result so far, as the kernel reads it.
  std::vector<bool> inserted(static_cast<size_t>(rank_of(x)), false);
  for (int64_t ax : axes) {
    const int64_t cur = static_cast<int64_t>(inserted.size());
    int64_t at = ax < 0 ? ax + cur + 1 : ax;
    if (at < 0 || at > cur) bad("unsqueeze: axis out of range");
    inserted.insert(inserted.begin() + at, true);
  }
  std::vector<int64_t> pos;
  for (size_t i = 0; i < inserted.size(); ++i)
    if (inserted[i]) pos.push_back(static_cast<int64_t>(i));
  std::string o = out(n, 0, dtype_of(x));
  if (pos.empty())
    op("Identity", {x}, {}, o);
  else
    op("Unsqueeze", {x, c_i64(pos)}, {}, o);
}

void Exporter::cv_concat(const Node& n) {
  if (n.inputs.empty() || n.inputs[0].empty()) bad("concat needs inputs");
  std::vector<std::string> xs;
  for (size_t k = 0; k < n.inputs[0].size(); ++k) xs.push_back(in(n, 0, k));
  int64_t axis = AttrReader(*n.source).i("axis", 0);
  if (has(n, 1)) {
    std::vector<int64_t> v;
    if (!cints(n, 1, &v) || v.size() != 1) unsupported("concat axis is not a constant");
    axis = v[0];
  }
  if (axis < 0) axis += rank_of(xs[0]);
  op("Concat", xs, {a_i("axis", axis)}, out(n, 0, dtype_of(xs[0])));
}

void Exporter::cv_stack(const Node& n) {
  if (n.inputs.empty() || n.inputs[0].empty()) bad("stack needs inputs");
  int64_t axis = AttrReader(*n.source).i("axis", 0);
  std::string x0 = in(n, 0, 0);
  int64_t r = rank_of(x0);
  if (axis < 0) axis += r + 1;
  if (axis < 0 || axis > r) bad("stack axis out of range");
  std::vector<std::string> us;
  for (size_t k = 0; k < n.inputs[0].size(); ++k)
    us.push_back(op("Unsqueeze", {in(n, 0, k), c_i64({axis})}));
  op("Concat", us, {a_i("axis", axis)}, out(n, 0, dtype_of(x0)));
}

int64_t Exporter::const_axis(const Node& n, size_t slot, int64_t axis, const char* what) {
  if (!has(n, slot)) return axis;
  std::vector<int64_t> v;
  if (!cints(n, slot, &v) || v.size() != 1)
    unsupported(std::string(what) + " axis is not a constant");
  return v[0];
}

void Exporter::cv_split(const Node& n) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  int64_t axis = const_axis(n, 1, a.i("axis", 0), "split");
  int64_t r = rank_of(x);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) bad("split axis out of range");
  size_t nout = n.outputs.empty() ? 0 : n.outputs[0].size();
  std::vector<int64_t> sec = a.ints("sections", {});
  if (n.inputs.size() > 2 && has(n, 2)) {
    bool c;
    ints_from_slot(n, 2, &sec, &c);
    if (!c) unsupported("split sections are not constants");
  }
  int64_t num = a.i("num", 0);
  std::vector<std::string> outs;
  DType dt = dtype_of(x);
  for (size_t i = 0; i < nout; ++i) outs.push_back(out(n, 0, dt, i));
  std::vector<std::string> ins = {x};
  if (!sec.empty()) {
    int64_t known = 0, at = -1;
    for (size_t i = 0; i < sec.size(); ++i) {
      if (sec[i] == -1)
        at = static_cast<int64_t>(i);
      else
        known += sec[i];
    }
    if (at >= 0) {
      int64_t d = dims_of(x)[axis];
      if (d < 0) unsupported("split with a -1 section over a dynamic dimension");
      sec[at] = d - known;
    }
    if (sec.size() != nout) bad("split: sections do not match the outputs");
    ins.push_back(c_i64(sec));
  } else if (num > 0 && static_cast<size_t>(num) != nout) {
    bad("split: num does not match the outputs");
  }
  emit("Split", ins, outs, {a_i("axis", axis)});
}

void Exporter::cv_slice(const Node& n) {
  AttrReader a(*n.source);
  bool strided = n.source->type.find("strided_slice") != std::string::npos;
  std::vector<int64_t> axes = a.ints("axes", {}), decrease = a.ints("decrease_axis", {});
  std::vector<int64_t> flags = a.ints("infer_flags", {});
  size_t s_t = 1, e_t = 2, st_t = strided ? 3 : 99;
  size_t s_l = strided ? 4 : 3, e_l = strided ? 5 : 4, st_l = strided ? 6 : 99;
  auto source = [&](size_t t_slot, size_t l_slot, const char* attr, bool* is_const,
                    std::vector<int64_t>* vals) {
    if (t_slot < n.inputs.size() && has(n, t_slot))
      return ints_from_slot(n, t_slot, vals, is_const);
    if (l_slot < n.inputs.size() && has(n, l_slot))
      return ints_from_slot(n, l_slot, vals, is_const);
    *vals = a.ints(attr, {});
    *is_const = true;
    return std::string();
  };
  bool cs, ce, cst = true;
  std::vector<int64_t> sv, ev, stv;
  std::string st = source(s_t, s_l, "starts", &cs, &sv);
  std::string en = source(e_t, e_l, "ends", &ce, &ev);
  std::string stp;
  if (strided)
    stp = source(st_t, st_l, "strides", &cst, &stv);
  else
    stv.assign(axes.size(), 1);
  std::string x = in(n, 0);
  int64_t r = rank_of(x);
  std::vector<int64_t> xd = dims_of(x);
  if (cs && ce) {
    if (sv.size() != axes.size() || ev.size() != axes.size())
      bad("slice: axes/starts/ends differ in length");
    // x[-1] written with dynamic starts: start -1, end 0, decreased axis.
    for (size_t i = 0; i < axes.size(); ++i) {
      bool dec = std::find(decrease.begin(), decrease.end(), axes[i]) != decrease.end();
      if (!strided && sv[i] == -1 && ev[i] == 0 && dec && i < flags.size() && flags[i] == -1)
        ev[i] = std::numeric_limits<int64_t>::max();
    }
  }
  if (cs) st = c_i64(sv);
  if (ce) en = c_i64(ev);
  if (cst) stp = c_i64(stv);
  for (int64_t& ax : axes)
    if (ax < 0) ax += r;
  std::string o = out(n, 0, dtype_of(x));
  std::vector<std::string> ins = {x, st, en, c_i64(axes), stp};
  if (decrease.empty()) {
    op("Slice", ins, {}, o);
    return;
  }
  std::string s = op("Slice", ins);
  std::vector<int64_t> d;
  for (int64_t ax : decrease) d.push_back(ax < 0 ? ax + r : ax);
  std::sort(d.begin(), d.end());
  d.erase(std::unique(d.begin(), d.end()), d.end());
  if (static_cast<int64_t>(d.size()) == r && rank0_as_1d(n))
    op("Reshape", {s, c_i64({1})}, {}, o);
  else
    op("Squeeze", {s, c_i64(d)}, {}, o);
}

void Exporter::cv_shape(const Node& n) {
  DType dt = n.source->type == "pd_op.shape64" ? DType::Int64 : DType::Int32;
  std::string x = in(n, 0);
  std::string o = out(n, 0, dt);
  std::string s = op("Shape", {x}, {}, dt == DType::Int64 ? o : std::string());
  if (dt != DType::Int64) op("Cast", {s}, {a_i("to", onnx_dtype(dt))}, o);
}

std::string Exporter::fill_value(const Node& n, size_t slot, Num* value) {
  if (!has(n, slot)) return std::string();
  std::vector<double> d;
  std::vector<int64_t> iv;
  if (cints(n, slot, &iv) && !iv.empty()) {
    value->is_int = true;
    value->i = iv[0];
    value->d = static_cast<double>(iv[0]);
  } else if (cdoubles(n, slot, &d) && !d.empty()) {
    *value = num_from_double(d[0]);
  } else {
    return in(n, slot);
  }
  return std::string();
}

void Exporter::fill_shape(const std::string& shp, DType dt, const Num& value, const std::string& vt,
                          const std::string& o) {
  if (vt.empty()) {
    std::string t = tensor_proto("", dt, {1}, scalar_bytes(dt, value).data(), dtype_size(dt));
    op("ConstantOfShape", {shp}, {a_t("value", t)}, o);
  } else {
    op("Expand", {op("Reshape", {cast(vt, dt), c_i64({})}), shp}, {}, o);
  }
}

void Exporter::cv_fill(const Node& n, bool with_tensor) {
  AttrReader a(*n.source);
  DType dt = attr_dtype(*n.source, "dtype", DType::Float32);
  if (dt == DType::Undefined) dt = DType::Float32;
  Num value = attr_num(*n.source, "value", 0.0);
  const Attr* sv = n.source->attr("str_value");
  if (sv && sv->kind == Attr::Kind::String && !sv->s.empty()) {
    if (!parse_str_num(sv->s, &value)) bad("str_value '" + sv->s + "' is not a number");
  }
  std::string o = out(n, 0, dt);
  // Slots: fill_constant (ValueTensor, ShapeTensor, ShapeTensorList);
  // full_with_tensor (value, shape).
  std::string vt = fill_value(n, 0, &value);
  std::vector<int64_t> shape = a.ints("shape", {});
  std::string shp;
  bool c = true;
  if (!with_tensor && n.inputs.size() > 2 && has(n, 2))
    shp = ints_from_slot(n, 2, &shape, &c);
  else if (has(n, 1))
    shp = ints_from_slot(n, 1, &shape, &c);
  if (c && vt.empty()) {
    std::vector<uint8_t> one = scalar_bytes(dt, value);
    int64_t cnt = tensor_numel(shape);
    std::vector<uint8_t> all(one.size() * static_cast<size_t>(cnt));
    for (int64_t i = 0; i < cnt; ++i)
      std::memcpy(all.data() + i * one.size(), one.data(), one.size());
    initializer(o, dt, shape, all.data(), all.size());
    return;
  }
  if (c) shp = c_i64(shape);
  fill_shape(shp, dt, value, vt, o);
}

void Exporter::cv_full_int_array(const Node& n) {
  AttrReader a(*n.source);
  DType dt = attr_dtype(*n.source, "dtype", DType::Int64);
  if (dt == DType::Undefined) dt = DType::Int64;
  std::vector<int64_t> v = a.ints("value", {});
  std::string o = out(n, 0, dt);
  std::vector<uint8_t> all;
  for (int64_t x : v) {
    Num nm;
    nm.is_int = true;
    nm.i = x;
    nm.d = static_cast<double>(x);
    std::vector<uint8_t> b = scalar_bytes(dt, nm);
    all.insert(all.end(), b.begin(), b.end());
  }
  initializer(o, dt, {static_cast<int64_t>(v.size())}, all.data(), all.size());
}

void Exporter::cv_full_like(const Node& n) {
  std::string x = in(n, 0);
  DType dt = attr_dtype(*n.source, "dtype", DType::Undefined);
  if (dt == DType::Undefined) dt = dtype_of(x);
  Num value =
      n.source->type == "fill_zeros_like" ? num_from_double(0) : attr_num(*n.source, "value", 0.0);
  std::string o = out(n, 0, dt);
  std::string vt = fill_value(n, 1, &value);
  std::string shp = op("Shape", {x});
  fill_shape(shp, dt, value, vt, o);
}

void Exporter::cv_cast(const Node& n) {
  DType t =
      attr_dtype(*n.source, n.source->attr("out_dtype") ? "out_dtype" : "dtype", DType::Undefined);
  if (t == DType::Undefined || onnx_dtype(t) == 0) unsupported("cast to an unsupported dtype");
  std::string x = in(n, 0);
  std::string o = out(n, 0, t);
  if (dtype_of(x) == t)
    op("Identity", {x}, {}, o);
  else
    op("Cast", {x}, {a_i("to", onnx_dtype(t))}, o);
}

std::string Exporter::ints_input(const Node& n, std::vector<int64_t>* vals, bool* is_const) {
  if (has(n, 1)) return ints_from_slot(n, 1, vals, is_const);
  if (n.inputs.size() > 2 && has(n, 2)) return ints_from_slot(n, 2, vals, is_const);
  return std::string();
}

void Exporter::cv_expand(const Node& n) {
  std::string x = in(n, 0);
  std::vector<int64_t> shape;
  bool c = true;
  std::string shp = ints_input(n, &shape, &c);
  if (shp.empty()) shape = AttrReader(*n.source).ints("shape", {});
  // Paddle's -1 keeps the input dim; ONNX Expand's bidirectional broadcast
  // does the same with a 1.
  if (c) {
    for (int64_t& s : shape)
      if (s == -1) s = 1;
    shp = c_i64(shape);
  } else {
    std::string m1 = c_i64_scalar(-1), one = c_i64_scalar(1);
    shp = op("Where", {op("Equal", {shp, m1}), one, shp});
  }
  op("Expand", {x, shp}, {}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_tile(const Node& n, bool strict) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  std::vector<int64_t> times = a.ints(strict ? "expand_times" : "repeat_times", {});
  bool c = true;
  std::string tt = ints_input(n, &times, &c);
  int64_t r = rank_of(x);
  int64_t len;
  if (c) {
    len = static_cast<int64_t>(times.size());
  } else {
    // Length of a dynamic repeat tensor from its declared dims.
    len = -1;
    if (n.inputs[1].size() == 1 || (n.inputs.size() > 2 && n.inputs[2].size() > 1)) {
      std::string t = n.inputs[1].empty() ? std::string() : in(n, 1);
      if (!t.empty()) {
        std::vector<int64_t> d = dims_of(t);
        if (d.size() == 1 && d[0] >= 0) len = d[0];
      } else {
        len = static_cast<int64_t>(n.inputs[2].size());
      }
    }
    if (len < 0) unsupported("tile with a repeat tensor of unknown length");
  }
  if (strict && len != r) bad("expand: expand_times does not match the rank");
  std::string xx = x;
  if (r < len) {
    std::vector<int64_t> ax;
    for (int64_t i = 0; i < len - r; ++i) ax.push_back(i);
    xx = op("Unsqueeze", {x, c_i64(ax)});
  }
  if (c) {
    while (static_cast<int64_t>(times.size()) < r) times.insert(times.begin(), 1);
    tt = c_i64(times);
  } else if (len < r) {
    tt = op("Concat", {c_i64(std::vector<int64_t>(static_cast<size_t>(r - len), 1)), tt},
            {a_i("axis", 0)});
  }
  op("Tile", {xx, tt}, {}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_gather(const Node& n) {
  std::string x = in(n, 0), idx = in(n, 1);
  int64_t axis = const_axis(n, 2, AttrReader(*n.source).i("axis", 0), "gather");
  int64_t r = rank_of(x);
  if (axis < 0) axis += r;
  int64_t ri = rank_of(idx);
  if (ri > 1) idx = op("Reshape", {idx, c_i64({-1})});
  op("Gather", {x, idx}, {a_i("axis", axis)}, out(n, 0, dtype_of(x)));
}

void Exporter::cv_reduce(const Node& n) {
  AttrReader a(*n.source);
  const std::string& k = n.def->name;
  const std::string& type = n.source->type;
  bool mean_all = type == "mean" || type == "pd_op.mean_all";
  std::vector<int64_t> axes = a.ints(a.has("dim") ? "dim" : (a.has("axis") ? "axis" : "dims"), {});
  bool keep = a.b(a.has("keep_dim") ? "keep_dim" : "keepdim", false);
  bool all = mean_all || a.b("reduce_all", false);
  if (mean_all) keep = false;
  if (n.inputs.size() > 1 && has(n, 1)) {
    bool c;
    ints_from_slot(n, 1, &axes, &c);
    if (!c) unsupported("reduce axes operand is not a constant");
  }
  std::string x = in(n, 0);
  DType dt = dtype_of(x), od = dt;
  if (k == "reduce_sum") {
    const Attr* d = n.source->attr(a.has("out_dtype") ? "out_dtype" : "dtype");
    DType want = DType::Undefined;
    int64_t code;
    if (d && (d->kind == Attr::Kind::DType || d->kind == Attr::Kind::String)) {
      if (!dtype_from_name(d->s, &want)) bad("unknown dtype '" + d->s + "'");
    } else if (d && d->as_int(&code) && code >= 0) {
      if (!dtype_from_legacy(code, &want)) bad("unknown dtype code");
    }
    if (want == DType::Undefined && p_.format == ProgramFormat::Legacy && !n.outputs.empty() &&
        !n.outputs[0].empty() && n.outputs[0][0] != kNoValue) {
      DType decl = p_.values[n.outputs[0][0]].type.dtype;
      if (decl == DType::Int32 || decl == DType::Int64) want = decl;
    }
    if (want != DType::Undefined)
      od = want;
    else if (dt == DType::Int32 || dt == DType::Bool)
      od = DType::Int64;
  }
  int64_t r = rank_of(x);
  std::vector<int64_t> ax;
  bool full = all || axes.empty();
  if (!full) {
    std::vector<bool> red(static_cast<size_t>(r), false);
    for (int64_t v : axes) {
      if (r == 0 && (v == 0 || v == -1)) continue;
      int64_t q = v < 0 ? v + r : v;
      if (q < 0 || q >= r) bad("reduce axis out of range");
      red[q] = true;
    }
    for (int64_t i = 0; i < r; ++i)
      if (red[i]) ax.push_back(i);
    if (static_cast<int64_t>(ax.size()) == r) full = true;
    if (r == 0) full = true;
  }
  std::string o = out(n, 0, od);
  std::string xx = cast(x, od);
  bool to1 = (r > 0 && full && !keep && rank0_as_1d(n)) || (r == 0 && rank0_as_1d(n));
  const char* onnx_op = k == "reduce_mean" || k == "mean_all" ? "ReduceMean"
                        : k == "reduce_sum"                   ? "ReduceSum"
                        : k == "reduce_max"                   ? "ReduceMax"
                        : k == "reduce_min"                   ? "ReduceMin"
                                                              : "ReduceProd";
  std::vector<std::string> ins = {xx};
  std::vector<OA> at = {a_i("keepdims", keep ? 1 : 0)};
  if (!full) {
    if (k == "reduce_sum")
      ins.push_back(c_i64(ax));
    else
      at.push_back(a_is("axes", ax));
  }
  std::string res;
  if (r == 0)
    res = op("Identity", {xx}, {}, to1 ? std::string() : o);
  else
    res = op(onnx_op, ins, at, to1 ? std::string() : o);
  if (to1) op("Reshape", {res, c_i64({1})}, {}, o);
}

}  // namespace onnx
}  // namespace pif
