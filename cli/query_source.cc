#include "cli/query_source.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/query_language.h"
#include "core/status_macros.h"
#include "maillens/v1/query.grpc.pb.h"
#include "report/render.h"
#include "store/retention.h"
#include "store/store.h"

namespace maillens::cli {
namespace {

namespace v1 = ::maillens::v1;

// How long one question may take (a broad search over months, --all over a long window).
constexpr std::chrono::seconds kCallTimeout = std::chrono::minutes(10);
// Verifying (and listing, which reads the chain head) hashes every archive file.
constexpr std::chrono::seconds kArchiveTimeout = std::chrono::hours(1);
// How long to wait for the collector to answer at all before saying it is unreachable.
constexpr auto kConnectTimeout = std::chrono::seconds(10);
// Generous: a trace --all with --raw over a day is large, and the collector caps searches.
constexpr int kMaxReceiveBytes = 256 * 1024 * 1024;

class LocalSource final : public QuerySource {
 public:
  explicit LocalSource(std::unique_ptr<store::Store> store) : store_(std::move(store)) {}

  absl::StatusOr<store::SearchAnswer> Search(const SearchSpec& spec) override {
    MAILLENS_ASSIGN_OR_RETURN(core::Query parsed,
                              core::ParseQuery(spec.words, absl::Now(), absl::LocalTimeZone()));
    store::SearchQuery query;
    query.words = std::move(parsed.words);
    query.terms = std::move(parsed.terms);
    query.since_us = spec.since_us.value_or(parsed.since_us);
    query.until_us = spec.until_us.value_or(parsed.until_us);
    query.limit = spec.limit;
    query.oldest_first = spec.oldest_first;
    return store::SearchWithTraces(store_.get(), query, spec.with_traces);
  }

  absl::StatusOr<TraceAnswer> GetTrace(const std::string& id, bool with_lines) override {
    TraceAnswer answer;
    size_t matches = 0;
    auto trace = store_->GetTrace(id, &matches);
    if (absl::IsNotFound(trace.status())) {
      // Retention forgets the messages of the days it deletes: say that it may have.
      std::string gone = store::DeletedDaysNotice(store_->dir(), 0, 99999999);
      if (gone.empty()) return trace.status();
      return absl::NotFoundError(
          absl::StrCat(trace.status().message(), "; it may have been on days ", gone));
    }
    MAILLENS_ASSIGN_OR_RETURN(answer.trace, std::move(trace));
    if (std::string others = store::OtherTracesNotice(id, matches); !others.empty()) {
      answer.notices.push_back(std::move(others));
    }
    if (with_lines) {
      MAILLENS_ASSIGN_OR_RETURN(answer.lines, store::TraceLines(store_.get(), answer.trace));
      for (std::string& notice : store::ArchiveReadNotices(*store_, &answer.trace)) {
        answer.notices.push_back(std::move(notice));
      }
    } else if (!answer.trace.messages.empty()) {
      // Hops on days retention deleted are missing from this trace: said, not silent.
      int64_t first = INT64_MAX, last = INT64_MIN;
      for (const store::MessageInfo& m : answer.trace.messages) {
        first = std::min(first, store::DayOf(m.first_us));
        last = std::max(last, store::DayOf(m.end_us.value_or(m.last_us)));
      }
      std::string gone = store::DeletedDaysNotice(store_->dir(), first, last);
      if (!gone.empty()) answer.notices.push_back(std::move(gone));
    }
    return answer;
  }

  absl::Status TracesIn(int64_t since_us, int64_t until_us, bool with_lines,
                        const std::function<void(const TraceAnswer&)>& each) override {
    MAILLENS_ASSIGN_OR_RETURN(std::vector<store::Trace> traces,
                              store_->TracesIn(since_us, until_us));
    for (store::Trace& trace : traces) {
      TraceAnswer answer;
      answer.trace = std::move(trace);
      if (with_lines) {
        MAILLENS_ASSIGN_OR_RETURN(answer.lines, store::TraceLines(store_.get(), answer.trace));
      }
      each(answer);
    }
    return absl::OkStatus();
  }

  absl::Status Tail(const std::vector<std::string>& words, uint32_t backlog, bool follow,
                    const std::function<bool(const TailChunk&)>& each) override {
    if (follow) {
      return absl::FailedPreconditionError(
          "-f follows lines as the collector stores them: give --server HOST:PORT (or set "
          "$MAILLENS_SERVER); from a data directory, tail shows the newest lines only");
    }
    MAILLENS_ASSIGN_OR_RETURN(core::Query query, store::ParseTailQuery(words));
    TailChunk chunk;
    MAILLENS_ASSIGN_OR_RETURN(chunk.lines, store::TailBacklog(store_.get(), query, backlog));
    if (!chunk.lines.empty()) each(chunk);
    return absl::OkStatus();
  }

  absl::StatusOr<v1::ReportResponse> Report(const v1::ReportRequest& request) override {
    v1::ReportResponse response;
    MAILLENS_RETURN_IF_ERROR(
        report::AnswerReport(store_->dir(), request, absl::LocalTimeZone(), &response));
    return response;
  }

  absl::StatusOr<v1::ArchiveListResponse> ArchiveList() override {
    return store::ListArchive(store_->dir());
  }
  absl::StatusOr<store::VerifyResult> ArchiveVerify() override {
    return store::VerifyArchive(store_->dir());
  }
  absl::Status ArchiveExport(
      int64_t day, const std::string& host,
      const std::function<absl::Status(const std::string&, std::string_view)>& each) override {
    return store::ExportDay(store_->dir(), day, host, each);
  }

 private:
  std::unique_ptr<store::Store> store_;
};

class RemoteSource final : public QuerySource {
 public:
  explicit RemoteSource(CollectorConnection connection)
      : connection_(std::move(connection)), stub_(v1::QueryService::NewStub(connection_.channel)) {}

  absl::StatusOr<store::SearchAnswer> Search(const SearchSpec& spec) override {
    v1::SearchRequest request;
    for (const std::string& w : spec.words) request.add_words(w);
    if (spec.since_us) request.set_since_us(*spec.since_us);
    if (spec.until_us) request.set_until_us(*spec.until_us);
    request.set_limit(static_cast<uint32_t>(std::min<size_t>(spec.limit, UINT32_MAX)));
    request.set_with_traces(spec.with_traces);
    request.set_oldest_first(spec.oldest_first);
    MAILLENS_ASSIGN_OR_RETURN(
        v1::SearchResponse response,
        Call<v1::SearchResponse>(&v1::QueryService::Stub::Search, request, kCallTimeout));
    return store::FromProto(response);
  }

  absl::StatusOr<TraceAnswer> GetTrace(const std::string& id, bool with_lines) override {
    v1::TraceRequest request;
    request.set_id(id);
    request.set_with_lines(with_lines);
    MAILLENS_ASSIGN_OR_RETURN(
        v1::TraceResponse response,
        Call<v1::TraceResponse>(&v1::QueryService::Stub::Trace, request, kCallTimeout));
    return FromResponse(response);
  }

  absl::Status TracesIn(int64_t since_us, int64_t until_us, bool with_lines,
                        const std::function<void(const TraceAnswer&)>& each) override {
    v1::TracesInRequest request;
    if (since_us != INT64_MIN) request.set_since_us(since_us);
    if (until_us != INT64_MAX) request.set_until_us(until_us);
    request.set_with_lines(with_lines);
    grpc::ClientContext context;
    connection_.Prepare(&context, kCallTimeout);
    auto reader = stub_->TracesIn(&context, request);
    v1::TraceResponse response;
    while (reader->Read(&response)) each(FromResponse(response));
    return connection_.Convert(reader->Finish());
  }

  absl::Status Tail(const std::vector<std::string>& words, uint32_t backlog, bool follow,
                    const std::function<bool(const TailChunk&)>& each) override {
    v1::TailRequest request;
    for (const std::string& w : words) request.add_words(w);
    request.set_backlog(backlog);
    request.set_follow(follow);
    grpc::ClientContext context;
    // Following has no end; the collector's keepalive notices a vanished connection.
    if (follow) {
      connection_.Prepare(&context, std::nullopt);
    } else {
      connection_.Prepare(&context, kCallTimeout);
    }
    auto reader = stub_->Tail(&context, request);
    v1::TailResponse response;
    bool stopped = false;
    while (reader->Read(&response)) {
      TailChunk chunk;
      for (const v1::StoredLine& line : response.lines()) {
        chunk.lines.push_back(store::FromProto(line));
      }
      chunk.dropped = response.dropped();
      if (!each(chunk)) {
        stopped = true;
        context.TryCancel();
        break;
      }
    }
    grpc::Status status = reader->Finish();
    if (stopped) return absl::OkStatus();
    return connection_.Convert(status);
  }

  absl::StatusOr<v1::ReportResponse> Report(const v1::ReportRequest& request) override {
    return Call<v1::ReportResponse>(&v1::QueryService::Stub::Report, request, kCallTimeout);
  }

  absl::StatusOr<v1::ArchiveListResponse> ArchiveList() override {
    // Listing reads every archive file's SHA-256 for the chain head: as long as verify.
    return Call<v1::ArchiveListResponse>(&v1::QueryService::Stub::ArchiveList,
                                         v1::ArchiveListRequest(), kArchiveTimeout);
  }

  absl::StatusOr<store::VerifyResult> ArchiveVerify() override {
    MAILLENS_ASSIGN_OR_RETURN(
        v1::ArchiveVerifyResponse response,
        Call<v1::ArchiveVerifyResponse>(&v1::QueryService::Stub::ArchiveVerify,
                                        v1::ArchiveVerifyRequest(), kArchiveTimeout));
    return store::FromProto(response);
  }

  absl::Status ArchiveExport(
      int64_t day, const std::string& host,
      const std::function<absl::Status(const std::string&, std::string_view)>& each) override {
    v1::ArchiveExportRequest request;
    request.set_day(day);
    request.set_host(host);
    grpc::ClientContext context;
    connection_.Prepare(&context, std::nullopt);  // a day of a large site takes a while
    auto reader = stub_->ArchiveExport(&context, request);
    v1::ArchiveExportResponse response;
    absl::Status written;
    while (written.ok() && reader->Read(&response)) {
      for (const v1::ExportedLine& line : response.lines()) {
        written = each(line.host(), line.raw());
        if (!written.ok()) break;
      }
    }
    if (!written.ok()) {
      context.TryCancel();
      reader->Finish();
      return written;
    }
    return connection_.Convert(reader->Finish());
  }

 private:
  // One unary call of the query service: token and deadline set, the status converted.
  template <typename Response, typename Request>
  absl::StatusOr<Response> Call(grpc::Status (v1::QueryService::Stub::*method)(grpc::ClientContext*,
                                                                               const Request&,
                                                                               Response*),
                                const Request& request, std::chrono::seconds timeout) {
    Response response;
    grpc::ClientContext context;
    connection_.Prepare(&context, timeout);
    MAILLENS_RETURN_IF_ERROR(
        connection_.Convert((stub_.get()->*method)(&context, request, &response)));
    return response;
  }

  static TraceAnswer FromResponse(const v1::TraceResponse& response) {
    TraceAnswer answer;
    answer.trace = store::FromProto(response.trace());
    answer.lines = store::FromProto(response.lines());
    answer.notices.assign(response.notices().begin(), response.notices().end());
    return answer;
  }

  CollectorConnection connection_;
  std::unique_ptr<v1::QueryService::Stub> stub_;
};

absl::StatusOr<std::string> ReadFileText(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", what, " '", path, "'"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The first line of a token file that is neither blank nor a '#' comment.
absl::StatusOr<std::string> ReadToken(const std::string& path) {
  MAILLENS_ASSIGN_OR_RETURN(std::string text, ReadFileText(path, "the token file"));
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::string token(absl::StripAsciiWhitespace(line));
    if (!token.empty() && token.front() != '#') return token;
  }
  return absl::InvalidArgumentError(absl::StrCat("the token file '", path, "' holds no token"));
}

}  // namespace

void CollectorConnection::Prepare(grpc::ClientContext* context,
                                  std::optional<std::chrono::seconds> timeout) const {
  if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  if (timeout) context->set_deadline(std::chrono::system_clock::now() + *timeout);
}

absl::Status CollectorConnection::Convert(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  const std::string& message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the collector at ", target, " (", message,
          "): is maillens-collector running and listening there, and do --tls-ca and the "
          "collector's TLS setting agree?"));
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(
          absl::StrCat("the collector at ", target, " did not accept the token (", message,
                       "): give a reader token with --token-file FILE or $MAILLENS_TOKEN"));
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::PermissionDeniedError(
          absl::StrCat("the collector at ", target, " refused the request (", message,
                       "): queries need a reader token, not an agent's"));
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::DeadlineExceededError(absl::StrCat("the collector at ", target,
                                                      " did not answer in time (", message,
                                                      "); narrow the search or the window"));
    default:
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()), message);
  }
}

absl::StatusOr<CollectorConnection> ConnectToCollector(const GlobalOptions& global) {
  const std::string& target = global.server;
  std::string token;
  if (!global.token_file.empty()) {
    MAILLENS_ASSIGN_OR_RETURN(token, ReadToken(global.token_file));
  } else if (const char* env = std::getenv("MAILLENS_TOKEN"); env != nullptr) {
    token = std::string(absl::StripAsciiWhitespace(env));
  }
  if (global.tls_cert.empty() != global.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  const bool tls = !global.tls_ca.empty() || !global.tls_cert.empty();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!global.tls_ca.empty()) {
      MAILLENS_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFileText(global.tls_ca, "--tls-ca"));
    }
    if (!global.tls_cert.empty()) {
      MAILLENS_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFileText(global.tls_cert, "--tls-cert"));
      MAILLENS_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFileText(global.tls_key, "--tls-key"));
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (IsLoopbackTarget(target) || global.allow_plaintext) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to send a token and read mail logs in clear to ", target,
        ", which is not this machine: give --tls-ca FILE (the CA that signed the collector's "
        "certificate), or --allow-plaintext if the network is trusted"));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  // A long tail -f: notice a collector that vanished without closing the connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(target, credentials, args);
  // Connects now, so an unreachable collector is one clear sentence; a refused connection or
  // a failed TLS handshake (TRANSIENT_FAILURE) is reported at once, not after the timeout.
  const auto deadline = std::chrono::system_clock::now() + kConnectTimeout;
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
         channel->WaitForStateChange(state, deadline)) {
    state = channel->GetState(/*try_to_connect=*/true);
  }
  if (state != GRPC_CHANNEL_READY) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the collector at ", target,
        state == GRPC_CHANNEL_TRANSIENT_FAILURE
            ? ""
            : absl::StrCat(" within ", std::chrono::seconds(kConnectTimeout).count(), " s"),
        ": is maillens-collector running and listening there",
        tls ? ", and does --tls-ca name the CA that signed its certificate?"
            : " (and without TLS: --tls-ca if it uses TLS)?"));
  }
  return CollectorConnection{target, std::move(channel), std::move(token)};
}

namespace {

absl::StatusOr<std::unique_ptr<QuerySource>> OpenRemote(const GlobalOptions& global) {
  MAILLENS_ASSIGN_OR_RETURN(CollectorConnection connection, ConnectToCollector(global));
  return std::make_unique<RemoteSource>(std::move(connection));
}

}  // namespace

bool IsLoopbackTarget(const std::string& target) {
  std::string_view host = target;
  auto starts_with = [](std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
  };
  if (starts_with(host, "unix:")) return true;
  for (std::string_view scheme : {"ipv4:", "ipv6:", "dns:///", "dns:"}) {
    if (starts_with(host, scheme)) {
      host.remove_prefix(scheme.size());
      break;
    }
  }
  if (!host.empty() && host.front() == '[') {
    size_t end = host.find(']');
    if (end == std::string_view::npos) return false;
    host = host.substr(1, end - 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || starts_with(host, "127.");
}

absl::StatusOr<std::unique_ptr<QuerySource>> OpenQuerySource(const GlobalOptions& global) {
  if (!global.server.empty()) return OpenRemote(global);
  store::StoreOptions options;
  options.dir = global.data_dir;
  options.read_only = true;
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store, store::Store::Open(options));
  return std::make_unique<LocalSource>(std::move(store));
}

}  // namespace maillens::cli
