// Import throughput (parse + store + FTS + correlate) beside a bare SQLite FTS5 insert of the
// same lines, in the same run. Usage: import_bench FILE [WORKDIR]
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "collector/importer.h"
#include "collector/sqlite.h"
#include "collector/store.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One FTS5 table, one transaction, every line as it is: the floor any indexed store pays.
double BareFts5(const std::vector<std::string>& lines, const std::string& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr,
               nullptr);
  sqlite3_exec(db, "CREATE VIRTUAL TABLE t USING fts5(raw)", nullptr, nullptr, nullptr);
  auto start = std::chrono::steady_clock::now();
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t (raw) VALUES (?)", -1, &stmt, nullptr);
  for (const std::string& line : lines) {
    sqlite3_bind_text(stmt, 1, line.data(), static_cast<int>(line.size()), SQLITE_STATIC);
    sqlite3_step(stmt);
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  double secs = Seconds(start);
  sqlite3_close(db);
  return lines.size() / secs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: import_bench FILE [WORKDIR]\n");
    return 2;
  }
  std::string file = argv[1];
  std::string work = argc > 2 ? argv[2] : "/tmp/maillens_import_bench";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  maillens::collector::ConfigureSqlite();  // before the bare insert initializes SQLite
  std::vector<std::string> lines;
  {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  // Each run starts with no dirty pages of the other's files being written back beside it.
  sync();
  double bare = BareFts5(lines, work + "/bare.db");
  sync();

  maillens::collector::StoreOptions options;
  options.dir = work + "/store";
  options.durable = false;
  options.correlate_behind = true;  // as maillens import
  options.behind_depth = 4;
  auto store = maillens::collector::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  maillens::collector::ImportOptions import;
  import.year = 2023;
  auto start = std::chrono::steady_clock::now();
  auto stats = maillens::collector::ImportFile(store->get(), file, import);
  double secs = Seconds(start);
  if (!stats.ok()) {
    std::fprintf(stderr, "%s\n", stats.status().ToString().c_str());
    return 1;
  }
  double ours = stats->read / secs;
  store->reset();  // closed: the WAL files are checkpointed into the databases and removed
  uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(options.dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  std::printf("lines: %zu\n", lines.size());
  std::printf("bare sqlite3 FTS5 insert: %.0f lines/s\n", bare);
  std::printf("maillens import:          %.0f lines/s (stored %llu) = %.2fx bare\n", ours,
              static_cast<unsigned long long>(stats->stored), ours / bare);
  std::printf("data directory: %.1f MB, %.1f MB per million lines\n", bytes / 1e6,
              bytes / 1e6 / (stats->read / 1e6));
  return 0;
}
