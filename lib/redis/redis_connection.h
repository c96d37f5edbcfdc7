// lib/redis/redis_connection.h
//
// One connection to a Redis server: hiredis's async context (Debian libhiredis 0.14) with
// its event hooks served by Asio on one single-threaded executor (an io_context of the
// stage's pool), instead of the libevent/libuv adapters hiredis ships. hiredis asks to
// watch the socket for reading or writing; an asio::posix::stream_descriptor waits for that
// and hands the event back to hiredis. Every command has a deadline of its own.
//
// Every member is called on the executor's thread; every callback runs there too, posted
// (never from inside hiredis), so a callback may send more commands or Close().
//
// Never: blocks the thread (no blocking connect, DNS or read: callers resolve names and
// pass an address); calls a callback twice or not at all; touches the hiredis context after
// hiredis freed it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/posix/stream_descriptor.hpp"
#include "asio/steady_timer.hpp"
#include "lib/redis/redis_value.h"

struct redisAsyncContext;

namespace sluice::redis {

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  using Reply = absl::StatusOr<RedisValue>;
  using ReplyCallback = absl::AnyInvocable<void(Reply)>;
  using Done = absl::AnyInvocable<void(absl::Status)>;

  static std::shared_ptr<RedisConnection> Create(asio::any_io_executor executor);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects to `address` (a numeric IPv4/IPv6 address) and `port`. `done` gets OK once
  // connected, DEADLINE_EXCEEDED after `timeout`, or UNAVAILABLE with hiredis's reason.
  void Connect(const std::string& address, uint16_t port, std::chrono::milliseconds timeout, Done done);
  // Sends one command. `done` gets the reply (an error reply is a RedisValue of type
  // kError), DEADLINE_EXCEEDED when none came within `timeout` (a late one is dropped), or
  // UNAVAILABLE when the connection is not up or ends first.
  void Command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, ReplyCallback done);
  // Ends the connection now; commands still waiting get UNAVAILABLE. Idempotent.
  void Close();
  // `lost` gets the reason once when the connection ends by itself (EOF, socket error),
  // never after Close().
  void OnLost(Done lost) { lost_ = std::move(lost); }
  bool connected() const { return connected_; }

 private:
  explicit RedisConnection(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // hiredis's hooks (redisAsyncContext::ev) and callbacks; `privdata`/`data` is this.
  static void AddRead(void* self);
  static void DelRead(void* self);
  static void AddWrite(void* self);
  static void DelWrite(void* self);
  static void Cleanup(void* self);
  static void OnConnected(const redisAsyncContext* ac, int status);
  static void OnDisconnected(const redisAsyncContext* ac, int status);
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);

  void ArmRead();
  void ArmWrite();
  void FinishConnect(absl::Status status);
  void Post(Done done, absl::Status status);

  asio::any_io_executor executor_;
  redisAsyncContext* ac_ = nullptr;  // null before Connect and once hiredis freed it
  std::optional<asio::posix::stream_descriptor> socket_;  // hiredis's fd, watched, never closed by us
  bool want_read_ = false, want_write_ = false;
  bool read_armed_ = false, write_armed_ = false;
  bool connected_ = false;
  bool closing_ = false;  // Close() ran: the end is ours, not a loss
  Done connect_done_;
  std::optional<asio::steady_timer> connect_timer_;
  Done lost_;
};

}  // namespace sluice::redis
