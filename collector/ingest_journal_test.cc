#include "collector/ingest_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace maillens::collector {
namespace {

// A fresh, empty directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "maillens_journal_XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string journal() const { return path_ + "/journal"; }

 private:
  std::string path_;
};

// Binary payloads derived from the seq, so that any record can be checked on its own: NUL and
// 0xff bytes, lengths from 0 to 299.
std::string PayloadFor(uint64_t seq) {
  std::string payload(seq % 300, '\0');
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>((seq * 131 + i * 7) & 0xff);
  }
  if (!payload.empty()) payload[0] = static_cast<char>(0xff);
  return payload;
}

std::unique_ptr<IngestJournal> OpenOrDie(const std::string& dir, uint64_t segment_bytes = 64 << 20,
                                         bool sync = true) {
  JournalOptions options;
  options.dir = dir;
  options.segment_bytes = segment_bytes;
  options.sync = sync;
  auto journal = IngestJournal::Open(options);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return journal.ok() ? std::move(*journal) : nullptr;
}

// Appends the records `first`..`last` with PayloadFor payloads, `batch` per Append.
void AppendRange(IngestJournal* journal, uint64_t first, uint64_t last, size_t batch = 1) {
  for (uint64_t seq = first; seq <= last;) {
    std::vector<std::string> owned;
    for (size_t i = 0; i < batch && seq <= last; ++i, ++seq) owned.push_back(PayloadFor(seq));
    std::vector<std::string_view> views(owned.begin(), owned.end());
    auto appended = journal->Append(views);
    ASSERT_TRUE(appended.ok()) << appended.status();
    ASSERT_EQ(*appended, seq - 1);
  }
}

std::vector<JournalRecord> ReadAll(IngestJournal* journal, uint64_t after_seq = 0) {
  std::vector<JournalRecord> records;
  absl::Status read = journal->Read(after_seq, SIZE_MAX, &records);
  EXPECT_TRUE(read.ok()) << read;
  return records;
}

// Checks that `records` are exactly first..last with their PayloadFor payloads.
void ExpectRange(const std::vector<JournalRecord>& records, uint64_t first, uint64_t last) {
  ASSERT_EQ(records.size(), last + 1 - first);
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_EQ(records[i].seq, first + i);
    ASSERT_EQ(records[i].payload, PayloadFor(first + i)) << "seq " << first + i;
  }
}

// The segment files in `dir`, sorted (= by first seq).
std::vector<std::string> Segments(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".journal")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

uint64_t FirstSeqOf(const std::string& segment_name) {
  return std::stoull(segment_name.substr(0, 20));
}

uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

void ModifyByte(const std::string& path, uint64_t offset, char x) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  c ^= x;
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(IngestJournalTest, RoundTripBinaryEmptyAndMany) {
  TempDir tmp;
  auto journal = OpenOrDie(tmp.journal());
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->last_seq(), 0u);
  EXPECT_EQ(journal->released_seq(), 0u);
  EXPECT_TRUE(ReadAll(journal.get()).empty());

  const std::string binary("a\0b\xff\xfe\0", 6);
  auto appended = journal->Append({binary, "", std::string(100000, 'x')});
  ASSERT_TRUE(appended.ok()) << appended.status();
  EXPECT_EQ(*appended, 3u);
  auto empty_call = journal->Append({});
  ASSERT_TRUE(empty_call.ok());
  EXPECT_EQ(*empty_call, 3u);

  auto records = ReadAll(journal.get());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].seq, 1u);
  EXPECT_EQ(records[0].payload, binary);
  EXPECT_EQ(records[1].seq, 2u);
  EXPECT_EQ(records[1].payload, "");
  EXPECT_EQ(records[2].payload, std::string(100000, 'x'));
  EXPECT_EQ(journal->pending_records(), 3u);
  EXPECT_EQ(journal->pending_bytes(), 3 * IngestJournal::kHeaderBytes + 6 + 0 + 100000);

  // Many more, in batches of 7; then read everything back from the start and from any seq.
  ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 4, 2000, 7));
  EXPECT_EQ(journal->last_seq(), 2000u);
  records = ReadAll(journal.get(), 3);
  ExpectRange(records, 4, 2000);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50; ++i) {
    uint64_t after = 3 + rng() % 1998;
    ExpectRange(ReadAll(journal.get(), after), after + 1, 2000);
  }
  EXPECT_TRUE(ReadAll(journal.get(), 2000).empty());
  EXPECT_TRUE(ReadAll(journal.get(), 5000).empty());
}

TEST(IngestJournalTest, ReadSplitsByMaxBytes) {
  TempDir tmp;
  auto journal = OpenOrDie(tmp.journal());
  ASSERT_NE(journal, nullptr);
  ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 1, 600, 5));
  for (size_t max_bytes : {size_t{0}, size_t{1}, size_t{299}, size_t{1000}, size_t{20000}}) {
    SCOPED_TRACE(max_bytes);
    std::vector<JournalRecord> all;
    uint64_t after = 0;
    int calls = 0;
    while (after < 600) {
      std::vector<JournalRecord> chunk;
      ASSERT_TRUE(journal->Read(after, max_bytes, &chunk).ok());
      ASSERT_FALSE(chunk.empty());
      size_t total = 0;
      for (const JournalRecord& r : chunk) total += r.payload.size();
      // Over max_bytes only as a single record.
      if (chunk.size() > 1) {
        EXPECT_LE(total, max_bytes);
      }
      // And no more would have fit.
      if (chunk.back().seq < 600) {
        EXPECT_GT(total + PayloadFor(chunk.back().seq + 1).size(), max_bytes);
      }
      after = chunk.back().seq;
      all.insert(all.end(), chunk.begin(), chunk.end());
      ++calls;
    }
    ExpectRange(all, 1, 600);
    if (max_bytes == 0) {
      EXPECT_EQ(calls, 600);  // one record per call: no two payloads in a row are empty
    }
  }
  // Read appends to what *out already holds.
  std::vector<JournalRecord> out(2);
  ASSERT_TRUE(journal->Read(598, SIZE_MAX, &out).ok());
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[2].seq, 599u);
}

TEST(IngestJournalTest, SegmentsRotateReleaseDeletesAndReopenContinues) {
  TempDir tmp;
  const uint64_t kSegmentBytes = 4096;
  {
    auto journal = OpenOrDie(tmp.journal(), kSegmentBytes);
    ASSERT_NE(journal, nullptr);
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 1, 300, 3));
    std::vector<std::string> segments = Segments(tmp.journal());
    ASSERT_GT(segments.size(), 5u);
    EXPECT_EQ(journal->segment_count(), segments.size());
    EXPECT_EQ(FirstSeqOf(segments[0]), 1u);
    // Rotation happens before an append once a segment is at or past the size, so a segment
    // is smaller than the size plus one append (3 records of at most 316 bytes).
    for (const std::string& name : segments) {
      EXPECT_LT(FileSize(tmp.journal() + "/" + name), kSegmentBytes + 3 * 316);
    }
    ExpectRange(ReadAll(journal.get()), 1, 300);  // across every segment

    ASSERT_TRUE(journal->Release(150).ok());
    EXPECT_EQ(journal->released_seq(), 150u);
    EXPECT_EQ(journal->pending_records(), 150u);
    uint64_t pending = 0;
    for (uint64_t seq = 151; seq <= 300; ++seq) pending += 16 + PayloadFor(seq).size();
    EXPECT_EQ(journal->pending_bytes(), pending);
    // The first segment left holds seq 151 (its name is <= 151, the next one's is > 151).
    std::vector<std::string> left = Segments(tmp.journal());
    EXPECT_LT(left.size(), segments.size());
    EXPECT_EQ(journal->segment_count(), left.size());
    EXPECT_LE(FirstSeqOf(left[0]), 151u);
    ASSERT_GT(left.size(), 1u);
    EXPECT_GT(FirstSeqOf(left[1]), 151u);
    ExpectRange(ReadAll(journal.get(), 150), 151, 300);
    EXPECT_TRUE(journal->Release(100).ok());  // below the watermark: nothing
    EXPECT_EQ(journal->released_seq(), 150u);
    EXPECT_EQ(journal->Release(301).code(), absl::StatusCode::kInvalidArgument);
  }
  {
    auto journal = OpenOrDie(tmp.journal(), kSegmentBytes);
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 300u);
    EXPECT_EQ(journal->released_seq(), 150u);
    EXPECT_EQ(journal->pending_records(), 150u);
    ExpectRange(ReadAll(journal.get(), 150), 151, 300);
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 301, 320, 2));
    ExpectRange(ReadAll(journal.get(), 150), 151, 320);
    // Release everything: only the segment appended to stays.
    ASSERT_TRUE(journal->Release(320).ok());
    EXPECT_EQ(journal->pending_records(), 0u);
    EXPECT_EQ(journal->pending_bytes(), 0u);
    EXPECT_EQ(Segments(tmp.journal()).size(), 1u);
  }
  {
    auto journal = OpenOrDie(tmp.journal(), kSegmentBytes);
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 320u);
    EXPECT_EQ(journal->pending_records(), 0u);
    EXPECT_TRUE(ReadAll(journal.get(), 320).empty());
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 321, 321));
  }
  // Even with every segment gone, seqs continue after the watermark.
  ASSERT_TRUE(OpenOrDie(tmp.journal(), kSegmentBytes)->Release(321).ok());
  for (const std::string& name : Segments(tmp.journal())) {
    std::filesystem::remove(tmp.journal() + "/" + name);
  }
  {
    auto journal = OpenOrDie(tmp.journal(), kSegmentBytes);
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 321u);
    EXPECT_EQ(journal->segment_count(), 0u);
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 322, 330));
    ExpectRange(ReadAll(journal.get(), 321), 322, 330);
    EXPECT_EQ(FirstSeqOf(Segments(tmp.journal())[0]), 322u);
  }
  {
    auto journal = OpenOrDie(tmp.journal(), kSegmentBytes);
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 330u);
    ExpectRange(ReadAll(journal.get()), 322, 330);  // reading before the first record kept
  }
}

TEST(IngestJournalTest, OneProcessPerJournalAndBadWatermark) {
  TempDir tmp;
  auto journal = OpenOrDie(tmp.journal());
  ASSERT_NE(journal, nullptr);
  JournalOptions options;
  options.dir = tmp.journal();
  EXPECT_EQ(IngestJournal::Open(options).status().code(), absl::StatusCode::kFailedPrecondition);
  journal.reset();
  {
    std::ofstream f(tmp.journal() + "/released");
    f << "garbage";
  }
  auto reopened = IngestJournal::Open(options);
  EXPECT_EQ(reopened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(reopened.status().message(), "released")) << reopened.status();
}

// Writes records 1..10 (single segment), closes, and returns the segment's path and the
// offset where record 10 starts.
std::string MakeTen(const TempDir& tmp, uint64_t* last_record_offset) {
  auto journal = OpenOrDie(tmp.journal());
  AppendRange(journal.get(), 1, 10);
  std::string path = tmp.journal() + "/" + Segments(tmp.journal()).at(0);
  *last_record_offset = FileSize(path) - 16 - PayloadFor(10).size();
  return path;
}

// Opens after damage to the tail and expects records 1..9 kept, record 10 dropped, the file
// cut back, and appending to carry on with seq 10 (also after another reopen).
void ExpectTailDropped(const TempDir& tmp, const std::string& path, uint64_t cut_at) {
  {
    auto journal = OpenOrDie(tmp.journal());
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 9u);
    EXPECT_EQ(FileSize(path), cut_at);
    ExpectRange(ReadAll(journal.get()), 1, 9);
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 10, 12));
  }
  auto journal = OpenOrDie(tmp.journal());
  ASSERT_NE(journal, nullptr);
  ExpectRange(ReadAll(journal.get()), 1, 12);
}

TEST(IngestJournalTest, TornTailInThePayloadIsCut) {
  TempDir tmp;
  uint64_t offset = 0;
  std::string path = MakeTen(tmp, &offset);
  std::filesystem::resize_file(path, FileSize(path) - 3);
  ExpectTailDropped(tmp, path, offset);
}

TEST(IngestJournalTest, TornTailInTheHeaderIsCut) {
  TempDir tmp;
  uint64_t offset = 0;
  std::string path = MakeTen(tmp, &offset);
  std::filesystem::resize_file(path, offset + 5);
  ExpectTailDropped(tmp, path, offset);
}

TEST(IngestJournalTest, GarbageAfterTheLastRecordIsCut) {
  TempDir tmp;
  uint64_t offset = 0;
  std::string path = MakeTen(tmp, &offset);
  const uint64_t good_size = FileSize(path);
  {
    std::ofstream f(path, std::ios::app | std::ios::binary);
    std::mt19937 rng(3);
    for (int i = 0; i < 100; ++i) f.put(static_cast<char>(rng()));
  }
  {
    auto journal = OpenOrDie(tmp.journal());
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 10u);
    EXPECT_EQ(FileSize(path), good_size);
    ExpectRange(ReadAll(journal.get()), 1, 10);
  }
  // An absurd length (all ones) in a header after the last record.
  {
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f << std::string(16, '\xff');
  }
  auto journal = OpenOrDie(tmp.journal());
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->last_seq(), 10u);
  EXPECT_EQ(FileSize(path), good_size);
}

TEST(IngestJournalTest, BadCrcInTheLastRecordIsCut) {
  TempDir tmp;
  uint64_t offset = 0;
  std::string path = MakeTen(tmp, &offset);
  ModifyByte(path, offset + 16 + 3, 0x20);
  ExpectTailDropped(tmp, path, offset);
}

TEST(IngestJournalTest, CorruptionBeforeTheLastRecordIsDataLoss) {
  for (int field : {0, 1, 2}) {  // the payload, the length, the CRC of record 5
    SCOPED_TRACE(field);
    TempDir tmp;
    uint64_t unused = 0;
    std::string path = MakeTen(tmp, &unused);
    uint64_t offset = 0;
    for (uint64_t seq = 1; seq < 5; ++seq) offset += 16 + PayloadFor(seq).size();
    ModifyByte(path, offset + (field == 0 ? 16 + 2 : field == 1 ? 1 : 5), 0x01);
    JournalOptions options;
    options.dir = tmp.journal();
    auto journal = IngestJournal::Open(options);
    ASSERT_EQ(journal.status().code(), absl::StatusCode::kDataLoss) << journal.status();
    EXPECT_TRUE(absl::StrContains(journal.status().message(), path)) << journal.status();
    EXPECT_TRUE(absl::StrContains(journal.status().message(), absl::StrCat("offset ", offset)))
        << journal.status();
  }
}

TEST(IngestJournalTest, CorruptionInAnEarlierSegmentIsDataLoss) {
  TempDir tmp;
  {
    auto journal = OpenOrDie(tmp.journal(), 1024);
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 1, 100));
  }
  std::vector<std::string> segments = Segments(tmp.journal());
  ASSERT_GT(segments.size(), 2u);
  // The last byte of the first segment: its last record's payload.
  std::string first = tmp.journal() + "/" + segments[0];
  ModifyByte(first, FileSize(first) - 1, 0x01);
  JournalOptions options;
  options.dir = tmp.journal();
  auto journal = IngestJournal::Open(options);
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(journal.status().message(), first)) << journal.status();

  // A missing segment in the middle is a gap in acknowledged records.
  ModifyByte(first, FileSize(first) - 1, 0x01);
  ASSERT_TRUE(IngestJournal::Open(options).ok());
  std::filesystem::remove(tmp.journal() + "/" + segments[1]);
  EXPECT_EQ(IngestJournal::Open(options).status().code(), absl::StatusCode::kDataLoss);
}

// Reads one 8-byte seq from the pipe `fd`; false at EOF.
bool ReadSeq(int fd, uint64_t* seq) {
  size_t got = 0;
  char* p = reinterpret_cast<char*>(seq);
  while (got < sizeof *seq) {
    ssize_t n = read(fd, p + got, sizeof *seq - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

TEST(IngestJournalTest, SigkillDuringAppendsLosesNothingAcknowledged) {
  TempDir tmp;
  std::mt19937_64 rng(42);
  uint64_t max_reported = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE(round);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      JournalOptions options;
      options.dir = tmp.journal();
      options.segment_bytes = 8192;
      auto journal = IngestJournal::Open(options);
      if (!journal.ok()) _exit(2);
      std::mt19937_64 child_rng(static_cast<uint64_t>(getpid()));
      for (;;) {
        uint64_t next = (*journal)->last_seq() + 1;
        std::vector<std::string> owned;
        size_t batch = 1 + child_rng() % 4;
        for (size_t i = 0; i < batch; ++i) owned.push_back(PayloadFor(next + i));
        std::vector<std::string_view> views(owned.begin(), owned.end());
        auto seq = (*journal)->Append(views);
        if (!seq.ok() || *seq != next + batch - 1) _exit(3);
        if (write(fds[1], &*seq, sizeof *seq) != sizeof *seq) _exit(4);
      }
    }
    close(fds[1]);
    // Kill after a random number of acknowledged appends, at a random moment after it.
    const uint64_t target = 1 + rng() % 150;
    uint64_t seq = 0;
    for (uint64_t acks = 0; acks < target && ReadSeq(fds[0], &seq); ++acks) {
      max_reported = std::max(max_reported, seq);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    while (ReadSeq(fds[0], &seq)) max_reported = std::max(max_reported, seq);
    close(fds[0]);

    auto journal = OpenOrDie(tmp.journal(), 8192);
    ASSERT_NE(journal, nullptr);
    EXPECT_GE(journal->last_seq(), max_reported);
    const uint64_t released = journal->released_seq();
    ExpectRange(ReadAll(journal.get(), released), released + 1, journal->last_seq());
    // Release some, so that later rounds also recover with deleted segments.
    ASSERT_TRUE(journal->Release(journal->last_seq() / 2).ok());
  }
  EXPECT_GT(max_reported, 6u);
}

TEST(IngestJournalTest, DiskFullLeavesNothingOfTheFailedAppend) {
  TempDir tmp;
  {
    auto journal = OpenOrDie(tmp.journal());
    ASSERT_NE(journal, nullptr);
    ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 1, 5));
  }
  const std::string segment = tmp.journal() + "/" + Segments(tmp.journal()).at(0);
  const uint64_t size_before = FileSize(segment);
  // Record 6 fits under the limit; the batch 7..9 (about 900 bytes) does not.
  const uint64_t limit = size_before + 16 + PayloadFor(6).size() + 100;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
    auto journal = OpenOrDie(tmp.journal());
    if (journal == nullptr) _exit(3);
    std::string six = PayloadFor(6);
    if (!journal->Append({six}).ok()) _exit(4);
    const uint64_t size_ok = FileSize(segment);
    std::string p7 = PayloadFor(297), p8 = PayloadFor(298), p9 = PayloadFor(299);
    auto failed = journal->Append({p7, p8, p9});
    std::string report = failed.status().ToString();
    if (write(fds[1], report.data(), report.size()) < 0) _exit(5);
    if (failed.status().code() != absl::StatusCode::kResourceExhausted) _exit(6);
    if (FileSize(segment) != size_ok) _exit(7);
    if (journal->last_seq() != 6) _exit(8);
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, n);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << report;
  EXPECT_TRUE(absl::StrContains(report, segment)) << report;

  auto journal = OpenOrDie(tmp.journal());
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->last_seq(), 6u);
  ExpectRange(ReadAll(journal.get()), 1, 6);
  ASSERT_NO_FATAL_FAILURE(AppendRange(journal.get(), 7, 9));
  ExpectRange(ReadAll(journal.get()), 1, 9);
}

TEST(IngestJournalTest, ConcurrentAppendAndReadRelease) {
  TempDir tmp;
  auto journal = OpenOrDie(tmp.journal(), 16 << 10);
  ASSERT_NE(journal, nullptr);
  const uint64_t kRecords = 20000;
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    std::mt19937_64 rng(1);
    for (uint64_t seq = 1; seq <= kRecords && !writer_failed;) {
      std::vector<std::string> owned;
      for (size_t i = 1 + rng() % 8; i > 0 && seq <= kRecords; --i) {
        owned.push_back(PayloadFor(seq++));
      }
      std::vector<std::string_view> views(owned.begin(), owned.end());
      auto appended = journal->Append(views);
      if (!appended.ok() || *appended != seq - 1) writer_failed = true;
    }
  });
  // The indexer: reads on from the last seq seen, checks order and payloads, releases.
  uint64_t seen = 0;
  uint64_t max_segments = 0;
  bool reader_ok = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (seen < kRecords && !writer_failed && std::chrono::steady_clock::now() < deadline) {
    std::vector<JournalRecord> records;
    absl::Status read = journal->Read(seen, 8192, &records);
    if (!read.ok()) {
      ADD_FAILURE() << read;
      reader_ok = false;
      break;
    }
    for (const JournalRecord& r : records) {
      if (r.seq != seen + 1 || r.payload != PayloadFor(r.seq)) {
        ADD_FAILURE() << "got seq " << r.seq << " after " << seen;
        reader_ok = false;
        break;
      }
      seen = r.seq;
    }
    if (!reader_ok) break;
    if (records.empty()) {
      std::this_thread::yield();
    } else if (records.front().seq % 3 == 0) {
      absl::Status released = journal->Release(seen);
      if (!released.ok()) {
        ADD_FAILURE() << released;
        reader_ok = false;
        break;
      }
    }
    EXPECT_LE(journal->released_seq(), journal->last_seq());
    max_segments = std::max<uint64_t>(max_segments, journal->segment_count());
  }
  writer.join();
  EXPECT_FALSE(writer_failed);
  ASSERT_TRUE(reader_ok);
  EXPECT_EQ(seen, kRecords);
  ASSERT_TRUE(journal->Release(kRecords).ok());
  EXPECT_EQ(journal->pending_records(), 0u);
  EXPECT_EQ(journal->pending_bytes(), 0u);
  EXPECT_EQ(journal->segment_count(), 1u);
  EXPECT_EQ(Segments(tmp.journal()).size(), 1u);
}

}  // namespace
}  // namespace maillens::collector
