#include "agent/tailer.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/discovery.h"
#include "agent/file_reader.h"
#include "core/status_macros.h"

namespace maillens::agent {

std::string_view GapReasonName(GapReason reason) {
  switch (reason) {
    case GapReason::kTruncated:
      return "truncated";
    case GapReason::kMissing:
      return "missing";
    case GapReason::kUnreadable:
      return "unreadable";
  }
  return "unknown";
}

// One file content the tailer follows.
struct Tailer::Tracked {
  FileKey key;              // device and inode where it was first seen; fingerprint once known
  bool identified = false;  // fingerprint known (first line complete, or the file is final)
  // Identified as a copy of content tracked already (a rotated file held open while a copy
  // of it was adopted too): dropped, so the content has one position only.
  bool duplicate = false;
  Head head;         // its first line, to notice the content being replaced in place
  std::string path;  // where it is now, as far as known
  // Open on the content: the live file, the file it was renamed to, or a copy (copytruncate,
  // .gz). Null once nothing is left to read from; the entry then waits for outstanding acks.
  std::unique_ptr<FileReader> reader;
  uint64_t source_device = 0;  // what `reader` has open
  uint64_t source_inode = 0;
  std::optional<ReadLine> stash;  // read but held back by the byte budget; next to hand out
  // read_offset moved (Rewind, a late Ack): seek there before the next read. Deferred to the
  // read so the content check of the next Poll runs first: the file may have been cut.
  bool reposition = false;
  uint64_t read_offset = 0;  // next line to hand out
  uint64_t read_sequence = 0;
  uint64_t handed_offset = 0;  // end of the furthest line ever handed out
  uint64_t acked_offset = 0;   // the checkpoint
  uint64_t acked_sequence = 0;
  bool rotated = false;    // no longer the file at the live path
  absl::Time last_change;  // rotation or late growth since: rotate_wait counts from here
  bool at_end = false;     // rotated and read to its final end
  uint64_t last_size = 0;  // of the live file when last checked
  int64_t mtime_ns = 0;
};

// One live path and the contents that were, or are, at it.
struct Tailer::Live {
  std::string path;
  std::vector<std::unique_ptr<Tracked>> files;  // oldest first; the last is current unless rotated
  std::vector<CheckpointFile> done;             // finished, remembered to recognise copies
  int64_t floor_ns = 0;                         // see CheckpointPath::floor_ns

  Tracked* current() const {
    return !files.empty() && !files.back()->rotated ? files.back().get() : nullptr;
  }
};

struct Tailer::Budget {
  size_t lines;
  size_t bytes;
  size_t used_lines = 0;
  size_t used_bytes = 0;
  bool exhausted() const { return used_lines >= lines || (used_lines > 0 && used_bytes >= bytes); }
};

namespace {

bool IsGzipName(const std::string& path) { return absl::EndsWith(path, ".gz"); }

// A sibling's first line, read through a short-lived reader.
std::optional<Head> HeadOfPath(const std::string& path) {
  absl::StatusOr<std::unique_ptr<FileReader>> reader = FileReader::Open(path, 1);
  if (!reader.ok()) return std::nullopt;
  absl::StatusOr<Head> head = (*reader)->ReadHead();
  if (!head.ok()) return std::nullopt;
  return *head;
}

}  // namespace

Tailer::Tailer(TailerOptions options, std::unique_ptr<CheckpointStore> store)
    : options_(std::move(options)), store_(std::move(store)) {}

Tailer::~Tailer() = default;

absl::StatusOr<std::unique_ptr<Tailer>> Tailer::Open(TailerOptions options) {
  if (options.paths.empty()) return absl::InvalidArgumentError("no paths to tail");
  if (!options.clock) options.clock = [] { return absl::Now(); };
  if (options.max_line_bytes == 0) options.max_line_bytes = 1;
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointStore> store,
                            CheckpointStore::Open(options.state_dir, options.sync_checkpoints));
  std::unique_ptr<Tailer> tailer(new Tailer(std::move(options), std::move(store)));
  std::lock_guard<std::mutex> lock(tailer->mu_);
  MAILLENS_RETURN_IF_ERROR(tailer->Start());
  return tailer;
}

absl::Status Tailer::Start() {
  now_ = options_.clock();
  std::optional<Checkpoint> saved;
  bool damaged = false;
  absl::StatusOr<std::optional<Checkpoint>> loaded = store_->Load();
  if (loaded.ok()) {
    saved = std::move(*loaded);
  } else if (absl::IsDataLoss(loaded.status())) {
    ++stats_.corrupt_checkpoints;
    Problem(absl::DataLossError(
        absl::StrCat(loaded.status().message(), "; reading every live file from its beginning")));
    damaged = true;
  } else {
    return loaded.status();
  }

  std::map<std::string, const CheckpointPath*> by_path;
  std::vector<std::string> paths = ExpandLivePaths(options_.paths);
  if (saved) {
    for (const CheckpointPath& p : saved->paths) {
      // A path no pattern names any more was dropped from the configuration.
      if (!MatchesAnyPattern(p.live_path, options_.paths)) continue;
      by_path[p.live_path] = &p;
      paths.push_back(p.live_path);
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  all_live_ = paths;
  for (const std::string& path : paths) {
    Live* live = AddLive(path);
    auto it = by_path.find(path);
    if (it != by_path.end()) {
      Restore(live, *it->second);
    } else {
      // start_at_end is for a first start only: after a damaged checkpoint, reading from the
      // beginning may resend, skipping could lose.
      FirstSight(live, options_.start_at_end && !damaged);
    }
  }
  dirty_ = true;
  absl::Status saved_now = Save();
  if (!saved_now.ok()) Problem(saved_now);
  return absl::OkStatus();
}

Tailer::Live* Tailer::AddLive(const std::string& path) {
  auto live = std::make_unique<Live>();
  live->path = path;
  Live* raw = live.get();
  lives_.push_back(std::move(live));
  std::sort(lives_.begin(), lives_.end(),
            [](const std::unique_ptr<Live>& a, const std::unique_ptr<Live>& b) {
              return a->path < b->path;
            });
  if (std::find(all_live_.begin(), all_live_.end(), path) == all_live_.end()) {
    all_live_.push_back(path);
    std::sort(all_live_.begin(), all_live_.end());
  }
  return raw;
}

void Tailer::FirstSight(Live* live, bool start_at_end) {
  // Rotated copies already there are history from before the tailer knew this path: they are
  // not backfilled (that is `maillens import`'s job), only newer ones will be read.
  for (const Sibling& s : ListSiblings(live->path, all_live_)) {
    live->floor_ns = std::max(live->floor_ns, s.stat.mtime_ns + 1);
  }
  AdoptCurrent(live, start_at_end);
  dirty_ = true;
}

void Tailer::Restore(Live* live, const CheckpointPath& saved) {
  live->floor_ns = saved.floor_ns;
  std::vector<Sibling> siblings = ListSiblings(live->path, all_live_);
  // Plain files first: a .gz beside its original may still be being written by gzip.
  std::stable_partition(siblings.begin(), siblings.end(),
                        [](const Sibling& s) { return !IsGzipName(s.path); });
  std::map<std::string, std::optional<uint64_t>> fingerprints;  // by path, read lazily
  auto fingerprint_of = [&](const std::string& path) -> std::optional<uint64_t> {
    auto it = fingerprints.find(path);
    if (it != fingerprints.end()) return it->second;
    std::optional<Head> head = HeadOfPath(path);
    std::optional<uint64_t> fp;
    if (head && (head->complete || !head->bytes.empty())) fp = head->Fingerprint();
    fingerprints[path] = fp;
    return fp;
  };
  std::optional<FileStat> live_stat = StatPath(live->path);
  for (const CheckpointFile& entry : saved.files) {
    if (entry.done) {
      live->done.push_back(entry);
      continue;
    }
    // Where is this content now? At the live path still, renamed beside it (same inode), or
    // copied/compressed beside it (same first line).
    std::string found;
    bool at_live = false;
    if (live_stat && live_stat->device == entry.key.device && live_stat->inode == entry.key.inode &&
        fingerprint_of(live->path) == entry.key.fingerprint) {
      found = live->path;
      at_live = true;
    }
    for (int pass = 0; pass < 2 && found.empty(); ++pass) {
      for (const Sibling& s : siblings) {
        bool same_inode = s.stat.device == entry.key.device && s.stat.inode == entry.key.inode;
        if ((pass == 0) != same_inode) continue;
        if (fingerprint_of(s.path) == entry.key.fingerprint) {
          found = s.path;
          break;
        }
      }
    }
    auto file = std::make_unique<Tracked>();
    file->key = entry.key;
    file->identified = true;
    file->path = found.empty() ? entry.path : found;
    file->read_offset = file->acked_offset = file->handed_offset = entry.offset;
    file->read_sequence = file->acked_sequence = entry.sequence;
    file->mtime_ns = entry.mtime_ns;
    file->rotated = !at_live;
    file->last_change = now_;
    if (found.empty()) {
      AddGap(*file, entry.offset, std::nullopt, entry.sequence, GapReason::kMissing,
             absl::StrCat("not found at ", live->path, " or beside it (last seen as ", entry.path,
                          ")"));
      continue;
    }
    absl::StatusOr<std::unique_ptr<FileReader>> reader =
        FileReader::Open(found, options_.max_line_bytes);
    if (!reader.ok()) {
      AddGap(*file, entry.offset, std::nullopt, entry.sequence, GapReason::kUnreadable,
             std::string(reader.status().message()));
      continue;
    }
    absl::StatusOr<FileStat> st = (*reader)->Stat();
    if (st.ok()) {
      file->source_device = st->device;
      file->source_inode = st->inode;
      file->last_size = st->size;
      file->mtime_ns = std::max(file->mtime_ns, st->mtime_ns);
    }
    absl::StatusOr<Head> head = (*reader)->ReadHead();
    if (head.ok()) file->head = *head;
    absl::Status seek = (*reader)->Seek(entry.offset);
    if (!seek.ok()) {
      if (at_live) {
        // Same inode, same first line, but shorter than what was acknowledged: cut in place
        // and rewritten. Read it again from its start under the same identity.
        AddGap(*file, entry.offset, std::nullopt, entry.sequence, GapReason::kTruncated,
               "shorter than the checkpoint; reading it again from its start");
        ++stats_.truncations;
        file->read_offset = file->acked_offset = file->handed_offset = 0;
        file->read_sequence = file->acked_sequence = 0;
        seek = (*reader)->Seek(0);
      } else {
        AddGap(*file, entry.offset, std::nullopt, entry.sequence, GapReason::kMissing,
               absl::StrCat(found, ": ", seek.message()));
        continue;
      }
    }
    if (!seek.ok()) {
      Problem(seek);
      continue;
    }
    file->reader = std::move(*reader);
    live->files.push_back(std::move(file));
  }
  // The file found at the live path is the current one: last, after the rotated ones.
  std::stable_partition(live->files.begin(), live->files.end(),
                        [](const std::unique_ptr<Tracked>& f) { return f->rotated; });
  // The saved floor, not Floor(): it was lowered for files saved without identity.
  ScanFamily(live, saved.floor_ns);
  if (live->current() == nullptr && StatPath(live->path)) AdoptCurrent(live, false);
}

void Tailer::Discover() {
  for (const std::string& path : ExpandLivePaths(options_.paths)) {
    if (std::find(all_live_.begin(), all_live_.end(), path) != all_live_.end()) continue;
    // Appeared while running: everything in it is new.
    FirstSight(AddLive(path), false);
  }
}

bool Tailer::AdoptCurrent(Live* live, bool from_end) {
  absl::StatusOr<std::unique_ptr<FileReader>> reader =
      FileReader::Open(live->path, options_.max_line_bytes);
  if (!reader.ok()) {
    if (!absl::IsNotFound(reader.status())) Problem(reader.status());
    return false;
  }
  absl::StatusOr<FileStat> st = (*reader)->Stat();
  if (!st.ok()) {
    Problem(st.status());
    return false;
  }
  auto file = std::make_unique<Tracked>();
  file->key.device = st->device;
  file->key.inode = st->inode;
  file->source_device = st->device;
  file->source_inode = st->inode;
  file->path = live->path;
  file->mtime_ns = st->mtime_ns;
  file->last_size = st->size;
  file->last_change = now_;
  if (from_end && !(*reader)->compressed()) {
    // Start after the last complete line; count the lines skipped so sequence numbers stay
    // line numbers.
    absl::StatusOr<uint64_t> skipped = (*reader)->SkipToEnd();
    if (!skipped.ok()) {
      Problem(skipped.status());
    } else {
      file->read_offset = file->acked_offset = file->handed_offset = (*reader)->position();
      file->read_sequence = file->acked_sequence = *skipped;
    }
  }
  file->reader = std::move(*reader);
  Identify(live, file.get(), false);
  live->files.push_back(std::move(file));
  dirty_ = true;
  return true;
}

bool Tailer::Identify(Live* live, Tracked* file, bool final) {
  if (file->identified) return true;
  if (file->reader == nullptr) return false;
  absl::StatusOr<Head> head = file->reader->ReadHead();
  if (!head.ok()) {
    Problem(head.status());
    return false;
  }
  file->head = *head;
  // An incomplete first line identifies a file only once it can no longer grow.
  if (!head->complete && !(final && !head->bytes.empty())) return false;
  file->key.fingerprint = head->Fingerprint();
  file->identified = true;
  dirty_ = true;
  if (file->rotated) {
    // Not live any more, so nothing of it was handed out, and its content may already be
    // tracked through a copy (adopted beside it while this one was still unidentified).
    bool known = false;
    for (const auto& other : live->files) {
      known |= other.get() != file && other->identified && !other->duplicate &&
               other->key.fingerprint == file->key.fingerprint;
    }
    for (const CheckpointFile& done : live->done) {
      known |= done.key.fingerprint == file->key.fingerprint;
    }
    if (known) {
      file->duplicate = true;
      file->reader.reset();
      file->at_end = true;
      return false;
    }
  }
  return true;
}

void Tailer::CheckLive(Live* live) {
  Tracked* cur = live->current();
  if (cur != nullptr && cur->reader == nullptr) {
    cur->rotated = true;  // given up on (cannot happen today; keeps the invariant below)
    cur = nullptr;
  }
  std::optional<FileStat> st = StatPath(live->path);
  bool present = st && st->regular;
  bool same = present && cur != nullptr && cur->source_device == st->device &&
              cur->source_inode == st->inode;
  if (cur != nullptr) {
    // Before letting go of the live path, make sure the file held is still the content it
    // was: copytruncate followed by a rename between two looks leaves new content in it.
    absl::StatusOr<FileStat> held = same ? absl::StatusOr<FileStat>(*st) : cur->reader->Stat();
    if (held.ok() && CheckContent(live, cur, *held)) {
      // Its content moved to a copy (or is lost); whatever the inode holds now is new.
      ScanFamily(live, Floor(*live));
      if (present) AdoptCurrent(live, false);
      return;
    }
    if (same) return;
    MarkRotated(live, cur);
  }
  if (!present) {
    // Renamed away or deleted, and no new file yet. A file may still have come and gone
    // (created, written, renamed away) since the last look: the scan holds on to it.
    ScanFamily(live, Floor(*live));
    return;
  }
  for (auto it = live->files.begin(); it != live->files.end(); ++it) {
    Tracked& file = **it;
    if (file.reader != nullptr && !file.at_end && file.source_device == st->device &&
        file.source_inode == st->inode) {
      // Renamed back to the live path (rare, but then it is the current file again).
      file.rotated = false;
      file.path = live->path;
      std::rotate(it, it + 1, live->files.end());
      return;
    }
  }
  // Content that came and went between two looks (two rotations in a row, or while the
  // agent was down) is in a sibling the tailer has never seen.
  ScanFamily(live, Floor(*live));
  AdoptCurrent(live, false);
}

bool Tailer::CheckContent(Live* live, Tracked* cur, const FileStat& st) {
  if (st.size == cur->last_size && st.mtime_ns == cur->mtime_ns) return false;
  absl::StatusOr<Head> head = cur->reader->ReadHead();
  if (!head.ok()) {
    Problem(head.status());
    return false;
  }
  // Shorter than what was read from it, or than its first line was: cut.
  bool cut = st.size < std::max<uint64_t>(cur->reader->fetched(), cur->head.bytes.size());
  HeadMatch match = CompareHeads(cur->head, *head);
  if (!cur->identified) {
    // Nothing of it was handed out yet (its first line was incomplete, or it was empty). Its
    // head cannot show a copytruncate in between (empty, then written, copied and cut, looks
    // like empty or like a first line growing), so look for a fresh copy whenever it changed.
    ScanFamily(live, Floor(*live));
    if (cut || match == HeadMatch::kDifferent) {
      // Replaced: start over.
      ++stats_.truncations;
      absl::Status seek = cur->reader->Seek(0);
      if (!seek.ok()) Problem(seek);
      cur->reposition = false;
      cur->read_offset = cur->handed_offset = cur->acked_offset = 0;
      cur->read_sequence = cur->acked_sequence = 0;
      cur->stash.reset();
    }
    cur->head = *head;
    cur->last_size = st.size;
    cur->mtime_ns = st.mtime_ns;
    Identify(live, cur, false);
    return false;
  }
  if (match == HeadMatch::kPrefix && !cut) return false;  // mid-write; look again next time
  if (match == HeadMatch::kSame && !cut) {
    cur->last_size = st.size;
    cur->mtime_ns = st.mtime_ns;
    return false;
  }
  if (match == HeadMatch::kSame) {
    // Shorter, yet the same complete first line: cut in place (truncate -s) or rewritten with
    // an identical first line. The two cannot be told apart, and a copy would carry the same
    // identity, so go on reading this file from its start. The collector keeps what it held.
    ++stats_.truncations;
    AddGap(*cur, cur->acked_offset, std::nullopt, cur->acked_sequence, GapReason::kTruncated,
           "cut in place with its first line unchanged; reading it again from its start");
    absl::Status seek = cur->reader->Seek(0);
    if (!seek.ok()) Problem(seek);
    cur->reposition = false;
    cur->read_offset = cur->handed_offset = cur->acked_offset = 0;
    cur->read_sequence = cur->acked_sequence = 0;
    cur->stash.reset();
    cur->last_size = st.size;
    cur->mtime_ns = st.mtime_ns;
    dirty_ = true;
    return false;
  }
  Relocate(live, cur);
  return true;
}

void Tailer::Relocate(Live* live, Tracked* cur) {
  // The content at the inode was cut (copytruncate) or replaced. What had not been read of
  // the old content is, with copytruncate, in the copy beside the live file.
  ++stats_.truncations;
  cur->rotated = true;
  cur->last_change = now_;
  cur->stash.reset();
  cur->reader.reset();
  std::vector<Sibling> siblings = ListSiblings(live->path, all_live_);
  // Plain files first (see ScanFamily), newest first: the copy was just made.
  std::stable_sort(siblings.begin(), siblings.end(), [](const Sibling& a, const Sibling& b) {
    bool a_gz = IsGzipName(a.path);
    bool b_gz = IsGzipName(b.path);
    if (a_gz != b_gz) return !a_gz;
    return a.stat.mtime_ns > b.stat.mtime_ns;
  });
  for (const Sibling& s : siblings) {
    if (s.stat.device == cur->source_device && s.stat.inode == cur->source_inode) continue;
    std::optional<Head> head = HeadOfPath(s.path);
    if (!head || !head->complete || head->Fingerprint() != cur->key.fingerprint) continue;
    absl::StatusOr<std::unique_ptr<FileReader>> reader =
        FileReader::Open(s.path, options_.max_line_bytes);
    if (!reader.ok() || !(*reader)->Seek(cur->read_offset).ok()) continue;
    cur->reader = std::move(*reader);
    cur->reposition = false;
    cur->source_device = s.stat.device;
    cur->source_inode = s.stat.inode;
    cur->path = s.path;
    break;
  }
  if (cur->reader == nullptr) {
    AddGap(*cur, cur->acked_offset, std::nullopt, cur->acked_sequence, GapReason::kTruncated,
           absl::StrCat(live->path, " was cut or replaced and no copy of it was found beside it"));
    cur->at_end = true;
  }
  dirty_ = true;
}

void Tailer::MarkRotated(Live* live, Tracked* file) {
  ++stats_.rotations;
  file->rotated = true;
  file->last_change = now_;
  for (const Sibling& s : ListSiblings(live->path, all_live_)) {
    if (s.stat.device == file->source_device && s.stat.inode == file->source_inode) {
      file->path = s.path;
      break;
    }
  }
  dirty_ = true;
}

int64_t Tailer::Floor(const Live& live) const {
  int64_t floor = live.floor_ns;
  for (const auto& file : live.files) floor = std::max(floor, file->mtime_ns);
  for (const CheckpointFile& done : live.done) floor = std::max(floor, done.mtime_ns);
  return floor;
}

bool Tailer::KnownFingerprint(const Live& live, uint64_t fingerprint) const {
  for (const auto& file : live.files) {
    if (file->identified && file->key.fingerprint == fingerprint) return true;
  }
  for (const CheckpointFile& done : live.done) {
    if (done.key.fingerprint == fingerprint) return true;
  }
  return false;
}

void Tailer::ScanFamily(Live* live, int64_t floor) {
  std::vector<Sibling> siblings = ListSiblings(live->path, all_live_);
  // Plain files first: a .gz beside its original may still be being written by gzip, and the
  // original, once adopted, makes the .gz a known copy.
  std::stable_partition(siblings.begin(), siblings.end(),
                        [](const Sibling& s) { return !IsGzipName(s.path); });
  for (const Sibling& s : siblings) {
    // Older than anything the tailer has accounted for: history, not news. Equal counts as
    // new, because file times are coarse and a re-read is harmless where a skip is not.
    if (s.stat.mtime_ns < floor || s.stat.size == 0) continue;
    bool held = false;
    for (const auto& file : live->files) {
      if (file->reader != nullptr && file->source_device == s.stat.device &&
          file->source_inode == s.stat.inode) {
        held = true;
      }
    }
    if (held) continue;
    absl::StatusOr<std::unique_ptr<FileReader>> reader =
        FileReader::Open(s.path, options_.max_line_bytes);
    if (!reader.ok()) continue;
    absl::StatusOr<Head> head = (*reader)->ReadHead();
    if (!head.ok() || (head->bytes.empty() && !head->complete)) continue;
    if (KnownFingerprint(*live, head->Fingerprint())) continue;
    auto file = std::make_unique<Tracked>();
    file->key = {s.stat.device, s.stat.inode, head->Fingerprint()};
    file->identified = true;
    file->head = *head;
    file->path = s.path;
    file->source_device = s.stat.device;
    file->source_inode = s.stat.inode;
    file->mtime_ns = s.stat.mtime_ns;
    file->last_size = s.stat.size;
    file->rotated = true;
    file->last_change = now_;
    file->reader = std::move(*reader);
    // Older contents before newer: before the current file, after the known rotated ones.
    auto at = live->current() != nullptr ? live->files.end() - 1 : live->files.end();
    live->files.insert(at, std::move(file));
    ++stats_.adopted;
    dirty_ = true;
  }
}

void Tailer::ReadFile(Live* live, Tracked* file, Budget* budget, std::vector<TailedLine>* out) {
  if (file->reader == nullptr || file->at_end) return;
  // A rotated file is final once nothing was written to it for rotate_wait.
  auto waited = [&] { return file->rotated && now_ - file->last_change >= options_.rotate_wait; };
  auto read = [&](bool flush, ReadLine* line) {
    uint64_t fetched = file->reader->fetched();
    absl::StatusOr<FileReader::Next> next = file->reader->Read(flush, line);
    if (file->rotated && !file->reader->compressed() && file->reader->fetched() > fetched) {
      file->last_change = now_;  // a late write: keep waiting for more
    }
    return next;
  };
  if (!file->identified && !Identify(live, file, waited())) {
    // Rotated away empty (logrotate's `create`, then rotated again unwritten): nothing to read.
    if (waited() && file->head.bytes.empty()) file->at_end = true;
    return;
  }
  if (file->reposition) {
    absl::Status seek = file->reader->Seek(file->read_offset);
    // The live file may have been cut since CheckLive looked: the next Poll sorts that out.
    if (!seek.ok() && !file->rotated) return;
    file->reposition = false;
    if (!seek.ok()) {
      AddGap(*file, file->acked_offset, std::nullopt, file->acked_sequence, GapReason::kUnreadable,
             std::string(seek.message()));
      file->reader.reset();
      file->at_end = true;
      return;
    }
  }
  while (!budget->exhausted()) {
    ReadLine line;
    if (file->stash) {
      line = std::move(*file->stash);
      file->stash.reset();
    } else {
      absl::StatusOr<FileReader::Next> next = read(false, &line);
      // Only after reading everything there is: a last line without '\n' is final now.
      if (next.ok() && *next == FileReader::Next::kWait && waited()) next = read(true, &line);
      if (!next.ok() && !file->rotated) {
        // The live file stays the live file: try again next Poll rather than give it up.
        Problem(next.status());
        return;
      }
      if (!next.ok()) {
        AddGap(*file, file->acked_offset, std::nullopt, file->acked_sequence,
               GapReason::kUnreadable, std::string(next.status().message()));
        file->reader.reset();
        file->at_end = true;
        return;
      }
      if (*next == FileReader::Next::kEnd) {
        file->at_end = true;
        return;
      }
      if (*next == FileReader::Next::kWait) {
        if (waited()) file->at_end = true;
        return;
      }
    }
    if (budget->used_lines > 0 && budget->used_bytes + line.raw.size() > budget->bytes) {
      file->stash = std::move(line);
      budget->used_bytes = budget->bytes;  // full: end this Poll
      return;
    }
    TailedLine tailed;
    tailed.file = file->key;
    tailed.path = file->path;
    tailed.offset = line.offset;
    tailed.end_offset = line.end_offset;
    tailed.sequence = file->read_sequence;
    tailed.dropped_bytes = line.dropped_bytes;
    tailed.newline = line.newline;
    tailed.read_time = now_;
    tailed.raw = std::move(line.raw);
    file->read_offset = line.end_offset;
    ++file->read_sequence;
    file->handed_offset = std::max(file->handed_offset, line.end_offset);
    ++budget->used_lines;
    budget->used_bytes += tailed.raw.size();
    ++stats_.lines;
    stats_.bytes += tailed.raw.size();
    if (tailed.dropped_bytes > 0) {
      ++stats_.cut_lines;
      stats_.dropped_bytes += tailed.dropped_bytes;
    }
    out->push_back(std::move(tailed));
  }
}

absl::StatusOr<std::vector<TailedLine>> Tailer::Poll(size_t max_lines, size_t max_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = options_.clock();
  Discover();
  for (auto& live : lives_) {
    CheckLive(live.get());
    // Identify every file whose first line is complete now, whatever the budget reaches:
    // only identified files are checkpointed, and a file deleted while held is found again
    // after a crash only through the checkpoint.
    for (auto& file : live->files) {
      if (!file->identified && file->reader != nullptr) {
        Identify(live.get(), file.get(),
                 file->rotated && now_ - file->last_change >= options_.rotate_wait);
      }
    }
  }
  std::vector<TailedLine> out;
  Budget budget{std::max<size_t>(max_lines, 1), max_bytes};
  size_t n = lives_.size();
  for (size_t i = 0; i < n && !budget.exhausted(); ++i) {
    Live* live = lives_[(next_live_ + i) % n].get();
    // Index loop: reading never adds files, but keep it robust to the vector moving.
    for (size_t f = 0; f < live->files.size() && !budget.exhausted(); ++f) {
      ReadFile(live, live->files[f].get(), &budget, &out);
    }
  }
  next_live_ = n == 0 ? 0 : (next_live_ + 1) % n;
  Retire();
  if (dirty_) {
    absl::Status saved = Save();
    if (!saved.ok()) Problem(saved);
  }
  return out;
}

void Tailer::Retire() {
  for (auto& live : lives_) {
    auto& files = live->files;
    for (auto it = files.begin(); it != files.end();) {
      Tracked& f = **it;
      bool finished = f.rotated && f.at_end && !f.stash && f.read_offset == f.acked_offset &&
                      f.handed_offset <= f.acked_offset;
      if (!finished) {
        ++it;
        continue;
      }
      if (f.identified && !f.duplicate) {
        CheckpointFile done;
        done.key = f.key;
        done.path = f.path;
        done.offset = f.acked_offset;
        done.sequence = f.acked_sequence;
        done.mtime_ns = f.mtime_ns;
        done.done = true;
        live->done.push_back(done);
      }
      it = files.erase(it);
      dirty_ = true;
    }
    if (live->done.size() > options_.max_done_per_path) {
      // Forget the oldest; keep the floor above them so their copies stay history.
      size_t drop = live->done.size() - options_.max_done_per_path;
      for (size_t i = 0; i < drop; ++i) {
        live->floor_ns = std::max(live->floor_ns, live->done[i].mtime_ns);
      }
      live->done.erase(live->done.begin(), live->done.begin() + static_cast<ptrdiff_t>(drop));
    }
  }
}

absl::Status Tailer::ApplyAck(const FileKey& key, uint64_t end_offset, uint64_t next_sequence) {
  // Normally one file has the key; should two (identical first lines at one inode), the one
  // whose handed-out span holds the ack is meant.
  Tracked* target = nullptr;
  for (auto& live : lives_) {
    for (auto& file : live->files) {
      if (!file->identified || file->duplicate || file->key != key) continue;
      if (target == nullptr ||
          (end_offset >= file->acked_offset && end_offset <= file->handed_offset)) {
        target = file.get();
      }
    }
  }
  if (target == nullptr) {
    for (auto& live : lives_) {
      for (const CheckpointFile& done : live->done) {
        if (done.key == key && end_offset <= done.offset) return absl::OkStatus();  // late echo
      }
    }
    return absl::NotFoundError(absl::StrCat("ack for a file not tailed: ", ToString(key)));
  }
  if (end_offset <= target->acked_offset) return absl::OkStatus();  // older ack, or repeated
  if (end_offset > target->handed_offset) {
    return absl::InvalidArgumentError(absl::StrCat("ack for ", ToString(key), " at ", end_offset,
                                                   " past what was handed out (",
                                                   target->handed_offset, ")"));
  }
  target->acked_offset = end_offset;
  target->acked_sequence = next_sequence;
  if (end_offset > target->read_offset) {
    // Acknowledged after a Rewind: the collector has it after all, no need to send it again.
    target->stash.reset();
    target->reposition = target->reader != nullptr;
    target->read_offset = end_offset;
    target->read_sequence = next_sequence;
  }
  dirty_ = true;
  return absl::OkStatus();
}

absl::Status Tailer::Ack(const FileKey& file, uint64_t end_offset, uint64_t next_sequence) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = options_.clock();
  MAILLENS_RETURN_IF_ERROR(ApplyAck(file, end_offset, next_sequence));
  return dirty_ ? Save() : absl::OkStatus();
}

absl::Status Tailer::AckLines(const std::vector<TailedLine>& lines) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = options_.clock();
  std::map<FileKey, std::pair<uint64_t, uint64_t>> last;  // key -> (end offset, next sequence)
  for (const TailedLine& line : lines) {
    auto& mark = last[line.file];
    if (line.end_offset > mark.first) mark = {line.end_offset, line.sequence + 1};
  }
  absl::Status first_error;
  for (const auto& [key, mark] : last) {
    absl::Status status = ApplyAck(key, mark.first, mark.second);
    if (!status.ok() && first_error.ok()) first_error = status;
  }
  if (dirty_) {
    absl::Status saved = Save();
    if (!saved.ok() && first_error.ok()) first_error = saved;
  }
  return first_error;
}

void Tailer::Rewind() {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = options_.clock();
  for (auto& live : lives_) {
    for (auto& file : live->files) {
      // A stashed line was read from the reader already: dropping it needs a seek too.
      if (file->read_offset == file->acked_offset && !file->stash) continue;
      file->stash.reset();
      if (file->reader != nullptr) {
        file->read_offset = file->acked_offset;
        file->read_sequence = file->acked_sequence;
        file->reposition = true;
        file->at_end = false;
        continue;
      }
      // The content is gone (cut with no copy, unreadable); its gap, reported then, starts
      // at the acknowledged position and so covers what was in flight.
      file->read_offset = std::max(file->read_offset, file->handed_offset);
      file->acked_offset = file->handed_offset = file->read_offset;
      file->acked_sequence = file->read_sequence;
      dirty_ = true;
    }
  }
}

std::vector<Gap> Tailer::TakeGaps() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Gap> out;
  out.swap(gaps_);
  return out;
}

TailerStats Tailer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  TailerStats stats = stats_;
  stats.open_files = 0;
  for (const auto& live : lives_) {
    for (const auto& file : live->files) {
      if (file->reader != nullptr) ++stats.open_files;
    }
  }
  return stats;
}

Checkpoint Tailer::CheckpointState() const {
  std::lock_guard<std::mutex> lock(mu_);
  return BuildCheckpoint();
}

std::vector<FileProgress> Tailer::Progress() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FileProgress> out;
  for (const auto& live : lives_) {
    for (const auto& file : live->files) {
      if (!file->identified || file->duplicate) continue;
      FileProgress p;
      p.file = file->key;
      p.path = file->path;
      p.read_offset = file->handed_offset;
      p.acked_offset = file->acked_offset;
      bool plain = !absl::EndsWith(file->path, ".gz");
      p.size =
          std::max(plain ? file->last_size : 0, std::max(file->handed_offset, file->acked_offset));
      out.push_back(std::move(p));
    }
  }
  return out;
}

Checkpoint Tailer::BuildCheckpoint() const {
  Checkpoint checkpoint;
  for (const auto& live : lives_) {
    CheckpointPath path;
    path.live_path = live->path;
    path.floor_ns = Floor(*live);
    for (const auto& file : live->files) {
      // A file without identity is not recorded below; should it be rotated away while the
      // agent is down, it must still count as new then.
      if (!file->identified) path.floor_ns = std::min(path.floor_ns, file->mtime_ns);
    }
    path.files = live->done;
    for (const auto& file : live->files) {
      // A file whose first line is incomplete has nothing acknowledged and no identity yet;
      // after a restart it is simply the live file, read from its start.
      if (!file->identified || file->duplicate) continue;
      CheckpointFile entry;
      entry.key = file->key;
      entry.path = file->path;
      entry.offset = file->acked_offset;
      entry.sequence = file->acked_sequence;
      entry.mtime_ns = file->mtime_ns;
      // Nothing left to read from: a restart must not look for it (and report it) again.
      entry.done = file->reader == nullptr;
      path.files.push_back(entry);
    }
    checkpoint.paths.push_back(std::move(path));
  }
  return checkpoint;
}

absl::Status Tailer::Save() {
  absl::Status status = store_->Save(BuildCheckpoint());
  if (status.ok()) {
    ++stats_.checkpoint_saves;
    dirty_ = false;
  } else {
    ++stats_.checkpoint_errors;
  }
  return status;
}

// Gaps of a file the tailer loses start at its acknowledged position, not its read position:
// lines in flight may not reach the collector either (a Rewind or a restart cannot send them
// again), and a span the collector partly holds is harmless to report.
void Tailer::AddGap(const Tracked& file, uint64_t from, std::optional<uint64_t> to,
                    uint64_t sequence, GapReason reason, std::string detail) {
  Gap gap;
  gap.file = file.key;
  gap.path = file.path;
  gap.from_offset = from;
  gap.to_offset = to;
  gap.from_sequence = sequence;
  gap.reason = reason;
  gap.detail = std::move(detail);
  gap.time = now_;
  gaps_.push_back(std::move(gap));
  ++stats_.gaps;
  dirty_ = true;
}

void Tailer::Problem(const absl::Status& status) {
  ++stats_.problems;
  if (options_.on_problem) options_.on_problem(status);
}

}  // namespace maillens::agent
