#include "agent/tailer.h"

#include <string>
#include <vector>

#include "agent/test_files.h"
#include "core/file_fingerprint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maillens::agent {
namespace {

using testing::Append;
using testing::CopyTruncate;
using ::testing::ElementsAre;
using testing::Gzip;
using ::testing::IsEmpty;
using testing::Remove;
using testing::Rename;
using testing::ScratchDir;
using testing::Truncate;
using testing::WriteWhole;

std::vector<std::string> Raw(const std::vector<TailedLine>& lines) {
  std::vector<std::string> out;
  for (const TailedLine& line : lines) out.push_back(line.raw);
  return out;
}

class TailerTest : public ::testing::Test {
 protected:
  TailerTest() : dir_(::testing::UnitTest::GetInstance()->current_test_info()->name()) {
    options_.paths = {Live()};
    options_.state_dir = dir_ / "state";
    options_.rotate_wait = absl::ZeroDuration();
    options_.sync_checkpoints = false;
    options_.clock = [this] { return now_; };
    options_.on_problem = [this](const absl::Status& status) { problems_.push_back(status); };
  }

  std::string Live() const { return dir_ / "mail.log"; }
  std::string At(const std::string& name) const { return dir_ / name; }

  void OpenTailer() {
    tailer_.reset();
    auto tailer = Tailer::Open(options_);
    ASSERT_TRUE(tailer.ok()) << tailer.status();
    tailer_ = std::move(*tailer);
  }

  std::vector<TailedLine> Poll(size_t max_lines = 1000, size_t max_bytes = 1 << 20) {
    auto lines = tailer_->Poll(max_lines, max_bytes);
    EXPECT_TRUE(lines.ok()) << lines.status();
    return lines.ok() ? *lines : std::vector<TailedLine>();
  }

  // Polls until nothing more comes.
  std::vector<TailedLine> Drain() {
    std::vector<TailedLine> all;
    for (int empty = 0; empty < 2;) {
      std::vector<TailedLine> got = Poll();
      if (got.empty()) {
        ++empty;
      } else {
        empty = 0;
      }
      all.insert(all.end(), got.begin(), got.end());
    }
    return all;
  }

  // Polls until nothing more comes, acknowledging everything.
  std::vector<std::string> Ship() {
    std::vector<TailedLine> lines = Drain();
    EXPECT_TRUE(tailer_->AckLines(lines).ok());
    return Raw(lines);
  }

  ScratchDir dir_;
  TailerOptions options_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::vector<absl::Status> problems_;
  std::unique_ptr<Tailer> tailer_;
};

TEST_F(TailerTest, ReadsFromTheBeginningAndNeverHandsOutAPartialLine) {
  Append(Live(), "one\ntwo\nthr");
  OpenTailer();
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("one", "two"));
  EXPECT_EQ(lines[0].offset, 0u);
  EXPECT_EQ(lines[0].sequence, 0u);
  EXPECT_EQ(lines[1].offset, 4u);
  EXPECT_EQ(lines[1].end_offset, 8u);
  EXPECT_EQ(lines[1].sequence, 1u);
  EXPECT_EQ(lines[1].path, Live());
  // The identity the collector keys lines by: the same hash of the first line.
  EXPECT_EQ(lines[0].file.fingerprint, core::FileFingerprint("one"));
  EXPECT_EQ(lines[0].read_time, now_);
  Append(Live(), "ee\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("three"));
  EXPECT_THAT(problems_, IsEmpty());
}

TEST_F(TailerTest, AFirstLineStillBeingWrittenWaitsForItsNewline) {
  Append(Live(), "Jan  1 00:00:00 host postfix/smtpd[1]: conn");
  OpenTailer();
  EXPECT_THAT(Drain(), IsEmpty());
  Append(Live(), "ect from x\nsecond\n");
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines),
              ElementsAre("Jan  1 00:00:00 host postfix/smtpd[1]: connect from x", "second"));
  EXPECT_EQ(lines[0].file.fingerprint,
            core::FileFingerprint("Jan  1 00:00:00 host postfix/smtpd[1]: connect from x"));
}

TEST_F(TailerTest, StartAtEndSkipsWhatIsThereAndCountsIt) {
  Append(Live(), "old1\nold2\nold3\npart");
  options_.start_at_end = true;
  OpenTailer();
  EXPECT_THAT(Drain(), IsEmpty());
  Append(Live(), "ial\nnew\n");
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("partial", "new"));
  EXPECT_EQ(lines[0].sequence, 3u);  // line numbers stay line numbers
  EXPECT_EQ(lines[0].offset, 15u);
  // The starting point was saved at once: a crash before any ack loses nothing written since.
  Append(Live(), "after\n");
  options_.start_at_end = true;
  OpenTailer();
  EXPECT_THAT(Raw(Drain()), ElementsAre("partial", "new", "after"));
}

TEST_F(TailerTest, RenameAndCreateFinishesTheOldFileFirst) {
  Append(Live(), "a1\na2\n");
  OpenTailer();
  EXPECT_THAT(Ship(), ElementsAre("a1", "a2"));
  Append(Live(), "a3\n");
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "b1\n");
  Append(At("mail.log.1"), "a4\n");  // the writer had not reopened yet
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("a3", "a4", "b1"));
  EXPECT_EQ(lines[0].path, At("mail.log.1"));
  EXPECT_EQ(lines[1].sequence, 3u);
  EXPECT_EQ(lines[2].sequence, 0u);
  EXPECT_EQ(lines[2].offset, 0u);
  EXPECT_NE(lines[2].file, lines[0].file);
  EXPECT_EQ(tailer_->stats().rotations, 1u);
  ASSERT_TRUE(tailer_->AckLines(lines).ok());
  Drain();
  EXPECT_EQ(tailer_->stats().open_files, 1u);  // the old file was let go once acknowledged
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, AnEmptyRotatedFileIsLetGo) {
  WriteWhole(Live(), "");
  OpenTailer();
  EXPECT_THAT(Drain(), IsEmpty());
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "b1\n");
  EXPECT_THAT(Ship(), ElementsAre("b1"));
  Drain();
  EXPECT_EQ(tailer_->stats().open_files, 1u);
}

TEST_F(TailerTest, RotatedFileKeepsItsLastLineUntilRotateWaitPasses) {
  options_.rotate_wait = absl::Seconds(5);
  Append(Live(), "a1\na2 without newline");
  OpenTailer();
  EXPECT_THAT(Raw(Drain()), ElementsAre("a1"));
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "b1\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("b1"));
  now_ += absl::Seconds(3);
  Append(At("mail.log.1"), " yet");  // a late write restarts the wait
  EXPECT_THAT(Drain(), IsEmpty());
  now_ += absl::Seconds(3);
  EXPECT_THAT(Drain(), IsEmpty());
  now_ += absl::Seconds(3);
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("a2 without newline yet"));
  EXPECT_FALSE(lines[0].newline);
}

TEST_F(TailerTest, CopyTruncateReadsTheUnreadRestFromTheCopy) {
  Append(Live(), "a1\na2\na3\n");
  OpenTailer();
  std::vector<TailedLine> first = Poll(1);
  ASSERT_THAT(Raw(first), ElementsAre("a1"));
  CopyTruncate(Live(), At("mail.log.1"));
  Append(Live(), "b1\n");
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("a2", "a3", "b1"));
  EXPECT_EQ(lines[0].file, first[0].file);  // same identity, read from the copy
  EXPECT_EQ(lines[0].path, At("mail.log.1"));
  EXPECT_EQ(lines[0].offset, 3u);
  EXPECT_EQ(lines[1].sequence, 2u);
  EXPECT_EQ(lines[2].file.inode, first[0].file.inode);  // same inode, new content
  EXPECT_NE(lines[2].file.fingerprint, first[0].file.fingerprint);
  EXPECT_EQ(lines[2].sequence, 0u);
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
  EXPECT_EQ(tailer_->stats().truncations, 1u);
}

TEST_F(TailerTest, CopyTruncateNoticedAfterTheFileGrewPastTheOldOffset) {
  Append(Live(), "a1\na2\n");
  OpenTailer();
  ASSERT_THAT(Raw(Poll(1)), ElementsAre("a1"));
  CopyTruncate(Live(), At("mail.log.1"));
  Append(Live(), "b1 is a much longer line than the old ones\nb2\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("a2", "b1 is a much longer line than the old ones", "b2"));
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, CopyTruncateWhoseCopyWasCompressedAlready) {
  Append(Live(), "a1\na2\n");
  OpenTailer();
  ASSERT_THAT(Raw(Poll(1)), ElementsAre("a1"));
  CopyTruncate(Live(), At("mail.log.1"));
  Gzip(At("mail.log.1"));
  Append(Live(), "b1\n");
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("a2", "b1"));
  EXPECT_EQ(lines[0].path, At("mail.log.1.gz"));
}

TEST_F(TailerTest, TruncationWithoutACopyIsAGap) {
  Append(Live(), "a1\na2\na3\n");
  OpenTailer();
  std::vector<TailedLine> first = Poll(1);
  ASSERT_THAT(Raw(first), ElementsAre("a1"));
  ASSERT_TRUE(tailer_->AckLines(first).ok());
  Truncate(Live());
  Append(Live(), "b1\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("b1"));
  std::vector<Gap> gaps = tailer_->TakeGaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].file, first[0].file);
  EXPECT_EQ(gaps[0].from_offset, 3u);
  EXPECT_EQ(gaps[0].from_sequence, 1u);
  EXPECT_FALSE(gaps[0].to_offset.has_value());
  EXPECT_EQ(gaps[0].reason, GapReason::kTruncated);
  EXPECT_EQ(gaps[0].time, now_);
}

TEST_F(TailerTest, TheGapOfATruncatedFileCoversWhatWasInFlight) {
  Append(Live(), "a1\na2\na3\n");
  OpenTailer();
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("a1", "a2", "a3"));
  ASSERT_TRUE(tailer_->Ack(lines[0].file, lines[0].end_offset, 1).ok());
  Truncate(Live());
  Append(Live(), "b1\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("b1"));
  // a2 and a3 are in flight: if the connection breaks they cannot be sent again.
  std::vector<Gap> gaps = tailer_->TakeGaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].from_offset, 3u);
  EXPECT_EQ(gaps[0].from_sequence, 1u);
  tailer_->Rewind();
  EXPECT_THAT(Raw(Drain()), ElementsAre("b1"));
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
  // The old content is given up; a restart neither looks for it nor reports it again.
  OpenTailer();
  EXPECT_THAT(Raw(Drain()), ElementsAre("b1"));
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, PostfixLogrotateWhileRunning) {
  std::string live = At("maillog");
  options_.paths = {live};
  Append(live, "a1\na2\n");
  OpenTailer();
  ASSERT_THAT(Raw(Poll(1)), ElementsAre("a1"));
  Rename(live, live + ".20240101-101010");
  Gzip(live + ".20240101-101010");
  Append(live, "b1\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("a2", "b1"));
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, PostfixLogrotateWhileDownResumesInsideTheGzip) {
  std::string live = At("maillog");
  options_.paths = {live};
  std::string content;
  for (int i = 0; i < 3000; ++i) content += "a" + std::to_string(i) + "\n";
  Append(live, content);
  OpenTailer();
  std::vector<TailedLine> first = Poll(1000);
  ASSERT_EQ(first.size(), 1000u);
  ASSERT_TRUE(tailer_->AckLines(first).ok());
  tailer_.reset();
  Rename(live, live + ".20240101-101010");
  Gzip(live + ".20240101-101010");
  Append(live, "b1\n");
  OpenTailer();
  std::vector<TailedLine> lines = Drain();
  ASSERT_EQ(lines.size(), 2001u);
  EXPECT_EQ(lines[0].raw, "a1000");
  EXPECT_EQ(lines[0].file, first[0].file);  // the identity the checkpoint named
  EXPECT_EQ(lines[0].offset, first.back().end_offset);
  EXPECT_EQ(lines[0].sequence, 1000u);
  EXPECT_EQ(lines[0].path, live + ".20240101-101010.gz");
  EXPECT_EQ(lines[1999].raw, "a2999");
  EXPECT_EQ(lines[2000].raw, "b1");
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, AHeldFileAndItsCompressedCopyAreReadOnce) {
  // Only a line without '\n' when rotated: the held file has no identity yet when its .gz
  // copy is found beside it; once both are known to be the same content, one is dropped.
  std::string live = At("maillog");
  options_.paths = {live};
  Append(live, "only line, never finished");
  OpenTailer();
  EXPECT_THAT(Drain(), IsEmpty());
  Rename(live, live + ".20240101-101010");
  Gzip(live + ".20240101-101010");
  Append(live, "b1\n");
  std::vector<std::string> lines = Ship();
  EXPECT_THAT(lines, ::testing::UnorderedElementsAre("only line, never finished", "b1"));
  EXPECT_THAT(Drain(), IsEmpty());  // lets go of what is finished and acknowledged
  EXPECT_EQ(tailer_->stats().open_files, 1u);
  OpenTailer();
  EXPECT_THAT(Drain(), IsEmpty());
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, RenameWhileDownIsFoundByInode) {
  Append(Live(), "a1\na2\n");
  OpenTailer();
  ASSERT_TRUE(tailer_->AckLines(Poll(1)).ok());
  tailer_.reset();
  Append(Live(), "a3\n");
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "b1\n");
  OpenTailer();
  EXPECT_THAT(Raw(Drain()), ElementsAre("a2", "a3", "b1"));
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, SeveralRotationsBetweenTwoLooksLoseNothing) {
  Append(Live(), "a1\n");
  OpenTailer();
  EXPECT_THAT(Ship(), ElementsAre("a1"));
  Append(Live(), "a2\n");
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "b1\nb2\n");
  Rename(At("mail.log.1"), At("mail.log.2"));
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "c1\n");
  EXPECT_THAT(Ship(), ElementsAre("a2", "b1", "b2", "c1"));
  // The same while down, with compression of the oldest on top.
  tailer_.reset();
  Append(Live(), "c2\n");
  Rename(At("mail.log.2"), At("mail.log.3"));
  Gzip(At("mail.log.3"));
  Rename(At("mail.log.1"), At("mail.log.2"));
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "d1\n");
  Rename(At("mail.log.2"), At("mail.log.3"));
  Rename(At("mail.log.1"), At("mail.log.2"));
  Rename(Live(), At("mail.log.1"));
  Append(Live(), "e1\n");
  OpenTailer();
  EXPECT_THAT(Ship(), ElementsAre("c2", "d1", "e1"));
  EXPECT_THAT(tailer_->TakeGaps(), IsEmpty());
}

TEST_F(TailerTest, DeletedFileIsReadToItsEndThenTheNewOne) {
  Append(Live(), "a1\na2\n");
  OpenTailer();
  ASSERT_THAT(Raw(Poll(1)), ElementsAre("a1"));
  Remove(Live());
  Append(Live(), "b1\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("a2", "b1"));
}

TEST_F(TailerTest, DeletedWhileDownBeforeItWasReadIsAGap) {
  Append(Live(), "a1\na2\n");
  OpenTailer();
  std::vector<TailedLine> first = Poll(1);
  ASSERT_TRUE(tailer_->AckLines(first).ok());
  tailer_.reset();
  Remove(Live());
  Append(Live(), "b1\n");
  OpenTailer();
  EXPECT_THAT(Raw(Drain()), ElementsAre("b1"));
  std::vector<Gap> gaps = tailer_->TakeGaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].file, first[0].file);
  EXPECT_EQ(gaps[0].from_offset, 3u);
  EXPECT_EQ(gaps[0].from_sequence, 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::kMissing);
}

TEST_F(TailerTest, NewContentAtTheSameInodeIsANewFile) {
  // Inode reuse after delete + create shows as new content at the same device and inode;
  // rewriting the file in place while the tailer is down produces exactly that.
  Append(Live(), "old first line\nold2\n");
  OpenTailer();
  std::vector<TailedLine> old_lines = Drain();
  ASSERT_TRUE(tailer_->AckLines(old_lines).ok());
  tailer_.reset();
  Truncate(Live());
  Append(Live(), "new first line\nnew2\n");
  OpenTailer();
  std::vector<TailedLine> lines = Drain();
  ASSERT_THAT(Raw(lines), ElementsAre("new first line", "new2"));
  EXPECT_EQ(lines[0].file.inode, old_lines[0].file.inode);
  EXPECT_NE(lines[0].file, old_lines[0].file);
  EXPECT_EQ(lines[0].sequence, 0u);
  // Whatever the old content had after the acknowledged point is unknowable now.
  std::vector<Gap> gaps = tailer_->TakeGaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].file, old_lines[0].file);
  EXPECT_EQ(gaps[0].from_offset, old_lines.back().end_offset);
}

TEST_F(TailerTest, RealDeleteAndCreateWhileDownIsNeverMistakenForTheOldFile) {
  for (int round = 0; round < 20; ++round) {
    std::string tag = std::to_string(round);
    Append(Live(), "first " + tag + "\nsecond " + tag + "\n");
    OpenTailer();
    EXPECT_THAT(Ship(), ElementsAre("first " + tag, "second " + tag));
    tailer_.reset();
    Remove(Live());  // the next file may well get the same inode
  }
}

TEST_F(TailerTest, RestartResumesFromTheAcknowledgedLine) {
  Append(Live(), "l1\nl2\nl3\nl4\n");
  OpenTailer();
  std::vector<TailedLine> lines = Poll(3);
  ASSERT_THAT(Raw(lines), ElementsAre("l1", "l2", "l3"));
  ASSERT_TRUE(tailer_->Ack(lines[1].file, lines[1].end_offset, lines[1].sequence + 1).ok());
  OpenTailer();  // a crash: l3 was shipped but not acknowledged
  std::vector<TailedLine> again = Drain();
  ASSERT_THAT(Raw(again), ElementsAre("l3", "l4"));
  EXPECT_EQ(again[0].sequence, 2u);
  EXPECT_EQ(again[0].offset, lines[2].offset);
  EXPECT_EQ(again[0].file, lines[2].file);
}

TEST_F(TailerTest, RewindHandsOutTheUnacknowledgedAgain) {
  Append(Live(), "l1\nl2\nl3\n");
  OpenTailer();
  std::vector<TailedLine> lines = Drain();
  ASSERT_EQ(lines.size(), 3u);
  ASSERT_TRUE(tailer_->Ack(lines[0].file, lines[0].end_offset, 1).ok());
  tailer_->Rewind();
  std::vector<TailedLine> again = Drain();
  ASSERT_THAT(Raw(again), ElementsAre("l2", "l3"));
  EXPECT_EQ(again[0].sequence, 1u);
  // An ack that arrives after the rewind still counts, and what it covers is not sent again.
  tailer_->Rewind();
  ASSERT_TRUE(tailer_->Ack(lines[1].file, lines[1].end_offset, 2).ok());
  EXPECT_THAT(Raw(Drain()), ElementsAre("l3"));
}

TEST_F(TailerTest, AcksAreChecked) {
  Append(Live(), "l1\nl2\n");
  OpenTailer();
  std::vector<TailedLine> lines = Poll(1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::IsInvalidArgument(tailer_->Ack(lines[0].file, 6, 2)));
  FileKey other = lines[0].file;
  other.fingerprint ^= 1;
  EXPECT_TRUE(absl::IsNotFound(tailer_->Ack(other, 3, 1)));
  EXPECT_TRUE(tailer_->Ack(lines[0].file, 3, 1).ok());
  EXPECT_TRUE(tailer_->Ack(lines[0].file, 3, 1).ok());  // repeated
  EXPECT_TRUE(tailer_->Ack(lines[0].file, 0, 0).ok());  // older: ignored
  Checkpoint cp = tailer_->CheckpointState();
  ASSERT_EQ(cp.paths.size(), 1u);
  ASSERT_EQ(cp.paths[0].files.size(), 1u);
  EXPECT_EQ(cp.paths[0].files[0].offset, 3u);
  EXPECT_EQ(cp.paths[0].files[0].sequence, 1u);
}

TEST_F(TailerTest, TheCheckpointMovesOnlyOnAck) {
  Append(Live(), "l1\nl2\n");
  OpenTailer();
  ASSERT_EQ(Drain().size(), 2u);
  EXPECT_EQ(tailer_->CheckpointState().paths[0].files[0].offset, 0u);
  OpenTailer();
  EXPECT_EQ(Drain().size(), 2u);
}

TEST_F(TailerTest, LongLinesAreCutNotFatal) {
  options_.max_line_bytes = 100;
  Append(Live(), "short\n" + std::string(100000, 'x') + "\nafter\n");
  OpenTailer();
  std::vector<TailedLine> lines = Drain();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].raw, std::string(100, 'x'));
  EXPECT_EQ(lines[1].dropped_bytes, 99900u);
  EXPECT_EQ(lines[1].end_offset, 6u + 100001u);
  EXPECT_EQ(lines[2].raw, "after");
  EXPECT_EQ(tailer_->stats().cut_lines, 1u);
  EXPECT_EQ(tailer_->stats().dropped_bytes, 99900u);
}

TEST_F(TailerTest, PollRespectsItsBudget) {
  std::string content;
  for (int i = 0; i < 100; ++i) content += "line-" + std::to_string(i % 10) + "\n";  // 6 bytes
  content += std::string(5000, 'y') + "\n";
  Append(Live(), content);
  OpenTailer();
  EXPECT_EQ(Poll(7).size(), 7u);
  std::vector<TailedLine> by_bytes = Poll(1000, 20);
  EXPECT_EQ(by_bytes.size(), 3u);  // 18 bytes; a fourth would pass 20
  EXPECT_EQ(by_bytes[0].sequence, 7u);
  size_t total = 10;
  while (total < 100) total += Poll(1000, 60).size();
  EXPECT_EQ(total, 100u);
  std::vector<TailedLine> big = Poll(1000, 20);  // larger than the budget, but it must come
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0].raw.size(), 5000u);
}

TEST_F(TailerTest, DamagedCheckpointIsReportedAndEverythingIsReadAgain) {
  Append(Live(), "l1\nl2\n");
  OpenTailer();
  ASSERT_TRUE(tailer_->AckLines(Drain()).ok());
  tailer_.reset();
  WriteWhole(options_.state_dir + "/tailer.checkpoint", "maillens-tailer-checkpoint 1\ngarbage");
  options_.start_at_end = true;  // must not apply: skipping after damage could lose lines
  OpenTailer();
  EXPECT_THAT(Raw(Drain()), ElementsAre("l1", "l2"));
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_TRUE(absl::IsDataLoss(problems_[0])) << problems_[0];
  EXPECT_EQ(tailer_->stats().corrupt_checkpoints, 1u);
}

TEST_F(TailerTest, GlobPatternsAndFilesAppearingLater) {
  options_.paths = {At("*.log")};
  Append(At("a.log"), "a1\n");
  OpenTailer();
  EXPECT_THAT(Ship(), ElementsAre("a1"));
  Append(At("b.log"), "b1\n");  // appears later: read from its start
  Append(At("a.log.1"), "not live\n");
  EXPECT_THAT(Ship(), ElementsAre("b1"));
}

TEST_F(TailerTest, ASecondTailerOnTheSameStateIsRefused) {
  OpenTailer();
  auto second = Tailer::Open(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status()));
}

TEST_F(TailerTest, MissingLiveFileIsWaitedFor) {
  OpenTailer();
  EXPECT_THAT(Drain(), IsEmpty());
  Append(Live(), "late\n");
  EXPECT_THAT(Raw(Drain()), ElementsAre("late"));
}

}  // namespace
}  // namespace maillens::agent
