#include "agent/file_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/file_fingerprint.h"
#include "core/status_macros.h"

namespace maillens::agent {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;

absl::StatusOr<size_t> PreadSome(int fd, char* buf, size_t n, uint64_t offset) {
  while (true) {
    ssize_t r = pread(fd, buf, n, static_cast<off_t>(offset));
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    return absl::DataLossError(absl::StrCat("read: ", std::strerror(errno)));
  }
}

}  // namespace

// A gzip decompressor reading its input with pread, so it needs no file position of its own
// and several can share one descriptor. Handles concatenated members; a stream that stops
// short is "not ended yet", not an error, because gzip may still be writing it.
class FileReader::Gzip {
 public:
  explicit Gzip(int fd) : fd_(fd) {
    std::memset(&zs_, 0, sizeof(zs_));
    ok_ = inflateInit2(&zs_, 16 + MAX_WBITS) == Z_OK;  // gzip wrapper only
    in_.resize(kChunkBytes);
  }
  ~Gzip() {
    if (ok_) inflateEnd(&zs_);
  }
  Gzip(const Gzip&) = delete;
  Gzip& operator=(const Gzip&) = delete;

  void Restart() {
    inflateReset(&zs_);
    zs_.avail_in = 0;
    in_pos_ = 0;
    member_ended_ = false;
    ended_ = false;
  }

  // Decompresses up to `n` bytes into `out`; 0 when no more content is available now.
  absl::StatusOr<size_t> Read(char* out, size_t n) {
    if (!ok_) return absl::InternalError("inflateInit2 failed");
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(n);
    while (zs_.avail_out > 0 && !ended_) {
      if (zs_.avail_in == 0) {
        MAILLENS_ASSIGN_OR_RETURN(size_t got, PreadSome(fd_, in_.data(), in_.size(), in_pos_));
        if (got == 0) {
          if (member_ended_) ended_ = true;
          break;
        }
        in_pos_ += got;
        zs_.next_in = reinterpret_cast<Bytef*>(in_.data());
        zs_.avail_in = static_cast<uInt>(got);
      }
      if (member_ended_) {
        // Another member follows, or trailing garbage, which gzip itself ignores.
        if (zs_.next_in[0] != 0x1f) {
          ended_ = true;
          break;
        }
        inflateReset(&zs_);
        member_ended_ = false;
      }
      int ret = inflate(&zs_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
        return absl::DataLossError(
            absl::StrCat("corrupt gzip stream: ", zs_.msg != nullptr ? zs_.msg : "unknown"));
      }
    }
    return n - zs_.avail_out;
  }

  // The stream ended and no input follows it: the content is complete.
  bool ended() const { return ended_; }

 private:
  int fd_;
  z_stream zs_;
  bool ok_ = false;
  std::string in_;
  uint64_t in_pos_ = 0;  // file offset of the next compressed byte to fetch
  bool member_ended_ = false;
  bool ended_ = false;
};

FileReader::FileReader(int fd, size_t max_line_bytes)
    : fd_(fd), max_line_bytes_(max_line_bytes == 0 ? 1 : max_line_bytes) {}

FileReader::~FileReader() {
  gzip_.reset();
  close(fd_);
}

absl::StatusOr<std::unique_ptr<FileReader>> FileReader::Open(const std::string& path,
                                                             size_t max_line_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string message = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::UnavailableError(message);
  }
  std::unique_ptr<FileReader> reader(new FileReader(fd, max_line_bytes));
  unsigned char magic[2] = {0, 0};
  absl::StatusOr<size_t> got = PreadSome(fd, reinterpret_cast<char*>(magic), 2, 0);
  if (!got.ok()) return got.status();
  if (*got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    reader->gzip_ = std::make_unique<Gzip>(fd);
  }
  return reader;
}

void FileReader::Reset(uint64_t offset) {
  chunk_.clear();
  chunk_begin_ = 0;
  pending_.clear();
  pending_dropped_ = 0;
  read_pos_ = offset;
  line_start_ = offset;
}

absl::StatusOr<size_t> FileReader::Fill() {
  chunk_.resize(kChunkBytes);
  chunk_begin_ = 0;
  absl::StatusOr<size_t> got = gzip_ != nullptr
                                   ? gzip_->Read(chunk_.data(), chunk_.size())
                                   : PreadSome(fd_, chunk_.data(), chunk_.size(), read_pos_);
  if (!got.ok()) {
    chunk_.clear();
    return got.status();
  }
  chunk_.resize(*got);
  read_pos_ += *got;
  return *got;
}

absl::Status FileReader::Seek(uint64_t offset) {
  if (gzip_ == nullptr) {
    MAILLENS_ASSIGN_OR_RETURN(FileStat st, StatFd(fd_));
    if (st.size < offset) {
      return absl::OutOfRangeError(
          absl::StrCat("offset ", offset, " is past the end of the file (", st.size, ")"));
    }
    Reset(offset);
    return absl::OkStatus();
  }
  if (offset < read_pos_) {
    gzip_->Restart();
    Reset(0);
  } else {
    Reset(read_pos_);
  }
  std::string scratch(kChunkBytes, '\0');
  while (read_pos_ < offset) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(scratch.size(), offset - read_pos_));
    MAILLENS_ASSIGN_OR_RETURN(size_t got, gzip_->Read(scratch.data(), want));
    if (got == 0) {
      uint64_t have = read_pos_;
      gzip_->Restart();
      Reset(0);
      return absl::OutOfRangeError(
          absl::StrCat("offset ", offset, " is past the end of the content (", have, ")"));
    }
    read_pos_ += got;
  }
  Reset(offset);
  return absl::OkStatus();
}

absl::StatusOr<FileReader::Next> FileReader::Read(bool flush, ReadLine* line) {
  while (true) {
    if (chunk_begin_ < chunk_.size()) {
      size_t nl = chunk_.find('\n', chunk_begin_);
      size_t end = nl == std::string::npos ? chunk_.size() : nl;
      size_t take = end - chunk_begin_;
      size_t room = max_line_bytes_ - pending_.size();
      size_t keep = std::min(take, room);
      pending_.append(chunk_, chunk_begin_, keep);
      pending_dropped_ += take - keep;
      chunk_begin_ = end;
      if (nl == std::string::npos) continue;
      chunk_begin_ = nl + 1;
      line->newline = true;
      break;
    }
    MAILLENS_ASSIGN_OR_RETURN(size_t got, Fill());
    if (got > 0) continue;
    bool ended = gzip_ != nullptr && gzip_->ended();
    if (gzip_ != nullptr && flush && !ended) {
      return absl::DataLossError(
          absl::StrCat("gzip stream ends early, after ", read_pos_, " bytes of content"));
    }
    if ((ended || flush) && (!pending_.empty() || pending_dropped_ > 0)) {
      line->newline = false;
      break;
    }
    return ended ? Next::kEnd : Next::kWait;
  }
  line->raw.swap(pending_);
  pending_.clear();
  line->offset = line_start_;
  line->dropped_bytes = pending_dropped_;
  line->end_offset = line_start_ + line->raw.size() + pending_dropped_ + (line->newline ? 1 : 0);
  line_start_ = line->end_offset;
  pending_dropped_ = 0;
  // A cut line could have grown pending_'s capacity to max_line_bytes; give it back.
  if (pending_.capacity() > 2 * kChunkBytes) std::string().swap(pending_);
  return Next::kLine;
}

absl::StatusOr<uint64_t> FileReader::SkipToEnd() {
  if (gzip_ != nullptr) return absl::FailedPreconditionError("SkipToEnd on a gzip file");
  uint64_t start = line_start_;
  Reset(start);
  uint64_t lines = 0;
  uint64_t after_last_newline = start;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(size_t got, Fill());
    if (got == 0) break;
    uint64_t chunk_offset = read_pos_ - got;
    for (size_t i = chunk_.find('\n'); i != std::string::npos; i = chunk_.find('\n', i + 1)) {
      ++lines;
      after_last_newline = chunk_offset + i + 1;
    }
  }
  Reset(after_last_newline);
  return lines;
}

absl::StatusOr<Head> FileReader::ReadHead() {
  std::string buf(core::kFingerprintBytes, '\0');
  size_t have = 0;
  if (gzip_ == nullptr) {
    while (have < buf.size()) {
      MAILLENS_ASSIGN_OR_RETURN(size_t got,
                                PreadSome(fd_, buf.data() + have, buf.size() - have, have));
      if (got == 0) break;
      have += got;
    }
  } else {
    Gzip head(fd_);
    while (have < buf.size()) {
      MAILLENS_ASSIGN_OR_RETURN(size_t got, head.Read(buf.data() + have, buf.size() - have));
      if (got == 0) break;
      have += got;
    }
  }
  buf.resize(have);
  return HeadOf(buf);
}

}  // namespace maillens::agent
