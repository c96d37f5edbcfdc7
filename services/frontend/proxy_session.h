// services/frontend/proxy_session.h
//
// One client session's transactions relayed to the filter stage, Postfix smtpd_proxy_filter
// style (see docs/proxy-dialogue.md): MAIL is checked locally and
// saved; the filter connection opens at the first RCPT that passes our own checks (relay
// policy, rates) with EHLO, XFORWARD (only announced attributes) and the saved MAIL; every
// later RCPT, DATA and the content go through as they arrive, our Received: first and the
// client's X-Sluice-* and forged Authentication-Results fields taken out (inbound_headers.h); every
// filter reply is the client's reply. Unlike Postfix, MAIL and the recipients it opens with
// are pipelined to a filter that announces PIPELINING. RSET, the end of DATA or the session's end close the
// filter connection with QUIT. With speed_adjust the recipients are accepted locally, the
// content is spooled to an unlinked temporary file, and the whole transaction is replayed
// to the filter at the end of DATA, where any refusal becomes the client's reply.
//
// Never: answers 250 to DATA before the filter did; lets a filter failure (unreachable,
// timeout, lost connection, unexpected reply) reach the client as anything but
// "451 4.3.0"; lets a rejected or aborted message reach the filter with its final dot.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "lib/smtp/client_session.h"
#include "lib/smtp/received_header.h"
#include "lib/smtp/server_handler.h"
#include "services/frontend/frontend_context.h"
#include "services/frontend/inbound_headers.h"
#include "services/frontend/restrictions/restrictions.h"
#include "services/frontend/spool_file.h"
#include "sluice/v1/session.pb.h"

namespace sluice::frontend {

// The facts of our Received: header (Postfix's before-filter smtpd layout): the client as
// it said and as we know it, our name, the protocol, the session id as "id", TLS facts, and
// "for <rcpt>" only when exactly one recipient was accepted.
smtp::ReceivedInfo ReceivedInfoFor(const smtp::SessionFacts& facts, const std::string& hostname,
                                   const std::vector<std::string>& recipients);

// How the session record (served by Admin.GetSession) is updated.
using MetadataUpdater = std::function<void(const std::function<void(sluice::v1::SessionMetadata&)>&)>;

class ProxySession : public smtp::ServerHandler {
 public:
  ProxySession(FrontendContext& ctx, smtp::SessionFacts& facts, asio::any_io_executor executor,
               MetadataUpdater update_metadata);
  ~ProxySession() override;

  asio::awaitable<smtp::Reply> OnHelo() override;
  asio::awaitable<smtp::Reply> OnMail(const smtp::MailFrom& mail) override;
  asio::awaitable<smtp::Reply> OnRcpt(const smtp::RcptTo& rcpt) override;
  asio::awaitable<smtp::Reply> OnData() override;
  asio::awaitable<absl::Status> OnContent(std::string_view chunk) override;
  asio::awaitable<smtp::Reply> OnDataEnd(smtp::DataOutcome outcome) override;
  asio::awaitable<void> OnReset() override;
  asio::awaitable<void> OnClose() override;
  void OnTlsStarted() override;
  void OnTlsFailed() override;
  void OnKill() override;
  void OnLimitHit(std::string_view limit) override;

 private:
  // Opens the filter connection (EHLO, XFORWARD), replays the saved MAIL and sends
  // `rcpt_lines` (pipelined when the filter announces PIPELINING). Returns an empty Reply
  // when the filter took MAIL, with one reply per line in `rcpt_replies`; else the reply for
  // the client (the filter's refusal of MAIL, or 451 4.3.0 after a failure).
  asio::awaitable<smtp::Reply> OpenFilter(const std::vector<std::string>& rcpt_lines,
                                          std::vector<smtp::Reply>& rcpt_replies);
  // A filter exchange failed: log, count, close, and return 451 4.3.0 for the client.
  smtp::Reply ProxyFailed(std::string_view stage, const absl::Status& status);
  smtp::Reply Unexpected(std::string_view stage, const smtp::Reply& reply);
  asio::awaitable<void> CloseFilter();
  // Content for the filter (or the speed_adjust spool), after the forged-header filter.
  asio::awaitable<absl::Status> ForwardContent(std::string_view chunk);
  void RecordRecipient(const smtp::RcptTo& rcpt, const smtp::Reply& reply);

  // speed_adjust (proxy_replay.cc): spool the content, then replay the whole transaction.
  smtp::Reply StartSpool();
  absl::Status SpoolContent(std::string_view chunk);
  void SpoolFailed(const absl::Status& status);  // log and count (the reply is the caller's)
  // Opens the filter connection, replays MAIL, every RCPT, DATA and the spooled content;
  // returns the client's end-of-DATA reply.
  asio::awaitable<smtp::Reply> Replay();
  void EndTransaction(std::string_view outcome);
  std::string ReceivedHeader() const;
  smtp::XforwardAttrs XforwardFacts() const;
  bool ClientTrusted() const;
  // Runs the restriction lists due at `command` (proxy_restrictions.cc); an empty Reply
  // lets the command go on, anything else is the client's refusal (already logged).
  asio::awaitable<smtp::Reply> Restrict(restrictions::Stage command, std::string_view recipient);
  // DISCARD (a check's verdict): the recipient is accepted locally and the filter
  // connection, if open, is closed; DATA is answered locally and the content dropped.
  asio::awaitable<smtp::Reply> AcceptDiscarded(const smtp::RcptTo& rcpt);
  asio::awaitable<smtp::Reply> StartDiscarded();
  // The checks' PREPEND header lines and hold mark, each ending in CRLF ("" for none).
  std::string CheckHeaders() const;

  FrontendContext& ctx_;
  smtp::SessionFacts& facts_;
  asio::any_io_executor executor_;
  MetadataUpdater update_metadata_;
  std::shared_ptr<const sluice::v1::Limits> limits_;
  const bool speed_adjust_;

  // The transaction, allocated at MAIL and freed at its end: an idle session holds none of
  // it (the idle-session memory budget, bench/idle_sessions.py).
  struct Transaction {
    std::string mail_line;  // "MAIL FROM:<a> SIZE=…", replayed to the filter
    std::string mail_from;
    std::vector<std::string> recipients;  // accepted by the filter (speed_adjust: locally)
    std::vector<std::string> rcpt_lines;  // speed_adjust: "RCPT TO:<…> …" to replay
    SpoolFile spool;                      // speed_adjust: the content, our Received: first
    std::unique_ptr<smtp::SmtpClient> filter;
    std::optional<InboundHeaders> headers;  // from DATA: forged fields out (inbound_headers.h)
    bool in_data = false;
    uint64_t content_bytes = 0;
    uint64_t declared_size = 0;        // MAIL SIZE=, 0 when not given
    std::string instance;              // the restriction checks' transaction id
    restrictions::Actions actions;     // HOLD/DISCARD/PREPEND asked by the checks
  };
  // Closes the filter connection without a word (after a failure, or mid-content).
  void DropFilter();

  bool in_transaction_ = false;
  uint32_t mail_commands_ = 0;  // numbers each transaction's instance
  std::unique_ptr<Transaction> t_;
};

}  // namespace sluice::frontend
