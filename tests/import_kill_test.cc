// `maillens import` killed with SIGKILL at several points, then run to the end: every line
// of the file is stored exactly once, and importing it again adds nothing.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "store/retention.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens {
namespace {

std::string Bin() {
  const char* dir = std::getenv("MAILLENS_BIN_DIR");
  return std::string(dir ? dir : "build/bin") + "/maillens";
}

pid_t StartImport(const std::string& data, const std::string& file) {
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execl(Bin().c_str(), "maillens", "--data", data.c_str(), "import", "--quiet", "--year", "2024",
          "--tz", "UTC", file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// Whether some partition in `data` has lines its full-text side file does not index yet.
bool IndexBehind(const std::string& data) {
  for (int64_t d : store::HotDays(data)) {
    const std::string path = data + "/days/" + std::to_string(d) + ".db";
    auto day = store::Database::Open(path, store::Database::Mode::kReadOnly);
    auto fts = store::Database::Open(store::FtsFilePath(path), store::Database::Mode::kReadOnly);
    if (!day.ok() || !fts.ok()) continue;
    auto last = (*day)->Prepare("SELECT coalesce(max(id), 0) FROM events");
    auto indexed = (*fts)->Prepare("SELECT indexed_id FROM fts_state");
    if (!last.ok() || !indexed.ok() || !last->Step().ok() || !indexed->Step().ok()) continue;
    if (indexed->ColumnInt(0) < last->ColumnInt(0)) return true;
  }
  return false;
}

// Kills `maillens import` of `messages` delivered messages (four lines each), one every
// `spacing_s` seconds from 2024-03-01, three times, then runs it to the end and once more, and
// checks that every line is stored, indexed and correlated exactly once.
void KillImportAndRerun(int messages, int spacing_s) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("maillens_kill_" + std::to_string(getpid()) + "_" + std::to_string(spacing_s));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string log = (dir / "mail.log").string();
  std::string data = (dir / "data").string();
  const int kMessages = messages;
  {
    std::ofstream out(log);
    const time_t start = 1709251200;  // 2024-03-01 00:00:00 UTC
    for (int i = 0; i < kMessages; ++i) {
      time_t t = start + static_cast<time_t>(i) * spacing_s;
      struct tm tm;
      gmtime_r(&t, &tm);
      char stamp[40], qid[16];
      std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
      std::snprintf(qid, sizeof(qid), "%010X", 0x10000000 + i);
      out << stamp << " mx postfix/pickup[11]: " << qid << ": uid=1000 from=<u" << i
          << "@example.org>\n"
          << stamp << " mx postfix/qmgr[12]: " << qid << ": from=<u" << i
          << "@example.org>, size=" << 1000 + i << ", nrcpt=1 (queue active)\n"
          << stamp << " mx postfix/local[13]: " << qid << ": to=<r" << i
          << "@example.org>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, "
             "status=sent (delivered to mailbox)\n"
          << stamp << " mx postfix/qmgr[12]: " << qid << ": removed\n";
    }
  }
  const uint64_t total_lines = 4ull * kMessages;
  // Kill at growing points; each run resumes where the store is.
  int killed = 0, index_behind = 0;
  for (int delay_ms : {150, 400, 900}) {
    pid_t pid = StartImport(data, log);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int st = Wait(pid);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ++killed;  // died mid-import
    if (IndexBehind(data)) ++index_behind;
  }
  EXPECT_GE(killed, 1) << "no import was interrupted; the file is too small for this machine";
  // Timing decides whether a kill falls between a partition's commit and its index's.
  std::printf("kills: %d mid-import, %d leaving the full-text index behind its lines\n", killed,
              index_behind);
  std::fflush(stdout);  // before the forks below copy the buffer
  int status = Wait(StartImport(data, log));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  status = Wait(StartImport(data, log));  // and once more: nothing new
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  store::StoreOptions options;
  options.dir = data;
  options.read_only = true;
  auto store = store::Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto count = (*store)->CountLines();
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, total_lines);
  // Every message is correlated once: kMessages traces, one instance each.
  auto traces = (*store)->TracesIn(INT64_MIN, INT64_MAX);
  ASSERT_TRUE(traces.ok()) << traces.status();
  EXPECT_EQ(traces->size(), static_cast<size_t>(kMessages));
  std::set<std::string> qids;
  for (const auto& t : *traces) {
    ASSERT_EQ(t.messages.size(), 1u);
    qids.insert(t.messages[0].queue_id);
  }
  EXPECT_EQ(qids.size(), static_cast<size_t>(kMessages));
  // Every line is in the full-text index once: the kills fell between a partition's commit
  // and its index's too, and the next import indexed what was missing.
  for (const char* word : {"removed", "pickup", "delivered"}) {
    store::SearchQuery q;
    q.words = {word};
    auto found = (*store)->Search(q);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->total, static_cast<uint64_t>(kMessages)) << word;
  }
  for (int i : {0, 12345, kMessages - 1}) {
    store::SearchQuery q;
    q.to = "r" + std::to_string(i) + "@example.org";
    auto found = (*store)->Search(q);
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->total, 1u) << q.to;
  }
  store->reset();
  fs::remove_all(dir);
}

// Two days of dense lines: each import batch is of one or two days, written through their
// files.
TEST(ImportKillTest, SigkillHalfwayThenRerunStoresEveryLineOnce) { KillImportAndRerun(40000, 4); }

// Ten months of sparse lines, 267 a day: each import batch makes about 19 new days, built in
// memory and written behind the import, so the kills also fall between a day's lines and
// its files, and between its files and its correlation.
TEST(ImportKillTest, SparseDaysSigkillHalfwayThenRerunStoresEveryLineOnce) {
  KillImportAndRerun(20000, 1296);
}

}  // namespace
}  // namespace maillens
