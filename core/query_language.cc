#include "core/query_language.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/strings.h"

namespace maillens::core {
namespace {

using Target = FieldTerm::Target;

const std::map<std::string, Target>& FieldNames() {
  static const auto* kNames = new std::map<std::string, Target>{
      {"from", Target::kFrom},
      {"sender", Target::kFrom},
      {"to", Target::kTo},
      {"rcpt", Target::kTo},
      {"recipient", Target::kTo},
      {"host", Target::kHost},
      {"status", Target::kStatus},
      {"qid", Target::kQueueId},
      {"queue", Target::kQueueId},
      {"queue_id", Target::kQueueId},
      {"msgid", Target::kMessageId},
      {"message_id", Target::kMessageId},
      {"mid", Target::kMessageId},
      {"client", Target::kClient},
      {"client_ip", Target::kClient},
      {"ip", Target::kClient},
      {"relay", Target::kRelay},
      {"dsn", Target::kDsn},
      {"sasl", Target::kSasl},
      {"user", Target::kSasl},
      {"sasl_username", Target::kSasl},
      {"daemon", Target::kDaemon},
      {"program", Target::kDaemon},
      {"kind", Target::kKind},
  };
  return *kNames;
}

std::vector<std::string> Tokens(std::string_view text);  // below, with LiteralOf

constexpr char kFieldList[] =
    "from, to, host, status, qid, msgid, client, relay, dsn, sasl, daemon, kind, since, until";

const char* const kStatuses[] = {"sent",          "deferred",    "bounced",  "expired",
                                 "undeliverable", "deliverable", "rejected", "softbounce",
                                 "held",          "discarded",   "deleted"};

}  // namespace

std::vector<std::string> QueryFieldNames() {
  std::vector<std::string> names;
  for (const auto& [name, target] : FieldNames()) names.push_back(name);
  for (const char* name : {"since", "until", "text"}) names.push_back(name);
  return names;
}

std::vector<std::string> QueryStatuses() {
  return std::vector<std::string>(std::begin(kStatuses), std::end(kStatuses));
}

namespace {

// "the query: from:x tox:y\n                    ^^^^^" — shows where the bad word is.
absl::Status PointedError(const std::vector<std::string>& args, size_t index,
                          const std::string& message) {
  std::string line = "  ";
  std::string marks = "  ";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) {
      line += ' ';
      marks += ' ';
    }
    line += args[i];
    marks += std::string(args[i].size(), i == index ? '^' : ' ');
  }
  while (!marks.empty() && marks.back() == ' ') marks.pop_back();
  return absl::InvalidArgumentError(absl::StrCat(message, "\n", line, "\n", marks));
}

bool CaseInsensitive(Target t) {
  // Queue IDs too: people type them in any case (a short ID is hex, and a long one differing
  // only in case from another of the same host and time is not worth a wrong "not found").
  return t == Target::kFrom || t == Target::kTo || t == Target::kHost || t == Target::kStatus ||
         t == Target::kClient || t == Target::kRelay || t == Target::kDaemon ||
         t == Target::kKind || t == Target::kQueueId;
}

bool MatchValue(const FieldTerm& term, std::string_view value) {
  if (value.data() == nullptr) return false;
  if (term.target == Target::kDsn) {
    return value.size() >= term.pattern.size() &&
           value.compare(0, term.pattern.size(), term.pattern) == 0;
  }
  if (CaseInsensitive(term.target)) return WildcardMatch(term.pattern, Lower(value));
  return WildcardMatch(term.pattern, value);
}

bool MatchTerm(const FieldTerm& term, const Event& ev, std::string_view host) {
  switch (term.target) {
    case Target::kFrom:
      return MatchValue(term, ev.Get(Field::kFrom));
    case Target::kTo:
      return MatchValue(term, ev.Get(Field::kTo)) || MatchValue(term, ev.Get(Field::kOrigTo));
    case Target::kHost:
      return MatchValue(term, host.data() ? host : std::string_view(""));
    case Target::kStatus:
      return MatchValue(term, LineStatus(ev));
    case Target::kQueueId:
      return MatchValue(term, ev.queue_id) ||
             (!ev.queued_as.empty() && MatchValue(term, ev.queued_as)) ||
             MatchValue(term, ev.Get(Field::kNoticeQueueId));
    case Target::kMessageId:
      return MatchValue(term, ev.Get(Field::kMessageId)) ||
             MatchValue(term, ev.Get(Field::kResentMessageId));
    case Target::kClient:
      return MatchValue(term, ev.Get(Field::kClientIp)) ||
             MatchValue(term, ev.Get(Field::kClientHost));
    case Target::kRelay:
      return MatchValue(term, ev.Get(Field::kRelayHost)) ||
             MatchValue(term, ev.Get(Field::kRelayIp)) || MatchValue(term, ev.Get(Field::kRelay));
    case Target::kDsn:
      return MatchValue(term, ev.Get(Field::kDsn));
    case Target::kSasl:
      return MatchValue(term, ev.Get(Field::kSaslUsername)) ||
             (ev.kind == Kind::kDovecotAuth && MatchValue(term, ev.Get(Field::kUser)));
    case Target::kDaemon:
      return MatchValue(term, ev.daemon.data() ? ev.daemon : std::string_view(""));
    case Target::kKind:
      return MatchValue(term, KindName(ev.kind));
  }
  return false;
}

}  // namespace

bool WildcardMatch(std::string_view pattern, std::string_view text) {
  // Iterative glob with backtracking to the last '*': linear in practice, no recursion.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

absl::StatusOr<int64_t> ParseTimeArg(const std::string& text, absl::Time now, absl::TimeZone zone) {
  if (text.empty()) return absl::InvalidArgumentError("empty time");
  if (text == "now") return absl::ToUnixMicros(now);
  char unit = text.back();
  std::string digits = text.substr(0, text.size() - 1);
  int64_t n;
  if (std::string("smhdw").find(unit) != std::string::npos && absl::SimpleAtoi(digits, &n) &&
      n >= 0) {
    int64_t seconds = unit == 's'   ? 1
                      : unit == 'm' ? 60
                      : unit == 'h' ? 3600
                      : unit == 'd' ? 86400
                                    : 7 * 86400;
    return absl::ToUnixMicros(now - absl::Seconds(n * seconds));
  }
  if (text == "today" || text == "yesterday") {
    absl::CivilDay day = absl::ToCivilDay(now, zone);
    if (text == "yesterday") day -= 1;
    return absl::ToUnixMicros(absl::FromCivil(day, zone));
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return absl::ToUnixMicros(t);
  // A syslog stamp as copied from a log ("Nov 22 10:00", "Nov 22 10:00:15", "Nov 22"): the most
  // recent such time not after now (the year is not written).
  for (const char* format : {"%b %d %H:%M:%S", "%b %d %H:%M", "%b %d"}) {
    absl::Time parsed;
    if (!absl::ParseTime(absl::StrCat("%Y ", format),
                         absl::StrCat(absl::FormatTime("%Y", now, zone), " ", text), zone, &parsed,
                         &err)) {
      continue;
    }
    if (parsed > now) {
      absl::CivilSecond c = absl::ToCivilSecond(parsed, zone);
      parsed = absl::FromCivil(
          absl::CivilSecond(c.year() - 1, c.month(), c.day(), c.hour(), c.minute(), c.second()),
          zone);
    }
    return absl::ToUnixMicros(parsed);
  }
  for (const char* format :
       {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, text, zone, &t, &err)) return absl::ToUnixMicros(t);
  }
  for (const char* format : {"%H:%M:%S", "%H:%M"}) {
    absl::Time clock;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &clock, &err)) {
      absl::CivilDay today = absl::ToCivilDay(now, zone);
      absl::CivilSecond c = absl::ToCivilSecond(clock, absl::UTCTimeZone());
      absl::CivilSecond when(today.year(), today.month(), today.day(), c.hour(), c.minute(),
                             c.second());
      return absl::ToUnixMicros(absl::FromCivil(when, zone));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot read '", text,
      "' as a time: use 2024-05-01, '2024-05-01 10:00', 10:00, 2024-05-01T10:00:00Z, "
      "'Nov 22 10:00', now, today, yesterday, or a duration ago such as 90s, 15m, 2h, 3d, 1w"));
}

absl::StatusOr<Query> ParseQuery(const std::vector<std::string>& args, absl::Time now,
                                 absl::TimeZone zone) {
  Query q;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    size_t colon = word.find(':');
    // A word is a field term when the part before ':' is a plain name. Anything else with a
    // colon (an IPv6 address, "12:30", a URL) is free text.
    bool named = colon != std::string::npos && colon > 0;
    for (size_t k = 0; named && k < colon; ++k) {
      char c = word[k];
      named = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    }
    if (!named) {
      if (word.empty()) continue;
      if (Tokens(word).empty()) {
        return PointedError(args, i,
                            absl::StrCat("'", word,
                                         "' has no letter or digit to search for (words are "
                                         "matched as the index reads them)"));
      }
      // The index reads whole words: a '*' only ends one (a prefix). Anywhere else it was
      // dropped, and '*lak*' silently found nothing where grep finds "flaky".
      if (size_t star = word.find('*'); star != std::string::npos && star + 1 != word.size()) {
        return PointedError(
            args, i,
            absl::StrCat("'", word,
                         "': in a free word '*' can only end it (a prefix, e.g. flak*); for "
                         "text inside a word use a field, e.g. to:*lak* or from:*lak*"));
      }
      q.words.push_back(word);
      continue;
    }
    std::string name = Lower(std::string_view(word).substr(0, colon));
    std::string value = word.substr(colon + 1);
    if (name == "since" || name == "until") {
      if (value.empty()) return PointedError(args, i, absl::StrCat(name, ": needs a time"));
      auto t = ParseTimeArg(value, now, zone);
      if (!t.ok()) return PointedError(args, i, std::string(t.status().message()));
      if (name == "since") {
        q.since_us = *t;
        q.has_since = true;
      } else {
        q.until_us = *t;
        q.has_until = true;
      }
      continue;
    }
    if (name == "text") {  // text:WORD searches WORD as free text, colons and all
      if (Tokens(value).empty()) {
        return PointedError(args, i, "text: needs a word with a letter or digit, e.g. text:10:30");
      }
      if (size_t star = value.find('*'); star != std::string::npos && star + 1 != value.size()) {
        return PointedError(args, i,
                            "text: in a free word '*' can only end it (a prefix, e.g. text:flak*)");
      }
      q.words.push_back(value);
      continue;
    }
    auto it = FieldNames().find(name);
    if (it == FieldNames().end()) {
      return PointedError(args, i,
                          absl::StrCat("unknown field '", name, ":'; fields are ", kFieldList,
                                       " (to search a word with ':' as text, write text:WORD)"));
    }
    if (value.empty()) {
      return PointedError(args, i,
                          absl::StrCat(name, ": needs a value, e.g. ", name, ":",
                                       name == "dsn" ? "5." : "something"));
    }
    FieldTerm term{it->second, value};
    if (term.target == Target::kMessageId && value.size() > 1 && value.front() == '<' &&
        value.back() == '>') {
      term.pattern = value.substr(1, value.size() - 2);
    }
    if (term.target == Target::kFrom || term.target == Target::kTo) {
      // Postfix logs addresses inside <>; people type them either way.
      if (value.size() > 1 && value.front() == '<' && value.back() == '>') {
        term.pattern = value.substr(1, value.size() - 2);
      }
    }
    if (CaseInsensitive(term.target)) term.pattern = Lower(term.pattern);
    if (term.target == Target::kStatus) {
      bool known = false;
      for (const char* s : kStatuses) known = known || term.pattern == s;
      if (!known && term.pattern.find('*') == std::string::npos) {
        // A row reads "queued" or "abandoned" when no line states an outcome: no line to
        // match, so say how to find such mail instead of only that the word is unknown.
        std::string why;
        if (term.pattern == "queued" || term.pattern == "abandoned") {
          why = absl::StrCat(" (a row reads '", term.pattern,
                             "' when no line states an outcome, so no line matches it: search "
                             "by sender, recipient or time and read the STATUS column, or use "
                             "maillens queue)");
        }
        return PointedError(args, i,
                            absl::StrCat("status: '", value, "' is not a status; use one of ",
                                         absl::StrJoin(kStatuses, ", "), why));
      }
    }
    if (term.target == Target::kKind && term.pattern.find('*') == std::string::npos) {
      std::vector<std::string> kinds;
      for (int k = 0; k < static_cast<int>(Kind::kCount_); ++k) {
        kinds.emplace_back(KindName(static_cast<Kind>(k)));
      }
      if (std::find(kinds.begin(), kinds.end(), term.pattern) == kinds.end()) {
        return PointedError(args, i,
                            absl::StrCat("kind: '", value, "' is not a kind; use one of ",
                                         absl::StrJoin(kinds, ", ")));
      }
    }
    if (term.target == Target::kDsn) {
      for (char c : term.pattern) {
        if (!(c >= '0' && c <= '9') && c != '.') {
          return PointedError(
              args, i,
              absl::StrCat("dsn: '", value, "' is not a DSN prefix; use e.g. dsn:5. or dsn:4.7.1"));
        }
      }
    }
    q.terms.push_back(std::move(term));
  }
  std::set<Target> fields;
  for (const FieldTerm& t : q.terms) fields.insert(t.target);
  if (q.words.size() + fields.size() > kMaxQueryClauses) {
    return absl::InvalidArgumentError(
        absl::StrCat("a search takes at most ", kMaxQueryClauses, " words and fields"));
  }
  if (q.has_since && q.has_until && q.since_us >= q.until_us) {
    return absl::InvalidArgumentError("since: is not before until: — the window is empty");
  }
  return q;
}

bool MatchesTerms(const Query& query, const Event& ev, std::string_view host) {
  // Terms on the same target are alternatives; different targets must all match.
  uint32_t needed = 0, matched = 0;
  for (const FieldTerm& term : query.terms) {
    uint32_t bit = 1u << static_cast<int>(term.target);
    needed |= bit;
    if ((matched & bit) == 0 && MatchTerm(term, ev, host)) matched |= bit;
  }
  return needed == matched;
}

namespace {

bool IsTokenByte(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}

char FoldAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The tokens of `text` as ContainsWord defines them, case-folded.
std::vector<std::string> Tokens(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !IsTokenByte(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && IsTokenByte(text[i])) ++i;
    if (i > start) {
      std::string token(text.substr(start, i - start));
      for (char& c : token) c = FoldAscii(c);
      out.push_back(std::move(token));
    }
  }
  return out;
}

// The whole-token literal of one '*'-free chunk of a pattern; `star_before`/`star_after`: a
// '*' touches it there, so a token cut there may be longer in the text.
std::string ChunkLiteral(std::string_view chunk, bool star_before, bool star_after, bool* prefix) {
  *prefix = false;
  size_t begin = 0, end = chunk.size();
  if (star_before && begin < end && IsTokenByte(chunk[begin])) {
    while (begin < end && IsTokenByte(chunk[begin])) ++begin;  // a token's unknown start
  }
  while (begin < end && !IsTokenByte(chunk[begin])) ++begin;
  if (star_after && end > begin && IsTokenByte(chunk[end - 1])) *prefix = true;
  while (end > begin && !IsTokenByte(chunk[end - 1])) --end;
  if (end <= begin) {
    *prefix = false;
    return "";
  }
  return std::string(chunk.substr(begin, end - begin));
}

}  // namespace

std::string DeliveryStatus(std::string_view status, std::string_view reply) {
  std::string lower = Lower(status);
  if (lower == "sent" && reply.find(", discarded") != std::string_view::npos) return "discarded";
  return lower;
}

std::string LineStatus(const Event& ev) {
  if (ev.Has(Field::kStatus)) return DeliveryStatus(ev.Get(Field::kStatus), ev.Get(Field::kReply));
  if (ev.kind == Kind::kReject) return "rejected";
  if (ev.kind == Kind::kCheckAction) {
    std::string_view action = ev.Get(Field::kAction);
    if (action == "hold" || action == "milter-hold") return "held";
    if (action == "discard" || action == "milter-discard") return "discarded";
  }
  // postsuper -d: the administrator deleted the message from the queue.
  if (ev.kind == Kind::kPostsuper && ev.Get(Field::kDetail) == "removed") return "deleted";
  return "";
}

std::string_view IndexedText(const Event& ev, std::string_view raw) {
  if (ev.program.empty() || ev.program.data() < raw.data() ||
      ev.program.data() > raw.data() + raw.size()) {
    return raw;
  }
  return raw.substr(static_cast<size_t>(ev.program.data() - raw.data()));
}

bool ContainsWord(std::string_view text, std::string_view word) {
  bool prefix = !word.empty() && word.back() == '*';
  std::vector<std::string> want = Tokens(word);
  if (want.empty()) return false;
  std::vector<std::string> have = Tokens(text);
  for (size_t i = 0; i + want.size() <= have.size(); ++i) {
    bool ok = true;
    for (size_t k = 0; ok && k < want.size(); ++k) {
      const std::string& h = have[i + k];
      const std::string& w = want[k];
      ok = (prefix && k + 1 == want.size()) ? h.compare(0, w.size(), w) == 0 : h == w;
    }
    if (ok) return true;
  }
  return false;
}

QueryClauses::QueryClauses(const Query& query) {
  for (const std::string& w : query.words) clauses_.push_back(Clause{{w}, {}});
  std::map<Target, size_t> by_target;
  for (const FieldTerm& t : query.terms) {
    auto [it, inserted] = by_target.emplace(t.target, clauses_.size());
    if (inserted) clauses_.push_back(Clause{});
    clauses_[it->second].terms.push_back(t);
  }
  for (size_t i = 0; i < clauses_.size() && i < 64; ++i) all_ |= uint64_t{1} << i;
}

uint64_t QueryClauses::OfLine(const Event& ev, std::string_view host, std::string_view raw) const {
  uint64_t mask = 0;
  std::string_view text;
  bool have_text = false;
  for (size_t i = 0; i < clauses_.size() && i < 64; ++i) {
    const Clause& c = clauses_[i];
    bool holds = false;
    if (!c.words.empty()) {
      if (!have_text) {
        text = IndexedText(ev, raw);
        have_text = true;
      }
      holds = ContainsWord(text, c.words.front());
    }
    for (const FieldTerm& t : c.terms) {
      if (holds) break;
      holds = MatchTerm(t, ev, host);
    }
    if (holds) mask |= uint64_t{1} << i;
  }
  return mask;
}

std::string LiteralOf(const FieldTerm& term) {
  switch (term.target) {
    case Target::kHost:
    case Target::kDaemon:
    case Target::kKind:
      return "";  // columns or the header, not in the indexed text
    case Target::kStatus:
      // LineStatus: a reject may be logged as "defer:", so "rejected" has no single word.
      if (term.pattern.find('*') != std::string::npos || term.pattern == "rejected") return "";
      if (term.pattern == "held") return "hold";
      // A check's "discard:" or a content filter's "Ok, discarded".
      if (term.pattern == "discarded") return "discard*";
      if (term.pattern == "deleted") return "removed";  // postsuper's "QID: removed"
      return "status=" + term.pattern;
    case Target::kDsn:
      return "";  // a prefix such as "5." is no token
    default:
      break;
  }
  std::string best;
  bool best_prefix = false;
  std::string_view pattern = term.pattern;
  size_t start = 0;
  while (start <= pattern.size()) {
    size_t star = pattern.find('*', start);
    size_t end = star == std::string_view::npos ? pattern.size() : star;
    bool prefix;
    std::string literal =
        ChunkLiteral(pattern.substr(start, end - start), start > 0 && pattern[start - 1] == '*',
                     star != std::string_view::npos, &prefix);
    // A prefix narrows less than the same length of whole tokens.
    if (literal.size() > best.size() || (literal.size() == best.size() && best_prefix)) {
      best = literal;
      best_prefix = prefix;
    }
    if (star == std::string_view::npos) break;
    start = star + 1;
  }
  if (best.size() < 2) return "";
  return best_prefix ? best + "*" : best;
}

}  // namespace maillens::core
