// lib/control/watch_status_stream.h
//
// One Admin.WatchStatus stream (a gRPC callback ServerWriteReactor): the status at once,
// then on every change and at least every interval (pushed by StatusBroadcaster), until
// the client cancels, a write fails or the server closes it. One write is in flight at a
// time; pushes that arrive meanwhile collapse into one write of the newest status.
//
// Lifetime: gRPC owns the stream from the handler's return until OnDone, where it leaves
// the broadcaster and the service's list and deletes itself. Finish is called exactly
// once, and never while a write is in flight.
//
// Never: calls into gRPC while holding its mutex; is pushed after OnDone.
#pragma once

#include <functional>
#include <mutex>

#include "absl/time/time.h"
#include "grpcpp/support/server_callback.h"
#include "lib/control/stage_runtime.h"
#include "lib/control/status_broadcaster.h"
#include "sluice/v1/admin.pb.h"

namespace sluice::control {

class WatchStatusStream final : public grpc::ServerWriteReactor<sluice::v1::StageStatus>,
                                public StatusBroadcaster::Subscriber {
 public:
  // `on_done` runs in OnDone, before the stream deletes itself.
  WatchStatusStream(const StageRuntime& runtime, StatusBroadcaster& broadcaster,
                    absl::Duration interval, std::function<void(WatchStatusStream*)> on_done);

  void Push() override;
  // Ends the stream with `status` once any write in flight completed.
  void Close(grpc::Status status);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~WatchStatusStream() override = default;
  void Pump();

  const StageRuntime& runtime_;
  StatusBroadcaster& broadcaster_;
  std::function<void(WatchStatusStream*)> on_done_;

  std::mutex mu_;
  bool pending_ = true;    // a status is due
  bool writing_ = false;   // a write is in flight
  bool ending_ = false;    // cancelled, a write failed, or Close
  bool finished_ = false;  // Finish called
  grpc::Status end_status_;
  sluice::v1::StageStatus message_;  // the write in flight; touched only when !writing_
};

}  // namespace sluice::control
