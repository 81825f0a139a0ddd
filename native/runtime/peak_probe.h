// Peak probe: this machine's fp32 compute peak, measured, for the benchmark's
// "% of peak" column (scripts/bench.ts). Two numbers:
//   - fma_gflops: a register-resident FMA loop (no memory traffic) on every
//     thread of an OpenMP team, summed over the team: the arithmetic ceiling
//     at the widest ISA the CPU has (AVX-512F, else AVX2+FMA, else SSE
//     mul+add; a scalar loop off x86);
//   - sgemm_gflops: oneDNN's dnnl_sgemm on 512x512x512, repeated: what a tuned
//     GEMM reaches in practice on the same threads.
#pragma once

namespace pif {

struct PeakProbe {
  double fma_gflops = 0;    // sum over the team of `threads`
  double sgemm_gflops = 0;  // best repeat of dnnl_sgemm(512, 512, 512)
  int threads = 1;
  bool avx2_fma = false;  // the FMA loop used FMA (AVX2 or AVX-512F; else SSE mul+add)
  bool avx512 = false;    // ... and it was the AVX-512F one (16 lanes)
};

// Runs the FMA loop on `threads` OpenMP threads for about `seconds`, then
// dnnl_sgemm for about `seconds` more. Blocks the calling thread; restores the
// OpenMP thread count it found. threads < 1 counts as 1, seconds is clamped
// to [0.01, 60].
PeakProbe probe_peak(int threads, double seconds);

}  // namespace pif
