// services/filter-bridge/filters/milter_address.h
//
// A milter's address as Postfix and Sendmail write it: inet:HOST:PORT (Postfix),
// inet:PORT@HOST (Sendmail), inet6:PORT@HOST, unix:/path or local:/path. Checked at config
// time so a typo is a config error naming the filter.
//
// Never: resolves a name (the connection does, asynchronously, per message).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice::filter_bridge {

struct MilterAddress {
  enum class Kind { kInet, kUnix };
  Kind kind = Kind::kInet;
  std::string host;  // kInet: name or address, without brackets
  uint16_t port = 0; // kInet
  std::string path;  // kUnix
  std::string ToString() const;
};

absl::StatusOr<MilterAddress> ParseMilterAddress(std::string_view text);

}  // namespace sluice::filter_bridge
