#!/usr/bin/env bash
# Ingest over loopback: two agents, each reading a ~1M-line simulated maillog from its
# beginning, to one collector as deployed; lines/s until the collector has acknowledged every
# line (durable in its ingest journal), and until its store holds every line indexed. Then one agent follows 1,000 lines/s for RATE_SECONDS while its RSS and
# CPU are sampled from /proc. Figures and the command go to docs/PERFORMANCE.md.
# Usage: bench/ingest.sh [BUILD_DIR] [RATE_SECONDS]   (Release build; scripts/setup.sh makes build/)
# The work directory (about 2 GB) is on the disk under /var/tmp, not on a tmpfs, so the
# collector's fsyncs are real.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
cmake --build "$BUILD" --target benches >/dev/null  # not in the default build
SECONDS_AT_RATE=${2:-45}
WORK=$(mktemp -d /var/tmp/maillens_ingest_XXXX)
trap 'rm -rf "$WORK"' EXIT
echo "== $(date -u +%FT%TZ), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bin/maillens-simulate" --out "$WORK/sim" --seed 7 --lines 2000000 --hosts dmz,mx \
  --hours 24 --stamp dmz=classic,mx=classic >/dev/null
echo "command: $BUILD/bin/ingest_bench $BUILD/bin WORK dmz=WORK/sim/dmz.log mx=WORK/sim/mx.log $SECONDS_AT_RATE"
"$BUILD/bin/ingest_bench" "$BUILD/bin" "$WORK" "dmz=$WORK/sim/dmz.log" "mx=$WORK/sim/mx.log" \
  "$SECONDS_AT_RATE"
echo "data directory: $(du -sh "$WORK/data" | cut -f1)"
