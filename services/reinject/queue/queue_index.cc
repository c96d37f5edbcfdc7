// services/reinject/queue/queue_index.cc -- see queue_index.h.
#include "services/reinject/queue/queue_index.h"

#include <algorithm>

namespace sluice::reinject {

bool QueueIndex::Schedulable(const IndexEntry& e) {
  return !e.busy && e.handoff_peer.empty() &&
         (e.state == sluice::v1::INCOMING || e.state == sluice::v1::ACTIVE || e.state == sluice::v1::DEFERRED);
}

void QueueIndex::File(const std::string& id, const IndexEntry& e) {
  size_t s = static_cast<size_t>(e.state) < totals_.messages.size() ? static_cast<size_t>(e.state) : 0;
  totals_.messages[s] += 1;
  totals_.bytes[s] += e.size_bytes;
  totals_.total_bytes += e.size_bytes;
  if (Schedulable(e)) schedule_.emplace(e.due_at, id);
}

void QueueIndex::Unfile(const std::string& id, const IndexEntry& e) {
  size_t s = static_cast<size_t>(e.state) < totals_.messages.size() ? static_cast<size_t>(e.state) : 0;
  totals_.messages[s] -= 1;
  totals_.bytes[s] -= e.size_bytes;
  totals_.total_bytes -= e.size_bytes;
  schedule_.erase({e.due_at, id});
}

void QueueIndex::Insert(const std::string& id, IndexEntry entry) {
  Erase(id);
  auto [it, inserted] = entries_.emplace(id, std::move(entry));
  (void)inserted;
  File(it->first, it->second);
}

const IndexEntry* QueueIndex::Find(const std::string& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

void QueueIndex::Erase(const std::string& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Unfile(it->first, it->second);
  entries_.erase(it);
}

std::vector<std::string> QueueIndex::TakeDue(absl::Time now, size_t max) {
  std::vector<std::string> out;
  while (out.size() < max && !schedule_.empty() && schedule_.begin()->first <= now) {
    std::string id = schedule_.begin()->second;
    Update(id, [](IndexEntry& e) { e.busy = true; });
    out.push_back(std::move(id));
  }
  return out;
}

bool QueueIndex::HasDue(absl::Time now) const {
  return !schedule_.empty() && schedule_.begin()->first <= now;
}

absl::Time QueueIndex::NextDue() const {
  return schedule_.empty() ? absl::InfiniteFuture() : schedule_.begin()->first;
}

absl::Time QueueIndex::OldestArrival() const {
  absl::Time oldest = absl::InfiniteFuture();
  for (const auto& [id, e] : entries_) {
    if (e.state != sluice::v1::CORRUPT && e.arrived_at < oldest) oldest = e.arrived_at;
  }
  return oldest;
}

std::vector<std::pair<std::string, IndexEntry>> QueueIndex::Snapshot() const {
  std::vector<std::pair<std::string, IndexEntry>> out(entries_.begin(), entries_.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

}  // namespace sluice::reinject
