// ONNX exporter, resampling converters: interpolate, pixel_shuffle and grid_sample.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "export/onnx_internal.h"

namespace pif {
namespace onnx {

// ---------------------------------------------------------------- resample

void Exporter::cv_interp(const Node& n) {
  AttrReader a(*n.source);
  const std::string& type = n.source->type;
  bool type_bilinear = type.find("bilinear") != std::string::npos;
  std::string method = a.s("interp_method", type_bilinear ? "bilinear" : "nearest");
  bool bilinear;
  if (method == "bilinear")
    bilinear = true;
  else if (method == "nearest")
    bilinear = false;
  else
    unsupported("interp_method '" + method + "'");
  int64_t out_h = a.i("out_h", -1), out_w = a.i("out_w", -1);
  std::vector<double> scale;
  if (const Attr* sa = n.source->attr("scale")) {
    std::vector<double> v;
    double one;
    if (sa->as_doubles(&v)) {
      for (double d : v) scale.push_back(static_cast<float>(d));
    } else if (sa->as_double(&one)) {
      if (one > 0) scale = {static_cast<float>(one)};
    }
  }
  bool align_corners = a.b("align_corners", true);
  int64_t align_mode = a.i("align_mode", 1);
  bool nhwc = layout_nhwc(a, a.has("data_layout") ? "data_layout" : "data_format");
  std::string x = in(n, 0);
  std::string xi = nhwc ? to_nchw(x) : x;

  // Output size: SizeTensor list > Scale tensor / attr (> OutSize) > out_h/w.
  std::string scales, sizes;
  auto sizes_from = [&](const std::string& hw) {
    std::string nc = shape_slice(xi, 0, 2);
    return op("Concat", {nc, hw}, {a_i("axis", 0)});
  };
  if (n.inputs.size() > 2 && has(n, 2)) {
    std::vector<int64_t> v;
    bool c;
    std::string hw = ints_from_slot(n, 2, &v, &c);
    if (c && v.size() >= 2) hw = c_i64({v[0], v[1]});
    sizes = sizes_from(hw);
  } else {
    std::vector<double> sc = scale;
    std::string st;
    if (n.inputs.size() > 3 && has(n, 3)) {
      std::vector<double> v;
      if (cdoubles(n, 3, &v) && !v.empty())
        sc = v;
      else
        st = in(n, 3);
    }
    bool out_size = n.inputs.size() > 1 && has(n, 1);
    if (!out_size && !st.empty()) {
      std::string f = op("Reshape", {cast(st, DType::Float32), c_i64({-1})});
      f = op("Expand", {f, c_i64({2})});
      scales = op(
          "Concat",
          {constant(DType::Float32, {2}, std::vector<uint8_t>{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x3f}),
           f},
          {a_i("axis", 0)});
    } else if (!out_size && sc.size() >= 1 && sc[0] > 0 && (sc.size() == 1 || sc[1] > 0)) {
      if (sc.size() == 1) sc.push_back(sc[0]);
      float v4[4] = {1.f, 1.f, static_cast<float>(sc[0]), static_cast<float>(sc[1])};
      std::vector<uint8_t> b(16);
      std::memcpy(b.data(), v4, 16);
      scales = constant(DType::Float32, {4}, b);
    } else if (out_size) {
      std::vector<int64_t> v;
      bool c;
      std::string hw = ints_from_slot(n, 1, &v, &c);
      if (c && v.size() >= 2)
        hw = c_i64({v[0], v[1]});
      else
        hw = op("Slice", {hw, c_i64({0}), c_i64({2}), c_i64({0})});
      sizes = sizes_from(hw);
    } else {
      if (out_h <= 0 || out_w <= 0) bad("interpolation output size is not set");
      sizes = sizes_from(c_i64({out_h, out_w}));
    }
  }
  std::vector<OA> at;
  if (bilinear) {
    at.push_back(a_s("mode", "linear"));
    if (align_corners)
      at.push_back(a_s("coordinate_transformation_mode", "align_corners"));
    else if (align_mode == 0)
      at.push_back(a_s("coordinate_transformation_mode", "pytorch_half_pixel"));
    else
      at.push_back(a_s("coordinate_transformation_mode", "asymmetric"));
  } else {
    at.push_back(a_s("mode", "nearest"));
    if (align_corners) {
      at.push_back(a_s("coordinate_transformation_mode", "align_corners"));
      at.push_back(a_s("nearest_mode", "round_prefer_ceil"));
    } else {
      at.push_back(a_s("coordinate_transformation_mode", "asymmetric"));
      at.push_back(a_s("nearest_mode", "floor"));
    }
  }
  std::vector<std::string> ins = {xi, "", scales};
  if (!sizes.empty()) ins = {xi, "", "", sizes};
  std::string o = out(n, 0, DType::Float32);
  if (nhwc)
    from_nchw(op("Resize", ins, at), o);
  else
    op("Resize", ins, at, o);
}

void Exporter::cv_pixel_shuffle(const Node& n) {
  AttrReader a(*n.source);
  int64_t r = a.i("upscale_factor", 1);
  bool nhwc = layout_nhwc(a, a.has("data_layout") ? "data_layout" : "data_format");
  std::string x = in(n, 0);
  std::string o = out(n, 0, DType::Float32);
  std::vector<OA> at = {a_i("blocksize", r), a_s("mode", "CRD")};
  if (nhwc)
    from_nchw(op("DepthToSpace", {to_nchw(x)}, at), o);
  else
    op("DepthToSpace", {x}, at, o);
}

void Exporter::cv_grid_sample(const Node& n) {
  if (o_.opset < 16) unsupported("grid_sample needs opset 16 (GridSample)");
  AttrReader a(*n.source);
  std::string mode = a.s("mode", "bilinear"), pm = a.s("padding_mode", "zeros");
  if (mode != "bilinear" && mode != "nearest") unsupported("grid_sample mode '" + mode + "'");
  if (pm != "zeros" && pm != "border" && pm != "reflection")
    unsupported("grid_sample padding_mode '" + pm + "'");
  bool ac = a.b("align_corners", true);
  op("GridSample", {in(n, 0), in(n, 1)},
     {a_s("mode", mode), a_s("padding_mode", pm), a_i("align_corners", ac ? 1 : 0)},
     out(n, 0, DType::Float32));
}

}  // namespace onnx
}  // namespace pif
