// services/filter-bridge/filters/filter_chain.h
//
// The filter-bridge's filter chain: the configured filters run in order on one message at
// end of DATA, each bounded by its own timeout and by the chain deadline (what is left of
// the sender's proxy timeout), each seeing the edits of the ones before it; the first final
// verdict (reject, tempfail, discard) ends the chain. A failing filter (error, timeout) is
// judged by its on_failure policy: tempfail (default, like Postfix milter_default_action),
// accept (skip it) or reject.
//
// Filters that judge the envelope as it happens (milters) hear MAIL, RCPT and DATA through
// a ChainTransaction (chain_transaction.h) the relay begins at MAIL; Run then continues their
// conversations with the content, and takes over their envelope-stage outcome (accepted:
// skipped; discard; hold).
//
// The relay (the SMTP session) spools the content, calls Run, and then either answers
// the sender with result.reply (reject/tempfail), answers 250 and delivers nothing (discard),
// or streams WriteMessage(spool, result.edits, sink) downstream (deliver).
//
// Hold (quarantine) travels in band: a delivered message to hold carries the header
//   X-Sluice-Hold: <reason>; mac=<HMAC-SHA256 with hold_mark_key_file>
// at the top (lib/smtp/hold_mark.h; without a key file, the bare reason). The reinject stage
// moves such a message to its hold queue when the MAC verifies with the same key; a Postfix
// after-filter smtpd does the same with header_checks (/^X-Sluice-Hold:/ HOLD). Any
// X-Sluice-Hold field the sender put in the message is removed first (and the frontend
// already strips every X-Sluice-* field), so only a filter verdict can hold mail -- or the
// upstream stage's own hold mark above its Received: (ChainInput::upstream_hold: the
// frontend's restriction checks' HOLD), which becomes this chain's hold.
//
// The trace header (config trace_header, default X-Sluice-Filter; empty: none) is added at
// the top of every delivered message: "X-Sluice-Filter: host; rules=accept (0.1ms); ...".
//
// Never: lets a filter failure through as anything but its on_failure policy; answers 5xx for
// an infrastructure failure unless a filter's on_failure says reject; runs a filter past the
// chain deadline.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "lib/smtp/hold_mark.h"
#include "lib/smtp/reply.h"
#include "prometheus/registry.h"
#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/filter_metrics.h"
#include "services/filter-bridge/message/message_edits.h"
#include "services/filter-bridge/message/message_spool.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

class ChainTransaction;

struct ChainInput {
  const sluice::v1::SessionMetadata* session = nullptr;  // complete=false: XFORWARD facts only
  sluice::v1::Transaction envelope;  // mail_from, mail_parameters, recipients as relayed
  const MessageSpool* spool = nullptr;  // finished
  Clock::time_point deadline;         // when the sender stops waiting (proxy timeout left)
  // A hold the upstream stage asked for (its restriction checks' HOLD: an X-Sluice-Hold field
  // above its own Received:, see UpstreamHoldMark); set only for a peer in xforward_hosts.
  std::optional<std::string> upstream_hold;
};

// The reason of an X-Sluice-Hold field standing before the message's first Received: field:
// put there by the upstream stage itself (a client's header fields come after that stage's
// Received:). nullopt when there is none.
std::optional<std::string> UpstreamHoldMark(const MessageSpool& spool);

struct ChainResult {
  enum class Action { kDeliver, kReject, kTempfail, kDiscard };
  Action action = Action::kDeliver;
  smtp::Reply reply;                  // kReject (5xx) / kTempfail (4xx): what the sender gets
  sluice::v1::Transaction envelope;   // the final sender and recipients
  bool envelope_changed = false;      // a filter changed the sender or the recipients
  bool hold = false;                  // delivered marked X-Sluice-Hold
  std::string hold_reason;
  Edits edits;                        // kDeliver: WriteMessage(spool, edits, sink)
  std::vector<sluice::v1::FilterResult> results;  // one per filter that ran, for the log
  std::vector<std::string> rules;     // beside each of results: the rule that decided, or ""
  std::string trace;                  // the trace header value ("" when off)
};
std::string_view ActionName(ChainResult::Action action);  // deliver reject tempfail discard

class FilterChain {
 public:
  // Builds every filter of config.filters() through its registered factory. Config errors
  // (unknown kind, bad rule, bad pattern, bad address, duplicate name) are INVALID_ARGUMENT
  // naming the filter. Expects config defaults applied (lib/control): an empty trace_header
  // means no trace header. registry may be null (no metrics).
  static absl::StatusOr<std::unique_ptr<FilterChain>> Create(
      const sluice::v1::FilterBridgeConfig& config, prometheus::Registry* registry);

  // A transaction's envelope-stage conversations (at MAIL); nullptr when no filter of the
  // chain judges the envelope as it happens.
  std::unique_ptr<ChainTransaction> BeginTransaction() const;
  // Runs the chain. Never fails: filter failures are policy decisions inside the result.
  // `transaction` (may be null): the one begun at MAIL, whose conversations go on.
  asio::awaitable<ChainResult> Run(ChainInput input, ChainTransaction* transaction = nullptr) const;

  size_t size() const { return entries_.size(); }
  const std::string& hostname() const { return hostname_; }
  // Spool settings from the config (limits.spool_memory_bytes, spool_dir, header bound):
  // the relay spools each message with these, filters' replacement bodies use them too.
  const SpoolOptions& spool_options() const { return spool_options_; }

 private:
  struct Entry {
    std::string name;
    std::unique_ptr<Filter> filter;
    std::chrono::seconds timeout{0};  // 0: the filter's own timeouts only
    sluice::v1::FailurePolicy on_failure = sluice::v1::FAILURE_POLICY_TEMPFAIL;
  };
  friend class ChainTransaction;
  FilterChain() = default;

  // A failed call into a filter at `stage` (mail, rcpt, data, content): logged and counted.
  void RecordFailure(const Entry& entry, const absl::Status& status, std::string_view stage,
                     const std::string& session_id) const;
  void CountResult(const Entry& entry, std::string_view verdict) const;
  // What a failed filter's on_failure policy answers (tempfail or reject).
  static smtp::Reply FailureReply(sluice::v1::FailurePolicy policy);
  // A reject/tempfail decision's reply; one of the wrong class is replaced by the default.
  static smtp::Reply DecisionReply(const FilterDecision& decision);

  std::vector<Entry> entries_;
  std::string hostname_;
  std::string trace_header_;
  std::optional<smtp::HoldMarkKey> hold_key_;  // hold_mark_key_file: marks are signed
  SpoolOptions spool_options_;
  std::unique_ptr<FilterChainMetrics> metrics_;
};

}  // namespace sluice::filter_bridge
