// services/frontend/frontend_server.h
//
// The frontend's accept decision for each connection: the real client address (PROXY
// protocol, required from and only accepted from trusted balancers), admission (draining,
// max_sessions, per-client count and rate, the filter stage's capacity) answered at once
// with "421" when refused, the verified reverse name, the restriction checks' start (and,
// without delay_reject, the connect checks' verdict), the session record in the registry,
// and a ProxySession as the dialogue's handler. The generic accept/drain machinery is
// lib/smtp/session_server.h.
//
// Never: lets a refused client wait; serves a trusted balancer's connection without its
// PROXY header; uses an address from anywhere but the socket or a trusted PROXY header.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "asio/ssl/context.hpp"
#include "lib/net/io_pool.h"
#include "lib/smtp/session_server.h"
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

  absl::Status Start(const net::HostPort& listen) { return server_.Start(listen); }
  uint16_t port() const { return server_.port(); }
  smtp::SessionServer& sessions() { return server_; }

 private:
  asio::awaitable<smtp::AcceptedSession> Accept(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                std::shared_ptr<smtp::SessionControl> control);
  // The client's verified reverse name, from the cache of recent clients when it is there.
  asio::awaitable<std::string> ClientName(asio::any_io_executor executor, const std::string& address,
                                          const sluice::v1::Limits& limits);
  // Reads the PROXY header from a trusted balancer; false when it is missing or malformed.
  asio::awaitable<bool> ReadProxyHeader(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                        sluice::v1::SessionMetadata& meta);

  FrontendContext& ctx_;
  asio::ssl::context* tls_;
  SessionRegistrar registrar_;
  std::function<std::string()> new_session_id_;
  smtp::SessionServer server_;
};

}  // namespace sluice::frontend
