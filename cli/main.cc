// maillens: the command line. Subcommands live in cli/*_command.cc; flags are parsed there
// because each subcommand has its own.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/archive_command.h"
#include "cli/common.h"
#include "cli/doctor_command.h"
#include "cli/help_command.h"
#include "cli/hosts_command.h"
#include "cli/parse_command.h"
#include "cli/queue_command.h"
#include "cli/relink_command.h"
#include "cli/status_command.h"
#include "cli/store_commands.h"

namespace {

constexpr char kUsage[] =
    "usage: maillens [--data DIR | --server HOST:PORT] COMMAND [ARGS...]\n"
    "  --data DIR          the local data directory (default: $MAILLENS_DATA, else "
    "./maillens-data)\n"
    "  --server HOST:PORT  ask a maillens-collector instead (default: $MAILLENS_SERVER); with\n"
    "    --token-file F    a file holding a reader token (default: the token in $MAILLENS_TOKEN)\n"
    "    --tls-ca F        the CA (PEM) that signed the collector's certificate\n"
    "    --tls-cert F --tls-key F  a client certificate, for mutual TLS\n"
    "    --allow-plaintext no TLS to a collector on another machine\n"
    "  --tz ZONE           print and read times in ZONE (UTC, Europe/Berlin, ...) instead of\n"
    "                      the machine's zone; tables name the zone they use\n"
    "commands:\n"
    "  parse [FILE...|-]   show how maillens reads maillog lines (JSON per line, or --stats)\n"
    "  import FILE...      store maillogs (plain or .gz) in the data directory\n"
    "  relink              link hops again after declaring a host's names and addresses\n"
    "  search [WORD...]    find messages by words, addresses, queue IDs, status, time\n"
    "  trace ID            follow one message (queue ID or message-id) across hosts\n"
    "  tail [-f] [WORD...] the newest lines stored, then (-f, needs --server) new ones\n"
    "  report              traffic and incident summary of a window (text, markdown, json, html)\n"
    "  status              agents, their lag, ingest rate, disk use, recorded gaps and outages\n"
    "  queue [TERM...]     what sits in every host's Postfix queue now, with its stored trace\n"
    "  archive list|verify|export DAY|repair  the archive of old days: list, check, get lines\n"
    "                      back, rebuild a manifest that cannot be trusted\n"
    "  hosts [forget NAME] the hosts stored, with line counts and times; remove one\n"
    "  doctor --agent-config F | --collector-config F  check a mail host's or collector's setup\n"
    "  version             print the version\n"
    "  help [TOPIC]        a guide with examples: help search, help trace, help report\n"
    "  completion bash     a bash completion script: eval \"$(maillens completion bash)\"\n"
    "import, relink, hosts and archive repair work on a data directory only (--data); search,\n"
    "trace, tail, report, status, queue and archive list|verify|export answer through either.\n"
    "Run 'maillens COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  maillens::cli::GlobalOptions global;
  int i = 1;
  if (!maillens::cli::ParseGlobalOptions(argc, argv, &i, &global)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command = argv[i];
  std::vector<std::string> args(argv + i + 1, argv + argc);
  if (!maillens::cli::TakeTimeZoneOption(&args)) return 2;
  if (command == "parse") return maillens::cli::RunParse(args);
  if (command == "doctor") return maillens::cli::RunDoctor(global, args);
  if ((command == "import" || command == "relink") && !global.server.empty() &&
      !maillens::cli::WantsHelp(args)) {
    std::fprintf(stderr,
                 "maillens %s: works on a local data directory only, not through a collector "
                 "(%s is set): run it on the collector's host with --data DIR\n",
                 command.c_str(), global.server_from_env ? "$MAILLENS_SERVER" : "--server");
    return 2;
  }
  if (command == "tail") return maillens::cli::RunTail(global, args);
  if (command == "status") return maillens::cli::RunStatus(global, args);
  if (command == "queue") return maillens::cli::RunQueue(global, args);
  if (command == "import") return maillens::cli::RunImport(global, args);
  if (command == "search") return maillens::cli::RunSearch(global, args);
  if (command == "relink") return maillens::cli::RunRelink(global, args);
  if (command == "trace") return maillens::cli::RunTrace(global, args);
  if (command == "report") return maillens::cli::RunReport(global, args);
  if (command == "archive") return maillens::cli::RunArchive(global, args);
  if (command == "hosts") return maillens::cli::RunHosts(global, args);
  if (command == "version" && maillens::cli::WantsHelp(args)) {
    std::fputs("usage: maillens version\n  prints the version of maillens\n", stdout);
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::printf("maillens %s\n", MAILLENS_VERSION);
    return 0;
  }
  if (command == "help") return maillens::cli::RunHelp(args, kUsage);
  if (command == "completion") return maillens::cli::RunCompletion(args);
  if (command == "-h" || command == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "maillens: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
