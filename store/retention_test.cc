// Retention over a simulated month: days leave the hot window for the archive and are
// deleted past the archive window or the disk budget; search, trace and report answer the
// same over archived days as they did while hot; `archive verify` names a changed or missing
// file; a late line makes its day hot again; a day whose full-text index lives in a side file
// is archived as one file with its index inside, and only once every line is indexed; and
// SIGKILL at random points of archiving and deletion leaves every day hot, archived whole, or
// (by policy) gone. A manifest removed, cut short, reordered, malformed or rewritten with its
// head is named by `archive verify`, makes queries over the archived days fail loudly, and
// never makes retention remove an archive file; `archive repair` rebuilds it; a cached copy
// edited is extracted again.
#include "store/retention.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "report/report.h"
#include "store/data_lock.h"
#include "store/query_proto.h"
#include "store/store.h"

namespace maillens::store {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDayUs = int64_t{86400} * 1000000;

std::string BinDir() {
  const char* dir = std::getenv("MAILLENS_BIN_DIR");
  return dir ? dir : "build/bin";
}

int64_t Micros(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return absl::ToUnixMicros(t);
}

// The simulated month ends at 2025-01-30T22:00Z; retention runs "then".
const int64_t kNow = Micros("2025-01-30T22:00:00Z");

int Shell(const std::string& command) { return std::system(command.c_str()); }

std::unique_ptr<Store> OpenReader(const std::string& dir) {
  StoreOptions options;
  options.dir = dir;
  options.read_only = true;
  auto store = Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

std::string RunOutput(const std::string& command, int* status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

class RetentionTest : public ::testing::Test {
 protected:
  // One simulated month, imported once; each test works on its own copy.
  static void SetUpTestSuite() {
    root_ = new std::string(fs::temp_directory_path() /
                            absl::StrCat("maillens_retention_test_", getpid()));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    const std::string sim = *root_ + "/sim";
    ASSERT_EQ(0, Shell(absl::StrCat(BinDir(), "/maillens-simulate --out ", sim,
                                    " --hours 720 --lines 60000 --seed 7 "
                                    "--stamp dmz=rfc3339,mx=rfc3339 > /dev/null")));
    ASSERT_EQ(0, Shell(absl::StrCat(BinDir(), "/maillens --data ", *root_, "/base import --quiet ",
                                    sim, "/dmz.log ", sim, "/mx.log")));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  std::string FreshCopy(const std::string& name) {
    std::string dir = *root_ + "/" + name;
    fs::remove_all(dir);
    fs::copy(*root_ + "/base", dir, fs::copy_options::recursive);
    return dir;
  }

  // Lines per day as stored (hot or archived), through the read path queries use.
  static std::map<int64_t, uint64_t> LinesPerDay(const std::string& dir) {
    std::map<int64_t, uint64_t> out;
    for (int64_t day : AllDays(dir)) {
      auto path = ReadableDayPath(dir, day, nullptr);
      EXPECT_TRUE(path.ok()) << day << ": " << path.status();
      if (!path.ok()) continue;
      auto db = Database::Open(*path, Database::Mode::kReadOnly);
      EXPECT_TRUE(db.ok()) << db.status();
      if (!db.ok()) continue;
      auto q = (*db)->Prepare("SELECT count(*) FROM events");
      EXPECT_TRUE(q.ok());
      auto step = q->Step();
      EXPECT_TRUE(step.ok());
      out[day] = static_cast<uint64_t>(q->ColumnInt(0));
    }
    return out;
  }

  static std::string* root_;
};

std::string* RetentionTest::root_ = nullptr;

std::string Lines(const SearchResult& r) {
  std::string out = absl::StrCat("total=", r.total, "\n");
  for (const StoredLine& l : r.lines)
    absl::StrAppend(&out, l.time_us, " ", l.host, " ", l.raw, "\n");
  return out;
}

// What the queries answer, as text to compare before and after archiving.
struct Answers {
  std::vector<std::string> searches;
  std::vector<std::string> traces;
  std::string report;
  std::vector<std::string> notices;
};

Answers Ask(const std::string& dir, const std::vector<std::string>& trace_ids) {
  Answers a;
  auto store = OpenReader(dir);
  struct Q {
    std::vector<std::string> words;
    std::string status;
    int64_t since, until;
  };
  std::vector<Q> queries = {
      {{}, "bounced", INT64_MIN, INT64_MAX},
      {{}, "", Micros("2025-01-05T00:00:00Z"), Micros("2025-01-06T00:00:00Z")},
      {{"connect"}, "", Micros("2025-01-10T06:00:00Z"), Micros("2025-01-12T18:00:00Z")},
      {{}, "deferred", Micros("2025-01-20T00:00:00Z"), Micros("2025-01-30T00:00:00Z")},
  };
  for (const Q& q : queries) {
    SearchQuery sq;
    sq.words = q.words;
    sq.status = q.status;
    sq.since_us = q.since;
    sq.until_us = q.until;
    sq.limit = 3000;
    auto r = store->Search(sq);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) continue;
    a.searches.push_back(Lines(*r));
    a.notices.insert(a.notices.end(), r->notices.begin(), r->notices.end());
  }
  for (const std::string& id : trace_ids) {
    auto t = store->GetTrace(id);
    EXPECT_TRUE(t.ok()) << id << ": " << t.status();
    if (!t.ok()) continue;
    auto lines = TraceLines(store.get(), *t);
    EXPECT_TRUE(lines.ok()) << lines.status();
    std::string text = absl::StrCat("trace ", t->id, " messages ", t->messages.size(), "\n");
    for (const auto& [msg, ls] : *lines) {
      for (const StoredLine& l : ls) absl::StrAppend(&text, msg, " ", l.host, " ", l.raw, "\n");
    }
    a.traces.push_back(text);
  }
  report::ReportOptions ro;
  ro.since_us = Micros("2025-01-01T00:00:00Z");
  ro.until_us = Micros("2025-01-30T00:00:00Z");
  auto report = report::BuildReport(dir, ro);
  EXPECT_TRUE(report.ok()) << report.status();
  if (report.ok()) {
    const report::ReportCounts& c = report->counts;
    a.report =
        absl::StrCat("received ", c.received, " delivered ", c.delivered, " deferred ", c.deferred,
                     " bounced ", c.bounced, " rejected ", c.rejected, " bytes ", c.bytes_received,
                     " buckets ", report->traffic.size(), " first ", report->data_first_us,
                     " last ", report->data_last_us, " bounce reasons ",
                     report->bounce_reasons.entries.size(), " stuck ", report->stuck_messages);
    a.notices.insert(a.notices.end(), report->notices.begin(), report->notices.end());
  }
  return a;
}

// Queue IDs of messages on archived days (and one crossing into the hot window).
std::vector<std::string> SomeQueueIds(const std::string& dir) {
  auto store = OpenReader(dir);
  std::vector<std::string> ids;
  for (const char* day : {"2025-01-03T12:00:00Z", "2025-01-15T12:00:00Z", "2025-01-27T23:30:00Z"}) {
    SearchQuery q;
    q.status = "sent";
    q.since_us = Micros(day);
    q.until_us = q.since_us + 3600 * int64_t{1000000};
    q.limit = 3;
    auto r = store->Search(q);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) continue;
    for (const StoredLine& l : r->lines) {
      // "... postfix/smtp[123]: 4F1A2B3C4D: to=<...>"
      size_t colon = l.raw.find("]: ");
      if (colon == std::string::npos) continue;
      size_t end = l.raw.find(':', colon + 3);
      if (end != std::string::npos) ids.push_back(l.raw.substr(colon + 3, end - colon - 3));
    }
  }
  return ids;
}

TEST_F(RetentionTest, MonthMovesToArchiveAndQueriesAnswerTheSame) {
  const std::string dir = FreshCopy("month");
  const std::map<int64_t, uint64_t> before_counts = LinesPerDay(dir);
  ASSERT_EQ(before_counts.size(), 31u);  // 20241231 .. 20250130
  std::vector<std::string> ids = SomeQueueIds(dir);
  ASSERT_GE(ids.size(), 6u);
  Answers before = Ask(dir, ids);
  // The comparison means something only if the answers do.
  ASSERT_EQ(before.searches.size(), 4u);
  for (const std::string& s : before.searches) EXPECT_GT(s.size(), 2000u) << s.substr(0, 200);
  ASSERT_EQ(before.traces.size(), ids.size());
  for (const std::string& t : before.traces)
    EXPECT_GE(std::count(t.begin(), t.end(), '\n'), 4) << t;
  EXPECT_FALSE(absl::StrContains(before.report, "received 0 ")) << before.report;
  for (const std::string& n : before.notices) EXPECT_FALSE(absl::StrContains(n, "archived")) << n;

  RetentionPolicy policy;
  policy.hot_days = 3;
  policy.archive_days = 0;
  auto stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->archived.size(), 28u);
  EXPECT_EQ(HotDays(dir), (std::vector<int64_t>{20250128, 20250129, 20250130}));
  EXPECT_EQ(ArchivedDays(dir).size(), 28u);
  EXPECT_TRUE(fs::exists(dir + "/archive/20250105.db.gz"));
  EXPECT_FALSE(fs::exists(dir + "/days/20250105.db"));
  EXPECT_EQ(LinesPerDay(dir), before_counts);

  Answers after = Ask(dir, ids);
  EXPECT_EQ(after.searches, before.searches);
  EXPECT_EQ(after.traces, before.traces);
  EXPECT_EQ(after.report, before.report);
  bool said = false;
  for (const std::string& n : after.notices) said |= absl::StrContains(n, "archived day");
  EXPECT_TRUE(said) << absl::StrJoin(after.notices, "; ");
  // Warm (cached) answers are the same too.
  Answers warm = Ask(dir, ids);
  EXPECT_EQ(warm.searches, before.searches);

  auto verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");
  EXPECT_EQ(verify->files_checked, 28u);

  // A second pass has nothing to do.
  stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->archived.empty());
  EXPECT_TRUE(stats->deleted.empty());

  // The archive window: 20 days in all, so days before 20250111 go.
  policy.archive_days = 20;
  stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deleted.size(), 11u);
  std::vector<int64_t> all = AllDays(dir);
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front(), 20250111);
  EXPECT_EQ(all.size(), 20u);
  EXPECT_FALSE(fs::exists(dir + "/archive/20250105.db.gz"));
  verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");

  // The disk budget wins: the cache goes first (the queries above filled it), then the oldest
  // days until it holds, with a warning.
  EXPECT_GT(DataDirUsage(dir).cache, 0u);
  const uint64_t used = DataBytes(dir) - DataDirUsage(dir).cache;
  policy.disk_budget_bytes = used * 7 / 10;
  stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(DataDirUsage(dir).cache, 0u);
  EXPECT_LE(DataBytes(dir), policy.disk_budget_bytes);
  EXPECT_FALSE(stats->deleted.empty());
  EXPECT_FALSE(stats->warnings.empty());
  std::vector<int64_t> left = AllDays(dir);
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.back(), 20250130);
  for (size_t i = 0; i < stats->deleted.size(); ++i) EXPECT_LT(stats->deleted[i], left.front());
  EXPECT_EQ(left.size() + stats->deleted.size(), 20u);  // contiguous: oldest deleted first
  // Near the budget: warned before it bites.
  policy.disk_budget_bytes = DataBytes(dir) + DataBytes(dir) / 20;
  stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->deleted.empty());
  ASSERT_EQ(stats->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(stats->warnings[0], "of the budget")) << stats->warnings[0];
}

TEST_F(RetentionTest, VerifyNamesTheDayOfAChangedOrMissingFile) {
  const std::string dir = FreshCopy("verify");
  RetentionPolicy policy;
  policy.hot_days = 3;
  ASSERT_TRUE(RunRetention(dir, policy, kNow).ok());
  const std::string cli = absl::StrCat(BinDir(), "/maillens --data ", dir, " archive verify");
  int status = -1;
  std::string out = RunOutput(cli, &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "ok, 28 files")) << out;

  // One byte changed.
  const std::string file = dir + "/archive/20250112.db.gz";
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 1000u);
  std::string changed = bytes;
  changed[changed.size() / 2] ^= 0x01;
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << changed; }
  auto verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  ASSERT_EQ(verify->problems.size(), 1u);
  EXPECT_TRUE(absl::StrContains(verify->problems[0], "day 20250112")) << verify->problems[0];
  EXPECT_TRUE(absl::StrContains(verify->problems[0], "changed")) << verify->problems[0];
  out = RunOutput(cli, &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "day 20250112")) << out;
  // A query reaching that day refuses to read it rather than answer from altered data.
  {
    std::unique_ptr<Store> store = OpenReader(dir);
    SearchQuery q;
    q.since_us = Micros("2025-01-12T00:00:00Z");
    q.until_us = Micros("2025-01-12T12:00:00Z");
    auto r = store->Search(q);
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(absl::StrContains(r.status().message(), "20250112")) << r.status();
  }
  { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
  verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");

  // A file removed.
  fs::remove(dir + "/archive/20250104.db.gz");
  verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  ASSERT_EQ(verify->problems.size(), 1u);
  EXPECT_TRUE(absl::StrContains(verify->problems[0], "day 20250104")) << verify->problems[0];
  EXPECT_TRUE(absl::StrContains(verify->problems[0], "missing")) << verify->problems[0];
  // status says so too (a cached copy would hide it from queries until the cache goes).
  out = RunOutput(absl::StrCat(BinDir(), "/maillens --data ", dir, " status"), &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "archive files missing for 1 day (20250104)")) << out;

  // A manifest entry edited (the line count of 20250120): the chain breaks there.
  fs::remove(dir + "/archive/MANIFEST.bak");
  std::string manifest;
  {
    std::ifstream in(dir + "/archive/MANIFEST", std::ios::binary);
    manifest.assign(std::istreambuf_iterator<char>(in), {});
  }
  size_t at = manifest.find("\tarchive\t20250120\t");
  ASSERT_NE(at, std::string::npos);
  size_t tab = at;
  for (int i = 0; i < 7; ++i) tab = manifest.find('\t', tab + 1);  // to the lines field
  manifest[tab + 1] = manifest[tab + 1] == '9' ? '8' : '9';
  { std::ofstream(dir + "/archive/MANIFEST", std::ios::binary | std::ios::trunc) << manifest; }
  verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  bool named = false;
  for (const std::string& p : verify->problems) named |= absl::StrContains(p, "day 20250120");
  EXPECT_TRUE(named) << absl::StrJoin(verify->problems, "; ");
}

TEST_F(RetentionTest, ExportGivesBackTheOriginalLinesPerHost) {
  const std::string dir = FreshCopy("export");
  RetentionPolicy policy;
  policy.hot_days = 3;
  ASSERT_TRUE(RunRetention(dir, policy, kNow).ok());
  const std::string out = *root_ + "/export_out";
  fs::remove_all(out);
  int status = -1;
  std::string msg = RunOutput(absl::StrCat(BinDir(), "/maillens --data ", dir,
                                           " archive export 2025-01-07 --output ", out, " 2>&1"),
                              &status);
  ASSERT_EQ(status, 0) << msg;
  for (const char* host : {"dmz", "mx"}) {
    // The original lines of that day, in file order (RFC 3339 stamps in UTC start with it).
    std::string expected;
    std::ifstream in(absl::StrCat(*root_, "/sim/", host, ".log"));
    std::string line;
    while (std::getline(in, line)) {
      if (absl::StartsWith(line, "2025-01-07T")) absl::StrAppend(&expected, line, "\n");
    }
    ASSERT_FALSE(expected.empty());
    std::ifstream got_in(absl::StrCat(out, "/", host, ".log"), std::ios::binary);
    std::string got((std::istreambuf_iterator<char>(got_in)), {});
    EXPECT_EQ(got, expected) << host;
  }
  // --host to stdout.
  std::string mx = RunOutput(
      absl::StrCat(BinDir(), "/maillens --data ", dir, " archive export 20250107 --host MX"),
      &status);
  EXPECT_EQ(status, 0);
  std::ifstream mx_in(out + "/mx.log", std::ios::binary);
  EXPECT_EQ(mx, std::string((std::istreambuf_iterator<char>(mx_in)), {}));
  std::string list =
      RunOutput(absl::StrCat(BinDir(), "/maillens --data ", dir, " archive list"), &status);
  EXPECT_EQ(status, 0);
  EXPECT_TRUE(absl::StrContains(list, "20250107")) << list;
  EXPECT_TRUE(absl::StrContains(list, "28 days")) << list;
}

TEST_F(RetentionTest, LateLineMakesTheDayHotAndItIsArchivedAgain) {
  const std::string dir = FreshCopy("late");
  RetentionPolicy policy;
  policy.hot_days = 3;
  ASSERT_TRUE(RunRetention(dir, policy, kNow).ok());
  const std::map<int64_t, uint64_t> counts = LinesPerDay(dir);
  {
    StoreOptions options;
    options.dir = dir;
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    LineRecord line;
    line.host = "dmz";
    line.file_path = "/var/log/late.log";
    line.fingerprint = 0x1a7e;
    line.offset = 0;
    line.time_us = Micros("2025-01-09T10:00:00Z");
    line.raw = "2025-01-09T10:00:00.000000+00:00 dmz postfix/anvil[77]: statistics: late line";
    auto stats = (*store)->Append({line});
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->stored, 1u);
  }
  EXPECT_TRUE(fs::exists(dir + "/days/20250109.db"));
  auto now = LinesPerDay(dir);
  EXPECT_EQ(now[20250109], counts.at(20250109) + 1);
  {
    std::unique_ptr<Store> store = OpenReader(dir);
    SearchQuery q;
    q.words = {"late", "line"};
    auto r = store->Search(q);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->total, 1u);
  }
  auto stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->archived, std::vector<int64_t>{20250109});
  EXPECT_FALSE(fs::exists(dir + "/days/20250109.db"));
  EXPECT_FALSE(fs::exists(dir + "/archive/20250109.db.gz"));  // superseded
  EXPECT_TRUE(fs::exists(dir + "/archive/20250109.2.db.gz"));
  EXPECT_EQ(LinesPerDay(dir)[20250109], counts.at(20250109) + 1);
  auto verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");
}

// The collector's writer keeps a connection to each day it wrote; retention archiving that day
// beneath it must not make the writer's next line for the day vanish into the removed file.
TEST_F(RetentionTest, WriterConnectionSurvivesItsDayBeingArchived) {
  const std::string dir = FreshCopy("writer");
  StoreOptions options;
  options.dir = dir;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto line = [](uint64_t offset, const char* text) {
    LineRecord l;
    l.host = "mx";
    l.file_path = "/var/log/writer.log";
    l.fingerprint = 0x3171;
    l.offset = offset;
    l.time_us = Micros("2025-01-08T12:00:00Z") + static_cast<int64_t>(offset);
    l.raw = absl::StrCat("2025-01-08T12:00:00.000000+00:00 mx postfix/anvil[9]: ", text);
    return l;
  };
  ASSERT_TRUE((*store)->Append({line(0, "writer-first")}).ok());
  RetentionPolicy policy;
  policy.hot_days = 3;
  ASSERT_TRUE(RunRetention(dir, policy, kNow).ok());
  ASSERT_FALSE(fs::exists(dir + "/days/20250108.db"));
  auto stats = (*store)->Append({line(100, "writer-second")});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->stored, 1u);
  std::unique_ptr<Store> reader = OpenReader(dir);
  for (const char* word : {"writer-first", "writer-second"}) {
    SearchQuery q;
    q.words = {word};
    auto r = reader->Search(q);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->total, 1u) << word;
  }
}

// The collector's background runner: a pass at start, stopped promptly.
TEST_F(RetentionTest, RunnerArchivesAtStart) {
  const std::string dir = FreshCopy("runner");
  RetentionPolicy policy;
  policy.hot_days = 3;      // against the real clock every simulated day is old
  policy.archive_days = 0;  // kept forever (else the real clock would delete them all)
  RetentionRunner runner(dir, policy, absl::Hours(1), RetentionLog());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (runner.passes() == 0 && std::chrono::steady_clock::now() < deadline) usleep(20000);
  runner.Stop();
  ASSERT_GE(runner.passes(), 1u);
  EXPECT_TRUE(HotDays(dir).empty());
  EXPECT_EQ(ArchivedDays(dir).size(), 31u);
}

// --- Days whose full-text index lives in a side file (schema.h, kFtsFileFeature) -----------

// Lines of a day before the simulated month, so the store creates its partition now: with its
// index in days/YYYYMMDD.fts.db. Three are to quokka.keeper@zoo.example, two say "wombatgate".
std::vector<LineRecord> ZooLines(const std::string& date, uint64_t fingerprint) {
  const std::vector<std::string> messages = {
      "postfix/smtp[42]: 3AB1C2D3E4: to=<quokka.keeper@zoo.example>, "
      "relay=mx.zoo.example[192.0.2.7]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, "
      "status=sent (250 2.0.0 Ok: queued as 4A1)",
      "postfix/anvil[77]: statistics: wombatgate max connection rate 1/60s",
      "postfix/smtp[42]: 3AB1C2D3E5: to=<quokka.keeper@zoo.example>, "
      "relay=mx.zoo.example[192.0.2.7]:25, delay=0.9, delays=0.1/0/0.4/0.4, dsn=2.0.0, "
      "status=sent (250 2.0.0 Ok: queued as 4A2)",
      "postfix/smtp[43]: 3AB1C2D3E6: to=<numbat@zoo.example>, "
      "relay=mx.zoo.example[192.0.2.7]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, "
      "status=sent (250 2.0.0 Ok: queued as 4A3)",
      "postfix/smtp[44]: 3AB1C2D3E7: to=<quokka.keeper@zoo.example>, "
      "relay=mx.zoo.example[192.0.2.7]:25, delay=300, delays=0.1/0/300/0, dsn=4.4.1, "
      "status=deferred (connect to mx.zoo.example[192.0.2.7]:25: Connection timed out)",
      "postfix/anvil[77]: statistics: wombatgate max cache size 2",
  };
  std::vector<LineRecord> lines;
  for (size_t i = 0; i < messages.size(); ++i) {
    LineRecord l;
    l.host = "mx";
    l.file_path = "/var/log/zoo.log";
    l.fingerprint = fingerprint;
    l.offset = i * 1000;
    const std::string stamp = absl::StrCat(date, "T10:00:0", i, ".000000+00:00");
    l.time_us = Micros(stamp.c_str());
    l.raw = absl::StrCat(stamp, " mx ", messages[i]);
    lines.push_back(std::move(l));
  }
  return lines;
}

void AppendLines(const std::string& dir, const std::vector<LineRecord>& lines) {
  StoreOptions options;
  options.dir = dir;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto stats = (*store)->Append(lines);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->stored, lines.size());
}  // closing the store finishes its indexing

// total of a search for `word` (if not empty) and to:`to` (if not empty), with the lines.
std::string Found(const std::string& dir, const std::string& word, const std::string& to) {
  std::unique_ptr<Store> store = OpenReader(dir);
  if (store == nullptr) return "no store";
  SearchQuery q;
  if (!word.empty()) q.words = {word};
  q.to = to;
  auto r = store->Search(q);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? Lines(*r) : r.status().ToString();
}

// One integer from a query on the database at `path`.
int64_t QueryInt(const std::string& path, const std::string& sql) {
  auto db = Database::Open(path, Database::Mode::kReadOnly);
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return -1;
  auto q = (*db)->Prepare(sql);
  EXPECT_TRUE(q.ok()) << q.status();
  if (!q.ok()) return -1;
  auto step = q->Step();
  EXPECT_TRUE(step.ok()) << step.status();
  return step.ok() && *step == Statement::StepResult::kRow ? q->ColumnInt(0) : -1;
}

void ExecOn(const std::string& path, const std::string& sql) {
  auto db = Database::Open(path, Database::Mode::kReadWrite);
  ASSERT_TRUE(db.ok()) << db.status();
  absl::Status s = (*db)->Exec(sql);
  ASSERT_TRUE(s.ok()) << s;
}

bool AnyOf(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (fs::exists(path + suffix)) return true;
  }
  return false;
}

constexpr char kQuokka[] = "quokka.keeper@zoo.example";

TEST_F(RetentionTest, SideFileIndexIsArchivedInsideTheDayAndFoundAgain) {
  const std::string dir = FreshCopy("fts_file");
  const int64_t day = 20241220;
  const std::string hot = dir + "/days/20241220.db";
  const std::string side = dir + "/days/20241220.fts.db";
  AppendLines(dir, ZooLines("2024-12-20", 0x20241220));
  ASSERT_TRUE(fs::exists(hot));
  ASSERT_TRUE(fs::exists(side)) << "the store did not give the new day an index file";
  EXPECT_EQ(QueryInt(hot, "SELECT count(*) FROM features WHERE name = 'fts_file'"), 1);
  EXPECT_EQ(QueryInt(hot, "SELECT count(*) FROM sqlite_master WHERE name = 'events_fts'"), 0);
  EXPECT_EQ(HotDays(dir).front(), day);  // the side file is not a day of its own

  const int64_t queues_hot = QueryInt(side, "SELECT count(*) FROM address_queues");
  EXPECT_GT(queues_hot, 0) << "the side file has no address queues";
  const std::string word_hot = Found(dir, "wombatgate", "");
  const std::string to_hot = Found(dir, "", kQuokka);
  const std::string both_hot = Found(dir, "connection", kQuokka);
  EXPECT_TRUE(absl::StartsWith(word_hot, "total=2\n")) << word_hot;
  EXPECT_TRUE(absl::StartsWith(to_hot, "total=3\n")) << to_hot;
  EXPECT_TRUE(absl::StartsWith(both_hot, "total=1\n")) << both_hot;

  ASSERT_TRUE(ArchiveDay(dir, day).ok());
  EXPECT_FALSE(AnyOf(hot));
  EXPECT_FALSE(AnyOf(side));
  EXPECT_TRUE(fs::is_empty(dir + "/archive/tmp"));
  EXPECT_EQ(ArchivedDays(dir).front(), day);
  // One file, laid out as a day that keeps its index inside.
  bool archived = false;
  auto cached = ReadableDayPath(dir, day, &archived);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_TRUE(archived);
  EXPECT_EQ(QueryInt(*cached, "SELECT count(*) FROM features WHERE name = 'fts_file'"), 0);
  EXPECT_EQ(QueryInt(*cached, "SELECT count(*) FROM sqlite_master WHERE name = 'events_fts'"), 1);
  EXPECT_EQ(
      QueryInt(*cached, "SELECT count(*) FROM events_fts WHERE events_fts MATCH 'wombatgate'"), 2);
  // The addresses' queues go with the index, and the day still says it has them all.
  EXPECT_EQ(QueryInt(*cached, "SELECT count(*) FROM address_queues"), queues_hot);
  EXPECT_EQ(QueryInt(*cached, "SELECT count(*) FROM features WHERE name = 'address_queues'"), 1);
  {
    // FTS5 checks its own structure (on a copy: the check writes).
    const std::string copy = *root_ + "/fts_file_check.db";
    fs::copy_file(*cached, copy, fs::copy_options::overwrite_existing);
    ExecOn(copy, "INSERT INTO events_fts (events_fts) VALUES ('integrity-check')");
    fs::remove(copy);
  }
  EXPECT_EQ(Found(dir, "wombatgate", ""), word_hot);
  EXPECT_EQ(Found(dir, "", kQuokka), to_hot);
  EXPECT_EQ(Found(dir, "connection", kQuokka), both_hot);

  // A late line makes the day hot again, as one file, and is found with the old ones.
  LineRecord late = ZooLines("2024-12-20", 0x1a7e)[0];
  late.offset = 0;
  late.time_us += 3600 * int64_t{1000000};
  late.raw =
      "2024-12-20T11:00:00.000000+00:00 mx postfix/smtp[45]: 3AB1C2D3E8: "
      "to=<quokka.keeper@zoo.example>, relay=mx.zoo.example[192.0.2.7]:25, delay=0.4, "
      "delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: wombatgate late)";
  AppendLines(dir, {late});
  ASSERT_TRUE(fs::exists(hot));
  EXPECT_FALSE(fs::exists(side));
  EXPECT_EQ(QueryInt(hot, "SELECT count(*) FROM features WHERE name = 'fts_file'"), 0);
  const std::string word_late = Found(dir, "wombatgate", "");
  const std::string to_late = Found(dir, "", kQuokka);
  EXPECT_TRUE(absl::StartsWith(word_late, "total=3\n")) << word_late;
  EXPECT_TRUE(absl::StartsWith(to_late, "total=4\n")) << to_late;
  EXPECT_TRUE(absl::StrContains(word_late, "wombatgate late")) << word_late;
  EXPECT_TRUE(absl::StrContains(word_late, "max cache size")) << word_late;
  EXPECT_TRUE(absl::StrContains(to_late, "3AB1C2D3E7")) << to_late;

  // Archived again (generation 2) from the restored, one-file layout.
  ASSERT_TRUE(ArchiveDay(dir, day).ok());
  EXPECT_FALSE(AnyOf(hot));
  EXPECT_TRUE(fs::exists(dir + "/archive/20241220.2.db.gz"));
  EXPECT_EQ(Found(dir, "wombatgate", ""), word_late);
  EXPECT_EQ(Found(dir, "", kQuokka), to_late);
  auto verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");
}

TEST_F(RetentionTest, ArchiveWaitsUntilTheSideFileIndexesEveryLine) {
  const std::string dir = FreshCopy("fts_behind");
  const int64_t day = 20241221;
  const std::string hot = dir + "/days/20241221.db";
  const std::string side = dir + "/days/20241221.fts.db";
  const std::vector<LineRecord> lines = ZooLines("2024-12-21", 0x20241221);
  AppendLines(dir, lines);
  ASSERT_TRUE(fs::exists(side));
  const int64_t last_id = QueryInt(hot, "SELECT max(id) FROM events");
  ASSERT_EQ(last_id, static_cast<int64_t>(lines.size()));
  ASSERT_EQ(QueryInt(side, "SELECT indexed_id FROM fts_state"), last_id);

  auto refused = [&](const char* what) {
    absl::Status s = ArchiveDay(dir, day);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << what << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "later pass")) << s;
    EXPECT_TRUE(fs::exists(hot)) << what;
    EXPECT_TRUE(fs::exists(side)) << what;
    EXPECT_TRUE(ArchivedDays(dir).empty()) << what;
    EXPECT_FALSE(fs::exists(dir + "/archive/20241221.db.gz")) << what;
    EXPECT_TRUE(fs::is_empty(dir + "/archive/tmp")) << what;
  };
  // The last line not indexed yet.
  ExecOn(side, absl::StrCat("UPDATE fts_state SET indexed_id = ", last_id - 1));
  refused("one line behind");
  // Nothing indexed yet: the index empty too, as a side file the store has just created.
  ExecOn(side, "INSERT INTO events_fts (events_fts) VALUES ('delete-all')");
  ExecOn(side, "UPDATE fts_state SET indexed_id = 0");
  refused("nothing indexed");

  // The store indexes what is behind when it opens the day again (here for one more line).
  LineRecord more = lines[1];
  more.offset = 99000;
  more.raw = "2024-12-21T12:00:00.000000+00:00 mx postfix/anvil[77]: statistics: wombatgate again";
  AppendLines(dir, {more});
  ASSERT_EQ(QueryInt(side, "SELECT indexed_id FROM fts_state"), last_id + 1);
  // Archived then, like any old day.
  ASSERT_TRUE(ArchiveDay(dir, day).ok());
  EXPECT_FALSE(AnyOf(hot));
  EXPECT_FALSE(AnyOf(side));
  const std::string word = Found(dir, "wombatgate", "");
  EXPECT_TRUE(absl::StartsWith(word, "total=3\n")) << word;
  const std::string to = Found(dir, "", kQuokka);
  EXPECT_TRUE(absl::StartsWith(to, "total=3\n")) << to;
}

// Every other way a hot day's files go or come back takes the side file along.
TEST_F(RetentionTest, DeleteRecoverAndRestoreTakeTheSideFileAlong) {
  const std::string dir = FreshCopy("fts_gone");
  // Deleted by policy: both files go.
  AppendLines(dir, ZooLines("2024-12-22", 0x20241222));
  ASSERT_TRUE(fs::exists(dir + "/days/20241222.fts.db"));
  ASSERT_TRUE(DeleteDay(dir, 20241222).ok());
  EXPECT_FALSE(AnyOf(dir + "/days/20241222.db"));
  EXPECT_FALSE(AnyOf(dir + "/days/20241222.fts.db"));

  // A crash between removing an archived day's partition and its side file: recovery removes
  // what is left. (The state as ArchiveDay leaves it before its last step.)
  AppendLines(dir, ZooLines("2024-12-23", 0x20241223));
  const std::string side = dir + "/days/20241223.fts.db";
  const std::string kept = *root_ + "/fts_gone_side.db";
  fs::copy_file(side, kept, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(ArchiveDay(dir, 20241223).ok());
  ASSERT_FALSE(fs::exists(side));
  fs::copy_file(kept, side);
  auto live = LiveArchive(dir);
  ASSERT_TRUE(live.ok());
  ASSERT_FALSE(live->empty());
  const ArchiveEntry& entry = live->front();
  ASSERT_EQ(entry.day, 20241223);
  {
    std::ofstream(dir + "/archive/20241223.unlink-hot")
        << "archive " << entry.lines << " " << entry.last_id << "\n";
  }
  ASSERT_TRUE(RecoverArchive(dir).ok());
  EXPECT_FALSE(fs::exists(side));
  EXPECT_FALSE(fs::exists(dir + "/archive/20241223.unlink-hot"));

  // A stale side file beside an archived day does not survive its restoring: the day comes
  // back as one file and answers from its own index.
  fs::copy_file(kept, side, fs::copy_options::overwrite_existing);
  ExecOn(side, "INSERT INTO events_fts (events_fts) VALUES ('delete-all')");
  ASSERT_TRUE(RestoreDay(dir, 20241223).ok());
  EXPECT_TRUE(fs::exists(dir + "/days/20241223.db"));
  EXPECT_FALSE(fs::exists(side));
  const std::string word = Found(dir, "wombatgate", "");
  EXPECT_TRUE(absl::StartsWith(word, "total=2\n")) << word;
  fs::remove(kept);
}

// --- The archive's trust (retention.h, "Trust") ---------------------------------------------

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// The manifest's entry lines (comments left out).
std::vector<std::string> EntryLines(const std::string& dir) {
  std::vector<std::string> lines;
  std::istringstream in(ReadAll(dir + "/archive/MANIFEST"));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  }
  return lines;
}

void WriteEntryLines(const std::string& dir, const std::vector<std::string>& lines) {
  WriteAll(dir + "/archive/MANIFEST", "# a manifest edited by hand\n" + absl::StrJoin(lines, "\n") +
                                          (lines.empty() ? "" : "\n"));
}

// The day field of an entry line.
std::string DayOfLine(const std::string& line) {
  std::vector<std::string> f = absl::StrSplit(line, '\t');
  return f.size() > 2 ? f[2] : "";
}

// Archive files in archive/ with their sizes.
std::map<std::string, uintmax_t> ArchiveFilesIn(const std::string& dir) {
  std::map<std::string, uintmax_t> files;
  for (const auto& f : fs::directory_iterator(dir + "/archive")) {
    std::string name = f.path().filename().string();
    if (absl::EndsWith(name, ".db.gz")) files[name] = fs::file_size(f.path());
  }
  return files;
}

// `maillens --data DIR ARGS` with stdin from /dev/null; stdout and stderr together.
std::string Cli(const std::string& dir, const std::string& args, int* status) {
  return RunOutput(absl::StrCat(BinDir(), "/maillens --data ", dir, " ", args, " < /dev/null 2>&1"),
                   status);
}

// Policies a retention pass would delete by: keep everything (recovery only) and keep 20
// days (deletes the 11 oldest archived days).
void RetentionDeletesNoArchiveFile(const std::string& dir, const std::string& what) {
  const std::map<std::string, uintmax_t> before = ArchiveFilesIn(dir);
  ASSERT_FALSE(before.empty()) << what;
  for (int archive_days : {0, 20}) {
    RetentionPolicy policy;
    policy.hot_days = 3;
    policy.archive_days = archive_days;
    auto stats = RunRetention(dir, policy, kNow);
    EXPECT_FALSE(stats.ok()) << what << ": a pass over an untrusted manifest went ahead";
    EXPECT_EQ(ArchiveFilesIn(dir), before)
        << what << ": the pass (archive_days " << archive_days << ") removed archive files";
  }
  EXPECT_FALSE(RecoverArchive(dir).ok()) << what;
  EXPECT_EQ(ArchiveFilesIn(dir), before) << what;
}

class ArchiveTrustTest : public RetentionTest {
 protected:
  // A copy of the month with 28 days archived (hot_days 3), archived once for all tests.
  std::string ArchivedCopy(const std::string& name) {
    const std::string archived = *root_ + "/archived_base";
    if (!fs::exists(archived)) {
      const std::string tmp = FreshCopy("archived_base.tmp");
      RetentionPolicy policy;
      policy.hot_days = 3;
      auto stats = RunRetention(tmp, policy, kNow);
      EXPECT_TRUE(stats.ok()) << stats.status();
      fs::rename(tmp, archived);
    }
    const std::string dir = *root_ + "/" + name;
    fs::remove_all(dir);
    fs::copy(archived, dir, fs::copy_options::recursive);
    return dir;
  }
};

TEST_F(ArchiveTrustTest, MissingManifestIsReportedAndNothingIsDeleted) {
  const std::string dir = ArchivedCopy("no_manifest");
  int status = -1;
  std::string out = Cli(dir, "search status:sent since:2025-01-05 until:2025-01-06", &status);
  ASSERT_EQ(status, 0) << out;
  const std::string answer_before = out;
  // A message of that day, to trace: "DATE TIME HOST QUEUE-ID ..." on its row.
  std::vector<std::string> row;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "2025-01-05 ")) {
      row = absl::StrSplit(line, ' ', absl::SkipEmpty());
      break;
    }
  }
  ASSERT_GE(row.size(), 4u) << out;
  const std::string trace = absl::StrCat("trace ", row[3], " --raw");
  out = Cli(dir, trace, &status);
  ASSERT_EQ(status, 0) << out;
  ASSERT_TRUE(fs::remove(dir + "/archive/MANIFEST"));
  out = Cli(dir, trace, &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "archived days not read: 1 day (20250105)")) << out;

  out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "MANIFEST is missing")) << out;
  EXPECT_TRUE(absl::StrContains(out, "day 20250105")) << out;
  EXPECT_FALSE(absl::StrContains(out, "archive verify: ok")) << out;
  // hosts counts the hot days only then: it says so, and exits 3.
  out = Cli(dir, "hosts", &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "archived days not read")) << out;
  // status says so first and exits 3 (the collector only logs it).
  out = Cli(dir, "status", &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "WARNING: the archive cannot be trusted")) << out;
  EXPECT_TRUE(absl::StrContains(out, "MANIFEST is missing")) << out;

  // A search over archived days says which it left out and fails; one over hot days only
  // is not disturbed.
  out = Cli(dir, "search status:sent since:2025-01-05 until:2025-01-06", &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "archived days not read: 1 day (20250105)")) << out;
  out = Cli(dir, "search status:sent since:2025-01-29", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_FALSE(absl::StrContains(out, "not read")) << out;
  out = Cli(dir, "report --since 2025-01-02 --until 2025-01-30", &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "20250102..20250127")) << out;
  EXPECT_TRUE(absl::StrContains(out, "site: 2 hosts")) << out.substr(0, 500);  // what it read
  // A report of archived days only: the window is the one asked for, not 1970.
  out = Cli(dir, "report --since 2025-01-03 --until 2025-01-05", &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "2025-01-03")) << out.substr(0, 500);
  EXPECT_FALSE(absl::StrContains(out, "1970-01-01")) << out.substr(0, 500);

  RetentionDeletesNoArchiveFile(dir, "manifest missing");

  // Repaired after confirmation: refused without a terminal, then with --yes.
  out = Cli(dir, "archive repair", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "--yes")) << out;
  EXPECT_FALSE(fs::exists(dir + "/archive/MANIFEST"));
  out = Cli(dir, "archive repair --yes", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "rebuilt with 29 entries")) << out;
  // What the missing manifest recorded beyond its files is said to be lost (a deletion
  // among it would no longer be named).
  EXPECT_TRUE(absl::StrContains(out, "28 entries the archive's head recorded cannot be read"))
      << out;
  std::vector<std::string> lines = EntryLines(dir);
  ASSERT_EQ(lines.size(), 29u);
  EXPECT_TRUE(absl::StrContains(lines.back(), "\trepair\t")) << lines.back();
  out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 0) << out;
  out = Cli(dir, "status", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_FALSE(absl::StrContains(out, "WARNING")) << out;
  out = Cli(dir, "search status:sent since:2025-01-05 until:2025-01-06", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, answer_before);
  // Retention works again, by its rules.
  RetentionPolicy policy;
  policy.hot_days = 3;
  policy.archive_days = 20;
  auto stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->deleted.size(), 11u);
  out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 0) << out;
}

TEST_F(ArchiveTrustTest, RemovedLineIsNamedByItsDayAndItsFileIsKept) {
  for (const char* which : {"first", "middle", "last"}) {
    SCOPED_TRACE(which);
    const std::string dir = ArchivedCopy(absl::StrCat("removed_", which));
    std::vector<std::string> lines = EntryLines(dir);
    ASSERT_EQ(lines.size(), 28u);
    const size_t at = which == std::string("first") ? 0 : which == std::string("middle") ? 13 : 27;
    const std::string day = DayOfLine(lines[at]);
    const std::string next_day = at + 1 < lines.size() ? DayOfLine(lines[at + 1]) : "";
    lines.erase(lines.begin() + at);
    WriteEntryLines(dir, lines);

    int status = -1;
    std::string out = Cli(dir, "archive verify", &status);
    EXPECT_EQ(status, 1) << out;
    EXPECT_TRUE(absl::StrContains(out, "FAILED day " + day)) << out;
    if (!next_day.empty()) {
      EXPECT_FALSE(absl::StrContains(out, "day " + next_day)) << "names the wrong day:\n" << out;
    }
    out = Cli(dir,
              absl::StrCat("search status:sent since:", day.substr(0, 4), "-", day.substr(4, 2),
                           "-", day.substr(6, 2)),
              &status);
    EXPECT_EQ(status, 3) << out;
    EXPECT_TRUE(absl::StrContains(out, "archived days not read")) << out;
    EXPECT_TRUE(absl::StrContains(out, day)) << out;
    RetentionDeletesNoArchiveFile(dir, absl::StrCat(which, " line removed"));
  }
}

TEST_F(ArchiveTrustTest, MalformedOrReorderedLinesAreNamedAndQueriesFailLoudly) {
  {
    const std::string dir = ArchivedCopy("malformed");
    std::vector<std::string> lines = EntryLines(dir);
    const std::string day = DayOfLine(lines[9]);
    lines[9] = absl::StrCat("10\tarchive\t", day, "\tgarbage");
    WriteEntryLines(dir, lines);
    int status = -1;
    std::string out = Cli(dir, "archive verify", &status);
    EXPECT_EQ(status, 1) << out;
    EXPECT_TRUE(absl::StrContains(out, absl::StrCat("day ", day, ": MANIFEST line 11"))) << out;
    out = Cli(dir, "search status:sent since:2025-01-05 until:2025-01-06", &status);
    EXPECT_EQ(status, 3) << out;
    EXPECT_TRUE(absl::StrContains(out, "20250105")) << out;
    out = Cli(dir, "report --since 2025-01-05 --until 2025-01-06", &status);
    EXPECT_EQ(status, 3) << out;
    EXPECT_TRUE(absl::StrContains(out, "20250105")) << out;
    RetentionDeletesNoArchiveFile(dir, "malformed line");
  }
  {
    const std::string dir = ArchivedCopy("reordered");
    std::vector<std::string> lines = EntryLines(dir);
    std::swap(lines[5], lines[6]);
    WriteEntryLines(dir, lines);
    int status = -1;
    std::string out = Cli(dir, "archive verify", &status);
    EXPECT_EQ(status, 1) << out;
    EXPECT_TRUE(absl::StrContains(out, absl::StrCat("day ", DayOfLine(lines[6]),
                                                    ": manifest "
                                                    "entry 6 is out of order")))
        << out;
    RetentionDeletesNoArchiveFile(dir, "reordered lines");
  }
}

TEST_F(ArchiveTrustTest, ManifestAndHeadCutShortTogetherAreCaughtByTheCopyOutside) {
  const std::string dir = ArchivedCopy("head_and_manifest");
  std::vector<std::string> lines = EntryLines(dir);
  const std::string day = DayOfLine(lines.back());
  lines.pop_back();
  WriteEntryLines(dir, lines);
  // archive/HEAD rewritten to match: only the copy outside archive/ still knows.
  std::vector<std::string> f = absl::StrSplit(lines.back(), '\t');
  ASSERT_EQ(f.size(), 12u);
  WriteAll(dir + "/archive/HEAD",
           absl::StrCat(lines.size(), "\t", f[11], "\tarchive\t", f[2], "\n"));
  int status = -1;
  std::string out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "FAILED day " + day)) << out;
  EXPECT_TRUE(absl::StrContains(out, "archive.head records 28")) << out;
  RetentionDeletesNoArchiveFile(dir, "manifest and head cut short");
}

// The collector's writer beside a manifest that cannot be trusted: a new day's lines are
// stored; a line for an archived day is held back in the catalog (not started anew over its
// archive file), and the Append goes on: failing it stopped every later batch of every agent
// behind one late line. status says so; once the archive is repaired, the line is stored.
TEST_F(ArchiveTrustTest, WriterStoresNewDaysAndHoldsArchivedOnesWithoutAManifest) {
  const std::string dir = ArchivedCopy("writer_untrusted");
  ASSERT_TRUE(fs::remove(dir + "/archive/MANIFEST"));
  const std::map<std::string, uintmax_t> files = ArchiveFilesIn(dir);
  StoreOptions options;
  options.dir = dir;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto line = [](const char* day, const char* text) {
    LineRecord l;
    l.host = "mx";
    l.file_path = "/var/log/untrusted.log";
    l.fingerprint = 0x7105;
    l.offset = static_cast<uint64_t>(Micros(day) / 1000000);
    l.time_us = Micros(day);
    l.raw =
        absl::StrCat(std::string(day).substr(0, 19), ".000000+00:00 mx postfix/anvil[9]: ", text);
    return l;
  };
  auto stored = (*store)->Append({line("2025-01-31T08:00:00Z", "a-new-day")});
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->stored, 1u);
  EXPECT_TRUE(fs::exists(dir + "/days/20250131.db"));
  auto mixed = (*store)->Append(
      {line("2025-01-05T08:00:00Z", "a-late-line"), line("2025-01-31T09:00:00Z", "goes-on")});
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(mixed->stored, 1u);
  EXPECT_EQ(mixed->held, 1u);
  EXPECT_FALSE(fs::exists(dir + "/days/20250105.db"));
  EXPECT_EQ(ArchiveFilesIn(dir), files);
  // Held once, however often it comes again (an agent's resend, a second import).
  auto again = (*store)->Append({line("2025-01-05T08:00:00Z", "a-late-line")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->held, 1u);
  EXPECT_EQ(QueryInt(dir + "/catalog.db", "SELECT count(*) FROM held_lines"), 1);
  int status = 0;
  std::string out = Cli(dir, "status", &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_TRUE(absl::StrContains(out, "1 stored lines are held back")) << out;
  EXPECT_TRUE(absl::StrContains(out, "(20250105)")) << out;
  store->reset();

  // Repaired: the next Append (any lines) stores the held one, and it is found.
  out = Cli(dir, "archive repair --yes", &status);
  ASSERT_EQ(status, 0) << out;
  store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto later = (*store)->Append({line("2025-01-31T10:00:00Z", "later")});
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->held, 0u);
  ASSERT_TRUE((*store)->Flush().ok());
  store->reset();
  EXPECT_EQ(QueryInt(dir + "/catalog.db", "SELECT count(*) FROM held_lines"), 0);
  out = Cli(dir, "search --lines a-late-line", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "2025-01-05T08:00:00")) << out;
  out = Cli(dir, "status", &status);
  EXPECT_FALSE(absl::StrContains(out, "held back")) << out;
}

// An archive of a maillens before heads: trusted as found, its head recorded by recovery,
// and from then on a removed last line is told.
TEST_F(ArchiveTrustTest, ArchiveWithoutAHeadGetsOneAtRecovery) {
  const std::string dir = ArchivedCopy("no_head");
  ASSERT_TRUE(fs::remove(dir + "/archive/HEAD"));
  ASSERT_TRUE(fs::remove(dir + "/archive.head"));
  auto verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");
  ASSERT_EQ(verify->notes.size(), 1u);
  EXPECT_TRUE(absl::StrContains(verify->notes[0], "no head is recorded")) << verify->notes[0];
  ASSERT_TRUE(RecoverArchive(dir).ok());
  EXPECT_TRUE(fs::exists(dir + "/archive/HEAD"));
  EXPECT_TRUE(fs::exists(dir + "/archive.head"));
  verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->ok() && verify->notes.empty()) << absl::StrJoin(verify->notes, "; ");
  // One copy lost: still trusted, but said (a second loss would hide a removed last entry).
  for (const std::string lost : {"/archive/HEAD", "/archive.head"}) {
    const std::string kept = ReadAll(dir + lost);
    ASSERT_TRUE(fs::remove(dir + lost));
    verify = VerifyArchive(dir);
    ASSERT_TRUE(verify.ok());
    EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");
    ASSERT_EQ(verify->notes.size(), 1u) << lost;
    EXPECT_TRUE(absl::StrContains(verify->notes[0], lost + " is missing")) << verify->notes[0];
    WriteAll(dir + lost, kept);
  }
  std::vector<std::string> lines = EntryLines(dir);
  const std::string day = DayOfLine(lines.back());
  lines.pop_back();
  WriteEntryLines(dir, lines);
  verify = VerifyArchive(dir);
  ASSERT_TRUE(verify.ok());
  ASSERT_FALSE(verify->ok());
  EXPECT_TRUE(absl::StartsWith(verify->problems[0], "day " + day)) << verify->problems[0];
}

// Repair in a terminal asks first; it lists each day's newest file and sets aside what it
// cannot list (an older generation, a file that is not a day), deleting nothing.
TEST_F(ArchiveTrustTest, RepairAsksInATerminalAndSetsAsideWhatItCannotList) {
  const std::string dir = ArchivedCopy("repair_tty");
  std::vector<std::string> lines = EntryLines(dir);
  lines[3] += "\tjunk";
  WriteEntryLines(dir, lines);
  fs::copy_file(dir + "/archive/20250110.db.gz", dir + "/archive/20250110.2.db.gz");
  WriteAll(dir + "/archive/20241201.db.gz", "not an archived day");
  const std::string manifest = ReadAll(dir + "/archive/MANIFEST");
  // script(1) gives the repair a terminal; the answer comes through it.
  auto repair = [&](const char* answer, int* status) {
    return RunOutput(absl::StrCat("printf '", answer, "\\n' | script -qec '", BinDir(),
                                  "/maillens --data ", dir, " archive repair' /dev/null 2>&1"),
                     status);
  };
  int status = -1;
  std::string out = repair("n", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "Rebuild the manifest? [y/N]")) << out;
  EXPECT_TRUE(absl::StrContains(out, "nothing changed")) << out;
  EXPECT_EQ(ReadAll(dir + "/archive/MANIFEST"), manifest);
  out = repair("y", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "rebuilt with 29 entries")) << out;
  EXPECT_TRUE(fs::exists(dir + "/archive/orphans/20250110.db.gz"));
  EXPECT_TRUE(fs::exists(dir + "/archive/orphans/20241201.db.gz"));
  EXPECT_TRUE(fs::exists(dir + "/archive/20250110.2.db.gz"));
  bool kept = false;
  for (const auto& f : fs::directory_iterator(dir + "/archive")) {
    kept |= absl::StartsWith(f.path().filename().string(), "MANIFEST.damaged-") &&
            ReadAll(f.path()) == manifest;
  }
  EXPECT_TRUE(kept) << "the damaged manifest was not kept";
  out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 0) << out;
  out = Cli(dir, "search status:sent since:2025-01-10 until:2025-01-11", &status);
  EXPECT_EQ(status, 0) << out;
}

// A CLI run by another user than the data directory's owner (root, as docs/INSTALL.md has
// it) reads archived days through a private cache: DIR/cache stays the owner's.
TEST_F(ArchiveTrustTest, AnotherUsersReadsGoToAPrivateCache) {
  const std::string dir = ArchivedCopy("other_user");
  if (chown(dir.c_str(), 65534, 65534) != 0) GTEST_SKIP() << "cannot chown (not root)";
  const std::string home = dir + ".home";
  fs::create_directories(home);
  int status = -1;
  std::string out =
      RunOutput(absl::StrCat("HOME=", home, " XDG_CACHE_HOME= ", BinDir(), "/maillens --data ", dir,
                             " search status:sent since:2025-01-07 until:2025-01-08 "
                             "2>&1"),
                &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "2025-01-07")) << out;
  EXPECT_FALSE(fs::exists(dir + "/cache")) << "the owner's cache was used by another user";
  bool cached = false;
  for (const auto& f : fs::recursive_directory_iterator(home + "/.cache/maillens")) {
    cached |= absl::StartsWith(f.path().filename().string(), "20250107.");
  }
  EXPECT_TRUE(cached);
  EXPECT_NE(ArchiveCacheDir(dir), dir + "/cache");  // this process is not the owner either
}

TEST_F(ArchiveTrustTest, FileNamedByNoEntryIsKeptAside) {
  const std::string dir = ArchivedCopy("stray");
  // A day that is not hot and not in the manifest, e.g. copied back from a backup.
  fs::copy_file(dir + "/archive/20250110.db.gz", dir + "/archive/20241201.db.gz");
  int status = -1;
  std::string out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "day 20241201: archive file 20241201.db.gz")) << out;
  ASSERT_TRUE(RecoverArchive(dir).ok());
  EXPECT_FALSE(fs::exists(dir + "/archive/20241201.db.gz"));
  EXPECT_TRUE(fs::exists(dir + "/archive/orphans/20241201.db.gz"));
  out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "archive/orphans")) << out;
}

TEST_F(ArchiveTrustTest, ChangedCachedCopyIsExtractedAgainAndNamedByVerify) {
  const std::string dir = ArchivedCopy("cache");
  int status = -1;
  const std::string search =
      "search --lines connect since:2025-01-07 until:2025-01-08 --limit 5000";
  const std::string answer = Cli(dir, search, &status);
  ASSERT_EQ(status, 0) << answer;
  const std::string exported = Cli(dir, "archive export 20250107", &status);
  ASSERT_EQ(status, 0);
  ASSERT_GT(exported.size(), 10000u);
  std::string cached;
  for (const auto& f : fs::directory_iterator(dir + "/cache")) {
    std::string name = f.path().filename().string();
    if (absl::StartsWith(name, "20250107.") && absl::EndsWith(name, ".db")) cached = f.path();
  }
  ASSERT_FALSE(cached.empty());
  // Edited in place: lines gone, one rewritten.
  ExecOn(cached,
         "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE raw LIKE '%connect%' "
         "LIMIT 20); UPDATE events SET raw = 'edited' WHERE id = (SELECT max(id) FROM events)");
  std::string out = Cli(dir, "archive verify", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "day 20250107: its cached copy")) << out;
  EXPECT_EQ(Cli(dir, search, &status), answer);
  EXPECT_EQ(Cli(dir, "archive export 20250107", &status), exported);
  out = Cli(dir, "archive verify", &status);  // extracted again by the search
  EXPECT_EQ(status, 0) << out;
}

// --- Retention forgets what it deletes -----------------------------------------------------

// Rows of the catalog that point at no message: none may be left by a deletion.
int64_t DanglingRows(const std::string& catalog) {
  return QueryInt(catalog,
                  "SELECT (SELECT count(*) FROM recipients WHERE message NOT IN "
                  "(SELECT id FROM messages)) + (SELECT count(*) FROM links WHERE from_message "
                  "NOT IN (SELECT id FROM messages) OR to_message NOT IN (SELECT id FROM "
                  "messages)) + (SELECT count(*) FROM pending WHERE from_message NOT IN (SELECT "
                  "id FROM messages))");
}

// Messages whose every line was before `day_start_us` (what deleting the days before it
// must forget).
std::string WhollyBefore(int64_t day_start_us) {
  return absl::StrCat("SELECT count(*) FROM messages WHERE last_us < ", day_start_us,
                      " AND COALESCE(end_us, 0) < ", day_start_us);
}

// Bytes of the catalog's pages in use (the file keeps its freed pages for reuse).
int64_t CatalogUsedBytes(const std::string& catalog) {
  return (QueryInt(catalog, "PRAGMA page_count") - QueryInt(catalog, "PRAGMA freelist_count")) *
         QueryInt(catalog, "PRAGMA page_size");
}

TEST_F(RetentionTest, DeletedDaysLeaveTheCatalogAndTraceAndReportSaySo) {
  const std::string dir = FreshCopy("forget");
  const std::string catalog = dir + "/catalog.db";
  const int64_t keep_start = DayOf(kNow - 9 * kDayUs);  // archive_days 10
  const int64_t keep_start_us = DayStartUs(keep_start);
  const int64_t messages_before = QueryInt(catalog, "SELECT count(*) FROM messages");
  const int64_t recipients_before = QueryInt(catalog, "SELECT count(*) FROM recipients");
  const int64_t doomed = QueryInt(catalog, WhollyBefore(keep_start_us));
  ASSERT_GT(doomed, 1000) << "the month should have thousands of messages in its first 20 days";
  // A message of a day to be deleted, and none of its queue ID's on the days kept.
  std::string queue_id;
  {
    auto db = Database::Open(catalog, Database::Mode::kReadOnly);
    ASSERT_TRUE(db.ok());
    auto q = (*db)->Prepare(
        "SELECT queue_id FROM messages GROUP BY queue_id HAVING max(last_us) < ? LIMIT 1");
    ASSERT_TRUE(q.ok());
    q->Bind(1, DayStartUs(20250105));
    auto step = q->Step();
    ASSERT_TRUE(step.ok() && *step == Statement::StepResult::kRow);
    queue_id = std::string(q->ColumnText(0));
  }
  int status = 0;
  std::string before = Cli(dir, "trace " + queue_id, &status);
  ASSERT_EQ(status, 0) << before;
  const int64_t used_before = CatalogUsedBytes(catalog);
  const uintmax_t file_before = fs::file_size(catalog);

  RetentionPolicy policy;
  policy.hot_days = 3;
  policy.archive_days = 10;
  auto stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_GE(stats->deleted.size(), 20u);

  // The rows are gone, and nothing points at a message that is gone.
  EXPECT_EQ(QueryInt(catalog, WhollyBefore(keep_start_us)), 0);
  EXPECT_EQ(QueryInt(catalog, "SELECT count(*) FROM messages"), messages_before - doomed);
  EXPECT_LT(QueryInt(catalog, "SELECT count(*) FROM recipients"), recipients_before);
  EXPECT_EQ(DanglingRows(catalog), 0);
  // Messages that go on into a day kept are kept, whole.
  EXPECT_EQ(
      QueryInt(catalog,
               absl::StrCat("SELECT count(*) FROM messages WHERE first_us >= ", keep_start_us)),
      QueryInt(dir + "/../base/catalog.db",
               absl::StrCat("SELECT count(*) FROM messages WHERE first_us >= ", keep_start_us)));
  // The catalog: two thirds of the month forgotten, its pages in use shrink about as much,
  // and so does the file, once the WAL is checkpointed (a new catalog vacuums incrementally).
  const int64_t used_after = CatalogUsedBytes(catalog);
  EXPECT_EQ(QueryInt(catalog, "PRAGMA auto_vacuum"), 2);
  {
    auto rw = Database::Open(catalog, Database::Mode::kReadWrite);
    ASSERT_TRUE(rw.ok()) << rw.status();
    ASSERT_TRUE((*rw)->Exec("PRAGMA wal_checkpoint(TRUNCATE)").ok());
  }
  const uintmax_t file_after = fs::file_size(catalog);
  std::printf(
      "catalog: %lld bytes in use before, %lld after deleting 20 of 30 days; file %ju -> %ju\n",
      static_cast<long long>(used_before), static_cast<long long>(used_after), file_before,
      file_after);
  EXPECT_LT(used_after, used_before / 2);
  EXPECT_LT(file_after, file_before / 2 + 64 * 1024);

  // trace says why it finds nothing; report over a deleted day says it was deleted.
  const std::string today = absl::FormatTime("%Y-%m-%d", absl::Now(), absl::UTCTimeZone());
  std::string after = Cli(dir, "trace " + queue_id, &status);
  EXPECT_EQ(status, 1) << after;
  EXPECT_TRUE(absl::StrContains(after, "deleted by retention on " + today)) << after;
  std::string report =
      Cli(dir, "report --since 2025-01-05T00:00:00Z --until 2025-01-07T00:00:00Z", &status);
  EXPECT_TRUE(absl::StrContains(report, "deleted by retention on " + today)) << report;
  EXPECT_TRUE(absl::StrContains(report, "20250105..20250106")) << report;
  // A day kept is reported without the notice.
  report = Cli(dir, "report --since 2025-01-25T00:00:00Z --until 2025-01-26T00:00:00Z", &status);
  EXPECT_EQ(status, 0) << report;
  EXPECT_FALSE(absl::StrContains(report, "deleted by retention")) << report;
  EXPECT_TRUE(DeletedDaysNotice(dir, 20250121, 20250130).empty());

  // A manifest damaged afterwards and repaired: the deletions it recorded are kept (a rebuild
  // from the files alone forgot them, and trace said only "no message").
  std::vector<std::string> lines = EntryLines(dir);
  size_t archive_line = 0;
  while (archive_line < lines.size() && !absl::StrContains(lines[archive_line], "\tarchive\t")) {
    ++archive_line;
  }
  ASSERT_LT(archive_line, lines.size());
  lines.erase(lines.begin() + static_cast<ptrdiff_t>(archive_line));
  WriteEntryLines(dir, lines);
  std::string repaired = Cli(dir, "archive repair --yes", &status);
  ASSERT_EQ(status, 0) << repaired;
  std::string after_repair = Cli(dir, "trace " + queue_id, &status);
  EXPECT_EQ(status, 1) << after_repair;
  EXPECT_TRUE(absl::StrContains(after_repair, "deleted by retention on " + today)) << after_repair;
  EXPECT_EQ(Cli(dir, "archive verify", &status).empty(), false);
  EXPECT_EQ(status, 0);
}

// The collector's writer keeps the catalog open beside retention, whose own connection
// forgets deleted days' messages. The writer once kept a statement at its row between batches
// (a read snapshot), and after retention's commit its every transaction failed with "database
// is locked", so the rows had to wait for a restart. Now they go at once and the writer goes on.
TEST_F(RetentionTest, WriterGoesOnWhileRetentionForgetsMessages) {
  const std::string dir = FreshCopy("forget_writer");
  const std::string catalog = dir + "/catalog.db";
  const std::string doomed_sql = WhollyBefore(DayStartUs(20250121));
  ASSERT_GT(QueryInt(catalog, doomed_sql), 0);
  StoreOptions options;
  options.dir = dir;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto first = (*store)->Append(ZooLines("2025-01-29", 0x5101));
  ASSERT_TRUE(first.ok()) << first.status();
  RetentionPolicy policy;
  policy.hot_days = 3;
  policy.archive_days = 10;
  auto stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_FALSE(stats->deleted.empty());
  EXPECT_EQ(QueryInt(catalog, doomed_sql), 0);
  EXPECT_EQ(DanglingRows(catalog), 0);
  EXPECT_FALSE(DeletedDaysNotice(dir, 20250101, 20250130).empty());
  for (int round = 0; round < 2; ++round) {
    auto more =
        (*store)->Append(ZooLines(round == 0 ? "2025-01-30" : "2025-01-31", 0x5102 + round));
    ASSERT_TRUE(more.ok()) << more.status();
    EXPECT_EQ(more->stored, 6u);
    ASSERT_TRUE((*store)->Flush().ok());
    // Retention again between the writer's batches: nothing left to forget, no lock kept.
    ASSERT_TRUE(RunRetention(dir, policy, kNow).ok());
  }
  auto trace = (*store)->GetTrace("3AB1C2D3E6");
  ASSERT_TRUE(trace.ok()) << trace.status();
  uint64_t purged = 1;
  ASSERT_TRUE(PurgeDeletedMessages(dir, &purged).ok());
  EXPECT_EQ(purged, 0u);
}

// Dovecot's lines kept for the mailbox step (store/correlator.h, MailboxStep) go with the
// day they were logged on.
TEST_F(RetentionTest, DeletedDaysTakeTheirMailboxDeliveries) {
  const std::string dir = FreshCopy("forget_mailbox");
  const std::string catalog = dir + "/catalog.db";
  const std::vector<int64_t> days = AllDays(dir);
  ASSERT_GT(days.size(), 4u);
  for (int64_t day : {days[0], days[4]}) {
    ExecOn(catalog, absl::StrCat("INSERT INTO mailbox_deliveries (host_id, session, time_us, "
                                 "user, message_id, status, action, mailbox, target, reason) "
                                 "VALUES (1, 's",
                                 day, "', ", DayStartUs(day) + 3600LL * 1000000,
                                 ", 'u', 'm', 'saved', '', 'INBOX', '', '')"));
  }
  auto on = [&](int64_t day) {
    return QueryInt(catalog,
                    absl::StrCat("SELECT count(*) FROM mailbox_deliveries WHERE "
                                 "time_us >= ",
                                 DayStartUs(day), " AND time_us < ", DayStartUs(day) + kDayUs));
  };
  const int64_t kept = QueryInt(catalog, "SELECT count(*) FROM mailbox_deliveries") - on(days[0]);
  ASSERT_GT(on(days[0]), 0);
  ASSERT_GT(on(days[4]), 0);
  ASSERT_TRUE(DeleteDay(dir, days[0]).ok());
  EXPECT_EQ(on(days[0]), 0);
  EXPECT_EQ(QueryInt(catalog, "SELECT count(*) FROM mailbox_deliveries"), kept);
}

// A crash after the manifest's commit and before the catalog's: the rows stay, and the next
// recovery removes them.
TEST_F(RetentionTest, CatalogRowsKeptByACrashAreRemovedByRecovery) {
  const std::string dir = FreshCopy("forget_crash");
  const std::string catalog = dir + "/catalog.db";
  const std::vector<int64_t> days = AllDays(dir);
  ASSERT_GT(days.size(), 4u);
  const std::string doomed_sql = WhollyBefore(DayStartUs(days[3]));
  const int64_t doomed = QueryInt(catalog, doomed_sql);
  ASSERT_GT(doomed, 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    SetRetentionProbeForTest(+[](const char* step, int64_t) {
      if (std::string(step) == "purge") raise(SIGKILL);
    });
    for (size_t i = 0; i < 3; ++i) (void)DeleteDay(dir, days[i]);
    _exit(0);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "the probe should have killed the deletion";
  EXPECT_EQ(QueryInt(catalog, doomed_sql), doomed)
      << "the killed transaction should have left every row";
  ASSERT_TRUE(RecoverArchive(dir).ok());
  EXPECT_LT(QueryInt(catalog, doomed_sql), doomed);
  for (size_t i = 1; i < 3; ++i) ASSERT_TRUE(DeleteDay(dir, days[i]).ok());
  EXPECT_EQ(QueryInt(catalog, doomed_sql), 0);
  EXPECT_EQ(DanglingRows(catalog), 0);
}

// The budget counts everything under the data directory: a journal that grows makes the
// oldest day go (it did not count), and the archive and cache count too.
TEST_F(RetentionTest, DiskBudgetCountsTheJournalTheArchiveAndTheCache) {
  const std::string dir = FreshCopy("budget_all");
  RetentionPolicy policy;
  policy.hot_days = 3;
  ASSERT_TRUE(RunRetention(dir, policy, kNow).ok());  // 27 days archived
  DataUsage usage = DataDirUsage(dir);
  EXPECT_GT(usage.archive, 0u);
  EXPECT_GT(usage.days, 0u);
  EXPECT_GT(usage.catalog, 0u);
  EXPECT_EQ(usage.journal, 0u);
  EXPECT_EQ(DataBytes(dir), usage.budgeted());
  // Within budget as it is; then the journal grows by 2 MB.
  policy.disk_budget_bytes = usage.budgeted() + 512 * 1024;
  auto stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_TRUE(stats->deleted.empty());
  fs::create_directories(dir + "/journal");
  std::ofstream(dir + "/journal/00000001.seg") << std::string(2 << 20, 'j');
  EXPECT_EQ(DataDirUsage(dir).journal, uint64_t{2} << 20);
  stats = RunRetention(dir, policy, kNow);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_FALSE(stats->deleted.empty()) << "the journal's 2 MB were not counted";
  EXPECT_EQ(stats->deleted.front(), AllDays(*root_ + "/base").front());
  EXPECT_LT(stats->deleted.size(), 27u) << "the catalog's freed pages were counted as used";
  EXPECT_LE(stats->disk_bytes, policy.disk_budget_bytes);
  // A cached archived day counts as well.
  const std::vector<int64_t> archived = ArchivedDays(dir);
  ASSERT_FALSE(archived.empty());
  ASSERT_TRUE(ReadableDayPath(dir, archived.front(), nullptr).ok());
  EXPECT_GT(DataDirUsage(dir).cache, 0u);
}

// `archive repair` writes into the data directory: never beside the collector.
TEST_F(ArchiveTrustTest, RepairIsRefusedWhileTheCollectorHoldsTheDataLock) {
  const std::string dir = ArchivedCopy("repair_locked");
  fs::remove(dir + "/archive/MANIFEST");
  const std::map<std::string, uintmax_t> files = ArchiveFilesIn(dir);
  int status = 0;
  {
    auto lock = DataLock::Acquire(dir, "maillens-collector");
    ASSERT_TRUE(lock.ok()) << lock.status();
    std::string out = Cli(dir, "archive repair --yes", &status);
    EXPECT_EQ(status, 1) << out;
    EXPECT_TRUE(absl::StrContains(out, "maillens-collector")) << out;
    EXPECT_FALSE(fs::exists(dir + "/archive/MANIFEST")) << "repaired beside the collector";
    EXPECT_EQ(ArchiveFilesIn(dir), files);
  }
  std::string out = Cli(dir, "archive repair --yes", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(fs::exists(dir + "/archive/MANIFEST"));
}

// The child's probe: SIGKILL itself at the N-th step of archiving or deletion.
int g_kill_at = 0;
void KillAtStep(const char*, int64_t) {
  if (--g_kill_at == 0) raise(SIGKILL);
}

TEST_F(RetentionTest, KilledAtRandomPointsLeavesEveryDayWholeOrGone) {
  const std::string dir = FreshCopy("kill");
  const std::map<int64_t, uint64_t> original = LinesPerDay(dir);
  RetentionPolicy policy;
  policy.hot_days = 3;
  policy.archive_days = 25;
  const int64_t keep_start = DayOf(kNow - 24 * kDayUs);
  const int64_t hot_start = DayOf(kNow - 2 * kDayUs);
  std::mt19937 rng(20250130);
  int killed = 0, rounds = 0, refreshed = 0, damaged_rounds = 0;
  auto started = std::chrono::steady_clock::now();
  for (; rounds < 16; ++rounds) {
    // Half the rounds kill at an exact step (probe), half at a random moment (timer), which
    // also lands inside SQLite, gzip and fsync calls.
    const bool by_probe = rounds % 2 == 0;
    const int step = std::uniform_int_distribution<int>(1, 60)(rng);
    const int delay_us = std::uniform_int_distribution<int>(0, 400000)(rng);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (by_probe) {
        g_kill_at = step;
        SetRetentionProbeForTest(&KillAtStep);
      }
      auto stats = RunRetention(dir, policy, kNow);
      _exit(stats.ok() ? 0 : 3);
    }
    if (!by_probe) {
      usleep(delay_us);
      kill(pid, SIGKILL);
    }
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    if (WIFSIGNALED(wstatus)) {
      ++killed;
    } else {
      ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "round " << rounds;
    }

    ASSERT_TRUE(RecoverArchive(dir).ok());
    const std::vector<int64_t> hot = HotDays(dir);
    const std::vector<int64_t> archived = ArchivedDays(dir);
    const std::map<int64_t, uint64_t> now = LinesPerDay(dir);
    for (const auto& [day, lines] : original) {
      auto it = now.find(day);
      if (it == now.end()) {
        EXPECT_LT(day, keep_start) << "day " << day << " lost in round " << rounds;
        continue;
      }
      EXPECT_EQ(it->second, lines) << "day " << day << " in round " << rounds;
    }
    EXPECT_EQ(now.size(), AllDays(dir).size());
    for (int64_t day : archived) EXPECT_GE(day, keep_start) << "round " << rounds;
    // No leftovers: no work files, no file the manifest does not know.
    EXPECT_TRUE(fs::is_empty(dir + "/archive/tmp")) << "round " << rounds;
    std::set<std::string> live_files;
    auto live = LiveArchive(dir);
    ASSERT_TRUE(live.ok());
    for (const ArchiveEntry& e : *live) live_files.insert(e.file);
    for (const auto& f : fs::directory_iterator(dir + "/archive")) {
      std::string name = f.path().filename().string();
      if (absl::EndsWith(name, ".db.gz") || absl::EndsWith(name, ".unlink-hot")) {
        EXPECT_TRUE(live_files.count(name)) << name << " left over in round " << rounds;
      }
    }
    // No full-text index file without its partition.
    for (const auto& f : fs::directory_iterator(dir + "/days")) {
      std::string name = f.path().filename().string();
      if (absl::EndsWith(name, ".fts.db")) {
        EXPECT_TRUE(fs::exists(absl::StrCat(dir, "/days/", name.substr(0, 8), ".db")))
            << name << " left over in round " << rounds;
      }
    }
    // A crash never leaves a file set aside, nor a head half moved.
    EXPECT_FALSE(fs::exists(dir + "/archive/orphans")) << "round " << rounds;
    EXPECT_FALSE(fs::exists(dir + "/archive/HEAD.next")) << "round " << rounds;
    auto verify = VerifyArchive(dir);
    ASSERT_TRUE(verify.ok());
    EXPECT_TRUE(verify->ok()) << "round " << rounds << ": "
                              << absl::StrJoin(verify->problems, "; ");
    // The catalog after recovery: nothing of a deleted day's messages, nothing dangling.
    {
      std::set<int64_t> held(hot.begin(), hot.end());
      held.insert(archived.begin(), archived.end());
      const int64_t oldest_held_us = held.empty() ? INT64_MAX : DayStartUs(*held.begin());
      EXPECT_EQ(QueryInt(dir + "/catalog.db", WhollyBefore(oldest_held_us)), 0)
          << "round " << rounds;
      EXPECT_EQ(DanglingRows(dir + "/catalog.db"), 0) << "round " << rounds;
    }
    // Every third round the manifest is removed or damaged before a pass, which is killed
    // at a random moment or not: the pass refuses, and every archive file stays. Then the
    // manifest is put back (as from a backup) and the rounds go on.
    if (std::vector<std::string> lines = EntryLines(dir); rounds % 3 == 1 && !lines.empty()) {
      const std::string saved = ReadAll(dir + "/archive/MANIFEST");
      const std::map<std::string, uintmax_t> files = ArchiveFilesIn(dir);
      const int damage = (rounds / 3) % 4;
      if (damage == 0) {
        fs::remove(dir + "/archive/MANIFEST");
      } else if (damage == 1) {
        lines.erase(lines.begin() + static_cast<long>(rng() % lines.size()));
      } else if (damage == 2) {
        lines.pop_back();
      } else {
        lines[rng() % lines.size()] += "\tjunk";
      }
      if (damage != 0) WriteEntryLines(dir, lines);
      pid_t damaged = fork();
      ASSERT_GE(damaged, 0);
      if (damaged == 0) _exit(RunRetention(dir, policy, kNow).ok() ? 0 : 3);
      usleep(std::uniform_int_distribution<int>(0, 100000)(rng));
      kill(damaged, SIGKILL);
      int dstatus = 0;
      waitpid(damaged, &dstatus, 0);
      EXPECT_TRUE(WIFSIGNALED(dstatus) || WEXITSTATUS(dstatus) == 3)
          << "a pass over a damaged manifest (" << damage << ") succeeded in round " << rounds;
      EXPECT_EQ(ArchiveFilesIn(dir), files)
          << "archive files changed over a damaged manifest (" << damage << ") in round " << rounds;
      EXPECT_FALSE(VerifyArchive(dir)->ok()) << "damage " << damage << " not seen";
      WriteAll(dir + "/archive/MANIFEST", saved);
      verify = VerifyArchive(dir);
      ASSERT_TRUE(verify.ok());
      EXPECT_TRUE(verify->ok()) << absl::StrJoin(verify->problems, "; ");
      ++damaged_rounds;
    }
    // All done: start over from the hot month so later rounds kill mid-work again.
    bool done = true;
    for (int64_t day : hot) done &= day >= hot_start;
    if (done) {
      fs::remove_all(dir);
      fs::copy(*root_ + "/base", dir, fs::copy_options::recursive);
      ++refreshed;
    }
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(40)) break;
  }
  EXPECT_GE(killed, rounds / 3) << "too few rounds were killed mid-work to mean anything";
  EXPECT_GE(damaged_rounds, 3) << "too few rounds damaged the manifest";
  std::printf("kill test: %d rounds, %d killed, %d fresh copies, %d with a damaged manifest\n",
              rounds, killed, refreshed, damaged_rounds);
}

}  // namespace
}  // namespace maillens::store
