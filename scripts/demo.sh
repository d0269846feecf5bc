#!/usr/bin/env bash
# The main job, end to end on this machine: set up and build, simulate a two-host site (a DMZ
# relay with a content filter in front of an internal mailbox server, clocks 45 s apart, across
# a new year), import both hosts' logs, then show one message's journey across both hosts and a
# search. (With the agent issue this becomes a collector and two agents over gRPC.)
# Usage: scripts/demo.sh [WORK_DIR]   (default: a new temporary directory, kept for you)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

WORK=${1:-$(mktemp -d /tmp/maillens-demo.XXXXXX)}
BIN=build/bin
rm -rf "$WORK/logs" "$WORK/data"
echo "== simulating a site: dmz (classic stamps) and mx (RFC 3339, clock +45 s) in $WORK/logs"
"$BIN/maillens-simulate" --out "$WORK/logs" --seed 42 --lines 30000 --hosts dmz,mx \
  --skew mx=+45 --stamp dmz=classic,mx=rfc3339 --start 2024-12-31T22:00:00Z --hours 4

echo "== importing mx first, then dmz (order does not matter)"
"$BIN/maillens" --data "$WORK/data" import --tz UTC --year 2024 "$WORK/logs/mx.log"
"$BIN/maillens" --data "$WORK/data" import --tz UTC --year 2024 "$WORK/logs/dmz.log"

# A message that entered at the DMZ, passed the content filter and crossed to mx.
QID=$(awk 'match($0, /"link":\{"from":\{"host":"dmz","queue_id":"[0-9A-Za-z]+","first_us":[0-9]+\},"to":\{"host":"mx"/) {
             s = substr($0, RSTART, RLENGTH); sub(/.*"queue_id":"/, "", s); sub(/".*/, "", s)
             print s; exit }' "$WORK/logs/truth.jsonl")
echo
echo "== maillens trace $QID --raw"
"$BIN/maillens" --data "$WORK/data" trace "$QID" --raw
echo
echo "== maillens search status:bounced --limit 5"
"$BIN/maillens" --data "$WORK/data" search status:bounced --limit 5
echo
echo "Data directory: $WORK/data — try: $BIN/maillens --data $WORK/data search --help"
