// Retention: a hot window of day partitions, a compressed and tamper-evident archive that
// queries still read, and deletion by policy.
//
// Layout beside the store (store/store.h):
//   archive/YYYYMMDD.db.gz     a finalised partition (FTS5 optimised, vacuumed), gzip; one
//                              file with its full-text index inside, also for a day whose
//                              hot partition keeps it in days/YYYYMMDD.fts.db (schema.h)
//   archive/YYYYMMDD.N.db.gz   the day archived again (generation N >= 2, see "late lines")
//   archive/MANIFEST           one line per event ("archive", "delete", "repair"), chained by
//                              SHA-256
//   archive/HEAD               where the manifest ends (entry count, last chain hash, last
//                              entry's kind and day); HEAD.next while an append is committed
//   archive.head               the same, outside archive/ (DATA_DIR/archive.head)
//   archive/orphans/           archive files no trusted manifest names, kept aside, never
//                              removed by maillens
//   archive/LOCK               flock(2): one archiver or restorer at a time, across processes
//   archive/tmp/               work files; whatever is left there after a crash is dropped
//   cache/                     decompressed archived days (DAY.SHA16.db, with DAY.SHA16.db.sha256
//                              holding the copy's SHA-256 as extracted), read-only, bounded
//                              (LRU by mtime); a process not running as the data directory's
//                              owner uses a private cache instead (ArchiveCacheDir)
//
// Manifest. Each line holds: sequence number, kind, day, file, generation, time range, line
// count, last row id, hosts, the SHA-256 of the archive file and the chain hash, which is the
// SHA-256 of the previous line's chain hash followed by this line's fields. Changing an
// archive file breaks its SHA-256; `maillens archive verify` checks it and names the day.
//
// Trust. Retention deletes by what the manifest says, so nothing acts on a manifest that
// cannot be trusted (docs/STORAGE.md, "Archive trust model"). It is trusted when every line
// is well formed, numbered 1, 2, ... in order, chained to the entry numbered before it, and
// it ends where archive/HEAD (or HEAD.next, in an append's crash window) says, with
// archive.head naming its end or an earlier entry of it (the copy is written after the
// commit, so it may lag). A missing manifest, a line removed (first, middle or last), changed,
// malformed or moved, or a manifest cut short together with HEAD is told, by the day
// concerned (a removed line's day through its archive file, which no entry names then). An
// archive with no head recorded (of an older maillens) is trusted as found and recovery
// records its head; one with archive files but neither manifest nor head is not. The chain
// has no secret: this guards against a manifest lost, cut short, edited or restored from an
// older backup, not against someone rewriting manifest and both heads on purpose.
// While the manifest cannot be trusted: recovery, archiving, deletion and restoring refuse
// (the pass fails with the reason, and a late line for a day the archive may hold is
// refused, while new days are stored); ArchivedDays lists nothing and UnreadableArchive names
// the days a query then leaves out (its notice makes the CLI exit 3); `maillens archive
// repair` rebuilds the manifest from the files once the admin confirms, ending it with a
// "repair" entry. An archive file is removed only when a trusted manifest says it was
// superseded or its day deleted, or when it is an interrupted archiving step's (a generation
// newer than any entry, its day still hot); any other file no entry names goes to orphans/.
// A cached copy is read only while it has the SHA-256 it was extracted with; otherwise it
// is extracted again from its archive file, which is checked against the manifest first.
//
// Crash safety. Every file is written to archive/tmp, fsynced and renamed into place, and the
// directory fsynced. The manifest is rewritten the same way (HEAD.next before it, archive.head
// and HEAD after it): appending its entry is the commit point of archiving or deleting a day.
// Before it, the day is still hot (the new archive file is an orphan that Recover() removes); after
// it, the day is archived, and removing the hot partition (or, for a deletion, the file) is
// finished by Recover() if a crash interrupted it. So a SIGKILL at any point leaves a day hot, or
// archived whole, or (deletion by policy) gone — never half-written.
//
// Late lines. The collector's writer only writes recent days, and only days older than the
// hot window are archived. A line that still arrives for an archived day (an agent offline for
// longer than the hot window, an import of old logs) is not refused: Store restores the
// day's archive into a hot partition (RestoreDay), appends to it, and the next retention pass
// archives the day again as generation N+1, whose manifest entry supersedes the earlier one
// (whose file is then removed). Refusing was the other choice, but an acknowledgement is per
// batch: one old line would hold back a whole batch of current ones, or be lost.
// A hot partition is authoritative whenever it exists: it always holds everything the
// archive held. ArchiveDay removes the hot partition only if it still holds exactly the lines
// it archived; otherwise the day stays hot and is archived again on the next pass.
//
// Thread-safety: the functions are thread-safe and process-safe (archive/LOCK serialises
// archiving, deletion, restoring and recovery; readers never take it).
#ifndef MAILLENS_STORE_RETENTION_H_
#define MAILLENS_STORE_RETENTION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/mutex.h"

namespace maillens::store {

// Where retention says what it did (kInfo) and what went wrong (kWarning, kError), one line
// each. The collector sends the lines to its log; without one they go to standard error.
enum class LogLevel { kInfo, kWarning, kError };
using RetentionLog = std::function<void(LogLevel level, const std::string& line)>;

struct RetentionPolicy {
  // UTC days kept hot (indexed, writable), today included. At least 1.
  int hot_days = 7;
  // UTC days kept in all (hot and archived), today included; older days are deleted.
  // 0: archived days are kept forever.
  int archive_days = 0;
  // Bytes the data directory may use, everything under it counted (DataUsage: days, catalog
  // less its free pages, journal, archive, cache); over it the oldest days are deleted first, hot
  // or archived, never today. 0: no budget.
  uint64_t disk_budget_bytes = 0;
  // Above this share of the budget a warning names the day deleted next.
  double warn_fraction = 0.9;
};

// One manifest line.
struct ArchiveEntry {
  // kRepair: `maillens archive repair` rebuilt the manifest from the archive files (day: when,
  // lines: the files listed, sha256: of the manifest it replaced, "-" when there was none).
  enum class Kind { kArchive, kDelete, kRepair };
  int64_t seq = 0;
  Kind kind = Kind::kArchive;
  int64_t day = 0;
  int generation = 0;    // kArchive: 1, 2, ...
  std::string file;      // kArchive: name in archive/
  int64_t first_us = 0;  // kArchive: time range of the day's lines
  int64_t last_us = 0;
  // kDelete: first_us is when the day was deleted (0: by a maillens that did not record it).
  uint64_t lines = 0;   // kArchive: lines archived; kDelete: lines deleted (as known)
  int64_t last_id = 0;  // kArchive: the partition's highest row id
  std::vector<std::string> hosts;
  std::string sha256;  // kArchive: hex SHA-256 of the archive file
  std::string chain;   // hex SHA-256 of the previous chain and this line's fields
};

struct RetentionStats {
  std::vector<int64_t> archived;  // days archived by this pass
  std::vector<int64_t> deleted;   // days deleted (window or budget)
  uint64_t disk_bytes = 0;        // after the pass
  std::vector<std::string> warnings;
};

// Test hook: called between the steps of archiving and deletion ("snapshot", "compressed",
// "renamed", "head-next", "manifest-renamed", "manifest", "unlinked") so a test can kill or
// fail there.
using RetentionProbe = void (*)(const char* step, int64_t day);
void SetRetentionProbeForTest(RetentionProbe probe);

// Finishes or rolls back what a crash interrupted (see the header comment), and removes from
// the catalog the messages of deleted days a crash (or an open store) left there
// (PurgeDeletedMessages). Run before the first pass; RunRetention runs it too.
absl::Status RecoverArchive(const std::string& dir, const RetentionLog& log = {});

// Archives hot day `day` (see the header comment). FailedPrecondition when the day is not hot
// or its lines are not all correlated yet, or not all indexed yet in its full-text index file
// (it is then left for a later pass). The hot partition goes with its index file.
absl::Status ArchiveDay(const std::string& dir, int64_t day);

// Deletes `day` (hot partition, its full-text index file and every archive file), recording it
// in the manifest, then forgets its messages in the catalog (PurgeDeletedMessages).
absl::Status DeleteDay(const std::string& dir, int64_t day);

// Removes from the catalog the messages whose lines were all on days the manifest records as
// deleted (no day of their time span is still held, hot or archived), with their recipients,
// links and pending hops, in one transaction. Idempotent: DeleteDay runs it after the
// manifest's commit, and recovery runs it again, so a crash in between leaves rows that the
// next pass removes — never rows without a message. Refuses (like every step) while the
// manifest cannot be trusted. `*purged`, when set, receives the messages removed. Safe beside
// a Store open for writing in another connection: the writer waits for it (busy timeout), and
// its correlator only reaches messages through catalog queries, which no longer find them.
absl::Status PurgeDeletedMessages(const std::string& dir, uint64_t* purged = nullptr);

// Days retention deleted (and not held again since), with when, as the manifest says.
struct DeletedDay {
  int64_t day = 0;         // YYYYMMDD
  int64_t deleted_us = 0;  // 0: not recorded
};
std::vector<DeletedDay> DeletedDays(const std::string& dir);

// A query's notice that days within [first_day, last_day] were deleted by retention, naming
// them and when; empty when none were. Not an error: their lines and messages are gone by
// policy, and the answer says so instead of showing nothing, or facts without lines.
// It starts with kDeletedByRetentionNotice.
inline constexpr char kDeletedByRetentionNotice[] = "deleted by retention";
std::string DeletedDaysNotice(const std::string& dir, int64_t first_day, int64_t last_day);

// One pass: recovery, then archive the days older than the hot window, delete the days
// older than the archive window, then enforce the disk budget. `now_us` decides the windows.
// Errors of one day are logged and the pass goes on to the others.
// `cancel`, when set, stops the pass between two days.
absl::StatusOr<RetentionStats> RunRetention(const std::string& dir, const RetentionPolicy& policy,
                                            int64_t now_us, const RetentionLog& log = {},
                                            const std::atomic<bool>* cancel = nullptr);

// Runs RunRetention on its own thread (never the store's writer: archiving a day takes
// seconds, ingestion must not wait for it) at construction and then every `interval`. Errors
// are logged. Thread-safe.
class RetentionRunner {
 public:
  RetentionRunner(std::string dir, RetentionPolicy policy, absl::Duration interval,
                  RetentionLog log);
  ~RetentionRunner();
  RetentionRunner(const RetentionRunner&) = delete;
  RetentionRunner& operator=(const RetentionRunner&) = delete;

  // Ends the thread after the day being worked on. Idempotent.
  void Stop();
  // Passes finished so far.
  uint64_t passes() const;

 private:
  void Run();

  const std::string dir_;
  const RetentionPolicy policy_;
  const absl::Duration interval_;
  const RetentionLog log_;
  std::atomic<bool> cancel_{false};
  mutable core::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// --- Reading the archive -------------------------------------------------------------------

// The manifest's entries in order. An absent manifest is empty.
absl::StatusOr<std::vector<ArchiveEntry>> ReadManifest(const std::string& dir);

// The live archive entry of each archived day (the newest generation not deleted since),
// oldest day first.
absl::StatusOr<std::vector<ArchiveEntry>> LiveArchive(const std::string& dir);

// --- Files ---------------------------------------------------------------------------------

// Writes `data` to `path` by way of a temp file in the same directory: fsync, rename, fsync
// of the directory. Readers see the old or the new contents, never a mix.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data);
// WriteFileAtomic for several files at once: one wait for the disk, each file renamed in
// order (a crash may leave the first ones renamed, not the later ones), each directory
// fsynced once.
absl::Status WriteFilesAtomic(absl::Span<const std::pair<std::string, std::string_view>> files);
// Removes an SQLite file with its WAL and shared-memory files; a missing one is fine.
absl::Status UnlinkDatabase(const std::string& path);

// Days held hot (days/YYYYMMDD.db) and days held in the archive, each sorted. ArchivedDays
// lists only what a trusted manifest holds; UnreadableArchive names the rest.
std::vector<int64_t> HotDays(const std::string& dir);
std::vector<int64_t> ArchivedDays(const std::string& dir);

// Archived days that are not read because the manifest cannot be trusted (see "Trust"): the
// days of its readable entries and of the archive files, less the hot days. `reason` is empty
// when the archive can be read; `days` may be empty beside a reason (which days is unknown).
struct ArchiveReadProblem {
  std::vector<int64_t> days;
  std::string reason;
};
ArchiveReadProblem UnreadableArchive(const std::string& dir);

// A query's notice that archived days within [first_day, last_day] (YYYYMMDD) were left out
// of its answer (UnreadableArchive), naming them; empty when none were. It starts with
// kUnreadableArchiveNotice, by which the CLI, locally or through a collector, tells it from
// the other notices and exits non-zero (an incomplete answer is never silent).
inline constexpr char kUnreadableArchiveNotice[] = "archived days not read: ";
std::string UnreadableArchiveNotice(const std::string& dir, int64_t first_day, int64_t last_day);
bool IsUnreadableArchiveNotice(std::string_view notice);
// Both, each day once, sorted.
std::vector<int64_t> AllDays(const std::string& dir);

// Default size of cache/ (decompressed archived days).
inline constexpr uint64_t kDefaultArchiveCacheBytes = uint64_t{2} << 30;

// Where this process keeps decompressed archived days: DIR/cache when it runs as the owner of
// the data directory (the collector's user) and may write there; else a private cache of its
// user's ($XDG_CACHE_HOME or ~/.cache/maillens/ID, mode 0700), so a CLI run by root never
// leaves files in DIR/cache that the collector cannot replace.
std::string ArchiveCacheDir(const std::string& dir);

// A path from which day `day` can be read read-only: its hot partition, or else its archive
// decompressed into ArchiveCacheDir (the archive file checked against the manifest's SHA-256
// first; the cache is then trimmed to `cache_bytes`, oldest use first). A cached copy is used
// only while it has the SHA-256 it was extracted with, else it is extracted again.
// `*archived` says which. NotFound when the day is neither hot nor archived; DataLoss, naming
// the day, when the manifest cannot be trusted (see "Trust") or the archive file changed.
// Safe beside other readers and the archiver: a cached file is only ever replaced by rename,
// and an open one stays readable when evicted.
absl::StatusOr<std::string> ReadableDayPath(const std::string& dir, int64_t day, bool* archived,
                                            uint64_t cache_bytes = kDefaultArchiveCacheBytes);

// Makes archived day `day` hot again (decompressed into days/, under the lock) so late lines
// can be appended; a no-op when it is hot already. NotFound when it is not archived. The day
// comes back as one file with its full-text index inside (a stale index file beside it is
// removed first).
absl::Status RestoreDay(const std::string& dir, int64_t day);

// --- Admin ---------------------------------------------------------------------------------

struct VerifyResult {
  uint64_t files_checked = 0;
  uint64_t entries = 0;               // manifest entries read
  std::string head;                   // the last entry's chain hash
  std::vector<std::string> problems;  // each names the day (and line) concerned
  std::vector<std::string> notes;     // worth knowing, not a failure
  bool ok() const { return problems.empty(); }
};

// Checks the manifest (see "Trust": its lines, their order and chain, its end against the
// recorded head), the SHA-256 of every live archive file, archive files no entry names, and
// the cached copies of archived days against the SHA-256 they were extracted with.
absl::StatusOr<VerifyResult> VerifyArchive(const std::string& dir);

// A manifest rebuilt from the archive files, for a manifest that cannot be trusted.
struct RepairPlan {
  bool needed = false;  // false: the manifest can be trusted as it is
  // Entries the head (archive/HEAD or the copy outside) recorded beyond those the damaged
  // manifest still shows: their record (a deletion among them, perhaps) is lost.
  int64_t entries_lost = 0;
  std::vector<std::string> problems;  // why it cannot (VerifyArchive's problems)
  std::vector<ArchiveEntry> entries;  // one kArchive per day, from its newest file
  // kDelete entries the damaged manifest still holds for days of which nothing is left (no
  // archive file, no hot partition): kept, so trace and report still say the day was deleted
  // by retention, and when.
  std::vector<ArchiveEntry> deletions;
  std::vector<std::string> set_aside;        // files moved to archive/orphans/, each with why
  std::vector<std::string> set_aside_files;  // their names
};

// Reads every archive file (decompressed into cache/, then removed) for its day's line count,
// time range, last row id and hosts. Changes nothing. A day's older generations and a file
// that cannot be read as a day are set aside, never listed or removed.
absl::StatusOr<RepairPlan> PlanArchiveRepair(const std::string& dir);

// Carries out `plan` under the archive lock: the old manifest is kept as
// archive/MANIFEST.damaged-TIME, the set-aside files go to archive/orphans/, and the new
// manifest (the plan's entries and a kRepair entry) is written with its head. Aborted when
// the archive files changed since the plan; FailedPrecondition when the manifest can be
// trusted by then.
absl::Status RepairArchive(const std::string& dir, const RepairPlan& plan);

// The original lines of day `day` (hot or archived), host by host (by name), each host's
// lines ordered by file and byte offset, as they were in the maillogs. `host` (not empty)
// keeps one host (case-insensitive); NotFound when no such host is stored. `each` returning
// an error stops the export with it.
absl::Status ExportDay(
    const std::string& dir, int64_t day, const std::string& host,
    const std::function<absl::Status(const std::string& host, std::string_view line)>& each);

// Hex SHA-256 of a file's contents.
absl::StatusOr<std::string> Sha256File(const std::string& path);
std::string Sha256Hex(std::string_view data);

// What the data directory holds on disk, by part: every file under it, counted once.
struct DataUsage {
  uint64_t days = 0;     // days/ (hot partitions and their full-text index files)
  uint64_t catalog = 0;  // catalog.db with its WAL and shared-memory files
  uint64_t journal = 0;  // journal/ (the collector's ingest journal)
  uint64_t archive = 0;  // archive/ and archive.head
  uint64_t cache = 0;    // cache/ (decompressed archived days)
  uint64_t other = 0;    // anything else (the lock file, ...)
  // Of `catalog`: pages freed by deleted rows (retention's forgotten messages), which SQLite
  // reuses before the file grows again. Not given back to the file system (that takes a
  // VACUUM, which would hold the catalog for seconds), so the budget does not count them:
  // else every day deleted would leave its catalog rows' bytes counted, and the budget would
  // go on deleting days to pay for them.
  uint64_t catalog_free = 0;
  uint64_t total() const { return days + catalog + journal + archive + cache + other; }
  uint64_t budgeted() const { return total() - catalog_free; }
};
DataUsage DataDirUsage(const std::string& dir);

// Bytes of the data directory that count against the disk budget: all of it, less the
// catalog's free pages (DataDirUsage().budgeted()).
uint64_t DataBytes(const std::string& dir);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_RETENTION_H_
