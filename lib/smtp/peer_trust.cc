// lib/smtp/peer_trust.cc -- see peer_trust.h.
#include "lib/smtp/peer_trust.h"

#include "lib/observe/log.h"

namespace sluice::smtp {

std::optional<Reply> RefuseUntrustedRelay(const SessionFacts& facts, bool address_trusted) {
  if (address_trusted || facts.tls_client_verified) return std::nullopt;
  observe::Warn("refused")
      .Kv("session", facts.session_id)
      .Kv("peer", facts.peer_address)
      .Kv("reason", "not_in_mynetworks_nor_verified_certificate")
      .Kv("tls", facts.tls);
  return replies::ClientNotAuthorized();
}

}  // namespace sluice::smtp
