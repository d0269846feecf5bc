#include "store/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/file_fingerprint.h"
#include "core/json.h"
#include "core/parser.h"
#include "core/status_macros.h"
#include "core/strings.h"
#include "store/retention.h"
#include "store/schema.h"

namespace maillens::store {
namespace {

constexpr char kInsertHost[] = "INSERT INTO hosts (name) VALUES (?)";
constexpr char kSelectHosts[] = "SELECT id, name FROM hosts";
constexpr char kInsertFile[] = "INSERT INTO files (host_id, fingerprint, path) VALUES (?, ?, ?)";
constexpr char kSelectFile[] = "SELECT id FROM files WHERE host_id = ? AND fingerprint = ?";
constexpr char kInsertEvent[] =
    "INSERT OR IGNORE INTO events (ts_us, host_id, file_id, offset, kind, queue_id, sender, "
    "recipient, status, message_id, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kInsertFts[] = "INSERT INTO events_fts (rowid, text) VALUES (?, ?)";
constexpr char kSelectIndexedId[] = "SELECT indexed_id FROM fts_state WHERE id = 1";
constexpr char kSetIndexedId[] = "UPDATE fts_state SET indexed_id = ? WHERE id = 1";
constexpr char kSelectLastId[] = "SELECT coalesce(max(id), 0) FROM events";
constexpr char kSelectRawAfter[] =
    "SELECT id, raw, host_id FROM events WHERE id > ? ORDER BY id LIMIT 20000";
// A message's lines: its queue ID's among the index's hits for it (every line of the queue ID
// holds it as a word; a partition created with a side file, or written whole, has no
// events_qid index).
constexpr char kSelectMessageLines[] =
    "SELECT id, ts_us, raw FROM events WHERE queue_id = ? AND host_id = ? AND ts_us >= ? AND "
    "ts_us <= ? AND id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?) "
    "ORDER BY ts_us, id";
constexpr char kSelectPartitions[] = "SELECT day, correlated_id FROM partitions ORDER BY day";
// A day's row is made by its first correlation (Append).
constexpr char kSetCorrelated[] =
    "INSERT INTO partitions (day, correlated_id) VALUES (?2, ?1) "
    "ON CONFLICT (day) DO UPDATE SET correlated_id = excluded.correlated_id";
constexpr char kSelectEventsAfter[] =
    "SELECT id, ts_us, host_id, raw FROM events WHERE id > ? ORDER BY id LIMIT 20000";
constexpr char kInsertHostName[] =
    "INSERT INTO host_names (name, host_id) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET host_id = excluded.host_id";

// Applies the migrations `db` has not seen yet, each in its own transaction.
absl::Status Migrate(Database* db, const std::vector<std::string_view>& migrations) {
  MAILLENS_ASSIGN_OR_RETURN(Statement version, db->Prepare("PRAGMA user_version"));
  MAILLENS_ASSIGN_OR_RETURN(auto step, version.Step());
  int64_t have = step == Statement::StepResult::kRow ? version.ColumnInt(0) : 0;
  version.Reset();
  if (have > static_cast<int64_t>(migrations.size())) {
    return absl::FailedPreconditionError(absl::StrCat(db->path(), " has schema version ", have,
                                                      ", newer than this maillens (",
                                                      migrations.size(), "); upgrade maillens"));
  }
  for (size_t i = have; i < migrations.size(); ++i) {
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
    MAILLENS_RETURN_IF_ERROR(db->Exec(migrations[i]));
    MAILLENS_RETURN_IF_ERROR(db->Exec(absl::StrCat("PRAGMA user_version = ", i + 1)));
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
  }
  return absl::OkStatus();
}

// The schema version `db` is at (0: a new file).
absl::StatusOr<int64_t> SchemaVersion(Database* db) {
  MAILLENS_ASSIGN_OR_RETURN(Statement version, db->Prepare("PRAGMA user_version"));
  MAILLENS_ASSIGN_OR_RETURN(auto step, version.Step());
  return step == Statement::StepResult::kRow ? version.ColumnInt(0) : 0;
}

// The bytes of an empty database with `migrations` applied and then `finish`, as a file of
// the store is: in WAL mode, with pages of `page_size` bytes. New partitions and their side files
// are written from it, at the cost of a write and an fsync, and a day built in memory starts
// from it; migrating each new file instead would take five transactions and a switch to WAL,
// each with its own fsyncs, for every new day (docs/STORAGE.md, "Decisions").
absl::StatusOr<std::string> EmptyDatabaseImage(const std::vector<std::string_view>& migrations,
                                               std::string_view finish, int page_size = 16384) {
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                            Database::Open(":memory:", Database::Mode::kReadWrite, false));
  // A day's files take 16 KB pages, SQLite's default 4 KB: a commit writes a quarter as many
  // WAL frames, and FTS5 segments and long raw lines need fewer overflow pages
  // (docs/STORAGE.md, "Decisions"). A day written whole from memory takes 4 KB (MakeImages).
  MAILLENS_RETURN_IF_ERROR(db->Exec(absl::StrCat("PRAGMA page_size=", page_size)));
  MAILLENS_RETURN_IF_ERROR(Migrate(db.get(), migrations));
  if (!finish.empty()) {
    MAILLENS_RETURN_IF_ERROR(db->Exec(finish));
    // The pages `finish` freed would be written with every new day.
    MAILLENS_RETURN_IF_ERROR(db->Exec("VACUUM"));
  }
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db->raw(), "main", &size, 0);
  if (bytes == nullptr || size < 100) {
    sqlite3_free(bytes);
    return absl::ResourceExhaustedError("cannot serialize an empty database");
  }
  std::string image(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
  sqlite3_free(bytes);
  // The database header's bytes 18 and 19, the file format's write and read versions: 2 is
  // WAL (a database in memory has none).
  image[18] = 2;
  image[19] = 2;
  return image;
}

// An in-memory database holding `image` (EmptyDatabaseImage's), to be filled and written
// whole with FinalImageOf.
absl::StatusOr<std::unique_ptr<Database>> DatabaseFromImage(std::string_view image) {
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                            Database::Open(":memory:", Database::Mode::kReadWrite, false));
  auto* bytes = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
  if (bytes == nullptr) return absl::ResourceExhaustedError("out of memory for a new day");
  std::memcpy(bytes, image.data(), image.size());
  bytes[18] = 1;  // rollback journal: a database in memory has no WAL
  bytes[19] = 1;
  int rc = sqlite3_deserialize(db->raw(), "main", bytes, image.size(), image.size(),
                               SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
  if (rc != SQLITE_OK) return db->Error("load the image of an empty day");
  return db;
}

// The file image of in-memory database `db` (DatabaseFromImage's), marked WAL as the store's
// files are: a view of the database's own memory, which `db` must not be used after.
absl::StatusOr<std::string_view> FinalImageOf(Database* db) {
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db->raw(), "main", &size, SQLITE_SERIALIZE_NOCOPY);
  if (bytes == nullptr || size < 100) return db->Error("serialize a new day");
  bytes[18] = 2;
  bytes[19] = 2;
  return std::string_view(reinterpret_cast<const char*>(bytes), static_cast<size_t>(size));
}

std::string PartitionPath(const std::string& dir, int64_t day) {
  return absl::StrCat(dir, "/days/", day, ".db");
}

// The catalog migration that made mailbox_deliveries (store/schema.h).
constexpr int64_t kMailboxDeliveriesVersion = 8;
constexpr char kSelectDovecotDeliveries[] =
    "SELECT ts_us, host_id, raw FROM events WHERE kind = ? ORDER BY id";

// A store that had lines before mailbox_deliveries existed: the Dovecot delivery lines it
// stored then are taken into the table once, so that older mail shows its mailbox step too
// (the correlator skipped them when they came). Hot days only: an archived day's lines are
// not read back, and its traces stay without the step.
absl::Status TakeInStoredMailboxDeliveries(const std::string& dir, Database* catalog,
                                           Correlator* correlator) {
  core::TimeContext time{core::TimeOptions()};
  for (int64_t day : HotDays(dir)) {
    MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> partition,
                              Database::Open(PartitionPath(dir, day), Database::Mode::kReadOnly));
    MAILLENS_ASSIGN_OR_RETURN(Statement select, partition->Prepare(kSelectDovecotDeliveries));
    select.Bind(1, static_cast<int64_t>(core::Kind::kDovecotDelivery));
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      core::Event ev = core::ParseLine(select.ColumnText(2), &time);
      MAILLENS_RETURN_IF_ERROR(correlator->Observe(select.ColumnInt(1), ev, select.ColumnInt(0)));
    }
    MAILLENS_RETURN_IF_ERROR(correlator->Flush());
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
  }
  return absl::OkStatus();
}

// A view as an optional SQL text: NULL when the field is absent.
void BindOptional(Statement& stmt, int index, std::string_view value, bool lower = false) {
  if (value.data() == nullptr) {
    stmt.BindNull(index);
  } else if (lower) {
    stmt.BindText(index, core::Lower(value));
  } else {
    stmt.BindText(index, value);
  }
}

// FTS5 query from words: each word becomes a quoted phrase, so addresses, queue IDs and
// message-ids match as written ("bob@example.org" -> tokens bob, example, org in order).
// Each word a phrase; a word ending in '*' (core::LiteralOf, or typed) makes its last token a
// prefix, as core::ContainsWord reads it.
std::string FtsQuery(const std::vector<std::string>& words) {
  std::string q;
  for (const std::string& w : words) {
    if (!q.empty()) q.push_back(' ');
    const bool prefix = !w.empty() && w.back() == '*';
    q.push_back('"');
    q.append(absl::StrReplaceAll(prefix ? w.substr(0, w.size() - 1) : w, {{"\"", "\"\""}}));
    q.push_back('"');
    if (prefix) q.append(" *");
  }
  return q;
}

// The extra token under which the index holds a line's address (lower case): a prefix and the
// FNV-1a hash of the address in hex, one token however many dots and '@' the address has.
// Prefixes: "ma" any field (schema 3), "mf" from=, "mt" to= and orig_to= (schema 4). A
// collision (two addresses, one hash: about 1 in 10^8 for a million addresses in a day) only
// adds a candidate, which the check of each shown line drops.
std::string AddressToken(std::string_view prefix, std::string_view lowered_address) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : lowered_address) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  // Formatted by hand, not with StrFormat: this runs on the index thread for most lines of a
  // relay's log (docs/STORAGE.md, "Decisions").
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token(prefix.size() + 16, '0');
  std::copy(prefix.begin(), prefix.end(), token.begin());
  for (size_t i = token.size(); i > prefix.size(); --i, h >>= 4) token[i - 1] = kHex[h & 0xf];
  return token;
}

// The token of an address in address_queues (schema.h): FNV-1a over the field's prefix ("mf"
// from=, "mt" to= and orig_to=) and the lower-cased address.
int64_t AddressHash(std::string_view prefix, std::string_view lowered_address) {
  uint64_t h = 1469598103934665603ULL;
  for (std::string_view part : {prefix, lowered_address}) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  return static_cast<int64_t>(h);
}

constexpr char kInsertAddressQueue[] =
    "INSERT OR IGNORE INTO address_queues (token, host_id, queue_id) VALUES (?, ?, ?)";

// The address_queues rows of one line: none without a Postfix queue ID or an address.
absl::Status InsertAddressQueues(Statement* insert, const core::Event& ev, int64_t host_id) {
  if (ev.queue_id_form != core::QueueIdForm::kShort &&
      ev.queue_id_form != core::QueueIdForm::kLong) {
    return absl::OkStatus();
  }
  for (core::Field field : {core::Field::kFrom, core::Field::kTo, core::Field::kOrigTo}) {
    std::string_view address = ev.Get(field);
    if (address.empty()) continue;
    insert->Bind(1, AddressHash(field == core::Field::kFrom ? "mf" : "mt", core::Lower(address)))
        .Bind(2, host_id)
        .BindText(3, ev.queue_id);
    MAILLENS_RETURN_IF_ERROR(insert->Run());
  }
  return absl::OkStatus();
}

// What the full-text index holds of a line is core::IndexedText: the program and the message.
// The time and the host are columns of their own; leaving them out keeps the index smaller
// (docs/STORAGE.md, "What it holds").

// The text the index holds of line `raw` (parsed as `ev`): IndexedText, and the address
// tokens of the partition's kind. Returns a view of `raw` or of `*buffer`.
std::string_view FtsText(const core::Event& ev, std::string_view raw, AddressIndex tokens,
                         std::string* buffer) {
  std::string_view text = core::IndexedText(ev, raw);
  if (tokens == AddressIndex::kWords) return text;
  buffer->assign(text);
  for (core::Field field : {core::Field::kFrom, core::Field::kTo, core::Field::kOrigTo}) {
    std::string_view address = ev.Get(field);
    if (address.empty()) continue;
    std::string_view prefix = tokens == AddressIndex::kCombined ? "ma"
                              : field == core::Field::kFrom     ? "mf"
                                                                : "mt";
    absl::StrAppend(buffer, " ", AddressToken(prefix, core::Lower(address)));
  }
  return *buffer;
}

absl::StatusOr<int64_t> SelectInt(Database* db, const char* sql) {
  MAILLENS_ASSIGN_OR_RETURN(Statement select, db->Prepare(sql));
  MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
  if (step != Statement::StepResult::kRow) {
    return absl::DataLossError(absl::StrCat(db->path(), ": no row for '", sql, "'"));
  }
  return select.ColumnInt(0);
}

}  // namespace

int64_t DayOf(int64_t time_us) {
  absl::CivilDay day = absl::ToCivilDay(absl::FromUnixMicros(time_us), absl::UTCTimeZone());
  return day.year() * 10000 + day.month() * 100 + day.day();
}

int64_t DayStartUs(int64_t day) {
  absl::CivilDay civil(day / 10000, day / 100 % 100, day % 100);
  return absl::ToUnixMicros(absl::FromCivil(civil, absl::UTCTimeZone()));
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store(options));
  MAILLENS_RETURN_IF_ERROR(store->Init());
  return store;
}

Store::~Store() {
  // What they fail to correlate or index, the next Open correlates or indexes from disk.
  absl::Status s = Flush();
  (void)s;
  correlator_worker_.reset();
  fts_worker_.reset();
  days_worker_.reset();
}

namespace {

// A new catalog vacuums incrementally: retention forgets the rows of deleted days, and
// PurgeDeletedMessages gives their pages back to the file system (PRAGMA incremental_vacuum),
// so the catalog shrinks instead of keeping them for reuse. The setting must precede WAL
// mode, which Database::Open turns on; a catalog made by an older maillens keeps its own.
absl::Status CreateCatalogFile(const std::string& path) {
  // The first connection of a fresh data directory initializes SQLite: configured first, as
  // Database::Open is, or SQLite counts its memory under a mutex for the process's life.
  ConfigureSqlite();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc == SQLITE_OK) {
    // A reader may open the new file meanwhile (a search, a test counting lines): wait for it,
    // as Database::Open's connections do, rather than fail with "database is locked".
    sqlite3_busy_timeout(raw, 10000);
    rc = sqlite3_exec(raw, "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL;", nullptr,
                      nullptr, nullptr);
  }
  std::string error = raw != nullptr ? sqlite3_errmsg(raw) : "out of memory";
  sqlite3_close(raw);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", error));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

// Correlator::LineReader (correlator.h).
constexpr char kSelectQueueIdLines[] =
    "SELECT id, ts_us, raw FROM events WHERE queue_id = ? AND host_id = ? AND ts_us >= ? AND "
    "ts_us <= ? ORDER BY ts_us, id";
constexpr char kSelectCorrelatedDays[] =
    "SELECT day FROM partitions WHERE day >= ? AND day <= ? AND correlated_id > 0";

// Correlator::LineReader over `site`'s partitions (the hot days): the lines of `queue_id` on
// host `host_id` in [from_us, until_us]. FailedPrecondition when the span has a day with
// correlated lines that is not hot (archived): its lines cannot be read here.
absl::StatusOr<std::vector<StoredQueueLine>> ReadQueueIdLines(const SiteDatabases& site,
                                                              int64_t host_id,
                                                              const std::string& queue_id,
                                                              int64_t from_us, int64_t until_us) {
  const int64_t first_day = DayOf(from_us);
  const int64_t last_day = DayOf(until_us);
  std::set<int64_t> hot;
  for (int64_t day : site.days) {
    if (day >= first_day && day <= last_day) hot.insert(day);
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement * days, site.catalog->Cached(kSelectCorrelatedDays));
  days->Bind(1, first_day).Bind(2, last_day);
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, days->Step());
    if (step == Statement::StepResult::kDone) break;
    const int64_t day = days->ColumnInt(0);
    if (hot.count(day) == 0) {
      days->Reset();
      return absl::FailedPreconditionError(absl::StrCat("day ", day, " is not hot"));
    }
  }
  days->Reset();
  std::vector<StoredQueueLine> lines;
  for (int64_t day : hot) {
    MAILLENS_ASSIGN_OR_RETURN(Database * db, site.partition(day));
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, db->Cached(kSelectQueueIdLines));
    select->BindText(1, queue_id).Bind(2, host_id).Bind(3, from_us).Bind(4, until_us);
    while (true) {
      absl::StatusOr<Statement::StepResult> step = select->Step();
      if (!step.ok()) {
        select->Reset();
        return step.status();
      }
      if (*step == Statement::StepResult::kDone) break;
      lines.push_back(StoredQueueLine{day, select->ColumnInt(0), select->ColumnInt(1),
                                      std::string(select->ColumnText(2))});
    }
    select->Reset();
  }
  return lines;
}

}  // namespace

absl::Status Store::Init() {
  std::error_code ec;
  if (!options_.read_only) {
    std::filesystem::create_directories(options_.dir + "/days", ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot create data directory ", options_.dir, ": ", ec.message()));
    }
  } else if (!std::filesystem::exists(options_.dir + "/catalog.db")) {
    return absl::NotFoundError(
        absl::StrCat("no maillens data in ", options_.dir, " (run 'maillens import' first)"));
  }
  if (!options_.read_only && !std::filesystem::exists(options_.dir + "/catalog.db")) {
    MAILLENS_RETURN_IF_ERROR(CreateCatalogFile(options_.dir + "/catalog.db"));
  }
  MAILLENS_RETURN_IF_ERROR(OpenDatabase(options_.dir + "/catalog.db", &catalog_));
  int64_t catalog_version = 0;  // before this open's migrations
  if (!options_.read_only) {
    MAILLENS_ASSIGN_OR_RETURN(catalog_version, SchemaVersion(catalog_.get()));
    MAILLENS_RETURN_IF_ERROR(Migrate(catalog_.get(), CatalogMigrations()));
  }
  if (!options_.read_only && !options_.durable) {
    // An import: as for its partitions (Partition). The correlator's indexes of message
    // instances take random pages, which frequent checkpoints would copy back again and again
    // (docs/STORAGE.md, "Decisions").
    MAILLENS_RETURN_IF_ERROR(catalog_->Exec("PRAGMA wal_autocheckpoint=10000"));
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement hosts, catalog_->Prepare(kSelectHosts));
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, hosts.Step());
    if (step == Statement::StepResult::kDone) break;
    host_ids_[std::string(hosts.ColumnText(1))] = hosts.ColumnInt(0);
  }
  correlator_ = std::make_unique<Correlator>(catalog_.get(), CorrelatorOptions());
  // Through the correlator's own read connections: it may run on the store's thread.
  correlator_->SetLineReader(
      [this](int64_t host_id, const std::string& queue_id, int64_t from_us, int64_t until_us) {
        return ReadQueueIdLines(CorrelatorSite(), host_id, queue_id, from_us, until_us);
      });
  if (!options_.read_only) {
    MAILLENS_RETURN_IF_ERROR(CorrelatePending());
    if (catalog_version > 0 && catalog_version < kMailboxDeliveriesVersion) {
      absl::Status taken =
          TakeInStoredMailboxDeliveries(options_.dir, catalog_.get(), correlator_.get());
      if (!taken.ok()) {
        correlator_->Reset();
        return taken;
      }
    }
    // Opening a partition for writing indexes the lines a crash left out of its side file.
    for (int64_t day : HotDays(options_.dir)) {
      absl::StatusOr<Database*> db = Partition(day, /*create=*/false);
      if (!db.ok() && !absl::IsNotFound(db.status())) return db.status();
    }
    // Opened again when used: a collector keeping months hot would otherwise hold six files
    // open per day from the start.
    partitions_.clear();
    {
      core::MutexLock lock(&fts_files_mu_);
      fts_files_.clear();
    }
    address_index_.clear();
  }
  if (!options_.read_only && options_.correlate_behind) {
    correlator_worker_ =
        std::make_unique<BehindWorker>(options_.behind_depth, options_.behind_nice);
    fts_worker_ = std::make_unique<BehindWorker>(options_.behind_depth, options_.behind_nice);
    if (!options_.durable) {
      days_worker_ = std::make_unique<BehindWorker>(options_.behind_depth, options_.behind_nice);
    }
  }
  return absl::OkStatus();
}

std::vector<int64_t> Store::Days() const {
  if (!options_.read_only) return HotDays(options_.dir);
  const absl::Time now = absl::Now();
  if (now - days_listed_at_ > absl::Seconds(1) || now < days_listed_at_) {
    days_listed_ = AllDays(options_.dir);
    days_listed_at_ = now;
  }
  return days_listed_;
}

absl::Status Store::OpenDatabase(const std::string& path, std::unique_ptr<Database>* out) {
  MAILLENS_ASSIGN_OR_RETURN(
      *out, Database::Open(
                path, options_.read_only ? Database::Mode::kReadOnly : Database::Mode::kReadWrite,
                options_.durable));
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Store::CountLines() {
  MAILLENS_RETURN_IF_ERROR(Flush());  // new days may be written behind
  uint64_t total = 0;
  for (int64_t day : Days()) {
    MAILLENS_ASSIGN_OR_RETURN(Database * db, Partition(day, /*create=*/false));
    MAILLENS_ASSIGN_OR_RETURN(Statement count, db->Prepare("SELECT count(*) FROM events"));
    MAILLENS_ASSIGN_OR_RETURN(auto step, count.Step());
    if (step == Statement::StepResult::kRow) total += count.ColumnInt(0);
  }
  return total;
}

absl::Status Store::MakeImages() {
  if (partition_image_.empty()) {
    // A new partition keeps its full-text index in a side file (kFtsFileFeature), and has no
    // index of queue IDs: the full-text index finds a message's lines (MessageLines), and that
    // B-tree, filled in random order, rewrites pages all over itself in every commit
    // (docs/STORAGE.md, "Decisions").
    MAILLENS_ASSIGN_OR_RETURN(
        partition_image_,
        EmptyDatabaseImage(PartitionMigrations(),
                           absl::StrCat("DROP TABLE events_fts; DROP TABLE address_queues; "
                                        "DROP INDEX events_qid; "
                                        "INSERT INTO features (name) VALUES ('",
                                        kFtsFileFeature, "');")));
    MAILLENS_ASSIGN_OR_RETURN(fts_image_, EmptyDatabaseImage(FtsFileMigrations(), ""));
    // A day built in memory (StartNewDay) is one file: its index inline, as in a partition of
    // an older maillens, and 4 KB pages. Such a day holds at most a batch's lines, most often a
    // quiet host's whole day; an import of months of sparse logs writes one every few hundred
    // lines, so what a day costs beside its lines sets that import's speed: two files of
    // 16 KB pages would mean two images to copy, fault in and load a schema into, and two
    // files to create, write and fsync (docs/STORAGE.md, "Decisions"). Later lines of such a
    // day are indexed as they are stored, by the thread that stores them, as an older
    // partition's are.
    MAILLENS_ASSIGN_OR_RETURN(
        new_day_image_, EmptyDatabaseImage(PartitionMigrations(), "DROP INDEX events_qid;", 4096));
  }
  return absl::OkStatus();
}

absl::Status Store::CreatePartitionFiles(const std::string& partition_path) {
  MAILLENS_RETURN_IF_ERROR(MakeImages());
  // The side file first, so a partition's side file exists. A -wal or -shm left by an earlier
  // file of the same name would be taken for the new file's: they go first.
  for (const auto& [path, image] :
       {std::pair<std::string, const std::string*>(FtsFilePath(partition_path), &fts_image_),
        {partition_path, &partition_image_}}) {
    MAILLENS_RETURN_IF_ERROR(UnlinkDatabase(path));
    MAILLENS_RETURN_IF_ERROR(WriteFileAtomic(path, *image));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Store::NewDay>> Store::StartNewDay(int64_t day) {
  // Its file may be on its way (written behind).
  AwaitWrite(day);
  if (partitions_.count(day) != 0 && !PartitionMovedAway(day)) return std::nullopt;
  bool archived = false;
  MAILLENS_ASSIGN_OR_RETURN(std::string path, PartitionSource(day, /*create=*/true, &archived));
  if (std::filesystem::exists(path)) return std::nullopt;
  MAILLENS_RETURN_IF_ERROR(MakeImages());
  NewDay new_day;
  MAILLENS_ASSIGN_OR_RETURN(new_day.partition, DatabaseFromImage(new_day_image_));
  return new_day;
}

absl::Status Store::WriteNewDays(const std::vector<std::pair<int64_t, NewDay>>& days) {
  if (days.empty()) return absl::OkStatus();
  std::vector<std::pair<std::string, std::string_view>> files;
  for (const auto& [day, new_day] : days) {
    const std::string path = PartitionPath(options_.dir, day);
    MAILLENS_ASSIGN_OR_RETURN(std::string_view image, FinalImageOf(new_day.partition.get()));
    // A -wal or -shm of an earlier file of the same name would be taken for the new file's,
    // and a side file left by one (a crash between the two writes) is no longer anyone's.
    MAILLENS_RETURN_IF_ERROR(UnlinkDatabase(path));
    MAILLENS_RETURN_IF_ERROR(UnlinkDatabase(FtsFilePath(path)));
    files.emplace_back(path, image);
  }
  return WriteFilesAtomic(files);
}

template <typename Lines>
absl::Status Store::IndexAndWriteNewDays(const Lines& lines,
                                         std::vector<std::pair<int64_t, NewDay>>& days) {
  std::vector<FtsLine> day_lines;
  for (auto& [day, new_day] : days) {
    day_lines.clear();
    for (const auto& line : lines) {
      if (line.day == day) day_lines.push_back(FtsLine{line.id, line.host_id, line.raw});
    }
    MAILLENS_RETURN_IF_ERROR(IndexLines(new_day.partition.get(), day_lines, /*side_file=*/false));
  }
  return WriteNewDays(days);
}

absl::StatusOr<Database*> Store::Partition(int64_t day, bool create) {
  auto it = partitions_.find(day);
  if (it != partitions_.end() && !PartitionMovedAway(day)) return it->second.get();
  AwaitWrite(day);
  bool archived = false;
  MAILLENS_ASSIGN_OR_RETURN(std::string path, PartitionSource(day, create, &archived));
  if (archived) archived_read_.insert(day);
  if (!options_.read_only && !std::filesystem::exists(path)) {
    MAILLENS_RETURN_IF_ERROR(CreatePartitionFiles(path));
  }
  std::unique_ptr<Database> db;
  MAILLENS_RETURN_IF_ERROR(OpenDatabase(path, &db));
  if (!options_.read_only) {
    MAILLENS_RETURN_IF_ERROR(Migrate(db.get(), PartitionMigrations()));
  }
  Database* raw = db.get();
  partitions_[day] = std::move(db);
  // A partition of an older maillens has no features table: no features.
  AddressIndex index = AddressIndex::kWords;
  bool fts_file = false;
  bool address_queues = false;
  auto features = raw->Prepare("SELECT name FROM features");
  if (features.ok()) {
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, features->Step());
      if (step == Statement::StepResult::kDone) break;
      std::string_view name = features->ColumnText(0);
      if (name == "field_address_tokens") {
        index = AddressIndex::kPerField;
      } else if (name == "address_tokens" && index == AddressIndex::kWords) {
        index = AddressIndex::kCombined;
      } else if (name == kFtsFileFeature) {
        fts_file = true;
      } else if (name == kAddressQueuesFeature) {
        address_queues = true;
      }
    }
  }
  address_index_[day] = index;
  // Where a search connection (SearchPartition) finds the day's table: in the side file,
  // attached as `fts`, when the index lives there.
  address_queues_table_[day] = !address_queues ? ""
                               : fts_file      ? "fts.address_queues"
                                               : "main.address_queues";
  if (fts_file && options_.read_only) {
    MAILLENS_ASSIGN_OR_RETURN(Statement attach, raw->Prepare(kAttachFts));
    attach.BindText(1, FtsFilePath(path));
    absl::Status s = attach.Run();
    if (!s.ok()) {
      partitions_.erase(day);
      return absl::UnavailableError(
          absl::StrCat("day ", day, ": cannot read its full-text index: ", s.message()));
    }
  } else if (fts_file) {
    absl::Status s = OpenFtsFile(day, path);
    if (!s.ok()) {
      partitions_.erase(day);
      return s;
    }
  }
  if (!options_.read_only && !options_.durable) {
    // An import: checkpoint the WAL every 40 MB instead of every 4 MB, so a page its
    // transactions keep changing (index B-trees, FTS5 segments) is copied back once, not in
    // every checkpoint (docs/STORAGE.md, "Decisions").
    MAILLENS_RETURN_IF_ERROR(raw->Exec("PRAGMA wal_autocheckpoint=10000"));
  }
  return raw;
}

AddressIndex Store::AddressIndexOf(int64_t day) const {
  auto it = address_index_.find(day);
  return it != address_index_.end() ? it->second : AddressIndex::kWords;
}

Database* Store::FtsFile(int64_t day) {
  core::MutexLock lock(&fts_files_mu_);
  auto it = fts_files_.find(day);
  return it == fts_files_.end() ? nullptr : it->second.get();
}

absl::Status Store::WaitFts() {
  absl::Status written = days_worker_ != nullptr ? days_worker_->Wait() : absl::OkStatus();
  writing_days_.clear();
  if (fts_worker_ == nullptr) return written;
  absl::Status s = fts_worker_->Wait();
  if (!s.ok()) fts_behind_ = true;  // the next Append indexes the lines from disk
  return written.ok() ? s : written;
}

void Store::AwaitWrite(int64_t day) {
  auto writing = writing_days_.find(day);
  if (writing == writing_days_.end()) return;
  // Written, or the write failed (the error comes with the next Append or Flush).
  writing->second.wait();
  writing_days_.erase(writing);
}

absl::Status Store::OpenFtsFile(int64_t day, const std::string& partition_path) {
  std::unique_ptr<Database> fts;
  MAILLENS_RETURN_IF_ERROR(OpenDatabase(FtsFilePath(partition_path), &fts));
  MAILLENS_RETURN_IF_ERROR(Migrate(fts.get(), FtsFileMigrations()));
  if (!options_.durable) {
    // An import: as for the partition (below, in Partition).
    MAILLENS_RETURN_IF_ERROR(fts->Exec("PRAGMA wal_autocheckpoint=10000"));
  }
  {
    // The indexing thread may be looking up another day.
    core::MutexLock lock(&fts_files_mu_);
    fts_files_[day] = std::move(fts);
  }
  return CatchUpFts(day);
}

absl::Status Store::CatchUpFts(int64_t day) {
  Database* db = partitions_.at(day).get();
  Database* fts = FtsFile(day);
  MAILLENS_ASSIGN_OR_RETURN(int64_t indexed, SelectInt(fts, kSelectIndexedId));
  MAILLENS_ASSIGN_OR_RETURN(int64_t last, SelectInt(db, kSelectLastId));
  if (indexed == last) return absl::OkStatus();
  if (indexed > last) {
    // The index holds lines the partition lost (a machine crash took the partition's last
    // commits, not the index's): its ids will be reused. Index the day anew.
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(fts));
    MAILLENS_RETURN_IF_ERROR(
        fts->Exec("INSERT INTO events_fts (events_fts) VALUES ('delete-all'); "
                  "DELETE FROM address_queues"));
    MAILLENS_RETURN_IF_ERROR(fts->Exec("UPDATE fts_state SET indexed_id = 0 WHERE id = 1"));
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
    indexed = 0;
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement select, db->Prepare(kSelectRawAfter));
  std::vector<std::string> raws;
  std::vector<int64_t> host_ids;
  std::vector<FtsLine> lines;
  while (indexed < last) {
    select.Bind(1, indexed);
    raws.clear();
    host_ids.clear();
    lines.clear();
    std::vector<int64_t> ids;
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      ids.push_back(select.ColumnInt(0));
      raws.emplace_back(select.ColumnText(1));
      host_ids.push_back(select.ColumnInt(2));
    }
    select.Reset();
    if (ids.empty()) break;
    for (size_t i = 0; i < ids.size(); ++i) lines.push_back(FtsLine{ids[i], host_ids[i], raws[i]});
    MAILLENS_RETURN_IF_ERROR(IndexLines(fts, lines, /*side_file=*/true));
    indexed = ids.back();
  }
  return absl::OkStatus();
}

absl::Status Store::IndexLines(Database* db, absl::Span<const FtsLine> lines, bool side_file) {
  if (lines.empty()) return absl::OkStatus();
  // A side file, and a day written whole, belong to a partition created with field address
  // tokens.
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
  MAILLENS_ASSIGN_OR_RETURN(Statement * insert, db->Cached(kInsertFts));
  MAILLENS_ASSIGN_OR_RETURN(Statement * queues, db->Cached(kInsertAddressQueue));
  core::TimeContext time{core::TimeOptions()};
  std::string buffer;
  for (const FtsLine& line : lines) {
    core::Event ev = core::ParseLine(line.raw, &time);
    insert->Bind(1, line.id).BindText(2, FtsText(ev, line.raw, AddressIndex::kPerField, &buffer));
    MAILLENS_RETURN_IF_ERROR(insert->Run());
    MAILLENS_RETURN_IF_ERROR(InsertAddressQueues(queues, ev, line.host_id));
  }
  if (side_file) {
    MAILLENS_ASSIGN_OR_RETURN(Statement * mark, db->Cached(kSetIndexedId));
    mark->Bind(1, lines.back().id);
    MAILLENS_RETURN_IF_ERROR(mark->Run());
  }
  return txn.Commit();
}

absl::StatusOr<Database*> Store::SearchPartition(int64_t day) {
  MAILLENS_ASSIGN_OR_RETURN(Database * db, Partition(day, /*create=*/false));
  if (options_.read_only || FtsFile(day) == nullptr) return db;
  auto it = search_partitions_.find(day);
  if (it != search_partitions_.end()) return it->second.get();
  const std::string path = PartitionPath(options_.dir, day);
  MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> reader,
                            Database::Open(path, Database::Mode::kReadOnly, false));
  MAILLENS_ASSIGN_OR_RETURN(Statement attach, reader->Prepare(kAttachFts));
  attach.BindText(1, FtsFilePath(path));
  MAILLENS_RETURN_IF_ERROR(attach.Run());
  Database* raw = reader.get();
  search_partitions_[day] = std::move(reader);
  return raw;
}

absl::StatusOr<int64_t> Store::HostId(const std::string& name) {
  auto it = host_ids_.find(name);
  if (it != host_ids_.end()) return it->second;
  MAILLENS_ASSIGN_OR_RETURN(Statement insert, catalog_->Prepare(kInsertHost));
  insert.BindText(1, name);
  MAILLENS_RETURN_IF_ERROR(insert.Run());
  int64_t id = catalog_->LastInsertRowId();
  host_ids_[name] = id;
  return id;
}

absl::StatusOr<int64_t> Store::FileId(int64_t host_id, const LineRecord& line) {
  auto key = std::make_pair(host_id, line.fingerprint);
  auto it = file_ids_.find(key);
  if (it != file_ids_.end()) return it->second;
  MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog_->Prepare(kSelectFile));
  select.Bind(1, host_id).Bind(2, static_cast<int64_t>(line.fingerprint));
  MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
  int64_t id;
  if (step == Statement::StepResult::kRow) {
    id = select.ColumnInt(0);
  } else {
    MAILLENS_ASSIGN_OR_RETURN(Statement insert, catalog_->Prepare(kInsertFile));
    insert.Bind(1, host_id)
        .Bind(2, static_cast<int64_t>(line.fingerprint))
        .BindText(3, line.file_path);
    MAILLENS_RETURN_IF_ERROR(insert.Run());
    id = catalog_->LastInsertRowId();
  }
  file_ids_[key] = id;
  return id;
}

absl::Status Store::AddHostNames(const std::string& host, const std::vector<std::string>& names) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
  MAILLENS_ASSIGN_OR_RETURN(int64_t host_id, HostId(host));
  MAILLENS_ASSIGN_OR_RETURN(Statement insert, catalog_->Prepare(kInsertHostName));
  for (const std::string& name : names) {
    insert.BindText(1, absl::AsciiStrToLower(name)).Bind(2, host_id);
    MAILLENS_RETURN_IF_ERROR(insert.Run());
  }
  return txn.Commit();
}

absl::StatusOr<int64_t> Store::Relink(int64_t since_us) {
  if (options_.read_only) return absl::FailedPreconditionError("store opened read-only");
  MAILLENS_RETURN_IF_ERROR(Flush());
  MAILLENS_ASSIGN_OR_RETURN(int64_t before,
                            SelectInt(catalog_.get(), "SELECT count(*) FROM links"));
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
  absl::Status s = correlator_->Recheck(since_us);
  if (s.ok()) s = correlator_->Flush();
  if (s.ok()) s = txn.Commit();
  if (!s.ok()) {
    correlator_->Reset();
    return s;
  }
  MAILLENS_ASSIGN_OR_RETURN(int64_t after, SelectInt(catalog_.get(), "SELECT count(*) FROM links"));
  return after - before;
}

namespace {

// How often Append tries to store held lines again (their archive repaired, say).
constexpr absl::Duration kHeldRetryInterval = absl::Seconds(30);
constexpr char kInsertHeld[] =
    "INSERT OR IGNORE INTO held_lines (host, file_path, fingerprint, offset, time_us, raw, "
    "reason, held_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr char kSelectHeld[] =
    "SELECT id, host, file_path, fingerprint, offset, time_us, raw FROM held_lines ORDER BY "
    "time_us, id";

}  // namespace

template <typename ByDay>
absl::Status Store::HoldUnrestorableDays(ByDay* by_day, uint64_t* held) {
  for (auto it = by_day->begin(); it != by_day->end();) {
    const int64_t day = it->first;
    AwaitWrite(day);
    if ((partitions_.count(day) != 0 && !PartitionMovedAway(day)) ||
        std::filesystem::exists(PartitionPath(options_.dir, day))) {
      ++it;
      continue;
    }
    // An archived day comes back hot here (as storing its line would make it); a new day
    // is left to be made. One the archive holds but cannot give back is not started anew
    // beside its archive file, which the next pass would archive over it.
    bool archived = false;
    absl::StatusOr<std::string> source = PartitionSource(day, /*create=*/true, &archived);
    if (source.ok()) {
      ++it;
      continue;
    }
    if (!absl::IsDataLoss(source.status())) return source.status();
    // Acknowledged (an agent's batch) or read (an import): kept in the catalog rather than
    // failing every Append after it, which stopped all ingestion behind one late line.
    MAILLENS_RETURN_IF_ERROR(Flush());  // the catalog is the correlator's too
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
    MAILLENS_ASSIGN_OR_RETURN(Statement * insert, catalog_->Cached(kInsertHeld));
    const int64_t now_us = absl::ToUnixMicros(absl::Now());
    for (const auto& row : it->second) {
      const LineRecord& line = *row.line;
      insert->BindText(1, line.host)
          .BindText(2, line.file_path)
          .Bind(3, static_cast<int64_t>(line.fingerprint))
          .Bind(4, static_cast<int64_t>(line.offset))
          .Bind(5, line.time_us)
          .BindBlob(6, line.raw)
          .BindText(7, std::string(source.status().message()))
          .Bind(8, now_us);
      MAILLENS_RETURN_IF_ERROR(insert->Run());
    }
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
    *held += it->second.size();
    held_lines_ = std::max<int64_t>(held_lines_, 0) + static_cast<int64_t>(it->second.size());
    it = by_day->erase(it);
  }
  return absl::OkStatus();
}

absl::Status Store::RetryHeldLines() {
  if (held_lines_ == 0 || retrying_held_) return absl::OkStatus();
  const absl::Time now = absl::Now();
  if (held_lines_ > 0 && now - held_tried_ < kHeldRetryInterval) return absl::OkStatus();
  held_tried_ = now;
  MAILLENS_RETURN_IF_ERROR(Flush());  // the catalog is the correlator's too
  std::vector<int64_t> ids;
  std::vector<LineRecord> lines;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, catalog_->Cached(kSelectHeld));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
      if (step == Statement::StepResult::kDone) break;
      ids.push_back(select->ColumnInt(0));
      LineRecord line;
      line.host = std::string(select->ColumnText(1));
      line.file_path = std::string(select->ColumnText(2));
      line.fingerprint = static_cast<uint64_t>(select->ColumnInt(3));
      line.offset = static_cast<uint64_t>(select->ColumnInt(4));
      line.time_us = select->ColumnInt(5);
      line.raw = std::string(select->ColumnText(6));
      lines.push_back(std::move(line));
    }
  }
  held_lines_ = static_cast<int64_t>(lines.size());
  if (lines.empty()) return absl::OkStatus();
  // Through Append, which holds again the lines of days that still cannot be stored; the
  // others are stored (or found stored: a crash after this Append and before the delete).
  retrying_held_ = true;
  absl::Cleanup done = [this] { retrying_held_ = false; };
  MAILLENS_ASSIGN_OR_RETURN(AppendStats stats, Append(lines));
  MAILLENS_RETURN_IF_ERROR(Flush());
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
  MAILLENS_ASSIGN_OR_RETURN(Statement * remove,
                            catalog_->Cached("DELETE FROM held_lines WHERE id = ?"));
  int64_t left = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!std::filesystem::exists(PartitionPath(options_.dir, DayOf(lines[i].time_us)))) {
      ++left;
      continue;
    }
    remove->Bind(1, ids[i]);
    MAILLENS_RETURN_IF_ERROR(remove->Run());
  }
  MAILLENS_RETURN_IF_ERROR(txn.Commit());
  held_lines_ = left;
  (void)stats;
  return absl::OkStatus();
}

absl::StatusOr<AppendStats> Store::Append(absl::Span<const LineRecord> lines,
                                          absl::Span<const SiteUpdate> sites) {
  if (options_.read_only) return absl::FailedPreconditionError("store opened read-only");
  AppendStats stats;
  // Lines held back earlier go first, once their day can be stored.
  MAILLENS_RETURN_IF_ERROR(RetryHeldLines());
  struct Row {
    const LineRecord* line;
    int64_t host_id;
    int64_t file_id;
  };
  std::map<int64_t, std::vector<Row>> by_day;
  // Hosts, files and days already in the catalog come from the caches; anything new is
  // committed first, so every event refers to a durable id.
  bool known = true;
  for (const LineRecord& line : lines) {
    auto host = host_ids_.find(line.host);
    if (host == host_ids_.end() ||
        file_ids_.count(std::make_pair(host->second, line.fingerprint)) == 0) {
      known = false;
      break;
    }
  }
  for (const SiteUpdate& site : sites) {
    if (host_ids_.count(site.host) == 0) known = false;
  }
  if (known) {
    int64_t last_day = -1;
    std::vector<Row>* rows = nullptr;
    for (const LineRecord& line : lines) {
      const int64_t host_id = host_ids_.find(line.host)->second;
      const int64_t file_id = file_ids_.find(std::make_pair(host_id, line.fingerprint))->second;
      const int64_t day = DayOf(line.time_us);
      if (day != last_day) {
        rows = &by_day[day];
        last_day = day;
      }
      rows->push_back(Row{&line, host_id, file_id});
    }
  }
  // A new day needs nothing of the catalog first: its row in `partitions` comes with its
  // first correlation (kSetCorrelated), and until then CorrelatePending takes its file for
  // one correlated from the start. Waiting here for the store's threads would stall an
  // import of sparse logs at every new day.
  if (!known) {
    // The catalog is the correlator's too: wait for a correlation running behind.
    MAILLENS_RETURN_IF_ERROR(Flush());
    by_day.clear();
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
    for (const LineRecord& line : lines) {
      MAILLENS_ASSIGN_OR_RETURN(int64_t host_id, HostId(line.host));
      MAILLENS_ASSIGN_OR_RETURN(int64_t file_id, FileId(host_id, line));
      by_day[DayOf(line.time_us)].push_back(Row{&line, host_id, file_id});
    }
    for (const SiteUpdate& site : sites) MAILLENS_RETURN_IF_ERROR(HostId(site.host).status());
    absl::Status s = txn.Commit();
    if (!s.ok()) {
      host_ids_.clear();
      file_ids_.clear();
      return s;
    }
  }
  MAILLENS_RETURN_IF_ERROR(HoldUnrestorableDays(&by_day, &stats.held));
  std::vector<int64_t> site_hosts;  // each site update's host, all in the catalog now
  for (const SiteUpdate& site : sites) site_hosts.push_back(host_ids_.find(site.host)->second);
  // Correlated and indexed here, before returning (else on the store's threads, behind the
  // caller).
  const bool in_line = !options_.correlate_behind;
  // An import (correlating behind, not durable) writes its new days' files on a thread of
  // their own; the collector, whose batches are acknowledged on return, before returning.
  const bool write_behind = days_worker_ != nullptr;
  if (in_line || correlation_behind_) MAILLENS_RETURN_IF_ERROR(Flush());
  if (correlation_behind_) {
    MAILLENS_RETURN_IF_ERROR(CorrelatePending());
    correlation_behind_ = false;
  }
  if (fts_behind_) {
    MAILLENS_RETURN_IF_ERROR(WaitFts());
    for (const auto& [day, unused] : fts_files_) MAILLENS_RETURN_IF_ERROR(CatchUpFts(day));
    fts_behind_ = false;
  }
  // New lines; views point into `lines`. Their parse is kept only for a correlation in line
  // (an Event is large: copying one per line cost the importing thread for nothing).
  struct NewLine {
    int64_t host_id;
    int64_t time_us;
    int64_t day;
    int64_t id;
    std::string_view raw;
  };
  std::vector<NewLine> fresh;
  fresh.reserve(lines.size());
  std::vector<core::Event> parsed;  // in_line: fresh[i]'s parse
  if (in_line) parsed.reserve(lines.size());
  std::map<int64_t, int64_t> last_id;  // day -> id of its last new line
  core::TimeContext time{core::TimeOptions()};
  std::string indexed;  // a line's indexed text with its address tokens
  std::vector<std::pair<int64_t, NewDay>> new_days;  // written after the loop, at once
  uint64_t new_day_lines = 0;  // new lines in new_days: durable once those are written
  // A failure in the loop may leave the batch's earlier days committed, neither correlated
  // nor indexed: the next Append does both from disk.
  absl::Cleanup catch_up_later = [this] {
    correlation_behind_ = true;
    fts_behind_ = true;
  };
  for (const auto& [day, rows] : by_day) {
    // A day with no file yet is built in memory, indexed with its lines, and written whole:
    // no WAL, shared memory or connection of its own to open, checkpoint and close. An
    // import of months of sparse logs creates a day every few hundred lines, and opening,
    // checkpointing and closing a day's files would be most of such an import's time
    // (docs/STORAGE.md, "Decisions").
    // The day of the batch's last line goes on in the next batch, most likely: as a file
    // now, which the next batch finds open, rather than in memory for a write it would wait
    // for.
    std::optional<NewDay> new_day;
    if (day != DayOf(lines.back().time_us)) {
      MAILLENS_ASSIGN_OR_RETURN(new_day, StartNewDay(day));
    }
    Database* db = nullptr;
    bool index_here = false;  // the lines indexed as they are stored, in the partition
    AddressIndex address_index = AddressIndex::kPerField;
    if (new_day.has_value()) {
      // Its lines are indexed into it before the day's write (IndexAndWriteNewDays): after
      // this loop, or by the new days' thread (days_worker_).
      db = new_day->partition.get();
    } else {
      MAILLENS_ASSIGN_OR_RETURN(db, Partition(day, /*create=*/true));
      address_index = AddressIndexOf(day);
      // Lines of a partition with a side file are indexed after they are committed.
      index_here = FtsFile(day) == nullptr;
    }
    MAILLENS_ASSIGN_OR_RETURN(Statement * cached_insert, db->Cached(kInsertEvent));
    Statement& insert = *cached_insert;
    Statement* fts = nullptr;
    Statement* queues = nullptr;  // a partition whose address_queues holds all its lines
    if (index_here) {
      MAILLENS_ASSIGN_OR_RETURN(fts, db->Cached(kInsertFts));
      if (HasAddressQueues(day)) {
        MAILLENS_ASSIGN_OR_RETURN(queues, db->Cached(kInsertAddressQueue));
      }
    }
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
    uint64_t day_lines = 0;
    for (const Row& row : rows) {
      const LineRecord& line = *row.line;
      core::Event ev = core::ParseLine(line.raw, &time);
      insert.Bind(1, line.time_us)
          .Bind(2, row.host_id)
          .Bind(3, row.file_id)
          .Bind(4, static_cast<int64_t>(line.offset))
          .Bind(5, static_cast<int64_t>(ev.kind));
      BindOptional(insert, 6, ev.queue_id.empty() ? std::string_view() : ev.queue_id);
      BindOptional(insert, 7, ev.Get(core::Field::kFrom), /*lower=*/true);
      BindOptional(insert, 8, ev.Get(core::Field::kTo), /*lower=*/true);
      BindOptional(insert, 9, ev.Get(core::Field::kStatus));
      BindOptional(insert, 10, ev.Get(core::Field::kMessageId));
      insert.BindBlob(11, line.raw);
      MAILLENS_RETURN_IF_ERROR(insert.Run());
      if (db->Changes() == 0) {
        ++stats.duplicates;
        continue;
      }
      int64_t id = db->LastInsertRowId();
      if (index_here) {
        fts->Bind(1, id).BindText(2, FtsText(ev, line.raw, address_index, &indexed));
        MAILLENS_RETURN_IF_ERROR(fts->Run());
        if (queues != nullptr) {
          MAILLENS_RETURN_IF_ERROR(InsertAddressQueues(queues, ev, row.host_id));
        }
      }
      last_id[day] = id;
      fresh.push_back(NewLine{row.host_id, line.time_us, day, id, line.raw});
      if (in_line) parsed.push_back(ev);
      ++stats.stored;
      ++day_lines;
      if (options_.on_stored_event) options_.on_stored_event(ev);
      if (ev.kind == core::Kind::kUnparsed || ev.kind == core::Kind::kMalformed) {
        ++stats.unparsed;
      }
    }
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
    if (new_day.has_value()) {
      new_days.emplace_back(day, std::move(*new_day));
      new_day_lines += day_lines;
    } else if (day_lines > 0 && options_.on_lines_committed) {
      options_.on_lines_committed(day_lines);
    }
  }
  if (!write_behind) {
    MAILLENS_RETURN_IF_ERROR(IndexAndWriteNewDays(fresh, new_days));
    if (new_day_lines > 0 && options_.on_lines_committed) {
      options_.on_lines_committed(new_day_lines);
    }
  }
  std::move(catch_up_later).Cancel();
  if (!in_line) {
    // The lines are committed (but for new days written behind, on their way); the store's
    // threads correlate and index them while the caller goes on to its next lines. They get their
    // own copy of them: `lines` is the caller's.
    if (fresh.empty() && sites.empty()) return stats;
    auto batch = std::make_shared<Behind>();
    batch->last_id = std::move(last_id);
    batch->sites.assign(sites.begin(), sites.end());
    batch->site_hosts = std::move(site_hosts);
    batch->lines.reserve(fresh.size());
    for (const NewLine& n : fresh) {
      batch->lines.push_back(Behind::Line{n.host_id, n.time_us, n.day, n.id, std::string(n.raw)});
    }
    // At most behind_depth batches behind. A job that failed (this one is then dropped)
    // leaves its lines to the next Append, which indexes or correlates them from disk.
    // New days go to disk first; the correlation waits for them, so that no correlation
    // refers to lines a failed write lost (DaysWritten says why if its job never ran).
    std::shared_future<absl::Status> written;
    std::shared_ptr<DaysWritten> write;
    if (write_behind && !new_days.empty()) {
      write = std::make_shared<DaysWritten>();
      write->days = std::move(new_days);
      written = write->done.get_future().share();
      for (const auto& [day, unused] : write->days) writing_days_[day] = written;
    }
    // Their own thread: behind the index of earlier batches, a day coming back in the next
    // batch would wait for all of it.
    absl::Status written_status;
    if (write != nullptr) {
      written_status = days_worker_->Post([this, batch, write, new_day_lines]() {
        if (options_.on_behind_job) options_.on_behind_job("days");
        absl::Status s = IndexAndWriteNewDays(batch->lines, write->days);
        if (s.ok() && new_day_lines > 0 && options_.on_lines_committed) {
          options_.on_lines_committed(new_day_lines);
        }
        write->Set(s);
        return s;
      });
    }
    // A day written whole has no side file: its lines are indexed with its write.
    absl::Status indexed_status = fts_worker_->Post([this, batch]() {
      if (options_.on_behind_job) options_.on_behind_job("index");
      return IndexInSideFiles(batch->lines);
    });
    if (!indexed_status.ok()) fts_behind_ = true;
    if (indexed_status.ok()) indexed_status = written_status;
    absl::Status correlated = correlator_worker_->Post([this, batch, written]() {
      if (written.valid()) MAILLENS_RETURN_IF_ERROR(written.get());
      return CorrelateBehind(*batch);
    });
    if (!correlated.ok()) {
      correlation_behind_ = true;
      return correlated;
    }
    if (!indexed_status.ok()) return indexed_status;
    return stats;
  }
  // The lines are durable. Index them into side files, then correlate them in one catalog
  // transaction that also moves each day's watermark; if either fails, the stored lines are
  // indexed or correlated from disk later (so a failed index does not skip the correlation,
  // whose watermark the next batch would move past these lines).
  absl::Status indexed_status = IndexInSideFiles(fresh);
  if (!indexed_status.ok()) fts_behind_ = true;
  // The site updates ride in the same transaction: one durable commit instead of two.
  absl::Status s = CommitCorrelation(
      [&]() -> absl::Status {
        for (size_t i = 0; i < fresh.size(); ++i) {
          MAILLENS_RETURN_IF_ERROR(
              correlator_->Observe(fresh[i].host_id, parsed[i], fresh[i].time_us));
        }
        return absl::OkStatus();
      },
      last_id, sites, site_hosts, Site());
  if (!s.ok()) {
    correlation_behind_ = true;
    return s;
  }
  if (!indexed_status.ok()) return indexed_status;
  return stats;
}

template <typename Lines>
absl::Status Store::IndexInSideFiles(const Lines& lines) {
  std::vector<FtsLine> day_lines;
  for (size_t i = 0; i < lines.size();) {
    const int64_t day = lines[i].day;
    day_lines.clear();
    for (; i < lines.size() && lines[i].day == day; ++i) {
      day_lines.push_back(FtsLine{lines[i].id, lines[i].host_id, lines[i].raw});
    }
    // Indexed with its lines: a partition without a side file, or a new day.
    Database* fts = FtsFile(day);
    if (fts == nullptr) continue;
    MAILLENS_RETURN_IF_ERROR(IndexLines(fts, day_lines, /*side_file=*/true));
  }
  return absl::OkStatus();
}

absl::Status Store::CorrelateBehind(const Behind& batch) {
  core::TimeContext time{core::TimeOptions()};
  return CommitCorrelation(
      [&]() -> absl::Status {
        for (const Behind::Line& line : batch.lines) {
          MAILLENS_RETURN_IF_ERROR(
              correlator_->Observe(line.host_id, core::ParseLine(line.raw, &time), line.time_us));
        }
        return absl::OkStatus();
      },
      batch.last_id, batch.sites, batch.site_hosts, CorrelatorSite());
}

absl::Status Store::CommitCorrelation(const std::function<absl::Status()>& observe,
                                      const std::map<int64_t, int64_t>& last_id,
                                      absl::Span<const SiteUpdate> sites,
                                      const std::vector<int64_t>& site_hosts,
                                      const SiteDatabases& site_db) {
  if (last_id.empty() && sites.empty()) return absl::OkStatus();
  absl::Status s = [&]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
    MAILLENS_RETURN_IF_ERROR(observe());
    MAILLENS_RETURN_IF_ERROR(correlator_->Flush());
    MAILLENS_ASSIGN_OR_RETURN(Statement mark, catalog_->Prepare(kSetCorrelated));
    for (const auto& [day, id] : last_id) {
      mark.Bind(1, id).Bind(2, day);
      MAILLENS_RETURN_IF_ERROR(mark.Run());
    }
    for (size_t i = 0; i < sites.size(); ++i) {
      MAILLENS_RETURN_IF_ERROR(ApplySiteUpdate(site_db, site_hosts[i], sites[i]));
    }
    return txn.Commit();
  }();
  if (!s.ok()) correlator_->Reset();
  return s;
}

absl::Status Store::Flush() {
  if (correlator_worker_ == nullptr) return absl::OkStatus();
  absl::Status correlated = correlator_worker_->Wait();
  // Its lines are stored: the next Append correlates them from disk first.
  if (!correlated.ok()) correlation_behind_ = true;
  absl::Status indexed = WaitFts();
  return correlated.ok() ? indexed : correlated;
}

absl::Status Store::CorrelatePending() {
  std::map<int64_t, int64_t> marks;  // day -> correlated_id
  // A day not in the catalog yet was never correlated (its row comes with its first
  // correlation).
  for (int64_t day : HotDays(options_.dir)) marks[day] = 0;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog_->Prepare(kSelectPartitions));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      marks[select.ColumnInt(0)] = select.ColumnInt(1);
    }
  }
  for (const auto& [day, after] : marks) {
    absl::Status s = CorrelateDay(day, after);
    if (!s.ok()) {
      correlator_->Reset();
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Store::CorrelateDay(int64_t day, int64_t after_id) {
  auto db_or = Partition(day, /*create=*/false);
  if (absl::IsNotFound(db_or.status())) return absl::OkStatus();
  if (!db_or.ok()) return db_or.status();
  Database* db = *db_or;
  MAILLENS_ASSIGN_OR_RETURN(Statement select, db->Prepare(kSelectEventsAfter));
  MAILLENS_ASSIGN_OR_RETURN(Statement mark, catalog_->Prepare(kSetCorrelated));
  core::TimeContext time{core::TimeOptions()};
  while (true) {
    select.Bind(1, after_id);
    int64_t last = after_id;
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      last = select.ColumnInt(0);
      core::Event ev = core::ParseLine(select.ColumnText(3), &time);
      MAILLENS_RETURN_IF_ERROR(correlator_->Observe(select.ColumnInt(2), ev, select.ColumnInt(1)));
    }
    select.Reset();
    if (last == after_id) return absl::OkStatus();  // nothing new; txn rolls back (no writes)
    MAILLENS_RETURN_IF_ERROR(correlator_->Flush());
    mark.Bind(1, last).Bind(2, day);
    MAILLENS_RETURN_IF_ERROR(mark.Run());
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
    after_id = last;
  }
}

namespace {

constexpr int64_t kDayUs = int64_t{86400} * 1000000;

// Matches counted past the shown ones before a broad search stops counting.
constexpr uint64_t kCountBeyondLimit = 5000;

}  // namespace

// Folds the shorthand fields of a SearchQuery into search-language terms.
core::Query ToQuery(const SearchQuery& in) {
  core::Query q;
  q.words = in.words;
  q.terms = in.terms;
  q.since_us = in.since_us;
  q.until_us = in.until_us;
  using Target = core::FieldTerm::Target;
  auto add = [&](Target t, const std::string& v, bool lower) {
    if (v.empty()) return;
    std::string p = v;
    if (p.size() > 1 && p.front() == '<' && p.back() == '>') p = p.substr(1, p.size() - 2);
    q.terms.push_back(core::FieldTerm{t, lower ? core::Lower(p) : p});
  };
  add(Target::kFrom, in.from, true);
  add(Target::kTo, in.to, true);
  add(Target::kHost, in.host, true);
  add(Target::kStatus, in.status, true);
  add(Target::kQueueId, in.queue_id, false);
  add(Target::kMessageId, in.message_id, false);
  return q;
}

absl::StatusOr<SearchResult> Store::Search(const SearchQuery& search) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  SearchResult result;
  core::Query query = ToQuery(search);
  std::string where = "ts_us >= ? AND ts_us < ?";
  // Every term is checked on the parsed line; the literal text of a term (an address, a
  // queue ID, "status=deferred") also narrows the full-text match, so the index finds the few
  // candidate rows. Several terms on one field are alternatives, so only a field with a
  // single term can add its text.
  std::vector<std::string> fts_words = query.words;
  // Exact from:/to: addresses: one token each where the partition has address tokens, else
  // the address as a phrase. Where the tokens name their field, such a term needs no check
  // on the parsed line.
  std::vector<std::string> combined_tokens, field_tokens, address_phrases;
  bool other_terms = false;  // terms only a parsed line can answer
  std::map<int, int> per_target;
  for (const core::FieldTerm& t : query.terms) ++per_target[static_cast<int>(t.target)];
  std::vector<int64_t> host_ids;
  bool host_wildcard = false;
  for (const core::FieldTerm& t : query.terms) {
    if (t.target == core::FieldTerm::Target::kHost) {
      if (t.pattern.find('*') != std::string::npos) {
        host_wildcard = true;
        other_terms = true;  // checked on each line: a page must hold `limit` matches
        continue;
      }
      for (const auto& [name, id] : host_ids_) {
        if (core::Lower(name) == t.pattern) host_ids.push_back(id);
      }
      continue;
    }
    if (per_target[static_cast<int>(t.target)] != 1) {
      other_terms = true;
      continue;
    }
    bool exact_address =
        (t.target == core::FieldTerm::Target::kFrom || t.target == core::FieldTerm::Target::kTo) &&
        !t.pattern.empty() && t.pattern.find('*') == std::string::npos &&
        t.pattern.find('?') == std::string::npos;
    if (exact_address) {
      combined_tokens.push_back(AddressToken("ma", t.pattern));
      field_tokens.push_back(
          AddressToken(t.target == core::FieldTerm::Target::kFrom ? "mf" : "mt", t.pattern));
      address_phrases.push_back(t.pattern);
      continue;
    }
    other_terms = true;
    std::string literal = core::LiteralOf(t);
    if (!literal.empty()) fts_words.push_back(literal);
  }
  bool host_filter = false;  // `where` names the hosts
  if (per_target.count(static_cast<int>(core::FieldTerm::Target::kHost)) && !host_wildcard) {
    if (host_ids.empty()) {
      result.notices.push_back("no stored host has that name");
      return result;
    }
    std::string list;
    for (int64_t id : host_ids) absl::StrAppend(&list, list.empty() ? "" : ",", id);
    absl::StrAppend(&where, " AND host_id IN (", list, ")");
    host_filter = true;
  }
  const bool use_fts = !fts_words.empty() || !address_phrases.empty();
  if (use_fts) where += " AND id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)";
  std::map<int64_t, std::string> host_names;
  for (const auto& [name, id] : host_ids_) host_names[id] = name;

  std::vector<int64_t> days = Days();
  if (days.empty()) {
    result.notices.push_back("the store holds no lines yet");
    AddArchiveNotice(query.since_us, query.until_us, &result.notices);  // days it cannot read
    return result;
  }
  int64_t first_day = query.since_us == INT64_MIN ? 0 : DayOf(query.since_us);
  int64_t last_day = query.until_us == INT64_MAX ? 99999999 : DayOf(query.until_us);
  if (query.since_us != INT64_MIN && first_day < days.front()) {
    result.notices.push_back(
        absl::StrCat("the window starts before the oldest stored day (", days.front(), ")"));
  }
  // Gaps and offline agents in the window: the answer may be missing lines.
  MAILLENS_RETURN_IF_ERROR(AddSiteNotices(catalog_.get(), query.since_us, query.until_us, host_ids,
                                          absl::ToUnixMicros(absl::Now()), &result.notices));
  core::TimeContext time{core::TimeOptions()};
  if (!search.oldest_first) std::reverse(days.begin(), days.end());
  for (auto it = days.begin(); it != days.end() && !result.total_is_lower_bound; ++it) {
    int64_t day = *it;
    if (day < first_day || day > last_day) continue;
    MAILLENS_ASSIGN_OR_RETURN(Database * db, SearchPartition(day));
    const AddressIndex address_index = AddressIndexOf(day);
    std::vector<std::string> match_words = fts_words;
    const auto& addresses = address_index == AddressIndex::kPerField   ? field_tokens
                            : address_index == AddressIndex::kCombined ? combined_tokens
                                                                       : address_phrases;
    match_words.insert(match_words.end(), addresses.begin(), addresses.end());
    const std::string match = FtsQuery(match_words);
    // Whether each candidate must be parsed and checked: not when the index and the columns
    // answer every term.
    const bool post_filter =
        other_terms || (!address_phrases.empty() && address_index != AddressIndex::kPerField);
    auto bind = [&](Statement& stmt) {
      stmt.Bind(1, query.since_us).Bind(2, query.until_us);
      if (use_fts) stmt.BindText(3, match);
    };
    if (!post_filter && !search.unchecked) {
      // Every candidate matches: count them without reading them when the whole day is in
      // the window (the index's doclist), else let SQLite count; the lines are capped below.
      const bool whole_day =
          query.since_us <= DayStartUs(day) && query.until_us >= DayStartUs(day) + kDayUs;
      const bool from_index = use_fts && whole_day && !host_filter;
      std::string count_sql = from_index
                                  ? "SELECT count(*) FROM events_fts WHERE events_fts MATCH ?"
                                  : absl::StrCat("SELECT count(*) FROM events WHERE ", where);
      MAILLENS_ASSIGN_OR_RETURN(Statement count, db->Prepare(count_sql));
      if (from_index) {
        count.BindText(1, match);
      } else {
        bind(count);
      }
      MAILLENS_ASSIGN_OR_RETURN(auto cstep, count.Step());
      int64_t n = cstep == Statement::StepResult::kRow ? count.ColumnInt(0) : 0;
      result.total += n;
      if (n == 0 || result.lines.size() >= search.limit) continue;
    }
    std::string sql =
        absl::StrCat("SELECT id, ts_us, host_id, raw, queue_id FROM events WHERE ", where,
                     search.oldest_first ? " ORDER BY ts_us, id" : " ORDER BY ts_us DESC, id DESC");
    if (!post_filter && !search.unchecked) {
      absl::StrAppend(&sql, " LIMIT ", search.limit - result.lines.size());
    }
    MAILLENS_ASSIGN_OR_RETURN(Statement select, db->Prepare(sql));
    bind(select);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      const std::string& host = host_names[select.ColumnInt(2)];
      std::string_view raw = select.ColumnText(3);
      if (search.unchecked) {
        StoredLine line;
        line.id = select.ColumnInt(0);
        line.time_us = select.ColumnInt(1);
        line.host = host;
        line.raw = std::string(raw);
        line.day = day;
        line.queue_id = std::string(select.ColumnText(4));
        result.lines.push_back(std::move(line));
        ++result.total;
        continue;
      }
      if (!post_filter && !query.terms.empty() &&
          !core::MatchesTerms(query, core::ParseLine(raw, &time), host)) {
        --result.total;  // an address token's hash collision: counted, but not a match
        continue;
      }
      if (post_filter) {
        core::Event ev = core::ParseLine(raw, &time);
        if (!core::MatchesTerms(query, ev, host)) continue;
        ++result.total;
        if (result.lines.size() >= search.limit) {
          // Counting every match of a broad query costs a parse per line; past a bound the
          // count is reported as "at least", never silently.
          if (result.total >= search.limit + kCountBeyondLimit) {
            result.total_is_lower_bound = true;
            break;
          }
          continue;
        }
      }
      StoredLine line;
      line.id = select.ColumnInt(0);
      line.time_us = select.ColumnInt(1);
      line.host = host;
      line.raw = std::string(raw);
      line.day = day;
      result.lines.push_back(std::move(line));
    }
  }
  AddArchiveNotice(query.since_us, query.until_us, &result.notices);
  return result;
}

SiteDatabases Store::CorrelatorSite() {
  SiteDatabases site;
  site.catalog = catalog_.get();
  site.dir = options_.dir;
  site.days = HotDays(options_.dir);
  // Its own read connections: the caller's thread writes through partitions_ meanwhile. They
  // see every committed line, which is all a site update looks up (a gap's neighbours).
  site.partition = [this](int64_t day) -> absl::StatusOr<Database*> {
    auto it = correlator_partitions_.find(day);
    if (it != correlator_partitions_.end()) return it->second.get();
    const std::string path = PartitionPath(options_.dir, day);
    if (!std::filesystem::exists(path)) {
      return absl::NotFoundError(absl::StrCat("no partition for ", day));
    }
    MAILLENS_ASSIGN_OR_RETURN(std::unique_ptr<Database> db,
                              Database::Open(path, Database::Mode::kReadOnly, false));
    Database* raw = db.get();
    correlator_partitions_[day] = std::move(db);
    return raw;
  };
  return site;
}

SiteDatabases Store::Site() {
  SiteDatabases site;
  site.catalog = catalog_.get();
  site.dir = options_.dir;
  // Hot days only: the status counts lines per partition, and an archived day would be
  // decompressed for it.
  site.days = HotDays(options_.dir);
  site.partition = [this](int64_t day) { return Partition(day, /*create=*/false); };
  return site;
}

absl::Status Store::RecordSite(const SiteUpdate& update) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  if (options_.read_only) return absl::FailedPreconditionError("store opened read-only");
  const bool known_host = host_ids_.count(update.host) > 0;
  absl::Status s = [&]() -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
    MAILLENS_ASSIGN_OR_RETURN(int64_t host_id, HostId(update.host));
    MAILLENS_RETURN_IF_ERROR(ApplySiteUpdate(Site(), host_id, update));
    return txn.Commit();
  }();
  // A host added by the rolled-back transaction is gone again.
  if (!s.ok() && !known_host) host_ids_.erase(update.host);
  return s;
}

absl::Status Store::CloseStaleAgentSessions() {
  MAILLENS_RETURN_IF_ERROR(Flush());
  if (options_.read_only) return absl::FailedPreconditionError("store opened read-only");
  return CloseStaleSessions(catalog_.get());
}

absl::StatusOr<SiteStatus> Store::GetSiteStatus(int64_t now_us, size_t max_gaps,
                                                size_t max_offline) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  return ReadSiteStatus(Site(), now_us, max_gaps, max_offline);
}

absl::StatusOr<Trace> Store::GetTrace(const std::string& id, size_t* matches) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  std::string key = id;
  if (key.size() > 1 && key.front() == '<' && key.back() == '>')
    key = key.substr(1, key.size() - 2);
  MAILLENS_ASSIGN_OR_RETURN(std::vector<int64_t> traces, correlator_->FindTraces(key));
  if (traces.empty() && absl::AsciiStrToUpper(key) != key) {
    // A short queue ID typed in lower case (Postfix writes hex in capitals).
    MAILLENS_ASSIGN_OR_RETURN(traces, correlator_->FindTraces(absl::AsciiStrToUpper(key)));
  }
  if (traces.empty()) {
    return absl::NotFoundError(absl::StrCat("no message with queue ID or message-id '", id, "'"));
  }
  if (matches != nullptr) *matches = traces.size();
  MAILLENS_ASSIGN_OR_RETURN(Trace trace, correlator_->LoadTrace(traces.back()));
  MAILLENS_RETURN_IF_ERROR(correlator_->AddMailboxSteps(&trace));  // the journey's last step
  return trace;
}

absl::StatusOr<std::vector<Trace>> Store::TracesIn(int64_t since_us, int64_t until_us) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  MAILLENS_ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                            correlator_->TracesStartingIn(since_us, until_us));
  std::vector<Trace> traces;
  for (int64_t id : ids) {
    MAILLENS_ASSIGN_OR_RETURN(Trace t, correlator_->LoadTrace(id));
    MAILLENS_RETURN_IF_ERROR(correlator_->AddMailboxSteps(&t));
    traces.push_back(std::move(t));
  }
  return traces;
}

absl::StatusOr<std::optional<MessageView>> Store::MessageAt(const std::string& host,
                                                            const std::string& queue_id,
                                                            int64_t time_us) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  auto it = host_ids_.find(host);
  if (it == host_ids_.end()) return std::nullopt;
  return correlator_->MessageAt(it->second, queue_id, time_us);
}

absl::StatusOr<std::optional<MessageInfo>> Store::InstanceAt(const std::string& host,
                                                             const std::string& queue_id,
                                                             int64_t time_us) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  auto it = host_ids_.find(host);
  if (it == host_ids_.end()) return std::nullopt;
  MAILLENS_ASSIGN_OR_RETURN(std::optional<MessageInfo> m,
                            correlator_->InstanceAt(it->second, queue_id, time_us));
  if (m.has_value()) m->host = host;
  return m;
}

absl::StatusOr<std::vector<MessageInfo>> Store::InstancesOf(
    const std::vector<std::pair<int64_t, std::string>>& queues) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  std::vector<MessageInfo> out;
  if (queues.empty()) return out;
  // One statement for the lot: SQLite looks each queue ID up in messages_qid.
  std::string ids = "[";
  std::set<std::pair<int64_t, std::string_view>> wanted;
  for (const auto& [host_id, queue_id] : queues) {
    if (!wanted.insert({host_id, queue_id}).second) continue;
    if (ids.size() > 1) ids += ",";
    core::AppendJsonString(queue_id, &ids);
  }
  ids += "]";
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * select,
      catalog_->Cached("SELECT id, trace_id, host_id, queue_id, first_us FROM messages WHERE "
                       "queue_id IN (SELECT value FROM json_each(?))"));
  select->BindText(1, ids);
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    const int64_t host_id = select->ColumnInt(2);
    std::string_view queue_id = select->ColumnText(3);
    if (!wanted.count({host_id, queue_id})) continue;  // the ID on another host
    MessageInfo& m = out.emplace_back();
    m.id = select->ColumnInt(0);
    m.trace_id = select->ColumnInt(1);
    m.host_id = host_id;
    m.queue_id = std::string(queue_id);
    m.first_us = select->ColumnInt(4);
    m.last_us = m.first_us;  // not read: see the header
  }
  return out;
}

absl::StatusOr<std::vector<Store::TraceQueue>> Store::QueuesOfTraces(
    const std::vector<int64_t>& trace_ids) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  std::vector<TraceQueue> out;
  if (trace_ids.empty()) return out;
  std::string ids = "[";
  for (int64_t id : trace_ids) absl::StrAppend(&ids, ids.size() > 1 ? "," : "", id);
  ids += "]";
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * select,
      catalog_->Cached("SELECT trace_id, host_id, queue_id FROM messages WHERE trace_id IN "
                       "(SELECT value FROM json_each(?))"));
  select->BindText(1, ids);
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    out.push_back(
        TraceQueue{select->ColumnInt(0), select->ColumnInt(1), std::string(select->ColumnText(2))});
  }
  return out;
}

absl::StatusOr<std::optional<std::vector<Store::AddressQueue>>> Store::AddressQueues(
    core::FieldTerm::Target target, const std::string& address, int64_t since_us, int64_t until_us,
    bool oldest_first) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  const int64_t token =
      AddressHash(target == core::FieldTerm::Target::kFrom ? "mf" : "mt", address);
  std::map<int64_t, std::string> host_names;
  for (const auto& [name, id] : host_ids_) host_names[id] = name;
  const int64_t first_day = since_us == INT64_MIN ? 0 : DayOf(since_us);
  const int64_t last_day = until_us == INT64_MAX ? 99999999 : DayOf(until_us);
  std::vector<int64_t> days = Days();
  if (!oldest_first) std::reverse(days.begin(), days.end());
  std::vector<AddressQueue> out;
  for (int64_t day : days) {
    if (day < first_day || day > last_day) continue;
    MAILLENS_ASSIGN_OR_RETURN(Database * db, SearchPartition(day));
    if (!HasAddressQueues(day)) return std::nullopt;
    MAILLENS_ASSIGN_OR_RETURN(
        Statement * select,
        db->Cached(absl::StrCat("SELECT host_id, queue_id FROM ", address_queues_table_.at(day),
                                " WHERE token = ?")));
    select->Bind(1, token);
    while (true) {
      absl::StatusOr<Statement::StepResult> step = select->Step();
      if (!step.ok()) {
        select->Reset();
        return step.status();
      }
      if (*step == Statement::StepResult::kDone) break;
      auto host = host_names.find(select->ColumnInt(0));
      if (host == host_names.end()) continue;  // a host forgotten since
      out.push_back(
          AddressQueue{day, host->first, host->second, std::string(select->ColumnText(1))});
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Store::TraceInstances(
    int64_t trace_id) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  MAILLENS_ASSIGN_OR_RETURN(
      Statement * select,
      catalog_->Cached("SELECT h.name, m.queue_id FROM messages m JOIN hosts h ON h.id = "
                       "m.host_id WHERE m.trace_id = ?"));
  select->Bind(1, trace_id);
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
    if (step == Statement::StepResult::kDone) break;
    out.emplace_back(std::string(select->ColumnText(0)), std::string(select->ColumnText(1)));
  }
  return out;
}

absl::StatusOr<std::vector<StoredLine>> Store::MessageLines(const MessageInfo& message) {
  MAILLENS_RETURN_IF_ERROR(Flush());
  std::vector<StoredLine> lines;
  int64_t until = message.end_us.value_or(message.last_us);
  for (int64_t day : Days()) {
    if (day < DayOf(message.first_us) || day > DayOf(until)) continue;
    MAILLENS_ASSIGN_OR_RETURN(Database * db, SearchPartition(day));
    // Cached: a search loads the lines of every candidate message.
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, db->Cached(kSelectMessageLines));
    select->BindText(1, message.queue_id)
        .Bind(2, message.host_id)
        .Bind(3, message.first_us)
        .Bind(4, until);
    select->BindText(5, FtsQuery({message.queue_id}));
    while (true) {
      absl::StatusOr<Statement::StepResult> step = select->Step();
      if (!step.ok()) {
        select->Reset();
        return step.status();
      }
      if (*step == Statement::StepResult::kDone) break;
      StoredLine line;
      line.id = select->ColumnInt(0);
      line.time_us = select->ColumnInt(1);
      line.host = message.host;
      line.raw = std::string(select->ColumnText(2));
      line.day = day;
      lines.push_back(std::move(line));
    }
    select->Reset();
  }
  return lines;
}

// --- Archive (store/retention.h) ---

absl::StatusOr<std::string> Store::PartitionSource(int64_t day, bool create, bool* archived) {
  *archived = false;
  std::string path = PartitionPath(options_.dir, day);
  if (std::filesystem::exists(path)) return path;
  if (options_.read_only) {
    if (create) return absl::FailedPreconditionError("store opened read-only");
    return ReadableDayPath(options_.dir, day, archived);
  }
  if (!create) return absl::NotFoundError(absl::StrCat("no partition for day ", day));
  // A late line for an archived day: the day becomes hot again and is archived anew later.
  absl::Status restored = RestoreDay(options_.dir, day);
  if (!restored.ok() && !absl::IsNotFound(restored)) return restored;
  return path;
}

bool Store::PartitionMovedAway(int64_t day) {
  // A read connection keeps reading its (possibly unlinked) file, which is what it held.
  if (options_.read_only) return false;
  if (std::filesystem::exists(PartitionPath(options_.dir, day))) return false;
  (void)WaitFts();  // the indexing thread may hold the side file's connection
  partitions_.erase(day);
  address_index_.erase(day);
  {
    core::MutexLock lock(&fts_files_mu_);
    fts_files_.erase(day);
  }
  search_partitions_.erase(day);
  return true;
}

void Store::AddArchiveNotice(int64_t since_us, int64_t until_us,
                             std::vector<std::string>* notices) {
  if (!options_.read_only) return;
  int64_t first = since_us == INT64_MIN ? 0 : DayOf(since_us);
  int64_t last = until_us == INT64_MAX ? 99999999 : DayOf(until_us - 1);
  // Archived days left out because the manifest cannot be trusted: named, never silent.
  if (std::string unread = UnreadableArchiveNotice(options_.dir, first, last); !unread.empty()) {
    notices->push_back(std::move(unread));
  }
  std::vector<int64_t> read;
  for (int64_t day : ArchivedDays(options_.dir)) {
    if (day >= first && day <= last && !std::filesystem::exists(PartitionPath(options_.dir, day))) {
      read.push_back(day);
    }
  }
  if (read.empty()) return;
  notices->push_back(absl::StrCat(
      "the window includes ", read.size(), read.size() == 1 ? " archived day" : " archived days",
      " (", read.front(), read.size() == 1 ? "" : absl::StrCat("..", read.back()),
      "), read from the archive"));
}

}  // namespace maillens::store

// --- Overlapping files and hosts ---

namespace maillens::store {

namespace {

constexpr char kSelectFingerprint[] = "SELECT 1 FROM files WHERE fingerprint = ? LIMIT 1";
constexpr char kSelectOtherFiles[] =
    "SELECT id, fingerprint FROM files WHERE host_id = ? AND fingerprint != ?";
constexpr char kSelectHostLinesIn[] =
    "SELECT file_id, ts_us, raw FROM events WHERE ts_us >= ? AND ts_us <= ? AND host_id = ?";
constexpr int64_t kOverlapDayUs = int64_t{86400} * 1000000;

constexpr char kSelectHostLineSummary[] =
    "SELECT host_id, count(*), min(ts_us), max(ts_us) FROM events GROUP BY host_id";
// A host's messages, each once (maillens hosts): its instances but those a content filter or
// local(8) forwarding re-injected on the same host -- the same message again, not another.
// A message relayed from another of our hosts, or back again, is one more on this host; a
// bounce notice is a message of its own.
constexpr char kSelectHostMessages[] =
    "SELECT host_id, count(*) FROM messages AS m WHERE NOT EXISTS (SELECT 1 FROM links AS l "
    "WHERE l.to_message = m.id AND l.kind = 'reinject') GROUP BY host_id";

constexpr char kSelectLinesOfHost[] = "SELECT id, raw FROM events WHERE host_id = ? ORDER BY id";
constexpr char kSelectLastIdOfOthers[] =
    "SELECT coalesce(max(id), 0) FROM events WHERE host_id != ?";
constexpr char kDeleteFts[] =
    "INSERT INTO events_fts (events_fts, rowid, text) VALUES ('delete', ?, ?)";
constexpr char kLowerIndexedId[] =
    "UPDATE fts_state SET indexed_id = min(indexed_id, ?) WHERE id = 1";
constexpr char kDeleteLinesOfHost[] = "DELETE FROM events WHERE host_id = ?";
constexpr char kLowerCorrelated[] =
    "UPDATE partitions SET correlated_id = min(correlated_id, ?) WHERE day = ?";
constexpr char kHostMessages[] = "(SELECT id FROM messages WHERE host_id = ?1)";

}  // namespace

absl::StatusOr<bool> Store::FingerprintKnown(uint64_t fingerprint) {
  if (overlap_catalog_ == nullptr) {
    MAILLENS_ASSIGN_OR_RETURN(
        overlap_catalog_,
        Database::Open(options_.dir + "/catalog.db", Database::Mode::kReadOnly, /*durable=*/false));
  }
  MAILLENS_ASSIGN_OR_RETURN(Statement * select, overlap_catalog_->Cached(kSelectFingerprint));
  select->Bind(1, static_cast<int64_t>(fingerprint));
  MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
  select->Reset();
  return step == Statement::StepResult::kRow;
}

absl::StatusOr<std::vector<Store::TimedRaw>> Store::LinesOfOtherFiles(const std::string& host,
                                                                      uint64_t fingerprint,
                                                                      int64_t since_us,
                                                                      int64_t until_us) {
  std::vector<TimedRaw> lines;
  // host_ids_ is the writer's (this thread's); a host it does not know has no line.
  auto host_it = host_ids_.find(host);
  if (host_it == host_ids_.end() || since_us > until_us) return lines;
  const int64_t host_id = host_it->second;
  if (overlap_catalog_ == nullptr) {
    MAILLENS_ASSIGN_OR_RETURN(
        overlap_catalog_,
        Database::Open(options_.dir + "/catalog.db", Database::Mode::kReadOnly, /*durable=*/false));
  }
  // The host's other files, read each time: a file of it may have been added by this process
  // since (files are committed before their lines).
  std::set<int64_t> other_files;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, overlap_catalog_->Cached(kSelectOtherFiles));
    select->Bind(1, host_id).Bind(2, static_cast<int64_t>(fingerprint));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
      if (step == Statement::StepResult::kDone) break;
      other_files.insert(select->ColumnInt(0));
    }
    select->Reset();
  }
  if (other_files.empty()) return lines;
  for (int64_t start = DayStartUs(DayOf(since_us)); start <= until_us; start += kOverlapDayUs) {
    const int64_t day = DayOf(start);
    absl::StatusOr<Database*> db = Partition(day, /*create=*/false);
    if (absl::IsNotFound(db.status())) continue;  // no file for that day: nothing stored
    if (!db.ok()) return db.status();
    MAILLENS_ASSIGN_OR_RETURN(Statement * select, (*db)->Cached(kSelectHostLinesIn));
    select->Bind(1, since_us).Bind(2, until_us).Bind(3, host_id);
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select->Step());
      if (step == Statement::StepResult::kDone) break;
      if (other_files.count(select->ColumnInt(0)) == 0) continue;
      lines.push_back(TimedRaw{select->ColumnInt(1), std::string(select->ColumnText(2))});
    }
    select->Reset();
  }
  return lines;
}

absl::StatusOr<std::vector<Store::HostSummary>> Store::Hosts() {
  MAILLENS_RETURN_IF_ERROR(Flush());
  std::map<int64_t, HostSummary> by_id;
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog_->Prepare(kSelectHosts));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      by_id[select.ColumnInt(0)].name = std::string(select.ColumnText(1));
    }
  }
  {
    MAILLENS_ASSIGN_OR_RETURN(Statement select, catalog_->Prepare(kSelectHostMessages));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      auto it = by_id.find(select.ColumnInt(0));
      if (it != by_id.end()) it->second.messages = static_cast<uint64_t>(select.ColumnInt(1));
    }
  }
  for (int64_t day : Days()) {
    MAILLENS_ASSIGN_OR_RETURN(Database * db, Partition(day, /*create=*/false));
    MAILLENS_ASSIGN_OR_RETURN(Statement select, db->Prepare(kSelectHostLineSummary));
    while (true) {
      MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
      if (step == Statement::StepResult::kDone) break;
      auto it = by_id.find(select.ColumnInt(0));
      if (it == by_id.end()) continue;  // a line of no known host: not listed
      HostSummary& host = it->second;
      const int64_t first = select.ColumnInt(2);
      const int64_t last = select.ColumnInt(3);
      if (host.lines == 0 || first < host.first_us) host.first_us = first;
      if (host.lines == 0 || last > host.last_us) host.last_us = last;
      host.lines += static_cast<uint64_t>(select.ColumnInt(1));
    }
  }
  std::vector<HostSummary> hosts;
  for (auto& [id, host] : by_id) hosts.push_back(std::move(host));
  std::sort(hosts.begin(), hosts.end(),
            [](const HostSummary& a, const HostSummary& b) { return a.name < b.name; });
  return hosts;
}

absl::StatusOr<Store::ForgetStats> Store::ForgetHost(const std::string& name) {
  if (options_.read_only) return absl::FailedPreconditionError("store opened read-only");
  MAILLENS_RETURN_IF_ERROR(Flush());  // the catalog and the side files are this thread's now
  auto host_it = host_ids_.find(name);
  if (host_it == host_ids_.end()) {
    return absl::NotFoundError(absl::StrCat("no host '", name, "' in ", options_.dir));
  }
  const int64_t host_id = host_it->second;
  // The archive cannot change: lines of the host there would outlive its name, and an export
  // or a search of those days could no longer say whose they are. Refused before anything
  // is removed.
  MAILLENS_ASSIGN_OR_RETURN(std::vector<ArchiveEntry> archived, LiveArchive(options_.dir));
  std::vector<std::string> days;
  for (const ArchiveEntry& entry : archived) {
    for (const std::string& h : entry.hosts) {
      if (absl::EqualsIgnoreCase(h, name)) {
        days.push_back(absl::StrCat(entry.day));
        break;
      }
    }
  }
  if (!days.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "host '", name, "' has lines in ", days.size(), " archived day",
        days.size() == 1 ? "" : "s", " (", absl::StrJoin(days, ", "),
        "), which cannot change: forgetting it would leave them without a host. Forget it once "
        "retention has deleted those days (archive_days)"));
  }
  ForgetStats stats;

  // Each day's last line kept. SQLite gives a new line the id after the day's last: once the
  // host's lines at a day's end are gone, later lines take their ids again, so both
  // watermarks (partitions.correlated_id, fts_state.indexed_id) come back to the last line
  // kept, or those lines would be taken for correlated and indexed. Lowered before any line
  // goes: an interrupted forget leaves watermarks that are still true, and running it again
  // finishes (the host stays in the catalog until the end).
  std::map<int64_t, int64_t> last_kept;  // day -> id, days with lines of the host
  for (int64_t day : HotDays(options_.dir)) {
    MAILLENS_ASSIGN_OR_RETURN(Database * db, Partition(day, /*create=*/false));
    MAILLENS_ASSIGN_OR_RETURN(Statement any,
                              db->Prepare("SELECT 1 FROM events WHERE host_id = ? LIMIT 1"));
    any.Bind(1, host_id);
    MAILLENS_ASSIGN_OR_RETURN(auto step, any.Step());
    if (step != Statement::StepResult::kRow) continue;
    MAILLENS_ASSIGN_OR_RETURN(Statement last, db->Prepare(kSelectLastIdOfOthers));
    last.Bind(1, host_id);
    MAILLENS_ASSIGN_OR_RETURN(step, last.Step());
    last_kept[day] = step == Statement::StepResult::kRow ? last.ColumnInt(0) : 0;
  }
  {
    MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
    MAILLENS_ASSIGN_OR_RETURN(Statement lower, catalog_->Prepare(kLowerCorrelated));
    for (const auto& [day, id] : last_kept) {
      lower.Bind(1, id).Bind(2, day);
      MAILLENS_RETURN_IF_ERROR(lower.Run());
      lower.Reset();
    }
    MAILLENS_RETURN_IF_ERROR(txn.Commit());
  }

  // The lines, day by day: their full-text entries first (a contentless index forgets an
  // entry only when told its text), then the lines.
  core::TimeContext time{core::TimeOptions()};
  std::string buffer;
  for (const auto& [day, kept] : last_kept) {
    MAILLENS_ASSIGN_OR_RETURN(Database * db, Partition(day, /*create=*/false));
    Database* side = FtsFile(day);
    const AddressIndex tokens = side != nullptr ? AddressIndex::kPerField : AddressIndexOf(day);
    Database* index_db = side != nullptr ? side : db;
    std::vector<std::pair<int64_t, std::string>> doomed;
    {
      MAILLENS_ASSIGN_OR_RETURN(Statement select, db->Prepare(kSelectLinesOfHost));
      select.Bind(1, host_id);
      while (true) {
        MAILLENS_ASSIGN_OR_RETURN(auto step, select.Step());
        if (step == Statement::StepResult::kDone) break;
        doomed.emplace_back(select.ColumnInt(0), std::string(select.ColumnText(1)));
      }
    }
    // A side file indexes lines up to its indexed_id; those after it were never indexed.
    int64_t indexed_id = INT64_MAX;
    if (side != nullptr) {
      MAILLENS_ASSIGN_OR_RETURN(indexed_id, SelectInt(side, kSelectIndexedId));
    }
    {
      MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(index_db));
      MAILLENS_ASSIGN_OR_RETURN(Statement remove, index_db->Prepare(kDeleteFts));
      for (const auto& [id, raw] : doomed) {
        if (id > indexed_id) continue;
        core::Event ev = core::ParseLine(raw, &time);
        remove.Bind(1, id).BindText(2, FtsText(ev, raw, tokens, &buffer));
        MAILLENS_RETURN_IF_ERROR(remove.Run());
        remove.Reset();
      }
      if (side != nullptr) {
        MAILLENS_ASSIGN_OR_RETURN(Statement lower, side->Prepare(kLowerIndexedId));
        lower.Bind(1, kept);
        MAILLENS_RETURN_IF_ERROR(lower.Run());
        MAILLENS_RETURN_IF_ERROR(txn.Commit());
      } else {
        // The index is in the partition: one transaction for both.
        MAILLENS_ASSIGN_OR_RETURN(Statement remove_lines, db->Prepare(kDeleteLinesOfHost));
        remove_lines.Bind(1, host_id);
        MAILLENS_RETURN_IF_ERROR(remove_lines.Run());
        stats.lines += static_cast<uint64_t>(db->Changes());
        MAILLENS_RETURN_IF_ERROR(txn.Commit());
        continue;
      }
    }
    MAILLENS_ASSIGN_OR_RETURN(Statement remove_lines, db->Prepare(kDeleteLinesOfHost));
    remove_lines.Bind(1, host_id);
    MAILLENS_RETURN_IF_ERROR(remove_lines.Run());
    stats.lines += static_cast<uint64_t>(db->Changes());
  }

  // The catalog, in one transaction: what the correlator made of the lines, then the host.
  MAILLENS_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(catalog_.get()));
  auto run = [&](const std::string& sql, uint64_t* changed) -> absl::Status {
    MAILLENS_ASSIGN_OR_RETURN(Statement statement, catalog_->Prepare(sql));
    statement.Bind(1, host_id);
    MAILLENS_RETURN_IF_ERROR(statement.Run());
    if (changed != nullptr) *changed += static_cast<uint64_t>(catalog_->Changes());
    return absl::OkStatus();
  };
  MAILLENS_RETURN_IF_ERROR(run(absl::StrCat("DELETE FROM links WHERE from_message IN ",
                                            kHostMessages, " OR to_message IN ", kHostMessages),
                               &stats.links));
  MAILLENS_RETURN_IF_ERROR(run(
      absl::StrCat("DELETE FROM pending WHERE from_host = ?1 OR from_message IN ", kHostMessages),
      nullptr));
  MAILLENS_RETURN_IF_ERROR(
      run(absl::StrCat("DELETE FROM recipients WHERE message IN ", kHostMessages), nullptr));
  MAILLENS_RETURN_IF_ERROR(run("DELETE FROM messages WHERE host_id = ?1", &stats.messages));
  MAILLENS_RETURN_IF_ERROR(
      run("DELETE FROM queue_recipients WHERE message IN "
          "(SELECT id FROM queue_messages WHERE host_id = ?1)",
          nullptr));
  for (const char* table :
       {"mailbox_deliveries", "queue_messages", "queue_snapshots", "gaps", "agent_files",
        "offline_periods", "agents", "host_names", "files", "hosts"}) {
    const char* column = std::string_view(table) == "hosts" ? "id" : "host_id";
    MAILLENS_RETURN_IF_ERROR(
        run(absl::StrCat("DELETE FROM ", table, " WHERE ", column, " = ?1"), nullptr));
  }
  MAILLENS_RETURN_IF_ERROR(txn.Commit());
  host_ids_.erase(name);
  for (auto it = file_ids_.begin(); it != file_ids_.end();) {
    it = it->first.first == host_id ? file_ids_.erase(it) : std::next(it);
  }
  // The correlator's caches may hold the host's instances.
  correlator_->Reset();
  return stats;
}

}  // namespace maillens::store
