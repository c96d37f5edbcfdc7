// lib/smtp/stream.h
//
// One SMTP connection's byte stream: a TCP socket that can be upgraded to TLS in place
// (STARTTLS, RFC 3207), with reads and writes bounded by a timeout. Reads append to the
// caller's buffer. A read that may wait long (an idle session) waits for readability before
// it reads into a per-thread scratch buffer, so an idle session holds no read buffer of its
// own; a read expected soon (a reply, the rest of a transaction) reads straight into the
// stream's own buffer, one system call where the readiness wait costs two (Asio re-arms epoll
// for each wait). The timeout is a deadline checked by one timer that is only re-armed when
// it fires early or a shorter deadline comes, not set and cancelled around every read and
// write (each of those was a timer-queue update and often a timerfd_settime call).
//
// Must be used from its executor's thread only, except Cancel() which may be posted there.
// Never: keeps plaintext bytes read before STARTTLS (the caller drops them: CVE-2011-0411);
// blocks a thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/ssl/context.hpp"
#include "asio/ssl/stream.hpp"
#include "asio/steady_timer.hpp"

namespace sluice::smtp {

using Duration = std::chrono::steady_clock::duration;

class SmtpStream {
 public:
  explicit SmtpStream(asio::ip::tcp::socket socket);
  ~SmtpStream();
  SmtpStream(const SmtpStream&) = delete;
  SmtpStream& operator=(const SmtpStream&) = delete;

  // How a read waits: kIdle holds no buffer while it waits (and frees the stream's own);
  // kBusy reads into the stream's own buffer (allocated on first use), one system call per
  // read.
  enum class Wait { kIdle, kBusy };
  // Appends at most max_append bytes (at least 1 on success) to `buf`. On timeout returns
  // asio::error::timed_out; on EOF asio::error::eof.
  asio::awaitable<std::error_code> ReadInto(std::string& buf, size_t max_append, Duration timeout,
                                            Wait wait = Wait::kIdle);
  // Writes all of `data`.
  asio::awaitable<std::error_code> WriteAll(std::string_view data, Duration timeout);

  // TLS handshakes; on success every later read/write is encrypted. A client `sni` (a host
  // name, never an address) is sent as SNI and, when the context verifies peers, must be
  // named by the server's certificate.
  asio::awaitable<std::error_code> StartTlsServer(asio::ssl::context& ctx, Duration timeout);
  asio::awaitable<std::error_code> StartTlsClient(asio::ssl::context& ctx, const std::string& sni,
                                                  Duration timeout);
  // Sends close_notify when TLS is up (bounded by timeout), then closes.
  asio::awaitable<void> Shutdown(Duration timeout);

  // Aborts pending operations (they complete with operation_aborted) and closes the socket.
  void Close();
  // Aborts pending operations only; the connection stays usable (kill/drain wake-up).
  void CancelPending();
  // Bytes the peer has sent that no read has returned yet, as far as can be told without
  // reading: read-ahead, decrypted TLS bytes and the socket's receive queue (a TLS record
  // still in the TLS layer's own buffer is not seen). For the pipelining checks.
  size_t ReadableNow();
  // Waits until the peer sends something (true) or `timeout` passes (false), reading nothing.
  asio::awaitable<bool> WaitReadable(Duration timeout);
  // Bytes read ahead by someone else (e.g. after a PROXY header) that the next ReadInto
  // returns first.
  void Unread(std::string_view bytes) { pending_.append(bytes); }

  bool tls() const { return tls_ != nullptr; }
  std::string tls_version() const;
  std::string tls_cipher() const;
  // The peer presented a certificate that verified against the context's CA (mTLS).
  bool peer_certificate_verified() const;
  // The subject CN of the verified peer certificate ("" when none).
  std::string peer_certificate_cn() const;

  asio::ip::tcp::socket& socket() { return socket_; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  using Clock = std::chrono::steady_clock;
  void Arm(Duration timeout);
  void Disarm();
  void WaitForDeadline();

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  bool timed_out_ = false;
  Clock::time_point deadline_ = Clock::time_point::max();  // max: no operation is timed
  bool timer_waiting_ = false;                             // timer_ has a wait outstanding
  Clock::time_point timer_at_;                             // when that wait ends
  std::unique_ptr<char[]> read_buffer_;                    // Wait::kBusy reads land here
  size_t read_buffer_size_ = 0;
  std::string pending_;
  // The timer's handler may already be queued when the stream goes away: it checks this.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sluice::smtp
