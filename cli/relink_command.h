// `maillens relink [--since T] [--host-alias HOST=NAME_OR_ADDRESS[,...]]...`: declares the names
// and addresses under which a host appears in other hosts' relay= fields (as an agent's
// `addresses` and `aliases` do live), then re-derives the links of hops that were left
// pending, so data imported before the declaration is linked as if it had been known.
// Takes the data directory's write lock (store/data_lock.h).
#ifndef MAILLENS_CLI_RELINK_COMMAND_H_
#define MAILLENS_CLI_RELINK_COMMAND_H_

#include <string>
#include <vector>

#include "cli/common.h"

namespace maillens::cli {

int RunRelink(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_RELINK_COMMAND_H_
