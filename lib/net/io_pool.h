// lib/net/io_pool.h
//
// The process's event loops: one asio::io_context per thread, one thread per core (or as
// configured). Each SMTP session lives on one context for its whole life, so its state is
// never shared across threads without a lock.
//
// Never: runs a blocking call on a context thread (blocking work goes to its own thread).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"

namespace sluice::net {

class IoPool {
 public:
  // threads == 0: one per core.
  explicit IoPool(unsigned threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // Starts the threads; returns at once.
  void Start();
  // Lets the loops finish (drops the work guards) and joins; pending work completes first.
  void Join();
  // Stops the loops now (pending handlers are destroyed) and joins.
  void Stop();

  size_t size() const { return contexts_.size(); }
  asio::io_context& context(size_t i) { return *contexts_[i]; }
  // Round-robin choice for work not bound to a session (e.g. delivery).
  asio::io_context& next();

 private:
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::unique_ptr<Guard>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace sluice::net
