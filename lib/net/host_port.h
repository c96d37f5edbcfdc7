// lib/net/host_port.h
//
// "HOST:PORT" as written in flags and config ("127.0.0.1:10025", "[::1]:25", "filter:10025",
// ":2525" meaning every address), split and validated.
//
// Never: resolves names (callers resolve, asynchronously, where they connect).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::net {

struct HostPort {
  std::string host;  // without brackets; "" means any address
  uint16_t port = 0;
  std::string ToString() const;  // brackets around IPv6
};

absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

}  // namespace sluice::net
