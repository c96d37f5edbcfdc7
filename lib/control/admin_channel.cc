// lib/control/admin_channel.cc -- see admin_channel.h.
#include "lib/control/admin_channel.h"

#include <fstream>
#include <sstream>

#include "grpcpp/create_channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace sluice::control {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(std::string(what) + ": cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> AdminChannelCredentials(
    const sluice::v1::TlsConfig& tls) {
  if (tls.cert_file().empty() && tls.ca_file().empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!tls.ca_file().empty()) {
    auto ca = ReadPem(tls.ca_file(), "tls.ca_file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!tls.cert_file().empty()) {
    if (tls.key_file().empty()) return absl::InvalidArgumentError("tls: cert_file without key_file");
    auto cert = ReadPem(tls.cert_file(), "tls.cert_file");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(tls.key_file(), "tls.key_file");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> MakeAdminChannel(const std::string& target,
                                                const AdminClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // gRPC's default reconnect backoff grows to 120 s; a peer back from a restart must be
  // seen within seconds.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  auto creds = options.credentials ? options.credentials : grpc::InsecureChannelCredentials();
  return grpc::CreateCustomChannel(target, creds, args);
}

}  // namespace sluice::control
