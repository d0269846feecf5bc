#!/usr/bin/env bash
# search_cli_test.sh -- what `maillens search` and `trace` promise a person at a terminal.
# Every example of `maillens help search` is run, as printed, against a data directory whose
# lines make each one true, and must find what its question asks:
#   - exit 0 (search exits 1 when nothing matches) and the expected message or line in its
#     output (the EXPECT table below, one entry per example, so a new example without an
#     expectation fails the test);
#   - the per-message rule: the first example's sender and recipient are on different lines.
# The lines are stamped relative to now (RFC 3339 with the zone), and the zone is chosen so
# that "since:08:00" today lies in the past.
# Then the smaller promises: --json gives each recipient its own status, --csv one row per
# recipient, --json with --csv is an error, --tz names its zone, queue IDs in any case, the
# footer counts messages, control characters from a log line never reach the terminal raw, and
# are shown escaped to people everywhere (piped too) but kept exact in JSON and CSV.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail

BIN=${MAILLENS_BIN_DIR:-$(dirname "$0")/../build/bin}
ML="$BIN/maillens"
work=$(mktemp -d)
trap '[[ -n ${KEEPW:-} ]] || rm -rf "$work"' EXIT
fail() { echo "search_cli_test: $*" >&2; exit 1; }

# A zone in which it is at least 10:00 now, so 08:30 today is before now.
h=$((10#$(date -u +%H)))
off=0
if ((h < 10)); then off=$((10 - h)); fi
export TZ="Etc/GMT-$off" # POSIX sign: GMT-N is N hours east of UTC
stamp() { date -d "$1" +%Y-%m-%dT%H:%M:%S.000000%:z; }
morning=$(stamp "$(date +%Y-%m-%d) 08:30:00")
hour_ago=$(stamp "1 hour ago")
hour_ago_later=$(stamp "1 hour ago + 2 seconds")

cat >"$work/mail.log" <<EOF
$morning mx postfix/smtpd[100]: 3F1A2B3C4D: client=mail.partner.example[198.51.100.7]
$morning mx postfix/cleanup[101]: 3F1A2B3C4D: message-id=<m1@partner.example>
$morning mx postfix/qmgr[102]: 3F1A2B3C4D: from=<alice@partner.example>, size=2100, nrcpt=1 (queue active)
$morning mx postfix/lmtp[103]: 3F1A2B3C4D: to=<bob@example.ac.jp>, relay=mx.example.ac.jp[private/dovecot-lmtp], delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.ac.jp> Saved)
$morning mx postfix/qmgr[102]: 3F1A2B3C4D: removed
$hour_ago mx postfix/pickup[110]: 5A1B2C3D4E: uid=1000 from=<carol@example.ac.jp>
$hour_ago mx postfix/cleanup[101]: 5A1B2C3D4E: message-id=<20240501101500.ABC123@mail.example.org>
$hour_ago mx postfix/qmgr[102]: 5A1B2C3D4E: from=<carol@example.ac.jp>, size=900, nrcpt=2 (queue active)
$hour_ago mx postfix/smtp[111]: 5A1B2C3D4E: to=<bob@example.ac.jp>, relay=none, delay=1, delays=0.1/0/0.9/0, dsn=5.1.1, status=bounced (host mx.example.ac.jp[192.0.2.10] said: 550 5.1.1 user unknown)
$hour_ago mx postfix/smtp[111]: 5A1B2C3D4E: to=<dave@far.example>, relay=mx.far.example[192.0.2.20]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=4.2.2, status=deferred (host mx.far.example[192.0.2.20] said: 452 4.2.2 mailbox full)
$hour_ago dmz postfix/smtpd[200]: NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 <x@example.ac.jp>: Relay access denied; from=<spam@bad.example> to=<x@example.ac.jp> proto=ESMTP helo=<bad>
$hour_ago dmz postfix/smtpd[200]: warning: unknown[203.0.113.50]: SASL LOGIN authentication failed: authentication failure, sasl_username=admin
$hour_ago dmz postfix/smtpd[201]: 6C1D2E3F4A: client=mail.sender.example[198.51.100.20]
$hour_ago dmz postfix/cleanup[202]: 6C1D2E3F4A: message-id=<hop1@sender.example>
$hour_ago dmz postfix/qmgr[203]: 6C1D2E3F4A: from=<hop@sender.example>, size=700, nrcpt=1 (queue active)
$hour_ago mx postfix/smtpd[120]: 7A6B5C4D3E: client=dmz.example.ac.jp[192.0.2.2]
$hour_ago mx postfix/cleanup[121]: 7A6B5C4D3E: message-id=<hop1@sender.example>
$hour_ago mx postfix/qmgr[122]: 7A6B5C4D3E: from=<hop@sender.example>, size=900, nrcpt=1 (queue active)
$hour_ago mx postfix/local[123]: 7A6B5C4D3E: to=<ghost@example.ac.jp>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=5.1.1, status=bounced (unknown user: "ghost")
$hour_ago mx postfix/qmgr[122]: 7A6B5C4D3E: removed
$hour_ago_later dmz postfix/smtp[204]: 6C1D2E3F4A: to=<ghost@example.ac.jp>, relay=mx.example.ac.jp[192.0.2.10]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 7A6B5C4D3E)
$hour_ago_later dmz postfix/qmgr[203]: 6C1D2E3F4A: removed
$hour_ago mx postfix/smtpd[130]: 8B8B8B8B8B: client=mail.held.example[198.51.100.30]
$hour_ago mx postfix/cleanup[131]: 8B8B8B8B8B: hold: header Subject: check me from mail.held.example[198.51.100.30]; from=<held@held.example> to=<carol@example.ac.jp> proto=ESMTP helo=<h>
$hour_ago mx postfix/qmgr[132]: 8B8B8B8B8B: from=<held@held.example>, size=800, nrcpt=1 (queue active)
$hour_ago mx postfix/local[133]: 8B8B8B8B8B: to=<carol@example.ac.jp>, relay=local, delay=60, delays=60/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)
$hour_ago mx postfix/qmgr[132]: 8B8B8B8B8B: removed
$morning dmz postfix/smtpd[150]: 4B4B4B4B4B: client=one.example[198.51.100.40]
$hour_ago mx postfix/smtpd[151]: 4B4B4B4B4B: client=two.example[198.51.100.41]
$hour_ago mx postfix/smtpd[140]: 9C9C9C9C9C: client=unknown[203.0.113.99]
$hour_ago mx postfix/smtpd[140]: lost connection after DATA from unknown[203.0.113.99]
$hour_ago dmz postfix/smtpd[300]: 2E2E2E2E2E: client=a.example[198.51.100.60]
$hour_ago dmz postfix/qmgr[301]: 2E2E2E2E2E: from=<f@a.example>, size=100, nrcpt=1 (queue active)
$hour_ago dmz postfix/smtp[302]: 2E2E2E2E2E: to=<u@other.example>, relay=filter1.example.ac.jp[192.0.2.99]:10025, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 3F3F3F3F3F)
$hour_ago dmz postfix/qmgr[301]: 2E2E2E2E2E: removed
$hour_ago_later scanner postfix/smtpd[400]: 3F3F3F3F3F: client=dmz.example.ac.jp[192.0.2.2]
$hour_ago_later scanner postfix/qmgr[401]: 3F3F3F3F3F: from=<f@a.example>, size=100, nrcpt=1 (queue active)
$hour_ago mx postfix/smtpd[160]: 1D1D1D1D1D: client=mail.banned.example[198.51.100.70]
$hour_ago mx postfix/qmgr[161]: 1D1D1D1D1D: from=<sender@banned.example>, size=5000, nrcpt=1 (queue active)
$hour_ago mx postfix/smtp[162]: 1D1D1D1D1D: to=<erin@inside.example>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.7.0, status=sent (250 2.7.0 Ok, discarded, id=01234-05 - BANNED: invoice.exe)
$hour_ago mx postfix/qmgr[161]: 1D1D1D1D1D: removed
$hour_ago dmz postfix/smtpd[200]: NOQUEUE: reject: RCPT from unknown[203.0.113.77]: 550 5.7.1 <y@example.ac.jp>: bad $(printf '\033')[31mred; from=<esc@bad.example> to=<y@example.ac.jp> proto=ESMTP helo=<bad>
EOF
"$ML" --data "$work/data" import "$work/mail.log" >/dev/null 2>&1 || fail "import failed"

# What each example (by its first field or word) must show.
declare -A EXPECT=(
  ["from:*@partner.example"]="3F1A2B3C4D"
  ["to:bob@example.ac.jp"]="5.1.1"
  ["status:rejected"]="unknown[203.0.113.9]: Relay access denied"
  ["msgid:20240501101500.ABC123@mail.example.org"]="5A1B2C3D4E"
  ["sasl:admin"]="unknown[203.0.113.50] as admin"
  ['"mailbox']="5A1B2C3D4E"
)

n=0
while IFS= read -r example; do
  n=$((n + 1))
  args=${example#maillens search }
  key=${args%% *}
  want=${EXPECT[$key]:-}
  [[ -n $want ]] || fail "example without an expectation in this test: $example"
  # As printed, with the data directory; a redirection in the example goes to a file here.
  out=$(cd "$work" && eval "'$ML' --data '$work/data' search $args" 2>&1) ||
    fail "exit $? for: $example"$'\n'"$out"
  if [[ $example == *'>'* ]]; then
    file=${example##*> }
    out=$(cat "$work/$file")
  fi
  grep -qF -- "$want" <<<"$out" || fail "'$want' not in the answer to: $example"$'\n'"$out"
  echo "ok: $example"
done < <("$ML" help search | sed -n 's/^ *\(maillens search .*\)$/\1/p' | grep -v '\[WORD\|—')

((n >= 6)) || fail "only $n examples found in maillens help search"
# The per-message rule itself: neither line names both, yet the message is found.
if grep -q 'from=<alice@partner.example>.*to=<bob' "$work/mail.log"; then
  fail "the data must not hold sender and recipient on one line"
fi
echo "search_cli_test: $n examples of maillens help search hold"

S() { "$ML" --data "$work/data" "$@"; }
# Each recipient with its own outcome, in JSON and in CSV.
json=$(S search to:bob@example.ac.jp status:bounced --json)
[[ $(jq -r '.recipients[] | select(.to == "bob@example.ac.jp") | .status' <<<"$json") == bounced ]] ||
  fail "JSON does not give bob's own status: $json"
[[ $(jq -r '.recipients[] | select(.to == "dave@far.example") | .status' <<<"$json") == deferred ]] ||
  fail "JSON does not give dave's own status: $json"
[[ $(jq -r '.recipients[0].to' <<<"$json") == bob@example.ac.jp ]] || fail "the asked-for recipient is not first"
# A status asked for puts a recipient with that outcome first (bob, listed first otherwise,
# bounced; dave is the deferred one).
json=$(S search msgid:20240501101500.ABC123@mail.example.org status:deferred --json)
[[ $(jq -r '.recipients[0].to' <<<"$json") == dave@far.example ]] ||
  fail "status:deferred does not put the deferred recipient first: $json"
csv=$(S search msgid:20240501101500.ABC123@mail.example.org --csv)
[[ $(grep -c 'example' <<<"$csv") -eq 2 ]] || fail "CSV is not one row per recipient: $csv"
grep -q 'dave@far.example,deferred,4.2.2' <<<"$csv" || fail "CSV row of dave: $csv"
# A content filter's "Ok, discarded" is the recipient's outcome, as trace and report say: not
# "sent", and status:discarded finds it.
json=$(S search status:discarded --json)
[[ $(jq -r 'select(.queue_id == "1D1D1D1D1D") | .recipients[0].status' <<<"$json") == discarded ]] ||
  fail "the content filter's discard is not the outcome: $json"
if S search status:sent --json | jq -e 'select(.queue_id == "1D1D1D1D1D")' >/dev/null; then
  fail "status:sent finds mail the content filter discarded"
fi
# A line of no message shows who was refused, with its DSN, in every form.
csv=$(S search status:rejected dsn:5.7.1 --csv)
grep -q 'x@example.ac.jp,rejected,5.7.1,,Relay access denied,unknown\[203.0.113.9\]' <<<"$csv" ||
  fail "CSV of a NOQUEUE reject lacks its DSN or client: $csv"
[[ $(S search sasl:admin --json | jq -r '.client + " " + .sasl_username') == "unknown[203.0.113.50] admin" ]] ||
  fail "JSON of a SASL failure lacks its client or login name"
# A status a row shows but no line states: refused with a way to find such mail.
if S search status:queued 2>"$work/err"; then fail "status:queued accepted"; fi
grep -q "no line states an outcome" "$work/err" || fail "status:queued: $(cat "$work/err")"
# --json with --csv
if S search x --json --csv 2>"$work/err"; then fail "--json --csv accepted"; fi
grep -q "exclude each other" "$work/err" || fail "--json --csv: $(cat "$work/err")"
# --tz: the table names the zone; times move with it.
out=$(S --tz Asia/Tokyo search qid:3F1A2B3C4D)
grep -q "TIME (JST)" <<<"$out" || fail "--tz Asia/Tokyo: $out"
grep -q "times in JST" <<<"$(S trace 3F1A2B3C4D --tz Asia/Tokyo)" || fail "trace --tz after the command"
# A message with no Message-ID in the log says so ("<>" would read as the null sender).
grep -q "message-id (none logged)" <<<"$(S trace 9C9C9C9C9C)" || fail "trace of a message without message-id: $(S trace 9C9C9C9C9C)"
# A next hop the store holds but did not link (a server on an address no host declared): the
# trace says so and how to link it.
S trace 2E2E2E2E2E >"$work/out" 2>"$work/err" || fail "trace 2E2E2E2E2E: $(cat "$work/err")"
grep -q "no later hop in this trace" "$work/out" || fail "trace 2E2E2E2E2E verdict: $(cat "$work/out")"
grep -q "3F3F3F3F3F (the next hop's queue ID after filter1.example.ac.jp.*) is stored on host scanner but not linked.*relink --host-alias scanner=" "$work/err" ||
  fail "no note of the stored, unlinked next hop: $(cat "$work/err")"
# Queue IDs in any letter case, in search and trace.
S search qid:3f1a2b3c4d >/dev/null 2>&1 || fail "lower-case queue ID not found by search"
grep -q "alice@partner.example" <<<"$(S trace 3f1a2b3c4d)" || fail "lower-case queue ID not traced"
# A queue ID that names two messages (here on two hosts): the newest is shown, and a note
# says there are more and how to list them.
out=$(S trace 4B4B4B4B4B 2>"$work/err")
grep -q "two.example" <<<"$out" || fail "trace of a queue ID on two hosts: not the newest: $out"
grep -q "'4B4B4B4B4B' names 2 messages" "$work/err" || fail "no note of the other message: $(cat "$work/err")"
[[ $(S search qid:4B4B4B4B4B --json 2>/dev/null | jq -s length) -eq 2 ]] || fail "search qid: does not list both"
# The footer counts messages.
S search to:bob@example.ac.jp 2>"$work/err" >/dev/null
grep -q "^2 matching messages" "$work/err" || fail "footer: $(cat "$work/err")"
# --limit counts messages, not lines: of the 6 messages to example.ac.jp the newest is shown
# whole (one row; with --lines both hops' lines of it, and the next message's line with 2).
out=$(S search 'to:*@example.ac.jp' --limit 1 2>"$work/err")
[[ $(grep -c '@example.ac.jp' <<<"$out") -eq 1 ]] || fail "--limit 1 shows not one row: $out"
grep -q "6C1D2E3F4A" <<<"$out" || fail "--limit 1 does not show the newest message: $out"
grep -q "^6 matching messages; the newest 1 shown" "$work/err" || fail "--limit 1 footer: $(cat "$work/err")"
# --oldest-first: the oldest message (this morning's), not the newest ones reversed.
out=$(S search 'to:*@example.ac.jp' --limit 1 --oldest-first 2>"$work/err")
grep -q "3F1A2B3C4D" <<<"$out" || fail "--oldest-first --limit 1 is not the oldest message: $out"
grep -q "^6 matching messages; the oldest 1 shown" "$work/err" ||
  fail "--oldest-first footer: $(cat "$work/err")"
[[ $(S search 'to:*@example.ac.jp' --limit 2 --json 2>/dev/null | jq -s length) -eq 2 ]] ||
  fail "--limit 2 --json is not two messages"
out=$(S search 'to:*@example.ac.jp' --limit 2 --lines 2>/dev/null)
[[ $(grep -c 'ghost@example.ac.jp' <<<"$out") -eq 2 && $(grep -c 'esc@bad.example' <<<"$out") -eq 1 &&
  $(wc -l <<<"$out") -eq 3 ]] || fail "--limit 2 --lines is not the two messages' lines: $out"
# An escape sequence from a log line reaches a terminal escaped (script(1) gives a terminal).
tty_out=$(script -qec "'$ML' --data '$work/data' search --lines from:esc@bad.example" /dev/null)
grep -q $'\033' <<<"$tty_out" && fail "a raw escape sequence reached the terminal"
grep -qF '\x1b[31mred' <<<"$tty_out" || fail "the escape is not shown escaped: $tty_out"
# The report shows the reject reason escaped, in text and markdown, even to a file.
for fmt in text markdown; do
  rep=$(S report --format $fmt 2>/dev/null)
  grep -q $'\033' <<<"$rep" && fail "report --format $fmt printed a raw escape sequence"
  grep -qF '\x1b[31mred' <<<"$rep" || fail "report --format $fmt lost the escaped reason: $rep"
done
# A report that fails leaves the file --output names as it was; one that succeeds writes it.
echo "yesterday's report" >"$work/day.txt"
if S report --host nosuchhost --output "$work/day.txt" 2>/dev/null; then fail "report of no host"; fi
[[ $(cat "$work/day.txt") == "yesterday's report" ]] || fail "a failed report overwrote --output"
S report --output "$work/day.txt" 2>/dev/null || fail "report --output failed"
grep -q "Grand totals" "$work/day.txt" || fail "report --output wrote: $(cat "$work/day.txt")"
# Piped, the bytes stay as logged (like grep).
grep -q $'\033' <<<"$(S search --lines from:esc@bad.example 2>/dev/null)" ||
  fail "piped output lost the line's bytes"
# One rule for text from log lines shown to a person (search table, trace, report text,
# Markdown and HTML, hosts), on a terminal or piped: control characters (C0 but tab, DEL, C1 as
# a stray byte or UTF-8 encoded) and bytes that are not UTF-8 appear as \xNN; valid UTF-8 as is.
# JSON and CSV keep the data exact. Lines with such bytes in every field, in a data directory
# of their own, under a host named with them (import --host).
esc=$'\033' c1=$'\x9b' u8c1=$'\xc2\x9b'
{
  echo "$hour_ago mx postfix/smtpd[300]: 4D4D4D4D4D: client=unknown[203.0.113.66], sasl_method=PLAIN, sasl_username=us${esc}[7mer"
  echo "$hour_ago mx postfix/cleanup[301]: 4D4D4D4D4D: message-id=<id${esc}[2J${esc}]0;pwned"$'\a'"@evil.test>"
  echo "$hour_ago mx postfix/qmgr[302]: 4D4D4D4D4D: from=<att${esc}[5macker"$'\b\b\b'"@evil.test>, size=500, nrcpt=2 (queue active)"
  echo "$hour_ago mx postfix/smtp[303]: 4D4D4D4D4D: to=<vic${esc}[4mtim@far.example>, relay=mx.far.example[192.0.2.20]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.7.1, status=bounced (host mx.far.example[192.0.2.20] said: 550 5.7.1 no${esc}[35mpe ${c1}36m c1 ${u8c1}37m u8 (in reply to RCPT TO command))"
  echo "$hour_ago mx postfix/smtp[303]: 4D4D4D4D4D: to=<jörg@例え.jp>, relay=mx.example.jp[192.0.2.30]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1B2C3D)"
  echo "$hour_ago mx postfix/qmgr[302]: 4D4D4D4D4D: removed"
  echo "$hour_ago mx postfix/smtpd[304]: NOQUEUE: reject: RCPT from unknown[203.0.113.78]: 550 5.7.1 <jörg@例え.jp>: stray ${c1}31mcsi; from=<c1@bad.example> to=<jörg@例え.jp> proto=ESMTP helo=<bad>"
} >"$work/esc.log"
echo "$hour_ago mx postfix/smtpd[305]: connect from unknown[203.0.113.79]" >"$work/utf8.log"
E() { "$ML" --data "$work/esc" "$@"; }
E import --host $'edge\x9b\xc2\x85\033[5m' "$work/esc.log" >/dev/null 2>&1 || fail "import of esc.log failed"
E import --host 'ö-例え' "$work/utf8.log" >/dev/null 2>&1 || fail "import of utf8.log failed"
escape_failures=0
esc_fail() {
  echo "search_cli_test: $*" >&2
  escape_failures=$((escape_failures + 1))
}
# True when $1 holds a control character (but tab) or a byte that is not UTF-8. In valid
# UTF-8, C2 80..C2 9F is exactly U+0080..U+009F; a stray 0x80..0x9f is not UTF-8.
raw_controls() {
  iconv -f UTF-8 -t UTF-8 <<<"$1" >/dev/null 2>&1 || return 0
  LC_ALL=C grep -aqP '[\x01-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' <<<"$1"
}
# `what` run piped and on a terminal (script(1)); each output must hold no raw control and
# every WANT literally. On the terminal the table is coloured: maillens' own colour codes
# (none of the log's sequences above) and script's CR before each LF are taken out first.
check_shown() {
  local what=$1 cmd=$2
  shift 2
  local piped tty
  piped=$(cd "$work" && eval "$cmd" 2>/dev/null) || true
  tty=$(cd "$work" && script -qec "$cmd" /dev/null | sed -e $'s/\r$//' -e $'s/\033\\[\\(0\\|1\\|2\\|31\\|32\\|33\\)m//g') || true
  local where out
  for where in piped terminal; do
    if [[ $where == piped ]]; then out=$piped; else out=$tty; fi
    if raw_controls "$out"; then
      esc_fail "$what ($where) shows a raw control character or a byte that is not UTF-8: $(cat -v <<<"$out")"
    fi
    local want
    for want in "$@"; do
      grep -qF -- "$want" <<<"$out" || esc_fail "$what ($where) does not show '$want': $out"
    done
  done
}
D="'$ML' --data '$work/esc'"
check_shown "search table" "$D search since:2d" \
  'att\x1b[5macker\x08\x08\x08@evil.test' 'stray \x9b31mcsi' 'jörg@例え.jp' 'edge\x9b\xc2\x85\x1b[5m'
check_shown "search table TO" "$D search 'to:vic*'" 'vic\x1b[4mtim@far.example'
check_shown "trace" "$D trace 4D4D4D4D4D" \
  'message-id <id\x1b[2J\x1b]0;pwned\x07@evil.test>  from att\x1b[5macker\x08\x08\x08@evil.test' \
  'across edge\x9b\xc2\x85\x1b[5m' '(sasl us\x1b[7mer)' 'vic\x1b[4mtim@far.example  bounced' \
  'no\x1b[35mpe \x9b36m c1 \xc2\x9b37m u8 (in reply to RCPT TO command)' 'jörg@例え.jp  sent'
check_shown "report text" "$D report" 'att\x1b[5macker\x08\x08\x08@evil.test' \
  'stray \x9b31mcsi' 'us\x1b[7mer' '例え.jp'
check_shown "report markdown" "$D report --format markdown" \
  'att\x1b[5macker\x08\x08\x08@evil.test' 'stray \x9b31mcsi' 'no\x1b[35mpe \x9b36m c1 \xc2\x9b37m u8' \
  '例え.jp'
check_shown "report html" "$D report --format html" \
  '<td>att\x1b[5macker\x08\x08\x08@evil.test</td>' 'stray \x9b31mcsi' \
  'no\x1b[35mpe \x9b36m c1 \xc2\x9b37m u8' '例え.jp'
check_shown "hosts" "$D hosts" 'edge\x9b\xc2\x85\x1b[5m' 'ö-例え'
# Programs get the data exact: JSON (its own escapes) and CSV keep the bytes.
[[ $(E search since:2d --json 2>/dev/null | jq -r 'select(.queue_id == "4D4D4D4D4D") | .from') == \
  "att${esc}[5macker"$'\b\b\b'"@evil.test" ]] || esc_fail "search --json changed the sender"
[[ $(E trace 4D4D4D4D4D --json | jq -r '.messages[0].message_id') == \
  "id${esc}[2J${esc}]0;pwned"$'\a'"@evil.test" ]] || esc_fail "trace --json changed the message-id"
E search since:2d --csv 2>/dev/null | LC_ALL=C grep -qF "stray ${c1}31mcsi" ||
  esc_fail "search --csv changed the reason's bytes"
# JSON text is UTF-8: a byte that is not (the stray C1) becomes U+FFFD, as search --help says.
E search --lines --json from:c1@bad.example 2>/dev/null | LC_ALL=C grep -qF "stray "$'\xef\xbf\xbd'"31mcsi" ||
  esc_fail "search --json does not turn a byte that is not UTF-8 into U+FFFD"
# Raw lines keep their bytes when piped (like grep), also a stray C1 byte.
E search --lines from:c1@bad.example 2>/dev/null | LC_ALL=C grep -qF "stray ${c1}31mcsi" ||
  esc_fail "search --lines piped changed the line's bytes"
((escape_failures == 0)) || fail "$escape_failures escaping promises broken"
echo "ok: log text is shown escaped to people, exact to programs"
# A recipient's outcome is the last hop's, although the relay logged "sent" after the next
# host logged the bounce (same second here); released from hold and delivered is delivered;
# a session that never reached the queue is abandoned.
[[ $(S search to:ghost@example.ac.jp --json | jq -r '.recipients[0].status') == bounced ]] ||
  fail "ghost's outcome: $(S search to:ghost@example.ac.jp --json)"
[[ $(S search qid:8B8B8B8B8B --json | jq -r '.status') == sent ]] ||
  fail "released and delivered: $(S search qid:8B8B8B8B8B --json)"
[[ $(S search qid:9C9C9C9C9C --json | jq -r '.status') == abandoned ]] ||
  fail "never queued: $(S search qid:9C9C9C9C9C --json)"
# A window after the newest stored day says so instead of a bare "0".
S search since:2099-01-01 2>"$work/err" >/dev/null || true
grep -q "after the newest stored day" "$work/err" || fail "window after the data: $(cat "$work/err")"
echo "search_cli_test: every promise holds"
