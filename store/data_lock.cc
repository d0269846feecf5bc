#include "store/data_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace maillens::store {
namespace {

absl::Status ErrnoError(int err, std::string_view what) {
  std::string message = absl::StrCat(std::string(what), ": ", std::strerror(err));
  return err == EACCES || err == EPERM ? absl::PermissionDeniedError(message)
                                       : absl::UnavailableError(message);
}

// What the holder wrote, trimmed; empty if nothing (yet).
std::string ReadHolder(int fd) {
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  return std::string(absl::StripAsciiWhitespace(absl::string_view(buf, n)));
}

}  // namespace

std::string DataLockPath(const std::string& data_dir) { return data_dir + "/lock"; }

absl::StatusOr<std::unique_ptr<DataLock>> DataLock::Acquire(const std::string& data_dir,
                                                            std::string_view program) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return ErrnoError(ec.value(), absl::StrCat("cannot create data directory ", data_dir));
  }
  const std::string path = DataLockPath(data_dir);
  // Readable by all, so that anyone refused can be told who holds it.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  bool writable = true;
  if (fd < 0 && errno == EACCES) {
    // Another user's file (the collector's, and this is an admin's import): flock works on a
    // descriptor opened for reading, only the name cannot be written.
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    writable = false;
  }
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot open ", path));
  // Root creating it in a directory that is another user's (the collector's): the file goes
  // to that user, so the collector can still open it for writing its name.
  struct stat dir_st {
  }, st{};
  if (writable && geteuid() == 0 && stat(data_dir.c_str(), &dir_st) == 0 && fstat(fd, &st) == 0 &&
      st.st_uid != dir_st.st_uid) {
    (void)!fchown(fd, dir_st.st_uid, dir_st.st_gid);
  }
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) {
      close(fd);
      return ErrnoError(err, absl::StrCat("cannot lock ", path));
    }
    // The holder writes its name just after taking the lock: give it a moment to do so.
    std::string holder = ReadHolder(fd);
    const absl::Time deadline = absl::Now() + absl::Milliseconds(500);
    while (holder.empty() && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      holder = ReadHolder(fd);
    }
    close(fd);
    if (holder.empty()) holder = "another process (it has not written its name)";
    return absl::FailedPreconditionError(absl::StrCat(
        data_dir, " is in use by ", holder,
        ": one writer per data directory (the collector, or one import at a time); read-only "
        "commands (search, trace, report, status) may run beside it"));
  }
  // Ours: replace whatever a dead holder left with our name.
  const std::string holder = absl::StrFormat("%s (pid %d)\n", std::string(program), getpid());
  if (!writable) return std::unique_ptr<DataLock>(new DataLock(fd, path, /*writable=*/false));
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, holder.data(), holder.size(), 0) != static_cast<ssize_t>(holder.size())) {
    const int err = errno;
    close(fd);  // releases the lock
    return ErrnoError(err, absl::StrCat("cannot write ", path));
  }
  return std::unique_ptr<DataLock>(new DataLock(fd, path, /*writable=*/true));
}

DataLock::~DataLock() {
  // Still held while emptied, so nobody reads a half-cleared name as a holder's.
  if (writable_) (void)!ftruncate(fd_, 0);
  close(fd_);
}

}  // namespace maillens::store
