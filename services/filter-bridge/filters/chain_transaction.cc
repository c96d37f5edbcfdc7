// services/filter-bridge/filters/chain_transaction.cc -- see chain_transaction.h.
#include "services/filter-bridge/filters/chain_transaction.h"

#include <algorithm>

#include "lib/observe/log.h"
#include "services/filter-bridge/filters/bounded_call.h"
#include "services/filter-bridge/filters/filter_chain.h"

namespace sluice::filter_bridge {

std::string_view ChainTransaction::StageName(Stage stage) {
  switch (stage) {
    case Stage::kMail: return "mail";
    case Stage::kRcpt: return "rcpt";
    case Stage::kData: return "data";
  }
  return "data";
}

ChainTransaction::ChainTransaction(const FilterChain& chain, std::vector<Member> members)
    : chain_(chain), members_(std::move(members)) {}

ChainTransaction::~ChainTransaction() = default;

ChainTransaction::Member* ChainTransaction::MemberFor(size_t entry) {
  for (Member& m : members_) {
    if (m.entry == entry) return &m;
  }
  return nullptr;
}

asio::awaitable<smtp::Reply> ChainTransaction::Mail(const sluice::v1::SessionMetadata& session,
                                                    const sluice::v1::Transaction& envelope,
                                                    Clock::time_point deadline) {
  co_return co_await Event(Stage::kMail, session, envelope, nullptr, deadline);
}

asio::awaitable<smtp::Reply> ChainTransaction::Rcpt(const sluice::v1::SessionMetadata& session,
                                                    const sluice::v1::Transaction& envelope,
                                                    const sluice::v1::Recipient& rcpt, Clock::time_point deadline) {
  co_return co_await Event(Stage::kRcpt, session, envelope, &rcpt, deadline);
}

asio::awaitable<smtp::Reply> ChainTransaction::Data(const sluice::v1::SessionMetadata& session,
                                                    const sluice::v1::Transaction& envelope,
                                                    Clock::time_point deadline) {
  co_return co_await Event(Stage::kData, session, envelope, nullptr, deadline);
}

asio::awaitable<smtp::Reply> ChainTransaction::Event(Stage stage, const sluice::v1::SessionMetadata& session,
                                                     const sluice::v1::Transaction& envelope,
                                                     const sluice::v1::Recipient* rcpt, Clock::time_point deadline) {
  const std::string_view stage_name = StageName(stage);
  if (discard_) co_return smtp::Reply{};  // a discarded message: nobody hears more of it
  for (Member& m : members_) {
    if (m.state == Member::State::kDone) continue;
    if (m.state == Member::State::kFailed) {
      refused_by_ = chain_.entries_[m.entry].name;
      refused_detail_ = m.detail;
      co_return m.failure_reply;
    }
    const FilterChain::Entry& entry = chain_.entries_[m.entry];
    const Clock::time_point start = Clock::now();
    Clock::time_point until = deadline;
    if (entry.timeout.count() > 0) until = std::min(until, start + entry.timeout);
    const EnvelopeContext ctx{session, envelope, until, chain_.hostname_};

    FilterOutcome outcome = absl::DeadlineExceededError("no time left before the sender's deadline");
    if (start < until) {
      switch (stage) {
        case Stage::kMail:
          outcome = co_await RunBounded([&] { return m.conversation->Mail(ctx); }, until);
          break;
        case Stage::kRcpt:
          outcome = co_await RunBounded([&] { return m.conversation->Rcpt(ctx, *rcpt); }, until);
          break;
        case Stage::kData:
          outcome = co_await RunBounded([&] { return m.conversation->Data(ctx); }, until);
          break;
      }
    }

    if (!outcome.ok()) {
      // milter_default_action: accept skips the filter from now on; tempfail or reject
      // answers this command and every later one of the transaction.
      chain_.RecordFailure(entry, outcome.status(), stage_name, session.session_id());
      m.detail = std::string(outcome.status().code() == absl::StatusCode::kDeadlineExceeded ? "timeout" : "error") +
                 " at " + std::string(stage_name) + ": " + std::string(outcome.status().message());
      m.failed = true;
      co_await m.conversation->Close();
      if (entry.on_failure == sluice::v1::FAILURE_POLICY_ACCEPT) {
        m.state = Member::State::kDone;
        continue;
      }
      m.state = Member::State::kFailed;
      m.failure_reply = FilterChain::FailureReply(entry.on_failure);
      refused_by_ = entry.name;
      refused_detail_ = m.detail;
      co_return m.failure_reply;
    }

    FilterDecision& d = *outcome;
    if (d.hold) {
      const std::string reason = d.hold_reason.empty() ? "held by " + entry.name : d.hold_reason;
      if (!hold_) {
        hold_reason_ = reason;
      } else if (hold_reason_.find(reason) == std::string::npos) {
        hold_reason_ += "; " + reason;
      }
      hold_ = true;
    }
    switch (d.verdict) {
      case Verdict::kContinue:
        break;
      case Verdict::kAccept:
        chain_.CountResult(entry, "accept");
        m.state = Member::State::kDone;
        m.detail = d.detail;
        break;
      case Verdict::kDiscard:
        // The message goes nowhere; the dialogue goes on as if accepted (Postfix).
        chain_.CountResult(entry, "discard");
        m.state = Member::State::kDone;
        discard_ = true;
        discard_filter_ = entry.name;
        discard_detail_ = d.detail;
        co_return smtp::Reply{};
      case Verdict::kReject:
      case Verdict::kTempfail: {
        const smtp::Reply reply = FilterChain::DecisionReply(d);
        chain_.CountResult(entry, VerdictName(d.verdict));
        if (stage == Stage::kRcpt) ++m.refused_recipients;
        observe::LogLine line = observe::Info("filter_refused");
        line.Kv("session", session.session_id()).Kv("filter", entry.name).Kv("step", stage_name);
        if (rcpt != nullptr) line.Kv("recipient", rcpt->address());
        line.Kv("reply", reply.ToString());
        refused_by_ = entry.name;
        refused_detail_ = d.detail;
        co_return reply;
      }
    }
  }
  co_return smtp::Reply{};
}

asio::awaitable<void> ChainTransaction::Close() {
  for (Member& m : members_) {
    if (m.conversation != nullptr) co_await m.conversation->Close();
    m.conversation.reset();
  }
}

}  // namespace sluice::filter_bridge
