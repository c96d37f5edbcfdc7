// services/filter-bridge/relay/session_lookup.cc -- see session_lookup.h.
#include "services/filter-bridge/relay/session_lookup.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "asio/async_result.hpp"
#include "asio/post.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/observe/log.h"

namespace sluice::filter_bridge {
namespace {

using FetchResult = absl::StatusOr<sluice::v1::SessionMetadata>;

// The initiation as a named functor, not a lambda: g++ 12 destroys closure and aggregate
// temporaries of a co_await expression twice (seen as heap corruption here).
struct FetchInitiation {
  control::SessionFetcher* fetcher;
  std::string address;
  std::string session_id;
  absl::Duration timeout;
  asio::any_io_executor executor;

  template <typename Handler>
  void operator()(Handler handler) const {
    auto shared = std::make_shared<Handler>(std::move(handler));
    asio::any_io_executor ex = executor;
    // The fetcher calls back on a gRPC thread (or at once on a cache hit): resume the
    // coroutine on its own executor either way.
    fetcher->FetchAsync(address, session_id, timeout, [shared, ex](FetchResult r) {
      asio::post(ex, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
    });
  }
};

}  // namespace

SessionLookup::SessionLookup(control::SessionFetcher& fetcher, std::string upstream_admin, uint32_t admin_port,
                             absl::Duration timeout)
    : fetcher_(fetcher), upstream_admin_(std::move(upstream_admin)), admin_port_(admin_port), timeout_(timeout) {}

std::string SessionLookup::AddressFor(const std::string& peer_address) const {
  if (!upstream_admin_.empty()) return upstream_admin_;
  if (peer_address.find(':') != std::string::npos) return absl::StrCat("[", peer_address, "]:", admin_port_);
  return absl::StrCat(peer_address, ":", admin_port_);
}

asio::awaitable<std::optional<sluice::v1::SessionMetadata>> SessionLookup::Fetch(std::string peer_address,
                                                                                 std::string session_id) {
  // g++ 12 destroys an aggregate built in an expression that also holds a co_await twice:
  // take the executor first, then build the initiation in a plain statement.
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  FetchInitiation init{&fetcher_, AddressFor(peer_address), session_id, timeout_, executor};
  FetchResult result =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(FetchResult)>(init, asio::use_awaitable);
  if (!result.ok()) {
    observe::Debug("session_fetch_failed")
        .Kv("session", session_id)
        .Kv("upstream", init.address)
        .Kv("error", std::string(result.status().message()));
    co_return std::nullopt;
  }
  co_return *std::move(result);
}

}  // namespace sluice::filter_bridge
