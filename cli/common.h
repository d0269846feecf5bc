// Pieces every maillens subcommand shares: option parsing, time arguments, the data
// directory. Flags are parsed here, per subcommand, because each has its own.
#ifndef MAILLENS_CLI_COMMON_H_
#define MAILLENS_CLI_COMMON_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/escape.h"

namespace maillens::cli {

// Options before the subcommand: `maillens --data DIR search ...`,
// `maillens --server HOST:PORT --token-file F search ...`.
struct GlobalOptions {
  std::string data_dir;  // --data, else $MAILLENS_DATA, else ./maillens-data
  // --server HOST:PORT, else $MAILLENS_SERVER: queries go to this collector instead.
  std::string server;
  bool server_from_env = false;
  std::string token_file;  // --token-file: holds a reader token; else $MAILLENS_TOKEN is one
  std::string tls_ca;      // --tls-ca: PEM of the CA that signed the collector's certificate
  std::string tls_cert;    // --tls-cert/--tls-key: a client certificate (mutual TLS)
  std::string tls_key;
  bool allow_plaintext = false;  // --allow-plaintext: no TLS to a non-loopback collector
  // --tz ZONE (an IANA name such as Europe/Berlin, or UTC): the zone every time is printed
  // and read in, instead of the machine's. Applied by ParseGlobalOptions through $TZ, so
  // absl::LocalTimeZone() is that zone for the whole command.
  std::string tz;
};

// Reads the options before the subcommand from argv[*i], advancing *i to the subcommand,
// with defaults from $MAILLENS_DATA and $MAILLENS_SERVER; --data on the command line wins over
// $MAILLENS_SERVER, and --data with --server is refused. Returns false after printing what is
// wrong.
bool ParseGlobalOptions(int argc, char** argv, int* i, GlobalOptions* out);

// Makes `zone` the zone of every time printed and read ($TZ); false after printing why not.
bool ApplyTimeZone(const std::string& zone);
// Removes `--tz ZONE` / `--tz=ZONE` from a command's arguments and applies it: --tz is a
// global option that may also follow the command. False after printing a bad zone.
bool TakeTimeZoneOption(std::vector<std::string>* args);
// The IANA name of the zone times are shown in ($TZ, which --tz sets, else the zone
// /etc/localtime links to), for a collector that renders for us; "" when it has no name.
std::string LocalZoneName();

// True when `args` ask for help (--help or -h before any "--"): every command then prints its
// usage on stdout and exits 0, whatever else is wrong with the arguments or the setup.
bool WantsHelp(const std::vector<std::string>& args);

// A small option parser: "--name value", "--name=value", boolean "--flag", and positionals.
class ArgParser {
 public:
  ArgParser(std::string command, std::string usage)
      : command_(std::move(command)), usage_(std::move(usage)) {}
  void Flag(const std::string& name, bool* out);
  void Option(const std::string& name, std::string* out);
  // Returns false after printing a pointed error (or the usage for --help; then *exit_code=0).
  bool Parse(const std::vector<std::string>& args, std::vector<std::string>* positional,
             int* exit_code);

 private:
  std::string command_;
  std::string usage_;
  std::vector<std::pair<std::string, bool*>> flags_;
  std::vector<std::pair<std::string, std::string*>> options_;
};

std::string FormatLocalTime(int64_t time_us, absl::TimeZone zone);
// The zone's abbreviation now ("CET", "UTC", "+0530"), for headers that print local times.
std::string ZoneLabel(absl::TimeZone zone);
// EscapeControls (core/escape.h): the command line's one rule for log text shown to people.
using ::maillens::core::EscapeControls;

// True when standard output is a terminal (colour, progress bars, tables).
// Asks `question` ([y/N]) before a change that cannot be undone, unless `yes` (--yes). Without
// a terminal on stdin it refuses, saying "`command`: not `doing` without confirmation"; on
// anything but y it prints "nothing changed". True: go ahead.
bool Confirm(bool yes, const char* command, const char* doing, const std::string& question);
bool StdoutIsTty();
bool StderrIsTty();

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_COMMON_H_
