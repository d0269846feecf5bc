#include "collector/server.h"

#include <grpc/support/log.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <deque>
#include <limits>
#include <map>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "collector/ingest_journal.h"
#include "collector/journal_codec.h"
#include "collector/metrics.h"
#include "collector/status_service.h"
#include "core/listen_address.h"
#include "core/parser.h"
#include "core/query_language.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "report/render.h"
#include "spdlog/spdlog.h"
#include "store/behind_worker.h"
#include "store/query_proto.h"
#include "store/store.h"

namespace maillens::collector {

namespace v1 = ::maillens::v1;

namespace {

// absl and gRPC status codes share google.rpc.Code's numbering, so the code maps one to one.
// This is the one place an absl::Status becomes a grpc::Status.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace

size_t EffectiveMaxMessageBytes(const ServerOptions& options) {
  const size_t line = std::min(options.max_line_bytes, options.max_message_bytes);
  const size_t needed = std::min<size_t>(line + kMessageOverheadBytes, INT_MAX);
  return std::max(options.max_message_bytes, needed);
}

// Live counters behind ServerStats.
struct Counters {
  std::atomic<uint64_t> streams_opened{0};
  std::atomic<uint64_t> streams_refused{0};
  std::atomic<uint64_t> batches_committed{0};
  std::atomic<uint64_t> batches_retried{0};
  std::atomic<uint64_t> batches_rejected{0};
  std::atomic<uint64_t> lines_stored{0};
  std::atomic<uint64_t> lines_duplicate{0};
  std::atomic<uint64_t> lines_truncated{0};
  std::atomic<uint64_t> queued_bytes{0};
  std::atomic<uint64_t> peak_queued_bytes{0};
  std::atomic<uint64_t> queries{0};
  IngestRate rate{absl::Now()};  // lines stored, for StatusService
};

namespace {

// The indexer and the store's threads behind it run at this nice value: when both want the
// CPU, acknowledging the agents' batches (the ingest thread, at 0) goes first, and indexing
// catches up after the burst (docs/STORAGE.md, "Decisions").
constexpr int kIndexNice = 5;
constexpr size_t kMaxHostNameBytes = 253;
constexpr size_t kMaxHostNames = 256;  // addresses + aliases one agent may announce
constexpr size_t kMinTokenBytes = 16;
constexpr size_t kMaxTokenBytes = 512;
constexpr size_t kDefaultSearchLimit = 100;
constexpr size_t kMaxSearchLimit = 10000;
constexpr size_t kMaxQueuedQueries = 64;
// 9999-12-31T23:59:59.999999Z: the last instant whose day fits the store's YYYYMMDD partitions.
constexpr int64_t kMaxTimeUs = 253402300799999999LL;
constexpr uint32_t kRetryAfterFullMs = 10000;
constexpr uint32_t kRetryAfterErrorMs = 1000;

// Peer-supplied text for a log line or a message: bounded, and without control bytes that
// could forge journal lines or garble a terminal.
std::string Printable(std::string_view s, size_t max = 80) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > max) out.append("...");
  return out;
}

std::string Msg(const absl::Status& status) { return std::string(status.message()); }

// Host names as syslog and agents write them: letters, digits, '.', '-', '_' (some sites use
// it), and ':' for an IPv6 address used as a name.
bool IsValidHostName(std::string_view s) {
  if (s.empty() || s.size() > kMaxHostNameBytes) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
           c == ':';
  });
}

std::string_view FirstLabel(std::string_view host) { return host.substr(0, host.find('.')); }

// A host's identity: DNS names are case-insensitive and "mx1." is "mx1", so "MX1", "mx1" and
// "mx1." must be one host, not three the store would keep apart.
std::string NormalizeHost(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return absl::AsciiStrToLower(core::ToAbsl(host));
}

// Whether a token issued for `allowed` may store lines of `host`: the same name, or the short
// name of an FQDN ("mx1" in the log, "mx1.example.org" in the tokens file), because syslog
// writes the short name while administrators think in FQDNs. Never the other way round: the
// token of "dmz" may not speak for "dmz.evil.example", which would be a new host of its making.
bool MaySpeakFor(std::string_view allowed, std::string_view host) {
  if (allowed == "*") return true;
  const std::string a = NormalizeHost(allowed);
  const std::string h = NormalizeHost(host);
  return h == a || (h.find('.') == std::string::npos && h == FirstLabel(a));
}

// Compares without an early exit, so the time taken does not tell how much of a guess was
// right.
bool SecureEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

enum class Role { kAgent, kReader };

}  // namespace

LogRateLimiter::LogRateLimiter(absl::Duration interval, std::function<absl::Time()> clock,
                               size_t max_keys)
    : interval_(interval),
      clock_(clock ? std::move(clock) : std::function<absl::Time()>(absl::Now)),
      max_keys_(max_keys) {}

std::optional<uint64_t> LogRateLimiter::Admit(std::string_view key) {
  const absl::Time now = clock_();
  core::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (now - it->second.logged < interval_) {
      ++it->second.held;
      ++suppressed_total_;
      return std::nullopt;
    }
    const uint64_t held = it->second.held;
    it->second = Entry{now, 0};
    return held;
  }
  if (entries_.size() >= max_keys_) {
    // Forget the keys quiet for an interval; what one of them held back is then lost, which
    // only ever shortens a later "(N more)", never hides a new kind of line.
    for (auto e = entries_.begin(); e != entries_.end();) {
      e = now - e->second.logged >= interval_ ? entries_.erase(e) : std::next(e);
    }
    if (entries_.size() >= max_keys_) return 0;  // every key busy: let it through
  }
  entries_.emplace(std::string(key), Entry{now, 0});
  return 0;
}

uint64_t LogRateLimiter::suppressed_total() const {
  core::MutexLock lock(&mu_);
  return suppressed_total_;
}

namespace {

// RouteGrpcLogs' state: gRPC's log hook is a plain function, so it lives here.
struct GrpcLogRoute {
  core::Mutex mu;
  std::shared_ptr<spdlog::logger> logger ABSL_GUARDED_BY(mu);
  std::shared_ptr<LogRateLimiter> limiter ABSL_GUARDED_BY(mu);
};

GrpcLogRoute& TheGrpcLogRoute() {
  static GrpcLogRoute* route = new GrpcLogRoute;  // never destroyed: gRPC may log at exit
  return *route;
}

void LogGrpcLine(gpr_log_func_args* args) {
  std::shared_ptr<spdlog::logger> logger;
  std::shared_ptr<LogRateLimiter> limiter;
  {
    GrpcLogRoute& route = TheGrpcLogRoute();
    core::MutexLock lock(&route.mu);
    logger = route.logger;
    limiter = route.limiter;
  }
  spdlog::level::level_enum level = args->severity == GPR_LOG_SEVERITY_ERROR ? spdlog::level::err
                                    : args->severity == GPR_LOG_SEVERITY_INFO
                                        ? spdlog::level::info
                                        : spdlog::level::debug;
  if (!logger->should_log(level)) return;
  const std::string message = args->message == nullptr ? "" : args->message;
  std::optional<uint64_t> held = limiter->Admit(message);
  if (!held) return;
  if (*held == 0) {
    logger->log(level, "grpc: {}", message);
  } else {
    logger->log(level, "grpc: {} ({} more like it since it was last shown)", message, *held);
  }
}

}  // namespace

void RouteGrpcLogs(std::shared_ptr<spdlog::logger> logger, std::function<absl::Time()> clock) {
  GrpcLogRoute& route = TheGrpcLogRoute();
  {
    core::MutexLock lock(&route.mu);
    route.logger = logger != nullptr ? std::move(logger) : spdlog::default_logger();
    route.limiter = std::make_shared<LogRateLimiter>(absl::Minutes(1), std::move(clock));
  }
  gpr_set_log_function(LogGrpcLine);
}

uint64_t GrpcLogLinesSuppressed() {
  GrpcLogRoute& route = TheGrpcLogRoute();
  core::MutexLock lock(&route.mu);
  return route.limiter == nullptr ? 0 : route.limiter->suppressed_total();
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokens(std::string_view text,
                                                    std::string_view source) {
  std::vector<TokenEntry> entries;
  std::map<std::string, int> seen;  // token -> line
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(core::ToAbsl(text), '\n')) {
    ++line_no;
    auto error = [&](std::string_view message) {
      return absl::InvalidArgumentError(
          absl::StrCat(core::ToAbsl(source), ":", line_no, ": ", core::ToAbsl(message)));
    };
    absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty() || trimmed.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(trimmed, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 2) {
      return error(absl::StrCat("expected 'NAME TOKEN', found ", fields.size(), " fields"));
    }
    std::string name(fields[0]);
    std::string token(fields[1]);
    if (name != "*" && !IsValidHostName(name)) {
      return error(absl::StrCat("'", Printable(name),
                                "' is not a host name (letters, digits, '.', '-', '_')"));
    }
    if (token.size() < kMinTokenBytes || token.size() > kMaxTokenBytes) {
      return error(absl::StrCat("the token for '", name, "' has ", token.size(),
                                " characters; use ", kMinTokenBytes, " to ", kMaxTokenBytes,
                                " (e.g. the output of 'openssl rand -hex 32')"));
    }
    if (!std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return error(absl::StrCat("the token for '", name, "' holds non-printable characters"));
    }
    if (auto it = seen.find(token); it != seen.end()) {
      return error(absl::StrCat("the token for '", name, "' is already used on line ", it->second,
                                "; every agent and reader needs its own"));
    }
    seen.emplace(token, line_no);
    entries.push_back(TokenEntry{std::move(name), std::move(token)});
  }
  return entries;
}

// Checks "authorization: Bearer TOKEN" against the agent and reader token lists.
// Thread-safe: immutable after construction.
class Authenticator {
 public:
  Authenticator(std::optional<std::vector<TokenEntry>> agents,
                std::optional<std::vector<TokenEntry>> readers)
      : agents_(std::move(agents)), readers_(std::move(readers)) {}

  // The caller's name for `role`: for agents the host the token may speak for ("*": any,
  // also when the role needs no token), for readers the token's label.
  absl::StatusOr<std::string> Check(
      const std::multimap<grpc::string_ref, grpc::string_ref>& metadata, Role role) const {
    const auto& own = role == Role::kAgent ? agents_ : readers_;
    const auto& other = role == Role::kAgent ? readers_ : agents_;
    const char* needs =
        role == Role::kAgent ? "ingest needs an agent token" : "queries need a reader token";
    auto range = metadata.equal_range("authorization");
    if (range.first == range.second) {
      if (!own) return std::string("*");
      return absl::UnauthenticatedError(
          absl::StrCat("missing 'authorization: Bearer TOKEN' metadata; ", needs));
    }
    if (std::next(range.first) != range.second) {
      return absl::UnauthenticatedError("more than one authorization header");
    }
    std::string_view value(range.first->second.data(), range.first->second.size());
    constexpr std::string_view kBearer = "bearer ";
    if (value.size() <= kBearer.size() ||
        !absl::EqualsIgnoreCase(core::ToAbsl(value.substr(0, kBearer.size())),
                                core::ToAbsl(kBearer))) {
      return absl::UnauthenticatedError("authorization metadata must be 'Bearer TOKEN'");
    }
    std::string_view token = value.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    if (other) {
      if (const std::string* name = Find(*other, token)) {
        return absl::PermissionDeniedError(
            role == Role::kAgent ? absl::StrCat("this is a reader token ('", *name,
                                                "'): it may query but not ingest; ", needs)
                                 : absl::StrCat("this is an agent token (host '", *name,
                                                "'): it may ingest but not query; ", needs));
      }
    }
    if (!own) return std::string("*");
    if (const std::string* name = Find(*own, token)) return *name;
    return absl::UnauthenticatedError(absl::StrCat("unknown token; ", needs));
  }

 private:
  // Compares against every entry, matched or not, so timing does not reveal which one.
  static const std::string* Find(const std::vector<TokenEntry>& entries, std::string_view token) {
    const std::string* found = nullptr;
    for (const TokenEntry& e : entries) {
      if (SecureEquals(e.token, token) && found == nullptr) found = &e.name;
    }
    return found;
  }

  std::optional<std::vector<TokenEntry>> agents_;
  std::optional<std::vector<TokenEntry>> readers_;
};

// The write side, in two threads. The ingest thread takes batches from a queue bounded by
// bytes, appends them to the ingest journal with one fdatasync for all it took, and reports
// each outcome: a batch is acknowledged once it is durable in the journal. The indexer thread
// reads the journal in order and applies it to the writable Store (lines, full-text index,
// correlation, the site's state), then releases what it applied. After a crash the indexer
// replays every record after the released watermark; the store ignores lines it already holds,
// so a replay adds nothing twice. The journal is bounded: past journal_max_bytes of records
// not yet indexed, the ingest thread waits for the indexer, and the queue's bound then stops
// the streams from reading (backpressure to the agents).
// Thread-safety: TryPush and Post from any thread; `done` callbacks run on the ingest thread,
// the OnStored callback on the indexer thread.
class StoreWriter {
 public:
  struct Task : JournalTask {
    size_t bytes = 0;
    // The outcome; runs on the ingest thread, so it must be short and must not block. `stored`
    // counts the lines made durable (accepted); duplicates are known only when indexed.
    std::function<void(absl::StatusOr<store::AppendStats>)> done;
  };

  StoreWriter(std::unique_ptr<store::Store> store, std::unique_ptr<IngestJournal> journal,
              size_t max_bytes, size_t journal_max_bytes, std::function<absl::Status()> fault,
              std::function<absl::Status()> index_fault,
              std::function<absl::Status()> applied_fault, Counters* counters, spdlog::logger* log)
      : store_(std::move(store)),
        journal_(std::move(journal)),
        max_bytes_(max_bytes),
        journal_max_bytes_(journal_max_bytes),
        fault_(std::move(fault)),
        index_fault_(std::move(index_fault)),
        applied_fault_(std::move(applied_fault)),
        counters_(counters),
        log_(log) {
    replay_until_ = journal_->last_seq();
    {
      core::MutexLock lock(&index_mu_);
      indexed_seq_ = journal_->released_seq();
    }
    ingest_thread_ = std::thread([this] { IngestLoop(); });
    index_thread_ = std::thread([this] { IndexLoop(); });
  }
  ~StoreWriter() { Stop(); }
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues *task (moving from it) when it fits, or when the queue is empty so that a batch
  // larger than the bound still gets through, and returns true. Otherwise leaves *task as it
  // was, keeps `on_space` to run on the ingest thread once a batch has been written, and
  // returns false; the caller then tries again.
  bool TryPush(Task* task, std::function<void()> on_space) {
    core::MutexLock lock(&mu_);
    if (bytes_ != 0 && bytes_ + task->bytes > max_bytes_) {
      waiters_.push_back(std::move(on_space));
      return false;
    }
    bytes_ += task->bytes;
    counters_->queued_bytes = bytes_;
    if (bytes_ > counters_->peak_queued_bytes) counters_->peak_queued_bytes = bytes_;
    queue_.push_back(std::move(*task));
    return true;
  }

  // Queues a small task however full the queue is: a stream's last word, which cannot wait
  // for room because its stream is gone.
  void Post(Task task) {
    core::MutexLock lock(&mu_);
    bytes_ += task.bytes;
    queue_.push_back(std::move(task));
  }

  // Called on the indexer thread after each successful Append that stored new lines (Tail's
  // fan-out); must be short and must not block. Set before anything is pushed.
  void SetOnStored(
      std::function<void(const std::vector<store::LineRecord>&, const store::AppendStats&)> f) {
    core::MutexLock lock(&mu_);
    on_stored_ = std::move(f);
  }
  // Commit latency and gaps go there (null: nowhere). Set before anything is pushed.
  void SetMetrics(CollectorMetrics* metrics) { metrics_ = metrics; }

  // Blocks until everything accepted so far is indexed (or `deadline`); true when it is.
  bool WaitIndexed(absl::Time deadline) {
    const uint64_t target = journal_->last_seq();
    core::MutexLock lock(&index_mu_);
    auto done = [this, target]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_) { return indexed_seq_ >= target; };
    return index_mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
  }

  // Records accepted and not yet indexed, and their bytes.
  uint64_t BacklogRecords() const { return journal_->pending_records(); }
  uint64_t BacklogBytes() const { return journal_->pending_bytes(); }

  // Journals what is queued, indexes everything journaled, then ends both threads. Call once
  // nothing pushes any more.
  void Stop() {
    {
      core::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (ingest_thread_.joinable()) ingest_thread_.join();
    {
      core::MutexLock lock(&index_mu_);
      index_stopping_ = true;
    }
    if (index_thread_.joinable()) index_thread_.join();
  }

 private:
  // Batches taken at once by the ingest thread: one fdatasync for all of them.
  static constexpr size_t kMaxGroupBytes = 16 << 20;
  // Payload the indexer applies in one Store::Append (two durable commits).
  static constexpr size_t kMaxIndexBytes = 8 << 20;

  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; }

  void IngestLoop() {
    std::string buffer;
    std::vector<std::string> encoded;
    while (true) {
      std::vector<Task> tasks;
      size_t group_bytes = 0;
      {
        core::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &StoreWriter::HasWork));
        if (queue_.empty()) return;  // stopping, and everything queued is journaled
        while (!queue_.empty() && (tasks.empty() || group_bytes < kMaxGroupBytes)) {
          group_bytes += queue_.front().bytes;
          tasks.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      absl::Status status = Journal(tasks, &encoded);
      if (!status.ok()) LogFailure(status);
      for (Task& task : tasks) {
        if (status.ok()) {
          store::AppendStats accepted;
          accepted.stored = task.lines.size();
          task.done(accepted);
        } else {
          task.done(status);
        }
      }
      std::vector<std::function<void()>> waiters;
      {
        core::MutexLock lock(&mu_);
        bytes_ -= group_bytes;
        counters_->queued_bytes = bytes_;
        waiters.swap(waiters_);
      }
      tasks.clear();  // frees the lines before waking the parked streams
      for (auto& waiter : waiters) waiter();
    }
  }

  // Makes `tasks` durable in the journal, after waiting (a while) for the indexer when the
  // journal holds too much it has not indexed.
  absl::Status Journal(const std::vector<Task>& tasks, std::vector<std::string>* encoded) {
    if (fault_) MAILLENS_RETURN_IF_ERROR(fault_());
    if (journal_->pending_bytes() > journal_max_bytes_) {
      core::MutexLock lock(&index_mu_);
      auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_) {
        return journal_->pending_bytes() <= journal_max_bytes_;
      };
      if (!index_mu_.AwaitWithTimeout(absl::Condition(&room), absl::Seconds(5))) {
        return absl::UnavailableError(
            absl::StrCat("the collector's indexing is behind by ", journal_->pending_bytes(),
                         " bytes of journaled batches (journal_max_bytes = ", journal_max_bytes_,
                         ")", index_error_.empty() ? "" : "; indexing fails: ", index_error_));
      }
    }
    encoded->resize(tasks.size());
    std::vector<std::string_view> views;
    views.reserve(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      (*encoded)[i].clear();
      EncodeJournalTask(tasks[i], &(*encoded)[i]);
      views.push_back((*encoded)[i]);
    }
    const absl::Time start = absl::Now();
    MAILLENS_RETURN_IF_ERROR(journal_->Append(views).status());
    if (metrics_ != nullptr) metrics_->ObserveCommit(absl::Now() - start);
    // Wakes the indexer: its wait reads the journal's last seq, and waits on index_mu_ are
    // checked again when it is released.
    core::MutexLock lock(&index_mu_);
    return absl::OkStatus();
  }

  // The store correlates one run behind (StoreOptions::correlate_behind): when Append of a
  // run returns, its lines are committed and the run before it is wholly committed (lines,
  // correlation, site updates), so that one is released then; the last run is flushed and
  // released once the journal has nothing more.
  void IndexLoop() {
    store::SetThreadNice(kIndexNice);
    uint64_t released = journal_->released_seq();
    uint64_t appended = released;  // records up to here are in the store, maybe not correlated
    bool sessions_closed = released >= replay_until_;  // then Start closed them
    std::vector<JournalRecord> records;
    while (true) {
      if (!sessions_closed && released >= replay_until_) {
        // Streams of a previous process are gone: their agents are offline until they
        // reconnect. After the replay of that process's journal, before anything new.
        absl::Status s = store_->CloseStaleAgentSessions();
        if (!s.ok()) log_->warn("could not close stale agent sessions: {}", Msg(s));
        sessions_closed = true;
      }
      {
        core::MutexLock lock(&index_mu_);
        auto work = [this, appended, released]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_) {
          return journal_->last_seq() > appended || appended > released || index_stopping_;
        };
        index_mu_.Await(absl::Condition(&work));
        if (journal_->last_seq() <= appended && appended == released) {
          return;  // stopping, and everything is indexed
        }
      }
      absl::Status status;
      uint64_t done = released;  // committed wholly once `status` is OK
      if (journal_->last_seq() <= appended) {
        // Caught up: the last run's correlation.
        status = store_->Flush();
        done = appended;
      } else {
        records.clear();
        status = journal_->Read(appended, kMaxIndexBytes, &records);
        if (status.ok() && !records.empty()) {
          status = Apply(records);
          if (status.ok()) {
            done = appended;
            appended = records.back().seq;
          }
        }
      }
      if (status.ok()) {
        if (done > released) {
          // A failure to record the release only means a replay of these records after a
          // restart, which stores nothing twice.
          absl::Status s = journal_->Release(done);
          if (!s.ok()) log_->warn("{}", Msg(s));
          released = done;
        }
        core::MutexLock lock(&index_mu_);
        indexed_seq_ = released;
        index_error_.clear();
        continue;
      }
      // Everything past the release is applied again (the store ignores lines it holds and
      // correlates from disk what a failed correlation left behind).
      appended = released;
      core::MutexLock lock(&index_mu_);
      index_error_ = Msg(status);
      LogFailure(status);
      // Try again in a second (a full disk frees up); when stopping, leave the rest for the
      // next start, which replays it.
      if (index_mu_.AwaitWithTimeout(absl::Condition(&index_stopping_), absl::Seconds(1))) return;
    }
  }

  // Decodes `records` and applies them in one Store::Append.
  absl::Status Apply(const std::vector<JournalRecord>& records) {
    if (index_fault_) MAILLENS_RETURN_IF_ERROR(index_fault_());
    std::vector<store::LineRecord> lines;
    std::vector<store::SiteUpdate> sites;
    for (const JournalRecord& record : records) {
      absl::StatusOr<JournalTask> task = DecodeJournalTask(record.payload);
      if (!task.ok()) {
        // Written by this program and checksummed: only a bug or a foreign file gets here.
        log_->error("ingest journal record {} cannot be read, skipped: {}", record.seq,
                    Msg(task.status()));
        continue;
      }
      if (!task->host_names.empty()) {
        MAILLENS_RETURN_IF_ERROR(store_->AddHostNames(task->host, task->host_names));
      }
      lines.insert(lines.end(), std::make_move_iterator(task->lines.begin()),
                   std::make_move_iterator(task->lines.end()));
      if (task->site) sites.push_back(std::move(*task->site));
    }
    const absl::Time start = absl::Now();
    MAILLENS_ASSIGN_OR_RETURN(store::AppendStats stats, store_->Append(lines, sites));
    if (applied_fault_) MAILLENS_RETURN_IF_ERROR(applied_fault_());
    if (metrics_ != nullptr) {
      metrics_->ObserveIndex(absl::Now() - start);
      for (const store::SiteUpdate& site : sites) metrics_->CountGaps(site.gaps.size());
    }
    // lines_stored is counted by the store as lines commit (StoreOptions::on_lines_committed):
    // stats.stored would miss the lines of a failed Append, which its retry finds as
    // duplicates.
    counters_->lines_duplicate += stats.duplicates;
    if (stats.held > 0) {
      // Stored in the catalog, not searchable until the archive is repaired (Store::Append).
      log_->warn(
          "{} lines held back, not searchable yet: their day is archived and the "
          "archive cannot be trusted ('maillens archive verify'); they are stored once "
          "it is repaired",
          stats.held);
    }
    if (stats.stored > 0 && on_stored_) on_stored_(lines, stats);
    return absl::OkStatus();
  }

  // A full disk fails every batch of every agent; one line per ten seconds says it.
  void LogFailure(const absl::Status& status) {
    core::MutexLock lock(&log_mu_);
    absl::Time now = absl::Now();
    if (now - last_failure_log_ < absl::Seconds(10)) {
      ++suppressed_failures_;
      return;
    }
    log_->error("storing failed (agents resend what was not acknowledged): {}{}", Msg(status),
                suppressed_failures_ == 0
                    ? std::string()
                    : absl::StrCat(" (", suppressed_failures_, " more failures not shown)"));
    last_failure_log_ = now;
    suppressed_failures_ = 0;
  }

  std::unique_ptr<store::Store> store_;  // used by the indexer thread only
  std::unique_ptr<IngestJournal> journal_;
  const size_t max_bytes_;
  const size_t journal_max_bytes_;
  std::function<absl::Status()> fault_;
  std::function<absl::Status()> index_fault_;
  std::function<absl::Status()> applied_fault_;
  CollectorMetrics* metrics_ = nullptr;  // borrowed, outlives the writer
  Counters* counters_;
  spdlog::logger* log_;
  uint64_t replay_until_ = 0;  // the journal's last record at start: a previous process's

  core::Mutex log_mu_;
  absl::Time last_failure_log_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();
  uint64_t suppressed_failures_ ABSL_GUARDED_BY(log_mu_) = 0;

  core::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;  // queued or being journaled
  std::vector<std::function<void()>> waiters_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Written under mu_ before the first push; read by the indexer after the push's record
  // went through the journal under index_mu_, so the read is ordered after the write.
  std::function<void(const std::vector<store::LineRecord>&, const store::AppendStats&)> on_stored_;

  // The indexer's side. The journal has its own lock; index_mu_ orders the two threads'
  // waits on it: the ingest thread signals new records (by releasing it), the indexer signals
  // progress (indexed_seq_) and shutdown is index_stopping_.
  core::Mutex index_mu_;
  uint64_t indexed_seq_ ABSL_GUARDED_BY(index_mu_) = 0;
  bool index_stopping_ ABSL_GUARDED_BY(index_mu_) = false;
  std::string index_error_ ABSL_GUARDED_BY(index_mu_);
  std::thread ingest_thread_;
  std::thread index_thread_;
};

// A few threads for queries, which block on SQLite and so must not run in reactions.
// Thread-safe.
class QueryPool {
 public:
  QueryPool(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~QueryPool() { Stop(); }

  // False when too many queries are already waiting.
  bool Submit(std::function<void()> work) {
    core::MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(work));
    return true;
  }

  // Runs what is queued, then joins the threads.
  void Stop() {
    {
      core::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; }

  void Run() {
    while (true) {
      std::function<void()> work;
      {
        core::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &QueryPool::HasWork));
        if (queue_.empty()) return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work();
    }
  }

  const size_t max_queued_;
  core::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

namespace {

// A stream refused before it started (bad token, shutting down).
class RefusedStream final : public grpc::ServerBidiReactor<v1::Batch, v1::Ack> {
 public:
  explicit RefusedStream(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// The lines of one batch stored cut, by who cut them under which limit: the warning and the
// acknowledgement say that, not merely that a line is short of its true length.
struct Cuts {
  // Longer than max_line_bytes as received: cut to it here.
  size_t here = 0;
  // Cut by the agent to max_line_bytes, the limit this collector announced to it.
  size_t by_agent_at_limit = 0;
  // Cut by the agent to fewer bytes: its own max_line_bytes, or to fit a message size it
  // learnt from refusals (a collector that announces no limits). Its log says which.
  size_t by_agent_below = 0;
  // One line of each kind, for the message: its stored length and its true length.
  uint64_t longer_example = 0;
  uint64_t below_kept = 0;
  uint64_t below_original = 0;

  size_t total() const { return here + by_agent_at_limit + by_agent_below; }

  std::string Describe(size_t max_line_bytes) const {
    std::vector<std::string> parts;
    if (here > 0) {
      parts.push_back(absl::StrCat(here, " line(s) longer than max_line_bytes (", max_line_bytes,
                                   "), cut to it here (e.g. one of ", longer_example, " bytes)"));
    }
    if (by_agent_at_limit > 0) {
      parts.push_back(absl::StrCat(by_agent_at_limit, " line(s) longer than max_line_bytes (",
                                   max_line_bytes, "), cut to it by the agent (e.g. one of ",
                                   longer_example, " bytes)"));
    }
    if (by_agent_below > 0) {
      parts.push_back(absl::StrCat(
          by_agent_below, " line(s) cut by the agent to fewer bytes than max_line_bytes (",
          max_line_bytes, "), e.g. to ", below_kept, " of ", below_original,
          " bytes: the agent's own max_line_bytes or a message size applied (its log says "
          "which)"));
    }
    return absl::StrCat(absl::StrJoin(parts, "; "),
                        "; stored truncated, with a marker giving each line's true length");
  }
};

v1::Ack MakeAck(uint64_t batch_id, const absl::StatusOr<store::AppendStats>& result,
                const Cuts& cuts, const ServerOptions& options) {
  v1::Ack ack;
  ack.set_batch_id(batch_id);
  if (result.ok()) {
    ack.set_status(v1::ACK_STATUS_COMMITTED);
    ack.set_stored(static_cast<uint32_t>(result->stored));
    ack.set_duplicates(static_cast<uint32_t>(result->duplicates));
    if (cuts.total() > 0) ack.set_detail(cuts.Describe(options.max_line_bytes));
  } else if (absl::IsInvalidArgument(result.status())) {
    ack.set_status(v1::ACK_STATUS_REJECTED);
    ack.set_detail(Msg(result.status()));
  } else if (absl::IsOutOfRange(result.status())) {
    // More than the limits the first acknowledgement announced: the agent splits it.
    ack.set_status(v1::ACK_STATUS_TOO_LARGE);
    ack.set_detail(Msg(result.status()));
  } else {
    ack.set_status(v1::ACK_STATUS_RETRY);
    ack.set_retry_after_ms(absl::IsResourceExhausted(result.status()) ? kRetryAfterFullMs
                                                                      : kRetryAfterErrorMs);
    ack.set_detail(absl::StrCat("not stored; resend later: ", Msg(result.status())));
  }
  return ack;
}

}  // namespace

// One agent stream. Reactions validate and queue; the writer thread reports outcomes through
// OnWritten and OnSpace. All state is under mu_. gRPC operations other than Finish are
// started under mu_ (they never run a reaction inline); Finish is called after releasing mu_
// and is the last thing a caller does with the object, because OnDone may delete it at once.
// The object lives until OnDone, which cannot come before Finish, which waits for every batch
// handed to the writer (pending_) to come back.
class IngestStream final : public grpc::ServerBidiReactor<v1::Batch, v1::Ack> {
 public:
  IngestStream(IngestServiceImpl* service, std::string agent, std::string peer)
      : service_(service),
        options_(*service->options_),
        log_(service->log_),
        agent_(std::move(agent)),
        peer_(std::move(peer)),
        host_(agent_ == "*" ? "" : NormalizeHost(agent_)) {}

  void Begin() {
    core::MutexLock lock(&mu_);
    reading_ = true;
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      reading_ = false;
      if (!ok) {
        read_closed_ = true;
      } else if (!finished_) {
        HandleBatch();
        if (!stop_reading_ && !parked_ && !cancelled_) {
          reading_ = true;
          StartRead(&batch_);
        }
      }
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      writing_ = false;
      slots_.pop_front();
      if (!ok) write_failed_ = true;  // the stream is gone; later acks are dropped
      WriteNext();
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  void OnCancel() override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      cancelled_ = true;
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  void OnDone() override {
    std::optional<std::string> announced;
    {
      core::MutexLock lock(&mu_);
      if (announced_) announced = announced_host_;
    }
    if (announced) {
      // The agent is offline from now unless another of its streams is open. Queued even when
      // the writer is full (it is small), before Unregister so that shutdown still writes it.
      StoreWriter::Task task;
      task.site.emplace();
      task.site->host = *announced;
      task.site->now_us = absl::ToUnixMicros(absl::Now());
      task.site->session = store::SiteUpdate::Session::kDisconnected;
      task.done = [](const absl::StatusOr<store::AppendStats>&) {};
      service_->writer_->Post(std::move(task));
    }
    service_->Unregister(this);
    log_->info("agent '{}' ({}) stream ended: {} batches, {} lines accepted{}", agent_, peer_,
               batches_, stored_, cancelled_ ? " (cancelled)" : "");
    delete this;
  }

  // From IngestServiceImpl::BeginShutdown, under the service's mutex (so OnDone, which takes
  // it, cannot run meanwhile).
  void StopReading() {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      stop_reading_ = true;
      if (final_status_.ok()) {
        final_status_ = grpc::Status(
            grpc::StatusCode::UNAVAILABLE,
            "the collector is shutting down; reconnect and resend unacknowledged batches");
      }
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

 private:
  // An acknowledgement in batch order; `ready` once the outcome is known. Slots are only
  // added at the back and removed at the front, so a pointer to one stays valid.
  struct Slot {
    v1::Ack ack;
    bool ready = false;
  };

  void HandleBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++batches_;
    const uint64_t batch_id = batch_.batch_id();
    StoreWriter::Task task;
    Cuts cuts;
    const bool probe = batch_.has_hello() && batch_.hello().probe();
    absl::Status status = probe ? CheckHello(batch_.hello()) : Convert(&task, &cuts);
    batch_.Clear();
    if (absl::IsPermissionDenied(status)) {
      // The stream speaks for a host its token does not cover: end it, after acknowledging
      // what came before.
      log_->warn("agent '{}' ({}): {}", agent_, peer_, Msg(status));
      final_status_ = ToGrpcStatus(status);
      stop_reading_ = true;
      return;
    }
    slots_.emplace_back();
    Slot* slot = &slots_.back();
    slot->ack.set_batch_id(batch_id);
    if (probe && status.ok()) {
      // `maillens doctor`: the token may speak for this host; nothing is stored.
      slot->ack.set_status(v1::ACK_STATUS_COMMITTED);
      slot->ready = true;
      WriteNext();
      return;
    }
    if (!status.ok()) {
      log_->warn("agent '{}' ({}): batch {} {}: {}", agent_, peer_, batch_id,
                 absl::IsOutOfRange(status) ? "too large" : "rejected", Msg(status));
      service_->counters_->batches_rejected++;
      slot->ack = MakeAck(batch_id, status, Cuts(), options_);
      slot->ready = true;
      WriteNext();
      return;
    }
    if (task.lines.empty() && task.host_names.empty() && !task.site) {
      slot->ack.set_status(v1::ACK_STATUS_COMMITTED);
      slot->ready = true;
      WriteNext();
      return;
    }
    if (cuts.total() > 0) {
      log_->warn("agent '{}' ({}): batch {}: {}", agent_, peer_, batch_id,
                 cuts.Describe(options_.max_line_bytes));
    }
    const bool connects = task.site && task.site->session == store::SiteUpdate::Session::kConnected;
    task.done = [this, slot, cuts, connects,
                 host = host_](absl::StatusOr<store::AppendStats> result) {
      if (connects && result.ok()) {
        core::MutexLock lock(&mu_);
        announced_ = true;
        announced_host_ = host;
      }
      OnWritten(slot, cuts, std::move(result));
    };
    ++pending_;
    if (!service_->writer_->TryPush(&task, [this] { OnSpace(); })) {
      parked_ = std::move(task);  // no StartRead until the writer has room: backpressure
    }
  }

  // The host of another agent's token that covers `name` when this stream's token does not,
  // or null (also when agents need no token).
  const std::string* OtherAgentsHost(std::string_view name) const {
    if (!options_.agent_tokens || MaySpeakFor(agent_, name)) return nullptr;
    for (const TokenEntry& entry : *options_.agent_tokens) {
      if (entry.name != "*" && MaySpeakFor(entry.name, name)) return &entry.name;
    }
    return nullptr;
  }

  // Whether the stream's token may announce `hello`'s host. InvalidArgument: not a host
  // name; PermissionDenied: the token is another host's.
  absl::Status CheckHello(const v1::AgentHello& hello) const {
    if (!IsValidHostName(hello.host())) {
      return absl::InvalidArgumentError(
          absl::StrCat("AgentHello.host '", Printable(hello.host()), "' is not a host name"));
    }
    if (!MaySpeakFor(agent_, hello.host())) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the token for '", agent_, "' may not speak for host '", Printable(hello.host()), "'"));
    }
    return absl::OkStatus();
  }

  // Validates the batch in batch_ and moves its lines into task->lines. InvalidArgument:
  // reject the batch; OutOfRange: too large, to be split; PermissionDenied: end the stream.
  absl::Status Convert(StoreWriter::Task* task, Cuts* cuts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (batch_.has_hello()) {
      const v1::AgentHello& hello = batch_.hello();
      MAILLENS_RETURN_IF_ERROR(CheckHello(hello));
      const std::string host = NormalizeHost(hello.host());
      if (host_ != host) {
        log_->info(
            "agent '{}' ({}) announces host '{}' ({} addresses, {} aliases, role '{}', "
            "version '{}')",
            agent_, peer_, host, hello.addresses_size(), hello.aliases_size(),
            Printable(hello.role()), Printable(hello.version()));
      }
      host_ = host;
      if (hello.addresses_size() + hello.aliases_size() > static_cast<int>(kMaxHostNames)) {
        return absl::InvalidArgumentError(absl::StrCat("AgentHello announces more than ",
                                                       kMaxHostNames, " addresses and aliases"));
      }
      for (const auto* names : {&hello.addresses(), &hello.aliases()}) {
        for (const std::string& name : *names) {
          if (!IsValidHostName(name)) {
            return absl::InvalidArgumentError(absl::StrCat(
                "AgentHello names '", Printable(name), "', which is not a host name or address"));
          }
          // A name another agent's token speaks for is that host's: as this agent's alias it
          // would re-point it (traces of mail relayed to it would end here).
          if (const std::string* owner = OtherAgentsHost(name)) {
            log_->warn("agent '{}' ({}): alias '{}' ignored: it names host '{}', another agent's",
                       agent_, peer_, Printable(name), *owner);
            continue;
          }
          task->host_names.push_back(NormalizeHost(name));
        }
      }
      task->host = host_;
    }
    if (static_cast<size_t>(batch_.events_size()) > options_.max_batch_events) {
      return absl::OutOfRangeError(absl::StrCat(
          "the batch has ", batch_.events_size(), " events; this collector takes at most ",
          options_.max_batch_events, " per batch (max_batch_events): send smaller batches"));
    }
    task->lines.reserve(batch_.events_size());
    for (int i = 0; i < batch_.events_size(); ++i) {
      v1::Event* ev = batch_.mutable_events(i);
      const std::string host = ev->host().empty() ? host_ : NormalizeHost(ev->host());
      if (host.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "event ", i, " has no host and the stream announced none (AgentHello.host)"));
      }
      if (!IsValidHostName(host)) {
        return absl::InvalidArgumentError(
            absl::StrCat("event ", i, " has host '", Printable(host), "', not a host name"));
      }
      if (!MaySpeakFor(agent_, host)) {
        return absl::InvalidArgumentError(absl::StrCat("event ", i, " is for host '", host,
                                                       "', but the token is for '", agent_, "'"));
      }
      store::LineRecord line;
      line.host = host;
      line.file_path = std::move(*ev->mutable_file()->mutable_path());
      line.fingerprint = ev->file().fingerprint();
      line.offset = ev->offset();
      // Clamped, not refused: a wild clock must not cost the line; the same input always
      // gives the same time, so a resend still finds its duplicate.
      line.time_us = std::clamp<int64_t>(ev->time_us(), 0, kMaxTimeUs);
      line.raw = std::move(*ev->mutable_raw());
      // Cut here, or by the agent (original_bytes: the true length, which the marker gives).
      const uint64_t original = std::max<uint64_t>(line.raw.size(), ev->original_bytes());
      if (line.raw.size() > options_.max_line_bytes || original > line.raw.size()) {
        if (line.raw.size() > options_.max_line_bytes) {
          ++cuts->here;
          cuts->longer_example = original;
        } else if (line.raw.size() == options_.max_line_bytes) {
          ++cuts->by_agent_at_limit;
          cuts->longer_example = original;
        } else {
          if (cuts->by_agent_below++ == 0) {
            cuts->below_kept = line.raw.size();
            cuts->below_original = original;
          }
        }
        line.raw.resize(std::min(line.raw.size(), options_.max_line_bytes));
        absl::StrAppend(&line.raw, kTruncationMarker, original, " bytes]");
      }
      task->bytes +=
          sizeof(store::LineRecord) + line.raw.size() + line.host.size() + line.file_path.size();
      task->lines.push_back(std::move(line));
    }
    MAILLENS_ASSIGN_OR_RETURN(
        task->site, SiteUpdateOfBatch(batch_, host_, task->lines, absl::ToUnixMicros(absl::Now())));
    return absl::OkStatus();
  }

  // Writer thread: the batch's outcome.
  void OnWritten(Slot* slot, const Cuts& cuts, absl::StatusOr<store::AppendStats> result) {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      --pending_;
      Counters* counters = service_->counters_;
      if (result.ok()) {
        // Accepted (journaled); the indexer counts what was new and what was held.
        counters->batches_committed++;
        counters->rate.Add(result->stored, absl::Now());
        counters->lines_truncated += cuts.total();
        stored_ += result->stored;
      } else if (absl::IsInvalidArgument(result.status())) {
        counters->batches_rejected++;
      } else {
        counters->batches_retried++;
      }
      slot->ack = MakeAck(slot->ack.batch_id(), result, cuts, options_);
      slot->ready = true;
      WriteNext();
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  // Writer thread: there may be room for the parked batch now.
  void OnSpace() {
    core::MutexLock lock(&mu_);
    if (!parked_) return;
    if (!service_->writer_->TryPush(&*parked_, [this] { OnSpace(); })) return;
    parked_.reset();
    if (!stop_reading_ && !cancelled_ && !read_closed_ && !reading_) {
      reading_ = true;
      StartRead(&batch_);
    }
  }

  // One write in flight: the oldest acknowledgement, once its outcome is known.
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_) return;
    if (write_failed_) {
      while (!slots_.empty() && slots_.front().ready) slots_.pop_front();
      return;
    }
    if (!slots_.empty() && slots_.front().ready) {
      if (!limits_sent_ && options_.announce_limits) {
        // The first acknowledgement (of the hello batch) tells the agent what fits.
        v1::CollectorLimits* limits = slots_.front().ack.mutable_limits();
        limits->set_max_batch_events(static_cast<uint32_t>(
            std::min<size_t>(options_.max_batch_events, std::numeric_limits<uint32_t>::max())));
        limits->set_max_message_bytes(EffectiveMaxMessageBytes(options_));
        limits->set_max_line_bytes(options_.max_line_bytes);
        limits_sent_ = true;
      }
      writing_ = true;
      StartWrite(&slots_.front().ack);
    }
  }

  // The status to finish with when nothing more will be read and every batch read has been
  // answered (or can no longer be); the caller calls Finish after releasing mu_.
  std::optional<grpc::Status> MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return std::nullopt;
    if (!read_closed_ && !stop_reading_ && !cancelled_) return std::nullopt;
    if (pending_ > 0 || writing_) return std::nullopt;
    if (!slots_.empty() && !write_failed_) return std::nullopt;
    finished_ = true;
    return final_status_;
  }

  IngestServiceImpl* const service_;
  const ServerOptions& options_;
  spdlog::logger* const log_;
  const std::string agent_;  // the host the token may speak for; "*" any
  const std::string peer_;

  core::Mutex mu_;
  v1::Batch batch_;  // the read target; touched by gRPC between StartRead and OnReadDone
  // The host of events that name none: the token's host until an AgentHello announces one.
  std::string host_ ABSL_GUARDED_BY(mu_);
  std::deque<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::optional<StoreWriter::Task> parked_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;  // batches with the writer, parked included
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool limits_sent_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  // For the log line at the end; read in OnDone, after every other reaction.
  uint64_t batches_ = 0;
  uint64_t stored_ = 0;  // lines accepted
  // The agent's connection is recorded (its hello batch committed): its end is recorded too.
  bool announced_ ABSL_GUARDED_BY(mu_) = false;
  std::string announced_host_ ABSL_GUARDED_BY(mu_);
};

IngestServiceImpl::IngestServiceImpl(const ServerOptions* options, const Authenticator* auth,
                                     StoreWriter* writer, Counters* counters, spdlog::logger* log)
    : options_(options), auth_(auth), writer_(writer), counters_(counters), log_(log) {}

IngestServiceImpl::~IngestServiceImpl() = default;

grpc::ServerBidiReactor<v1::Batch, v1::Ack>* IngestServiceImpl::Stream(
    grpc::CallbackServerContext* context) {
  std::string peer = context->peer();
  absl::StatusOr<std::string> agent = auth_->Check(context->client_metadata(), Role::kAgent);
  if (!agent.ok()) {
    counters_->streams_refused++;
    log_->warn("refused ingest stream from {}: {}", peer, Msg(agent.status()));
    return new RefusedStream(ToGrpcStatus(agent.status()));
  }
  core::MutexLock lock(&mu_);
  if (shutting_down_) {
    counters_->streams_refused++;
    return new RefusedStream(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "the collector is shutting down"));
  }
  auto* stream = new IngestStream(this, *agent, peer);
  streams_.insert(stream);
  counters_->streams_opened++;
  if (options_->metrics != nullptr) options_->metrics->AgentConnected();
  log_->info("agent '{}' connected from {}", *agent, peer);
  stream->Begin();
  return stream;
}

void IngestServiceImpl::BeginShutdown() {
  core::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (IngestStream* stream : streams_) stream->StopReading();
}

void IngestServiceImpl::WaitForStreams() {
  core::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](std::set<IngestStream*>* streams) { return streams->empty(); }, &streams_));
}

void IngestServiceImpl::Unregister(IngestStream* stream) {
  core::MutexLock lock(&mu_);
  streams_.erase(stream);
  if (options_->metrics != nullptr) options_->metrics->AgentDisconnected();
}

namespace {

// At most this many lines per TailResponse (a backlog or a burst is split).
constexpr size_t kTailLinesPerResponse = 500;
// Lines a follower may have waiting; beyond, new batches are dropped for it and counted.
constexpr size_t kTailBufferLines = 20000;
// Followers at once: each costs a parse per stored line (see TailStream::WriteNext).
constexpr size_t kMaxFollowers = 32;

absl::StatusOr<std::unique_ptr<store::Store>> OpenReader(const std::string& data_dir) {
  store::StoreOptions options;
  options.dir = data_dir;
  options.read_only = true;
  return store::Store::Open(options);
}

// Why a call taken from the pool should not run any more, or OK.
absl::Status CallState(grpc::CallbackServerContext* context) {
  if (context->IsCancelled()) return absl::CancelledError("the query was cancelled before it ran");
  if (std::chrono::system_clock::now() >= context->deadline()) {
    return absl::DeadlineExceededError("the query's deadline passed before it ran");
  }
  return absl::OkStatus();
}

// The search language of a request. Relative and local times in the words ("since:2h",
// "since:10:00") are read in UTC here; clients resolve the user's zone themselves and send
// since_us/until_us, which take precedence.
absl::StatusOr<core::Query> ParseWords(
    const google::protobuf::RepeatedPtrField<std::string>& words) {
  std::vector<std::string> args(words.begin(), words.end());
  return core::ParseQuery(args, absl::Now(), absl::UTCTimeZone());
}

absl::Status RunSearch(const std::string& data_dir, const v1::SearchRequest& request,
                       v1::SearchResponse* response) {
  MAILLENS_ASSIGN_OR_RETURN(core::Query parsed, ParseWords(request.words()));
  store::SearchQuery query;
  query.words = std::move(parsed.words);
  query.terms = std::move(parsed.terms);
  query.since_us = request.has_since_us() ? request.since_us() : parsed.since_us;
  query.until_us = request.has_until_us() ? request.until_us() : parsed.until_us;
  query.limit = request.limit() == 0 ? kDefaultSearchLimit : request.limit();
  query.oldest_first = request.oldest_first();
  std::vector<std::string> notices;
  if (query.limit > kMaxSearchLimit) {
    notices.push_back(absl::StrCat("limit lowered from ", request.limit(), " to ", kMaxSearchLimit,
                                   " (the collector's maximum)"));
    query.limit = kMaxSearchLimit;
  }
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, OpenReader(data_dir));
  MAILLENS_ASSIGN_OR_RETURN(store::SearchAnswer answer,
                            store::SearchWithTraces(store.get(), query, request.with_traces()));
  store::ToProto(answer, response);
  for (std::string& notice : notices) response->add_notices(std::move(notice));
  return absl::OkStatus();
}

absl::Status RunTrace(const std::string& data_dir, const v1::TraceRequest& request,
                      v1::TraceResponse* response) {
  if (request.id().empty()) {
    return absl::InvalidArgumentError("TraceRequest.id is empty: give a queue ID or message-id");
  }
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, OpenReader(data_dir));
  size_t matches = 0;
  MAILLENS_ASSIGN_OR_RETURN(store::Trace trace, store->GetTrace(request.id(), &matches));
  store::ToProto(trace, response->mutable_trace());
  if (std::string others = store::OtherTracesNotice(request.id(), matches); !others.empty()) {
    response->add_notices(std::move(others));
  }
  if (request.with_lines()) {
    MAILLENS_ASSIGN_OR_RETURN(auto lines, store::TraceLines(store.get(), trace));
    store::ToProto(lines, response->mutable_lines());
    for (std::string& notice : store::ArchiveReadNotices(*store, &trace)) {
      response->add_notices(std::move(notice));
    }
  }
  return absl::OkStatus();
}

// A stream refused before it started (bad token, bad request, shutting down).
template <typename Response>
class RefusedWrite final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWrite(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

// Newly stored lines, from the writer thread to every following Tail stream.
//
// Why a fan-out and not polling the store: "as they are stored" means storage order, which
// only the writer knows (an agent catching up stores old times; a poll by time would miss
// them or need a storage sequence the schema does not have). The cost to ingestion is one
// copy of each stored line while someone follows, and per follower a bounded queue append:
// a follower whose queue is full loses the batch (counted and reported to it), so a slow
// client never blocks or slows the writer.
// Thread-safe. Lock order: TailHub::mu_, then TailStream::mu_.
class TailHub {
 public:
  // False when shutting down or full.
  bool Add(TailStream* stream) {
    core::MutexLock lock(&mu_);
    if (shutting_down_ || streams_.size() >= kMaxFollowers) return false;
    streams_.insert(stream);
    return true;
  }
  void Remove(TailStream* stream) {
    core::MutexLock lock(&mu_);
    streams_.erase(stream);
  }
  bool HasFollowers() {
    core::MutexLock lock(&mu_);
    return !streams_.empty();
  }
  // Writer thread.
  void Publish(const std::shared_ptr<const std::vector<store::StoredLine>>& lines);
  // Ends every following stream (UNAVAILABLE) and refuses new ones.
  void BeginShutdown();

 private:
  core::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<TailStream*> streams_ ABSL_GUARDED_BY(mu_);
};

// One Tail call: the backlog (a search, on the pool), then with follow the lines the hub
// offers, filtered here, one write in flight. The follower registers before the backlog is
// searched, so no line falls between the two; a line stored in that instant may show twice. All
// state is under mu_; Finish is called after releasing mu_ and is the last use of the object
// (OnDone deletes it), and only once the backlog task, which holds a pointer to it, has reported.
class TailStream final : public grpc::ServerWriteReactor<v1::TailResponse> {
 public:
  TailStream(QueryServiceImpl* service, grpc::CallbackServerContext* context,
             const v1::TailRequest& request, core::Query query)
      : service_(service),
        context_(context),
        backlog_(request.backlog()),
        follow_(request.follow()),
        query_(std::move(query)) {
    for (std::string& w : query_.words) w = absl::AsciiStrToLower(w);
    // From the start, so that lines offered before the backlog is out wait behind it.
    core::MutexLock lock(&mu_);
    backlog_pending_ = backlog_ > 0;
  }

  void Begin() {
    // Before taking mu_: the hub's lock comes first (see TailHub).
    registered_ = follow_ && service_->tails_->Add(this);
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      starting_ = false;
      if (follow_ && !registered_) {
        follow_ = false;
        final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "the collector is shutting down or has too many followers");
        stopping_ = true;
      }
      if (stopping_) {
        backlog_pending_ = false;
      } else if (backlog_pending_) {
        if (!service_->pool_->Submit([this] { RunBacklog(); })) {
          backlog_pending_ = false;
          final_status_ = ToGrpcStatus(
              absl::ResourceExhaustedError("too many queries are waiting; try again shortly"));
          stopping_ = true;
        }
      }
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  // Hub, writer thread, under the hub's mutex.
  void Offer(const std::shared_ptr<const std::vector<store::StoredLine>>& lines) {
    core::MutexLock lock(&mu_);
    if (stopping_ || finished_ || cancelled_) return;
    if (buffered_ + lines->size() > kTailBufferLines) {
      dropped_ += lines->size();
    } else {
      buffered_ += lines->size();
      pending_.push_back(lines);
    }
    WriteNext();
  }

  // Hub, under the hub's mutex.
  void Stop() {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      stopping_ = true;
      if (final_status_.ok()) {
        final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "the collector is shutting down; tail again to go on");
      }
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        cancelled_ = true;
      } else {
        WriteNext();
      }
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  void OnCancel() override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      cancelled_ = true;
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  void OnDone() override {
    if (registered_) service_->tails_->Remove(this);
    delete this;
  }

 private:
  // Pool thread.
  void RunBacklog() {
    absl::Status status = CallState(context_);
    std::vector<store::StoredLine> lines;
    if (status.ok()) {
      absl::StatusOr<std::unique_ptr<store::Store>> store =
          OpenReader(service_->options_->data_dir);
      absl::StatusOr<std::vector<store::StoredLine>> backlog =
          store.ok() ? store::TailBacklog(store->get(), query_, backlog_)
                     : absl::StatusOr<std::vector<store::StoredLine>>(store.status());
      if (backlog.ok()) {
        lines = std::move(*backlog);
      } else {
        status = backlog.status();
      }
    }
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      backlog_pending_ = false;
      if (!status.ok()) {
        final_status_ = ToGrpcStatus(status);
        stopping_ = true;
      }
      for (size_t i = 0; i < lines.size(); i += kTailLinesPerResponse) {
        outbox_.emplace_back();
        for (size_t j = i; j < lines.size() && j < i + kTailLinesPerResponse; ++j) {
          store::ToProto(lines[j], outbox_.back().add_lines());
        }
      }
      WriteNext();
      finish = MaybeFinish();
    }
    if (finish) Finish(*finish);
  }

  // Whether a live line satisfies the request: every word occurs (case-insensitively; the
  // index's token match, approximated) and every field term holds.
  bool Matches(const store::StoredLine& line) {
    if (!query_.words.empty()) {
      std::string lower = absl::AsciiStrToLower(line.raw);
      for (const std::string& w : query_.words) {
        if (lower.find(w) == std::string::npos) return false;
      }
    }
    if (query_.terms.empty()) return true;
    core::Event ev = core::ParseLine(line.raw, &time_);
    return core::MatchesTerms(query_, ev, line.host);
  }

  // Starts the next write: the backlog first, then offered lines once the backlog is out.
  // Filtering happens here, on whichever thread finds the stream idle (the writer's, when a
  // line arrives at a quiet stream): one parse per line with field terms, bounded by
  // kTailLinesPerResponse per call when a reader is busy and by kMaxFollowers overall.
  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || cancelled_) return;
    if (!outbox_.empty()) {
      response_ = std::move(outbox_.front());
      outbox_.pop_front();
    } else if (backlog_pending_) {
      return;
    } else {
      response_.Clear();
      while (!pending_.empty() &&
             response_.lines_size() < static_cast<int>(kTailLinesPerResponse)) {
        const std::vector<store::StoredLine>& batch = *pending_.front();
        const store::StoredLine& line = batch[next_];
        if (Matches(line)) store::ToProto(line, response_.add_lines());
        --buffered_;
        if (++next_ == batch.size()) {
          pending_.pop_front();
          next_ = 0;
        }
      }
      response_.set_dropped(dropped_);
      dropped_ = 0;
      if (response_.lines_size() == 0 && response_.dropped() == 0) return;
    }
    writing_ = true;
    StartWrite(&response_);
  }

  std::optional<grpc::Status> MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Not before Begin is through: the hub may stop a stream it just registered.
    if (finished_ || writing_ || backlog_pending_ || starting_) return std::nullopt;
    bool done = cancelled_ || stopping_ || (!follow_ && outbox_.empty());
    if (!done) return std::nullopt;
    finished_ = true;
    return final_status_;
  }

  QueryServiceImpl* const service_;
  grpc::CallbackServerContext* const context_;
  const uint32_t backlog_;
  bool follow_;
  bool registered_ = false;  // in the hub; set in Begin, read in OnDone
  core::Query query_;        // words lower-cased
  core::TimeContext time_{core::TimeOptions()};

  core::Mutex mu_;
  std::deque<v1::TailResponse> outbox_ ABSL_GUARDED_BY(mu_);  // the backlog, ready to send
  std::deque<std::shared_ptr<const std::vector<store::StoredLine>>> pending_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;      // first unsent line of pending_.front()
  size_t buffered_ ABSL_GUARDED_BY(mu_) = 0;  // lines in pending_ not yet looked at
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  v1::TailResponse response_ ABSL_GUARDED_BY(mu_);  // the write in flight
  bool starting_ ABSL_GUARDED_BY(mu_) = true;
  bool backlog_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

void TailHub::Publish(const std::shared_ptr<const std::vector<store::StoredLine>>& lines) {
  core::MutexLock lock(&mu_);
  for (TailStream* stream : streams_) stream->Offer(lines);
}

void TailHub::BeginShutdown() {
  core::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (TailStream* stream : streams_) stream->Stop();
}

namespace {

// A server stream whose responses a pool thread produces: `produce` calls `emit` for each one.
// emit waits while kMaxQueued responses wait to be written, so a slow reader holds back the
// producer rather than filling memory (a day's export is gigabytes), and returns false once
// the call is cancelled or the client is gone: the producer then stops. One write in flight.
// Finish is called once, after releasing mu_, when the producer has returned and its responses
// are written (or the call is cancelled); it is the last use of the object (OnDone deletes it).
template <typename Response>
class ProducedStream final : public grpc::ServerWriteReactor<Response> {
 public:
  using Emit = std::function<bool(Response)>;
  using Producer = std::function<absl::Status(const Emit& emit)>;

  ProducedStream(QueryPool* pool, grpc::CallbackServerContext* context, Producer produce)
      : pool_(pool), context_(context), produce_(std::move(produce)) {}

  void Begin() {
    bool queued = pool_->Submit([this] { Produce(); });
    if (!queued) {
      this->Finish(ToGrpcStatus(
          absl::ResourceExhaustedError("too many queries are waiting; try again shortly")));
    }
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) cancelled_ = true;
      WriteNext();
      finish = MaybeFinish();
    }
    if (finish) this->Finish(*finish);
  }

  void OnCancel() override {
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      cancelled_ = true;
      finish = MaybeFinish();
    }
    if (finish) this->Finish(*finish);
  }

  void OnDone() override { delete this; }

 private:
  static constexpr size_t kMaxQueued = 64;

  // Pool thread.
  void Produce() {
    absl::Status status = CallState(context_);
    if (status.ok()) status = produce_([this](Response r) { return Push(std::move(r)); });
    std::optional<grpc::Status> finish;
    {
      core::MutexLock lock(&mu_);
      producing_ = false;
      if (!status.ok()) final_status_ = ToGrpcStatus(status);
      WriteNext();
      finish = MaybeFinish();
    }
    if (finish) this->Finish(*finish);
  }

  // Pool thread, inside produce_.
  bool Push(Response response) {
    core::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &ProducedStream::HasRoomOrCancelled));
    if (cancelled_) return false;
    outbox_.push_back(std::move(response));
    WriteNext();
    return true;
  }

  bool HasRoomOrCancelled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cancelled_ || outbox_.size() < kMaxQueued;
  }

  void WriteNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || cancelled_ || finished_ || outbox_.empty()) return;
    response_ = std::move(outbox_.front());
    outbox_.pop_front();
    writing_ = true;
    this->StartWrite(&response_);
  }

  std::optional<grpc::Status> MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || producing_) return std::nullopt;
    if (!cancelled_ && !outbox_.empty()) return std::nullopt;
    finished_ = true;
    return final_status_;
  }

  QueryPool* const pool_;
  grpc::CallbackServerContext* const context_;
  const Producer produce_;

  core::Mutex mu_;
  std::deque<Response> outbox_ ABSL_GUARDED_BY(mu_);
  Response response_ ABSL_GUARDED_BY(mu_);
  bool producing_ ABSL_GUARDED_BY(mu_) = true;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

// TracesIn: the window's traces (loaded at once, as the local `trace --all` does), one
// TraceResponse each.
absl::Status ProduceTraces(const std::string& data_dir, const v1::TracesInRequest& request,
                           const std::function<bool(v1::TraceResponse)>& emit) {
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, OpenReader(data_dir));
  int64_t since_us = request.has_since_us() ? request.since_us() : INT64_MIN;
  int64_t until_us = request.has_until_us() ? request.until_us() : INT64_MAX;
  MAILLENS_ASSIGN_OR_RETURN(std::vector<store::Trace> traces, store->TracesIn(since_us, until_us));
  for (const store::Trace& trace : traces) {
    v1::TraceResponse response;
    store::ToProto(trace, response.mutable_trace());
    if (request.with_lines()) {
      MAILLENS_ASSIGN_OR_RETURN(auto lines, store::TraceLines(store.get(), trace));
      store::ToProto(lines, response.mutable_lines());
    }
    if (!emit(std::move(response))) break;
  }
  return absl::OkStatus();
}

// ArchiveExport: the day's lines, up to kExportLinesPerResponse or kExportBytesPerResponse to a
// response (lines may be 64 KiB: the bytes bound what 64 waiting responses hold).
constexpr size_t kExportLinesPerResponse = 1000;
constexpr size_t kExportBytesPerResponse = 1 << 20;

absl::Status ProduceExport(const std::string& data_dir, const v1::ArchiveExportRequest& request,
                           const std::function<bool(v1::ArchiveExportResponse)>& emit) {
  v1::ArchiveExportResponse response;
  size_t bytes = 0;
  absl::Status status = store::ExportDay(
      data_dir, request.day(), request.host(),
      [&](const std::string& host, std::string_view line) -> absl::Status {
        v1::ExportedLine* out = response.add_lines();
        out->set_host(host);
        out->set_raw(std::string(line));
        bytes += host.size() + line.size();
        if (static_cast<size_t>(response.lines_size()) < kExportLinesPerResponse &&
            bytes < kExportBytesPerResponse) {
          return absl::OkStatus();
        }
        bool sent = emit(std::move(response));
        response.Clear();
        bytes = 0;
        return sent ? absl::OkStatus() : absl::CancelledError("the export was cancelled");
      });
  if (status.ok() && response.lines_size() > 0) emit(std::move(response));
  return status;
}

}  // namespace

QueryServiceImpl::QueryServiceImpl(const ServerOptions* options, const Authenticator* auth,
                                   QueryPool* pool, TailHub* tails, Counters* counters,
                                   spdlog::logger* log)
    : options_(options), auth_(auth), pool_(pool), tails_(tails), counters_(counters), log_(log) {}

absl::StatusOr<std::string> QueryServiceImpl::CheckReader(grpc::CallbackServerContext* context,
                                                          const char* method) {
  absl::StatusOr<std::string> reader = auth_->Check(context->client_metadata(), Role::kReader);
  if (!reader.ok()) {
    log_->warn("refused {} from {}: {}", method, context->peer(), Msg(reader.status()));
  } else {
    counters_->queries++;
  }
  return reader;
}

grpc::ServerUnaryReactor* QueryServiceImpl::Dispatch(grpc::CallbackServerContext* context,
                                                     const char* method,
                                                     std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> reader = CheckReader(context, method);
  if (!reader.ok()) {
    reactor->Finish(ToGrpcStatus(reader.status()));
    return reactor;
  }
  bool queued = pool_->Submit([context, reactor, work = std::move(work), method,
                               metrics = options_->metrics, start = absl::Now()] {
    absl::Status status = CallState(context);
    if (status.ok()) status = work();
    if (metrics != nullptr) metrics->ObserveQuery(method, absl::Now() - start);
    reactor->Finish(ToGrpcStatus(status));
  });
  if (!queued) {
    reactor->Finish(ToGrpcStatus(
        absl::ResourceExhaustedError("too many queries are waiting; try again shortly")));
  }
  return reactor;
}

grpc::ServerUnaryReactor* QueryServiceImpl::Search(grpc::CallbackServerContext* context,
                                                   const v1::SearchRequest* request,
                                                   v1::SearchResponse* response) {
  return Dispatch(context, "Search", [this, request, response] {
    return RunSearch(options_->data_dir, *request, response);
  });
}

grpc::ServerUnaryReactor* QueryServiceImpl::Trace(grpc::CallbackServerContext* context,
                                                  const v1::TraceRequest* request,
                                                  v1::TraceResponse* response) {
  return Dispatch(context, "Trace", [this, request, response] {
    return RunTrace(options_->data_dir, *request, response);
  });
}

grpc::ServerUnaryReactor* QueryServiceImpl::Report(grpc::CallbackServerContext* context,
                                                   const v1::ReportRequest* request,
                                                   v1::ReportResponse* response) {
  return Dispatch(context, "Report", [this, request, response] {
    return report::AnswerReport(options_->data_dir, *request, absl::UTCTimeZone(), response);
  });
}

grpc::ServerWriteReactor<v1::TraceResponse>* QueryServiceImpl::TracesIn(
    grpc::CallbackServerContext* context, const v1::TracesInRequest* request) {
  absl::StatusOr<std::string> reader = CheckReader(context, "TracesIn");
  if (!reader.ok()) return new RefusedWrite<v1::TraceResponse>(ToGrpcStatus(reader.status()));
  auto* stream = new ProducedStream<v1::TraceResponse>(
      pool_, context, [data_dir = options_->data_dir, request = *request](const auto& emit) {
        return ProduceTraces(data_dir, request, emit);
      });
  stream->Begin();
  return stream;
}

grpc::ServerUnaryReactor* QueryServiceImpl::ArchiveList(grpc::CallbackServerContext* context,
                                                        const v1::ArchiveListRequest* request,
                                                        v1::ArchiveListResponse* response) {
  return Dispatch(context, "ArchiveList", [this, response]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(*response, store::ListArchive(options_->data_dir));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueryServiceImpl::ArchiveVerify(grpc::CallbackServerContext* context,
                                                          const v1::ArchiveVerifyRequest* request,
                                                          v1::ArchiveVerifyResponse* response) {
  return Dispatch(context, "ArchiveVerify", [this, response]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(store::VerifyResult result, store::VerifyArchive(options_->data_dir));
    store::ToProto(result, response);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::ArchiveExportResponse>* QueryServiceImpl::ArchiveExport(
    grpc::CallbackServerContext* context, const v1::ArchiveExportRequest* request) {
  absl::StatusOr<std::string> reader = CheckReader(context, "ArchiveExport");
  if (!reader.ok()) {
    return new RefusedWrite<v1::ArchiveExportResponse>(ToGrpcStatus(reader.status()));
  }
  if (exports_running_.fetch_add(1) > 0) {
    exports_running_.fetch_sub(1);
    return new RefusedWrite<v1::ArchiveExportResponse>(ToGrpcStatus(absl::ResourceExhaustedError(
        "another archive export is running on the collector; try again when it has ended")));
  }
  // Counts the export as running until the stream is gone, whether or not its producer ran.
  std::shared_ptr<void> running(nullptr, [this](void*) { exports_running_.fetch_sub(1); });
  auto* stream = new ProducedStream<v1::ArchiveExportResponse>(
      pool_, context,
      [data_dir = options_->data_dir, request = *request, running](const auto& emit) {
        return ProduceExport(data_dir, request, emit);
      });
  stream->Begin();
  return stream;
}

grpc::ServerWriteReactor<v1::TailResponse>* QueryServiceImpl::Tail(
    grpc::CallbackServerContext* context, const v1::TailRequest* request) {
  absl::StatusOr<std::string> reader = CheckReader(context, "Tail");
  if (!reader.ok()) return new RefusedWrite<v1::TailResponse>(ToGrpcStatus(reader.status()));
  absl::StatusOr<core::Query> query = store::ParseTailQuery(
      std::vector<std::string>(request->words().begin(), request->words().end()));
  if (!query.ok()) return new RefusedWrite<v1::TailResponse>(ToGrpcStatus(query.status()));
  auto* stream = new TailStream(this, context, *request, std::move(*query));
  stream->Begin();
  return stream;
}

namespace {

absl::Status ValidateOptions(const ServerOptions& o) {
  if (o.data_dir.empty()) return absl::InvalidArgumentError("data_dir is not set");
  if (o.listen.empty()) return absl::InvalidArgumentError("listen is not set");
  if (o.max_batch_events == 0 || o.max_line_bytes == 0 || o.writer_queue_bytes == 0) {
    return absl::InvalidArgumentError(
        "max_batch_events, max_line_bytes and writer_queue_bytes must be positive");
  }
  if (o.max_message_bytes < 1024 || o.max_message_bytes > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes must be between 1 KiB and ", INT_MAX, " bytes"));
  }
  if (o.max_line_bytes > INT_MAX - kMessageOverheadBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_line_bytes must be at most ", INT_MAX - kMessageOverheadBytes, " bytes"));
  }
  if (o.query_threads < 1) return absl::InvalidArgumentError("query_threads must be positive");
  if (o.tls_cert_pem.empty() != o.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("tls_cert and tls_key must be given together");
  }
  if (!o.tls_client_ca_pem.empty() && o.tls_cert_pem.empty()) {
    return absl::InvalidArgumentError(
        "tls_client_ca (mutual TLS) needs the server's own tls_cert and tls_key");
  }
  const bool loopback = core::IsLoopbackListen(o.listen);
  if (o.tls_cert_pem.empty() && !loopback && !o.allow_plaintext) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", o.listen,
        " without TLS: tokens and mail logs would cross the network in clear. Set tls_cert "
        "and tls_key, listen on a loopback address, or set allow_plaintext = true"));
  }
  if (!loopback) {
    if (!o.agent_tokens) {
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to accept agents on ", o.listen,
                       " without tokens: set agent_tokens_file (lines 'HOST TOKEN')"));
    }
    if (!o.reader_tokens) {
      return absl::FailedPreconditionError(
          absl::StrCat("refusing to answer queries on ", o.listen,
                       " without tokens: set reader_tokens_file (lines 'NAME TOKEN')"));
    }
  }
  if (o.agent_tokens && o.reader_tokens) {
    for (const TokenEntry& a : *o.agent_tokens) {
      for (const TokenEntry& r : *o.reader_tokens) {
        if (a.token == r.token) {
          return absl::InvalidArgumentError(
              absl::StrCat("agent '", a.name, "' and reader '", r.name,
                           "' share a token; a token must be either an agent's or a reader's"));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

CollectorServer::CollectorServer() = default;

CollectorServer::~CollectorServer() { Shutdown(options_.shutdown_grace); }

absl::StatusOr<std::unique_ptr<CollectorServer>> CollectorServer::Start(ServerOptions options) {
  MAILLENS_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<CollectorServer> server(new CollectorServer());
  server->options_ = std::move(options);
  const ServerOptions& o = server->options_;
  server->logger_ = o.logger ? o.logger : spdlog::default_logger();
  spdlog::logger* log = server->logger_.get();

  store::StoreOptions store_options;
  store_options.dir = o.data_dir;
  store_options.durable = true;           // the journal's records are released once stored
  store_options.correlate_behind = true;  // correlating a run while storing the next
  store_options.behind_nice = kIndexNice;
  if (o.metrics != nullptr) {
    store_options.on_stored_event = [metrics = o.metrics](const core::Event& ev) {
      metrics->CountParsed(ev);
    };
  }
  server->counters_ = std::make_unique<Counters>();
  store_options.on_lines_committed = [counters = server->counters_.get()](uint64_t n) {
    counters->lines_stored += n;
  };
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::Store::Open(store_options));
  JournalOptions journal_options;
  journal_options.dir = o.data_dir + "/journal";
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<IngestJournal> journal,
                            IngestJournal::Open(journal_options));
  if (journal->pending_records() > 0) {
    // The indexer closes the previous process's agent sessions once it has replayed them.
    log->info("ingest journal: indexing {} batches a previous run acknowledged ({} bytes)",
              journal->pending_records(), journal->pending_bytes());
  } else {
    // Streams of a previous process are gone: their agents are offline until they reconnect.
    MAILLENS_RETURN_IF_ERROR(store->CloseStaleAgentSessions());
  }

  server->auth_ = std::make_unique<Authenticator>(o.agent_tokens, o.reader_tokens);
  server->writer_ = std::make_unique<StoreWriter>(
      std::move(store), std::move(journal), o.writer_queue_bytes, o.journal_max_bytes,
      o.append_fault, o.index_fault, o.applied_fault, server->counters_.get(), log);
  server->query_pool_ = std::make_unique<QueryPool>(o.query_threads, kMaxQueuedQueries);
  server->ingest_ = std::make_unique<IngestServiceImpl>(
      &o, server->auth_.get(), server->writer_.get(), server->counters_.get(), log);
  server->writer_->SetMetrics(o.metrics);
  server->counters_->rate.SetBacklogSource([writer = server->writer_.get()] {
    return std::make_pair(writer->BacklogRecords(), writer->BacklogBytes());
  });
  server->tails_ = std::make_unique<TailHub>();
  server->writer_->SetOnStored([tails = server->tails_.get()](
                                   const std::vector<store::LineRecord>& lines,
                                   const store::AppendStats& stats) {
    if (!tails->HasFollowers()) return;
    // The store does not say which lines of a batch were duplicates. A batch is partly a
    // resend when an agent restarted from an older checkpoint: its first lines are the ones
    // already held, so the last `stored` are the new ones.
    auto stored = std::make_shared<std::vector<store::StoredLine>>();
    size_t first = lines.size() - std::min<size_t>(stats.stored, lines.size());
    for (size_t i = first; i < lines.size(); ++i) {
      stored->push_back(store::StoredLine{
          lines[i].time_us, lines[i].host, lines[i].raw, store::DayOf(lines[i].time_us), 0, {}});
    }
    tails->Publish(stored);
  });
  server->query_ =
      std::make_unique<QueryServiceImpl>(&o, server->auth_.get(), server->query_pool_.get(),
                                         server->tails_.get(), server->counters_.get(), log);

  server->status_ = std::make_unique<StatusServiceImpl>(
      o.data_dir,
      [query = server->query_.get()](grpc::CallbackServerContext* context, const char* method,
                                     std::function<absl::Status()> work) {
        return query->Dispatch(context, method, std::move(work));
      },
      &server->counters_->rate);

  std::shared_ptr<grpc::ServerCredentials> credentials;
  const char* security = "plaintext";
  if (o.tls_cert_pem.empty()) {
    credentials = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl(
        o.tls_client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = o.tls_client_ca_pem;
    ssl.pem_key_cert_pairs.push_back({o.tls_key_pem, o.tls_cert_pem});
    credentials = grpc::SslServerCredentials(ssl);
    security = o.tls_client_ca_pem.empty() ? "TLS" : "mutual TLS";
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(o.listen, credentials, &server->port_);
  builder.RegisterService(server->ingest_.get());
  builder.RegisterService(server->query_.get());
  builder.RegisterService(server->status_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(EffectiveMaxMessageBytes(o)));
  // Agent streams live for days: ping quiet connections to notice a vanished agent, and let
  // agents ping us as often as every 10 s to keep NAT and firewall state alive.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || (server->port_ == 0 && !absl::StartsWith(o.listen, "unix:"))) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", o.listen,
        " (address in use or not local, or the TLS certificate and key are unusable; gRPC's "
        "message above says which)"));
  }
  log->info("maillens-collector listening on {} (port {}, {}), data in {}", o.listen, server->port_,
            security, o.data_dir);
  if (!o.agent_tokens) log->warn("no agent tokens configured: any local process may ingest");
  if (!o.reader_tokens) log->warn("no reader tokens configured: any local process may query");
  return server;
}

void CollectorServer::Shutdown(absl::Duration grace) {
  core::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ != nullptr) {
    logger_->info("shutting down: finishing open streams and queries (at most {}s)",
                  absl::ToInt64Seconds(grace));
    if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
    ingest_->BeginShutdown();
    tails_->BeginShutdown();  // followers never end by themselves
    // Refuses new calls, waits for the streams to drain and finish, cancels the rest at the
    // deadline. The writer keeps running meanwhile: draining streams wait for it.
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    ingest_->WaitForStreams();
  }
  if (writer_ != nullptr) writer_->Stop();
  if (query_pool_ != nullptr) query_pool_->Stop();
  if (server_ != nullptr) {
    server_->Wait();
    logger_->info("stopped: {} batches committed, {} lines stored since start",
                  counters_->batches_committed.load(), counters_->lines_stored.load());
  }
}

ServerStats CollectorServer::Stats() const {
  ServerStats s;
  const Counters& c = *counters_;
  s.streams_opened = c.streams_opened;
  s.streams_refused = c.streams_refused;
  s.batches_committed = c.batches_committed;
  s.batches_retried = c.batches_retried;
  s.batches_rejected = c.batches_rejected;
  s.lines_stored = c.lines_stored;
  s.lines_duplicate = c.lines_duplicate;
  s.lines_truncated = c.lines_truncated;
  s.queued_bytes = c.queued_bytes;
  s.peak_queued_bytes = c.peak_queued_bytes;
  s.queries = c.queries;
  if (writer_ != nullptr) {
    s.index_backlog_records = writer_->BacklogRecords();
    s.index_backlog_bytes = writer_->BacklogBytes();
  }
  return s;
}

bool CollectorServer::WaitIndexed(absl::Time deadline) {
  return writer_ == nullptr || writer_->WaitIndexed(deadline);
}

}  // namespace maillens::collector
