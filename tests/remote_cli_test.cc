// The `maillens` command against a running `maillens-collector` (--server) prints exactly what
// it prints against the same data read locally (--data): searches (grouped, --lines, --json,
// --csv), traces (--raw, --json, --all), and errors. Also: clear errors for a wrong or
// missing token and an unreachable collector, and `tail -f` receiving lines stored after it
// started, filtered. Real programs from build/bin, a simulated two-host site, and a small
// ingest client standing in for the agents.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maillens/v1/ingest.grpc.pb.h"

namespace maillens {
namespace {

namespace fs = std::filesystem;
namespace v1 = ::maillens::v1;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgentToken[] = "agent-token-0123456789abcdef";
constexpr char kReaderToken[] = "reader-token-0123456789abcdef";

std::string BinDir() {
  const char* dir = std::getenv("MAILLENS_BIN_DIR");
  return dir != nullptr ? dir : "build/bin";
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Single quotes for sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// One agent stream for hosts of the test, through the real IngestService.
class Ingester {
 public:
  explicit Ingester(const std::string& target)
      : stub_(v1::IngestService::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {}

  // Stores `lines` of `host` (RFC 3339 stamps) at byte offsets from `first_offset`; true
  // when every batch was committed.
  bool Send(const std::string& host, const std::vector<std::string>& lines, uint64_t first_offset,
            uint64_t fingerprint) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kAgentToken));
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto stream = stub_->Stream(&context);
    core::TimeContext time{core::TimeOptions()};
    uint64_t offset = first_offset;
    bool ok = true;
    for (size_t start = 0; start < lines.size() && ok; start += 500) {
      v1::Batch batch;
      batch.set_batch_id(++batch_id_);
      batch.mutable_hello()->set_host(host);
      for (size_t i = start; i < lines.size() && i < start + 500; ++i) {
        v1::Event* ev = batch.add_events();
        ev->set_raw(lines[i]);
        ev->mutable_file()->set_path("/var/log/mail.log");
        ev->mutable_file()->set_fingerprint(fingerprint);
        ev->set_offset(offset);
        ev->set_time_us(core::ParseLine(lines[i], &time).time_us);
        offset += lines[i].size() + 1;
      }
      v1::Ack ack;
      ok = stream->Write(batch) && stream->Read(&ack) && ack.status() == v1::ACK_STATUS_COMMITTED;
    }
    stream->WritesDone();
    v1::Ack ignored;
    while (stream->Read(&ignored)) {
    }
    return stream->Finish().ok() && ok;
  }

 private:
  std::unique_ptr<v1::IngestService::Stub> stub_;
  uint64_t batch_id_ = 0;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

class RemoteCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Both ways print local times: one zone for both.
    setenv("TZ", "UTC", 1);
    for (const char* name : {"MAILLENS_SERVER", "MAILLENS_DATA", "MAILLENS_TOKEN"}) unsetenv(name);
    dir_ = new fs::path(fs::temp_directory_path() / absl::StrCat("maillens_remote_cli_", getpid()));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_ / "etc");
    const fs::path& d = *dir_;
    ASSERT_EQ(std::system((BinDir() + "/maillens-simulate --out " + (d / "sim").string() +
                           " --seed 7 --lines 4000 --hosts dmz,mx --stamp dmz=rfc3339,mx=rfc3339"
                           " --start 2024-05-01T10:00:00Z --hours 1 >/dev/null")
                              .c_str()),
              0);
    WriteFile(d / "etc/agent.tokens", absl::StrCat("* ", kAgentToken, "\n"));
    WriteFile(d / "etc/reader.tokens", absl::StrCat("ops ", kReaderToken, "\n"));
    WriteFile(d / "etc/reader.token", absl::StrCat("# ops\n", kReaderToken, "\n"));
    WriteFile(d / "etc/agent.token", absl::StrCat(kAgentToken, "\n"));
    WriteFile(d / "etc/wrong.token", "not-a-known-token-0123456789\n");
    WriteFile(d / "etc/collector.conf",
              absl::StrCat("listen = 127.0.0.1:0\ndata_dir = ", (d / "data").string(),
                           "\nagent_tokens_file = ", (d / "etc/agent.tokens").string(),
                           "\nreader_tokens_file = ", (d / "etc/reader.tokens").string(), "\n"));
    pid_ = StartCollector(d / "etc/collector.conf", d / "collector.log", &port_);
    ASSERT_NE(port_, 0) << ReadAll(d / "collector.log");
    Ingester ingest(Target());
    uint64_t fingerprint = 1000;
    for (const char* host : {"dmz", "mx"}) {
      ASSERT_TRUE(ingest.Send(host, Lines(ReadAll(d / "sim" / (std::string(host) + ".log"))), 0,
                              ++fingerprint));
    }
    // Acknowledged means durable in the collector's journal; it is searchable once indexed,
    // which its status says.
    bool indexed = false;
    for (int i = 0; i < 600 && !indexed; ++i) {
      Outcome status = Maillens(Remote(), {"status", "--json"});
      indexed = status.exit_code == 0 &&
                status.out.find("\"index_backlog_batches\": \"0\"") != std::string::npos;
      if (!indexed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(indexed) << ReadAll(d / "collector.log");
  }

  // Starts maillens-collector with `conf`; *port is the port it listens on, 0 when it did
  // not start (its log says why).
  static pid_t StartCollector(const fs::path& conf, const fs::path& log, int* port) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      std::string bin = BinDir() + "/maillens-collector";
      execl(bin.c_str(), "maillens-collector", "--config", conf.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    *port = 0;
    for (int i = 0; i < 300 && *port == 0; ++i) {
      std::string text = ReadAll(log);
      size_t at = text.find("(port ");
      if (at != std::string::npos) *port = std::atoi(text.c_str() + at + 6);
      if (*port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pid;
  }

  static void TearDownTestSuite() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (dir_ != nullptr) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Target() { return absl::StrCat("127.0.0.1:", port_); }

  // `maillens GLOBAL... ARGS...`, stdout and stderr captured.
  static Outcome Maillens(const std::vector<std::string>& global,
                          const std::vector<std::string>& args) {
    static int n = 0;
    fs::path out = *dir_ / absl::StrCat("out", ++n);
    fs::path err = *dir_ / absl::StrCat("err", n);
    std::string cmd = Quote(BinDir() + "/maillens");
    for (const auto& a : global) cmd += " " + Quote(a);
    for (const auto& a : args) cmd += " " + Quote(a);
    cmd += " >" + out.string() + " 2>" + err.string() + " </dev/null";
    int status = std::system(cmd.c_str());
    Outcome run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadAll(out);
    run.err = ReadAll(err);
    return run;
  }

  static std::vector<std::string> Local() { return {"--data", (*dir_ / "data").string()}; }
  static std::vector<std::string> Remote(const std::string& token_file = "reader.token") {
    return {"--server", Target(), "--token-file", (*dir_ / "etc" / token_file).string()};
  }

  // The same command both ways: same output, same messages, same exit status.
  void ExpectSame(const std::vector<std::string>& args, bool expect_output = true) {
    ExpectSameBetween(Local(), Remote(), args, expect_output);
  }

  // The same command through `local` (--data) and `remote` (--server).
  void ExpectSameBetween(const std::vector<std::string>& local_global,
                         const std::vector<std::string>& remote_global,
                         const std::vector<std::string>& args, bool expect_output = true) {
    std::string what;
    for (const auto& a : args) what += " " + a;
    SCOPED_TRACE("maillens" + what);
    Outcome local = Maillens(local_global, args);
    Outcome remote = Maillens(remote_global, args);
    EXPECT_EQ(local.exit_code, remote.exit_code) << remote.err;
    EXPECT_EQ(local.out, remote.out);
    EXPECT_EQ(local.err, remote.err);
    if (expect_output) {
      EXPECT_FALSE(local.out.empty()) << local.err;
    }
  }

  // A queue ID of a message that crossed from dmz to mx (from the simulator's truth).
  static std::string CrossHostQueueId() {
    static const std::regex kLink(
        R"re("from":\{"host":"dmz","queue_id":"([0-9A-Za-z]+)","first_us":[0-9]+\},"to":\{"host":"mx")re");
    std::smatch match;
    std::string truth = ReadAll(*dir_ / "sim/truth.jsonl");
    return std::regex_search(truth, match, kLink) ? match[1].str() : "";
  }

  static fs::path* dir_;
  static pid_t pid_;
  static int port_;
};

fs::path* RemoteCliTest::dir_ = nullptr;
pid_t RemoteCliTest::pid_ = 0;
int RemoteCliTest::port_ = 0;

TEST_F(RemoteCliTest, SearchPrintsTheSameFromTheCollectorAsFromTheDataDirectory) {
  ExpectSame({"search", "status:bounced"});
  ExpectSame({"search", "status:bounced", "--json"});
  ExpectSame({"search", "status:deferred", "--csv", "--limit", "15"});
  ExpectSame({"search", "to:*@*", "--limit", "40"});
  ExpectSame({"search", "--lines", "reject", "--limit", "30"});
  ExpectSame({"search", "--lines", "--json", "connect", "host:mx", "--limit", "25"});
  ExpectSame({"search", "--lines", "--csv", "status:sent", "--limit", "10"});
  ExpectSame({"search", "from:*", "since:2024-05-01 10:30", "until:2024-05-01T10:40:00Z"});
  ExpectSame({"search", "--since", "2024-05-01 10:50", "removed", "--limit", "500"});
  ExpectSame({"search", "nosuchwordanywhere"}, /*expect_output=*/false);
  ExpectSame({"search", "host:nosuchhost"}, /*expect_output=*/false);
}

TEST_F(RemoteCliTest, TracePrintsTheSameFromTheCollectorAsFromTheDataDirectory) {
  std::string qid = CrossHostQueueId();
  ASSERT_FALSE(qid.empty());
  Outcome plain = Maillens(Local(), {"trace", qid});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("hops across dmz, mx"));  // it did cross
  ExpectSame({"trace", qid});
  ExpectSame({"trace", qid, "--raw"});
  ExpectSame({"trace", qid, "--json"});
  ExpectSame(
      {"trace", "--all", "--since", "2024-05-01 10:00", "--until", "2024-05-01 10:15", "--json"});
  ExpectSame(
      {"trace", "--all", "--since", "2024-05-01 10:20", "--until", "2024-05-01 10:25", "--raw"});
  ExpectSame({"trace", "FFFFFFFFFF"}, /*expect_output=*/false);
}

// The collector builds and renders the report with the same function as --data (a reader token
// is enough): every format, a host, domains, --top, and zones other than this machine's. The
// windows lie in the simulated day, so the live agents' offline periods (up to now) are not in
// them.
TEST_F(RemoteCliTest, ReportPrintsTheSameFromTheCollectorAsFromTheDataDirectory) {
  const std::vector<std::string> day = {"--since", "2024-05-01 00:00", "--until", "2024-05-02"};
  auto with_day = [&](std::vector<std::string> args) {
    args.insert(args.end(), day.begin(), day.end());
    return args;
  };
  Outcome text = Maillens(Local(), with_day({"report"}));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("dmz"));  // the report of the simulated site, not an empty one
  ExpectSame(with_day({"report"}));
  ExpectSame(with_day({"report", "--json"}));
  ExpectSame(with_day({"report", "--markdown", "--host", "mx", "--top", "3"}));
  ExpectSame(with_day({"report", "--html", "--tz", "Asia/Tokyo"}));
  ExpectSame(with_day({"report", "--format", "json", "--domain", "example.test,@other.example",
                       "--tz", "America/New_York"}));
  ExpectSame(with_day({"report", "--format", "nosuch"}), /*expect_output=*/false);
  ExpectSame(with_day({"report", "--host", "nosuchhost"}), /*expect_output=*/false);
}

TEST_F(RemoteCliTest, AWrongOrMissingTokenOrNoCollectorIsAClearError) {
  Outcome wrong = Maillens(Remote("wrong.token"), {"search", "connect"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("did not accept the token"));
  EXPECT_TRUE(wrong.out.empty());

  Outcome missing = Maillens({"--server", Target()}, {"trace", "ABCDEF0123"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("did not accept the token"));
  EXPECT_THAT(missing.err, HasSubstr("--token-file"));

  Outcome agent = Maillens(Remote("agent.token"), {"search", "connect"});
  EXPECT_EQ(agent.exit_code, 1);
  EXPECT_THAT(agent.err, HasSubstr("queries need a reader token"));

  Outcome no_file = Maillens(Remote("no-such.token"), {"search", "connect"});
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_THAT(no_file.err, HasSubstr("cannot read the token file"));

  // A port nobody listens on: this test's own, closed, socket.
  Outcome unreachable = Maillens({"--server", "127.0.0.1:1"}, {"search", "connect"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("cannot reach the collector at 127.0.0.1:1"));

  Outcome plaintext = Maillens({"--server", "192.0.2.1:7411"}, {"search", "connect"});
  EXPECT_EQ(plaintext.exit_code, 1);
  EXPECT_THAT(plaintext.err, HasSubstr("--tls-ca"));

  Outcome import = Maillens(Remote(), {"import", "/dev/null"});
  EXPECT_EQ(import.exit_code, 2);
  EXPECT_THAT(import.err, HasSubstr("local data directory only"));

  Outcome tail = Maillens(Local(), {"tail", "-f"});
  EXPECT_EQ(tail.exit_code, 2);
  EXPECT_THAT(tail.err, HasSubstr("--server"));

  Outcome repair = Maillens(Remote(), {"archive", "repair", "--yes"});
  EXPECT_EQ(repair.exit_code, 2);
  EXPECT_THAT(repair.err, HasSubstr("--data DIR"));
}

// tail without -f: the newest matching lines, from either.
TEST_F(RemoteCliTest, TailPrintsTheSameNewestLinesFromTheCollectorAsFromTheDataDirectory) {
  ExpectSame({"tail"});
  ExpectSame({"tail", "--lines", "300"});
  ExpectSame({"tail", "status:deferred", "-n", "7", "--json"});
  ExpectSame({"tail", "host:mx", "from:*", "--lines", "40"});
  ExpectSame({"tail", "nosuchwordanywhere"}, /*expect_output=*/false);
  ExpectSame({"tail", "since:1h"}, /*expect_output=*/false);
  ExpectSame({"tail", "--lines", "10001"}, /*expect_output=*/false);
  // The newest lines, oldest first: the simulated log's last lines (an independent record).
  Outcome tail = Maillens(Remote(), {"tail", "host:dmz", "--lines", "3"});
  std::vector<std::string> dmz = Lines(ReadAll(*dir_ / "sim/dmz.log"));
  ASSERT_GE(dmz.size(), 3u);
  std::vector<std::string> shown = Lines(tail.out);
  ASSERT_EQ(shown.size(), 3u) << tail.out << tail.err;
  for (size_t i = 0; i < 3; ++i)
    EXPECT_THAT(shown[i], HasSubstr(dmz[dmz.size() - 3 + i].substr(33)));
}

// status and queue read the same recorded state either way. Two parts are about the source by
// design and are left out of the comparison: the first line (which source, at what moment) and
// the collector's live ingest rate (from a data directory no running process is asked); in
// --json, now_us and ingest.
std::string WithoutLiveParts(const std::string& text) {
  static const std::regex kJsonLive(
      R"re(\n "now_us": "[0-9]+",|\n "ingest": \{[^}]*\},|\n *"age_us": "[0-9]+",?)re");
  static const std::regex kIngestSection(R"re(\n\nIngest\n[^\n]*)re");
  const bool json = !text.empty() && text[0] == '{';  // JSON has no source line
  std::string out = json ? text : text.substr(text.find('\n') + 1);
  out = std::regex_replace(out, kJsonLive, "");
  return std::regex_replace(out, kIngestSection, "");
}

TEST_F(RemoteCliTest, StatusAndQueuePrintTheSameRecordedStateFromEither) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"status"},
                                             {"status", "--json"},
                                             {"status", "--gaps", "1"},
                                             {"queue"},
                                             {"queue", "--json"},
                                             {"queue", "--host", "mx", "queue:deferred"}}) {
    std::string what;
    for (const auto& a : args) what += " " + a;
    SCOPED_TRACE("maillens" + what);
    Outcome local = Maillens(Local(), args);
    Outcome remote = Maillens(Remote(), args);
    EXPECT_EQ(local.exit_code, remote.exit_code) << remote.err;
    EXPECT_EQ(WithoutLiveParts(local.out), WithoutLiveParts(remote.out));
    EXPECT_EQ(local.err, remote.err);
    if (local.exit_code == 0) {
      EXPECT_FALSE(local.out.empty()) << local.err;
      // What is left out is only what is said to differ.
      EXPECT_NE(local.out, remote.out);
    }
  }
  // No snapshot of the host asked for is an error, not an empty queue.
  Outcome no_host = Maillens(Remote(), {"queue", "--host", "mx"});
  EXPECT_EQ(no_host.exit_code, 1);
  EXPECT_THAT(no_host.err, HasSubstr("no queue snapshot stored from host 'mx'"));
  // The recorded agents are there to compare.
  EXPECT_THAT(Maillens(Local(), {"status"}).out, HasSubstr("Agents (2)"));
}

// archive list, verify and export from a collector whose retention archived the simulated day,
// and from its data directory.
TEST_F(RemoteCliTest, ArchivePrintsTheSameFromTheCollectorAsFromTheDataDirectory) {
  const fs::path& d = *dir_;
  const fs::path data = d / "archiving";
  std::vector<std::string> local = {"--data", data.string()};
  Outcome import =
      Maillens(local, {"import", (d / "sim/dmz.log").string(), (d / "sim/mx.log").string()});
  ASSERT_EQ(import.exit_code, 0) << import.err;
  WriteFile(d / "etc/archiving.conf",
            absl::StrCat("listen = 127.0.0.1:0\ndata_dir = ", data.string(),
                         "\nagent_tokens_file = ", (d / "etc/agent.tokens").string(),
                         "\nreader_tokens_file = ", (d / "etc/reader.tokens").string(),
                         "\nhot_days = 1\n"));
  int port = 0;
  pid_t pid = StartCollector(d / "etc/archiving.conf", d / "archiving.log", &port);
  ASSERT_NE(port, 0) << ReadAll(d / "archiving.log");
  std::vector<std::string> remote = {"--server", absl::StrCat("127.0.0.1:", port), "--token-file",
                                     (d / "etc/reader.token").string()};
  // The first retention pass runs when the collector starts.
  bool archived = false;
  for (int i = 0; i < 600 && !archived; ++i) {
    Outcome list = Maillens(remote, {"archive", "list"});
    archived = list.exit_code == 0 && list.out.find("\n20240501 ") != std::string::npos;
    if (!archived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(archived) << ReadAll(d / "archiving.log");
  if (archived) {
    ExpectSameBetween(local, remote, {"archive", "list"});
    ExpectSameBetween(local, remote, {"archive", "verify"});
    ExpectSameBetween(local, remote, {"archive", "export", "20240501"});
    ExpectSameBetween(local, remote, {"archive", "export", "2024-05-01", "--host", "MX"});
    ExpectSameBetween(local, remote, {"archive", "export", "20240502"}, /*expect_output=*/false);
    ExpectSameBetween(local, remote, {"archive", "export", "20240501", "--host", "nosuch"},
                      /*expect_output=*/false);
    ExpectSameBetween(local, remote, {"archive", "export"}, /*expect_output=*/false);
    // Not a calendar day: a usage error, not "no partition".
    Outcome month13 = Maillens(remote, {"archive", "export", "20241301"});
    EXPECT_EQ(month13.exit_code, 2);
    EXPECT_THAT(month13.err, HasSubstr("give one DAY"));
    // Byte for byte what the host logged, and the same files written by either.
    Outcome mx = Maillens(remote, {"archive", "export", "20240501", "--host", "mx"});
    EXPECT_EQ(mx.out, ReadAll(d / "sim/mx.log"));
    Outcome to_files = Maillens(
        remote, {"archive", "export", "20240501", "--output", (d / "export_remote").string()});
    EXPECT_EQ(to_files.exit_code, 0) << to_files.err;
    EXPECT_EQ(ReadAll(d / "export_remote/dmz.log"), ReadAll(d / "sim/dmz.log"));
    EXPECT_EQ(ReadAll(d / "export_remote/mx.log"), ReadAll(d / "sim/mx.log"));
  }
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
}

TEST_F(RemoteCliTest, TailFollowPrintsMatchingLinesStoredAfterItStarted) {
  const std::string kStamp = "2024-05-01T11:30:0";
  auto line = [&](int second, const std::string& text) {
    return absl::StrCat(kStamp, second, ".000000+00:00 mx postfix/", text);
  };
  Ingester ingest(Target());
  ASSERT_TRUE(ingest.Send("mx",
                          {line(0,
                                "qmgr[12]: 9E9E9E9E9E: from=<t@example.org>, size=1, "
                                "nrcpt=1 (queue active)")},
                          0, 77));

  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    close(out[0]);
    std::string bin = BinDir() + "/maillens";
    std::string token = (*dir_ / "etc/reader.token").string();
    std::string target = Target();
    execl(bin.c_str(), "maillens", "--server", target.c_str(), "--token-file", token.c_str(),
          "tail", "-f", "qid:9E9E9E9E9E", "--lines", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string got;
  auto read_lines = [&](size_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (static_cast<size_t>(std::count(got.begin(), got.end(), '\n')) < n &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      ssize_t r = read(out[0], buf, sizeof(buf));
      if (r <= 0) break;
      got.append(buf, r);
    }
  };
  // The backlog line first: from then on the tail is registered with the collector.
  read_lines(1);
  ASSERT_THAT(got, HasSubstr("from=<t@example.org>"));

  ASSERT_TRUE(ingest.Send(
      "mx",
      {line(1, "smtpd[10]: connect from unknown[198.51.100.9]"),
       line(2,
            "smtp[13]: 9E9E9E9E9E: to=<u@example.net>, relay=none, "
            "delay=1, dsn=4.4.1, status=deferred (timeout)"),
       line(3, "qmgr[12]: 1F1F1F1F1F: removed"), line(4, "qmgr[12]: 9E9E9E9E9E: removed")},
      1000, 77));
  read_lines(3);
  kill(child, SIGINT);
  int status;
  waitpid(child, &status, 0);
  close(out[0]);
  std::vector<std::string> lines = Lines(got);
  ASSERT_EQ(lines.size(), 3u) << got;
  EXPECT_THAT(lines[1], HasSubstr("status=deferred"));
  EXPECT_THAT(lines[2], HasSubstr("9E9E9E9E9E: removed"));
}

// `tail -f` outlives a collector restart: it says it lost the collector and reconnected, and
// shows what was stored after, each line once.
TEST_F(RemoteCliTest, TailFollowReconnectsAfterACollectorRestart) {
  const std::string kStamp = "2024-05-01T11:40:0";
  auto line = [&](int second, const std::string& text) {
    return absl::StrCat(kStamp, second, ".000000+00:00 mx postfix/", text);
  };
  Ingester before(Target());
  // Two lines; the tail's first backlog (--lines 1) shows the newer only, and the older must
  // not come back with the backlog after the reconnection: it was not stored meanwhile.
  ASSERT_TRUE(before.Send(
      "mx",
      {line(0, "smtpd[11]: 7D7D7D7D7D: client=older.example[192.0.2.77]"),
       line(1, "qmgr[12]: 7D7D7D7D7D: from=<r@example.org>, size=1, nrcpt=1 (queue active)")},
      0, 88));
  int out[2], err[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(err), 0);
  pid_t child = fork();
  if (child == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    std::string bin = BinDir() + "/maillens";
    std::string token = (*dir_ / "etc/reader.token").string();
    std::string target = Target();
    execl(bin.c_str(), "maillens", "--server", target.c_str(), "--token-file", token.c_str(),
          "tail", "-f", "qid:7D7D7D7D7D", "--lines", "1", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  std::string got, said;
  auto read_until = [&](const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
      if (poll(p, 2, 200) <= 0) continue;
      char buf[4096];
      for (int k = 0; k < 2; ++k) {
        if (!(p[k].revents & POLLIN)) continue;
        ssize_t r = read(p[k].fd, buf, sizeof(buf));
        if (r > 0) (k == 0 ? got : said).append(buf, r);
      }
    }
  };
  read_until([&] { return got.find("from=<r@example.org>") != std::string::npos; });
  ASSERT_THAT(got, HasSubstr("from=<r@example.org>"));

  // Restart the collector on the same port.
  kill(pid_, SIGTERM);
  int status;
  waitpid(pid_, &status, 0);
  read_until([&] { return said.find("lost the collector") != std::string::npos; });
  EXPECT_THAT(said, HasSubstr("lost the collector"));
  const fs::path conf = *dir_ / "etc/collector.conf";
  std::string text = ReadAll(conf);
  size_t at = text.find("127.0.0.1:0");
  if (at != std::string::npos) text.replace(at, 11, absl::StrCat("127.0.0.1:", port_));
  WriteFile(conf, text);
  int port = 0;
  pid_ = StartCollector(conf, *dir_ / "collector2.log", &port);
  ASSERT_EQ(port, port_) << ReadAll(*dir_ / "collector2.log");

  Ingester after(Target());
  ASSERT_TRUE(after.Send("mx", {line(2, "qmgr[12]: 7D7D7D7D7D: removed")}, 1000, 88));
  read_until([&] { return got.find("7D7D7D7D7D: removed") != std::string::npos; });
  kill(child, SIGINT);
  waitpid(child, &status, 0);
  close(out[0]);
  close(err[0]);
  EXPECT_THAT(said, HasSubstr("reconnected to the collector"));
  std::vector<std::string> lines = Lines(got);
  ASSERT_EQ(lines.size(), 2u) << got;  // the first line once, though the backlog repeats it
  EXPECT_THAT(lines[0], HasSubstr("from=<r@example.org>"));
  EXPECT_THAT(lines[1], HasSubstr("7D7D7D7D7D: removed"));
  EXPECT_THAT(got, Not(HasSubstr("older.example")));
}

TEST_F(RemoteCliTest, MutualTlsWithTheCaAndAClientCertificatePrintsTheSame) {
  ASSERT_EQ(std::system("openssl version >/dev/null 2>&1"), 0) << "openssl(1) is not installed";
  const fs::path tls = *dir_ / "tls";
  fs::create_directories(tls);
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  WriteFile(
      tls / "make.sh",
      absl::StrCat(
          "set -e; cd '", tls.string(), "'\n", "openssl req -x509 ", key,
          " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca "
          "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign\n",
          "openssl req ", key, " -keyout server.key -out server.csr -subj /CN=localhost\n",
          "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n'"
          " > server.ext\n",
          "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
          "-out server.pem -days 2 -extfile server.ext\n",
          "openssl req ", key, " -keyout client.key -out client.csr -subj /CN=ops\n",
          "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n",
          "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
          "-out client.pem -days 2 -extfile client.ext\n"));
  ASSERT_EQ(std::system(("sh '" + (tls / "make.sh").string() + "' >'" +
                         (tls / "make.log").string() + "' 2>&1")
                            .c_str()),
            0)
      << ReadAll(tls / "make.log");
  // Its own data directory, filled by a local import of the same logs.
  const fs::path data = *dir_ / "tls-data";
  Outcome import = Maillens(
      {"--data", data.string()},
      {"import", "--quiet", (*dir_ / "sim/dmz.log").string(), (*dir_ / "sim/mx.log").string()});
  ASSERT_EQ(import.exit_code, 0) << import.err;
  WriteFile(tls / "collector.conf",
            absl::StrCat("listen = 127.0.0.1:0\ndata_dir = ", data.string(),
                         "\ntls_cert = ", (tls / "server.pem").string(),
                         "\ntls_key = ", (tls / "server.key").string(),
                         "\ntls_client_ca = ", (tls / "ca.pem").string(),
                         "\nagent_tokens_file = ", (*dir_ / "etc/agent.tokens").string(),
                         "\nreader_tokens_file = ", (*dir_ / "etc/reader.tokens").string(), "\n"));
  int port = 0;
  pid_t pid = StartCollector(tls / "collector.conf", tls / "collector.log", &port);
  ASSERT_NE(port, 0) << ReadAll(tls / "collector.log");
  // By address: the certificate names 127.0.0.1 too, and no resolver is involved.
  const std::string target = absl::StrCat("127.0.0.1:", port);
  const std::string token = (*dir_ / "etc/reader.token").string();
  std::vector<std::string> args = {"search", "status:bounced", "--json"};
  Outcome local = Maillens({"--data", data.string()}, args);
  Outcome remote = Maillens(
      {"--server", target, "--token-file", token, "--tls-ca", (tls / "ca.pem").string(),
       "--tls-cert", (tls / "client.pem").string(), "--tls-key", (tls / "client.key").string()},
      args);
  EXPECT_EQ(remote.exit_code, 0) << remote.err;
  EXPECT_FALSE(remote.out.empty());
  EXPECT_EQ(local.out, remote.out);
  EXPECT_EQ(local.err, remote.err);
  // Without the client certificate the handshake fails: a sentence, not a hang.
  Outcome no_cert = Maillens(
      {"--server", target, "--token-file", token, "--tls-ca", (tls / "ca.pem").string()}, args);
  EXPECT_EQ(no_cert.exit_code, 1);
  EXPECT_THAT(no_cert.err, HasSubstr("cannot reach the collector"));
  // Plaintext to a TLS collector fails the same way.
  Outcome plain = Maillens({"--server", target, "--token-file", token}, args);
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_THAT(plain.err, HasSubstr("cannot reach the collector"));
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
}

}  // namespace
}  // namespace maillens
