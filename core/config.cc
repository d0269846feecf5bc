#include "core/config.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/strings.h"

namespace maillens::core {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

bool IsKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

// The offending text in an error message: short, and without bytes that would garble a
// terminal or a log line.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMax) out.append("...");
  out.push_back('\'');
  return out;
}

// What may follow a closing quote: nothing, or a comment.
bool OnlyCommentLeft(std::string_view rest) {
  rest = Trim(rest);
  return rest.empty() || rest.front() == '#';
}

// Parses the text after '='. Sets *error to a message (without position) on failure.
bool ParseValue(std::string_view text, std::string* value, std::string* error) {
  std::string_view s = text;
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  value->clear();
  if (!s.empty() && s.front() == '"') {
    for (size_t i = 1; i < s.size(); ++i) {
      char c = s[i];
      if (c == '"') {
        if (!OnlyCommentLeft(s.substr(i + 1))) {
          *error = absl::StrCat("unexpected text after the closing quote: ",
                                Quote(Trim(s.substr(i + 1))));
          return false;
        }
        return true;
      }
      if (c != '\\') {
        value->push_back(c);
        continue;
      }
      if (++i == s.size()) break;
      switch (s[i]) {
        case '\\':
        case '"':
          value->push_back(s[i]);
          break;
        case 't':
          value->push_back('\t');
          break;
        case 'n':
          value->push_back('\n');
          break;
        default:
          *error = absl::StrCat("unknown escape '\\", std::string(1, s[i]),
                                "' in a quoted value (use \\\\ for a backslash)");
          return false;
      }
    }
    *error = "the quoted value has no closing '\"'";
    return false;
  }
  if (!s.empty() && s.front() == '\'') {
    size_t end = s.find('\'', 1);
    if (end == std::string_view::npos) {
      *error = "the quoted value has no closing \"'\"";
      return false;
    }
    if (!OnlyCommentLeft(s.substr(end + 1))) {
      *error =
          absl::StrCat("unexpected text after the closing quote: ", Quote(Trim(s.substr(end + 1))));
      return false;
    }
    value->assign(s.substr(1, end - 1));
    return true;
  }
  // Unquoted: a '#' after a blank starts a comment, so a value itself may hold '#' ("a#b").
  size_t end = text.size();
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '#' && IsBlank(text[i - 1])) {
      end = i;
      break;
    }
  }
  value->assign(Trim(text.substr(0, end)));
  return true;
}

}  // namespace

absl::StatusOr<Config> Config::Parse(std::string_view text, std::string_view source,
                                     const std::vector<std::string>& allowed_keys) {
  Config config;
  config.source_ = std::string(source);
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a UTF-8 byte order mark
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto error = [&](std::string_view message) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.source_, ":", line_no, ": ", ToAbsl(message)));
    };
    if (line.find('\0') != std::string_view::npos) return error("line holds a NUL byte");
    std::string_view trimmed = Trim(line);
    if (trimmed.empty() || trimmed.front() == '#') continue;
    size_t eq = trimmed.find('=');
    if (eq == std::string_view::npos) {
      return error(absl::StrCat("expected 'key = value', got ", Quote(trimmed)));
    }
    std::string key(Trim(trimmed.substr(0, eq)));
    if (key.empty()) return error("the line has no key before '='");
    if (!std::all_of(key.begin(), key.end(), IsKeyChar)) {
      return error(absl::StrCat("invalid key ", Quote(key),
                                " (keys use letters, digits, '_', '-' and '.')"));
    }
    if (std::find(allowed_keys.begin(), allowed_keys.end(), key) == allowed_keys.end()) {
      std::vector<std::string> known = allowed_keys;
      std::sort(known.begin(), known.end());
      return error(absl::StrCat("unknown key ", Quote(key),
                                " (known keys: ", absl::StrJoin(known, ", "), ")"));
    }
    if (auto it = config.entries_.find(key); it != config.entries_.end()) {
      return error(absl::StrCat("'", key, "' is already set on line ", it->second.line));
    }
    Entry entry;
    entry.line = line_no;
    std::string message;
    if (!ParseValue(trimmed.substr(eq + 1), &entry.value, &message)) {
      return error(absl::StrCat(key, ": ", message));
    }
    config.entries_.emplace(std::move(key), std::move(entry));
  }
  return config;
}

const Config::Entry* Config::Find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

bool Config::Has(std::string_view key) const { return Find(key) != nullptr; }

std::string Config::Where(std::string_view key) const {
  const Entry* entry = Find(key);
  return entry == nullptr ? source_ : absl::StrCat(source_, ":", entry->line);
}

std::string Config::ErrorPrefix(std::string_view key, const Entry& entry) const {
  return absl::StrCat(source_, ":", entry.line, ": ", ToAbsl(key), ": ");
}

std::string Config::GetString(std::string_view key, std::string_view fallback) const {
  const Entry* entry = Find(key);
  return entry == nullptr ? std::string(fallback) : entry->value;
}

absl::StatusOr<std::string> Config::GetRequiredString(std::string_view key) const {
  const Entry* entry = Find(key);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": '", ToAbsl(key), "' must be set"));
  }
  if (entry->value.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(ErrorPrefix(key, *entry), "must not be empty"));
  }
  return entry->value;
}

absl::StatusOr<bool> Config::GetBool(std::string_view key, bool fallback) const {
  const Entry* entry = Find(key);
  if (entry == nullptr) return fallback;
  std::string v = absl::AsciiStrToLower(entry->value);
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat(ErrorPrefix(key, *entry), "expected true or false, got ", Quote(entry->value)));
}

absl::StatusOr<int64_t> Config::GetInt(std::string_view key, int64_t fallback, int64_t min,
                                       int64_t max) const {
  const Entry* entry = Find(key);
  if (entry == nullptr) return fallback;
  int64_t v;
  if (!absl::SimpleAtoi(entry->value, &v)) {
    return absl::InvalidArgumentError(absl::StrCat(
        ErrorPrefix(key, *entry), "expected a whole number, got ", Quote(entry->value)));
  }
  if (v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(ErrorPrefix(key, *entry), v, " is outside [", min, ", ", max, "]"));
  }
  return v;
}

absl::StatusOr<uint64_t> Config::GetBytes(std::string_view key, uint64_t fallback, uint64_t min,
                                          uint64_t max) const {
  const Entry* entry = Find(key);
  if (entry == nullptr) return fallback;
  std::string_view s = entry->value;
  size_t digits = 0;
  while (digits < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[digits]))) {
    ++digits;
  }
  std::string suffix = absl::AsciiStrToLower(ToAbsl(Trim(s.substr(digits))));
  uint64_t unit = 0;
  if (suffix.empty() || suffix == "b") {
    unit = 1;
  } else if (suffix == "k" || suffix == "kib") {
    unit = uint64_t{1} << 10;
  } else if (suffix == "m" || suffix == "mib") {
    unit = uint64_t{1} << 20;
  } else if (suffix == "g" || suffix == "gib") {
    unit = uint64_t{1} << 30;
  }
  uint64_t n;
  if (digits == 0 || unit == 0 || !absl::SimpleAtoi(ToAbsl(s.substr(0, digits)), &n)) {
    return absl::InvalidArgumentError(absl::StrCat(
        ErrorPrefix(key, *entry), "expected a byte count such as 65536, 64K, 16M or 1G, got ",
        Quote(entry->value)));
  }
  if (n > UINT64_MAX / unit || n * unit < min || n * unit > max) {
    return absl::InvalidArgumentError(absl::StrCat(ErrorPrefix(key, *entry), Quote(entry->value),
                                                   " is outside [", min, ", ", max, "] bytes"));
  }
  return n * unit;
}

}  // namespace maillens::core
