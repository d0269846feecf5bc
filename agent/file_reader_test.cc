#include "agent/file_reader.h"

#include <string>
#include <vector>

#include "agent/discovery.h"
#include "agent/file_identity.h"
#include "agent/test_files.h"
#include "core/file_fingerprint.h"
#include "gtest/gtest.h"

namespace maillens::agent {
namespace {

using testing::Append;
using testing::Gzip;
using testing::ScratchDir;
using testing::WriteWhole;

std::vector<ReadLine> ReadAvailable(FileReader* reader, bool flush) {
  std::vector<ReadLine> lines;
  while (true) {
    ReadLine line;
    auto next = reader->Read(flush, &line);
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || *next != FileReader::Next::kLine) break;
    lines.push_back(std::move(line));
  }
  return lines;
}

TEST(FileReaderTest, WaitsForTheRestOfALineThenHandsItOut) {
  ScratchDir dir("reader_partial");
  std::string path = dir / "mail.log";
  Append(path, "one\ntw");
  auto reader = FileReader::Open(path, 1024);
  ASSERT_TRUE(reader.ok());
  auto lines = ReadAvailable(reader->get(), false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].raw, "one");
  EXPECT_EQ(lines[0].end_offset, 4u);
  EXPECT_EQ((*reader)->position(), 4u);
  Append(path, "o\nthree");
  lines = ReadAvailable(reader->get(), false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].raw, "two");
  EXPECT_EQ(lines[0].offset, 4u);
  // The file will not grow any more: its last line comes without '\n'.
  lines = ReadAvailable(reader->get(), true);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].raw, "three");
  EXPECT_FALSE(lines[0].newline);
  EXPECT_EQ(lines[0].end_offset, 13u);
}

TEST(FileReaderTest, LongLinesAreCutAndCounted) {
  ScratchDir dir("reader_long");
  std::string path = dir / "mail.log";
  std::string big(300000, 'x');
  Append(path, "a\n" + big + "\nb\n");
  auto reader = FileReader::Open(path, 1000);
  ASSERT_TRUE(reader.ok());
  auto lines = ReadAvailable(reader->get(), false);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1].raw, std::string(1000, 'x'));
  EXPECT_EQ(lines[1].dropped_bytes, big.size() - 1000);
  EXPECT_EQ(lines[1].end_offset, 2 + big.size() + 1);
  EXPECT_EQ(lines[2].raw, "b");
  EXPECT_EQ(lines[2].offset, 2 + big.size() + 1);
}

TEST(FileReaderTest, GzipOffsetsAreTheOriginalOnes) {
  ScratchDir dir("reader_gz");
  std::string path = dir / "mail.log.1";
  std::string content;
  for (int i = 0; i < 20000; ++i) content += "line " + std::to_string(i) + "\n";
  content += "tail";
  WriteWhole(path, content);
  Gzip(path);
  auto reader = FileReader::Open(path + ".gz", 1024);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE((*reader)->compressed());
  auto head = (*reader)->ReadHead();
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->Fingerprint(), core::FileFingerprint(content));
  uint64_t offset = content.find("line 15000\n");
  ASSERT_TRUE((*reader)->Seek(offset).ok());
  auto lines = ReadAvailable(reader->get(), false);
  ASSERT_EQ(lines.size(), 5001u);  // the stream ended: "tail" comes without '\n'
  EXPECT_EQ(lines[0].raw, "line 15000");
  EXPECT_EQ(lines[0].offset, offset);
  EXPECT_EQ(lines.back().raw, "tail");
  EXPECT_FALSE(lines.back().newline);
  ReadLine line;
  EXPECT_EQ(*(*reader)->Read(false, &line), FileReader::Next::kEnd);
  // Backwards works too, and past the end is OutOfRange.
  ASSERT_TRUE((*reader)->Seek(0).ok());
  lines = ReadAvailable(reader->get(), false);
  EXPECT_EQ(lines.size(), 20001u);
  EXPECT_TRUE(absl::IsOutOfRange((*reader)->Seek(content.size() + 1)));
}

TEST(FileReaderTest, CutGzipIsDataLossOnlyWhenFinal) {
  ScratchDir dir("reader_gzcut");
  std::string path = dir / "mail.log.1";
  std::string content;
  for (int i = 0; i < 5000; ++i) content += "line " + std::to_string(i) + " abcdefgh\n";
  WriteWhole(path, content);
  Gzip(path);
  std::string gz = testing::ReadWhole(path + ".gz");
  WriteWhole(path + ".gz", gz.substr(0, gz.size() / 2));
  auto reader = FileReader::Open(path + ".gz", 1024);
  ASSERT_TRUE(reader.ok());
  auto lines = ReadAvailable(reader->get(), false);  // as far as it goes; maybe still written
  EXPECT_GT(lines.size(), 0u);
  ReadLine line;
  auto next = (*reader)->Read(true, &line);
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(absl::IsDataLoss(next.status()));
}

TEST(FileReaderTest, SkipToEndCountsLinesAndStopsBeforeAPartialOne) {
  ScratchDir dir("reader_skip");
  std::string path = dir / "mail.log";
  Append(path, "a\nb\nc\npart");
  auto reader = FileReader::Open(path, 1024);
  ASSERT_TRUE(reader.ok());
  auto skipped = (*reader)->SkipToEnd();
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 3u);
  EXPECT_EQ((*reader)->position(), 6u);
  Append(path, "ial\n");
  auto lines = ReadAvailable(reader->get(), false);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].raw, "partial");
}

TEST(FileIdentityTest, HeadsAndFingerprintsMatchTheCollectors) {
  EXPECT_FALSE(HeadOf("no newline yet").complete);
  Head h = HeadOf("first line\nsecond\n");
  EXPECT_TRUE(h.complete);
  EXPECT_EQ(h.bytes, "first line");
  EXPECT_EQ(h.Fingerprint(), core::FileFingerprint("first line"));
  std::string long_line(5000, 'q');
  Head l = HeadOf(long_line);
  EXPECT_TRUE(l.complete);
  EXPECT_EQ(l.Fingerprint(), core::FileFingerprint(long_line + "\nmore"));
}

TEST(FileIdentityTest, CompareHeads) {
  Head before = HeadOf("Jan 1 first\n");
  EXPECT_EQ(CompareHeads(before, HeadOf("Jan 1 first\nmore\n")), HeadMatch::kSame);
  EXPECT_EQ(CompareHeads(before, HeadOf("Jan 1 fi")), HeadMatch::kPrefix);
  EXPECT_EQ(CompareHeads(before, HeadOf("")), HeadMatch::kPrefix);
  EXPECT_EQ(CompareHeads(before, HeadOf("Jan 2 other\n")), HeadMatch::kDifferent);
  EXPECT_EQ(CompareHeads(before, HeadOf("Jan 2")), HeadMatch::kDifferent);
  Head partial = HeadOf("Jan 1 fi");
  EXPECT_EQ(CompareHeads(partial, HeadOf("Jan 1 first\n")), HeadMatch::kSame);
  EXPECT_EQ(CompareHeads(partial, HeadOf("Jan 1 f")), HeadMatch::kPrefix);
  EXPECT_EQ(CompareHeads(partial, HeadOf("Feb")), HeadMatch::kDifferent);
}

TEST(DiscoveryTest, SiblingNames) {
  EXPECT_EQ(SiblingSuffix("mail.log", "mail.log.1").value(), "1");
  EXPECT_EQ(SiblingSuffix("mail.log", "mail.log.2.gz").value(), "2.gz");
  EXPECT_EQ(SiblingSuffix("maillog", "maillog-20240101").value(), "20240101");
  EXPECT_EQ(SiblingSuffix("maillog", "maillog.20240101-101010.gz").value(), "20240101-101010.gz");
  EXPECT_FALSE(SiblingSuffix("mail.log", "mail.log"));
  EXPECT_FALSE(SiblingSuffix("mail.log", "mail.log."));
  EXPECT_FALSE(SiblingSuffix("mail.log", "mail.logx"));
  EXPECT_FALSE(SiblingSuffix("maillog", "mail.log.1"));
}

TEST(DiscoveryTest, GlobKeepsRotatedFilesOutOfTheLiveSet) {
  ScratchDir dir("discovery");
  for (const char* name : {"mail.log", "mail.log.1", "mail.log.2.gz", "mail.err",
                           "mail.err-20240101", "maillog", "maillog.20240101-101010"}) {
    Append(dir / name, "x\n");
  }
  std::vector<std::string> live = ExpandLivePaths({dir / "mail*", dir / "absent.log"});
  std::vector<std::string> want = {dir / "absent.log", dir / "mail.err", dir / "mail.log",
                                   dir / "maillog"};
  EXPECT_EQ(live, want);
  std::vector<std::string> siblings;
  for (const Sibling& s : ListSiblings(dir / "mail.log", live)) siblings.push_back(s.path);
  std::sort(siblings.begin(), siblings.end());
  EXPECT_EQ(siblings, (std::vector<std::string>{dir / "mail.log.1", dir / "mail.log.2.gz"}));
  EXPECT_TRUE(MatchesAnyPattern(dir / "mail.log", {dir / "mail*"}));
  EXPECT_FALSE(MatchesAnyPattern(dir / "sub/mail.log", {dir / "mail*"}));
}

}  // namespace
}  // namespace maillens::agent
