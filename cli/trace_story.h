// A trace told as a story: a verdict line saying what happened to each recipient, and per hop
// the facts an admin asks "why?" about -- every deferral with its reason, a hold and its
// release, header/body-check actions, the content filter's verdict and score, delay notices
// told apart from non-delivery notices -- which the catalog does not keep. They are read from
// the trace's own lines when the trace is shown, so importing (and its speed) is untouched.
//
// The verdict says only what the lines show: a recipient is "delivered" when a mailbox
// delivery is logged, "accepted by" a server when the last hop in the store handed it on (a
// later hop whose log is not in the store, or a foreign server), and nothing is guessed for
// a recipient with no status yet.
//
// Pure functions over a trace and its lines; thread-compatible.
#ifndef MAILLENS_CLI_TRACE_STORY_H_
#define MAILLENS_CLI_TRACE_STORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "store/correlator.h"
#include "store/store.h"

namespace maillens::cli {

// One fact of a hop that its lines tell.
struct HopFact {
  enum class Kind {
    kDeferred,        // a delivery attempt deferred (recipient, dsn, text, delay)
    kCheck,           // a header/body/access check or milter action (action, detail, text)
    kHeld,            // put on hold (by a check: text is its reason; by postsuper)
    kReleased,        // released from hold (postsuper's line, or the queue manager taking it)
    kFilter,          // the content filter's verdict (action Passed/Blocked, detail, score)
    kNotice,          // a notice to the sender (detail: non-delivery, delay, delivery status)
    kExpired,         // the queue lifetime ran out: returned to the sender
    kDeletedByAdmin,  // postsuper -d
    kRequeued,        // postsuper -r
  };
  Kind kind = Kind::kDeferred;
  int64_t time_us = 0;
  std::string recipient;  // kDeferred
  std::string dsn;        // kDeferred
  std::string action;     // kCheck: warning, info, hold, discard, ...; kFilter: Passed, Blocked
  std::string detail;     // kCheck: "header Subject: ..."; kFilter: CLEAN, SPAM; kNotice: kind
  std::string text;       // the reason or reply as logged
  std::string score;      // kFilter: amavis' Hits
  std::string delay;      // kDeferred: seconds since arrival, as logged
  std::string notice_queue_id;  // kNotice: the notice's own queue ID
};

std::string_view HopFactKindName(HopFact::Kind kind);

// A fact in words, without its time: "deferred bob@example.org 4.7.1: host mx said: 450 ...
// (43 s after arrival)", "header check WARN (Subject: hi): seen", "content filter: Passed
// CLEAN, score -1.2".
std::string FactInWords(const HopFact& fact);

// What became of one recipient, as the verdict counts it.
struct RecipientOutcome {
  std::string recipient;  // as first addressed (orig_to of a rewritten one)
  std::string address;    // as the hop that logged the outcome named it (to=)
  // delivered, accepted, piped, forwarded, redirected, blocked, discarded, held, queued, failed,
  // deferred, bounced, expired, rejected, deleted
  std::string outcome;
  std::string host;     // the hop that logged it
  std::string where;    // the server that answered (relay host name), or the mailbox's host
  std::string mailbox;  // the folder Dovecot saved it to (Trace::mailbox), when known
  std::string dsn;
  std::string code;       // the SMTP reply code, when the reply has one
  std::string text;       // the reason or reply
  std::string queued_as;  // accepted: the queue ID the server's reply named
  int64_t message = 0;    // MessageInfo::id of the hop that logged it
};

struct TraceStory {
  std::string verdict;  // one line, in words
  std::vector<RecipientOutcome> outcomes;
  std::map<int64_t, std::vector<HopFact>> facts;  // by MessageInfo::id, in time order
  // A bounce link's notice kind (non-delivery, delay, delivery status) by the notice's
  // MessageInfo::id, when the original's line names it.
  std::map<int64_t, std::string> notice_kind;
};

// Tells `trace` from its lines (by MessageInfo::id, as TraceLines gives them; a hop without
// lines has no facts). The same trace and lines give the same story whatever order the lines
// were stored in.
TraceStory TellTrace(const store::Trace& trace,
                     const std::map<int64_t, std::vector<store::StoredLine>>& lines);

// A duration for a person: "0.35 s", "43 s", "1 min 30 s", "33 min", "2 h 5 min", "3 d 4 h".
std::string HumanDuration(double seconds);

// Postfix's delay= and delays=a/b/c/d in words, as postconf(5) documents them: "33 min:
// 33 min before the queue manager (incl. time deferred) + 0.13 s in the queue manager +
// 0.02 s connection setup (DNS, HELO, TLS) + 0.05 s transmission". "" without a delay.
std::string DelayInWords(std::string_view delay, std::string_view delays);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_TRACE_STORY_H_
