// services/filter-bridge/filters/milter_session.h
//
// One message's conversation with one milter, top to bottom like the protocol (see
// milter_filter.h for the behaviour): negotiate, envelope events, content events, end of
// message with its modifications, quit. Lives for one Run of a MilterFilter.
//
// Never: outlives the FilterContext it was given; sends anything after a final reply but QUIT.
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

namespace sluice::filter_bridge {

class MilterSession {
 public:
  MilterSession(const MilterFilter::Options& options, const FilterContext& ctx,
                asio::any_io_executor executor);
  asio::awaitable<FilterOutcome> Run();

 private:
  enum class Reply { kContinue, kAccept, kReject, kTempfail, kDiscard, kReplyCode, kSkip, kShutdown };
  struct EventReply {
    Reply reply = Reply::kContinue;
    smtp::Reply code;  // kReplyCode
  };
  using TimePoint = MilterConnection::TimePoint;

  TimePoint DeadlineIn(std::chrono::seconds timeout) const;
  asio::awaitable<absl::Status> Negotiate();
  asio::awaitable<absl::Status> SendMacros(char for_command, uint32_t stage,
                                           const sluice::v1::Recipient* recipient);
  // Sends one event (after its macros) and reads its reply unless the milter opted out of
  // the event (no_flag) or of its reply (no_reply_flag).
  asio::awaitable<absl::StatusOr<EventReply>> Event(const milter::Command& command,
                                                    uint32_t no_flag, uint32_t no_reply_flag,
                                                    std::chrono::seconds timeout);
  asio::awaitable<absl::StatusOr<EventReply>> ReadReply(char event, std::chrono::seconds timeout);
  asio::awaitable<FilterOutcome> EndOfMessage();
  // A final outcome for a reply at `stage` ("connect", ...), or nullopt to go on.
  std::optional<FilterOutcome> Judge(const EventReply& reply, std::string_view stage);
  asio::awaitable<void> Quit();

  const MilterFilter::Options& options_;
  const FilterContext& ctx_;
  MilterConnection conn_;
  uint32_t version_ = 0;
  uint32_t actions_ = 0;
  uint32_t protocol_ = 0;
  std::array<std::vector<std::string>, 7> macro_names_;
  char skip_event_ = 0;  // events of this type are skipped after SMFIR_SKIP
  FilterDecision decision_;  // hold (quarantine) collects here at any stage
};

}  // namespace sluice::filter_bridge
