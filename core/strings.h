// Bridges between std::string_view and this Abseil (20220623), whose absl::string_view is its
// own type, plus the few string helpers used across modules. Header-only; pure functions.
#ifndef MAILLENS_CORE_STRINGS_H_
#define MAILLENS_CORE_STRINGS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"

namespace maillens::core {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

// ASCII lower case (addresses and host names are compared case-insensitively).
inline std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

inline bool ParseInt(std::string_view s, int64_t* out) { return absl::SimpleAtoi(ToAbsl(s), out); }

}  // namespace maillens::core

#endif  // MAILLENS_CORE_STRINGS_H_
