// TellTrace on real lines: each trace is imported into a store, read back as `maillens trace`
// reads it (Store::GetTrace, TraceLines), and told. Covers the verdict for delivered, partly
// bounced, expired, held-then-released and filtered mail, a trace whose later hop is not in
// the store, and each per-hop fact: deferrals, hold and release, check actions, the content
// filter's verdict, delay notices told apart from non-delivery notices.
#include "cli/trace_story.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/parser.h"
#include "core/time_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/query_proto.h"
#include "store/store.h"
#include "store/test_lines.h"

namespace maillens::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Real lines of the lab (../shared/postfix-lab/lab.sh traffic: dmz, mx and the stand-in
// internet "mta" on loopback addresses of one machine), one trace each.

// Relayed by dmz to mx, delivered there to three mailboxes (two by LMTP to Dovecot, one by
// virtual(8)).
const std::vector<std::string> kDelivered = {
    "Dec 07 16:03:07 dmz postfix/smtpd[10751]: 8B109A8E0D7: client=out1.partner.test[127.0.0.10]",
    "Dec 07 16:03:07 dmz postfix/cleanup[10752]: 8B109A8E0D7: "
    "message-id=<20261207160305.010812@localhost>",
    "Dec 07 16:03:07 dmz postfix/qmgr[10457]: 8B109A8E0D7: from=<info@othercorp.test>, size=6664, "
    "nrcpt=3 (queue active)",
    "Dec 07 16:03:07 dmz postfix/relay/smtp[10759]: 8B109A8E0D7: to=<erin@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.06, delays=0.01/0/0.05/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 98847A8E445)",
    "Dec 07 16:03:07 dmz postfix/relay/smtp[10759]: 8B109A8E0D7: to=<grace@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.06, delays=0.01/0/0.05/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 98847A8E445)",
    "Dec 07 16:03:07 dmz postfix/relay/smtp[10759]: 8B109A8E0D7: to=<ops@staff.example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.06, delays=0.01/0/0.05/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 98847A8E445)",
    "Dec 07 16:03:07 dmz postfix/qmgr[10457]: 8B109A8E0D7: removed",
    "Dec 07 16:03:07 mx postfix/smtpd[10789]: 98847A8E445: client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:03:07 mx postfix/cleanup[10783]: 98847A8E445: "
    "message-id=<20261207160305.010812@localhost>",
    "Dec 07 16:03:07 mx postfix/qmgr[10546]: 98847A8E445: from=<info@othercorp.test>, size=6991, "
    "nrcpt=3 (queue active)",
    "Dec 07 16:03:07 mx postfix/virtual[10804]: 98847A8E445: to=<ops@staff.example.test>, "
    "relay=virtual, delay=0.02, delays=0.01/0/0/0.01, dsn=2.0.0, status=sent (delivered to "
    "maildir)",
    "Dec 07 16:03:07 mx postfix/lmtp[10801]: 98847A8E445: to=<erin@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.04, delays=0.01/0/0/0.03, dsn=2.0.0, "
    "status=sent (250 2.0.0 <erin@example.test> SBC+JbvYFmsyKgAA0J78UA Saved)",
    "Dec 07 16:03:07 mx postfix/lmtp[10801]: 98847A8E445: to=<grace@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.04, delays=0.01/0/0/0.03, dsn=2.0.0, "
    "status=sent (250 2.0.0 <grace@example.test> SBC+JbvYFmsyKgAA0J78UA:R2 Saved)",
    "Dec 07 16:03:07 mx postfix/qmgr[10546]: 98847A8E445: removed",
};

// The lab's Dovecot log (its own log_path file, no host field) for kDelivered.
const std::vector<std::string> kDeliveredDovecot = {
    "Dec 07 16:03:07 lmtp(erin@example.test)<10802><SBC+JbvYFmsyKgAA0J78UA>: Info: "
    "msgid=<20261207160305.010812@localhost>: saved mail to INBOX",
    "Dec 07 16:03:07 lmtp(grace@example.test)<10802><SBC+JbvYFmsyKgAA0J78UA:R2>: Info: "
    "msgid=<20261207160305.010812@localhost>: saved mail to INBOX",
};

// Three recipients relayed by dmz to mx; one refused there (unknown user), so dmz bounced it
// and sent the sender a non-delivery notice, which mta delivered.
const std::vector<std::string> kPartlyBounced = {
    "Dec 07 16:03:31 dmz postfix/smtpd[10971]: 66D68A8E65E: client=out1.partner.test[127.0.0.10]",
    "Dec 07 16:03:31 dmz postfix/cleanup[10752]: 66D68A8E65E: "
    "message-id=<20261207160331.012980@localhost>",
    "Dec 07 16:03:31 dmz postfix/qmgr[10457]: 66D68A8E65E: from=<news@partner.test>, size=1129, "
    "nrcpt=4 (queue active)",
    "Dec 07 16:03:31 dmz postfix/relay/smtp[10759]: 66D68A8E65E: to=<nosuch217@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.06, delays=0/0/0.05/0.01, dsn=5.1.1, "
    "status=bounced (host mx.example.test[127.0.0.3] said: 550 5.1.1 <nosuch217@example.test>: "
    "Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO "
    "command))",
    "Dec 07 16:03:31 dmz postfix/relay/smtp[10759]: 66D68A8E65E: to=<ivan@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.07, delays=0/0/0.05/0.01, dsn=2.0.0, status=sent "
    "(250 2.0.0 Ok: queued as 751FDA8E65F)",
    "Dec 07 16:03:31 dmz postfix/relay/smtp[10759]: 66D68A8E65E: to=<judy@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.07, delays=0/0/0.05/0.01, dsn=2.0.0, status=sent "
    "(250 2.0.0 Ok: queued as 751FDA8E65F)",
    "Dec 07 16:03:31 dmz postfix/relay/smtp[10759]: 66D68A8E65E: to=<it@staff.example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.07, delays=0/0/0.05/0.01, dsn=2.0.0, status=sent "
    "(250 2.0.0 Ok: queued as 751FDA8E65F)",
    "Dec 07 16:03:31 dmz postfix/bounce[11199]: 66D68A8E65E: sender non-delivery notification: "
    "7C15EA8E66B",
    "Dec 07 16:03:31 dmz postfix/qmgr[10457]: 66D68A8E65E: removed",
    "Dec 07 16:03:31 dmz postfix/cleanup[12990]: 7C15EA8E66B: "
    "message-id=<20261207160331.7C15EA8E66B@dmz.example.test>",
    "Dec 07 16:03:31 dmz postfix/qmgr[10457]: 7C15EA8E66B: from=<>, size=3278, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:03:31 dmz postfix/smtp[10846]: 7C15EA8E66B: to=<news@partner.test>, "
    "relay=mta.partner.test[127.0.0.4]:25, delay=0.07, delays=0.02/0/0.05/0, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 4jjn2W3ywSz1cQfd)",
    "Dec 07 16:03:31 dmz postfix/qmgr[10457]: 7C15EA8E66B: removed",
    "Dec 07 16:03:31 mta postfix/smtpd[10847]: 4jjn2W3ywSz1cQfd: "
    "client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:03:31 mta postfix/cleanup[10821]: 4jjn2W3ywSz1cQfd: "
    "message-id=<20261207160331.7C15EA8E66B@dmz.example.test>",
    "Dec 07 16:03:31 mta postfix/qmgr[10617]: 4jjn2W3ywSz1cQfd: from=<>, size=3635, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:03:31 mta postfix/virtual[10852]: 4jjn2W3ywSz1cQfd: to=<news@partner.test>, "
    "relay=virtual, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)",
    "Dec 07 16:03:31 mta postfix/qmgr[10617]: 4jjn2W3ywSz1cQfd: removed",
    "Dec 07 16:03:31 mx postfix/smtpd[10760]: 751FDA8E65F: client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:03:31 mx postfix/smtpd[10760]: 751FDA8E65F: reject: RCPT from "
    "dmz.example.test[127.0.0.2]: 550 5.1.1 <nosuch217@example.test>: Recipient address rejected: "
    "User unknown in virtual mailbox table; from=<news@partner.test> to=<nosuch217@example.test> "
    "proto=ESMTP helo=<dmz.example.test>",
    "Dec 07 16:03:31 mx postfix/cleanup[11940]: 751FDA8E65F: "
    "message-id=<20261207160331.012980@localhost>",
    "Dec 07 16:03:31 mx postfix/qmgr[10546]: 751FDA8E65F: from=<news@partner.test>, size=1456, "
    "nrcpt=3 (queue active)",
    "Dec 07 16:03:31 mx postfix/virtual[10804]: 751FDA8E65F: to=<it@staff.example.test>, "
    "relay=virtual, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)",
    "Dec 07 16:03:31 mx postfix/lmtp[10801]: 751FDA8E65F: to=<ivan@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.03, delays=0.01/0/0/0.02, dsn=2.0.0, "
    "status=sent (250 2.0.0 <ivan@example.test> sHoXHdPYFmtCKgAA0J78UA Saved)",
    "Dec 07 16:03:31 mx postfix/lmtp[10801]: 751FDA8E65F: to=<judy@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.03, delays=0.01/0/0/0.02, dsn=2.0.0, "
    "status=sent (250 2.0.0 <judy@example.test> sHoXHdPYFmtCKgAA0J78UA:R2 Saved)",
    "Dec 07 16:03:31 mx postfix/qmgr[10546]: 751FDA8E65F: removed",
};

// A destination that refuses connections: deferred on every try, a delay notice to the
// sender, then expiry and a non-delivery notice (the lab's queue lifetime is minutes).
const std::vector<std::string> kExpired = {
    "Dec 07 16:03:05 dmz postfix/smtpd[10751]: 7D14BA8E455: client=unknown[127.0.0.13]",
    "Dec 07 16:03:05 dmz postfix/cleanup[10753]: 7D14BA8E455: "
    "message-id=<20261207160305.010839@localhost>",
    "Dec 07 16:03:05 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:05 dmz postfix/relay/smtp[10772]: 7D14BA8E455: to=<user3@down.example.test>, "
    "relay=none, delay=0, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:03:59 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:59 dmz postfix/relay/smtp[10772]: 7D14BA8E455: to=<user3@down.example.test>, "
    "relay=none, delay=54, delays=54/0.01/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:04:07 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:04:07 dmz postfix/relay/smtp[10754]: 7D14BA8E455: to=<user3@down.example.test>, "
    "relay=none, delay=62, delays=62/0.04/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:04:07 dmz postfix/bounce[15172]: 7D14BA8E455: sender delay notification: "
    "90541A8E209",
    "Dec 07 16:05:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:05:29 dmz postfix/relay/smtp[10754]: 7D14BA8E455: to=<user3@down.example.test>, "
    "relay=none, delay=144, delays=144/0.01/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:06:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:06:29 dmz postfix/relay/smtp[15455]: 7D14BA8E455: to=<user3@down.example.test>, "
    "relay=none, delay=204, delays=204/0/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:07:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, size=484, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:07:29 dmz postfix/relay/smtp[15455]: 7D14BA8E455: to=<user3@down.example.test>, "
    "relay=none, delay=264, delays=264/0/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:07:29 dmz postfix/qmgr[10457]: 7D14BA8E455: from=<sales@othercorp.test>, "
    "status=expired, returned to sender",
    "Dec 07 16:07:29 dmz postfix/bounce[15454]: 7D14BA8E455: sender non-delivery notification: "
    "625A0A8E0EB",
    "Dec 07 16:07:29 dmz postfix/qmgr[10457]: 7D14BA8E455: removed",
    "Dec 07 16:04:07 dmz postfix/cleanup[12990]: 90541A8E209: "
    "message-id=<20261207160407.90541A8E209@dmz.example.test>",
    "Dec 07 16:04:07 dmz postfix/qmgr[10457]: 90541A8E209: from=<>, size=2717, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:04:07 dmz postfix/smtp[15449]: 90541A8E209: to=<sales@othercorp.test>, "
    "relay=mta.partner.test[127.0.0.4]:25, delay=0.23, delays=0.02/0.11/0.08/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 4jjn3C5kV9z1cQHf)",
    "Dec 07 16:04:07 dmz postfix/qmgr[10457]: 90541A8E209: removed",
    "Dec 07 16:04:07 mta postfix/smtpd[10847]: 4jjn3C5kV9z1cQHf: "
    "client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:04:07 mta postfix/cleanup[10821]: 4jjn3C5kV9z1cQHf: "
    "message-id=<20261207160407.90541A8E209@dmz.example.test>",
    "Dec 07 16:04:07 mta postfix/qmgr[10617]: 4jjn3C5kV9z1cQHf: from=<>, size=3077, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:04:07 mta postfix/virtual[10852]: 4jjn3C5kV9z1cQHf: to=<sales@othercorp.test>, "
    "relay=virtual, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)",
    "Dec 07 16:04:07 mta postfix/qmgr[10617]: 4jjn3C5kV9z1cQHf: removed",
    "Dec 07 16:07:29 dmz postfix/cleanup[18515]: 625A0A8E0EB: "
    "message-id=<20261207160729.625A0A8E0EB@dmz.example.test>",
    "Dec 07 16:07:29 dmz postfix/qmgr[10457]: 625A0A8E0EB: from=<>, size=2475, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:07:29 dmz postfix/smtp[15171]: 625A0A8E0EB: to=<sales@othercorp.test>, "
    "relay=mta.partner.test[127.0.0.4]:25, delay=0.16, delays=0.03/0/0.1/0.02, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 4jjn753nzWz1cQ6j)",
    "Dec 07 16:07:29 dmz postfix/qmgr[10457]: 625A0A8E0EB: removed",
    "Dec 07 16:07:29 mta postfix/smtpd[18518]: 4jjn753nzWz1cQ6j: "
    "client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:07:29 mta postfix/cleanup[18522]: 4jjn753nzWz1cQ6j: "
    "message-id=<20261207160729.625A0A8E0EB@dmz.example.test>",
    "Dec 07 16:07:29 mta postfix/qmgr[10617]: 4jjn753nzWz1cQ6j: from=<>, size=2835, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:07:29 mta postfix/virtual[18524]: 4jjn753nzWz1cQ6j: to=<sales@othercorp.test>, "
    "relay=virtual, delay=0.05, delays=0.02/0.02/0/0, dsn=2.0.0, status=sent (delivered to "
    "maildir)",
    "Dec 07 16:07:29 mta postfix/qmgr[10617]: 4jjn753nzWz1cQ6j: removed",
};

// Held by a header check on dmz and released by postsuper -H ALL (which logs no queue ID).
const std::vector<std::string> kHeldThenReleased = {
    "Dec 07 16:03:08 dmz postfix/smtpd[10745]: 26E0DA8E0DC: client=out1.partner.test[127.0.0.10]",
    "Dec 07 16:03:08 dmz postfix/cleanup[10753]: 26E0DA8E0DC: hold: header Subject: lab 160301-19 "
    "hold HOLDME invoice from out1.partner.test[127.0.0.10]; from=<billing@partner.test> "
    "to=<admin@example.test> proto=ESMTP helo=<out1.partner.test>: held for lab review",
    "Dec 07 16:03:08 dmz postfix/cleanup[10753]: 26E0DA8E0DC: "
    "message-id=<20261207160306.010934@localhost>",
    "Dec 07 16:04:07 dmz postfix/qmgr[10457]: 26E0DA8E0DC: from=<billing@partner.test>, size=486, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:04:07 dmz postfix/relay/smtp[10759]: 26E0DA8E0DC: to=<admin@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=59, delays=59/0.01/0.09/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 948FBA8E20A)",
    "Dec 07 16:04:07 dmz postfix/qmgr[10457]: 26E0DA8E0DC: removed",
    "Dec 07 16:04:07 mx postfix/smtpd[10789]: 948FBA8E20A: client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:04:07 mx postfix/cleanup[11941]: 948FBA8E20A: "
    "message-id=<20261207160306.010934@localhost>",
    "Dec 07 16:04:07 mx postfix/qmgr[10546]: 948FBA8E20A: from=<billing@partner.test>, size=838, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:04:07 mx postfix/lmtp[10801]: 948FBA8E20A: to=<admin@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.04, delays=0.01/0.01/0.01/0.01, "
    "dsn=2.0.0, status=sent (250 2.0.0 <admin@example.test> MEsjJffYFms+KgAA0J78UA Saved)",
    "Dec 07 16:04:07 mx postfix/qmgr[10546]: 948FBA8E20A: removed",
};

// Discarded by a header check on dmz.
const std::vector<std::string> kDiscarded = {
    "Dec 07 16:03:07 dmz postfix/smtpd[10748]: B14F4A8E31C: client=out1.partner.test[127.0.0.10]",
    "Dec 07 16:03:07 dmz postfix/cleanup[10752]: B14F4A8E31C: discard: header Subject: lab "
    "160301-20 discard DISCARDME from out1.partner.test[127.0.0.10]; from=<news@partner.test> "
    "to=<alice@example.test> proto=ESMTP helo=<out1.partner.test>: silently dropped by lab policy",
};

// From mx through dmz to a server that refuses it at the end of DATA.
const std::vector<std::string> kBouncedAtStrict = {
    "Dec 07 16:03:05 mx postfix/smtpd[10760]: E58AEA8E46F: client=ws1.example.test[127.0.0.21]",
    "Dec 07 16:03:05 mx postfix/cleanup[10783]: E58AEA8E46F: "
    "message-id=<20261207160305.010879@localhost>",
    "Dec 07 16:03:05 mx postfix/qmgr[10546]: E58AEA8E46F: from=<judy@example.test>, size=1064, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:05 mx postfix/smtp[10867]: E58AEA8E46F: to=<user2@strict.test>, "
    "relay=dmz.example.test[127.0.0.2]:25, delay=0.06, delays=0/0/0.05/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as F352EA8E470)",
    "Dec 07 16:03:05 mx postfix/qmgr[10546]: E58AEA8E46F: removed",
    "Dec 07 16:03:05 dmz postfix/smtpd[10745]: F352EA8E470: client=mx.example.test[127.0.0.3]",
    "Dec 07 16:03:05 dmz postfix/cleanup[10753]: F352EA8E470: "
    "message-id=<20261207160305.010879@localhost>",
    "Dec 07 16:03:05 dmz postfix/qmgr[10457]: F352EA8E470: from=<judy@example.test>, size=1414, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:06 dmz postfix/smtp[10846]: F352EA8E470: to=<user2@strict.test>, "
    "relay=mx.strict.test[127.0.0.7]:25, delay=0.01, delays=0.01/0/0/0, dsn=5.7.1, status=bounced "
    "(host mx.strict.test[127.0.0.7] said: 554 5.7.1 Message rejected as spam by lab policy (in "
    "reply to end of DATA command))",
    "Dec 07 16:03:06 dmz postfix/bounce[10844]: F352EA8E470: sender non-delivery notification: "
    "03EF1A8E1C9",
    "Dec 07 16:03:06 dmz postfix/qmgr[10457]: F352EA8E470: removed",
    "Dec 07 16:03:06 dmz postfix/cleanup[10752]: 03EF1A8E1C9: "
    "message-id=<20261207160306.03EF1A8E1C9@dmz.example.test>",
    "Dec 07 16:03:06 dmz postfix/qmgr[10457]: 03EF1A8E1C9: from=<>, size=3434, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:03:06 dmz postfix/relay/smtp[10754]: 03EF1A8E1C9: to=<judy@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.05, delays=0/0/0.05/0, dsn=2.0.0, status=sent "
    "(250 2.0.0 Ok: queued as 10927A8E1B5)",
    "Dec 07 16:03:06 dmz postfix/qmgr[10457]: 03EF1A8E1C9: removed",
    "Dec 07 16:03:06 mx postfix/smtpd[10773]: 10927A8E1B5: client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:03:06 mx postfix/cleanup[10783]: 10927A8E1B5: "
    "message-id=<20261207160306.03EF1A8E1C9@dmz.example.test>",
    "Dec 07 16:03:06 mx postfix/qmgr[10546]: 10927A8E1B5: from=<>, size=3785, nrcpt=1 (queue "
    "active)",
    "Dec 07 16:03:06 mx postfix/lmtp[10807]: 10927A8E1B5: to=<judy@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.02, delays=0/0/0/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 <judy@example.test> OApGBLrYFmsyKgAA0J78UA Saved)",
    "Dec 07 16:03:06 mx postfix/qmgr[10546]: 10927A8E1B5: removed",
};

// Deferred twice, then deleted by the administrator (postsuper -d).
const std::vector<std::string> kDeleted = {
    "Dec 07 16:03:25 dmz postfix/smtpd[10971]: 1926CA8E61F: client=unknown[127.0.0.14]",
    "Dec 07 16:03:25 dmz postfix/cleanup[10752]: 1926CA8E61F: "
    "message-id=<20261207160325.012334@localhost>",
    "Dec 07 16:03:25 dmz postfix/qmgr[10457]: 1926CA8E61F: from=<info@othercorp.test>, size=485, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:25 dmz postfix/relay/smtp[10754]: 1926CA8E61F: to=<user1@down.example.test>, "
    "relay=none, delay=0.01, delays=0.01/0/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:03:59 dmz postfix/qmgr[10457]: 1926CA8E61F: from=<info@othercorp.test>, size=485, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:59 dmz postfix/relay/smtp[10754]: 1926CA8E61F: to=<user1@down.example.test>, "
    "relay=none, delay=34, delays=34/0.01/0/0, dsn=4.4.1, status=deferred (connect to "
    "down-mx.example.test[127.0.0.9]:2525: Connection refused)",
    "Dec 07 16:04:07 dmz postfix/postsuper[15441]: 1926CA8E61F: removed",
};

// A header check WARN hit on dmz; delivered on mx.
const std::vector<std::string> kWarned = {
    "Dec 07 16:03:07 dmz postfix/smtpd[10751]: D1170A8E31C: client=smtp.othercorp.test[127.0.0.12]",
    "Dec 07 16:03:07 dmz postfix/cleanup[10753]: D1170A8E31C: warning: header Subject: lab "
    "160301-21 warn WARNME from smtp.othercorp.test[127.0.0.12]; from=<alice@partner.test> "
    "to=<ivan@example.test> proto=ESMTP helo=<smtp.othercorp.test>: lab warning header seen",
    "Dec 07 16:03:07 dmz postfix/cleanup[10753]: D1170A8E31C: "
    "message-id=<20261207160307.010952@localhost>",
    "Dec 07 16:03:07 dmz postfix/qmgr[10457]: D1170A8E31C: from=<alice@partner.test>, size=478, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:07 dmz postfix/relay/smtp[10777]: D1170A8E31C: to=<ivan@example.test>, "
    "relay=mx.example.test[127.0.0.3]:25, delay=0.06, delays=0/0/0.05/0, dsn=2.0.0, status=sent "
    "(250 2.0.0 Ok: queued as DEEE1A8E445)",
    "Dec 07 16:03:07 dmz postfix/qmgr[10457]: D1170A8E31C: removed",
    "Dec 07 16:03:07 mx postfix/smtpd[10773]: DEEE1A8E445: client=dmz.example.test[127.0.0.2]",
    "Dec 07 16:03:07 mx postfix/cleanup[10783]: DEEE1A8E445: "
    "message-id=<20261207160307.010952@localhost>",
    "Dec 07 16:03:07 mx postfix/qmgr[10546]: DEEE1A8E445: from=<alice@partner.test>, size=829, "
    "nrcpt=1 (queue active)",
    "Dec 07 16:03:07 mx postfix/lmtp[10807]: DEEE1A8E445: to=<ivan@example.test>, "
    "relay=mx.example.test[private/dovecot-lmtp], delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
    "status=sent (250 2.0.0 <ivan@example.test> kF7GNrvYFmsyKgAA0J78UA Saved)",
    "Dec 07 16:03:07 mx postfix/qmgr[10546]: DEEE1A8E445: removed",
};

// The lab's Dovecot log for kWarned.
const std::vector<std::string> kWarnedDovecot = {
    "Dec 07 16:03:07 lmtp(ivan@example.test)<10802><kF7GNrvYFmsyKgAA0J78UA>: Info: "
    "msgid=<20261207160307.010952@localhost>: saved mail to INBOX",
};

// The simulator's (tools/simulator.cc) amavis: blocked as spam and discarded.
const std::vector<std::string> kBlockedSpam = {
    "Dec 31 22:00:19 dmz postfix/smtpd[21410]: E027B3D7F6D: "
    "client=p197-65-143-115.dip0.t-ipconnect.de[197.65.143.115]",
    "Dec 31 22:00:20 dmz postfix/cleanup[21389]: E027B3D7F6D: "
    "message-id=<3kolgcqGycp6Vnv6.ysDYAf@example.test>",
    "Dec 31 22:00:20 dmz postfix/qmgr[21299]: E027B3D7F6D: from=<vzxlj@rhtdbpemc.net>, size=22989, "
    "nrcpt=1 (queue active)",
    "Dec 31 22:00:20 dmz amavis[21426]: (21426-01) Blocked SPAM {DiscardedInbound,Quarantined}, "
    "[197.65.143.115]:36266 [197.65.143.115] <vzxlj@rhtdbpemc.net> -> <rita.garcia@example.test>, "
    "quarantine: spam-n9AaPw4rlbhv.gz, Queue-ID: E027B3D7F6D, Message-ID: "
    "<3kolgcqGycp6Vnv6.ysDYAf@example.test>, mail_id: n9AaPw4rlbhv, Hits: 27.168, size: 22989, "
    "3572 ms",
    "Dec 31 22:00:20 dmz postfix/amavis/smtp[21414]: E027B3D7F6D: to=<rita.garcia@example.test>, "
    "relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0.18/0/0/0.85, dsn=2.7.0, status=sent (250 "
    "2.7.0 Ok, discarded, id=21426-01 - spam)",
    "Dec 31 22:00:20 dmz postfix/qmgr[21299]: E027B3D7F6D: removed",
};

// The simulator's amavis passing a message, re-injected and relayed to mx.example.test.
const std::vector<std::string> kPassedClean = {
    "Dec 31 22:02:28 dmz postfix/smtpd[21469]: C4B953D7F71: client=unknown[185.232.213.136]",
    "Dec 31 22:02:28 dmz postfix/cleanup[21389]: C4B953D7F71: "
    "message-id=<20241231220228.2033586@example.test>",
    "Dec 31 22:02:29 dmz postfix/qmgr[21299]: C4B953D7F71: from=<ubnypyeta@aryzbm.ru>, size=4322, "
    "nrcpt=1 (queue active)",
    "Dec 31 22:02:29 dmz amavis[21526]: (21526-01) Passed CLEAN {RelayedInbound}, "
    "[185.232.213.136]:56461 [185.232.213.136] <ubnypyeta@aryzbm.ru> -> <frank.khan@example.test>, "
    "Queue-ID: C4B953D7F71, Message-ID: <20241231220228.2033586@example.test>, mail_id: "
    "5Ckk9RfkMBnj, Hits: 2.204, size: 4322, queued_as: 634633D7F73, 413 ms",
    "Dec 31 22:02:29 dmz postfix/amavis/smtp[21489]: C4B953D7F71: to=<frank.khan@example.test>, "
    "relay=127.0.0.1[127.0.0.1]:10024, delay=0.64, delays=0.21/0/0/0.41, dsn=2.0.0, status=sent "
    "(250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 634633D7F73)",
    "Dec 31 22:02:29 dmz postfix/qmgr[21299]: C4B953D7F71: removed",
    "Dec 31 22:02:29 dmz postfix/10025/smtpd[21553]: 634633D7F73: client=localhost[127.0.0.1]",
    "Dec 31 22:02:29 dmz postfix/cleanup[21389]: 634633D7F73: "
    "message-id=<20241231220228.2033586@example.test>",
    "Dec 31 22:02:29 dmz postfix/qmgr[21299]: 634633D7F73: from=<ubnypyeta@aryzbm.ru>, size=5067, "
    "nrcpt=1 (queue active)",
    "Dec 31 22:02:29 dmz postfix/relay/smtp[21466]: 634633D7F73: to=<frank.khan@example.test>, "
    "relay=mx.example.test[10.1.0.3]:25, delay=0.11, delays=0.05/0.01/0.02/0.01, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 7C9DA1851373)",
    "Dec 31 22:02:29 dmz postfix/qmgr[21299]: 634633D7F73: removed",
};

// The simulator's outbound mail: passed by amavis, greylisted three times, then accepted.
const std::vector<std::string> kDeferredThenAccepted = {
    "Jan  1 00:20:51 dmz postfix/smtpd[25613]: 830083D817B: client=mx.example.test[10.1.0.3]",
    "Jan  1 00:20:51 dmz postfix/cleanup[25574]: 830083D817B: "
    "message-id=<20250101002050.9319278@example.test>",
    "Jan  1 00:20:51 dmz postfix/qmgr[21299]: 830083D817B: from=<heidi.rossi@example.test>, "
    "size=8400, nrcpt=1 (queue active)",
    "Jan  1 00:20:54 dmz amavis[25647]: (25647-03) Passed CLEAN {RelayedOutbound}, "
    "[10.1.0.3]:35658 [78.69.249.8] <heidi.rossi@example.test> -> <orders@legacy.test>, Queue-ID: "
    "830083D817B, Message-ID: <20250101002050.9319278@example.test>, mail_id: wILwJX6WAs1Q, Hits: "
    "1.476, size: 8400, queued_as: 1DD4F3D817E, 2577 ms",
    "Jan  1 00:20:54 dmz postfix/amavis/smtp[25628]: 830083D817B: to=<orders@legacy.test>, "
    "relay=127.0.0.1[127.0.0.1]:10024, delay=2.6, delays=0.04/0/0/2.5, dsn=2.0.0, status=sent (250 "
    "2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 1DD4F3D817E)",
    "Jan  1 00:20:54 dmz postfix/qmgr[21299]: 830083D817B: removed",
    "Jan  1 00:20:54 dmz postfix/10025/smtpd[25652]: 1DD4F3D817E: client=localhost[127.0.0.1]",
    "Jan  1 00:20:54 dmz postfix/cleanup[25574]: 1DD4F3D817E: "
    "message-id=<20250101002050.9319278@example.test>",
    "Jan  1 00:20:54 dmz postfix/qmgr[21299]: 1DD4F3D817E: from=<heidi.rossi@example.test>, "
    "size=9275, nrcpt=1 (queue active)",
    "Jan  1 00:20:56 dmz postfix/smtp[25656]: 1DD4F3D817E: to=<orders@legacy.test>, "
    "relay=mail.legacy.test[80.67.18.156]:25, delay=2.1, delays=0.05/0.01/1.2/0.81, dsn=4.7.1, "
    "status=deferred (host mail.legacy.test[80.67.18.156] said: 450 4.7.1 <orders@legacy.test>: "
    "Recipient address rejected: Greylisted, see "
    "https://postgrey.schweikert.ch/help/legacy.test.html (in reply to RCPT TO command))",
    "Jan  1 00:28:15 dmz postfix/qmgr[21299]: 1DD4F3D817E: from=<heidi.rossi@example.test>, "
    "size=9275, nrcpt=1 (queue active)",
    "Jan  1 00:28:17 dmz postfix/smtp[25704]: 1DD4F3D817E: to=<orders@legacy.test>, "
    "relay=mail.legacy.test[80.67.18.36]:25, delay=443, delays=441/0.01/0.59/1, dsn=4.7.1, "
    "status=deferred (host mail.legacy.test[80.67.18.36] said: 450 4.7.1 <orders@legacy.test>: "
    "Recipient address rejected: Greylisted, see "
    "https://postgrey.schweikert.ch/help/legacy.test.html (in reply to RCPT TO command))",
    "Jan  1 00:39:23 dmz postfix/qmgr[21299]: 1DD4F3D817E: from=<heidi.rossi@example.test>, "
    "size=9275, nrcpt=1 (queue active)",
    "Jan  1 00:39:25 dmz postfix/smtp[25709]: 1DD4F3D817E: to=<orders@legacy.test>, "
    "relay=mail.legacy.test[80.67.18.91]:25, delay=1111, delays=1109/0/0.31/1.4, dsn=4.7.1, "
    "status=deferred (host mail.legacy.test[80.67.18.91] said: 450 4.7.1 <orders@legacy.test>: "
    "Recipient address rejected: Greylisted, see "
    "https://postgrey.schweikert.ch/help/legacy.test.html (in reply to RCPT TO command))",
    "Jan  1 00:59:29 dmz postfix/qmgr[21299]: 1DD4F3D817E: from=<heidi.rossi@example.test>, "
    "size=9275, nrcpt=1 (queue active)",
    "Jan  1 00:59:31 dmz postfix/smtp[25736]: 1DD4F3D817E: to=<orders@legacy.test>, "
    "relay=mail.legacy.test[80.67.18.185]:25, delay=2317, delays=2315/0/0.83/0.83, dsn=2.0.0, "
    "status=sent (250 2.0.0 j010xVNW373626 Message accepted for delivery)",
    "Jan  1 00:59:31 dmz postfix/qmgr[21299]: 1DD4F3D817E: removed",
};

class TraceStoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("maillens_trace_story_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store::StoreOptions options;
    options.dir = dir_.string();
    auto store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Stores `lines` (classic syslog stamps of the year before `reference`; a line without a host
  // field is mx's), each host's as one file, hosts in the order given by `host_order` (all hosts,
  // in order of appearance, when empty).
  void Import(const std::vector<std::string>& lines, const std::string& reference = "2026-12-31",
              std::vector<std::string> host_order = {}) {
    core::TimeOptions options;
    absl::CivilDay day;
    ASSERT_TRUE(absl::ParseCivilTime(reference, &day));
    options.reference_us = absl::ToUnixMicros(absl::FromCivil(day, absl::UTCTimeZone()));
    core::TimeContext time(options);
    std::map<std::string, std::vector<std::pair<int64_t, std::string>>> by_host;
    std::vector<std::string> seen;
    for (const std::string& raw : lines) {
      core::Event ev = core::ParseLine(raw, &time);
      // Dovecot's own log (log_path) has no host field: it is imported with --host.
      std::string host = ev.host.empty() ? "mx" : std::string(ev.host);
      if (by_host[host].empty()) seen.push_back(host);
      by_host[host].emplace_back(ev.time_us, raw);
    }
    if (host_order.empty()) host_order = seen;
    ++imports_;
    for (const std::string& host : host_order) {
      // Each Import is a file of its own (a file is known by its fingerprint).
      auto records =
          store::FileLines(host, std::hash<std::string>()(host) + imports_, by_host[host]);
      auto stats = store_->Append(records);
      ASSERT_TRUE(stats.ok()) << stats.status();
    }
  }

  // The story of the trace of `queue_id`, as `maillens trace` tells it.
  TraceStory Tell(const std::string& queue_id) {
    auto trace = store_->GetTrace(queue_id);
    EXPECT_TRUE(trace.ok()) << trace.status();
    if (!trace.ok()) return {};
    trace_ = *trace;
    auto lines = store::TraceLines(store_.get(), trace_);
    EXPECT_TRUE(lines.ok()) << lines.status();
    if (!lines.ok()) return {};
    return TellTrace(trace_, *lines);
  }

  // The facts of hop `queue_id` of the last trace told, in words.
  std::vector<std::string> Facts(const TraceStory& story, const std::string& queue_id) {
    std::vector<std::string> out;
    for (const store::MessageInfo& m : trace_.messages) {
      if (m.queue_id != queue_id) continue;
      auto it = story.facts.find(m.id);
      if (it == story.facts.end()) continue;
      for (const HopFact& f : it->second) {
        out.push_back(std::string(HopFactKindName(f.kind)) + ": " + FactInWords(f));
      }
    }
    return out;
  }

  // The notice kind of the bounce link into hop `queue_id` ("" when none).
  std::string NoticeInto(const TraceStory& story, const std::string& queue_id) {
    for (const store::MessageInfo& m : trace_.messages) {
      if (m.queue_id != queue_id) continue;
      auto it = story.notice_kind.find(m.id);
      if (it != story.notice_kind.end()) return it->second;
    }
    return "";
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  store::Trace trace_;
  uint64_t imports_ = 0;
};

TEST(HumanDurationTest, SaysDurationsInTheUnitsAPersonUses) {
  EXPECT_EQ(HumanDuration(0), "0 s");
  EXPECT_EQ(HumanDuration(0.35), "0.35 s");
  EXPECT_EQ(HumanDuration(2.5), "2.5 s");
  EXPECT_EQ(HumanDuration(43), "43 s");
  EXPECT_EQ(HumanDuration(62), "1 min 2 s");
  EXPECT_EQ(HumanDuration(1982.12), "33 min");
  EXPECT_EQ(HumanDuration(2 * 3600 + 5 * 60), "2 h 5 min");
  EXPECT_EQ(HumanDuration(5 * 86400), "5 d");
  EXPECT_EQ(HumanDuration(3 * 86400 + 4 * 3600 + 100), "3 d 4 h");
}

// delays=a/b/c/d named as postconf(5) names them: a is the time before the queue manager,
// which includes the time spent in the deferred queue, not "before the queue".
TEST(DelayInWordsTest, NamesThePartsAsPostfixDocumentsThem) {
  EXPECT_EQ(DelayInWords("1982.12", "1982/0.13/0.02/0.05"),
            "33 min: 33 min before the queue manager (incl. time deferred) + 0.13 s in the queue "
            "manager + 0.02 s connection setup (DNS, HELO, TLS) + 0.05 s transmission");
  EXPECT_EQ(DelayInWords("0.5", ""), "0.5 s");
  EXPECT_EQ(DelayInWords("", ""), "");
}

TEST_F(TraceStoryTest, DeliveredToMailboxes) {
  Import(kDelivered);
  TraceStory story = Tell("8B109A8E0D7");
  EXPECT_EQ(story.verdict, "delivered to 3 mailboxes on mx");
  ASSERT_EQ(story.outcomes.size(), 3u);
  for (const RecipientOutcome& o : story.outcomes) {
    EXPECT_EQ(o.outcome, "delivered") << o.recipient;
    EXPECT_EQ(o.host, "mx") << o.recipient;
  }
}

// With mx's Dovecot log: the folders Dovecot saved to (Trace::mailbox). The virtual(8)
// delivery has no Dovecot step.
TEST_F(TraceStoryTest, DeliveredIntoTheFoldersDovecotNamed) {
  std::vector<std::string> lines = kDelivered;
  lines.insert(lines.end(), kDeliveredDovecot.begin(), kDeliveredDovecot.end());
  Import(lines);
  TraceStory story = Tell("8B109A8E0D7");
  EXPECT_EQ(story.verdict, "delivered to 3 mailboxes on mx (2 to INBOX)");
}

TEST_F(TraceStoryTest, DeliveredIntoTheMailboxDovecotNamed) {
  Import(kWarned);
  Import(kWarnedDovecot);
  TraceStory story = Tell("D1170A8E31C");
  EXPECT_EQ(story.verdict, "delivered to the mailbox INBOX on mx");
}

// The brief's own example: the verdict never says "delivered" for mail whose last hop in the
// store handed it on. With mx's log missing, dmz's "sent" is an acceptance by mx.example.test.
TEST_F(TraceStoryTest, LaterHopNotInTheStoreIsNotCalledDelivered) {
  std::vector<std::string> dmz_only;
  for (const std::string& line : kDelivered) {
    if (absl::StrContains(line, " dmz ")) dmz_only.push_back(line);
  }
  Import(dmz_only);
  TraceStory story = Tell("8B109A8E0D7");
  EXPECT_EQ(story.verdict,
            "3 accepted by mx.example.test (250 2.0.0), queued there as 98847A8E445 (no later "
            "hop in this trace)");
  EXPECT_THAT(story.verdict, Not(HasSubstr("delivered")));
}

TEST_F(TraceStoryTest, PartlyBouncedSaysWhereAndWhatBecameOfTheNotice) {
  Import(kPartlyBounced);
  TraceStory story = Tell("66D68A8E65E");
  EXPECT_EQ(story.verdict,
            "delivered to 3 mailboxes on mx; 1 bounced at mx.example.test (550 5.1.1), the "
            "non-delivery notice delivered to the sender");
  EXPECT_EQ(NoticeInto(story, "7C15EA8E66B"), "non-delivery");
}

// The notice's fate as far as the store shows it: without the stand-in internet's log, the
// server that accepted it; without the notice's own lines, only its queue ID.
TEST_F(TraceStoryTest, NoticeFollowedAsFarAsTheStoreGoes) {
  std::vector<std::string> without_mta, without_notice;
  for (const std::string& line : kPartlyBounced) {
    if (absl::StrContains(line, " mta ")) continue;
    without_mta.push_back(line);
    if (!absl::StrContains(line, "7C15EA8E66B: ")) without_notice.push_back(line);
  }
  Import(without_notice);
  EXPECT_EQ(Tell("66D68A8E65E").verdict,
            "delivered to 3 mailboxes on mx; 1 bounced at mx.example.test (550 5.1.1), the "
            "non-delivery notice queued as 7C15EA8E66B, not followed further");
  Import(without_mta);
  EXPECT_EQ(Tell("66D68A8E65E").verdict,
            "delivered to 3 mailboxes on mx; 1 bounced at mx.example.test (550 5.1.1), the "
            "non-delivery notice accepted by mta.partner.test for the sender");
}

TEST_F(TraceStoryTest, BouncedAtAForeignServerWithItsReplyCode) {
  Import(kBouncedAtStrict);
  TraceStory story = Tell("E58AEA8E46F");
  EXPECT_THAT(story.verdict, ::testing::StartsWith("1 bounced at mx.strict.test (554 5.7.1), "
                                                   "the non-delivery notice delivered to the "
                                                   "sender"));
}

// Every deferral with its reason and time, the delay notice told apart from the non-delivery
// notice, and the expiry.
TEST_F(TraceStoryTest, ExpiredAfterDeferralsWithADelayNoticeFirst) {
  Import(kExpired);
  TraceStory story = Tell("7D14BA8E455");
  EXPECT_EQ(story.verdict,
            "1 expired on dmz after 4 min 24 s in the queue (4.4.1 connect to "
            "down-mx.example.test[127.0.0.9]:2525: Connection refused), the non-delivery notice "
            "delivered to the sender");
  const std::string refused =
      "deferred user3@down.example.test 4.4.1: connect to "
      "down-mx.example.test[127.0.0.9]:2525: Connection refused";
  EXPECT_THAT(Facts(story, "7D14BA8E455"),
              ElementsAre("deferred: " + refused + " (0 s after arrival)",
                          "deferred: " + refused + " (54 s after arrival)",
                          "deferred: " + refused + " (1 min 2 s after arrival)",
                          "notice: delay notice to the sender, queued as 90541A8E209",
                          "deferred: " + refused + " (2 min 24 s after arrival)",
                          "deferred: " + refused + " (3 min 24 s after arrival)",
                          "deferred: " + refused + " (4 min 24 s after arrival)",
                          "expired: expired in the queue",
                          "notice: non-delivery notice to the sender, queued as 625A0A8E0EB"));
  EXPECT_EQ(NoticeInto(story, "90541A8E209"), "delay");
  EXPECT_EQ(NoticeInto(story, "625A0A8E0EB"), "non-delivery");
}

// The same message before its expiry (its lines up to 16:06:29, and the delay notice's): still
// in the queue, the last reason given; no word of delivery.
TEST_F(TraceStoryTest, StillDeferred) {
  std::vector<std::string> lines;
  for (const std::string& line : kExpired) {
    if (line < "Dec 07 16:07") lines.push_back(line);
  }
  Import(lines);
  TraceStory story = Tell("7D14BA8E455");
  EXPECT_EQ(story.verdict,
            "1 still deferred on dmz after 5 tries (4.4.1 connect to "
            "down-mx.example.test[127.0.0.9]:2525: Connection refused)");
  ASSERT_EQ(story.outcomes.size(), 1u);
  EXPECT_EQ(story.outcomes[0].outcome, "deferred");
}

// No lab host delivers through discard(8) or pipe(8); these lines follow their form as Postfix
// writes it (discard: relay=none, status=sent (NEXTHOP); pipe: relay=SERVICE). Neither is
// called delivered: the one dropped the mail, the other gave it to a command.
TEST_F(TraceStoryTest, DiscardTransportAndPipeAreNotCalledDelivered) {
  Import({
      "Dec 07 16:10:00 mx postfix/pickup[2001]: 4B2C1A8E001: uid=0 from=<root@mx.example.test>",
      "Dec 07 16:10:00 mx postfix/cleanup[2002]: 4B2C1A8E001: message-id=<p1@mx.example.test>",
      "Dec 07 16:10:00 mx postfix/qmgr[2003]: 4B2C1A8E001: from=<root@mx.example.test>, size=300, "
      "nrcpt=2 (queue active)",
      "Dec 07 16:10:00 mx postfix/discard[2004]: 4B2C1A8E001: to=<void@example.test>, relay=none, "
      "delay=0.02, delays=0.01/0/0/0, dsn=2.0.0, status=sent (example.test)",
      "Dec 07 16:10:00 mx postfix/pipe[2005]: 4B2C1A8E001: to=<ivan@example.test>, relay=dovecot, "
      "delay=0.05, delays=0.01/0/0/0.04, dsn=2.0.0, status=sent (delivered via dovecot service)",
      "Dec 07 16:10:00 mx postfix/qmgr[2003]: 4B2C1A8E001: removed",
  });
  TraceStory story = Tell("4B2C1A8E001");
  EXPECT_EQ(story.verdict,
            "1 handed to the dovecot command on mx (delivered via dovecot service); 1 discarded on "
            "mx by the discard transport (example.test)");
}

TEST_F(TraceStoryTest, HeldThenReleased) {
  Import(kHeldThenReleased);
  TraceStory story = Tell("26E0DA8E0DC");
  EXPECT_EQ(story.verdict,
            "held on dmz for 59 s (held for lab review), then released; delivered to 1 mailbox "
            "on mx");
  EXPECT_THAT(Facts(story, "26E0DA8E0DC"),
              ElementsAre("held: put on hold by a header check (HOLD Subject: lab 160301-19 hold "
                          "HOLDME invoice): held for lab review",
                          "released: released from hold: the queue manager took it up"));
}

// Before the release: the same lines up to the hold.
TEST_F(TraceStoryTest, HeldAndNotReleased) {
  Import({kHeldThenReleased.begin(), kHeldThenReleased.begin() + 3});
  TraceStory story = Tell("26E0DA8E0DC");
  EXPECT_EQ(story.verdict, "held on dmz (held for lab review), not released");
}

TEST_F(TraceStoryTest, DiscardedByAHeaderCheck) {
  Import(kDiscarded);
  TraceStory story = Tell("B14F4A8E31C");
  EXPECT_EQ(story.verdict, "1 discarded on dmz (silently dropped by lab policy)");
}

TEST_F(TraceStoryTest, HeaderCheckWarningIsAFactOfItsHop) {
  Import(kWarned);
  TraceStory story = Tell("D1170A8E31C");
  EXPECT_EQ(story.verdict, "delivered to 1 mailbox on mx");
  EXPECT_THAT(Facts(story, "D1170A8E31C"),
              ElementsAre("check: header check WARN (Subject: lab 160301-21 warn WARNME): lab "
                          "warning header seen"));
}

TEST_F(TraceStoryTest, DeletedByTheAdministrator) {
  Import(kDeleted);
  TraceStory story = Tell("1926CA8E61F");
  EXPECT_EQ(story.verdict,
            "1 deleted from the queue on dmz by the administrator, deferred until then (4.4.1 "
            "connect to down-mx.example.test[127.0.0.9]:2525: Connection refused)");
  EXPECT_THAT(Facts(story, "1926CA8E61F").back(),
              "deleted: deleted from the queue by the administrator (postsuper -d)");
}

// amavis said "Blocked SPAM" and answered Postfix "250 2.7.0 Ok, discarded": a 250 that is
// no delivery.
TEST_F(TraceStoryTest, BlockedByTheContentFilter) {
  Import(kBlockedSpam, "2025-01-02");
  TraceStory story = Tell("E027B3D7F6D");
  EXPECT_EQ(story.verdict,
            "1 blocked by the content filter on dmz (SPAM, score 27.168), discarded");
  EXPECT_THAT(Facts(story, "E027B3D7F6D"),
              ElementsAre("content_filter: content filter: Blocked SPAM, score 27.168"));
}

// An alias expanded to three maildirs on mx (the lab's all-staff@): three deliveries, each
// recipient it reached told, not one.
TEST_F(TraceStoryTest, AliasExpandedToSeveralMailboxes) {
  Import({
      "Dec 07 16:03:05 dmz postfix/smtpd[10748]: 0FDC6A8E274: client=unknown[127.0.0.14]",
      "Dec 07 16:03:05 dmz postfix/cleanup[10752]: 0FDC6A8E274: "
      "message-id=<20261207160305.010791@localhost>",
      "Dec 07 16:03:05 dmz postfix/qmgr[10457]: 0FDC6A8E274: from=<news@partner.test>, "
      "size=1070, nrcpt=1 (queue active)",
      "Dec 07 16:03:05 dmz postfix/relay/smtp[10754]: 0FDC6A8E274: to=<all-staff@example.test>, "
      "relay=mx.example.test[127.0.0.3]:25, delay=0.08, delays=0.02/0/0.05/0, dsn=2.0.0, "
      "status=sent (250 2.0.0 Ok: queued as 216D1A8E446)",
      "Dec 07 16:03:05 dmz postfix/qmgr[10457]: 0FDC6A8E274: removed",
      "Dec 07 16:03:05 mx postfix/smtpd[10789]: 216D1A8E446: client=dmz.example.test[127.0.0.2]",
      "Dec 07 16:03:05 mx postfix/cleanup[10783]: 216D1A8E446: "
      "message-id=<20261207160305.010791@localhost>",
      "Dec 07 16:03:05 mx postfix/qmgr[10546]: 216D1A8E446: from=<news@partner.test>, "
      "size=1426, nrcpt=3 (queue active)",
      "Dec 07 16:03:05 mx postfix/virtual[10804]: 216D1A8E446: to=<hr@staff.example.test>, "
      "orig_to=<all-staff@example.test>, relay=virtual, delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
      "status=sent (delivered to maildir)",
      "Dec 07 16:03:05 mx postfix/virtual[10804]: 216D1A8E446: to=<it@staff.example.test>, "
      "orig_to=<all-staff@example.test>, relay=virtual, delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
      "status=sent (delivered to maildir)",
      "Dec 07 16:03:05 mx postfix/virtual[10804]: 216D1A8E446: to=<ops@staff.example.test>, "
      "orig_to=<all-staff@example.test>, relay=virtual, delay=0.01, delays=0/0/0/0, dsn=2.0.0, "
      "status=sent (delivered to maildir)",
      "Dec 07 16:03:05 mx postfix/qmgr[10546]: 216D1A8E446: removed",
  });
  TraceStory story = Tell("0FDC6A8E274");
  EXPECT_EQ(story.verdict, "delivered to 3 mailboxes on mx");
}

TEST_F(TraceStoryTest, PassedByTheContentFilter) {
  Import(kPassedClean, "2025-01-02");
  TraceStory story = Tell("C4B953D7F71");
  EXPECT_EQ(story.verdict,
            "passed the content filter on dmz (CLEAN, score 2.204); 1 accepted by "
            "mx.example.test (250 2.0.0), queued there as 7C9DA1851373 (no later hop in this "
            "trace)");
}

// A message finally delivered: its earlier deferrals and their reason are in the verdict.
TEST_F(TraceStoryTest, AcceptedAfterDeferrals) {
  Import(kDeferredThenAccepted, "2025-01-02");
  TraceStory story = Tell("1DD4F3D817E");
  EXPECT_EQ(story.verdict,
            "passed the content filter on dmz (CLEAN, score 1.476); 1 accepted by "
            "mail.legacy.test (250 2.0.0) after 3 deferrals (450 4.7.1), queued there as "
            "j010xVNW373626 (no later hop in this trace)");
  EXPECT_EQ(Facts(story, "1DD4F3D817E").size(), 3u);
}

// The story does not depend on the order the hosts' logs were imported in.
TEST_F(TraceStoryTest, SameStoryWhicheverHostIsImportedFirst) {
  Import(kPartlyBounced, "2026-12-31", {"mx", "mta", "dmz"});
  TraceStory story = Tell("66D68A8E65E");
  EXPECT_EQ(story.verdict,
            "delivered to 3 mailboxes on mx; 1 bounced at mx.example.test (550 5.1.1), the "
            "non-delivery notice delivered to the sender");
}

}  // namespace
}  // namespace maillens::cli
