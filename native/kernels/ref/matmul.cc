// Matrix products and softmax: matmul_v2 / pd_op.matmul (batched, NumPy
// broadcasting over leading dims, 1-D operand rules), the old matmul
// (transpose_X/Y, alpha), mul (x/y_num_col_dims) and softmax. float32; GEMMs
// go through sgemm (oneDNN's plain dnnl_sgemm).
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/ref/gemm.h"
#include "kernels/registry.h"

namespace pif {
namespace {

std::shared_ptr<const void> prep_matmul_v2(const PrepareCtx& c) {
  bool tx = c.attr.b(c.attr.has("transpose_x") ? "transpose_x" : "trans_x", false);
  bool ty = c.attr.b(c.attr.has("transpose_y") ? "transpose_y" : "trans_y", false);
  return make_state<MatmulAttr>(tx, ty, 1.0f, rank0_as_1d(c));
}

std::shared_ptr<const void> prep_matmul_v1(const PrepareCtx& c) {
  return make_state<MatmulAttr>(c.attr.b("transpose_X", false), c.attr.b("transpose_Y", false),
                                static_cast<float>(c.attr.f("alpha", 1.0)), rank0_as_1d(c));
}

// Shapes of a batched matmul after the 1-D rules.
struct MatmulPlan {
  std::vector<int64_t> xb, yb, ob;  // batch dims (x, y aligned to ob's rank)
  int64_t m, n, k;
  bool tx, ty;
  std::vector<int64_t> out_dims;
};

MatmulPlan plan_matmul(const RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& y = need_input(c, 1, "Y");
  expect_f32(x, "X");
  expect_f32(y, "Y");
  const auto& a = c.node.attrs<MatmulAttr>();
  if (x.dims.empty() || y.dims.empty()) op_fail("matmul: operands must have rank >= 1");
  MatmulPlan p;
  std::vector<int64_t> xd = x.dims, yd = y.dims;
  bool x1 = xd.size() == 1, y1 = yd.size() == 1;
  // A 1-D x is a row vector [1,K]; a 1-D y a column vector [K,1]; transposes
  // of 1-D operands are ignored.
  p.tx = x1 ? false : a.trans_x;
  p.ty = y1 ? false : a.trans_y;
  if (x1) xd.insert(xd.begin(), 1);
  if (y1) yd.push_back(1);
  size_t xr = xd.size(), yr = yd.size();
  p.m = p.tx ? xd[xr - 1] : xd[xr - 2];
  int64_t kx = p.tx ? xd[xr - 2] : xd[xr - 1];
  int64_t ky = p.ty ? yd[yr - 1] : yd[yr - 2];
  p.n = p.ty ? yd[yr - 2] : yd[yr - 1];
  if (kx != ky) {
    op_fail("matmul: inner dimensions differ: X " + shape_str(x.dims) +
            (a.trans_x ? " (transposed)" : "") + ", Y " + shape_str(y.dims) +
            (a.trans_y ? " (transposed)" : ""));
  }
  p.k = kx;
  std::vector<int64_t> xb(xd.begin(), xd.end() - 2), yb(yd.begin(), yd.end() - 2);
  p.ob = broadcast_shapes(xb, yb);
  p.xb.assign(p.ob.size() - xb.size(), 1);
  p.xb.insert(p.xb.end(), xb.begin(), xb.end());
  p.yb.assign(p.ob.size() - yb.size(), 1);
  p.yb.insert(p.yb.end(), yb.begin(), yb.end());
  p.out_dims = p.ob;
  if (!x1) p.out_dims.push_back(p.m);
  if (!y1) p.out_dims.push_back(p.n);
  if (p.out_dims.empty() && a.rank0_1d) p.out_dims.push_back(1);
  return p;
}

void infer_matmul(RunCtx& c) {
  MatmulPlan p = plan_matmul(c);
  set_output(c.output(0), DType::Float32, p.out_dims);
}

void run_matmul(RunCtx& c) {
  MatmulPlan p = plan_matmul(c);
  const float* x = c.input(0)->ptr<float>();
  const float* y = c.input(1)->ptr<float>();
  float* o = c.output(0)->ptr<float>();
  float alpha = c.node.attrs<MatmulAttr>().alpha;
  const int64_t m = p.m, n = p.n, k = p.k;
  if (m == 0 || n == 0) return;
  const int64_t lda = p.tx ? m : k, ldb = p.ty ? k : n;
  const int64_t xs = m * k, ys = k * n, os = m * n;
  int64_t batch = 1;
  for (int64_t d : p.ob) batch *= d;
  if (batch == 0) return;
  bool y_shared = true, x_shared = true;
  for (size_t i = 0; i < p.ob.size(); ++i) {
    if (p.yb[i] != 1) y_shared = false;
    if (p.xb[i] != 1) x_shared = false;
  }
  // One y for every batch, x holding every batch entry and not transposed:
  // the batch folds into M (the common linear-layer case).
  if (y_shared && !p.tx && p.xb == p.ob) {
    sgemm(false, p.ty, batch * m, n, k, alpha, x, lda, y, ldb, 0.f, o, n);
    return;
  }
  // Both operands broadcast over the whole batch: one product, copied.
  if (y_shared && x_shared) {
    sgemm(p.tx, p.ty, m, n, k, alpha, x, lda, y, ldb, 0.f, o, n);
    for (int64_t b = 1; b < batch; ++b) std::copy(o, o + os, o + b * os);
    return;
  }
  // General case: one GEMM per batch entry; small products run in parallel
  // across the batch (oneDNN then runs each single-threaded).
  size_t r = p.ob.size();
  std::vector<int64_t> sx(r), sy(r);
  int64_t px = 1, py = 1;
  for (size_t i = r; i-- > 0;) {
    sx[i] = p.xb[i] == 1 ? 0 : px;
    sy[i] = p.yb[i] == 1 ? 0 : py;
    px *= p.xb[i];
    py *= p.yb[i];
  }
  auto offsets = [&](int64_t b, int64_t* ox, int64_t* oy) {
    int64_t rem = b, a = 0, bb = 0;
    for (size_t i = r; i-- > 0;) {
      int64_t idx = rem % p.ob[i];
      rem /= p.ob[i];
      a += idx * sx[i];
      bb += idx * sy[i];
    }
    *ox = a * xs;
    *oy = bb * ys;
  };
  bool par = batch > 1 && c.threads > 1 && m * n * k < (int64_t(1) << 22);
  if (par) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < batch; ++b) {
      int64_t ox, oy;
      offsets(b, &ox, &oy);
      sgemm(p.tx, p.ty, m, n, k, alpha, x + ox, lda, y + oy, ldb, 0.f, o + b * os, n);
    }
  } else {
    for (int64_t b = 0; b < batch; ++b) {
      int64_t ox, oy;
      offsets(b, &ox, &oy);
      sgemm(p.tx, p.ty, m, n, k, alpha, x + ox, lda, y + oy, ldb, 0.f, o + b * os, n);
    }
  }
}

// ------------------------------------------------------------ mul

struct MulAttr {
  int64_t xn, yn;
};

std::shared_ptr<const void> prep_mul(const PrepareCtx& c) {
  return make_state<MulAttr>(c.attr.i("x_num_col_dims", 1), c.attr.i("y_num_col_dims", 1));
}

void mul_plan(const RunCtx& c, int64_t* m, int64_t* k, int64_t* n, std::vector<int64_t>* od) {
  const RTensor& x = need_input(c, 0, "X");
  const RTensor& y = need_input(c, 1, "Y");
  expect_f32(x, "X");
  expect_f32(y, "Y");
  const auto& a = c.node.attrs<MulAttr>();
  int64_t xr = static_cast<int64_t>(x.dims.size()), yr = static_cast<int64_t>(y.dims.size());
  if (a.xn < 1 || a.xn >= xr + (xr == 1) || a.yn < 1 || a.yn >= yr + (yr == 1)) {
    op_fail("mul: num_col_dims out of range for X " + shape_str(x.dims) + ", Y " +
            shape_str(y.dims));
  }
  auto pr = [](const std::vector<int64_t>& d, int64_t b, int64_t e) {
    int64_t p = 1;
    for (int64_t i = b; i < e && i < static_cast<int64_t>(d.size()); ++i) p *= d[i];
    return p;
  };
  *m = pr(x.dims, 0, a.xn);
  *k = pr(x.dims, a.xn, xr);
  int64_t ky = pr(y.dims, 0, a.yn);
  *n = pr(y.dims, a.yn, yr);
  if (*k != ky) {
    op_fail("mul: X " + shape_str(x.dims) + " flattens to [" + std::to_string(*m) + "," +
            std::to_string(*k) + "] but Y " + shape_str(y.dims) + " to [" + std::to_string(ky) +
            "," + std::to_string(*n) + "]");
  }
  od->assign(x.dims.begin(), x.dims.begin() + std::min(a.xn, xr));
  od->insert(od->end(), y.dims.begin() + std::min(a.yn, yr), y.dims.end());
}

void infer_mul(RunCtx& c) {
  int64_t m, k, n;
  std::vector<int64_t> od;
  mul_plan(c, &m, &k, &n, &od);
  set_output(c.output(0), DType::Float32, od);
}

void run_mul(RunCtx& c) {
  int64_t m, k, n;
  std::vector<int64_t> od;
  mul_plan(c, &m, &k, &n, &od);
  sgemm(false, false, m, n, k, 1.f, c.input(0)->ptr<float>(), k, c.input(1)->ptr<float>(), n, 0.f,
        c.output(0)->ptr<float>(), n);
}

// ------------------------------------------------------------ softmax

std::shared_ptr<const void> prep_softmax(const PrepareCtx& c) {
  return make_state<SoftmaxAttr>(c.attr.i("axis", -1));
}

void infer_softmax(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  expect_f32(x, "X");
  int64_t axis = c.node.attrs<SoftmaxAttr>().axis;
  if (!(x.dims.empty() && (axis == 0 || axis == -1)))  // 0-D: axis 0 / -1 allowed
    norm_axis(axis, static_cast<int64_t>(x.dims.size()));
  set_output(c.output(0), DType::Float32, x.dims);
}

void run_softmax(RunCtx& c) {
  const RTensor& x = *c.input(0);
  RTensor* y = c.output(0);
  int64_t r = static_cast<int64_t>(x.dims.size());
  if (r == 0) {  // softmax of a single value
    y->ptr<float>()[0] = 1.f;
    return;
  }
  int64_t axis = norm_axis(c.node.attrs<SoftmaxAttr>().axis, r);
  int64_t outer = 1, inner = 1, n = x.dims[axis];
  for (int64_t i = 0; i < axis; ++i) outer *= x.dims[i];
  for (int64_t i = axis + 1; i < r; ++i) inner *= x.dims[i];
  const float* in = x.ptr<float>();
  float* out = y->ptr<float>();
  if (outer * inner * n == 0) return;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * n > (1 << 14))
    for (int64_t o = 0; o < outer; ++o) {
      const float* src = in + o * n;
      float* dst = out + o * n;
      float mx = src[0];
      for (int64_t i = 1; i < n; ++i) mx = std::max(mx, src[i]);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        float e = std::exp(src[i] - mx);
        dst[i] = e;
        sum += e;
      }
      float inv = static_cast<float>(1.0 / sum);
      for (int64_t i = 0; i < n; ++i) dst[i] *= inv;
    }
    return;
  }
  // Softmax over a middle axis: vectorise over the contiguous inner block.
#pragma omp parallel for schedule(static) if (outer * n * inner > (1 << 14))
  for (int64_t o = 0; o < outer; ++o) {
    const float* src = in + o * n * inner;
    float* dst = out + o * n * inner;
    std::vector<float> mx(src, src + inner);
    std::vector<double> sum(static_cast<size_t>(inner), 0.0);
    for (int64_t i = 1; i < n; ++i)
      for (int64_t j = 0; j < inner; ++j) mx[j] = std::max(mx[j], src[i * inner + j]);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < inner; ++j) {
        float e = std::exp(src[i * inner + j] - mx[j]);
        dst[i * inner + j] = e;
        sum[j] += e;
      }
    }
    std::vector<float> inv(static_cast<size_t>(inner));
    for (int64_t j = 0; j < inner; ++j) inv[j] = static_cast<float>(1.0 / sum[j]);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < inner; ++j) dst[i * inner + j] *= inv[j];
  }
}

OpDef def(const char* name, std::vector<std::string> types, std::vector<std::string> ins,
          PrepareFn prep, InferFn inf, RunFn run) {
  return make_op_def(name, std::move(types), std::move(ins), {"Out"}, prep, inf, run);
}

}  // namespace

void register_matmul_ops(std::vector<OpDef>* t) {
  t->push_back(def("matmul", {"matmul_v2", "pd_op.matmul"}, {"X", "Y"}, prep_matmul_v2,
                   infer_matmul, run_matmul));
  t->push_back(def("matmul_v1", {"matmul"}, {"X", "Y"}, prep_matmul_v1, infer_matmul, run_matmul));
  t->push_back(def("mul", {"mul"}, {"X", "Y"}, prep_mul, infer_mul, run_mul));
  t->push_back(def("softmax", {"softmax", "pd_op.softmax", "pd_op.softmax_"}, {"X"}, prep_softmax,
                   infer_softmax, run_softmax));
}

}  // namespace pif
