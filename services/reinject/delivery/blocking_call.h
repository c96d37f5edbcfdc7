// services/reinject/delivery/blocking_call.h
//
// Runs a blocking function (file writes, fsync, renames) on a blocking pool and resumes the
// awaiting coroutine on its own executor with the result:
//
//   absl::Status s = co_await RunBlocking(blocking, [&] { return store.Finish(id, record); });
//
// The io threads keep serving SMTP sessions while the disk works.
//
// g++ 12 destroys a closure or aggregate *temporary* with non-trivial members twice when it
// is created inside a co_await expression. Name a lambda that captures strings or protos
// before awaiting (`auto work = [this, id] {...}; co_await RunBlocking(pool, work);`);
// lambdas capturing only references and pointers are safe inline.
//
// Never: runs `fn` on the caller's executor; drops the caller's outstanding work while
// `fn` runs (the io_context does not run out of work under an awaiting coroutine).
#pragma once

#include <type_traits>
#include <utility>

#include "asio/any_io_executor.hpp"
#include "asio/associated_executor.hpp"
#include "asio/async_result.hpp"
#include "asio/awaitable.hpp"
#include "asio/execution/outstanding_work.hpp"
#include "asio/post.hpp"
#include "asio/prefer.hpp"
#include "asio/use_awaitable.hpp"

namespace sluice::reinject {

template <typename F>
asio::awaitable<std::invoke_result_t<F&>> RunBlocking(asio::any_io_executor blocking, F fn) {
  using Result = std::invoke_result_t<F&>;
  return asio::async_initiate<decltype(asio::use_awaitable), void(Result)>(
      [blocking](auto handler, F fn) {
        auto home = asio::prefer(asio::get_associated_executor(handler),
                                 asio::execution::outstanding_work.tracked);
        asio::post(blocking, [fn = std::move(fn), handler = std::move(handler), home = std::move(home)]() mutable {
          Result result = fn();
          asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable, std::move(fn));
}

}  // namespace sluice::reinject
