// The agent's tailer: follows the live maillog files through every kind of rotation and hands
// out their lines, each with its file identity, byte offset and sequence number, so the
// collector can store each line once and tell a gap from a delay.
//
// Start here. The tailer is split by concern:
//   discovery.h      which live files (glob patterns) and where their rotated copies are
//   file_identity.h  {device, inode, fingerprint of the first line}: which file is which
//   file_reader.h    whole lines from a plain or gzip file, from an offset, bounded memory
//   checkpoint.h     acknowledged positions, saved atomically in a versioned format
//   tailer.h         this: ties them together
//
// Delivery contract (DESIGN.md, "Delivery guarantee"). Poll() hands out lines; the caller
// ships them and, once the collector has durably committed them, calls Ack(). Only Ack moves
// the checkpoint. After a lost connection, Rewind() hands out again everything after the
// acknowledged positions; after a crash, a new Tailer over the same state_dir does the same.
// The collector ignores lines it already holds, so resending is always safe: at-least-once
// out of the tailer, exactly-once in the store.
//
// Rotation. Handled without losing a line:
//   - rename + create (logrotate default): the old file stays open and is read to its end
//     (waiting rotate_wait for late writes) before it is let go;
//   - copytruncate: the live file shrinks or its first line changes; what had not been read
//     yet is read from the copy beside it (found by fingerprint, plain or .gz);
//   - `postfix logrotate` (rename to NAME.YYYYMMDD-HHMMSS, gzip, delete): as rename + create;
//     after a restart the old content is found in the .gz by fingerprint and finished from the
//     checkpointed offset (offsets are in uncompressed bytes, the same as the original's);
//   - deletion and re-creation: the deleted file stays open and is read to its end;
//   - rotations while the agent was down, or several between two polls: unknown rotated
//     copies modified since the tailer last looked are read from their start.
// What cannot be recovered (a file truncated with no copy left, content deleted while the agent
// was down before it was read) is reported as a Gap, never skipped silently.
//
// Identity is {device, inode, fingerprint}: a new inode, or new content at the same inode
// (inode reuse after delete, copytruncate), is a new file; sequence numbers restart at 0.
// Lines read from a copy (renamed, copytruncate'd, gzipped) keep the identity of the content
// as first seen. A line's sequence number is its line number in that content.
//
// Truncation: the live file is shorter than what was read from it, or its first line changed.
//   - A copy with the same first line beside it (copytruncate): the old content is finished
//     from the copy, from where reading had got to; the live file is new content from 0.
//   - No copy: Gap{kTruncated, from the read position, end unknown}. Lines handed out but not
//     yet acknowledged become a gap too should Rewind() ask for them again.
//   - Shorter but the same first line (truncate -s, or rewritten with an identical first
//     line): the same identity is read again from offset 0, sequence 0, after a gap. The
//     collector keys lines by (fingerprint, offset) and keeps what it held at those offsets:
//     a limit of content-based identity, not of this tailer.
//
// Starting: with no checkpoint, live files start at their beginning or, with start_at_end,
// after their last complete line (the starting point is saved at once); rotated copies present
// then are history and not read. Live files appearing later are read from their beginning. A
// damaged checkpoint is reported, set aside, and every live file is read from its beginning
// (the collector drops what it already holds).
//
// Ordering: lines of one file come in offset order; older files of a live path are read
// before newer ones in each Poll (a rotated file that is still being written late does not
// hold back the new one).
//
// Limits: a file whose first line is byte for byte that of another (same device, inode and
// first line) cannot be told apart from it; the collector could not either. Compressions other
// than gzip are not read. A rotated file that gets a late write after rotate_wait has passed
// loses that write.
//
// Thread-safety: all methods may be called from any thread; they serialise on one mutex.
// Ack() blocks for the checkpoint's fsync.
#ifndef MAILLENS_AGENT_TAILER_H_
#define MAILLENS_AGENT_TAILER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/checkpoint.h"
#include "agent/file_identity.h"

namespace maillens::agent {

struct TailerOptions {
  // Glob patterns of the live files ("/var/log/mail.log", "/var/log/maillog"). A pattern
  // without wildcards names a live path even while it does not exist.
  std::vector<std::string> paths;
  // Where the checkpoint lives; created if missing, and locked while the tailer is open.
  std::string state_dir;
  // For live files seen for the first time when the tailer opens: start after their last
  // complete line instead of at their beginning. Files appearing later, and every file after
  // a rotation, are read from their beginning.
  bool start_at_end = false;
  // Longer lines are cut: the first max_line_bytes bytes are handed out (dropped_bytes says
  // how many followed), and reading goes on after the line's '\n'.
  size_t max_line_bytes = 1 << 20;
  // How long a rotated-away plain file is still watched for late writes before its last line
  // without '\n' (if any) is handed out as is and the file is let go.
  absl::Duration rotate_wait = absl::Seconds(5);
  // How many finished files per live path the checkpoint remembers, so their copies beside the
  // live file are recognised and not read again.
  size_t max_done_per_path = 16;
  // fsync checkpoints (file and directory). Off only in tests.
  bool sync_checkpoints = true;
  // Environment. clock stamps lines and times rotate_wait (default absl::Now); on_problem hears
  // of what goes wrong without stopping the tailer (default: counted in stats only).
  std::function<absl::Time()> clock;
  std::function<void(const absl::Status&)> on_problem;
};

// One line handed out.
struct TailedLine {
  FileKey file;
  std::string path;            // where it was read (the live path, a rotated name, a .gz)
  uint64_t offset = 0;         // of its first byte, in the file's uncompressed content
  uint64_t end_offset = 0;     // just past it: what Ack takes
  uint64_t sequence = 0;       // line number within the file identity, from 0
  std::string raw;             // without '\n'; any bytes
  uint64_t dropped_bytes = 0;  // > 0: the line was longer than max_line_bytes and was cut
  bool newline = true;         // false: a rotated file's last line, which never got its '\n'
  absl::Time read_time;        // when the tailer read it (options.clock)
};

enum class GapReason {
  kTruncated,   // the file was cut (copytruncate, truncate) and no copy of the lost part exists
  kMissing,     // after a restart, a checkpointed file was found nowhere (rotated and deleted)
  kUnreadable,  // read error or corrupt/cut gzip stream
};
std::string_view GapReasonName(GapReason reason);

// A span of a file the tailer could not read and never will. Ship it (proto FileGap) so the
// collector can say so where it matters; GapReasonName gives the proto's reason string.
struct Gap {
  FileKey file;
  std::string path;
  uint64_t from_offset = 0;
  // End of the lost span when known. nullopt: from from_offset to wherever the file ended,
  // which the tailer never saw (it may have been nothing).
  std::optional<uint64_t> to_offset;
  uint64_t from_sequence = 0;  // sequence number the first lost line would have had
  GapReason reason = GapReason::kTruncated;
  std::string detail;
  absl::Time time;
};

// How far the tailer has got with one file it tracks (for the collector's lag figures).
struct FileProgress {
  FileKey file;
  std::string path;
  // Bytes the file holds as far as the tailer knows: the live file's size when last checked,
  // at least what was handed out (a gzip copy counts its uncompressed bytes read so far).
  uint64_t size = 0;
  uint64_t read_offset = 0;   // end of the furthest line handed out
  uint64_t acked_offset = 0;  // the checkpoint
};

struct TailerStats {
  uint64_t lines = 0;  // handed out, counting lines handed out again
  uint64_t bytes = 0;
  uint64_t cut_lines = 0;      // longer than max_line_bytes
  uint64_t dropped_bytes = 0;  // the parts cut off them
  uint64_t rotations = 0;      // live paths that moved to a new file
  uint64_t truncations = 0;    // live files cut or rewritten in place
  uint64_t adopted = 0;        // unknown rotated copies read because they were new
  uint64_t gaps = 0;
  uint64_t checkpoint_saves = 0;
  uint64_t checkpoint_errors = 0;
  uint64_t corrupt_checkpoints = 0;
  uint64_t problems = 0;
  uint64_t open_files = 0;  // files currently held open
};

class Tailer {
 public:
  // Loads the checkpoint and finds every checkpointed file again (see the class comment). A
  // damaged checkpoint is reported through on_problem, set aside, and every live file is then
  // read from its beginning: duplicates are harmless, losses would not be.
  static absl::StatusOr<std::unique_ptr<Tailer>> Open(TailerOptions options);
  ~Tailer();
  Tailer(const Tailer&) = delete;
  Tailer& operator=(const Tailer&) = delete;

  // Looks for new data, rotations and new files, and returns what is available now: at most
  // max_lines lines and max_bytes bytes of raw text (but always at least one line when one is
  // available, however long). Never blocks on the files; an empty result means "nothing new".
  // A line without its '\n' is never handed out while its file may still grow.
  absl::StatusOr<std::vector<TailedLine>> Poll(size_t max_lines, size_t max_bytes);

  // The collector durably holds every line of `file` before `end_offset` (a TailedLine's
  // end_offset); `next_sequence` is the sequence number of the line starting there. Saves the
  // checkpoint before returning. Acks for one file may come in any order: an older one is
  // ignored. An ack past what was handed out is InvalidArgument; for a file the tailer no
  // longer tracks, NotFound.
  absl::Status Ack(const FileKey& file, uint64_t end_offset, uint64_t next_sequence);
  // Ack() for the last line of each file among `lines` (a committed batch), saving once.
  absl::Status AckLines(const std::vector<TailedLine>& lines);

  // Forgets everything handed out but not acknowledged; the next Polls hand it out again.
  // Call after the connection to the collector was lost with batches in flight.
  void Rewind();

  // Gaps found since the last call, oldest first.
  std::vector<Gap> TakeGaps();

  TailerStats stats() const;
  // What the checkpoint holds now (acknowledged positions), for status pages and tests.
  Checkpoint CheckpointState() const;
  // Every identified file tracked now, oldest content of each live path first.
  std::vector<FileProgress> Progress() const;

 private:
  struct Tracked;
  struct Live;
  struct Budget;

  Tailer(TailerOptions options, std::unique_ptr<CheckpointStore> store);

  // All below run with mu_ held.
  absl::Status Start();
  Live* AddLive(const std::string& path);
  void FirstSight(Live* live, bool start_at_end);
  void Restore(Live* live, const CheckpointPath& saved);
  void Discover();
  void CheckLive(Live* live);
  // Checks that `cur` (held open, `st` its stat) still holds the content it had. Returns
  // true when the content was replaced and `cur` was moved to a copy of it (or given up).
  bool CheckContent(Live* live, Tracked* cur, const FileStat& st);
  void Relocate(Live* live, Tracked* cur);
  void MarkRotated(Live* live, Tracked* file);
  // Adopts siblings modified at or after `floor` whose content the tailer does not know.
  void ScanFamily(Live* live, int64_t floor);
  bool AdoptCurrent(Live* live, bool from_end);
  // Computes the fingerprint once the first line is complete (or, with `final`, whatever the
  // file holds). False while unknown, or when the file turned out to be a duplicate.
  bool Identify(Live* live, Tracked* file, bool final);
  void ReadFile(Live* live, Tracked* file, Budget* budget, std::vector<TailedLine>* out);
  void Retire();
  absl::Status ApplyAck(const FileKey& file, uint64_t end_offset, uint64_t next_sequence);
  absl::Status Save();
  Checkpoint BuildCheckpoint() const;
  int64_t Floor(const Live& live) const;
  bool KnownFingerprint(const Live& live, uint64_t fingerprint) const;
  void AddGap(const Tracked& file, uint64_t from, std::optional<uint64_t> to, uint64_t sequence,
              GapReason reason, std::string detail);
  void Problem(const absl::Status& status);

  const TailerOptions options_;
  std::unique_ptr<CheckpointStore> store_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Live>> lives_;  // sorted by path
  std::vector<std::string> all_live_;         // their paths, for sibling ownership
  std::vector<Gap> gaps_;
  TailerStats stats_;
  absl::Time now_;        // the clock, read once per public call
  size_t next_live_ = 0;  // round-robin start, so one busy file does not starve the others
  bool dirty_ = false;    // the checkpoint on disk is behind what BuildCheckpoint() returns
};

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_TAILER_H_
