#!/usr/bin/env bash
# Native tests: builds the test harness native/tests/ (pif_tests, without the addon) and runs it
# through ctest: the reference-kernel suites (ref_conv, ref_shape: every ref kernel against
# independent naive loops on random shapes), the high-performance-mode suite (dnnl: the graph
# passes and the oneDNN kernels against the reference kernels), our JSON parser/writer (json)
# the JPEG decoder of the image batch (jpeg) and training (train: the losses and the head tier's
# gradients against finite differences, a short training run).
# Part of `npm test` (npm run test:native). `build/tools/pif_tests --list` lists the cases;
# `--filter` runs some of them.
#
# ISA matrix: the CPU under CI changes (AVX2-only AMD, AVX-512 Intel, sometimes AVX512-BF16 or
# AMX), and oneDNN picks other implementations on each. So ctest runs the dnnl suite under every
# oneDNN ISA cap (ONEDNN_MAX_CPU_ISA = SSE41, AVX, AVX2, AVX2_VNNI, AVX512_CORE,
# AVX512_CORE_VNNI, AVX512_CORE_BF16, AVX512_CORE_AMX); a cap this CPU lacks (/proc/cpuinfo) is
# skipped at run time; each other must pass, run at its cap and report no convolution on the
# reference kernel after a refused fused primitive. At the CPU's own ISA it runs again with the
# fused convolution primitives refused (PIF_TEST_DNNL_REFUSE), so the sum and split paths are
# checked on every machine. The reference suites also run under the SSE4.1 cap (dnnl_sgemm
# dispatch). The debug tools of native/tools/ are built too, so that they keep compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/tools
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DPIF_BUILD_ADDON=OFF \
  -DPIF_BUILD_TOOLS=ON -DPIF_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" --parallel "$(nproc)" \
  --target pif_tests pir_check build_model run_model export_onnx

echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "CPU flags: $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2- | tr ' ' '\n' |
  grep -E '^(sse4_1|avx|avx2|fma|avx_vnni|avx512[a-z_0-9]*|amx[a-z_0-9]*)$' | tr '\n' ' ')"
mapfile -t caps < <("$BUILD/pif_tests" --isa-caps)
echo "oneDNN ISA caps to run: ${caps[*]}"

matrix="$BUILD/isa-matrix"
rm -rf "$matrix"
mkdir -p "$matrix"
status=0
(cd "$BUILD" && ctest --output-on-failure -j "$(nproc)") || status=1

echo "--- ISA matrix"
for name in "${caps[@]}" refused-fused refused-fused-sum; do
  if [ -f "$matrix/$name.txt" ]; then
    echo "  $(cat "$matrix/$name.txt")"
  else
    echo "  $name: no result (failed before its summary)"
  fi
done
exit $status
