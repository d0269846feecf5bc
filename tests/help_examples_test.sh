#!/usr/bin/env bash
# help_examples_test.sh -- every example of `maillens help search` is run, as printed, against a
# data directory whose lines make each one true, and must find what its question asks:
#   - exit 0 (search exits 1 when nothing matches) and the expected message or line in its
#     output (the EXPECT table below, one entry per example, so a new example without an
#     expectation fails the test);
#   - the per-message rule: the first example's sender and recipient are on different lines.
# The lines are stamped relative to now (RFC 3339 with the zone), and the zone is chosen so
# that "since:08:00" today lies in the past.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail

BIN=${MAILLENS_BIN_DIR:-$(dirname "$0")/../build/bin}
ML="$BIN/maillens"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "help_examples_test: $*" >&2; exit 1; }

# A zone in which it is at least 10:00 now, so 08:30 today is before now.
h=$((10#$(date -u +%H)))
off=0
if ((h < 10)); then off=$((10 - h)); fi
export TZ="Etc/GMT-$off" # POSIX sign: GMT-N is N hours east of UTC
stamp() { date -d "$1" +%Y-%m-%dT%H:%M:%S.000000%:z; }
morning=$(stamp "$(date +%Y-%m-%d) 08:30:00")
hour_ago=$(stamp "1 hour ago")

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
EOF
"$ML" --data "$work/data" import "$work/mail.log" >/dev/null 2>&1 || fail "import failed"

# What each example (by its first field or word) must show.
declare -A EXPECT=(
  ["from:*@partner.example"]="3F1A2B3C4D"
  ["to:bob@example.ac.jp"]="5.1.1"
  ["status:rejected"]="Relay access denied"
  ["msgid:20240501101500.ABC123@mail.example.org"]="5A1B2C3D4E"
  ["sasl:admin"]="authentication failure"
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
echo "help_examples_test: $n examples of maillens help search hold"
