// tools/sluicectl/connection.h
//
// How sluicectl reaches one admin endpoint: channel credentials (plaintext; TLS verified
// against --tls_ca; mTLS presenting --tls_cert/--tls_key) and channels from lib/control's
// admin_channel, the same code the stages use to reach each other; per call a deadline and
// the bearer token as `authorization: Bearer TOKEN` metadata.
//
// Never: sends the token anywhere but in that header; prints it; waits for a replica that
// is down longer than the call deadline (calls fail fast, never wait_for_ready).
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/sluicectl/command_line.h"
#include "tools/sluicectl/targets.h"

namespace sluice::ctl {

struct ConnectionOptions {
  std::string token;  // "" sends no authorization header
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
  absl::Duration timeout = absl::Seconds(5);
};

// Reads --token_file and the TLS files. INVALID_ARGUMENT (exit 2) names an unreadable file.
absl::StatusOr<ConnectionOptions> LoadConnectionOptions(const GlobalOptions& global);

std::shared_ptr<grpc::Channel> OpenChannel(const Target& target, const ConnectionOptions& options);

// Deadline = timeout + `extra` from now, plus the token.
void PrepareContext(grpc::ClientContext& context, const ConnectionOptions& options,
                    absl::Duration extra = absl::ZeroDuration());

}  // namespace sluice::ctl
