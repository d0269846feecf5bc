// A thread that runs jobs in order behind its caller: the store hands it the correlation and
// the full-text indexing of lines it has just committed, and goes on to the next lines.
//
// A job that fails stops the jobs after it: they are dropped until the caller has collected
// the error (Post or Wait). A job's work is redone from disk by the caller then, from a
// watermark the failed job did not move; a later job that ran would have moved it past lines
// nobody handled.
//
// Thread-safety: Post and Wait are for one caller thread (the store's writer). Jobs run on the
// worker's thread; whatever they touch, the caller leaves alone until Wait returns.
#ifndef MAILLENS_STORE_BEHIND_WORKER_H_
#define MAILLENS_STORE_BEHIND_WORKER_H_

#include <sys/resource.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "core/mutex.h"

namespace maillens::store {

// Lowers the calling thread's scheduling priority to nice value `nice` (Linux: per thread):
// work that may fall behind yields the CPU to work that must not. Best effort.
inline void SetThreadNice(int nice) {
  if (nice != 0) (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice);
}

class BehindWorker {
 public:
  using Job = std::function<absl::Status()>;

  // At most `depth` jobs posted and not yet finished (the one running included); the thread
  // runs at nice value `nice` (SetThreadNice).
  explicit BehindWorker(size_t depth = 1, int nice = 0)
      : depth_(depth), nice_(nice), thread_([this] { Loop(); }) {}
  // Runs the jobs in hand, then stops.
  ~BehindWorker() {
    {
      core::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }
  BehindWorker(const BehindWorker&) = delete;
  BehindWorker& operator=(const BehindWorker&) = delete;

  // Waits until every job in hand has run (or was dropped); the first error since the last
  // Post or Wait that returned one.
  absl::Status Wait() {
    core::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return jobs_.empty() && !busy_; };
    mu_.Await(absl::Condition(&idle));
    return TakeError();
  }

  // Waits until fewer than `depth` jobs are in hand, then hands `job` over; but if a job
  // failed, returns its error instead and drops `job` too.
  absl::Status Post(Job job) {
    core::MutexLock lock(&mu_);
    auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !error_.ok() || jobs_.size() + (busy_ ? 1 : 0) < depth_;
    };
    mu_.Await(absl::Condition(&room));
    if (!error_.ok()) {
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return jobs_.empty() && !busy_; };
      mu_.Await(absl::Condition(&idle));  // the dropped ones are gone
      return TakeError();
    }
    jobs_.push_back(std::move(job));
    return absl::OkStatus();
  }

 private:
  absl::Status TakeError() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status s = std::move(error_);
    error_ = absl::OkStatus();
    return s;
  }

  void Loop() {
    SetThreadNice(nice_);
    while (true) {
      Job job;
      {
        core::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !jobs_.empty() || stopping_; };
        mu_.Await(absl::Condition(&ready));
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        if (!error_.ok()) continue;  // after a failure: dropped, redone from disk
        busy_ = true;
      }
      absl::Status s = job();
      core::MutexLock lock(&mu_);
      busy_ = false;
      if (!s.ok() && error_.ok()) error_ = std::move(s);
    }
  }

  const size_t depth_;
  const int nice_;
  core::Mutex mu_;
  std::deque<Job> jobs_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace maillens::store

#endif  // MAILLENS_STORE_BEHIND_WORKER_H_
