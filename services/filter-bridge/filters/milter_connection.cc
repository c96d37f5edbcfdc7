// services/filter-bridge/filters/milter_connection.cc -- see milter_connection.h.
#include "services/filter-bridge/filters/milter_connection.h"

#include <variant>

#include "asio/connect.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/local/stream_protocol.hpp"
#include "asio/read.hpp"
#include "asio/steady_timer.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace sluice::filter_bridge {
namespace {

using namespace asio::experimental::awaitable_operators;
constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

absl::Status IoError(std::string_view what, const std::error_code& ec) {
  if (ec == asio::error::eof) return absl::UnavailableError(std::string(what) + ": milter closed the connection");
  return absl::UnavailableError(std::string(what) + ": " + ec.message());
}

absl::Status Timeout(std::string_view what) {
  return absl::DeadlineExceededError(std::string(what) + ": milter timed out");
}

}  // namespace

MilterConnection::MilterConnection(asio::any_io_executor executor)
    : executor_(executor), socket_(executor) {}

MilterConnection::~MilterConnection() { Close(); }

void MilterConnection::Close() {
  std::error_code ignored;
  if (socket_.is_open()) {
    socket_.shutdown(asio::socket_base::shutdown_both, ignored);
    socket_.close(ignored);
  }
}

asio::awaitable<absl::Status> MilterConnection::Connect(const MilterAddress& address,
                                                        TimePoint deadline) {
  asio::steady_timer timer(executor_);
  timer.expires_at(deadline);
  if (address.kind == MilterAddress::Kind::kUnix) {
    asio::generic::stream_protocol::endpoint ep(asio::local::stream_protocol::endpoint(address.path));
    auto r = co_await (socket_.async_connect(ep, nothrow) || timer.async_wait(nothrow));
    if (r.index() == 1) co_return Timeout("connect");
    if (auto [ec] = std::get<0>(r); ec) co_return IoError("connect " + address.ToString(), ec);
    co_return absl::OkStatus();
  }
  asio::ip::tcp::resolver resolver(executor_);
  auto rr = co_await (resolver.async_resolve(address.host, std::to_string(address.port), nothrow) ||
                      timer.async_wait(nothrow));
  if (rr.index() == 1) co_return Timeout("resolve");
  auto [rec, results] = std::get<0>(rr);
  if (rec) co_return IoError("resolve " + address.host, rec);
  std::error_code last = asio::error::host_not_found;
  for (const auto& entry : results) {
    Close();
    asio::generic::stream_protocol::endpoint ep(entry.endpoint());
    auto r = co_await (socket_.async_connect(ep, nothrow) || timer.async_wait(nothrow));
    if (r.index() == 1) co_return Timeout("connect");
    auto [ec] = std::get<0>(r);
    if (!ec) {
      std::error_code ignored;
      socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
      co_return absl::OkStatus();
    }
    last = ec;
  }
  co_return IoError("connect " + address.ToString(), last);
}

asio::awaitable<absl::Status> MilterConnection::Send(const std::string& packet, TimePoint deadline) {
  asio::steady_timer timer(executor_);
  timer.expires_at(deadline);
  auto r = co_await (asio::async_write(socket_, asio::buffer(packet), nothrow) ||
                     timer.async_wait(nothrow));
  if (r.index() == 1) co_return Timeout("write");
  if (auto [ec, n] = std::get<0>(r); ec) co_return IoError("write", ec);
  co_return absl::OkStatus();
}

asio::awaitable<absl::StatusOr<milter::Response>> MilterConnection::Receive(TimePoint deadline) {
  asio::steady_timer timer(executor_);
  timer.expires_at(deadline);
  unsigned char header[4];
  auto r = co_await (asio::async_read(socket_, asio::buffer(header), nothrow) ||
                     timer.async_wait(nothrow));
  if (r.index() == 1) co_return Timeout("read");
  if (auto [ec, n] = std::get<0>(r); ec) co_return IoError("read", ec);
  const uint32_t len = milter::PacketLength(header);
  if (len == 0 || len > kMaxPacket) {
    co_return absl::DataLossError("milter packet length " + std::to_string(len) + " out of range");
  }
  std::string body(len, '\0');
  auto b = co_await (asio::async_read(socket_, asio::buffer(body), nothrow) ||
                     timer.async_wait(nothrow));
  if (b.index() == 1) co_return Timeout("read");
  if (auto [ec, n] = std::get<0>(b); ec) co_return IoError("read", ec);
  co_return milter::DecodeResponse(body[0], std::string_view(body).substr(1));
}

}  // namespace sluice::filter_bridge
