#!/usr/bin/env bash
# queue_view_test.sh -- the live queue view against real Postfix queues: three Postfix
# instances from ../shared/postfix-lab/lab.sh, one maillens-agent per instance reading its
# queue every 2 s (queue_interval_s; `postqueue -c DIR -j`, run inside the lab's namespaces
# through a `postqueue` wrapper first in the agents' PATH) and shipping it to a collector over
# mutual TLS. After a traffic run leaves deferred mail (a greylisting sink, a dead next hop),
# it checks that:
#   - every message `postqueue -j` lists as deferred on an instance appears under that host in
#     `maillens --data DIR queue --json`, with the delay reason Postfix gives, and the same
#     through the collector (`maillens --server ... queue --json`);
#   - deferred messages whose trace is stored are joined with it (trace id, first hop);
#   - once they expire (the lab's 4-minute lifetime cut to a second, then a flush: Postfix
#     returns them to their senders) they are gone from the view with the next snapshot of
#     each host.
# Needs root (lab.sh makes namespaces and starts Postfix). Exit 77 (skipped) when not root;
# any other failure is a failure. Bounded well under 3 minutes.
# Env: MAILLENS_BIN_DIR (build/bin), MAILLENS_SHARED_DIR (../shared), MAILLENS_SOURCE_DIR (.),
#      QUEUE_KEEP=1 keeps the work directory, QUEUE_JOBS the traffic run's size (default 40).
set -euo pipefail

SAY=queue_view
KEEP=${QUEUE_KEEP:-0}
source "$(dirname "$0")/lab_site.sh"
JOBS=${QUEUE_JOBS:-40}
lab_site_preflight
lab_site_workdir
t_start=$SECONDS

lab_site_start_collector queue

# The agents run on the host, their postqueue inside the lab (Postfix's showq is reached
# through the lab's mount namespace). The absolute path: inside, PATH still finds this wrapper.
mkdir -p "$W/wrap"
cat >"$W/wrap/postqueue" <<EOF
#!/bin/sh
LAB_DIR='$LAB_DIR' exec '$LAB_SH' exec /usr/sbin/postqueue "\$@"
EOF
chmod 755 "$W/wrap/postqueue"

for i in "${INSTANCES[@]}"; do
  h=${HOSTNAME_OF[$i]}
  lab_site_agent_conf "$i" <<EOF
queue_interval_s = 2
postfix_config_dirs = $ST/$i/etc
EOF
  PATH="$W/wrap:$PATH" "$BIN/maillens-agent" --config "$W/agent-$h.conf" >"$W/agent-$h.log" 2>&1 &
  PIDS+=($!)
done

say "traffic: $JOBS jobs"
# Own deadline below ctest's TIMEOUT, so that the trap brings the lab down.
timeout -k 5 90 "$LAB_SH" traffic "$JOBS" >"$W/traffic.log" 2>&1 ||
  { tail -n 20 "$W/traffic.log"; say "traffic failed or took over 90 s"; exit 1; }
say "traffic done after $((SECONDS - t_start))s"

ml() { "$BIN/maillens" --data "$DATA" "$@"; }
ml_remote() {
  "$BIN/maillens" --server "127.0.0.1:$port" --tls-ca "$W/pki/ca.pem" \
    --tls-cert "$W/pki/readers/queue.pem" --tls-key "$W/pki/readers/queue.key" \
    --token-file "$W/pki/readers/queue.token" "$@"
}
# What Postfix itself lists as deferred on instance $1: "QUEUE_ID<TAB>REASON" per recipient.
postfix_deferred() {
  "$LAB_SH" exec /usr/sbin/postqueue -c "$ST/$1/etc" -j |
    jq -r 'select(.queue_name == "deferred") | .queue_id as $q |
      .recipients[] | "\($q)\t\(.delay_reason // "")"' | sort -u
}
# The same from the view's JSON on stdin, for host $1.
view_deferred() {
  jq -r --arg h "$1" '.hosts[] | select(.host == $h) | .messages[] |
    select(.queue_name == "deferred") | .queue_id as $q |
    .recipients[] | "\($q)\t\(.delay_reason)"' | sort -u
}

# ---------------------------------------------------------------- deferred mail appears
declare -A WANT
total=0
for i in "${INSTANCES[@]}"; do
  WANT[$i]=$(postfix_deferred "$i")
  n=$(grep -c . <<<"${WANT[$i]}" || true)
  say "$i: postqueue -j lists $n deferred recipients"
  total=$((total + n))
done
((total > 0)) || { fail "no deferred mail in any queue after the traffic run (the lab's sinks?)"; exit 1; }

# The view catches up within a few snapshots. A message postqueue listed may be delivered or
# deferred again (new reason) meanwhile; compare with what postqueue lists now as well.
deadline=$((SECONDS + 30))
while :; do
  ml queue --json >"$W/queue.json" 2>"$W/queue.err" || { cat "$W/queue.err"; exit 1; }
  all=1
  for i in "${INSTANCES[@]}"; do
    [[ $(view_deferred "${HOSTNAME_OF[$i]}" <"$W/queue.json") == "${WANT[$i]}" ]] || all=0
  done
  ((all)) && break
  ((SECONDS < deadline)) || break
  sleep 1
  for i in "${INSTANCES[@]}"; do WANT[$i]=$(postfix_deferred "$i"); done
done
for i in "${INSTANCES[@]}"; do
  h=${HOSTNAME_OF[$i]}
  got=$(view_deferred "$h" <"$W/queue.json")
  if [[ $got != "${WANT[$i]}" ]]; then
    fail "$i: the view's deferred recipients differ from postqueue -j:"
    diff <(echo "${WANT[$i]}") <(echo "$got") | head -n 10 >&2 || true
  elif [[ -n $got ]]; then
    n=$(grep -c . <<<"$got")
    empty=$(awk -F'\t' '$2 == ""' <<<"$got" | wc -l)
    say "$h: $n deferred recipients in the view, as postqueue lists them ($empty without a reason)"
    ((empty < n)) || fail "$h: no deferred recipient has a delay reason in the view"
  fi
  jq -e --arg h "$h" 'any(.hosts[]; .host == $h and .error == "" and .taken_us > 0)' \
    "$W/queue.json" >/dev/null || fail "$h: no snapshot, or the agent could not read the queue"
done
jq -r '.hosts[] | .host as $h | .messages[] | select(.queue_name == "deferred") |
  "\($h) \(.queue_id) \(.recipients[0].delay_reason)"' "$W/queue.json" | head -n 5 >&2

# Joined with the stored traces: the dmz's deferrals to the dead next hop are logged and stored.
joined=$(jq '[.hosts[] | . as $q | range(0; .messages | length) as $k |
  select($q.messages[$k].queue_name == "deferred" and $q.traces[$k].trace_id != "0"
         and $q.traces[$k].first_queue_id != "")] | length' "$W/queue.json")
say "$joined deferred messages joined with their stored trace"
((joined > 0)) || fail "no deferred message is joined with a stored trace"

# The collector answers the same (GetQueue, reader token over mutual TLS).
ml_remote queue --json >"$W/queue-remote.json" 2>"$W/queue-remote.err" ||
  { cat "$W/queue-remote.err" >&2; fail "maillens --server ... queue failed"; }
remote=$(jq '[.hosts[].messages[] | select(.queue_name == "deferred")] | length' \
  "$W/queue-remote.json" 2>/dev/null || echo 0)
hosts=$(jq -r '[.hosts[].host] | sort | join(" ")' "$W/queue-remote.json" 2>/dev/null || true)
say "through the collector: hosts [$hosts], $remote deferred messages"
[[ $hosts == "dmz mta mx" ]] || fail "the collector's view lists hosts [$hosts], not [dmz mta mx]"
((remote > 0)) || fail "the collector's view lists no deferred message"
# The same recorded queues either way, but for the moment each was asked (now_us) and the ages
# counted from it (age_us). An agent's new snapshot can land between the two reads: up to three
# tries.
same=0
for _ in 1 2 3; do
  ml queue --json >"$W/q-local.json" 2>"$W/q-local.err" || fail "maillens queue --json failed"
  ml_remote queue --json >"$W/q-remote.json" 2>"$W/q-remote.err" ||
    fail "maillens --server ... queue --json failed"
  live='del(.now_us) | del(.. | .age_us?)'
  if diff <(jq "$live" "$W/q-local.json") <(jq "$live" "$W/q-remote.json") >"$W/q.diff"; then
    same=1
    break
  fi
done
((same)) || { head -n 40 "$W/q.diff" >&2; fail "queue --json differs between --data and --server"; }
[[ $(jq '.hosts | length' "$W/q-local.json") == 3 ]] || fail "the compared queues are not all there"
ml queue queue:deferred >"$W/queue.txt" 2>&1 || fail "maillens queue (table) failed"
grep -q "snapshot .* old" "$W/queue.txt" || fail "the table does not say how old the snapshots are"

# ---------------------------------------------------------------- expired mail disappears
# The lab keeps deferred mail for 4 minutes (maximal_queue_lifetime). Shorten the lifetimes to
# a second and flush: the queue manager then returns each deferred message to its sender as
# expired ("status=expired, returned to sender") and removes it, as it would after 4 minutes.
# A deferred message in the middle of a retry sits in the active queue and comes back, and a
# returned message may be deferred in turn: flush until postqueue lists no deferred message.
for i in "${INSTANCES[@]}"; do
  "$LAB_SH" exec /usr/sbin/postconf -c "$ST/$i/etc" -e maximal_queue_lifetime=1s \
    bounce_queue_lifetime=1s >>"$W/expire.log" 2>&1 || fail "$i: postconf lifetimes failed"
  "$LAB_SH" exec /usr/sbin/postfix -c "$ST/$i/etc" reload >>"$W/expire.log" 2>&1 ||
    fail "$i: postfix reload failed"
done
sleep 2
for _ in 1 2 3 4 5 6 7 8 9 10; do
  for i in "${INSTANCES[@]}"; do
    "$LAB_SH" exec /usr/sbin/postqueue -c "$ST/$i/etc" -f >>"$W/expire.log" 2>&1 ||
      fail "$i: postqueue -f failed"
  done
  sleep 2
  left=0
  for i in "${INSTANCES[@]}"; do [[ -z $(postfix_deferred "$i") ]] || left=1; done
  ((left == 0)) && break
done
((left == 0)) || fail "postqueue still lists deferred mail after the lifetimes ran out"
expired=$(cat "$ST"/logs/*.maillog 2>/dev/null | grep -c 'status=expired' || true)
say "Postfix returned $expired expired messages to their senders"
deleted_us=$(($(date +%s%N) / 1000))
deadline=$((SECONDS + 30))
while :; do
  ml queue --json >"$W/queue-after.json" 2>/dev/null || true
  fresh=$(jq --argjson t "$deleted_us" '[.hosts[] | select((.taken_us | tonumber) > $t)] | length' \
    "$W/queue-after.json" 2>/dev/null || echo 0)
  ((fresh == ${#INSTANCES[@]})) && break
  ((SECONDS < deadline)) || break
  sleep 1
done
((fresh == ${#INSTANCES[@]})) || fail "only $fresh of ${#INSTANCES[@]} hosts sent a snapshot after the expiry"
left=$(jq '[.hosts[].messages[] | select(.queue_name == "deferred")] | length' "$W/queue-after.json")
((left == 0)) || fail "$left deferred messages still in the view after they expired"
say "after the deferred mail expired: $left deferred messages in the view"

say "finished in $((SECONDS - t_start))s"
if ((FAILED)); then exit 1; fi
say "PASS"
