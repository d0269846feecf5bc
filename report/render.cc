#include "report/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/escape.h"
#include "core/json.h"
#include "report/table.h"

namespace maillens::report {
namespace {

using report::Report;
using report::ReportCounts;

// ---------------------------------------------------------------------------------------------
// Formatting helpers.

std::string Num(int64_t n) {
  // Thousands separated by a thin space would confuse copy-paste; plain digits, like pflogsumm.
  return absl::StrCat(n);
}

std::string Bytes(int64_t n) {
  if (n < 1000) return absl::StrCat(n, " B");
  const char* units[] = {"kB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1000 && u < 3) {
    v /= 1000;
    ++u;
  }
  return v < 10 ? absl::StrFormat("%.1f %s", v, units[u]) : absl::StrFormat("%.0f %s", v, units[u]);
}

std::string Seconds(double s) {
  if (s < 10) return absl::StrFormat("%.2f s", s);
  if (s < 120) return absl::StrFormat("%.0f s", s);
  if (s < 7200) return absl::StrFormat("%.1f min", s / 60);
  if (s < 172800) return absl::StrFormat("%.1f h", s / 3600);
  return absl::StrFormat("%.1f d", s / 86400);
}

std::string Time(int64_t us, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M", absl::FromUnixMicros(us), zone);
}

std::string TimeSec(int64_t us, absl::TimeZone zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(us), zone);
}

// The zone as people know it ("CET", "UTC"), not the path of the local zone file.
std::string ZoneName(absl::TimeZone zone, int64_t at_us) {
  std::string name = zone.name();
  if (!name.empty() && name[0] != '/' && name != "localtime") return name;
  return absl::FormatTime("%Z", absl::FromUnixMicros(at_us), zone);
}

// Text for an HTML page: control characters and bytes that are not UTF-8 shown as \xNN
// (EscapeControls: most are not allowed in HTML, and a browser would show nothing or U+FFFD),
// then the characters HTML reserves as entities.
std::string Html(std::string_view raw) {
  const std::string s = core::EscapeControls(raw);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string WindowLine(const Report& r, absl::TimeZone zone) {
  std::string scope = r.host.empty() ? absl::StrCat("site: ", r.hosts.size(), " host",
                                                    r.hosts.size() == 1 ? "" : "s")
                                     : absl::StrCat("host ", r.host);
  if (!r.domains.empty())
    absl::StrAppend(&scope, "; mail from or to ", absl::StrJoin(r.domains, ", "));
  return absl::StrCat(Time(r.since_us, zone), " .. ", Time(r.until_us, zone), " (",
                      ZoneName(zone, r.since_us), ")  ", scope);
}

// ---------------------------------------------------------------------------------------------
// The report as titled grids, shared by the text, Markdown and HTML forms.

struct Grid {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // right-aligned columns
  std::vector<std::vector<Cell>> rows;
  bool show_header = true;
};

struct Section {
  std::string title;
  std::string note;   // one line under the title
  std::string empty;  // shown instead of an empty grid
  Grid grid;
};

Grid MakeGrid(std::vector<std::string> header, std::vector<bool> numeric) {
  Grid g;
  g.header = std::move(header);
  g.numeric = std::move(numeric);
  return g;
}

Color Trouble(int64_t n, Color c) { return n > 0 ? c : Color::kNone; }

Section GrandTotals(const Report& r) {
  const ReportCounts& c = r.counts;
  Section s;
  s.title = "Grand totals";
  s.note = "each message once, however many hops and filters it passed";
  s.grid = MakeGrid({"count", "", ""}, {true, false, false});
  s.grid.show_header = false;
  auto row = [&](int64_t n, const char* what, std::string detail, Color color = Color::kNone) {
    s.grid.rows.push_back({{Num(n), Trouble(n, color)}, {what}, {std::move(detail), Color::kDim}});
  };
  std::string received = Bytes(c.bytes_received);
  if (c.received_from_our_hosts > 0) {
    absl::StrAppend(&received, ", ", c.received_from_our_hosts, " from our hosts");
  }
  row(c.received, "received", received);
  row(c.delivered, "delivered",
      absl::StrCat(c.recipients_delivered, " recipient", c.recipients_delivered == 1 ? "" : "s",
                   ", ", Bytes(c.bytes_delivered)));
  row(c.deferred, "deferred",
      absl::StrCat(c.deferrals, " deferral", c.deferrals == 1 ? "" : "s", " in the window"),
      Color::kYellow);
  row(c.bounced, "bounced",
      absl::StrCat(c.recipients_bounced, " recipient", c.recipients_bounced == 1 ? "" : "s"),
      Color::kRed);
  row(c.rejected, "rejected", "refusals: SMTP (per recipient) and content checks", Color::kRed);
  row(c.expired, "expired", "returned to the sender after the queue lifetime", Color::kRed);
  // Ever held, as pflogsumm counts; the Outcomes table's "held" is those not released yet.
  row(c.held, "held", "put on hold, released since or not (Outcomes: still held)", Color::kYellow);
  row(c.discarded, "discarded", "by checks or the content filter");
  row(c.notices, "notices", "non-delivery and delay notices returned to senders");
  row(c.reject_warnings, "reject warnings", "reject_warning, cleanup WARN: would have refused",
      Color::kYellow);
  row(c.sasl_failures, "SASL failures", "authentication failure lines", Color::kYellow);
  row(c.login_failures, "login failures", "Dovecot IMAP/POP3/submission logins that failed",
      Color::kYellow);
  row(c.warnings, "warnings", "warning: lines (Problems)", Color::kYellow);
  row(c.fatals, "fatal errors", "fatal: lines (Problems)", Color::kRed);
  row(c.panics, "panics", "panic: lines (Problems)", Color::kRed);
  if (c.entered_otherwise > 0) {
    row(c.entered_otherwise, "entered otherwise",
        "neither smtpd nor pickup (log began mid-message, requeued)");
  }
  return s;
}

Section Outcomes(const Report& r) {
  Section s;
  s.title = "Outcome of each message";
  s.empty = "no messages in the window";
  s.grid = MakeGrid({"OUTCOME", "MESSAGES"}, {false, true});
  for (const auto& [name, n] : r.outcomes) {
    Color c = name == "delivered"                         ? Color::kGreen
              : name == "deferred"                        ? Color::kYellow
              : name == "in queue" || name == "abandoned" ? Color::kNone
                                                          : Color::kRed;
    s.grid.rows.push_back({{name, c}, {Num(n)}});
  }
  return s;
}

Section PerHost(const Report& r) {
  Section s;
  s.title = "Per host";
  s.note =
      "a host's part of a message counted once on that host; handing it to another of "
      "our hosts is delivery there and reception here";
  s.grid = MakeGrid({"HOST", "RECEIVED", "FROM OUR HOSTS", "DELIVERED", "DEFERRED", "BOUNCED",
                     "REJECTED", "EXPIRED", "HELD", "DISCARDED", "BYTES IN", "SASL FAIL"},
                    {false, true, true, true, true, true, true, true, true, true, true, true});
  for (const auto& h : r.hosts) {
    const ReportCounts& c = h.counts;
    s.grid.rows.push_back({{h.name, Color::kBold},
                           {Num(c.received)},
                           {Num(c.received_from_our_hosts)},
                           {Num(c.delivered)},
                           {Num(c.deferred), Trouble(c.deferred, Color::kYellow)},
                           {Num(c.bounced), Trouble(c.bounced, Color::kRed)},
                           {Num(c.rejected), Trouble(c.rejected, Color::kRed)},
                           {Num(c.expired), Trouble(c.expired, Color::kRed)},
                           {Num(c.held)},
                           {Num(c.discarded)},
                           {Bytes(c.bytes_received)},
                           {Num(c.sasl_failures), Trouble(c.sasl_failures, Color::kYellow)}});
  }
  return s;
}

std::string BucketLabel(const Report& r, int64_t start, absl::TimeZone zone) {
  return r.bucket_us >= 24 * 3600 * 1000000LL
             ? absl::FormatTime("%Y-%m-%d", absl::FromUnixMicros(start), zone)
             : Time(start, zone);
}

Section Traffic(const Report& r, absl::TimeZone zone) {
  Section s;
  s.title = r.bucket_us >= 24 * 3600 * 1000000LL ? "Traffic per day" : "Traffic per hour";
  s.note =
      "messages by when they entered, were first delivered, first bounced; refusals, "
      "deferrals and SASL failures are lines";
  s.empty = "no traffic in the window";
  s.grid =
      MakeGrid({"TIME", "RECEIVED", "DELIVERED", "DEFERRALS", "BOUNCED", "REJECTED", "SASL FAIL"},
               {false, true, true, true, true, true, true});
  for (const auto& b : r.traffic) {
    s.grid.rows.push_back({{BucketLabel(r, b.start_us, zone)},
                           {Num(b.received)},
                           {Num(b.delivered)},
                           {Num(b.deferrals), Trouble(b.deferrals, Color::kYellow)},
                           {Num(b.bounced), Trouble(b.bounced, Color::kRed)},
                           {Num(b.rejected)},
                           {Num(b.sasl_failures), Trouble(b.sasl_failures, Color::kYellow)}});
  }
  return s;
}

std::string DistinctNote(const report::TopList& t, const char* what) {
  if (t.distinct > static_cast<int64_t>(t.entries.size())) {
    return absl::StrCat("top ", t.entries.size(), " of ", t.distinct, " ", what);
  }
  return absl::StrCat(t.distinct, " ", what);
}

Section TopSenders(const report::TopList& t, const char* title, const char* key, const char* what) {
  Section s;
  s.title = title;
  s.note = DistinctNote(t, what);
  s.empty = "none";
  s.grid = MakeGrid({key, "MESSAGES", "BYTES"}, {false, true, true});
  for (const auto& e : t.entries) {
    s.grid.rows.push_back({{e.key}, {Num(e.messages)}, {Bytes(e.bytes)}});
  }
  return s;
}

Section TopRecipients(const report::TopList& t, const char* title, const char* key,
                      const char* what, bool failing) {
  Section s;
  s.title = title;
  s.note = DistinctNote(t, what) + (failing ? "; and every one with a failure" : "") +
           ". Delivered, bounced, expired: recipients; deferrals: lines; deferred: messages; "
           "delay: entry to delivery";
  s.empty = "none";
  s.grid = MakeGrid({key, "DELIVERED", "BYTES", "DEFERRALS", "DEFERRED", "BOUNCED", "EXPIRED",
                     "AVG DELAY", "MAX DELAY"},
                    {false, true, true, true, true, true, true, true, true});
  for (const auto& e : t.entries) {
    bool delays = e.delay_count > 0;
    s.grid.rows.push_back({{e.key},
                           {Num(e.messages)},
                           {Bytes(e.bytes)},
                           {Num(e.deferrals), Trouble(e.deferrals, Color::kYellow)},
                           {Num(e.deferred), Trouble(e.deferred, Color::kYellow)},
                           {Num(e.bounced), Trouble(e.bounced, Color::kRed)},
                           {Num(e.expired), Trouble(e.expired, Color::kRed)},
                           {delays ? Seconds(e.delay_avg) : "-"},
                           {delays ? Seconds(e.delay_max) : "-"}});
  }
  return s;
}

Section Problems(const Report& r) {
  Section s;
  s.title = "Problems: warnings, fatal errors, panics";
  s.note =
      absl::StrCat(r.counts.warnings, " warning, ", r.counts.fatals, " fatal and ", r.counts.panics,
                   " panic lines, by program and text (addresses, hosts and IDs taken out)");
  s.empty = "none";
  s.grid = MakeGrid({"SEVERITY", "PROGRAM", "LINES", "TEXT"}, {false, false, true, false});
  for (const auto& p : r.problems) {
    s.grid.rows.push_back({{p.severity, p.severity == "warning" ? Color::kYellow : Color::kRed},
                           {p.program},
                           {Num(p.count)},
                           {p.text}});
  }
  return s;
}

Section Counts(const report::CountList& l, const char* title, const char* key, const char* count,
               const char* distinct) {
  Section s;
  s.title = title;
  s.note =
      l.distinct > static_cast<int64_t>(l.entries.size())
          ? absl::StrCat("top ", l.entries.size(), " of ", l.distinct, "; ", l.total, " in all")
          : absl::StrCat(l.total, " in all");
  s.empty = "none";
  std::vector<std::string> header = {key, count};
  std::vector<bool> numeric = {false, true};
  if (distinct != nullptr) {
    header.push_back(distinct);
    numeric.push_back(true);
  }
  s.grid = MakeGrid(header, numeric);
  for (const auto& e : l.entries) {
    std::vector<Cell> row = {{e.key, Color::kBold}, {Num(e.count)}};
    if (distinct != nullptr) row.push_back({Num(e.distinct)});
    s.grid.rows.push_back(std::move(row));
  }
  return s;
}

Section Postscreen(const Report& r) {
  const report::PostscreenSummary& p = r.postscreen;
  Section s = Counts(p.events, "Postscreen", "EVENT", "LINES", "CLIENTS");
  s.note = absl::StrCat(p.connections, " connections, ", p.pass_new, " PASS NEW, ", p.pass_old,
                        " PASS OLD, ", p.rejected, " rejected by postscreen");
  s.empty = "no postscreen events";
  return s;
}

std::string GroupsNote(const report::ReasonList& l) {
  if (l.groups > static_cast<int64_t>(l.entries.size())) {
    return absl::StrCat("top ", l.entries.size(), " of ", l.groups, " reasons");
  }
  return absl::StrCat(l.groups, " reason", l.groups == 1 ? "" : "s");
}

Section Reasons(const report::ReasonList& l, const char* title, const char* count,
                const char* distinct, bool clients) {
  Section s;
  s.title = title;
  s.note = GroupsNote(l) + " (addresses, hosts and IDs taken out)";
  s.empty = "none";
  std::vector<std::string> header = {count, distinct, "DSN", "REPLY"};
  std::vector<bool> numeric = {true, true, false, false};
  if (clients) {
    header.push_back("TOP CLIENT");
    numeric.push_back(false);
  }
  s.grid = MakeGrid(header, numeric);
  for (const auto& e : l.entries) {
    std::vector<Cell> row = {{Num(e.count)}, {Num(e.messages)}, {e.dsn}, {e.text}};
    if (clients) row.push_back({e.top_client, Color::kDim});
    s.grid.rows.push_back(std::move(row));
  }
  return s;
}

Section Stuck(const Report& r, absl::TimeZone zone) {
  Section s;
  s.title = "Stuck messages";
  s.note = absl::StrCat(r.stuck_messages, " message", r.stuck_messages == 1 ? "" : "s", " (",
                        r.stuck_recipients, " recipient", r.stuck_recipients == 1 ? "" : "s",
                        ") deferred in the window and, as of the newest stored line, still "
                        "queued");
  if (r.stuck_messages > static_cast<int64_t>(r.stuck.size())) {
    absl::StrAppend(&s.note, "; the oldest ", r.stuck.size(), " shown");
  }
  s.empty = "none";
  s.grid = MakeGrid(
      {"HOST", "QUEUE ID", "SINCE", "AGE", "SENDER", "RECIPIENTS", "TRIES", "DSN", "LAST REPLY"},
      {false, false, false, true, false, false, true, false, false});
  for (const auto& m : r.stuck) {
    std::string rcpts = m.recipients.empty() ? "" : m.recipients.front();
    if (m.recipients.size() > 1) absl::StrAppend(&rcpts, " +", m.recipients.size() - 1);
    double age = static_cast<double>(r.data_last_us - m.first_us) / 1e6;
    s.grid.rows.push_back({{m.host},
                           {m.queue_id, Color::kBold},
                           {Time(m.first_us, zone)},
                           {Seconds(std::max(0.0, age)), Color::kYellow},
                           {m.sender},
                           {rcpts},
                           {Num(m.attempts)},
                           {m.dsn},
                           {m.reply, Color::kDim}});
  }
  return s;
}

Section Latency(const Report& r) {
  Section s;
  s.title = "Delivery latency";
  s.note =
      "end-to-end: entry to final delivery (clocks of different hosts may disagree); per "
      "hop: Postfix's delay= of each delivery";
  s.empty = "no deliveries";
  s.grid = MakeGrid({"HOST", "HOP", "DELIVERIES", "P50", "P95", "MAX"},
                    {false, false, true, true, true, true});
  for (const auto& l : r.latency) {
    if (l.count == 0) continue;
    s.grid.rows.push_back({{l.host.empty() ? "(site)" : l.host},
                           {l.hop},
                           {Num(l.count)},
                           {Seconds(l.p50)},
                           {Seconds(l.p95)},
                           {Seconds(l.max), l.max > 3600 ? Color::kYellow : Color::kNone}});
  }
  return s;
}

// Failed authentications by client, SASL's or Dovecot logins' (the second column: the
// client's name, or the login service).
Section FailureSources(std::string title, std::string note, const std::string& second_column,
                       const std::vector<report::SaslFailureSource>& sources, absl::TimeZone zone) {
  Section s;
  s.title = std::move(title);
  s.note = std::move(note);
  s.empty = "none";
  s.grid =
      MakeGrid({"CLIENT", second_column, "FAILURES", "USERS", "USER NAMES TRIED", "FIRST", "LAST"},
               {false, false, true, true, false, false, false});
  for (const auto& f : sources) {
    s.grid.rows.push_back({{f.client_ip, Color::kBold},
                           {f.client_host, Color::kDim},
                           {Num(f.failures), f.failures >= 10 ? Color::kRed : Color::kNone},
                           {Num(f.distinct_users)},
                           {absl::StrJoin(f.users, ", ")},
                           {TimeSec(f.first_us, zone)},
                           {TimeSec(f.last_us, zone)}});
  }
  return s;
}

Section SaslFailures(const Report& r, absl::TimeZone zone) {
  return FailureSources(
      "SASL authentication failures by client",
      absl::StrCat(r.counts.sasl_failures, " failures from ", r.sasl_failure_sources, " address",
                   r.sasl_failure_sources == 1 ? "" : "es"),
      "NAME", r.sasl_failures, zone);
}

Section LoginFailures(const Report& r, absl::TimeZone zone) {
  return FailureSources(
      "Login failures by client (Dovecot IMAP, POP3, submission)",
      absl::StrCat(r.counts.login_failures, " failures from ", r.login_failure_sources, " address",
                   r.login_failure_sources == 1 ? "" : "es",
                   "; a login that gave up after failed authentication"),
      "SERVICE", r.login_failures, zone);
}

Section SaslUsers(const Report& r) {
  Section s;
  s.title = "SASL users: volume and recipient spread against their history";
  s.note = r.sasl_baseline ? "usual = the history before the window scaled to its length"
                           : "no stored history before the window to compare with";
  s.empty = "no authenticated submissions in the window";
  s.grid =
      MakeGrid({"USER", "MESSAGES", "RECIPIENTS", "DOMAINS", "USUAL", "HISTORY DOMAINS", "JUMP"},
               {false, true, true, true, true, true, false});
  for (const auto& u : r.sasl_users) {
    s.grid.rows.push_back({{u.username, u.jumped ? Color::kRed : Color::kNone},
                           {Num(u.messages)},
                           {Num(u.recipients)},
                           {Num(u.recipient_domains)},
                           {r.sasl_baseline ? absl::StrFormat("%.0f", u.baseline_messages) : "-"},
                           {r.sasl_baseline ? Num(u.baseline_recipient_domains) : "-"},
                           {u.jumped ? u.why : "", Color::kRed}});
  }
  return s;
}

Section Gaps(const Report& r, absl::TimeZone zone) {
  Section s;
  s.title = "Gaps";
  s.empty = "gaps: none recorded";
  s.grid = MakeGrid({"HOST", "FROM", "UNTIL", "WHAT"}, {false, false, false, false});
  for (const auto& g : r.gaps) {
    s.grid.rows.push_back(
        {{g.host}, {TimeSec(g.from_us, zone)}, {TimeSec(g.until_us, zone)}, {g.what}});
  }
  return s;
}

std::vector<Section> LineSections(const Report& r) {
  const report::LineCounts& l = r.lines;
  Section rec;
  rec.title = "Line counts: receptions";
  rec.note =
      "smtpd client= and pickup lines, by program and by what they started (for "
      "comparing with line-counting tools such as pflogsumm)";
  rec.empty = "none";
  rec.grid = MakeGrid({"PROGRAM", "ENTRY", "FROM OUR HOSTS", "FROM CONTENT FILTERS"},
                      {false, true, true, true});
  for (const auto& x : l.receptions) {
    rec.grid.rows.push_back(
        {{x.program}, {Num(x.entry)}, {Num(x.from_our_hosts)}, {Num(x.from_content_filters)}});
  }
  if (l.merged_entries > 0 || l.rootless_traces > 0) {
    rec.note += absl::StrCat("; ", l.merged_entries,
                             " entries were joined into another message's trace and ",
                             l.rootless_traces, " traces have no root (correlation to check)");
  }
  Section del;
  del.title = "Line counts: deliveries, deferrals, bounces";
  del.grid = MakeGrid({"LINES", "WHAT"}, {true, false});
  auto add = [&](int64_t n, std::string what) { del.grid.rows.push_back({{Num(n)}, {what}}); };
  add(l.final_deliveries, "sent: delivered at the final hop (mailbox, foreign MTA, pipe)");
  add(l.final_notice_deliveries, "of those, notices returned to senders");
  add(l.content_filter_hops, "sent: hop to a content filter (counted again after it)");
  add(l.our_relay_hops, "sent: hop to another of our hosts (counted again there)");
  add(l.forwarded, "sent: local(8) forwarded as a new message");
  add(l.deferral_lines, "deferral lines");
  add(l.deferred_instances, "message instances with a deferral (a message per hop)");
  add(l.deferred_queue_ids, "distinct queue IDs with a deferral");
  add(l.bounced_recipients, "bounced recipients");
  Section ref;
  ref.title = "Line counts: refusals";
  ref.empty = "none";
  ref.grid = MakeGrid({"PROGRAM", "ACTION", "LINES"}, {false, false, true});
  for (const auto& x : l.refusals) {
    ref.grid.rows.push_back({{x.program}, {x.action}, {Num(x.count)}});
  }
  return {rec, del, ref};
}

std::vector<Section> AllSections(const Report& r, absl::TimeZone zone) {
  std::vector<Section> out = {GrandTotals(r), Outcomes(r), PerHost(r), Traffic(r, zone)};
  out.push_back(TopSenders(r.sender_domains, "Top sender domains", "DOMAIN", "sender domains"));
  out.push_back(TopSenders(r.senders, "Top senders", "SENDER", "senders"));
  out.push_back(TopRecipients(r.recipient_domains, "Top recipient domains", "DOMAIN",
                              "recipient domains", true));
  out.push_back(TopRecipients(r.recipients, "Top recipients", "RECIPIENT", "recipients", false));
  out.push_back(Reasons(r.deferral_reasons, "Deferral reasons", "DEFERRALS", "MESSAGES", false));
  out.push_back(Reasons(r.bounce_reasons, "Bounce reasons", "RECIPIENTS", "MESSAGES", false));
  out.push_back(Reasons(r.reject_reasons, "Reject reasons", "REFUSALS", "CLIENTS", true));
  out.push_back(Reasons(r.reject_warning_reasons, "Reject warnings", "LINES", "CLIENTS", true));
  out.push_back(Counts(r.rejected_clients, "Top rejected clients", "CLIENT", "REFUSALS", nullptr));
  out.push_back(
      Counts(r.rejected_networks, "Top rejected networks", "NETWORK", "REFUSALS", "CLIENTS"));
  out.push_back(Postscreen(r));
  out.push_back(
      Counts(r.postscreen.dnsbl_sites, "DNSBL sites (dnsblog)", "SITE", "HITS", "CLIENTS"));
  out.push_back(Problems(r));
  out.push_back(Stuck(r, zone));
  out.push_back(Latency(r));
  out.push_back(SaslFailures(r, zone));
  out.push_back(LoginFailures(r, zone));
  out.push_back(SaslUsers(r));
  out.push_back(Gaps(r, zone));
  for (Section& s : LineSections(r)) out.push_back(std::move(s));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text.
// Cells carry text from log lines (reject reasons, replies, addresses), and titles and notes
// may name a host: text, Markdown and HTML show control characters and bytes that are not
// UTF-8 escaped (EscapeControls; Html() for HTML), written to a terminal or a file, so a report
// read on a terminal cannot move its cursor or change its colours. JSON keeps the data exact
// (its own escapes).

void AppendTextGrid(const Grid& g, bool color, std::string* out) {
  constexpr size_t kMaxCell = 64;
  size_t cols = g.header.size();
  std::vector<size_t> widths(cols, 0);
  if (g.show_header) {
    for (size_t i = 0; i < cols; ++i) widths[i] = DisplayWidth(core::EscapeControls(g.header[i]));
  }
  for (const auto& row : g.rows) {
    for (size_t i = 0; i < cols && i < row.size(); ++i) {
      widths[i] = std::max(widths[i],
                           DisplayWidth(CutToWidth(core::EscapeControls(row[i].text), kMaxCell)));
    }
  }
  auto line = [&](const std::vector<Cell>& row, bool header) {
    std::string text = "  ";
    // The last non-empty column is not padded, so lines carry no trailing blanks.
    size_t last = 0;
    for (size_t i = 0; i < cols && i < row.size(); ++i) {
      if (!row[i].text.empty()) last = i;
    }
    for (size_t i = 0; i <= last; ++i) {
      std::string cell =
          i < row.size() ? CutToWidth(core::EscapeControls(row[i].text), kMaxCell) : "";
      size_t pad = widths[i] - DisplayWidth(cell);
      Color c = header ? Color::kBold : (i < row.size() ? row[i].color : Color::kNone);
      std::string painted = Paint(cell, c, color);
      if (g.numeric[i]) {
        text += std::string(pad, ' ') + painted;
      } else {
        text += painted;
        if (i < last) text += std::string(pad, ' ');
      }
      if (i < last) text += "  ";
    }
    absl::StrAppend(out, text, "\n");
  };
  if (g.show_header) {
    std::vector<Cell> header;
    for (const auto& h : g.header) header.push_back({h});
    line(header, true);
  }
  for (const auto& row : g.rows) line(row, false);
}

// ---------------------------------------------------------------------------------------------
// Markdown.

std::string MarkdownCell(const std::string& s) {
  std::string out;
  for (char c : CutToWidth(core::EscapeControls(s), 160)) {
    if (c == '|') {
      out += "\\|";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void AppendMarkdownGrid(const Grid& g, std::string* out) {
  auto row = [&](const std::vector<std::string>& cells) {
    absl::StrAppend(out, "|");
    for (const auto& c : cells) absl::StrAppend(out, " ", MarkdownCell(c), " |");
    absl::StrAppend(out, "\n");
  };
  std::vector<std::string> header = g.header;
  for (auto& h : header) {
    if (h.empty()) h = " ";
  }
  row(header);
  absl::StrAppend(out, "|");
  for (size_t i = 0; i < g.header.size(); ++i)
    absl::StrAppend(out, g.numeric[i] ? "---:|" : "---|");
  absl::StrAppend(out, "\n");
  for (const auto& r : g.rows) {
    std::vector<std::string> cells;
    for (const auto& c : r) cells.push_back(c.text);
    row(cells);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON.

class Json {
 public:
  Json& Begin(char bracket) {
    Sep();
    out_.push_back(bracket);
    first_.push_back(true);
    return *this;
  }
  Json& End(char bracket) {
    out_.push_back(bracket);
    first_.pop_back();
    return *this;
  }
  Json& Key(std::string_view key) {
    Sep();
    core::AppendJsonString(key, &out_);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  Json& Str(std::string_view v) {
    Sep();
    core::AppendJsonString(v, &out_);
    return *this;
  }
  Json& Int(int64_t v) {
    Sep();
    absl::StrAppend(&out_, v);
    return *this;
  }
  Json& Dbl(double v) {
    Sep();
    absl::StrAppend(&out_, absl::StrFormat("%.6g", v));
    return *this;
  }
  Json& Bool(bool v) {
    Sep();
    out_ += v ? "true" : "false";
    return *this;
  }
  Json& Time(int64_t us) {
    Sep();
    out_.push_back('"');
    core::AppendRfc3339Utc(us, &out_);
    out_.push_back('"');
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  void Sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_.push_back(',');
      first_.back() = false;
    }
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

void CountsJson(const ReportCounts& c, Json* j) {
  j->Begin('{');
  j->Key("received").Int(c.received);
  j->Key("received_from_our_hosts").Int(c.received_from_our_hosts);
  j->Key("entered_otherwise").Int(c.entered_otherwise);
  j->Key("delivered").Int(c.delivered);
  j->Key("deferred").Int(c.deferred);
  j->Key("bounced").Int(c.bounced);
  j->Key("rejected").Int(c.rejected);
  j->Key("expired").Int(c.expired);
  j->Key("held").Int(c.held);
  j->Key("discarded").Int(c.discarded);
  j->Key("notices").Int(c.notices);
  j->Key("bytes_received").Int(c.bytes_received);
  j->Key("bytes_delivered").Int(c.bytes_delivered);
  j->Key("recipients_delivered").Int(c.recipients_delivered);
  j->Key("recipients_bounced").Int(c.recipients_bounced);
  j->Key("deferrals").Int(c.deferrals);
  j->Key("sasl_failures").Int(c.sasl_failures);
  j->Key("login_failures").Int(c.login_failures);
  j->Key("reject_warnings").Int(c.reject_warnings);
  j->Key("warnings").Int(c.warnings);
  j->Key("fatals").Int(c.fatals);
  j->Key("panics").Int(c.panics);
  j->End('}');
}

void TrafficJson(const std::vector<report::TrafficBucket>& traffic, Json* j) {
  j->Begin('[');
  for (const auto& b : traffic) {
    j->Begin('{');
    j->Key("start").Time(b.start_us);
    j->Key("received").Int(b.received);
    j->Key("delivered").Int(b.delivered);
    j->Key("deferrals").Int(b.deferrals);
    j->Key("bounced").Int(b.bounced);
    j->Key("rejected").Int(b.rejected);
    j->Key("sasl_failures").Int(b.sasl_failures);
    j->End('}');
  }
  j->End(']');
}

// Senders: key, messages, bytes. Recipients (`recipients` true): key, delivered, bytes and
// the failures.
void TopJson(const report::TopList& t, bool recipients, Json* j) {
  j->Begin('{');
  j->Key("distinct").Int(t.distinct);
  j->Key("entries").Begin('[');
  for (const auto& e : t.entries) {
    j->Begin('{');
    j->Key("key").Str(e.key);
    j->Key(recipients ? "delivered" : "messages").Int(e.messages);
    j->Key("bytes").Int(e.bytes);
    if (recipients) {
      j->Key("deferrals").Int(e.deferrals);
      j->Key("deferred").Int(e.deferred);
      j->Key("bounced").Int(e.bounced);
      j->Key("expired").Int(e.expired);
      j->Key("delay_count").Int(e.delay_count);
      j->Key("delay_avg_seconds").Dbl(e.delay_avg);
      j->Key("delay_max_seconds").Dbl(e.delay_max);
    }
    j->End('}');
  }
  j->End(']').End('}');
}

void CountsListJson(const report::CountList& l, const char* distinct, Json* j) {
  j->Begin('{');
  j->Key("distinct").Int(l.distinct).Key("total").Int(l.total);
  j->Key("entries").Begin('[');
  for (const auto& e : l.entries) {
    j->Begin('{');
    j->Key("key").Str(e.key).Key("count").Int(e.count);
    if (distinct != nullptr) j->Key(distinct).Int(e.distinct);
    j->End('}');
  }
  j->End(']').End('}');
}

void FailureSourcesJson(const std::vector<report::SaslFailureSource>& sources, const char* host_key,
                        Json* j) {
  j->Begin('[');
  for (const auto& f : sources) {
    j->Begin('{');
    j->Key("client_ip").Str(f.client_ip).Key(host_key).Str(f.client_host);
    j->Key("failures").Int(f.failures).Key("distinct_users").Int(f.distinct_users);
    j->Key("users").Begin('[');
    for (const auto& u : f.users) j->Str(u);
    j->End(']');
    j->Key("first").Time(f.first_us).Key("last").Time(f.last_us);
    j->End('}');
  }
  j->End(']');
}

void ReasonsJson(const report::ReasonList& l, Json* j) {
  j->Begin('{');
  j->Key("groups").Int(l.groups);
  j->Key("entries").Begin('[');
  for (const auto& e : l.entries) {
    j->Begin('{');
    j->Key("dsn").Str(e.dsn);
    j->Key("text").Str(e.text);
    j->Key("count").Int(e.count);
    j->Key("distinct").Int(e.messages);
    j->Key("example").Str(e.example);
    if (!e.top_client.empty()) j->Key("top_client").Str(e.top_client);
    j->End('}');
  }
  j->End(']').End('}');
}

// ---------------------------------------------------------------------------------------------
// HTML charts: inline SVG, sized in user units so the browser scales them.

// An axis for counts up to `v`: the smallest step of 1, 2 or 5 times a power of ten that
// needs at most five ticks, and the top tick.
std::pair<int64_t, int64_t> NiceAxis(int64_t v) {
  v = std::max<int64_t>(v, 1);
  for (int64_t p = 1;; p *= 10) {
    for (int64_t m : {1, 2, 5}) {
      int64_t step = m * p;
      int64_t ticks = (v + step - 1) / step;
      if (ticks <= 5) return {step, ticks * step};
    }
  }
}

struct Series {
  std::string name;
  std::string color;
  std::vector<int64_t> values;
};

std::string BarsChart(const std::string& title, const std::vector<std::string>& labels,
                      const std::vector<Series>& series) {
  const double width = 1100, height = 280, left = 56, right = 12, top = 34, bottom = 46;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  int64_t max = 0;
  for (const auto& s : series) {
    for (int64_t v : s.values) max = std::max(max, v);
  }
  auto [ystep, ymax] = NiceAxis(max);
  size_t n = labels.size();
  std::string svg = absl::StrFormat(
      "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s\" "
      "xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"%.0f\" y=\"20\" "
      "class=\"title\">%s</text>\n",
      width, height, Html(title), left, Html(title));
  // Legend, right-aligned on the title line.
  double lx = width - right - 150.0 * static_cast<double>(series.size());
  for (const auto& s : series) {
    absl::StrAppend(&svg, absl::StrFormat("<rect class=\"swatch\" x=\"%.0f\" y=\"10\" width=\"12\" "
                                          "height=\"12\" fill=\"%s\"/><text x=\"%.0f\" y=\"21\" "
                                          "class=\"legend\">%s</text>\n",
                                          lx, s.color, lx + 17, Html(s.name)));
    lx += 150;
  }
  for (int64_t tick = 0; tick <= ymax; tick += ystep) {
    double y = top + plot_h - plot_h * static_cast<double>(tick) / static_cast<double>(ymax);
    absl::StrAppend(
        &svg, absl::StrFormat("<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" "
                              "class=\"grid\"/><text x=\"%.0f\" y=\"%.1f\" "
                              "class=\"axis\" text-anchor=\"end\">%d</text>\n",
                              left, width - right, y, y, left - 6, y + 4, static_cast<int>(tick)));
  }
  if (n == 0) {
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"%.0f\" y=\"%.0f\" class=\"axis\">no data"
                                          "</text>\n</svg>\n",
                                          left + 10, top + plot_h / 2));
    return svg;
  }
  double group = plot_w / static_cast<double>(n);
  double bar = std::max(1.0, group * 0.8 / static_cast<double>(series.size()));
  size_t label_step = std::max<size_t>(1, (n + 23) / 24);
  for (size_t i = 0; i < n; ++i) {
    double gx = left + group * static_cast<double>(i) + group * 0.1;
    for (size_t k = 0; k < series.size(); ++k) {
      int64_t v = i < series[k].values.size() ? series[k].values[i] : 0;
      if (v <= 0) continue;
      double h = plot_h * static_cast<double>(v) / static_cast<double>(ymax);
      absl::StrAppend(
          &svg, absl::StrFormat("<rect class=\"bar\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
                                "height=\"%.2f\" fill=\"%s\"><title>%s %s: %d</title></rect>\n",
                                gx + bar * static_cast<double>(k), top + plot_h - h, bar,
                                std::max(h, 0.5), series[k].color, Html(labels[i]),
                                Html(series[k].name), static_cast<int>(v)));
    }
    if (i % label_step == 0) {
      absl::StrAppend(&svg, absl::StrFormat("<text x=\"%.1f\" y=\"%.0f\" class=\"axis\" "
                                            "text-anchor=\"middle\">%s</text>\n",
                                            left + group * (static_cast<double>(i) + 0.5),
                                            top + plot_h + 16, Html(labels[i])));
    }
  }
  absl::StrAppend(&svg, absl::StrFormat("<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" "
                                        "class=\"baseline\"/>\n</svg>\n",
                                        left, width - right, top + plot_h, top + plot_h));
  return svg;
}

struct HBar {
  std::string label;
  int64_t value = 0;
  std::string color;
};

std::string HBarChart(const std::string& title, const std::vector<HBar>& bars, double width) {
  const double row = 24, top = 34, label_w = 210, value_w = 70;
  double height = top + row * static_cast<double>(std::max<size_t>(bars.size(), 1)) + 10;
  int64_t max = 1;
  for (const auto& b : bars) max = std::max(max, b.value);
  double plot_w = width - label_w - value_w - 10;
  std::string svg = absl::StrFormat(
      "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s\" "
      "xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"4\" y=\"20\" class=\"title\">%s</text>\n",
      width, height, Html(title), Html(title));
  if (bars.empty()) {
    absl::StrAppend(
        &svg, absl::StrFormat("<text x=\"4\" y=\"%.0f\" class=\"axis\">none</text>\n", top + 16));
  }
  for (size_t i = 0; i < bars.size(); ++i) {
    const HBar& b = bars[i];
    double y = top + row * static_cast<double>(i);
    double w = plot_w * static_cast<double>(b.value) / static_cast<double>(max);
    absl::StrAppend(&svg, absl::StrFormat("<text x=\"%.0f\" y=\"%.1f\" class=\"label\" "
                                          "text-anchor=\"end\">%s</text>\n",
                                          label_w - 8, y + 15,
                                          Html(CutToWidth(core::EscapeControls(b.label), 30))));
    if (b.value > 0) {
      absl::StrAppend(&svg, absl::StrFormat("<rect class=\"bar\" x=\"%.0f\" y=\"%.1f\" "
                                            "width=\"%.2f\" height=\"18\" fill=\"%s\"><title>%s: "
                                            "%d</title></rect>\n",
                                            label_w, y + 2, std::max(w, 1.0), b.color,
                                            Html(b.label), static_cast<int>(b.value)));
    }
    absl::StrAppend(
        &svg, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" class=\"value\">%d</text>\n",
                              label_w + std::max(w, 1.0) + 6, y + 15, static_cast<int>(b.value)));
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

constexpr char kBlue[] = "#3b6fb6";
constexpr char kGreen[] = "#3d9a50";
constexpr char kRed[] = "#c8423b";
constexpr char kOrange[] = "#e08a1e";
constexpr char kPurple[] = "#7b52ab";
constexpr char kGrey[] = "#8a8f98";

std::string OutcomeColor(const std::string& name) {
  if (name == "delivered") return kGreen;
  if (name == "deferred") return kOrange;
  if (name == "in queue" || name == "abandoned") return kGrey;
  if (name == "held" || name == "discarded") return kPurple;
  return kRed;
}

constexpr char kCss[] = R"css(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; background: #fff; margin: 24px auto; max-width: 1140px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 4px; border-bottom: 1px solid #d8dee4; padding-bottom: 3px; }
.sub { color: #59636e; margin: 0 0 16px; }
.note { color: #59636e; margin: 0 0 8px; font-size: 13px; }
.notice { background: #fff8e1; border: 1px solid #f0d58a; padding: 6px 10px; margin: 6px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0 8px; }
.card { border: 1px solid #d8dee4; border-radius: 6px; padding: 8px 14px; min-width: 96px; }
.card .n { font-size: 22px; font-weight: 600; }
.card .l { color: #59636e; font-size: 12px; }
.card.good .n { color: #2f7d3f; } .card.warn .n { color: #b86e00; } .card.bad .n { color: #b3261e; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.half { flex: 1 1 540px; min-width: 0; }
svg.chart { width: 100%; height: auto; display: block; }
svg .title { font-size: 15px; font-weight: 600; fill: #1f2328; }
svg .axis, svg .legend, svg .label, svg .value { font-size: 12px; fill: #424a53; }
svg .grid { stroke: #eaeef2; } svg .baseline { stroke: #8c959f; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 13px; }
th, td { padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
th { border-bottom: 1px solid #d8dee4; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f6f8fa; }
td.red { color: #b3261e; } td.yellow { color: #9a5b00; } td.green { color: #2f7d3f; }
td.dim { color: #59636e; } td.bold { font-weight: 600; }
.empty { color: #59636e; font-style: italic; }
footer { color: #8c959f; font-size: 12px; margin-top: 32px; }
)css";

std::string HtmlClass(Color c) {
  switch (c) {
    case Color::kRed:
      return "red";
    case Color::kYellow:
      return "yellow";
    case Color::kGreen:
      return "green";
    case Color::kDim:
      return "dim";
    case Color::kBold:
      return "bold";
    case Color::kNone:
      break;
  }
  return "";
}

// "Top sender domains" -> "top-sender-domains": an anchor to link a section from a ticket.
std::string Anchor(std::string_view title) {
  std::string out;
  for (char c : title) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

void AppendHtmlSection(const Section& s, std::string* out) {
  absl::StrAppend(out, "<h2 id=\"", Anchor(s.title), "\">", Html(s.title), "</h2>\n");
  if (!s.note.empty()) absl::StrAppend(out, "<p class=\"note\">", Html(s.note), "</p>\n");
  if (s.grid.rows.empty()) {
    absl::StrAppend(out, "<p class=\"empty\">", Html(s.empty.empty() ? "none" : s.empty), "</p>\n");
    return;
  }
  absl::StrAppend(out, "<table>\n");
  if (s.grid.show_header) {
    absl::StrAppend(out, "<tr>");
    for (size_t i = 0; i < s.grid.header.size(); ++i) {
      absl::StrAppend(out, s.grid.numeric[i] ? "<th class=\"n\">" : "<th>", Html(s.grid.header[i]),
                      "</th>");
    }
    absl::StrAppend(out, "</tr>\n");
  }
  for (const auto& row : s.grid.rows) {
    absl::StrAppend(out, "<tr>");
    for (size_t i = 0; i < s.grid.header.size(); ++i) {
      std::string cls = s.grid.numeric[i] ? "n" : "";
      if (i < row.size() && row[i].color != Color::kNone) {
        absl::StrAppend(&cls, cls.empty() ? "" : " ", HtmlClass(row[i].color));
      }
      absl::StrAppend(
          out, cls.empty() ? "<td>" : absl::StrCat("<td class=\"", cls, "\">"),
          i < row.size() ? Html(CutToWidth(core::EscapeControls(row[i].text), 200)) : "", "</td>");
    }
    absl::StrAppend(out, "</tr>\n");
  }
  absl::StrAppend(out, "</table>\n");
}

}  // namespace

std::string RenderReportText(const Report& r, const RenderOptions& o) {
  std::string out = absl::StrCat(Paint("maillens report", Color::kBold, o.color), "  ",
                                 core::EscapeControls(WindowLine(r, o.zone)), "\n");
  for (const std::string& n : r.notices) {
    absl::StrAppend(&out, Paint("note: " + core::EscapeControls(n), Color::kYellow, o.color), "\n");
  }
  for (const Section& s : AllSections(r, o.zone)) {
    const std::string title = core::EscapeControls(s.title);
    absl::StrAppend(&out, "\n", Paint(title, Color::kBold, o.color), "\n",
                    std::string(DisplayWidth(title), '-'), "\n");
    if (!s.note.empty()) {
      absl::StrAppend(&out, Paint("(" + core::EscapeControls(s.note) + ")", Color::kDim, o.color),
                      "\n");
    }
    if (s.grid.rows.empty()) {
      absl::StrAppend(&out, "  ", core::EscapeControls(s.empty.empty() ? "none" : s.empty), "\n");
    } else {
      AppendTextGrid(s.grid, o.color, &out);
    }
  }
  return out;
}

std::string RenderReportMarkdown(const Report& r, const RenderOptions& o) {
  std::string out =
      absl::StrCat("## maillens report: ", core::EscapeControls(WindowLine(r, o.zone)), "\n\n");
  for (const std::string& n : r.notices) {
    absl::StrAppend(&out, "> **Note:** ", core::EscapeControls(n), "\n\n");
  }
  for (const Section& s : AllSections(r, o.zone)) {
    absl::StrAppend(&out, "### ", core::EscapeControls(s.title), "\n\n");
    if (!s.note.empty()) absl::StrAppend(&out, "_", core::EscapeControls(s.note), "_\n\n");
    if (s.grid.rows.empty()) {
      absl::StrAppend(&out, core::EscapeControls(s.empty.empty() ? "none" : s.empty), "\n\n");
    } else {
      AppendMarkdownGrid(s.grid, &out);
      absl::StrAppend(&out, "\n");
    }
  }
  return out;
}

std::string RenderReportJson(const Report& r, const RenderOptions& o) {
  Json j;
  j.Begin('{');
  j.Key("window").Begin('{');
  j.Key("since").Time(r.since_us).Key("until").Time(r.until_us);
  j.Key("since_us").Int(r.since_us).Key("until_us").Int(r.until_us);
  j.Key("bucket_seconds").Int(r.bucket_us / 1000000);
  j.End('}');
  j.Key("data").Begin('{');
  j.Key("first").Time(r.data_first_us).Key("last").Time(r.data_last_us);
  j.End('}');
  j.Key("host").Str(r.host);
  j.Key("domains").Begin('[');
  for (const auto& d : r.domains) j.Str(d);
  j.End(']');
  j.Key("counts");
  CountsJson(r.counts, &j);
  j.Key("outcomes").Begin('{');
  for (const auto& [name, n] : r.outcomes) j.Key(name).Int(n);
  j.End('}');
  j.Key("traffic");
  TrafficJson(r.traffic, &j);
  j.Key("top").Begin('{');
  j.Key("sender_domains");
  TopJson(r.sender_domains, false, &j);
  j.Key("senders");
  TopJson(r.senders, false, &j);
  j.Key("recipient_domains");
  TopJson(r.recipient_domains, true, &j);
  j.Key("recipients");
  TopJson(r.recipients, true, &j);
  j.Key("rejected_clients");
  CountsListJson(r.rejected_clients, nullptr, &j);
  j.Key("rejected_networks");
  CountsListJson(r.rejected_networks, "clients", &j);
  j.End('}');
  j.Key("problems").Begin('[');
  for (const auto& p : r.problems) {
    j.Begin('{');
    j.Key("severity").Str(p.severity).Key("program").Str(p.program).Key("text").Str(p.text);
    j.Key("count").Int(p.count).Key("example").Str(p.example);
    j.End('}');
  }
  j.End(']');
  j.Key("postscreen").Begin('{');
  j.Key("connections").Int(r.postscreen.connections);
  j.Key("pass_new").Int(r.postscreen.pass_new).Key("pass_old").Int(r.postscreen.pass_old);
  j.Key("rejected").Int(r.postscreen.rejected);
  j.Key("events");
  CountsListJson(r.postscreen.events, "clients", &j);
  j.Key("dnsbl_sites");
  CountsListJson(r.postscreen.dnsbl_sites, "clients", &j);
  j.End('}');
  j.Key("reasons").Begin('{');
  j.Key("deferral");
  ReasonsJson(r.deferral_reasons, &j);
  j.Key("bounce");
  ReasonsJson(r.bounce_reasons, &j);
  j.Key("reject");
  ReasonsJson(r.reject_reasons, &j);
  j.Key("reject_warning");
  ReasonsJson(r.reject_warning_reasons, &j);
  j.End('}');
  j.Key("stuck").Begin('{');
  j.Key("messages").Int(r.stuck_messages).Key("recipients").Int(r.stuck_recipients);
  j.Key("oldest").Begin('[');
  for (const auto& m : r.stuck) {
    j.Begin('{');
    j.Key("host").Str(m.host).Key("queue_id").Str(m.queue_id).Key("sender").Str(m.sender);
    j.Key("recipients").Begin('[');
    for (const auto& x : m.recipients) j.Str(x);
    j.End(']');
    j.Key("since").Time(m.first_us).Key("last_attempt").Time(m.last_attempt_us);
    j.Key("attempts").Int(m.attempts).Key("dsn").Str(m.dsn).Key("reply").Str(m.reply);
    j.End('}');
  }
  j.End(']').End('}');
  j.Key("latency").Begin('[');
  for (const auto& l : r.latency) {
    j.Begin('{');
    j.Key("host").Str(l.host).Key("hop").Str(l.hop).Key("count").Int(l.count);
    j.Key("p50_seconds").Dbl(l.p50).Key("p95_seconds").Dbl(l.p95).Key("max_seconds").Dbl(l.max);
    j.End('}');
  }
  j.End(']');
  j.Key("sasl").Begin('{');
  j.Key("failure_sources").Int(r.sasl_failure_sources);
  j.Key("failures");
  FailureSourcesJson(r.sasl_failures, "client_host", &j);
  j.Key("login_failure_sources").Int(r.login_failure_sources);
  j.Key("login_failures");
  FailureSourcesJson(r.login_failures, "service", &j);
  j.Key("baseline").Bool(r.sasl_baseline);
  j.Key("users").Begin('[');
  for (const auto& u : r.sasl_users) {
    j.Begin('{');
    j.Key("username").Str(u.username).Key("messages").Int(u.messages);
    j.Key("recipients").Int(u.recipients).Key("recipient_domains").Int(u.recipient_domains);
    j.Key("baseline_messages").Dbl(u.baseline_messages);
    j.Key("baseline_recipient_domains").Int(u.baseline_recipient_domains);
    j.Key("jumped").Bool(u.jumped).Key("why").Str(u.why);
    j.End('}');
  }
  j.End(']').End('}');
  j.Key("gaps").Begin('[');
  for (const auto& g : r.gaps) {
    j.Begin('{');
    j.Key("host").Str(g.host).Key("from").Time(g.from_us).Key("until").Time(g.until_us);
    j.Key("what").Str(g.what);
    j.End('}');
  }
  j.End(']');
  const report::LineCounts& l = r.lines;
  j.Key("lines").Begin('{');
  j.Key("receptions").Begin('[');
  for (const auto& x : l.receptions) {
    j.Begin('{');
    j.Key("program").Str(x.program).Key("entry").Int(x.entry);
    j.Key("from_our_hosts").Int(x.from_our_hosts);
    j.Key("from_content_filters").Int(x.from_content_filters);
    j.End('}');
  }
  j.End(']');
  j.Key("merged_entries").Int(l.merged_entries);
  j.Key("rootless_traces").Int(l.rootless_traces);
  j.Key("deliveries").Begin('{');
  j.Key("final").Int(l.final_deliveries).Key("final_notices").Int(l.final_notice_deliveries);
  j.Key("to_content_filters").Int(l.content_filter_hops);
  j.Key("to_our_relays").Int(l.our_relay_hops).Key("forwarded").Int(l.forwarded);
  j.End('}');
  j.Key("deferral_lines").Int(l.deferral_lines);
  j.Key("deferred_instances").Int(l.deferred_instances);
  j.Key("deferred_queue_ids").Int(l.deferred_queue_ids);
  j.Key("bounced_recipients").Int(l.bounced_recipients);
  j.Key("refusals").Begin('[');
  for (const auto& x : l.refusals) {
    j.Begin('{');
    j.Key("program").Str(x.program).Key("action").Str(x.action).Key("count").Int(x.count);
    j.End('}');
  }
  j.End(']').End('}');
  j.Key("hosts").Begin('[');
  for (const auto& h : r.hosts) {
    j.Begin('{');
    j.Key("name").Str(h.name).Key("counts");
    CountsJson(h.counts, &j);
    j.Key("traffic");
    TrafficJson(h.traffic, &j);
    j.End('}');
  }
  j.End(']');
  j.Key("notices").Begin('[');
  for (const auto& n : r.notices) j.Str(n);
  j.End(']');
  j.End('}');
  std::string out = j.Take();
  out.push_back('\n');
  return out;
}

std::string RenderReportHtml(const Report& r, const RenderOptions& o) {
  const ReportCounts& c = r.counts;
  std::string title = absl::StrCat("maillens report ", WindowLine(r, o.zone));
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
      Html(title), "</title>\n<style>", kCss, "</style>\n</head>\n<body>\n");
  absl::StrAppend(&out, "<h1>maillens report</h1>\n<p class=\"sub\">", Html(WindowLine(r, o.zone)),
                  "</p>\n");
  for (const std::string& n : r.notices) {
    absl::StrAppend(&out, "<p class=\"notice\">", Html(n), "</p>\n");
  }
  struct Card {
    const char* label;
    int64_t n;
    const char* cls;
  };
  std::vector<Card> cards = {
      {"received", c.received, ""},
      {"delivered", c.delivered, "good"},
      {"deferred", c.deferred, c.deferred ? "warn" : ""},
      {"bounced", c.bounced, c.bounced ? "bad" : ""},
      {"rejected", c.rejected, c.rejected ? "bad" : ""},
      {"expired", c.expired, c.expired ? "bad" : ""},
      {"held", c.held, ""},
      {"discarded", c.discarded, ""},
      {"reject warnings", c.reject_warnings, c.reject_warnings ? "warn" : ""},
      {"SASL failures", c.sasl_failures, c.sasl_failures ? "warn" : ""},
      {"login failures", c.login_failures, c.login_failures ? "warn" : ""},
      {"warnings", c.warnings, c.warnings ? "warn" : ""},
      {"fatal/panic", c.fatals + c.panics, c.fatals + c.panics ? "bad" : ""},
      {"stuck now", r.stuck_messages, r.stuck_messages ? "warn" : ""}};
  absl::StrAppend(&out, "<div class=\"cards\">\n");
  for (const Card& card : cards) {
    absl::StrAppend(&out, "<div class=\"card ", card.cls, "\"><div class=\"n\">", card.n,
                    "</div><div class=\"l\">", card.label, "</div></div>\n");
  }
  absl::StrAppend(&out, "<div class=\"card\"><div class=\"n\">", Html(Bytes(c.bytes_received)),
                  "</div><div class=\"l\">received</div></div>\n</div>\n");

  // Charts: traffic per hour, trouble per hour, outcomes, top domains.
  std::vector<std::string> labels;
  std::vector<int64_t> received, delivered, rejected, deferrals, bounced, sasl;
  bool daily = r.bucket_us >= 24 * 3600 * 1000000LL;
  for (size_t i = 0; i < r.traffic.size(); ++i) {
    const auto& b = r.traffic[i];
    absl::CivilHour h = absl::ToCivilHour(absl::FromUnixMicros(b.start_us), o.zone);
    labels.push_back(daily || i == 0 || h.hour() == 0
                         ? absl::FormatTime("%m-%d", absl::FromUnixMicros(b.start_us), o.zone)
                         : absl::FormatTime("%H:00", absl::FromUnixMicros(b.start_us), o.zone));
    received.push_back(b.received);
    delivered.push_back(b.delivered);
    rejected.push_back(b.rejected);
    deferrals.push_back(b.deferrals);
    bounced.push_back(b.bounced);
    sasl.push_back(b.sasl_failures);
  }
  const char* per = daily ? "per day" : "per hour";
  absl::StrAppend(&out, "<h2>Traffic ", per, "</h2>\n");
  absl::StrAppend(&out, BarsChart(absl::StrCat("Messages ", per), labels,
                                  {{"received", kBlue, received},
                                   {"delivered", kGreen, delivered},
                                   {"rejected (lines)", kRed, rejected}}));
  absl::StrAppend(&out, BarsChart(absl::StrCat("Trouble ", per), labels,
                                  {{"deferrals", kOrange, deferrals},
                                   {"bounced", kRed, bounced},
                                   {"SASL failures", kPurple, sasl}}));
  std::vector<HBar> outcome_bars;
  for (const auto& [name, n] : r.outcomes) outcome_bars.push_back({name, n, OutcomeColor(name)});
  std::vector<HBar> status_bars = {
      {"received", c.received, kBlue},   {"delivered", c.delivered, kGreen},
      {"deferred", c.deferred, kOrange}, {"bounced", c.bounced, kRed},
      {"rejected", c.rejected, kRed},    {"expired", c.expired, kRed},
      {"held", c.held, kPurple},         {"discarded", c.discarded, kPurple}};
  absl::StrAppend(&out, "<h2>Status breakdown</h2>\n<div class=\"charts\">\n<div class=\"half\">",
                  HBarChart("Outcome of each message", outcome_bars, 550),
                  "</div>\n<div class=\"half\">", HBarChart("Totals", status_bars, 550),
                  "</div>\n</div>\n");
  std::vector<HBar> sender_bars, recipient_bars;
  for (const auto& e : r.sender_domains.entries) sender_bars.push_back({e.key, e.messages, kBlue});
  for (const auto& e : r.recipient_domains.entries) {
    recipient_bars.push_back({e.key, e.messages, kGreen});
  }
  absl::StrAppend(
      &out, "<h2>Top domains</h2>\n<div class=\"charts\">\n<div class=\"half\">",
      HBarChart("Sender domains (messages)", sender_bars, 550), "</div>\n<div class=\"half\">",
      HBarChart("Recipient domains (delivered)", recipient_bars, 550), "</div>\n</div>\n");
  // The destinations that failed, which a chart of deliveries shows as empty bars.
  std::vector<HBar> deferral_bars, bounce_bars;
  for (const auto& e : r.recipient_domains.entries) {
    if (e.deferrals > 0) deferral_bars.push_back({e.key, e.deferrals, kOrange});
    if (e.bounced + e.expired > 0) bounce_bars.push_back({e.key, e.bounced + e.expired, kRed});
  }
  auto by_value = [](const HBar& a, const HBar& b) { return a.value > b.value; };
  std::stable_sort(deferral_bars.begin(), deferral_bars.end(), by_value);
  std::stable_sort(bounce_bars.begin(), bounce_bars.end(), by_value);
  // Only the charts that have a bar: an empty chart would read as "nothing failed" drawn big.
  std::vector<std::string> failing;
  if (!deferral_bars.empty()) {
    failing.push_back(HBarChart("Recipient domains (deferral lines)", deferral_bars, 550));
  }
  if (!bounce_bars.empty()) {
    failing.push_back(
        HBarChart("Recipient domains (bounced and expired recipients)", bounce_bars, 550));
  }
  if (!failing.empty()) {
    absl::StrAppend(&out, "<h2>Failing destinations</h2>\n<div class=\"charts\">\n");
    for (const std::string& chart : failing) {
      absl::StrAppend(&out, "<div class=\"half\">", chart, "</div>\n");
    }
    absl::StrAppend(&out, "</div>\n");
  }
  for (const Section& s : AllSections(r, o.zone)) AppendHtmlSection(s, &out);
  absl::StrAppend(&out, "<footer>generated by maillens; all times ",
                  Html(ZoneName(o.zone, r.since_us)), "; data from ",
                  Html(TimeSec(r.data_first_us, o.zone)), " to ",
                  Html(TimeSec(r.data_last_us, o.zone)), "</footer>\n</body>\n</html>\n");
  return out;
}

absl::Status AnswerReport(const std::string& data_dir, const maillens::v1::ReportRequest& request,
                          absl::TimeZone default_zone, maillens::v1::ReportResponse* response) {
  report::ReportOptions options;
  if (request.has_since_us()) options.since_us = request.since_us();
  if (request.has_until_us()) options.until_us = request.until_us();
  options.host = request.host();
  options.domains.assign(request.domains().begin(), request.domains().end());
  if (request.top() > 0) options.top = request.top();
  RenderOptions render;
  render.zone = default_zone;
  if (!request.time_zone().empty() && !absl::LoadTimeZone(request.time_zone(), &render.zone)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown time zone '", request.time_zone(), "'"));
  }
  options.zone = render.zone;
  render.color = request.color();
  const std::string& format = request.format();
  if (format != "text" && format != "markdown" && format != "json" && format != "html") {
    return absl::InvalidArgumentError(
        absl::StrCat("the report's format is text, markdown, json or html, not '", format, "'"));
  }
  auto report = report::BuildReport(data_dir, options);
  if (!report.ok()) return report.status();
  response->set_rendered(format == "json"       ? RenderReportJson(*report, render)
                         : format == "markdown" ? RenderReportMarkdown(*report, render)
                         : format == "html"     ? RenderReportHtml(*report, render)
                                                : RenderReportText(*report, render));
  for (const std::string& notice : report->notices) response->add_notices(notice);
  return absl::OkStatus();
}

}  // namespace maillens::report
