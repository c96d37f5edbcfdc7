// lib/smtp/server_handler.h
//
// What a stage plugs into the shared SMTP server session (server_session.h): the decisions
// and the relaying, called in protocol order from the session's coroutine. The session owns
// the dialogue (greeting, EHLO, pipelining, syntax, limits, DATA decoding, STARTTLS); the
// handler owns what each accepted command means for this stage (check, relay, queue).
//
// Never: writes to the client itself; throws (return a Reply; infrastructure failures are 4xx).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "asio/awaitable.hpp"
#include "lib/smtp/command.h"
#include "lib/smtp/dialogue_log.h"
#include "lib/smtp/reply.h"
#include "lib/smtp/xforward.h"

namespace sluice::smtp {

// Facts about the session the handler may read at any time.
struct SessionFacts {
  std::string session_id;
  std::string client_address;   // the real client (after PROXY protocol)
  uint16_t client_port = 0;
  std::string client_name = "unknown";  // verified reverse name
  std::string peer_address;     // the TCP peer (differs from client with PROXY protocol)
  std::string helo;             // HELO/EHLO argument, "" before
  bool esmtp = false;           // EHLO (vs HELO)
  bool tls = false;
  std::string tls_version;
  std::string tls_cipher;
  bool tls_client_verified = false;  // peer presented a certificate verified by our CA
  std::string tls_client_cn;
  uint32_t transactions = 0;    // completed mail transactions
  std::string message_id;       // the current transaction's Message-ID, once its header was read

  // SMTP, ESMTP, ESMTPS (RFC 3848 protocol names for Received:).
  std::string Protocol() const { return !esmtp ? "SMTP" : (tls ? "ESMTPS" : "ESMTP"); }
};

// How DATA content ended, given to OnDataEnd.
enum class DataOutcome {
  kComplete,       // CRLF.CRLF received, content clean: the handler gives the final reply
  kBareNewline,    // bare CR/LF seen: the session rejects; the handler aborts its transaction
  kNulCharacter,   // a NUL octet in the content: the session rejects; the handler aborts
  kUnauthPipelining,  // commands after the final dot before its reply: the session ends; handler aborts
  kTooBig,         // message_size_limit exceeded: the session rejects; handler aborts
  kHeaderTooBig,   // header_size_limit exceeded: the session rejects; handler aborts
  kHandlerFailed,  // OnContent returned an error: the handler gives the (4xx) reply
};

class ServerHandler {
 public:
  virtual ~ServerHandler() = default;

  // The client said HELO/EHLO (facts.helo is set). A non-2xx reply refuses it.
  virtual asio::awaitable<Reply> OnHelo() { co_return Reply{}; }
  // XFORWARD from an authorized peer (the session checks authorization and syntax).
  virtual asio::awaitable<Reply> OnXforward(const XforwardAttrs& /*attrs*/) { co_return Reply{}; }
  // MAIL FROM, syntax-checked. Empty Reply means "250 2.0.0 Ok".
  virtual asio::awaitable<Reply> OnMail(const MailFrom& mail) = 0;
  // RCPT TO, syntax-checked, within max_recipients.
  virtual asio::awaitable<Reply> OnRcpt(const RcptTo& rcpt) = 0;
  // DATA after at least one accepted RCPT. Empty Reply means "354 …"; anything else refuses.
  virtual asio::awaitable<Reply> OnData() = 0;
  // Decoded content (dot-unstuffed, CRLF lines), in order, in chunks of any size. An error
  // stops further OnContent calls; the session still reads to the end of the data.
  virtual asio::awaitable<absl::Status> OnContent(std::string_view chunk) = 0;
  // End of the content. For kComplete and kHandlerFailed the reply is the client's; for the
  // others the handler aborts and the session sends its own rejection (return value ignored).
  virtual asio::awaitable<Reply> OnDataEnd(DataOutcome outcome) = 0;
  // The transaction ends without DATA completing: RSET, a new HELO/EHLO, or the session's end.
  virtual asio::awaitable<void> OnReset() = 0;
  // The session ends (after QUIT, a timeout, a kill or a lost client). Called once.
  virtual asio::awaitable<void> OnClose() { co_return; }
  // The session is being killed (an administrator, or the drain deadline): abort whatever
  // the handler is waiting on (e.g. close its connection to the next stage) so the pending
  // call returns at once with its failure. Called on the session's thread.
  virtual void OnKill() {}
  // A command line arrived (before it is parsed or run): the session record's
  // last_command_at. Called on the session's thread; keep it cheap.
  virtual void OnCommand() {}
  // STARTTLS completed (facts.tls* are set).
  virtual void OnTlsStarted() {}
  // The STARTTLS handshake failed (the session then ends); for metrics.
  virtual void OnTlsFailed() {}
  // The session enforced a limit ("line_length", "max_recipients", "message_size",
  // "header_size", "hard_errors", "timeout", "bare_newline", "nul_character",
  // "unauth_pipelining", "session_deadline", "max_transactions", "junk_commands"), for metrics.
  virtual void OnLimitHit(std::string_view /*limit*/) {}
  // Who refused what the handler just returned (a check, a limit, the stage behind): the
  // session logs every refusal as one line (dialogue_log.h) and asks right after the call.
  virtual RefusalNote TakeRefusalNote() { return {}; }
  // The client the session's log lines name, filled from the facts: the stages behind the
  // frontend put XFORWARD's original client and its IDENT (the frontend's session id) here.
  virtual void DescribeClient(DialogueClient& /*client*/) const {}
  // Another line of the EHLO reply (e.g. "XFORWARD NAME ADDR …"); "" for none.
  virtual std::string ExtraEhloKeywords() { return ""; }
};

}  // namespace sluice::smtp
