#!/usr/bin/env bash
# lab_report_test.sh -- the report reconciled with pflogsumm on real Postfix logs
# (../shared/postfix-lab/lab.sh: three instances, a greylisting sink, a hard-rejecting sink and
# a dead next hop, header-check WARN/HOLD, oversized and pipelining clients, SASL failures).
#
# A traffic run, then the deferred mail is made to expire at once (the lab's 4-minute lifetime
# cut to a second, a reload and flushes: Postfix returns it to its senders as it would after
# 4 minutes). `maillens import` stores the three maillogs, `pflogsumm` reads the same files,
# and the test checks:
#   - every domain pflogsumm's "Host/Domain Summary: Message Delivery" lists with defers is in
#     the report's `top.recipient_domains.entries[]` with `deferrals` equal to them, and every
#     domain the report lists with deferrals is in pflogsumm's table with the same number;
#     their sum is pflogsumm's "(N deferrals)" and the report's `counts.deferrals`;
#   - the `problems` list's warning, fatal and panic totals equal pflogsumm's Warnings, Fatal
#     Errors and Panics totals, per program as pflogsumm names it (the daemon, with a
#     submission/ or smtps/ service dropped) and in all;
#   - `counts.reject_warnings` equals pflogsumm's "reject warnings";
#   - each recipient that was still deferred when its message expired (the qmgr's
#     `status=expired` line for its queue ID) is counted as `expired` under its domain;
#   - the text, Markdown and HTML reports show the same problems and failing domains.
# Differences that remain, and why there are none in the checks above:
#   - pflogsumm's "delivered" per domain counts every `status=sent` line, hops to our own relays
#     and content filters included; the report's counts recipients delivered at their final
#     hop (docs/REPORT.md). Not compared here: tests/report_pflogsumm_test.cc reconciles them.
#   - pflogsumm groups warnings by their text as logged, the report by normalised text (client
#     names, addresses, queue IDs taken out), so the rows differ; the totals do not.
#   - pflogsumm reads only programs named postfix* (its syslog name); the lab logs no other
#     program with a warning into the maillogs, which the per-program comparison would show.
# Needs root (lab.sh makes namespaces and starts Postfix). Exit 77 (skipped) when not root.
# Env: MAILLENS_BIN_DIR (build/bin), MAILLENS_SHARED_DIR (../shared), MAILLENS_SOURCE_DIR (.),
#      REPORT_KEEP=1 keeps the work directory, REPORT_JOBS the traffic run's size (default 60),
#      REPORT_LOGS=DIR runs only the checks, on dmz.maillog, internal.maillog and ext.maillog
#      in DIR (no root needed).
set -euo pipefail

SAY=lab-report
KEEP=${REPORT_KEEP:-0}
source "$(dirname "$0")/lab_site.sh"
JOBS=${REPORT_JOBS:-60} # >= 36: lab.sh then sends one job of every kind

if [[ $(id -u) != 0 && -z ${REPORT_LOGS:-} ]]; then
  say "SKIP: needs root (lab.sh creates namespaces and starts Postfix)"
  exit 77
fi
[[ -x $LAB_SH ]] || { say "no lab script at $LAB_SH"; exit 1; }
[[ -x $BIN/maillens ]] || { say "no $BIN/maillens: build first"; exit 1; }
for p in jq pflogsumm; do
  command -v $p >/dev/null || { say "$p is not installed (scripts/setup.sh installs it)"; exit 1; }
done
lab_site_workdir
t_start=$SECONDS
FILES=(dmz.maillog internal.maillog ext.maillog)

# Lifetimes of a second and flushes until no instance lists deferred mail.
expire_now() {
  local i left=1
  for i in "${INSTANCES[@]}"; do
    "$LAB_SH" exec /usr/sbin/postconf -c "$ST/$i/etc" -e maximal_queue_lifetime=1s \
      bounce_queue_lifetime=1s >>"$W/expire.log" 2>&1 || { say "$i: postconf failed"; exit 1; }
    "$LAB_SH" exec /usr/sbin/postfix -c "$ST/$i/etc" reload >>"$W/expire.log" 2>&1 ||
      { say "$i: postfix reload failed"; exit 1; }
  done
  sleep 2
  for _ in $(seq 15); do
    for i in "${INSTANCES[@]}"; do
      "$LAB_SH" exec /usr/sbin/postqueue -c "$ST/$i/etc" -f >>"$W/expire.log" 2>&1 || true
    done
    sleep 2
    left=0
    for i in "${INSTANCES[@]}"; do
      n=$("$LAB_SH" exec /usr/sbin/postqueue -c "$ST/$i/etc" -j |
        jq -s '[.[] | select(.queue_name == "deferred" or .queue_name == "active")] | length')
      ((n == 0)) || left=1
    done
    ((left == 0)) && return 0
  done
  say "Postfix still lists deferred mail after the lifetimes ran out"
  exit 1
}

if [[ -n ${REPORT_LOGS:-} ]]; then
  LOGS=$REPORT_LOGS
else
  say "lab up in $LAB_DIR, $JOBS jobs"
  "$LAB_SH" up >"$W/lab-up.log" 2>&1 || { cat "$W/lab-up.log"; exit 1; }
  # Own deadline below ctest's TIMEOUT, so that the trap brings the lab down.
  timeout -k 5 120 "$LAB_SH" traffic "$JOBS" >"$W/traffic.log" 2>&1 ||
    { tail -n 20 "$W/traffic.log"; say "traffic failed or took over 120 s"; exit 1; }
  say "traffic done after $((SECONDS - t_start))s; expiring the deferred mail"
  expire_now
  "$LAB_SH" down >"$W/lab-down.log" 2>&1 # the files stop growing
  LOGS=$W/logs
  mkdir -p "$LOGS"
  for f in "${FILES[@]}"; do cp "$ST/logs/$f" "$LOGS/"; done
  say "logs ready after $((SECONDS - t_start))s"
fi
PATHS=()
for f in "${FILES[@]}"; do PATHS+=("$LOGS/$f"); done

"$BIN/maillens" --data "$DATA" import "${PATHS[@]}" >"$W/import.log" 2>&1 ||
  { cat "$W/import.log"; exit 1; }
"$BIN/maillens" --data "$DATA" report --json --tz UTC >"$W/report.json"
pflogsumm "${PATHS[@]}" >"$W/pflogsumm.txt"
R=$W/report.json
P=$W/pflogsumm.txt

# ---------------------------------------------------------------- deferrals per domain
# pflogsumm's delivery table: " sent cnt  bytes   defers   avg dly max dly host/domain". Its
# counts get a k or m suffix past 1024 and 1024*1024; defers are compared exactly, so a
# suffix there is a failure of the test's premise, not rounded away.
awk '/^Host\/Domain Summary: Message Delivery/ {on = 1; next}
     on && /^$/ && seen {exit}
     on && $1 ~ /^[0-9]/ {seen = 1; print $NF "\t" $3}' "$P" | sort >"$W/pfl-defers.all"
awk -F'\t' '$2 != "0"' "$W/pfl-defers.all" >"$W/pfl-defers.tsv"
[[ -s $W/pfl-defers.all ]] || fail "pflogsumm's delivery table not found in its output"
if grep -qv $'\t[0-9]*$' "$W/pfl-defers.tsv"; then
  fail "pflogsumm abbreviated a defers count (k/m); cannot compare exactly:"
  grep -v $'\t[0-9]*$' "$W/pfl-defers.tsv" >&2
fi
jq -r '.top.recipient_domains.entries[] | select(.deferrals > 0) | "\(.key)\t\(.deferrals)"' \
  "$R" | sort >"$W/ours-defers.tsv"
n=$(grep -c . "$W/pfl-defers.tsv" || true)
say "pflogsumm lists $n domains with defers: $(tr '\t\n' '= ' <"$W/pfl-defers.tsv")"
((n > 0)) || fail "no domain with defers in pflogsumm's table: the lab's deferring sinks did not defer"
if ! diff "$W/pfl-defers.tsv" "$W/ours-defers.tsv" >"$W/defers.diff"; then
  fail "deferrals per recipient domain differ (< pflogsumm, > report):"
  cat "$W/defers.diff" >&2
fi
pfl_total=$(sed -n 's/.* deferred *(\([0-9]*\) *deferrals).*/\1/p' "$P")
ours_total=$(jq '.counts.deferrals' "$R")
ours_sum=$(jq '[.top.recipient_domains.entries[].deferrals] | add // 0' "$R")
say "deferral lines: pflogsumm ${pfl_total:-?}, report counts.deferrals $ours_total, per domain $ours_sum"
[[ ${pfl_total:-x} == "$ours_total" ]] || fail "counts.deferrals $ours_total, pflogsumm ${pfl_total:-none}"
[[ $ours_sum == "$ours_total" ]] || fail "the domains' deferrals add up to $ours_sum, not $ours_total"

# ---------------------------------------------------------------- problems
# pflogsumm: "Warnings", then "  CMD (total: N)" per program, then "Fatal Errors", "Panics".
pfl_section() {
  awk -v want="$1" '$0 == want || $0 == want ": none" {on = 1; next}
    on && /^(Warnings|Fatal Errors|Panics|Master daemon messages)/ {exit}
    on && /^  [^ ].* \(total: [0-9]+\)$/ {
      t = $NF; sub(/\)/, "", t); print $1 "\t" t}' "$P" | sort
}
# The report's programs as pflogsumm names them: "postfix/submission/smtpd" -> "smtpd".
ours_section() {
  jq -r --arg s "$1" '.problems[] | select(.severity == $s) | "\(.program)\t\(.count)"' "$R" |
    sed -E 's#^[^/]*/##; s#^(submission|smtps)/##' |
    awk -F'\t' '{n[$1] += $2} END {for (k in n) print k "\t" n[k]}' | sort
}
total() { awk -F'\t' '{n += $2} END {print n + 0}' "$1"; }
for pair in "warning:Warnings" "fatal:Fatal Errors" "panic:Panics"; do
  sev=${pair%%:*}
  title=${pair#*:}
  grep -qx "$title\(: none\)\?" "$P" || fail "no '$title' section in pflogsumm's output"
  pfl_section "$title" >"$W/pfl-$sev.tsv"
  ours_section "$sev" >"$W/ours-$sev.tsv"
  say "$title: pflogsumm $(total "$W/pfl-$sev.tsv"), report problems $(total "$W/ours-$sev.tsv")"
  if ! diff "$W/pfl-$sev.tsv" "$W/ours-$sev.tsv" >"$W/$sev.diff"; then
    fail "$title per program differ (< pflogsumm, > report):"
    cat "$W/$sev.diff" >&2
  fi
  [[ $(total "$W/ours-$sev.tsv") == $(jq --arg k "${sev/fatal/fatals}" \
    '.counts[if $k == "warning" then "warnings" elif $k == "panic" then "panics" else $k end]' \
    "$R") ]] || fail "the problems list's $sev total differs from the report's own count"
done
(($(total "$W/pfl-warning.tsv") > 0)) ||
  fail "pflogsumm found no warnings: the lab's oversized and pipelining clients did not run"

# ---------------------------------------------------------------- reject warnings
pfl_rw=$(sed -n 's/^ *\([0-9]*\) *reject warnings$/\1/p' "$P")
ours_rw=$(jq '.counts.reject_warnings' "$R")
say "reject warnings: pflogsumm ${pfl_rw:-?}, report $ours_rw"
[[ ${pfl_rw:-x} == "$ours_rw" ]] || fail "reject warnings: report $ours_rw, pflogsumm ${pfl_rw:-none}"
((ours_rw > 0)) || fail "no reject warning: the lab's header-check WARN did not run"

# ---------------------------------------------------------------- expired recipients
# Per file (a queue ID names a message on its host): the recipients whose last status was
# `deferred` in messages the queue manager then expired, by domain.
for f in "${PATHS[@]}"; do
  awk '
    match($0, / [0-9A-Za-z]+: to=<[^>]*>/) {
      s = substr($0, RSTART + 1, RLENGTH - 1); q = s; sub(/:.*/, "", q)
      r = s; sub(/.*to=</, "", r); sub(/>$/, "", r)
      if (match($0, /status=[a-z]+/)) last[q SUBSEP r] = substr($0, RSTART + 7, RLENGTH - 7)
    }
    / status=expired, returned to sender/ {
      match($0, / [0-9A-Za-z]+: from=/); q = substr($0, RSTART + 1, RLENGTH - 8); expd[q] = 1
    }
    END {
      for (k in last) {
        split(k, p, SUBSEP)
        if ((p[1] in expd) && last[k] == "deferred") {
          d = tolower(p[2]); sub(/.*@/, "", d); print d
        }
      }
    }' "$f"
done | sort | uniq -c | awk '{print $2 "\t" $1}' >"$W/log-expired.tsv"
jq -r '.top.recipient_domains.entries[] | select(.expired > 0) | "\(.key)\t\(.expired)"' "$R" |
  sort >"$W/ours-expired.tsv"
say "expired recipients by domain in the logs: $(tr '\t\n' '= ' <"$W/log-expired.tsv")"
[[ -s $W/log-expired.tsv ]] || fail "no recipient expired: forcing the expiry did not work"
if ! diff "$W/log-expired.tsv" "$W/ours-expired.tsv" >"$W/expired.diff"; then
  fail "expired recipients per domain differ (< logs, > report):"
  cat "$W/expired.diff" >&2
fi

# ---------------------------------------------------------------- every format
"$BIN/maillens" --data "$DATA" report --tz UTC >"$W/report.txt"
"$BIN/maillens" --data "$DATA" report --markdown --tz UTC >"$W/report.md"
"$BIN/maillens" --data "$DATA" report --html --tz UTC >"$W/report.html"
for fmt in txt md html; do
  grep -q "Problems: warnings, fatal errors, panics" "$W/report.$fmt" ||
    fail "the $fmt report has no problems section"
  while IFS=$'\t' read -r dom _; do
    grep -qF "$dom" "$W/report.$fmt" || fail "the $fmt report does not show $dom"
  done <"$W/pfl-defers.tsv"
done
# The text report's problems rows add up to the warning total (its LINES column).
txt_warn=$(awk '/^Problems: warnings/ {on = 1; next} on && /^$/ {exit}
  on && $1 == "warning" {n += $3} END {print n + 0}' "$W/report.txt")
[[ $txt_warn == $(total "$W/pfl-warning.tsv") ]] ||
  fail "the text report's problem rows add up to $txt_warn warnings"

say "finished in $((SECONDS - t_start))s"
if ((FAILED)); then exit 1; fi
say "PASS"
