// tests/services/filter-bridge/milter_filter_test.cc
//
// The milter client against a small real milter (test_milter_server.h) on loopback: the
// events, macros and content it sends, the verdicts it derives, every modification at end of
// message, and every way a milter can fail (timeout, disconnect, malformed packet, refused
// connection, unnegotiated action).
#include "services/filter-bridge/filters/milter_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "lib/status/status_matchers.h"
#include "tests/services/filter-bridge/filter_test_support.h"
#include "tests/services/filter-bridge/test_milter_server.h"

namespace sluice::filter_bridge {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using testing::ContextHolder;
using testing::MilterScript;
using testing::RunAwaitable;
using testing::TestMilterServer;
using milter::Command;
using milter::Response;

const char kMessage[] =
    "From: alice@example.com\r\n"
    "To: bob@example.net\r\n"
    "Subject: hello\r\n"
    "\tworld\r\n"
    "X-Tab:\tvalue\r\n"
    "\r\n"
    "line one\r\n"
    "line two\r\n";

MilterFilter Filter(const std::string& address, int timeout_seconds = 10) {
  MilterFilter::Options o;
  o.name = "test-milter";
  auto a = ParseMilterAddress(address);
  EXPECT_THAT(a, IsOk());
  o.address = *a;
  o.connect_timeout = std::chrono::seconds(timeout_seconds);
  o.command_timeout = std::chrono::seconds(timeout_seconds);
  o.content_timeout = std::chrono::seconds(timeout_seconds);
  return MilterFilter(o);
}

FilterOutcome RunMilter(MilterFilter& filter, const ContextHolder& h) {
  FilterContext ctx = h.ctx();
  return RunAwaitable(filter.Run(ctx));
}

std::vector<Command> Of(const std::vector<Command>& all, char code) {
  std::vector<Command> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out), [&](const Command& c) { return c.code == code; });
  return out;
}

std::string Codes(const std::vector<Command>& all) {
  std::string s;
  for (const Command& c : all) s.push_back(c.code);
  return s;
}

Response R(char code, std::string text = "") {
  Response r;
  r.code = code;
  r.text = std::move(text);
  return r;
}

Response Header(char code, uint32_t index, std::string name, std::string value) {
  Response r;
  r.code = code;
  r.index = index;
  r.name = std::move(name);
  r.value = std::move(value);
  return r;
}

TEST(MilterFilterTest, SendsEnvelopeMacrosAndContentLikePostfix) {
  TestMilterServer server(MilterScript{});
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  FilterOutcome out = RunMilter(filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kContinue);
  EXPECT_TRUE(out->header_edits.empty());

  std::vector<Command> cmds = server.commands();
  // Option negotiation, then every event after its macros, then quit.
  EXPECT_EQ(Codes(cmds), "ODCDHDMDRDTDLLLLDNDBDEQ");
  EXPECT_EQ(cmds[0].optneg.version, 6u);
  EXPECT_EQ(cmds[0].optneg.actions, milter::kActAll);
  EXPECT_EQ(cmds[0].optneg.protocol, milter::kOfferedProtocol);
  EXPECT_EQ(cmds[1].macro_for, 'C');
  EXPECT_THAT(cmds[1].macros, Contains(Pair("j", "filter.test.example")));
  EXPECT_THAT(cmds[1].macros, Contains(Pair("{client_addr}", "192.0.2.10")));
  const Command& connect = cmds[2];
  EXPECT_EQ(connect.hostname, "mail.client.example");
  EXPECT_EQ(connect.family, '4');
  EXPECT_EQ(connect.port, 40000);
  EXPECT_EQ(connect.address, "192.0.2.10");
  EXPECT_THAT(cmds[4].args, ElementsAre("helo.client.example"));
  EXPECT_THAT(cmds[5].macros, Contains(Pair("{auth_authen}", "alice")));
  EXPECT_THAT(cmds[6].args, ElementsAre("<alice@example.com>", "SIZE=1234"));
  EXPECT_THAT(cmds[7].macros, Contains(Pair("{rcpt_addr}", "bob@example.net")));
  EXPECT_THAT(cmds[8].args, ElementsAre("<bob@example.net>"));
  std::vector<Command> headers = Of(cmds, 'L');
  ASSERT_EQ(headers.size(), 4u);
  EXPECT_EQ(headers[0].name, "From");
  EXPECT_EQ(headers[0].value, "alice@example.com");  // Sendmail eats the one space
  EXPECT_EQ(headers[2].value, "hello\n\tworld");      // folds as LF-separated lines
  EXPECT_EQ(headers[3].value, "\tvalue");             // only a space is eaten, not a tab
  std::vector<Command> body = Of(cmds, 'B');
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0].body, "line one\r\nline two\r\n");
}

TEST(MilterFilterTest, LeadingSpaceAndSymbolListsAreHonoured) {
  MilterScript script;
  script.protocol = milter::kProtoHeaderLeadingSpace;
  script.actions = milter::kActAll;
  script.macro_lists = {{milter::kStageMail, "{mail_addr}"}, {milter::kStageConnect, "{client_name}"}};
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  ASSERT_THAT(RunMilter(filter, h), IsOk());
  std::vector<Command> cmds = server.commands();
  std::vector<Command> headers = Of(cmds, 'L');
  ASSERT_FALSE(headers.empty());
  EXPECT_EQ(headers[0].value, " alice@example.com");
  std::vector<Command> macros = Of(cmds, 'D');
  EXPECT_THAT(macros[0].macros, ElementsAre(Pair("{client_name}", "mail.client.example")));
  EXPECT_THAT(macros[2].macros, ElementsAre(Pair("{mail_addr}", "alice@example.com")));
}

TEST(MilterFilterTest, OptedOutEventsAreNotSentAndNoReplyEventsNotAwaited) {
  MilterScript script;
  script.protocol = milter::kProtoNoHelo | milter::kProtoNoBody | milter::kProtoNoReplyHeader |
                    milter::kProtoNoReplyRcpt | milter::kProtoNoReplyConnect;
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  FilterOutcome out = RunMilter(filter, h);
  ASSERT_THAT(out, IsOk());
  std::vector<Command> cmds = server.commands();
  EXPECT_TRUE(Of(cmds, 'H').empty());
  EXPECT_TRUE(Of(cmds, 'B').empty());
  EXPECT_EQ(Of(cmds, 'L').size(), 4u);
  EXPECT_EQ(Of(cmds, 'E').size(), 1u);
}

struct VerdictCase {
  char stage;
  Response response;
  Verdict verdict;
  std::string reply;
};

TEST(MilterFilterTest, VerdictsAtEveryStage) {
  const std::vector<VerdictCase> cases = {
      {'E', R('r'), Verdict::kReject, "550 5.7.1 Command rejected"},
      {'M', R('r'), Verdict::kReject, "550 5.7.1 Command rejected"},
      {'E', R('t'), Verdict::kTempfail, "451 4.7.1 Service unavailable - try again later"},
      {'R', R('t'), Verdict::kTempfail, "451 4.7.1 Service unavailable - try again later"},  // greylisting
      {'L', R('y', "554 5.7.0 Spam score 42%% too high"), Verdict::kReject, "554 5.7.0 Spam score 42% too high"},
      {'E', R('y', "421 4.7.0 busy"), Verdict::kTempfail, "421 4.7.0 busy"},
      {'E', R('d'), Verdict::kDiscard, ""},
      {'B', R('d'), Verdict::kDiscard, ""},
      {'E', R('4'), Verdict::kTempfail, "451 4.7.1 Service unavailable - try again later"},
      {'E', R('a'), Verdict::kContinue, ""},
      {'T', R('a'), Verdict::kAccept, ""},
  };
  for (const VerdictCase& c : cases) {
    MilterScript script;
    script.replies[c.stage] = {c.response};
    TestMilterServer server(script);
    MilterFilter filter = Filter(server.address());
    ContextHolder h(kMessage);
    FilterOutcome out = RunMilter(filter, h);
    ASSERT_THAT(out, IsOk()) << c.stage << c.response.code;
    EXPECT_EQ(out->verdict, c.verdict) << c.stage << c.response.code;
    if (!c.reply.empty()) {
      EXPECT_EQ(out->reply.ToString(), c.reply) << c.stage << c.response.code;
    }
  }
}

TEST(MilterFilterTest, AcceptBeforeEndOfMessageSendsNoMoreContent) {
  MilterScript script;
  script.replies['N'] = {R('a')};
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  FilterOutcome out = RunMilter(filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kAccept);
  std::vector<Command> cmds = server.commands();
  EXPECT_TRUE(Of(cmds, 'B').empty());
  EXPECT_TRUE(Of(cmds, 'E').empty());
  EXPECT_EQ(cmds.back().code, 'Q');
}

TEST(MilterFilterTest, SkipEndsTheBodyAndProgressKeepsWaiting) {
  MilterScript script;
  script.replies['B'] = {R('s')};
  script.replies['E'] = {R('p'), R('p'), R('c')};
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  std::string big = "Subject: big\r\n\r\n";
  while (big.size() < 300000) big += std::string(998, 'x') + "\r\n";
  ContextHolder h(big);
  FilterOutcome out = RunMilter(filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kContinue);
  std::vector<Command> body = Of(server.commands(), 'B');
  ASSERT_EQ(body.size(), 1u);  // only the first chunk: the milter skipped the rest
  EXPECT_EQ(body[0].body.size(), milter::kMaxBodyChunk);
}

TEST(MilterFilterTest, BodyIsSentInChunksOfAtMost65535) {
  TestMilterServer server(MilterScript{});
  MilterFilter filter = Filter(server.address());
  std::string body;
  while (body.size() < 200000) body += "0123456789abcdef0123456789abcdef0123456789abcdef\r\n";
  ContextHolder h("Subject: chunks\r\n\r\n" + body);
  ASSERT_THAT(RunMilter(filter, h), IsOk());
  std::string received;
  for (const Command& c : Of(server.commands(), 'B')) {
    EXPECT_LE(c.body.size(), milter::kMaxBodyChunk);
    received += c.body;
  }
  EXPECT_EQ(received, body);
}

TEST(MilterFilterTest, EveryModificationAtEndOfMessage) {
  MilterScript script;
  Response addrcpt_par = R('2', "<carol@example.org>");
  addrcpt_par.args = "NOTIFY=NEVER";
  addrcpt_par.has_args = true;
  Response chgfrom = R('e', "<bounces@example.com>");
  chgfrom.args = "ENVID=abc+2Bdef";
  chgfrom.has_args = true;
  script.replies['E'] = {
      Header('h', 0, "X-Added", "at the end"),
      Header('i', 0, "X-Top", "inserted\n\tfolded"),
      Header('m', 1, "Subject", "changed"),
      Header('m', 1, "X-Tab", ""),
      R('+', "<dave@example.org>"),
      addrcpt_par,
      R('-', "<bob@example.net>"),
      chgfrom,
      R('b', "new body\nwith bare LF"),
      R('b', " and more\r\n"),
      R('q', "suspicious"),
      R('c'),
  };
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  FilterOutcome out = RunMilter(filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kContinue);
  EXPECT_TRUE(out->hold);
  EXPECT_EQ(out->hold_reason, "suspicious");
  ASSERT_EQ(out->add_recipients.size(), 2u);
  EXPECT_EQ(out->add_recipients[0].address(), "dave@example.org");
  EXPECT_EQ(out->add_recipients[1].address(), "carol@example.org");
  EXPECT_EQ(out->add_recipients[1].notify(), "NEVER");
  EXPECT_THAT(out->delete_recipients, ElementsAre("bob@example.net"));
  ASSERT_TRUE(out->new_sender.has_value());
  EXPECT_EQ(*out->new_sender, "bounces@example.com");
  ASSERT_EQ(out->new_sender_parameters.size(), 1u);
  EXPECT_EQ(out->new_sender_parameters[0].value(), "abc+def");  // xtext decoded
  EXPECT_EQ(testing::ApplyDecision(*h.spool, *out),
            "X-Top: inserted\r\n\tfolded\r\n"
            "From: alice@example.com\r\n"
            "To: bob@example.net\r\n"
            "Subject: changed\r\n"
            "X-Added: at the end\r\n"
            "\r\n"
            "new body\r\nwith bare LF and more\r\n");
}

TEST(MilterFilterTest, UnnegotiatedModificationIsAFailure) {
  MilterScript script;
  script.actions = milter::kActAddHeaders;
  script.replies['E'] = {R('+', "<x@y>"), R('c')};
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(MilterFilterTest, ModificationBeforeEndOfMessageIsAFailure) {
  MilterScript script;
  script.replies['M'] = {Header('h', 0, "X-Early", "no")};
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(MilterFilterTest, TimeoutIsDeadlineExceeded) {
  MilterScript script;
  script.hang_on = 'E';
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address(), /*timeout_seconds=*/1);
  ContextHolder h(kMessage);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(MilterFilterTest, FilterDeadlineBoundsEveryWait) {
  MilterScript script;
  script.hang_on = 'C';
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address(), /*timeout_seconds=*/300);
  ContextHolder h(kMessage);
  h.deadline = Clock::now() + std::chrono::seconds(1);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(MilterFilterTest, DisconnectIsAFailure) {
  MilterScript script;
  script.close_on = 'L';
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kUnavailable, "closed"));
}

TEST(MilterFilterTest, MalformedPacketIsAFailure) {
  MilterScript script;
  script.raw_on_eom = std::string("\0\0\0\x06hX-A\0v", 10);  // value without its NUL
  TestMilterServer server(script);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kDataLoss));
  script.raw_on_eom = std::string("\x7f\0\0\0c", 5);  // absurd length
  TestMilterServer huge(script);
  MilterFilter filter2 = Filter(huge.address());
  EXPECT_THAT(RunMilter(filter2, h), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(MilterFilterTest, RefusedConnectionIsAFailure) {
  uint16_t port;
  { TestMilterServer gone(MilterScript{}); port = gone.port(); }
  MilterFilter filter = Filter("inet:127.0.0.1:" + std::to_string(port));
  ContextHolder h(kMessage);
  EXPECT_THAT(RunMilter(filter, h), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(MilterFilterTest, UnixSocketMilter) {
  const std::string path = "/tmp/sluice-milter-test-" + std::to_string(::getpid()) + ".sock";
  MilterScript script;
  script.replies['E'] = {R('r')};
  TestMilterServer server(script, path);
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  FilterOutcome out = RunMilter(filter, h);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(out->verdict, Verdict::kReject);
}

TEST(MilterFilterTest, UnknownClientIsSentAsUnknownFamily) {
  TestMilterServer server(MilterScript{});
  MilterFilter filter = Filter(server.address());
  ContextHolder h(kMessage);
  h.session.clear_client_address();
  h.session.clear_client_name();
  h.session.clear_helo();
  ASSERT_THAT(RunMilter(filter, h), IsOk());
  std::vector<Command> connect = Of(server.commands(), 'C');
  ASSERT_EQ(connect.size(), 1u);
  EXPECT_EQ(connect[0].family, 'U');
  EXPECT_EQ(connect[0].hostname, "unknown");
  EXPECT_TRUE(Of(server.commands(), 'H').empty());
}

}  // namespace
}  // namespace sluice::filter_bridge
