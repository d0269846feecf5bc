// Parser throughput on one core: reads a maillog into memory, then parses every line `rounds`
// times and prints lines/s. Usage: parser_bench FILE [ROUNDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/parser.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: parser_bench FILE [ROUNDS]\n");
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::ifstream f(argv[1], std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string data = ss.str();
  std::vector<std::string_view> lines;
  std::string_view rest = data;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  }
  maillens::core::TimeOptions options;
  options.year = 2023;
  uint64_t typed = 0;
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    maillens::core::TimeContext time(options);
    auto start = std::chrono::steady_clock::now();
    for (std::string_view line : lines) {
      maillens::core::Event ev = maillens::core::ParseLine(line, &time);
      typed += ev.kind != maillens::core::Kind::kUnparsed;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = lines.size() / secs;
    if (rate > best) best = rate;
  }
  std::printf("parser: %zu lines x %d rounds, best %.0f lines/s (%.1f ns/line), %.1f MB/s\n",
              lines.size(), rounds, best, 1e9 / best, best * data.size() / lines.size() / 1e6);
  std::fprintf(stderr, "(typed %llu)\n", static_cast<unsigned long long>(typed));
  return 0;
}
