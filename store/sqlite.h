// A thin RAII layer over SQLite: a connection and a statement owned by unique_ptr with
// deleters, a transaction that rolls back in its destructor unless committed, and Step() that
// tells row / done / error apart. Errors are absl::Status carrying SQLite's message.
//
// Thread-compatible: a Database and its Statements belong to one thread at a time (the store
// gives each thread its own connection; SQLite is built serialized but we do not rely on it).
#ifndef MAILLENS_STORE_SQLITE_H_
#define MAILLENS_STORE_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace maillens::store {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

class Statement;

// Process-wide SQLite settings (no memory statistics: their global mutex serialized threads).
// Database::Open calls it; a program that calls sqlite3 itself first must call it before.
void ConfigureSqlite();

class Database {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (creating in kReadWrite) the file at `path` and applies the project's pragmas (WAL,
  // a busy timeout, ...); they are set in one place, sqlite.cc. `durable` selects
  // synchronous=FULL: a commit is fsynced and survives power loss (what an acknowledgement to
  // an agent promises). Without it (synchronous=NORMAL) a commit survives a crash of the
  // process but maybe not of the machine: enough for an import that can simply be re-run.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path, Mode mode,
                                                        bool durable = true);

  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results (DDL, pragmas).
  absl::Status Exec(std::string_view sql);

  // Compiles `sql` (one statement with '?' placeholders).
  absl::StatusOr<Statement> Prepare(std::string_view sql);

  // Like Prepare, but compiles each distinct `sql` once and keeps it; the statement comes back
  // reset with no bindings. For hot paths. Do not nest two uses of the same SQL, and do not
  // keep stepping one across a transaction's start or end: Transaction resets every cached
  // statement there, because one left at its row holds the connection's read snapshot, and
  // once another connection commits, this one's next BEGIN IMMEDIATE fails ("database is
  // locked") for as long as the statement stays at its row.
  absl::StatusOr<Statement*> Cached(std::string_view sql);

  // Resets every cached statement that has stepped and not been reset (see Cached).
  void ResetCachedStatements();

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_.get()); }
  int Changes() const { return sqlite3_changes(db_.get()); }
  sqlite3* raw() const { return db_.get(); }
  const std::string& path() const { return path_; }

  // The SQLite error of the last call, as a Status with `what` in front.
  absl::Status Error(std::string_view what) const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  // After db_: members die in reverse order, so statements are finalized before the close.
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
  std::string path_;
};

// A compiled statement. Bind with 1-based indexes, Step until it reports done, Reset to reuse.
class Statement {
 public:
  enum class StepResult { kRow, kDone };

  Statement(Statement&&) = default;
  Statement& operator=(Statement&&) = default;

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& BindText(int index, std::string_view value);  // copied (SQLITE_TRANSIENT)
  Statement& BindBlob(int index, std::string_view value);  // copied; empty blob, not NULL
  Statement& BindNull(int index);

  // kRow when a row is ready, kDone at the end; an error otherwise. A bind error (index out of
  // range) is reported here.
  absl::StatusOr<StepResult> Step();
  // Steps a statement that returns no rows.
  absl::Status Run();
  void Reset();

  int64_t ColumnInt(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  double ColumnDouble(int col) const { return sqlite3_column_double(stmt_.get(), col); }
  // Valid until the next Step/Reset.
  std::string_view ColumnText(int col) const;
  bool ColumnIsNull(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, const Database* db) : stmt_(stmt), db_(db) {}
  void NoteBind(int rc);

  std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt_;
  const Database* db_;  // borrowed: the Database outlives its statements
  int bind_error_ = SQLITE_OK;
};

// BEGIN IMMEDIATE on construction; ROLLBACK in the destructor unless Commit() succeeded. Each
// of the three resets the database's cached statements (Database::Cached says why). A BEGIN
// that fails names the connection's statements still at a row, the usual culprit.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // borrowed; null once committed or rolled back
};

}  // namespace maillens::store

#endif  // MAILLENS_STORE_SQLITE_H_
