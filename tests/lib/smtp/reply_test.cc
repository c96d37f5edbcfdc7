// tests/lib/smtp/reply_test.cc
//
// Reply wire format (RFC 5321 §4.2, RFC 2034 enhanced codes on every line), IsEnhancedCode
// (RFC 3463 §2), and the replies:: table: Postfix's wording, and the 4xx rule for our own
// failures.
//
// Never: tests a reply text by building it the same way the code does.
#include "lib/smtp/reply.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::smtp {
namespace {

TEST(ReplyTest, FormatsOneLineWithEnhancedCode) {
  EXPECT_EQ(MakeReply(250, "2.0.0", "Ok").Format(), "250 2.0.0 Ok\r\n");
}

TEST(ReplyTest, FormatsOneLineWithoutEnhancedCode) {
  EXPECT_EQ(MakeReply(220, "", "mx.example ESMTP").Format(), "220 mx.example ESMTP\r\n");
}

TEST(ReplyTest, RepeatsEnhancedCodeOnEveryLine) {
  Reply r{550, "5.7.1", {"first", "second", "last"}};
  EXPECT_EQ(r.Format(), "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 last\r\n");
}

TEST(ReplyTest, MultiLineWithoutEnhancedCodeUsesDashUntilLastLine) {
  Reply r{250, "", {"mx.example", "PIPELINING", "8BITMIME"}};
  EXPECT_EQ(r.Format(), "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
}

TEST(ReplyTest, EmptyTextIsSentAsCodeAlone) {
  EXPECT_EQ((Reply{250, "", {}}).Format(), "250\r\n");
  EXPECT_EQ((Reply{250, "", {""}}).Format(), "250\r\n");
  EXPECT_EQ((Reply{250, "", {"", ""}}).Format(), "250-\r\n250\r\n");
}

TEST(ReplyTest, EmptyTextWithEnhancedCodeSendsTheEnhancedCode) {
  EXPECT_EQ((Reply{250, "2.0.0", {""}}).Format(), "250 2.0.0\r\n");
}

TEST(ReplyTest, NeverPutsLineEndsOfTheTextOnTheWire) {
  // A filter verdict or an address with CR/LF must not inject a second reply line.
  using namespace std::string_view_literals;
  Reply r = MakeReply(550, "5.7.1", "bad\r\n250 2.0.0 Ok\nx\0y"sv);
  EXPECT_EQ(r.Format(), "550 5.7.1 bad  250 2.0.0 Ok x y\r\n");
  EXPECT_EQ(r.ToString().find('\n'), std::string::npos);
}

TEST(ReplyTest, AppendToAppendsWithoutClearing) {
  std::string out = "prefix";
  MakeReply(221, "2.0.0", "Bye").AppendTo(out);
  EXPECT_EQ(out, "prefix221 2.0.0 Bye\r\n");
}

TEST(ReplyTest, ToStringJoinsLinesForLogs) {
  Reply r{550, "5.7.1", {"text", "text2"}};
  EXPECT_EQ(r.ToString(), "550 5.7.1 text / text2");
  EXPECT_EQ(MakeReply(250, "", "mx").ToString(), "250 mx");
}

TEST(ReplyTest, ClassPredicatesFollowTheFirstDigit) {
  EXPECT_TRUE(MakeReply(250, "", "").positive());
  EXPECT_TRUE(MakeReply(354, "", "").positive());
  EXPECT_TRUE(MakeReply(354, "", "").intermediate());
  EXPECT_FALSE(MakeReply(250, "", "").intermediate());
  EXPECT_TRUE(MakeReply(451, "", "").transient());
  EXPECT_FALSE(MakeReply(451, "", "").positive());
  EXPECT_TRUE(MakeReply(554, "", "").permanent());
  EXPECT_FALSE(MakeReply(554, "", "").transient());
  EXPECT_TRUE(Reply().empty());
  EXPECT_FALSE(MakeReply(250, "", "").empty());
}

TEST(ReplyTest, RecognizesEnhancedCodes) {
  EXPECT_TRUE(IsEnhancedCode("2.0.0"));
  EXPECT_TRUE(IsEnhancedCode("4.7.1"));
  EXPECT_TRUE(IsEnhancedCode("5.123.456"));
  EXPECT_FALSE(IsEnhancedCode(""));
  EXPECT_FALSE(IsEnhancedCode("3.0.0"));  // RFC 3463: class is 2, 4 or 5
  EXPECT_FALSE(IsEnhancedCode("2.0"));
  EXPECT_FALSE(IsEnhancedCode("2.0.0."));
  EXPECT_FALSE(IsEnhancedCode("2..0"));
  EXPECT_FALSE(IsEnhancedCode("2.1234.0"));
  EXPECT_FALSE(IsEnhancedCode("2.0.1234"));
  EXPECT_FALSE(IsEnhancedCode("2.a.0"));
  EXPECT_FALSE(IsEnhancedCode("25.0.0"));
  EXPECT_FALSE(IsEnhancedCode("mx.example.com"));
}

// The replies Postfix also sends, with Postfix's words (smtpd.c).
TEST(RepliesTest, MatchPostfixWording) {
  const std::pair<Reply, std::string> cases[] = {
      {replies::Greeting("mx.example", ""), "220 mx.example ESMTP\r\n"},
      {replies::Greeting("mx.example", "sluice"), "220 mx.example ESMTP sluice\r\n"},
      {replies::Closing("mx.example"), "221 2.0.0 Bye\r\n"},
      {replies::Ok(), "250 2.0.0 Ok\r\n"},
      {replies::HeloOk("mx.example"), "250 mx.example\r\n"},
      {replies::StartMailInput(), "354 End data with <CR><LF>.<CR><LF>\r\n"},
      {replies::Queued("4XyZ1"), "250 2.0.0 Ok: queued as 4XyZ1\r\n"},
      {replies::ReadyToStartTls(), "220 2.0.0 Ready to start TLS\r\n"},
      {replies::VrfyDisabled(), "502 5.5.1 VRFY command is disabled\r\n"},
      {replies::UnknownCommand(), "502 5.5.2 Error: command not recognized\r\n"},
      {replies::BareNewlineInCommand(), "500 5.5.2 Error: bare <LF> received\r\n"},
      {replies::SyntaxError("MAIL FROM:<address>"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n"},
      {replies::BadSenderSyntax(), "501 5.1.7 Bad sender address syntax\r\n"},
      {replies::BadRecipientSyntax(), "501 5.1.3 Bad recipient address syntax\r\n"},
      {replies::UnsupportedParameter("FOO"), "555 5.5.4 Unsupported option: FOO\r\n"},
      {replies::NeedHelo(), "503 5.5.1 Error: send HELO/EHLO first\r\n"},
      {replies::NeedMail(), "503 5.5.1 Error: need MAIL command\r\n"},
      {replies::NestedMail(), "503 5.5.1 Error: nested MAIL command\r\n"},
      {replies::AlreadyTls(), "554 5.5.1 Error: TLS already active\r\n"},
      {replies::TlsNotAvailable(), "454 4.7.0 TLS not available due to local problem\r\n"},
      {replies::XforwardNotAuthorized(), "550 5.7.0 Error: insufficient authorization\r\n"},
      {replies::XforwardInTransaction(), "503 5.5.1 Error: MAIL transaction in progress\r\n"},
      {replies::RelayDenied("u@example.org"), "554 5.7.1 <u@example.org>: Relay access denied\r\n"},
      {replies::TooManyRecipients(), "452 4.5.3 Error: too many recipients\r\n"},
      {replies::MessageTooBig(), "552 5.3.4 Message size exceeds fixed limit\r\n"},
      {replies::SizeParameterTooBig(), "552 5.3.4 Message size exceeds fixed maximum message size\r\n"},
      {replies::MessageRateExceeded("192.0.2.1"), "450 4.7.1 Error: too much mail from 192.0.2.1\r\n"},
      {replies::RecipientRateExceeded("192.0.2.1"),
       "450 4.7.1 Error: too many recipients from 192.0.2.1\r\n"},
      {replies::TooManyConnectionsFromClient("mx.example", "192.0.2.1"),
       "421 4.7.0 mx.example Error: too many connections from 192.0.2.1\r\n"},
      {replies::ConnectionRateExceeded("mx.example", "192.0.2.1"),
       "421 4.7.0 mx.example Error: too many connections from 192.0.2.1\r\n"},
      {replies::TooManyErrors("mx.example"), "421 4.7.0 mx.example Error: too many errors\r\n"},
      {replies::Timeout("mx.example"), "421 4.4.2 mx.example Error: timeout exceeded\r\n"},
      {replies::UndeliverableRecipient("x@example.com", "550 5.1.1 <x@example.com> User doesn't exist"),
       "550 5.1.1 <x@example.com>: Recipient address rejected: undeliverable address: 550 5.1.1 <x@example.com> "
       "User doesn't exist\r\n"},
      {replies::UnverifiedRecipient("x@example.com", "Address verification in progress"),
       "450 4.1.1 <x@example.com>: Recipient address rejected: unverified address: Address verification in "
       "progress\r\n"},
      {replies::VerificationProblem("x@example.com"),
       "450 4.1.1 <x@example.com>: Recipient address rejected: address verification problem\r\n"},
      {replies::ProxyError(), "451 4.3.0 Error: queue file write error\r\n"},
      {replies::QueueWriteError(), "451 4.3.0 Error: queue file write error\r\n"},
      {replies::QueueFull(), "452 4.3.1 Insufficient system storage\r\n"},
  };
  for (const auto& [reply, wire] : cases) EXPECT_EQ(reply.Format(), wire);
}

TEST(RepliesTest, SessionEndingRepliesAre421AndNameTheHost) {
  for (const Reply& r : {replies::ServiceNotAvailable("mx.example"), replies::Timeout("mx.example"),
                         replies::SessionDeadline("mx.example"), replies::Killed("mx.example"),
                         replies::ShuttingDown("mx.example"), replies::TooManyErrors("mx.example")}) {
    EXPECT_EQ(r.code, 421) << r.ToString();
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_THAT(r.lines[0], ::testing::StartsWith("mx.example ")) << r.ToString();
  }
  EXPECT_EQ(replies::ServiceNotAvailable("h").enhanced, "4.3.2");
  EXPECT_EQ(replies::ShuttingDown("h").enhanced, "4.3.2");
  EXPECT_EQ(replies::SessionDeadline("h").enhanced, "4.4.2");
  EXPECT_EQ(replies::Killed("h").enhanced, "4.7.0");
}

// STYLE.md: a failure of our own infrastructure may only ever produce a 4xx.
TEST(RepliesTest, InfrastructureFailuresAreAlwaysTransient) {
  for (const Reply& r : {replies::ProxyError(), replies::TransactionTempUnavailable(),
                         replies::QueueFull(), replies::QueueWriteError(), replies::LocalError(),
                         replies::TlsNotAvailable(), replies::ServiceNotAvailable("h"),
                         replies::VerificationProblem("r@x"), replies::UnverifiedRecipient("r@x", "x")}) {
    EXPECT_TRUE(r.transient()) << r.ToString();
    EXPECT_EQ(r.enhanced[0], '4') << r.ToString();
  }
}

TEST(RepliesTest, EveryTableReplyHasMatchingEnhancedClass) {
  const Reply all[] = {
      replies::Closing("h"), replies::ServiceNotAvailable("h"),
      replies::TooManyConnectionsFromClient("h", "c"), replies::ConnectionRateExceeded("h", "c"),
      replies::TooManyErrors("h"), replies::Timeout("h"), replies::SessionDeadline("h"),
      replies::Killed("h"), replies::ShuttingDown("h"), replies::Ok(), replies::Queued("Q"),
      replies::ReadyToStartTls(), replies::Help(), replies::VrfyDisabled(), replies::CannotVrfy(),
      replies::UnknownCommand(), replies::CommandNotImplemented(), replies::LineTooLong(),
      replies::BareNewlineInCommand(), replies::BareNewlineInData(), replies::SyntaxError("X"),
      replies::BadSenderSyntax(), replies::BadRecipientSyntax(), replies::UnsupportedParameter("X"),
      replies::NeedHelo(), replies::NeedMail(), replies::NeedRcpt(), replies::NestedMail(),
      replies::AlreadyTls(), replies::TlsNotAvailable(), replies::XforwardNotAuthorized(),
      replies::XforwardInTransaction(), replies::XforwardBadSyntax("d"),
      replies::TooManyTransactions(), replies::RelayDenied("r@x"), replies::TooManyRecipients(),
      replies::MessageTooBig(), replies::HeaderTooBig(), replies::SizeParameterTooBig(),
      replies::MessageRateExceeded("c"), replies::RecipientRateExceeded("c"),
      replies::ClientNotAuthorized(), replies::UndeliverableRecipient("r@x", "550 no"),
      replies::UnverifiedRecipient("r@x", "why"), replies::VerificationProblem("r@x"),
      replies::ProxyError(), replies::TransactionTempUnavailable(),
      replies::QueueFull(), replies::QueueWriteError(), replies::LocalError(),
  };
  for (const Reply& r : all) {
    ASSERT_TRUE(IsEnhancedCode(r.enhanced)) << r.ToString();
    EXPECT_EQ(r.enhanced[0], static_cast<char>('0' + r.code / 100)) << r.ToString();
    ASSERT_EQ(r.lines.size(), 1u);
    EXPECT_FALSE(r.lines[0].empty()) << r.ToString();
  }
}

TEST(RepliesTest, BareNewlineInDataIsAPermanentRejection) {
  const Reply r = replies::BareNewlineInData();
  EXPECT_EQ(r.code, 550);
  EXPECT_EQ(r.enhanced, "5.5.2");
}

TEST(RepliesTest, XforwardBadSyntaxCarriesTheDetail) {
  EXPECT_EQ(replies::XforwardBadSyntax("Bad XFORWARD PORT").Format(),
            "501 5.5.4 Syntax: XFORWARD attribute=value... (Bad XFORWARD PORT)\r\n");
  EXPECT_EQ(replies::XforwardBadSyntax("").Format(),
            "501 5.5.4 Syntax: XFORWARD attribute=value...\r\n");
}

TEST(RepliesTest, VerificationReasonsAreCutAt250BytesAsPostfixDoes) {
  const Reply r = replies::UndeliverableRecipient("x@y", std::string(1000, 'a'));
  EXPECT_EQ(r.lines[0], "<x@y>: Recipient address rejected: undeliverable address: " + std::string(250, 'a'));
}

}  // namespace
}  // namespace sluice::smtp
