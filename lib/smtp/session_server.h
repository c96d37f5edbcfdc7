// lib/smtp/session_server.h
//
// The accept side every stage shares: a Listener on the IoPool, one coroutine per accepted
// connection, the set of live sessions (for drain and shutdown), and drain/resume of the
// listener. What happens to a connection -- admission, the handler, the settings -- is the
// stage's `Accept` callback; the dialogue itself is RunServerSession.
//
// Never: lets an exception out of a session coroutine (logged, the session ends); keeps a
// refused connection open.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "lib/net/io_pool.h"
#include "lib/net/listener.h"
#include "lib/smtp/server_handler.h"
#include "lib/smtp/server_session.h"
#include "lib/smtp/stream.h"

namespace sluice::smtp {

// What a stage decides for one connection. A null handler means the connection was refused
// (the stage already wrote its refusal) and is closed.
struct AcceptedSession {
  std::unique_ptr<ServerHandler> handler;
  ServerSettings settings;
  // Runs after the dialogue ended and the handler was destroyed (metrics, logs).
  std::function<void()> on_end;
};

class SessionServer {
 public:
  // Runs on the connection's io thread; facts has peer_address/client_address/client_port
  // set; the callback may read ahead on the stream (PROXY header) and must set session_id.
  using AcceptFn = std::function<asio::awaitable<AcceptedSession>(SmtpStream& stream, SessionFacts& facts,
                                                                 std::shared_ptr<SessionControl> control)>;

  SessionServer(net::IoPool& pool, AcceptFn accept);
  ~SessionServer();

  absl::Status Start(const net::HostPort& listen);
  uint16_t port() const { return port_; }

  // Stop accepting; idle sessions end now with 421, busy ones after their transaction.
  void BeginDrain();
  // Accept again (a new listener on the same port).
  absl::Status Resume();
  // Every remaining session ends now with "421 4.3.2".
  void KillAll();
  // Ends, as a drain does ("421 4.3.2"), the session that has rested longest between
  // transactions -- an upstream's kept connection (it replaces a connection it finds closed
  // unseen) -- so that a new session may take its place at max_sessions. False when no
  // session rests.
  bool EndLongestResting();
  size_t active() const;
  bool draining() const { return draining_.load(); }

  // Sends a one-line refusal and closes (for AcceptFn implementations).
  static asio::awaitable<void> Refuse(SmtpStream& stream, const Reply& reply);

 private:
  void OnAccept(asio::ip::tcp::socket socket);
  asio::awaitable<void> Serve(asio::ip::tcp::socket socket);

  net::IoPool& pool_;
  AcceptFn accept_;
  std::mutex listener_mu_;
  std::unique_ptr<net::Listener> listener_;
  // Listeners closed by a drain; kept until destruction because their accept handlers may
  // still be queued on the io threads.
  std::vector<std::unique_ptr<net::Listener>> closed_listeners_;
  net::HostPort listen_address_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
  mutable std::mutex mu_;
  std::set<std::shared_ptr<SessionControl>> live_;
};

}  // namespace sluice::smtp
