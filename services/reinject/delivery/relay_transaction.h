// services/reinject/delivery/relay_transaction.h
//
// One mail transaction of the relay agents on an open, greeted connection (Postfix smtp(8)
// / lmtp(8) from MAIL on): MAIL with the original parameters the next hop announced it takes
// (SIZE, BODY, SMTPUTF8; RET/ENVID with DSN), one RCPT per recipient with NOTIFY/ORCPT
// (with DSN), pipelined when PIPELINING is announced, DATA only once a recipient was
// accepted, the content streamed from the queue file in chunks read on the blocking pool,
// then the final reply: one for the transaction over SMTP, one per accepted recipient over
// LMTP (RFC 2033 §4.2). Per recipient: 2xx delivered, 4xx transient, 5xx permanent; a lost
// connection, a timeout or a broken reply is transient for every recipient not yet decided.
// Before MAIL the message is checked against what the next hop said it takes: over its SIZE
// limit, or needing SMTPUTF8 it does not offer, is permanent (Postfix bounces both). A
// message declared 8BITMIME (or SMTPUTF8) for a next hop without 8BITMIME is converted to
// 7 bit first (mime_downgrade.h) and the copy streamed instead; one that cannot be
// converted is permanent (5.6.3; 5.6.7 for UTF-8 header fields of an SMTPUTF8 message). A
// message declared 7BIT is sent as queued, as Postfix does.
// Success (RFC 3461 §5.2): with DSN announced, NOTIFY went on and the next hop reports
// (kPassedOn); without, an SMTP next hop is a relay (kRelayed) and an LMTP server the final
// delivery (kDelivered, Postfix's lmtp_assume_final = yes).
//
// Never: sends the final "." after an incomplete copy of the queue file (the connection is
// dropped instead, so the next hop discards the partial message); reads the queue file into
// memory whole; reports a recipient delivered without a 2xx for it after the content; sends
// a message declared 8-bit unconverted to a next hop without 8BITMIME.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "lib/smtp/capabilities.h"
#include "lib/smtp/client_session.h"
#include "services/reinject/delivery/delivery_agent.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct RelayTransactionInput {
  const sluice::v1::QueueRecord* record = nullptr;
  const MessageContent* content = nullptr;
  std::string temp_dir;            // the 7-bit copy of the 8BITMIME downgrade (unnamed file)
  const std::vector<int>* indexes = nullptr;
  bool lmtp = false;
  asio::any_io_executor blocking;  // reads of the queue content
  std::string remote_mta;          // the next hop's name, for Remote-MTA and our own texts
};

struct RelayTransactionOutcome {
  std::vector<RecipientResult> results;  // one per index, in the order of `indexes`
  // The connection is in a known state, ready for the next MAIL (after RSET).
  bool reusable = false;
};

// Runs the transaction on `client` (connected, after EHLO/LHLO).
asio::awaitable<RelayTransactionOutcome> RunRelayTransaction(smtp::SmtpClient& client,
                                                             const RelayTransactionInput& input);

// "MAIL FROM:<sender> SIZE=n BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=x" with only the
// parameters `caps` announces (ENVID and ORCPT xtext-encoded, RFC 3461 §4). SIZE is
// `size_bytes` when given (a converted copy), else the queued size.
std::string RelayMailCommand(const sluice::v1::QueueRecord& record, const smtp::Capabilities& caps,
                             std::optional<uint64_t> size_bytes = std::nullopt);
// "RCPT TO:<rcpt> NOTIFY=FAILURE ORCPT=rfc822;x" (NOTIFY/ORCPT only with DSN).
std::string RelayRcptCommand(const sluice::v1::QueueRecipient& recipient, const smtp::Capabilities& caps);
// Why the message cannot go to a next hop with `caps` at all (a permanent reply text), or "".
std::string RelayRefusal(const sluice::v1::QueueRecord& record, const std::vector<int>& indexes,
                         const smtp::Capabilities& caps, const std::string& remote_mta);

// Whether the message must be made 7-bit for a next hop with `caps` (RFC 6152 §3).
bool NeedsDowngrade(const sluice::v1::QueueRecord& record, const smtp::Capabilities& caps);

// What a success at a next hop with `caps` means for NOTIFY=SUCCESS.
SuccessNotice SuccessNoticeFor(const smtp::Capabilities& caps, bool lmtp);

// The outcome a next hop's reply means for a recipient.
DeliveryOutcome OutcomeOfReply(const smtp::Reply& reply);

}  // namespace sluice::reinject
