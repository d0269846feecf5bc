// The keys maillens-agent's configuration file may hold (documented in
// deploy/agent.conf.example), shared by the agent and `maillens doctor`, so both accept and
// refuse the same files. Thread-safety: an immutable constant.
#ifndef MAILLENS_AGENT_CONFIG_KEYS_H_
#define MAILLENS_AGENT_CONFIG_KEYS_H_

#include <string>
#include <vector>

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

}  // namespace maillens::agent

#endif  // MAILLENS_AGENT_CONFIG_KEYS_H_
