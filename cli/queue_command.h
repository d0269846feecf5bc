// `maillens queue`: what sits in every host's Postfix queue right now, as the agents last read
// it (postqueue -j every queue_interval_s), each message joined with the trace the collector
// stored for it. From a collector (--server, StatusService.GetQueue) or from a data directory
// (--data: the catalog read directly, store::ReadQueue).
#ifndef MAILLENS_CLI_QUEUE_COMMAND_H_
#define MAILLENS_CLI_QUEUE_COMMAND_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "maillens/v1/status.pb.h"

namespace maillens::cli {

int RunQueue(const GlobalOptions& global, const std::vector<std::string>& args);

// Which queued messages to show: every term must match (from:/to: by substring of the
// address, queue: by queue name; a bare word is a queue ID).
struct QueueFilter {
  std::vector<std::string> from;
  std::vector<std::string> to;
  std::vector<std::string> queues;
  std::vector<std::string> queue_ids;
};

// Parses filter terms; InvalidArgument names the term it does not understand.
absl::StatusOr<QueueFilter> ParseQueueFilter(const std::vector<std::string>& terms);

// `queue` with only the messages `filter` keeps (trace_ids and traces kept in step).
maillens::v1::QueueResponse FilterQueue(const maillens::v1::QueueResponse& queue,
                                        const QueueFilter& filter);

// A snapshot is stale when older than this many of its host's snapshot intervals: the agent
// is not reporting.
inline constexpr int64_t kStaleIntervals = 3;

// The queues as one aligned table, each host's snapshot age above it, and a warning for each
// stale snapshot (`filtered`: terms were given; colour if `color`).
void PrintQueue(const maillens::v1::QueueResponse& queue, const std::string& source, bool filtered,
                bool color, FILE* out);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_QUEUE_COMMAND_H_
