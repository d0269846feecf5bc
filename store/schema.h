// SQL for the store's two kinds of database, with ordered migrations. Each list entry moves
// the schema from version i to i+1; the version lives in PRAGMA user_version, so a database
// is upgraded in place by running the entries it has not seen, each in its own transaction.
#ifndef MAILLENS_STORE_SCHEMA_H_
#define MAILLENS_STORE_SCHEMA_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/event.h"

namespace maillens::store {

// catalog.db: hosts, files, partitions and the correlator's state.
inline const std::vector<std::string_view>& CatalogMigrations() {
  static const std::vector<std::string_view> kMigrations = {
      R"sql(
CREATE TABLE hosts (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  last_seen_us INTEGER NOT NULL DEFAULT 0
);
-- Names and addresses under which a host appears in other hosts' relay= (lower case).
CREATE TABLE host_names (
  name TEXT PRIMARY KEY,
  host_id INTEGER NOT NULL REFERENCES hosts(id)
);
CREATE TABLE files (
  id INTEGER PRIMARY KEY,
  host_id INTEGER NOT NULL REFERENCES hosts(id),
  fingerprint INTEGER NOT NULL,
  path TEXT NOT NULL,
  UNIQUE (host_id, fingerprint)
);
CREATE TABLE partitions (
  day INTEGER PRIMARY KEY,          -- YYYYMMDD, UTC
  correlated_id INTEGER NOT NULL DEFAULT 0  -- events with id <= this are correlated
);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY,
  trace_id INTEGER NOT NULL,
  host_id INTEGER NOT NULL REFERENCES hosts(id),
  instance TEXT NOT NULL,
  queue_id TEXT NOT NULL,
  first_us INTEGER NOT NULL,
  last_us INTEGER NOT NULL,
  end_us INTEGER,
  message_id TEXT NOT NULL DEFAULT '',
  sender TEXT,
  size INTEGER NOT NULL DEFAULT -1,
  nrcpt INTEGER NOT NULL DEFAULT -1,
  client TEXT NOT NULL DEFAULT '',
  sasl_username TEXT NOT NULL DEFAULT '',
  origin TEXT NOT NULL DEFAULT '',
  disposition TEXT NOT NULL DEFAULT ''
);
CREATE INDEX messages_key ON messages (host_id, instance, queue_id, first_us);
CREATE INDEX messages_qid ON messages (queue_id, first_us);
CREATE INDEX messages_msgid ON messages (message_id) WHERE message_id != '';
CREATE INDEX messages_trace ON messages (trace_id);
CREATE INDEX messages_first ON messages (first_us);
CREATE TABLE recipients (
  message INTEGER NOT NULL REFERENCES messages(id),
  recipient TEXT NOT NULL,
  orig_to TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  dsn TEXT NOT NULL DEFAULT '',
  relay TEXT NOT NULL DEFAULT '',
  reply TEXT NOT NULL DEFAULT '',
  next_queue_id TEXT NOT NULL DEFAULT '',
  next_form TEXT NOT NULL DEFAULT '',
  time_us INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (message, recipient, orig_to)
);
CREATE TABLE links (
  from_message INTEGER NOT NULL REFERENCES messages(id),
  to_message INTEGER NOT NULL REFERENCES messages(id),
  kind TEXT NOT NULL,
  PRIMARY KEY (from_message, to_message)
);
CREATE INDEX links_to ON links (to_message);
-- A hop whose far side has not been seen yet.
CREATE TABLE pending (
  id INTEGER PRIMARY KEY,
  from_message INTEGER NOT NULL REFERENCES messages(id),
  from_host INTEGER NOT NULL,
  queue_id TEXT NOT NULL,
  relay_host TEXT NOT NULL DEFAULT '',
  relay_ip TEXT NOT NULL DEFAULT '',
  same_host INTEGER NOT NULL DEFAULT 0,
  kind TEXT NOT NULL,
  time_us INTEGER NOT NULL
);
CREATE INDEX pending_qid ON pending (queue_id, time_us);
)sql",
      // 2: the delivery's delay and its four-part split, for the trace view.
      R"sql(
ALTER TABLE recipients ADD COLUMN delay TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN delays TEXT NOT NULL DEFAULT '';
)sql",
      // 3: a link keeps the hop's evidence, so it can be undone when it turns out that the
      // receiving instance had ended before the hand-off (a reused queue ID).
      R"sql(
ALTER TABLE links ADD COLUMN time_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN from_host INTEGER NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN relay_host TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN relay_ip TEXT NOT NULL DEFAULT '';
ALTER TABLE links ADD COLUMN same_host INTEGER NOT NULL DEFAULT 0;
)sql",
      // 4: what the site looks like (store/site_state.h): spans of files agents lost,
      // agents with their sessions and per-file progress, and the periods they were offline.
      R"sql(
-- A span of a file an agent could not read and never will. An agent resends a gap with a
-- retried batch: the unique key keeps it once.
CREATE TABLE gaps (
  id INTEGER PRIMARY KEY,
  host_id INTEGER NOT NULL REFERENCES hosts(id),
  path TEXT NOT NULL,
  fingerprint INTEGER NOT NULL,
  from_offset INTEGER NOT NULL,
  to_offset INTEGER,                -- NULL: the end is unknown
  reason TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  noticed_us INTEGER NOT NULL,
  window_from_us INTEGER,           -- the time span the lost lines were written in, estimated
  window_to_us INTEGER,             -- from the stored lines beside it; NULL: unknown
  UNIQUE (host_id, fingerprint, from_offset, reason)
);
CREATE INDEX gaps_noticed ON gaps (noticed_us);
CREATE TABLE agents (
  host_id INTEGER PRIMARY KEY REFERENCES hosts(id),
  role TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  addresses TEXT NOT NULL DEFAULT '',  -- space separated, as announced
  streams INTEGER NOT NULL DEFAULT 0,  -- open streams; 0: offline
  first_seen_us INTEGER NOT NULL,
  last_seen_us INTEGER NOT NULL,
  last_connect_us INTEGER NOT NULL DEFAULT 0,
  last_disconnect_us INTEGER NOT NULL DEFAULT 0,
  last_event_us INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE agent_files (
  host_id INTEGER NOT NULL REFERENCES hosts(id),
  fingerprint INTEGER NOT NULL,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  read_offset INTEGER NOT NULL,
  acked_offset INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  PRIMARY KEY (host_id, fingerprint)
);
CREATE TABLE offline_periods (
  id INTEGER PRIMARY KEY,
  host_id INTEGER NOT NULL REFERENCES hosts(id),
  from_us INTEGER NOT NULL,
  to_us INTEGER,                    -- NULL: still offline
  UNIQUE (host_id, from_us)
);
CREATE INDEX offline_periods_to ON offline_periods (to_us);
)sql",
      // 5: the latest queue snapshot per host (postqueue -j, read by the agent), replaced
      // whole by each newer one; `maillens queue` reads it.
      R"sql(
CREATE TABLE queue_snapshots (
  host_id INTEGER PRIMARY KEY REFERENCES hosts(id),
  taken_us INTEGER NOT NULL,        -- when the agent read the queue
  interval_us INTEGER NOT NULL DEFAULT 0,  -- since the previous snapshot; 0: first one
  error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE queue_messages (
  id INTEGER PRIMARY KEY,
  host_id INTEGER NOT NULL REFERENCES hosts(id),
  queue_name TEXT NOT NULL,
  queue_id TEXT NOT NULL,
  instance TEXT NOT NULL DEFAULT '',
  arrival_us INTEGER NOT NULL,
  size INTEGER NOT NULL,
  sender TEXT NOT NULL,
  forced_expire INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_messages_host ON queue_messages (host_id);
CREATE TABLE queue_recipients (
  message INTEGER NOT NULL REFERENCES queue_messages(id),
  address TEXT NOT NULL,
  delay_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX queue_recipients_message ON queue_recipients (message);
)sql",
      // 6: an instance is found by its queue ID alone (messages_qid), then its host and
      // Postfix instance: a queue ID names one or a few instances. The index on all three
      // was a fifth random B-tree insert per message (docs/CORRELATION.md, "Decisions").
      R"sql(
DROP INDEX messages_key;
)sql",
      // 7: acknowledged lines the store cannot put in their day yet: the day is archived and
      // the archive cannot be trusted, so the day is neither restored nor started anew beside
      // its archive file (store/retention.h, RestoreDay). Store::Append stores them once
      // it can; until then `maillens status` warns.
      R"sql(
CREATE TABLE held_lines (
  id INTEGER PRIMARY KEY,
  host TEXT NOT NULL,
  file_path TEXT NOT NULL,
  fingerprint INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  time_us INTEGER NOT NULL,
  raw BLOB NOT NULL,
  reason TEXT NOT NULL,
  held_us INTEGER NOT NULL,
  UNIQUE (fingerprint, offset)
);
)sql",
      // 8: what Dovecot did with mail handed to it (LMTP, LDA): one row per delivery line,
      // with the session ID Dovecot's LMTP reply names. A trace joins them to its hops when it
      // is read (Correlator::AddMailboxSteps), so the two logs may arrive in either order.
      R"sql(
CREATE TABLE mailbox_deliveries (
  host_id INTEGER NOT NULL,
  session TEXT NOT NULL,            -- '' when the line names none (LDA)
  time_us INTEGER NOT NULL,
  user TEXT NOT NULL,
  message_id TEXT NOT NULL,         -- '' when Dovecot logged 'unspecified'
  status TEXT NOT NULL,             -- saved, failed, discarded, redirected, rejected, replied
  action TEXT NOT NULL,             -- the Sieve action, '' for Dovecot's own delivery
  mailbox TEXT NOT NULL,
  target TEXT NOT NULL,             -- where a redirect, reject or vacation reply went
  reason TEXT NOT NULL,
  UNIQUE (session, host_id, time_us, status, action, mailbox, target)
);
CREATE INDEX mailbox_deliveries_msgid ON mailbox_deliveries (message_id, time_us);
)sql",
      // 9: the indexes a search for from:A to:B reads instead of the messages' rows, which lie
      // scattered: a queue's instances with their host and trace, and a trace's queues
      // (Store::InstancesOf, Store::QueuesOfTraces).
      R"sql(
DROP INDEX messages_qid;
CREATE INDEX messages_qid ON messages (queue_id, first_us, host_id, trace_id);
DROP INDEX messages_trace;
CREATE INDEX messages_trace ON messages (trace_id, host_id, queue_id);
)sql",
  };
  return kMigrations;
}

// The lines a report reads from a partition: smtpd's client, reject, check-action (reject
// warnings, holds) and SASL failure lines; other smtpd chatter, postscreen and dnsblog; pickups;
// deferrals; warning, fatal and panic lines; Dovecot login failures. About one line in ten. One
// expression for the partial index that holds them and for the report's query, because SQLite
// uses a partial index only for a query whose WHERE clause contains the index's condition.
inline const std::string& ReportLinesCondition() {
  using core::Kind;
  static_assert(static_cast<int>(Kind::kReject) == static_cast<int>(Kind::kClient) + 1 &&
                    static_cast<int>(Kind::kSaslFailed) == static_cast<int>(Kind::kClient) + 3,
                "the report's lines include kClient..kSaslFailed as one range");
  static_assert(static_cast<int>(Kind::kDnsblListed) == static_cast<int>(Kind::kSmtpdOther) + 7,
                "the report's lines include kSmtpdOther..kDnsblListed as one range");
  static const std::string* kCondition = new std::string(absl::StrCat(
      "(kind BETWEEN ", static_cast<int>(Kind::kClient), " AND ",
      static_cast<int>(Kind::kSaslFailed), " OR kind BETWEEN ", static_cast<int>(Kind::kSmtpdOther),
      " AND ", static_cast<int>(Kind::kDnsblListed), " OR kind = ", static_cast<int>(Kind::kPickup),
      " OR kind = ", static_cast<int>(Kind::kLogMessage),
      " OR kind = ", static_cast<int>(Kind::kDovecotAuth),
      " OR (kind = ", static_cast<int>(Kind::kDelivery), " AND status = 'deferred'))"));
  return *kCondition;
}

// Partition migration 2: the report reads its few lines through a partial index instead of
// scanning the whole day for them (docs/REPORT.md, "Decisions"). Migration 6 makes it again
// when the condition grew.
inline std::string_view ReportIndexMigration() {
  static const std::string* kSql = new std::string(absl::StrCat(
      "CREATE INDEX events_report ON events (ts_us) WHERE ", ReportLinesCondition(), ";"));
  return *kSql;
}

inline std::string_view ReportIndexRebuild() {
  static const std::string* kSql =
      new std::string("DROP INDEX events_report; " + std::string(ReportIndexMigration()));
  return *kSql;
}

// The full-text index of a partition's lines, in the partition (migration 1) or in its side
// file. Contentless: the text lives in events.raw. Indexed per line: the program and the
// message (the time and host are columns), so every word, address, queue ID and message-id is
// found. One declaration for both places, so an index built in a side file can be copied
// into a partition table by table (retention.cc, when a day is archived).
inline constexpr char kCreateFtsTable[] =
    "CREATE VIRTUAL TABLE events_fts USING fts5 (text, content='')";

// The queues each address was seen in on a day: one row per (address token, host, queue ID)
// for every line with a queue ID and a from=, to= or orig_to= address, written with the line's
// full-text entry. The token is the FNV-1a hash of "mf" (from=) or "mt" (to=, orig_to=) and
// the lower-cased address (AddressHash in store.cc). A search for from:A to:B takes the
// queues of each address from here instead of reading their lines (message_search.cc); a
// collision only adds a candidate queue. In the partition beside its events_fts, or in the
// side file.
inline constexpr char kCreateAddressQueues[] =
    "CREATE TABLE address_queues (token INTEGER NOT NULL, host_id INTEGER NOT NULL, "
    "queue_id TEXT NOT NULL, PRIMARY KEY (token, host_id, queue_id)) WITHOUT ROWID";
// The partition feature saying its day's address_queues (wherever the index lives) holds
// every line of the day: only a partition created empty has it.
inline constexpr char kAddressQueuesFeature[] = "address_queues";

inline std::string_view AddressQueuesMigration() {
  static const std::string* kSql = new std::string(
      absl::StrCat(kCreateAddressQueues, "; INSERT INTO features (name) SELECT '",
                   kAddressQueuesFeature, "' WHERE NOT EXISTS (SELECT 1 FROM events);"));
  return *kSql;
}

// days/YYYYMMDD.db: the lines of one UTC day and their full-text index.
inline const std::vector<std::string_view>& PartitionMigrations() {
  static const std::vector<std::string_view> kMigrations = {
      R"sql(
CREATE TABLE events (
  id INTEGER PRIMARY KEY,
  ts_us INTEGER NOT NULL,
  host_id INTEGER NOT NULL,
  file_id INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  queue_id TEXT,
  sender TEXT,
  recipient TEXT,
  status TEXT,
  message_id TEXT,
  raw BLOB NOT NULL,
  UNIQUE (file_id, offset)
);
CREATE INDEX events_ts ON events (ts_us);
CREATE INDEX events_qid ON events (queue_id) WHERE queue_id IS NOT NULL;
-- kCreateFtsTable, as it was written when this migration was.
CREATE VIRTUAL TABLE events_fts USING fts5 (text, content='');
)sql",
      ReportIndexMigration(),
      // 3: features a partition's lines were indexed with. `address_tokens`: every from=, to=
      // and orig_to= address also as one token (AddressToken in store.cc), so an exact address
      // search reads one short doclist. Only a partition created empty has it; older ones are
      // searched by phrase.
      R"sql(
CREATE TABLE features (name TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO features (name) SELECT 'address_tokens' WHERE NOT EXISTS (SELECT 1 FROM events);
)sql",
      // 4: `field_address_tokens`: the address tokens name their field, one for from= and one
      // for to= and orig_to= (what from: and to: match), so an exact from: or to: search is
      // answered by the index alone: counted from its doclist, no line parsed but the shown
      // ones. Only a partition created empty has it.
      R"sql(
INSERT INTO features (name) SELECT 'field_address_tokens' WHERE NOT EXISTS (SELECT 1 FROM events);
)sql",
      // 5: the full-text index buffers 16 MB of terms (FTS5's default: 1 MB) before it writes
      // a segment: fewer, larger segments to merge within a large transaction. Every commit
      // writes its terms out anyway, so it matters little at an import's 5,000-line commits
      // (docs/STORAGE.md, "Decisions").
      R"sql(
INSERT INTO events_fts (events_fts, rank) VALUES ('hashsize', 16777216);
)sql",
      // 6: the report's index also holds warnings, postscreen, dnsblog and Dovecot login lines
      // (the report's problems, postscreen and abuse sections); without it the report's query
      // would read the whole day.
      ReportIndexRebuild(),
      // 7: address_queues (kCreateAddressQueues); complete only in a partition created empty.
      AddressQueuesMigration(),
      // 8: the report's index again, for the condition that grew to warnings, postscreen,
      // dnsblog and Dovecot login lines after partitions had taken migration 6: without it
      // the report's query no longer matches their index and reads the whole day.
      ReportIndexRebuild(),
      // 9: the report's index again, for its condition written without IN: SQLite evaluates
      // a partial index's condition for every inserted line, and a constant IN list there
      // costs far more per line than the same test written with OR (docs/REPORT.md,
      // "Decisions").
      ReportIndexRebuild(),
  };
  return kMigrations;
}

// A partition created by this version keeps its full-text index in a file of its own beside
// it, days/YYYYMMDD.fts.db, so that the index is written on a thread of its own while the
// lines go into the partition (one SQLite file has one writer). Such a partition has the
// feature "fts_file" and no events_fts table; its connections attach the side file as `fts`,
// where the unqualified name events_fts finds it. Archiving a day copies the index back into
// the partition (retention.cc), so an archived or restored day is one file again.
inline constexpr char kFtsFileFeature[] = "fts_file";

// Attaches a side file (the parameter: its path) to a partition's connection.
inline constexpr char kAttachFts[] = "ATTACH DATABASE ? AS fts";

inline std::string FtsFilePath(std::string_view partition_path) {
  std::string_view stem = partition_path;
  if (stem.size() > 3 && stem.substr(stem.size() - 3) == ".db") stem.remove_suffix(3);
  return std::string(stem) + ".fts.db";
}

// days/YYYYMMDD.fts.db: the side file's index and how far it has got. Lines of the partition
// with id <= indexed_id are in the index; the store indexes the rest when it opens the day.
inline const std::vector<std::string_view>& FtsFileMigrations() {
  static const std::string* kFirst = new std::string(absl::StrCat(kCreateFtsTable, ";", R"sql(
INSERT INTO events_fts (events_fts, rank) VALUES ('hashsize', 16777216);
CREATE TABLE fts_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  indexed_id INTEGER NOT NULL
);
INSERT INTO fts_state (id, indexed_id) VALUES (1, 0);
)sql"));
  // 2: address_queues (kCreateAddressQueues). Whether it is complete is the partition's
  // feature, which only a partition created empty has, with a side file created empty.
  static const std::vector<std::string_view> kMigrations = {*kFirst, kCreateAddressQueues};
  return kMigrations;
}

}  // namespace maillens::store

#endif  // MAILLENS_STORE_SCHEMA_H_
