// The benchmark's peak probe (native/runtime/peak_probe.cc): its FMA loop is
// the widest one cpuid offers, whatever oneDNN ISA cap the process runs under
// (this case runs under every cap with the dnnl suite), and both numbers are
// positive and finite. No timing is asserted: the machine is shared.
#include <cmath>
#include <string>

#include "runtime/peak_probe.h"
#include "tests/harness.h"

#define FAILF(msg) ::pif::test::fail_at(__FILE__, __LINE__, msg)

namespace pif::test {

PIF_TEST(dnnl, peak_probe) {
  for (int threads : {1, 2}) {
    PeakProbe p = probe_peak(threads, 0.01);
    const std::string at = " (" + std::to_string(threads) + " threads)";
    if (p.threads != threads) FAILF("threads " + std::to_string(p.threads) + at);
    if (!(p.fma_gflops > 0) || !std::isfinite(p.fma_gflops))
      FAILF("fma_gflops " + std::to_string(p.fma_gflops) + at);
    if (!(p.sgemm_gflops > 0) || !std::isfinite(p.sgemm_gflops))
      FAILF("sgemm_gflops " + std::to_string(p.sgemm_gflops) + at);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (p.avx512 != avx512) FAILF(std::string("avx512 loop: ") + (p.avx512 ? "yes" : "no") + at);
    if (p.avx2_fma != (avx512 || avx2)) FAILF("avx2_fma does not follow cpuid" + at);
#else
    if (p.avx512 || p.avx2_fma) FAILF("an x86 loop reported off x86" + at);
#endif
  }
}

}  // namespace pif::test
