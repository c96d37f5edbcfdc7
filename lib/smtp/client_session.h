// lib/smtp/client_session.h
//
// The client side of one SMTP (or LMTP, RFC 2033) connection, for the stages that relay:
// the frontend to its filter, the filter-bridge to the after-filter server, reinject to its
// next hop. Connect and read the greeting, EHLO/LHLO with capability parsing, STARTTLS,
// XFORWARD (only the announced attributes, split under 512 bytes), any command with its
// reply, pipelined commands, and DATA content dot-stuffed and streamed. Every wait is
// bounded by a timeout.
//
// Errors are Status values: kUnavailable (cannot connect, connection lost),
// kDeadlineExceeded (timeout), kInternal (the server broke the protocol). A Reply, whatever
// its code, is a successful exchange.
// Never: sends a command over a connection in an unknown state (after an error every call
// fails until Close); reads a reply without a bound on its size.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/ssl/context.hpp"
#include "lib/net/host_port.h"
#include "lib/smtp/capabilities.h"
#include "lib/smtp/dot_stuffer.h"
#include "lib/smtp/reply.h"
#include "lib/smtp/stream.h"
#include "lib/smtp/xforward.h"

namespace sluice::smtp {

struct ClientTimeouts {
  Duration connect = std::chrono::seconds(30);
  Duration reply = std::chrono::seconds(300);   // each command's reply
  Duration data_done = std::chrono::seconds(600);  // the reply after "."
};

class SmtpClient {
 public:
  SmtpClient(asio::any_io_executor executor, ClientTimeouts timeouts);
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Resolves (a name may yield several addresses; tried in order), connects, returns the
  // greeting (any code).
  asio::awaitable<absl::StatusOr<Reply>> Connect(const net::HostPort& target);
  // EHLO (or LHLO when lmtp); capabilities() is filled from a 250 reply.
  asio::awaitable<absl::StatusOr<Reply>> Hello(std::string_view name, bool lmtp = false);
  asio::awaitable<absl::StatusOr<Reply>> Helo(std::string_view name);
  // STARTTLS then the handshake; after it, call Hello again (RFC 3207 §4.2).
  asio::awaitable<absl::StatusOr<Reply>> StartTls(asio::ssl::context& ctx, const std::string& sni);
  // Sends every XFORWARD command needed for `attrs` (only announced attributes), each
  // answered; returns the first non-2xx reply, or the last reply.
  asio::awaitable<absl::StatusOr<Reply>> Xforward(const XforwardAttrs& attrs);

  // One command line (without CRLF) and its reply.
  asio::awaitable<absl::StatusOr<Reply>> Command(std::string_view line);
  // Pipelining (RFC 2920): queue lines, send them in one write, then read one reply each.
  void Queue(std::string_view line);
  asio::awaitable<absl::Status> SendQueued();
  asio::awaitable<absl::StatusOr<Reply>> ReadReply(Duration timeout);
  asio::awaitable<absl::StatusOr<Reply>> ReadReply() { return ReadReply(timeouts_.reply); }

  // Content after a 354: dot-stuffed and written in large writes (buffered up to a bound).
  asio::awaitable<absl::Status> SendContent(std::string_view content);
  // Ends the content ("." line) and reads the final reply (LMTP: use FinishContentLmtp).
  asio::awaitable<absl::StatusOr<Reply>> FinishContent();
  // LMTP (RFC 2033 §4.2): one reply per accepted recipient after the ".".
  asio::awaitable<absl::StatusOr<std::vector<Reply>>> FinishContentLmtp(size_t recipients);

  // QUIT; with wait_reply=false the 221 is not awaited (Postfix's proxy does this). Closes.
  asio::awaitable<void> Quit(bool wait_reply);
  // Closes at once; every later call fails and connected() is false.
  void Close();

  bool connected() const { return stream_ != nullptr && !broken_; }
  const Capabilities& capabilities() const { return caps_; }
  bool tls() const { return stream_ && stream_->tls(); }
  std::string peer() const { return peer_; }
  const ClientTimeouts& timeouts() const { return timeouts_; }
  void set_reply_timeout(Duration d) { timeouts_.reply = d; }
  // A kept connection's next transaction waits by the limits in force then.
  void set_timeouts(const ClientTimeouts& t) { timeouts_ = t; }

 private:
  asio::awaitable<absl::Status> Write(std::string_view data, Duration timeout);
  absl::Status Broken(absl::Status st);

  asio::any_io_executor executor_;
  ClientTimeouts timeouts_;
  std::unique_ptr<SmtpStream> stream_;
  std::string in_;
  std::string out_;
  DotStuffer stuffer_;
  Capabilities caps_;
  std::string peer_;
  bool broken_ = false;
};

}  // namespace sluice::smtp
