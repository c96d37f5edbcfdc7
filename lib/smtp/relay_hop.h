// lib/smtp/relay_hop.h
//
// Opening the SMTP hop from one sluice stage to the next (frontend -> filter, filter-bridge
// -> next hop): connect, read the greeting, EHLO, and -- when the hop has TLS settings
// (FrontendConfig.filter_tls, FilterBridgeConfig.next_hop_tls) and the server offers it --
// STARTTLS with our client certificate, then EHLO again (RFC 3207 §4.2). A downstream stage
// with trust_verified_client_cert then trusts us by that certificate, not by our address.
//
// TLS policy of a hop (a TlsConfig):
//   - neither cert_file nor ca_file: plaintext, as before;
//   - cert_file (and key_file): opportunistic -- STARTTLS when offered, presenting the
//     certificate; plaintext when the server does not offer it;
//   - ca_file: required -- the server must offer STARTTLS and present a certificate that
//     chains to ca_file (the chain is checked, not the host name: any certificate of the
//     cluster's CA is accepted), else the hop fails.
// A failed handshake always fails the hop (the connection is in no state to go on).
//
// Never: sends a command after a failed handshake; carries on in plaintext when ca_file
// asks for TLS; reads key material anywhere but the configured files.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "asio/ssl/context.hpp"
#include "lib/net/host_port.h"
#include "lib/smtp/client_session.h"
#include "lib/smtp/reply.h"
#include "sluice/v1/config.pb.h"

namespace sluice::smtp {

// The client TLS of one hop, built once from its TlsConfig.
struct RelayTls {
  std::shared_ptr<asio::ssl::context> context;  // null: the hop is plaintext
  bool required = false;                        // ca_file given: no relaying without TLS
};

// Builds the client context (MakeClientTlsContext); INVALID_ARGUMENT naming the bad file.
// Contexts are kept per distinct TlsConfig for the life of the process, so a caller without
// a place of its own to keep one may call this for every connection: the files are read
// once. (A start-up call finds a bad file before the first session does.)
absl::StatusOr<RelayTls> RelayClientTls(const sluice::v1::TlsConfig& cfg);

// How opening the hop went. ok(): connected, greeted and EHLO'd (over TLS when it was used).
struct RelayHopOutcome {
  std::string_view step = "connect";  // connect, ehlo, starttls, tls_ehlo
  absl::Status error;                 // a failed exchange, or TLS required and not had
  std::optional<Reply> unexpected;    // the server's reply where none fits (e.g. 5xx greeting)
  bool ok() const { return error.ok() && !unexpected.has_value(); }
};

// Connect, greeting, EHLO `ehlo`, and STARTTLS + EHLO per `tls`. A 4xx greeting is an
// UNAVAILABLE error (the hop is busy); any other non-220 greeting or non-250 EHLO is
// `unexpected`. On failure the client is closed.
asio::awaitable<RelayHopOutcome> OpenRelayHop(SmtpClient& client, const net::HostPort& target, std::string_view ehlo,
                                              const RelayTls& tls);

}  // namespace sluice::smtp
