// `maillens tail [-f]`: the newest matching lines of a collector or a data directory, then
// (-f, a collector only) every matching line as the collector stores it.
#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/query_source.h"
#include "cli/store_commands.h"
#include "store/query_proto.h"

namespace maillens::cli {
namespace {

constexpr char kTailUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT ...] tail [-f] [WORD | FIELD:VALUE]...\n"
    "                [--lines N] [--json]\n"
    "  The newest N (default 10, at most 10000) lines matching the search language (see\n"
    "  'maillens search --help'; since:/until: do not apply), oldest first, then with -f\n"
    "  (--follow; needs --server) every matching line as the collector stores it, from every\n"
    "  host, until Ctrl-C. A terminal that falls behind is told how many lines it missed.\n"
    "  With -f a lost collector (a restart, the network) is reconnected to, saying so, and\n"
    "  the newest lines stored meanwhile are shown once (not those older than every line\n"
    "  shown before: search finds them). --json: one object per line.\n"
    "  Example: maillens --server collector:7411 tail -f status:deferred\n";

// Lines a reconnection asks for again, and lines remembered as printed.
constexpr uint32_t kReconnectBacklog = 1000;
constexpr size_t kRememberedLines = 20000;

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
  if (backlog > store::kMaxTailBacklog) {
    std::fprintf(stderr,
                 "maillens tail: --lines is at most %zu (for more lines of a window: "
                 "'maillens search --lines WORDS since:... until:...')\n",
                 store::kMaxTailBacklog);
    return 2;
  }
  if (follow && global.server.empty()) {
    std::fprintf(stderr,
                 "maillens tail: -f follows lines as the collector stores them: give --server "
                 "HOST:PORT (or set $MAILLENS_SERVER); from a data directory, tail shows the "
                 "newest lines only\n");
    return 2;
  }
  auto source = OpenQuerySource(global);
  if (!source.ok()) {
    std::fprintf(stderr, "maillens tail: %s\n", std::string(source.status().message()).c_str());
    return 1;
  }
  // Lines printed lately, so a reconnection's backlog repeats none. By content (time, host,
  // bytes), counted: a line streamed live carries no row id, and identical lines in one
  // second are each printed.
  using LineKey = std::tuple<int64_t, std::string, std::string>;
  std::map<LineKey, int> printed;
  std::deque<LineKey> printed_order;
  // A reconnection's backlog also holds lines that were stored before the tail began but fell
  // outside its first backlog (-n N), never printed: they are not "stored meanwhile". Lines
  // of that backlog older than the oldest line printed (or than the start, when none was)
  // are therefore skipped; a line stored while disconnected with an older time (an agent
  // catching up) is skipped with them, and search finds it.
  const int64_t started_us = absl::ToUnixMicros(absl::Now());
  int64_t oldest_printed_us = INT64_MAX;
  bool reconnecting = false;
  absl::Status status;
  absl::Duration wait = absl::Seconds(1);
  while (true) {
    bool announced = !reconnecting;
    size_t backlog_fresh = 0, backlog_seen = 0;
    // After a loss, the newest lines again: those stored while disconnected among them.
    const uint32_t ask = reconnecting ? std::max<uint32_t>(backlog, kReconnectBacklog) : backlog;
    bool first_chunk = true;
    std::map<LineKey, int> repeatable = reconnecting ? printed : std::map<LineKey, int>();
    const int64_t shown_from_us = oldest_printed_us != INT64_MAX ? oldest_printed_us : started_us;
    uint32_t backlog_left = reconnecting ? ask : 0;  // the backlog comes first, at most `ask`
    status = (*source)->Tail(words, ask, follow, [&](const TailChunk& chunk) {
      if (!announced) {
        std::fprintf(stderr, "maillens tail: reconnected to the collector\n");
        announced = true;
      }
      if (chunk.dropped > 0) {
        std::fflush(stdout);
        std::fprintf(stderr,
                     "maillens tail: %llu stored lines skipped here: this reader fell behind\n",
                     static_cast<unsigned long long>(chunk.dropped));
      }
      std::vector<store::StoredLine> fresh;
      for (const store::StoredLine& line : chunk.lines) {
        const bool in_backlog = backlog_left > 0;
        if (in_backlog) --backlog_left;
        if (in_backlog && line.time_us < shown_from_us) continue;
        LineKey key{line.time_us, line.host, line.raw};
        if (!repeatable.empty()) {  // the backlog after a reconnection, over one or more chunks
          auto it = repeatable.find(key);
          if (it != repeatable.end()) {
            if (--it->second == 0) repeatable.erase(it);
            ++backlog_seen;
            continue;
          }
        }
        if (first_chunk) ++backlog_fresh;
        oldest_printed_us = std::min(oldest_printed_us, line.time_us);
        ++printed[key];
        printed_order.push_back(key);
        if (printed_order.size() > kRememberedLines) {
          auto it = printed.find(printed_order.front());
          if (it != printed.end() && --it->second == 0) printed.erase(it);
          printed_order.pop_front();
        }
        fresh.push_back(line);
      }
      if (first_chunk && reconnecting && backlog_seen == 0 && backlog_fresh >= ask) {
        std::fprintf(stderr,
                     "maillens tail: more than %u lines were stored while disconnected; the "
                     "newest are shown (maillens search --lines since:... for the rest)\n",
                     ask);
      }
      first_chunk = false;
      PrintLines(fresh, json, /*csv=*/false);
      std::fflush(stdout);
      wait = absl::Seconds(1);
      return true;
    });
    // Following never ends by itself: an ended or broken stream is a lost collector. A refusal
    // (token, query) is not retried.
    const bool lost = status.ok() || absl::IsUnavailable(status) || absl::IsCancelled(status) ||
                      absl::IsAborted(status) || absl::IsUnknown(status) ||
                      absl::IsInternal(status);
    if (!follow || !lost) break;
    if (!reconnecting || announced) {
      std::fprintf(stderr, "maillens tail: lost the collector (%s); reconnecting\n",
                   status.ok() ? "the stream ended" : std::string(status.message()).c_str());
    }
    reconnecting = true;
    absl::SleepFor(wait);
    wait = std::min(wait * 2, absl::Seconds(5));
  }
  if (!status.ok()) {
    std::fprintf(stderr, "maillens tail: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace maillens::cli
