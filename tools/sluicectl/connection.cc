// tools/sluicectl/connection.cc -- see connection.h.
#include "tools/sluicectl/connection.h"

#include "absl/strings/str_cat.h"
#include "lib/control/admin_auth.h"
#include "lib/control/admin_channel.h"

namespace sluice::ctl {

absl::StatusOr<ConnectionOptions> LoadConnectionOptions(const GlobalOptions& global) {
  ConnectionOptions options;
  options.timeout = global.timeout;
  options.token = global.token;
  if (!global.token_file.empty()) {
    // The stages read their admin_token_file with the same function: same trimming, same file.
    auto token = sluice::control::AdminAuth::ReadTokenFile(global.token_file);
    if (!token.ok()) return absl::InvalidArgumentError(absl::StrCat("--token_file: ", token.status().message()));
    options.token = *token;
  }
  for (char c : options.token) {
    // A header value cannot carry these; refuse rather than send a mangled token.
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError("the token contains control characters");
    }
  }
  if (!global.tls_ca.empty() || !global.tls_cert.empty()) {
    sluice::v1::TlsConfig tls;
    tls.set_ca_file(global.tls_ca);
    tls.set_cert_file(global.tls_cert);
    tls.set_key_file(global.tls_key);
    auto credentials = sluice::control::AdminChannelCredentials(tls);
    if (!credentials.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--tls_*: ", credentials.status().message()));
    }
    options.credentials = *credentials;
  }
  return options;
}

std::shared_ptr<grpc::Channel> OpenChannel(const Target& target, const ConnectionOptions& options) {
  sluice::control::AdminClientOptions client;
  client.credentials = options.credentials;
  // We dial the resolved address; the certificate names the host the operator typed.
  if (options.credentials != nullptr) client.tls_server_name = target.tls_name;
  return sluice::control::MakeAdminChannel(target.grpc_target, client);
}

void PrepareContext(grpc::ClientContext& context, const ConnectionOptions& options, absl::Duration extra) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout + extra));
  if (!options.token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
}

}  // namespace sluice::ctl
