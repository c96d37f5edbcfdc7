// tests/services/filter-bridge/milter_codec_test.cc
//
// Every milter command and response survives encode/decode, the wire bytes are the ones
// libmilter expects (checked byte by byte for a few), and malformed packets are refused.
#include "services/filter-bridge/filters/milter_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/filter-bridge/filters/milter_address.h"
#include "services/filter-bridge/filters/milter_macros.h"
#include "tests/services/filter-bridge/filter_test_support.h"

namespace sluice::filter_bridge::milter {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::Pair;

Response Bare(char code) {
  Response r;
  r.code = code;
  return r;
}

Command RoundTripCommand(const Command& c) {
  std::string wire = EncodeCommand(c);
  Frame f = ParseFrame(wire, 1 << 20);
  EXPECT_EQ(f.status, FrameStatus::kComplete);
  EXPECT_EQ(f.consumed, wire.size());
  auto d = DecodeCommand(f.code, f.data);
  EXPECT_THAT(d, IsOk());
  return d.ok() ? *d : Command{};
}

Response RoundTripResponse(const Response& r) {
  auto d = DecodeResponsePacket(EncodeResponse(r), 1 << 20);
  EXPECT_THAT(d, IsOk());
  return d.ok() ? *d : Response{};
}

TEST(MilterCodecTest, OptnegWireBytes) {
  Command c;
  c.code = kCmdOptneg;
  c.optneg = {6, kActAll, kOfferedProtocol, {}};
  EXPECT_EQ(EncodeCommand(c), std::string("\0\0\0\x0dO\0\0\0\x06\0\0\x01\xff\0\x1f\xff\xff", 17));
  EXPECT_EQ(RoundTripCommand(c), c);
}

TEST(MilterCodecTest, ConnectWireBytes) {
  Command c;
  c.code = kCmdConnect;
  c.hostname = "h";
  c.family = '4';
  c.port = 25;
  c.address = "1.2.3.4";
  EXPECT_EQ(EncodeCommand(c), std::string("\0\0\0\x0e" "Ch\0" "4\0\x19" "1.2.3.4\0", 18));
  EXPECT_EQ(RoundTripCommand(c), c);
  Command unknown;
  unknown.code = kCmdConnect;
  unknown.hostname = "unknown";
  unknown.family = 'U';
  EXPECT_EQ(RoundTripCommand(unknown), unknown);
}

TEST(MilterCodecTest, EveryCommandRoundTrips) {
  std::vector<Command> commands;
  auto add = [&](char code, auto fill) {
    Command c;
    c.code = code;
    fill(c);
    commands.push_back(c);
  };
  add(kCmdMacro, [](Command& c) {
    c.macro_for = kCmdMail;
    c.macros = {{"i", "ABC"}, {"{auth_authen}", "alice"}};
  });
  add(kCmdHelo, [](Command& c) { c.args = {"client.example"}; });
  add(kCmdMail, [](Command& c) { c.args = {"<a@b>", "SIZE=10", "BODY=8BITMIME"}; });
  add(kCmdRcpt, [](Command& c) { c.args = {"<c@d>"}; });
  add(kCmdHeader, [](Command& c) {
    c.name = "Subject";
    c.value = "folded\n\tvalue";
  });
  add(kCmdBody, [](Command& c) { c.body = std::string("binary\0body\r\n", 13); });
  add(kCmdUnknown, [](Command& c) { c.args = {"XYZZY"}; });
  for (char code : {kCmdAbort, kCmdEom, kCmdEoh, kCmdData, kCmdQuit, kCmdQuitNc}) {
    add(code, [](Command&) {});
  }
  for (const Command& c : commands) EXPECT_EQ(RoundTripCommand(c), c) << c.code;
}

TEST(MilterCodecTest, EveryResponseRoundTrips) {
  std::vector<Response> responses;
  auto add = [&](char code, auto fill) {
    Response r;
    r.code = code;
    fill(r);
    responses.push_back(r);
  };
  add(kRespOptneg, [](Response& r) {
    r.optneg = {6, kActAddHeaders | kActQuarantine, kProtoNoReplyHeader, {{kStageMail, "{mail_addr} i"}}};
  });
  add(kRespAddHeader, [](Response& r) {
    r.name = "X-A";
    r.value = "v";
  });
  add(kRespInsHeader, [](Response& r) {
    r.index = 0;
    r.name = "DKIM-Signature";
    r.value = "v=1;\n\tb=xyz";
  });
  add(kRespChgHeader, [](Response& r) {
    r.index = 2;
    r.name = "Subject";
    r.value = "";
  });
  add(kRespAddRcpt, [](Response& r) { r.text = "<new@x>"; });
  add(kRespDelRcpt, [](Response& r) { r.text = "<old@x>"; });
  add(kRespAddRcptPar, [](Response& r) {
    r.text = "<p@x>";
    r.args = "NOTIFY=NEVER";
    r.has_args = true;
  });
  add(kRespChgFrom, [](Response& r) { r.text = "<bounce@x>"; });
  add(kRespReplBody, [](Response& r) { r.text = "new body\r\n"; });
  add(kRespQuarantine, [](Response& r) { r.text = "virus found"; });
  add(kRespReplyCode, [](Response& r) { r.text = "554 5.7.0 no"; });
  for (char code : {kRespAccept, kRespContinue, kRespDiscard, kRespConnFail, kRespProgress,
                    kRespReject, kRespSkip, kRespTempfail, kRespShutdown}) {
    add(code, [](Response&) {});
  }
  for (const Response& r : responses) EXPECT_EQ(RoundTripResponse(r), r) << r.code;
}

TEST(MilterCodecTest, FramingNeedsTheWholePacket) {
  std::string wire = EncodeResponse(Bare(kRespContinue));
  EXPECT_EQ(ParseFrame(wire.substr(0, 3), 100).status, FrameStatus::kNeedMore);
  EXPECT_EQ(ParseFrame(wire.substr(0, 4), 100).status, FrameStatus::kNeedMore);
  EXPECT_EQ(ParseFrame(wire + "extra", 100).consumed, wire.size());
}

TEST(MilterCodecTest, MalformedPacketsAreRefused) {
  EXPECT_EQ(ParseFrame(std::string("\0\0\0\0", 4), 100).status, FrameStatus::kError);  // zero length
  EXPECT_EQ(ParseFrame(std::string("\0\x10\0\0c", 5), 100).status, FrameStatus::kError);  // too long
  EXPECT_THAT(DecodeResponse('h', std::string("X-A\0v", 5)), StatusIs(absl::StatusCode::kDataLoss));  // no NUL
  EXPECT_THAT(DecodeResponse('c', "x"), StatusIs(absl::StatusCode::kDataLoss));    // data on a bare reply
  EXPECT_THAT(DecodeResponse('Z', ""), StatusIs(absl::StatusCode::kDataLoss));     // unknown response
  EXPECT_THAT(DecodeResponse('i', std::string("\0\0", 2)), StatusIs(absl::StatusCode::kDataLoss));  // short index
  EXPECT_THAT(DecodeResponse('O', std::string(8, '\0')), StatusIs(absl::StatusCode::kDataLoss));    // short optneg
  EXPECT_THAT(DecodeResponse('O', std::string(12, '\0') + std::string("\0\0\0\x02" "i", 5)),
              StatusIs(absl::StatusCode::kDataLoss));  // macro list without NUL
  EXPECT_THAT(DecodeResponse('+', std::string("a\0b\0", 4)), StatusIs(absl::StatusCode::kDataLoss));  // left-over
  EXPECT_THAT(DecodeResponsePacket(EncodeResponse(Bare(kRespAccept)) + "x", 100),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeResponsePacket(std::string("\0\0\0\x05" "c", 5), 100),
              StatusIs(absl::StatusCode::kDataLoss));  // truncated
  EXPECT_THAT(DecodeCommand('C', std::string("h\0" "9", 3)), StatusIs(absl::StatusCode::kDataLoss));  // bad family
  EXPECT_THAT(DecodeCommand('M', ""), StatusIs(absl::StatusCode::kDataLoss));  // no path
}

TEST(MilterCodecTest, ReplyCodeText) {
  auto r = ParseReplyCode("554 5.7.0 Rejected: 100%% spam");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->code, 554);
  EXPECT_EQ(r->enhanced, "5.7.0");
  EXPECT_THAT(r->lines, ElementsAre("Rejected: 100% spam"));
  r = ParseReplyCode("451-4.7.1 first\r\n451 4.7.1 second");
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->lines, ElementsAre("first", "second"));
  r = ParseReplyCode("550 no enhanced code");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->enhanced, "");
  EXPECT_THAT(r->lines, ElementsAre("no enhanced code"));
  EXPECT_FALSE(ParseReplyCode("250 2.0.0 ok").ok());      // not 4xx/5xx
  EXPECT_FALSE(ParseReplyCode("55x 5.0.0 bad").ok());
  EXPECT_FALSE(ParseReplyCode("550-a\r\n451 b").ok());    // mixed codes
  EXPECT_FALSE(ParseReplyCode("").ok());
}

TEST(MilterAddressTest, PostfixAndSendmailForms) {
  auto a = ParseMilterAddress("inet:127.0.0.1:8891");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8891);
  a = ParseMilterAddress("inet:8891@localhost");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "localhost");
  a = ParseMilterAddress("inet:[::1]:11332");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->host, "::1");
  a = ParseMilterAddress("unix:/run/opendkim/opendkim.sock");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->kind, MilterAddress::Kind::kUnix);
  EXPECT_FALSE(ParseMilterAddress("127.0.0.1:8891").ok());
  EXPECT_FALSE(ParseMilterAddress("tcp:host:1").ok());
  EXPECT_FALSE(ParseMilterAddress("inet:host").ok());
  EXPECT_FALSE(ParseMilterAddress("inet:99999@host").ok());
  EXPECT_FALSE(ParseMilterAddress("unix:").ok());
}

TEST(MilterMacrosTest, PostfixDefaultsWithKnownValuesOnly) {
  sluice::v1::SessionMetadata session = testing::MakeSession();
  sluice::v1::Transaction env = testing::MakeEnvelope();
  MacroSource source{session, env, "mx.example", &env.recipients(0)};
  EXPECT_THAT(MacroValues(DefaultMacroNames(kStageConnect), source),
              ElementsAre(Pair("j", "mx.example"), Pair("{daemon_name}", "mx.example"),
                          Pair("{daemon_addr}", "192.0.2.1"), Pair("v", "sluice"),
                          Pair("_", "mail.client.example [192.0.2.10]"),
                          Pair("{client_addr}", "192.0.2.10"),
                          Pair("{client_name}", "mail.client.example"), Pair("{client_port}", "40000"),
                          Pair("{client_ptr}", "mail.client.example")));
  EXPECT_THAT(MacroValues(DefaultMacroNames(kStageMail), source),
              ElementsAre(Pair("i", "F1A2B3C4D5"), Pair("{auth_authen}", "alice"),
                          Pair("{mail_addr}", "alice@example.com"), Pair("{mail_host}", "example.com"),
                          Pair("{mail_mailer}", "smtp")));
  EXPECT_THAT(MacroValues(DefaultMacroNames(kStageRcpt), source),
              ElementsAre(Pair("i", "F1A2B3C4D5"), Pair("{rcpt_addr}", "bob@example.net"),
                          Pair("{rcpt_host}", "example.net"), Pair("{rcpt_mailer}", "smtp")));
  EXPECT_THAT(MacroValues(ParseMacroList("{tls_version} i  {nope}"), source),
              ElementsAre(Pair("{tls_version}", "TLSv1.3"), Pair("i", "F1A2B3C4D5")));
}

TEST(MilterMacrosTest, DaemonNameIsMilterMacroDaemonNameWhenSet) {
  sluice::v1::SessionMetadata session = testing::MakeSession();
  sluice::v1::Transaction env = testing::MakeEnvelope();
  MacroSource source{session, env, "bridge-7.example", nullptr, "mx.example.net"};
  EXPECT_THAT(MacroValues(ParseMacroList("j {daemon_name}"), source),
              ElementsAre(Pair("j", "bridge-7.example"), Pair("{daemon_name}", "mx.example.net")));
}

}  // namespace
}  // namespace sluice::filter_bridge::milter
