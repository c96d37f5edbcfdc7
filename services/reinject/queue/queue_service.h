// services/reinject/queue/queue_service.h
//
// sluice.v1.Queue over gRPC (callback API): postqueue/postsuper for the cluster. List and
// Get read the queue; Hold, Release, Delete and Flush act on ids or, with `all`, on every
// entry the call applies to (Hold: incoming/active/deferred, Release: hold, Delete: every
// entry, Flush: deferred). Per id the answer says `affected` or `not_found`; an id the call
// does not apply to (releasing an entry that is not held, flushing a held one) is in neither
// list. The calls do disk I/O, so they run on the service's own thread, never on gRPC's.
//
// The admin server (lib/control/admin_server.h) registers it beside Admin and Health:
//   QueueService queue_service(*store);
//   builder.RegisterService(&queue_service);
//
// Transfer and Move, the hand-off between replicas, are served by the HandoffRequests set
// with SetHandoff (UNIMPLEMENTED without).
//
// Never: blocks a gRPC callback thread on the disk; shows message bodies (Get gives the
// header block only).
#pragma once

// A standard header before the first Asio one: Asio decides between aligned_alloc and
// operator new from libstdc++'s config macros, and every TU must decide alike.
#include <memory>

#include "asio/thread_pool.hpp"
#include "services/reinject/queue/queue_store.h"
#include "sluice/v1/queue.grpc.pb.h"

namespace sluice::reinject {

// The hand-off calls (Transfer, Move), answered by the replica's QueueHandoff
// (services/reinject/handoff/queue_handoff.h); without one they are UNIMPLEMENTED.
class HandoffRequests {
 public:
  virtual ~HandoffRequests() = default;
  // A reactor for one Transfer stream from `peer` (owned by gRPC until its OnDone).
  virtual grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply>* OpenTransfer(
      const std::string& peer) = 0;
  // Blocking; called on the service's hand-off thread.
  virtual absl::Status Move(const sluice::v1::QueueMoveRequest& request, sluice::v1::QueueMoveResponse* response) = 0;
};


class QueueService final : public sluice::v1::Queue::CallbackService {
 public:
  explicit QueueService(QueueStore& store);
  ~QueueService() override;

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const sluice::v1::ListQueueRequest* request,
                                 sluice::v1::ListQueueResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const sluice::v1::GetQueueEntryRequest* request,
                                sluice::v1::QueueEntry* response) override;
  grpc::ServerUnaryReactor* Hold(grpc::CallbackServerContext* context,
                                 const sluice::v1::QueueIdsRequest* request,
                                 sluice::v1::QueueActionResponse* response) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* context,
                                    const sluice::v1::QueueIdsRequest* request,
                                    sluice::v1::QueueActionResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const sluice::v1::QueueIdsRequest* request,
                                   sluice::v1::QueueActionResponse* response) override;
  grpc::ServerUnaryReactor* Flush(grpc::CallbackServerContext* context,
                                  const sluice::v1::QueueIdsRequest* request,
                                  sluice::v1::QueueActionResponse* response) override;
  grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply>* Transfer(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Move(grpc::CallbackServerContext* context, const sluice::v1::QueueMoveRequest* request,
                                 sluice::v1::QueueMoveResponse* response) override;

  // Serves Transfer and Move from now on (before the server starts; outlives it).
  void SetHandoff(HandoffRequests* handoff) { handoff_ = handoff; }

 private:
  enum class Action { kHold, kRelease, kDelete, kFlush };
  grpc::ServerUnaryReactor* Act(grpc::CallbackServerContext* context, Action action,
                                const sluice::v1::QueueIdsRequest* request,
                                sluice::v1::QueueActionResponse* response);

  QueueStore& store_;
  asio::thread_pool pool_{1};
  HandoffRequests* handoff_ = nullptr;
  asio::thread_pool handoff_pool_{1};  // Move runs as long as its transfer: not on pool_
};

}  // namespace sluice::reinject
