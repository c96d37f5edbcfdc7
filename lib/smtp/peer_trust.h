// lib/smtp/peer_trust.h
//
// Who may relay through a downstream stage (filter-bridge, reinject): a peer in the stage's
// mynetworks, or -- with trust_verified_client_cert -- one whose STARTTLS client certificate
// verified against the stage's CA (smtp_tls.ca_file). Such a stage lets other addresses
// connect (they can only show a certificate after STARTTLS); this is the one place that
// refuses their MAIL, so both stages answer and log alike.
//
// Never: trusts a certificate that did not verify; refuses without a log line.
#pragma once

#include <optional>

#include "lib/smtp/reply.h"
#include "lib/smtp/server_handler.h"

namespace sluice::smtp {

// Nothing when the peer may relay; else logs the refusal (event=refused
// reason=not_in_mynetworks_nor_verified_certificate) and returns 554 5.7.1.
std::optional<Reply> RefuseUntrustedRelay(const SessionFacts& facts, bool address_trusted);

}  // namespace sluice::smtp
