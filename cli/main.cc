// maillens: the command line. Subcommands live in cli/*_command.cc; flags are parsed there
// because each subcommand has its own.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/parse_command.h"
#include "cli/store_commands.h"

namespace {

constexpr char kUsage[] =
    "usage: maillens [--data DIR] COMMAND [ARGS...]\n"
    "  --data DIR  the local data directory (default: $MAILLENS_DATA, else ./maillens-data)\n"
    "commands:\n"
    "  parse [FILE...|-]   show how maillens reads maillog lines (JSON per line, or --stats)\n"
    "  import FILE...      store maillogs (plain or .gz) in the data directory\n"
    "  search [WORD...]    find lines by words, addresses, queue IDs, status, time\n"
    "  trace ID            follow one message (queue ID or message-id) across hosts\n"
    "  report              traffic and incident summary of a window (text, markdown, json, html)\n"
    "  version             print the version\n"
    "Run 'maillens COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  maillens::cli::GlobalOptions global;
  const char* env = std::getenv("MAILLENS_DATA");
  global.data_dir = env != nullptr && *env != '\0' ? env : "maillens-data";
  int i = 1;
  while (i < argc && std::strncmp(argv[i], "--", 2) == 0 && std::strcmp(argv[i], "--help") != 0 &&
         std::strcmp(argv[i], "--version") != 0) {
    std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) {
      global.data_dir = argv[i + 1];
      i += 2;
    } else if (a.rfind("--data=", 0) == 0) {
      global.data_dir = a.substr(7);
      ++i;
    } else {
      std::fprintf(stderr, "maillens: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command = argv[i];
  std::vector<std::string> args(argv + i + 1, argv + argc);
  if (command == "parse") return maillens::cli::RunParse(args);
  if (command == "import") return maillens::cli::RunImport(global, args);
  if (command == "search") return maillens::cli::RunSearch(global, args);
  if (command == "trace") return maillens::cli::RunTrace(global, args);
  if (command == "report") return maillens::cli::RunReport(global, args);
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
