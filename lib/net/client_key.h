// lib/net/client_key.h
//
// The key per-client limits count a client under (Postfix 3.8 anvil with
// smtpd_client_ipv6_prefix_length): an IPv4 client (or an IPv4-mapped IPv6 one) by its
// address, an IPv6 client by its network of `ipv6_prefix_length` bits ("2001:db8::/84"), so
// a sender rotating through the addresses of that network is still one client.
//
// Never: groups IPv4 clients; keys on anything but the connection's real address.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::net {

// `address`: textual IPv4 or IPv6 (an IPv6 zone is ignored). Not an address: returned as is.
// A prefix of 0 or 128 and above keys on the whole IPv6 address.
std::string ClientKey(std::string_view address, uint32_t ipv6_prefix_length);

}  // namespace sluice::net
