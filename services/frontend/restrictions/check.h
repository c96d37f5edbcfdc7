// services/frontend/restrictions/check.h
//
// One check of the frontend's restriction lists, what Postfix calls a restriction in
// smtpd_{client,helo,sender,recipient,data,end_of_data}_restrictions: it looks at the
// session and the envelope so far (a Request) and answers a Verdict, as an access table or a
// policy server would: OK (permit: ends this list), DUNNO (no opinion: the next check runs),
// REJECT / DEFER with a reply (ends every list), DEFER_IF_PERMIT / DEFER_IF_REJECT (turn a
// later permit / reject into a 4xx). A verdict may also carry actions for the transaction
// that do not end the list: headers to prepend, HOLD, DISCARD (which also permits).
//
// A check is asynchronous (a coroutine: it may ask a server, read a cache, wait on DNS) and
// shared by every session of the process, so it is thread-safe. Adding one: see
// checks_from_config.h.
//
// Never: throws out of Evaluate (an infrastructure failure is a kDefer with a 4xx reply, as
// Postfix's 451 4.3.5); answers 5xx for anything but a decision; keeps per-session state
// (a check sees each session only through the Request).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "lib/smtp/reply.h"
#include "lib/smtp/server_handler.h"

namespace sluice::frontend::restrictions {

// Which list a check belongs to: the SMTP command it judges (Postfix's restriction classes).
enum class Stage { kConnect, kHelo, kMail, kRcpt, kData, kEndOfData };
inline constexpr int kStageCount = 6;

// The command being answered, as Postfix names it in policy requests (protocol_state):
// CONNECT, EHLO/HELO, MAIL, RCPT, DATA, END-OF-MESSAGE.
std::string_view ProtocolStateName(Stage stage, bool esmtp);

enum class Action {
  kDunno,          // no opinion: the next check of the list runs
  kOk,             // permit: the rest of this list is skipped (later lists still run)
  kReject,         // refuse with `reply` (5xx); a DEFER_IF_REJECT seen earlier makes it 4xx
  kDefer,          // refuse with `reply` (4xx)
  kDeferIfPermit,  // remember `reply`; if the evaluation ends in a permit, refuse with it
  kDeferIfReject,  // remember `reply`; a later reject becomes it
};

struct Verdict {
  Action action = Action::kDunno;
  smtp::Reply reply;                   // for every action but kDunno/kOk
  std::vector<std::string> prepend;    // PREPEND: "Name: value" header lines for the message
  std::optional<std::string> hold;     // HOLD: the reason; the message goes to the hold queue
  bool discard = false;                // DISCARD: accept, deliver nothing (acts as kOk)
  std::string detail;                  // why, for the log line (a table key, a list name…)
  std::optional<std::string> warn;     // WARN text (or an unsupported action): logged, no effect

  static Verdict Dunno() { return Verdict{}; }
  static Verdict Ok(std::string detail = "") {
    Verdict v;
    v.action = Action::kOk;
    v.detail = std::move(detail);
    return v;
  }
  static Verdict Refuse(Action action, smtp::Reply reply, std::string detail = "") {
    Verdict v;
    v.action = action;
    v.reply = std::move(reply);
    v.detail = std::move(detail);
    return v;
  }
};

// What a check may look at. Views into the session and transaction: valid during Evaluate.
struct Request {
  Stage stage = Stage::kConnect;         // the list being evaluated
  Stage command = Stage::kConnect;       // the command being answered (RCPT when delayed)
  const smtp::SessionFacts* facts = nullptr;  // client address/name, HELO, TLS, session id
  bool client_trusted = false;           // mynetworks, or a verified client certificate
  bool in_transaction = false;           // MAIL was given: `sender` is meaningful
  std::string_view sender;               // MAIL FROM, "" for the null sender <>
  std::string_view recipient;            // RCPT TO (at RCPT only)
  uint32_t recipient_count = 0;          // recipients accepted so far (at DATA: all)
  uint64_t size = 0;                     // MAIL SIZE=, or the content size at END-OF-MESSAGE
  std::string_view instance;             // unique per transaction (policy "instance")
  asio::any_io_executor executor;        // the session's executor, for a check's own I/O
};

class Check {
 public:
  virtual ~Check() = default;
  // Short, stable, lower_snake: the "check" in log lines and the metric label.
  virtual std::string_view name() const = 0;
  // Called at connect, before the greeting, for every check of every list: start slow work
  // whose answer Evaluate will want (DNS queries), without waiting for it. Default: nothing.
  virtual void Prefetch(const smtp::SessionFacts& /*facts*/, asio::any_io_executor /*executor*/) {}
  virtual asio::awaitable<Verdict> Evaluate(const Request& request) = 0;
};

}  // namespace sluice::frontend::restrictions
