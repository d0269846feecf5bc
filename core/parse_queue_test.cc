#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/message_parser.h"
#include "core/message_test_util.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

Event Parse(std::string_view program, std::string_view message) {
  return ParseForTest(program, message);
}

std::string F(const Event& ev, Field f) { return std::string(ev.Get(f)); }

// ---- cleanup ------------------------------------------------------------------------------

TEST(ParseCleanupTest, MessageId) {
  Event ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id=<20240101.abc@mail.example.org>");
  EXPECT_EQ(ev.kind, Kind::kMessageId);
  EXPECT_EQ(ev.queue_id, "4BD2C1A0F3");
  EXPECT_EQ(F(ev, Field::kMessageId), "20240101.abc@mail.example.org");
}

TEST(ParseCleanupTest, MessageIdEmptyIsPresent) {
  Event ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id=<>");
  EXPECT_EQ(ev.kind, Kind::kMessageId);
  EXPECT_TRUE(ev.Has(Field::kMessageId));
  EXPECT_EQ(F(ev, Field::kMessageId), "");

  ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id=");
  EXPECT_EQ(ev.kind, Kind::kMessageId);
  EXPECT_TRUE(ev.Has(Field::kMessageId));
  EXPECT_EQ(F(ev, Field::kMessageId), "");
}

TEST(ParseCleanupTest, MessageIdWithoutBracketsAndOddForms) {
  Event ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id=2023-05-06 07:08:09.123");
  EXPECT_EQ(F(ev, Field::kMessageId), "2023-05-06 07:08:09.123");
  ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id=<a1@b2.example>+77AA12");
  EXPECT_EQ(F(ev, Field::kMessageId), "a1@b2.example");
  ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id=<cut.short@exa");
  EXPECT_EQ(F(ev, Field::kMessageId), "cut.short@exa");
  ev = Parse("postfix/cleanup", "4BD2C1A0F3: message-id==?UTF-8?B?PDE5?=? =?UTF-8?B?MTIy?=");
  EXPECT_EQ(F(ev, Field::kMessageId), "=?UTF-8?B?PDE5?=? =?UTF-8?B?MTIy?=");
}

TEST(ParseCleanupTest, ResentMessageId) {
  Event ev = Parse("postfix/cleanup", "3nB7Qw1kT9z4Rs2: resent-message-id=<r-55@relay.example>");
  EXPECT_EQ(ev.kind, Kind::kMessageId);
  EXPECT_EQ(ev.queue_id, "3nB7Qw1kT9z4Rs2");
  EXPECT_EQ(F(ev, Field::kResentMessageId), "r-55@relay.example");
  EXPECT_FALSE(ev.Has(Field::kMessageId));
}

TEST(ParseCleanupTest, HeaderReject) {
  Event ev = Parse("postfix/cleanup",
                   "A1B2C3D4E5: reject: header Subject: win big now from "
                   "spam.example.net[198.51.100.7]; from=<x@spam.example.net> "
                   "to=<bob@example.org> proto=ESMTP helo=<spam.example.net>: 5.7.1 No thanks");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(F(ev, Field::kAction), "reject");
  EXPECT_EQ(F(ev, Field::kStage), "header");
  EXPECT_EQ(F(ev, Field::kDetail), "Subject: win big now");
  EXPECT_EQ(F(ev, Field::kClient), "spam.example.net[198.51.100.7]");
  EXPECT_EQ(F(ev, Field::kClientHost), "spam.example.net");
  EXPECT_EQ(F(ev, Field::kClientIp), "198.51.100.7");
  EXPECT_EQ(F(ev, Field::kFrom), "x@spam.example.net");
  EXPECT_EQ(F(ev, Field::kTo), "bob@example.org");
  EXPECT_EQ(F(ev, Field::kProto), "ESMTP");
  EXPECT_EQ(F(ev, Field::kHelo), "spam.example.net");
  EXPECT_EQ(F(ev, Field::kDsn), "5.7.1");
  EXPECT_EQ(F(ev, Field::kReason), "No thanks");
}

TEST(ParseCleanupTest, WarningHeaderAfterQueueId) {
  Event ev = Parse("postfix/cleanup",
                   "C0FFEE1234: warning: header Subject: hello from there from "
                   "mx.example.com[203.0.113.9]; from=<> to=<ann@example.org> proto=SMTP "
                   "helo=<mx.example.com>");
  EXPECT_EQ(ev.kind, Kind::kCheckAction);
  EXPECT_EQ(F(ev, Field::kAction), "warning");
  EXPECT_EQ(F(ev, Field::kStage), "header");
  EXPECT_EQ(F(ev, Field::kDetail), "Subject: hello from there");
  EXPECT_EQ(F(ev, Field::kClientIp), "203.0.113.9");
  EXPECT_TRUE(ev.Has(Field::kFrom));
  EXPECT_EQ(F(ev, Field::kFrom), "");
  EXPECT_EQ(F(ev, Field::kTo), "ann@example.org");
  EXPECT_FALSE(ev.Has(Field::kReason));
}

TEST(ParseCleanupTest, WarningHeaderWithSeverityStripped) {
  Event ev = Parse("postfix/cleanup",
                   "warning: header X-Bad: 1 from local; from=<root@example.org> "
                   "to=<ops@example.org>");
  EXPECT_EQ(ev.severity, Severity::kWarning);
  EXPECT_EQ(ev.kind, Kind::kCheckAction);
  EXPECT_EQ(F(ev, Field::kAction), "warning");
  EXPECT_EQ(F(ev, Field::kClient), "local");
  EXPECT_FALSE(ev.Has(Field::kClientIp));
}

TEST(ParseCleanupTest, OtherHeaderActions) {
  Event ev = Parse("postfix/cleanup",
                   "D00D12345: redirect: header X-Spam-Flag: YES from a.example[192.0.2.1]; "
                   "from=<s@a.example> to=<r@b.example> proto=ESMTP helo=<a.example>: "
                   "quarantine@b.example");
  EXPECT_EQ(ev.kind, Kind::kCheckAction);
  EXPECT_EQ(F(ev, Field::kAction), "redirect");
  EXPECT_EQ(F(ev, Field::kReason), "quarantine@b.example");

  ev = Parse("postfix/cleanup",
             "D00D12345: prepend: header Received: from x (y [192.0.2.2]) by z from "
             "y.example[192.0.2.2]; from=<s@y.example> to=<r@b.example> proto=ESMTP "
             "helo=<y.example>: X-Seen: yes");
  EXPECT_EQ(F(ev, Field::kAction), "prepend");
  EXPECT_EQ(F(ev, Field::kDetail), "Received: from x (y [192.0.2.2]) by z");
  EXPECT_EQ(F(ev, Field::kClient), "y.example[192.0.2.2]");
  EXPECT_EQ(F(ev, Field::kReason), "X-Seen: yes");

  ev = Parse("postfix/cleanup",
             "D00D12345: replace: header MIME-Version: 1.0 from unknown[192.0.2.3]; "
             "from=<s@c.example> to=<r@b.example> proto=ESMTP helo=<c>: Mime-Version: 1.0");
  EXPECT_EQ(F(ev, Field::kAction), "replace");
  EXPECT_EQ(F(ev, Field::kClientHost), "unknown");
  EXPECT_EQ(F(ev, Field::kReason), "Mime-Version: 1.0");

  for (std::string_view action : {"hold", "discard", "info", "filter"}) {
    std::string msg = "D00D12345: " + std::string(action) +
                      ": body some text from local; from=<a@b.example> to=<c@d.example>";
    ev = Parse("postfix/cleanup", msg);
    EXPECT_EQ(ev.kind, Kind::kCheckAction) << action;
    EXPECT_EQ(F(ev, Field::kAction), action);
    EXPECT_EQ(F(ev, Field::kStage), "body");
    EXPECT_EQ(F(ev, Field::kTo), "c@d.example");
  }
}

TEST(ParseCleanupTest, MilterReject) {
  Event ev = Parse("postfix/cleanup",
                   "5E6F7A8B9C: milter-reject: END-OF-MESSAGE from out.example.com[192.0.2.50]: "
                   "5.7.1 Rejected by policy; from=<a@out.example.com> to=<b@example.org> "
                   "proto=ESMTP helo=<out.example.com>");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(F(ev, Field::kAction), "reject");
  EXPECT_EQ(F(ev, Field::kStage), "END-OF-MESSAGE");
  EXPECT_EQ(F(ev, Field::kClientHost), "out.example.com");
  EXPECT_EQ(F(ev, Field::kClientIp), "192.0.2.50");
  EXPECT_EQ(F(ev, Field::kDsn), "5.7.1");
  EXPECT_EQ(F(ev, Field::kReason), "Rejected by policy");
  EXPECT_EQ(F(ev, Field::kFrom), "a@out.example.com");
  EXPECT_EQ(F(ev, Field::kHelo), "out.example.com");

  ev = Parse("postfix/cleanup",
             "5E6F7A8B9C: milter-reject: END-OF-MESSAGE from h[192.0.2.5]: 451 4.7.1 Try "
             "later from here; from=<> to=<b@example.org> proto=ESMTP helo=<h>");
  EXPECT_EQ(F(ev, Field::kCode), "451");
  EXPECT_EQ(F(ev, Field::kDsn), "4.7.1");
  EXPECT_EQ(F(ev, Field::kReason), "Try later from here");
  EXPECT_EQ(F(ev, Field::kFrom), "");
}

TEST(ParseCleanupTest, MilterHoldDiscardAndHeaderActions) {
  Event ev = Parse("postfix/cleanup",
                   "5E6F7A8B9C: milter-hold: END-OF-MESSAGE from localhost[127.0.0.1]: milter "
                   "triggers HOLD action; from=<a@example.org> to=<b@example.org> proto=ESMTP "
                   "helo=<localhost>");
  EXPECT_EQ(ev.kind, Kind::kCheckAction);
  EXPECT_EQ(F(ev, Field::kAction), "hold");
  EXPECT_EQ(F(ev, Field::kReason), "milter triggers HOLD action");

  ev = Parse("postfix/cleanup",
             "5E6F7A8B9C: milter-discard: END-OF-MESSAGE from localhost[127.0.0.1]: milter "
             "triggers DISCARD action; from=<a@example.org> to=<b@example.org>");
  EXPECT_EQ(F(ev, Field::kAction), "discard");

  ev = Parse("postfix/cleanup",
             "5E6F7A8B9C: milter-header-redirect: header X-Spam: Yes, score=9 from "
             "h.example[192.0.2.9]; from=<a@h.example> to=<b@example.org> proto=ESMTP "
             "helo=<h.example>: trap@example.org");
  EXPECT_EQ(ev.kind, Kind::kCheckAction);
  EXPECT_EQ(F(ev, Field::kAction), "redirect");
  EXPECT_EQ(F(ev, Field::kStage), "header");
  EXPECT_EQ(F(ev, Field::kDetail), "X-Spam: Yes, score=9");
  EXPECT_EQ(F(ev, Field::kReason), "trap@example.org");

  ev = Parse("postfix/cleanup",
             "5E6F7A8B9C: milter-header-reject: header X-Bad: 1 from h.example[192.0.2.9]; "
             "from=<a@h.example> to=<b@example.org>: 5.7.1 Bad header");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(F(ev, Field::kDsn), "5.7.1");
}

TEST(ParseCleanupTest, MalformedActionsDoNotThrow) {
  // substr() past the end would throw; these cut the layout in odd places.
  EXPECT_EQ(Parse("postfix/cleanup", "A1B2C3D4E5: milter-reject: x; from=<a> to=<b>").kind,
            Kind::kUnparsed);
  EXPECT_EQ(Parse("postfix/cleanup", "A1B2C3D4E5: reject: x; from=<a> to=<b>").kind,
            Kind::kUnparsed);
  Event ev = Parse("postfix/cleanup", "A1B2C3D4E5: hold: header from local; from=<a>");
  EXPECT_EQ(ev.kind, Kind::kCheckAction);
  EXPECT_TRUE(ev.Has(Field::kDetail));
  EXPECT_EQ(F(ev, Field::kDetail), "");
  EXPECT_EQ(F(ev, Field::kClient), "local");
}

TEST(ParseCleanupTest, OtherLinesStayUnparsed) {
  EXPECT_EQ(Parse("postfix/cleanup", "Unsupported").kind, Kind::kUnparsed);
  EXPECT_EQ(Parse("postfix/cleanup", "A1B2C3D4E5: unknown: header x from local;").kind,
            Kind::kUnparsed);
  Event ev = Parse("postfix/cleanup", "warning: 9A8B7C6D5E: sender_canonical_maps lookup fail");
  EXPECT_EQ(ev.kind, Kind::kLogMessage);
  EXPECT_EQ(ev.queue_id, "9A8B7C6D5E");
}

// ---- pickup -------------------------------------------------------------------------------

TEST(ParsePickupTest, UidFrom) {
  Event ev = Parse("postfix/pickup", "7C3A9B2D10: uid=1001 from=<alice>");
  EXPECT_EQ(ev.kind, Kind::kPickup);
  EXPECT_EQ(F(ev, Field::kUid), "1001");
  EXPECT_EQ(F(ev, Field::kFrom), "alice");

  ev = Parse("postfix/pickup", "uid=0 from=<>");
  EXPECT_EQ(ev.kind, Kind::kPickup);
  EXPECT_TRUE(ev.Has(Field::kFrom));
  EXPECT_EQ(F(ev, Field::kFrom), "");

  ev = Parse("postfix/pickup", "7C3A9B2D10: uid=0 from=<root> orig_id=6B2A8C1D00");
  EXPECT_EQ(F(ev, Field::kOrigQueueId), "6B2A8C1D00");
}

// ---- qmgr ---------------------------------------------------------------------------------

TEST(ParseQmgrTest, Queued) {
  Event ev = Parse("postfix/qmgr",
                   "3kVq1Z2mFpz9Txy: from=<news@list.example>, size=48213, "
                   "nrcpt=3 (queue active)");
  EXPECT_EQ(ev.kind, Kind::kQueued);
  EXPECT_EQ(ev.queue_id_form, QueueIdForm::kLong);
  EXPECT_EQ(F(ev, Field::kFrom), "news@list.example");
  EXPECT_EQ(F(ev, Field::kSize), "48213");
  EXPECT_EQ(F(ev, Field::kNrcpt), "3");

  ev = Parse("postfix/qmgr", "9F8E7D6C5B: from=<>, size=901, nrcpt=1 (queue active) ");
  EXPECT_EQ(ev.kind, Kind::kQueued);
  EXPECT_TRUE(ev.Has(Field::kFrom));
  EXPECT_EQ(F(ev, Field::kFrom), "");

  ev = Parse("postfix/qmgr",
             "9F8E7D6C5B: from=admin@host.localdomain, size=77, nrcpt=1 "
             "(queue active)");
  EXPECT_EQ(F(ev, Field::kFrom), "admin@host.localdomain");
}

TEST(ParseQmgrTest, RemovedAndExpired) {
  Event ev = Parse("postfix/qmgr", "9F8E7D6C5B: removed");
  EXPECT_EQ(ev.kind, Kind::kRemoved);
  EXPECT_EQ(ev.queue_id, "9F8E7D6C5B");

  ev = Parse("postfix/qmgr",
             "9F8E7D6C5B: from=<ann@example.net>, status=expired, returned "
             "to sender");
  EXPECT_EQ(ev.kind, Kind::kExpired);
  EXPECT_EQ(F(ev, Field::kFrom), "ann@example.net");
  EXPECT_EQ(F(ev, Field::kStatus), "expired");
  EXPECT_EQ(F(ev, Field::kReason), "returned to sender");

  ev = Parse("postfix/qmgr", "9F8E7D6C5B: from=<>, status=force-expired, returned to sender");
  EXPECT_EQ(ev.kind, Kind::kExpired);
  EXPECT_EQ(F(ev, Field::kStatus), "force-expired");
  EXPECT_EQ(F(ev, Field::kFrom), "");
}

TEST(ParseQmgrTest, DeliveryLikeLine) {
  Event ev = Parse("postfix/qmgr",
                   "9F8E7D6C5B: to=<x@example.net>, relay=none, delay=4021, "
                   "delays=4020/1/0/0, dsn=4.4.1, status=deferred (delivery temporarily "
                   "suspended: connect to mx.example.net[192.0.2.8]:25: Connection refused)");
  EXPECT_EQ(ev.kind, Kind::kDelivery);
  EXPECT_EQ(F(ev, Field::kRelay), "none");
  EXPECT_FALSE(ev.Has(Field::kRelayHost));
  EXPECT_EQ(F(ev, Field::kStatus), "deferred");
  EXPECT_EQ(F(ev, Field::kReply),
            "delivery temporarily suspended: connect to mx.example.net[192.0.2.8]:25: "
            "Connection refused");
}

TEST(ParseQmgrTest, WarningsAreLogMessages) {
  Event ev = Parse("postfix/qmgr", "warning: please avoid flushing the whole queue");
  EXPECT_EQ(ev.kind, Kind::kLogMessage);
}

TEST(ParseQmgrTest, SkippedStillBeingDeliveredIsANote) {
  Event ev = Parse("postfix/qmgr", "9F8E7D6C5B: skipped, still being delivered");
  EXPECT_EQ(ev.kind, Kind::kDeliveryNote);
  EXPECT_EQ(ev.queue_id, "9F8E7D6C5B");
  EXPECT_EQ(ev.Get(Field::kDetail), "skipped");
}

// ---- delivery agents ----------------------------------------------------------------------

TEST(ParseDeliveryTest, SmtpSentWithNextHop) {
  Event ev = Parse("postfix/smtp",
                   "3nC4Dd5Gh6z7Ff8: to=<kim@partner.example>, orig_to=<sales@example.org>, "
                   "relay=mx2.partner.example[198.51.100.25]:25, conn_use=3, delay=0.62, "
                   "delays=0.31/0.02/0.17/0.12, dsn=2.0.0, status=sent (250 2.0.0 Ok: "
                   "queued as 4F1E2D3C4B)");
  EXPECT_EQ(ev.kind, Kind::kDelivery);
  EXPECT_EQ(ev.queue_id, "3nC4Dd5Gh6z7Ff8");
  EXPECT_EQ(F(ev, Field::kTo), "kim@partner.example");
  EXPECT_EQ(F(ev, Field::kOrigTo), "sales@example.org");
  EXPECT_EQ(F(ev, Field::kRelay), "mx2.partner.example[198.51.100.25]:25");
  EXPECT_EQ(F(ev, Field::kRelayHost), "mx2.partner.example");
  EXPECT_EQ(F(ev, Field::kRelayIp), "198.51.100.25");
  EXPECT_EQ(F(ev, Field::kRelayPort), "25");
  EXPECT_EQ(F(ev, Field::kDelay), "0.62");
  EXPECT_EQ(F(ev, Field::kDelays), "0.31/0.02/0.17/0.12");
  EXPECT_EQ(F(ev, Field::kDsn), "2.0.0");
  EXPECT_EQ(F(ev, Field::kStatus), "sent");
  EXPECT_EQ(F(ev, Field::kReply), "250 2.0.0 Ok: queued as 4F1E2D3C4B");
  EXPECT_EQ(F(ev, Field::kCode), "250");
  EXPECT_EQ(ev.queued_as, "4F1E2D3C4B");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kPostfix);
}

TEST(ParseDeliveryTest, ContentFilterHop) {
  Event ev = Parse("postfix/smtp",
                   "AB12CD34EF: to=<u@example.org>, relay=127.0.0.1[127.0.0.1]:10024, "
                   "delay=1.1, delays=0.1/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 from "
                   "MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5A6B7C8D9E)");
  EXPECT_EQ(ev.queued_as, "5A6B7C8D9E");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kContentFilter);
  EXPECT_EQ(F(ev, Field::kRelayPort), "10024");
}

TEST(ParseDeliveryTest, BouncedWithNestedParens) {
  Event ev = Parse("postfix/smtp",
                   "AB12CD34EF: to=<nobody@far.example>, relay=mx.far.example[203.0.113.4]:25, "
                   "delay=2.5, delays=0.1/0/0.4/2, dsn=5.1.1, status=bounced (host "
                   "mx.far.example[203.0.113.4] said: 550 5.1.1 <nobody@far.example>: no such "
                   "user (x) (in reply to RCPT TO command))");
  EXPECT_EQ(ev.kind, Kind::kDelivery);
  EXPECT_EQ(F(ev, Field::kStatus), "bounced");
  EXPECT_EQ(F(ev, Field::kReply),
            "host mx.far.example[203.0.113.4] said: 550 5.1.1 <nobody@far.example>: no such "
            "user (x) (in reply to RCPT TO command)");
  EXPECT_EQ(F(ev, Field::kCode), "550");
  EXPECT_EQ(F(ev, Field::kStage), "RCPT TO");
  EXPECT_EQ(F(ev, Field::kDsn), "5.1.1");  // from dsn=, not from the reply
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kNone);
}

TEST(ParseDeliveryTest, DeferredAndTruncated) {
  Event ev = Parse("postfix/smtp",
                   "AB12CD34EF: to=<q@slow.example>, relay=none, delay=300, "
                   "delays=0.1/0/300/0, dsn=4.4.1, status=deferred (connect to "
                   "slow.example[192.0.2.77]:25: Connection timed out)");
  EXPECT_EQ(F(ev, Field::kStatus), "deferred");
  EXPECT_EQ(F(ev, Field::kReply), "connect to slow.example[192.0.2.77]:25: Connection timed out");

  ev = Parse("postfix/smtp", "AB12CD34EF: to=<q@slo");
  EXPECT_EQ(ev.kind, Kind::kDelivery);
  EXPECT_EQ(F(ev, Field::kTo), "q@slo");
  EXPECT_FALSE(ev.Has(Field::kStatus));

  ev = Parse("postfix/smtp",
             "AB12CD34EF: to=<q@slow.example>, relay=none, delay=1, dsn=4.4.1, "
             "status=deferred (host x[192.0.2.1] said: 451 try (in reply to");
  EXPECT_EQ(F(ev, Field::kReply), "host x[192.0.2.1] said: 451 try (in reply to");
}

TEST(ParseDeliveryTest, QuotedAndUnbracketedRecipients) {
  Event ev = Parse("postfix/smtp",
                   "AB12CD34EF: to=<\"first, last\"@example.net>, relay=m[192.0.2.2]:25, "
                   "delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (250 ok)");
  EXPECT_EQ(F(ev, Field::kTo), "\"first, last\"@example.net");
  EXPECT_EQ(F(ev, Field::kRelayHost), "m");

  ev = Parse("postfix/local",
             "AB12CD34EF: to=carol@host.example, orig_to=postmaster@localhost, relay=local, "
             "delay=0.05, delays=0.01/0/0/0.04, dsn=2.0.0, status=sent (delivered to command: "
             "procmail -a \"$EXTENSION\")");
  EXPECT_EQ(F(ev, Field::kTo), "carol@host.example");
  EXPECT_EQ(F(ev, Field::kOrigTo), "postmaster@localhost");
  EXPECT_EQ(F(ev, Field::kRelay), "local");
  EXPECT_EQ(F(ev, Field::kRelayHost), "local");
  EXPECT_EQ(F(ev, Field::kReply), "delivered to command: procmail -a \"$EXTENSION\"");
}

TEST(ParseDeliveryTest, LocalForwardedAndMailbox) {
  Event ev = Parse("postfix/local",
                   "3pQ1Rr2Ss3z4Tt5: to=<root@h.example>, relay=local, delay=0.03, "
                   "delays=0.01/0.01/0/0.01, dsn=2.0.0, status=sent (forwarded as "
                   "3pQ1Rr4Vv5z4Tt6)");
  EXPECT_EQ(F(ev, Field::kStatus), "sent");
  EXPECT_EQ(ev.queued_as, "3pQ1Rr4Vv5z4Tt6");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kForwarded);

  ev = Parse("postfix/local",
             "1A2B3C4D5E: to=<op@h.example>, orig_to=<op>, relay=local, delay=0.01, "
             "delays=0.01/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)");
  EXPECT_EQ(F(ev, Field::kReply), "delivered to mailbox");
  EXPECT_EQ(F(ev, Field::kOrigTo), "op");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kNone);
}

TEST(ParseDeliveryTest, VirtualPipeErrorDiscardLmtp) {
  Event ev = Parse("postfix/virtual",
                   "1A2B3C4D5E: to=<u@v.example>, relay=virtual, delay=0.2, "
                   "delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (delivered to maildir)");
  EXPECT_EQ(ev.kind, Kind::kDelivery);
  EXPECT_EQ(F(ev, Field::kReply), "delivered to maildir");

  ev = Parse("postfix/pipe",
             "1A2B3C4D5E: to=<u@v.example>, relay=dovecot, delay=0.2, delays=0.1/0/0/0.1, "
             "dsn=5.4.6, status=bounced (mail forwarding loop for u@v.example)");
  EXPECT_EQ(F(ev, Field::kRelayHost), "dovecot");
  EXPECT_EQ(F(ev, Field::kReply), "mail forwarding loop for u@v.example");

  ev = Parse("postfix/error",
             "1A2B3C4D5E: to=<u@v.example>, relay=none, delay=0.01, delays=0.01/0/0/0, "
             "dsn=5.1.1, status=undeliverable-but-not-cached (User unknown in virtual alias "
             "table)");
  EXPECT_EQ(F(ev, Field::kStatus), "undeliverable-but-not-cached");

  ev = Parse("postfix/discard",
             "1A2B3C4D5E: to=<u@v.example>, relay=none, delay=0.05, delays=0.05/0/0/0, "
             "dsn=2.0.0, status=sent (v.example)");
  EXPECT_EQ(F(ev, Field::kReply), "v.example");

  ev = Parse("postfix/lmtp",
             "1A2B3C4D5E: to=<u@v.example>, relay=box.v.example[/var/run/dovecot/lmtp], "
             "delay=0.06, delays=0.02/0.02/0.01/0.01, dsn=2.0.0, status=sent (250 2.0.0 "
             "<u@v.example> Qw3rTy+1/aBcDeFgHiJkLm Saved)");
  EXPECT_EQ(F(ev, Field::kRelayHost), "box.v.example");
  EXPECT_EQ(F(ev, Field::kRelayIp), "/var/run/dovecot/lmtp");
  EXPECT_FALSE(ev.Has(Field::kRelayPort));
  EXPECT_EQ(ev.queued_as, "Qw3rTy+1/aBcDeFgHiJkLm");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kOther);

  ev = Parse("postfix/lmtp",
             "1A2B3C4D5E: to=<u@v.example>, relay=box[private/dovecot-lmtp], delay=0.06, "
             "delays=0.02/0.02/0.01/0.01, dsn=2.0.0, status=sent (250 ok)");
  EXPECT_EQ(F(ev, Field::kRelayIp), "private/dovecot-lmtp");
}

TEST(ParseDeliveryTest, ProgramWithInstanceName) {
  Event ev = Parse("postfix-out/amavis/smtp",
                   "1A2B3C4D5E: to=<u@v.example>, relay=127.0.0.1[127.0.0.1]:10024, delay=1, "
                   "delays=1/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 from "
                   "MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 3qR5sT6wV7z8Ww9)");
  EXPECT_EQ(ev.kind, Kind::kDelivery);
  EXPECT_EQ(ev.queued_as, "3qR5sT6wV7z8Ww9");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kContentFilter);
}

TEST(ParseDeliveryTest, TlsEstablished) {
  Event ev = Parse("postfix/smtp",
                   "Verified TLS connection established to mx.peer.example[2001:db8::25]:25: "
                   "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange "
                   "X25519 server-signature ECDSA (P-256) server-digest SHA256");
  EXPECT_EQ(ev.kind, Kind::kTlsEstablished);
  EXPECT_EQ(F(ev, Field::kDetail), "Verified");
  EXPECT_EQ(F(ev, Field::kRelayHost), "mx.peer.example");
  EXPECT_EQ(F(ev, Field::kRelayIp), "2001:db8::25");
  EXPECT_EQ(F(ev, Field::kRelayPort), "25");
  EXPECT_EQ(F(ev, Field::kTlsProtocol), "TLSv1.3");
  EXPECT_EQ(F(ev, Field::kTlsCipher), "TLS_AES_256_GCM_SHA384");

  ev = Parse("postfix/smtp",
             "3nC4Dd5Gh6z7Ff8: Untrusted TLS connection established to m.example[192.0.2.4]:587: "
             "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)");
  EXPECT_EQ(ev.kind, Kind::kTlsEstablished);
  EXPECT_EQ(F(ev, Field::kDetail), "Untrusted");
  EXPECT_EQ(F(ev, Field::kRelayPort), "587");
}

TEST(ParseDeliveryTest, Notes) {
  Event ev = Parse("postfix/smtp",
                   "AB12CD34EF: host mx.grey.example[192.0.2.61] said: 450 4.7.1 <a@grey.example>: "
                   "Recipient address rejected: Greylisted (in reply to RCPT TO command)");
  EXPECT_EQ(ev.kind, Kind::kDeliveryNote);
  EXPECT_EQ(F(ev, Field::kDetail), "host_said");
  EXPECT_EQ(F(ev, Field::kRelayHost), "mx.grey.example");
  EXPECT_EQ(F(ev, Field::kRelayIp), "192.0.2.61");
  EXPECT_EQ(F(ev, Field::kReply),
            "450 4.7.1 <a@grey.example>: Recipient address rejected: Greylisted");
  EXPECT_EQ(F(ev, Field::kStage), "RCPT TO");
  EXPECT_EQ(F(ev, Field::kCode), "450");
  EXPECT_EQ(F(ev, Field::kDsn), "4.7.1");

  ev = Parse("postfix/smtp",
             "AB12CD34EF: host mx.x.example[192.0.2.62] refused to talk to me: 554 go away");
  EXPECT_EQ(F(ev, Field::kDetail), "refused");
  EXPECT_EQ(F(ev, Field::kReply), "554 go away");

  ev = Parse("postfix/smtp",
             "AB12CD34EF: lost connection with mx.y.example[192.0.2.63] while sending RCPT TO");
  EXPECT_EQ(F(ev, Field::kDetail), "lost_connection");
  EXPECT_EQ(F(ev, Field::kRelayHost), "mx.y.example");
  EXPECT_EQ(F(ev, Field::kReason), "sending RCPT TO");

  ev = Parse("postfix/smtp", "connect to mx.z.example[192.0.2.64]:25: Connection refused");
  EXPECT_EQ(ev.kind, Kind::kDeliveryNote);
  EXPECT_EQ(F(ev, Field::kDetail), "connect_failed");
  EXPECT_EQ(F(ev, Field::kRelayPort), "25");
  EXPECT_EQ(F(ev, Field::kReason), "Connection refused");

  ev = Parse("postfix/smtp",
             "AB12CD34EF: conversation with mx.w.example[192.0.2.65] timed out while receiving "
             "the initial server greeting");
  EXPECT_EQ(F(ev, Field::kDetail), "timeout");
  EXPECT_EQ(F(ev, Field::kReason), "receiving the initial server greeting");

  ev = Parse("postfix/smtp",
             "AB12CD34EF: enabling PIX workarounds: disable_esmtp delay_dotcrlf for "
             "old.example[192.0.2.66]:25");
  EXPECT_EQ(F(ev, Field::kDetail), "pix_workarounds");
  EXPECT_EQ(F(ev, Field::kReason), "disable_esmtp delay_dotcrlf");
  EXPECT_EQ(F(ev, Field::kRelayIp), "192.0.2.66");

  ev = Parse("postfix/smtp", "AB12CD34EF: discarding EHLO keywords: CHUNKING SMTPUTF8");
  EXPECT_EQ(F(ev, Field::kDetail), "ehlo_keywords");
  EXPECT_EQ(F(ev, Field::kReason), "CHUNKING SMTPUTF8");

  ev = Parse("postfix/smtp",
             "certificate verification failed for mx.c.example[192.0.2.67]:25: untrusted "
             "issuer /CN=Example CA");
  EXPECT_EQ(F(ev, Field::kDetail), "cert_failed");
  EXPECT_EQ(F(ev, Field::kRelayHost), "mx.c.example");
  EXPECT_EQ(F(ev, Field::kReason), "untrusted issuer /CN=Example CA");

  ev = Parse("postfix/smtp", "SSL_connect error to mx.d.example[192.0.2.68]:25: -1");
  EXPECT_EQ(F(ev, Field::kDetail), "ssl_error");
  EXPECT_EQ(F(ev, Field::kReason), "-1");

  ev = Parse("postfix/smtp",
             "AB12CD34EF: SASL authentication failed; server smarthost.example[192.0.2.69] "
             "said: 535 5.7.8 Error: authentication failed");
  EXPECT_EQ(F(ev, Field::kDetail), "sasl_failed");
  EXPECT_EQ(F(ev, Field::kReply), "535 5.7.8 Error: authentication failed");

  ev = Parse("postfix/smtp", "AB12CD34EF: Cannot start TLS: handshake failure");
  EXPECT_EQ(F(ev, Field::kDetail), "tls_failed");
  EXPECT_EQ(F(ev, Field::kReason), "handshake failure");
}

TEST(ParseDeliveryTest, WarningsAreNotNotes) {
  Event ev = Parse("postfix/smtp", "warning: TLS library problem: error:0A000102:SSL routines");
  EXPECT_EQ(ev.kind, Kind::kLogMessage);
  EXPECT_EQ(Parse("postfix/smtp", "Unsupported").kind, Kind::kUnparsed);
  EXPECT_EQ(Parse("postfix/smtp", "AB12CD34EF: host without brackets said: 550 x").kind,
            Kind::kUnparsed);
}

// ---- bounce / postsuper / master ----------------------------------------------------------

TEST(ParseBounceTest, Notifications) {
  Event ev = Parse("postfix/bounce", "5C4B3A2918: sender non-delivery notification: 8D7E6F5A4B");
  EXPECT_EQ(ev.kind, Kind::kNotification);
  EXPECT_EQ(ev.queue_id, "5C4B3A2918");
  EXPECT_EQ(F(ev, Field::kNoticeQueueId), "8D7E6F5A4B");
  EXPECT_EQ(F(ev, Field::kOrigQueueId), "5C4B3A2918");
  EXPECT_EQ(F(ev, Field::kDetail), "non-delivery");
  EXPECT_EQ(F(ev, Field::kAction), "sender");

  ev = Parse("postfix/defer", "5C4B3A2918: sender delay notification: 8D7E6F5A4C");
  EXPECT_EQ(F(ev, Field::kDetail), "delay");
  ev = Parse("postfix/trace", "5C4B3A2918: sender delivery status notification: 8D7E6F5A4D");
  EXPECT_EQ(F(ev, Field::kDetail), "delivery status");
  ev = Parse("postfix/bounce", "5C4B3A2918: postmaster non-delivery notification: 8D7E6F5A4E");
  EXPECT_EQ(F(ev, Field::kAction), "postmaster");

  ev = Parse("postfix/bounce", "sender non-delivery notification: 3rS4tW5vW6z7Xy8");
  EXPECT_EQ(ev.kind, Kind::kNotification);
  EXPECT_FALSE(ev.Has(Field::kOrigQueueId));
  EXPECT_EQ(F(ev, Field::kNoticeQueueId), "3rS4tW5vW6z7Xy8");

  EXPECT_EQ(Parse("postfix/bounce", "fatal: append file defer 5C4B3A2918: No space").kind,
            Kind::kLogMessage);
  EXPECT_EQ(Parse("postfix/bounce", "5C4B3A2918: sender non-delivery notification: x").kind,
            Kind::kUnparsed);
}

TEST(ParsePostsuperTest, PerMessageAndSummaries) {
  for (std::string_view what : {"removed", "placed on hold", "released from hold", "requeued"}) {
    std::string msg = "6A5B4C3D2E: " + std::string(what);
    Event ev = Parse("postfix/postsuper", msg);
    EXPECT_EQ(ev.kind, Kind::kPostsuper) << what;
    EXPECT_EQ(F(ev, Field::kDetail), what);
    EXPECT_EQ(ev.queue_id, "6A5B4C3D2E");
  }
  Event ev = Parse("postfix/postsuper", "Deleted: 42 messages");
  EXPECT_EQ(ev.kind, Kind::kPostsuper);
  EXPECT_EQ(F(ev, Field::kDetail), "Deleted");
  EXPECT_EQ(F(ev, Field::kReason), "42");
  ev = Parse("postfix/postsuper", "Requeued: 1 message");
  EXPECT_EQ(F(ev, Field::kDetail), "Requeued");
  EXPECT_EQ(F(ev, Field::kReason), "1");
  ev = Parse("postfix/postsuper", "Placed on hold: 7 messages");
  EXPECT_EQ(F(ev, Field::kDetail), "Placed on hold");
  ev = Parse("postfix/postsuper", "Released from hold: 3 messages");
  EXPECT_EQ(F(ev, Field::kDetail), "Released from hold");
  EXPECT_EQ(Parse("postfix/postsuper", "Deleted: many messages").kind, Kind::kUnparsed);
}

TEST(ParseMasterTest, Lifecycle) {
  Event ev = Parse("postfix/master", "daemon started -- version 3.8.4, configuration /etc/pf");
  EXPECT_EQ(ev.kind, Kind::kMaster);
  EXPECT_EQ(F(ev, Field::kDetail), "start");
  EXPECT_EQ(F(ev, Field::kReason), "3.8.4");
  ev = Parse("postfix/master", "reload -- version 3.8.4, configuration /etc/pf");
  EXPECT_EQ(F(ev, Field::kDetail), "reload");
  ev = Parse("postfix/master", "terminating on signal 15");
  EXPECT_EQ(F(ev, Field::kDetail), "stop");
  EXPECT_EQ(F(ev, Field::kReason), "15");
  ev = Parse("postfix/postfix-script", "starting the Postfix mail system");
  EXPECT_EQ(F(ev, Field::kDetail), "start");
  ev = Parse("postfix/postfix-script", "stopping the Postfix mail system");
  EXPECT_EQ(F(ev, Field::kDetail), "stop");
  ev = Parse("postfix/postfix-script", "refreshing the Postfix mail system");
  EXPECT_EQ(F(ev, Field::kDetail), "reload");
  ev = Parse("postfix/master", "warning: process /usr/lib/postfix/smtpd pid 9 killed by signal 9");
  EXPECT_EQ(ev.kind, Kind::kLogMessage);
}

// ---- robustness ---------------------------------------------------------------------------

TEST(ParseQueueRobustnessTest, CutAndMutatedExamplesAreSafe) {
  // Cut each example at every length (ASan catches any read past the end of the view's
  // backing copy, which holds exactly the cut bytes).
  const std::vector<std::pair<std::string_view, std::string_view>> examples = {
      {"postfix/smtp",
       "AB12CD34EF: to=<a@b.example>, orig_to=<c>, relay=h[192.0.2.1]:25, delay=1, "
       "delays=1/0/0/0, dsn=5.1.1, status=bounced (host h[192.0.2.1] said: 550 5.1.1 x (in "
       "reply to RCPT TO command))"},
      {"postfix/smtp", "host h[192.0.2.1] said: 450 4.7.1 x (in reply to RCPT TO command)"},
      {"postfix/smtp",
       "Trusted TLS connection established to h[192.0.2.1]:25: TLSv1.2 with "
       "cipher X (1/1 bits)"},
      {"postfix/smtp", "enabling PIX workarounds: a b for h[192.0.2.1]:25"},
      {"postfix/cleanup",
       "AB12CD34EF: milter-reject: END-OF-MESSAGE from h[192.0.2.1]: 550 "
       "5.7.1 x; from=<a> to=<b> proto=ESMTP helo=<h>"},
      {"postfix/cleanup",
       "AB12CD34EF: reject: header S: x from h[192.0.2.1]; from=<a> to=<b> "
       "proto=ESMTP helo=<h>: 5.7.1 y"},
      {"postfix/cleanup", "AB12CD34EF: message-id=<x@y>"},
      {"postfix/qmgr", "AB12CD34EF: from=<a>, size=1, nrcpt=1 (queue active)"},
      {"postfix/bounce", "AB12CD34EF: sender non-delivery notification: CD34EF5678"},
      {"postfix/postsuper", "Deleted: 3 messages"},
      {"postfix/master", "daemon started -- version 3.8.4, configuration /etc/postfix"},
      {"postfix/pickup", "AB12CD34EF: uid=0 from=<root>"},
      {"dovecot", "lmtp(u@x)<1><Abc123>: msgid=<m@x>: saved mail to INBOX"},
      {"dovecot", "imap-login: Login: user=<u>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2"},
      {"dovecot", "auth-worker(1): pam(u,192.0.2.1): unknown user"},
      {"amavis",
       "(1-1) Passed CLEAN {RelayedInbound}, [192.0.2.1]:1 [192.0.2.1] <a> -> <b>, "
       "Queue-ID: AB12CD34EF, Message-ID: <m>, size: 9, queued_as: CD34EF5678, 1 ms"},
  };
  for (const auto& [program, message] : examples) {
    for (size_t n = 0; n <= message.size(); ++n) {
      std::vector<char> bytes(message.begin(), message.begin() + n);
      Event ev = Parse(program, std::string_view(bytes.data(), bytes.size()));
      (void)ev;
    }
  }
  // And with bytes overwritten by the characters the parsers look for (plus NUL and 0xff),
  // from a fixed-seed generator so a failure reproduces.
  constexpr char kNasty[] = {'<', '>', '[', ']', '(', ')', ':', ' ', ',', ';', '=', '\0', '\xff'};
  uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  for (const auto& [program, message] : examples) {
    for (int round = 0; round < 2000; ++round) {
      std::vector<char> bytes(message.begin(), message.end());
      for (int k = 0; k < 3 && !bytes.empty(); ++k) {
        bytes[next() % bytes.size()] = kNasty[next() % sizeof(kNasty)];
      }
      bytes.resize(next() % (bytes.size() + 1));
      Event ev = Parse(program, std::string_view(bytes.data(), bytes.size()));
      // A field either lies inside the line or is one of the parsers' constant tags
      // (detail=host_said, action=passdb, ...), which lie wholly outside it.
      const char* begin = bytes.data();
      const char* end = bytes.data() + bytes.size();
      for (int i = 0; i < kFieldCount; ++i) {
        std::string_view v = ev.Get(static_cast<Field>(i));
        if (v.empty()) continue;
        bool inside = v.data() >= begin && v.data() + v.size() <= end;
        bool outside = v.data() + v.size() <= begin || v.data() >= end;
        EXPECT_TRUE(inside || outside) << FieldName(static_cast<Field>(i));
      }
      for (std::string_view v : {ev.queue_id, ev.queued_as}) {
        if (v.empty()) continue;
        EXPECT_TRUE(v.data() >= begin && v.data() + v.size() <= end);
      }
    }
  }
}

// ---- the real corpus ----------------------------------------------------------------------

// A tiny header splitter for the corpus test only (the real one is core/syslog_header): the
// program is the first token after the first that ends in "]:", ":" or "]".
bool SplitHeader(std::string_view line, std::string_view* program, std::string_view* message) {
  size_t pos = 0;
  for (int index = 0; index < 8 && pos < line.size(); ++index) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    std::string_view token = line.substr(pos, end - pos);
    if (index > 0 && !token.empty() && (token.back() == ':' || token.back() == ']')) {
      if (token.back() == ':') token.remove_suffix(1);
      size_t bracket = token.find('[');
      if (bracket != std::string_view::npos && token.back() == ']')
        token = token.substr(0, bracket);
      *program = token;
      *message = line.substr(end < line.size() ? end + 1 : line.size());
      return true;
    }
    pos = end;
  }
  return false;
}

bool IsQueueFamilyDaemon(std::string_view d) {
  for (std::string_view name : {"cleanup", "pickup", "qmgr", "nqmgr", "smtp", "lmtp", "local",
                                "virtual", "pipe", "error", "discard", "retry", "bounce", "defer",
                                "trace", "postsuper", "master", "postfix-script", "postfix"}) {
    if (d == name) return true;
  }
  return false;
}

struct Counts {
  int typed = 0;
  int log_message = 0;
  int unparsed = 0;
};

TEST(ParseQueueCorpusTest, RealLinesReachTypedKinds) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  if (shared == nullptr) GTEST_FAIL() << "MAILLENS_SHARED_DIR not set";
  std::string path = std::string(shared) + "/corpus/all_lines.txt";
  std::ifstream file(path, std::ios::binary);
  ASSERT_TRUE(file.good()) << path;
  std::stringstream buffer;
  buffer << file.rdbuf();
  const std::string corpus = buffer.str();

  std::map<std::string, Counts> per_daemon;
  std::vector<std::string> unparsed_examples;
  std::map<Kind, int> per_kind;
  std::string_view rest = corpus;
  int lines = 0;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++lines;
    std::string_view program;
    std::string_view message;
    if (!SplitHeader(line, &program, &message)) continue;
    std::string key;
    size_t slash = program.rfind('/');
    std::string_view daemon = slash == std::string_view::npos ? program : program.substr(slash + 1);
    if (program.substr(0, 7) == "postfix" && IsQueueFamilyDaemon(daemon)) {
      key = "postfix/" + std::string(daemon);
    } else if (program.substr(0, 7) == "dovecot" || program.substr(0, 6) == "amavis") {
      key = std::string(program);
    } else {
      continue;
    }
    Event ev;
    ev.program = program;
    ev.daemon = daemon;
    ev.message = message;
    ParseMessage(&ev);
    Counts& c = per_daemon[key];
    ++per_kind[ev.kind];
    if (ev.kind == Kind::kUnparsed) {
      ++c.unparsed;
      if (unparsed_examples.size() < 30) {
        unparsed_examples.push_back(key + " | " + std::string(message.substr(0, 160)));
      }
    } else if (ev.kind == Kind::kLogMessage) {
      ++c.log_message;
    } else {
      ++c.typed;
    }
  }
  std::printf("%d corpus lines\n%-26s %7s %7s %7s\n", lines, "daemon", "typed", "logmsg",
              "unparsed");
  Counts total;
  for (const auto& [key, c] : per_daemon) {
    std::printf("%-26s %7d %7d %7d\n", key.c_str(), c.typed, c.log_message, c.unparsed);
    total.typed += c.typed;
    total.log_message += c.log_message;
    total.unparsed += c.unparsed;
  }
  std::printf("%-26s %7d %7d %7d\n", "TOTAL", total.typed, total.log_message, total.unparsed);
  for (const auto& [kind, n] : per_kind) {
    std::printf("  %-20s %7d\n", std::string(KindName(kind)).c_str(), n);
  }
  std::printf("first unparsed:\n");
  for (const std::string& s : unparsed_examples) std::printf("  %s\n", s.c_str());

  // Floors from the real numbers (see the report printed above); raise them as coverage grows.
  EXPECT_GE(per_daemon["postfix/qmgr"].typed, 1660);
  EXPECT_GE(per_daemon["postfix/cleanup"].typed, 880);
  EXPECT_GE(per_daemon["postfix/smtp"].typed, 710);
  EXPECT_GE(per_daemon["postfix/lmtp"].typed, 158);
  EXPECT_GE(per_daemon["postfix/pipe"].typed, 179);
  EXPECT_GE(per_daemon["postfix/local"].typed, 7);
  EXPECT_GE(per_daemon["postfix/bounce"].typed, 7);
  EXPECT_GE(per_daemon["postfix/pickup"].typed, 11);
  EXPECT_GE(per_daemon["amavis"].typed, 345);
  EXPECT_GE(per_kind[Kind::kDovecotDelivery], 150);
  EXPECT_GE(per_kind[Kind::kDovecotAuth], 1000);
  EXPECT_LE(total.unparsed, 2400);
}

}  // namespace
}  // namespace maillens::core
