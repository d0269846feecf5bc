#include "core/listen_address.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/strings.h"

namespace maillens::core {

bool IsLoopbackListen(std::string_view listen) {
  if (absl::StartsWith(ToAbsl(listen), "unix:")) return true;
  std::string_view host = listen;
  for (std::string_view scheme : {"ipv4:", "ipv6:", "dns:"}) {
    if (absl::StartsWith(ToAbsl(host), ToAbsl(scheme))) host.remove_prefix(scheme.size());
  }
  if (!host.empty() && host.front() == '[') {
    size_t end = host.find(']');
    if (end == std::string_view::npos) return false;
    host = host.substr(1, end - 1);
  } else {
    size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) host = host.substr(0, colon);
  }
  return absl::EqualsIgnoreCase(ToAbsl(host), "localhost") || host == "::1" ||
         absl::StartsWith(ToAbsl(host), "127.");
}

absl::Status CheckMetricsListen(std::string_view listen, bool allow_remote, int example_port) {
  if (listen.find(':') == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_listen '", ToAbsl(listen),
                     "' is not HOST:PORT (for example 127.0.0.1:", example_port, ")"));
  }
  if (!allow_remote && !IsLoopbackListen(listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to serve metrics on ", ToAbsl(listen),
        ", which is not a loopback address: use 127.0.0.1:PORT and let Prometheus scrape "
        "through a tunnel or proxy, or set metrics_allow_remote = true"));
  }
  // CivetWeb, the HTTP server under prometheus-cpp, is built by Debian without IPv6, so an
  // IPv6 address cannot work: it is refused with the configuration, where the fix is one line.
  std::string_view host = listen;
  if (absl::StartsWith(ToAbsl(host), "ipv6:")) host.remove_prefix(5);
  if (absl::StartsWith(ToAbsl(listen), "ipv6:") || (!host.empty() && host.front() == '[') ||
      host.find(':') != host.rfind(':')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listen '", ToAbsl(listen),
        "' is an IPv6 address, and the metrics endpoint (CivetWeb under prometheus-cpp, as "
        "Debian builds it) has no IPv6: use an IPv4 address such as 127.0.0.1:",
        example_port));
  }
  return absl::OkStatus();
}

}  // namespace maillens::core
