// tests/services/filter-bridge/chain_transaction_test.cc
//
// The envelope half of the chain against real milter conversations (TestMilterServer): MAIL,
// RCPT and DATA heard as they come, one conversation per transaction carried on into the
// content; the first refusal stops the filters after it; a failure answers every later
// command under on_failure tempfail and skips the filter under accept; accept at MAIL skips
// the filter for the content; discard and quarantine at the envelope reach the chain's result.
#include "services/filter-bridge/filters/chain_transaction.h"

#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/filter-bridge/filters/filter_chain.h"
#include "tests/services/filter-bridge/filter_test_support.h"
#include "tests/services/filter-bridge/test_milter_server.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::testing::HasSubstr;
using Action = ChainResult::Action;

const char kMessage[] = "From: alice@example.com\r\nSubject: hello\r\n\r\nbody\r\n";

milter::Response Resp(char code, std::string text = "") {
  milter::Response r;
  r.code = code;
  r.text = std::move(text);
  return r;
}

sluice::v1::FilterConfig* AddMilter(sluice::v1::FilterBridgeConfig& c, std::string name, std::string address,
                                    sluice::v1::FailurePolicy policy = sluice::v1::FAILURE_POLICY_TEMPFAIL) {
  sluice::v1::FilterConfig* f = c.add_filters();
  f->set_name(std::move(name));
  f->mutable_milter()->set_address(std::move(address));
  f->mutable_milter()->set_command_timeout_seconds(1);
  f->mutable_milter()->set_content_timeout_seconds(1);
  f->set_on_failure(policy);
  return f;
}

struct Transcript {
  smtp::Reply mail;
  std::vector<smtp::Reply> rcpt;
  smtp::Reply data;
  std::optional<ChainResult> result;  // when DATA was accepted with a recipient
};

// One transaction as the relay drives it, on one io_context: MAIL, each RCPT (an accepted
// one joins the envelope), DATA, the content, then Close.
asio::awaitable<Transcript> Drive(const FilterChain& chain, std::vector<std::string> rcpts) {
  Transcript out;
  std::unique_ptr<ChainTransaction> txn = chain.BeginTransaction();
  const sluice::v1::SessionMetadata session = testing::MakeSession();
  sluice::v1::Transaction envelope = testing::MakeEnvelope("alice@example.com", {});
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  out.mail = co_await txn->Mail(session, envelope, deadline);
  if (out.mail.empty()) {
    for (const std::string& address : rcpts) {
      sluice::v1::Recipient rcpt;
      rcpt.set_address(address);
      smtp::Reply reply = co_await txn->Rcpt(session, envelope, rcpt, deadline);
      if (reply.empty()) *envelope.add_recipients() = rcpt;
      out.rcpt.push_back(reply);
    }
    out.data = co_await txn->Data(session, envelope, deadline);
    if (out.data.empty() && envelope.recipients_size() > 0) {
      std::unique_ptr<MessageSpool> spool = testing::MakeSpool(kMessage);
      ChainInput input;
      input.session = &session;
      input.envelope = envelope;
      input.spool = spool.get();
      input.deadline = deadline;
      ChainResult result = co_await chain.Run(std::move(input), txn.get());
      out.result = std::move(result);
    }
  }
  co_await txn->Close();
  co_return out;
}

std::unique_ptr<FilterChain> MakeChain(const sluice::v1::FilterBridgeConfig& config) {
  auto chain = FilterChain::Create(config, nullptr);
  EXPECT_THAT(chain, IsOk());
  return *std::move(chain);
}

std::string Events(const testing::TestMilterServer& milter) {
  std::string out;
  for (const milter::Command& c : milter.commands()) {
    if (c.code != milter::kCmdMacro && c.code != milter::kCmdOptneg) out.push_back(c.code);
  }
  return out;
}

// The events once they are `want` (QUIT is sent without waiting for the milter to read it),
// or what they are after 5 s.
std::string EventsBecome(const testing::TestMilterServer& milter, std::string_view want) {
  for (int i = 0; i < 500 && Events(milter) != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return Events(milter);
}

TEST(ChainTransactionTest, EnvelopeAndContentAreOneConversation) {
  testing::TestMilterServer milter(testing::MilterScript{});
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "m", milter.address());
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net", "carol@example.net"}));
  EXPECT_TRUE(t.mail.empty());
  EXPECT_TRUE(t.rcpt[0].empty() && t.rcpt[1].empty());
  ASSERT_TRUE(t.result.has_value());
  EXPECT_EQ(t.result->action, Action::kDeliver);
  EXPECT_EQ(milter.connections(), 1);
  // connect, HELO, MAIL, RCPT x2, DATA, two header fields, EOH, body, EOM, QUIT.
  EXPECT_EQ(EventsBecome(milter, "CHMRRTLLNBEQ"), "CHMRRTLLNBEQ");
}

TEST(ChainTransactionTest, ARefusedRecipientIsAnsweredAtRcptAndNotedWithTheVerdict) {
  testing::MilterScript script;
  script.replies['R'] = {Resp(milter::kRespReplyCode, "550 5.1.1 <bob@example.net>: unknown")};
  testing::TestMilterServer milter(script);
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "m", milter.address());
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net"}));
  ASSERT_EQ(t.rcpt.size(), 1u);
  EXPECT_EQ(t.rcpt[0].ToString(), "550 5.1.1 <bob@example.net>: unknown");
  EXPECT_FALSE(t.result.has_value());  // no recipient left: no content
}

TEST(ChainTransactionTest, TheFirstRefusalStopsTheFiltersAfterIt) {
  testing::MilterScript refuse;
  refuse.replies['M'] = {Resp(milter::kRespReject)};
  testing::TestMilterServer first(refuse);
  testing::TestMilterServer second(testing::MilterScript{});
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "first", first.address());
  AddMilter(config, "second", second.address());
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net"}));
  EXPECT_EQ(t.mail.ToString(), "550 5.7.1 Command rejected");
  EXPECT_EQ(second.connections(), 0);
}

TEST(ChainTransactionTest, AFailureUnderTempfailAnswersEveryLaterCommand) {
  testing::MilterScript hang;
  hang.hang_on = 'R';
  testing::TestMilterServer milter(hang);
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "m", milter.address());
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net", "carol@example.net"}));
  ASSERT_EQ(t.rcpt.size(), 2u);
  EXPECT_EQ(t.rcpt[0].ToString(), "451 4.7.1 Service unavailable - try again later");
  EXPECT_EQ(t.rcpt[1].ToString(), t.rcpt[0].ToString());
  EXPECT_EQ(t.data.ToString(), t.rcpt[0].ToString());
  EXPECT_EQ(EventsBecome(milter, "CHMR"), "CHMR");  // nothing after the failure, not even QUIT
}

TEST(ChainTransactionTest, AFailureUnderAcceptSkipsTheFilter) {
  testing::MilterScript hang;
  hang.hang_on = 'R';
  testing::TestMilterServer milter(hang);
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "m", milter.address(), sluice::v1::FAILURE_POLICY_ACCEPT);
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net"}));
  EXPECT_TRUE(t.rcpt[0].empty());
  ASSERT_TRUE(t.result.has_value());
  EXPECT_EQ(t.result->action, Action::kDeliver);
  EXPECT_EQ(t.result->results[0].verdict(), "error");
  EXPECT_THAT(t.result->results[0].detail(), HasSubstr("timeout at rcpt"));
}

TEST(ChainTransactionTest, AcceptAtMailSkipsTheFilterForTheContent) {
  testing::MilterScript script;
  script.replies['M'] = {Resp(milter::kRespAccept)};
  testing::TestMilterServer milter(script);
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "m", milter.address());
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net"}));
  ASSERT_TRUE(t.result.has_value());
  EXPECT_EQ(t.result->action, Action::kDeliver);
  EXPECT_EQ(t.result->results[0].verdict(), "accept");
  EXPECT_EQ(EventsBecome(milter, "CHMQ"), "CHMQ");
}

TEST(ChainTransactionTest, DiscardAndQuarantineAtTheEnvelopeReachTheResult) {
  testing::MilterScript discard;
  discard.replies['R'] = {Resp(milter::kRespDiscard)};
  testing::TestMilterServer discarding(discard);
  sluice::v1::FilterBridgeConfig config;
  AddMilter(config, "d", discarding.address());
  auto chain = MakeChain(config);
  Transcript t = testing::RunAwaitable(Drive(*chain, {"bob@example.net"}));
  EXPECT_TRUE(t.rcpt[0].empty());  // the dialogue goes on as if accepted
  ASSERT_TRUE(t.result.has_value());
  EXPECT_EQ(t.result->action, Action::kDiscard);

  testing::MilterScript quarantine;
  quarantine.replies['M'] = {Resp(milter::kRespQuarantine, "suspicious sender"), Resp(milter::kRespContinue)};
  testing::TestMilterServer holding(quarantine);
  sluice::v1::FilterBridgeConfig config2;
  AddMilter(config2, "q", holding.address());
  auto chain2 = MakeChain(config2);
  Transcript t2 = testing::RunAwaitable(Drive(*chain2, {"bob@example.net"}));
  ASSERT_TRUE(t2.result.has_value());
  EXPECT_EQ(t2.result->action, Action::kDeliver);
  EXPECT_TRUE(t2.result->hold);
  EXPECT_EQ(t2.result->hold_reason, "suspicious sender");
}

TEST(ChainTransactionTest, NoEnvelopeFilterNoTransaction) {
  sluice::v1::FilterBridgeConfig config;
  config.add_filters()->mutable_rules();
  auto chain = MakeChain(config);
  EXPECT_EQ(chain->BeginTransaction(), nullptr);
}

}  // namespace
}  // namespace sluice::filter_bridge
