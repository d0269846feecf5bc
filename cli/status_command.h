// `maillens status`: agents (connected or not, lag, last event, version), ingest rate,
// partitions and disk use, recorded gaps and offline periods. From a collector (--server,
// StatusService) or from a data directory (--data: the catalog as last recorded; no ingest
// rate, since no process is asked).
#ifndef MAILLENS_CLI_STATUS_COMMAND_H_
#define MAILLENS_CLI_STATUS_COMMAND_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "cli/common.h"
#include "maillens/v1/status.pb.h"

namespace maillens::cli {

int RunStatus(const GlobalOptions& global, const std::vector<std::string>& args);

// The status as aligned tables (times in `zone`, colour if `color`).
void PrintStatus(const maillens::v1::StatusResponse& status, const std::string& source,
                 absl::TimeZone zone, bool color, FILE* out);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_STATUS_COMMAND_H_
