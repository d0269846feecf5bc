// One writer per data directory (store/data_lock.h), across programs: two `maillens
// import`s started at once on one data directory, and an import started beside
// maillens-collector on the collector's directory, over and over (bounded in time). Every
// import that exits 0 has every one of its lines in the store and a summary that says so;
// every writer refused says which program and PID holds the directory, and stored nothing.
//
// Before the lock, two writers each built the same new days in memory and wrote them whole
// over one another: 7 of 23 such runs ended with an import saying "stored 38,851", exit 0,
// and none of its lines kept.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "tests/ingest_harness.h"

namespace maillens {
namespace {

using ingest_test::BinDir;
using ingest_test::FreePort;
using ingest_test::QueryRows;
using ingest_test::ReadText;
using ingest_test::WriteText;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Lines per import file, spread over kDays UTC days: one batch of the importer holds several
// days, each new to the store, which it builds in memory and writes whole (what two writers
// used to overwrite in one another).
constexpr int kLines = 3000;
constexpr int kDays = 12;

// A maillog of distinct lines (RFC 3339 stamps: no year or zone to infer), `tag` in each.
void WriteMaillog(const std::string& path, const std::string& tag) {
  std::string text;
  for (int i = 0; i < kLines; ++i) {
    const int day = 1 + i * kDays / kLines;
    const int second = i % 3600;
    absl::StrAppendFormat(&text,
                          "2026-03-%02dT%02d:%02d:%02d.000000+00:00 mx postfix/smtpd[%d]: "
                          "connect from client-%s-%d.example[192.0.2.%d]\n",
                          day, 10 + second / 3600, (second / 60) % 60, second % 60, 1000 + i, tag,
                          i, i % 250);
  }
  WriteText(path, text);
}

// A program run to its end, stdout and stderr into `log`.
class Process {
 public:
  Process(const std::string& program, std::vector<std::string> args, std::string log)
      : log_(std::move(log)) {
    const std::string path = BinDir() + "/" + program;
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      std::vector<char*> argv = {const_cast<char*>(program.c_str())};
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      std::fprintf(stderr, "cannot run %s\n", path.c_str());
      _exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Waits for the exit; its code (or 128 + signal).
  int Wait() {
    if (!exited_) {
      int status = 0;
      waitpid(pid_, &status, 0);
      exited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return code_;
  }
  // Whether it has exited (reaping it if so).
  bool Exited() {
    if (exited_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exited_;
  }
  // SIGTERM, then the exit code.
  int Stop() {
    if (!Exited()) kill(pid_, SIGTERM);
    return Wait();
  }
  std::string Output() const { return ReadText(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int code_ = -1;
};

std::unique_ptr<Process> StartImport(const std::string& data, const std::string& host,
                                     const std::string& file, const std::string& log) {
  return std::make_unique<Process>(
      "maillens", std::vector<std::string>{"--data", data, "import", "--host", host, file}, log);
}

// Lines of `host` in the store, read from its files (0 when the host is not there).
uint64_t LinesOf(const std::string& data, const std::string& host) {
  int64_t host_id = -1;
  absl::Status s = QueryRows(data + "/catalog.db",
                             absl::StrCat("SELECT id FROM hosts WHERE name = '", host, "'").c_str(),
                             [&](sqlite3_stmt* row) { host_id = sqlite3_column_int64(row, 0); });
  if (!s.ok() || host_id < 0) return 0;
  uint64_t lines = 0;
  for (const std::string& day : ingest_test::Partitions(data)) {
    s = QueryRows(day,
                  absl::StrCat("SELECT count(*) FROM events WHERE host_id = ", host_id).c_str(),
                  [&](sqlite3_stmt* row) { lines += sqlite3_column_int64(row, 0); });
    EXPECT_TRUE(s.ok()) << s;
  }
  return lines;
}

// The "stored N" of an import's summary, or -1.
int64_t SummaryStored(const std::string& output) {
  std::smatch m;
  static const std::regex kStored("stored ([0-9]+)");
  if (!std::regex_search(output, m, kStored)) return -1;
  return std::stoll(m[1]);
}

std::string Holder(const std::string& program, pid_t pid) {
  return absl::StrCat(program, " (pid ", pid, ")");
}

class OneWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "maillens_one_writer_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    WriteMaillog(dir_ + "/a.log", "a");
    WriteMaillog(dir_ + "/b.log", "b");
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // An import that exited: 0 with every line of `host` stored and said so, or refused naming
  // `holder` with nothing of `host` stored. True when it was the one that wrote.
  bool CheckImport(Process* import, const std::string& data, const std::string& host,
                   const std::string& holder, const std::string& what) {
    const int code = import->Wait();
    const std::string output = import->Output();
    const uint64_t stored = LinesOf(data, host);
    if (code == 0) {
      EXPECT_EQ(stored, static_cast<uint64_t>(kLines))
          << what << ": exit 0 but only " << stored << " lines kept\n"
          << output;
      EXPECT_EQ(SummaryStored(output), kLines) << what << ": summary\n" << output;
      return true;
    }
    EXPECT_NE(output.find("is in use by " + holder), std::string::npos)
        << what << ": exit " << code << " without naming " << holder << "\n"
        << output;
    EXPECT_EQ(stored, 0u) << what << ": refused, yet lines stored\n" << output;
    return false;
  }

  std::string dir_;
};

// Two imports at once and an import beside a starting or running collector, alternately, up
// to 100 trials or about 60 s; each trial on a fresh data directory, so that every day is new
// to both writers.
TEST_F(OneWriterTest, EveryImportThatSaysOkKeptAllItsLinesAndEveryRefusalNamesTheHolder) {
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int import_trials = 0, collector_trials = 0, both_ran = 0, refusals = 0;
  for (int trial = 0; trial < 100 && Clock::now() < deadline && !HasFailure(); ++trial) {
    const std::string data = absl::StrCat(dir_, "/data", trial);
    const std::string log = absl::StrCat(dir_, "/trial", trial);
    if (trial % 2 == 0) {
      ++import_trials;
      auto a = StartImport(data, "a", dir_ + "/a.log", log + "-a.out");
      auto b = StartImport(data, "b", dir_ + "/b.log", log + "-b.out");
      const bool a_wrote = CheckImport(a.get(), data, "a", Holder("maillens import", b->pid()),
                                       absl::StrCat("trial ", trial, " import a"));
      const bool b_wrote = CheckImport(b.get(), data, "b", Holder("maillens import", a->pid()),
                                       absl::StrCat("trial ", trial, " import b"));
      EXPECT_TRUE(a_wrote || b_wrote) << "trial " << trial << ": neither import ran";
      if (a_wrote && b_wrote) ++both_ran;  // one after the other
      refusals += !a_wrote + !b_wrote;
    } else {
      ++collector_trials;
      const int port = FreePort();
      fs::create_directories(log);
      Process collector("maillens-collector",
                        {"--config", ingest_test::WriteCollectorConfig(log, port, data)},
                        log + "-collector.out");
      auto a = StartImport(data, "a", dir_ + "/a.log", log + "-a.out");
      const bool a_wrote =
          CheckImport(a.get(), data, "a", Holder("maillens-collector", collector.pid()),
                      absl::StrCat("trial ", trial, " import beside collector"));
      if (a_wrote && collector.Exited()) {
        // The collector started while the import held the directory: refused, naming it.
        EXPECT_NE(collector.Wait(), 0);
        EXPECT_NE(collector.Output().find("is in use by " + Holder("maillens import", a->pid())),
                  std::string::npos)
            << "trial " << trial << ": collector\n"
            << collector.Output();
        ++refusals;
        continue;
      }
      refusals += !a_wrote;
      // The collector runs (or is about to): once it holds the directory, an import is
      // refused, whatever the moment.
      const std::string holder = Holder("maillens-collector", collector.pid());
      const auto lock_deadline = Clock::now() + std::chrono::seconds(10);
      while (ReadText(data + "/lock").find(holder) == std::string::npos &&
             Clock::now() < lock_deadline && !collector.Exited()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      ASSERT_NE(ReadText(data + "/lock").find(holder), std::string::npos)
          << "trial " << trial << ": the collector never took the lock\n"
          << collector.Output();
      auto b = StartImport(data, "b", dir_ + "/b.log", log + "-b.out");
      EXPECT_FALSE(CheckImport(b.get(), data, "b", holder,
                               absl::StrCat("trial ", trial, " import with collector running")));
      ++refusals;
      EXPECT_EQ(collector.Stop(), 0) << collector.Output();
      // Gone, and its lock with it.
      EXPECT_EQ(ReadText(data + "/lock"), "");
    }
  }
  std::printf(
      "%d trials of two imports (%d ran one after the other), %d beside a collector, "
      "%d writers refused\n",
      import_trials, both_ran, collector_trials, refusals);
  EXPECT_GE(import_trials, 5);
  EXPECT_GE(collector_trials, 5);
  EXPECT_GT(refusals, 0);
}

}  // namespace
}  // namespace maillens
