// The HTML report in a real browser: headless Chromium (Debian package `chromium`) renders the
// self-contained file of a report over real logs, takes a screenshot and dumps the DOM it
// built. The screenshot must be a real picture, and the charts must be there: SVG elements with
// content and bars of non-zero height. No network, no scripts: the file is opened from disk
// with networking features off.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "report/render.h"
#include "report/report.h"
#include "store/importer.h"
#include "store/store.h"

namespace maillens {
namespace {

namespace fs = std::filesystem;

std::string Corpus(const std::string& rel) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  return std::string(shared ? shared : "../shared") + "/corpus/" + rel;
}

std::string FindChromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return "";
}

// Runs `cmd` and returns its standard output.
std::string Capture(const std::string& cmd, int* status) {
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  if (pipe == nullptr) {
    *status = -1;
    return out;
  }
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  *status = pclose(pipe);
  return out;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ReportHtmlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("maillens_report_html_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    // Keep the picture for a person to look at when asked to.
    if (std::getenv("MAILLENS_KEEP_SCREENSHOT") == nullptr) fs::remove_all(dir_);
  }
  // Chromium with everything that could reach the network or a desktop turned off, and a
  // profile of its own.
  std::string Browser(const std::string& chromium, const std::string& action) {
    return chromium +
           " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
           "--disable-background-networking --disable-component-update --disable-sync "
           "--user-data-dir='" +
           (dir_ / "profile").string() + "' --window-size=1200,2000 " + action + " 'file://" +
           (dir_ / "report.html").string() + "'";
  }
  fs::path dir_;
};

TEST_F(ReportHtmlTest, ChartsRenderInHeadlessChromium) {
  std::string chromium = FindChromium();
  if (chromium.empty()) {
    GTEST_FAIL() << "chromium is not installed (scripts/setup.sh installs it)";
  }
  {
    store::StoreOptions options;
    options.dir = (dir_ / "data").string();
    options.durable = false;
    auto store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store::ImportOptions import;
    import.year = 2023;
    auto stats =
        store::ImportFile(store->get(), Corpus("pixelpark-postfix-logsums/test/mail.log"), import);
    ASSERT_TRUE(stats.ok()) << stats.status();
  }
  auto report = report::BuildReport((dir_ / "data").string(), report::ReportOptions());
  ASSERT_TRUE(report.ok()) << report.status();
  report::RenderOptions render;
  render.zone = absl::UTCTimeZone();
  std::string html = report::RenderReportHtml(*report, render);
  // Self-contained: nothing fetched from anywhere, no scripts.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find("https://"), std::string::npos);
  {
    std::ofstream out(dir_ / "report.html", std::ios::binary);
    out << html;
  }

  // The screenshot: a PNG of the window's size with enough detail to be more than a blank
  // page (a blank 1200x2000 page compresses to a few kilobytes).
  int status = 0;
  fs::path png = dir_ / "report.png";
  Capture(Browser(chromium, "--screenshot='" + png.string() + "'") + " 2>&1", &status);
  ASSERT_EQ(status, 0) << "chromium --screenshot failed";
  ASSERT_TRUE(fs::exists(png));
  std::string image = ReadFile(png);
  ASSERT_GE(image.size(), 24u);
  EXPECT_EQ(image.substr(1, 3), "PNG");
  auto be32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<unsigned char>(image[at])) << 24) |
           (static_cast<uint32_t>(static_cast<unsigned char>(image[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<unsigned char>(image[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<unsigned char>(image[at + 3]));
  };
  EXPECT_EQ(be32(16), 1200u);  // IHDR width
  EXPECT_EQ(be32(20), 2000u);  // IHDR height
  EXPECT_GT(image.size(), 40000u) << "the screenshot is nearly empty";
  std::printf("screenshot %s: %zu bytes\n", png.string().c_str(), image.size());

  // The DOM Chromium built: every chart an <svg> with content, and bars that have height.
  std::string dom = Capture(Browser(chromium, "--dump-dom") + " 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << "chromium --dump-dom failed";
  std::regex svg_re(R"re(<svg[^>]*>([\s\S]*?)</svg>)re");
  int svgs = 0, svgs_with_content = 0;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), svg_re); it != std::sregex_iterator();
       ++it) {
    ++svgs;
    if ((*it)[1].str().find("<rect") != std::string::npos) ++svgs_with_content;
  }
  std::regex bar_re(R"re(<rect class="bar"[^>]*height="([0-9.]+)")re");
  int bars = 0, tall = 0;
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), bar_re); it != std::sregex_iterator();
       ++it) {
    ++bars;
    if (std::stod((*it)[1].str()) > 0) ++tall;
  }
  std::printf("DOM: %d svg (%d with bars), %d bars of which %d with height\n", svgs,
              svgs_with_content, bars, tall);
  // Traffic, trouble, outcomes, totals, sender and recipient domains; and the failing
  // destinations, a chart of deferral lines and one of bounced and expired recipients, each
  // when some domain has them.
  int failing_charts = 0;
  for (auto failed : {+[](const report::TopEntry& e) { return e.deferrals > 0; },
                      +[](const report::TopEntry& e) { return e.bounced + e.expired > 0; }}) {
    if (std::any_of(report->recipient_domains.entries.begin(),
                    report->recipient_domains.entries.end(), failed)) {
      ++failing_charts;
    }
  }
  EXPECT_GT(failing_charts, 0) << "the day has a bounce";
  EXPECT_EQ(svgs, 6 + failing_charts);
  EXPECT_EQ(svgs_with_content, 6 + failing_charts);
  if (failing_charts > 0) {
    EXPECT_NE(dom.find("Failing destinations"), std::string::npos);
  }
  // 72 hours of a real day's traffic: well over a hundred bars, none of them flat.
  EXPECT_GT(bars, 100);
  EXPECT_EQ(tall, bars);
  EXPECT_NE(dom.find("Traffic per hour"), std::string::npos);
  EXPECT_NE(dom.find("gaps: none recorded"), std::string::npos);
}

}  // namespace
}  // namespace maillens
