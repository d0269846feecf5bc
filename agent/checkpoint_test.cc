#include "agent/checkpoint.h"

#include <string>

#include "agent/test_files.h"
#include "gtest/gtest.h"

namespace maillens::agent {
namespace {

using testing::ReadWhole;
using testing::ScratchDir;
using testing::WriteWhole;

Checkpoint Sample() {
  Checkpoint cp;
  CheckpointPath live;
  live.live_path = "/var/log/mail log\nwith \"odd\" name\\";
  live.floor_ns = 1700000000123456789;
  CheckpointFile done;
  done.key = {2049, 1234, 0x7fffffffffffffffULL};
  done.path = "/var/log/mail.log.1.gz";
  done.offset = 99;
  done.sequence = 3;
  done.mtime_ns = 17;
  done.done = true;
  CheckpointFile active;
  active.key = {2049, 5678, 0x0123456789abcdefULL};
  active.path = std::string("/var/log/\xff\x01 weird", 18);
  active.offset = 1ULL << 40;
  active.sequence = 123456789;
  active.mtime_ns = -5;  // before 1970: still round-trips
  live.files = {done, active};
  cp.paths.push_back(live);
  CheckpointPath empty;
  empty.live_path = "/var/log/maillog";
  cp.paths.push_back(empty);
  return cp;
}

TEST(CheckpointFormatTest, RoundTripsOddPathsAndLargeNumbers) {
  Checkpoint cp = Sample();
  std::string text = SerializeCheckpoint(cp);
  EXPECT_EQ(text.rfind("maillens-tailer-checkpoint 1\n", 0), 0u) << text;
  absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(*parsed == cp);
}

TEST(CheckpointFormatTest, EmptyCheckpointRoundTrips) {
  absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(SerializeCheckpoint(Checkpoint()));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->paths.empty());
}

TEST(CheckpointFormatTest, EveryDamageIsDataLoss) {
  std::string text = SerializeCheckpoint(Sample());
  // Any single flipped byte, and any truncation, is caught.
  for (size_t i = 0; i < text.size(); ++i) {
    std::string damaged = text;
    damaged[i] ^= 0x01;
    absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(damaged);
    if (parsed.ok()) {
      // Only a flip the checksum cannot see could pass; there must be none.
      ADD_FAILURE() << "flip at " << i << " accepted";
    } else {
      EXPECT_TRUE(absl::IsDataLoss(parsed.status())) << parsed.status();
    }
  }
  for (size_t len = 0; len < text.size(); ++len) {
    EXPECT_FALSE(ParseCheckpoint(text.substr(0, len)).ok()) << len;
  }
}

TEST(CheckpointFormatTest, AnotherVersionIsRefused) {
  std::string text = SerializeCheckpoint(Sample());
  std::string v2 = "maillens-tailer-checkpoint 2" + text.substr(text.find('\n'));
  // Re-seal it so only the version differs.
  std::string body = v2.substr(0, v2.rfind("end "));
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char sum[32];
  std::snprintf(sum, sizeof(sum), "end %016llx\n", static_cast<unsigned long long>(h));
  absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(body + sum);
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(absl::IsDataLoss(parsed.status()));
  EXPECT_NE(parsed.status().message().find("header"), std::string::npos) << parsed.status();
}

TEST(CheckpointStoreTest, NoCheckpointYetIsNotAnError) {
  ScratchDir dir("cp_none");
  auto store = CheckpointStore::Open(dir / "state/nested", true);
  ASSERT_TRUE(store.ok()) << store.status();
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->has_value());
}

TEST(CheckpointStoreTest, SaveThenLoad) {
  ScratchDir dir("cp_save");
  {
    auto store = CheckpointStore::Open(dir.path(), true);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Save(Sample()).ok());
  }
  auto store = CheckpointStore::Open(dir.path(), true);
  ASSERT_TRUE(store.ok()) << store.status();
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_TRUE(**loaded == Sample());
}

TEST(CheckpointStoreTest, CrashBetweenTempWriteAndRenameKeepsTheOldCheckpoint) {
  ScratchDir dir("cp_crash");
  Checkpoint old_cp = Sample();
  Checkpoint new_cp = Sample();
  new_cp.paths[0].files[1].offset += 1000;
  {
    auto store = CheckpointStore::Open(dir.path(), true);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Save(old_cp).ok());
    ASSERT_TRUE((*store)->WriteTemp(new_cp).ok());
    // "crash": the store goes away without CommitTemp.
  }
  {
    auto store = CheckpointStore::Open(dir.path(), true);
    ASSERT_TRUE(store.ok());
    auto loaded = (*store)->Load();
    ASSERT_TRUE(loaded.ok() && loaded->has_value());
    EXPECT_TRUE(**loaded == old_cp);
    // A temp file cut short by the crash is harmless too: the next save replaces it.
    WriteWhole((*store)->path() + ".tmp", "maillens-tailer-checkpoint 1\nlive 0 /x");
    ASSERT_TRUE((*store)->Save(new_cp).ok());
  }
  auto store = CheckpointStore::Open(dir.path(), true);
  ASSERT_TRUE(store.ok());
  auto loaded = (*store)->Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_TRUE(**loaded == new_cp);
}

TEST(CheckpointStoreTest, DamagedCheckpointIsReportedAndMovedAside) {
  ScratchDir dir("cp_damaged");
  auto store = CheckpointStore::Open(dir.path(), true);
  ASSERT_TRUE(store.ok());
  std::string text = SerializeCheckpoint(Sample());
  text[text.size() / 2] ^= 1;
  WriteWhole((*store)->path(), text);
  auto loaded = (*store)->Load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_TRUE(absl::IsDataLoss(loaded.status())) << loaded.status();
  EXPECT_EQ(ReadWhole((*store)->path() + ".corrupt"), text);
  // Out of the way: the next load sees no checkpoint rather than the same damage again.
  auto again = (*store)->Load();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TEST(CheckpointStoreTest, OneStorePerDirectory) {
  ScratchDir dir("cp_lock");
  auto first = CheckpointStore::Open(dir.path(), false);
  ASSERT_TRUE(first.ok());
  auto second = CheckpointStore::Open(dir.path(), false);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  first->reset();
  EXPECT_TRUE(CheckpointStore::Open(dir.path(), false).ok());
}

}  // namespace
}  // namespace maillens::agent
