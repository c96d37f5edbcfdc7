// lib/smtp/session_server.cc -- see session_server.h.
#include "lib/smtp/session_server.h"

#include "asio/co_spawn.hpp"
#include "lib/observe/log.h"

namespace sluice::smtp {

SessionServer::SessionServer(net::IoPool& pool, AcceptFn accept) : pool_(pool), accept_(std::move(accept)) {}

SessionServer::~SessionServer() {
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_) listener_->Close();
}

absl::Status SessionServer::Start(const net::HostPort& listen) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listen_address_ = listen;
  auto l = std::make_unique<net::Listener>(pool_, [this](asio::ip::tcp::socket s) { OnAccept(std::move(s)); });
  absl::Status st = l->Listen(listen);
  if (!st.ok()) return st;
  port_ = l->port();
  listen_address_.port = port_;  // a resumed listener takes the same (maybe ephemeral) port
  listener_ = std::move(l);
  return absl::OkStatus();
}

void SessionServer::BeginDrain() {
  draining_.store(true);
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    if (listener_) {
      listener_->Close();
      closed_listeners_.push_back(std::move(listener_));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : live_) c->Drain();
}

absl::Status SessionServer::Resume() {
  draining_.store(false);
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    if (listener_) return absl::OkStatus();
  }
  return Start(listen_address_);
}

void SessionServer::KillAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : live_) c->Kill(/*shutdown=*/true);
}

bool SessionServer::EndLongestResting() {
  std::lock_guard<std::mutex> lock(mu_);
  SessionControl* longest = nullptr;
  for (const auto& c : live_) {
    int64_t since = c->resting_since();
    if (since == 0 || c->drain_requested()) continue;
    if (longest == nullptr || since < longest->resting_since()) longest = c.get();
  }
  if (longest == nullptr) return false;
  longest->Drain();
  return true;
}

size_t SessionServer::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

asio::awaitable<void> SessionServer::Refuse(SmtpStream& stream, const Reply& reply) {
  co_await stream.WriteAll(reply.Format(), std::chrono::seconds(10));
  stream.Close();
}

void SessionServer::OnAccept(asio::ip::tcp::socket socket) {
  auto ex = socket.get_executor();
  asio::co_spawn(ex, Serve(std::move(socket)), [](std::exception_ptr e) {
    // Exceptions never cross a session boundary: a bug in one session is logged, not fatal.
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      observe::Error("session_exception").Kv("what", ex.what());
    } catch (...) {
      observe::Error("session_exception").Kv("what", "unknown");
    }
  });
}

asio::awaitable<void> SessionServer::Serve(asio::ip::tcp::socket socket) {
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (ec) co_return;
  auto executor = socket.get_executor();
  SmtpStream stream(std::move(socket));
  SessionFacts facts;
  facts.peer_address = remote.address().to_string();
  // v4-mapped IPv6 peers (dual-stack listeners) are named as IPv4, as Postfix does.
  if (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()) {
    facts.peer_address = asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string();
  }
  facts.client_address = facts.peer_address;
  facts.client_port = remote.port();

  auto control = std::make_shared<SessionControl>(executor);
  if (draining_.load()) control->Drain();
  AcceptedSession session = co_await accept_(stream, facts, control);
  if (!session.handler) {
    stream.Close();
    co_return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(control);
  }
  if (draining_.load()) control->Drain();  // a drain that began while we were admitting
  co_await RunServerSession(stream, *session.handler, facts, session.settings, control);
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(control);
  }
  session.handler.reset();  // its registrations end first, so on_end sees the new counts
  if (session.on_end) session.on_end();
}

}  // namespace sluice::smtp
