#!/usr/bin/env bash
# relink_test.sh -- a hop to a loopback address no host declares stays pending (a content
# filter or another host? with no Message-ID to confirm it, only a declaration tells); `maillens relink
# --host-alias HOST=ADDRESS` declares it and links the hop, as an agent's `addresses =` would
# have live. Imported offline, then traced before and after.
# Env: MAILLENS_BIN_DIR (build/bin).
set -euo pipefail
BIN=${MAILLENS_BIN_DIR:-$(cd "$(dirname "$0")/../build/bin" && pwd)}
ML="$BIN/maillens"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "relink_test: $*" >&2; exit 1; }
T=2024-05-01T10:00
cat >"$work/dmz.log" <<EOF2
$T:00.000000+00:00 dmz postfix/smtpd[10]: 1A2B3C4D5E: client=mail.partner.example[198.51.100.7]
$T:00.100000+00:00 dmz postfix/cleanup[11]: 1A2B3C4D5E: message-id=<relink1@partner.example>
$T:00.200000+00:00 dmz postfix/qmgr[12]: 1A2B3C4D5E: from=<ann@partner.example>, size=900, nrcpt=1 (queue active)
$T:01.000000+00:00 dmz postfix/smtp[13]: 1A2B3C4D5E: to=<bob@example.org>, relay=smtp-in.example.org[127.0.0.3]:25, delay=1, delays=0.2/0/0.3/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F8E7D6C5B)
$T:01.100000+00:00 dmz postfix/qmgr[12]: 1A2B3C4D5E: removed
EOF2
cat >"$work/internal.log" <<EOF2
$T:00.800000+00:00 internal postfix/smtpd[20]: 9F8E7D6C5B: client=dmz.example.org[10.1.1.1]
$T:00.950000+00:00 internal postfix/qmgr[22]: 9F8E7D6C5B: from=<ann@partner.example>, size=1100, nrcpt=1 (queue active)
$T:01.500000+00:00 internal postfix/lmtp[23]: 9F8E7D6C5B: to=<bob@example.org>, relay=internal.example.org[private/dovecot-lmtp], delay=0.7, delays=0.1/0/0/0.6, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.org> Saved)
$T:01.600000+00:00 internal postfix/qmgr[22]: 9F8E7D6C5B: removed
EOF2
"$ML" --data "$work/data" import "$work/dmz.log" "$work/internal.log" >/dev/null 2>&1 || fail "import"
hops() { "$ML" --data "$work/data" trace --json 1A2B3C4D5E | jq '.messages | length'; }
[[ $(hops) == 1 ]] || fail "linked before 127.0.0.3 was declared: $(hops) hops"
out=$("$ML" --data "$work/data" relink --host-alias internal=127.0.0.3) ||
  fail "relink failed: $out"
grep -q "relinked: 1 new link" <<<"$out" || fail "relink said: $out"
[[ $(hops) == 2 ]] || fail "not linked after relink: $(hops) hops"
grep -q "relay to hop 2 (internal 9F8E7D6C5B)" <<<"$("$ML" --data "$work/data" trace 1A2B3C4D5E)" ||
  fail "trace: $("$ML" --data "$work/data" trace 1A2B3C4D5E)"
if "$ML" --data "$work/data" relink --host-alias nonsense 2>/dev/null; then fail "bad alias accepted"; fi
# Declared at import time instead, the hop is linked as it is stored.
"$ML" --data "$work/data2" import --host-alias internal=127.0.0.3 "$work/dmz.log" \
  "$work/internal.log" >/dev/null 2>&1 || fail "import --host-alias"
[[ $("$ML" --data "$work/data2" trace --json 1A2B3C4D5E | jq '.messages | length') == 2 ]] ||
  fail "import --host-alias did not link the hop"
echo "relink_test: a pending hop is linked once its address is declared"
