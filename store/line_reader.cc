#include "store/line_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace maillens::store {
namespace {
constexpr size_t kChunk = 1 << 20;
}  // namespace

absl::StatusOr<std::unique_ptr<LineReader>> LineReader::Open(const std::string& path) {
  int fd = path == "-" ? dup(STDIN_FILENO) : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  // gzdopen reads plain files transparently, so one reader serves both.
  gzFile file = gzdopen(fd, "rb");
  if (file == nullptr) {
    close(fd);
    return absl::InternalError(absl::StrCat("cannot read ", path));
  }
  gzbuffer(file, 256 * 1024);
  return std::unique_ptr<LineReader>(new LineReader(file));
}

LineReader::~LineReader() { gzclose(file_); }

bool LineReader::Fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    buffer_.erase(0, begin_);
    begin_ = 0;
  }
  size_t old = buffer_.size();
  buffer_.resize(old + kChunk);
  int n = gzread(file_, buffer_.data() + old, kChunk);
  if (n < 0) {
    int err = 0;
    const char* msg = gzerror(file_, &err);
    status_ = absl::DataLossError(absl::StrCat("read error: ", msg ? msg : "unknown"));
    n = 0;
  }
  buffer_.resize(old + static_cast<size_t>(n));
  if (n == 0) eof_ = true;
  return n > 0;
}

bool LineReader::Next(std::string_view* line, uint64_t* offset) {
  size_t search_from = begin_;
  while (true) {
    size_t nl = buffer_.find('\n', search_from);
    if (nl != std::string::npos) {
      *line = std::string_view(buffer_).substr(begin_, nl - begin_);
      *offset = consumed_;
      consumed_ += nl + 1 - begin_;
      begin_ = nl + 1;
      return true;
    }
    size_t scanned = buffer_.size() - begin_;
    if (!Fill()) break;
    search_from = begin_ + scanned;
  }
  if (begin_ < buffer_.size()) {
    *line = std::string_view(buffer_).substr(begin_);
    *offset = consumed_;
    consumed_ += buffer_.size() - begin_;
    begin_ = buffer_.size();
    return true;
  }
  return false;
}

}  // namespace maillens::store
