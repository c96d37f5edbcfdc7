// tests/services/filter-bridge/filter_chain_test.cc
//
// The chain as the relay uses it: filters in order, each seeing the edits before it, the
// first final verdict ending the chain, failure policies (tempfail, accept, reject) for
// errors and timeouts, the chain deadline, envelope changes, the trace and hold headers,
// config errors naming the filter, and the metrics.
#include "services/filter-bridge/filters/filter_chain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "prometheus/registry.h"
#include "tests/services/filter-bridge/filter_test_support.h"
#include "tests/services/filter-bridge/sample_grpc_filter.h"
#include "tests/services/filter-bridge/test_milter_server.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Action = ChainResult::Action;

const char kMessage[] =
    "From: alice@example.com\r\n"
    "To: bob@example.net\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "body\r\n";

sluice::v1::FilterBridgeConfig BaseConfig(std::string trace = "X-Sluice-Filter") {
  sluice::v1::FilterBridgeConfig c;
  c.mutable_server()->set_hostname("fb.test.example");
  c.set_trace_header(std::move(trace));
  return c;
}

sluice::v1::Rule* AddRule(sluice::v1::FilterConfig* f, sluice::v1::RuleAction action) {
  sluice::v1::Rule* r = f->mutable_rules()->add_rules();
  r->set_action(action);
  return r;
}

sluice::v1::FilterConfig* AddRules(sluice::v1::FilterBridgeConfig& c, std::string name) {
  sluice::v1::FilterConfig* f = c.add_filters();
  f->set_name(std::move(name));
  f->mutable_rules();
  return f;
}

sluice::v1::FilterConfig* AddMilter(sluice::v1::FilterBridgeConfig& c, std::string name, std::string address,
                                    uint32_t timeout = 10) {
  sluice::v1::FilterConfig* f = c.add_filters();
  f->set_name(std::move(name));
  f->mutable_milter()->set_address(std::move(address));
  f->mutable_milter()->set_command_timeout_seconds(timeout);
  f->mutable_milter()->set_content_timeout_seconds(timeout);
  return f;
}

struct ChainRun {
  std::unique_ptr<MessageSpool> spool;
  ChainResult result;
  std::string output;  // the delivered message (kDeliver)
};

ChainRun RunChain(const sluice::v1::FilterBridgeConfig& config, std::string_view message = kMessage,
             std::chrono::seconds deadline = std::chrono::seconds(30), prometheus::Registry* registry = nullptr,
             sluice::v1::Transaction envelope = testing::MakeEnvelope()) {
  auto chain = FilterChain::Create(config, registry);
  EXPECT_THAT(chain, IsOk());
  ChainRun run;
  run.spool = testing::MakeSpool(message);
  sluice::v1::SessionMetadata session = testing::MakeSession();
  ChainInput input;
  input.session = &session;
  input.envelope = std::move(envelope);
  input.spool = run.spool.get();
  input.deadline = Clock::now() + deadline;
  run.result = testing::RunAwaitable((*chain)->Run(input));
  if (run.result.action == Action::kDeliver) run.output = testing::WriteToString(*run.spool, run.result.edits);
  return run;
}

TEST(FilterChainTest, NoFiltersAndNoTraceIsByteExact) {
  ChainRun run = RunChain(BaseConfig(""));
  EXPECT_EQ(run.result.action, Action::kDeliver);
  EXPECT_TRUE(run.result.edits.empty());
  EXPECT_EQ(run.output, kMessage);
}

TEST(FilterChainTest, TraceHeaderOnTopNamesEachFilter) {
  auto config = BaseConfig();
  AddRule(AddRules(config, "rules"), sluice::v1::RULE_ACTION_ACCEPT);
  testing::TestMilterServer milter(testing::MilterScript{});
  AddMilter(config, "milter-1", milter.address());
  ChainRun run = RunChain(config);
  ASSERT_EQ(run.result.action, Action::kDeliver);
  EXPECT_THAT(run.result.trace, StartsWith("fb.test.example; rules=accept ("));
  // Folded before an entry that would pass 78 characters on the line.
  EXPECT_THAT(run.result.trace, HasSubstr(");\r\n\tmilter-1=continue ("));
  EXPECT_EQ(run.output, "X-Sluice-Filter: " + run.result.trace + "\r\n" + kMessage);
}

TEST(FilterChainTest, EditsOfOneFilterAreSeenByTheNext) {
  auto config = BaseConfig("");
  sluice::v1::Rule* add = AddRule(AddRules(config, "tagger"), sluice::v1::RULE_ACTION_ADD_HEADER);
  add->set_header_name("X-Tagged");
  add->set_header_value("yes");
  sluice::v1::Rule* reject = AddRule(AddRules(config, "judge"), sluice::v1::RULE_ACTION_REJECT);
  reject->mutable_match()->set_header("X-Tagged");
  ChainRun run = RunChain(config);
  EXPECT_EQ(run.result.action, Action::kReject);
  EXPECT_EQ(run.result.reply.ToString(), "550 5.7.1 Message content rejected");
  ASSERT_EQ(run.result.results.size(), 2u);
  EXPECT_EQ(run.result.results[1].verdict(), "reject");
}

TEST(FilterChainTest, TheFirstFinalVerdictEndsTheChain) {
  auto config = BaseConfig();
  AddRule(AddRules(config, "discarder"), sluice::v1::RULE_ACTION_DISCARD);
  AddRule(AddRules(config, "never"), sluice::v1::RULE_ACTION_REJECT);
  ChainRun run = RunChain(config);
  EXPECT_EQ(run.result.action, Action::kDiscard);
  ASSERT_EQ(run.result.results.size(), 1u);
  EXPECT_EQ(run.result.results[0].filter(), "discarder");
}

TEST(FilterChainTest, TempfailVerdict) {
  auto config = BaseConfig();
  sluice::v1::Rule* r = AddRule(AddRules(config, "r"), sluice::v1::RULE_ACTION_TEMPFAIL);
  r->set_text("Try later, busy");
  ChainRun run = RunChain(config);
  EXPECT_EQ(run.result.action, Action::kTempfail);
  EXPECT_EQ(run.result.reply.ToString(), "451 4.7.1 Try later, busy");
}

TEST(FilterChainTest, HoldTravelsAsAHeaderAtTheTop) {
  auto config = BaseConfig("");
  sluice::v1::Rule* hold = AddRule(AddRules(config, "quarantine"), sluice::v1::RULE_ACTION_HOLD);
  hold->set_text("attachment type");
  ChainRun run = RunChain(config);
  ASSERT_EQ(run.result.action, Action::kDeliver);
  EXPECT_TRUE(run.result.hold);
  EXPECT_EQ(run.result.results[0].verdict(), "hold");
  EXPECT_EQ(run.output, std::string("X-Sluice-Hold: attachment type\r\n") + kMessage);
}

TEST(FilterChainTest, ASendersHoldHeaderIsRemoved) {
  const std::string forged = std::string("X-Sluice-Hold: forged by the sender\r\n") + kMessage;
  ChainRun run = RunChain(BaseConfig(""), forged);
  ASSERT_EQ(run.result.action, Action::kDeliver);
  EXPECT_FALSE(run.result.hold);
  EXPECT_EQ(run.output, kMessage);
}

TEST(FilterChainTest, UpstreamHoldMarkIsOnlyAboveTheFirstReceived) {
  // The frontend's HOLD (a restriction check) stands above its own Received:; a client's
  // fields come after it, so a mark below is the sender's and is not an upstream hold.
  auto upstream = testing::MakeSpool("X-Sluice-Hold: policy says hold\r\nReceived: from client by frontend\r\n"
                            "X-Sluice-Hold: forged\r\nSubject: x\r\n\r\nbody\r\n");
  EXPECT_EQ(UpstreamHoldMark(*upstream).value_or("none"), "policy says hold");
  auto forged = testing::MakeSpool("Received: from client by frontend\r\nX-Sluice-Hold: forged\r\n\r\nbody\r\n");
  EXPECT_FALSE(UpstreamHoldMark(*forged).has_value());
}

TEST(FilterChainTest, FailurePolicies) {
  testing::MilterScript broken;
  broken.close_on = 'E';
  testing::TestMilterServer milter(broken);
  struct Case {
    sluice::v1::FailurePolicy policy;
    Action action;
    std::string reply;
  } cases[] = {
      {sluice::v1::FAILURE_POLICY_UNSPECIFIED, Action::kTempfail, "451 4.7.1 Service unavailable - try again later"},
      {sluice::v1::FAILURE_POLICY_TEMPFAIL, Action::kTempfail, "451 4.7.1 Service unavailable - try again later"},
      {sluice::v1::FAILURE_POLICY_REJECT, Action::kReject, "550 5.5.0 Service unavailable"},
      {sluice::v1::FAILURE_POLICY_ACCEPT, Action::kDeliver, ""},
  };
  for (const Case& c : cases) {
    auto config = BaseConfig();
    AddMilter(config, "m", milter.address())->set_on_failure(c.policy);
    AddRule(AddRules(config, "after"), sluice::v1::RULE_ACTION_ACCEPT);
    ChainRun run = RunChain(config);
    EXPECT_EQ(run.result.action, c.action) << c.policy;
    ASSERT_FALSE(run.result.results.empty());
    EXPECT_EQ(run.result.results[0].verdict(), "error");
    EXPECT_THAT(run.result.results[0].detail(), HasSubstr("error: "));
    if (c.action == Action::kDeliver) {
      EXPECT_EQ(run.result.results.size(), 2u);  // the next filter ran
      EXPECT_THAT(run.output, StartsWith("X-Sluice-Filter: fb.test.example; m=error ("));
    } else {
      EXPECT_EQ(run.result.reply.ToString(), c.reply);
      EXPECT_EQ(run.result.results.size(), 1u);
    }
  }
}

TEST(FilterChainTest, MilterThatRejects) {
  testing::MilterScript script;
  milter::Response reject;
  reject.code = milter::kRespReject;
  script.replies['E'] = {reject};
  testing::TestMilterServer milter(script);
  auto config = BaseConfig();
  AddMilter(config, "m", milter.address());
  ChainRun run = RunChain(config);
  EXPECT_EQ(run.result.action, Action::kReject);
  EXPECT_EQ(run.result.reply.ToString(), "550 5.7.1 Command rejected");
}

TEST(FilterChainTest, FilterTimeoutUnderBothPolicies) {
  testing::MilterScript slow;
  slow.hang_on = 'E';
  testing::TestMilterServer milter(slow);
  for (auto policy : {sluice::v1::FAILURE_POLICY_TEMPFAIL, sluice::v1::FAILURE_POLICY_ACCEPT}) {
    auto config = BaseConfig();
    // The milter's own timeouts are long; the filter's timeout_seconds bounds it.
    sluice::v1::FilterConfig* f = AddMilter(config, "m", milter.address(), 300);
    f->set_timeout_seconds(1);
    f->set_on_failure(policy);
    prometheus::Registry registry;
    ChainRun run = RunChain(config, kMessage, std::chrono::seconds(30), &registry);
    EXPECT_EQ(run.result.action,
              policy == sluice::v1::FAILURE_POLICY_ACCEPT ? Action::kDeliver : Action::kTempfail);
    ASSERT_EQ(run.result.results.size(), 1u);
    EXPECT_THAT(run.result.results[0].detail(), StartsWith("timeout: "));
  }
}

TEST(FilterChainTest, TheChainDeadlineBoundsAGrpcFilter) {
  testing::SampleFilterServer server;
  auto config = BaseConfig();
  sluice::v1::FilterConfig* f = config.add_filters();
  f->set_name("sample");
  f->mutable_grpc()->set_address(server.address());
  const std::string slow = "Subject: slow\r\n\r\nbody\r\n";
  ChainRun run = RunChain(config, slow, std::chrono::seconds(1));
  EXPECT_EQ(run.result.action, Action::kTempfail);
  ASSERT_EQ(run.result.results.size(), 1u);
  EXPECT_THAT(run.result.results[0].detail(), StartsWith("timeout: "));
}

TEST(FilterChainTest, GrpcVerdictAndEditsThroughTheChain) {
  testing::SampleFilterServer server;
  auto config = BaseConfig("");
  sluice::v1::FilterConfig* f = config.add_filters();
  f->set_name("sample");
  f->mutable_grpc()->set_address(server.address());
  ChainRun reject = RunChain(config, "Subject: reject-me\r\n\r\nx\r\n");
  EXPECT_EQ(reject.result.action, Action::kReject);
  EXPECT_EQ(reject.result.reply.ToString(), "554 5.7.1 sample says no");
  ChainRun hold = RunChain(config, "Subject: hold-me\r\n\r\nx\r\n");
  ASSERT_EQ(hold.result.action, Action::kDeliver);
  EXPECT_EQ(hold.output, "X-Sluice-Hold: sample hold\r\nSubject: hold-me\r\n\r\nx\r\n");
  ChainRun accept = RunChain(config, "Subject: fine\r\nX-Remove-Me: 1\r\n\r\nx\r\n");
  ASSERT_EQ(accept.result.action, Action::kDeliver);
  EXPECT_THAT(accept.output, StartsWith("X-Sample-Top: first\r\nSubject: fine\r\nX-Sample-Filter: "));
}

TEST(FilterChainTest, NoTimeLeftMeansTheFilterDoesNotRun) {
  testing::TestMilterServer milter(testing::MilterScript{});
  auto config = BaseConfig();
  AddMilter(config, "m", milter.address());
  ChainRun run = RunChain(config, kMessage, std::chrono::seconds(-1));
  EXPECT_EQ(run.result.action, Action::kTempfail);
  EXPECT_EQ(milter.connections(), 0);
}

TEST(FilterChainTest, EnvelopeChangesFromAMilter) {
  testing::MilterScript script;
  milter::Response add, del, from, go_on;
  add.code = milter::kRespAddRcpt;
  add.text = "<carol@example.org>";
  del.code = milter::kRespDelRcpt;
  del.text = "<BOB@example.net>";
  from.code = milter::kRespChgFrom;
  from.text = "<>";
  go_on.code = milter::kRespContinue;
  script.replies['E'] = {add, del, from, go_on};
  testing::TestMilterServer milter(script);
  auto config = BaseConfig("");
  AddMilter(config, "m", milter.address());
  ChainRun run = RunChain(config);
  ASSERT_EQ(run.result.action, Action::kDeliver);
  EXPECT_TRUE(run.result.envelope_changed);
  EXPECT_EQ(run.result.envelope.mail_from(), "");
  ASSERT_EQ(run.result.envelope.recipients_size(), 1);
  EXPECT_EQ(run.result.envelope.recipients(0).address(), "carol@example.org");

  script.replies['E'] = {del, go_on};
  testing::TestMilterServer remover(script);
  auto config2 = BaseConfig("");
  AddMilter(config2, "m", remover.address());
  ChainRun none_left = RunChain(config2);
  EXPECT_EQ(none_left.result.action, Action::kDiscard);  // no recipient left: nothing to deliver
}

TEST(FilterChainTest, ConfigErrorsNameTheFilter) {
  auto dup = BaseConfig();
  AddRules(dup, "same");
  AddRules(dup, "same");
  EXPECT_THAT(FilterChain::Create(dup, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, "duplicate"));

  auto pattern = BaseConfig();
  AddRule(AddRules(pattern, "spam-rules"), sluice::v1::RULE_ACTION_REJECT)->mutable_match()->set_body_pattern("(");
  EXPECT_THAT(FilterChain::Create(pattern, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, "filters[0] (spam-rules): rule 'rule-1' (#1): body_pattern"));

  auto kind = BaseConfig();
  kind.add_filters()->set_name("nothing");
  EXPECT_THAT(FilterChain::Create(kind, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, "no filter kind"));

  auto address = BaseConfig();
  AddMilter(address, "dkim", "inet:nowhere");
  EXPECT_THAT(FilterChain::Create(address, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, "(dkim)"));

  auto name = BaseConfig();
  AddRules(name, "bad name");
  EXPECT_THAT(FilterChain::Create(name, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, "name"));

  EXPECT_THAT(FilterChain::Create(BaseConfig("Bad Header:"), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, "trace_header"));

  auto unnamed = BaseConfig();
  AddRules(unnamed, "");
  AddRules(unnamed, "");
  auto chain = FilterChain::Create(unnamed, nullptr);
  ASSERT_THAT(chain, IsOk());  // default names rules-1, rules-2
}

double Value(prometheus::Registry& registry, const std::string& family,
             const std::map<std::string, std::string>& labels) {
  for (const auto& f : registry.Collect()) {
    if (f.name != family) continue;
    for (const auto& m : f.metric) {
      std::map<std::string, std::string> got;
      for (const auto& l : m.label) got[l.name] = l.value;
      if (got != labels) continue;
      if (f.type == prometheus::MetricType::Histogram) return static_cast<double>(m.histogram.sample_count);
      return m.counter.value;
    }
  }
  return -1;  // not present
}

TEST(FilterChainTest, MetricsPerFilterWithEveryLabelValuePrecreated) {
  prometheus::Registry registry;
  testing::MilterScript broken;
  broken.close_on = 'C';
  testing::TestMilterServer milter(broken);
  auto config = BaseConfig();
  AddRule(AddRules(config, "rules"), sluice::v1::RULE_ACTION_ADD_HEADER)->set_header_name("X-A");
  AddMilter(config, "m", milter.address())->set_on_failure(sluice::v1::FAILURE_POLICY_ACCEPT);
  RunChain(config, kMessage, std::chrono::seconds(30), &registry);

  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_results_total", {{"filter", "rules"}, {"verdict", "continue"}}), 1);
  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_results_total", {{"filter", "rules"}, {"verdict", "reject"}}), 0);
  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_results_total", {{"filter", "m"}, {"verdict", "error"}}), 1);
  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_failures_total", {{"filter", "m"}, {"reason", "error"}}), 1);
  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_failures_total", {{"filter", "m"}, {"reason", "timeout"}}), 0);
  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_duration_seconds", {{"filter", "rules"}}), 1);
  EXPECT_EQ(Value(registry, "sluice_filter_bridge_filter_duration_seconds", {{"filter", "m"}}), 1);
}

}  // namespace
}  // namespace sluice::filter_bridge
