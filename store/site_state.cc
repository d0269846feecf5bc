#include "store/site_state.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "store/schema.h"

namespace maillens::store {
namespace {

constexpr char kSelectFile[] = "SELECT id FROM files WHERE host_id = ? AND fingerprint = ?";
constexpr char kLineBefore[] =
    "SELECT ts_us FROM events WHERE file_id = ? AND offset < ? ORDER BY offset DESC LIMIT 1";
constexpr char kLineFrom[] =
    "SELECT ts_us FROM events WHERE file_id = ? AND offset >= ? ORDER BY offset LIMIT 1";
constexpr char kInsertGap[] =
    "INSERT OR IGNORE INTO gaps (host_id, path, fingerprint, from_offset, to_offset, reason, "
    "detail, noticed_us, window_from_us, window_to_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kConnectAgent[] =
    "INSERT INTO agents (host_id, role, version, addresses, streams, first_seen_us, "
    "last_seen_us, last_connect_us) VALUES (?, ?, ?, ?, 1, ?, ?, ?) "
    "ON CONFLICT (host_id) DO UPDATE SET role = excluded.role, version = excluded.version, "
    "addresses = excluded.addresses, streams = streams + 1, last_seen_us = excluded.last_seen_us, "
    "last_connect_us = excluded.last_connect_us";
constexpr char kCloseOffline[] =
    "UPDATE offline_periods SET to_us = ? WHERE host_id = ? AND to_us IS NULL";
constexpr char kDisconnectAgent[] =
    "UPDATE agents SET streams = max(streams - 1, 0), last_seen_us = ?, last_disconnect_us = ? "
    "WHERE host_id = ?";
constexpr char kSelectStreams[] = "SELECT streams FROM agents WHERE host_id = ?";
constexpr char kOpenOffline[] =
    "INSERT INTO offline_periods (host_id, from_us) SELECT ?, ? WHERE NOT EXISTS "
    "(SELECT 1 FROM offline_periods WHERE host_id = ? AND to_us IS NULL)";
constexpr char kSeenAgent[] =
    "UPDATE agents SET last_seen_us = ?, last_event_us = max(last_event_us, ?) WHERE host_id = ?";
constexpr char kUpsertFile[] =
    "INSERT INTO agent_files (host_id, fingerprint, path, size, read_offset, acked_offset, "
    "updated_us) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (host_id, fingerprint) DO UPDATE SET path = excluded.path, size = excluded.size, "
    "read_offset = excluded.read_offset, updated_us = excluded.updated_us, acked_offset = CASE "
    "WHEN excluded.size < agent_files.acked_offset THEN excluded.acked_offset "
    "ELSE max(excluded.acked_offset, agent_files.acked_offset) END";
constexpr char kDropOldFiles[] = "DELETE FROM agent_files WHERE host_id = ? AND updated_us < ?";
constexpr char kStaleAgents[] = "SELECT host_id, last_seen_us FROM agents WHERE streams > 0";
constexpr char kResetAgent[] =
    "UPDATE agents SET streams = 0, last_disconnect_us = last_seen_us WHERE host_id = ?";
constexpr char kHasSiteTables[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'offline_periods'";
constexpr char kSelectAgents[] =
    "SELECT a.host_id, h.name, a.role, a.version, a.addresses, a.streams, a.first_seen_us, "
    "a.last_seen_us, a.last_connect_us, a.last_disconnect_us, a.last_event_us "
    "FROM agents a JOIN hosts h ON h.id = a.host_id ORDER BY h.name";
constexpr char kSelectAgentFiles[] =
    "SELECT path, fingerprint, size, read_offset, acked_offset, updated_us FROM agent_files "
    "WHERE host_id = ? ORDER BY path, updated_us";
constexpr char kCountGaps[] = "SELECT count(*) FROM gaps";
constexpr char kSelectGaps[] =
    "SELECT h.name, g.path, g.fingerprint, g.from_offset, g.to_offset, g.reason, g.detail, "
    "g.noticed_us, g.window_from_us, g.window_to_us FROM gaps g JOIN hosts h ON h.id = g.host_id "
    "ORDER BY g.noticed_us DESC, g.id DESC LIMIT ?";
constexpr char kCountOffline[] = "SELECT count(*) FROM offline_periods";
constexpr char kSelectOffline[] =
    "SELECT h.name, o.from_us, o.to_us FROM offline_periods o JOIN hosts h ON h.id = o.host_id "
    "ORDER BY o.from_us DESC, o.id DESC LIMIT ?";
constexpr char kCountLines[] = "SELECT count(*) FROM events";
// Overlap with [since, until): a side that is unknown (NULL) is open.
constexpr char kGapsIn[] =
    "SELECT h.name, g.path, g.reason, g.window_from_us, coalesce(g.window_to_us, g.noticed_us) "
    "FROM gaps g JOIN hosts h ON h.id = g.host_id WHERE (g.window_from_us IS NULL OR "
    "g.window_from_us < ?) AND coalesce(g.window_to_us, g.noticed_us) >= ?";
constexpr char kOfflineIn[] =
    "SELECT h.name, o.from_us, o.to_us FROM offline_periods o JOIN hosts h ON h.id = o.host_id "
    "WHERE o.from_us < ? AND coalesce(o.to_us, ?) >= ?";
constexpr char kSelectSnapshotTime[] = "SELECT taken_us FROM queue_snapshots WHERE host_id = ?";
constexpr char kUpsertSnapshot[] =
    "INSERT INTO queue_snapshots (host_id, taken_us, interval_us, error) VALUES (?, ?, 0, ?) "
    "ON CONFLICT (host_id) DO UPDATE SET interval_us = excluded.taken_us - "
    "queue_snapshots.taken_us, taken_us = excluded.taken_us, error = excluded.error";
constexpr char kDropQueueRecipients[] =
    "DELETE FROM queue_recipients WHERE message IN (SELECT id FROM queue_messages WHERE "
    "host_id = ?)";
constexpr char kDropQueueMessages[] = "DELETE FROM queue_messages WHERE host_id = ?";
constexpr char kInsertQueueMessage[] =
    "INSERT INTO queue_messages (host_id, queue_name, queue_id, instance, arrival_us, size, "
    "sender, forced_expire) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kInsertQueueRecipient[] =
    "INSERT INTO queue_recipients (message, address, delay_reason) VALUES (?, ?, ?)";
constexpr char kHasQueueTables[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'queue_snapshots'";
constexpr char kSelectSnapshots[] =
    "SELECT s.host_id, h.name, s.taken_us, s.interval_us, s.error FROM queue_snapshots s "
    "JOIN hosts h ON h.id = s.host_id WHERE ? = '' OR h.name = ? ORDER BY h.name";
constexpr char kSelectQueueMessages[] =
    "SELECT id, queue_name, queue_id, instance, arrival_us, size, sender, forced_expire "
    "FROM queue_messages WHERE host_id = ? ORDER BY arrival_us, queue_id";
constexpr char kSelectQueueRecipients[] =
    "SELECT address, delay_reason FROM queue_recipients WHERE message = ? ORDER BY rowid";
// The newest instance of a queue ID on a host, and its newest recipient status.
constexpr char kSelectQueuedTrace[] =
    "SELECT m.trace_id, coalesce((SELECT r.status FROM recipients r WHERE r.message = m.id "
    "ORDER BY r.time_us DESC LIMIT 1), m.disposition) FROM messages m "
    "WHERE m.host_id = ? AND m.queue_id = ? ORDER BY m.first_us DESC LIMIT 1";
constexpr char kSelectFirstHop[] =
    "SELECT h.name, m.queue_id FROM messages m JOIN hosts h ON h.id = m.host_id "
    "WHERE m.trace_id = ? ORDER BY m.first_us, m.id LIMIT 1";

// Notices of each kind shown before the rest are only counted.
constexpr size_t kMaxNoticesPerKind = 5;

std::string Utc(int64_t time_us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(time_us), absl::UTCTimeZone());
}

uint64_t FileBytes(const std::string& path) {
  uint64_t total = 0;
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    uintmax_t size = std::filesystem::file_size(path + suffix, ec);
    if (!ec) total += size;
  }
  return total;
}

absl::StatusOr<bool> HasSiteTables(Database* catalog) {
  MAILLENS_ASSIGN_OR_RETURN(Statement has, catalog->Prepare(kHasSiteTables));
  MAILLENS_ASSIGN_OR_RETURN(auto step, has.Step());
  return step == Statement::StepResult::kRow && has.ColumnInt(0) > 0;
}

// The time of one stored line of file `file_id` found by `sql` (kLineBefore or kLineFrom),
// looking through `days` in the given order; nullopt when none holds one.
absl::StatusOr<std::optional<int64_t>> FindLineTime(const SiteDatabases& db,
                                                    const std::vector<int64_t>& days,
                                                    const char* sql, int64_t file_id,
                                                    uint64_t offset) {
  for (int64_t day : days) {
    auto partition = db.partition(day);
    if (absl::IsNotFound(partition.status())) continue;
    if (!partition.ok()) return partition.status();
    MAILLENS_ASSIGN_OR_RETURN(Statement select, (*partition)->Prepare(sql));
    select.Bind(1, file_id).Bind(2, static_cast<int64_t>(offset));
    MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
    if (step == Statement::StepResult::kRow) return select.ColumnInt(0);
  }
  return std::nullopt;
}

absl::Status RecordGap(const SiteDatabases& db, int64_t host_id, const GapRecord& gap) {
  std::optional<int64_t> from_us;
  std::optional<int64_t> to_us;
  MAILLENS_ASSIGN_OR_RETURN(Statement file, db.catalog->Prepare(kSelectFile));
  file.Bind(1, host_id).Bind(2, static_cast<int64_t>(gap.fingerprint));
  MAILLENS_ASSIGN_OR_RETURN(auto step, file.Step());
  if (step == Statement::StepResult::kRow) {
    int64_t file_id = file.ColumnInt(0);
    // Lines of one file are in time order: the newest day holding a line before the gap holds
    // the last one, the oldest day holding one after it the first.
    std::vector<int64_t> newest_first(db.days.rbegin(), db.days.rend());
    MAILLENS_ASSIGN_OR_RETURN(
        from_us, FindLineTime(db, newest_first, kLineBefore, file_id, gap.from_offset));
    if (gap.to_offset) {
      MAILLENS_ASSIGN_OR_RETURN(to_us,
                                FindLineTime(db, db.days, kLineFrom, file_id, *gap.to_offset));
    }
  }
  // Not stored (yet): the lines were lost before the agent noticed.
  if (!to_us || *to_us > gap.noticed_us) to_us = gap.noticed_us;
  MAILLENS_ASSIGN_OR_RETURN(Statement insert, db.catalog->Prepare(kInsertGap));
  insert.Bind(1, host_id)
      .BindText(2, gap.path)
      .Bind(3, static_cast<int64_t>(gap.fingerprint))
      .Bind(4, static_cast<int64_t>(gap.from_offset));
  if (gap.to_offset) {
    insert.Bind(5, static_cast<int64_t>(*gap.to_offset));
  } else {
    insert.BindNull(5);
  }
  insert.BindText(6, gap.reason).BindText(7, gap.detail).Bind(8, gap.noticed_us);
  if (from_us) {
    insert.Bind(9, *from_us);
  } else {
    insert.BindNull(9);
  }
  insert.Bind(10, *to_us);
  return insert.Run();
}

absl::Status RecordProgress(Database* catalog, int64_t host_id, const SiteUpdate& update) {
  MAILLENS_ASSIGN_OR_RETURN(Statement upsert, catalog->Prepare(kUpsertFile));
  for (const FileProgressRecord& p : update.progress) {
    uint64_t acked = p.acked_offset;
    auto it = update.committed_end.find(p.fingerprint);
    if (it != update.committed_end.end()) acked = std::max(acked, it->second);
    acked = std::min(acked, std::max(p.size, p.read_offset));
    upsert.Bind(1, host_id)
        .Bind(2, static_cast<int64_t>(p.fingerprint))
        .BindText(3, p.path)
        .Bind(4, static_cast<int64_t>(p.size))
        .Bind(5, static_cast<int64_t>(p.read_offset))
        .Bind(6, static_cast<int64_t>(acked))
        .Bind(7, update.now_us);
    MAILLENS_RETURN_IF_ERROR(upsert.Run());
  }
  // The agent reports every file it tails: one it no longer reports is finished.
  MAILLENS_ASSIGN_OR_RETURN(Statement drop, catalog->Prepare(kDropOldFiles));
  drop.Bind(1, host_id).Bind(2, update.now_us);
  return drop.Run();
}

// Replaces the host's stored snapshot with `queue` unless the stored one is as new or newer
// (a resent batch).
absl::Status RecordQueue(Database* catalog, int64_t host_id, const QueueSnapshotRecord& queue) {
  MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog->Prepare(kSelectSnapshotTime));
  select.Bind(1, host_id);
  MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
  if (step == Statement::StepResult::kRow && select.ColumnInt(0) >= queue.taken_us) {
    return absl::OkStatus();
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement upsert, catalog->Prepare(kUpsertSnapshot));
  upsert.Bind(1, host_id).Bind(2, queue.taken_us).BindText(3, queue.error);
  MAILLENS_RETURN_IF_ERROR(upsert.Run());
  for (const char* sql : {kDropQueueRecipients, kDropQueueMessages}) {
    MAILLENS_ASSIGN_OR_RETURN(Statement drop, catalog->Prepare(sql));
    drop.Bind(1, host_id);
    MAILLENS_RETURN_IF_ERROR(drop.Run());
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement message, catalog->Prepare(kInsertQueueMessage));
  MAILLENS_ASSIGN_OR_RETURN(Statement recipient, catalog->Prepare(kInsertQueueRecipient));
  for (const QueuedMessageRecord& m : queue.messages) {
    message.Bind(1, host_id)
        .BindText(2, m.queue_name)
        .BindText(3, m.queue_id)
        .BindText(4, m.instance)
        .Bind(5, m.arrival_us)
        .Bind(6, m.size)
        .BindText(7, m.sender)
        .Bind(8, int64_t{m.forced_expire ? 1 : 0});
    MAILLENS_RETURN_IF_ERROR(message.Run());
    int64_t id = catalog->LastInsertRowId();
    for (const QueuedMessageRecord::Recipient& r : m.recipients) {
      recipient.Bind(1, id).BindText(2, r.address).BindText(3, r.delay_reason);
      MAILLENS_RETURN_IF_ERROR(recipient.Run());
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplySiteUpdate(const SiteDatabases& db, int64_t host_id, const SiteUpdate& update) {
  Database* catalog = db.catalog;
  if (update.session == SiteUpdate::Session::kConnected) {
    MAILLENS_ASSIGN_OR_RETURN(Statement connect, catalog->Prepare(kConnectAgent));
    connect.Bind(1, host_id)
        .BindText(2, update.role)
        .BindText(3, update.version)
        .BindText(4, absl::StrJoin(update.addresses, " "))
        .Bind(5, update.now_us)
        .Bind(6, update.now_us)
        .Bind(7, update.now_us);
    MAILLENS_RETURN_IF_ERROR(connect.Run());
    MAILLENS_ASSIGN_OR_RETURN(Statement close, catalog->Prepare(kCloseOffline));
    close.Bind(1, update.now_us).Bind(2, host_id);
    MAILLENS_RETURN_IF_ERROR(close.Run());
  }
  if (update.batch) {
    MAILLENS_ASSIGN_OR_RETURN(Statement seen, catalog->Prepare(kSeenAgent));
    seen.Bind(1, update.now_us).Bind(2, update.newest_event_us).Bind(3, host_id);
    MAILLENS_RETURN_IF_ERROR(seen.Run());
  }
  for (const GapRecord& gap : update.gaps) MAILLENS_RETURN_IF_ERROR(RecordGap(db, host_id, gap));
  if (!update.progress.empty()) MAILLENS_RETURN_IF_ERROR(RecordProgress(catalog, host_id, update));
  if (update.session == SiteUpdate::Session::kDisconnected) {
    MAILLENS_ASSIGN_OR_RETURN(Statement disconnect, catalog->Prepare(kDisconnectAgent));
    disconnect.Bind(1, update.now_us).Bind(2, update.now_us).Bind(3, host_id);
    MAILLENS_RETURN_IF_ERROR(disconnect.Run());
    MAILLENS_ASSIGN_OR_RETURN(Statement streams, catalog->Prepare(kSelectStreams));
    streams.Bind(1, host_id);
    MAILLENS_ASSIGN_OR_RETURN(auto step, streams.Step());
    if (step == Statement::StepResult::kRow && streams.ColumnInt(0) == 0) {
      MAILLENS_ASSIGN_OR_RETURN(Statement open, catalog->Prepare(kOpenOffline));
      open.Bind(1, host_id).Bind(2, update.now_us).Bind(3, host_id);
      MAILLENS_RETURN_IF_ERROR(open.Run());
    }
  }
  if (update.queue) MAILLENS_RETURN_IF_ERROR(RecordQueue(catalog, host_id, *update.queue));
  return absl::OkStatus();
}

absl::Status CloseStaleSessions(Database* catalog) {
  std::vector<std::pair<int64_t, int64_t>> stale;  // host id, last seen
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog->Prepare(kStaleAgents));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      stale.emplace_back(select.ColumnInt(0), select.ColumnInt(1));
    }
  }
  if (stale.empty()) return absl::OkStatus();
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog));
  MAILLENS_ASSIGN_OR_RETURN(Statement reset, catalog->Prepare(kResetAgent));
  MAILLENS_ASSIGN_OR_RETURN(Statement open, catalog->Prepare(kOpenOffline));
  for (const auto& [host_id, last_seen] : stale) {
    reset.Bind(1, host_id);
    MAILLENS_RETURN_IF_ERROR(reset.Run());
    open.Bind(1, host_id).Bind(2, last_seen).Bind(3, host_id);
    MAILLENS_RETURN_IF_ERROR(open.Run());
  }
  return txn.Commit();
}

absl::StatusOr<SiteStatus> ReadSiteStatus(const SiteDatabases& db, int64_t now_us, size_t max_gaps,
                                          size_t max_offline) {
  SiteStatus status;
  status.now_us = now_us;
  status.disk_bytes = FileBytes(db.dir + "/catalog.db");
  for (int64_t day : db.days) {
    PartitionState p;
    p.day = day;
    // A partition's full-text index may live in a file of its own beside it (schema.h).
    const std::string path = absl::StrCat(db.dir, "/days/", day, ".db");
    p.bytes = FileBytes(path) + FileBytes(FtsFilePath(path));
    auto partition = db.partition(day);
    if (absl::IsNotFound(partition.status())) continue;
    if (!partition.ok()) return partition.status();
    MAILLENS_ASSIGN_OR_RETURN(Statement count, (*partition)->Prepare(kCountLines));
    MAILLENS_ASSIGN_OR_RETURN(auto step, count.Step());
    if (step == Statement::StepResult::kRow) p.lines = count.ColumnInt(0);
    status.disk_bytes += p.bytes;
    status.partitions.push_back(p);
  }
  MAILLENS_ASSIGN_OR_RETURN(bool has_tables, HasSiteTables(db.catalog));
  if (!has_tables) return status;

  MAILLENS_ASSIGN_OR_RETURN(Statement agents, db.catalog->Prepare(kSelectAgents));
  MAILLENS_ASSIGN_OR_RETURN(Statement files, db.catalog->Prepare(kSelectAgentFiles));
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, agents.Step());
    if (step == Statement::StepResult::kDone) break;
    AgentState a;
    int64_t host_id = agents.ColumnInt(0);
    a.host = std::string(agents.ColumnText(1));
    a.role = std::string(agents.ColumnText(2));
    a.version = std::string(agents.ColumnText(3));
    a.addresses = absl::StrSplit(core::ToAbsl(agents.ColumnText(4)), ' ', absl::SkipEmpty());
    a.connected = agents.ColumnInt(5) > 0;
    a.first_seen_us = agents.ColumnInt(6);
    a.last_seen_us = agents.ColumnInt(7);
    a.since_us = a.connected ? agents.ColumnInt(8) : agents.ColumnInt(9);
    a.last_event_us = agents.ColumnInt(10);
    files.Bind(1, host_id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto fstep, files.Step());
      if (fstep == Statement::StepResult::kDone) break;
      AgentFileState f;
      f.path = std::string(files.ColumnText(0));
      f.fingerprint = static_cast<uint64_t>(files.ColumnInt(1));
      f.size = static_cast<uint64_t>(files.ColumnInt(2));
      f.read_offset = static_cast<uint64_t>(files.ColumnInt(3));
      f.acked_offset = static_cast<uint64_t>(files.ColumnInt(4));
      f.updated_us = files.ColumnInt(5);
      if (f.size > f.acked_offset) a.lag_bytes += f.size - f.acked_offset;
      a.files.push_back(std::move(f));
    }
    files.Reset();
    if (a.lag_bytes == 0) {
      a.lag_seconds = 0;
    } else if (a.last_event_us > 0) {
      a.lag_seconds = std::max<int64_t>(0, (now_us - a.last_event_us) / 1000000);
    }
    status.agents.push_back(std::move(a));
  }

  MAILLENS_ASSIGN_OR_RETURN(Statement count_gaps, db.catalog->Prepare(kCountGaps));
  MAILLENS_ASSIGN_OR_RETURN(auto gstep, count_gaps.Step());
  if (gstep == Statement::StepResult::kRow) status.gap_count = count_gaps.ColumnInt(0);
  MAILLENS_ASSIGN_OR_RETURN(Statement gaps, db.catalog->Prepare(kSelectGaps));
  gaps.Bind(1, static_cast<int64_t>(max_gaps));
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, gaps.Step());
    if (step == Statement::StepResult::kDone) break;
    GapState g;
    g.host = std::string(gaps.ColumnText(0));
    g.gap.path = std::string(gaps.ColumnText(1));
    g.gap.fingerprint = static_cast<uint64_t>(gaps.ColumnInt(2));
    g.gap.from_offset = static_cast<uint64_t>(gaps.ColumnInt(3));
    if (!gaps.ColumnIsNull(4)) g.gap.to_offset = static_cast<uint64_t>(gaps.ColumnInt(4));
    g.gap.reason = std::string(gaps.ColumnText(5));
    g.gap.detail = std::string(gaps.ColumnText(6));
    g.gap.noticed_us = gaps.ColumnInt(7);
    g.window_from_us = gaps.ColumnIsNull(8) ? 0 : gaps.ColumnInt(8);
    g.window_to_us = gaps.ColumnIsNull(9) ? 0 : gaps.ColumnInt(9);
    status.gaps.push_back(std::move(g));
  }

  MAILLENS_ASSIGN_OR_RETURN(Statement count_offline, db.catalog->Prepare(kCountOffline));
  MAILLENS_ASSIGN_OR_RETURN(auto ostep, count_offline.Step());
  if (ostep == Statement::StepResult::kRow) status.offline_count = count_offline.ColumnInt(0);
  MAILLENS_ASSIGN_OR_RETURN(Statement offline, db.catalog->Prepare(kSelectOffline));
  offline.Bind(1, static_cast<int64_t>(max_offline));
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, offline.Step());
    if (step == Statement::StepResult::kDone) break;
    OfflineState o;
    o.host = std::string(offline.ColumnText(0));
    o.from_us = offline.ColumnInt(1);
    o.to_us = offline.ColumnIsNull(2) ? 0 : offline.ColumnInt(2);
    status.offline.push_back(std::move(o));
  }
  return status;
}

absl::StatusOr<std::vector<HostQueueState>> ReadQueues(Database* catalog, const std::string& host) {
  std::vector<HostQueueState> hosts;
  MAILLENS_ASSIGN_OR_RETURN(Statement has, catalog->Prepare(kHasQueueTables));
  MAILLENS_ASSIGN_OR_RETURN(auto has_step, has.Step());
  if (has_step != Statement::StepResult::kRow || has.ColumnInt(0) == 0) return hosts;

  MAILLENS_ASSIGN_OR_RETURN(Statement snapshots, catalog->Prepare(kSelectSnapshots));
  MAILLENS_ASSIGN_OR_RETURN(Statement messages, catalog->Prepare(kSelectQueueMessages));
  MAILLENS_ASSIGN_OR_RETURN(Statement recipients, catalog->Prepare(kSelectQueueRecipients));
  MAILLENS_ASSIGN_OR_RETURN(Statement trace, catalog->Prepare(kSelectQueuedTrace));
  MAILLENS_ASSIGN_OR_RETURN(Statement first_hop, catalog->Prepare(kSelectFirstHop));
  snapshots.BindText(1, host).BindText(2, host);
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, snapshots.Step());
    if (step == Statement::StepResult::kDone) break;
    HostQueueState q;
    int64_t host_id = snapshots.ColumnInt(0);
    q.host = std::string(snapshots.ColumnText(1));
    q.snapshot.taken_us = snapshots.ColumnInt(2);
    q.interval_us = snapshots.ColumnInt(3);
    q.snapshot.error = std::string(snapshots.ColumnText(4));
    messages.Bind(1, host_id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto mstep, messages.Step());
      if (mstep == Statement::StepResult::kDone) break;
      QueuedMessageRecord m;
      int64_t id = messages.ColumnInt(0);
      m.queue_name = std::string(messages.ColumnText(1));
      m.queue_id = std::string(messages.ColumnText(2));
      m.instance = std::string(messages.ColumnText(3));
      m.arrival_us = messages.ColumnInt(4);
      m.size = messages.ColumnInt(5);
      m.sender = std::string(messages.ColumnText(6));
      m.forced_expire = messages.ColumnInt(7) != 0;
      recipients.Bind(1, id);
      while (true) {
        MAILLENS_ASSIGN_OR_RETURN(auto rstep, recipients.Step());
        if (rstep == Statement::StepResult::kDone) break;
        m.recipients.push_back(
            {std::string(recipients.ColumnText(0)), std::string(recipients.ColumnText(1))});
      }
      recipients.Reset();

      QueuedTraceRef ref;
      trace.Bind(1, host_id).BindText(2, m.queue_id);
      MAILLENS_ASSIGN_OR_RETURN(auto tstep, trace.Step());
      if (tstep == Statement::StepResult::kRow) {
        ref.trace_id = trace.ColumnInt(0);
        ref.status = std::string(trace.ColumnText(1));
      }
      trace.Reset();
      if (ref.trace_id != 0) {
        first_hop.Bind(1, ref.trace_id);
        MAILLENS_ASSIGN_OR_RETURN(auto fstep, first_hop.Step());
        if (fstep == Statement::StepResult::kRow) {
          ref.first_host = std::string(first_hop.ColumnText(0));
          ref.first_queue_id = std::string(first_hop.ColumnText(1));
        }
        first_hop.Reset();
      }
      q.snapshot.messages.push_back(std::move(m));
      q.traces.push_back(std::move(ref));
    }
    messages.Reset();
    hosts.push_back(std::move(q));
  }
  return hosts;
}

absl::Status AddSiteNotices(Database* catalog, int64_t since_us, int64_t until_us,
                            const std::vector<int64_t>& host_ids, int64_t now_us,
                            std::vector<std::string>* notices) {
  MAILLENS_ASSIGN_OR_RETURN(bool has_tables, HasSiteTables(catalog));
  if (!has_tables) return absl::OkStatus();
  auto host_filter = [&](const char* table) {
    if (host_ids.empty()) return std::string();
    return absl::StrCat(" AND ", table, ".host_id IN (", absl::StrJoin(host_ids, ","), ")");
  };
  auto more = [&](size_t n, const char* what) {
    if (n > kMaxNoticesPerKind) {
      notices->push_back(absl::StrCat(n - kMaxNoticesPerKind, " more ", what,
                                      " overlap the window; 'maillens status' lists them"));
    }
  };

  MAILLENS_ASSIGN_OR_RETURN(
      Statement gaps, catalog->Prepare(absl::StrCat(kGapsIn, host_filter("g"),
                                                    " ORDER BY g.noticed_us DESC, g.id DESC")));
  gaps.Bind(1, until_us).Bind(2, since_us);
  size_t n = 0;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, gaps.Step());
    if (step == Statement::StepResult::kDone) break;
    if (++n > kMaxNoticesPerKind) continue;
    std::string when = gaps.ColumnIsNull(3) ? absl::StrCat("before ", Utc(gaps.ColumnInt(4)))
                                            : absl::StrCat("between ", Utc(gaps.ColumnInt(3)),
                                                           " and ", Utc(gaps.ColumnInt(4)));
    notices->push_back(absl::StrCat("gap: ", core::ToAbsl(gaps.ColumnText(0)), " ",
                                    core::ToAbsl(gaps.ColumnText(1)), " lost lines written ", when,
                                    " (", core::ToAbsl(gaps.ColumnText(2)),
                                    "); results may be incomplete"));
  }
  more(n, "gaps");

  MAILLENS_ASSIGN_OR_RETURN(Statement offline,
                            catalog->Prepare(absl::StrCat(kOfflineIn, host_filter("o"),
                                                          " ORDER BY o.from_us DESC, o.id DESC")));
  offline.Bind(1, until_us).Bind(2, now_us).Bind(3, since_us);
  n = 0;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, offline.Step());
    if (step == Statement::StepResult::kDone) break;
    if (++n > kMaxNoticesPerKind) continue;
    std::string host(offline.ColumnText(0));
    if (offline.ColumnIsNull(2)) {
      notices->push_back(absl::StrCat("agent ", host, " offline since ", Utc(offline.ColumnInt(1)),
                                      ": its lines since then are not stored yet"));
    } else {
      notices->push_back(absl::StrCat("agent ", host, " was offline from ",
                                      Utc(offline.ColumnInt(1)), " to ", Utc(offline.ColumnInt(2)),
                                      ": lines of that span arrived late or, if its log rotated "
                                      "away meanwhile, are listed as gaps"));
    }
  }
  more(n, "offline periods");
  return absl::OkStatus();
}

}  // namespace maillens::store
