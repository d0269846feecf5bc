#include "cli/common.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "report/table.h"

namespace maillens::cli {
namespace {

// `cp` encoded in UTF-8 (no surrogates asked for).
std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// ParseGlobalOptions over a command line; *global as parsed, or nullopt when refused.
std::optional<GlobalOptions> Parse(std::vector<std::string> words) {
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  int i = 1;
  GlobalOptions global;
  if (!ParseGlobalOptions(static_cast<int>(argv.size()), argv.data(), &i, &global)) {
    return std::nullopt;
  }
  return global;
}

TEST(GlobalOptionsTest, DataOnTheCommandLineWinsOverTheServerInTheEnvironment) {
  setenv("MAILLENS_SERVER", "127.0.0.1:7411", 1);
  std::optional<GlobalOptions> env = Parse({"maillens", "status"});
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->server, "127.0.0.1:7411");
  std::optional<GlobalOptions> data = Parse({"maillens", "--data", "/srv/ml", "status"});
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(data->server, "");
  EXPECT_EQ(data->data_dir, "/srv/ml");
  std::optional<GlobalOptions> server = Parse({"maillens", "--server=10.0.0.1:7411", "status"});
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->server, "10.0.0.1:7411");
  unsetenv("MAILLENS_SERVER");
}

TEST(GlobalOptionsTest, DataAndServerTogetherAreRefused) {
  EXPECT_FALSE(
      Parse({"maillens", "--data", "/srv/ml", "--server", "127.0.0.1:7411", "status"}).has_value());
  EXPECT_FALSE(
      Parse({"maillens", "--server", "127.0.0.1:7411", "--data=/srv/ml", "status"}).has_value());
}

TEST(EscapeControlsTest, ValidUtf8TextIsKept) {
  for (const char* text : {"jörg@例え.jp", "é", "日本", "😀 emoji", "a\tb", "plain ascii ~",
                           "\u00a0 no-break space", "\ufeff", "\U0010ffff"}) {
    EXPECT_EQ(EscapeControls(text), text);
  }
}

TEST(EscapeControlsTest, C0ControlsAndDelAreEscaped) {
  EXPECT_EQ(EscapeControls("att\x1b[5macker\b\b\b@evil.test"),
            "att\\x1b[5macker\\x08\\x08\\x08@evil.test");
  EXPECT_EQ(EscapeControls("id\x1b]0;pwned\x07"), "id\\x1b]0;pwned\\x07");
  EXPECT_EQ(EscapeControls(std::string("a\0b\r\n\x7f", 6)), "a\\x00b\\x0d\\x0a\\x7f");
}

TEST(EscapeControlsTest, C1ControlsAreEscapedAsStrayBytesAndAsUtf8) {
  EXPECT_EQ(EscapeControls("\x9b"
                           "31mred"),
            "\\x9b31mred");  // CSI
  EXPECT_EQ(EscapeControls("\xc2\x9b"
                           "31mred"),
            "\\xc2\\x9b31mred");  // U+009B
  EXPECT_EQ(EscapeControls("\xc2\x80\xc2\x9f\xc2\xa0"), "\\xc2\\x80\\xc2\\x9f\xc2\xa0");
}

TEST(EscapeControlsTest, BytesThatAreNotUtf8AreEscapedOneByOne) {
  EXPECT_EQ(EscapeControls("\xff"), "\\xff");
  EXPECT_EQ(EscapeControls("\x80x"), "\\x80x");                  // a lone continuation byte
  EXPECT_EQ(EscapeControls("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(EscapeControls("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");  // overlong, three bytes
  EXPECT_EQ(EscapeControls("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(EscapeControls("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(EscapeControls("\xf5\x80"), "\\xf5\\x80");
  // A sequence cut short, at the end and before other text; what follows is kept.
  EXPECT_EQ(EscapeControls("\xe6\x97"), "\\xe6\\x97");
  EXPECT_EQ(EscapeControls("\xe6\x97jörg"), "\\xe6\\x97jörg");
  EXPECT_EQ(EscapeControls("\xe6\xe6\x97\xa5"), "\\xe6\xe6\x97\xa5");  // then 日
}

// Every code point: kept unless it is a control character.
TEST(EscapeControlsTest, EveryCodePoint) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const std::string s = Utf8(cp);
    const bool control = (cp < 0x20 && cp != '\t') || (cp >= 0x7F && cp <= 0x9F);
    const std::string out = EscapeControls(s);
    if (control) {
      ASSERT_EQ(out.size(), 4 * s.size()) << "U+" << std::hex << cp;
      ASSERT_EQ(out[0], '\\') << "U+" << std::hex << cp;
    } else {
      ASSERT_EQ(out, s) << "U+" << std::hex << cp;
    }
  }
}

// Whatever the bytes: the result holds no control character and no stray byte (escaping it
// again changes nothing), so it is safe on a terminal and in a page.
TEST(EscapeControlsTest, RandomBytesEscapeOnce) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string s(rng() % 12, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    const std::string out = EscapeControls(s);
    ASSERT_EQ(EscapeControls(out), out);
  }
}

std::string Printed(const report::Table& table, bool csv) {
  FILE* f = std::tmpfile();
  if (csv) {
    table.PrintCsv(f);
  } else {
    table.PrintText(f, /*color=*/false);
  }
  std::string out(static_cast<size_t>(std::ftell(f)), '\0');
  std::rewind(f);
  out.resize(std::fread(out.data(), 1, out.size(), f));
  std::fclose(f);
  return out;
}

TEST(TableTest, TextEscapesCellsAndAlignsTheEscapedText) {
  report::Table table({"FROM", "TO"});
  table.AddRow({{"att\x1b[5mx\b@evil.test"}, {"jörg@例え.jp"}});
  table.AddRow({{"bob@example.org"}, {"\x9b"}});
  EXPECT_EQ(Printed(table, false),
            "FROM                       TO\n"
            "att\\x1b[5mx\\x08@evil.test  jörg@例え.jp\n"
            "bob@example.org            \\x9b\n");
}

TEST(TableTest, CsvKeepsTheBytes) {
  report::Table table({"from", "to"});
  table.AddRow({{"att\x1b[5mx@evil.test"}, {"\x9b"}});
  EXPECT_EQ(Printed(table, true), "from,to\natt\x1b[5mx@evil.test,\x9b\n");
}

}  // namespace
}  // namespace maillens::cli
