// lib/net/tcp_connect.h
//
// Opens a TCP connection to HOST:PORT within a time limit, on the caller's executor: an
// address literal needs no resolver; a name is resolved asynchronously (numeric service,
// every address tried in turn). The SMTP client (lib/smtp/client_session) and the policy
// client connect with it.
//
// Never: blocks a thread (no getaddrinfo on the caller's thread); waits past `timeout`.
#pragma once

#include <chrono>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "lib/net/host_port.h"

namespace sluice::net {

// DeadlineExceeded on timeout, Unavailable when refused or unresolvable.
asio::awaitable<absl::StatusOr<asio::ip::tcp::socket>> ConnectTcp(asio::any_io_executor executor,
                                                                  const HostPort& target,
                                                                  std::chrono::steady_clock::duration timeout);

}  // namespace sluice::net
