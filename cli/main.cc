// maillens: the command line. Subcommands live in cli/*_command.cc; flags are parsed there
// because each subcommand has its own.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/parse_command.h"

namespace {

constexpr char kUsage[] =
    "usage: maillens COMMAND [ARGS...]\n"
    "commands:\n"
    "  parse [FILE...|-]   show how maillens reads maillog lines (JSON per line, or --stats)\n"
    "  version             print the version\n"
    "Run 'maillens COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "parse") return maillens::cli::RunParse(args);
  if (command == "version" || command == "--version") {
    std::printf("maillens %s\n", MAILLENS_VERSION);
    return 0;
  }
  if (command == "help" || command == "-h" || command == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "maillens: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
