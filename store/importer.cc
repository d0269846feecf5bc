#include "store/importer.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_fingerprint.h"
#include "core/status_macros.h"
#include "core/syslog_header.h"
#include "core/time_context.h"
#include "store/line_reader.h"
#include "store/retention.h"
#include "store/sqlite.h"

namespace maillens::store {

namespace {

constexpr char kSelectFileIds[] = "SELECT id FROM files WHERE fingerprint = ?";
constexpr char kCountFileLines[] = "SELECT count(*) FROM events WHERE file_id = ?";

// Lines of the file with `fingerprint` (under any host) in each hot day of `dir` (day ->
// lines), read from the files. Hot days only: an import stores into hot days (an archived
// day it touches is restored to hot first, store/retention.h).
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
    // The store's layout (store/store.h): days/YYYYMMDD.db.
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
// fails. The only writer's (store/data_lock.h), so the difference is the import's.
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

// 4264 -> "4,264": the counts in a refusal are read by people.
std::string WithCommas(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Whether `line` starts like a syslog line of a mail host: a time, then a host or a program
// with a pid. A Dovecot log_path file ("Nov 22 10:00:00 imap-login: Info: ...",
// "... lmtp(123): Info: ...") has a time and a word, neither.
bool HasSyslogHeader(std::string_view line) {
  core::SyslogHeader header;
  return core::ParseSyslogHeader(line, &header) && (!header.host.empty() || header.pid >= 0);
}

// Whether `line` is one of Dovecot's own log file (log_path).
bool IsDovecotLogLine(std::string_view line) {
  core::SyslogHeader header;
  return core::ParseSyslogHeader(line, &header) &&
         core::IsDovecotLogPathLine(header.host, header.program, header.message);
}

// Whether the line is what a file of `format` holds (check_maillog).
bool LooksLike(ImportFormat format, std::string_view line) {
  return format == ImportFormat::kDovecot ? IsDovecotLogLine(line) : HasSyslogHeader(line);
}

// The identity of a file whose first line's fingerprint the store already holds: that
// fingerprint mixed with its first batch's lines (FNV-1a, top bit cleared as
// core::FileFingerprint's). The same file imported again gets the same one.
uint64_t ContentFingerprint(uint64_t first_line, const std::vector<LineRecord>& batch) {
  uint64_t h = first_line ^ 14695981039346656037ULL;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix("maillens content fingerprint");
  for (const LineRecord& rec : batch) {
    mix(rec.raw);
    mix("\n");
  }
  return h & 0x7fffffffffffffffULL;
}

// Importer's overlap check (ImportFile's comment in importer.h): counts, per (host, time,
// bytes), the lines other files of the host hold and how many of this file's it has met.
// One per imported file.
class OverlapFilter {
 public:
  // Removes from `batch` the lines other files already hold (keeping the order of the rest)
  // and returns how many it removed.
  absl::StatusOr<uint64_t> Filter(Store* store, uint64_t fingerprint,
                                  std::vector<LineRecord>* batch) {
    if (batch->empty()) return 0;
    std::map<std::string_view, std::pair<int64_t, int64_t>> ranges;  // host -> [min, max]
    int64_t batch_first = INT64_MAX;
    for (const LineRecord& line : *batch) {
      auto [it, added] = ranges.try_emplace(line.host, line.time_us, line.time_us);
      if (!added) {
        it->second.first = std::min(it->second.first, line.time_us);
        it->second.second = std::max(it->second.second, line.time_us);
      }
      batch_first = std::min(batch_first, line.time_us);
    }
    for (const auto& [host, range] : ranges) {
      MAILLENS_ASSIGN_OR_RETURN(
          std::vector<Store::TimedRaw> held,
          store->LinesOfOtherFiles(std::string(host), fingerprint, range.first, range.second));
      // Other files do not change while this one is imported: a key met in an earlier batch
      // (a second that spans two batches) keeps its count of this file's lines.
      std::map<Key, uint64_t, std::less<>> fresh;
      for (Store::TimedRaw& line : held) {
        ++fresh[Key(std::string(host), line.time_us, std::move(line.raw))];
      }
      for (auto& [key, n] : fresh) counts_.try_emplace(key, Count{n, 0});
    }
    uint64_t removed = 0;
    if (!counts_.empty()) {
      size_t kept = 0;
      for (size_t i = 0; i < batch->size(); ++i) {
        LineRecord& line = (*batch)[i];
        auto it = counts_.find(KeyView(line.host, line.time_us, line.raw));
        if (it != counts_.end() && ++it->second.seen <= it->second.held) {
          ++removed;
          continue;
        }
        if (kept != i) (*batch)[kept] = std::move(line);
        ++kept;
      }
      batch->resize(kept);
    }
    // Forget what lies well before this batch: the memory stays bounded by the overlap of a
    // few minutes of lines.
    for (auto it = counts_.begin(); it != counts_.end();) {
      it =
          std::get<1>(it->first) < batch_first - kForgetAfterUs ? counts_.erase(it) : std::next(it);
    }
    return removed;
  }

 private:
  static constexpr int64_t kForgetAfterUs = int64_t{600} * 1000000;
  using Key = std::tuple<std::string, int64_t, std::string>;  // host, time, bytes
  using KeyView = std::tuple<std::string_view, int64_t, std::string_view>;
  struct Count {
    uint64_t held = 0;  // lines of other files
    uint64_t seen = 0;  // lines of this file met so far
  };
  std::map<Key, Count, std::less<>> counts_;
};

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
  if (options.format == ImportFormat::kDovecot && options.host.empty()) {
    outcome.refused = true;
    outcome.status = absl::InvalidArgumentError(
        absl::StrCat(path, ": Dovecot's log names no host; --host NAME says which host wrote it"));
    return outcome;
  }
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
    OverlapFilter overlap;
    uint64_t without_header = 0;  // lines of the first batch not of `format` (check_maillog)
    bool first_batch = true;
    std::set<std::string> new_hosts;  // host names this file adds to the store
    // check_maillog: what makes this file look like something else than a maillog.
    auto check = [&]() -> absl::Status {
      if (first_batch && without_header * 2 > batch.size()) {
        // Counted over the whole file for the message; nothing of it is stored.
        uint64_t lines = batch.size(), missing = without_header, dovecot = 0;
        for (const LineRecord& rec : batch) dovecot += IsDovecotLogLine(rec.raw) ? 1 : 0;
        std::string_view line;
        uint64_t offset;
        while (reader->Next(&line, &offset)) {
          ++lines;
          if (!LooksLike(options.format, line)) ++missing;
          if (IsDovecotLogLine(line)) ++dovecot;
        }
        if (options.format == ImportFormat::kDovecot) {
          return absl::FailedPreconditionError(absl::StrCat(
              WithCommas(missing), " of ", WithCommas(lines), " lines of ", path,
              " are not Dovecot's log lines (\"Nov 22 10:00:00 lmtp(user)<pid><session>: Info: "
              "...\"); is it a maillog? Import it without --format dovecot; --force imports it "
              "anyway"));
        }
        return absl::FailedPreconditionError(absl::StrCat(
            "no syslog header on ", WithCommas(missing), " of ", WithCommas(lines), " lines of ",
            path, "; it is not a maillog",
            dovecot * 2 > lines ? ": it is Dovecot's own log (log_path); import it with --format "
                                  "dovecot --host NAME"
                                : "",
            "; --force imports it anyway"));
      }
      if (!options.host.empty()) return absl::OkStatus();
      for (const LineRecord& line : batch) {
        if (!store->KnowsHost(line.host)) new_hosts.insert(line.host);
      }
      if (new_hosts.size() > options.max_new_hosts) {
        std::string some;
        size_t shown = 0;
        for (const std::string& host : new_hosts) {
          if (shown++ == 5) {
            absl::StrAppend(&some, ", ...");
            break;
          }
          absl::StrAppend(&some, shown == 1 ? "" : ", ", host);
        }
        return absl::FailedPreconditionError(absl::StrCat(
            path, " would add ", new_hosts.size(), " new hosts (", some, "), more than ",
            options.max_new_hosts,
            " at once: is it one mail host's log? --host NAME stores every line under one "
            "host; --force imports it as it is"));
      }
      return absl::OkStatus();
    };
    auto flush = [&]() -> absl::Status {
      if (batch.empty()) return absl::OkStatus();
      if (first_batch) {
        // A file whose first line names a file the store holds is that file again (a second
        // import, the rotated copy of a file an agent shipped) or another with the same first
        // line (an extract that starts where the log does). Offsets are no identity between
        // the two: the file gets one of its own, and the lines the other holds are found by
        // the overlap check like any other file's.
        absl::StatusOr<bool> known = store->FingerprintKnown(fingerprint);
        if (!known.ok()) {
          store_failed = true;
          return known.status();
        }
        if (*known) {
          fingerprint = ContentFingerprint(fingerprint, batch);
          for (LineRecord& rec : batch) rec.fingerprint = fingerprint;
          if (baseline.has_value()) {
            auto lines = CountFileLines(options.data_dir, fingerprint);
            if (lines.ok()) {
              baseline->lines = *std::move(lines);
            } else {
              baseline.reset();
              baseline_status = lines.status();
            }
          }
        }
      }
      if (options.check_maillog) {
        absl::Status checked = check();
        if (!checked.ok()) {
          outcome.refused = true;
          return checked;
        }
      }
      first_batch = false;
      absl::StatusOr<uint64_t> overlapping = overlap.Filter(store, fingerprint, &batch);
      if (!overlapping.ok()) {
        store_failed = true;
        return overlapping.status();
      }
      stats.overlapping += *overlapping;
      stats.duplicates += *overlapping;
      if (batch.empty()) {
        if (options.progress) options.progress(reader->bytes_read(), stats.read);
        return absl::OkStatus();
      }
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
      stats.held += appended.held;
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
      if (options.check_maillog && first_batch && !LooksLike(options.format, line)) {
        ++without_header;
      }
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
  outcome.stats.overlapping = 0;
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

}  // namespace maillens::store
