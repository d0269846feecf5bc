#include "core/listen_address.h"

#include "gtest/gtest.h"

namespace maillens::core {
namespace {

TEST(ListenAddressTest, LoopbackForms) {
  EXPECT_TRUE(IsLoopbackListen("127.0.0.1:7411"));
  EXPECT_TRUE(IsLoopbackListen("127.0.0.2:1"));
  EXPECT_TRUE(IsLoopbackListen("[::1]:7411"));
  EXPECT_TRUE(IsLoopbackListen("localhost:9411"));
  EXPECT_TRUE(IsLoopbackListen("LocalHost:9411"));
  EXPECT_TRUE(IsLoopbackListen("ipv4:127.0.0.1:7411"));
  EXPECT_TRUE(IsLoopbackListen("unix:/run/maillens.sock"));
}

TEST(ListenAddressTest, EverythingElseIsNot) {
  EXPECT_FALSE(IsLoopbackListen("10.0.0.1:1"));
  EXPECT_FALSE(IsLoopbackListen("0.0.0.0:7411"));
  EXPECT_FALSE(IsLoopbackListen(":7411"));
  EXPECT_FALSE(IsLoopbackListen("[::]:7411"));
  EXPECT_FALSE(IsLoopbackListen("[::1"));
  EXPECT_FALSE(IsLoopbackListen("mail.example.org:7411"));
  EXPECT_FALSE(IsLoopbackListen("128.0.0.1:7411"));
}

}  // namespace
}  // namespace maillens::core
