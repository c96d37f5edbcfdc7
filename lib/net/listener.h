// lib/net/listener.h
//
// A TCP listener spread over every context of an IoPool: one acceptor per context bound to
// the same address with SO_REUSEPORT, so the kernel spreads connections and each accepted
// socket already lives on the thread that will serve it. Port 0 binds an ephemeral port,
// which every acceptor then shares (port() reports it).
//
// Never: decides admission (the stage does, in the accept callback); blocks in accept.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "asio/ip/tcp.hpp"
#include "lib/net/host_port.h"
#include "lib/net/io_pool.h"

namespace sluice::net {

class Listener {
 public:
  // Called on the accepting context's thread with the new connection.
  using AcceptFn = std::function<void(asio::ip::tcp::socket)>;

  Listener(IoPool& pool, AcceptFn on_accept);
  ~Listener();

  // Binds and listens (backlog `backlog`), then starts accepting once the pool runs.
  absl::Status Listen(const HostPort& address, int backlog = 1024);
  uint16_t port() const { return port_; }
  // Stops accepting (closes the acceptors); thread-safe.
  void Close();
  bool closed() const { return closed_.load(); }

 private:
  void AcceptLoop(size_t i);

  IoPool& pool_;
  AcceptFn on_accept_;
  // shared: a Close() posted to a context may run after the Listener is gone.
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
  uint16_t port_ = 0;
  std::atomic<bool> closed_{false};
};

// Resolves a listen host to an endpoint: "" or "*" = any address of both families (one
// IPv6 socket taking IPv4 clients as IPv4-mapped; IPv4 alone where the kernel has no IPv6),
// "0.0.0.0" = any IPv4, "::" = any IPv6 (IPv4 too unless net.ipv6.bindv6only).
absl::StatusOr<asio::ip::tcp::endpoint> ListenEndpoint(const HostPort& address);

}  // namespace sluice::net
