// lib/smtp/tls_context.h
//
// OpenSSL contexts for the SMTP hops, built from a sluice.v1.TlsConfig: the server side of
// STARTTLS (certificate + key, TLS 1.2 or newer, optional client-certificate verification
// against ca_file for trust between stages) and the client side used by relaying stages
// (opportunistic: verification is recorded, not required, unless a CA file is given).
//
// Never: enables SSLv3/TLS 1.0/1.1; reads key material from anywhere but the named files.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "asio/ssl/context.hpp"
#include "sluice/v1/config.pb.h"

namespace sluice::smtp {

// nullptr (OK) when cfg.cert_file is empty: STARTTLS is then not offered.
absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeServerTlsContext(const sluice::v1::TlsConfig& cfg);
// A client context; with ca_file the peer is verified against it (and cert/key are sent as a
// client certificate when set).
absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeClientTlsContext(const sluice::v1::TlsConfig& cfg);

}  // namespace sluice::smtp
