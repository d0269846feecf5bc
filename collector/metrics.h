// The collector's Prometheus metrics (prometheus-cpp) and their pull endpoint.
//
// Two kinds of numbers. Counted at the source, through the Observe/Count hooks the server
// and the store call: commit latency (the journal's), indexing latency, query latency per method,
// parse outcomes per daemon and kind, gaps recorded, agents connected. Read when scraped, from a
// snapshot function the program sets (CollectorServer::Stats) and from the data directory: lines,
// batches, streams, writer queue, store bytes and partitions.
//
// Cardinality. Every label has a bounded set of values fixed by this code: `outcome`
// (committed|retried|rejected), `method` (the QueryService/StatusService method names),
// `kind` (core::KindName, a closed enum), `daemon` (a fixed list of Postfix and mail-host
// programs; anything else is "other", so a log full of odd program names cannot grow the
// series). No host names, addresses, queue IDs, days or paths appear in labels: the store's
// size is one total (maillens_collector_store_bytes) plus a partition count, because one
// series per day would grow without bound.
//
// Endpoint. Off unless Listen() is called. Only loopback addresses are accepted unless
// allow_remote: the numbers say how much mail a site handles and when it is unwell.
//
// Thread-safety: every method may be called from any thread. Hooks are cheap (a lock-free
// counter or histogram update) and never block on a scrape.
#ifndef MAILLENS_COLLECTOR_METRICS_H_
#define MAILLENS_COLLECTOR_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/event.h"

namespace maillens::collector {

struct ServerStats;

// The daemon label for a syslog program's last component ("smtpd", "qmgr"): itself when it is
// one of the known mail-host programs, "other" otherwise. Bounded by construction.
std::string_view DaemonLabel(std::string_view daemon);

class CollectorMetrics {
 public:
  CollectorMetrics();
  ~CollectorMetrics();
  CollectorMetrics(const CollectorMetrics&) = delete;
  CollectorMetrics& operator=(const CollectorMetrics&) = delete;

  // Where scrapes read the server's counters and the store's size. Call before Listen or
  // from any thread; `stats` must stay callable until this object is destroyed or the source
  // is replaced (set an empty function before destroying what it reads).
  void SetSource(std::function<ServerStats()> stats, std::string data_dir);

  // Starts the HTTP endpoint (GET /metrics) on `listen` ("127.0.0.1:9411"; port 0 picks one,
  // see port()). Refuses a non-loopback address unless allow_remote.
  absl::Status Listen(const std::string& listen, bool allow_remote);
  // The port listened on; 0 before Listen.
  int port() const;

  // Hooks.
  void ObserveCommit(absl::Duration d);
  void ObserveIndex(absl::Duration d);
  void ObserveQuery(std::string_view method, absl::Duration d);
  void CountParsed(const core::Event& ev);
  void CountGaps(uint64_t n);
  void AgentConnected();
  void AgentDisconnected();

  // The exposition as a scrape would return it (text format), for tests and `status`.
  std::string Text() const;

 private:
  class Refresher;
  void Refresh() const;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Refresher> refresher_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;

  mutable std::mutex mu_;  // guards the source and serialises Refresh
  std::function<ServerStats()> stats_;
  std::string data_dir_;

  // Families and series owned by registry_; the references stay valid for its lifetime.
  prometheus::Counter* lines_stored_;
  prometheus::Counter* lines_duplicate_;
  prometheus::Counter* lines_truncated_;
  prometheus::Counter* batches_committed_;
  prometheus::Counter* batches_retried_;
  prometheus::Counter* batches_rejected_;
  prometheus::Counter* streams_opened_;
  prometheus::Counter* streams_refused_;
  prometheus::Counter* queries_;
  prometheus::Counter* gaps_;
  prometheus::Gauge* writer_queue_bytes_;
  prometheus::Gauge* writer_queue_peak_bytes_;
  prometheus::Gauge* index_backlog_bytes_;
  prometheus::Gauge* store_bytes_;
  prometheus::Gauge* store_partitions_;
  prometheus::Gauge* agents_connected_;
  prometheus::Histogram* commit_seconds_;
  prometheus::Histogram* index_seconds_;
  prometheus::Family<prometheus::Histogram>* query_seconds_;
  prometheus::Family<prometheus::Counter>* parsed_;
  // parsed_ series per (daemon label index, kind), created on first use.
  std::mutex parsed_mu_;
  std::array<std::array<prometheus::Counter*, 256>, 32> parsed_series_{};
};

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_METRICS_H_
