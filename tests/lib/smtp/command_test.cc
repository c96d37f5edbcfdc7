// tests/lib/smtp/command_test.cc
//
// Command line splitting (RFC 5321 §4.1), MAIL/RCPT arguments with their ESMTP parameters
// (SIZE RFC 1870, BODY RFC 6152, SMTPUTF8 RFC 6531, RET/ENVID/NOTIFY/ORCPT RFC 3461,
// AUTH= RFC 4954) and the reply each error becomes.
//
// Never: accepts an error status without checking the reply the client would get.
#include "lib/smtp/command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "lib/status/status_matchers.h"

namespace sluice::smtp {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;

const ParseOptions kDefaults;

// The wire reply a MAIL error becomes.
std::string MailError(std::string_view argument, const ParseOptions& opts = kDefaults) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom(argument, opts);
  if (mail.ok()) return "accepted";
  return ReplyForCommandError(mail.status(), /*is_mail=*/true).Format();
}

std::string RcptError(std::string_view argument, const ParseOptions& opts = kDefaults) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo(argument, opts);
  if (rcpt.ok()) return "accepted";
  return ReplyForCommandError(rcpt.status(), /*is_mail=*/false).Format();
}

MATCHER_P2(IsParam, keyword, value, "") {
  return arg.keyword == keyword && arg.has_value && arg.value == value;
}
MATCHER_P(IsFlagParam, keyword, "") { return arg.keyword == keyword && !arg.has_value; }

// --- command line ---

TEST(ParseCommandLineTest, RecognizesEveryVerbInAnyCase) {
  const std::pair<const char*, Verb> verbs[] = {
      {"helo", Verb::kHelo}, {"EHLO", Verb::kEhlo},   {"Lhlo", Verb::kLhlo},
      {"mail", Verb::kMail}, {"RCPT", Verb::kRcpt},   {"data", Verb::kData},
      {"BDAT", Verb::kBdat}, {"rset", Verb::kRset},   {"NOOP", Verb::kNoop},
      {"quit", Verb::kQuit}, {"VRFY", Verb::kVrfy},   {"expn", Verb::kExpn},
      {"HELP", Verb::kHelp}, {"StartTLS", Verb::kStarttls}, {"auth", Verb::kAuth},
      {"XFORWARD", Verb::kXforward}, {"etrn", Verb::kEtrn},
  };
  for (const auto& [text, verb] : verbs) {
    absl::StatusOr<Command> cmd = ParseCommandLine(text);
    ASSERT_THAT(cmd, IsOk()) << text;
    EXPECT_EQ(cmd->verb, verb) << text;
    std::string upper(text);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(cmd->verb_text, upper);
    EXPECT_EQ(cmd->argument, "");
  }
}

TEST(ParseCommandLineTest, SplitsArgumentAndTrimsTrailingSpaces) {
  absl::StatusOr<Command> cmd = ParseCommandLine("MAIL FROM:<a@example.org> SIZE=10   ");
  ASSERT_THAT(cmd, IsOk());
  EXPECT_EQ(cmd->verb, Verb::kMail);
  EXPECT_EQ(cmd->argument, "FROM:<a@example.org> SIZE=10");
}

TEST(ParseCommandLineTest, ToleratesExtraSpacesAfterTheVerb) {
  absl::StatusOr<Command> cmd = ParseCommandLine("EHLO   client.example");
  ASSERT_THAT(cmd, IsOk());
  EXPECT_EQ(cmd->argument, "client.example");
}

TEST(ParseCommandLineTest, KeepsSpacesInsideTheArgument) {
  absl::StatusOr<Command> cmd = ParseCommandLine("AUTH PLAIN  dGVzdA==");
  ASSERT_THAT(cmd, IsOk());
  EXPECT_EQ(cmd->argument, "PLAIN  dGVzdA==");
}

TEST(ParseCommandLineTest, VerbNeedsAWordBoundary) {
  absl::StatusOr<Command> cmd = ParseCommandLine("MAILFROM:<a@b.c>");
  ASSERT_THAT(cmd, IsOk());
  EXPECT_EQ(cmd->verb, Verb::kUnknown);
}

TEST(ParseCommandLineTest, UnknownVerbKeepsItsTextForLogs) {
  absl::StatusOr<Command> cmd = ParseCommandLine("xclient NAME=x");
  ASSERT_THAT(cmd, IsOk());
  EXPECT_EQ(cmd->verb, Verb::kUnknown);
  EXPECT_EQ(cmd->verb_text, "XCLIENT");
}

TEST(ParseCommandLineTest, JunkVerbHasNoText) {
  for (const char* line : {"", "   ", "\x80\x81\x82 x", "Subject: hello", "{{{{", "ABCDEFGHIJKLMNOPQ"}) {
    absl::StatusOr<Command> cmd = ParseCommandLine(line);
    ASSERT_THAT(cmd, IsOk()) << line;
    EXPECT_EQ(cmd->verb, Verb::kUnknown) << line;
    EXPECT_EQ(cmd->verb_text, "") << line;
  }
}

TEST(ParseCommandLineTest, RejectsBareLfInCommand) {
  absl::StatusOr<Command> cmd = ParseCommandLine("MAIL FROM:<a@b.c>\nRCPT TO:<x@y.z>");
  EXPECT_THAT(cmd, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReplyForCommandError(cmd.status(), true).Format(),
            "500 5.5.2 Error: bare <LF> received\r\n");
}

TEST(ParseCommandLineTest, RejectsBareCrInCommand) {
  absl::StatusOr<Command> cmd = ParseCommandLine("NOOP\rQUIT");
  EXPECT_THAT(cmd, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReplyForCommandError(cmd.status(), true).code, 500);
}

TEST(ParseCommandLineTest, RejectsNulInCommand) {
  using namespace std::string_view_literals;
  absl::StatusOr<Command> cmd = ParseCommandLine("HELO a\0b"sv);
  EXPECT_THAT(cmd, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(ReplyForCommandError(cmd.status(), true).enhanced, "5.5.2");
}

// --- MAIL ---

TEST(ParseMailFromTest, ParsesRfc5321Example) {
  // RFC 5321 §D.1
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<Smith@bar.com>", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "Smith@bar.com");
  EXPECT_TRUE(mail->params.empty());
  EXPECT_FALSE(mail->size.has_value());
  EXPECT_FALSE(mail->smtputf8);
}

TEST(ParseMailFromTest, AcceptsNullReversePath) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<>", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "");
}

TEST(ParseMailFromTest, RejectsJunkAfterNullReversePath) {
  EXPECT_EQ(MailError("FROM:<><"), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(MailError("FROM:<>SIZE=1"), "501 5.1.7 Bad sender address syntax\r\n");
}

TEST(ParseMailFromTest, KeywordIsCaseInsensitive) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("from:<a@example.org>", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "a@example.org");
}

TEST(ParseMailFromTest, AcceptsSpaceAfterColonLikePostfix) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM: <a@example.org> SIZE=5", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "a@example.org");
  EXPECT_EQ(mail->size, 5u);
}

TEST(ParseMailFromTest, AcceptsPathWithoutBracketsLikePostfix) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:a@example.org BODY=8BITMIME", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "a@example.org");
  EXPECT_EQ(mail->body, "8BITMIME");
}

TEST(ParseMailFromTest, IgnoresSourceRoute) {
  // RFC 5321 §C / §4.1.2: A-d-l is accepted and ignored.
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<@hosta.int,@jkl.org:userc@d.bar.org>", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "userc@d.bar.org");
}

TEST(ParseMailFromTest, MissingFromIsASyntaxError) {
  EXPECT_EQ(MailError("<a@example.org>"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  EXPECT_EQ(MailError("FROM"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  EXPECT_EQ(MailError("FROM:"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  EXPECT_EQ(MailError("FROM:   "), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  EXPECT_EQ(MailError("TO:<a@example.org>"), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
}

TEST(ParseMailFromTest, RejectsBadSenderAddress) {
  for (const char* arg : {"FROM:<a@example.org", "FROM:<a@@example.org>", "FROM:<\"a@example.org>",
                          "FROM:<a@example.org>junk", "FROM:<a b@example.org>", "FROM:<.a@example.org>",
                          "FROM:<a@-example.org>", "FROM:<a@[300.1.1.1]>", "FROM:<a>"}) {
    EXPECT_EQ(MailError(arg), "501 5.1.7 Bad sender address syntax\r\n") << arg;
  }
}

TEST(ParseMailFromTest, KeepsEveryParameterInOrderVerbatim) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom(
      "FROM:<a@example.org> size=100 BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ314159 AUTH=<>",
      kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_THAT(mail->params,
              ElementsAre(IsParam("SIZE", "100"), IsParam("BODY", "8bitmime"), IsFlagParam("SMTPUTF8"),
                          IsParam("RET", "hdrs"), IsParam("ENVID", "QQ314159"), IsParam("AUTH", "<>")));
  EXPECT_EQ(mail->size, 100u);
  EXPECT_EQ(mail->body, "8BITMIME");
  EXPECT_TRUE(mail->smtputf8);
  EXPECT_EQ(mail->ret, "HDRS");
  EXPECT_EQ(mail->envid, "QQ314159");
  EXPECT_EQ(mail->auth, "<>");
  EXPECT_EQ(FormatParams(mail->params),
            " SIZE=100 BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ314159 AUTH=<>");
}

TEST(ParseMailFromTest, ToleratesSeveralSpacesBetweenParameters) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org>   SIZE=1    BODY=7BIT", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->params.size(), 2u);
  EXPECT_EQ(mail->body, "7BIT");
}

TEST(ParseMailFromTest, SizeAtTheLimitIsAccepted) {
  ParseOptions opts;
  opts.size_limit = 1000;
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> SIZE=1000", opts);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->size, 1000u);
}

TEST(ParseMailFromTest, SizeAboveTheLimitIsOutOfRange) {
  ParseOptions opts;
  opts.size_limit = 1000;
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> SIZE=1001", opts);
  EXPECT_THAT(mail, StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(ReplyForCommandError(mail.status(), true).Format(),
            "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
}

TEST(ParseMailFromTest, SizeWithoutLimitAcceptsAnySize) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> SIZE=18446744073709551615", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->size, 18446744073709551615u);
}

TEST(ParseMailFromTest, SizeBeyondUint64SaturatesAndExceedsAnyLimit) {
  ParseOptions opts;
  opts.size_limit = 18446744073709551614u;
  // 20 digits (allowed by RFC 1870) but larger than 2^64-1.
  EXPECT_THAT(ParseMailFrom("FROM:<a@example.org> SIZE=99999999999999999999", opts),
              StatusIs(absl::StatusCode::kOutOfRange));
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> SIZE=99999999999999999999", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->size, 18446744073709551615u);
}

TEST(ParseMailFromTest, RejectsMalformedSize) {
  for (const char* arg : {"FROM:<a@example.org> SIZE", "FROM:<a@example.org> SIZE=-1",
                          "FROM:<a@example.org> SIZE=1k", "FROM:<a@example.org> SIZE=123456789012345678901"}) {
    EXPECT_EQ(MailError(arg), "501 5.5.4 Bad message size syntax\r\n") << arg;
  }
  // An empty value is malformed for any parameter (esmtp-value = 1*(...)).
  EXPECT_EQ(MailError("FROM:<a@example.org> SIZE="), "501 5.5.4 Bad SIZE parameter syntax\r\n");
}

TEST(ParseMailFromTest, AcceptsSizeZero) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> SIZE=0", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->size, 0u);
}

TEST(ParseMailFromTest, RejectsUnknownBodyType) {
  EXPECT_EQ(MailError("FROM:<a@example.org> BODY=BINARYMIME"), "501 5.5.4 Unsupported BODY parameter value\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> BODY"), "501 5.5.4 Unsupported BODY parameter value\r\n");
}

TEST(ParseMailFromTest, BodyIsUnsupportedWithout8bitmime) {
  ParseOptions opts;
  opts.allow_8bitmime = false;
  EXPECT_EQ(MailError("FROM:<a@example.org> BODY=8BITMIME", opts), "555 5.5.4 Unsupported option: BODY\r\n");
}

TEST(ParseMailFromTest, Smtputf8TakesNoValue) {
  EXPECT_EQ(MailError("FROM:<a@example.org> SMTPUTF8=yes"), "501 5.5.4 Bad SMTPUTF8 parameter syntax\r\n");
}

TEST(ParseMailFromTest, Smtputf8IsUnsupportedWhenNotAllowed) {
  ParseOptions opts;
  opts.allow_smtputf8 = false;
  EXPECT_EQ(MailError("FROM:<a@example.org> SMTPUTF8", opts), "555 5.5.4 Unsupported option: SMTPUTF8\r\n");
}

TEST(ParseMailFromTest, Utf8AddressNeedsTheSmtputf8Parameter) {
  // RFC 6531 §3.4
  EXPECT_EQ(MailError("FROM:<j\xC3\xB6rg@example.org>"),
            "501 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n");
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<j\xC3\xB6rg@b\xC3\xBC\x63her.example> SMTPUTF8", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->address, "j\xC3\xB6rg@b\xC3\xBC\x63her.example");
  EXPECT_TRUE(mail->smtputf8);
}

TEST(ParseMailFromTest, Utf8AddressIsBadSyntaxWhenSmtputf8IsOff) {
  ParseOptions opts;
  opts.allow_smtputf8 = false;
  EXPECT_EQ(MailError("FROM:<j\xC3\xB6rg@example.org>", opts), "501 5.1.7 Bad sender address syntax\r\n");
}

TEST(ParseMailFromTest, ParsesRet) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> RET=full", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->ret, "FULL");
  EXPECT_EQ(MailError("FROM:<a@example.org> RET=BODY"), "501 5.5.4 Bad RET parameter syntax\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> RET"), "501 5.5.4 Bad RET parameter syntax\r\n");
}

TEST(ParseMailFromTest, DecodesEnvidXtext) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> ENVID=a+2Bb+3Dc", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->envid, "a+b=c");
  EXPECT_THAT(mail->params, ElementsAre(IsParam("ENVID", "a+2Bb+3Dc")));  // relayed encoded
}

TEST(ParseMailFromTest, RejectsBadEnvid) {
  const std::string too_long = "FROM:<a@example.org> ENVID=" + std::string(101, 'x');
  EXPECT_EQ(MailError(too_long), "501 5.5.4 Bad ENVID parameter syntax\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> ENVID=" + std::string(100, 'x')), "accepted");
  EXPECT_EQ(MailError("FROM:<a@example.org> ENVID=a+2"), "501 5.5.4 Bad ENVID parameter syntax\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> ENVID=a+0D+0Ab"), "501 5.5.4 Bad ENVID parameter syntax\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> ENVID"), "501 5.5.4 Bad ENVID parameter syntax\r\n");
}

TEST(ParseMailFromTest, DecodesAuthMailbox) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> AUTH=e+3Dmc2@example.com", kDefaults);
  ASSERT_THAT(mail, IsOk());
  EXPECT_EQ(mail->auth, "e=mc2@example.com");  // RFC 4954 §5 example
  EXPECT_EQ(MailError("FROM:<a@example.org> AUTH=a+0Ab"), "501 5.5.4 Bad AUTH parameter syntax\r\n");
}

TEST(ParseMailFromTest, AuthIsUnsupportedWhenNotAllowed) {
  ParseOptions opts;
  opts.allow_auth_param = false;
  EXPECT_EQ(MailError("FROM:<a@example.org> AUTH=<>", opts), "555 5.5.4 Unsupported option: AUTH\r\n");
}

TEST(ParseMailFromTest, DsnParametersAreUnsupportedWhenDsnIsOff) {
  ParseOptions opts;
  opts.allow_dsn = false;
  EXPECT_EQ(MailError("FROM:<a@example.org> RET=FULL", opts), "555 5.5.4 Unsupported option: RET\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> ENVID=x", opts), "555 5.5.4 Unsupported option: ENVID\r\n");
}

TEST(ParseMailFromTest, DuplicateParameterIsASyntaxError) {
  EXPECT_EQ(MailError("FROM:<a@example.org> SIZE=1 SIZE=2"), "501 5.5.4 Error: duplicate SIZE parameter\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> body=7BIT BODY=7BIT"), "501 5.5.4 Error: duplicate BODY parameter\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> SMTPUTF8 smtputf8"),
            "501 5.5.4 Error: duplicate SMTPUTF8 parameter\r\n");
}

TEST(ParseMailFromTest, UnknownParameterIsUnimplemented) {
  absl::StatusOr<MailFrom> mail = ParseMailFrom("FROM:<a@example.org> X-FOO=bar", kDefaults);
  EXPECT_THAT(mail, StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_EQ(ReplyForCommandError(mail.status(), true).Format(), "555 5.5.4 Unsupported option: X-FOO\r\n");
}

TEST(ParseMailFromTest, RcptParametersAreUnknownOnMail) {
  EXPECT_EQ(MailError("FROM:<a@example.org> NOTIFY=NEVER"), "555 5.5.4 Unsupported option: NOTIFY\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> ORCPT=rfc822;a@b.c"), "555 5.5.4 Unsupported option: ORCPT\r\n");
}

TEST(ParseMailFromTest, RejectsMalformedParameters) {
  EXPECT_EQ(MailError("FROM:<a@example.org> =1"), "501 5.5.4 Syntax error in parameters\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> -X=1"), "501 5.5.4 Syntax error in parameters\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> X_Y=1"), "501 5.5.4 Syntax error in parameters\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> ENVID=a=b"), "501 5.5.4 Bad ENVID parameter syntax\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> X-Y=\x01"), "501 5.5.4 Bad X-Y parameter syntax\r\n");
}

TEST(ParseMailFromTest, Utf8ParameterValueOnlyWithSmtputf8Allowed) {
  ParseOptions opts;
  opts.allow_smtputf8 = false;
  EXPECT_EQ(MailError("FROM:<a@example.org> X-Y=\xC3\xB6", opts), "501 5.5.4 Bad X-Y parameter syntax\r\n");
  EXPECT_EQ(MailError("FROM:<a@example.org> X-Y=\xC3\xB6"), "555 5.5.4 Unsupported option: X-Y\r\n");
}

// --- RCPT ---

TEST(ParseRcptToTest, ParsesRfc5321Example) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<Jones@foo.com>", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->address, "Jones@foo.com");
  EXPECT_TRUE(rcpt->params.empty());
}

TEST(ParseRcptToTest, AcceptsPostmasterWithoutDomainInAnyCase) {
  // RFC 5321 §4.1.1.3
  for (const char* arg : {"TO:<Postmaster>", "TO:<postmaster>", "to:<POSTMASTER> NOTIFY=NEVER", "TO:postmaster"}) {
    absl::StatusOr<RcptTo> rcpt = ParseRcptTo(arg, kDefaults);
    ASSERT_THAT(rcpt, IsOk()) << arg;
    EXPECT_EQ(absl::AsciiStrToLower(rcpt->address), "postmaster") << arg;
  }
  EXPECT_EQ(RcptError("TO:<postmasterx>"), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(RcptError("TO:<postmaster>x"), "501 5.1.3 Bad recipient address syntax\r\n");
}

TEST(ParseRcptToTest, AcceptsPostmasterAtDomain) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<postmaster@example.org>", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->address, "postmaster@example.org");
}

TEST(ParseRcptToTest, RejectsEmptyForwardPath) {
  EXPECT_EQ(RcptError("TO:<>"), "501 5.1.3 Bad recipient address syntax\r\n");
}

TEST(ParseRcptToTest, MissingToIsASyntaxError) {
  EXPECT_EQ(RcptError("<a@example.org>"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
  EXPECT_EQ(RcptError("FROM:<a@example.org>"), "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
}

TEST(ParseRcptToTest, IgnoresSourceRoute) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<@hosta.int,@jkl.org:userc@d.bar.org>", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->address, "userc@d.bar.org");
}

TEST(ParseRcptToTest, ParsesNotifyList) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<a@example.org> NOTIFY=success,Delay", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->notify, "SUCCESS,DELAY");
  EXPECT_THAT(rcpt->params, ElementsAre(IsParam("NOTIFY", "success,Delay")));
}

TEST(ParseRcptToTest, ParsesNotifyNever) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<a@example.org> NOTIFY=NEVER", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->notify, "NEVER");
}

TEST(ParseRcptToTest, NotifyNeverCannotCombine) {
  // RFC 3461 §4.1
  EXPECT_EQ(RcptError("TO:<a@example.org> NOTIFY=NEVER,SUCCESS"), "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n");
  EXPECT_EQ(RcptError("TO:<a@example.org> NOTIFY=DELAY,NEVER"), "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n");
  EXPECT_EQ(RcptError("TO:<a@example.org> NOTIFY=NEVER,NEVER"), "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n");
}

TEST(ParseRcptToTest, RejectsMalformedNotify) {
  for (const char* arg : {"TO:<a@example.org> NOTIFY", "TO:<a@example.org> NOTIFY=SOMETIMES",
                          "TO:<a@example.org> NOTIFY=SUCCESS,,DELAY", "TO:<a@example.org> NOTIFY=SUCCESS,",
                          "TO:<a@example.org> NOTIFY=,FAILURE"}) {
    EXPECT_EQ(RcptError(arg), "501 5.5.4 Error: Bad NOTIFY parameter syntax\r\n") << arg;
  }
}

TEST(ParseRcptToTest, DecodesOrcpt) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<a@example.org> ORCPT=rfc822;b+2Bc@example.org", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->orcpt, "rfc822;b+c@example.org");
  EXPECT_THAT(rcpt->params, ElementsAre(IsParam("ORCPT", "rfc822;b+2Bc@example.org")));
}

TEST(ParseRcptToTest, RejectsMalformedOrcpt) {
  for (const char* arg : {"TO:<a@example.org> ORCPT", "TO:<a@example.org> ORCPT=a@example.org",
                          "TO:<a@example.org> ORCPT=;a@example.org", "TO:<a@example.org> ORCPT=rfc822;",
                          "TO:<a@example.org> ORCPT=rfc822;a+4", "TO:<a@example.org> ORCPT=rfc822;a+0D+0A@x",
                          "TO:<a@example.org> ORCPT=rf/c;a@x"}) {
    EXPECT_EQ(RcptError(arg), "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n") << arg;
  }
  EXPECT_EQ(RcptError("TO:<a@example.org> ORCPT=rfc822;" + std::string(493, 'a')), "accepted");
  EXPECT_EQ(RcptError("TO:<a@example.org> ORCPT=rfc822;" + std::string(494, 'a')),
            "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n");
}

TEST(ParseRcptToTest, KeepsRawUtf8OrcptUnderSmtputf8) {
  absl::StatusOr<RcptTo> rcpt = ParseRcptTo("TO:<a@example.org> ORCPT=utf-8;j\xC3\xB6rg@example.org", kDefaults);
  ASSERT_THAT(rcpt, IsOk());
  EXPECT_EQ(rcpt->orcpt, "utf-8;j\xC3\xB6rg@example.org");
  ParseOptions opts;
  opts.allow_smtputf8 = false;
  EXPECT_NE(RcptError("TO:<a@example.org> ORCPT=utf-8;j\xC3\xB6rg@example.org", opts), "accepted");
}

TEST(ParseRcptToTest, DuplicateParameterIsASyntaxError) {
  EXPECT_EQ(RcptError("TO:<a@example.org> NOTIFY=NEVER notify=NEVER"),
            "501 5.5.4 Error: duplicate NOTIFY parameter\r\n");
  EXPECT_EQ(RcptError("TO:<a@example.org> ORCPT=rfc822;a@x ORCPT=rfc822;b@x"),
            "501 5.5.4 Error: duplicate ORCPT parameter\r\n");
}

TEST(ParseRcptToTest, MailParametersAreUnknownOnRcpt) {
  EXPECT_EQ(RcptError("TO:<a@example.org> SIZE=10"), "555 5.5.4 Unsupported option: SIZE\r\n");
  EXPECT_EQ(RcptError("TO:<a@example.org> BODY=8BITMIME"), "555 5.5.4 Unsupported option: BODY\r\n");
}

TEST(ParseRcptToTest, DsnParametersAreUnsupportedWhenDsnIsOff) {
  ParseOptions opts;
  opts.allow_dsn = false;
  EXPECT_EQ(RcptError("TO:<a@example.org> NOTIFY=NEVER", opts), "555 5.5.4 Unsupported option: NOTIFY\r\n");
  EXPECT_EQ(RcptError("TO:<a@example.org> ORCPT=rfc822;a@x", opts), "555 5.5.4 Unsupported option: ORCPT\r\n");
}

TEST(ParseRcptToTest, Utf8RecipientFollowsTheTransactionsSmtputf8) {
  ParseOptions no_utf8;
  no_utf8.allow_smtputf8 = false;
  EXPECT_EQ(RcptError("TO:<j\xC3\xB6rg@example.org>", no_utf8), "501 5.1.3 Bad recipient address syntax\r\n");
  EXPECT_EQ(RcptError("TO:<j\xC3\xB6rg@example.org>"), "accepted");
}

// --- replies for errors ---

TEST(ReplyForCommandErrorTest, OwnFailuresBecome4xx) {
  EXPECT_EQ(ReplyForCommandError(absl::InternalError("bug"), true).code, 451);
  EXPECT_EQ(ReplyForCommandError(absl::UnavailableError("down"), false).code, 451);
  EXPECT_EQ(ReplyForCommandError(absl::OkStatus(), true).code, 451);
}

TEST(ReplyForCommandErrorTest, PlainAddressErrorNamesSenderOrRecipient) {
  const absl::Status status = absl::InvalidArgumentError("bad address syntax: mailbox");
  EXPECT_EQ(ReplyForCommandError(status, true).Format(), "501 5.1.7 Bad sender address syntax\r\n");
  EXPECT_EQ(ReplyForCommandError(status, false).Format(), "501 5.1.3 Bad recipient address syntax\r\n");
}

TEST(ReplyForCommandErrorTest, MessageWithoutEnhancedCodeGetsTheDefault) {
  EXPECT_EQ(ReplyForCommandError(absl::InvalidArgumentError("odd"), true).Format(), "501 5.5.4 odd\r\n");
  EXPECT_EQ(ReplyForCommandError(absl::UnimplementedError("odd"), true).Format(), "555 5.5.4 odd\r\n");
  EXPECT_EQ(ReplyForCommandError(absl::FailedPreconditionError("odd"), true).Format(), "500 5.5.2 odd\r\n");
}

TEST(FormatParamsTest, FormatsFlagsAndValues) {
  EXPECT_EQ(FormatParams({}), "");
  EXPECT_EQ(FormatParams({{"SIZE", "10", true}, {"SMTPUTF8", "", false}, {"BODY", "8BITMIME", true}}),
            " SIZE=10 SMTPUTF8 BODY=8BITMIME");
}

}  // namespace
}  // namespace sluice::smtp
