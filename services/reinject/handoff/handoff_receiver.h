// services/reinject/handoff/handoff_receiver.h
//
// The receiving side of a queue hand-off: one sluice.v1.Queue/Transfer stream (a gRPC
// callback ServerBidiReactor). The stream first answers "ready" (a reply without id) -- or
// ends at once with UNAVAILABLE while this replica is draining, so a draining replica never
// takes in what another one is giving away. Then, per entry sent (record, content pieces,
// end with the content's CRC-32):
//
//   - an id this queue holds already, or (a retried transfer) whose end is in the received
//     ledger, is answered ALREADY_HAD and its content discarded: no duplicate;
//   - otherwise the entry is taken in whole under its own id, state and record
//     (QueueStore::BeginIngest, kFrameFlagReceived) and answered STORED once its commit is
//     synced -- many entries of a stream share a sync;
//   - a content of the wrong size or checksum, a full queue or a write error is answered
//     REFUSED with the reason: nothing of it is kept.
//
// Every read is handled on the receiver's own pool (the disk work: spilling large content,
// the commit's wait), never on a gRPC thread; the next read starts when the last is handled.
//
// Lifetime: gRPC owns the stream from the handler's return until OnDone, where it deletes
// itself; Finish is called once, after the sender's last message, every commit's answer and
// the last write.
//
// Never: answers STORED before the entry is synced; answers ALREADY_HAD for an id it neither
// holds nor remembers; calls into gRPC while holding its mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "asio/any_io_executor.hpp"
#include "grpcpp/support/server_callback.h"
#include "services/reinject/handoff/handoff_metrics.h"
#include "services/reinject/queue/queue_store.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct HandoffReceiverContext {
  QueueStore* store = nullptr;
  asio::any_io_executor executor;  // the receiver's pool
  std::function<bool()> accepting;  // false while draining: streams are refused
  std::string instance;             // this replica, in the ready reply
  HandoffMetrics* metrics = nullptr;
};

class TransferStream final
    : public grpc::ServerBidiReactor<sluice::v1::QueueTransferRequest, sluice::v1::QueueTransferReply> {
 public:
  TransferStream(const HandoffReceiverContext& context, std::string peer);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~TransferStream() override = default;
  void Handle();  // on the pool: the message just read
  void HandleEntry(const sluice::v1::QueueTransferEntry& entry);
  void HandleContent(const std::string& bytes);
  void HandleEnd(const sluice::v1::QueueTransferEnd& end);
  void Reply(const std::string& id, sluice::v1::QueueTransferReply::Outcome outcome, std::string error);
  void AfterHandle();  // next read, unless the stream is ending
  void Read();
  void Pump();         // with mu_ NOT held: a write, or Finish

  const HandoffReceiverContext& context_;
  const std::string peer_;

  // The entry being received (pool only, one message at a time).
  sluice::v1::QueueTransferRequest request_;
  std::unique_ptr<QueueWriter> writer_;
  sluice::v1::QueueRecord record_;
  std::string id_;
  bool skipping_ = false;
  sluice::v1::QueueTransferReply::Outcome skip_outcome_ = sluice::v1::QueueTransferReply::REFUSED;
  std::string skip_error_;
  uint64_t received_bytes_ = 0;
  uint32_t crc_ = 0;

  std::mutex mu_;
  std::deque<sluice::v1::QueueTransferReply> replies_;
  sluice::v1::QueueTransferReply writing_message_;
  bool writing_ = false;
  bool reads_over_ = false;  // the sender closed, or the stream failed
  bool cancelled_ = false;
  bool finished_ = false;
  int outstanding_ = 0;  // commits not answered yet
  bool read_pending_ = false;
  int pool_work_ = 0;     // reads being handled on the pool
  grpc::Status end_status_;
};

}  // namespace sluice::reinject
