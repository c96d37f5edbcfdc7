// lib/control/admin_auth.cc -- see admin_auth.h.
#include "lib/control/admin_auth.h"

#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <utility>

#include "lib/observe/log.h"

namespace sluice::control {
namespace {

bool EqualsConstantTime(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(std::string(what) + ": cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string_view SliceView(const grpc_slice& s) {
  return std::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(s)),
                          GRPC_SLICE_LENGTH(s));
}

// gRPC core's auth metadata processor: runs on the transport for every call, sees the
// method path (":path") and the headers, and fails the call before it reaches a handler.
void ProcessAuthMetadata(void* state, grpc_auth_context* /*context*/, const grpc_metadata* md,
                         size_t num_md, grpc_process_auth_metadata_done_cb done,
                         void* user_data) {
  const AdminAuth& auth = **static_cast<std::shared_ptr<const AdminAuth>*>(state);
  std::string_view path;
  std::vector<std::string_view> authorization;
  for (size_t i = 0; i < num_md; ++i) {
    std::string_view key = SliceView(md[i].key);
    if (key == ":path") path = SliceView(md[i].value);
    if (key == "authorization") authorization.push_back(SliceView(md[i].value));
  }
  grpc::Status status = auth.Check(path, authorization);
  done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(status.error_code()),
       status.ok() ? nullptr : status.error_message().c_str());
}

void DestroyAuthState(void* state) {
  delete static_cast<std::shared_ptr<const AdminAuth>*>(state);
}

// grpc::ServerCredentials over credentials made with gRPC core's API: the C++ API of gRPC
// 1.51 cannot put an auth metadata processor on plaintext (InsecureServerCredentials
// asserts), and a bearer token on a cluster-internal plaintext port is a supported setup.
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  // `make` runs after the base class initialised gRPC.
  CoreServerCredentials(const std::function<grpc_server_credentials*()>& make,
                        std::shared_ptr<const AdminAuth> auth)
      : creds_(make()) {
    if (creds_ != nullptr && auth != nullptr && auth->enabled()) {
      grpc_server_credentials_set_auth_metadata_processor(
          creds_, grpc_auth_metadata_processor{
                      ProcessAuthMetadata, DestroyAuthState,
                      new std::shared_ptr<const AdminAuth>(std::move(auth))});
    }
  }
  ~CoreServerCredentials() override {
    if (creds_ != nullptr) grpc_server_credentials_release(creds_);
  }
  bool valid() const { return creds_ != nullptr; }

  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    observe::Error("admin_credentials_misuse").Kv("detail", "SetAuthMetadataProcessor ignored");
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }
  grpc_server_credentials* creds_;
};

}  // namespace

AdminAuth::AdminAuth(std::string token, std::vector<std::string> mutating,
                     RefusalHook on_refusal)
    : token_(std::move(token)),
      mutating_(mutating.empty() ? DefaultMutatingMethods() : std::move(mutating)),
      on_refusal_(std::move(on_refusal)) {}

const std::vector<std::string>& AdminAuth::DefaultMutatingMethods() {
  static const std::vector<std::string> kMethods = {
      "/sluice.v1.Admin/KillSession", "/sluice.v1.Admin/UpdateLimits",
      "/sluice.v1.Admin/Drain",       "/sluice.v1.Admin/Resume",
      "/sluice.v1.Queue/Hold",        "/sluice.v1.Queue/Release",
      "/sluice.v1.Queue/Delete",      "/sluice.v1.Queue/Flush",
      "/sluice.v1.Queue/Transfer",    "/sluice.v1.Queue/Move"};
  return kMethods;
}

absl::StatusOr<std::string> AdminAuth::ReadTokenFile(const std::string& path) {
  auto content = ReadFile(path, "admin_token_file");
  if (!content.ok()) return content.status();
  std::string token(Trim(*content));
  if (token.empty()) {
    return absl::InvalidArgumentError("admin_token_file: " + path + " holds no token");
  }
  return token;
}

bool AdminAuth::IsMutating(std::string_view method) const {
  for (const std::string& m : mutating_) {
    if (m == method) return true;
  }
  return false;
}

grpc::Status AdminAuth::Check(std::string_view method,
                              const std::vector<std::string_view>& authorization) const {
  if (!enabled() || !IsMutating(method)) return grpc::Status::OK;
  bool presented = false;
  for (std::string_view value : authorization) {
    value = Trim(value);
    if (value.size() < 7) continue;
    std::string scheme(value.substr(0, 7));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "bearer ") continue;
    presented = true;
    if (EqualsConstantTime(Trim(value.substr(7)), token_)) return grpc::Status::OK;
  }
  grpc::Status refused =
      presented ? grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "wrong admin token")
                : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                               "this call changes the stage: it needs authorization: Bearer TOKEN");
  observe::Warn("admin_call_refused")
      .Kv("method", method)
      .Kv("reason", presented ? "wrong_token" : "no_token");
  if (on_refusal_) on_refusal_(method, refused.error_code());
  return refused;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> AdminServerCredentials(
    const sluice::v1::TlsConfig& tls, std::shared_ptr<const AdminAuth> auth) {
  bool with_auth = auth != nullptr && auth->enabled();
  if (tls.cert_file().empty()) {
    if (tls.require_client_cert() || !tls.key_file().empty()) {
      return absl::InvalidArgumentError("admin_tls: key_file/require_client_cert need cert_file");
    }
    if (!with_auth) return grpc::InsecureServerCredentials();
    return std::make_shared<CoreServerCredentials>(
        [] { return grpc_insecure_server_credentials_create(); }, std::move(auth));
  }
  if (!tls.min_version().empty() && tls.min_version() != "TLSv1.2") {
    // gRPC 1.51 has no minimum-version knob (it negotiates TLS 1.2 or 1.3).
    return absl::InvalidArgumentError("admin_tls.min_version: only TLSv1.2 is supported by the "
                                      "gRPC admin server, got " + tls.min_version());
  }
  if (tls.key_file().empty()) return absl::InvalidArgumentError("admin_tls: key_file is empty");
  if (tls.require_client_cert() && tls.ca_file().empty()) {
    return absl::InvalidArgumentError("admin_tls.require_client_cert needs ca_file");
  }
  auto cert = ReadFile(tls.cert_file(), "admin_tls.cert_file");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(tls.key_file(), "admin_tls.key_file");
  if (!key.ok()) return key.status();
  std::string ca;
  if (!tls.ca_file().empty()) {
    auto read = ReadFile(tls.ca_file(), "admin_tls.ca_file");
    if (!read.ok()) return read.status();
    ca = *std::move(read);
  }
  grpc_ssl_client_certificate_request_type request =
      tls.require_client_cert() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  auto creds = std::make_shared<CoreServerCredentials>(
      [&] {
        grpc_ssl_pem_key_cert_pair pair{key->c_str(), cert->c_str()};
        return grpc_ssl_server_credentials_create_ex(ca.empty() ? nullptr : ca.c_str(), &pair, 1,
                                                     request, nullptr);
      },
      std::move(auth));
  if (!creds->valid()) return absl::InvalidArgumentError("admin_tls: gRPC refused the certificate");
  return creds;
}

}  // namespace sluice::control
