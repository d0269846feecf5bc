// Turns classic syslog stamps ("Mmm dd hh:mm:ss": no year, no zone) into UTC microseconds.
//
// The year comes from TimeOptions::year when set, else from the reference time (normally now):
// a first stamp later than the reference by more than a day belongs to the previous year (a
// December log read in January). Afterwards the context follows the stream: a month that goes
// back by more than six (Dec -> Jan) starts the next year; a month that jumps forward by more
// than six (a stray Dec line after Jan ones) is placed in the previous year without changing
// the state. The zone is fixed by the caller (absl::LoadTimeZone happens outside core/).
//
// Thread-compatible: one TimeContext per sequential stream of lines.
#ifndef MAILLENS_CORE_TIME_CONTEXT_H_
#define MAILLENS_CORE_TIME_CONTEXT_H_

#include <cstdint>

#include "absl/time/time.h"

namespace maillens::core {

struct TimeOptions {
  int year = 0;                               // 0: infer from reference_us
  absl::TimeZone zone = absl::UTCTimeZone();  // zone of classic stamps
  int64_t reference_us = 0;                   // "now" for inference; 0 means 1970 (tests set it)
};

class TimeContext {
 public:
  explicit TimeContext(TimeOptions options);

  // UTC microseconds for a classic stamp. `month` is 1..12.
  int64_t ResolveClassic(int month, int day, int hour, int minute, int second, int micros = 0);

  int current_year() const { return year_; }

 private:
  TimeOptions options_;
  int year_ = 0;        // year of the last resolved line; 0 before the first
  int last_month_ = 0;  // month of the last line that set year_
  // Cache of the last civil hour resolved, so most lines skip the zone lookup.
  int64_t cached_key_ = -1;
  int64_t cached_base_us_ = 0;
};

}  // namespace maillens::core

#endif  // MAILLENS_CORE_TIME_CONTEXT_H_
