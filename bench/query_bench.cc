// Search and trace latency over an existing data directory (bench/query.sh builds one with the
// simulator). Picks random messages from the catalog and times, for each, the search the CLI
// runs (per message, with traces: store::SearchWithTraces) for its queue ID as free text,
// for its recipient, for its sender and recipient (from:A to:B, on different lines), for a
// recipient prefix (to:PREFIX*, the first three characters), and a trace as `maillens trace`
// reads and tells it (the trace, its lines, and its story: cli/trace_story.h). The messages are a
// fixed pseudo-random pick, so two builds can be compared on the same questions.
// Usage: query_bench DATA_DIR [QUERIES [ONLY]]: ONLY, a word of the query names below
// ("from:A", "PREFIX"), times only those.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/trace_story.h"
#include "core/strings.h"
#include "store/query_proto.h"
#include "store/store.h"

namespace {

struct Sample {
  std::string queue_id;
  std::string recipient;
  std::string sender;
};

std::vector<Sample> PickSamples(const std::string& dir, int n) {
  std::vector<Sample> out;
  sqlite3* db = nullptr;
  sqlite3_open_v2((dir + "/catalog.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  std::string sql =
      "SELECT m.queue_id, r.recipient, m.sender FROM messages m JOIN recipients r "
      "ON r.message = m.id WHERE m.sender != '' ORDER BY (r.rowid * 1103515245 + 12345) % "
      "2147483647 LIMIT " +
      std::to_string(n);
  sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    out.push_back(Sample{reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                         reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)),
                         reinterpret_cast<const char*>(sqlite3_column_text(stmt, 2))});
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

void Report(const char* what, std::vector<double> ms) {
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  std::printf("%-28s n=%zu  p50 %.2f ms  p95 %.2f ms  max %.2f ms\n", what, ms.size(),
              ms[ms.size() / 2], ms[ms.size() * 95 / 100], ms.back());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: query_bench DATA_DIR [QUERIES]\n");
    return 2;
  }
  std::string dir = argv[1];
  int n = argc > 2 ? std::atoi(argv[2]) : 200;
  std::vector<Sample> samples = PickSamples(dir, n);
  maillens::store::StoreOptions options;
  options.dir = dir;
  options.read_only = true;
  auto store = maillens::store::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  auto lines = (*store)->CountLines();
  std::printf("store: %llu lines, %zu samples\n",
              static_cast<unsigned long long>(lines.ok() ? *lines : 0), samples.size());
  std::vector<double> by_qid, by_rcpt, by_both, by_prefix, trace, trace_catalog;
  uint64_t found = 0;
  using maillens::core::FieldTerm;
  const std::string only = argc > 3 ? argv[3] : "";
  auto timed = [&](maillens::store::SearchQuery q, std::vector<double>* ms) {
    const char* name = ms == &by_qid    ? "search <queue id>"
                       : ms == &by_rcpt ? "search to:<address>"
                       : ms == &by_both ? "search from:A to:B"
                                        : "search to:PREFIX*";
    if (!only.empty() && std::string(name).find(only) == std::string::npos) return;
    q.limit = 50;
    auto t0 = std::chrono::steady_clock::now();
    auto r = maillens::store::SearchWithTraces(store->get(), q, /*with_traces=*/true);
    auto t1 = std::chrono::steady_clock::now();
    found += r.ok() && r->result.total > 0;
    ms->push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  };
  for (const Sample& s : samples) {
    maillens::store::SearchQuery q;
    q.words = {s.queue_id};
    timed(q, &by_qid);
    q = {};
    q.terms = {FieldTerm{FieldTerm::Target::kTo, maillens::core::Lower(s.recipient)}};
    timed(q, &by_rcpt);
    q.terms.push_back(FieldTerm{FieldTerm::Target::kFrom, maillens::core::Lower(s.sender)});
    timed(q, &by_both);
    q = {};
    q.terms = {
        FieldTerm{FieldTerm::Target::kTo, maillens::core::Lower(s.recipient.substr(0, 3)) + "*"}};
    timed(q, &by_prefix);
    if (!only.empty() && std::string("trace <queue id>").find(only) == std::string::npos) continue;
    auto t2 = std::chrono::steady_clock::now();
    auto tr = (*store)->GetTrace(s.queue_id);
    auto t_catalog = std::chrono::steady_clock::now();
    trace_catalog.push_back(std::chrono::duration<double, std::milli>(t_catalog - t2).count());
    if (tr.ok()) {
      auto tr_lines = maillens::store::TraceLines(store->get(), *tr);
      if (tr_lines.ok()) {
        found += !maillens::cli::TellTrace(*tr, *tr_lines).verdict.empty();
      }
    }
    auto t3 = std::chrono::steady_clock::now();
    trace.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
  }
  Report("search <queue id>", by_qid);
  Report("search to:<address>", by_rcpt);
  Report("search from:A to:B", by_both);
  Report("search to:PREFIX*", by_prefix);
  Report("trace <queue id>", trace);
  Report("  its catalog part", trace_catalog);
  std::printf("answers found: %llu of %zu\n", static_cast<unsigned long long>(found),
              samples.size() * 5);
  return 0;
}
