// Import throughput (parse + store + FTS + correlate) beside a bare SQLite FTS5 insert of the
// same lines, in the same run. Usage: import_bench FILE [WORKDIR] [--rounds N]
//
// With --rounds N, the two alternate N times (this VM's speed drifts by tens of per cent over
// minutes) and the summary gives each one's median and the median of the rounds' ratios.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store/importer.h"
#include "store/sqlite.h"
#include "store/store.h"

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

struct Round {
  double bare = 0;
  double ours = 0;
  unsigned long long stored = 0;
  uintmax_t bytes = 0;
  uint64_t read = 0;
};

// One round: the bare insert, then maillens import of the same file into a fresh directory.
bool RunRound(const std::string& file, const std::string& work,
              const std::vector<std::string>& lines, Round* round) {
  // Each run starts with no dirty pages of the other's files being written back beside it.
  sync();
  round->bare = BareFts5(lines, work + "/bare.db");
  sync();

  maillens::store::StoreOptions options;
  options.dir = work + "/store";
  std::filesystem::remove_all(options.dir);
  options.durable = false;
  options.correlate_behind = true;  // as maillens import
  options.behind_depth = 4;
  auto store = maillens::store::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return false;
  }
  maillens::store::ImportOptions import;
  import.year = 2023;
  auto start = std::chrono::steady_clock::now();
  auto stats = maillens::store::ImportFile(store->get(), file, import);
  double secs = Seconds(start);
  if (!stats.ok()) {
    std::fprintf(stderr, "%s\n", stats.status().ToString().c_str());
    return false;
  }
  round->ours = stats->read / secs;
  round->stored = stats->stored;
  round->read = stats->read;
  store->reset();  // closed: the WAL files are checkpointed into the databases and removed
  for (const auto& e : std::filesystem::recursive_directory_iterator(options.dir)) {
    if (e.is_regular_file()) round->bytes += e.file_size();
  }
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args;
  int rounds = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else {
      args.push_back(arg);
    }
  }
  if (args.empty() || rounds < 1) {
    std::fprintf(stderr, "usage: import_bench FILE [WORKDIR] [--rounds N]\n");
    return 2;
  }
  std::string file = args[0];
  std::string work = args.size() > 1 ? args[1] : "/tmp/maillens_import_bench";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  maillens::store::ConfigureSqlite();  // before the bare insert initializes SQLite
  std::vector<std::string> lines;
  {
    std::ifstream in(file, std::ios::binary);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  std::printf("lines: %zu\n", lines.size());
  std::vector<double> bare, ours, ratio;
  Round round;
  for (int r = 0; r < rounds; ++r) {
    round = Round();
    if (!RunRound(file, work, lines, &round)) return 1;
    bare.push_back(round.bare);
    ours.push_back(round.ours);
    ratio.push_back(round.ours / round.bare);
    if (rounds > 1) {
      std::printf("round %d: bare %.0f, maillens %.0f lines/s = %.2fx\n", r + 1, round.bare,
                  round.ours, round.ours / round.bare);
    }
  }
  const char* of = rounds > 1 ? " (median)" : "";
  std::printf("bare sqlite3 FTS5 insert: %.0f lines/s%s\n", Median(bare), of);
  std::printf("maillens import:          %.0f lines/s%s (stored %llu) = %.2fx bare%s\n",
              Median(ours), of, round.stored, Median(ratio),
              rounds > 1 ? " (median of the rounds' ratios)" : "");
  std::printf("data directory: %.1f MB, %.1f MB per million lines\n", round.bytes / 1e6,
              round.bytes / 1e6 / (round.read / 1e6));
  return 0;
}
