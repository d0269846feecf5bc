#include "agent/metrics.h"

#include <fnmatch.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/listen_address.h"

namespace maillens::agent {

namespace {

// Counters exported from a snapshot: move them up to the snapshot's total.
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

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool Matches(const std::string& pattern, const std::string& path) {
  return fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME) == 0;
}

}  // namespace

std::vector<std::string> FileLabels(const std::vector<std::string>& patterns) {
  std::map<std::string, int> uses;
  for (const std::string& p : patterns) ++uses[Basename(p)];
  std::vector<std::string> labels;
  for (size_t i = 0; i < patterns.size(); ++i) {
    std::string base = Basename(patterns[i]);
    labels.push_back(uses[base] > 1 ? absl::StrCat(base, "#", i) : base);
  }
  return labels;
}

// Brings the series up to date before each scrape.
class AgentMetrics::Refresher : public prometheus::Collectable {
 public:
  explicit Refresher(const AgentMetrics* owner) : owner_(owner) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    owner_->Refresh();
    return owner_->registry_->Collect();
  }

 private:
  const AgentMetrics* owner_;  // owns this; the exposer is destroyed first
};

AgentMetrics::AgentMetrics(const Tailer* tailer, const Shipper* shipper,
                           std::vector<std::string> patterns, std::function<absl::Time()> clock)
    : tailer_(tailer),
      shipper_(shipper),
      patterns_(std::move(patterns)),
      labels_(FileLabels(patterns_)),
      clock_(clock ? std::move(clock) : [] { return absl::Now(); }),
      registry_(std::make_shared<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;
  lines_read_ = NewCounter(r, "maillens_agent_lines_read_total",
                           "Lines read from the maillogs (lines read again after a lost "
                           "connection count again).");
  bytes_read_ = NewCounter(r, "maillens_agent_read_bytes_total", "Bytes of lines read.");
  lines_shipped_ = NewCounter(r, "maillens_agent_lines_shipped_total",
                              "Lines sent to the collector, counting resends.");
  lines_acked_ = NewCounter(r, "maillens_agent_lines_acknowledged_total",
                            "Lines the collector acknowledged as durably stored.");
  lines_resent_ = NewCounter(r, "maillens_agent_lines_resent_total",
                             "Lines sent on a stream that broke before their acknowledgement, "
                             "so sent again.");
  lines_duplicate_ = NewCounter(r, "maillens_agent_lines_duplicate_total",
                                "Lines the collector said it already held.");
  lines_cut_ = NewCounter(r, "maillens_agent_lines_cut_total", "Lines cut at max_line_bytes.");
  auto& batches =
      prometheus::BuildCounter()
          .Name("maillens_agent_batches_total")
          .Help(
              "Batches by event: shipped (sent), acknowledged (any answer), retried (the "
              "collector answered RETRY: busy or disk full).")
          .Register(r);
  batches_shipped_ = &batches.Add({{"event", "shipped"}});
  batches_acked_ = &batches.Add({{"event", "acknowledged"}});
  batches_retried_ = &batches.Add({{"event", "retried"}});
  rotations_ = NewCounter(r, "maillens_agent_rotations_total",
                          "Live files that moved to a new file (rotation followed).");
  truncations_ =
      NewCounter(r, "maillens_agent_truncations_total", "Live files cut or rewritten in place.");
  gaps_ = NewCounter(r, "maillens_agent_gaps_total",
                     "Spans of a maillog the agent could not read and never will.");
  reconnects_ = NewCounter(r, "maillens_agent_reconnects_total",
                           "Streams to the collector that ended and were opened again.");
  checkpoint_errors_ =
      NewCounter(r, "maillens_agent_checkpoint_errors_total", "Checkpoint saves that failed.");
  connected_ = NewGauge(r, "maillens_agent_connected",
                        "1 while a stream to the collector is up and acknowledging, else 0.");
  open_files_ = NewGauge(r, "maillens_agent_open_files", "Files the tailer holds open.");
  auto& lag_bytes = prometheus::BuildGauge()
                        .Name("maillens_agent_lag_bytes")
                        .Help(
                            "Bytes of a file pattern's files not yet acknowledged by the "
                            "collector.")
                        .Register(r);
  auto& lag_seconds = prometheus::BuildGauge()
                          .Name("maillens_agent_lag_seconds")
                          .Help(
                              "How long a file pattern has had bytes not yet acknowledged "
                              "(0: caught up; measured at scrapes).")
                          .Register(r);
  std::vector<std::string> all = labels_;
  all.push_back("other");
  for (const std::string& label : all) {
    lag_bytes_[label] = &lag_bytes.Add({{"file", label}});
    lag_seconds_[label] = &lag_seconds.Add({{"file", label}});
  }
  refresher_ = std::make_shared<Refresher>(this);
}

AgentMetrics::~AgentMetrics() { exposer_.reset(); }

absl::Status AgentMetrics::Listen(const std::string& listen, bool allow_remote) {
  if (exposer_) return absl::FailedPreconditionError("metrics endpoint already listening");
  if (absl::Status s = core::CheckMetricsListen(listen, allow_remote, 9412); !s.ok()) return s;
  // The library reports a failure to bind by throwing.
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

void AgentMetrics::Refresh() const {
  std::lock_guard<std::mutex> lock(mu_);
  TailerStats t = tailer_->stats();
  ShipperStats s = shipper_->stats();
  RaiseTo(lines_read_, t.lines);
  RaiseTo(bytes_read_, t.bytes);
  RaiseTo(lines_cut_, t.cut_lines);
  RaiseTo(rotations_, t.rotations);
  RaiseTo(truncations_, t.truncations);
  RaiseTo(gaps_, t.gaps);
  RaiseTo(checkpoint_errors_, t.checkpoint_errors);
  open_files_->Set(static_cast<double>(t.open_files));
  RaiseTo(lines_shipped_, s.lines_sent);
  RaiseTo(lines_acked_, s.lines_acked);
  RaiseTo(lines_resent_, s.lines_resent);
  RaiseTo(lines_duplicate_, s.duplicates);
  RaiseTo(batches_shipped_, s.batches_sent);
  RaiseTo(batches_acked_, s.batches_acked);
  RaiseTo(batches_retried_, s.retries);
  RaiseTo(reconnects_, s.reconnects);
  connected_->Set(s.connected ? 1 : 0);

  std::map<std::string, uint64_t> behind;
  for (const auto& [label, gauge] : lag_bytes_) behind[label] = 0;
  for (const FileProgress& f : tailer_->Progress()) {
    std::string label = "other";
    for (size_t i = 0; i < patterns_.size(); ++i) {
      // The live file itself, or a rotated copy beside it (mail.log.1, mail.log-2026.gz).
      if (Matches(patterns_[i], f.path) || Matches(patterns_[i] + "*", f.path)) {
        label = labels_[i];
        break;
      }
    }
    if (f.size > f.acked_offset) behind[label] += f.size - f.acked_offset;
  }
  const absl::Time now = clock_();
  for (const auto& [label, bytes] : behind) {
    lag_bytes_.at(label)->Set(static_cast<double>(bytes));
    double seconds = 0;
    if (bytes == 0) {
      behind_since_.erase(label);
    } else {
      auto [it, fresh] = behind_since_.emplace(label, now);
      seconds = fresh ? 0 : absl::ToDoubleSeconds(now - it->second);
    }
    lag_seconds_.at(label)->Set(seconds);
  }
}

std::string AgentMetrics::Text() const {
  return prometheus::TextSerializer().Serialize(refresher_->Collect());
}

}  // namespace maillens::agent
