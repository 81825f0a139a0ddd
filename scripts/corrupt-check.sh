#!/usr/bin/env bash
# Corruption tests of the model readers under ASan + UBSan (issue 2, section 4).
#
#   bash scripts/corrupt-check.sh [--budget SECONDS] [--seed N] [--flips N] [MODEL_DIR...]
#
# Builds build/fuzz/corrupt_check (native/tools/corrupt_check.cc) and runs it
# on every model directory of the fixtures (../shared/fixtures/paddle-models
# or $PIF_FIXTURES), or on the directories given: each program file is
# truncated at many offsets and has bytes flipped; each params file is
# flipped, truncated and extended. Every case must end in a valid model or a
# typed pif::ModelError. Prints case counts per fixture, writes
# build/fuzz/corrupt-summary.json, saves failing cases under
# build/fuzz/corrupt-failures/ and exits non-zero on any failure.
#
# --budget is seconds per model directory (default 20; directories run in
# parallel, PIF_CORRUPT_JOBS at a time, default nproc: ~1.5 min for all on 2 cores).
# Without fixtures it skips (exit 0) unless PIF_REQUIRE_FIXTURES=1.
set -uo pipefail
# shellcheck source=scripts/fuzz-common.sh
. "$(dirname "$0")/fuzz-common.sh"

args=()
dirs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budget | --seed | --flips) args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) pif_die "unknown argument: $1 (see --help)" ;;
    *) dirs+=("$1"); shift ;;
  esac
done

if [ ${#dirs[@]} -eq 0 ]; then
  fixtures=$(pif_fixtures)
  if [ -z "$fixtures" ]; then
    if [ "${PIF_REQUIRE_FIXTURES:-}" = 1 ]; then
      pif_die "fixtures not found (../shared/fixtures/paddle-models or \$PIF_FIXTURES) and PIF_REQUIRE_FIXTURES=1"
    fi
    echo "corrupt-check: SKIPPED: fixtures not found (../shared/fixtures/paddle-models or \$PIF_FIXTURES)"
    exit 0
  fi
  mapfile -t dirs < <(pif_model_dirs "$fixtures")
  [ ${#dirs[@]} -gt 0 ] || pif_die "no model directories under $fixtures"
fi

pif_build corrupt_check
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
out="$PIF_FUZZ_OUT/corrupt"
rm -rf "$out" "$PIF_FUZZ_OUT/corrupt-failures"
mkdir -p "$out"
jobs=${PIF_CORRUPT_JOBS:-$(nproc 2>/dev/null || echo 2)}
start=$(date +%s)

# One process per model directory, $jobs at a time; each prints its report
# when it finishes.
check_one() {
  local i=$1 dir=$2
  "$PIF_FUZZ_OUT/corrupt_check" ${args[@]+"${args[@]}"} --save "$PIF_FUZZ_OUT/corrupt-failures" \
    --json "$out/$i.json" "$dir" >"$out/$i.log" 2>&1
  echo $? >"$out/$i.rc"
  cat "$out/$i.log"
}
pif_running=0
for i in "${!dirs[@]}"; do
  check_one "$i" "${dirs[$i]}" &
  pif_throttle "$jobs"
done
wait

rc=0
entries=""
for i in "${!dirs[@]}"; do
  r=$(cat "$out/$i.rc" 2>/dev/null || echo 1)
  if [ "$r" != 0 ]; then
    rc=1
    echo "corrupt-check: FAILED (exit $r): ${dirs[$i]} (log $out/$i.log)" >&2
  fi
  e=""
  if [ -f "$out/$i.json" ]; then
    e=$(sed -e 's/^{"seed":[0-9]*,"fixtures":\[//' -e 's/\],"ok":[a-z]*}$//' "$out/$i.json")
  fi
  [ -n "$e" ] || e="{\"dir\":\"${dirs[$i]}\",\"crashed\":true,\"exit_code\":$r}"
  entries="$entries${entries:+,
  }$e"
done
ok=false
[ "$rc" = 0 ] && ok=true
printf '{"ok": %s, "fixtures": [\n  %s\n]}\n' "$ok" "$entries" >"$PIF_FUZZ_OUT/corrupt-summary.json"
if [ "$rc" = 0 ]; then
  verdict="every case ended in a valid model or a typed error"
else
  verdict="FAILURES (see above)"
fi
echo "corrupt-check: ${#dirs[@]} model directories in $(($(date +%s) - start)) s: $verdict" \
  "(summary: build/fuzz/corrupt-summary.json)"
if [ "$rc" != 0 ] && [ -d "$PIF_FUZZ_OUT/corrupt-failures" ]; then
  echo "corrupt-check: failing cases saved in build/fuzz/corrupt-failures/" >&2
fi
exit "$rc"
