// lib/net/reverse_name.h
//
// The client's verified reverse name, as Postfix computes it for Received: and XFORWARD
// NAME: the PTR name of the address, kept only when that name resolves forward to the same
// address (forward-confirmed), else "unknown". Asynchronous and bounded by a timeout.
//
// Never: trusts an unconfirmed PTR name; waits longer than the timeout.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"

namespace sluice::net {

asio::awaitable<std::string> VerifiedReverseName(asio::any_io_executor executor, std::string address,
                                                 std::chrono::milliseconds timeout);

// The same, with nothing when the lookup did not finish within the timeout (an answer not
// to keep: reverse_name_cache.h), "unknown" when it finished without a confirmed name.
asio::awaitable<std::optional<std::string>> LookUpVerifiedReverseName(asio::any_io_executor executor,
                                                                      std::string address,
                                                                      std::chrono::milliseconds timeout);

}  // namespace sluice::net
