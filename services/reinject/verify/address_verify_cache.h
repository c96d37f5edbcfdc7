// services/reinject/verify/address_verify_cache.h
//
// The answers of recipient verification, Postfix verify(8)'s cache, in memory: address ->
// deliverable or not, the final destination's reply, when it was learned. Lifetimes are
// Postfix's (Limits.address_verify_*): a positive answer is used for positive_expire (31d)
// and refreshed by a new probe once older than positive_refresh (7d); a negative one is
// used for negative_expire (3d), refreshed after negative_refresh (3h); an expired entry is
// a miss. While a refresh probe is out, the old answer stays in use, and a failed refresh
// is not tried again for kRefreshRetry (Postfix's PROBE_TTL, 1000 s). As in Postfix, a
// negative answer never replaces a positive one before that expires (as long as some
// probes succeed, the address stays deliverable). At most max_entries addresses: the least
// recently used goes first.
//
// The cache is per reinject replica. Sharing it between replicas (Redis) waits for the
// frontend's shared_limits (issue 10), which does not exist yet; until then each replica
// probes for itself.
//
// Thread-safe; the time is the caller's (tests bring their own clock).
//
// Never: stores a deferred (4xx) or failed probe -- they say nothing about the address;
// stores a negative answer when negative caching is off; holds more than max_entries.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::reinject {

// The cache's settings, from the Limits in force (and ReinjectConfig's negative cache).
struct VerifyCachePolicy {
  absl::Duration positive_expire;
  absl::Duration positive_refresh;
  absl::Duration negative_expire;
  absl::Duration negative_refresh;
  size_t max_entries = 1;
  bool negative_cache = true;

  static VerifyCachePolicy From(const sluice::v1::Limits& limits, bool negative_cache);
};

// The key of an address: the local part as given (it may be case-sensitive, RFC 5321
// §2.4), the domain in lower case.
std::string VerifyKey(std::string_view address);

struct CachedAnswer {
  bool deliverable = false;
  std::string reply;  // the final destination's reply to RCPT
  absl::Time learned;
};

class AddressVerifyCache {
 public:
  // A failed refresh probe is not repeated sooner than this (Postfix verify.c PROBE_TTL).
  static constexpr absl::Duration kRefreshRetry = absl::Seconds(1000);

  struct Found {
    CachedAnswer answer;
    bool refresh = false;  // old enough that a new probe should refresh it (not yet tried)
  };

  // The answer for `key` if it has not expired (an expired one is dropped).
  std::optional<Found> Find(const std::string& key, absl::Time now, const VerifyCachePolicy& policy);
  // A refresh probe for `key` starts now: no other one for kRefreshRetry.
  void MarkRefreshing(const std::string& key, absl::Time now);
  // Keeps a definite answer. False when it is not kept (negative with negative caching
  // off, or negative over an unexpired positive answer).
  bool Store(const std::string& key, bool deliverable, std::string reply, absl::Time now,
             const VerifyCachePolicy& policy);

  size_t size() const;
  uint64_t evictions() const;  // entries dropped for max_entries

 private:
  struct Entry {
    std::string key;
    CachedAnswer answer;
    absl::Time refresh_started = absl::InfinitePast();
  };
  bool Expired(const Entry& e, absl::Time now, const VerifyCachePolicy& policy) const;

  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_;
  uint64_t evictions_ = 0;
};

}  // namespace sluice::reinject
