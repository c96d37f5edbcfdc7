// services/frontend/proxy_protocol.h
//
// The HAProxy PROXY protocol header (v1 text and v2 binary) that a load balancer sends
// before the SMTP dialogue, so the frontend learns the real client address. Pure parser:
// the caller reads bytes and accepts a header only from proxy_protocol_trusted peers.
//
// Never: reads past a v1 header's 107 bytes or a v2 header's declared length; accepts a
// malformed header (the connection is then dropped, never served with the proxy's address).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::frontend {

struct ProxyHeader {
  bool local = false;          // v2 LOCAL / v1 UNKNOWN: keep the TCP peer's address
  std::string source_address;  // the real client
  uint16_t source_port = 0;
  std::string dest_address;
  uint16_t dest_port = 0;
  int version = 0;             // 1 or 2
};

enum class ProxyParse { kComplete, kNeedMore, kError };

struct ProxyParseResult {
  ProxyParse status = ProxyParse::kNeedMore;
  size_t consumed = 0;
  std::string error;
};

ProxyParseResult ParseProxyHeader(std::string_view buf, ProxyHeader& out);

}  // namespace sluice::frontend
