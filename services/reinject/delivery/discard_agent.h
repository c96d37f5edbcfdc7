// services/reinject/delivery/discard_agent.h
//
// The discard delivery agent (--deliver=discard or discard:TEXT), Postfix's discard(8):
// every recipient is reported delivered at once and nothing is delivered anywhere. The
// scheduler logs one event=delivery line per recipient as for any agent, with relay=none,
// status=sent and reply "250 2.0.0 TEXT" (TEXT defaults to "discarded", as Postfix's
// discard transport logs its next-hop text: "status=sent (discarded)"). A NOTIFY=SUCCESS
// recipient gets a "delivered" notice, as Postfix's discard sends one.
//
// Uses: sink domains in production, and the fair match for Postfix's discard transport in
// benchmarks (the queue's cost alone, no delivery I/O).
//
// Never: reads, writes or opens anything (the message content is not touched); reports
// anything but delivered.
#pragma once

#include <string>

#include "services/reinject/delivery/delivery_agent.h"

namespace sluice::reinject {

class DiscardAgent final : public DeliveryAgent {
 public:
  // `text`: what the reply and the log say after "250 2.0.0 " (empty: "discarded").
  explicit DiscardAgent(std::string text);

  std::string_view name() const override { return "none"; }
  // One destination for every recipient: a message is one Deliver call.
  std::string Destination(const sluice::v1::QueueRecord& record, int recipient_index) const override;
  asio::awaitable<std::vector<RecipientResult>> Deliver(const sluice::v1::QueueRecord& record,
                                                        const MessageContent& content,
                                                        const std::vector<int>& recipient_indexes,
                                                        EarlierAttempt earlier = EarlierAttempt::kNone) override;

 private:
  std::string reply_;
};

}  // namespace sluice::reinject
