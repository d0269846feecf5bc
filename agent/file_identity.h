// File identity for the tailer: which file a line came from, across renames, compression,
// truncation, deletion and inode reuse.
//
// A file is identified by {device, inode, fingerprint of its first line}. Device and inode
// follow a file across renames while the tailer holds it; the fingerprint (the same function
// the collector keys stored lines by, core::FileFingerprint) follows its content into copies
// and .gz files and tells a reused inode or an in-place rewrite from the file that was there.
//
// Pure helpers plus a few stat(2) wrappers; thread-safe (no shared state).
#ifndef MAILLENS_AGENT_FILE_IDENTITY_H_
#define MAILLENS_AGENT_FILE_IDENTITY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace maillens::agent {

// The identity of one file's content. Its path is deliberately not part of it: a rename does
// not make a new file, and a new file at the same path is not the old one.
struct FileKey {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t fingerprint = 0;  // core::FileFingerprint of the first line

  friend bool operator==(const FileKey& a, const FileKey& b) {
    return a.device == b.device && a.inode == b.inode && a.fingerprint == b.fingerprint;
  }
  friend bool operator!=(const FileKey& a, const FileKey& b) { return !(a == b); }
  friend bool operator<(const FileKey& a, const FileKey& b) {
    if (a.device != b.device) return a.device < b.device;
    if (a.inode != b.inode) return a.inode < b.inode;
    return a.fingerprint < b.fingerprint;
  }
};

// "dev:inode:fingerprint-hex", for messages.
std::string ToString(const FileKey& key);

// What stat(2) says about a file.
struct FileStat {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t links = 0;  // 0: deleted while still open
  bool regular = false;

  bool SameFile(const FileStat& other) const {
    return device == other.device && inode == other.inode;
  }
};

// nullopt when the path does not exist (or cannot be stat'ed).
std::optional<FileStat> StatPath(const std::string& path);
absl::StatusOr<FileStat> StatFd(int fd);

// The leading bytes of a file, as far as the fingerprint reads them.
struct Head {
  std::string bytes;      // the first line without '\n', at most core::kFingerprintBytes
  bool complete = false;  // '\n' seen or kFingerprintBytes present: growth cannot change it

  uint64_t Fingerprint() const;
};

// The head of a file whose first bytes are `data` (any prefix of the file).
Head HeadOf(std::string_view data);

// How a head read now compares with the head remembered for the same inode.
enum class HeadMatch {
  kSame,       // equal, and both complete
  kPrefix,     // `now` is incomplete and a prefix of `before`: cannot tell yet
  kDifferent,  // the content at the start of the file changed
};
HeadMatch CompareHeads(const Head& before, const Head& now);

// Rotated-sibling naming. A sibling of live file DIR/NAME is DIR/NAME<sep><suffix> with <sep>
// '.' or '-' and a non-empty suffix (mail.log.1, mail.log.2.gz, maillog-20240101,
// maillog.20240101-101010.gz). Returns the suffix, or nullopt when `candidate` is no sibling.
std::optional<std::string_view> SiblingSuffix(std::string_view live_basename,
                                              std::string_view candidate_basename);

// True when a suffix looks like one a rotation scheme made (a number, a date, a compression
// extension), so a glob that matched both mail.log and mail.log.1 keeps only mail.log live.
bool LooksRotated(std::string_view suffix);

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_FILE_IDENTITY_H_
