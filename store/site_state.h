// What the collector knows about the site beside the lines themselves, kept in the catalog
// (schema migration 4): the spans of files agents lost (gaps), the agents with their sessions,
// per-file progress and the periods they were offline; and (migration 5) each host's latest
// queue snapshot, which `maillens queue` shows. `maillens status` reads it, and a
// search whose window overlaps a gap or an offline period says so in its notices.
//
// Writing happens on the store's writer, in the catalog transaction that correlates the
// batch's lines (Store::Append with a SiteUpdate; Store::RecordSite for a batch without lines),
// before the batch is acknowledged, so whatever a batch reports is durable once it is acked.
// Every write is idempotent where a resend can repeat it: a gap is keyed by (host, file
// fingerprint, from offset, reason) and stored once however often a retried batch carries it.
//
// Definitions used by the status:
//   lag in bytes   sum over an agent's files of size - committed offset, where the committed
//                  offset is the furthest of the agent's acknowledged offset and the end of
//                  the last line of that file in a committed batch;
//   lag in seconds 0 when the lag in bytes is 0 (caught up, however quiet the log); else
//                  now - the time of the newest line stored from the agent: the store is at
//                  least that far behind the host's log.
//   gap window     the time the lost lines were written in: from the newest stored line of
//                  the same file before the gap to the oldest stored line after it (or, when
//                  that is not stored, the time the agent noticed the gap).
//
// Thread-compatible: functions take the store's connections and run on the caller's thread.
#ifndef MAILLENS_STORE_SITE_STATE_H_
#define MAILLENS_STORE_SITE_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/sqlite.h"

namespace maillens::store {

// A span of a file an agent could not read and never will (proto FileGap).
struct GapRecord {
  std::string path;
  uint64_t fingerprint = 0;
  uint64_t from_offset = 0;
  std::optional<uint64_t> to_offset;  // nullopt: the end is unknown
  std::string reason;                 // truncated, missing, unreadable
  std::string detail;
  int64_t noticed_us = 0;
};

// How far an agent got with one file when it sent a batch (proto FileProgress).
struct FileProgressRecord {
  std::string path;
  uint64_t fingerprint = 0;
  uint64_t size = 0;
  uint64_t read_offset = 0;
  uint64_t acked_offset = 0;
};

// One message of a host's Postfix queue (proto QueuedMessage).
struct QueuedMessageRecord {
  struct Recipient {
    std::string address;
    std::string delay_reason;  // empty until a delivery attempt failed
  };
  std::string queue_name;  // incoming, active, deferred, hold, maildrop
  std::string queue_id;
  std::string instance;  // the Postfix config directory, when not the default
  int64_t arrival_us = 0;
  int64_t size = 0;
  std::string sender;
  bool forced_expire = false;
  std::vector<Recipient> recipients;
};

// Everything in a host's queues when the agent read them (proto QueueSnapshot).
struct QueueSnapshotRecord {
  int64_t taken_us = 0;
  std::string error;  // the queue could not be read
  std::vector<QueuedMessageRecord> messages;
};

// What a committed batch, or a stream opening or ending, says about one agent.
struct SiteUpdate {
  enum class Session { kNone, kConnected, kDisconnected };

  std::string host;
  int64_t now_us = 0;
  Session session = Session::kNone;
  // From AgentHello, with kConnected.
  std::string role;
  std::string version;
  std::vector<std::string> addresses;
  // From a batch.
  bool batch = false;  // a committed batch: the agent was seen
  std::vector<GapRecord> gaps;
  std::vector<FileProgressRecord> progress;
  int64_t newest_event_us = 0;                 // newest line of the batch; 0: no line
  std::map<uint64_t, uint64_t> committed_end;  // fingerprint -> end of its last line here
  // The host's queue now; replaces the stored snapshot unless that one is as new (a resent
  // batch carries an old one).
  std::optional<QueueSnapshotRecord> queue;
};

struct AgentFileState {
  std::string path;
  uint64_t fingerprint = 0;
  uint64_t size = 0;
  uint64_t read_offset = 0;
  uint64_t acked_offset = 0;
  int64_t updated_us = 0;
};

struct AgentState {
  std::string host;
  std::string role;
  std::string version;
  std::vector<std::string> addresses;
  bool connected = false;
  int64_t since_us = 0;  // of the last connect when connected, else of the last disconnect
  int64_t first_seen_us = 0;
  int64_t last_seen_us = 0;
  int64_t last_event_us = 0;
  uint64_t lag_bytes = 0;
  int64_t lag_seconds = -1;  // -1: unknown (no line stored yet)
  std::vector<AgentFileState> files;
};

struct PartitionState {
  int64_t day = 0;
  uint64_t lines = 0;
  uint64_t bytes = 0;
};

struct GapState {
  std::string host;
  GapRecord gap;
  int64_t window_from_us = 0;  // 0: unknown
  int64_t window_to_us = 0;
};

struct OfflineState {
  std::string host;
  int64_t from_us = 0;
  int64_t to_us = 0;  // 0: still offline
};

struct SiteStatus {
  int64_t now_us = 0;
  std::vector<AgentState> agents;
  std::vector<PartitionState> partitions;  // oldest first
  uint64_t disk_bytes = 0;
  uint64_t gap_count = 0;
  std::vector<GapState> gaps;  // newest first
  uint64_t offline_count = 0;
  std::vector<OfflineState> offline;  // newest first
};

// A queued message's stored trace: the correlator's newest instance of the same queue ID
// on the same host.
struct QueuedTraceRef {
  int64_t trace_id = 0;    // 0: none known
  std::string first_host;  // the trace's first hop
  std::string first_queue_id;
  std::string status;  // the message's newest stored recipient status (deferred, ...); may be empty
};

// A host's latest queue snapshot, each message with its trace (same index).
struct HostQueueState {
  std::string host;
  int64_t interval_us = 0;  // between the last two snapshots; 0: only one so far
  QueueSnapshotRecord snapshot;
  std::vector<QueuedTraceRef> traces;
};

// The store's databases as the functions below need them; built by Store, valid for one call.
struct SiteDatabases {
  Database* catalog = nullptr;  // borrowed
  std::string dir;              // the data directory
  std::vector<int64_t> days;    // partitions held, oldest first
  std::function<absl::StatusOr<Database*>(int64_t day)> partition;
};

// Applies `update` for the host with catalog id `host_id`. Runs inside the caller's catalog
// transaction.
absl::Status ApplySiteUpdate(const SiteDatabases& db, int64_t host_id, const SiteUpdate& update);

// After a restart: every agent still recorded as connected lost its stream with the old
// process; it is recorded offline from when it was last seen.
absl::Status CloseStaleSessions(Database* catalog);

absl::StatusOr<SiteStatus> ReadSiteStatus(const SiteDatabases& db, int64_t now_us, size_t max_gaps,
                                          size_t max_offline);

// Every host's latest queue snapshot (only `host`'s when not empty), by host name. Nothing
// when the catalog predates the queue tables (read-only, not migrated).
absl::StatusOr<std::vector<HostQueueState>> ReadQueues(Database* catalog, const std::string& host);

// Notices for a search of [since_us, until_us): each recorded gap and offline period that
// overlaps it, newest first, at most a few and then a count. `host_ids` narrows to those
// hosts (empty: all). Nothing when the catalog predates the site tables (read-only).
absl::Status AddSiteNotices(Database* catalog, int64_t since_us, int64_t until_us,
                            const std::vector<int64_t>& host_ids, int64_t now_us,
                            std::vector<std::string>* notices);

}  // namespace maillens::store

#endif  // MAILLENS_STORE_SITE_STATE_H_
