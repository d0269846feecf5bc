// Test helpers: a scratch directory and the file operations log writers and rotation tools
// perform (append, rename, copy, truncate, gzip, delete). Header-only; tests only.
#ifndef MAILLENS_AGENT_TEST_FILES_H_
#define MAILLENS_AGENT_TEST_FILES_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "gtest/gtest.h"

namespace maillens::agent::testing {

// A fresh directory under TEST_TMPDIR (or /tmp), removed when the object goes.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    const char* base = std::getenv("TEST_TMPDIR");
    path_ = std::string(base != nullptr ? base : "/tmp") + "/maillens_agent_" + name + "_" +
            std::to_string(getpid());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Appends like a log writer: O_APPEND, one write.
inline void Append(const std::string& path, std::string_view data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);
}

inline std::string ReadWhole(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

inline void WriteWhole(const std::string& path, std::string_view data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  std::fclose(f);
}

inline void Rename(const std::string& from, const std::string& to) {
  ASSERT_EQ(std::rename(from.c_str(), to.c_str()), 0) << from << " -> " << to;
}

inline void Remove(const std::string& path) { ASSERT_EQ(unlink(path.c_str()), 0) << path; }

// Truncates in place, keeping the inode (what copytruncate does to the live file).
inline void Truncate(const std::string& path, off_t size = 0) {
  ASSERT_EQ(truncate(path.c_str(), size), 0) << path;
}

// logrotate copytruncate: copy to `copy` (a new inode), then cut the original to 0.
inline void CopyTruncate(const std::string& path, const std::string& copy) {
  WriteWhole(copy, ReadWhole(path));
  Truncate(path);
}

// gzip PATH: writes PATH.gz and deletes PATH, like gzip(1).
inline void Gzip(const std::string& path) {
  std::string data = ReadWhole(path);
  std::string gz_path = path + ".gz";
  gzFile gz = gzopen(gz_path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  if (!data.empty()) {
    ASSERT_EQ(gzwrite(gz, data.data(), static_cast<unsigned>(data.size())),
              static_cast<int>(data.size()));
  }
  ASSERT_EQ(gzclose(gz), Z_OK);
  Remove(path);
}

}  // namespace maillens::agent::testing

#endif  // MAILLENS_AGENT_TEST_FILES_H_
