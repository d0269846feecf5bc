// Field-level conformance against expectations written outside this project.
//
// Every case of ../shared/corpus/cases.jsonl (541 lines: grok patterns, fail2ban, crowdsec,
// lightmeter, msimerson, maillogger, wazuh) is turned into a full maillog line, parsed with
// ParseLine, and each expectation key that names something our Event carries is compared with
// what the parser read. The mapping is one table per source (source key -> what of our Event it
// is, how to extract it, how the source writes it); keys that name nothing of ours (crowdsec
// metadata, fail2ban "match", grok internals) are listed as ignored, never compared silently.
//
// The test prints, per source, how many cases mapped, passed, failed and were unmapped, then
// every failing check (file, line, key, expected, got, kind). It asserts that no mapped case
// fails, except the checks in kJudged: places where we judge the source wrong, or where maillens
// deliberately reads the line differently, each with its reason.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "core/event.h"
#include "core/parser.h"
#include "core/time_context.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace maillens::core {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// Debian's Abseil keeps its own string_view, so the few string helpers used here are local.
bool HasPrefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool HasSuffix(std::string_view s, std::string_view x) {
  return s.size() >= x.size() && s.substr(s.size() - x.size()) == x;
}
bool Contains(std::string_view s, std::string_view x) {
  return s.find(x) != std::string_view::npos;
}
bool EatPrefix(std::string_view* s, std::string_view p) {
  if (!HasPrefix(*s, p)) return false;
  s->remove_prefix(p.size());
  return true;
}
bool EatSuffix(std::string_view* s, std::string_view x) {
  if (!HasSuffix(*s, x)) return false;
  s->remove_suffix(x.size());
  return true;
}
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
template <typename... Args>
std::string Format(const char* format, Args... args) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, args...);
  return buffer;
}
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}
// Splits at `sep`; at most `max_parts` parts (the last keeps the rest), 0 = no limit.
std::vector<std::string_view> Split(std::string_view s, char sep, bool skip_empty,
                                    size_t max_parts = 0) {
  std::vector<std::string_view> out;
  while (true) {
    size_t at = s.find(sep);
    if (at == std::string_view::npos || (max_parts != 0 && out.size() + 1 == max_parts)) {
      if (!(skip_empty && s.empty())) out.push_back(s);
      return out;
    }
    if (!(skip_empty && at == 0)) out.push_back(s.substr(0, at));
    s.remove_prefix(at + 1);
  }
}

// What we read for a key; nullopt when the Event does not carry it at all.
using Got = std::optional<std::string>;
using Extract = std::function<Got(const Event&)>;
// The source's spelling of a value turned into ours; nullopt when this value names nothing of
// ours (the key is then unmapped for this case).
using Normalize = std::optional<std::string> (*)(std::string_view);

enum class Compare {
  kEqual,
  kSuffix,      // ours ends with the expected text (the source keeps only the tail)
  kPrefix,      // ours starts with the expected text (the source cut a tail off)
  kTime,        // expected is a pattern from TimePattern ('?' for an unknown year)
  kHeaderRead,  // "read": header read (typed or not); "typed"/"malformed": exactly that
};

struct Mapping {
  std::string_view ours;  // what of our Event the key is, for the report
  Extract extract;
  Compare compare = Compare::kEqual;
  Normalize normalize = nullptr;
};

struct KeyRow {
  std::string_view key;
  Mapping mapping;
};

// ---------------------------------------------------------------------------------------------
// Extractors: what of our Event a source key names.

Got FieldOf(const Event& ev, Field f) {
  if (!ev.Has(f)) return std::nullopt;
  return std::string(ev.Get(f));
}

template <Field F>
Got Fld(const Event& ev) {
  return FieldOf(ev, F);
}

Got OrEmpty(Got g) { return g.has_value() ? g : Got(""); }

Got QueueId(const Event& ev) {
  if (ev.queue_id.empty()) return std::nullopt;
  return std::string(ev.queue_id);
}
Got QueuedAs(const Event& ev) {
  if (ev.queued_as.empty()) return std::nullopt;
  return std::string(ev.queued_as);
}
Got Host(const Event& ev) { return std::string(ev.host); }
Got Program(const Event& ev) { return std::string(ev.program); }
Got Message(const Event& ev) { return std::string(ev.message); }
Got Pid(const Event& ev) {
  if (ev.pid < 0) return std::nullopt;
  return std::to_string(ev.pid);
}
// Lightmeter writes an absent pid as 0.
Got PidOrZero(const Event& ev) { return std::to_string(ev.pid < 0 ? 0 : ev.pid); }

// Lightmeter's err: whether the header was read, and whether the payload was typed.
Got HeaderRead(const Event& ev) {
  if (ev.kind == Kind::kMalformed) return "malformed";
  if (ev.kind == Kind::kUnparsed) return "read";
  return "typed";
}

std::optional<absl::CivilSecond> Civil(const Event& ev) {
  if (ev.ts_form == TimestampForm::kNone) return std::nullopt;
  return absl::ToCivilSecond(absl::FromUnixMicros(ev.time_us), absl::UTCTimeZone());
}
Got Time(const Event& ev) {
  if (ev.ts_form == TimestampForm::kNone) return std::nullopt;
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6S", absl::FromUnixMicros(ev.time_us),
                          absl::UTCTimeZone());
}
template <int Part>  // 0 year, 1 month, 2 day, 3 hour, 4 minute, 5 second
Got TimePart(const Event& ev) {
  std::optional<absl::CivilSecond> c = Civil(ev);
  if (!c) return std::nullopt;
  const int64_t parts[] = {c->year(), c->month(), c->day(), c->hour(), c->minute(), c->second()};
  return std::to_string(parts[Part]);
}

// One of the four parts of delays=a/b/c/d, as text.
template <int Part>
Got DelaysPart(const Event& ev) {
  Got d = FieldOf(ev, Field::kDelays);
  if (!d) return std::nullopt;
  std::vector<std::string_view> parts = Split(*d, '/', false);
  if (parts.size() != 4) return std::nullopt;
  return std::string(parts[Part]);
}

// Address split at the last '@', surrounding quotes of the local part dropped (Lightmeter).
std::pair<std::string, std::string> SplitAddress(std::string_view a) {
  size_t at = a.rfind('@');
  std::string_view local = at == std::string_view::npos ? a : a.substr(0, at);
  std::string_view domain = at == std::string_view::npos ? "" : a.substr(at + 1);
  if (local.size() >= 2 && local.front() == '"' && local.back() == '"') {
    local = local.substr(1, local.size() - 2);
  }
  return {std::string(local), std::string(domain)};
}
template <Field F, bool kLocal>
Got AddressPart(const Event& ev) {
  Got a = FieldOf(ev, F);
  if (!a) return "";  // Lightmeter: "" when the address is absent
  auto [local, domain] = SplitAddress(*a);
  return kLocal ? local : domain;
}

// The text between '[' and ']' of relay=host[x]:port (an IP, or a socket path/service).
Got RelayBracket(const Event& ev) {
  Got r = FieldOf(ev, Field::kRelay);
  if (!r) return std::nullopt;
  size_t open = r->find('['), close = r->rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return std::nullopt;
  }
  return r->substr(open + 1, close - open - 1);
}
// Lightmeter's RelayName: the host; "" for relay=none; the word for relay=local|virtual|dovecot.
Got RelayName(const Event& ev) {
  if (ev.Has(Field::kRelayHost)) return std::string(ev.Get(Field::kRelayHost));
  Got r = FieldOf(ev, Field::kRelay);
  if (!r || *r == "none") return "";
  return r;
}
Got RelayIpOrEmpty(const Event& ev) { return OrEmpty(FieldOf(ev, Field::kRelayIp)); }
Got RelayPortOrZero(const Event& ev) {
  Got p = FieldOf(ev, Field::kRelayPort);
  return p ? p : Got("0");
}
// msimerson's "host" on smtp notes: host[ip]; its "mx": host[ip]:port.
Got RelayHostIp(const Event& ev) {
  if (!ev.Has(Field::kRelayHost) || !ev.Has(Field::kRelayIp)) return std::nullopt;
  return Cat({ev.Get(Field::kRelayHost), "[", ev.Get(Field::kRelayIp), "]"});
}
Got RelayHostIpPort(const Event& ev) {
  Got hi = RelayHostIp(ev);
  if (!hi || !ev.Has(Field::kRelayPort)) return std::nullopt;
  return Cat({*hi, ":", ev.Get(Field::kRelayPort)});
}

// msimerson's status: "sent (250 2.0.0 Ok)", i.e. status and the parenthesised reply.
Got StatusWithReply(const Event& ev) {
  Got s = FieldOf(ev, Field::kStatus);
  if (!s) return std::nullopt;
  if (ev.Has(Field::kReply)) s->append(Cat({" (", ev.Get(Field::kReply), ")"}));
  return s;
}
// Lightmeter's ExtraMessage on deliveries: the reply with its parentheses.
Got ReplyInParens(const Event& ev) {
  Got r = FieldOf(ev, Field::kReply);
  if (!r) return std::nullopt;
  return absl::StrCat("(", *r, ")");
}
// Lightmeter's InternalMTA: the reply came back through a content filter.
Got InternalMta(const Event& ev) {
  return ev.queued_as_form == NextHopForm::kContentFilter ? "true" : "false";
}

// Lightmeter splits the program "postfix-10.20.30.40/smtp" into process "postfix", process IP
// "10.20.30.40" and daemon "smtp" (everything after the first '/').
bool LooksLikeIp(std::string_view s) {
  if (s.empty()) return false;
  bool colon = s.find(':') != std::string_view::npos;
  for (char c : s) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
          (colon && (std::isxdigit(static_cast<unsigned char>(c)) || c == ':')))) {
      return false;
    }
  }
  return true;
}
std::pair<std::string_view, std::string_view> ProcessAndIp(std::string_view program) {
  while (!program.empty() && program.front() == '/') program.remove_prefix(1);
  std::string_view process = program.substr(0, program.find('/'));
  size_t dash = process.rfind('-');
  if (dash != std::string_view::npos && LooksLikeIp(process.substr(dash + 1))) {
    return {process.substr(0, dash), process.substr(dash + 1)};
  }
  return {process, ""};
}
Got Process(const Event& ev) { return std::string(ProcessAndIp(ev.program).first); }
Got ProcessIp(const Event& ev) { return std::string(ProcessAndIp(ev.program).second); }
Got LightmeterDaemon(const Event& ev) {
  std::string_view p = ev.program;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  size_t slash = p.find('/');
  return slash == std::string_view::npos ? "" : std::string(p.substr(slash + 1));
}

// grok's postfix_message_level: the severity prefix, or the header/body check action written
// in its place ("QID: warning: header ...", "QID: info: header ...").
Got MessageLevel(const Event& ev) {
  if (ev.severity != Severity::kInfo) return std::string(SeverityName(ev.severity));
  if (ev.kind == Kind::kCheckAction && ev.Has(Field::kAction)) {
    std::string action(ev.Get(Field::kAction));
    return action == "warn" ? "warning" : action;
  }
  return "info";
}

// grok's postfix_message on leveled lines: the text after the queue ID and the level word
// ("warning: ", and for header/body checks "QID: warning|info: "), which grok cuts before the
// "; from=<...> to=<...>" tail it captures separately (hence a prefix comparison).
Got MessageRest(const Event& ev) {
  std::string_view m = ev.message;
  bool more = true;
  while (more) {
    more = (!ev.queue_id.empty() && EatPrefix(&m, Cat({ev.queue_id, ": "}))) ||
           EatPrefix(&m, "warning: ") || EatPrefix(&m, "info: ") || EatPrefix(&m, "error: ") ||
           EatPrefix(&m, "fatal: ") || EatPrefix(&m, "panic: ");
  }
  return std::string(m);
}

// grok's postfix_smtpd_lostconn_data: "lost connection" and "timeout" are kinds of ours, other
// words ("SSL_accept error", "bare <LF> received") our detail.
Got SmtpdLostConn(const Event& ev) {
  if (ev.kind == Kind::kLostConnection) return "lost connection";
  if (ev.kind == Kind::kTimeout) return "timeout";
  return FieldOf(ev, Field::kDetail);
}
// grok's postfix_smtp_lostconn_data: "lost connection" for "lost connection with X while Y"
// (our detail lost_connection, Y in reason), else the error text (our reason).
Got SmtpLostConn(const Event& ev) {
  if (ev.Get(Field::kDetail) == "lost_connection") return "lost connection";
  return FieldOf(ev, Field::kReason);
}

// postscreen: "PASS OLD" is our kind postscreen_pass with detail OLD; "WHITELISTED" and the
// vetoes are the detail of postscreen_listed.
Got PostscreenAccess(const Event& ev) {
  if (ev.kind == Kind::kPostscreenPass) return Cat({"PASS ", ev.Get(Field::kDetail)});
  return FieldOf(ev, Field::kDetail);
}
// The violation name is our detail, except DNSBL, which is its own kind (detail = rank).
Got PostscreenViolation(const Event& ev) {
  if (ev.kind == Kind::kPostscreenDnsbl) return "DNSBL";
  return FieldOf(ev, Field::kDetail);
}
// postscreen CONNECT ... to [ip]:port keeps the server side in detail.
Got ServerIp(const Event& ev) {
  std::string_view d = ev.Get(Field::kDetail);
  if (!EatPrefix(&d, "[") || d.find(']') == std::string_view::npos) return std::nullopt;
  return std::string(d.substr(0, d.find(']')));
}
Got ServerPort(const Event& ev) {
  std::string_view d = ev.Get(Field::kDetail);
  size_t at = d.find("]:");
  if (at == std::string_view::npos) return std::nullopt;
  return std::string(d.substr(at + 2));
}

// Milter results as grok names them: "reject", "header-redirect" (our stage + action).
Got MilterResult(const Event& ev) {
  Got a = FieldOf(ev, Field::kAction);
  if (!a) return std::nullopt;
  std::string_view action = *a;
  EatPrefix(&action, "milter-");
  std::string_view stage = ev.Get(Field::kStage);
  if (stage == "header" || stage == "body") return Cat({stage, "-", action});
  return std::string(action);
}

// anvil "max connection rate 1/60s": our reason holds "1/60s".
template <int Part>
Got AnvilRatePart(const Event& ev) {
  Got r = FieldOf(ev, Field::kReason);
  if (!r) return std::nullopt;
  std::vector<std::string_view> parts = Split(*r, '/', false);
  if (parts.size() != 2) return std::nullopt;
  return std::string(parts[Part]);
}

// crowdsec's smtp_return_codes: "554 5.7.1".
Got CodeAndDsn(const Event& ev) {
  if (!ev.Has(Field::kCode) || !ev.Has(Field::kDsn)) return std::nullopt;
  return Cat({ev.Get(Field::kCode), " ", ev.Get(Field::kDsn)});
}

// Dovecot login lines keep the service ("imap-login") in detail; its protocol is "imap".
Got DovecotProtocol(const Event& ev) {
  std::string_view d = ev.Get(Field::kDetail);
  if (!EatSuffix(&d, "-login")) return std::nullopt;
  return std::string(d);
}

// Disconnect command counts, canonical: "name=accepted/total" sorted by name.
std::map<std::string, std::pair<std::string, std::string>> CommandCounts(std::string_view text) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (std::string_view token : Split(text, ' ', true)) {
    size_t eq = token.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view value = token.substr(eq + 1);
    size_t slash = value.find('/');
    std::string accepted(value.substr(0, slash));
    std::string total(slash == std::string_view::npos ? value : value.substr(slash + 1));
    out[std::string(token.substr(0, eq))] = {accepted, total};
  }
  return out;
}
std::string CanonicalCounts(const std::map<std::string, std::pair<std::string, std::string>>& m) {
  std::vector<std::string> parts;
  for (const auto& [name, counts] : m) {
    parts.push_back(absl::StrCat(name, "=", counts.first, "/", counts.second));
  }
  return absl::StrJoin(parts, " ");
}
Got CommandsCanonical(const Event& ev) {
  Got c = FieldOf(ev, Field::kCommands);
  if (!c) return std::nullopt;
  return CanonicalCounts(CommandCounts(*c));
}
// grok's postfix_cmd_<name>[_accepted] ("count" is the commands=N total).
Extract CommandCount(std::string name, bool accepted) {
  return [name, accepted](const Event& ev) -> Got {
    Got c = FieldOf(ev, Field::kCommands);
    if (!c) return std::nullopt;
    auto counts = CommandCounts(*c);
    auto it = counts.find(name);
    if (it == counts.end()) return std::nullopt;
    return accepted ? it->second.first : it->second.second;
  };
}

// ---------------------------------------------------------------------------------------------
// Normalisers: the source's way of writing a value, into ours.

std::optional<std::string> StripAngles(std::string_view v) {
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
  return std::string(v);
}

// Go test literals: net.ParseIP("1.2.3.4") / net.ParseIP(`1.2.3.4`) -> 1.2.3.4.
std::optional<std::string> UnwrapParseIp(std::string_view v) {
  if (EatPrefix(&v, "net.ParseIP(") && EatSuffix(&v, ")") && v.size() >= 2) {
    return std::string(v.substr(1, v.size() - 2));
  }
  return std::string(v);
}

// "DeferredStatus" -> "deferred".
std::optional<std::string> LightmeterStatus(std::string_view v) {
  EatSuffix(&v, "Status");
  return Lower(v);
}

int MonthNumber(std::string_view name) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string lower = Lower(name.substr(0, 3));
  for (int i = 0; i < 12; ++i) {
    if (lower == kMonths[i]) return i + 1;
  }
  return 0;
}
// "time.April", "September" or "5" -> "4", "9", "5".
std::optional<std::string> LightmeterMonth(std::string_view v) {
  EatPrefix(&v, "time.");
  if (!v.empty() && std::isdigit(static_cast<unsigned char>(v[0]))) return std::string(v);
  return std::to_string(MonthNumber(v));
}

// Lightmeter's ExtraMessage is its own residue of the line; only on deliveries is it the
// parenthesised reply, which is ours.
std::optional<std::string> ParenthesisedOnly(std::string_view v) {
  if (v.empty() || v.front() != '(') return std::nullopt;
  return std::string(v);
}

// grok's proxy result "accept" is our action "proxy-accept".
std::optional<std::string> ProxyAction(std::string_view v) { return Cat({"proxy-", v}); }

// crowdsec keeps the space after the colon in some captures.
std::optional<std::string> Trimmed(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  return std::string(v);
}

// msimerson keeps qmgr's fixed tail in the status: "expired, returned to sender".
std::optional<std::string> MsimersonStatus(std::string_view v) {
  EatSuffix(&v, ", returned to sender");
  return std::string(v);
}

// Lightmeter's disconnect stats, a Go map literal, into CanonicalCounts form.
std::optional<std::string> LightmeterStats(std::string_view v) {
  std::map<std::string, std::pair<std::string, std::string>> m;
  size_t pos = 0;
  while ((pos = v.find('"', pos)) != std::string_view::npos) {
    size_t end = v.find('"', pos + 1);
    if (end == std::string_view::npos) break;
    std::string name(v.substr(pos + 1, end - pos - 1));
    size_t s = v.find("Success:", end), t = v.find("Total:", end);
    if (s == std::string_view::npos || t == std::string_view::npos) break;
    auto number_at = [&](size_t at) {
      while (at < v.size() && !std::isdigit(static_cast<unsigned char>(v[at]))) ++at;
      size_t from = at;
      while (at < v.size() && std::isdigit(static_cast<unsigned char>(v[at]))) ++at;
      return std::string(v.substr(from, at - from));
    };
    m[name] = {number_at(s + 8), number_at(t + 6)};
    pos = t;
  }
  return CanonicalCounts(m);
}

// Any timestamp spelling of the sources into "YYYY-MM-DDTHH:MM:SS[.ffffff]" UTC, with "????"
// for a year the source did not state. Read: "Jul  5 06:52:11", "2024-08-26T01:33:38.5+00:00",
// "2005-03-7T02:09:33", "-05-11T04:02:36Z" (a [4:] slice), "2013-08-11 03:56:40",
// "20200811033058". nullopt when unreadable (the check then fails visibly).
std::optional<std::string> TimePattern(std::string_view t) {
  auto read_int = [&t](int max_digits, int* out) {
    int n = 0, digits = 0;
    while (!t.empty() && digits < max_digits && std::isdigit(static_cast<unsigned char>(t[0]))) {
      n = n * 10 + (t[0] - '0');
      t.remove_prefix(1);
      ++digits;
    }
    *out = n;
    return digits > 0;
  };
  int year = -1, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (t.size() == 14 && std::all_of(t.begin(), t.end(), [](char c) { return std::isdigit(c); })) {
    read_int(4, &year), read_int(2, &month), read_int(2, &day);
    read_int(2, &hour), read_int(2, &minute), read_int(2, &second);
    return Format("%04d-%02d-%02dT%02d:%02d:%02d", year, month, day, hour, minute, second);
  }
  if (!t.empty() && std::isalpha(static_cast<unsigned char>(t[0]))) {
    month = MonthNumber(t);
    if (month == 0 || t.size() < 4) return std::nullopt;
    t.remove_prefix(3);
    while (EatPrefix(&t, " ")) {
    }
    if (!read_int(2, &day) || !EatPrefix(&t, " ")) return std::nullopt;
  } else {
    if (!EatPrefix(&t, "-")) {
      if (!read_int(4, &year) || !EatPrefix(&t, "-")) return std::nullopt;
    }
    if (!read_int(2, &month) || !EatPrefix(&t, "-") || !read_int(2, &day)) {
      return std::nullopt;
    }
    if (!EatPrefix(&t, "T") && !EatPrefix(&t, " ")) return std::nullopt;
  }
  if (!read_int(2, &hour) || !EatPrefix(&t, ":") || !read_int(2, &minute) || !EatPrefix(&t, ":") ||
      !read_int(2, &second)) {
    return std::nullopt;
  }
  std::string fraction;
  if (EatPrefix(&t, ".")) {
    while (!t.empty() && std::isdigit(static_cast<unsigned char>(t[0]))) {
      fraction.push_back(t[0]);
      t.remove_prefix(1);
    }
    fraction.resize(6, '0');
  }
  int offset_minutes = 0;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    int sign = t[0] == '-' ? -1 : 1, oh = 0, om = 0;
    t.remove_prefix(1);
    if (!read_int(2, &oh)) return std::nullopt;
    EatPrefix(&t, ":");
    read_int(2, &om);
    offset_minutes = sign * (oh * 60 + om);
  } else {
    EatPrefix(&t, "Z");
  }
  if (!t.empty()) return std::nullopt;
  // An unknown year is carried as 2000 (a leap year, so Feb 29 stays valid) and masked below.
  absl::CivilSecond civil(year < 0 ? 2000 : year, month, day, hour, minute, second);
  civil -= offset_minutes * 60;
  std::string out =
      Format("%04d-%02d-%02dT%02d:%02d:%02d", static_cast<int>(civil.year()), civil.month(),
             civil.day(), civil.hour(), civil.minute(), civil.second());
  if (year < 0) out.replace(0, 4, "????");
  if (!fraction.empty()) absl::StrAppend(&out, ".", fraction);
  return out;
}

bool TimeMatches(std::string_view pattern, std::string_view ours) {
  if (pattern.size() > ours.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '?' && pattern[i] != ours[i]) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The mapping tables, one per source.

// Every source's timestamp, compared as UTC; a year the source did not state matches any.
Mapping TimeMapping() { return {"time", Time, Compare::kTime, TimePattern}; }

// whyscream/postfix-grok-patterns: grok capture names; postfix_keyvalue_data is expanded first
// the way the project's logstash kv filter does (prefix "postfix_", trim "<>,").
const std::vector<KeyRow>& GrokTable() {
  static const auto* table = new std::vector<KeyRow>{
      {"postfix_queueid", {"queue_id", QueueId}},
      {"postfix_client_hostname", {"client_host", Fld<Field::kClientHost>}},
      {"postfix_client_ip", {"client_ip", Fld<Field::kClientIp>}},
      {"postfix_client_ip_unknown", {"client_ip", Fld<Field::kClientIp>}},
      {"postfix_client_port", {"client_port", Fld<Field::kClientPort>}},
      {"postfix_relay_hostname", {"relay_host", Fld<Field::kRelayHost>}},
      {"postfix_relay_ip", {"relay_ip", Fld<Field::kRelayIp>}},
      {"postfix_relay_port", {"relay_port", Fld<Field::kRelayPort>}},
      {"postfix_relay_service", {"relay [bracket]", RelayBracket}},
      {"postfix_action", {"action", Fld<Field::kAction>}},
      {"postfix_smtp_stage", {"stage", Fld<Field::kStage>}},
      {"postfix_status_code", {"code", Fld<Field::kCode>}},
      {"postfix_status_code_enhanced", {"dsn", Fld<Field::kDsn>}},
      // grok splits "<data>: message"; our reason keeps the whole text after the codes.
      {"postfix_status_message", {"reason", Fld<Field::kReason>, Compare::kSuffix}},
      {"postfix_status", {"status", Fld<Field::kStatus>}},
      {"postfix_smtp_response", {"reply", Fld<Field::kReply>}},
      {"postfix_local_response", {"reply", Fld<Field::kReply>}},
      {"postfix_pipe_response", {"reply", Fld<Field::kReply>}},
      {"postfix_error_response", {"reply", Fld<Field::kReply>}},
      {"postfix_message-id", {"message_id", Fld<Field::kMessageId>}},
      {"postfix_bounce_queueid", {"notice_queue_id", Fld<Field::kNoticeQueueId>}},
      {"postfix_message_level", {"severity", MessageLevel}},
      {"postfix_message", {"message after queue ID and level", MessageRest, Compare::kPrefix}},
      {"postfix_smtpd_lostconn_data", {"kind (or detail)", SmtpdLostConn}},
      {"postfix_smtp_lostconn_data", {"reason (or detail)", SmtpLostConn}},
      {"postfix_smtp_lostconn_reason", {"reason", Fld<Field::kReason>}},
      {"postfix_tls_trustlevel", {"detail", Fld<Field::kDetail>}},
      {"postfix_tls_error", {"reason", Fld<Field::kReason>}},
      {"postfix_pix_workaround", {"reason", Fld<Field::kReason>}},
      {"postfix_discarded_ehlo_keywords", {"reason", Fld<Field::kReason>}},
      {"postfix_postscreen_access", {"kind/detail", PostscreenAccess}},
      {"postfix_postscreen_violation", {"detail (or kind)", PostscreenViolation}},
      {"postfix_postscreen_violation_time", {"delay", Fld<Field::kDelay>}},
      {"postfix_postscreen_dnsbl_rank", {"detail", Fld<Field::kDetail>}},
      {"postfix_postscreen_toobusy_data", {"reason", Fld<Field::kReason>}},
      {"postfix_server_ip", {"detail [ip]", ServerIp}},
      {"postfix_server_port", {"detail :port", ServerPort}},
      {"postfix_dnsbl_domain", {"detail", Fld<Field::kDetail>}},
      {"postfix_dnsbl_result", {"reason", Fld<Field::kReason>}},
      {"postfix_anvil_conn_count", {"reason", Fld<Field::kReason>}},
      {"postfix_anvil_cache_size", {"reason", Fld<Field::kReason>}},
      {"postfix_anvil_conn_rate", {"reason (count)", AnvilRatePart<0>}},
      {"postfix_anvil_conn_period", {"reason (period)", AnvilRatePart<1>}},
      {"postfix_bounce_recipient", {"action", Fld<Field::kAction>}},
      {"postfix_bounce_reason", {"detail", Fld<Field::kDetail>}},
      {"postfix_postsuper_action", {"detail", Fld<Field::kDetail>}},
      {"postfix_postsuper_summary_action", {"detail", Fld<Field::kDetail>}},
      {"postfix_postsuper_summary_count", {"reason", Fld<Field::kReason>}},
      {"postfix_version", {"reason", Fld<Field::kReason>}},
      {"postfix_termination_signal", {"reason", Fld<Field::kReason>}},
      {"postfix_milter_result", {"stage-action", MilterResult}},
      {"postfix_milter_data", {"reason", Fld<Field::kReason>}},
      {"postfix_prepend_type", {"stage", Fld<Field::kStage>}},
      {"postfix_prepend_trigger", {"detail", Fld<Field::kDetail>}},
      {"postfix_prepend_value", {"reason", Fld<Field::kReason>}},
      {"postfix_proxy_result", {"action", Fld<Field::kAction>, Compare::kEqual, ProxyAction}},
      {"postfix_proxy_smtp_stage", {"stage", Fld<Field::kStage>}},
      {"postfix_proxy_status_code", {"code", Fld<Field::kCode>}},
      {"postfix_proxy_status_code_enhanced", {"dsn", Fld<Field::kDsn>}},
      {"postfix_proxy_message", {"reply", Fld<Field::kReply>}},
      {"postfix_tls_version", {"tls_protocol", Fld<Field::kTlsProtocol>}},
      {"postfix_tls_cipher", {"tls_cipher", Fld<Field::kTlsCipher>}},
      {"postfix_command_counter_data", {"commands", Fld<Field::kCommands>}},
      {"postfix_delay_before_qmgr", {"delays[0]", DelaysPart<0>}},
      {"postfix_delay_in_qmgr", {"delays[1]", DelaysPart<1>}},
      {"postfix_delay_conn_setup", {"delays[2]", DelaysPart<2>}},
      {"postfix_delay_transmission", {"delays[3]", DelaysPart<3>}},
      // From postfix_keyvalue_data.
      {"postfix_from", {"from", Fld<Field::kFrom>}},
      {"postfix_to", {"to", Fld<Field::kTo>}},
      {"postfix_orig_to", {"orig_to", Fld<Field::kOrigTo>}},
      {"postfix_relay", {"relay", Fld<Field::kRelay>}},
      {"postfix_delay", {"delay", Fld<Field::kDelay>}},
      {"postfix_delays", {"delays", Fld<Field::kDelays>}},
      {"postfix_dsn", {"dsn", Fld<Field::kDsn>}},
      {"postfix_size", {"size", Fld<Field::kSize>}},
      {"postfix_nrcpt", {"nrcpt", Fld<Field::kNrcpt>}},
      {"postfix_uid", {"uid", Fld<Field::kUid>}},
      {"postfix_client", {"client", Fld<Field::kClient>}},
      {"postfix_proto", {"proto", Fld<Field::kProto>}},
      {"postfix_helo", {"helo", Fld<Field::kHelo>}},
      {"postfix_sasl_method", {"sasl_method", Fld<Field::kSaslMethod>}},
      {"postfix_sasl_username", {"sasl_username", Fld<Field::kSaslUsername>}},
      {"postfix_sasl_sender", {"sasl_sender", Fld<Field::kSaslSender>}},
  };
  return *table;
}

// fail2ban: failJSON's "time" and "host" (the client IP it bans); "match" is the filter's own
// verdict. "host" maps only on lines of programs we parse (postfix*, dovecot).
const std::vector<KeyRow>& Fail2banTable() {
  static const auto* table = new std::vector<KeyRow>{
      {"time", TimeMapping()},
      {"host", {"client_ip", Fld<Field::kClientIp>}},
      {"user", {"sasl_username", Fld<Field::kSaslUsername>}},
  };
  return *table;
}

// crowdsecurity/hub: keys with the stage prefix ("s01-parse/crowdsecurity/postfix-logs/")
// removed; the same value asserted at several stages is compared once.
const std::vector<KeyRow>& CrowdsecTable() {
  static const auto* table = new std::vector<KeyRow>{
      {"Evt.Parsed[\"program\"]", {"program", Program}},
      {"Evt.Parsed[\"pid\"]", {"pid", Pid}},
      {"Evt.Parsed[\"message\"]", {"message", Message}},
      {"Evt.Meta[\"machine\"]", {"host", Host}},
      {"Evt.Parsed[\"timestamp\"]", TimeMapping()},
      {"Evt.Parsed[\"timestamp8601\"]", TimeMapping()},
      {"Evt.Parsed[\"timestamp8601\"][4:]", TimeMapping()},
      {"Evt.Meta[\"timestamp\"]", TimeMapping()},
      {"Evt.Meta[\"timestamp\"][4:]", TimeMapping()},
      {"Evt.Enriched[\"MarshaledTime\"]", TimeMapping()},
      {"Evt.Enriched[\"MarshaledTime\"][4:]", TimeMapping()},
      {"Evt.Meta[\"source_ip\"]", {"client_ip", Fld<Field::kClientIp>}},
      {"Evt.Parsed[\"remote_addr\"]", {"client_ip", Fld<Field::kClientIp>}},
      {"Evt.Parsed[\"dovecot_remote_ip\"]", {"client_ip", Fld<Field::kClientIp>}},
      {"Evt.Meta[\"source_hostname\"]", {"client_host", Fld<Field::kClientHost>}},
      {"Evt.Parsed[\"remote_host\"]", {"client_host", Fld<Field::kClientHost>}},
      {"Evt.Parsed[\"port\"]", {"client_port", Fld<Field::kClientPort>}},
      {"Evt.Parsed[\"dovecot_user\"]", {"user", Fld<Field::kUser>}},
      {"Evt.Parsed[\"action\"]", {"action", Fld<Field::kAction>}},
      {"Evt.Meta[\"action\"]", {"action", Fld<Field::kAction>}},
      {"Evt.Parsed[\"command\"]", {"stage", Fld<Field::kStage>}},
      {"Evt.Parsed[\"smtp_basic_status_code\"]", {"code", Fld<Field::kCode>}},
      {"Evt.Parsed[\"smtp_enhanced_status_code\"]", {"dsn", Fld<Field::kDsn>}},
      {"Evt.Parsed[\"reason\"]", {"reason", Fld<Field::kReason>, Compare::kSuffix}},
      {"Evt.Meta[\"reason\"]", {"reason", Fld<Field::kReason>, Compare::kSuffix}},
      {"Evt.Unmarshaled[\"postfix\"][\"from\"]",
       {"from", Fld<Field::kFrom>, Compare::kEqual, StripAngles}},
      {"Evt.Unmarshaled[\"postfix\"][\"to\"]",
       {"to", Fld<Field::kTo>, Compare::kEqual, StripAngles}},
      {"Evt.Unmarshaled[\"postfix\"][\"helo\"]",
       {"helo", Fld<Field::kHelo>, Compare::kEqual, StripAngles}},
      {"Evt.Unmarshaled[\"postfix\"][\"proto\"]", {"proto", Fld<Field::kProto>}},
      {"Evt.Parsed[\"pregreet\"]", {"detail", Fld<Field::kDetail>}},
      {"Evt.Meta[\"pregreet\"]", {"detail", Fld<Field::kDetail>}},
      {"Evt.Parsed[\"time_attempt\"]", {"delay", Fld<Field::kDelay>}},
      {"Evt.Parsed[\"message_attempt\"]", {"reason", Fld<Field::kReason>}},
      {"Evt.Parsed[\"message_failure\"]",
       {"reason", Fld<Field::kReason>, Compare::kEqual, Trimmed}},
      {"Evt.Parsed[\"smtp_return_codes\"]", {"code dsn", CodeAndDsn}},
      {"Evt.Parsed[\"command\"] (non-SMTP)", {"reason", Fld<Field::kReason>}},
      {"Evt.Parsed[\"dovecot_user_backend\"]", {"detail", Fld<Field::kDetail>}},
      {"Evt.Parsed[\"protocol\"]", {"detail (service)", DovecotProtocol}},
  };
  return *table;
}

// lightmeterio/ControlCenter: goconvey So(actual, ...) with h/header = syslog header and
// p = typed payload; e = the next hop read from the reply.
const std::vector<KeyRow>& LightmeterTable() {
  static const auto* table = new std::vector<KeyRow>{
      {"err", {"header read / typed", HeaderRead, Compare::kHeaderRead}},
      {"h.Process", {"program (process)", Process}},
      {"h.Daemon", {"program (after first /)", LightmeterDaemon}},
      {"h.PID", {"pid", PidOrZero}},
      {"h.Host", {"host", Host}},
      {"h.Time.Year", {"time.year", TimePart<0>}},
      {"h.Time.Month", {"time.month", TimePart<1>, Compare::kEqual, LightmeterMonth}},
      {"h.Time.Month.String()", {"time.month", TimePart<1>, Compare::kEqual, LightmeterMonth}},
      {"h.Time.Day", {"time.day", TimePart<2>}},
      {"h.Time.Hour", {"time.hour", TimePart<3>}},
      {"h.Time.Minute", {"time.minute", TimePart<4>}},
      {"h.Time.Second", {"time.second", TimePart<5>}},
      {"h.ProcessIP", {"program (process IP)", ProcessIp, Compare::kEqual, UnwrapParseIp}},
      {"p.Queue", {"queue_id", QueueId}},
      {"p.RecipientLocalPart", {"to (local)", AddressPart<Field::kTo, true>}},
      {"p.RecipientDomainPart", {"to (domain)", AddressPart<Field::kTo, false>}},
      {"p.OrigRecipientLocalPart", {"orig_to (local)", AddressPart<Field::kOrigTo, true>}},
      {"p.OrigRecipientDomainPart", {"orig_to (domain)", AddressPart<Field::kOrigTo, false>}},
      {"p.Sender", {"from", Fld<Field::kFrom>}},
      {"p.SenderLocalPart", {"from (local)", AddressPart<Field::kFrom, true>}},
      {"p.SenderDomainPart", {"from (domain)", AddressPart<Field::kFrom, false>}},
      {"p.RelayName", {"relay_host", RelayName}},
      {"p.RelayIP", {"relay_ip", RelayIpOrEmpty, Compare::kEqual, UnwrapParseIp}},
      {"p.RelayPort", {"relay_port", RelayPortOrZero}},
      {"p.RelayPath", {"relay [bracket]", RelayBracket}},
      {"p.Delay", {"delay", Fld<Field::kDelay>}},
      {"p.Delays.Smtpd", {"delays[0]", DelaysPart<0>}},
      {"p.Delays.Cleanup", {"delays[1]", DelaysPart<1>}},
      {"p.Delays.Qmgr", {"delays[2]", DelaysPart<2>}},
      {"p.Delays.Smtp", {"delays[3]", DelaysPart<3>}},
      {"p.Dsn", {"dsn", Fld<Field::kDsn>}},
      {"p.Status", {"status", Fld<Field::kStatus>, Compare::kEqual, LightmeterStatus}},
      {"p.ExtraMessage", {"(reply)", ReplyInParens, Compare::kEqual, ParenthesisedOnly}},
      {"p.MessageId", {"message_id", Fld<Field::kMessageId>}},
      {"p.Uid", {"uid", Fld<Field::kUid>}},
      {"p.IP", {"client_ip", Fld<Field::kClientIp>, Compare::kEqual, UnwrapParseIp}},
      {"p.Username", {"user", Fld<Field::kUser>}},
      {"p.DB", {"detail", Fld<Field::kDetail>}},
      {"p.Stats", {"commands", CommandsCanonical, Compare::kEqual, LightmeterStats}},
      {"e.Queue", {"queued_as", QueuedAs}},
      {"e.ID", {"queued_as", QueuedAs}},
      {"e.InternalMTA", {"queued_as_form == content_filter", InternalMta}},
  };
  return *table;
}

// msimerson/postfix-parser: its object's keys. "host" is the syslog host, except on smtp
// notes it classifies (those carry "action"), where it is the remote host[ip] (see
// MsimersonKey).
const std::vector<KeyRow>& MsimersonTable() {
  static const auto* table = new std::vector<KeyRow>{
      {"date", TimeMapping()},
      {"host", {"host", Host}},
      {"prog", {"program", Program}},
      {"pid", {"pid", Pid}},
      {"msg", {"message", Message}},
      {"qid", {"queue_id", QueueId}},
      {"to", {"to", Fld<Field::kTo>}},
      {"from", {"from", Fld<Field::kFrom>}},
      {"orig_to", {"orig_to", Fld<Field::kOrigTo>}},
      {"relay", {"relay", Fld<Field::kRelay>}},
      {"delay", {"delay", Fld<Field::kDelay>}},
      {"delays", {"delays", Fld<Field::kDelays>}},
      {"dsn", {"dsn", Fld<Field::kDsn>}},
      {"status", {"status (reply)", StatusWithReply, Compare::kEqual, MsimersonStatus}},
      {"size", {"size", Fld<Field::kSize>}},
      {"nrcpt", {"nrcpt", Fld<Field::kNrcpt>}},
      {"uid", {"uid", Fld<Field::kUid>}},
      {"client", {"client", Fld<Field::kClient>}},
      {"sasl_method", {"sasl_method", Fld<Field::kSaslMethod>}},
      {"sasl_username", {"sasl_username", Fld<Field::kSaslUsername>}},
      {"message-id", {"message_id", Fld<Field::kMessageId>}},
      {"resent-message-id", {"resent_message_id", Fld<Field::kResentMessageId>}},
      {"dsnQid", {"notice_queue_id", Fld<Field::kNoticeQueueId>}},
      {"forwardedAs", {"queued_as", QueuedAs}},
      {"statistics", {"detail", Fld<Field::kDetail>}},
      {"err", {"reason", Fld<Field::kReason>}},
      {"host (remote)", {"relay_host[relay_ip]", RelayHostIp}},
      {"mx", {"relay_host[relay_ip]:relay_port", RelayHostIpPort}},
  };
  return *table;
}

// homoluctus/maillogger: one record per delivery line.
const std::vector<KeyRow>& MaillogerTable() {
  static const auto* table = new std::vector<KeyRow>{
      {"datetime", TimeMapping()},
      {"mail_id", {"queue_id", QueueId}},
      {"to_address", {"to", Fld<Field::kTo>}},
      {"relay", {"relay", Fld<Field::kRelay>}},
      {"delay", {"delay", Fld<Field::kDelay>}},
      {"delays", {"delays", Fld<Field::kDelays>}},
      {"dsn", {"dsn", Fld<Field::kDsn>}},
      {"status", {"status", Fld<Field::kStatus>}},
      {"description", {"reply", Fld<Field::kReply>}},
  };
  return *table;
}

// wazuh/wazuh-ruleset: decoder name, rule id, alert level; none of them is a field of ours.
const std::vector<KeyRow>& WazuhTable() {
  static const auto* table = new std::vector<KeyRow>{};
  return *table;
}

// ---------------------------------------------------------------------------------------------
// Cases the source got wrong, or that describe something maillens deliberately reads
// differently. A check listed here is reported but does not fail the test.

struct Judged {
  std::string_view source;
  std::string_view line_contains;  // picks the case
  std::string_view key;            // the source key as written (stage prefix removed)
  std::string_view expected;       // "" = any expected value of that key
  std::string_view reason;
};

constexpr Judged kJudged[] = {
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "p.Queue", "0262E27A61D7",
     "extraction artifact: the case merges the next Go test's assertions (queue 0262E27A61D7, "
     "a 2021-05-16 stamp) whose line is not this one"},
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "h.Time.Year", "",
     "extraction artifact: belongs to the next Go test's line (2021-05-16T00:01:42)"},
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "h.Time.Month", "",
     "extraction artifact: belongs to the next Go test's line (2021-05-16T00:01:42)"},
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "h.Time.Day", "",
     "extraction artifact: belongs to the next Go test's line (2021-05-16T00:01:42)"},
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "h.Time.Hour", "",
     "extraction artifact: belongs to the next Go test's line (2021-05-16T00:01:42)"},
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "h.Time.Minute", "",
     "extraction artifact: belongs to the next Go test's line (2021-05-16T00:01:42)"},
    {"lightmeterio/ControlCenter", "DE81A2E2DAA: reject: RCPT", "h.Time.Second", "",
     "extraction artifact: belongs to the next Go test's line (2021-05-16T00:01:42)"},
    {"fail2ban/fail2ban", "@400000004c91b044077a9e94 ", "time", "",
     "daemontools/multilog TAI64N label, not a syslog stamp: maillens reads classic and "
     "RFC 3339 headers (core/syslog_header.h), so the line is malformed by design; fail2ban's "
     "07:51:00 is also its test zone's local time, not UTC"},
    {"msimerson/postfix-parser", "fatal: append file defer 3lyw0Z2NdSz2xGb:", "qid", "",
     "msimerson takes a queue ID from anywhere in the text; here it is the name of a defer log "
     "file inside a fatal error, not the line's 'QID: ' prefix. maillens keeps it in the reason "
     "and links no message by it"},
    {"msimerson/postfix-parser", "status=sent (forwarded as ", "status", "forwarded",
     "msimerson rewrites 'status=sent (forwarded as X)' to status 'forwarded'; Postfix logged "
     "status=sent, which maillens keeps, and X goes to queued_as (checked via forwardedAs)"},
};

const Judged* FindJudged(std::string_view source, std::string_view line, std::string_view key,
                         std::string_view expected) {
  for (const Judged& j : kJudged) {
    if (j.source == source && Contains(line, j.line_contains) && j.key == key &&
        (j.expected.empty() || j.expected == expected)) {
      return &j;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Cases: reading, building the line, expanding the expectation into checks.

struct Case {
  int number = 0;  // line number in cases.jsonl
  std::string source, file, test, line, scope, program, pattern;
  Value expect;
};

std::string Text(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStringValue:
      return v.string_value();
    case Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case Value::kNumberValue: {
      double d = v.number_value();
      if (d == static_cast<double>(static_cast<int64_t>(d))) {
        return std::to_string(static_cast<int64_t>(d));
      }
      return absl::StrCat(d);
    }
    default:
      return "";
  }
}

std::string StringField(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? "" : Text(it->second);
}

std::vector<Case> ReadCases(std::string* error) {
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  std::string path = std::string(shared ? shared : "../shared") + "/corpus/cases.jsonl";
  std::ifstream f(path, std::ios::binary);
  if (!f.good()) {
    *error = "cannot read " + path;
    return {};
  }
  std::vector<Case> cases;
  std::string json;
  int number = 0;
  while (std::getline(f, json)) {
    ++number;
    if (json.empty()) continue;
    Struct s;
    auto status = google::protobuf::util::JsonStringToMessage(json, &s);
    if (!status.ok()) {
      *error = absl::StrCat(path, ":", number, ": ", status.ToString());
      return {};
    }
    Case c;
    c.number = number;
    c.source = StringField(s, "source");
    c.file = StringField(s, "file");
    c.test = StringField(s, "test");
    c.line = StringField(s, "line");
    c.scope = StringField(s, "line_scope");
    c.program = StringField(s, "program");
    c.pattern = StringField(s, "pattern");
    auto it = s.fields().find("expect");
    if (it != s.fields().end()) c.expect = it->second;
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string WithHeader(std::string_view program, std::string_view message) {
  return Cat({"Jan  1 00:00:00 testhost ", program, "[1]: ", message});
}

bool HasSyslogHeader(std::string_view line) {
  if (line.size() >= 4 && MonthNumber(line) != 0 && line[3] == ' ') return true;
  return line.size() >= 5 && std::isdigit(static_cast<unsigned char>(line[0])) &&
         std::isdigit(static_cast<unsigned char>(line[3])) && line[4] == '-';
}

struct Built {
  std::string line;
  std::string skip;  // non-empty: the case is not run, and why
};

// A grok fragment goes into a realistic line of the kind it belongs to.
Built BuildFragment(const Case& c) {
  const std::string& f = c.line;
  if (Contains(c.pattern, "POSTFIX_COMMAND_COUNTER_DATA")) {
    return {WithHeader("postfix/smtpd", "disconnect from unknown[192.0.2.1] " + f), ""};
  }
  if (Contains(c.pattern, "POSTFIX_DELAYS")) {
    return {WithHeader("postfix/smtp",
                       "1A2B3C4D5E: to=<user@example.com>, relay=mx.example.com[192.0.2.1]:25, "
                       "delay=3.6, delays=" +
                           f + ", dsn=2.0.0, status=sent (250 2.0.0 Ok)"),
            ""};
  }
  if (Contains(c.pattern, "POSTFIX_RELAY")) {
    return {WithHeader("postfix/lmtp", "1A2B3C4D5E: to=<user@example.com>, relay=" + f +
                                           ", delay=0.1, delays=0.1/0/0/0, dsn=2.0.0, "
                                           "status=sent (250 2.0.0 Ok)"),
            ""};
  }
  if (Contains(c.pattern, "POSTFIX_TLS_FEATURES")) {
    return {"", "tls= feature list of a delivery line: maillens keeps no field for it"};
  }
  return {"", "fragment of no known line kind"};
}

Built BuildLine(const Case& c) {
  if (c.scope == "syslog") return {c.line, ""};
  if (c.scope == "message") return {WithHeader(c.program, c.line), ""};
  if (c.scope == "syslog-or-bare") {
    if (HasSyslogHeader(c.line)) return {c.line, ""};
    return {WithHeader(c.program.empty() ? "postfix/smtpd" : c.program, c.line), ""};
  }
  if (c.scope == "fragment") return BuildFragment(c);
  return {"", "unknown line_scope " + c.scope};
}

struct RawKey {
  std::string key;
  std::string expected;
  Compare compare_override = Compare::kEqual;
  bool has_override = false;
};

// The expectation as (key, expected) pairs in the source's own terms, after the source-specific
// expansion: grok's kv blob split, crowdsec stage prefixes removed, goconvey matchers folded into
// the expected value.
std::vector<RawKey> RawKeys(const Case& c) {
  std::vector<RawKey> out;
  if (c.expect.kind_case() == Value::kStructValue) {
    const auto& fields = c.expect.struct_value().fields();
    std::vector<std::string> names;
    for (const auto& [name, value] : fields) names.push_back(name);
    std::sort(names.begin(), names.end());
    bool msimerson_action = fields.count("action") > 0;
    bool msimerson_qid = fields.count("qid") > 0;
    bool grok_level = fields.count("postfix_message_level") > 0;
    bool non_smtp = false;
    for (const auto& [name, value] : fields) {
      non_smtp = non_smtp || Text(value) == "non-smtp-command";
    }
    for (const std::string& name : names) {
      std::string value = Text(fields.at(name));
      if (c.source == "whyscream/postfix-grok-patterns") {
        if (name == "postfix_keyvalue_data") {
          for (std::string_view token : Split(value, ' ', true)) {
            size_t eq = token.find('=');
            if (eq == std::string_view::npos) continue;
            std::string_view v = token.substr(eq + 1);
            while (!v.empty() && (v.front() == '<' || v.front() == '>' || v.front() == ',')) {
              v.remove_prefix(1);
            }
            while (!v.empty() && (v.back() == '<' || v.back() == '>' || v.back() == ',')) {
              v.remove_suffix(1);
            }
            out.push_back({Cat({"postfix_", token.substr(0, eq)}), std::string(v)});
          }
          continue;
        }
        // Without a level, postfix_message is grok's catch-all residue ("removed", "skipped,
        // still being delivered"), which names a kind, not a field of ours.
        if (name == "postfix_message" && !grok_level) continue;
      } else if (c.source == "crowdsecurity/hub") {
        std::vector<std::string_view> parts = Split(name, '/', false, 4);
        std::string key(parts.size() == 4 ? parts[3] : name);
        // On "non-SMTP command from host[ip]: TEXT" crowdsec's "command" is TEXT, not a stage.
        if (key == "Evt.Parsed[\"command\"]" && non_smtp) key += " (non-SMTP)";
        out.push_back({key, value});
        continue;
      } else if (c.source == "msimerson/postfix-parser") {
        if (name == "host" && msimerson_action) {
          out.push_back({"host (remote)", value});
          continue;
        }
        // "msg" is the whole message only when msimerson did not read the line further; in the
        // message scope it is the text we synthesised the line from.
        if (name == "msg" && (msimerson_qid || c.scope != "syslog")) continue;
      }
      out.push_back({name, value});
    }
  } else if (c.expect.kind_case() == Value::kListValue) {
    for (const Value& item : c.expect.list_value().values()) {
      if (item.kind_case() != Value::kStructValue) continue;
      const Struct& s = item.struct_value();
      std::string actual = StringField(s, "actual");
      std::string matcher = StringField(s, "matcher");
      std::string expected = StringField(s, "expected");
      if (actual.rfind("header.", 0) == 0) actual = "h." + actual.substr(7);
      RawKey k{actual, expected};
      if (matcher == "ShouldBeTrue") k.expected = "true";
      if (matcher == "ShouldBeFalse") k.expected = "false";
      if (matcher == "ShouldBeNil") k.expected = actual == "err" ? "typed" : "";
      if (matcher == "ShouldNotBeNil") continue;
      if (matcher == "ShouldEndWith") {
        k.compare_override = Compare::kSuffix;
        k.has_override = true;
      }
      if (actual == "err") {
        if (expected == "ErrInvalidHeaderLine") k.expected = "malformed";
        if (expected == "ErrUnsupportedLogLine") k.expected = "read";
      }
      out.push_back(k);
    }
  }
  return out;
}

const std::vector<KeyRow>* TableFor(std::string_view source) {
  if (source == "whyscream/postfix-grok-patterns") return &GrokTable();
  if (source == "fail2ban/fail2ban") return &Fail2banTable();
  if (source == "crowdsecurity/hub") return &CrowdsecTable();
  if (source == "lightmeterio/ControlCenter") return &LightmeterTable();
  if (source == "msimerson/postfix-parser") return &MsimersonTable();
  if (source == "homoluctus/maillogger") return &MaillogerTable();
  if (source == "wazuh/wazuh-ruleset") return &WazuhTable();
  return nullptr;
}

std::optional<Mapping> MappingFor(std::string_view source, std::string_view key) {
  const std::vector<KeyRow>* table = TableFor(source);
  if (table == nullptr) return std::nullopt;
  for (const KeyRow& row : *table) {
    if (row.key == key) return row.mapping;
  }
  if (source == "whyscream/postfix-grok-patterns" && HasPrefix(key, "postfix_cmd_")) {
    std::string_view name = key.substr(12);
    bool accepted = EatSuffix(&name, "_accepted");
    std::string command = name == "count" ? "commands" : std::string(name);
    return Mapping{"commands", CommandCount(command, accepted)};
  }
  return std::nullopt;
}

// Payload keys speak of what the line says; they map only for programs we parse.
bool ProgramWeParse(std::string_view program) {
  return HasPrefix(program, "postfix") || HasPrefix(program, "dovecot") ||
         HasPrefix(program, "amavis");
}
bool IsPayloadKey(std::string_view source, std::string_view key, std::string_view expected) {
  if (source == "lightmeterio/ControlCenter") {
    // err: only "typed" (ShouldBeNil) speaks of the payload; the header errors hold for any
    // program.
    return (HasPrefix(key, "p.") && key != "p.Queue") || HasPrefix(key, "e.") ||
           (key == "err" && expected == "typed");
  }
  if (source == "fail2ban/fail2ban") return key == "host" || key == "user";
  return false;
}

// ---------------------------------------------------------------------------------------------
// Running.

struct CheckResult {
  std::string key;
  std::string ours;
  std::string expected;
  std::string got;
  bool pass = false;
  const Judged* judged = nullptr;
};

struct CaseResult {
  const Case* c = nullptr;
  std::string built_line;
  std::string kind;
  std::string event;  // everything the parser read, for the failure report
  std::string skip;
  std::vector<CheckResult> checks;
  std::vector<std::string> ignored;  // source keys that name nothing of ours
};

bool Matches(Compare compare, const std::string& expected, const Got& got) {
  if (!got.has_value()) return false;
  switch (compare) {
    case Compare::kEqual:
      return *got == expected;
    case Compare::kSuffix:
      return HasSuffix(*got, expected);
    case Compare::kPrefix:
      return HasPrefix(*got, expected);
    case Compare::kTime:
      return TimeMatches(expected, *got);
    case Compare::kHeaderRead:
      return *got == expected || (expected == "read" && *got == "typed");
  }
  return false;
}

// The year a case's source assumed for classic stamps, so the TimeContext agrees with it.
int YearFor(const std::vector<RawKey>& keys, std::string_view source) {
  for (const RawKey& k : keys) {
    std::optional<Mapping> m = MappingFor(source, k.key);
    if (!m) continue;
    if (m->compare == Compare::kTime) {
      std::optional<std::string> p = TimePattern(k.expected);
      if (p && std::isdigit(static_cast<unsigned char>((*p)[0]))) return std::stoi(p->substr(0, 4));
    }
    if (k.key == "h.Time.Year" && !k.expected.empty()) return std::stoi(k.expected);
  }
  return 2023;
}

std::string Describe(const Event& ev) {
  std::string out = Cat({"severity=", SeverityName(ev.severity), " program=", ev.program});
  if (!ev.queue_id.empty()) out += Cat({" queue_id=", ev.queue_id});
  if (!ev.queued_as.empty()) out += Cat({" queued_as=", ev.queued_as});
  for (int i = 0; i < kFieldCount; ++i) {
    Field f = static_cast<Field>(i);
    if (ev.Has(f)) out += Cat({" ", FieldName(f), "=\"", ev.Get(f), "\""});
  }
  return out;
}

CaseResult RunCase(const Case& c) {
  CaseResult r;
  r.c = &c;
  Built built = BuildLine(c);
  if (!built.skip.empty()) {
    r.skip = built.skip;
    return r;
  }
  r.built_line = built.line;
  std::vector<RawKey> keys = RawKeys(c);
  TimeOptions options;
  options.year = YearFor(keys, c.source);
  TimeContext time(options);
  Event ev = ParseLine(r.built_line, &time);
  r.kind = std::string(KindName(ev.kind));
  r.event = Describe(ev);
  std::set<std::pair<std::string, std::string>> seen;  // (ours, expected) compared once
  for (const RawKey& k : keys) {
    std::optional<Mapping> m = MappingFor(c.source, k.key);
    if (m && IsPayloadKey(c.source, k.key, k.expected) && !ProgramWeParse(ev.program)) {
      r.ignored.push_back(k.key + " (on programs we do not parse)");
      continue;
    }
    std::optional<std::string> expected;
    if (m) expected = m->normalize ? m->normalize(k.expected) : std::optional(k.expected);
    if (m && m->compare == Compare::kTime && !expected) {
      expected = "(unreadable: " + k.expected + ")";  // fails visibly
    }
    if (!m || !expected) {
      r.ignored.push_back(k.key);
      continue;
    }
    if (!seen.insert({std::string(m->ours), *expected}).second) continue;
    Compare compare = k.has_override ? k.compare_override : m->compare;
    Got got = m->extract(ev);
    CheckResult cr;
    cr.key = k.key;
    cr.ours = std::string(m->ours);
    cr.expected = *expected;
    cr.got = got.has_value() ? "\"" + *got + "\"" : "(absent)";
    cr.pass = Matches(compare, *expected, got);
    if (!cr.pass) cr.judged = FindJudged(c.source, c.line, k.key, k.expected);
    r.checks.push_back(std::move(cr));
  }
  return r;
}

std::string Shorten(std::string_view s, size_t max) {
  std::string out;
  for (char ch : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u < 0x20) {
      absl::StrAppend(&out, Format("\\x%02x", static_cast<unsigned>(u)));
    } else {
      out.push_back(ch);
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

struct Tally {
  int mapped = 0, passed = 0, failed = 0, excused = 0, unmapped = 0, skipped = 0;
  size_t checks = 0, checks_passed = 0;  // of cases that did not fail
  std::set<std::string> ignored;
};

TEST(ConformanceTest, EveryMappedExpectationAgrees) {
  std::string error;
  std::vector<Case> cases = ReadCases(&error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(cases.size(), 541u);

  std::map<std::string, Tally> tallies;
  std::vector<CaseResult> failing, excused;
  std::vector<CaseResult> skipped;
  // MAILLENS_CONFORMANCE_VERBOSE=1 prints what the parser read from every case.
  const bool verbose = std::getenv("MAILLENS_CONFORMANCE_VERBOSE") != nullptr;
  for (const Case& c : cases) {
    CaseResult r = RunCase(c);
    if (verbose) {
      std::printf("case %d %s %s\n  line: %s\n  read: kind=%s %s\n", c.number, c.source.c_str(),
                  c.file.c_str(), Shorten(r.built_line, 300).c_str(), r.kind.c_str(),
                  Shorten(r.event, 600).c_str());
    }
    Tally& t = tallies[c.source];
    t.ignored.insert(r.ignored.begin(), r.ignored.end());
    if (!r.skip.empty()) {
      ++t.skipped;
      ++t.unmapped;
      skipped.push_back(std::move(r));
      continue;
    }
    if (r.checks.empty()) {
      ++t.unmapped;
      continue;
    }
    ++t.mapped;
    bool failed = false, judged = false;
    if (!std::any_of(r.checks.begin(), r.checks.end(),
                     [](const CheckResult& cr) { return !cr.pass && !cr.judged; })) {
      t.checks += r.checks.size();
      for (const CheckResult& cr : r.checks) t.checks_passed += cr.pass;
    }
    for (const CheckResult& cr : r.checks) {
      if (cr.pass) continue;
      (cr.judged ? judged : failed) = true;
    }
    if (failed) {
      ++t.failed;
      failing.push_back(std::move(r));
    } else {
      ++t.passed;
      if (judged) {
        ++t.excused;
        excused.push_back(std::move(r));
      }
    }
  }

  std::printf("\n%-34s %7s %7s %7s %8s %9s\n", "source", "mapped", "passed", "failed", "excused",
              "unmapped");
  int mapped = 0, passed = 0, failed = 0;
  size_t checks = 0, checks_passed = 0;
  for (const CaseResult& r : failing) {
    checks += r.checks.size();
    for (const CheckResult& cr : r.checks) checks_passed += cr.pass;
  }
  for (const auto& [source, t] : tallies) {
    checks += t.checks;
    checks_passed += t.checks_passed;
    std::printf("%-34s %7d %7d %7d %8d %9d\n", source.c_str(), t.mapped, t.passed, t.failed,
                t.excused, t.unmapped);
    mapped += t.mapped;
    passed += t.passed;
    failed += t.failed;
  }
  std::printf("%-34s %7d %7d %7d\n", "all", mapped, passed, failed);
  std::printf("pass rate: %.1f%% of %d mapped cases (%zu cases in all); %zu of %zu checks agree\n",
              mapped ? 100.0 * passed / mapped : 0.0, mapped, cases.size(), checks_passed, checks);

  std::printf("\nkeys ignored (they name nothing of ours), per source:\n");
  for (const auto& [source, t] : tallies) {
    std::printf("  %s: %s\n", source.c_str(), absl::StrJoin(t.ignored, ", ").c_str());
  }
  std::printf("\nskipped cases:\n");
  for (const CaseResult& r : skipped) {
    std::printf("  %s (cases.jsonl:%d) %s: %s\n", r.c->file.c_str(), r.c->number,
                Shorten(r.c->line, 60).c_str(), r.skip.c_str());
  }
  std::printf("\nexcused differences (kJudged):\n");
  for (const CaseResult& r : excused) {
    for (const CheckResult& cr : r.checks) {
      if (cr.pass || !cr.judged) continue;
      std::printf("  %s (cases.jsonl:%d) %s: expected \"%s\" got %s\n    because: %s\n",
                  r.c->file.c_str(), r.c->number, cr.key.c_str(), cr.expected.c_str(),
                  Shorten(cr.got, 100).c_str(), std::string(cr.judged->reason).c_str());
    }
  }
  std::printf("\nfailing cases:\n");
  for (const CaseResult& r : failing) {
    std::printf("FAIL %s | %s (cases.jsonl:%d) kind=%s\n  line: %s\n", r.c->source.c_str(),
                r.c->file.c_str(), r.c->number, r.kind.c_str(), Shorten(r.built_line, 300).c_str());
    std::printf("  read: %s\n", Shorten(r.event, 400).c_str());
    for (const CheckResult& cr : r.checks) {
      if (cr.pass) continue;
      std::printf("  %s%s -> %s: expected \"%s\" got %s\n", cr.judged ? "(excused) " : "",
                  cr.key.c_str(), cr.ours.c_str(), Shorten(cr.expected, 200).c_str(),
                  Shorten(cr.got, 200).c_str());
    }
  }
  EXPECT_EQ(failed, 0) << "mapped cases disagree with their source; see the list above";
}

}  // namespace
}  // namespace maillens::core
