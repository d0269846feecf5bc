#include "core/queue_id.h"

#include "gtest/gtest.h"

namespace maillens::core {
namespace {

TEST(ClassifyQueueIdTest, ShortLongAndNoQueue) {
  EXPECT_EQ(ClassifyQueueId("17CCA8044"), QueueIdForm::kShort);
  EXPECT_EQ(ClassifyQueueId("F27E789349"), QueueIdForm::kShort);
  // 5 hex digits of microseconds + the inode in hex: up to 21 digits on large file systems.
  EXPECT_EQ(ClassifyQueueId("ED06590130AA1C9D6D862"), QueueIdForm::kShort);
  EXPECT_EQ(ClassifyQueueId("3mPVKl0Mhjz7sXv"), QueueIdForm::kLong);
  EXPECT_EQ(ClassifyQueueId("4Pd1Xk3LKDz3tBr"), QueueIdForm::kLong);
  EXPECT_EQ(ClassifyQueueId("3p7RMT0zrYz20p"), QueueIdForm::kLong);  // 'z' inside usec part
  EXPECT_EQ(ClassifyQueueId("NOQUEUE"), QueueIdForm::kNoQueue);
}

TEST(ClassifyQueueIdTest, WordsAreNotQueueIds) {
  EXPECT_EQ(ClassifyQueueId("statistics"), QueueIdForm::kNone);
  EXPECT_EQ(ClassifyQueueId("warning"), QueueIdForm::kNone);
  EXPECT_EQ(ClassifyQueueId("ACE"), QueueIdForm::kNone);              // too short
  EXPECT_EQ(ClassifyQueueId("3mPVKl0Mhjz7szv"), QueueIdForm::kNone);  // 'z' in inode part
  EXPECT_EQ(ClassifyQueueId("connect from x"), QueueIdForm::kNone);
  EXPECT_EQ(ClassifyQueueId("17cca8044"), QueueIdForm::kNone);  // short IDs are upper case
}

}  // namespace
}  // namespace maillens::core
