// The keys maillens-agent's configuration file may hold (documented in
// deploy/agent.conf.example), and how its `files` value reads, shared by the agent and
// `maillens doctor`, so both accept and refuse the same files. Thread-safety: immutable
// constants and pure functions.
#ifndef MAILLENS_AGENT_CONFIG_KEYS_H_
#define MAILLENS_AGENT_CONFIG_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace maillens::agent {

inline const std::vector<std::string>& AgentConfigKeys() {
  static const std::vector<std::string> keys = {"collector",
                                                "token",
                                                "token_file",
                                                "host",
                                                "role",
                                                "addresses",
                                                "aliases",
                                                "files",
                                                "state_dir",
                                                "start_at",
                                                "tz",
                                                "batch_lines",
                                                "batch_wait_ms",
                                                "max_in_flight",
                                                "tls_ca",
                                                "tls_cert",
                                                "tls_key",
                                                "tls_server_name",
                                                "allow_plaintext",
                                                "max_line_bytes",
                                                "postfix_config_dirs",
                                                "queue_interval_s",
                                                "metrics_listen",
                                                "metrics_allow_remote"};
  return keys;
}

// One entry of `files`: a glob pattern, then optionally what the files hold.
// "/var/log/mail.log" (a maillog), "/var/log/dovecot.log format=dovecot" (Dovecot's own log
// file, log_path: no host field, the collector stores its lines under the agent's host and
// links its deliveries to the LMTP hops). The collector reads Dovecot's lines by their form
// either way; the agent warns when a file said to be Dovecot's holds other lines.
struct FilesEntry {
  std::string pattern;
  std::string format = "maillog";  // or "dovecot"
};

// `files` (comma-separated entries) read; InvalidArgument naming the entry when one has
// another word after its pattern than format=maillog or format=dovecot.
inline absl::StatusOr<std::vector<FilesEntry>> ParseFilesEntries(const std::string& value) {
  std::vector<FilesEntry> out;
  for (absl::string_view part : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    std::vector<std::string> words =
        absl::StrSplit(absl::StripAsciiWhitespace(part), ' ', absl::SkipWhitespace());
    FilesEntry entry;
    entry.pattern = words[0];
    // "format=dovecot", "format = dovecot" or "format= dovecot": joined back first.
    std::string rest;
    for (size_t i = 1; i < words.size(); ++i) rest += words[i];
    if (!rest.empty()) {
      if (rest != "format=maillog" && rest != "format=dovecot") {
        return absl::InvalidArgumentError(
            absl::StrCat("files entry '", absl::StripAsciiWhitespace(part),
                         "': after the path, only format=maillog or format=dovecot"));
      }
      entry.format = rest.substr(7);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_CONFIG_KEYS_H_
