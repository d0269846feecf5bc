#include "collector/importer.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/line_reader.h"
#include "collector/retention.h"
#include "collector/sqlite.h"
#include "core/file_fingerprint.h"
#include "core/status_macros.h"
#include "core/syslog_header.h"
#include "core/time_context.h"

namespace maillens::collector {

namespace {

constexpr char kSelectFileIds[] = "SELECT id FROM files WHERE fingerprint = ?";
constexpr char kCountFileLines[] = "SELECT count(*) FROM events WHERE file_id = ?";

// Lines of the file with `fingerprint` (under any host) in each hot day of `dir` (day ->
// lines), read from the files. Hot days only: an import stores into hot days (an archived
// day it touches is restored to hot first, collector/retention.h).
absl::StatusOr<std::map<int64_t, uint64_t>> CountFileLines(const std::string& dir,
                                                           uint64_t fingerprint) {
  std::map<int64_t, uint64_t> lines;
  const std::string catalog_path = dir + "/catalog.db";
  if (!std::filesystem::exists(catalog_path)) return lines;
  std::vector<int64_t> file_ids;
  {
    MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> catalog,
                              Database::Open(catalog_path, Database::Mode::kReadOnly));
    MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog->Prepare(kSelectFileIds));
    select.Bind(1, static_cast<int64_t>(fingerprint));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      file_ids.push_back(select.ColumnInt(0));
    }
  }
  if (file_ids.empty()) return lines;  // a file new to the store: nothing to open
  for (int64_t day : HotDays(dir)) {
    // The store's layout (collector/store.h): days/YYYYMMDD.db.
    MAILLENS_ASSIGN_OR_RETURN(
        std::unique_ptr<Database> partition,
        Database::Open(absl::StrCat(dir, "/days/", day, ".db"), Database::Mode::kReadOnly));
    MAILLENS_ASSIGN_OR_RETURN(Statement count, partition->Prepare(kCountFileLines));
    for (int64_t id : file_ids) {
      count.Bind(1, id);
      MAILLENS_ASSIGN_OR_RETURN(auto step, count.Step());
      if (step == Statement::StepResult::kRow && count.ColumnInt(0) > 0) {
        lines[day] += static_cast<uint64_t>(count.ColumnInt(0));
      }
      count.Reset();
    }
  }
  return lines;
}

// What the store holds of the file before the import touches it, to count what it added if it
// fails. The only writer's (collector/data_lock.h), so the difference is the import's.
struct Baseline {
  std::map<int64_t, uint64_t> lines;  // CountFileLines
  std::set<int64_t> archived;         // days archived then: restored ones are not counted
};

// Lines the import added since `before`: a lower bound where a day came back from the
// archive (its lines from before are not told apart from the import's).
absl::StatusOr<uint64_t> LinesAdded(const std::string& dir, uint64_t fingerprint,
                                    const Baseline& before) {
  MAILLENS_ASSIGN_OR_RETURN(auto after, CountFileLines(dir, fingerprint));
  uint64_t added = 0;
  for (const auto& [day, lines] : after) {
    if (before.archived.count(day) != 0) continue;
    auto it = before.lines.find(day);
    const uint64_t had = it == before.lines.end() ? 0 : it->second;
    if (lines > had) added += lines - had;
  }
  return added;
}

}  // namespace

absl::StatusOr<ImportStats> ImportFile(Store* store, const std::string& path,
                                       const ImportOptions& options) {
  ImportOutcome outcome = Import(store, path, options);
  if (!outcome.status.ok()) return outcome.status;
  return outcome.stats;
}

ImportOutcome Import(Store* store, const std::string& path, const ImportOptions& options) {
  ImportOutcome outcome;
  uint64_t fingerprint = 0;
  bool first = true;
  std::optional<Baseline> baseline;  // taken at the first line, before any Append
  absl::Status baseline_status;
  bool store_failed = false;  // else only reading failed, and every Append's counts hold
  outcome.status = [&]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<LineReader> reader, LineReader::Open(path));
    struct stat st {};
    stat(path.c_str(), &st);
    core::TimeOptions time_options;
    time_options.year = options.year;
    time_options.zone = options.zone;
    // The file's last change is when its last line was written: a stable reference for the year
    // of classic stamps, so importing the same file again gives the same times.
    time_options.reference_us = static_cast<int64_t>(st.st_mtime) * 1000000;
    core::TimeContext time(time_options);

    ImportStats& stats = outcome.stats;
    std::vector<LineRecord> batch;
    batch.reserve(options.batch_lines);
    int64_t last_time = time_options.reference_us;
    auto flush = [&]() -> absl::Status {
      if (batch.empty()) return absl::OkStatus();
      absl::StatusOr<AppendStats> appended_or = store->Append(batch);
      if (!appended_or.ok()) {
        store_failed = true;
        return appended_or.status();
      }
      const AppendStats& appended = *appended_or;
      batch.clear();
      stats.stored += appended.stored;
      stats.duplicates += appended.duplicates;
      stats.unparsed += appended.unparsed;
      if (options.progress) options.progress(reader->bytes_read(), stats.read);
      return absl::OkStatus();
    };
    std::string_view line;
    uint64_t offset;
    while (reader->Next(&line, &offset)) {
      if (first) {
        fingerprint = core::FileFingerprint(line);
        first = false;
        if (!options.data_dir.empty()) {
          auto lines = CountFileLines(options.data_dir, fingerprint);
          if (lines.ok()) {
            baseline = Baseline{*std::move(lines), {}};
            for (int64_t day : ArchivedDays(options.data_dir)) baseline->archived.insert(day);
          } else {
            baseline_status = lines.status();
          }
        }
      }
      ++stats.read;
      // The header is all the importer needs (the store parses the rest): the time, as
      // core::ParseLine resolves it, and the host.
      core::SyslogHeader header;
      std::string_view host;
      if (core::ParseSyslogHeader(line, &header)) {
        host = header.host;
        if (header.ts_form == core::TimestampForm::kClassic) {
          last_time = time.ResolveClassic(header.month, header.day, header.hour, header.minute,
                                          header.second, header.micros);
        } else if (header.ts_form == core::TimestampForm::kRfc3339) {
          last_time = header.utc_us;
        }
      }
      LineRecord rec;
      rec.host = !options.host.empty() ? options.host
                 : !host.empty()       ? std::string(host)
                                       : "unknown";
      rec.file_path = path;
      rec.fingerprint = fingerprint;
      rec.offset = offset;
      rec.time_us = last_time;  // a line without a stamp sits with the line before it
      rec.raw = std::string(line);
      batch.push_back(std::move(rec));
      if (batch.size() >= options.batch_lines) MAILLENS_RETURN_IF_ERROR(flush());
    }
    MAILLENS_RETURN_IF_ERROR(flush());
    // The last batch correlated too, and every new day written behind on disk.
    if (absl::Status s = store->Flush(); !s.ok()) {
      store_failed = true;
      return s;
    }
    if (!reader->status().ok()) {
      return absl::Status(reader->status().code(),
                          absl::StrCat(path, ": ", reader->status().message()));
    }
    return absl::OkStatus();
  }();
  if (outcome.status.ok() || !store_failed) return outcome;
  // What the Appends said is not what is kept: count it. Wait for the store's threads first
  // (their error is the same failure, or a consequence of it).
  (void)store->Flush();
  outcome.stats.duplicates = 0;
  outcome.stats.unparsed = 0;
  outcome.stats.stored = 0;
  if (first) return outcome;  // not one line read: nothing stored
  absl::StatusOr<uint64_t> added =
      !baseline.has_value()
          ? absl::Status(absl::FailedPreconditionError(
                options.data_dir.empty() ? "no data directory to count in"
                                         : std::string(baseline_status.message())))
          : LinesAdded(options.data_dir, fingerprint, *baseline);
  if (added.ok()) {
    outcome.stats.stored = *added;
  } else {
    outcome.stored_known = false;
  }
  return outcome;
}

}  // namespace maillens::collector
