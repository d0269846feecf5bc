#include "store/message_search.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/parser.h"
#include "core/query_language.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace maillens::store {
namespace {

using Target = core::FieldTerm::Target;

// Candidate lines fetched per Store::Search call.
constexpr size_t kPageLines = 2000;
// Matching messages counted past the limit before the total becomes "at least" (each costs
// a lookup of its message, and with several clauses a load of its lines).
constexpr uint64_t kCountBeyondLimit = 200;
// Candidate lines one search examines at most; past it the answer says it stopped.
constexpr size_t kMaxCandidateLines = 250000;

// How well a clause narrows through the index: lower is better. Clauses the index cannot
// narrow (host, dsn, daemon, kind, most statuses, wildcards without a literal) scan the
// window, so they drive only when nothing else can.
int DriverCost(const core::QueryClauses::Clause& clause) {
  if (!clause.words.empty()) return 30;
  if (clause.terms.size() != 1) return 100;  // alternatives: Store::Search scans for them
  const core::FieldTerm& t = clause.terms.front();
  const std::string literal = core::LiteralOf(t);
  if (literal.empty()) return 90;
  const bool exact = t.pattern.find('*') == std::string::npos;
  int base = 40;
  switch (t.target) {
    case Target::kQueueId:
    case Target::kMessageId:
      base = 0;
      break;
    case Target::kFrom:
    case Target::kTo:
      base = 10;
      break;
    case Target::kClient:
    case Target::kSasl:
    case Target::kRelay:
      base = 20;
      break;
    case Target::kStatus:
      base = t.pattern == "sent" || t.pattern == "deferred" ? 80 : 50;
      break;
    default:
      break;
  }
  return base + (exact ? 0 : 5) - static_cast<int>(std::min<size_t>(literal.size(), 4));
}

// A message as the search counts it: a trace, an instance the correlator has put in no
// trace, or a lone line (kind, id, day).
using MessageKey = std::tuple<int, int64_t, int64_t>;
constexpr int kTraceKey = 0, kInstanceKey = 1, kLineKey = 2;

struct Found {
  MessageKey key;
  int64_t trace_id = 0;
  int64_t newest_us = 0;  // of its lines that satisfy a clause: how messages are ordered
  int64_t oldest_us = INT64_MAX;
  std::vector<StoredLine> evidence;
  std::string tie;  // orders messages of one time (Run)
  void Add(StoredLine line) {
    newest_us = std::max(newest_us, line.time_us);
    oldest_us = std::min(oldest_us, line.time_us);
    evidence.push_back(std::move(line));
  }
};

struct InstanceRange {
  int64_t first_us, last_us;
  MessageKey key;
  int64_t trace_id;
};

class MessageSearch {
 public:
  MessageSearch(Store* store, const SearchQuery& query)
      : store_(store), query_(query), clauses_(ToQuery(query)) {}

  absl::StatusOr<SearchAnswer> Run(bool with_traces);

 private:
  // With two or more clauses the index narrows well: the candidates are the messages that
  // have, for every such clause, a line among that clause's index candidates (Intersect).
  // False when a clause has too many candidate lines for that to pay; nothing is done then.
  absl::StatusOr<bool> Intersect(const std::vector<size_t>& indexed, bool* exhausted,
                                 std::vector<std::string>* notices);
  // The same when every such clause is one exact address (from:A to:B): each clause's queues
  // come from the days' address_queues tables, not from reading its lines. False, with
  // nothing done, when a day has no such table or too many lines match on their own.
  absl::StatusOr<bool> IntersectQueues(const std::vector<size_t>& indexed, bool* exhausted,
                                       std::vector<std::string>* notices);
  // The message of candidate line `line`, evaluated once; whether it matches.
  absl::Status Consider(const StoredLine& line);
  // Instance `m` of a queue on `host` (and its trace), evaluated once.
  absl::Status ConsiderInstance(const std::string& host, const MessageInfo& m);
  // The instances of trace `trace_id` (none for 0 or when it cannot be loaded); the trace is
  // kept for the answer.
  std::vector<MessageInfo> TraceMessages(int64_t trace_id);
  // Evaluates `found` over `messages` and keeps it if it matches (its trace only if shown).
  absl::Status Keep(Found found, const std::vector<MessageInfo>& messages);
  absl::StatusOr<bool> Evaluate(const std::vector<MessageInfo>& messages, Found* found);
  void AddEvidence(const MessageKey& key, const StoredLine& line) {
    auto it = found_index_.find(key);
    if (it != found_index_.end()) found_[it->second].Add(line);
  }
  bool InWindow(int64_t t) const { return t >= query_.since_us && t < query_.until_us; }

  Store* store_;
  const SearchQuery& query_;
  core::QueryClauses clauses_;
  core::TimeContext time_{core::TimeOptions()};
  std::map<std::pair<std::string, std::string>, std::vector<InstanceRange>> instances_;
  std::set<MessageKey> evaluated_;
  std::vector<Found> found_;
  // One clause (or none): a candidate line satisfies the whole query, so a message matches as
  // soon as one of its lines is found, and its later candidates are its evidence.
  bool single_ = false;
  std::map<MessageKey, size_t> found_index_;  // single_: where each message is in found_
  std::map<int64_t, Trace> traces_;
};

absl::StatusOr<bool> MessageSearch::Evaluate(const std::vector<MessageInfo>& messages,
                                             Found* found) {
  uint64_t mask = 0;
  for (const MessageInfo& m : messages) {
    MAILLENS_ASSIGN_OR_RETURN(std::vector<StoredLine> lines, store_->MessageLines(m));
    for (StoredLine& line : lines) {
      if (!InWindow(line.time_us)) continue;
      core::Event ev = core::ParseLine(line.raw, &time_);
      uint64_t bits = clauses_.OfLine(ev, line.host, line.raw);
      mask |= bits;
      if (bits != 0 || clauses_.all() == 0) found->Add(std::move(line));
    }
  }
  return mask == clauses_.all() && !found->evidence.empty();
}

absl::Status MessageSearch::Consider(const StoredLine& line) {
  core::Event ev = core::ParseLine(line.raw, &time_);
  Found found;
  std::vector<MessageInfo> messages;
  const bool has_message =
      ev.queue_id_form == core::QueueIdForm::kShort || ev.queue_id_form == core::QueueIdForm::kLong;
  bool lone = true;
  if (has_message) {
    auto key = std::make_pair(line.host, std::string(ev.queue_id));
    std::vector<InstanceRange>& known = instances_[key];
    const InstanceRange* range = nullptr;
    for (const InstanceRange& r : known) {
      if (line.time_us >= r.first_us && line.time_us <= r.last_us) range = &r;
    }
    if (range != nullptr) {  // its message was evaluated
      if (single_) AddEvidence(range->key, line);
      return absl::OkStatus();
    }
    // A failed lookup (an archived day the catalog forgot, say) leaves the line on its own
    // rather than failing the search.
    auto at = store_->InstanceAt(line.host, key.second, line.time_us);
    if (at.ok() && at->has_value()) {
      const MessageInfo& m = **at;
      found.trace_id = m.trace_id;
      found.key = m.trace_id != 0 ? MessageKey{kTraceKey, m.trace_id, 0}
                                  : MessageKey{kInstanceKey, m.id, 0};
      known.push_back(
          InstanceRange{m.first_us, m.end_us.value_or(m.last_us), found.key, found.trace_id});
      if (!evaluated_.insert(found.key).second) {
        if (single_) AddEvidence(found.key, line);
        return absl::OkStatus();
      }
      lone = false;
      messages = {m};
    }
  }
  bool matches;
  if (!lone && single_) {
    // The candidate line satisfies the query inside the window: the message matches without
    // loading it. Run() completes the lines of shown messages the paging may not have reached.
    found.Add(line);
    found_index_[found.key] = found_.size();
    found_.push_back(std::move(found));
    return absl::OkStatus();
  }
  if (lone) {
    found.key = MessageKey{kLineKey, line.id, line.day};
    if (!evaluated_.insert(found.key).second) return absl::OkStatus();
    found.trace_id = 0;
    matches = InWindow(line.time_us) && clauses_.OfLine(ev, line.host, line.raw) == clauses_.all();
    if (matches) found.Add(line);
  } else {
    std::vector<MessageInfo> of_trace = TraceMessages(found.trace_id);
    return Keep(std::move(found), of_trace.empty() ? messages : of_trace);
  }
  if (matches) found_.push_back(std::move(found));
  return absl::OkStatus();
}

std::vector<MessageInfo> MessageSearch::TraceMessages(int64_t trace_id) {
  if (trace_id == 0) return {};
  auto trace = store_->TraceById(trace_id);
  if (!trace.ok()) return {};
  std::vector<MessageInfo> messages = trace->messages;
  traces_.emplace(trace_id, std::move(*trace));
  return messages;
}

absl::Status MessageSearch::Keep(Found found, const std::vector<MessageInfo>& messages) {
  MAILLENS_ASSIGN_OR_RETURN(bool matches, Evaluate(messages, &found));
  // Only shown messages need their trace in the answer.
  if (!matches || found_.size() >= query_.limit) traces_.erase(found.trace_id);
  if (matches) found_.push_back(std::move(found));
  return absl::OkStatus();
}

absl::Status MessageSearch::ConsiderInstance(const std::string& host, const MessageInfo& m) {
  Found found;
  found.trace_id = m.trace_id;
  found.key =
      m.trace_id != 0 ? MessageKey{kTraceKey, m.trace_id, 0} : MessageKey{kInstanceKey, m.id, 0};
  if (!evaluated_.insert(found.key).second) return absl::OkStatus();
  // The instances as loaded whole (`m` may lack its span's end), each noted as evaluated
  // for the lines Consider is given.
  std::vector<MessageInfo> messages = TraceMessages(found.trace_id);
  if (messages.empty()) {
    MAILLENS_ASSIGN_OR_RETURN(std::optional<MessageInfo> whole,
                              store_->InstanceAt(host, m.queue_id, m.first_us));
    messages = {whole.has_value() ? *whole : m};
  }
  for (const MessageInfo& each : messages) {
    instances_[{each.host.empty() ? host : each.host, each.queue_id}].push_back(InstanceRange{
        each.first_us, each.end_us.value_or(each.last_us), found.key, found.trace_id});
  }
  return Keep(std::move(found), messages);
}

absl::StatusOr<bool> MessageSearch::IntersectQueues(const std::vector<size_t>& indexed,
                                                    bool* exhausted,
                                                    std::vector<std::string>* notices) {
  // A message that matches has, for each clause, a line of one of its instances with that
  // address; that line's queue is in the clause's queues, and every instance of the queue
  // is looked at (whichever life of a reused ID the line is of). A line with no message
  // (NOQUEUE, a queue ID no instance holds) matches on its own: it holds every address.
  std::vector<core::FieldTerm> terms;
  for (size_t i : indexed) {
    const core::QueryClauses::Clause& clause = clauses_.clauses()[i];
    if (!clause.words.empty() || clause.terms.size() != 1) return false;
    const core::FieldTerm& t = clause.terms.front();
    if ((t.target != Target::kFrom && t.target != Target::kTo) || t.pattern.empty() ||
        t.pattern.find_first_of("*?") != std::string::npos) {
      return false;
    }
    terms.push_back(t);
  }
  using Queue = std::pair<int64_t, std::string>;  // (host id, queue ID)
  std::vector<std::vector<Store::AddressQueue>> per_clause;
  for (const core::FieldTerm& t : terms) {
    MAILLENS_ASSIGN_OR_RETURN(std::optional<std::vector<Store::AddressQueue>> queues,
                              store_->AddressQueues(t.target, t.pattern, query_.since_us,
                                                    query_.until_us, query_.oldest_first));
    if (!queues.has_value()) return false;
    per_clause.push_back(std::move(*queues));
  }
  const uint64_t want = query_.limit + kCountBeyondLimit;
  SearchQuery own;
  own.since_us = query_.since_us;
  own.until_us = query_.until_us;
  own.terms = terms;
  own.limit = want;
  own.oldest_first = query_.oldest_first;
  MAILLENS_ASSIGN_OR_RETURN(SearchResult alone, store_->Search(own));
  // So many lines hold every address that they would fill the answer before the walk below
  // (in time order) is done: the line-driven search orders those properly.
  if (alone.total_is_lower_bound || alone.total >= want) return false;
  *notices = alone.notices;
  size_t smallest = 0;
  for (size_t i = 1; i < per_clause.size(); ++i) {
    if (per_clause[i].size() < per_clause[smallest].size()) smallest = i;
  }
  std::vector<absl::flat_hash_set<Queue>> queues(per_clause.size());
  for (size_t i = 0; i < per_clause.size(); ++i) {
    if (i == smallest) continue;
    for (const Store::AddressQueue& q : per_clause[i]) queues[i].insert({q.host_id, q.queue_id});
  }
  for (const StoredLine& line : alone.lines) MAILLENS_RETURN_IF_ERROR(Consider(line));
  auto in_every_clause = [&](const std::vector<Queue>& members) {
    for (size_t i = 0; i < queues.size(); ++i) {
      if (i == smallest) continue;
      bool any = false;
      for (const Queue& q : members) any = any || queues[i].contains(q);
      if (!any) return false;
    }
    return true;
  };
  // The walked clause's queues a day at a time, in the answer's order, until enough are
  // found (then older days may hold more: the total is a lower bound).
  const std::vector<Store::AddressQueue>& walk = per_clause[smallest];
  absl::flat_hash_set<Queue> walked;
  std::map<int64_t, std::string> host_names;
  std::set<MessageKey> looked_at;
  *exhausted = true;
  for (size_t k = 0; k < walk.size();) {
    if (found_.size() >= want) {
      *exhausted = false;
      break;
    }
    std::vector<Queue> day_queues;
    for (const int64_t day = walk[k].day; k < walk.size() && walk[k].day == day; ++k) {
      Queue q{walk[k].host_id, walk[k].queue_id};
      if (!walked.insert(q).second) continue;
      host_names[q.first] = walk[k].host;
      day_queues.push_back(std::move(q));
    }
    MAILLENS_ASSIGN_OR_RETURN(std::vector<MessageInfo> instances, store_->InstancesOf(day_queues));
    std::vector<MessageInfo> fresh;
    std::vector<int64_t> trace_ids;
    for (MessageInfo& m : instances) {
      if (m.first_us >= query_.until_us) continue;  // no line of it is in the window
      const MessageKey key = m.trace_id != 0 ? MessageKey{kTraceKey, m.trace_id, 0}
                                             : MessageKey{kInstanceKey, m.id, 0};
      if (!looked_at.insert(key).second) continue;
      if (m.trace_id != 0) trace_ids.push_back(m.trace_id);
      fresh.push_back(std::move(m));
    }
    MAILLENS_ASSIGN_OR_RETURN(std::vector<Store::TraceQueue> members,
                              store_->QueuesOfTraces(trace_ids));
    absl::flat_hash_map<int64_t, std::vector<Queue>> of_trace;
    for (Store::TraceQueue& q : members) {
      of_trace[q.trace_id].push_back({q.host_id, std::move(q.queue_id)});
    }
    for (const MessageInfo& m : fresh) {
      const std::vector<Queue> alone_queue = {{m.host_id, m.queue_id}};
      const auto it = of_trace.find(m.trace_id);
      if (in_every_clause(it != of_trace.end() ? it->second : alone_queue)) {
        MAILLENS_RETURN_IF_ERROR(ConsiderInstance(host_names[m.host_id], m));
      }
    }
  }
  return true;
}

absl::StatusOr<bool> MessageSearch::Intersect(const std::vector<size_t>& indexed, bool* exhausted,
                                              std::vector<std::string>* notices) {
  // Each clause's index candidates in the window: a superset of its matching lines. A message
  // that matches has a line among each clause's, so it is an instance (or a trace of
  // instances) holding, for every clause, some candidate's (host, queue ID); a lone line that
  // matches is a candidate of every clause. Those few are then evaluated whole, as always.
  std::vector<std::vector<StoredLine>> per_clause;
  for (size_t i : indexed) {
    SearchQuery q;
    q.since_us = query_.since_us;
    q.until_us = query_.until_us;
    q.words = clauses_.clauses()[i].words;
    q.terms = clauses_.clauses()[i].terms;
    q.unchecked = true;
    q.oldest_first = query_.oldest_first;  // the walk below goes in the answer's order
    MAILLENS_ASSIGN_OR_RETURN(SearchResult r, store_->Search(q));
    if (r.lines.size() > kMaxCandidateLines) return false;
    if (per_clause.empty()) *notices = r.notices;
    per_clause.push_back(std::move(r.lines));
  }
  size_t smallest = 0;
  for (size_t i = 1; i < per_clause.size(); ++i) {
    if (per_clause[i].size() < per_clause[smallest].size()) smallest = i;
  }
  using Pair = std::pair<std::string, std::string>;  // (host, queue ID)
  std::vector<std::set<Pair>> pairs(per_clause.size());
  std::vector<std::set<std::pair<int64_t, int64_t>>> ids(per_clause.size());  // (day, id)
  for (size_t i = 0; i < per_clause.size(); ++i) {
    if (i == smallest) continue;
    for (const StoredLine& line : per_clause[i]) {
      if (!line.queue_id.empty()) pairs[i].insert({line.host, line.queue_id});
      ids[i].insert({line.day, line.id});
    }
  }
  // Whether every other clause has a candidate line on one of `instances`.
  auto in_every_clause = [&](const std::vector<Pair>& instances) {
    for (size_t i = 0; i < per_clause.size(); ++i) {
      if (i == smallest) continue;
      bool any = false;
      for (const Pair& p : instances) any = any || pairs[i].count(p) > 0;
      if (!any) return false;
    }
    return true;
  };
  std::set<MessageKey> looked_at;
  const uint64_t want = query_.limit + kCountBeyondLimit;
  *exhausted = true;
  for (const StoredLine& line : per_clause[smallest]) {  // newest first
    if (found_.size() >= want) {
      *exhausted = false;
      break;
    }
    std::optional<MessageInfo> ref;
    if (!line.queue_id.empty()) {
      // A failed lookup leaves the line on its own, as Consider does.
      auto at = store_->InstanceAt(line.host, line.queue_id, line.time_us);
      if (at.ok()) ref = *at;
    }
    if (!ref.has_value()) {
      bool everywhere = true;
      for (size_t i = 0; i < per_clause.size(); ++i) {
        everywhere = everywhere && (i == smallest || ids[i].count({line.day, line.id}) > 0);
      }
      if (everywhere) MAILLENS_RETURN_IF_ERROR(Consider(line));
      continue;
    }
    const MessageKey key = ref->trace_id != 0 ? MessageKey{kTraceKey, ref->trace_id, 0}
                                              : MessageKey{kInstanceKey, ref->id, 0};
    if (!looked_at.insert(key).second) continue;
    std::vector<Pair> instances;
    if (ref->trace_id != 0) {
      MAILLENS_ASSIGN_OR_RETURN(instances, store_->TraceInstances(ref->trace_id));
    } else {
      instances.push_back({line.host, line.queue_id});
    }
    if (in_every_clause(instances)) MAILLENS_RETURN_IF_ERROR(Consider(line));
  }
  return true;
}

absl::StatusOr<SearchAnswer> MessageSearch::Run(bool with_traces) {
  SearchAnswer answer;
  // The driver: the clause the index narrows best; none for a query without clauses.
  SearchQuery driver;
  driver.since_us = query_.since_us;
  driver.until_us = query_.until_us;
  driver.oldest_first = query_.oldest_first;
  const auto& clauses = clauses_.clauses();
  single_ = clauses.size() <= 1;
  std::vector<size_t> indexed;
  for (size_t i = 0; i < clauses.size(); ++i) {
    if (DriverCost(clauses[i]) < 30) indexed.push_back(i);
  }
  bool intersected = false, exhausted = false;
  if (indexed.size() >= 2) {
    MAILLENS_ASSIGN_OR_RETURN(intersected,
                              IntersectQueues(indexed, &exhausted, &answer.result.notices));
  }
  if (indexed.size() >= 2 && !intersected) {
    MAILLENS_ASSIGN_OR_RETURN(intersected, Intersect(indexed, &exhausted, &answer.result.notices));
  }
  if (!clauses.empty() && !intersected) {
    size_t best = 0;
    for (size_t i = 1; i < clauses.size(); ++i) {
      if (DriverCost(clauses[i]) < DriverCost(clauses[best])) best = i;
    }
    // Among clauses the index narrows well (an address, an ID), the one with the fewest
    // lines drives: from:A to:B is cheap when either is rare. The index counts them.
    uint64_t fewest = UINT64_MAX;
    for (size_t i = 0; i < clauses.size() && clauses.size() > 1; ++i) {
      if (DriverCost(clauses[i]) >= 30) continue;
      SearchQuery probe = driver;
      probe.words = clauses[i].words;
      probe.terms = clauses[i].terms;
      probe.limit = 1;
      MAILLENS_ASSIGN_OR_RETURN(SearchResult counted, store_->Search(probe));
      if (counted.total < fewest) {
        fewest = counted.total;
        best = i;
      }
    }
    driver.words = clauses[best].words;
    driver.terms = clauses[best].terms;
  }
  const uint64_t want = query_.limit + kCountBeyondLimit;
  // Where the paging stopped: the time of the last candidate considered (the oldest; the
  // newest with oldest_first).
  int64_t oldest_examined = INT64_MAX, newest_examined = INT64_MIN;
  std::set<std::pair<int64_t, int64_t>> seen;  // (day, id) of candidates already considered
  size_t page = kPageLines;
  size_t examined = 0;
  bool first = true;
  while (!intersected && found_.size() < want && examined < kMaxCandidateLines) {
    driver.limit = page;
    MAILLENS_ASSIGN_OR_RETURN(SearchResult candidates, store_->Search(driver));
    if (first) answer.result.notices = candidates.notices;
    first = false;
    size_t fresh = 0;
    for (const StoredLine& line : candidates.lines) {
      if (!seen.insert({line.day, line.id}).second) continue;
      ++fresh;
      ++examined;
      oldest_examined = std::min(oldest_examined, line.time_us);
      newest_examined = std::max(newest_examined, line.time_us);
      MAILLENS_RETURN_IF_ERROR(Consider(line));
      if (found_.size() >= want || examined >= kMaxCandidateLines) break;
    }
    const bool last_page =
        candidates.lines.size() < page ||
        (!candidates.total_is_lower_bound && candidates.total <= candidates.lines.size());
    if (last_page && found_.size() < want && examined < kMaxCandidateLines) {
      exhausted = true;
      break;
    }
    if (found_.size() >= want || examined >= kMaxCandidateLines) break;
    if (fresh == 0) {
      page *= 2;  // more lines share the oldest time stamp than a page holds
      continue;
    }
    // The next page: lines at or before the oldest seen (those already seen are skipped).
    if (query_.oldest_first) {
      driver.since_us = candidates.lines.back().time_us;
    } else {
      driver.until_us = candidates.lines.back().time_us + 1;
    }
  }
  // Newest message first, by the newest line that matched a clause; or oldest first, by the
  // oldest such line. Messages of one time are ordered by their first such line's host and
  // text, not by the order they were stored or found in, so that the same logs give the same
  // rows (and --limit the same cut) whichever was imported first.
  for (Found& f : found_) {
    for (const StoredLine& line : f.evidence) {
      std::string key = absl::StrCat(line.host, "\n", line.raw);
      if (f.tie.empty() || key < f.tie) f.tie = std::move(key);
    }
  }
  if (query_.oldest_first) {
    std::stable_sort(found_.begin(), found_.end(), [](const Found& a, const Found& b) {
      return std::tie(a.oldest_us, a.tie) < std::tie(b.oldest_us, b.tie);
    });
  } else {
    std::stable_sort(found_.begin(), found_.end(), [](const Found& a, const Found& b) {
      return a.newest_us != b.newest_us ? a.newest_us > b.newest_us : a.tie < b.tie;
    });
  }
  answer.result.total = found_.size();
  answer.result.total_is_lower_bound = !exhausted;
  if (!exhausted && found_.size() < want) {
    answer.result.notices.push_back(absl::StrCat(
        "the search stopped after examining ", examined,
        " candidate lines, so older matches may be missing: narrow it with since:/until: or a "
        "more specific term"));
  }
  if (found_.empty() && query_.since_us != INT64_MIN) {
    // Said, or a window typed in the wrong year (a syslog stamp is read as this year's) looks
    // like "nothing happened".
    std::vector<int64_t> days = store_->Days();
    if (!days.empty() && query_.since_us >= DayStartUs(days.back()) + 86400LL * 1000000) {
      answer.result.notices.push_back(
          absl::StrCat("the window starts after the newest stored day (", days.back(), ")"));
    }
  }
  const size_t shown = std::min<size_t>(found_.size(), query_.limit);
  for (size_t i = 0; i < shown && single_; ++i) {
    Found& f = found_[i];
    if (f.trace_id == 0 || traces_.count(f.trace_id)) continue;
    auto trace = store_->TraceById(f.trace_id);
    if (!trace.ok()) continue;
    // Lines of a shown message beyond where the paging stopped (older; newer with
    // oldest_first) were not candidates yet: read them from the message itself.
    int64_t first_us = INT64_MAX, last_us = INT64_MIN;
    for (const MessageInfo& m : trace->messages) {
      first_us = std::min(first_us, m.first_us);
      last_us = std::max(last_us, m.end_us.value_or(m.last_us));
    }
    const bool beyond =
        query_.oldest_first ? last_us >= newest_examined : first_us <= oldest_examined;
    if (!exhausted && beyond) {
      Found complete;
      MAILLENS_ASSIGN_OR_RETURN(bool matches, Evaluate(trace->messages, &complete));
      if (matches) f.evidence = std::move(complete.evidence);
    }
    traces_.emplace(f.trace_id, std::move(*trace));
  }
  for (size_t i = 0; i < shown; ++i) {
    Found& f = found_[i];
    std::sort(f.evidence.begin(), f.evidence.end(), [&](const StoredLine& a, const StoredLine& b) {
      if (query_.oldest_first) {
        return std::tie(a.time_us, a.day, a.id) < std::tie(b.time_us, b.day, b.id);
      }
      return std::tie(a.time_us, a.day, a.id) > std::tie(b.time_us, b.day, b.id);
    });
    for (StoredLine& line : f.evidence) {
      answer.result.lines.push_back(std::move(line));
      answer.trace_ids.push_back(f.trace_id);
    }
    if (with_traces && f.trace_id != 0) {
      auto it = traces_.find(f.trace_id);
      if (it != traces_.end()) answer.traces.emplace(f.trace_id, it->second);
    }
  }
  for (std::string& notice : ArchiveReadNotices(*store_)) {
    if (std::find(answer.result.notices.begin(), answer.result.notices.end(), notice) ==
        answer.result.notices.end()) {
      answer.result.notices.push_back(std::move(notice));
    }
  }
  return answer;
}

}  // namespace

absl::StatusOr<SearchAnswer> SearchMessages(Store* store, const SearchQuery& query,
                                            bool with_traces) {
  return MessageSearch(store, query).Run(with_traces);
}

}  // namespace maillens::store
