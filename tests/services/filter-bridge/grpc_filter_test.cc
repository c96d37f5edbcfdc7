// tests/services/filter-bridge/grpc_filter_test.cc
//
// The gRPC filter client against the sample filter (sample_grpc_filter.h): a full round trip
// (what the filter receives, what its verdict and edits become), every verdict, an early
// answer, the deadline, an unreachable filter, and malformed verdicts.
#include "services/filter-bridge/filters/grpc_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "lib/status/status_matchers.h"
#include "tests/services/filter-bridge/filter_test_support.h"
#include "tests/services/filter-bridge/sample_grpc_filter.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;
using testing::ContextHolder;
using testing::SampleFilterServer;

std::string Message(std::string_view subject, std::string_view body = "line 1\r\nline 2\r\n") {
  return "From: alice@example.com\r\n"
         "Subject: " + std::string(subject) + "\r\n"
         "X-Folded: one\r\n"
         "\ttwo\r\n"
         "X-Remove-Me: yes\r\n"
         "\r\n" + std::string(body);
}

std::unique_ptr<Filter> MakeGrpcFilter(const std::string& address, uint32_t chunk_bytes = 0) {
  sluice::v1::FilterConfig config;
  config.set_name("sample");
  config.mutable_grpc()->set_address(address);
  config.mutable_grpc()->set_chunk_bytes(chunk_bytes);
  sluice::v1::FilterBridgeConfig bridge;
  auto filter = NewGrpcFilterFactory()->Create(config, FilterFactoryContext{bridge});
  EXPECT_THAT(filter, IsOk());
  return std::move(filter).value();
}

FilterOutcome RunFilter(Filter& filter, const ContextHolder& h) {
  FilterContext ctx = h.ctx();
  return testing::RunAwaitable(filter.Run(ctx));
}

TEST(GrpcFilterTest, RoundTripWithTheSampleFilter) {
  SampleFilterServer server;
  auto filter = MakeGrpcFilter(server.address());
  ContextHolder h(Message("hello"));
  FilterOutcome out = RunFilter(*filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kAccept);
  EXPECT_EQ(out->detail, "clean");

  testing::SampleContentFilter::Seen seen = server.service().last();
  EXPECT_TRUE(seen.deadline_set);
  EXPECT_EQ(seen.start.session().session_id(), "F1A2B3C4D5");
  EXPECT_EQ(seen.start.envelope().mail_from(), "alice@example.com");
  EXPECT_EQ(seen.start.envelope().recipients(0).address(), "bob@example.net");
  EXPECT_EQ(seen.start.size_bytes(), h.spool->size());
  EXPECT_THAT(seen.headers, ElementsAre(Pair("From", "alice@example.com"), Pair("Subject", "hello"),
                                        Pair("X-Folded", "one\ttwo"), Pair("X-Remove-Me", "yes")));
  EXPECT_EQ(seen.body, "line 1\r\nline 2\r\n");
  EXPECT_EQ(testing::ApplyDecision(*h.spool, *out),
            "X-Sample-Top: first\r\n"
            "From: alice@example.com\r\n"
            "Subject: hello\r\n"
            "X-Folded: one\r\n"
            "\ttwo\r\n"
            "X-Sample-Filter: headers=4 body=16 size=" + std::to_string(h.spool->size()) + "\r\n"
            "\r\n"
            "line 1\r\nline 2\r\n");
}

TEST(GrpcFilterTest, BodyArrivesWholeInChunks) {
  SampleFilterServer server;
  auto filter = MakeGrpcFilter(server.address(), 1024);
  std::string body;
  for (int i = 0; i < 2000; ++i) body += "body line " + std::to_string(i) + "\r\n";
  ContextHolder h(Message("big", body));
  ASSERT_THAT(RunFilter(*filter, h), IsOk());
  EXPECT_EQ(server.service().last().body, body);
}

TEST(GrpcFilterTest, Verdicts) {
  SampleFilterServer server;
  auto filter = MakeGrpcFilter(server.address());
  ContextHolder reject(Message("please reject-me"));
  FilterOutcome out = RunFilter(*filter, reject);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kReject);
  EXPECT_EQ(out->reply.ToString(), "554 5.7.1 sample says no");
  EXPECT_EQ(out->detail, "subject asked for it");

  ContextHolder tempfail(Message("tempfail-me"));
  out = RunFilter(*filter, tempfail);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kTempfail);
  EXPECT_EQ(out->reply.ToString(), "451 4.7.1 Try again later");

  ContextHolder hold(Message("hold-me"));
  out = RunFilter(*filter, hold);
  ASSERT_THAT(out, IsOk());
  EXPECT_TRUE(out->hold);
  EXPECT_EQ(out->hold_reason, "sample hold");
  EXPECT_FALSE(IsFinal(out->verdict));
}

TEST(GrpcFilterTest, AnEarlyAnswerEndsTheStream) {
  SampleFilterServer server;
  auto filter = MakeGrpcFilter(server.address(), 1024);
  std::string body(200000, 'x');
  ContextHolder h("Subject: early\r\n" + Message("x", body));
  FilterOutcome out = RunFilter(*filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kAccept);
  EXPECT_LT(server.service().last().body.size(), body.size());
}

TEST(GrpcFilterTest, DeadlineIsTheCallDeadline) {
  SampleFilterServer server;
  auto filter = MakeGrpcFilter(server.address());
  ContextHolder h(Message("slow"));
  h.deadline = Clock::now() + std::chrono::seconds(1);
  EXPECT_THAT(RunFilter(*filter, h), StatusIs(absl::StatusCode::kDeadlineExceeded));
  for (int i = 0; i < 500 && !server.service().last().cancelled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(server.service().last().cancelled);  // the filter saw the call end
}

TEST(GrpcFilterTest, UnreachableFilterIsAFailure) {
  auto filter = MakeGrpcFilter("127.0.0.1:1");
  ContextHolder h(Message("hello"));
  h.deadline = Clock::now() + std::chrono::seconds(5);
  FilterOutcome out = RunFilter(*filter, h);
  EXPECT_FALSE(out.ok());
}

TEST(GrpcFilterTest, MalformedVerdictsAreFailures) {
  sluice::v1::FilterVerdict v;
  v.add_header_edits()->set_name("X-No-Op");
  EXPECT_THAT(GrpcFilter::DecisionFromVerdict(v), StatusIs(absl::StatusCode::kDataLoss));
  v.Clear();
  auto* e = v.add_header_edits();
  e->set_op(sluice::v1::HeaderEdit::ADD);
  e->set_name("Bad Name");
  EXPECT_THAT(GrpcFilter::DecisionFromVerdict(v), StatusIs(absl::StatusCode::kDataLoss));
  v.Clear();
  v.set_action(static_cast<sluice::v1::FilterVerdict::Action>(42));
  EXPECT_THAT(GrpcFilter::DecisionFromVerdict(v), StatusIs(absl::StatusCode::kDataLoss));
  v.Clear();
  v.set_action(sluice::v1::FilterVerdict::REJECT);
  v.set_smtp_code(451);  // a reject is 5xx: the default reply is used
  auto d = GrpcFilter::DecisionFromVerdict(v);
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->reply.ToString(), "550 5.7.1 Message rejected");
}

TEST(GrpcFilterTest, BadConfigIsRefused) {
  sluice::v1::FilterConfig config;
  config.set_name("g");
  config.mutable_grpc()->set_address("no-port");
  sluice::v1::FilterBridgeConfig bridge;
  EXPECT_THAT(NewGrpcFilterFactory()->Create(config, FilterFactoryContext{bridge}),
              StatusIs(absl::StatusCode::kInvalidArgument, "address"));
  config.mutable_grpc()->set_address("127.0.0.1:1");
  config.mutable_grpc()->set_chunk_bytes(10);
  EXPECT_THAT(NewGrpcFilterFactory()->Create(config, FilterFactoryContext{bridge}),
              StatusIs(absl::StatusCode::kInvalidArgument, "chunk_bytes"));
  config.mutable_grpc()->set_chunk_bytes(0);
  config.mutable_grpc()->mutable_tls()->set_ca_file("/nonexistent/ca.pem");
  EXPECT_THAT(NewGrpcFilterFactory()->Create(config, FilterFactoryContext{bridge}),
              StatusIs(absl::StatusCode::kInvalidArgument, "ca_file"));
}

}  // namespace
}  // namespace sluice::filter_bridge
