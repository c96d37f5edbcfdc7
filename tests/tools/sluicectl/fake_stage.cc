// tests/tools/sluicectl/fake_stage.cc -- see fake_stage.h.
#include "tests/tools/sluicectl/fake_stage.h"

#include <algorithm>
#include <functional>

#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "lib/control/admin_auth.h"

namespace sluice::ctl::testing {

using google::protobuf::util::FieldMaskUtil;
using google::protobuf::util::TimeUtil;
namespace v1 = sluice::v1;

class FakeStage::AdminImpl final : public v1::Admin::Service {
 public:
  explicit AdminImpl(FakeStage& stage) : s_(stage) {}

  grpc::Status GetStatus(grpc::ServerContext*, const v1::GetStatusRequest*, v1::StageStatus* out) override {
    std::lock_guard lock(s_.mu_);
    FillStatus(out);
    return grpc::Status::OK;
  }

  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* req,
                            v1::ListSessionsResponse* out) override {
    std::lock_guard lock(s_.mu_);
    for (const auto& session : s_.config_.sessions) {
      if (req->client_address().empty() || session.client_address() == req->client_address()) {
        *out->add_sessions() = session;
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status GetSession(grpc::ServerContext*, const v1::GetSessionRequest* req, v1::SessionMetadata* out) override {
    std::lock_guard lock(s_.mu_);
    for (const auto& session : s_.config_.sessions) {
      if (session.session_id() == req->session_id()) {
        *out = session;
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such session here");
  }

  grpc::Status KillSession(grpc::ServerContext*, const v1::KillSessionRequest* req,
                           v1::KillSessionResponse* out) override {
    std::lock_guard lock(s_.mu_);
    auto& sessions = s_.config_.sessions;
    auto it = std::find_if(sessions.begin(), sessions.end(),
                           [&](const v1::SessionMetadata& m) { return m.session_id() == req->session_id(); });
    out->set_killed(it != sessions.end());
    if (it != sessions.end()) {
      s_.killed_.push_back(req->session_id());
      sessions.erase(it);
    }
    return grpc::Status::OK;
  }

  grpc::Status GetLimits(grpc::ServerContext*, const v1::GetLimitsRequest*, v1::Limits* out) override {
    std::lock_guard lock(s_.mu_);
    *out = s_.config_.limits;
    return grpc::Status::OK;
  }

  grpc::Status UpdateLimits(grpc::ServerContext*, const v1::UpdateLimitsRequest* req, v1::Limits* out) override {
    std::lock_guard lock(s_.mu_);
    s_.limit_updates_.push_back(*req);
    if (!FieldMaskUtil::IsValidFieldMask<v1::Limits>(req->update_mask())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad update_mask");
    }
    FieldMaskUtil::MergeOptions options;
    options.set_replace_repeated_fields(true);
    FieldMaskUtil::MergeMessageTo(req->limits(), req->update_mask(), options, &s_.config_.limits);
    *out = s_.config_.limits;
    return grpc::Status::OK;
  }

  grpc::Status Drain(grpc::ServerContext*, const v1::DrainRequest* req, v1::StageStatus* out) override {
    std::lock_guard lock(s_.mu_);
    s_.last_drain_ = *req;
    s_.state_ = v1::DRAINING;
    FillStatus(out);
    return grpc::Status::OK;
  }

  grpc::Status Resume(grpc::ServerContext*, const v1::ResumeRequest*, v1::StageStatus* out) override {
    std::lock_guard lock(s_.mu_);
    s_.state_ = v1::SERVING;
    FillStatus(out);
    return grpc::Status::OK;
  }

 private:
  void FillStatus(v1::StageStatus* out) const {
    out->set_stage(s_.config_.stage);
    out->set_instance(s_.config_.instance);
    out->set_version("0.1.0-test");
    out->set_state(s_.state_);
    if (s_.state_ == v1::DRAINING) out->set_state_reason("drain requested");
    out->set_sessions_active(static_cast<uint32_t>(s_.config_.sessions.size()));
    out->set_sessions_max(s_.config_.limits.max_sessions());
    out->set_accepting(s_.state_ == v1::SERVING);
    *out->mutable_started_at() = TimeUtil::SecondsToTimestamp(TimeUtil::TimestampToSeconds(TimeUtil::GetCurrentTime()) - 3600);
    *out->mutable_now() = TimeUtil::GetCurrentTime();
    if (s_.config_.stage == "reinject") {
      out->set_queue_messages(s_.config_.queue.size());
      out->set_queue_bytes(4096);
      out->set_disk_free_bytes(1ull << 33);
    }
  }

  FakeStage& s_;
};

class FakeStage::QueueImpl final : public v1::Queue::Service {
 public:
  explicit QueueImpl(FakeStage& stage) : s_(stage) {}

  grpc::Status List(grpc::ServerContext*, const v1::ListQueueRequest* req, v1::ListQueueResponse* out) override {
    std::lock_guard lock(s_.mu_);
    s_.queue_lists_.push_back(*req);
    for (const auto& r : s_.config_.queue) {
      if (req->state() != v1::QUEUE_STATE_UNSPECIFIED && r.state() != req->state()) continue;
      if (r.sender().find(req->sender()) == std::string::npos) continue;
      *out->add_records() = r;
      out->set_total_bytes(out->total_bytes() + r.size_bytes());
    }
    out->set_total_messages(static_cast<uint64_t>(out->records_size()));
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetQueueEntryRequest* req, v1::QueueEntry* out) override {
    std::lock_guard lock(s_.mu_);
    for (const auto& r : s_.config_.queue) {
      if (r.queue_id() == req->queue_id()) {
        *out->mutable_record() = r;
        out->set_headers("From: <bob@example.org>\r\nSubject: hello\r\n");
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such queue id here");
  }

  // As the real queue: an entry in a state the action does not apply to is neither affected
  // nor "not found" (release of one not on hold, flush of one not deferred).
  grpc::Status Hold(grpc::ServerContext*, const v1::QueueIdsRequest* req, v1::QueueActionResponse* out) override {
    return Act(req, out, [](v1::QueueState s) { return s != v1::CORRUPT; });
  }
  grpc::Status Release(grpc::ServerContext*, const v1::QueueIdsRequest* req, v1::QueueActionResponse* out) override {
    return Act(req, out, [](v1::QueueState s) { return s == v1::HOLD; });
  }
  grpc::Status Delete(grpc::ServerContext*, const v1::QueueIdsRequest* req, v1::QueueActionResponse* out) override {
    return Act(req, out, [](v1::QueueState) { return true; });
  }
  grpc::Status Flush(grpc::ServerContext*, const v1::QueueIdsRequest* req, v1::QueueActionResponse* out) override {
    return Act(req, out, [](v1::QueueState s) { return s == v1::DEFERRED; });
  }

 private:
  grpc::Status Act(const v1::QueueIdsRequest* req, v1::QueueActionResponse* out,
                   const std::function<bool(v1::QueueState)>& applies) {
    std::lock_guard lock(s_.mu_);
    s_.queue_actions_.push_back(*req);
    for (const auto& r : s_.config_.queue) {
      const bool asked = req->all() || std::find(req->queue_ids().begin(), req->queue_ids().end(), r.queue_id()) !=
                                           req->queue_ids().end();
      if (asked && applies(r.state())) out->add_affected(r.queue_id());
    }
    for (const std::string& id : req->queue_ids()) {
      const bool here = std::any_of(s_.config_.queue.begin(), s_.config_.queue.end(),
                                    [&](const v1::QueueRecord& r) { return r.queue_id() == id; });
      if (!here) out->add_not_found(id);
    }
    return grpc::Status::OK;
  }

  FakeStage& s_;
};

FakeStage::FakeStage(FakeStageConfig config) : config_(std::move(config)) {
  admin_ = std::make_unique<AdminImpl>(*this);
  queue_ = std::make_unique<QueueImpl>(*this);
  // The stages' own transport-level auth and TLS setup, so the client meets the real policy:
  // mutating calls need the token, reads stay open.
  auto auth = std::make_shared<sluice::control::AdminAuth>(config_.token);
  auto credentials = sluice::control::AdminServerCredentials(config_.tls, auth);
  if (!credentials.ok()) {
    ADD_FAILURE() << credentials.status().ToString();
    return;
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", *credentials, &port_);
  builder.RegisterService(admin_.get());
  builder.RegisterService(queue_.get());
  server_ = builder.BuildAndStart();
}

FakeStage::~FakeStage() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

std::vector<v1::UpdateLimitsRequest> FakeStage::limit_updates() const {
  std::lock_guard lock(mu_);
  return limit_updates_;
}
std::vector<v1::ListQueueRequest> FakeStage::queue_lists() const {
  std::lock_guard lock(mu_);
  return queue_lists_;
}
std::vector<v1::QueueIdsRequest> FakeStage::queue_actions() const {
  std::lock_guard lock(mu_);
  return queue_actions_;
}
std::vector<std::string> FakeStage::killed() const {
  std::lock_guard lock(mu_);
  return killed_;
}
v1::Limits FakeStage::limits() const {
  std::lock_guard lock(mu_);
  return config_.limits;
}
v1::DrainRequest FakeStage::last_drain() const {
  std::lock_guard lock(mu_);
  return last_drain_;
}

}  // namespace sluice::ctl::testing
