// The project's mutex: absl::Mutex, with its conditions (Await on an absl::Condition) and the
// thread-safety annotations, except in a ThreadSanitizer build (MAILLENS_TSAN).
//
// Why a ThreadSanitizer build swaps it: Debian's abseil is a shared library compiled without
// ThreadSanitizer, so TSan sees none of absl::Mutex's locking and reports every access made
// under one as a race (hundreds per test, none real). There Mutex is std::mutex with one
// std::condition_variable: Await waits on it until the condition holds, and every Unlock wakes
// the waiters to evaluate their conditions again, which is what absl::Mutex guarantees. TSan
// intercepts both, so it checks the project's locking discipline itself. Release builds use
// absl::Mutex unchanged (the aliases below).
//
// Thread-safe, as a mutex is.
#ifndef MAILLENS_CORE_MUTEX_H_
#define MAILLENS_CORE_MUTEX_H_

#include "absl/synchronization/mutex.h"

#ifdef MAILLENS_TSAN
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#endif

namespace maillens::core {

#ifndef MAILLENS_TSAN

using Mutex = absl::Mutex;
using MutexLock = absl::MutexLock;

#else

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    changed_.notify_all();
    mu_.unlock();
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

  void Await(const absl::Condition& condition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    while (!condition.Eval()) changed_.wait(lock);
    lock.release();
  }
  bool AwaitWithDeadline(const absl::Condition& condition, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    bool holds = condition.Eval();
    while (!holds && absl::Now() < deadline) {
      changed_.wait_until(lock, absl::ToChronoTime(deadline));
      holds = condition.Eval();
    }
    lock.release();
    return holds;
  }
  bool AwaitWithTimeout(const absl::Condition& condition, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return AwaitWithDeadline(condition, absl::Now() + timeout);
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

#endif

}  // namespace maillens::core

#endif  // MAILLENS_CORE_MUTEX_H_
