#include "collector/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "collector/server.h"
#include "core/listen_address.h"
#include "store/retention.h"

namespace maillens::collector {

namespace {

// Programs a mail host logs under; the last component of program (postfix/smtpd -> smtpd).
// Order is the label index; "other" is last. At most 32 entries (parsed_series_).
constexpr std::string_view kDaemons[] = {
    "smtpd",     "smtp",     "lmtp",    "local",      "virtual",   "pipe",
    "qmgr",      "cleanup",  "pickup",  "bounce",     "defer",     "trace",
    "error",     "discard",  "retry",   "postscreen", "dnsblog",   "anvil",
    "tlsproxy",  "scache",   "verify",  "master",     "postsuper", "postfix-script",
    "postqueue", "sendmail", "dovecot", "amavis",     "opendkim",  "other"};
constexpr size_t kDaemonCount = sizeof(kDaemons) / sizeof(kDaemons[0]);
static_assert(kDaemonCount <= 32);

size_t DaemonIndex(std::string_view daemon) {
  for (size_t i = 0; i + 1 < kDaemonCount; ++i) {
    if (kDaemons[i] == daemon) return i;
  }
  return kDaemonCount - 1;
}

// Latency buckets in seconds: a commit is an fsync or two, a query may scan days.
const prometheus::Histogram::BucketBoundaries& CommitBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}
const prometheus::Histogram::BucketBoundaries& QueryBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return *b;
}

// Counters exported from a snapshot: move them up to the snapshot's total (they never go
// down while the process lives, and a new process starts a new series at 0).
void RaiseTo(prometheus::Counter* c, uint64_t total) {
  double delta = static_cast<double>(total) - c->Value();
  if (delta > 0) c->Increment(delta);
}

prometheus::Counter* NewCounter(prometheus::Registry& r, const std::string& name,
                                const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge* NewGauge(prometheus::Registry& r, const std::string& name,
                            const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

// Partitions held hot, by retention's rule (days/YYYYMMDD.db): a partition's full-text index
// file beside it (YYYYMMDD.fts.db, schema.h) ends in .db too and is not one.
uint64_t PartitionCount(const std::string& data_dir) { return store::HotDays(data_dir).size(); }

}  // namespace

std::string_view DaemonLabel(std::string_view daemon) { return kDaemons[DaemonIndex(daemon)]; }

// Brings the snapshot-fed series up to date before each scrape.
class CollectorMetrics::Refresher : public prometheus::Collectable {
 public:
  Refresher(const CollectorMetrics* owner) : owner_(owner) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    owner_->Refresh();
    return owner_->registry_->Collect();
  }

 private:
  const CollectorMetrics* owner_;  // owns this; the exposer is destroyed first
};

CollectorMetrics::CollectorMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  lines_stored_ = NewCounter(r, "maillens_collector_lines_stored_total",
                             "Lines durably stored (new, not duplicates).");
  lines_duplicate_ = NewCounter(r, "maillens_collector_lines_duplicate_total",
                                "Lines received that the store already held (resends).");
  lines_truncated_ = NewCounter(r, "maillens_collector_lines_truncated_total",
                                "Lines stored cut at max_line_bytes.");
  auto& batches = prometheus::BuildCounter()
                      .Name("maillens_collector_batches_total")
                      .Help(
                          "Ingest batches by outcome: committed, retried (nothing stored, "
                          "resend later), rejected (never accepted as sent).")
                      .Register(r);
  batches_committed_ = &batches.Add({{"outcome", "committed"}});
  batches_retried_ = &batches.Add({{"outcome", "retried"}});
  batches_rejected_ = &batches.Add({{"outcome", "rejected"}});
  streams_opened_ =
      NewCounter(r, "maillens_collector_streams_opened_total", "Agent ingest streams accepted.");
  streams_refused_ = NewCounter(r, "maillens_collector_streams_refused_total",
                                "Agent ingest streams refused (token, role, shutting down).");
  queries_ = NewCounter(r, "maillens_collector_queries_total", "Queries accepted.");
  gaps_ = NewCounter(r, "maillens_collector_gaps_recorded_total",
                     "Spans of a maillog an agent reported it could not read (rotated away, "
                     "truncated, unreadable).");
  writer_queue_bytes_ = NewGauge(r, "maillens_collector_writer_queue_bytes",
                                 "Bytes of batches waiting for or in the store writer.");
  writer_queue_peak_bytes_ = NewGauge(r, "maillens_collector_writer_queue_peak_bytes",
                                      "The writer queue at its fullest since start.");
  store_bytes_ = NewGauge(r, "maillens_collector_store_bytes",
                          "Bytes of the data directory counted against the disk budget "
                          "(catalog, day partitions, archive).");
  store_partitions_ =
      NewGauge(r, "maillens_collector_store_partitions", "Day partitions held hot.");
  agents_connected_ =
      NewGauge(r, "maillens_collector_agents_connected", "Agent ingest streams open now.");
  index_backlog_bytes_ =
      NewGauge(r, "maillens_collector_index_backlog_bytes",
               "Bytes of acknowledged batches in the ingest journal not yet indexed.");
  commit_seconds_ = &prometheus::BuildHistogram()
                         .Name("maillens_collector_commit_duration_seconds")
                         .Help(
                             "Time one durable append to the ingest journal took (the "
                             "batches acknowledged after it).")
                         .Register(r)
                         .Add({}, CommitBuckets());
  index_seconds_ = &prometheus::BuildHistogram()
                        .Name("maillens_collector_index_duration_seconds")
                        .Help(
                            "Time the indexer took to store, index and correlate one run of "
                            "journaled batches.")
                        .Register(r)
                        .Add({}, CommitBuckets());
  query_seconds_ = &prometheus::BuildHistogram()
                        .Name("maillens_collector_query_duration_seconds")
                        .Help("Time a query took on its pool thread, by method.")
                        .Register(r);
  parsed_ = &prometheus::BuildCounter()
                 .Name("maillens_collector_parsed_lines_total")
                 .Help(
                     "Lines stored, by the program's daemon (known Postfix and mail-host "
                     "programs, else other) and the parser's kind (unparsed: not understood).")
                 .Register(r);
  refresher_ = std::make_shared<Refresher>(this);
}

CollectorMetrics::~CollectorMetrics() {
  // Stop serving before the registry and the refresher go.
  exposer_.reset();
}

void CollectorMetrics::SetSource(std::function<ServerStats()> stats, std::string data_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = std::move(stats);
  data_dir_ = std::move(data_dir);
}

absl::Status CollectorMetrics::Listen(const std::string& listen, bool allow_remote) {
  if (exposer_) return absl::FailedPreconditionError("metrics endpoint already listening");
  if (absl::Status s = core::CheckMetricsListen(listen, allow_remote, 9411); !s.ok()) return s;
  // civetweb takes "host:port" as is (CheckMetricsListen refused IPv6, which Debian's build
  // lacks); the library reports failures to bind by throwing.
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": ", e.what()));
  }
  exposer_->RegisterCollectable(refresher_);
  std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports.front();
  return absl::OkStatus();
}

int CollectorMetrics::port() const { return port_; }

void CollectorMetrics::ObserveCommit(absl::Duration d) {
  commit_seconds_->Observe(absl::ToDoubleSeconds(d));
}

void CollectorMetrics::ObserveIndex(absl::Duration d) {
  index_seconds_->Observe(absl::ToDoubleSeconds(d));
}

void CollectorMetrics::ObserveQuery(std::string_view method, absl::Duration d) {
  // Family::Add returns the existing series for the same labels; methods are a fixed set of
  // string literals from the server.
  query_seconds_->Add({{"method", std::string(method)}}, QueryBuckets())
      .Observe(absl::ToDoubleSeconds(d));
}

void CollectorMetrics::CountParsed(const core::Event& ev) {
  size_t d = DaemonIndex(ev.daemon);
  size_t k = static_cast<uint8_t>(ev.kind);
  prometheus::Counter* c;
  {
    std::lock_guard<std::mutex> lock(parsed_mu_);
    c = parsed_series_[d][k];
    if (c == nullptr) {
      c = &parsed_->Add(
          {{"daemon", std::string(kDaemons[d])}, {"kind", std::string(core::KindName(ev.kind))}});
      parsed_series_[d][k] = c;
    }
  }
  c->Increment();
}

void CollectorMetrics::CountGaps(uint64_t n) {
  if (n > 0) gaps_->Increment(static_cast<double>(n));
}

void CollectorMetrics::AgentConnected() { agents_connected_->Increment(); }
void CollectorMetrics::AgentDisconnected() { agents_connected_->Decrement(); }

void CollectorMetrics::Refresh() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (stats_) {
    ServerStats s = stats_();
    RaiseTo(lines_stored_, s.lines_stored);
    RaiseTo(lines_duplicate_, s.lines_duplicate);
    RaiseTo(lines_truncated_, s.lines_truncated);
    RaiseTo(batches_committed_, s.batches_committed);
    RaiseTo(batches_retried_, s.batches_retried);
    RaiseTo(batches_rejected_, s.batches_rejected);
    RaiseTo(streams_opened_, s.streams_opened);
    RaiseTo(streams_refused_, s.streams_refused);
    RaiseTo(queries_, s.queries);
    writer_queue_bytes_->Set(static_cast<double>(s.queued_bytes));
    writer_queue_peak_bytes_->Set(static_cast<double>(s.peak_queued_bytes));
    index_backlog_bytes_->Set(static_cast<double>(s.index_backlog_bytes));
  }
  if (!data_dir_.empty()) {
    store_bytes_->Set(static_cast<double>(store::DataBytes(data_dir_)));
    store_partitions_->Set(static_cast<double>(PartitionCount(data_dir_)));
  }
}

std::string CollectorMetrics::Text() const {
  return prometheus::TextSerializer().Serialize(refresher_->Collect());
}

}  // namespace maillens::collector
