#include "agent/file_identity.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_fingerprint.h"
#include "core/strings.h"

namespace maillens::agent {

std::string ToString(const FileKey& key) {
  return absl::StrCat(key.device, ":", key.inode, ":", absl::Hex(key.fingerprint));
}

namespace {
FileStat FromStat(const struct stat& st) {
  FileStat out;
  out.device = static_cast<uint64_t>(st.st_dev);
  out.inode = static_cast<uint64_t>(st.st_ino);
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out.links = static_cast<uint64_t>(st.st_nlink);
  out.regular = S_ISREG(st.st_mode);
  return out;
}
}  // namespace

std::optional<FileStat> StatPath(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return FromStat(st);
}

absl::StatusOr<FileStat> StatFd(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return absl::InternalError(absl::StrCat("fstat: ", std::strerror(errno)));
  }
  return FromStat(st);
}

uint64_t Head::Fingerprint() const { return core::FileFingerprint(bytes); }

Head HeadOf(std::string_view data) {
  Head head;
  size_t nl = data.find('\n');
  if (nl != std::string_view::npos && nl <= core::kFingerprintBytes) {
    head.bytes.assign(data.substr(0, nl));
    head.complete = true;
  } else if (data.size() >= core::kFingerprintBytes) {
    head.bytes.assign(data.substr(0, core::kFingerprintBytes));
    head.complete = true;
  } else {
    head.bytes.assign(data);
  }
  return head;
}

HeadMatch CompareHeads(const Head& before, const Head& now) {
  auto starts_with = [](std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
  };
  // A longer or completed head that extends an incomplete one is the same first line, grown.
  if (!before.complete && starts_with(now.bytes, before.bytes)) return HeadMatch::kSame;
  if (now.complete) {
    return before.complete && before.bytes == now.bytes ? HeadMatch::kSame : HeadMatch::kDifferent;
  }
  // Fewer bytes than before at the start of the file: it was cut, and what it holds now could
  // still become the same first line or another one.
  if (starts_with(before.bytes, now.bytes)) return HeadMatch::kPrefix;
  return HeadMatch::kDifferent;
}

std::optional<std::string_view> SiblingSuffix(std::string_view live_basename,
                                              std::string_view candidate_basename) {
  if (candidate_basename.size() < live_basename.size() + 2) return std::nullopt;
  if (candidate_basename.substr(0, live_basename.size()) != live_basename) return std::nullopt;
  char sep = candidate_basename[live_basename.size()];
  if (sep != '.' && sep != '-') return std::nullopt;
  return candidate_basename.substr(live_basename.size() + 1);
}

bool LooksRotated(std::string_view suffix) {
  if (suffix.empty()) return false;
  if (suffix[0] >= '0' && suffix[0] <= '9') return true;
  for (const char* ext : {"gz", "bz2", "xz", "zst", "old"}) {
    if (absl::EndsWith(core::ToAbsl(suffix), ext)) return true;
  }
  return false;
}

}  // namespace maillens::agent
