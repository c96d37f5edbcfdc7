// lib/control/watch_status_stream.cc -- see watch_status_stream.h.
#include "lib/control/watch_status_stream.h"

#include <utility>

namespace sluice::control {

WatchStatusStream::WatchStatusStream(const StageRuntime& runtime, StatusBroadcaster& broadcaster,
                                     absl::Duration interval,
                                     std::function<void(WatchStatusStream*)> on_done)
    : runtime_(runtime), broadcaster_(broadcaster), on_done_(std::move(on_done)) {
  Pump();  // the first status at once (gRPC holds the write until the call is bound)
  broadcaster_.Add(this, interval);
}

void WatchStatusStream::Push() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
  }
  Pump();
}

void WatchStatusStream::Close(grpc::Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ending_) end_status_ = std::move(status);
    ending_ = true;
  }
  Pump();
}

void WatchStatusStream::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) ending_ = true;  // the stream is broken or cancelled
  }
  Pump();
}

void WatchStatusStream::OnCancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ending_) end_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    ending_ = true;
  }
  Pump();
}

void WatchStatusStream::OnDone() {
  broadcaster_.Remove(this);  // waits for a Push running now
  if (on_done_) on_done_(this);
  delete this;
}

void WatchStatusStream::Pump() {
  const sluice::v1::StageStatus* write = nullptr;
  bool finish = false;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || writing_) return;  // OnWriteDone pumps again
    if (ending_) {
      finished_ = true;
      finish = true;
      status = end_status_;
    } else if (pending_) {
      pending_ = false;
      writing_ = true;
      message_ = runtime_.Status();
      write = &message_;
    }
  }
  if (finish) {
    Finish(std::move(status));
  } else if (write != nullptr) {
    StartWrite(write);
  }
}

}  // namespace sluice::control
