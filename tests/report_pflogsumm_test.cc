// The report against pflogsumm (Debian package `pflogsumm`), the summary every Postfix
// administrator knows: both read the same log, and every number of pflogsumm's "Grand Totals"
// must equal ours, or differ by exactly the double counting our report identifies.
//
// What pflogsumm 1.1.5 counts (read from /usr/sbin/pflogsumm):
//   received   smtpd `QID: client=` lines plus pickup `sender=|uid=` lines — but only of
//              programs its regex `^postfix(/(smtps|submission))?/([^[:]*)` reads as exactly
//              "smtpd"/"pickup": `postfix/10025/smtpd` (the re-injection smtpd after amavis)
//              is invisible to it, while a relay hop received by our next host's plain
//              `postfix/smtpd` is counted again;
//   delivered  every `status=sent` line, one per recipient, except local(8) "forwarded as" —
//              including the hop *to* the content filter (`postfix/amavis/smtp` to
//              127.0.0.1:10024) and hand-offs to our own relays, so filtered or relayed mail
//              is delivered twice or more;
//   deferred   queue IDs with at least one `status=deferred` line (plus the line count);
//   bounced    `status=bounced` lines (recipients, not messages);
//   rejected   `QID|NOQUEUE: reject:` lines of smtpd/postscreen, and cleanup reject and
//              milter-reject lines (header/body checks).
// Our report counts messages (a trace: every hop and filter once) and exposes the per-line
// counts (report::LineCounts) that tell the two apart; this test adds them up the way
// pflogsumm does and prints each difference with its reason.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "report/report.h"
#include "store/importer.h"
#include "store/store.h"
#include "tools/simulator.h"

namespace maillens::report {
namespace {

namespace fs = std::filesystem;

std::string Corpus(const std::string& rel) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  return std::string(shared ? shared : "../shared") + "/corpus/" + rel;
}

struct PflogsummTotals {
  int64_t received = -1;
  int64_t delivered = -1;
  int64_t forwarded = -1;
  int64_t deferred = -1;
  int64_t deferrals = 0;  // printed only when not zero
  int64_t bounced = -1;
  int64_t rejected = -1;
  int64_t reject_warnings = -1;
  // Sums of the "CMD (total: N)" lines of its Warnings, Fatal Errors and Panics sections.
  int64_t warnings = 0, fatals = 0, panics = 0;
  // "Host/Domain Summary: Message Delivery": defers by recipient domain, where not zero.
  std::map<std::string, int64_t> defers;
};

// Runs pflogsumm over `files` and reads the numbers of its "Grand Totals".
PflogsummTotals RunPflogsumm(const std::vector<std::string>& files, std::string* error) {
  PflogsummTotals t;
  std::string cmd = "pflogsumm";
  for (const std::string& f : files) cmd += " '" + f + "'";
  cmd += " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *error = "cannot run pflogsumm";
    return t;
  }
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  if (status != 0 || out.find("Grand Totals") == std::string::npos) {
    *error =
        "pflogsumm failed (is the Debian package pflogsumm installed? scripts/setup.sh "
        "installs it); its output began: " +
        out.substr(0, 200);
    return t;
  }
  // "    183   received": pflogsumm prints %6d%s with a unit ('k', 'm') above 512k, which
  // would make the number inexact.
  std::string totals = out.substr(out.find("Grand Totals"));
  totals = totals.substr(0, totals.find("Per-"));
  std::regex line(
      R"(^\s*(\d+)([ km])\s+(received|delivered|forwarded|deferred|bounced|rejected)\b(.*)$)");
  std::regex deferrals(R"(\((\d+)([ km])\s*deferrals\))");
  size_t start = 0;
  while (start < totals.size()) {
    size_t end = totals.find('\n', start);
    if (end == std::string::npos) end = totals.size();
    std::string l = totals.substr(start, end - start);
    start = end + 1;
    std::smatch m;
    if (!std::regex_match(l, m, line)) continue;
    if (m[2] != " ") {
      *error = "pflogsumm printed a rounded number: " + l;
      return t;
    }
    int64_t v = std::stoll(m[1]);
    std::string what = m[3];
    if (what == "received") t.received = v;
    if (what == "delivered") t.delivered = v;
    if (what == "forwarded") t.forwarded = v;
    if (what == "bounced") t.bounced = v;
    if (what == "rejected") t.rejected = v;
    if (what == "deferred") {
      t.deferred = v;
      std::string rest = m[4];
      std::smatch d;
      if (std::regex_search(rest, d, deferrals)) t.deferrals = std::stoll(d[1]);
    }
  }
  std::smatch rw;
  if (std::regex_search(totals, rw, std::regex(R"(\n\s*(\d+)([ km])\s+reject warnings\n)"))) {
    if (rw[2] != " ") {
      *error = "pflogsumm printed a rounded number of reject warnings";
      return t;
    }
    t.reject_warnings = std::stoll(rw[1]);
  }
  if (t.received < 0 || t.delivered < 0 || t.deferred < 0 || t.bounced < 0 || t.rejected < 0 ||
      t.reject_warnings < 0) {
    *error = "could not read pflogsumm's Grand Totals:\n" + totals;
    return t;
  }
  // The problem sections: a title line, a dashed line, then "  smtpd (total: 11)" per program
  // and its reasons, up to the next section's title.
  for (auto [title, total] :
       {std::make_pair("\nWarnings\n", &t.warnings), std::make_pair("\nFatal Errors\n", &t.fatals),
        std::make_pair("\nPanics\n", &t.panics)}) {
    size_t at = out.find(title);
    if (at == std::string::npos) continue;  // "Fatal Errors: none"
    std::string section = out.substr(at + std::strlen(title));
    size_t next = section.find("\n\n");  // sections end with an empty line
    section = section.substr(0, next);
    std::regex program_total(R"(\n  \S.* \(total: (\d+)\))");
    for (std::sregex_iterator it(section.begin(), section.end(), program_total), end; it != end;
         ++it) {
      *total += std::stoll((*it)[1]);
    }
  }
  // " sent cnt  bytes   defers   avg dly max dly host/domain" rows; a count with a unit is
  // rounded and fails the comparison visibly (the domain is kept with -1).
  size_t table = out.find("Host/Domain Summary: Message Delivery");
  if (table != std::string::npos) {
    std::string rows = out.substr(table);
    rows = rows.substr(0, rows.find("\n\n", rows.find(" -------- ")));
    std::regex row(R"(\n\s*\d+[km]?\s+\d+[km]?\s+(\d+)([km]?)\s+\S+ \w+\s+\S+ \w+\s+(\S+))");
    for (std::sregex_iterator it(rows.begin(), rows.end(), row), end; it != end; ++it) {
      int64_t n = (*it)[2].length() > 0 ? -1 : std::stoll((*it)[1]);
      if (n != 0) t.defers[(*it)[3]] = n;
    }
  }
  return t;
}

// Programs pflogsumm reads as `cmd` (its regex, with the default syslog name "postfix").
bool PflogsummReadsAs(const std::string& program, const std::string& cmd) {
  return program == "postfix/" + cmd || program == "postfix/submission/" + cmd ||
         program == "postfix/smtps/" + cmd;
}

// One pflogsumm number rebuilt from ours: our message-level number plus or minus each
// explained difference.
struct Reconciled {
  std::string name;
  int64_t ours = 0;  // the report's own number
  struct Term {
    int64_t n;
    std::string why;
  };
  std::vector<Term> terms;
  int64_t Expected() const {
    int64_t v = ours;
    for (const Term& t : terms) v += t.n;
    return v;
  }
  void Print(int64_t pflogsumm) const {
    std::printf("  %-9s pflogsumm %6lld   ours %6lld\n", name.c_str(),
                static_cast<long long>(pflogsumm), static_cast<long long>(ours));
    for (const Term& t : terms) {
      if (t.n != 0)
        std::printf("            %+6lld  %s\n", static_cast<long long>(t.n), t.why.c_str());
    }
    std::printf("            = %6lld  %s\n", static_cast<long long>(Expected()),
                Expected() == pflogsumm ? "agrees" : "DISAGREES");
  }
};

struct Reconciliation {
  Reconciled received, delivered, deferred, bounced, rejected;
};

Reconciliation Reconcile(const Report& r) {
  const LineCounts& l = r.lines;
  Reconciliation out;

  // Received: one per trace whose entry came through smtpd or pickup.
  out.received.name = "received";
  out.received.ours = r.counts.received;
  int64_t relay_again = 0, filter_again = 0, invisible = 0;
  for (const auto& rec : l.receptions) {
    bool read = PflogsummReadsAs(rec.program, "smtpd") || PflogsummReadsAs(rec.program, "pickup");
    if (read) {
      relay_again += rec.from_our_hosts;
      filter_again += rec.from_content_filters;
    } else {
      invisible -= rec.entry;
    }
  }
  out.received.terms = {
      {relay_again,
       "relay hops: our next host's smtpd logs client= for a message already "
       "received by the host before it"},
      {filter_again, "content-filter re-injections logged under a name pflogsumm reads as smtpd"},
      {invisible,
       "entries logged by a program pflogsumm does not read (e.g. a second smtpd "
       "service such as postfix/10025/smtpd)"},
      {l.merged_entries,
       "receptions the correlator joined into another message's trace (queue "
       "ID reuse, message-id fallback): two lines, one message for us"},
      {-l.rootless_traces,
       "traces that are a cycle of links: received once by us, though no "
       "client= line of theirs is a root"}};

  // Delivered: pflogsumm counts recipients per line and every hop.
  out.delivered.name = "delivered";
  out.delivered.ours = r.counts.recipients_delivered;
  out.delivered.terms = {
      {l.content_filter_hops,
       "deliveries to the content filter (postfix/amavis/smtp to "
       "127.0.0.1:10024): counted again when the filtered copy is delivered"},
      {l.our_relay_hops, "hand-offs to our own relays: counted again when the next host delivers"}};

  // Deferred: pflogsumm counts queue IDs; we count messages.
  out.deferred.name = "deferred";
  out.deferred.ours = r.counts.deferred;
  out.deferred.terms = {
      {l.deferred_instances - r.counts.deferred,
       "instances beyond the first of a message deferred on several hops (each its own queue "
       "ID)"},
      {l.deferred_queue_ids - l.deferred_instances,
       "instances sharing a queue ID text (a reused short ID, or one ID on two hosts): one "
       "for pflogsumm, which keys deferrals by queue ID alone"}};

  // Bounced: pflogsumm counts recipients.
  out.bounced.name = "bounced";
  out.bounced.ours = r.counts.bounced;
  out.bounced.terms = {{l.bounced_recipients - r.counts.bounced,
                        "recipients beyond the first of messages bounced for several "
                        "recipients (pflogsumm counts status=bounced lines)"}};

  // Rejected: both count lines; pflogsumm only some programs and actions.
  out.rejected.name = "rejected";
  out.rejected.ours = r.counts.rejected;
  int64_t unread = 0;
  for (const auto& ref : l.refusals) {
    bool read =
        ((PflogsummReadsAs(ref.program, "smtpd") || PflogsummReadsAs(ref.program, "postscreen")) &&
         ref.action == "reject") ||
        (PflogsummReadsAs(ref.program, "cleanup") && ref.action == "reject");
    if (!read) unread -= ref.count;
  }
  out.rejected.terms = {{unread,
                         "refusals pflogsumm does not count (defer:, smtpd milter-reject, "
                         "programs it does not read)"}};
  return out;
}

class ReportPflogsummTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("maillens_report_pfl_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Imports `files` (host names from the lines; classic stamps of `year`, UTC) into
  // dir_/data.
  void Import(const std::vector<std::string>& files, int year) {
    store::StoreOptions options;
    options.dir = (dir_ / "data").string();
    options.durable = false;
    auto store = store::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    for (const std::string& f : files) {
      store::ImportOptions import;
      import.year = year;
      import.zone = absl::UTCTimeZone();
      auto stats = store::ImportFile(store->get(), f, import);
      ASSERT_TRUE(stats.ok()) << stats.status();
      ASSERT_GT(stats->stored, 0u) << f;
    }
  }

  // The report over `text`, written as one maillog of 2023 and imported.
  void ReportOfLog(const std::string& text, Report* report,
                   const ReportOptions& options = ReportOptions()) {
    fs::create_directories(dir_);
    const std::string log = (dir_ / "mail.log").string();
    { std::ofstream(log) << text; }
    ASSERT_NO_FATAL_FAILURE(Import({log}, 2023));
    auto built = BuildReport((dir_ / "data").string(), options);
    ASSERT_TRUE(built.ok()) << built.status();
    *report = std::move(*built);
  }

  // Imports `files` (host names from the lines), builds the report over everything stored,
  // runs pflogsumm over the same files and compares.
  void Compare(const std::vector<std::string>& files, int year, Reconciliation* rec, Report* report,
               PflogsummTotals* pfl) {
    ASSERT_NO_FATAL_FAILURE(Import(files, year));
    auto built = BuildReport((dir_ / "data").string(), ReportOptions());
    ASSERT_TRUE(built.ok()) << built.status();
    *report = std::move(*built);
    std::string error;
    *pfl = RunPflogsumm(files, &error);
    ASSERT_TRUE(error.empty()) << error;
    *rec = Reconcile(*report);
    const LineCounts& l = report->lines;

    std::printf("pflogsumm against maillens report over %zu file(s):\n", files.size());
    rec->received.Print(pfl->received);
    rec->delivered.Print(pfl->delivered);
    std::printf(
        "            (ours: %lld messages delivered; pflogsumm counts recipients, "
        "%lld of ours are notices returned to senders)\n",
        static_cast<long long>(report->counts.delivered),
        static_cast<long long>(l.final_notice_deliveries));
    rec->deferred.Print(pfl->deferred);
    rec->bounced.Print(pfl->bounced);
    rec->rejected.Print(pfl->rejected);
    std::printf(
        "  forwarded pflogsumm %6lld   ours %6lld (local(8) forwarding, excluded by both)\n",
        static_cast<long long>(pfl->forwarded), static_cast<long long>(l.forwarded));
    std::printf("  deferrals pflogsumm %6lld   ours %6lld (lines)\n",
                static_cast<long long>(pfl->deferrals), static_cast<long long>(l.deferral_lines));

    EXPECT_EQ(pfl->received, rec->received.Expected());
    EXPECT_EQ(pfl->delivered, rec->delivered.Expected());
    EXPECT_EQ(pfl->deferred, rec->deferred.Expected());
    EXPECT_EQ(pfl->bounced, rec->bounced.Expected());
    EXPECT_EQ(pfl->rejected, rec->rejected.Expected());
    EXPECT_EQ(pfl->forwarded, l.forwarded);
    EXPECT_EQ(pfl->deferrals, l.deferral_lines);
    // Line counts both make the same way (docs/REPORT.md): reject warnings, the warning,
    // fatal and panic lines of the problems list, deferral lines per recipient domain.
    std::printf(
        "  reject warnings pflogsumm %lld ours %lld; warnings %lld / %lld; fatal %lld / "
        "%lld; panics %lld / %lld; %zu domains with defers\n",
        static_cast<long long>(pfl->reject_warnings),
        static_cast<long long>(report->counts.reject_warnings),
        static_cast<long long>(pfl->warnings), static_cast<long long>(report->counts.warnings),
        static_cast<long long>(pfl->fatals), static_cast<long long>(report->counts.fatals),
        static_cast<long long>(pfl->panics), static_cast<long long>(report->counts.panics),
        pfl->defers.size());
    EXPECT_EQ(pfl->reject_warnings, report->counts.reject_warnings);
    int64_t problems[3] = {0, 0, 0};
    for (const Problem& p : report->problems) {
      problems[p.severity == "warning" ? 0 : p.severity == "fatal" ? 1 : 2] += p.count;
    }
    EXPECT_EQ(pfl->warnings, problems[0]);
    EXPECT_EQ(pfl->fatals, problems[1]);
    EXPECT_EQ(pfl->panics, problems[2]);
    EXPECT_EQ(problems[0], report->counts.warnings);
    std::map<std::string, int64_t> ours;
    for (const TopEntry& e : report->recipient_domains.entries) {
      if (e.deferrals > 0) ours[e.key] = e.deferrals;
    }
    EXPECT_EQ(pfl->defers, ours) << "deferral lines per recipient domain";

    // The report agrees with itself: its message-level numbers and its line counts.
    int64_t entries = 0;
    for (const auto& r : l.receptions) entries += r.entry;
    EXPECT_EQ(entries, report->counts.received + l.merged_entries - l.rootless_traces);
    EXPECT_EQ(report->counts.recipients_delivered, l.final_deliveries);
    EXPECT_EQ(report->counts.recipients_bounced, l.bounced_recipients);
    EXPECT_EQ(report->counts.deferrals, l.deferral_lines);
    EXPECT_LE(report->counts.deferred, l.deferred_instances);
    EXPECT_LE(report->counts.delivered, report->counts.received + report->counts.entered_otherwise);
  }

  fs::path dir_;
};

// One real production host with amavis (pixelpark, 69,861 lines, RFC 3339 stamps): received,
// deferred, bounced and rejected agree exactly; delivered differs by exactly the deliveries to
// the content filter, which pflogsumm counts as well as the delivery of the filtered copy.
TEST_F(ReportPflogsummTest, PixelparkAgreesUpToContentFilterHops) {
  Reconciliation rec;
  Report report;
  PflogsummTotals pfl;
  Compare({Corpus("pixelpark-postfix-logsums/test/mail.log")}, 2023, &rec, &report, &pfl);
  if (HasFatalFailure()) return;
  const LineCounts& l = report.lines;
  // Received: 161 postfix/smtpd + 16 postfix/submission/smtpd entries + 6 pickups; the 180
  // re-injections by postfix/10025/smtpd are invisible to pflogsumm and are not new messages
  // for us either, so the numbers agree without any correction.
  EXPECT_EQ(pfl.received, report.counts.received);
  EXPECT_EQ(l.merged_entries, 0);
  EXPECT_EQ(l.rootless_traces, 0);
  // Delivered: pflogsumm's 361 = our 180 recipient deliveries at the final hop (Dovecot, three
  // foreign MTAs, one of them the bounce notice) + 181 hops to amavis on 127.0.0.1:10024 and
  // :10026 — the content-filter double counting, and nothing else.
  EXPECT_EQ(pfl.delivered - report.counts.recipients_delivered, l.content_filter_hops);
  EXPECT_GT(l.content_filter_hops, 0);
  EXPECT_EQ(l.our_relay_hops, 0);  // one host
  // Deferred, bounced, rejected: the same numbers.
  EXPECT_EQ(pfl.deferred, report.counts.deferred);
  EXPECT_EQ(pfl.bounced, report.counts.bounced);
  EXPECT_EQ(pfl.rejected, report.counts.rejected);
}

// A simulated site (tools/simulator.h): a DMZ relay with amavis, an internal mailbox server and
// an outbound relay, each with its own log. pflogsumm over the three logs counts relay hops
// between our hosts again on every host, and content-filter hops again; the report identifies
// each of them.
TEST_F(ReportPflogsummTest, SimulatedSiteAgreesUpToIdentifiedDoubleCounting) {
  tools::SimulatorOptions sim;
  sim.seed = 4242;
  sim.target_lines = 60000;
  sim.start = absl::FromUnixSeconds(1735682400);  // 2024-12-31T22:00:00Z, across the new year
  sim.duration = absl::Hours(4);
  sim.hosts = {{"dmz", absl::ZeroDuration(), tools::StampForm::kClassic, false},
               {"mx", absl::Seconds(40), tools::StampForm::kRfc3339, false},
               {"out", absl::Seconds(-30), tools::StampForm::kClassicZeroPadded, true}};
  auto summary = tools::SimulateToDirectory(sim, (dir_ / "logs").string());
  ASSERT_TRUE(summary.ok()) << summary.status();
  std::vector<std::string> files;
  for (const auto& h : sim.hosts) files.push_back((dir_ / "logs" / (h.name + ".log")).string());
  Reconciliation rec;
  Report report;
  PflogsummTotals pfl;
  Compare(files, 2024, &rec, &report, &pfl);
  if (HasFatalFailure()) return;
  const LineCounts& l = report.lines;
  // The site relays between its hosts and filters through amavis: both kinds of double
  // counting must be there for this test to mean anything.
  EXPECT_GT(l.our_relay_hops, 0);
  EXPECT_GT(l.content_filter_hops, 0);
  EXPECT_GT(pfl.received, report.counts.received);
  EXPECT_GT(pfl.delivered, report.counts.recipients_delivered);
  EXPECT_GT(report.counts.deferred, 0);
  EXPECT_GT(report.counts.bounced, 0);
  EXPECT_GT(report.counts.rejected, 0);
  // Joined receptions are correlation errors; a few in a thousand are tolerated here (the
  // correlator's own accuracy test holds the line), more means the report is misleading.
  EXPECT_LE(l.merged_entries + l.rootless_traces, report.counts.received / 100 + 1)
      << "the correlator joined " << l.merged_entries << " receptions into other traces and "
      << "left " << l.rootless_traces << " traces without a root";
}

// Mail that cleanup refuses (a header/body check, a milter) is counted as rejected or
// discarded, never under the null sender "<>": its sender is on the refusal line only.
TEST_F(ReportPflogsummTest, CleanupRefusalsCountAsRejectedAndDiscardedNotAsNullSender) {
  Report report;
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(
      "Nov 15 12:00:00 mx postfix/smtpd[11]: 2A2A2A2A2A: client=unknown[192.0.2.7]\n"
      "Nov 15 12:00:01 mx postfix/cleanup[12]: 2A2A2A2A2A: reject: header Subject: win "
      "from unknown[192.0.2.7]; from=<spam@bad.test> to=<bob@example.test> proto=ESMTP "
      "helo=<bad.test>: 5.7.1 No thanks\n"
      "Nov 15 12:00:02 mx postfix/smtpd[11]: 3B3B3B3B3B: client=ok[192.0.2.8]\n"
      "Nov 15 12:00:03 mx postfix/cleanup[12]: 3B3B3B3B3B: message-id=<m1@ok.test>\n"
      "Nov 15 12:00:04 mx postfix/cleanup[12]: 3B3B3B3B3B: milter-reject: END-OF-MESSAGE "
      "from ok[192.0.2.8]: 5.7.1 Spam message rejected; from=<ann@ok.test> "
      "to=<carl@example.test> proto=ESMTP helo=<ok>\n"
      "Nov 15 12:00:05 mx postfix/smtpd[11]: 4C4C4C4C4C: client=ok[192.0.2.8]\n"
      "Nov 15 12:00:06 mx postfix/cleanup[12]: 4C4C4C4C4C: discard: body casino from "
      "ok[192.0.2.8]; from=<ann@ok.test> to=<dora@example.test> proto=ESMTP helo=<ok>: "
      "gambling\n",
      &report));
  EXPECT_EQ(report.counts.received, 3);
  EXPECT_EQ(report.counts.rejected, 2);  // the two reject lines
  EXPECT_EQ(report.counts.discarded, 1);
  EXPECT_EQ(report.counts.delivered, 0);
  std::map<std::string, int64_t> outcomes(report.outcomes.begin(), report.outcomes.end());
  EXPECT_EQ(outcomes["rejected"], 2);
  EXPECT_EQ(outcomes["discarded"], 1);
  EXPECT_EQ(outcomes.count("in queue"), 0u);
  std::map<std::string, int64_t> senders;
  for (const TopEntry& e : report.senders.entries) senders[e.key] = e.messages;
  EXPECT_EQ(senders.count("<>"), 0u) << "refused mail is not null-sender mail";
  // The discarded message was accepted (the client was told it was delivered): its sender
  // sent it. The rejected ones were not sent.
  EXPECT_EQ(senders["ann@ok.test"], 1);
  EXPECT_EQ(senders.count("spam@bad.test"), 0u);
}

// postsuper -d: a message the administrator deleted from the queue (the correlator reads it
// "deleted" when no recipient got further) is counted as deleted, not as still "in queue";
// one with a recipient delivered before reads delivered.
TEST_F(ReportPflogsummTest, MessageDeletedByTheAdministratorCountsAsDeleted) {
  Report report;
  // Deferred (greylisted), then deleted.
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(
      "Nov 15 12:00:00 dmz postfix/smtpd[1]: 17623A8689: client=mx.example.test[192.0.2.3]\n"
      "Nov 15 12:00:01 dmz postfix/qmgr[2]: 17623A8689: from=<heidi@example.test>, "
      "size=1412, nrcpt=1 (queue active)\n"
      "Nov 15 12:00:02 dmz postfix/smtp[3]: 17623A8689: to=<user1@flaky.test>, "
      "relay=mx.flaky.test[198.51.100.8]:25, delay=0.02, delays=0/0/0/0.01, dsn=4.7.1, "
      "status=deferred (host mx.flaky.test[198.51.100.8] said: 450 4.7.1 Greylisted)\n"
      // Put on hold, then deleted.
      "Nov 15 12:00:03 dmz postfix/smtpd[1]: 39845CA8A1: client=mx.example.test[192.0.2.3]\n"
      "Nov 15 12:00:04 dmz postfix/cleanup[4]: 39845CA8A1: hold: header Subject: audit from "
      "mx.example.test[192.0.2.3]; from=<judy@example.test> to=<kim@partner.test> "
      "proto=ESMTP helo=<mx.example.test>: held for review\n"
      // Waiting for its first delivery attempt: in queue.
      "Nov 15 12:00:05 dmz postfix/smtpd[1]: 4A956DB9B2: client=mx.example.test[192.0.2.3]\n"
      "Nov 15 12:00:06 dmz postfix/qmgr[2]: 4A956DB9B2: from=<ivan@example.test>, size=900, "
      "nrcpt=1 (queue active)\n"
      "Nov 15 12:00:09 dmz postfix/postsuper[5]: 17623A8689: removed\n"
      "Nov 15 12:00:10 dmz postfix/postsuper[5]: 39845CA8A1: removed\n"
      "Nov 15 12:00:11 dmz postfix/postsuper[5]: Deleted: 2 messages\n",
      &report));
  std::map<std::string, int64_t> outcomes(report.outcomes.begin(), report.outcomes.end());
  EXPECT_EQ(outcomes["deleted"], 2);
  EXPECT_EQ(outcomes["in queue"], 1) << "only the message still waiting";
}

// A destination whose mail only deferred and expired is listed however small the top, with
// its deferral lines (pflogsumm's "defers"), the messages they belong to and the recipients
// that expired; the delivered domain carries its delay from entry to delivery.
TEST_F(ReportPflogsummTest, RecipientDomainsListEveryFailingDomain) {
  Report report;
  ReportOptions options;
  options.top = 1;
  ASSERT_NO_FATAL_FAILURE(
      ReportOfLog("Nov 15 12:00:00 mx postfix/smtpd[1]: 1A1A1A1A1A: client=a[192.0.2.1]\n"
                  "Nov 15 12:00:01 mx postfix/qmgr[2]: 1A1A1A1A1A: from=<ann@src.test>, size=100, "
                  "nrcpt=2 (queue active)\n"
                  "Nov 15 12:00:03 mx postfix/smtp[3]: 1A1A1A1A1A: to=<bo@busy.test>, "
                  "relay=mx.busy.test[198.51.100.1]:25, delay=3, delays=0/0/0/3, dsn=2.0.0, "
                  "status=sent (250 ok)\n"
                  "Nov 15 12:00:09 mx postfix/smtp[3]: 1A1A1A1A1A: to=<cy@busy.test>, "
                  "relay=mx.busy.test[198.51.100.1]:25, delay=9, delays=0/0/0/9, dsn=2.0.0, "
                  "status=sent (250 ok)\n"
                  "Nov 15 12:00:10 mx postfix/qmgr[2]: 1A1A1A1A1A: removed\n"
                  "Nov 15 12:01:00 mx postfix/smtpd[1]: 2B2B2B2B2B: client=a[192.0.2.1]\n"
                  "Nov 15 12:01:01 mx postfix/qmgr[2]: 2B2B2B2B2B: from=<ann@src.test>, size=100, "
                  "nrcpt=1 (queue active)\n"
                  "Nov 15 12:01:02 mx postfix/smtp[3]: 2B2B2B2B2B: to=<di@Down.test>, "
                  "relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to "
                  "mx.down.test[203.0.113.9]:25: Connection refused)\n"
                  "Nov 15 12:05:02 mx postfix/smtp[3]: 2B2B2B2B2B: to=<di@Down.test>, "
                  "relay=none, delay=241, delays=240/0/1/0, dsn=4.4.1, status=deferred (connect to "
                  "mx.down.test[203.0.113.9]:25: Connection refused)\n"
                  "Nov 15 12:09:02 mx postfix/qmgr[2]: 2B2B2B2B2B: from=<ann@src.test>, "
                  "status=expired, returned to sender\n"
                  "Nov 15 12:09:03 mx postfix/qmgr[2]: 2B2B2B2B2B: removed\n",
                  &report, options));
  std::map<std::string, TopEntry> domains;
  for (const TopEntry& e : report.recipient_domains.entries) domains[e.key] = e;
  ASSERT_EQ(domains.size(), 2u) << "the top one and the failing one";
  const TopEntry& busy = domains["busy.test"];
  EXPECT_EQ(busy.messages, 2);
  EXPECT_EQ(busy.deferrals, 0);
  EXPECT_EQ(busy.delay_count, 2);
  EXPECT_DOUBLE_EQ(busy.delay_avg, 6);  // 3 s and 9 s after the client= line
  EXPECT_DOUBLE_EQ(busy.delay_max, 9);
  ASSERT_EQ(domains.count("down.test"), 1u) << "lower-cased, listed despite top = 1";
  const TopEntry& down = domains["down.test"];
  EXPECT_EQ(down.messages, 0);
  EXPECT_EQ(down.deferrals, 2);
  EXPECT_EQ(down.deferred, 1);
  EXPECT_EQ(down.expired, 1);
  EXPECT_EQ(down.bounced, 0);
  EXPECT_EQ(report.counts.deferrals, 2);
}

// Warning, fatal and panic lines are grouped by program and normalised text; a SASL failure
// is a warning too; a header check's "QID: warning: header" is a reject warning instead, as
// smtpd's reject_warning is.
TEST_F(ReportPflogsummTest, ProblemsAndRejectWarnings) {
  Report report;
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(
      "Nov 15 12:00:00 mx postfix/smtpd[1]: warning: non-SMTP command from "
      "unknown[192.0.2.14]: Subject: hi\n"
      "Nov 15 12:00:01 mx postfix/smtpd[1]: warning: non-SMTP command from "
      "other[192.0.2.15]: Subject: hi\n"
      "Nov 15 12:00:02 mx postfix/submission/smtpd[4]: warning: ws1[192.0.2.21]: SASL "
      "PLAIN authentication failed: (reason unavailable), sasl_username=carol@example.test\n"
      "Nov 15 12:00:03 mx postfix/submission/smtpd[4]: warning: ws2[192.0.2.22]: SASL "
      "PLAIN authentication failed: (reason unavailable), sasl_username=dave@example.test\n"
      "Nov 15 12:00:04 mx postfix/cleanup[5]: warning: mail_stream_cleanup: close error\n"
      "Nov 15 12:00:05 mx postfix/master[6]: fatal: bind 0.0.0.0 port 25: Address in use\n"
      "Nov 15 12:00:06 mx postfix/qmgr[7]: panic: myfree: corrupt or unallocated memory\n"
      "Nov 15 12:00:07 mx postfix/smtpd[1]: 3C3C3C3C3C: client=s[192.0.2.12]\n"
      "Nov 15 12:00:08 mx postfix/cleanup[5]: 3C3C3C3C3C: warning: header Subject: WARNME "
      "from s[192.0.2.12]; from=<a@s.test> to=<b@example.test> proto=ESMTP helo=<s>: seen\n"
      "Nov 15 12:00:09 mx postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from "
      "m[192.0.2.5]: 554 5.7.1 <p@example.net>: Relay access denied; from=<q@m.test> "
      "to=<p@example.net> proto=ESMTP helo=<m>\n",
      &report));
  EXPECT_EQ(report.counts.warnings, 5);
  EXPECT_EQ(report.counts.fatals, 1);
  EXPECT_EQ(report.counts.panics, 1);
  EXPECT_EQ(report.counts.reject_warnings, 2);
  EXPECT_EQ(report.counts.rejected, 0) << "a reject warning refused nothing";
  std::map<std::pair<std::string, std::string>, int64_t> groups;
  int64_t total = 0;
  for (const Problem& p : report.problems) {
    groups[{p.severity, p.program}] += p.count;
    total += p.count;
    EXPECT_EQ(p.text.find("192.0.2"), std::string::npos) << p.text;
  }
  EXPECT_EQ(total, 7);
  ASSERT_GE(report.problems.size(), 2u);
  EXPECT_EQ(report.problems[0].severity, "panic") << "most severe first";
  EXPECT_EQ(report.problems[1].severity, "fatal");
  EXPECT_EQ((groups[{"warning", "postfix/smtpd"}]), 2);
  EXPECT_EQ((groups[{"warning", "postfix/submission/smtpd"}]), 2);
  EXPECT_EQ((groups[{"warning", "postfix/cleanup"}]), 1);
  // Both non-SMTP warnings and both SASL failures are one group each, whatever the client
  // and the user name.
  EXPECT_EQ(report.problems.size(), 5u);
  EXPECT_EQ(report.counts.sasl_failures, 2);
}

// The front door and the abuse view: postscreen events and DNSBL sites, refusals by client
// and network, Dovecot login failures beside SASL failures.
TEST_F(ReportPflogsummTest, PostscreenRejectedNetworksAndLoginFailures) {
  Report report;
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(
      "Nov 15 12:00:00 mx postfix/postscreen[1]: CONNECT from [192.0.2.1]:1234 to "
      "[192.0.2.254]:25\n"
      "Nov 15 12:00:00 mx postfix/dnsblog[2]: addr 192.0.2.1 listed by domain "
      "zen.spamhaus.org as 127.0.0.2\n"
      "Nov 15 12:00:00 mx postfix/dnsblog[2]: addr 192.0.2.1 listed by domain "
      "bl.spamcop.net as 127.0.0.2\n"
      "Nov 15 12:00:01 mx postfix/postscreen[1]: PREGREET 11 after 0.1 from "
      "[192.0.2.1]:1234: EHLO x\\r\\n\n"
      "Nov 15 12:00:01 mx postfix/postscreen[1]: DNSBL rank 4 for [192.0.2.1]:1234\n"
      "Nov 15 12:00:02 mx postfix/postscreen[1]: CONNECT from [192.0.2.9]:555 to "
      "[192.0.2.254]:25\n"
      "Nov 15 12:00:02 mx postfix/dnsblog[2]: addr 192.0.2.9 listed by domain "
      "zen.spamhaus.org as 127.0.0.4\n"
      "Nov 15 12:00:03 mx postfix/postscreen[1]: PASS NEW [192.0.2.9]:555\n"
      "Nov 15 12:00:04 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from a[198.51.100.1]: "
      "554 5.7.1 <x@y.test>: Relay access denied; from=<s@a.test> to=<x@y.test> "
      "proto=ESMTP helo=<a>\n"
      "Nov 15 12:00:05 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from b[198.51.100.2]: "
      "554 5.7.1 <x@y.test>: Relay access denied; from=<s@b.test> to=<x@y.test> "
      "proto=ESMTP helo=<b>\n"
      "Nov 15 12:00:06 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from b[198.51.100.2]: "
      "554 5.7.1 <z@y.test>: Relay access denied; from=<s@b.test> to=<z@y.test> "
      "proto=ESMTP helo=<b>\n"
      "Nov 15 12:00:07 mx dovecot: imap-login: Disconnected (auth failed, 3 attempts in 15 "
      "secs): user=<bob>, method=PLAIN, rip=203.0.113.5, lip=192.0.2.254, session=<abc>\n"
      "Nov 15 12:00:08 mx dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 "
      "secs): user=<eve>, method=PLAIN, rip=203.0.113.5, lip=192.0.2.254, session=<abd>\n"
      "Nov 15 12:00:09 mx dovecot: imap-login: Login: user=<bob>, method=PLAIN, "
      "rip=203.0.113.6, lip=192.0.2.254, mpid=5, session=<abe>\n",
      &report));
  const PostscreenSummary& ps = report.postscreen;
  EXPECT_EQ(ps.connections, 2);
  EXPECT_EQ(ps.pass_new, 1);
  EXPECT_EQ(ps.pass_old, 0);
  std::map<std::string, int64_t> events, sites;
  for (const CountEntry& e : ps.events.entries) events[e.key] = e.count;
  for (const CountEntry& e : ps.dnsbl_sites.entries) sites[e.key] = e.count;
  EXPECT_EQ(events["PREGREET"], 1);
  EXPECT_EQ(events["DNSBL"], 1);
  EXPECT_EQ(sites["zen.spamhaus.org"], 2);
  EXPECT_EQ(sites["bl.spamcop.net"], 1);
  ASSERT_FALSE(ps.dnsbl_sites.entries.empty());
  EXPECT_EQ(ps.dnsbl_sites.entries[0].key, "zen.spamhaus.org") << "most hits first";
  EXPECT_EQ(ps.dnsbl_sites.entries[0].distinct, 2) << "two clients";

  EXPECT_EQ(report.counts.rejected, 3);
  ASSERT_EQ(report.rejected_clients.entries.size(), 2u);
  EXPECT_EQ(report.rejected_clients.entries[0].key, "198.51.100.2");
  EXPECT_EQ(report.rejected_clients.entries[0].count, 2);
  ASSERT_EQ(report.rejected_networks.entries.size(), 1u);
  EXPECT_EQ(report.rejected_networks.entries[0].key, "198.51.100.0/24");
  EXPECT_EQ(report.rejected_networks.entries[0].count, 3);
  EXPECT_EQ(report.rejected_networks.entries[0].distinct, 2);

  EXPECT_EQ(report.counts.login_failures, 2) << "the successful login is no failure";
  ASSERT_EQ(report.login_failures.size(), 1u);
  EXPECT_EQ(report.login_failures[0].client_ip, "203.0.113.5");
  EXPECT_EQ(report.login_failures[0].distinct_users, 2);
}

// --domain: only mail from or to the domains, in every section.
TEST_F(ReportPflogsummTest, DomainFilterKeepsMailFromOrToTheDomains) {
  const std::string log =
      "Nov 15 12:00:00 mx postfix/smtpd[1]: 1A1A1A1A1A: client=a[192.0.2.1]\n"
      "Nov 15 12:00:01 mx postfix/qmgr[2]: 1A1A1A1A1A: from=<ann@src.test>, size=100, "
      "nrcpt=2 (queue active)\n"
      "Nov 15 12:00:02 mx postfix/smtp[3]: 1A1A1A1A1A: to=<bo@a.test>, "
      "relay=mx.a.test[198.51.100.1]:25, delay=2, delays=0/0/0/2, dsn=2.0.0, "
      "status=sent (250 ok)\n"
      "Nov 15 12:00:03 mx postfix/smtp[3]: 1A1A1A1A1A: to=<cy@b.test>, "
      "relay=mx.b.test[198.51.100.2]:25, delay=3, delays=0/0/0/3, dsn=2.0.0, "
      "status=sent (250 ok)\n"
      "Nov 15 12:00:04 mx postfix/qmgr[2]: 1A1A1A1A1A: removed\n"
      "Nov 15 12:01:00 mx postfix/smtpd[1]: 2B2B2B2B2B: client=a[192.0.2.1]\n"
      "Nov 15 12:01:01 mx postfix/qmgr[2]: 2B2B2B2B2B: from=<ann@src.test>, size=100, "
      "nrcpt=1 (queue active)\n"
      "Nov 15 12:01:02 mx postfix/smtp[3]: 2B2B2B2B2B: to=<di@b.test>, "
      "relay=none, delay=1, delays=0/0/1/0, dsn=4.4.1, status=deferred (connect to "
      "mx.b.test[203.0.113.9]:25: Connection refused)\n"
      "Nov 15 12:02:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from c[198.51.100.7]: "
      "554 5.7.1 <x@b.test>: Relay access denied; from=<s@c.test> to=<x@b.test> "
      "proto=ESMTP helo=<c>\n"
      "Nov 15 12:02:01 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from c[198.51.100.7]: "
      "554 5.7.1 <x@a.test>: Relay access denied; from=<s@c.test> to=<x@a.test> "
      "proto=ESMTP helo=<c>\n"
      "Nov 15 12:02:02 mx postfix/smtpd[1]: warning: non-SMTP command from "
      "unknown[192.0.2.14]: Subject: hi\n"
      // To an alias of a.test that expands to an address elsewhere: mail to a.test.
      "Nov 15 12:03:00 mx postfix/smtpd[1]: 3C3C3C3C3C: client=d[192.0.2.3]\n"
      "Nov 15 12:03:01 mx postfix/qmgr[2]: 3C3C3C3C3C: from=<eve@other.test>, size=100, "
      "nrcpt=1 (queue active)\n"
      "Nov 15 12:03:02 mx postfix/local[4]: 3C3C3C3C3C: to=<hr@staff.test>, "
      "orig_to=<all@a.test>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, "
      "status=sent (delivered to mailbox)\n"
      "Nov 15 12:03:03 mx postfix/qmgr[2]: 3C3C3C3C3C: removed\n";
  Report all;
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(log, &all));
  EXPECT_EQ(all.counts.received, 3);
  EXPECT_EQ(all.counts.rejected, 2);
  EXPECT_EQ(all.counts.deferrals, 1);
  EXPECT_EQ(all.counts.warnings, 1);
  fs::remove_all(dir_);

  Report a;
  ReportOptions options;
  options.domains = {"A.test"};
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(log, &a, options));
  EXPECT_EQ(a.counts.received, 2) << "the messages with a recipient in a.test (one by alias)";
  EXPECT_EQ(a.counts.recipients_delivered, 2) << "only their a.test recipients";
  for (const auto& [name, count] : a.outcomes) {
    EXPECT_NE(name, "in queue") << count << " delivered messages read as waiting";
  }
  EXPECT_EQ(a.counts.rejected, 1);
  EXPECT_EQ(a.counts.deferrals, 0);
  EXPECT_EQ(a.counts.warnings, 0) << "a warning names no domain";
  // a.test, and staff.test where the alias of a.test delivered; not b.test.
  std::set<std::string> domains;
  for (const auto& e : a.recipient_domains.entries) domains.insert(e.key);
  EXPECT_EQ(domains, (std::set<std::string>{"a.test", "staff.test"}));
  fs::remove_all(dir_);

  // By sender: every recipient of mail from src.test.
  Report src;
  options.domains = {"src.test"};
  ASSERT_NO_FATAL_FAILURE(ReportOfLog(log, &src, options));
  EXPECT_EQ(src.counts.received, 2);
  EXPECT_EQ(src.counts.recipients_delivered, 2);
  EXPECT_EQ(src.counts.deferrals, 1);
  EXPECT_EQ(src.counts.rejected, 0);
}

// Traffic buckets start at whole hours of the report's zone: India is 5:30 ahead of UTC.
TEST_F(ReportPflogsummTest, TrafficBucketsAreHoursOfTheReportZone) {
  Report report;
  ReportOptions options;
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Kolkata", &options.zone));
  ASSERT_NO_FATAL_FAILURE(
      ReportOfLog("Nov 15 12:10:00 mx postfix/smtpd[1]: 1A1A1A1A1A: client=a[192.0.2.1]\n"
                  "Nov 15 12:40:00 mx postfix/smtpd[1]: 2B2B2B2B2B: client=a[192.0.2.1]\n",
                  &report, options));
  ASSERT_EQ(report.traffic.size(), 2u) << "12:10 and 12:40 UTC are 17:40 and 18:10 in India";
  for (const TrafficBucket& b : report.traffic) {
    absl::CivilSecond local = absl::ToCivilSecond(absl::FromUnixMicros(b.start_us), options.zone);
    EXPECT_EQ(local.minute(), 0);
    EXPECT_EQ(local.second(), 0);
  }
  EXPECT_EQ(report.traffic[0].received, 1);
  EXPECT_EQ(report.traffic[1].received, 1);
}

}  // namespace
}  // namespace maillens::report
