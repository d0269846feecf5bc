// The agent's Prometheus metrics (prometheus-cpp) and their pull endpoint.
//
// Everything is read when scraped, from the shipper's and the tailer's stats and the tailer's
// per-file progress: nothing is added to the shipping path.
//
// Per-file series. Lag is reported per configured file pattern (TailerOptions::paths), never
// per path read: rotated copies (mail.log.1, mail.log-20261204.gz) come and go, so a label per
// path would grow without bound. The `file` label is the pattern's basename ("mail.log"), or
// "basename#N" (N: the pattern's place in `files`) when two patterns share a basename; a
// tracked file matching no pattern counts under "other". Lag bytes: bytes the tailer knows of
// that the collector has not acknowledged, over the live file and its rotated copies. Lag
// seconds: how long that pattern has had unacknowledged bytes, measured at scrapes (0 when
// caught up; its resolution is the scrape interval).
//
// Endpoint. Off unless Listen() is called. Only loopback addresses are accepted unless
// allow_remote.
//
// Thread-safety: every method may be called from any thread.
#ifndef MAILLENS_AGENT_METRICS_H_
#define MAILLENS_AGENT_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/shipper.h"
#include "agent/tailer.h"

namespace maillens::agent {

// The `file` label of each pattern in `patterns` (see the file comment), in order.
std::vector<std::string> FileLabels(const std::vector<std::string>& patterns);

class AgentMetrics {
 public:
  // `tailer` and `shipper` must outlive this object; `patterns` are TailerOptions::paths.
  // `clock` (default absl::Now) times lag seconds.
  AgentMetrics(const Tailer* tailer, const Shipper* shipper, std::vector<std::string> patterns,
               std::function<absl::Time()> clock = nullptr);
  ~AgentMetrics();
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // Starts the HTTP endpoint (GET /metrics) on `listen` ("127.0.0.1:9412"; port 0 picks one,
  // see port()). Refuses a non-loopback address unless allow_remote.
  absl::Status Listen(const std::string& listen, bool allow_remote);
  // The port listened on; 0 before Listen.
  int port() const { return port_; }

  // The exposition as a scrape would return it (text format).
  std::string Text() const;

 private:
  class Refresher;
  void Refresh() const;

  const Tailer* tailer_;
  const Shipper* shipper_;
  const std::vector<std::string> patterns_;
  const std::vector<std::string> labels_;
  std::function<absl::Time()> clock_;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Refresher> refresher_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;

  mutable std::mutex mu_;  // serialises Refresh; guards behind_since_
  // Per label: when its lag last went from 0 to more (absent: caught up).
  mutable std::map<std::string, absl::Time> behind_since_;

  // Series owned by registry_.
  prometheus::Counter* lines_read_;
  prometheus::Counter* bytes_read_;
  prometheus::Counter* lines_shipped_;
  prometheus::Counter* lines_acked_;
  prometheus::Counter* lines_resent_;
  prometheus::Counter* lines_duplicate_;
  prometheus::Counter* lines_cut_;
  prometheus::Counter* batches_shipped_;
  prometheus::Counter* batches_acked_;
  prometheus::Counter* batches_retried_;
  prometheus::Counter* rotations_;
  prometheus::Counter* truncations_;
  prometheus::Counter* gaps_;
  prometheus::Counter* reconnects_;
  prometheus::Counter* checkpoint_errors_;
  prometheus::Gauge* connected_;
  prometheus::Gauge* open_files_;
  std::map<std::string, prometheus::Gauge*> lag_bytes_;    // by label
  std::map<std::string, prometheus::Gauge*> lag_seconds_;  // by label
};

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_METRICS_H_
