// lib/control/admin_service.h
//
// sluice.v1.Admin over one StageRuntime, on gRPC's callback API: status and its stream,
// live sessions (list, get, kill), limits (get, update live, the effective data-path
// limits), drain and resume. Every
// handler answers from memory without blocking; WatchStatus streams are
// WatchStatusStream reactors pushed by one StatusBroadcaster thread.
//
// Never: blocks a gRPC thread; checks tokens itself (admin_auth does, on the transport,
// before a handler runs); is destroyed before the server it is registered with shut down.
#pragma once

#include <cstddef>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "lib/control/stage_runtime.h"
#include "lib/control/status_broadcaster.h"
#include "sluice/v1/admin.grpc.pb.h"

namespace sluice::control {

class WatchStatusStream;

class AdminService final : public sluice::v1::Admin::CallbackService {
 public:
  explicit AdminService(StageRuntime& runtime);
  ~AdminService() override;

  // Ends every WatchStatus stream with UNAVAILABLE and refuses new ones: the first step of
  // a server shutdown, so watchers learn at once instead of at the shutdown deadline.
  void CloseWatches();
  size_t watches() const;

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const sluice::v1::GetStatusRequest* request,
                                      sluice::v1::StageStatus* response) override;
  grpc::ServerWriteReactor<sluice::v1::StageStatus>* WatchStatus(
      grpc::CallbackServerContext* context,
      const sluice::v1::WatchStatusRequest* request) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const sluice::v1::ListSessionsRequest* request,
                                         sluice::v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const sluice::v1::GetSessionRequest* request,
                                       sluice::v1::SessionMetadata* response) override;
  grpc::ServerUnaryReactor* KillSession(grpc::CallbackServerContext* context,
                                        const sluice::v1::KillSessionRequest* request,
                                        sluice::v1::KillSessionResponse* response) override;
  grpc::ServerUnaryReactor* GetLimits(grpc::CallbackServerContext* context,
                                      const sluice::v1::GetLimitsRequest* request,
                                      sluice::v1::Limits* response) override;
  grpc::ServerUnaryReactor* UpdateLimits(grpc::CallbackServerContext* context,
                                         const sluice::v1::UpdateLimitsRequest* request,
                                         sluice::v1::Limits* response) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const sluice::v1::DrainRequest* request,
                                  sluice::v1::StageStatus* response) override;
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const sluice::v1::ResumeRequest* request,
                                   sluice::v1::StageStatus* response) override;
  grpc::ServerUnaryReactor* GetEffectiveLimits(grpc::CallbackServerContext* context,
                                               const sluice::v1::GetEffectiveLimitsRequest* request,
                                               sluice::v1::EffectiveLimits* response) override;

 private:
  StageRuntime& runtime_;
  StatusBroadcaster broadcaster_;
  StageRuntime::ListenerId listener_;

  mutable std::mutex watches_mu_;
  bool closing_ = false;
  absl::flat_hash_set<WatchStatusStream*> watches_;
};

}  // namespace sluice::control
