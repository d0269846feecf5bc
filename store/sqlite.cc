#include "store/sqlite.h"

#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace maillens::store {
namespace {

// Pragmas live in one place. WAL lets readers run beside the one writer; synchronous is set
// by Open from its `durable` argument.
constexpr char kPragmas[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA foreign_keys=ON;"
    "PRAGMA temp_store=MEMORY;"
    "PRAGMA cache_size=-65536;";
constexpr char kReadPragmas[] = "PRAGMA mmap_size=4294967296;";

}  // namespace

void ConfigureSqlite() {
  // SQLite counts its memory under one process-wide mutex by default; with several threads
  // in SQLite at once (the import's correlator beside its inserts, the collector's indexer
  // beside its queries) every malloc and free contends for it (docs/STORAGE.md, "Decisions").
  // Only possible before SQLite initializes itself.
  static const int kMemStatusOff = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)kMemStatusOff;
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path, Mode mode,
                                                         bool durable) {
  ConfigureSqlite();
  sqlite3* raw = nullptr;
  int flags =
      mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  std::unique_ptr<Database> db(new Database(raw, path));
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 10000);
  if (mode == Mode::kReadOnly) {
    // Queries read rows by id all over a partition (the full-text index's candidates):
    // mapped pages cost no read() and no copy into SQLite's cache (docs/STORAGE.md,
    // "Decisions").
    absl::Status s = db->Exec(kReadPragmas);
    if (!s.ok()) return s;
  }
  if (mode == Mode::kReadWrite) {
    absl::Status s = db->Exec(kPragmas);
    if (s.ok()) s = db->Exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    if (!s.ok()) return s;
  }
  return db;
}

absl::Status Database::Error(std::string_view what) const {
  int code = sqlite3_extended_errcode(db_.get());
  std::string msg =
      absl::StrCat(core::ToAbsl(what), ": ", sqlite3_errmsg(db_.get()), " (", path_, ")");
  switch (code & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      return absl::UnavailableError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Database::Exec(std::string_view sql) {
  std::string copy(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), copy.c_str(), nullptr, nullptr, &err);
  if (err != nullptr) sqlite3_free(err);
  if (rc != SQLITE_OK) return Error(absl::StrCat("exec '", core::ToAbsl(sql.substr(0, 60)), "'"));
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK)
    return Error(absl::StrCat("prepare '", core::ToAbsl(sql.substr(0, 80)), "'"));
  return Statement(stmt, this);
}

absl::StatusOr<Statement*> Database::Cached(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(std::move(*stmt))).first;
  }
  it->second->Reset();
  return it->second.get();
}

void Statement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
}

Statement& Statement::Bind(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_.get(), index, value));
  return *this;
}

Statement& Statement::Bind(int index, double value) {
  NoteBind(sqlite3_bind_double(stmt_.get(), index, value));
  return *this;
}

Statement& Statement::BindText(int index, std::string_view value) {
  NoteBind(sqlite3_bind_text(stmt_.get(), index, value.data() ? value.data() : "",
                             static_cast<int>(value.size()), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::BindBlob(int index, std::string_view value) {
  NoteBind(sqlite3_bind_blob(stmt_.get(), index, value.data() ? value.data() : "",
                             static_cast<int>(value.size()), SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::BindNull(int index) {
  NoteBind(sqlite3_bind_null(stmt_.get(), index));
  return *this;
}

absl::StatusOr<Statement::StepResult> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    int rc = bind_error_;
    bind_error_ = SQLITE_OK;
    return absl::InvalidArgumentError(absl::StrCat("bind: ", sqlite3_errstr(rc)));
  }
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return StepResult::kRow;
  if (rc == SQLITE_DONE) return StepResult::kDone;
  return db_->Error("step");
}

absl::Status Statement::Run() {
  auto r = Step();
  if (!r.ok()) {
    Reset();
    return r.status();
  }
  Reset();
  return absl::OkStatus();
}

void Statement::Reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_error_ = SQLITE_OK;
}

std::string_view Statement::ColumnText(int col) const {
  const void* p = sqlite3_column_blob(stmt_.get(), col);
  int n = sqlite3_column_bytes(stmt_.get(), col);
  return p ? std::string_view(static_cast<const char*>(p), n) : std::string_view();
}

void Database::ResetCachedStatements() {
  for (auto& [sql, stmt] : cache_) {
    if (sqlite3_stmt_busy(stmt->stmt_.get())) stmt->Reset();
  }
}

absl::StatusOr<Transaction> Transaction::Begin(Database* db) {
  db->ResetCachedStatements();
  absl::Status s = db->Exec("BEGIN IMMEDIATE");
  if (!s.ok()) {
    std::string busy;
    for (sqlite3_stmt* st = sqlite3_next_stmt(db->raw(), nullptr); st != nullptr;
         st = sqlite3_next_stmt(db->raw(), st)) {
      if (sqlite3_stmt_busy(st)) absl::StrAppend(&busy, " [", sqlite3_sql(st), "]");
    }
    if (!busy.empty()) return absl::Status(s.code(), absl::StrCat(s.message(), "; busy:", busy));
    return s;
  }
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) {
    db_->Exec("ROLLBACK").IgnoreError();
    db_->ResetCachedStatements();
  }
}

absl::Status Transaction::Commit() {
  absl::Status s = db_->Exec("COMMIT");
  if (s.ok()) {
    db_->ResetCachedStatements();
    db_ = nullptr;
  }
  return s;
}

}  // namespace maillens::store
