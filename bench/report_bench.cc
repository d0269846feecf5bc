// Report latency over an existing data directory, and pflogsumm over the log files the
// directory was imported from, timed in the same run so the two figures share the machine's
// load. Target: BuildReport for one day of ~1 M lines in at most 1 s.
// Usage: report_bench DATA_DIR [--rounds N] [--since US --until US] [--host H] [LOG...]
// (--since/--until in UTC microseconds; pflogsumm runs only when LOG files are given).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "report/report.h"

namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU seconds (user + system, all threads) of this process so far: on a shared machine the
// wall time includes waiting for a core, the CPU time does not.
double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: report_bench DATA_DIR [--rounds N] [--since US --until US] [--host H] "
                 "[LOG...]\n");
    return 2;
  }
  std::string dir = argv[1];
  maillens::report::ReportOptions options;
  int rounds = 5;
  std::vector<std::string> logs;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--since" && i + 1 < argc) {
      options.since_us = std::atoll(argv[++i]);
    } else if (a == "--until" && i + 1 < argc) {
      options.until_us = std::atoll(argv[++i]);
    } else if (a == "--host" && i + 1 < argc) {
      options.host = argv[++i];
    } else {
      logs.push_back(a);
    }
  }
  std::vector<double> times, cpu;
  maillens::report::Report report;
  for (int r = 0; r < rounds; ++r) {
    double c0 = CpuSeconds();
    auto t0 = std::chrono::steady_clock::now();
    auto built = maillens::report::BuildReport(dir, options);
    auto t1 = std::chrono::steady_clock::now();
    if (!built.ok()) {
      std::fprintf(stderr, "%s\n", built.status().ToString().c_str());
      return 1;
    }
    times.push_back(Seconds(t1 - t0));
    report = std::move(*built);
    cpu.push_back(CpuSeconds() - c0);
  }
  std::sort(times.begin(), times.end());
  std::sort(cpu.begin(), cpu.end());
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::printf(
      "BuildReport: %d rounds  wall min %.3f s  median %.3f s  max %.3f s;  CPU (both "
      "threads) median %.3f s;  load average %.2f\n",
      rounds, times.front(), times[times.size() / 2], times.back(), cpu[cpu.size() / 2], load[0]);
  std::printf(
      "  %lld received, %lld delivered (%lld recipients), %lld deferred, %lld bounced, "
      "%lld rejected, %lld SASL failures\n",
      static_cast<long long>(report.counts.received),
      static_cast<long long>(report.counts.delivered),
      static_cast<long long>(report.counts.recipients_delivered),
      static_cast<long long>(report.counts.deferred), static_cast<long long>(report.counts.bounced),
      static_cast<long long>(report.counts.rejected),
      static_cast<long long>(report.counts.sasl_failures));
  std::printf(
      "  %lld deferral lines over %zu recipient domains listed, %lld warnings in %zu problem "
      "groups, %lld reject warnings, %lld postscreen connections, %lld login failures\n",
      static_cast<long long>(report.counts.deferrals), report.recipient_domains.entries.size(),
      static_cast<long long>(report.counts.warnings), report.problems.size(),
      static_cast<long long>(report.counts.reject_warnings),
      static_cast<long long>(report.postscreen.connections),
      static_cast<long long>(report.counts.login_failures));
  if (logs.empty()) return 0;
  std::string cmd = "pflogsumm";
  for (const std::string& f : logs) cmd += " '" + f + "'";
  cmd += " >/dev/null 2>&1";
  auto t0 = std::chrono::steady_clock::now();
  int status = std::system(cmd.c_str());
  auto t1 = std::chrono::steady_clock::now();
  if (status != 0) {
    std::fprintf(stderr, "pflogsumm failed (status %d)\n", status);
    return 1;
  }
  std::printf("pflogsumm over %zu file(s): %.3f s\n", logs.size(), Seconds(t1 - t0));
  return 0;
}
