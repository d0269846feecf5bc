// SQL for the store's two kinds of database, with ordered migrations. Each list entry moves
// the schema from version i to i+1; the version lives in PRAGMA user_version, so a database
// is upgraded in place by running the entries it has not seen, each in its own transaction.
#ifndef MAILLENS_COLLECTOR_SCHEMA_H_
#define MAILLENS_COLLECTOR_SCHEMA_H_

#include <string_view>
#include <vector>

namespace maillens::collector {

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
  };
  return kMigrations;
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
-- Contentless: the text lives in events.raw. Indexed per line: the program and the message
-- (the time and host are columns), so every word, address, queue ID and message-id is found.
CREATE VIRTUAL TABLE events_fts USING fts5 (text, content='');
)sql",
  };
  return kMigrations;
}

}  // namespace maillens::collector

#endif  // MAILLENS_COLLECTOR_SCHEMA_H_
