// services/reinject/delivery/discard_agent.cc -- see discard_agent.h.
#include "services/reinject/delivery/discard_agent.h"

#include "absl/strings/str_cat.h"

namespace sluice::reinject {

DiscardAgent::DiscardAgent(std::string text)
    : reply_(absl::StrCat("250 2.0.0 ", text.empty() ? std::string("discarded") : text)) {}

std::string DiscardAgent::Destination(const sluice::v1::QueueRecord&, int) const { return "none"; }

asio::awaitable<std::vector<RecipientResult>> DiscardAgent::Deliver(const sluice::v1::QueueRecord&,
                                                                    const MessageContent&,
                                                                    const std::vector<int>& recipient_indexes,
                                                                    EarlierAttempt) {
  std::vector<RecipientResult> results;
  results.reserve(recipient_indexes.size());
  for (int index : recipient_indexes) {
    RecipientResult r;
    r.index = index;
    r.outcome = DeliveryOutcome::kDelivered;
    r.reply = reply_;
    r.success = SuccessNotice::kDelivered;
    results.push_back(std::move(r));
  }
  co_return results;
}

}  // namespace sluice::reinject
