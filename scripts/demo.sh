#!/usr/bin/env bash
# The main job, end to end on this machine: set up and build, then run a small site live: one
# collector and two agents over gRPC on loopback. The simulator writes the last four hours of a
# DMZ relay (content filter, classic stamps) in front of an internal mailbox server (RFC 3339
# stamps, clock 45 s ahead); a feeder replays them into two growing maillogs, rotating one by
# rename+create and the other by copytruncate, while the agents tail them and the collector
# correlates. The demo ends with a message's journey across both hosts, a search and the
# collector's status, all asked of the collector over gRPC with a reader token.
# Usage: scripts/demo.sh [WORK_DIR]   (default: a new temporary directory, kept for you)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

WORK=${1:-$(mktemp -d /tmp/maillens-demo.XXXXXX)}
BIN=$PWD/build/bin
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$WORK/sim" "$WORK/logs" "$WORK/data" "$WORK/state" "$WORK/etc"
mkdir -p "$WORK/logs/dmz" "$WORK/logs/mx" "$WORK/state/dmz" "$WORK/state/mx" "$WORK/etc"

# The traffic ends an hour ago: classic stamps carry no year, and an agent, like Postfix's
# readers, takes them as the most recent past.
START=$(date -u -d '-5 hours' +%Y-%m-%dT%H:00:00Z)
echo "== simulating a site from $START: dmz (classic stamps) and mx (RFC 3339, clock +45 s)"
"$BIN/maillens-simulate" --out "$WORK/sim" --seed 42 --lines 30000 --hosts dmz,mx \
  --skew mx=+45 --stamp dmz=classic,mx=rfc3339 --start "$START" --hours 4

# Tokens: each agent may only write, and only for its own host; the reader may only read.
for who in dmz mx reader; do head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/etc/$who.token"; done
printf 'dmz %s\nmx %s\n' "$(cat "$WORK/etc/dmz.token")" "$(cat "$WORK/etc/mx.token")" >"$WORK/etc/agent.tokens"
printf 'demo %s\n' "$(cat "$WORK/etc/reader.token")" >"$WORK/etc/reader.tokens"
cat >"$WORK/etc/collector.conf" <<EOF
listen = 127.0.0.1:0
data_dir = $WORK/data
agent_tokens_file = $WORK/etc/agent.tokens
reader_tokens_file = $WORK/etc/reader.tokens
EOF

echo "== starting maillens-collector on a free loopback port, then an agent per host"
"$BIN/maillens-collector" --config "$WORK/etc/collector.conf" 2>"$WORK/collector.log" &
PIDS+=($!)
PORT=
for _ in $(seq 1 100); do
  PORT=$(sed -n 's/.*listening on .*(port \([0-9]*\),.*/\1/p' "$WORK/collector.log" | head -n 1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/collector.log"; echo "collector did not start" >&2; exit 1; }
echo "   collector listening on 127.0.0.1:$PORT"
for host in dmz mx; do
  cat >"$WORK/etc/$host.conf" <<EOF
collector = 127.0.0.1:$PORT
token_file = $WORK/etc/$host.token
host = $host
role = $([ $host = dmz ] && echo dmz || echo internal)
files = $WORK/logs/$host/mail.log
state_dir = $WORK/state/$host
start_at = beginning
tz = UTC
batch_wait_ms = 100
EOF
done
for host in dmz mx; do
  "$BIN/maillens-agent" --config "$WORK/etc/$host.conf" 2>"$WORK/agent-$host.log" &
  PIDS+=($!)
done

# The feeder: replays each host's log in five slices, as Postfix would append them; the dmz log
# is rotated by rename+create after the second slice (logrotate's default), the mx log by
# copytruncate after the third.
feed() {
  local host=$1 total slice
  total=$(wc -l <"$WORK/sim/$host.log")
  slice=$(((total + 4) / 5))
  for i in 0 1 2 3 4; do
    sed -n "$((i * slice + 1)),$(((i + 1) * slice))p" "$WORK/sim/$host.log" >>"$WORK/logs/$host/mail.log"
    sleep 0.4
    if [ "$host" = dmz ] && [ $i = 1 ]; then
      mv "$WORK/logs/dmz/mail.log" "$WORK/logs/dmz/mail.log.1" && : >"$WORK/logs/dmz/mail.log"
      echo "   (feeder: rotated dmz/mail.log -> mail.log.1)"
    fi
    if [ "$host" = mx ] && [ $i = 2 ]; then
      cp "$WORK/logs/mx/mail.log" "$WORK/logs/mx/mail.log.1" && : >"$WORK/logs/mx/mail.log"
      echo "   (feeder: copytruncate of mx/mail.log)"
    fi
  done
}
echo "== feeding both logs while the agents ship them"
feed dmz &
FEED_DMZ=$!
feed mx &
FEED_MX=$!
wait $FEED_DMZ $FEED_MX

# A message that entered at the DMZ, passed the content filter and crossed to mx.
QID=$(awk 'match($0, /"link":\{"from":\{"host":"dmz","queue_id":"[0-9A-Za-z]+","first_us":[0-9]+\},"to":\{"host":"mx"/) {
             s = substr($0, RSTART, RLENGTH); sub(/.*"queue_id":"/, "", s); sub(/".*/, "", s)
             print s; exit }' "$WORK/sim/truth.jsonl")
EXPECTED=$(cat "$WORK/sim/dmz.log" "$WORK/sim/mx.log" | wc -l)
READER=(--server "127.0.0.1:$PORT" --token-file "$WORK/etc/reader.token")

echo "== waiting until the collector holds all $EXPECTED lines, indexed and correlated"
for _ in $(seq 1 600); do
  STATUS=$("$BIN/maillens" "${READER[@]}" status --json 2>/dev/null || true)
  STORED=$(echo "$STATUS" | grep -o '"lines": *"[0-9]*"' | grep -o '[0-9]*' |
    awk '{ n += $1 } END { print n + 0 }')
  # Acknowledged batches are durable in the collector's journal; the backlog is what its
  # indexer has not applied yet.
  if [ "${STORED:-0}" -ge "$EXPECTED" ] && echo "$STATUS" | grep -q '"index_backlog_batches": *"0"'; then
    break
  fi
  sleep 0.2
done
echo "   stored: ${STORED:-?} of $EXPECTED"

echo
echo "== maillens --server 127.0.0.1:$PORT trace $QID --raw"
"$BIN/maillens" "${READER[@]}" trace "$QID" --raw
echo
echo "== maillens --server 127.0.0.1:$PORT search status:bounced --limit 5"
"$BIN/maillens" "${READER[@]}" search status:bounced --limit 5 || true
echo
echo "== maillens --server 127.0.0.1:$PORT status"
"$BIN/maillens" "${READER[@]}" status || true
echo
echo "Everything is in $WORK (collector.log, agent-*.log, data/). After this script ends, the"
echo "data stay searchable offline: $BIN/maillens --data $WORK/data search --help"
