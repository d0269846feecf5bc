// The agent's shipper: streams the tailer's lines to the collector over gRPC and moves the
// tailer's checkpoint only when the collector acknowledges a batch as durably committed.
//
// One bidirectional stream at a time (IngestService.Stream). Batches are cut by line count,
// bytes or time, whichever comes first; at most max_in_flight batches wait for their
// acknowledgement, so memory stays bounded whatever the backlog.
//
// Never stuck on what the collector cannot take. Each stream starts with a batch holding only
// the AgentHello; its acknowledgement carries the collector's limits (events per batch,
// bytes per message, bytes per line), and every later batch is packed to fit them. A line
// longer than the collector's max_line_bytes is cut to it; a shorter one is always sent whole:
// a line that does not fit with what a batch holds already starts the next batch, and alone
// in its batch it has the whole message, sent without the fields the agent parsed out of it
// (the collector parses every line itself) and, if need be, without where the files stand.
// Only a line that does not fit a message even so is cut to fit (a collector enforces a
// message of at least max_line_bytes plus collector/server.h's kMessageOverheadBytes, so
// that happens with collectors that announce nothing). A cut line carries its true length in
// Event.original_bytes (the collector stores it with a marker giving that length). A batch
// refused anyway (a collector that announces no limits, or announces them wrong: TOO_LARGE
// or REJECTED, or a message gRPC refuses) makes the shipper halve its batches, down to single
// lines, and halve a single line it cannot get accepted; after a run of accepted batches they
// grow back.
// Through ShipperOptions::warn, once per distinct reason and then with a count at most once a
// warn_interval while it recurs: every refusal (a token refused, a batch rejected, a message
// too large), every line sent cut (who cut it under which limit: this agent's max_line_bytes,
// the collector's max_line_bytes or message size, or a size learnt from refusals), and a
// collector unreachable for unreachable_warn_after. Each stream that ends goes to
// ShipperOptions::log, as does a collector reachable again after such a warning. When the
// stream breaks (the collector died, the network went, the collector asked to retry later),
// everything not acknowledged is handed out again by the tailer (Rewind) and resent after a
// reconnect with exponential backoff and jitter; the collector ignores what it already holds.
//
// Thread-safety: Run() on one thread; Stop() and stats() from any thread.
#ifndef MAILLENS_AGENT_SHIPPER_H_
#define MAILLENS_AGENT_SHIPPER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/tailer.h"
#include "core/event.h"
#include "core/time_context.h"
#include "maillens/v1/ingest.grpc.pb.h"

namespace maillens::agent {

struct ShipperOptions {
  std::string collector;                                  // host:port
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // TLS or insecure
  std::string tls_server_name;  // overrides the name checked in the server's certificate
  std::string token;            // sent as "authorization: Bearer TOKEN"
  maillens::v1::AgentHello hello;
  size_t batch_lines = 2000;
  size_t batch_bytes = 1 << 20;
  absl::Duration batch_wait = absl::Milliseconds(200);
  size_t max_in_flight = 4;
  absl::Duration backoff_initial = absl::Milliseconds(200);
  absl::Duration backoff_max = absl::Seconds(30);
  absl::Duration keepalive = absl::Seconds(30);
  absl::TimeZone zone = absl::UTCTimeZone();  // of classic stamps
  // Glob patterns of the files said to be Dovecot's own log (agent/config_keys.h,
  // FilesEntry): a line of one of them that is not Dovecot's is warned about (a maillog listed
  // as Dovecot's). Rotated copies are known by their identity, met first under the pattern.
  std::vector<std::string> dovecot_patterns;
  // The host's Postfix queue (agent/queue_reader.h), read every queue_interval and sent with
  // the next batch, where it replaces the host's previous snapshot; unset: no queue view.
  std::function<maillens::v1::QueueSnapshot()> read_queue;
  absl::Duration queue_interval = absl::Seconds(60);
  // Where the shipper tells what happens (connected, lost, retrying); default: nothing.
  std::function<void(const std::string&)> log;
  // Where it tells why the collector refused something, why a line was sent cut, and that
  // the collector stays unreachable (for a warning or an error line): each distinct reason
  // once, then at most once a warn_interval with how often it recurred. Default: through `log`.
  std::function<void(const std::string&)> warn;
  absl::Duration warn_interval = absl::Minutes(1);
  // No stream accepted, and no answer from the collector, for this long: a warning (a
  // collector restarting is a blip, told through `log` only).
  absl::Duration unreachable_warn_after = absl::Minutes(1);
};

struct ShipperStats {
  uint64_t lines_sent = 0;  // counting resends
  uint64_t lines_acked = 0;
  uint64_t lines_resent = 0;  // sent on a stream that broke before their ack, so sent again
  uint64_t batches_sent = 0;
  uint64_t batches_acked = 0;
  uint64_t duplicates = 0;  // lines the collector already held
  uint64_t retries = 0;     // RETRY acknowledgements (collector busy or disk full)
  uint64_t reconnects = 0;
  uint64_t gaps_sent = 0;
  uint64_t batches_refused = 0;  // TOO_LARGE, REJECTED, or a message gRPC refused
  uint64_t lines_cut = 0;        // sent cut to fit the collector's limits (counting resends)
  // The collector's limits, as its last stream's first acknowledgement gave them (0: none).
  uint64_t limit_batch_events = 0;
  uint64_t limit_message_bytes = 0;
  uint64_t limit_line_bytes = 0;
  bool connected = false;
  std::string last_error;
};

class Shipper {
 public:
  // `tailer` must outlive the shipper.
  Shipper(Tailer* tailer, ShipperOptions options);
  ~Shipper();
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Ships until Stop(). Returns after the current stream is closed.
  void Run();
  void Stop();
  ShipperStats stats() const;

 private:
  struct InFlight {
    uint64_t batch_id;
    std::vector<TailedLine> lines;
    size_t bytes = 0;         // the serialized batch
    size_t largest_line = 0;  // raw bytes of its longest line, as sent
  };
  // What a refused batch held: the next batches are made smaller than it.
  struct Refused {
    size_t lines = 0;
    size_t bytes = 0;
    size_t largest_line = 0;
  };
  // How many times a reason was seen, and when it was last told.
  struct Reason {
    uint64_t count = 0;
    uint64_t untold = 0;
    absl::Time told = absl::InfinitePast();
  };

  // How a stream ended: why; whether the collector refused something (a token, a batch, a
  // message: for a warning); the batch it refused for its size or content, if one; whether
  // the collector accepted anything on it.
  struct StreamEnd {
    absl::Status why;
    bool refusal = false;
    std::optional<Refused> refused;
    absl::Duration retry_after = absl::ZeroDuration();
    bool connected = false;
  };
  // Who cut a line, under which limit (for the warning).
  enum class CutBy {
    kNone,
    kAgentMaxLine,      // the tailer, at this agent's max_line_bytes
    kCollectorMaxLine,  // the collector's announced max_line_bytes
    kCollectorMessage,  // to fit the collector's announced max_message_bytes
    kAgentMessage,      // to fit the largest message this agent sends (kMaxSendBytes)
    kRefusal,           // a size learnt from refusals of a collector that announces nothing
  };
  // A line polled and not yet in a batch, with why it was cut, if it was.
  struct Pending {
    TailedLine line;
    CutBy cut_by = CutBy::kNone;
    size_t limit = 0;  // the limit that cut it, in bytes
  };
  // One connection's lifetime; returns why it ended.
  StreamEnd RunStream(maillens::v1::IngestService::Stub* stub);
  // After a refused batch: batches (and a single line) smaller than it from now on.
  void Shrink(const Refused& refused);
  // Tells `reason` through options_.warn unless it was told less than warn_interval ago.
  void Warn(const std::string& reason);
  // The same, counting by `key` and telling `message` (a reason whose text varies: which
  // line, how long).
  void Warn(const std::string& key, const std::string& message);
  // Says who cut `pending`'s line under which limit, and its true length.
  std::string CutWarning(const Pending& pending) const;
  void FillEvent(const TailedLine& line, maillens::v1::Event* ev);
  // Warns when a line of a file said to be Dovecot's (dovecot_patterns) is not one of its.
  void CheckDovecotLine(const TailedLine& line, const core::Event& parsed);
  bool SleepUnlessStopped(absl::Duration d);
  void Log(const std::string& message);

  Tailer* tailer_;  // borrowed
  const ShipperOptions options_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  ShipperStats stats_;                             // guarded by mu_
  grpc::ClientContext* active_context_ = nullptr;  // guarded by mu_; to cancel on Stop
  uint64_t next_batch_id_ = 1;
  // Year inference follows each file's own stream of lines.
  std::map<FileKey, std::unique_ptr<core::TimeContext>> time_contexts_;
  // Files met under a dovecot_patterns pattern (their rotated copies keep the identity).
  std::set<FileKey> dovecot_files_;
  // Run's thread, and the stream's reader under mu_: the collector's limits (from the first
  // acknowledgement of the current stream; unset before it, or from a collector that gives
  // none), and the caps learnt from refused batches (SIZE_MAX: none).
  std::optional<maillens::v1::CollectorLimits> limits_;
  size_t cap_lines_ = SIZE_MAX;
  size_t cap_bytes_ = SIZE_MAX;
  size_t cap_line_bytes_ = SIZE_MAX;
  int accepted_since_shrink_ = 0;
  std::map<std::string, Reason> reasons_;  // Warn's; Run's thread only
  // Since when the collector has neither answered nor accepted anything, and whether a
  // warning said so (the first acknowledgement after it tells it is over). Guarded by mu_.
  absl::Time unreachable_since_ = absl::InfinitePast();
  bool unreachable_warned_ = false;
};

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_SHIPPER_H_
