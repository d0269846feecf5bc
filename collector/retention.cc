#include "collector/retention.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "collector/schema.h"
#include "collector/sqlite.h"
#include "collector/store.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"

namespace maillens::collector {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kDayUs = int64_t{86400} * 1000000;
constexpr char kManifestHeader[] =
    "# maillens archive manifest v1: seq kind day generation file first_us last_us lines "
    "last_id hosts sha256 chain (tab-separated; chain = sha256(previous chain \"\\n\" fields))\n";
constexpr char kSelectCorrelated[] = "SELECT correlated_id FROM partitions WHERE day = ?";
constexpr char kSelectDayStats[] =
    "SELECT count(*), coalesce(max(id), 0), coalesce(min(ts_us), 0), coalesce(max(ts_us), 0) "
    "FROM events";
constexpr char kSelectDayHosts[] = "SELECT DISTINCT host_id FROM events";
constexpr char kSelectHostName[] = "SELECT name FROM hosts WHERE id = ?";
// Whether a partition keeps its full-text index in a side file (schema.h, kFtsFileFeature).
// A partition of an older maillens has no features table, and never such a file.
constexpr char kHasFeaturesTable[] =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'features'";
constexpr char kHasFeature[] = "SELECT 1 FROM features WHERE name = ?";
constexpr char kDeleteFtsFileFeature[] = "DELETE FROM features WHERE name = ?";
constexpr char kSelectIndexedId[] = "SELECT indexed_id FROM fts.fts_state WHERE id = 1";
// The tables FTS5 keeps events_fts in (events_fts_data, _idx, _docsize, _config), as the side
// file has them.
constexpr char kSelectFtsShadowTables[] =
    "SELECT name FROM fts.sqlite_master WHERE type = 'table' "
    "AND name LIKE 'events\\_fts\\_%' ESCAPE '\\' ORDER BY name";

std::atomic<RetentionProbe> g_probe{nullptr};

void Probe(const char* step, int64_t day) {
  if (RetentionProbe p = g_probe.load()) p(step, day);
}

spdlog::logger* Log(spdlog::logger* log) { return log ? log : spdlog::default_logger_raw(); }

std::string ArchiveDir(const std::string& dir) { return dir + "/archive"; }
std::string TmpDir(const std::string& dir) { return dir + "/archive/tmp"; }
std::string HotPath(const std::string& dir, int64_t day) {
  return absl::StrCat(dir, "/days/", day, ".db");
}
// The hot partition's full-text index file, if it has one (schema.h, kFtsFileFeature).
std::string HotFtsPath(const std::string& dir, int64_t day) {
  return FtsFilePath(HotPath(dir, day));
}
std::string ManifestPath(const std::string& dir) { return dir + "/archive/MANIFEST"; }
// Intent to remove day's hot partition once the manifest says so (see Recover).
std::string IntentPath(const std::string& dir, int64_t day) {
  return absl::StrCat(dir, "/archive/", day, ".unlink-hot");
}

absl::Status Errno(const char* what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, bool directory) {
  int fd = open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Errno("cannot fsync", path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Holds archive/LOCK (flock, exclusive) for its lifetime. flock locks belong to the open file
// description, so two threads of one process exclude each other too.
class ArchiveLock {
 public:
  static absl::StatusOr<ArchiveLock> Take(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(TmpDir(dir), ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create ", TmpDir(dir), ": ", ec.message()));
    }
    std::string path = ArchiveDir(dir) + "/LOCK";
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot open", path);
    while (flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      absl::Status s = Errno("cannot lock", path);
      close(fd);
      return s;
    }
    return ArchiveLock(fd);
  }
  ArchiveLock(ArchiveLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ArchiveLock& operator=(ArchiveLock&&) = delete;
  ~ArchiveLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }

 private:
  explicit ArchiveLock(int fd) : fd_(fd) {}
  int fd_;
};

std::string Hex(const unsigned char* data, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

const char* KindName(ArchiveEntry::Kind kind) {
  return kind == ArchiveEntry::Kind::kArchive ? "archive" : "delete";
}

// The fields of a manifest line the chain covers (everything but the chain itself).
std::string EntryFields(const ArchiveEntry& e) {
  return absl::StrCat(e.seq, "\t", KindName(e.kind), "\t", e.day, "\t", e.generation, "\t",
                      e.file.empty() ? "-" : e.file, "\t", e.first_us, "\t", e.last_us, "\t",
                      e.lines, "\t", e.last_id, "\t",
                      e.hosts.empty() ? "-" : absl::StrJoin(e.hosts, ","), "\t",
                      e.sha256.empty() ? "-" : e.sha256);
}

std::string ChainOf(const std::string& previous_chain, const ArchiveEntry& e) {
  return Sha256Hex(absl::StrCat(previous_chain, "\n", EntryFields(e)));
}

// Parses one manifest line (without '\n'); false when malformed.
bool ParseEntry(const std::string& line, ArchiveEntry* e) {
  std::vector<std::string> f = absl::StrSplit(line, '\t');
  if (f.size() != 12) return false;
  if (f[1] == "archive") {
    e->kind = ArchiveEntry::Kind::kArchive;
  } else if (f[1] == "delete") {
    e->kind = ArchiveEntry::Kind::kDelete;
  } else {
    return false;
  }
  if (!absl::SimpleAtoi(f[0], &e->seq) || !absl::SimpleAtoi(f[2], &e->day) ||
      !absl::SimpleAtoi(f[3], &e->generation) || !absl::SimpleAtoi(f[5], &e->first_us) ||
      !absl::SimpleAtoi(f[6], &e->last_us) || !absl::SimpleAtoi(f[7], &e->lines) ||
      !absl::SimpleAtoi(f[8], &e->last_id)) {
    return false;
  }
  e->file = f[4] == "-" ? "" : f[4];
  e->hosts.clear();
  if (f[9] != "-") e->hosts = absl::StrSplit(f[9], ',');
  e->sha256 = f[10] == "-" ? "" : f[10];
  e->chain = f[11];
  // A file name is a plain name in archive/, never a path.
  return e->file.find('/') == std::string::npos && e->file != "." && e->file != "..";
}

struct ParsedManifest {
  std::vector<ArchiveEntry> entries;
  std::vector<std::string> problems;  // malformed lines, by line number
};

ParsedManifest ParseManifest(const std::string& text) {
  ParsedManifest out;
  int number = 0;
  for (absl::string_view piece : absl::StrSplit(text, '\n')) {
    ++number;
    std::string line(piece);
    if (line.empty() || line.front() == '#') continue;
    ArchiveEntry e;
    if (!ParseEntry(line, &e)) {
      out.problems.push_back(absl::StrCat("MANIFEST line ", number, " is malformed"));
      continue;
    }
    out.entries.push_back(std::move(e));
  }
  return out;
}

std::string RenderManifest(const std::vector<ArchiveEntry>& entries) {
  std::string text = kManifestHeader;
  for (const ArchiveEntry& e : entries) absl::StrAppend(&text, EntryFields(e), "\t", e.chain, "\n");
  return text;
}

// Appends `e` (seq and chain filled in here) by rewriting the manifest atomically.
absl::Status AppendEntry(const std::string& dir, std::vector<ArchiveEntry> entries,
                         ArchiveEntry e) {
  e.seq = entries.empty() ? 1 : entries.back().seq + 1;
  e.chain = ChainOf(entries.empty() ? "" : entries.back().chain, e);
  entries.push_back(std::move(e));
  return WriteFileAtomic(ManifestPath(dir), RenderManifest(entries));
}

absl::StatusOr<std::vector<ArchiveEntry>> ReadEntries(const std::string& dir) {
  if (!fs::exists(ManifestPath(dir))) return std::vector<ArchiveEntry>();
  MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(ManifestPath(dir)));
  ParsedManifest parsed = ParseManifest(text);
  if (!parsed.problems.empty()) {
    return absl::DataLossError(absl::StrCat(ManifestPath(dir), ": ", parsed.problems.front(),
                                            "; run 'maillens archive verify'"));
  }
  return parsed.entries;
}

std::map<int64_t, ArchiveEntry> LiveMap(const std::vector<ArchiveEntry>& entries) {
  std::map<int64_t, ArchiveEntry> live;
  for (const ArchiveEntry& e : entries) {
    if (e.kind == ArchiveEntry::Kind::kArchive) {
      live[e.day] = e;
    } else {
      live.erase(e.day);
    }
  }
  return live;
}

struct DayStats {
  uint64_t lines = 0;
  int64_t last_id = 0;
  int64_t first_us = 0;
  int64_t last_us = 0;
};

absl::StatusOr<DayStats> ReadDayStats(Database* db) {
  DayStats st;
  MAILLENS_ASSIGN_OR_RETURN(Statement q, db->Prepare(kSelectDayStats));
  MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
  if (step == Statement::StepResult::kRow) {
    st.lines = static_cast<uint64_t>(q.ColumnInt(0));
    st.last_id = q.ColumnInt(1);
    st.first_us = q.ColumnInt(2);
    st.last_us = q.ColumnInt(3);
  }
  return st;
}

absl::StatusOr<DayStats> HotDayStats(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(auto db, Database::Open(HotPath(dir, day), Database::Mode::kReadOnly));
  return ReadDayStats(db.get());
}

// Removes a hot partition and its full-text index file, each with its WAL and shared-memory
// files. The partition goes first: it is the day (without it the side file is an orphan, which
// Recover removes when a crash came between the two, see RecoverLocked).
absl::Status UnlinkHot(const std::string& dir, int64_t day) {
  MAILLENS_RETURN_IF_ERROR(UnlinkDatabase(HotPath(dir, day)));
  MAILLENS_RETURN_IF_ERROR(UnlinkDatabase(HotFtsPath(dir, day)));
  return FsyncPath(dir + "/days", /*directory=*/true);
}

absl::Status UnlinkFile(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", path);
  return absl::OkStatus();
}

// gzip `from` into `to` (created), fsynced.
absl::Status Compress(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", from));
  int fd = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", to);
  int gz_fd = dup(fd);
  gzFile gz = gz_fd < 0 ? nullptr : gzdopen(gz_fd, "wb6");
  if (gz == nullptr) {
    if (gz_fd >= 0) close(gz_fd);
    close(fd);
    return absl::UnavailableError(absl::StrCat("cannot start gzip on ", to));
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  while (in && ok) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0 && gzwrite(gz, buf.data(), static_cast<unsigned>(n)) != n) ok = false;
  }
  if (gzclose(gz) != Z_OK) ok = false;
  if (ok && fsync(fd) != 0) ok = false;
  close(fd);
  if (!ok || in.bad()) return absl::UnavailableError(absl::StrCat("cannot write ", to));
  return absl::OkStatus();
}

// Decompresses `from` into `to` (created), fsynced.
absl::Status Decompress(const std::string& from, const std::string& to) {
  gzFile gz = gzopen(from.c_str(), "rb");
  if (gz == nullptr) return absl::UnavailableError(absl::StrCat("cannot read ", from));
  int fd = open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    gzclose(gz);
    return Errno("cannot create", to);
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  while (ok) {
    int n = gzread(gz, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) ok = false;
    if (n <= 0) break;
    ssize_t done = 0;
    while (ok && done < n) {
      ssize_t w = write(fd, buf.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) ok = false;
      done += std::max<ssize_t>(w, 0);
    }
  }
  gzclose(gz);
  if (ok && fsync(fd) != 0) ok = false;
  close(fd);
  if (!ok) {
    unlink(to.c_str());
    return absl::DataLossError(absl::StrCat("cannot decompress ", from));
  }
  return absl::OkStatus();
}

// Unlinks the files (and *extra, when not empty) on destruction.
class RemoveOnExit {
 public:
  RemoveOnExit(std::vector<std::string> paths, const std::string* extra)
      : paths_(std::move(paths)), extra_(extra) {}
  ~RemoveOnExit() {
    for (const std::string& p : paths_) unlink(p.c_str());
    if (extra_ != nullptr && !extra_->empty()) unlink(extra_->c_str());
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;

 private:
  std::vector<std::string> paths_;
  const std::string* extra_;  // borrowed: outlives this object (declared before it)
};

std::string ArchiveFileName(int64_t day, int generation) {
  return generation <= 1 ? absl::StrCat(day, ".db.gz")
                         : absl::StrCat(day, ".", generation, ".db.gz");
}

// Checks a live entry's file against its SHA-256.
absl::Status CheckArchiveFile(const std::string& dir, const ArchiveEntry& e) {
  std::string path = ArchiveDir(dir) + "/" + e.file;
  if (!fs::exists(path)) {
    return absl::DataLossError(absl::StrCat("the archive file of day ", e.day, " (", path,
                                            ") is missing; run 'maillens archive verify'"));
  }
  MAILLENS_ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
  if (sha != e.sha256) {
    return absl::DataLossError(absl::StrCat("the archive file of day ", e.day, " (", path,
                                            ") changed since it was archived (SHA-256 differs "
                                            "from the manifest); run 'maillens archive verify'"));
  }
  return absl::OkStatus();
}

// Opens an archive work copy for writing in rollback-journal mode, which it keeps: the
// archived file is then read read-only with no -wal or -shm file beside it.
absl::StatusOr<std::unique_ptr<Database>> OpenWorkCopy(const std::string& path) {
  MAILLENS_ASSIGN_OR_RETURN(auto db, Database::Open(path, Database::Mode::kReadWrite));
  MAILLENS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=DELETE"));
  return db;
}

absl::StatusOr<bool> HasFtsFileFeature(Database* db) {
  MAILLENS_ASSIGN_OR_RETURN(Statement table, db->Prepare(kHasFeaturesTable));
  MAILLENS_ASSIGN_OR_RETURN(auto has_table, table.Step());
  if (has_table != Statement::StepResult::kRow) return false;
  MAILLENS_ASSIGN_OR_RETURN(Statement feature, db->Prepare(kHasFeature));
  feature.BindText(1, kFtsFileFeature);
  MAILLENS_ASSIGN_OR_RETURN(auto has_feature, feature.Step());
  return has_feature == Statement::StepResult::kRow;
}

// Moves the full-text index of hot day `day` from its side file into `snapshot`, a copy of
// its partition whose last line is `last_id`, so that the archived day is one file laid out
// as a partition that keeps its index inside (kCreateFtsTable, the same declaration in both
// places, so FTS5's tables are copied as they are). The side file is read through a copy of
// its own (`side_copy`, VACUUM INTO, as the partition's snapshot): one transaction of it, so
// its index and fts_state agree, and the hot file, which the store's indexing thread goes on
// writing, is only ever read. FailedPrecondition (the day is archived on a later pass) when
// the side file is missing or does not index exactly the snapshot's lines.
absl::Status MoveIndexIntoSnapshot(const std::string& dir, int64_t day, const std::string& snapshot,
                                   const std::string& side_copy, int64_t last_id) {
  const std::string side = HotFtsPath(dir, day);
  if (!fs::exists(side)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "day ", day, ": its full-text index file ", side, " is missing; archived on a later pass"));
  }
  {
    MAILLENS_ASSIGN_OR_RETURN(auto src, Database::Open(side, Database::Mode::kReadOnly));
    MAILLENS_ASSIGN_OR_RETURN(Statement vacuum, src->Prepare("VACUUM INTO ?"));
    vacuum.BindText(1, side_copy);
    MAILLENS_RETURN_IF_ERROR(vacuum.Run());
  }
  MAILLENS_ASSIGN_OR_RETURN(auto db, OpenWorkCopy(snapshot));
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement attach, db->Prepare(kAttachFts));
    attach.BindText(1, side_copy);
    MAILLENS_RETURN_IF_ERROR(attach.Run());
  }
  int64_t indexed_id = 0;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement q, db->Prepare(kSelectIndexedId));
    MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
    if (step == Statement::StepResult::kRow) indexed_id = q.ColumnInt(0);
  }
  if (indexed_id < last_id) {
    return absl::FailedPreconditionError(absl::StrCat("day ", day, " is not fully indexed yet (",
                                                      indexed_id, " of ", last_id,
                                                      "); archived on a later pass"));
  }
  if (indexed_id > last_id) {
    // Lines came after the partition's snapshot and were indexed before the side file's: an
    // archive must not index lines it does not hold.
    return absl::FailedPreconditionError(
        absl::StrCat("day ", day, " got lines while it was archived (indexed to ", indexed_id,
                     ", copied to ", last_id, "); archived on a later pass"));
  }
  std::vector<std::string> tables;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement q, db->Prepare(kSelectFtsShadowTables));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
      if (step == Statement::StepResult::kDone) break;
      std::string name(q.ColumnText(0));
      // Spliced into SQL below (a table name cannot be a parameter): FTS5's own names only.
      if (!std::all_of(name.begin(), name.end(),
                       [](char c) { return c == '_' || absl::ascii_islower(c); })) {
        return absl::DataLossError(
            absl::StrCat("day ", day, ": unexpected table '", name, "' in ", side));
      }
      tables.push_back(std::move(name));
    }
  }
  if (tables.empty()) {
    return absl::DataLossError(
        absl::StrCat("day ", day, ": ", side, " holds no full-text index tables"));
  }
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db.get()));
  MAILLENS_RETURN_IF_ERROR(db->Exec(kCreateFtsTable));
  for (const std::string& table : tables) {
    MAILLENS_RETURN_IF_ERROR(db->Exec(absl::StrCat("DELETE FROM main.", table)));
    MAILLENS_RETURN_IF_ERROR(
        db->Exec(absl::StrCat("INSERT INTO main.", table, " SELECT * FROM fts.", table)));
  }
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement feature, db->Prepare(kDeleteFtsFileFeature));
    feature.BindText(1, kFtsFileFeature);
    MAILLENS_RETURN_IF_ERROR(feature.Run());
  }
  MAILLENS_RETURN_IF_ERROR(txn.Commit());
  return db->Exec("DETACH DATABASE fts");
}

absl::Status ArchiveDayLocked(const std::string& dir, int64_t day) {
  const std::string hot = HotPath(dir, day);
  if (!fs::exists(hot))
    return absl::FailedPreconditionError(absl::StrCat("day ", day, " is not hot"));
  MAILLENS_ASSIGN_OR_RETURN(auto catalog,
                            Database::Open(dir + "/catalog.db", Database::Mode::kReadOnly));
  int64_t correlated = 0;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement q, catalog->Prepare(kSelectCorrelated));
    q.Bind(1, day);
    MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
    if (step == Statement::StepResult::kRow) correlated = q.ColumnInt(0);
  }

  {
    // Cheap early answer before copying anything; checked again on the snapshot.
    MAILLENS_ASSIGN_OR_RETURN(DayStats hot_stats, HotDayStats(dir, day));
    if (hot_stats.last_id > correlated) {
      return absl::FailedPreconditionError(
          absl::StrCat("day ", day, " is not fully correlated yet (", correlated, " of ",
                       hot_stats.last_id, "); archived on a later pass"));
    }
  }

  // 1. A consistent snapshot of the partition, finalised: its full-text index inside (taken
  //    from its side file, if it has one), FTS5 merged into one segment, vacuumed, rollback
  //    journal (a read-only open then needs no -wal or -shm file).
  const std::string snapshot = absl::StrCat(TmpDir(dir), "/", day, ".db");
  const std::string side_copy = FtsFilePath(snapshot);
  std::string gz_tmp;
  // Work files go whatever happens (after success they are renamed or removed already).
  std::vector<std::string> work_files;
  for (const std::string& base : {snapshot, side_copy}) {
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
      work_files.push_back(base + suffix);
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(base + suffix));
    }
  }
  RemoveOnExit cleanup(work_files, &gz_tmp);
  {
    MAILLENS_ASSIGN_OR_RETURN(auto src, Database::Open(hot, Database::Mode::kReadOnly));
    MAILLENS_ASSIGN_OR_RETURN(Statement vacuum, src->Prepare("VACUUM INTO ?"));
    vacuum.BindText(1, snapshot);
    MAILLENS_RETURN_IF_ERROR(vacuum.Run());
  }
  DayStats stats;
  bool fts_file = false;
  {
    MAILLENS_ASSIGN_OR_RETURN(auto db, OpenWorkCopy(snapshot));
    MAILLENS_ASSIGN_OR_RETURN(stats, ReadDayStats(db.get()));
    if (stats.last_id > correlated) {
      return absl::FailedPreconditionError(
          absl::StrCat("day ", day, " is not fully correlated yet (", correlated, " of ",
                       stats.last_id, "); archived on a later pass"));
    }
    MAILLENS_ASSIGN_OR_RETURN(fts_file, HasFtsFileFeature(db.get()));
  }
  if (fts_file) {
    // On connections of its own: FTS5 caches an index's structure per connection, and the
    // one that copied the index's tables must not be the one that optimises it.
    MAILLENS_RETURN_IF_ERROR(MoveIndexIntoSnapshot(dir, day, snapshot, side_copy, stats.last_id));
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(side_copy + suffix));
    }
  }
  std::vector<std::string> hosts;
  {
    MAILLENS_ASSIGN_OR_RETURN(auto db, OpenWorkCopy(snapshot));
    MAILLENS_RETURN_IF_ERROR(db->Exec("INSERT INTO events_fts (events_fts) VALUES ('optimize')"));
    MAILLENS_RETURN_IF_ERROR(db->Exec("VACUUM"));
    MAILLENS_ASSIGN_OR_RETURN(Statement q, db->Prepare(kSelectDayHosts));
    MAILLENS_ASSIGN_OR_RETURN(Statement name, catalog->Prepare(kSelectHostName));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
      if (step == Statement::StepResult::kDone) break;
      name.Bind(1, q.ColumnInt(0));
      MAILLENS_ASSIGN_OR_RETURN(auto nstep, name.Step());
      hosts.push_back(nstep == Statement::StepResult::kRow ? std::string(name.ColumnText(0))
                                                           : absl::StrCat("#", q.ColumnInt(0)));
      name.Reset();
    }
    std::sort(hosts.begin(), hosts.end());
  }
  MAILLENS_RETURN_IF_ERROR(FsyncPath(snapshot, /*directory=*/false));
  Probe("snapshot", day);

  // 2. Compressed, hashed, renamed into archive/.
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  int generation = 1;
  for (const ArchiveEntry& e : entries) {
    if (e.day == day) generation = std::max(generation, e.generation + 1);
  }
  ArchiveEntry entry;
  entry.kind = ArchiveEntry::Kind::kArchive;
  entry.day = day;
  entry.generation = generation;
  entry.file = ArchiveFileName(day, generation);
  entry.first_us = stats.first_us;
  entry.last_us = stats.last_us;
  entry.lines = stats.lines;
  entry.last_id = stats.last_id;
  entry.hosts = hosts;
  gz_tmp = absl::StrCat(TmpDir(dir), "/", entry.file);
  MAILLENS_RETURN_IF_ERROR(Compress(snapshot, gz_tmp));
  MAILLENS_ASSIGN_OR_RETURN(entry.sha256, Sha256File(gz_tmp));
  Probe("compressed", day);
  const std::string final_path = ArchiveDir(dir) + "/" + entry.file;
  if (rename(gz_tmp.c_str(), final_path.c_str()) != 0) return Errno("cannot rename to", final_path);
  MAILLENS_RETURN_IF_ERROR(FsyncPath(ArchiveDir(dir), /*directory=*/true));
  Probe("renamed", day);

  // 3. The intent to drop the hot partition, then the manifest entry: the commit point.
  MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(
      IntentPath(dir, day), absl::StrCat("archive ", stats.lines, " ", stats.last_id, "\n")));
  MAILLENS_RETURN_IF_ERROR(AppendEntry(dir, entries, entry));
  Probe("manifest", day);

  // 4. The hot partition goes, unless a late line reached it after the snapshot.
  MAILLENS_ASSIGN_OR_RETURN(DayStats now, HotDayStats(dir, day));
  if (now.lines == stats.lines && now.last_id == stats.last_id) {
    MAILLENS_RETURN_IF_ERROR(UnlinkHot(dir, day));
  }
  Probe("unlinked", day);
  MAILLENS_RETURN_IF_ERROR(UnlinkFile(IntentPath(dir, day)));
  // Earlier generations of the day are superseded.
  for (const ArchiveEntry& e : entries) {
    if (e.day == day && e.kind == ArchiveEntry::Kind::kArchive && e.file != entry.file) {
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(ArchiveDir(dir) + "/" + e.file));
    }
  }
  return UnlinkFile(snapshot);
}

absl::Status DeleteDayLocked(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  std::map<int64_t, ArchiveEntry> live = LiveMap(entries);
  ArchiveEntry entry;
  entry.kind = ArchiveEntry::Kind::kDelete;
  entry.day = day;
  if (auto it = live.find(day); it != live.end()) {
    entry.lines = it->second.lines;
    entry.hosts = it->second.hosts;
  }
  const bool hot = fs::exists(HotPath(dir, day));
  if (hot) {
    auto st = HotDayStats(dir, day);
    if (st.ok()) entry.lines = st->lines;
  }
  if (!hot && live.count(day) == 0) return absl::OkStatus();  // nothing held
  MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(IntentPath(dir, day), "delete\n"));
  MAILLENS_RETURN_IF_ERROR(AppendEntry(dir, entries, entry));
  Probe("manifest", day);
  MAILLENS_RETURN_IF_ERROR(UnlinkHot(dir, day));
  for (const ArchiveEntry& e : entries) {
    if (e.day == day && !e.file.empty()) {
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(ArchiveDir(dir) + "/" + e.file));
    }
  }
  MAILLENS_RETURN_IF_ERROR(FsyncPath(ArchiveDir(dir), /*directory=*/true));
  Probe("unlinked", day);
  return UnlinkFile(IntentPath(dir, day));
}

absl::Status RecoverLocked(const std::string& dir, spdlog::logger* log) {
  std::error_code ec;
  // Work files of an interrupted step: their step never committed.
  for (const auto& f : fs::directory_iterator(TmpDir(dir), ec)) fs::remove(f.path(), ec);
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  std::map<int64_t, ArchiveEntry> live = LiveMap(entries);
  std::map<int64_t, ArchiveEntry::Kind> last_kind;
  for (const ArchiveEntry& e : entries) last_kind[e.day] = e.kind;
  std::set<std::string> live_files;
  for (const auto& [day, e] : live) live_files.insert(e.file);

  std::vector<fs::path> files;
  for (const auto& f : fs::directory_iterator(ArchiveDir(dir), ec)) files.push_back(f.path());
  for (const fs::path& p : files) {
    std::string name = p.filename().string();
    if (absl::EndsWith(name, ".unlink-hot")) {
      int64_t day = 0;
      if (!absl::SimpleAtoi(name.substr(0, 8), &day)) continue;
      MAILLENS_ASSIGN_OR_RETURN(std::string intent, ReadWholeFile(p.string()));
      bool finish = false;
      if (absl::StartsWith(intent, "delete")) {
        finish = last_kind.count(day) && last_kind[day] == ArchiveEntry::Kind::kDelete;
      } else if (auto it = live.find(day); it != live.end()) {
        // Only when the hot partition still holds exactly what was archived; when it is gone
        // already, what is left is its full-text index file (UnlinkHot's second step).
        if (fs::exists(HotPath(dir, day))) {
          auto st = HotDayStats(dir, day);
          finish = st.ok() && st->lines == it->second.lines && st->last_id == it->second.last_id;
        } else {
          finish = true;
        }
      }
      if (finish && (fs::exists(HotPath(dir, day)) || fs::exists(HotFtsPath(dir, day)))) {
        Log(log)->info("retention: finishing the interrupted removal of hot day {}", day);
        MAILLENS_RETURN_IF_ERROR(UnlinkHot(dir, day));
      }
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
    } else if (absl::EndsWith(name, ".db.gz") && live_files.count(name) == 0) {
      // Renamed in before a crash kept its manifest entry from being written, superseded,
      // or of a deleted day.
      Log(log)->info("retention: removing {} (not live in the manifest)", name);
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
    } else if (absl::EndsWith(name, ".tmp")) {
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
    }
  }
  return FsyncPath(ArchiveDir(dir), /*directory=*/true);
}

uint64_t TreeBytes(const std::string& path) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(path, ec)) {
    if (f.is_regular_file(ec)) total += f.file_size(ec);
  }
  return total;
}

std::vector<int64_t> DayFiles(const std::string& dir) {
  std::vector<int64_t> days;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir + "/days", ec)) {
    std::string name = entry.path().filename().string();
    int64_t day = 0;
    if (name.size() == 11 && name.substr(8) == ".db" && absl::SimpleAtoi(name.substr(0, 8), &day)) {
      days.push_back(day);
    }
  }
  std::sort(days.begin(), days.end());
  return days;
}

// Trims cache/ to `limit` bytes, least recently used first; `keep` stays.
void TrimCache(const std::string& cache, const std::string& keep, uint64_t limit) {
  struct Item {
    fs::file_time_type used;
    uint64_t bytes;
    fs::path path;
  };
  std::vector<Item> items;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(cache, ec)) {
    if (!f.is_regular_file(ec) || f.path().extension() != ".db") continue;
    Item item{f.last_write_time(ec), f.file_size(ec), f.path()};
    total += item.bytes;
    items.push_back(std::move(item));
  }
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.used < b.used; });
  for (const Item& item : items) {
    if (total <= limit) break;
    if (item.path.string() == keep) continue;
    fs::remove(item.path, ec);
    total -= item.bytes;
  }
}

}  // namespace

// Writes `data` to `path` by way of a temp file in the same directory: fsync, rename, fsync
// of the directory. Readers see the old or the new contents, never a mix.
absl::Status WriteFileAtomic(const std::string& path, std::string_view data) {
  return WriteFilesAtomic({{path, data}});
}

absl::Status WriteFilesAtomic(absl::Span<const std::pair<std::string, std::string_view>> files) {
  // Every temp file is written and sent to the disk before the first fsync, so the disk gets
  // them in one go instead of one wait each (an import writes two files per new day).
  std::vector<int> fds;
  absl::Status status;
  for (const auto& [path, data] : files) {
    std::string tmp = absl::StrCat(path, ".tmp");
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      status = Errno("cannot create", tmp);
      break;
    }
    fds.push_back(fd);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      done += static_cast<size_t>(n);
    }
    if (done < data.size()) {
      status = Errno("cannot write", tmp);
      break;
    }
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    if (status.ok() && fsync(fds[i]) != 0) status = Errno("cannot fsync", files[i].first + ".tmp");
    close(fds[i]);
  }
  if (!status.ok()) {
    for (size_t i = 0; i < fds.size(); ++i) unlink((files[i].first + ".tmp").c_str());
    return status;
  }
  std::set<std::string> dirs;
  for (const auto& [path, data] : files) {
    if (rename((path + ".tmp").c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
    dirs.insert(fs::path(path).parent_path().string());
  }
  for (const std::string& dir : dirs) {
    MAILLENS_RETURN_IF_ERROR(FsyncPath(dir, /*directory=*/true));
  }
  return absl::OkStatus();
}

// Removes an SQLite file with its WAL and shared-memory files; a missing one is fine.
absl::Status UnlinkDatabase(const std::string& path) {
  for (const char* suffix : {"-wal", "-shm", ""}) {
    std::string p = path + suffix;
    if (unlink(p.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", p);
  }
  return absl::OkStatus();
}

void SetRetentionProbeForTest(RetentionProbe probe) { g_probe.store(probe); }

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("SHA-256 unavailable in libcrypto");
  }
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return Hex(md, len);
}

absl::Status RecoverArchive(const std::string& dir, spdlog::logger* log) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  return RecoverLocked(dir, log);
}

absl::Status ArchiveDay(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  return ArchiveDayLocked(dir, day);
}

absl::Status DeleteDay(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  return DeleteDayLocked(dir, day);
}

uint64_t DataBytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  for (const char* f : {"/catalog.db", "/catalog.db-wal"}) {
    if (fs::exists(dir + f, ec)) total += fs::file_size(dir + f, ec);
  }
  return total + TreeBytes(dir + "/days") + TreeBytes(ArchiveDir(dir));
}

absl::StatusOr<RetentionStats> RunRetention(const std::string& dir, const RetentionPolicy& policy,
                                            int64_t now_us, spdlog::logger* log,
                                            const std::atomic<bool>* cancel) {
  // The lock is taken per day, so a late line's RestoreDay (on the collector's writer) never
  // waits for a whole pass.
  RetentionStats stats;
  MAILLENS_RETURN_IF_ERROR(RecoverArchive(dir, log));
  auto cancelled = [&] { return cancel != nullptr && cancel->load(); };
  const int64_t today = DayOf(now_us);
  const int64_t hot_start = DayOf(now_us - std::max(policy.hot_days - 1, 0) * kDayUs);
  const int64_t keep_start =
      policy.archive_days > 0 ? DayOf(now_us - (policy.archive_days - 1) * kDayUs) : 0;
  auto note = [&](int64_t day, const absl::Status& s) {
    if (absl::IsFailedPrecondition(s)) {
      Log(log)->info("retention: {}", std::string(s.message()));
    } else {
      Log(log)->warn("retention: day {}: {}", day, std::string(s.message()));
    }
  };
  for (int64_t day : DayFiles(dir)) {
    if (day >= hot_start || cancelled()) break;
    absl::Status s;
    if (day < keep_start) {
      s = DeleteDay(dir, day);
      if (s.ok()) stats.deleted.push_back(day);
    } else {
      s = ArchiveDay(dir, day);
      if (s.ok()) stats.archived.push_back(day);
    }
    if (!s.ok()) note(day, s);
  }
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  for (const auto& [day, e] : LiveMap(entries)) {
    if (day >= keep_start || cancelled()) break;
    absl::Status s = DeleteDay(dir, day);
    if (s.ok()) stats.deleted.push_back(day);
    if (!s.ok()) note(day, s);
  }
  if (policy.disk_budget_bytes > 0) {
    uint64_t bytes = DataBytes(dir);
    while (bytes > policy.disk_budget_bytes && !cancelled()) {
      std::set<int64_t> days;
      for (int64_t d : DayFiles(dir)) days.insert(d);
      MAILLENS_ASSIGN_OR_RETURN(entries, ReadEntries(dir));
      for (const auto& [d, e] : LiveMap(entries)) days.insert(d);
      if (days.empty() || *days.begin() >= today) {
        std::string w =
            absl::StrCat("disk use ", bytes, " bytes is over the budget of ",
                         policy.disk_budget_bytes, " bytes with only today's partition left");
        Log(log)->warn("retention: {}", w);
        stats.warnings.push_back(w);
        break;
      }
      int64_t oldest = *days.begin();
      if (!stats.deleted.empty() && stats.deleted.back() == oldest) {
        return absl::InternalError(
            absl::StrCat("retention: day ", oldest, " is still there after deleting it"));
      }
      MAILLENS_RETURN_IF_ERROR(DeleteDay(dir, oldest));
      std::string w = absl::StrCat("disk budget: deleted day ", oldest, " (", bytes,
                                   " bytes used, budget ", policy.disk_budget_bytes, ")");
      Log(log)->warn("retention: {}", w);
      stats.warnings.push_back(w);
      stats.deleted.push_back(oldest);
      bytes = DataBytes(dir);
    }
    if (bytes > policy.warn_fraction * static_cast<double>(policy.disk_budget_bytes)) {
      std::vector<int64_t> all = AllDays(dir);
      std::string w = absl::StrCat(
          "disk use ", bytes, " bytes is ", bytes * 100 / policy.disk_budget_bytes,
          "% of the budget (", policy.disk_budget_bytes, "); when it is exceeded the oldest day",
          all.empty() ? std::string() : absl::StrCat(" (", all.front(), ")"), " is deleted");
      Log(log)->warn("retention: {}", w);
      stats.warnings.push_back(w);
    }
  }
  stats.disk_bytes = DataBytes(dir);
  return stats;
}

absl::StatusOr<std::vector<ArchiveEntry>> ReadManifest(const std::string& dir) {
  return ReadEntries(dir);
}

absl::StatusOr<std::vector<ArchiveEntry>> LiveArchive(const std::string& dir) {
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  std::vector<ArchiveEntry> out;
  for (auto& [day, e] : LiveMap(entries)) out.push_back(std::move(e));
  return out;
}

std::vector<int64_t> HotDays(const std::string& dir) { return DayFiles(dir); }

std::vector<int64_t> ArchivedDays(const std::string& dir) {
  std::vector<int64_t> days;
  auto live = LiveArchive(dir);
  if (!live.ok()) return days;
  for (const ArchiveEntry& e : *live) days.push_back(e.day);
  return days;
}

std::vector<int64_t> AllDays(const std::string& dir) {
  std::set<int64_t> days;
  for (int64_t d : HotDays(dir)) days.insert(d);
  for (int64_t d : ArchivedDays(dir)) days.insert(d);
  return std::vector<int64_t>(days.begin(), days.end());
}

absl::StatusOr<std::string> ReadableDayPath(const std::string& dir, int64_t day, bool* archived,
                                            uint64_t cache_bytes) {
  if (archived) *archived = false;
  std::string hot = HotPath(dir, day);
  if (fs::exists(hot)) return hot;
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  std::map<int64_t, ArchiveEntry> live = LiveMap(entries);
  auto it = live.find(day);
  if (it == live.end()) {
    // Archived between our two looks: the hot partition was removed after the manifest
    // entry was written, so the manifest read above already had it. Anything else is absent.
    if (fs::exists(hot)) return hot;
    return absl::NotFoundError(absl::StrCat("no partition for day ", day));
  }
  const ArchiveEntry& e = it->second;
  if (archived) *archived = true;
  const std::string cache = dir + "/cache";
  const std::string cached = absl::StrCat(cache, "/", day, ".", e.sha256.substr(0, 16), ".db");
  if (fs::exists(cached)) {
    // Marks the use for the LRU trim.
    utimensat(AT_FDCWD, cached.c_str(), nullptr, 0);
    return cached;
  }
  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the archive cache ", cache, ": ", ec.message()));
  }
  MAILLENS_RETURN_IF_ERROR(CheckArchiveFile(dir, e));
  std::ostringstream tid;
  tid << std::this_thread::get_id();
  const std::string tmp = absl::StrCat(cache, "/.", day, ".", getpid(), ".", tid.str(), ".tmp");
  MAILLENS_RETURN_IF_ERROR(Decompress(ArchiveDir(dir) + "/" + e.file, tmp));
  if (rename(tmp.c_str(), cached.c_str()) != 0) {
    absl::Status s = Errno("cannot rename to", cached);
    unlink(tmp.c_str());
    return s;
  }
  TrimCache(cache, cached, cache_bytes);
  return cached;
}

absl::Status RestoreDay(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  if (fs::exists(HotPath(dir, day))) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  std::map<int64_t, ArchiveEntry> live = LiveMap(entries);
  auto it = live.find(day);
  if (it == live.end()) return absl::NotFoundError(absl::StrCat("day ", day, " is not archived"));
  MAILLENS_RETURN_IF_ERROR(CheckArchiveFile(dir, it->second));
  const std::string tmp = absl::StrCat(TmpDir(dir), "/", day, ".restore");
  MAILLENS_RETURN_IF_ERROR(Decompress(ArchiveDir(dir) + "/" + it->second.file, tmp));
  // The archived day holds its full-text index inside; an index file left beside a removed
  // partition (a crash in UnlinkHot) is stale and must not be taken for the restored day's.
  MAILLENS_RETURN_IF_ERROR(UnlinkDatabase(HotFtsPath(dir, day)));
  if (rename(tmp.c_str(), HotPath(dir, day).c_str()) != 0) {
    return Errno("cannot rename to", HotPath(dir, day));
  }
  return FsyncPath(dir + "/days", /*directory=*/true);
}

absl::StatusOr<VerifyResult> VerifyArchive(const std::string& dir) {
  VerifyResult result;
  if (!fs::exists(ManifestPath(dir))) return result;
  MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(ManifestPath(dir)));
  ParsedManifest parsed = ParseManifest(text);
  result.problems = parsed.problems;
  std::string previous;
  int64_t expected_seq = 1;
  for (const ArchiveEntry& e : parsed.entries) {
    if (e.seq != expected_seq) {
      result.problems.push_back(absl::StrCat("day ", e.day, ": manifest entry ", e.seq,
                                             " follows entry ", expected_seq - 1,
                                             " (an entry was removed or reordered)"));
    }
    expected_seq = e.seq + 1;
    if (ChainOf(previous, e) != e.chain) {
      result.problems.push_back(absl::StrCat("day ", e.day, ": manifest entry ", e.seq,
                                             " does not match its chain hash (the entry, or "
                                             "one before it, was changed)"));
    }
    previous = e.chain;
  }
  result.head = previous;
  for (const auto& [day, e] : LiveMap(parsed.entries)) {
    ++result.files_checked;
    absl::Status s = CheckArchiveFile(dir, e);
    if (!s.ok()) {
      std::string path = ArchiveDir(dir) + "/" + e.file;
      result.problems.push_back(
          fs::exists(path)
              ? absl::StrCat("day ", day, ": ", e.file, " was changed (SHA-256 differs)")
              : absl::StrCat("day ", day, ": ", e.file, " is missing"));
    }
  }
  return result;
}

RetentionRunner::RetentionRunner(std::string dir, RetentionPolicy policy, absl::Duration interval,
                                 spdlog::logger* log)
    : dir_(std::move(dir)), policy_(policy), interval_(interval), log_(Log(log)) {
  thread_ = std::thread([this] { Run(); });
}

RetentionRunner::~RetentionRunner() { Stop(); }

void RetentionRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cancel_.store(true);
  if (thread_.joinable()) thread_.join();
}

uint64_t RetentionRunner::passes() const {
  absl::MutexLock lock(&mu_);
  return passes_;
}

void RetentionRunner::Run() {
  while (true) {
    absl::Time start = absl::Now();
    auto stats = RunRetention(dir_, policy_, absl::ToUnixMicros(start), log_, &cancel_);
    if (!stats.ok()) {
      log_->error("retention pass failed: {}", std::string(stats.status().message()));
    } else if (!stats->archived.empty() || !stats->deleted.empty()) {
      log_->info("retention: archived {} days, deleted {} days in {} ms; data uses {} bytes",
                 stats->archived.size(), stats->deleted.size(),
                 absl::ToInt64Milliseconds(absl::Now() - start), stats->disk_bytes);
    }
    absl::MutexLock lock(&mu_);
    ++passes_;
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_);
    if (stopping_) return;
  }
}

absl::Status ExportDay(
    const std::string& dir, int64_t day, const std::string& host,
    const std::function<absl::Status(const std::string& host, std::string_view line)>& each) {
  MAILLENS_ASSIGN_OR_RETURN(auto catalog,
                            Database::Open(dir + "/catalog.db", Database::Mode::kReadOnly));
  std::vector<std::pair<std::string, int64_t>> hosts;  // name, id
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement q, catalog->Prepare("SELECT id, name FROM hosts"));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
      if (step == Statement::StepResult::kDone) break;
      std::string name(q.ColumnText(1));
      if (host.empty() || absl::EqualsIgnoreCase(name, host))
        hosts.emplace_back(name, q.ColumnInt(0));
    }
  }
  if (!host.empty() && hosts.empty()) {
    return absl::NotFoundError(absl::StrCat("no host named '", host, "' in the store"));
  }
  std::sort(hosts.begin(), hosts.end());
  MAILLENS_ASSIGN_OR_RETURN(std::string path, ReadableDayPath(dir, day, /*archived=*/nullptr));
  MAILLENS_ASSIGN_OR_RETURN(auto db, Database::Open(path, Database::Mode::kReadOnly));
  MAILLENS_ASSIGN_OR_RETURN(
      Statement q,
      db->Prepare("SELECT raw FROM events WHERE host_id = ? ORDER BY file_id, offset, id"));
  for (const auto& [name, id] : hosts) {
    q.Bind(1, id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
      if (step == Statement::StepResult::kDone) break;
      std::string_view raw = q.ColumnText(0);
      MAILLENS_RETURN_IF_ERROR(each(name, raw));
    }
    q.Reset();
  }
  return absl::OkStatus();
}

}  // namespace maillens::collector
