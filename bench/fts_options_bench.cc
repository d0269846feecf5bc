// Compares FTS5 tokenizers and options on the same lines: insert speed, index size, and
// whether the searches maillens needs work (an address, a queue ID, a message-id, a part of a
// domain). Usage: fts_options_bench FILE [WORKDIR]
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Variant {
  const char* name;
  const char* create;
};

int64_t Count(sqlite3* db, const std::string& match) {
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE t MATCH ?", -1, &stmt, nullptr);
  sqlite3_bind_text(stmt, 1, match.c_str(), -1, SQLITE_TRANSIENT);
  int64_t n = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fts_options_bench FILE [WORKDIR]\n");
    return 2;
  }
  std::string work = argc > 2 ? argv[2] : "/tmp/maillens_fts_bench";
  std::filesystem::create_directories(work);
  std::vector<std::string> lines;
  {
    std::ifstream in(argv[1], std::ios::binary);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  const Variant variants[] = {
      {"unicode61 (default)", "CREATE VIRTUAL TABLE t USING fts5(raw, content='')"},
      {"unicode61 detail=column",
       "CREATE VIRTUAL TABLE t USING fts5(raw, content='', detail=column)"},
      {"unicode61 tokenchars @.-_",
       "CREATE VIRTUAL TABLE t USING fts5(raw, content='', "
       "tokenize=\"unicode61 tokenchars '@.-_'\")"},
      {"ascii", "CREATE VIRTUAL TABLE t USING fts5(raw, content='', tokenize='ascii')"},
      {"trigram", "CREATE VIRTUAL TABLE t USING fts5(raw, content='', tokenize='trigram')"},
  };
  // Searches an administrator types; phrase queries as maillens builds them.
  const char* queries[] = {"\"uhu-banane.net\"", "\"user01.test@uhu-banane.net\"",
                           "\"status=deferred\"", "\"banane\""};
  std::printf("%-28s %12s %10s", "variant", "lines/s", "MB");
  for (const char* q : queries) std::printf("  %s", q);
  std::printf("\n");
  for (const Variant& v : variants) {
    std::string path = work + "/fts.db";
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    std::filesystem::remove(path + "-shm");
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr,
                 nullptr);
    sqlite3_exec(db, v.create, nullptr, nullptr, nullptr);
    auto start = std::chrono::steady_clock::now();
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO t (rowid, raw) VALUES (?, ?)", -1, &stmt, nullptr);
    int64_t id = 0;
    for (const std::string& line : lines) {
      sqlite3_bind_int64(stmt, 1, ++id);
      sqlite3_bind_text(stmt, 2, line.data(), static_cast<int>(line.size()), SQLITE_STATIC);
      sqlite3_step(stmt);
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
    double mb = std::filesystem::file_size(path) / 1e6;
    std::printf("%-28s %12.0f %10.1f", v.name, lines.size() / secs, mb);
    for (const char* q : queries) std::printf("  %lld", static_cast<long long>(Count(db, q)));
    std::printf("\n");
    sqlite3_close(db);
  }
  return 0;
}
