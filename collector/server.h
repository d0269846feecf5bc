// The collector's gRPC front door: agents stream batches of maillog lines in (IngestService),
// the CLI asks questions (QueryService) and for the site's state (StatusService,
// collector/status_service.h), load balancers and systemd probe the standard health
// service (grpc.health.v1.Health).
//
// Ingest path. Each agent stream has a reactor (gRPC callback API) whose reactions only
// validate, convert and queue: one batch is read at a time, turned into LineRecords and handed
// to the writer's ingest thread, which appends the batches it holds to the ingest journal
// (DATA_DIR/journal, collector/ingest_journal.h) with one fdatasync and posts the outcomes
// back; the reactor writes acknowledgements one at a time, in batch order. COMMITTED means
// durable (in the journal: it survives a crash of the process or the machine); RETRY means
// nothing of the batch was kept (disk full, I/O error) and it may be resent; REJECTED means it
// can never be accepted as sent. What a batch says about its agent (hello, gaps, file
// progress: store/site_state.h) is journaled with its lines. A stream's end records its
// agent offline.
// Indexing. The writer's indexer thread applies the journal in order to the writable Store
// (lines, full-text index, correlation, site state: one Store::Append per run of batches) and
// then releases it; a crash replays what was not released, and the store ignores lines it
// holds, so nothing is lost or doubled. Searches see a line once it is indexed, normally
// within a second; ServerStats and `maillens status` show how far indexing is behind, and
// past journal_max_bytes behind, acknowledgements wait for it.
// Backpressure: the writer queue is bounded by bytes; a reactor whose batch does not fit
// parks it and does not read the next one until the writer frees space, so memory stays
// bounded and HTTP/2 flow control slows the agent down.
//
// Security. TLS (server certificate and key) or mutual TLS (plus a client CA: client
// certificates are required and verified). Plaintext is refused on anything but a loopback
// address unless ServerOptions::allow_plaintext. Callers present "authorization: Bearer TOKEN";
// agent tokens may only ingest, and only for the host their tokens file names (or its short
// name: "mx1" for "mx1.example.org", never "mx1.evil.example" for "mx1"); host names are
// normalised (lower case, no trailing dot: "MX1." is "mx1"), and an agent's aliases that name
// another agent's host are ignored, so a token cannot make up or take over a host. Reader tokens
// may only query. Without a tokens file for a role the role is open, which Start() allows on
// loopback addresses only.
//
// Limits. The first acknowledgement of every stream (of its hello batch) announces them
// (Ack.limits: max_batch_events, max_message_bytes, max_line_bytes), and the agent sizes its
// batches and cuts its lines to fit (agent/shipper.h). A line of max_line_bytes must fit one
// message together with the rest of its event and batch, so the message size announced and
// enforced is EffectiveMaxMessageBytes(): max_message_bytes, raised when needed to
// max_line_bytes + kMessageOverheadBytes. gRPC refuses a larger message (the stream ends with
// RESOURCE_EXHAUSTED). A batch with more than max_batch_events events is answered TOO_LARGE
// with a detail and the stream goes on. A line longer than max_line_bytes, or cut by the agent
// (Event.original_bytes), is stored as its first max_line_bytes bytes at most, followed by
// kTruncationMarker with the line's true length, and the ack's detail and the collector's
// warning say who cut it under which limit (this collector's max_line_bytes, here or by the
// agent; or the agent's own limits): the rest of the line is lost, but the line's identity,
// time and searchable start are kept and the agent is never stuck on a line it cannot change.
// A hello with `probe` set (`maillens doctor`) is checked (token, host) and acknowledged, and
// nothing of it is stored.
//
// Shutdown. Shutdown() stops accepting streams and reading batches; batches already read are
// journaled and acknowledged before each stream ends with UNAVAILABLE, and the indexer applies
// the whole journal before the writer stops. An ack is only ever
// sent after the batch is durable, so an interrupted shutdown can lose an ack, never a line.
//
// Thread-safety: CollectorServer's methods may be called from any thread.
#ifndef MAILLENS_COLLECTOR_SERVER_H_
#define MAILLENS_COLLECTOR_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/mutex.h"
#include "maillens/v1/ingest.grpc.pb.h"
#include "maillens/v1/query.grpc.pb.h"
#include "spdlog/logger.h"

namespace maillens::collector {

// Appended to a line cut at max_line_bytes; the number is the line's original length.
inline constexpr char kTruncationMarker[] = " [maillens: truncated, line had ";

// What a batch holding a single line needs besides the line's bytes: the rest of its event
// (host name, file path up to PATH_MAX, offsets, time; an agent leaves out the fields it parsed
// from a line that would not fit with them, the collector parses every line itself), the
// batch's id and where each of the agent's files stands.
inline constexpr size_t kMessageOverheadBytes = 16 * 1024;

struct ServerOptions;
// The largest message (one serialized batch) the server accepts and announces:
// max_message_bytes, or more when a line of max_line_bytes (of max_message_bytes, if that is
// smaller) would not fit one with kMessageOverheadBytes, so that such a line always arrives
// whole.
size_t EffectiveMaxMessageBytes(const ServerOptions& options);

class CollectorMetrics;

// Lets one log line per key through per `interval` and counts the ones it holds back, so that
// the next line let through can say how many there were. Keys are bounded (max_keys): when
// full, keys not seen for an interval are forgotten, and a key that still finds no room is let
// through (never silently dropped). Thread-safe.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration interval = absl::Minutes(1),
                          std::function<absl::Time()> clock = nullptr, size_t max_keys = 1024);

  // nullopt: hold this line back (counted). Otherwise log it, with the number of lines of
  // `key` held back since the last one that was logged.
  std::optional<uint64_t> Admit(std::string_view key);

  // Lines held back since construction, for tests and status.
  uint64_t suppressed_total() const;

 private:
  struct Entry {
    absl::Time logged;  // when a line of the key was last let through
    uint64_t held = 0;  // held back since
  };
  const absl::Duration interval_;
  const std::function<absl::Time()> clock_;
  const size_t max_keys_;
  mutable core::Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t suppressed_total_ ABSL_GUARDED_BY(mu_) = 0;
};

// Sends gRPC's own log lines (a failed TLS handshake, a bad frame) to `logger`, each distinct
// message at most once a minute (by `clock`, null: absl::Now) with a count of the repeats held
// back: a scanner or a misconfigured agent reconnecting in a loop must not flood the journal.
// gRPC's handshake messages name the reason but not the peer, so the key is the message. Null
// `logger`: spdlog's default logger. Process-wide, like gRPC's logging itself.
void RouteGrpcLogs(std::shared_ptr<spdlog::logger> logger,
                   std::function<absl::Time()> clock = nullptr);
// The lines RouteGrpcLogs held back since it was last called.
uint64_t GrpcLogLinesSuppressed();

// One line of a tokens file.
struct TokenEntry {
  std::string name;   // agents: the host the agent may speak for ("*": any); readers: a label
  std::string token;  // the bearer token
};

// Parses a tokens file's contents: one `NAME TOKEN` per line, blank lines and '#' comment
// lines ignored. Tokens are 16 to 512 printable ASCII characters without spaces and unique
// within the file. Errors name "source:line".
absl::StatusOr<std::vector<TokenEntry>> ParseTokens(std::string_view text, std::string_view source);

struct ServerOptions {
  // "host:port" (port 0 picks a free port, see CollectorServer::port()), "[::1]:port", or
  // "unix:/path".
  std::string listen = "127.0.0.1:7411";
  std::string data_dir;

  // TLS, as PEM text. No certificate: plaintext (see allow_plaintext). A client CA turns on
  // mutual TLS: every client must present a certificate it signed.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  std::string tls_client_ca_pem;
  // Permits plaintext on a non-loopback address. Tokens then cross the network in clear.
  bool allow_plaintext = false;

  // nullopt: the role needs no token (allowed on loopback addresses only).
  std::optional<std::vector<TokenEntry>> agent_tokens;
  std::optional<std::vector<TokenEntry>> reader_tokens;

  size_t max_batch_events = 10000;
  // Longest line stored whole; see "Limits" above.
  size_t max_line_bytes = 64 * 1024;
  // Largest batch message, raised to what one line of max_line_bytes needs (see
  // EffectiveMaxMessageBytes). The configuration file refuses max_line_bytes above it; here it
  // is allowed, and then max_message_bytes is the longest line that arrives whole.
  size_t max_message_bytes = 16 * 1024 * 1024;
  // Bytes of batches queued for (or being written by) the writer. A single batch larger than
  // this is still taken when the queue is empty, so the bound is this plus one batch.
  size_t writer_queue_bytes = 64 * 1024 * 1024;
  // Acknowledged batches the ingest journal may hold before the indexer has applied them
  // (DATA_DIR/journal). Past it, acknowledgements wait for the indexer.
  size_t journal_max_bytes = size_t{1} << 30;
  // Threads running queries; each query opens its own read-only Store.
  int query_threads = 2;
  // How long SIGTERM-style shutdown waits for streams and queries before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(30);

  // Test hook: called by the writer before it journals each group of batches; a non-OK
  // status is treated as the journal's (nothing kept, the batches answered RETRY). Lets tests
  // simulate a full disk, or hold a batch in flight by blocking.
  std::function<absl::Status()> append_fault;
  // Test hook: called by the indexer before it applies each run of journaled batches; a
  // non-OK status is treated as the store's (nothing of the run is released, and it is
  // applied again a second later). Lets tests hold indexing behind the acknowledgements.
  std::function<absl::Status()> index_fault;
  // Test hook: called by the indexer after Store::Append of a run returned OK; a non-OK
  // status is treated as the Append's own failure after its lines were committed (as when
  // the correlation or the full-text index fails behind them): the run is applied again and
  // finds those lines held.
  std::function<absl::Status()> applied_fault;

  // Test hook: false leaves the limits out of the first acknowledgement, as a collector older
  // than Ack.limits did (the agent then learns them from refusals).
  bool announce_limits = true;

  // Prometheus hooks (commit and query latency, parse outcomes, gaps, agents connected);
  // null: none. Borrowed; must outlive the server.
  CollectorMetrics* metrics = nullptr;

  // Where messages go; null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

// Counters since Start; for tests and status pages.
struct ServerStats {
  uint64_t streams_opened = 0;
  uint64_t streams_refused = 0;  // bad or missing token, wrong role, shutting down
  uint64_t batches_committed = 0;
  uint64_t batches_retried = 0;
  uint64_t batches_rejected = 0;
  uint64_t lines_stored = 0;
  uint64_t lines_duplicate = 0;
  uint64_t lines_truncated = 0;
  uint64_t queued_bytes = 0;       // writer queue now
  uint64_t peak_queued_bytes = 0;  // writer queue at its fullest
  // Acknowledged batches in the ingest journal that the indexer has not applied yet.
  uint64_t index_backlog_records = 0;
  uint64_t index_backlog_bytes = 0;
  uint64_t queries = 0;
};

class Authenticator;
class IngestStream;
class QueryPool;
class StatusServiceImpl;
class StoreWriter;
class TailHub;
class TailStream;
class TracesInStream;
struct Counters;

// IngestService.Stream. Borrowed pointers must outlive the service.
class IngestServiceImpl final : public maillens::v1::IngestService::CallbackService {
 public:
  IngestServiceImpl(const ServerOptions* options, const Authenticator* auth, StoreWriter* writer,
                    Counters* counters, spdlog::logger* log);
  ~IngestServiceImpl() override;

  grpc::ServerBidiReactor<maillens::v1::Batch, maillens::v1::Ack>* Stream(
      grpc::CallbackServerContext* context) override;

  // Refuses new streams and tells every open stream to stop reading; each ends (UNAVAILABLE)
  // once the batches it already read are committed and acknowledged.
  void BeginShutdown();
  // Blocks until every stream has ended (called after grpc::Server::Shutdown, which cancels
  // streams still open at its deadline).
  void WaitForStreams();

 private:
  friend class IngestStream;
  void Unregister(IngestStream* stream);

  const ServerOptions* options_;
  const Authenticator* auth_;
  StoreWriter* writer_;
  Counters* counters_;
  spdlog::logger* log_;
  core::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<IngestStream*> streams_ ABSL_GUARDED_BY(mu_);
};

// QueryService. Search and Trace check the caller's token and hand the query to a pool
// thread, which honours the call's deadline and cancellation before running it on a
// read-only Store opened for the call (so it sees hosts and days added since start).
// TracesIn and ArchiveExport produce their responses on a pool thread, which waits while too
// many wait to be written (a slow reader holds the producer, not memory). Tail
// sends its backlog the same way, then (follow) lines as the writer stores them, through
// `tails` (a bounded fan-out: a slow reader loses lines and is told how many, ingestion never
// waits for it).
class QueryServiceImpl final : public maillens::v1::QueryService::CallbackService {
 public:
  // Borrowed pointers must outlive the service.
  QueryServiceImpl(const ServerOptions* options, const Authenticator* auth, QueryPool* pool,
                   TailHub* tails, Counters* counters, spdlog::logger* log);

  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* context,
                                   const maillens::v1::SearchRequest* request,
                                   maillens::v1::SearchResponse* response) override;
  grpc::ServerUnaryReactor* Trace(grpc::CallbackServerContext* context,
                                  const maillens::v1::TraceRequest* request,
                                  maillens::v1::TraceResponse* response) override;
  grpc::ServerWriteReactor<maillens::v1::TraceResponse>* TracesIn(
      grpc::CallbackServerContext* context, const maillens::v1::TracesInRequest* request) override;
  grpc::ServerWriteReactor<maillens::v1::TailResponse>* Tail(
      grpc::CallbackServerContext* context, const maillens::v1::TailRequest* request) override;
  // Built and rendered here (report/render.h), in the request's zone, else UTC.
  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* context,
                                   const maillens::v1::ReportRequest* request,
                                   maillens::v1::ReportResponse* response) override;
  // The archive of the data directory (store/retention.h), as `maillens --data` reads it. One
  // export at a time (another is refused, RESOURCE_EXHAUSTED): an export holds a pool thread
  // for as long as its reader takes, and the other threads must stay free for queries.
  grpc::ServerUnaryReactor* ArchiveList(grpc::CallbackServerContext* context,
                                        const maillens::v1::ArchiveListRequest* request,
                                        maillens::v1::ArchiveListResponse* response) override;
  grpc::ServerUnaryReactor* ArchiveVerify(grpc::CallbackServerContext* context,
                                          const maillens::v1::ArchiveVerifyRequest* request,
                                          maillens::v1::ArchiveVerifyResponse* response) override;
  grpc::ServerWriteReactor<maillens::v1::ArchiveExportResponse>* ArchiveExport(
      grpc::CallbackServerContext* context,
      const maillens::v1::ArchiveExportRequest* request) override;

 private:
  friend class TailStream;
  friend class CollectorServer;  // lends Dispatch to StatusService
  // Checks the token, then runs `work` on the pool and finishes the call with its status.
  grpc::ServerUnaryReactor* Dispatch(grpc::CallbackServerContext* context, const char* method,
                                     std::function<absl::Status()> work);
  // The caller's reader name, or why it may not query (logged).
  absl::StatusOr<std::string> CheckReader(grpc::CallbackServerContext* context, const char* method);

  const ServerOptions* options_;
  const Authenticator* auth_;
  QueryPool* pool_;
  TailHub* tails_;
  Counters* counters_;
  spdlog::logger* log_;
  std::atomic<int> exports_running_{0};
};

// The whole server: store writer, query pool, services, gRPC server.
class CollectorServer {
 public:
  // Validates the options (TLS, plaintext and token safety, limits), opens the store and
  // starts listening.
  static absl::StatusOr<std::unique_ptr<CollectorServer>> Start(ServerOptions options);
  // Shuts down with options.shutdown_grace if Shutdown was not called.
  ~CollectorServer();
  CollectorServer(const CollectorServer&) = delete;
  CollectorServer& operator=(const CollectorServer&) = delete;

  // The port listened on (the chosen one when options.listen asked for port 0).
  int port() const { return port_; }

  // Graceful: health turns NOT_SERVING, new calls are refused, streams stop reading and
  // finish after acknowledging what they read, queries finish; after `grace` whatever is left
  // is cancelled. Then the writer commits what it still holds and stops. Idempotent.
  void Shutdown(absl::Duration grace);

  ServerStats Stats() const;

  // Blocks until every batch acknowledged so far is indexed (searchable), or `deadline`; true
  // when it is. For tests and tools that read the store right after an acknowledgement.
  bool WaitIndexed(absl::Time deadline);

 private:
  CollectorServer();

  ServerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::unique_ptr<Counters> counters_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<QueryPool> query_pool_;
  std::unique_ptr<TailHub> tails_;
  std::unique_ptr<IngestServiceImpl> ingest_;
  std::unique_ptr<QueryServiceImpl> query_;
  std::unique_ptr<StatusServiceImpl> status_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  core::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_SERVER_H_
