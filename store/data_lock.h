// One writer per data directory: an exclusive flock(2) on DATA_DIR/lock, held by the
// collector for its whole life and by `maillens import` while it writes.
//
// Why: the store assumes it is the only writer. Two of them (two imports, or an import beside
// the collector) each build a new day in memory and write it whole over the other's file, so
// one reports lines stored that the other then replaced (Store::StartNewDay,
// store/store.h).
//
// Contract: Acquire either holds the lock or fails at once (it never waits) with
// FailedPrecondition naming the holder ("maillens-collector (pid 1234)"), read from the lock
// file, where the holder writes its program name and PID (unless the file is another user's
// and not writable: it is locked all the same). Root creating the file gives it to the data
// directory's owner, so an admin's import never keeps the collector's user out of it. The lock is
// the kernel's, tied to the open file: a holder that dies (even by SIGKILL) releases it, and a name
// left in the file by a dead holder means nothing (it is only read while the lock is held). Readers
// (search, trace, report, status...) never take it. Only advisory: a writer that does not
// call Acquire is not stopped.
//
// Thread-compatible; the lock belongs to the process (flock is per open file description, and
// the descriptor is close-on-exec, so a child started by exec does not inherit it).
#ifndef MAILLENS_STORE_DATA_LOCK_H_
#define MAILLENS_STORE_DATA_LOCK_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace maillens::store {

class DataLock {
 public:
  // Takes `data_dir`/lock (creating the directory and the file if needed) for `program`, which
  // is written into the file with this process's PID. FailedPrecondition, naming the holder,
  // when another open file holds it (another process, or another DataLock of this one);
  // another error when the file cannot be opened or locked.
  static absl::StatusOr<std::unique_ptr<DataLock>> Acquire(const std::string& data_dir,
                                                           std::string_view program);

  // Empties the file (no name outlives its holder) and releases the lock.
  ~DataLock();
  DataLock(const DataLock&) = delete;
  DataLock& operator=(const DataLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  DataLock(int fd, std::string path, bool writable)
      : fd_(fd), path_(std::move(path)), writable_(writable) {}
  int fd_;  // owned; holds the lock until closed
  std::string path_;
  bool writable_;  // false: another user's file, locked through a read-only descriptor
};

// The path of the lock file of `data_dir`.
std::string DataLockPath(const std::string& data_dir);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_DATA_LOCK_H_
