#include "collector/importer.h"

#include <sys/stat.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/line_reader.h"
#include "core/file_fingerprint.h"
#include "core/status_macros.h"
#include "core/syslog_header.h"
#include "core/time_context.h"

namespace maillens::collector {

absl::StatusOr<ImportStats> ImportFile(Store* store, const std::string& path,
                                       const ImportOptions& options) {
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

  ImportStats stats;
  std::vector<LineRecord> batch;
  batch.reserve(options.batch_lines);
  uint64_t fingerprint = 0;
  bool first = true;
  int64_t last_time = time_options.reference_us;
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    MAILLENS_ASSIGN_OR_RETURN(AppendStats appended, store->Append(batch));
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
    rec.host = !options.host.empty() ? options.host : !host.empty() ? std::string(host) : "unknown";
    rec.file_path = path;
    rec.fingerprint = fingerprint;
    rec.offset = offset;
    rec.time_us = last_time;  // a line without a stamp sits with the line before it
    rec.raw = std::string(line);
    batch.push_back(std::move(rec));
    if (batch.size() >= options.batch_lines) MAILLENS_RETURN_IF_ERROR(flush());
  }
  MAILLENS_RETURN_IF_ERROR(flush());
  MAILLENS_RETURN_IF_ERROR(store->Flush());  // the last batch correlated too
  if (!reader->status().ok()) {
    return absl::Status(reader->status().code(),
                        absl::StrCat(path, ": ", reader->status().message()));
  }
  return stats;
}

}  // namespace maillens::collector
