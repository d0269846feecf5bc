#include "cli/archive_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "cli/query_source.h"
#include "core/status_macros.h"
#include "maillens/v1/query.pb.h"
#include "store/data_lock.h"
#include "store/retention.h"

namespace maillens::cli {
namespace {

constexpr char kUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT ...] archive list\n"
    "       maillens [--data DIR | --server HOST:PORT ...] archive verify\n"
    "       maillens [--data DIR | --server HOST:PORT ...] archive export DAY [--host H]\n"
    "                [--output DIR]\n"
    "       maillens [--data DIR] archive repair [--yes]\n"
    "  list    archived days: time range, hosts, lines, file size and SHA-256\n"
    "  verify  checks the manifest (its lines, their chain and order, its end against the head\n"
    "          recorded in archive/HEAD and DIR/archive.head), every archive file against its\n"
    "          SHA-256, and the cached copies; names the day of each problem (exit 1)\n"
    "  repair  rebuilds a manifest that cannot be trusted from the archive files, after you\n"
    "          confirm (--yes: without asking; needed without a terminal); the old manifest is\n"
    "          kept, files it cannot list go to archive/orphans/, nothing is deleted\n"
    "  export  the original lines of DAY (YYYYMMDD or YYYY-MM-DD, hot or archived), per host,\n"
    "          in file and offset order: to stdout, or with --output DIR one DIR/HOST.log each\n"
    "list, verify and export read the collector's archive through --server as well (a reader\n"
    "token is enough; one export at a time per collector); repair runs on the collector's\n"
    "host, with the collector stopped.\n"
    "Archiving itself runs in the collector (hot_days in its config).\n";

std::string Utc(int64_t us) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

// A calendar day as YYYYMMDD: 20231301 or 20230230 is no day, not a day without data.
bool ParseDay(std::string text, int64_t* day) {
  text = absl::StrReplaceAll(text, {{"-", ""}});
  if (text.size() != 8 || !absl::SimpleAtoi(text, day) || *day <= 19700100) return false;
  const int64_t y = *day / 10000, m = *day / 100 % 100, d = *day % 100;
  const absl::CivilDay civil(y, m, d);  // normalizes: 2023-02-30 becomes 2023-03-02
  return civil.year() == y && civil.month() == m && civil.day() == d;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "maillens archive: %s\n", std::string(status.message()).c_str());
  return 1;
}

int List(QuerySource* source) {
  auto listing = source->ArchiveList();
  if (!listing.ok()) return Fail(listing.status());
  if (listing->days().empty()) {
    std::printf("no archived days\n");
    return 0;
  }
  std::printf("%-8s  %-19s  %-19s  %9s  %11s  %-12s  %s\n", "day", "first line (UTC)",
              "last line (UTC)", "lines", "bytes", "sha256", "hosts");
  uint64_t lines = 0, bytes = 0;
  for (const v1::ArchivedDay& d : listing->days()) {
    lines += d.lines();
    bytes += d.bytes();
    std::printf("%-8lld  %-19s  %-19s  %9llu  %11llu  %-12s  %s\n", static_cast<long long>(d.day()),
                Utc(d.first_us()).c_str(), Utc(d.last_us()).c_str(),
                static_cast<unsigned long long>(d.lines()),
                static_cast<unsigned long long>(d.bytes()), d.sha256().substr(0, 12).c_str(),
                absl::StrJoin(d.hosts(), ",").c_str());
  }
  std::printf("%d days, %llu lines, %llu bytes", listing->days_size(),
              static_cast<unsigned long long>(lines), static_cast<unsigned long long>(bytes));
  if (listing->has_head()) std::printf("; manifest chain head %s", listing->head().c_str());
  std::printf("\n");
  return 0;
}

int Verify(QuerySource* source) {
  auto result = source->ArchiveVerify();
  if (!result.ok()) return Fail(result.status());
  for (const std::string& problem : result->problems) {
    std::printf("FAILED %s\n", problem.c_str());
  }
  for (const std::string& note : result->notes) std::printf("note: %s\n", note.c_str());
  if (!result->ok()) {
    std::printf("archive verify: %zu problems\n", result->problems.size());
    return 1;
  }
  std::printf("archive verify: ok, %llu files match the manifest; chain head %s\n",
              static_cast<unsigned long long>(result->files_checked),
              result->head.empty() ? "(empty)" : result->head.c_str());
  return 0;
}

int Export(QuerySource* source, const std::vector<std::string>& args) {
  std::string host, output;
  ArgParser parser("archive export", kUsage);
  parser.Option("host", &host);
  parser.Option("output", &output);
  std::vector<std::string> positional;
  int exit_code;
  if (!parser.Parse(args, &positional, &exit_code)) return exit_code;
  int64_t day = 0;
  if (positional.size() != 1 || !ParseDay(positional[0], &day)) {
    std::fprintf(stderr, "maillens archive export: give one DAY (YYYYMMDD or YYYY-MM-DD)\n%s",
                 kUsage);
    return 2;
  }
  std::map<std::string, std::unique_ptr<std::ofstream>> files;
  if (!output.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(output, ec);
    if (ec) {
      std::fprintf(stderr, "maillens archive export: cannot create %s: %s\n", output.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }
  uint64_t lines = 0;
  absl::Status s = source->ArchiveExport(
      day, host, [&](const std::string& h, std::string_view line) -> absl::Status {
        ++lines;
        if (output.empty()) {
          if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
              std::fputc('\n', stdout) == EOF) {
            return absl::UnavailableError("cannot write to standard output");
          }
          return absl::OkStatus();
        }
        auto& out = files[h];
        if (!out) {
          std::string path = absl::StrCat(output, "/", h, ".log");
          out = std::make_unique<std::ofstream>(path, std::ios::binary | std::ios::trunc);
          if (!*out) return absl::UnavailableError(absl::StrCat("cannot create ", path));
        }
        out->write(line.data(), static_cast<std::streamsize>(line.size()));
        out->put('\n');
        if (!*out) return absl::UnavailableError(absl::StrCat("cannot write ", output));
        return absl::OkStatus();
      });
  if (!s.ok()) return Fail(s);
  for (auto& [h, out] : files) {
    out->close();
    if (!*out) return Fail(absl::UnavailableError(absl::StrCat("cannot write ", output)));
  }
  if (std::fflush(stdout) != 0) return Fail(absl::UnavailableError("cannot write to stdout"));
  if (!output.empty()) {
    std::fprintf(stderr, "exported %llu lines of %lld into %zu file%s in %s\n",
                 static_cast<unsigned long long>(lines), static_cast<long long>(day), files.size(),
                 files.size() == 1 ? "" : "s", output.c_str());
  } else if (lines == 0) {
    // An empty output says nothing by itself: the day is stored, the host sent no line on it.
    std::fprintf(stderr, "maillens archive export: no lines of %lld%s%s\n",
                 static_cast<long long>(day), host.empty() ? "" : " from host ", host.c_str());
  }
  return 0;
}

int Repair(const std::string& dir, const std::vector<std::string>& args) {
  bool yes = false;
  ArgParser parser("archive repair", kUsage);
  parser.Flag("yes", &yes);
  std::vector<std::string> positional;
  int exit_code;
  if (!parser.Parse(args, &positional, &exit_code)) return exit_code;
  if (!positional.empty()) {
    std::fprintf(stderr, "maillens archive repair: unexpected argument '%s'\n%s",
                 positional[0].c_str(), kUsage);
    return 2;
  }
  // Repair writes into the data directory (cache/ while planning, then archive/): one writer
  // at a time, so never beside a running collector, whose retention pass would act on the
  // manifest while it is replaced. Refused at once, naming the holder (store/data_lock.h).
  auto lock = store::DataLock::Acquire(dir, "maillens archive repair");
  if (!lock.ok()) {
    std::fprintf(stderr,
                 "maillens archive repair: %s; stop it first (repair rewrites the manifest, "
                 "which the collector's retention acts on)\n",
                 std::string(lock.status().message()).c_str());
    return 1;
  }
  auto plan = store::PlanArchiveRepair(dir);
  if (!plan.ok()) return Fail(plan.status());
  if (!plan->needed) {
    auto verify = store::VerifyArchive(dir);
    if (verify.ok() && !verify->ok()) {
      std::printf(
          "archive repair: the manifest can be trusted; what 'archive verify' reports is not "
          "the manifest's to repair (a changed or missing archive file: restore it from a "
          "backup)\n");
      return 1;
    }
    std::printf("archive repair: the manifest can be trusted; nothing to repair\n");
    return 0;
  }
  std::printf("The manifest of %s/archive cannot be trusted:\n", dir.c_str());
  for (const std::string& p : plan->problems) std::printf("  %s\n", p.c_str());
  std::printf("A new manifest would list %zu archived days", plan->entries.size());
  if (!plan->entries.empty()) {
    std::printf(" (%lld..%lld)", static_cast<long long>(plan->entries.front().day),
                static_cast<long long>(plan->entries.back().day));
  }
  std::printf(", read from their files, ");
  if (!plan->deletions.empty()) {
    std::printf("the %zu days the old one records as deleted by retention (%lld..%lld), ",
                plan->deletions.size(), static_cast<long long>(plan->deletions.front().day),
                static_cast<long long>(plan->deletions.back().day));
  }
  std::printf("and an entry recording this repair; the old manifest is kept beside it.\n");
  if (plan->entries_lost > 0) {
    // A deletion among them is forgotten: trace and report can no longer say the day went.
    std::printf(
        "  %lld entries the archive's head recorded cannot be read from the old manifest: days "
        "they recorded as deleted by retention will no longer be named as such by trace and "
        "report\n",
        static_cast<long long>(plan->entries_lost));
  }
  for (const std::string& s : plan->set_aside) {
    std::printf("  set aside in archive/orphans/: %s\n", s.c_str());
  }
  if (!Confirm(yes, "archive repair", "repairing", "Rebuild the manifest?")) return 1;
  absl::Status s = store::RepairArchive(dir, *plan);
  if (!s.ok()) return Fail(s);
  auto verify = store::VerifyArchive(dir);
  if (!verify.ok()) return Fail(verify.status());
  std::printf("archive repair: the manifest was rebuilt with %llu entries; chain head %s\n",
              static_cast<unsigned long long>(verify->entries), verify->head.c_str());
  for (const std::string& problem : verify->problems) {
    std::printf("FAILED %s\n", problem.c_str());
  }
  return verify->ok() ? 0 : 1;
}

}  // namespace

int RunArchive(const GlobalOptions& global, const std::vector<std::string>& args) {
  if (args.empty() || WantsHelp(args)) {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub != "list" && sub != "verify" && sub != "export" && sub != "repair") {
    std::fprintf(stderr, "maillens archive: unknown subcommand '%s'\n%s", sub.c_str(), kUsage);
    return 2;
  }
  if ((sub == "list" || sub == "verify") && !rest.empty()) {
    std::fprintf(stderr, "maillens archive %s: unexpected argument '%s'\n%s", sub.c_str(),
                 rest[0].c_str(), kUsage);
    return 2;
  }
  if (sub == "repair" && !global.server.empty()) {
    std::fprintf(stderr,
                 "maillens archive repair: repair rewrites the manifest in the data directory: "
                 "run it on the collector's host with --data DIR, the collector stopped\n");
    return 2;
  }
  if (global.server.empty() && !std::filesystem::exists(global.data_dir + "/catalog.db")) {
    std::fprintf(stderr, "maillens archive: no maillens data in %s\n", global.data_dir.c_str());
    return 1;
  }
  if (sub == "repair") return Repair(global.data_dir, rest);
  auto source = OpenQuerySource(global);
  if (!source.ok()) return Fail(source.status());
  if (sub == "list") return List(source->get());
  if (sub == "verify") return Verify(source->get());
  return Export(source->get(), rest);
}

}  // namespace maillens::cli
