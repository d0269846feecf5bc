// maillens-collector --config FILE: one per site. Reads the config (keys documented in
// deploy/collector.conf.example), starts the gRPC server and runs until SIGTERM or SIGINT,
// then shuts down gracefully: streams stop reading, what they read is committed and
// acknowledged, and the process exits 0.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "collector/metrics.h"
#include "collector/server.h"
#include "core/collector_config_keys.h"
#include "core/config.h"
#include "core/listen_address.h"
#include "core/status_macros.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "store/data_lock.h"
#include "store/retention.h"

namespace maillens::collector {
namespace {

constexpr char kDescription[] =
    "Receives maillog lines from maillens agents over gRPC, stores and correlates them, and "
    "answers maillens queries. Keys: see deploy/collector.conf.example. SIGTERM or SIGINT "
    "shuts down gracefully.";

// Retention (store/retention.h): on when hot_days is set.
struct RetentionConfig {
  bool enabled = false;
  store::RetentionPolicy policy;
  absl::Duration interval = absl::Minutes(60);
};

// sd-daemon(3) priority prefixes: journald reads "<6>" as the level of the line.
class SdPriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const char* prefix = "<6>";
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        prefix = "<7>";
        break;
      case spdlog::level::warn:
        prefix = "<4>";
        break;
      case spdlog::level::err:
        prefix = "<3>";
        break;
      case spdlog::level::critical:
        prefix = "<2>";
        break;
      default:
        break;
    }
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SdPriorityFlag>();
  }
};

// systemd sets JOURNAL_STREAM to the device and inode of the stream it connected to stderr;
// when they match, journald adds timestamps itself and reads the priority prefix.
bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

// Plain text on stderr, never colour: "<6>message" under journald, else a timestamp and
// "info:" / "warning:" / "error:".
std::shared_ptr<spdlog::logger> MakeLogger() {
  auto logger = std::make_shared<spdlog::logger>("maillens-collector",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (StderrIsJournal()) {
    formatter->add_flag<SdPriorityFlag>('*').set_pattern("%*%v");
  } else {
    formatter->set_pattern("%Y-%m-%d %H:%M:%S.%e %l: %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::info);
  return logger;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) {
    return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  return out.str();
}

// Reads the file a config key names; errors say which key and line.
absl::StatusOr<std::string> ReadKeyFile(const core::Config& config, const char* key) {
  std::string path = config.GetString(key);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where(key), ": ", key, ": ", text.status().message()));
  }
  return text;
}

absl::StatusOr<std::vector<TokenEntry>> LoadTokens(const core::Config& config, const char* key,
                                                   spdlog::logger* log) {
  std::string path = config.GetString(key);
  MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadKeyFile(config, key));
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    log->warn("{} ({}) is readable by other users; tokens are secrets: chmod 600 it", path, key);
  }
  MAILLENS_ASSIGN_OR_RETURN(std::vector<TokenEntry> tokens, ParseTokens(text, path));
  if (tokens.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(config.Where(key), ": ", key, ": ", path,
                                                   " holds no tokens, so nobody could connect"));
  }
  return tokens;
}

absl::StatusOr<RetentionConfig> LoadRetention(const core::Config& config) {
  RetentionConfig r;
  r.enabled = config.Has("hot_days");
  MAILLENS_ASSIGN_OR_RETURN(int64_t hot, config.GetInt("hot_days", r.policy.hot_days, 1, 36500));
  r.policy.hot_days = static_cast<int>(hot);
  MAILLENS_ASSIGN_OR_RETURN(int64_t keep, config.GetInt("archive_days", 0, 0, 365000));
  r.policy.archive_days = static_cast<int>(keep);
  if (keep != 0 && keep < hot) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where("archive_days"), ": archive_days (", keep,
                     ") counts hot days too and must be at least hot_days (", hot, ")"));
  }
  MAILLENS_ASSIGN_OR_RETURN(r.policy.disk_budget_bytes, config.GetBytes("disk_budget", 0));
  MAILLENS_ASSIGN_OR_RETURN(int64_t minutes,
                            config.GetInt("retention_interval_minutes", 60, 1, 7 * 24 * 60));
  r.interval = absl::Minutes(minutes);
  if (!r.enabled && (config.Has("archive_days") || config.Has("disk_budget"))) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.Has("archive_days") ? config.Where("archive_days") : config.Where("disk_budget"),
        ": retention needs hot_days too (the days kept hot)"));
  }
  return r;
}

// Where the Prometheus endpoint listens (empty: off) and whether off loopback.
struct MetricsConfig {
  std::string listen;
  bool allow_remote = false;
};

absl::StatusOr<ServerOptions> LoadOptions(const std::string& path, spdlog::logger* log,
                                          RetentionConfig* retention, MetricsConfig* metrics) {
  MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  MAILLENS_ASSIGN_OR_RETURN(core::Config config,
                            core::Config::Parse(text, path, core::CollectorConfigKeys()));
  MAILLENS_ASSIGN_OR_RETURN(*retention, LoadRetention(config));
  metrics->listen = config.GetString("metrics_listen");
  MAILLENS_ASSIGN_OR_RETURN(metrics->allow_remote, config.GetBool("metrics_allow_remote", false));
  if (!metrics->listen.empty()) {
    // At load, with the line to fix, not later when the endpoint starts.
    if (absl::Status s = core::CheckMetricsListen(metrics->listen, metrics->allow_remote, 9411);
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.Where("metrics_listen"), ": ", s.message()));
    }
  }
  ServerOptions options;
  options.listen = config.GetString("listen", options.listen);
  MAILLENS_ASSIGN_OR_RETURN(options.data_dir, config.GetRequiredString("data_dir"));
  if (config.Has("tls_cert") != config.Has("tls_key")) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": tls_cert and tls_key go together (set both for TLS, neither for plaintext)"));
  }
  if (config.Has("tls_cert")) {
    MAILLENS_ASSIGN_OR_RETURN(options.tls_cert_pem, ReadKeyFile(config, "tls_cert"));
    MAILLENS_ASSIGN_OR_RETURN(options.tls_key_pem, ReadKeyFile(config, "tls_key"));
  }
  if (config.Has("tls_client_ca")) {
    if (!config.Has("tls_cert")) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.Where("tls_client_ca"),
                       ": tls_client_ca (mutual TLS) needs tls_cert and "
                       "tls_key"));
    }
    MAILLENS_ASSIGN_OR_RETURN(options.tls_client_ca_pem, ReadKeyFile(config, "tls_client_ca"));
  }
  if (config.Has("agent_tokens_file")) {
    MAILLENS_ASSIGN_OR_RETURN(options.agent_tokens, LoadTokens(config, "agent_tokens_file", log));
  }
  if (config.Has("reader_tokens_file")) {
    MAILLENS_ASSIGN_OR_RETURN(options.reader_tokens, LoadTokens(config, "reader_tokens_file", log));
  }
  MAILLENS_ASSIGN_OR_RETURN(options.allow_plaintext, config.GetBool("allow_plaintext", false));
  MAILLENS_ASSIGN_OR_RETURN(
      int64_t max_events, config.GetInt("max_batch_events", options.max_batch_events, 1, 1000000));
  options.max_batch_events = static_cast<size_t>(max_events);
  // The bounds, with why they are what they are: a bare "outside [65536, ...]" leaves the
  // reader guessing.
  absl::StatusOr<uint64_t> max_line =
      config.GetBytes("max_line_bytes", options.max_line_bytes, 256, 16 << 20);
  if (!max_line.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(max_line.status().message(),
                     " (max_line_bytes is at least 256, so a cut line still shows what it is, "
                     "and at most 16M)"));
  }
  options.max_line_bytes = *max_line;
  absl::StatusOr<uint64_t> max_message =
      config.GetBytes("max_message_bytes", options.max_message_bytes, 64 << 10, 1 << 30);
  if (!max_message.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        max_message.status().message(),
        " (max_message_bytes is at least 64K: an agent's first batch, its hello with its "
        "addresses and aliases and where each of its files stands, is sent before it knows "
        "the collector's limits; and at most 1G)"));
  }
  options.max_message_bytes = *max_message;
  MAILLENS_ASSIGN_OR_RETURN(options.writer_queue_bytes,
                            config.GetBytes("writer_queue_bytes", options.writer_queue_bytes,
                                            1 << 20, uint64_t{64} << 30));
  MAILLENS_ASSIGN_OR_RETURN(
      options.journal_max_bytes,
      config.GetBytes("journal_max_bytes", options.journal_max_bytes, 16 << 20, uint64_t{1} << 40));
  if (options.max_line_bytes > options.max_message_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.Where("max_line_bytes"), ": max_line_bytes (", options.max_line_bytes,
                     ") is larger than max_message_bytes (", options.max_message_bytes,
                     "), so such a line could never arrive: raise max_message_bytes to at least ",
                     "max_line_bytes"));
  }
  const size_t accepted = EffectiveMaxMessageBytes(options);
  if (accepted > options.max_message_bytes) {
    // Not an error: the documented relation (max_message_bytes >= max_line_bytes) holds, and
    // the margin a batch needs besides its line is the collector's business. Said once at
    // start, so the size announced to agents and enforced is no surprise.
    log->info(
        "max_message_bytes is {} but a batch holding one line of max_line_bytes ({}) needs up to "
        "{} more: messages of up to {} bytes are accepted",
        options.max_message_bytes, options.max_line_bytes, kMessageOverheadBytes, accepted);
  }
  return options;
}

int Run(int argc, char** argv) {
  std::string config_path;
  CLI::App app(kDescription, "maillens-collector");
  app.add_option("--config", config_path, "the collector's configuration file")
      ->required()
      ->type_name("FILE");
  app.set_version_flag("--version", std::string("maillens-collector ") + MAILLENS_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2 (as every maillens program).
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  std::shared_ptr<spdlog::logger> log = MakeLogger();
  spdlog::set_default_logger(log);
  // gRPC's own messages (failed TLS handshakes, bad frames) through the same logger, with its
  // prefix instead of gRPC's "E0101 12:00:00.000 file.cc:12]", each at most once a minute.
  RouteGrpcLogs(log);

  RetentionConfig retention;
  MetricsConfig metrics_config;
  absl::StatusOr<ServerOptions> options =
      LoadOptions(config_path, log.get(), &retention, &metrics_config);
  if (!options.ok()) {
    log->error("{}", std::string(options.status().message()));
    return 2;
  }
  options->logger = log;
  const std::string options_data_dir = options->data_dir;

  // Signals are taken by sigwait below, so every thread (gRPC's, the writer) starts with
  // them blocked and none is interrupted at a random point.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A closed stderr (journald restarting) must not kill the collector mid-commit.
  signal(SIGPIPE, SIG_IGN);

  // Before the store is opened and held until the process ends (after the server is gone):
  // the store must be the data directory's only writer, and an import beside the collector
  // would replace days it writes (store/data_lock.h).
  absl::StatusOr<std::unique_ptr<store::DataLock>> data_lock =
      store::DataLock::Acquire(options_data_dir, "maillens-collector");
  if (!data_lock.ok()) {
    log->error("{}", std::string(data_lock.status().message()));
    return 1;
  }

  // Declared before the server so it outlives it (the server's hooks borrow it).
  CollectorMetrics metrics;
  options->metrics = &metrics;
  absl::StatusOr<std::unique_ptr<CollectorServer>> server =
      CollectorServer::Start(*std::move(options));
  if (!server.ok()) {
    log->error("{}", std::string(server.status().message()));
    return absl::IsInvalidArgument(server.status()) || absl::IsFailedPrecondition(server.status())
               ? 2
               : 1;
  }
  if (!metrics_config.listen.empty()) {
    CollectorServer* srv = server->get();
    metrics.SetSource([srv] { return srv->Stats(); }, options_data_dir);
    if (absl::Status s = metrics.Listen(metrics_config.listen, metrics_config.allow_remote);
        !s.ok()) {
      log->error("{}", std::string(s.message()));
      return absl::IsInvalidArgument(s) ? 2 : 1;
    }
    log->info("metrics on http://{}/metrics (port {})", metrics_config.listen, metrics.port());
  }
  // Beside the server, on its own thread: archiving never stalls the store's writer.
  std::unique_ptr<store::RetentionRunner> retention_runner;
  if (retention.enabled) {
    log->info("retention: {} days hot, {}, disk budget {}; every {} minutes",
              retention.policy.hot_days,
              retention.policy.archive_days == 0
                  ? std::string("archive kept forever")
                  : absl::StrCat(retention.policy.archive_days, " days in all"),
              retention.policy.disk_budget_bytes == 0
                  ? std::string("none")
                  : absl::StrCat(retention.policy.disk_budget_bytes, " bytes"),
              absl::ToInt64Minutes(retention.interval));
    retention_runner = std::make_unique<store::RetentionRunner>(
        options_data_dir, retention.policy, retention.interval,
        [log](store::LogLevel level, const std::string& line) {
          log->log(level == store::LogLevel::kInfo      ? spdlog::level::info
                   : level == store::LogLevel::kWarning ? spdlog::level::warn
                                                        : spdlog::level::err,
                   line);
        });
  }
  int received = 0;
  sigwait(&signals, &received);
  log->info("received {}; shutting down", received == SIGTERM ? "SIGTERM" : "SIGINT");
  if (retention_runner) retention_runner->Stop();
  (*server)->Shutdown(absl::Seconds(30));
  metrics.SetSource(nullptr, options_data_dir);  // scrapes no longer read the server
  server->reset();
  log->info("exiting");
  return 0;
}

}  // namespace
}  // namespace maillens::collector

int main(int argc, char** argv) { return maillens::collector::Run(argc, argv); }
