// services/reinject/queue/queue_store_ingest.cc -- QueueStore::BeginIngest and what follows
// a whole entry's commit (see queue_store.h): the earlier layout's import (queue_import.h)
// and a peer's hand-off take entries in under their own id, state and record.
//
// Never: takes in an id the queue holds; indexes an entry before its commit is synced.
#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_frame.h"
#include "services/reinject/queue/queue_metrics.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

absl::StatusOr<std::unique_ptr<QueueWriter>> QueueStore::BeginIngest(const std::string& id, IngestOrigin origin,
                                                                     bool retry) {
  (void)retry;
  if (!QueueIdGenerator::IsValid(id)) return absl::InvalidArgumentError("not a queue id: " + id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index_.Find(id) != nullptr) return absl::AlreadyExistsError("queue id " + id + " is queued here");
    if (received_ended_.contains(id)) return absl::AlreadyExistsError("queue id " + id + " was handed over before");
    if (ingesting_.contains(id)) return absl::UnavailableError("queue id " + id + " is being taken in; try again");
    ingesting_.insert(id);
  }
  return std::unique_ptr<QueueWriter>(new QueueWriter(this, id, options_.writer_buffer_bytes, /*whole=*/true,
                                                     origin == IngestOrigin::kPeer ? kFrameFlagReceived : 0));
}

void QueueStore::OnIngestEnded(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ingesting_.erase(id);
}

void QueueStore::OnIngested(const sluice::v1::QueueRecord& record, FrameLocation at, uint64_t inline_bytes,
                            bool spilled, uint8_t flags) {
  IndexEntry e = EntryOfCommit(record, at, inline_bytes, spilled);
  e.received = (flags & kFrameFlagReceived) != 0;
  if (e.state == sluice::v1::DEFERRED && record.has_next_attempt_at()) e.due_at = FromProtoTime(record.next_attempt_at());
  {
    std::lock_guard<std::mutex> lock(mu_);
    index_.Insert(record.queue_id(), std::move(e));
    ingesting_.erase(record.queue_id());
    UpdateGauges();
  }
  if (record.state() != sluice::v1::HOLD) Wake();
}

}  // namespace sluice::reinject
