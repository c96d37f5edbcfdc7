// tests/services/reinject/delivery/discard_agent_test.cc -- the discard agent (Postfix
// discard(8)): every recipient delivered with "250 2.0.0 TEXT", the content never read, and
// the --deliver=discard[:TEXT] spec.
#include "services/reinject/delivery/discard_agent.h"

#include <gtest/gtest.h>

#include "asio/thread_pool.hpp"
#include "lib/status/status_matchers.h"
#include "services/reinject/delivery/agent_factory.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::RunAwaitable;
using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

TEST(DiscardAgentTest, EveryRecipientIsDeliveredAndNothingIsRead) {
  DiscardAgent agent("");
  asio::io_context io;
  auto record = Envelope("alice@example.org", {"a@one.example", "b@two.example", "c@three.example"});
  EXPECT_EQ(agent.Destination(record, 0), agent.Destination(record, 2));  // one call per message
  MessageContent nothing;  // the agent never reads it
  auto results = RunAwaitable(io, agent.Deliver(record, nothing, {0, 2}));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].index, 0);
  EXPECT_EQ(results[1].index, 2);
  for (const auto& r : results) {
    EXPECT_EQ(r.outcome, DeliveryOutcome::kDelivered);
    EXPECT_EQ(r.reply, "250 2.0.0 discarded");
    EXPECT_EQ(r.success, SuccessNotice::kDelivered);
  }
  EXPECT_EQ(agent.name(), "none");  // relay=none in the delivery log line, as Postfix logs it
}

TEST(DiscardAgentTest, TextOfTheSpecIsTheReply) {
  DiscardAgent agent("silently");
  asio::io_context io;
  MessageContent nothing;
  auto record = Envelope("", {"x@y.example"});
  auto results = RunAwaitable(io, agent.Deliver(record, nothing, {0}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply, "250 2.0.0 silently");
}

TEST(AgentFactoryTest, DiscardSpecsMakeDiscardAgents) {
  asio::thread_pool pool(1);
  AgentContext context;
  context.hostname = "mx.test";
  context.blocking = pool.get_executor();
  for (const char* spec : {"discard", "discard:", "discard:sink domain"}) {
    auto agent = MakeDeliveryAgent(spec, context);
    ASSERT_THAT(agent, IsOk()) << spec;
    EXPECT_EQ((*agent)->name(), "none");
  }
  EXPECT_THAT(MakeDeliveryAgent("discard:two\r\nlines", context), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MakeDeliveryAgent("discarded", context), StatusIs(absl::StatusCode::kInvalidArgument, "discarded"));
  pool.join();
}

}  // namespace
}  // namespace sluice::reinject
