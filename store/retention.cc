#include "store/retention.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/substitute.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::store {
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
constexpr char kDeleteFeature[] = "DELETE FROM features WHERE name = ?";
constexpr char kHasSideAddressQueues[] =
    "SELECT 1 FROM fts.sqlite_master WHERE type = 'table' AND name = 'address_queues'";
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

// Says `line` through `log`, or on standard error when there is none.
void Say(const RetentionLog& log, LogLevel level, const std::string& line) {
  if (log) {
    log(level, line);
    return;
  }
  const char* what = level == LogLevel::kInfo      ? ""
                     : level == LogLevel::kWarning ? "warning: "
                                                   : "error: ";
  std::fprintf(stderr, "%s%s\n", what, line.c_str());
}

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
  switch (kind) {
    case ArchiveEntry::Kind::kArchive:
      return "archive";
    case ArchiveEntry::Kind::kDelete:
      return "delete";
    case ArchiveEntry::Kind::kRepair:
      return "repair";
  }
  return "?";
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
  } else if (f[1] == "repair") {
    e->kind = ArchiveEntry::Kind::kRepair;
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

// One line of the manifest as read: an entry, or a malformed line with what could be read of
// its sequence number and day (to name them).
struct ManifestLine {
  int number = 0;  // line number in the file, from 1
  bool ok = false;
  ArchiveEntry entry;  // ok
  int64_t seq = 0;     // 0: unknown
  int64_t day = 0;     // 0: unknown
};

std::vector<ManifestLine> ParseManifest(const std::string& text) {
  std::vector<ManifestLine> out;
  int number = 0;
  for (absl::string_view piece : absl::StrSplit(text, '\n')) {
    ++number;
    std::string line(piece);
    if (line.empty() || line.front() == '#') continue;
    ManifestLine m;
    m.number = number;
    m.ok = ParseEntry(line, &m.entry);
    if (m.ok) {
      m.seq = m.entry.seq;
      m.day = m.entry.day;
    } else {
      std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
      if (f.empty() || !absl::SimpleAtoi(f[0], &m.seq)) m.seq = 0;
      if (f.size() < 3 || !absl::SimpleAtoi(f[2], &m.day)) m.day = 0;
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string RenderManifest(const std::vector<ArchiveEntry>& entries) {
  std::string text = kManifestHeader;
  for (const ArchiveEntry& e : entries) absl::StrAppend(&text, EntryFields(e), "\t", e.chain, "\n");
  return text;
}

// --- Trust (see "Trust" in retention.h) ------------------------------------------------------

std::string HeadPath(const std::string& dir) { return dir + "/archive/HEAD"; }
// The head an append is about to commit, written before the manifest (see AppendEntry).
std::string NextHeadPath(const std::string& dir) { return dir + "/archive/HEAD.next"; }
std::string OrphansDir(const std::string& dir) { return dir + "/archive/orphans"; }
// A second copy of the head, outside archive/: a manifest removed or rewritten together with
// archive/HEAD (archive/ restored from an older backup, cleaned by hand) is still told. Not
// in the catalog: the store's writer is the catalog's only writer (a commit beside it made
// the writer's next transaction fail, WriterConnectionSurvivesItsDayBeingArchived).
std::string OutsideHeadPath(const std::string& dir) { return dir + "/archive.head"; }

constexpr char kHeadHeader[] =
    "# maillens archive head v1: entries chain last_kind last_day (of archive/MANIFEST's last "
    "entry, recorded outside it; store/retention.h)\n";
// Where the manifest ends: its entry count and last chain hash, and (to name it when it goes
// missing) the last entry's kind and day.
struct Head {
  int64_t entries = 0;
  std::string chain;  // empty when there are no entries
  std::string last_kind;
  int64_t last_day = 0;
  bool Same(const Head& o) const { return entries == o.entries && chain == o.chain; }
};

Head HeadOf(const std::vector<ArchiveEntry>& entries) {
  Head h;
  h.entries = static_cast<int64_t>(entries.size());
  if (!entries.empty()) {
    h.chain = entries.back().chain;
    h.last_kind = KindName(entries.back().kind);
    h.last_day = entries.back().day;
  }
  return h;
}

std::string RenderHead(const Head& h) {
  return absl::StrCat(kHeadHeader, h.entries, "\t", h.chain.empty() ? "-" : h.chain, "\t",
                      h.last_kind.empty() ? "-" : h.last_kind, "\t", h.last_day, "\n");
}

bool ParseHead(const std::string& text, Head* h) {
  for (absl::string_view piece : absl::StrSplit(text, '\n')) {
    if (piece.empty() || piece.front() == '#') continue;
    std::vector<std::string> f = absl::StrSplit(piece, '\t');
    if (f.size() != 4 || !absl::SimpleAtoi(f[0], &h->entries) ||
        !absl::SimpleAtoi(f[3], &h->last_day) || h->entries < 0) {
      return false;
    }
    h->chain = f[1] == "-" ? "" : f[1];
    h->last_kind = f[2] == "-" ? "" : f[2];
    return (h->entries == 0) == h->chain.empty();
  }
  return false;
}

std::string DescribeLast(const Head& h) {
  if (h.entries == 0) return "";
  return absl::StrCat(" (the last one the ", h.last_kind, " of day ", h.last_day, ")");
}

// Records `h` outside archive/ (atomically, as the manifest).
absl::Status WriteOutsideHead(const std::string& dir, const Head& h) {
  return WriteFileAtomic(OutsideHeadPath(dir), RenderHead(h));
}

// The day and generation of an archive file's name (YYYYMMDD.db.gz, YYYYMMDD.N.db.gz).
bool ParseArchiveFileName(const std::string& name, int64_t* day, int* generation) {
  if (!absl::EndsWith(name, ".db.gz") || name.size() < 14) return false;
  std::string stem = name.substr(0, name.size() - 6);
  if (!absl::SimpleAtoi(stem.substr(0, 8), day) || *day < 19700101) return false;
  if (stem.size() == 8) {
    *generation = 1;
    return true;
  }
  return stem[8] == '.' && absl::SimpleAtoi(stem.substr(9), generation) && *generation >= 2;
}

// The archive files in archive/ (not orphans/ or tmp/), by name.
std::set<std::string> ArchiveFileNames(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(ArchiveDir(dir), ec)) {
    std::string name = f.path().filename().string();
    int64_t day;
    int generation;
    if (f.is_regular_file(ec) && ParseArchiveFileName(name, &day, &generation)) names.insert(name);
  }
  return names;
}

// What the manifest says and whether it can be trusted: well formed, each entry chained to
// the one numbered before it, in order, and ending where the head recorded outside it says.
struct ManifestState {
  bool exists = false;
  int64_t max_seq = 0;                // the highest entry number on any line, malformed ones too
  bool line_problems = false;         // CheckLines found some
  std::vector<ArchiveEntry> entries;  // its well-formed lines, in file order
  std::vector<std::string> problems;  // why it cannot be trusted, each naming the day
  // Archive files no entry names: an archiving step's file whose entry a crash kept out (its
  // day is still hot), or a file from elsewhere. Never a trust problem by themselves.
  std::vector<std::string> stray_files;
  Head head;  // of `entries`
  std::optional<Head> head_file, next_head, outside_head;
  bool trusted() const { return problems.empty(); }
};

std::string StrayProblem(const std::string& name) {
  int64_t day = 0;
  int generation = 0;
  ParseArchiveFileName(name, &day, &generation);
  return absl::StrCat("day ", day, ": archive file ", name, " is named by no manifest entry");
}

// Sequence numbers and chain hashes of the manifest's lines.
void CheckLines(const std::vector<ManifestLine>& lines, std::vector<std::string>* problems) {
  std::map<int64_t, const ManifestLine*> by_seq;
  int64_t max_seq = 0;
  for (const ManifestLine& m : lines) {
    if (m.seq > 0) {
      by_seq.emplace(m.seq, &m);
      max_seq = std::max(max_seq, m.seq);
    }
  }
  auto day_of = [&](int64_t seq) -> std::string {
    auto it = by_seq.find(seq);
    return it == by_seq.end() || it->second->day == 0 ? std::string("?")
                                                      : absl::StrCat(it->second->day);
  };
  // Entries missing from the numbering: a line removed (the head check catches the last one).
  for (int64_t seq = 1; seq <= max_seq; ++seq) {
    if (by_seq.count(seq)) continue;
    int64_t end = seq;
    while (end + 1 <= max_seq && !by_seq.count(end + 1)) ++end;
    // The neighbours' days are not the missing entry's: "of DAY", never "day DAY".
    std::string where = seq == 1 ? absl::StrCat("before entry ", end + 1, " of ", day_of(end + 1))
                                 : absl::StrCat("between entry ", seq - 1, " of ", day_of(seq - 1),
                                                " and entry ", end + 1, " of ", day_of(end + 1));
    problems->push_back(absl::StrCat(
        seq == end ? absl::StrCat("manifest entry ", seq, " is")
                   : absl::StrCat("manifest entries ", seq, "..", end, " are"),
        " missing (", where, "): removed; an archive file named by no entry below names its day"));
    seq = end;
  }
  int64_t previous_seq = 0;
  int64_t previous_day = 0;
  for (const ManifestLine& m : lines) {
    if (!m.ok) {
      problems->push_back(absl::StrCat(
          m.day != 0 ? absl::StrCat("day ", m.day, ": ") : std::string(), "MANIFEST line ",
          m.number, m.seq > 0 ? absl::StrCat(" (entry ", m.seq, ")") : std::string(),
          " is malformed"));
    } else {
      const ArchiveEntry& e = m.entry;
      if (e.seq <= previous_seq) {
        problems->push_back(absl::StrCat("day ", e.day, ": manifest entry ", e.seq,
                                         " is out of order (found after entry ", previous_seq,
                                         " of ", previous_day, "): lines were moved"));
      }
      // Checked against the entry numbered before it wherever that stands, so a changed
      // entry is named, not the one after it, and a removed or moved line is not taken for a
      // changed one.
      const ManifestLine* before = nullptr;
      if (e.seq > 1) {
        auto it = by_seq.find(e.seq - 1);
        if (it != by_seq.end()) before = it->second;
      }
      if (e.seq == 1 || (before != nullptr && before->ok)) {
        if (ChainOf(e.seq == 1 ? "" : before->entry.chain, e) != e.chain) {
          problems->push_back(absl::StrCat("day ", e.day, ": manifest entry ", e.seq,
                                           " does not match its chain hash (the entry was "
                                           "changed)"));
        }
      }
    }
    if (m.seq > 0) {
      previous_seq = std::max(previous_seq, m.seq);
      if (previous_seq == m.seq) previous_day = m.day;
    }
  }
}

// How the manifest's end differs from `h`, recorded in `where`; empty when the lines' own
// problems (a malformed or removed line before an intact end) say it already.
std::string HeadMismatch(const ManifestState& st, const Head& h, const std::string& where) {
  if (st.exists && st.line_problems && st.max_seq == h.entries) return "";
  if (!st.exists) {
    return absl::StrCat("archive/MANIFEST is missing; ", where, " records ", h.entries, " entries",
                        DescribeLast(h));
  }
  if (st.head.entries < h.entries) {
    // Named by its day only when the last entry is the one gone; a line removed before it is
    // named by the numbering (CheckLines) and its archive file.
    if (st.entries.empty() || st.entries.back().seq < h.entries) {
      return absl::StrCat("day ", h.last_day, ": manifest entry ", h.entries, " (the ", h.last_kind,
                          " of day ", h.last_day,
                          ") was removed from its end: ", "the manifest holds ", st.head.entries,
                          " entries, ", where, " records ", h.entries);
    }
    return absl::StrCat("the manifest holds ", st.head.entries, " entries, ", where, " records ",
                        h.entries, ": entries were removed");
  }
  if (st.head.entries > h.entries) {
    return absl::StrCat("day ", st.head.last_day, ": the manifest holds ", st.head.entries,
                        " entries, ", where, " records only ", h.entries, DescribeLast(h),
                        ": entries were added outside maillens");
  }
  return absl::StrCat("day ", st.head.last_day, ": the manifest's last entry does not match ",
                      where, "'s chain hash: the manifest was rewritten");
}

absl::Status ReadHeadFile(const std::string& path, std::optional<Head>* out,
                          std::vector<std::string>* problems) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  Head h;
  if (!ParseHead(text, &h)) {
    problems->push_back(absl::StrCat(path, " is malformed"));
    return absl::OkStatus();
  }
  *out = std::move(h);
  return absl::OkStatus();
}

absl::StatusOr<ManifestState> CheckManifest(const std::string& dir) {
  ManifestState st;
  std::error_code ec;
  st.exists = fs::exists(ManifestPath(dir), ec);
  if (st.exists) {
    MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(ManifestPath(dir)));
    std::vector<ManifestLine> lines = ParseManifest(text);
    CheckLines(lines, &st.problems);
    st.line_problems = !st.problems.empty();
    for (ManifestLine& m : lines) {
      st.max_seq = std::max(st.max_seq, m.seq);
      if (m.ok) st.entries.push_back(std::move(m.entry));
    }
  }
  st.head = HeadOf(st.entries);
  MAILLENS_RETURN_IF_ERROR(ReadHeadFile(HeadPath(dir), &st.head_file, &st.problems));
  MAILLENS_RETURN_IF_ERROR(ReadHeadFile(NextHeadPath(dir), &st.next_head, &st.problems));
  MAILLENS_RETURN_IF_ERROR(ReadHeadFile(OutsideHeadPath(dir), &st.outside_head, &st.problems));

  std::set<std::string> named;
  for (const ArchiveEntry& e : st.entries) {
    if (!e.file.empty()) named.insert(e.file);
  }
  const std::set<std::string> files = ArchiveFileNames(dir);
  for (const std::string& name : files) {
    if (!named.count(name)) st.stray_files.push_back(name);
  }

  if (!st.head_file && !st.next_head && !st.outside_head) {
    // No head recorded: nothing was archived yet, or by a maillens before heads (the next
    // retention pass records one). Archive files without a manifest are then the only sign.
    if (!st.exists && !files.empty()) {
      st.problems.push_back(absl::StrCat("archive/MANIFEST is missing but ", files.size(),
                                         " archive files are there"));
    }
  } else {
    // The manifest ends at HEAD, or at HEAD.next when a crash came after the manifest's
    // rename and before HEAD's (RecoverLocked then moves HEAD on).
    const bool at_head = st.head_file && st.head_file->Same(st.head);
    const bool at_next = st.next_head && st.next_head->Same(st.head);
    std::vector<std::string> mismatches;
    if ((st.head_file || st.next_head) && !at_head && !at_next) {
      mismatches.push_back(HeadMismatch(st, st.head_file ? *st.head_file : *st.next_head,
                                        st.head_file ? "archive/HEAD" : "archive/HEAD.next"));
    }
    // The copy outside archive/ is written after the manifest: it may be behind (a crash, a
    // failed write) but then names an entry of this manifest; never ahead of it or elsewhere.
    if (st.outside_head) {
      const Head& c = *st.outside_head;
      const bool behind =
          c.entries == 0 || (c.entries <= st.head.entries &&
                             st.entries[static_cast<size_t>(c.entries - 1)].chain == c.chain);
      if (!behind) mismatches.push_back(HeadMismatch(st, c, "archive.head"));
    }
    // An empty one is explained by the lines' problems, which leave the manifest untrusted.
    for (std::string& m : mismatches) {
      if (!m.empty()) st.problems.push_back(std::move(m));
    }
  }
  if (!st.trusted()) {
    for (const std::string& name : st.stray_files) st.problems.push_back(StrayProblem(name));
  }
  return st;
}

absl::Status UntrustedError(const ManifestState& st) {
  return absl::DataLossError(absl::StrCat(
      "the archive's manifest cannot be trusted: ", st.problems.front(),
      st.problems.size() > 1 ? absl::StrCat(" (and ", st.problems.size() - 1, " more)") : "",
      "; nothing is read from, archived into or deleted from the archive until it is "
      "repaired: run 'maillens archive verify', then 'maillens archive repair'"));
}

// The manifest's entries, when it can be trusted.
absl::StatusOr<std::vector<ArchiveEntry>> ReadEntries(const std::string& dir) {
  MAILLENS_ASSIGN_OR_RETURN(ManifestState st, CheckManifest(dir));
  if (!st.trusted()) return UntrustedError(st);
  return std::move(st.entries);
}

// Writes the manifest `entries` with its head. HEAD.next first, then the manifest (the commit
// point), then the copy outside archive/, then HEAD: a crash between any two leaves a state
// CheckManifest accepts and RecoverLocked completes.
absl::Status WriteManifest(const std::string& dir, const std::vector<ArchiveEntry>& entries) {
  const Head head = HeadOf(entries);
  MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(NextHeadPath(dir), RenderHead(head)));
  Probe("head-next", head.last_day);
  MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(ManifestPath(dir), RenderManifest(entries)));
  Probe("manifest-renamed", head.last_day);
  // Committed. A copy that cannot be written now stays behind, which CheckManifest accepts,
  // until RecoverLocked brings it up to date; failing here would only leave the step half
  // finished.
  (void)WriteOutsideHead(dir, head);
  if (rename(NextHeadPath(dir).c_str(), HeadPath(dir).c_str()) != 0) {
    return Errno("cannot rename to", HeadPath(dir));
  }
  return FsyncPath(ArchiveDir(dir), /*directory=*/true);
}

// Appends `e` (seq and chain filled in here) to the trusted `entries`.
absl::Status AppendEntry(const std::string& dir, std::vector<ArchiveEntry> entries,
                         ArchiveEntry e) {
  // HEAD.next is taken for the manifest's end only beside a HEAD it may follow: the first
  // append, or the first of an archive older than heads, records where the manifest stands.
  std::error_code ec;
  if (!fs::exists(HeadPath(dir), ec)) {
    MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(HeadPath(dir), RenderHead(HeadOf(entries))));
  }
  e.seq = entries.empty() ? 1 : entries.back().seq + 1;
  e.chain = ChainOf(entries.empty() ? "" : entries.back().chain, e);
  entries.push_back(std::move(e));
  return WriteManifest(dir, entries);
}

std::map<int64_t, ArchiveEntry> LiveMap(const std::vector<ArchiveEntry>& entries) {
  std::map<int64_t, ArchiveEntry> live;
  for (const ArchiveEntry& e : entries) {
    if (e.kind == ArchiveEntry::Kind::kArchive) {
      live[e.day] = e;
    } else if (e.kind == ArchiveEntry::Kind::kDelete) {
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
  // The addresses' queues go with the index (a side file of an older maillens has none:
  // then neither has the archived day, and searches read its lines).
  MAILLENS_ASSIGN_OR_RETURN(Statement has_queues, db->Prepare(kHasSideAddressQueues));
  MAILLENS_ASSIGN_OR_RETURN(auto queues_step, has_queues.Step());
  const bool side_queues = queues_step == Statement::StepResult::kRow;
  has_queues.Reset();
  MAILLENS_RETURN_IF_ERROR(db->Exec("DROP TABLE IF EXISTS main.address_queues"));
  if (side_queues) {
    MAILLENS_RETURN_IF_ERROR(db->Exec(kCreateAddressQueues));
    MAILLENS_RETURN_IF_ERROR(
        db->Exec("INSERT INTO main.address_queues SELECT * FROM fts.address_queues"));
  }
  std::vector<const char*> gone = {kFtsFileFeature};
  if (!side_queues) gone.push_back(kAddressQueuesFeature);
  for (const char* name : gone) {
    MAILLENS_ASSIGN_OR_RETURN(Statement feature, db->Prepare(kDeleteFeature));
    feature.BindText(1, name);
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

// --- Forgetting deleted days in the catalog ---------------------------------------------

std::vector<int64_t> DayFiles(const std::string& dir);

// The messages of deleted day `?1`..`?2` (first line on it) whose last line is before `?3`,
// the start of the next day still held: every line of theirs was on days no longer held.
constexpr char kSelectPurgeable[] =
    "SELECT count(*) FROM messages WHERE first_us >= ? AND first_us < ? AND last_us < ? "
    "AND COALESCE(end_us, 0) < ?";
constexpr char kCreatePurgeIds[] =
    "CREATE TEMP TABLE IF NOT EXISTS purge_ids (id INTEGER PRIMARY KEY)";
constexpr char kClearPurgeIds[] = "DELETE FROM temp.purge_ids";
constexpr char kCollectPurgeIds[] =
    "INSERT OR IGNORE INTO temp.purge_ids (id) SELECT id FROM messages WHERE first_us >= ? AND "
    "first_us < ? AND last_us < ? AND COALESCE(end_us, 0) < ?";
// Children first: the catalog runs with foreign keys on.
constexpr const char* kPurgeRows[] = {
    "DELETE FROM recipients WHERE message IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM links WHERE from_message IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM links WHERE to_message IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM pending WHERE from_message IN (SELECT id FROM temp.purge_ids)",
    "DELETE FROM messages WHERE id IN (SELECT id FROM temp.purge_ids)",
};

constexpr char kHasMailboxDeliveries[] =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mailbox_deliveries'";
constexpr char kPurgeMailboxDeliveries[] =
    "DELETE FROM mailbox_deliveries WHERE time_us >= ? AND time_us < ?";

// Days whose last manifest entry is a deletion and that are not hot again, with when.
std::vector<DeletedDay> DeletedDaysOf(const std::string& dir,
                                      const std::vector<ArchiveEntry>& entries) {
  std::map<int64_t, DeletedDay> deleted;
  for (const ArchiveEntry& e : entries) {
    if (e.kind == ArchiveEntry::Kind::kDelete) {
      deleted[e.day] = DeletedDay{e.day, e.first_us};
    } else if (e.kind == ArchiveEntry::Kind::kArchive) {
      deleted.erase(e.day);
    }
  }
  std::vector<DeletedDay> out;
  for (const auto& [day, d] : deleted) {
    if (!fs::exists(HotPath(dir, day))) out.push_back(d);
  }
  return out;
}

// PurgeDeletedMessages under the archive lock, with the trusted manifest's entries.
absl::Status PurgeLocked(const std::string& dir, const std::vector<ArchiveEntry>& entries,
                         uint64_t* purged) {
  if (purged != nullptr) *purged = 0;
  const std::vector<DeletedDay> deleted = DeletedDaysOf(dir, entries);
  if (deleted.empty() || !fs::exists(dir + "/catalog.db")) return absl::OkStatus();
  std::set<int64_t> held;
  for (int64_t day : DayFiles(dir)) held.insert(day);
  for (const auto& [day, e] : LiveMap(entries)) held.insert(day);
  // Per deleted day: [its start, its end) for the first line, and the start of the next held
  // day as the bound for the last (a message that goes on into a held day keeps its row).
  struct Range {
    int64_t from_us, to_us, bound_us;
  };
  std::vector<Range> ranges;
  for (const DeletedDay& d : deleted) {
    auto next = held.upper_bound(d.day);
    ranges.push_back({DayStartUs(d.day), DayStartUs(d.day) + kDayUs,
                      next == held.end() ? INT64_MAX : DayStartUs(*next)});
  }
  MAILLENS_ASSIGN_OR_RETURN(auto catalog,
                            Database::Open(dir + "/catalog.db", Database::Mode::kReadWrite));
  // Look before taking the catalog's write lock: after the first pass there is usually
  // nothing left, and the store's writer should not wait for a pass that changes nothing.
  int64_t found = 0;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement count, catalog->Prepare(kSelectPurgeable));
    for (const Range& r : ranges) {
      count.Reset();
      count.Bind(1, r.from_us).Bind(2, r.to_us).Bind(3, r.bound_us).Bind(4, r.bound_us);
      MAILLENS_ASSIGN_OR_RETURN(Statement::StepResult step, count.Step());
      if (step == Statement::StepResult::kRow) found += count.ColumnInt(0);
    }
  }
  if (found == 0) return absl::OkStatus();
  MAILLENS_RETURN_IF_ERROR(catalog->Exec(kCreatePurgeIds));
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog.get()));
  MAILLENS_RETURN_IF_ERROR(catalog->Exec(kClearPurgeIds));
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement collect, catalog->Prepare(kCollectPurgeIds));
    for (const Range& r : ranges) {
      collect.Reset();
      collect.Bind(1, r.from_us).Bind(2, r.to_us).Bind(3, r.bound_us).Bind(4, r.bound_us);
      MAILLENS_RETURN_IF_ERROR(collect.Run());
    }
  }
  for (const char* sql : kPurgeRows) {
    MAILLENS_RETURN_IF_ERROR(catalog->Exec(sql));
    if (purged != nullptr && sql == kPurgeRows[std::size(kPurgeRows) - 1]) {
      *purged = static_cast<uint64_t>(catalog->Changes());
    }
  }
  // Dovecot's lines of the deleted days, kept for the hops' mailbox step, go with them (a
  // catalog no writer has migrated yet has none).
  MAILLENS_ASSIGN_OR_RETURN(Statement has_mailbox, catalog->Prepare(kHasMailboxDeliveries));
  MAILLENS_ASSIGN_OR_RETURN(auto mailbox_step, has_mailbox.Step());
  has_mailbox.Reset();
  if (mailbox_step == Statement::StepResult::kRow) {
    MAILLENS_ASSIGN_OR_RETURN(Statement forget, catalog->Prepare(kPurgeMailboxDeliveries));
    for (const Range& r : ranges) {
      forget.Reset();
      forget.Bind(1, r.from_us).Bind(2, r.to_us);
      MAILLENS_RETURN_IF_ERROR(forget.Run());
    }
  }
  Probe("purge", deleted.back().day);
  MAILLENS_RETURN_IF_ERROR(txn.Commit());
  // The freed pages go back to the file system where the catalog vacuums incrementally
  // (Store: a new catalog does); elsewhere this does nothing and they are reused.
  return catalog->Exec("PRAGMA incremental_vacuum");
}

// Deletes the day, then forgets its messages in the catalog.
absl::Status DeleteDayLocked(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  std::map<int64_t, ArchiveEntry> live = LiveMap(entries);
  ArchiveEntry entry;
  entry.kind = ArchiveEntry::Kind::kDelete;
  entry.day = day;
  entry.first_us = absl::ToUnixMicros(absl::Now());  // when: what `trace` and `report` say
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
  MAILLENS_RETURN_IF_ERROR(UnlinkFile(IntentPath(dir, day)));
  // Its decompressed copies in cache/ hold lines that are gone now (and count against the
  // budget); readers that have one open keep reading it.
  std::error_code ec;
  const std::string prefix = absl::StrCat(day, ".");
  for (const auto& f : fs::directory_iterator(dir + "/cache", ec)) {
    if (absl::StartsWith(f.path().filename().string(), prefix)) fs::remove(f.path(), ec);
  }
  // After the commit point: a crash before or inside this transaction leaves the rows, which
  // recovery (every pass starts with it) removes.
  entries.push_back(entry);
  return PurgeLocked(dir, entries, nullptr);
}

// Moves archive file `name` into archive/orphans/, beside whatever is there already.
absl::Status MoveToOrphans(const std::string& dir, const std::string& name) {
  std::error_code ec;
  fs::create_directories(OrphansDir(dir), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", OrphansDir(dir), ": ", ec.message()));
  }
  std::string to = absl::StrCat(OrphansDir(dir), "/", name);
  for (int i = 2; fs::exists(to, ec); ++i) to = absl::StrCat(OrphansDir(dir), "/", name, ".", i);
  const std::string from = absl::StrCat(ArchiveDir(dir), "/", name);
  if (rename(from.c_str(), to.c_str()) != 0) return Errno("cannot move to", to);
  MAILLENS_RETURN_IF_ERROR(FsyncPath(OrphansDir(dir), /*directory=*/true));
  return FsyncPath(ArchiveDir(dir), /*directory=*/true);
}

// Brings archive/HEAD and the copy outside archive/ to the end of the trusted manifest: after a
// crash inside WriteManifest, or when no head was recorded yet (an archive of a maillens
// before heads, which is trusted as it is found then).
absl::Status FinishHead(const std::string& dir, const ManifestState& st, const RetentionLog& log) {
  const bool recorded = st.head_file || st.next_head || st.outside_head;
  if (!recorded && st.head.entries == 0) return absl::OkStatus();  // nothing archived yet
  if (!st.head_file || !st.head_file->Same(st.head)) {
    if (!recorded) {
      Say(log, LogLevel::kInfo,
          absl::Substitute("retention: recording the archive's head ($0 entries) in $1 and $2",
                           st.head.entries, HeadPath(dir), OutsideHeadPath(dir)));
    }
    MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(HeadPath(dir), RenderHead(st.head)));
  }
  if (st.next_head) MAILLENS_RETURN_IF_ERROR(UnlinkFile(NextHeadPath(dir)));
  if (!st.outside_head || !st.outside_head->Same(st.head)) {
    absl::Status s = WriteOutsideHead(dir, st.head);
    if (!s.ok()) {
      Say(log, LogLevel::kWarning,
          absl::Substitute("retention: cannot record the archive's head in $0: $1",
                           OutsideHeadPath(dir), std::string(s.message())));
    }
  }
  return absl::OkStatus();
}

absl::Status RecoverLocked(const std::string& dir, const RetentionLog& log) {
  std::error_code ec;
  // Work files of an interrupted step: their step never committed (a compressed day there
  // was never renamed into archive/, and its day is still hot).
  for (const auto& f : fs::directory_iterator(TmpDir(dir), ec)) fs::remove(f.path(), ec);
  // Nothing else is touched unless the manifest can be trusted: what it cannot vouch for is
  // never removed.
  MAILLENS_ASSIGN_OR_RETURN(ManifestState st, CheckManifest(dir));
  if (!st.trusted()) return UntrustedError(st);
  MAILLENS_RETURN_IF_ERROR(FinishHead(dir, st, log));
  const std::vector<ArchiveEntry>& entries = st.entries;
  std::map<int64_t, ArchiveEntry> live = LiveMap(entries);
  std::map<int64_t, ArchiveEntry::Kind> last_kind;
  std::map<int64_t, int> last_generation;
  std::set<std::string> named_files;
  for (const ArchiveEntry& e : entries) {
    if (e.kind == ArchiveEntry::Kind::kRepair) continue;
    last_kind[e.day] = e.kind;
    last_generation[e.day] = std::max(last_generation[e.day], e.generation);
    if (!e.file.empty()) named_files.insert(e.file);
  }
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
        Say(log, LogLevel::kInfo,
            absl::Substitute("retention: finishing the interrupted removal of hot day $0", day));
        MAILLENS_RETURN_IF_ERROR(UnlinkHot(dir, day));
      }
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
    } else if (absl::EndsWith(name, ".db.gz") && live_files.count(name) == 0) {
      int64_t day = 0;
      int generation = 0;
      const bool parsed = ParseArchiveFileName(name, &day, &generation);
      if (named_files.count(name)) {
        // Superseded by a later generation, or of a deleted day: the manifest says so.
        Say(log, LogLevel::kInfo,
            absl::Substitute("retention: removing $0 (superseded or deleted in the manifest)",
                             name));
        MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
      } else if (parsed && generation > last_generation[day] && fs::exists(HotPath(dir, day))) {
        // Renamed in before a crash kept its manifest entry from being written: the day is
        // still hot, and this file holds nothing the hot partition does not.
        Say(log, LogLevel::kInfo,
            absl::Substitute(
                "retention: removing $0 (its day is still hot; its archiving was interrupted)",
                name));
        MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
      } else {
        // Not the manifest's, not an interrupted step's: kept aside for the admin, never
        // removed.
        Say(log, LogLevel::kWarning,
            absl::Substitute("retention: $0 is named by no manifest entry; moved to $1", name,
                             OrphansDir(dir)));
        MAILLENS_RETURN_IF_ERROR(MoveToOrphans(dir, name));
      }
    } else if (absl::EndsWith(name, ".tmp")) {
      MAILLENS_RETURN_IF_ERROR(UnlinkFile(p.string()));
    }
  }
  MAILLENS_RETURN_IF_ERROR(FsyncPath(ArchiveDir(dir), /*directory=*/true));
  // A deletion committed in the manifest whose catalog rows a crash kept (or a day deleted by
  // a maillens that did not forget them): removed now.
  uint64_t purged = 0;
  MAILLENS_RETURN_IF_ERROR(PurgeLocked(dir, entries, &purged));
  if (purged > 0) {
    Say(log, LogLevel::kInfo,
        absl::Substitute("retention: removed $0 messages of deleted days from the catalog",
                         purged));
  }
  return absl::OkStatus();
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

// A private cache for a process that is not the data directory's owner:
// $XDG_CACHE_HOME/maillens/ID or ~/.cache/maillens/ID (else /tmp/maillens-cache-UID/ID), ID
// naming the data directory.
std::string PrivateCacheDir(const std::string& dir) {
  std::error_code ec;
  fs::path absolute = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  const std::string id = Sha256Hex(absolute.string()).substr(0, 16);
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg != nullptr && xdg[0] == '/') return absl::StrCat(xdg, "/maillens/", id);
  if (home != nullptr && home[0] == '/') return absl::StrCat(home, "/.cache/maillens/", id);
  return absl::StrCat("/tmp/maillens-cache-", geteuid(), "/", id);
}

// The SHA-256 of a cached copy as extracted, beside it: a copy changed since is extracted
// again rather than read (ReadableDayPath) and named by VerifyArchive.
std::string CacheSumPath(const std::string& cached) { return cached + ".sha256"; }

// Whether cached copy `cached` still has the SHA-256 it was extracted with.
bool CachedCopyIntact(const std::string& cached) {
  auto expected = ReadWholeFile(CacheSumPath(cached));
  if (!expected.ok()) return false;
  auto sha = Sha256File(cached);
  return sha.ok() && absl::StripAsciiWhitespace(*expected) == *sha;
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
    fs::remove(CacheSumPath(item.path.string()), ec);
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

absl::Status RecoverArchive(const std::string& dir, const RetentionLog& log) {
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

absl::Status PurgeDeletedMessages(const std::string& dir, uint64_t* purged) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> entries, ReadEntries(dir));
  return PurgeLocked(dir, entries, purged);
}

std::vector<DeletedDay> DeletedDays(const std::string& dir) {
  // An archive that cannot be trusted names no deleted day: UnreadableArchive speaks for it.
  auto entries = ReadEntries(dir);
  if (!entries.ok()) return {};
  return DeletedDaysOf(dir, *entries);
}

std::string DeletedDaysNotice(const std::string& dir, int64_t first_day, int64_t last_day) {
  std::vector<DeletedDay> in;
  for (const DeletedDay& d : DeletedDays(dir)) {
    if (d.day >= first_day && d.day <= last_day) in.push_back(d);
  }
  if (in.empty()) return "";
  int64_t first_us = INT64_MAX, last_us = 0;
  for (const DeletedDay& d : in) {
    if (d.deleted_us == 0) continue;
    first_us = std::min(first_us, d.deleted_us);
    last_us = std::max(last_us, d.deleted_us);
  }
  auto date = [](int64_t us) {
    return absl::FormatTime("%Y-%m-%d", absl::FromUnixMicros(us), absl::UTCTimeZone());
  };
  std::string when;
  if (last_us > 0) {
    when = date(first_us) == date(last_us)
               ? absl::StrCat(" on ", date(first_us))
               : absl::StrCat(" between ", date(first_us), " and ", date(last_us));
  }
  return absl::StrCat(kDeletedByRetentionNotice, when, ": ", in.size(),
                      in.size() == 1 ? " day" : " days", " (", in.front().day,
                      in.size() == 1 ? "" : absl::StrCat("..", in.back().day),
                      "); their lines, and the messages that were only on them, are no longer "
                      "kept");
}

DataUsage DataDirUsage(const std::string& dir) {
  DataUsage u;
  std::error_code ec;
  for (const auto& top : fs::directory_iterator(dir, ec)) {
    const std::string name = top.path().filename().string();
    uint64_t bytes = 0;
    if (top.is_directory(ec)) {
      for (auto it = fs::recursive_directory_iterator(top.path(), ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) bytes += it->file_size(ec);
      }
      ec.clear();
    } else if (top.is_regular_file(ec)) {
      bytes = top.file_size(ec);
    }
    if (name == "days") {
      u.days += bytes;
    } else if (absl::StartsWith(name, "catalog.db")) {
      u.catalog += bytes;
    } else if (name == "journal") {
      u.journal += bytes;
    } else if (name == "archive" || name == "archive.head") {
      u.archive += bytes;
    } else if (name == "cache") {
      u.cache += bytes;
    } else {
      u.other += bytes;
    }
  }
  if (u.catalog > 0) {
    auto catalog = Database::Open(dir + "/catalog.db", Database::Mode::kReadOnly);
    if (catalog.ok()) {
      auto pages = (*catalog)->Prepare(
          "SELECT f.freelist_count * s.page_size FROM pragma_freelist_count() AS f, "
          "pragma_page_size() AS s");
      if (pages.ok()) {
        auto step = pages->Step();
        if (step.ok() && *step == Statement::StepResult::kRow && pages->ColumnInt(0) > 0) {
          u.catalog_free = std::min<uint64_t>(pages->ColumnInt(0), u.catalog);
        }
      }
    }
  }
  return u;
}

uint64_t DataBytes(const std::string& dir) { return DataDirUsage(dir).budgeted(); }

absl::StatusOr<RetentionStats> RunRetention(const std::string& dir, const RetentionPolicy& policy,
                                            int64_t now_us, const RetentionLog& log,
                                            const std::atomic<bool>* cancel) {
  // The lock is taken per day, so a late line's RestoreDay (on the collector's writer) never
  // waits for a whole pass.
  RetentionStats stats;
  auto delete_day = [&](int64_t day) -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
    return DeleteDayLocked(dir, day);
  };
  {
    MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
    MAILLENS_RETURN_IF_ERROR(RecoverLocked(dir, log));
  }
  auto cancelled = [&] { return cancel != nullptr && cancel->load(); };
  const int64_t today = DayOf(now_us);
  const int64_t hot_start = DayOf(now_us - std::max(policy.hot_days - 1, 0) * kDayUs);
  const int64_t keep_start =
      policy.archive_days > 0 ? DayOf(now_us - (policy.archive_days - 1) * kDayUs) : 0;
  auto note = [&](int64_t day, const absl::Status& s) {
    if (absl::IsFailedPrecondition(s)) {
      Say(log, LogLevel::kInfo, absl::StrCat("retention: ", s.message()));
    } else {
      Say(log, LogLevel::kWarning,
          absl::Substitute("retention: day $0: $1", day, std::string(s.message())));
    }
  };
  for (int64_t day : DayFiles(dir)) {
    if (day >= hot_start || cancelled()) break;
    absl::Status s;
    if (day < keep_start) {
      s = delete_day(day);
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
    absl::Status s = delete_day(day);
    if (s.ok()) stats.deleted.push_back(day);
    if (!s.ok()) note(day, s);
  }
  if (policy.disk_budget_bytes > 0) {
    uint64_t bytes = DataBytes(dir);
    // Over the budget, the cache goes before any day: it is only decompressed copies of the
    // archive, extracted again when next read.
    if (bytes > policy.disk_budget_bytes) {
      const uint64_t cached = DataDirUsage(dir).cache;
      if (cached > 0) {
        TrimCache(dir + "/cache", "", 0);
        bytes = DataBytes(dir);
        Say(log, LogLevel::kInfo,
            absl::Substitute("retention: disk budget: emptied cache/ ($0 bytes)", cached));
      }
    }
    while (bytes > policy.disk_budget_bytes && !cancelled()) {
      std::set<int64_t> days;
      for (int64_t d : DayFiles(dir)) days.insert(d);
      MAILLENS_ASSIGN_OR_RETURN(entries, ReadEntries(dir));
      for (const auto& [d, e] : LiveMap(entries)) days.insert(d);
      if (days.empty() || *days.begin() >= today) {
        std::string w =
            absl::StrCat("disk use ", bytes, " bytes is over the budget of ",
                         policy.disk_budget_bytes, " bytes with only today's partition left");
        Say(log, LogLevel::kWarning, absl::StrCat("retention: ", w));
        stats.warnings.push_back(w);
        break;
      }
      int64_t oldest = *days.begin();
      if (!stats.deleted.empty() && stats.deleted.back() == oldest) {
        return absl::InternalError(
            absl::StrCat("retention: day ", oldest, " is still there after deleting it"));
      }
      MAILLENS_RETURN_IF_ERROR(delete_day(oldest));
      std::string w = absl::StrCat("disk budget: deleted day ", oldest, " (", bytes,
                                   " bytes used, budget ", policy.disk_budget_bytes, ")");
      Say(log, LogLevel::kWarning, absl::StrCat("retention: ", w));
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
      Say(log, LogLevel::kWarning, absl::StrCat("retention: ", w));
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
  if (!live.ok()) return days;  // UnreadableArchive names them
  for (const ArchiveEntry& e : *live) days.push_back(e.day);
  return days;
}

ArchiveReadProblem UnreadableArchive(const std::string& dir) {
  ArchiveReadProblem out;
  absl::StatusOr<ManifestState> st = CheckManifest(dir);
  if (!st.ok()) {
    out.reason = std::string(st.status().message());
    return out;
  }
  if (st->trusted()) return out;
  out.reason = std::string(UntrustedError(*st).message());
  std::set<int64_t> days;
  for (const auto& [day, e] : LiveMap(st->entries)) days.insert(day);
  for (const std::string& name : ArchiveFileNames(dir)) {
    int64_t day = 0;
    int generation = 0;
    if (ParseArchiveFileName(name, &day, &generation)) days.insert(day);
  }
  // A hot partition holds all its day's lines (see "Late lines"): those days are read.
  for (int64_t day : HotDays(dir)) days.erase(day);
  out.days.assign(days.begin(), days.end());
  return out;
}

std::string UnreadableArchiveNotice(const std::string& dir, int64_t first_day, int64_t last_day) {
  ArchiveReadProblem problem = UnreadableArchive(dir);
  if (problem.reason.empty()) return "";
  std::vector<int64_t> days;
  for (int64_t day : problem.days) {
    if (day >= first_day && day <= last_day) days.push_back(day);
  }
  if (days.empty() && !problem.days.empty()) return "";  // none in the window
  // Contiguous days as one range: a year of them stays one line.
  std::string named;
  for (size_t i = 0; i < days.size();) {
    size_t j = i;
    while (j + 1 < days.size() && DayOf(DayStartUs(days[j]) + kDayUs) == days[j + 1]) {
      ++j;
    }
    absl::StrAppend(&named, named.empty() ? "" : ", ", days[i],
                    j > i ? absl::StrCat("..", days[j]) : "");
    i = j + 1;
  }
  return absl::StrCat(
      kUnreadableArchiveNotice,
      days.empty() ? std::string("which days is not known")
                   : absl::StrCat(days.size(), days.size() == 1 ? " day (" : " days (", named, ")"),
      " left out of this answer: ", problem.reason);
}

bool IsUnreadableArchiveNotice(std::string_view notice) {
  return absl::StartsWith(absl::string_view(notice.data(), notice.size()),
                          kUnreadableArchiveNotice);
}

std::vector<int64_t> AllDays(const std::string& dir) {
  std::set<int64_t> days;
  for (int64_t d : HotDays(dir)) days.insert(d);
  for (int64_t d : ArchivedDays(dir)) days.insert(d);
  return std::vector<int64_t>(days.begin(), days.end());
}

std::string ArchiveCacheDir(const std::string& dir) {
  const std::string shared = dir + "/cache";
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || st.st_uid != geteuid()) return PrivateCacheDir(dir);
  // The owner's, but made by someone else before (a CLI run by root, of an older maillens):
  // not one this process can add to.
  if (access(shared.c_str(), F_OK) == 0 && access(shared.c_str(), W_OK | X_OK) != 0) {
    return PrivateCacheDir(dir);
  }
  return shared;
}

absl::StatusOr<std::string> ReadableDayPath(const std::string& dir, int64_t day, bool* archived,
                                            uint64_t cache_bytes) {
  if (archived) *archived = false;
  std::string hot = HotPath(dir, day);
  if (fs::exists(hot)) return hot;
  absl::StatusOr<std::vector<ArchiveEntry>> entries = ReadEntries(dir);
  if (!entries.ok()) {
    return absl::Status(entries.status().code(),
                        absl::StrCat("day ", day, " cannot be read from the archive: ",
                                     entries.status().message()));
  }
  std::map<int64_t, ArchiveEntry> live = LiveMap(*entries);
  auto it = live.find(day);
  if (it == live.end()) {
    // Archived between our two looks: the hot partition was removed after the manifest
    // entry was written, so the manifest read above already had it. Anything else is absent.
    if (fs::exists(hot)) return hot;
    return absl::NotFoundError(absl::StrCat("no partition for day ", day));
  }
  const ArchiveEntry& e = it->second;
  if (archived) *archived = true;
  const std::string cache = ArchiveCacheDir(dir);
  const std::string cached = absl::StrCat(cache, "/", day, ".", e.sha256.substr(0, 16), ".db");
  // A copy is read only while it is what was extracted from the archive file (which was
  // checked then): one changed since (an edit, a disk error) is extracted again.
  if (fs::exists(cached) && CachedCopyIntact(cached)) {
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
  // Nobody else's to read: a private cache holds what its user may read in the store.
  if (cache != dir + "/cache") chmod(cache.c_str(), 0700);
  MAILLENS_RETURN_IF_ERROR(CheckArchiveFile(dir, e));
  std::ostringstream tid;
  tid << std::this_thread::get_id();
  const std::string tmp = absl::StrCat(cache, "/.", day, ".", getpid(), ".", tid.str(), ".tmp");
  const std::string sum_tmp = tmp + ".sha256";
  MAILLENS_RETURN_IF_ERROR(Decompress(ArchiveDir(dir) + "/" + e.file, tmp));
  RemoveOnExit cleanup({tmp, sum_tmp}, nullptr);
  MAILLENS_ASSIGN_OR_RETURN(std::string sum, Sha256File(tmp));
  {
    // The checksum goes in first: it is the same for every extraction of this archive file,
    // so a reader between the two renames finds an old copy not matching it and extracts
    // again, never a changed copy taken for good.
    std::ofstream out(sum_tmp, std::ios::binary | std::ios::trunc);
    out << sum << "\n";
    out.close();
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", sum_tmp));
  }
  if (rename(sum_tmp.c_str(), CacheSumPath(cached).c_str()) != 0) {
    return Errno("cannot rename to", CacheSumPath(cached));
  }
  if (rename(tmp.c_str(), cached.c_str()) != 0) return Errno("cannot rename to", cached);
  TrimCache(cache, cached, cache_bytes);
  return cached;
}

absl::Status RestoreDay(const std::string& dir, int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  if (fs::exists(HotPath(dir, day))) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(ManifestState st, CheckManifest(dir));
  std::map<int64_t, ArchiveEntry> live = LiveMap(st.entries);
  if (!st.trusted()) {
    // A day the archive may hold is not started anew beside it: the next pass would archive
    // the new partition over its file. Any other day is new, and its lines are stored.
    bool maybe_archived = live.count(day) > 0;
    for (const std::string& name : ArchiveFileNames(dir)) {
      int64_t file_day = 0;
      int generation = 0;
      maybe_archived |= ParseArchiveFileName(name, &file_day, &generation) && file_day == day;
    }
    if (!maybe_archived) {
      return absl::NotFoundError(absl::StrCat("day ", day, " is not archived"));
    }
    absl::Status untrusted = UntrustedError(st);
    return absl::Status(untrusted.code(), absl::StrCat("a line for archived day ", day,
                                                       " cannot be stored: ", untrusted.message()));
  }
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
  MAILLENS_ASSIGN_OR_RETURN(ManifestState st, CheckManifest(dir));
  result.problems = st.problems;
  result.head = st.head.chain;
  result.entries = static_cast<uint64_t>(st.head.entries);
  if (st.trusted()) {
    for (const std::string& name : st.stray_files) {
      result.problems.push_back(
          absl::StrCat(StrayProblem(name),
                       " (the next retention pass removes it if its day is still hot, else "
                       "moves it to archive/orphans/)"));
    }
  }
  if (!st.head_file && !st.outside_head && st.head.entries > 0) {
    result.notes.push_back(
        "no head is recorded outside the manifest yet (the collector's next retention pass "
        "records it): a removed last entry cannot be told until then");
  } else if (st.head.entries > 0 && (!st.head_file || !st.outside_head)) {
    // The manifest is still checked against the other copy; a second loss would leave a
    // removed last entry unseen. Said, so a deleted file is not taken for nothing.
    result.notes.push_back(absl::StrCat(
        st.head_file ? OutsideHeadPath(dir) : HeadPath(dir), " is missing: the head is checked ",
        "against ", st.head_file ? HeadPath(dir) : OutsideHeadPath(dir),
        " alone until the collector's next retention pass writes it again"));
  }
  {
    std::error_code ec;
    size_t orphans = 0;
    for (const auto& f : fs::directory_iterator(OrphansDir(dir), ec)) {
      orphans += f.is_regular_file(ec) ? 1 : 0;
    }
    if (orphans > 0) {
      result.notes.push_back(absl::StrCat(orphans, " files in ", OrphansDir(dir),
                                          " (kept aside: named by no manifest entry)"));
    }
  }
  // Files of the entries as read, even from a manifest that cannot be trusted: a changed or
  // missing file is named either way.
  std::map<int64_t, ArchiveEntry> live = LiveMap(st.entries);
  for (const auto& [day, e] : live) {
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
  // Cached copies of the live files, against the SHA-256 they were extracted with: the
  // shared cache, and this user's own when it reads through that.
  std::error_code ec;
  std::vector<fs::directory_entry> cached;
  for (const std::string& cache_dir : std::set<std::string>{dir + "/cache", ArchiveCacheDir(dir)}) {
    for (const auto& f : fs::directory_iterator(cache_dir, ec)) cached.push_back(f);
  }
  for (const auto& f : cached) {
    const std::string path = f.path().string();
    const std::string name = f.path().filename().string();
    int64_t day = 0;
    if (f.path().extension() != ".db" || name.size() < 9 ||
        !absl::SimpleAtoi(name.substr(0, 8), &day) || !fs::exists(CacheSumPath(path), ec)) {
      continue;
    }
    auto it = live.find(day);
    if (it == live.end() || name != absl::StrCat(day, ".", it->second.sha256.substr(0, 16), ".db"))
      continue;  // of an earlier generation: never read again, trimmed in time
    if (!CachedCopyIntact(path)) {
      result.problems.push_back(absl::StrCat("day ", day, ": its cached copy ", path,
                                             " was changed since it was extracted (it is "
                                             "extracted again when next read)"));
    }
  }
  return result;
}

absl::StatusOr<RepairPlan> PlanArchiveRepair(const std::string& dir) {
  RepairPlan plan;
  MAILLENS_ASSIGN_OR_RETURN(VerifyResult verify, VerifyArchive(dir));
  MAILLENS_ASSIGN_OR_RETURN(ManifestState st, CheckManifest(dir));
  if (st.trusted()) return plan;
  plan.needed = true;
  plan.problems = verify.problems;
  // The newest generation of each day is its day; older ones were superseded.
  std::map<int64_t, std::pair<int, std::string>> newest;  // day -> generation, file
  std::vector<std::pair<int64_t, std::string>> older;
  for (const std::string& name : ArchiveFileNames(dir)) {
    int64_t day = 0;
    int generation = 0;
    ParseArchiveFileName(name, &day, &generation);
    auto it = newest.find(day);
    if (it == newest.end()) {
      newest[day] = {generation, name};
    } else if (generation > it->second.first) {
      older.emplace_back(day, it->second.second);
      it->second = {generation, name};
    } else {
      older.emplace_back(day, name);
    }
  }
  std::map<int64_t, ArchiveEntry> deleted;  // day -> its last readable kDelete entry
  for (const ArchiveEntry& e : st.entries) {
    if (e.kind == ArchiveEntry::Kind::kDelete && newest.count(e.day) == 0 &&
        !fs::exists(HotPath(dir, e.day))) {
      deleted[e.day] = e;
    }
  }
  for (auto& [day, e] : deleted) plan.deletions.push_back(std::move(e));
  int64_t recorded = 0;  // entries a head copy says the manifest had
  for (const auto* head : {&st.head_file, &st.outside_head, &st.next_head}) {
    if (head->has_value()) recorded = std::max(recorded, (*head)->entries);
  }
  plan.entries_lost = std::max<int64_t>(0, recorded - static_cast<int64_t>(st.entries.size()));
  for (const auto& [day, name] : older) {
    plan.set_aside_files.push_back(name);
    plan.set_aside.push_back(
        absl::StrCat(name, ": an older generation of day ", day, " (superseded)"));
  }
  MAILLENS_ASSIGN_OR_RETURN(auto catalog,
                            Database::Open(dir + "/catalog.db", Database::Mode::kReadOnly));
  const std::string cache = ArchiveCacheDir(dir);
  const std::string work = absl::StrCat(cache, "/.repair-", getpid(), ".db");
  std::error_code ec;
  fs::create_directories(cache, ec);
  RemoveOnExit cleanup({work}, nullptr);
  for (const auto& entry : newest) {
    // Not a structured binding: the lambda below uses the day, and C++17 lambdas may not
    // capture bindings (clang refuses).
    const int64_t day = entry.first;
    const auto& file = entry.second;
    const std::string& name = file.second;
    ArchiveEntry e;
    e.kind = ArchiveEntry::Kind::kArchive;
    e.day = day;
    e.generation = file.first;
    e.file = name;
    // What it holds, read as the archive was written (ArchiveDayLocked).
    absl::Status read = [&]() -> absl::Status {
      MAILLENS_ASSIGN_OR_RETURN(e.sha256, Sha256File(ArchiveDir(dir) + "/" + name));
      MAILLENS_RETURN_IF_ERROR(Decompress(ArchiveDir(dir) + "/" + name, work));
      MAILLENS_ASSIGN_OR_RETURN(auto db, Database::Open(work, Database::Mode::kReadOnly));
      MAILLENS_ASSIGN_OR_RETURN(DayStats stats, ReadDayStats(db.get()));
      e.first_us = stats.first_us;
      e.last_us = stats.last_us;
      e.lines = stats.lines;
      e.last_id = stats.last_id;
      MAILLENS_ASSIGN_OR_RETURN(Statement q, db->Prepare(kSelectDayHosts));
      MAILLENS_ASSIGN_OR_RETURN(Statement host, catalog->Prepare(kSelectHostName));
      while (true) {
        MAILLENS_ASSIGN_OR_RETURN(auto step, q.Step());
        if (step == Statement::StepResult::kDone) break;
        host.Bind(1, q.ColumnInt(0));
        MAILLENS_ASSIGN_OR_RETURN(auto hstep, host.Step());
        e.hosts.push_back(hstep == Statement::StepResult::kRow ? std::string(host.ColumnText(0))
                                                               : absl::StrCat("#", q.ColumnInt(0)));
        host.Reset();
      }
      std::sort(e.hosts.begin(), e.hosts.end());
      if (stats.lines > 0 && DayOf(stats.first_us) != day) {
        return absl::DataLossError(absl::StrCat("holds lines of day ", DayOf(stats.first_us)));
      }
      return absl::OkStatus();
    }();
    (void)UnlinkDatabase(work);
    if (!read.ok()) {
      plan.set_aside_files.push_back(name);
      plan.set_aside.push_back(
          absl::StrCat(name, ": cannot be read as day ", day, ": ", read.message()));
      continue;
    }
    plan.entries.push_back(std::move(e));
  }
  return plan;
}

absl::Status RepairArchive(const std::string& dir, const RepairPlan& plan) {
  MAILLENS_ASSIGN_OR_RETURN(ArchiveLock lock, ArchiveLock::Take(dir));
  MAILLENS_ASSIGN_OR_RETURN(ManifestState st, CheckManifest(dir));
  if (st.trusted()) {
    return absl::FailedPreconditionError("the manifest can be trusted now; nothing repaired");
  }
  // The plan holds only while the files are the ones it read.
  std::set<std::string> planned(plan.set_aside_files.begin(), plan.set_aside_files.end());
  for (const ArchiveEntry& e : plan.entries) {
    planned.insert(e.file);
    MAILLENS_ASSIGN_OR_RETURN(std::string sha, Sha256File(ArchiveDir(dir) + "/" + e.file));
    if (sha != e.sha256) {
      return absl::AbortedError(
          absl::StrCat(e.file, " changed since the repair was planned; run it again"));
    }
  }
  if (planned != ArchiveFileNames(dir)) {
    return absl::AbortedError(
        "the archive's files changed since the repair was planned; run it "
        "again");
  }
  for (const std::string& name : plan.set_aside_files) {
    MAILLENS_RETURN_IF_ERROR(MoveToOrphans(dir, name));
  }
  ArchiveEntry repair;
  repair.kind = ArchiveEntry::Kind::kRepair;
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  repair.day = DayOf(now_us);
  repair.first_us = repair.last_us = now_us;
  repair.lines = plan.entries.size();
  std::error_code ec;
  if (st.exists) {
    MAILLENS_ASSIGN_OR_RETURN(repair.sha256, Sha256File(ManifestPath(dir)));
    // Kept for the record: what was there before the repair, chained to the new manifest by
    // the repair entry's SHA-256.
    const std::string kept = absl::StrCat(
        ManifestPath(dir), ".damaged-",
        absl::FormatTime("%Y%m%dT%H%M%SZ", absl::FromUnixMicros(now_us), absl::UTCTimeZone()));
    if (rename(ManifestPath(dir).c_str(), kept.c_str()) != 0)
      return Errno("cannot rename to", kept);
  }
  std::vector<ArchiveEntry> entries;
  std::vector<ArchiveEntry> listed = plan.entries;
  listed.insert(listed.end(), plan.deletions.begin(), plan.deletions.end());
  for (const ArchiveEntry& planned_entry : listed) {
    ArchiveEntry e = planned_entry;
    e.seq = static_cast<int64_t>(entries.size()) + 1;
    e.chain = ChainOf(entries.empty() ? "" : entries.back().chain, e);
    entries.push_back(std::move(e));
  }
  repair.seq = static_cast<int64_t>(entries.size()) + 1;
  repair.chain = ChainOf(entries.empty() ? "" : entries.back().chain, repair);
  entries.push_back(std::move(repair));
  MAILLENS_RETURN_IF_ERROR(WriteManifest(dir, entries));
  // WriteManifest leaves a copy it cannot write behind; the old one here is not behind but
  // elsewhere, which would leave the repaired manifest untrusted.
  absl::Status outside = WriteOutsideHead(dir, HeadOf(entries));
  if (!outside.ok()) {
    return absl::UnavailableError(
        absl::StrCat("the manifest was rebuilt, but its head could not be recorded in ",
                     OutsideHeadPath(dir), " (run the repair again): ", outside.message()));
  }
  return absl::OkStatus();
}

RetentionRunner::RetentionRunner(std::string dir, RetentionPolicy policy, absl::Duration interval,
                                 RetentionLog log)
    : dir_(std::move(dir)), policy_(std::move(policy)), interval_(interval), log_(std::move(log)) {
  thread_ = std::thread([this] { Run(); });
}

RetentionRunner::~RetentionRunner() { Stop(); }

void RetentionRunner::Stop() {
  {
    core::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cancel_.store(true);
  if (thread_.joinable()) thread_.join();
}

uint64_t RetentionRunner::passes() const {
  core::MutexLock lock(&mu_);
  return passes_;
}

void RetentionRunner::Run() {
  while (true) {
    absl::Time start = absl::Now();
    auto stats = RunRetention(dir_, policy_, absl::ToUnixMicros(start), log_, &cancel_);
    if (!stats.ok()) {
      Say(log_, LogLevel::kError,
          absl::Substitute("retention pass failed: $0", std::string(stats.status().message())));
    } else if (!stats->archived.empty() || !stats->deleted.empty()) {
      Say(log_, LogLevel::kInfo,
          absl::Substitute(
              "retention: archived $0 days, deleted $1 days in $2 ms; data uses $3 bytes",
              stats->archived.size(), stats->deleted.size(),
              absl::ToInt64Milliseconds(absl::Now() - start), stats->disk_bytes));
    }
    core::MutexLock lock(&mu_);
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

}  // namespace maillens::store
