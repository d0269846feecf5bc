#include "cli/parse_command.h"

#include <cstdio>
#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/event_json.h"
#include "core/parser.h"
#include "store/line_reader.h"

namespace maillens::cli {
namespace {

constexpr char kUsage[] =
    "usage: maillens parse [--stats] [--raw] [--year YYYY] [--tz ZONE] [FILE...|-]\n"
    "  Reads maillog lines (plain or .gz; '-' or no FILE reads standard input) and prints\n"
    "  one JSON object per line: ts (RFC 3339, UTC), host, program, pid, queue_id, kind and\n"
    "  the fields under Postfix's own names, plus queued_as for the next hop's queue ID.\n"
    "  --stats      counts per daemon and kind instead of one object per line\n"
    "  --raw        include the raw line in each object\n"
    "  --year YYYY  year of classic stamps (default: inferred from today, with rollover)\n"
    "  --tz ZONE    zone of classic stamps, e.g. Europe/Berlin (default: this machine's)\n";

struct Options {
  bool stats = false;
  bool raw = false;
  int year = 0;
  std::string tz;
  std::vector<std::string> files;
};

bool ParseArgs(const std::vector<std::string>& args, Options* opt) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "maillens parse: %s needs a value\n", a.c_str());
        return false;
      }
      *out = args[++i];
      return true;
    };
    if (a == "--stats") {
      opt->stats = true;
    } else if (a == "--raw") {
      opt->raw = true;
    } else if (a == "--year") {
      std::string v;
      if (!value(&v)) return false;
      if (!absl::SimpleAtoi(v, &opt->year) || opt->year < 1970 || opt->year > 9999) {
        std::fprintf(stderr, "maillens parse: --year wants a year like 2024, not '%s'\n",
                     v.c_str());
        return false;
      }
    } else if (a == "--tz") {
      if (!value(&opt->tz)) return false;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a.size() > 1 && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "maillens parse: unknown option '%s'\n%s", a.c_str(), kUsage);
      return false;
    } else {
      opt->files.push_back(a);
    }
  }
  if (opt->files.empty()) opt->files.push_back("-");
  return true;
}

}  // namespace

int RunParse(const std::vector<std::string>& args) {
  Options opt;
  if (!ParseArgs(args, &opt)) return 2;
  core::TimeOptions time_options;
  time_options.year = opt.year;
  time_options.reference_us = absl::ToUnixMicros(absl::Now());
  time_options.zone = absl::LocalTimeZone();
  if (!opt.tz.empty() && !absl::LoadTimeZone(opt.tz, &time_options.zone)) {
    std::fprintf(stderr, "maillens parse: unknown time zone '%s' (try e.g. Europe/Berlin)\n",
                 opt.tz.c_str());
    return 2;
  }

  std::map<std::pair<std::string, std::string>, uint64_t> counts;  // (daemon, kind) -> lines
  uint64_t total = 0;
  int exit_code = 0;
  std::string out;
  for (const std::string& path : opt.files) {
    auto reader = store::LineReader::Open(path);
    if (!reader.ok()) {
      std::fprintf(stderr, "maillens parse: %s\n", reader.status().ToString().c_str());
      exit_code = 1;
      continue;
    }
    core::TimeContext time(time_options);  // one stream per file: year inference restarts
    std::string_view line;
    uint64_t offset;
    while ((*reader)->Next(&line, &offset)) {
      ++total;
      core::Event ev = core::ParseLine(line, &time);
      if (opt.stats) {
        std::string daemon(ev.daemon.empty() ? "-" : ev.daemon);
        ++counts[{daemon, std::string(core::KindName(ev.kind))}];
        continue;
      }
      out.clear();
      core::AppendEventJson(ev, line, opt.raw, &out);
      out.push_back('\n');
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    if (!(*reader)->status().ok()) {
      std::fprintf(stderr, "maillens parse: %s: %s\n", path.c_str(),
                   (*reader)->status().ToString().c_str());
      exit_code = 1;
    }
  }
  if (opt.stats) {
    std::printf("%-16s %-22s %10s\n", "daemon", "kind", "lines");
    for (const auto& [key, n] : counts) {
      std::printf("%-16s %-22s %10llu\n", key.first.c_str(), key.second.c_str(),
                  static_cast<unsigned long long>(n));
    }
    std::printf("%-16s %-22s %10llu\n", "total", "", static_cast<unsigned long long>(total));
  }
  return exit_code;
}

}  // namespace maillens::cli
