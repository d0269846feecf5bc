#include "store/behind_worker.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace maillens::store {
namespace {

TEST(BehindWorkerTest, RunsJobsInOrderAndWaitReturnsWhenAllRan) {
  BehindWorker worker(3);
  std::vector<int> ran;  // the worker's until Wait returns
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(worker
                    .Post([&ran, i]() {
                      ran.push_back(i);
                      return absl::OkStatus();
                    })
                    .ok());
  }
  ASSERT_TRUE(worker.Wait().ok());
  ASSERT_EQ(ran.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ran[i], i);
}

TEST(BehindWorkerTest, NeverHoldsMoreThanItsDepth) {
  for (size_t depth : {1u, 2u, 4u}) {
    BehindWorker worker(depth);
    std::atomic<int> finished{0};
    int posted = 0;
    int most_in_hand = 0;
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE(worker
                      .Post([&finished]() {
                        // Slower than posting: without the bound, jobs would pile up.
                        std::this_thread::sleep_for(std::chrono::milliseconds(2));
                        ++finished;
                        return absl::OkStatus();
                      })
                      .ok());
      ++posted;
      // Posted and not finished: at most what the worker holds, which is at most depth.
      const int in_hand = posted - finished.load();
      EXPECT_LE(in_hand, static_cast<int>(depth));
      most_in_hand = std::max(most_in_hand, in_hand);
    }
    ASSERT_TRUE(worker.Wait().ok());
    EXPECT_EQ(finished.load(), 40);
    // And it does hold that many: posting outruns jobs of two milliseconds.
    EXPECT_EQ(most_in_hand, static_cast<int>(depth));
  }
}

// After a failure the jobs behind it are dropped, so none of them moves a watermark past the
// failed job's lines; the error reaches the caller once, and then jobs run again.
TEST(BehindWorkerTest, AFailureDropsTheJobsBehindItUntilTheCallerHasSeenIt) {
  BehindWorker worker(3);
  absl::Notification release;
  std::vector<int> ran;
  auto record = [&ran](int i) {
    return [&ran, i]() {
      ran.push_back(i);
      return absl::OkStatus();
    };
  };
  ASSERT_TRUE(worker
                  .Post([&]() {
                    release.WaitForNotification();
                    ran.push_back(1);
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_TRUE(worker.Post([]() { return absl::UnavailableError("disk full"); }).ok());
  ASSERT_TRUE(worker.Post(record(3)).ok());  // queued behind the failure
  release.Notify();
  absl::Status s = worker.Wait();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(ran, std::vector<int>({1})) << "job 3 ran after the failure";
  EXPECT_TRUE(worker.Wait().ok()) << "the error is reported once";
  ASSERT_TRUE(worker.Post(record(4)).ok());
  ASSERT_TRUE(worker.Wait().ok());
  EXPECT_EQ(ran, std::vector<int>({1, 4}));

  // A Post after a failure returns it and drops its job as well.
  ASSERT_TRUE(worker.Post([]() { return absl::InternalError("broken"); }).ok());
  absl::Status posted = worker.Post(record(5));
  if (posted.ok()) posted = worker.Wait();  // the failure came after this Post took its job
  EXPECT_TRUE(absl::IsInternal(posted)) << posted;
  EXPECT_EQ(ran, std::vector<int>({1, 4})) << "job 5 ran after the failure";
}

TEST(BehindWorkerTest, RunsAtItsNiceValue) {
  const int own = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  const int nice = std::min(own + 5, 19);  // lower than ours: allowed without privileges
  BehindWorker worker(1, nice);
  int seen = -100;
  ASSERT_TRUE(worker
                  .Post([&seen]() {
                    seen = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
                    return absl::OkStatus();
                  })
                  .ok());
  ASSERT_TRUE(worker.Wait().ok());
  EXPECT_EQ(seen, nice);
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), own) << "only its thread";
}

}  // namespace
}  // namespace maillens::store
