// The traffic and incident report (`maillens report`): what a window looked like, site-wide
// and per host, computed from a data directory opened read-only.
//
// Units. A message is counted once however many hops and filters it passed:
//   site-wide  a unit is a trace (store/correlator.h) whose entry — its root, the instance
//              without an incoming link — starts in the window. Its forward branch (everything
//              not reached through a bounce link) is the message; non-delivery notices on the
//              bounce branch are counted as notices, never as received mail.
//   per host   a unit is one host's part of a trace: an instance that no content filter or
//              local(8) forwarding on the same host re-injected, plus the instances re-injected
//              from it. What a host hands to another of our hosts has left that host
//              (delivered, from its point of view) and is received by the next.
// Recipient rows of a unit are classified by where the delivery went: final (a mailbox, a
// foreign MTA, a pipe), a content filter (the hop to amavis & co.), one of our relays, or local
// forwarding. Only final rows (site-wide) or final and our-relay rows (per host) decide whether
// a message was delivered; the other hops are what line-counting tools such as pflogsumm count
// twice, and `LineCounts` lists them so the two can be reconciled.
//
// Sources: the catalog's messages, recipients and links for the units (the instances starting
// in the window by the index on first_us, then their links and recipients by id range and the
// links' indexes, then the rest of their traces link by link), and one pass over the events of the
// window's day partitions for what only lines know (refusals, reject warnings, SASL and Dovecot
// login failures, deferral lines and replies, warning/fatal/panic lines, postscreen and dnsblog,
// the program that received a message), selecting lines by their stored kind and re-parsing only
// those.
//
// Performance: the event pass and the catalog reads run side by side (BuildReport starts one
// thread of its own, each side with its own connection) and meet only to map lines to
// instances, so on two free cores a report takes about as long as its slower side
// (docs/PERFORMANCE.md, "Report over one day"; bench/report_bench.cc).
//
// Thread-safety: BuildReport opens its own read-only connections; run it on any thread, beside
// the store's writer.
#ifndef MAILLENS_REPORT_REPORT_H_
#define MAILLENS_REPORT_REPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace maillens::report {

struct ReportOptions {
  int64_t since_us = INT64_MIN;  // window [since, until); unbounded: all stored data
  int64_t until_us = INT64_MAX;
  std::string host;  // only this host's instances and lines; empty: the whole site
  // Only mail from or to these domains (lower case, exact): a message counts when its sender's
  // domain or one of its recipients' domains is one of them, and its recipient rows count
  // when the sender's or that recipient's domain is. Lines that name no sender or recipient
  // (warnings, postscreen, SASL and login failures, client lines) are left out. Empty: all.
  std::vector<std::string> domains;
  // Traffic buckets start at whole hours (days) of this zone.
  absl::TimeZone zone = absl::UTCTimeZone();
  size_t top = 10;  // entries of each top list and reason list
  // How far before the window to look for the SASL users' usual volume.
  int64_t baseline_us = 7 * 24 * 3600 * 1000000LL;
};

// Message-level numbers (see the header comment for what a message is) and the few
// recipient- and line-level numbers printed beside them.
struct ReportCounts {
  int64_t received = 0;                 // entered through smtpd or pickup
  int64_t received_from_our_hosts = 0;  // per host: of received, handed over by our relays
  int64_t entered_otherwise = 0;  // entry neither smtpd nor pickup (log began mid-message, ...)
  int64_t delivered = 0;          // at least one recipient delivered
  int64_t deferred = 0;           // deferred at least once, on any hop
  int64_t bounced = 0;            // at least one recipient bounced
  int64_t rejected = 0;           // refusals: reject lines (SMTP, per recipient; content checks)
  int64_t expired = 0;            // returned to the sender after the queue lifetime
  int64_t held = 0;               // put on hold by a check
  int64_t discarded = 0;          // discarded by a check or by the content filter
  int64_t notices = 0;            // non-delivery and delay notices we generated
  int64_t bytes_received = 0;     // sizes of the received messages
  int64_t bytes_delivered = 0;    // size times recipients delivered
  int64_t recipients_delivered = 0;
  int64_t recipients_bounced = 0;
  int64_t deferrals = 0;       // deferral lines (delivery attempts that failed temporarily)
  int64_t sasl_failures = 0;   // SASL authentication failure lines
  int64_t login_failures = 0;  // Dovecot IMAP/POP3/submission login failure lines
  // Reject warnings: smtpd `reject_warning` lines and cleanup header/body `warning` actions
  // (a check that would have refused, and only logged); pflogsumm's "reject warnings".
  int64_t reject_warnings = 0;
  int64_t warnings = 0;  // `warning:` lines (see Problem)
  int64_t fatals = 0;
  int64_t panics = 0;
};

// One bucket of the traffic series. Messages are counted when they enter (received), when
// their first recipient is delivered and when their first recipient bounced; refusals,
// deferrals and SASL failures are lines.
struct TrafficBucket {
  int64_t start_us = 0;
  int64_t received = 0;
  int64_t delivered = 0;
  int64_t deferrals = 0;
  int64_t bounced = 0;
  int64_t rejected = 0;
  int64_t sasl_failures = 0;
};

struct TopEntry {
  std::string key;       // address or domain; "<>" is the null sender
  int64_t messages = 0;  // messages sent (senders) or recipients delivered (recipients)
  int64_t bytes = 0;
  // Recipients only. Failures are counted whether or not the message entered in the window
  // (a deferral line in the window of a message that entered the day before counts).
  int64_t deferrals = 0;    // deferral lines (pflogsumm's "defers")
  int64_t deferred = 0;     // messages with at least one deferral line
  int64_t bounced = 0;      // recipients bounced
  int64_t expired = 0;      // recipients returned to the sender after the queue lifetime
  int64_t delay_count = 0;  // delivered recipients with a known delay
  double delay_avg = 0;     // seconds from entering the site (the host) to delivery
  double delay_max = 0;
  bool Failed() const { return deferrals > 0 || bounced > 0 || expired > 0; }
};

struct TopList {
  // At most ReportOptions::top, biggest first (by delivered, then failures); recipient
  // domains also list every domain with a failure (deferral, bounce, expiry) beyond the top.
  std::vector<TopEntry> entries;
  int64_t distinct = 0;  // how many keys there were in all
};

// Warning, fatal and panic lines (severity first, as Postfix writes them: `program[pid]:
// warning: ...`; a check's "QID: warning: header ..." is a reject warning instead), grouped by
// program and normalised text (NormalizeReason). The totals per severity are pflogsumm's
// "Warnings", "Fatal Errors" and "Panics" totals.
struct Problem {
  std::string severity;  // "warning", "fatal", "panic"
  std::string program;   // "postfix/smtpd", "postfix-dmz/cleanup"
  std::string text;
  int64_t count = 0;
  std::string example;  // one original line's text after the severity
};

// A key (client address, network, DNSBL site, postscreen event) and how often it was seen.
struct CountEntry {
  std::string key;
  int64_t count = 0;
  int64_t distinct = 0;  // distinct clients behind it, where that means something
};

struct CountList {
  std::vector<CountEntry> entries;  // at most ReportOptions::top, biggest first
  int64_t distinct = 0;             // keys in all
  int64_t total = 0;                // sum of all counts
};

// postscreen(8) and dnsblog(8): how the front door sorted its clients.
struct PostscreenSummary {
  int64_t connections = 0;  // CONNECT lines
  int64_t pass_new = 0;     // PASS NEW: passed every test, now allowlisted
  int64_t pass_old = 0;     // PASS OLD: allowlisted earlier
  int64_t rejected = 0;     // postscreen's own NOQUEUE reject lines
  // Events by name: PREGREET, HANGUP, COMMAND PIPELINING, NON-SMTP COMMAND, BARE NEWLINE,
  // COMMAND TIME LIMIT, DNSBL (a rank at or above the threshold), BLACKLISTED/DENYLISTED,
  // WHITELISTED/ALLOWLISTED.
  CountList events;
  CountList dnsbl_sites;  // dnsblog `listed by domain SITE` lines by site; distinct clients
};

// Deferral, bounce or reject reasons grouped by DSN and normalised text (addresses, host
// names, IP addresses and IDs taken out, so one cause is one row).
struct ReasonEntry {
  std::string dsn;
  std::string text;
  int64_t count = 0;       // lines (deferrals, refusals) or recipients (bounces)
  int64_t messages = 0;    // distinct messages (deferrals, bounces) or clients (refusals)
  std::string example;     // one original reply, unshortened
  std::string top_client;  // refusals: the client refused most often for this reason
};

struct ReasonList {
  std::vector<ReasonEntry> entries;
  int64_t groups = 0;
};

// A message deferred in the window and, as of the newest stored line, still queued with at
// least one recipient deferred.
struct StuckMessage {
  std::string host;
  std::string queue_id;
  std::string sender;
  std::vector<std::string> recipients;  // the deferred ones
  int64_t first_us = 0;                 // when it entered this host
  int64_t last_attempt_us = 0;
  int64_t attempts = 0;
  std::string dsn;
  std::string reply;  // the last deferral reply
};

struct LatencyStats {
  std::string host;  // "" for end-to-end over the site
  std::string hop;   // "end-to-end", "final", "to content filter", "to our relay", "forwarded"
  int64_t count = 0;
  double p50 = 0;  // seconds
  double p95 = 0;
  double max = 0;
};

// A client address that failed SASL authentication (brute force shows as many failures,
// often with many user names).
struct SaslFailureSource {
  std::string client_ip;
  std::string client_host;
  int64_t failures = 0;
  int64_t distinct_users = 0;
  std::vector<std::string> users;  // a few of the user names tried, when Postfix logged them
  int64_t first_us = 0;
  int64_t last_us = 0;
};

// A SASL user's sending in the window against its usual volume: a compromised account shows
// as a jump in messages or in the spread of recipient domains.
struct SaslUserActivity {
  std::string username;
  int64_t messages = 0;
  int64_t recipients = 0;
  int64_t recipient_domains = 0;
  double baseline_messages = 0;            // the history's messages scaled to the window's length
  int64_t baseline_recipient_domains = 0;  // distinct domains over the whole history
  bool jumped = false;
  std::string why;  // what jumped, in words
};

// A period for which the store is known to miss lines of a host (an agent offline, a file
// lost to rotation before it was read).
struct Gap {
  std::string host;
  int64_t from_us = 0;
  int64_t until_us = 0;
  std::string what;
};

// Per-line counts for reconciling with line-counting tools (pflogsumm): what the message-level
// numbers fold together.
struct LineCounts {
  // smtpd `client=` lines and pickup lines, by program ("postfix/smtpd",
  // "postfix/submission/smtpd", "postfix/10025/smtpd", "postfix/pickup"), by what the
  // instance they started was.
  struct Reception {
    std::string program;
    int64_t entry = 0;                 // a message entering the site (a trace's root)
    int64_t from_our_hosts = 0;        // a relay hop from another of our hosts
    int64_t from_content_filters = 0;  // a re-injection after a content filter
  };
  std::vector<Reception> receptions;
  // Entries beyond the first in one trace: two receptions the correlator joined into one
  // message (or one message that entered twice). Lines count them apart, the report once.
  int64_t merged_entries = 0;
  // Traces in which every instance has an incoming link (a cycle of links): counted as
  // received by their earliest instance, though no entry line is a root.
  int64_t rootless_traces = 0;
  // `status=sent` recipient deliveries of the units, by where they went.
  int64_t final_deliveries = 0;         // mailbox, foreign MTA, pipe: delivered
  int64_t final_notice_deliveries = 0;  // of those, notices returned to senders
  int64_t content_filter_hops = 0;      // to a content filter (amavis & co.)
  int64_t our_relay_hops = 0;           // to another of our hosts
  int64_t forwarded = 0;                // local(8) "forwarded as"
  int64_t deferral_lines = 0;
  int64_t deferred_instances = 0;  // message instances (host, queue ID) with a deferral line
  // Distinct queue ID texts with a deferral line: fewer than the instances when a short queue
  // ID was reused, or the same ID appeared on two hosts.
  int64_t deferred_queue_ids = 0;
  int64_t bounced_recipients = 0;  // `status=bounced` recipient rows
  // Refusal lines by program and action (reject, milter-reject, proxy-reject, defer).
  struct Refusal {
    std::string program;
    std::string action;
    int64_t count = 0;
  };
  std::vector<Refusal> refusals;
};

// One host's numbers (its units, see the header comment).
struct HostReport {
  std::string name;
  ReportCounts counts;
  std::vector<TrafficBucket> traffic;  // same buckets as Report::traffic
};

struct Report {
  int64_t since_us = 0;  // the window, bounded by the stored data when it was open-ended
  int64_t until_us = 0;
  int64_t data_first_us = 0;  // oldest and newest stored line (0 when the store is empty)
  int64_t data_last_us = 0;
  std::string host;                  // the host filter, "" for the site
  std::vector<std::string> domains;  // the domain filter, empty for all mail

  ReportCounts counts;
  int64_t bucket_us = 0;  // width of each traffic bucket: an hour (a day for long windows)
  std::vector<TrafficBucket> traffic;
  // Each message exactly once: delivered, partly bounced, bounced, expired, deferred,
  // rejected, discarded, held, deleted (postsuper -d), in queue, abandoned (the client left
  // before the message was complete). Zero entries are left out.
  std::vector<std::pair<std::string, int64_t>> outcomes;

  TopList sender_domains;
  TopList senders;
  TopList recipient_domains;
  TopList recipients;

  ReasonList deferral_reasons;
  ReasonList bounce_reasons;
  ReasonList reject_reasons;
  ReasonList reject_warning_reasons;  // reject_warning and cleanup warn lines

  CountList rejected_clients;   // refusal lines by client address
  CountList rejected_networks;  // by /24 (IPv4) or /64 (IPv6) network
  PostscreenSummary postscreen;

  // Every group (none left out): panics, fatal errors, warnings; the most lines first.
  std::vector<Problem> problems;

  std::vector<StuckMessage> stuck;  // oldest first, at most ReportOptions::top
  int64_t stuck_messages = 0;
  int64_t stuck_recipients = 0;

  std::vector<LatencyStats> latency;  // end-to-end first, then per host and hop

  std::vector<SaslFailureSource> sasl_failures;  // most failures first, at most top
  int64_t sasl_failure_sources = 0;
  // Dovecot login failures (IMAP, POP3, submission), by client address, in the same shape as
  // the SASL failures; client_host holds the login service of the first failure ("imap-login").
  std::vector<SaslFailureSource> login_failures;
  int64_t login_failure_sources = 0;
  std::vector<SaslUserActivity> sasl_users;  // jumped first, then by messages; at most top
  bool sasl_baseline = false;  // false: no stored history before the window to compare with

  std::vector<Gap> gaps;

  LineCounts lines;
  std::vector<HostReport> hosts;     // every host (or the filtered one), by name
  std::vector<std::string> notices;  // what the reader must know: window outside the data, ...
};

// Builds the report for `options` from the data directory `data_dir` (read-only).
absl::StatusOr<Report> BuildReport(const std::string& data_dir, const ReportOptions& options);

// Gaps the store recorded for `host` ("" = every host) in [since_us, until_us).
std::vector<Gap> RecordedGaps(const std::string& data_dir, const std::string& host,
                              int64_t since_us, int64_t until_us);

// A reply or reason with what varies per message taken out, for grouping: addresses become
// <…>, host[address] and bare IP addresses become …, long IDs become ….
std::string NormalizeReason(std::string_view text);

}  // namespace maillens::report

#endif  // MAILLENS_REPORT_REPORT_H_
