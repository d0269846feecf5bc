// A real tailer and shipper against a real collector in this process, whose limits are far
// below what the agent would send: few events per batch, small messages, a 20 MB line. Every
// line arrives exactly once, the stream never stops on one line, a line no longer than the
// collector's max_line_bytes is stored whole even when max_message_bytes is no larger, a cut
// line's marker gives its true length and both sides' warnings say who cut it under which
// limit, and every refusal reaches the agent's warnings once per reason (then again with a
// count), never as a bare CANCELLED. Both with a collector that announces its limits in its
// first acknowledgement and with one that does not (the agent then learns them from
// refusals). The last tests run the maillens-collector and maillens-agent programs with the
// limits in the collector's configuration file.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "agent/config_keys.h"
#include "agent/shipper.h"
#include "agent/tailer.h"
#include "cli/doctor_command.h"
#include "collector/server.h"
#include "core/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "store/retention.h"
#include "store/sqlite.h"
#include "tests/ingest_harness.h"

namespace maillens {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr size_t kHugeLine = 20 << 20;  // 20 MB

std::string Line(int i) {
  return absl::StrFormat(
      "Dec  4 10:%02d:%02d mx1 postfix/smtpd[%d]: connect from client-%d.example.net[192.0.2.%d]",
      (i / 60) % 60, i % 60, 1000 + i, i, i % 250);
}

// A delivery line of exactly `bytes` bytes whose reply text makes up almost all of it, so that
// the fields the agent parses out of it are about as long as the line itself. The text is not
// one repeated byte: a line stored whole must be stored byte for byte.
std::string LongLine(int i, size_t bytes) {
  std::string line = absl::StrFormat(
      "Dec  4 11:%02d:%02d mx1 postfix/smtp[%d]: 4F1A2B%04X: to=<rcpt%d@example.net>, "
      "relay=mx.example.net[198.51.100.7]:25, delay=0.2, delays=0.1/0/0.05/0.05, dsn=5.0.0, "
      "status=bounced (host mx.example.net[198.51.100.7] said: 550 ",
      (i / 60) % 60, i % 60, 2000 + i, i, i);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (size_t k = 0; line.size() + 1 < bytes; ++k) line += alphabet[(k * 7 + i) % alphabet.size()];
  line += ')';
  return line;
}

class AgentLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "maillens_agent_limits_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ + "/data");
    fs::create_directories(dir_ + "/state");
    log_ = dir_ + "/mail.log";
  }
  void TearDown() override {
    if (shipper_) shipper_->Stop();
    if (runner_.joinable()) runner_.join();
    shipper_.reset();
    tailer_.reset();
    server_.reset();
    fs::remove_all(dir_);
  }

  // Appends `lines` to the maillog; each is expected stored whole, exactly once.
  void AppendLines(const std::vector<std::string>& lines) {
    std::ofstream out(log_, std::ios::binary | std::ios::app);
    for (const std::string& line : lines) {
      out << line << "\n";
      written_.push_back(line);
    }
  }

  // Writes `n` distinct lines, with `huge` (if not empty) after the first third.
  void WriteLog(int n, const std::string& huge = "") {
    std::ofstream out(log_, std::ios::binary);
    for (int i = 0; i < n; ++i) {
      out << Line(i) << "\n";
      written_.push_back(Line(i));
      if (i == n / 3 && !huge.empty()) out << huge << "\n";
    }
  }

  // On a free port, or on `port` (a collector that comes back where the agent looks for it).
  void StartCollector(collector::ServerOptions options, int port = 0) {
    options.listen = absl::StrCat("127.0.0.1:", port);
    options.data_dir = dir_ + "/data";
    // What the collector logs, kept to be read by the test and shown on stderr.
    collector_log_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
    collector_log_->set_pattern("%l: %v");
    options.logger = std::make_shared<spdlog::logger>(
        "collector",
        spdlog::sinks_init_list{collector_log_, std::make_shared<spdlog::sinks::stderr_sink_mt>()});
    auto server = collector::CollectorServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void StartAgent(agent::ShipperOptions options, size_t tailer_max_line = 32 << 20) {
    StartAgentFor(server_->port(), std::move(options), tailer_max_line);
  }

  void StartAgentFor(int port, agent::ShipperOptions options, size_t tailer_max_line = 32 << 20) {
    agent::TailerOptions topts;
    topts.paths = {log_};
    topts.state_dir = dir_ + "/state";
    topts.sync_checkpoints = false;
    topts.max_line_bytes = tailer_max_line;
    auto tailer = agent::Tailer::Open(topts);
    ASSERT_TRUE(tailer.ok()) << tailer.status();
    tailer_ = *std::move(tailer);
    options.collector = absl::StrCat("127.0.0.1:", port);
    options.credentials = grpc::InsecureChannelCredentials();
    options.hello.set_host("mx1");
    options.batch_wait = absl::Milliseconds(20);
    options.backoff_initial = absl::Milliseconds(20);
    options.backoff_max = absl::Milliseconds(200);
    options.log = [this](const std::string& m) {
      std::lock_guard<std::mutex> lock(mu_);
      infos_.push_back(m);
      agent_log_.push_back("info: " + m);
    };
    options.warn = [this](const std::string& m) {
      std::lock_guard<std::mutex> lock(mu_);
      warnings_.push_back(m);
      agent_log_.push_back("warning: " + m);
    };
    shipper_ = std::make_unique<agent::Shipper>(tailer_.get(), std::move(options));
    runner_ = std::thread([this] { shipper_->Run(); });
  }

  // Polls until the shipper has `n` lines acknowledged and the collector has indexed them.
  bool WaitAcked(uint64_t n, std::chrono::seconds limit = std::chrono::seconds(90)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (shipper_->stats().lines_acked >= n) {
        return server_->WaitIndexed(absl::Now() + absl::Seconds(30));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Every stored raw line, with how often it is stored.
  std::map<std::string, int> Stored() {
    std::map<std::string, int> out;
    for (int64_t day : store::HotDays(dir_ + "/data")) {
      auto db = store::Database::Open(absl::StrCat(dir_, "/data/days/", day, ".db"),
                                      store::Database::Mode::kReadOnly);
      EXPECT_TRUE(db.ok()) << db.status();
      if (!db.ok()) continue;
      auto select = (*db)->Prepare("SELECT raw FROM events");
      EXPECT_TRUE(select.ok());
      while (true) {
        auto step = select->Step();
        EXPECT_TRUE(step.ok());
        if (!step.ok() || *step == store::Statement::StepResult::kDone) break;
        ++out[std::string(select->ColumnText(0))];
      }
    }
    return out;
  }

  // Every written line stored exactly once, and (when `huge` was written) one more line: the
  // huge one's start with a marker of its true length. Returns that line ("" if none).
  std::string ExpectEveryLineOnce(const std::string& huge = "") {
    std::map<std::string, int> stored = Stored();
    int missing = 0, doubled = 0;
    for (const std::string& line : written_) {
      auto it = stored.find(line);
      if (it == stored.end()) {
        if (++missing <= 3) ADD_FAILURE() << "missing: " << line;
        continue;
      }
      if (it->second != 1 && ++doubled <= 3) ADD_FAILURE() << it->second << "x: " << line;
      stored.erase(it);
    }
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(doubled, 0);
    if (huge.empty()) {
      EXPECT_TRUE(stored.empty()) << stored.size() << " lines never written, e.g. "
                                  << stored.begin()->first.substr(0, 200);
      return "";
    }
    EXPECT_EQ(stored.size(), 1u);
    if (stored.empty()) return "";
    const std::string cut = stored.begin()->first;
    EXPECT_EQ(stored.begin()->second, 1);
    // Its start, then the marker with the true length.
    EXPECT_EQ(cut.substr(0, 100), huge.substr(0, 100));
    EXPECT_THAT(cut, HasSubstr(absl::StrCat(collector::kTruncationMarker, huge.size(), " bytes]")));
    EXPECT_LT(cut.size(), huge.size());
    return cut;
  }

  std::vector<std::string> Warnings() {
    std::lock_guard<std::mutex> lock(mu_);
    return warnings_;
  }
  std::vector<std::string> Infos() {
    std::lock_guard<std::mutex> lock(mu_);
    return infos_;
  }
  // The agent's infos and warnings in the order they came ("info: ...", "warning: ...").
  std::vector<std::string> AgentLog() {
    std::lock_guard<std::mutex> lock(mu_);
    return agent_log_;
  }
  // The collector's warnings about what an agent sent (not those of its start).
  std::vector<std::string> CollectorWarnings() {
    std::vector<std::string> out;
    if (!collector_log_) return out;
    for (const std::string& line : collector_log_->last_formatted()) {
      if (absl::StartsWith(line, "warning: agent ")) out.push_back(line);
    }
    return out;
  }

  std::string HugeLine() {
    std::string huge = Line(99999) + " ";
    huge.append(kHugeLine - huge.size(), 'x');
    return huge;
  }

  std::string dir_, log_;
  std::vector<std::string> written_;
  std::unique_ptr<collector::CollectorServer> server_;
  std::unique_ptr<agent::Tailer> tailer_;
  std::unique_ptr<agent::Shipper> shipper_;
  std::thread runner_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> collector_log_;
  std::mutex mu_;
  std::vector<std::string> infos_, warnings_, agent_log_;
};

// The collector takes 7 events per batch; the agent is configured for 2000. Announced in the
// first acknowledgement: no batch is ever refused.
TEST_F(AgentLimitsTest, BatchesAreSizedToTheAnnouncedMaxBatchEvents) {
  collector::ServerOptions options;
  options.max_batch_events = 7;
  StartCollector(options);
  WriteLog(500);
  agent::ShipperOptions sopts;
  sopts.batch_lines = 2000;
  StartAgent(sopts);
  ASSERT_TRUE(WaitAcked(500)) << shipper_->stats().last_error;
  ExpectEveryLineOnce();
  EXPECT_EQ(shipper_->stats().limit_batch_events, 7u);
  EXPECT_EQ(shipper_->stats().batches_refused, 0u);
  EXPECT_EQ(server_->Stats().batches_rejected, 0u);
  EXPECT_THAT(Warnings(), ::testing::IsEmpty());
}

// The same collector, but silent about its limits (an older one): the agent halves its batches
// on each refusal, down to what fits, warns once per reason, and loses and doubles nothing.
TEST_F(AgentLimitsTest, UnannouncedMaxBatchEventsIsLearntFromRefusals) {
  collector::ServerOptions options;
  options.max_batch_events = 7;
  options.announce_limits = false;
  StartCollector(options);
  WriteLog(500);
  agent::ShipperOptions sopts;
  sopts.batch_lines = 2000;
  StartAgent(sopts);
  ASSERT_TRUE(WaitAcked(500)) << shipper_->stats().last_error;
  ExpectEveryLineOnce();
  EXPECT_GT(shipper_->stats().batches_refused, 0u);
  std::vector<std::string> warnings = Warnings();
  ASSERT_FALSE(warnings.empty());
  for (const std::string& w : warnings) {
    EXPECT_THAT(w, HasSubstr("max_batch_events"));
    EXPECT_THAT(w, Not(HasSubstr("CANCELLED")));
  }
}

// Messages of at most 32 KiB, lines of 200 bytes and one of 100 KB: batches are packed to fit
// the announced size, the long line is cut with its true length.
TEST_F(AgentLimitsTest, BatchesFitTheAnnouncedMaxMessageBytes) {
  collector::ServerOptions options;
  options.max_message_bytes = 32 << 10;
  options.max_line_bytes = 1 << 20;  // more than a message: the message is the limit
  StartCollector(options);
  std::string long_line = Line(77777) + " ";
  long_line.append(100000 - long_line.size(), 'y');
  WriteLog(2000, long_line);
  StartAgent(agent::ShipperOptions());
  ASSERT_TRUE(WaitAcked(2001)) << shipper_->stats().last_error;
  ExpectEveryLineOnce(long_line);
  EXPECT_EQ(shipper_->stats().batches_refused, 0u) << ::testing::PrintToString(AgentLog());
  EXPECT_EQ(shipper_->stats().lines_cut, 1u);
}

// One 20 MB line (the agent's max_line_bytes is 32M) to a collector with the default limits:
// stored cut, with its true length; the lines after it arrive.
TEST_F(AgentLimitsTest, ATwentyMegabyteLineIsCutWithItsTrueLengthAndTheStreamGoesOn) {
  StartCollector(collector::ServerOptions());
  const std::string huge = HugeLine();
  WriteLog(300, huge);
  StartAgent(agent::ShipperOptions());
  ASSERT_TRUE(WaitAcked(301)) << shipper_->stats().last_error;
  const std::string cut = ExpectEveryLineOnce(huge);
  // The collector's max_line_bytes (64 KiB by default), then the marker.
  EXPECT_LE(cut.size(), collector::ServerOptions().max_line_bytes + 64);
  EXPECT_EQ(shipper_->stats().batches_refused, 0u);
}

// The same line to a collector that announces nothing and takes 64 KiB messages: gRPC refuses
// the message (RESOURCE_EXHAUSTED), the agent goes down to single lines and cuts the one that
// still does not fit until it does.
TEST_F(AgentLimitsTest, ATwentyMegabyteLineGetsThroughAnUnannouncedMessageLimit) {
  collector::ServerOptions options;
  options.max_message_bytes = 64 << 10;
  options.announce_limits = false;
  StartCollector(options);
  const std::string huge = HugeLine();
  WriteLog(300, huge);
  StartAgent(agent::ShipperOptions());
  ASSERT_TRUE(WaitAcked(301)) << shipper_->stats().last_error;
  ExpectEveryLineOnce(huge);
  EXPECT_GT(shipper_->stats().batches_refused, 0u);
  std::vector<std::string> warnings = Warnings();
  ASSERT_FALSE(warnings.empty());
  EXPECT_THAT(warnings[0], HasSubstr("RESOURCE_EXHAUSTED"));
}

// A token issued to another host: the collector's reason reaches the warnings, once however
// often the agent reconnects, and never as CANCELLED.
TEST_F(AgentLimitsTest, ARefusedTokenIsWarnedOnceWithTheCollectorsReason) {
  collector::ServerOptions options;
  options.agent_tokens =
      std::vector<collector::TokenEntry>{{"other", "token-of-other-host-0123456789"}};
  StartCollector(options);
  WriteLog(10);
  agent::ShipperOptions sopts;
  sopts.token = "token-of-other-host-0123456789";
  StartAgent(sopts);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (shipper_->stats().reconnects < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(shipper_->stats().reconnects, 4u);
  std::vector<std::string> warnings = Warnings();
  ASSERT_EQ(warnings.size(), 1u) << ::testing::PrintToString(warnings);
  EXPECT_THAT(warnings[0], HasSubstr("may not speak for host 'mx1'"));
  EXPECT_THAT(warnings[0], HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(warnings[0], Not(HasSubstr("CANCELLED")));
  EXPECT_EQ(shipper_->stats().lines_acked, 0u);
  // Every later refusal is the same reason, counted for the next report, not a stream that
  // merely "ended (CANCELLED)" at info level.
  for (const std::string& info : Infos()) EXPECT_THAT(info, Not(HasSubstr("CANCELLED")));
}

// Said again after warn_interval, with how often it recurred.
TEST_F(AgentLimitsTest, ARecurringRefusalIsCounted) {
  collector::ServerOptions options;
  options.agent_tokens = std::vector<collector::TokenEntry>{{"mx1", "the-right-token-0123456789"}};
  StartCollector(options);
  WriteLog(10);
  agent::ShipperOptions sopts;
  sopts.token = "a-wrong-token-0123456789";
  sopts.warn_interval = absl::Milliseconds(300);
  StartAgent(sopts);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // A reconnection's backoff may outlast one interval, so a later warning (not necessarily
  // the second) is the one that carries the count.
  auto counted = [&] {
    for (const std::string& w : Warnings()) {
      if (w.find("times since the last report") != std::string::npos) return true;
    }
    return false;
  };
  while (!counted() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<std::string> warnings = Warnings();
  ASSERT_GE(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], HasSubstr("UNAUTHENTICATED"));
  EXPECT_TRUE(counted()) << ::testing::PrintToString(warnings);
  // Each stream ended with the collector's refusal, none with our own cancel racing it.
  for (const std::string& info : Infos()) EXPECT_THAT(info, Not(HasSubstr("CANCELLED")));
}

// `maillens doctor` on a mail host: a token the collector knows, but issued to another host,
// fails the collector check naming both; this host's own token passes. Nothing is stored.
TEST_F(AgentLimitsTest, DoctorFailsATokenIssuedToAnotherHost) {
  collector::ServerOptions options;
  options.agent_tokens = std::vector<collector::TokenEntry>{{"mx1", "token-of-mx1-0123456789"},
                                                            {"other", "token-of-other-0123456789"}};
  StartCollector(options);
  auto probe = [&](const std::string& token) {
    const std::string text = absl::StrCat("collector = 127.0.0.1:", server_->port(),
                                          "\nhost = mx1\ntoken = ", token, "\n");
    auto config = core::Config::Parse(text, "agent.conf", agent::AgentConfigKeys());
    EXPECT_TRUE(config.ok()) << config.status();
    return cli::SystemDoctorEnv().probe(*config);
  };
  cli::ProbeResult other = probe("token-of-other-0123456789");
  ASSERT_TRUE(other.health.ok()) << other.health;
  EXPECT_TRUE(absl::IsPermissionDenied(other.authenticated)) << other.authenticated;
  EXPECT_THAT(std::string(other.authenticated.message()),
              HasSubstr("the token for 'other' may not speak for host 'mx1'"));
  EXPECT_EQ(cli::CheckCollectorProbe("collector", other).level, cli::CheckLevel::kFail);

  cli::ProbeResult own = probe("token-of-mx1-0123456789");
  EXPECT_TRUE(own.authenticated.ok()) << own.authenticated;
  EXPECT_EQ(cli::CheckCollectorProbe("collector", own).level, cli::CheckLevel::kOk);
  // A probe is a check, not a connection: nothing went to the writer.
  EXPECT_EQ(server_->Stats().batches_committed, 0u);
}

// The tailer's own cut (the agent's max_line_bytes, far below the collector's): the stored line
// is the tailer's first max_line_bytes bytes and the marker gives the line's length in the
// file, not the length the agent cut it to.
TEST_F(AgentLimitsTest, ALineCutByTheTailerIsMarkedWithItsTrueLength) {
  collector::ServerOptions options;
  options.max_line_bytes = 1 << 20;  // the collector would take the whole line
  StartCollector(options);
  std::string long_line = Line(88888) + " ";
  long_line.append(100000 - long_line.size(), 'z');
  WriteLog(300, long_line);
  StartAgent(agent::ShipperOptions(), /*tailer_max_line=*/4096);
  ASSERT_TRUE(WaitAcked(301)) << shipper_->stats().last_error;
  const std::string cut = ExpectEveryLineOnce(long_line);  // the marker says 100000 bytes
  EXPECT_EQ(cut, long_line.substr(0, 4096) +
                     absl::StrCat(collector::kTruncationMarker, long_line.size(), " bytes]"));
  // Who cut it and under which limit: the agent, under its own max_line_bytes. The collector's
  // max_line_bytes (1M) did not apply, and its warning must not say that it did.
  std::vector<std::string> collector_warnings = CollectorWarnings();
  ASSERT_EQ(collector_warnings.size(), 1u) << ::testing::PrintToString(collector_warnings);
  EXPECT_THAT(collector_warnings[0], HasSubstr("cut by the agent"));
  EXPECT_THAT(collector_warnings[0], HasSubstr("4096 of 100000 bytes"));
  EXPECT_THAT(collector_warnings[0], Not(HasSubstr("longer than max_line_bytes")));
  std::vector<std::string> warnings = Warnings();
  ASSERT_EQ(warnings.size(), 1u) << ::testing::PrintToString(warnings);
  EXPECT_THAT(warnings[0], HasSubstr("this agent's max_line_bytes (4096)"));
  EXPECT_THAT(warnings[0], HasSubstr("100000 bytes"));
}

// The tester's case: max_line_bytes = max_message_bytes = 64K. A line of up to max_line_bytes
// always fits one message (the collector takes a message of max_line_bytes plus what a batch
// holds besides the line), so every one is stored whole, byte for byte, even one whose parsed
// fields are as long as the line. They were cut to 24576 bytes (the agent kept half of the
// message, less a 16 KiB margin, for a line), and the collector's warning blamed its own
// max_line_bytes.
TEST_F(AgentLimitsTest, LinesUpToMaxLineBytesAreStoredWholeWhenMessagesAreNoLarger) {
  collector::ServerOptions options;
  options.max_line_bytes = 64 << 10;
  options.max_message_bytes = 64 << 10;
  StartCollector(options);
  std::vector<std::string> lines;
  int i = 0;
  for (size_t bytes : {20000, 24000, 24576, 25000, 30000, 50000, 65535, 65536}) {
    lines.push_back(Line(i));
    lines.push_back(LongLine(i, bytes));
    ASSERT_EQ(lines.back().size(), bytes);
    ++i;
  }
  for (int k = 0; k < 200; ++k) lines.push_back(Line(100 + k));
  AppendLines(lines);
  StartAgent(agent::ShipperOptions());
  ASSERT_TRUE(WaitAcked(lines.size())) << shipper_->stats().last_error;
  ExpectEveryLineOnce();  // every line as written: none cut
  EXPECT_EQ(shipper_->stats().lines_cut, 0u);
  EXPECT_EQ(shipper_->stats().batches_refused, 0u);
  EXPECT_EQ(server_->Stats().lines_truncated, 0u);
  EXPECT_THAT(Warnings(), IsEmpty());
  EXPECT_THAT(CollectorWarnings(), IsEmpty());
}

// The same limits and a line of 100000 bytes, over max_line_bytes: stored as its first 65536
// bytes and the marker with its true length; the line right after it (65535 bytes) and all the
// others whole. Both warnings name the limit that cut it: the collector's max_line_bytes.
TEST_F(AgentLimitsTest, ALineOverMaxLineBytesIsCutAtItAndTheLinesAfterItAreStored) {
  collector::ServerOptions options;
  options.max_line_bytes = 64 << 10;
  options.max_message_bytes = 64 << 10;
  StartCollector(options);
  const std::string over = LongLine(1, 100000);
  std::vector<std::string> before, after;
  for (int k = 0; k < 100; ++k) before.push_back(Line(k));
  after.push_back(LongLine(2, 65535));
  for (int k = 100; k < 200; ++k) after.push_back(Line(k));
  AppendLines(before);
  {
    std::ofstream out(log_, std::ios::binary | std::ios::app);
    out << over << "\n";
  }
  AppendLines(after);
  StartAgent(agent::ShipperOptions());
  ASSERT_TRUE(WaitAcked(written_.size() + 1)) << shipper_->stats().last_error;
  const std::string cut = ExpectEveryLineOnce(over);
  EXPECT_EQ(cut, over.substr(0, 64 << 10) +
                     absl::StrCat(collector::kTruncationMarker, over.size(), " bytes]"));
  EXPECT_EQ(shipper_->stats().lines_cut, 1u);
  EXPECT_EQ(server_->Stats().lines_truncated, 1u);
  std::vector<std::string> collector_warnings = CollectorWarnings();
  ASSERT_EQ(collector_warnings.size(), 1u) << ::testing::PrintToString(collector_warnings);
  EXPECT_THAT(collector_warnings[0], HasSubstr("longer than max_line_bytes (65536)"));
  EXPECT_THAT(collector_warnings[0], Not(HasSubstr("cut by the agent below")));
  std::vector<std::string> warnings = Warnings();
  ASSERT_EQ(warnings.size(), 1u) << ::testing::PrintToString(warnings);
  EXPECT_THAT(warnings[0], HasSubstr("the collector's max_line_bytes (65536)"));
  EXPECT_THAT(warnings[0], HasSubstr("100000 bytes"));
}

// No collector where the agent sends: the first failed connection is told at info level (a
// collector restarting is not worth a warning), and once it has lasted
// unreachable_warn_after, a warning says for how long and why; when the collector comes back,
// the agent says so and ships.
TEST_F(AgentLimitsTest, AnUnreachableCollectorIsWarnedOnceItHasLasted) {
  StartCollector(collector::ServerOptions());
  const int port = server_->port();
  server_.reset();  // nothing listens on `port` now
  WriteLog(20);
  agent::ShipperOptions sopts;
  sopts.unreachable_warn_after = absl::Milliseconds(500);
  StartAgentFor(port, sopts);
  auto warned = [&] {
    for (const std::string& w : Warnings()) {
      if (absl::StrContains(w, "unreachable")) return true;
    }
    return false;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!warned() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::vector<std::string> log = AgentLog();
  ASSERT_TRUE(warned()) << ::testing::PrintToString(log);
  ASSERT_FALSE(log.empty());
  EXPECT_THAT(log[0], HasSubstr("info: "));  // the first blip
  std::vector<std::string> warnings = Warnings();
  EXPECT_THAT(warnings[0], HasSubstr(absl::StrCat("127.0.0.1:", port)));
  EXPECT_THAT(warnings[0], HasSubstr("UNAVAILABLE"));

  StartCollector(collector::ServerOptions(), port);
  ASSERT_TRUE(WaitAcked(20)) << shipper_->stats().last_error;
  ExpectEveryLineOnce();
  bool back = false;
  for (const std::string& m : Infos()) back = back || absl::StrContains(m, "reachable again");
  EXPECT_TRUE(back) << ::testing::PrintToString(AgentLog());
}

// The tester's configuration through the programs themselves: maillens-collector with
// max_line_bytes = max_message_bytes = 64K in its file, and maillens-agent. Every line of up to
// 64K is stored whole; the collector says at start which message size it accepts and why;
// neither program warns.
TEST_F(AgentLimitsTest, TheProgramsStoreLinesOfMaxLineBytesWholeWithMessagesNoLarger) {
  const int port = ingest_test::FreePort();
  const std::string conf = dir_ + "/collector.conf";
  ingest_test::WriteText(conf, absl::StrCat("listen = 127.0.0.1:", port, "\ndata_dir = ", dir_,
                                            "/data\nmax_line_bytes = 64K\n"
                                            "max_message_bytes = 64K\n"));
  ingest_test::Child collector("maillens-collector", {"--config", conf}, dir_ + "/collector.log");
  std::vector<std::string> lines;
  int i = 0;
  for (size_t bytes : {24000, 25000, 30000, 50000, 65535, 65536}) {
    lines.push_back(Line(i));
    lines.push_back(LongLine(i, bytes));
    ++i;
  }
  lines.push_back(Line(99));
  AppendLines(lines);
  ingest_test::Child agent(
      "maillens-agent",
      {"--config", ingest_test::WriteAgentConfig(dir_, port, "mx1", log_, dir_ + "/state", 2000)},
      dir_ + "/agent.log");
  collector.Start();
  agent.Start();
  std::map<std::string, int> stored;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = ingest_test::CountStored(dir_ + "/data");
    if (n.ok() && *n >= lines.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  agent.Stop();
  collector.Stop();
  std::map<std::string, int> expected;
  for (const std::string& line : lines) ++expected[line];
  stored = Stored();
  EXPECT_EQ(stored.size(), expected.size()) << collector.Log() << agent.Log();
  for (const auto& [line, n] : expected) {
    auto it = stored.find(line);
    EXPECT_TRUE(it != stored.end() && it->second == n)
        << "not stored whole (" << line.size() << " bytes): " << line.substr(0, 80);
  }
  for (const auto& [line, n] : stored) {
    EXPECT_EQ(expected.count(line), 1u) << "stored, never written: " << line.substr(0, 80) << "..."
                                        << line.substr(line.size() > 80 ? line.size() - 80 : 0);
  }
  EXPECT_THAT(collector.Log(), Not(HasSubstr("warning: agent")));
  EXPECT_THAT(collector.Log(), HasSubstr("max_message_bytes"));  // what it accepts, and why
  EXPECT_THAT(agent.Log(), Not(HasSubstr("warning:")));
}

// Limits that cannot work are refused when the collector starts, with a message that says
// what the limit is and why: a message size below the 64K minimum, and a message size smaller
// than the line size. They were refused with a bare '4K' is outside [65536, 1073741824].
TEST_F(AgentLimitsTest, TheCollectorRefusesLimitsThatCannotWorkAndSaysWhy) {
  struct Case {
    std::string limits;
    std::vector<std::string> said;
  };
  const std::vector<Case> cases = {
      {"max_message_bytes = 4K\n", {"max_message_bytes", "4K", "at least 64K", "hello"}},
      {"max_line_bytes = 1M\nmax_message_bytes = 64K\n",
       {"max_line_bytes (1048576)", "max_message_bytes (65536)", "could never arrive"}},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string conf = absl::StrCat(dir_, "/bad", n, ".conf");
    const std::string log = absl::StrCat(dir_, "/bad", n, ".log");
    ++n;
    ingest_test::WriteText(
        conf, absl::StrCat("listen = 127.0.0.1:0\ndata_dir = ", dir_, "/data\n", c.limits));
    ingest_test::Child collector("maillens-collector", {"--config", conf}, log);
    collector.Start();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (collector.Running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_FALSE(collector.Running()) << c.limits << " was accepted";
    EXPECT_TRUE(WIFEXITED(collector.exit_status()));
    EXPECT_EQ(WEXITSTATUS(collector.exit_status()), 2);
    for (const std::string& said : c.said) {
      EXPECT_THAT(collector.Log(), HasSubstr(said)) << c.limits;
    }
  }
}

}  // namespace
}  // namespace maillens
