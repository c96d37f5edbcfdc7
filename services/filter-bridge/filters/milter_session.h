// services/filter-bridge/filters/milter_session.h
//
// One mail transaction's conversation with one milter, top to bottom like the protocol (see
// milter_filter.h for the behaviour): Mail (connect and negotiate, then the connect, HELO
// and MAIL events), Rcpt per recipient, Data, Content (header fields, end of header, body,
// end of message with its modifications), Quit. The relay calls the envelope steps as the
// client's commands arrive (milter_filter.cc's MilterTransaction); MilterFilter::Run calls
// them all at the end of DATA.
//
// The milter's state follows Postfix's milter8.c: an accept ends the conversation for this
// message; a refusal at connect or HELO is this milter's answer to every later event of the
// transaction; a refusal at MAIL, RCPT or DATA answers that event only (a rejected
// recipient is dropped, the others go on). Any failure (I/O, timeout, protocol) closes the
// connection; the caller applies the on_failure policy.
//
// Never: outlives the contexts it is given within one call; sends anything after a final
// reply but QUIT; talks to a milter on a connection left in an unknown state.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "services/filter-bridge/filters/filter.h"
#include "services/filter-bridge/filters/milter_connection.h"
#include "services/filter-bridge/filters/milter_filter.h"
#include "services/filter-bridge/filters/milter_macros.h"

namespace sluice::filter_bridge {

class MilterSession {
 public:
  MilterSession(const MilterFilter::Options& options, asio::any_io_executor executor);

  // Each returns the milter's decision for the event (kContinue: go on), or its failure.
  asio::awaitable<FilterOutcome> Mail(const EnvelopeContext& ctx);
  asio::awaitable<FilterOutcome> Rcpt(const EnvelopeContext& ctx, const sluice::v1::Recipient& rcpt);
  asio::awaitable<FilterOutcome> Data(const EnvelopeContext& ctx);
  asio::awaitable<FilterOutcome> Content(const FilterContext& ctx);
  // QUIT when the connection is usable, then close. Safe to call more than once.
  asio::awaitable<void> Quit();

 private:
  enum class Reply { kContinue, kAccept, kReject, kTempfail, kDiscard, kReplyCode, kSkip, kShutdown };
  struct EventReply {
    Reply reply = Reply::kContinue;
    smtp::Reply code;  // kReplyCode
  };
  using TimePoint = MilterConnection::TimePoint;

  TimePoint DeadlineIn(std::chrono::seconds timeout) const;
  asio::awaitable<absl::Status> Open();
  asio::awaitable<absl::Status> Negotiate();
  asio::awaitable<absl::Status> SendMacros(char for_command, uint32_t stage, const MacroSource& source);
  // Sends one event (after its macros) and reads its reply unless the milter opted out of
  // the event (no_flag) or of its reply (no_reply_flag).
  asio::awaitable<absl::StatusOr<EventReply>> Event(const milter::Command& command,
                                                    uint32_t no_flag, uint32_t no_reply_flag,
                                                    std::chrono::seconds timeout);
  // One envelope event with its macros, judged: the decision (kContinue to go on).
  asio::awaitable<FilterOutcome> EnvelopeEvent(const milter::Command& command, uint32_t stage,
                                               const MacroSource& source, uint32_t no_flag,
                                               uint32_t no_reply_flag, std::string_view name);
  asio::awaitable<absl::StatusOr<EventReply>> ReadReply(char event, std::chrono::seconds timeout);
  asio::awaitable<FilterOutcome> EndOfMessage(const FilterContext& ctx);
  // The decision for a reply at `stage` ("connect", ...); kContinue to go on.
  FilterDecision Judge(const EventReply& reply, std::string_view stage);
  // A failure: the connection is closed, nothing more is sent.
  FilterOutcome Failed(absl::Status status);
  // The answer without asking when the milter no longer listens (accepted, refused at
  // connect/HELO, closed); nullopt while it does.
  std::optional<FilterOutcome> NotListening() const;

  enum class State { kNew, kEnvelope, kAccepted, kRefusedAll, kClosed };

  const MilterFilter::Options& options_;
  MilterConnection conn_;
  State state_ = State::kNew;
  FilterDecision refused_all_;   // kRefusedAll: the connect/HELO refusal, repeated
  Clock::time_point deadline_;   // the current call's
  uint32_t version_ = 0;
  uint32_t actions_ = 0;
  uint32_t protocol_ = 0;
  std::array<std::vector<std::string>, 7> macro_names_;
  char skip_event_ = 0;  // events of this type are skipped after SMFIR_SKIP
  FilterDecision decision_;  // hold (quarantine) collects here at any stage
};

}  // namespace sluice::filter_bridge
