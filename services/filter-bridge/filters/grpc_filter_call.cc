// services/filter-bridge/filters/grpc_filter_call.cc -- see grpc_filter_call.h.
#include "services/filter-bridge/filters/grpc_filter_call.h"

#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/use_awaitable.hpp"

namespace sluice::filter_bridge {
namespace {

constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace

std::shared_ptr<GrpcFilterCall> GrpcFilterCall::Start(sluice::v1::ContentFilter::Stub* stub,
                                                      asio::any_io_executor executor,
                                                      std::chrono::steady_clock::time_point deadline) {
  std::shared_ptr<GrpcFilterCall> call(new GrpcFilterCall(executor));
  call->context_.set_deadline(std::chrono::system_clock::now() +
                              (deadline - std::chrono::steady_clock::now()));
  call->self_ = call;
  stub->async()->Filter(&call->context_, &call->verdict_, call.get());
  // Our writes start outside gRPC's reactions, so OnDone must wait until we stop writing
  // (else a filter answering early could end the stream under a StartWrite). Finish()
  // removes the hold.
  call->AddHold();
  call->StartCall();
  return call;
}

void GrpcFilterCall::Post(Event event, std::shared_ptr<GrpcFilterCall> keep) {
  // The coroutine waits for this event, so its io_context has work and is alive.
  asio::post(executor_, [event, keep = std::move(keep)] {
    keep->channel_.try_send(asio::error_code(), event);
  });
}

void GrpcFilterCall::OnWriteDone(bool ok) { Post(Event{Event::kWriteDone, ok}, shared_from_this()); }

void GrpcFilterCall::OnWritesDoneDone(bool ok) {
  Post(Event{Event::kWritesDoneDone, ok}, shared_from_this());
}

void GrpcFilterCall::OnDone(const grpc::Status& status) {
  status_ = status;
  // The last reaction: the posted hand-off holds the last gRPC-side reference.
  Post(Event{Event::kDone, true}, std::move(self_));
}

asio::awaitable<GrpcFilterCall::Event> GrpcFilterCall::Next() {
  bool cancelled = false;
  for (;;) {
    auto [ec, event] = co_await channel_.async_receive(nothrow);
    if (!ec) {
      if (event.kind == Event::kDone) done_ = true;
      co_return event;
    }
    // Our wait was cancelled (the chain deadline): end the call, then wait for gRPC to finish.
    if (!cancelled) context_.TryCancel();
    cancelled = true;
  }
}

asio::awaitable<bool> GrpcFilterCall::Write(sluice::v1::FilterRequest request) {
  if (writes_closed_) co_return false;
  request_ = std::move(request);
  StartWrite(&request_);
  for (;;) {
    Event e = co_await Next();
    if (e.kind == Event::kWriteDone) {
      if (!e.ok) writes_closed_ = true;
      co_return e.ok;
    }
    if (e.kind == Event::kDone) co_return false;
  }
}

asio::awaitable<grpc::Status> GrpcFilterCall::Finish() {
  if (!writes_closed_) {
    writes_closed_ = true;
    StartWritesDone();
  }
  if (!hold_removed_) {
    hold_removed_ = true;
    RemoveHold();
  }
  while (!done_) (void)co_await Next();
  co_return status_;
}

}  // namespace sluice::filter_bridge
