// services/reinject/delivery/bounce.h
//
// Delivery status notifications (Postfix bounce(8)): RFC 3464 reports queued as new messages
// from the null sender to the original envelope sender (RFC 3461 §6.1, RFC 5321 §6.1: a
// report's reverse path is empty, so it can never be reported on in turn). One writer for
// both kinds of report, multipart/report; report-type=delivery-status (RFC 6522):
//   failure  "Undelivered Mail Returned to Sender", Action: failed per recipient;
//   success  "Successful Mail Delivery Report", Action: delivered (final delivery) or
//            relayed (handed to a next hop without DSN, RFC 3461 §5.2.2).
// Three parts:
//   1. text/plain       what happened, in words, one line per reported recipient;
//   2. message/delivery-status  Reporting-MTA, Original-Envelope-Id (ENVID), Arrival-Date,
//                       then per recipient Original-Recipient (ORCPT), Final-Recipient,
//                       Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date;
//   3. the original: message/rfc822 for a failure with RET=FULL, text/rfc822-headers
//      otherwise (RET=HDRS or no RET; Postfix would return the whole message up to
//      bounce_size_limit). A success report always returns the headers only, whatever RET
//      says (RFC 3461 §4.3: a DSN without failures SHOULD; Postfix does the same).
// Honours DSN NOTIFY (RFC 3461 §4.1): NEVER means no report; FAILURE / SUCCESS ask for the
// report of that kind; no NOTIFY means FAILURE (and DELAY). Delay reports are never sent:
// Postfix's delay_warning_time defaults to 0 (none), and so do we (no setting for it).
//
// Never: reports to the null sender; reports on a report (is_bounce); writes a line longer
// than 998 bytes or a CR/LF taken from an address or reply into a header field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/reinject/queue/message_content.h"
#include "services/reinject/queue/queue_writer.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct BounceOptions {
  std::string hostname = "localhost";      // Reporting-MTA, From: domain, Message-ID
  std::string bounce_from = "MAILER-DAEMON";  // From: (local part, or a whole address)
};

enum class ReportKind { kFailure, kSuccess };

// RFC 3464 §2.3.3 Action values we report (delayed/expanded are never sent).
enum class DsnAction { kFailed, kDelivered, kRelayed };
std::string_view DsnActionName(DsnAction action);  // "failed", "delivered", "relayed"

struct ReportedRecipient {
  int index = -1;           // into the original's recipients
  DsnAction action = DsnAction::kFailed;
  std::string status;       // RFC 3463 code, "5.1.1", "2.0.0"
  std::string reply;        // the reply or our own text: Diagnostic-Code, human part
  std::string diagnostic_type = "X-Sluice";  // "smtp" when `reply` came from a server
  std::string remote_mta;   // next hop name, "" when none
};

// Whether a failure of this recipient gets a report at all.
bool WantsFailureReport(const sluice::v1::QueueRecord& original, const sluice::v1::QueueRecipient& recipient);
// Whether a success of this recipient gets a report (its NOTIFY lists SUCCESS). The caller
// also leaves out successes whose NOTIFY went on to a DSN-capable next hop.
bool WantsSuccessReport(const sluice::v1::QueueRecord& original, const sluice::v1::QueueRecipient& recipient);

// The RFC 3463 status of a reply: its enhanced code ("550 5.1.1 x" -> "5.1.1"), else the
// class with .0.0 ("550 x" -> "5.0.0"), else `fallback`.
std::string StatusOfReply(std::string_view reply, std::string_view fallback);

// The envelope of a report of either kind: null sender, the original sender as the only
// recipient (NOTIFY=NEVER), is_bounce, the original's session id (so the report is
// traceable to it).
sluice::v1::QueueRecord ReportEnvelope(const sluice::v1::QueueRecord& original);

// Writes the whole report of `kind` about `recipients` into `writer`, reading the original
// from `content`. Blocking (reads the original): call it on the blocking pool.
absl::Status WriteDeliveryReport(QueueWriter& writer, const sluice::v1::QueueRecord& original,
                                 const MessageContent& content, ReportKind kind,
                                 const std::vector<ReportedRecipient>& recipients, const BounceOptions& options,
                                 absl::Time now);

}  // namespace sluice::reinject
