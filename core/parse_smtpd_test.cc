// Tests for the smtpd family parsers (core/parse_smtpd.cc). Unit tests use lines written here
// in Postfix's formats; CorpusTest runs every smtpd/postscreen/dnsblog/anvil/tlsproxy/scache/
// verify line of the shared corpus through ParseMessage.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
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

Event Smtpd(std::string_view message) { return Parse("postfix/smtpd", message); }
Event Postscreen(std::string_view message) { return Parse("postfix/postscreen", message); }

// ---- smtpd: sessions ----

TEST(SmtpdTest, Connect) {
  Event ev = Smtpd("connect from mx3.example.net[198.51.100.23]");
  EXPECT_EQ(ev.kind, Kind::kConnect);
  EXPECT_EQ(ev.Get(Field::kClient), "mx3.example.net[198.51.100.23]");
  EXPECT_EQ(ev.Get(Field::kClientHost), "mx3.example.net");
  EXPECT_EQ(ev.Get(Field::kClientIp), "198.51.100.23");
  EXPECT_FALSE(ev.Has(Field::kClientPort));
}

TEST(SmtpdTest, ConnectWithPortAndIpv6) {
  Event ev = Parse("postfix/submission/smtpd", "connect from unknown[2001:db8:5::17]:41022");
  EXPECT_EQ(ev.kind, Kind::kConnect);
  EXPECT_EQ(ev.Get(Field::kClient), "unknown[2001:db8:5::17]:41022");
  EXPECT_EQ(ev.Get(Field::kClientHost), "unknown");
  EXPECT_EQ(ev.Get(Field::kClientIp), "2001:db8:5::17");
  EXPECT_EQ(ev.Get(Field::kClientPort), "41022");
}

TEST(SmtpdTest, DisconnectWithCommandCounts) {
  Event ev = Smtpd(
      "disconnect from relay.example.org[203.0.113.9] ehlo=2 starttls=1 mail=1 rcpt=0/2 "
      "data=0/1 quit=1 commands=5/8");
  EXPECT_EQ(ev.kind, Kind::kDisconnect);
  EXPECT_EQ(ev.Get(Field::kClientIp), "203.0.113.9");
  EXPECT_EQ(ev.Get(Field::kCommands),
            "ehlo=2 starttls=1 mail=1 rcpt=0/2 data=0/1 quit=1 commands=5/8");
}

TEST(SmtpdTest, DisconnectWithoutCounts) {
  Event ev = Smtpd("disconnect from unknown[unknown]");
  EXPECT_EQ(ev.kind, Kind::kDisconnect);
  EXPECT_EQ(ev.Get(Field::kClientIp), "unknown");
  EXPECT_FALSE(ev.Has(Field::kCommands));
}

TEST(SmtpdTest, LostConnection) {
  Event ev = Smtpd("lost connection after RCPT from unknown[192.0.2.201]");
  EXPECT_EQ(ev.kind, Kind::kLostConnection);
  EXPECT_EQ(ev.Get(Field::kStage), "RCPT");
  EXPECT_EQ(ev.Get(Field::kClientHost), "unknown");
  EXPECT_EQ(ev.Get(Field::kClientIp), "192.0.2.201");
}

TEST(SmtpdTest, LostConnectionWithByteCountAndQueueId) {
  Event ev = Smtpd("NOQUEUE: lost connection after DATA (4096 bytes) from a.example[192.0.2.4]");
  EXPECT_EQ(ev.kind, Kind::kLostConnection);
  EXPECT_EQ(ev.queue_id, "NOQUEUE");
  EXPECT_EQ(ev.Get(Field::kStage), "DATA");
  EXPECT_EQ(ev.Get(Field::kSize), "4096");
  EXPECT_EQ(ev.Get(Field::kClientHost), "a.example");
}

TEST(SmtpdTest, Timeout) {
  Event ev = Smtpd("timeout after END-OF-MESSAGE from localhost[127.0.0.1]");
  EXPECT_EQ(ev.kind, Kind::kTimeout);
  EXPECT_EQ(ev.Get(Field::kStage), "END-OF-MESSAGE");
  EXPECT_EQ(ev.Get(Field::kClientIp), "127.0.0.1");
}

TEST(SmtpdTest, ClientLine) {
  Event ev = Smtpd("4F2A81C03D: client=out7.example.com[198.51.100.70]");
  EXPECT_EQ(ev.kind, Kind::kClient);
  EXPECT_EQ(ev.queue_id, "4F2A81C03D");
  EXPECT_EQ(ev.Get(Field::kClient), "out7.example.com[198.51.100.70]");
  EXPECT_EQ(ev.Get(Field::kClientHost), "out7.example.com");
  EXPECT_FALSE(ev.Has(Field::kSaslMethod));
}

TEST(SmtpdTest, ClientLineWithSasl) {
  Event ev = Parse("postfix/submission/smtpd",
                   "3xQmTb1Hqvz9vKL: client=dsl-7.example.net[203.0.113.77]:50312, "
                   "sasl_method=PLAIN, sasl_username=carol@example.org, "
                   "sasl_sender=carol@example.org");
  EXPECT_EQ(ev.kind, Kind::kClient);
  EXPECT_EQ(ev.queue_id_form, QueueIdForm::kLong);
  EXPECT_EQ(ev.Get(Field::kClientPort), "50312");
  EXPECT_EQ(ev.Get(Field::kSaslMethod), "PLAIN");
  EXPECT_EQ(ev.Get(Field::kSaslUsername), "carol@example.org");
  EXPECT_EQ(ev.Get(Field::kSaslSender), "carol@example.org");
}

TEST(SmtpdTest, ClientLineAfterContentFilter) {
  Event ev = Parse("postfix/10025/smtpd",
                   "9C1D2E3F40: client=localhost[127.0.0.1], orig_queue_id=7B6A5C4D3E, "
                   "orig_client=unknown[192.0.2.50]");
  EXPECT_EQ(ev.kind, Kind::kClient);
  EXPECT_EQ(ev.Get(Field::kClientIp), "127.0.0.1");
  EXPECT_EQ(ev.Get(Field::kOrigQueueId), "7B6A5C4D3E");
}

// ---- smtpd: access checks ----

TEST(SmtpdTest, NoqueueRejectRecipient) {
  Event ev = Smtpd(
      "NOQUEUE: reject: RCPT from bad.example.net[192.0.2.66]: 550 5.1.1 <nobody@example.org>: "
      "Recipient address rejected: User unknown in local recipient table; "
      "from=<promo@example.net> to=<nobody@example.org> proto=ESMTP helo=<bad.example.net>");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.queue_id, "NOQUEUE");
  EXPECT_EQ(ev.Get(Field::kAction), "reject");
  EXPECT_EQ(ev.Get(Field::kStage), "RCPT");
  EXPECT_EQ(ev.Get(Field::kClientHost), "bad.example.net");
  EXPECT_EQ(ev.Get(Field::kClientIp), "192.0.2.66");
  EXPECT_EQ(ev.Get(Field::kCode), "550");
  EXPECT_EQ(ev.Get(Field::kDsn), "5.1.1");
  EXPECT_EQ(ev.Get(Field::kDetail), "nobody@example.org");
  EXPECT_EQ(ev.Get(Field::kReason),
            "Recipient address rejected: User unknown in local recipient table");
  EXPECT_EQ(ev.Get(Field::kReply),
            "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local "
            "recipient table");
  EXPECT_EQ(ev.Get(Field::kFrom), "promo@example.net");
  EXPECT_EQ(ev.Get(Field::kTo), "nobody@example.org");
  EXPECT_EQ(ev.Get(Field::kProto), "ESMTP");
  EXPECT_EQ(ev.Get(Field::kHelo), "bad.example.net");
}

TEST(SmtpdTest, RejectNullSenderIsPresentAndEmpty) {
  Event ev = Smtpd(
      "5A6B7C8D9E: reject: RCPT from unknown[192.0.2.90]: 450 4.7.1 <>: Sender address "
      "rejected: try later; from=<> to=<x@example.org> proto=ESMTP helo=<pc1>");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.queue_id, "5A6B7C8D9E");
  EXPECT_TRUE(ev.Has(Field::kFrom));
  EXPECT_EQ(ev.Get(Field::kFrom), "");
  EXPECT_TRUE(ev.Has(Field::kDetail));
  EXPECT_EQ(ev.Get(Field::kDetail), "");
  EXPECT_EQ(ev.Get(Field::kReason), "Sender address rejected: try later");
}

TEST(SmtpdTest, RejectDnsbl) {
  Event ev = Smtpd(
      "NOQUEUE: reject: RCPT from unknown[203.0.113.200]: 554 5.7.1 Service unavailable; "
      "Client host [203.0.113.200] blocked using bl.example.net; https://bl.example.net/q/"
      "203.0.113.200; from=<a@example.com> to=<b@example.org> proto=SMTP helo=<x.example>");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.Get(Field::kCode), "554");
  EXPECT_EQ(ev.Get(Field::kDsn), "5.7.1");
  EXPECT_EQ(ev.Get(Field::kDetail), "203.0.113.200");
  EXPECT_EQ(ev.Get(Field::kReason),
            "blocked using bl.example.net; https://bl.example.net/q/203.0.113.200");
  EXPECT_EQ(ev.Get(Field::kFrom), "a@example.com");
  EXPECT_EQ(ev.Get(Field::kHelo), "x.example");
}

TEST(SmtpdTest, RejectAtConnectWithoutSenderOrRecipient) {
  Event ev = Smtpd(
      "NOQUEUE: reject: CONNECT from unknown[192.0.2.14]: 450 4.7.25 Client host rejected: "
      "cannot find your hostname, [192.0.2.14]; proto=SMTP");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.Get(Field::kStage), "CONNECT");
  EXPECT_EQ(ev.Get(Field::kDsn), "4.7.25");
  EXPECT_EQ(ev.Get(Field::kReason),
            "Client host rejected: cannot find your hostname, [192.0.2.14]");
  EXPECT_FALSE(ev.Has(Field::kFrom));
  EXPECT_FALSE(ev.Has(Field::kTo));
  EXPECT_EQ(ev.Get(Field::kProto), "SMTP");
}

TEST(SmtpdTest, RejectHeloAndVrfyStages) {
  Event helo = Smtpd(
      "NOQUEUE: reject: EHLO from h.example[198.51.100.8]: 504 5.5.2 <Box>: Helo command "
      "rejected: need fully-qualified hostname; proto=SMTP helo=<Box>");
  EXPECT_EQ(helo.kind, Kind::kReject);
  EXPECT_EQ(helo.Get(Field::kStage), "EHLO");
  EXPECT_EQ(helo.Get(Field::kDetail), "Box");
  EXPECT_EQ(helo.Get(Field::kHelo), "Box");
  Event vrfy = Smtpd(
      "NOQUEUE: reject: VRFY from unknown[2001:db8::44]: 454 4.7.1 <z@example.com>: Relay "
      "access denied; to=<z@example.com> proto=SMTP helo=<me>");
  EXPECT_EQ(vrfy.Get(Field::kStage), "VRFY");
  EXPECT_EQ(vrfy.Get(Field::kClientIp), "2001:db8::44");
  EXPECT_EQ(vrfy.Get(Field::kReason), "Relay access denied");
  EXPECT_FALSE(vrfy.Has(Field::kFrom));
}

TEST(SmtpdTest, RejectTruncatedWithoutTail) {
  Event ev = Smtpd("NOQUEUE: reject: RCPT from unknown[192.0.2.3]: 554 5.7.1 Service unavailable");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.Get(Field::kReason), "Service unavailable");
  EXPECT_FALSE(ev.Has(Field::kFrom));
}

TEST(SmtpdTest, DeferIsAReject) {
  Event ev = Smtpd(
      "NOQUEUE: defer: RCPT from m.example[192.0.2.5]: 450 4.3.0 <q@example.org>: Temporary "
      "lookup failure; from=<p@example.net> to=<q@example.org> proto=ESMTP helo=<m.example>");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.Get(Field::kAction), "defer");
}

TEST(SmtpdTest, MilterReject) {
  Event ev = Smtpd(
      "E0F1A2B3C4: milter-reject: END-OF-MESSAGE from m.example[192.0.2.5]: 5.7.1 Message "
      "rejected as spam; from=<p@example.net> to=<q@example.org> proto=ESMTP helo=<m.example>");
  EXPECT_EQ(ev.kind, Kind::kReject);
  EXPECT_EQ(ev.Get(Field::kAction), "milter-reject");
  EXPECT_EQ(ev.Get(Field::kStage), "END-OF-MESSAGE");
  EXPECT_FALSE(ev.Has(Field::kCode));
  EXPECT_EQ(ev.Get(Field::kDsn), "5.7.1");
  EXPECT_EQ(ev.Get(Field::kReason), "Message rejected as spam");
}

TEST(SmtpdTest, WarnAndRejectWarningAreCheckActions) {
  Event warn = Smtpd(
      "NOQUEUE: warn: RCPT from m.example[192.0.2.5]: Listed in local list; "
      "from=<p@example.net> to=<q@example.org> proto=ESMTP helo=<m.example>");
  EXPECT_EQ(warn.kind, Kind::kCheckAction);
  EXPECT_EQ(warn.Get(Field::kAction), "warn");
  EXPECT_EQ(warn.Get(Field::kReason), "Listed in local list");
  Event rw = Smtpd(
      "NOQUEUE: reject_warning: RCPT from m.example[192.0.2.5]: 553 5.7.1 <p@example.net>: "
      "Sender address rejected: not owned by user dave; from=<p@example.net> "
      "to=<q@example.org> proto=ESMTP helo=<m.example>");
  EXPECT_EQ(rw.kind, Kind::kCheckAction);
  EXPECT_EQ(rw.Get(Field::kAction), "reject_warning");
  EXPECT_EQ(rw.Get(Field::kCode), "553");
}

TEST(SmtpdTest, HoldDiscardFilterRedirect) {
  Event hold = Smtpd(
      "1A2B3C4D5E: hold: RCPT from m.example[192.0.2.5]: <q@example.org>: Recipient address "
      "triggers HOLD action; from=<p@example.net> to=<q@example.org> proto=ESMTP "
      "helo=<m.example>");
  EXPECT_EQ(hold.kind, Kind::kCheckAction);
  EXPECT_EQ(hold.Get(Field::kAction), "hold");
  EXPECT_EQ(hold.Get(Field::kDetail), "q@example.org");
  EXPECT_EQ(hold.Get(Field::kReason), "Recipient address triggers HOLD action");
  Event discard = Smtpd(
      "NOQUEUE: discard: MAIL from m.example[192.0.2.5]: <p@example.net>: Sender address "
      "junk; from=<p@example.net> proto=ESMTP helo=<m.example>");
  EXPECT_EQ(discard.kind, Kind::kCheckAction);
  EXPECT_EQ(discard.Get(Field::kStage), "MAIL");
  EXPECT_FALSE(discard.Has(Field::kTo));
  Event filter = Smtpd(
      "NOQUEUE: filter: RCPT from unknown[192.0.2.7]: <p@example.net>: Sender address "
      "triggers FILTER smtp-amavis:[127.0.0.1]:10024; from=<p@example.net> "
      "to=<q@example.org> proto=ESMTP helo=<pc>");
  EXPECT_EQ(filter.Get(Field::kAction), "filter");
  EXPECT_EQ(filter.Get(Field::kReason),
            "Sender address triggers FILTER smtp-amavis:[127.0.0.1]:10024");
  EXPECT_EQ(filter.Get(Field::kTo), "q@example.org");
  Event redirect = Smtpd(
      "1A2B3C4D5E: redirect: RCPT from m.example[192.0.2.5]: <q@example.org>: Recipient "
      "address triggers REDIRECT r@example.org; from=<p@example.net> to=<q@example.org> "
      "proto=ESMTP helo=<m.example>");
  EXPECT_EQ(redirect.kind, Kind::kCheckAction);
  EXPECT_EQ(redirect.Get(Field::kAction), "redirect");
}

TEST(SmtpdTest, BeforeQueueProxy) {
  Event reject = Smtpd(
      "1A2B3C4D5E: proxy-reject: END-OF-MESSAGE: 554 5.7.0 Rejected, id=123-45 - spam; "
      "from=<> to=<q@example.org> proto=SMTP helo=<m.example>");
  EXPECT_EQ(reject.kind, Kind::kReject);
  EXPECT_EQ(reject.Get(Field::kAction), "proxy-reject");
  EXPECT_EQ(reject.Get(Field::kStage), "END-OF-MESSAGE");
  EXPECT_EQ(reject.Get(Field::kCode), "554");
  EXPECT_EQ(reject.Get(Field::kReason), "Rejected, id=123-45 - spam");
  EXPECT_EQ(reject.Get(Field::kFrom), "");
  EXPECT_TRUE(reject.Has(Field::kFrom));
  EXPECT_FALSE(reject.Has(Field::kClient));
  Event empty = Smtpd(
      "proxy-reject: END-OF-MESSAGE: ; from=<p@example.net> to=<q@example.org> proto=ESMTP "
      "helo=<m.example>");
  EXPECT_EQ(empty.kind, Kind::kReject);
  EXPECT_TRUE(empty.Has(Field::kReply));
  EXPECT_EQ(empty.Get(Field::kReply), "");
  Event accept = Smtpd(
      "1A2B3C4D5E: proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as 6F7E8D9C0B; "
      "from=<p@example.net> to=<q@example.org> proto=ESMTP helo=<m.example>");
  EXPECT_EQ(accept.kind, Kind::kCheckAction);
  EXPECT_EQ(accept.Get(Field::kAction), "proxy-accept");
  EXPECT_EQ(accept.Get(Field::kCode), "250");
}

// ---- smtpd: authentication and TLS ----

TEST(SmtpdTest, SaslFailed) {
  Event ev = Smtpd(
      "warning: unknown[203.0.113.15]: SASL LOGIN authentication failed: authentication "
      "failure");
  EXPECT_EQ(ev.kind, Kind::kSaslFailed);
  EXPECT_EQ(ev.severity, Severity::kWarning);
  EXPECT_EQ(ev.Get(Field::kSaslMethod), "LOGIN");
  EXPECT_EQ(ev.Get(Field::kReason), "authentication failure");
  EXPECT_EQ(ev.Get(Field::kClientHost), "unknown");
  EXPECT_EQ(ev.Get(Field::kClientIp), "203.0.113.15");
  EXPECT_FALSE(ev.Has(Field::kSaslUsername));
}

TEST(SmtpdTest, SaslFailedWithUsernamePortAndEmptyReason) {
  Event ev = Smtpd(
      "warning: pc.example[192.0.2.8]:61000: SASL CRAM-MD5 authentication failed: "
      "authentication failure, sasl_username=erin@example.org");
  EXPECT_EQ(ev.kind, Kind::kSaslFailed);
  EXPECT_EQ(ev.Get(Field::kClientPort), "61000");
  EXPECT_EQ(ev.Get(Field::kSaslMethod), "CRAM-MD5");
  EXPECT_EQ(ev.Get(Field::kReason), "authentication failure");
  EXPECT_EQ(ev.Get(Field::kSaslUsername), "erin@example.org");
  Event empty = Smtpd("warning: unknown[192.0.2.9]: SASL PLAIN authentication failed:");
  EXPECT_EQ(empty.kind, Kind::kSaslFailed);
  EXPECT_TRUE(empty.Has(Field::kReason));
  EXPECT_EQ(empty.Get(Field::kReason), "");
}

TEST(SmtpdTest, TlsEstablishedFrom) {
  Event ev = Smtpd(
      "Anonymous TLS connection established from mail.example.com[198.51.100.31]: TLSv1.3 "
      "with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519 "
      "server-signature RSA-PSS (4096 bits) server-digest SHA256");
  EXPECT_EQ(ev.kind, Kind::kTlsEstablished);
  EXPECT_EQ(ev.Get(Field::kDetail), "Anonymous");
  EXPECT_EQ(ev.Get(Field::kTlsProtocol), "TLSv1.3");
  EXPECT_EQ(ev.Get(Field::kTlsCipher), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(ev.Get(Field::kClientHost), "mail.example.com");
  EXPECT_EQ(ev.Get(Field::kClientIp), "198.51.100.31");
}

TEST(SmtpdTest, TlsEstablishedToSetsRelayFields) {
  Event ev;
  ASSERT_TRUE(ParseTlsEstablished(
      "Verified TLS connection established to mx.example.org[2001:db8::25]:25: TLSv1.2 with "
      "cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
      &ev));
  EXPECT_EQ(ev.kind, Kind::kTlsEstablished);
  EXPECT_EQ(ev.Get(Field::kDetail), "Verified");
  EXPECT_EQ(ev.Get(Field::kRelay), "mx.example.org[2001:db8::25]:25");
  EXPECT_EQ(ev.Get(Field::kRelayHost), "mx.example.org");
  EXPECT_EQ(ev.Get(Field::kRelayIp), "2001:db8::25");
  EXPECT_EQ(ev.Get(Field::kRelayPort), "25");
  EXPECT_EQ(ev.Get(Field::kTlsCipher), "ECDHE-RSA-AES256-GCM-SHA384");
  EXPECT_FALSE(ev.Has(Field::kClient));
}

TEST(SmtpdTest, TlsEstablishedWithoutTrustLevel) {
  // Postfix 2.x.
  Event ev = Smtpd(
      "TLS connection established from old.example[192.0.2.40]: TLSv1 with cipher "
      "DHE-RSA-AES256-SHA (256/256 bits)");
  EXPECT_EQ(ev.kind, Kind::kTlsEstablished);
  EXPECT_EQ(ev.Get(Field::kTlsProtocol), "TLSv1");
  EXPECT_EQ(ev.Get(Field::kTlsCipher), "DHE-RSA-AES256-SHA");
  EXPECT_FALSE(ev.Has(Field::kDetail));
  EXPECT_EQ(Smtpd("Sometimes TLS connection established from a[192.0.2.1]: x with cipher y").kind,
            Kind::kUnparsed);
}

TEST(SmtpdTest, SettingUpTls) {
  Event ev = Smtpd("setting up TLS connection from new.example[192.0.2.41]");
  EXPECT_EQ(ev.kind, Kind::kSmtpdOther);
  EXPECT_EQ(ev.Get(Field::kDetail), "setting up TLS connection");
  EXPECT_EQ(ev.Get(Field::kClientIp), "192.0.2.41");
}

// ---- smtpd: other chatter ----

TEST(SmtpdTest, OtherChatter) {
  Event errors = Smtpd("too many errors after DATA from h.example[192.0.2.12]");
  EXPECT_EQ(errors.kind, Kind::kSmtpdOther);
  EXPECT_EQ(errors.Get(Field::kDetail), "too many errors");
  EXPECT_EQ(errors.Get(Field::kStage), "DATA");
  EXPECT_EQ(errors.Get(Field::kClientIp), "192.0.2.12");

  Event pipelining =
      Smtpd("improper command pipelining after HELO from unknown[192.0.2.13]: QUIT\\r\\n");
  EXPECT_EQ(pipelining.kind, Kind::kSmtpdOther);
  EXPECT_EQ(pipelining.Get(Field::kDetail), "improper command pipelining");
  EXPECT_EQ(pipelining.Get(Field::kStage), "HELO");
  EXPECT_EQ(pipelining.Get(Field::kReason), "QUIT\\r\\n");

  Event non_smtp = Smtpd("warning: non-SMTP command from unknown[192.0.2.14]: GET / HTTP/1.0");
  EXPECT_EQ(non_smtp.kind, Kind::kSmtpdOther);
  EXPECT_EQ(non_smtp.Get(Field::kDetail), "non-SMTP command");
  EXPECT_EQ(non_smtp.Get(Field::kReason), "GET / HTTP/1.0");

  Event ssl = Smtpd("SSL_accept error from scan.example[192.0.2.15]: -1");
  EXPECT_EQ(ssl.kind, Kind::kSmtpdOther);
  EXPECT_EQ(ssl.Get(Field::kDetail), "SSL_accept error");
  EXPECT_EQ(ssl.Get(Field::kClientHost), "scan.example");
  EXPECT_EQ(ssl.Get(Field::kReason), "-1");

  Event bare = Smtpd("bare <LF> received after DATA from h.example[192.0.2.16]");
  EXPECT_EQ(bare.kind, Kind::kSmtpdOther);
  EXPECT_EQ(bare.Get(Field::kDetail), "bare <LF> received");
  EXPECT_EQ(bare.Get(Field::kStage), "DATA");

  Event ehlo = Smtpd("discarding EHLO keywords: PIPELINING DSN");
  EXPECT_EQ(ehlo.kind, Kind::kSmtpdOther);
  EXPECT_EQ(ehlo.Get(Field::kDetail), "discarding EHLO keywords");
  EXPECT_EQ(ehlo.Get(Field::kReason), "PIPELINING DSN");
}

TEST(SmtpdTest, HostnameWarnings) {
  Event resolve = Smtpd(
      "warning: hostname host-7.example.net does not resolve to address 198.51.100.7: Name "
      "or service not known");
  EXPECT_EQ(resolve.kind, Kind::kSmtpdOther);
  EXPECT_EQ(resolve.Get(Field::kDetail), "does not resolve to address");
  EXPECT_EQ(resolve.Get(Field::kClientHost), "host-7.example.net");
  EXPECT_EQ(resolve.Get(Field::kClientIp), "198.51.100.7");
  EXPECT_EQ(resolve.Get(Field::kReason), "Name or service not known");

  Event plain = Smtpd("warning: hostname a.example does not resolve to address 2001:db8::9");
  EXPECT_EQ(plain.kind, Kind::kSmtpdOther);
  EXPECT_EQ(plain.Get(Field::kClientIp), "2001:db8::9");
  EXPECT_FALSE(plain.Has(Field::kReason));

  Event listed = Smtpd("warning: 192.0.2.80: address not listed for hostname b.example");
  EXPECT_EQ(listed.kind, Kind::kSmtpdOther);
  EXPECT_EQ(listed.Get(Field::kClientIp), "192.0.2.80");
  EXPECT_EQ(listed.Get(Field::kClientHost), "b.example");
  EXPECT_EQ(listed.Get(Field::kDetail), "address not listed for hostname");

  Event verify = Smtpd(
      "warning: 192.0.2.81: hostname c.example verification failed: No address associated "
      "with hostname");
  EXPECT_EQ(verify.kind, Kind::kSmtpdOther);
  EXPECT_EQ(verify.Get(Field::kDetail), "verification failed");
  EXPECT_EQ(verify.Get(Field::kReason), "No address associated with hostname");
}

TEST(SmtpdTest, IllegalAddressAndLimits) {
  Event illegal =
      Smtpd("warning: Illegal address syntax from unknown[192.0.2.17] in MAIL command: <a b@c>");
  EXPECT_EQ(illegal.kind, Kind::kSmtpdOther);
  EXPECT_EQ(illegal.Get(Field::kDetail), "Illegal address syntax");
  EXPECT_EQ(illegal.Get(Field::kStage), "MAIL");
  EXPECT_EQ(illegal.Get(Field::kReason), "<a b@c>");

  Event rate = Smtpd(
      "warning: Connection rate limit exceeded: 45 from many.example[192.0.2.18] for service "
      "smtp");
  EXPECT_EQ(rate.kind, Kind::kSmtpdOther);
  EXPECT_EQ(rate.Get(Field::kDetail), "Connection rate limit exceeded");
  EXPECT_EQ(rate.Get(Field::kReason), "45");
  EXPECT_EQ(rate.Get(Field::kClientIp), "192.0.2.18");
}

TEST(SmtpdTest, UnknownTextIsNotTyped) {
  EXPECT_EQ(Smtpd("something entirely different").kind, Kind::kUnparsed);
  EXPECT_EQ(Smtpd("NOQUEUE: reject: Unsupported").kind, Kind::kUnparsed);
  EXPECT_EQ(Smtpd("connect from nowhere").kind, Kind::kUnparsed);
  EXPECT_EQ(Smtpd("").kind, Kind::kUnparsed);
  EXPECT_EQ(Smtpd("warning: TLS library problem: error:0A000102").kind, Kind::kLogMessage);
}

// ---- bounds ----

// Every parser of this family, so each sample meets all of them.
using FamilyParser = bool (*)(std::string_view, Event*);
constexpr FamilyParser kParsers[] = {ParseSmtpd,  ParsePostscreen,    ParseDnsblog,
                                     ParseAnvil,  ParseTlsproxy,      ParseScache,
                                     ParseVerify, ParseTlsEstablished};

constexpr std::string_view kSamples[] = {
    "reject: RCPT from a.example[192.0.2.1]:2525: 550 5.7.1 <x@y>: no; from=<> to=<q> "
    "proto=ESMTP helo=<h>",
    "reject: RCPT from [192.0.2.1]:1: 554 5.7.1 Service unavailable; client [192.0.2.1] "
    "blocked using b.example; from=<a>, to=<b>, proto=ESMTP, helo=<c>",
    "lost connection after DATA (12 bytes) from a.example[192.0.2.1]",
    "a.example[192.0.2.1]:25: SASL LOGIN authentication failed: x, sasl_username=u",
    "Trusted TLS connection established from a[192.0.2.1]: TLSv1.2 with cipher C (1/1 bits)",
    "hostname a does not resolve to address 192.0.2.1: x",
    "192.0.2.1: hostname a verification failed: x",
    "improper command pipelining after EHLO from a[192.0.2.1]: x",
    "client=a[192.0.2.1]:1, sasl_method=PLAIN, sasl_username=u, orig_queue_id=ABCDE",
    "Connection rate limit exceeded: 3 from a[192.0.2.1] for service smtp",
    "proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok; from=<a> to=<b> proto=ESMTP helo=<c>",
    "Illegal address syntax from a[192.0.2.1] in MAIL command: <x>",
    "PREGREET 3 after 0.1 from [192.0.2.1]:2: EHLO x",
    "HANGUP after 1 from [192.0.2.1]:2 in tests after SMTP handshake",
    "COMMAND PIPELINING from [192.0.2.1]:2 after RCPT: x",
    "DNSBL rank 2 for [192.0.2.1]:2",
    "PASS NEW [192.0.2.1]:2",
    "CONNECT from [192.0.2.1]:2 to [192.0.2.2]:25",
    "addr 192.0.2.1 listed by domain b.example as 127.0.0.2",
    "statistics: max connection rate 1/60s for (127.0.0.1:25:192.0.2.1) at Jan  1 00:00:00",
    "statistics: max connection count 1 for ([::1]:25:2001:db8::1) at Jan  1 00:00:00",
    "cache btree:/x full cleanup: retained=1 dropped=0 entries",
    "TLS handshake failed for service=smtpd peer=[192.0.2.1]:2",
};

// Runs `text` through every parser from an allocation of exactly its size, so ASan reports a
// read one byte past the end.
void RunAll(std::string_view text) {
  std::unique_ptr<char[]> copy(new char[text.size() + 1]);
  std::memcpy(copy.get(), text.data(), text.size());
  std::string_view exact(copy.get(), text.size());
  for (FamilyParser parser : kParsers) {
    Event ev;
    parser(exact, &ev);
  }
}

TEST(BoundsTest, EveryPrefixOfEveryForm) {
  for (std::string_view line : kSamples) {
    for (size_t n = 0; n <= line.size(); ++n) RunAll(line.substr(0, n));
  }
}

TEST(BoundsTest, MutatedLines) {
  // Bytes that steer the scanners: separators, brackets, digits, NUL and high bytes.
  static constexpr char kAlphabetBytes[] = " :;,.[]<>()=/0123456789\0\xff";
  constexpr std::string_view kAlphabet(kAlphabetBytes, sizeof(kAlphabetBytes) - 1);
  uint32_t state = 12345;
  auto next = [&state]() {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  std::string buffer;
  for (int round = 0; round < 20000; ++round) {
    std::string_view sample = kSamples[next() % std::size(kSamples)];
    buffer.assign(sample);
    int edits = 1 + next() % 4;
    for (int e = 0; e < edits && !buffer.empty(); ++e) {
      size_t at = next() % buffer.size();
      switch (next() % 3) {
        case 0:
          buffer[at] = kAlphabet[next() % kAlphabet.size()];
          break;
        case 1:
          buffer.erase(at, 1 + next() % 8);
          break;
        default:
          buffer.resize(at);
          break;
      }
    }
    RunAll(buffer);
  }
}

// ---- postscreen ----

TEST(PostscreenTest, ConnectPassListedDisconnect) {
  Event connect = Postscreen("CONNECT from [198.51.100.4]:40112 to [192.0.2.25]:25");
  EXPECT_EQ(connect.kind, Kind::kPostscreenConnect);
  EXPECT_EQ(connect.Get(Field::kClient), "[198.51.100.4]:40112");
  EXPECT_EQ(connect.Get(Field::kClientIp), "198.51.100.4");
  EXPECT_EQ(connect.Get(Field::kClientPort), "40112");
  EXPECT_FALSE(connect.Has(Field::kClientHost));
  EXPECT_EQ(connect.Get(Field::kDetail), "[192.0.2.25]:25");

  Event pass = Postscreen("PASS NEW [2001:db8:1::5]:51000");
  EXPECT_EQ(pass.kind, Kind::kPostscreenPass);
  EXPECT_EQ(pass.Get(Field::kDetail), "NEW");
  EXPECT_EQ(pass.Get(Field::kClientIp), "2001:db8:1::5");
  EXPECT_EQ(Postscreen("PASS OLD [192.0.2.6]:1").Get(Field::kDetail), "OLD");

  for (std::string_view word : {"WHITELISTED", "ALLOWLISTED", "BLACKLISTED", "DENYLISTED"}) {
    std::string line = std::string(word) + " [192.0.2.7]:2000";
    Event listed = Postscreen(line);
    EXPECT_EQ(listed.kind, Kind::kPostscreenListed) << word;
    EXPECT_EQ(listed.Get(Field::kDetail), word);
    EXPECT_EQ(listed.Get(Field::kClientPort), "2000");
  }
  Event veto = Postscreen("ALLOWLIST VETO [192.0.2.8]:2001");
  EXPECT_EQ(veto.kind, Kind::kPostscreenListed);
  EXPECT_EQ(veto.Get(Field::kDetail), "ALLOWLIST VETO");

  Event disconnect = Postscreen("DISCONNECT [192.0.2.9]:2002");
  EXPECT_EQ(disconnect.kind, Kind::kPostscreenDisconnect);
  EXPECT_EQ(disconnect.Get(Field::kClientIp), "192.0.2.9");
}

TEST(PostscreenTest, Violations) {
  Event pregreet = Postscreen("PREGREET 11 after 0.12 from [192.0.2.20]:3000: HELO pc\\r\\n");
  EXPECT_EQ(pregreet.kind, Kind::kPostscreenViolation);
  EXPECT_EQ(pregreet.Get(Field::kDetail), "PREGREET");
  EXPECT_EQ(pregreet.Get(Field::kDelay), "0.12");
  EXPECT_EQ(pregreet.Get(Field::kClientIp), "192.0.2.20");
  EXPECT_EQ(pregreet.Get(Field::kReason), "HELO pc\\r\\n");

  Event hangup =
      Postscreen("HANGUP after 2.7 from [192.0.2.21]:3001 in tests after SMTP handshake");
  EXPECT_EQ(hangup.kind, Kind::kPostscreenViolation);
  EXPECT_EQ(hangup.Get(Field::kDetail), "HANGUP");
  EXPECT_EQ(hangup.Get(Field::kDelay), "2.7");
  EXPECT_EQ(hangup.Get(Field::kReason), "in tests after SMTP handshake");

  Event limit = Postscreen("COMMAND TIME LIMIT from [192.0.2.22]:3002 after RCPT");
  EXPECT_EQ(limit.kind, Kind::kPostscreenViolation);
  EXPECT_EQ(limit.Get(Field::kDetail), "COMMAND TIME LIMIT");
  EXPECT_EQ(limit.Get(Field::kStage), "RCPT");
  EXPECT_FALSE(limit.Has(Field::kReason));

  Event pipelining = Postscreen("COMMAND PIPELINING from [192.0.2.23]:3003 after EHLO: QUIT");
  EXPECT_EQ(pipelining.Get(Field::kDetail), "COMMAND PIPELINING");
  EXPECT_EQ(pipelining.Get(Field::kStage), "EHLO");
  EXPECT_EQ(pipelining.Get(Field::kReason), "QUIT");

  Event non_smtp =
      Postscreen("NON-SMTP COMMAND from [192.0.2.24]:3004 after CONNECT: GET / HTTP/1.1");
  EXPECT_EQ(non_smtp.Get(Field::kDetail), "NON-SMTP COMMAND");
  EXPECT_EQ(non_smtp.Get(Field::kStage), "CONNECT");
  EXPECT_EQ(non_smtp.Get(Field::kReason), "GET / HTTP/1.1");

  Event bare = Postscreen("BARE NEWLINE from [192.0.2.25]:3005 after DATA");
  EXPECT_EQ(bare.Get(Field::kDetail), "BARE NEWLINE");
  Event count = Postscreen("COMMAND COUNT LIMIT from [192.0.2.26]:3006 after MAIL");
  EXPECT_EQ(count.Get(Field::kDetail), "COMMAND COUNT LIMIT");
  Event length = Postscreen("COMMAND LENGTH LIMIT from [192.0.2.27]:3007 after HELO");
  EXPECT_EQ(length.Get(Field::kDetail), "COMMAND LENGTH LIMIT");
  Event data = Postscreen("DATA without valid RCPT from [192.0.2.28]:3008");
  EXPECT_EQ(data.kind, Kind::kPostscreenViolation);
  EXPECT_EQ(data.Get(Field::kDetail), "DATA without valid RCPT");
  Event bdat = Postscreen("BDAT without valid RCPT from [192.0.2.29]:3009");
  EXPECT_EQ(bdat.Get(Field::kDetail), "BDAT without valid RCPT");
}

TEST(PostscreenTest, DnsblRank) {
  Event ev = Postscreen("DNSBL rank 4 for [203.0.113.44]:5151");
  EXPECT_EQ(ev.kind, Kind::kPostscreenDnsbl);
  EXPECT_EQ(ev.Get(Field::kDetail), "4");
  EXPECT_EQ(ev.Get(Field::kClientIp), "203.0.113.44");
  EXPECT_EQ(ev.Get(Field::kClientPort), "5151");
}

TEST(PostscreenTest, Rejects) {
  Event dnsbl = Postscreen(
      "NOQUEUE: reject: RCPT from [203.0.113.45]:5152: 550 5.7.1 Service unavailable; client "
      "[203.0.113.45] blocked using bl.example.net; from=<s@example.com>, to=<r@example.org>, "
      "proto=ESMTP, helo=<pc.example>");
  EXPECT_EQ(dnsbl.kind, Kind::kReject);
  EXPECT_EQ(dnsbl.queue_id, "NOQUEUE");
  EXPECT_EQ(dnsbl.Get(Field::kStage), "RCPT");
  EXPECT_EQ(dnsbl.Get(Field::kClientPort), "5152");
  EXPECT_EQ(dnsbl.Get(Field::kCode), "550");
  EXPECT_EQ(dnsbl.Get(Field::kDetail), "203.0.113.45");
  EXPECT_EQ(dnsbl.Get(Field::kReason), "blocked using bl.example.net");
  EXPECT_EQ(dnsbl.Get(Field::kFrom), "s@example.com");
  EXPECT_EQ(dnsbl.Get(Field::kTo), "r@example.org");
  EXPECT_EQ(dnsbl.Get(Field::kProto), "ESMTP");
  EXPECT_EQ(dnsbl.Get(Field::kHelo), "pc.example");

  Event busy = Postscreen("NOQUEUE: reject: CONNECT from [192.0.2.30]:4000: too many connections");
  EXPECT_EQ(busy.kind, Kind::kReject);
  EXPECT_EQ(busy.Get(Field::kStage), "CONNECT");
  EXPECT_EQ(busy.Get(Field::kReason), "too many connections");
  EXPECT_FALSE(busy.Has(Field::kCode));
}

TEST(PostscreenTest, CacheCleanup) {
  Event ev = Postscreen(
      "cache btree:/var/lib/postfix/psc_cache full cleanup: retained=17 dropped=2 entries");
  EXPECT_EQ(ev.kind, Kind::kStatistics);
  EXPECT_EQ(ev.Get(Field::kDetail),
            "cache btree:/var/lib/postfix/psc_cache full cleanup: retained=17 dropped=2 entries");
}

TEST(PostscreenTest, UnknownAndWarnings) {
  EXPECT_EQ(Postscreen("PASS MAYBE [192.0.2.1]:1").kind, Kind::kUnparsed);
  EXPECT_EQ(Postscreen("PASS").kind, Kind::kUnparsed);
  EXPECT_EQ(Postscreen("HANGUP after 1").kind, Kind::kUnparsed);
  EXPECT_EQ(Postscreen("warning: dnsblog reply timeout 10s for bl.example").kind,
            Kind::kLogMessage);
}

// ---- dnsblog, anvil, tlsproxy, scache, verify ----

TEST(DnsblogTest, Listed) {
  Event ev =
      Parse("postfix/dnsblog", "addr 198.51.100.99 listed by domain bl.example.net as 127.0.0.4");
  EXPECT_EQ(ev.kind, Kind::kDnsblListed);
  EXPECT_EQ(ev.Get(Field::kClientIp), "198.51.100.99");
  EXPECT_EQ(ev.Get(Field::kDetail), "bl.example.net");
  EXPECT_EQ(ev.Get(Field::kReason), "127.0.0.4");
  Event v6 =
      Parse("postfix/dnsblog", "addr 2001:db8::1:2 listed by domain wl.example as 127.0.9.1");
  EXPECT_EQ(v6.Get(Field::kClientIp), "2001:db8::1:2");
  EXPECT_EQ(Parse("postfix/dnsblog", "addr 1.2.3.4 is fine").kind, Kind::kUnparsed);
}

TEST(AnvilTest, Statistics) {
  Event rate = Parse("postfix/anvil",
                     "statistics: max connection rate 3/60s for (smtp:192.0.2.71) at Mar  4 "
                     "09:10:11");
  EXPECT_EQ(rate.kind, Kind::kAnvilStats);
  EXPECT_EQ(rate.Get(Field::kDetail), "max connection rate");
  EXPECT_EQ(rate.Get(Field::kReason), "3/60s");
  EXPECT_EQ(rate.Get(Field::kClientIp), "192.0.2.71");

  Event count = Parse("postfix/anvil",
                      "statistics: max connection count 2 for (submission:2001:db8::71) at "
                      "Mar  4 09:10:11");
  EXPECT_EQ(count.Get(Field::kDetail), "max connection count");
  EXPECT_EQ(count.Get(Field::kReason), "2");
  EXPECT_EQ(count.Get(Field::kClientIp), "2001:db8::71");

  Event listener = Parse("postfix/anvil",
                         "statistics: max message rate 5/1h for (127.0.0.1:10025:192.0.2.72) "
                         "at Mar  4 09:10:11");
  EXPECT_EQ(listener.Get(Field::kDetail), "max message rate");
  EXPECT_EQ(listener.Get(Field::kClientIp), "192.0.2.72");

  Event cache = Parse("postfix/anvil", "statistics: max cache size 7 at Mar  4 09:10:11");
  EXPECT_EQ(cache.kind, Kind::kAnvilStats);
  EXPECT_EQ(cache.Get(Field::kDetail), "max cache size");
  EXPECT_EQ(cache.Get(Field::kReason), "7");
  EXPECT_FALSE(cache.Has(Field::kClientIp));

  Event unknown = Parse("postfix/anvil",
                        "statistics: max newtls rate 1/60s for (smtpd:unknown) at Mar  4 "
                        "09:10:11");
  EXPECT_EQ(unknown.Get(Field::kDetail), "max newtls rate");
  EXPECT_EQ(unknown.Get(Field::kClientIp), "unknown");
}

TEST(TlsproxyTest, ConnectTlsDisconnect) {
  Event connect = Parse("postfix/tlsproxy", "CONNECT from [192.0.2.33]:6000");
  EXPECT_EQ(connect.kind, Kind::kConnect);
  EXPECT_EQ(connect.Get(Field::kClientIp), "192.0.2.33");
  EXPECT_EQ(connect.Get(Field::kClientPort), "6000");
  Event tls = Parse("postfix/tlsproxy",
                    "Anonymous TLS connection established from [192.0.2.33]:6000: TLSv1.2 with "
                    "cipher ECDHE-RSA-AES128-SHA (128/128 bits)");
  EXPECT_EQ(tls.kind, Kind::kTlsEstablished);
  EXPECT_EQ(tls.Get(Field::kClientPort), "6000");
  EXPECT_EQ(tls.Get(Field::kTlsProtocol), "TLSv1.2");
  Event disconnect = Parse("postfix/tlsproxy", "DISCONNECT [192.0.2.33]:6000");
  EXPECT_EQ(disconnect.kind, Kind::kDisconnect);
  Event failed =
      Parse("postfix/tlsproxy", "TLS handshake failed for service=smtpd peer=[192.0.2.34]:6001");
  EXPECT_EQ(failed.kind, Kind::kSmtpdOther);
  EXPECT_EQ(failed.Get(Field::kDetail), "TLS handshake failed");
  EXPECT_EQ(failed.Get(Field::kClientIp), "192.0.2.34");
  Event timeout =
      Parse("postfix/tlsproxy", "warning: ciphertext read/write timeout for [192.0.2.35]:6002");
  EXPECT_EQ(timeout.kind, Kind::kSmtpdOther);
  EXPECT_EQ(timeout.Get(Field::kClientIp), "192.0.2.35");
}

TEST(ScacheVerifyTest, Statistics) {
  Event lookup = Parse("postfix/scache", "statistics: address lookup hits=4 miss=6 success=40%");
  EXPECT_EQ(lookup.kind, Kind::kStatistics);
  EXPECT_EQ(lookup.Get(Field::kDetail), "address lookup hits=4 miss=6 success=40%");
  EXPECT_EQ(Parse("postfix/scache", "statistics: start interval Mar  4 09:00:00").kind,
            Kind::kStatistics);
  Event verify = Parse("postfix/verify",
                       "cache lmdb:/var/lib/postfix/verify_cache partial cleanup: retained=9 "
                       "dropped=1 entries");
  EXPECT_EQ(verify.kind, Kind::kStatistics);
  EXPECT_EQ(Parse("postfix/verify", "cache is warm").kind, Kind::kUnparsed);
}

// ---- the shared corpus ----

bool EndsWithColon(std::string_view word) {
  return word.size() > 2 && word.substr(word.size() - 2) == "]:";
}

// Splits "... program[pid]: message" well enough for this test: the program is the first
// token that ends with "]:" or "]" (a few lines lack the colon); the header parser proper
// lives in core/syslog_header.cc.
bool SplitLine(std::string_view line, std::string_view* program, std::string_view* message) {
  size_t pos = 0;
  for (int token = 0; token < 8 && pos < line.size(); ++token) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    std::string_view word = line.substr(pos, end - pos);
    bool colon = EndsWithColon(word);
    if (word.size() > 1 && (colon || word.back() == ']')) {
      std::string_view prog = colon ? word.substr(0, word.size() - 1) : word;
      size_t open = prog.find('[');
      if (open != std::string_view::npos) {
        *program = prog.substr(0, open);
        *message = end < line.size() ? line.substr(end + 1) : line.substr(line.size());
        return true;
      }
    }
    pos = end + 1;
  }
  return false;
}

bool IsOurDaemon(std::string_view daemon) {
  return daemon == "smtpd" || daemon == "postscreen" || daemon == "dnsblog" || daemon == "anvil" ||
         daemon == "tlsproxy" || daemon == "scache" || daemon == "verify";
}

TEST(CorpusTest, EveryOwnLineIsTyped) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  if (shared == nullptr || *shared == '\0') GTEST_FAIL() << "MAILLENS_SHARED_DIR not set";
  std::ifstream in(std::string(shared) + "/corpus/all_lines.txt", std::ios::binary);
  if (!in) GTEST_FAIL() << "corpus not found under " << shared;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  struct Counts {
    int total = 0;
    int typed = 0;
    int log_message = 0;
  };
  std::map<std::string, Counts> per_daemon;
  std::map<std::string, int> per_kind;
  std::vector<std::string> unparsed;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    std::string_view program;
    std::string_view message;
    if (!SplitLine(line, &program, &message)) continue;
    if (program.substr(0, 7) != "postfix") continue;
    size_t slash = program.rfind('/');
    if (slash == std::string_view::npos) continue;
    std::string_view daemon = program.substr(slash + 1);
    if (!IsOurDaemon(daemon)) continue;
    Event ev;
    ev.program = program;
    ev.daemon = daemon;
    ev.message = message;
    ParseMessage(&ev);
    Counts& c = per_daemon[std::string(daemon)];
    ++c.total;
    ++per_kind[std::string(KindName(ev.kind))];
    if (ev.kind == Kind::kUnparsed) {
      if (unparsed.size() < 30) unparsed.emplace_back(daemon.data(), line.end() - daemon.begin());
    } else {
      ++c.typed;
      if (ev.kind == Kind::kLogMessage) ++c.log_message;
    }
  }
  for (const auto& [daemon, c] : per_daemon) {
    std::printf("%-12s total %6d typed %6d (log_message %4d) unparsed %4d\n", daemon.c_str(),
                c.total, c.typed, c.log_message, c.total - c.typed);
  }
  for (const auto& [kind, n] : per_kind) std::printf("  %-22s %6d\n", kind.c_str(), n);
  for (const std::string& line : unparsed) std::printf("  unparsed: %s\n", line.c_str());

  // Floors from the corpus as of this writing; a parser change that loses lines fails here.
  EXPECT_GE(per_daemon["smtpd"].typed, 19280);
  EXPECT_GE(per_daemon["postscreen"].typed, 33835);
  EXPECT_GE(per_daemon["dnsblog"].typed, 14054);
  EXPECT_GE(per_daemon["anvil"].typed, 1686);
  EXPECT_GE(per_daemon["tlsproxy"].typed, 3328);
  EXPECT_GE(per_daemon["scache"].typed, 8);
}

}  // namespace
}  // namespace maillens::core
