// `maillens report`: the traffic and incident summary of a window, site-wide and per host.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/query_source.h"
#include "cli/store_commands.h"
#include "core/query_language.h"
#include "maillens/v1/query.pb.h"
#include "report/table.h"
#include "store/retention.h"

namespace maillens::cli {
namespace {

namespace v1 = ::maillens::v1;

constexpr char kUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT] report [--since T] [--until T] [--host "
    "NAME]\n"
    "                [--domain D[,D...]] [--format text|markdown|json|html] [--output FILE]\n"
    "                [--top N] [--tz ZONE]\n"
    "  What a window looked like, site-wide and per host. Each message is counted once\n"
    "  however many hops and filters it passed; lines (refusals, deferrals, warnings) are\n"
    "  counted as lines. docs/REPORT.md says how each number is counted and how it maps to\n"
    "  pflogsumm's.\n"
    "  Sections and how they count:\n"
    "    Grand totals    messages received (smtpd, pickup), delivered (a recipient delivered\n"
    "                    at its final hop), deferred (a deferral on any hop), bounced, expired,\n"
    "                    held, discarded; lines: rejected (reject lines), reject warnings\n"
    "                    (reject_warning, cleanup WARN), SASL and Dovecot login failures,\n"
    "                    warnings, fatal errors, panics\n"
    "    Traffic         per hour (per day beyond a week) of --tz, hours of that zone\n"
    "    Top recipient domains and recipients: delivered recipients, deferrals (deferral\n"
    "                    lines: pflogsumm's \"defers\"), deferred (messages with a deferral),\n"
    "                    bounced and expired recipients, average and maximum delay from entry\n"
    "                    to delivery; the top N by delivered, and every domain with a failure\n"
    "    Reasons         deferral, bounce, reject and reject-warning texts, grouped\n"
    "    Top rejected clients and networks (/24, /64); Postscreen events (PREGREET, HANGUP,\n"
    "                    DNSBL, ...) and DNSBL sites (dnsblog hits)\n"
    "    Problems        warning/fatal/panic lines by program and text: per severity the same\n"
    "                    totals as pflogsumm's Warnings, Fatal Errors and Panics\n"
    "    Stuck messages, delivery latency, SASL and login failures by client, SASL users\n"
    "                    whose volume jumped, recorded gaps, line counts for pflogsumm\n"
    "  --since/--until  2024-05-01, '2024-05-01 10:00', 10:00, RFC 3339, or a duration ago\n"
    "                   (90s 15m 2h 3d 1w); default: all stored data\n"
    "  --host NAME      only that host's messages and lines\n"
    "  --domain D,...   only mail from or to these domains (exact names): messages whose\n"
    "                   sender or a recipient is in one; recipient rows whose sender or\n"
    "                   recipient is; reject and deferral lines naming one. Lines that name\n"
    "                   no address (warnings, postscreen, SASL/login failures) are left out\n"
    "  --format F       text (default), markdown (for a ticket), json, html (one\n"
    "                   self-contained file with charts; use --output)\n"
    "  --json, --markdown, --html  shorthands for --format\n"
    "  --output FILE    write there instead of standard output\n"
    "  --top N          entries per top list and reason list (default 10)\n"
    "  --tz ZONE        zone for times, hours and days of the traffic (default: this\n"
    "                   machine's)\n"
    "  Example: maillens report --since 2024-05-01 --until 2024-05-02 --html --output day.html\n";

}  // namespace

int RunReport(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string since, until, host, domain, format, output, top, tz;
  bool json = false, markdown = false, html = false;
  ArgParser parser("report", kUsage);
  parser.Option("since", &since);
  parser.Option("until", &until);
  parser.Option("host", &host);
  parser.Option("domain", &domain);
  parser.Option("format", &format);
  parser.Option("output", &output);
  parser.Option("top", &top);
  parser.Option("tz", &tz);
  parser.Flag("json", &json);
  parser.Flag("markdown", &markdown);
  parser.Flag("html", &html);
  std::vector<std::string> positional;
  int exit_code;
  if (!parser.Parse(args, &positional, &exit_code)) return exit_code;
  if (!positional.empty()) {
    std::fprintf(stderr, "maillens report: unexpected argument '%s'\n%s", positional[0].c_str(),
                 kUsage);
    return 2;
  }
  if (json + markdown + html + !format.empty() > 1) {
    std::fprintf(stderr, "maillens report: choose one output format\n");
    return 2;
  }
  if (json) format = "json";
  if (markdown) format = "markdown";
  if (html) format = "html";
  if (format.empty()) format = "text";
  if (format == "md") format = "markdown";
  if (format != "text" && format != "markdown" && format != "json" && format != "html") {
    std::fprintf(stderr, "maillens report: --format wants text, markdown, json or html, not '%s'\n",
                 format.c_str());
    return 2;
  }
  absl::TimeZone zone = absl::LocalTimeZone();
  if (!tz.empty() && !absl::LoadTimeZone(tz, &zone)) {
    std::fprintf(stderr, "maillens report: unknown time zone '%s'\n", tz.c_str());
    return 2;
  }
  v1::ReportRequest request;
  request.set_host(host);
  for (absl::string_view d : absl::StrSplit(domain, ',', absl::SkipWhitespace())) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(d));
    if (!name.empty() && name[0] == '@') name.erase(0, 1);
    request.add_domains(name);
  }
  absl::Time now = absl::Now();
  for (const auto& [text, is_since] : {std::make_pair(since, true), std::make_pair(until, false)}) {
    if (text.empty()) continue;
    auto t = core::ParseTimeArg(text, now, zone);
    if (!t.ok()) {
      std::fprintf(stderr, "maillens report: %s\n", std::string(t.status().message()).c_str());
      return 2;
    }
    if (is_since) {
      request.set_since_us(*t);
    } else {
      request.set_until_us(*t);
    }
  }
  if (!top.empty()) {
    size_t n = 0;
    if (!absl::SimpleAtoi(top, &n) || n == 0 || n > 100000) {
      std::fprintf(stderr, "maillens report: --top wants a positive number, not '%s'\n",
                   top.c_str());
      return 2;
    }
    request.set_top(static_cast<uint32_t>(n));
  }
  request.set_format(format);
  request.set_time_zone(tz.empty() ? LocalZoneName() : tz);
  request.set_color(format == "text" && output.empty() && report::UseColor(stdout));
  if (!global.server.empty() && request.time_zone().empty()) {
    std::fprintf(stderr,
                 "maillens report: this machine's time zone has no name to send to the "
                 "collector: times are in UTC (use --tz ZONE)\n");
  }
  auto source = OpenQuerySource(global);
  absl::StatusOr<v1::ReportResponse> response =
      source.ok() ? (*source)->Report(request) : source.status();
  if (!response.ok()) {
    std::fprintf(stderr, "maillens report: %s\n", std::string(response.status().message()).c_str());
    return absl::IsInvalidArgument(response.status()) ? 2 : 1;
  }
  // The file is opened only for an answer: a failed report leaves an earlier one as it was.
  FILE* out = stdout;
  if (!output.empty()) {
    out = std::fopen(output.c_str(), "wb");
    if (out == nullptr) {
      std::fprintf(stderr, "maillens report: cannot write %s\n", output.c_str());
      return 1;
    }
  }
  const std::string& text = response->rendered();
  bool ok = std::fwrite(text.data(), 1, text.size(), out) == text.size();
  if (out != stdout) ok = std::fclose(out) == 0 && ok;
  if (!ok) {
    std::fprintf(stderr, "maillens report: writing the report failed\n");
    return 1;
  }
  if (!output.empty()) std::fprintf(stderr, "wrote %s\n", output.c_str());
  // An answer that left archived days out (store/retention.h) is never a success.
  for (const std::string& notice : response->notices()) {
    if (store::IsUnreadableArchiveNotice(notice)) {
      std::fprintf(stderr, "maillens report: %s\n", notice.c_str());
      return 3;
    }
  }
  return 0;
}

}  // namespace maillens::cli
