// Reads maillog files (plain or gzip) into a Store: the embedded, no-network path
// (`maillens import`), and the one tests use to load the corpus.
// Thread-compatible: one importer per store writer.
#ifndef MAILLENS_STORE_IMPORTER_H_
#define MAILLENS_STORE_IMPORTER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/store.h"

namespace maillens::store {

// What a file holds. Dovecot's own log file (log_path) has no host field: its lines are
// stored under ImportOptions::host, and the correlator joins its deliveries to the hops that
// handed mail to Dovecot (store/correlator.h, MailboxStep).
enum class ImportFormat { kMaillog, kDovecot };

struct ImportOptions {
  ImportFormat format = ImportFormat::kMaillog;
  std::string host;  // host of every line; empty: the line's syslog host field (a maillog's)
  int year = 0;      // year of the first classic stamp; 0: inferred from the file's mtime
  absl::TimeZone zone = absl::UTCTimeZone();
  // Lines per Store::Append (one transaction). Small enough that the store's threads, which
  // index and correlate behind it, overlap it for most of a file: the first batch's insert
  // and the last one's index run alone (docs/STORAGE.md, "Decisions").
  size_t batch_lines = 5000;
  // The store's data directory, where the lines stored are counted after an error (empty:
  // they are not, and ImportOutcome::stored_known is false).
  std::string data_dir;
  // Called after each batch with the bytes read so far (progress display).
  std::function<void(uint64_t bytes_read, uint64_t lines_read)> progress;
  // Refuse (FailedPrecondition, nothing of the file stored) a file that does not look like
  // `format` says: for a maillog, more than half of its first batch_lines lines without a
  // syslog header (a Dovecot log_path file, say), or more than max_new_hosts host names the
  // store does not know yet, counted over the whole file batch by batch (a batch that would
  // pass the limit is refused, and the batches before it stay stored); for a Dovecot log,
  // more than half of its first batch_lines lines not Dovecot's (core::IsDovecotLogPathLine).
  // `maillens import` checks unless --force; a library caller (the corpus tests) imports
  // whatever it is given. A Dovecot log without `host` is refused (InvalidArgument) whatever
  // this says: its lines name none.
  bool check_maillog = false;
  size_t max_new_hosts = 5;
};

struct ImportStats {
  uint64_t read = 0;
  uint64_t stored = 0;
  // Lines already present: at the same place of the same file (importing it again), or from
  // another file of the same host (an extract, a syslog server's copy: `overlapping`).
  uint64_t duplicates = 0;
  uint64_t overlapping = 0;  // of duplicates
  uint64_t unparsed = 0;
  // Kept in the catalog, not stored yet: their day is archived and the archive cannot be
  // trusted (AppendStats::held); stored by a later import or the collector once it can be.
  uint64_t held = 0;
};

// What importing one file did, also when it failed.
struct ImportOutcome {
  absl::Status status;
  // When status is OK: every Append and the final Flush succeeded, so the store's counts are
  // what was committed. On error they come from the store instead (stats.stored: lines of
  // the file in the store now, less those there before; duplicates and unparsed: 0, not
  // known), because an error can undo lines an earlier Append counted (a new day written
  // behind it that failed) and can leave some of the failing batch's days committed.
  ImportStats stats;
  // On error: false when even the store could not be counted; stats.stored is then 0.
  bool stored_known = true;
  // check_maillog refused the file (status says why); stats.stored says what batches before
  // the refused one stored (none when the first one was refused).
  bool refused = false;
};

// Imports one file. On error, what was stored before it stays stored; importing the file again
// completes it without duplicates.
//
// Overlap: a line is stored once per host however many files hold it. Beside the store's
// (file, offset) identity, a line whose host, time and bytes match lines stored from another
// file of that host (Store::LinesOfOtherFiles) is counted against them: the k-th such line
// of this file is stored only if the other files hold fewer than k. So an extract and the
// full log, in either order, store each line once, and lines that legitimately repeat in one
// file (two identical connects in one second) are all kept. The count of each (host, time,
// bytes) is remembered while the file's times stay within 10 minutes of it: a file that jumps
// back further counts a repeat of such a line afresh. The store's caller must be the data
// directory's only writer (store/data_lock.h): the counts after an error are differences it
// takes for its own.
ImportOutcome Import(Store* store, const std::string& path, const ImportOptions& options);

// Import's stats, or its error.
absl::StatusOr<ImportStats> ImportFile(Store* store, const std::string& path,
                                       const ImportOptions& options);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_IMPORTER_H_
