// lib/smtp/dialogue_log.h
//
// The log lines of the SMTP dialogue that a support or abuse desk greps (docs/logging.md):
// Postfix's
//   NOQUEUE: reject: RCPT from name[addr]: 554 5.7.1 <r>: Relay access denied;
//            from=<s> to=<r> proto=ESMTP helo=<h>
// as one logfmt line, the same facts in the same order:
//   event=reject queue_id=NOQUEUE command=RCPT client=name[addr] reply="554 5.7.1 …"
//     from=<s> to=<r> proto=ESMTP helo=<h> check=relay_access session=F1…
// event=reject for every refusal (4xx or 5xx) of a command, event=accept for each recipient
// of a message whose end of DATA was accepted (with the queue id of the reply "queued as
// ID" and the Message-ID). `check` names who refused: a restriction check, a limit of the
// session, or the stage behind (docs/logging.md lists them).
//
// Never: logs message content; logs a line without the session id.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/smtp/reply.h"

namespace sluice::smtp {

// The client a line names. At the frontend, the session's own client; behind it, the
// original client XFORWARD named, under the frontend's session id (IDENT).
struct DialogueClient {
  std::string session_id;
  std::string name_addr;  // Postfix's "name[address]" ("unknown[192.0.2.1]")
  std::string helo;       // "" before HELO/EHLO
  std::string proto;      // SMTP or ESMTP (Postfix's proto=)
};

// Who refused, and why (for the line's check= and detail=).
struct RefusalNote {
  std::string check;
  std::string detail;
};

struct DialogueLine {
  std::string_view event = "reject";     // reject | accept
  std::string_view queue_id = "NOQUEUE";
  std::string_view command;              // CONNECT, EHLO, MAIL, RCPT, DATA, END-OF-MESSAGE, …
  const Reply* reply = nullptr;
  std::optional<std::string_view> from;  // the sender, once MAIL named one
  std::string_view to;                   // the recipient the line is about, if any
  RefusalNote note;
  std::string_view message_id;           // once the header was read
};

void LogDialogue(const DialogueClient& client, const DialogueLine& line);

// The queue id in a "250 2.0.0 Ok: queued as ID" reply (ours or Postfix's); "" if none.
std::string QueueIdFromReply(const Reply& reply);

}  // namespace sluice::smtp
