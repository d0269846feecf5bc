// Subcommands that work on a store: import, search, trace, report (local mode: --data DIR).
#ifndef MAILLENS_CLI_STORE_COMMANDS_H_
#define MAILLENS_CLI_STORE_COMMANDS_H_

#include <string>
#include <vector>

#include "cli/common.h"

namespace maillens::cli {

int RunImport(const GlobalOptions& global, const std::vector<std::string>& args);
int RunSearch(const GlobalOptions& global, const std::vector<std::string>& args);
int RunTrace(const GlobalOptions& global, const std::vector<std::string>& args);
int RunReport(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_STORE_COMMANDS_H_
