# Shared by scripts/fuzz.sh and scripts/corrupt-check.sh (sourced, not run).
# Builds the sanitizer targets of native/fuzz/CMakeLists.txt into build/fuzz/
# and resolves the fixture directory.

PIF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIF_FUZZ_OUT="$PIF_ROOT/build/fuzz"

pif_die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# pif_build TARGET... — configure (once) and build the named targets with
# clang++ (PIF_FUZZ_CXX overrides), ASan+UBSan(+libFuzzer for fuzz_*).
pif_build() {
  local cxx=${PIF_FUZZ_CXX:-clang++}
  command -v "$cxx" >/dev/null 2>&1 ||
    pif_die "$cxx not found; install clang and libclang-rt-14-dev (apt-get install -y clang libclang-rt-14-dev)"
  command -v cmake >/dev/null 2>&1 || pif_die "cmake not found (apt-get install -y cmake)"
  local gen=()
  if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
  local bdir="$PIF_FUZZ_OUT/cmake"
  if [ ! -f "$bdir/CMakeCache.txt" ]; then
    cmake -S "$PIF_ROOT/native/fuzz" -B "$bdir" "${gen[@]}" \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE= \
      -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$PIF_FUZZ_OUT" >"$PIF_FUZZ_OUT/cmake-configure.log" 2>&1 ||
      { cat "$PIF_FUZZ_OUT/cmake-configure.log" >&2; pif_die "cmake configure failed"; }
  fi
  local jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  cmake --build "$bdir" -j "$jobs" --target "$@" || pif_die "build failed ($*)"
}

# Prints the fixture directory (the one holding the model directories) or
# nothing. $PIF_FIXTURES may name ../shared/fixtures or its paddle-models/.
pif_fixtures() {
  local c
  for c in "${PIF_FIXTURES:-}" "$PIF_ROOT/../shared/fixtures"; do
    [ -n "$c" ] || continue
    if [ -d "$c/paddle-models" ]; then
      (cd "$c/paddle-models" && pwd)
      return
    fi
    if [ -d "$c" ] && [ "$(basename "$c")" = paddle-models ]; then
      (cd "$c" && pwd)
      return
    fi
  done
}

# Model directories (depth <= 2 under the fixture dir) that hold a program file.
pif_model_dirs() {
  local root=$1
  find "$root" -mindepth 2 -maxdepth 3 -type f \
    \( -name inference.json -o -name inference.pdmodel -o -name model.pdmodel -o -name __model__ \) \
    -printf '%h\n' | sort -u
}

mkdir -p "$PIF_FUZZ_OUT"

# pif_throttle JOBS — call right after starting a background job: once JOBS jobs run, waits
# for one to end. Uses the caller's `pif_running` counter (start it at 0).
pif_throttle() {
  pif_running=$((pif_running + 1))
  if [ "$pif_running" -ge "$1" ]; then
    wait -n
    pif_running=$((pif_running - 1))
  fi
}
