// services/filter-bridge/filters/milter_connection.h
//
// One connection to a milter (TCP or UNIX socket) as packets: connect, send a packet, read
// the next response packet. Every operation is asynchronous and bounded by a deadline
// (the caller passes min(its milter timeout, the filter deadline)); a timeout is
// DEADLINE_EXCEEDED, a closed or broken connection or a malformed packet UNAVAILABLE /
// DATA_LOSS. Used from one coroutine at a time.
//
// Never: blocks the io thread; waits past a deadline; accepts a packet over max_packet bytes.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/generic/stream_protocol.hpp"
#include "services/filter-bridge/filters/milter_address.h"
#include "services/filter-bridge/filters/milter_codec.h"

namespace sluice::filter_bridge {

class MilterConnection {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Replies (REPLBODY chunks, header values) are far smaller; anything bigger is an error.
  static constexpr size_t kMaxPacket = 2 * 1024 * 1024;

  explicit MilterConnection(asio::any_io_executor executor);
  ~MilterConnection();

  asio::awaitable<absl::Status> Connect(const MilterAddress& address, TimePoint deadline);
  asio::awaitable<absl::Status> Send(const std::string& packet, TimePoint deadline);
  asio::awaitable<absl::StatusOr<milter::Response>> Receive(TimePoint deadline);
  void Close();

 private:
  asio::any_io_executor executor_;
  asio::generic::stream_protocol::socket socket_;
};

}  // namespace sluice::filter_bridge
