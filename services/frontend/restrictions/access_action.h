// services/frontend/restrictions/access_action.h
//
// The right-hand side of a Postfix access table, which is also what a policy server answers
// (access(5), SMTPD_POLICY_README): OK, RELAY or all digits (permit), DUNNO, REJECT [text],
// DEFER [text], DEFER_IF_PERMIT [text], DEFER_IF_REJECT [text], "4NN/5NN text" (the code
// and, when the text starts with one, the enhanced code), PREPEND header: value, HOLD
// [text], DISCARD [text], WARN [text], INFO [text]. FILTER, REDIRECT and BCC are understood
// and ignored with a warning (the frontend cannot change where mail goes).
//
// Replies follow Postfix's check_table_result: "<name>: Client host rejected: text" with
// REJECT 554 5.7.1 and DEFER 450 4.7.1 (access_map_reject_code/access_map_defer_code) and
// "Access denied" when the table gives no text; DEFER_IF_* say "Service unavailable".
//
// Never: does I/O; accepts an action it does not know (a table with one fails to load).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "services/frontend/restrictions/check.h"

namespace sluice::frontend::restrictions {

struct AccessAction {
  enum class Kind {
    kOk, kDunno, kReject, kDefer, kDeferIfPermit, kDeferIfReject, kCode,
    kPrepend, kHold, kDiscard, kWarn, kInfo, kUnsupported,
  };
  Kind kind = Kind::kDunno;
  int code = 0;        // kCode: the SMTP code
  std::string word;    // the action as written (for logs: "FILTER")
  std::string text;    // what follows the action word
};

absl::StatusOr<AccessAction> ParseAccessAction(std::string_view value);

// What the action means for `name` (the client "name[addr]", the HELO name, the sender or
// the recipient) of the class `what` ("Client host", "Helo command", "Sender address",
// "Recipient address"), found by `source` (the table or policy server, for the log line).
Verdict VerdictFor(const AccessAction& action, std::string_view name, std::string_view what, std::string_view source);

}  // namespace sluice::frontend::restrictions
