// lib/net/listener.cc -- see listener.h.
#include "lib/net/listener.h"

#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "asio/ip/address.hpp"
#include "asio/ip/v6_only.hpp"
#include "asio/post.hpp"
#include "lib/observe/log.h"

namespace sluice::net {

absl::StatusOr<asio::ip::tcp::endpoint> ListenEndpoint(const HostPort& address) {
  std::error_code ec;
  asio::ip::address ip;
  if (address.host.empty() || address.host == "*") {
    ip = asio::ip::address_v6::any();  // both families: Listen() clears IPV6_V6ONLY
  } else {
    ip = asio::ip::make_address(address.host, ec);
    if (ec) {
      if (address.host == "localhost") {
        ip = asio::ip::address_v4::loopback();
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("listen address must be an IP address: ", address.host));
      }
    }
  }
  return asio::ip::tcp::endpoint(ip, address.port);
}

Listener::Listener(IoPool& pool, AcceptFn on_accept) : pool_(pool), on_accept_(std::move(on_accept)) {}

Listener::~Listener() { Close(); }

absl::Status Listener::Listen(const HostPort& address, int backlog) {
  auto ep = ListenEndpoint(address);
  if (!ep.ok()) return ep.status();
  asio::ip::tcp::endpoint endpoint = *ep;
  const bool any = address.host.empty() || address.host == "*";
  for (size_t i = 0; i < pool_.size(); ++i) {
    auto acc = std::make_shared<asio::ip::tcp::acceptor>(pool_.context(i));
    std::error_code ec;
    acc->open(endpoint.protocol(), ec);
    if (ec && any && endpoint.address().is_v6()) {
      // A kernel without IPv6 (ipv6.disable=1): "any" is IPv4's alone.
      endpoint = asio::ip::tcp::endpoint(asio::ip::address_v4::any(), endpoint.port());
      ec.clear();
      acc->open(endpoint.protocol(), ec);
    }
    // "any" takes IPv4 clients too (as ::ffff:a.b.c.d), whatever net.ipv6.bindv6only says.
    if (!ec && any && endpoint.address().is_v6()) acc->set_option(asio::ip::v6_only(false), ec);
    if (!ec) acc->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec = std::error_code(errno, std::system_category());
      }
    }
    if (!ec) acc->bind(endpoint, ec);
    if (!ec) acc->listen(backlog, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", address.ToString(), ": ", ec.message()));
    }
    if (i == 0) {
      port_ = acc->local_endpoint().port();
      endpoint.port(port_);  // the others share the (maybe ephemeral) port
    }
    acceptors_.push_back(std::move(acc));
  }
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    asio::post(pool_.context(i), [this, i] { AcceptLoop(i); });
  }
  return absl::OkStatus();
}

void Listener::AcceptLoop(size_t i) {
  if (closed_.load()) return;
  acceptors_[i]->async_accept([this, i, keep = acceptors_[i]](std::error_code ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || closed_.load()) return;
    if (ec) {
      // EMFILE and friends: log, then keep accepting (the next try may succeed).
      observe::Warn("accept_failed").Kv("error", ec.message());
    } else {
      on_accept_(std::move(socket));
    }
    AcceptLoop(i);
  });
}

void Listener::Close() {
  if (closed_.exchange(true)) return;
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    std::shared_ptr<asio::ip::tcp::acceptor> acc = acceptors_[i];
    // Close on the acceptor's own thread; the pool may already be stopped, then close here.
    if (pool_.context(i).stopped()) {
      std::error_code ec;
      acc->close(ec);
    } else {
      asio::post(pool_.context(i), [acc] {
        std::error_code ec;
        acc->close(ec);
      });
    }
  }
}

}  // namespace sluice::net
