// services/reinject/delivery/relay_connection_cache.h
//
// Idle relay connections kept for the next message to the same next hop (Postfix smtp(8)
// with its connection cache): a connection whose transaction ended cleanly is put back
// here, and the next delivery to that destination takes it (and probes it with RSET)
// instead of connecting, greeting and saying EHLO again. An idle connection is closed with
// QUIT after `idle_timeout` (Postfix smtp_connection_cache_time_limit, 2 s); at most
// `max_idle` are kept per destination. The caller decides when a connection has carried
// enough messages (delivery_connection_reuse_limit) and does not put it back then.
//
// Thread-safe. A connection is handed out only on the executor it was made on (its socket
// belongs to that event loop). Destroy the cache while that event loop still exists.
//
// Never: hands one connection to two callers; keeps a connection past its idle time.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "asio/steady_timer.hpp"
#include "lib/smtp/client_session.h"

namespace sluice::reinject {

struct RelayConnection {
  std::unique_ptr<smtp::SmtpClient> client;
  asio::any_io_executor executor;  // the client's event loop
  uint32_t messages = 0;           // transactions carried so far
};

class RelayConnectionCache {
 public:
  RelayConnectionCache(absl::Duration idle_timeout, size_t max_idle);
  ~RelayConnectionCache();  // closes every idle connection (no QUIT: the loops may be gone)
  RelayConnectionCache(const RelayConnectionCache&) = delete;
  RelayConnectionCache& operator=(const RelayConnectionCache&) = delete;

  // The most recently used idle connection to `destination` made on `executor`, or null.
  std::unique_ptr<RelayConnection> Take(const std::string& destination, const asio::any_io_executor& executor);
  // Keeps `connection` (connected, between transactions) for later.
  void Put(const std::string& destination, std::unique_ptr<RelayConnection> connection);
  size_t idle() const;

  // Ends a connection politely (QUIT, not awaiting 221 for long) on its own executor.
  static void Retire(std::unique_ptr<RelayConnection> connection);

 private:
  struct Idle {
    uint64_t id = 0;
    std::unique_ptr<RelayConnection> connection;
    std::unique_ptr<asio::steady_timer> timer;
  };
  struct State {
    std::mutex mu;
    std::map<std::string, std::deque<Idle>> idle;
    uint64_t next_id = 1;
  };
  static void Expire(const std::weak_ptr<State>& state, const std::string& destination, uint64_t id);

  const absl::Duration idle_timeout_;
  const size_t max_idle_;
  std::shared_ptr<State> state_;
};

}  // namespace sluice::reinject
