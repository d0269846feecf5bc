#include "report/report.h"

#include <arpa/inet.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/event.h"
#include "core/parser.h"
#include "core/scan.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "core/time_context.h"
#include "store/retention.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace maillens::report {
namespace {

constexpr int64_t kHourUs = 3600 * 1000000LL;
constexpr int64_t kDayUs = 24 * kHourUs;
// Beyond a week of hourly bars the chart stops being readable; use days.
constexpr int64_t kHourlyLimitUs = 7 * kDayUs;

// SASL jump thresholds: small absolute floors so a user sending 3 messages instead of 1 is
// not an incident, and ratios against the user's history.
constexpr int64_t kJumpMinMessages = 20;
constexpr double kJumpMessageRatio = 4.0;
constexpr int64_t kJumpMinDomains = 10;
constexpr double kJumpDomainRatio = 3.0;

// The units' instances are found in three steps, each on an index: those starting in the
// window (first_us), the links that touch them (the primary key and links_to, by id range,
// since ids grow with time), and then, link by link, the rest of their traces (a hop after the
// window's end, the hop before one that started in it). Loading whole traces by trace_id would
// probe the trace index once per instance, several times slower.
constexpr char kMessageColumns[] =
    "SELECT id, trace_id, host_id, queue_id, first_us, last_us, end_us, sender, size, nrcpt, "
    "sasl_username, origin, disposition FROM messages ";
constexpr char kWhereFirstIn[] = "WHERE first_us >= ? AND first_us < ?";
// The same when most of an id range starts in the window: the rows of the range in table
// order, no index lookups.
constexpr char kWhereIdsFirstIn[] = "WHERE id BETWEEN ? AND ? AND +first_us >= ? AND +first_us < ?";
// How many, and their id range (from the covering index alone), to size the tables.
constexpr char kCountInWindow[] =
    "SELECT count(*), min(id), max(id) FROM messages WHERE first_us >= ? AND first_us < ?";
constexpr char kWhereId[] = "WHERE id = ?";
// One instance outside the loaded traces (a message deferred in the window that entered
// before it), for the stuck list.
constexpr char kWhereInstanceAt[] =
    "WHERE queue_id = ? AND host_id = ? AND first_us <= ? ORDER BY first_us DESC LIMIT 1";
constexpr char kSelectLinksFrom[] =
    "SELECT from_message, to_message, kind FROM links WHERE from_message BETWEEN ? AND ?";
constexpr char kSelectLinksTo[] =
    "SELECT from_message, to_message, kind FROM links WHERE to_message BETWEEN ? AND ?";
constexpr char kSelectMaxMessageId[] = "SELECT max(id) FROM messages";
constexpr char kRecipientColumns[] =
    "SELECT message, recipient, status, dsn, relay, reply, next_queue_id, next_form, time_us, "
    "attempts, delay, orig_to FROM recipients ";
// By range through the primary key's index, or — when the range is most of the table — a
// plain scan ("+message" keeps SQLite off the index), which reads the table in order instead
// of looking every row up.
constexpr char kWhereMessageIn[] = "WHERE message BETWEEN ? AND ?";
constexpr char kWhereMessageInScan[] = "WHERE +message BETWEEN ? AND ?";
constexpr char kSelectHosts[] = "SELECT id, name FROM hosts ORDER BY name";
// The SASL users' history before the window.
constexpr char kSelectSaslHistory[] =
    "SELECT m.id, m.host_id, m.sasl_username, r.recipient FROM messages m LEFT JOIN recipients "
    "r ON r.message = m.id WHERE m.first_us >= ? AND m.first_us < ? AND m.sasl_username != ''";
constexpr char kSelectFirstLine[] = "SELECT min(ts_us) FROM events";
constexpr char kSelectLastLine[] = "SELECT max(ts_us) FROM events";
// The event scan reads a day partition page by page; mapping it saves copying every page
// into SQLite's cache on a read that touches each page once.
constexpr char kScanPragmas[] = "PRAGMA mmap_size=1073741824";

enum LinkBits : uint8_t { kLinkRelay = 1, kLinkReinject = 2, kLinkBounce = 4 };
enum DispositionBits : uint8_t {
  kHeld = 1,
  kDiscarded = 2,
  kRejected = 4,
  kExpired = 8,
  kDeleted = 16,  // postsuper -d before any recipient got further (Correlator::MarkDeleted)
};
enum class Origin : uint8_t { kOther, kSmtpd, kPickup };
enum class Status : uint8_t { kSent, kDeferred, kBounced, kExpired, kRejected, kOther };

// The form of the next hop's queue ID in a delivery's reply (core::NextHopFormName).
enum class Form : uint8_t { kNone, kForwarded, kContentFilter, kOther };

// Where a `status=sent` delivery went.
enum class RowClass : uint8_t { kFinal, kContentFilter, kOurRelay, kForwarded };

std::string_view RowClassName(RowClass c) {
  switch (c) {
    case RowClass::kFinal:
      return "final";
    case RowClass::kContentFilter:
      return "to content filter";
    case RowClass::kOurRelay:
      return "to our relay";
    case RowClass::kForwarded:
      return "forwarded";
  }
  return "";
}

// One message instance of the catalog, as the report needs it.
struct Msg {
  int64_t id = 0;
  int64_t trace_id = 0;
  int64_t host_id = 0;
  int64_t first_us = 0;
  int64_t last_us = 0;
  int64_t size = -1;
  std::string queue_id;
  std::string sender;
  std::string sasl_username;
  bool ended = false;
  bool has_sender = false;
  bool in_units = false;  // part of the loaded traces (not an extra lookup for the stuck list)
  bool bounce_branch = false;
  bool in_scope = true;  // part of a unit the domain filter kept (or no domain filter)
  Origin origin = Origin::kOther;
  uint8_t disposition = 0;         // DispositionBits
  uint8_t in_kind = 0;             // LinkBits of incoming links
  int row_begin = 0, row_end = 0;  // its recipients in rows_
  int out_begin = 0, out_end = 0;  // its outgoing links in out_
  bool Received() const { return origin != Origin::kOther; }
};

// One recipient row. Texts are kept only where they are used: the next hop of a delivery,
// the DSN and reply of a failure.
struct Row {
  int msg = 0;
  Status status = Status::kOther;
  RowClass cls = RowClass::kFinal;
  bool loopback = false;      // relay= is a loopback address (not a socket)
  bool says_discard = false;  // the reply says the message was discarded
  bool cf_discarded = false;  // a content filter took it and dropped it
  Form next_form = Form::kNone;
  int64_t time_us = 0;
  int64_t attempts = 1;
  double delay = -1;  // seconds (delay=), -1 when not logged
  std::string recipient;
  std::string orig_to;  // the address before an alias or virtual map, "" when none
  std::string next_queue_id;
  std::string dsn;
  std::string reply;
};

struct Unit {
  std::vector<int> msgs;
  int entry = -1;
  bool notice = false;
};

std::string Text(const store::Statement& s, int col) { return std::string(s.ColumnText(col)); }

Status ParseStatus(std::string_view s) {
  if (s == "sent") return Status::kSent;
  if (s == "deferred") return Status::kDeferred;
  if (s == "bounced") return Status::kBounced;
  if (s == "expired") return Status::kExpired;
  if (s == "rejected") return Status::kRejected;
  return Status::kOther;
}

// The address inside "host[address]:port", or "".
std::string_view RelayAddress(std::string_view relay) {
  size_t open = relay.find('[');
  size_t close = relay.find(']', open == std::string_view::npos ? 0 : open);
  if (open == std::string_view::npos || close == std::string_view::npos) return {};
  return relay.substr(open + 1, close - open - 1);
}

bool IsLoopbackRelay(std::string_view relay) {
  std::string_view ip = RelayAddress(relay);
  if (ip.find('/') != std::string_view::npos) return false;  // a socket: LMTP to a mailbox
  return core::StartsWith(ip, "127.") || ip == "::1" || core::StartsWith(ip, "::ffff:127.") ||
         core::StartsWith(relay, "localhost[");
}

// "250 2.7.0 Ok, discarded, id=… - spam" (amavis), "DISCARD" (other filters).
bool ContainsDiscard(std::string_view reply) {
  constexpr std::string_view kWord = "discard";
  for (size_t i = 0; i + kWord.size() <= reply.size(); ++i) {
    size_t k = 0;
    while (k < kWord.size() &&
           absl::ascii_tolower(static_cast<unsigned char>(reply[i + k])) == kWord[k]) {
      ++k;
    }
    if (k == kWord.size()) return true;
  }
  return false;
}

// Lower case without a copy when the text has no capitals (addresses mostly do not).
std::string LowerKey(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return core::Lower(s);
  }
  return std::string(s);
}

std::string DomainOf(std::string_view address) {
  if (address.empty()) return "<>";
  size_t at = address.rfind('@');
  return LowerKey(at == std::string_view::npos ? address : address.substr(at + 1));
}

double ParseSeconds(std::string_view text) {
  double v = 0;
  if (text.empty() || !absl::SimpleAtod(core::ToAbsl(text), &v)) return -1;
  return v;
}

Msg ReadMsg(const store::Statement& s) {
  Msg m;
  m.id = s.ColumnInt(0);
  m.trace_id = s.ColumnInt(1);
  m.host_id = s.ColumnInt(2);
  m.queue_id = Text(s, 3);
  m.first_us = s.ColumnInt(4);
  m.last_us = s.ColumnInt(5);
  m.ended = !s.ColumnIsNull(6);
  m.has_sender = !s.ColumnIsNull(7);
  m.sender = Text(s, 7);
  m.size = s.ColumnInt(8);
  m.sasl_username = Text(s, 10);
  std::string_view origin = s.ColumnText(11);
  m.origin = origin == "smtpd"    ? Origin::kSmtpd
             : origin == "pickup" ? Origin::kPickup
                                  : Origin::kOther;
  std::string_view d = s.ColumnText(12);
  m.disposition = d == "held"        ? kHeld
                  : d == "discarded" ? kDiscarded
                  : d == "rejected"  ? kRejected
                  : d == "expired"   ? kExpired
                  : d == "deleted"   ? kDeleted
                                     : 0;
  return m;
}

Row ReadRow(const store::Statement& s) {
  Row r;
  r.recipient = Text(s, 1);
  r.orig_to = Text(s, 11);
  r.status = ParseStatus(s.ColumnText(2));
  r.time_us = s.ColumnInt(8);
  r.attempts = s.ColumnInt(9);
  if (r.status == Status::kSent) {
    r.next_queue_id = Text(s, 6);
    std::string_view form = s.ColumnText(7);
    r.next_form = form.empty()                                   ? Form::kNone
                  : form == "forwarded"                          ? Form::kForwarded
                  : form == "content_filter" || form == "amavis" ? Form::kContentFilter
                                                                 : Form::kOther;
    r.loopback = IsLoopbackRelay(s.ColumnText(4));
    r.says_discard = r.loopback && ContainsDiscard(s.ColumnText(5));
    r.delay = ParseSeconds(s.ColumnText(10));
  } else {
    r.dsn = Text(s, 3);
    r.reply = Text(s, 5);
  }
  return r;
}

// Nearest-rank percentile of sorted `v`.
double Percentile(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  if (rank == 0) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

LatencyStats MakeLatency(std::string host, std::string hop, std::vector<double> values) {
  std::sort(values.begin(), values.end());
  LatencyStats s;
  s.host = std::move(host);
  s.hop = std::move(hop);
  s.count = static_cast<int64_t>(values.size());
  s.p50 = Percentile(values, 0.50);
  s.p95 = Percentile(values, 0.95);
  s.max = values.empty() ? 0 : values.back();
  return s;
}

std::string FormatUtc(int64_t us) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

bool IsIdLike(std::string_view token) {
  if (token.size() < 8) return false;
  int digits = 0, letters = 0;
  for (char c : token) {
    if (core::IsDigit(c)) {
      ++digits;
    } else if (absl::ascii_isalpha(static_cast<unsigned char>(c))) {
      ++letters;
    } else if (c != '.' && c != '-' && c != '_' && c != '=' && c != '/' && c != '+' && c != ':') {
      return false;
    }
  }
  return (letters > 0 && digits >= 3) || digits >= 8;
}

bool IsIpLike(std::string_view token) {
  int dots = 0, colons = 0, digits = 0;
  for (char c : token) {
    if (c == '.') {
      ++dots;
    } else if (c == ':') {
      ++colons;
    } else if (core::IsDigit(c)) {
      ++digits;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return (dots == 3 && colons == 0 && digits >= 4) || (colons >= 2 && digits + colons >= 4);
}

struct ReasonAcc {
  int64_t count = 0;
  std::unordered_set<std::string> distinct;  // message keys or clients
  std::map<std::string, int64_t> clients;
  std::string example;
};

using ReasonMap = std::map<std::pair<std::string, std::string>, ReasonAcc>;

void AddReason(ReasonMap* map, std::string_view dsn, std::string_view text, std::string_view who,
               std::string_view example, bool count_clients) {
  ReasonAcc& acc = (*map)[{std::string(dsn), NormalizeReason(text)}];
  ++acc.count;
  acc.distinct.insert(std::string(who));
  if (count_clients) ++acc.clients[std::string(who)];
  if (acc.example.empty()) acc.example = std::string(example);
}

ReasonList FinishReasons(const ReasonMap& map, size_t top) {
  ReasonList list;
  list.groups = static_cast<int64_t>(map.size());
  std::vector<ReasonMap::const_iterator> order;
  for (auto it = map.begin(); it != map.end(); ++it) order.push_back(it);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    if (a->second.count != b->second.count) return a->second.count > b->second.count;
    return a->first < b->first;
  });
  for (const auto& it : order) {
    if (list.entries.size() >= top) break;
    ReasonEntry e;
    e.dsn = it->first.first;
    e.text = it->first.second;
    e.count = it->second.count;
    e.messages = static_cast<int64_t>(it->second.distinct.size());
    e.example = it->second.example;
    int64_t best = 0;
    for (const auto& [client, n] : it->second.clients) {
      if (n > best) {
        best = n;
        e.top_client = client;
      }
    }
    list.entries.push_back(std::move(e));
  }
  return list;
}

struct TopAcc {
  int64_t messages = 0, bytes = 0, deferrals = 0, bounced = 0, expired = 0;
  std::unordered_set<int64_t> deferred;  // messages (traces) with a deferral line
  int64_t delay_count = 0;
  double delay_sum = 0, delay_max = 0;
  int64_t Failures() const { return deferrals + bounced + expired; }
};

// `keep_failed`: every key with a failure is listed beyond the top (recipient lists: a
// destination that only fails must never vanish behind the busy ones).
TopList FinishTop(const std::unordered_map<std::string, TopAcc>& map, size_t top,
                  bool keep_failed) {
  TopList list;
  list.distinct = static_cast<int64_t>(map.size());
  // Biggest by messages, then by trouble, so a domain that only fails still ranks.
  std::vector<std::unordered_map<std::string, TopAcc>::const_iterator> order;
  for (auto it = map.begin(); it != map.end(); ++it) order.push_back(it);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    const TopAcc &x = a->second, &y = b->second;
    if (x.messages != y.messages) return x.messages > y.messages;
    if (x.Failures() != y.Failures()) return x.Failures() > y.Failures();
    return a->first < b->first;
  });
  for (const auto& it : order) {
    const TopAcc& acc = it->second;
    if (list.entries.size() >= top && !(keep_failed && acc.Failures() > 0)) continue;
    TopEntry e;
    e.key = it->first;
    e.messages = acc.messages;
    e.bytes = acc.bytes;
    e.deferrals = acc.deferrals;
    e.deferred = static_cast<int64_t>(acc.deferred.size());
    e.bounced = acc.bounced;
    e.expired = acc.expired;
    e.delay_count = acc.delay_count;
    e.delay_avg = acc.delay_count > 0 ? acc.delay_sum / static_cast<double>(acc.delay_count) : 0;
    e.delay_max = acc.delay_max;
    list.entries.push_back(std::move(e));
  }
  return list;
}

CountList FinishCounts(const std::map<std::string, std::pair<int64_t, int64_t>>& map, size_t top) {
  CountList list;
  list.distinct = static_cast<int64_t>(map.size());
  for (const auto& [key, v] : map) {
    list.total += v.first;
    list.entries.push_back(CountEntry{key, v.first, v.second});
  }
  std::stable_sort(list.entries.begin(), list.entries.end(),
                   [](const CountEntry& a, const CountEntry& b) { return a.count > b.count; });
  if (list.entries.size() > top) list.entries.resize(top);
  return list;
}

// The network a client address belongs to for the "top rejected networks": its /24 (IPv4)
// or /64 (IPv6), as a prefix; "" for what is not an address ("unknown").
std::string NetworkOf(std::string_view ip) {
  std::string text(ip);
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) {
    bytes[3] = 0;
    if (inet_ntop(AF_INET, bytes, out, sizeof(out)) == nullptr) return "";
    return absl::StrCat(out, "/24");
  }
  if (core::StartsWith(text, "ipv6:")) text = text.substr(5);  // postscreen, some smtpd logs
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) {
    std::fill(bytes + 8, bytes + 16, 0);
    if (inet_ntop(AF_INET6, bytes, out, sizeof(out)) == nullptr) return "";
    return absl::StrCat(out, "/64");
  }
  return "";
}

// A Dovecot login process gave up on a client after failed authentication ("Disconnected
// (auth failed, 3 attempts in 15 secs)", "Aborted login (auth failed, ...)"). The auth
// process's own passdb lines about the same attempt are not counted again.
bool IsLoginFailure(const core::Event& ev) {
  return ev.Get(core::Field::kAction) == "disconnect" &&
         ev.Get(core::Field::kReason).find("auth failed") != std::string_view::npos;
}

int SeverityRank(core::Severity s) {
  return s == core::Severity::kPanic ? 0 : s == core::Severity::kFatal ? 1 : 2;
}

// What the pass over the events of the window yields. Filled by the scanning thread alone,
// read by the builder after joining it.
struct EventScan {
  struct PerHost {
    int64_t rejected = 0, sasl_failures = 0, login_failures = 0, reject_warnings = 0;
    int64_t warnings = 0, fatals = 0, panics = 0;
    std::vector<int64_t> rejected_by_bucket, sasl_by_bucket;
  };
  std::map<int64_t, PerHost> hosts;                                 // by host id
  std::map<std::pair<std::string, std::string>, int64_t> refusals;  // (program, action)
  ReasonMap reject_reasons;
  struct SaslAcc {
    std::string host;
    int64_t failures = 0;
    int64_t first_us = 0;
    int64_t last_us = 0;
    std::set<std::string> users;
  };
  std::map<std::string, SaslAcc> sasl_sources;   // by client address
  std::map<std::string, SaslAcc> login_sources;  // Dovecot login failures, by client address
  ReasonMap reject_warning_reasons;
  // Refusal lines by client address, and by network (count, distinct clients).
  std::map<std::string, int64_t> rejected_clients;
  std::map<std::string, std::pair<int64_t, std::set<std::string>>> rejected_networks;
  // Problems by (severity rank, program, normalised text).
  struct ProblemAcc {
    int64_t count = 0;
    std::string example;
  };
  std::map<std::tuple<int, std::string, std::string>, ProblemAcc> problems;
  int64_t ps_connections = 0, ps_pass_new = 0, ps_pass_old = 0, ps_rejected = 0;
  std::map<std::string, std::pair<int64_t, std::set<std::string>>> ps_events;  // name: clients
  std::map<std::string, std::pair<int64_t, std::set<std::string>>> dnsbl_sites;
  // Lines that need the catalog's instances, mapped once both sides are loaded.
  std::vector<std::string> programs;
  struct Reception {
    int program;
    int64_t host_id, ts;
    std::string queue_id;
  };
  std::vector<Reception> receptions;
  struct Deferral {
    int64_t host_id, ts;
    std::string queue_id, recipient, dsn, reply;
  };
  std::vector<Deferral> deferrals;
};

// The whole computation; members are the loaded state, so each step reads as a paragraph.
class ReportBuilder {
 public:
  ReportBuilder(std::string dir, ReportOptions options)
      : dir_(std::move(dir)), options_(std::move(options)) {}

  absl::StatusOr<Report> Build();

 private:
  absl::Status OpenCatalog();
  absl::Status FindDataRange();
  // --- Archive (store/retention.h) ---
  // A readable path of day `day`: hot, or decompressed from the archive into the cache.
  absl::StatusOr<std::string> DayPath(int64_t day) const;
  // Says so in the notices when the window reaches archived days.
  void AddArchiveNotice();
  void SetupBuckets();
  absl::Status LoadUnits();
  void Classify();
  void MakeUnits();
  // --domain: keeps the units with mail from or to the domains (ReportOptions::domains).
  void FilterUnits();
  // Runs on its own thread with its own connections; touches only `scan` and what Build and
  // SetupBuckets fixed before the thread started (the domains, the buckets).
  absl::Status ScanEvents(EventScan* scan) const;
  absl::Status ScanDay(int64_t day, bool whole_day, EventScan* scan) const;
  absl::Status MergeScan(EventScan* scan);
  void Aggregate();
  void FindStuck();
  absl::Status SaslUsers(const EventScan& scan);
  // Failure sources (SASL, Dovecot logins) by client, most failures first, at most top.
  std::vector<SaslFailureSource> FailureSources(
      const std::map<std::string, EventScan::SaslAcc>& by_client, int64_t* distinct) const;

  int AddMsg(Msg m);
  int IndexOf(int64_t id) const {
    if (id >= id_lo_ && id - id_lo_ < static_cast<int64_t>(dense_ids_.size())) {
      return dense_ids_[id - id_lo_];
    }
    auto it = other_ids_.find(id);
    return it == other_ids_.end() ? -1 : it->second;
  }
  // Index of the instance of (host, queue ID) alive at `t` among the loaded messages, or -1.
  int FindLoaded(int64_t host_id, std::string_view queue_id, int64_t t) const;
  absl::StatusOr<int> LoadExtra(int64_t host_id, std::string_view queue_id, int64_t t);
  static uint64_t Key(int64_t host_id, std::string_view queue_id) {
    return std::hash<std::string_view>()(queue_id) * 31 + static_cast<uint64_t>(host_id);
  }
  int Bucket(int64_t t) const;
  bool DomainFilter() const { return !domains_.empty(); }
  bool InDomains(std::string_view address) const { return domains_.count(DomainOf(address)) > 0; }
  // A recipient row of message `m` is in scope: no domain filter, or the message's sender or
  // the recipient, as addressed or as an alias expanded it, is of one of the domains (mail to
  // all-staff@D delivered to an address elsewhere is mail to D).
  bool RowInDomains(const Msg& sender, const Row& r) const {
    return !DomainFilter() || (sender.has_sender && InDomains(sender.sender)) ||
           InDomains(r.recipient) || (!r.orig_to.empty() && InDomains(r.orig_to));
  }
  bool InWindow(int64_t t) const { return t >= options_.since_us && t < options_.until_us; }
  bool HostInScope(int64_t host_id) const { return host_filter_ == 0 || host_id == host_filter_; }
  int64_t UnitSize(const Unit& u) const;
  const Msg& SenderMsg(const Unit& u) const;
  // Leaving rows: the recipient left the unit — delivered at its final hop (site), or also
  // handed to another of our hosts (per host).
  static bool Leaves(const Row& r, bool per_host) {
    return r.cls == RowClass::kFinal || (per_host && r.cls == RowClass::kOurRelay);
  }

  std::string dir_;
  ReportOptions options_;
  Report report_;
  std::unique_ptr<store::Database> catalog_;
  std::map<int64_t, std::string> host_names_;
  std::map<int64_t, size_t> host_index_;  // host id -> index in report_.hosts
  int64_t host_filter_ = 0;
  std::vector<int64_t> days_;           // stored partitions, oldest first
  std::vector<int64_t> bucket_starts_;  // start of each traffic bucket, then the last's end
  std::set<std::string> domains_;       // --domain, lower case
  // Deferral lines by recipient address and domain (their counts and messages), for the top
  // recipient lists.
  std::unordered_map<std::string, TopAcc> deferrals_by_recipient_, deferrals_by_domain_;

  std::vector<Msg> msgs_;
  std::vector<Row> rows_;                     // grouped by message (Msg::row_begin/row_end)
  std::vector<std::pair<int, uint8_t>> out_;  // links grouped by source: (target, LinkBits)
  // Message id -> index in msgs_: dense over the window's id range, a map outside it.
  int64_t id_lo_ = 0;
  std::vector<int> dense_ids_;
  std::unordered_map<int64_t, int> other_ids_;
  // (hash of host and queue ID, index) sorted, then by first_us; checked on lookup. Instances
  // loaded later (LoadExtra) go to the map.
  std::vector<std::pair<uint64_t, int>> keys_;
  std::unordered_multimap<uint64_t, int> extra_keys_;
  std::vector<Unit> units_;  // the report's scope: site traces, or the filtered host's units
  std::vector<std::vector<Unit>> host_units_;  // per report_.hosts entry

  std::set<int> deferred_msgs_;                                 // loaded or extra instances
  std::set<std::pair<int64_t, std::string>> deferred_unknown_;  // (host, qid) not in the catalog
};

absl::Status ReportBuilder::OpenCatalog() {
  std::string path = dir_ + "/catalog.db";
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(
        absl::StrCat("no maillens data in ", dir_, " (run 'maillens import' first)"));
  }
  MAILLENS_ASSIGN_OR_RETURN(catalog_,
                            store::Database::Open(path, store::Database::Mode::kReadOnly));
  MAILLENS_ASSIGN_OR_RETURN(store::Statement hosts, catalog_->Prepare(kSelectHosts));
  std::vector<std::string> names;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, hosts.Step());
    if (step == store::Statement::StepResult::kDone) break;
    int64_t id = hosts.ColumnInt(0);
    std::string name = Text(hosts, 1);
    host_names_[id] = name;
    names.push_back(name);
    if (!options_.host.empty() && absl::EqualsIgnoreCase(name, options_.host)) host_filter_ = id;
  }
  if (!options_.host.empty() && host_filter_ == 0) {
    return absl::NotFoundError(absl::StrCat("no host named '", options_.host,
                                            "' in the store (hosts: ", absl::StrJoin(names, ", "),
                                            ")"));
  }
  for (const auto& [id, name] : host_names_) {
    if (!HostInScope(id)) continue;
    host_index_[id] = report_.hosts.size();
    report_.hosts.push_back(HostReport{name, {}, {}});
  }
  host_units_.resize(report_.hosts.size());
  report_.host = host_filter_ == 0 ? "" : host_names_[host_filter_];
  return absl::OkStatus();
}

absl::Status ReportBuilder::FindDataRange() {
  // Hot and archived days (store/retention.h); DayPath reads either.
  days_ = store::AllDays(dir_);
  AddArchiveNotice();
  // The oldest and newest line, from the first and last non-empty partition (index on ts_us).
  for (int pass = 0; pass < 2; ++pass) {
    bool first = pass == 0;
    for (size_t i = 0; i < days_.size(); ++i) {
      int64_t day = first ? days_[i] : days_[days_.size() - 1 - i];
      MAILLENS_ASSIGN_OR_RETURN(std::string path, DayPath(day));
      MAILLENS_ASSIGN_OR_RETURN(auto db,
                                store::Database::Open(path, store::Database::Mode::kReadOnly));
      MAILLENS_ASSIGN_OR_RETURN(store::Statement s,
                                db->Prepare(first ? kSelectFirstLine : kSelectLastLine));
      MAILLENS_ASSIGN_OR_RETURN(auto step, s.Step());
      if (step == store::Statement::StepResult::kRow && !s.ColumnIsNull(0)) {
        (first ? report_.data_first_us : report_.data_last_us) = s.ColumnInt(0);
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReportBuilder::DayPath(int64_t day) const {
  return store::ReadableDayPath(dir_, day, /*archived=*/nullptr);
}

void ReportBuilder::AddArchiveNotice() {
  int64_t first = options_.since_us == INT64_MIN ? 0 : store::DayOf(options_.since_us);
  int64_t last = options_.until_us == INT64_MAX ? 99999999 : store::DayOf(options_.until_us - 1);
  // Archived days left out because the manifest cannot be trusted: named, never silent.
  if (std::string unread = store::UnreadableArchiveNotice(dir_, first, last); !unread.empty()) {
    report_.notices.push_back(std::move(unread));
  }
  // Days retention deleted: said, so that what the catalog still held of them is not taken
  // for the whole story.
  if (std::string gone = store::DeletedDaysNotice(dir_, first, last); !gone.empty()) {
    report_.notices.push_back(std::move(gone));
  }
  std::vector<int64_t> read;
  for (int64_t day : store::ArchivedDays(dir_)) {
    if (day >= first && day <= last &&
        !std::filesystem::exists(absl::StrCat(dir_, "/days/", day, ".db"))) {
      read.push_back(day);
    }
  }
  if (read.empty()) return;
  report_.notices.push_back(absl::StrCat(
      "the window includes ", read.size(), read.size() == 1 ? " archived day" : " archived days",
      " (", read.front(), read.size() == 1 ? "" : absl::StrCat("..", read.back()),
      "), read from the archive"));
}

void ReportBuilder::SetupBuckets() {
  int64_t since = options_.since_us, until = options_.until_us;
  if (report_.data_last_us == 0) {
    // No line to size an open window by; a window the user gave stays as given (a report of
    // days that could not be read must still say which days it covers).
    if (since == INT64_MIN || until == INT64_MAX) since = until = 0;
  } else {
    if (since == INT64_MIN) since = std::min(report_.data_first_us, until);
    if (until == INT64_MAX) until = std::max(report_.data_last_us + 1, since);
  }
  report_.since_us = since;
  report_.until_us = until;
  int64_t span = until - since;
  report_.bucket_us = span > kHourlyLimitUs ? kDayUs : kHourUs;
  if (span <= 0) return;
  // Buckets begin at whole hours or midnights of the report's zone, so that the chart's hour
  // labels are that zone's hours (a zone half an hour off UTC, a day that is not a UTC day)
  // and a day that changes the clock is one bucket of 23 or 25 hours.
  const absl::TimeZone& zone = options_.zone;
  absl::Time first = absl::FromUnixMicros(since);
  if (report_.bucket_us == kHourUs) {
    int64_t start = absl::ToUnixMicros(zone.At(absl::ToCivilHour(first, zone)).pre);
    if (start > since) start -= kHourUs;
    for (int64_t t = start; t < until; t += kHourUs) bucket_starts_.push_back(t);
    bucket_starts_.push_back(bucket_starts_.back() + kHourUs);
  } else {
    absl::CivilDay day = absl::ToCivilDay(first, zone);
    while (true) {
      int64_t t = absl::ToUnixMicros(zone.At(absl::CivilSecond(day)).pre);
      bucket_starts_.push_back(t);
      if (t >= until) break;
      ++day;
    }
  }
  report_.traffic.resize(bucket_starts_.size() - 1);
  for (size_t i = 0; i + 1 < bucket_starts_.size(); ++i) {
    report_.traffic[i].start_us = bucket_starts_[i];
  }
  for (HostReport& h : report_.hosts) h.traffic = report_.traffic;
}

int ReportBuilder::Bucket(int64_t t) const {
  if (report_.traffic.empty() || t < report_.since_us || t >= report_.until_us) return -1;
  auto it = std::upper_bound(bucket_starts_.begin(), bucket_starts_.end(), t);
  if (it == bucket_starts_.begin() || it == bucket_starts_.end()) return -1;
  return static_cast<int>(it - bucket_starts_.begin()) - 1;
}

int ReportBuilder::AddMsg(Msg m) {
  int idx = static_cast<int>(msgs_.size());
  if (m.id >= id_lo_ && m.id - id_lo_ < static_cast<int64_t>(dense_ids_.size())) {
    dense_ids_[m.id - id_lo_] = idx;
  } else {
    other_ids_[m.id] = idx;
  }
  msgs_.push_back(std::move(m));
  return idx;
}

int ReportBuilder::FindLoaded(int64_t host_id, std::string_view queue_id, int64_t t) const {
  uint64_t key = Key(host_id, queue_id);
  int found = -1, earliest = -1;
  auto consider = [&](int idx) {
    const Msg& m = msgs_[idx];
    if (m.host_id != host_id || m.queue_id != queue_id) return;  // a hash collision
    if (earliest < 0 || m.first_us < msgs_[earliest].first_us) earliest = idx;
    if (m.first_us <= t && (found < 0 || m.first_us > msgs_[found].first_us)) found = idx;
  };
  auto it = std::lower_bound(keys_.begin(), keys_.end(), std::make_pair(key, INT_MIN));
  for (; it != keys_.end() && it->first == key; ++it) consider(it->second);
  if (!extra_keys_.empty()) {
    auto [b, e] = extra_keys_.equal_range(key);
    for (; b != e; ++b) consider(b->second);
  }
  // A line a little before the instance's first known line (clock order within one host is
  // not strict across processes) still belongs to the earliest instance.
  if (found < 0) found = earliest;
  if (found < 0) return -1;
  return t <= msgs_[found].last_us + kDayUs ? found : -1;
}

absl::StatusOr<int> ReportBuilder::LoadExtra(int64_t host_id, std::string_view queue_id,
                                             int64_t t) {
  MAILLENS_ASSIGN_OR_RETURN(store::Statement * select,
                            catalog_->Cached(absl::StrCat(kMessageColumns, kWhereInstanceAt)));
  select->BindText(1, queue_id).Bind(2, host_id).Bind(3, t + 1);
  MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
  if (step != store::Statement::StepResult::kRow) return -1;
  Msg m = ReadMsg(*select);
  select->Reset();
  if (int known = IndexOf(m.id); known >= 0) return known;
  int idx = AddMsg(std::move(m));
  extra_keys_.emplace(Key(host_id, queue_id), idx);
  MAILLENS_ASSIGN_OR_RETURN(store::Statement * rcpts,
                            catalog_->Cached(absl::StrCat(kRecipientColumns, kWhereMessageIn)));
  rcpts->Bind(1, msgs_[idx].id).Bind(2, msgs_[idx].id);
  msgs_[idx].row_begin = static_cast<int>(rows_.size());
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto rstep, rcpts->Step());
    if (rstep == store::Statement::StepResult::kDone) break;
    Row r = ReadRow(*rcpts);
    r.msg = idx;
    rows_.push_back(std::move(r));
  }
  rcpts->Reset();
  msgs_[idx].row_end = static_cast<int>(rows_.size());
  return idx;
}

absl::Status ReportBuilder::LoadUnits() {
  MAILLENS_ASSIGN_OR_RETURN(store::Statement count, catalog_->Prepare(kCountInWindow));
  count.Bind(1, options_.since_us).Bind(2, options_.until_us);
  MAILLENS_ASSIGN_OR_RETURN(auto cstep, count.Step());
  if (cstep != store::Statement::StepResult::kRow || count.ColumnInt(0) == 0)
    return absl::OkStatus();
  int64_t in_window_count = count.ColumnInt(0);
  id_lo_ = count.ColumnInt(1);
  int64_t id_hi = count.ColumnInt(2);
  dense_ids_.assign(static_cast<size_t>(id_hi - id_lo_ + 1), -1);
  msgs_.reserve(static_cast<size_t>(in_window_count) + 1024);
  bool by_ids = in_window_count * 3 >= id_hi - id_lo_ + 1;
  MAILLENS_ASSIGN_OR_RETURN(
      store::Statement in_window,
      catalog_->Prepare(absl::StrCat(kMessageColumns, by_ids ? kWhereIdsFirstIn : kWhereFirstIn)));
  if (by_ids) {
    in_window.Bind(1, id_lo_).Bind(2, id_hi).Bind(3, options_.since_us).Bind(4, options_.until_us);
  } else {
    in_window.Bind(1, options_.since_us).Bind(2, options_.until_us);
  }
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, in_window.Step());
    if (step == store::Statement::StepResult::kDone) break;
    int idx = AddMsg(ReadMsg(in_window));
    msgs_[idx].in_units = true;
    lo = std::min(lo, msgs_[idx].id);
    hi = std::max(hi, msgs_[idx].id);
  }
  if (msgs_.empty()) return absl::OkStatus();

  // Links touching the loaded instances; their far ends outside the window are loaded in
  // turn until every trace is whole.
  std::vector<std::tuple<int64_t, int64_t, uint8_t>> links;
  std::vector<int64_t> frontier;
  auto take_link = [&](int64_t from, int64_t to, std::string_view kind) {
    bool has_from = IndexOf(from) >= 0, has_to = IndexOf(to) >= 0;
    if (!has_from && !has_to) return;
    uint8_t bits = kind == "relay" ? kLinkRelay : kind == "reinject" ? kLinkReinject : kLinkBounce;
    links.emplace_back(from, to, bits);
    if (!has_from) frontier.push_back(from);
    if (!has_to) frontier.push_back(to);
  };
  for (const char* sql : {kSelectLinksFrom, kSelectLinksTo}) {
    MAILLENS_ASSIGN_OR_RETURN(store::Statement select, catalog_->Prepare(sql));
    select.Bind(1, lo).Bind(2, hi);
    bool by_target = sql == kSelectLinksTo;
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == store::Statement::StepResult::kDone) break;
      int64_t from = select.ColumnInt(0);
      if (by_target && from >= lo && from <= hi) continue;  // read by the first query
      take_link(from, select.ColumnInt(1), select.ColumnText(2));
    }
  }
  MAILLENS_ASSIGN_OR_RETURN(store::Statement by_id,
                            catalog_->Prepare(absl::StrCat(kMessageColumns, kWhereId)));
  MAILLENS_ASSIGN_OR_RETURN(store::Statement from_one, catalog_->Prepare(kSelectLinksFrom));
  MAILLENS_ASSIGN_OR_RETURN(store::Statement to_one, catalog_->Prepare(kSelectLinksTo));
  std::vector<int> outside;  // loaded, but not in [lo, hi]
  while (!frontier.empty()) {
    int64_t id = frontier.back();
    frontier.pop_back();
    if (IndexOf(id) >= 0) continue;
    by_id.Bind(1, id);
    MAILLENS_ASSIGN_OR_RETURN(auto step, by_id.Step());
    bool found = step == store::Statement::StepResult::kRow;
    if (found) {
      int idx = AddMsg(ReadMsg(by_id));
      msgs_[idx].in_units = true;
      if (id < lo || id > hi) outside.push_back(idx);
    }
    by_id.Reset();
    if (!found) continue;
    for (store::Statement* select : {&from_one, &to_one}) {
      select->Bind(1, id).Bind(2, id);
      while (true) {
        MAILLENS_ASSIGN_OR_RETURN(auto lstep, select->Step());
        if (lstep == store::Statement::StepResult::kDone) break;
        take_link(select->ColumnInt(0), select->ColumnInt(1), select->ColumnText(2));
      }
      select->Reset();
    }
  }
  // Links grouped by source (CSR), duplicates (a link read from both ends) dropped.
  std::vector<std::tuple<int, int, uint8_t>> edges;
  edges.reserve(links.size());
  for (const auto& [from, to, bits] : links) {
    int f = IndexOf(from), t = IndexOf(to);
    if (f >= 0 && t >= 0) edges.emplace_back(f, t, bits);
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  out_.reserve(edges.size());
  for (size_t i = 0; i < edges.size(); ++i) {
    auto [from, to, bits] = edges[i];
    if (i == 0 || std::get<0>(edges[i - 1]) != from) msgs_[from].out_begin = static_cast<int>(i);
    msgs_[from].out_end = static_cast<int>(i) + 1;
    msgs_[to].in_kind |= bits;
    out_.emplace_back(to, bits);
  }
  keys_.reserve(msgs_.size());
  for (size_t i = 0; i < msgs_.size(); ++i) {
    keys_.emplace_back(Key(msgs_[i].host_id, msgs_[i].queue_id), static_cast<int>(i));
  }
  std::sort(keys_.begin(), keys_.end());

  // Recipients of the id range, then of the instances loaded outside it; then grouped by
  // message (a counting sort: rows arrive in table order).
  MAILLENS_ASSIGN_OR_RETURN(store::Statement max_id, catalog_->Prepare(kSelectMaxMessageId));
  MAILLENS_ASSIGN_OR_RETURN(auto mstep, max_id.Step());
  int64_t all = mstep == store::Statement::StepResult::kRow ? max_id.ColumnInt(0) : 0;
  bool scan = (hi - lo + 1) * 3 >= all;
  std::vector<Row> rows;
  rows.reserve(msgs_.size() * 2);
  auto read_rows = [&](store::Statement* select) -> absl::Status {
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
      if (step == store::Statement::StepResult::kDone) break;
      int idx = IndexOf(select->ColumnInt(0));
      if (idx < 0) continue;
      rows.push_back(ReadRow(*select));
      rows.back().msg = idx;
    }
    select->Reset();
    return absl::OkStatus();
  };
  MAILLENS_ASSIGN_OR_RETURN(store::Statement range,
                            catalog_->Prepare(absl::StrCat(
                                kRecipientColumns, scan ? kWhereMessageInScan : kWhereMessageIn)));
  range.Bind(1, lo).Bind(2, hi);
  MAILLENS_RETURN_IF_ERROR(read_rows(&range));
  MAILLENS_ASSIGN_OR_RETURN(store::Statement one,
                            catalog_->Prepare(absl::StrCat(kRecipientColumns, kWhereMessageIn)));
  for (int idx : outside) {
    one.Bind(1, msgs_[idx].id).Bind(2, msgs_[idx].id);
    MAILLENS_RETURN_IF_ERROR(read_rows(&one));
  }
  std::vector<int> start(msgs_.size() + 1, 0);
  for (const Row& r : rows) ++start[r.msg + 1];
  for (size_t i = 0; i < msgs_.size(); ++i) {
    start[i + 1] += start[i];
    msgs_[i].row_begin = start[i];
    msgs_[i].row_end = start[i];
  }
  rows_.resize(rows.size());
  for (Row& r : rows) {
    Msg& m = msgs_[r.msg];
    rows_[m.row_end++] = std::move(r);
  }
  return absl::OkStatus();
}

void ReportBuilder::Classify() {
  // The bounce branch: everything reached through a bounce link travels back to the sender.
  std::vector<int> stack;
  for (size_t i = 0; i < msgs_.size(); ++i) {
    if (msgs_[i].in_kind & kLinkBounce) stack.push_back(static_cast<int>(i));
  }
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    if (msgs_[i].bounce_branch) continue;
    msgs_[i].bounce_branch = true;
    for (int k = msgs_[i].out_begin; k < msgs_[i].out_end; ++k) stack.push_back(out_[k].first);
  }
  for (Row& r : rows_) {
    if (r.status != Status::kSent) continue;
    const Msg& m = msgs_[r.msg];
    int linked = 0;
    if (!r.next_queue_id.empty()) {
      for (int k = m.out_begin; k < m.out_end; ++k) {
        if (msgs_[out_[k].first].queue_id == r.next_queue_id) linked = out_[k].second;
      }
    }
    if (linked == kLinkRelay) {
      r.cls = RowClass::kOurRelay;
    } else if (r.next_form == Form::kForwarded) {
      r.cls = RowClass::kForwarded;
    } else if (linked == kLinkReinject || r.next_form == Form::kContentFilter) {
      r.cls = RowClass::kContentFilter;
    } else if (r.says_discard) {
      // A hand-off over loopback that answers "discarded": a content filter dropped it. One
      // that answers with a queue ID is a content filter only when its re-injection was seen
      // (the reinject link above): a foreign MTA on a loopback address (a tunnel to a
      // smarthost) answers the same, and its mail is delivered (docs/CORRELATION.md).
      r.cls = RowClass::kContentFilter;
    }
    r.cf_discarded = r.cls == RowClass::kContentFilter && linked == 0 && r.says_discard;
  }
}

void ReportBuilder::FilterUnits() {
  if (!DomainFilter()) return;
  for (Msg& m : msgs_) m.in_scope = false;
  auto keep = [this](const Unit& u) {
    const Msg& from = SenderMsg(u);
    if (from.has_sender && InDomains(from.sender)) return true;
    for (int mi : u.msgs) {
      for (int ri = msgs_[mi].row_begin; ri < msgs_[mi].row_end; ++ri) {
        const Row& r = rows_[ri];
        if (InDomains(r.recipient) || (!r.orig_to.empty() && InDomains(r.orig_to))) return true;
      }
    }
    return false;
  };
  auto filter = [&](std::vector<Unit>* units) {
    std::vector<Unit> kept;
    for (Unit& u : *units) {
      if (!keep(u)) continue;
      for (int mi : u.msgs) msgs_[mi].in_scope = true;
      kept.push_back(std::move(u));
    }
    *units = std::move(kept);
  };
  filter(&units_);
  for (std::vector<Unit>& units : host_units_) filter(&units);
  report_.notices.push_back(
      "only mail from or to the given domains: lines that name no sender or recipient "
      "(warnings, postscreen, SASL and login failures) are left out");
}

void ReportBuilder::MakeUnits() {
  // Instances grouped by trace.
  std::vector<int> order;
  for (size_t i = 0; i < msgs_.size(); ++i) {
    if (msgs_[i].in_units) order.push_back(static_cast<int>(i));
  }
  std::sort(order.begin(), order.end(), [this](int a, int b) {
    if (msgs_[a].trace_id != msgs_[b].trace_id) return msgs_[a].trace_id < msgs_[b].trace_id;
    return msgs_[a].first_us < msgs_[b].first_us;
  });
  // The instances reached from `start` along links of `bits`.
  std::vector<int> mark(msgs_.size(), -1);
  int generation = 0;
  auto collect = [&](int start, uint8_t bits) {
    ++generation;
    std::vector<int> out, stack{start};
    while (!stack.empty()) {
      int i = stack.back();
      stack.pop_back();
      if (mark[i] == generation) continue;
      mark[i] = generation;
      out.push_back(i);
      for (int k = msgs_[i].out_begin; k < msgs_[i].out_end; ++k) {
        if (out_[k].second & bits) stack.push_back(out_[k].first);
      }
    }
    return out;
  };
  // The entry: the earliest root (no incoming link) that was received, else the earliest
  // root, else — a trace that is all cycle, which the correlator should not make — the
  // earliest instance.
  auto rank = [this](int i) {
    const Msg& m = msgs_[i];
    return m.in_kind != 0 ? 2 : m.Received() ? 0 : 1;
  };
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    while (end < order.size() && msgs_[order[end]].trace_id == msgs_[order[begin]].trace_id) {
      ++end;
    }
    int entry = -1;
    int received_roots = 0;
    for (size_t k = begin; k < end; ++k) {
      int i = order[k];
      if (msgs_[i].bounce_branch) continue;
      if (rank(i) == 0) ++received_roots;
      if (entry < 0 || rank(i) < rank(entry)) entry = i;  // first_us order breaks ties
    }
    if (entry < 0) entry = order[begin];
    if (host_filter_ == 0 && InWindow(msgs_[entry].first_us)) {
      // Each root is a reception of its own; more than one in a trace means the correlator
      // joined two received messages into one (or one entered twice).
      if (received_roots > 1) report_.lines.merged_entries += received_roots - 1;
      const Msg& e = msgs_[entry];
      if (e.in_kind != 0 && e.Received()) ++report_.lines.rootless_traces;
      Unit forward;
      forward.entry = entry;
      for (size_t k = begin; k < end; ++k) {
        if (!msgs_[order[k]].bounce_branch) forward.msgs.push_back(order[k]);
      }
      units_.push_back(std::move(forward));
      for (size_t k = begin; k < end; ++k) {
        int i = order[k];
        if (!(msgs_[i].in_kind & kLinkBounce)) continue;
        Unit notice;
        notice.entry = i;
        notice.notice = true;
        notice.msgs = collect(i, kLinkRelay | kLinkReinject);
        units_.push_back(std::move(notice));
      }
    }
    // Host units: an instance not re-injected on its host, with what it re-injected.
    for (size_t k = begin; k < end; ++k) {
      int i = order[k];
      const Msg& m = msgs_[i];
      if (m.in_kind & kLinkReinject) continue;
      auto hi = host_index_.find(m.host_id);
      if (hi == host_index_.end() || !InWindow(m.first_us)) continue;
      Unit u;
      u.entry = i;
      u.notice = m.bounce_branch;
      u.msgs = collect(i, kLinkReinject);
      if (host_filter_ != 0) units_.push_back(u);
      host_units_[hi->second].push_back(std::move(u));
    }
    begin = end;
  }
}

absl::Status ReportBuilder::ScanEvents(EventScan* scan) const {
  int64_t first_day = options_.since_us == INT64_MIN ? 0 : store::DayOf(options_.since_us);
  int64_t last_day =
      options_.until_us == INT64_MAX ? 99999999 : store::DayOf(options_.until_us - 1);
  for (int64_t day : days_) {
    if (day < first_day || day > last_day) continue;
    // A day wholly inside the window needs no time condition.
    int64_t day_start = store::DayStartUs(day);
    bool whole = options_.since_us <= day_start && options_.until_us >= day_start + kDayUs;
    MAILLENS_RETURN_IF_ERROR(ScanDay(day, whole, scan));
  }
  return absl::OkStatus();
}

absl::Status ReportBuilder::ScanDay(int64_t day, bool whole_day, EventScan* scan) const {
  using core::Field;
  using core::Kind;
  MAILLENS_ASSIGN_OR_RETURN(std::string path, DayPath(day));
  MAILLENS_ASSIGN_OR_RETURN(auto db, store::Database::Open(path, store::Database::Mode::kReadOnly));
  MAILLENS_RETURN_IF_ERROR(db->Exec(kScanPragmas));
  // Only the lines the report needs (a partial index holds them); their raw text is
  // re-parsed, nothing else is read.
  std::string sql = absl::StrCat("SELECT ts_us, host_id, kind, queue_id, raw FROM events WHERE ",
                                 store::ReportLinesCondition());
  if (!whole_day) absl::StrAppend(&sql, " AND ts_us >= ? AND ts_us < ?");
  if (host_filter_ != 0) absl::StrAppend(&sql, " AND host_id = ", host_filter_);
  MAILLENS_ASSIGN_OR_RETURN(store::Statement select, db->Prepare(sql));
  if (!whole_day) select.Bind(1, options_.since_us).Bind(2, options_.until_us);

  const size_t buckets = report_.traffic.size();
  EventScan::PerHost* host = nullptr;
  int64_t host_of = -1;
  std::string_view last_program;
  int program = -1;
  core::TimeContext time{core::TimeOptions()};
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
    if (step == store::Statement::StepResult::kDone) break;
    int64_t ts = select.ColumnInt(0);
    int64_t host_id = select.ColumnInt(1);
    auto kind = static_cast<Kind>(select.ColumnInt(2));
    std::string_view queue_id = select.ColumnText(3);
    std::string_view raw = select.ColumnText(4);
    // postscreen's CONNECT and PASS lines are many on a busy day and only counted: their
    // stored kind (and PASS's word) says all, no parse needed.
    if (kind == Kind::kPostscreenConnect || kind == Kind::kPostscreenPass ||
        kind == Kind::kPostscreenDisconnect) {
      if (DomainFilter() || kind == Kind::kPostscreenDisconnect) continue;
      if (kind == Kind::kPostscreenConnect) {
        ++scan->ps_connections;
      } else {
        ++(raw.find(": PASS NEW ") != std::string_view::npos ? scan->ps_pass_new
                                                             : scan->ps_pass_old);
      }
      continue;
    }
    core::Event ev = core::ParseLine(raw, &time);
    if (host_id != host_of) {
      host = &scan->hosts[host_id];
      if (host->rejected_by_bucket.empty()) {
        host->rejected_by_bucket.resize(buckets);
        host->sasl_by_bucket.resize(buckets);
      }
      host_of = host_id;
    }
    int bucket = Bucket(ts);
    // With --domain, only lines that name a sender or recipient of the domains count; the
    // rest (warnings, postscreen, failures to log in) belong to no domain.
    auto names_domain = [&] {
      return (ev.Has(Field::kFrom) && InDomains(ev.Get(Field::kFrom))) ||
             (ev.Has(Field::kTo) && InDomains(ev.Get(Field::kTo))) ||
             (ev.Has(Field::kOrigTo) && InDomains(ev.Get(Field::kOrigTo)));
    };
    // Warning, fatal and panic lines, whatever else they say (a SASL failure is also a
    // warning); a check action's "warning: header ..." is a reject warning, not a problem.
    if (ev.severity == core::Severity::kWarning || ev.severity == core::Severity::kFatal ||
        ev.severity == core::Severity::kPanic) {
      if (kind != Kind::kCheckAction && !DomainFilter()) {
        std::string_view text = ev.message;
        text.remove_prefix(std::min(text.size(), core::SeverityName(ev.severity).size() + 2));
        auto& acc = scan->problems[{SeverityRank(ev.severity), std::string(ev.program),
                                    NormalizeReason(text)}];
        if (acc.count++ == 0) acc.example = std::string(text);
        ++(ev.severity == core::Severity::kWarning ? host->warnings
           : ev.severity == core::Severity::kFatal ? host->fatals
                                                   : host->panics);
      }
    }
    switch (kind) {
      case Kind::kClient:
      case Kind::kPickup:
        if (program < 0 || ev.program != last_program) {
          auto it = std::find(scan->programs.begin(), scan->programs.end(), ev.program);
          program = static_cast<int>(it - scan->programs.begin());
          if (it == scan->programs.end()) scan->programs.emplace_back(ev.program);
          last_program = scan->programs[program];
        }
        scan->receptions.push_back({program, host_id, ts, std::string(queue_id)});
        break;
      case Kind::kReject: {
        if (DomainFilter() && !names_domain()) break;
        ++scan->refusals[{std::string(ev.program), std::string(ev.Get(Field::kAction))}];
        ++host->rejected;
        if (bucket >= 0) ++host->rejected_by_bucket[bucket];
        std::string_view client = ev.Get(Field::kClientIp);
        if (client.empty()) client = ev.Get(Field::kClient);
        std::string_view reason = ev.Get(Field::kReason);
        if (reason.empty()) reason = ev.Get(Field::kReply);
        AddReason(&scan->reject_reasons, ev.Get(Field::kDsn), reason, client,
                  ev.Has(Field::kReply) ? ev.Get(Field::kReply) : reason, true);
        if (!client.empty()) {
          ++scan->rejected_clients[std::string(client)];
          if (std::string net = NetworkOf(client); !net.empty()) {
            auto& acc = scan->rejected_networks[net];
            ++acc.first;
            acc.second.insert(std::string(client));
          }
        }
        if (ev.daemon == "postscreen") ++scan->ps_rejected;
        break;
      }
      case Kind::kCheckAction: {
        // Reject warnings: smtpd's reject_warning (warn_if_reject) and cleanup's header and
        // body WARN, as pflogsumm counts them. Holds and discards are message dispositions.
        std::string_view action = ev.Get(Field::kAction);
        if (action != "reject_warning" && !(action == "warning" && ev.daemon == "cleanup")) break;
        if (DomainFilter() && !names_domain()) break;
        ++host->reject_warnings;
        std::string_view reason = ev.Get(Field::kReason);
        if (reason.empty()) reason = ev.Get(Field::kReply);
        std::string_view client = ev.Get(Field::kClientIp);
        if (client.empty()) client = ev.Get(Field::kClient);
        AddReason(&scan->reject_warning_reasons, ev.Get(Field::kDsn), reason, client,
                  ev.Has(Field::kReply) ? ev.Get(Field::kReply) : reason, true);
        break;
      }
      case Kind::kSaslFailed: {
        if (DomainFilter()) break;
        ++host->sasl_failures;
        if (bucket >= 0) ++host->sasl_by_bucket[bucket];
        EventScan::SaslAcc& acc = scan->sasl_sources[std::string(ev.Get(Field::kClientIp))];
        if (acc.failures == 0) {
          acc.first_us = acc.last_us = ts;
          acc.host = std::string(ev.Get(Field::kClientHost));
        }
        ++acc.failures;
        acc.first_us = std::min(acc.first_us, ts);
        acc.last_us = std::max(acc.last_us, ts);
        if (ev.Has(Field::kSaslUsername)) {
          acc.users.insert(std::string(ev.Get(Field::kSaslUsername)));
        }
        break;
      }
      case Kind::kDovecotAuth: {
        if (DomainFilter() || !IsLoginFailure(ev)) break;
        ++host->login_failures;
        EventScan::SaslAcc& acc = scan->login_sources[std::string(ev.Get(Field::kClientIp))];
        if (acc.failures == 0) {
          acc.first_us = acc.last_us = ts;
          acc.host = std::string(ev.Get(Field::kDetail));  // the service: imap-login, ...
        }
        ++acc.failures;
        acc.first_us = std::min(acc.first_us, ts);
        acc.last_us = std::max(acc.last_us, ts);
        if (ev.Has(Field::kUser) && !ev.Get(Field::kUser).empty()) {
          acc.users.insert(std::string(ev.Get(Field::kUser)));
        }
        break;
      }
      case Kind::kPostscreenListed:
      case Kind::kPostscreenViolation:
      case Kind::kPostscreenDnsbl: {
        if (DomainFilter()) break;
        std::string name =
            kind == Kind::kPostscreenDnsbl ? "DNSBL" : std::string(ev.Get(Field::kDetail));
        auto& acc = scan->ps_events[name];
        ++acc.first;
        acc.second.insert(std::string(ev.Get(Field::kClientIp)));
        break;
      }
      case Kind::kDnsblListed: {
        if (DomainFilter()) break;
        auto& acc = scan->dnsbl_sites[std::string(ev.Get(Field::kDetail))];
        ++acc.first;
        acc.second.insert(std::string(ev.Get(Field::kClientIp)));
        break;
      }
      case Kind::kDelivery:
        // Counted when merged: the domain filter needs the message's sender.
        scan->deferrals.push_back(
            {host_id, ts, std::string(queue_id), std::string(ev.Get(Field::kTo)),
             std::string(ev.Get(Field::kDsn)), std::string(ev.Get(Field::kReply))});
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status ReportBuilder::MergeScan(EventScan* scan) {
  // Line totals, per host and per bucket.
  for (const auto& [host_id, h] : scan->hosts) {
    auto hi = host_index_.find(host_id);
    HostReport* host = hi == host_index_.end() ? nullptr : &report_.hosts[hi->second];
    for (ReportCounts* c : {&report_.counts, host ? &host->counts : nullptr}) {
      if (c == nullptr) continue;
      c->rejected += h.rejected;
      c->sasl_failures += h.sasl_failures;
      c->login_failures += h.login_failures;
      c->reject_warnings += h.reject_warnings;
      c->warnings += h.warnings;
      c->fatals += h.fatals;
      c->panics += h.panics;
    }
    for (size_t b = 0; b < h.rejected_by_bucket.size(); ++b) {
      for (std::vector<TrafficBucket>* t : {&report_.traffic, host ? &host->traffic : nullptr}) {
        if (t == nullptr) continue;
        (*t)[b].rejected += h.rejected_by_bucket[b];
        (*t)[b].sasl_failures += h.sasl_by_bucket[b];
      }
    }
  }
  for (const auto& [key, n] : scan->refusals) {
    report_.lines.refusals.push_back(LineCounts::Refusal{key.first, key.second, n});
  }
  // Receptions: what the instance each client= or pickup line started turned out to be.
  std::vector<LineCounts::Reception> receptions(scan->programs.size());
  for (size_t i = 0; i < scan->programs.size(); ++i) receptions[i].program = scan->programs[i];
  for (const EventScan::Reception& r : scan->receptions) {
    LineCounts::Reception& rec = receptions[r.program];
    int idx = FindLoaded(r.host_id, r.queue_id, r.ts);
    if (DomainFilter() && (idx < 0 || !msgs_[idx].in_scope)) continue;
    int in = idx < 0 ? 0 : msgs_[idx].in_kind;
    if (in & kLinkReinject) {
      ++rec.from_content_filters;
    } else if (in & kLinkRelay) {
      ++rec.from_our_hosts;
    } else {
      ++rec.entry;
    }
  }
  std::sort(receptions.begin(), receptions.end(),
            [](const auto& a, const auto& b) { return a.program < b.program; });
  report_.lines.receptions = std::move(receptions);
  // Deferrals: their instances (loading those that entered before the window) and reasons.
  ReasonMap reasons;
  std::unordered_set<std::string> queue_ids;
  for (const EventScan::Deferral& d : scan->deferrals) {
    int idx = FindLoaded(d.host_id, d.queue_id, d.ts);
    if (idx < 0) {
      MAILLENS_ASSIGN_OR_RETURN(idx, LoadExtra(d.host_id, d.queue_id, d.ts));
    }
    if (DomainFilter() && !InDomains(d.recipient) &&
        !(idx >= 0 && msgs_[idx].has_sender && InDomains(msgs_[idx].sender))) {
      continue;
    }
    ++report_.lines.deferral_lines;
    queue_ids.insert(d.queue_id);
    auto hi = host_index_.find(d.host_id);
    HostReport* host = hi == host_index_.end() ? nullptr : &report_.hosts[hi->second];
    int bucket = Bucket(d.ts);
    for (auto* c : {&report_.counts, host ? &host->counts : nullptr}) {
      if (c != nullptr) ++c->deferrals;
    }
    for (auto* t : {&report_.traffic, host ? &host->traffic : nullptr}) {
      if (t != nullptr && bucket >= 0) ++(*t)[bucket].deferrals;
    }
    // The message: its trace, or (an instance the catalog does not hold) its host and queue ID.
    int64_t message =
        idx >= 0 ? msgs_[idx].trace_id
                 : -static_cast<int64_t>(Key(d.host_id, d.queue_id) & 0x3fffffffffffffffULL) - 1;
    for (TopAcc* acc : {&deferrals_by_recipient_[LowerKey(d.recipient)],
                        &deferrals_by_domain_[DomainOf(d.recipient)]}) {
      ++acc->deferrals;
      acc->deferred.insert(message);
    }
    std::string who;
    if (idx >= 0) {
      deferred_msgs_.insert(idx);
      who = absl::StrCat(msgs_[idx].id);
    } else {
      deferred_unknown_.insert({d.host_id, d.queue_id});
      who = absl::StrCat(d.host_id, "/", d.queue_id);
    }
    AddReason(&reasons, d.dsn, d.reply, who, d.reply, false);
  }
  report_.lines.deferred_instances =
      static_cast<int64_t>(deferred_msgs_.size() + deferred_unknown_.size());
  report_.lines.deferred_queue_ids = static_cast<int64_t>(queue_ids.size());
  report_.deferral_reasons = FinishReasons(reasons, options_.top);
  report_.reject_reasons = FinishReasons(scan->reject_reasons, options_.top);
  report_.reject_warning_reasons = FinishReasons(scan->reject_warning_reasons, options_.top);

  std::map<std::string, std::pair<int64_t, int64_t>> clients;
  for (const auto& [ip, n] : scan->rejected_clients) clients[ip] = {n, 1};
  report_.rejected_clients = FinishCounts(clients, options_.top);
  // (count, distinct clients) from (count, the clients).
  auto with_clients = [](const auto& map) {
    std::map<std::string, std::pair<int64_t, int64_t>> counts;
    for (const auto& [key, v] : map) {
      counts[key] = {v.first, static_cast<int64_t>(v.second.size())};
    }
    return counts;
  };
  report_.rejected_networks = FinishCounts(with_clients(scan->rejected_networks), options_.top);
  PostscreenSummary& ps = report_.postscreen;
  ps.connections = scan->ps_connections;
  ps.pass_new = scan->ps_pass_new;
  ps.pass_old = scan->ps_pass_old;
  ps.rejected = scan->ps_rejected;
  // Every kind of event is listed: there are a dozen at most.
  ps.events = FinishCounts(with_clients(scan->ps_events), SIZE_MAX);
  ps.dnsbl_sites = FinishCounts(with_clients(scan->dnsbl_sites), options_.top);

  for (const auto& [key, acc] : scan->problems) {
    const auto& [rank, program, text] = key;
    report_.problems.push_back(Problem{rank == 0   ? "panic"
                                       : rank == 1 ? "fatal"
                                                   : "warning",
                                       program, text, acc.count, acc.example});
  }
  // Most severe first, then the most frequent.
  std::stable_sort(
      report_.problems.begin(), report_.problems.end(), [](const Problem& a, const Problem& b) {
        if (a.severity != b.severity) {
          auto rank = [](const std::string& s) { return s == "panic" ? 0 : s == "fatal" ? 1 : 2; };
          return rank(a.severity) < rank(b.severity);
        }
        return a.count > b.count;
      });
  return absl::OkStatus();
}

int64_t ReportBuilder::UnitSize(const Unit& u) const {
  if (msgs_[u.entry].size >= 0) return msgs_[u.entry].size;
  for (int i : u.msgs) {
    if (msgs_[i].size >= 0) return msgs_[i].size;
  }
  return 0;
}

const Msg& ReportBuilder::SenderMsg(const Unit& u) const {
  if (msgs_[u.entry].has_sender) return msgs_[u.entry];
  for (int i : u.msgs) {
    if (msgs_[i].has_sender) return msgs_[i];
  }
  return msgs_[u.entry];
}

void ReportBuilder::Aggregate() {
  const bool per_host = host_filter_ != 0;
  std::unordered_map<std::string, TopAcc> senders, sender_domains, recipients, recipient_domains;
  ReasonMap bounce_reasons;
  std::map<std::string, int64_t> outcomes;
  std::vector<double> end_to_end;
  std::map<std::pair<int64_t, RowClass>, std::vector<double>> hops;

  // Message-level numbers of `units`; `detail` adds what only the report's own scope shows.
  auto tally = [&](const std::vector<Unit>& units, bool host_scope, ReportCounts* counts,
                   std::vector<TrafficBucket>* traffic, bool detail) {
    for (const Unit& u : units) {
      const Msg& entry = msgs_[u.entry];
      bool delivered = false, bounced = false, expired = false, had_deferral = false;
      bool pending_deferral = false, discarded = false;
      uint8_t disposition = 0;
      int64_t first_delivery = INT64_MAX, first_bounce = INT64_MAX;
      const Msg& from = SenderMsg(u);
      for (int mi : u.msgs) {
        const Msg& m = msgs_[mi];
        disposition |= m.disposition;
        if (deferred_msgs_.count(mi)) had_deferral = true;
        for (int ri = m.row_begin; ri < m.row_end; ++ri) {
          const Row& r = rows_[ri];
          if (r.status == Status::kRejected) continue;  // counted as a refusal line
          if (!RowInDomains(from, r)) continue;
          bool deferred_now = r.status == Status::kDeferred;
          if (deferred_now || r.status == Status::kExpired || r.attempts > 1) had_deferral = true;
          if (deferred_now && !m.ended) pending_deferral = true;
          if (r.status == Status::kExpired) expired = true;
          if (r.cf_discarded) discarded = true;
          if (r.status == Status::kBounced) {
            bounced = true;
            first_bounce = std::min(first_bounce, r.time_us);
            ++counts->recipients_bounced;
          }
          bool leaves = Leaves(r, host_scope);
          bool sent = r.status == Status::kSent && leaves;
          if (sent) {
            delivered = true;
            first_delivery = std::min(first_delivery, r.time_us);
            ++counts->recipients_delivered;
            counts->bytes_delivered += std::max<int64_t>(m.size, 0);
          }
          if (!detail) continue;
          // Deferral lines are added from the event pass (MergeScan); here the outcomes.
          if (sent || r.status == Status::kBounced || r.status == Status::kExpired) {
            double delay =
                std::max<double>(0, static_cast<double>(r.time_us - entry.first_us) / 1e6);
            for (auto* acc :
                 {&recipients[LowerKey(r.recipient)], &recipient_domains[DomainOf(r.recipient)]}) {
              if (sent) {
                ++acc->messages;
                acc->bytes += std::max<int64_t>(m.size, 0);
                ++acc->delay_count;
                acc->delay_sum += delay;
                acc->delay_max = std::max(acc->delay_max, delay);
              } else if (r.status == Status::kBounced) {
                ++acc->bounced;
              } else {
                ++acc->expired;
              }
            }
          }
          if (r.status == Status::kBounced) {
            AddReason(&bounce_reasons, r.dsn, r.reply, absl::StrCat(u.entry), r.reply, false);
          }
          if (r.status == Status::kSent) {
            if (r.delay >= 0) hops[{m.host_id, r.cls}].push_back(r.delay);
            if (leaves && !u.notice) {
              end_to_end.push_back(
                  std::max<double>(0, static_cast<double>(r.time_us - entry.first_us) / 1e6));
            }
          }
        }
      }
      if (disposition & kExpired) expired = true;
      if (disposition & kDiscarded) discarded = true;
      if (u.notice) {
        ++counts->notices;
        continue;
      }
      int64_t size = UnitSize(u);
      if (entry.Received()) {
        ++counts->received;
        counts->bytes_received += size;
        if (host_scope && (entry.in_kind & kLinkRelay)) ++counts->received_from_our_hosts;
        int b = Bucket(entry.first_us);
        if (b >= 0) ++(*traffic)[b].received;
      } else {
        ++counts->entered_otherwise;
      }
      if (delivered) {
        ++counts->delivered;
        int b = Bucket(first_delivery);
        if (b >= 0) ++(*traffic)[b].delivered;
      }
      if (had_deferral) ++counts->deferred;
      if (bounced) {
        ++counts->bounced;
        int b = Bucket(first_bounce);
        if (b >= 0) ++(*traffic)[b].bounced;
      }
      if (expired) ++counts->expired;
      if (disposition & kHeld) ++counts->held;
      if (discarded) ++counts->discarded;
      if (!detail) continue;
      // Senders are of mail that was sent: a message refused on entry (a cleanup header/body
      // check or a milter) is counted as rejected, not under its sender; and one whose sender
      // no line names (the client went away first) is of no sender -- "<>" is the null
      // sender of bounces, a fact a line states.
      if (!(disposition & kRejected) && from.has_sender) {
        std::string sender = from.sender.empty() ? "<>" : LowerKey(from.sender);
        for (auto* acc : {&senders[sender], &sender_domains[DomainOf(from.sender)]}) {
          ++acc->messages;
          acc->bytes += size;
        }
      }
      const char* outcome;
      if (disposition & kRejected) {
        outcome = "rejected";
      } else if (discarded && !delivered) {
        outcome = "discarded";
      } else if (expired) {
        outcome = "expired";
      } else if (bounced) {
        outcome = delivered ? "partly bounced" : "bounced";
      } else if (pending_deferral) {
        outcome = "deferred";
      } else if (delivered) {
        outcome = "delivered";
      } else if (disposition & kDeleted) {
        // The administrator removed it from the queue: no longer waiting, so not "in queue"
        // (a held message deleted is deleted).
        outcome = "deleted";
      } else if (disposition & kHeld) {
        outcome = "held";
      } else if (u.msgs.size() == 1 && entry.size < 0 && entry.row_begin == entry.row_end) {
        // Only the client= line: the client went away before the message was complete.
        outcome = "abandoned";
      } else {
        outcome = "in queue";
      }
      ++outcomes[outcome];
    }
  };

  tally(units_, per_host, &report_.counts, &report_.traffic, true);
  for (size_t h = 0; h < report_.hosts.size(); ++h) {
    tally(host_units_[h], true, &report_.hosts[h].counts, &report_.hosts[h].traffic, false);
  }

  // Line-level reconciliation: every sent row of the scope's units, by where it went.
  for (const Unit& u : units_) {
    for (int mi : u.msgs) {
      for (int ri = msgs_[mi].row_begin; ri < msgs_[mi].row_end; ++ri) {
        const Row& r = rows_[ri];
        if (r.status == Status::kBounced) ++report_.lines.bounced_recipients;
        if (r.status != Status::kSent) continue;
        switch (r.cls) {
          case RowClass::kFinal:
            ++report_.lines.final_deliveries;
            if (u.notice) ++report_.lines.final_notice_deliveries;
            break;
          case RowClass::kContentFilter:
            ++report_.lines.content_filter_hops;
            break;
          case RowClass::kOurRelay:
            ++report_.lines.our_relay_hops;
            break;
          case RowClass::kForwarded:
            ++report_.lines.forwarded;
            break;
        }
      }
    }
  }

  // Deferral lines, whether or not their message entered in the window.
  for (auto [lines, out] : {std::make_pair(&deferrals_by_recipient_, &recipients),
                            std::make_pair(&deferrals_by_domain_, &recipient_domains)}) {
    for (const auto& [key, acc] : *lines) {
      TopAcc& to = (*out)[key];
      to.deferrals += acc.deferrals;
      to.deferred.insert(acc.deferred.begin(), acc.deferred.end());
    }
  }
  const size_t top = options_.top;
  report_.senders = FinishTop(senders, top, false);
  report_.sender_domains = FinishTop(sender_domains, top, false);
  // Addresses: the top only (a day of bounces to unknown users has thousands of them); every
  // failing domain is listed above.
  report_.recipients = FinishTop(recipients, top, false);
  report_.recipient_domains = FinishTop(recipient_domains, top, true);
  report_.bounce_reasons = FinishReasons(bounce_reasons, top);
  for (const char* name : {"delivered", "partly bounced", "bounced", "expired", "deferred",
                           "rejected", "discarded", "held", "deleted", "in queue", "abandoned"}) {
    auto it = outcomes.find(name);
    if (it != outcomes.end() && it->second > 0) report_.outcomes.emplace_back(name, it->second);
  }
  // Per host, "end-to-end" is the time through that host: its entry to the recipient leaving.
  report_.latency.push_back(MakeLatency(per_host ? report_.host : "",
                                        per_host ? "through the host" : "end-to-end",
                                        std::move(end_to_end)));
  for (auto& [key, values] : hops) {
    report_.latency.push_back(MakeLatency(
        host_names_[key.first], std::string(RowClassName(key.second)), std::move(values)));
  }
}

void ReportBuilder::FindStuck() {
  std::vector<StuckMessage> stuck;
  for (int idx : deferred_msgs_) {
    const Msg& m = msgs_[idx];
    if (m.ended) continue;
    StuckMessage s;
    for (int ri = m.row_begin; ri < m.row_end; ++ri) {
      const Row& r = rows_[ri];
      if (r.status != Status::kDeferred || !RowInDomains(m, r)) continue;
      s.recipients.push_back(r.recipient);
      if (r.time_us >= s.last_attempt_us) {
        s.last_attempt_us = r.time_us;
        s.dsn = r.dsn;
        s.reply = r.reply;
      }
      s.attempts = std::max(s.attempts, r.attempts);
    }
    if (s.recipients.empty()) continue;
    s.host = host_names_[m.host_id];
    s.queue_id = m.queue_id;
    s.sender = m.has_sender ? (m.sender.empty() ? "<>" : m.sender) : "";
    s.first_us = m.first_us;
    report_.stuck_recipients += static_cast<int64_t>(s.recipients.size());
    stuck.push_back(std::move(s));
  }
  report_.stuck_messages = static_cast<int64_t>(stuck.size());
  std::sort(stuck.begin(), stuck.end(), [](const StuckMessage& a, const StuckMessage& b) {
    return a.first_us != b.first_us ? a.first_us < b.first_us : a.queue_id < b.queue_id;
  });
  if (stuck.size() > options_.top) stuck.resize(options_.top);
  report_.stuck = std::move(stuck);
}

std::vector<SaslFailureSource> ReportBuilder::FailureSources(
    const std::map<std::string, EventScan::SaslAcc>& by_client, int64_t* distinct) const {
  std::vector<SaslFailureSource> sources;
  for (const auto& [ip, acc] : by_client) {
    SaslFailureSource s;
    s.client_ip = ip;
    s.client_host = acc.host;
    s.failures = acc.failures;
    s.distinct_users = static_cast<int64_t>(acc.users.size());
    for (const std::string& u : acc.users) {
      if (s.users.size() >= 5) break;
      s.users.push_back(u);
    }
    s.first_us = acc.first_us;
    s.last_us = acc.last_us;
    sources.push_back(std::move(s));
  }
  std::sort(sources.begin(), sources.end(),
            [](const SaslFailureSource& a, const SaslFailureSource& b) {
              if (a.failures != b.failures) return a.failures > b.failures;
              return a.client_ip < b.client_ip;
            });
  *distinct = static_cast<int64_t>(sources.size());
  if (sources.size() > options_.top) sources.resize(options_.top);
  return sources;
}

absl::Status ReportBuilder::SaslUsers(const EventScan& scan) {
  struct Acc {
    int64_t messages = 0;
    int64_t recipients = 0;
    std::set<std::string> domains;
  };
  std::map<std::string, Acc> now;
  for (const Unit& u : units_) {
    if (u.notice) continue;
    const Msg& entry = msgs_[u.entry];
    if (entry.sasl_username.empty()) continue;
    Acc& acc = now[entry.sasl_username];
    ++acc.messages;
    std::set<std::string> rcpts;
    for (int mi : u.msgs) {
      for (int ri = msgs_[mi].row_begin; ri < msgs_[mi].row_end; ++ri) {
        rcpts.insert(LowerKey(rows_[ri].recipient));
      }
    }
    acc.recipients += static_cast<int64_t>(rcpts.size());
    for (const std::string& r : rcpts) acc.domains.insert(DomainOf(r));
  }
  // History: the baseline period before the window, as far back as the store goes.
  int64_t window = report_.until_us - report_.since_us;
  int64_t base_until = report_.since_us;
  int64_t base_since = std::max(base_until - options_.baseline_us, report_.data_first_us);
  int64_t base_len = base_until - base_since;
  std::map<std::string, Acc> history;
  // Less than an hour of history says nothing about anybody's usual volume.
  report_.sasl_baseline = report_.data_first_us != 0 && base_len >= kHourUs && window > 0;
  if (report_.sasl_baseline) {
    MAILLENS_ASSIGN_OR_RETURN(store::Statement select, catalog_->Prepare(kSelectSaslHistory));
    select.Bind(1, base_since).Bind(2, base_until);
    std::set<int64_t> seen;
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == store::Statement::StepResult::kDone) break;
      if (!HostInScope(select.ColumnInt(1))) continue;
      Acc& acc = history[Text(select, 2)];
      if (seen.insert(select.ColumnInt(0)).second) ++acc.messages;
      if (!select.ColumnIsNull(3)) acc.domains.insert(DomainOf(select.ColumnText(3)));
    }
  }
  std::vector<SaslUserActivity> users;
  for (const auto& [name, acc] : now) {
    SaslUserActivity a;
    a.username = name;
    a.messages = acc.messages;
    a.recipients = acc.recipients;
    a.recipient_domains = static_cast<int64_t>(acc.domains.size());
    if (report_.sasl_baseline) {
      auto it = history.find(name);
      if (it != history.end()) {
        a.baseline_messages = static_cast<double>(it->second.messages) *
                              static_cast<double>(window) / static_cast<double>(base_len);
        a.baseline_recipient_domains = static_cast<int64_t>(it->second.domains.size());
      }
      std::vector<std::string> why;
      if (a.messages >= kJumpMinMessages &&
          static_cast<double>(a.messages) >= kJumpMessageRatio * a.baseline_messages) {
        why.push_back(absl::StrCat(a.messages, " messages, usually about ",
                                   static_cast<int64_t>(std::lround(a.baseline_messages)),
                                   " in a window this long"));
      }
      if (a.recipient_domains >= kJumpMinDomains &&
          static_cast<double>(a.recipient_domains) >=
              kJumpDomainRatio * static_cast<double>(a.baseline_recipient_domains)) {
        why.push_back(absl::StrCat(a.recipient_domains, " recipient domains, ",
                                   a.baseline_recipient_domains, " in the whole history"));
      }
      a.jumped = !why.empty();
      a.why = absl::StrJoin(why, "; ");
    }
    users.push_back(std::move(a));
  }
  std::sort(users.begin(), users.end(), [](const SaslUserActivity& a, const SaslUserActivity& b) {
    if (a.jumped != b.jumped) return a.jumped;
    if (a.messages != b.messages) return a.messages > b.messages;
    return a.username < b.username;
  });
  if (users.size() > options_.top) users.resize(options_.top);
  report_.sasl_users = std::move(users);

  report_.sasl_failures = FailureSources(scan.sasl_sources, &report_.sasl_failure_sources);
  report_.login_failures = FailureSources(scan.login_sources, &report_.login_failure_sources);
  return absl::OkStatus();
}

absl::StatusOr<Report> ReportBuilder::Build() {
  if (options_.since_us >= options_.until_us) {
    return absl::InvalidArgumentError("the window is empty: --since is not before --until");
  }
  for (const std::string& d : options_.domains) {
    if (!d.empty()) domains_.insert(LowerKey(d));
  }
  report_.domains.assign(domains_.begin(), domains_.end());
  MAILLENS_RETURN_IF_ERROR(OpenCatalog());
  MAILLENS_RETURN_IF_ERROR(FindDataRange());
  SetupBuckets();
  if (report_.data_last_us == 0) {
    report_.notices.push_back("the store holds no lines yet");
  } else {
    // Day granularity, like the partitions: a window that reaches into a day the store does
    // not hold is outside its retention (or ahead of its data), which the reader must know; a
    // window starting at midnight before the day's first line is not.
    if (options_.since_us != INT64_MIN && store::DayOf(options_.since_us) < days_.front()) {
      report_.notices.push_back(absl::StrCat("the window starts before the oldest stored line (",
                                             FormatUtc(report_.data_first_us), ")"));
    }
    if (options_.until_us != INT64_MAX && store::DayOf(options_.until_us - 1) > days_.back()) {
      report_.notices.push_back(absl::StrCat("the window ends after the newest stored line (",
                                             FormatUtc(report_.data_last_us), ")"));
    }
    if (options_.until_us <= report_.data_first_us || options_.since_us > report_.data_last_us) {
      report_.notices.push_back("no stored line falls in the window");
    }
  }
  // The pass over the events and the catalog reads are independent until the lines are
  // mapped to instances: run them side by side (separate connections, separate state).
  EventScan scan;
  absl::Status scan_status;
  std::thread scanner([this, &scan, &scan_status] { scan_status = ScanEvents(&scan); });
  absl::Status load_status = LoadUnits();
  if (load_status.ok()) {
    Classify();
    MakeUnits();
    FilterUnits();
  }
  scanner.join();
  MAILLENS_RETURN_IF_ERROR(load_status);
  MAILLENS_RETURN_IF_ERROR(scan_status);
  MAILLENS_RETURN_IF_ERROR(MergeScan(&scan));
  Aggregate();
  FindStuck();
  MAILLENS_RETURN_IF_ERROR(SaslUsers(scan));
  report_.gaps = RecordedGaps(dir_, report_.host, report_.since_us, report_.until_us);
  return std::move(report_);
}

}  // namespace

std::vector<Gap> RecordedGaps(const std::string& data_dir, const std::string& host,
                              int64_t since_us, int64_t until_us) {
  // Spans of files agents lost (their time window estimated from the stored lines around
  // them; when unknown, the time the agent noticed) and periods an agent was offline (open
  // ones until now), that overlap the window. A catalog older than the site tables has none.
  static constexpr char kGaps[] =
      "SELECT h.name, coalesce(g.window_from_us, g.noticed_us), "
      "coalesce(g.window_to_us, g.noticed_us), g.path, g.from_offset, g.to_offset, g.reason, "
      "g.detail FROM gaps g JOIN hosts h ON h.id = g.host_id "
      "WHERE coalesce(g.window_to_us, g.noticed_us) >= ? "
      "AND coalesce(g.window_from_us, g.noticed_us) < ? AND (? = '' OR h.name = ?) "
      "ORDER BY 2";
  static constexpr char kOffline[] =
      "SELECT h.name, o.from_us, coalesce(o.to_us, ?) FROM offline_periods o "
      "JOIN hosts h ON h.id = o.host_id WHERE coalesce(o.to_us, ?) > ? AND o.from_us < ? "
      "AND (? = '' OR h.name = ?) ORDER BY 2";
  std::vector<Gap> out;
  auto db = store::Database::Open(absl::StrCat(data_dir, "/catalog.db"),
                                  store::Database::Mode::kReadOnly);
  if (!db.ok()) return out;
  auto gaps = (*db)->Prepare(kGaps);
  if (gaps.ok()) {
    gaps->Bind(1, since_us).Bind(2, until_us).BindText(3, host).BindText(4, host);
    while (true) {
      auto step = gaps->Step();
      if (!step.ok() || *step == store::Statement::StepResult::kDone) break;
      Gap g;
      g.host = std::string(gaps->ColumnText(0));
      g.from_us = gaps->ColumnInt(1);
      g.until_us = gaps->ColumnInt(2);
      std::string to = gaps->ColumnIsNull(5) ? std::string("?") : absl::StrCat(gaps->ColumnInt(5));
      g.what =
          absl::StrCat(core::ToAbsl(gaps->ColumnText(6)), " ", core::ToAbsl(gaps->ColumnText(3)),
                       " bytes ", gaps->ColumnInt(4), "-", to);
      std::string_view detail = gaps->ColumnText(7);
      if (!detail.empty()) absl::StrAppend(&g.what, " (", core::ToAbsl(detail), ")");
      out.push_back(std::move(g));
    }
  }
  int64_t now_us = absl::ToUnixMicros(absl::Now());
  auto offline = (*db)->Prepare(kOffline);
  if (offline.ok()) {
    offline->Bind(1, now_us).Bind(2, now_us).Bind(3, since_us).Bind(4, until_us);
    offline->BindText(5, host).BindText(6, host);
    while (true) {
      auto step = offline->Step();
      if (!step.ok() || *step == store::Statement::StepResult::kDone) break;
      out.push_back(Gap{std::string(offline->ColumnText(0)), offline->ColumnInt(1),
                        offline->ColumnInt(2),
                        "agent offline (what it logged meanwhile arrives when it reconnects)"});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Gap& a, const Gap& b) { return a.from_us < b.from_us; });
  return out;
}

std::string NormalizeReason(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '<') {
      size_t close = text.find('>', i + 1);
      if (close != std::string_view::npos && close - i < 256 &&
          text.substr(i, close - i).find(' ') == std::string_view::npos) {
        out.append("<\xE2\x80\xA6>");
        i = close + 1;
        continue;
      }
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
      ++i;
      continue;
    }
    // A word: up to white space. "host[address]:port" and "[address]" become "…", as do bare
    // addresses and IDs; the punctuation around them stays.
    size_t end = i;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t') ++end;
    std::string_view word = text.substr(i, end - i);
    size_t lead = 0;
    while (lead < word.size() && (word[lead] == '(' || word[lead] == '"')) ++lead;
    size_t trail = word.size();
    while (trail > lead &&
           std::string_view("),.;:\"").find(word[trail - 1]) != std::string_view::npos) {
      --trail;
    }
    std::string_view core_word = word.substr(lead, trail - lead);
    size_t open = core_word.find('[');
    size_t close = core_word.find(']');
    if (open != std::string_view::npos && close != std::string_view::npos && close > open) {
      size_t after = close + 1;
      if (after < core_word.size() && core_word[after] == ':') {
        ++after;
        while (after < core_word.size() && core::IsDigit(core_word[after])) ++after;
      }
      absl::StrAppend(&out, core::ToAbsl(word.substr(0, lead)), "\xE2\x80\xA6",
                      core::ToAbsl(core_word.substr(after)), core::ToAbsl(word.substr(trail)));
    } else if (size_t at = core_word.find('@'); at != std::string_view::npos && at > 0) {
      // A bare address ("sasl_username=carol@example.test"): the key before '=' stays.
      size_t eq = core_word.find('=');
      size_t keep = eq != std::string_view::npos && eq < at ? eq + 1 : 0;
      absl::StrAppend(&out, core::ToAbsl(word.substr(0, lead + keep)), "\xE2\x80\xA6",
                      core::ToAbsl(word.substr(trail)));
    } else if (IsIpLike(core_word) || IsIdLike(core_word)) {
      absl::StrAppend(&out, core::ToAbsl(word.substr(0, lead)), "\xE2\x80\xA6",
                      core::ToAbsl(word.substr(trail)));
    } else {
      out.append(word.data(), word.size());
    }
    i = end;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  constexpr size_t kMax = 160;
  if (out.size() > kMax) {
    size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out.append("\xE2\x80\xA6");
  }
  return out;
}

absl::StatusOr<Report> BuildReport(const std::string& data_dir, const ReportOptions& options) {
  ReportBuilder builder(data_dir, options);
  return builder.Build();
}

}  // namespace maillens::report
