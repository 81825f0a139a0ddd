// Normalisation ops (inference): batch_norm and layer_norm.
//
// batch_norm: y = (x - mean) / sqrt(variance + epsilon) * scale + bias per
// channel; channel axis 1 (NCHW, any rank >= 2, so BatchNorm1D [N, C] and
// [N, C, L] too) or the last axis (NHWC / data_format NLC...). Only Y is
// computed; the running-statistics outputs stay unallocated.
// layer_norm: normalise over dims [begin_norm_axis, rank); optional Scale and
// Bias of that flattened size. Only Y is computed (Mean/Variance unallocated).
#include <omp.h>

#include <cmath>
#include <vector>

#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

// ---- batch_norm -----------------------------------------------------------

// Canonical inputs: X, Scale, Bias, Mean, Variance.
// PIR batch_norm(_)(x, mean, variance, scale, bias).
enum : size_t { kX = 0, kScale = 1, kBias = 2, kMean = 3, kVar = 4 };

std::shared_ptr<const void> prepare_bn(const PrepareCtx& c) {
  double eps = c.attr.f("epsilon", 1e-5);
  std::string fmt = c.attr.s(c.attr.has("data_layout") ? "data_layout" : "data_format", "NCHW");
  bool last;
  if (fmt == "NCHW" || fmt == "NCL" || fmt == "NC" || fmt == "NCDHW" || fmt == "AnyLayout" ||
      fmt.empty())
    last = false;
  else if (fmt == "NHWC" || fmt == "NLC" || fmt == "NDHWC")
    last = true;
  else
    op_fail("unsupported data_layout '" + fmt + "'");
  return make_state<BnState>(eps, last);
}

int64_t bn_channels(const RunCtx& c) {
  const RTensor& x = need_input(c, kX, "X");
  expect_f32(x, "X");
  if (x.dims.size() < 2) op_fail("batch_norm input must have rank >= 2, got " + shape_str(x.dims));
  bool last = c.node.attrs<BnState>().channel_last;
  int64_t C = last ? x.dims.back() : x.dims[1];
  const char* names[] = {"X", "Scale", "Bias", "Mean", "Variance"};
  for (size_t s = kScale; s <= kVar; ++s) {
    const RTensor& t = need_input(c, s, names[s]);
    expect_f32(t, names[s]);
    if (t.numel() != C) {
      op_fail(std::string(names[s]) + " " + shape_str(t.dims) + " does not match " +
              std::to_string(C) + " channels of " + shape_str(x.dims));
    }
  }
  return C;
}

void infer_bn(RunCtx& c) {
  bn_channels(c);
  const RTensor& x = *c.input(kX);
  set_output(c.output(0), DType::Float32, x.dims);
}

void run_bn(RunCtx& c) {
  int64_t C = bn_channels(c);
  const BnState& s = c.node.attrs<BnState>();
  const RTensor& x = *c.input(kX);
  const float* scale = c.input(kScale)->ptr<float>();
  const float* bias = c.input(kBias)->ptr<float>();
  const float* mean = c.input(kMean)->ptr<float>();
  const float* var = c.input(kVar)->ptr<float>();
  // y = (x - mean) * a + bias with a = scale / sqrt(var + eps). Subtracting
  // the mean first keeps precision when x and mean are large and close.
  std::vector<float> a(static_cast<size_t>(C));
  for (int64_t ch = 0; ch < C; ++ch) {
    double inv = 1.0 / std::sqrt(static_cast<double>(var[ch]) + s.epsilon);
    a[ch] = static_cast<float>(scale[ch] * inv);
  }
  const float* b = bias;
  const float* in = x.ptr<float>();
  float* out = c.output(0)->ptr<float>();
  int64_t total = x.numel();
  if (total == 0) return;
  if (s.channel_last) {
    int64_t rows = total / C;
#pragma omp parallel for schedule(static) if (total > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = in + r * C;
      float* q = out + r * C;
      for (int64_t ch = 0; ch < C; ++ch) q[ch] = (p[ch] - mean[ch]) * a[ch] + b[ch];
    }
    return;
  }
  int64_t N = x.dims[0];
  int64_t inner = total / (N * C);
#pragma omp parallel for collapse(2) schedule(static) if (total > (1 << 16))
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t ch = 0; ch < C; ++ch) {
      const float* p = in + (n * C + ch) * inner;
      float* q = out + (n * C + ch) * inner;
      float av = a[ch], bv = b[ch], mv = mean[ch];
      for (int64_t i = 0; i < inner; ++i) q[i] = (p[i] - mv) * av + bv;
    }
  }
}

// ---- layer_norm -----------------------------------------------------------

std::shared_ptr<const void> prepare_ln(const PrepareCtx& c) {
  return make_state<LnState>(c.attr.f("epsilon", 1e-5), c.attr.i("begin_norm_axis", 1));
}

void ln_split(const RunCtx& c, int64_t* left, int64_t* right) {
  const RTensor& x = need_input(c, 0, "X");
  expect_f32(x, "X");
  int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = c.node.attrs<LnState>().begin_norm_axis;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= std::max<int64_t>(rank, 1) || rank == 0) {
    op_fail("begin_norm_axis " + std::to_string(c.node.attrs<LnState>().begin_norm_axis) +
            " is out of range for input " + shape_str(x.dims));
  }
  *left = 1;
  *right = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? *left : *right) *= x.dims[i];
  const char* names[] = {"X", "Scale", "Bias"};
  for (size_t s = 1; s <= 2; ++s) {
    if (const RTensor* t = c.input(s)) {
      expect_f32(*t, names[s]);
      if (t->numel() != *right) {
        op_fail(std::string(names[s]) + " " + shape_str(t->dims) + " does not match the " +
                std::to_string(*right) + " normalised elements of " + shape_str(x.dims));
      }
    }
  }
}

void infer_ln(RunCtx& c) {
  int64_t l, r;
  ln_split(c, &l, &r);
  set_output(c.output(0), DType::Float32, c.input(0)->dims);
  // Mean / Variance (outputs 1, 2) are not computed: left Undefined.
}

void run_ln(RunCtx& c) {
  int64_t left, right;
  ln_split(c, &left, &right);
  if (left * right == 0) return;
  double eps = c.node.attrs<LnState>().epsilon;
  const float* x = c.input(0)->ptr<float>();
  const float* scale = c.input(1) ? c.input(1)->ptr<float>() : nullptr;
  const float* bias = c.input(2) ? c.input(2)->ptr<float>() : nullptr;
  float* y = c.output(0)->ptr<float>();
#pragma omp parallel for schedule(static) if (left * right > (1 << 15))
  for (int64_t r = 0; r < left; ++r) {
    const float* p = x + r * right;
    float* q = y + r * right;
    double sum = 0;
    for (int64_t i = 0; i < right; ++i) sum += p[i];
    double mean = sum / static_cast<double>(right);
    double sq = 0;
    for (int64_t i = 0; i < right; ++i) {
      double d = p[i] - mean;
      sq += d * d;
    }
    double inv = 1.0 / std::sqrt(sq / static_cast<double>(right) + eps);
    for (int64_t i = 0; i < right; ++i) {
      float v = static_cast<float>((p[i] - mean) * inv);
      if (scale) v *= scale[i];
      if (bias) v += bias[i];
      q[i] = v;
    }
  }
}

}  // namespace

void register_norm_ops(std::vector<OpDef>* t) {
  OpDef bn;
  bn.name = "batch_norm";
  bn.types = {"batch_norm", "pd_op.batch_norm", "pd_op.batch_norm_"};
  bn.legacy_inputs = {"X", "Scale", "Bias", "Mean", "Variance"};
  bn.pir_inputs = {0, 3, 4, 1, 2};
  // PIR results: out, mean_out, variance_out, saved_mean, saved_variance,
  // reserve_space. Only Y is computed.
  bn.legacy_outputs = {"Y", "MeanOut", "VarianceOut", "SavedMean", "SavedVariance", "ReserveSpace"};
  bn.prepare = prepare_bn;
  bn.infer = infer_bn;
  bn.run = run_bn;
  t->push_back(std::move(bn));

  OpDef ln;
  ln.name = "layer_norm";
  ln.types = {"layer_norm", "pd_op.layer_norm"};
  ln.legacy_inputs = {"X", "Scale", "Bias"};
  ln.legacy_outputs = {"Y", "Mean", "Variance"};
  ln.prepare = prepare_ln;
  ln.infer = infer_ln;
  ln.run = run_ln;
  t->push_back(std::move(ln));
}

}  // namespace pif
