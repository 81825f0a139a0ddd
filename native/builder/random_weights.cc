#include "builder/random_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>

#include "common/error.h"

namespace pif {

namespace {

int64_t tensor_numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

size_t bind_random_params(Program* p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uni = [&](double lo, double hi) {
    double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
    return lo + (hi - lo) * u;
  };
  size_t bound = 0;
  for (Parameter& prm : p->params) {
    if (prm.loaded) continue;
    Tensor& t = prm.tensor;
    DType dt = t.dtype;
    if (dt == DType::Undefined && prm.value >= 0) dt = p->values[prm.value].type.dtype;
    std::vector<int64_t> dims = t.dims;
    if (dims.empty() && prm.value >= 0) dims = p->values[prm.value].type.dims;
    for (int64_t d : dims) {
      if (d < 0) {
        throw ModelError(code::kParams, "", -1, "parameter '" + prm.name + "'",
                         "declared shape " + shape_str(dims) + " is not fully known");
      }
    }
    size_t es = dtype_size(dt);
    if (!es) {
      throw ModelError(code::kParams, "", -1, "parameter '" + prm.name + "'", "unknown dtype");
    }
    int64_t n = tensor_numel(dims);
    t.dtype = dt;
    t.dims = dims;
    t.storage = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(n) * es);
    t.offset = 0;
    t.nbytes = static_cast<uint64_t>(n) * es;
    // Value ranges by role: batch-norm variance > 0; 1-D scales near 1
    // (".w_0" of norms); other 1-D (biases, means) small; weights scaled by
    // fan-in (He-uniform) so deep stacks stay in range.
    const std::string& nm = prm.name;
    double lo, hi;
    bool is_var = nm.find("variance") != std::string::npos ||
                  nm.find("_var") != std::string::npos ||
                  (dims.size() == 1 && nm.size() > 4 && nm.compare(nm.size() - 4, 4, ".w_2") == 0);
    bool is_scale = dims.size() == 1 && nm.size() > 4 && nm.compare(nm.size() - 4, 4, ".w_0") == 0;
    if (is_var) {
      lo = 0.5;
      hi = 1.5;
    } else if (is_scale) {
      lo = 0.8;
      hi = 1.2;
    } else if (dims.size() <= 1) {
      lo = -0.1;
      hi = 0.1;
    } else {
      int64_t fan_in =
          dims.size() == 2 ? dims[0] : tensor_numel(dims) / std::max<int64_t>(dims[0], 1);
      double b = std::sqrt(3.0 / static_cast<double>(std::max<int64_t>(fan_in, 1)));
      lo = -b;
      hi = b;
    }
    uint8_t* q = t.storage->data();
    for (int64_t i = 0; i < n; ++i) {
      double v = uni(lo, hi);
      switch (dt) {
        case DType::Float32: {
          float f = static_cast<float>(v);
          std::memcpy(q + i * 4, &f, 4);
          break;
        }
        case DType::Float64: std::memcpy(q + i * 8, &v, 8); break;
        case DType::Int32: {
          int32_t x = static_cast<int32_t>(std::floor(v * 10));
          std::memcpy(q + i * 4, &x, 4);
          break;
        }
        case DType::Int64: {
          int64_t x = static_cast<int64_t>(std::floor(v * 10));
          std::memcpy(q + i * 8, &x, 8);
          break;
        }
        default: break;  // other dtypes stay zero (vector is zero-initialised)
      }
    }
    prm.loaded = true;
    ++bound;
  }
  return bound;
}

}  // namespace pif
