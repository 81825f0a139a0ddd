// probePeak({threads, seconds}): this machine's fp32 peak (FMA loop and
// sgemm), measured synchronously on the calling thread. For the benchmark.
#include "addon/addon.h"
#include "addon/job.h"
#include "runtime/peak_probe.h"

namespace pif {
namespace addon {
namespace {

Napi::Value ProbePeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int threads = 1;
  double seconds = 0.5;
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Get("threads").IsNumber()) threads = o.Get("threads").As<Napi::Number>().Int32Value();
    if (o.Get("seconds").IsNumber()) seconds = o.Get("seconds").As<Napi::Number>().DoubleValue();
  }
  if (threads < 1 || threads > 1024) throw_arg(env, "threads must be an integer from 1 to 1024");
  if (!(seconds > 0) || seconds > 60) throw_arg(env, "seconds must be in (0, 60]");
  PeakProbe p = probe_peak(threads, seconds);
  Napi::Object o = Napi::Object::New(env);
  o.Set("fmaGflops", p.fma_gflops);
  o.Set("sgemmGflops", p.sgemm_gflops);
  o.Set("threads", p.threads);
  o.Set("avx2Fma", p.avx2_fma);
  return o;
}

}  // namespace

void init_probe(Napi::Env env, Napi::Object exports) {
  exports.Set("probePeak", Napi::Function::New(env, ProbePeak, "probePeak"));
}

}  // namespace addon
}  // namespace pif
