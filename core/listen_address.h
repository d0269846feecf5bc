// Whether a listen address stays on this machine: the one rule the collector's gRPC port, the
// agent's collector address and both programs' metrics endpoints apply before they refuse
// plaintext or a remote listener.
#ifndef MAILLENS_CORE_LISTEN_ADDRESS_H_
#define MAILLENS_CORE_LISTEN_ADDRESS_H_

#include <string_view>

#include "absl/status/status.h"

namespace maillens::core {

// True for "127.x.y.z:PORT", "[::1]:PORT", "localhost:PORT" (any case), with or without a gRPC
// scheme ("ipv4:", "ipv6:", "dns:"), and for "unix:PATH". An empty host or 0.0.0.0 listens
// everywhere and is not loopback.
bool IsLoopbackListen(std::string_view listen);

// The `metrics_listen` of either program: HOST:PORT with an IPv4 address or a name (the HTTP
// server under prometheus-cpp has no IPv6 on Debian), and loopback unless `allow_remote`
// (metrics_allow_remote). InvalidArgument says what to write instead; `example_port` is the
// program's usual port. Both programs call it when they load their configuration.
absl::Status CheckMetricsListen(std::string_view listen, bool allow_remote, int example_port);

}  // namespace maillens::core

#endif  // MAILLENS_CORE_LISTEN_ADDRESS_H_
