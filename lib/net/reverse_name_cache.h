// lib/net/reverse_name_cache.h
//
// Verified reverse names (reverse_name.h) of recent clients, by address: a client that
// connects again within client_name_cache_seconds costs no lookup (two resolver calls and
// two thread hand-offs per connection otherwise; a sending MTA often opens many connections
// in a row). A definite answer is kept, a name or "unknown"; a lookup that timed out is not
// (the next connection asks again). At most client_name_cache_max_entries addresses: when
// full, the expired ones go, and a new address finds no room until some expire.
//
// Thread-safe (one mutex; a lookup is a hash probe).
// Never: keeps an answer past its time; grows past its bound; caches a timeout.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"

namespace sluice::net {

class ReverseNameCache {
 public:
  using Clock = std::chrono::steady_clock;

  // The cached answer for `address` while it is younger than its time, else nothing.
  std::optional<std::string> Get(std::string_view address, Clock::time_point now);
  // Keeps `name` for `address` until now + ttl. False when the cache is full of live entries
  // (the answer is then not kept: the limit bit).
  bool Put(std::string_view address, std::string name, Clock::duration ttl, size_t max_entries,
           Clock::time_point now);
  size_t size() const;

 private:
  struct Entry {
    std::string name;
    Clock::time_point expires;
  };
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_;
};

}  // namespace sluice::net
