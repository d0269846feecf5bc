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

TEST(ListenAddressTest, MetricsListenRefusesIpv6ForCivetWebHasNone) {
  EXPECT_TRUE(CheckMetricsListen("127.0.0.1:9411", false, 9411).ok());
  EXPECT_TRUE(CheckMetricsListen("localhost:9411", false, 9411).ok());
  EXPECT_TRUE(CheckMetricsListen("0.0.0.0:9411", true, 9411).ok());
  for (const char* v6 : {"[::1]:9411", "[::]:9411", "ipv6:[::1]:9411", "::1:9411"}) {
    absl::Status s = CheckMetricsListen(v6, /*allow_remote=*/true, 9411);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << v6;
    EXPECT_NE(s.message().find("has no IPv6"), std::string_view::npos) << s;
    EXPECT_NE(s.message().find("127.0.0.1:9411"), std::string_view::npos) << s;
  }
}

}  // namespace
}  // namespace maillens::core
