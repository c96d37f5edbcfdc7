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

 private:
  enum class Action { kHold, kRelease, kDelete, kFlush };
  grpc::ServerUnaryReactor* Act(grpc::CallbackServerContext* context, Action action,
                                const sluice::v1::QueueIdsRequest* request,
                                sluice::v1::QueueActionResponse* response);

  QueueStore& store_;
  asio::thread_pool pool_{1};
};

}  // namespace sluice::reinject
