// lib/net/cidr.cc -- see cidr.h.
#include "lib/net/cidr.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sluice::net {
namespace {

// Parses a bare address into 16 bytes; v4 addresses fill the first 4. IPv4-mapped IPv6
// addresses are returned as v4.
bool ParseAddress(std::string_view text, bool& v6, std::array<uint8_t, 16>& out) {
  std::string s(text);
  if (auto pct = s.find('%'); pct != std::string::npos) s.resize(pct);  // zone id
  if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  out.fill(0);
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    v6 = false;
    std::memcpy(out.data(), &a4, 4);
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a6.s6_addr, kMapped, 12) == 0) {
      v6 = false;
      std::memcpy(out.data(), a6.s6_addr + 12, 4);
      return true;
    }
    v6 = true;
    std::memcpy(out.data(), a6.s6_addr, 16);
    return true;
  }
  return false;
}

void MaskTo(std::array<uint8_t, 16>& bytes, int prefix_len) {
  for (int i = 0; i < 16; ++i) {
    int bits = prefix_len - i * 8;
    if (bits >= 8) continue;
    bytes[i] = bits <= 0 ? 0 : static_cast<uint8_t>(bytes[i] & (0xff << (8 - bits)));
  }
}

}  // namespace

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return absl::StrCat(buf, "/", prefix_len);
}

absl::StatusOr<Cidr> ParseCidr(std::string_view text) {
  Cidr c;
  std::string_view addr = text;
  int len = -1;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view l = text.substr(slash + 1);
    if (!absl::SimpleAtoi(absl::string_view(l.data(), l.size()), &len) || len < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad CIDR prefix length: ", std::string(text)));
    }
  }
  if (!ParseAddress(addr, c.v6, c.bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("bad CIDR address: ", std::string(text)));
  }
  int max = c.v6 ? 128 : 32;
  if (len > max) {
    return absl::InvalidArgumentError(absl::StrCat("CIDR prefix too long: ", std::string(text)));
  }
  c.prefix_len = len < 0 ? max : len;
  MaskTo(c.bytes, c.prefix_len);
  return c;
}

absl::StatusOr<CidrSet> CidrSet::Parse(const std::vector<std::string>& texts) {
  CidrSet set;
  for (const auto& t : texts) {
    if (t.empty()) continue;
    auto c = ParseCidr(t);
    if (!c.ok()) return c.status();
    set.cidrs_.push_back(*c);
  }
  return set;
}

bool CidrSet::Contains(std::string_view address) const {
  bool v6 = false;
  std::array<uint8_t, 16> bytes;
  if (!ParseAddress(address, v6, bytes)) return false;
  for (const auto& c : cidrs_) {
    if (c.v6 != v6) continue;
    auto masked = bytes;
    MaskTo(masked, c.prefix_len);
    if (masked == c.bytes) return true;
  }
  return false;
}

}  // namespace sluice::net
