// `maillens archive list|verify|export DAY|repair`: the archive of a local data directory
// (store/retention.h). list shows the archived days, verify checks the manifest against
// its recorded head, every archive file's SHA-256 and the cached copies, export writes a
// day's original lines per host, repair rebuilds a manifest that cannot be trusted from the
// archive files once the admin confirms.
#ifndef MAILLENS_CLI_ARCHIVE_COMMAND_H_
#define MAILLENS_CLI_ARCHIVE_COMMAND_H_

#include <string>
#include <vector>

#include "cli/common.h"

namespace maillens::cli {

int RunArchive(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_ARCHIVE_COMMAND_H_
