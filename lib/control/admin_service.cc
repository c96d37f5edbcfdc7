// lib/control/admin_service.cc -- see admin_service.h.
#include "lib/control/admin_service.h"

#include <algorithm>
#include <string>

#include "lib/control/watch_status_stream.h"
#include "lib/observe/log.h"

namespace sluice::control {
namespace {

using sluice::v1::StageStatus;

constexpr uint32_t kDefaultWatchIntervalSeconds = 5;
constexpr uint32_t kMaxWatchIntervalSeconds = 3600;

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context,
                               grpc::Status status = grpc::Status::OK) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string Peer(grpc::CallbackServerContext* context) { return context->peer(); }

}  // namespace

AdminService::AdminService(StageRuntime& runtime)
    : runtime_(runtime), listener_(runtime.AddListener([this] { broadcaster_.Notify(); })) {}

AdminService::~AdminService() { runtime_.RemoveListener(listener_); }

void AdminService::CloseWatches() {
  std::lock_guard<std::mutex> lock(watches_mu_);
  closing_ = true;
  for (WatchStatusStream* w : watches_) {
    w->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "admin server shutting down"));
  }
}

size_t AdminService::watches() const {
  std::lock_guard<std::mutex> lock(watches_mu_);
  return watches_.size();
}

grpc::ServerUnaryReactor* AdminService::GetStatus(grpc::CallbackServerContext* context,
                                                  const sluice::v1::GetStatusRequest*,
                                                  StageStatus* response) {
  *response = runtime_.Status();
  return Done(context);
}

grpc::ServerWriteReactor<StageStatus>* AdminService::WatchStatus(
    grpc::CallbackServerContext*, const sluice::v1::WatchStatusRequest* request) {
  uint32_t seconds = request->interval_seconds() == 0 ? kDefaultWatchIntervalSeconds
                                                      : request->interval_seconds();
  seconds = std::clamp<uint32_t>(seconds, 1, kMaxWatchIntervalSeconds);
  std::lock_guard<std::mutex> lock(watches_mu_);
  auto* stream = new WatchStatusStream(runtime_, broadcaster_, absl::Seconds(seconds),
                                       [this](WatchStatusStream* done) {
                                         std::lock_guard<std::mutex> lock(watches_mu_);
                                         watches_.erase(done);
                                       });
  watches_.insert(stream);
  if (closing_) {
    stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "admin server shutting down"));
  }
  return stream;
}

grpc::ServerUnaryReactor* AdminService::ListSessions(
    grpc::CallbackServerContext* context, const sluice::v1::ListSessionsRequest* request,
    sluice::v1::ListSessionsResponse* response) {
  for (auto& meta : runtime_.sessions().List(*request)) {
    *response->add_sessions() = std::move(meta);
  }
  return Done(context);
}

grpc::ServerUnaryReactor* AdminService::GetSession(grpc::CallbackServerContext* context,
                                                   const sluice::v1::GetSessionRequest* request,
                                                   sluice::v1::SessionMetadata* response) {
  if (request->session_id().empty()) {
    return Done(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "session_id is empty"));
  }
  auto meta = runtime_.sessions().Get(request->session_id());
  if (!meta) {
    return Done(context, grpc::Status(grpc::StatusCode::NOT_FOUND,
                                      "no live session " + request->session_id() + " on " +
                                          runtime_.info().instance));
  }
  *response = *std::move(meta);
  return Done(context);
}

grpc::ServerUnaryReactor* AdminService::KillSession(grpc::CallbackServerContext* context,
                                                    const sluice::v1::KillSessionRequest* request,
                                                    sluice::v1::KillSessionResponse* response) {
  if (request->session_id().empty()) {
    return Done(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "session_id is empty"));
  }
  bool killed = runtime_.sessions().Kill(request->session_id());
  response->set_killed(killed);
  observe::Info("admin_kill_session")
      .Kv("session", request->session_id())
      .Kv("killed", killed)
      .Kv("peer", Peer(context));
  return Done(context);
}

grpc::ServerUnaryReactor* AdminService::GetLimits(grpc::CallbackServerContext* context,
                                                  const sluice::v1::GetLimitsRequest*,
                                                  sluice::v1::Limits* response) {
  *response = *runtime_.limits().Get();
  return Done(context);
}

grpc::ServerUnaryReactor* AdminService::UpdateLimits(
    grpc::CallbackServerContext* context, const sluice::v1::UpdateLimitsRequest* request,
    sluice::v1::Limits* response) {
  absl::StatusOr<sluice::v1::Limits> updated = runtime_.limits().Update(*request);
  if (!updated.ok()) {
    observe::Warn("admin_update_limits_refused")
        .Kv("error", std::string(updated.status().message()))
        .Kv("peer", Peer(context));
    return Done(context, ToGrpc(updated.status()));
  }
  *response = *std::move(updated);
  observe::Info("admin_update_limits").Kv("peer", Peer(context));
  return Done(context);
}

grpc::ServerUnaryReactor* AdminService::Drain(grpc::CallbackServerContext* context,
                                              const sluice::v1::DrainRequest* request,
                                              StageStatus* response) {
  uint32_t seconds = request->timeout_seconds() != 0
                         ? request->timeout_seconds()
                         : runtime_.limits().Get()->drain_timeout_seconds();
  std::shared_ptr<const StageRuntime::DrainHandoff> handoff;
  if (request->handoff()) {
    // Refused before anything drains: a refused hand-off leaves the replica as it was.
    handoff = runtime_.drain_handoff();
    if (handoff == nullptr) {
      return Done(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        "drain --handoff does not apply to the " + runtime_.info().stage +
                                            " stage: only reinject keeps a queue to hand off"));
    }
    if (absl::Status st = handoff->check(); !st.ok()) return Done(context, ToGrpc(st));
  }
  bool started = runtime_.BeginDrain(absl::Seconds(seconds));
  observe::Info("admin_drain")
      .Kv("timeout_seconds", seconds)
      .Kv("started", started)
      .Kv("handoff", request->handoff())
      .Kv("peer", Peer(context));
  if (handoff == nullptr) {
    *response = runtime_.Status();
    return Done(context);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handoff->run(absl::Seconds(seconds), [this, reactor, response](absl::Status st) {
    *response = runtime_.Status();
    reactor->Finish(ToGrpc(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::Resume(grpc::CallbackServerContext* context,
                                               const sluice::v1::ResumeRequest*,
                                               StageStatus* response) {
  bool resumed = runtime_.Resume();
  observe::Info("admin_resume").Kv("resumed", resumed).Kv("peer", Peer(context));
  *response = runtime_.Status();
  return Done(context);
}

grpc::ServerUnaryReactor* AdminService::GetEffectiveLimits(grpc::CallbackServerContext* context,
                                                           const sluice::v1::GetEffectiveLimitsRequest*,
                                                           sluice::v1::EffectiveLimits* response) {
  *response = runtime_.effective_limits().Report();
  return Done(context);
}

}  // namespace sluice::control
