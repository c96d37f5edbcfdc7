// services/reinject/handoff/handoff_receiver.cc -- see handoff_receiver.h.
#include "services/reinject/handoff/handoff_receiver.h"

#include <zlib.h>

#include "absl/strings/str_cat.h"
#include "asio/post.hpp"
#include "lib/observe/log.h"
#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {
namespace {

using Outcome = sluice::v1::QueueTransferReply;

}  // namespace

TransferStream::TransferStream(const HandoffReceiverContext& context, std::string peer)
    : context_(context), peer_(std::move(peer)) {
  if (context_.accepting && !context_.accepting()) {
    observe::Info("handoff_refused").Kv("peer", peer_).Kv("reason", "draining");
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_ = true;
    }
    Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "draining: hand the queue to another replica"));
    return;
  }
  sluice::v1::QueueTransferReply hello;
  hello.set_ready(true);
  hello.set_instance(context_.instance);
  {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.push_back(std::move(hello));
  }
  Pump();
  Read();
}

void TransferStream::Read() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_pending_ = true;
  }
  StartRead(&request_);
}

void TransferStream::OnReadDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_pending_ = false;
    ++pool_work_;  // the stream is not finished while the pool has work of it
  }
  asio::post(context_.executor, [this, ok] {
    if (ok) {
      Handle();
    } else {
      // The sender is done (or gone). A half-received entry is dropped.
      if (writer_) {
        observe::Warn("handoff_entry_incomplete").Kv("queue_id", id_).Kv("peer", peer_);
        writer_.reset();
      }
      std::lock_guard<std::mutex> lock(mu_);
      reads_over_ = true;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      --pool_work_;
    }
    Pump();  // may finish the stream: nothing of `this` is touched after it
  });
}

void TransferStream::Handle() {
  switch (request_.part_case()) {
    case sluice::v1::QueueTransferRequest::kEntry: HandleEntry(request_.entry()); break;
    case sluice::v1::QueueTransferRequest::kContent: HandleContent(request_.content()); break;
    case sluice::v1::QueueTransferRequest::kEnd: HandleEnd(request_.end()); break;
    default: break;
  }
  AfterHandle();
}

void TransferStream::HandleEntry(const sluice::v1::QueueTransferEntry& entry) {
  writer_.reset();  // an entry left without its end: dropped
  record_ = entry.record();
  id_ = record_.queue_id();
  received_bytes_ = 0;
  crc_ = static_cast<uint32_t>(crc32(0L, Z_NULL, 0));
  skipping_ = false;
  skip_error_.clear();
  if (record_.size_bytes() != entry.content_bytes()) {
    skipping_ = true;
    skip_outcome_ = Outcome::REFUSED;
    skip_error_ = absl::StrCat("record says ", record_.size_bytes(), " bytes, the transfer ", entry.content_bytes());
    return;
  }
  auto writer = context_.store->BeginIngest(id_, QueueStore::IngestOrigin::kPeer, entry.retry());
  if (writer.ok()) {
    // A full queue or disk refuses a hand-off as it refuses new mail (452 4.3.1): the entry
    // stays with the sender, who tries another peer.
    absl::Status room = context_.store->CheckAdmission(entry.content_bytes());
    if (room.ok()) {
      writer_ = std::move(*writer);
      return;
    }
    writer = room;  // the writer goes: the id is free again
  }
  skipping_ = true;
  if (absl::IsAlreadyExists(writer.status())) {
    skip_outcome_ = Outcome::ALREADY_HAD;
  } else {
    skip_outcome_ = Outcome::REFUSED;
    skip_error_ = std::string(MessageOf(writer.status()));
  }
}

void TransferStream::HandleContent(const std::string& bytes) {
  if (skipping_ || !writer_) return;
  crc_ = static_cast<uint32_t>(crc32(crc_, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  received_bytes_ += bytes.size();
  absl::Status s = writer_->Append(bytes);
  if (!s.ok()) {
    writer_.reset();
    skipping_ = true;
    skip_outcome_ = Outcome::REFUSED;
    skip_error_ = std::string(MessageOf(s));
  }
}

void TransferStream::HandleEnd(const sluice::v1::QueueTransferEnd& end) {
  if (skipping_ || !writer_) {
    Reply(id_, skipping_ ? skip_outcome_ : Outcome::REFUSED, skip_error_.empty() && !skipping_ ? "no entry begun" : skip_error_);
    return;
  }
  std::unique_ptr<QueueWriter> writer = std::move(writer_);
  if (received_bytes_ != record_.size_bytes() || crc_ != end.content_crc32()) {
    Reply(id_, Outcome::REFUSED,
          absl::StrCat("content damaged in transfer: ", received_bytes_, " bytes, CRC-32 ", crc_, ", expected ",
                       record_.size_bytes(), " bytes, CRC-32 ", end.content_crc32()));
    return;  // the writer goes: nothing of the entry is kept
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++outstanding_;
  }
  std::string id = id_;
  uint64_t bytes = received_bytes_;
  std::string state = QueueStateName(record_.state());
  writer->CommitWhole(std::move(record_), [this, id, bytes, state](absl::Status s) {
    observe::Info("handoff_received")
        .Kv("queue_id", id)
        .Kv("peer", peer_)
        .Kv("state", state)
        .Kv("size", bytes)
        .Kv("error", MessageOf(s));
    if (s.ok() && context_.metrics != nullptr) context_.metrics->bytes_received->Increment(static_cast<double>(bytes));
    Reply(id, s.ok() ? Outcome::STORED : Outcome::REFUSED, std::string(MessageOf(s)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      --outstanding_;
    }
    Pump();
  });
}

void TransferStream::Reply(const std::string& id, sluice::v1::QueueTransferReply::Outcome outcome, std::string error) {
  if (context_.metrics != nullptr) {
    int i = outcome == Outcome::STORED ? 0 : outcome == Outcome::ALREADY_HAD ? 1 : 2;
    context_.metrics->received[i]->Increment();
  }
  if (outcome != Outcome::STORED) {
    observe::Info("handoff_received")
        .Kv("queue_id", id)
        .Kv("peer", peer_)
        .Kv("outcome", Outcome::Outcome_Name(outcome))
        .Kv("error", error);
  }
  sluice::v1::QueueTransferReply reply;
  reply.set_queue_id(id);
  reply.set_outcome(outcome);
  reply.set_error(std::move(error));
  {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.push_back(std::move(reply));
  }
  Pump();
}

void TransferStream::AfterHandle() {
  bool over;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_) reads_over_ = true;
    over = reads_over_;
  }
  if (over) {
    writer_.reset();
    return;
  }
  Read();
}

void TransferStream::Pump() {
  std::unique_lock<std::mutex> lock(mu_);
  if (finished_ || writing_) return;
  if (!replies_.empty() && !cancelled_) {
    writing_message_ = std::move(replies_.front());
    replies_.pop_front();
    writing_ = true;
    lock.unlock();
    StartWrite(&writing_message_);
    return;
  }
  if ((reads_over_ || cancelled_) && outstanding_ == 0 && !read_pending_ && pool_work_ == 0) {
    finished_ = true;
    grpc::Status status = cancelled_ ? grpc::Status::CANCELLED : end_status_;
    lock.unlock();
    Finish(status);
  }
}

void TransferStream::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) cancelled_ = true;  // the sender is gone: its unanswered entries stay with it
  }
  Pump();
}

void TransferStream::OnCancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  Pump();
}

void TransferStream::OnDone() {
  // Commits still in flight would call back into us: Finish waits for them (outstanding_),
  // and a cancelled stream gets here only after Finish too.
  delete this;
}

}  // namespace sluice::reinject
