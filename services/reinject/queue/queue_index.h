// services/reinject/queue/queue_index.h
//
// The store's in-memory picture of the queue: one small entry per message (state, size,
// arrival, when it is next due, whether someone is working on it), the schedule of entries
// eligible for delivery ordered by when they are due (never-tried and flushed entries first,
// oldest id first), and the per-state message and byte counts behind the gauges and the
// queue_max_bytes admission check. Rebuilt from the segment log at start-up.
//
// Not thread-safe: QueueStore guards it with its mutex.
// Never: schedules an entry that is busy, held, corrupt or marked for a hand-off; lets the counters drift from the
// entries (every change goes through Insert/Update/Erase).
#pragma once

#include <array>
#include <memory>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "services/reinject/queue/queue_frame.h"
#include "sluice/v1/queue.pb.h"
#include "sluice/v1/queue_log.pb.h"

namespace sluice::reinject {

struct IndexEntry {
  sluice::v1::QueueState state = sluice::v1::INCOMING;
  std::string file;  // CORRUPT: its file in corrupt/
  uint64_t size_bytes = 0;
  absl::Time arrived_at = absl::InfinitePast();
  // When the entry is next eligible; InfinitePast: now (never tried, flushed, released).
  absl::Time due_at = absl::InfinitePast();
  // Someone (the scheduler or an operator call) is changing the files of this entry; others
  // leave requests instead of touching them.
  bool busy = false;
  bool pending_delete = false;
  bool pending_hold = false;
  std::string hold_reason;
  // On disk (every state but CORRUPT): the latest record frame, and where the content is
  // (always resolved: a segment range, or spilled to large/<ID>). The entry holds one
  // segment reference for each (SegmentLog::Ref).
  FrameLocation record_at;
  sluice::v1::QueueContentRef content;
  // The record as committed, until the scheduler first claims it (no read from disk then).
  std::shared_ptr<const sluice::v1::QueueRecord> fresh;
  // Handed over by a peer replica (kFrameFlagReceived): its end is remembered in the
  // received ledger (received_ledger.h), so a retried transfer is recognised.
  bool received = false;
  // On its way to this peer (a hand-off mark in the log): never scheduled here until the
  // peer has said whether it has it.
  std::string handoff_peer;
  FrameLocation mark_at;  // that mark, holding a reference on its segment while in force
};

struct QueueTotals {
  std::array<uint64_t, 6> messages{};  // by QueueState
  std::array<uint64_t, 6> bytes{};
  uint64_t total_bytes = 0;  // every state
};

class QueueIndex {
 public:
  // Replaces an entry of the same id.
  void Insert(const std::string& id, IndexEntry entry);
  const IndexEntry* Find(const std::string& id) const;
  // Applies `change` to the entry and re-files it (counts, schedule). False when absent.
  template <typename F>
  bool Update(const std::string& id, F&& change) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    Unfile(it->first, it->second);
    change(it->second);
    File(it->first, it->second);
    return true;
  }
  void Erase(const std::string& id);

  // Up to `max` eligible entries due at `now`, in schedule order, each marked busy.
  std::vector<std::string> TakeDue(absl::Time now, size_t max);
  bool HasDue(absl::Time now) const;
  // When the first not-yet-due entry falls due; InfiniteFuture when none.
  absl::Time NextDue() const;

  const QueueTotals& totals() const { return totals_; }
  // Oldest arrival among entries that are not corrupt; InfiniteFuture when none.
  absl::Time OldestArrival() const;
  size_t size() const { return entries_.size(); }

  template <typename F>
  void ForEach(F&& f) const {
    for (const auto& [id, e] : entries_) f(id, e);
  }
  // Every id with its entry, for List and the "all" operator calls.
  std::vector<std::pair<std::string, IndexEntry>> Snapshot() const;

 private:
  static bool Schedulable(const IndexEntry& e);
  void File(const std::string& id, const IndexEntry& e);    // add to counts and schedule
  void Unfile(const std::string& id, const IndexEntry& e);  // remove from them

  absl::flat_hash_map<std::string, IndexEntry> entries_;
  std::set<std::pair<absl::Time, std::string>> schedule_;
  QueueTotals totals_;
};

}  // namespace sluice::reinject
