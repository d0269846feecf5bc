// The Prometheus endpoints of agent and collector, scraped over loopback HTTP while a real
// tailer and shipper stream a maillog into a real collector (gRPC, SQLite) in this process:
// the families and their types are there, counters move as lines are shipped, stored and
// parsed, and no label value carries an address, an IP or a queue ID from the log.
#include "agent/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "agent/shipper.h"
#include "agent/tailer.h"
#include "collector/metrics.h"
#include "collector/server.h"
#include "core/listen_address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "maillens/v1/query.grpc.pb.h"

namespace maillens {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A minimal HTTP/1.0 GET on 127.0.0.1:port; the body, or "" on any failure.
std::string HttpGet(int port, const std::string& path, int* status = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};  // a hung endpoint fails the test instead of hanging it
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    }
  }
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return "";
  if (status != nullptr) *status = std::atoi(response.c_str() + response.find(' ') + 1);
  return response.substr(body + 4);
}

// Sample values by series ("name{labels}" exactly as exposed), from a text exposition.
std::map<std::string, double> Samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

// The TYPE the exposition declares for `family`, or "".
std::string TypeOf(const std::string& text, const std::string& family) {
  std::smatch m;
  std::regex re("# TYPE " + family + " (\\w+)");
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

// Every label value in an exposition.
std::vector<std::string> LabelValues(const std::string& text) {
  std::vector<std::string> out;
  std::regex re("[a-z_]+=\"([^\"]*)\"");
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    out.push_back((*it)[1].str());
  }
  return out;
}

// What must never be a label value: an email address, an IPv4 or IPv6 address, a Postfix
// queue ID (short: 10-12 upper-case hex; long: 12+ characters of the vowel-free base 52).
bool LooksSensitive(const std::string& v) {
  static const std::regex kPatterns[] = {
      std::regex(R"([^@\s]+@[^@\s]+)"),
      std::regex(R"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})"),
      std::regex(R"([0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*)"),
      std::regex(R"([0-9A-F]{10,12})"),
      std::regex(R"([0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]{12,})"),
  };
  for (const std::regex& re : kPatterns) {
    if (std::regex_search(v, re)) return true;
  }
  return false;
}

// Lines with addresses, IPs and queue IDs in them (short and long), and one the parser does
// not understand.
const char* const kLines[] = {
    "Dec  4 10:00:01 mx1 postfix/smtpd[101]: connect from mail.example.net[192.0.2.7]",
    "Dec  4 10:00:02 mx1 postfix/smtpd[101]: 4F1A2B3C4D: client=mail.example.net[192.0.2.7]",
    "Dec  4 10:00:02 mx1 postfix/cleanup[102]: 4F1A2B3C4D: "
    "message-id=<m1@example.net>",
    "Dec  4 10:00:03 mx1 postfix/qmgr[103]: 4F1A2B3C4D: from=<alice@example.net>, size=900, "
    "nrcpt=1 (queue active)",
    "Dec  4 10:00:04 mx1 postfix/smtp[104]: 4F1A2B3C4D: to=<bob@example.org>, "
    "relay=in.example.org[2001:db8::25]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, "
    "status=sent (250 2.0.0 Ok: queued as 3mPVKl0Mhjz7sXv)",
    "Dec  4 10:00:05 mx1 postfix/qmgr[103]: 4F1A2B3C4D: removed",
    "Dec  4 10:00:06 mx1 postfix/smtpd[101]: a line no Postfix version ever wrote",
    "Dec  4 10:00:07 mx1 weirdd[9]: bob@example.org from 198.51.100.9",
};

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("maillens_metrics_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    fs::create_directories(dir_ / "state");
    log_ = (dir_ / "mail.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Append(size_t from, size_t to) {
    std::ofstream out(log_, std::ios::app);
    for (size_t i = from; i < to; ++i) out << kLines[i] << "\n";
  }

  // Waits (bounded) until the shipper has `n` lines acknowledged.
  bool WaitAcked(const agent::Shipper& shipper, uint64_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (shipper.stats().lines_acked >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  fs::path dir_;
  std::string log_;
};

TEST(MetricsListenTest, RefusesNonLoopbackUnlessAllowed) {
  collector::CollectorMetrics metrics;
  for (const char* listen : {"0.0.0.0:0", "192.0.2.1:9411", ":9411", "[::]:0", "example.org:1"}) {
    absl::Status s = metrics.Listen(listen, /*allow_remote=*/false);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << listen << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("metrics_allow_remote")) << listen;
  }
  EXPECT_TRUE(core::IsLoopbackListen("127.0.0.1:9411"));
  EXPECT_TRUE(core::IsLoopbackListen("[::1]:9411"));
  EXPECT_TRUE(core::IsLoopbackListen("localhost:9411"));
  EXPECT_TRUE(core::IsLoopbackListen("127.0.0.2:1"));
  EXPECT_FALSE(core::IsLoopbackListen("10.0.0.1:1"));
  EXPECT_FALSE(core::IsLoopbackListen("0.0.0.0:1"));
  // Allowed remote: it binds (0.0.0.0 with a free port).
  ASSERT_TRUE(metrics.Listen("0.0.0.0:0", /*allow_remote=*/true).ok());
  EXPECT_GT(metrics.port(), 0);
}

TEST(MetricsLabelTest, DaemonsAndFilesAreBounded) {
  EXPECT_EQ(collector::DaemonLabel("smtpd"), "smtpd");
  EXPECT_EQ(collector::DaemonLabel("qmgr"), "qmgr");
  EXPECT_EQ(collector::DaemonLabel("weirdd"), "other");
  EXPECT_EQ(collector::DaemonLabel("alice@example.org"), "other");
  EXPECT_EQ(agent::FileLabels({"/var/log/mail.log", "/var/log/mail.err"}),
            (std::vector<std::string>{"mail.log", "mail.err"}));
  EXPECT_EQ(agent::FileLabels({"/a/mail.log", "/b/mail.log"}),
            (std::vector<std::string>{"mail.log#0", "mail.log#1"}));
  // The checker itself catches what it is there to catch.
  for (const char* bad : {"alice@example.net", "192.0.2.7", "2001:db8::25", "4F1A2B3C4D",
                          "3mPVKl0Mhjz7sXv", "mail.example.net[192.0.2.7]"}) {
    EXPECT_TRUE(LooksSensitive(bad)) << bad;
  }
  for (const char* ok : {"smtpd", "postscreen", "tls_established", "mail.log", "committed"}) {
    EXPECT_FALSE(LooksSensitive(ok)) << ok;
  }
}

TEST_F(MetricsTest, BothEndpointsServeFamiliesThatMoveWithTheLines) {
  collector::CollectorMetrics cmetrics;
  collector::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = (dir_ / "data").string();
  options.metrics = &cmetrics;
  auto server = collector::CollectorServer::Start(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  collector::CollectorServer* srv = server->get();
  cmetrics.SetSource([srv] { return srv->Stats(); }, (dir_ / "data").string());
  ASSERT_TRUE(cmetrics.Listen("127.0.0.1:0", false).ok());
  ASSERT_GT(cmetrics.port(), 0);

  Append(0, 4);
  agent::TailerOptions topts;
  topts.paths = {log_};
  topts.state_dir = (dir_ / "state").string();
  topts.sync_checkpoints = false;
  auto tailer = agent::Tailer::Open(topts);
  ASSERT_TRUE(tailer.ok()) << tailer.status();
  agent::ShipperOptions sopts;
  sopts.collector = "127.0.0.1:" + std::to_string(srv->port());
  sopts.credentials = grpc::InsecureChannelCredentials();
  sopts.hello.set_host("mx1");
  sopts.batch_wait = absl::Milliseconds(20);
  agent::Shipper shipper(tailer->get(), sopts);
  agent::AgentMetrics ametrics(tailer->get(), &shipper, topts.paths);
  ASSERT_TRUE(ametrics.Listen("127.0.0.1:0", false).ok());
  ASSERT_GT(ametrics.port(), 0);

  int status = 0;
  std::string a0 = HttpGet(ametrics.port(), "/metrics", &status);
  EXPECT_EQ(status, 200);
  std::string c0 = HttpGet(cmetrics.port(), "/metrics", &status);
  EXPECT_EQ(status, 200);
  auto as0 = Samples(a0);
  auto cs0 = Samples(c0);
  EXPECT_EQ(as0["maillens_agent_lines_shipped_total"], 0);
  EXPECT_EQ(cs0["maillens_collector_lines_stored_total"], 0);

  std::thread runner([&] { shipper.Run(); });
  ASSERT_TRUE(WaitAcked(shipper, 4));
  ASSERT_TRUE(srv->WaitIndexed(absl::Now() + absl::Seconds(30)));  // stored and parsed

  // A query, so the query latency histogram has a series.
  {
    auto channel = grpc::CreateChannel(sopts.collector, grpc::InsecureChannelCredentials());
    auto stub = v1::QueryService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::SearchRequest req;
    req.add_words("from:alice@example.net");
    v1::SearchResponse resp;
    grpc::Status st = stub->Search(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  std::string a1 = HttpGet(ametrics.port(), "/metrics");
  std::string c1 = HttpGet(cmetrics.port(), "/metrics");
  auto as1 = Samples(a1);
  auto cs1 = Samples(c1);

  // Families and their types.
  for (const auto& [family, type] : std::map<std::string, std::string>{
           {"maillens_agent_lines_read_total", "counter"},
           {"maillens_agent_lines_shipped_total", "counter"},
           {"maillens_agent_lines_acknowledged_total", "counter"},
           {"maillens_agent_lines_resent_total", "counter"},
           {"maillens_agent_batches_total", "counter"},
           {"maillens_agent_rotations_total", "counter"},
           {"maillens_agent_gaps_total", "counter"},
           {"maillens_agent_reconnects_total", "counter"},
           {"maillens_agent_connected", "gauge"},
           {"maillens_agent_lag_bytes", "gauge"},
           {"maillens_agent_lag_seconds", "gauge"},
       }) {
    EXPECT_EQ(TypeOf(a1, family), type) << family;
  }
  for (const auto& [family, type] : std::map<std::string, std::string>{
           {"maillens_collector_lines_stored_total", "counter"},
           {"maillens_collector_lines_duplicate_total", "counter"},
           {"maillens_collector_lines_truncated_total", "counter"},
           {"maillens_collector_batches_total", "counter"},
           {"maillens_collector_commit_duration_seconds", "histogram"},
           {"maillens_collector_index_duration_seconds", "histogram"},
           {"maillens_collector_index_backlog_bytes", "gauge"},
           {"maillens_collector_parsed_lines_total", "counter"},
           {"maillens_collector_store_bytes", "gauge"},
           {"maillens_collector_store_partitions", "gauge"},
           {"maillens_collector_gaps_recorded_total", "counter"},
           {"maillens_collector_agents_connected", "gauge"},
           {"maillens_collector_query_duration_seconds", "histogram"},
           {"maillens_collector_writer_queue_bytes", "gauge"},
       }) {
    EXPECT_EQ(TypeOf(c1, family), type) << family;
  }

  // Counters moved with the four lines.
  EXPECT_GE(as1["maillens_agent_lines_read_total"], 4);
  EXPECT_GE(as1["maillens_agent_lines_shipped_total"], 4);
  EXPECT_EQ(as1["maillens_agent_lines_acknowledged_total"], 4);
  EXPECT_GE(as1["maillens_agent_batches_total{event=\"shipped\"}"], 1);
  EXPECT_EQ(as1["maillens_agent_connected"], 1);
  EXPECT_EQ(as1["maillens_agent_lag_bytes{file=\"mail.log\"}"], 0);
  EXPECT_EQ(cs1["maillens_collector_lines_stored_total"], 4);
  EXPECT_GE(cs1["maillens_collector_batches_total{outcome=\"committed\"}"], 1);
  EXPECT_GE(cs1["maillens_collector_commit_duration_seconds_count"], 1);
  EXPECT_EQ(cs1["maillens_collector_parsed_lines_total{daemon=\"smtpd\",kind=\"connect\"}"], 1);
  EXPECT_EQ(cs1["maillens_collector_parsed_lines_total{daemon=\"qmgr\",kind=\"queued\"}"], 1);
  EXPECT_EQ(cs1["maillens_collector_agents_connected"], 1);
  EXPECT_GT(cs1["maillens_collector_store_bytes"], 0);
  EXPECT_GE(cs1["maillens_collector_store_partitions"], 1);
  EXPECT_EQ(cs1["maillens_collector_query_duration_seconds_count{method=\"Search\"}"], 1);

  // More lines, with an unparsed one and an unknown program: the counters move again.
  Append(4, std::size(kLines));
  ASSERT_TRUE(WaitAcked(shipper, std::size(kLines)));
  ASSERT_TRUE(srv->WaitIndexed(absl::Now() + absl::Seconds(30)));
  std::string a2 = HttpGet(ametrics.port(), "/metrics");
  std::string c2 = HttpGet(cmetrics.port(), "/metrics");
  auto as2 = Samples(a2);
  auto cs2 = Samples(c2);
  EXPECT_GT(as2["maillens_agent_lines_shipped_total"], as1["maillens_agent_lines_shipped_total"]);
  EXPECT_EQ(as2["maillens_agent_lines_acknowledged_total"], std::size(kLines));
  EXPECT_EQ(cs2["maillens_collector_lines_stored_total"], std::size(kLines));
  EXPECT_EQ(cs2["maillens_collector_parsed_lines_total{daemon=\"smtpd\",kind=\"unparsed\"}"], 1);
  EXPECT_EQ(cs2["maillens_collector_parsed_lines_total{daemon=\"other\",kind=\"unparsed\"}"], 1);
  EXPECT_GT(cs2["maillens_collector_commit_duration_seconds_count"],
            cs1["maillens_collector_commit_duration_seconds_count"]);

  // No label value carries what the log lines hold.
  std::vector<std::string> values = LabelValues(a2 + c2);
  EXPECT_GT(values.size(), 10u);
  for (const std::string& v : values) EXPECT_FALSE(LooksSensitive(v)) << v;

  shipper.Stop();
  runner.join();
  (*server)->Shutdown(absl::Seconds(5));
  std::string c3 = HttpGet(cmetrics.port(), "/metrics");
  EXPECT_EQ(Samples(c3)["maillens_collector_agents_connected"], 0);
}

}  // namespace
}  // namespace maillens
