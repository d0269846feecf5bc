// `maillens import FILE...`: reads maillogs (plain or gzip) into a local data directory.
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "cli/line_reader.h"
#include "cli/store_commands.h"
#include "collector/store.h"
#include "core/parser.h"

namespace maillens::cli {
namespace {

constexpr char kUsage[] =
    "usage: maillens [--data DIR] import [--host NAME] [--year YYYY] [--tz ZONE] FILE...\n"
    "  Stores every line of each FILE (plain or .gz) in DIR, indexes it and links each\n"
    "  message's hops. Importing a file again, or an overlapping file, stores nothing twice.\n"
    "  --host NAME  host the lines come from (default: the host field of each line)\n"
    "  --year YYYY  year of the first classic stamp (default: inferred from the file's time)\n"
    "  --tz ZONE    zone of classic stamps (default: this machine's)\n"
    "  --quiet      no progress and no summary\n";

constexpr size_t kBatchLines = 20000;

struct Totals {
  uint64_t read = 0, stored = 0, duplicates = 0, unparsed = 0;
};

}  // namespace

int RunImport(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string host, year_text, tz;
  bool quiet = false;
  ArgParser parser("import", kUsage);
  parser.Option("host", &host);
  parser.Option("year", &year_text);
  parser.Option("tz", &tz);
  parser.Flag("quiet", &quiet);
  std::vector<std::string> files;
  int exit_code;
  if (!parser.Parse(args, &files, &exit_code)) return exit_code;
  if (files.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  core::TimeOptions time_options;
  time_options.zone = absl::LocalTimeZone();
  if (!tz.empty() && !absl::LoadTimeZone(tz, &time_options.zone)) {
    std::fprintf(stderr, "maillens import: unknown time zone '%s'\n", tz.c_str());
    return 2;
  }
  if (!year_text.empty() && (!absl::SimpleAtoi(year_text, &time_options.year) ||
                             time_options.year < 1970 || time_options.year > 9999)) {
    std::fprintf(stderr, "maillens import: --year wants a year like 2024, not '%s'\n",
                 year_text.c_str());
    return 2;
  }
  auto store = collector::Store::Open(collector::StoreOptions{global.data_dir, false});
  if (!store.ok()) {
    std::fprintf(stderr, "maillens import: %s\n", store.status().ToString().c_str());
    return 1;
  }
  bool progress = !quiet && StderrIsTty();
  Totals totals;
  int rc = 0;
  for (const std::string& path : files) {
    auto reader = LineReader::Open(path);
    if (!reader.ok()) {
      std::fprintf(stderr, "maillens import: %s\n", reader.status().ToString().c_str());
      rc = 1;
      continue;
    }
    struct stat st{};
    stat(path.c_str(), &st);
    core::TimeOptions file_time = time_options;
    // The file's last change is when its last line was written: a stable reference for the
    // year of classic stamps, so importing it again gives the same times.
    file_time.reference_us = static_cast<int64_t>(st.st_mtime) * 1000000;
    core::TimeContext time(file_time);
    std::vector<collector::LineRecord> batch;
    uint64_t fingerprint = 0;
    bool first = true;
    int64_t last_time = file_time.reference_us;
    std::string_view line;
    uint64_t offset;
    auto flush = [&]() -> bool {
      if (batch.empty()) return true;
      auto stats = (*store)->Append(batch);
      batch.clear();
      if (!stats.ok()) {
        std::fprintf(stderr, "\nmaillens import: %s: %s\n", path.c_str(),
                     stats.status().ToString().c_str());
        return false;
      }
      totals.stored += stats->stored;
      totals.duplicates += stats->duplicates;
      totals.unparsed += stats->unparsed;
      if (progress) {
        double pct = st.st_size > 0 ? 100.0 * (*reader)->bytes_read() / st.st_size : 0;
        std::fprintf(stderr, "\r%s: %llu lines (%.0f%%)   ", path.c_str(),
                     static_cast<unsigned long long>(totals.read), pct > 100 ? 100 : pct);
      }
      return true;
    };
    bool ok = true;
    while (ok && (*reader)->Next(&line, &offset)) {
      if (first) {
        fingerprint = collector::FileFingerprint(line);
        first = false;
      }
      ++totals.read;
      core::Event ev = core::ParseLine(line, &time);
      if (ev.ts_form != core::TimestampForm::kNone) last_time = ev.time_us;
      collector::LineRecord rec;
      rec.host = !host.empty() ? host : !ev.host.empty() ? std::string(ev.host) : "unknown";
      rec.file_path = path;
      rec.fingerprint = fingerprint;
      rec.offset = offset;
      rec.time_us = last_time;  // a line without a stamp sits with the line before it
      rec.raw = std::string(line);
      batch.push_back(std::move(rec));
      if (batch.size() >= kBatchLines) ok = flush();
    }
    if (ok) ok = flush();
    if (!ok) rc = 1;
    if (!(*reader)->status().ok()) {
      std::fprintf(stderr, "maillens import: %s: %s\n", path.c_str(),
                   (*reader)->status().ToString().c_str());
      rc = 1;
    }
  }
  if (progress) std::fputs("\n", stderr);
  if (!quiet) {
    std::printf("lines read %llu, stored %llu, already present %llu, unparsed %llu\n",
                static_cast<unsigned long long>(totals.read),
                static_cast<unsigned long long>(totals.stored),
                static_cast<unsigned long long>(totals.duplicates),
                static_cast<unsigned long long>(totals.unparsed));
  }
  return rc;
}

}  // namespace maillens::cli
