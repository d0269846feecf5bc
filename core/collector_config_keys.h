// The keys maillens-collector's configuration file may hold (documented in
// deploy/collector.conf.example), shared by the collector and `maillens doctor`, so both
// accept and refuse the same files. Thread-safety: an immutable constant.
#ifndef MAILLENS_CORE_COLLECTOR_CONFIG_KEYS_H_
#define MAILLENS_CORE_COLLECTOR_CONFIG_KEYS_H_

#include <string>
#include <vector>

namespace maillens::core {

inline const std::vector<std::string>& CollectorConfigKeys() {
  static const std::vector<std::string> keys = {"listen",
                                                "data_dir",
                                                "tls_cert",
                                                "tls_key",
                                                "tls_client_ca",
                                                "agent_tokens_file",
                                                "reader_tokens_file",
                                                "allow_plaintext",
                                                "max_batch_events",
                                                "max_line_bytes",
                                                "max_message_bytes",
                                                "writer_queue_bytes",
                                                "journal_max_bytes",
                                                "hot_days",
                                                "archive_days",
                                                "disk_budget",
                                                "retention_interval_minutes",
                                                "metrics_listen",
                                                "metrics_allow_remote"};
  return keys;
}

}  // namespace maillens::core

#endif  // MAILLENS_CORE_COLLECTOR_CONFIG_KEYS_H_
