#include "cli/doctor_command.h"

#include <grp.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/config_keys.h"
#include "core/collector_config_keys.h"
#include "maillens/v1/ingest.grpc.pb.h"
#include "maillens/v1/status.grpc.pb.h"
#include "store/status_read.h"

namespace maillens::cli {
namespace {

constexpr auto kProbeTimeout = std::chrono::seconds(5);

CheckResult Ok(std::string name, std::string what) {
  return {std::move(name), CheckLevel::kOk, std::move(what), ""};
}
CheckResult Warn(std::string name, std::string what, std::string fix) {
  return {std::move(name), CheckLevel::kWarn, std::move(what), std::move(fix)};
}
CheckResult Fail(std::string name, std::string what, std::string fix) {
  return {std::move(name), CheckLevel::kFail, std::move(what), std::move(fix)};
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> List(const std::string& value) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

bool InGroups(gid_t gid, const UserInfo& user) {
  for (gid_t g : user.gids) {
    if (g == gid) return true;
  }
  return false;
}

std::string GroupName(gid_t gid) {
  struct group* g = getgrgid(gid);
  return g != nullptr ? g->gr_name : absl::StrCat(gid);
}

std::string UserName(uid_t uid) {
  struct passwd* p = getpwuid(uid);
  return p != nullptr ? p->pw_name : absl::StrCat(uid);
}

std::string Describe(const std::string& path, const FileInfo& info) {
  return absl::StrFormat("%s is %04o %s:%s", path, info.mode & 07777, UserName(info.uid),
                         GroupName(info.gid));
}

// The permission bits (r = 4, w = 2, x = 1) that apply to `user` for a file.
mode_t BitsFor(const FileInfo& info, const UserInfo& user) {
  if (user.uid == 0) return 07;
  if (info.uid == user.uid) return (info.mode >> 6) & 07;
  if (InGroups(info.gid, user)) return (info.mode >> 3) & 07;
  return info.mode & 07;
}

}  // namespace

CheckResult CheckConfig(const absl::StatusOr<std::string>& text, const std::string& path,
                        const std::vector<std::string>& allowed_keys,
                        const std::vector<std::string>& required_keys,
                        std::optional<core::Config>* config) {
  if (!text.ok()) {
    return Fail("config", std::string(text.status().message()),
                "give the file the program is started with (see its systemd unit), readable "
                "by you");
  }
  absl::StatusOr<core::Config> parsed = core::Config::Parse(*text, path, allowed_keys);
  if (!parsed.ok()) {
    return Fail("config", std::string(parsed.status().message()),
                "correct the line it names; every key is documented in deploy/*.conf.example");
  }
  for (const std::string& key : required_keys) {
    absl::StatusOr<std::string> value = parsed->GetRequiredString(key);
    if (!value.ok()) {
      return Fail("config", std::string(value.status().message()),
                  absl::StrCat("add '", key, " = ...' to ", path));
    }
  }
  *config = *std::move(parsed);
  return Ok("config", absl::StrCat(path, " parses"));
}

absl::StatusOr<UserInfo> LookupUser(const std::string& name) {
  struct passwd* p = getpwnam(name.c_str());
  if (p == nullptr) return absl::NotFoundError(absl::StrCat("no user '", name, "'"));
  UserInfo user;
  user.name = name;
  user.uid = p->pw_uid;
  int count = 64;
  std::vector<gid_t> gids(count);
  while (getgrouplist(name.c_str(), p->pw_gid, gids.data(), &count) < 0) gids.resize(count);
  gids.resize(count);
  user.gids = std::move(gids);
  return user;
}

absl::StatusOr<FileInfo> StatFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  return FileInfo{st.st_uid, st.st_gid, st.st_mode};
}

CheckResult CheckReadableBy(const std::string& check, const std::string& path,
                            const absl::StatusOr<FileInfo>& info, const UserInfo& user) {
  if (!info.ok()) {
    return Warn(check, std::string(info.status().message()),
                "check the agent's 'files'; if Postfix logs through syslog, is rsyslog "
                "running? (the agent waits for the file to appear)");
  }
  if (BitsFor(*info, user) & 04) {
    return Ok(check, absl::StrCat(Describe(path, *info), ": readable by ", user.name));
  }
  return Fail(check, absl::StrCat(Describe(path, *info), ": not readable by ", user.name),
              absl::StrCat("let the file's group read it and put ", user.name,
                           " in that group, e.g. 'chgrp adm ", path, " && chmod 0640 ", path,
                           " && usermod -aG adm ", user.name,
                           "'. Postfix's own logging (maillog_file) recreates the file "
                           "0600 root on 'postfix logrotate': fix it after each rotation (a "
                           "postrotate hook), or log through syslog (rsyslog creates "
                           "root:adm 0640)"));
}

CheckResult CheckWritableDirBy(const std::string& check, const std::string& path,
                               const absl::StatusOr<FileInfo>& info, const UserInfo& user) {
  if (!info.ok()) {
    return Fail(check, std::string(info.status().message()),
                absl::StrCat("create it: 'install -d -o ", user.name, " -m 0750 ", path, "'"));
  }
  if (!S_ISDIR(info->mode)) {
    return Fail(check, absl::StrCat(path, " is not a directory"), "point data_dir at one");
  }
  if ((BitsFor(*info, user) & 03) == 03) {
    return Ok(check, absl::StrCat(Describe(path, *info), ": writable by ", user.name));
  }
  return Fail(check, absl::StrCat(Describe(path, *info), ": not writable by ", user.name),
              absl::StrCat("'chown -R ", user.name, " ", path, "'"));
}

CheckResult CheckCollectorProbe(const std::string& target, const ProbeResult& probe) {
  if (!probe.health.ok()) {
    return Fail("collector", absl::StrCat(target, " does not answer: ", probe.health.message()),
                "is maillens-collector running and listening there ('listen' in its "
                "config)? Is a firewall in the way? With TLS: does tls_ca hold the CA that "
                "signed its certificate, and tls_server_name the name in it?");
  }
  if (!probe.authenticated.ok()) {
    return Fail(
        "collector",
        absl::StrCat(target, " answers but refuses this agent: ", probe.authenticated.message()),
        "the agent's token must be an agent token listed for this host (the agent's "
        "'host') in the collector's agent_tokens_file (lines 'HOST TOKEN'; make-certs.sh "
        "writes them)");
  }
  return Ok("collector",
            absl::StrCat(target, " answers and accepts this agent's token for its host"));
}

CheckResult CheckClockAgainstCollector(const ProbeResult& probe, absl::Duration skew) {
  if (!probe.collector_now_us) {
    return Warn("clock", "not compared: the collector gives its time to reader tokens only",
                "run 'maillens doctor --collector-config F' on the collector: it compares "
                "every agent's newest lines with its own clock");
  }
  absl::Duration diff = absl::Microseconds(probe.local_now_us - *probe.collector_now_us);
  std::string what =
      absl::StrCat("this host's clock is ", absl::FormatDuration(absl::AbsDuration(diff)),
                   diff < absl::ZeroDuration() ? " behind" : " ahead of", " the collector's");
  if (absl::AbsDuration(diff) >= skew) {
    return Fail("clock", what,
                absl::StrCat("hops are linked only within ", absl::FormatDuration(skew),
                             ": run NTP on every host (systemd-timesyncd or chrony)"));
  }
  return Ok("clock", what);
}

CheckResult CheckAgentClocks(const v1::StatusResponse& status, absl::Duration skew) {
  std::vector<std::string> ahead;
  int compared = 0;
  for (const v1::AgentStatus& a : status.agents()) {
    if (a.last_event_us() == 0 || a.last_seen_us() == 0) continue;
    ++compared;
    // A line is stored after it was written, so its time can only be later than the commit
    // by the host's clock error.
    absl::Duration future = absl::Microseconds(a.last_event_us() - a.last_seen_us());
    if (future >= skew) {
      ahead.push_back(absl::StrCat(a.host(), " (", absl::FormatDuration(future), ")"));
    }
  }
  if (!ahead.empty()) {
    return Fail("clock",
                absl::StrCat("lines newer than their arrival here, so these hosts' clocks are "
                             "ahead of the collector's: ",
                             absl::StrJoin(ahead, ", ")),
                absl::StrCat("hops are linked only within ", absl::FormatDuration(skew),
                             ": run NTP on every host (systemd-timesyncd or chrony); check "
                             "the agents' tz too"));
  }
  if (compared == 0) {
    return Warn("clock", "no agent has sent lines yet, nothing to compare",
                "run the doctor again once agents are connected");
  }
  return Ok("clock", absl::StrCat(compared,
                                  " agents' newest lines are not ahead of the "
                                  "collector's clock"));
}

CheckResult CheckDeclaredAddresses(const std::string& addresses, const std::string& aliases) {
  if (!List(addresses).empty()) {
    return Ok("addresses", absl::StrCat("declared: ", absl::StrJoin(List(addresses), ", "),
                                        List(aliases).empty() ? "" : "; aliases: ",
                                        absl::StrJoin(List(aliases), ", ")));
  }
  return Warn("addresses",
              "none declared: other hosts name this one in relay=NAME[IP], and a hop to an "
              "address no host declares (loopback, an internal address, a tunnel) stays "
              "unlinked until one does",
              "set addresses = the IPs other mail hosts connect to (and aliases = its other "
              "names) in the agent's config");
}

CheckResult CheckTimeZone(const std::string& configured, const std::string& system_zone,
                          absl::Time now) {
  absl::TimeZone system;
  bool system_known = !system_zone.empty() && absl::LoadTimeZone(system_zone, &system);
  if (configured.empty()) {
    return Ok("time zone",
              absl::StrCat("classic stamps are read in the system zone (",
                           system_known ? system_zone : std::string("unknown name"), ")"));
  }
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(configured, &zone)) {
    return Fail("time zone", absl::StrCat("tz = '", configured, "' is not a known time zone"),
                "use a name from /usr/share/zoneinfo such as Europe/Berlin or UTC, or remove "
                "tz to use the system zone");
  }
  if (!system_known) {
    return Warn("time zone",
                absl::StrCat("tz = ", configured, "; the system zone is unknown to compare"),
                "make sure it is the zone syslog writes the maillog's stamps in");
  }
  int configured_offset = zone.At(now).offset;
  int system_offset = system.At(now).offset;
  if (configured_offset != system_offset) {
    return Warn("time zone",
                absl::StrCat("tz = ", configured, " (UTC", configured_offset >= 0 ? "+" : "",
                             configured_offset / 3600.0, "h) differs from the system zone ",
                             system_zone, " (UTC", system_offset >= 0 ? "+" : "",
                             system_offset / 3600.0, "h), in which syslog writes classic stamps"),
                "remove tz unless syslog on this host really runs in another zone; a wrong "
                "zone shifts every line and breaks cross-host linking");
  }
  return Ok("time zone",
            absl::StrCat("tz = ", configured, " matches the system zone ", system_zone));
}

CheckResult CheckLongQueueIds(const agent::CommandRunner& run, const std::string& config_dir) {
  std::vector<std::string> argv = {"postconf"};
  if (!config_dir.empty()) {
    argv.push_back("-c");
    argv.push_back(config_dir);
  }
  argv.push_back("-h");
  argv.push_back("enable_long_queue_ids");
  std::string what = absl::StrJoin(argv, " ");
  std::string name = "queue ids";
  std::string where = config_dir.empty() ? "" : absl::StrCat(config_dir, ": ");
  absl::StatusOr<agent::CommandOutput> out = run(argv);
  if (!out.ok() || out->exit_code != 0) {
    return Warn(name,
                absl::StrCat("could not ask Postfix: ", what, ": ",
                             out.ok() ? std::string(absl::StripAsciiWhitespace(out->err))
                                      : std::string(out.status().message())),
                "run the doctor on the mail host, where postconf is installed; with several "
                "instances pass --postfix-config DIR");
  }
  std::string value(absl::StripAsciiWhitespace(out->out));
  if (value == "yes") return Ok(name, absl::StrCat(where, "enable_long_queue_ids = yes"));
  return Warn(name,
              absl::StrCat(where, "enable_long_queue_ids = ", value.empty() ? "(empty)" : value),
              absl::StrCat("short queue IDs are reused within hours, so maillens may join two "
                           "messages; 'postconf ",
                           config_dir.empty() ? "" : absl::StrCat("-c ", config_dir, " "),
                           "-e enable_long_queue_ids=yes && postfix reload'"));
}

namespace {

std::shared_ptr<grpc::ChannelCredentials> AgentCredentials(const core::Config& config,
                                                           std::string* error) {
  if (!config.Has("tls_ca")) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  for (auto [key, field] :
       {std::pair{"tls_ca", &ssl.pem_root_certs}, std::pair{"tls_cert", &ssl.pem_cert_chain},
        std::pair{"tls_key", &ssl.pem_private_key}}) {
    if (!config.Has(key)) continue;
    absl::StatusOr<std::string> text = ReadWholeFile(config.GetString(key));
    if (!text.ok()) {
      *error = absl::StrCat(config.Where(key), ": ", text.status().message());
      return nullptr;
    }
    *field = *text;
  }
  return grpc::SslCredentials(ssl);
}

std::string AgentToken(const core::Config& config) {
  if (!config.Has("token_file")) return config.GetString("token");
  absl::StatusOr<std::string> text = ReadWholeFile(config.GetString("token_file"));
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "";
}

absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::string ShortHostName() {
  char buf[256] = {};
  gethostname(buf, sizeof(buf) - 1);
  std::string name = buf;
  return name.substr(0, name.find('.'));
}

ProbeResult ProbeCollector(const core::Config& config) {
  ProbeResult result;
  std::string target = config.GetString("collector");
  std::string error;
  auto credentials = AgentCredentials(config, &error);
  if (credentials == nullptr) {
    result.health = absl::FailedPreconditionError(error);
    return result;
  }
  grpc::ChannelArguments args;
  if (config.Has("tls_server_name")) {
    args.SetSslTargetNameOverride(config.GetString("tls_server_name"));
  }
  auto channel = grpc::CreateCustomChannel(target, credentials, args);
  auto deadline = [] { return std::chrono::system_clock::now() + kProbeTimeout; };

  // grpc.health.v1.Health/Check with an empty request (the whole server); the answer
  // {status: SERVING} is the two bytes 08 01.
  grpc::GenericStub generic(channel);
  grpc::ClientContext health_context;
  health_context.set_deadline(deadline());
  grpc::Slice empty{std::string()};
  grpc::ByteBuffer request(&empty, 1), response;  // a valid, empty buffer
  std::promise<grpc::Status> done;
  generic.UnaryCall(&health_context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status health = done.get_future().get();
  if (!health.ok()) {
    result.health = ToAbsl(health);
    return result;
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices)
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (bytes != std::string("\x08\x01", 2)) {
    result.health = absl::UnavailableError("its health service says it is not serving");
    return result;
  }

  // The token, and whether it is this host's: an ingest stream with one hello marked as a
  // probe, which the collector checks as the agent's own and stores nothing of. A token issued
  // to another host ends the stream with PERMISSION_DENIED, naming both.
  std::string token = AgentToken(config);
  auto ingest = v1::IngestService::NewStub(channel);
  grpc::ClientContext ingest_context;
  ingest_context.set_deadline(deadline());
  if (!token.empty()) ingest_context.AddMetadata("authorization", "Bearer " + token);
  auto stream = ingest->Stream(&ingest_context);
  v1::Batch hello;
  hello.set_batch_id(1);
  // The agent's own default when `host` is not set (agent/agent_main.cc).
  hello.mutable_hello()->set_host(config.GetString("host", ShortHostName()));
  hello.mutable_hello()->set_probe(true);
  stream->Write(hello);
  stream->WritesDone();
  v1::Ack ack;
  std::string refused;
  while (stream->Read(&ack)) {
    if (ack.status() != v1::ACK_STATUS_COMMITTED) refused = ack.detail();
  }
  result.authenticated = ToAbsl(stream->Finish());
  if (result.authenticated.ok() && !refused.empty()) {
    result.authenticated = absl::InvalidArgumentError(refused);
  }

  // The collector's clock, if it tells this token.
  auto status_stub = v1::StatusService::NewStub(channel);
  grpc::ClientContext status_context;
  status_context.set_deadline(deadline());
  if (!token.empty()) status_context.AddMetadata("authorization", "Bearer " + token);
  v1::StatusRequest status_request;
  status_request.set_max_gaps(1);
  status_request.set_max_offline(1);
  v1::StatusResponse status;
  auto before = absl::Now();
  if (status_stub->GetStatus(&status_context, status_request, &status).ok()) {
    // The collector's time is taken somewhere within the call: compare with its middle.
    result.collector_now_us = status.now_us();
    result.local_now_us = absl::ToUnixMicros(before + (absl::Now() - before) / 2);
  }
  return result;
}

std::string SystemZoneName() {
  if (const char* tz = std::getenv("TZ"); tz != nullptr && *tz != '\0') {
    return tz[0] == ':' ? tz + 1 : tz;
  }
  char buf[512] = {};
  ssize_t n = readlink("/etc/localtime", buf, sizeof(buf) - 1);
  if (n > 0) {
    std::string link(buf, static_cast<size_t>(n));
    size_t at = link.find("zoneinfo/");
    if (at != std::string::npos) return link.substr(at + 9);
  }
  absl::StatusOr<std::string> text = ReadWholeFile("/etc/timezone");
  if (text.ok()) return std::string(absl::StripAsciiWhitespace(*text));
  return "UTC";
}

}  // namespace

DoctorEnv SystemDoctorEnv() {
  DoctorEnv env;
  env.probe = ProbeCollector;
  env.read_status = [](const std::string& data_dir) {
    v1::StatusRequest request;
    return store::ReadStatus(data_dir, request, absl::Now());
  };
  env.system_zone = SystemZoneName();
  env.now = absl::Now();
  return env;
}

std::vector<CheckResult> RunDoctorChecks(const DoctorOptions& options, const DoctorEnv& env) {
  std::vector<CheckResult> results;
  bool agent = !options.agent_config.empty();
  const std::string& path = agent ? options.agent_config : options.collector_config;
  std::optional<core::Config> config;
  results.push_back(CheckConfig(
      ReadWholeFile(path), path, agent ? agent::AgentConfigKeys() : core::CollectorConfigKeys(),
      agent ? std::vector<std::string>{"collector"} : std::vector<std::string>{"data_dir"},
      &config));
  if (!config) return results;

  absl::StatusOr<UserInfo> user = env.lookup_user(options.user);
  if (!user.ok()) {
    results.push_back(Fail("user", std::string(user.status().message()),
                           absl::StrCat("give the user the ", agent ? "agent" : "collector",
                                        " runs as with --user (the package creates "
                                        "'maillens')")));
  }

  if (agent) {
    if (user.ok()) {
      // An entry may name its format after the path ("PATH format=dovecot").
      for (const std::string& entry : List(config->GetString("files", "/var/log/mail.log"))) {
        const std::string file = entry.substr(0, entry.find(' '));
        results.push_back(CheckReadableBy("maillog", file, env.stat_file(file), *user));
      }
    }
    ProbeResult probe = env.probe(*config);
    results.push_back(CheckCollectorProbe(config->GetString("collector"), probe));
    if (probe.health.ok()) {
      results.push_back(CheckClockAgainstCollector(probe, kCorrelationSkew));
    }
    results.push_back(CheckTimeZone(config->GetString("tz"), env.system_zone, env.now));
    results.push_back(
        CheckDeclaredAddresses(config->GetString("addresses"), config->GetString("aliases")));
    std::vector<std::string> dirs = options.postfix_config.empty()
                                        ? List(config->GetString("postfix_config_dirs"))
                                        : std::vector<std::string>{options.postfix_config};
    if (dirs.empty()) dirs.push_back("");
    for (const std::string& dir : dirs) results.push_back(CheckLongQueueIds(env.run, dir));
  } else {
    std::string data_dir = config->GetString("data_dir");
    if (user.ok()) {
      results.push_back(CheckWritableDirBy("data_dir", data_dir, env.stat_file(data_dir), *user));
    }
    absl::StatusOr<v1::StatusResponse> status = env.read_status(data_dir);
    if (status.ok()) {
      results.push_back(CheckAgentClocks(*status, kCorrelationSkew));
    } else {
      results.push_back(Warn("clock", absl::StrCat("not compared: ", status.status().message()),
                             "run the doctor again once the collector has stored lines"));
    }
  }
  return results;
}

void PrintChecks(const std::vector<CheckResult>& results, bool color, FILE* out) {
  size_t width = 0;
  for (const CheckResult& r : results) width = std::max(width, r.name.size());
  for (const CheckResult& r : results) {
    const char* label = r.level == CheckLevel::kOk     ? "OK  "
                        : r.level == CheckLevel::kWarn ? "WARN"
                                                       : "FAIL";
    const char* on = !color                         ? ""
                     : r.level == CheckLevel::kOk   ? "\033[32m"
                     : r.level == CheckLevel::kWarn ? "\033[33m"
                                                    : "\033[31m";
    std::fprintf(out, "%s%s%s  %-*s  %s\n", on, label, color ? "\033[0m" : "",
                 static_cast<int>(width), r.name.c_str(), r.what.c_str());
    if (!r.fix.empty()) {
      std::fprintf(out, "      %-*s  fix: %s\n", static_cast<int>(width), "", r.fix.c_str());
    }
  }
}

int RunDoctor(const GlobalOptions& global, const std::vector<std::string>& args) {
  DoctorOptions options;
  ArgParser parser(
      "doctor",
      "usage: maillens doctor --agent-config FILE | --collector-config FILE [--user USER]\n"
      "                       [--postfix-config DIR]\n"
      "  Checks a mail host's agent setup (config, the maillog readable by the agent's user,\n"
      "  the collector reachable with TLS and token, clocks, time zone, Postfix's\n"
      "  enable_long_queue_ids) or a collector's (config, data_dir, agents' clocks). Prints\n"
      "  OK / WARN / FAIL per check with a fix; exits 1 when a check fails.\n"
      "  --user USER          the user the program runs as (default: maillens)\n"
      "  --postfix-config DIR the Postfix instance's config directory (default: the agent's\n"
      "                       postfix_config_dirs, else Postfix's default)\n");
  parser.Option("agent-config", &options.agent_config);
  parser.Option("collector-config", &options.collector_config);
  parser.Option("user", &options.user);
  parser.Option("postfix-config", &options.postfix_config);
  std::vector<std::string> positional;
  int exit_code = 2;
  if (!parser.Parse(args, &positional, &exit_code)) return exit_code;
  if (options.agent_config.empty() == options.collector_config.empty() || !positional.empty()) {
    std::fprintf(stderr,
                 "maillens doctor: give exactly one of --agent-config FILE (on a mail host) or "
                 "--collector-config FILE (on the collector)\n");
    return 2;
  }
  std::vector<CheckResult> results = RunDoctorChecks(options, SystemDoctorEnv());
  PrintChecks(results, StdoutIsTty(), stdout);
  for (const CheckResult& r : results) {
    if (r.level == CheckLevel::kFail) return 1;
  }
  return 0;
}

}  // namespace maillens::cli
