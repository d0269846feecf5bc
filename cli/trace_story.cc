#include "cli/trace_story.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/parser.h"
#include "core/query_language.h"
#include "core/time_context.h"

namespace maillens::cli {
namespace {

using store::LinkInfo;
using store::MessageInfo;
using store::RecipientInfo;
using store::StoredLine;
using store::Trace;

// "x.y" with at most `decimals` decimals, trailing zeros dropped.
std::string Number(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

// amavis' "Hits: 12.345" ("-" when it did not score the message); "" when absent.
std::string AmavisScore(std::string_view raw) {
  constexpr std::string_view kHits = ", Hits: ";
  size_t pos = raw.find(kHits);
  if (pos == std::string_view::npos) return "";
  std::string_view v = raw.substr(pos + kHits.size());
  return std::string(v.substr(0, v.find(',')));
}

// The server named by relay= ("mx.strict.test[192.0.2.7]:25" -> "mx.strict.test"); "" for
// none, or for a transport name without an address (local, virtual, a pipe's service).
std::string RelayName(std::string_view relay) {
  size_t open = relay.find('[');
  if (open == std::string_view::npos || open == 0) return "";
  return std::string(relay.substr(0, open));
}

// A delivery into a mailbox on the hop's own host: local(8), virtual(8), or LMTP over a
// UNIX-domain socket (Dovecot's "private/dovecot-lmtp").
bool MailboxDelivery(std::string_view relay) {
  return relay == "local" || relay == "virtual" || relay.find("[private/") != std::string::npos ||
         relay.find("[/") != std::string::npos;
}

// The SMTP reply code in a reply: "host X said: 554 5.7.1 ..." or "554 5.7.1 ...".
std::string ReplyCode(std::string_view reply) {
  size_t said = reply.find(" said: ");
  std::string_view t = said == std::string_view::npos ? reply : reply.substr(said + 7);
  if (t.size() >= 3 && t[0] >= '2' && t[0] <= '5' && absl::ascii_isdigit(t[1]) &&
      absl::ascii_isdigit(t[2]) && (t.size() == 3 || t[3] == ' ' || t[3] == '-')) {
    return std::string(t.substr(0, 3));
  }
  return "";
}

std::string Shortened(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;  // UTF-8
  return std::string(text.substr(0, cut)) + "...";
}

// "(554 5.7.1)", or "(4.4.1 connect to ...: Connection refused)" when the reply has no code.
std::string Why(const RecipientOutcome& o) {
  std::vector<std::string> parts;
  if (!o.code.empty()) parts.push_back(o.code);
  if (!o.dsn.empty()) parts.push_back(o.dsn);
  if (o.code.empty() && !o.text.empty()) parts.push_back(Shortened(o.text, 80));
  if (parts.empty()) return "";
  return absl::StrCat(" (", absl::StrJoin(parts, " "), ")");
}

std::string Plural(size_t n, std::string_view one, std::string_view many) {
  return absl::StrCat(n, " ", std::string(n == 1 ? one : many));
}

HopFact CheckFact(const core::Event& ev, int64_t time_us) {
  HopFact f;
  f.time_us = time_us;
  f.action = std::string(ev.Get(core::Field::kAction));
  f.kind = f.action == "hold" ? HopFact::Kind::kHeld : HopFact::Kind::kCheck;
  std::string_view stage = ev.Get(core::Field::kStage);
  std::string_view detail = ev.Get(core::Field::kDetail);
  f.detail = std::string(stage);
  if (!detail.empty()) f.detail += " " + std::string(detail);
  f.text = std::string(ev.Has(core::Field::kReason) ? ev.Get(core::Field::kReason)
                                                    : ev.Get(core::Field::kReply));
  return f;
}

// The facts of one hop from its lines, in time order.
std::vector<HopFact> FactsOf(const std::vector<StoredLine>& stored) {
  std::vector<const StoredLine*> lines;
  for (const StoredLine& l : stored) lines.push_back(&l);
  // In time order; lines of one second as stored, which is their order in the host's file
  // (all of a hop's lines are its host's), whatever order the hosts were imported in.
  std::stable_sort(lines.begin(), lines.end(), [](const StoredLine* a, const StoredLine* b) {
    return a->time_us < b->time_us;
  });
  core::TimeContext time{core::TimeOptions()};
  std::vector<HopFact> facts;
  bool on_hold = false;
  for (const StoredLine* line : lines) {
    core::Event ev = core::ParseLine(line->raw, &time);
    HopFact f;
    f.time_us = line->time_us;
    switch (ev.kind) {
      case core::Kind::kDelivery:
        if (ev.Get(core::Field::kStatus) != "deferred") continue;
        f.kind = HopFact::Kind::kDeferred;
        f.recipient = std::string(ev.Get(core::Field::kTo));
        f.dsn = std::string(ev.Get(core::Field::kDsn));
        f.text = std::string(ev.Get(core::Field::kReply));
        f.delay = std::string(ev.Get(core::Field::kDelay));
        break;
      case core::Kind::kCheckAction:
        f = CheckFact(ev, line->time_us);
        on_hold = on_hold || f.kind == HopFact::Kind::kHeld;
        break;
      case core::Kind::kPostsuper: {
        std::string_view what = ev.Get(core::Field::kDetail);
        if (what == "placed on hold") {
          f.kind = HopFact::Kind::kHeld;
          f.action = "postsuper";
          on_hold = true;
        } else if (what == "released from hold") {
          f.kind = HopFact::Kind::kReleased;
          f.action = "postsuper";
          on_hold = false;
        } else if (what == "requeued") {
          f.kind = HopFact::Kind::kRequeued;
        } else if (what == "removed") {
          f.kind = HopFact::Kind::kDeletedByAdmin;
        } else {
          continue;
        }
        break;
      }
      case core::Kind::kQueued:
        // postsuper -H ALL logs only "Released from hold: N messages", no queue ID: the
        // queue manager taking up a held message is its release.
        if (!on_hold) continue;
        on_hold = false;
        f.kind = HopFact::Kind::kReleased;
        f.action = "qmgr";
        break;
      case core::Kind::kAmavis:
        f.kind = HopFact::Kind::kFilter;
        f.action = std::string(ev.Get(core::Field::kAction));
        f.detail = std::string(ev.Get(core::Field::kDetail));
        f.text = std::string(ev.Get(core::Field::kReason));
        f.score = AmavisScore(line->raw);
        break;
      case core::Kind::kNotification:
        f.kind = HopFact::Kind::kNotice;
        f.action = std::string(ev.Get(core::Field::kAction));  // sender, postmaster
        f.detail = std::string(ev.Get(core::Field::kDetail));
        f.notice_queue_id = std::string(ev.Get(core::Field::kNoticeQueueId));
        break;
      case core::Kind::kExpired:
        f.kind = HopFact::Kind::kExpired;
        f.text = std::string(ev.Get(core::Field::kReply));
        break;
      default:
        continue;
    }
    facts.push_back(std::move(f));
  }
  return facts;
}

// What the trace's structure says, for the outcomes: which hops a bounce reached and how far
// along the forward hops each hop is.
struct Shape {
  std::set<int64_t> bounce_branch;  // hops reached through a notice (their own branch)
  std::map<int64_t, int> depth;     // along forward links
  std::map<int64_t, std::vector<const LinkInfo*>> out;
  std::map<int64_t, const MessageInfo*> by_id;
};

Shape ShapeOf(const Trace& trace) {
  Shape s;
  for (const MessageInfo& m : trace.messages) {
    s.by_id[m.id] = &m;
    s.depth[m.id] = 0;
  }
  for (const LinkInfo& l : trace.links) {
    s.out[l.from].push_back(&l);
    if (l.kind == "bounce") s.bounce_branch.insert(l.to);
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const LinkInfo& l : trace.links) {
      if (s.bounce_branch.count(l.from) && s.bounce_branch.insert(l.to).second) grew = true;
    }
  }
  for (size_t round = 0; round < trace.messages.size(); ++round) {
    bool changed = false;
    for (const LinkInfo& l : trace.links) {
      if (l.kind == "bounce") continue;
      if (s.depth[l.to] < s.depth[l.from] + 1) {
        s.depth[l.to] = s.depth[l.from] + 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return s;
}

// The hops reached from `root` along forward (relay, re-injection) links, `root` included.
std::set<int64_t> ForwardFrom(const Shape& shape, int64_t root) {
  std::set<int64_t> seen{root};
  std::vector<int64_t> todo{root};
  while (!todo.empty()) {
    int64_t at = todo.back();
    todo.pop_back();
    auto it = shape.out.find(at);
    if (it == shape.out.end()) continue;
    for (const LinkInfo* l : it->second) {
      if (l->kind != "bounce" && seen.insert(l->to).second) todo.push_back(l->to);
    }
  }
  return seen;
}

// The hop `from` handed `r` to, when that hop is in the trace.
const MessageInfo* NextHop(const Shape& shape, const RecipientInfo& r) {
  if (r.next_queue_id.empty()) return nullptr;
  auto it = shape.out.find(r.message);
  if (it == shape.out.end()) return nullptr;
  for (const LinkInfo* l : it->second) {
    if (l->kind == "bounce") continue;
    const MessageInfo* to = shape.by_id.at(l->to);
    if (to->queue_id == r.next_queue_id) return to;
  }
  return nullptr;
}

// What Dovecot did with a recipient the hop handed to it (Trace::mailbox), when its log is in
// the store: a mailbox saved to is the delivery; else a Sieve discard, redirect or reject, or
// a failure to save, is the recipient's outcome. Without a step the hop's word stands.
void MailboxOutcome(const Trace& trace, const RecipientInfo& r, RecipientOutcome* o) {
  const store::MailboxStep* saved = nullptr;
  const store::MailboxStep* other = nullptr;
  for (const store::MailboxStep& step : trace.mailbox) {
    if (step.message != r.message || step.recipient != r.recipient) continue;
    if (step.status == "saved") {
      if (saved == nullptr) saved = &step;
    } else if (step.status != "replied" && other == nullptr) {
      other = &step;  // a vacation reply keeps the message: no outcome of its own
    }
  }
  if (saved != nullptr) {
    o->mailbox = saved->mailbox;
    o->where = saved->host;
    return;
  }
  if (other == nullptr) return;
  o->where = other->host;
  o->text = other->reason;
  if (other->status == "failed") {
    o->outcome = "failed";
    o->mailbox = other->mailbox;
  } else if (other->status == "discarded") {
    o->outcome = "discarded";
    o->text = "by a Sieve rule";
  } else if (other->status == "redirected") {
    o->outcome = "redirected";
    o->text = other->target;
  } else if (other->status == "rejected") {
    o->outcome = "rejected";
    o->text = other->reason.empty() ? "by a Sieve rule" : other->reason;
  }
}

RecipientOutcome OutcomeOf(const Trace& trace, const Shape& shape, const RecipientInfo& r,
                           const std::map<int64_t, std::vector<HopFact>>& facts) {
  const MessageInfo& m = *shape.by_id.at(r.message);
  RecipientOutcome o;
  o.recipient = r.orig_to.empty() ? r.recipient : r.orig_to;
  o.address = r.recipient;
  o.host = m.host;
  o.message = m.id;
  o.dsn = r.dsn;
  o.text = r.reply;
  o.code = ReplyCode(r.reply);
  o.where = RelayName(r.relay);
  o.outcome = r.status;
  if (r.status == "sent") {
    if (const MessageInfo* next = NextHop(shape, r)) {
      // Handed to a hop in the trace that logged nothing for this recipient yet.
      o.host = next->host;
      o.message = next->id;
      o.where.clear();
      o.dsn.clear();
      o.code.clear();
      o.text.clear();
      o.outcome = next->disposition == "held" ? "held" : "queued";
    } else if (!r.next_queue_id.empty() && r.next_form == "forwarded") {
      o.outcome = "forwarded";  // local(8) re-queued it; that instance is not in the trace
      o.where = m.host;
      o.text = absl::StrCat("forwarded as ", r.next_queue_id);
    } else if (MailboxDelivery(r.relay)) {
      o.outcome = "delivered";
      o.where = m.host;
      MailboxOutcome(trace, r, &o);
    } else if (core::DeliveryStatus(r.status, r.reply) == "discarded") {
      // amavis: "250 2.7.0 Ok, discarded, id=... - spam"; the rule search's status: uses.
      o.outcome = "discarded";
      o.where = "the content filter";
      auto it = facts.find(m.id);
      if (it != facts.end()) {
        for (const HopFact& f : it->second) {
          if (f.kind == HopFact::Kind::kFilter && f.action == "Blocked") o.outcome = "blocked";
        }
      }
    } else if (r.relay == "none") {
      o.outcome = "discarded";  // discard(8): "sent" with no server, the mail dropped
      o.where = "the discard transport";
    } else if (o.where.empty() && !r.relay.empty()) {
      o.outcome = "piped";  // pipe(8): relay= is the master.cf service; its command took it
      o.where = r.relay;
    } else {
      o.outcome = "accepted";
      o.queued_as = r.next_queue_id;
    }
  }
  return o;
}

// Each recipient's outcome along the forward hops from `roots` (all hops outside a bounce's
// branch when `roots` is empty): the status logged furthest along, then the latest, keyed by
// the address first given (a later hop may rewrite it: to= new, orig_to= old) and, where an
// alias expanded it, the address it reached.
std::vector<RecipientOutcome> Outcomes(const Trace& trace, const Shape& shape,
                                       const std::set<int64_t>* only,
                                       const std::map<int64_t, std::vector<HopFact>>& facts) {
  // A recipient handed to a hop in the trace that logged it (as to=, or as orig_to= of the
  // addresses it was rewritten or expanded to) is that hop's to tell: a recipient rewritten on
  // the way (a redirect, an alias) is keyed differently there.
  std::set<std::pair<int64_t, std::string>> logged;  // (hop, address)
  for (const RecipientInfo& r : trace.recipients) {
    logged.insert({r.message, r.recipient});
    if (!r.orig_to.empty()) logged.insert({r.message, r.orig_to});
  }
  std::map<std::string, std::pair<std::pair<int, int64_t>, const RecipientInfo*>> latest;
  for (const RecipientInfo& r : trace.recipients) {
    if (only != nullptr ? !only->count(r.message) : shape.bounce_branch.count(r.message) > 0) {
      continue;
    }
    if (r.status == "sent") {
      const MessageInfo* next = NextHop(shape, r);
      if (next != nullptr && (logged.count({next->id, r.recipient}) ||
                              (!r.orig_to.empty() && logged.count({next->id, r.orig_to})))) {
        continue;
      }
    }
    // An alias expanded to several addresses (orig_to= the alias on each) is several
    // recipients: each address it reached is told.
    auto& slot =
        latest[r.orig_to.empty() ? r.recipient : absl::StrCat(r.orig_to, "\n", r.recipient)];
    std::pair<int, int64_t> rank{shape.depth.at(r.message), r.time_us};
    if (slot.second == nullptr || rank >= slot.first) slot = {rank, &r};
  }
  std::vector<RecipientOutcome> out;
  for (const auto& [key, entry] : latest) {
    out.push_back(OutcomeOf(trace, shape, *entry.second, facts));
  }
  return out;
}

constexpr std::string_view kOutcomeOrder[] = {
    "delivered", "accepted", "piped",    "forwarded", "redirected", "blocked",  "discarded", "held",
    "queued",    "failed",   "deferred", "bounced",   "expired",    "rejected", "deleted",
};

int OutcomeRank(std::string_view outcome) {
  for (size_t i = 0; i < std::size(kOutcomeOrder); ++i) {
    if (kOutcomeOrder[i] == outcome) return static_cast<int>(i);
  }
  return static_cast<int>(std::size(kOutcomeOrder));
}

// How a notice's own branch ended, as a clause: "the non-delivery notice delivered to the
// sender".
// `notice` is the notice's hop, nullptr when the trace has none of `queue_id`.
std::string NoticeClause(std::string_view what, std::string_view queue_id,
                         const MessageInfo* notice, const Trace& trace, const Shape& shape,
                         const std::map<int64_t, std::vector<HopFact>>& facts) {
  std::string name = "the " + std::string(what) + " notice";
  if (notice == nullptr) {
    return absl::StrCat(name, " queued as ", std::string(queue_id), ", not followed further");
  }
  std::set<int64_t> branch = ForwardFrom(shape, notice->id);
  std::vector<RecipientOutcome> outs = Outcomes(trace, shape, &branch, facts);
  if (outs.empty()) return absl::StrCat(name, " queued on ", notice->host, ", no delivery logged");
  const RecipientOutcome& o = outs.front();
  if (o.outcome == "delivered") return absl::StrCat(name, " delivered to the sender");
  if (o.outcome == "accepted") {
    return absl::StrCat(name, " accepted by ", o.where, " for the sender");
  }
  if (o.outcome == "queued") return absl::StrCat(name, " queued on ", o.host);
  return absl::StrCat(name, " ", o.outcome, Why(o));
}

// "held on dmz for 2 min (held for lab review), then released"; "" when never held.
std::string HoldClause(const MessageInfo& m, const std::vector<HopFact>& facts) {
  const HopFact* held = nullptr;
  for (const HopFact& f : facts) {
    if (f.kind == HopFact::Kind::kHeld && held == nullptr) held = &f;
    if (f.kind == HopFact::Kind::kReleased && held != nullptr) {
      return absl::StrCat(
          "held on ", m.host, " for ", HumanDuration((f.time_us - held->time_us) / 1e6),
          held->text.empty() ? "" : absl::StrCat(" (", held->text, ")"), ", then released");
    }
  }
  if (held == nullptr) return "";
  return absl::StrCat("held on ", m.host,
                      held->text.empty() ? "" : absl::StrCat(" (", held->text, ")"),
                      ", not released");
}

std::string FilterClause(const MessageInfo& m, const HopFact& f) {
  std::string what = f.detail;
  if (!f.score.empty() && f.score != "-") absl::StrAppend(&what, ", score ", f.score);
  return absl::StrCat(f.action == "Passed" ? "passed" : "blocked by", " the content filter on ",
                      m.host, " (", what, ")");
}

// The clause of a group of `n` recipients with one outcome.
// "delivered to the mailbox INBOX on mx", "delivered to 3 mailboxes on mx (INBOX)", "... (2
// to INBOX, 1 to Junk)": the folders Dovecot named, for the recipients whose step is known.
std::string DeliveredClause(const std::vector<const RecipientOutcome*>& members) {
  const RecipientOutcome& o = *members.front();
  std::map<std::string, int> folders;
  for (const RecipientOutcome* r : members) {
    if (!r->mailbox.empty()) ++folders[r->mailbox];
  }
  if (members.size() == 1 && !o.mailbox.empty()) {
    return absl::StrCat("delivered to the mailbox ", o.mailbox, " on ", o.where);
  }
  std::string clause = absl::StrCat("delivered to ", Plural(members.size(), "mailbox", "mailboxes"),
                                    " on ", o.where);
  if (folders.size() == 1 && folders.begin()->second == static_cast<int>(members.size())) {
    absl::StrAppend(&clause, " (", folders.begin()->first, ")");
  } else if (!folders.empty()) {
    std::vector<std::string> parts;
    for (const auto& [folder, n] : folders) parts.push_back(absl::StrCat(n, " to ", folder));
    absl::StrAppend(&clause, " (", absl::StrJoin(parts, ", "), ")");
  }
  return clause;
}

// `after` follows a delivery or acceptance: " after 3 deferrals (450 4.7.1)".
std::string GroupClause(const std::vector<const RecipientOutcome*>& members, const MessageInfo& m,
                        const std::vector<HopFact>& hop_facts, const std::string& after) {
  const RecipientOutcome& o = *members.front();
  const size_t n = members.size();
  if (o.outcome == "delivered") return DeliveredClause(members) + after;
  if (o.outcome == "failed") {
    return absl::StrCat(n, " not saved to ", o.mailbox.empty() ? "the mailbox" : o.mailbox, " on ",
                        o.where, o.text.empty() ? "" : absl::StrCat(" (", o.text, ")"));
  }
  if (o.outcome == "redirected") {
    return absl::StrCat(n, " redirected by a Sieve rule on ", o.where, " to <", o.text, ">");
  }
  if (o.outcome == "accepted") {
    // The server's queue ID is where to look next; the store has no hop of it (a foreign
    // server, or one of ours whose log has not arrived).
    std::string clause = absl::StrCat(n, " accepted by ", o.where, Why(o), after);
    bool one_id = true;
    for (const RecipientOutcome* r : members) one_id = one_id && r->queued_as == o.queued_as;
    if (!o.queued_as.empty() && one_id) {
      absl::StrAppend(&clause, ", queued there as ", o.queued_as, " (no later hop in this trace)");
    }
    return clause;
  }
  if (o.outcome == "piped") {
    return absl::StrCat(n, " handed to the ", o.where, " command on ", o.host,
                        o.text.empty() ? "" : absl::StrCat(" (", Shortened(o.text, 80), ")"));
  }
  if (o.outcome == "discarded" && o.where == "the discard transport") {
    return absl::StrCat(n, " discarded on ", o.host, " by the discard transport",
                        o.text.empty() ? "" : absl::StrCat(" (", Shortened(o.text, 80), ")"));
  }
  if (o.outcome == "forwarded") {
    return absl::StrCat(n, " forwarded on ", o.host, " (", o.text, "), not followed further");
  }
  if (o.outcome == "blocked") {
    for (const HopFact& f : hop_facts) {
      if (f.kind == HopFact::Kind::kFilter && f.action == "Blocked") {
        return absl::StrCat(n, " ", FilterClause(m, f), ", discarded");
      }
    }
  }
  if (o.outcome == "blocked" || (o.outcome == "discarded" && o.where == "the content filter")) {
    return absl::StrCat(n, " discarded by the content filter on ", o.host);
  }
  if (o.outcome == "queued") {
    return absl::StrCat(n, " in the queue on ", o.host, ", no delivery logged yet");
  }
  if (o.outcome == "held") return absl::StrCat(n, " on hold on ", o.host);
  if (o.outcome == "deferred") {
    int attempts = 0;
    for (const HopFact& f : hop_facts) {
      attempts += f.kind == HopFact::Kind::kDeferred &&
                  (f.recipient == o.recipient || n > 1);  // a group: the hop's tries
    }
    std::string tries = n == 1 && attempts > 1 ? absl::StrCat(" after ", attempts, " tries") : "";
    return absl::StrCat(n, " still deferred", o.where.empty() ? " on " : " by ",
                        o.where.empty() ? o.host : o.where, tries, Why(o));
  }
  if (o.outcome == "bounced") {
    return absl::StrCat(n, " bounced ", o.where.empty() ? "on " : "at ",
                        o.where.empty() ? o.host : o.where, Why(o));
  }
  if (o.outcome == "expired") {
    std::string after;
    for (const HopFact& f : hop_facts) {
      if (f.kind == HopFact::Kind::kExpired) {
        after = absl::StrCat(" after ", HumanDuration((f.time_us - m.first_us) / 1e6));
        break;
      }
    }
    return absl::StrCat(n, " expired on ", o.host, after, " in the queue", Why(o));
  }
  if (o.outcome == "rejected") return absl::StrCat(n, " rejected by ", o.host, Why(o));
  if (o.outcome == "discarded") {
    return absl::StrCat(n, " discarded on ", o.host,
                        o.text.empty() ? "" : absl::StrCat(" (", Shortened(o.text, 80), ")"));
  }
  if (o.outcome == "deleted") {
    return absl::StrCat(n, " deleted from the queue on ", o.host, " by the administrator",
                        o.dsn.empty() ? "" : ", deferred until then", Why(o));
  }
  return absl::StrCat(n, " ", o.outcome, " on ", o.host, Why(o));
}

std::string Verdict(const Trace& trace, const Shape& shape, const TraceStory& story) {
  static const std::vector<HopFact> kNoFacts;
  auto facts_of = [&](int64_t id) -> const std::vector<HopFact>& {
    auto it = story.facts.find(id);
    return it == story.facts.end() ? kNoFacts : it->second;
  };
  std::vector<std::string> clauses;
  std::set<int64_t> told_holds;  // hops whose hold has its clause: their waiting recipients too
  for (const MessageInfo& m : trace.messages) {
    if (shape.bounce_branch.count(m.id)) continue;
    if (std::string hold = HoldClause(m, facts_of(m.id)); !hold.empty()) {
      clauses.push_back(std::move(hold));
      told_holds.insert(m.id);
    }
    // A verdict that blocked recipients is told with them (GroupClause).
    bool blocked_here = false;
    for (const RecipientOutcome& o : story.outcomes) {
      blocked_here = blocked_here || (o.outcome == "blocked" && o.message == m.id);
    }
    for (const HopFact& f : facts_of(m.id)) {
      if (f.kind == HopFact::Kind::kFilter && !(blocked_here && f.action == "Blocked")) {
        clauses.push_back(FilterClause(m, f));
      }
    }
  }
  // Groups of recipients with the same outcome at the same place, in a fixed order.
  std::map<std::tuple<int, std::string, std::string, std::string, std::string>,
           std::vector<const RecipientOutcome*>>
      groups;
  for (const RecipientOutcome& o : story.outcomes) {
    // Mailboxes of one host are one group, whatever agent delivered them.
    const bool delivered = o.outcome == "delivered";
    groups[{OutcomeRank(o.outcome), delivered ? "" : o.host, o.where,
            delivered ? "" : o.code + " " + o.dsn,
            o.outcome == "discarded" || o.outcome == "redirected" ? o.text : ""}]
        .push_back(&o);
  }
  std::set<int64_t> told_notices;
  for (const auto& [key, members] : groups) {
    const RecipientOutcome& o = *members.front();
    const MessageInfo& m = *shape.by_id.at(o.message);
    if (o.outcome == "held" && told_holds.count(o.message)) continue;
    std::string after;
    if (o.outcome == "delivered" || o.outcome == "accepted") {
      // Delivered in the end: the tries deferred on the way, and the last reason.
      std::set<std::string> addresses;
      for (const RecipientOutcome* r : members) addresses.insert({r->recipient, r->address});
      int deferrals = 0;
      const HopFact* last = nullptr;
      for (const auto& [id, facts] : story.facts) {
        if (shape.bounce_branch.count(id)) continue;
        for (const HopFact& f : facts) {
          if (f.kind != HopFact::Kind::kDeferred || !addresses.count(f.recipient)) continue;
          ++deferrals;
          if (last == nullptr || f.time_us >= last->time_us) last = &f;
        }
      }
      if (last != nullptr) {
        RecipientOutcome why;
        why.dsn = last->dsn;
        why.code = ReplyCode(last->text);
        why.text = last->text;
        after = absl::StrCat(" after ", Plural(deferrals, "deferral", "deferrals"), Why(why));
      }
    }
    std::string clause = GroupClause(members, m, facts_of(o.message), after);
    if (o.outcome == "bounced" || o.outcome == "expired") {
      // The notice the hop sent back, and how its branch ended.
      for (const HopFact& f : facts_of(o.message)) {
        if (f.kind != HopFact::Kind::kNotice || f.detail != "non-delivery") continue;
        const MessageInfo* notice = nullptr;
        for (const auto& [id, kind] : story.notice_kind) {
          const MessageInfo* n = shape.by_id.at(id);
          if (n->queue_id == f.notice_queue_id && n->host == m.host) notice = n;
        }
        if (!told_notices.insert(notice ? notice->id : -1).second) break;
        absl::StrAppend(
            &clause, ", ",
            NoticeClause("non-delivery", f.notice_queue_id, notice, trace, shape, story.facts));
        break;
      }
    }
    clauses.push_back(std::move(clause));
  }
  if (story.outcomes.empty()) {
    // No recipient has a status: a held message has its clause; otherwise say where it is.
    bool held = false;
    for (const MessageInfo& m : trace.messages) held = held || m.disposition == "held";
    if (!held && !trace.messages.empty()) {
      const MessageInfo& last = trace.messages.back();
      bool queued = false;
      for (const MessageInfo& m : trace.messages) queued = queued || m.size >= 0 || m.nrcpt >= 0;
      clauses.push_back(!last.disposition.empty()
                            ? absl::StrCat(last.disposition, " on ", last.host)
                        : queued ? absl::StrCat("no delivery logged yet: in the queue on ",
                                                last.host, " or its log is incomplete")
                                 : absl::StrCat("never queued on ", last.host,
                                                " (the client left or the message was refused)"));
    }
  }
  return absl::StrJoin(clauses, "; ");
}

}  // namespace

std::string_view HopFactKindName(HopFact::Kind kind) {
  switch (kind) {
    case HopFact::Kind::kDeferred:
      return "deferred";
    case HopFact::Kind::kCheck:
      return "check";
    case HopFact::Kind::kHeld:
      return "held";
    case HopFact::Kind::kReleased:
      return "released";
    case HopFact::Kind::kFilter:
      return "content_filter";
    case HopFact::Kind::kNotice:
      return "notice";
    case HopFact::Kind::kExpired:
      return "expired";
    case HopFact::Kind::kDeletedByAdmin:
      return "deleted";
    case HopFact::Kind::kRequeued:
      return "requeued";
  }
  return "";
}

std::string FactInWords(const HopFact& f) {
  // A check's detail is "STAGE WHAT": "header Subject: hi", "RCPT from x[1.2.3.4]".
  size_t space = f.detail.find(' ');
  std::string stage = f.detail.substr(0, space);
  std::string what = space == std::string::npos ? "" : f.detail.substr(space + 1);
  std::string reason = f.text.empty() ? "" : absl::StrCat(": ", f.text);
  switch (f.kind) {
    case HopFact::Kind::kDeferred: {
      double delay;
      std::string after = absl::SimpleAtod(f.delay, &delay)
                              ? absl::StrCat(" (", HumanDuration(delay), " after arrival)")
                              : "";
      return absl::StrCat("deferred ", f.recipient, f.dsn.empty() ? "" : " ", f.dsn, reason, after);
    }
    case HopFact::Kind::kCheck: {
      // Postfix's own names for the actions (header_checks(5)): "warning:" is WARN.
      std::string action = absl::AsciiStrToUpper(f.action == "warning" ? "warn" : f.action);
      return absl::StrCat(stage, " check ", action, what.empty() ? "" : " (", what,
                          what.empty() ? "" : ")", reason);
    }
    case HopFact::Kind::kHeld:
      if (f.action == "postsuper") return "placed on hold by the administrator (postsuper -h)";
      return absl::StrCat("put on hold by a ", stage, " check (HOLD", what.empty() ? "" : " ", what,
                          ")", reason);
    case HopFact::Kind::kReleased:
      return f.action == "postsuper" ? "released from hold (postsuper -H)"
                                     : "released from hold: the queue manager took it up";
    case HopFact::Kind::kFilter: {
      std::string score =
          f.score.empty() || f.score == "-" ? "" : absl::StrCat(", score ", f.score);
      return absl::StrCat("content filter: ", f.action, " ", f.detail,
                          f.text.empty() ? "" : absl::StrCat(" (", f.text, ")"), score);
    }
    case HopFact::Kind::kNotice:
      return absl::StrCat(f.detail, " notice to the ", f.action, ", queued as ", f.notice_queue_id);
    case HopFact::Kind::kExpired:
      return absl::StrCat("expired in the queue", reason);
    case HopFact::Kind::kDeletedByAdmin:
      return "deleted from the queue by the administrator (postsuper -d)";
    case HopFact::Kind::kRequeued:
      return "requeued by the administrator (postsuper -r)";
  }
  return "";
}

TraceStory TellTrace(const Trace& trace, const std::map<int64_t, std::vector<StoredLine>>& lines) {
  TraceStory story;
  for (const MessageInfo& m : trace.messages) {
    auto it = lines.find(m.id);
    if (it == lines.end()) continue;
    std::vector<HopFact> facts = FactsOf(it->second);
    if (!facts.empty()) story.facts[m.id] = std::move(facts);
  }
  Shape shape = ShapeOf(trace);
  // A bounce link's notice kind, from the original's notice line naming its queue ID.
  for (const LinkInfo& l : trace.links) {
    if (l.kind != "bounce") continue;
    const MessageInfo* to = shape.by_id.at(l.to);
    auto it = story.facts.find(l.from);
    if (it == story.facts.end()) continue;
    for (const HopFact& f : it->second) {
      if (f.kind == HopFact::Kind::kNotice && f.notice_queue_id == to->queue_id) {
        story.notice_kind[l.to] = f.detail;
      }
    }
  }
  story.outcomes = Outcomes(trace, shape, nullptr, story.facts);
  story.verdict = Verdict(trace, shape, story);
  return story;
}

std::string HumanDuration(double seconds) {
  if (!(seconds >= 0)) seconds = 0;
  if (seconds < 10) return absl::StrCat(Number(seconds, seconds < 1 ? 2 : 1), " s");
  if (seconds < 60) return absl::StrCat(Number(std::round(seconds), 0), " s");
  int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 600) {
    return s % 60 == 0 ? absl::StrCat(s / 60, " min") : absl::StrCat(s / 60, " min ", s % 60, " s");
  }
  int64_t min = (s + 30) / 60;
  if (min < 60) return absl::StrCat(min, " min");
  if (min < 24 * 60) {
    return min % 60 == 0 ? absl::StrCat(min / 60, " h")
                         : absl::StrCat(min / 60, " h ", min % 60, " min");
  }
  int64_t h = (min + 30) / 60;
  return h % 24 == 0 ? absl::StrCat(h / 24, " d") : absl::StrCat(h / 24, " d ", h % 24, " h");
}

std::string DelayInWords(std::string_view delay, std::string_view delays) {
  double total;
  if (delay.empty() || !absl::SimpleAtod(std::string(delay), &total)) return "";
  std::string out = HumanDuration(total);
  std::vector<std::string> parts = absl::StrSplit(std::string(delays), '/');
  double v[4];
  if (parts.size() != 4) return out;
  for (int i = 0; i < 4; ++i) {
    if (!absl::SimpleAtod(parts[i], &v[i])) return out;
  }
  absl::StrAppend(&out, ": ", HumanDuration(v[0]),
                  " before the queue manager (incl. time deferred) + ", HumanDuration(v[1]),
                  " in the queue manager + ", HumanDuration(v[2]),
                  " connection setup (DNS, HELO, TLS) + ", HumanDuration(v[3]), " transmission");
  return out;
}

}  // namespace maillens::cli
