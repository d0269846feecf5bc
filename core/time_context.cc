#include "core/time_context.h"

#include <cstdint>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace maillens::core {
namespace {

// ResolveClassic runs once per classic line, so its common case (a line in the same civil hour
// as the one before) is a few comparisons and an addition; everything that asks absl about
// the zone lives in the out-of-line functions below and runs about once an hour of log.

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerHour = 3600 * kMicrosPerSecond;
constexpr int64_t kMicrosPerDay = 24 * kMicrosPerHour;

// A month step larger than this is a year boundary, not a gap in the log.
constexpr int kMonthJump = 6;

// Identifies a civil hour, or is kNoHourKey for fields outside their ranges (only a caller
// other than the parser passes those), which are never cached.
constexpr int64_t kNoHourKey = -2;

inline int64_t HourKey(int year, int month, int day, int hour, int minute, int second) {
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
      minute < 0 || minute > 59 || second < 0 || second > 60) {
    return kNoHourKey;
  }
  return ((static_cast<int64_t>(year) * 16 + month) * 32 + day) * 24 + hour;
}

// Where the hour cache lives: TimeContext's members, borrowed for one call.
struct HourCache {
  int64_t* key;
  int64_t* base_us;
};

// Resolves a civil time the cache could not answer, and refills the cache when the hour allows.
ABSL_ATTRIBUTE_NOINLINE int64_t ResolveInZone(const absl::TimeZone& zone, HourCache cache,
                                              int64_t key, int year, int month, int day, int hour,
                                              int minute, int second, int micros) {
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (key != kNoHourKey) {
    // The start of this civil hour and of the next: when they are exactly an hour apart the
    // offset is the same through the hour and the hour can be cached. Otherwise a transition
    // falls inside it (DST change, or a zone that moves at a half hour), and each line of that
    // hour is resolved on its own so every second gets the offset absl gives it: a time that
    // occurs twice (autumn) is read as its first occurrence, one that never occurs (spring)
    // with the offset from before the gap, as absl::FromCivil does.
    const absl::CivilHour civil_hour(civil);
    const int64_t base = absl::ToUnixMicros(absl::FromCivil(civil_hour, zone));
    const int64_t next = absl::ToUnixMicros(absl::FromCivil(civil_hour + 1, zone));
    if (next - base == kMicrosPerHour) {
      *cache.key = key;
      *cache.base_us = base;
      return base + (static_cast<int64_t>(minute) * 60 + second) * kMicrosPerSecond + micros;
    }
  }
  // Out-of-range fields are normalised by absl (Jan 32 is Feb 1).
  return absl::ToUnixMicros(absl::FromCivil(civil, zone)) + micros;
}

inline int64_t ToUtcMicros(const absl::TimeZone& zone, HourCache cache, int year, int month,
                           int day, int hour, int minute, int second, int micros) {
  const int64_t key = HourKey(year, month, day, hour, minute, second);
  if (key == *cache.key) {
    return *cache.base_us + (static_cast<int64_t>(minute) * 60 + second) * kMicrosPerSecond +
           micros;
  }
  return ResolveInZone(zone, cache, key, year, month, day, hour, minute, second, micros);
}

ABSL_ATTRIBUTE_NOINLINE int InferFirstYear(const TimeOptions& options, HourCache cache, int month,
                                           int day, int hour, int minute, int second, int micros) {
  const absl::Time reference = absl::FromUnixMicros(options.reference_us);
  const int reference_year = static_cast<int>(absl::ToCivilYear(reference, options.zone).year());
  // Clocks of the writer and the reader differ a little; only a stamp more than a day ahead of
  // "now" is taken as last year's (a December log read in January).
  const int64_t candidate =
      ToUtcMicros(options.zone, cache, reference_year, month, day, hour, minute, second, micros);
  return candidate - options.reference_us > kMicrosPerDay ? reference_year - 1 : reference_year;
}

}  // namespace

TimeContext::TimeContext(TimeOptions options) : options_(std::move(options)) {}

int64_t TimeContext::ResolveClassic(int month, int day, int hour, int minute, int second,
                                    int micros) {
  const HourCache cache{&cached_key_, &cached_base_us_};
  int year;
  if (year_ == 0) {
    // An explicit year is the first line's year; a log that runs on past New Year still moves
    // to the next one below.
    year = options_.year != 0
               ? options_.year
               : InferFirstYear(options_, cache, month, day, hour, minute, second, micros);
    year_ = year;
    last_month_ = month;
  } else if (last_month_ - month > kMonthJump) {
    // Dec -> Jan: the stream crossed New Year.
    year = ++year_;
    last_month_ = month;
  } else if (month - last_month_ > kMonthJump) {
    // A late December line among January ones (a delayed writer, a merged file): it belongs to
    // the year before, and must not drag the stream back with it.
    year = year_ - 1;
  } else {
    year = year_;
    last_month_ = month;
  }
  return ToUtcMicros(options_.zone, cache, year, month, day, hour, minute, second, micros);
}

}  // namespace maillens::core
