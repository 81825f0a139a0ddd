#!/usr/bin/env bash
# clang-format check (or, with --fix, in-place format) of every native/**/*.{h,cc}.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find native -type f \( -name '*.h' -o -name '*.cc' \) | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "lint-native: no native sources"
  exit 0
fi
if ! command -v clang-format >/dev/null; then
  echo "lint-native: clang-format not found (apt-get install -y clang-format)" >&2
  exit 1
fi
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
  echo "lint-native: ${#files[@]} files formatted"
fi
