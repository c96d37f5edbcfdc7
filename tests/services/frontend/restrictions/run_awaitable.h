// tests/services/frontend/restrictions/run_awaitable.h
//
// Runs one coroutine to completion on a fresh io_context, for the checks' tests, and a
// Request filled with a session's facts.
//
// Never: leaves work running after it returns.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"
#include "services/frontend/restrictions/check.h"

namespace sluice::frontend::restrictions {

template <typename T>
T RunAwaitable(asio::io_context& io, asio::awaitable<T> awaitable) {
  std::optional<T> result;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) result.emplace(std::move(value));
  });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

}  // namespace sluice::frontend::restrictions
