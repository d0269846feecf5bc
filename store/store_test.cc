#include "store/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/test_lines.h"

namespace maillens::store {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("maillens_store_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    store_ = OpenStore();
  }
  void TearDown() override {
    if (!index_released_.HasBeenNotified()) index_released_.Notify();  // a test that failed
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Store> OpenStore(bool behind = false, bool read_only = false,
                                   bool durable = true) {
    StoreOptions options;
    options.dir = dir_.string();
    options.correlate_behind = behind;
    options.read_only = read_only;
    options.durable = durable;
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  absl::Notification index_released_;
};

constexpr int64_t kNoon = 1700049600LL * 1000000;  // 2023-11-15 12:00:00 UTC

TEST_F(StoreTest, AppendIsIdempotent) {
  auto lines = FileLines("dmz", 1, kNoon,
                         {"Nov 15 12:00:00 dmz postfix/smtpd[1]: connect from a[192.0.2.1]",
                          "Nov 15 12:00:01 dmz postfix/smtpd[1]: disconnect from a[192.0.2.1]"});
  auto first = store_->Append(lines);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->stored, 2u);
  auto second = store_->Append(lines);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->stored, 0u);
  EXPECT_EQ(second->duplicates, 2u);
  // Survives reopening.
  store_ = OpenStore();
  auto third = store_->Append(lines);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->duplicates, 2u);
  SearchQuery q;
  q.words = {"connect"};
  auto result = store_->Search(q);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->total, 1u);  // "disconnect" is a different token
}

// SQLite's memory accounting takes one process-wide mutex per malloc and free, which the
// import's threads fought over (ConfigureSqlite). It must be off whichever connection of a
// fresh data directory comes first; a process of its own, since a test before this one
// already initialized SQLite.
TEST(StoreProcessTest, FreshDataDirectoryLeavesSqliteMemoryUncounted) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto dir = std::filesystem::temp_directory_path() /
             ("maillens_store_memstat_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  EXPECT_EXIT(
      {
        StoreOptions options;
        options.dir = dir.string();
        auto store = Store::Open(options);
        if (!store.ok()) std::_Exit(2);
        auto lines = FileLines("dmz", 1, kNoon,
                               {"Nov 15 12:00:00 dmz postfix/smtpd[1]: connect from a[192.0.2.1]"});
        if (!(*store)->Append(lines).ok()) std::_Exit(3);
        std::_Exit(sqlite3_memory_used() == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  std::filesystem::remove_all(dir);
}

TEST_F(StoreTest, BadBytesAreStoredAndFoundByteForByte) {
  std::string invalid = "Nov 15 12:00:00 dmz postfix/smtpd[1]: warning: bad \xff\xfe bytes zorglub";
  std::string nul("Nov 15 12:00:01 dmz postfix/smtpd[1]: nul \0 inside frobnicate", 62);
  std::string huge =
      "Nov 15 12:00:02 dmz postfix/cleanup[2]: 1A2B3C4D5E: warning: header Subject: " +
      std::string(65536, 'x') + " quuxword";
  auto lines = FileLines("dmz", 2, kNoon, {invalid, nul, huge});
  ASSERT_TRUE(store_->Append(lines).ok());
  for (const auto& [word, expected] : std::vector<std::pair<std::string, std::string>>{
           {"zorglub", invalid}, {"frobnicate", nul}, {"quuxword", huge}}) {
    SearchQuery q;
    q.words = {word};
    auto result = store_->Search(q);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->lines.size(), 1u) << word;
    EXPECT_EQ(result->lines[0].raw, expected) << word;
  }
}

TEST_F(StoreTest, ExactAddressSearchFindsSenderRecipientAndOriginalRecipient) {
  auto lines = FileLines(
      "mx", 3, kNoon,
      {"Nov 15 12:00:00 mx postfix/qmgr[5]: 4AB12C: from=<Alice.Smith@Example.org>, size=10, "
       "nrcpt=1 (queue active)",
       "Nov 15 12:00:01 mx postfix/local[6]: 4AB12C: to=<bob@example.org>, "
       "orig_to=<postmaster@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, "
       "status=sent (delivered to mailbox)",
       "Nov 15 12:00:02 mx postfix/local[6]: 4AB12D: to=<smith@example.org>, relay=local, "
       "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)",
       "Nov 15 12:00:03 mx postfix/smtpd[7]: warning: alice.smith@example.org in free text"});
  ASSERT_TRUE(store_->Append(lines).ok());
  auto search = [&](const std::string& from, const std::string& to, int64_t since_us = INT64_MIN) {
    SearchQuery q;
    q.from = from;
    q.to = to;
    q.since_us = since_us;
    auto result = store_->Search(q);
    EXPECT_TRUE(result.ok()) << result.status();
    std::vector<int64_t> seconds;
    for (const StoredLine& line : result->lines)
      seconds.push_back((line.time_us - kNoon) / 1000000);
    // The count (from the index alone when the whole day is in the window) is the lines'.
    EXPECT_EQ(result->total, seconds.size()) << from << " " << to;
    return seconds;
  };
  EXPECT_THAT(search("alice.smith@example.org", ""), ElementsAre(0));  // case folded
  EXPECT_THAT(search("", "bob@example.org"), ElementsAre(1));
  EXPECT_THAT(search("", "postmaster@example.org"), ElementsAre(1));  // orig_to
  EXPECT_THAT(search("", "smith@example.org"), ElementsAre(2));       // not alice.smith's lines
  EXPECT_THAT(search("", "carol@example.org"), ElementsAre());
  // An address is found in the field asked for only.
  EXPECT_THAT(search("", "alice.smith@example.org"), ElementsAre());
  EXPECT_THAT(search("bob@example.org", ""), ElementsAre());
  EXPECT_THAT(search("alice.smith@example.org", "bob@example.org"), ElementsAre());
  // Part of the day in the window: counted line by line.
  EXPECT_THAT(search("", "bob@example.org", kNoon + 1000000), ElementsAre(1));
  EXPECT_THAT(search("", "bob@example.org", kNoon + 2000000), ElementsAre());
  EXPECT_THAT(search("", "*@example.org"), ElementsAre(2, 1));  // wildcards by phrase
  // Free text still finds the address's words, tokens or not.
  SearchQuery words;
  words.words = {"alice.smith@example.org"};
  auto result = store_->Search(words);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->total, 2u);
}

// The queues of an address per day (what from:A to:B is answered from): from= apart from
// to= and orig_to=, case folded, NOQUEUE lines left out, in a day written whole, in a day
// whose index is in a side file, and through a read-only store.
TEST_F(StoreTest, AddressQueuesNameEveryQueueAnAddressWasSeenIn) {
  constexpr int64_t kDay = 86400LL * 1000000;
  auto day_lines = [](const std::string& qid) {
    return std::vector<std::string>{
        "Nov 15 12:00:00 mx postfix/qmgr[5]: " + qid +
            ": from=<Alice@Example.org>, size=10, nrcpt=1 (queue active)",
        "Nov 15 12:00:01 mx postfix/local[6]: " + qid +
            ": to=<bob@example.org>, orig_to=<postmaster@example.org>, relay=local, delay=1, "
            "delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)",
        "Nov 15 12:00:02 mx postfix/smtpd[7]: NOQUEUE: reject: RCPT from x[192.0.2.1]: 554 "
        "5.7.1 <carol@example.org>: Relay access denied; from=<alice@example.org> "
        "to=<carol@example.org> proto=ESMTP helo=<x>"};
  };
  // Two days: the first written whole (not the batch's last day), the second through files.
  std::vector<LineRecord> lines = FileLines("mx", 7, kNoon - kDay, day_lines("1A2B3C"));
  for (LineRecord& l : FileLines("mx", 7, kNoon, day_lines("4D5E6F"))) {
    l.offset += 1000;
    lines.push_back(std::move(l));
  }
  ASSERT_TRUE(store_->Append(lines).ok());
  for (bool read_only : {false, true}) {
    std::unique_ptr<Store> reader;
    Store* store = store_.get();
    if (read_only) {
      reader = OpenStore(false, /*read_only=*/true);
      store = reader.get();
    }
    auto queues = [&](core::FieldTerm::Target target, const std::string& address,
                      int64_t since_us = INT64_MIN) {
      auto got = store->AddressQueues(target, address, since_us, INT64_MAX, false);
      EXPECT_TRUE(got.ok()) << got.status();
      std::vector<std::string> out;
      if (!got.ok() || !got->has_value()) return std::vector<std::string>{"none"};
      for (const Store::AddressQueue& q : **got) {
        out.push_back(absl::StrCat(q.day % 100, " ", q.host, " ", q.queue_id));
      }
      return out;
    };
    using Target = core::FieldTerm::Target;
    EXPECT_THAT(queues(Target::kFrom, "alice@example.org"),
                ElementsAre("15 mx 4D5E6F", "14 mx 1A2B3C"))
        << read_only;
    EXPECT_THAT(queues(Target::kTo, "bob@example.org"),
                ElementsAre("15 mx 4D5E6F", "14 mx 1A2B3C"));
    EXPECT_THAT(queues(Target::kTo, "postmaster@example.org"),
                ElementsAre("15 mx 4D5E6F", "14 mx 1A2B3C"));
    EXPECT_THAT(queues(Target::kFrom, "bob@example.org"), ElementsAre());
    EXPECT_THAT(queues(Target::kTo, "carol@example.org"), ElementsAre());  // NOQUEUE only
    EXPECT_THAT(queues(Target::kFrom, "alice@example.org", kNoon), ElementsAre("15 mx 4D5E6F"));
  }
}

// Lines "connect from WORD-I.example[192.0.2.I]", I from `first`, each a second apart.
std::vector<std::string> ConnectLines(const std::string& word, int first, int n) {
  std::vector<std::string> raws;
  for (int i = first; i < first + n; ++i) {
    raws.push_back("Nov 15 12:00:00 dmz postfix/smtpd[1]: connect from " + word + "-" +
                   std::to_string(i) + ".example[192.0.2." + std::to_string(i % 250) + "]");
  }
  return raws;
}

uint64_t CountWord(Store* store, const std::string& word) {
  SearchQuery q;
  q.words = {word};
  auto result = store->Search(q);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->total : 0;
}

// The report reads its lines through the partial index events_report, which SQLite uses only
// when the query's WHERE clause contains the index's condition as written: a partition whose
// index was made with another condition would be read whole. Both kinds of partition, a day
// written whole and one written line by line, are checked.
TEST_F(StoreTest, ReportQueryReadsThePartialIndexOfEveryPartition) {
  const int64_t day_before = kNoon - 24 * 3600 * 1000000LL;
  auto lines =
      FileLines("dmz", 1,
                {{day_before, "Nov 14 12:00:00 dmz postfix/smtpd[1]: connect from a[192.0.2.1]"},
                 {kNoon, "Nov 15 12:00:00 dmz postfix/smtpd[1]: connect from a[192.0.2.1]"}});
  ASSERT_TRUE(store_->Append(lines).ok());
  store_.reset();
  int partitions = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "days")) {
    std::string name = entry.path().filename().string();
    if (name.size() != 11 || name.substr(8) != ".db") continue;  // YYYYMMDD.db, not a side file
    ++partitions;
    auto db = Database::Open(entry.path().string(), Database::Mode::kReadOnly);
    ASSERT_TRUE(db.ok()) << db.status();
    auto plan = (*db)->Prepare(absl::StrCat(
        "EXPLAIN QUERY PLAN SELECT ts_us, host_id, kind, queue_id, raw FROM events WHERE ",
        ReportLinesCondition(), " AND ts_us >= 0"));
    ASSERT_TRUE(plan.ok()) << plan.status();
    std::string details;
    while (true) {
      auto step = plan->Step();
      ASSERT_TRUE(step.ok()) << step.status();
      if (*step == Statement::StepResult::kDone) break;
      details += std::string(plan->ColumnText(3)) + "; ";
    }
    EXPECT_THAT(details, ::testing::HasSubstr("USING INDEX events_report")) << name;
  }
  EXPECT_EQ(partitions, 2);
}

TEST_F(StoreTest, NewPartitionKeepsItsIndexInASideFileWrittenBehind) {
  store_ = OpenStore(/*behind=*/true);
  // Several appends, so the index runs behind the lines more than once.
  for (int part = 0; part < 4; ++part) {
    ASSERT_TRUE(store_
                    ->Append(FileLines("dmz", 10 + part, kNoon + part * 100 * 1000000LL,
                                       ConnectLines("alpha", part * 100, 100)))
                    .ok());
  }
  ASSERT_TRUE(store_->Append(FileLines("dmz", 2, kNoon, ConnectLines("beta", 0, 7))).ok());
  EXPECT_EQ(CountWord(store_.get(), "alpha"), 400u);
  EXPECT_EQ(CountWord(store_.get(), "beta"), 7u);
  EXPECT_EQ(CountWord(store_.get(), "connect"), 407u);
  store_.reset();
  const std::string partition = (dir_ / "days" / "20231115.db").string();
  ASSERT_TRUE(std::filesystem::exists(FtsFilePath(partition)));
  {
    auto db = Database::Open(partition, Database::Mode::kReadOnly);
    ASSERT_TRUE(db.ok());
    auto tables = (*db)->Prepare("SELECT count(*) FROM sqlite_master WHERE name = 'events_fts'");
    ASSERT_TRUE(tables.ok());
    ASSERT_TRUE(tables->Step().ok());
    EXPECT_EQ(tables->ColumnInt(0), 0) << "the index is in the side file only";
  }
  // A read-only store (every query command) attaches the side file.
  auto reader = OpenStore(false, /*read_only=*/true);
  EXPECT_EQ(CountWord(reader.get(), "alpha"), 400u);
  EXPECT_EQ(CountWord(reader.get(), "beta"), 7u);
}

// What a crash between a partition's commit and its index's leaves: the side file without the
// last lines. Opening the store for writing indexes them, once.
TEST_F(StoreTest, SideFileMissingTheLastLinesIsCaughtUpOnOpen) {
  const std::string partition = (dir_ / "days" / "20231115.db").string();
  const std::string fts = FtsFilePath(partition);
  ASSERT_TRUE(store_->Append(FileLines("dmz", 1, kNoon, ConnectLines("alpha", 0, 30))).ok());
  store_.reset();  // closed: the side file is whole, without its -wal
  std::filesystem::copy_file(fts, fts + ".saved");
  store_ = OpenStore();
  ASSERT_TRUE(store_->Append(FileLines("dmz", 2, kNoon, ConnectLines("beta", 0, 20))).ok());
  store_.reset();
  std::filesystem::rename(fts + ".saved", fts);  // back to before the beta lines
  auto reader = OpenStore(false, /*read_only=*/true);
  EXPECT_EQ(CountWord(reader.get(), "beta"), 0u) << "the crash's state: beta not indexed";
  reader.reset();
  store_ = OpenStore(/*behind=*/true);
  EXPECT_EQ(CountWord(store_.get(), "alpha"), 30u);
  EXPECT_EQ(CountWord(store_.get(), "beta"), 20u);
  EXPECT_EQ(CountWord(store_.get(), "connect"), 50u);
  // And again: nothing is indexed twice.
  store_ = OpenStore();
  EXPECT_EQ(CountWord(store_.get(), "connect"), 50u);
}

// What a machine crash can leave when the partition lost commits its index kept: the index
// claims ids the partition gives to other lines. The day is indexed anew.
TEST_F(StoreTest, SideFileAheadOfItsPartitionIsRebuilt) {
  const std::string partition = (dir_ / "days" / "20231115.db").string();
  const std::string fts = FtsFilePath(partition);
  ASSERT_TRUE(store_->Append(FileLines("dmz", 1, kNoon, ConnectLines("alpha", 0, 30))).ok());
  ASSERT_TRUE(store_->Append(FileLines("dmz", 2, kNoon, ConnectLines("beta", 0, 20))).ok());
  store_.reset();
  const std::string saved = dir_.string() + ".fts.saved";
  std::filesystem::copy_file(fts, saved, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove_all(dir_);
  store_ = OpenStore();
  ASSERT_TRUE(store_->Append(FileLines("dmz", 1, kNoon, ConnectLines("alpha", 0, 30))).ok());
  store_.reset();
  std::filesystem::rename(saved, fts);  // claims 50 lines; the partition has 30
  store_ = OpenStore();
  EXPECT_EQ(CountWord(store_.get(), "alpha"), 30u);
  EXPECT_EQ(CountWord(store_.get(), "beta"), 0u);
  EXPECT_EQ(CountWord(store_.get(), "connect"), 30u);
  ASSERT_TRUE(store_->Append(FileLines("dmz", 3, kNoon, ConnectLines("gamma", 0, 5))).ok());
  EXPECT_EQ(CountWord(store_.get(), "gamma"), 5u);
  EXPECT_EQ(CountWord(store_.get(), "connect"), 35u);
}

// Batches of lines over many days, as an import of sparse logs: a day with no file yet is
// built in memory and written whole (behind the caller for an import), one that goes on
// into the next batch through its files. Checked for the collector's store (durable, new
// days written before Append returns) and an import's (written behind).
class SparseDaysTest : public StoreTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SparseDaysTest, EveryLineIsStoredIndexedAndCorrelatedOnce) {
  const bool import = GetParam();
  if (import) {
    // The races made certain: a new day's write takes longer than the next Append, and the
    // side files' index runs after the writer has opened the days written behind.
    StoreOptions options;
    options.dir = dir_.string();
    options.correlate_behind = true;
    options.durable = false;
    options.behind_depth = 8;
    options.on_behind_job = [this](std::string_view job) {
      if (job == "days") std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (job == "index") index_released_.WaitForNotification();
    };
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  } else {
    store_ = OpenStore(/*behind=*/true);
  }
  constexpr int64_t kDayUs = 86400LL * 1000000;
  int next = 0;         // message number
  uint64_t offset = 0;  // in the one file all lines come from
  // A batch: two messages (four lines each) on each day of `days` (offsets from 2023-11-15),
  // in that order; the last day listed is the one the batch ends in.
  auto batch = [&](const std::vector<int>& days) {
    std::vector<LineRecord> lines;
    for (int d : days) {
      for (int m = 0; m < 2; ++m, ++next) {
        char qid[16];
        std::snprintf(qid, sizeof(qid), "%010X", 0x20000000 + next);
        const std::string n = std::to_string(next);
        std::vector<std::string> raws = {
            std::string("Nov 15 12:00:00 mx postfix/pickup[11]: ") + qid + ": uid=1000 from=<u" +
                n + "@example.org>",
            std::string("Nov 15 12:00:00 mx postfix/qmgr[12]: ") + qid + ": from=<u" + n +
                "@example.org>, size=1000, nrcpt=1 (queue active)",
            std::string("Nov 15 12:00:01 mx postfix/local[13]: ") + qid + ": to=<r" + n +
                "@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
                "(delivered to mailbox)",
            std::string("Nov 15 12:00:01 mx postfix/qmgr[12]: ") + qid + ": removed"};
        for (LineRecord& r : FileLines("mx", 7, kNoon + d * kDayUs + m * 60000000LL, raws)) {
          r.offset += offset;
          lines.push_back(std::move(r));
        }
        offset = lines.back().offset + lines.back().raw.size() + 1;
      }
    }
    auto appended = store_->Append(lines);
    ASSERT_TRUE(appended.ok()) << appended.status();
    EXPECT_EQ(appended->stored, lines.size());
  };
  batch({0, 1, 2, 3});  // days 0-2 new in memory, day 3 through its files
  batch({1, 4, 5});     // day 1 again (written by the batch before), 4 new, 5 goes on...
  batch({5, 1, 6, 7});  // ...here, with day 1 once more
  batch({8, 9, 10, 11});
  batch({8, 12});  // day 8 again, right behind its write
  index_released_.Notify();
  const int messages = next;
  auto check = [&](Store* store, const std::string& when) {
    EXPECT_EQ(CountWord(store, "removed"), static_cast<uint64_t>(messages)) << when;
    EXPECT_EQ(CountWord(store, "delivered"), static_cast<uint64_t>(messages)) << when;
    for (int i = 0; i < messages; ++i) {
      SearchQuery q;
      q.to = "r" + std::to_string(i) + "@example.org";
      auto found = store->Search(q);
      ASSERT_TRUE(found.ok()) << found.status();
      EXPECT_EQ(found->total, 1u) << q.to << " " << when;
    }
    auto traces = store->TracesIn(INT64_MIN, INT64_MAX);
    ASSERT_TRUE(traces.ok()) << traces.status();
    EXPECT_EQ(traces->size(), static_cast<size_t>(messages)) << when;
    for (const Trace& t : *traces) {
      ASSERT_EQ(t.messages.size(), 1u);
      ASSERT_EQ(t.recipients.size(), 1u);
      EXPECT_EQ(t.recipients[0].status, "sent");
    }
  };
  check(store_.get(), "right after");
  auto count = store_->CountLines();
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, 4u * messages);
  store_.reset();
  // A day built in memory is one file, its index inline; the day of a batch's last line has
  // its index in a side file.
  const std::set<int> through_files = {3, 5, 7, 11, 12};
  for (int d = 0; d <= 12; ++d) {
    const std::string day = std::to_string(DayOf(kNoon + d * kDayUs));
    EXPECT_TRUE(std::filesystem::exists(dir_ / "days" / (day + ".db"))) << day;
    EXPECT_EQ(std::filesystem::exists(dir_ / "days" / (day + ".fts.db")),
              through_files.count(d) != 0)
        << day;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "days" / (day + ".db.tmp"))) << day;
  }
  auto reader = OpenStore(false, /*read_only=*/true);
  check(reader.get(), "read-only");
  reader.reset();
  store_ = OpenStore(/*behind=*/true, /*read_only=*/false, /*durable=*/!import);
  check(store_.get(), "reopened");  // nothing indexed or correlated twice on opening
}

INSTANTIATE_TEST_SUITE_P(CollectorAndImport, SparseDaysTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Import" : "Collector";
                         });

// An import whose new day cannot be written (here a directory where its temp file goes): the error
// comes out of the store, no trace claims the day's lost lines, and importing them again stores,
// indexes and correlates them once.
TEST_F(StoreTest, FailedWriteOfANewDayLosesNothingSilently) {
  StoreOptions options;
  options.dir = dir_.string();
  options.correlate_behind = true;
  options.durable = false;
  options.behind_depth = 4;
  auto opened = Store::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = std::move(*opened);
  constexpr int64_t kDayUs = 86400LL * 1000000;
  // One message on day 0 (new, built in memory: not the batch's last day), one on day 1.
  std::vector<LineRecord> lines;
  uint64_t offset = 0;
  for (int d : {0, 1}) {
    const std::string qid = d == 0 ? "5A5A5A5A50" : "5A5A5A5A51";
    const std::string n = std::to_string(d);
    std::vector<std::string> raws = {
        "Nov 15 12:00:00 mx postfix/pickup[11]: " + qid + ": uid=1000 from=<u" + n +
            "@example.org>",
        "Nov 15 12:00:01 mx postfix/local[13]: " + qid + ": to=<lost" + n +
            "@example.org>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
            "(delivered to mailbox)",
        "Nov 15 12:00:01 mx postfix/qmgr[12]: " + qid + ": removed"};
    for (LineRecord& r : FileLines("mx", 9, kNoon + d * kDayUs, raws)) {
      r.offset += offset;
      lines.push_back(std::move(r));
    }
    offset = lines.back().offset + lines.back().raw.size() + 1;
  }
  const std::string day0 = std::to_string(DayOf(kNoon));
  const auto blocker = dir_ / "days" / (day0 + ".db.tmp");
  std::filesystem::create_directories(blocker);
  auto appended = store_->Append(lines);
  ASSERT_TRUE(appended.ok()) << appended.status();  // written behind: the error comes later
  absl::Status flushed = store_->Flush();
  EXPECT_FALSE(flushed.ok()) << "the failed write of day " << day0 << " went unreported";
  EXPECT_FALSE(std::filesystem::exists(dir_ / "days" / (day0 + ".db")));
  EXPECT_TRUE(absl::IsNotFound(store_->GetTrace("5A5A5A5A50").status()))
      << "a trace claims lines that were never written";
  // The import again, once the disk is fine.
  std::filesystem::remove(blocker);
  appended = store_->Append(lines);
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ(appended->stored, 3u);  // day 0's lines; day 1's were stored
  EXPECT_EQ(appended->duplicates, 3u);
  ASSERT_TRUE(store_->Flush().ok());
  for (const char* qid : {"5A5A5A5A50", "5A5A5A5A51"}) {
    auto trace = store_->GetTrace(qid);
    ASSERT_TRUE(trace.ok()) << qid << ": " << trace.status();
    EXPECT_EQ(trace->messages.size(), 1u) << qid;
    ASSERT_EQ(trace->recipients.size(), 1u) << qid;
    EXPECT_EQ(trace->recipients[0].status, "sent") << qid;
  }
  EXPECT_EQ(CountWord(store_.get(), "removed"), 2u);
  auto traces = store_->TracesIn(INT64_MIN, INT64_MAX);
  ASSERT_TRUE(traces.ok()) << traces.status();
  EXPECT_EQ(traces->size(), 2u);
}

// A day written whole is one file. A side file of the same day left by an earlier one (a
// crash between a day's two files, or a removed partition's) is removed with the write, not
// taken for the day's index: the day is searched through its own, also after reopening.
TEST_F(StoreTest, DayWrittenWholeRemovesAStaleSideFile) {
  constexpr int64_t kDayUs = 86400LL * 1000000;
  const std::string day0 = std::to_string(DayOf(kNoon));
  const auto stale = dir_ / "days" / (day0 + ".fts.db");
  store_ = OpenStore(/*behind=*/true);
  {
    std::ofstream out(stale, std::ios::binary);
    out << "left over: not an index of this day";
  }
  // Day 0 is not the batch's last day: built in memory and written whole.
  std::vector<LineRecord> lines = FileLines(
      "mx", 3, kNoon, {"Nov 15 12:00:00 mx postfix/anvil[7]: statistics: platypusgate rate"});
  for (LineRecord& r :
       FileLines("mx", 3, kNoon + kDayUs, {"Nov 16 12:00:00 mx postfix/anvil[7]: statistics"})) {
    r.offset += 100;
    lines.push_back(std::move(r));
  }
  auto appended = store_->Append(lines);
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ(appended->stored, 2u);
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "days" / (day0 + ".db")));
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_EQ(CountWord(store_.get(), "platypusgate"), 1u);
  store_.reset();
  store_ = OpenStore(/*behind=*/true);
  EXPECT_EQ(CountWord(store_.get(), "platypusgate"), 1u);
  EXPECT_EQ(CountWord(store_.get(), "statistics"), 2u);
}

// A new partition has no index of queue IDs: a message's lines come from the full-text
// index, and only its own host's lines of that queue ID within its lifetime.
TEST_F(StoreTest, MessageLinesAreThoseOfItsQueueIdOnItsHost) {
  store_ = OpenStore(/*behind=*/true);
  ASSERT_TRUE(
      store_
          ->Append(FileLines(
              "dmz", 1, kNoon,
              {"Nov 15 12:00:00 dmz postfix/smtpd[1]: 4AB12C: client=a[192.0.2.1]",
               "Nov 15 12:00:01 dmz postfix/qmgr[2]: 4AB12C: from=<a@example.org>, size=9, "
               "nrcpt=1 (queue active)",
               "Nov 15 12:00:02 dmz postfix/smtp[3]: 5CD34E: to=<b@example.org>, "
               "relay=mx[192.0.2.9]"
               ":25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as "
               "4AB12C)",
               "Nov 15 12:00:03 dmz postfix/smtp[3]: 4AB12C: to=<c@example.org>, relay=x[192.0.2.8]"
               ":25, delay=2, delays=0/0/0/2, dsn=2.0.0, status=sent (250 ok)",
               "Nov 15 12:00:04 dmz postfix/qmgr[2]: 4AB12C: removed"}))
          .ok());
  ASSERT_TRUE(
      store_
          ->Append(FileLines("mx", 2, kNoon,
                             {"Nov 15 12:00:00 mx postfix/smtpd[1]: 4AB12C: client=dmz[192.0.2.2]",
                              "Nov 15 12:00:01 mx postfix/qmgr[2]: 4AB12C: removed"}))
          .ok());
  auto view = store_->MessageAt("dmz", "4AB12C", kNoon + 1000000);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(view->has_value());
  auto lines = store_->MessageLines((*view)->message);
  ASSERT_TRUE(lines.ok()) << lines.status();
  std::vector<int64_t> seconds;
  for (const StoredLine& line : *lines) {
    EXPECT_EQ(line.host, "dmz");
    seconds.push_back((line.time_us - kNoon) / 1000000);
  }
  EXPECT_THAT(seconds, ElementsAre(0, 1, 3, 4));
}

TEST_F(StoreTest, TraceFollowsRelayHopAndBounceAcrossHostsInAnyOrder) {
  auto dmz = FileLines(
      "dmz", 10, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 4F1A2B3C4D: "
       "client=mail.partner.example[198.51.100.20]",
       "Nov 15 12:00:01 dmz postfix/cleanup[12]: 4F1A2B3C4D: message-id=<m1@partner.example>",
       "Nov 15 12:00:02 dmz postfix/qmgr[13]: 4F1A2B3C4D: from=<carol@partner.example>, size=2048, "
       "nrcpt=1 (queue active)",
       "Nov 15 12:00:03 dmz postfix/smtp[14]: 4F1A2B3C4D: to=<bob@example.test>, "
       "relay=mx.example.test[192.0.2.3]:25, delay=3, delays=2/0/0.5/0.5, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 9E8D7C6B5A)",
       "Nov 15 12:00:04 dmz postfix/qmgr[13]: 4F1A2B3C4D: removed"});
  // The receiving host logs a second before the sender's "sent" (clock skew).
  auto mx = FileLines(
      "mx", 20, kNoon + 2000000,
      {"Nov 15 12:00:02 mx postfix/smtpd[21]: 9E8D7C6B5A: client=dmz.example.test[192.0.2.2]",
       "Nov 15 12:00:03 mx postfix/cleanup[22]: 9E8D7C6B5A: message-id=<m1@partner.example>",
       "Nov 15 12:00:04 mx postfix/qmgr[23]: 9E8D7C6B5A: from=<carol@partner.example>, size=2300, "
       "nrcpt=1 (queue active)",
       "Nov 15 12:00:05 mx postfix/local[24]: 9E8D7C6B5A: to=<bob@example.test>, relay=local, "
       "delay=1, delays=0.5/0/0/0.5, dsn=5.1.1, status=bounced (unknown user: \"bob\")",
       "Nov 15 12:00:06 mx postfix/bounce[25]: 9E8D7C6B5A: sender non-delivery notification: "
       "0A1B2C3D4E",
       "Nov 15 12:00:06 mx postfix/cleanup[22]: 0A1B2C3D4E: message-id=<bounce1@mx.example.test>",
       "Nov 15 12:00:07 mx postfix/qmgr[23]: 0A1B2C3D4E: from=<>, size=3000, nrcpt=1 (queue "
       "active)",
       "Nov 15 12:00:07 mx postfix/qmgr[23]: 9E8D7C6B5A: removed"});
  // Internal host first, then the DMZ: order must not matter.
  ASSERT_TRUE(store_->Append(mx).ok());
  ASSERT_TRUE(store_->Append(dmz).ok());
  auto trace = store_->GetTrace("<m1@partner.example>");
  ASSERT_TRUE(trace.ok()) << trace.status();
  std::vector<std::string> qids;
  for (const MessageInfo& m : trace->messages) qids.push_back(m.host + ":" + m.queue_id);
  EXPECT_THAT(qids, UnorderedElementsAre("dmz:4F1A2B3C4D", "mx:9E8D7C6B5A", "mx:0A1B2C3D4E"));
  std::vector<std::string> links;
  for (const LinkInfo& l : trace->links) links.push_back(l.kind);
  EXPECT_THAT(links, UnorderedElementsAre("relay", "bounce"));
  std::vector<std::string> statuses;
  for (const RecipientInfo& r : trace->recipients) statuses.push_back(r.recipient + "=" + r.status);
  EXPECT_THAT(statuses, ElementsAre("bob@example.test=sent", "bob@example.test=bounced"));
  // The same trace from the other end, after a restart.
  store_ = OpenStore();
  auto again = store_->GetTrace("9E8D7C6B5A");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, trace->id);
}

// Several Postfix hosts on loopback addresses of one machine (a lab, or instances side by
// side): a relay to 127.0.0.3 named mx.example.test goes to host mx, while a content filter on
// 127.0.0.1:10024 stays a re-injection on the same host.
TEST_F(StoreTest, LoopbackRelayToAnotherHostIsARelayAndAFilterStaysOnItsHost) {
  auto dmz = FileLines(
      "dmz", 40, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 1A1A1A1A1A: client=ext[127.0.0.4]",
       "Nov 15 12:00:01 dmz postfix/qmgr[13]: 1A1A1A1A1A: from=<carol@partner.example>, "
       "size=2048, nrcpt=1 (queue active)",
       "Nov 15 12:00:02 dmz postfix/smtp[14]: 1A1A1A1A1A: to=<bob@example.test>, "
       "relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 2B2B2B2B2B)",
       "Nov 15 12:00:02 dmz postfix/qmgr[13]: 1A1A1A1A1A: removed",
       "Nov 15 12:00:02 dmz postfix/smtpd[15]: 2B2B2B2B2B: client=localhost[127.0.0.1]",
       "Nov 15 12:00:02 dmz postfix/qmgr[13]: 2B2B2B2B2B: from=<carol@partner.example>, "
       "size=2100, nrcpt=1 (queue active)",
       "Nov 15 12:00:03 dmz postfix/smtp[14]: 2B2B2B2B2B: to=<bob@example.test>, "
       "relay=mx.example.test[127.0.0.3]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 3C3C3C3C3C)",
       "Nov 15 12:00:03 dmz postfix/qmgr[13]: 2B2B2B2B2B: removed"});
  auto mx = FileLines(
      "mx", 41, kNoon + 3000000,
      {"Nov 15 12:00:03 mx postfix/smtpd[21]: 3C3C3C3C3C: client=dmz.example.test[127.0.0.2]",
       "Nov 15 12:00:03 mx postfix/qmgr[23]: 3C3C3C3C3C: from=<carol@partner.example>, "
       "size=2300, nrcpt=1 (queue active)",
       "Nov 15 12:00:04 mx postfix/local[24]: 3C3C3C3C3C: to=<bob@example.test>, relay=local, "
       "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)",
       "Nov 15 12:00:04 mx postfix/qmgr[23]: 3C3C3C3C3C: removed"});
  ASSERT_TRUE(store_->Append(mx).ok());
  ASSERT_TRUE(store_->Append(dmz).ok());
  auto trace = store_->GetTrace("1A1A1A1A1A");
  ASSERT_TRUE(trace.ok()) << trace.status();
  std::vector<std::string> qids;
  for (const MessageInfo& m : trace->messages) qids.push_back(m.host + ":" + m.queue_id);
  EXPECT_THAT(qids, UnorderedElementsAre("dmz:1A1A1A1A1A", "dmz:2B2B2B2B2B", "mx:3C3C3C3C3C"));
  std::vector<std::string> links;
  for (const LinkInfo& l : trace->links) links.push_back(l.kind);
  EXPECT_THAT(links, UnorderedElementsAre("reinject", "relay"));
}

TEST_F(StoreTest, ReusedQueueIdOnAnotherHostIsNotLinked) {
  auto a = FileLines("alpha", 30, kNoon,
                     {"Nov 15 12:00:00 alpha postfix/smtpd[1]: BABABABABA: client=x[192.0.2.9]",
                      "Nov 15 12:00:01 alpha postfix/smtp[2]: BABABABABA: to=<u@far.example>, "
                      "relay=mx.far.example[203.0.113.1]:25, delay=1, delays=0.5/0/0.2/0.3, "
                      "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as CACACACACA)"});
  auto b = FileLines("beta", 31, kNoon + 1000000,
                     {"Nov 15 12:00:01 beta postfix/smtpd[1]: CACACACACA: client=y[192.0.2.10]"});
  ASSERT_TRUE(store_->Append(a).ok());
  ASSERT_TRUE(store_->Append(b).ok());
  auto trace = store_->GetTrace("BABABABABA");
  ASSERT_TRUE(trace.ok());
  EXPECT_EQ(trace->messages.size(), 1u);
}

TEST_F(StoreTest, QueueIdReuseOnOneHostStartsANewInstance) {
  auto lines = FileLines("mx", 40, kNoon,
                         {"Nov 15 12:00:00 mx postfix/pickup[1]: 1111122222: uid=0 from=<root>",
                          "Nov 15 12:00:01 mx postfix/qmgr[2]: 1111122222: removed",
                          "Nov 15 12:00:02 mx postfix/pickup[1]: 1111122222: uid=0 from=<daemon>",
                          "Nov 15 12:00:03 mx postfix/qmgr[2]: 1111122222: removed"});
  ASSERT_TRUE(store_->Append(lines).ok());
  SearchQuery q;
  q.queue_id = "1111122222";
  auto result = store_->Search(q);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->total, 4u);
  auto traces = store_->TracesIn(kNoon - 1, kNoon + 10000000);
  ASSERT_TRUE(traces.ok()) << traces.status();
  EXPECT_EQ(traces->size(), 2u);
}

// The kinds of the links of the trace of `key`, and its instances as host:queue-id.
std::pair<std::vector<std::string>, std::vector<std::string>> LinksAndHops(Store* store,
                                                                           const std::string& key) {
  std::vector<std::string> links, hops;
  auto trace = store->GetTrace(key);
  EXPECT_TRUE(trace.ok()) << trace.status();
  if (!trace.ok()) return {links, hops};
  for (const LinkInfo& l : trace->links) links.push_back(l.kind);
  for (const MessageInfo& m : trace->messages) hops.push_back(m.host + ":" + m.queue_id);
  return {links, hops};
}

// The dmz's log before mx's: its relay to mx.example.test[127.0.0.3] names no host yet, and a
// loopback address no host claims is no verdict (it was taken for a content filter on the dmz
// and never linked). It waits, and links when mx's instance appears; the filter on
// 127.0.0.1:10024, answering like any Postfix, is a re-injection because the queue ID comes
// back into the dmz through smtpd.
TEST_F(StoreTest, LoopbackRelayWaitsForAHostWhoseLogComesLater) {
  auto dmz = FileLines(
      "dmz", 40, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 1A1A1A1A1A: client=ext[127.0.0.4]",
       "Nov 15 12:00:01 dmz postfix/qmgr[13]: 1A1A1A1A1A: from=<carol@partner.example>, "
       "size=2048, nrcpt=1 (queue active)",
       "Nov 15 12:00:02 dmz postfix/smtp[14]: 1A1A1A1A1A: to=<bob@example.test>, "
       "relay=127.0.0.1[127.0.0.1]:10024, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 2B2B2B2B2B)",
       "Nov 15 12:00:03 dmz postfix/qmgr[13]: 1A1A1A1A1A: removed",
       "Nov 15 12:00:04 dmz postfix/smtpd[15]: 2B2B2B2B2B: client=localhost[127.0.0.1]",
       "Nov 15 12:00:05 dmz postfix/qmgr[13]: 2B2B2B2B2B: from=<carol@partner.example>, "
       "size=2100, nrcpt=1 (queue active)",
       "Nov 15 12:00:06 dmz postfix/smtp[14]: 2B2B2B2B2B: to=<bob@example.test>, "
       "relay=mx.example.test[127.0.0.3]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 3C3C3C3C3C)",
       "Nov 15 12:00:07 dmz postfix/qmgr[13]: 2B2B2B2B2B: removed"});
  auto mx = FileLines(
      "mx", 41, kNoon + 5000000,
      {"Nov 15 12:00:05 mx postfix/smtpd[21]: 3C3C3C3C3C: client=dmz.example.test[127.0.0.2]",
       "Nov 15 12:00:06 mx postfix/qmgr[23]: 3C3C3C3C3C: from=<carol@partner.example>, "
       "size=2300, nrcpt=1 (queue active)",
       "Nov 15 12:00:07 mx postfix/local[24]: 3C3C3C3C3C: to=<bob@example.test>, relay=local, "
       "delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)",
       "Nov 15 12:00:08 mx postfix/qmgr[23]: 3C3C3C3C3C: removed"});
  ASSERT_TRUE(store_->Append(dmz).ok());
  ASSERT_TRUE(store_->Append(mx).ok());
  auto [links, hops] = LinksAndHops(store_.get(), "1A1A1A1A1A");
  EXPECT_THAT(hops, UnorderedElementsAre("dmz:1A1A1A1A1A", "dmz:2B2B2B2B2B", "mx:3C3C3C3C3C"));
  EXPECT_THAT(links, UnorderedElementsAre("reinject", "relay"));
}

// A foreign MTA on a loopback address (a tunnel to a smarthost): its "queued as" is an
// external hop. The same queue ID on the sender's host is not its re-injection unless it
// arrived there through smtpd with a Message-ID that does not contradict the sender's.
TEST_F(StoreTest, LoopbackHopToAForeignMtaIsNotAReinjection) {
  auto dmz = FileLines(
      "dmz", 50, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 4D4D4D4D4D: client=mx[127.0.0.3]",
       "Nov 15 12:00:01 dmz postfix/cleanup[12]: 4D4D4D4D4D: message-id=<out1@example.test>",
       "Nov 15 12:00:02 dmz postfix/smtp[14]: 4D4D4D4D4D: to=<al@partner.test>, "
       "relay=mta.partner.test[127.0.0.4]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 5E5E5E5E5E)",
       "Nov 15 12:00:03 dmz postfix/qmgr[13]: 4D4D4D4D4D: removed",
       // Two later instances with the ID the foreign MTA named: by pickup, and by smtpd but
       // another message.
       "Nov 15 12:00:04 dmz postfix/pickup[16]: 5E5E5E5E5E: uid=0 from=<root>",
       "Nov 15 12:00:05 dmz postfix/qmgr[13]: 5E5E5E5E5E: removed",
       "Nov 15 12:00:06 dmz postfix/smtpd[11]: 5E5E5E5E5E: client=mx[127.0.0.3]",
       "Nov 15 12:00:07 dmz postfix/cleanup[12]: 5E5E5E5E5E: message-id=<other@example.test>"});
  ASSERT_TRUE(store_->Append(dmz).ok());
  auto [links, hops] = LinksAndHops(store_.get(), "4D4D4D4D4D");
  EXPECT_THAT(hops, ElementsAre("dmz:4D4D4D4D4D"));
  EXPECT_THAT(links, ElementsAre());
  auto trace = store_->GetTrace("4D4D4D4D4D");
  ASSERT_TRUE(trace.ok());
  ASSERT_EQ(trace->recipients.size(), 1u);
  EXPECT_EQ(trace->recipients[0].status, "sent");
  EXPECT_EQ(trace->recipients[0].next_queue_id, "5E5E5E5E5E");
}

// Names and addresses declared after both sides are stored (an agent announcing its addresses,
// or an alias added later): the pending hop is tried again when the next batch is correlated.
TEST_F(StoreTest, DeclaredAddressLinksAPendingHopAtTheNextBatch) {
  auto dmz = FileLines(
      "dmz", 60, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 6F6F6F6F6F: client=ext[198.51.100.7]",
       "Nov 15 12:00:01 dmz postfix/smtp[14]: 6F6F6F6F6F: to=<bob@example.test>, "
       "relay=gw.internal.test[127.0.0.9]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
       "(250 2.0.0 Ok: queued as 7A7A7A7A7A)",
       "Nov 15 12:00:02 dmz postfix/qmgr[13]: 6F6F6F6F6F: removed"});
  auto mx = FileLines("mx", 61, kNoon + 1000000,
                      {"Nov 15 12:00:01 mx postfix/smtpd[21]: 7A7A7A7A7A: client=dmz[127.0.0.2]",
                       "Nov 15 12:00:02 mx postfix/qmgr[23]: 7A7A7A7A7A: removed"});
  ASSERT_TRUE(store_->Append(dmz).ok());
  ASSERT_TRUE(store_->Append(mx).ok());
  EXPECT_THAT(LinksAndHops(store_.get(), "6F6F6F6F6F").second, ElementsAre("dmz:6F6F6F6F6F"));
  ASSERT_TRUE(store_->AddHostNames("mx", {"127.0.0.9"}).ok());
  auto later = FileLines("dmz", 62, kNoon + 60000000,
                         {"Nov 15 12:01:00 dmz postfix/anvil[17]: statistics: max connection "
                          "rate 1/60s for (smtp:198.51.100.7) at Nov 15 12:00:00"});
  ASSERT_TRUE(store_->Append(later).ok());
  auto [links, hops] = LinksAndHops(store_.get(), "6F6F6F6F6F");
  EXPECT_THAT(hops, UnorderedElementsAre("dmz:6F6F6F6F6F", "mx:7A7A7A7A7A"));
  EXPECT_THAT(links, ElementsAre("relay"));
}

// A re-injection decided by the loopback rule is undone when another host claims the address
// and holds the queue ID: the hop went there, the ID came back into the sender by chance.
TEST_F(StoreTest, LoopbackReinjectionGivesWayWhenAnotherHostClaimsTheAddress) {
  auto dmz =
      FileLines("dmz", 70, kNoon,
                {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 8B8B8B8B8B: client=ext[198.51.100.7]",
                 "Nov 15 12:00:01 dmz postfix/smtp[14]: 8B8B8B8B8B: to=<bob@example.test>, "
                 "relay=127.0.0.3[127.0.0.3]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent "
                 "(250 2.0.0 Ok: queued as 9C9C9C9C9C)",
                 "Nov 15 12:00:02 dmz postfix/qmgr[13]: 8B8B8B8B8B: removed",
                 "Nov 15 12:00:02 dmz postfix/smtpd[11]: 9C9C9C9C9C: client=localhost[127.0.0.1]"});
  ASSERT_TRUE(store_->Append(dmz).ok());
  EXPECT_THAT(LinksAndHops(store_.get(), "8B8B8B8B8B").first, ElementsAre("reinject"));
  auto mx = FileLines("mx", 71, kNoon + 1000000,
                      {"Nov 15 12:00:01 mx postfix/smtpd[21]: 9C9C9C9C9C: client=dmz[127.0.0.2]",
                       "Nov 15 12:00:02 mx postfix/qmgr[23]: 9C9C9C9C9C: removed"});
  ASSERT_TRUE(store_->Append(mx).ok());
  ASSERT_TRUE(store_->AddHostNames("mx", {"127.0.0.3"}).ok());
  auto later = FileLines("mx", 72, kNoon + 60000000,
                         {"Nov 15 12:01:00 mx postfix/anvil[27]: statistics: max connection "
                          "rate 1/60s for (smtp:127.0.0.2) at Nov 15 12:00:00"});
  ASSERT_TRUE(store_->Append(later).ok());
  auto [links, hops] = LinksAndHops(store_.get(), "8B8B8B8B8B");
  EXPECT_THAT(hops, UnorderedElementsAre("dmz:8B8B8B8B8B", "mx:9C9C9C9C9C"));
  EXPECT_THAT(links, ElementsAre("relay"));
}

// A message refused by a header/body check or a milter in cleanup: no queue manager sees it
// and nothing logs `removed`, so the reject (or discard) line is its last, and the only one
// with its envelope. The instance ends there, keeps sender and recipient, and a later message
// with the same queue ID is another instance.
TEST_F(StoreTest, CleanupRejectAndDiscardEndTheMessageAndKeepItsEnvelope) {
  auto lines = FileLines(
      "mx", 80, kNoon,
      {"Nov 15 12:00:00 mx postfix/smtpd[11]: 2A2A2A2A2A: client=unknown[192.0.2.7]",
       "Nov 15 12:00:01 mx postfix/cleanup[12]: 2A2A2A2A2A: reject: header Subject: win big "
       "from unknown[192.0.2.7]; from=<spam@bad.test> to=<bob@example.test> proto=ESMTP "
       "helo=<bad.test>: 5.7.1 No thanks",
       "Nov 15 12:00:02 mx postfix/smtpd[11]: 3B3B3B3B3B: client=ok[192.0.2.8]",
       "Nov 15 12:00:03 mx postfix/cleanup[12]: 3B3B3B3B3B: message-id=<m1@ok.test>",
       "Nov 15 12:00:04 mx postfix/cleanup[12]: 3B3B3B3B3B: milter-reject: END-OF-MESSAGE from "
       "ok[192.0.2.8]: 5.7.1 Spam message rejected; from=<ann@ok.test> to=<carl@example.test> "
       "proto=ESMTP helo=<ok>",
       "Nov 15 12:00:05 mx postfix/smtpd[11]: 4C4C4C4C4C: client=ok[192.0.2.8]",
       "Nov 15 12:00:06 mx postfix/cleanup[12]: 4C4C4C4C4C: discard: body casino from "
       "ok[192.0.2.8]; from=<ann@ok.test> to=<dora@example.test> proto=ESMTP helo=<ok>: "
       "gambling",
       // The rejected message's queue ID again: a new message, not a line of the old one.
       "Nov 15 12:00:07 mx postfix/cleanup[12]: 2A2A2A2A2A: message-id=<m2@ok.test>",
       "Nov 15 12:00:08 mx postfix/qmgr[13]: 2A2A2A2A2A: from=<eve@ok.test>, size=9, nrcpt=1 "
       "(queue active)"});
  ASSERT_TRUE(store_->Append(lines).ok());
  struct Want {
    const char* queue_id;
    int64_t at;
    const char* disposition;
    const char* sender;
    const char* recipient;
    const char* reason;
  };
  for (const Want& w :
       {Want{"2A2A2A2A2A", 1, "rejected", "spam@bad.test", "bob@example.test", "No thanks"},
        Want{"3B3B3B3B3B", 4, "rejected", "ann@ok.test", "carl@example.test",
             "Spam message rejected"},
        Want{"4C4C4C4C4C", 6, "discarded", "ann@ok.test", "dora@example.test", "gambling"}}) {
    auto view = store_->MessageAt("mx", w.queue_id, kNoon + w.at * 1000000);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_TRUE(view->has_value()) << w.queue_id;
    const MessageInfo& m = (*view)->message;
    EXPECT_EQ(m.disposition, w.disposition) << w.queue_id;
    ASSERT_TRUE(m.end_us.has_value())
        << w.queue_id << ": a cleanup " << w.disposition << " is final, not \"still queued\"";
    EXPECT_EQ(*m.end_us, kNoon + w.at * 1000000) << w.queue_id;
    EXPECT_TRUE(m.has_sender) << w.queue_id;
    EXPECT_EQ(m.sender, w.sender) << w.queue_id;
    ASSERT_EQ((*view)->recipients.size(), 1u) << w.queue_id;
    EXPECT_EQ((*view)->recipients[0].recipient, w.recipient);
    EXPECT_EQ((*view)->recipients[0].status, w.disposition);
    EXPECT_EQ((*view)->recipients[0].reply, w.reason);
  }
  auto later = store_->MessageAt("mx", "2A2A2A2A2A", kNoon + 8 * 1000000);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_TRUE(later->has_value());
  EXPECT_EQ((*later)->message.first_us, kNoon + 7 * 1000000);
  EXPECT_EQ((*later)->message.sender, "eve@ok.test");
  EXPECT_EQ((*later)->message.disposition, "");
}

// A reused queue ID whose earlier message logged `removed` before `status=expired`: the late
// expiry starts an orphan instance (it is after the removal), and the next message's client=
// must not continue it -- a start line always starts a new instance, so the two messages stay
// apart (1 in 27,289 held-out messages were merged this way).
TEST_F(StoreTest, ClientLineStartsANewInstanceAfterAnExpiryLoggedAfterRemoved) {
  auto lines = FileLines(
      "dmz", 90, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 5D5D5D5D5D: client=a[192.0.2.1]",
       "Nov 15 12:00:01 dmz postfix/qmgr[13]: 5D5D5D5D5D: from=<a@one.test>, size=9, nrcpt=1 "
       "(queue active)",
       "Nov 15 12:00:02 dmz postfix/qmgr[13]: 5D5D5D5D5D: removed",
       "Nov 15 12:00:03 dmz postfix/qmgr[13]: 5D5D5D5D5D: from=<a@one.test>, status=expired, "
       "returned to sender",
       "Nov 15 12:00:04 dmz postfix/smtpd[11]: 5D5D5D5D5D: client=b[192.0.2.2]",
       "Nov 15 12:00:05 dmz postfix/qmgr[13]: 5D5D5D5D5D: from=<b@two.test>, size=9, nrcpt=1 "
       "(queue active)",
       "Nov 15 12:00:06 dmz postfix/smtp[14]: 5D5D5D5D5D: to=<x@far.test>, relay=far[192.0.2.9]"
       ":25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)",
       "Nov 15 12:00:07 dmz postfix/qmgr[13]: 5D5D5D5D5D: removed"});
  ASSERT_TRUE(store_->Append(lines).ok());
  auto second = store_->MessageAt("dmz", "5D5D5D5D5D", kNoon + 5 * 1000000);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(second->has_value());
  const MessageInfo& m = (*second)->message;
  EXPECT_EQ(m.first_us, kNoon + 4 * 1000000);
  EXPECT_EQ(m.client, "b[192.0.2.2]");
  EXPECT_EQ(m.sender, "b@two.test");
  EXPECT_EQ(m.disposition, "") << "the first message's expiry is not the second's";
  ASSERT_EQ((*second)->recipients.size(), 1u);
  EXPECT_EQ((*second)->recipients[0].status, "sent");
  auto first = store_->MessageAt("dmz", "5D5D5D5D5D", kNoon + 1 * 1000000);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->message.client, "a[192.0.2.1]");
  EXPECT_EQ((*first)->message.sender, "a@one.test");
  EXPECT_EQ((*first)->message.disposition, "expired") << "the late expiry is the first's";
  // And in the other order of files (the later file stored first): the earlier message's
  // client= is not pulled into the later message either.
  auto traces = store_->TracesIn(kNoon - 1, kNoon + 10 * 1000000);
  ASSERT_TRUE(traces.ok()) << traces.status();
  for (const Trace& t : *traces) {
    std::set<std::string> clients;
    for (const MessageInfo& i : t.messages) {
      if (!i.client.empty()) clients.insert(i.client);
    }
    EXPECT_LE(clients.size(), 1u) << "two clients' messages in one trace";
  }
}

// Files of one host stored newest first: the older message's client= is earlier than the
// newer instance's first line, which has a client= of its own; it must not extend it.
TEST_F(StoreTest, OlderFileStoredLaterKeepsAReusedQueueIdsMessagesApart) {
  auto older = FileLines(
      "dmz", 91, kNoon,
      {"Nov 15 12:00:00 dmz postfix/smtpd[11]: 6E6E6E6E6E: client=a[192.0.2.1]",
       "Nov 15 12:00:01 dmz postfix/qmgr[13]: 6E6E6E6E6E: from=<a@one.test>, size=9, nrcpt=1 "
       "(queue active)",
       "Nov 15 12:00:02 dmz postfix/qmgr[13]: 6E6E6E6E6E: removed"});
  auto newer = FileLines(
      "dmz", 92, kNoon + 10 * 1000000,
      {"Nov 15 12:00:10 dmz postfix/smtpd[11]: 6E6E6E6E6E: client=b[192.0.2.2]",
       "Nov 15 12:00:11 dmz postfix/qmgr[13]: 6E6E6E6E6E: from=<b@two.test>, size=9, nrcpt=1 "
       "(queue active)",
       "Nov 15 12:00:12 dmz postfix/qmgr[13]: 6E6E6E6E6E: removed"});
  ASSERT_TRUE(store_->Append(newer).ok());
  ASSERT_TRUE(store_->Append(older).ok());
  for (int64_t at : {1, 11}) {
    auto view = store_->MessageAt("dmz", "6E6E6E6E6E", kNoon + at * 1000000);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_TRUE(view->has_value());
    EXPECT_EQ((*view)->message.first_us, kNoon + (at - 1) * 1000000) << at;
    EXPECT_EQ((*view)->message.sender, at == 1 ? "a@one.test" : "b@two.test") << at;
  }
}

}  // namespace
}  // namespace maillens::store
