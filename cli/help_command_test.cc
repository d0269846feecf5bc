#include "cli/help_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/str_split.h"
#include "core/query_language.h"

namespace maillens::cli {
namespace {

// Runs `maillens help search` in-process, capturing standard output.
std::string HelpText(const std::string& topic) {
  std::fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  std::string path = testing::TempDir() + "/help_" + topic + ".txt";
  FILE* f = std::fopen(path.c_str(), "w");
  dup2(fileno(f), STDOUT_FILENO);
  int rc = RunHelp({topic}, "usage\n");
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  std::fclose(f);
  EXPECT_EQ(rc, 0);
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(HelpTest, SearchHelpNamesEveryFieldAndStatusOfTheLanguage) {
  std::string text = HelpText("search");
  for (const std::string& name : core::QueryFieldNames()) {
    EXPECT_NE(text.find(name), std::string::npos) << "help search does not mention " << name;
  }
  for (const std::string& status : core::QueryStatuses()) {
    EXPECT_NE(text.find(status), std::string::npos) << "help search does not mention " << status;
  }
  EXPECT_NE(text.find("Examples:"), std::string::npos);
}

// Every outcome word the report prints (collector/report.cc, cli/report_render.cc) and every
// row status search prints is explained in help.
TEST(HelpTest, EveryOutcomeWordIsExplained) {
  std::string report = HelpText("report");
  for (const char* word :
       {"delivered", "partly bounced", "bounced", "expired", "deferred", "rejected", "discarded",
        "held", "deleted", "in queue", "abandoned", "entered otherwise", "notices"}) {
    EXPECT_NE(report.find(std::string("  ") + word + " "), std::string::npos)
        << "help report does not explain '" << word << "'";
  }
  std::string search = HelpText("search");
  for (const char* word : {"queued", "abandoned", "deleted", "\"?\"", "2 sent, 1 bounced"}) {
    EXPECT_NE(search.find(word), std::string::npos) << "help search does not explain " << word;
  }
  // The trace shows a recipient's or a hop's status as the correlator stored it.
  std::string trace = HelpText("trace");
  // And the verdict and hop facts trace tells (cli/trace_story.h), delays= as Postfix names it.
  for (const char* word : {"deleted", "verdict", "accepted by", "expired", "held", "released",
                           "blocked", "deferral", "non-delivery notice", "before the queue manager",
                           "deferred queue", "\"events\"", "\"outcomes\""}) {
    EXPECT_NE(trace.find(word), std::string::npos) << "help trace does not explain " << word;
  }
}

TEST(HelpTest, UnknownTopicIsAnError) { EXPECT_EQ(RunHelp({"nonsense"}, "usage\n"), 2); }

TEST(CompletionTest, BashScriptIsValidAndOffersEveryField) {
  std::string script = BashCompletionScript();
  std::set<std::string> words;
  for (absl::string_view w : absl::StrSplit(script, absl::ByAnyChar(" \n\""), absl::SkipEmpty())) {
    words.insert(std::string(w));
  }
  for (const std::string& name : core::QueryFieldNames()) {
    EXPECT_TRUE(words.count(name + ":")) << name;
  }
  for (const char* placeholder : {"@FIELDS@", "@STATUSES@", "@COMMANDS@", "@STATUS_VALUES@"}) {
    EXPECT_EQ(script.find(placeholder), std::string::npos) << placeholder << " left unfilled";
  }
  std::string path = testing::TempDir() + "/maillens.bash";
  std::ofstream(path) << script;
  // Syntax check, then complete `maillens search st` and `maillens trace --r` for real.
  std::string command = "bash -c 'set -e; bash -n " + path + "; source " + path +
                        "; COMP_WORDS=(maillens search st); COMP_CWORD=2; _maillens; "
                        "printf \"%s\\n\" \"${COMPREPLY[@]}\"' 2>&1";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  EXPECT_NE(out.find("status:"), std::string::npos) << out;
  EXPECT_NE(out.find("status:bounced"), std::string::npos) << out;
  EXPECT_EQ(out.find("trace"), std::string::npos) << out;
}

}  // namespace
}  // namespace maillens::cli
