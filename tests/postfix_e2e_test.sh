#!/usr/bin/env bash
# postfix_e2e_test.sh -- maillens against real Postfix: three Postfix instances from
# ../shared/postfix-lab/lab.sh (dmz relay, internal mailbox server "mx", a stand-in internet
# "mta") write real maillog files; one maillens-agent per instance tails its file and ships it
# over mutual TLS with tokens (certificates from deploy/make-certs.sh) to a maillens-collector;
# `postfix logrotate` runs while mail flows. Then, through `maillens --data DIR trace/search
# --json`, it checks that:
#   - every message the dmz relayed to mx ("queued as X") is one trace holding both hops, and
#     mx's recipients carry the final status mx's log gives them (and the same for the other
#     directions through the dmz: mx -> dmz, dmz -> mta, mta -> dmz);
#   - a bounce to an unknown user travels back: the trace holds a bounce link and the
#     notification's arrival on the sender's side (mta);
#   - a deferral to the dead next hop is "deferred";
#   - each NOQUEUE reject is found by `search client:IP`;
#   - nothing is lost across logrotate: per host, the lines stored equal the lines in the live
#     maillog plus every rotated .gz.
# Needs root (lab.sh makes network and mount namespaces and starts Postfix); no systemd. Exit 77
# (reported as skipped by ctest) when not root; any other failure is a failure.
# Env: MAILLENS_BIN_DIR (build/bin), MAILLENS_SHARED_DIR (../shared), MAILLENS_SOURCE_DIR (.),
#      E2E_KEEP=1 keeps the work directory, E2E_JOBS1/E2E_JOBS2 the two traffic runs' sizes.
set -euo pipefail

SAY=e2e
KEEP=${E2E_KEEP:-0}
# E2E_RECHECK=DIR runs only the checks again, on the work directory a kept run left behind.
[[ -z ${E2E_RECHECK:-} ]] || KEEP=1
source "$(dirname "$0")/lab_site.sh"
JOBS1=${E2E_JOBS1:-60}   # >= 40: lab.sh then adds its smtpd-timeout and oversize jobs
JOBS2=${E2E_JOBS2:-36}   # >= 36: lab.sh sends one job of every kind first

# One message per failing item, at most 5 per check (its summary line gives the count).
SHOWN=0
fail_item() {
  FAILED=1
  SHOWN=$((SHOWN + 1))
  if ((SHOWN <= 5)); then say "FAIL: $*"; elif ((SHOWN == 6)); then say "(more failures of this check not shown)"; fi
}

lab_site_preflight
lab_site_workdir "${E2E_RECHECK:-}"
LOGS=$ST/logs

# ---------------------------------------------------------------- the lab, certificates, programs
run_site() {
lab_site_start_collector e2e

for i in "${INSTANCES[@]}"; do
  h=${HOSTNAME_OF[$i]}
  lab_site_agent_conf "$i" </dev/null
  "$BIN/maillens-agent" --config "$W/agent-$h.conf" >"$W/agent-$h.log" 2>&1 &
  PIDS+=($!)
done

# ---------------------------------------------------------------- traffic, rotated mid-run
say "traffic: $JOBS1 jobs, postfix logrotate while they run"
# Own deadlines below ctest's TIMEOUT (240 s), so that the trap, not a SIGKILL, ends the run
# and brings the lab down: lab.sh would wait up to 15 minutes for queues to settle.
timeout -k 5 100 "$LAB_SH" traffic "$JOBS1" >"$W/traffic1.log" 2>&1 &
traffic_pid=$!
# Rotate once the dmz log has grown well past its start-up lines, while jobs are still running.
for _ in $(seq 600); do
  (($(wc -l <"$LOGS/dmz.maillog") >= 300)) && break
  kill -0 "$traffic_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$traffic_pid" 2>/dev/null || fail "traffic ended before the rotation: it was not mid-run"
"$LAB_SH" rotate >"$W/rotate1.log" 2>&1
wait "$traffic_pid" || { cat "$W/traffic1.log"; say "traffic run 1 failed or took over 100 s"; exit 1; }
say "traffic: $JOBS2 more jobs into the new files, then rotate again"
timeout -k 5 50 "$LAB_SH" traffic "$JOBS2" >"$W/traffic2.log" 2>&1 ||
  { cat "$W/traffic2.log"; say "traffic run 2 failed or took over 50 s"; exit 1; }
"$LAB_SH" rotate >"$W/rotate2.log" 2>&1
# One line after the second rotation in each new file (postlog(1) writes through postlogd):
# the agents must follow into the files the rotation made.
"$LAB_SH" exec sh -c 'for i in dmz internal ext; do
  postlog -c "$LAB_DIR/state/$i/etc" -t postfix/e2e "maillens e2e: after the second rotation"; done'
for i in "${INSTANCES[@]}"; do
  for _ in $(seq 50); do grep -q 'after the second rotation' "$LOGS/$i.maillog" && break; sleep 0.1; done
done
# Stop Postfix so the files stop growing (queue runs and anvil write lines on their own).
"$LAB_SH" down >"$W/lab-down.log" 2>&1
say "traffic done after $((SECONDS - t_start))s"

for i in "${INSTANCES[@]}"; do
  n=$(find "$LOGS" -name "$i.maillog.*.gz" | wc -l)
  ((n >= 2)) || fail "$i: expected 2 rotated .gz files after two rotations, found $n"
done

}
t_start=$SECONDS
[[ -n ${E2E_RECHECK:-} ]] || run_site

# ---------------------------------------------------------------- nothing lost
ml() { "$BIN/maillens" --data "$DATA" "$@"; }
file_lines() { zcat -f "$LOGS/$1.maillog" "$LOGS/$1".maillog.* | wc -l; }
stored_lines() { ml search "host:$1" --lines --limit 100000000 --json 2>/dev/null | wc -l; }

declare -A WANT
for i in "${INSTANCES[@]}"; do WANT[$i]=$(file_lines "$i"); done
deadline=$((SECONDS + 30))
while :; do
  done_all=1
  for i in "${INSTANCES[@]}"; do
    [[ $(stored_lines "${HOSTNAME_OF[$i]}") == "${WANT[$i]}" ]] || done_all=0
  done
  ((done_all)) && break
  ((SECONDS < deadline)) || break
  sleep 0.5
done
for i in "${INSTANCES[@]}"; do
  got=$(stored_lines "${HOSTNAME_OF[$i]}")
  say "$i: ${WANT[$i]} lines in maillog + rotated files, $got stored for host ${HOSTNAME_OF[$i]}"
  [[ $got == "${WANT[$i]}" ]] || fail "$i: lines lost or duplicated across logrotate (${WANT[$i]} written, $got stored)"
done

# All maillog lines of one instance, oldest file first (a glob sorts, and the rotated names
# end in their YYYYMMDD-HHMMSS stamp).
all_lines() { zcat -f "$LOGS/$1".maillog.*.gz "$LOGS/$1.maillog"; }
for i in "${INSTANCES[@]}"; do all_lines "$i" >"$W/all-$i.log"; done

# ---------------------------------------------------------------- relayed mail: one trace per message
# final_status LOG QID: "ADDRESS STATUS" per recipient, the last status the log gives it; a
# recipient still deferred when postsuper -d removed the message reads "deleted" (nothing
# will retry it; the lab's operator deletes one deferred message per traffic run).
final_status() {
  local removed=0
  grep -qE "postsuper\[[0-9]+\]: $2: removed" "$1" && removed=1
  grep -E ": $2: to=<" "$1" | sed -E 's/.*: to=<([^>]*)>.* status=([a-z]+).*/\1 \2/' |
    awk -v removed=$removed '{ last[$1] = $2 }
      END { for (a in last) print a, (removed && last[a] == "deferred") ? "deleted" : last[a] }' |
    sort
}

check_pair() { # FROM_INSTANCE TO_INSTANCE
  local from=$1 to=$2 relay=${FQDN_OF[$2]} to_host=${HOSTNAME_OF[$2]}
  local total=0 ok=0 qid next json want got
  SHOWN=0
  while read -r qid next; do
    total=$((total + 1))
    json=$(ml trace --json "$qid" 2>/dev/null) || { fail_item "trace $qid ($from -> $to) failed"; continue; }
    if ! jq -e --arg h "$to_host" --arg q "$next" \
      '[.messages[] | select(.host == $h and .queue_id == $q)] | length == 1' <<<"$json" >/dev/null; then
      fail_item "$from $qid -> $to_host $next: not one trace ($(jq -c '[.messages[] | .host + ":" + .queue_id]' <<<"$json"))"
      continue
    fi
    want=$(final_status "$W/all-$to.log" "$next")
    got=$(jq -r --arg h "$to_host" --arg q "$next" \
      '.recipients[] | select(.host == $h and .queue_id == $q) | "\(.to) \(.status)"' <<<"$json" | sort -u)
    if [[ $want != "$got" ]]; then
      fail_item "$to_host $next final status: log says [${want//$'\n'/; }], trace says [${got//$'\n'/; }]"
      continue
    fi
    ok=$((ok + 1))
  done < <(grep -E "relay=$relay\[[0-9.]+\]:[0-9]+,.* status=sent \(250 .*queued as [0-9A-Za-z]+\)" "$W/all-$from.log" |
    sed -E 's/.*: ([0-9A-Za-z]+): to=<.*queued as ([0-9A-Za-z]+)\).*/\1 \2/' | sort -u)
  say "$from -> $to: $ok of $total relayed messages traced across both hosts with the final status"
  ((total > 0)) || fail "$from -> $to: no relayed message in the logs (the lab sent none?)"
}
check_pair dmz internal
check_pair internal dmz
check_pair dmz ext
check_pair ext dmz

# ---------------------------------------------------------------- bounces travel back
check_bounces() { # LOG_INSTANCE ADDRESS_REGEX WHAT
  local inst=$1 re=$2 what=$3 n=0 ok=0 qid json
  SHOWN=0
  while read -r qid; do
    n=$((n + 1))
    json=$(ml trace --json "$qid" 2>/dev/null) || { fail_item "trace $qid failed"; continue; }
    if ! jq -e --arg h "${HOSTNAME_OF[$inst]}" --arg q "$qid" \
      'any(.recipients[]; .host == $h and .queue_id == $q and .status == "bounced")' <<<"$json" >/dev/null; then
      fail_item "$what $qid: recipient not bounced in the trace"
    elif ! jq -e 'any(.links[]; .kind == "bounce")' <<<"$json" >/dev/null; then
      fail_item "$what $qid: no bounce link in the trace (links: $(jq -c .links <<<"$json"))"
    elif ! jq -e --arg q "$qid" '(.messages[] | select(.queue_id == $q) | .sender) as $s |
        any(.recipients[]; .host == "mta" and .to == $s and .status == "sent")' <<<"$json" >/dev/null; then
      fail_item "$what $qid: the notification is not delivered to the original sender on mta in the trace"
    else
      ok=$((ok + 1))
    fi
  done < <(grep -E ": to=<$re>, .*status=bounced" "$W/all-$inst.log" |
    sed -E 's/.*: ([0-9A-Za-z]+): to=<.*/\1/' | sort -u)
  say "$what: $ok of $n bounces traced back to the sender's host"
  ((n > 0)) || fail "$what: no such bounce in the logs"
}
check_bounces dmz 'nosuch[0-9]+@example\.test' "unknown user (550 at mx's RCPT)"
check_bounces internal 'ghost@example\.test' "unknown user after LMTP acceptance"

# ---------------------------------------------------------------- deferrals
n=0 ok=0 SHOWN=0 deleted=0
while read -r qid; do
  # postsuper -d deletes one deferred message in each traffic run (the lab's operator action):
  # it must be traced, but its ending is not a deferral. Some runs defer no other message.
  if grep -qE "postsuper\[[0-9]+\]: $qid: removed" "$W/all-dmz.log"; then
    deleted=$((deleted + 1))
    ml trace --json "$qid" >/dev/null 2>&1 || fail_item "trace $qid (deleted by postsuper -d) failed"
    continue
  fi
  n=$((n + 1))
  json=$(ml trace --json "$qid" 2>/dev/null) || { fail_item "trace $qid failed"; continue; }
  if jq -e --arg q "$qid" 'any(.recipients[]; .host == "dmz" and .queue_id == $q and .status == "deferred")' \
    <<<"$json" >/dev/null; then
    ok=$((ok + 1))
  else
    fail_item "deferred $qid: trace says $(jq -c '[.recipients[] | .to + " " + .status]' <<<"$json")"
  fi
done < <(grep -E ": to=<[^>]*@down\.example\.test>, .*status=deferred" "$W/all-dmz.log" |
  sed -E 's/.*: ([0-9A-Za-z]+): to=<.*/\1/' | sort -u)
say "dead next hop: $ok of $n deferred messages show as deferred ($deleted more deleted by postsuper -d, traced)"
((n + deleted > 0)) || fail "no deferral to down.example.test in the logs"
stored_deferred=$(ml search status:deferred host:dmz --json --limit 100000 | jq -r .queue_id | sort -u | wc -l)
((stored_deferred >= n)) || fail "search status:deferred host:dmz finds $stored_deferred messages, fewer than $n"

# ---------------------------------------------------------------- NOQUEUE rejects by client address
n=0 ok=0 SHOWN=0
for inst in dmz internal; do
  while read -r ip count; do
    n=$((n + 1))
    got=$(ml search "client:$ip" "host:${HOSTNAME_OF[$inst]}" --lines --json --limit 100000 |
      jq -r 'select((.raw // .text // "") | test("NOQUEUE: reject:")) | .host' | wc -l)
    if [[ $got == "$count" ]]; then ok=$((ok + 1)); else
      fail_item "NOQUEUE rejects from $ip on $inst: $count in the log, search client:$ip finds $got"
    fi
  done < <(grep -oE 'NOQUEUE: reject: [A-Z]+ from [^ ]*\[[0-9.]+\]' "$W/all-$inst.log" |
    sed -E 's/.*\[([0-9.]+)\]$/\1/' | sort | uniq -c | awk '{ print $2, $1 }')
done
say "NOQUEUE rejects: $ok of $n client addresses found with all their rejects"
((n > 0)) || fail "no NOQUEUE reject in the logs"

say "finished in $((SECONDS - t_start))s"
if ((FAILED)); then exit 1; fi
say "PASS"
