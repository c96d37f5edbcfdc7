// lib/smtp/stream.cc -- see stream.h.
#include "lib/smtp/stream.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "asio/experimental/as_tuple.hpp"
#include "asio/read.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace sluice::smtp {
namespace {

constexpr auto kNothrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kScratchBytes = 64 * 1024;

}  // namespace

SmtpStream::SmtpStream(asio::ip::tcp::socket socket)
    : socket_(std::move(socket)), timer_(socket_.get_executor()) {
  std::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

SmtpStream::~SmtpStream() = default;

void SmtpStream::Arm(Duration timeout) {
  timed_out_ = false;
  deadline_ = Clock::now() + timeout;
  if (timer_waiting_ && timer_at_ <= deadline_) return;  // it fires first and looks again
  WaitForDeadline();
}

void SmtpStream::WaitForDeadline() {
  // (Re)starting the wait cancels one outstanding; its handler sees operation_aborted.
  timer_waiting_ = true;
  timer_at_ = deadline_;
  timer_.expires_at(deadline_);
  // The handler touches the stream only when the wait really ended: on destruction, Close()
  // or a restart it runs with operation_aborted and does nothing.
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](std::error_code ec) {
    if (ec || alive.expired()) return;
    timer_waiting_ = false;
    if (deadline_ == Clock::time_point::max()) return;  // nothing timed now; the next Arm waits again
    if (Clock::now() < deadline_) {
      WaitForDeadline();  // the operation began after this wait did: its own deadline is later
      return;
    }
    timed_out_ = true;
    std::error_code ignored;
    socket_.cancel(ignored);
  });
}

void SmtpStream::Disarm() { deadline_ = Clock::time_point::max(); }

asio::awaitable<std::error_code> SmtpStream::ReadInto(std::string& buf, size_t max_append,
                                                      Duration timeout, Wait wait) {
  if (max_append == 0) max_append = 1;
  if (!pending_.empty()) {
    size_t n = std::min(max_append, pending_.size());
    buf.append(pending_, 0, n);
    pending_.erase(0, n);
    co_return std::error_code();
  }
  Arm(timeout);
  std::error_code result;
  if (tls_) {
    size_t old = buf.size();
    size_t want = std::min(max_append, kScratchBytes);
    buf.resize(old + want);
    auto [ec, n] = co_await tls_->async_read_some(asio::buffer(buf.data() + old, want), kNothrow);
    buf.resize(old + n);
    result = ec;
  } else if (wait == Wait::kBusy) {
    // Straight into our own buffer: Asio tries the read at once and, when nothing is there
    // yet, waits for the socket's next edge without touching epoll.
    size_t want = std::min(max_append, kScratchBytes);
    if (read_buffer_size_ < want) {
      read_buffer_.reset(new char[want]);
      read_buffer_size_ = want;
    }
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(read_buffer_.get(), want), kNothrow);
    buf.append(read_buffer_.get(), n);
    result = ec;
  } else {
    // Wait for readability, then read into a per-thread scratch buffer without suspending in
    // between, so an idle session owns no buffer and no other coroutine can see the scratch.
    read_buffer_.reset();
    read_buffer_size_ = 0;
    thread_local std::unique_ptr<char[]> scratch(new char[kScratchBytes]);
    for (;;) {
      auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, kNothrow);
      if (ec) {
        result = ec;
        break;
      }
      std::error_code rec;
      size_t n = socket_.read_some(asio::buffer(scratch.get(), std::min(max_append, kScratchBytes)), rec);
      if (rec == asio::error::would_block || rec == asio::error::try_again) continue;
      if (rec) {
        result = rec;
        break;
      }
      buf.append(scratch.get(), n);
      break;
    }
  }
  Disarm();
  if (timed_out_) co_return asio::error::timed_out;
  co_return result;
}

asio::awaitable<std::error_code> SmtpStream::WriteAll(std::string_view data, Duration timeout) {
  Arm(timeout);
  std::error_code result;
  if (tls_) {
    auto [ec, n] = co_await asio::async_write(*tls_, asio::buffer(data.data(), data.size()), kNothrow);
    result = ec;
  } else {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), kNothrow);
    result = ec;
  }
  Disarm();
  if (timed_out_) co_return asio::error::timed_out;
  co_return result;
}

asio::awaitable<std::error_code> SmtpStream::StartTlsServer(asio::ssl::context& ctx, Duration timeout) {
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, ctx);
  Arm(timeout);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, kNothrow);
  Disarm();
  if (timed_out_) ec = asio::error::timed_out;
  if (ec) tls_.reset();
  co_return ec;
}

asio::awaitable<std::error_code> SmtpStream::StartTlsClient(asio::ssl::context& ctx, const std::string& sni,
                                                            Duration timeout) {
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, ctx);
  if (!sni.empty()) {
    SSL_set_tlsext_host_name(tls_->native_handle(), sni.c_str());
    // When the context verifies the peer (a ca_file was given), the certificate must also
    // name the host we meant to reach (RFC 6125); without verification this has no effect.
    SSL_set1_host(tls_->native_handle(), sni.c_str());
  }
  Arm(timeout);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kNothrow);
  Disarm();
  if (timed_out_) ec = asio::error::timed_out;
  if (ec) tls_.reset();
  co_return ec;
}

asio::awaitable<void> SmtpStream::Shutdown(Duration timeout) {
  if (tls_ && socket_.is_open()) {
    Arm(timeout);
    auto [ec] = co_await tls_->async_shutdown(kNothrow);
    (void)ec;
    Disarm();
  }
  Close();
}

size_t SmtpStream::ReadableNow() {
  size_t n = pending_.size();
  if (tls_) n += static_cast<size_t>(SSL_pending(tls_->native_handle()));
  std::error_code ec;
  n += socket_.available(ec);
  return n;
}

asio::awaitable<bool> SmtpStream::WaitReadable(Duration timeout) {
  if (ReadableNow() > 0) co_return true;
  Arm(timeout);
  auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, kNothrow);
  Disarm();
  // Readable also means the peer closed; the next read tells which.
  co_return !ec && !timed_out_;
}

void SmtpStream::Close() {
  std::error_code ec;
  timer_.cancel();
  timer_waiting_ = false;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

void SmtpStream::CancelPending() {
  std::error_code ec;
  socket_.cancel(ec);
}

std::string SmtpStream::tls_version() const {
  if (!tls_) return "";
  const char* v = SSL_get_version(tls_->native_handle());
  return v ? v : "";
}

std::string SmtpStream::tls_cipher() const {
  if (!tls_) return "";
  const char* c = SSL_get_cipher_name(tls_->native_handle());
  return c ? c : "";
}

bool SmtpStream::peer_certificate_verified() const {
  if (!tls_) return false;
  SSL* ssl = tls_->native_handle();
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return false;
  X509_free(cert);
  return SSL_get_verify_result(ssl) == X509_V_OK;
}

std::string SmtpStream::peer_certificate_cn() const {
  if (!peer_certificate_verified()) return "";
  X509* cert = SSL_get1_peer_certificate(tls_->native_handle());
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

}  // namespace sluice::smtp
