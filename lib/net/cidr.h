// lib/net/cidr.h
//
// CIDR prefix sets: mynetworks, xforward_hosts, limit_exemptions, proxy_protocol_trusted.
// IPv4 and IPv6; an IPv4-mapped IPv6 address (::ffff:192.0.2.1) matches IPv4 prefixes.
//
// Never: matches on a host name (addresses only; names are spoofable); accepts a prefix
// with host bits set silently (they are masked, as Postfix does, and the set stays exact).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice::net {

struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // network address (v4 in the first 4 bytes)
  int prefix_len = 0;
  std::string ToString() const;
};

absl::StatusOr<Cidr> ParseCidr(std::string_view text);

class CidrSet {
 public:
  CidrSet() = default;
  // Parses every element; the error names the bad one.
  static absl::StatusOr<CidrSet> Parse(const std::vector<std::string>& texts);
  // Does the address (textual, v4 or v6, optional IPv6 zone ignored) fall in any prefix?
  bool Contains(std::string_view address) const;
  bool empty() const { return cidrs_.empty(); }
  const std::vector<Cidr>& cidrs() const { return cidrs_; }

 private:
  std::vector<Cidr> cidrs_;
};

}  // namespace sluice::net
