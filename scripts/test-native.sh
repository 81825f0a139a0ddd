#!/usr/bin/env bash
# Native checks: builds the tools in native/tools/ (without the addon) and runs the
# reference-kernel checks, which compare every ref kernel against independent naive loops on
# random shapes, the high-performance-mode check, which compares the graph passes and the oneDNN
# kernels against the reference kernels, and the PIR reader self-test. Part of `npm test`.
#
# ISA matrix: the CPU under CI changes (AVX2-only AMD, AVX-512 Intel, sometimes AVX512-BF16 or
# AMX), and oneDNN picks other implementations on each. So check_dnnl_kernels runs under every
# oneDNN ISA cap this CPU supports (ONEDNN_MAX_CPU_ISA = SSE41, AVX, AVX2, AVX2_VNNI,
# AVX512_CORE, AVX512_CORE_VNNI, AVX512_CORE_BF16, AVX512_CORE_AMX), each must pass and report
# no convolution on the reference kernel; at the CPU's own ISA it runs again with the fused
# convolution primitives refused (PIF_TEST_DNNL_REFUSE), so the sum and split paths are checked
# on every machine. The reference checks also run under the SSE4.1 cap (dnnl_sgemm dispatch).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/tools
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DPIF_BUILD_ADDON=OFF \
  -DPIF_BUILD_TOOLS=ON >/dev/null
cmake --build "$BUILD" --parallel "$(nproc)" \
  --target check_ref_conv_family check_ref_shape_family check_dnnl_kernels pir_check
status=0
run() {
  echo "--- $*"
  if ! "$@"; then
    echo "FAILED: $*" >&2
    status=1
  fi
}

# oneDNN ISA caps this CPU can run, lowest first (from /proc/cpuinfo flags).
isa_caps() {
  local flags
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() {
    local f
    for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done
  }
  has sse4_1 && echo SSE41
  has avx && echo AVX
  has avx2 fma && echo AVX2
  has avx2 fma avx_vnni && echo AVX2_VNNI
  local avx512="avx512f avx512cd avx512bw avx512vl avx512dq"
  # shellcheck disable=SC2086
  has $avx512 && echo AVX512_CORE
  # shellcheck disable=SC2086
  has $avx512 avx512_vnni && echo AVX512_CORE_VNNI
  # shellcheck disable=SC2086
  has $avx512 avx512_vnni avx512_bf16 && echo AVX512_CORE_BF16
  # shellcheck disable=SC2086
  has $avx512 avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16 && echo AVX512_CORE_AMX
  return 0
}

echo "CPU: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "CPU flags: $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2- | tr ' ' '\n' |
  grep -E '^(sse4_1|avx|avx2|fma|avx_vnni|avx512[a-z_0-9]*|amx[a-z_0-9]*)$' | tr '\n' ' ')"
mapfile -t caps < <(isa_caps)
echo "oneDNN ISA caps to run: ${caps[*]}"

run "$BUILD/check_ref_conv_family"
run "$BUILD/check_ref_shape_family"
run env ONEDNN_MAX_CPU_ISA=SSE41 "$BUILD/check_ref_conv_family"
run env ONEDNN_MAX_CPU_ISA=SSE41 "$BUILD/check_ref_shape_family"

summary=()
dnnl_check() { # dnnl_check LABEL CAP [ENV...]
  local label=$1 cap=$2
  shift 2
  local log
  log=$(mktemp)
  echo "--- check_dnnl_kernels [$label]"
  if ! env ONEDNN_MAX_CPU_ISA="$cap" "$@" "$BUILD/check_dnnl_kernels" >"$log" 2>&1; then
    status=1
    echo "FAILED: check_dnnl_kernels [$label]" >&2
  fi
  grep -E '^(FAIL|     )' "$log" | head -n 40 || true
  tail -n 5 "$log"
  local isa refs bare
  isa=$(sed -n 's/^oneDNN ISA: //p' "$log")
  refs=$(sed -n 's/^convolutions on the reference kernel because a fused primitive was refused: \([0-9]*\).*/\1/p' "$log")
  bare=$(sed -n 's/^convolutions on the reference kernel because oneDNN has no usable implementation even without post-ops: \([0-9]*\).*/\1/p' "$log")
  if [ "${refs:-x}" != 0 ]; then
    echo "FAILED: check_dnnl_kernels [$label]: convolutions on the reference kernel after a refused fused primitive: ${refs:-?}" >&2
    status=1
  fi
  if [ "$isa" != "$cap" ]; then
    echo "FAILED: check_dnnl_kernels [$label] ran at oneDNN ISA '$isa', not the cap $cap" >&2
    status=1
  fi
  summary+=("$(printf '%-36s isa %-17s conv on reference: refused-fused %s, no-oneDNN-impl %s; %s' \
    "$label" "${isa:-?}" "${refs:-?}" "${bare:-?}" "$(tail -n 1 "$log" | sed 's/^seed [0-9]*, //')")")
  rm -f "$log"
}
for cap in "${caps[@]}"; do dnnl_check "$cap" "$cap"; done
top=${caps[${#caps[@]} - 1]}
dnnl_check "$top, fused refused" "$top" PIF_TEST_DNNL_REFUSE=fused
dnnl_check "$top, fused+sum refused" "$top" PIF_TEST_DNNL_REFUSE=fused,sum
echo "--- ISA matrix"
for l in "${summary[@]}"; do echo "  $l"; done

run "$BUILD/pir_check" --selftest
exit $status
