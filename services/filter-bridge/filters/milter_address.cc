// services/filter-bridge/filters/milter_address.cc -- see milter_address.h.
#include "services/filter-bridge/filters/milter_address.h"

#include "lib/net/host_port.h"

namespace sluice::filter_bridge {
namespace {

absl::StatusOr<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5) return absl::InvalidArgumentError("bad port");
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return absl::InvalidArgumentError("bad port");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return absl::InvalidArgumentError("bad port");
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string MilterAddress::ToString() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  return "inet:" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

absl::StatusOr<MilterAddress> ParseMilterAddress(std::string_view text) {
  const std::string quoted = "milter address \"" + std::string(text) + "\"";
  MilterAddress a;
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(quoted + ": expected inet:HOST:PORT or unix:/path");
  }
  const std::string_view transport = text.substr(0, colon);
  const std::string_view endpoint = text.substr(colon + 1);
  if (transport == "unix" || transport == "local") {
    if (endpoint.empty() || endpoint.size() > 107) {
      return absl::InvalidArgumentError(quoted + ": bad socket path");
    }
    a.kind = MilterAddress::Kind::kUnix;
    a.path = std::string(endpoint);
    return a;
  }
  if (transport != "inet" && transport != "inet6") {
    return absl::InvalidArgumentError(quoted + ": unknown transport (inet or unix)");
  }
  if (size_t at = endpoint.find('@'); at != std::string_view::npos) {
    // Sendmail style: PORT@HOST.
    auto port = ParsePort(endpoint.substr(0, at));
    if (!port.ok() || at + 1 >= endpoint.size()) {
      return absl::InvalidArgumentError(quoted + ": expected PORT@HOST");
    }
    a.port = *port;
    a.host = std::string(endpoint.substr(at + 1));
    if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
      a.host = a.host.substr(1, a.host.size() - 2);
    }
    return a;
  }
  auto hp = net::ParseHostPort(endpoint);
  if (!hp.ok() || hp->host.empty() || hp->port == 0) {
    return absl::InvalidArgumentError(quoted + ": expected inet:HOST:PORT");
  }
  a.host = hp->host;
  a.port = hp->port;
  return a;
}

}  // namespace sluice::filter_bridge
