// Reads whole lines from one open file, plain or gzip (by magic bytes), from a byte offset.
//
// The file may be growing (the live maillog) or final (rotated away, compressed). Offsets are
// always in the uncompressed content, so a line has the same offset in mail.log, in its
// renamed copy and in the .gz made from it.
//
// Bounded memory: one read chunk plus at most max_line_bytes for the line being assembled. A
// longer line is cut: its first max_line_bytes bytes are returned, the rest is skipped and
// counted, and the line still ends where its '\n' is.
//
// The reader reads through its own file descriptor with pread, so renames and deletion of
// the path do not disturb it. Thread-compatible.
#ifndef MAILLENS_AGENT_FILE_READER_H_
#define MAILLENS_AGENT_FILE_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/file_identity.h"

namespace maillens::agent {

// One line as read from the file.
struct ReadLine {
  std::string raw;             // without '\n'; at most max_line_bytes
  uint64_t offset = 0;         // of the line's first byte
  uint64_t end_offset = 0;     // just past its '\n' (or past its last byte when it has none)
  uint64_t dropped_bytes = 0;  // bytes cut off because the line exceeded max_line_bytes
  bool newline = true;         // false: a final line the file ended without '\n'
};

class FileReader {
 public:
  // Where a read stopped.
  enum class Next {
    kLine,  // *line holds the next line
    kWait,  // no complete line yet; the file may grow
    kEnd,   // a compressed file whose stream ended: nothing more will ever come
  };

  // Opens `path` read-only; gzip is recognised by its magic bytes.
  static absl::StatusOr<std::unique_ptr<FileReader>> Open(const std::string& path,
                                                          size_t max_line_bytes);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Positions the reader at `offset` (the start of a line). For gzip this decompresses from
  // the start when going backwards. OutOfRange when the file holds fewer bytes than `offset`.
  absl::Status Seek(uint64_t offset);

  // Reads the next line. With `flush` (the caller knows the plain file will not grow), a last
  // line without '\n' is returned as is instead of kWait. A compressed file's last line is
  // always returned once its stream has ended. DataLoss on a corrupt or (with `flush`)
  // truncated gzip stream; the position then stays at the last good line.
  absl::StatusOr<Next> Read(bool flush, ReadLine* line);

  // Moves to the end of the content (plain files only): past the last '\n', so a line being
  // written is not cut. Returns the number of lines skipped, so sequence numbers stay line
  // numbers.
  absl::StatusOr<uint64_t> SkipToEnd();

  // The file's first line as far as the fingerprint needs it, read without moving.
  absl::StatusOr<Head> ReadHead();

  // Offset of the next line Read() returns.
  uint64_t position() const { return line_start_; }
  // Content offset up to which bytes were fetched from the file: a plain file now shorter
  // than this was truncated under the reader.
  uint64_t fetched() const { return read_pos_; }
  bool compressed() const { return gzip_ != nullptr; }
  // fstat of the open descriptor.
  absl::StatusOr<FileStat> Stat() const { return StatFd(fd_); }

 private:
  class Gzip;
  FileReader(int fd, size_t max_line_bytes);
  // Replaces the (fully consumed) chunk_ with the next bytes of content at read_pos_. Returns
  // their count; 0 at the current end of the content.
  absl::StatusOr<size_t> Fill();
  void Reset(uint64_t offset);

  int fd_;
  size_t max_line_bytes_;
  std::unique_ptr<Gzip> gzip_;  // null for plain files
  std::string chunk_;           // content bytes [read_pos_ - chunk_.size(), read_pos_)
  size_t chunk_begin_ = 0;      // first unconsumed byte in chunk_
  uint64_t read_pos_ = 0;       // content offset of the next byte to fetch from the file
  std::string pending_;         // the line being assembled (its first max_line_bytes bytes)
  uint64_t pending_dropped_ = 0;
  uint64_t line_start_ = 0;  // offset of the line being assembled
};

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_FILE_READER_H_
