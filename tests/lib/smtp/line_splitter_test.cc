// tests/lib/smtp/line_splitter_test.cc
//
// Command/reply line splitting: only CRLF ends a line (RFC 5321 §2.3.8), bounded line
// length, discarding an over-long line, and a pipelined batch split at every byte boundary.
//
// Never: feeds a buffer only in one piece.
#include "lib/smtp/line_splitter.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/lib/smtp/codec_drivers.h"

namespace sluice::smtp {
namespace {

using ::testing::ElementsAre;

TEST(NextLineTest, ReturnsLineWithoutCrlf) {
  LineResult r = NextLine("EHLO client.example\r\nMAIL", 512);
  EXPECT_EQ(r.status, LineStatus::kLine);
  EXPECT_EQ(r.line, "EHLO client.example");
  EXPECT_EQ(r.consumed, 21u);
}

TEST(NextLineTest, EmptyLine) {
  LineResult r = NextLine("\r\n", 512);
  EXPECT_EQ(r.status, LineStatus::kLine);
  EXPECT_EQ(r.line, "");
  EXPECT_EQ(r.consumed, 2u);
}

TEST(NextLineTest, NeedsMoreWithoutCrlf) {
  EXPECT_EQ(NextLine("", 512).status, LineStatus::kNeedMore);
  EXPECT_EQ(NextLine("QUIT", 512).status, LineStatus::kNeedMore);
  EXPECT_EQ(NextLine("QUIT\r", 512).status, LineStatus::kNeedMore);
}

TEST(NextLineTest, BareLfDoesNotEndALine) {
  EXPECT_EQ(NextLine("NOOP\nQUIT", 512).status, LineStatus::kNeedMore);
  LineResult r = NextLine("NOOP\nQUIT\r\n", 512);
  EXPECT_EQ(r.status, LineStatus::kLine);
  EXPECT_EQ(r.line, "NOOP\nQUIT");
}

TEST(NextLineTest, BareCrDoesNotEndALine) {
  EXPECT_EQ(NextLine("NOOP\rQUIT", 512).status, LineStatus::kNeedMore);
  LineResult r = NextLine("NOOP\rQUIT\r\n", 512);
  EXPECT_EQ(r.status, LineStatus::kLine);
  EXPECT_EQ(r.line, "NOOP\rQUIT");
  LineResult r2 = NextLine("NOOP\n\r\r\n", 512);
  EXPECT_EQ(r2.line, "NOOP\n\r");
}

TEST(NextLineTest, LineOfExactlyMaxLenFits) {
  // max_len includes the CRLF.
  LineResult r = NextLine("abcd\r\n", 6);
  EXPECT_EQ(r.status, LineStatus::kLine);
  EXPECT_EQ(r.line, "abcd");
}

TEST(NextLineTest, LineOneByteOverMaxLenIsTooLong) {
  EXPECT_EQ(NextLine("abcde\r\n", 6).status, LineStatus::kTooLong);
  EXPECT_EQ(NextLine("abcde\r", 6).status, LineStatus::kTooLong);
  EXPECT_EQ(NextLine("abcdef", 6).status, LineStatus::kTooLong);
  EXPECT_EQ(NextLine("abcde", 6).status, LineStatus::kNeedMore);
}

TEST(NextLineTest, TooLongIsReportedBeforeTheCrlfArrives) {
  EXPECT_EQ(NextLine(std::string(1000, 'x'), 512).status, LineStatus::kTooLong);
}

TEST(SkipToLineEndTest, SkipsThroughCrlf) {
  bool found = false;
  EXPECT_EQ(SkipToLineEnd("xxxx\r\nQUIT\r\n", found), 6u);
  EXPECT_TRUE(found);
}

TEST(SkipToLineEndTest, KeepsTrailingCr) {
  bool found = true;
  EXPECT_EQ(SkipToLineEnd("xxxx\r", found), 4u);
  EXPECT_FALSE(found);
  EXPECT_EQ(SkipToLineEnd("xxxx", found), 4u);
  EXPECT_FALSE(found);
  EXPECT_EQ(SkipToLineEnd("", found), 0u);
  EXPECT_FALSE(found);
}

TEST(SkipToLineEndTest, BareLfDoesNotEndTheSkippedLine) {
  bool found = true;
  EXPECT_EQ(SkipToLineEnd("xx\nQUIT", found), 7u);
  EXPECT_FALSE(found);
}

using test_drivers::kTooLongLine;
using test_drivers::ReadLines;

TEST(PipelinedBatchTest, SameLinesForEverySplit) {
  const std::string batch =
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c\nd@example.org>\r\n"
      "\r\nDATA\r\nNOOP\rx\r\nQUI";
  const std::vector<std::string> whole = ReadLines({batch}, 512);
  EXPECT_THAT(whole, ElementsAre("MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>",
                                 "RCPT TO:<c\nd@example.org>", "", "DATA", "NOOP\rx", "\r\n<REST QUI>"));
  const std::string_view b = batch;
  for (size_t i = 0; i <= batch.size(); ++i) {
    EXPECT_EQ(ReadLines({b.substr(0, i), b.substr(i)}, 512), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < batch.size(); ++i) bytes.push_back(b.substr(i, 1));
  EXPECT_EQ(ReadLines(bytes, 512), whole);
}

TEST(PipelinedBatchTest, OverLongLineIsDiscardedIdenticallyForEverySplit) {
  const std::string batch = "NOOP\r\n" + std::string(40, 'x') + "\r" + std::string(5, 'y') + "\r\nQUIT\r\n";
  const std::vector<std::string> whole = ReadLines({batch}, 16);
  EXPECT_THAT(whole, ElementsAre("NOOP", kTooLongLine, "QUIT"));
  const std::string_view b = batch;
  for (size_t i = 0; i <= batch.size(); ++i) {
    for (size_t j = i; j <= batch.size(); j += 7) {
      EXPECT_EQ(ReadLines({b.substr(0, i), b.substr(i, j - i), b.substr(j)}, 16), whole)
          << "split at " << i << "," << j;
    }
  }
}

}  // namespace
}  // namespace sluice::smtp
