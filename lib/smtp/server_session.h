// lib/smtp/server_session.h
//
// The SMTP server dialogue every stage shares, as one coroutine that reads like the protocol:
// greet, read a command, answer, repeat (RFC 5321 §3, §4). It owns: HELO/EHLO and the
// capability list, PIPELINING (commands buffered ahead are answered in order, replies are
// flushed when no further command is buffered, RFC 2920 §3.2), syntax of every command,
// command line length, recipient count, soft/hard error limits with the error sleep, junk
// commands, per-command and whole-session timeouts, STARTTLS (RFC 3207; plaintext buffered
// after the command is discarded), XFORWARD authorization, and DATA decoding with
// message_size_limit, header_size_limit, the bare CR/LF rule and the NUL rule. And Postfix's
// smtpd_forbid_unauth_pipelining: a client that talks before the greeting, pipelines a
// command after which it must wait (EHLO, HELO, DATA, NOOP, VRFY, EXPN, STARTTLS), pipelines
// anything before EHLO or after HELO (no PIPELINING announced), sends content before the 354
// or anything but QUIT after the final dot before its reply gets "554 5.5.0" and is
// disconnected, its input logged. What each command *means* is the stage's ServerHandler.
//
// Never: sends 250 for DATA itself (the handler decides); lets a bare CR/LF end a line or
// the message; passes on content holding a NUL unless allowed; runs a command or passes on a
// message that an unauthorized pipelining arrived with; buffers more than one content chunk
// plus one read per session.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/ssl/context.hpp"
#include "lib/smtp/reply.h"
#include "lib/smtp/server_handler.h"
#include "lib/smtp/stream.h"

namespace sluice::smtp {

// Everything the dialogue needs to know, taken once per session from config and Limits.
struct ServerSettings {
  std::string hostname = "localhost";
  std::string banner;  // after "220 hostname ESMTP"
  size_t line_length_limit = 2048;
  Duration command_timeout = std::chrono::seconds(300);
  Duration session_deadline{};           // zero: none
  uint64_t message_size_limit = 10240000;  // zero: none
  uint64_t header_size_limit = 102400;
  uint32_t max_recipients = 1000;
  uint32_t recipient_overshoot_limit = 1000;  // refusals past max_recipients that are no error
  uint32_t max_transactions = 0;         // zero: none
  uint32_t soft_error_limit = 10;
  uint32_t hard_error_limit = 20;
  Duration error_sleep = std::chrono::seconds(1);
  uint32_t junk_command_limit = 100;
  asio::ssl::context* tls = nullptr;     // STARTTLS offered when set
  bool xforward_allowed = false;         // the peer may send XFORWARD (advertised then)
  // A peer whose TLS client certificate verified against our CA may send XFORWARD too
  // (trust between stages by certificate rather than by address).
  bool xforward_by_certificate = false;
  bool require_helo = true;              // RFC 5321 §4.1.4: HELO/EHLO before MAIL
  bool enable_vrfy = false;
  bool advertise_dsn = true;
  bool advertise_smtputf8 = true;
  bool advertise_8bitmime = true;
  size_t content_chunk_bytes = 64 * 1024;  // OnContent granularity
  // smtpd_forbid_unauth_pipelining (ServerConfig, default on): see the header comment.
  bool forbid_unauth_pipelining = true;
  // Wait this long between the greeting's first line ("220-") and its last, and refuse a
  // client that talks meanwhile (postscreen_greet_wait; zero: no wait, only what arrived
  // before the greeting is judged). Needs forbid_unauth_pipelining.
  Duration greet_wait{};
  // Pass on content holding a NUL octet (ServerConfig.allow_nul_in_content); off: 550 5.6.0.
  bool allow_nul_in_content = false;
  // Send the greeting (false when the stage already refused or sent it).
  bool send_greeting = true;
};

// Lets other threads end a session: an administrator's kill, or a drain. Thread-safe.
class SessionControl : public std::enable_shared_from_this<SessionControl> {
 public:
  explicit SessionControl(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // End now with "421 4.7.0" (or the drain-deadline reply when `shutdown`).
  void Kill(bool shutdown = false);
  // End at the next command boundary outside a transaction ("421 4.3.2"); a session idle
  // between transactions ends at once.
  void Drain();

  bool kill_requested() const { return kill_.load(); }
  // Waiting for a command between transactions after at least one completed: an upstream's
  // kept connection at rest (SessionServer::EndLongestResting may end it). 0: not resting.
  int64_t resting_since() const { return resting_since_.load(); }
  bool shutdown_requested() const { return shutdown_.load(); }
  bool drain_requested() const { return drain_.load(); }

  // Used by the session coroutine on its own thread.
  void Attach(SmtpStream* stream, ServerHandler* handler) {
    stream_ = stream;
    handler_ = handler;
  }
  void Detach() {
    stream_ = nullptr;
    handler_ = nullptr;
  }
  void set_idle(bool idle, bool after_transaction) {
    idle_.store(idle);
    resting_since_.store(idle && after_transaction ? std::chrono::steady_clock::now().time_since_epoch().count() : 0);
  }

 private:
  void CancelOnExecutor(bool only_if_idle);

  asio::any_io_executor executor_;
  SmtpStream* stream_ = nullptr;  // touched on the executor only
  ServerHandler* handler_ = nullptr;  // likewise; told to abort its own waits on a kill
  std::atomic<bool> kill_{false};
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> drain_{false};
  std::atomic<bool> idle_{false};
  std::atomic<int64_t> resting_since_{0};
};

// Runs one SMTP session to its end. `facts` must outlive the call (the handler reads it).
// The stream is shut down when it returns. Never throws.
asio::awaitable<void> RunServerSession(SmtpStream& stream, ServerHandler& handler, SessionFacts& facts,
                                       const ServerSettings& settings,
                                       std::shared_ptr<SessionControl> control);

}  // namespace sluice::smtp
