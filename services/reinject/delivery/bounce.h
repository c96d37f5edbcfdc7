// services/reinject/delivery/bounce.h
//
// Non-delivery reports: RFC 3464 delivery status notifications, queued as new messages from
// the null sender to the original envelope sender (RFC 5321 §6.1: a bounce's reverse path is
// empty, so it can never bounce in turn). The report is multipart/report;
// report-type=delivery-status (RFC 6522) with three parts:
//   1. text/plain       what happened, in words, one line per failed recipient;
//   2. message/delivery-status  Reporting-MTA, Original-Envelope-Id (ENVID), Arrival-Date,
//                       then per recipient Original-Recipient (ORCPT), Final-Recipient,
//                       Action: failed, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date;
//   3. the original: message/rfc822 with RET=FULL, text/rfc822-headers otherwise (RET=HDRS
//      or no RET; Postfix would return the whole message up to bounce_size_limit).
// Honours DSN NOTIFY (RFC 3461 §4.1): NEVER means no report; a list without FAILURE means
// none on failure; no NOTIFY means FAILURE (and DELAY, not implemented: no delay reports).
//
// Never: reports to the null sender; reports on a report (is_bounce); writes a line longer
// than 998 bytes or a CR/LF taken from an address or reply into a header field.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/reinject/queue/queue_writer.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct BounceOptions {
  std::string hostname = "localhost";      // Reporting-MTA, From: domain, Message-ID
  std::string bounce_from = "MAILER-DAEMON";  // From: (local part, or a whole address)
};

struct FailedRecipient {
  int index = -1;           // into the original's recipients
  std::string status;       // RFC 3463 code, "5.1.1"
  std::string reply;        // the reply or our own text: Diagnostic-Code, human part
  std::string diagnostic_type = "X-Sluice";  // "smtp" when `reply` came from a server
  std::string remote_mta;   // next hop name, "" when none
};

// Whether a failure of this recipient gets a report at all.
bool WantsFailureReport(const sluice::v1::QueueRecord& original, const sluice::v1::QueueRecipient& recipient);

// The RFC 3463 status of a reply: its enhanced code ("550 5.1.1 x" -> "5.1.1"), else the
// class with .0.0 ("550 x" -> "5.0.0"), else `fallback`.
std::string StatusOfReply(std::string_view reply, std::string_view fallback);

// The envelope of the report: null sender, the original sender as the only recipient,
// is_bounce, the original's session id (so the report is traceable to it).
sluice::v1::QueueRecord FailureReportEnvelope(const sluice::v1::QueueRecord& original);

// Writes the whole report into `writer`, reading the original from `data_path`. Blocking
// (reads the original): call it on the blocking pool.
absl::Status WriteFailureReport(QueueWriter& writer, const sluice::v1::QueueRecord& original,
                                const std::string& data_path, const std::vector<FailedRecipient>& failed,
                                const BounceOptions& options, absl::Time now);

}  // namespace sluice::reinject
