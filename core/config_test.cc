#include "core/config.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kKeys = {"listen",    "data_dir",    "allow_plaintext",
                                        "max_lines", "queue_bytes", "token"};

absl::StatusOr<Config> Parse(std::string_view text) {
  return Config::Parse(text, "/etc/maillens/test.conf", kKeys);
}

TEST(ConfigTest, ReadsKeysValuesCommentsAndBlankLines) {
  auto config = Parse(
      "# maillens\n"
      "\n"
      "listen = 0.0.0.0:7411\n"
      "   data_dir=/var/lib/maillens   \n"
      "\tallow_plaintext = yes # only on the lab network\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("listen"), "0.0.0.0:7411");
  EXPECT_EQ(config->GetString("data_dir"), "/var/lib/maillens");
  EXPECT_EQ(*config->GetBool("allow_plaintext", false), true);
  EXPECT_FALSE(config->Has("max_lines"));
  EXPECT_EQ(config->GetString("max_lines", "none"), "none");
  EXPECT_EQ(config->Where("data_dir"), "/etc/maillens/test.conf:4");
  EXPECT_EQ(config->Where("max_lines"), "/etc/maillens/test.conf");
}

TEST(ConfigTest, QuotedValuesKeepSpacesAndHashes) {
  auto config = Parse(
      "data_dir = \"/srv/mail logs/ #1\"   # comment\n"
      "token = 'a\\b \"c\"'\n"
      "listen = \"tab\\there \\\"q\\\" back\\\\slash\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("data_dir"), "/srv/mail logs/ #1");
  EXPECT_EQ(config->GetString("token"), "a\\b \"c\"");
  EXPECT_EQ(config->GetString("listen"), "tab\there \"q\" back\\slash");
}

TEST(ConfigTest, HashInsideAnUnquotedWordIsPartOfTheValue) {
  auto config = Parse("token = abc#def\nlisten = # nothing but a comment\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("token"), "abc#def");
  EXPECT_EQ(config->GetString("listen", "unset"), "");
  EXPECT_TRUE(config->Has("listen"));
}

TEST(ConfigTest, CrLfLinesAndByteOrderMark) {
  auto config = Parse("\xEF\xBB\xBFlisten = a:1\r\ndata_dir = d\r\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("listen"), "a:1");
  EXPECT_EQ(config->GetString("data_dir"), "d");
}

TEST(ConfigTest, UnknownKeyNamesFileLineAndKnownKeys) {
  auto config = Parse("listen = x\n\nmax_line = 5\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("/etc/maillens/test.conf:3: unknown key "
                                                   "'max_line'"));
  EXPECT_THAT(config.status().message(), HasSubstr("max_lines"));
}

TEST(ConfigTest, SyntaxErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"listen\n", ":1: expected 'key = value'"},
           {"\n = value\n", ":2: the line has no key"},
           {"lis ten = 1\n", ":1: invalid key"},
           {"listen = 1\nlisten = 2\n", ":2: 'listen' is already set on line 1"},
           {"token = \"open\n", ":1: token: the quoted value has no closing"},
           {"token = 'open\n", ":1: token: the quoted value has no closing"},
           {"token = \"a\" b\n", ":1: token: unexpected text after the closing quote"},
           {"token = \"a\\q\"\n", ":1: token: unknown escape"},
       }) {
    auto config = Parse(c.text);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_THAT(config.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(ConfigTest, NulByteIsAnError) {
  auto config = Parse(std::string_view("token = a\0b\n", 12));
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("test.conf:1: line holds a NUL byte"));
}

TEST(ConfigTest, Bools) {
  for (const char* yes : {"true", "YES", "on", "1"}) {
    auto config = Parse(std::string("allow_plaintext = ") + yes);
    ASSERT_TRUE(config.ok());
    EXPECT_TRUE(*config->GetBool("allow_plaintext", false)) << yes;
  }
  for (const char* no : {"false", "No", "OFF", "0"}) {
    auto config = Parse(std::string("allow_plaintext = ") + no);
    ASSERT_TRUE(config.ok());
    EXPECT_FALSE(*config->GetBool("allow_plaintext", true)) << no;
  }
  auto config = Parse("allow_plaintext = maybe\n");
  ASSERT_TRUE(config.ok());
  auto v = config->GetBool("allow_plaintext", false);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(),
              HasSubstr("test.conf:1: allow_plaintext: expected true or false, got 'maybe'"));
  EXPECT_TRUE(*config->GetBool("data_dir", true));  // absent: the fallback
}

TEST(ConfigTest, Ints) {
  auto config = Parse("max_lines = 250\nqueue_bytes = 12x\n");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(*config->GetInt("max_lines", 7, 1, 1000), 250);
  EXPECT_EQ(*config->GetInt("listen", 7), 7);
  auto range = config->GetInt("max_lines", 7, 1, 100);
  ASSERT_FALSE(range.ok());
  EXPECT_THAT(range.status().message(),
              HasSubstr("test.conf:1: max_lines: 250 is outside [1, 100]"));
  auto bad = config->GetInt("queue_bytes", 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("test.conf:2: queue_bytes: expected a whole number"));
}

TEST(ConfigTest, Bytes) {
  struct Case {
    const char* value;
    uint64_t bytes;
  };
  for (const Case& c : std::vector<Case>{{"512", 512},
                                         {"64K", 64 << 10},
                                         {"64 KiB", 64 << 10},
                                         {"16m", 16 << 20},
                                         {"2G", uint64_t{2} << 30},
                                         {"100b", 100}}) {
    auto config = Parse(std::string("queue_bytes = ") + c.value);
    ASSERT_TRUE(config.ok());
    auto v = config->GetBytes("queue_bytes", 0);
    ASSERT_TRUE(v.ok()) << c.value << ": " << v.status();
    EXPECT_EQ(*v, c.bytes) << c.value;
  }
  for (const char* bad : {"", "K", "12T", "-5", "1.5M", "99999999999999999999G"}) {
    auto config = Parse(std::string("queue_bytes = ") + bad);
    ASSERT_TRUE(config.ok());
    auto v = config->GetBytes("queue_bytes", 0);
    EXPECT_FALSE(v.ok()) << bad;
  }
  auto config = Parse("queue_bytes = 1K\n");
  auto small = config->GetBytes("queue_bytes", 0, 4096);
  ASSERT_FALSE(small.ok());
  EXPECT_THAT(small.status().message(), HasSubstr("test.conf:1: queue_bytes: '1K' is outside"));
  EXPECT_EQ(*config->GetBytes("max_lines", 77), 77u);
}

TEST(ConfigTest, RequiredString) {
  auto config = Parse("data_dir =\n");
  ASSERT_TRUE(config.ok());
  auto empty = config->GetRequiredString("data_dir");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("test.conf:1: data_dir: must not be empty"));
  auto absent = config->GetRequiredString("listen");
  ASSERT_FALSE(absent.ok());
  EXPECT_THAT(absent.status().message(), HasSubstr("test.conf: 'listen' must be set"));
}

TEST(ConfigTest, EmptyTextIsAnEmptyConfig) {
  auto config = Parse("");
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->Has("listen"));
}

}  // namespace
}  // namespace maillens::core
