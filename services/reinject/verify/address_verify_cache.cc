// services/reinject/verify/address_verify_cache.cc -- see address_verify_cache.h.
#include "services/reinject/verify/address_verify_cache.h"

#include "absl/strings/ascii.h"

namespace sluice::reinject {

VerifyCachePolicy VerifyCachePolicy::From(const sluice::v1::Limits& limits, bool negative_cache) {
  VerifyCachePolicy p;
  p.positive_expire = absl::Seconds(limits.address_verify_positive_expire_seconds());
  p.positive_refresh = absl::Seconds(limits.address_verify_positive_refresh_seconds());
  p.negative_expire = absl::Seconds(limits.address_verify_negative_expire_seconds());
  p.negative_refresh = absl::Seconds(limits.address_verify_negative_refresh_seconds());
  p.max_entries = limits.address_verify_cache_max_entries();
  p.negative_cache = negative_cache;
  return p;
}

std::string VerifyKey(std::string_view address) {
  std::string key(address);
  size_t at = key.rfind('@');
  if (at == std::string::npos) return key;
  for (size_t i = at + 1; i < key.size(); ++i) key[i] = absl::ascii_tolower(static_cast<unsigned char>(key[i]));
  return key;
}

bool AddressVerifyCache::Expired(const Entry& e, absl::Time now, const VerifyCachePolicy& policy) const {
  absl::Duration lifetime = e.answer.deliverable ? policy.positive_expire : policy.negative_expire;
  if (!e.answer.deliverable && !policy.negative_cache) return true;  // turned off since it was stored
  return now - e.answer.learned >= lifetime;
}

std::optional<AddressVerifyCache::Found> AddressVerifyCache::Find(const std::string& key, absl::Time now,
                                                                  const VerifyCachePolicy& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  Entry& e = *it->second;
  if (Expired(e, now, policy)) {
    lru_.erase(it->second);
    index_.erase(it);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  Found found;
  found.answer = e.answer;
  absl::Duration refresh_after = e.answer.deliverable ? policy.positive_refresh : policy.negative_refresh;
  found.refresh = now - e.answer.learned >= refresh_after && now - e.refresh_started >= kRefreshRetry;
  return found;
}

void AddressVerifyCache::MarkRefreshing(const std::string& key, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) it->second->refresh_started = now;
}

bool AddressVerifyCache::Store(const std::string& key, bool deliverable, std::string reply, absl::Time now,
                               const VerifyCachePolicy& policy) {
  if (!deliverable && !policy.negative_cache) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) {
    Entry& e = *it->second;
    // Postfix verify.c: a failed probe must not clobber an OK address before it expires.
    if (!deliverable && e.answer.deliverable && !Expired(e, now, policy)) return false;
    e.answer = CachedAnswer{deliverable, std::move(reply), now};
    e.refresh_started = absl::InfinitePast();
    lru_.splice(lru_.begin(), lru_, it->second);
    return true;
  }
  Entry e;
  e.key = key;
  e.answer = CachedAnswer{deliverable, std::move(reply), now};
  lru_.push_front(std::move(e));
  index_[key] = lru_.begin();
  size_t max = policy.max_entries == 0 ? 1 : policy.max_entries;
  while (lru_.size() > max) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    ++evictions_;
  }
  return true;
}

size_t AddressVerifyCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

uint64_t AddressVerifyCache::evictions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evictions_;
}

}  // namespace sluice::reinject
