// The correlator: turns stored lines into message instances and joins them into traces.
//
// A message instance is (host, Postfix instance, queue ID, epoch): short queue IDs are reused
// once a message has left the queue, so an instance ends at `removed` and a later line with the
// same ID starts a new one. Instances are joined by links:
//   relay       a delivery "status=sent (... queued as X)" whose relay= names one of our hosts
//               (by a declared name or address, or by the first label of its name matching a
//               host's syslog name) and that host's instance X starting near the delivery time
//               (clock skew allowed); a relay we cannot map links only when message-ids agree
//   reinject    a content filter (amavis & co.) or local(8) forwarding re-queues on the same host
//   bounce      "QID1: sender non-delivery notification: QID2"
// A `queued as` in a foreign MTA's reply form (Exim, Sendmail, Microsoft, Gmail) is kept as an
// external hop on the recipient and never linked. Links whose other side has not been seen yet
// wait in the `pending` table and are made when it arrives, so arrival order does not matter.
// No verdict before the evidence: a relay to a loopback address is a re-injection only once the
// queue ID is seen coming back into the same host through its smtpd, and a pending hop is
// re-examined when its queue ID appears and when a host, name or address appears (the site
// changes), so a host whose log arrives later still gets its hops. Nor does the guess that a
// line earlier than an instance without a start line belongs to it stand against a later line
// that shows two lives of a reused queue ID mixed in it: the span is read again from the
// store and taken in time order (Untangle).
// All state lives in the catalog database; an in-memory cache of instances is only a cache.
//
// Thread-compatible: used by the store's single writer, inside its catalog transaction.
#ifndef MAILLENS_STORE_CORRELATOR_H_
#define MAILLENS_STORE_CORRELATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/event.h"
#include "store/sqlite.h"

namespace maillens::store {

struct MessageInfo {
  int64_t id = 0;
  int64_t trace_id = 0;
  int64_t host_id = 0;
  std::string host;
  std::string instance;  // Postfix instance: "postfix", "postfix-dmz"
  std::string queue_id;
  int64_t first_us = 0;
  int64_t last_us = 0;
  std::optional<int64_t> end_us;  // time of `removed`
  std::string message_id;
  std::string sender;
  bool has_sender = false;  // the null sender "<>" is a sender
  int64_t size = -1;
  int64_t nrcpt = -1;
  std::string client;
  std::string sasl_username;
  std::string origin;       // smtpd, pickup, ...
  std::string disposition;  // "", "rejected", "held", "discarded", "expired", "deleted"
};

struct RecipientInfo {
  int64_t message = 0;  // MessageInfo::id
  std::string recipient;
  std::string orig_to;
  std::string status;  // last status: sent, deferred, bounced, expired, deleted, ...
  std::string dsn;
  std::string relay;
  std::string reply;
  std::string next_queue_id;  // the next hop's queue ID, ours or foreign
  std::string next_form;
  int64_t time_us = 0;
  int64_t attempts = 0;
  std::string delay;  // seconds from arrival to this delivery, as Postfix logged it
  // "a/b/c/d" (postconf(5)): before the queue manager, including time in the deferred queue;
  // in the queue manager; connection setup (DNS, HELO, TLS); message transmission.
  std::string delays;
};

struct LinkInfo {
  int64_t from = 0;
  int64_t to = 0;
  std::string kind;  // relay, reinject, bounce
};

// One message instance with its recipients.
struct MessageView {
  MessageInfo message;
  std::vector<RecipientInfo> recipients;
};

// What Dovecot did with a recipient Postfix handed to it (LMTP or LDA): the journey's last
// step. One per Dovecot delivery line: a saved mail, a Sieve action, a failure.
struct MailboxStep {
  int64_t message = 0;    // MessageInfo::id of the hop that handed the recipient over
  std::string recipient;  // RecipientInfo::recipient of that hop
  std::string host;       // where Dovecot logged it
  std::string session;    // Dovecot's session ID; "" when the line names none (LDA)
  std::string user;       // Dovecot's user, which may differ from the recipient (ivan+news)
  int64_t time_us = 0;
  std::string message_id;
  std::string status;  // saved, failed, discarded, redirected, rejected, replied
  std::string action;  // the Sieve action (store, discard, redirect, reject, vacation) or ""
  std::string mailbox;
  std::string target;  // where a redirect, reject or vacation reply went
  std::string reason;  // why it failed, or the reject's reason
  // "session": the hop's LMTP reply names the line's session ID. "message-id": no session
  // named (a failure's reply, LDA): the same Message-ID and user on the hop's host, near in
  // time (Correlator::AddMailboxSteps).
  std::string linked_by;
};

struct Trace {
  int64_t id = 0;
  std::vector<MessageInfo> messages;  // by first_us
  std::vector<RecipientInfo> recipients;
  std::vector<LinkInfo> links;
  std::vector<MailboxStep> mailbox;  // by hop, recipient and time (Correlator::AddMailboxSteps)
};

// Puts a trace's messages in hop order (roots first, then along the links).
void OrderHops(Trace* trace);

struct CorrelatorOptions {
  // Tolerated clock difference between hosts (the design asks for at least ±2 minutes). Also
  // how close to a hand-off an instance may end and still be its receiver, so it trades
  // tolerance of skew against telling apart quick reuses of a short queue ID.
  int64_t skew_us = 150 * 1000000LL;
  // The receiver logs a message while it is being transferred, so before the sender logs
  // "sent"; a transfer takes seconds, minutes for a large message on a slow link.
  int64_t hop_window_us = 10 * 60 * 1000000LL;
  int64_t instance_gap_us = 24 * 3600 * 1000000LL;  // silence that ends an unclosed instance
  // When a host, a host name or an address appears, the pending hops of this span before the
  // newest instance are tried again (a pending hop is always tried again when its queue ID
  // appears, which costs one indexed lookup). Bounds the work of a site change; older hops
  // stay as they are, external or waiting for their queue ID.
  int64_t recheck_window_us = 7 * 24 * 3600 * 1000000LL;
};

// A stored line as the correlator reads it back (Correlator::LineReader).
struct StoredQueueLine {
  int64_t day = 0;  // partition (YYYYMMDD)
  int64_t id = 0;   // row id within the partition
  int64_t time_us = 0;
  std::string raw;
};

class Correlator {
 public:
  // The stored lines of `queue_id` on host `host_id` whose time is in [from_us, until_us],
  // every one the store holds, correlated or not; FailedPrecondition when some of them cannot
  // be read (a day archived). Given by the store: the correlator itself sees only the catalog.
  using LineReader = std::function<absl::StatusOr<std::vector<StoredQueueLine>>(
      int64_t host_id, const std::string& queue_id, int64_t from_us, int64_t until_us)>;

  // `catalog` must outlive the correlator; the schema must exist (see Store).
  Correlator(Database* catalog, CorrelatorOptions options);

  // Where the correlator reads a queue ID's lines again when the lives of a reused ID turn
  // out to be mixed (see Untangle). Without one, they stay mixed.
  void SetLineReader(LineReader reader) { line_reader_ = std::move(reader); }

  // Takes one stored line of host `host_id`. Call within a catalog transaction, then Flush()
  // before committing. A batch is the lines observed between two Flush() calls; the store
  // moves each day's watermark (partitions.correlated_id) past a batch's lines only after
  // its Flush, so that a line at or below the watermark is one observed in an earlier batch.
  absl::Status Observe(int64_t host_id, const core::Event& ev, int64_t time_us);
  // Writes the instances touched since the last Flush; ends the batch.
  absl::Status Flush();
  // Forgets cached state (after a rolled-back transaction).
  void Reset();
  // Tries again every pending hop handed off at or after `since_us`, and undoes re-injection
  // links over loopback whose address another host now claims. Done on its own when the site
  // changes (within recheck_window_us); call within a catalog transaction, then Flush().
  absl::Status Recheck(int64_t since_us);

  // Reads.
  absl::StatusOr<Trace> LoadTrace(int64_t trace_id);
  // Fills trace->mailbox with the Dovecot lines of its recipients (LoadTrace leaves it empty:
  // a search, which loads the trace of every message it shows, does not show them): those
  // whose session ID a hop's LMTP reply names, on the hop's host or the host its relay=
  // names, within the hop window before the reply and skew after, and whose Message-ID does
  // not contradict the hop's; for a recipient whose reply names no session (a failure, LDA),
  // those on the hop's host with its Message-ID and the recipient as the user, within skew of
  // the status, that no other recipient's session claims.
  absl::Status AddMailboxSteps(Trace* trace);
  // The traces with an instance of that queue ID or Message-ID, oldest first. A queue ID
  // not found as typed is looked up without case: the traces of the one ID that matches so;
  // InvalidArgument naming them when several do (long queue IDs are case-sensitive).
  absl::StatusOr<std::vector<int64_t>> FindTraces(const std::string& queue_or_message_id);
  // The instance of `queue_id` on `host_id` that was alive at `time_us` (or started last
  // before it), with its recipients. nullopt when there is none.
  absl::StatusOr<std::optional<MessageView>> MessageAt(int64_t host_id, const std::string& queue_id,
                                                       int64_t time_us);
  // The same instance without loading it: only its id, trace id, host id, queue ID and time
  // span are set (what Store::MessageLines needs); `host` is left empty.
  absl::StatusOr<std::optional<MessageInfo>> InstanceAt(int64_t host_id,
                                                        const std::string& queue_id,
                                                        int64_t time_us);
  absl::StatusOr<std::vector<int64_t>> TracesStartingIn(int64_t since_us, int64_t until_us);

 private:
  struct Instance {
    MessageInfo info;
    bool dirty = false;
    // As the catalog holds them (indexed columns: Flush leaves them out when unchanged).
    int64_t stored_first_us = 0;
    std::string stored_message_id;
  };
  using Key = std::tuple<int64_t, std::string, std::string>;  // host, instance, queue id

  // A hand-off seen on the sending side: enough to link it now, park it in `pending`, or
  // park it again if a link made from it proves wrong. `kind` is "bounce", "reinject" or
  // "relay" as seen by the sender; a relay to a loopback address becomes a re-injection only
  // when linked to an instance on the sender's host (LinkKind).
  struct Hop {
    int64_t from = 0;
    int64_t from_host = 0;
    std::string queue_id;
    std::string relay_host;
    std::string relay_ip;
    std::string kind;
    // The far side is on the sender's host whatever relay= says: the reply's form names a
    // content filter or local(8) forwarding, or it is a bounce notice.
    bool same_host = false;
    int64_t time_us = 0;
  };

  // A line that starts a message on its host: smtpd's client= (origin "smtpd", the client
  // as logged) or pickup's uid= (origin "pickup").
  struct StartLine {
    std::string_view origin;
    std::string_view client;
  };
  // The instance a line of `queue_id` at `time_us` belongs to; `start` is set for a start
  // line, which always begins an instance of its own, and `is_expiry` for qmgr's
  // status=expired, which may follow its message's `removed`. `*created` says whether it is
  // new (its pending hops are looked at once the line's facts are known: OnCreated).
  absl::StatusOr<Instance*> FindOrCreate(int64_t host_id, std::string_view inst,
                                         std::string_view queue_id, int64_t time_us,
                                         bool is_removed, bool is_expiry, const StartLine* start,
                                         bool* created);
  // Observe's work for one line the correlator takes (a Postfix line with a queue ID).
  absl::Status ObserveLine(int64_t host_id, const core::Event& ev, int64_t time_us);
  // Keeps a Dovecot delivery line (saved, Sieve action, failure) in mailbox_deliveries. It is
  // joined to the hop when a trace is shown (AddMailboxSteps), so either log may come first.
  absl::Status ObserveMailboxDelivery(int64_t host_id, const core::Event& ev, int64_t time_us);

  // Lives of one queue ID mixed in an instance: lines of `key` between from_us and until_us
  // were placed by a guess that a later line proved wrong.
  struct Tangle {
    Key key;
    int64_t from_us = 0;
    int64_t until_us = 0;
  };
  // A line that begins a life (a start line) or ends one (removed, a refusal) at `t`, placed
  // in `placed`: notes a Tangle when an instance of `key` holds lines on both sides of it,
  // which one life cannot (`placed` itself: lines well after the end it just learnt).
  absl::Status CheckBoundary(const Key& key, const Instance* placed, int64_t t, bool ends);
  // Rebuilds the tangles noted: lines arrive in any order, and an earlier line joining a
  // later instance that has no start line (FindOrCreate) is a guess -- right for a message
  // whose older lines come later, wrong for an earlier life of a reused ID. The lines of the
  // tangled span are read again and taken in time order.
  absl::Status Untangle();
  // Deletes the instances of `tangle.key` that meet its span (their recipients, links and
  // parked hops), and observes again, in time order, the lines of the span that were
  // observed before (now or in an earlier batch); then the hops into the deleted instances
  // look for their far side again. Left as they are when the store cannot give their lines
  // back (an archived or forgotten day).
  absl::Status Rebuild(const Tangle& tangle);
  // Forgets a deleted instance's cache entries.
  void Forget(const Key& key, int64_t id);
  absl::StatusOr<Instance*> LoadInstance(int64_t id);
  absl::StatusOr<std::string> HostName(int64_t host_id);
  // Notes that Flush must write `inst` (Flush visits these, not the whole cache).
  void MarkDirty(Instance* inst);
  // Tries the pending hops with the queue ID of `instance` (new, or one that just learned its
  // message-id or that it came in through smtpd) against it.
  absl::Status OnCreated(Instance* instance);
  absl::Status ObserveDelivery(Instance* instance, const core::Event& ev, int64_t time_us);
  // postsuper -d: the recipients still waiting read "deleted", and so does the message when
  // none got further.
  absl::Status MarkDeleted(Instance* instance);
  // How many of `message`'s recipients read "deleted", and how many something else.
  absl::StatusOr<std::pair<int64_t, int64_t>> DeletedRecipients(int64_t message);
  // Stores the to= of a refusal line as a recipient of `m` with `status` and the line's
  // reason.
  absl::Status RefuseRecipient(const MessageInfo& m, const core::Event& ev, std::string_view status,
                               int64_t time_us);
  // A refusal of the whole message after its queue ID was assigned -- cleanup's reject or
  // discard (header/body checks, a milter), smtpd's reject at DATA or END-OF-MESSAGE: the
  // message's final line. Keeps its envelope (sender, the recipient named) and ends the
  // instance.
  absl::Status EndRefused(Instance* instance, const core::Event& ev, int64_t time_us);
  // Links `hop` to its far side when the evidence is there, else parks it in `pending`.
  absl::Status TryLinkForward(const Hop& hop);
  // Links `hop` to the best candidate, if one qualifies; true when linked.
  absl::StatusOr<bool> FindLink(const Hop& hop);
  // The kind of link `hop` makes into candidate `cand` ("relay", "reinject", "bounce"), or ""
  // when the evidence does not join them. `from_msgid` is the sender's Message-ID.
  absl::StatusOr<std::string> LinkKind(const Hop& hop, const MessageInfo& cand,
                                       std::string_view from_msgid);
  // Once per batch: when a host, a declared name or address has appeared since the last look
  // (or on the first look of this process), Recheck the recent window.
  absl::Status CheckSite();
  // Forgets the cached instances (all in the catalog after Flush), not the site last seen.
  void ClearCache();
  absl::Status Park(const Hop& hop);
  // The hops linked into `to`, with the evidence each link was made on.
  absl::StatusOr<std::vector<Hop>> IncomingHops(int64_t to);
  // Removes the links of `hops` into `to` and re-derives the traces they joined.
  absl::Status Unlink(int64_t to, const std::vector<Hop>& hops);
  // Whether `id` already has an incoming relay or re-injection link.
  absl::StatusOr<bool> HasPredecessor(int64_t id);
  // Undoes incoming links made before `inst` was known to have ended earlier than their
  // hand-off, parking their hops again.
  absl::Status CheckIncoming(Instance* inst);
  // Re-derives trace ids of the components containing `seeds` after a link was removed.
  absl::Status RecomputeTraces(const std::vector<int64_t>& seeds);
  absl::StatusOr<bool> Maps(std::string_view relay_host, std::string_view relay_ip,
                            int64_t host_id);
  // The host a relay= names: the one that declared the name or address, else the one whose
  // syslog name is the name or its first label; 0 when none.
  absl::StatusOr<int64_t> RelayHost(std::string_view relay_host, std::string_view relay_ip);
  absl::Status AddLink(const Hop& hop, int64_t to);
  absl::StatusOr<std::string> MessageIdOf(int64_t id);
  // The queue IDs in the catalog equal to `id` but for case (`id` itself included).
  absl::StatusOr<std::vector<std::string>> QueueIdsIgnoringCase(const std::string& id);
  absl::StatusOr<std::vector<RecipientInfo>> RecipientsOf(int64_t message);

  Database* catalog_;  // borrowed
  CorrelatorOptions options_;
  std::map<Key, std::vector<int64_t>> by_key_;              // cache: instance ids per key
  std::map<int64_t, std::unique_ptr<Instance>> instances_;  // cache by id
  std::map<int64_t, std::string> host_names_;               // cache: host id -> name
  int64_t next_id_ = 0;         // id of the next new instance; 0: read max(id) first
  std::vector<int64_t> dirty_;  // ids of the instances with dirty set
  // The hosts and their declared names as last looked at (empty: not yet in this process);
  // kept across cache clears, forgotten by Reset (a rollback undoes the Recheck it caused).
  std::string site_;
  bool site_checked_ = false;  // looked at in the current batch (since the last Flush)
  LineReader line_reader_;     // empty: tangles stay as they are
  // The lines observed in the current batch, by LineHash (identical lines stored twice are
  // here twice). A Rebuild replays these and those below the watermark, no others. A vector:
  // every line is noted, and only a Rebuild, which is rare, looks.
  std::vector<uint64_t> batch_seen_;
  std::vector<Tangle> tangled_;  // noted by CheckBoundary, rebuilt by Untangle
  bool mailbox_table_ = false;   // the catalog has mailbox_deliveries (looked at until it has)
};

}  // namespace maillens::store

#endif  // MAILLENS_STORE_CORRELATOR_H_
