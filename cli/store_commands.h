// Subcommands that work on a store: import, search, trace, report (local mode: --data DIR);
// search and trace also against a collector (--server), and tail only there.
#ifndef MAILLENS_CLI_STORE_COMMANDS_H_
#define MAILLENS_CLI_STORE_COMMANDS_H_

#include <string>
#include <vector>

#include "cli/common.h"
#include "store/store.h"

namespace maillens::cli {

int RunImport(const GlobalOptions& global, const std::vector<std::string>& args);
int RunSearch(const GlobalOptions& global, const std::vector<std::string>& args);
int RunTrace(const GlobalOptions& global, const std::vector<std::string>& args);
int RunReport(const GlobalOptions& global, const std::vector<std::string>& args);
// Needs a collector (global.server): its newest lines, then with -f lines as they are stored.
int RunTail(const GlobalOptions& global, const std::vector<std::string>& args);

// Matching lines as `search --lines` and `tail` print them: raw (like grep), or --json / --csv
// with time and host.
void PrintLines(const std::vector<store::StoredLine>& lines, bool json, bool csv);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_STORE_COMMANDS_H_
