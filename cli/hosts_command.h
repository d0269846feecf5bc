// `maillens hosts [list]` and `maillens hosts forget NAME [--yes]`: the hosts of a local data
// directory. list prints each host the catalog names with its stored lines, message
// instances and first/last line time (every day, archived ones too); forget removes a host
// (a file imported by mistake: a non-maillog's lines taken for hosts) with its lines,
// messages and links from the hot days and the catalog (store::Store::ForgetHost), after
// the admin confirms, holding the data directory's write lock. --data only: a collector
// answers neither yet.
#ifndef MAILLENS_CLI_HOSTS_COMMAND_H_
#define MAILLENS_CLI_HOSTS_COMMAND_H_

#include <string>
#include <vector>

#include "cli/common.h"

namespace maillens::cli {

int RunHosts(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_HOSTS_COMMAND_H_
