// Renders a collector::Report for people and programs: aligned text (like pflogsumm, with the
// per-host table beside the site's numbers), Markdown for a ticket, JSON, and one
// self-contained HTML file whose charts are inline SVG (no scripts, no network).
//
// Thread-safe: pure functions of their arguments.
#ifndef MAILLENS_CLI_REPORT_RENDER_H_
#define MAILLENS_CLI_REPORT_RENDER_H_

#include <string>

#include "absl/time/time.h"
#include "collector/report.h"

namespace maillens::cli {

struct RenderOptions {
  absl::TimeZone zone = absl::UTCTimeZone();  // times and hour labels are shown in it
  bool color = false;                         // ANSI colour in text output
};

std::string RenderReportText(const collector::Report& report, const RenderOptions& options);
std::string RenderReportMarkdown(const collector::Report& report, const RenderOptions& options);
std::string RenderReportJson(const collector::Report& report, const RenderOptions& options);
std::string RenderReportHtml(const collector::Report& report, const RenderOptions& options);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_REPORT_RENDER_H_
