// `maillens archive list|verify|export DAY`: the archive of a local data directory
// (collector/retention.h). list shows the archived days, verify checks every archive file's
// SHA-256 and the manifest's chain, export writes a day's original lines per host.
#ifndef MAILLENS_CLI_ARCHIVE_COMMAND_H_
#define MAILLENS_CLI_ARCHIVE_COMMAND_H_

#include <string>
#include <vector>

#include "cli/common.h"

namespace maillens::cli {

int RunArchive(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_ARCHIVE_COMMAND_H_
