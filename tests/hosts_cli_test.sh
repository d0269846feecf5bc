#!/usr/bin/env bash
# hosts_cli_test.sh -- what `maillens import` refuses and what `maillens hosts` lists and
# forgets, through the command line, with exact outputs:
#   - a file without syslog headers (Dovecot's own log_path file) is refused, naming how many
#     of its lines lack one and that it is Dovecot's, and nothing is stored; --force imports it;
#     --format dovecot wants --host and refuses a maillog;
#   - a file that would add more than 5 new hosts is refused;
#   - an extract of a file already imported stores nothing and counts as already present;
#   - `hosts` lists each host with its lines, messages, first and last time;
#   - `hosts forget` refuses without a terminal or --yes, asks in one (script(1)), removes the host's lines,
#     messages and links; traces and searches no longer show them, and lines imported after
#     (taking the ids of the forgotten ones) are found by search and correlated;
#   - `hosts` through --server says it is --data only.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail

BIN=${MAILLENS_BIN_DIR:-$(dirname "$0")/../build/bin}
ML="$BIN/maillens"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "hosts_cli_test: $*" >&2; exit 1; }
export TZ=UTC
cd "$work"
ml() { "$ML" --data "$work/data" "$@"; }

# expect NAME WANT_RC WANT_STDOUT WANT_STDERR -- COMMAND...
expect() {
  local name=$1 want_rc=$2 want_out=$3 want_err=$4
  shift 5
  local rc=0
  "$@" >"$work/out" 2>"$work/err" </dev/null || rc=$?
  [[ $rc == "$want_rc" ]] || fail "$name: exit $rc, want $want_rc; stderr: $(cat "$work/err")"
  [[ $(cat "$work/out") == "$want_out" ]] ||
    fail "$name: stdout:"$'\n'"$(cat "$work/out")"$'\n'"want:"$'\n'"$want_out"
  [[ $(cat "$work/err") == "$want_err" ]] ||
    fail "$name: stderr:"$'\n'"$(cat "$work/err")"$'\n'"want:"$'\n'"$want_err"
}

cat >mx.log <<'EOF'
Mar  1 10:00:01 mx postfix/smtpd[20]: 2222222222: client=relay.example.org[192.0.2.9]
Mar  1 10:00:01 mx postfix/cleanup[21]: 2222222222: message-id=<a1@ext.example>
Mar  1 10:00:01 mx postfix/qmgr[22]: 2222222222: from=<alice@ext.example>, size=1200, nrcpt=1 (queue active)
Mar  1 10:00:02 mx postfix/local[23]: 2222222222: to=<bob@example.org>, relay=local, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (delivered to mailbox)
Mar  1 10:00:02 mx postfix/qmgr[22]: 2222222222: removed
Mar  1 10:00:03 mx postfix/smtpd[20]: connect from unknown[198.51.100.1]
Mar  1 10:00:03 mx postfix/smtpd[20]: connect from unknown[198.51.100.1]
Mar  1 10:00:04 mx postfix/smtpd[20]: disconnect from unknown[198.51.100.1]
EOF
cat >relay.log <<'EOF'
Mar  1 10:00:00 relay postfix/smtpd[10]: 1111111111: client=ext.example[203.0.113.5]
Mar  1 10:00:00 relay postfix/cleanup[11]: 1111111111: message-id=<a1@ext.example>
Mar  1 10:00:00 relay postfix/qmgr[12]: 1111111111: from=<alice@ext.example>, size=1000, nrcpt=1 (queue active)
Mar  1 10:00:01 relay postfix/smtp[13]: 1111111111: to=<bob@example.org>, relay=mx[192.0.2.10]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2222222222)
Mar  1 10:00:01 relay postfix/qmgr[12]: 1111111111: removed
EOF
sed -n 3,7p mx.log >extract.log # the middle of mx.log, with one of its two identical connects
cat >dovecot.log <<'EOF'
Mar  1 10:00:00 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=192.0.2.1
Mar  1 10:00:01 imap(alice)<11><aa>: Info: Logged out in=10 out=200
Mar  1 10:00:02 lmtp(123): Info: Connect from local
Mar  1 10:00:03 auth: Info: plain(bob,192.0.2.2): unknown user
EOF
for h in a b c d e f; do
  echo "Mar  1 10:00:05 host$h postfix/smtpd[1]: connect from x[192.0.2.1]"
done >six.log
cat >late.log <<'EOF'
Mar  1 10:05:00 late postfix/smtpd[30]: 3333333333: client=latecomer.example[192.0.2.77]
Mar  1 10:05:00 late postfix/qmgr[31]: 3333333333: from=<carol@latecomer.example>, size=500, nrcpt=1 (queue active)
Mar  1 10:05:01 late postfix/local[32]: 3333333333: to=<dave@example.org>, relay=local, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (delivered to mailbox)
Mar  1 10:05:01 late postfix/qmgr[31]: 3333333333: removed
EOF
cat >filter.log <<'EOF'
Mar  1 10:10:00 filter postfix/smtpd[40]: 4444444444: client=ext.example[203.0.113.5]
Mar  1 10:10:00 filter postfix/qmgr[41]: 4444444444: from=<alice@ext.example>, size=1000, nrcpt=2 (queue active)
Mar  1 10:10:01 filter postfix/10025/smtpd[42]: 5555555555: client=localhost[127.0.0.1]
Mar  1 10:10:01 filter postfix/qmgr[41]: 5555555555: from=<alice@ext.example>, size=1100, nrcpt=2 (queue active)
Mar  1 10:10:02 filter postfix/amavis/smtp[43]: 4444444444: to=<bob@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=2, delays=0/0/0/2, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5555555555)
Mar  1 10:10:02 filter postfix/amavis/smtp[43]: 4444444444: to=<nobody@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=2, delays=0/0/0/2, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5555555555)
Mar  1 10:10:02 filter postfix/qmgr[41]: 4444444444: removed
Mar  1 10:10:03 filter postfix/local[44]: 5555555555: to=<bob@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)
Mar  1 10:10:04 filter postfix/local[44]: 5555555555: to=<nobody@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (unknown user: "nobody")
Mar  1 10:10:05 filter postfix/bounce[45]: 5555555555: sender non-delivery notification: 6666666666
Mar  1 10:10:05 filter postfix/qmgr[41]: 5555555555: removed
Mar  1 10:10:06 filter postfix/qmgr[41]: 6666666666: from=<>, size=2000, nrcpt=1 (queue active)
Mar  1 10:10:07 filter postfix/smtp[46]: 6666666666: to=<alice@ext.example>, relay=ext.example[203.0.113.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)
Mar  1 10:10:09 filter postfix/qmgr[41]: 6666666666: removed
EOF

incomplete="(incomplete: see the errors above)"
expect "dovecot refused" 1 "lines read 4, stored 0, already present 0, unparsed 0 $incomplete" \
  "maillens import: no syslog header on 4 of 4 lines of dovecot.log; it is not a maillog: it is Dovecot's own log (log_path); import it with --format dovecot --host NAME; --force imports it anyway" \
  -- ml import --year 2026 dovecot.log
expect "dovecot without its host" 2 "" \
  "maillens import: Dovecot's log names no host; --host NAME says which host wrote it" \
  -- ml import --year 2026 --format dovecot dovecot.log
expect "a maillog is no Dovecot log" 1 "lines read 8, stored 0, already present 0, unparsed 0 $incomplete" \
  "maillens import: 8 of 8 lines of mx.log are not Dovecot's log lines (\"Nov 22 10:00:00 lmtp(user)<pid><session>: Info: ...\"); is it a maillog? Import it without --format dovecot; --force imports it anyway" \
  -- ml import --year 2026 --format dovecot --host mx mx.log
expect "six hosts refused" 1 "lines read 6, stored 0, already present 0, unparsed 0 $incomplete" \
  "maillens import: six.log would add 6 new hosts (hosta, hostb, hostc, hostd, hoste, ...), more than 5 at once: is it one mail host's log? --host NAME stores every line under one host; --force imports it as it is" \
  -- ml import --year 2026 six.log
expect "nothing stored" 0 "HOST  LINES  MESSAGES  FIRST (UTC)  LAST (UTC)
0 hosts" "" -- ml hosts
expect "two hosts" 0 "lines read 13, stored 13, already present 0, unparsed 0" "" \
  -- ml import --year 2026 mx.log relay.log
expect "extract" 0 "lines read 5, stored 0, already present 5, unparsed 0" "" \
  -- ml import --year 2026 extract.log
# Forced in as a maillog, under host "unknown": Dovecot's lines are still read as Dovecot's
# (the login and the passdb result; the logout and LMTP's connect stay unparsed).
expect "dovecot forced" 0 "lines read 4, stored 4, already present 0, unparsed 2" "" \
  -- ml import --year 2026 --force dovecot.log
expect "list" 0 "HOST     LINES  MESSAGES  FIRST (UTC)          LAST (UTC)
mx           8         1  2026-03-01 10:00:01  2026-03-01 10:00:04
relay        5         1  2026-03-01 10:00:00  2026-03-01 10:00:01
unknown      4         0  2026-03-01 10:00:00  2026-03-01 10:00:03
3 hosts" "" -- ml hosts
expect "list again" 0 "$(cat "$work/out")" "" -- ml hosts list

expect "forget without a terminal" 1 \
  "host unknown: 4 lines (2026-03-01 10:00:00 .. 2026-03-01 10:00:03), 0 messages" \
  "maillens hosts forget: not removing without confirmation: run it in a terminal, or pass --yes" \
  -- ml hosts forget unknown
expect "forget no such host" 1 "" \
  "maillens hosts forget: no host 'nosuch' in $work/data ('maillens hosts' lists them)" \
  -- ml hosts forget nosuch --yes
# In a terminal (script(1)): it asks; 'n' changes nothing, 'y' removes.
on_tty() { printf '%s\n' "$1" | script -qec "$ML --data $work/data hosts forget unknown" /dev/null | tr -d '\r'; }
if command -v script >/dev/null; then
  rc=0
  on_tty n >tty.txt || rc=$?
  [[ $rc == 1 ]] || fail "forget answered 'n': exit $rc"
  grep -q "Remove host unknown with its lines, messages and links? \[y/N\] nothing changed" tty.txt ||
    fail "forget answered 'n': $(cat tty.txt)"
  grep -q "^unknown      4 " <<<"$(ml hosts)" || fail "'n' removed the host"
  on_tty y >tty.txt || fail "forget answered 'y': $(cat tty.txt)"
  grep -q "\[y/N\] forgot host unknown: 4 lines, 0 hops, 0 links" tty.txt ||
    fail "forget answered 'y': $(cat tty.txt)"
else
  echo "hosts_cli_test: no script(1): the terminal prompt is not tested; forgetting with --yes"
  ml hosts forget unknown --yes >/dev/null
fi
expect "forget unknown again" 1 "" \
  "maillens hosts forget: no host 'unknown' in $work/data ('maillens hosts' lists them)" \
  -- ml hosts forget unknown --yes

ml trace 1111111111 >trace.txt || fail "trace of the relayed message"
grep -q "2 hops across relay, mx" trace.txt || fail "the relay's hop to mx is not linked: $(cat trace.txt)"
expect "forget relay" 0 \
  "host relay: 5 lines (2026-03-01 10:00:00 .. 2026-03-01 10:00:01), 1 messages
forgot host relay: 5 lines, 1 hops, 1 links" "" -- ml hosts forget relay --yes
expect "list after" 0 "HOST  LINES  MESSAGES  FIRST (UTC)          LAST (UTC)
mx        8         1  2026-03-01 10:00:01  2026-03-01 10:00:04
1 host" "" -- ml hosts
# The relay's lines are gone from search and trace; mx's message stands alone.
forgotten_not_found() {
  local rc=0
  ml search 203.0.113.5 >/dev/null 2>&1 || rc=$?
  [[ $rc == 1 ]] || fail "search finds a forgotten line (exit $rc)"
}
forgotten_not_found
rc=0
ml trace 1111111111 >/dev/null 2>&1 || rc=$?
[[ $rc != 0 ]] || fail "trace finds the forgotten relay's message"
ml trace 2222222222 >trace.txt || fail "trace of mx's message"
grep -q "1 hop" trace.txt || fail "mx's message is not alone: $(cat trace.txt)"
# Lines stored after take the forgotten lines' ids: they are indexed and correlated all the same.
expect "late" 0 "lines read 4, stored 4, already present 0, unparsed 0" "" \
  -- ml import --year 2026 late.log
ml search latecomer >search.txt 2>/dev/null || fail "a line stored after forget is not found"
grep -q "carol@latecomer.example" search.txt || fail "search: $(cat search.txt)"
ml trace 3333333333 >trace.txt || fail "the message stored after forget is not correlated"
grep -q "dave@example.org  sent" trace.txt || fail "trace: $(cat trace.txt)"
forgotten_not_found # nor through the ids the late lines took
expect "list late" 0 "HOST  LINES  MESSAGES  FIRST (UTC)          LAST (UTC)
late      4         1  2026-03-01 10:05:00  2026-03-01 10:05:01
mx        8         1  2026-03-01 10:00:01  2026-03-01 10:00:04
2 hosts" "" -- ml hosts

# MESSAGES counts a message once on its host: a content filter's re-injection (amavis, back
# in through smtpd on port 10025) is the same message; a bounce notice is one of its own.
expect "filter" 0 "lines read 14, stored 14, already present 0, unparsed 0" "" \
  -- ml import --year 2026 filter.log
expect "list filter" 0 "HOST    LINES  MESSAGES  FIRST (UTC)          LAST (UTC)
filter     14         2  2026-03-01 10:10:00  2026-03-01 10:10:09
late        4         1  2026-03-01 10:05:00  2026-03-01 10:05:01
mx          8         1  2026-03-01 10:00:01  2026-03-01 10:00:04
3 hosts" "" -- ml hosts
ml trace 4444444444 >trace.txt || fail "trace of the filtered message"
grep -q "3 hops across filter" trace.txt || fail "filter's hops are not one trace: $(cat trace.txt)"

expect "server" 2 "" "maillens hosts: --data only: a collector does not answer it yet" \
  -- "$ML" --server 127.0.0.1:9 hosts
echo "hosts_cli_test: ok"
