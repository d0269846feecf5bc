// A small configuration file format shared by the maillens programs:
//
//   # a comment line
//   listen = 0.0.0.0:7411
//   data_dir = "/var/lib/maillens"     # a comment after a value
//   allow_plaintext = false
//
// One `key = value` per line; blank lines and lines starting with '#' are ignored. A value may
// be quoted ("..." with \" and \\ escapes, or '...' taken literally) to keep leading or
// trailing spaces or a " #" that would otherwise start a comment. Each key may appear once.
// The caller declares the keys it knows; an unknown key is an error naming the file and line,
// because a misspelt key silently ignored is a setting silently not applied.
//
// Parsing is pure (the caller reads the file), so the same rules serve tests and programs.
// Thread-safety: a Config is immutable after Parse; const methods may be called concurrently.
#ifndef MAILLENS_CORE_CONFIG_H_
#define MAILLENS_CORE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace maillens::core {

class Config {
 public:
  // Parses `text`, the contents of `source` (a file name, used in error messages as
  // "source:line: ..."). Keys outside `allowed_keys` are errors.
  static absl::StatusOr<Config> Parse(std::string_view text, std::string_view source,
                                      const std::vector<std::string>& allowed_keys);

  bool Has(std::string_view key) const;

  // "source:line" of the key, or just "source" when the key is absent; for messages about a
  // value the caller judges invalid.
  std::string Where(std::string_view key) const;

  // The value as written (quotes removed), or `fallback` when the key is absent.
  std::string GetString(std::string_view key, std::string_view fallback = "") const;

  // An error naming the key when it is absent or empty.
  absl::StatusOr<std::string> GetRequiredString(std::string_view key) const;

  // true/false, yes/no, on/off, 1/0 (any case).
  absl::StatusOr<bool> GetBool(std::string_view key, bool fallback) const;

  // A whole number within [min, max].
  absl::StatusOr<int64_t> GetInt(std::string_view key, int64_t fallback, int64_t min = INT64_MIN,
                                 int64_t max = INT64_MAX) const;

  // A byte count with an optional binary suffix: 512, 64K, 16M, 1G (or KiB, MiB, GiB), within
  // [min, max].
  absl::StatusOr<uint64_t> GetBytes(std::string_view key, uint64_t fallback, uint64_t min = 0,
                                    uint64_t max = UINT64_MAX) const;

 private:
  struct Entry {
    std::string value;
    int line = 0;
  };

  const Entry* Find(std::string_view key) const;
  std::string ErrorPrefix(std::string_view key, const Entry& entry) const;

  std::string source_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace maillens::core

#endif  // MAILLENS_CORE_CONFIG_H_
