// services/filter-bridge/filters/grpc_filter_call.h
//
// One sluice.v1.ContentFilter.Filter call (client streaming) with gRPC's callback API,
// driven from an Asio coroutine: each reactor event (write done, call done) is posted to the
// coroutine's executor and handed over through a channel there, so no io thread ever blocks
// on gRPC and no gRPC thread runs our code beyond a post. The posted handler holds a
// reference, so the call is released on the io thread, while the coroutine still waits (its
// io_context is then necessarily alive). Cancelling the awaiting coroutine (the chain's
// deadline) cancels the call (TryCancel) and still waits for gRPC's OnDone, after which the
// reactor is no longer used.
//
// The io_context must outlive a call in flight (a draining stage lets its sessions finish).
//
// Never: destroys the reactor before OnDone (the call keeps itself alive until then); calls
// StartWrite with another write outstanding or after the hold is released.
#pragma once

#include <chrono>
#include <memory>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/experimental/concurrent_channel.hpp"
#include "grpcpp/grpcpp.h"
#include "sluice/v1/filter.grpc.pb.h"

namespace sluice::filter_bridge {

class GrpcFilterCall : public grpc::ClientWriteReactor<sluice::v1::FilterRequest>,
                       public std::enable_shared_from_this<GrpcFilterCall> {
 public:
  // Starts the call with `deadline`; the returned call lives at least until OnDone.
  static std::shared_ptr<GrpcFilterCall> Start(sluice::v1::ContentFilter::Stub* stub,
                                               asio::any_io_executor executor,
                                               std::chrono::steady_clock::time_point deadline);

  // Sends one request; false when the stream is closed (the filter answered early or the call
  // failed): stop writing and Finish(). Finish() must always be called (it releases the hold
  // that keeps gRPC from ending the call under a write).
  asio::awaitable<bool> Write(sluice::v1::FilterRequest request);
  // Half-closes the stream and waits for the end of the call.
  asio::awaitable<grpc::Status> Finish();
  const sluice::v1::FilterVerdict& verdict() const { return verdict_; }

  // gRPC reactions (gRPC's threads).
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  struct Event {
    enum Kind { kWriteDone, kWritesDoneDone, kDone } kind = kDone;
    bool ok = false;
  };

 private:
  using Channel = asio::experimental::concurrent_channel<void(asio::error_code, Event)>;
  explicit GrpcFilterCall(asio::any_io_executor executor) : executor_(executor), channel_(executor, 8) {}
  // From a gRPC thread: delivers `event` on the io thread.
  void Post(Event event, std::shared_ptr<GrpcFilterCall> keep);
  // The next reactor event; a cancelled wait cancels the call and waits on for its end.
  asio::awaitable<Event> Next();

  grpc::ClientContext context_;
  sluice::v1::FilterVerdict verdict_;
  sluice::v1::FilterRequest request_;  // the write in flight
  grpc::Status status_;                // set in OnDone, read after the kDone event
  bool done_ = false;                  // the coroutine saw kDone
  bool writes_closed_ = false;
  bool hold_removed_ = false;          // the hold taken in Start (no OnDone before Finish)
  asio::any_io_executor executor_;
  Channel channel_;
  std::shared_ptr<GrpcFilterCall> self_;  // released in OnDone
};

}  // namespace sluice::filter_bridge
