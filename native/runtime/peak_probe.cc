#include "runtime/peak_probe.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <vector>

#include "runtime/omp_host.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PIF_PEAK_X86 1
#endif

namespace pif {
namespace {

// Inner block: kChains independent dependency chains, so that both FMA ports
// stay busy despite the 4-5 cycle FMA latency. acc = acc * a + b converges to
// b / (1 - a) and never overflows or goes denormal.
constexpr int kChains = 12;
constexpr long kBlock = 1 << 16;  // iterations between clock checks

// Which loop run_block runs.
enum class FmaIsa { kScalar, kSse, kAvx2, kAvx512 };

#ifdef PIF_PEAK_X86
// AVX-512F: 16 lanes. Two 512-bit FMA ports x 4-cycle latency need 8
// chains in flight; 16 (of 32 zmm registers) leave margin for a 5-6 cycle
// latency or a third port. On a CPU with one 512-bit FMA port this reports
// about the AVX2 rate, which is that CPU's real ceiling.
constexpr int kChains512 = 16;
__attribute__((target("avx512f"))) double fma_block_avx512(float* sink) {
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  __m512 acc[kChains512];
  for (int c = 0; c < kChains512; ++c) acc[c] = _mm512_set1_ps(0.5f + 0.01f * c);
  for (long i = 0; i < kBlock; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains512; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  __m512 s = acc[0];
  for (int c = 1; c < kChains512; ++c) s = _mm512_add_ps(s, acc[c]);
  _mm512_storeu_ps(sink, s);
  return 32.0 * kChains512 * kBlock;  // 16 lanes x (mul + add) per FMA
}

__attribute__((target("avx2,fma"))) double fma_block_avx2(float* sink) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.5f + 0.01f * c);
  for (long i = 0; i < kBlock; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  _mm256_storeu_ps(sink, s);
  return 16.0 * kChains * kBlock;  // 8 lanes x (mul + add) per FMA
}

double fma_block_sse(float* sink) {
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-6f);
  __m128 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm_set1_ps(0.5f + 0.01f * c);
  for (long i = 0; i < kBlock; ++i) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], a), b);
  }
  __m128 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm_add_ps(s, acc[c]);
  _mm_storeu_ps(sink, s);
  return 8.0 * kChains * kBlock;  // 4 lanes x (mul + add)
}
#else
double fma_block_scalar(float* sink) {
  float acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = 0.5f + 0.01f * c;
  for (long i = 0; i < kBlock; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * 0.999999f + 1e-6f;
  }
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += acc[c];
  sink[0] = s;
  return 2.0 * kChains * kBlock;
}
#endif

// The widest FMA the CPU (cpuid, with the OS saving its registers) has;
// nothing else (no oneDNN ISA cap) changes the answer: the probe measures the
// machine, not a configuration.
FmaIsa widest_fma() {
#ifdef PIF_PEAK_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return FmaIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FmaIsa::kAvx2;
  return FmaIsa::kSse;
#else
  return FmaIsa::kScalar;
#endif
}

double run_block(FmaIsa isa, float* sink) {
#ifdef PIF_PEAK_X86
  switch (isa) {
    case FmaIsa::kAvx512: return fma_block_avx512(sink);
    case FmaIsa::kAvx2: return fma_block_avx2(sink);
    default: return fma_block_sse(sink);
  }
#else
  (void)isa;
  return fma_block_scalar(sink);
#endif
}

// Each thread loops for `seconds` on its own clock; the result is the sum of
// the per-thread rates (all threads run at the same time).
double probe_fma(int threads, double seconds, FmaIsa isa) {
  std::vector<double> rate(threads, 0.0);
  std::vector<float> sink(static_cast<size_t>(threads) * 16, 0.f);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    float* s = sink.data() + 16 * t;
    run_block(isa, s);  // warm-up: wakes the core, settles clocks
    double flops = 0;
    const double start = omp_get_wtime();
    double now = start;
    do {
      flops += run_block(isa, s);
      now = omp_get_wtime();
    } while (now - start < seconds);
    rate[t] = flops / (now - start) / 1e9;
  }
  double sum = 0;
  for (double r : rate) sum += r;
  return sink[0] == 12345.f ? sum + 1e-12 : sum;  // keeps the sink alive
}

// dnnl_sgemm (row-major) on 512^3, repeated for `seconds`; the best repeat.
double probe_sgemm(int threads, double seconds) {
  constexpr int n = 512;
  std::vector<float> a(n * n), b(n * n), c(n * n, 0.f);
  for (int i = 0; i < n * n; ++i) {
    a[i] = static_cast<float>((i * 7) % 13) * 0.01f;
    b[i] = static_cast<float>((i * 5) % 11) * 0.01f;
  }
  omp_set_num_threads(threads);
  auto gemm = [&] {
    return dnnl_sgemm('N', 'N', n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
  };
  if (gemm() != dnnl_success) return 0;  // warm-up (and JIT of oneDNN's kernel)
  const double flops = 2.0 * n * n * n;
  double best = 0;
  const double start = omp_get_wtime();
  do {
    const double t0 = omp_get_wtime();
    gemm();
    const double dt = omp_get_wtime() - t0;
    if (dt > 0) best = std::max(best, flops / dt / 1e9);
  } while (omp_get_wtime() - start < seconds);
  return best;
}

}  // namespace

PeakProbe probe_peak(int threads, double seconds) {
  PeakProbe p;
  p.threads = std::max(threads, 1);
  seconds = std::min(std::max(seconds, 0.01), 60.0);
  // On a host thread, as the engine's runs: a team of its own on the
  // caller's thread would stay counted by libgomp and throttle every pool's
  // waits (omp_host.h).
  run_on_omp_host([&] {
    const int saved = omp_get_max_threads();
    const FmaIsa isa = widest_fma();
    p.avx2_fma = isa == FmaIsa::kAvx2 || isa == FmaIsa::kAvx512;
    p.avx512 = isa == FmaIsa::kAvx512;
    p.fma_gflops = probe_fma(p.threads, seconds, isa);
    p.sgemm_gflops = probe_sgemm(p.threads, seconds);
    omp_set_num_threads(saved);
  });
  return p;
}

}  // namespace pif
