#include "store/line_reader.h"

#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace maillens::store {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/maillens_line_reader_" + name;
}

std::vector<std::pair<std::string, uint64_t>> ReadAll(const std::string& path) {
  auto reader = LineReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<std::pair<std::string, uint64_t>> lines;
  std::string_view line;
  uint64_t offset;
  while ((*reader)->Next(&line, &offset)) lines.emplace_back(std::string(line), offset);
  EXPECT_TRUE((*reader)->status().ok());
  return lines;
}

TEST(LineReaderTest, BytesOffsetsAndLastLineWithoutNewline) {
  std::string path = TempPath("plain");
  std::string nul_line("a\0b\xff", 4);
  std::string big(70000, 'x');
  {
    std::ofstream f(path, std::ios::binary);
    f << "first\n" << nul_line << "\n" << big << "\nlast";
  }
  auto lines = ReadAll(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].first, "first");
  EXPECT_EQ(lines[0].second, 0u);
  EXPECT_EQ(lines[1].first, nul_line);
  EXPECT_EQ(lines[1].second, 6u);
  EXPECT_EQ(lines[2].first, big);
  EXPECT_EQ(lines[2].second, 11u);
  EXPECT_EQ(lines[3].first, "last");
  EXPECT_EQ(lines[3].second, 11u + big.size() + 1);
  std::remove(path.c_str());
}

TEST(LineReaderTest, ReadsGzip) {
  std::string path = TempPath("gz");
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  gzputs(gz, "one\ntwo\n");
  gzclose(gz);
  auto lines = ReadAll(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].first, "two");
  EXPECT_EQ(lines[1].second, 4u);
  std::remove(path.c_str());
}

TEST(LineReaderTest, MissingFileIsAClearError) {
  auto reader = LineReader::Open("/nonexistent/maillog");
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.status().message().find("/nonexistent/maillog"), std::string::npos);
}

}  // namespace
}  // namespace maillens::store
