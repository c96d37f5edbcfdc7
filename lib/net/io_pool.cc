// lib/net/io_pool.cc -- see io_pool.h.
#include "lib/net/io_pool.h"

namespace sluice::net {

IoPool::IoPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    // concurrency hint 1: each context is run by exactly one thread, so Asio may skip locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(std::make_unique<Guard>(contexts_.back()->get_executor()));
  }
}

IoPool::~IoPool() { Stop(); }

void IoPool::Start() {
  for (auto& ctx : contexts_) {
    asio::io_context* c = ctx.get();
    threads_.emplace_back([c] { c->run(); });
  }
}

void IoPool::Join() {
  guards_.clear();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void IoPool::Stop() {
  guards_.clear();
  for (auto& ctx : contexts_) ctx->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

asio::io_context& IoPool::next() {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

}  // namespace sluice::net
