// Small, allocation-free scanners shared by the message parsers. Every function takes and
// returns views into the caller's text. Thread-safe: pure functions.
#ifndef MAILLENS_CORE_SCAN_H_
#define MAILLENS_CORE_SCAN_H_

#include <cstdint>
#include <string_view>

namespace maillens::core {

// If `*s` starts with `prefix`, removes it and returns true.
inline bool Consume(std::string_view* s, std::string_view prefix) {
  if (s->size() < prefix.size() || s->compare(0, prefix.size(), prefix) != 0) return false;
  s->remove_prefix(prefix.size());
  return true;
}

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

inline bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Finds `key=` at a word boundary (start, or after ' ' or ',') and returns its value: for
// `key=<...>` the text inside the angle brackets (up to the last '>' that is followed by ',',
// ' ' or the end), otherwise up to the next ',' or ' '. Absent key: a view with data() null.
std::string_view FindValue(std::string_view text, std::string_view key);

// Same, but the value runs to the end of `text` or to `stop` (e.g. "status=" value up to " (").
std::string_view FindValueUntil(std::string_view text, std::string_view key, std::string_view stop);

// Splits "host[ip]:port", "host[ip]", "[ip]:port", "host[/path/socket]" and "host". Missing
// parts are left untouched. Returns false when `text` is empty.
struct HostAddress {
  std::string_view host;
  std::string_view ip;  // or socket path / service for "host[private/dovecot-lmtp]"
  std::string_view port;
};
bool SplitHostAddress(std::string_view text, HostAddress* out);

// Reads "host[ip]" or "host[ip]:port" at the start of `*s` and advances past it. Returns false
// (leaving `*s` unchanged) if there is no '[' ... ']' before the next space.
bool ConsumeHostAddress(std::string_view* s, std::string_view* whole, HostAddress* out);

// Reads decimal digits at the start of `*s`; returns false if none.
bool ConsumeNumber(std::string_view* s, std::string_view* digits);

// Splits off text up to the first `sep` (not included); `*s` is left after `sep`. Returns
// false (and leaves `*s`) if `sep` does not occur.
bool SplitOnce(std::string_view* s, std::string_view sep, std::string_view* head);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_SCAN_H_
