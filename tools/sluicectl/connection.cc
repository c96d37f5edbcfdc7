// tools/sluicectl/connection.cc -- see connection.h.
#include "tools/sluicectl/connection.h"

#include <fstream>
#include <sstream>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace sluice::ctl {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

absl::StatusOr<ConnectionOptions> LoadConnectionOptions(const GlobalOptions& global) {
  ConnectionOptions options;
  options.timeout = global.timeout;
  options.token = global.token;
  if (!global.token_file.empty()) {
    auto content = ReadFile("token_file", global.token_file);
    if (!content.ok()) return content.status();
    options.token = std::string(absl::StripAsciiWhitespace(*content));
    if (options.token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--token_file: ", global.token_file, " is empty"));
    }
  }
  for (char c : options.token) {
    // A header value cannot carry these; refuse rather than send a mangled token.
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError("the token contains control characters");
    }
  }
  options.tls = !global.tls_ca.empty() || !global.tls_cert.empty();
  if (!global.tls_ca.empty()) {
    auto pem = ReadFile("tls_ca", global.tls_ca);
    if (!pem.ok()) return pem.status();
    options.tls_ca_pem = *pem;
  }
  if (!global.tls_cert.empty()) {
    auto cert = ReadFile("tls_cert", global.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile("tls_key", global.tls_key);
    if (!key.ok()) return key.status();
    options.tls_cert_pem = *cert;
    options.tls_key_pem = *key;
  }
  return options;
}

std::shared_ptr<grpc::Channel> OpenChannel(const Target& target, const ConnectionOptions& options) {
  grpc::ChannelArguments args;
  // One channel per replica, never shared: each target must reach exactly its own address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;
    ssl.pem_cert_chain = options.tls_cert_pem;
    ssl.pem_private_key = options.tls_key_pem;
    credentials = grpc::SslCredentials(ssl);
    // We dial the resolved address; the certificate names the host the operator typed.
    if (!target.tls_name.empty()) args.SetSslTargetNameOverride(target.tls_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(target.grpc_target, credentials, args);
}

void PrepareContext(grpc::ClientContext& context, const ConnectionOptions& options, absl::Duration extra) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout + extra));
  if (!options.token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
}

}  // namespace sluice::ctl
