// The importer's counts after a failure: only lines whose transaction committed (and whose
// new day reached the disk) are counted as stored.
#include "store/importer.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "store/retention.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::store {
namespace {

constexpr int kLines = 2000;
constexpr int kDays = 20;

class ImporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "maillens_importer_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    data_ = dir_ + "/data";
    log_ = dir_ + "/mail.log";
    std::ofstream out(log_);
    for (int i = 0; i < kLines; ++i) {
      out << absl::StrFormat(
          "2026-01-%02dT12:%02d:%02d.000000+00:00 mx postfix/smtpd[%d]: connect from "
          "c%d.example[192.0.2.1]\n",
          1 + i * kDays / kLines, (i / 60) % 60, i % 60, 100 + i, i);
    }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Lines in the store, read from its day files.
  uint64_t LinesOnDisk() {
    uint64_t total = 0;
    for (int64_t day : HotDays(data_)) {
      auto db =
          Database::Open(absl::StrCat(data_, "/days/", day, ".db"), Database::Mode::kReadOnly);
      EXPECT_TRUE(db.ok()) << db.status();
      if (!db.ok()) continue;
      auto count = (*db)->Prepare("SELECT count(*) FROM events");
      EXPECT_TRUE(count.ok());
      EXPECT_TRUE(count->Step().ok());
      total += count->ColumnInt(0);
    }
    return total;
  }

  std::string dir_, data_, log_;
};

// The third write of new days (behind the Appends, as an import does it) fails: the lines of
// those days were counted by their Append but never reached the disk. The outcome is an
// error, and its count is what the store holds, not what the Appends said.
TEST_F(ImporterTest, AFailedWriteOfNewDaysIsNotCountedAsStored) {
  StoreOptions store_options;
  store_options.dir = data_;
  store_options.durable = false;
  store_options.correlate_behind = true;
  store_options.behind_depth = 4;
  std::atomic<int> day_jobs{0};
  store_options.on_behind_job = [&](std::string_view job) {
    if (job != "days" || ++day_jobs != 3) return;
    // A directory where each day's temporary file goes: its write fails, for root too. The
    // importing thread may be writing one of those temp files (the day it goes on with) just
    // then: that day is left to succeed, the others fail.
    for (int d = 1; d <= kDays; ++d) {
      std::error_code busy;
      std::filesystem::create_directories(absl::StrFormat("%s/days/202601%02d.db.tmp", data_, d),
                                          busy);
    }
  };
  auto store = Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  ImportOptions options;
  options.batch_lines = 250;  // two and a half days: days built in memory, written behind
  options.data_dir = data_;
  ImportOutcome outcome = Import(store->get(), log_, options);
  ASSERT_FALSE(outcome.status.ok());
  ASSERT_TRUE(outcome.stored_known);
  const uint64_t on_disk = LinesOnDisk();
  // It stopped at the error, with lines read but not stored.
  EXPECT_LE(outcome.stats.read, static_cast<uint64_t>(kLines));
  EXPECT_GT(outcome.stats.read, on_disk);
  EXPECT_GT(on_disk, 0u);
  EXPECT_LT(on_disk, static_cast<uint64_t>(kLines));
  EXPECT_EQ(outcome.stats.stored, on_disk);

  // Once the fault is gone, importing again completes the file and counts only the rest.
  for (int d = 1; d <= kDays; ++d) {
    std::filesystem::remove(absl::StrFormat("%s/days/202601%02d.db.tmp", data_, d));
  }
  store->reset();
  store_options.on_behind_job = nullptr;
  store = Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  outcome = Import(store->get(), log_, options);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.stats.stored, kLines - on_disk);
  EXPECT_EQ(outcome.stats.duplicates, on_disk);
  EXPECT_EQ(LinesOnDisk(), static_cast<uint64_t>(kLines));
}

// A file already partly in the store, then a failure: only the lines this import added count.
TEST_F(ImporterTest, AfterAFailureTheCountLeavesOutLinesStoredBefore) {
  StoreOptions store_options;
  store_options.dir = data_;
  store_options.durable = false;
  store_options.correlate_behind = true;
  store_options.behind_depth = 4;
  ImportOptions options;
  options.batch_lines = 250;
  options.data_dir = data_;
  {
    // The first half of the file, imported whole.
    std::ifstream in(log_);
    std::ofstream half(dir_ + "/half.log");
    std::string line;
    for (int i = 0; i < kLines / 2 && std::getline(in, line); ++i) half << line << "\n";
  }
  // Same first line, so the same file to the store (core::FileFingerprint).
  auto store = Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  ImportOutcome first = Import(store->get(), dir_ + "/half.log", options);
  ASSERT_TRUE(first.status.ok()) << first.status;
  ASSERT_EQ(first.stats.stored, static_cast<uint64_t>(kLines / 2));
  store->reset();

  std::atomic<int> day_jobs{0};
  store_options.on_behind_job = [&](std::string_view job) {
    if (job != "days" || ++day_jobs != 2) return;
    for (int d = 1; d <= kDays; ++d) {  // as above: a temp file being written is left alone
      std::error_code busy;
      std::filesystem::create_directories(absl::StrFormat("%s/days/202601%02d.db.tmp", data_, d),
                                          busy);
    }
  };
  store = Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  ImportOutcome outcome = Import(store->get(), log_, options);
  ASSERT_FALSE(outcome.status.ok());
  ASSERT_TRUE(outcome.stored_known);
  EXPECT_EQ(outcome.stats.stored, LinesOnDisk() - kLines / 2);
}

// Dovecot's own log file: imported as --format dovecot under the host named, refused without
// one; a maillog given as Dovecot's is refused, and Dovecot's log given as a maillog is named.
TEST_F(ImporterTest, DovecotLogNeedsItsHostAndItsFormat) {
  const std::string dovecot = dir_ + "/dovecot.log";
  {
    std::ofstream out(dovecot);
    out << "Jan  2 12:00:01 lmtp(bob@example.test)<7><Kk1Ll2Mm3Nn4Oo5Pp6Qq7R>: Info: "
           "msgid=<m@x>: saved mail to INBOX\n"
        << "Jan  2 12:00:01 lmtp(7): Info: Disconnect from local: Logged out (state=READY)\n";
  }
  StoreOptions store_options;
  store_options.dir = data_;
  auto store = Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  ImportOptions options;
  options.year = 2026;
  options.check_maillog = true;
  options.data_dir = data_;
  options.format = ImportFormat::kDovecot;

  ImportOutcome outcome = Import(store->get(), dovecot, options);
  EXPECT_TRUE(absl::IsInvalidArgument(outcome.status)) << outcome.status;
  EXPECT_TRUE(outcome.refused);

  options.host = "mx";
  outcome = Import(store->get(), log_, options);
  EXPECT_TRUE(absl::IsFailedPrecondition(outcome.status)) << outcome.status;
  EXPECT_NE(outcome.status.message().find("are not Dovecot's log lines"), std::string::npos)
      << outcome.status;
  EXPECT_EQ(outcome.stats.stored, 0u);

  options.format = ImportFormat::kMaillog;
  options.host.clear();
  outcome = Import(store->get(), dovecot, options);
  EXPECT_NE(outcome.status.message().find("import it with --format dovecot --host NAME"),
            std::string::npos)
      << outcome.status;

  options.format = ImportFormat::kDovecot;
  options.host = "mx";
  outcome = Import(store->get(), dovecot, options);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(outcome.stats.stored, 2u);
  EXPECT_EQ(outcome.stats.unparsed, 1u);  // the disconnect; the delivery is read
  EXPECT_TRUE((*store)->KnowsHost("mx"));
}

}  // namespace
}  // namespace maillens::store
