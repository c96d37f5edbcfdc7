// services/filter-bridge/filters/bounded_call.h
//
// One call into a filter, bounded by a deadline: the chain's content run and the envelope
// events alike. A filter that ignores the deadline has its pending operation cancelled when
// the deadline passes, and counts as timed out (DEADLINE_EXCEEDED); an exception thrown
// inside a filter becomes INTERNAL.
//
// Never: lets an exception or a late filter past the caller.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <variant>

#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "services/filter-bridge/filters/filter.h"

namespace sluice::filter_bridge {

// `start()` returns the filter's asio::awaitable<FilterOutcome>; what it refers to must
// outlive the co_await of this call.
template <typename Start>
asio::awaitable<FilterOutcome> RunBounded(Start start, Clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_at(deadline);
  try {
    auto r = co_await (start() || timer.async_wait(nothrow));
    if (r.index() == 1) co_return absl::DeadlineExceededError("filter timed out");
    co_return std::move(std::get<0>(r));
  } catch (const std::exception& e) {
    co_return absl::InternalError(std::string("filter threw: ") + e.what());
  }
}

}  // namespace sluice::filter_bridge
