// Shared by the cross-program ingest tests (ingest_fault_test, disk_full_test): starting and
// killing maillens-collector and maillens-agent processes, a maillog writer that appends
// distinct numbered Postfix lines and rotates its file the ways real hosts do, and reading
// back what the store holds.
//
// Thread-safety: MailLog serialises on its own mutex (a writer thread appends while the test
// thread rotates); the rest is for one thread.
#ifndef MAILLENS_TESTS_INGEST_HARNESS_H_
#define MAILLENS_TESTS_INGEST_HARNESS_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace maillens::ingest_test {

namespace fs = std::filesystem;

inline std::string BinDir() {
  const char* dir = std::getenv("MAILLENS_BIN_DIR");
  return dir ? dir : "build/bin";
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A loopback port nobody listens on now; the collector is restarted on the same one.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// One child process (a collector or an agent) whose stdout and stderr are appended to a log
// file, so every incarnation's messages stay readable after the test.
class Child {
 public:
  Child(std::string program, std::vector<std::string> args, std::string log_path)
      : program_(std::move(program)), args_(std::move(args)), log_path_(std::move(log_path)) {}
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Start() {
    std::string path = BinDir() + "/" + program_;
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      std::vector<char*> argv = {const_cast<char*>(program_.c_str())};
      for (std::string& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      std::fprintf(stderr, "cannot run %s\n", path.c_str());
      _exit(127);
    }
    pid_ = pid;
    ++starts_;
  }

  // SIGKILL and reap. True when the process was still running (it died of our signal).
  bool KillHard() {
    if (pid_ <= 0) return false;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

  // SIGTERM and wait for a graceful exit; returns the wait status.
  int Stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // False when the process ended on its own (a crash or a fatal error: see Log()).
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    return true;
  }

  pid_t pid() const { return pid_; }
  int starts() const { return starts_; }
  int exit_status() const { return exit_status_; }
  std::string Log() const { return ReadText(log_path_); }

 private:
  std::string program_;
  std::vector<std::string> args_;
  std::string log_path_;
  pid_t pid_ = -1;
  int starts_ = 0;
  int exit_status_ = 0;
};

// Writes a collector configuration (plaintext on loopback, open ingest, durable store) and
// returns its path.
inline std::string WriteCollectorConfig(const std::string& dir, int port,
                                        const std::string& data_dir) {
  std::string path = dir + "/collector.conf";
  WriteText(path, absl::StrCat("listen = 127.0.0.1:", port, "\ndata_dir = ", data_dir, "\n"));
  return path;
}

// Writes an agent configuration for `host` following `log` and returns its path.
inline std::string WriteAgentConfig(const std::string& dir, int port, const std::string& host,
                                    const std::string& log, const std::string& state_dir,
                                    int batch_lines) {
  std::string path = dir + "/agent-" + host + ".conf";
  WriteText(path, absl::StrCat("collector = 127.0.0.1:", port, "\nhost = ", host,
                               "\nrole = relay\nfiles = ", log, "\nstate_dir = ", state_dir,
                               "\nstart_at = beginning\ntz = UTC\nbatch_lines = ", batch_lines,
                               "\nbatch_wait_ms = 50\nmax_in_flight = 4\n"));
  return path;
}

// The agent of `host` following `log`, with its configuration, state and log under `dir`;
// started by Start().
class AgentChild : public Child {
 public:
  AgentChild(const std::string& dir, int port, const std::string& host, const std::string& log,
             int batch_lines)
      : Child("maillens-agent",
              {"--config",
               WriteAgentConfig(dir, port, host, log, dir + "/state-" + host, batch_lines)},
              dir + "/agent-" + host + ".log") {}
};

// One host's maillog. Every line is distinct (host, message number and line kind are in it),
// so the store's contents can be compared with what was written line by line. Rotations are
// done by the writer itself, as logrotate and `postfix logrotate` do them, between two lines.
class MailLog {
 public:
  MailLog(std::string dir, std::string host) : dir_(std::move(dir)), host_(std::move(host)) {
    fs::create_directories(dir_);
    Open();
  }
  ~MailLog() {
    if (fd_ >= 0) close(fd_);
  }
  MailLog(const MailLog&) = delete;
  MailLog& operator=(const MailLog&) = delete;

  std::string live() const { return dir_ + "/mail.log"; }
  const std::string& host() const { return host_; }

  // Appends the five lines of one message (smtpd, cleanup, qmgr, smtp, removed).
  void AppendMessage() {
    std::lock_guard<std::mutex> lock(mu_);
    AppendMessageLocked();
  }

  // logrotate's default: mail.log.N -> N+1, mail.log -> mail.log.1, a new mail.log. The
  // writer (a syslog daemon before its HUP) first appends `late_messages` more messages to
  // the renamed file.
  void RotateRenameCreate(int late_messages = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    ShiftNumbered();
    fs::rename(live(), live() + ".1");
    LateMessages(late_messages);
    close(fd_);
    Open();
    ++rotations_;
  }

  // logrotate copytruncate: the content is copied to mail.log.1 and the live file cut to 0.
  // The writer keeps its descriptor (O_APPEND, so it writes at the new end).
  void RotateCopyTruncate() {
    std::lock_guard<std::mutex> lock(mu_);
    ShiftNumbered();
    fs::copy_file(live(), live() + ".1");
    ftruncate(fd_, 0);
    ++rotations_;
  }

  // `postfix logrotate`: mail.log -> mail.log.YYYYMMDD-HHMMSS, a new mail.log (after
  // `late_messages` more to the renamed one), then the old one is gzipped (gzip(1) writes
  // NAME.gz and deletes NAME).
  void RotatePostfix(int late_messages = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    // A made-up date that grows with each rotation, so two in one second do not collide.
    std::string old = absl::StrCat(live(), ".20261204-", 100000 + rotations_);
    fs::rename(live(), old);
    LateMessages(late_messages);
    close(fd_);
    Open();
    ++rotations_;
    std::string cmd = absl::StrCat("gzip '", old, "'");
    gzip_status_ |= std::system(cmd.c_str());
  }

  std::vector<std::string> written() const {
    std::lock_guard<std::mutex> lock(mu_);
    return written_;
  }
  int rotations() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rotations_;
  }
  bool gzip_failed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return gzip_status_ != 0;
  }

 private:
  // Messages to the renamed file, spread over a few tens of milliseconds.
  void LateMessages(int count) {
    for (int i = 0; i < count; ++i) {
      AppendMessageLocked();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void AppendMessageLocked() {
    int n = messages_++;
    char qid[16];
    std::snprintf(qid, sizeof(qid), "%02X%08X", static_cast<unsigned>(host_.back()) & 0xff, n);
    std::string stamp = Stamp();
    std::string pre = absl::StrCat(stamp, " ", host_, " postfix/");
    int pid = 20000 + n % 5000;
    WriteLine(absl::StrCat(pre, "smtpd[", pid, "]: ", qid, ": client=relay", n % 97,
                           ".example.net[192.0.2.", n % 250 + 1, "]"));
    WriteLine(absl::StrCat(pre, "cleanup[", pid + 1, "]: ", qid, ": message-id=<", n, ".", host_,
                           "@example.org>"));
    WriteLine(absl::StrCat(pre, "qmgr[1001]: ", qid, ": from=<sender", n,
                           "@example.org>, size=", 1000 + n % 9000, ", nrcpt=1 (queue active)"));
    WriteLine(absl::StrCat(pre, "smtp[", pid + 2, "]: ", qid, ": to=<rcpt", n,
                           "@example.net>, relay=mx.example.net[198.51.100.7]:25, delay=0.2, "
                           "delays=0.1/0/0.05/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued "
                           "as 4X",
                           n, ")"));
    WriteLine(absl::StrCat(pre, "qmgr[1001]: ", qid, ": removed"));
  }

  // The classic syslog stamp of now, in UTC (the agents run with tz = UTC).
  static std::string Stamp() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%b %e %H:%M:%S", &tm);
    return buf;
  }

  void Open() { fd_ = open(live().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644); }

  void WriteLine(const std::string& line) {
    std::string data = line + "\n";
    if (write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size())) {
      written_.push_back(line);
    }
  }

  void ShiftNumbered() {
    int top = 1;
    while (fs::exists(absl::StrCat(live(), ".", top))) ++top;
    for (int i = top - 1; i >= 1; --i) {
      fs::rename(absl::StrCat(live(), ".", i), absl::StrCat(live(), ".", i + 1));
    }
  }

  const std::string dir_;
  const std::string host_;
  mutable std::mutex mu_;
  int fd_ = -1;
  int messages_ = 0;
  int rotations_ = 0;
  int gzip_status_ = 0;
  std::vector<std::string> written_;
};

// (host, raw line) -> how many times.
using LineCounts = std::map<std::pair<std::string, std::string>, int>;

inline LineCounts CountWritten(const MailLog& log) {
  LineCounts counts;
  for (const std::string& line : log.written()) ++counts[{log.host(), line}];
  return counts;
}

// Read-only SQLite handles for looking into the store from outside the collector (which may
// be writing it), without linking the collector library.
struct SqliteClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct SqliteFinalize {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteClose>;
using SqliteStmt = std::unique_ptr<sqlite3_stmt, SqliteFinalize>;

// Runs `sql` on the database at `path` and calls `row` for each result row.
inline absl::Status QueryRows(const std::string& path, const char* sql,
                              const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) return absl::UnavailableError(absl::StrCat(path, ": ", sqlite3_errstr(rc)));
  sqlite3_busy_timeout(db.get(), 5000);
  sqlite3_stmt* stmt_raw = nullptr;
  rc = sqlite3_prepare_v2(db.get(), sql, -1, &stmt_raw, nullptr);
  SqliteStmt stmt(stmt_raw);
  while (rc == SQLITE_OK && (rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    row(stmt.get());
    rc = SQLITE_OK;
  }
  if (rc != SQLITE_DONE) {
    return absl::UnavailableError(absl::StrCat(path, ": ", sqlite3_errmsg(db.get())));
  }
  return absl::OkStatus();
}

inline std::string ColumnBytes(sqlite3_stmt* stmt, int col) {
  const void* p = sqlite3_column_blob(stmt, col);
  int n = sqlite3_column_bytes(stmt, col);
  return p ? std::string(static_cast<const char*>(p), n) : std::string();
}

inline std::vector<std::string> Partitions(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir + "/days", ec)) {
    // Partitions (YYYYMMDD.db), not their full-text side files (YYYYMMDD.fts.db).
    if (entry.path().filename().string().size() == 11 && entry.path().extension() == ".db") {
      out.push_back(entry.path().string());
    }
  }
  return out;
}

// Lines in the store. While the collector creates a partition it may not be readable yet:
// that is an error, and the caller polls again.
inline absl::StatusOr<uint64_t> CountStored(const std::string& data_dir) {
  uint64_t total = 0;
  for (const std::string& day : Partitions(data_dir)) {
    MAILLENS_RETURN_IF_ERROR(QueryRows(day, "SELECT count(*) FROM events", [&](sqlite3_stmt* s) {
      total += sqlite3_column_int64(s, 0);
    }));
  }
  return total;
}

// Every stored (host, raw line).
inline absl::StatusOr<LineCounts> ReadStored(const std::string& data_dir) {
  std::map<int64_t, std::string> hosts;
  MAILLENS_RETURN_IF_ERROR(
      QueryRows(data_dir + "/catalog.db", "SELECT id, name FROM hosts",
                [&](sqlite3_stmt* s) { hosts[sqlite3_column_int64(s, 0)] = ColumnBytes(s, 1); }));
  LineCounts counts;
  for (const std::string& day : Partitions(data_dir)) {
    MAILLENS_RETURN_IF_ERROR(
        QueryRows(day, "SELECT host_id, raw FROM events", [&](sqlite3_stmt* s) {
          ++counts[{hosts[sqlite3_column_int64(s, 0)], ColumnBytes(s, 1)}];
        }));
  }
  return counts;
}

// Polls the store until it holds at least `expected` lines or `deadline` passes; returns the
// last count seen (0 while the store cannot be read).
inline uint64_t WaitForStored(const std::string& data_dir, uint64_t expected,
                              std::chrono::steady_clock::time_point deadline) {
  uint64_t last = 0;
  while (true) {
    absl::StatusOr<uint64_t> count = CountStored(data_dir);
    if (count.ok()) last = *count;
    if (last >= expected || std::chrono::steady_clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// What differs between written and stored, for a failure message: up to `limit` examples of
// lines missing and lines stored more than once (or never written).
inline std::string Compare(const LineCounts& written, const LineCounts& stored, int* missing_out,
                           int* extra_out, int limit = 8) {
  std::string report;
  int missing = 0, extra = 0;
  for (const auto& [key, n] : written) {
    auto it = stored.find(key);
    int have = it == stored.end() ? 0 : it->second;
    if (have < n) {
      missing += n - have;
      if (missing <= limit)
        absl::StrAppend(&report, "missing: ", key.first, " | ", key.second, "\n");
    }
  }
  for (const auto& [key, n] : stored) {
    auto it = written.find(key);
    int want = it == written.end() ? 0 : it->second;
    if (n > want) {
      extra += n - want;
      if (extra <= limit) {
        absl::StrAppend(&report, "stored ", n, "x (written ", want, "x): ", key.first, " | ",
                        key.second, "\n");
      }
    }
  }
  *missing_out = missing;
  *extra_out = extra;
  return report;
}

}  // namespace maillens::ingest_test

#endif  // MAILLENS_TESTS_INGEST_HARNESS_H_
