// `maillens doctor`: checks a mail host's agent setup (--agent-config F) or a collector's
// (--collector-config F) and prints one line per check, OK / WARN / FAIL, with what is wrong
// and how to fix it. Exit status 1 when any check fails.
//
// Each check is a function of what it looked at (file text, stat results, a user's ids, a
// command's output, what the collector answered), so tests drive every outcome without root,
// Postfix or a collector; the environment (command runner, collector probe, user lookup,
// clock, system zone) is injected through DoctorEnv.
//
// Thread-safety: the check functions are pure and thread-safe; RunDoctor is for main().
#ifndef MAILLENS_CLI_DOCTOR_COMMAND_H_
#define MAILLENS_CLI_DOCTOR_COMMAND_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/queue_reader.h"
#include "cli/common.h"
#include "core/config.h"
#include "maillens/v1/status.pb.h"

namespace maillens::cli {

enum class CheckLevel { kOk, kWarn, kFail };

struct CheckResult {
  std::string name;  // short: "config", "maillog", "collector", "clock", "time zone", ...
  CheckLevel level = CheckLevel::kOk;
  std::string what;  // what was found
  std::string fix;   // how to fix it; empty when OK
};

// The correlation's tolerance for clocks of different hosts (docs/CORRELATION.md).
inline constexpr absl::Duration kCorrelationSkew = absl::Seconds(150);

// ---- the checks ----

// The config file parses with the program's keys and holds what the program requires
// (`required_keys`). On success *config holds it, for the checks that follow.
CheckResult CheckConfig(const absl::StatusOr<std::string>& text, const std::string& path,
                        const std::vector<std::string>& allowed_keys,
                        const std::vector<std::string>& required_keys,
                        std::optional<core::Config>* config);

struct UserInfo {
  std::string name;
  uid_t uid = 0;
  std::vector<gid_t> gids;  // primary and supplementary groups
};
// The user and its groups from the system's databases (getpwnam, getgrouplist).
absl::StatusOr<UserInfo> LookupUser(const std::string& name);

struct FileInfo {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;
};
absl::StatusOr<FileInfo> StatFile(const std::string& path);

// Whether `user` may read the file by its owner, group and mode (access(2) cannot answer for
// another user without privileges). `check` names the result ("maillog").
CheckResult CheckReadableBy(const std::string& check, const std::string& path,
                            const absl::StatusOr<FileInfo>& info, const UserInfo& user);
// The same for writing a directory (the collector's data_dir).
CheckResult CheckWritableDirBy(const std::string& check, const std::string& path,
                               const absl::StatusOr<FileInfo>& info, const UserInfo& user);

// What asking the collector gave: the standard health service, an authenticated no-op on the
// ingest stream (opened and closed without a batch, so nothing is recorded), and the
// collector's clock when its StatusService answered this token (unset otherwise).
struct ProbeResult {
  absl::Status health;
  absl::Status authenticated;
  std::optional<int64_t> collector_now_us;
  int64_t local_now_us = 0;  // this host's clock when the collector answered
};
CheckResult CheckCollectorProbe(const std::string& target, const ProbeResult& probe);

// This host's clock against the collector's.
CheckResult CheckClockAgainstCollector(const ProbeResult& probe, absl::Duration skew);
// From the collector: each caught-up agent's newest line time against when the collector
// committed it; lines from the future beyond the skew mean that host's clock is ahead.
CheckResult CheckAgentClocks(const maillens::v1::StatusResponse& status, absl::Duration skew);

// The zone classic (RFC 3164) stamps are read in: the agent's `tz` (empty: the system zone)
// against the system zone syslog writes them in, compared by offset at `now`.
// The agent's `addresses` and `aliases`: other hosts log a hop to this one as relay=NAME[IP];
// without declared addresses a relay over an address the name does not give (a loopback or
// internal address, a tunnel) cannot be linked to this host. Warns when none are declared.
CheckResult CheckDeclaredAddresses(const std::string& addresses, const std::string& aliases);

CheckResult CheckTimeZone(const std::string& configured, const std::string& system_zone,
                          absl::Time now);

// `postconf [-c DIR] -h enable_long_queue_ids`: warns when off (short queue IDs are reused).
CheckResult CheckLongQueueIds(const agent::CommandRunner& run, const std::string& config_dir);

// ---- running them ----

struct DoctorEnv {
  agent::CommandRunner run = agent::RunCommand;
  std::function<absl::StatusOr<UserInfo>(const std::string&)> lookup_user = LookupUser;
  std::function<absl::StatusOr<FileInfo>(const std::string&)> stat_file = StatFile;
  // Probes the collector the agent config names (TLS, token as the agent would use them).
  std::function<ProbeResult(const core::Config&)> probe;
  std::function<absl::StatusOr<maillens::v1::StatusResponse>(const std::string& data_dir)>
      read_status;
  std::string system_zone;  // e.g. "Europe/Berlin"
  absl::Time now;
};
// The real environment.
DoctorEnv SystemDoctorEnv();

struct DoctorOptions {
  std::string agent_config;  // one of these two
  std::string collector_config;
  std::string user = "maillens";  // the user the agent or collector runs as
  std::string postfix_config;     // overrides the agent's postfix_config_dirs
};
std::vector<CheckResult> RunDoctorChecks(const DoctorOptions& options, const DoctorEnv& env);

// "OK   name  what" lines, with "     fix: ..." under WARN and FAIL.
void PrintChecks(const std::vector<CheckResult>& results, bool color, FILE* out);

int RunDoctor(const GlobalOptions& global, const std::vector<std::string>& args);

}  // namespace maillens::cli

#endif  // MAILLENS_CLI_DOCTOR_COMMAND_H_
