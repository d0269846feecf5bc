// maillens-agent: tails this host's maillog and ships it to the collector.
//
//   maillens-agent --config /etc/maillens/agent.conf
//
// Configuration keys are documented in deploy/agent.conf.example.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/config_keys.h"
#include "agent/metrics.h"
#include "agent/queue_reader.h"
#include "agent/shipper.h"
#include "agent/tailer.h"
#include "core/config.h"
#include "core/listen_address.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

void Log(const std::string& line) {
  // journald adds time and unit; a plain line on stderr is what it wants.
  std::fprintf(stderr, "%s\n", line.c_str());
}

// A problem that lasts (a maillog left unreadable by `postfix logrotate`) is seen on every
// poll, several times a second: say it once, then once a minute with how often it recurred.
void WarnRateLimited(const std::string& message) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  static std::string last;
  static absl::Time last_logged = absl::InfinitePast();
  static uint64_t repeats = 0;
  absl::Time now = absl::Now();
  if (message == last && now - last_logged < absl::Minutes(1)) {
    ++repeats;
    return;
  }
  if (repeats > 0 && message == last) {
    Log(absl::StrCat("warning: ", message, " (", repeats, " more times in the last minute)"));
  } else {
    Log("warning: " + message);
  }
  last = message;
  last_logged = now;
  repeats = 0;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> List(const std::string& value) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

std::string ShortHostName() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  std::string name = buf;
  return name.substr(0, name.find('.'));
}

int Fail(const std::string& message) {
  Log("error: " + message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  CLI::App app(
      "Tails this host's maillog (rotation, truncation and gaps included) and ships every line "
      "to the maillens collector over gRPC; checkpoints advance only on the collector's durable "
      "acknowledgement. Keys: see deploy/agent.conf.example. SIGTERM or SIGINT stops it "
      "cleanly.",
      "maillens-agent");
  app.add_option("--config", config_path, "the agent's configuration file")
      ->required()
      ->type_name("FILE");
  app.set_version_flag("--version", std::string("maillens-agent ") + MAILLENS_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2 (as every maillens program).
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  auto text = ReadFile(config_path);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  auto config =
      maillens::core::Config::Parse(*text, config_path, maillens::agent::AgentConfigKeys());
  if (!config.ok()) return Fail(std::string(config.status().message()));

  maillens::agent::TailerOptions tailer_options;
  auto files = maillens::agent::ParseFilesEntries(config->GetString("files", "/var/log/mail.log"));
  if (!files.ok())
    return Fail(config->Where("files") + ": " + std::string(files.status().message()));
  std::vector<std::string> dovecot_patterns;
  for (const maillens::agent::FilesEntry& entry : *files) {
    tailer_options.paths.push_back(entry.pattern);
    if (entry.format == "dovecot") dovecot_patterns.push_back(entry.pattern);
  }
  tailer_options.state_dir = config->GetString("state_dir", "/var/lib/maillens-agent");
  std::string start_at = config->GetString("start_at", "beginning");
  if (start_at != "beginning" && start_at != "end") {
    return Fail(config->Where("start_at") + ": start_at is 'beginning' or 'end', not '" + start_at +
                "'");
  }
  tailer_options.start_at_end = start_at == "end";
  auto max_line = config->GetBytes("max_line_bytes", 1 << 20, 1024, 64 << 20);
  if (!max_line.ok()) return Fail(std::string(max_line.status().message()));
  tailer_options.max_line_bytes = *max_line;
  tailer_options.on_problem = [](const absl::Status& s) { WarnRateLimited(s.ToString()); };
  // Checked with the rest of the configuration, before anything starts, with the line to fix.
  const std::string metrics_listen = config->GetString("metrics_listen");
  auto metrics_allow_remote = config->GetBool("metrics_allow_remote", false);
  if (!metrics_allow_remote.ok()) return Fail(std::string(metrics_allow_remote.status().message()));
  if (!metrics_listen.empty()) {
    if (absl::Status s =
            maillens::core::CheckMetricsListen(metrics_listen, *metrics_allow_remote, 9412);
        !s.ok()) {
      return Fail(config->Where("metrics_listen") + ": " + std::string(s.message()));
    }
  }

  maillens::agent::ShipperOptions shipper_options;
  auto collector = config->GetRequiredString("collector");
  if (!collector.ok()) return Fail(std::string(collector.status().message()));
  shipper_options.collector = *collector;
  std::string token = config->GetString("token");
  if (config->Has("token_file")) {
    auto t = ReadFile(config->GetString("token_file"));
    if (!t.ok()) return Fail(std::string(t.status().message()));
    token = std::string(absl::StripAsciiWhitespace(*t));
  }
  shipper_options.token = token;
  shipper_options.dovecot_patterns = dovecot_patterns;
  std::string host = config->GetString("host", ShortHostName());
  shipper_options.hello.set_host(host);
  shipper_options.hello.set_role(config->GetString("role"));
  shipper_options.hello.set_version(MAILLENS_VERSION);
  for (const std::string& a : List(config->GetString("addresses"))) {
    shipper_options.hello.add_addresses(a);
  }
  for (const std::string& a : List(config->GetString("aliases"))) {
    shipper_options.hello.add_aliases(a);
  }
  std::string tz = config->GetString("tz");
  shipper_options.zone = absl::LocalTimeZone();
  if (!tz.empty() && !absl::LoadTimeZone(tz, &shipper_options.zone)) {
    return Fail(config->Where("tz") + ": unknown time zone '" + tz + "'");
  }
  auto batch_lines = config->GetInt("batch_lines", 2000, 1, 100000);
  auto batch_wait = config->GetInt("batch_wait_ms", 200, 1, 60000);
  auto in_flight = config->GetInt("max_in_flight", 4, 1, 64);
  for (const auto* v : {&batch_lines, &batch_wait, &in_flight}) {
    if (!v->ok()) return Fail(std::string(v->status().message()));
  }
  shipper_options.batch_lines = static_cast<size_t>(*batch_lines);
  shipper_options.batch_wait = absl::Milliseconds(*batch_wait);
  shipper_options.max_in_flight = static_cast<size_t>(*in_flight);
  shipper_options.tls_server_name = config->GetString("tls_server_name");
  if (config->Has("tls_ca")) {
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadFile(config->GetString("tls_ca"));
    if (!ca.ok()) return Fail(std::string(ca.status().message()));
    ssl.pem_root_certs = *ca;
    if (config->Has("tls_cert")) {
      auto cert = ReadFile(config->GetString("tls_cert"));
      auto key = ReadFile(config->GetString("tls_key"));
      if (!cert.ok()) return Fail(std::string(cert.status().message()));
      if (!key.ok()) return Fail(std::string(key.status().message()));
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    shipper_options.credentials = grpc::SslCredentials(ssl);
  } else {
    auto allow = config->GetBool("allow_plaintext", false);
    if (!allow.ok()) return Fail(std::string(allow.status().message()));
    if (!*allow && !maillens::core::IsLoopbackListen(shipper_options.collector)) {
      return Fail("refusing to send logs in plaintext to " + shipper_options.collector +
                  ": set tls_ca (and tls_cert/tls_key for mutual TLS), or allow_plaintext = "
                  "true if this network is trusted");
    }
    shipper_options.credentials = grpc::InsecureChannelCredentials();
  }
  // The live queue view (maillens queue): a postqueue -j snapshot every minute by default.
  auto queue_interval = config->GetInt("queue_interval_s", 60, 0, 86400);
  if (!queue_interval.ok()) return Fail(std::string(queue_interval.status().message()));
  if (*queue_interval > 0) {
    maillens::agent::QueueReaderOptions queue_options;
    queue_options.config_dirs = List(config->GetString("postfix_config_dirs"));
    auto reader = std::make_shared<maillens::agent::QueueReader>(queue_options);
    shipper_options.read_queue = [reader] { return reader->Read(); };
    shipper_options.queue_interval = absl::Seconds(*queue_interval);
  }
  shipper_options.log = [](const std::string& m) { Log("info: " + m); };
  // What the collector refused (a token, a batch, a message), once per reason with a count.
  shipper_options.warn = [](const std::string& m) { Log("warning: " + m); };

  auto tailer = maillens::agent::Tailer::Open(tailer_options);
  if (!tailer.ok()) return Fail(tailer.status().ToString());
  maillens::agent::Shipper shipper(tailer->get(), shipper_options);
  maillens::agent::AgentMetrics metrics(tailer->get(), &shipper, tailer_options.paths);
  if (!metrics_listen.empty()) {
    if (absl::Status s = metrics.Listen(metrics_listen, *metrics_allow_remote); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    Log(absl::StrCat("info: metrics on http://", metrics_listen, "/metrics (port ", metrics.port(),
                     ")"));
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::thread watcher([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    shipper.Stop();
  });
  Log(absl::StrCat("info: maillens-agent ", MAILLENS_VERSION, " for host ", host, " shipping ",
                   config->GetString("files", "/var/log/mail.log"), " to ",
                   shipper_options.collector));
  shipper.Run();
  g_stop = true;
  watcher.join();
  auto stats = shipper.stats();
  Log(absl::StrCat("info: stopped; ", stats.lines_acked, " lines acknowledged, ", stats.reconnects,
                   " reconnects"));
  return 0;
}
