#!/usr/bin/env bash
# The main job. For now (until the store and agent issues land): set up, build, and show how
# maillens reads a small two-host sample written by this script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
SAMPLE=$(mktemp /tmp/maillens_demo_XXXX.log)
trap 'rm -f "$SAMPLE"' EXIT
cat > "$SAMPLE" <<'LOG'
Nov 22 09:00:01 dmz postfix/smtpd[2101]: connect from mail.partner.example[198.51.100.20]
Nov 22 09:00:02 dmz postfix/smtpd[2101]: 4F1A2B3C4D: client=mail.partner.example[198.51.100.20]
Nov 22 09:00:02 dmz postfix/cleanup[2102]: 4F1A2B3C4D: message-id=<demo-1@partner.example>
Nov 22 09:00:02 dmz postfix/qmgr[1001]: 4F1A2B3C4D: from=<carol@partner.example>, size=2048, nrcpt=1 (queue active)
Nov 22 09:00:03 dmz postfix/smtp[2103]: 4F1A2B3C4D: to=<bob@example.test>, relay=mx.example.test[192.0.2.3]:25, delay=0.9, delays=0.2/0.01/0.3/0.39, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9E8D7C6B5A)
Nov 22 09:00:03 mx postfix/smtpd[3101]: 9E8D7C6B5A: client=dmz.example.test[192.0.2.2]
Nov 22 09:00:03 mx postfix/lmtp[3104]: 9E8D7C6B5A: to=<bob@example.test>, relay=mx.example.test[private/dovecot-lmtp], delay=0.1, delays=0.05/0/0.02/0.03, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.test> Saved)
LOG
build/bin/maillens parse "$SAMPLE"
