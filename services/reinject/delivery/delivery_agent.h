// services/reinject/delivery/delivery_agent.h
//
// A delivery agent takes a queued message to some recipients and says, per recipient,
// delivered / transient failure / permanent failure, with the reply that says why. The
// scheduler decides everything else (retry, backoff, bounce, removal). Agents:
//   maildir:DIR     MaildirAgent (maildir_agent.h), local delivery, the default;
//   smtp:/lmtp:     RelayAgent (relay_agent.h): one Deliver
//                   call is one transaction on a (reused) connection to Destination();
//   discard[:TEXT]  DiscardAgent (discard_agent.h): every recipient delivered, nothing written.
// Probe answers recipient verification over the same route (RelayAgent: MAIL/RCPT/RSET;
// the agents that take any address, Maildir and discard, keep the default: deliverable).
//
// The scheduler calls Deliver concurrently, at most delivery_concurrency calls in all and
// at most destination_concurrency per Destination(), so an agent's connection cache per
// destination never needs more connections than that. A call for one message covers the
// recipients of one destination (Destination() equal for all of recipient_indexes).
//
// Never: blocks the calling thread (blocking work goes to a pool); returns a permanent
// result for its own infrastructure failure (4xx rule); ignores cancellation (the
// scheduler cancels a call that exceeds delivery_timeout and discards its results).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "asio/awaitable.hpp"
#include "services/reinject/queue/message_content.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

enum class DeliveryOutcome { kDelivered, kTransient, kPermanent };

// What a kDelivered result means for a recipient that asked for NOTIFY=SUCCESS (RFC 3461
// §5.2): who, if anyone, owes the sender the success notice.
enum class SuccessNotice {
  kDelivered,  // final delivery (a Maildir; an LMTP server without DSN): we report "delivered"
  kRelayed,    // handed to a next hop without DSN, where the request ends (§5.2.2): "relayed"
  kPassedOn,   // handed to a next hop that announced DSN, NOTIFY went on with the RCPT
               // (§5.2.1): the next hop reports, we do not
};

// Whether a message may already have reached some of the recipients of a Deliver call. An
// entry that was being delivered when the process died comes back from the queue with
// nothing on record about that attempt; the scheduler says kPossible for every entry it did
// not take fresh from a commit of this process. An agent that can recognise its own earlier
// delivery (Maildir: by the file's name) looks for one then, and counts it as delivered.
enum class EarlierAttempt { kNone, kPossible };

struct RecipientResult {
  int index = -1;  // into QueueRecord.recipients
  DeliveryOutcome outcome = DeliveryOutcome::kTransient;
  // The reply, "250 2.0.0 Ok: queued as X" / "550 5.1.1 <a@b>: user unknown": logged, kept as
  // the recipient's last_reply, and the DSN's Diagnostic-Code.
  std::string reply;
  // The DSN Diagnostic-Code type: "smtp" for a reply of an SMTP/LMTP server, "X-Sluice"
  // for our own text (local delivery, connection failures).
  std::string diagnostic_type = "X-Sluice";
  // The next hop's name for the DSN's Remote-MTA ("" for local delivery).
  std::string remote_mta;
  // For kDelivered: the Action of a success notice, if we owe one.
  SuccessNotice success = SuccessNotice::kDelivered;
};

// What the destination of an address says about it, for recipient verification
// (services/reinject/verify/): the answer RCPT TO would get, asked without a message.
enum class ProbeAnswer {
  kDeliverable,    // 2xx at RCPT (an agent that takes any address: always)
  kUndeliverable,  // 5xx at RCPT: a definite no
  kDeferred,       // 4xx at RCPT: ask again later
  kFailed,         // nothing learned about the address: no connection, MAIL refused, lost, timeout
};

struct ProbeResult {
  ProbeAnswer answer = ProbeAnswer::kFailed;
  std::string reply;  // the RCPT reply ("550 5.1.1 <a@b> User unknown"), or why the probe failed
};

class DeliveryAgent {
 public:
  virtual ~DeliveryAgent() = default;

  // relay= in logs: "maildir", "smtp:[192.0.2.1]:25".
  virtual std::string_view name() const = 0;

  // The key deliveries are grouped and limited by (destination_concurrency): the next hop
  // for relays, the mailbox for Maildir.
  virtual std::string Destination(const sluice::v1::QueueRecord& record, int recipient_index) const = 0;

  // One result per index in recipient_indexes (a missing one counts as a transient
  // failure). `record` and `content` stay valid until the call completes.
  virtual asio::awaitable<std::vector<RecipientResult>> Deliver(const sluice::v1::QueueRecord& record,
                                                                const MessageContent& content,
                                                                const std::vector<int>& recipient_indexes,
                                                                EarlierAttempt earlier = EarlierAttempt::kNone) = 0;

  // Would the destination of `recipient` take it from `sender`? Asked without delivering
  // anything (Postfix verify(8)'s probe). The default is for agents that deliver to any
  // address (Maildir): deliverable. Cancellation ends the probe (kFailed, or never returns).
  virtual asio::awaitable<ProbeResult> Probe(const std::string& sender, const std::string& recipient) {
    (void)sender;
    (void)recipient;
    ProbeResult result;
    result.answer = ProbeAnswer::kDeliverable;
    result.reply = "250 2.1.5 Ok: every address is deliverable here";
    co_return result;
  }
};

}  // namespace sluice::reinject
