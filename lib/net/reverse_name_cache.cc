// lib/net/reverse_name_cache.cc -- see reverse_name_cache.h.
#include "lib/net/reverse_name_cache.h"

#include "absl/strings/string_view.h"

namespace sluice::net {
namespace {
// Abseil 20220623 keys: absl::string_view, which std::string_view is not.
absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

std::optional<std::string> ReverseNameCache::Get(std::string_view address, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key(address));
  if (it == entries_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.name;
}

bool ReverseNameCache::Put(std::string_view address, std::string name, Clock::duration ttl, size_t max_entries,
                           Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key(address));
  if (it == entries_.end() && entries_.size() >= max_entries) {
    // Full: sweep the expired ones (a scan, only when full), then look again.
    absl::erase_if(entries_, [now](const auto& e) { return e.second.expires <= now; });
    if (entries_.size() >= max_entries) return false;
  }
  Entry& e = entries_[Key(address)];
  e.name = std::move(name);
  e.expires = now + ttl;
  return true;
}

size_t ReverseNameCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace sluice::net
