#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "cli/doctor_command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maillens::cli {
namespace {

using ::testing::HasSubstr;

std::string TempDir() {
  std::string pattern = ::testing::TempDir() + "/doctor_XXXXXX";
  char* dir = mkdtemp(pattern.data());
  EXPECT_NE(dir, nullptr);
  return pattern;
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// ---- config ----

TEST(DoctorConfigTest, PassesForAValidAgentConfig) {
  std::optional<core::Config> config;
  CheckResult r = CheckConfig(std::string("collector = 127.0.0.1:7411\nhost = dmz\n"), "a.conf",
                              {"collector", "host"}, {"collector"}, &config);
  EXPECT_EQ(r.level, CheckLevel::kOk) << r.what;
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->GetString("host"), "dmz");
}

TEST(DoctorConfigTest, FailsNamingTheLineOfAnUnknownKey) {
  std::optional<core::Config> config;
  CheckResult r = CheckConfig(std::string("collector = x:1\ncolector = y\n"), "a.conf",
                              {"collector"}, {"collector"}, &config);
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_THAT(r.what, HasSubstr("a.conf:2"));
  EXPECT_FALSE(r.fix.empty());
  EXPECT_FALSE(config.has_value());
}

TEST(DoctorConfigTest, FailsWhenARequiredKeyIsMissingOrTheFileUnreadable) {
  std::optional<core::Config> config;
  CheckResult missing = CheckConfig(std::string("host = dmz\n"), "a.conf", {"collector", "host"},
                                    {"collector"}, &config);
  EXPECT_EQ(missing.level, CheckLevel::kFail);
  EXPECT_THAT(missing.what, HasSubstr("collector"));
  CheckResult unreadable = CheckConfig(absl::NotFoundError("cannot read a.conf"), "a.conf",
                                       {"collector"}, {"collector"}, &config);
  EXPECT_EQ(unreadable.level, CheckLevel::kFail);
}

TEST(DoctorConfigTest, AgentAndCollectorKeyListsAreTheProgramsOwn) {
  std::string dir = TempDir();
  DoctorEnv env;
  env.lookup_user = [](const std::string&) -> absl::StatusOr<UserInfo> {
    return absl::NotFoundError("no user");
  };
  env.probe = [](const core::Config&) { return ProbeResult{}; };
  env.run = [](const std::vector<std::string>&) -> absl::StatusOr<agent::CommandOutput> {
    return agent::CommandOutput{0, "yes\n", ""};
  };
  env.system_zone = "UTC";
  DoctorOptions options;
  // Keys the agent takes (queue view and batching), one a collector key it must refuse.
  options.agent_config = WriteFile(dir, "agent.conf",
                                   "collector = 127.0.0.1:7411\nqueue_interval_s = 60\n"
                                   "batch_lines = 100\n");
  EXPECT_EQ(RunDoctorChecks(options, env)[0].level, CheckLevel::kOk);
  options.agent_config = WriteFile(dir, "bad.conf", "collector = 127.0.0.1:7411\nhot_days = 3\n");
  EXPECT_EQ(RunDoctorChecks(options, env)[0].level, CheckLevel::kFail);
}

TEST(DoctorAddressesTest, WarnsWhenAnAgentDeclaresNoAddresses) {
  CheckResult none = CheckDeclaredAddresses("", "");
  EXPECT_EQ(none.level, CheckLevel::kWarn);
  EXPECT_THAT(none.fix, HasSubstr("addresses ="));
  CheckResult declared = CheckDeclaredAddresses("10.1.0.2, 127.0.0.2", "dmz.example.org");
  EXPECT_EQ(declared.level, CheckLevel::kOk);
  EXPECT_THAT(declared.what, HasSubstr("127.0.0.2"));
}

// ---- maillog readable by the agent's user ----

constexpr uid_t kAgentUid = 998;
constexpr gid_t kAgentGid = 998;
constexpr gid_t kAdm = 4;

UserInfo Agent(std::vector<gid_t> groups) { return UserInfo{"maillens", kAgentUid, groups}; }

TEST(DoctorMaillogTest, FailsForPostfixLogrotatesRoot0600) {
  // What 'postfix logrotate' leaves behind: a new file 0600 root:root.
  CheckResult r = CheckReadableBy("maillog", "/var/log/postfix.log", FileInfo{0, 0, S_IFREG | 0600},
                                  Agent({kAgentGid, kAdm}));
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_THAT(r.what, HasSubstr("0600"));
  EXPECT_THAT(r.what, HasSubstr("not readable by maillens"));
  EXPECT_THAT(r.fix, HasSubstr("postfix logrotate"));
  EXPECT_THAT(r.fix, HasSubstr("chmod 0640"));
}

TEST(DoctorMaillogTest, PassesThroughGroupAdmAndFailsWithoutIt) {
  FileInfo rsyslog{0, kAdm, S_IFREG | 0640};
  EXPECT_EQ(
      CheckReadableBy("maillog", "/var/log/mail.log", rsyslog, Agent({kAgentGid, kAdm})).level,
      CheckLevel::kOk);
  EXPECT_EQ(CheckReadableBy("maillog", "/var/log/mail.log", rsyslog, Agent({kAgentGid})).level,
            CheckLevel::kFail);
}

TEST(DoctorMaillogTest, OwnerBitsApplyToTheOwnerEvenWhenOthersMayRead) {
  // Owner bits win: 0044 owned by the agent is not readable by it.
  EXPECT_EQ(
      CheckReadableBy("maillog", "f", FileInfo{kAgentUid, 0, S_IFREG | 0044}, Agent({kAgentGid}))
          .level,
      CheckLevel::kFail);
  EXPECT_EQ(
      CheckReadableBy("maillog", "f", FileInfo{kAgentUid, 0, S_IFREG | 0400}, Agent({kAgentGid}))
          .level,
      CheckLevel::kOk);
}

TEST(DoctorMaillogTest, RealFilesThroughStat) {
  std::string dir = TempDir();
  std::string path = WriteFile(dir, "mail.log", "x\n");
  UserInfo other{"someone-else", getuid() + 1, {getgid() + 1}};
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  EXPECT_EQ(CheckReadableBy("maillog", path, StatFile(path), other).level, CheckLevel::kFail);
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_EQ(CheckReadableBy("maillog", path, StatFile(path), other).level, CheckLevel::kOk);
  EXPECT_EQ(CheckReadableBy("maillog", dir + "/absent", StatFile(dir + "/absent"), other).level,
            CheckLevel::kWarn);
}

TEST(DoctorDataDirTest, WritableByOwnerNotByOthers) {
  FileInfo dir{kAgentUid, kAgentGid, S_IFDIR | 0750};
  EXPECT_EQ(CheckWritableDirBy("data_dir", "/var/lib/maillens", dir, Agent({kAgentGid})).level,
            CheckLevel::kOk);
  EXPECT_EQ(CheckWritableDirBy("data_dir", "/var/lib/maillens", dir,
                               UserInfo{"nobody", 65534, {65534, kAgentGid}})
                .level,
            CheckLevel::kFail);
}

// ---- the collector ----

TEST(DoctorCollectorTest, PassesWhenHealthyAndTheTokenIsAccepted) {
  ProbeResult probe;
  EXPECT_EQ(CheckCollectorProbe("collector:7411", probe).level, CheckLevel::kOk);
}

TEST(DoctorCollectorTest, FailsWhenUnreachableOrTheTokenIsRefused) {
  ProbeResult down;
  down.health = absl::UnavailableError("failed to connect to all addresses");
  CheckResult r = CheckCollectorProbe("collector:7411", down);
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_THAT(r.what, HasSubstr("failed to connect"));
  EXPECT_THAT(r.fix, HasSubstr("tls_ca"));
  ProbeResult refused;
  refused.authenticated = absl::UnauthenticatedError("unknown token");
  r = CheckCollectorProbe("collector:7411", refused);
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_THAT(r.fix, HasSubstr("agent_tokens_file"));
}

// ---- clocks ----

TEST(DoctorClockTest, AgainstTheCollectorWithinAndBeyondTheSkew) {
  ProbeResult probe;
  probe.local_now_us = 1'000'000'000'000;
  probe.collector_now_us = probe.local_now_us - 20'000'000;  // 20 s
  EXPECT_EQ(CheckClockAgainstCollector(probe, kCorrelationSkew).level, CheckLevel::kOk);
  probe.collector_now_us = probe.local_now_us + 200'000'000;  // 200 s
  CheckResult r = CheckClockAgainstCollector(probe, kCorrelationSkew);
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_THAT(r.what, HasSubstr("behind"));
  EXPECT_THAT(r.fix, HasSubstr("NTP"));
  probe.collector_now_us.reset();
  EXPECT_EQ(CheckClockAgainstCollector(probe, kCorrelationSkew).level, CheckLevel::kWarn);
}

TEST(DoctorClockTest, AgentLinesFromTheFutureFailOnTheCollector) {
  v1::StatusResponse status;
  v1::AgentStatus* dmz = status.add_agents();
  dmz->set_host("dmz");
  dmz->set_last_seen_us(1'000'000'000'000);
  dmz->set_last_event_us(dmz->last_seen_us() - 3'000'000);  // written 3 s before arrival
  EXPECT_EQ(CheckAgentClocks(status, kCorrelationSkew).level, CheckLevel::kOk);
  v1::AgentStatus* mx = status.add_agents();
  mx->set_host("mx");
  mx->set_last_seen_us(1'000'000'000'000);
  mx->set_last_event_us(mx->last_seen_us() + 300'000'000);  // 5 min in the future
  CheckResult r = CheckAgentClocks(status, kCorrelationSkew);
  EXPECT_EQ(r.level, CheckLevel::kFail);
  EXPECT_THAT(r.what, HasSubstr("mx"));
  EXPECT_THAT(r.what, ::testing::Not(HasSubstr("dmz")));
}

// ---- time zone ----

TEST(DoctorTimeZoneTest, PassesWhenUnsetOrTheSameAsTheSystem) {
  absl::Time now = absl::FromUnixSeconds(1733335200);
  EXPECT_EQ(CheckTimeZone("", "Europe/Berlin", now).level, CheckLevel::kOk);
  EXPECT_EQ(CheckTimeZone("Europe/Paris", "Europe/Berlin", now).level, CheckLevel::kOk);
}

TEST(DoctorTimeZoneTest, WarnsWhenItDiffersAndFailsWhenUnknown) {
  absl::Time now = absl::FromUnixSeconds(1733335200);
  CheckResult r = CheckTimeZone("America/New_York", "Europe/Berlin", now);
  EXPECT_EQ(r.level, CheckLevel::kWarn);
  EXPECT_THAT(r.what, HasSubstr("Europe/Berlin"));
  EXPECT_EQ(CheckTimeZone("Mars/Olympus", "UTC", now).level, CheckLevel::kFail);
}

// ---- enable_long_queue_ids ----

agent::CommandRunner FakePostconf(std::string answer, std::vector<std::string>* argv_seen) {
  return [answer,
          argv_seen](const std::vector<std::string>& argv) -> absl::StatusOr<agent::CommandOutput> {
    *argv_seen = argv;
    return agent::CommandOutput{0, answer, ""};
  };
}

TEST(DoctorQueueIdsTest, PassesWhenLongIdsAreOn) {
  std::vector<std::string> argv;
  EXPECT_EQ(CheckLongQueueIds(FakePostconf("yes\n", &argv), "/etc/postfix-dmz").level,
            CheckLevel::kOk);
  EXPECT_EQ(argv, (std::vector<std::string>{"postconf", "-c", "/etc/postfix-dmz", "-h",
                                            "enable_long_queue_ids"}));
}

TEST(DoctorQueueIdsTest, WarnsWhenOffOrPostconfCannotBeAsked) {
  std::vector<std::string> argv;
  CheckResult r = CheckLongQueueIds(FakePostconf("no\n", &argv), "");
  EXPECT_EQ(r.level, CheckLevel::kWarn);
  EXPECT_EQ(argv, (std::vector<std::string>{"postconf", "-h", "enable_long_queue_ids"}));
  EXPECT_THAT(r.fix, HasSubstr("reused"));
  EXPECT_THAT(r.fix, HasSubstr("enable_long_queue_ids=yes"));
  r = CheckLongQueueIds(
      [](const std::vector<std::string>&) -> absl::StatusOr<agent::CommandOutput> {
        return absl::NotFoundError("cannot run postconf: No such file or directory");
      },
      "");
  EXPECT_EQ(r.level, CheckLevel::kWarn);
  EXPECT_THAT(r.what, HasSubstr("No such file"));
}

}  // namespace
}  // namespace maillens::cli
