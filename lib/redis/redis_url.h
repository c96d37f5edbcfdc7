// lib/redis/redis_url.h
//
// Where a Redis is, as an operator writes it: "redis://HOST:PORT[/DB]" (HOST a name, e.g. a
// Kubernetes Service, an IPv4 address or "[v6]"; PORT 6379 when left out; DB 0 when left
// out). Parsed and validated once, at start-up.
//
// Never: resolves the name (the client does, asynchronously, at each connect); accepts a
// password inline (credentials do not belong in a config value).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::redis {

struct RedisUrl {
  std::string host;  // without brackets
  uint16_t port = 6379;
  uint32_t db = 0;
  std::string ToString() const;  // "redis://host:port/db"
};

absl::StatusOr<RedisUrl> ParseRedisUrl(std::string_view text);

}  // namespace sluice::redis
