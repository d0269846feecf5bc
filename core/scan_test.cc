#include "core/scan.h"

#include "gtest/gtest.h"

namespace maillens::core {
namespace {

TEST(FindValueTest, AngleBracketsAndPlainValues) {
  std::string_view text =
      "to=<bob@example.org>, orig_to=<bob>, relay=mx.example.org[192.0.2.1]:25, delay=0.5";
  EXPECT_EQ(FindValue(text, "to"), "bob@example.org");
  EXPECT_EQ(FindValue(text, "orig_to"), "bob");
  EXPECT_EQ(FindValue(text, "relay"), "mx.example.org[192.0.2.1]:25");
  EXPECT_EQ(FindValue(text, "delay"), "0.5");
  EXPECT_EQ(FindValue(text, "dsn").data(), nullptr);
}

TEST(FindValueTest, NullSenderIsPresentAndEmpty) {
  std::string_view v = FindValue("from=<>, size=1", "from");
  EXPECT_NE(v.data(), nullptr);
  EXPECT_TRUE(v.empty());
}

TEST(FindValueTest, KeyMustStartAWord) {
  EXPECT_EQ(FindValue("orig_to=<a>", "to").data(), nullptr);
}

TEST(SplitHostAddressTest, Forms) {
  HostAddress a;
  ASSERT_TRUE(SplitHostAddress("mx.example.org[192.0.2.1]:25", &a));
  EXPECT_EQ(a.host, "mx.example.org");
  EXPECT_EQ(a.ip, "192.0.2.1");
  EXPECT_EQ(a.port, "25");
  HostAddress b;
  ASSERT_TRUE(SplitHostAddress("mail[/var/run/dovecot/lmtp]", &b));
  EXPECT_EQ(b.ip, "/var/run/dovecot/lmtp");
  EXPECT_EQ(b.port, "");
  HostAddress c;
  ASSERT_TRUE(SplitHostAddress("local", &c));
  EXPECT_EQ(c.host, "local");
}

TEST(ConsumeHostAddressTest, StopsAfterPort) {
  std::string_view s = "unknown[2001:db8::1]:4321: 550 no";
  std::string_view whole;
  HostAddress a;
  ASSERT_TRUE(ConsumeHostAddress(&s, &whole, &a));
  EXPECT_EQ(whole, "unknown[2001:db8::1]:4321");
  EXPECT_EQ(a.ip, "2001:db8::1");
  EXPECT_EQ(a.port, "4321");
  EXPECT_EQ(s, ": 550 no");
}

}  // namespace
}  // namespace maillens::core
