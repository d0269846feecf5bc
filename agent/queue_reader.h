// Reads this host's Postfix queues for the live queue view (`maillens queue`): runs
// `postqueue -j` (with `-c DIR` per configured instance), parses its JSON lines into
// maillens.v1.QueuedMessage, and returns one QueueSnapshot that replaces the host's previous
// one at the collector.
//
// The command runner is injected so tests feed captured `postqueue -j` output; RunCommand is
// the real one, also used by `maillens doctor` (postconf).
//
// Thread-safety: ParsePostqueueJson and RunCommand are thread-safe. A QueueReader is
// thread-compatible (one caller at a time).
#ifndef MAILLENS_AGENT_QUEUE_READER_H_
#define MAILLENS_AGENT_QUEUE_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "maillens/v1/ingest.pb.h"

namespace maillens::agent {

struct CommandOutput {
  int exit_code = 0;  // 128 + signal number when killed by a signal
  std::string out;    // standard output
  std::string err;    // standard error
};

// Runs argv[0] (searched in PATH) with argv, without a shell, and waits for it. An error
// only when it could not be started; a non-zero exit is a value.
using CommandRunner =
    std::function<absl::StatusOr<CommandOutput>(const std::vector<std::string>& argv)>;
absl::StatusOr<CommandOutput> RunCommand(const std::vector<std::string>& argv);

// One QueuedMessage per non-empty line of `postqueue -j` output; fields Postfix adds later are
// ignored. InvalidArgument naming the line when one is not such a JSON object.
absl::StatusOr<std::vector<maillens::v1::QueuedMessage>> ParsePostqueueJson(std::string_view text);

struct QueueReaderOptions {
  // Postfix config directories (postfix_config_dirs); empty: the default instance only.
  std::vector<std::string> config_dirs;
  std::string postqueue = "postqueue";
  CommandRunner run = RunCommand;
  std::function<absl::Time()> now = absl::Now;
};

class QueueReader {
 public:
  explicit QueueReader(QueueReaderOptions options) : options_(std::move(options)) {}

  // Every instance's queue now. When an instance cannot be read, the snapshot holds the
  // others and `error` says which failed and why.
  maillens::v1::QueueSnapshot Read();

 private:
  QueueReaderOptions options_;
};

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_QUEUE_READER_H_
