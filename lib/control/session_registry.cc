// lib/control/session_registry.cc -- see session_registry.h.
#include "lib/control/session_registry.h"

#include <algorithm>
#include <utility>

#include "absl/hash/hash.h"
#include "google/protobuf/util/time_util.h"
#include "lib/control/session_id.h"

namespace sluice::control {

using sluice::v1::SessionMetadata;

SessionHandle::SessionHandle(SessionRegistry* registry, uint64_t seq, SessionMetadata meta)
    : registry_(registry), seq_(seq), indexed_id_(meta.session_id()), meta_(std::move(meta)) {}

SessionHandle::~SessionHandle() {
  registry_->Erase(this, indexed_id_);
  registry_->active_.fetch_sub(1, std::memory_order_relaxed);
}

void SessionHandle::Update(absl::FunctionRef<void(SessionMetadata&)> mutate) {
  std::string new_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string old_id = meta_.session_id();
    mutate(meta_);
    if (meta_.session_id().empty()) meta_.set_session_id(old_id);
    if (meta_.session_id() != old_id) new_id = meta_.session_id();
  }
  if (!new_id.empty()) registry_->Reindex(this, new_id);
}

void SessionHandle::SetKiller(std::function<void()> killer) {
  std::lock_guard<std::mutex> lock(mu_);
  killer_ = std::move(killer);
}

SessionMetadata SessionHandle::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return meta_;
}

std::string SessionHandle::session_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return meta_.session_id();
}

SessionRegistry::SessionRegistry(std::string stage, std::string instance)
    : stage_(std::move(stage)), instance_(std::move(instance)) {}

SessionRegistry::~SessionRegistry() = default;

namespace {
// Abseil 20220623 keys: absl::string_view, which std::string_view is not.
absl::string_view Key(std::string_view id) { return absl::string_view(id.data(), id.size()); }
}  // namespace

SessionRegistry::Shard& SessionRegistry::ShardFor(std::string_view id) {
  return shards_[absl::Hash<absl::string_view>{}(Key(id)) % kShards];
}

const SessionRegistry::Shard& SessionRegistry::ShardFor(std::string_view id) const {
  return shards_[absl::Hash<absl::string_view>{}(Key(id)) % kShards];
}

std::shared_ptr<SessionHandle> SessionRegistry::Register(SessionMetadata initial) {
  if (initial.session_id().empty()) initial.set_session_id(NewSessionId());
  if (initial.stage().empty()) initial.set_stage(stage_);
  if (initial.instance().empty()) initial.set_instance(instance_);
  if (!initial.has_connected_at()) {
    *initial.mutable_connected_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  }
  uint64_t seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<SessionHandle> handle(new SessionHandle(this, seq, std::move(initial)));
  active_.fetch_add(1, std::memory_order_relaxed);
  Insert(handle.get(), handle->indexed_id_);
  return handle;
}

void SessionRegistry::Insert(SessionHandle* handle, const std::string& id) {
  Shard& shard = ShardFor(id);
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.by_id[id].push_back(handle);
}

void SessionRegistry::Erase(SessionHandle* handle, const std::string& id) {
  Shard& shard = ShardFor(id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.by_id.find(id);
  if (it == shard.by_id.end()) return;
  auto& handles = it->second;
  handles.erase(std::remove(handles.begin(), handles.end(), handle), handles.end());
  if (handles.empty()) shard.by_id.erase(it);
}

void SessionRegistry::Reindex(SessionHandle* handle, const std::string& new_id) {
  std::lock_guard<std::mutex> lock(reindex_mu_);
  if (handle->indexed_id_ == new_id) return;
  // Insert first, then erase: a concurrent Get finds the session under one id or the other.
  Insert(handle, new_id);
  Erase(handle, handle->indexed_id_);
  handle->indexed_id_ = new_id;
}

std::vector<SessionMetadata> SessionRegistry::List(
    const sluice::v1::ListSessionsRequest& request) const {
  std::vector<std::pair<uint64_t, SessionMetadata>> found;
  found.reserve(active());
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [id, handles] : shard.by_id) {
      for (const SessionHandle* h : handles) {
        std::lock_guard<std::mutex> hlock(h->mu_);
        if (!request.client_address().empty() &&
            h->meta_.client_address() != request.client_address()) {
          continue;
        }
        found.emplace_back(h->seq_, h->meta_);
      }
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<SessionMetadata> out;
  out.reserve(found.size());
  for (auto& [seq, meta] : found) out.push_back(std::move(meta));
  return out;
}

std::optional<SessionMetadata> SessionRegistry::Get(std::string_view session_id) const {
  const Shard& shard = ShardFor(session_id);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.by_id.find(Key(session_id));
  if (it == shard.by_id.end() || it->second.empty()) return std::nullopt;
  const SessionHandle* newest = it->second.front();
  for (const SessionHandle* h : it->second) {
    if (h->seq_ > newest->seq_) newest = h;
  }
  std::lock_guard<std::mutex> hlock(newest->mu_);
  return newest->meta_;
}

bool SessionRegistry::Kill(std::string_view session_id) {
  // Keep each handle alive while its killer runs, outside every registry lock.
  std::vector<std::shared_ptr<SessionHandle>> targets;
  {
    Shard& shard = ShardFor(session_id);
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.by_id.find(Key(session_id));
    if (it == shard.by_id.end()) return false;
    for (SessionHandle* h : it->second) {
      // Null when the handle is being destroyed (its destructor waits for this lock).
      if (auto alive = h->weak_from_this().lock()) targets.push_back(std::move(alive));
    }
  }
  bool killed = false;
  for (const auto& h : targets) {
    std::function<void()> killer;
    {
      std::lock_guard<std::mutex> lock(h->mu_);
      killer = h->killer_;
    }
    if (killer) {
      killer();
      killed = true;
    }
  }
  return killed;
}

}  // namespace sluice::control
