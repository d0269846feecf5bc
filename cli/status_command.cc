#include "cli/status_command.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
    "usage: maillens [--data DIR | --server HOST:PORT ...] status [--json] [--gaps N]\n"
    "  The site as the collector knows it: agents (connected, lag in bytes and seconds, last\n"
    "  line, version), ingest rate, partitions and disk use, recorded gaps (spans of logs an\n"
    "  agent lost) and the periods agents were offline. Warnings (an archive that cannot be\n"
    "  trusted) come first, and make the exit status 3.\n"
    "  With --data: the data directory as last recorded (no ingest rate: no process is asked).\n"
    "  --json     the StatusResponse message (maillens/v1/status.proto) as JSON\n"
    "  --gaps N   list the newest N gaps and offline periods (default 20)\n"
    "  --tz ZONE  show times in ZONE (default: the local zone)\n";

constexpr auto kStatusTimeout = std::chrono::seconds(30);

std::string Bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(n, " B") : absl::StrFormat("%.1f %s", v, units[unit]);
}

std::string Duration(int64_t seconds) {
  if (seconds < 60) return absl::StrCat(seconds, "s");
  if (seconds < 3600) return absl::StrCat(seconds / 60, "m ", seconds % 60, "s");
  if (seconds < 86400) return absl::StrCat(seconds / 3600, "h ", seconds % 3600 / 60, "m");
  return absl::StrCat(seconds / 86400, "d ", seconds % 86400 / 3600, "h");
}

std::string Day(int64_t day) {
  return absl::StrFormat("%04d-%02d-%02d", day / 10000, day / 100 % 100, day % 100);
}

void Heading(FILE* out, const std::string& text, bool color) {
  std::fprintf(out, "\n%s\n", report::Paint(text, report::Color::kBold, color).c_str());
}

// The time a gap's lost lines were written in, as far as it is known.
std::string GapWindow(const v1::GapStatus& gap, absl::TimeZone zone) {
  std::string to =
      FormatLocalTime(gap.window_to_us() != 0 ? gap.window_to_us() : gap.noticed_us(), zone);
  if (gap.window_from_us() == 0) return absl::StrCat("before ", to);
  std::string from = FormatLocalTime(gap.window_from_us(), zone);
  // The same day: the end without its date.
  if (from.substr(0, 10) == to.substr(0, 10)) to = to.substr(11);
  return absl::StrCat(from, " - ", to);
}

absl::StatusOr<v1::StatusResponse> FetchStatus(const GlobalOptions& global, uint32_t listed) {
  v1::StatusRequest request;
  request.set_max_gaps(listed);
  request.set_max_offline(listed);
  if (global.server.empty()) {
    return store::ReadStatus(global.data_dir, request, absl::Now());
  }
  auto connection = ConnectToCollector(global);
  if (!connection.ok()) return connection.status();
  auto stub = v1::StatusService::NewStub(connection->channel);
  grpc::ClientContext context;
  connection->Prepare(&context, kStatusTimeout);
  v1::StatusResponse response;
  MAILLENS_RETURN_IF_ERROR(connection->Convert(stub->GetStatus(&context, request, &response)));
  return response;
}

}  // namespace

void PrintStatus(const v1::StatusResponse& status, const std::string& source, absl::TimeZone zone,
                 bool color, FILE* out) {
  std::fprintf(out, "%s at %s\n", source.c_str(), FormatLocalTime(status.now_us(), zone).c_str());
  for (const std::string& w : status.warnings()) {
    std::fprintf(
        out, "%s\n",
        report::Paint(absl::StrCat("WARNING: ", EscapeControls(w)), report::Color::kRed, color)
            .c_str());
  }

  Heading(out, absl::StrCat("Agents (", status.agents_size(), ")"), color);
  if (status.agents_size() == 0) {
    std::fprintf(out, "none has connected yet\n");
  } else {
    report::Table agents(
        {"host", "state", "since", "lag", "lag time", "last line", "version", "role", "addresses"});
    for (const v1::AgentStatus& a : status.agents()) {
      std::string lag_time = a.lag_seconds() < 0 ? "-" : Duration(a.lag_seconds());
      agents.AddRow({{a.host()},
                     {a.connected() ? "connected" : "offline",
                      a.connected() ? report::Color::kGreen : report::Color::kRed},
                     {a.since_us() != 0 ? FormatLocalTime(a.since_us(), zone) : "-"},
                     {Bytes(a.lag_bytes()),
                      a.lag_bytes() > 0 ? report::Color::kYellow : report::Color::kNone},
                     {lag_time},
                     {a.last_event_us() != 0 ? FormatLocalTime(a.last_event_us(), zone) : "-"},
                     {a.version()},
                     {a.role()},
                     {absl::StrJoin(a.addresses(), " ")}});
    }
    agents.PrintText(out, color);
  }

  if (status.has_ingest()) {
    const v1::IngestRate& r = status.ingest();
    Heading(out, "Ingest", color);
    std::fprintf(out,
                 "%.1f lines/s over the last minute, %.1f lines/s since the collector started "
                 "(%s, %llu lines)\n",
                 r.lines_per_second_last_minute(), r.lines_per_second_since_start(),
                 FormatLocalTime(r.started_us(), zone).c_str(),
                 static_cast<unsigned long long>(r.lines_since_start()));
    if (r.index_backlog_batches() > 0) {
      std::fprintf(out, "indexing behind by %llu batches (%s): accepted, not yet searchable\n",
                   static_cast<unsigned long long>(r.index_backlog_batches()),
                   Bytes(r.index_backlog_bytes()).c_str());
    }
  }

  Heading(out, absl::StrCat("Disk (", Bytes(status.disk_bytes()), " in all)"), color);
  if (status.has_disk_usage()) {
    // Each part the disk budget counts, so that the one that grows is seen.
    const v1::DiskUsage& u = status.disk_usage();
    std::string catalog = Bytes(u.catalog());
    if (u.catalog_free() > 0) {
      absl::StrAppend(&catalog, " (", Bytes(u.catalog_free()), " free for reuse)");
    }
    std::fprintf(out, "days %s, catalog %s, journal %s, archive %s, cache %s, other %s\n",
                 Bytes(u.days()).c_str(), catalog.c_str(), Bytes(u.journal()).c_str(),
                 Bytes(u.archive()).c_str(), Bytes(u.cache()).c_str(), Bytes(u.other()).c_str());
  }

  Heading(out, absl::StrCat("Partitions (", status.partitions_size(), ")"), color);
  if (status.partitions_size() > 0) {
    report::Table partitions({"day (UTC)", "lines", "on disk"});
    for (const v1::PartitionStatus& p : status.partitions()) {
      partitions.AddRow({{Day(p.day())}, {absl::StrCat(p.lines())}, {Bytes(p.bytes())}});
    }
    partitions.PrintText(out, color);
  }

  Heading(out,
          absl::StrCat("Gaps (", status.gap_count(), " recorded",
                       status.gap_count() > static_cast<uint64_t>(status.gaps_size())
                           ? absl::StrCat(", newest ", status.gaps_size(), " shown")
                           : "",
                       ")"),
          color);
  if (status.gaps_size() == 0) {
    std::fprintf(out, "none: no agent has reported a lost span of a log\n");
  } else {
    report::Table gaps(
        {"host", "file", "bytes", "reason", "lost lines written", "noticed", "detail"});
    for (const v1::GapStatus& g : status.gaps()) {
      std::string span = g.to_known() ? absl::StrCat(g.from_offset(), "-", g.to_offset())
                                      : absl::StrCat(g.from_offset(), "-?");
      gaps.AddRow({{g.host()},
                   {g.path()},
                   {span},
                   {g.reason(), report::Color::kYellow},
                   {GapWindow(g, zone)},
                   {FormatLocalTime(g.noticed_us(), zone)},
                   {g.detail()}});
    }
    gaps.PrintText(out, color, 64);
  }

  Heading(out,
          absl::StrCat("Offline periods (", status.offline_count(), " recorded",
                       status.offline_count() > static_cast<uint64_t>(status.offline_size())
                           ? absl::StrCat(", newest ", status.offline_size(), " shown")
                           : "",
                       ")"),
          color);
  if (status.offline_size() > 0) {
    report::Table offline({"host", "from", "to", "for"});
    for (const v1::OfflinePeriod& o : status.offline()) {
      int64_t end = o.to_us() != 0 ? o.to_us() : status.now_us();
      offline.AddRow({{o.host()},
                      {FormatLocalTime(o.from_us(), zone)},
                      o.to_us() != 0 ? report::Cell{FormatLocalTime(o.to_us(), zone)}
                                     : report::Cell{"still offline", report::Color::kRed},
                      {Duration(std::max<int64_t>(0, (end - o.from_us()) / 1000000))}});
    }
    offline.PrintText(out, color);
  }
}

int RunStatus(const GlobalOptions& global, const std::vector<std::string>& args) {
  bool json = false;
  std::string gaps = "20";
  std::string tz;
  ArgParser parser("status", kUsage);
  parser.Flag("json", &json);
  parser.Option("gaps", &gaps);
  parser.Option("tz", &tz);
  std::vector<std::string> positional;
  int exit_code = 2;
  if (!parser.Parse(args, &positional, &exit_code)) return exit_code;
  if (!positional.empty()) {
    std::fprintf(stderr, "maillens status: unexpected argument '%s'\n%s", positional[0].c_str(),
                 kUsage);
    return 2;
  }
  uint32_t listed = 0;
  if (!absl::SimpleAtoi(gaps, &listed) || listed == 0) {
    std::fprintf(stderr, "maillens status: --gaps takes a positive number, not '%s'\n",
                 gaps.c_str());
    return 2;
  }
  absl::TimeZone zone = absl::LocalTimeZone();
  if (!tz.empty() && !absl::LoadTimeZone(tz, &zone)) {
    std::fprintf(stderr, "maillens status: unknown time zone '%s'\n", tz.c_str());
    return 2;
  }
  absl::StatusOr<v1::StatusResponse> status = FetchStatus(global, listed);
  if (!status.ok()) {
    std::fprintf(stderr, "maillens status: %s\n", std::string(status.status().message()).c_str());
    return 1;
  }
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string text;
    if (!google::protobuf::util::MessageToJsonString(*status, &text, options).ok()) {
      std::fprintf(stderr, "maillens status: cannot write the status as JSON\n");
      return 1;
    }
    std::fputs(text.c_str(), stdout);
    if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
    return status->warnings_size() > 0 ? 3 : 0;
  }
  std::string source = global.server.empty()
                           ? absl::StrCat("data directory ", global.data_dir, " (as last recorded)")
                           : absl::StrCat("collector ", global.server);
  PrintStatus(*status, source, zone, report::UseColor(stdout), stdout);
  return status->warnings_size() > 0 ? 3 : 0;
}

}  // namespace maillens::cli
