// Helpers the native test suites share: a seeded RNG per suite, host tensors and their
// conversion to and from the executor's NamedTensor, attribute constructors, the naive-vs-kernel
// comparison with its tolerance, and small layout helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "graph/op_def.h"
#include "runtime/executor.h"

namespace pif::test {

// std::mt19937_64 with uniform draws; fully specified by the standard, so a seed gives the same
// cases everywhere.
struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed) {}
  int64_t i(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(g);
  }
  double u(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(g); }
  bool b(double p = 0.5) { return u(0, 1) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(i(0, static_cast<int64_t>(v.size()) - 1))];
  }
  std::vector<float> vec(int64_t n, double lo = -1, double hi = 1);
};

// A suite's one random stream (seeded with --seed or `seed`), shared by its cases in their run
// order, and its running case number (for case descriptions).
struct SuiteStream {
  Rng rng;
  int idx = 0;
};
SuiteStream& suite_stream(const std::string& suite, uint64_t seed);

// n standard-normal draws from std::mt19937_64(seed) (the training tests' inputs).
std::vector<double> gaussian_values(size_t n, uint64_t seed);

int64_t prod(const std::vector<int64_t>& d);
inline std::string dims_str(const std::vector<int64_t>& d) { return shape_str(d); }
std::vector<int64_t> unravel(int64_t i, const std::vector<int64_t>& d);
int64_t ravel(const std::vector<int64_t>& idx, const std::vector<int64_t>& d);

// A host tensor: dtype, dims and values as doubles (exact for the small integers used).
struct HT {
  DType dt = DType::Float32;
  std::vector<int64_t> dims;
  std::vector<double> v;
  int64_t numel() const { return prod(dims); }
};
std::vector<uint8_t> to_bytes(const HT& t);
HT from_named(const NamedTensor& nt);
NamedTensor to_named(const std::string& name, const HT& t);
// A constant tensor of raw bytes.
std::shared_ptr<Tensor> make_tensor(DType dt, const std::vector<int64_t>& dims, const void* data,
                                    size_t nbytes);

// Compares `got` with `want` and records the case of `op` (harness.h record()): floats by
// |got - want| / max(1, |want|) <= tol (NaN on both sides matches), integers exactly.
void check_close(const std::string& op, const std::string& desc, const HT& got, const HT& want,
                 double tol);
// Float32 output against double reference values.
void check_f32(const std::string& op, const std::string& desc, const NamedTensor& got,
               const std::vector<int64_t>& want_dims, const std::vector<double>& want,
               double tol = 1e-4);

// Attributes: legacy kinds, PIR's a_array of a_i32 for int lists (attr_ints(v, pir)).
Attr attr_int(int64_t v);
Attr attr_float(double v);
Attr attr_f64(double v);
Attr attr_bool(bool v);
Attr attr_str(const std::string& v);
Attr attr_dtype(const std::string& v);
Attr attr_ints(const std::vector<int64_t>& v);  // legacy INTS
Attr attr_i64s(const std::vector<int64_t>& v);  // legacy LONGS
Attr attr_arr(const std::vector<int64_t>& v);   // PIR a_array of a_i32
Attr attr_ints(const std::vector<int64_t>& v, bool pir);
Attr attr_floats(const std::vector<double>& v, bool pir);

// Paddle's SAME padding split for one axis.
void same_pad(int64_t in, int64_t stride, int64_t k, int64_t* before, int64_t* after);
// Pads (top, bottom, left, right) and dilations resolved as Paddle does: 2 or 4 values,
// VALID = none, SAME = Paddle's split with dilation 1.
struct Pads {
  int64_t t, b, l, r, dh, dw;
};
Pads resolve_pads(const std::vector<int64_t>& pads, const std::string& algo, int64_t H, int64_t W,
                  int64_t sh, int64_t sw, int64_t KH, int64_t KW, int64_t dh, int64_t dw);
// NCHW -> NHWC.
template <typename T>
std::vector<T> nchw_to_nhwc(const std::vector<T>& x, int64_t N, int64_t C, int64_t H, int64_t W) {
  std::vector<T> y(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          y[((n * H + h) * W + w) * C + c] = x[((n * C + c) * H + h) * W + w];
  return y;
}

}  // namespace pif::test
