// lib/smtp/reply.h
//
// SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463), and the one table of
// every reply sluice itself originates, named (replies::kRelayDenied …), so no stage types a
// reply literal. Replies relayed from another server keep their text unchanged.
//
// Never: lets an infrastructure failure map to 5xx (5xx is a decision: policy, syntax, verdict);
// puts a CR, LF or NUL of a reply text on the wire (Format sends them as spaces).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::smtp {

struct Reply {
  int code = 0;                    // 100..599
  std::string enhanced;            // "2.0.0"; empty when the server gave none
  std::vector<std::string> lines;  // text of each line, without code and enhanced code

  // The wire form: "250-first\r\n250 last\r\n"; the enhanced code is repeated on each
  // line when set (RFC 2034). An empty reply text is sent as the code alone.
  std::string Format() const;
  // Appends the wire form to out (avoids a temporary on the hot path).
  void AppendTo(std::string& out) const;
  // One line for logs: "550 5.7.1 text / text2".
  std::string ToString() const;

  bool positive() const { return code >= 200 && code < 400; }
  bool intermediate() const { return code >= 300 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500 && code < 600; }
  bool empty() const { return code == 0; }
};

// Builds a one-line reply.
Reply MakeReply(int code, std::string_view enhanced, std::string_view text);

// True when `s` looks like an enhanced status code "c.sss.ddd" (RFC 3463 §2).
bool IsEnhancedCode(std::string_view s);

// The replies sluice originates. Functions where the text names something (host, address).
namespace replies {

// Greetings and session end.
Reply Greeting(std::string_view hostname, std::string_view banner);  // 220 host ESMTP
Reply Closing(std::string_view hostname);                            // 221 2.0.0 Bye
Reply ServiceNotAvailable(std::string_view hostname);                // 421 4.3.2 (max sessions, draining, backpressure)
Reply TooManyConnectionsFromClient(std::string_view hostname, std::string_view client);  // 421 4.7.0
Reply ConnectionRateExceeded(std::string_view hostname, std::string_view client);        // 421 4.7.0
Reply TooManyErrors(std::string_view hostname);                      // 421 4.7.0 (hard error limit)
Reply Timeout(std::string_view hostname);                            // 421 4.4.2 timeout exceeded
Reply SessionDeadline(std::string_view hostname);                    // 421 4.4.2 session too long
Reply Killed(std::string_view hostname);                             // 421 4.7.0 session ended by administrator
Reply ShuttingDown(std::string_view hostname);                       // 421 4.3.2 shutting down (drain deadline)

// Positive.
Reply Ok();                                                          // 250 2.0.0 Ok
Reply HeloOk(std::string_view hostname);                             // 250 hostname
Reply StartMailInput();                                              // 354 End data with <CR><LF>.<CR><LF>
Reply Queued(std::string_view queue_id);                             // 250 2.0.0 Ok: queued as ID
Reply Discarded();                                                   // 250 2.0.0 Ok: discarded (a filter's verdict)
Reply ReadyToStartTls();                                             // 220 2.0.0 Ready to start TLS
Reply Help();                                                        // 214 2.0.0 …
Reply VrfyDisabled();                                                // 502 5.5.1 VRFY command is disabled
Reply CannotVrfy();                                                  // 252 2.0.0 (when enabled: we never verify)

// Protocol and syntax errors (5xx by decision).
Reply UnknownCommand();                                              // 502 5.5.2 Error: command not recognized
Reply CommandNotImplemented();                                       // 502 5.5.1 not implemented
Reply LineTooLong();                                                 // 500 5.5.0 Error: line too long
Reply BareNewlineInCommand();                                        // 500 5.5.2 Error: bare <LF> received
Reply BareNewlineInData();                                           // 550 5.5.2 Error: bare <CR> or <LF> received
Reply NulInData();                                                   // 550 5.6.0 Error: NUL character in message content
// Input before the reply it must wait for (smtpd_forbid_unauth_pipelining): the session ends.
Reply ProtocolSynchronization();                                     // 554 5.5.0 Error: SMTP protocol synchronization
Reply SyntaxError(std::string_view usage);                           // 501 5.5.4 Syntax: usage
Reply BadSenderSyntax();                                             // 501 5.1.7 Bad sender address syntax
Reply BadRecipientSyntax();                                          // 501 5.1.3 Bad recipient address syntax
Reply UnsupportedParameter(std::string_view param);                  // 555 5.5.4 Unsupported option: X
Reply NeedHelo();                                                    // 503 5.5.1 Error: send HELO/EHLO first
Reply NeedMail();                                                    // 503 5.5.1 Error: need MAIL command
Reply NeedRcpt();                                                    // 503 5.5.1 Error: need RCPT command
Reply NestedMail();                                                  // 503 5.5.1 Error: nested MAIL command
Reply AlreadyTls();                                                  // 554 5.5.1 Error: TLS already active
Reply TlsNotAvailable();                                             // 454 4.7.0 TLS not available due to local problem
Reply XforwardNotAuthorized();                                       // 550 5.7.0 Error: insufficient authorization
Reply XforwardInTransaction();                                       // 503 5.5.1 Error: MAIL transaction in progress
Reply XforwardBadSyntax(std::string_view detail);                    // 501 5.5.4 Syntax: …
Reply TooManyTransactions();                                         // 421-free: 452 4.5.3 too many mail transactions

// Policy decisions.
Reply RelayDenied(std::string_view recipient);                       // 554 5.7.1 <rcpt>: Relay access denied
Reply TooManyRecipients();                                           // 452 4.5.3 Error: too many recipients
Reply MessageTooBig();                                               // 552 5.3.4 Message size exceeds fixed limit
Reply HeaderTooBig();                                                // 552 5.3.4 Message header size exceeds limit
Reply SizeParameterTooBig();                                         // 552 5.3.4 Message size exceeds fixed maximum message size
Reply MessageRateExceeded(std::string_view client);                  // 450 4.7.1 Error: too much mail from ADDR
Reply RecipientRateExceeded(std::string_view client);                // 450 4.7.1 Error: too many recipients from ADDR
Reply TooManyHops();                                                 // 554 5.4.6 Error: too many hops (mail loop)
Reply ClientNotAuthorized();                                         // 554 5.7.1 Access denied (reinject outsiders)

// Recipient verification (frontend; Postfix reject_unverified_recipient with
// unverified_recipient_reject_code = 550). WHY is cut at 250 bytes, as Postfix does.
Reply UndeliverableRecipient(std::string_view recipient, std::string_view why);  // 550 5.1.1 <rcpt>: Recipient address rejected: undeliverable address: WHY
Reply UnverifiedRecipient(std::string_view recipient, std::string_view why);     // 450 4.1.1 <rcpt>: Recipient address rejected: unverified address: WHY
Reply VerificationProblem(std::string_view recipient);                           // 450 4.1.1 <rcpt>: Recipient address rejected: address verification problem

// Filter verdicts (filter-bridge), with the texts of the config schema and of Postfix's
// milter8.c; a configured or filter-supplied code/text replaces them.
Reply RuleReject();                                                  // 550 5.7.1 Message content rejected
Reply RuleTempfail();                                                // 451 4.7.1 Message content deferred
Reply FilterReject();                                                // 550 5.7.1 Message rejected (gRPC REJECT)
Reply FilterTempfail();                                              // 451 4.7.1 Try again later (gRPC TEMPFAIL)
Reply MilterReject();                                                // 550 5.7.1 Command rejected (SMFIR_REJECT)
Reply MilterTempfail();                                              // 451 4.7.1 Service unavailable - try again later
Reply FilterFailureTempfail();                                       // 451 4.7.1 (a failed filter, on_failure tempfail)
Reply FilterFailureReject();                                         // 550 5.5.0 Service unavailable (on_failure reject)

// Restriction checks before DATA (frontend; Postfix smtpd_check.c wording).
Reply UnknownRelayRecipient(std::string_view recipient);             // 550 5.1.1 <r>: Recipient address rejected: User unknown in relay recipient table
// An access table's or policy server's refusal: "<name>: Class rejected: text" with the
// code and enhanced code the table gave (REJECT 554 5.7.1, DEFER 450 4.7.1 by default).
Reply AccessRejected(int code, std::string_view enhanced, std::string_view name, std::string_view what,
                     std::string_view text);                         // e.g. 554 5.7.1 <r>: Recipient address rejected: Access denied
Reply PolicyServerError();                                           // 451 4.3.5 Server configuration problem
Reply DnsblBlocked(std::string_view client, std::string_view sites);  // 554 5.7.1 Service unavailable; client [addr] blocked using zen…

// Infrastructure failures: always 4xx.
Reply ProxyError();                                                  // 451 4.3.0 Error: queue file write error
Reply TransactionTempUnavailable();                                  // 451 4.3.0 Service temporarily unavailable, try again
Reply QueueFull();                                                   // 452 4.3.1 Insufficient system storage
Reply QueueWriteError();                                             // 451 4.3.0 Error: queue file write error
Reply LocalError();                                                  // 451 4.3.0 Error: local error in processing

}  // namespace replies
}  // namespace sluice::smtp
