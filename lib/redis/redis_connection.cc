// lib/redis/redis_connection.cc -- see redis_connection.h.
#include "lib/redis/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "absl/strings/str_cat.h"
#include "asio/post.hpp"

namespace sluice::redis {
namespace {

// One command waiting for its reply or its deadline, whichever comes first.
struct PendingCommand {
  PendingCommand(asio::any_io_executor ex, RedisConnection::ReplyCallback d)
      : executor(ex), done(std::move(d)), timer(ex) {}

  void Finish(RedisConnection::Reply reply) {
    if (finished) return;
    finished = true;
    timer.cancel();
    asio::post(executor, [d = std::move(done), r = std::move(reply)]() mutable { d(std::move(r)); });
  }

  asio::any_io_executor executor;
  RedisConnection::ReplyCallback done;
  asio::steady_timer timer;
  bool finished = false;
};

std::string ErrorText(const redisAsyncContext* ac, std::string_view otherwise) {
  if (ac != nullptr && ac->errstr != nullptr && ac->errstr[0] != '\0') return absl::StrCat("redis: ", ac->errstr);
  return absl::StrCat("redis: ", std::string(otherwise));
}

}  // namespace

std::shared_ptr<RedisConnection> RedisConnection::Create(asio::any_io_executor executor) {
  return std::shared_ptr<RedisConnection>(new RedisConnection(std::move(executor)));
}

RedisConnection::~RedisConnection() {
  closing_ = true;
  if (ac_ != nullptr) redisAsyncFree(ac_);  // waiting commands get UNAVAILABLE (posted)
}

void RedisConnection::Connect(const std::string& address, uint16_t port, std::chrono::milliseconds timeout,
                              Done done) {
  connect_done_ = std::move(done);
  redisAsyncContext* ac = redisAsyncConnect(address.c_str(), port);  // a non-blocking connect(2)
  if (ac == nullptr) {
    FinishConnect(absl::ResourceExhaustedError("redis: no memory for a connection"));
    return;
  }
  if (ac->err != 0) {
    absl::Status st = absl::UnavailableError(ErrorText(ac, "connect failed"));
    redisAsyncFree(ac);
    FinishConnect(st);
    return;
  }
  ac_ = ac;
  ac->data = this;
  socket_.emplace(executor_, ac->c.fd);
  ac->ev.data = this;
  ac->ev.addRead = &RedisConnection::AddRead;
  ac->ev.delRead = &RedisConnection::DelRead;
  ac->ev.addWrite = &RedisConnection::AddWrite;
  ac->ev.delWrite = &RedisConnection::DelWrite;
  ac->ev.cleanup = &RedisConnection::Cleanup;
  redisAsyncSetDisconnectCallback(ac, &RedisConnection::OnDisconnected);
  connect_timer_.emplace(executor_);
  connect_timer_->expires_after(timeout);
  connect_timer_->async_wait([self = shared_from_this(), timeout](std::error_code ec) {
    if (ec || !self->connect_done_) return;
    self->FinishConnect(absl::DeadlineExceededError(absl::StrCat("redis: connect took over ", timeout.count(), " ms")));
    self->Close();
  });
  // hiredis learns that connect(2) finished from the first write event, which this asks for.
  redisAsyncSetConnectCallback(ac, &RedisConnection::OnConnected);
}

void RedisConnection::Command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                              ReplyCallback done) {
  auto pending = std::make_shared<PendingCommand>(executor_, std::move(done));
  if (ac_ == nullptr || !connected_) {
    pending->Finish(absl::UnavailableError("redis: not connected"));
    return;
  }
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  // hiredis owns this until it calls OnReply: exactly once, with the reply or, when the
  // context goes away first, with none.
  auto* held = new std::shared_ptr<PendingCommand>(pending);
  if (redisAsyncCommandArgv(ac_, &RedisConnection::OnReply, held, static_cast<int>(args.size()), args.data(),
                            lengths.data()) != REDIS_OK) {
    delete held;
    pending->Finish(absl::UnavailableError("redis: connection closing"));
    return;
  }
  pending->timer.expires_after(timeout);
  pending->timer.async_wait([pending, timeout](std::error_code ec) {
    if (ec) return;
    pending->Finish(absl::DeadlineExceededError(absl::StrCat("redis: no reply within ", timeout.count(), " ms")));
  });
}

void RedisConnection::Close() {
  closing_ = true;
  connected_ = false;
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    redisAsyncFree(ac);  // OnReply(NULL) for each waiting command, then Cleanup
  }
  FinishConnect(absl::UnavailableError("redis: connection closed"));
}

void RedisConnection::FinishConnect(absl::Status status) {
  if (connect_timer_) connect_timer_->cancel();
  if (connect_done_) Post(std::move(connect_done_), std::move(status));
  connect_done_ = nullptr;
}

void RedisConnection::Post(Done done, absl::Status status) {
  asio::post(executor_, [d = std::move(done), s = std::move(status)]() mutable { d(std::move(s)); });
}

// ---- hiredis's event hooks ----

void RedisConnection::ArmRead() {
  if (!want_read_ || read_armed_ || !socket_) return;
  read_armed_ = true;
  socket_->async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](std::error_code ec) {
    self->read_armed_ = false;
    if (ec || self->ac_ == nullptr || !self->want_read_) return;
    redisAsyncHandleRead(self->ac_);  // may free the context (Cleanup clears ac_)
    self->ArmRead();
  });
}

void RedisConnection::ArmWrite() {
  if (!want_write_ || write_armed_ || !socket_) return;
  write_armed_ = true;
  socket_->async_wait(asio::posix::stream_descriptor::wait_write, [self = shared_from_this()](std::error_code ec) {
    self->write_armed_ = false;
    if (ec || self->ac_ == nullptr || !self->want_write_) return;
    redisAsyncHandleWrite(self->ac_);
    self->ArmWrite();
  });
}

void RedisConnection::AddRead(void* self) {
  auto* c = static_cast<RedisConnection*>(self);
  c->want_read_ = true;
  c->ArmRead();
}

void RedisConnection::DelRead(void* self) { static_cast<RedisConnection*>(self)->want_read_ = false; }

void RedisConnection::AddWrite(void* self) {
  auto* c = static_cast<RedisConnection*>(self);
  c->want_write_ = true;
  c->ArmWrite();
}

void RedisConnection::DelWrite(void* self) { static_cast<RedisConnection*>(self)->want_write_ = false; }

void RedisConnection::Cleanup(void* self) {
  // hiredis is about to close the fd and free the context: stop watching, give the fd back.
  auto* c = static_cast<RedisConnection*>(self);
  c->want_read_ = c->want_write_ = false;
  if (c->socket_) {
    c->socket_->release();  // cancels the waits; hiredis closes the fd
    c->socket_.reset();
  }
  c->ac_ = nullptr;
}

void RedisConnection::OnConnected(const redisAsyncContext* ac, int status) {
  auto* c = static_cast<RedisConnection*>(ac->data);
  if (status == REDIS_OK) {
    c->connected_ = true;
    c->FinishConnect(absl::OkStatus());
  } else {
    c->FinishConnect(absl::UnavailableError(ErrorText(ac, "connect failed")));  // hiredis frees ac next
  }
}

void RedisConnection::OnDisconnected(const redisAsyncContext* ac, int /*status*/) {
  auto* c = static_cast<RedisConnection*>(ac->data);
  c->connected_ = false;
  if (!c->closing_ && c->lost_) c->Post(std::move(c->lost_), absl::UnavailableError(ErrorText(ac, "connection lost")));
  c->lost_ = nullptr;
}

void RedisConnection::OnReply(redisAsyncContext* /*ac*/, void* reply, void* privdata) {
  std::unique_ptr<std::shared_ptr<PendingCommand>> pending(static_cast<std::shared_ptr<PendingCommand>*>(privdata));
  if (reply == nullptr) {
    (*pending)->Finish(absl::UnavailableError("redis: connection closed before the reply"));
    return;
  }
  (*pending)->Finish(FromHiredis(*static_cast<redisReply*>(reply)));
}

}  // namespace sluice::redis
