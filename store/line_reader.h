// Reads a file (plain or gzip, by magic bytes) or standard input as lines of bytes, with the
// byte offset of each line. Lines may hold any bytes (NUL, invalid UTF-8) and be of any length.
// Thread-compatible.
#ifndef MAILLENS_STORE_LINE_READER_H_
#define MAILLENS_STORE_LINE_READER_H_

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace maillens::store {

class LineReader {
 public:
  // "-" reads standard input.
  static absl::StatusOr<std::unique_ptr<LineReader>> Open(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Sets `*line` to the next line without its '\n' (valid until the next call) and `*offset`
  // to the byte offset of its first byte in the (decompressed) stream. Returns false at end of
  // input; a last line without '\n' is still returned. A read error ends input and is kept in
  // status().
  bool Next(std::string_view* line, uint64_t* offset);

  const absl::Status& status() const { return status_; }
  uint64_t bytes_read() const { return consumed_; }

 private:
  explicit LineReader(gzFile file) : file_(file) {}
  bool Fill();

  gzFile file_;
  std::string buffer_;
  size_t begin_ = 0;       // start of unconsumed bytes in buffer_
  uint64_t consumed_ = 0;  // stream offset of buffer_[begin_]
  bool eof_ = false;
  absl::Status status_;
};

}  // namespace maillens::store

#endif  // MAILLENS_STORE_LINE_READER_H_
