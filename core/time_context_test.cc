#include "core/time_context.h"

#include <cstdint>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

constexpr int64_t kMicros = 1000000;

// Expected instants below were computed outside this code (GNU date -u -d ... +%s).
constexpr int64_t k20230704T123456Z = 1688474096;
constexpr int64_t k20231231T235959Z = 1704067199;
constexpr int64_t k20240102T100000Z = 1704189600;
constexpr int64_t k20231230T080000Z = 1703923200;
constexpr int64_t k20240103T110000Z = 1704279600;
constexpr int64_t k20230103T110000Z = 1672743600;

TimeOptions Utc(int year, int64_t reference_us = 0) {
  TimeOptions options;
  options.year = year;
  options.reference_us = reference_us;
  return options;
}

TEST(TimeContextTest, ExplicitYearInUtc) {
  TimeContext time(Utc(2023));
  EXPECT_EQ(time.ResolveClassic(7, 4, 12, 34, 56), k20230704T123456Z * kMicros);
  EXPECT_EQ(time.current_year(), 2023);
}

TEST(TimeContextTest, ExplicitYearWinsOverReference) {
  // The reference says 2024; the option says 2019.
  TimeContext time(Utc(2019, k20240102T100000Z * kMicros));
  EXPECT_EQ(time.ResolveClassic(11, 2, 10, 11, 12), 1572689472 * kMicros);
  EXPECT_EQ(time.current_year(), 2019);
}

TEST(TimeContextTest, MicrosAreKept) {
  TimeContext time(Utc(2023));
  EXPECT_EQ(time.ResolveClassic(7, 4, 12, 34, 56, 123456), k20230704T123456Z * kMicros + 123456);
  // Same hour again (served from the cache) and a later second.
  EXPECT_EQ(time.ResolveClassic(7, 4, 12, 34, 57, 1), (k20230704T123456Z + 1) * kMicros + 1);
}

TEST(TimeContextTest, DecemberToJanuaryStartsNextYear) {
  TimeContext time(Utc(2023));
  EXPECT_EQ(time.ResolveClassic(12, 31, 23, 59, 59), k20231231T235959Z * kMicros);
  EXPECT_EQ(time.ResolveClassic(1, 1, 0, 0, 0), (k20231231T235959Z + 1) * kMicros);
  EXPECT_EQ(time.current_year(), 2024);
  // And the stream stays there.
  EXPECT_EQ(time.ResolveClassic(1, 2, 10, 0, 0), k20240102T100000Z * kMicros);
  EXPECT_EQ(time.current_year(), 2024);
}

TEST(TimeContextTest, SmallBackwardStepsKeepTheYear) {
  // Lines out of order by a few months (a merged file) are not a New Year.
  TimeContext time(Utc(2023));
  time.ResolveClassic(7, 4, 12, 34, 56);
  EXPECT_EQ(time.ResolveClassic(3, 1, 0, 0, 0) / kMicros, 1677628800);  // 2023-03-01
  EXPECT_EQ(time.current_year(), 2023);
}

TEST(TimeContextTest, StrayDecemberLineGoesToPreviousYearOnly) {
  TimeContext time(Utc(2024));
  EXPECT_EQ(time.ResolveClassic(1, 2, 10, 0, 0), k20240102T100000Z * kMicros);
  // A late December line among January ones: last year, and the stream does not move.
  EXPECT_EQ(time.ResolveClassic(12, 30, 8, 0, 0), k20231230T080000Z * kMicros);
  EXPECT_EQ(time.current_year(), 2024);
  EXPECT_EQ(time.ResolveClassic(1, 3, 11, 0, 0), k20240103T110000Z * kMicros);
  EXPECT_EQ(time.current_year(), 2024);
}

TEST(TimeContextTest, DecemberLogReadInJanuaryIsLastYear) {
  TimeContext time(Utc(0, k20240102T100000Z * kMicros));
  EXPECT_EQ(time.ResolveClassic(12, 30, 8, 0, 0), k20231230T080000Z * kMicros);
  EXPECT_EQ(time.current_year(), 2023);
  // The log then runs into the reference's year.
  EXPECT_EQ(time.ResolveClassic(1, 2, 10, 0, 0), k20240102T100000Z * kMicros);
  EXPECT_EQ(time.current_year(), 2024);
}

TEST(TimeContextTest, FirstLineNearReferenceIsThisYear) {
  // Up to a day ahead of the reference is clock skew, not last year.
  TimeContext skewed(Utc(0, k20240102T100000Z * kMicros));
  EXPECT_EQ(skewed.ResolveClassic(1, 3, 9, 0, 0), (k20240103T110000Z - 2 * 3600) * kMicros);
  EXPECT_EQ(skewed.current_year(), 2024);

  // More than a day ahead: last year's line.
  TimeContext ahead(Utc(0, k20240102T100000Z * kMicros));
  EXPECT_EQ(ahead.ResolveClassic(1, 3, 11, 0, 0), k20230103T110000Z * kMicros);
  EXPECT_EQ(ahead.current_year(), 2023);

  // In the past: this year.
  TimeContext past(Utc(0, k20240103T110000Z * kMicros));
  EXPECT_EQ(past.ResolveClassic(1, 2, 10, 0, 0), k20240102T100000Z * kMicros);
}

TEST(TimeContextTest, FixedOffsetZone) {
  TimeOptions options = Utc(2023);
  options.zone = absl::FixedTimeZone(2 * 3600);
  TimeContext time(options);
  // 14:34:56 at +02:00 is 12:34:56 UTC.
  EXPECT_EQ(time.ResolveClassic(7, 4, 14, 34, 56), k20230704T123456Z * kMicros);
}

TEST(TimeContextTest, InferenceUsesTheZonesYear) {
  // 2023-12-31 23:30 UTC is already 2024 in +02:00; a Jan 1 00:30 local line is then "now".
  TimeOptions options = Utc(0, (k20231231T235959Z - 29 * 60 + 1) * kMicros);
  options.zone = absl::FixedTimeZone(2 * 3600);
  TimeContext time(options);
  EXPECT_EQ(time.ResolveClassic(1, 1, 1, 30, 0), (k20231231T235959Z + 1 - 1800) * kMicros);
  EXPECT_EQ(time.current_year(), 2024);
}

class BerlinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!absl::LoadTimeZone("Europe/Berlin", &berlin_)) {
      GTEST_FAIL() << "zone Europe/Berlin not available";
    }
  }
  TimeOptions Options() {
    TimeOptions options = Utc(2023);
    options.zone = berlin_;
    return options;
  }
  absl::TimeZone berlin_;
};

TEST_F(BerlinTest, WinterAndSummerOffsets) {
  TimeContext time(Options());
  EXPECT_EQ(time.ResolveClassic(1, 15, 12, 0, 0) / kMicros, 1673780400);  // 11:00 UTC
  EXPECT_EQ(time.ResolveClassic(7, 4, 14, 34, 56), k20230704T123456Z * kMicros);
}

TEST_F(BerlinTest, SpringForward) {
  // 2023-03-26: 02:00 CET jumps to 03:00 CEST. The last second of winter time and the first
  // of summer time are one second apart in UTC.
  TimeContext time(Options());
  EXPECT_EQ(time.ResolveClassic(3, 26, 1, 59, 59) / kMicros, 1679792399);
  EXPECT_EQ(time.ResolveClassic(3, 26, 3, 0, 0) / kMicros, 1679792400);
  EXPECT_EQ(time.ResolveClassic(3, 26, 3, 30, 0) / kMicros, 1679792400 + 1800);
  // Back into the cached winter hour: still +01:00.
  EXPECT_EQ(time.ResolveClassic(3, 26, 1, 30, 0) / kMicros, 1679792399 - 1799);
}

TEST_F(BerlinTest, FallBack) {
  // 2023-10-29: 03:00 CEST falls back to 02:00 CET, so 02:xx happens twice.
  TimeContext time(Options());
  EXPECT_EQ(time.ResolveClassic(10, 29, 1, 30, 0) / kMicros, 1698535800);  // +02:00
  EXPECT_EQ(time.ResolveClassic(10, 29, 3, 30, 0) / kMicros, 1698546600);  // +01:00
  // The repeated hour: without more information the first (summer-time) reading is taken.
  EXPECT_EQ(time.ResolveClassic(10, 29, 2, 30, 0) / kMicros, 1698535800 + 3600);
  EXPECT_EQ(time.ResolveClassic(10, 29, 2, 30, 1) / kMicros, 1698535800 + 3601);
}

TEST_F(BerlinTest, CacheDoesNotLeakAcrossDays) {
  // Same clock hour on a winter day and a summer day: different offsets.
  TimeContext time(Options());
  const int64_t winter = time.ResolveClassic(3, 25, 12, 0, 0);
  const int64_t summer = time.ResolveClassic(3, 26, 12, 0, 0);
  EXPECT_EQ(summer - winter, 23 * 3600 * kMicros);
}

TEST(LordHoweTest, HalfHourTransitionsInsideAnHour) {
  // Lord Howe Island moves its clocks by 30 minutes, so a transition falls inside a civil hour
  // and one offset per hour would be wrong for half of it.
  absl::TimeZone lord_howe;
  if (!absl::LoadTimeZone("Australia/Lord_Howe", &lord_howe)) {
    GTEST_FAIL() << "zone Australia/Lord_Howe not available";
  }
  TimeOptions options = Utc(2023);
  options.zone = lord_howe;
  TimeContext time(options);
  // 2023-10-01: 02:00 +10:30 jumps to 02:30 +11:00.
  EXPECT_EQ(time.ResolveClassic(10, 1, 1, 59, 59) / kMicros, 1696087799);
  EXPECT_EQ(time.ResolveClassic(10, 1, 2, 45, 0) / kMicros, 1696088700);
  EXPECT_EQ(time.ResolveClassic(10, 1, 3, 10, 0) / kMicros, 1696090200);
}

}  // namespace
}  // namespace maillens::core
