// A thread that runs one job at a time behind its caller: the store hands it the correlation
// and the full-text indexing of lines it has just committed, and goes on to the next lines.
//
// Thread-safety: Post and Wait are for one caller thread (the store's writer). The job runs
// on the worker's thread; whatever it touches, the caller leaves alone until Wait returns.
#ifndef MAILLENS_COLLECTOR_BEHIND_WORKER_H_
#define MAILLENS_COLLECTOR_BEHIND_WORKER_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace maillens::collector {

class BehindWorker {
 public:
  using Job = std::function<absl::Status()>;

  BehindWorker() : thread_([this] { Loop(); }) {}
  // Runs the job in hand, if any, then stops.
  ~BehindWorker() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }
  BehindWorker(const BehindWorker&) = delete;
  BehindWorker& operator=(const BehindWorker&) = delete;

  // Waits until the job in hand has run; the first error of the jobs run since the last Wait.
  absl::Status Wait() {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !job_ && !busy_; };
    mu_.Await(absl::Condition(&idle));
    absl::Status s = std::move(error_);
    error_ = absl::OkStatus();
    return s;
  }

  // Hands `job` over and returns. Call after Wait: one job in hand at a time.
  void Post(Job job) {
    absl::MutexLock lock(&mu_);
    job_ = std::move(job);
  }

 private:
  void Loop() {
    while (true) {
      Job job;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return job_ || stopping_; };
        mu_.Await(absl::Condition(&ready));
        if (!job_) return;
        busy_ = true;
        job = std::move(job_);
        job_ = nullptr;
      }
      absl::Status s = job();
      absl::MutexLock lock(&mu_);
      busy_ = false;
      if (!s.ok() && error_.ok()) error_ = std::move(s);
    }
  }

  absl::Mutex mu_;
  Job job_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_BEHIND_WORKER_H_
