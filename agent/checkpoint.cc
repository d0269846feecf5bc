#include "agent/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace maillens::agent {
namespace {

constexpr char kMagic[] = "maillens-tailer-checkpoint";

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(absl::StrCat("damaged checkpoint: ", core::ToAbsl(what)));
}

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::UnavailableError(
      absl::StrCat(core::ToAbsl(what), " ", path, ": ", std::strerror(errno)));
}

bool ParseU64(absl::string_view s, uint64_t* out) { return absl::SimpleAtoi(s, out); }

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SerializeCheckpoint(const Checkpoint& checkpoint) {
  std::string out = absl::StrCat(kMagic, " ", kCheckpointVersion, "\n");
  for (const CheckpointPath& live : checkpoint.paths) {
    absl::StrAppend(&out, "live ", live.floor_ns, " ", absl::CEscape(live.live_path), "\n");
    for (const CheckpointFile& f : live.files) {
      absl::StrAppend(&out, "file ", f.done ? "done" : "active", " ", f.key.device, " ",
                      f.key.inode, " ", absl::Hex(f.key.fingerprint, absl::kZeroPad16), " ",
                      f.offset, " ", f.sequence, " ", f.mtime_ns, " ", absl::CEscape(f.path), "\n");
    }
  }
  absl::StrAppend(&out, "end ", absl::Hex(Fnv1a(out), absl::kZeroPad16), "\n");
  return out;
}

absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view text) {
  size_t end_pos = text.rfind("\nend ");
  if (end_pos == std::string_view::npos) return Corrupt("no end record (truncated?)");
  std::string_view body = text.substr(0, end_pos + 1);
  std::string_view trailer = text.substr(end_pos + 1);
  if (trailer.empty() || trailer.back() != '\n') return Corrupt("end record cut short");
  trailer.remove_suffix(1);
  uint64_t sum = 0;
  if (!absl::SimpleHexAtoi(core::ToAbsl(trailer.substr(4)), &sum) || sum != Fnv1a(body)) {
    return Corrupt("checksum mismatch");
  }
  Checkpoint checkpoint;
  bool header = false;
  for (absl::string_view line : absl::StrSplit(core::ToAbsl(body), '\n', absl::SkipEmpty())) {
    if (!header) {
      if (line != absl::StrCat(kMagic, " ", kCheckpointVersion)) {
        return Corrupt(absl::StrCat("unknown header \"", absl::CHexEscape(line), "\""));
      }
      header = true;
      continue;
    }
    if (absl::StartsWith(line, "live ")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 2));
      CheckpointPath live;
      std::string path;
      if (f.size() != 3 || !absl::SimpleAtoi(f[1], &live.floor_ns) ||
          !absl::CUnescape(f[2], &path) || path.empty()) {
        return Corrupt("bad live record");
      }
      live.live_path = std::move(path);
      checkpoint.paths.push_back(std::move(live));
    } else if (absl::StartsWith(line, "file ")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(' ', 8));
      CheckpointFile file;
      if (checkpoint.paths.empty() || f.size() != 9 || (f[1] != "active" && f[1] != "done") ||
          !ParseU64(f[2], &file.key.device) || !ParseU64(f[3], &file.key.inode) ||
          !absl::SimpleHexAtoi(f[4], &file.key.fingerprint) || !ParseU64(f[5], &file.offset) ||
          !ParseU64(f[6], &file.sequence) || !absl::SimpleAtoi(f[7], &file.mtime_ns) ||
          !absl::CUnescape(f[8], &file.path)) {
        return Corrupt("bad file record");
      }
      file.done = f[1] == "done";
      checkpoint.paths.back().files.push_back(std::move(file));
    } else {
      return Corrupt("unknown record");
    }
  }
  if (!header) return Corrupt("no header");
  return checkpoint;
}

absl::StatusOr<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& dir,
                                                                       bool sync) {
  if (dir.empty()) return absl::InvalidArgumentError("no state directory");
  // Create the directory and its parents (0700: paths of the logs are nobody else's business).
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string part = dir.substr(0, slash);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", part);
    if (slash == std::string::npos) break;
  }
  std::string lock_path = dir + "/tailer.lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open", lock_path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", dir, " is in use by another tailer"));
  }
  return std::unique_ptr<CheckpointStore>(new CheckpointStore(dir, fd, sync));
}

CheckpointStore::~CheckpointStore() { close(lock_fd_); }  // releases the flock

std::string CheckpointStore::path() const { return dir_ + "/" + kFileName; }
std::string CheckpointStore::temp_path() const { return path() + ".tmp"; }

absl::StatusOr<std::optional<Checkpoint>> CheckpointStore::Load() {
  std::string file = path();
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<Checkpoint>();
    return Errno("cannot open", file);
  }
  std::string text;
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return Errno("cannot read", file);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(text);
  if (!parsed.ok()) {
    // Keep it for a person to look at, and out of the way of the next Load.
    std::string aside = file + ".corrupt";
    std::rename(file.c_str(), aside.c_str());
    return absl::DataLossError(
        absl::StrCat(file, ": ", parsed.status().message(), " (moved to ", aside, ")"));
  }
  return std::optional<Checkpoint>(std::move(*parsed));
}

absl::Status CheckpointStore::WriteTemp(const Checkpoint& checkpoint) {
  std::string temp = temp_path();
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", temp);
  absl::Status written = WriteAll(fd, SerializeCheckpoint(checkpoint), temp);
  if (written.ok() && sync_ && fsync(fd) != 0) written = Errno("cannot fsync", temp);
  if (close(fd) != 0 && written.ok()) written = Errno("cannot close", temp);
  return written;
}

absl::Status CheckpointStore::CommitTemp() {
  std::string temp = temp_path();
  std::string file = path();
  if (std::rename(temp.c_str(), file.c_str()) != 0) return Errno("cannot rename", temp);
  if (!sync_) return absl::OkStatus();
  // The rename is durable only once the directory entry is.
  int dir_fd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Errno("cannot open", dir_);
  absl::Status synced = fsync(dir_fd) == 0 ? absl::OkStatus() : Errno("cannot fsync", dir_);
  close(dir_fd);
  return synced;
}

absl::Status CheckpointStore::Save(const Checkpoint& checkpoint) {
  MAILLENS_RETURN_IF_ERROR(WriteTemp(checkpoint));
  return CommitTemp();
}

}  // namespace maillens::agent
