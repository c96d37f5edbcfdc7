// services/filter-bridge/relay/bridge_server.h
//
// The filter-bridge's accept decision: only upstream peers in mynetworks (or with a client
// certificate our CA signed, when trusted by certificate) get a session; XFORWARD is
// honoured only from xforward_hosts. Each session registers in the admin registry and is
// re-keyed by the frontend's session id when XFORWARD IDENT arrives.
//
// Never: serves a peer outside mynetworks; lets a draining stage take new sessions.
#pragma once

// A standard header before the first Asio one: Asio's aligned-allocation choice depends on
// macros the standard library defines, and every TU must make the same one (coroutine frames
// are recycled across TUs: ASan alloc-dealloc-mismatch otherwise).
#include <memory>

#include "asio/ssl/context.hpp"
#include "lib/net/io_pool.h"
#include "lib/smtp/session_server.h"
#include "services/filter-bridge/relay/bridge_session.h"

namespace sluice::filter_bridge {

class BridgeServer {
 public:
  BridgeServer(BridgeContext& ctx, net::IoPool& pool, asio::ssl::context* tls);
  absl::Status Start(const net::HostPort& listen) { return server_.Start(listen); }
  uint16_t port() const { return server_.port(); }
  smtp::SessionServer& sessions() { return server_; }

 private:
  asio::awaitable<smtp::AcceptedSession> Accept(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                std::shared_ptr<smtp::SessionControl> control);
  BridgeContext& ctx_;
  asio::ssl::context* tls_;
  smtp::SessionServer server_;
};

}  // namespace sluice::filter_bridge
