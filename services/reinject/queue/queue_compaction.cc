// services/reinject/queue/queue_compaction.cc -- QueueStore::Compact (see queue_store.h):
// the live entries still in the oldest segment are written again at the end of the log
// (record, and content when it is inline), so that the oldest segment loses its last
// reference and is removed (SegmentLog::RemoveDead). Entries being delivered or changed
// are left for the next round, and so are entries marked for a hand-off (a copy would end
// the mark).
//
// Never: moves an entry that is busy; lets go of an old location before the new one is
// durable.
#include <future>

#include "lib/observe/log.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

size_t QueueStore::Compact() {
  // An idle queue's active segment holding nothing live gives way, so it can go too.
  log_->RotateIfDead(1 << 20);
  log_->RemoveDead();
  if (log_->count() < options_.compact_at_segments) return 0;
  const uint64_t oldest = log_->oldest();
  if (oldest == 0 || oldest == log_->active()) return 0;
  std::vector<std::pair<std::string, IndexEntry>> moving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> ids;
    index_.ForEach([&](const std::string& id, const IndexEntry& e) {
      // A marked entry keeps its place: a new record frame would end its hand-off mark.
      if (e.busy || e.state == sluice::v1::CORRUPT || !e.handoff_peer.empty()) return;
      bool in_oldest = e.record_at.segment == oldest || (!e.content.spilled() && e.content.segment() == oldest);
      if (in_oldest) ids.push_back(id);
    });
    for (const std::string& id : ids) {
      index_.Update(id, [](IndexEntry& x) { x.busy = true; });
      moving.emplace_back(id, *index_.Find(id));
    }
  }
  struct Move {
    std::string id;
    IndexEntry old;
    uint64_t inline_bytes = 0;
    std::future<std::pair<absl::Status, FrameLocation>> result;
  };
  std::vector<Move> moves;
  for (auto& [id, e] : moving) {
    CommitJob job;
    job.kind = CommitJob::Kind::kRecord;
    job.durable = true;
    job.flags = e.received ? kFrameFlagReceived : 0;
    auto record = ReadRecord(e);
    absl::Status problem = record.status();
    if (record.ok()) *job.log.mutable_record() = std::move(*record);
    if (problem.ok() && e.content.spilled()) {
      *job.log.mutable_content() = e.content;
    } else if (problem.ok()) {
      auto content = log_->Read(e.content.segment(), e.content.offset(), e.content.length());
      problem = content.status();
      if (content.ok()) job.inline_content = std::move(*content);
    }
    if (!problem.ok()) {
      observe::Warn("queue_compaction_skipped").Kv("queue_id", id).Kv("error", MessageOf(problem));
      Settle(id, nullptr);
      continue;
    }
    auto promise = std::make_shared<std::promise<std::pair<absl::Status, FrameLocation>>>();
    Move m{id, e, job.inline_content.size(), promise->get_future()};
    job.done = [promise](absl::Status s, FrameLocation at) { promise->set_value({std::move(s), at}); };
    committer_->Submit(std::move(job));
    moves.push_back(std::move(m));
  }
  size_t moved = 0;
  for (Move& m : moves) {
    auto [status, at] = m.result.get();
    if (!status.ok()) {
      observe::Warn("queue_compaction_failed").Kv("queue_id", m.id).Kv("error", MessageOf(status));
      Settle(m.id, nullptr);
      continue;
    }
    ReleaseLocation(m.old);
    sluice::v1::QueueContentRef content = m.old.content;
    if (!content.spilled()) {
      content.set_segment(at.segment);
      content.set_offset(at.offset + at.size - m.inline_bytes);
      log_->Ref(at.segment, +1);
    }
    Settle(m.id, [&](IndexEntry& x) {
      x.record_at = at;
      x.content = content;
      x.fresh.reset();
    });
    ++moved;
  }
  if (moved > 0) {
    observe::Info("queue_compacted").Kv("segment", oldest).Kv("entries_moved", static_cast<uint64_t>(moved));
  }
  log_->RemoveDead();
  return moved;
}

}  // namespace sluice::reinject
