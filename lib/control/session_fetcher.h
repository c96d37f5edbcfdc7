// lib/control/session_fetcher.h
//
// Admin.GetSession from the downstream side: a stage that got a connection with XFORWARD
// IDENT=<session id> asks the upstream stage that owns the session (its admin address) for
// the full SessionMetadata (TLS, SASL, PROXY facts XFORWARD cannot carry). Short timeouts,
// one channel per address, and a small LRU cache with a TTL: the several transactions of
// one client session (one downstream hop each) cost one call.
//
// FetchAsync never blocks: a cache hit calls `done` at once on the caller's thread, a miss
// calls it later on a gRPC thread. From an Asio coroutine, post back to the session's
// executor in `done`:
//
//   fetcher.FetchAsync(addr, id, absl::Milliseconds(500),
//       [ex, handler](absl::StatusOr<SessionMetadata> r) mutable {
//         asio::post(ex, [h = std::move(handler), r = std::move(r)]() mutable { h(std::move(r)); });
//       });
//
// Never: caches a failure (the owner may not have registered the session yet); delays a
// session beyond its timeout; calls `done` twice or not at all (destruction cancels calls
// in flight and waits for their callbacks).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/control/admin_channel.h"
#include "sluice/v1/admin.grpc.pb.h"
#include "sluice/v1/session.pb.h"

namespace sluice::control {

struct SessionFetcherOptions {
  AdminClientOptions client;
  absl::Duration cache_ttl = absl::Seconds(30);
  size_t cache_capacity = 4096;
};

class SessionFetcher {
 public:
  using Callback = std::function<void(absl::StatusOr<sluice::v1::SessionMetadata>)>;

  explicit SessionFetcher(SessionFetcherOptions options = {});
  ~SessionFetcher();  // cancels calls in flight; waits for their callbacks
  SessionFetcher(const SessionFetcher&) = delete;
  SessionFetcher& operator=(const SessionFetcher&) = delete;

  void FetchAsync(const std::string& admin_address, const std::string& session_id,
                  absl::Duration timeout, Callback done);
  // Blocking form, for tools and tests (not for io threads).
  absl::StatusOr<sluice::v1::SessionMetadata> Fetch(const std::string& admin_address,
                                                    const std::string& session_id,
                                                    absl::Duration timeout);

  uint64_t calls() const;  // RPCs started (cache misses)
  uint64_t hits() const;   // answered from the cache

 private:
  struct Call;
  struct CacheEntry {
    std::string key;
    sluice::v1::SessionMetadata meta;
    absl::Time expires;
  };

  sluice::v1::Admin::Stub* StubFor(const std::string& admin_address);  // under mu_
  bool Lookup(const std::string& key, sluice::v1::SessionMetadata* out);  // under mu_
  void Store(const std::string& key, const sluice::v1::SessionMetadata& meta);  // under mu_
  void Finished(Call* call, const grpc::Status& status);

  const SessionFetcherOptions options_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  absl::flat_hash_map<std::string, std::unique_ptr<sluice::v1::Admin::Stub>> stubs_;
  std::list<CacheEntry> lru_;  // most recently used first
  absl::flat_hash_map<std::string, std::list<CacheEntry>::iterator> cache_;
  absl::flat_hash_set<Call*> in_flight_;
  bool closing_ = false;
  uint64_t calls_ = 0;
  uint64_t hits_ = 0;
};

}  // namespace sluice::control
