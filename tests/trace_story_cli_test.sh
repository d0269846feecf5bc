#!/usr/bin/env bash
# trace_story_cli_test.sh -- what `maillens trace` tells a person and a program about a
# message, on real lines of the lab (../shared/postfix-lab/lab.sh traffic): a message to a
# destination that refuses connections, deferred on every try, sent a delay notice, expired and
# returned; one held by a header check and released by `postsuper -H ALL`; and, from the
# simulator (tools/, no lab host runs amavis), a message amavis blocked as spam.
#   - the verdict is the trace's first line after its header, and "verdict" in --json;
#   - every deferral is a line of its hop with its time and reason, and so are the notices,
#     the expiry, the hold and the release; --json lists them as the message's "events";
#   - a delay notice and a non-delivery notice are told apart ("delay notice to hop 2"), where
#     both read "bounce to hop N" before; --json names the link's "notice";
#   - amavis' verdict and score are a fact of its hop and the verdict says the mail was
#     discarded, though Postfix logged "sent" (amavis answered "250 2.7.0 Ok, discarded");
#   - a delay reads in human units with delays= named as Postfix documents it (a = before the
#     queue manager, including time deferred), and --json gives the four parts by name.
# (cli/trace_story_test.cc covers the verdicts themselves.) Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail

BIN=${MAILLENS_BIN_DIR:-$(dirname "$0")/../build/bin}
ML="$BIN/maillens"
work=$(mktemp -d)
trap '[[ -n ${KEEPW:-} ]] || rm -rf "$work"' EXIT
fail() { echo "trace_story_cli_test: $*" >&2; exit 1; }
export TZ=UTC

cat >"$work/dmz.maillog" <<'LINES'
Dec 07 16:03:05 dmz postfix/smtpd[10751]: 7D14BA8E455: client=unknown[127.0.0.13]
Dec 07 16:03:05 dmz postfix/cleanup[10753]: 7D14BA8E455: message-id=<20261207160305.010839@localhost>
Dec 07 16:03:05 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, nrcpt=1 (queue active)
Dec 07 16:03:05 dmz postfix/relay/smtp[10772]: 7D14BA8E455: to=<user3@down.example.test>, relay=none, delay=0, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)
Dec 07 16:03:08 dmz postfix/smtpd[10745]: 26E0DA8E0DC: client=out1.partner.test[127.0.0.10]
Dec 07 16:03:08 dmz postfix/cleanup[10753]: 26E0DA8E0DC: hold: header Subject: lab 160301-19 hold HOLDME invoice from out1.partner.test[127.0.0.10]; from=<billing@partner.test> to=<admin@example.test> proto=ESMTP helo=<out1.partner.test>: held for lab review
Dec 07 16:03:08 dmz postfix/cleanup[10753]: 26E0DA8E0DC: message-id=<20261207160306.010934@localhost>
Dec 07 16:03:59 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, nrcpt=1 (queue active)
Dec 07 16:03:59 dmz postfix/relay/smtp[10772]: 7D14BA8E455: to=<user3@down.example.test>, relay=none, delay=54, delays=54/0.01/0/0, dsn=4.4.1, status=deferred (connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)
Dec 07 16:04:07 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, nrcpt=1 (queue active)
Dec 07 16:04:07 dmz postfix/relay/smtp[10754]: 7D14BA8E455: to=<user3@down.example.test>, relay=none, delay=62, delays=62/0.04/0/0, dsn=4.4.1, status=deferred (connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)
Dec 07 16:04:07 dmz postfix/bounce[15172]: 7D14BA8E455: sender delay notification: 90541A8E209
Dec 07 16:04:07 dmz postfix/cleanup[12990]: 90541A8E209: message-id=<20261207160407.90541A8E209@dmz.example.test>
Dec 07 16:04:07 dmz postfix/qmgr[10457]: 90541A8E209: from=<>, size=2717, nrcpt=1 (queue active)
Dec 07 16:04:07 dmz postfix/smtp[15449]: 90541A8E209: to=<sales@othercorp.test>, relay=mta.partner.test[127.0.0.4]:25, delay=0.23, delays=0.02/0.11/0.08/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4jjn3C5kV9z1cQHf)
Dec 07 16:04:07 dmz postfix/qmgr[10457]: 90541A8E209: removed
Dec 07 16:04:07 dmz postfix/qmgr[10457]: 26E0DA8E0DC: from=<billing@partner.test>, size=486, nrcpt=1 (queue active)
Dec 07 16:04:07 dmz postfix/relay/smtp[10759]: 26E0DA8E0DC: to=<admin@example.test>, relay=mx.example.test[127.0.0.3]:25, delay=59, delays=59/0.01/0.09/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 948FBA8E20A)
Dec 07 16:04:07 dmz postfix/qmgr[10457]: 26E0DA8E0DC: removed
Dec 07 16:05:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, nrcpt=1 (queue active)
Dec 07 16:05:29 dmz postfix/relay/smtp[10754]: 7D14BA8E455: to=<user3@down.example.test>, relay=none, delay=144, delays=144/0.01/0/0, dsn=4.4.1, status=deferred (connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)
Dec 07 16:06:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, nrcpt=1 (queue active)
Dec 07 16:06:29 dmz postfix/relay/smtp[15455]: 7D14BA8E455: to=<user3@down.example.test>, relay=none, delay=204, delays=204/0/0/0, dsn=4.4.1, status=deferred (connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)
Dec 07 16:07:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, nrcpt=1 (queue active)
Dec 07 16:07:29 dmz postfix/relay/smtp[15455]: 7D14BA8E455: to=<user3@down.example.test>, relay=none, delay=264, delays=264/0/0/0, dsn=4.4.1, status=deferred (connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)
Dec 07 16:07:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, status=expired, returned to sender
Dec 07 16:07:29 dmz postfix/bounce[15454]: 7D14BA8E455: sender non-delivery notification: 625A0A8E0EB
Dec 07 16:07:29 dmz postfix/qmgr[10457]: 7D14BA8E455: removed
Dec 07 16:07:29 dmz postfix/cleanup[18515]: 625A0A8E0EB: message-id=<20261207160729.625A0A8E0EB@dmz.example.test>
Dec 07 16:07:29 dmz postfix/qmgr[10457]: 625A0A8E0EB: from=<>, size=2475, nrcpt=1 (queue active)
Dec 07 16:07:29 dmz postfix/smtp[15171]: 625A0A8E0EB: to=<sales@othercorp.test>, relay=mta.partner.test[127.0.0.4]:25, delay=0.16, delays=0.03/0/0.1/0.02, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4jjn753nzWz1cQ6j)
Dec 07 16:07:29 dmz postfix/qmgr[10457]: 625A0A8E0EB: removed
LINES
cat >"$work/ext.maillog" <<'LINES'
Dec 07 16:04:07 mta postfix/smtpd[10847]: 4jjn3C5kV9z1cQHf: client=dmz.example.test[127.0.0.2]
Dec 07 16:04:07 mta postfix/cleanup[10821]: 4jjn3C5kV9z1cQHf: message-id=<20261207160407.90541A8E209@dmz.example.test>
Dec 07 16:04:07 mta postfix/qmgr[10617]: 4jjn3C5kV9z1cQHf: from=<>, size=3077, nrcpt=1 (queue active)
Dec 07 16:04:07 mta postfix/virtual[10852]: 4jjn3C5kV9z1cQHf: to=<sales@othercorp.test>, relay=virtual, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 07 16:04:07 mta postfix/qmgr[10617]: 4jjn3C5kV9z1cQHf: removed
Dec 07 16:07:29 mta postfix/smtpd[18518]: 4jjn753nzWz1cQ6j: client=dmz.example.test[127.0.0.2]
Dec 07 16:07:29 mta postfix/cleanup[18522]: 4jjn753nzWz1cQ6j: message-id=<20261207160729.625A0A8E0EB@dmz.example.test>
Dec 07 16:07:29 mta postfix/qmgr[10617]: 4jjn753nzWz1cQ6j: from=<>, size=2835, nrcpt=1 (queue active)
Dec 07 16:07:29 mta postfix/virtual[18524]: 4jjn753nzWz1cQ6j: to=<sales@othercorp.test>, relay=virtual, delay=0.05, delays=0.02/0.02/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 07 16:07:29 mta postfix/qmgr[10617]: 4jjn753nzWz1cQ6j: removed
LINES
cat >"$work/internal.maillog" <<'LINES'
Dec 07 16:04:07 mx postfix/smtpd[10789]: 948FBA8E20A: client=dmz.example.test[127.0.0.2]
Dec 07 16:04:07 mx postfix/cleanup[11941]: 948FBA8E20A: message-id=<20261207160306.010934@localhost>
Dec 07 16:04:07 mx postfix/qmgr[10546]: 948FBA8E20A: from=<billing@partner.test>, size=838, nrcpt=1 (queue active)
Dec 07 16:04:07 mx postfix/lmtp[10801]: 948FBA8E20A: to=<admin@example.test>, relay=mx.example.test[private/dovecot-lmtp], delay=0.04, delays=0.01/0.01/0.01/0.01, dsn=2.0.0, status=sent (250 2.0.0 <admin@example.test> MEsjJffYFms+KgAA0J78UA Saved)
Dec 07 16:04:07 mx postfix/qmgr[10546]: 948FBA8E20A: removed
LINES
"$ML" --data "$work/data" import --year 2026 --quiet "$work/dmz.maillog" "$work/internal.maillog" \
  "$work/ext.maillog"
cat >"$work/filter.maillog" <<'LINES'
Dec 31 22:00:19 dmz postfix/smtpd[21410]: E027B3D7F6D: client=p197-65-143-115.dip0.t-ipconnect.de[197.65.143.115]
Dec 31 22:00:20 dmz postfix/cleanup[21389]: E027B3D7F6D: message-id=<3kolgcqGycp6Vnv6.ysDYAf@example.test>
Dec 31 22:00:20 dmz postfix/qmgr[21299]: E027B3D7F6D: from=<vzxlj@rhtdbpemc.net>, size=22989, nrcpt=1 (queue active)
Dec 31 22:00:20 dmz amavis[21426]: (21426-01) Blocked SPAM {DiscardedInbound,Quarantined}, [197.65.143.115]:36266 [197.65.143.115] <vzxlj@rhtdbpemc.net> -> <rita.garcia@example.test>, quarantine: spam-n9AaPw4rlbhv.gz, Queue-ID: E027B3D7F6D, Message-ID: <3kolgcqGycp6Vnv6.ysDYAf@example.test>, mail_id: n9AaPw4rlbhv, Hits: 27.168, size: 22989, 3572 ms
Dec 31 22:00:20 dmz postfix/amavis/smtp[21414]: E027B3D7F6D: to=<rita.garcia@example.test>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.18/0/0/0.85, dsn=2.7.0, status=sent (250 2.7.0 Ok, discarded, id=21426-01 - spam)
Dec 31 22:00:20 dmz postfix/qmgr[21299]: E027B3D7F6D: removed
LINES
"$ML" --data "$work/data" import --year 2024 --quiet "$work/filter.maillog"

# has TEXT PATTERN...: every fixed-string PATTERN is in TEXT.
has() {
  local text=$1
  shift
  for p in "$@"; do
    grep -qF -- "$p" <<<"$text" || fail "missing '$p' in:"$'\n'"$text"
  done
}

expired=$("$ML" --data "$work/data" trace 7D14BA8E455)
verdict="1 expired on dmz after 4 min 24 s in the queue (4.4.1 connect to down-mx.example.test[127.0.0.9]:2525: Connection refused), the non-delivery notice delivered to the sender"
[[ $(sed -n 3p <<<"$expired") == "  $verdict" ]] || fail "verdict is not the third line:"$'\n'"$expired"
has "$expired" \
  "16:03:59  deferred user3@down.example.test 4.4.1: connect to down-mx.example.test[127.0.0.9]:2525: Connection refused (54 s after arrival)" \
  "16:04:07  delay notice to the sender, queued as 90541A8E209" \
  "16:07:29  expired in the queue" \
  "16:07:29  non-delivery notice to the sender, queued as 625A0A8E0EB" \
  "-> delay notice to hop 2 (dmz 90541A8E209)" \
  "-> non-delivery notice to hop 4 (dmz 625A0A8E0EB)" \
  "delay 4 min 24 s: 4 min 24 s before the queue manager (incl. time deferred) + 0 s in the queue manager + 0 s connection setup (DNS, HELO, TLS) + 0 s transmission"
[[ $(grep -c "  deferred user3@down.example.test" <<<"$expired") == 6 ]] ||
  fail "not the 6 deferrals:"$'\n'"$expired"
! grep -q "bounce to hop" <<<"$expired" || fail "a notice still reads 'bounce':"$'\n'"$expired"
echo "ok: expired: verdict, deferrals, notices told apart, delays named"

json=$("$ML" --data "$work/data" trace --json 7D14BA8E455)
[[ $(jq -r .verdict <<<"$json") == "$verdict" ]] || fail "--json verdict: $(jq .verdict <<<"$json")"
[[ $(jq -c '[.links[] | .notice // "-"]' <<<"$json") == '["delay","non-delivery","-","-"]' ]] ||
  fail "--json notices: $(jq -c '[.links[] | .notice]' <<<"$json")"
[[ $(jq '[.messages[0].events[] | select(.kind == "deferred")] | length' <<<"$json") == 6 ]] ||
  fail "--json deferrals: $(jq -c '.messages[0].events' <<<"$json")"
[[ $(jq -c '[.messages[0].events[] | .kind]' <<<"$json") == '["deferred","deferred","deferred","notice","deferred","deferred","deferred","expired","notice"]' ]] ||
  fail "--json events: $(jq -c '[.messages[0].events[] | .kind]' <<<"$json")"
[[ $(jq -c '.recipients[0].delays' <<<"$json") == '{"before_qmgr":"264","in_qmgr":"0","conn_setup":"0","transmission":"0"}' ]] ||
  fail "--json delays: $(jq -c '.recipients[0]' <<<"$json")"
[[ $(jq -c '[.outcomes[] | .outcome]' <<<"$json") == '["expired"]' ]] ||
  fail "--json outcomes: $(jq -c .outcomes <<<"$json")"
echo "ok: expired: the same facts in --json"

held=$("$ML" --data "$work/data" trace 26E0DA8E0DC)
[[ $(sed -n 3p <<<"$held") == "  held on dmz for 59 s (held for lab review), then released; delivered to 1 mailbox on mx" ]] ||
  fail "held verdict:"$'\n'"$held"
has "$held" "[held, then released]" \
  "16:03:08  put on hold by a header check (HOLD Subject: lab 160301-19 hold HOLDME invoice): held for lab review" \
  "16:04:07  released from hold: the queue manager took it up"
[[ $("$ML" --data "$work/data" trace --json 26E0DA8E0DC | jq -c '[.messages[0].events[] | .kind]') == '["held","released"]' ]] ||
  fail "held --json events"
echo "ok: held then released"
filtered=$("$ML" --data "$work/data" trace E027B3D7F6D)
[[ $(sed -n 3p <<<"$filtered") == "  1 blocked by the content filter on dmz (SPAM, score 27.168), discarded" ]] ||
  fail "filter verdict:"$'\n'"$filtered"
has "$filtered" "22:00:20  content filter: Blocked SPAM, score 27.168"
[[ $("$ML" --data "$work/data" trace --json E027B3D7F6D |
  jq -c '[.messages[0].events[] | [.kind, .action, .detail, .score]]') == '[["content_filter","Blocked","SPAM","27.168"]]' ]] ||
  fail "filter --json events"
echo "ok: blocked by the content filter"
echo "trace_story_cli_test: every promise holds"

# --raw shows every raw line of the journey, Dovecot's too.
cat >"$work/dovecot.log" <<'LINES'
Dec 07 16:04:07 lmtp(admin@example.test)<10802><MEsjJffYFms+KgAA0J78UA>: Info: msgid=<20261207160306.010934@localhost>: saved mail to INBOX
LINES
"$ML" --data "$work/data" import --year 2026 --quiet --format dovecot --host mx "$work/dovecot.log"
raw=$("$ML" --data "$work/data" trace --raw 948FBA8E20A)
has "$raw" "mailbox 16:04:07  mx dovecot: saved to INBOX" \
  "| Dec 07 16:04:07 lmtp(admin@example.test)<10802><MEsjJffYFms+KgAA0J78UA>: Info: msgid=<20261207160306.010934@localhost>: saved mail to INBOX"
echo "ok: --raw shows Dovecot's line of the mailbox step"
