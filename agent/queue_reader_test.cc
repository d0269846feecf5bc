#include "agent/queue_reader.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maillens::agent {
namespace {

using ::testing::HasSubstr;

// Captured from Postfix 3.7 (`postqueue -j`), one deferred and one active message; the
// "forced_expire" and any later fields are accepted.
constexpr char kCaptured[] =
    R"({"queue_name": "deferred", "queue_id": "4Qk7Zx1Bq3z5N", "arrival_time": 1733335200, )"
    R"("message_size": 1523, "forced_expire": false, "sender": "alice@dmz.example", )"
    R"("recipients": [{"address": "bob@unreachable.example", "delay_reason": "connect to )"
    R"(unreachable.example[192.0.2.7]:25: Connection refused"}, {"address": )"
    R"("carol@unreachable.example"}]})"
    "\n"
    R"({"queue_name": "active", "queue_id": "4Qk7Zy2Cr4z6P", "arrival_time": 1733335260, )"
    R"("message_size": 880, "forced_expire": false, "sender": "", "recipients": )"
    R"([{"address": "dave@mx.example"}], "future_field": {"x": 1}})"
    "\n";

TEST(ParsePostqueueJsonTest, ReadsEveryFieldOfCapturedOutput) {
  auto messages = ParsePostqueueJson(kCaptured);
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 2u);
  const v1::QueuedMessage& m = (*messages)[0];
  EXPECT_EQ(m.queue_name(), "deferred");
  EXPECT_EQ(m.queue_id(), "4Qk7Zx1Bq3z5N");
  EXPECT_EQ(m.arrival_time(), 1733335200);
  EXPECT_EQ(m.message_size(), 1523);
  EXPECT_EQ(m.sender(), "alice@dmz.example");
  ASSERT_EQ(m.recipients_size(), 2);
  EXPECT_EQ(m.recipients(0).address(), "bob@unreachable.example");
  EXPECT_THAT(m.recipients(0).delay_reason(), HasSubstr("Connection refused"));
  EXPECT_EQ(m.recipients(1).delay_reason(), "");
  EXPECT_EQ((*messages)[1].queue_name(), "active");
  EXPECT_EQ((*messages)[1].sender(), "");  // the null sender of a bounce
}

// Verbatim from the Postfix lab (../shared/postfix-lab, dmz instance, after `lab.sh traffic 30`):
// a dead next hop and a greylisting one.
constexpr char kLabDmz[] =
    R"PQ({"queue_name": "deferred", "queue_id": "9151EA76213", "arrival_time": 1796407664, "message_size": 483, "forced_expire": false, "sender": "info@othercorp.test", "recipients": [{"address": "user3@down.example.test", "delay_reason": "connect to down-mx.example.test[127.0.0.9]:2525: Connection refused"}]})PQ"
    "\n"
    R"PQ({"queue_name": "deferred", "queue_id": "AA700A76220", "arrival_time": 1796407664, "message_size": 1411, "forced_expire": false, "sender": "frank@example.test", "recipients": [{"address": "user1@flaky.test", "delay_reason": "host mx.flaky.test[127.0.0.8] said: 450 4.7.1 Greylisted, please try again later (in reply to RCPT TO command)"}]})PQ"
    "\n";

TEST(ParsePostqueueJsonTest, ReadsTheLabsDeferredMail) {
  auto messages = ParsePostqueueJson(kLabDmz);
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 2u);
  EXPECT_EQ((*messages)[0].queue_name(), "deferred");
  EXPECT_EQ((*messages)[0].queue_id(), "9151EA76213");
  ASSERT_EQ((*messages)[0].recipients_size(), 1);
  EXPECT_THAT((*messages)[0].recipients(0).delay_reason(), HasSubstr("Connection refused"));
  EXPECT_THAT((*messages)[1].recipients(0).delay_reason(), HasSubstr("Greylisted"));
}

TEST(ParsePostqueueJsonTest, EmptyQueueIsNoMessages) {
  auto messages = ParsePostqueueJson("");
  ASSERT_TRUE(messages.ok());
  EXPECT_TRUE(messages->empty());
}

TEST(ParsePostqueueJsonTest, RejectsTextThatIsNotJsonNamingTheLine) {
  auto messages = ParsePostqueueJson(
      std::string(kCaptured) + "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-\n");
  ASSERT_FALSE(messages.ok());
  EXPECT_THAT(std::string(messages.status().message()), HasSubstr("line 3"));
}

TEST(QueueReaderTest, RunsPostqueuePerInstanceAndMergesTheQueues) {
  std::vector<std::vector<std::string>> calls;
  QueueReaderOptions options;
  options.config_dirs = {"/etc/postfix-dmz", "/etc/postfix-mx"};
  options.now = [] { return absl::FromUnixSeconds(1733335300); };
  options.run = [&](const std::vector<std::string>& argv) -> absl::StatusOr<CommandOutput> {
    calls.push_back(argv);
    CommandOutput out;
    if (argv[2] == "/etc/postfix-dmz") {
      out.out = kCaptured;
    } else {
      out.exit_code = 75;
      out.err = "postqueue: fatal: Queue report unavailable - mail system is down\n";
    }
    return out;
  };
  v1::QueueSnapshot snapshot = QueueReader(options).Read();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], (std::vector<std::string>{"postqueue", "-c", "/etc/postfix-dmz", "-j"}));
  EXPECT_EQ(snapshot.taken_us(), 1733335300LL * 1000000);
  ASSERT_EQ(snapshot.messages_size(), 2);
  EXPECT_EQ(snapshot.messages(0).instance(), "/etc/postfix-dmz");
  EXPECT_THAT(snapshot.error(), HasSubstr("/etc/postfix-mx -j exited with 75"));
  EXPECT_THAT(snapshot.error(), HasSubstr("mail system is down"));
}

TEST(RunCommandTest, CapturesOutputAndExitCode) {
  auto r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(RunCommand({"/nonexistent/maillens-no-such-command"}).ok());
}

}  // namespace
}  // namespace maillens::agent
