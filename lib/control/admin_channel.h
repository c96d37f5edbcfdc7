// lib/control/admin_channel.h
//
// The client side of the admin API's transport, shared by StatusWatcher, SessionFetcher
// and sluicectl: channel credentials from a TlsConfig (plaintext, TLS verified against
// ca_file, or mutual TLS presenting cert_file/key_file -- a stage uses its own admin_tls,
// signed by the cluster's CA, to talk to its peers) and one channel per address with
// keepalive and a short reconnect backoff, so a restarted peer is seen again within seconds.
//
// Never: sends a bearer token (callers add "authorization" metadata to mutating calls
// only); turns off certificate verification.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {

struct AdminClientOptions {
  // Null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The name the server certificate must carry when it differs from the dialled host
  // (dialling a pod IP found behind a DNS name: the name).
  std::string tls_server_name;
};

// Plaintext when tls.cert_file and tls.ca_file are both empty; otherwise TLS verifying the
// server against ca_file (the system roots when empty), presenting cert_file/key_file
// when set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> AdminChannelCredentials(
    const sluice::v1::TlsConfig& tls);

// A channel to `target` ("HOST:PORT", "ipv4:10.0.0.5:9102", "[::1]:9101").
std::shared_ptr<grpc::Channel> MakeAdminChannel(const std::string& target,
                                                const AdminClientOptions& options);

}  // namespace sluice::control
