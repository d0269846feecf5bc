// `maillens hosts [list]`, `maillens hosts forget NAME [--yes]` (cli/hosts_command.h).
#include "cli/hosts_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "report/table.h"
#include "store/data_lock.h"
#include "store/retention.h"
#include "store/store.h"

namespace maillens::cli {
namespace {

constexpr char kUsage[] =
    "usage: maillens [--data DIR] hosts [list]\n"
    "       maillens [--data DIR] hosts forget NAME [--yes]\n"
    "  list (the default) prints every host of DIR with its stored lines, its messages and\n"
    "  the times of its first and last line (archived days included; when the archive cannot\n"
    "  be trusted they are left out, a note says so and the exit status is 3). MESSAGES\n"
    "  counts the messages the host received or made (through smtpd or pickup, or a bounce\n"
    "  notice it sent), each once: a content filter's re-injection (amavis answering on\n"
    "  127.0.0.1:10025, say) or local(8) forwarding on the host is the same message, not\n"
    "  another; a message relayed to another of our hosts counts on each.\n"
    "  forget removes host NAME with its lines, messages and links from DIR, after asking\n"
    "  (--yes: without asking; needed without a terminal); what was imported by mistake,\n"
    "  such as a file that was not a maillog, goes. A host with lines in archived days is\n"
    "  refused (the archive is never rewritten; its lines would lose their host), naming\n"
    "  the days. It waits for no one: refused while the collector or an import writes to\n"
    "  DIR. It says how many lines, hops (each message's passage through the host,\n"
    "  re-injections included) and links went.\n"
    "  --data only: not through a collector (--server) yet.\n";

std::string Count(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string When(const store::Store::HostSummary& host, int64_t time_us) {
  return host.lines == 0 ? "-" : FormatLocalTime(time_us, absl::LocalTimeZone());
}

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "maillens hosts%s: %s\n", what, std::string(status.message()).c_str());
  return 1;
}

int List(const std::string& dir) {
  store::StoreOptions options;
  options.dir = dir;
  options.read_only = true;
  auto store = store::Store::Open(options);
  if (!store.ok()) return Fail("", store.status());
  auto hosts = (*store)->Hosts();
  if (!hosts.ok()) return Fail("", hosts.status());
  const std::string zone = ZoneLabel(absl::LocalTimeZone());
  std::vector<std::vector<std::string>> rows = {{"HOST", "LINES", "MESSAGES",
                                                 absl::StrCat("FIRST (", zone, ")"),
                                                 absl::StrCat("LAST (", zone, ")")}};
  // A host's name comes from its log lines (or import --host): shown escaped, measured as shown.
  for (const auto& host : *hosts) {
    rows.push_back({EscapeControls(host.name), Count(host.lines), Count(host.messages),
                    When(host, host.first_us), When(host, host.last_us)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], report::DisplayWidth(row[i]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      // Names and times to the left, counts to the right.
      const bool right = i == 1 || i == 2;
      std::string pad(width[i] - report::DisplayWidth(row[i]), ' ');
      absl::StrAppend(&line, i == 0 ? "" : "  ", right ? pad : "", row[i],
                      right || i + 1 == row.size() ? "" : pad);
    }
    std::printf("%s\n", line.c_str());
  }
  std::printf("%zu %s\n", hosts->size(), hosts->size() == 1 ? "host" : "hosts");
  // Counts that leave out archived days the archive cannot vouch for are said to, and the
  // exit status is 3, as for a search.
  if (std::string unread = store::UnreadableArchiveNotice(dir, 0, 99999999); !unread.empty()) {
    std::fprintf(stderr, "note: %s\n", EscapeControls(unread).c_str());
    return 3;
  }
  return 0;
}

int Forget(const std::string& dir, const std::vector<std::string>& args) {
  bool yes = false;
  ArgParser parser("hosts forget", kUsage);
  parser.Flag("yes", &yes);
  std::vector<std::string> names;
  int exit_code;
  if (!parser.Parse(args, &names, &exit_code)) return exit_code;
  if (names.size() != 1) {
    std::fprintf(stderr, "maillens hosts forget: one host NAME, please\n%s", kUsage);
    return 2;
  }
  const std::string& name = names[0];
  // The store's only writer (store/data_lock.h), as an import is.
  auto lock = store::DataLock::Acquire(dir, "maillens hosts forget");
  if (!lock.ok()) return Fail(" forget", lock.status());
  store::StoreOptions options;
  options.dir = dir;
  auto store = store::Store::Open(options);
  if (!store.ok()) return Fail(" forget", store.status());
  auto hosts = (*store)->Hosts();
  if (!hosts.ok()) return Fail(" forget", hosts.status());
  auto host = std::find_if(hosts->begin(), hosts->end(),
                           [&](const store::Store::HostSummary& h) { return h.name == name; });
  if (host == hosts->end()) {
    std::fprintf(stderr,
                 "maillens hosts forget: no host '%s' in %s ('maillens hosts' lists them)\n",
                 EscapeControls(name).c_str(), dir.c_str());
    return 1;
  }
  std::printf("host %s: %s lines (%s .. %s), %s messages\n", EscapeControls(name).c_str(),
              Count(host->lines).c_str(), When(*host, host->first_us).c_str(),
              When(*host, host->last_us).c_str(), Count(host->messages).c_str());
  if (!Confirm(yes, "hosts forget", "removing",
               absl::StrCat("Remove host ", EscapeControls(name),
                            " with its lines, messages and links?"))) {
    return 1;
  }
  auto forgot = (*store)->ForgetHost(name);
  if (!forgot.ok()) {
    std::fprintf(stderr,
                 "maillens hosts forget: %s (what was removed stays removed; run it again to "
                 "finish)\n",
                 std::string(forgot.status().message()).c_str());
    return 1;
  }
  // What was removed: every hop of a message on the host (an instance, re-injections
  // included), which is more than its MESSAGES when a content filter runs there.
  std::printf("forgot host %s: %s lines, %s hops, %s links\n", EscapeControls(name).c_str(),
              Count(forgot->lines).c_str(), Count(forgot->messages).c_str(),
              Count(forgot->links).c_str());
  return 0;
}

}  // namespace

int RunHosts(const GlobalOptions& global, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!global.server.empty()) {
    std::fprintf(stderr, "maillens hosts: --data only: a collector does not answer it yet\n");
    return 2;
  }
  if (!std::filesystem::exists(global.data_dir + "/catalog.db")) {
    std::fprintf(stderr, "maillens hosts: no maillens data in %s\n", global.data_dir.c_str());
    return 1;
  }
  if (args.empty() || args[0] == "list") {
    if (args.size() > 1) {
      std::fprintf(stderr, "maillens hosts list: unexpected argument '%s'\n%s", args[1].c_str(),
                   kUsage);
      return 2;
    }
    return List(global.data_dir);
  }
  if (args[0] == "forget") {
    return Forget(global.data_dir, std::vector<std::string>(args.begin() + 1, args.end()));
  }
  std::fprintf(stderr, "maillens hosts: unknown subcommand '%s'\n%s", args[0].c_str(), kUsage);
  return 2;
}

}  // namespace maillens::cli
