// lib/control/session_registry.h
//
// The live SMTP sessions of this process, for Admin.ListSessions/GetSession/KillSession.
// A session registers when it starts and holds the returned handle for its lifetime: it
// updates its SessionMetadata through the handle (a per-session mutex, so the admin thread
// reading it never races the io thread writing it), gives it a kill callback, and
// deregisters by dropping it (RAII).
//
//   auto handle = registry.Register(std::move(meta));     // session_id assigned if empty
//   handle->SetKiller([ex, weak] { asio::post(ex, [weak] { if (auto s = weak.lock()) s->Close(); }); });
//   handle->Update([&](sluice::v1::SessionMetadata& m) { m.set_helo(helo); });
//
// Sessions are indexed by session_id in 16 sharded hash maps: register, deregister and
// lookup are O(1) under one shard's mutex; several local sessions may share an id (the
// downstream stages may carry several transactions of the same client session on different
// connections) and Get answers the most recently registered one.
//
// Never: runs a kill callback under a registry lock; calls into a session other than by its
// kill callback; is destroyed before the last handle it gave out (StageRuntime owns it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "sluice/v1/admin.pb.h"
#include "sluice/v1/session.pb.h"

namespace sluice::control {

class SessionRegistry;

// One registered session. Update/SetKiller may be called from any thread; a handle is
// dropped by the session that owns it.
class SessionHandle : public std::enable_shared_from_this<SessionHandle> {
 public:
  ~SessionHandle();  // deregisters
  SessionHandle(const SessionHandle&) = delete;
  SessionHandle& operator=(const SessionHandle&) = delete;

  // Runs `mutate` on the record under the session's mutex. Changing session_id (a
  // downstream stage learning XFORWARD IDENT after it registered) re-indexes the session;
  // an empty id is not allowed and keeps the old one.
  void Update(absl::FunctionRef<void(sluice::v1::SessionMetadata&)> mutate);

  // What KillSession runs, on the admin thread: it must only schedule the close on the
  // session's own executor (asio::post) and return. It may run just after the session
  // ended, so it must capture what keeps that safe (a weak_ptr).
  void SetKiller(std::function<void()> killer);

  sluice::v1::SessionMetadata Snapshot() const;
  std::string session_id() const;

 private:
  friend class SessionRegistry;
  SessionHandle(SessionRegistry* registry, uint64_t seq, sluice::v1::SessionMetadata meta);

  SessionRegistry* const registry_;
  const uint64_t seq_;          // registration order: higher is more recent
  std::string indexed_id_;      // the key it is indexed under; changed by Reindex only
  mutable std::mutex mu_;
  sluice::v1::SessionMetadata meta_;
  std::function<void()> killer_;
};

class SessionRegistry {
 public:
  // stage/instance fill the records that leave them empty.
  SessionRegistry(std::string stage, std::string instance);
  ~SessionRegistry();
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // Registers a session. An empty session_id gets NewSessionId(); empty stage/instance
  // and an unset connected_at are filled in.
  std::shared_ptr<SessionHandle> Register(sluice::v1::SessionMetadata initial);

  size_t active() const { return active_.load(std::memory_order_relaxed); }

  // Every live session (optionally of one client address), oldest first.
  std::vector<sluice::v1::SessionMetadata> List(const sluice::v1::ListSessionsRequest& request) const;

  // The most recently registered session with this id.
  std::optional<sluice::v1::SessionMetadata> Get(std::string_view session_id) const;

  // Runs the kill callback of every session with this id; false when none has one.
  bool Kill(std::string_view session_id);

 private:
  friend class SessionHandle;
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, absl::InlinedVector<SessionHandle*, 1>> by_id;
  };

  Shard& ShardFor(std::string_view id);
  const Shard& ShardFor(std::string_view id) const;
  void Insert(SessionHandle* handle, const std::string& id);
  void Erase(SessionHandle* handle, const std::string& id);
  void Reindex(SessionHandle* handle, const std::string& new_id);

  const std::string stage_;
  const std::string instance_;
  std::atomic<size_t> active_{0};
  std::atomic<uint64_t> next_seq_{1};
  std::mutex reindex_mu_;  // serializes re-indexing (rare: once per downstream session)
  Shard shards_[kShards];
};

}  // namespace sluice::control
