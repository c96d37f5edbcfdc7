// services/frontend/proxy_session.h
//
// One client session's transactions relayed to the filter stage, Postfix smtpd_proxy_filter
// style: MAIL is checked locally and saved; at the first RCPT that passes our own checks
// (relay policy, rates) the transaction starts on a filter connection -- XFORWARD with this
// client's facts (only announced attributes), the saved MAIL and that RCPT -- and every
// later RCPT, DATA and the content go through as they arrive, our Received: first and the
// client's X-Sluice-* and forged Authentication-Results fields taken out
// (inbound_headers.h); every filter reply is the client's reply. With speed_adjust the
// recipients are accepted locally, the content is spooled to an unlinked temporary file,
// and the whole transaction is replayed to the filter at the end of DATA, where any refusal
// becomes the client's reply. The dialogue, step by step: docs/proxy-dialogue.md.
//
// The filter connection (proxy_filter_connection.cc) comes from the pool of idle ones
// (FrontendConfig.filter_connection_reuse, the default) or is opened then (connect, EHLO,
// STARTTLS per filter_tls); at the transaction's end it goes back to the pool. Without
// reuse, as Postfix does, each transaction has a connection of its own, ended with QUIT.
// Unlike Postfix, XFORWARD, MAIL and the first recipients go in one write to a filter that
// announces PIPELINING (RFC 2920 §3.1; XFORWARD may be pipelined).
//
// Never: answers 250 to DATA before the filter did; lets a filter failure (unreachable,
// timeout, lost connection, unexpected reply) reach the client as anything but
// "451 4.3.0"; lets a rejected or aborted message reach the filter with its final dot;
// pipelines to a filter that did not announce PIPELINING, or sends anything after DATA
// before the 354 or after the final dot before its reply; carries one client's XFORWARD
// facts into another client's transaction.
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "lib/smtp/hop_connection.h"
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
  void OnCommand() override;  // the record's last_command_at
  smtp::RefusalNote TakeRefusalNote() override;

 private:
  // --- the filter connection (proxy_filter_connection.cc) ---
  // Starts the transaction at the filter: a connection (pooled or new), then XFORWARD, the
  // saved MAIL and `rcpt_lines`; a pooled connection found stale on the way is replaced
  // once, unseen by the client. Returns an empty Reply when the filter took MAIL, with one
  // reply per line in `rcpt_replies`; else the client's reply (the filter's refusal of MAIL,
  // 451 4.3.0 after a failure, or 451 4.3.0 at once when the filter stage is full).
  asio::awaitable<smtp::Reply> OpenFilter(const std::vector<std::string>& rcpt_lines,
                                          std::vector<smtp::Reply>& rcpt_replies);
  // t_->filter: one from the pool when `pooled`, else a new one. Empty Reply on success.
  asio::awaitable<smtp::Reply> AcquireFilter(bool pooled);
  // How starting the transaction on t_->filter went.
  struct FilterStart {
    smtp::Reply reply;   // empty: MAIL taken; else the client's reply
    bool stale = false;  // a reused connection turned out closed before anything was answered
  };
  asio::awaitable<FilterStart> StartOnFilter(const std::vector<std::string>& rcpt_lines,
                                             std::vector<smtp::Reply>& rcpt_replies);
  // The transaction at the filter is over: back to the pool (after RSET when it ended before
  // a final reply), or QUIT without reuse.
  asio::awaitable<void> ReleaseFilter(bool ended_with_final_reply);
  // Closes the filter connection without a word (after a failure, or mid-content).
  void DropFilter();
  // A filter exchange failed: log, count, close, and return 451 4.3.0 for the client.
  smtp::Reply ProxyFailed(std::string_view stage, const absl::Status& status);
  smtp::Reply Unexpected(std::string_view stage, const smtp::Reply& reply);
  smtp::XforwardAttrs XforwardFacts() const;
  smtp::ClientTimeouts FilterTimeouts() const;
  // Content for the filter (or the speed_adjust spool), after the forged-header filter.
  asio::awaitable<absl::Status> ForwardContent(std::string_view chunk);

  void RecordRecipient(const smtp::RcptTo& rcpt, const smtp::Reply& reply);
  // speed_adjust (proxy_replay.cc): spool the content, then replay the whole transaction.
  smtp::Reply StartSpool();
  absl::Status SpoolContent(std::string_view chunk);
  void SpoolFailed(const absl::Status& status);  // log and count (the reply is the caller's)
  // Starts the transaction at the filter with every RCPT, then DATA and the spooled content;
  // returns the client's end-of-DATA reply.
  asio::awaitable<smtp::Reply> Replay();
  // The filter's reply to the final dot (or 451 4.3.0); the connection is released.
  asio::awaitable<smtp::Reply> FinishAtFilter();
  void EndTransaction(std::string_view outcome);
  std::string ReceivedHeader() const;
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
    std::unique_ptr<smtp::HopConnection> filter;
    std::optional<InboundHeaders> headers;  // from DATA: forged fields out (inbound_headers.h)
    bool in_data = false;
    uint64_t content_bytes = 0;
    uint64_t declared_size = 0;        // MAIL SIZE=, 0 when not given
    std::string instance;              // the restriction checks' transaction id
    restrictions::Actions actions;     // HOLD/DISCARD/PREPEND asked by the checks
  };

  std::time_t last_command_second_ = 0;  // last_command_at as written to the record
  // Who gave the refusal being returned (for the session's reject line); none means the
  // filter stage's own reply (check=proxy, Postfix's "proxy-reject").
  void NoteRefusal(std::string_view check, std::string detail = "");
  smtp::RefusalNote refusal_note_;

  bool in_transaction_ = false;
  uint32_t mail_commands_ = 0;  // numbers each transaction's instance
  std::unique_ptr<Transaction> t_;
};

}  // namespace sluice::frontend
