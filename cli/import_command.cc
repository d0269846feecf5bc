// `maillens import FILE...`: reads maillogs (plain or gzip) into a local data directory.
#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/store_commands.h"
#include "store/data_lock.h"
#include "store/importer.h"
#include "store/store.h"

namespace maillens::cli {
namespace {

constexpr char kUsage[] =
    "usage: maillens [--data DIR] import [--format maillog|dovecot] [--host NAME] [--year YYYY]\n"
    "                                    [--tz ZONE] [--host-alias HOST=NAME[,NAME...]]\n"
    "                                    [--quiet] [--force] FILE...\n"
    "  Stores every line of each FILE (plain or .gz) in DIR, indexes it and links each\n"
    "  message's hops. Importing a file again, or an overlapping file, stores nothing twice.\n"
    "  --format dovecot  FILE is Dovecot's own log (log_path, lines like 'Dec  7 16:03:04\n"
    "               lmtp(user)<pid><session>: Info: msgid=<...>: saved mail to INBOX'), which\n"
    "               names no host: --host NAME is required. Its deliveries, Sieve actions and\n"
    "               failures become the last step of the traces of the mail Postfix handed to\n"
    "               Dovecot (LMTP: by the session ID in Postfix's reply), whichever log is\n"
    "               imported first. Dovecot's lines in the maillog (through syslog) need no\n"
    "               option. Default: maillog\n"
    "  --host NAME  host the lines come from (default: the host field of each line)\n"
    "  --year YYYY  year of the first classic stamp (default: inferred from the file's time)\n"
    "  --tz ZONE    zone of classic stamps (default: this machine's)\n"
    "  --host-alias HOST=NAME[,NAME...]  names and addresses under which HOST appears in other\n"
    "               hosts' relay= (as an agent's addresses = and aliases =); repeatable. Hops\n"
    "               imported earlier are linked again with 'maillens relink'.\n"
    "  --quiet      no progress and no summary\n"
    "  --force      import a file that does not look like a maillog: most of its first lines\n"
    "               without a syslog header, or more than 5 host names new to DIR\n"
    "  A line another file already stored for the same host (same time, same bytes: an\n"
    "  extract, a syslog server's copy) is not stored again; lines that repeat within one\n"
    "  file are all kept. The summary counts both kinds as already present.\n"
    "  A line for an archived day while the archive cannot be trusted (see 'maillens archive\n"
    "  verify') is held back, not searchable, until the archive is repaired; the exit status\n"
    "  is then 3 (1: an error).\n";

}  // namespace

int RunImport(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string year_text, tz, format;
  bool quiet = false, force = false;
  store::ImportOptions options;
  ArgParser parser("import", kUsage);
  parser.Option("format", &format);
  parser.Option("host", &options.host);
  parser.Option("year", &year_text);
  parser.Option("tz", &tz);
  parser.Flag("quiet", &quiet);
  parser.Flag("force", &force);
  std::vector<std::string> files;
  int exit_code;
  // --host-alias may repeat: taken out before the parser, which keeps one value per option.
  std::vector<std::string> rest;
  std::map<std::string, std::vector<std::string>> host_names;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string alias;
    if (args[i] == "--host-alias" && i + 1 < args.size()) {
      alias = args[++i];
    } else if (args[i].rfind("--host-alias=", 0) == 0) {
      alias = args[i].substr(13);
    } else {
      rest.push_back(args[i]);
      continue;
    }
    std::vector<std::string> parts = absl::StrSplit(alias, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      std::fprintf(stderr, "maillens import: --host-alias wants HOST=NAME[,NAME...], not '%s'\n",
                   alias.c_str());
      return 2;
    }
    for (absl::string_view n : absl::StrSplit(parts[1], ',', absl::SkipWhitespace())) {
      host_names[parts[0]].push_back(std::string(absl::StripAsciiWhitespace(n)));
    }
  }
  if (!parser.Parse(rest, &files, &exit_code)) return exit_code;
  if (files.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (format == "dovecot") {
    options.format = store::ImportFormat::kDovecot;
  } else if (!format.empty() && format != "maillog") {
    std::fprintf(stderr, "maillens import: --format wants maillog or dovecot, not '%s'\n",
                 format.c_str());
    return 2;
  }
  if (options.format == store::ImportFormat::kDovecot && options.host.empty()) {
    std::fprintf(stderr,
                 "maillens import: Dovecot's log names no host; --host NAME says which host "
                 "wrote it\n");
    return 2;
  }
  options.zone = absl::LocalTimeZone();
  if (!tz.empty() && !absl::LoadTimeZone(tz, &options.zone)) {
    std::fprintf(stderr, "maillens import: unknown time zone '%s'\n", tz.c_str());
    return 2;
  }
  if (!year_text.empty() &&
      (!absl::SimpleAtoi(year_text, &options.year) || options.year < 1970 || options.year > 9999)) {
    std::fprintf(stderr, "maillens import: --year wants a year like 2024, not '%s'\n",
                 year_text.c_str());
    return 2;
  }
  // The store must be the directory's only writer: a second import, or the collector, would
  // replace the days this one writes (store/data_lock.h). Refused at once, naming it.
  auto lock = store::DataLock::Acquire(global.data_dir, "maillens import");
  if (!lock.ok()) {
    std::fprintf(stderr, "maillens import: %s\n", std::string(lock.status().message()).c_str());
    return 1;
  }
  options.data_dir = global.data_dir;
  options.check_maillog = !force;
  store::StoreOptions store_options;
  store_options.dir = global.data_dir;
  store_options.durable = false;          // an interrupted import is completed by running it again
  store_options.correlate_behind = true;  // correlating one batch while inserting the next
  store_options.behind_depth = 4;         // evens out uneven batches (docs/STORAGE.md, Decisions)
  auto store = store::Store::Open(store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "maillens import: %s\n", store.status().ToString().c_str());
    return 1;
  }
  // Declared before the lines, so their hops are linked as they are stored.
  for (const auto& [host, names] : host_names) {
    absl::Status declared = (*store)->AddHostNames(host, names);
    if (!declared.ok()) {
      std::fprintf(stderr, "maillens import: %s\n", std::string(declared.message()).c_str());
      return 1;
    }
  }
  bool progress = !quiet && StderrIsTty();
  store::ImportStats totals;
  int rc = 0;
  bool stored_unknown = false;  // a file failed and its lines stored could not be counted
  for (const std::string& path : files) {
    struct stat st {};
    stat(path.c_str(), &st);
    if (progress) {
      options.progress = [&](uint64_t bytes, uint64_t lines) {
        double pct = st.st_size > 0 ? 100.0 * bytes / st.st_size : 0;
        std::fprintf(stderr, "\r%s: %llu lines (%.0f%%)   ", path.c_str(),
                     static_cast<unsigned long long>(lines), pct > 100 ? 100 : pct);
      };
    }
    store::ImportOutcome outcome = store::Import(store->get(), path, options);
    if (progress) std::fputs("\n", stderr);
    const store::ImportStats& stats = outcome.stats;
    totals.read += stats.read;
    totals.stored += stats.stored;
    totals.duplicates += stats.duplicates;
    totals.unparsed += stats.unparsed;
    totals.held += stats.held;
    if (outcome.refused) {
      // Not a maillog, or not one host's: the message says what to do.
      std::fprintf(stderr, "maillens import: %s\n", std::string(outcome.status.message()).c_str());
      rc = 1;
    } else if (!outcome.status.ok()) {
      // Said even with --quiet: the summary no longer covers every line read.
      std::fprintf(stderr, "maillens import: %s\n", outcome.status.ToString().c_str());
      if (!outcome.stored_known) {
        std::fprintf(stderr,
                     "maillens import: %s: how many of its lines were stored is not known; "
                     "import it again to complete it\n",
                     path.c_str());
        stored_unknown = true;
      } else if (stats.read > 0) {
        std::fprintf(stderr,
                     "maillens import: %s: %llu of its %llu lines read were stored by this "
                     "import; import it again to complete it\n",
                     path.c_str(), static_cast<unsigned long long>(stats.stored),
                     static_cast<unsigned long long>(stats.read));
      }
      rc = 1;
    }
  }
  if (!quiet) {
    // Stored counts only committed lines; "already present" and "unparsed" leave out a file
    // whose store failed (store::ImportOutcome: not known).
    std::printf("lines read %llu, stored %s%llu, already present %llu, unparsed %llu%s\n",
                static_cast<unsigned long long>(totals.read), stored_unknown ? "at least " : "",
                static_cast<unsigned long long>(totals.stored),
                static_cast<unsigned long long>(totals.duplicates),
                static_cast<unsigned long long>(totals.unparsed),
                rc != 0 ? " (incomplete: see the errors above)" : "");
  }
  if (totals.held > 0) {
    // Not an error (nothing is lost) but not a complete import either: searches cannot find
    // these lines yet.
    std::fprintf(stderr,
                 "maillens import: %llu lines held back, not searchable yet: their days are "
                 "archived and the archive cannot be trusted; run 'maillens archive verify', "
                 "then 'maillens archive repair'; they are stored by the next import or "
                 "collector run after that\n",
                 static_cast<unsigned long long>(totals.held));
    if (rc == 0) rc = 3;
  }
  return rc;
}

}  // namespace maillens::cli
