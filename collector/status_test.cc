// The site's state end to end: gaps, agents and their progress sent over a real ingest
// stream (gRPC on 127.0.0.1, port 0) land in the catalog, StatusService reports them, and a
// search over their window says so. Also `maillens --data DIR status` on the result.
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/ingest_test_client.h"
#include "collector/server.h"
#include "collector/status_service.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maillens/v1/status.grpc.pb.h"
#include "report/report.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "store/store.h"

namespace maillens::collector {
namespace {

namespace v1 = ::maillens::v1;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgentMx1[] = "agent-mx1-0123456789abcdef";
constexpr char kReader[] = "reader-ops-0123456789abcdef";
constexpr int64_t kMay1 = 1714557600LL * 1000000;  // 2024-05-01T10:00:00Z
constexpr int64_t kSecond = 1000000;
constexpr uint64_t kFingerprint = 4242;

std::string Line(int second) {
  return absl::StrCat("May  1 10:00:", second < 10 ? "0" : "", second,
                      " mx1 postfix/smtpd[100]: connect from unknown[198.51.100.", second, "]");
}

void AddEvent(v1::Batch* batch, uint64_t offset, int second) {
  v1::Event* ev = batch->add_events();
  ev->set_raw(Line(second));
  ev->mutable_file()->set_path("/var/log/maillog");
  ev->mutable_file()->set_fingerprint(kFingerprint);
  ev->set_offset(offset);
  ev->set_time_us(kMay1 + second * kSecond);
}

void AddHello(v1::Batch* batch) {
  batch->mutable_hello()->set_host("mx1");
  batch->mutable_hello()->set_role("dmz");
  batch->mutable_hello()->set_version("maillens-agent 9.9");
  batch->mutable_hello()->add_addresses("192.0.2.25");
}

// Lines at offsets 0..400 (seconds 0..4), a gap over [500, 900) and lines at 900 and 1000
// (seconds 30, 31): the lost lines were written between second 4 and second 30.
v1::Batch BatchWithGap(uint64_t batch_id) {
  v1::Batch batch;
  batch.set_batch_id(batch_id);
  AddHello(&batch);
  for (int i = 0; i < 5; ++i) AddEvent(&batch, i * 100, i);
  AddEvent(&batch, 900, 30);
  AddEvent(&batch, 1000, 31);
  v1::FileGap* gap = batch.add_gaps();
  gap->mutable_file()->set_path("/var/log/maillog");
  gap->mutable_file()->set_fingerprint(kFingerprint);
  gap->set_from_offset(500);
  gap->set_to_offset(900);
  gap->set_to_known(true);
  gap->set_reason("missing");
  gap->set_detail("rotated away and deleted while the agent was down");
  gap->set_time_us(kMay1 + 3600 * kSecond);
  return batch;
}

class StatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("maillens_status_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string DataDir() const { return (dir_ / "data").string(); }

  void StartServer() {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = DataDir();
    options.agent_tokens = std::vector<TokenEntry>{{"mx1", kAgentMx1}};
    options.reader_tokens = std::vector<TokenEntry>{{"ops", kReader}};
    options.shutdown_grace = absl::Seconds(10);
    static auto logger = [] {
      auto l = std::make_shared<spdlog::logger>("status_test",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
      l->set_pattern("[server] %l: %v");
      return l;
    }();
    options.logger = logger;
    auto server = CollectorServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // One agent stream sends BatchWithGap(1) and ends; then the server stops, and what follows
  // reads the data directory alone.
  void IngestGapBatchAndStop() {
    IngestClient client(Channel(), kAgentMx1);
    auto ack = client.Send(BatchWithGap(1));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
    EXPECT_TRUE(client.Finish().ok());
    server_->Shutdown(absl::Seconds(10));
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                               grpc::InsecureChannelCredentials());
  }

  grpc::Status GetStatus(const std::string& token, v1::StatusResponse* response) {
    auto stub = v1::StatusService::NewStub(Channel());
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub->GetStatus(&context, v1::StatusRequest(), response);
  }

  // An ack means durable in the ingest journal; the status and the store show a batch once
  // the indexer applied it.
  void WaitIndexed() {
    if (server_ != nullptr) {
      ASSERT_TRUE(server_->WaitIndexed(absl::Now() + absl::Seconds(30)));
    }
  }

  v1::StatusResponse Status() {
    WaitIndexed();
    v1::StatusResponse response;
    grpc::Status status = GetStatus(kReader, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Polls the status until `done` holds or 20 s pass (a stream's end is recorded by the
  // writer shortly after the stream is gone); returns the last status read.
  v1::StatusResponse StatusWhen(const std::function<bool(const v1::StatusResponse&)>& done) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    v1::StatusResponse response = Status();
    while (!done(response) && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      response = Status();
    }
    return response;
  }

  std::vector<std::string> SearchNotices(int64_t since_us, int64_t until_us) {
    WaitIndexed();
    store::StoreOptions options;
    options.dir = DataDir();
    options.read_only = true;
    auto store = store::Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    store::SearchQuery query;
    query.since_us = since_us;
    query.until_us = until_us;
    auto result = (*store)->Search(query);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->notices : std::vector<std::string>();
  }

  std::filesystem::path dir_;
  std::unique_ptr<CollectorServer> server_;
};

bool AnyContains(const std::vector<std::string>& notices, const std::string& text) {
  for (const std::string& n : notices) {
    if (n.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_F(StatusTest, GapIsStoredOnceWhenItsBatchIsResent) {
  StartServer();
  {
    IngestClient client(Channel(), kAgentMx1);
    auto ack = client.Send(BatchWithGap(1));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
    // The same batch again on the same stream, then after a reconnect (a crash before the
    // ack reached the agent's checkpoint).
    ack = client.Send(BatchWithGap(2));
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
    WaitIndexed();
    EXPECT_EQ(server_->Stats().lines_duplicate, 7u);
    EXPECT_TRUE(client.Finish().ok());
  }
  IngestClient again(Channel(), kAgentMx1);
  auto ack = again.Send(BatchWithGap(1));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);

  v1::StatusResponse status = Status();
  EXPECT_EQ(status.gap_count(), 1u);
  ASSERT_EQ(status.gaps_size(), 1);
  const v1::GapStatus& gap = status.gaps(0);
  EXPECT_EQ(gap.host(), "mx1");
  EXPECT_EQ(gap.path(), "/var/log/maillog");
  EXPECT_EQ(gap.reason(), "missing");
  EXPECT_EQ(gap.from_offset(), 500u);
  EXPECT_TRUE(gap.to_known());
  EXPECT_EQ(gap.to_offset(), 900u);
  // Estimated from the stored lines on either side of the gap.
  EXPECT_EQ(gap.window_from_us(), kMay1 + 4 * kSecond);
  EXPECT_EQ(gap.window_to_us(), kMay1 + 30 * kSecond);
  EXPECT_TRUE(again.Finish().ok());
}

TEST_F(StatusTest, SearchOverAGapSaysSo) {
  StartServer();
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(BatchWithGap(1));
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

  std::vector<std::string> inside = SearchNotices(kMay1 + 10 * kSecond, kMay1 + 20 * kSecond);
  EXPECT_TRUE(AnyContains(inside, "gap: mx1 /var/log/maillog")) << testing::PrintToString(inside);
  EXPECT_TRUE(AnyContains(inside, "2024-05-01T10:00:04Z")) << testing::PrintToString(inside);
  std::vector<std::string> after = SearchNotices(kMay1 + 40 * kSecond, kMay1 + 50 * kSecond);
  EXPECT_FALSE(AnyContains(after, "gap:")) << testing::PrintToString(after);
  std::vector<std::string> before = SearchNotices(kMay1, kMay1 + 3 * kSecond);
  EXPECT_FALSE(AnyContains(before, "gap:")) << testing::PrintToString(before);
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(StatusTest, AgentIsConnectedThenOfflineWithTheSpanRecorded) {
  StartServer();
  {
    IngestClient client(Channel(), kAgentMx1);
    v1::Batch hello;
    hello.set_batch_id(1);
    AddHello(&hello);
    AddEvent(&hello, 0, 0);
    auto ack = client.Send(hello);
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

    v1::StatusResponse status = Status();
    ASSERT_EQ(status.agents_size(), 1);
    const v1::AgentStatus& agent = status.agents(0);
    EXPECT_EQ(agent.host(), "mx1");
    EXPECT_TRUE(agent.connected());
    EXPECT_EQ(agent.role(), "dmz");
    EXPECT_EQ(agent.version(), "maillens-agent 9.9");
    EXPECT_THAT(agent.addresses(), Contains("192.0.2.25"));
    EXPECT_EQ(agent.last_event_us(), kMay1);
    EXPECT_GT(agent.since_us(), 0);
    EXPECT_EQ(status.offline_count(), 0u);
    EXPECT_TRUE(status.has_ingest());
    EXPECT_EQ(status.ingest().lines_since_start(), 1u);
    EXPECT_GT(status.ingest().lines_per_second_last_minute(), 0.0);
    EXPECT_TRUE(client.Finish().ok());
  }
  v1::StatusResponse status = StatusWhen([](const v1::StatusResponse& s) {
    return s.agents_size() == 1 && !s.agents(0).connected() && s.offline_size() == 1;
  });
  ASSERT_EQ(status.agents_size(), 1);
  EXPECT_FALSE(status.agents(0).connected());
  EXPECT_EQ(status.offline_count(), 1u);
  ASSERT_EQ(status.offline_size(), 1);
  EXPECT_EQ(status.offline(0).host(), "mx1");
  EXPECT_EQ(status.offline(0).to_us(), 0);  // still offline
  const int64_t offline_from = status.offline(0).from_us();
  EXPECT_EQ(status.agents(0).since_us(), offline_from);
  std::vector<std::string> notices =
      SearchNotices(offline_from - 60 * kSecond, offline_from + 60 * kSecond);
  EXPECT_TRUE(AnyContains(notices, "agent mx1 offline since")) << testing::PrintToString(notices);

  // Back: the period closes, and stays recorded.
  IngestClient back(Channel(), kAgentMx1);
  v1::Batch hello;
  hello.set_batch_id(1);
  AddHello(&hello);
  auto ack = back.Send(hello);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  status = Status();
  ASSERT_EQ(status.agents_size(), 1);
  EXPECT_TRUE(status.agents(0).connected());
  ASSERT_EQ(status.offline_size(), 1);
  EXPECT_EQ(status.offline(0).from_us(), offline_from);
  EXPECT_GE(status.offline(0).to_us(), offline_from);
  notices = SearchNotices(offline_from - 60 * kSecond, offline_from + 60 * kSecond);
  EXPECT_TRUE(AnyContains(notices, "agent mx1 was offline from"))
      << testing::PrintToString(notices);
  EXPECT_TRUE(back.Finish().ok());
}

TEST_F(StatusTest, ProgressGivesTheLagInBytesAndSeconds) {
  StartServer();
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch;
  batch.set_batch_id(1);
  AddHello(&batch);
  for (int i = 0; i < 5; ++i) AddEvent(&batch, i * 100, i);
  v1::FileProgress* progress = batch.add_progress();
  progress->mutable_file()->set_path("/var/log/maillog");
  progress->mutable_file()->set_fingerprint(kFingerprint);
  progress->set_size(5000);
  progress->set_read_offset(500);
  progress->set_acked_offset(0);  // nothing acknowledged when the agent sent it
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

  v1::StatusResponse status = Status();
  ASSERT_EQ(status.agents_size(), 1);
  // Committed now: up to the end of the batch's last line of that file.
  const uint64_t committed = 400 + Line(4).size() + 1;
  EXPECT_EQ(status.agents(0).lag_bytes(), 5000 - committed);
  ASSERT_EQ(status.agents(0).files_size(), 1);
  EXPECT_EQ(status.agents(0).files(0).acked_offset(), committed);
  EXPECT_EQ(status.agents(0).files(0).size(), 5000u);
  // Behind: by at least the age of its newest stored line (2024).
  EXPECT_GT(status.agents(0).lag_seconds(), 86400);

  // Caught up.
  v1::Batch more;
  more.set_batch_id(2);
  AddEvent(&more, 500, 5);
  progress = more.add_progress();
  progress->mutable_file()->set_path("/var/log/maillog");
  progress->mutable_file()->set_fingerprint(kFingerprint);
  const uint64_t end = 500 + Line(5).size() + 1;
  progress->set_size(end);
  progress->set_read_offset(end);
  progress->set_acked_offset(committed);
  ack = client.Send(more);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  status = Status();
  ASSERT_EQ(status.agents_size(), 1);
  EXPECT_EQ(status.agents(0).lag_bytes(), 0u);
  EXPECT_EQ(status.agents(0).lag_seconds(), 0);
  EXPECT_EQ(status.agents(0).last_event_us(), kMay1 + 5 * kSecond);
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(StatusTest, StatusNeedsAReaderToken) {
  StartServer();
  v1::StatusResponse response;
  EXPECT_EQ(GetStatus(kAgentMx1, &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(GetStatus("not-a-token-0123456789", &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(StatusTest, PartitionsAndDiskUse) {
  StartServer();
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(BatchWithGap(1));
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  v1::StatusResponse status = Status();
  ASSERT_EQ(status.partitions_size(), 1);
  EXPECT_EQ(status.partitions(0).day(), 20240501);
  EXPECT_EQ(status.partitions(0).lines(), 7u);
  EXPECT_GT(status.partitions(0).bytes(), 0u);
  EXPECT_GT(status.disk_bytes(), status.partitions(0).bytes());
  EXPECT_TRUE(client.Finish().ok());
}

// A collector that died with streams open: on the next start its agents are offline since
// they were last seen.
TEST_F(StatusTest, ConnectionsOfAPreviousProcessAreClosedAtStart) {
  {
    store::StoreOptions options;
    options.dir = DataDir();
    auto store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store::SiteUpdate update;
    update.host = "mx1";
    update.now_us = kMay1;
    update.session = store::SiteUpdate::Session::kConnected;
    ASSERT_TRUE((*store)->RecordSite(update).ok());
    auto status = (*store)->GetSiteStatus(kMay1, 10, 10);
    ASSERT_TRUE(status.ok()) << status.status();
    ASSERT_EQ(status->agents.size(), 1u);
    EXPECT_TRUE(status->agents[0].connected);
  }
  StartServer();
  v1::StatusResponse status = Status();
  ASSERT_EQ(status.agents_size(), 1);
  EXPECT_FALSE(status.agents(0).connected());
  ASSERT_EQ(status.offline_size(), 1);
  EXPECT_EQ(status.offline(0).from_us(), kMay1);
  EXPECT_EQ(status.offline(0).to_us(), 0);
}

std::string MaillensBin() {
  const char* bin_dir = std::getenv("MAILLENS_BIN_DIR");
  return std::string(bin_dir != nullptr ? bin_dir : "build/bin") + "/maillens";
}

// Runs `command` through the shell; its output (stdout and stderr), or a failure.
::testing::AssertionResult RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return ::testing::AssertionFailure() << "cannot run " << command;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  int rc = pclose(pipe);
  if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
    return ::testing::AssertionFailure() << command << " failed:\n" << *output;
  }
  return ::testing::AssertionSuccess();
}

// `maillens --server` for the collector on `port`, with the reader's token (written to a file
// in `dir`), or without one.
std::string RemoteMaillens(const std::filesystem::path& dir, int port, bool with_token = true) {
  std::string command = absl::StrCat("'", MaillensBin(), "' --server 127.0.0.1:", port);
  if (!with_token) return command;
  const std::filesystem::path token = dir / "reader.token";
  std::ofstream(token) << kReader << "\n";
  return absl::StrCat(command, " --token-file '", token.string(), "'");
}

// `maillens --server HOST:PORT status` asks the running collector.
TEST_F(StatusTest, CliStatusFromTheCollector) {
  StartServer();
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(BatchWithGap(1));
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  WaitIndexed();  // the gap is recorded with the batch's indexing, behind the ack
  ASSERT_TRUE(std::filesystem::exists(MaillensBin())) << MaillensBin() << " is not built";
  std::string output;
  ASSERT_TRUE(RunCommand(RemoteMaillens(dir_, server_->port()) + " status --json", &output));
  EXPECT_THAT(output, HasSubstr("\"connected\": true")) << output;
  EXPECT_THAT(output, HasSubstr("\"lines_since_start\": \"7\"")) << output;
  EXPECT_THAT(output, HasSubstr("\"reason\": \"missing\"")) << output;
  // Without the token the collector refuses, and the command says so.
  output.clear();
  EXPECT_FALSE(RunCommand(RemoteMaillens(dir_, server_->port(), false) + " status", &output));
  EXPECT_THAT(output, HasSubstr("maillens status:")) << output;
  EXPECT_TRUE(client.Finish().ok());
}

// `maillens --data DIR status` (the program, from MAILLENS_BIN_DIR) lists the gap.
// The disk figure is what the disk budget counts, everything under the data directory, and
// each part is shown: the journal, the archive and the cache too (they were left out).
TEST_F(StatusTest, DiskUseCountsEveryPartOfTheDataDirectory) {
  StartServer();
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(BatchWithGap(1));
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  std::filesystem::create_directories(DataDir() + "/archive");
  std::filesystem::create_directories(DataDir() + "/cache");
  std::ofstream(DataDir() + "/archive/20240401.db.gz") << std::string(300000, 'a');
  std::ofstream(DataDir() + "/cache/20240401.0123456789abcdef.db") << std::string(200000, 'c');
  v1::StatusResponse status = Status();
  ASSERT_TRUE(status.has_disk_usage());
  const v1::DiskUsage& u = status.disk_usage();
  EXPECT_GT(u.journal(), 0u);
  EXPECT_GE(u.archive(), 300000u);
  EXPECT_GE(u.cache(), 200000u);
  EXPECT_GT(u.catalog(), 0u);
  EXPECT_GE(u.days(), status.partitions(0).bytes());
  EXPECT_EQ(status.disk_bytes(),
            u.days() + u.catalog() + u.journal() + u.archive() + u.cache() + u.other());
  EXPECT_TRUE(client.Finish().ok());

  // An archive file no manifest names: status counts it and warns (exit 3), as the archive
  // cannot be trusted.
  EXPECT_THAT(status.warnings(), Contains(HasSubstr("cannot be trusted")));
  std::string output;
  EXPECT_FALSE(RunCommand(
      absl::StrCat("TZ=UTC '", MaillensBin(), "' --data '", DataDir(), "' status"), &output));
  EXPECT_THAT(output, HasSubstr("WARNING: the archive cannot be trusted")) << output;
  EXPECT_THAT(output, HasSubstr("journal ")) << output;
  EXPECT_THAT(output, HasSubstr("archive 29")) << output;  // 300,000 bytes: 293 KB or so
  EXPECT_THAT(output, HasSubstr("cache ")) << output;
}

TEST_F(StatusTest, CliStatusFromADataDirectoryListsTheGap) {
  StartServer();
  ASSERT_NO_FATAL_FAILURE(IngestGapBatchAndStop());
  std::string bin = MaillensBin();
  ASSERT_TRUE(std::filesystem::exists(bin)) << bin << " is not built";
  for (const char* format : {"", " --json"}) {
    std::string output;
    ASSERT_TRUE(RunCommand(
        absl::StrCat("TZ=UTC '", bin, "' --data '", DataDir(), "' status", format), &output));
    EXPECT_THAT(output, HasSubstr("/var/log/maillog")) << output;
    EXPECT_THAT(output, HasSubstr("missing")) << output;
    EXPECT_THAT(output, HasSubstr("mx1")) << output;
    if (std::string(format).empty()) {
      EXPECT_THAT(output, HasSubstr("2024-05-01 10:00:04")) << output;
    } else {
      EXPECT_THAT(output, HasSubstr("\"gap_count\": \"1\"")) << output;
    }
  }
}

}  // namespace
}  // namespace maillens::collector

namespace maillens::collector {
namespace {

TEST_F(StatusTest, ReportOverAGapOrAnOfflineSpanListsThem) {
  StartServer();
  ASSERT_NO_FATAL_FAILURE(IngestGapBatchAndStop());
  // The gap's window is seconds 4..30 of the day; the agent went offline when its stream
  // ended (now).
  std::vector<report::Gap> over = report::RecordedGaps(DataDir(), "", kMay1, kMay1 + 60 * kSecond);
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].host, "mx1");
  EXPECT_EQ(over[0].from_us, kMay1 + 4 * kSecond);
  EXPECT_EQ(over[0].until_us, kMay1 + 30 * kSecond);
  EXPECT_THAT(over[0].what, HasSubstr("missing /var/log/maillog bytes 500-900"));
  EXPECT_TRUE(
      report::RecordedGaps(DataDir(), "", kMay1 + 40 * kSecond, kMay1 + 60 * kSecond).empty());
  EXPECT_TRUE(report::RecordedGaps(DataDir(), "other", kMay1, kMay1 + 60 * kSecond).empty());
  int64_t now = absl::ToUnixMicros(absl::Now());
  std::vector<report::Gap> recent =
      report::RecordedGaps(DataDir(), "mx1", now - 3600 * kSecond, now + kSecond);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_THAT(recent[0].what, HasSubstr("agent offline"));
}

}  // namespace
}  // namespace maillens::collector

namespace maillens::collector {
namespace {

// A message mx1 accepted and could not deliver: the trace the queue view joins with.
v1::Batch BatchWithDeferral(uint64_t batch_id, const std::string& qid) {
  v1::Batch batch;
  batch.set_batch_id(batch_id);
  AddHello(&batch);
  const std::vector<std::string> lines = {
      "May  1 10:00:01 mx1 postfix/smtpd[100]: " + qid + ": client=unknown[198.51.100.7]",
      "May  1 10:00:01 mx1 postfix/cleanup[101]: " + qid + ": message-id=<q1@example.net>",
      "May  1 10:00:01 mx1 postfix/qmgr[102]: " + qid +
          ": from=<alice@example.net>, size=1234, nrcpt=1 (queue active)",
      "May  1 10:00:02 mx1 postfix/smtp[103]: " + qid +
          ": to=<bob@example.org>, relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, "
          "status=deferred (connect to mx.example.org[192.0.2.9]:25: Connection refused)",
  };
  uint64_t offset = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    v1::Event* ev = batch.add_events();
    ev->set_raw(lines[i]);
    ev->mutable_file()->set_path("/var/log/maillog");
    ev->mutable_file()->set_fingerprint(kFingerprint);
    ev->set_offset(offset);
    offset += lines[i].size() + 1;
    ev->set_time_us(kMay1 + (i < 3 ? 1 : 2) * kSecond);
  }
  return batch;
}

v1::QueuedMessage Queued(const std::string& queue, const std::string& qid, const std::string& to,
                         const std::string& reason) {
  v1::QueuedMessage m;
  m.set_queue_name(queue);
  m.set_queue_id(qid);
  m.set_arrival_time(kMay1 / kSecond + 1);
  m.set_message_size(1234);
  m.set_sender("alice@example.net");
  v1::QueuedRecipient* r = m.add_recipients();
  r->set_address(to);
  r->set_delay_reason(reason);
  return m;
}

v1::QueueResponse GetQueue(const std::shared_ptr<grpc::Channel>& channel, const std::string& host,
                           grpc::Status* status) {
  auto stub = v1::StatusService::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kReader);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::QueueRequest request;
  request.set_host(host);
  v1::QueueResponse response;
  *status = stub->GetQueue(&context, request, &response);
  return response;
}

TEST_F(StatusTest, QueueSnapshotIsReplacedAndJoinedWithItsTrace) {
  StartServer();
  IngestClient client(Channel(), kAgentMx1);
  const std::string kQid = "4VkT1b2c3dz9";
  auto ack = client.Send(BatchWithDeferral(1, kQid));
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

  // A snapshot with two messages, one of them the stored one.
  v1::Batch first;
  first.set_batch_id(2);
  const int64_t taken1 = absl::ToUnixMicros(absl::Now()) - 60 * kSecond;
  first.mutable_queue()->set_taken_us(taken1);
  *first.mutable_queue()->add_messages() =
      Queued("deferred", kQid, "bob@example.org",
             "connect to mx.example.org[192.0.2.9]:25: Connection refused");
  *first.mutable_queue()->add_messages() = Queued("hold", "4VkT1b2c3dzA", "carol@example.com", "");
  ack = client.Send(first);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

  grpc::Status status;
  WaitIndexed();
  v1::QueueResponse queue = GetQueue(Channel(), "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(queue.hosts_size(), 1);
  const v1::HostQueue& host = queue.hosts(0);
  EXPECT_EQ(host.host(), "mx1");
  EXPECT_EQ(host.taken_us(), taken1);
  EXPECT_GE(host.age_us(), 10 * kSecond);
  EXPECT_EQ(host.interval_us(), 0);
  ASSERT_EQ(host.messages_size(), 2);
  ASSERT_EQ(host.traces_size(), 2);
  ASSERT_EQ(host.trace_ids_size(), 2);
  // Ordered by arrival, then queue ID.
  EXPECT_EQ(host.messages(0).queue_id(), kQid);
  EXPECT_EQ(host.messages(0).queue_name(), "deferred");
  EXPECT_THAT(host.messages(0).recipients(0).delay_reason(), HasSubstr("Connection refused"));
  EXPECT_NE(host.traces(0).trace_id(), 0);
  EXPECT_EQ(host.trace_ids(0), host.traces(0).trace_id());
  EXPECT_EQ(host.traces(0).first_host(), "mx1");
  EXPECT_EQ(host.traces(0).first_queue_id(), kQid);
  EXPECT_EQ(host.traces(0).status(), "deferred");
  EXPECT_EQ(host.messages(1).queue_name(), "hold");
  EXPECT_EQ(host.traces(1).trace_id(), 0);  // nothing stored of it

  // The next snapshot replaces the first whole; an older one resent afterwards does not.
  v1::Batch second;
  second.set_batch_id(3);
  second.mutable_queue()->set_taken_us(taken1 + 5 * kSecond);
  *second.mutable_queue()->add_messages() = Queued("hold", "4VkT1b2c3dzA", "carol@example.com", "");
  ack = client.Send(second);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  first.set_batch_id(4);
  ack = client.Send(first);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

  WaitIndexed();

  queue = GetQueue(Channel(), "mx1", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(queue.hosts_size(), 1);
  EXPECT_EQ(queue.hosts(0).taken_us(), taken1 + 5 * kSecond);
  EXPECT_EQ(queue.hosts(0).interval_us(), 5 * kSecond);
  ASSERT_EQ(queue.hosts(0).messages_size(), 1);
  EXPECT_EQ(queue.hosts(0).messages(0).queue_id(), "4VkT1b2c3dzA");

  // Another host's filter finds nothing; the same from the data directory.
  WaitIndexed();
  queue = GetQueue(Channel(), "mx2", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(queue.hosts_size(), 0);
  auto local = store::ReadQueue(DataDir(), v1::QueueRequest(), absl::Now());
  ASSERT_TRUE(local.ok()) << local.status();
  ASSERT_EQ(local->hosts_size(), 1);
  EXPECT_EQ(local->hosts(0).messages_size(), 1);

  // The command line, from the collector: the message, its queue and the stale warning (the
  // snapshot, 55 s old, is older than 3 intervals of 5 s).
  ASSERT_TRUE(std::filesystem::exists(MaillensBin())) << MaillensBin() << " is not built";
  const std::string remote = RemoteMaillens(dir_, server_->port());
  std::string output;
  ASSERT_TRUE(RunCommand(remote + " queue queue:hold", &output));
  EXPECT_THAT(output, HasSubstr("4VkT1b2c3dzA")) << output;
  EXPECT_THAT(output, HasSubstr("carol@example.com")) << output;
  EXPECT_THAT(output, HasSubstr("not reporting")) << output;
  output.clear();
  ASSERT_TRUE(RunCommand(remote + " queue --json queue:deferred", &output));
  EXPECT_THAT(output, Not(HasSubstr("4VkT1b2c3dzA"))) << output;
  // Without a reader token the collector refuses.
  output.clear();
  EXPECT_FALSE(RunCommand(RemoteMaillens(dir_, server_->port(), false) + " queue", &output));
  EXPECT_TRUE(client.Finish().ok());
}

}  // namespace
}  // namespace maillens::collector
