#include "cli/common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace maillens::cli {

void ArgParser::Flag(const std::string& name, bool* out) { flags_.emplace_back(name, out); }

void ArgParser::Option(const std::string& name, std::string* out) {
  options_.emplace_back(name, out);
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
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
          std::fprintf(stderr, "maillens %s: --%s needs a value\n", command_.c_str(), name.c_str());
          return false;
        }
        value = args[++i];
      }
      *out = value;
    }
    if (!known) {
      std::fprintf(stderr, "maillens %s: unknown option '--%s'\n%s", command_.c_str(), name.c_str(),
                   usage_.c_str());
      return false;
    }
  }
  return true;
}

bool ParseGlobalOptions(int argc, char** argv, int* i, GlobalOptions* out) {
  const char* data = std::getenv("MAILLENS_DATA");
  out->data_dir = data != nullptr && *data != '\0' ? data : "maillens-data";
  const char* server = std::getenv("MAILLENS_SERVER");
  if (server != nullptr && *server != '\0') {
    out->server = server;
    out->server_from_env = true;
  }
  std::pair<const char*, std::string*> options[] = {
      {"--data", &out->data_dir},
      {"--server", &out->server},
      {"--token-file", &out->token_file},
      {"--tls-ca", &out->tls_ca},
      {"--tls-cert", &out->tls_cert},
      {"--tls-key", &out->tls_key},
      {"--tz", &out->tz},
  };
  while (*i < argc && std::strncmp(argv[*i], "--", 2) == 0 &&
         std::strcmp(argv[*i], "--help") != 0 && std::strcmp(argv[*i], "--version") != 0) {
    std::string a = argv[*i];
    if (a == "--allow-plaintext") {
      out->allow_plaintext = true;
      ++*i;
      continue;
    }
    bool known = false;
    for (const auto& [name, value] : options) {
      std::string prefix = std::string(name) + "=";
      if (a == name) {
        if (*i + 1 >= argc) {
          std::fprintf(stderr, "maillens: %s needs a value\n", name);
          return false;
        }
        *value = argv[*i + 1];
        *i += 2;
      } else if (a.rfind(prefix, 0) == 0) {
        *value = a.substr(prefix.size());
        ++*i;
      } else {
        continue;
      }
      if (value == &out->server) out->server_from_env = false;
      known = true;
      break;
    }
    if (!known) {
      std::fprintf(stderr, "maillens: unknown option '%s'\n", a.c_str());
      return false;
    }
  }
  return out->tz.empty() || ApplyTimeZone(out->tz);
}

bool ApplyTimeZone(const std::string& name) {
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(name, &zone)) {
    std::fprintf(stderr,
                 "maillens: --tz '%s' is not a time zone; use a name such as UTC or "
                 "Europe/Berlin (see /usr/share/zoneinfo)\n",
                 name.c_str());
    return false;
  }
  setenv("TZ", name.c_str(), 1);
  tzset();
  return true;
}

bool TakeTimeZoneOption(std::vector<std::string>* args) {
  for (size_t k = 0; k < args->size();) {
    std::string zone;
    const std::string& a = (*args)[k];
    if (a == "--") break;  // what follows is the command's own
    if (a == "--tz" && k + 1 < args->size()) {
      zone = (*args)[k + 1];
      args->erase(args->begin() + k, args->begin() + k + 2);
    } else if (a.rfind("--tz=", 0) == 0) {
      zone = a.substr(5);
      args->erase(args->begin() + k);
    } else {
      ++k;
      continue;
    }
    if (!ApplyTimeZone(zone)) return false;
  }
  return true;
}

std::string ZoneLabel(absl::TimeZone zone) { return absl::FormatTime("%Z", absl::Now(), zone); }

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (Unicode table 3-7: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 when it does not start one.
size_t Utf8SequenceLength(std::string_view s) {
  auto u = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [&](size_t i, unsigned char lo, unsigned char hi) {
    return i < s.size() && u(i) >= lo && u(i) <= hi;
  };
  const unsigned char b = u(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    const unsigned char lo = b == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = b == 0xED ? 0x9F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const unsigned char lo = b == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = b == 0xF4 ? 0x8F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

void AppendHexEscape(unsigned char u, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[u >> 4]);
  out->push_back(kHex[u & 0xF]);
}

}  // namespace

std::string EscapeControls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char u = static_cast<unsigned char>(text[i]);
    const size_t n = Utf8SequenceLength(text.substr(i));
    // U+0080..U+009F encoded in UTF-8 (C2 80..C2 9F) are the C1 controls; a terminal may act
    // on them as on a stray byte 0x80..0x9f (0x9b is CSI, like ESC [).
    const bool c1 = n == 2 && u == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
    if (n == 1 && ((u < 0x20 && u != '\t') || u == 0x7f)) {
      AppendHexEscape(u, &out);
      i += 1;
    } else if (n == 0) {
      AppendHexEscape(u, &out);  // one byte; what follows is looked at afresh
      i += 1;
    } else if (c1) {
      AppendHexEscape(u, &out);
      AppendHexEscape(static_cast<unsigned char>(text[i + 1]), &out);
      i += 2;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string FormatLocalTime(int64_t time_us, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(time_us), zone);
}

bool Confirm(bool yes, const char* command, const char* doing, const std::string& question) {
  if (yes) return true;
  if (!isatty(STDIN_FILENO)) {
    std::fprintf(stderr,
                 "maillens %s: not %s without confirmation: run it in a terminal, or pass --yes\n",
                 command, doing);
    return false;
  }
  std::printf("%s [y/N] ", question.c_str());
  std::fflush(stdout);
  char answer[16] = {0};
  if (std::fgets(answer, sizeof answer, stdin) == nullptr ||
      (answer[0] != 'y' && answer[0] != 'Y')) {
    std::printf("nothing changed\n");
    return false;
  }
  return true;
}

bool StdoutIsTty() { return isatty(STDOUT_FILENO) == 1; }
bool StderrIsTty() { return isatty(STDERR_FILENO) == 1; }

}  // namespace maillens::cli
