// Where `search`, `trace`, `tail`, `report` and `archive list|verify|export` get their answers:
// a local data directory (LocalSource, over store::Store and store/retention.h) or a collector
// (RemoteSource, over the gRPC QueryService). Both answer with the same structs, so every
// command renders the same way from either (tests/remote_cli_test.sh compares the bytes).
//
// Thread-compatible: one source per command, used from one thread.
#ifndef MAILLENS_CLI_QUERY_SOURCE_H_
#define MAILLENS_CLI_QUERY_SOURCE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/common.h"
#include "maillens/v1/query.pb.h"
#include "store/query_proto.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace maillens::cli {

struct SearchSpec {
  std::vector<std::string> words;  // the search language, as typed
  // The window, resolved in the user's time zone; unset: what the words say (or unbounded).
  std::optional<int64_t> since_us;
  std::optional<int64_t> until_us;
  size_t limit = 100;
  bool oldest_first = false;  // the oldest `limit` messages, oldest first
  bool with_traces = false;   // the per-message grouping needs each line's trace
};

struct TraceAnswer {
  store::Trace trace;
  std::map<int64_t, std::vector<store::StoredLine>> lines;  // by message id, if asked
  std::vector<std::string> notices;                         // e.g. lines read from archived days
};

// One delivery of `tail`: lines oldest first, and how many the collector skipped before them
// because this reader fell behind.
struct TailChunk {
  std::vector<store::StoredLine> lines;
  uint64_t dropped = 0;
};

class QuerySource {
 public:
  virtual ~QuerySource() = default;

  virtual absl::StatusOr<store::SearchAnswer> Search(const SearchSpec& spec) = 0;
  // NotFound (with a message naming `id`) when no message matches.
  virtual absl::StatusOr<TraceAnswer> GetTrace(const std::string& id, bool with_lines) = 0;
  // Calls `each` for every trace with a message starting in [since_us, until_us).
  virtual absl::Status TracesIn(int64_t since_us, int64_t until_us, bool with_lines,
                                const std::function<void(const TraceAnswer&)>& each) = 0;
  // The newest `backlog` matching lines (store::TailBacklog), then with `follow` new ones as
  // they are stored, until `each` returns false or the stream ends. Following needs a
  // collector (only it sees lines as they are stored): FailedPrecondition from a data directory.
  virtual absl::Status Tail(const std::vector<std::string>& words, uint32_t backlog, bool follow,
                            const std::function<bool(const TailChunk&)>& each) = 0;
  // The report built and rendered where the data is (AnswerReport, report/render.h), so a
  // data directory and a collector give the same bytes. A request without a zone is shown in
  // this machine's zone locally, in UTC by a collector.
  virtual absl::StatusOr<maillens::v1::ReportResponse> Report(
      const maillens::v1::ReportRequest& request) = 0;
  // The archive (store/retention.h): its days, its verification, and a day's original lines
  // (hot or archived) host by host; `each` returning an error stops the export with it.
  virtual absl::StatusOr<maillens::v1::ArchiveListResponse> ArchiveList() = 0;
  virtual absl::StatusOr<store::VerifyResult> ArchiveVerify() = 0;
  virtual absl::Status ArchiveExport(
      int64_t day, const std::string& host,
      const std::function<absl::Status(const std::string& host, std::string_view line)>& each) = 0;
};

// The collector when global.server is set (needs a token from --token-file or
// $MAILLENS_TOKEN unless the collector's readers are open; TLS unless the server is on a
// loopback address or --allow-plaintext), else the local data directory (read-only).
// Errors are sentences for the user.
absl::StatusOr<std::unique_ptr<QuerySource>> OpenQuerySource(const GlobalOptions& global);

// A channel to the collector named by global.server (credentials, token and connection
// checked as for OpenQuerySource), for callers of services other than QueryService
// (`maillens status`).
struct CollectorConnection {
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::string token;  // send as "authorization: Bearer TOKEN" when not empty

  // Sets the token and, when given, a deadline on a call.
  void Prepare(grpc::ClientContext* context, std::optional<std::chrono::seconds> timeout) const;
  // The one place a gRPC status from the collector becomes an absl::Status, with a sentence
  // for the failures a user can act on; other codes keep the collector's words, which are the
  // same as a local store's.
  absl::Status Convert(const grpc::Status& status) const;
};
absl::StatusOr<CollectorConnection> ConnectToCollector(const GlobalOptions& global);

// Whether `target` ("host:port", "[::1]:port", "unix:/path") names this machine.
bool IsLoopbackTarget(const std::string& target);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_QUERY_SOURCE_H_
