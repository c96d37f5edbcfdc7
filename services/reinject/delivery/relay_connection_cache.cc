// services/reinject/delivery/relay_connection_cache.cc -- see relay_connection_cache.h.
#include "services/reinject/delivery/relay_connection_cache.h"

#include <utility>
#include <vector>

#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"

namespace sluice::reinject {
namespace {

asio::awaitable<void> QuitAndClose(std::unique_ptr<RelayConnection> connection) {
  co_await connection->client->Quit(/*wait_reply=*/true);
}

}  // namespace

RelayConnectionCache::RelayConnectionCache(absl::Duration idle_timeout, size_t max_idle)
    : idle_timeout_(idle_timeout), max_idle_(max_idle == 0 ? 1 : max_idle), state_(std::make_shared<State>()) {}

RelayConnectionCache::~RelayConnectionCache() {
  std::map<std::string, std::deque<Idle>> idle;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    idle.swap(state_->idle);
  }
  for (auto& [destination, entries] : idle) {
    for (Idle& e : entries) {
      e.timer->cancel();
      e.connection->client->Close();
    }
  }
}

void RelayConnectionCache::Retire(std::unique_ptr<RelayConnection> connection) {
  if (!connection) return;
  if (!connection->client->connected()) return;  // nothing to say goodbye on
  asio::any_io_executor executor = connection->executor;
  asio::co_spawn(executor, QuitAndClose(std::move(connection)), asio::detached);
}

std::unique_ptr<RelayConnection> RelayConnectionCache::Take(const std::string& destination,
                                                            const asio::any_io_executor& executor) {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->idle.find(destination);
  if (it == state_->idle.end()) return nullptr;
  std::deque<Idle>& entries = it->second;
  for (auto e = entries.rbegin(); e != entries.rend(); ++e) {
    if (e->connection->executor != executor) continue;
    std::unique_ptr<RelayConnection> connection = std::move(e->connection);
    e->timer->cancel();  // its handler finds the entry gone
    entries.erase(std::next(e).base());
    if (entries.empty()) state_->idle.erase(it);
    return connection;
  }
  return nullptr;
}

void RelayConnectionCache::Put(const std::string& destination, std::unique_ptr<RelayConnection> connection) {
  if (!connection || !connection->client->connected()) return;
  std::unique_ptr<RelayConnection> surplus;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    std::deque<Idle>& entries = state_->idle[destination];
    if (entries.size() >= max_idle_) {
      surplus = std::move(entries.front().connection);  // the longest idle goes
      entries.front().timer->cancel();
      entries.pop_front();
    }
    Idle e;
    e.id = state_->next_id++;
    e.timer = std::make_unique<asio::steady_timer>(connection->executor);
    e.timer->expires_after(absl::ToChronoNanoseconds(idle_timeout_));
    std::weak_ptr<State> weak = state_;
    e.timer->async_wait([weak, destination, id = e.id](std::error_code ec) {
      if (!ec) Expire(weak, destination, id);
    });
    e.connection = std::move(connection);
    entries.push_back(std::move(e));
  }
  Retire(std::move(surplus));
}

void RelayConnectionCache::Expire(const std::weak_ptr<State>& weak, const std::string& destination, uint64_t id) {
  std::shared_ptr<State> state = weak.lock();
  if (!state) return;
  std::unique_ptr<RelayConnection> expired;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    auto it = state->idle.find(destination);
    if (it == state->idle.end()) return;
    for (auto e = it->second.begin(); e != it->second.end(); ++e) {
      if (e->id != id) continue;
      expired = std::move(e->connection);
      it->second.erase(e);  // destroys the timer whose handler this is: its wait is over
      break;
    }
    if (it->second.empty()) state->idle.erase(it);
  }
  Retire(std::move(expired));
}

size_t RelayConnectionCache::idle() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  size_t n = 0;
  for (const auto& [destination, entries] : state_->idle) n += entries.size();
  return n;
}

}  // namespace sluice::reinject
