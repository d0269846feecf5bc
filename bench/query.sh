#!/usr/bin/env bash
# Search and trace latency at 10 M stored lines: simulates a two-host site of N lines (default
# 10,000,000), imports it (timed), reports the data directory size, then runs query_bench.
# Usage: bench/query.sh [LINES] [WORK_DIR]   (Release build in build/)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --build build --target benches >/dev/null  # not in the default build
LINES=${1:-10000000}
WORK=${2:-/tmp/maillens_query_bench}
rm -rf "$WORK"
mkdir -p "$WORK"
build/bin/maillens-simulate --out "$WORK/logs" --seed 7 --lines "$LINES" --hosts dmz,mx \
  --start 2024-11-01T00:00:00Z --hours 168 --stamp dmz=rfc3339,mx=rfc3339 >/dev/null
start=$(date +%s.%N)
build/bin/maillens --data "$WORK/data" import "$WORK/logs/dmz.log" "$WORK/logs/mx.log"
end=$(date +%s.%N)
awk -v n="$LINES" -v a="$start" -v b="$end" \
  'BEGIN { printf "import: %.1f s, %.0f lines/s\n", b-a, n/(b-a) }'
echo "data directory: $(du -sm "$WORK/data" | cut -f1) MB"
build/bin/query_bench "$WORK/data" 300
