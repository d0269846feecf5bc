#!/usr/bin/env bash
# lab_import_order_test.sh -- correlation does not depend on the order logs arrive in, on real
# Postfix whose hosts talk over loopback addresses (../shared/postfix-lab/lab.sh: dmz 127.0.0.2,
# internal "mx" 127.0.0.3, the stand-in internet "mta" 127.0.0.4, which is not imported: to
# maillens it is a foreign MTA on a loopback address, like a tunnel to a smarthost).
#
# lab.sh traffic writes the logs; then `maillens import` stores the dmz and internal logs in
# three ways -- dmz first, internal first, and one file of both merged by time -- and, when
# maillens-collector and maillens-agent are built, a collector receives them from one agent per
# host, the internal host's agent starting only after every dmz line is stored; it checks:
#   - `maillens trace --all --json` is the same in every case (after the normalisation below);
#   - every pair of our instances (dmz, mx) that share a Message-ID is in one trace;
#   - every recipient row's status is its host's last status= line for it, and a recipient one
#     of our hosts refused from another of ours reads as the sender logged it, not "rejected";
#   - every hop the dmz handed to mta ("queued as X" from 127.0.0.4) stays an unlinked external
#     hop with status sent, and the report counts it as a delivery, not as a hop to a content
#     filter (which left the message "in queue"): a loopback hop is a content filter only when
#     the re-injection is seen on the same host;
#   - Dovecot, to the mailbox: the internal host's Dovecot log_path file (dovecot.log) is
#     imported with --format dovecot --host mx -- after the maillogs, or before them in the
#     internal-first case -- and shipped by the internal agent in the live case; every message
#     Postfix handed to Dovecot LMTP shows its mailbox delivery in `trace` (each LMTP reply's
#     session with Dovecot's "saved mail" line, in --json and in the text), counted against
#     the "saved mail" lines of dovecot.log.
# Needs root (lab.sh makes namespaces and starts Postfix). Exit 77 (skipped) when not root.
# Env: MAILLENS_BIN_DIR (build/bin), MAILLENS_SHARED_DIR (../shared), MAILLENS_SOURCE_DIR (.),
#      ORDER_KEEP=1 keeps the work directory, ORDER_JOBS the traffic run's size (default 60),
#      ORDER_LOGS=DIR runs only the checks, on dmz.maillog, internal.maillog and dovecot.log
#      in DIR.
set -euo pipefail

SAY=lab-order
KEEP=${ORDER_KEEP:-0}
source "$(dirname "$0")/lab_site.sh"
JOBS=${ORDER_JOBS:-60} # >= 36: lab.sh then sends one job of every kind

SHOWN=0
fail_item() {
  FAILED=1
  SHOWN=$((SHOWN + 1))
  if ((SHOWN <= 5)); then say "FAIL: $*"; elif ((SHOWN == 6)); then say "(more failures not shown)"; fi
}

# lab_site_preflight, but only `maillens` is needed here.
if [[ $(id -u) != 0 && -z ${ORDER_LOGS:-} ]]; then
  say "SKIP: needs root (lab.sh creates namespaces and starts Postfix)"
  exit 77
fi
[[ -x $LAB_SH ]] || { say "no lab script at $LAB_SH"; exit 1; }
[[ -x $BIN/maillens ]] || { say "no $BIN/maillens: build first"; exit 1; }
command -v jq >/dev/null || { say "jq is not installed (scripts/setup.sh installs it)"; exit 1; }
lab_site_workdir
t_start=$SECONDS
if [[ -n ${ORDER_LOGS:-} ]]; then
  LOGS=$ORDER_LOGS
else
  say "lab up in $LAB_DIR, $JOBS jobs"
  "$LAB_SH" up >"$W/lab-up.log" 2>&1 || { cat "$W/lab-up.log"; exit 1; }
  # Own deadline below ctest's TIMEOUT, so that the trap brings the lab down.
  timeout -k 5 120 "$LAB_SH" traffic "$JOBS" >"$W/traffic.log" 2>&1 ||
    { cat "$W/traffic.log"; say "traffic failed or took over 120 s"; exit 1; }
  "$LAB_SH" down >"$W/lab-down.log" 2>&1 # the files stop growing
  LOGS=$W/logs
  mkdir -p "$LOGS"
  cp "$ST/logs/dmz.maillog" "$ST/logs/internal.maillog" "$LOGS/"
  [[ ! -e $ST/logs/dovecot.log ]] || cp "$ST/logs/dovecot.log" "$LOGS/"
  say "traffic done after $((SECONDS - t_start))s"
fi
grep -q 'relay=mta\.partner\.test\[127\.0\.0\.4\].*status=sent .*queued as' "$LOGS/dmz.maillog" ||
  fail "no hop from dmz to mta over loopback in the logs: nothing to check the external rule on"

ml() { "$BIN/maillens" --data "$1" "${@:2}"; }
# Both files stamp local time without a year, in the same zone; one import per case.
# The merged file is sorted by time (month, day, time) and keeps each file's own order within
# one second (sort -s), as a syslog server writing both hosts into one file would.
sort -s -k1,1M -k2,2n -k3,3 "$LOGS/dmz.maillog" "$LOGS/internal.maillog" >"$W/merged.maillog"
declare -A FILES=(
  [dmz-first]="$LOGS/dmz.maillog $LOGS/internal.maillog"
  [internal-first]="$LOGS/internal.maillog $LOGS/dmz.maillog"
  [merged]="$W/merged.maillog"
)
CASES=(dmz-first internal-first merged)
# trace_id is the smallest instance id of the trace, and instance ids are given in arrival
# order, so it differs between cases. Everything else -- hosts, queue IDs, times, links,
# recipients with status and reply, and the order of every list (hops that started in the same
# second are ordered by host and queue ID, not by arrival) -- must be equal.
NORMALISE='del(.trace_id)'
# A lab without Dovecot (LAB_DOVECOT=0) says so; otherwise its log must be there.
DOVECOT=1
if [[ ${LAB_DOVECOT:-1} == 0 ]]; then
  DOVECOT=0
  say "LAB_DOVECOT=0: no Dovecot, the mailbox checks are left out"
else
  [[ -s $LOGS/dovecot.log ]] || fail "no dovecot.log in $LOGS (LAB_DOVECOT=0 for a lab without it)"
fi
dovecot_import() {
  ((DOVECOT)) || return 0
  ml "$1" import --quiet --format dovecot --host mx "$LOGS/dovecot.log"
}
for c in "${CASES[@]}"; do
  # Dovecot's log before the Postfix logs in one case, after them in the others.
  if [[ $c == internal-first ]]; then dovecot_import "$W/data-$c"; fi
  # shellcheck disable=SC2086 # FILES holds a list of paths without spaces
  ml "$W/data-$c" import --quiet ${FILES[$c]}
  if [[ $c != internal-first ]]; then dovecot_import "$W/data-$c"; fi
  ml "$W/data-$c" trace --all --json | jq -cS "$NORMALISE" | LC_ALL=C sort >"$W/traces-$c.jsonl"
done

# ---------------------------------------------------------------- one answer in every order
n_traces=$(wc -l <"$W/traces-merged.jsonl")
((n_traces > 0)) || fail "no traces at all"
for c in dmz-first internal-first; do
  if cmp -s "$W/traces-merged.jsonl" "$W/traces-$c.jsonl"; then
    say "$c: trace --all --json identical to the merged file's ($n_traces traces)"
  else
    fail "$c: trace --all --json differs from the merged file's (diff below, < merged > $c)"
    diff "$W/traces-merged.jsonl" "$W/traces-$c.jsonl" | head -n 10 >&2 || true
  fi
done

# ---------------------------------------------------------------- live: the internal agent later
# A collector and the dmz's agent first; the internal host's agent starts only once every dmz
# line is stored, so each dmz hop to mx waits for a host that is not there yet (as when the
# internal agent connects minutes later). Agents declare their addresses and names, as in
# production. The traces must be the merged file's.
live_site() {
  local port="" candidate data=$W/data-live
  for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    if [[ -z $(ss -Hltn "sport = :$candidate") ]]; then port=$candidate; break; fi
  done
  [[ -n $port ]] || { fail "live: no free port"; return; }
  printf 'listen = 127.0.0.1:%s\ndata_dir = %s\n' "$port" "$data" >"$W/collector.conf"
  "$BIN/maillens-collector" --config "$W/collector.conf" >"$W/collector.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    [[ -n $(ss -Hltn "sport = :$port") ]] && break
    sleep 0.1
  done
  [[ -n $(ss -Hltn "sport = :$port") ]] || { fail "live: the collector does not listen on :$port"; return; }
  local i h want got files
  for i in dmz internal; do
    h=${HOSTNAME_OF[$i]}
    # The internal host's agent also ships Dovecot's own log file.
    files="$LOGS/$i.maillog"
    [[ $i == internal ]] && ((DOVECOT)) && files+=", $LOGS/dovecot.log format=dovecot"
    printf '%s\n' "collector = 127.0.0.1:$port" "host = $h" "role = $i" "addresses = ${IP_OF[$i]}" \
      "aliases = ${FQDN_OF[$i]}" "files = $files" "state_dir = $W/agent-$h" \
      "start_at = beginning" "batch_wait_ms = 100" >"$W/agent-$h.conf"
    "$BIN/maillens-agent" --config "$W/agent-$h.conf" >"$W/agent-$h.log" 2>&1 &
    PIDS+=($!)
    want=$(wc -l <"$LOGS/$i.maillog")
    [[ $i == internal ]] && ((DOVECOT)) && want=$((want + $(wc -l <"$LOGS/dovecot.log")))
    got=0
    for _ in $(seq 300); do # up to 30 s
      # Fails until the host's first line is stored.
      got=$({ ml "$data" search "host:$h" --lines --limit 100000000 --json 2>/dev/null || true; } | wc -l)
      [[ $got == "$want" ]] && break
      sleep 0.1
    done
    [[ $got == "$want" ]] || { fail "live: $got of $want lines of $h stored within 30 s"; return; }
  done
  ! grep -F "is said to be Dovecot's own log" "$W/agent-mx.log" >&2 ||
    fail "live: the agent took a line of dovecot.log for no line of Dovecot's"
  # Stored and searchable; the traces follow in the same commit or just behind it.
  for _ in $(seq 100); do
    ml "$data" trace --all --json | jq -cS "$NORMALISE" | LC_ALL=C sort >"$W/traces-live.jsonl"
    cmp -s "$W/traces-merged.jsonl" "$W/traces-live.jsonl" && break
    sleep 0.1
  done
  if cmp -s "$W/traces-merged.jsonl" "$W/traces-live.jsonl"; then
    say "live, internal agent after the dmz's: trace --all --json identical to the merged file's"
  else
    fail "live: trace --all --json differs from the merged file's (diff below, < merged > live)"
    diff "$W/traces-merged.jsonl" "$W/traces-live.jsonl" | head -n 10 >&2 || true
  fi
}
if [[ -x $BIN/maillens-collector && -x $BIN/maillens-agent ]]; then
  live_site
  CASES+=(live)
else
  say "no maillens-collector or maillens-agent in $BIN: the live case is left out"
fi

# ---------------------------------------------------------------- pairs sharing a Message-ID
# Each instance on our two hosts as "message-id trace# host:queue-id"; every two with the same
# Message-ID must carry the same trace number. A bounce or delay notice has a Message-ID of
# its own, so it pairs only with its own later hops.
for c in "${CASES[@]}"; do
  SHOWN=0
  read -r ok total < <(ml "$W/data-$c" trace --all --json |
    jq -r '.trace_id as $t | .messages[] | select(.message_id != "" and (.host == "dmz" or .host == "mx"))
      | "\(.message_id) \($t) \(.host):\(.queue_id)"' | sort |
    awk '{ n[$1]++; t[$1, n[$1]] = $2; q[$1, n[$1]] = $3 }
      END { for (m in n) for (i = 1; i <= n[m]; i++) for (j = i + 1; j <= n[m]; j++) {
              total++; if (t[m, i] == t[m, j]) ok++; else print "split", q[m, i], q[m, j] > "/dev/stderr" }
            print ok + 0, total + 0 }' 2>"$W/split-$c.txt")
  say "$c: $ok of $total pairs of instances sharing a Message-ID are in one trace"
  ((total > 0)) || fail "$c: no pair of instances shares a Message-ID (did the dmz relay to mx?)"
  while read -r _ a b; do fail_item "$c: $a and $b share a Message-ID but not a trace"; done <"$W/split-$c.txt"
done

# ---------------------------------------------------------------- each recipient's outcome
# Every recipient row of every trace has the status of the last status= line its host logged
# for that queue ID and recipient ("deleted" for a deferral whose message postsuper -d
# removed, as the lab's traffic does once; "expired" for one whose message qmgr returned to
# its sender as expired, which a longer traffic run has); and no recipient reads "rejected" in a trace where one of
# our hops logged a status= line for it: one of our hosts refusing a recipient at RCPT from
# another of ours is the sender's bounce or deferral, not a refusal by the site (the lab's
# multi-recipient message with an unknown user read "rejected" where the dmz logged bounced).
sed -nE -e 's/^[A-Z][a-z]{2} +[0-9]+ [0-9:]+ ([^ ]+) [^ ]+\[[0-9]+\]: ([0-9A-Za-z]+): to=<([^>]*)>,[^(]* status=([a-zA-Z]+).*/\1 \2 \3 \4/p' \
  -e 's/^[A-Z][a-z]{2} +[0-9]+ [0-9:]+ ([^ ]+) [^ ]+\/postsuper\[[0-9]+\]: ([0-9A-Za-z]+): removed$/\1 \2 <postsuper> removed/p' \
  -e 's/^[A-Z][a-z]{2} +[0-9]+ [0-9:]+ ([^ ]+) [^ ]+\/qmgr\[[0-9]+\]: ([0-9A-Za-z]+): from=<[^>]*>, status=expired, .*/\1 \2 <qmgr> expired/p' \
  "$LOGS/dmz.maillog" "$LOGS/internal.maillog" >"$W/logged-status.txt"
[[ -s $W/logged-status.txt ]] || fail "no status= line in the logs"
for c in "${CASES[@]}"; do
  SHOWN=0
  ml "$W/data-$c" trace --all --json | jq -r '.recipients[] | "\(.host) \(.queue_id) \(.to) \(.status)"' |
    awk 'NR == FNR { if ($3 == "<postsuper>") deleted[$1 " " $2] = 1; else if ($3 == "<qmgr>") expired[$1 " " $2] = 1; else last[$1 " " $2 " " $3] = $4; next }
      { k = $1 " " $2 " " $3; n++ }
      (k in last) { want = last[k]; waiting = want == "deferred" || tolower(want) == "softbounce"
        if (waiting && (($1 " " $2) in deleted)) want = "deleted"; else if (waiting && (($1 " " $2) in expired)) want = "expired" }
      (k in last) && want != $4 { print k, "logged", last[k], "shown", $4 }
      END { if (n == 0) print "no recipient rows at all" }' "$W/logged-status.txt" - >"$W/status-$c.txt"
  ml "$W/data-$c" trace --all --json | jq -r '[.recipients[] | select(.status != "rejected") | .to] as $logged
    | .recipients[] | select(.status == "rejected" and (.to as $t | $logged | index($t)))
    | "\(.host) \(.queue_id) \(.to) rejected, though one of our hops logged a status for it"' \
    >>"$W/status-$c.txt"
  while read -r line; do fail_item "$c: $line"; done <"$W/status-$c.txt"
  [[ -s $W/status-$c.txt ]] || say "$c: every recipient's status is its host's last status= line"
done

# ---------------------------------------------------------------- a foreign MTA on loopback
SHOWN=0
n=0
while read -r qid next; do
  n=$((n + 1))
  json=$(ml "$W/data-merged" trace --json "$qid") || { fail_item "trace $qid failed"; continue; }
  jq -e --arg q "$next" '[.recipients[] | select(.queued_as == $q)] | length > 0 and all(.status == "sent")' \
    <<<"$json" >/dev/null || fail_item "dmz $qid -> mta $next: not a sent recipient in the trace"
  ! jq -e --arg q "$next" 'any(.messages[]; .queue_id == $q)' <<<"$json" >/dev/null ||
    fail_item "dmz $qid -> mta $next: linked to an instance of ours with that queue ID"
done < <(grep -E 'relay=mta\.partner\.test\[127\.0\.0\.4\]:25,.* status=sent .*queued as [0-9A-Za-z]+\)' \
  "$LOGS/dmz.maillog" | sed -E 's/.*: ([0-9A-Za-z]+): to=<.*queued as ([0-9A-Za-z]+)\).*/\1 \2/' | sort -u)
say "$n hops from dmz to mta over loopback checked as external"
# The lab runs no content filter: a hop counted as one is mail handed to a foreign MTA on a
# loopback address that the report takes for a filter whose re-injection never came, and so
# for a message still in queue.
for c in "${CASES[@]}"; do
  cf=$(ml "$W/data-$c" report --format json | jq '.lines.deliveries.to_content_filters')
  [[ $cf == 0 ]] || fail "$c: the report counts $cf deliveries as hops to a content filter (the lab has none)"
done

# ---------------------------------------------------------------- Dovecot, to the mailbox
# Every LMTP hand-off Postfix logged with Dovecot's session ("250 2.0.0 <rcpt> SESSION Saved")
# must show, in its trace, Dovecot's "saved mail" line of that session as the recipient's
# mailbox step; and their number must be that of dovecot.log's "saved mail" lines.
mailbox_checks() {
  sed -nE 's/^[A-Z][a-z]{2} +[0-9]+ [0-9:]+ mx [^ ]+\/lmtp\[[0-9]+\]: ([0-9A-Za-z]+): to=<([^>]*)>,.* status=sent \(250 2\.0\.0 <[^>]*> ([^ ]+) Saved\)$/\1 \2 \3/p' \
    "$LOGS/internal.maillog" | sort -u >"$W/lmtp-handoffs.txt"
  sed -nE 's/^[A-Z][a-z]{2} +[0-9]+ [0-9:]+ lmtp\([^)]*\)<[0-9]+><([^>]+)>: Info: msgid=.*: saved mail to (.*)$/\1 \2/p' \
    "$LOGS/dovecot.log" | sort -u >"$W/dovecot-saved.txt"
  n_handoffs=$(wc -l <"$W/lmtp-handoffs.txt")
  n_saved=$(wc -l <"$W/dovecot-saved.txt")
  ((n_handoffs > 0)) || fail "no LMTP hand-off to Dovecot in internal.maillog"
  ((n_saved == n_handoffs)) ||
    fail "dovecot.log saved $n_saved mails, internal.maillog logged $n_handoffs LMTP hand-offs"
  for c in "${CASES[@]}"; do
    SHOWN=0
    ml "$W/data-$c" trace --all --json | jq -r '.mailbox[]
      | select(.linked_by == "session" and .status == "saved")
      | "\(.hop_queue_id) \(.to) \(.session) \(.mailbox) \(.host)"' | sort -u >"$W/mailbox-$c.txt"
    shown=0
    while read -r qid to session; do
      mailbox=$(awk -v s="$session" '$1 == s { print $2; exit }' "$W/dovecot-saved.txt")
      if [[ -n $mailbox ]] && grep -qxF "$qid $to $session $mailbox mx" "$W/mailbox-$c.txt"; then
        shown=$((shown + 1))
      else
        fail_item "$c: mx $qid to $to (Dovecot session $session): no mailbox delivery in its trace"
      fi
    done <"$W/lmtp-handoffs.txt"
    extra=$(($(wc -l <"$W/mailbox-$c.txt") - shown))
    ((extra == 0)) || fail "$c: $extra mailbox steps that no LMTP hand-off of the log names"
    say "$c: $shown of $n_handoffs LMTP hand-offs show their mailbox delivery (dovecot.log: $n_saved saved)"
  done
  # The text of one trace says it too, under the recipient.
  read -r qid to session < <(head -n 1 "$W/lmtp-handoffs.txt")
  # Whole, then searched: grep -q stopping early would fail trace with SIGPIPE (pipefail).
  text=$(ml "$W/data-merged" trace "$qid")
  grep -qF "mailbox " <<<"$text" || fail "trace $qid: the text shows no mailbox step"
  grep -A6 -F "$to" <<<"$text" | grep -qE "mx dovecot: saved to INBOX" ||
    fail "trace $qid: the text does not say Dovecot saved $to's mail to INBOX"
}
((DOVECOT)) && mailbox_checks

say "finished in $((SECONDS - t_start))s"
if ((FAILED)); then exit 1; fi
say "PASS"
