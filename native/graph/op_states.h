// Parsed attributes of the ops that graph passes and the fast backends reason
// about. The reference kernels' prepare() functions (kernels/ref) produce
// them; the fusion passes (passes/fuse) and the oneDNN backend (kernels/dnnl)
// read them, so all three agree on one meaning of every attribute.
#pragma once

#include <cstdint>
#include <vector>

namespace pif {

enum class PadAlgo { Explicit, Same, Valid };

// conv2d / depthwise_conv2d / conv2d_transpose.
struct ConvState {
  bool transpose = false;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, groups = 1;
  int64_t pads[4] = {0, 0, 0, 0};  // top, bottom, left, right
  PadAlgo algo = PadAlgo::Explicit;
  bool nhwc = false;
  std::vector<int64_t> output_padding;  // transpose only
  std::vector<int64_t> output_size;     // transpose only (legacy attribute)
};

// Unary elementwise ops (activations, scale, dropout at inference, clip...).
enum class UnKind {
  Relu,
  Relu6,
  Sigmoid,
  Tanh,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Abs,
  Square,
  Erf,
  HardSwish,
  HardSigmoid,
  Swish,
  GeluErf,
  GeluTanh,
  LeakyRelu,
  Scale,
  Clip,
  Pow,
  Identity,
  Silu,
  Floor,
};

// a, b, c: the op's parameters (Relu6: a = threshold; HardSwish: a =
// threshold, b = scale, c = offset; HardSigmoid: a = slope, b = offset; Swish: a =
// beta; LeakyRelu: a = slope; Scale: a = scale, b = bias, flag =
// bias_after_scale; Clip: a = min, b = max; Pow: a = exponent).
struct UnState {
  UnKind kind;
  double a = 0, b = 0, c = 0;
  bool flag = false;
};

enum class BinKind { Add, Sub, Mul, Div, Pow, Max, Min, FloorDiv, Mod };

struct BinState {
  BinKind kind;
  int64_t axis;  // -1 = NumPy alignment
};

struct BnState {
  double epsilon;
  bool channel_last;
};

struct LnState {
  double epsilon;
  int64_t begin_norm_axis;
};

struct PoolState {
  bool is_max = false;
  std::vector<int64_t> ksize;  // legacy attribute (PIR: operand 1)
  bool global = false, adaptive = false, exclusive = true, ceil_mode = false;
  int64_t pads[4] = {0, 0, 0, 0};
  PadAlgo algo = PadAlgo::Explicit;
  int64_t sh = 1, sw = 1;
  bool nhwc = false;
};

struct MatmulAttr {
  bool trans_x, trans_y;
  float alpha;
  bool rank0_1d;  // legacy: a vector . vector result is [1] unless declared 0-D
};

struct PermAttr {             // transpose
  std::vector<int64_t> perm;  // as written (may be negative)
};

struct SoftmaxAttr {
  int64_t axis;
};

}  // namespace pif
