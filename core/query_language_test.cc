#include "core/query_language.h"

#include "core/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

using ::testing::HasSubstr;
using Target = FieldTerm::Target;

const absl::Time kNow = absl::FromUnixSeconds(1700049600);  // 2023-11-15 12:00:00 UTC

absl::StatusOr<Query> Parse(std::vector<std::string> args) {
  return ParseQuery(args, kNow, absl::UTCTimeZone());
}

TEST(ParseQueryTest, EveryFieldAndItsAliases) {
  struct Case {
    std::string word;
    Target target;
    std::string pattern;
  };
  std::vector<Case> cases = {
      {"from:Alice@Example.org", Target::kFrom, "alice@example.org"},
      {"sender:<a@b.example>", Target::kFrom, "a@b.example"},
      {"to:bob@example.ac.jp", Target::kTo, "bob@example.ac.jp"},
      {"rcpt:bob@x.example", Target::kTo, "bob@x.example"},
      {"recipient:bob@x.example", Target::kTo, "bob@x.example"},
      {"host:DMZ", Target::kHost, "dmz"},
      {"status:Bounced", Target::kStatus, "bounced"},
      {"qid:3mPVKl0Mhjz7sXv", Target::kQueueId, "3mpvkl0mhjz7sxv"},
      {"queue:4F1A2B3C4D", Target::kQueueId, "4f1a2b3c4d"},
      {"msgid:<m1@partner.example>", Target::kMessageId, "m1@partner.example"},
      {"mid:m1@x", Target::kMessageId, "m1@x"},
      {"client:198.51.100.7", Target::kClient, "198.51.100.7"},
      {"ip:2001:db8::1", Target::kClient, "2001:db8::1"},
      {"relay:mx.example.test", Target::kRelay, "mx.example.test"},
      {"dsn:5.", Target::kDsn, "5."},
      {"sasl:alice", Target::kSasl, "alice"},
      {"user:alice", Target::kSasl, "alice"},
      {"daemon:smtpd", Target::kDaemon, "smtpd"},
      {"kind:reject", Target::kKind, "reject"},
  };
  for (const Case& c : cases) {
    auto q = Parse({c.word});
    ASSERT_TRUE(q.ok()) << c.word << ": " << q.status();
    ASSERT_EQ(q->terms.size(), 1u) << c.word;
    EXPECT_EQ(q->terms[0].target, c.target) << c.word;
    EXPECT_EQ(q->terms[0].pattern, c.pattern) << c.word;
  }
}

TEST(ParseQueryTest, FreeTextAndColonWordsThatAreNotFields) {
  auto q = Parse({"relay", "access", "denied", "[2001:db8::1]:25", "12:30"});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(q->words,
              ::testing::ElementsAre("relay", "access", "denied", "[2001:db8::1]:25", "12:30"));
  EXPECT_TRUE(q->terms.empty());
  auto t = Parse({"text:tox:alice"});
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(t->words, ::testing::ElementsAre("tox:alice"));
}

// A free word takes '*' at its end only (the index reads whole words): elsewhere it is refused,
// not dropped ('*lak*' found nothing where grep finds "flaky").
TEST(ParseQueryTest, StarInsideOrBeforeAFreeWordIsRefused) {
  for (const char* word : {"*lak*", "*ylist", "fl*ky", "text:*lak"}) {
    auto q = Parse({word});
    ASSERT_FALSE(q.ok()) << word;
    EXPECT_THAT(std::string(q.status().message()), ::testing::HasSubstr("can only end it")) << word;
  }
  auto prefix = Parse({"flak*"});
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  EXPECT_THAT(prefix->words, ::testing::ElementsAre("flak*"));
  EXPECT_TRUE(Parse({"to:*lak*"}).ok());
}

TEST(ParseQueryTest, DurationsDatesAndTimes) {
  auto q = Parse({"since:2h", "until:30m"});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->since_us, absl::ToUnixMicros(kNow - absl::Hours(2)));
  EXPECT_EQ(q->until_us, absl::ToUnixMicros(kNow - absl::Minutes(30)));
  auto d = Parse({"since:2023-11-01", "until:2023-11-02 10:30"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->since_us, 1698796800LL * 1000000);
  EXPECT_EQ(d->until_us, (1698883200LL + 10 * 3600 + 30 * 60) * 1000000);
  auto t = Parse({"since:09:15"});  // today, in the zone
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->since_us, (1700006400LL + 9 * 3600 + 15 * 60) * 1000000);
  auto r = Parse({"since:2023-11-15T10:00:00+01:00"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->since_us, (1700049600LL - 3 * 3600) * 1000000);
  // Local zone: 2023-11-01 in Berlin is 23:00 UTC the day before.
  absl::TimeZone berlin;
  if (absl::LoadTimeZone("Europe/Berlin", &berlin)) {
    auto b = ParseQuery({"since:2023-11-01"}, kNow, berlin);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->since_us, (1698796800LL - 3600) * 1000000);
  }
}

TEST(ParseQueryTest, NowIsNow) {
  auto q = Parse({"since:1h", "until:now"});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->until_us, absl::ToUnixMicros(kNow));
}

TEST(ParseQueryTest, EveryListedFieldAndStatusIsAccepted) {
  std::vector<std::string> names = QueryFieldNames();
  EXPECT_GE(names.size(), 20u);
  for (const std::string& name : names) {
    std::string value = name == "since" || name == "until" ? "2h"
                        : name == "status"                 ? "sent"
                        : name == "dsn"                    ? "5."
                        : name == "kind"                   ? "reject"
                                                           : "x";
    auto q = Parse({name + ":" + value});
    EXPECT_TRUE(q.ok()) << name << ": " << q.status();
  }
  for (const std::string& status : QueryStatuses()) {
    auto q = Parse({"status:" + status});
    EXPECT_TRUE(q.ok()) << status << ": " << q.status();
  }
  EXPECT_FALSE(Parse({"status:nonsense"}).ok());
}

TEST(ParseTimeArgTest, TodayYesterdayAndSyslogStamps) {
  // kNow is 2023-11-15 12:00:00 UTC.
  EXPECT_EQ(*ParseTimeArg("today", kNow, absl::UTCTimeZone()), 1700006400LL * 1000000);
  EXPECT_EQ(*ParseTimeArg("yesterday", kNow, absl::UTCTimeZone()), 1699920000LL * 1000000);
  EXPECT_EQ(*ParseTimeArg("Nov 15 10:00", kNow, absl::UTCTimeZone()), 1700042400LL * 1000000);
  EXPECT_EQ(*ParseTimeArg("Nov 14 10:00:30", kNow, absl::UTCTimeZone()),
            (1700042400LL - 86400 + 30) * 1000000);
  // Later in the year than now: last year's.
  EXPECT_EQ(*ParseTimeArg("Dec 24 10:00", kNow, absl::UTCTimeZone()), 1671876000LL * 1000000);
  auto q = Parse({"since:yesterday", "qid:4f1a2b3c4d"});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(q->has_since);
}

TEST(ParseQueryTest, QueueIdsInAnyLetterCase) {
  TimeContext time{TimeOptions()};
  Event ev = ParseLine("Nov 22 10:00:00 mx postfix/qmgr[1]: 4F1A2B3C4D: removed", &time);
  for (const char* q : {"qid:4f1a2b3c4d", "qid:4F1A2B3C4D", "qid:4f1a*"}) {
    auto parsed = Parse({q});
    ASSERT_TRUE(parsed.ok());
    EXPECT_TRUE(MatchesTerms(*parsed, ev, "mx")) << q;
  }
}

// Inputs that used to match everything or nothing without a word are errors now.
TEST(ParseQueryTest, ValuesThatCannotMatchAreErrors) {
  auto kind = Parse({"kind:nosuch"});
  ASSERT_FALSE(kind.ok());
  EXPECT_THAT(kind.status().message(), HasSubstr("is not a kind"));
  EXPECT_TRUE(Parse({"kind:postscreen*"}).ok());
  EXPECT_FALSE(Parse({"text:"}).ok());
  EXPECT_FALSE(Parse({"--"}).ok());
  std::vector<std::string> many;
  for (int i = 0; i < 60; ++i) many.push_back("w" + std::to_string(i));
  EXPECT_FALSE(Parse(many).ok());
}

TEST(LineStatusTest, EveryListedStatusHasItsLines) {
  TimeContext time{TimeOptions()};
  struct Case {
    const char* line;
    const char* status;
  };
  const Case cases[] = {
      {"Nov 22 10:00:00 mx postfix/smtp[1]: 4F1A2B3C4D: to=<b@x.example>, relay=none, delay=1, "
       "delays=1/0/0/0, dsn=5.1.1, status=bounced (unknown user)",
       "bounced"},
      {"Nov 22 10:00:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 "
       "5.7.1 <b@x.example>: Relay access denied; from=<a@y.example> to=<b@x.example> "
       "proto=ESMTP helo=<h>",
       "rejected"},
      {"Nov 22 10:00:00 mx postfix/cleanup[1]: 4F1A2B3C4D: reject: header Subject: win from "
       "unknown[192.0.2.1]; from=<a@y.example> to=<b@x.example> proto=ESMTP helo=<h>: 5.7.1 "
       "no thanks",
       "rejected"},
      {"Nov 22 10:00:00 mx postfix/cleanup[1]: 4F1A2B3C4D: hold: header Subject: check from "
       "unknown[192.0.2.1]; from=<a@y.example> to=<b@x.example> proto=ESMTP helo=<h>",
       "held"},
      {"Nov 22 10:00:00 mx postfix/cleanup[1]: 4F1A2B3C4D: discard: header Subject: spam from "
       "unknown[192.0.2.1]; from=<a@y.example> to=<b@x.example> proto=ESMTP helo=<h>",
       "discarded"},
      {"Nov 22 10:00:00 mx postfix/smtp[1]: 4F1A2B3C4D: to=<b@x.example>, "
       "relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=1/0/0/0, dsn=2.7.0, status=sent (250 "
       "2.7.0 Ok, discarded, id=01234-05 - BANNED: invoice.exe)",
       "discarded"},
      {"Nov 22 10:00:00 mx postfix/qmgr[1]: 4F1A2B3C4D: from=<a@y.example>, status=expired, "
       "returned to sender",
       "expired"},
      {"Nov 22 10:00:00 mx postfix/postsuper[1]: 4F1A2B3C4D: removed", "deleted"},
      {"Nov 22 10:00:00 mx postfix/qmgr[1]: 4F1A2B3C4D: removed", ""},
  };
  for (const Case& c : cases) {
    Event ev = ParseLine(c.line, &time);
    EXPECT_EQ(LineStatus(ev), c.status) << c.line;
    auto q = Parse({std::string("status:") + (c.status[0] ? c.status : "sent")});
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(MatchesTerms(*q, ev, "mx"), c.status[0] != 0) << c.line;
    // The full-text index narrows by the term's literal: the line must hold it.
    std::string literal = LiteralOf(q->terms.front());
    if (c.status[0] != 0 && !literal.empty()) {
      EXPECT_TRUE(ContainsWord(IndexedText(ev, c.line), literal)) << literal << ": " << c.line;
    }
  }
}

TEST(ContainsWordTest, WholeTokensInOrderAndATrailingPrefix) {
  const std::string text = "postfix/smtp[1]: to=<Alice.Smith@example.org>, status=sent (250 ok)";
  EXPECT_TRUE(ContainsWord(text, "alice"));
  EXPECT_TRUE(ContainsWord(text, "ALICE.smith"));
  EXPECT_TRUE(ContainsWord(text, "status=sent"));
  EXPECT_TRUE(ContainsWord(text, "ali*"));
  EXPECT_TRUE(ContainsWord(text, "smith@exa*"));
  EXPECT_FALSE(ContainsWord(text, "ali"));  // not a whole token
  EXPECT_FALSE(ContainsWord(text, "smith alice"));
  EXPECT_FALSE(ContainsWord(text, "*"));
}

// The literal narrows through the index only by whole tokens (or a prefix at its end), so a
// wildcard never loses a match; `to:ali*` was sent as the whole word "ali" and found nothing.
TEST(LiteralOfTest, WildcardsKeepOnlyWholeTokens) {
  auto literal = [](Target t, const std::string& p) { return LiteralOf(FieldTerm{t, p}); };
  EXPECT_EQ(literal(Target::kTo, "ali*"), "ali*");
  EXPECT_EQ(literal(Target::kTo, "*lice@example.org"), "example.org");
  EXPECT_EQ(literal(Target::kTo, "*@example.org"), "example.org");
  EXPECT_EQ(literal(Target::kTo, "alice@exam*"), "alice@exam*");
  EXPECT_EQ(literal(Target::kTo, "*lic*"), "");
  EXPECT_EQ(literal(Target::kTo, "alice@example.org"), "alice@example.org");
  EXPECT_EQ(literal(Target::kStatus, "bounced"), "status=bounced");
  EXPECT_EQ(literal(Target::kStatus, "held"), "hold");
  EXPECT_EQ(literal(Target::kStatus, "deleted"), "removed");
  EXPECT_EQ(literal(Target::kStatus, "rejected"), "");  // "reject:" or "defer:"
  TimeContext time{TimeOptions()};
  const std::string line =
      "Nov 22 10:00:00 mx postfix/smtp[1]: 4F1A2B3C4D: to=<alice@example.org>, relay=none, "
      "delay=1, delays=1/0/0/0, dsn=2.0.0, status=sent (ok)";
  Event ev = ParseLine(line, &time);
  for (const char* p : {"ali*", "*lice@example.org", "a*e@e*", "*@example.org", "*org"}) {
    std::string lit = literal(Target::kTo, p);
    EXPECT_TRUE(lit.empty() || ContainsWord(IndexedText(ev, line), lit)) << p << " -> " << lit;
  }
}

TEST(ParseQueryTest, ErrorsPointAtTheWrongWord) {
  auto q = Parse({"to:bob@x.example", "tox:alice", "status:sent"});
  ASSERT_FALSE(q.ok());
  std::string msg(q.status().message());
  EXPECT_THAT(msg, HasSubstr("unknown field 'tox:'"));
  EXPECT_THAT(msg, HasSubstr("to:bob@x.example tox:alice status:sent"));
  EXPECT_THAT(msg, HasSubstr("\n                   ^^^^^^^^^"));
  auto s = Parse({"status:bouncd"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("not a status"));
  auto t = Parse({"since:yesterdayish"});
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("cannot read 'yesterdayish'"));
  auto e = Parse({"to:"});
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("needs a value"));
  auto dsn = Parse({"dsn:five"});
  ASSERT_FALSE(dsn.ok());
  auto w = Parse({"since:1h", "until:2h"});
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("window is empty"));
}

TEST(WildcardMatchTest, Globs) {
  EXPECT_TRUE(WildcardMatch("*@partner.example", "bob@partner.example"));
  EXPECT_FALSE(WildcardMatch("*@partner.example", "bob@partner.example.org"));
  EXPECT_TRUE(WildcardMatch("alice@*", "alice@x.example"));
  EXPECT_TRUE(WildcardMatch("*ob*", "bob@x"));
  EXPECT_TRUE(WildcardMatch("exact", "exact"));
  EXPECT_FALSE(WildcardMatch("exact", "exactly"));
  EXPECT_TRUE(WildcardMatch("*", ""));
}

TEST(MatchesTermsTest, FieldsOnAParsedLine) {
  TimeContext time{TimeOptions{2023}};
  std::string line =
      "Nov 15 12:00:03 dmz postfix/smtp[14]: 4F1A2B3C4D: to=<Bob@Example.test>, "
      "orig_to=<postmaster@example.test>, relay=mx.example.test[192.0.2.3]:25, delay=3, "
      "delays=2/0/0.5/0.5, dsn=5.1.1, status=bounced (host mx.example.test[192.0.2.3] said: "
      "550 5.1.1 no such user (in reply to RCPT TO command))";
  Event ev = ParseLine(line, &time);
  auto match = [&](std::vector<std::string> args) {
    auto q = Parse(args);
    EXPECT_TRUE(q.ok()) << q.status();
    return MatchesTerms(*q, ev, "dmz");
  };
  EXPECT_TRUE(match({"to:bob@example.test"}));
  EXPECT_TRUE(match({"to:postmaster@*"}));
  EXPECT_TRUE(match({"to:*@example.test", "status:bounced", "dsn:5.", "host:dmz"}));
  EXPECT_TRUE(match({"relay:192.0.2.3"}));
  EXPECT_TRUE(match({"qid:4F1A2B3C4D", "daemon:smtp", "kind:delivery"}));
  EXPECT_TRUE(match({"status:sent", "status:bounced"}));  // same field: alternatives
  EXPECT_FALSE(match({"status:sent"}));
  EXPECT_FALSE(match({"dsn:4."}));
  EXPECT_FALSE(match({"host:mx"}));
  EXPECT_FALSE(match({"to:*@partner.example"}));
  EXPECT_FALSE(match({"from:bob@example.test"}));
}

}  // namespace
}  // namespace maillens::core
