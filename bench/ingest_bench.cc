// Ingest throughput and agent footprint, run by bench/ingest.sh.
//
//   ingest_bench BIN_DIR WORK_DIR HOST=LOG HOST=LOG [RATE_SECONDS [BATCH_LINES]]
//
// Phase 1: a collector (as deployed: a batch is acknowledged once durable in its ingest
// journal, then indexed) and one agent per HOST=LOG, each reading its LOG from the beginning
// with the default batching. Two figures: lines/s until the collector has acknowledged every
// line of every LOG (its status' lines_since_start, polled every 0.5 s), and lines/s until the
// store holds them all, indexed and correlated (its partitions, polled every 0.5 s).
// Phase 2: the first agent is restarted (so its peak RSS covers this phase only) and a writer
// appends 1,000 lines/s to its LOG for RATE_SECONDS (default 45) while the agent's RSS
// (VmRSS, VmHWM) and CPU (utime + stime) are sampled from /proc.
// BATCH_LINES sets the agents' batch_lines (default: the agent's default), for comparisons.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Source {
  std::string host;
  std::string log;
  uint64_t lines = 0;
};

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t CountLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

pid_t Spawn(const std::string& bin, const std::string& config, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execl(bin.c_str(), bin.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

void Stop(pid_t pid) {
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

// Lines in the store: the sum of max(id) over the partitions (ids are dense; count(*) would
// scan millions of rows every poll). `exact` counts instead.
uint64_t Stored(const std::string& data, bool exact) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data + "/days", ec)) {
    // Partitions only (YYYYMMDD.db), not their full-text side files (YYYYMMDD.fts.db).
    if (entry.path().filename().string().size() != 11 || entry.path().extension() != ".db") {
      continue;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(entry.path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_busy_timeout(db, 5000);
      sqlite3_stmt* stmt = nullptr;
      const char* sql = exact ? "SELECT count(*) FROM events" : "SELECT max(id) FROM events";
      if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        total += static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db);
  }
  return total;
}

// utime + stime of a process, in seconds.
double CpuSeconds(pid_t pid) {
  std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields 3..13 come first; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A "VmRSS:"-style line of /proc/PID/status, in MiB.
double StatusMiB(pid_t pid, const std::string& key) {
  std::istringstream in(ReadText("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atof(line.c_str() + key.size() + 1) / 1024.0;
  }
  return 0;
}

// A number field of `maillens status --json` ("NAME": "123" or "NAME": 123), or -1.
long long JsonNumber(const std::string& json, const std::string& name) {
  size_t at = json.find("\"" + name + "\":");
  if (at == std::string::npos) return -1;
  at += name.size() + 3;
  while (at < json.size() && (json[at] == ' ' || json[at] == '"')) ++at;
  return std::atoll(json.c_str() + at);
}

// The collector's status as JSON, through the CLI.
std::string StatusJson(const std::string& bin, int port) {
  std::string cmd =
      bin + "/maillens --server 127.0.0.1:" + std::to_string(port) + " status --json 2>/dev/null";
  std::string out;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  return out;
}

int g_batch_lines = 0;  // 0: the agent's default

std::string AgentConfig(const std::string& work, int port, const Source& s) {
  std::string path = work + "/agent-" + s.host + ".conf";
  std::ofstream out(path);
  out << "collector = 127.0.0.1:" << port << "\nhost = " << s.host << "\nfiles = " << s.log
      << "\nstate_dir = " << work << "/state-" << s.host << "\nstart_at = beginning\ntz = UTC\n";
  if (g_batch_lines > 0) out << "batch_lines = " << g_batch_lines << "\n";
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(
        stderr, "usage: ingest_bench BIN_DIR WORK_DIR HOST=LOG HOST=LOG [SECONDS [BATCH_LINES]]\n");
    return 2;
  }
  const std::string bin = argv[1];
  const std::string work = argv[2];
  std::vector<Source> sources;
  for (int i = 3; i < 5; ++i) {
    std::string arg = argv[i];
    size_t eq = arg.find('=');
    sources.push_back(Source{arg.substr(0, eq), arg.substr(eq + 1)});
    sources.back().lines = CountLines(sources.back().log);
  }
  const int rate_seconds = argc > 5 ? std::atoi(argv[5]) : 45;
  g_batch_lines = argc > 6 ? std::atoi(argv[6]) : 0;
  const int port = 17411;
  const std::string data = work + "/data";
  std::string collector_conf = work + "/collector.conf";
  std::ofstream(collector_conf) << "listen = 127.0.0.1:" << port << "\ndata_dir = " << data << "\n";

  // Phase 1.
  uint64_t total = 0;
  for (const Source& s : sources) total += s.lines;
  std::printf("phase 1: %s %llu lines + %s %llu lines, two agents -> one collector\n",
              sources[0].host.c_str(), static_cast<unsigned long long>(sources[0].lines),
              sources[1].host.c_str(), static_cast<unsigned long long>(sources[1].lines));
  std::fflush(stdout);
  pid_t collector = Spawn(bin + "/maillens-collector", collector_conf, work + "/collector.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<pid_t> agents;
  Clock::time_point t0 = Clock::now();
  double collector_cpu0 = CpuSeconds(collector);
  for (const Source& s : sources) {
    agents.push_back(Spawn(bin + "/maillens-agent", AgentConfig(work, port, s),
                           work + "/agent-" + s.host + ".log"));
  }
  uint64_t stored = 0;
  long long acked = 0;
  double acked_at = 0;
  double agent_cpu[2] = {0, 0}, agent_hwm[2] = {0, 0}, collector_cpu = 0, cpu_at_ack = 0;
  while (stored < total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (acked_at == 0) acked = JsonNumber(StatusJson(bin, port), "lines_since_start");
    stored = Stored(data, false);
    double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (acked_at == 0) {
      for (int i = 0; i < 2; ++i) {
        agent_cpu[i] = CpuSeconds(agents[i]);
        agent_hwm[i] = StatusMiB(agents[i], "VmHWM");
      }
    }
    collector_cpu = CpuSeconds(collector) - collector_cpu0;
    if (acked_at == 0 && acked >= static_cast<long long>(total)) {
      acked_at = elapsed;
      cpu_at_ack = collector_cpu;
    }
    std::printf("  %6.1f s  %9lld acked  %9llu stored  %8.0f lines/s stored\n", elapsed, acked,
                static_cast<unsigned long long>(stored), stored / elapsed);
    std::fflush(stdout);
    if (elapsed > 1800) {
      std::printf("gave up after 30 minutes\n");
      break;
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  uint64_t exact = Stored(data, true);
  std::printf(
      "phase 1 result: %llu lines acknowledged (durable in the journal) in %.1f s = %.0f lines/s "
      "acked and durable\n"
      "  collector CPU %.0f%% of a core until then; agent %s CPU %.0f%%, VmHWM %.1f MiB; agent %s "
      "CPU %.0f%%, VmHWM %.1f MiB\n"
      "  indexed: %llu of %llu lines in the store (exact count) after %.1f s = %.0f lines/s "
      "stored, indexed and correlated (collector CPU %.0f%% of a core)\n",
      static_cast<unsigned long long>(total), acked_at, total / acked_at,
      100 * cpu_at_ack / acked_at, sources[0].host.c_str(), 100 * agent_cpu[0] / acked_at,
      agent_hwm[0], sources[1].host.c_str(), 100 * agent_cpu[1] / acked_at, agent_hwm[1],
      static_cast<unsigned long long>(exact), static_cast<unsigned long long>(total), elapsed,
      exact / elapsed, 100 * collector_cpu / elapsed);
  std::fflush(stdout);

  // Phase 2: the first agent, restarted, follows 1,000 lines/s.
  const Source& a = sources[0];
  Stop(agents[0]);
  agents[0] = Spawn(bin + "/maillens-agent", AgentConfig(work, port, a),
                    work + "/agent-" + a.host + ".log");
  std::this_thread::sleep_for(std::chrono::seconds(2));  // settles after start
  std::ifstream src(sources[1].log);  // lines to append: the other host's, as text
  int fd = open(a.log.c_str(), O_WRONLY | O_APPEND);
  uint64_t before = Stored(data, false);
  double cpu0 = CpuSeconds(agents[0]);
  Clock::time_point p0 = Clock::now();
  double rss_max = 0, rss_sum = 0;
  int samples = 0;
  std::string line, chunk;
  for (int tick = 0; tick < rate_seconds * 100; ++tick) {
    chunk.clear();
    for (int i = 0; i < 10 && std::getline(src, line); ++i) chunk += line + "\n";
    if (write(fd, chunk.data(), chunk.size()) < 0) break;
    if (tick % 100 == 99) {
      double rss = StatusMiB(agents[0], "VmRSS");
      rss_max = std::max(rss_max, rss);
      rss_sum += rss;
      ++samples;
    }
    std::this_thread::sleep_until(p0 + std::chrono::milliseconds(10 * (tick + 1)));
  }
  close(fd);
  double wall = std::chrono::duration<double>(Clock::now() - p0).count();
  double cpu = CpuSeconds(agents[0]) - cpu0;
  uint64_t appended = static_cast<uint64_t>(rate_seconds) * 1000;
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  uint64_t after = before;
  while (after < before + appended && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after = Stored(data, false);
  }
  std::printf(
      "phase 2 result: agent %s following 1,000 lines/s for %.0f s: CPU %.2f%% of a core "
      "(%.2f s utime+stime), VmRSS mean %.1f MiB, max %.1f MiB, VmHWM %.1f MiB; %llu of %llu "
      "appended lines stored\n",
      a.host.c_str(), wall, 100 * cpu / wall, cpu, samples ? rss_sum / samples : 0, rss_max,
      StatusMiB(agents[0], "VmHWM"), static_cast<unsigned long long>(after - before),
      static_cast<unsigned long long>(appended));
  for (pid_t pid : agents) Stop(pid);
  Stop(collector);
  return 0;
}
