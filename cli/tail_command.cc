// `maillens tail [-f]`: the newest matching lines a collector holds, then (-f) every matching
// line as the collector stores it.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "cli/query_source.h"
#include "cli/store_commands.h"

namespace maillens::cli {
namespace {

constexpr char kTailUsage[] =
    "usage: maillens --server HOST:PORT tail [-f] [WORD | FIELD:VALUE]... [--lines N] [--json]\n"
    "  The newest N (default 10) lines matching the search language (see 'maillens search\n"
    "  --help'; since:/until: do not apply), oldest first, then with -f (--follow) every\n"
    "  matching line as the collector stores it, from every host, until Ctrl-C. A terminal\n"
    "  that falls behind is told how many lines it missed. --json: one object per line.\n"
    "  Example: maillens --server collector:7411 tail -f status:deferred\n";

}  // namespace

int RunTail(const GlobalOptions& global, const std::vector<std::string>& args) {
  bool follow = false, json = false;
  std::string lines = "10";
  ArgParser parser("tail", kTailUsage);
  parser.Flag("follow", &follow);
  parser.Flag("json", &json);
  parser.Option("lines", &lines);
  std::vector<std::string> positional, words;
  int exit_code;
  // -f and -n N are the short forms tail(1) users type.
  std::vector<std::string> expanded;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-f") {
      expanded.push_back("--follow");
    } else if (args[i] == "-n" && i + 1 < args.size()) {
      expanded.push_back("--lines");
      expanded.push_back(args[++i]);
    } else {
      expanded.push_back(args[i]);
    }
  }
  if (!parser.Parse(expanded, &words, &exit_code)) return exit_code;
  uint32_t backlog = 0;
  if (!absl::SimpleAtoi(lines, &backlog)) {
    std::fprintf(stderr, "maillens tail: --lines wants a number, not '%s'\n", lines.c_str());
    return 2;
  }
  if (global.server.empty()) {
    std::fprintf(stderr,
                 "maillens tail: tail shows lines as a collector stores them: give --server "
                 "HOST:PORT (or set $MAILLENS_SERVER); for a local data directory use "
                 "'search --lines'\n");
    return 2;
  }
  auto source = OpenQuerySource(global);
  if (!source.ok()) {
    std::fprintf(stderr, "maillens tail: %s\n", std::string(source.status().message()).c_str());
    return 1;
  }
  absl::Status status = (*source)->Tail(words, backlog, follow, [json](const TailChunk& chunk) {
    if (chunk.dropped > 0) {
      std::fflush(stdout);
      std::fprintf(stderr,
                   "maillens tail: %llu stored lines skipped here: this reader fell behind\n",
                   static_cast<unsigned long long>(chunk.dropped));
    }
    PrintLines(chunk.lines, json, /*csv=*/false);
    std::fflush(stdout);
    return true;
  });
  if (!status.ok()) {
    std::fprintf(stderr, "maillens tail: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace maillens::cli
