#include "store/correlator.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/parser.h"
#include "core/scan.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace maillens::store {
namespace {

constexpr char kSelectByKey[] =
    "SELECT id FROM messages WHERE queue_id = ?3 AND host_id = ?1 AND instance = ?2 "
    "ORDER BY first_us";
constexpr char kSelectMessage[] =
    "SELECT m.id, m.trace_id, m.host_id, h.name, m.instance, m.queue_id, m.first_us, m.last_us, "
    "m.end_us, m.message_id, m.sender, m.size, m.nrcpt, m.client, m.sasl_username, m.origin, "
    "m.disposition FROM messages m JOIN hosts h ON h.id = m.host_id WHERE m.id = ?";
// A new instance is its own trace: its id is chosen here (the correlator is the only writer of
// messages), so that one INSERT writes it whole.
constexpr char kInsertMessage[] =
    "INSERT INTO messages (id, trace_id, host_id, instance, queue_id, first_us, last_us) "
    "VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?5)";
constexpr char kSelectLastMessageId[] = "SELECT coalesce(max(id), 0) FROM messages";
constexpr char kSelectHostNameById[] = "SELECT name FROM hosts WHERE id = ?";
constexpr char kUpdateMessage[] =
    "UPDATE messages SET first_us = ?, last_us = ?, end_us = ?, message_id = ?, sender = ?, "
    "size = ?, nrcpt = ?, client = ?, sasl_username = ?, origin = ?, disposition = ? "
    "WHERE id = ?";
// The same when first_us and message_id are as stored: SQLite rewrites the entries of every
// index on a column an UPDATE sets, changed or not, and those two are in four of the five.
// Most writes of an instance only move last_us or add a detail.
constexpr char kUpdateMessageDetails[] =
    "UPDATE messages SET last_us = ?, end_us = ?, sender = ?, size = ?, nrcpt = ?, client = ?, "
    "sasl_username = ?, origin = ?, disposition = ? WHERE id = ?";
constexpr char kUpsertRecipient[] =
    "INSERT INTO recipients (message, recipient, orig_to, status, dsn, relay, reply, "
    "next_queue_id, next_form, time_us, delay, delays) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?) "
    "ON CONFLICT (message, recipient, orig_to) DO UPDATE SET "
    "attempts = attempts + 1, "
    "status = CASE WHEN excluded.time_us >= time_us THEN excluded.status ELSE status END, "
    "dsn = CASE WHEN excluded.time_us >= time_us THEN excluded.dsn ELSE dsn END, "
    "relay = CASE WHEN excluded.time_us >= time_us THEN excluded.relay ELSE relay END, "
    "reply = CASE WHEN excluded.time_us >= time_us THEN excluded.reply ELSE reply END, "
    "next_queue_id = CASE WHEN excluded.time_us >= time_us THEN excluded.next_queue_id "
    "ELSE next_queue_id END, "
    "next_form = CASE WHEN excluded.time_us >= time_us THEN excluded.next_form "
    "ELSE next_form END, "
    "delay = CASE WHEN excluded.time_us >= time_us THEN excluded.delay ELSE delay END, "
    "delays = CASE WHEN excluded.time_us >= time_us THEN excluded.delays ELSE delays END, "
    "time_us = MAX(time_us, excluded.time_us)";
constexpr char kExpireRecipients[] =
    "UPDATE recipients SET status = 'expired' WHERE message = ? AND status = 'deferred'";
// Recipients still waiting (deferred; SOFTBOUNCE is a bounce soft_bounce turned into a
// deferral) when the administrator deleted the message (postsuper -d).
constexpr char kDeleteRecipients[] =
    "UPDATE recipients SET status = 'deleted' WHERE message = ? AND "
    "status IN ('deferred', 'softbounce', 'SOFTBOUNCE')";
constexpr char kCountDeletedRecipients[] =
    "SELECT coalesce(sum(status = 'deleted'), 0), coalesce(sum(status != 'deleted'), 0) "
    "FROM recipients WHERE message = ?";
constexpr char kSelectCandidates[] =
    "SELECT id, host_id FROM messages WHERE queue_id = ? AND first_us >= ? AND first_us <= ? "
    "AND id != ?";
constexpr char kInsertPending[] =
    "INSERT INTO pending (from_message, from_host, queue_id, relay_host, relay_ip, same_host, "
    "kind, time_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kSelectPending[] =
    "SELECT id, from_message, from_host, relay_host, relay_ip, same_host, kind, time_us FROM "
    "pending "
    "WHERE queue_id = ? AND time_us >= ? AND time_us <= ?";
constexpr char kDeletePending[] = "DELETE FROM pending WHERE id = ?";
// Hops that a site change may settle: not bounces, not tied to their host by the reply's form.
constexpr char kSelectPendingSince[] =
    "SELECT id, from_message, from_host, queue_id, relay_host, relay_ip, kind, time_us FROM "
    "pending WHERE time_us >= ? AND same_host = 0 AND kind != 'bounce' ORDER BY id";
// Re-injections decided by the loopback rule (same_host = 0: not by the reply's form).
constexpr char kSelectLoopbackReinjects[] =
    "SELECT from_message, to_message, time_us, from_host, relay_host, relay_ip FROM links "
    "WHERE kind = 'reinject' AND same_host = 0 AND time_us >= ?";
// Hosts and their declared names: a change is what lets a pending hop find its far side.
constexpr char kSelectSite[] =
    "SELECT (SELECT coalesce(max(id), 0) FROM hosts) || ' ' || (SELECT coalesce(group_concat("
    "name || '=' || host_id, ' '), '') FROM (SELECT name, host_id FROM host_names ORDER BY name))";
constexpr char kSelectNewestFirst[] = "SELECT coalesce(max(first_us), 0) FROM messages";
constexpr char kSelectHostName[] = "SELECT host_id FROM host_names WHERE name = ?";
constexpr char kSelectHostIdByName[] = "SELECT id FROM hosts WHERE lower(name) = ?";
constexpr char kInsertLink[] =
    "INSERT OR IGNORE INTO links (from_message, to_message, kind, time_us, from_host, "
    "relay_host, relay_ip, same_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kSelectIncoming[] =
    "SELECT from_message, kind, time_us, from_host, relay_host, relay_ip, same_host FROM links "
    "WHERE to_message = ?";
constexpr char kDeleteLink[] = "DELETE FROM links WHERE from_message = ? AND to_message = ?";
constexpr char kLinksFrom[] = "SELECT to_message FROM links WHERE from_message = ?";
constexpr char kLinksTo[] = "SELECT from_message FROM links WHERE to_message = ?";
constexpr char kSetTrace[] = "UPDATE messages SET trace_id = ? WHERE id = ?";
constexpr char kSelectTraceOf[] = "SELECT trace_id FROM messages WHERE id = ?";
constexpr char kMergeTraces[] = "UPDATE messages SET trace_id = ? WHERE trace_id = ?";

// How long after a message's `removed` its expiry line is still taken for its own.
constexpr int64_t kLateExpiryUs = 60 * 1000000LL;

// Rebuild.
constexpr char kSelectWatermark[] = "SELECT correlated_id FROM partitions WHERE day = ?";
constexpr char kDeleteParkedHop[] =
    "DELETE FROM pending WHERE queue_id = ? AND time_us = ? AND from_message = ?";
constexpr char kDeleteLinksFrom[] = "DELETE FROM links WHERE from_message = ?";
constexpr char kDeleteLinksTo[] = "DELETE FROM links WHERE to_message = ?";
constexpr char kDeleteRecipientsOf[] = "DELETE FROM recipients WHERE message = ?";
constexpr char kDeleteMessage[] = "DELETE FROM messages WHERE id = ?";
// Rebuilds one observed line may cause: the first, and one for each instance beyond the
// span that its replay then meets (the span grows each time, so a few suffice).
constexpr int kMaxRebuilds = 8;

bool IsLoopback(std::string_view ip) {
  return core::StartsWith(ip, "127.") || ip == "::1" || core::StartsWith(ip, "::ffff:127.");
}

// Postfix instance from the program: "postfix-dmz/submission/smtpd" -> "postfix-dmz".
// Two known Message-IDs that differ. An empty one is unknown, not a contradiction.
bool Contradicts(std::string_view a, std::string_view b) {
  return !a.empty() && !b.empty() && a != b;
}

std::string_view InstanceOf(std::string_view program) {
  return program.substr(0, program.find('/'));
}

// "postfix/cleanup", "postfix-dmz/cleanup": header/body checks and milters at end of data.
bool IsCleanup(std::string_view program) {
  constexpr std::string_view kCleanup = "/cleanup";
  return program.size() >= kCleanup.size() &&
         program.substr(program.size() - kCleanup.size()) == kCleanup;
}

// Stages at which smtpd's refusal of a message that has a queue ID ends it: the whole
// message is refused (smtpd_data_restrictions, smtpd_end_of_data_restrictions, a before-queue
// filter's proxy-reject, a milter), and smtpd discards the queue file without a `removed`
// line. After END-OF-MESSAGE smtpd always resets the transaction. After a refused DATA or
// BDAT clients send RSET or QUIT, which discard it; one that sent DATA again on the same
// transaction and got through would have its message's later lines start a new instance
// (no client= line): rarer, and less wrong than a refused message "still queued" for ever.
// A refusal at RCPT refuses one recipient.
bool EndsTheTransaction(std::string_view stage) {
  return stage == "END-OF-MESSAGE" || stage == "DATA" || stage == "BDAT";
}

// Removes from a trace the refusals (status "rejected") of a recipient by one of our
// instances that another of our instances handed the message to, when the sending one logged
// a status for that recipient. One of our hosts refusing a recipient at RCPT (or the message
// at the end of data) from another of our hosts is not the recipient's outcome: the sending
// hop's status= line is (bounced after a 5xx, deferred after a 4xx, sent on a later try).
// Kept, the refusal -- further along the hops -- read as the recipient's final status:
// "rejected" for mail the site had accepted and then bounced. Decided when the trace is read,
// so the order the two hosts' lines arrive in does not matter; a refusal of a client that is
// not one of our hosts, or whose sending hop's line is not stored (yet), stays.
void DropRefusalsOfOurOwnHops(Trace* trace) {
  // Hops that handed their recipients over to another instance of ours (a relay, a content
  // filter's re-injection); a bounce notice is a message of its own.
  std::map<int64_t, std::vector<int64_t>> senders;  // receiving message -> sending messages
  for (const LinkInfo& l : trace->links) {
    if (l.kind != "bounce") senders[l.to].push_back(l.from);
  }
  if (senders.empty()) return;
  std::set<std::pair<int64_t, std::string>> logged;  // (message, recipient): a status= line
  for (const RecipientInfo& r : trace->recipients) {
    if (r.status != "rejected") logged.emplace(r.message, absl::AsciiStrToLower(r.recipient));
  }
  auto& rows = trace->recipients;
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [&](const RecipientInfo& r) {
                              if (r.status != "rejected") return false;
                              auto from = senders.find(r.message);
                              if (from == senders.end()) return false;
                              const std::string rcpt = absl::AsciiStrToLower(r.recipient);
                              for (int64_t sender : from->second) {
                                if (logged.count({sender, rcpt})) return true;
                              }
                              return false;
                            }),
             rows.end());
}

// The lines the correlator takes: Postfix's, with a queue ID.
bool Correlates(const core::Event& ev) {
  return core::StartsWith(ev.program, "postfix") &&
         (ev.queue_id_form == core::QueueIdForm::kShort ||
          ev.queue_id_form == core::QueueIdForm::kLong);
}

// Names an observed line by what the store keeps of it (host, time, text): a line read back
// from the store hashes as it did when observed.
uint64_t LineHash(int64_t host_id, const core::Event& ev, int64_t t) {
  uint64_t h = std::hash<std::string_view>{}(ev.message);
  for (uint64_t v : {static_cast<uint64_t>(host_id), static_cast<uint64_t>(t),
                     static_cast<uint64_t>(ev.pid), std::hash<std::string_view>{}(ev.program)}) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  }
  return h;
}

int64_t ToInt(std::string_view s, int64_t fallback) {
  int64_t v;
  return core::ParseInt(s, &v) ? v : fallback;
}

}  // namespace

Correlator::Correlator(Database* catalog, CorrelatorOptions options)
    : catalog_(catalog), options_(options) {}

void Correlator::Reset() {
  ClearCache();
  batch_seen_.clear();
  tangled_.clear();
  // A rolled-back transaction may have held a Recheck: look at the site afresh.
  site_.clear();
  site_checked_ = false;
}

void Correlator::ClearCache() {
  by_key_.clear();
  instances_.clear();
  dirty_.clear();
  next_id_ = 0;  // a rolled-back transaction gives its ids back
}

absl::StatusOr<Correlator::Instance*> Correlator::LoadInstance(int64_t id) {
  auto it = instances_.find(id);
  if (it != instances_.end()) return it->second.get();
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectMessage));
  select->Bind(1, id);
  MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
  if (step != Statement::StepResult::kRow) {
    return absl::NotFoundError(absl::StrCat("message ", id, " not in catalog"));
  }
  auto inst = std::make_unique<Instance>();
  MessageInfo& m = inst->info;
  m.id = select->ColumnInt(0);
  m.trace_id = select->ColumnInt(1);
  m.host_id = select->ColumnInt(2);
  m.host = std::string(select->ColumnText(3));
  m.instance = std::string(select->ColumnText(4));
  m.queue_id = std::string(select->ColumnText(5));
  m.first_us = select->ColumnInt(6);
  m.last_us = select->ColumnInt(7);
  if (!select->ColumnIsNull(8)) m.end_us = select->ColumnInt(8);
  m.message_id = std::string(select->ColumnText(9));
  m.has_sender = !select->ColumnIsNull(10);
  m.sender = std::string(select->ColumnText(10));
  m.size = select->ColumnInt(11);
  m.nrcpt = select->ColumnInt(12);
  m.client = std::string(select->ColumnText(13));
  m.sasl_username = std::string(select->ColumnText(14));
  m.origin = std::string(select->ColumnText(15));
  m.disposition = std::string(select->ColumnText(16));
  inst->stored_first_us = m.first_us;
  inst->stored_message_id = m.message_id;
  Instance* raw = inst.get();
  instances_[id] = std::move(inst);
  return raw;
}

void Correlator::MarkDirty(Instance* inst) {
  if (inst->dirty) return;
  inst->dirty = true;
  dirty_.push_back(inst->info.id);
}

absl::StatusOr<std::string> Correlator::HostName(int64_t host_id) {
  auto it = host_names_.find(host_id);
  if (it != host_names_.end()) return it->second;
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectHostNameById));
  select->Bind(1, host_id);
  MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
  if (step != Statement::StepResult::kRow) {
    return absl::NotFoundError(absl::StrCat("host ", host_id, " not in catalog"));
  }
  std::string name(select->ColumnText(0));
  select->Reset();
  host_names_[host_id] = name;
  return name;
}

absl::StatusOr<Correlator::Instance*> Correlator::FindOrCreate(
    int64_t host_id, std::string_view inst_name, std::string_view queue_id, int64_t t,
    bool is_removed, bool is_expiry, const StartLine* start, bool* created) {
  *created = false;
  Key key{host_id, std::string(inst_name), std::string(queue_id)};
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectByKey));
    select->Bind(1, host_id).BindText(2, inst_name).BindText(3, queue_id);
    std::vector<int64_t> ids;
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
      if (step == Statement::StepResult::kDone) break;
      ids.push_back(select->ColumnInt(0));
    }
    it = by_key_.emplace(key, std::move(ids)).first;
  }
  std::vector<int64_t>& ids = it->second;
  // The instance that started last at or before t (ids are kept in first_us order).
  Instance* before = nullptr;
  Instance* after = nullptr;
  for (int64_t id : ids) {
    MAILLENS_ASSIGN_OR_RETURN(Instance * cand, LoadInstance(id));
    if (cand->info.first_us <= t) {
      before = cand;
    } else if (after == nullptr) {
      after = cand;
    }
  }
  // A start line (smtpd's client=, pickup's uid=) is the first line a message has on its
  // host, so it never continues an instance that began earlier, whatever state that one was
  // left in: an expiry logged after its `removed`, a truncated log, a cleanup reject. It
  // joins only an instance that begins at the same time and has no start line of its own
  // (lines of one second in another order), or is the same start line seen again.
  auto takes_start = [&](const MessageInfo& m) {
    if (m.origin.empty()) return m.first_us == t;
    return m.first_us == t && m.origin == start->origin && m.client == start->client;
  };
  if (before != nullptr) {
    const MessageInfo& m = before->info;
    bool open_at_t = !m.end_us.has_value() || t <= *m.end_us;
    bool joins =
        start == nullptr ? open_at_t && t - m.last_us <= options_.instance_gap_us : takes_start(m);
    // qmgr's expiry of a message logged just after its `removed` (it has been seen in that
    // order) is still that message's: nothing else can be, as a new message with the ID
    // would have started with its own start line.
    bool late_expiry = is_expiry && m.end_us.has_value() && t > *m.end_us &&
                       t - *m.end_us <= kLateExpiryUs && m.disposition != "expired";
    if (joins || late_expiry) return before;
  }
  // A line earlier than a known instance's first (backfill, or out-of-order files) belongs to
  // it unless the previous instance still covers it or it ends an earlier life of the ID, or
  // the known instance has its own start line (then this line is of an earlier message).
  // Without a start line on either side this is a guess: the line may be of an earlier life
  // of a reused ID. A later line that shows so (this one's `removed`, with the instance
  // holding lines well after it; the later life's start line) has the span rebuilt in time
  // order (CheckBoundary, Untangle).
  if (after != nullptr && !is_removed && after->info.first_us - t <= options_.instance_gap_us &&
      (start == nullptr || after->info.origin.empty())) {
    after->info.first_us = t;
    MarkDirty(after);
    std::sort(ids.begin(), ids.end(), [this](int64_t a, int64_t b) {
      return instances_[a]->info.first_us < instances_[b]->info.first_us;
    });
    return after;
  }
  if (next_id_ == 0) {
    MAILLENS_ASSIGN_OR_RETURN(Statement * last, catalog_->Cached(kSelectLastMessageId));
    MAILLENS_ASSIGN_OR_RETURN(auto step, last->Step());
    next_id_ = (step == Statement::StepResult::kRow ? last->ColumnInt(0) : 0) + 1;
    last->Reset();
  }
  const int64_t id = next_id_;
  MAILLENS_ASSIGN_OR_RETURN(Statement * insert, catalog_->Cached(kInsertMessage));
  insert->Bind(1, id).Bind(2, host_id).BindText(3, inst_name).BindText(4, queue_id).Bind(5, t);
  MAILLENS_RETURN_IF_ERROR(insert->Run());
  ++next_id_;
  // As LoadInstance would read it back.
  auto fresh = std::make_unique<Instance>();
  MessageInfo& m = fresh->info;
  m.id = id;
  m.trace_id = id;
  m.host_id = host_id;
  MAILLENS_ASSIGN_OR_RETURN(m.host, HostName(host_id));
  m.instance = std::string(inst_name);
  m.queue_id = std::string(queue_id);
  m.first_us = t;
  m.last_us = t;
  fresh->stored_first_us = t;
  Instance* fresh_instance = fresh.get();
  instances_[id] = std::move(fresh);
  ids.push_back(id);
  std::sort(ids.begin(), ids.end(), [this](int64_t a, int64_t b) {
    return instances_[a]->info.first_us < instances_[b]->info.first_us;
  });
  *created = true;
  return fresh_instance;
}

absl::Status Correlator::Observe(int64_t host_id, const core::Event& ev, int64_t t) {
  // Once per batch, whatever its lines: a host or name declared since may settle pending hops.
  if (!site_checked_) {
    site_checked_ = true;
    MAILLENS_RETURN_IF_ERROR(CheckSite());
  }
  if (ev.kind == core::Kind::kDovecotDelivery) return ObserveMailboxDelivery(host_id, ev, t);
  if (!Correlates(ev)) return absl::OkStatus();
  batch_seen_.push_back(LineHash(host_id, ev, t));
  MAILLENS_RETURN_IF_ERROR(ObserveLine(host_id, ev, t));
  return Untangle();
}

absl::Status Correlator::ObserveLine(int64_t host_id, const core::Event& ev, int64_t t) {
  using core::Field;
  using core::Kind;
  // postsuper -d: the administrator deleted the message, whatever its recipients waited for.
  const bool is_deletion = ev.kind == Kind::kPostsuper && ev.Get(Field::kDetail) == "removed";
  bool is_removed = ev.kind == Kind::kRemoved || is_deletion;
  StartLine start_line;
  const StartLine* start = nullptr;
  if (ev.kind == Kind::kClient) {
    start_line = {"smtpd", ev.Get(Field::kClient)};
    start = &start_line;
  } else if (ev.kind == Kind::kPickup) {
    start_line = {"pickup", ""};
    start = &start_line;
  }
  bool created = false;
  MAILLENS_ASSIGN_OR_RETURN(
      Instance * inst, FindOrCreate(host_id, InstanceOf(ev.program), ev.queue_id, t, is_removed,
                                    ev.kind == Kind::kExpired, start, &created));
  MessageInfo& m = inst->info;
  const std::optional<int64_t> end_before = m.end_us;
  // Pending hops into this instance are looked at after the line's facts are taken in: a
  // re-injection over loopback is recognised by its arrival through smtpd (the client= line).
  bool look_at_pending = created;
  MarkDirty(inst);
  m.last_us = std::max(m.last_us, t);
  m.first_us = std::min(m.first_us, t);
  if (is_removed && (!m.end_us || *m.end_us < t)) {
    m.end_us = t;
    MAILLENS_RETURN_IF_ERROR(CheckIncoming(inst));
  }
  switch (ev.kind) {
    case Kind::kClient:
      m.client = std::string(ev.Get(Field::kClient));
      if (ev.Has(Field::kSaslUsername)) m.sasl_username = std::string(ev.Get(Field::kSaslUsername));
      if (m.origin.empty()) {
        m.origin = "smtpd";
        look_at_pending = true;  // lines out of order: it may be a re-injection after all
      }
      break;
    case Kind::kPickup:
      m.origin = "pickup";
      if (ev.Has(Field::kFrom)) {
        m.sender = std::string(ev.Get(Field::kFrom));
        m.has_sender = true;
      }
      break;
    case Kind::kMessageId:
      if (ev.Has(Field::kMessageId) && m.message_id.empty()) {
        m.message_id = std::string(ev.Get(Field::kMessageId));
        if (!m.message_id.empty()) {
          MAILLENS_RETURN_IF_ERROR(CheckIncoming(inst));
          look_at_pending = true;
        }
      }
      break;
    case Kind::kQueued:
      if (ev.Has(Field::kFrom)) {
        m.sender = std::string(ev.Get(Field::kFrom));
        m.has_sender = true;
      }
      m.size = ToInt(ev.Get(Field::kSize), m.size);
      m.nrcpt = ToInt(ev.Get(Field::kNrcpt), m.nrcpt);
      break;
    case Kind::kDelivery:
      MAILLENS_RETURN_IF_ERROR(ObserveDelivery(inst, ev, t));
      break;
    case Kind::kExpired: {
      m.disposition = "expired";
      MAILLENS_ASSIGN_OR_RETURN(Statement * expire, catalog_->Cached(kExpireRecipients));
      expire->Bind(1, m.id);
      MAILLENS_RETURN_IF_ERROR(expire->Run());
      break;
    }
    case Kind::kPostsuper:
      if (is_deletion) MAILLENS_RETURN_IF_ERROR(MarkDeleted(inst));
      break;
    case Kind::kNotification:
      if (ev.Has(Field::kNoticeQueueId)) {
        Hop hop;
        hop.from = m.id;
        hop.from_host = host_id;
        hop.queue_id = std::string(ev.Get(Field::kNoticeQueueId));
        hop.kind = "bounce";
        hop.same_host = true;
        hop.time_us = t;
        MAILLENS_RETURN_IF_ERROR(TryLinkForward(hop));
      }
      break;
    case Kind::kReject:
      if (IsCleanup(ev.program) || EndsTheTransaction(ev.Get(Field::kStage))) {
        m.disposition = "rejected";
        MAILLENS_RETURN_IF_ERROR(EndRefused(inst, ev, t));
      } else if (ev.Get(Field::kStage) == "RCPT" && ev.Has(Field::kTo)) {
        MAILLENS_RETURN_IF_ERROR(RefuseRecipient(m, ev, "rejected", t));
      } else {
        m.disposition = "rejected";
      }
      break;
    case Kind::kCheckAction: {
      std::string_view action = ev.Get(Field::kAction);
      if (action == "hold" || action == "milter-hold") m.disposition = "held";
      if (action == "discard" || action == "milter-discard") {
        m.disposition = "discarded";
        // smtpd's DISCARD (at RCPT, say) is logged before the message is received, so more
        // of its lines follow; cleanup's is the message's last line.
        if (IsCleanup(ev.program)) MAILLENS_RETURN_IF_ERROR(EndRefused(inst, ev, t));
      }
      break;
    }
    default:
      break;
  }
  if (look_at_pending) MAILLENS_RETURN_IF_ERROR(OnCreated(inst));
  // Lines of a refusal end the message as `removed` does (EndRefused).
  const bool ends = is_removed || m.end_us != end_before;
  if (start != nullptr || ends) {
    MAILLENS_RETURN_IF_ERROR(
        CheckBoundary(Key{host_id, std::string(InstanceOf(ev.program)), std::string(ev.queue_id)},
                      inst, t, ends));
  }
  return absl::OkStatus();
}

absl::Status Correlator::CheckBoundary(const Key& key, const Instance* placed, int64_t t,
                                       bool ends) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return absl::OkStatus();
  int64_t from = t;
  int64_t until = t;
  bool tangled = false;
  for (int64_t id : it->second) {
    MAILLENS_ASSIGN_OR_RETURN(Instance * inst, LoadInstance(id));
    const MessageInfo& m = inst->info;
    // A queue ID names one queue file at a time: an instance other than the line's that was
    // alive before and after the line holds lines of two lives. So does the line's own when
    // it holds lines well after the end the line gives it (an expiry logged just after
    // `removed` is the same message's).
    const bool across = inst == placed
                            ? ends && m.last_us > t + kLateExpiryUs
                            : m.first_us < t && m.last_us > t && (!m.end_us || *m.end_us > t);
    if (!across) continue;
    tangled = true;
    from = std::min(from, m.first_us);
    until = std::max(until, m.last_us);
  }
  if (tangled) tangled_.push_back(Tangle{key, from, until});
  return absl::OkStatus();
}

absl::Status Correlator::Untangle() {
  int rebuilds = 0;
  while (!tangled_.empty()) {
    const Tangle tangle = std::move(tangled_.back());
    tangled_.pop_back();
    // Left as they are: with no way to read the lines again, or when rebuilding keeps
    // meeting new instances (it should not: the lines of a span taken in time order are
    // placed as they would be in order).
    if (!line_reader_ || rebuilds++ == kMaxRebuilds) {
      tangled_.clear();
      break;
    }
    MAILLENS_RETURN_IF_ERROR(Rebuild(tangle));
  }
  return absl::OkStatus();
}

void Correlator::Forget(const Key& key, int64_t id) {
  auto inst = instances_.find(id);
  if (inst != instances_.end()) {
    dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), id), dirty_.end());
    instances_.erase(inst);
  }
  auto ids = by_key_.find(key);
  if (ids != by_key_.end()) {
    ids->second.erase(std::remove(ids->second.begin(), ids->second.end(), id), ids->second.end());
  }
}

absl::Status Correlator::Rebuild(const Tangle& tangle) {
  const auto& [host_id, inst_name, queue_id] = tangle.key;
  auto key_ids = by_key_.find(tangle.key);
  if (key_ids == by_key_.end()) return absl::OkStatus();
  // The instances the span meets, and the span they cover together.
  int64_t from = tangle.from_us;
  int64_t until = tangle.until_us;
  std::vector<int64_t> rebuilt;
  for (bool grew = true; grew;) {
    grew = false;
    for (int64_t id : key_ids->second) {
      if (std::find(rebuilt.begin(), rebuilt.end(), id) != rebuilt.end()) continue;
      MAILLENS_ASSIGN_OR_RETURN(Instance * inst, LoadInstance(id));
      const MessageInfo& m = inst->info;
      if (m.first_us > until || m.last_us < from) continue;
      rebuilt.push_back(id);
      from = std::min(from, m.first_us);
      until = std::max(until, m.last_us);
      grew = true;
    }
  }
  if (rebuilt.empty()) return absl::OkStatus();
  // Their lines: every line of the key in the span is one of theirs (an instance's lines lie
  // within its first and last). Only those observed already: below their day's watermark, or
  // seen in this batch -- the batch's other lines, and later batches', come after.
  absl::StatusOr<std::vector<StoredQueueLine>> stored =
      line_reader_(host_id, queue_id, from, until);
  if (absl::IsFailedPrecondition(stored.status())) return absl::OkStatus();
  if (!stored.ok()) return stored.status();
  std::sort(stored->begin(), stored->end(), [](const StoredQueueLine& a, const StoredQueueLine& b) {
    return std::tie(a.time_us, a.day, a.id) < std::tie(b.time_us, b.day, b.id);
  });
  struct Candidate {
    const StoredQueueLine* line;
    core::Event ev;
    std::optional<uint64_t> hash;  // above its day's watermark: observed only if seen
  };
  std::vector<Candidate> candidates;
  std::map<int64_t, int64_t> watermarks;     // day -> correlated_id
  std::unordered_map<uint64_t, int> unseen;  // hash -> how many of this batch's lines have it
  core::TimeContext time{core::TimeOptions()};
  MAILLENS_ASSIGN_OR_RETURN(Statement * watermark, catalog_->Cached(kSelectWatermark));
  for (const StoredQueueLine& line : *stored) {
    core::Event ev = core::ParseLine(line.raw, &time);
    if (!Correlates(ev) || ev.queue_id != queue_id || InstanceOf(ev.program) != inst_name) {
      continue;
    }
    auto mark = watermarks.find(line.day);
    if (mark == watermarks.end()) {
      watermark->Bind(1, line.day);
      MAILLENS_ASSIGN_OR_RETURN(auto step, watermark->Step());
      mark =
          watermarks
              .emplace(line.day, step == Statement::StepResult::kRow ? watermark->ColumnInt(0) : 0)
              .first;
      watermark->Reset();
    }
    std::optional<uint64_t> hash;
    if (line.id > mark->second) {
      hash = LineHash(host_id, ev, line.time_us);
      unseen.emplace(*hash, 0);
    }
    candidates.push_back(Candidate{&line, ev, hash});
  }
  for (uint64_t h : batch_seen_) {
    auto it = unseen.find(h);
    if (it != unseen.end()) ++it->second;
  }
  std::vector<std::pair<const StoredQueueLine*, core::Event>> lines;
  std::set<int64_t> times;
  for (Candidate& c : candidates) {
    if (c.hash && unseen[*c.hash]-- <= 0) continue;  // not observed yet: comes after
    lines.emplace_back(c.line, c.ev);
    times.insert(c.line->time_us);
  }
  // An instance's first and last are times of its lines: when the store no longer has them
  // (a day forgotten), rebuilding would lose what the catalog still knows.
  for (int64_t id : rebuilt) {
    const MessageInfo& m = instances_.at(id)->info;
    if (!times.count(m.first_us) || !times.count(m.last_us)) return absl::OkStatus();
  }
  // The hops into these instances from others, to look for their far side again after.
  std::vector<Hop> incoming;
  std::set<int64_t> seeds;  // the instances linked to them: their traces change
  MAILLENS_ASSIGN_OR_RETURN(Statement * del_parked, catalog_->Cached(kDeleteParkedHop));
  MAILLENS_ASSIGN_OR_RETURN(Statement * links_from, catalog_->Cached(kLinksFrom));
  MAILLENS_ASSIGN_OR_RETURN(Statement * del_from, catalog_->Cached(kDeleteLinksFrom));
  MAILLENS_ASSIGN_OR_RETURN(Statement * del_to, catalog_->Cached(kDeleteLinksTo));
  MAILLENS_ASSIGN_OR_RETURN(Statement * del_rcpts, catalog_->Cached(kDeleteRecipientsOf));
  MAILLENS_ASSIGN_OR_RETURN(Statement * del_message, catalog_->Cached(kDeleteMessage));
  for (int64_t id : rebuilt) {
    MAILLENS_ASSIGN_OR_RETURN(std::vector<Hop> hops, IncomingHops(id));
    for (Hop& hop : hops) {
      if (std::find(rebuilt.begin(), rebuilt.end(), hop.from) != rebuilt.end()) continue;
      hop.queue_id = queue_id;
      seeds.insert(hop.from);
      incoming.push_back(std::move(hop));
    }
    links_from->Bind(1, id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, links_from->Step());
      if (step == Statement::StepResult::kDone) break;
      seeds.insert(links_from->ColumnInt(0));
    }
    links_from->Reset();
    // The hops these lines parked (a hand-off or a bounce notice whose far side was not
    // seen): the replay parks them again under the new instances.
    for (const auto& [line, ev] : lines) {
      std::string_view next = ev.kind == core::Kind::kNotification
                                  ? ev.Get(core::Field::kNoticeQueueId)
                                  : std::string_view(ev.queued_as);
      if (next.empty()) continue;
      del_parked->BindText(1, next).Bind(2, line->time_us).Bind(3, id);
      MAILLENS_RETURN_IF_ERROR(del_parked->Run());
    }
    for (Statement* del : {del_from, del_to, del_rcpts, del_message}) {
      del->Bind(1, id);
      MAILLENS_RETURN_IF_ERROR(del->Run());
    }
    Forget(tangle.key, id);
  }
  for (int64_t id : rebuilt) seeds.erase(id);
  MAILLENS_RETURN_IF_ERROR(RecomputeTraces(std::vector<int64_t>(seeds.begin(), seeds.end())));
  // In time order, as if they had come so. Tangles this notes (an instance beyond the span
  // that the replay met) are Untangle's next rebuild.
  for (const auto& [line, ev] : lines) {
    MAILLENS_RETURN_IF_ERROR(ObserveLine(host_id, ev, line->time_us));
  }
  for (const Hop& hop : incoming) MAILLENS_RETURN_IF_ERROR(TryLinkForward(hop));
  return absl::OkStatus();
}

absl::Status Correlator::RefuseRecipient(const MessageInfo& m, const core::Event& ev,
                                         std::string_view status, int64_t t) {
  using core::Field;
  MAILLENS_ASSIGN_OR_RETURN(Statement * up, catalog_->Cached(kUpsertRecipient));
  up->Bind(1, m.id)
      .BindText(2, ev.Get(Field::kTo))
      .BindText(3, "")
      .BindText(4, status)
      .BindText(5, ev.Get(Field::kDsn))
      .BindText(6, "")
      .BindText(7, ev.Get(Field::kReason))
      .BindText(8, "")
      .BindText(9, "")
      .Bind(10, t)
      .BindText(11, "")
      .BindText(12, "");
  return up->Run();
}

absl::Status Correlator::EndRefused(Instance* inst, const core::Event& ev, int64_t t) {
  using core::Field;
  MessageInfo& m = inst->info;
  // No queue manager ever sees this message, so this line is the only one that names its
  // envelope; qmgr's from= (after canonical rewriting) would win, were there one.
  if (!m.has_sender && ev.Has(Field::kFrom)) {
    m.sender = std::string(ev.Get(Field::kFrom));
    m.has_sender = true;
  }
  if (ev.Has(Field::kTo)) {
    MAILLENS_RETURN_IF_ERROR(RefuseRecipient(m, ev, m.disposition, t));
  }
  // The queue file is removed (by cleanup, or as smtpd aborts the transaction) and nothing
  // logs `removed`: the message ends here, and a later line with its queue ID is a new
  // message.
  if (!m.end_us || *m.end_us < t) {
    m.end_us = t;
    MAILLENS_RETURN_IF_ERROR(CheckIncoming(inst));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<int64_t, int64_t>> Correlator::DeletedRecipients(int64_t message) {
  MAILLENS_ASSIGN_OR_RETURN(Statement * count, catalog_->Cached(kCountDeletedRecipients));
  count->Bind(1, message);
  MAILLENS_ASSIGN_OR_RETURN(auto step, count->Step());
  std::pair<int64_t, int64_t> counts{0, 0};
  if (step == Statement::StepResult::kRow) counts = {count->ColumnInt(0), count->ColumnInt(1)};
  count->Reset();
  return counts;
}

absl::Status Correlator::MarkDeleted(Instance* inst) {
  MessageInfo& m = inst->info;
  MAILLENS_ASSIGN_OR_RETURN(Statement * del, catalog_->Cached(kDeleteRecipients));
  del->Bind(1, m.id);
  MAILLENS_RETURN_IF_ERROR(del->Run());
  // The message's outcome only when no recipient got further: one delivered (or bounced)
  // before the deletion keeps its status, and the message reads "1 sent, 1 deleted" rather
  // than "deleted". A held message deleted is deleted.
  MAILLENS_ASSIGN_OR_RETURN(auto counts, DeletedRecipients(m.id));
  if (counts.second == 0) {
    m.disposition = "deleted";
  } else if (m.disposition == "held") {
    m.disposition.clear();
  }
  return absl::OkStatus();
}

absl::Status Correlator::ObserveDelivery(Instance* inst, const core::Event& ev, int64_t t) {
  using core::Field;
  using core::NextHopForm;
  MessageInfo& m = inst->info;
  std::string_view status = ev.Get(Field::kStatus);
  if (m.end_us && t <= *m.end_us) {
    // A line older than the end of a message already known to be deleted (an older file
    // imported after the newer): a deferral is a recipient the deletion left waiting, and
    // a delivery or bounce a recipient that got further, as if the lines came in order.
    const bool waiting = status == "deferred" || core::Lower(status) == "softbounce";
    std::pair<int64_t, int64_t> counts{0, 0};
    if (waiting || m.disposition == "deleted") {
      MAILLENS_ASSIGN_OR_RETURN(counts, DeletedRecipients(m.id));
    }
    const bool deleted = m.disposition == "deleted" || counts.first > 0;
    if (deleted && waiting) {
      status = "deleted";
    } else if (m.disposition == "deleted" && !waiting && !status.empty()) {
      m.disposition.clear();
    }
  }
  if (ev.Has(Field::kTo)) {
    MAILLENS_ASSIGN_OR_RETURN(Statement * up, catalog_->Cached(kUpsertRecipient));
    up->Bind(1, m.id)
        .BindText(2, ev.Get(Field::kTo))
        .BindText(3, ev.Get(Field::kOrigTo))
        .BindText(4, status)
        .BindText(5, ev.Get(Field::kDsn))
        .BindText(6, ev.Get(Field::kRelay))
        .BindText(7, ev.Get(Field::kReply))
        .BindText(8, ev.queued_as)
        .BindText(9, core::NextHopFormName(ev.queued_as_form))
        .Bind(10, t)
        .BindText(11, ev.Get(Field::kDelay))
        .BindText(12, ev.Get(Field::kDelays));
    MAILLENS_RETURN_IF_ERROR(up->Run());
  }
  if (ev.Get(Field::kStatus) != "sent" || ev.queued_as.empty()) return absl::OkStatus();
  switch (ev.queued_as_form) {
    case NextHopForm::kExim:
    case NextHopForm::kSendmail:
    case NextHopForm::kMicrosoft:
    case NextHopForm::kGmail:
    case NextHopForm::kNone:
      return absl::OkStatus();  // a foreign MTA's ID: an external hop, never linked
    default:
      break;
  }
  std::string_view relay_host = ev.Get(Field::kRelayHost);
  std::string_view relay_ip = ev.Get(Field::kRelayIp);
  // A hand-off over a socket (LMTP to Dovecot: relay=host[private/dovecot-lmtp]) is final
  // delivery; the reply's session ID stays on the recipient as an external reference.
  if (relay_ip.find('/') != std::string_view::npos) return absl::OkStatus();
  // The reply's form ties these to this host. A bare loopback address does not: it may be a
  // content filter, another of our hosts on the same machine (whose log may come later), or a
  // foreign MTA behind a tunnel; LinkKind decides when the far side is seen.
  bool same_host = ev.queued_as_form == NextHopForm::kContentFilter ||
                   ev.queued_as_form == NextHopForm::kAmavis ||
                   ev.queued_as_form == NextHopForm::kForwarded || relay_host == "localhost";
  Hop hop;
  hop.from = m.id;
  hop.from_host = m.host_id;
  hop.queue_id = std::string(ev.queued_as);
  hop.relay_host = std::string(relay_host);
  hop.relay_ip = std::string(relay_ip);
  hop.kind = same_host ? "reinject" : "relay";
  hop.same_host = same_host;
  hop.time_us = t;
  return TryLinkForward(hop);
}

absl::StatusOr<int64_t> Correlator::RelayHost(std::string_view relay_host,
                                              std::string_view relay_ip) {
  std::string host = core::Lower(relay_host);
  if (host == "unknown" || host == "none") host.clear();
  MAILLENS_ASSIGN_OR_RETURN(Statement * declared, catalog_->Cached(kSelectHostName));
  for (const std::string& candidate : {host, std::string(relay_ip)}) {
    if (candidate.empty()) continue;
    declared->BindText(1, candidate);
    MAILLENS_ASSIGN_OR_RETURN(auto step, declared->Step());
    int64_t id = step == Statement::StepResult::kRow ? declared->ColumnInt(0) : 0;
    declared->Reset();
    if (id != 0) return id;
  }
  // Undeclared (a plain import): Postfix logs the first label of myhostname as the syslog
  // host, so mx.example.test is host "mx" when the store has one.
  if (host.empty()) return 0;
  std::string_view first_label = std::string_view(host).substr(0, host.find('.'));
  MAILLENS_ASSIGN_OR_RETURN(Statement * by_name, catalog_->Cached(kSelectHostIdByName));
  for (std::string_view name : {std::string_view(host), first_label}) {
    by_name->BindText(1, name);
    MAILLENS_ASSIGN_OR_RETURN(auto step, by_name->Step());
    int64_t id = step == Statement::StepResult::kRow ? by_name->ColumnInt(0) : 0;
    by_name->Reset();
    if (id != 0) return id;
  }
  return 0;
}

absl::StatusOr<bool> Correlator::Maps(std::string_view relay_host, std::string_view relay_ip,
                                      int64_t host_id) {
  MAILLENS_ASSIGN_OR_RETURN(int64_t id, RelayHost(relay_host, relay_ip));
  return id == host_id;
}

absl::StatusOr<std::string> Correlator::MessageIdOf(int64_t id) {
  MAILLENS_ASSIGN_OR_RETURN(Instance * inst, LoadInstance(id));
  return inst->info.message_id;
}

absl::StatusOr<std::string> Correlator::LinkKind(const Hop& hop, const MessageInfo& cand,
                                                 std::string_view from_msgid) {
  const bool on_sender = cand.host_id == hop.from_host;
  if (hop.kind == "bounce") return std::string(on_sender ? "bounce" : "");
  if (hop.same_host) return std::string(on_sender ? "reinject" : "");
  MAILLENS_ASSIGN_OR_RETURN(int64_t named, RelayHost(hop.relay_host, hop.relay_ip));
  if (IsLoopback(hop.relay_ip) && (named == 0 || named == hop.from_host)) {
    // A loopback address no other host claims. It is this host's content filter (or a second
    // Postfix instance) only if the queue ID comes back in here through smtpd; until then it
    // may as well be one of our hosts not seen yet, or a foreign MTA behind a tunnel.
    if (on_sender) return std::string(cand.origin == "smtpd" ? "reinject" : "");
  } else if (named != 0 && named == cand.host_id) {
    return std::string("relay");
  }
  // A relay we cannot map joins only on the Message-ID, and only an instance on another host
  // that has no predecessor yet: the same message also reaches foreign servers whose queue IDs
  // can equal ours, and it must not loop back onto its own earlier hop.
  if (from_msgid.empty() || on_sender || cand.message_id != from_msgid) return std::string();
  MAILLENS_ASSIGN_OR_RETURN(bool has_predecessor, HasPredecessor(cand.id));
  return std::string(has_predecessor ? "" : "relay");
}

absl::Status Correlator::TryLinkForward(const Hop& hop) {
  MAILLENS_ASSIGN_OR_RETURN(bool linked, FindLink(hop));
  return linked ? absl::OkStatus() : Park(hop);
}

absl::StatusOr<bool> Correlator::FindLink(const Hop& hop) {
  const int64_t t = hop.time_us;
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectCandidates));
  select->BindText(1, hop.queue_id)
      .Bind(2, t - options_.hop_window_us - options_.skew_us)
      .Bind(3, t + options_.skew_us)
      .Bind(4, hop.from);
  std::vector<int64_t> candidates;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    candidates.push_back(select->ColumnInt(0));
  }
  select->Reset();
  // The receiving instance is born around the hand-off: one that had already ended before it
  // is an earlier life of a reused queue ID. Of the rest, the nearest in time wins.
  std::vector<std::pair<int64_t, int64_t>> ranked;  // (distance, id)
  MAILLENS_ASSIGN_OR_RETURN(std::string from_msgid, MessageIdOf(hop.from));
  for (int64_t cand_id : candidates) {
    MAILLENS_ASSIGN_OR_RETURN(Instance * cand, LoadInstance(cand_id));
    if (cand->info.end_us && *cand->info.end_us < t - options_.skew_us) continue;
    // Postfix passes the Message-ID on unchanged: two different ones are two messages.
    // (A bounce is a new message with a Message-ID of its own.)
    if (hop.kind != "bounce" && Contradicts(from_msgid, cand->info.message_id)) continue;
    ranked.emplace_back(std::abs(cand->info.first_us - t), cand_id);
  }
  std::sort(ranked.begin(), ranked.end());
  for (const auto& [distance, cand_id] : ranked) {
    MAILLENS_ASSIGN_OR_RETURN(Instance * cand, LoadInstance(cand_id));
    MAILLENS_ASSIGN_OR_RETURN(std::string kind, LinkKind(hop, cand->info, from_msgid));
    if (kind.empty()) continue;
    Hop linked = hop;
    linked.kind = kind;
    MAILLENS_RETURN_IF_ERROR(AddLink(linked, cand_id));
    return true;
  }
  return false;
}

absl::StatusOr<std::vector<Correlator::Hop>> Correlator::IncomingHops(int64_t to) {
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectIncoming));
  select->Bind(1, to);
  std::vector<Hop> hops;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    Hop hop;
    hop.from = select->ColumnInt(0);
    hop.kind = std::string(select->ColumnText(1));
    hop.time_us = select->ColumnInt(2);
    hop.from_host = select->ColumnInt(3);
    hop.relay_host = std::string(select->ColumnText(4));
    hop.relay_ip = std::string(select->ColumnText(5));
    hop.same_host = select->ColumnInt(6) != 0;
    hops.push_back(std::move(hop));
  }
  select->Reset();
  return hops;
}

absl::Status Correlator::Unlink(int64_t to, const std::vector<Hop>& hops) {
  if (hops.empty()) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(Statement * del, catalog_->Cached(kDeleteLink));
  std::vector<int64_t> seeds = {to};
  for (const Hop& hop : hops) {
    del->Bind(1, hop.from).Bind(2, to);
    MAILLENS_RETURN_IF_ERROR(del->Run());
    seeds.push_back(hop.from);
  }
  return RecomputeTraces(seeds);
}

absl::StatusOr<bool> Correlator::HasPredecessor(int64_t id) {
  MAILLENS_ASSIGN_OR_RETURN(std::vector<Hop> incoming, IncomingHops(id));
  for (const Hop& hop : incoming) {
    if (hop.kind != "bounce") return true;
  }
  return false;
}

absl::Status Correlator::Park(const Hop& hop) {
  MAILLENS_ASSIGN_OR_RETURN(Statement * pending, catalog_->Cached(kInsertPending));
  pending->Bind(1, hop.from)
      .Bind(2, hop.from_host)
      .BindText(3, hop.queue_id)
      .BindText(4, hop.relay_host)
      .BindText(5, hop.relay_ip)
      .Bind(6, static_cast<int64_t>(hop.same_host))
      .BindText(7, hop.kind)
      .Bind(8, hop.time_us);
  return pending->Run();
}

// A new instance, or one that just learned its message-id, may be the far side of a hop that
// was logged earlier.
absl::Status Correlator::OnCreated(Instance* inst) {
  const MessageInfo& m = inst->info;
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectPending));
  select->BindText(1, m.queue_id)
      .Bind(2, m.first_us - options_.skew_us)
      .Bind(3, m.first_us + options_.hop_window_us + options_.skew_us);
  std::vector<std::pair<int64_t, Hop>> rows;  // (pending id, hop)
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    Hop hop;
    hop.from = select->ColumnInt(1);
    hop.from_host = select->ColumnInt(2);
    hop.queue_id = m.queue_id;
    hop.relay_host = std::string(select->ColumnText(3));
    hop.relay_ip = std::string(select->ColumnText(4));
    hop.same_host = select->ColumnInt(5) != 0;
    hop.kind = std::string(select->ColumnText(6));
    hop.time_us = select->ColumnInt(7);
    rows.emplace_back(select->ColumnInt(0), std::move(hop));
  }
  select->Reset();
  for (const auto& [pending_id, hop] : rows) {
    if (hop.from == m.id) continue;
    if (m.end_us && *m.end_us < hop.time_us - options_.skew_us) continue;
    MAILLENS_ASSIGN_OR_RETURN(std::string hop_msgid, MessageIdOf(hop.from));
    if (hop.kind != "bounce" && Contradicts(hop_msgid, m.message_id)) continue;
    MAILLENS_ASSIGN_OR_RETURN(std::string kind, LinkKind(hop, m, hop_msgid));
    if (kind.empty()) continue;
    Hop linked = hop;
    linked.kind = kind;
    MAILLENS_RETURN_IF_ERROR(AddLink(linked, m.id));
    MAILLENS_ASSIGN_OR_RETURN(Statement * del, catalog_->Cached(kDeletePending));
    del->Bind(1, pending_id);
    MAILLENS_RETURN_IF_ERROR(del->Run());
  }
  return absl::OkStatus();
}

absl::Status Correlator::CheckSite() {
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectSite));
  MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
  std::string site = step == Statement::StepResult::kRow ? std::string(select->ColumnText(0)) : "";
  select->Reset();
  if (site == site_) return absl::OkStatus();
  // Not known to this process yet (a restart may have missed a change) or changed: a hop that
  // waited for a host, a name or an address may find its far side among instances already
  // seen.
  MAILLENS_ASSIGN_OR_RETURN(Statement * newest, catalog_->Cached(kSelectNewestFirst));
  MAILLENS_ASSIGN_OR_RETURN(step, newest->Step());
  const int64_t newest_us = step == Statement::StepResult::kRow ? newest->ColumnInt(0) : 0;
  newest->Reset();
  MAILLENS_RETURN_IF_ERROR(Recheck(newest_us - options_.recheck_window_us));
  site_ = std::move(site);
  return absl::OkStatus();
}

absl::Status Correlator::Recheck(int64_t since_us) {
  // Re-injections decided by the loopback rule whose address another host now claims: the
  // queue ID came back in by chance, the hop went to that host.
  MAILLENS_ASSIGN_OR_RETURN(Statement * links, catalog_->Cached(kSelectLoopbackReinjects));
  links->Bind(1, since_us);
  std::map<int64_t, std::vector<Hop>> claimed;  // to -> hops
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, links->Step());
    if (step == Statement::StepResult::kDone) break;
    Hop hop;
    hop.from = links->ColumnInt(0);
    hop.kind = "relay";
    hop.time_us = links->ColumnInt(2);
    hop.from_host = links->ColumnInt(3);
    hop.relay_host = std::string(links->ColumnText(4));
    hop.relay_ip = std::string(links->ColumnText(5));
    claimed[links->ColumnInt(1)].push_back(std::move(hop));
  }
  links->Reset();
  for (auto& [to, hops] : claimed) {
    std::vector<Hop> wrong;
    for (Hop& hop : hops) {
      MAILLENS_ASSIGN_OR_RETURN(int64_t named, RelayHost(hop.relay_host, hop.relay_ip));
      if (named != 0 && named != hop.from_host) wrong.push_back(std::move(hop));
    }
    if (wrong.empty()) continue;
    MAILLENS_ASSIGN_OR_RETURN(Instance * target, LoadInstance(to));
    for (Hop& hop : wrong) hop.queue_id = target->info.queue_id;
    MAILLENS_RETURN_IF_ERROR(Unlink(to, wrong));
    for (const Hop& hop : wrong) MAILLENS_RETURN_IF_ERROR(TryLinkForward(hop));
  }
  // Pending hops: each tries its candidates again, as when it was first seen.
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectPendingSince));
  select->Bind(1, since_us);
  std::vector<std::pair<int64_t, Hop>> rows;  // (pending id, hop)
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    Hop hop;
    hop.from = select->ColumnInt(1);
    hop.from_host = select->ColumnInt(2);
    hop.queue_id = std::string(select->ColumnText(3));
    hop.relay_host = std::string(select->ColumnText(4));
    hop.relay_ip = std::string(select->ColumnText(5));
    hop.kind = std::string(select->ColumnText(6));
    hop.time_us = select->ColumnInt(7);
    rows.emplace_back(select->ColumnInt(0), std::move(hop));
  }
  select->Reset();
  MAILLENS_ASSIGN_OR_RETURN(Statement * del, catalog_->Cached(kDeletePending));
  for (const auto& [pending_id, hop] : rows) {
    MAILLENS_ASSIGN_OR_RETURN(bool linked, FindLink(hop));
    if (!linked) continue;
    del->Bind(1, pending_id);
    MAILLENS_RETURN_IF_ERROR(del->Run());
  }
  return absl::OkStatus();
}

absl::Status Correlator::CheckIncoming(Instance* inst) {
  const MessageInfo& m = inst->info;
  if (!m.end_us && m.message_id.empty()) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(std::vector<Hop> incoming, IncomingHops(m.id));
  std::vector<Hop> wrong;
  for (Hop& hop : incoming) {
    hop.queue_id = m.queue_id;
    // Handed over after this instance had left the queue: it went to a later life of the ID.
    bool ended_before = m.end_us && hop.time_us != 0 && hop.time_us - options_.skew_us > *m.end_us;
    // Or the two sides carry different Message-IDs: two messages that shared a queue ID.
    bool other_message = false;
    if (!ended_before && !m.message_id.empty() && hop.kind != "bounce") {
      MAILLENS_ASSIGN_OR_RETURN(std::string from_msgid, MessageIdOf(hop.from));
      other_message = Contradicts(from_msgid, m.message_id);
    }
    if (ended_before || other_message) wrong.push_back(std::move(hop));
  }
  MAILLENS_RETURN_IF_ERROR(Unlink(m.id, wrong));
  // The hop may find its instance now (already created) or when it appears.
  for (const Hop& hop : wrong) MAILLENS_RETURN_IF_ERROR(TryLinkForward(hop));
  return absl::OkStatus();
}

absl::Status Correlator::RecomputeTraces(const std::vector<int64_t>& seeds) {
  std::set<int64_t> done;
  MAILLENS_ASSIGN_OR_RETURN(Statement * from, catalog_->Cached(kLinksFrom));
  MAILLENS_ASSIGN_OR_RETURN(Statement * to, catalog_->Cached(kLinksTo));
  MAILLENS_ASSIGN_OR_RETURN(Statement * set, catalog_->Cached(kSetTrace));
  for (int64_t seed : seeds) {
    if (done.count(seed)) continue;
    std::vector<int64_t> component = {seed};
    std::set<int64_t> seen = {seed};
    for (size_t i = 0; i < component.size(); ++i) {
      for (Statement* stmt : {from, to}) {
        stmt->Bind(1, component[i]);
        while (true) {
          MAILLENS_ASSIGN_OR_RETURN(auto step, stmt->Step());
          if (step == Statement::StepResult::kDone) break;
          int64_t other = stmt->ColumnInt(0);
          if (seen.insert(other).second) component.push_back(other);
        }
        stmt->Reset();
      }
    }
    int64_t trace = *std::min_element(component.begin(), component.end());
    for (int64_t id : component) {
      set->Bind(1, trace).Bind(2, id);
      MAILLENS_RETURN_IF_ERROR(set->Run());
      done.insert(id);
    }
  }
  return absl::OkStatus();
}

absl::Status Correlator::AddLink(const Hop& hop, int64_t to) {
  if (hop.kind != "bounce") {
    // A message arrives at an instance once. A link made earlier on the Message-ID alone
    // (its relay did not map to this host) gives way to one with direct evidence: it was the
    // same message reaching a foreign server whose queue ID happened to equal ours.
    MAILLENS_ASSIGN_OR_RETURN(Instance * target, LoadInstance(to));
    MAILLENS_ASSIGN_OR_RETURN(std::vector<Hop> incoming, IncomingHops(to));
    std::vector<Hop> weaker;
    for (const Hop& h : incoming) {
      // Bounces and re-injections (by the reply's form or by the loopback rule) stand.
      if (h.kind != "relay" || h.same_host || h.from == hop.from) continue;
      MAILLENS_ASSIGN_OR_RETURN(bool mapped, Maps(h.relay_host, h.relay_ip, target->info.host_id));
      if (!mapped) weaker.push_back(h);
    }
    MAILLENS_RETURN_IF_ERROR(Unlink(to, weaker));
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement * insert, catalog_->Cached(kInsertLink));
  insert->Bind(1, hop.from)
      .Bind(2, to)
      .BindText(3, hop.kind)
      .Bind(4, hop.time_us)
      .Bind(5, hop.from_host)
      .BindText(6, hop.relay_host)
      .BindText(7, hop.relay_ip)
      .Bind(8, static_cast<int64_t>(hop.same_host));
  MAILLENS_RETURN_IF_ERROR(insert->Run());
  MAILLENS_ASSIGN_OR_RETURN(Statement * trace_of, catalog_->Cached(kSelectTraceOf));
  int64_t traces[2];
  int64_t ids[2] = {hop.from, to};
  for (int i = 0; i < 2; ++i) {
    trace_of->Bind(1, ids[i]);
    MAILLENS_ASSIGN_OR_RETURN(auto step, trace_of->Step());
    traces[i] = step == Statement::StepResult::kRow ? trace_of->ColumnInt(0) : ids[i];
    trace_of->Reset();
  }
  if (traces[0] == traces[1]) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(Statement * merge, catalog_->Cached(kMergeTraces));
  merge->Bind(1, std::min(traces[0], traces[1])).Bind(2, std::max(traces[0], traces[1]));
  return merge->Run();
}

absl::Status Correlator::Flush() {
  MAILLENS_ASSIGN_OR_RETURN(Statement * full, catalog_->Cached(kUpdateMessage));
  MAILLENS_ASSIGN_OR_RETURN(Statement * details, catalog_->Cached(kUpdateMessageDetails));
  // In id order, as the catalog's rows lie.
  std::sort(dirty_.begin(), dirty_.end());
  for (int64_t id : dirty_) {
    Instance* inst = instances_.at(id).get();
    const MessageInfo& m = inst->info;
    const bool keys_stored =
        m.first_us == inst->stored_first_us && m.message_id == inst->stored_message_id;
    Statement* update = keys_stored ? details : full;
    int col = 1;
    if (!keys_stored) update->Bind(col++, m.first_us);
    update->Bind(col++, m.last_us);
    if (m.end_us) {
      update->Bind(col++, *m.end_us);
    } else {
      update->BindNull(col++);
    }
    if (!keys_stored) update->BindText(col++, m.message_id);
    if (m.has_sender) {
      update->BindText(col++, m.sender);
    } else {
      update->BindNull(col++);
    }
    // One call per statement: GCC's -Wsequence-point takes `col++` in chained calls for
    // unsequenced (C++17 sequences them).
    update->Bind(col++, m.size);
    update->Bind(col++, m.nrcpt);
    update->BindText(col++, m.client);
    update->BindText(col++, m.sasl_username);
    update->BindText(col++, m.origin);
    update->BindText(col++, m.disposition);
    update->Bind(col++, id);
    MAILLENS_RETURN_IF_ERROR(update->Run());
    inst->dirty = false;
    inst->stored_first_us = m.first_us;
    inst->stored_message_id = m.message_id;
  }
  dirty_.clear();
  batch_seen_.clear();    // the store moves the watermarks past this batch's lines
  site_checked_ = false;  // the next batch looks at the site again
  // Bound the cache: everything is in the catalog now.
  if (instances_.size() > 200000) ClearCache();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RecipientInfo>> Correlator::RecipientsOf(int64_t message) {
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * rcpts,
      catalog_->Cached(
          "SELECT recipient, orig_to, status, dsn, relay, reply, next_queue_id, "
          "next_form, time_us, attempts, delay, delays FROM recipients WHERE message = ? "
          "ORDER BY time_us"));
  rcpts->Bind(1, message);
  std::vector<RecipientInfo> out;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, rcpts->Step());
    if (step == Statement::StepResult::kDone) break;
    RecipientInfo r;
    r.message = message;
    r.recipient = std::string(rcpts->ColumnText(0));
    r.orig_to = std::string(rcpts->ColumnText(1));
    r.status = std::string(rcpts->ColumnText(2));
    r.dsn = std::string(rcpts->ColumnText(3));
    r.relay = std::string(rcpts->ColumnText(4));
    r.reply = std::string(rcpts->ColumnText(5));
    r.next_queue_id = std::string(rcpts->ColumnText(6));
    r.next_form = std::string(rcpts->ColumnText(7));
    r.time_us = rcpts->ColumnInt(8);
    r.attempts = rcpts->ColumnInt(9);
    r.delay = std::string(rcpts->ColumnText(10));
    r.delays = std::string(rcpts->ColumnText(11));
    out.push_back(std::move(r));
  }
  rcpts->Reset();
  return out;
}

absl::StatusOr<Trace> Correlator::LoadTrace(int64_t trace_id) {
  Trace trace;
  trace.id = trace_id;
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * select,
      catalog_->Cached("SELECT id FROM messages WHERE trace_id = ? ORDER BY first_us, id"));
  select->Bind(1, trace_id);
  std::vector<int64_t> ids;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    ids.push_back(select->ColumnInt(0));
  }
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * links,
      catalog_->Cached("SELECT to_message, kind FROM links WHERE from_message = ?"));
  for (int64_t id : ids) {
    MAILLENS_ASSIGN_OR_RETURN(Instance * inst, LoadInstance(id));
    trace.messages.push_back(inst->info);
    // A cached instance keeps the trace id it was loaded with: a link merges traces in the
    // catalog only (kMergeTraces), so the catalog's, by which it was selected, is the truth.
    trace.messages.back().trace_id = trace_id;
    MAILLENS_ASSIGN_OR_RETURN(std::vector<RecipientInfo> recipients, RecipientsOf(id));
    for (RecipientInfo& r : recipients) trace.recipients.push_back(std::move(r));
    links->Bind(1, id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, links->Step());
      if (step == Statement::StepResult::kDone) break;
      trace.links.push_back(LinkInfo{id, links->ColumnInt(0), std::string(links->ColumnText(1))});
    }
    links->Reset();
  }
  DropRefusalsOfOurOwnHops(&trace);
  // Ties are broken by what the messages are, not by the order they were stored in, so that a
  // trace reads the same whichever log arrived first.
  std::stable_sort(trace.messages.begin(), trace.messages.end(),
                   [](const MessageInfo& a, const MessageInfo& b) {
                     return std::tie(a.first_us, a.host, a.instance, a.queue_id) <
                            std::tie(b.first_us, b.host, b.instance, b.queue_id);
                   });
  OrderHops(&trace);
  std::map<int64_t, size_t> hop;
  for (size_t i = 0; i < trace.messages.size(); ++i) hop[trace.messages[i].id] = i;
  std::stable_sort(trace.recipients.begin(), trace.recipients.end(),
                   [&hop](const RecipientInfo& a, const RecipientInfo& b) {
                     return std::tie(hop[a.message], a.recipient, a.orig_to) <
                            std::tie(hop[b.message], b.recipient, b.orig_to);
                   });
  std::stable_sort(
      trace.links.begin(), trace.links.end(), [&hop](const LinkInfo& a, const LinkInfo& b) {
        return std::tie(hop[a.from], hop[a.to], a.kind) < std::tie(hop[b.from], hop[b.to], b.kind);
      });
  return trace;
}

// ---- Dovecot: the mailbox step ------------------------------------------------------------

namespace {

constexpr char kSelectMailboxTable[] =
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mailbox_deliveries'";
constexpr char kInsertMailboxDelivery[] =
    "INSERT OR IGNORE INTO mailbox_deliveries (host_id, session, time_us, user, message_id, "
    "status, action, mailbox, target, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kSelectMailboxBySession[] =
    "SELECT host_id, session, time_us, user, message_id, status, action, mailbox, target, "
    "reason FROM mailbox_deliveries WHERE session = ? AND time_us >= ? AND time_us <= ? "
    "ORDER BY time_us";
constexpr char kSelectMailboxByMessageId[] =
    "SELECT host_id, session, time_us, user, message_id, status, action, mailbox, target, "
    "reason FROM mailbox_deliveries WHERE message_id = ? AND time_us >= ? AND time_us <= ? "
    "ORDER BY time_us";

// "mx.example.test[private/dovecot-lmtp]:24" -> host and address (or socket).
std::pair<std::string_view, std::string_view> SplitRelay(std::string_view relay) {
  size_t open = relay.find('[');
  if (open == std::string_view::npos) return {relay, {}};
  size_t close = relay.find(']', open);
  if (close == std::string_view::npos) return {relay.substr(0, open), {}};
  return {relay.substr(0, open), relay.substr(open + 1, close - open - 1)};
}

// Whether Dovecot's user is the recipient: the address itself or its local part (a userdb
// keyed by name, auth_username_format = %n). An address extension is not taken off: two
// recipients ivan@ and ivan+news@ of one message are one user, and only a session tells
// their deliveries apart.
bool UserIsRecipient(std::string_view user, std::string_view recipient) {
  if (core::Lower(user) == core::Lower(recipient)) return true;
  size_t at = recipient.rfind('@');
  return at != std::string_view::npos && user.find('@') == std::string_view::npos &&
         core::Lower(user) == core::Lower(recipient.substr(0, at));
}

}  // namespace

absl::Status Correlator::ObserveMailboxDelivery(int64_t host_id, const core::Event& ev, int64_t t) {
  using core::Field;
  std::string_view message_id = ev.Get(Field::kMessageId);
  if (message_id == "unspecified") message_id = "";  // Dovecot's word for a mail without one
  MAILLENS_ASSIGN_OR_RETURN(Statement * insert, catalog_->Cached(kInsertMailboxDelivery));
  insert->Bind(1, host_id)
      .BindText(2, ev.queue_id)
      .Bind(3, t)
      .BindText(4, ev.Get(Field::kUser))
      .BindText(5, message_id)
      .BindText(6, ev.Get(Field::kStatus))
      .BindText(7, ev.Get(Field::kAction))
      .BindText(8, ev.Get(Field::kMailbox))
      .BindText(9, ev.Get(Field::kTo))
      .BindText(10, ev.Get(Field::kReason));
  return insert->Run();
}

absl::Status Correlator::AddMailboxSteps(Trace* trace) {
  if (!mailbox_table_) {
    // A catalog not migrated yet (read by a newer reader before its writer ran) has none:
    // its traces are as they were, without the step.
    MAILLENS_ASSIGN_OR_RETURN(Statement * exists, catalog_->Cached(kSelectMailboxTable));
    MAILLENS_ASSIGN_OR_RETURN(auto step, exists->Step());
    mailbox_table_ = step == Statement::StepResult::kRow;
    exists->Reset();
    if (!mailbox_table_) return absl::OkStatus();
  }
  std::map<int64_t, const MessageInfo*> by_id;
  for (const MessageInfo& m : trace->messages) by_id[m.id] = &m;
  // A row read for a recipient, before it is checked against the hop.
  auto read_row = [](Statement* select) {
    MailboxStep step;
    step.session = std::string(select->ColumnText(1));
    step.time_us = select->ColumnInt(2);
    step.user = std::string(select->ColumnText(3));
    step.message_id = std::string(select->ColumnText(4));
    step.status = std::string(select->ColumnText(5));
    step.action = std::string(select->ColumnText(6));
    step.mailbox = std::string(select->ColumnText(7));
    step.target = std::string(select->ColumnText(8));
    step.reason = std::string(select->ColumnText(9));
    return step;
  };
  std::set<std::string> sessions_named;
  for (const RecipientInfo& r : trace->recipients) {
    if (!r.next_queue_id.empty()) sessions_named.insert(r.next_queue_id);
  }
  std::vector<std::pair<MailboxStep, int64_t>> found;  // with the row's host id
  for (const RecipientInfo& r : trace->recipients) {
    auto it = by_id.find(r.message);
    if (it == by_id.end()) continue;
    const MessageInfo& m = *it->second;
    std::vector<std::pair<MailboxStep, int64_t>> rows;
    if (!r.next_queue_id.empty()) {
      // The reply names the session: Dovecot answers after it saved, so its lines come
      // before the reply Postfix logs (the hop window), and clocks may differ (skew).
      MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectMailboxBySession));
      select->BindText(1, r.next_queue_id)
          .Bind(2, r.time_us - options_.hop_window_us - options_.skew_us)
          .Bind(3, r.time_us + options_.skew_us);
      while (true) {
        MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
        if (step == Statement::StepResult::kDone) break;
        MailboxStep row = read_row(select);
        // The Message-ID confirms: one that differs is another mail's line.
        if (!row.message_id.empty() && !m.message_id.empty() && row.message_id != m.message_id) {
          continue;
        }
        row.linked_by = "session";
        rows.emplace_back(std::move(row), select->ColumnInt(0));
      }
      select->Reset();
      // On the hop's host, or on the one its relay= names (LMTP over TCP to another host).
      if (std::any_of(rows.begin(), rows.end(),
                      [&](const auto& row) { return row.second != m.host_id; })) {
        auto [relay_host, relay_ip] = SplitRelay(r.relay);
        MAILLENS_ASSIGN_OR_RETURN(int64_t relay_host_id, RelayHost(relay_host, relay_ip));
        rows.erase(std::remove_if(rows.begin(), rows.end(),
                                  [&](const auto& row) {
                                    return row.second != m.host_id && row.second != relay_host_id;
                                  }),
                   rows.end());
      }
    } else if (!m.message_id.empty() && r.time_us != 0) {
      MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectMailboxByMessageId));
      select->BindText(1, m.message_id)
          .Bind(2, r.time_us - options_.skew_us)
          .Bind(3, r.time_us + options_.skew_us);
      while (true) {
        MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
        if (step == Statement::StepResult::kDone) break;
        const int64_t host_id = select->ColumnInt(0);
        if (host_id != m.host_id) continue;
        MailboxStep row = read_row(select);
        if (!UserIsRecipient(row.user, r.recipient)) continue;
        if (!row.session.empty() && sessions_named.count(row.session) != 0) continue;
        row.linked_by = "message-id";
        rows.emplace_back(std::move(row), host_id);
      }
      select->Reset();
    }
    for (auto& [row, host_id] : rows) {
      row.message = r.message;
      row.recipient = r.recipient;
      found.emplace_back(std::move(row), host_id);
    }
  }
  std::map<int64_t, size_t> hop_index;
  for (size_t i = 0; i < trace->messages.size(); ++i) hop_index[trace->messages[i].id] = i;
  for (auto& [row, host_id] : found) {
    MAILLENS_ASSIGN_OR_RETURN(row.host, HostName(host_id));
  }
  trace->mailbox.clear();
  for (auto& [row, host_id] : found) trace->mailbox.push_back(std::move(row));
  std::stable_sort(trace->mailbox.begin(), trace->mailbox.end(),
                   [&](const MailboxStep& a, const MailboxStep& b) {
                     return std::tie(hop_index[a.message], a.recipient, a.time_us) <
                            std::tie(hop_index[b.message], b.recipient, b.time_us);
                   });
  return absl::OkStatus();
}

void OrderHops(Trace* trace) {
  // Hop order, not clock order: clocks of different hosts disagree, so a receiving host may
  // log before the sender. Roots (no incoming link) first, then depth-first along the links
  // in time order.
  std::map<int64_t, std::vector<int64_t>> next;
  std::set<int64_t> has_incoming;
  for (const LinkInfo& l : trace->links) {
    next[l.from].push_back(l.to);
    has_incoming.insert(l.to);
  }
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < trace->messages.size(); ++i) index[trace->messages[i].id] = i;
  std::vector<MessageInfo> ordered;
  std::set<int64_t> seen;
  std::function<void(int64_t)> visit = [&](int64_t id) {
    if (!index.count(id) || !seen.insert(id).second) return;
    ordered.push_back(trace->messages[index[id]]);
    std::vector<int64_t>& children = next[id];
    std::sort(children.begin(), children.end(), [&](int64_t a, int64_t b) {
      return std::tie(trace->messages[index[a]].first_us, index[a]) <
             std::tie(trace->messages[index[b]].first_us, index[b]);
    });
    for (int64_t child : children) visit(child);
  };
  for (const MessageInfo& m : trace->messages) {
    if (!has_incoming.count(m.id)) visit(m.id);
  }
  for (const MessageInfo& m : trace->messages) visit(m.id);  // cycles, if any
  trace->messages = std::move(ordered);
}

absl::StatusOr<std::optional<MessageInfo>> Correlator::InstanceAt(int64_t host_id,
                                                                  const std::string& queue_id,
                                                                  int64_t time_us) {
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * select,
      catalog_->Cached("SELECT id, trace_id, first_us, last_us, end_us FROM messages WHERE "
                       "host_id = ? AND queue_id = ? AND first_us <= ? ORDER BY first_us DESC "
                       "LIMIT 1"));
  select->Bind(1, host_id).BindText(2, queue_id).Bind(3, time_us + 1);
  MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
  if (step != Statement::StepResult::kRow) return std::nullopt;
  MessageInfo m;
  m.id = select->ColumnInt(0);
  m.trace_id = select->ColumnInt(1);
  m.host_id = host_id;
  m.queue_id = queue_id;
  m.first_us = select->ColumnInt(2);
  m.last_us = select->ColumnInt(3);
  if (!select->ColumnIsNull(4)) m.end_us = select->ColumnInt(4);
  select->Reset();
  return m;
}

absl::StatusOr<std::optional<MessageView>> Correlator::MessageAt(int64_t host_id,
                                                                 const std::string& queue_id,
                                                                 int64_t time_us) {
  MAILLENS_ASSIGN_OR_RETURN(std::optional<MessageInfo> at, InstanceAt(host_id, queue_id, time_us));
  if (!at.has_value()) return std::nullopt;
  MAILLENS_ASSIGN_OR_RETURN(Instance * inst, LoadInstance(at->id));
  MAILLENS_ASSIGN_OR_RETURN(std::vector<RecipientInfo> recipients, RecipientsOf(at->id));
  MessageView view{inst->info, std::move(recipients)};
  view.message.trace_id = at->trace_id;  // the cached one may predate a merge (see LoadTrace)
  return view;
}

absl::StatusOr<std::vector<int64_t>> Correlator::FindTraces(const std::string& id) {
  // Two indexed lookups, not one OR: the message-id index is partial (non-empty ids), which
  // SQLite uses only when the query itself says message_id != ''.
  std::map<int64_t, int64_t> newest;  // trace -> newest first_us among its matches
  for (const char* sql :
       {"SELECT trace_id, first_us FROM messages WHERE queue_id = ?",
        "SELECT trace_id, first_us FROM messages WHERE message_id = ? AND message_id != ''"}) {
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(sql));
    select->BindText(1, id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
      if (step == Statement::StepResult::kDone) break;
      int64_t& t = newest[select->ColumnInt(0)];
      t = std::max(t, select->ColumnInt(1));
    }
    select->Reset();
  }
  if (newest.empty()) {
    // Not as typed: a queue ID typed in another case. Short IDs are upper-case hex, but long
    // ones (enable_long_queue_ids) use both cases and are case-sensitive, so two may differ
    // by case alone: one such ID is the answer, several are a question only the user can
    // settle -- never one of them picked.
    MAILLENS_ASSIGN_OR_RETURN(std::vector<std::string> ids, QueueIdsIgnoringCase(id));
    if (ids.size() == 1) return FindTraces(ids[0]);
    if (ids.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "queue ID '", id, "' is ", absl::StrJoin(ids, " or "),
          ", which differ only in case (long queue IDs are case-sensitive): ", "give one exactly"));
    }
  }
  std::vector<std::pair<int64_t, int64_t>> by_time;
  for (const auto& [trace, t] : newest) by_time.emplace_back(t, trace);
  std::sort(by_time.begin(), by_time.end());
  std::vector<int64_t> traces;
  for (const auto& [t, trace] : by_time) traces.push_back(trace);
  return traces;
}

absl::StatusOr<std::vector<std::string>> Correlator::QueueIdsIgnoringCase(const std::string& id) {
  constexpr size_t kMaxQueueId = 32;
  if (id.empty() || id.size() > kMaxQueueId) return std::vector<std::string>{};
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return std::vector<std::string>{};
  }
  // The index on queue_id compares bytes, so no query asks "equal but for case" cheaply.
  // Instead the prefixes present in it are grown one character at a time, in both cases
  // where it is a letter: a few indexed probes per character, as many prefixes alive as IDs
  // that differ only in case (almost always one).
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * probe,
      catalog_->Cached("SELECT 1 FROM messages WHERE queue_id >= ? AND queue_id < ? LIMIT 1"));
  std::vector<std::string> alive = {""};
  for (char c : id) {
    std::vector<std::string> grown;
    std::string variants(1, absl::ascii_tolower(static_cast<unsigned char>(c)));
    const char upper = absl::ascii_toupper(static_cast<unsigned char>(c));
    if (upper != variants[0]) variants.push_back(upper);
    for (const std::string& prefix : alive) {
      for (char variant : variants) {
        // [prefix, prefix + DEL): every string that begins with the prefix, as queue IDs
        // hold only letters and digits.
        std::string from = prefix + variant;
        probe->BindText(1, from).BindText(2, from + '\x7f');
        MAILLENS_ASSIGN_OR_RETURN(auto step, probe->Step());
        probe->Reset();
        if (step == Statement::StepResult::kRow) grown.push_back(std::move(from));
      }
    }
    alive = std::move(grown);
    if (alive.empty()) return alive;
  }
  // Prefixes of the full length may be prefixes of longer IDs only.
  MAILLENS_ASSIGN_OR_RETURN(Statement * exact,
                            catalog_->Cached("SELECT 1 FROM messages WHERE queue_id = ? LIMIT 1"));
  std::vector<std::string> ids;
  for (const std::string& candidate : alive) {
    exact->BindText(1, candidate);
    MAILLENS_ASSIGN_OR_RETURN(auto step, exact->Step());
    exact->Reset();
    if (step == Statement::StepResult::kRow) ids.push_back(candidate);
  }
  return ids;
}

absl::StatusOr<std::vector<int64_t>> Correlator::TracesStartingIn(int64_t since_us,
                                                                  int64_t until_us) {
  // A trace belongs to the window its first message starts in, so consecutive windows never
  // report a trace twice.
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * select,
      catalog_->Cached("SELECT trace_id FROM messages GROUP BY trace_id "
                       "HAVING MIN(first_us) >= ? AND MIN(first_us) < ? ORDER BY MIN(first_us)"));
  select->Bind(1, since_us).Bind(2, until_us);
  std::vector<int64_t> traces;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    traces.push_back(select->ColumnInt(0));
  }
  return traces;
}

}  // namespace maillens::store
