#include "addon/calibrate.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "addon/job.h"
#include "addon/model_info.h"

namespace pif {
namespace addon {
namespace {

struct ConvStats {
  int ordinal = 0;
  double min = 0, max = 0, abs_max = 0;
  int64_t pixels = 0;  // input H * W
  std::vector<double> pct;
};

// Statistics of one convolution input (any layout: read as plain).
ConvStats stats_of(int ordinal, const RTensor& t, const std::vector<double>& percentiles) {
  RTensor plain;
  const RTensor* src = &t;
  if (t.layout) {
    dnnl_backend::to_plain(t, &plain);
    src = &plain;
  }
  ConvStats s;
  s.ordinal = ordinal;
  if (src->dims.size() == 4) s.pixels = src->dims[2] * src->dims[3];
  int64_t n = 1;
  for (int64_t d : src->dims) n *= d;
  const float* x = static_cast<const float*>(src->data);
  if (n <= 0 || src->dtype != DType::Float32) return s;
  float lo = x[0], hi = x[0];
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  s.min = lo;
  s.max = hi;
  s.abs_max = std::max(std::fabs(lo), std::fabs(hi));
  if (!percentiles.empty()) {
    std::vector<float> a(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i)] = std::fabs(x[i]);
    for (double p : percentiles) {
      size_t k = static_cast<size_t>(
          std::min<double>(static_cast<double>(n - 1), std::floor(p / 100.0 * (n - 1) + 0.5)));
      std::nth_element(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(k), a.end());
      s.pct.push_back(a[k]);
    }
  }
  return s;
}

// A calibration run: the statistics, and the run's outputs (the fp32 reference).
struct Calibrated {
  std::vector<ConvStats> stats;
  std::vector<NamedTensor> outputs;
};

}  // namespace

Napi::Value start_calibration(Napi::Env env, std::shared_ptr<Executor> ex,
                              std::vector<NamedTensor> inputs, int threads,
                              std::vector<double> percentiles) {
  return start_job(
      env,
      [ex = std::move(ex), inputs = std::move(inputs), threads,
       percentiles = std::move(percentiles)]() {
        Calibrated c;
        ConvInputObserver observe = [&](int ordinal, const RTensor& t) {
          c.stats.push_back(stats_of(ordinal, t, percentiles));
        };
        c.outputs = ex->run(inputs, threads, &observe);
        return c;
      },
      [](Napi::Env env, const Calibrated& c) -> Napi::Value {
        const std::vector<ConvStats>& out = c.stats;
        Napi::Array a = Napi::Array::New(env, out.size());
        for (size_t k = 0; k < out.size(); ++k) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("ordinal", out[k].ordinal);
          o.Set("min", out[k].min);
          o.Set("max", out[k].max);
          o.Set("absMax", out[k].abs_max);
          o.Set("pixels", static_cast<double>(out[k].pixels));
          Napi::Array p = Napi::Array::New(env, out[k].pct.size());
          for (size_t j = 0; j < out[k].pct.size(); ++j)
            p.Set(static_cast<uint32_t>(j), out[k].pct[j]);
          o.Set("percentiles", p);
          a.Set(static_cast<uint32_t>(k), o);
        }
        Napi::Object r = Napi::Object::New(env);
        r.Set("layers", a);
        r.Set("outputs", outputs_to_js(env, c.outputs));
        return r;
      });
}

Napi::Value conv_layers_to_js(Napi::Env env, const Executor& ex) {
  const std::vector<ConvLayer>& layers = ex.conv_layers();
  Napi::Array a = Napi::Array::New(env, layers.size());
  for (size_t k = 0; k < layers.size(); ++k) {
    const ConvLayer& l = layers[k];
    Napi::Object o = Napi::Object::New(env);
    o.Set("ordinal", static_cast<double>(k));
    o.Set("outChannels", static_cast<double>(l.out_channels));
    o.Set("inChannels", static_cast<double>(l.in_channels));
    o.Set("kh", static_cast<double>(l.kh));
    o.Set("kw", static_cast<double>(l.kw));
    o.Set("groups", static_cast<double>(l.groups));
    o.Set("int8", l.int8);
    o.Set("node", ex.nodes()[l.node].where());
    a.Set(static_cast<uint32_t>(k), o);
  }
  return a;
}

}  // namespace addon
}  // namespace pif
