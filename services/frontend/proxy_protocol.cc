// services/frontend/proxy_protocol.cc -- see proxy_protocol.h.
#include "services/frontend/proxy_protocol.h"

#include <arpa/inet.h>

#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace sluice::frontend {
namespace {

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr size_t kV1MaxBytes = 107;  // PROXY protocol spec §2.1

ProxyParseResult Error(std::string why) {
  ProxyParseResult r;
  r.status = ProxyParse::kError;
  r.error = std::move(why);
  return r;
}

bool ValidAddress(int family, const std::string& text) {
  unsigned char buf[16];
  return inet_pton(family, text.c_str(), buf) == 1;
}

bool ParsePort(absl::string_view s, uint16_t& port) {
  uint32_t v = 0;
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return false;
  if (!absl::SimpleAtoi(s, &v) || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

ProxyParseResult ParseV1(std::string_view buf, ProxyHeader& out) {
  size_t end = buf.find("\r\n");
  if (end == std::string_view::npos) {
    if (buf.size() >= kV1MaxBytes) return Error("PROXY v1 header too long");
    ProxyParseResult r;
    r.status = ProxyParse::kNeedMore;
    return r;
  }
  if (end + 2 > kV1MaxBytes) return Error("PROXY v1 header too long");
  std::vector<absl::string_view> f = absl::StrSplit(absl::string_view(buf.data(), end), ' ');
  out = ProxyHeader{};
  out.version = 1;
  if (f.size() >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN") {
    out.local = true;
  } else {
    if (f.size() != 6 || f[0] != "PROXY") return Error("malformed PROXY v1 header");
    int family;
    if (f[1] == "TCP4") {
      family = AF_INET;
    } else if (f[1] == "TCP6") {
      family = AF_INET6;
    } else {
      return Error("unknown PROXY v1 protocol");
    }
    out.source_address = std::string(f[2]);
    out.dest_address = std::string(f[3]);
    if (!ValidAddress(family, out.source_address) || !ValidAddress(family, out.dest_address)) {
      return Error("bad address in PROXY v1 header");
    }
    if (!ParsePort(f[4], out.source_port) || !ParsePort(f[5], out.dest_port)) {
      return Error("bad port in PROXY v1 header");
    }
  }
  ProxyParseResult r;
  r.status = ProxyParse::kComplete;
  r.consumed = end + 2;
  return r;
}

ProxyParseResult ParseV2(std::string_view buf, ProxyHeader& out) {
  if (buf.size() < 16) return ProxyParseResult{};
  auto b = reinterpret_cast<const unsigned char*>(buf.data());
  if ((b[12] >> 4) != 2) return Error("PROXY v2: bad version");
  int command = b[12] & 0x0f;
  size_t len = (static_cast<size_t>(b[14]) << 8) | b[15];
  if (buf.size() < 16 + len) return ProxyParseResult{};
  out = ProxyHeader{};
  out.version = 2;
  ProxyParseResult r;
  r.status = ProxyParse::kComplete;
  r.consumed = 16 + len;
  if (command == 0) {  // LOCAL: health checks of the balancer itself
    out.local = true;
    return r;
  }
  if (command != 1) return Error("PROXY v2: bad command");
  int family = b[13] >> 4;
  const unsigned char* a = b + 16;
  char text[INET6_ADDRSTRLEN];
  if (family == 1) {  // AF_INET: 4+4+2+2
    if (len < 12) return Error("PROXY v2: short IPv4 block");
    inet_ntop(AF_INET, a, text, sizeof text);
    out.source_address = text;
    inet_ntop(AF_INET, a + 4, text, sizeof text);
    out.dest_address = text;
    out.source_port = static_cast<uint16_t>((a[8] << 8) | a[9]);
    out.dest_port = static_cast<uint16_t>((a[10] << 8) | a[11]);
  } else if (family == 2) {  // AF_INET6: 16+16+2+2
    if (len < 36) return Error("PROXY v2: short IPv6 block");
    inet_ntop(AF_INET6, a, text, sizeof text);
    out.source_address = text;
    inet_ntop(AF_INET6, a + 16, text, sizeof text);
    out.dest_address = text;
    out.source_port = static_cast<uint16_t>((a[32] << 8) | a[33]);
    out.dest_port = static_cast<uint16_t>((a[34] << 8) | a[35]);
  } else {
    out.local = true;  // AF_UNSPEC / AF_UNIX: no usable address; keep the peer's
  }
  return r;
}

}  // namespace

ProxyParseResult ParseProxyHeader(std::string_view buf, ProxyHeader& out) {
  size_t n = std::min(buf.size(), sizeof kV2Signature);
  if (std::memcmp(buf.data(), kV2Signature, n) == 0) {
    if (buf.size() < sizeof kV2Signature) return ProxyParseResult{};
    return ParseV2(buf, out);
  }
  static constexpr std::string_view kV1Prefix = "PROXY ";
  size_t m = std::min(buf.size(), kV1Prefix.size());
  if (buf.substr(0, m) == kV1Prefix.substr(0, m)) {
    if (buf.size() < kV1Prefix.size()) return ProxyParseResult{};
    return ParseV1(buf, out);
  }
  return Error("no PROXY protocol header");
}

}  // namespace sluice::frontend
