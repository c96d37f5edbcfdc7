// services/filter-bridge/relay/bridge_session.h
//
// One upstream session relayed to the next hop with the filter chain in between: the
// envelope goes through in real time (every downstream reply is upstream's reply; MAIL is
// answered here and goes on with the first RCPT, Postfix smtpd_proxy style, so the next
// hop's refusal of MAIL is that recipient's reply), DATA is
// opened downstream at once, the content is spooled while it arrives, and at its end the
// chain decides: deliver (the possibly edited message streams downstream, and the
// downstream's final reply goes upstream), reject/tempfail (the filter's reply; downstream
// never sees the final dot), or discard (250 upstream, nothing delivered).
//
// An upstream session carries many transactions, each for its own client when the upstream
// pools its connections (the sluice frontend does): XFORWARD before every MAIL says whose,
// and like Postfix the session forgets it at the transaction's end. The session record
// follows the transaction -- re-keyed under its XFORWARD IDENT while it runs (so it is
// found, traced and killed under the client's session id at every stage), back under the
// connection's own id with the peer's facts after it.
//
// The next-hop connection is kept across the session's transactions, within the hop
// connection limits (lib/smtp/hop_connection.h); a kept one the next hop closed while idle
// is replaced before anything of the transaction was answered on it, unseen upstream.
//
// Filters that judge the envelope as it happens (milters) hear each command before the next
// hop does (filters/chain_transaction.h): a sender they refuse at MAIL, a recipient they
// refuse at RCPT (that one only) or a DATA they refuse is answered with their reply and never
// relayed. Their connect/HELO facts are the transaction's client (XFORWARD, the owner's
// record), fetched at MAIL: one upstream session may carry many clients' transactions.
//
// Latency: the next hop is connected and greeted while the upstream still sends EHLO and
// XFORWARD (an early open, begun at the first EHLO, taken over at the first RCPT if fresh);
// RSET (after a transaction that ended early), XFORWARD, MAIL and the first RCPT go in one
// write when the next hop announces PIPELINING (XFORWARD_README: "may be pipelined").
// XFORWARD is sent before every MAIL: Postfix forgets it at a transaction's end.
//
// Never: accepts what the downstream refused; answers 250 to DATA before the downstream
// did; lets a downstream failure reach upstream as anything but "451 4.3.0"; sends the final
// dot of a message the chain did not let through; lets one transaction's XFORWARD facts
// reach the next hop or a filter in another transaction.
#pragma once

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "lib/control/session_registry.h"
#include "lib/control/stage_runtime.h"
#include "lib/control/status_watcher.h"
#include "lib/net/cidr.h"
#include "lib/net/host_port.h"
#include "lib/smtp/client_session.h"
#include "lib/smtp/hop_connection.h"
#include "lib/smtp/server_handler.h"
#include "lib/smtp/spool_space.h"
#include "services/filter-bridge/filters/chain_transaction.h"
#include "services/filter-bridge/filters/filter_chain.h"
#include "services/filter-bridge/message/message_spool.h"
#include "services/filter-bridge/relay/bridge_metrics.h"
#include "services/filter-bridge/relay/session_lookup.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

struct BridgeContext {
  sluice::v1::FilterBridgeConfig config;
  std::string hostname;
  std::string next_hop_ehlo;
  net::HostPort next_hop;
  control::StageRuntime* runtime = nullptr;
  const FilterChain* chain = nullptr;
  BridgeMetrics* metrics = nullptr;
  net::CidrSet mynetworks;
  net::CidrSet xforward_hosts;
  // The next hop's capacity from its WatchStatus (kUnknown without a watch): while it is
  // full, new sessions get 421 4.3.2 and new transactions 451 4.3.0 at once.
  std::function<control::Downstream()> next_hop_state = [] { return control::Downstream::kUnknown; };
  // Fetches the owner's full session record (GetSession at the upstream stage); may be null.
  SessionLookup* session_lookup = nullptr;
  // The spool directory's room (spool_max_bytes, spool_min_free_bytes); may be null.
  smtp::SpoolSpace* spool_space = nullptr;
};

struct EarlyDownstream;  // bridge_session.cc

class BridgeSession : public smtp::ServerHandler {
 public:
  BridgeSession(BridgeContext& ctx, smtp::SessionFacts& facts, asio::any_io_executor executor,
                std::shared_ptr<control::SessionHandle> handle);
  ~BridgeSession() override;

  asio::awaitable<smtp::Reply> OnXforward(const smtp::XforwardAttrs& attrs) override;
  asio::awaitable<smtp::Reply> OnHelo() override;
  asio::awaitable<smtp::Reply> OnMail(const smtp::MailFrom& mail) override;
  asio::awaitable<smtp::Reply> OnRcpt(const smtp::RcptTo& rcpt) override;
  asio::awaitable<smtp::Reply> OnData() override;
  asio::awaitable<absl::Status> OnContent(std::string_view chunk) override;
  asio::awaitable<smtp::Reply> OnDataEnd(smtp::DataOutcome outcome) override;
  asio::awaitable<void> OnReset() override;
  asio::awaitable<void> OnClose() override;
  void OnKill() override;
  // Counts the input rules' refusals (bare_newline, nul_character, unauth_pipelining).
  void OnLimitHit(std::string_view limit) override;
  void OnCommand() override;  // the record's last_command_at
  smtp::RefusalNote TakeRefusalNote() override;
  void DescribeClient(smtp::DialogueClient& client) const override;

 private:
  // Starts opening the next hop in the background (see EarlyDownstream in the .cc).
  void StartEarlyDownstream();
  // A connected, greeted next hop in down_: the early one when fresh, else a new one.
  // Empty Reply on success.
  asio::awaitable<smtp::Reply> OpenDownstream();
  // Quits the kept next-hop connection when a hop connection limit bites, or when it carried
  // XFORWARD and this transaction has none (the next hop might still hold the last one's).
  asio::awaitable<void> RetireSpentDownstream();
  // XFORWARD (when known and announced), `mail_line` and `rcpt_lines` on the kept connection
  // or a new one (a kept one found stale is replaced once). Empty when the next hop took
  // MAIL, with one reply per recipient line in `rcpt_replies`; else the upstream's reply:
  // the next hop's refusal of MAIL, or a 451 (logged, down_ dropped).
  asio::awaitable<smtp::Reply> StartDownstreamTransaction(const std::string& mail_line,
                                                          const std::vector<std::string>& rcpt_lines,
                                                          std::vector<smtp::Reply>& rcpt_replies);
  // How starting the transaction on down_ went.
  struct DownstreamStart {
    smtp::Reply reply;   // empty: MAIL taken; else the refusal of MAIL or a failure's 451
    bool stale = false;  // a kept connection turned out closed before anything was answered
  };
  asio::awaitable<DownstreamStart> SendMailDownstream(const std::string& mail_line,
                                                      const std::vector<std::string>& rcpt_lines,
                                                      std::vector<smtp::Reply>& rcpt_replies);
  // The transaction's XFORWARD is forgotten and the record is the connection's own again.
  void ForgetXforward();
  // Sends MAIL and every RCPT of `envelope` (after a filter changed it); empty on success.
  asio::awaitable<smtp::Reply> ReplayEnvelope(const sluice::v1::Transaction& envelope);
  // Streams the (edited) message and the final dot; the downstream's reply.
  asio::awaitable<absl::StatusOr<smtp::Reply>> SendMessage(const Edits& edits);
  asio::awaitable<void> DropDownstream();  // abrupt: downstream discards what it has
  smtp::Reply DownstreamFailed(std::string_view step, const absl::Status& st);
  smtp::Reply Unexpected(std::string_view step, const smtp::Reply& reply);
  void EndTransaction(std::string_view verdict);
  sluice::v1::SessionMetadata SessionForFilters();
  // The transaction's client as the filters see it: the owner's full record when it can be
  // fetched, else the XFORWARD facts.
  asio::awaitable<sluice::v1::SessionMetadata> FetchFilterSession();
  // The envelope filters hear MAIL (begun here); their refusal, or empty.
  asio::awaitable<smtp::Reply> FiltersAtMail();
  asio::awaitable<void> CloseFilters();
  // When the upstream stops waiting for an answer, less the next hop's margin.
  Clock::time_point FilterDeadline() const;
  // Who gave the refusal being returned (for the session's reject line); none means the
  // next hop's own reply, passed on.
  void NoteRefusal(std::string_view check, std::string detail = "");
  // The refusal of a filter judging the envelope (its name and detail).
  void NoteFilterRefusal();
  smtp::RefusalNote refusal_note_;

  BridgeContext& ctx_;
  smtp::SessionFacts& facts_;
  asio::any_io_executor executor_;
  std::shared_ptr<control::SessionHandle> handle_;
  std::time_t last_command_second_ = 0;  // last_command_at as written to the record
  std::shared_ptr<const sluice::v1::Limits> limits_;

  const std::string own_session_id_;  // the connection's id, before and between XFORWARD IDENTs
  smtp::XforwardAttrs xforward_;      // this transaction's
  std::unique_ptr<smtp::HopConnection> down_;
  std::shared_ptr<EarlyDownstream> early_;  // opening in the background, not yet taken

  bool in_transaction_ = false;
  bool mail_pending_ = false;  // MAIL taken here, not yet sent on: it goes with the first RCPT
  control::StageRuntime::Transaction txn_;
  sluice::v1::Transaction envelope_;
  std::string mail_line_;
  std::unique_ptr<MessageSpool> spool_;
  bool in_data_ = false;
  // MAIL to the transaction's end: the envelope filters' conversations, and the client they see.
  std::unique_ptr<ChainTransaction> filters_;
  std::optional<sluice::v1::SessionMetadata> filter_session_;
};

}  // namespace sluice::filter_bridge
