// Overlapping files store each line once (store/importer.h, "Overlap"): an extract (a
// middle slice) and the full log in both orders, lines that repeat within one file, the same
// bytes under two hosts, and real logs whose mail.warn/mail.err lines are also in mail.log*.
// Counts are exact, per (host, line) against what each file holds, computed here from the
// files alone.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "store/importer.h"
#include "store/retention.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::store {
namespace {

constexpr char kRepeated[] =
    "Mar  1 10:00:10 mx postfix/smtpd[77]: connect from unknown[192.0.2.99]";

// (host, raw line) -> how many times.
using LineCounts = std::map<std::pair<std::string, std::string>, uint64_t>;

// The full log: 40 lines of host mx, two a second, of which lines 20 and 21 are the same
// connect in the same second (both real, both to be kept).
std::vector<std::string> FullLog() {
  std::vector<std::string> lines;
  for (int i = 0; i < 40; ++i) {
    if (i == 20 || i == 21) {
      lines.push_back(kRepeated);
      continue;
    }
    lines.push_back(absl::StrFormat(
        "Mar  1 10:00:%02d mx postfix/smtpd[%d]: connect from c%d.example[192.0.2.%d]", i / 2,
        100 + i, i, i));
  }
  return lines;
}

std::vector<std::string> Slice(const std::vector<std::string>& lines, size_t from, size_t to) {
  return std::vector<std::string>(lines.begin() + from, lines.begin() + to);
}

// The syslog host of a classic line: its fourth field (written here, not by the parser).
std::string SyslogHost(const std::string& line) {
  std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
  return fields.size() > 3 ? fields[3] : "";
}

class OverlapTest : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "maillens_overlap_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    data_ = dir_ + "/data";
    StoreOptions options;
    options.dir = data_;
    options.durable = false;  // as maillens import opens it
    options.correlate_behind = true;
    options.behind_depth = 4;
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Write(const std::string& name, const std::vector<std::string>& lines) {
    std::string path = dir_ + "/" + name;
    std::ofstream out(path);
    for (const std::string& line : lines) out << line << "\n";
    return path;
  }

  ImportStats Import(const std::string& path, const std::string& host = "") {
    ImportOptions options;
    options.year = 2026;
    options.host = host;
    options.batch_lines = GetParam();
    auto stats = ImportFile(store_.get(), path, options);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : ImportStats();
  }

  // What the store holds, read from its day files: (host, line) -> count.
  LineCounts Stored() {
    EXPECT_TRUE(store_->Flush().ok());
    std::map<int64_t, std::string> hosts;
    {
      auto catalog = Database::Open(data_ + "/catalog.db", Database::Mode::kReadOnly);
      EXPECT_TRUE(catalog.ok()) << catalog.status();
      auto select = (*catalog)->Prepare("SELECT id, name FROM hosts");
      while (*select->Step() == Statement::StepResult::kRow) {
        hosts[select->ColumnInt(0)] = std::string(select->ColumnText(1));
      }
    }
    LineCounts counts;
    for (int64_t day : HotDays(data_)) {
      auto db =
          Database::Open(absl::StrCat(data_, "/days/", day, ".db"), Database::Mode::kReadOnly);
      EXPECT_TRUE(db.ok()) << db.status();
      auto select = (*db)->Prepare("SELECT host_id, raw FROM events");
      while (*select->Step() == Statement::StepResult::kRow) {
        ++counts[{hosts[select->ColumnInt(0)], std::string(select->ColumnText(1))}];
      }
    }
    return counts;
  }

  static uint64_t Total(const LineCounts& counts) {
    uint64_t total = 0;
    for (const auto& [key, n] : counts) total += n;
    return total;
  }

  // What the store should hold after importing `files` (host from each line unless given):
  // each (host, line) as many times as the file that holds it most often.
  static LineCounts Expected(
      const std::vector<std::pair<std::vector<std::string>, std::string>>& files) {
    LineCounts expected;
    for (const auto& [lines, host] : files) {
      LineCounts in_file;
      for (const std::string& line : lines) {
        ++in_file[{host.empty() ? SyslogHost(line) : host, line}];
      }
      for (const auto& [key, n] : in_file) expected[key] = std::max(expected[key], n);
    }
    return expected;
  }

  std::string dir_, data_;
  std::unique_ptr<Store> store_;
};

TEST_P(OverlapTest, ExtractThenFullLog) {
  const std::vector<std::string> full = FullLog();
  const std::vector<std::string> extract = Slice(full, 10, 30);  // both repeated lines
  ImportStats first = Import(Write("extract.log", extract));
  EXPECT_EQ(first.stored, 20u);
  EXPECT_EQ(first.duplicates, 0u);
  ImportStats second = Import(Write("mail.log", full));
  EXPECT_EQ(second.read, 40u);
  EXPECT_EQ(second.stored, 20u);
  EXPECT_EQ(second.duplicates, 20u);
  EXPECT_EQ(second.overlapping, 20u);
  LineCounts stored = Stored();
  EXPECT_EQ(stored, Expected({{full, ""}, {extract, ""}}));
  EXPECT_EQ(Total(stored), 40u);
  EXPECT_EQ((stored[{"mx", kRepeated}]), 2u);
}

TEST_P(OverlapTest, FullLogThenExtract) {
  const std::vector<std::string> full = FullLog();
  const std::vector<std::string> extract = Slice(full, 10, 30);
  ImportStats first = Import(Write("mail.log", full));
  EXPECT_EQ(first.stored, 40u);
  ImportStats second = Import(Write("extract.log", extract));
  EXPECT_EQ(second.stored, 0u);
  EXPECT_EQ(second.duplicates, 20u);
  EXPECT_EQ(second.overlapping, 20u);
  LineCounts stored = Stored();
  EXPECT_EQ(Total(stored), 40u);
  EXPECT_EQ((stored[{"mx", kRepeated}]), 2u);
  // Again: the (file, offset) identity and the overlap agree, nothing is added.
  ImportStats third = Import(dir_ + "/extract.log");
  EXPECT_EQ(third.stored, 0u);
  EXPECT_EQ(third.duplicates, 20u);
  EXPECT_EQ(Total(Stored()), 40u);
}

// An extract that holds one of the two identical lines: the full log adds the other.
TEST_P(OverlapTest, HalfOfARepeatInEitherOrder) {
  const std::vector<std::string> full = FullLog();
  const std::vector<std::string> extract = Slice(full, 15, 21);  // line 20, not 21
  ASSERT_EQ(std::count(extract.begin(), extract.end(), kRepeated), 1);
  ImportStats first = Import(Write("extract.log", extract));
  EXPECT_EQ(first.stored, 6u);
  ImportStats second = Import(Write("mail.log", full));
  EXPECT_EQ(second.stored, 34u);
  EXPECT_EQ(second.overlapping, 6u);
  LineCounts stored = Stored();
  EXPECT_EQ(Total(stored), 40u);
  EXPECT_EQ((stored[{"mx", kRepeated}]), 2u);
  // The other order, in a second host's name: the extract adds nothing.
  ImportStats full_b = Import(dir_ + "/mail.log", "b");
  EXPECT_EQ(full_b.stored, 40u);  // the same bytes under another host are that host's lines
  ImportStats extract_b = Import(dir_ + "/extract.log", "b");
  EXPECT_EQ(extract_b.stored, 0u);
  EXPECT_EQ(extract_b.overlapping, 6u);
  stored = Stored();
  EXPECT_EQ(Total(stored), 80u);
  EXPECT_EQ((stored[{"b", kRepeated}]), 2u);
}

TEST_P(OverlapTest, RepeatsWithinOneFileAreKept) {
  std::vector<std::string> lines(5, kRepeated);
  lines.push_back("Mar  1 10:00:11 mx postfix/smtpd[77]: disconnect from unknown[192.0.2.99]");
  ImportStats first = Import(Write("repeats.log", lines));
  EXPECT_EQ(first.stored, 6u);
  EXPECT_EQ(first.duplicates, 0u);
  // A second file with three of them: already there.
  ImportStats second = Import(Write("three.log", std::vector<std::string>(3, kRepeated)));
  EXPECT_EQ(second.stored, 0u);
  EXPECT_EQ(second.overlapping, 3u);
  // A third with seven: two more.
  ImportStats third = Import(Write("seven.log", std::vector<std::string>(7, kRepeated)));
  EXPECT_EQ(third.stored, 2u);
  EXPECT_EQ(third.overlapping, 5u);
  LineCounts stored = Stored();
  EXPECT_EQ((stored[{"mx", kRepeated}]), 7u);
  EXPECT_EQ(Total(stored), 8u);
}

// Real logs (../shared/corpus/lightmeter-controlcenter): mail.warn* and mail.err* hold lines
// that mail.log* hold too. Every file, in two orders: each (host, line) is stored as often as
// the file that holds it most often (a line repeated within one file is kept), and the
// number of distinct (host, line) is what `sort -u` of all the files gives.
TEST_P(OverlapTest, RealLogsWhoseLevelsOverlap) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  const std::string sample = std::string(shared ? shared : "../shared") +
                             "/corpus/lightmeter-controlcenter/complete_tar/logs_sample";
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(sample)) {
    paths.push_back(entry.path().string());
  }
  ASSERT_EQ(paths.size(), 12u) << sample;
  std::sort(paths.begin(), paths.end());  // mail.err*, mail.log*, mail.warn*
  std::vector<std::pair<std::vector<std::string>, std::string>> files;
  std::vector<std::string> all;
  for (const std::string& path : paths) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    all.insert(all.end(), lines.begin(), lines.end());
    files.emplace_back(std::move(lines), "");
  }
  const LineCounts expected = Expected(files);
  std::vector<std::pair<std::string, std::string>> distinct;  // sort -u, per host and line
  for (const std::string& line : all) distinct.emplace_back(SyslogHost(line), line);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  ASSERT_EQ(distinct.size(), 9019u);  // the corpus as this test knows it
  ASSERT_EQ(Total(expected), 9051u);  // 32 lines repeat within their own file

  for (bool reversed : {false, true}) {
    SCOPED_TRACE(reversed ? "mail.warn* first" : "mail.err* first");
    TearDown();
    SetUp();
    std::vector<std::string> order = paths;
    if (reversed) std::reverse(order.begin(), order.end());
    uint64_t read = 0, stored = 0, present = 0;
    for (const std::string& path : order) {
      ImportStats stats = Import(path);
      read += stats.read;
      stored += stats.stored;
      present += stats.duplicates;
    }
    EXPECT_EQ(read, all.size());
    EXPECT_EQ(stored, 9051u);
    EXPECT_EQ(present, all.size() - 9051u);
    LineCounts held = Stored();
    EXPECT_EQ(held.size(), distinct.size());
    EXPECT_EQ(held, expected);
  }
}

// 5,000: the import's batch; 3: the repeated lines and the overlap's edges fall across batches.
INSTANTIATE_TEST_SUITE_P(Batches, OverlapTest, ::testing::Values(size_t{5000}, size_t{3}));

}  // namespace
}  // namespace maillens::store
