// Unary elementwise ops: activations, scale, dropout (inference), clip, pow.
// Semantics per ../shared/spec/paddle-formats.md section 7.
#include <cmath>

#include "graph/op_states.h"
#include "kernels/ref/common.h"
#include "kernels/registry.h"

namespace pif {
namespace {

// Every UnKind, for switches that dispatch to unary_value<K>.
#define PIF_UNARY_KINDS(X) \
  X(Relu)                  \
  X(Relu6)                 \
  X(Sigmoid)               \
  X(Tanh)                  \
  X(Exp)                   \
  X(Log)                   \
  X(Sqrt)                  \
  X(Rsqrt)                 \
  X(Abs)                   \
  X(Square)                \
  X(Erf)                   \
  X(HardSwish)             \
  X(HardSigmoid)           \
  X(Swish)                 \
  X(GeluErf)               \
  X(GeluTanh)              \
  X(LeakyRelu)             \
  X(Scale)                 \
  X(Clip)                  \
  X(Pow)                   \
  X(Identity)              \
  X(Silu)                  \
  X(Floor)

// The float32 formula of each unary kind: the one definition used by the
// reference kernel, by fused post-ops (apply_unary) and as the oracle for the
// oneDNN eltwise mapping.
template <UnKind K>
inline float unary_value(const UnState& s, float v) {
  const float a = static_cast<float>(s.a), b = static_cast<float>(s.b),
              cc = static_cast<float>(s.c);
  (void)a, (void)b, (void)cc;
  switch (K) {
    case UnKind::Relu: return v > 0.f ? v : 0.f;
    case UnKind::Relu6: return std::min(std::max(v, 0.f), a);
    case UnKind::Sigmoid: return 1.f / (1.f + std::exp(-v));
    case UnKind::Tanh: return std::tanh(v);
    case UnKind::Exp: return std::exp(v);
    case UnKind::Log: return std::log(v);
    case UnKind::Sqrt: return std::sqrt(v);
    case UnKind::Rsqrt: return 1.f / std::sqrt(v);
    case UnKind::Abs: return std::fabs(v);
    case UnKind::Square: return v * v;
    case UnKind::Erf: return std::erf(v);
    case UnKind::Floor: return std::floor(v);
    // y = x * min(max(x + offset, 0), threshold) / scale
    case UnKind::HardSwish: return v * std::min(std::max(v + cc, 0.f), a) / b;
    case UnKind::HardSigmoid: return std::min(std::max(a * v + b, 0.f), 1.f);
    case UnKind::Swish: return v / (1.f + std::exp(-a * v));
    case UnKind::Silu: return v / (1.f + std::exp(-v));
    case UnKind::GeluErf:
      return 0.5f * v * (1.f + static_cast<float>(std::erf(static_cast<double>(v) * M_SQRT1_2)));
    case UnKind::GeluTanh: {
      const double k = std::sqrt(2.0 / M_PI);
      double t = std::tanh(k * (v + 0.044715 * static_cast<double>(v) * v * v));
      return static_cast<float>(0.5 * v * (1.0 + t));
    }
    case UnKind::LeakyRelu: return v > 0.f ? v : a * v;
    case UnKind::Scale: return s.flag ? v * a + b : (v + b) * a;
    case UnKind::Clip: return std::min(std::max(v, a), b);
    case UnKind::Pow: return std::pow(v, a);
    case UnKind::Identity: return v;
  }
  return v;
}

template <typename F>
void map_f32(const RTensor& x, RTensor* y, F f) {
  const float* in = x.ptr<float>();
  float* out = y->ptr<float>();
  int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
}

void infer_same(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  set_output(c.output(0), x.dtype, x.dims);
}

// Parameters that may arrive as tensors at run time (PIR scale's `scale`
// operand, clip's min/max) override the prepared values.
void run_unary(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  RTensor* y = c.output(0);
  UnState s = c.node.attrs<UnState>();
  if (s.kind == UnKind::Scale && c.input(1)) s.a = read_scalar(*c.input(1));
  if (s.kind == UnKind::Clip) {
    if (c.input(1)) s.a = read_scalar(*c.input(1));
    if (c.input(2)) s.b = read_scalar(*c.input(2));
  }
  if (x.dtype != DType::Float32) {
    // Shape arithmetic in exported graphs uses scale/clip/identity on ints.
    if ((s.kind == UnKind::Scale || s.kind == UnKind::Identity || s.kind == UnKind::Clip) &&
        (x.dtype == DType::Int64 || x.dtype == DType::Int32)) {
      int64_t n = x.numel();
      for (int64_t i = 0; i < n; ++i) {
        double v = x.dtype == DType::Int64 ? static_cast<double>(x.ptr<int64_t>()[i])
                                           : x.ptr<int32_t>()[i];
        if (s.kind == UnKind::Scale) v = s.flag ? v * s.a + s.b : (v + s.b) * s.a;
        if (s.kind == UnKind::Clip) v = std::min(std::max(v, s.a), s.b);
        if (x.dtype == DType::Int64)
          y->ptr<int64_t>()[i] = static_cast<int64_t>(v);
        else
          y->ptr<int32_t>()[i] = static_cast<int32_t>(v);
      }
      return;
    }
    op_fail(std::string("input must be float32, got ") + dtype_name(x.dtype));
  }
  // One loop per kind (the switch is outside the loop).
  switch (s.kind) {
#define PIF_UNARY_CASE(K) \
  case UnKind::K: map_f32(x, y, [&s](float v) { return unary_value<UnKind::K>(s, v); }); break;
    PIF_UNARY_KINDS(PIF_UNARY_CASE)
#undef PIF_UNARY_CASE
  }
}

std::shared_ptr<const void> state(UnKind k, double a = 0, double b = 0, double c = 0,
                                  bool flag = false) {
  return std::make_shared<const UnState>(UnState{k, a, b, c, flag});
}

template <UnKind K>
std::shared_ptr<const void> prep_plain(const PrepareCtx&) {
  return state(K);
}

std::shared_ptr<const void> prep_relu6(const PrepareCtx& c) {
  return state(UnKind::Relu6, c.attr.f("threshold", 6.0));
}
std::shared_ptr<const void> prep_hard_swish(const PrepareCtx& c) {
  return state(UnKind::HardSwish, c.attr.f("threshold", 6.0), c.attr.f("scale", 6.0),
               c.attr.f("offset", 3.0));
}
std::shared_ptr<const void> prep_hard_sigmoid(const PrepareCtx& c) {
  return state(UnKind::HardSigmoid, c.attr.f("slope", 0.2), c.attr.f("offset", 0.5));
}
std::shared_ptr<const void> prep_swish(const PrepareCtx& c) {
  return state(UnKind::Swish, c.attr.f("beta", 1.0));
}
std::shared_ptr<const void> prep_gelu(const PrepareCtx& c) {
  return state(c.attr.b("approximate", false) ? UnKind::GeluTanh : UnKind::GeluErf);
}
std::shared_ptr<const void> prep_leaky_relu(const PrepareCtx& c) {
  return state(UnKind::LeakyRelu,
               c.attr.f(c.attr.has("negative_slope") ? "negative_slope" : "alpha", 0.02));
}
std::shared_ptr<const void> prep_scale(const PrepareCtx& c) {
  double scale = c.attr.f("scale", 1.0);
  if (const Tensor* t = c.constant(1)) {
    if (t->dtype == DType::Float32 && t->nbytes >= 4)
      scale = *reinterpret_cast<const float*>(t->data());
    else if (t->dtype == DType::Float64 && t->nbytes >= 8)
      scale = *reinterpret_cast<const double*>(t->data());
  }
  return state(UnKind::Scale, scale, c.attr.f("bias", 0.0), 0, c.attr.b("bias_after_scale", true));
}
std::shared_ptr<const void> prep_clip(const PrepareCtx& c) {
  return state(UnKind::Clip, c.attr.f("min", -INFINITY), c.attr.f("max", INFINITY));
}
std::shared_ptr<const void> prep_pow(const PrepareCtx& c) {
  return state(UnKind::Pow, c.attr.f(c.attr.has("factor") ? "factor" : "y", 1.0));
}

// Dropout at inference: `downgrade_in_infer` (Python spelling
// `downscale_in_infer`) scales by 1 - p; `upscale_in_train` is identity.
std::shared_ptr<const void> prep_dropout(const PrepareCtx& c) {
  std::string mode =
      c.attr.s(c.attr.has("mode") ? "mode" : "dropout_implementation", "downgrade_in_infer");
  double p = c.attr.f("dropout_prob", 0.5);
  if (const Tensor* t = c.constant(2)) {  // PIR operand p
    if (t->dtype == DType::Float32 && t->nbytes >= 4)
      p = *reinterpret_cast<const float*>(t->data());
    else if (t->dtype == DType::Float64 && t->nbytes >= 8)
      p = *reinterpret_cast<const double*>(t->data());
    else
      op_fail("dropout probability operand is not a float constant");
  } else if (c.has_input(2)) {
    op_fail("dropout probability operand is not a constant");
  }
  if (mode == "upscale_in_train") return state(UnKind::Identity);
  if (mode == "downgrade_in_infer" || mode == "downscale_in_infer")
    return state(UnKind::Scale, 1.0 - p, 0.0, 0, true);
  op_fail("unknown dropout mode '" + mode + "'");
}

// softsign: y = x / (1 + |x|), float32. Added after the registration split as
// the example of an op that touches one file: no UnKind (so no fused
// post-op), no oneDNN kernel (oneDNN 2.6 has no softsign algorithm).
void run_softsign(RunCtx& c) {
  const RTensor& x = need_input(c, 0, "X");
  expect_f32(x, "X");
  map_f32(x, c.output(0), [](float v) { return v / (1.f + std::fabs(v)); });
}

OpDef unary(const char* name, std::vector<std::string> types, PrepareFn prep,
            std::vector<std::string> inputs = {"X"}) {
  return make_op_def(name, std::move(types), std::move(inputs), {"Out"}, prep, infer_same,
                     run_unary);
}

}  // namespace

float apply_unary(const UnState& s, float v) {
  switch (s.kind) {
#define PIF_UNARY_CASE(K) \
  case UnKind::K: return unary_value<UnKind::K>(s, v);
    PIF_UNARY_KINDS(PIF_UNARY_CASE)
#undef PIF_UNARY_CASE
  }
  return v;
}

void register_activation_ops(std::vector<OpDef>* t) {
  t->push_back(unary("relu", {"relu", "pd_op.relu", "pd_op.relu_"}, prep_plain<UnKind::Relu>));
  t->push_back(unary("relu6", {"relu6", "pd_op.relu6"}, prep_relu6));
  t->push_back(unary("sigmoid", {"sigmoid", "pd_op.sigmoid", "pd_op.sigmoid_"},
                     prep_plain<UnKind::Sigmoid>));
  t->push_back(unary("tanh", {"tanh", "pd_op.tanh", "pd_op.tanh_"}, prep_plain<UnKind::Tanh>));
  t->push_back(unary("exp", {"exp", "pd_op.exp", "pd_op.exp_"}, prep_plain<UnKind::Exp>));
  t->push_back(unary("log", {"log", "pd_op.log"}, prep_plain<UnKind::Log>));
  t->push_back(unary("sqrt", {"sqrt", "pd_op.sqrt", "pd_op.sqrt_"}, prep_plain<UnKind::Sqrt>));
  t->push_back(unary("rsqrt", {"rsqrt", "pd_op.rsqrt"}, prep_plain<UnKind::Rsqrt>));
  t->push_back(unary("abs", {"abs", "pd_op.abs"}, prep_plain<UnKind::Abs>));
  t->push_back(unary("square", {"square", "pd_op.square"}, prep_plain<UnKind::Square>));
  t->push_back(unary("erf", {"erf", "pd_op.erf"}, prep_plain<UnKind::Erf>));
  t->push_back(unary("floor", {"floor", "pd_op.floor"}, prep_plain<UnKind::Floor>));
  t->push_back(
      unary("hard_swish", {"hard_swish", "pd_op.hardswish", "pd_op.hardswish_"}, prep_hard_swish));
  t->push_back(unary("hard_sigmoid", {"hard_sigmoid", "pd_op.hardsigmoid", "pd_op.hardsigmoid_"},
                     prep_hard_sigmoid));
  t->push_back(unary("swish", {"swish", "pd_op.swish", "pd_op.swish_"}, prep_swish));
  t->push_back(unary("silu", {"silu", "pd_op.silu"}, prep_plain<UnKind::Silu>));
  t->push_back(unary("gelu", {"gelu", "pd_op.gelu"}, prep_gelu));
  t->push_back(unary("leaky_relu", {"leaky_relu", "pd_op.leaky_relu", "pd_op.leaky_relu_"},
                     prep_leaky_relu));
  t->push_back(
      unary("scale", {"scale", "pd_op.scale", "pd_op.scale_"}, prep_scale, {"X", "ScaleTensor"}));
  t->push_back(
      unary("clip", {"clip", "pd_op.clip", "pd_op.clip_"}, prep_clip, {"X", "Min", "Max"}));
  t->push_back(unary("pow", {"pow", "pd_op.pow"}, prep_pow));
  t->push_back(unary("dropout", {"dropout", "pd_op.dropout"}, prep_dropout, {"X", "Seed", ""}));
  t->push_back(unary("assign", {"assign", "pd_op.assign", "pd_op.assign_", "pd_op.assign_out_"},
                     prep_plain<UnKind::Identity>));
  t->push_back(make_op_def("softsign", {"softsign", "pd_op.softsign"}, {"X"}, {"Out"}, nullptr,
                           infer_same, run_softsign));
}

}  // namespace pif
