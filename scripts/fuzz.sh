#!/usr/bin/env bash
# Fuzzes the model readers with libFuzzer + ASan + UBSan (issue 2, section 4).
#
#   npm run fuzz -- [--seconds N] [--only pdmodel,pdiparams,pir_json] [--jobs J]
#                   [--max-len BYTES] [--build-only] [--fresh-corpus]
#                   [--merge-corpus]
#
# Builds build/fuzz/fuzz_{pdmodel,pdiparams,pir_json} from the core sources
# listed in native/sources.json, writes seeds (built-in programs plus the
# fixtures in ../shared/fixtures/paddle-models or $PIF_FIXTURES: the files
# themselves, prefixes, shrunk re-written variants) to build/fuzz/seeds-*/,
# runs each harness for N seconds (default 60; --jobs runs harnesses side by
# side) on the committed corpus native/fuzz/corpus/<harness>/ and the
# reproducers of fixed findings native/fuzz/regressions/<harness>/ (both read
# only) plus build/fuzz/corpus-*/ (where new inputs go), prints the executions per
# harness, writes build/fuzz/summary.json and appends to
# build/fuzz/history.tsv. --max-len (default 65536) bounds inputs: small
# inputs keep the exec rate high; whole fixture files are covered by
# scripts/corrupt-check.sh and by shrunk seeds. Exits non-zero on any finding
# (crash, sanitizer report, leak, timeout, OOM, contract violation);
# reproducers land in build/fuzz/artifacts/.
# --merge-corpus (no fuzzing): -merge=1 of the committed corpus,
# build/fuzz/corpus-* and the seeds that are not whole fixture files into a
# new native/fuzz/corpus/<harness>/ (inputs cut to --max-len).
#
# Without fixtures the harnesses run on their built-in seeds only (printed);
# PIF_REQUIRE_FIXTURES=1 makes missing fixtures an error.
set -uo pipefail
# shellcheck source=scripts/fuzz-common.sh
. "$(dirname "$0")/fuzz-common.sh"

seconds=60
only="pdmodel,pdiparams,pir_json"
jobs=1
build_only=0
fresh=0
merge=0
max_len=65536
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
    --seconds=*) seconds=${1#*=}; shift ;;
    --only) only=${2:?--only needs a value}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --jobs) jobs=${2:?--jobs needs a value}; shift 2 ;;
    --jobs=*) jobs=${1#*=}; shift ;;
    --max-len) max_len=${2:?--max-len needs a value}; shift 2 ;;
    --max-len=*) max_len=${1#*=}; shift ;;
    --build-only) build_only=1; shift ;;
    --fresh-corpus) fresh=1; shift ;;
    --merge-corpus) merge=1; shift ;;
    -h | --help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) pif_die "unknown argument: $1 (see --help)" ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || pif_die "--seconds must be a positive integer"
[[ "$jobs" =~ ^[0-9]+$ ]] && [ "$jobs" -gt 0 ] || pif_die "--jobs must be a positive integer"

IFS=',' read -r -a harnesses <<<"$only"
targets=()
for h in "${harnesses[@]}"; do
  case "$h" in
    pdmodel | pdiparams | pir_json) targets+=("fuzz_$h") ;;
    *) pif_die "unknown harness '$h' (pdmodel, pdiparams, pir_json)" ;;
  esac
done

pif_build "${targets[@]}"
[ "$build_only" = 1 ] && { echo "fuzz: built ${targets[*]} in $PIF_FUZZ_OUT"; exit 0; }

fixtures=$(pif_fixtures)
if [ -z "$fixtures" ]; then
  if [ "${PIF_REQUIRE_FIXTURES:-}" = 1 ]; then
    pif_die "fixtures not found (../shared/fixtures/paddle-models or \$PIF_FIXTURES) and PIF_REQUIRE_FIXTURES=1"
  fi
  echo "fuzz: fixtures not found (../shared/fixtures/paddle-models or \$PIF_FIXTURES): fuzzing with built-in seeds only"
else
  echo "fuzz: fixtures: $fixtures"
fi

[[ "$max_len" =~ ^[0-9]+$ ]] && [ "$max_len" -gt 0 ] || pif_die "--max-len must be a positive integer"
max_len_of() { echo "$max_len"; }

# malloc_context_size and quarantine_size_mb only shorten the allocation
# stacks kept for reports and the quarantine (use-after-free is still caught
# within 64 MB of later allocations, far more than one input allocates);
# together with -O2 they make the harnesses about 1.5x faster.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1:malloc_context_size=5:quarantine_size_mb=64}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$PIF_FUZZ_OUT/logs" "$PIF_FUZZ_OUT/artifacts"

declare -A seed_rc seed_count
for h in "${harnesses[@]}"; do
  sdir="$PIF_FUZZ_OUT/seeds-$h"
  rm -rf "$sdir"
  mkdir -p "$sdir"
  PIF_FUZZ_SEEDS_OUT="$sdir" PIF_FUZZ_FIXTURES="$fixtures" PIF_FUZZ_MAX_LEN="$(max_len_of "$h")" \
    "$PIF_FUZZ_OUT/fuzz_$h" >"$PIF_FUZZ_OUT/logs/$h-seeds.log" 2>&1
  seed_rc[$h]=$?
  seed_count[$h]=$(find "$sdir" -type f | wc -l)
  if [ "${seed_rc[$h]}" != 0 ]; then
    echo "fuzz: FINDING: seed generation for $h failed (exit ${seed_rc[$h]}); log:" >&2
    tail -n 60 "$PIF_FUZZ_OUT/logs/$h-seeds.log" >&2
  elif grep -q 'warning' "$PIF_FUZZ_OUT/logs/$h-seeds.log"; then
    echo "fuzz: seed warnings for $h:" >&2
    grep 'warning' "$PIF_FUZZ_OUT/logs/$h-seeds.log" | head -n 20 >&2
  fi
  [ "$fresh" = 1 ] && rm -rf "$PIF_FUZZ_OUT/corpus-$h"
  mkdir -p "$PIF_FUZZ_OUT/corpus-$h"
done

# The committed corpus (read only: libFuzzer writes new inputs to the first
# directory only); with "all", also the regression reproducers.
committed_corpus() {
  local d
  for d in corpus ${2:+regressions}; do
    [ -d "$PIF_ROOT/native/fuzz/$d/$1" ] && echo "$PIF_ROOT/native/fuzz/$d/$1"
  done
}

if [ "$merge" = 1 ]; then
  for h in "${harnesses[@]}"; do
    [ "${seed_rc[$h]}" = 0 ] || pif_die "seed generation for $h failed"
    dest="$PIF_ROOT/native/fuzz/corpus/$h"
    tmp="$PIF_FUZZ_OUT/merge-$h"
    rm -rf "$tmp" "$tmp.seeds"
    mkdir -p "$tmp" "$tmp.seeds"
    find "$PIF_FUZZ_OUT/seeds-$h" -type f ! -name 'fixture*' -exec cp {} "$tmp.seeds/" \;
    mapfile -t dirs < <(committed_corpus "$h")
    "$PIF_FUZZ_OUT/fuzz_$h" -merge=1 -max_len="$max_len" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
      -timeout=10 "$tmp" "${dirs[@]}" "$PIF_FUZZ_OUT/corpus-$h" "$tmp.seeds" \
      >"$PIF_FUZZ_OUT/logs/$h-merge.log" 2>&1 ||
      { tail -n 30 "$PIF_FUZZ_OUT/logs/$h-merge.log" >&2; pif_die "merge of $h failed"; }
    rm -rf "$dest" "$tmp.seeds"
    mkdir -p "$(dirname "$dest")"
    mv "$tmp" "$dest"
    echo "fuzz: $h: $(find "$dest" -type f | wc -l) files, $(du -sb "$dest" | cut -f1) bytes in native/fuzz/corpus/$h"
  done
  exit 0
fi

run_one() {
  local h=$1
  local dict="$PIF_ROOT/native/fuzz/$h.dict"
  # -reload=0: nothing else writes to the corpus while this process runs.
  local args=(-max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048
    -malloc_limit_mb=2048 -timeout=10 -reload=0 -max_len="$(max_len_of "$h")"
    -artifact_prefix="$PIF_FUZZ_OUT/artifacts/$h-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  local dirs
  mapfile -t dirs < <(committed_corpus "$h" all)
  touch "$PIF_FUZZ_OUT/logs/.start-$h"
  "$PIF_FUZZ_OUT/fuzz_$h" "${args[@]}" "$PIF_FUZZ_OUT/corpus-$h" "${dirs[@]}" \
    "$PIF_FUZZ_OUT/seeds-$h" >"$PIF_FUZZ_OUT/logs/$h.log" 2>&1
  echo $? >"$PIF_FUZZ_OUT/logs/$h.rc"
}

echo "fuzz: running ${harnesses[*]} for ${seconds}s each (jobs $jobs)"
pif_running=0
for h in "${harnesses[@]}"; do
  if [ "${seed_rc[$h]}" != 0 ]; then
    echo 1 >"$PIF_FUZZ_OUT/logs/$h.rc"
    : >"$PIF_FUZZ_OUT/logs/$h.log"
    continue
  fi
  run_one "$h" &
  pif_throttle "$jobs"
done
wait

ok=1
json_h=""
printf '\n%-10s %14s %10s %8s  %s\n' harness executions exec/s corpus status
for h in "${harnesses[@]}"; do
  log="$PIF_FUZZ_OUT/logs/$h.log"
  rc=$(cat "$PIF_FUZZ_OUT/logs/$h.rc" 2>/dev/null || echo 1)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
  execs=${execs:-0}
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
  corpus=$(find "$PIF_FUZZ_OUT/corpus-$h" -type f | wc -l)
  artifacts=$(find "$PIF_FUZZ_OUT/artifacts" -type f -name "$h-*" -newer "$PIF_FUZZ_OUT/logs/.start-$h" 2>/dev/null | sort)
  status=ok
  if [ "${seed_rc[$h]}" != 0 ]; then
    status="seed-generation-failed"
  elif [ "$rc" != 0 ] || [ -n "$artifacts" ]; then
    status="FINDING(exit $rc)"
  fi
  [ "$status" = ok ] || ok=0
  printf '%-10s %14s %10s %8s  %s\n' "$h" "$execs" "$((execs / seconds))" "$corpus" "$status"
  if [ "$status" != ok ]; then
    {
      echo "---- $h: $status; log $log"
      grep -n -m 1 -E '==PIF-FUZZ==|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error:|uncaught exception|deadly signal' "$log"
      grep -E '^ +#[0-9]+ ' "$log" | head -n 25
      grep -E '^SUMMARY:|Test unit written to|==PIF-FUZZ==' "$log"
    } >&2
  fi
  arts_json=""
  for a in $artifacts; do arts_json="$arts_json${arts_json:+,}\"${a#"$PIF_ROOT"/}\""; done
  json_h="$json_h${json_h:+,}
    \"$h\": {\"executions\": $execs, \"seconds\": $seconds, \"exit_code\": $rc, \"status\": \"$status\", \"corpus_files\": $corpus, \"seed_files\": ${seed_count[$h]}, \"peak_rss_mb\": ${rss:-0}, \"artifacts\": [$arts_json], \"log\": \"build/fuzz/logs/$h.log\"}"
  printf '%s\t%s\t%s\t%s\t%s\tmax_len=%s\n' "$(date -u +%FT%TZ)" "$h" "$seconds" "$execs" "$status" \
    "$(max_len_of "$h")" >>"$PIF_FUZZ_OUT/history.tsv"
done

cat >"$PIF_FUZZ_OUT/summary.json" <<EOF
{
  "seconds_per_harness": $seconds,
  "fixtures": "${fixtures:-}",
  "sanitizers": "address,undefined,fuzzer",
  "ok": $([ "$ok" = 1 ] && echo true || echo false),
  "harnesses": {$json_h
  }
}
EOF
echo "fuzz: summary written to build/fuzz/summary.json (all runs: build/fuzz/history.tsv)"
if [ "$ok" != 1 ]; then
  echo "fuzz: FAILED — findings above; reproduce with build/fuzz/fuzz_<harness> <artifact>" >&2
  exit 1
fi
echo "fuzz: no findings"
