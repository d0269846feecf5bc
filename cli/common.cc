#include "cli/common.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace maillens::cli {

void ArgParser::Flag(const std::string& name, bool* out) { flags_.emplace_back(name, out); }

void ArgParser::Option(const std::string& name, std::string* out) {
  options_.emplace_back(name, out);
}

bool ArgParser::Parse(const std::vector<std::string>& args, std::vector<std::string>* positional,
                      int* exit_code) {
  *exit_code = 2;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::fputs(usage_.c_str(), stdout);
      *exit_code = 0;
      return false;
    }
    if (a == "--") {
      positional->insert(positional->end(), args.begin() + i + 1, args.end());
      return true;
    }
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      positional->push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    bool known = false;
    for (auto& [flag, out] : flags_) {
      if (flag == name) {
        *out = true;
        known = true;
      }
    }
    for (auto& [opt, out] : options_) {
      if (opt != name) continue;
      known = true;
      if (!has_value) {
        if (i + 1 >= args.size()) {
          std::fprintf(stderr, "maillens %s: --%s needs a value\n", command_.c_str(),
                       name.c_str());
          return false;
        }
        value = args[++i];
      }
      *out = value;
    }
    if (!known) {
      std::fprintf(stderr, "maillens %s: unknown option '--%s'\n%s", command_.c_str(),
                   name.c_str(), usage_.c_str());
      return false;
    }
  }
  return true;
}

absl::StatusOr<int64_t> ParseTimeArg(const std::string& text, absl::Time now,
                                     absl::TimeZone zone) {
  if (text.empty()) return absl::InvalidArgumentError("empty time");
  // Duration: digits followed by one unit.
  char unit = text.back();
  std::string digits = text.substr(0, text.size() - 1);
  int64_t n;
  if (std::string("smhdw").find(unit) != std::string::npos && absl::SimpleAtoi(digits, &n) &&
      n >= 0) {
    int64_t seconds = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600
                                     : unit == 'd' ? 86400 : 7 * 86400;
    return absl::ToUnixMicros(now - absl::Seconds(n * seconds));
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::ToUnixMicros(t);
  for (const char* format : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                             "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, text, zone, &t, &err)) return absl::ToUnixMicros(t);
  }
  for (const char* format : {"%H:%M:%S", "%H:%M"}) {
    absl::Time clock;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &clock, &err)) {
      absl::CivilDay today = absl::ToCivilDay(now, zone);
      absl::CivilSecond c = absl::ToCivilSecond(clock, absl::UTCTimeZone());
      absl::CivilSecond when(today.year(), today.month(), today.day(), c.hour(), c.minute(),
                             c.second());
      return absl::ToUnixMicros(absl::FromCivil(when, zone));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot read '", text,
      "' as a time: use 2024-05-01, '2024-05-01 10:00', 10:00, 2024-05-01T10:00:00Z, or a "
      "duration ago such as 90s, 15m, 2h, 3d, 1w"));
}

std::string FormatLocalTime(int64_t time_us, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(time_us), zone);
}

bool StdoutIsTty() { return isatty(STDOUT_FILENO) == 1; }
bool StderrIsTty() { return isatty(STDERR_FILENO) == 1; }

}  // namespace maillens::cli
