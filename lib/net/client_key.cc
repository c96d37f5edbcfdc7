// lib/net/client_key.cc -- see client_key.h.
#include "lib/net/client_key.h"

#include "absl/strings/str_cat.h"
#include "asio/ip/address.hpp"

namespace sluice::net {

std::string ClientKey(std::string_view address, uint32_t ipv6_prefix_length) {
  std::string text(address.substr(0, address.find('%')));
  std::error_code ec;
  asio::ip::address ip = asio::ip::make_address(text, ec);
  if (ec) return std::string(address);
  if (ip.is_v4()) return ip.to_v4().to_string();
  asio::ip::address_v6 v6 = ip.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  if (ipv6_prefix_length == 0 || ipv6_prefix_length >= 128) return v6.to_string();
  asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
  for (uint32_t bit = ipv6_prefix_length; bit < 128; ++bit) bytes[bit / 8] &= ~(0x80u >> (bit % 8));
  return absl::StrCat(asio::ip::address_v6(bytes).to_string(), "/", ipv6_prefix_length);
}

}  // namespace sluice::net
