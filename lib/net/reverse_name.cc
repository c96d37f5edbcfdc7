// lib/net/reverse_name.cc -- see reverse_name.h.
#include "lib/net/reverse_name.h"

#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"

namespace sluice::net {

asio::awaitable<std::string> VerifiedReverseName(asio::any_io_executor executor, std::string address,
                                                 std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
  std::error_code ec;
  asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) co_return "unknown";
  asio::ip::tcp::resolver resolver(executor);
  asio::steady_timer timer(executor);
  timer.expires_after(timeout);
  auto rev = co_await (resolver.async_resolve(asio::ip::tcp::endpoint(ip, 0), nothrow) || timer.async_wait(nothrow));
  if (rev.index() == 1) co_return "unknown";
  auto [rec, rresults] = std::get<0>(rev);
  if (rec || rresults.empty()) co_return "unknown";
  std::string name = rresults.begin()->host_name();
  if (name.empty() || name == address) co_return "unknown";  // getnameinfo gives the number back
  auto fwd = co_await (resolver.async_resolve(name, "", nothrow) || timer.async_wait(nothrow));
  if (fwd.index() == 1) co_return "unknown";
  auto [fec, fresults] = std::get<0>(fwd);
  if (fec) co_return "unknown";
  for (const auto& entry : fresults) {
    asio::ip::address a = entry.endpoint().address();
    if (a == ip) co_return name;
    if (a.is_v6() && a.to_v6().is_v4_mapped() && ip.is_v4() &&
        asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()) == ip.to_v4()) {
      co_return name;
    }
  }
  co_return "unknown";
}

}  // namespace sluice::net
