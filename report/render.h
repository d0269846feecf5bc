// Renders a report::Report for people and programs: aligned text (like pflogsumm, with the
// per-host table beside the site's numbers), Markdown for a ticket, JSON, and one
// self-contained HTML file whose charts are inline SVG (no scripts, no network).
//
// Thread-safe: the renderers are pure functions of their arguments; AnswerReport reads the
// data directory through its own read-only connections (report::BuildReport).
#ifndef MAILLENS_REPORT_RENDER_H_
#define MAILLENS_REPORT_RENDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "maillens/v1/query.pb.h"
#include "report/report.h"

namespace maillens::report {

struct RenderOptions {
  absl::TimeZone zone = absl::UTCTimeZone();  // times and hour labels are shown in it
  bool color = false;                         // ANSI colour in text output
};

std::string RenderReportText(const report::Report& report, const RenderOptions& options);
std::string RenderReportMarkdown(const report::Report& report, const RenderOptions& options);
std::string RenderReportJson(const report::Report& report, const RenderOptions& options);
std::string RenderReportHtml(const report::Report& report, const RenderOptions& options);

// `request` answered over the data directory `data_dir`: by `maillens report` itself with
// --data, and by the collector for `maillens --server` (QueryService.Report), so both print
// the same bytes. An empty request.time_zone means `default_zone` (the caller's own when it
// cannot name it). InvalidArgument for an unknown zone or a format other than "text",
// "markdown", "json" or "html".
absl::Status AnswerReport(const std::string& data_dir, const maillens::v1::ReportRequest& request,
                          absl::TimeZone default_zone, maillens::v1::ReportResponse* response);

}  // namespace maillens::report

#endif  // MAILLENS_REPORT_RENDER_H_
