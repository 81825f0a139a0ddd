// ONNX exporter, elementwise converters: binary ops (with legacy axis alignment) and unary ops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "common/error.h"
#include "export/onnx_internal.h"

namespace pif {
namespace onnx {

// ---------------------------------------------------------------- elementwise

// Legacy axis alignment (elementwise.cc align_to): `s` of lower rank is
// placed at `axis` of a rank-`rb` operand. Trailing unit dims that would
// overflow are dropped; the remaining trailing positions become unit dims
// (leading ones come from NumPy broadcasting).
std::string Exporter::align_legacy(const std::string& s, int64_t rb, int64_t axis) {
  std::vector<int64_t> d = dims_of(s);
  int64_t rs0 = static_cast<int64_t>(d.size());
  while (!d.empty() && axis + static_cast<int64_t>(d.size()) > rb && d.back() == 1) d.pop_back();
  int64_t rs = static_cast<int64_t>(d.size());
  if (axis + rs > rb) {
    bad("cannot align shape " + shape_str(dims_of(s)) + " at axis " + std::to_string(axis) +
        " with rank " + std::to_string(rb));
  }
  std::string r = s;
  if (rs < rs0) {
    std::vector<int64_t> ax;
    for (int64_t i = rs; i < rs0; ++i) ax.push_back(i);
    r = op("Squeeze", {r, c_i64(ax)});
  }
  if (axis + rs < rb) {
    std::vector<int64_t> ax;
    for (int64_t i = rs; i < rb - axis; ++i) ax.push_back(i);
    r = op("Unsqueeze", {r, c_i64(ax)});
  }
  return r;
}

void Exporter::cv_binary(const Node& n) {
  std::string x = in(n, 0), y = in(n, 1);
  if (x.empty() || y.empty()) bad("missing operand");
  bool pir = n.source->type.rfind("pd_op.", 0) == 0;
  int64_t axis = pir ? -1 : AttrReader(*n.source).i("axis", -1);
  DType dt = dtype_of(x);
  if (axis >= 0) {
    int64_t rx = rank_of(x), ry = rank_of(y);
    if (rx != ry) {
      if (ry < rx)
        y = align_legacy(y, rx, axis);
      else
        x = align_legacy(x, ry, axis);
    }
  }
  const std::string& k = n.def->name;
  std::string o = out(n, 0, dt);
  static const std::map<std::string, const char*> direct = {
      {"add", "Add"},    {"subtract", "Sub"},        {"multiply", "Mul"},
      {"divide", "Div"}, {"elementwise_pow", "Pow"}, {"maximum", "Max"},
      {"minimum", "Min"}};
  auto d = direct.find(k);
  if (d != direct.end()) {
    op(d->second, {x, y}, {}, o);
  } else if (k == "floor_divide") {
    if (is_float(dt)) {
      op("Floor", {op("Div", {x, y})}, {}, o);
    } else {
      std::string q = op("Floor", {op("Div", {cast(x, DType::Float64), cast(y, DType::Float64)})});
      op("Cast", {q}, {a_i("to", onnx_dtype(dt))}, o);
    }
  } else if (k == "remainder") {
    if (!is_float(dt)) {
      op("Mod", {x, y}, {a_i("fmod", 0)}, o);
    } else {
      // r = fmod(x, y); r += y where r != 0 and sign(r) != sign(y).
      std::string r = op("Mod", {x, y}, {a_i("fmod", 1)});
      std::string zero = c_scalar(dt, 0);
      std::string nz = op("Not", {op("Equal", {r, zero})});
      std::string diff = op("Xor", {op("Less", {r, zero}), op("Less", {y, zero})});
      op("Where", {op("And", {nz, diff}), op("Add", {r, y}), r}, {}, o);
    }
  } else {
    unsupported("binary op " + k);
  }
}

// ---------------------------------------------------------------- unary

void Exporter::cv_unary(const Node& n) {
  AttrReader a(*n.source);
  std::string x = in(n, 0);
  if (x.empty()) bad("missing input X");
  DType dt = dtype_of(x);
  const std::string& k = n.def->name;
  std::string o = out(n, 0, dt);
  auto C = [&](double v) { return c_scalar(dt == DType::Undefined ? DType::Float32 : dt, v); };
  if (k == "relu")
    op("Relu", {x}, {}, o);
  else if (k == "relu6")
    op("Clip", {x, C(0), C(a.f("threshold", 6.0))}, {}, o);
  else if (k == "sigmoid")
    op("Sigmoid", {x}, {}, o);
  else if (k == "tanh")
    op("Tanh", {x}, {}, o);
  else if (k == "exp")
    op("Exp", {x}, {}, o);
  else if (k == "log")
    op("Log", {x}, {}, o);
  else if (k == "sqrt")
    op("Sqrt", {x}, {}, o);
  else if (k == "rsqrt")
    op("Reciprocal", {op("Sqrt", {x})}, {}, o);
  else if (k == "abs")
    op("Abs", {x}, {}, o);
  else if (k == "square")
    op("Mul", {x, x}, {}, o);
  else if (k == "erf")
    op("Erf", {x}, {}, o);
  else if (k == "floor")
    op("Floor", {x}, {}, o);
  else if (k == "hard_swish") {
    double thr = a.f("threshold", 6.0), sc = a.f("scale", 6.0), off = a.f("offset", 3.0);
    if (thr == 6.0 && sc == 6.0 && off == 3.0) {
      op("HardSwish", {x}, {}, o);
    } else {
      // y = x * min(max(x + offset, 0), threshold) / scale
      std::string c = op("Clip", {op("Add", {x, C(off)}), C(0), C(thr)});
      op("Div", {op("Mul", {x, c}), C(sc)}, {}, o);
    }
  } else if (k == "hard_sigmoid") {
    op("HardSigmoid", {x}, {a_f("alpha", a.f("slope", 0.2)), a_f("beta", a.f("offset", 0.5))}, o);
  } else if (k == "swish" || k == "silu") {
    double beta = k == "swish" ? a.f("beta", 1.0) : 1.0;
    std::string z = beta == 1.0 ? x : op("Mul", {x, C(beta)});
    op("Mul", {x, op("Sigmoid", {z})}, {}, o);
  } else if (k == "gelu") {
    if (a.b("approximate", false)) {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      std::string x3 = op("Mul", {op("Mul", {x, x}), x});
      std::string inner =
          op("Mul", {op("Add", {x, op("Mul", {x3, C(0.044715)})}), C(std::sqrt(2.0 / M_PI))});
      std::string t = op("Add", {op("Tanh", {inner}), C(1.0)});
      op("Mul", {op("Mul", {x, C(0.5)}), t}, {}, o);
    } else {
      // 0.5 x (1 + erf(x / sqrt(2)))
      std::string e = op("Add", {op("Erf", {op("Mul", {x, C(M_SQRT1_2)})}), C(1.0)});
      op("Mul", {op("Mul", {x, C(0.5)}), e}, {}, o);
    }
  } else if (k == "leaky_relu") {
    double alpha = a.f(a.has("negative_slope") ? "negative_slope" : "alpha", 0.02);
    op("LeakyRelu", {x}, {a_f("alpha", alpha)}, o);
  } else if (k == "scale") {
    double scale = a.f("scale", 1.0), bias = a.f("bias", 0.0);
    bool after = a.b("bias_after_scale", true);
    std::string st;
    if (has(n, 1)) {
      std::vector<double> v;
      if (cdoubles(n, 1, &v) && !v.empty())
        scale = v[0];
      else
        st = in(n, 1);
    }
    DType cdt = dt;
    std::string xx = x;
    bool int_x = is_int(dt);
    bool exact_int = st.empty() && scale == std::floor(scale) && bias == std::floor(bias);
    if (int_x && !exact_int) {
      cdt = DType::Float64;
      xx = cast(x, cdt);
    }
    std::string s =
        st.empty() ? (scale == 1.0 ? std::string() : c_scalar(cdt, scale)) : cast(st, cdt);
    std::string b = bias == 0.0 ? std::string() : c_scalar(cdt, bias);
    std::string r = xx;
    if (after) {
      if (!s.empty()) r = op("Mul", {r, s});
      if (!b.empty()) r = op("Add", {r, b});
    } else {
      if (!b.empty()) r = op("Add", {r, b});
      if (!s.empty()) r = op("Mul", {r, s});
    }
    if (cdt != dt)
      op("Cast", {r}, {a_i("to", onnx_dtype(dt))}, o);
    else
      op("Identity", {r}, {}, o);
  } else if (k == "clip") {
    double mn = a.f("min", -INFINITY), mx = a.f("max", INFINITY);
    std::string tmin, tmax;
    auto bound = [&](size_t slot, double* v, std::string* t) {
      if (!has(n, slot)) return;
      std::vector<double> d;
      if (cdoubles(n, slot, &d) && !d.empty()) {
        *v = d[0];
        return;
      }
      *t = op("Reshape", {cast(in(n, slot), dt), c_i64({})});
    };
    bound(1, &mn, &tmin);
    bound(2, &mx, &tmax);
    if (tmin.empty() && std::isfinite(mn)) tmin = C(mn);
    if (tmax.empty() && std::isfinite(mx)) tmax = C(mx);
    if (is_int(dt)) {
      // The int kernel clips in double; infinite bounds mean no bound.
      if (tmin.empty() && mn > -INFINITY) tmin = C(mn);
    }
    std::vector<std::string> ins = {x, tmin, tmax};
    while (!ins.empty() && ins.back().empty()) ins.pop_back();
    op("Clip", ins, {}, o);
  } else if (k == "pow") {
    double f = a.f(a.has("factor") ? "factor" : "y", 1.0);
    op("Pow", {x, C(f)}, {}, o);
  } else if (k == "dropout") {
    std::string mode = a.s(a.has("mode") ? "mode" : "dropout_implementation", "downgrade_in_infer");
    double p = a.f("dropout_prob", 0.5);
    if (has(n, 2)) {
      std::vector<double> v;
      if (!cdoubles(n, 2, &v) || v.empty())
        unsupported("dropout probability operand is not a constant");
      p = v[0];
    }
    if (mode == "upscale_in_train")
      op("Identity", {x}, {}, o);
    else if (mode == "downgrade_in_infer" || mode == "downscale_in_infer")
      op("Mul", {x, C(1.0 - p)}, {}, o);
    else
      bad("unknown dropout mode '" + mode + "'");
  } else if (k == "assign") {
    op("Identity", {x}, {}, o);
  } else {
    unsupported("unary op " + k);
  }
}

}  // namespace onnx
}  // namespace pif
