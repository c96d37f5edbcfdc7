// tests/lib/smtp/reply_parser_test.cc
//
// Client-side reply parsing (RFC 5321 §4.2.1): multi-line replies, enhanced codes (RFC 2034),
// bounds, malformed replies, and a stream of pipelined replies split at every byte boundary.
//
// Never: accepts a reply ended by a bare LF.
#include "lib/smtp/reply_parser.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "tests/lib/smtp/codec_drivers.h"

namespace sluice::smtp {
namespace {

using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;

TEST(ParseReplyTest, ParsesOneLineReply) {
  Reply r;
  ReplyParseResult res = ParseReply("250 2.0.0 Ok\r\n", r);
  ASSERT_EQ(res.status, ReplyStatus::kComplete);
  EXPECT_EQ(res.consumed, 14u);
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.enhanced, "2.0.0");
  EXPECT_THAT(r.lines, ElementsAre("Ok"));
}

TEST(ParseReplyTest, ParsesGreetingWithoutEnhancedCode) {
  Reply r;
  ASSERT_EQ(ParseReply("220 mx.example ESMTP Postfix\r\n", r).status, ReplyStatus::kComplete);
  EXPECT_EQ(r.code, 220);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_THAT(r.lines, ElementsAre("mx.example ESMTP Postfix"));
}

TEST(ParseReplyTest, ParsesMultiLineReplyAndStripsEnhancedCodeFromEveryLine) {
  Reply r;
  const std::string wire = "550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 last\r\n";
  ReplyParseResult res = ParseReply(wire, r);
  ASSERT_EQ(res.status, ReplyStatus::kComplete);
  EXPECT_EQ(res.consumed, wire.size());
  EXPECT_EQ(r.enhanced, "5.7.1");
  EXPECT_THAT(r.lines, ElementsAre("first", "second", "last"));
  EXPECT_EQ(r.Format(), wire);  // and formats back to the same bytes
}

TEST(ParseReplyTest, KeepsAnEnhancedLookingTextOfAnotherClass) {
  Reply r;
  ASSERT_EQ(ParseReply("250 5.0.0 is a version\r\n", r).status, ReplyStatus::kComplete);
  EXPECT_EQ(r.enhanced, "");
  EXPECT_THAT(r.lines, ElementsAre("5.0.0 is a version"));
}

TEST(ParseReplyTest, ParsesCodeAloneAndEmptyContinuation) {
  Reply r;
  ASSERT_EQ(ParseReply("250\r\n", r).status, ReplyStatus::kComplete);
  EXPECT_EQ(r.code, 250);
  EXPECT_THAT(r.lines, ElementsAre(""));
  ASSERT_EQ(ParseReply("250-\r\n250 \r\n", r).status, ReplyStatus::kComplete);
  EXPECT_THAT(r.lines, ElementsAre("", ""));
  ASSERT_EQ(ParseReply("250 2.0.0\r\n", r).status, ReplyStatus::kComplete);
  EXPECT_EQ(r.enhanced, "2.0.0");
  EXPECT_THAT(r.lines, ElementsAre(""));
}

TEST(ParseReplyTest, ParsesIntermediateReply) {
  Reply r;
  ASSERT_EQ(ParseReply("354 End data with <CR><LF>.<CR><LF>\r\n", r).status, ReplyStatus::kComplete);
  EXPECT_TRUE(r.intermediate());
}

TEST(ParseReplyTest, NeedsMoreUntilTheLastLine) {
  Reply r;
  r.code = 999;
  EXPECT_EQ(ParseReply("", r).status, ReplyStatus::kNeedMore);
  EXPECT_EQ(ParseReply("250-a\r\n250-b\r\n", r).status, ReplyStatus::kNeedMore);
  EXPECT_EQ(ParseReply("250-a\r\n250 b", r).status, ReplyStatus::kNeedMore);
  EXPECT_EQ(ParseReply("250 b\r", r).status, ReplyStatus::kNeedMore);
  EXPECT_EQ(r.code, 999);  // untouched until complete
}

TEST(ParseReplyTest, BareLfDoesNotEndAReply) {
  Reply r;
  EXPECT_EQ(ParseReply("250 ok\n", r).status, ReplyStatus::kNeedMore);
  ReplyParseResult res = ParseReply("250 ok\n250 smuggled\r\n", r);
  EXPECT_EQ(res.status, ReplyStatus::kError);
  EXPECT_THAT(res.error, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ParseReply("250 ok\rx\r\n", r).status, ReplyStatus::kError);
}

TEST(ParseReplyTest, LeavesTheNextPipelinedReplyInTheBuffer) {
  Reply r;
  ReplyParseResult res = ParseReply("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n", r);
  ASSERT_EQ(res.status, ReplyStatus::kComplete);
  EXPECT_EQ(res.consumed, 14u);
  EXPECT_EQ(r.enhanced, "2.1.0");
}

TEST(ParseReplyTest, RejectsMalformedLines) {
  for (const char* bad : {"25 ok\r\n", "abc ok\r\n", "250x ok\r\n", "\r\n", "650 ok\r\n", "160 ok\r\n",
                          "260 ok\r\n", "2500 ok\r\n", " 250 ok\r\n"}) {
    Reply r;
    ReplyParseResult res = ParseReply(bad, r);
    EXPECT_EQ(res.status, ReplyStatus::kError) << bad;
    EXPECT_THAT(res.error, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(ParseReplyTest, RejectsCodeChangingBetweenLines) {
  Reply r;
  ReplyParseResult res = ParseReply("250-a\r\n251 b\r\n", r);
  EXPECT_EQ(res.status, ReplyStatus::kError);
  EXPECT_THAT(res.error, StatusIs(absl::StatusCode::kInvalidArgument, "differs"));
}

TEST(ParseReplyTest, ReportsErrorBeforeTheReplyIsComplete) {
  Reply r;
  EXPECT_EQ(ParseReply("250-a\r\n550-b\r\n", r).status, ReplyStatus::kError);
}

TEST(ParseReplyTest, BoundsLineLength) {
  Reply r;
  const std::string line = "250 " + std::string(96, 'x') + "\r\n";  // 102 bytes
  EXPECT_EQ(ParseReply(line, r, 102).status, ReplyStatus::kComplete);
  ReplyParseResult res = ParseReply(line, r, 101);
  EXPECT_EQ(res.status, ReplyStatus::kError);
  EXPECT_THAT(res.error, StatusIs(absl::StatusCode::kResourceExhausted));
  // Without a CRLF in sight, an over-long line is an error at once.
  EXPECT_EQ(ParseReply("250-" + std::string(5000, 'x'), r).status, ReplyStatus::kError);
}

TEST(ParseReplyTest, BoundsLineCount) {
  std::string wire;
  for (int i = 0; i < 9; ++i) wire += "250-line\r\n";
  Reply r;
  EXPECT_EQ(ParseReply(wire + "250 last\r\n", r, 4096, 10).status, ReplyStatus::kComplete);
  EXPECT_EQ(r.lines.size(), 10u);
  ReplyParseResult res = ParseReply(wire + "250-more\r\n", r, 4096, 10);
  EXPECT_EQ(res.status, ReplyStatus::kError);
  EXPECT_THAT(res.error, StatusIs(absl::StatusCode::kResourceExhausted));
}

using test_drivers::ReadReplies;

TEST(ParseReplyTest, SameRepliesForEverySplitOfAPipelinedStream) {
  const std::string stream =
      "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
      "250 2.1.0 Ok\r\n550-5.1.1 <x@example.org>: Recipient address rejected:\r\n"
      "550 5.1.1 User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n250\r\n";
  const std::vector<std::string> whole = ReadReplies({stream});
  ASSERT_EQ(whole.size(), 5u);
  const std::string_view v = stream;
  for (size_t i = 0; i <= v.size(); ++i) {
    EXPECT_EQ(ReadReplies({v.substr(0, i), v.substr(i)}), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < v.size(); ++i) bytes.push_back(v.substr(i, 1));
  EXPECT_EQ(ReadReplies(bytes), whole);
}

TEST(ParseReplyTest, SameErrorForEverySplitOfABadStream) {
  const std::string stream = "250 2.0.0 Ok\r\n250-a\n250 b\r\n250 never\r\n";
  const std::vector<std::string> whole = ReadReplies({stream});
  ASSERT_THAT(whole, ElementsAre("250 2.0.0 Ok\r\n", "<ERROR>"));
  const std::string_view v = stream;
  for (size_t i = 0; i <= v.size(); ++i) {
    EXPECT_EQ(ReadReplies({v.substr(0, i), v.substr(i)}), whole) << "split at " << i;
  }
}

}  // namespace
}  // namespace sluice::smtp
