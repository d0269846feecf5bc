// Tests' lines of one maillog file, as a reader hands them to Store::Append: host, file,
// fingerprint, byte offsets as in the file (each line and its '\n'), and times.
#ifndef MAILLENS_STORE_TEST_LINES_H_
#define MAILLENS_STORE_TEST_LINES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/store.h"

namespace maillens::store {

// Each line at its own time.
inline std::vector<LineRecord> FileLines(
    const std::string& host, uint64_t fingerprint,
    const std::vector<std::pair<int64_t, std::string>>& timed_raws) {
  std::vector<LineRecord> out;
  uint64_t offset = 0;
  for (const auto& [time_us, raw] : timed_raws) {
    LineRecord r;
    r.host = host;
    r.file_path = "/var/log/mail.log";
    r.fingerprint = fingerprint;
    r.offset = offset;
    r.time_us = time_us;
    r.raw = raw;
    out.push_back(std::move(r));
    offset += raw.size() + 1;
  }
  return out;
}

// One second apart from `start_us` (the stamps in the lines are for the reader; the store
// takes the time given here).
inline std::vector<LineRecord> FileLines(const std::string& host, uint64_t fingerprint,
                                         int64_t start_us, const std::vector<std::string>& raws) {
  std::vector<std::pair<int64_t, std::string>> timed;
  for (const std::string& raw : raws) {
    timed.emplace_back(start_us + static_cast<int64_t>(timed.size()) * 1000000, raw);
  }
  return FileLines(host, fingerprint, timed);
}

}  // namespace maillens::store

#endif  // MAILLENS_STORE_TEST_LINES_H_
