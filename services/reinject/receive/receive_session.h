// services/reinject/receive/receive_session.h
//
// The after-filter smtpd's handling of one transaction: the envelope is checked only as far
// as the upstream stages did not (the after-filter options of the seed setup), XFORWARD from
// an authorized peer names the original client, the content streams through the header
// cleanup into a QueueWriter, and "250 2.0.0 Ok: queued as ID" is sent only after the queue
// reports the message and its record durable (file and directory fsync, group commit).
//
// Never: answers 250 before Commit returned the id; leaves a partial entry after a failure
// (the writer removes its files); turns a local failure into anything but a 4xx.
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "lib/control/limits_store.h"
#include "lib/control/session_registry.h"
#include "lib/control/stage_runtime.h"
#include "lib/net/cidr.h"
#include "lib/smtp/hold_mark.h"
#include "lib/smtp/server_handler.h"
#include "services/reinject/queue/queue_store.h"
#include "services/reinject/queue/queue_writer.h"
#include "services/reinject/receive/header_cleanup.h"
#include "services/reinject/receive/receive_metrics.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct ReceiveContext {
  std::string hostname;
  control::LimitsStore* limits = nullptr;  // live limits (hopcount_limit)
  sluice::v1::ServerConfig server;  // banner, TLS
  QueueStore* store = nullptr;
  ReceiveMetrics* metrics = nullptr;
  net::CidrSet mynetworks;
  net::CidrSet xforward_hosts;
  bool trust_verified_client_cert = false;
  // hold_mark_key_file: a hold mark must carry a MAC made with it (lib/smtp/hold_mark.h).
  std::optional<smtp::HoldMarkKey> hold_mark_key;
  control::StageRuntime* runtime = nullptr;  // counts transactions in flight (Admin status); may be null
};

class ReceiveSession : public smtp::ServerHandler {
 public:
  ReceiveSession(ReceiveContext& ctx, smtp::SessionFacts& facts, std::shared_ptr<control::SessionHandle> handle);

  asio::awaitable<smtp::Reply> OnXforward(const smtp::XforwardAttrs& attrs) override;
  asio::awaitable<smtp::Reply> OnHelo() override;
  asio::awaitable<smtp::Reply> OnMail(const smtp::MailFrom& mail) override;
  asio::awaitable<smtp::Reply> OnRcpt(const smtp::RcptTo& rcpt) override;
  asio::awaitable<smtp::Reply> OnData() override;
  asio::awaitable<absl::Status> OnContent(std::string_view chunk) override;
  asio::awaitable<smtp::Reply> OnDataEnd(smtp::DataOutcome outcome) override;
  asio::awaitable<void> OnReset() override;
  // Counts the input rules' refusals (bare_newline, nul_character, unauth_pipelining).
  void OnLimitHit(std::string_view limit) override;
  void OnCommand() override;  // the record's last_command_at
  smtp::RefusalNote TakeRefusalNote() override;
  void DescribeClient(smtp::DialogueClient& client) const override;

 private:
  void NoteRefusal(std::string_view check, std::string detail = "") {
    refusal_note_.check = std::string(check);
    refusal_note_.detail = std::move(detail);
  }
  smtp::RefusalNote refusal_note_;  // who gave the refusal being returned (the reject line)
  std::string OrigClientText() const;  // "name[addr]" as Postfix logs orig_client=
  void Abort(std::string_view outcome);

  ReceiveContext& ctx_;
  smtp::SessionFacts& facts_;
  std::shared_ptr<control::SessionHandle> handle_;
  std::time_t last_command_second_ = 0;  // last_command_at as written to the record

  // XFORWARD facts for the next transaction (they persist until changed, as in Postfix).
  smtp::XforwardAttrs xforward_;

  sluice::v1::QueueRecord record_;
  std::unique_ptr<QueueWriter> writer_;
  std::optional<HeaderCleanup> cleanup_;
  std::string scratch_;
  bool in_transaction_ = false;
  control::StageRuntime::Transaction txn_;  // MAIL .. the transaction's end
};

}  // namespace sluice::reinject
