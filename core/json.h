// Minimal JSON text building for output (CLI --json, exports). No parsing. Thread-safe: pure
// functions appending to a caller-owned string.
#ifndef MAILLENS_CORE_JSON_H_
#define MAILLENS_CORE_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace maillens::core {

// Appends `text` as a JSON string literal (with quotes). Log lines are bytes, not text: valid
// UTF-8 passes through, control characters are escaped, and each byte that is not part of a
// valid UTF-8 sequence becomes U+FFFD. Returns false if any byte had to be replaced, so callers
// can say the JSON is not a byte-exact copy.
bool AppendJsonString(std::string_view text, std::string* out);

// Returns true when `text` is valid UTF-8 (overlongs and surrogates rejected).
bool IsValidUtf8(std::string_view text);

// RFC 3339 UTC with microseconds: "2023-03-16T22:05:28.376793Z".
void AppendRfc3339Utc(int64_t time_us, std::string* out);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_JSON_H_
