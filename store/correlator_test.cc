// What the correlator makes of a message's lines, through the store as the CLI reads it:
// which lines make a message, how a message ends, each recipient's outcome, how a trace is
// found. (store_test.cc covers storage and the hop links themselves.)
#include "store/correlator.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/message_search.h"
#include "store/sqlite.h"
#include "store/store.h"
#include "store/test_lines.h"

namespace maillens::store {
namespace {

using ::testing::UnorderedElementsAre;

constexpr int64_t kNoon = 1700049600LL * 1000000;  // 2023-11-15 12:00:00 UTC
constexpr int64_t kSecond = 1000000;

class CorrelatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("maillens_correlator_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    Fresh();
  }
  // An empty store in place of the one there was.
  void Fresh() {
    store_.reset();
    std::filesystem::remove_all(dir_);
    StoreOptions options;
    options.dir = dir_.string();
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Stores the lines of one file of `host`, one second apart from `start_us` (the stamps in
  // the lines are for the reader; the store takes the time given here).
  void Append(const std::string& host, uint64_t fingerprint, int64_t start_us,
              const std::vector<std::string>& raws) {
    const std::vector<LineRecord> records = FileLines(host, fingerprint, start_us, raws);
    auto stats = store_->Append(records);
    ASSERT_TRUE(stats.ok()) << stats.status();
    ASSERT_EQ(stats->stored, raws.size());
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

// A link merges two traces in the catalog while the correlator holds the instances in its
// cache: what it reads back must be the catalog's trace, or a store that reads what it has
// just written (the collector, a search after an Append) shows one message as two.
TEST_F(CorrelatorTest, InstanceReadAfterItsTraceWasMergedNamesTheMergedTrace) {
  Append(
      "dmz", 1, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[1]: 4F1A2B3C4D: client=a.partner.example[198.51.100.2]",
       "Nov 15 12:00:01 dmz postfix/qmgr[2]: 4F1A2B3C4D: from=<carol@partner.example>, "
       "size=900, nrcpt=1 (queue active)",
       "Nov 15 12:00:02 dmz postfix/smtp[3]: 4F1A2B3C4D: to=<bob@example.test>, "
       "relay=mx.example.test[192.0.2.3]:25, delay=2, delays=1/0/0.5/0.5, dsn=2.0.0, "
       "status=sent (250 2.0.0 Ok: queued as 9E8D7C6B5A)",
       "Nov 15 12:00:03 dmz postfix/qmgr[2]: 4F1A2B3C4D: removed"});
  Append("mx", 2, kNoon + kSecond,
         {"Nov 15 12:00:01 mx postfix/smtpd[4]: 9E8D7C6B5A: client=dmz.example.test[192.0.2.2]",
          "Nov 15 12:00:02 mx postfix/qmgr[5]: 9E8D7C6B5A: from=<carol@partner.example>, "
          "size=1000, nrcpt=1 (queue active)",
          "Nov 15 12:00:03 mx postfix/local[6]: 9E8D7C6B5A: to=<bob@example.test>, relay=local, "
          "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)",
          "Nov 15 12:00:04 mx postfix/qmgr[5]: 9E8D7C6B5A: removed"});
  auto trace = store_->GetTrace("4F1A2B3C4D");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->messages.size(), 2u);
  for (const MessageInfo& m : trace->messages) EXPECT_EQ(m.trace_id, trace->id) << m.queue_id;
  auto mx = store_->MessageAt("mx", "9E8D7C6B5A", kNoon + 2 * kSecond);
  ASSERT_TRUE(mx.ok()) << mx.status();
  ASSERT_TRUE(mx->has_value());
  EXPECT_EQ((*mx)->message.trace_id, trace->id);
  SearchQuery q;
  q.from = "carol@partner.example";
  auto answer = SearchMessages(store_.get(), q, /*with_traces=*/false);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->result.total, 1u);
}

// amavis leaves Queue-ID out for some locally submitted mail (6 lines of a real day in the
// corpus). Such a line is a fact of the message it re-injected: search counts the message
// once, with the amavis line among its lines, not the line again as a message of its own.
TEST_F(CorrelatorTest, AmavisLineWithoutQueueIdIsNoMessageOfItsOwn) {
  Append("helga", 1, kNoon,
         {"Nov 15 12:00:00 helga postfix/pickup[1]: 4Rt7Kp2Vwxz9Fgh: uid=0 from=<root>",
          "Nov 15 12:00:01 helga postfix/cleanup[2]: 4Rt7Kp2Vwxz9Fgh: "
          "message-id=<4Rt7Kp2Vwxz9Fgh@host.example.org>",
          "Nov 15 12:00:02 helga postfix/qmgr[3]: 4Rt7Kp2Vwxz9Fgh: from=<root@host.example.org>, "
          "size=900, nrcpt=1 (queue active)",
          "Nov 15 12:00:03 helga postfix/10025/smtpd[4]: 4Rt7Kq0Mnbz9Fgk: "
          "client=localhost[127.0.0.1]",
          "Nov 15 12:00:04 helga postfix/cleanup[2]: 4Rt7Kq0Mnbz9Fgk: "
          "message-id=<4Rt7Kp2Vwxz9Fgh@host.example.org>",
          "Nov 15 12:00:05 helga postfix/qmgr[3]: 4Rt7Kq0Mnbz9Fgk: from=<root@host.example.org>, "
          "size=1000, nrcpt=1 (queue active)",
          "Nov 15 12:00:06 helga amavis[5]: (5-2) Passed CLEAN {RelayedInternal}, ORIGINATING "
          "LOCAL [127.0.0.1] /ESMTP <root@host.example.org> -> <root@host.example.org>, (), "
          "Message-ID: <4Rt7Kp2Vwxz9Fgh@host.example.org>, mail_id: Zq, Hits: -, size: 900, "
          "queued_as: 4Rt7Kq0Mnbz9Fgk, 140 ms",
          "Nov 15 12:00:07 helga postfix/local[6]: 4Rt7Kq0Mnbz9Fgk: to=<root@host.example.org>, "
          "relay=local, delay=4, delays=0/0/0/4, dsn=2.0.0, status=sent (delivered to mailbox)",
          "Nov 15 12:00:08 helga postfix/qmgr[3]: 4Rt7Kq0Mnbz9Fgk: removed",
          "Nov 15 12:00:09 helga postfix/amavis/smtp[7]: 4Rt7Kp2Vwxz9Fgh: "
          "to=<root@host.example.org>, orig_to=<root>, relay=127.0.0.1[127.0.0.1]:10024, "
          "delay=9, delays=2/0/0/7, dsn=2.0.0, status=sent (250 2.0.0 from "
          "MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 4Rt7Kq0Mnbz9Fgk)",
          "Nov 15 12:00:10 helga postfix/qmgr[3]: 4Rt7Kp2Vwxz9Fgh: removed"});
  SearchQuery by_sender, by_word, everything;
  by_sender.from = "root@host.example.org";
  by_word.words = {"CLEAN"};
  for (const SearchQuery& q : {by_sender, by_word, everything}) {
    auto answer = SearchMessages(store_.get(), q, /*with_traces=*/false);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->result.total, 1u) << q.from << q.words.size();
    for (size_t i = 0; i < answer->result.lines.size(); ++i) {
      EXPECT_NE(answer->trace_ids[i], 0) << "a line of no message: " << answer->result.lines[i].raw;
    }
  }
}

// smtpd refuses a whole message after its queue ID was assigned: its end-of-data
// restrictions, a before-queue filter (proxy-reject), a milter, or its DATA restrictions.
// smtpd drops the queue file and nothing logs `removed`: the refusal is the message's last
// line. The message ends there (not "still queued"), rejected, with the sender and the
// recipient the line names; a refusal at RCPT refuses only its recipient.
TEST_F(CorrelatorTest, SmtpdRefusalAtEndOfDataEndsTheMessage) {
  Append("mx", 1, kNoon,
         {"Nov 15 12:00:00 mx postfix/smtpd[11]: 1A1A1A1A1A: client=a[192.0.2.1]",
          "Nov 15 12:00:01 mx postfix/smtpd[11]: 1A1A1A1A1A: milter-reject: END-OF-MESSAGE from "
          "a[192.0.2.1]: 5.7.1 Spam message rejected; from=<ann@a.test> to=<bob@example.test> "
          "proto=ESMTP helo=<a>",
          "Nov 15 12:00:02 mx postfix/smtpd[12]: 2B2B2B2B2B: client=b[192.0.2.2]",
          "Nov 15 12:00:03 mx postfix/smtpd[12]: 2B2B2B2B2B: reject: END-OF-MESSAGE from "
          "b[192.0.2.2]: 552 5.3.4 Message too big for this recipient; from=<cy@b.test> "
          "to=<dee@example.test> proto=ESMTP helo=<b>",
          "Nov 15 12:00:04 mx postfix/smtpd[13]: 3C3C3C3C3C: client=c[192.0.2.3]",
          "Nov 15 12:00:05 mx postfix/smtpd[13]: 3C3C3C3C3C: proxy-reject: END-OF-MESSAGE: 554 "
          "5.7.0 Rejected by the filter; from=<eve@c.test> to=<fay@example.test> proto=ESMTP "
          "helo=<c>",
          "Nov 15 12:00:06 mx postfix/smtpd[14]: 4D4D4D4D4D: client=d[192.0.2.4]",
          "Nov 15 12:00:07 mx postfix/smtpd[14]: 4D4D4D4D4D: reject: DATA from d[192.0.2.4]: 550 "
          "5.7.1 <DATA>: Data command rejected: no thanks; from=<gus@d.test> to=<hal@example.test> "
          "proto=ESMTP helo=<d>",
          "Nov 15 12:00:08 mx postfix/smtpd[15]: 5E5E5E5E5E: client=e[192.0.2.5]",
          "Nov 15 12:00:09 mx postfix/smtpd[15]: 5E5E5E5E5E: reject: RCPT from e[192.0.2.5]: 550 "
          "5.1.1 <nobody@example.test>: Recipient address rejected: unknown; from=<ivy@e.test> "
          "to=<nobody@example.test> proto=ESMTP helo=<e>",
          // The first message's queue ID again: a new message, not a line of the refused one.
          "Nov 15 12:00:10 mx postfix/smtpd[16]: 1A1A1A1A1A: client=f[192.0.2.6]",
          "Nov 15 12:00:11 mx postfix/qmgr[17]: 1A1A1A1A1A: from=<jo@f.test>, size=9, nrcpt=1 "
          "(queue active)"});
  struct Want {
    const char* queue_id;
    int64_t at;
    const char* sender;
    const char* recipient;
    const char* reason;
  };
  for (const Want& w :
       {Want{"1A1A1A1A1A", 1, "ann@a.test", "bob@example.test", "Spam message rejected"},
        Want{"2B2B2B2B2B", 3, "cy@b.test", "dee@example.test",
             "Message too big for this recipient"},
        Want{"3C3C3C3C3C", 5, "eve@c.test", "fay@example.test", "Rejected by the filter"},
        Want{"4D4D4D4D4D", 7, "gus@d.test", "hal@example.test",
             "Data command rejected: no thanks"}}) {
    auto view = store_->MessageAt("mx", w.queue_id, kNoon + w.at * kSecond);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_TRUE(view->has_value()) << w.queue_id;
    const MessageInfo& m = (*view)->message;
    EXPECT_EQ(m.disposition, "rejected") << w.queue_id;
    ASSERT_TRUE(m.end_us.has_value()) << w.queue_id << ": refused, not \"still queued\"";
    EXPECT_EQ(*m.end_us, kNoon + w.at * kSecond) << w.queue_id;
    EXPECT_TRUE(m.has_sender) << w.queue_id;
    EXPECT_EQ(m.sender, w.sender) << w.queue_id;
    ASSERT_EQ((*view)->recipients.size(), 1u) << w.queue_id;
    EXPECT_EQ((*view)->recipients[0].recipient, w.recipient) << w.queue_id;
    EXPECT_EQ((*view)->recipients[0].status, "rejected") << w.queue_id;
    EXPECT_EQ((*view)->recipients[0].reply, w.reason) << w.queue_id;
  }
  auto rcpt = store_->MessageAt("mx", "5E5E5E5E5E", kNoon + 9 * kSecond);
  ASSERT_TRUE(rcpt.ok()) << rcpt.status();
  ASSERT_TRUE(rcpt->has_value());
  EXPECT_FALSE((*rcpt)->message.end_us.has_value()) << "one recipient refused at RCPT";
  EXPECT_EQ((*rcpt)->message.disposition, "");
  auto again = store_->MessageAt("mx", "1A1A1A1A1A", kNoon + 11 * kSecond);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->message.first_us, kNoon + 10 * kSecond);
  EXPECT_EQ((*again)->message.sender, "jo@f.test");
  EXPECT_EQ((*again)->message.disposition, "");
}

// The lab's multi-recipient message: the dmz relays it to mx, which refuses one recipient at
// RCPT; the dmz logs that recipient status=bounced (and sends the notice), the others sent.
// The recipient's outcome is the dmz's bounce, not mx's refusal, although mx is further along
// the hops -- in either order of import. A refusal of a client that is not one of our hosts
// stays the recipient's outcome.
TEST_F(CorrelatorTest, RecipientOurNextHopRefusedIsTheSendersBounce) {
  const std::vector<std::string> dmz = {
      "Nov 15 12:00:00 dmz postfix/smtpd[1]: 06EDCA8675: client=out.partner.test[198.51.100.10]",
      "Nov 15 12:00:01 dmz postfix/qmgr[2]: 06EDCA8675: from=<alice@partner.test>, size=1168, "
      "nrcpt=2 (queue active)",
      "Nov 15 12:00:02 dmz postfix/relay/smtp[3]: 06EDCA8675: to=<nosuch@example.test>, "
      "relay=mx.example.test[192.0.2.3]:25, delay=0.07, delays=0.01/0/0.05/0.01, dsn=5.1.1, "
      "status=bounced (host mx.example.test[192.0.2.3] said: 550 5.1.1 <nosuch@example.test>: "
      "Recipient address rejected: User unknown (in reply to RCPT TO command))",
      "Nov 15 12:00:03 dmz postfix/relay/smtp[3]: 06EDCA8675: to=<bob@example.test>, "
      "relay=mx.example.test[192.0.2.3]:25, delay=0.07, delays=0.01/0/0.05/0.01, dsn=2.0.0, "
      "status=sent (250 2.0.0 Ok: queued as 15E0FA8675)",
      "Nov 15 12:00:04 dmz postfix/bounce[4]: 06EDCA8675: sender non-delivery notification: "
      "17962A8675",
      "Nov 15 12:00:05 dmz postfix/qmgr[2]: 06EDCA8675: removed"};
  const std::vector<std::string> mx = {
      "Nov 15 12:00:02 mx postfix/smtpd[5]: 15E0FA8675: client=dmz.example.test[192.0.2.2]",
      "Nov 15 12:00:03 mx postfix/smtpd[5]: 15E0FA8675: reject: RCPT from "
      "dmz.example.test[192.0.2.2]: 550 5.1.1 <nosuch@example.test>: Recipient address "
      "rejected: User unknown; from=<alice@partner.test> to=<nosuch@example.test> proto=ESMTP "
      "helo=<dmz.example.test>",
      "Nov 15 12:00:04 mx postfix/qmgr[6]: 15E0FA8675: from=<alice@partner.test>, size=1495, "
      "nrcpt=1 (queue active)",
      "Nov 15 12:00:05 mx postfix/local[7]: 15E0FA8675: to=<bob@example.test>, relay=local, "
      "delay=0.02, delays=0.01/0.01/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
      "Nov 15 12:00:06 mx postfix/qmgr[6]: 15E0FA8675: removed",
      // A client that is not one of our hosts: mx's refusal is the only word on carl.
      "Nov 15 12:00:07 mx postfix/smtpd[8]: 2A3B4C5D6E: client=out.other.test[203.0.113.7]",
      "Nov 15 12:00:08 mx postfix/smtpd[8]: 2A3B4C5D6E: reject: RCPT from "
      "out.other.test[203.0.113.7]: 550 5.1.1 <carl@example.test>: Recipient address "
      "rejected: User unknown; from=<dan@other.test> to=<carl@example.test> proto=ESMTP "
      "helo=<out.other.test>",
      "Nov 15 12:00:09 mx postfix/qmgr[6]: 2A3B4C5D6E: from=<dan@other.test>, size=900, "
      "nrcpt=1 (queue active)",
      "Nov 15 12:00:10 mx postfix/local[7]: 2A3B4C5D6E: to=<bob@example.test>, relay=local, "
      "delay=0.02, delays=0.01/0.01/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
      "Nov 15 12:00:11 mx postfix/qmgr[6]: 2A3B4C5D6E: removed"};
  for (bool mx_first : {false, true}) {
    SCOPED_TRACE(mx_first ? "mx imported first" : "dmz imported first");
    Fresh();
    if (mx_first) Append("mx", 2, kNoon + 2 * kSecond, mx);
    Append("dmz", 1, kNoon, dmz);
    if (!mx_first) Append("mx", 2, kNoon + 2 * kSecond, mx);
    auto trace = store_->GetTrace("06EDCA8675");
    ASSERT_TRUE(trace.ok()) << trace.status();
    ASSERT_EQ(trace->messages.size(), 2u) << "dmz and mx";
    std::vector<std::string> rows;
    for (const RecipientInfo& r : trace->recipients) {
      for (const MessageInfo& m : trace->messages) {
        if (m.id == r.message) rows.push_back(m.host + ":" + r.recipient + "=" + r.status);
      }
    }
    EXPECT_THAT(rows,
                UnorderedElementsAre("dmz:nosuch@example.test=bounced", "dmz:bob@example.test=sent",
                                     "mx:bob@example.test=sent"));
    auto other = store_->GetTrace("2A3B4C5D6E");
    ASSERT_TRUE(other.ok()) << other.status();
    std::vector<std::string> statuses;
    for (const RecipientInfo& r : other->recipients) {
      statuses.push_back(r.recipient + "=" + r.status);
    }
    EXPECT_THAT(statuses,
                UnorderedElementsAre("carl@example.test=rejected", "bob@example.test=sent"));
  }
}

// Dovecot's lines are the journey's last step: linked to the LMTP hop by the session ID its
// reply names (the Message-ID confirming), or, for a failure whose reply names none, by the
// Message-ID and the recipient as the user on the same host. Read when the trace is, so the
// Dovecot log may come before or after Postfix's.
TEST_F(CorrelatorTest, DovecotDeliveriesAreTheMailboxStepInEitherOrder) {
  const std::string relay = "relay=mx.example.test[private/dovecot-lmtp], delay=0.1, ";
  const std::vector<std::pair<int64_t, std::string>> postfix = {
      {0, "Nov 15 12:00:00 mx postfix/smtpd[1]: 3F1A2B3C4D: client=dmz.example.test[192.0.2.2]"},
      {0, "Nov 15 12:00:00 mx postfix/cleanup[2]: 3F1A2B3C4D: message-id=<m1@partner.test>"},
      {1,
       "Nov 15 12:00:01 mx postfix/qmgr[3]: 3F1A2B3C4D: from=<alice@partner.test>, size=900, "
       "nrcpt=4 (queue active)"},
      {2, "Nov 15 12:00:02 mx postfix/lmtp[4]: 3F1A2B3C4D: to=<bob@example.test>, " + relay +
              "delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.test> "
              "xQkb+NbjYFms/KgAA0J78UA Saved)"},
      {2, "Nov 15 12:00:02 mx postfix/lmtp[4]: 3F1A2B3C4D: to=<carol+lists@example.test>, " +
              relay +
              "delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <carol+lists@example.test> "
              "xQkb+NbjYFms/KgAA0J78UA:R2 Saved)"},
      {3, "Nov 15 12:00:03 mx postfix/lmtp[4]: 3F1A2B3C4D: to=<dave@example.test>, " + relay +
              "delays=0/0/0/0.1, dsn=5.2.2, status=bounced (host "
              "mx.example.test[private/dovecot-lmtp] said: 552 5.2.2 <dave@example.test> Quota "
              "exceeded (mailbox for user is full) (in reply to end of DATA command))"},
      {3, "Nov 15 12:00:03 mx postfix/lmtp[4]: 3F1A2B3C4D: to=<ghost@example.test>, " + relay +
              "delays=0/0/0/0.1, dsn=5.1.1, status=bounced (host "
              "mx.example.test[private/dovecot-lmtp] said: 550 5.1.1 <ghost@example.test> User "
              "doesn't exist: ghost@example.test (in reply to RCPT TO command))"},
      {4, "Nov 15 12:00:04 mx postfix/qmgr[3]: 3F1A2B3C4D: removed"},
      // Another mail whose reply names a session that Dovecot logged for another Message-ID.
      {5, "Nov 15 12:00:05 mx postfix/pickup[5]: 4B2C3D4E5F: uid=0 from=<root>"},
      {5, "Nov 15 12:00:05 mx postfix/cleanup[2]: 4B2C3D4E5F: message-id=<m2@mx.example.test>"},
      {5,
       "Nov 15 12:00:05 mx postfix/qmgr[3]: 4B2C3D4E5F: from=<root@mx.example.test>, "
       "size=500, nrcpt=1 (queue active)"},
      {6, "Nov 15 12:00:06 mx postfix/lmtp[4]: 4B2C3D4E5F: to=<bob@example.test>, " + relay +
              "delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.test> "
              "Zz9Yy8Xx7Ww6Vv5Uu4Tt3S Saved)"},
      {7, "Nov 15 12:00:07 mx postfix/qmgr[3]: 4B2C3D4E5F: removed"}};
  // Dovecot's own log file: no host field (imported under --host mx).
  const std::vector<std::pair<int64_t, std::string>> dovecot = {
      {2,
       "Nov 15 12:00:02 lmtp(bob@example.test)<10802><xQkb+NbjYFms/KgAA0J78UA>: Info: "
       "msgid=<m1@partner.test>: saved mail to INBOX"},
      {2,
       "Nov 15 12:00:02 lmtp(carol@example.test)<10802><xQkb+NbjYFms/KgAA0J78UA:R2>: Info: "
       "sieve: msgid=<m1@partner.test>: forwarded to <carol@elsewhere.test>"},
      {2,
       "Nov 15 12:00:02 lmtp(carol@example.test)<10802><xQkb+NbjYFms/KgAA0J78UA:R2>: Info: "
       "sieve: msgid=<m1@partner.test>: stored mail into mailbox 'Lists'"},
      {3,
       "Nov 15 12:00:03 lmtp(dave@example.test)<10802><xQkb+NbjYFms/KgAA0J78UA:R3>: Info: "
       "msgid=<m1@partner.test>: save failed to INBOX: Quota exceeded (mailbox for user is "
       "full)"},
      {3, "Nov 15 12:00:03 auth: Info: passwd-file(ghost@example.test): unknown user"},
      {6,
       "Nov 15 12:00:06 lmtp(bob@example.test)<10803><Zz9Yy8Xx7Ww6Vv5Uu4Tt3S>: Info: "
       "msgid=<other@elsewhere.test>: saved mail to INBOX"}};
  auto at = [](const std::vector<std::pair<int64_t, std::string>>& lines) {
    std::vector<std::pair<int64_t, std::string>> timed;
    for (const auto& [s, raw] : lines) timed.emplace_back(kNoon + s * kSecond, raw);
    return timed;
  };
  for (bool dovecot_first : {false, true}) {
    SCOPED_TRACE(dovecot_first ? "Dovecot's log first" : "Postfix's log first");
    Fresh();
    auto append = [&](uint64_t fingerprint,
                      const std::vector<std::pair<int64_t, std::string>>& lines) {
      auto stats = store_->Append(FileLines("mx", fingerprint, at(lines)));
      ASSERT_TRUE(stats.ok()) << stats.status();
    };
    if (dovecot_first) append(2, dovecot);
    append(1, postfix);
    if (!dovecot_first) append(2, dovecot);

    auto trace = store_->GetTrace("3F1A2B3C4D");
    ASSERT_TRUE(trace.ok()) << trace.status();
    std::vector<std::string> steps;
    for (const MailboxStep& step : trace->mailbox) {
      steps.push_back(step.host + " " + step.recipient + " " + step.status + " " + step.mailbox +
                      " " + step.action + " " + step.target + " " + step.reason + " by " +
                      step.linked_by);
    }
    EXPECT_THAT(steps,
                ::testing::ElementsAre(
                    "mx bob@example.test saved INBOX    by session",
                    "mx carol+lists@example.test redirected  redirect carol@elsewhere.test  by "
                    "session",
                    "mx carol+lists@example.test saved Lists store   by session",
                    "mx dave@example.test failed INBOX   Quota exceeded (mailbox for user is "
                    "full) by message-id"));
    ASSERT_FALSE(trace->mailbox.empty());
    EXPECT_EQ(trace->mailbox[0].session, "xQkb+NbjYFms/KgAA0J78UA");
    EXPECT_EQ(trace->mailbox[0].user, "bob@example.test");
    EXPECT_EQ(trace->mailbox[0].message, trace->messages[0].id);

    // The session named, but Dovecot saved another Message-ID under it: not this mail's.
    auto other = store_->GetTrace("4B2C3D4E5F");
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_TRUE(other->mailbox.empty());
  }
}

// LMTP over TCP to a Dovecot on another host: its line is joined there, where relay= points
// (the first label of the relay's name is the host's syslog name), and not on a host the hop
// has nothing to do with, whatever session it names.
TEST_F(CorrelatorTest, DovecotOnAnotherHostIsJoinedWhereTheRelayPoints) {
  const std::vector<std::pair<int64_t, std::string>> mx = {
      {0, "Nov 15 12:00:00 mx postfix/smtpd[1]: 5C1D2E3F4A: client=dmz.example.test[192.0.2.2]"},
      {0, "Nov 15 12:00:00 mx postfix/cleanup[2]: 5C1D2E3F4A: message-id=<m3@partner.test>"},
      {1,
       "Nov 15 12:00:01 mx postfix/qmgr[3]: 5C1D2E3F4A: from=<alice@partner.test>, size=900, "
       "nrcpt=1 (queue active)"},
      {2,
       "Nov 15 12:00:02 mx postfix/lmtp[4]: 5C1D2E3F4A: to=<bob@example.test>, "
       "relay=imap.example.test[192.0.2.9]:24, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, "
       "status=sent (250 2.0.0 <bob@example.test> Kk1Ll2Mm3Nn4Oo5Pp6Qq7R Saved)"},
      {3, "Nov 15 12:00:03 mx postfix/qmgr[3]: 5C1D2E3F4A: removed"}};
  const std::string saved =
      "Nov 15 12:00:02 lmtp(bob@example.test)<7><Kk1Ll2Mm3Nn4Oo5Pp6Qq7R>: Info: "
      "msgid=<m3@partner.test>: saved mail to INBOX";
  auto at = [](int64_t s, const std::string& raw) {
    return std::vector<std::pair<int64_t, std::string>>{{kNoon + s * kSecond, raw}};
  };
  std::vector<std::pair<int64_t, std::string>> timed;
  for (const auto& [sec, raw] : mx) timed.emplace_back(kNoon + sec * kSecond, raw);
  ASSERT_TRUE(store_->Append(FileLines("mx", 1, timed)).ok());
  ASSERT_TRUE(store_->Append(FileLines("other", 2, at(2, saved))).ok());
  auto trace = store_->GetTrace("5C1D2E3F4A");
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_TRUE(trace->mailbox.empty()) << "a host relay= does not name";
  ASSERT_TRUE(store_->Append(FileLines("imap", 3, at(2, saved))).ok());
  trace = store_->GetTrace("5C1D2E3F4A");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->mailbox.size(), 1u);
  EXPECT_EQ(trace->mailbox[0].host, "imap");
  EXPECT_EQ(trace->mailbox[0].status, "saved");
}

// A store made before mailbox_deliveries existed kept its Dovecot lines without joining them:
// opened by this version, it takes them in once, and older mail shows its mailbox step.
TEST_F(CorrelatorTest, DovecotLinesStoredBeforeTheMailboxTableAreTakenIn) {
  const std::vector<std::string> lines = {
      "Nov 15 12:00:00 mx postfix/smtpd[1]: 6D1E2F3A4B: client=dmz.example.test[192.0.2.2]",
      "Nov 15 12:00:01 mx postfix/cleanup[2]: 6D1E2F3A4B: message-id=<m4@partner.test>",
      "Nov 15 12:00:02 mx postfix/qmgr[3]: 6D1E2F3A4B: from=<alice@partner.test>, size=900, "
      "nrcpt=1 (queue active)",
      "Nov 15 12:00:03 mx dovecot: lmtp(bob@example.test)<7><Rr1Ss2Tt3Uu4Vv5Ww6Xx7Y>: "
      "msgid=<m4@partner.test>: saved mail to INBOX",
      "Nov 15 12:00:04 mx postfix/lmtp[4]: 6D1E2F3A4B: to=<bob@example.test>, "
      "relay=mx.example.test[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, "
      "status=sent (250 2.0.0 <bob@example.test> Rr1Ss2Tt3Uu4Vv5Ww6Xx7Y Saved)",
      "Nov 15 12:00:05 mx postfix/qmgr[3]: 6D1E2F3A4B: removed"};
  Append("mx", 1, kNoon, lines);
  store_.reset();
  {
    auto catalog = Database::Open((dir_ / "catalog.db").string(), Database::Mode::kReadWrite);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    ASSERT_TRUE((*catalog)->Exec("DROP TABLE mailbox_deliveries; PRAGMA user_version = 7").ok());
  }
  StoreOptions options;
  options.dir = dir_.string();
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
  auto trace = store_->GetTrace("6D1E2F3A4B");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->mailbox.size(), 1u);
  EXPECT_EQ(trace->mailbox[0].session, "Rr1Ss2Tt3Uu4Vv5Ww6Xx7Y");
  EXPECT_EQ(trace->mailbox[0].mailbox, "INBOX");
}

// postsuper -d: the administrator deleted a message whose recipients were still deferred.
// Postfix logs "QID: removed" (and "Deleted: N messages"); the recipients no longer wait for a
// retry, they are deleted, and so is the message when none of its recipients got further.
TEST_F(CorrelatorTest, MessageDeletedByTheAdministratorReadsDeleted) {
  Append("dmz", 1, kNoon,
         {// Greylisted, then deleted.
          "Nov 15 12:00:00 dmz postfix/smtpd[1]: 17623A8689: client=mx.example.test[192.0.2.3]",
          "Nov 15 12:00:01 dmz postfix/qmgr[2]: 17623A8689: from=<heidi@example.test>, "
          "size=1412, nrcpt=1 (queue active)",
          "Nov 15 12:00:02 dmz postfix/smtp[3]: 17623A8689: to=<user1@flaky.test>, "
          "relay=mx.flaky.test[198.51.100.8]:25, delay=0.02, delays=0/0/0/0.01, dsn=4.7.1, "
          "status=deferred (host mx.flaky.test[198.51.100.8] said: 450 4.7.1 Greylisted, please "
          "try again later (in reply to RCPT TO command))",
          // One recipient delivered, the other deferred, then deleted.
          "Nov 15 12:00:03 dmz postfix/smtpd[1]: 28734B9790: client=mx.example.test[192.0.2.3]",
          "Nov 15 12:00:04 dmz postfix/qmgr[2]: 28734B9790: from=<ivan@example.test>, size=900, "
          "nrcpt=2 (queue active)",
          "Nov 15 12:00:05 dmz postfix/smtp[3]: 28734B9790: to=<ok@partner.test>, "
          "relay=mx.partner.test[198.51.100.9]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, "
          "status=sent (250 2.0.0 Ok)",
          "Nov 15 12:00:06 dmz postfix/smtp[3]: 28734B9790: to=<user2@flaky.test>, "
          "relay=mx.flaky.test[198.51.100.8]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.1, "
          "status=deferred (host mx.flaky.test[198.51.100.8] said: 450 4.7.1 Greylisted)",
          // Put on hold before any delivery, then deleted.
          "Nov 15 12:00:07 dmz postfix/smtpd[1]: 39845CA8A1: client=mx.example.test[192.0.2.3]",
          "Nov 15 12:00:08 dmz postfix/cleanup[4]: 39845CA8A1: hold: header Subject: audit from "
          "mx.example.test[192.0.2.3]; from=<judy@example.test> to=<kim@partner.test> "
          "proto=ESMTP helo=<mx.example.test>: held for review",
          "Nov 15 12:00:09 dmz postfix/postsuper[5]: 17623A8689: removed",
          "Nov 15 12:00:10 dmz postfix/postsuper[5]: 28734B9790: removed",
          "Nov 15 12:00:11 dmz postfix/postsuper[5]: 39845CA8A1: removed",
          "Nov 15 12:00:12 dmz postfix/postsuper[5]: Deleted: 3 messages"});
  struct Want {
    const char* queue_id;
    const char* disposition;
    std::vector<std::string> recipients;
  };
  for (const Want& w :
       {Want{"17623A8689", "deleted", {"user1@flaky.test=deleted"}},
        Want{"28734B9790", "", {"ok@partner.test=sent", "user2@flaky.test=deleted"}},
        Want{"39845CA8A1", "deleted", {}}}) {
    auto trace = store_->GetTrace(w.queue_id);
    ASSERT_TRUE(trace.ok()) << trace.status();
    ASSERT_EQ(trace->messages.size(), 1u) << w.queue_id;
    const MessageInfo& m = trace->messages[0];
    EXPECT_EQ(m.disposition, w.disposition) << w.queue_id;
    EXPECT_TRUE(m.end_us.has_value()) << w.queue_id;
    std::vector<std::string> rows;
    for (const RecipientInfo& r : trace->recipients) rows.push_back(r.recipient + "=" + r.status);
    EXPECT_THAT(rows, ::testing::UnorderedElementsAreArray(w.recipients)) << w.queue_id;
  }
  // The deferral keeps its reason: why the message was still waiting when it was deleted.
  auto view = store_->MessageAt("dmz", "17623A8689", kNoon + 2 * kSecond);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(view->has_value());
  ASSERT_EQ((*view)->recipients.size(), 1u);
  EXPECT_EQ((*view)->recipients[0].dsn, "4.7.1");
}

// The deletion stored before the older lines of the same message (a newer file imported
// first): a deferral older than the deletion reads deleted, a delivery keeps its status and
// the message then reads by its recipients -- as if the lines had come in order.
TEST_F(CorrelatorTest, DeletionStoredBeforeTheMessagesOlderLines) {
  Append("dmz", 2, kNoon + 60 * kSecond,
         {"Nov 15 12:01:00 dmz postfix/postsuper[5]: 4A956DB9B2: removed"});
  Append("dmz", 1, kNoon + 58 * kSecond,
         {"Nov 15 12:00:58 dmz postfix/smtp[3]: 4A956DB9B2: to=<user3@flaky.test>, "
          "relay=mx.flaky.test[198.51.100.8]:25, delay=1, delays=0/0/0.5/0.5, dsn=4.7.1, "
          "status=deferred (host mx.flaky.test[198.51.100.8] said: 450 4.7.1 Greylisted)",
          "Nov 15 12:00:59 dmz postfix/smtp[3]: 4A956DB9B2: to=<ok@partner.test>, "
          "relay=mx.partner.test[198.51.100.9]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, "
          "status=sent (250 2.0.0 Ok)"});
  auto trace = store_->GetTrace("4A956DB9B2");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->messages.size(), 1u);
  EXPECT_EQ(trace->messages[0].disposition, "");
  std::vector<std::string> rows;
  for (const RecipientInfo& r : trace->recipients) rows.push_back(r.recipient + "=" + r.status);
  EXPECT_THAT(rows, UnorderedElementsAre("user3@flaky.test=deleted", "ok@partner.test=sent"));
}

// Long queue IDs (enable_long_queue_ids) use both cases and are case-sensitive. One typed in
// another case is found when it is the only ID that matches so; when two IDs differ only in
// case, the answer names both instead of picking one. An exact match always wins.
TEST_F(CorrelatorTest, TraceFindsAQueueIdTypedInAnotherCaseOnlyWhenItIsUnique) {
  auto message = [](const std::string& qid, const std::string& sender) {
    return std::vector<std::string>{
        "Nov 15 12:00:00 mx postfix/smtpd[1]: " + qid + ": client=a[192.0.2.1]",
        "Nov 15 12:00:01 mx postfix/qmgr[2]: " + qid + ": from=<" + sender +
            ">, size=9, nrcpt=1 (queue active)",
        "Nov 15 12:00:02 mx postfix/local[3]: " + qid +
            ": to=<bob@example.test>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, "
            "status=sent (delivered to mailbox)",
        "Nov 15 12:00:03 mx postfix/qmgr[2]: " + qid + ": removed"};
  };
  Append("mx", 1, kNoon, message("4Nq1Xb0wXYz1Bcd", "one@a.test"));
  Append("mx", 2, kNoon + 10 * kSecond, message("4F1A2B3C4D", "two@a.test"));
  auto sender_of = [&](const std::string& typed) -> std::string {
    auto trace = store_->GetTrace(typed);
    if (!trace.ok()) return std::string(trace.status().message());
    return trace->messages.empty() ? "" : trace->messages[0].sender;
  };
  EXPECT_EQ(sender_of("4Nq1Xb0wXYz1Bcd"), "one@a.test");
  EXPECT_EQ(sender_of("4nq1xb0wxyz1bcd"), "one@a.test");
  EXPECT_EQ(sender_of("4NQ1XB0WXYZ1BCD"), "one@a.test");
  EXPECT_EQ(sender_of("4f1a2b3c4d"), "two@a.test");
  auto missing = store_->GetTrace("4nq1xb0wxyz1bcf");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  // A prefix of a stored ID is no match.
  EXPECT_TRUE(absl::IsNotFound(store_->GetTrace("4nq1xb0wxyz1bc").status()));

  // A second ID equal to the first but for case: typed in a third case, it is ambiguous.
  Append("mx", 3, kNoon + 20 * kSecond, message("4NQ1Xb0wXYz1Bcd", "three@a.test"));
  auto ambiguous = store_->GetTrace("4nq1xb0wxyz1bcd");
  EXPECT_TRUE(absl::IsInvalidArgument(ambiguous.status())) << ambiguous.status();
  EXPECT_THAT(std::string(ambiguous.status().message()),
              ::testing::AllOf(::testing::HasSubstr("4Nq1Xb0wXYz1Bcd"),
                               ::testing::HasSubstr("4NQ1Xb0wXYz1Bcd")));
  EXPECT_EQ(sender_of("4Nq1Xb0wXYz1Bcd"), "one@a.test");
  EXPECT_EQ(sender_of("4NQ1Xb0wXYz1Bcd"), "three@a.test");
}

// maillens hosts: a host's MESSAGES are the messages it received or made, each once. A
// content filter's re-injection on the host (amavis back in through smtpd on port 10025) is
// the same message again; a message relayed from another of our hosts counts there and here;
// a bounce notice is a message of its own.
TEST_F(CorrelatorTest, HostsCountEachMessageOnceOnItsHost) {
  Append(
      "dmz", 1, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[1]: 4F1A2B3C4D: client=a.partner.example[198.51.100.2]",
       "Nov 15 12:00:01 dmz postfix/qmgr[2]: 4F1A2B3C4D: from=<carol@partner.example>, "
       "size=900, nrcpt=2 (queue active)",
       "Nov 15 12:00:02 dmz postfix/smtp[3]: 4F1A2B3C4D: to=<bob@example.test>, "
       "relay=mx.example.test[192.0.2.3]:25, delay=2, delays=1/0/0.5/0.5, dsn=2.0.0, "
       "status=sent (250 2.0.0 Ok: queued as 9E8D7C6B5A)",
       "Nov 15 12:00:03 dmz postfix/smtp[3]: 4F1A2B3C4D: to=<nobody@example.test>, "
       "relay=mx.example.test[192.0.2.3]:25, delay=2, delays=1/0/0.5/0.5, dsn=2.0.0, "
       "status=sent (250 2.0.0 Ok: queued as 9E8D7C6B5A)",
       "Nov 15 12:00:04 dmz postfix/qmgr[2]: 4F1A2B3C4D: removed"});
  Append("mx", 2, kNoon + kSecond,
         {"Nov 15 12:00:01 mx postfix/smtpd[4]: 9E8D7C6B5A: client=dmz.example.test[192.0.2.2]",
          "Nov 15 12:00:02 mx postfix/qmgr[5]: 9E8D7C6B5A: from=<carol@partner.example>, "
          "size=1000, nrcpt=2 (queue active)",
          "Nov 15 12:00:03 mx postfix/10025/smtpd[6]: 7A6B5C4D3E: client=localhost[127.0.0.1]",
          "Nov 15 12:00:04 mx postfix/qmgr[5]: 7A6B5C4D3E: from=<carol@partner.example>, "
          "size=1100, nrcpt=2 (queue active)",
          "Nov 15 12:00:05 mx postfix/amavis/smtp[7]: 9E8D7C6B5A: to=<bob@example.test>, "
          "relay=127.0.0.1[127.0.0.1]:10024, delay=4, delays=0/0/0/4, dsn=2.0.0, status=sent "
          "(250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 7A6B5C4D3E)",
          "Nov 15 12:00:06 mx postfix/qmgr[5]: 9E8D7C6B5A: removed",
          "Nov 15 12:00:07 mx postfix/local[8]: 7A6B5C4D3E: to=<nobody@example.test>, "
          "relay=local, delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (unknown user)",
          "Nov 15 12:00:08 mx postfix/bounce[9]: 7A6B5C4D3E: sender non-delivery notification: "
          "1B2C3D4E5F",
          "Nov 15 12:00:09 mx postfix/qmgr[5]: 1B2C3D4E5F: from=<>, size=2000, nrcpt=1 (queue "
          "active)",
          "Nov 15 12:00:10 mx postfix/qmgr[5]: 7A6B5C4D3E: removed"});
  auto trace = store_->GetTrace("4F1A2B3C4D");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->messages.size(), 4u) << "dmz, mx, mx's re-injection, its bounce notice";
  auto hosts = store_->Hosts();
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  std::vector<std::string> counts;
  for (const Store::HostSummary& h : *hosts) {
    counts.push_back(h.name + "=" + std::to_string(h.messages));
  }
  EXPECT_THAT(counts, UnorderedElementsAre("dmz=1", "mx=2"));
}

// One queue ID on mx with two lives, as in the simulated site of
// tests/correlation_accuracy_test.cc: the first received and delivered to dee, then removed;
// the second, an hour later, deferred again and again for dee until it expires and bounces.
std::vector<LineRecord> TwoLivesOfOneQueueId(uint64_t fingerprint) {
  constexpr int64_t kDay = kNoon - 12 * 3600 * kSecond;  // 2023-11-15 00:00:00 UTC
  auto at = [](int64_t h, int64_t m, int64_t s) {
    return kDay + ((h * 60 + m) * 60 + s) * kSecond;
  };
  auto retry = [](const std::string& stamp, int64_t delay) {
    return std::vector<std::string>{
        stamp +
            " mx postfix/qmgr[2103]: 6D717185280A: from=<cy@c.example.org>, size=2400, "
            "nrcpt=1 (queue active)",
        stamp + " mx postfix/smtp[2105]: 6D717185280A: to=<dee@far.test>, relay=none, delay=" +
            std::to_string(delay) +
            ", delays=1/0/30/0, dsn=4.4.1, status=deferred (connect to "
            "far.test[192.0.2.77]:25: Connection timed out)"};
  };
  const std::vector<std::pair<int64_t, std::string>> lines = {
      // Life 1.
      {at(22, 3, 55),
       "Nov 15 22:03:55 mx postfix/smtpd[2101]: 6D717185280A: client=a.example.net[198.51.100.1]"},
      {at(22, 3, 55),
       "Nov 15 22:03:55 mx postfix/cleanup[2102]: 6D717185280A: message-id=<one@a.example.net>"},
      {at(22, 3, 56),
       "Nov 15 22:03:56 mx postfix/qmgr[2103]: 6D717185280A: from=<ann@a.example.net>, "
       "size=1200, nrcpt=1 (queue active)"},
      {at(22, 3, 57),
       "Nov 15 22:03:57 mx postfix/smtp[2104]: 6D717185280A: to=<dee@far.test>, "
       "relay=far.test[192.0.2.77]:25, delay=2, delays=1/0/0.5/0.5, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok)"},
      {at(22, 3, 57), "Nov 15 22:03:57 mx postfix/qmgr[2103]: 6D717185280A: removed"},
      // Life 2 (index 5 on).
      {at(22, 57, 27),
       "Nov 15 22:57:27 mx postfix/smtpd[2101]: 6D717185280A: client=c.example.org[203.0.113.5]"},
      {at(22, 57, 27),
       "Nov 15 22:57:27 mx postfix/cleanup[2102]: 6D717185280A: message-id=<two@c.example.org>"},
      {at(22, 57, 28), retry("Nov 15 22:57:28", 1)[0]},
      {at(22, 57, 58), retry("Nov 15 22:57:58", 31)[1]},
      {at(23, 7, 28), retry("Nov 15 23:07:28", 0)[0]},  // index 9
      {at(23, 7, 58), retry("Nov 15 23:07:58", 631)[1]},
      {at(23, 27, 28), retry("Nov 15 23:27:28", 0)[0]},  // index 11
      {at(23, 27, 58), retry("Nov 15 23:27:58", 1831)[1]},
      {at(23, 57, 28), retry("Nov 15 23:57:28", 0)[0]},
      {at(23, 57, 58), retry("Nov 15 23:57:58", 3631)[1]},
      // The next day (another partition): it expires and bounces.
      {at(26, 57, 28),  // index 15
       "Nov 16 02:57:28 mx postfix/qmgr[2103]: 6D717185280A: from=<cy@c.example.org>, "
       "status=expired, returned to sender"},
      {at(26, 57, 28),
       "Nov 16 02:57:28 mx postfix/cleanup[2102]: EACDD1852D2E: "
       "message-id=<20231116025728.EACDD1852D2E@mx.example.test>"},
      {at(26, 57, 28),
       "Nov 16 02:57:28 mx postfix/bounce[2106]: 6D717185280A: sender non-delivery "
       "notification: EACDD1852D2E"},
      {at(26, 57, 28), "Nov 16 02:57:28 mx postfix/qmgr[2103]: 6D717185280A: removed"},
      {at(26, 57, 28),
       "Nov 16 02:57:28 mx postfix/qmgr[2103]: EACDD1852D2E: from=<>, size=4400, nrcpt=1 "
       "(queue active)"},
      {at(26, 57, 29),
       "Nov 16 02:57:29 mx postfix/smtp[2104]: EACDD1852D2E: to=<cy@c.example.org>, "
       "relay=c.example.org[203.0.113.5]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, "
       "status=sent (250 2.0.0 Ok)"},
      {at(26, 57, 29), "Nov 16 02:57:29 mx postfix/qmgr[2103]: EACDD1852D2E: removed"}};
  return FileLines("mx", fingerprint, lines);
}

// Lines [begin, end) of `file`, renumbered as a file of their own (an extract, or one of the
// files logrotate cut the log into) when `fingerprint` is given.
std::vector<LineRecord> Part(const std::vector<LineRecord>& file, size_t begin, size_t end,
                             std::optional<uint64_t> fingerprint = std::nullopt) {
  std::vector<LineRecord> part(file.begin() + begin, file.begin() + end);
  uint64_t offset = 0;
  for (LineRecord& r : part) {
    if (!fingerprint) continue;
    r.fingerprint = *fingerprint;
    r.offset = offset;
    offset += r.raw.size() + 1;
  }
  return part;
}

// A queue ID's two lives whose lines arrive out of order: an extract of the log (from the
// middle of the second life's retries) imported before the log, or the rotated files imported
// newest first, as a `mail.log*` glob gives them. The first lines to arrive make an instance
// without a start line; the first life's client= is earlier, so it joins that instance -- a
// guess, and the first life's `removed` then shows it wrong: the instance holds lines hours
// after its removal. The correlator must undo the guess (re-read the queue ID's lines and take
// them in time order), so that each life is one instance with its own lines, facts and links,
// as if the lines had come in order. So must a start line that comes while an instance holds
// lines on both sides of it. In the store's two modes (correlating in line and behind) and with
// the older lines in one batch or several.
TEST_F(CorrelatorTest, ReusedQueueIdsLivesStayApartWhateverOrderTheirLinesArriveIn) {
  constexpr int64_t kDay = kNoon - 12 * 3600 * kSecond;
  const int64_t life1 = kDay + (22 * 3600 + 3 * 60 + 55) * kSecond;
  const int64_t life2 = kDay + (22 * 3600 + 57 * 60 + 27) * kSecond;
  const int64_t expired = kDay + (26 * 3600 + 57 * 60 + 28) * kSecond;
  const std::vector<LineRecord> log = TwoLivesOfOneQueueId(1);
  struct Order {
    std::string name;
    std::vector<std::vector<LineRecord>> batches;  // appended in this order
  };
  auto concat = [](std::vector<LineRecord> a, const std::vector<LineRecord>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  std::vector<Order> orders = {
      {"in order", {log}},
      // The extract's lines are skipped when the log comes (the importer finds them stored).
      {"extract of the retries first",
       {Part(log, 11, 15, 2), concat(Part(log, 0, 11), Part(log, 15, log.size()))}},
      {"extract of the retries to the end first", {Part(log, 11, log.size(), 2), Part(log, 0, 11)}},
      {"rotated files newest first", {Part(log, 9, log.size(), 12), Part(log, 0, 9, 11)}},
      {"rotated files newest first, the older in batches",
       {Part(log, 9, log.size(), 12), Part(Part(log, 0, 9, 11), 0, 2),
        Part(Part(log, 0, 9, 11), 2, 6), Part(Part(log, 0, 9, 11), 6, 9)}},
      // Pieces (extracts) of the log: the second life's client= comes while an instance holds
      // the first life's delivery and the second's retries, before the first's `removed`.
      {"pieces of the log, the first life's removed and client= last",
       {Part(log, 9, log.size(), 12), Part(log, 2, 4, 13), Part(log, 5, 9, 14), Part(log, 4, 5, 15),
        Part(log, 0, 2, 16)}}};
  for (const bool behind : {false, true}) {
    for (const Order& order : orders) {
      SCOPED_TRACE(order.name + (behind ? ", correlated behind" : ", correlated in line"));
      store_.reset();
      std::filesystem::remove_all(dir_);
      StoreOptions options;
      options.dir = dir_.string();
      options.correlate_behind = behind;
      auto store = Store::Open(options);
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = std::move(*store);
      for (const std::vector<LineRecord>& batch : order.batches) {
        auto stats = store_->Append(batch);
        ASSERT_TRUE(stats.ok()) << stats.status();
        ASSERT_EQ(stats->stored, batch.size());
      }
      auto traces = store_->TracesIn(INT64_MIN, INT64_MAX);
      ASSERT_TRUE(traces.ok()) << traces.status();
      std::map<int64_t, const Trace*> trace_of;  // instance's first_us -> its trace
      std::map<int64_t, MessageInfo> lives;      // first_us -> instance of 6D717185280A
      for (const Trace& t : *traces) {
        for (const MessageInfo& m : t.messages) {
          if (m.queue_id != "6D717185280A") continue;
          lives[m.first_us] = m;
          trace_of[m.first_us] = &t;
        }
      }
      ASSERT_EQ(lives.size(), 2u);
      ASSERT_EQ(lives.begin()->first, life1);
      ASSERT_EQ(lives.rbegin()->first, life2);
      auto rows = [&](int64_t first) {
        std::vector<std::string> out;
        for (const RecipientInfo& r : trace_of[first]->recipients) {
          if (r.message == lives[first].id) out.push_back(r.recipient + "=" + r.status);
        }
        return out;
      };
      // The first life: its own lines only, delivered.
      const MessageInfo& one = lives[life1];
      EXPECT_EQ(one.end_us.value_or(0), life1 + 2 * kSecond);
      EXPECT_EQ(one.last_us, life1 + 2 * kSecond) << "holds the second life's lines";
      EXPECT_EQ(one.disposition, "");
      EXPECT_THAT(rows(life1), UnorderedElementsAre("dee@far.test=sent"));
      EXPECT_EQ(trace_of[life1]->messages.size(), 1u) << "the bounce is the second life's";
      // The second life: all its lines, expired, and its bounce notice in its trace.
      const MessageInfo& two = lives[life2];
      EXPECT_EQ(two.end_us.value_or(0), expired) << "0: still queued";
      EXPECT_EQ(two.disposition, "expired");
      EXPECT_THAT(rows(life2), UnorderedElementsAre("dee@far.test=expired"));
      std::vector<std::string> hops;
      for (const MessageInfo& m : trace_of[life2]->messages) hops.push_back(m.queue_id);
      EXPECT_THAT(hops, ::testing::ElementsAre("6D717185280A", "EACDD1852D2E"));
      std::vector<std::string> links;
      for (const LinkInfo& l : trace_of[life2]->links) links.push_back(l.kind);
      EXPECT_THAT(links, ::testing::ElementsAre("bounce"));
    }
  }
}

}  // namespace
}  // namespace maillens::store
