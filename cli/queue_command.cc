#include "cli/queue_command.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cli/query_source.h"
#include "core/status_macros.h"
#include "maillens/v1/status.grpc.pb.h"
#include "report/table.h"
#include "store/status_read.h"

namespace maillens::cli {
namespace {

namespace v1 = ::maillens::v1;

constexpr char kUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT ...] queue [--host H] [--json] "
    "[TERM...]\n"
    "  What sits in every host's Postfix queue, as its agent last read it (postqueue -j every\n"
    "  queue_interval_s of the agent's config), with the trace maillens stored for each\n"
    "  message. Says how old each host's snapshot is and warns when one is older than 3\n"
    "  snapshot intervals (the agent is not reporting). Through --server the same, but for\n"
    "  the first line, which names the source, and the ages, counted when each is asked.\n"
    "  --host H   only host H (exit 1 when no snapshot of H is stored)\n"
    "  --json     the QueueResponse message (maillens/v1/status.proto) as JSON, filtered\n"
    "  TERM       from:ADDR  to:ADDR  (part of the address, any case)\n"
    "             queue:NAME (deferred, active, hold, incoming, maildrop)\n"
    "             QUEUEID    one message\n"
    "  e.g. maillens queue queue:deferred to:example.org\n";

constexpr auto kQueueTimeout = std::chrono::seconds(30);

std::string Age(int64_t seconds) {
  seconds = std::max<int64_t>(seconds, 0);
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) return absl::StrCat(seconds / 60, "m", seconds % 60, "s");
  if (seconds < 86400) return absl::StrCat(seconds / 3600, "h", seconds % 3600 / 60, "m");
  return absl::StrCat(seconds / 86400, "d", seconds % 86400 / 3600, "h");
}

bool AnyContains(const std::vector<std::string>& needles, const std::string& hay) {
  if (needles.empty()) return true;
  std::string lower = absl::AsciiStrToLower(hay);
  for (const std::string& n : needles) {
    if (absl::StrContains(lower, n)) return true;
  }
  return false;
}

bool Keeps(const QueueFilter& filter, const v1::QueuedMessage& m) {
  if (!filter.queues.empty() && std::find(filter.queues.begin(), filter.queues.end(),
                                          m.queue_name()) == filter.queues.end()) {
    return false;
  }
  if (!filter.queue_ids.empty() && std::find(filter.queue_ids.begin(), filter.queue_ids.end(),
                                             m.queue_id()) == filter.queue_ids.end()) {
    return false;
  }
  if (!AnyContains(filter.from, m.sender())) return false;
  if (filter.to.empty()) return true;
  for (const v1::QueuedRecipient& r : m.recipients()) {
    if (AnyContains(filter.to, r.address())) return true;
  }
  return false;
}

// The newest reason a delivery failed: postqueue lists one per recipient; the last non-empty.
std::string LastDelayReason(const v1::QueuedMessage& m) {
  for (int i = m.recipients_size() - 1; i >= 0; --i) {
    if (!m.recipients(i).delay_reason().empty()) return m.recipients(i).delay_reason();
  }
  return "";
}

report::Color QueueColor(const std::string& queue) {
  if (queue == "deferred") return report::Color::kYellow;
  if (queue == "hold") return report::Color::kRed;
  if (queue == "active") return report::Color::kGreen;
  return report::Color::kNone;
}

bool Stale(const v1::HostQueue& h) {
  return h.interval_us() > 0 && h.age_us() > kStaleIntervals * h.interval_us();
}

absl::StatusOr<v1::QueueResponse> FetchQueue(const GlobalOptions& global,
                                             const v1::QueueRequest& request) {
  if (global.server.empty()) return store::ReadQueue(global.data_dir, request, absl::Now());
  auto connection = ConnectToCollector(global);
  if (!connection.ok()) return connection.status();
  auto stub = v1::StatusService::NewStub(connection->channel);
  grpc::ClientContext context;
  connection->Prepare(&context, kQueueTimeout);
  v1::QueueResponse response;
  MAILLENS_RETURN_IF_ERROR(connection->Convert(stub->GetQueue(&context, request, &response)));
  return response;
}

}  // namespace

absl::StatusOr<QueueFilter> ParseQueueFilter(const std::vector<std::string>& terms) {
  QueueFilter filter;
  for (const std::string& term : terms) {
    size_t colon = term.find(':');
    if (colon == std::string::npos) {
      filter.queue_ids.push_back(term);
      continue;
    }
    std::string field = term.substr(0, colon);
    std::string value = absl::AsciiStrToLower(term.substr(colon + 1));
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("'", term, "' has no value after ':'"));
    }
    if (field == "from") {
      filter.from.push_back(value);
    } else if (field == "to") {
      filter.to.push_back(value);
    } else if (field == "queue") {
      filter.queues.push_back(value);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown term '", term, "': use from:, to:, queue: or a queue ID"));
    }
  }
  return filter;
}

v1::QueueResponse FilterQueue(const v1::QueueResponse& queue, const QueueFilter& filter) {
  v1::QueueResponse out;
  out.set_now_us(queue.now_us());
  for (const v1::HostQueue& h : queue.hosts()) {
    v1::HostQueue* host = out.add_hosts();
    *host = h;
    host->clear_messages();
    host->clear_trace_ids();
    host->clear_traces();
    for (int i = 0; i < h.messages_size(); ++i) {
      if (!Keeps(filter, h.messages(i))) continue;
      *host->add_messages() = h.messages(i);
      if (i < h.trace_ids_size()) host->add_trace_ids(h.trace_ids(i));
      if (i < h.traces_size()) *host->add_traces() = h.traces(i);
    }
  }
  return out;
}

void PrintQueue(const v1::QueueResponse& queue, const std::string& source, bool filtered,
                bool color, FILE* out) {
  std::fprintf(out, "%s\n", source.c_str());
  if (queue.hosts_size() == 0) {
    std::fprintf(out,
                 "no queue snapshot stored: no agent has sent one (set queue_interval_s in the "
                 "agent's config)\n");
    return;
  }
  size_t total = 0;
  for (const v1::HostQueue& h : queue.hosts()) {
    std::string line =
        absl::StrCat(h.host(), ": snapshot ", Age(h.age_us() / 1000000), " old, ",
                     h.messages_size(), " message", h.messages_size() == 1 ? "" : "s");
    std::fprintf(out, "%s\n", line.c_str());
    if (!h.error().empty()) {
      std::fprintf(
          out, "%s\n",
          report::Paint(absl::StrCat("  warning: the agent could not read the queue: ", h.error()),
                        report::Color::kRed, color)
              .c_str());
    }
    if (Stale(h)) {
      std::fprintf(
          out, "%s\n",
          report::Paint(absl::StrCat("  warning: older than ", kStaleIntervals,
                                     " snapshot intervals (", Age(h.interval_us() / 1000000),
                                     " each): the agent is not reporting; this is not now"),
                        report::Color::kRed, color)
              .c_str());
    }
    total += h.messages_size();
  }
  if (total == 0) {
    std::fprintf(out, "\nno queued message%s\n", filtered ? " matches" : "");
    return;
  }
  std::fputc('\n', out);
  report::Table table(
      {"host", "queue", "id", "age", "sender", "recipients", "last delay reason", "trace"});
  for (const v1::HostQueue& h : queue.hosts()) {
    for (int i = 0; i < h.messages_size(); ++i) {
      const v1::QueuedMessage& m = h.messages(i);
      std::vector<std::string> rcpts;
      for (const v1::QueuedRecipient& r : m.recipients()) rcpts.push_back(r.address());
      std::string trace = "-";
      if (i < h.traces_size() && h.traces(i).trace_id() != 0) {
        const v1::QueuedTrace& t = h.traces(i);
        trace = absl::StrCat(t.first_host(), ":", t.first_queue_id());
      }
      int64_t age_s = queue.now_us() / 1000000 - m.arrival_time();
      table.AddRow({{h.host()},
                    {m.queue_name(), QueueColor(m.queue_name())},
                    {m.queue_id()},
                    {Age(age_s)},
                    {m.sender().empty() ? "<>" : m.sender()},
                    {absl::StrJoin(rcpts, " ")},
                    {LastDelayReason(m), report::Color::kYellow},
                    {trace, trace == "-" ? report::Color::kDim : report::Color::kNone}});
    }
  }
  table.PrintText(out, color, 60);
}

int RunQueue(const GlobalOptions& global, const std::vector<std::string>& args) {
  bool json = false;
  std::string host;
  ArgParser parser("queue", kUsage);
  parser.Flag("json", &json);
  parser.Option("host", &host);
  std::vector<std::string> terms;
  int exit_code = 2;
  if (!parser.Parse(args, &terms, &exit_code)) return exit_code;
  absl::StatusOr<QueueFilter> filter = ParseQueueFilter(terms);
  if (!filter.ok()) {
    std::fprintf(stderr, "maillens queue: %s\n%s", std::string(filter.status().message()).c_str(),
                 kUsage);
    return 2;
  }
  v1::QueueRequest request;
  request.set_host(host);
  absl::StatusOr<v1::QueueResponse> queue = FetchQueue(global, request);
  if (!queue.ok()) {
    std::fprintf(stderr, "maillens queue: %s\n", std::string(queue.status().message()).c_str());
    return 1;
  }
  if (!host.empty() && queue->hosts_size() == 0) {
    std::fprintf(stderr,
                 "maillens queue: no queue snapshot stored from host '%s' (no such host, or its "
                 "agent has not sent one: 'maillens queue' lists the hosts that have)\n",
                 host.c_str());
    return 1;
  }
  v1::QueueResponse shown = FilterQueue(*queue, *filter);
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string text;
    if (!google::protobuf::util::MessageToJsonString(shown, &text, options).ok()) {
      std::fprintf(stderr, "maillens queue: cannot write the queues as JSON\n");
      return 1;
    }
    std::fputs(text.c_str(), stdout);
    if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
  } else {
    std::string source = global.server.empty() ? absl::StrCat("data directory ", global.data_dir)
                                               : absl::StrCat("collector ", global.server);
    PrintQueue(shown, source, !terms.empty(), report::UseColor(stdout), stdout);
  }
  // The table says so above it; JSON for programs carries no warning of its own.
  for (const v1::HostQueue& h : shown.hosts()) {
    if (json && Stale(h)) {
      std::fprintf(stderr,
                   "maillens queue: warning: %s's snapshot is %s old, more than %lld "
                   "intervals: its agent is not reporting\n",
                   h.host().c_str(), Age(h.age_us() / 1000000).c_str(),
                   static_cast<long long>(kStaleIntervals));
    }
  }
  return 0;
}

}  // namespace maillens::cli
