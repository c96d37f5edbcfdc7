// services/reinject/receive/receive_server.h
//
// The reinject stage's accept decision: only peers in mynetworks get a session (everyone
// else "554 5.7.1" at once), or -- with trust_verified_client_cert -- peers that present a
// client certificate our CA signed (checked at MAIL, after STARTTLS). XFORWARD is honoured
// only from xforward_hosts (or such a certificate). Each session registers in the admin
// registry and is re-keyed by the frontend's session id when XFORWARD IDENT arrives.
//
// Never: serves a peer outside mynetworks without a verified certificate; exposes itself
// (the listener binds where the config says; Kubernetes NetworkPolicy does the rest).
#pragma once

#include <memory>

#include "asio/ssl/context.hpp"
#include "lib/control/stage_runtime.h"
#include "lib/net/io_pool.h"
#include "lib/smtp/session_server.h"
#include "services/reinject/receive/receive_session.h"

namespace sluice::reinject {

class ReceiveServer {
 public:
  ReceiveServer(ReceiveContext& ctx, control::StageRuntime& runtime, net::IoPool& pool, asio::ssl::context* tls);

  absl::Status Start(const net::HostPort& listen) { return server_.Start(listen); }
  uint16_t port() const { return server_.port(); }
  smtp::SessionServer& sessions() { return server_; }

 private:
  asio::awaitable<smtp::AcceptedSession> Accept(smtp::SmtpStream& stream, smtp::SessionFacts& facts,
                                                std::shared_ptr<smtp::SessionControl> control);

  ReceiveContext& ctx_;
  control::StageRuntime& runtime_;
  asio::ssl::context* tls_;
  smtp::SessionServer server_;
};

}  // namespace sluice::reinject
