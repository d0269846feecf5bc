#include "collector/journal_codec.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace maillens::collector {
namespace {

constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();
constexpr int64_t kMinI64 = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

// --- Field-by-field equality, so a failure names the field ---

void ExpectSameLine(const store::LineRecord& a, const store::LineRecord& b) {
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.file_path, b.file_path);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.time_us, b.time_us);
  // Not EXPECT_EQ: a megabyte line would flood the failure message.
  EXPECT_EQ(a.raw.size(), b.raw.size());
  EXPECT_TRUE(a.raw == b.raw) << "raw differs";
}

void ExpectSameGap(const store::GapRecord& a, const store::GapRecord& b) {
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.from_offset, b.from_offset);
  EXPECT_EQ(a.to_offset, b.to_offset);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.detail, b.detail);
  EXPECT_EQ(a.noticed_us, b.noticed_us);
}

void ExpectSameProgress(const store::FileProgressRecord& a, const store::FileProgressRecord& b) {
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.read_offset, b.read_offset);
  EXPECT_EQ(a.acked_offset, b.acked_offset);
}

void ExpectSameMessage(const store::QueuedMessageRecord& a, const store::QueuedMessageRecord& b) {
  EXPECT_EQ(a.queue_name, b.queue_name);
  EXPECT_EQ(a.queue_id, b.queue_id);
  EXPECT_EQ(a.instance, b.instance);
  EXPECT_EQ(a.arrival_us, b.arrival_us);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.sender, b.sender);
  EXPECT_EQ(a.forced_expire, b.forced_expire);
  ASSERT_EQ(a.recipients.size(), b.recipients.size());
  for (size_t i = 0; i < a.recipients.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "recipient " << i);
    EXPECT_EQ(a.recipients[i].address, b.recipients[i].address);
    EXPECT_EQ(a.recipients[i].delay_reason, b.recipients[i].delay_reason);
  }
}

void ExpectSameQueue(const store::QueueSnapshotRecord& a, const store::QueueSnapshotRecord& b) {
  EXPECT_EQ(a.taken_us, b.taken_us);
  EXPECT_EQ(a.error, b.error);
  ASSERT_EQ(a.messages.size(), b.messages.size());
  for (size_t i = 0; i < a.messages.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "message " << i);
    ExpectSameMessage(a.messages[i], b.messages[i]);
  }
}

void ExpectSameSite(const store::SiteUpdate& a, const store::SiteUpdate& b) {
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.now_us, b.now_us);
  EXPECT_EQ(a.session, b.session);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.addresses, b.addresses);
  EXPECT_EQ(a.batch, b.batch);
  ASSERT_EQ(a.gaps.size(), b.gaps.size());
  for (size_t i = 0; i < a.gaps.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "gap " << i);
    ExpectSameGap(a.gaps[i], b.gaps[i]);
  }
  ASSERT_EQ(a.progress.size(), b.progress.size());
  for (size_t i = 0; i < a.progress.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "progress " << i);
    ExpectSameProgress(a.progress[i], b.progress[i]);
  }
  EXPECT_EQ(a.newest_event_us, b.newest_event_us);
  EXPECT_EQ(a.committed_end, b.committed_end);
  ASSERT_EQ(a.queue.has_value(), b.queue.has_value());
  if (a.queue.has_value()) ExpectSameQueue(*a.queue, *b.queue);
}

void ExpectSameTask(const JournalTask& a, const JournalTask& b) {
  ASSERT_EQ(a.lines.size(), b.lines.size());
  for (size_t i = 0; i < a.lines.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "line " << i);
    ExpectSameLine(a.lines[i], b.lines[i]);
  }
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.host_names, b.host_names);
  ASSERT_EQ(a.site.has_value(), b.site.has_value());
  if (a.site.has_value()) ExpectSameSite(*a.site, *b.site);
}

// --- Samples ---

std::string Encode(const JournalTask& task) {
  std::string out;
  EncodeJournalTask(task, &out);
  return out;
}

// Every field of every struct away from its default. `big_line` adds a 1 MB line.
JournalTask FullTask(bool big_line) {
  JournalTask task;
  store::LineRecord line;
  line.host = "relay1.example.org";
  line.file_path = "/var/log/mail.log";
  line.fingerprint = kMaxU64;
  line.offset = kMaxU64;
  line.time_us = -1234567890123;  // before 1970
  static constexpr char kRaw[] = "Jan  1 00:00:00 relay1 postfix/smtpd[1]: \0 nul \xff\xfe bytes";
  line.raw = std::string(kRaw, sizeof(kRaw) - 1);
  task.lines.push_back(line);
  line.fingerprint = 0x0123456789abcdefULL;
  line.offset = 0;
  line.time_us = kMinI64;
  line.raw = std::string("\0", 1);
  task.lines.push_back(line);
  line.host = std::string("h\0st", 4);
  line.file_path = "";
  line.time_us = kMaxI64;
  line.raw = "";
  task.lines.push_back(line);
  if (big_line) {
    line.raw.clear();
    for (size_t i = 0; i < (1u << 20); ++i) line.raw.push_back(static_cast<char>(i * 131 + 7));
    line.offset = 1ULL << 40;
    task.lines.push_back(line);
  }

  task.host = "relay1.example.org";
  task.host_names = {"192.0.2.1", "2001:db8::1", "relay1", std::string("\xff\0", 2)};

  store::SiteUpdate& site = task.site.emplace();
  site.host = "relay1.example.org";
  site.now_us = 1700000000123456;
  site.session = store::SiteUpdate::Session::kConnected;
  site.role = "dmz-relay";
  site.version = "1.2.3";
  site.addresses = {"192.0.2.1", "2001:db8::1"};
  site.batch = true;
  store::GapRecord gap;
  gap.path = "/var/log/mail.log.1";
  gap.fingerprint = kMaxU64;
  gap.from_offset = 100;
  gap.to_offset = kMaxU64;
  gap.reason = "truncated";
  gap.detail = "file shrank from 5000 to 100 bytes";
  gap.noticed_us = -5;
  site.gaps.push_back(gap);
  gap.path = "/var/log/mail.log";
  gap.fingerprint = 42;
  gap.from_offset = 0;
  gap.to_offset = std::nullopt;
  gap.reason = "missing";
  gap.detail = "";
  gap.noticed_us = 1700000000000000;
  site.gaps.push_back(gap);
  gap.to_offset = 0;  // present and zero is not absent
  site.gaps.push_back(gap);
  store::FileProgressRecord progress;
  progress.path = "/var/log/mail.log";
  progress.fingerprint = kMaxU64;
  progress.size = kMaxU64 - 1;
  progress.read_offset = 12345;
  progress.acked_offset = 678;
  site.progress.push_back(progress);
  progress.fingerprint = 7;
  progress.size = 1;
  progress.read_offset = 2;
  progress.acked_offset = 3;
  site.progress.push_back(progress);
  site.newest_event_us = -1;
  site.committed_end = {{0, 1}, {42, kMaxU64}, {kMaxU64, 99}};

  store::QueueSnapshotRecord& queue = site.queue.emplace();
  queue.taken_us = 1700000000999999;
  queue.error = "postqueue: fatal: Queue report unavailable";
  store::QueuedMessageRecord message;
  message.queue_name = "deferred";
  message.queue_id = "4F1A2B3C4D";
  message.instance = "/etc/postfix-out";
  message.arrival_us = -17;
  message.size = kMinI64;
  message.sender = "alice@example.org";
  message.forced_expire = true;
  message.recipients = {{"bob@example.net", "connect to mx.example.net: Connection refused"},
                        {"carol@example.net", ""}};
  queue.messages.push_back(message);
  message.queue_name = "hold";
  message.queue_id = "4F1A2B3C4E";
  message.instance = "";
  message.arrival_us = 1700000000000001;
  message.size = kMaxI64;
  message.sender = "";
  message.forced_expire = false;
  message.recipients.clear();
  queue.messages.push_back(message);
  return task;
}

// Decodes `data`; it must either decode, and then re-encode to exactly `data` (the encoding is
// canonical), or fail with DataLoss.
void ExpectDecodesOrDataLoss(const std::string& data) {
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(data);
  if (decoded.ok()) {
    EXPECT_TRUE(Encode(*decoded) == data) << "decoded, but re-encodes differently";
  } else {
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
  }
}

// --- Round trips ---

TEST(JournalCodecTest, EveryFieldRoundTrips) {
  const JournalTask task = FullTask(/*big_line=*/true);
  const std::string encoded = Encode(task);
  EXPECT_EQ(static_cast<uint8_t>(encoded[0]), kJournalCodecVersion);
  EXPECT_GT(encoded.size(), 1u << 20);
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTask(task, *decoded);
}

TEST(JournalCodecTest, EverySessionRoundTrips) {
  for (store::SiteUpdate::Session session :
       {store::SiteUpdate::Session::kNone, store::SiteUpdate::Session::kConnected,
        store::SiteUpdate::Session::kDisconnected}) {
    SCOPED_TRACE(testing::Message() << "session " << static_cast<int>(session));
    JournalTask task = FullTask(/*big_line=*/false);
    task.site->session = session;
    absl::StatusOr<JournalTask> decoded = DecodeJournalTask(Encode(task));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ExpectSameTask(task, *decoded);
  }
}

TEST(JournalCodecTest, EmptyTaskRoundTrips) {
  const JournalTask task;
  const std::string encoded = Encode(task);
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTask(task, *decoded);
  EXPECT_FALSE(decoded->site.has_value());
}

TEST(JournalCodecTest, ABatchNamesItsHostAndFileOnce) {
  JournalTask task;
  const std::string path(200, 'p');
  for (int i = 0; i < 100; ++i) {
    store::LineRecord line;
    line.host = i < 50 ? "mx1" : "mx2";
    line.file_path = i % 10 == 9 ? "/var/log/other.log" : path;
    line.offset = static_cast<uint64_t>(i) * 10;
    line.raw = "line";
    task.lines.push_back(line);
  }
  const std::string encoded = Encode(task);
  // Each line costs a few bytes beside its text; the path is written when it changes.
  EXPECT_LT(encoded.size(), 100 * 12 + 25 * path.size());
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTask(task, *decoded);

  // A repeated string written out in full is not what the encoder writes: refused, so that
  // every record that decodes re-encodes to the same bytes.
  std::string spelled;
  spelled.push_back(static_cast<char>(kJournalCodecVersion));
  // Two lines: host "mx1", path as before (""), fingerprint 1, offset 2 and 3, time 0, raw
  // "a" and "b"; the second spells "mx1" out again. Then host "", no names, no site.
  const char kLines[] = {2,   4,   'm', 'x', '1', 0, 1, 2, 0,   1, 'a', 4,
                         'm', 'x', '1', 0,   1,   3, 0, 1, 'b', 0, 0,   0};
  spelled.append(kLines, sizeof kLines);
  absl::StatusOr<JournalTask> refused = DecodeJournalTask(spelled);
  EXPECT_TRUE(absl::IsDataLoss(refused.status())) << refused.status();
  spelled[12] = '\x00';  // the second line's host as "the same as before"
  spelled.erase(13, 3);
  absl::StatusOr<JournalTask> accepted = DecodeJournalTask(spelled);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  ASSERT_EQ(accepted->lines.size(), 2u);
  EXPECT_EQ(accepted->lines[1].host, "mx1");
  EXPECT_EQ(accepted->lines[1].raw, "b");
}

TEST(JournalCodecTest, TaskWithoutSiteRoundTrips) {
  JournalTask task = FullTask(/*big_line=*/false);
  task.site.reset();
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(Encode(task));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTask(task, *decoded);
  EXPECT_FALSE(decoded->site.has_value());
}

TEST(JournalCodecTest, SiteWithoutQueueRoundTrips) {
  JournalTask task = FullTask(/*big_line=*/false);
  task.site->queue.reset();
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(Encode(task));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTask(task, *decoded);
  ASSERT_TRUE(decoded->site.has_value());
  EXPECT_FALSE(decoded->site->queue.has_value());
}

TEST(JournalCodecTest, DefaultSiteAndEmptyQueueRoundTrip) {
  JournalTask task;
  task.site.emplace().queue.emplace();
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(Encode(task));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ExpectSameTask(task, *decoded);
}

TEST(JournalCodecTest, EncodeAppendsToWhatTheBufferHolds) {
  const JournalTask task = FullTask(/*big_line=*/false);
  const std::string alone = Encode(task);
  std::string buffer = "previous";
  EncodeJournalTask(task, &buffer);
  ASSERT_EQ(buffer.size(), 8 + alone.size());
  EXPECT_EQ(buffer.substr(0, 8), "previous");
  EXPECT_TRUE(buffer.substr(8) == alone);
}

// --- Damage ---

TEST(JournalCodecTest, EveryStrictPrefixIsDataLoss) {
  const std::string encoded = Encode(FullTask(/*big_line=*/false));
  for (size_t n = 0; n < encoded.size(); ++n) {
    absl::StatusOr<JournalTask> decoded = DecodeJournalTask(std::string_view(encoded.data(), n));
    ASSERT_FALSE(decoded.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << n << ": " << decoded.status();
  }
}

TEST(JournalCodecTest, TrailingByteIsDataLoss) {
  for (const JournalTask& task : {JournalTask(), FullTask(/*big_line=*/false)}) {
    const std::string encoded = Encode(task) + '\0';
    absl::StatusOr<JournalTask> decoded = DecodeJournalTask(encoded);
    ASSERT_FALSE(decoded.ok());
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
    EXPECT_TRUE(absl::StrContains(decoded.status().message(), "trailing")) << decoded.status();
  }
}

TEST(JournalCodecTest, UnknownVersionIsDataLossNamingIt) {
  for (int version : {0, 2, 255}) {
    std::string encoded = Encode(FullTask(/*big_line=*/false));
    encoded[0] = static_cast<char>(version);
    absl::StatusOr<JournalTask> decoded = DecodeJournalTask(encoded);
    ASSERT_FALSE(decoded.ok());
    EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
    EXPECT_TRUE(absl::StrContains(decoded.status().message(), "version " + std::to_string(version)))
        << decoded.status();
  }
}

// A minimal task with a site: version, 0 lines, "" host, 0 names, site present, "" site host,
// now 0, then the session at byte 7.
TEST(JournalCodecTest, OutOfRangeEnumAndBoolAreDataLoss) {
  JournalTask task;
  task.site.emplace().session = store::SiteUpdate::Session::kDisconnected;
  const std::string encoded = Encode(task);
  ASSERT_EQ(encoded.substr(0, 8), std::string("\x01\x00\x00\x00\x01\x00\x00\x02", 8));

  std::string bad_session = encoded;
  bad_session[7] = 3;
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(bad_session);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "session")) << decoded.status();

  std::string bad_presence = encoded;
  bad_presence[4] = 2;
  decoded = DecodeJournalTask(bad_presence);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
}

TEST(JournalCodecTest, HugeCountsAndLengthsFailWithoutAllocating) {
  // 2^63 lines, a 2^63-byte host: refused from the bytes left, before anything is reserved.
  const std::string huge_count("\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11);
  absl::StatusOr<JournalTask> decoded = DecodeJournalTask(huge_count);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "count")) << decoded.status();

  const std::string huge_length("\x01\x00\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12);
  decoded = DecodeJournalTask(huge_length);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
  EXPECT_TRUE(absl::StrContains(decoded.status().message(), "length")) << decoded.status();

  // A varint longer than 64 bits.
  const std::string long_varint("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11);
  decoded = DecodeJournalTask(long_varint);
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(absl::IsDataLoss(decoded.status())) << decoded.status();
}

TEST(JournalCodecTest, RandomBytesDecodeOrFailCleanly) {
  std::mt19937_64 rng(20261204);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> length(0, 64);
  for (int i = 0; i < 2000; ++i) {
    std::string data(length(rng), '\0');
    for (char& c : data) c = static_cast<char>(byte(rng));
    // Half start with the right version, so the decoder gets past the first byte.
    if (i % 2 == 0 && !data.empty()) data[0] = static_cast<char>(kJournalCodecVersion);
    SCOPED_TRACE(testing::Message() << "input " << i);
    ExpectDecodesOrDataLoss(data);
  }
}

TEST(JournalCodecTest, SingleByteMutationsDecodeOrFailCleanly) {
  const std::string encoded = Encode(FullTask(/*big_line=*/false));
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<size_t> position(0, encoded.size() - 1);
  std::uniform_int_distribution<int> delta(1, 255);
  int failed = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string mutated = encoded;
    const size_t at = position(rng);
    mutated[at] = static_cast<char>(static_cast<uint8_t>(mutated[at]) + delta(rng));
    SCOPED_TRACE(testing::Message() << "mutation " << i << " at byte " << at);
    ExpectDecodesOrDataLoss(mutated);
    if (!DecodeJournalTask(mutated).ok()) ++failed;
  }
  // Most mutations of structure bytes are caught; many of string contents are not (they are
  // still valid records). Both kinds must have happened for the test to mean anything.
  EXPECT_GT(failed, 0);
  EXPECT_LT(failed, 2000);
}

}  // namespace
}  // namespace maillens::collector
