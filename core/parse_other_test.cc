#include <memory>
#include <string>
#include <string_view>

#include "core/event.h"
#include "core/message_parser.h"
#include "core/message_test_util.h"
#include "core/parser.h"
#include "core/time_context.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

Event ParseOther(std::string_view program, std::string_view message) {
  return ParseForTest(program, message);
}

std::string G(const Event& ev, Field f) { return std::string(ev.Get(f)); }

// ---- Dovecot deliveries -------------------------------------------------------------------

TEST(ParseDovecotTest, LmtpSaved) {
  Event ev = ParseOther("dovecot",
                        "lmtp(dana@example.org)<4242><Pq7rS8tU9vWxYzAbCdEfGh>: "
                        "msgid=<m.1@sender.example>: saved mail to INBOX");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kUser), "dana@example.org");
  EXPECT_EQ(G(ev, Field::kMessageId), "m.1@sender.example");
  EXPECT_EQ(G(ev, Field::kMailbox), "INBOX");
  EXPECT_EQ(G(ev, Field::kStatus), "saved");
  EXPECT_EQ(G(ev, Field::kDetail), "lmtp");
  // The session ID names this delivery in Postfix's LMTP reply ("250 2.0.0 <rcpt> ID Saved").
  EXPECT_EQ(ev.queue_id, "Pq7rS8tU9vWxYzAbCdEfGh");
}

TEST(ParseDovecotTest, SieveStoredAndOlderSessionForm) {
  Event ev = ParseOther("dovecot",
                        "lmtp(eve@example.org)<77><Ab12Cd34Ef56Gh78Ij90Kl:2>: sieve: "
                        "msgid=<x-9@list.example>: stored mail into mailbox 'Lists/dev'");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kMailbox), "Lists/dev");
  EXPECT_EQ(ev.queue_id, "Ab12Cd34Ef56Gh78Ij90Kl:2");

  ev =
      ParseOther("dovecot",
                 "lmtp(eve@example.org): Zz11Yy22Xx33Ww44Vv55Uu: sieve: msgid=<x-10@list.example>: "
                 "stored mail into mailbox 'INBOX'");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(ev.queue_id, "Zz11Yy22Xx33Ww44Vv55Uu");
  EXPECT_EQ(G(ev, Field::kMessageId), "x-10@list.example");

  // Older Pigeonhole names the command first.
  ev = ParseOther("dovecot",
                  "lmtp(eve@example.org)<77><Ab12Cd34Ef56Gh78Ij90Kl:3>: Info: sieve: "
                  "msgid=<x-11@list.example>: fileinto action: stored mail into mailbox 'Junk'");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kMailbox), "Junk");
  EXPECT_EQ(G(ev, Field::kStatus), "saved");
  EXPECT_EQ(ev.queue_id, "Ab12Cd34Ef56Gh78Ij90Kl:3");

  ev = ParseOther("dovecot",
                  "lda(frank): sieve: msgid=<y@z.example>: stored mail into mailbox "
                  "'INBOX'");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kDetail), "lda");
  EXPECT_EQ(G(ev, Field::kUser), "frank");
  EXPECT_TRUE(ev.queue_id.empty());
}

TEST(ParseDovecotTest, FailedDelivery) {
  Event ev = ParseOther("dovecot",
                        "lda(gus)<9><Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8>: Error: msgid=<q@x.example>: save "
                        "failed to INBOX: Quota exceeded (mailbox for user is full)");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kStatus), "failed");
  EXPECT_EQ(G(ev, Field::kMailbox), "INBOX");
  EXPECT_EQ(G(ev, Field::kReason), "Quota exceeded (mailbox for user is full)");
}

TEST(ParseDovecotTest, SessionChatterStaysUnparsed) {
  EXPECT_EQ(ParseOther("dovecot", "lmtp(123): Connect from local").kind, Kind::kUnparsed);
  EXPECT_EQ(ParseOther("dovecot", "imap(hal)<1><Ab>: Logged out in=1 out=2").kind, Kind::kUnparsed);
  EXPECT_EQ(ParseOther("dovecot", "master: Warning: Killed with signal 15").kind, Kind::kUnparsed);
}

TEST(ParseDovecotTest, SieveActions) {
  Event ev = ParseOther("dovecot",
                        "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: sieve: "
                        "msgid=<s.1@example.net>: stored mail into mailbox 'Junk'");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kStatus), "saved");
  EXPECT_EQ(G(ev, Field::kAction), "store");
  EXPECT_EQ(G(ev, Field::kMailbox), "Junk");

  ev = ParseOther("dovecot",
                  "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A:2>: sieve: "
                  "msgid=<s.2@example.net>: marked message to be discarded if not explicitly "
                  "delivered (discard action)");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kStatus), "discarded");
  EXPECT_EQ(G(ev, Field::kAction), "discard");
  EXPECT_FALSE(ev.Has(Field::kMailbox));
  EXPECT_EQ(ev.queue_id, "Mn1Op2Qr3St4Uv5Wx6Yz7A:2");

  // Newer Pigeonhole capitalises its words.
  ev = ParseOther("dovecot",
                  "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: sieve: "
                  "msgid=<s.3@example.net>: Forwarded to <ivy@elsewhere.example>");
  EXPECT_EQ(G(ev, Field::kStatus), "redirected");
  EXPECT_EQ(G(ev, Field::kAction), "redirect");
  EXPECT_EQ(G(ev, Field::kTo), "ivy@elsewhere.example");

  ev = ParseOther("dovecot",
                  "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: sieve: "
                  "msgid=<s.4@example.net>: rejected message from <spam@bad.example> (reject)");
  EXPECT_EQ(G(ev, Field::kStatus), "rejected");
  EXPECT_EQ(G(ev, Field::kTo), "spam@bad.example");
  EXPECT_EQ(G(ev, Field::kReason), "reject");

  ev = ParseOther("dovecot",
                  "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: sieve: "
                  "msgid=<s.5@example.net>: sent vacation response to <bo@example.net>");
  EXPECT_EQ(G(ev, Field::kStatus), "replied");
  EXPECT_EQ(G(ev, Field::kAction), "vacation");
  EXPECT_EQ(G(ev, Field::kTo), "bo@example.net");

  ev = ParseOther("dovecot",
                  "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: Error: sieve: "
                  "msgid=<s.6@example.net>: failed to store into mailbox 'INBOX': Quota "
                  "exceeded (mailbox for user is full)");
  EXPECT_EQ(G(ev, Field::kStatus), "failed");
  EXPECT_EQ(G(ev, Field::kMailbox), "INBOX");
  EXPECT_EQ(G(ev, Field::kReason), "Quota exceeded (mailbox for user is full)");
}

TEST(ParseDovecotTest, ForgedMessageIdDoesNotChangeTheAction) {
  // The sender writes the Message-ID; Dovecot logs it as it is.
  Event ev = ParseOther("dovecot",
                        "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: msgid=<a>: saved "
                        "mail to Junk>: save failed to INBOX: Quota exceeded");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kMessageId), "a");  // the first reading that names an action
  ev = ParseOther("dovecot",
                  "lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: msgid=<x>: y@z>: saved "
                  "mail to INBOX");
  EXPECT_EQ(G(ev, Field::kMessageId), "x>: y@z");
  EXPECT_EQ(G(ev, Field::kMailbox), "INBOX");
}

TEST(ParseDovecotTest, UnknownUserAtRcpt) {
  // LMTP refuses a recipient its userdb does not know at RCPT: no session, no msgid, only
  // auth's lookup says so (Postfix's reply names it: "550 5.1.1 <r> User doesn't exist").
  Event ev = ParseOther("dovecot", "auth: passwd-file(ghost@example.org): unknown user");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kAction), "userdb");
  EXPECT_EQ(G(ev, Field::kUser), "ghost@example.org");
  EXPECT_EQ(G(ev, Field::kReason), "unknown user");
  EXPECT_FALSE(ev.Has(Field::kClientIp));
}

// Dovecot's own log file (log_path): no host field, its process as the program, its level.
class DovecotLogPathTest : public ::testing::Test {
 protected:
  Event Parse(std::string_view line) {
    TimeOptions options;
    options.year = 2026;
    time_ = std::make_unique<TimeContext>(options);
    return ParseLine(line, time_.get());
  }
  std::unique_ptr<TimeContext> time_;
};

TEST_F(DovecotLogPathTest, SavedMail) {
  Event ev = Parse(
      "Dec 07 16:03:07 lmtp(frank@example.test)<10802><GD/YKrvYFmsyKgAA0J78UA>: Info: "
      "msgid=<lab-160301-7@partner.test>: saved mail to INBOX");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_TRUE(ev.host.empty());
  EXPECT_EQ(ev.program, "lmtp");
  EXPECT_EQ(ev.daemon, "dovecot");
  EXPECT_EQ(ev.queue_id, "GD/YKrvYFmsyKgAA0J78UA");  // a '/' in the session is no daemon
  EXPECT_EQ(G(ev, Field::kUser), "frank@example.test");
  EXPECT_EQ(G(ev, Field::kMessageId), "lab-160301-7@partner.test");
  EXPECT_EQ(G(ev, Field::kMailbox), "INBOX");
  EXPECT_EQ(G(ev, Field::kStatus), "saved");

  ev = Parse(
      "Dec 07 16:03:07 lmtp(grace@example.test)<10802><SBC+JbvYFmsyKgAA0J78UA:R2>: Info: "
      "msgid=<20261207160305.010812@localhost>: saved mail to INBOX");
  EXPECT_EQ(ev.queue_id, "SBC+JbvYFmsyKgAA0J78UA:R2");
  // The stamp Dovecot's log_timestamp may also be given.
  ev = Parse(
      "2026-12-07 16:03:07 lmtp(g@example.test)<1><Ab1Cd2Ef3Gh4Ij5Kl6Mn7O>: Info: msgid=<m@x>: "
      "saved mail to INBOX");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
}

TEST_F(DovecotLogPathTest, SieveQuotaAndLevels) {
  Event ev = Parse(
      "Dec 07 16:03:07 lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: Info: sieve: "
      "msgid=<s.1@example.net>: stored mail into mailbox 'Junk'");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kAction), "store");
  EXPECT_EQ(G(ev, Field::kMailbox), "Junk");

  ev = Parse(
      "Dec 07 16:03:07 lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: Info: sieve: "
      "msgid=<s.2@example.net>: marked message to be discarded if not explicitly delivered "
      "(discard action)");
  EXPECT_EQ(G(ev, Field::kStatus), "discarded");

  ev = Parse(
      "Dec 07 16:03:07 lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: Info: sieve: "
      "msgid=<s.3@example.net>: forwarded to <ivy@elsewhere.example>");
  EXPECT_EQ(G(ev, Field::kStatus), "redirected");
  EXPECT_EQ(G(ev, Field::kTo), "ivy@elsewhere.example");

  ev = Parse(
      "Dec 07 16:03:07 lmtp(ivy@example.org)<31><Mn1Op2Qr3St4Uv5Wx6Yz7A>: Error: "
      "msgid=<q@x.example>: save failed to INBOX: Quota exceeded (mailbox for user is full)");
  EXPECT_EQ(ev.kind, Kind::kDovecotDelivery);
  EXPECT_EQ(G(ev, Field::kStatus), "failed");
  EXPECT_EQ(G(ev, Field::kReason), "Quota exceeded (mailbox for user is full)");

  ev = Parse("Dec 07 16:03:05 auth: Info: passwd-file(ghost@example.test): unknown user");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kAction), "userdb");
  EXPECT_EQ(G(ev, Field::kUser), "ghost@example.test");

  ev = Parse("Dec 07 16:03:04 lmtp(10802): Info: Connect from local");
  EXPECT_EQ(ev.kind, Kind::kUnparsed);
  EXPECT_EQ(ev.program, "lmtp");

  // As through syslog ("dovecot: master: Error: ..."): Dovecot's level is no Postfix warning.
  ev = Parse("Dec 07 16:03:04 master: Error: service(lmtp): command startup failed");
  EXPECT_EQ(ev.kind, Kind::kUnparsed);
  EXPECT_EQ(ev.program, "master");

  ev = Parse(
      "Dec 07 16:03:04 imap-login: Info: Login: user=<ivy@example.org>, method=PLAIN, "
      "rip=203.0.113.9, lip=192.0.2.1, mpid=4, TLS, session=<Ab>");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kClientIp), "203.0.113.9");
}

TEST_F(DovecotLogPathTest, OtherHostlessLinesAreNotDovecots) {
  // A syslog line without a host field stays what it was.
  Event ev = Parse("Dec 07 16:03:04 postfix/smtpd[1]: connect from unknown[203.0.113.9]");
  EXPECT_EQ(ev.kind, Kind::kConnect);
  // A level word alone does not make a program Dovecot's.
  ev = Parse("Dec 07 16:03:04 myapp: Info: msgid=<m@x>: saved mail to INBOX");
  EXPECT_EQ(ev.kind, Kind::kUnparsed);
  // Nor does a Dovecot name with a host field (a syslog line of a program called "lmtp").
  ev = Parse("Dec 07 16:03:04 mx lmtp(u)<1><s>: Info: msgid=<m@x>: saved mail to INBOX");
  EXPECT_NE(ev.kind, Kind::kDovecotDelivery);
}

// ---- Dovecot logins and auth --------------------------------------------------------------

TEST(ParseDovecotTest, LoginSuccess) {
  Event ev = ParseOther("dovecot",
                        "imap-login: Login: user=<ivy@example.org>, method=PLAIN, "
                        "rip=198.51.100.30, lip=192.0.2.10, mpid=5151, TLS, session=<AbCdEf>");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kAction), "login");
  EXPECT_EQ(G(ev, Field::kDetail), "imap-login");
  EXPECT_EQ(G(ev, Field::kUser), "ivy@example.org");
  EXPECT_EQ(G(ev, Field::kSaslMethod), "PLAIN");
  EXPECT_EQ(G(ev, Field::kClientIp), "198.51.100.30");
  EXPECT_FALSE(ev.Has(Field::kReason));
}

TEST(ParseDovecotTest, LoginFailures) {
  Event ev = ParseOther("dovecot",
                        "pop3-login: Disconnected (auth failed, 3 attempts in 12 secs): "
                        "user=<jo>, method=LOGIN, rip=203.0.113.31, lip=192.0.2.10, TLS");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kAction), "disconnect");
  EXPECT_EQ(G(ev, Field::kReason), "Disconnected (auth failed, 3 attempts in 12 secs)");
  EXPECT_EQ(G(ev, Field::kUser), "jo");
  EXPECT_EQ(G(ev, Field::kClientIp), "203.0.113.31");

  ev = ParseOther("dovecot",
                  "imap-login: Info: Disconnected: Connection closed: read(size=7) failed: "
                  "Connection reset by peer (auth failed, 1 attempts in 0 secs): user=<kai>, "
                  "rip=203.0.113.32, lip=192.0.2.10, session=<x>");
  EXPECT_EQ(G(ev, Field::kReason),
            "Disconnected: Connection closed: read(size=7) failed: Connection reset by peer "
            "(auth failed, 1 attempts in 0 secs)");
  EXPECT_EQ(G(ev, Field::kUser), "kai");

  ev = ParseOther("dovecot",
                  "pop3-login: Aborted login (no auth attempts): rip=203.0.113.33, "
                  "lip=192.0.2.10");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_FALSE(ev.Has(Field::kUser));
  EXPECT_EQ(G(ev, Field::kClientIp), "203.0.113.33");

  ev = ParseOther("dovecot",
                  "imap-login: Disconnected (no auth attempts): user=<>, "
                  "rip=203.0.113.34, lip=192.0.2.10");
  EXPECT_TRUE(ev.Has(Field::kUser));
  EXPECT_EQ(G(ev, Field::kUser), "");

  EXPECT_EQ(ParseOther("dovecot", "imap-login: Disconnected: x: y: no keys here").kind,
            Kind::kUnparsed);
}

TEST(ParseDovecotTest, PassdbResults) {
  Event ev = ParseOther("dovecot", "auth-worker(2121): pam(lee,203.0.113.40): unknown user");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kAction), "passdb");
  EXPECT_EQ(G(ev, Field::kDetail), "pam");
  EXPECT_EQ(G(ev, Field::kUser), "lee");
  EXPECT_EQ(G(ev, Field::kClientIp), "203.0.113.40");
  EXPECT_EQ(G(ev, Field::kReason), "unknown user");

  ev =
      ParseOther("dovecot", "auth: sql(mo@example.org,2001:db8::41,<SeSsIoN1>): Password mismatch");
  EXPECT_EQ(G(ev, Field::kDetail), "sql");
  EXPECT_EQ(G(ev, Field::kUser), "mo@example.org");
  EXPECT_EQ(G(ev, Field::kClientIp), "2001:db8::41");
  EXPECT_EQ(G(ev, Field::kReason), "Password mismatch");

  ev = ParseOther("dovecot",
                  "auth-worker(9): Info: conn unix:auth-worker (pid=1,uid=2): auth-worker<3>: "
                  "passwd-file(ned,203.0.113.42): unknown user (SHA1 of given password: 0a1b2c)");
  EXPECT_EQ(G(ev, Field::kDetail), "passwd-file");
  EXPECT_EQ(G(ev, Field::kUser), "ned");
  EXPECT_EQ(G(ev, Field::kReason), "unknown user (SHA1 of given password: 0a1b2c)");

  ev = ParseOther("dovecot",
                  "dovecot: auth(default): ldap(ola,203.0.113.43,): invalid "
                  "credentials");
  EXPECT_EQ(G(ev, Field::kDetail), "ldap");
  EXPECT_EQ(G(ev, Field::kClientIp), "203.0.113.43");

  ev = ParseOther("dovecot-auth",
                  "pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 "
                  "tty=dovecot ruser=pat rhost=203.0.113.44  user=pat");
  EXPECT_EQ(ev.kind, Kind::kDovecotAuth);
  EXPECT_EQ(G(ev, Field::kDetail), "pam_unix");
  EXPECT_EQ(G(ev, Field::kClientIp), "203.0.113.44");
  EXPECT_EQ(G(ev, Field::kUser), "pat");
  EXPECT_EQ(G(ev, Field::kReason), "authentication failure");
}

// ---- amavis -------------------------------------------------------------------------------

TEST(ParseAmavisTest, PassedClean) {
  Event ev = ParseOther("amavis",
                        "(12345-07) Passed CLEAN {RelayedInbound}, [198.51.100.50]:40404 "
                        "[198.51.100.51] <news@sender.example> -> <rita@example.org>,<sam@example."
                        "org>, Queue-ID: 4C3B2A1F0E, Message-ID: <n-77@sender.example>, mail_id: "
                        "aBcDeFgHiJkL, Hits: -1.9, size: 5120, queued_as: 0E1F2A3B4C, 812 ms");
  EXPECT_EQ(ev.kind, Kind::kAmavis);
  EXPECT_EQ(G(ev, Field::kAction), "Passed");
  EXPECT_EQ(G(ev, Field::kDetail), "CLEAN");
  EXPECT_EQ(G(ev, Field::kClientIp), "198.51.100.50");
  EXPECT_EQ(G(ev, Field::kClientPort), "40404");
  EXPECT_EQ(G(ev, Field::kFrom), "news@sender.example");
  EXPECT_EQ(G(ev, Field::kTo), "rita@example.org");
  EXPECT_EQ(G(ev, Field::kMessageId), "n-77@sender.example");
  EXPECT_EQ(G(ev, Field::kSize), "5120");
  EXPECT_EQ(ev.queue_id, "4C3B2A1F0E");
  EXPECT_EQ(ev.queue_id_form, QueueIdForm::kShort);
  EXPECT_EQ(ev.queued_as, "0E1F2A3B4C");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kAmavis);
}

TEST(ParseAmavisTest, BlockedAndNullSender) {
  Event ev = ParseOther("amavis",
                        "(2-1) Blocked INFECTED (Eicar-Signature) {DiscardedInbound,Quarantined}, "
                        "[203.0.113.60]:5555 [203.0.113.60] <> -> <tom@example.org>, quarantine: "
                        "virus-Xy, Queue-ID: 3vW4xY5zB6z7Cd8, Message-ID: <v@x.example>, "
                        "mail_id: Xy, Hits: -, size: 900, 40 ms");
  EXPECT_EQ(ev.kind, Kind::kAmavis);
  EXPECT_EQ(G(ev, Field::kAction), "Blocked");
  EXPECT_EQ(G(ev, Field::kDetail), "INFECTED");
  EXPECT_EQ(G(ev, Field::kReason), "Eicar-Signature");
  EXPECT_TRUE(ev.Has(Field::kFrom));
  EXPECT_EQ(G(ev, Field::kFrom), "");
  EXPECT_EQ(ev.queue_id, "3vW4xY5zB6z7Cd8");
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kNone);
}

TEST(ParseAmavisTest, SubjectCannotFakeFields) {
  Event ev = ParseOther("amavis",
                        "(3-1) Passed SPAM {RelayedTaggedInbound}, ORIGINATING LOCAL [127.0.0.1] "
                        "/ESMTP <a@x.example> -> <b@example.org>, (), Message-ID: <s@x.example>, "
                        "mail_id: Q, Hits: 9.1, size: 77, queued_as: 1A2B3C4D5E, Subject: \"x, "
                        "Queue-ID: FFFFFFFFFF, queued_as: 0000000000\", 5 ms");
  EXPECT_EQ(ev.kind, Kind::kAmavis);
  // Not the Subject's Queue-ID: without one of its own the line belongs to its re-injection.
  EXPECT_EQ(ev.queue_id, "1A2B3C4D5E");
  EXPECT_EQ(ev.queued_as, "1A2B3C4D5E");
  EXPECT_EQ(G(ev, Field::kClientIp), "127.0.0.1");
  EXPECT_FALSE(ev.Has(Field::kClientPort));
}

// amavis omits Queue-ID for some locally submitted mail. Such a line is a fact of the message
// it re-injected (queued_as), not a line of no message that search would count on its own.
TEST(ParseAmavisTest, LineWithoutQueueIdBelongsToTheMessageItReinjected) {
  Event ev = ParseOther("amavis",
                        "(5-2) Passed CLEAN {RelayedInternal}, ORIGINATING LOCAL [127.0.0.1] "
                        "/ESMTP <root@host.example.org> -> <root@host.example.org>, (), "
                        "Message-ID: <4Rt7Kp2Vwxz9Fgh@host.example.org>, mail_id: Zq, Hits: -, "
                        "size: 1200, queued_as: 4Rt7Kq0Mnbz9Fgk, 140 ms");
  EXPECT_EQ(ev.kind, Kind::kAmavis);
  EXPECT_EQ(ev.queue_id, "4Rt7Kq0Mnbz9Fgk");
  EXPECT_EQ(ev.queue_id_form, QueueIdForm::kLong);
  EXPECT_EQ(ev.queued_as_form, NextHopForm::kAmavis);

  // Neither a Queue-ID nor a re-injection: no message to name.
  ev = ParseOther("amavis",
                  "(5-3) Blocked SPAM {DiscardedInbound}, ORIGINATING LOCAL [127.0.0.1] /ESMTP "
                  "<a@x.example> -> <b@example.org>, (), Message-ID: <q@x.example>, mail_id: "
                  "Zr, Hits: 30, size: 77, 9 ms");
  EXPECT_EQ(ev.kind, Kind::kAmavis);
  EXPECT_TRUE(ev.queue_id.empty());
  EXPECT_EQ(ev.queue_id_form, QueueIdForm::kNone);
}

TEST(ParseAmavisTest, OtherAmavisLinesStayUnparsed) {
  EXPECT_EQ(ParseOther("amavis", "(4-1) p001 1 Content-Type: text/plain, size: 10").kind,
            Kind::kUnparsed);
  EXPECT_EQ(ParseOther("amavis", "(4-1) Passed,").kind, Kind::kUnparsed);
  EXPECT_EQ(ParseOther("amavis", "(4-1").kind, Kind::kUnparsed);
}

}  // namespace
}  // namespace maillens::core
