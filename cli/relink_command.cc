#include "cli/relink_command.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/query_language.h"
#include "store/data_lock.h"
#include "store/store.h"

namespace maillens::cli {
namespace {

constexpr char kRelinkUsage[] =
    "usage: maillens [--data DIR] relink [--since TIME] [--host-alias HOST=NAME[,NAME...]]...\n"
    "  Links hops again after names or addresses of a host were declared. Another host logs a\n"
    "  hop to HOST as relay=NAME[ADDRESS]; when NAME or ADDRESS is neither HOST's syslog name\n"
    "  nor declared (a loopback or internal address, a tunnel, an alias), the hop stays\n"
    "  pending. --host-alias declares them (as an agent's addresses = and aliases = do), then\n"
    "  every pending hop handed off since TIME (default: all) is tried again.\n"
    "  Example: maillens --data ./ml relink --host-alias internal=127.0.0.3,mail.example.org\n";

}  // namespace

int RunRelink(const GlobalOptions& global, const std::vector<std::string>& args) {
  ArgParser parser("relink", kRelinkUsage);
  std::string since;
  parser.Option("since", &since);
  // --host-alias may be given several times: take them out before the parser (one value each).
  std::vector<std::string> rest, aliases;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--host-alias" && i + 1 < args.size()) {
      aliases.push_back(args[++i]);
    } else if (args[i].rfind("--host-alias=", 0) == 0) {
      aliases.push_back(args[i].substr(13));
    } else {
      rest.push_back(args[i]);
    }
  }
  std::vector<std::string> positional;
  int exit_code;
  if (!parser.Parse(rest, &positional, &exit_code)) return exit_code;
  if (!positional.empty()) {
    std::fprintf(stderr, "maillens relink: unexpected '%s'\n%s", positional[0].c_str(),
                 kRelinkUsage);
    return 2;
  }
  std::map<std::string, std::vector<std::string>> names;
  for (const std::string& a : aliases) {
    std::vector<std::string> parts = absl::StrSplit(a, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      std::fprintf(stderr, "maillens relink: --host-alias wants HOST=NAME[,NAME...], not '%s'\n",
                   a.c_str());
      return 2;
    }
    for (absl::string_view n : absl::StrSplit(parts[1], ',', absl::SkipWhitespace())) {
      names[parts[0]].push_back(std::string(absl::StripAsciiWhitespace(n)));
    }
  }
  int64_t since_us = INT64_MIN;
  if (!since.empty()) {
    auto t = core::ParseTimeArg(since, absl::Now(), absl::LocalTimeZone());
    if (!t.ok()) {
      std::fprintf(stderr, "maillens relink: %s\n", std::string(t.status().message()).c_str());
      return 2;
    }
    since_us = *t;
  }
  auto lock = store::DataLock::Acquire(global.data_dir, "maillens relink");
  if (!lock.ok()) {
    std::fprintf(stderr, "maillens relink: %s\n", std::string(lock.status().message()).c_str());
    return 1;
  }
  store::StoreOptions options;
  options.dir = global.data_dir;
  auto store = store::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "maillens relink: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  for (const auto& [host, list] : names) {
    absl::Status s = (*store)->AddHostNames(host, list);
    if (!s.ok()) {
      std::fprintf(stderr, "maillens relink: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  auto linked = (*store)->Relink(since_us);
  if (!linked.ok()) {
    std::fprintf(stderr, "maillens relink: %s\n", std::string(linked.status().message()).c_str());
    return 1;
  }
  std::printf("relinked: %lld new link%s\n", static_cast<long long>(*linked),
              *linked == 1 ? "" : "s");
  return 0;
}

}  // namespace maillens::cli
