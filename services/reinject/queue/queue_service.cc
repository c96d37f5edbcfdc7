// services/reinject/queue/queue_service.cc -- see queue_service.h.
#include "services/reinject/queue/queue_service.h"

#include "asio/post.hpp"
#include "lib/observe/log.h"

namespace sluice::reinject {
namespace {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(MessageOf(s)));
}

// Record file names: queue ids, and "ID.n" for renamed corrupt duplicates. Anything else
// (a path, "..") never reaches the store.
bool IsQueueName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == '.')) return false;
  }
  return true;
}

const char* ActionName(int action) {
  static const char* const kNames[] = {"hold", "release", "delete", "flush"};
  return kNames[action];
}

}  // namespace

QueueService::QueueService(QueueStore& store) : store_(store) {}

QueueService::~QueueService() {
  pool_.join();
  handoff_pool_.join();
}

grpc::ServerUnaryReactor* QueueService::List(grpc::CallbackServerContext* context,
                                             const sluice::v1::ListQueueRequest* request,
                                             sluice::v1::ListQueueResponse* response) {
  auto* reactor = context->DefaultReactor();
  asio::post(pool_, [this, reactor, request, response] {
    QueueListFilter filter;
    filter.state = request->state();
    filter.sender = request->sender();
    filter.recipient = request->recipient();
    filter.min_age = absl::Seconds(request->min_age_seconds());
    filter.limit = request->limit() == 0 ? 1000 : request->limit();
    QueueListResult result = store_.List(filter);
    for (auto& r : result.records) *response->add_records() = std::move(r);
    response->set_total_messages(result.total_messages);
    response->set_total_bytes(result.total_bytes);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* QueueService::Get(grpc::CallbackServerContext* context,
                                            const sluice::v1::GetQueueEntryRequest* request,
                                            sluice::v1::QueueEntry* response) {
  auto* reactor = context->DefaultReactor();
  if (!IsQueueName(request->queue_id())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a queue id"));
    return reactor;
  }
  asio::post(pool_, [this, reactor, request, response] {
    auto entry = store_.Get(request->queue_id());
    if (entry.ok()) *response = std::move(*entry);
    reactor->Finish(ToGrpc(entry.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* QueueService::Hold(grpc::CallbackServerContext* context,
                                             const sluice::v1::QueueIdsRequest* request,
                                             sluice::v1::QueueActionResponse* response) {
  return Act(context, Action::kHold, request, response);
}

grpc::ServerUnaryReactor* QueueService::Release(grpc::CallbackServerContext* context,
                                                const sluice::v1::QueueIdsRequest* request,
                                                sluice::v1::QueueActionResponse* response) {
  return Act(context, Action::kRelease, request, response);
}

grpc::ServerUnaryReactor* QueueService::Delete(grpc::CallbackServerContext* context,
                                               const sluice::v1::QueueIdsRequest* request,
                                               sluice::v1::QueueActionResponse* response) {
  return Act(context, Action::kDelete, request, response);
}

grpc::ServerUnaryReactor* QueueService::Flush(grpc::CallbackServerContext* context,
                                              const sluice::v1::QueueIdsRequest* request,
                                              sluice::v1::QueueActionResponse* response) {
  return Act(context, Action::kFlush, request, response);
}

grpc::ServerUnaryReactor* QueueService::Act(grpc::CallbackServerContext* context, Action action,
                                            const sluice::v1::QueueIdsRequest* request,
                                            sluice::v1::QueueActionResponse* response) {
  auto* reactor = context->DefaultReactor();
  asio::post(pool_, [this, reactor, action, request, response] {
    std::vector<std::string> ids;
    if (request->all()) {
      switch (action) {
        case Action::kHold:
          for (auto s : {sluice::v1::INCOMING, sluice::v1::ACTIVE, sluice::v1::DEFERRED}) {
            for (auto& id : store_.Ids(s)) ids.push_back(std::move(id));
          }
          break;
        case Action::kRelease: ids = store_.Ids(sluice::v1::HOLD); break;
        case Action::kDelete: ids = store_.Ids(sluice::v1::QUEUE_STATE_UNSPECIFIED); break;
        case Action::kFlush: ids = store_.Ids(sluice::v1::DEFERRED); break;
      }
    } else {
      ids.assign(request->queue_ids().begin(), request->queue_ids().end());
    }
    absl::Status first_error;
    for (const std::string& id : ids) {
      if (!IsQueueName(id)) {
        response->add_not_found(id);
        continue;
      }
      absl::Status s;
      switch (action) {
        case Action::kHold: s = store_.Hold(id, request->reason().empty() ? "operator" : request->reason()); break;
        case Action::kRelease: s = store_.Release(id); break;
        case Action::kDelete: s = store_.Delete(id); break;
        case Action::kFlush: s = store_.Flush(id); break;
      }
      if (s.ok()) {
        response->add_affected(id);
      } else if (absl::IsNotFound(s)) {
        response->add_not_found(id);
      } else if (!absl::IsFailedPrecondition(s) && first_error.ok()) {
        first_error = s;
      }
    }
    observe::Info("queue_admin")
        .Kv("action", ActionName(static_cast<int>(action)))
        .Kv("all", request->all())
        .Kv("affected", response->affected_size())
        .Kv("not_found", response->not_found_size())
        .Kv("error", MessageOf(first_error));
    reactor->Finish(ToGrpc(first_error));
  });
  return reactor;
}


namespace {

// A Transfer stream on a replica without hand-off: ends at once.
class RefusedTransfer final
    : public grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply> {
 public:
  RefusedTransfer() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this replica takes no hand-off")); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply>* QueueService::Transfer(
    grpc::CallbackServerContext* context) {
  if (handoff_ == nullptr) return new RefusedTransfer();
  return handoff_->OpenTransfer(context->peer());
}

grpc::ServerUnaryReactor* QueueService::Move(grpc::CallbackServerContext* context,
                                             const sluice::v1::QueueMoveRequest* request,
                                             sluice::v1::QueueMoveResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (handoff_ == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no hand-off on this replica"));
    return reactor;
  }
  for (const std::string& id : request->queue_ids()) {
    if (!IsQueueName(id)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "not a queue id"));
      return reactor;
    }
  }
  asio::post(handoff_pool_, [this, reactor, request, response] {
    reactor->Finish(ToGrpc(handoff_->Move(*request, response)));
  });
  return reactor;
}

}  // namespace sluice::reinject
