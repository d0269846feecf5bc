// Checkpoints: how far the collector has durably acknowledged each file the tailer reads.
//
// One file per state directory, replaced atomically on every save: written to a temporary
// file, fsync'ed, renamed over the old one, and the directory fsync'ed, so a crash at any
// point leaves either the old or the new checkpoint, never a mix. The text format is
// versioned and ends with a checksum; a checkpoint that fails to parse is reported by Load(),
// moved aside (NAME.corrupt) and ignored by the caller (see Tailer for what it does then).
//
// Format, version 1 (one record per line, the path last so it may hold spaces; paths are
// C-escaped):
//   maillens-tailer-checkpoint 1
//   live <floor_ns> <live path>
//   file <active|done> <device> <inode> <fingerprint hex> <offset> <sequence> <mtime_ns> <path>
//   end <FNV-1a 64 hex of every byte before this line>
// `file` records belong to the `live` record before them, oldest content first.
//
// The store holds an exclusive lock (flock) on the state directory while open, so two agents
// never share one. Thread-compatible.
#ifndef MAILLENS_AGENT_CHECKPOINT_H_
#define MAILLENS_AGENT_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/file_identity.h"

namespace maillens::agent {

inline constexpr int kCheckpointVersion = 1;

struct CheckpointFile {
  FileKey key;
  std::string path;       // where the content was last seen (information, and a first guess)
  uint64_t offset = 0;    // every line before it is acknowledged
  uint64_t sequence = 0;  // sequence number of the line starting at `offset`
  int64_t mtime_ns = 0;   // modification time when last looked at
  bool done = false;      // read to its final end and acknowledged; kept to recognise it

  friend bool operator==(const CheckpointFile& a, const CheckpointFile& b) {
    return a.key == b.key && a.path == b.path && a.offset == b.offset && a.sequence == b.sequence &&
           a.mtime_ns == b.mtime_ns && a.done == b.done;
  }
};

struct CheckpointPath {
  std::string live_path;
  // Files beside the live one modified before this are history the tailer accounted for;
  // newer unknown ones appeared while it was not looking (see Tailer).
  int64_t floor_ns = 0;
  std::vector<CheckpointFile> files;  // oldest content first

  friend bool operator==(const CheckpointPath& a, const CheckpointPath& b) {
    return a.live_path == b.live_path && a.floor_ns == b.floor_ns && a.files == b.files;
  }
};

struct Checkpoint {
  std::vector<CheckpointPath> paths;

  friend bool operator==(const Checkpoint& a, const Checkpoint& b) { return a.paths == b.paths; }
};

std::string SerializeCheckpoint(const Checkpoint& checkpoint);
// DataLoss when the text is damaged, truncated or of another version.
absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view text);

class CheckpointStore {
 public:
  static constexpr const char* kFileName = "tailer.checkpoint";

  // Creates `dir` if needed and locks it. With `sync` false, saves skip fsync (tests only:
  // atomic against a process crash, not against a power cut).
  static absl::StatusOr<std::unique_ptr<CheckpointStore>> Open(const std::string& dir, bool sync);
  ~CheckpointStore();
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  // nullopt when no checkpoint was ever saved. DataLoss when one exists but cannot be read;
  // it has then been renamed to kFileName + ".corrupt" for inspection.
  absl::StatusOr<std::optional<Checkpoint>> Load();

  // Replaces the checkpoint atomically: WriteTemp() then CommitTemp().
  absl::Status Save(const Checkpoint& checkpoint);
  // The two halves of Save, public so a test can stop between them as a crash would.
  absl::Status WriteTemp(const Checkpoint& checkpoint);
  absl::Status CommitTemp();

  std::string path() const;

 private:
  CheckpointStore(std::string dir, int lock_fd, bool sync)
      : dir_(std::move(dir)), lock_fd_(lock_fd), sync_(sync) {}
  std::string temp_path() const;

  std::string dir_;
  int lock_fd_;
  bool sync_;
};

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_CHECKPOINT_H_
