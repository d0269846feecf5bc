#!/usr/bin/env bash
# Parser lines/s on one core over the corpus and over a 10x repetition of it, printed beside
# `LC_ALL=C grep -c queued` on the same files in the same run.
# Usage: bench/parser.sh [BUILD_DIR]   (Release build; scripts/setup.sh makes build/)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
cmake --build "$BUILD" --target benches >/dev/null  # not in the default build
CORPUS=${MAILLENS_SHARED_DIR:-../shared}/corpus/all_lines.txt
BIG=$(mktemp /tmp/maillens_bench_XXXX.log)
trap 'rm -f "$BIG"' EXIT
for _ in $(seq 10); do cat "$CORPUS"; done > "$BIG"

run() {
  local file=$1
  echo "== $(basename "$file"): $(wc -l < "$file") lines, $(du -h "$file" | cut -f1)"
  taskset -c 0 "$BUILD/bin/parser_bench" "$file" 5
  local t0 t1 n
  t0=$(date +%s.%N)
  n=$(LC_ALL=C taskset -c 0 grep -c queued "$file")
  t1=$(date +%s.%N)
  awk -v n="$n" -v l="$(wc -l < "$file")" -v a="$t0" -v b="$t1" \
    'BEGIN { printf "grep -c queued: %d matches, %.0f lines/s (%.3f s)\n", n, l/(b-a), b-a }'
}
run "$CORPUS"
run "$BIG"
