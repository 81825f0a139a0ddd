#!/usr/bin/env bash
# Native checks: builds the tools in native/tools/ (without the addon) and runs the
# reference-kernel checks, which compare every ref kernel against independent naive loops on
# random shapes, the high-performance-mode check, which compares the graph passes and the oneDNN
# kernels against the reference kernels, and the PIR reader self-test. Part of `npm test`.
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
run "$BUILD/check_ref_conv_family"
run "$BUILD/check_ref_shape_family"
run "$BUILD/check_dnnl_kernels"
run "$BUILD/pir_check" --selftest
exit $status
