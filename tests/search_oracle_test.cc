// The reference oracle for search: thousands of random queries, each answered twice — by the
// search (store::SearchMessages, what `maillens search` runs locally and through the
// collector) and by brute force over every stored line, grouped by the trace the correlator
// put it in — and the two sets of messages must be equal.
//
// The oracle is written from the rule in `maillens help search`, not from the search's code:
// its own field extraction from parsed lines, its own status words, its own tokenizer for free
// words and std::regex for '*'. It shares only the parser (what a line says) and the
// correlator (which lines form one message), which other tests check against ground truth.
//
// Queries mix fields, wildcards in every position (prefix, suffix, infix, several), statuses,
// hosts, free words and time windows, drawn from values the data holds (so most find
// something) and sometimes crossed between two messages (so some find nothing).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parser.h"
#include "core/query_language.h"
#include "gtest/gtest.h"
#include "store/importer.h"
#include "store/message_search.h"
#include "store/store.h"
#include "tools/simulator.h"

namespace maillens {
namespace {

namespace fs = std::filesystem;
using core::Field;

std::string Low(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// One stored line with what the oracle reads of it.
struct OLine {
  store::StoredLine line;
  std::map<std::string, std::vector<std::string>> values;  // field name -> values
  std::vector<std::string> tokens;                         // of the indexed text, lower case
  std::string key;  // the message: "t<trace>" or "l<day>:<id>"
};

// Tokens as the full-text index reads them: runs of ASCII letters, digits and bytes >= 0x80.
std::vector<std::string> OracleTokens(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || u >= 0x80) {
      cur.push_back(static_cast<char>(std::tolower(u)));
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// The help's status words for a line. A delivery a content filter answered "... Ok,
// discarded ..." (amavis) went no further: discarded, not sent.
std::string OracleStatus(const core::Event& ev) {
  if (ev.Has(Field::kStatus)) {
    std::string status = Low(ev.Get(Field::kStatus));
    if (status == "sent" &&
        std::string(ev.Get(Field::kReply)).find(", discarded") != std::string::npos) {
      return "discarded";
    }
    return status;
  }
  std::string action(ev.Get(Field::kAction));
  if (ev.kind == core::Kind::kReject) return "rejected";
  if (ev.kind == core::Kind::kCheckAction) {
    if (action == "hold" || action == "milter-hold") return "held";
    if (action == "discard" || action == "milter-discard") return "discarded";
  }
  return "";
}

void Put(std::map<std::string, std::vector<std::string>>* v, const std::string& field,
         std::string_view value, bool lower) {
  if (value.data() == nullptr) return;
  (*v)[field].push_back(lower ? Low(value) : std::string(value));
}

OLine Describe(const store::StoredLine& line, core::TimeContext* time) {
  OLine o;
  o.line = line;
  core::Event ev = core::ParseLine(line.raw, time);
  auto& v = o.values;
  Put(&v, "from", ev.Get(Field::kFrom), true);
  Put(&v, "to", ev.Get(Field::kTo), true);
  Put(&v, "to", ev.Get(Field::kOrigTo), true);
  Put(&v, "host", line.host, true);
  Put(&v, "status", OracleStatus(ev), false);
  Put(&v, "qid", ev.queue_id, true);  // queue IDs are found in any letter case
  if (!ev.queued_as.empty()) Put(&v, "qid", ev.queued_as, true);
  Put(&v, "qid", ev.Get(Field::kNoticeQueueId), true);
  Put(&v, "msgid", ev.Get(Field::kMessageId), false);
  Put(&v, "msgid", ev.Get(Field::kResentMessageId), false);
  Put(&v, "client", ev.Get(Field::kClientIp), true);
  Put(&v, "client", ev.Get(Field::kClientHost), true);
  Put(&v, "relay", ev.Get(Field::kRelayHost), true);
  Put(&v, "relay", ev.Get(Field::kRelayIp), true);
  Put(&v, "relay", ev.Get(Field::kRelay), true);
  Put(&v, "dsn", ev.Get(Field::kDsn), false);
  Put(&v, "sasl", ev.Get(Field::kSaslUsername), false);
  if (ev.kind == core::Kind::kDovecotAuth) Put(&v, "sasl", ev.Get(Field::kUser), false);
  Put(&v, "daemon", ev.daemon.data() ? ev.daemon : std::string_view(""), true);
  Put(&v, "kind", core::KindName(ev.kind), false);
  // The index holds the line from its program name on.
  std::string_view text = line.raw;
  if (!ev.program.empty()) {
    size_t at = line.raw.find(std::string(ev.program));
    if (at != std::string::npos) text = std::string_view(line.raw).substr(at);
  }
  o.tokens = OracleTokens(text);
  return o;
}

std::regex GlobRegex(const std::string& pattern) {
  std::string re;
  for (char c : pattern) {
    if (c == '*') {
      re += ".*";
    } else if (std::isalnum(static_cast<unsigned char>(c))) {
      re.push_back(c);
    } else {
      re += '\\';
      re.push_back(c);
    }
  }
  return std::regex(re, std::regex::ECMAScript | std::regex::nosubs);
}

struct OTerm {
  std::string field, pattern;
  std::shared_ptr<std::regex> re;  // of pattern, compiled once
};
struct OQuery {
  std::vector<std::string> words;
  std::vector<OTerm> terms;
  int64_t since = INT64_MIN, until = INT64_MAX;
  std::string Text() const {
    std::vector<std::string> parts = words;
    for (const OTerm& t : terms) parts.push_back(t.field + ":" + t.pattern);
    if (since != INT64_MIN) parts.push_back(absl::StrCat("since_us=", since));
    if (until != INT64_MAX) parts.push_back(absl::StrCat("until_us=", until));
    return absl::StrJoin(parts, " ");
  }
};

bool WordHolds(const OLine& l, const std::string& word) {
  std::vector<std::string> want = OracleTokens(word);
  bool prefix = !word.empty() && word.back() == '*';
  for (size_t i = 0; i + want.size() <= l.tokens.size(); ++i) {
    bool ok = true;
    for (size_t k = 0; ok && k < want.size(); ++k) {
      const std::string& have = l.tokens[i + k];
      ok = (prefix && k + 1 == want.size()) ? have.rfind(want[k], 0) == 0 : have == want[k];
    }
    if (ok) return true;
  }
  return false;
}

bool TermHolds(const OLine& l, const OTerm& t) {
  auto it = l.values.find(t.field);
  if (it == l.values.end()) return false;
  for (const std::string& v : it->second) {
    if (t.field == "dsn") {
      if (v.rfind(t.pattern, 0) == 0) return true;
    } else if (std::regex_match(v, *t.re)) {
      return true;
    }
  }
  return false;
}

class Oracle {
 public:
  explicit Oracle(std::vector<OLine> lines) : lines_(std::move(lines)) {
    for (size_t i = 0; i < lines_.size(); ++i) by_key_[lines_[i].key].push_back(i);
  }
  // The messages (keys) for which every word and every field holds on a line in the window.
  std::set<std::string> Answer(const OQuery& q) const {
    std::set<std::string> out;
    std::map<std::string, std::vector<OTerm>> fields;
    for (const OTerm& t : q.terms) fields[t.field].push_back(t);
    for (const auto& [key, members] : by_key_) {
      bool all = true, any_in_window = false;
      std::vector<bool> word_ok(q.words.size(), false);
      std::map<std::string, bool> field_ok;
      for (size_t i : members) {
        const OLine& l = lines_[i];
        if (l.line.time_us < q.since || l.line.time_us >= q.until) continue;
        any_in_window = true;
        for (size_t w = 0; w < q.words.size(); ++w) {
          if (!word_ok[w] && WordHolds(l, q.words[w])) word_ok[w] = true;
        }
        for (const auto& [field, alternatives] : fields) {
          if (field_ok[field]) continue;
          for (const OTerm& t : alternatives) {
            if (TermHolds(l, t)) {
              field_ok[field] = true;
              break;
            }
          }
        }
      }
      for (bool ok : word_ok) all = all && ok;
      for (const auto& [field, alternatives] : fields) all = all && field_ok[field];
      if (all && any_in_window) out.insert(key);
    }
    return out;
  }
  // The lines of message `key` inside the window that satisfy some word or field: what
  // --lines shows of it.
  std::set<std::pair<int64_t, int64_t>> Evidence(const OQuery& q, const std::string& key) const {
    std::set<std::pair<int64_t, int64_t>> out;
    auto it = by_key_.find(key);
    if (it == by_key_.end()) return out;
    for (size_t i : it->second) {
      const OLine& l = lines_[i];
      if (l.line.time_us < q.since || l.line.time_us >= q.until) continue;
      bool any = q.words.empty() && q.terms.empty();
      for (const std::string& w : q.words) any = any || WordHolds(l, w);
      for (const OTerm& t : q.terms) any = any || TermHolds(l, t);
      if (any) out.insert({l.line.day, l.line.id});
    }
    return out;
  }
  // The times of the oldest and the newest of those lines: how messages are ordered (newest
  // first by the newest, oldest first by the oldest).
  std::pair<int64_t, int64_t> EvidenceSpan(const OQuery& q, const std::string& key) const {
    std::pair<int64_t, int64_t> span{INT64_MAX, INT64_MIN};
    std::set<std::pair<int64_t, int64_t>> ids = Evidence(q, key);
    for (size_t i : by_key_.at(key)) {
      const OLine& l = lines_[i];
      if (ids.count({l.line.day, l.line.id}) == 0) continue;
      span.first = std::min(span.first, l.line.time_us);
      span.second = std::max(span.second, l.line.time_us);
    }
    return span;
  }
  const std::vector<OLine>& lines() const { return lines_; }
  // Indexes into lines() of the lines of message `key`.
  const std::vector<size_t>& LinesOf(const std::string& key) const { return by_key_.at(key); }

 private:
  std::vector<OLine> lines_;
  std::map<std::string, std::vector<size_t>> by_key_;
};

// Every stored line, each with the message the correlator put it in.
std::vector<OLine> LoadLines(store::Store* store) {
  core::TimeContext time{core::TimeOptions()};
  std::map<std::pair<int64_t, int64_t>, int64_t> trace_of;
  auto traces = store->TracesIn(INT64_MIN, INT64_MAX);
  EXPECT_TRUE(traces.ok()) << traces.status();
  for (const store::Trace& t : *traces) {
    for (const store::MessageInfo& m : t.messages) {
      auto lines = store->MessageLines(m);
      EXPECT_TRUE(lines.ok()) << lines.status();
      for (const auto& l : *lines) trace_of[{l.day, l.id}] = t.id;
    }
  }
  store::SearchQuery all;
  all.limit = 100000000;
  auto result = store->Search(all);
  EXPECT_TRUE(result.ok()) << result.status();
  std::vector<OLine> out;
  for (const auto& line : result->lines) {
    OLine o = Describe(line, &time);
    auto it = trace_of.find({line.day, line.id});
    o.key = it != trace_of.end() ? absl::StrCat("t", it->second)
                                 : absl::StrCat("l", line.day, ":", line.id);
    out.push_back(std::move(o));
  }
  return out;
}

// A value with '*' put in one of several ways.
std::string Wildcard(const std::string& v, std::mt19937* rng) {
  if (v.size() < 2) return v;
  std::uniform_int_distribution<size_t> pos(1, v.size() - 1);
  switch ((*rng)() % 7) {
    case 0:
      return v.substr(0, pos(*rng)) + "*";  // prefix
    case 1:
      return "*" + v.substr(pos(*rng));  // suffix
    case 2: {                            // infix
      size_t a = pos(*rng), b = pos(*rng);
      if (a > b) std::swap(a, b);
      return "*" + v.substr(a - 1, b - a + 1) + "*";
    }
    case 3: {  // a star inside
      size_t a = pos(*rng);
      return v.substr(0, a) + "*" + v.substr(a + (v.size() - a) / 2);
    }
    case 4:  // two stars
      return v.substr(0, 1) + "*" + v.substr(v.size() / 2, 1) + "*";
    case 5:
      return "*";
    default:
      return v;
  }
}

const char* const kFields[] = {"from",   "to",    "host", "status", "qid",    "msgid",
                               "client", "relay", "dsn",  "sasl",   "daemon", "kind"};

OQuery RandomQuery(const Oracle& oracle, std::mt19937* rng) {
  const auto& lines = oracle.lines();
  OQuery q;
  int n = 1 + static_cast<int>((*rng)() % 3);
  const std::vector<size_t>& family = oracle.LinesOf(lines[(*rng)() % lines.size()].key);
  for (int k = 0; k < n; ++k) {
    // Usually facts of one message (found), sometimes of another line (often nothing).
    const OLine& l = (*rng)() % 4 != 0 ? lines[family[(*rng)() % family.size()]]
                                       : lines[(*rng)() % lines.size()];
    if ((*rng)() % 6 == 0 && !l.tokens.empty()) {
      std::string w = l.tokens[(*rng)() % l.tokens.size()];
      if ((*rng)() % 3 == 0 && w.size() > 2) w = w.substr(0, 2 + (*rng)() % (w.size() - 1)) + "*";
      q.words.push_back(w);
      continue;
    }
    std::vector<std::string> present;
    for (const char* f : kFields) {
      auto it = l.values.find(f);
      if (it != l.values.end() && !it->second.empty() && !it->second.front().empty()) {
        present.push_back(f);
      }
    }
    if (present.empty()) continue;
    std::string field = present[(*rng)() % present.size()];
    const auto& values = l.values.at(field);
    std::string v = values[(*rng)() % values.size()];
    if (field == "dsn") {
      v = v.substr(0, 1 + (*rng)() % v.size());
    } else if (field == "status" || field == "kind") {
      // The language takes the statuses its help lists; others are an error, tested apart.
      const auto statuses = core::QueryStatuses();
      if (field == "status" && std::find(statuses.begin(), statuses.end(), v) == statuses.end()) {
        continue;
      }
      if (v.empty()) continue;
    } else if ((*rng)() % 2 == 0) {
      v = Wildcard(v, rng);
    }
    if (v.empty()) continue;
    if (field == "qid" && (*rng)() % 2 == 0) {
      for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    const std::string lowered = field == "msgid" || field == "dsn" || field == "sasl" ? v : Low(v);
    q.terms.push_back({field, v, std::make_shared<std::regex>(GlobRegex(lowered))});
  }
  if ((*rng)() % 4 == 0) {
    int64_t a = lines[(*rng)() % lines.size()].line.time_us;
    int64_t b = lines[(*rng)() % lines.size()].line.time_us;
    if (a > b) std::swap(a, b);
    if ((*rng)() % 3 == 0) {
      q.since = a;
    } else if ((*rng)() % 2 == 0) {
      q.until = b;
    } else if (a < b) {
      q.since = a;
      q.until = b;
    }
  }
  return q;
}

// from:A to:B, exact, as a helpdesk asks: the sender of one message and one of its
// recipients (on another line, often on another host), sometimes in a window. Empty when the
// message picked has no sender or no recipient.
OQuery AddressPairQuery(const Oracle& oracle, std::mt19937* rng) {
  const auto& lines = oracle.lines();
  OQuery q;
  const std::vector<size_t>& family = oracle.LinesOf(lines[(*rng)() % lines.size()].key);
  std::vector<std::string> from, to;
  for (size_t i : family) {
    for (const auto& [field, out] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
      auto it = lines[i].values.find(field);
      if (it == lines[i].values.end()) continue;
      for (const std::string& v : it->second) {
        if (!v.empty()) out->push_back(v);
      }
    }
  }
  if (from.empty() || to.empty()) return q;
  for (const auto& [field, values] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
    const std::string v = (*values)[(*rng)() % values->size()];
    q.terms.push_back({field, v, std::make_shared<std::regex>(GlobRegex(Low(v)))});
  }
  if ((*rng)() % 4 == 0) {
    const int64_t t = lines[family[(*rng)() % family.size()]].line.time_us;
    if ((*rng)() % 2 == 0) {
      q.since = t;
    } else {
      q.until = t;
    }
  }
  return q;
}

// Runs `queries` random queries against both; every difference is a failure (the first few
// are printed in full).
void CompareAgainstOracle(store::Store* store, int queries, uint32_t seed) {
  Oracle oracle(LoadLines(store));
  ASSERT_GT(oracle.lines().size(), 1000u);
  std::mt19937 rng(seed);
  int differences = 0, nonempty = 0, done = 0, pairs = 0, pairs_found = 0;
  while (done < queries) {
    // Every sixth: from:A to:B of one message, which the store answers from its
    // address_queues (message_search.cc, IntersectQueues).
    const bool pair = done % 6 == 0;
    OQuery oq = pair ? AddressPairQuery(oracle, &rng) : RandomQuery(oracle, &rng);
    if (oq.words.empty() && oq.terms.empty()) continue;
    ++done;
    std::vector<std::string> args = oq.words;
    for (const OTerm& t : oq.terms) args.push_back(t.field + ":" + t.pattern);
    auto parsed = core::ParseQuery(args, absl::Now(), absl::UTCTimeZone());
    ASSERT_TRUE(parsed.ok()) << oq.Text() << ": " << parsed.status();
    store::SearchQuery sq;
    sq.words = parsed->words;
    sq.terms = parsed->terms;
    sq.since_us = oq.since;
    sq.until_us = oq.until;
    sq.limit = 1000000;
    auto answer = store::SearchMessages(store, sq, /*with_traces=*/false);
    ASSERT_TRUE(answer.ok()) << oq.Text() << ": " << answer.status();
    std::set<std::string> got;
    for (size_t i = 0; i < answer->result.lines.size(); ++i) {
      const auto& line = answer->result.lines[i];
      got.insert(answer->trace_ids[i] != 0 ? absl::StrCat("t", answer->trace_ids[i])
                                           : absl::StrCat("l", line.day, ":", line.id));
    }
    std::set<std::string> want = oracle.Answer(oq);
    if (!want.empty()) ++nonempty;
    if (pair) {
      ++pairs;
      if (!want.empty()) ++pairs_found;
    }
    // A small limit: the search stops early, and what it shows must still be right: the
    // newest 3 messages (every 10th query: the oldest 3, with --oldest-first), each with all
    // its matching lines (also those beyond where it stopped).
    if (done % 5 == 0 && want.size() > 3) {
      store::SearchQuery small = sq;
      small.limit = 3;
      small.oldest_first = done % 10 == 0;
      auto capped = store::SearchMessages(store, small, /*with_traces=*/false);
      ASSERT_TRUE(capped.ok()) << capped.status();
      std::map<std::string, std::set<std::pair<int64_t, int64_t>>> shown;
      for (size_t i = 0; i < capped->result.lines.size(); ++i) {
        const auto& line = capped->result.lines[i];
        shown[capped->trace_ids[i] != 0 ? absl::StrCat("t", capped->trace_ids[i])
                                        : absl::StrCat("l", line.day, ":", line.id)]
            .insert({line.day, line.id});
      }
      bool right = shown.size() == 3 && capped->result.total >= 3 &&
                   (capped->result.total_is_lower_bound || capped->result.total == want.size());
      for (const auto& [key, lines] : shown) {
        right = right && want.count(key) && lines == oracle.Evidence(oq, key);
      }
      // No message left out comes before a shown one in the order asked for.
      for (const auto& [key, lines] : shown) {
        if (!right || !want.count(key)) break;
        const auto s = oracle.EvidenceSpan(oq, key);
        for (const std::string& other : want) {
          if (shown.count(other)) continue;
          const auto o = oracle.EvidenceSpan(oq, other);
          right = right && (small.oldest_first ? s.first <= o.first : s.second >= o.second);
        }
      }
      if (!right) {
        ++differences;
        ADD_FAILURE() << "query with --limit 3" << (small.oldest_first ? " --oldest-first" : "")
                      << ": " << oq.Text() << ": " << shown.size() << " messages shown, total "
                      << capped->result.total;
      }
    }
    bool same =
        got == want && answer->result.total == want.size() && !answer->result.total_is_lower_bound;
    if (!same) {
      ++differences;
      if (differences <= 5) {
        std::vector<std::string> missing, extra;
        std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                            std::back_inserter(missing));
        std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                            std::back_inserter(extra));
        ADD_FAILURE() << "query: " << oq.Text() << "\n  oracle " << want.size() << ", search "
                      << got.size() << " (total " << answer->result.total
                      << (answer->result.total_is_lower_bound ? "+" : "") << ")"
                      << "\n  missing: "
                      << absl::StrJoin(missing.begin(),
                                       missing.begin() + std::min<size_t>(missing.size(), 5), " ")
                      << "\n  extra: "
                      << absl::StrJoin(extra.begin(),
                                       extra.begin() + std::min<size_t>(extra.size(), 5), " ");
      }
    }
  }
  std::printf("%d queries, %d with matches, %d differences; from:A to:B %d, %d with matches\n",
              done, nonempty, differences, pairs, pairs_found);
  EXPECT_EQ(differences, 0);
  // The generator must exercise both outcomes, or the comparison proves little.
  EXPECT_GT(nonempty, queries / 2);
  EXPECT_LT(nonempty, queries);
  EXPECT_GT(pairs_found, pairs / 2);
}

std::unique_ptr<store::Store> OpenStore(const fs::path& dir, bool read_only = false) {
  store::StoreOptions options;
  options.dir = dir.string();
  options.durable = false;
  options.read_only = read_only;
  auto store = store::Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

TEST(SearchOracleTest, SimulatedTwoHostSite) {
  fs::path dir = fs::temp_directory_path() / ("maillens_oracle_sim_" + std::to_string(getpid()));
  fs::remove_all(dir);
  tools::SimulatorOptions sim;
  sim.seed = 77;
  sim.target_lines = 6000;
  sim.start = absl::FromUnixSeconds(1735682400);
  sim.duration = absl::Hours(3);
  sim.hosts = {{"dmz", absl::ZeroDuration(), tools::StampForm::kRfc3339, false},
               {"mx", absl::Seconds(30), tools::StampForm::kRfc3339, false}};
  ASSERT_TRUE(tools::SimulateToDirectory(sim, (dir / "logs").string()).ok());
  auto store = OpenStore(dir / "data");
  ASSERT_NE(store, nullptr);
  for (const char* host : {"mx", "dmz"}) {
    store::ImportOptions import;
    auto stats = store::ImportFile(store.get(),
                                   (dir / "logs" / (std::string(host) + ".log")).string(), import);
    ASSERT_TRUE(stats.ok()) << stats.status();
  }
  // Queried as every command and the collector query it: a read-only store of its own.
  store.reset();
  store = OpenStore(dir / "data", /*read_only=*/true);
  ASSERT_NE(store, nullptr);
  CompareAgainstOracle(store.get(), 3500, 1);
  fs::remove_all(dir);
}

TEST(SearchOracleTest, RealServerFromTheCorpus) {
  // ../shared/corpus, read in place; mail.warn and mail.err repeat lines of mail.log.
  const char* shared = std::getenv("MAILLENS_SHARED_DIR");
  const fs::path logs = fs::path(shared ? shared : "../shared") / "corpus" /
                        "lightmeter-controlcenter" / "complete_tar" / "logs_sample";
  std::vector<fs::path> files = {logs / "mail.log.1", logs / "mail.log"};
  for (const fs::path& f : files) ASSERT_TRUE(fs::exists(f)) << "the corpus is missing: " << f;
  fs::path dir = fs::temp_directory_path() / ("maillens_oracle_real_" + std::to_string(getpid()));
  fs::remove_all(dir);
  auto store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  for (const fs::path& f : files) {
    store::ImportOptions import;
    import.year = 2020;
    auto stats = store::ImportFile(store.get(), f.string(), import);
    ASSERT_TRUE(stats.ok()) << f << ": " << stats.status();
  }
  store.reset();
  store = OpenStore(dir, /*read_only=*/true);
  ASSERT_NE(store, nullptr);
  CompareAgainstOracle(store.get(), 1500, 2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace maillens
