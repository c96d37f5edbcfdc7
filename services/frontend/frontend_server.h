// services/frontend/frontend_server.h
//
// The frontend's accept path: for each connection on any io thread, the real client
// address (PROXY protocol from trusted balancers), admission (draining, max_sessions,
// per-client count and rate, the filter stage's capacity) with an immediate "421" when
// refused, the verified reverse name, the session record, then the SMTP dialogue with a
// ProxySession as its handler. Keeps the set of live sessions for drain and shutdown.
//
// Never: lets a refused client wait (refusals are answered at once and closed); serves a
// connection from a trusted balancer without its PROXY header.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "asio/ip/tcp.hpp"
#include "asio/ssl/context.hpp"
#include "lib/net/io_pool.h"
#include "lib/net/listener.h"
#include "lib/smtp/server_session.h"
#include "services/frontend/frontend_context.h"
#include "services/frontend/proxy_session.h"

namespace sluice::frontend {

// How a session appears in the admin API (Admin.ListSessions/GetSession/KillSession).
struct SessionRegistration {
  MetadataUpdater update;
  std::shared_ptr<void> keepalive;  // deregisters when released
};
using SessionRegistrar =
    std::function<SessionRegistration(const sluice::v1::SessionMetadata& initial, std::function<void()> kill)>;

class FrontendServer {
 public:
  FrontendServer(FrontendContext& ctx, net::IoPool& pool, asio::ssl::context* tls, SessionRegistrar registrar,
                 std::function<std::string()> new_session_id);
  ~FrontendServer();

  absl::Status Start(const net::HostPort& listen);
  uint16_t port() const { return port_; }

  // Drain: stop accepting, idle sessions end now with 421, busy ones after their transaction.
  void BeginDrain();
  // Resume accepting after a drain (the listener is reopened).
  absl::Status Resume();
  // The drain deadline passed: every remaining session gets "421 4.3.2" now.
  void KillAll();
  size_t active() const;
  bool draining() const { return draining_.load(); }

 private:
  void OnAccept(asio::ip::tcp::socket socket);
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);
  // Sends a one-line refusal and closes, bounded by a short timeout.
  asio::awaitable<void> Refuse(smtp::SmtpStream& stream, const smtp::Reply& reply);

  FrontendContext& ctx_;
  net::IoPool& pool_;
  asio::ssl::context* tls_;
  SessionRegistrar registrar_;
  std::function<std::string()> new_session_id_;
  std::mutex listener_mu_;
  std::unique_ptr<net::Listener> listener_;
  // Listeners closed by a drain; kept until shutdown because their accept handlers may still
  // be queued on the io threads.
  std::vector<std::unique_ptr<net::Listener>> closed_listeners_;
  net::HostPort listen_address_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
  mutable std::mutex mu_;
  std::set<std::shared_ptr<smtp::SessionControl>> live_;
};

}  // namespace sluice::frontend
