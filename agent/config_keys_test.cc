// How the agent reads its `files` value (agent/config_keys.h): patterns, each with the format
// of the files it names.
#include "agent/config_keys.h"

#include "gtest/gtest.h"

namespace maillens::agent {
namespace {

TEST(FilesEntriesTest, PatternsWithTheirFormat) {
  auto entries = ParseFilesEntries(
      "/var/log/mail.log, /var/log/dovecot.log format=dovecot,/var/log/x*.log  format = dovecot,"
      " /var/log/maillog format=maillog");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].pattern, "/var/log/mail.log");
  EXPECT_EQ((*entries)[0].format, "maillog");
  EXPECT_EQ((*entries)[1].pattern, "/var/log/dovecot.log");
  EXPECT_EQ((*entries)[1].format, "dovecot");
  EXPECT_EQ((*entries)[2].pattern, "/var/log/x*.log");
  EXPECT_EQ((*entries)[2].format, "dovecot");
  EXPECT_EQ((*entries)[3].format, "maillog");
}

TEST(FilesEntriesTest, AnythingElseAfterThePathIsRefused) {
  auto entries = ParseFilesEntries("/var/log/mail.log, /var/log/dovecot.log format=exim");
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().message(),
            "files entry '/var/log/dovecot.log format=exim': after the path, only format=maillog "
            "or format=dovecot");
  // A path with a space is not one: the space starts the format.
  EXPECT_FALSE(ParseFilesEntries("/var/log/my mail.log").ok());
}

}  // namespace
}  // namespace maillens::agent
