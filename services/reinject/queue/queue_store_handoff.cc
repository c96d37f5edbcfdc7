// services/reinject/queue/queue_store_handoff.cc -- the queue's side of a hand-off to a peer
// replica (services/reinject/handoff/): taking entries for a transfer, the durable hand-off
// mark, reading an entry whole, and ending each entry's transfer. See queue_store.h.
//
// Never: marks an entry it has not taken; removes an entry its peer has not confirmed; lets
// a marked entry be scheduled here.
#include <condition_variable>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {
namespace {

bool Transferable(const IndexEntry& e) {
  return !e.busy && !e.pending_delete && e.handoff_peer.empty() &&
         (e.state == sluice::v1::INCOMING || e.state == sluice::v1::ACTIVE || e.state == sluice::v1::DEFERRED ||
          e.state == sluice::v1::HOLD);
}

}  // namespace

std::vector<std::string> QueueStore::TakeForHandoff(const std::vector<std::string>& ids,
                                                    std::vector<std::string>* skipped) {
  std::vector<std::string> wanted = ids.empty() ? Ids(sluice::v1::QUEUE_STATE_UNSPECIFIED) : ids;
  std::vector<std::string> taken;
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& id : wanted) {
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr || !Transferable(*p)) {
      if (skipped != nullptr && !ids.empty()) skipped->push_back(id);
      continue;
    }
    index_.Update(id, [](IndexEntry& x) { x.busy = true; });
    taken.push_back(id);
  }
  UpdateGauges();
  return taken;
}

std::vector<std::pair<std::string, sluice::v1::QueueHandoffMark>> QueueStore::TakeMarked() {
  std::vector<std::string> ids;
  std::lock_guard<std::mutex> lock(mu_);
  index_.ForEach([&](const std::string& id, const IndexEntry& e) {
    if (!e.busy && !e.handoff_peer.empty()) ids.push_back(id);
  });
  std::vector<std::pair<std::string, sluice::v1::QueueHandoffMark>> out;
  for (const std::string& id : ids) {
    sluice::v1::QueueHandoffMark mark;
    index_.Update(id, [&](IndexEntry& x) {
      x.busy = true;
      mark.set_peer(x.handoff_peer);
    });
    out.emplace_back(id, std::move(mark));
  }
  return out;
}

size_t QueueStore::MarkedCount() const {
  size_t n = 0;
  std::lock_guard<std::mutex> lock(mu_);
  index_.ForEach([&](const std::string&, const IndexEntry& e) { n += e.handoff_peer.empty() ? 0 : 1; });
  return n;
}

absl::Status QueueStore::MarkHandoff(const std::vector<std::string>& ids, const sluice::v1::QueueHandoffMark& mark) {
  // One job per entry, all in the committer's next batches: normally one sync for them all.
  std::mutex mu;
  std::condition_variable cv;
  size_t left = ids.size();
  absl::Status first_error;
  std::vector<FrameLocation> at(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& id = ids[i];
    CommitJob job;
    job.kind = CommitJob::Kind::kHandoffMark;
    job.id = id;
    job.mark = mark;
    job.durable = true;
    job.done = [&, i](absl::Status s, FrameLocation where) {
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) at[i] = where;
      if (!s.ok() && first_error.ok()) first_error = s;
      if (--left == 0) cv.notify_all();
    };
    committer_->Submit(std::move(job));
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return left == 0; });
  }
  if (!first_error.ok()) {
    // None counts as marked (the caller ends them unsent). A mark that did reach the log is
    // resolved after a restart: the peer then takes the entry or says it has it.
    for (const FrameLocation& where : at) {
      if (where.segment != 0) log_->Ref(where.segment, -1);
    }
    return first_error;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < ids.size(); ++i) {
    index_.Update(ids[i], [&](IndexEntry& x) {
      x.handoff_peer = mark.peer();
      x.mark_at = at[i];
    });
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<sluice::v1::QueueRecord, MessageContent>> QueueStore::ReadForHandoff(const std::string& id) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    e = *p;
  }
  auto record = ReadRecord(e);
  if (!record.ok()) return record.status();
  if (record->queue_id() != id) return absl::DataLossError("record names queue id " + record->queue_id());
  record->set_state(e.state);
  auto content = Content(id);
  if (!content.ok()) return content.status();
  if (content->size() != record->size_bytes()) {
    return absl::DataLossError(absl::StrCat("queue id ", id, ": record says ", record->size_bytes(), " bytes, content has ",
                                            content->size()));
  }
  return std::make_pair(std::move(*record), std::move(*content));
}

void QueueStore::EndHandoff(const std::string& id, HandoffEnd end, const std::string& peer) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return;
    e = *p;
  }
  switch (end) {
    case HandoffEnd::kSent:
      // The peer has it durably. The remove frame rides with the next sync: a crash before it
      // brings the entry back marked, and the peer recognises the retried transfer.
      RemoveEntry(id, e, "handed off to " + peer, /*wait=*/false);
      return;
    case HandoffEnd::kUnknown:
      // Sent without an answer: the peer may have it. It stays marked (never delivered here)
      // until the peer is asked again (ResolveMarked).
      Settle(id, nullptr);
      return;
    case HandoffEnd::kNotSent:
      if (!e.handoff_peer.empty()) {
        // The peer certainly does not have it: a record frame after the mark ends it.
        absl::Status s = RewriteRecord(id, e.state, nullptr);
        if (!s.ok()) {
          observe::Warn("handoff_unmark_failed").Kv("queue_id", id).Kv("error", MessageOf(s));
          Settle(id, nullptr);  // still marked: asked after at the peer later
          return;
        }
      }
      Settle(id, [](IndexEntry& x) { x.handoff_peer.clear(); });
      return;
  }
}

}  // namespace sluice::reinject
