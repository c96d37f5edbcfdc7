// lib/control/admin_auth.h
//
// Who may change a stage over gRPC. With ServerConfig.admin_token_file set, every MUTATING
// call -- Admin KillSession, UpdateLimits, Drain, Resume and Queue Hold, Release, Delete,
// Flush, Transfer, Move -- must carry "authorization: Bearer TOKEN"; missing gives UNAUTHENTICATED, wrong
// gives PERMISSION_DENIED. Read-only calls (status, sessions, limits, health, reflection)
// stay open. The check runs in gRPC's transport-level auth metadata processor, keyed by the
// method path, so it covers every service on the server (Queue too) before any handler
// runs -- on plaintext and on TLS alike. The same credentials carry admin_tls: TLS, and
// mutual TLS when require_client_cert.
//
// Never: logs or returns the token; compares it in time that depends on its content;
// lets a refused call reach a handler.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/support/status.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {

class AdminAuth {
 public:
  // Called for every refused call with its method path and status code.
  using RefusalHook = std::function<void(std::string_view method, grpc::StatusCode code)>;

  // `token` empty: every call is open. `mutating`: full method paths
  // ("/sluice.v1.Admin/Drain"); DefaultMutatingMethods() when empty.
  AdminAuth(std::string token, std::vector<std::string> mutating = {},
            RefusalHook on_refusal = nullptr);

  static const std::vector<std::string>& DefaultMutatingMethods();
  // The token file's content without surrounding white space; an empty token is an error.
  static absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

  bool enabled() const { return !token_.empty(); }
  bool IsMutating(std::string_view method) const;
  // OK, UNAUTHENTICATED (no bearer token) or PERMISSION_DENIED (wrong token).
  // `authorization`: every value of the "authorization" header of the call.
  grpc::Status Check(std::string_view method,
                     const std::vector<std::string_view>& authorization) const;

 private:
  std::string token_;
  std::vector<std::string> mutating_;
  RefusalHook on_refusal_;
};

// The admin server's credentials from ServerConfig.admin_tls (plaintext when cert_file is
// empty), with `auth` enforced on every call when it is enabled.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> AdminServerCredentials(
    const sluice::v1::TlsConfig& tls, std::shared_ptr<const AdminAuth> auth);

}  // namespace sluice::control
