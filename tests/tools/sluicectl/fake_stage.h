// tests/tools/sluicectl/fake_stage.h
//
// A small but real gRPC server for sluicectl's end-to-end tests: sluice.v1.Admin and
// sluice.v1.Queue on 127.0.0.1:<ephemeral>, holding canned sessions, limits and queue
// records, and recording what it was asked so tests can check the requests sluicectl built.
// Its credentials are the stages' own (lib/control AdminServerCredentials with AdminAuth):
// with a token, mutating calls without it get UNAUTHENTICATED and with a wrong one
// PERMISSION_DENIED, reads stay open; TLS and mTLS from a TlsConfig.
//
// Never: used outside tests; pretends to be a stage beyond what the protos say.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "sluice/v1/admin.grpc.pb.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/queue.grpc.pb.h"

namespace sluice::ctl::testing {

struct FakeStageConfig {
  std::string stage = "frontend";
  std::string instance = "fake-0";
  std::string token = "secret";  // "" accepts every call
  sluice::v1::TlsConfig tls;     // admin_tls: plaintext when cert_file is empty
  sluice::v1::Limits limits;
  std::vector<sluice::v1::SessionMetadata> sessions;
  std::vector<sluice::v1::QueueRecord> queue;
};

class FakeStage {
 public:
  explicit FakeStage(FakeStageConfig config);
  ~FakeStage();
  FakeStage(const FakeStage&) = delete;
  FakeStage& operator=(const FakeStage&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // What the server was asked, in arrival order.
  std::vector<sluice::v1::UpdateLimitsRequest> limit_updates() const;
  std::vector<sluice::v1::ListQueueRequest> queue_lists() const;
  std::vector<sluice::v1::QueueIdsRequest> queue_actions() const;
  std::vector<std::string> killed() const;
  sluice::v1::Limits limits() const;
  sluice::v1::DrainRequest last_drain() const;

 private:
  class AdminImpl;
  class QueueImpl;
  friend class AdminImpl;
  friend class QueueImpl;

  mutable std::mutex mu_;
  FakeStageConfig config_;
  sluice::v1::ServingState state_ = sluice::v1::SERVING;
  std::vector<sluice::v1::UpdateLimitsRequest> limit_updates_;
  std::vector<sluice::v1::ListQueueRequest> queue_lists_;
  std::vector<sluice::v1::QueueIdsRequest> queue_actions_;
  std::vector<std::string> killed_;
  sluice::v1::DrainRequest last_drain_;

  std::unique_ptr<AdminImpl> admin_;
  std::unique_ptr<QueueImpl> queue_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace sluice::ctl::testing
