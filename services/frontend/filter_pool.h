// services/frontend/filter_pool.h
//
// The frontend's idle connections to its filter stage, kept for the next transaction
// (FrontendConfig.filter_connection_reuse), one pool per io thread: a session only ever takes
// a connection made on its own thread, so a pool is never shared across threads and needs no
// lock. The most recently parked connection is taken first, so a quiet period lets the
// others reach hop_connection_idle_limit_seconds; a sweep per thread closes them then (with
// QUIT, as Postfix's connection cache does). A connection past a reuse limit is closed
// instead of parked or taken; each such close is counted under the limit's name.
//
// Never: hands a connection to a session of another thread; parks a connection while the
// stage drains or stops; keeps one idle past the idle limit longer than one sweep.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/steady_timer.hpp"
#include "lib/net/io_pool.h"
#include "lib/smtp/hop_connection.h"
#include "services/frontend/frontend_metrics.h"

namespace sluice::control {
class LimitsStore;
}

namespace sluice::frontend {

class FilterPool {
 public:
  FilterPool(net::IoPool& io, control::LimitsStore& limits, FrontendMetrics& metrics);
  ~FilterPool();
  FilterPool(const FilterPool&) = delete;
  FilterPool& operator=(const FilterPool&) = delete;

  // An idle connection made on `executor`'s thread, or null. Call on that thread.
  std::unique_ptr<smtp::HopConnection> Take(const asio::any_io_executor& executor);
  // Parks a connection whose transaction is over (the filter holds none open: the caller
  // said RSET after one that ended early); closes it instead when a reuse limit bites or the
  // pool is closed. Call on the thread the connection was made on.
  void Return(const asio::any_io_executor& executor, std::unique_ptr<smtp::HopConnection> c);

  // Drain or stop: QUIT every idle connection and park none until Reopen. Thread-safe;
  // returns at once (the QUITs go out on the io threads).
  void Close();
  void Reopen();

 private:
  struct Shard;
  const std::shared_ptr<Shard>* ShardFor(const asio::any_io_executor& executor);
  // Closes the shard's connections as they pass the idle limit; ends when it has none.
  asio::awaitable<void> Sweep(std::shared_ptr<Shard> shard);


  control::LimitsStore& limits_;
  FrontendMetrics& metrics_;
  std::atomic<bool> closed_{false};
  std::vector<std::shared_ptr<Shard>> shards_;  // one per io context, fixed at construction
};

}  // namespace sluice::frontend
