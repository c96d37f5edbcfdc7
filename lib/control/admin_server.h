// lib/control/admin_server.h
//
// The gRPC server every stage runs on --admin_listen: sluice.v1.Admin over the stage's
// StageRuntime, grpc.health.v1.Health (service "" and "sluice.v1.Admin": SERVING only while
// the stage is SERVING -- Kubernetes probes and load balancers read it), server reflection
// (v1alpha, for grpcurl-style tools), and the extra services a stage adds (reinject:
// sluice.v1.Queue). admin_tls gives TLS / mutual TLS, admin_token_file a bearer token for
// mutating calls (admin_auth.h). Every sluice.v1 call is counted in
// sluice_admin_calls_total{method,code}.
//
//   auto admin = AdminServer::Start(runtime, {.listen = cfg.server().admin_listen(),
//                                             .tls = cfg.server().admin_tls(),
//                                             .token_file = cfg.server().admin_token_file()});
//   ...  admin->port()  ...  (*admin)->Shutdown(absl::Seconds(2));
//
// Never: reports SERVING while draining or unavailable; keeps a WatchStatus stream open
// through shutdown (they end with UNAVAILABLE first); outlives the StageRuntime.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "lib/control/admin_service.h"
#include "lib/control/stage_runtime.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {

struct AdminServerOptions {
  std::string listen;         // admin_listen, HOST:PORT; port 0 picks a free one
  sluice::v1::TlsConfig tls;  // admin_tls; plaintext when cert_file is empty
  std::string token_file;     // admin_token_file; empty: no token
  struct ExtraService {
    grpc::Service* service;   // not owned; must outlive the server
    std::string name;         // full name, "sluice.v1.Queue" (metrics rows, health name)
  };
  std::vector<ExtraService> extra_services;
};

class AdminServer {
 public:
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(StageRuntime& runtime,
                                                            AdminServerOptions options);
  ~AdminServer();  // Shutdown(absl::ZeroDuration()) unless done
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  int port() const { return port_; }
  // "HOST:PORT" as bound (the listen host with the real port).
  const std::string& address() const { return address_; }
  AdminService& service() { return *service_; }

  // Health goes NOT_SERVING, WatchStatus streams end, calls in flight get `grace` to
  // finish, then the rest are cancelled. Blocks until every call is done. Idempotent.
  void Shutdown(absl::Duration grace);

 private:
  AdminServer(StageRuntime& runtime) : runtime_(runtime) {}
  void UpdateHealth();

  StageRuntime& runtime_;
  std::unique_ptr<AdminService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> health_names_;
  StageRuntime::ListenerId listener_ = 0;
  int port_ = 0;
  std::string address_;

  std::mutex mu_;
  bool shut_down_ = false;
  int health_serving_ = -1;  // last value set: -1 none, 0, 1
};

// gRPC's spelling of a listen address: ":9101" -> "[::]:9101", "::1" hosts bracketed.
absl::StatusOr<std::string> GrpcListenAddress(const std::string& listen);

}  // namespace sluice::control
