// lib/net/reverse_name.cc -- see reverse_name.h.
#include "lib/net/reverse_name.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/thread_pool.hpp"
#include "asio/use_awaitable.hpp"

namespace sluice::net {
namespace {

constexpr auto kNothrow = asio::experimental::as_tuple(asio::use_awaitable);

// getnameinfo blocks: it runs here, never on an io thread. Two threads: lookups are short
// (a timeout bounds what the session waits; a slow lookup only delays the next one here).
asio::thread_pool& LookupPool() {
  static auto* pool = new asio::thread_pool(2);  // never destroyed: lookups may outlive main
  return *pool;
}

// The PTR name of `ip`, "" when none. NI_NUMERICSERV and no service buffer: asio's reverse
// resolver asks for the service name too, which costs a parse of /etc/services per call.
std::string PtrName(const asio::ip::address& ip) {
  asio::ip::tcp::endpoint ep(ip, 0);
  char host[NI_MAXHOST];
  int rc = getnameinfo(ep.data(), static_cast<socklen_t>(ep.size()), host, sizeof host, nullptr, 0,
                       NI_NAMEREQD | NI_NUMERICSERV);
  return rc == 0 ? std::string(host) : std::string();
}

// True when `name` resolves to `ip` (forward confirmation).
bool ResolvesTo(const std::string& name, const asio::ip::address& ip) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0) return false;
  bool match = false;
  for (addrinfo* a = res; a != nullptr && !match; a = a->ai_next) {
    asio::ip::tcp::endpoint ep;
    if (a->ai_addrlen > ep.capacity()) continue;
    std::memcpy(ep.data(), a->ai_addr, a->ai_addrlen);
    ep.resize(a->ai_addrlen);
    asio::ip::address got = ep.address();
    if (got == ip) match = true;
    if (got.is_v6() && got.to_v6().is_v4_mapped() && ip.is_v4() &&
        asio::ip::make_address_v4(asio::ip::v4_mapped, got.to_v6()) == ip.to_v4()) {
      match = true;
    }
  }
  freeaddrinfo(res);
  return match;
}

struct Lookup {
  std::string name = "unknown";
  bool done = false;
};

}  // namespace

asio::awaitable<std::string> VerifiedReverseName(asio::any_io_executor executor, std::string address,
                                                 std::chrono::milliseconds timeout) {
  std::optional<std::string> name = co_await LookUpVerifiedReverseName(std::move(executor), std::move(address), timeout);
  co_return name ? *name : std::string("unknown");
}

asio::awaitable<std::optional<std::string>> LookUpVerifiedReverseName(asio::any_io_executor executor,
                                                                      std::string address,
                                                                      std::chrono::milliseconds timeout) {
  std::error_code ec;
  asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) co_return std::string("unknown");
  // The lookup runs on the pool and wakes us through the timer; the shared state outlives
  // us when the timeout wins.
  auto state = std::make_shared<Lookup>();
  auto timer = std::make_shared<asio::steady_timer>(executor);
  timer->expires_after(timeout);
  asio::post(LookupPool(), [state, timer, ip, executor] {
    std::string name = PtrName(ip);
    bool verified = !name.empty() && ResolvesTo(name, ip);
    asio::post(executor, [state, timer, name = std::move(name), verified] {
      if (verified) state->name = name;
      state->done = true;
      timer->cancel();
    });
  });
  auto [wec] = co_await timer->async_wait(kNothrow);
  (void)wec;
  if (!state->done) co_return std::nullopt;
  co_return state->name;
}

}  // namespace sluice::net
