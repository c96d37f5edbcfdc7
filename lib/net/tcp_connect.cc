// lib/net/tcp_connect.cc -- see tcp_connect.h.
#include "lib/net/tcp_connect.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "asio/connect.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"

namespace sluice::net {
namespace {

constexpr auto kNothrow = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<absl::StatusOr<asio::ip::tcp::socket>> ConnectTcp(asio::any_io_executor executor,
                                                                  const HostPort& target,
                                                                  std::chrono::steady_clock::duration timeout) {
  using namespace asio::experimental::awaitable_operators;
  const std::string peer = target.ToString();
  asio::steady_timer timer(executor);
  timer.expires_after(timeout);
  std::vector<asio::ip::tcp::endpoint> endpoints;
  std::error_code aec;
  asio::ip::address literal = asio::ip::make_address(target.host, aec);
  if (!aec) {
    endpoints.emplace_back(literal, target.port);
  } else {
    asio::ip::tcp::resolver resolver(executor);
    auto resolved = co_await (resolver.async_resolve(target.host, std::to_string(target.port),
                                                     asio::ip::resolver_base::numeric_service, kNothrow) ||
                              timer.async_wait(kNothrow));
    if (resolved.index() == 1) co_return absl::DeadlineExceededError(absl::StrCat("resolving ", peer, ": timeout"));
    auto [rec, results] = std::get<0>(resolved);
    if (rec) co_return absl::UnavailableError(absl::StrCat("resolving ", peer, ": ", rec.message()));
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }
  asio::ip::tcp::socket socket(executor);
  auto connected = co_await (asio::async_connect(socket, endpoints, kNothrow) || timer.async_wait(kNothrow));
  if (connected.index() == 1) co_return absl::DeadlineExceededError(absl::StrCat("connecting to ", peer, ": timeout"));
  auto [cec, endpoint] = std::get<0>(connected);
  if (cec) co_return absl::UnavailableError(absl::StrCat("connecting to ", peer, ": ", cec.message()));
  co_return std::move(socket);
}

}  // namespace sluice::net
