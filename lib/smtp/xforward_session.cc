// lib/smtp/xforward_session.cc -- see xforward_session.h.
#include "lib/smtp/xforward_session.h"

#include "absl/strings/numbers.h"

namespace sluice::smtp {

bool XforwardKnown(const std::optional<std::string>& v) {
  return v.has_value() && !v->empty() && *v != kXforwardUnavailable && *v != kXforwardTempUnavailable;
}

void MergeXforward(XforwardAttrs& into, const XforwardAttrs& from) {
  if (from.name) into.name = from.name;
  if (from.addr) into.addr = from.addr;
  if (from.port) into.port = from.port;
  if (from.proto) into.proto = from.proto;
  if (from.helo) into.helo = from.helo;
  if (from.ident) into.ident = from.ident;
  if (from.source) into.source = from.source;
}

void ApplyXforward(const XforwardAttrs& a, sluice::v1::SessionMetadata& m) {
  if (XforwardKnown(a.ident)) m.set_session_id(*a.ident);
  if (XforwardKnown(a.addr)) {
    // Another client than the one recorded (the peer): the name found for the peer is not
    // this client's. Postfix's word for a name it does not know is "unknown".
    if (*a.addr != m.client_address()) m.set_client_name("unknown");
    m.set_client_address(*a.addr);
  }
  uint32_t port = 0;
  if (XforwardKnown(a.port) && absl::SimpleAtoi(*a.port, &port) && port <= 65535) m.set_client_port(port);
  if (XforwardKnown(a.name)) m.set_client_name(*a.name);
  if (XforwardKnown(a.helo)) m.set_helo(*a.helo);
  if (XforwardKnown(a.source)) m.set_source(*a.source);
  if (XforwardKnown(a.proto)) m.set_protocol(*a.proto);
}

}  // namespace sluice::smtp
