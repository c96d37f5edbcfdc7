// services/frontend/filter_pool.cc -- see filter_pool.h.
#include "services/frontend/filter_pool.h"

#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/control/limits_store.h"

namespace sluice::frontend {
namespace {

constexpr auto kNothrow = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<void> QuitAndClose(std::unique_ptr<smtp::HopConnection> c) {
  // As Postfix's connection cache: QUIT, without waiting for the 221.
  co_await c->client->Quit(/*wait_reply=*/false);
}

void CloseDetached(const asio::any_io_executor& executor, std::unique_ptr<smtp::HopConnection> c) {
  asio::co_spawn(executor, QuitAndClose(std::move(c)), asio::detached);
}

}  // namespace

struct FilterPool::Shard {
  explicit Shard(asio::io_context& io) : context(&io), executor(io.get_executor()), timer(io) {}
  asio::execution_context* context;
  asio::any_io_executor executor;
  std::deque<std::unique_ptr<smtp::HopConnection>> idle;  // oldest first
  asio::steady_timer timer;                               // the sweep's wake-up
  bool sweeping = false;
};

FilterPool::FilterPool(net::IoPool& io, control::LimitsStore& limits, FrontendMetrics& metrics)
    : limits_(limits), metrics_(metrics) {
  for (size_t i = 0; i < io.size(); ++i) shards_.push_back(std::make_shared<Shard>(io.context(i)));
}

FilterPool::~FilterPool() = default;

const std::shared_ptr<FilterPool::Shard>* FilterPool::ShardFor(const asio::any_io_executor& executor) {
  asio::execution_context* context = &asio::query(executor, asio::execution::context);
  for (const auto& s : shards_) {
    if (s->context == context) return &s;
  }
  return nullptr;
}

std::unique_ptr<smtp::HopConnection> FilterPool::Take(const asio::any_io_executor& executor) {
  const std::shared_ptr<Shard>* found = ShardFor(executor);
  if (found == nullptr || closed_.load()) return nullptr;
  Shard& s = **found;
  std::shared_ptr<const sluice::v1::Limits> limits = limits_.Get();
  auto now = smtp::HopConnection::Clock::now();
  while (!s.idle.empty()) {
    std::unique_ptr<smtp::HopConnection> c = std::move(s.idle.back());
    s.idle.pop_back();
    std::string_view limit = smtp::ReuseLimitReached(*c, *limits, now);
    if (limit.empty()) return c;
    metrics_.LimitHit(limit);  // the sweep had not come round to it yet, or a limit was lowered
    CloseDetached(s.executor, std::move(c));
  }
  return nullptr;
}

void FilterPool::Return(const asio::any_io_executor& executor, std::unique_ptr<smtp::HopConnection> c) {
  const std::shared_ptr<Shard>* found = ShardFor(executor);
  if (found == nullptr || closed_.load() || !c->client->connected()) {
    CloseDetached(executor, std::move(c));
    return;
  }
  const std::shared_ptr<Shard>& shard = *found;
  Shard& s = *shard;
  c->idle_since = smtp::HopConnection::Clock::now();
  std::string_view limit = smtp::ReuseLimitReached(*c, *limits_.Get(), c->idle_since);
  if (!limit.empty()) {
    metrics_.LimitHit(limit);
    CloseDetached(s.executor, std::move(c));
    return;
  }
  s.idle.push_back(std::move(c));
  if (!s.sweeping) {
    s.sweeping = true;
    asio::co_spawn(s.executor, Sweep(shard), asio::detached);
  }
}

asio::awaitable<void> FilterPool::Sweep(std::shared_ptr<Shard> shard) {
  Shard& s = *shard;
  while (!s.idle.empty() && !closed_.load()) {
    auto idle_limit = std::chrono::seconds(limits_.Get()->hop_connection_idle_limit_seconds());
    auto expiry = s.idle.front()->idle_since + idle_limit;
    if (smtp::HopConnection::Clock::now() >= expiry) {
      std::unique_ptr<smtp::HopConnection> c = std::move(s.idle.front());
      s.idle.pop_front();
      metrics_.LimitHit("hop_connection_idle");
      CloseDetached(s.executor, std::move(c));
      continue;
    }
    s.timer.expires_at(expiry);
    co_await s.timer.async_wait(kNothrow);
  }
  s.sweeping = false;
}

void FilterPool::Close() {
  closed_.store(true);
  for (const auto& shard : shards_) {
    asio::post(shard->executor, [shard] {
      shard->timer.cancel();
      while (!shard->idle.empty()) {
        CloseDetached(shard->executor, std::move(shard->idle.front()));
        shard->idle.pop_front();
      }
    });
  }
}

void FilterPool::Reopen() { closed_.store(false); }

}  // namespace sluice::frontend
