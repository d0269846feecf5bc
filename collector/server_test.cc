// The collector's gRPC server end to end: real gRPC over loopback sockets (port 0), a real
// SQLite store in a temporary directory, certificates made with openssl(1).
#include "collector/server.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "collector/ingest_test_client.h"
#include "collector/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maillens/v1/status.grpc.pb.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::collector {
namespace {

namespace v1 = ::maillens::v1;
using ::testing::HasSubstr;

constexpr char kAgentMx1[] = "agent-mx1-0123456789abcdef";
constexpr char kAgentMx2[] = "agent-mx2-0123456789abcdef";
constexpr char kReader[] = "reader-ops-0123456789abcdef";
constexpr int64_t kMay1 = 1714557600LL * 1000000;  // 2024-05-01T10:00:00Z

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A Postfix line of host `host` at second `second` after kMay1.
std::string Line(const std::string& host, int second, const std::string& message) {
  return absl::StrCat("May  1 10:00:", second < 10 ? "0" : "", second, " ", host, " ", message);
}

v1::Event MakeEvent(const std::string& raw, uint64_t offset, int second,
                    uint64_t fingerprint = 4242) {
  v1::Event ev;
  ev.set_raw(raw);
  ev.mutable_file()->set_path("/var/log/maillog");
  ev.mutable_file()->set_fingerprint(fingerprint);
  ev.set_offset(offset);
  ev.set_time_us(kMay1 + second * 1000000LL);
  return ev;
}

// `n` connect lines of host mx1 starting at byte offset `first_offset`.
v1::Batch ConnectBatch(uint64_t batch_id, int n, uint64_t first_offset = 0,
                       const std::string& hello_host = "", uint64_t fingerprint = 4242) {
  v1::Batch batch;
  batch.set_batch_id(batch_id);
  if (!hello_host.empty()) {
    batch.mutable_hello()->set_host(hello_host);
    batch.mutable_hello()->add_addresses("192.0.2.25");
  }
  for (int i = 0; i < n; ++i) {
    *batch.add_events() = MakeEvent(
        Line("mx1", i % 60,
             absl::StrCat("postfix/smtpd[100]: connect from unknown[198.51.100.", i % 250, "]")),
        first_offset + i * 100, i % 60, fingerprint);
  }
  return batch;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("maillens_server_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  ServerOptions Options() {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = (dir_ / "data").string();
    options.agent_tokens =
        std::vector<TokenEntry>{{"mx1", kAgentMx1}, {"mx2.example.org", kAgentMx2}};
    options.reader_tokens = std::vector<TokenEntry>{{"ops", kReader}};
    options.shutdown_grace = absl::Seconds(10);
    static auto logger = [] {
      auto l = std::make_shared<spdlog::logger>("server_test",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
      l->set_pattern("[server] %l: %v");
      return l;
    }();
    options.logger = logger;
    return options;
  }

  void StartServer(ServerOptions options) {
    auto server = CollectorServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string Target() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  }

  // Waits until everything acknowledged is indexed: an ack means durable in the ingest
  // journal, and the store, searches and traces see a batch once the indexer applied it.
  void WaitIndexed() {
    if (server_ != nullptr) {
      ASSERT_TRUE(server_->WaitIndexed(absl::Now() + absl::Seconds(30)));
    }
  }

  // Lines in the store, read through a read-only Store as the query side does.
  uint64_t StoredLines() {
    WaitIndexed();
    store::StoreOptions options;
    options.dir = (dir_ / "data").string();
    options.read_only = true;
    auto store = store::Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return 0;
    auto count = (*store)->CountLines();
    EXPECT_TRUE(count.ok()) << count.status();
    return count.ok() ? *count : 0;
  }

  grpc::Status Search(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                      const std::string& query, v1::SearchResponse* response, uint32_t limit = 0) {
    WaitIndexed();
    auto stub = v1::QueryService::NewStub(channel);
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::SearchRequest request;
    for (absl::string_view word : absl::StrSplit(query, ' ', absl::SkipEmpty())) {
      request.add_words(std::string(word));
    }
    request.set_limit(limit);
    request.set_with_traces(true);
    return stub->Search(&context, request, response);
  }

  grpc::Status TraceCall(const std::string& token, const std::string& id,
                         v1::TraceResponse* response, bool with_lines = false) {
    WaitIndexed();
    auto stub = v1::QueryService::NewStub(Channel());
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::TraceRequest request;
    request.set_id(id);
    request.set_with_lines(with_lines);
    return stub->Trace(&context, request, response);
  }

  std::filesystem::path dir_;
  std::unique_ptr<CollectorServer> server_;
};

TEST_F(ServerTest, BatchIsCommittedAndItsResendIsAllDuplicates) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(ConnectBatch(7, 5, 0, "mx1"));
  ASSERT_TRUE(ack.has_value()) << client.Finish().error_message();
  EXPECT_EQ(ack->batch_id(), 7u);
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  // The ack says how many lines were made durable; what was new is known once indexed.
  EXPECT_EQ(ack->stored(), 5u);
  EXPECT_EQ(ack->duplicates(), 0u);
  EXPECT_EQ(StoredLines(), 5u);
  EXPECT_EQ(server_->Stats().lines_stored, 5u);
  EXPECT_EQ(server_->Stats().lines_duplicate, 0u);

  ack = client.Send(ConnectBatch(8, 5, 0));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->batch_id(), 8u);
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 5u);
  EXPECT_EQ(StoredLines(), 5u);
  EXPECT_EQ(server_->Stats().lines_stored, 5u);
  EXPECT_EQ(server_->Stats().lines_duplicate, 5u);

  // A new stream (an agent restart) resending overlapping lines stores only the new ones.
  IngestClient again(Channel(), kAgentMx1);
  ack = again.Send(ConnectBatch(1, 8, 0, "mx1"));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->stored(), 8u);
  EXPECT_TRUE(again.Finish().ok());
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(StoredLines(), 8u);
  EXPECT_EQ(server_->Stats().lines_stored, 8u);
  EXPECT_EQ(server_->Stats().lines_duplicate, 10u);
  EXPECT_EQ(server_->Stats().batches_committed, 3u);
}

TEST_F(ServerTest, SearchAndTraceThroughTheQueryService) {
  StartServer(Options());
  v1::Batch batch;
  batch.set_batch_id(1);
  batch.mutable_hello()->set_host("mx1");
  const char* messages[] = {
      "postfix/smtpd[100]: A1B2C3D4E5: client=client.example[192.0.2.1]",
      "postfix/cleanup[101]: A1B2C3D4E5: message-id=<abc@example.org>",
      "postfix/qmgr[102]: A1B2C3D4E5: from=<alice@example.org>, size=1234, nrcpt=1 (queue "
      "active)",
      "postfix/smtp[103]: A1B2C3D4E5: to=<bob@example.net>, relay=mx.example.net[198.51.100.1]:25,"
      " delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4711)",
      "postfix/qmgr[102]: A1B2C3D4E5: removed",
  };
  for (int i = 0; i < 5; ++i) {
    *batch.add_events() = MakeEvent(Line("mx1", i, messages[i]), i * 100, i);
  }
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();

  v1::SearchResponse found;
  grpc::Status status = Search(Channel(), kReader, "to:bob@example.net status:sent", &found);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(found.hits_size(), 1);
  EXPECT_EQ(found.total(), 1u);
  EXPECT_FALSE(found.total_is_lower_bound());
  const v1::StoredLine& hit = found.hits(0).line();
  EXPECT_EQ(hit.host(), "mx1");  // from the hello: the event named no host
  EXPECT_THAT(hit.raw(), HasSubstr("status=sent"));
  EXPECT_EQ(hit.time_us(), kMay1 + 3000000);
  // The line's message and its trace come along, so a client groups without asking again.
  ASSERT_NE(found.hits(0).trace_id(), 0);
  ASSERT_EQ(found.traces_size(), 1);
  EXPECT_EQ(found.traces(0).id(), found.hits(0).trace_id());
  ASSERT_EQ(found.traces(0).messages_size(), 1);
  EXPECT_EQ(found.traces(0).messages(0).queue_id(), "A1B2C3D4E5");
  EXPECT_EQ(found.traces(0).messages(0).sender(), "alice@example.org");

  // Per message: sender and recipient are on different lines; the limit counts messages, and
  // the hits are the message's lines that matched a term.
  v1::SearchResponse both;
  status = Search(Channel(), kReader, "from:alice@example.org to:bob@example.net", &both, 1);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(both.total(), 1u);
  ASSERT_EQ(both.hits_size(), 2);
  EXPECT_THAT(both.hits(0).line().raw(), HasSubstr("to=<bob@example.net>"));
  EXPECT_THAT(both.hits(1).line().raw(), HasSubstr("from=<alice@example.org>"));

  v1::SearchResponse bad;
  status = Search(Channel(), kReader, "since:yesterdayish", &bad);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::TraceResponse trace;
  status = TraceCall(kReader, "<abc@example.org>", &trace);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(trace.trace().messages_size(), 1);
  const v1::MessageInfo& message = trace.trace().messages(0);
  EXPECT_EQ(message.message_id(), "abc@example.org");
  EXPECT_EQ(message.sender(), "alice@example.org");
  EXPECT_EQ(message.host(), "mx1");
  EXPECT_EQ(message.queue_id(), "A1B2C3D4E5");
  EXPECT_EQ(message.size(), 1234);
  EXPECT_TRUE(message.has_end_us());
  EXPECT_EQ(trace.lines_size(), 0);  // not asked for
  ASSERT_EQ(trace.trace().recipients_size(), 1);
  EXPECT_EQ(trace.trace().recipients(0).recipient(), "bob@example.net");
  EXPECT_EQ(trace.trace().recipients(0).status(), "sent");
  EXPECT_EQ(trace.trace().recipients(0).dsn(), "2.0.0");
  EXPECT_EQ(trace.trace().recipients(0).next_queue_id(), "4711");
  EXPECT_EQ(trace.trace().recipients(0).message(), message.id());

  v1::TraceResponse with_lines;
  status = TraceCall(kReader, "A1B2C3D4E5", &with_lines, /*with_lines=*/true);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(with_lines.lines_size(), 1);
  EXPECT_EQ(with_lines.lines(0).message(), message.id());
  ASSERT_EQ(with_lines.lines(0).lines_size(), 5);
  EXPECT_THAT(with_lines.lines(0).lines(4).raw(), HasSubstr("removed"));

  v1::TraceResponse none;
  status = TraceCall(kReader, "FFFFFFFFFF", &none);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  status = TraceCall(kReader, "", &none);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(client.Finish().ok());
}

// A Tail call read synchronously.
class TailClient {
 public:
  TailClient(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
             const std::vector<std::string>& words, uint32_t backlog, bool follow)
      : stub_(v1::QueryService::NewStub(channel)) {
    if (!token.empty()) context_.AddMetadata("authorization", "Bearer " + token);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::TailRequest request;
    for (const std::string& w : words) request.add_words(w);
    request.set_backlog(backlog);
    request.set_follow(follow);
    reader_ = stub_->Tail(&context_, request);
  }

  std::optional<v1::TailResponse> Read() {
    v1::TailResponse response;
    if (!reader_->Read(&response)) return std::nullopt;
    return response;
  }

  grpc::Status Finish() {
    v1::TailResponse ignored;
    while (reader_->Read(&ignored)) {
    }
    return reader_->Finish();
  }

  void Cancel() { context_.TryCancel(); }

 private:
  std::unique_ptr<v1::QueryService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::TailResponse>> reader_;
};

std::vector<std::string> Raws(const v1::TailResponse& response) {
  std::vector<std::string> out;
  for (const v1::StoredLine& line : response.lines()) out.push_back(line.raw());
  return out;
}

TEST_F(ServerTest, TailSendsTheNewestMatchingLinesOldestFirstAndEnds) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  ASSERT_TRUE(client.Send(ConnectBatch(1, 5, 0, "mx1")).has_value());
  WaitIndexed();
  TailClient tail(Channel(), kReader, {"connect", "client:198.51.100.*"}, 3, false);
  auto first = tail.Read();
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->lines_size(), 3);
  EXPECT_THAT(first->lines(0).raw(), HasSubstr("198.51.100.2]"));
  EXPECT_THAT(first->lines(2).raw(), HasSubstr("198.51.100.4]"));
  EXPECT_EQ(first->lines(2).host(), "mx1");
  EXPECT_FALSE(tail.Read().has_value());
  EXPECT_TRUE(tail.Finish().ok());
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(ServerTest, TailFollowGetsLinesStoredAfterItStartedWithItsFilter) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch old;
  old.set_batch_id(1);
  old.mutable_hello()->set_host("mx1");
  *old.add_events() = MakeEvent(Line("mx1", 1, "postfix/qmgr[102]: ABCDE12345: removed"), 0, 1);
  *old.add_events() =
      MakeEvent(Line("mx1", 2, "postfix/smtpd[100]: connect from unknown[198.51.100.7]"), 100, 2);
  ASSERT_TRUE(client.Send(old).has_value());
  WaitIndexed();

  TailClient tail(Channel(), kReader, {"qid:ABCDE12345"}, 5, true);
  // The backlog: the one matching line already stored. A follower is registered before its
  // backlog is looked up, so every line stored from now on reaches it.
  auto backlog = tail.Read();
  ASSERT_TRUE(backlog.has_value());
  ASSERT_EQ(backlog->lines_size(), 1);
  EXPECT_THAT(backlog->lines(0).raw(), HasSubstr("ABCDE12345: removed"));

  v1::Batch fresh;
  fresh.set_batch_id(2);
  *fresh.add_events() =
      MakeEvent(Line("mx1", 5, "postfix/smtpd[100]: connect from unknown[198.51.100.8]"), 200, 5);
  *fresh.add_events() = MakeEvent(
      Line("mx1", 6, "postfix/smtp[103]: ABCDE12345: to=<bob@example.net>, status=sent (ok)"), 300,
      6);
  *fresh.add_events() = MakeEvent(Line("mx1", 7, "postfix/qmgr[102]: FFFFF11111: removed"), 400, 7);
  *fresh.add_events() =
      MakeEvent(Line("mx1", 8, "postfix/local[104]: ABCDE12345: to=<x@y>, status=sent"), 500, 8);
  auto ack = client.Send(fresh);
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->stored(), 4u);
  // The resend of an old batch stores nothing and shows nothing.
  const uint64_t stored_before = (WaitIndexed(), server_->Stats().lines_stored);
  ASSERT_EQ(client.Send(old)->status(), v1::ACK_STATUS_COMMITTED);
  WaitIndexed();
  ASSERT_EQ(server_->Stats().lines_stored, stored_before);

  std::vector<std::string> raws;
  while (raws.size() < 2) {
    auto got = tail.Read();
    ASSERT_TRUE(got.has_value()) << tail.Finish().error_message();
    EXPECT_EQ(got->dropped(), 0u);
    for (const std::string& raw : Raws(*got)) raws.push_back(raw);
  }
  ASSERT_EQ(raws.size(), 2u);
  EXPECT_THAT(raws[0], HasSubstr("bob@example.net"));
  EXPECT_THAT(raws[1], HasSubstr("to=<x@y>"));
  tail.Cancel();
  EXPECT_EQ(tail.Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(ServerTest, ASlowFollowerLosesLinesAndIsToldNeverSlowingIngestion) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  ASSERT_TRUE(client.Send(ConnectBatch(1, 1, 0, "mx1")).has_value());
  WaitIndexed();
  TailClient tail(Channel(), kReader, {}, 1, true);
  ASSERT_TRUE(tail.Read().has_value());  // the backlog: registered
  // The follower reads nothing while far more lines are stored than it may buffer; every
  // batch is still acknowledged.
  constexpr int kBatches = 40;
  constexpr int kPerBatch = 2000;
  for (int b = 0; b < kBatches; ++b) {
    auto ack = client.Send(ConnectBatch(2 + b, kPerBatch, 100000 + b * kPerBatch * 100));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->stored(), static_cast<uint32_t>(kPerBatch));
  }
  uint64_t received = 0, dropped = 0;
  while (received + dropped < kBatches * kPerBatch) {
    auto got = tail.Read();
    ASSERT_TRUE(got.has_value()) << tail.Finish().error_message();
    received += got->lines_size();
    dropped += got->dropped();
  }
  EXPECT_EQ(received + dropped, static_cast<uint64_t>(kBatches * kPerBatch));
  EXPECT_GT(dropped, 0u);
  tail.Cancel();
  tail.Finish();
  EXPECT_TRUE(client.Finish().ok());
}

TEST_F(ServerTest, ShutdownEndsFollowersAtOnce) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  ASSERT_TRUE(client.Send(ConnectBatch(1, 1, 0, "mx1")).has_value());
  EXPECT_TRUE(client.Finish().ok());
  WaitIndexed();
  TailClient tail(Channel(), kReader, {}, 1, true);
  ASSERT_TRUE(tail.Read().has_value());
  absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(30));
  // Well before the grace: the follower was ended, not waited for.
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(tail.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServerTest, TailAndTracesInNeedAReaderToken) {
  StartServer(Options());
  TailClient no_token(Channel(), "", {}, 5, true);
  EXPECT_EQ(no_token.Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  TailClient agent(Channel(), kAgentMx1, {}, 5, false);
  EXPECT_EQ(agent.Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  TailClient window(Channel(), kReader, {"since:1h"}, 5, false);
  EXPECT_EQ(window.Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto stub = v1::QueryService::NewStub(Channel());
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer wrong-token-0123456789");
  auto reader = stub->TracesIn(&context, v1::TracesInRequest());
  v1::TraceResponse ignored;
  EXPECT_FALSE(reader->Read(&ignored));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// An export streams the whole day in order; while one runs, another is refused, so exports
// cannot take every query thread. The day is larger than what the transport buffers (socket
// buffers and HTTP/2 windows, a few MB on loopback), so an export whose reader stops reading
// is still running.
TEST_F(ServerTest, ArchiveExportStreamsTheDayAndRunsOneAtATime) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  constexpr int kLines = 40000;
  const std::string padding(1000, 'x');
  for (int b = 0; b < kLines / 5000; ++b) {
    v1::Batch batch;
    batch.set_batch_id(b + 1);
    batch.mutable_hello()->set_host("mx1");
    for (int i = b * 5000; i < (b + 1) * 5000; ++i) {
      *batch.add_events() = MakeEvent(
          Line("mx1", i % 60,
               absl::StrCat("postfix/smtpd[100]: connect from h", i, "[192.0.2.1] ", padding)),
          static_cast<uint64_t>(i) * 1100, i / 10);
    }
    auto ack = client.Send(batch);
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  }
  EXPECT_TRUE(client.Finish().ok());
  WaitIndexed();

  auto stub = v1::QueryService::NewStub(Channel());
  v1::ArchiveExportRequest request;
  request.set_day(20240501);
  auto start = [&](grpc::ClientContext* context) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", kReader));
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub->ArchiveExport(context, request);
  };
  grpc::ClientContext first_context;
  auto first = start(&first_context);
  v1::ArchiveExportResponse response;
  ASSERT_TRUE(first->Read(&response));  // the first export is under way
  int lines = response.lines_size();

  grpc::ClientContext second_context;
  auto second = start(&second_context);
  EXPECT_FALSE(second->Read(&response));
  grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("another archive export"));

  std::string last;
  while (first->Read(&response)) {
    lines += response.lines_size();
    for (const v1::ExportedLine& line : response.lines()) last = line.raw();
  }
  EXPECT_TRUE(first->Finish().ok());
  EXPECT_EQ(lines, kLines);
  EXPECT_THAT(last, ::testing::HasSubstr(absl::StrCat("from h", kLines - 1, "[")));

  // Once the first has ended (the server lets go of it just after the client sees the end),
  // the next is served.
  grpc::Status third_status;
  int third_lines = 0;
  for (auto deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;) {
    grpc::ClientContext context;
    auto third = start(&context);
    third_lines = 0;
    while (third->Read(&response)) third_lines += response.lines_size();
    third_status = third->Finish();
    if (third_status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(third_status.ok()) << third_status.error_message();
  EXPECT_EQ(third_lines, kLines);
}

TEST_F(ServerTest, TracesInStreamsEveryTraceOfTheWindowWithLines) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch;
  batch.set_batch_id(1);
  batch.mutable_hello()->set_host("mx1");
  for (int m = 0; m < 3; ++m) {
    std::string qid = absl::StrCat("AAAAA0000", m);
    *batch.add_events() =
        MakeEvent(Line("mx1", m * 10,
                       absl::StrCat("postfix/qmgr[102]: ", qid, ": from=<a@b>, size=1, nrcpt=1")),
                  m * 200, m * 10);
    *batch.add_events() =
        MakeEvent(Line("mx1", m * 10 + 1, absl::StrCat("postfix/qmgr[102]: ", qid, ": removed")),
                  m * 200 + 100, m * 10 + 1);
  }
  ASSERT_TRUE(client.Send(batch).has_value());
  EXPECT_TRUE(client.Finish().ok());
  WaitIndexed();

  auto stub = v1::QueryService::NewStub(Channel());
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kReader));
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::TracesInRequest request;
  request.set_since_us(kMay1 + 5 * 1000000LL);  // the first message starts before
  request.set_with_lines(true);
  auto reader = stub->TracesIn(&context, request);
  std::vector<std::string> queue_ids;
  v1::TraceResponse response;
  while (reader->Read(&response)) {
    ASSERT_EQ(response.trace().messages_size(), 1);
    queue_ids.push_back(response.trace().messages(0).queue_id());
    ASSERT_EQ(response.lines_size(), 1);
    EXPECT_EQ(response.lines(0).lines_size(), 2);
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_THAT(queue_ids, ::testing::ElementsAre("AAAAA00001", "AAAAA00002"));
}

TEST_F(ServerTest, MissingOrWrongTokenIsRefusedWhileOtherStreamsGoOn) {
  StartServer(Options());
  auto channel = Channel();
  IngestClient good(channel, kAgentMx1);
  ASSERT_EQ(good.Send(ConnectBatch(1, 2, 0, "mx1"))->status(), v1::ACK_STATUS_COMMITTED);

  IngestClient anonymous(channel, "");
  EXPECT_FALSE(anonymous.Send(ConnectBatch(1, 2, 1000, "mx1")).has_value());
  grpc::Status status = anonymous.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("authorization: Bearer TOKEN"));

  IngestClient wrong(channel, "not-a-known-token-at-all");
  EXPECT_FALSE(wrong.Send(ConnectBatch(1, 2, 1000, "mx1")).has_value());
  status = wrong.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("unknown token"));

  // The same connection's good stream was not disturbed.
  auto ack = good.Send(ConnectBatch(2, 2, 2000));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 2u);
  EXPECT_TRUE(good.Finish().ok());
  EXPECT_EQ(StoredLines(), 4u);
  EXPECT_EQ(server_->Stats().streams_refused, 2u);
}

TEST_F(ServerTest, AgentTokensCannotQueryAndReaderTokensCannotIngest) {
  StartServer(Options());
  v1::SearchResponse response;
  grpc::Status status = Search(Channel(), kAgentMx1, "connect", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("agent token"));
  v1::TraceResponse trace;
  status = TraceCall(kAgentMx2, "A1B2C3D4E5", &trace);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = Search(Channel(), "", "connect", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  IngestClient reader(Channel(), kReader);
  EXPECT_FALSE(reader.Send(ConnectBatch(1, 1, 0, "mx1")).has_value());
  status = reader.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("reader token"));
  EXPECT_EQ(StoredLines(), 0u);

  status = Search(Channel(), kReader, "connect", &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(ServerTest, AnAgentTokenSpeaksOnlyForItsHost) {
  StartServer(Options());
  // The hello names another host: the stream ends.
  IngestClient impostor(Channel(), kAgentMx1);
  EXPECT_FALSE(impostor.Send(ConnectBatch(1, 1, 0, "mx2")).has_value());
  grpc::Status status = impostor.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("may not speak for host 'mx2'"));

  // An event naming another host: that batch is rejected, the stream goes on.
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch = ConnectBatch(1, 3, 0, "mx1");
  batch.mutable_events(1)->set_host("mx2");
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_REJECTED);
  EXPECT_THAT(ack->detail(), HasSubstr("event 1 is for host 'mx2'"));
  ack = client.Send(ConnectBatch(2, 3, 0));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 3u);
  EXPECT_TRUE(client.Finish().ok());

  // A token issued for an FQDN covers the short name syslog writes; with no hello, events
  // without a host are the token's host.
  IngestClient fqdn(Channel(), kAgentMx2);
  v1::Batch short_name = ConnectBatch(1, 2, 0);
  short_name.mutable_events(0)->set_host("mx2");
  short_name.mutable_events(0)->mutable_file()->set_fingerprint(99);
  short_name.mutable_events(1)->mutable_file()->set_fingerprint(99);
  ack = fqdn.Send(short_name);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  EXPECT_EQ(ack->stored(), 2u);
  EXPECT_TRUE(fqdn.Finish().ok());
  v1::SearchResponse response;
  ASSERT_TRUE(Search(Channel(), kReader, "host:mx2.example.org", &response).ok());
  EXPECT_EQ(response.total(), 1u);
}

TEST_F(ServerTest, TooManyEventsIsRejectedWithADetailAndTheStreamGoesOn) {
  ServerOptions options = Options();
  options.max_batch_events = 10;
  options.max_message_bytes = 128 * 1024;
  options.max_line_bytes = 2000;
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  auto ack = client.Send(ConnectBatch(1, 11, 0, "mx1"));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->batch_id(), 1u);
  // Too large, to be split; and the stream's first acknowledgement says what fits.
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_TOO_LARGE);
  ASSERT_TRUE(ack->has_limits());
  EXPECT_EQ(ack->limits().max_batch_events(), 10u);
  EXPECT_EQ(ack->limits().max_message_bytes(), 128u * 1024);
  EXPECT_EQ(ack->limits().max_line_bytes(), 2000u);
  EXPECT_THAT(ack->detail(), HasSubstr("11 events"));
  EXPECT_THAT(ack->detail(), HasSubstr("max_batch_events"));
  ack = client.Send(ConnectBatch(2, 10, 0));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 10u);
  EXPECT_FALSE(ack->has_limits());  // said once per stream
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(server_->Stats().batches_rejected, 1u);
}

TEST_F(ServerTest, AnOversizedMessageEndsOnlyItsStream) {
  ServerOptions options = Options();
  options.max_message_bytes = 64 * 1024;
  StartServer(std::move(options));
  auto channel = Channel();
  IngestClient bystander(channel, kAgentMx2);
  ASSERT_EQ(bystander.Send(ConnectBatch(1, 1, 0, "mx2"))->status(), v1::ACK_STATUS_COMMITTED);

  IngestClient big(channel, kAgentMx1);
  v1::Batch batch = ConnectBatch(1, 1, 0, "mx1");
  batch.mutable_events(0)->set_raw(std::string(100 * 1024, 'x'));
  EXPECT_FALSE(big.Send(batch).has_value());
  grpc::Status status = big.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("larger than max"));

  auto ack = bystander.Send(ConnectBatch(2, 1, 100));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(bystander.Finish().ok());
  // And new streams are served.
  IngestClient after(Channel(), kAgentMx1);
  ASSERT_EQ(after.Send(ConnectBatch(1, 1, 0, "mx1"))->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(after.Finish().ok());
}

TEST_F(ServerTest, AnOverlongLineIsStoredTruncatedWithAMarker) {
  ServerOptions options = Options();
  options.max_line_bytes = 300;
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch = ConnectBatch(1, 2, 0, "mx1");
  std::string long_line =
      Line("mx1", 0, "postfix/cleanup[101]: ABCDEF1234: warning: header Subject: ") +
      std::string(1000, 'z');
  batch.mutable_events(0)->set_raw(long_line);
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 2u);
  EXPECT_THAT(ack->detail(), HasSubstr("1 line(s) longer than max_line_bytes (300)"));
  // Resending finds the truncated line by its identity.
  ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  WaitIndexed();
  EXPECT_EQ(server_->Stats().lines_duplicate, 2u);
  EXPECT_TRUE(client.Finish().ok());

  v1::SearchResponse response;
  ASSERT_TRUE(Search(Channel(), kReader, "ABCDEF1234", &response).ok());
  ASSERT_EQ(response.hits_size(), 1);
  EXPECT_EQ(
      response.hits(0).line().raw(),
      long_line.substr(0, 300) + absl::StrCat(kTruncationMarker, long_line.size(), " bytes]"));
  EXPECT_EQ(server_->Stats().lines_truncated, 2u);  // counted as they arrive, resends too
}

// A line the agent cut to fit (Event.original_bytes): stored with a marker giving its true
// length, not the length that arrived.
TEST_F(ServerTest, ALineCutByTheAgentIsMarkedWithItsTrueLength) {
  StartServer(Options());
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch = ConnectBatch(1, 1, 0, "mx1");
  const std::string start = Line("mx1", 0, "postfix/cleanup[101]: ABCDEF5678: warning: header ");
  batch.mutable_events(0)->set_raw(start);
  batch.mutable_events(0)->set_original_bytes(20u << 20);
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_THAT(ack->detail(), HasSubstr("stored truncated"));
  EXPECT_TRUE(client.Finish().ok());
  WaitIndexed();
  v1::SearchResponse response;
  ASSERT_TRUE(Search(Channel(), kReader, "ABCDEF5678", &response).ok());
  ASSERT_EQ(response.hits_size(), 1);
  EXPECT_EQ(response.hits(0).line().raw(),
            start + absl::StrCat(kTruncationMarker, 20u << 20, " bytes]"));
}

// `maillens doctor`'s probe: checked like a hello, acknowledged, and nothing stored or
// recorded; a host the token does not cover ends the stream.
TEST_F(ServerTest, AProbeHelloIsCheckedAndStoresNothing) {
  StartServer(Options());
  IngestClient own(Channel(), kAgentMx1);
  v1::Batch probe;
  probe.set_batch_id(1);
  probe.mutable_hello()->set_host("mx1");
  probe.mutable_hello()->set_probe(true);
  auto ack = own.Send(probe);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(ack->has_limits());
  EXPECT_TRUE(own.Finish().ok());
  EXPECT_EQ(server_->Stats().batches_committed, 0u);

  IngestClient other(Channel(), kAgentMx1);
  probe.mutable_hello()->set_host("mx2");
  EXPECT_FALSE(other.Send(probe).has_value());
  grpc::Status status = other.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("may not speak for host 'mx2'"));
}

// Bytes that are not gRPC: random noise, a valid HTTP/2 preface with a nonsense frame, and
// connections closed at once.
void SendGarbage(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server hung up on us, as it should
    sent += static_cast<size_t>(n);
  }
  if (bytes.empty()) {  // connect and hang up at once
    close(fd);
    return;
  }
  char buf[4096];
  timeval timeout{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  while (recv(fd, buf, sizeof(buf), 0) > 0) {
  }
  close(fd);
}

TEST_F(ServerTest, GarbageOnTheSocketDoesNotHurtTheServer) {
  StartServer(Options());
  IngestClient steady(Channel(), kAgentMx1);
  ASSERT_EQ(steady.Send(ConnectBatch(1, 1, 0, "mx1"))->status(), v1::ACK_STATUS_COMMITTED);

  std::mt19937 random(12345);
  for (int round = 0; round < 10; ++round) {
    std::string noise(1 + random() % 70000, '\0');
    for (char& c : noise) c = static_cast<char>(random());
    SendGarbage(server_->port(), noise);
    std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // A frame header announcing 16 MB of an unknown frame type on stream 1, then noise.
    preface += std::string("\xff\xff\xff\x42\x00\x00\x00\x00\x01", 9) + noise.substr(0, 1000);
    SendGarbage(server_->port(), preface);
    SendGarbage(server_->port(), "");
  }
  auto ack = steady.Send(ConnectBatch(2, 1, 100));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(steady.Finish().ok());
  IngestClient fresh(Channel(), kAgentMx1);
  ack = fresh.Send(ConnectBatch(1, 1, 200, "mx1"));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(fresh.Finish().ok());
  EXPECT_EQ(StoredLines(), 3u);
}

TEST_F(ServerTest, HealthServiceSaysServing) {
  StartServer(Options());
  grpc::GenericStub stub(Channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty(std::string{});
  grpc::ByteBuffer request(&empty, 1);  // HealthCheckRequest{service: ""}: zero bytes
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) { done.set_value(status); });
  grpc::Status status = done.get_future().get();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

TEST_F(ServerTest, AStoreFailureAcksRetryAndTheResendStoresEverything) {
  std::atomic<bool> disk_full{true};
  ServerOptions options = Options();
  options.append_fault = [&disk_full]() {
    return disk_full ? absl::ResourceExhaustedError("database or disk is full (simulated)")
                     : absl::OkStatus();
  };
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch = ConnectBatch(1, 6, 0, "mx1");
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_RETRY);
  EXPECT_GT(ack->retry_after_ms(), 0u);
  EXPECT_THAT(ack->detail(), HasSubstr("disk is full"));
  EXPECT_EQ(StoredLines(), 0u);

  disk_full = false;
  batch.set_batch_id(2);
  ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 6u);
  EXPECT_EQ(ack->duplicates(), 0u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(StoredLines(), 6u);
  EXPECT_EQ(server_->Stats().batches_retried, 1u);
  server_.reset();  // before `disk_full` goes: the stream's end still passes the hook
}

// An ack means durable, not indexed: while the indexer is held, batches are acknowledged, the
// backlog is shown, and the store does not have them yet; released, it has each line once.
TEST_F(ServerTest, AcksDoNotWaitForIndexingAndTheBacklogIsShown) {
  // Owned by the hook too: the indexer may call it after the test's body (a stream's end).
  struct Hold {
    core::Mutex mu;
    bool held = true;
    void Set(bool h) {
      core::MutexLock lock(&mu);
      held = h;
    }
  };
  auto hold = std::make_shared<Hold>();
  struct Release {  // however the test ends, the indexer is let go before the server stops
    std::shared_ptr<Hold> hold;
    ~Release() { hold->Set(false); }
  } release{hold};
  ServerOptions options = Options();
  options.index_fault = [hold]() {
    core::MutexLock lock(&hold->mu);
    hold->mu.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &hold->held));
    return absl::OkStatus();
  };
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  for (int b = 0; b < 3; ++b) {
    auto ack = client.Send(ConnectBatch(1 + b, 4, b * 4 * 100, b == 0 ? "mx1" : ""));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  }
  // The indexer holds the first run; whatever it took, the rest is still waiting.
  ServerStats stats = server_->Stats();
  EXPECT_GE(stats.index_backlog_records, 1u);
  EXPECT_GT(stats.index_backlog_bytes, 0u);
  EXPECT_EQ(stats.lines_stored, 0u);
  EXPECT_FALSE(server_->WaitIndexed(absl::Now() + absl::Milliseconds(200)));
  {
    auto stub = v1::StatusService::NewStub(Channel());
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kReader));
    v1::StatusResponse status;
    ASSERT_TRUE(stub->GetStatus(&context, v1::StatusRequest(), &status).ok());
    EXPECT_GE(status.ingest().index_backlog_batches(), 1u);
    EXPECT_EQ(status.ingest().lines_since_start(), 12u);  // accepted
  }
  hold->Set(false);
  EXPECT_EQ(StoredLines(), 12u);  // waits for indexing
  EXPECT_EQ(server_->Stats().index_backlog_records, 0u);
  EXPECT_EQ(server_->Stats().lines_stored, 12u);
  EXPECT_TRUE(client.Finish().ok());
}

// The indexer fails (a full disk, say) after the batches were acknowledged: it keeps the
// journal and tries again, and once it can, every line is stored exactly once.
TEST_F(ServerTest, AnIndexingFailureIsRetriedAndLosesNothing) {
  // Owned by the hook too: the indexer may call it after the test's body (a stream's end).
  struct Fault {
    std::atomic<int> failures{0};
    std::atomic<bool> failing{true};
  };
  auto fault = std::make_shared<Fault>();
  std::atomic<int>& failures = fault->failures;
  std::atomic<bool>& failing = fault->failing;
  ServerOptions options = Options();
  options.index_fault = [fault]() {
    if (!fault->failing) return absl::OkStatus();
    ++fault->failures;
    return absl::ResourceExhaustedError("database or disk is full (simulated)");
  };
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  for (int b = 0; b < 3; ++b) {
    auto ack = client.Send(ConnectBatch(1 + b, 5, b * 5 * 100, b == 0 ? "mx1" : ""));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (failures < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_GE(failures.load(), 2);  // tried, failed, tried again a second later
  EXPECT_EQ(server_->Stats().lines_stored, 0u);
  EXPECT_GE(server_->Stats().index_backlog_records, 1u);
  failing = false;
  EXPECT_EQ(StoredLines(), 15u);
  EXPECT_EQ(server_->Stats().lines_duplicate, 0u);
  EXPECT_EQ(server_->Stats().index_backlog_records, 0u);
  EXPECT_TRUE(client.Finish().ok());
}

// The writer is held inside its Append while Shutdown starts: the batch must be committed and
// acknowledged, or not acknowledged; never acknowledged and lost.
TEST_F(ServerTest, ShutdownLetsTheBatchInFlightCommitAndBeAcked) {
  absl::Notification entered, release;
  ServerOptions options = Options();
  options.append_fault = [&]() {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return absl::OkStatus();
  };
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  ASSERT_TRUE(client.Write(ConnectBatch(1, 4, 0, "mx1")));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(30)));

  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(20)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // A stream opened now is refused; the one in flight is still waiting for its ack.
  IngestClient late(Channel(), kAgentMx1);
  EXPECT_FALSE(late.Send(ConnectBatch(1, 1, 1000, "mx1")).has_value());
  EXPECT_FALSE(late.Finish().ok());
  release.Notify();

  auto ack = client.Read();
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_EQ(ack->stored(), 4u);
  EXPECT_FALSE(client.Read().has_value());
  grpc::Status status = client.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  shutdown.join();
  server_.reset();
  EXPECT_EQ(StoredLines(), 4u);
}

TEST_F(ServerTest, ShutdownPastItsGraceMayDropTheAckButNeverAnAckedLine) {
  absl::Notification entered, release;
  ServerOptions options = Options();
  options.append_fault = [&]() {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return absl::OkStatus();
  };
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  ASSERT_TRUE(client.Write(ConnectBatch(1, 4, 0, "mx1")));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // No grace: gRPC cancels the stream at once, while the writer still holds the batch.
  std::thread shutdown([this] { server_->Shutdown(absl::ZeroDuration()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  release.Notify();
  auto ack = client.Read();
  client.Finish();
  shutdown.join();
  server_.reset();
  if (ack.has_value() && ack->status() == v1::ACK_STATUS_COMMITTED) {
    EXPECT_EQ(StoredLines(), 4u);
  }
  // The writer finished the batch it held before stopping, acked or not.
  EXPECT_EQ(StoredLines(), 4u);
}

TEST_F(ServerTest, ManyStreamsAndAShutdownNeverLoseAnAckedLine) {
  ServerOptions options = Options();
  options.writer_queue_bytes = 16 * 1024;  // streams park and resume all the time
  StartServer(std::move(options));
  constexpr int kStreams = 4;
  constexpr int kLines = 10;
  std::atomic<uint64_t> acked_lines{0};
  std::vector<std::thread> agents;
  for (int s = 0; s < kStreams; ++s) {
    agents.emplace_back([&, s] {
      IngestClient client(Channel(), kAgentMx1);
      // Each stream's lines come from its own file, so every line is new.
      std::thread writer([&client, s] {
        for (int b = 0; b < 1000; ++b) {
          if (!client.Write(
                  ConnectBatch(b + 1, kLines, b * kLines * 100, b == 0 ? "mx1" : "", 1000 + s))) {
            return;
          }
        }
      });
      uint64_t expected_id = 1;
      while (auto ack = client.Read()) {
        EXPECT_EQ(ack->batch_id(), expected_id++);
        if (ack->status() == v1::ACK_STATUS_COMMITTED) acked_lines += ack->stored();
      }
      writer.join();
      client.Finish();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  server_->Shutdown(absl::Seconds(10));
  for (auto& t : agents) t.join();
  server_.reset();
  EXPECT_GT(acked_lines.load(), 0u);
  EXPECT_GE(StoredLines(), acked_lines.load());
}

TEST_F(ServerTest, BackpressureBoundsTheWriterQueueAndKeepsAckOrder) {
  absl::Notification release;
  ServerOptions options = Options();
  options.writer_queue_bytes = 8 * 1024;
  options.append_fault = [&]() {
    release.WaitForNotification();
    return absl::OkStatus();
  };
  StartServer(std::move(options));
  IngestClient client(Channel(), kAgentMx1);
  constexpr int kBatches = 30;
  constexpr int kLines = 20;  // about 5 KB of queue each: one fits, two do not
  // From another thread, because once the server stops reading, HTTP/2 flow control stops
  // the writes: that is the point.
  std::thread agent([&client] {
    for (int i = 0; i < kBatches; ++i) {
      ASSERT_TRUE(client.Write(ConnectBatch(i + 1, kLines, i * kLines * 100, i == 0 ? "mx1" : "")));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ServerStats held = server_->Stats();
  EXPECT_GT(held.queued_bytes, 0u);
  EXPECT_LE(held.peak_queued_bytes, 8u * 1024);
  release.Notify();
  for (int i = 0; i < kBatches; ++i) {
    auto ack = client.Read();
    ASSERT_TRUE(ack.has_value()) << i;
    EXPECT_EQ(ack->batch_id(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
    EXPECT_EQ(ack->stored(), static_cast<uint32_t>(kLines));
  }
  agent.join();
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(StoredLines(), static_cast<uint64_t>(kBatches * kLines));
  EXPECT_LE(server_->Stats().peak_queued_bytes, 8u * 1024);
  server_.reset();  // before `release` goes: the stream's end still passes the hook
}

TEST_F(ServerTest, PlaintextAndOpenRolesAreRefusedOffLoopback) {
  ServerOptions options = Options();
  options.listen = "0.0.0.0:0";
  auto server = CollectorServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(), HasSubstr("allow_plaintext = true"));

  options.agent_tokens.reset();
  options.allow_plaintext = true;
  server = CollectorServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("agent_tokens_file"));

  options = Options();
  options.listen = "0.0.0.0:0";
  options.allow_plaintext = true;
  server = CollectorServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Shutdown(absl::ZeroDuration());

  options = Options();
  options.tls_key_pem = "key without a certificate";
  server = CollectorServer::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);

  options = Options();
  options.reader_tokens = std::vector<TokenEntry>{{"ops", kAgentMx1}};
  server = CollectorServer::Start(options);
  EXPECT_THAT(server.status().message(), HasSubstr("share a token"));
}

TEST_F(ServerTest, OpenRolesOnLoopbackAcceptAnyCaller) {
  ServerOptions options = Options();
  options.agent_tokens.reset();
  options.reader_tokens.reset();
  StartServer(std::move(options));
  IngestClient client(Channel(), "");
  auto ack = client.Send(ConnectBatch(1, 2, 0, "mx9"));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(client.Finish().ok());
  v1::SearchResponse response;
  EXPECT_TRUE(Search(Channel(), "", "host:mx9", &response).ok());
  EXPECT_EQ(response.total(), 2u);
}

TEST(ParseTokensTest, ReadsNamesAndTokens) {
  auto tokens = ParseTokens(
      "# agents\n\nmx1 0123456789abcdef0123\n  mx2.example.org\t abcdefabcdefabcdef  \n* "
      "wildcard-token-for-a-relay\n",
      "agents.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 3u);
  EXPECT_EQ((*tokens)[0].name, "mx1");
  EXPECT_EQ((*tokens)[0].token, "0123456789abcdef0123");
  EXPECT_EQ((*tokens)[1].name, "mx2.example.org");
  EXPECT_EQ((*tokens)[1].token, "abcdefabcdefabcdef");
  EXPECT_EQ((*tokens)[2].name, "*");
}

TEST(ParseTokensTest, ErrorsNameTheLineAndNeverTheToken) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"mx1\n", "agents.tokens:1: expected 'NAME TOKEN', found 1 fields"},
           {"\nmx1 a b\n", "agents.tokens:2: expected 'NAME TOKEN', found 3 fields"},
           {"mx1 short\n", "agents.tokens:1: the token for 'mx1' has 5 characters"},
           {"mx/1 0123456789abcdef\n", "agents.tokens:1: 'mx/1' is not a host name"},
           {"mx1 0123456789abcdef\nmx2 0123456789abcdef\n",
            "agents.tokens:2: the token for 'mx2' is already used on line 1"},
       }) {
    auto tokens = ParseTokens(c.text, "agents.tokens");
    ASSERT_FALSE(tokens.ok()) << c.text;
    EXPECT_THAT(tokens.status().message(), HasSubstr(c.message));
    EXPECT_THAT(tokens.status().message(), ::testing::Not(HasSubstr("0123456789abcdef")));
  }
}

// Certificates for the TLS tests, made once per test program with openssl(1).
class Certificates {
 public:
  static const Certificates* Get() {
    static Certificates* certs = [] {
      auto* c = new Certificates();
      c->ok_ = c->Make();
      return c;
    }();
    return certs->ok_ ? certs : nullptr;
  }
  std::string ca, server_cert, server_key, client_cert, client_key, other_cert, other_key;

 private:
  bool Make() {
    if (std::system("openssl version >/dev/null 2>&1") != 0) return false;
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("maillens_certs_", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script = absl::StrCat(
        "set -e; cd '", d, "'\n", "openssl req -x509 ", key,
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign\n",
        "openssl req -x509 ", key,
        " -keyout other.key -out other-ca.pem -days 2 "
        "-subj /CN=other-ca\n",
        "openssl req ", key, " -keyout server.key -out server.csr -subj /CN=localhost\n",
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' "
        "> server.ext\n",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile server.ext\n",
        "openssl req ", key, " -keyout client.key -out client.csr -subj /CN=mx1\n",
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2 -extfile client.ext\n",
        // A client certificate from a CA the server does not trust.
        "openssl req ", key, " -keyout stranger.key -out stranger.csr -subj /CN=stranger\n",
        "openssl x509 -req -in stranger.csr -CA other-ca.pem -CAkey other.key "
        "-CAcreateserial -out stranger.pem -days 2 -extfile client.ext\n");
    std::ofstream(dir_ / "make.sh") << script;
    if (std::system(absl::StrCat("sh '", d, "/make.sh' >'", d, "/make.log' 2>&1").c_str()) != 0) {
      std::fprintf(stderr, "openssl failed:\n%s\n", ReadAll(dir_ / "make.log").c_str());
      return false;
    }
    ca = ReadAll(dir_ / "ca.pem");
    server_cert = ReadAll(dir_ / "server.pem");
    server_key = ReadAll(dir_ / "server.key");
    client_cert = ReadAll(dir_ / "client.pem");
    client_key = ReadAll(dir_ / "client.key");
    other_cert = ReadAll(dir_ / "stranger.pem");
    other_key = ReadAll(dir_ / "stranger.key");
    std::filesystem::remove_all(dir_);
    return !ca.empty() && !server_cert.empty() && !client_key.empty();
  }

  std::filesystem::path dir_;
  bool ok_ = false;
};

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const Certificates& certs,
                                          const std::string& cert = "",
                                          const std::string& key = "") {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = certs.ca;
  ssl.pem_cert_chain = cert;
  ssl.pem_private_key = key;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

TEST_F(ServerTest, TlsServesTlsClientsAndRefusesPlaintextOnes) {
  const Certificates* certs = Certificates::Get();
  if (certs == nullptr) GTEST_FAIL() << "openssl(1) is not installed";
  ServerOptions options = Options();
  options.tls_cert_pem = certs->server_cert;
  options.tls_key_pem = certs->server_key;
  StartServer(std::move(options));

  IngestClient plain(Channel(), kAgentMx1);
  EXPECT_FALSE(plain.Send(ConnectBatch(1, 1, 0, "mx1")).has_value());
  EXPECT_EQ(plain.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);

  IngestClient tls(TlsChannel(Target(), *certs), kAgentMx1);
  auto ack = tls.Send(ConnectBatch(1, 3, 0, "mx1"));
  ASSERT_TRUE(ack.has_value()) << tls.Finish().error_message();
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(tls.Finish().ok());
  v1::SearchResponse response;
  EXPECT_TRUE(Search(TlsChannel(Target(), *certs), kReader, "connect", &response).ok());
  EXPECT_EQ(response.total(), 3u);
}

TEST_F(ServerTest, MutualTlsRequiresAClientCertificateFromTheClientCa) {
  const Certificates* certs = Certificates::Get();
  if (certs == nullptr) GTEST_FAIL() << "openssl(1) is not installed";
  ServerOptions options = Options();
  options.tls_cert_pem = certs->server_cert;
  options.tls_key_pem = certs->server_key;
  options.tls_client_ca_pem = certs->ca;
  StartServer(std::move(options));

  IngestClient anonymous(TlsChannel(Target(), *certs), kAgentMx1);
  EXPECT_FALSE(anonymous.Send(ConnectBatch(1, 1, 0, "mx1")).has_value());
  EXPECT_EQ(anonymous.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);

  IngestClient stranger(TlsChannel(Target(), *certs, certs->other_cert, certs->other_key),
                        kAgentMx1);
  EXPECT_FALSE(stranger.Send(ConnectBatch(1, 1, 0, "mx1")).has_value());
  EXPECT_EQ(stranger.Finish().error_code(), grpc::StatusCode::UNAVAILABLE);

  IngestClient known(TlsChannel(Target(), *certs, certs->client_cert, certs->client_key),
                     kAgentMx1);
  auto ack = known.Send(ConnectBatch(1, 2, 0, "mx1"));
  ASSERT_TRUE(ack.has_value()) << known.Finish().error_message();
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED);
  EXPECT_TRUE(known.Finish().ok());
  EXPECT_EQ(StoredLines(), 2u);
}

TEST_F(ServerTest, BadTlsMaterialIsAClearStartError) {
  ServerOptions options = Options();
  options.tls_cert_pem = "-----BEGIN CERTIFICATE-----\nnot a certificate\n";
  options.tls_key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n";
  auto server = CollectorServer::Start(std::move(options));
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("cannot listen on 127.0.0.1:0"));
}

// The value of a counter in a Prometheus text exposition (-1: absent).
double MetricValue(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, name + " ")) return std::stod(std::string(line.substr(name.size())));
  }
  return -1;
}

// The store commits a run's lines and then fails (as when the correlation or the full-text
// index behind them fails): the indexer applies the run again, which finds the lines held.
// lines_stored, and the metric read from it, count the lines once, as they committed, and
// not as the retry's duplicates; a real resend is still no new line.
TEST_F(ServerTest, LinesStoredCountsWhatCommittedWhenTheStoreFailsAfterCommitting) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  ServerOptions options = Options();
  options.applied_fault = [calls]() {
    if (calls->fetch_add(1) >= 2) return absl::OkStatus();
    return absl::UnavailableError("correlation failed after the lines committed (simulated)");
  };
  CollectorMetrics metrics;
  options.metrics = &metrics;
  StartServer(std::move(options));
  metrics.SetSource([this] { return server_->Stats(); }, (dir_ / "data").string());
  IngestClient client(Channel(), kAgentMx1);
  for (int b = 0; b < 2; ++b) {
    auto ack = client.Send(ConnectBatch(1 + b, 5, b * 5 * 100, b == 0 ? "mx1" : ""));
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  }
  EXPECT_EQ(StoredLines(), 10u);  // waits until indexed
  EXPECT_GE(calls->load(), 3);    // failed twice after committing, then went through
  EXPECT_EQ(server_->Stats().lines_stored, 10u);
  EXPECT_EQ(MetricValue(metrics.Text(), "maillens_collector_lines_stored_total"), 10);

  auto ack = client.Send(ConnectBatch(3, 5, 0));  // the first batch again
  ASSERT_TRUE(ack.has_value());
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(StoredLines(), 10u);
  EXPECT_EQ(server_->Stats().lines_stored, 10u);
  EXPECT_EQ(MetricValue(metrics.Text(), "maillens_collector_lines_stored_total"), 10);
  metrics.SetSource(nullptr, "");
  server_.reset();  // before `metrics` goes
}

TEST(LogRateLimiterTest, OneLinePerKeyPerIntervalWithTheCountHeldBack) {
  absl::Time now = absl::FromUnixSeconds(1000);
  LogRateLimiter limiter(
      absl::Minutes(1), [&now] { return now; }, /*max_keys=*/2);
  EXPECT_EQ(limiter.Admit("wrong version number"), 0u);
  EXPECT_EQ(limiter.Admit("peer did not return a certificate"), 0u);  // another reason
  for (int i = 0; i < 5; ++i) {
    now += absl::Seconds(10);
    EXPECT_EQ(limiter.Admit("wrong version number"), std::nullopt);
  }
  now = absl::FromUnixSeconds(1000) + absl::Minutes(1);
  EXPECT_EQ(limiter.Admit("wrong version number"), 5u);  // a minute on: logged, with the 5
  EXPECT_EQ(limiter.Admit("wrong version number"), std::nullopt);
  EXPECT_EQ(limiter.Admit("peer did not return a certificate"), 0u);
  // Keys are bounded: a third key while both are fresh is let through, never held.
  EXPECT_EQ(limiter.Admit("certificate verify failed"), 0u);
  EXPECT_EQ(limiter.Admit("certificate verify failed"), 0u);
  EXPECT_EQ(limiter.suppressed_total(), 6u);
}

// A client speaking plaintext to the TLS port in a loop (a scanner, an agent without tls_ca):
// gRPC logs a failed handshake each time; the collector lets one line through a minute, and
// the next one says how many it held back.
TEST_F(ServerTest, FailedTlsHandshakesAreLoggedOncePerMinuteWithACount) {
  const Certificates* certs = Certificates::Get();
  if (certs == nullptr) GTEST_FAIL() << "openssl(1) is not installed";
  auto lines = std::make_shared<std::ostringstream>();
  auto logger = std::make_shared<spdlog::logger>(
      "grpc_route_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(*lines));
  logger->set_pattern("%l: %v");
  auto clock_s = std::make_shared<std::atomic<int64_t>>(1000);
  RouteGrpcLogs(logger, [clock_s] { return absl::FromUnixSeconds(clock_s->load()); });
  absl::Cleanup restore = [] { RouteGrpcLogs(nullptr); };  // before `lines` goes
  auto handshake_lines = [logger, lines] {
    logger->flush();
    std::string text = lines->str();
    int n = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StrContains(line, "Handshake failed")) ++n;
    }
    return n;
  };
  ServerOptions options = Options();
  options.tls_cert_pem = certs->server_cert;
  options.tls_key_pem = certs->server_key;
  StartServer(std::move(options));

  const std::string hello = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  SendGarbage(server_->port(), hello);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (handshake_lines() < 1 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(handshake_lines(), 1) << lines->str();
  for (int i = 0; i < 20; ++i) SendGarbage(server_->port(), hello);
  deadline = absl::Now() + absl::Seconds(20);
  while (GrpcLogLinesSuppressed() < 20 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(GrpcLogLinesSuppressed(), 20u);
  EXPECT_EQ(handshake_lines(), 1) << lines->str();

  *clock_s += 61;  // a minute later
  SendGarbage(server_->port(), hello);
  deadline = absl::Now() + absl::Seconds(20);
  while (handshake_lines() < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(handshake_lines(), 2) << lines->str();
  EXPECT_THAT(lines->str(), HasSubstr("(20 more like it since it was last shown)"));
  EXPECT_THAT(lines->str(), HasSubstr("error: grpc: Handshake failed"));
  server_.reset();
}

// A column of the catalog's rows, in order (e.g. "SELECT name FROM hosts ORDER BY name").
std::vector<std::string> CatalogColumn(const std::filesystem::path& data_dir,
                                       const std::string& sql) {
  std::vector<std::string> out;
  auto db =
      store::Database::Open((data_dir / "catalog.db").string(), store::Database::Mode::kReadOnly);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return out;
  auto select = (*db)->Prepare(sql);
  EXPECT_TRUE(select.ok()) << select.status();
  if (!select.ok()) return out;
  while (true) {
    auto step = select->Step();
    EXPECT_TRUE(step.ok()) << step.status();
    if (!step.ok() || *step == store::Statement::StepResult::kDone) break;
    out.emplace_back(select->ColumnText(0));
  }
  return out;
}

// Host identity is bound to the agent token. The token of mx1 may not make up
// "mx1.evil.example" (as a hello or an event's host); "MX1" and "mx1." are mx1, one host; an
// alias naming another agent's host is dropped, so it cannot take that host's name over.
TEST_F(ServerTest, AnAgentTokenCannotCreateHostIdentities) {
  StartServer(Options());
  IngestClient evil(Channel(), kAgentMx1);
  EXPECT_FALSE(evil.Send(ConnectBatch(1, 1, 0, "mx1.evil.example")).has_value());
  grpc::Status status = evil.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("may not speak for host 'mx1.evil.example'"));

  IngestClient client(Channel(), kAgentMx1);
  v1::Batch batch = ConnectBatch(1, 2, 0, "MX1.");
  batch.mutable_events(1)->set_host("mx1.evil.example");
  auto ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_REJECTED);
  EXPECT_THAT(ack->detail(), HasSubstr("event 1 is for host 'mx1.evil.example'"));

  batch = ConnectBatch(2, 3, 0, "MX1.");
  batch.mutable_hello()->add_aliases("mx2");               // another agent's host
  batch.mutable_hello()->add_aliases("MX2.Example.org.");  // the same, spelled otherwise
  batch.mutable_hello()->add_aliases("Relay1.Example.ORG");
  batch.mutable_events(1)->set_host("Mx1");
  batch.mutable_events(2)->set_host("mx1.");
  ack = client.Send(batch);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->status(), v1::ACK_STATUS_COMMITTED) << ack->detail();
  EXPECT_EQ(ack->stored(), 3u);
  EXPECT_TRUE(client.Finish().ok());
  EXPECT_EQ(StoredLines(), 3u);

  EXPECT_THAT(CatalogColumn(dir_ / "data", "SELECT name FROM hosts ORDER BY name"),
              ::testing::ElementsAre("mx1"));
  EXPECT_THAT(CatalogColumn(dir_ / "data", "SELECT name FROM host_names ORDER BY name"),
              ::testing::ElementsAre("192.0.2.25", "relay1.example.org"));
}

}  // namespace
}  // namespace maillens::collector
