#include "collector/ingest_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace maillens::collector {
namespace {

constexpr char kReleasedFile[] = "released";
constexpr char kReleasedTemp[] = "released.tmp";
constexpr char kLockFile[] = "LOCK";
constexpr char kSegmentSuffix[] = ".journal";
constexpr char kReleasedMagic[] = "maillens-journal-released v1 ";

// A full disk is ResourceExhausted (the caller backs off and the agent retries later); any
// other I/O failure is Unavailable.
absl::Status ErrnoStatus(int err, absl::string_view what, const std::string& path) {
  std::string message = absl::StrCat("ingest journal: ", what, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    return absl::ResourceExhaustedError(absl::StrCat(message, " (the disk is full)"));
  }
  return absl::UnavailableError(message);
}

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// crc32 over the 8 little-endian seq bytes (at seq_bytes), then the payload.
uint32_t RecordCrc(const char* seq_bytes, std::string_view payload) {
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(seq_bytes), 8);
  // zlib takes uInt lengths; payloads are at most kMaxRecordBytes (1 GiB), which fits.
  crc =
      crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  return static_cast<uint32_t>(crc);
}

struct Header {
  uint32_t length = 0;
  uint32_t crc = 0;
  uint64_t seq = 0;
};

Header DecodeHeader(const char* p) { return {GetU32(p), GetU32(p + 4), GetU64(p + 8)}; }

// Reads exactly n bytes at `offset`; Unavailable on an I/O error, DataLoss if the file ends
// first (callers only read below a size they know).
absl::Status PReadExact(int fd, uint64_t offset, char* buf, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read", path);
    }
    if (r == 0) {
      return absl::DataLossError(absl::StrCat("ingest journal: ", path, " ends at offset ",
                                              offset + done, ", before the record there"));
    }
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

// Writes all of `data` at `offset`; returns 0 or the errno of the failure.
int PWriteAll(int fd, uint64_t offset, std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t w =
        pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(w);
  }
  return 0;
}

// Makes the directory's entries (created, renamed files) durable.
absl::Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoStatus(err, "fsync directory", dir);
  return absl::OkStatus();
}

// The first seq in a segment's file name, or false if `name` is not a segment.
bool ParseSegmentName(absl::string_view name, uint64_t* first_seq) {
  if (!absl::ConsumeSuffix(&name, kSegmentSuffix) || name.size() != 20) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  // Seqs start at 1; a segment named 0 is not one of ours.
  return absl::SimpleAtoi(name, first_seq) && *first_seq > 0;
}

// Whether `tail` (the bytes of a segment after a bad record) holds, at any offset, a complete
// record with a good CRC and a seq above `bad_seq`: then the bad record is not a torn tail but
// damage in front of acknowledged records. Checks the seq range before computing a CRC.
bool GoodRecordFollows(std::string_view tail, uint64_t bad_seq) {
  const uint64_t max_seq = bad_seq + tail.size() / IngestJournal::kHeaderBytes;
  for (size_t p = 1; p + IngestJournal::kHeaderBytes <= tail.size(); ++p) {
    Header h = DecodeHeader(tail.data() + p);
    if (h.seq <= bad_seq || h.seq > max_seq || h.length > IngestJournal::kMaxRecordBytes ||
        h.length > tail.size() - p - IngestJournal::kHeaderBytes) {
      continue;
    }
    std::string_view payload = tail.substr(p + IngestJournal::kHeaderBytes, h.length);
    if (RecordCrc(tail.data() + p + 8, payload) == h.crc) return true;
  }
  return false;
}

}  // namespace

IngestJournal::Segment::~Segment() {
  if (fd >= 0) close(fd);
}

IngestJournal::IngestJournal(JournalOptions options, int lock_fd)
    : options_(std::move(options)), lock_fd_(lock_fd) {}

IngestJournal::~IngestJournal() {
  {
    core::MutexLock lock(&mu_);
    segments_.clear();
  }
  close(lock_fd_);  // drops the flock
}

std::string IngestJournal::SegmentPath(uint64_t first_seq) const {
  return absl::StrFormat("%s/%020u%s", options_.dir, first_seq, kSegmentSuffix);
}

absl::StatusOr<std::unique_ptr<IngestJournal>> IngestJournal::Open(const JournalOptions& options) {
  if (options.dir.empty()) {
    return absl::InvalidArgumentError("ingest journal: no directory given");
  }
  std::error_code ec;
  if (std::filesystem::create_directories(options.dir, ec)) {
    std::string parent = std::filesystem::path(options.dir).parent_path().string();
    absl::Status synced = SyncDir(parent.empty() ? "." : parent);
    if (!synced.ok()) return synced;
  } else if (ec) {
    return ErrnoStatus(ec.value(), "cannot create directory", options.dir);
  }
  std::string lock_path = absl::StrCat(options.dir, "/", kLockFile);
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return ErrnoStatus(errno, "open", lock_path);
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(lock_fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("ingest journal ", options.dir,
                       " is in use by another process (or another open in this one)"));
    }
    return ErrnoStatus(err, "flock", lock_path);
  }
  std::unique_ptr<IngestJournal> journal(new IngestJournal(options, lock_fd));
  absl::Status recovered = journal->Recover();
  if (!recovered.ok()) return recovered;
  return journal;
}

absl::Status IngestJournal::LoadReleased() {
  std::string path = absl::StrCat(options_.dir, "/", kReleasedFile);
  unlink(absl::StrCat(options_.dir, "/", kReleasedTemp).c_str());  // a crashed Release's
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, "open", path);
  }
  char buf[128];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) return ErrnoStatus(err, "read", path);
  absl::string_view text(buf, static_cast<size_t>(n));
  uint64_t seq = 0;
  if (!absl::ConsumePrefix(&text, kReleasedMagic) || !absl::ConsumeSuffix(&text, "\n") ||
      !absl::SimpleAtoi(text, &seq)) {
    return absl::DataLossError(absl::StrCat(
        "ingest journal: ", path, " is not a released watermark (expected \"", kReleasedMagic,
        "SEQ\"); fix or remove it (without it every record in the journal is replayed, which "
        "is harmless)"));
  }
  core::MutexLock lock(&mu_);
  released_seq_ = seq;
  return absl::OkStatus();
}

absl::Status IngestJournal::Recover() {
  absl::Status loaded = LoadReleased();
  if (!loaded.ok()) return loaded;

  std::vector<uint64_t> firsts;
  DIR* dir = opendir(options_.dir.c_str());
  if (dir == nullptr) return ErrnoStatus(errno, "open directory", options_.dir);
  while (dirent* entry = readdir(dir)) {
    uint64_t first = 0;
    if (ParseSegmentName(entry->d_name, &first)) firsts.push_back(first);
  }
  closedir(dir);
  std::sort(firsts.begin(), firsts.end());

  core::MutexLock lock(&mu_);
  const uint64_t released = released_seq_;
  std::string payload;
  for (size_t i = 0; i < firsts.size(); ++i) {
    const bool last_segment = i + 1 == firsts.size();
    auto segment = std::make_unique<Segment>();
    segment->first_seq = firsts[i];
    segment->last_seq = firsts[i] - 1;
    segment->path = SegmentPath(firsts[i]);
    const std::string& path = segment->path;
    segment->fd = open(path.c_str(), (last_segment ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (segment->fd < 0) return ErrnoStatus(errno, "open", path);
    struct stat st;
    if (fstat(segment->fd, &st) != 0) return ErrnoStatus(errno, "fstat", path);
    const uint64_t file_size = static_cast<uint64_t>(st.st_size);

    // Records must continue the previous segment's; a gap is allowed only where every
    // missing record was released (and its segment deleted).
    const uint64_t expected_first = segments_.empty() ? released + 1 : last_seq_ + 1;
    if (firsts[i] > expected_first && firsts[i] - 1 > released) {
      return absl::DataLossError(absl::StrCat(
          "ingest journal: records ", expected_first, " to ", firsts[i] - 1,
          " are missing: no segment holds them before ", path,
          ". They were acknowledged but not indexed; to start without them, move the journal "
          "directory ",
          options_.dir, " aside (the lines they held will be missing from the store)"));
    }
    if (!segments_.empty() && firsts[i] < expected_first) {
      return absl::DataLossError(absl::StrCat("ingest journal: ", path, " starts at seq ",
                                              firsts[i], " but the segment before it ends at ",
                                              last_seq_, "; move the journal directory ",
                                              options_.dir, " aside to start without it"));
    }

    uint64_t offset = 0;
    uint64_t expected = firsts[i];
    while (offset < file_size) {
      // Check one record; on failure `problem` says what is wrong with it.
      std::string problem;
      Header h;
      char header[kHeaderBytes];
      if (file_size - offset < kHeaderBytes) {
        problem = "a short record header";
      } else {
        absl::Status read = PReadExact(segment->fd, offset, header, kHeaderBytes, path);
        if (!read.ok()) return read;
        h = DecodeHeader(header);
        if (h.length > kMaxRecordBytes) {
          problem = absl::StrCat("an impossible record length ", h.length);
        } else if (file_size - offset - kHeaderBytes < h.length) {
          problem = "a short record payload";
        } else {
          payload.resize(h.length);
          read = PReadExact(segment->fd, offset + kHeaderBytes, payload.data(), h.length, path);
          if (!read.ok()) return read;
          if (RecordCrc(header + 8, payload) != h.crc) {
            problem = "a record failing its CRC";
          } else if (h.seq != expected) {
            return absl::DataLossError(
                absl::StrCat("ingest journal: ", path, " holds seq ", h.seq, " at offset ", offset,
                             " where seq ", expected,
                             " belongs; the journal was tampered with. Move the "
                             "journal directory ",
                             options_.dir, " aside to start without it"));
          }
        }
      }
      if (problem.empty()) {
        const uint64_t bytes = kHeaderBytes + h.length;
        if (h.seq > released) {
          pending_.emplace_back(h.seq, bytes);
          pending_bytes_ += bytes;
        }
        segment->last_seq = h.seq;
        offset += bytes;
        ++expected;
        continue;
      }

      // A bad record: a torn tail (cut it off) only at the end of the last segment.
      bool followed = false;
      if (last_segment) {
        std::string tail(file_size - offset, '\0');
        absl::Status read = PReadExact(segment->fd, offset, tail.data(), tail.size(), path);
        if (!read.ok()) return read;
        followed = GoodRecordFollows(tail, expected - 1);
      }
      if (!last_segment || followed) {
        return absl::DataLossError(absl::StrCat(
            "ingest journal: ", path, " has ", problem, " at offset ", offset, " (seq ", expected,
            ") ", last_segment ? "followed by good records" : "in a segment before the last",
            ": acknowledged records are damaged. To start with the records before it, "
            "truncate the file to ",
            offset,
            " bytes and move the later segments aside (the lines of the lost records "
            "will be missing from the store); if the machine lost power, the damage may be an "
            "unacknowledged tail and truncating loses nothing"));
      }
      if (ftruncate(segment->fd, static_cast<off_t>(offset)) != 0) {
        return ErrnoStatus(errno, "cannot cut the torn tail off", path);
      }
      if (fdatasync(segment->fd) != 0) return ErrnoStatus(errno, "fdatasync", path);
      break;
    }
    segment->size = offset;
    last_seq_ = std::max(last_seq_, segment->last_seq);
    segments_.push_back(std::move(segment));
  }
  // Seqs never go back, even when every segment was released and deleted.
  last_seq_ = std::max(last_seq_, released);
  if (!segments_.empty()) {
    active_ = segments_.back().get();
    active_bytes_ = active_->size;
  }
  return absl::OkStatus();
}

absl::Status IngestJournal::StartSegment(uint64_t first_seq) {
  auto segment = std::make_unique<Segment>();
  segment->first_seq = first_seq;
  segment->last_seq = first_seq - 1;
  segment->path = SegmentPath(first_seq);
  segment->fd = open(segment->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (segment->fd < 0) return ErrnoStatus(errno, "cannot create segment", segment->path);
  absl::Status synced = SyncDir(options_.dir);
  if (!synced.ok()) {
    unlink(segment->path.c_str());
    return synced;
  }
  core::MutexLock lock(&mu_);
  active_ = segment.get();
  active_bytes_ = 0;
  segments_.push_back(std::move(segment));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> IngestJournal::Append(const std::vector<std::string_view>& payloads) {
  if (!broken_.ok()) return broken_;
  uint64_t last = 0;
  bool rotate = false;
  {
    core::MutexLock lock(&mu_);
    last = last_seq_;
    // A new segment when there is none, when the current one is full, or when it cannot hold
    // the next seq (everything was released and its records' segments deleted).
    rotate = active_ == nullptr || active_->last_seq != last ||
             (active_bytes_ > 0 && active_bytes_ >= options_.segment_bytes);
  }
  if (payloads.empty()) return last;
  size_t total = 0;
  for (std::string_view payload : payloads) {
    if (payload.size() > kMaxRecordBytes) {
      return absl::InvalidArgumentError(absl::StrCat("ingest journal: a record of ", payload.size(),
                                                     " bytes is over the ", kMaxRecordBytes,
                                                     "-byte limit"));
    }
    total += kHeaderBytes + payload.size();
  }
  if (rotate) {
    absl::Status started = StartSegment(last + 1);
    if (!started.ok()) return started;
  }

  buffer_.clear();
  buffer_.reserve(total);
  uint64_t seq = last;
  for (std::string_view payload : payloads) {
    char header[kHeaderBytes];
    PutU32(header, static_cast<uint32_t>(payload.size()));
    PutU64(header + 8, ++seq);
    PutU32(header + 4, RecordCrc(header + 8, payload));
    buffer_.append(header, kHeaderBytes);
    buffer_.append(payload);
  }

  const uint64_t before = active_bytes_;
  int err = PWriteAll(active_->fd, before, buffer_);
  const char* what = "write to";
  if (err == 0 && options_.sync && fdatasync(active_->fd) != 0) {
    err = errno;
    what = "fdatasync of";
  }
  if (err != 0) {
    absl::Status failed = ErrnoStatus(err, what, active_->path);
    if (ftruncate(active_->fd, static_cast<off_t>(before)) != 0) {
      broken_ = absl::UnavailableError(absl::StrCat(failed.message(), "; then cutting it back to ",
                                                    before, " bytes failed: ", std::strerror(errno),
                                                    "; reopen the journal to recover"));
      return broken_;
    }
    return failed;
  }
  active_bytes_ += buffer_.size();

  core::MutexLock lock(&mu_);
  active_->size = active_bytes_;
  active_->last_seq = seq;
  last_seq_ = seq;
  for (size_t i = 0; i < payloads.size(); ++i) {
    const uint64_t bytes = kHeaderBytes + payloads[i].size();
    pending_.emplace_back(last + 1 + i, bytes);
    pending_bytes_ += bytes;
  }
  return seq;
}

absl::Status IngestJournal::Read(uint64_t after_seq, size_t max_bytes,
                                 std::vector<JournalRecord>* out) {
  core::MutexLock reader_lock(&reader_mu_);
  // What Read may see, taken under mu_: the segments from the one to start in, with their
  // synced sizes. Only Release (serialized with us) destroys segments.
  struct View {
    Segment* segment;
    uint64_t size;
  };
  std::vector<View> views;
  uint64_t start_offset = 0;
  {
    core::MutexLock lock(&mu_);
    if (segments_.empty() || after_seq >= last_seq_) return absl::OkStatus();
    size_t index = 0;
    bool from_cursor = false;
    if (cursor_.valid && cursor_.seq == after_seq) {
      for (size_t i = 0; i < segments_.size(); ++i) {
        if (segments_[i]->first_seq == cursor_.segment_first_seq) {
          index = i;
          start_offset = cursor_.offset;
          from_cursor = true;
          break;
        }
      }
    }
    if (!from_cursor) {
      // The last segment whose first seq is <= after_seq + 1 (or the first segment).
      auto it = std::upper_bound(
          segments_.begin(), segments_.end(), after_seq + 1,
          [](uint64_t seq, const std::unique_ptr<Segment>& s) { return seq < s->first_seq; });
      index = it == segments_.begin() ? 0 : static_cast<size_t>(it - segments_.begin()) - 1;
    }
    for (size_t i = index; i < segments_.size(); ++i) {
      views.push_back({segments_[i].get(), segments_[i]->size});
    }
  }

  size_t returned = 0;
  size_t total = 0;
  uint64_t last_returned = after_seq;
  bool full = false;
  Cursor stop;
  for (size_t v = 0; v < views.size() && !full; ++v) {
    Segment* segment = views[v].segment;
    uint64_t offset = v == 0 ? start_offset : 0;
    while (offset < views[v].size) {
      if (views[v].size - offset < kHeaderBytes) {
        return absl::DataLossError(absl::StrCat("ingest journal: ", segment->path,
                                                " has a short record header at offset ", offset,
                                                "; it changed since it was written"));
      }
      char header[kHeaderBytes];
      absl::Status read = PReadExact(segment->fd, offset, header, kHeaderBytes, segment->path);
      if (!read.ok()) return read;
      Header h = DecodeHeader(header);
      if (h.length > kMaxRecordBytes || views[v].size - offset - kHeaderBytes < h.length) {
        return absl::DataLossError(absl::StrCat("ingest journal: ", segment->path,
                                                " has an impossible record length at offset ",
                                                offset, "; it changed since it was written"));
      }
      if (h.seq > after_seq) {
        if (returned > 0 && total + h.length > max_bytes) {
          full = true;
          break;
        }
        JournalRecord record;
        record.seq = h.seq;
        record.payload.resize(h.length);
        read = PReadExact(segment->fd, offset + kHeaderBytes, record.payload.data(), h.length,
                          segment->path);
        if (!read.ok()) return read;
        if (RecordCrc(header + 8, record.payload) != h.crc) {
          return absl::DataLossError(
              absl::StrCat("ingest journal: ", segment->path, " record seq ", h.seq, " at offset ",
                           offset, " fails its CRC; it changed since it was written"));
        }
        out->push_back(std::move(record));
        ++returned;
        total += h.length;
        last_returned = h.seq;
      }
      offset += kHeaderBytes + h.length;
    }
    // The next record is at `offset` of this segment, or at the start of a later one.
    stop = {true, 0, segment->first_seq, offset};
  }
  if (returned > 0) {
    stop.seq = last_returned;
    cursor_ = stop;
  }
  return absl::OkStatus();
}

absl::Status IngestJournal::WriteReleased(uint64_t seq) {
  std::string temp = absl::StrCat(options_.dir, "/", kReleasedTemp);
  std::string path = absl::StrCat(options_.dir, "/", kReleasedFile);
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "open", temp);
  std::string text = absl::StrCat(kReleasedMagic, seq, "\n");
  int err = PWriteAll(fd, 0, text);
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err != 0) {
    unlink(temp.c_str());
    return ErrnoStatus(err, "write to", temp);
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    err = errno;
    unlink(temp.c_str());
    return ErrnoStatus(err, "rename to", path);
  }
  return SyncDir(options_.dir);
}

absl::Status IngestJournal::Release(uint64_t seq) {
  core::MutexLock reader_lock(&reader_mu_);
  {
    core::MutexLock lock(&mu_);
    if (seq <= released_seq_) return absl::OkStatus();
    if (seq > last_seq_) {
      return absl::InvalidArgumentError(absl::StrCat("ingest journal: cannot release seq ", seq,
                                                     " past the last record ", last_seq_));
    }
  }
  absl::Status written = WriteReleased(seq);
  if (!written.ok()) return written;

  std::vector<std::unique_ptr<Segment>> doomed;
  uint64_t first_kept = 0;
  {
    core::MutexLock lock(&mu_);
    released_seq_ = seq;
    while (!pending_.empty() && pending_.front().first <= seq) {
      pending_bytes_ -= pending_.front().second;
      pending_.pop_front();
    }
    // Never the last segment: Append writes to it. The others are complete.
    size_t n = 0;
    while (n + 1 < segments_.size() && segments_[n]->last_seq <= seq) ++n;
    for (size_t i = 0; i < n; ++i) doomed.push_back(std::move(segments_[i]));
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(n));
    if (!segments_.empty()) first_kept = segments_.front()->first_seq;
  }
  if (cursor_.valid && cursor_.segment_first_seq < first_kept) cursor_.valid = false;
  // A segment left behind by a failed unlink is found again at the next Open, where its
  // records are below the watermark and it goes at the next Release.
  absl::Status status;
  for (const std::unique_ptr<Segment>& segment : doomed) {
    if (unlink(segment->path.c_str()) != 0 && status.ok()) {
      status = ErrnoStatus(errno, "cannot delete released segment", segment->path);
    }
  }
  return status;
}

uint64_t IngestJournal::last_seq() const {
  core::MutexLock lock(&mu_);
  return last_seq_;
}

uint64_t IngestJournal::released_seq() const {
  core::MutexLock lock(&mu_);
  return released_seq_;
}

uint64_t IngestJournal::pending_bytes() const {
  core::MutexLock lock(&mu_);
  return pending_bytes_;
}

uint64_t IngestJournal::pending_records() const {
  core::MutexLock lock(&mu_);
  return pending_.size();
}

size_t IngestJournal::segment_count() const {
  core::MutexLock lock(&mu_);
  return segments_.size();
}

}  // namespace maillens::collector
