#include "cli/common.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

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
  bool data_given = false, server_given = false;
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
      if (value == &out->server) {
        out->server_from_env = false;
        server_given = true;
      }
      if (value == &out->data_dir) data_given = true;
      known = true;
      break;
    }
    if (!known) {
      std::fprintf(stderr, "maillens: unknown option '%s'\n", a.c_str());
      return false;
    }
  }
  // One source per command: both named is a mistake to point out, not to settle silently; a
  // --data typed on the command line wins over $MAILLENS_SERVER set in the environment.
  if (data_given && server_given) {
    std::fprintf(stderr,
                 "maillens: give --data DIR (a local data directory) or --server HOST:PORT (a "
                 "collector), not both\n");
    return false;
  }
  if (data_given && out->server_from_env) {
    out->server.clear();
    out->server_from_env = false;
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

std::string LocalZoneName() {
  absl::TimeZone zone;
  const char* tz = std::getenv("TZ");
  if (tz != nullptr && *tz != '\0') {
    std::string name = tz[0] == ':' ? tz + 1 : tz;
    return absl::LoadTimeZone(name, &zone) ? name : "";
  }
  std::error_code ec;
  std::string target = std::filesystem::read_symlink("/etc/localtime", ec).string();
  size_t at = target.find("zoneinfo/");
  if (ec || at == std::string::npos) return "";
  std::string name = target.substr(at + 9);
  return absl::LoadTimeZone(name, &zone) ? name : "";
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
