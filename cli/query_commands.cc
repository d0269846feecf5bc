// `maillens search` and `maillens trace`, against a local data directory or a collector
// (cli/query_source.h): both answer with the same structs, rendered here the same way.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/query_source.h"
#include "cli/store_commands.h"
#include "cli/trace_story.h"
#include "core/json.h"
#include "core/parser.h"
#include "core/query_language.h"
#include "core/strings.h"
#include "report/table.h"
#include "store/retention.h"
#include "store/store.h"

namespace maillens::cli {
namespace {

constexpr char kSearchUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT] search [WORD | FIELD:VALUE]... [--limit N]\n"
    "       [--lines] [--oldest-first] [--json | --csv]\n"
    "  Messages (whole traces, across hosts) for which every WORD and every FIELD:VALUE holds\n"
    "  on at least one of their lines, newest first: from:A to:B finds mail from A to B\n"
    "  although Postfix logs sender and recipient on different lines. Lines of no message\n"
    "  (NOQUEUE rejects, connections) are matched on their own. See 'maillens help search'.\n"
    "  Fields: from to host status qid msgid client relay dsn sasl daemon kind since until\n"
    "  (also as options: --from X is from:X). '*' works anywhere in a value: 'to:*@example.org',\n"
    "  to:ali*, 'client:*.example.net'. dsn: matches a prefix (dsn:5.). since:/until: take\n"
    "  2024-05-01, '2024-05-01 10:00', 10:00, an RFC 3339 time, or a duration ago: 90s 15m 2h 3d.\n"
    "  One row per message with its sender and each recipient's outcome (the asked-for\n"
    "  recipient first); --lines shows the matching lines of those messages instead. --json\n"
    "  (one object per message, each recipient with its status) or --csv (one row per\n"
    "  recipient) for programs. --limit N counts messages (default 100): the newest N, or\n"
    "  with --oldest-first the oldest N, oldest first.\n"
    "  Control characters from log lines are shown escaped (\\x1b) in rows, always; --lines\n"
    "  writes lines as logged when piped (like grep), escaped on a terminal; --csv keeps the\n"
    "  bytes; --json turns bytes that are not UTF-8 into U+FFFD (JSON text is UTF-8).\n"
    "  Example: maillens search to:bob@example.ac.jp status:bounced since:2h\n";

constexpr char kTraceUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT] trace [--raw] [--json] QUEUEID|MESSAGE-ID\n"
    "       maillens [--data DIR | --server HOST:PORT] trace --all [--since T] [--until T]\n"
    "                [--json]\n"
    "  The whole journey of a message across hosts: first a verdict (what happened to each\n"
    "  recipient, in words), then every hop with its host and queue ID, its deferrals,\n"
    "  holds, check actions, content-filter verdict and notices with their times, how hops\n"
    "  are linked (relay, content-filter re-injection, delay or non-delivery notice), and\n"
    "  each recipient's final status and delay (delays= a: before the queue manager, incl.\n"
    "  time deferred; b: in the queue manager; c: connection setup; d: transmission). --raw\n"
    "  adds every raw line in order; --json the same facts for programs; --all writes every\n"
    "  trace that starts in the window, one JSON object per line with --json.\n"
    "  See 'maillens help trace'.\n";

std::unique_ptr<QuerySource> OpenSource(const GlobalOptions& global, const char* cmd) {
  auto source = OpenQuerySource(global);
  if (!source.ok()) {
    std::fprintf(stderr, "maillens %s: %s\n", cmd, std::string(source.status().message()).c_str());
    return nullptr;
  }
  return std::move(*source);
}

bool ParseWindow(const std::string& since, const std::string& until, const char* cmd,
                 int64_t* since_us, int64_t* until_us) {
  absl::Time now = absl::Now();
  absl::TimeZone zone = absl::LocalTimeZone();
  for (const auto& [text, out] :
       {std::make_pair(since, since_us), std::make_pair(until, until_us)}) {
    if (text.empty()) continue;
    auto t = core::ParseTimeArg(text, now, zone);
    if (!t.ok()) {
      std::fprintf(stderr, "maillens %s: %s\n", cmd, std::string(t.status().message()).c_str());
      return false;
    }
    *out = *t;
  }
  return true;
}

void AppendKeyString(const char* key, std::string_view value, std::string* out) {
  absl::StrAppend(out, "\"", key, "\":");
  core::AppendJsonString(value, out);
}

// "k1":"v1","k2":"v2" (no braces), values escaped.
void AppendStringFields(std::initializer_list<std::pair<const char*, std::string_view>> fields,
                        std::string* out) {
  bool first = true;
  for (const auto& [key, value] : fields) {
    if (!first) out->push_back(',');
    first = false;
    AppendKeyString(key, value, out);
  }
}

// delays=a/b/c/d as an object named as postconf(5) describes the parts; nothing when the
// line had no four parts.
void AppendDelaysJson(const std::string& delays, std::string* out) {
  std::vector<std::string> parts = absl::StrSplit(delays, '/');
  if (parts.size() != 4) return;
  out->append(",\"delays\":{");
  const char* names[] = {"before_qmgr", "in_qmgr", "conn_setup", "transmission"};
  for (int i = 0; i < 4; ++i) {
    if (i) out->push_back(',');
    AppendKeyString(names[i], parts[i], out);
  }
  out->push_back('}');
}

// ,"mailbox":[...]: what Dovecot did with each recipient handed to it (store::MailboxStep),
// the journey's last step.
void AppendMailboxJson(const store::Trace& t, std::string* out) {
  std::map<int64_t, const store::MessageInfo*> by_id;
  for (const auto& m : t.messages) by_id[m.id] = &m;
  out->append(",\"mailbox\":[");
  for (size_t i = 0; i < t.mailbox.size(); ++i) {
    const store::MailboxStep& step = t.mailbox[i];
    auto hop = by_id.find(step.message);
    if (i) out->push_back(',');
    out->push_back('{');
    AppendStringFields({{"hop_host", hop == by_id.end() ? "" : hop->second->host},
                        {"hop_queue_id", hop == by_id.end() ? "" : hop->second->queue_id},
                        {"to", step.recipient},
                        {"host", step.host},
                        {"user", step.user},
                        {"session", step.session},
                        {"message_id", step.message_id},
                        {"status", step.status},
                        {"sieve_action", step.action},
                        {"mailbox", step.mailbox},
                        {"target", step.target},
                        {"reason", step.reason},
                        {"linked_by", step.linked_by}},
                       out);
    absl::StrAppend(out, ",\"time_us\":", step.time_us, "}");
  }
  out->push_back(']');
}

void AppendTraceJson(const store::Trace& t, const TraceStory& story, std::string* out) {
  std::map<int64_t, const store::MessageInfo*> by_id;
  for (const auto& m : t.messages) by_id[m.id] = &m;
  absl::StrAppend(out, "{\"trace_id\":", t.id, ",");
  AppendKeyString("verdict", story.verdict, out);
  out->append(",\"outcomes\":[");
  for (size_t i = 0; i < story.outcomes.size(); ++i) {
    const RecipientOutcome& o = story.outcomes[i];
    if (i) out->push_back(',');
    out->push_back('{');
    AppendStringFields({{"to", o.recipient},
                        {"outcome", o.outcome},
                        {"host", o.host},
                        {"where", o.where},
                        {"mailbox", o.mailbox},
                        {"code", o.code},
                        {"dsn", o.dsn},
                        {"text", o.text},
                        {"queued_as", o.queued_as}},
                       out);
    out->push_back('}');
  }
  out->append("],\"messages\":[");
  for (size_t i = 0; i < t.messages.size(); ++i) {
    const auto& m = t.messages[i];
    if (i) out->push_back(',');
    out->push_back('{');
    AppendStringFields({{"host", m.host},
                        {"queue_id", m.queue_id},
                        {"message_id", m.message_id},
                        {"sender", m.sender},
                        {"client", m.client},
                        {"disposition", m.disposition}},
                       out);
    absl::StrAppend(out, ",\"first_us\":", m.first_us, ",\"last_us\":", m.last_us,
                    ",\"size\":", m.size, ",\"events\":[");
    if (auto it = story.facts.find(m.id); it != story.facts.end()) {
      for (size_t j = 0; j < it->second.size(); ++j) {
        const HopFact& f = it->second[j];
        if (j) out->push_back(',');
        absl::StrAppend(out, "{\"time_us\":", f.time_us, ",");
        AppendStringFields({{"kind", HopFactKindName(f.kind)},
                            {"to", f.recipient},
                            {"dsn", f.dsn},
                            {"action", f.action},
                            {"detail", f.detail},
                            {"text", f.text},
                            {"score", f.score},
                            {"delay", f.delay},
                            {"notice_queue_id", f.notice_queue_id}},
                           out);
        out->push_back('}');
      }
    }
    out->append("]}");
  }
  out->append("],\"links\":[");
  for (size_t i = 0; i < t.links.size(); ++i) {
    const auto& l = t.links[i];
    if (i) out->push_back(',');
    const auto* from = by_id[l.from];
    const auto* to = by_id[l.to];
    out->append("{");
    AppendKeyString("kind", l.kind, out);
    if (auto it = story.notice_kind.find(l.to); it != story.notice_kind.end()) {
      out->push_back(',');
      AppendKeyString("notice", it->second, out);  // non-delivery, delay, delivery status
    }
    out->append(",\"from\":{");
    AppendStringFields({{"host", from->host}, {"queue_id", from->queue_id}}, out);
    absl::StrAppend(out, ",\"first_us\":", from->first_us, "},\"to\":{");
    AppendStringFields({{"host", to->host}, {"queue_id", to->queue_id}}, out);
    absl::StrAppend(out, ",\"first_us\":", to->first_us, "}}");
  }
  out->append("],\"recipients\":[");
  for (size_t i = 0; i < t.recipients.size(); ++i) {
    const auto& r = t.recipients[i];
    if (i) out->push_back(',');
    const auto* m = by_id[r.message];
    out->push_back('{');
    AppendStringFields({{"host", m->host},
                        {"queue_id", m->queue_id},
                        {"to", r.recipient},
                        {"orig_to", r.orig_to},
                        {"status", r.status},
                        {"dsn", r.dsn},
                        {"relay", r.relay},
                        {"reply", r.reply},
                        {"queued_as", r.next_queue_id}},
                       out);
    absl::StrAppend(out, ",\"time_us\":", r.time_us, ",\"attempts\":", r.attempts, ",");
    AppendKeyString("delay", r.delay, out);
    AppendDelaysJson(r.delays, out);
    out->push_back('}');
  }
  out->push_back(']');
  AppendMailboxJson(t, out);
  out->push_back('}');
}

// `trace` with every text field escaped (EscapeControls) for the person reading it: any of
// them (message-id, addresses, SASL user, the remote server's reply, even a host or queue ID)
// holds bytes from a log line. A text field added to the trace's structs belongs here too.
store::Trace EscapedForPeople(store::Trace trace) {
  for (store::MessageInfo& m : trace.messages) {
    for (std::string* s : {&m.host, &m.instance, &m.queue_id, &m.message_id, &m.sender, &m.client,
                           &m.sasl_username, &m.origin, &m.disposition}) {
      *s = EscapeControls(*s);
    }
  }
  for (store::RecipientInfo& r : trace.recipients) {
    for (std::string* s : {&r.recipient, &r.orig_to, &r.status, &r.dsn, &r.relay, &r.reply,
                           &r.next_queue_id, &r.next_form, &r.delay, &r.delays}) {
      *s = EscapeControls(*s);
    }
  }
  for (store::LinkInfo& l : trace.links) l.kind = EscapeControls(l.kind);
  for (store::MailboxStep& step : trace.mailbox) {
    for (std::string* s :
         {&step.recipient, &step.host, &step.session, &step.user, &step.message_id, &step.status,
          &step.action, &step.mailbox, &step.target, &step.reason, &step.linked_by}) {
      *s = EscapeControls(*s);
    }
  }
  return trace;
}

// One Dovecot line of a recipient in words: "saved to INBOX", "Sieve: redirected to <x>".
std::string MailboxStepInWords(const store::MailboxStep& step) {
  std::string what;
  if (step.status == "saved") {
    what = absl::StrCat(step.action.empty() ? "saved to " : "stored into ", step.mailbox);
  } else if (step.status == "failed") {
    what = absl::StrCat("saving to ", step.mailbox, " failed: ", step.reason);
  } else if (step.status == "discarded") {
    what = "discarded (unless another action keeps it)";
  } else if (step.status == "redirected") {
    what = absl::StrCat("redirected to <", step.target, ">");
  } else if (step.status == "rejected") {
    what = absl::StrCat("rejected, refusal sent to <", step.target, ">");
    if (!step.reason.empty()) absl::StrAppend(&what, " (", step.reason, ")");
  } else if (step.status == "replied") {
    what = absl::StrCat("vacation reply sent to <", step.target, ">");
  } else {
    what = step.status;
  }
  if (!step.action.empty()) what = "Sieve: " + what;  // the words say which action
  return what;
}

// The recipient's last step, in Dovecot, under its delivery line.
void PrintMailboxSteps(const store::Trace& t, const store::RecipientInfo& r,
                       const absl::TimeZone& zone) {
  for (const store::MailboxStep& step : t.mailbox) {
    if (step.message != r.message || step.recipient != r.recipient) continue;
    std::string who = step.user == r.recipient ? "" : absl::StrCat(" (user ", step.user, ")");
    std::string how = step.linked_by == "session"
                          ? ""
                          : absl::StrCat("  [matched by ", step.linked_by, " and user]");
    std::printf("        mailbox %s  %s dovecot: %s%s%s\n",
                FormatLocalTime(step.time_us, zone).substr(11).c_str(), step.host.c_str(),
                MailboxStepInWords(step).c_str(), who.c_str(), how.c_str());
  }
}

// The trace for a person, escaped whether or not stdout is a terminal; the raw lines (--raw)
// as grep would show them: their bytes when piped, escaped on a terminal.
void PrintTraceText(const TraceAnswer& answer, bool raw) {
  const store::Trace t = EscapedForPeople(answer.trace);
  const TraceStory story = TellTrace(answer.trace, answer.lines);
  absl::TimeZone zone = absl::LocalTimeZone();
  bool color = report::UseColor(stdout);
  auto paint = [&](const std::string& text, report::Color c) {
    return report::Paint(text, c, color);
  };
  std::string msgid, sender, path;
  for (const auto& m : t.messages) {
    if (msgid.empty()) msgid = m.message_id;
    if (sender.empty() && m.has_sender) sender = m.sender.empty() ? "<>" : m.sender;
  }
  std::map<int64_t, std::vector<const store::LinkInfo*>> out_links;
  std::map<int64_t, const store::MessageInfo*> by_id;
  std::map<int64_t, int> number;
  for (const auto& l : t.links) out_links[l.from].push_back(&l);
  for (size_t i = 0; i < t.messages.size(); ++i) {
    by_id[t.messages[i].id] = &t.messages[i];
    number[t.messages[i].id] = static_cast<int>(i) + 1;
  }
  std::set<std::string> hosts;
  for (const auto& m : t.messages) {
    if (hosts.insert(m.host).second) absl::StrAppend(&path, path.empty() ? "" : ", ", m.host);
  }
  // "<>" would read as the null sender: a message refused before cleanup logged its
  // Message-ID has none in the log.
  const std::string shown_msgid = msgid.empty() ? "(none logged)" : absl::StrCat("<", msgid, ">");
  std::printf("%s  message-id %s  from %s\n  %zu hop%s across %s  (times in %s)\n",
              paint("trace", report::Color::kBold).c_str(), shown_msgid.c_str(), sender.c_str(),
              t.messages.size(), t.messages.size() == 1 ? "" : "s", path.c_str(),
              ZoneLabel(zone).c_str());
  std::printf("  %s\n", paint(EscapeControls(story.verdict), report::Color::kBold).c_str());
  for (const auto& m : t.messages) {
    std::string head = absl::StrCat(number[m.id], ". ", m.host, "  ", m.queue_id);
    std::printf("\n%s  %s .. %s", paint(head, report::Color::kBold).c_str(),
                FormatLocalTime(m.first_us, zone).c_str(),
                FormatLocalTime(m.end_us.value_or(m.last_us), zone).substr(11).c_str());
    if (!m.client.empty()) std::printf("  from %s", m.client.c_str());
    if (!m.sasl_username.empty()) std::printf(" (sasl %s)", m.sasl_username.c_str());
    if (m.client.empty() && !m.origin.empty()) std::printf("  via %s", m.origin.c_str());
    if (m.size >= 0) std::printf("  %lld bytes", static_cast<long long>(m.size));
    if (!m.disposition.empty()) {
      std::string disposition = m.disposition;
      if (auto it = story.facts.find(m.id); it != story.facts.end() && disposition == "held") {
        for (const HopFact& f : it->second) {
          if (f.kind == HopFact::Kind::kReleased) disposition = "held, then released";
        }
      }
      std::printf("  %s",
                  paint("[" + disposition + "]", report::StatusColor(m.disposition)).c_str());
    }
    if (!m.end_us)
      std::printf("  %s", paint("(still queued or log incomplete)", report::Color::kDim).c_str());
    std::printf("\n");
    if (auto it = story.facts.find(m.id); it != story.facts.end()) {
      for (const HopFact& f : it->second) {
        std::printf("     %s  %s\n", FormatLocalTime(f.time_us, zone).substr(11).c_str(),
                    EscapeControls(FactInWords(f)).c_str());
      }
    }
    for (const auto& r : t.recipients) {
      if (r.message != m.id) continue;
      std::string who = r.recipient;
      if (!r.orig_to.empty() && r.orig_to != r.recipient)
        absl::StrAppend(&who, " (was ", r.orig_to, ")");
      std::printf("     %s  %s %s", who.c_str(),
                  paint(r.status, report::StatusColor(r.status)).c_str(), r.dsn.c_str());
      if (!r.relay.empty()) std::printf("  via %s", r.relay.c_str());
      if (r.attempts > 1) std::printf("  (%lld attempts)", static_cast<long long>(r.attempts));
      std::printf("\n");
      std::string split = DelayInWords(r.delay, r.delays);
      if (!split.empty()) std::printf("        delay %s\n", split.c_str());
      if (!r.reply.empty())
        std::printf("        %s\n", paint(r.reply, report::Color::kDim).c_str());
      bool linked = false;
      for (const auto* l : out_links[m.id]) {
        linked = linked || by_id[l->to]->queue_id == r.next_queue_id;
      }
      bool socket =
          r.relay.find("[/") != std::string::npos || r.relay.find("[private/") != std::string::npos;
      if (!r.next_queue_id.empty() && !linked && socket) {
        std::printf("        delivered to the mailbox server (session %s)\n",
                    r.next_queue_id.c_str());
      } else if (!r.next_queue_id.empty() && !linked) {
        std::printf("        external hop: %s queued it as %s\n",
                    r.next_form.empty() ? "the next server" : r.next_form.c_str(),
                    r.next_queue_id.c_str());
      }
      PrintMailboxSteps(t, r, zone);
    }
    for (const auto* l : out_links[m.id]) {
      const auto* to = by_id[l->to];
      std::string when;
      for (const auto& r : t.recipients) {
        if (r.message == m.id && r.next_queue_id == to->queue_id) {
          int64_t gap = to->first_us - r.time_us;
          when = gap <= 0 ? absl::StrCat(", which logged it ", HumanDuration(-gap / 1e6),
                                         " before this host logged \"sent\"")
                          : absl::StrCat(", which logged it ", HumanDuration(gap / 1e6),
                                         " after \"sent\"");
          break;
        }
      }
      // A delay warning and a non-delivery notice are both "bounce" links: the notice line
      // of this hop says which.
      std::string kind = l->kind;
      if (auto it = story.notice_kind.find(l->to); it != story.notice_kind.end()) {
        kind = EscapeControls(it->second) + " notice";
      }
      std::printf("     -> %s to hop %d (%s %s)%s\n", kind.c_str(), number[l->to], to->host.c_str(),
                  to->queue_id.c_str(), when.c_str());
    }
    if (raw) {
      if (auto it = answer.lines.find(m.id); it != answer.lines.end()) {
        for (const auto& line : it->second) {
          std::printf("       | %s\n",
                      (StdoutIsTty() ? EscapeControls(line.raw) : line.raw).c_str());
        }
      }
    }
  }
}

}  // namespace

// One row per matching line: the raw line (like grep), or JSON/CSV with time and host.
void PrintLines(const std::vector<store::StoredLine>& lines, bool json, bool csv) {
  absl::TimeZone zone = absl::LocalTimeZone();
  if (csv) {
    report::Table table({"time", "host", "line"});
    for (const auto& line : lines) {
      table.AddRow({{FormatLocalTime(line.time_us, zone)}, {line.host}, {line.raw}});
    }
    table.PrintCsv(stdout);
    return;
  }
  std::string out;
  for (const auto& line : lines) {
    out.clear();
    if (json) {
      out.append("{\"ts\":\"");
      core::AppendRfc3339Utc(line.time_us, &out);
      out.append("\",");
      AppendKeyString("host", line.host, &out);
      out.push_back(',');
      AppendKeyString("raw", line.raw, &out);
      out.append("}\n");
    } else {
      // Like grep: the bytes as logged, except that a terminal is not given escape sequences.
      out = (StdoutIsTty() ? EscapeControls(line.raw) : line.raw) + "\n";
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
}

namespace {

// A message as the search shows it: the whole trace, summarised from its first hop (where it
// entered) to each recipient's latest status along the forward hops (relays and filters; a
// bounce travelling back is its own branch and is not the recipient's status).
struct MessageSummary {
  int64_t time_us = 0;  // newest matching line
  std::string host, queue_id;
  int hops = 0;
  int lines = 0;
  std::string sender;
  std::string message_id;
  std::vector<std::string> recipients;
  // Each recipient's outcome: its latest status along the forward hops.
  struct Outcome {
    std::string to, status, dsn, reply, relay;
  };
  std::vector<Outcome> outcomes;  // parallel to recipients
  std::string status;
  std::string detail;
  bool bounced_back = false;
};

MessageSummary Summarise(const store::Trace& trace) {
  MessageSummary s;
  if (trace.messages.empty()) return s;
  const store::MessageInfo& root = trace.messages.front();
  s.host = root.host;
  s.queue_id = root.queue_id;
  s.hops = static_cast<int>(trace.messages.size());
  s.message_id = root.message_id;
  if (root.has_sender) s.sender = root.sender.empty() ? "<>" : root.sender;
  std::set<int64_t> bounce_branch;
  for (const auto& l : trace.links) {
    if (l.kind == "bounce") bounce_branch.insert(l.to);
  }
  // Messages reached from a bounce are the bounce's own hops.
  bool grew = true;
  while (grew) {
    grew = false;
    for (const auto& l : trace.links) {
      if (bounce_branch.count(l.from) && bounce_branch.insert(l.to).second) grew = true;
    }
  }
  s.bounced_back = !bounce_branch.empty();
  // Each recipient's outcome is the one logged furthest along the forward hops (a relay
  // logs "sent ... queued as" after the next host already logged the delivery or bounce, so
  // the latest in time is not the last word), then the latest. A recipient rewritten on a
  // later hop (an alias: to= new, orig_to= old) is one recipient, under its original address.
  std::map<int64_t, int> depth;
  for (const auto& m : trace.messages) depth[m.id] = 0;
  for (size_t round = 0; round < trace.messages.size(); ++round) {
    bool changed = false;
    for (const auto& l : trace.links) {
      if (l.kind == "bounce" || bounce_branch.count(l.to)) continue;
      if (depth[l.to] < depth[l.from] + 1) {
        depth[l.to] = depth[l.from] + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  std::map<std::string, std::pair<std::pair<int, int64_t>, const store::RecipientInfo*>> latest;
  for (const auto& r : trace.recipients) {
    if (bounce_branch.count(r.message)) continue;
    auto& slot = latest[r.orig_to.empty() ? r.recipient : r.orig_to];
    std::pair<int, int64_t> rank{depth[r.message], r.time_us};
    if (slot.second == nullptr || rank >= slot.first) slot = {rank, &r};
  }
  std::map<std::string, int> counts;
  for (const auto& [rcpt, entry] : latest) {
    s.recipients.push_back(rcpt);
    const store::RecipientInfo& r = *entry.second;
    // A content filter's "Ok, discarded" ends the mail there, as trace and report say.
    std::string status = core::DeliveryStatus(r.status, r.reply);
    s.outcomes.push_back({rcpt, status, r.dsn, r.reply, r.relay});
    ++counts[status];
    if (status != "sent" && s.detail.empty()) s.detail = r.reply;
  }
  // A check that ended the message (rejected, discarded) is its outcome; "held" only while
  // no recipient got further (a released message is delivered like any other).
  for (const auto& m : trace.messages) {
    if (m.disposition.empty() || bounce_branch.count(m.id)) continue;
    if (m.disposition != "held" || counts.empty()) s.status = m.disposition;
  }
  if (s.status.empty()) {
    if (counts.size() == 1) {
      s.status = counts.begin()->first;
    } else {
      for (const auto& [status, n] : counts) {
        absl::StrAppend(&s.status, s.status.empty() ? "" : ", ", n, " ", status);
      }
    }
  }
  if (s.status.empty()) {
    // Nothing delivered or refused: still in the queue, or never queued at all (the client
    // went away, or cleanup gave up, before qmgr saw the message).
    bool queued = false;
    for (const auto& m : trace.messages) queued = queued || m.size >= 0 || m.nrcpt >= 0;
    s.status = queued ? "queued" : "abandoned";
  }
  return s;
}

// Puts the recipients `to:` asked for first, and among those first the ones whose outcome is
// a status: asked for, so the row shows the one the helpdesk asked about (`status:bounced`
// shows a bounced recipient, not a delivered one of the same message).
void MatchingRecipientsFirst(const core::Query& query, MessageSummary* s) {
  std::vector<size_t> order(s->recipients.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto rank = [&](size_t i) {
    int r = 0;
    for (const core::FieldTerm& t : query.terms) {
      if (t.target == core::FieldTerm::Target::kTo &&
          core::WildcardMatch(t.pattern, core::Lower(s->recipients[i]))) {
        r |= 2;
      }
      if (t.target == core::FieldTerm::Target::kStatus && i < s->outcomes.size() &&
          core::WildcardMatch(t.pattern, s->outcomes[i].status)) {
        r |= 1;
      }
    }
    return r;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rank(a) > rank(b); });
  std::vector<std::string> recipients;
  std::vector<MessageSummary::Outcome> outcomes;
  for (size_t i : order) {
    recipients.push_back(s->recipients[i]);
    outcomes.push_back(s->outcomes[i]);
  }
  s->recipients = std::move(recipients);
  s->outcomes = std::move(outcomes);
}

// The DETAIL of a line of no message: the client first (who was refused, who failed to log
// in), then the login name tried, then the reason.
std::string LineDetail(const std::string& client, const std::string& user,
                       const std::string& text) {
  std::string out = client;
  if (!user.empty()) absl::StrAppend(&out, out.empty() ? "" : " ", "as ", user);
  if (!text.empty()) absl::StrAppend(&out, out.empty() ? "" : ": ", text);
  return out;
}

// One row per message (its whole trace across hosts) with sender, recipients and status;
// lines that belong to no message (connections, NOQUEUE rejects) stay rows of their own, with
// what they say of sender, recipient and outcome. Returns the number of messages shown.
size_t PrintMessages(const store::SearchAnswer& answer, const core::Query& query, bool json,
                     bool csv) {
  const store::SearchResult& result = answer.result;
  absl::TimeZone zone = absl::LocalTimeZone();
  core::TimeContext time{core::TimeOptions()};
  struct Row {
    std::optional<MessageSummary> message;
    int64_t time_us = 0;
    std::string host, kind, text;
    std::string from, to, status;   // of a line of no message
    std::string client, dsn, user;  // the client it names, its DSN, a SASL login name
  };
  std::vector<Row> rows;
  std::map<int64_t, size_t> by_trace;
  std::map<std::pair<std::string, std::string>, size_t> by_queue_id;
  for (size_t i = 0; i < result.lines.size(); ++i) {
    const store::StoredLine& line = result.lines[i];
    core::Event ev = core::ParseLine(line.raw, &time);
    bool has_message = ev.queue_id_form == core::QueueIdForm::kShort ||
                       ev.queue_id_form == core::QueueIdForm::kLong;
    int64_t trace_id = i < answer.trace_ids.size() ? answer.trace_ids[i] : 0;
    if (!has_message && trace_id == 0) {
      Row row;
      row.time_us = line.time_us;
      row.host = line.host;
      row.kind = std::string(core::KindName(ev.kind));
      row.text = std::string(ev.message.empty() ? std::string_view(line.raw) : ev.message);
      row.from = std::string(ev.Get(core::Field::kFrom));
      if (ev.Has(core::Field::kFrom) && row.from.empty()) row.from = "<>";
      row.to = std::string(ev.Get(core::Field::kTo));
      row.status = core::LineStatus(ev);
      if (row.status.empty()) row.status = row.kind;
      if (ev.Has(core::Field::kReason)) row.text = std::string(ev.Get(core::Field::kReason));
      // Who was refused or failed to log in is the question such a line answers.
      row.client = std::string(ev.Get(core::Field::kClient));
      row.dsn = std::string(ev.Get(core::Field::kDsn));
      row.user = std::string(ev.Get(core::Field::kSaslUsername));
      rows.push_back(std::move(row));
      continue;
    }
    if (trace_id != 0) {
      if (auto it = by_trace.find(trace_id); it != by_trace.end()) {
        ++rows[it->second].message->lines;
        continue;
      }
    }
    auto qkey = std::make_pair(line.host, std::string(ev.queue_id));
    if (trace_id == 0) {
      if (auto it = by_queue_id.find(qkey); it != by_queue_id.end()) {
        ++rows[it->second].message->lines;
        continue;
      }
    }
    MessageSummary summary;
    if (trace_id != 0) {
      if (auto it = answer.traces.find(trace_id); it != answer.traces.end()) {
        summary = Summarise(it->second);
      }
    }
    if (summary.queue_id.empty()) {  // not correlated (yet): show the line's own message
      summary.host = line.host;
      summary.queue_id = qkey.second;
      summary.status = "?";
    }
    MatchingRecipientsFirst(query, &summary);
    summary.time_us = line.time_us;
    summary.lines = 1;
    if (trace_id != 0) {
      by_trace[trace_id] = rows.size();
    } else {
      by_queue_id[qkey] = rows.size();
    }
    Row row;
    row.message = std::move(summary);
    row.time_us = line.time_us;
    row.host = line.host;
    rows.push_back(std::move(row));
  }
  if (json) {
    std::string out;
    for (const Row& r : rows) {
      out.clear();
      out.append("{\"ts\":\"");
      core::AppendRfc3339Utc(r.time_us, &out);
      out.append("\",");
      if (r.message) {
        const MessageSummary& m = *r.message;
        AppendKeyString("host", m.host, &out);
        out.push_back(',');
        AppendKeyString("queue_id", m.queue_id, &out);
        absl::StrAppend(&out, ",\"hops\":", m.hops, ",\"lines\":", m.lines, ",");
        AppendKeyString("from", m.sender, &out);
        out.push_back(',');
        AppendKeyString("message_id", m.message_id, &out);
        out.push_back(',');
        AppendKeyString("status", m.status, &out);
        out.append(",\"to\":[");
        for (size_t i = 0; i < m.recipients.size(); ++i) {
          if (i) out.push_back(',');
          core::AppendJsonString(m.recipients[i], &out);
        }
        out.append("],\"recipients\":[");
        for (size_t i = 0; i < m.outcomes.size(); ++i) {
          const MessageSummary::Outcome& o = m.outcomes[i];
          if (i) out.push_back(',');
          out.push_back('{');
          AppendStringFields({{"to", o.to},
                              {"status", o.status},
                              {"dsn", o.dsn},
                              {"relay", o.relay},
                              {"reply", o.reply}},
                             &out);
          out.push_back('}');
        }
        out.push_back(']');
      } else {
        AppendStringFields({{"host", r.host},
                            {"kind", r.kind},
                            {"client", r.client},
                            {"sasl_username", r.user},
                            {"from", r.from},
                            {"to", r.to},
                            {"status", r.status},
                            {"dsn", r.dsn},
                            {"text", r.text}},
                           &out);
      }
      out.append("}\n");
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    return rows.size();
  }
  if (csv) {
    // The helpdesk's export: one row per recipient with its own outcome.
    report::Table table({"time", "host", "queue_id", "message_id", "from", "to", "status", "dsn",
                         "relay", "reply", "client"});
    for (const Row& r : rows) {
      const std::string when = FormatLocalTime(r.time_us, zone);
      if (!r.message) {
        table.AddRow({{when},
                      {r.host},
                      {""},
                      {""},
                      {r.from},
                      {r.to},
                      {r.status},
                      {r.dsn},
                      {""},
                      {r.text},
                      {r.client}});
        continue;
      }
      const MessageSummary& m = *r.message;
      if (m.outcomes.empty()) {
        table.AddRow({{when},
                      {m.host},
                      {m.queue_id},
                      {m.message_id},
                      {m.sender},
                      {""},
                      {m.status},
                      {""},
                      {""},
                      {m.detail},
                      {""}});
      }
      for (const MessageSummary::Outcome& o : m.outcomes) {
        table.AddRow({{when},
                      {m.host},
                      {m.queue_id},
                      {m.message_id},
                      {m.sender},
                      {o.to},
                      {o.status},
                      {o.dsn},
                      {o.relay},
                      {o.reply},
                      {""}});
      }
    }
    table.PrintCsv(stdout);
    return rows.size();
  }
  // For a person: every cell shown escaped by Table::PrintText (CSV above keeps the bytes).
  report::Table table({"TIME (" + ZoneLabel(zone) + ")", "HOST", "QUEUE ID", "HOPS", "FROM", "TO",
                       "STATUS", "DETAIL"});
  for (const Row& r : rows) {
    if (r.message) {
      const MessageSummary& m = *r.message;
      std::string to = m.recipients.empty() ? "" : m.recipients.front();
      if (m.recipients.size() > 1) absl::StrAppend(&to, " +", m.recipients.size() - 1);
      std::string detail = m.detail;
      if (m.bounced_back) detail = detail.empty() ? "bounce sent back" : detail;
      table.AddRow({{FormatLocalTime(r.time_us, zone)},
                    {m.host},
                    {m.queue_id},
                    {m.hops > 1 ? std::to_string(m.hops) : ""},
                    {m.sender},
                    {to},
                    {m.status, report::StatusColor(m.status)},
                    {detail}});
    } else {
      table.AddRow({{FormatLocalTime(r.time_us, zone)},
                    {r.host},
                    {""},
                    {""},
                    {r.from},
                    {r.to},
                    {r.status, r.status == "rejected" ? report::Color::kRed : report::Color::kDim},
                    {LineDetail(r.client, r.user, r.text)}});
    }
  }
  table.PrintText(stdout, report::UseColor(stdout));
  return rows.size();
}

}  // namespace

int RunSearch(const GlobalOptions& global, const std::vector<std::string>& args) {
  std::string since, until, limit, from, to, host, status, qid, msgid;
  bool json = false, csv = false, per_line = false, oldest_first = false;
  ArgParser parser("search", kSearchUsage);
  parser.Flag("csv", &csv);
  parser.Flag("oldest-first", &oldest_first);
  parser.Flag("lines", &per_line);
  parser.Option("from", &from);
  parser.Option("to", &to);
  parser.Option("host", &host);
  parser.Option("status", &status);
  parser.Option("qid", &qid);
  parser.Option("msgid", &msgid);
  parser.Option("since", &since);
  parser.Option("until", &until);
  parser.Option("limit", &limit);
  parser.Flag("json", &json);
  std::vector<std::string> words;
  int exit_code;
  if (!parser.Parse(args, &words, &exit_code)) return exit_code;
  if (json && csv) {
    std::fprintf(stderr, "maillens search: --json and --csv exclude each other; choose one\n");
    return 2;
  }
  // --from X is the same as from:X; both forms go through the search language.
  for (const auto& [name, value] : {std::pair<const char*, std::string*>{"from", &from},
                                    {"to", &to},
                                    {"host", &host},
                                    {"status", &status},
                                    {"qid", &qid},
                                    {"msgid", &msgid},
                                    {"since", &since},
                                    {"until", &until}}) {
    if (!value->empty()) words.push_back(std::string(name) + ":" + *value);
  }
  auto query = core::ParseQuery(words, absl::Now(), absl::LocalTimeZone());
  if (!query.ok()) {
    std::fprintf(stderr, "maillens search: %s\n", std::string(query.status().message()).c_str());
    return 2;
  }
  SearchSpec spec;
  spec.words = words;
  if (query->has_since) spec.since_us = query->since_us;
  if (query->has_until) spec.until_us = query->until_us;
  spec.with_traces = !per_line;
  spec.oldest_first = oldest_first;
  if (!limit.empty()) {
    uint64_t n;
    if (!absl::SimpleAtoi(limit, &n) || n == 0) {
      std::fprintf(stderr, "maillens search: --limit wants a positive number, not '%s'\n",
                   limit.c_str());
      return 2;
    }
    spec.limit = n;
  }
  auto source = OpenSource(global, "search");
  if (!source) return 1;
  auto answer = source->Search(spec);
  if (!answer.ok()) {
    std::fprintf(stderr, "maillens search: %s\n", std::string(answer.status().message()).c_str());
    return 1;
  }
  const store::SearchResult* result = &answer->result;
  // An answer that left archived days out (store/retention.h) is never a success.
  bool incomplete = false;
  for (const std::string& notice : result->notices) {
    std::fprintf(stderr, "note: %s\n", notice.c_str());
    incomplete |= store::IsUnreadableArchiveNotice(notice);
  }
  size_t messages_shown = 0;
  if (per_line) {
    std::vector<store::StoredLine> lines = result->lines;
    PrintLines(lines, json, csv);
    std::set<std::pair<int64_t, std::string>> keys;
    for (size_t i = 0; i < result->lines.size(); ++i) {
      int64_t trace = i < answer->trace_ids.size() ? answer->trace_ids[i] : 0;
      keys.insert(trace != 0 ? std::make_pair(trace, std::string())
                             : std::make_pair(int64_t{0}, absl::StrCat(result->lines[i].day, ":",
                                                                       result->lines[i].id)));
    }
    messages_shown = keys.size();
  } else {
    messages_shown = PrintMessages(*answer, *query, json, csv);
  }
  std::fflush(stdout);
  const unsigned long long total = result->total;
  const char* what = per_line ? " (their matching lines shown)" : "";
  const char* which = oldest_first ? "oldest" : "newest";
  if (result->total_is_lower_bound) {
    std::fprintf(stderr,
                 "at least %llu matching messages; the %s %zu shown%s. Counting stopped "
                 "there: narrow the search (another field, or a shorter since:/until: window), "
                 "or raise --limit\n",
                 total, which, messages_shown, what);
  } else if (total > messages_shown) {
    std::fprintf(stderr, "%llu matching messages; the %s %zu shown%s (use --limit)\n", total, which,
                 messages_shown, what);
  } else if (!json && !csv) {
    std::fprintf(stderr, "%llu matching message%s%s\n", total, total == 1 ? "" : "s", what);
  }
  if (incomplete) return 3;
  return result->total > 0 ? 0 : 1;
}

int RunTrace(const GlobalOptions& global, const std::vector<std::string>& args) {
  bool raw = false, json = false, all = false;
  std::string since, until;
  ArgParser parser("trace", kTraceUsage);
  parser.Flag("raw", &raw);
  parser.Flag("json", &json);
  parser.Flag("all", &all);
  parser.Option("since", &since);
  parser.Option("until", &until);
  std::vector<std::string> ids;
  int exit_code;
  if (!parser.Parse(args, &ids, &exit_code)) return exit_code;
  auto source = OpenSource(global, "trace");
  if (!source) return 1;
  std::string out;
  if (all) {
    int64_t since_us = INT64_MIN, until_us = INT64_MAX;
    if (!ParseWindow(since, until, "trace", &since_us, &until_us)) return 2;
    absl::Status status =
        source->TracesIn(since_us, until_us, true, [&](const TraceAnswer& answer) {
          if (json) {
            out.clear();
            AppendTraceJson(answer.trace, TellTrace(answer.trace, answer.lines), &out);
            out.push_back('\n');
            std::fwrite(out.data(), 1, out.size(), stdout);
          } else {
            PrintTraceText(answer, raw);
            std::printf("\n");
          }
        });
    if (!status.ok()) {
      std::fflush(stdout);
      std::fprintf(stderr, "maillens trace: %s\n", std::string(status.message()).c_str());
      return 1;
    }
    return 0;
  }
  if (ids.size() != 1) {
    std::fputs(kTraceUsage, stderr);
    return 2;
  }
  // The lines tell the story (deferrals, holds, checks, the filter's verdict, notices) that
  // the catalog does not keep; they are read whether or not --raw shows them.
  auto trace = source->GetTrace(ids[0], true);
  if (!trace.ok()) {
    std::fprintf(stderr, "maillens trace: %s\n", std::string(trace.status().message()).c_str());
    return 1;
  }
  if (json) {
    AppendTraceJson(trace->trace, TellTrace(trace->trace, trace->lines), &out);
    out.push_back('\n');
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    PrintTraceText(*trace, raw);
  }
  bool incomplete = false;  // archived days left out: never a success
  for (const std::string& notice : trace->notices) {
    std::fprintf(stderr, "note: %s\n", notice.c_str());
    incomplete |= store::IsUnreadableArchiveNotice(notice);
  }
  // A next hop's queue ID that the store holds, but not in this trace: most often a server of
  // this site the correlator could not recognise in relay= (a content filter or relay on an
  // address no host declared). Said, with the way to link it.
  std::set<std::string> in_trace, told;
  for (const store::MessageInfo& m : trace->trace.messages) in_trace.insert(m.queue_id);
  for (const store::RecipientInfo& r : trace->trace.recipients) {
    if (r.next_queue_id.empty() || in_trace.count(r.next_queue_id) ||
        !told.insert(r.next_queue_id).second) {
      continue;
    }
    auto next = source->GetTrace(r.next_queue_id, false);
    if (!next.ok() || next->trace.messages.empty()) continue;
    const store::MessageInfo* there = &next->trace.messages.front();
    for (const store::MessageInfo& m : next->trace.messages) {
      if (m.queue_id == r.next_queue_id) there = &m;
    }
    std::fprintf(stderr,
                 "note: %s (the next hop's queue ID after %s) is stored on host %s but not "
                 "linked to this trace: if %s is one of your servers, declare its name or "
                 "address (maillens relink --host-alias %s=NAME_OR_ADDRESS; see maillens "
                 "relink --help)\n",
                 EscapeControls(r.next_queue_id).c_str(), EscapeControls(r.relay).c_str(),
                 EscapeControls(there->host).c_str(), EscapeControls(r.relay).c_str(),
                 EscapeControls(there->host).c_str());
  }
  return incomplete ? 3 : 0;
}

}  // namespace maillens::cli
