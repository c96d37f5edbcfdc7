// tests/lib/control/admin_auth_test.cc
//
// Protection of the admin server: the bearer token is required for mutating calls only
// (missing -> UNAUTHENTICATED, wrong -> PERMISSION_DENIED, and the handler never ran), read
// calls and health stay open; TLS with a CA-signed certificate and mutual TLS, with test
// certificates made by the openssl CLI in a temp dir.
//
// Never: asserts on timing; leaves the temp dir behind.
#include "lib/control/admin_auth.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "lib/control/admin_channel.h"
#include "tests/lib/control/admin_test_support.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using testing::Context;
using testing::MetricsText;
using testing::TestStage;

class TempDir {
 public:
  TempDir() {
    char path[] = "/tmp/sluice-admin-XXXXXX";
    if (::mkdtemp(path) != nullptr) path_ = path;
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf " + path_).c_str());
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string file = path_ + "/" + name;
    std::ofstream(file) << content;
    return file;
  }

 private:
  std::string path_;
};

std::unique_ptr<grpc::ClientContext> WithToken(const std::string& authorization) {
  auto ctx = Context();
  if (!authorization.empty()) ctx->AddMetadata("authorization", authorization);
  return ctx;
}

TEST(AdminAuthCheck, OnlyMutatingMethodsNeedTheToken) {
  AdminAuth auth("s3cret");
  EXPECT_TRUE(auth.Check("/sluice.v1.Admin/GetStatus", {}).ok());
  EXPECT_TRUE(auth.Check("/sluice.v1.Queue/List", {}).ok());
  EXPECT_TRUE(auth.Check("/grpc.health.v1.Health/Check", {}).ok());
  EXPECT_EQ(auth.Check("/sluice.v1.Admin/Drain", {}).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(auth.Check("/sluice.v1.Queue/Delete", {"Basic czNjcmV0"}).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(auth.Check("/sluice.v1.Queue/Flush", {"Bearer nope"}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(auth.Check("/sluice.v1.Admin/Resume", {"Bearer s3cret2"}).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(auth.Check("/sluice.v1.Admin/Resume", {"Bearer s3cret"}).ok());
  EXPECT_TRUE(auth.Check("/sluice.v1.Admin/Resume", {"bearer  s3cret "}).ok());
  EXPECT_TRUE(AdminAuth("").Check("/sluice.v1.Admin/Drain", {}).ok());
}

TEST(AdminAuthCheck, TokenFileIsTrimmedAndMustNotBeEmpty) {
  TempDir dir;
  auto token = AdminAuth::ReadTokenFile(dir.Write("token", "  s3cret\n\n"));
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "s3cret");
  EXPECT_FALSE(AdminAuth::ReadTokenFile(dir.Write("empty", " \n")).ok());
  EXPECT_FALSE(AdminAuth::ReadTokenFile(dir.path() + "/missing").ok());
}

TEST(AdminServerToken, MutatingCallsNeedTheTokenReadCallsStayOpen) {
  TempDir dir;
  TestStage stage;
  AdminServerOptions options;
  options.token_file = dir.Write("token", "s3cret\n");
  stage.Start(options);
  auto stub = stage.Stub();
  sluice::v1::StageStatus status;

  grpc::Status missing = stub->Drain(WithToken("").get(), {}, &status);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED) << missing.error_message();
  grpc::Status wrong = stub->Drain(WithToken("Bearer guess").get(), {}, &status);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::PERMISSION_DENIED) << wrong.error_message();
  EXPECT_FALSE(stage.runtime.draining());  // the handler never ran

  sluice::v1::UpdateLimitsRequest update;
  update.mutable_limits()->set_max_sessions(3);
  update.mutable_update_mask()->add_paths("max_sessions");
  sluice::v1::Limits limits;
  EXPECT_EQ(stub->UpdateLimits(WithToken("").get(), update, &limits).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  sluice::v1::KillSessionRequest kill;
  kill.set_session_id("X");
  sluice::v1::KillSessionResponse killed;
  EXPECT_EQ(stub->KillSession(WithToken("").get(), kill, &killed).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stub->Resume(WithToken("").get(), {}, &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stage.limits.Get()->max_sessions(), 100u);

  // Read calls and health need nothing.
  EXPECT_TRUE(stub->GetStatus(WithToken("").get(), {}, &status).ok());
  EXPECT_TRUE(stub->GetLimits(WithToken("").get(), {}, &limits).ok());
  sluice::v1::ListSessionsResponse list;
  EXPECT_TRUE(stub->ListSessions(WithToken("").get(), {}, &list).ok());
  auto health = grpc::health::v1::Health::NewStub(stage.Channel());
  grpc::health::v1::HealthCheckResponse hresp;
  EXPECT_TRUE(health->Check(WithToken("").get(), {}, &hresp).ok());

  // The right token works.
  ASSERT_TRUE(stub->Drain(WithToken("Bearer s3cret").get(), {}, &status).ok());
  EXPECT_TRUE(stage.runtime.draining());
  ASSERT_TRUE(stub->UpdateLimits(WithToken("Bearer s3cret").get(), update, &limits).ok());
  EXPECT_EQ(limits.max_sessions(), 3u);

  std::string text = MetricsText(stage.runtime.registry());
  EXPECT_THAT(text, HasSubstr("sluice_admin_calls_total{code=\"UNAUTHENTICATED\",method=\"Drain\"} 1"));
  EXPECT_THAT(text, HasSubstr("sluice_admin_calls_total{code=\"PERMISSION_DENIED\",method=\"Drain\"} 1"));
}

TEST(AdminServerToken, AnEmptyTokenFileStopsTheStart) {
  TempDir dir;
  TestStage stage;
  AdminServerOptions options;
  options.listen = "127.0.0.1:0";
  options.token_file = dir.Write("token", "\n");
  EXPECT_FALSE(AdminServer::Start(stage.runtime, options).ok());
}

// A CA, a server certificate for localhost/127.0.0.1 and a client certificate, made once.
class AdminServerTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string d = dir_->path();
    dir_->Write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    dir_->Write("client.ext", "extendedKeyUsage=clientAuth\n");
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script =
        "cd " + d + " && exec >openssl.log 2>&1"
        " && openssl req -x509" + ec + " -keyout ca.key -out ca.crt -days 2 -subj '/CN=sluice test CA'"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        " && openssl req" + ec + " -keyout server.key -out server.csr -subj /CN=localhost"
        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
        "    -out server.crt -days 2 -extfile server.ext"
        " && openssl req" + ec + " -keyout client.key -out client.csr -subj /CN=sluicectl"
        " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
        "    -out client.crt -days 2 -extfile client.ext";
    made_ = std::system(script.c_str()) == 0;
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    ASSERT_TRUE(made_) << "openssl failed; see " << dir_->path() << "/openssl.log";
  }
  static std::string File(const std::string& name) { return dir_->path() + "/" + name; }

  static sluice::v1::TlsConfig ServerTls(bool mutual) {
    sluice::v1::TlsConfig tls;
    tls.set_cert_file(File("server.crt"));
    tls.set_key_file(File("server.key"));
    if (mutual) {
      tls.set_ca_file(File("ca.crt"));
      tls.set_require_client_cert(true);
    }
    return tls;
  }
  // A client trusting the test CA, presenting the client certificate when `with_cert`.
  static std::unique_ptr<sluice::v1::Admin::Stub> TlsStub(const TestStage& stage, bool with_cert) {
    sluice::v1::TlsConfig tls;
    tls.set_ca_file(File("ca.crt"));
    if (with_cert) {
      tls.set_cert_file(File("client.crt"));
      tls.set_key_file(File("client.key"));
    }
    auto creds = AdminChannelCredentials(tls);
    EXPECT_TRUE(creds.ok()) << creds.status();
    AdminClientOptions options;
    options.credentials = *creds;
    return sluice::v1::Admin::NewStub(MakeAdminChannel(stage.address(), options));
  }

  static TempDir* dir_;
  static bool made_;
};
TempDir* AdminServerTls::dir_ = nullptr;
bool AdminServerTls::made_ = false;

TEST_F(AdminServerTls, ServesVerifiedTlsAndRefusesPlaintext) {
  TestStage stage;
  AdminServerOptions options;
  options.tls = ServerTls(/*mutual=*/false);
  stage.Start(options);
  sluice::v1::StageStatus status;
  grpc::Status s = TlsStub(stage, false)->GetStatus(Context().get(), {}, &status);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(status.stage(), "frontend");
  EXPECT_FALSE(stage.Stub()->GetStatus(Context(absl::Seconds(5)).get(), {}, &status).ok());
}

TEST_F(AdminServerTls, MutualTlsRequiresAClientCertificate) {
  TestStage stage;
  AdminServerOptions options;
  options.tls = ServerTls(/*mutual=*/true);
  stage.Start(options);
  sluice::v1::StageStatus status;
  EXPECT_FALSE(TlsStub(stage, false)->GetStatus(Context(absl::Seconds(5)).get(), {}, &status).ok());
  grpc::Status s = TlsStub(stage, true)->GetStatus(Context().get(), {}, &status);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(AdminServerTls, TokenAndTlsTogether) {
  TestStage stage;
  AdminServerOptions options;
  options.tls = ServerTls(/*mutual=*/true);
  options.token_file = dir_->Write("token", "tls-token");
  stage.Start(options);
  auto stub = TlsStub(stage, true);
  sluice::v1::StageStatus status;
  EXPECT_EQ(stub->Drain(WithToken("").get(), {}, &status).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stub->Drain(WithToken("Bearer tls-token").get(), {}, &status).ok());
  EXPECT_TRUE(stub->GetStatus(WithToken("").get(), {}, &status).ok());
}

TEST_F(AdminServerTls, BadTlsSettingsStopTheStart) {
  TestStage stage;
  AdminServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls = ServerTls(false);
  options.tls.set_require_client_cert(true);  // without ca_file
  EXPECT_FALSE(AdminServer::Start(stage.runtime, options).ok());
  options.tls = ServerTls(false);
  options.tls.set_cert_file(File("missing.crt"));
  EXPECT_FALSE(AdminServer::Start(stage.runtime, options).ok());
  options.tls = ServerTls(false);
  options.tls.set_min_version("TLSv1.3");
  EXPECT_FALSE(AdminServer::Start(stage.runtime, options).ok());
}

}  // namespace
}  // namespace sluice::control
