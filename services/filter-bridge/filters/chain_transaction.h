// services/filter-bridge/filters/chain_transaction.h
//
// The envelope half of the filter chain, for one mail transaction: the filters that judge
// events as they happen (milters, filter.h FilterTransaction) hear MAIL (with the
// transaction client's connect and HELO), each RCPT and DATA when the relay gets them, in
// chain order; the first refusal is the client's reply to that command, and the filters
// after the refusing one do not hear it (Postfix's milter_*_event). At the end of DATA,
// FilterChain::Run goes on with the content on the same conversations.
//
// Per filter, as Postfix's milter client (milter8.c):
//   accept           -> skipped for the rest of the message
//   reject/tempfail  -> that command is refused: MAIL the transaction, RCPT that recipient
//                       only (the relay does not pass it on; the others go on), DATA the message
//   discard          -> the message is discarded at its end (250, nothing delivered); no
//                       filter hears more of it
//   quarantine       -> held at the end (X-Sluice-Hold), the events go on
//   failure/timeout  -> on_failure (milter_default_action): accept skips the filter; tempfail
//                       ("451 4.7.1") or reject ("550 5.5.0") refuses the command and every
//                       later command of the transaction (milter8's persistent default reply)
//
// Never: lets a filter hear an event after it accepted, failed, or after a discard; makes a
// failure a 5xx unless on_failure says reject; outlives the chain that made it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "asio/awaitable.hpp"
#include "lib/smtp/reply.h"
#include "services/filter-bridge/filters/filter.h"
#include "sluice/v1/session.pb.h"

namespace sluice::filter_bridge {

class FilterChain;

class ChainTransaction {
 public:
  ~ChainTransaction();

  // The reply for the client's command: empty when every filter lets it through (the relay
  // then passes it on). `deadline`: when the client stops waiting for our answer.
  asio::awaitable<smtp::Reply> Mail(const sluice::v1::SessionMetadata& session,
                                    const sluice::v1::Transaction& envelope, Clock::time_point deadline);
  asio::awaitable<smtp::Reply> Rcpt(const sluice::v1::SessionMetadata& session,
                                    const sluice::v1::Transaction& envelope, const sluice::v1::Recipient& rcpt,
                                    Clock::time_point deadline);
  asio::awaitable<smtp::Reply> Data(const sluice::v1::SessionMetadata& session,
                                    const sluice::v1::Transaction& envelope, Clock::time_point deadline);
  // Ends every conversation (QUIT). Call once, before destruction.
  asio::awaitable<void> Close();
  // Who gave the last refusal returned (filter name and detail), for the reject line.
  const std::string& refused_by() const { return refused_by_; }
  const std::string& refused_detail() const { return refused_detail_; }

 private:
  friend class FilterChain;
  enum class Stage { kMail, kRcpt, kData };
  struct Member {
    enum class State { kListening, kDone, kFailed };
    size_t entry = 0;  // index into the chain's filters
    std::unique_ptr<FilterTransaction> conversation;
    State state = State::kListening;
    smtp::Reply failure_reply;  // kFailed: the answer to every later command
    std::string detail;         // how it ended before the content (for the FilterResult)
    bool failed = false;        // ended by a failure (kDone: on_failure accept)
    int refused_recipients = 0;
  };

  ChainTransaction(const FilterChain& chain, std::vector<Member> members);
  static std::string_view StageName(Stage stage);
  asio::awaitable<smtp::Reply> Event(Stage stage, const sluice::v1::SessionMetadata& session,
                                     const sluice::v1::Transaction& envelope, const sluice::v1::Recipient* rcpt,
                                     Clock::time_point deadline);
  Member* MemberFor(size_t entry);

  const FilterChain& chain_;
  std::vector<Member> members_;
  bool discard_ = false;
  std::string discard_filter_;  // who discarded, and where
  std::string discard_detail_;
  bool hold_ = false;
  std::string hold_reason_;
  std::string refused_by_;
  std::string refused_detail_;
};

}  // namespace sluice::filter_bridge
