// A site simulator: writes the Postfix maillogs a small site (a DMZ relay with amavis, an
// internal mailbox server, optionally an outbound relay) would write over a time span, plus a
// ground-truth file saying which message instance is which and how instances link across
// hosts. It exists to measure the correlator: import the logs, compare its traces with the
// truth.
//
// The site is fixed (the roles follow the host names):
//   dmz  postscreen -> smtpd (content_filter amavis 127.0.0.1:10024, re-injection on 10025),
//        transport map example.test -> relay:[mx.example.test], everything else to the internet
//        (or to `out` when that host is simulated)
//   mx   smtpd from dmz, submission (587, SASL), Dovecot LMTP, local(8) for aliases,
//        relayhost [dmz.example.test]
//   out  optional outbound relay: dmz hands internet mail to it, it delivers
//
// The truth is JSON Lines, in this order per scenario, with a summary object last:
//   {"host":"dmz","queue_id":"3D4F1A2B3C","first_us":N,"origin":"smtpd|submission|reinject|
//    pickup|bounce","reused":false,"message_id":"x@y" (without <>),"sender":"a@b" ("" = <>),
//    "disposition":"rejected|discarded" (only for a message cleanup refused),
//    "recipients":[{"to":"...","orig_to":"..." (local(8) aliases only),"status":"sent|bounced|
//    deferred|expired|rejected|discarded|queued"}]}  one per message instance in the logs
//   {"link":{"from":{"host","queue_id","first_us"},"to":{...},"kind":"relay|reinject|bounce"}}
//   {"external":{"from":{...},"to":["rcpt"...],"relay":"mx.partner.test","queued_as":"X",
//    "form":"postfix|exim|gmail|microsoft|sendmail","collides":bool}}
//   {"summary":{...}}                                see SummaryJson()
// first_us is the instance's first line as written: true time plus the host's skew, cut to
// whole seconds on hosts with classic stamps, in UTC microseconds -- what an importer reads.
// A status is the last one the logs show for that recipient at that instance ("queued": its
// queue manager had not tried it yet when the log ends). Links and externals are listed only
// when the line proving them (status=sent ... queued as, or the bounce daemon's notice) is in
// the logs, and link only our own hosts: a foreign MTA's "queued as" is an external.
//
// SimulateToDirectory can also write, beside the logs, what else an administrator's log
// directory holds (ExtraFileOptions): extracts and a syslog server's copies of each host's log,
// whose lines are the log's own, byte for byte, and files that are not maillogs at all. They
// add no event: the truth is that of the logs, with or without them.
//
// Output is a pure function of SimulatorOptions (the seed included): same options, same bytes.
// Thread-compatible: Simulate() keeps all its state on the stack; run several at once freely.
#ifndef MAILLENS_TOOLS_SIMULATOR_H_
#define MAILLENS_TOOLS_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace maillens::tools {

// How a host stamps its lines.
enum class StampForm {
  kClassic,            // "Jan  1 00:00:05" (syslog: day space-padded, local time, no year)
  kClassicZeroPadded,  // "Jan 01 00:00:05" (Postfix maillog_file)
  kRfc3339,            // "2025-01-01T00:00:05.123456+01:00" (rsyslog high precision)
};

struct SimHostOptions {
  std::string name;  // "dmz", "mx" or "out": the name decides the host's role in the site
  // Added to true time in everything the host writes (its stamps, its long queue IDs, the
  // dates in message-ids it makes): a host whose clock runs ahead has a positive skew.
  absl::Duration skew;
  StampForm stamp = StampForm::kClassic;
  bool long_queue_ids = false;  // enable_long_queue_ids = yes
};

// Relative weights of the kinds of traffic; a scenario's kind is drawn with these weights.
struct TrafficMix {
  double inbound = 40;           // internet -> dmz (postscreen, amavis) -> mx (LMTP, local)
  double outbound = 20;          // mx submission (SASL) -> dmz (amavis) [-> out] -> internet
  double internal = 5;           // mx submission to local mailboxes only
  double pickup = 4;             // sendmail(1)/cron mail via pickup on dmz or mx
  double spam = 3;               // inbound that amavis blocks and discards
  double reject = 12;            // NOQUEUE rejects at dmz smtpd and postscreen
  double sasl_noise = 6;         // SASL brute force on mx submission
  double connection_noise = 10;  // connects that never send mail, postscreen drops
  // Inbound mail that cleanup refuses at the end of DATA: a header/body check's REJECT or
  // DISCARD, or a milter's reject (one recipient each, its status "rejected"/"discarded").
  // 0 by default so that the output of existing seeds stays as it was.
  double content_check = 0;
};

// Files SimulateToDirectory writes beside the logs, to exercise an importer's overlap check
// (a line is stored once however many files hold it) and its maillog check (a file that is not
// a maillog is refused). Simulate(), which writes through a sink, ignores them.
struct ExtraFileOptions {
  // DIR/<host>.extract.log for every host: the lines of DIR/<host>.log from extract_from to
  // extract_to (fractions of its line count, rounded down to a line), byte for byte: a slice
  // cut out of the middle of the log (sed -n) to look at, or to hand to a colleague.
  bool extracts = false;
  double extract_from = 0.3;
  double extract_to = 0.6;
  // DIR/<host>.syslog-copy.log for every host: its lines from copy_from (a fraction of its line
  // count, rounded down) to the end, byte for byte: what a central syslog server kept of the
  // host since forwarding to it was set up, so it overlaps the log's tail.
  bool syslog_copies = false;
  double copy_from = 0.8;
  // DIR/dovecot.log: about dovecot_lines lines of Dovecot's own log_path file over the span
  // (log_timestamp = "%Y-%m-%d %H:%M:%S ", mx's clock: IMAP and POP3 logins and logouts, LMTP
  // deliveries, failed logins; no syslog host or program field), and DIR/README.txt, a note in
  // plain text. Neither is a maillog.
  bool non_maillogs = false;
  int64_t dovecot_lines = 2000;
};

struct SimulatorOptions {
  uint64_t seed = 1;
  absl::Time start = absl::FromUnixSeconds(1735682400);  // 2024-12-31T22:00:00Z
  absl::Duration duration = absl::Hours(4);
  // Size of the run: `messages` message-carrying scenarios when > 0 (noise added in
  // proportion to the mix), else about `target_lines` lines in total.
  int64_t target_lines = 100000;
  int64_t messages = 0;
  std::vector<SimHostOptions> hosts;  // empty: DefaultSimHosts()
  absl::Duration zone_offset;         // local time of every host = UTC + zone_offset
  TrafficMix mix;

  // Per-recipient fates at the final hop (LMTP on mx, or the foreign MTA).
  double unknown_user_rate = 0.03;  // bounced: 550 5.1.1
  double defer_rate = 0.04;         // deferred one to three times, then delivered
  double expire_rate = 0.008;       // deferred until queue_lifetime, then returned to sender
  double reject_rcpt_rate = 0.03;   // rejected at dmz RCPT (not the first recipient)
  // A hand-off between our own hosts (or to amavis) that fails once ("Connection refused")
  // and succeeds on the next queue run: a deferred hop that must not become a link.
  double internal_defer_rate = 0.003;
  absl::Duration queue_lifetime = absl::Hours(1);  // maximal_queue_lifetime on every host

  // Probability that a new short queue ID deliberately takes an ID this host used before
  // (after that instance's "removed"), so every run exercises queue-ID reuse.
  double reuse_rate = 0.02;
  // Probability that an expiry is logged after the message's `removed` (as seen on real
  // hosts) and its short queue ID is then taken by the host's next message: the late expiry
  // line must stay with the first message and the next one must not join it.
  double expiry_after_removed_rate = 0;
  // Probability that a foreign Postfix answers "queued as X" with an X that is (or was) a queue
  // ID on one of our hosts: a join on queue ID alone would link it wrongly.
  double foreign_collision_rate = 0.3;

  // The site on loopback addresses of one machine (a lab, or Postfix instances side by side):
  // dmz 127.0.0.2, mx 127.0.0.3, out 127.0.0.4; partner.test's MX, a foreign Postfix, is
  // reached on 127.0.0.25 (a tunnel to a smarthost: loopback, yet not ours); and half of
  // amavis's replies are a plain "250 2.0.0 Ok: queued as X" (as from a filter that does not
  // name the MTA it re-injected into), so only the re-injection through smtpd shows they are
  // a content filter.
  bool loopback_hosts = false;

  bool dovecot_lines = true;  // dovecot's "saved mail to INBOX" beside each LMTP delivery
  // Write only lines up to start + duration (true time), as a log snapshot would; instances
  // still queued then keep their last status. Off: every message runs to completion.
  bool cut_at_end = true;

  ExtraFileOptions extra_files;  // SimulateToDirectory only
};

// dmz (classic stamps), mx (RFC 3339 stamps): the two hosts every site has.
std::vector<SimHostOptions> DefaultSimHosts();

absl::Status ValidateSimulatorOptions(const SimulatorOptions& options);

// A file SimulateToDirectory wrote beside the logs (ExtraFileOptions).
struct ExtraFile {
  std::string name;  // in the output directory: "dmz.extract.log", "dovecot.log"
  // The host whose log it copies, "" for a file that is not a maillog. Its lines are lines
  // [first_line, first_line + lines) of DIR/<host>.log (0-based).
  std::string host;
  int64_t first_line = 0;
  int64_t lines = 0;
};

struct SimulatorSummary {
  std::vector<std::pair<std::string, int64_t>> lines_per_host;  // in options' host order
  int64_t lines = 0;
  int64_t scenarios = 0;
  int64_t instances = 0;  // message instances in the truth
  int64_t links = 0;      // relay + reinject + bounce
  int64_t relay_links = 0;
  int64_t reinject_links = 0;
  int64_t bounce_links = 0;
  int64_t externals = 0;           // hand-offs to foreign MTAs with a queue ID in the reply
  int64_t foreign_collisions = 0;  // of those, a foreign Postfix ID equal to one of ours
  int64_t reused_queue_ids = 0;    // instances whose queue ID an earlier instance had
  int64_t noqueue_rejects = 0;
  int64_t expired = 0;
  int64_t cleanup_refusals = 0;  // content_check scenarios: rejected or discarded in cleanup
  // SimulateToDirectory: the files beside the logs, in the order written (every host's extract
  // and syslog copy in the options' host order, then dovecot.log and README.txt). Not in the
  // truth's summary, which is written before them.
  std::vector<ExtraFile> extra_files;
};

// Where Simulate() puts its output. Lines of one host arrive in that host's clock order.
class SimulatorSink {
 public:
  virtual ~SimulatorSink() = default;
  // One log line of host `host` (index into the options' hosts), without its newline.
  virtual void Line(int host, std::string_view line) = 0;
  // One ground-truth JSON object, without its newline.
  virtual void Truth(std::string_view json) = 0;
};

// Runs the simulation into `sink` (borrowed for the call). Errors only for invalid options.
absl::StatusOr<SimulatorSummary> Simulate(const SimulatorOptions& options, SimulatorSink* sink);

// Writes DIR/<host>.log for every host and DIR/truth.jsonl (DIR is created if missing), then
// the files options.extra_files asks for (listed in the summary's extra_files).
absl::StatusOr<SimulatorSummary> SimulateToDirectory(const SimulatorOptions& options,
                                                     const std::string& dir);

// The summary as the JSON object written last to the truth ({"summary":{...}}).
std::string SummaryJson(const SimulatorSummary& summary);

}  // namespace maillens::tools

#endif  // MAILLENS_TOOLS_SIMULATOR_H_
