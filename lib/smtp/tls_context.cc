// lib/smtp/tls_context.cc -- see tls_context.h.
#include "lib/smtp/tls_context.h"

#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"

namespace sluice::smtp {
namespace {

absl::Status SetMinVersion(asio::ssl::context& ctx, const std::string& v) {
  int version = TLS1_2_VERSION;
  if (v == "TLSv1.3") {
    version = TLS1_3_VERSION;
  } else if (!v.empty() && v != "TLSv1.2") {
    return absl::InvalidArgumentError(absl::StrCat("tls min_version must be TLSv1.2 or TLSv1.3, not ", v));
  }
  SSL_CTX_set_min_proto_version(ctx.native_handle(), version);
  return absl::OkStatus();
}

absl::Status LoadCertAndKey(asio::ssl::context& ctx, const sluice::v1::TlsConfig& cfg) {
  std::error_code ec;
  ctx.use_certificate_chain_file(cfg.cert_file(), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("tls cert_file ", cfg.cert_file(), ": ", ec.message()));
  ctx.use_private_key_file(cfg.key_file().empty() ? cfg.cert_file() : cfg.key_file(), asio::ssl::context::pem, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("tls key_file ", cfg.key_file(), ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeServerTlsContext(const sluice::v1::TlsConfig& cfg) {
  if (cfg.cert_file().empty()) return std::unique_ptr<asio::ssl::context>();
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  if (auto st = SetMinVersion(*ctx, cfg.min_version()); !st.ok()) return st;
  if (auto st = LoadCertAndKey(*ctx, cfg); !st.ok()) return st;
  if (!cfg.ca_file().empty()) {
    std::error_code ec;
    ctx->load_verify_file(cfg.ca_file(), ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("tls ca_file ", cfg.ca_file(), ": ", ec.message()));
    // Ask for a client certificate; without require_client_cert a client without one is
    // still served (it just is not trusted by certificate).
    int mode = SSL_VERIFY_PEER;
    if (cfg.require_client_cert()) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    // Verification failures are recorded (peer_certificate_verified() is false), not fatal,
    // unless a certificate is required.
    SSL_verify_cb accept_any = [](int, X509_STORE_CTX*) { return 1; };
    SSL_CTX_set_verify(ctx->native_handle(), mode, cfg.require_client_cert() ? nullptr : accept_any);
    SSL_CTX_set_session_id_context(ctx->native_handle(), reinterpret_cast<const unsigned char*>("sluice"), 6);
  }
  return ctx;
}

absl::StatusOr<std::unique_ptr<asio::ssl::context>> MakeClientTlsContext(const sluice::v1::TlsConfig& cfg) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3);
  if (auto st = SetMinVersion(*ctx, cfg.min_version()); !st.ok()) return st;
  if (!cfg.cert_file().empty()) {
    if (auto st = LoadCertAndKey(*ctx, cfg); !st.ok()) return st;
  }
  if (!cfg.ca_file().empty()) {
    std::error_code ec;
    ctx->load_verify_file(cfg.ca_file(), ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("tls ca_file ", cfg.ca_file(), ": ", ec.message()));
    ctx->set_verify_mode(asio::ssl::verify_peer);
  } else {
    ctx->set_verify_mode(asio::ssl::verify_none);  // opportunistic TLS (RFC 7435)
  }
  return ctx;
}

}  // namespace sluice::smtp
