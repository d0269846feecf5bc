// `maillens help [TOPIC]` (search, trace, report: texts that teach by example) and
// `maillens completion bash` (a completion script built from the search language's own field
// and status lists).
#ifndef MAILLENS_CLI_HELP_COMMAND_H_
#define MAILLENS_CLI_HELP_COMMAND_H_

#include <string>
#include <vector>

namespace maillens::cli {

// `usage` is the top-level usage text, printed for `maillens help` without a topic.
int RunHelp(const std::vector<std::string>& args, const char* usage);
int RunCompletion(const std::vector<std::string>& args);

// The bash completion script.
std::string BashCompletionScript();

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_HELP_COMMAND_H_
