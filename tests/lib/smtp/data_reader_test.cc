// tests/lib/smtp/data_reader_test.cc
//
// DATA content decoding (RFC 5321 §4.1.4, §4.5.2) and SMTP smuggling (CVE-2023-51764): only
// CRLF.CRLF ends the message; every bare CR / bare LF terminator look-alike is content and
// is flagged. Every input is also fed split at every byte boundary, and byte by byte, and
// must give exactly the same result.
//
// Never: checks a smuggling vector only in one piece.
#include "lib/smtp/data_reader.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/lib/smtp/codec_drivers.h"

namespace sluice::smtp {
namespace {

using Decoded = test_drivers::DataDecode;

Decoded FeedChunks(const std::vector<std::string_view>& chunks) { return test_drivers::DecodeData(chunks); }
Decoded Feed(std::string_view in) { return FeedChunks({in}); }

// The result for `in` in one piece, after checking that every two-way split and the
// byte-by-byte feed give the same.
Decoded FeedEverySplit(std::string_view in) {
  const Decoded whole = Feed(in);
  EXPECT_TRUE(whole.chunk_accounting_ok) << whole;
  for (size_t i = 0; i <= in.size(); ++i) {
    EXPECT_EQ(FeedChunks({in.substr(0, i), in.substr(i)}), whole) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < in.size(); ++i) bytes.push_back(in.substr(i, 1));
  EXPECT_EQ(FeedChunks(bytes), whole) << "byte by byte";
  return whole;
}

TEST(DataReaderTest, DecodesSimpleMessage) {
  const Decoded d = FeedEverySplit("Subject: hi\r\n\r\nHello\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "Subject: hi\r\n\r\nHello\r\n");
  EXPECT_EQ(d.consumed, 25u);
  EXPECT_FALSE(d.bare_cr);
  EXPECT_FALSE(d.bare_lf);
}

TEST(DataReaderTest, DotLineAtTheVeryStartIsAnEmptyMessage) {
  const Decoded d = FeedEverySplit(".\r\nQUIT\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "");
  EXPECT_EQ(d.consumed, 3u);
}

TEST(DataReaderTest, LeavesPipelinedCommandsAfterTheEnd) {
  const std::string in = "body\r\n.\r\nMAIL FROM:<a@example.org>\r\n";
  const Decoded d = FeedEverySplit(in);
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.consumed, 9u);
  EXPECT_EQ(in.substr(d.consumed), "MAIL FROM:<a@example.org>\r\n");
}

TEST(DataReaderTest, FeedAfterDoneConsumesNothing) {
  DataReader reader;
  std::string out;
  ASSERT_TRUE(reader.Feed("x\r\n.\r\n", out).done);
  DataReader::Result r = reader.Feed("more\r\n.\r\n", out);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(out, "x\r\n");
}

TEST(DataReaderTest, ResetStartsANewMessage) {
  DataReader reader;
  std::string out;
  reader.Feed("a\nb\r\n.\r\n", out);
  ASSERT_TRUE(reader.done());
  ASSERT_TRUE(reader.bare_lf());
  reader.Reset();
  EXPECT_FALSE(reader.done());
  EXPECT_FALSE(reader.bare_newline());
  EXPECT_EQ(reader.content_bytes(), 0u);
  out.clear();
  EXPECT_TRUE(reader.Feed(".\r\n", out).done);
  EXPECT_EQ(out, "");
}

TEST(DataReaderTest, IncompleteMessageIsNotDone) {
  for (const char* in : {"", "abc", "abc\r", "abc\r\n", "abc\r\n.", "abc\r\n.\r", "."}) {
    const Decoded d = FeedEverySplit(in);
    EXPECT_FALSE(d.done) << in;
    EXPECT_EQ(d.consumed, std::string_view(in).size());
  }
}

TEST(DataReaderTest, HoldsOnlyATrailingCrOrLineInitialDot) {
  DataReader reader;
  std::string out;
  reader.Feed("abc\r", out);
  EXPECT_EQ(out, "abc");  // the CR waits for the next byte
  reader.Feed("\n", out);
  EXPECT_EQ(out, "abc\r\n");
  reader.Feed(".", out);
  EXPECT_EQ(out, "abc\r\n");
  reader.Feed(".x", out);
  EXPECT_EQ(out, "abc\r\n.x");
}

// --- dot-unstuffing (RFC 5321 §4.5.2) ---

TEST(DataReaderTest, RemovesTheFirstDotOfALine) {
  EXPECT_EQ(FeedEverySplit("..\r\n.\r\n").out, ".\r\n");
  EXPECT_EQ(FeedEverySplit("...\r\n.\r\n").out, "..\r\n");
  EXPECT_EQ(FeedEverySplit("..hidden\r\n.\r\n").out, ".hidden\r\n");
  EXPECT_EQ(FeedEverySplit(".x\r\n.\r\n").out, "x\r\n");  // unstuffed even if not stuffed
  EXPECT_EQ(FeedEverySplit("a\r\n..\r\nb\r\n.\r\n").out, "a\r\n.\r\nb\r\n");
}

TEST(DataReaderTest, KeepsDotsInsideALine) {
  EXPECT_EQ(FeedEverySplit("a.b\r\nc..\r\n. .\r\n.\r\n").out, "a.b\r\nc..\r\n .\r\n");
}

TEST(DataReaderTest, DotStuffedLineIsNotTheEnd) {
  const Decoded d = FeedEverySplit("a\r\n..\r\n");
  EXPECT_FALSE(d.done);
  EXPECT_EQ(d.out, "a\r\n.\r\n");
}

// --- SMTP smuggling: nothing but CRLF.CRLF ends the message ---

struct Vector {
  const char* name;
  std::string sequence;  // what a lenient server might take for the end of data
  bool bare_cr;
  bool bare_lf;
};

const Vector kSmugglingVectors[] = {
    {"LF.LF", "\n.\n", false, true},
    {"CR.CR", "\r.\r", true, false},
    {"LF.CRLF", "\n.\r\n", false, true},
    {"CRLF.LF", "\r\n.\n", false, true},
    {"CRLF.CR", "\r\n.\r", true, false},
    {"CR.CRLF", "\r.\r\n", true, false},
    {"CR.LF", "\r.\n", true, true},
    {"LF.CR", "\n.\r", true, true},
    {"CRLF.CRCRLF", "\r\n.\r\r\n", true, false},
    {"CRLF.LFCRLF", "\r\n.\n\r\n", false, true},
    {"CRLF.SPCRLF", "\r\n. \r\n", false, false},
    {"CRLF..CRLF", "\r\n..\r\n", false, false},
    {"CRLFLF.CRLF", "\r\n\n.\r\n", false, true},
};

TEST(DataReaderTest, RejectsEverySmugglingVector) {
  for (const Vector& v : kSmugglingVectors) {
    // The smuggled transaction a lenient server would see as a second message.
    const std::string smuggled = "MAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.org>\r\n";
    const std::string in = "Subject: x\r\n\r\nbody" + v.sequence + smuggled + "\r\n.\r\n";
    const Decoded d = FeedEverySplit(in);
    EXPECT_TRUE(d.done) << v.name;
    EXPECT_EQ(d.consumed, in.size()) << v.name << ": ended early";
    EXPECT_NE(d.out.find(smuggled), std::string::npos) << v.name << ": smuggled text is not content";
    EXPECT_EQ(d.bare_cr, v.bare_cr) << v.name;
    EXPECT_EQ(d.bare_lf, v.bare_lf) << v.name;
  }
}

TEST(DataReaderTest, RealTerminatorAfterABareCrEndsAndIsFlagged) {
  // "\r\r\n.\r\n" holds a genuine CRLF.CRLF: the message ends there, and the bare CR
  // before it still makes the caller reject the message.
  const Decoded d = FeedEverySplit("body\r\r\n.\r\nMAIL FROM:<a@b.c>\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.consumed, 10u);
  EXPECT_EQ(d.out, "body\r\r\n");
  EXPECT_TRUE(d.bare_cr);
}

TEST(DataReaderTest, NoVectorEndsTheMessageWhenItIsTheLastThingSent) {
  for (const Vector& v : kSmugglingVectors) {
    const Decoded d = FeedEverySplit("body" + v.sequence);
    EXPECT_FALSE(d.done) << v.name;
  }
}

TEST(DataReaderTest, RejectsBareLfBeforeDot) {
  const Decoded d = FeedEverySplit("a\n.\nb\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "a\n.\nb\r\n");  // a dot after a bare LF is not at a line start: kept
  EXPECT_TRUE(d.bare_lf);
  EXPECT_FALSE(d.bare_cr);
}

TEST(DataReaderTest, RejectsBareCrBeforeDot) {
  const Decoded d = FeedEverySplit("a\r.\rb\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "a\r.\rb\r\n");
  EXPECT_TRUE(d.bare_cr);
  EXPECT_FALSE(d.bare_lf);
}

TEST(DataReaderTest, DotLfAtTheStartIsNotTheEnd) {
  const Decoded d = FeedEverySplit(".\nMAIL FROM:<a@b.c>\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "\nMAIL FROM:<a@b.c>\r\n");  // the line's first dot is removed
  EXPECT_TRUE(d.bare_lf);
}

TEST(DataReaderTest, DotCrAtTheStartIsNotTheEnd) {
  const Decoded d = FeedEverySplit(".\rx\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "\rx\r\n");
  EXPECT_TRUE(d.bare_cr);
  EXPECT_FALSE(d.bare_lf);
}

TEST(DataReaderTest, DotCrCrLfIsNotTheEnd) {
  const Decoded d = FeedEverySplit("a\r\n.\r\r\nb\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.out, "a\r\n\r\r\nb\r\n");
  EXPECT_TRUE(d.bare_cr);
}

TEST(DataReaderTest, LfOnlyMessageNeverEnds) {
  const Decoded d = FeedEverySplit("Subject: x\n\nbody\n.\n");
  EXPECT_FALSE(d.done);
  EXPECT_TRUE(d.bare_lf);
  EXPECT_EQ(d.out, "Subject: x\n\nbody\n.\n");
}

TEST(DataReaderTest, FlagsBareCrAndBareLfAnywhere) {
  EXPECT_TRUE(FeedEverySplit("a\rb\r\n.\r\n").bare_cr);
  EXPECT_TRUE(FeedEverySplit("\r\r\n.\r\n").bare_cr);
  EXPECT_TRUE(FeedEverySplit("a\nb\r\n.\r\n").bare_lf);
  EXPECT_TRUE(FeedEverySplit("\n\r\n.\r\n").bare_lf);
  EXPECT_TRUE(FeedEverySplit("a\r\n\n.\r\n").bare_lf);
  const Decoded clean = FeedEverySplit("a\r\nb\r\n\r\n.\r\n");
  EXPECT_FALSE(clean.bare_cr);
  EXPECT_FALSE(clean.bare_lf);
}

TEST(DataReaderTest, BareNewlinesAreKeptAsContent) {
  // The caller rejects the message; until then nothing is dropped or rewritten.
  EXPECT_EQ(FeedEverySplit("a\rb\nc\r\r\n.\r\n").out, "a\rb\nc\r\r\n");
}

// --- NUL octets (the "nullbefore/nullafter" smuggling variants) ---

TEST(DataReaderTest, NulBeforeTheDotIsContentAndFlagged) {
  // <CR><LF><NUL>.<CR><LF>: a downstream dropping NULs would see an end of data here.
  using std::string_literals::operator""s;
  const std::string in = "Subject: x\r\n\r\nbody\r\n\0.\r\nMAIL FROM:<evil@x>\r\n.\r\n"s;
  const Decoded d = FeedEverySplit(in);
  EXPECT_TRUE(d.done);
  EXPECT_TRUE(d.nul);
  EXPECT_EQ(d.consumed, in.size());  // only the real CRLF.CRLF ends it
  EXPECT_FALSE(d.bare_cr || d.bare_lf);
}

TEST(DataReaderTest, NulAfterTheDotIsContentAndFlagged) {
  // <CR><LF>.<NUL><CR><LF>: a stuffed line ".<NUL>", not the terminator.
  using std::string_literals::operator""s;
  const std::string in = "body\r\n.\0\r\nRCPT TO:<evil@x>\r\n.\r\n"s;
  const Decoded d = FeedEverySplit(in);
  EXPECT_TRUE(d.done);
  EXPECT_TRUE(d.nul);
  EXPECT_EQ(d.out, "body\r\n\0\r\nRCPT TO:<evil@x>\r\n"s);
}

TEST(DataReaderTest, NulAnywhereIsFlaggedAndCleanContentIsNot) {
  using std::string_literals::operator""s;
  EXPECT_TRUE(FeedEverySplit("a\0b\r\n.\r\n"s).nul);
  EXPECT_TRUE(FeedEverySplit("\0\r\n.\r\n"s).nul);
  EXPECT_TRUE(FeedEverySplit("a\r\n\0\r\n.\r\n"s).nul);
  EXPECT_FALSE(FeedEverySplit("a\r\nb\r\n.\r\n").nul);
}

TEST(DataReaderTest, NulAfterTheEndIsNotTheMessages) {
  // A NUL in pipelined input behind the terminator is not content of this message.
  using std::string_literals::operator""s;
  const Decoded d = FeedEverySplit("a\r\n.\r\n\0junk\r\n"s);
  EXPECT_TRUE(d.done);
  EXPECT_FALSE(d.nul);
}

// --- header measurement ---

TEST(DataReaderTest, MeasuresHeaderUpToTheEmptyLine) {
  const Decoded d = FeedEverySplit("A: b\r\nC: d\r\n\r\nbody\r\n.\r\n");
  EXPECT_TRUE(d.header_done);
  EXPECT_EQ(d.header_bytes, 14u);  // "A: b\r\n" + "C: d\r\n" + "\r\n"
  EXPECT_EQ(d.content_bytes, 20u);
}

TEST(DataReaderTest, HeaderWithoutEmptyLineIsAllContentSoFar) {
  const Decoded d = FeedEverySplit("A: b\r\nC: d\r\n.\r\n");
  EXPECT_FALSE(d.header_done);
  EXPECT_EQ(d.header_bytes, 12u);
}

TEST(DataReaderTest, EmptyFirstLineMeansNoHeader) {
  const Decoded d = FeedEverySplit("\r\nbody\r\n.\r\n");
  EXPECT_TRUE(d.header_done);
  EXPECT_EQ(d.header_bytes, 2u);
}

TEST(DataReaderTest, HeaderCountsDecodedBytes) {
  const Decoded d = FeedEverySplit("..A: b\r\n\r\n.\r\n");
  EXPECT_TRUE(d.header_done);
  EXPECT_EQ(d.header_bytes, 9u);  // ".A: b\r\n" + "\r\n"
}

TEST(DataReaderTest, HeaderGrowsWhileItIsOpen) {
  DataReader reader;
  std::string out;
  reader.Feed("X-Long: " + std::string(100, 'v'), out);
  EXPECT_FALSE(reader.header_done());
  EXPECT_EQ(reader.header_bytes(), 108u);  // measured before the line ends
}

TEST(DataReaderTest, StuffedDotLineDoesNotEndTheHeader) {
  const Decoded d = FeedEverySplit("A: b\r\n..\r\n\r\n.\r\n");
  EXPECT_TRUE(d.header_done);
  EXPECT_EQ(d.header_bytes, 11u);  // "A: b\r\n" + ".\r\n" + "\r\n"
}

TEST(DataReaderTest, BareLfBeforeCrlfIsNotAnEmptyLine) {
  const Decoded d = FeedEverySplit("A: b\r\n\n\r\nbody\r\n.\r\n");
  EXPECT_FALSE(d.header_done);  // the "\n" line is not empty, nor is "body"
  EXPECT_EQ(d.header_bytes, 6u + 3u + 6u);
  EXPECT_TRUE(d.bare_lf);
}

// --- line length ---

TEST(DataReaderTest, TracksLongestLineWithoutCrlf) {
  const Decoded d = FeedEverySplit("ab\r\n" + std::string(1000, 'x') + "\r\n..yy\r\n.\r\n");
  EXPECT_EQ(d.longest_line, 1000u);
}

TEST(DataReaderTest, LongestLineCountsBareNewlinesAsContent) {
  EXPECT_EQ(FeedEverySplit("a\nb\rc\r\n.\r\n").longest_line, 5u);
  EXPECT_EQ(FeedEverySplit(".\r\n").longest_line, 0u);
}

TEST(DataReaderTest, LongLineStreamsWithoutBuffering) {
  DataReader reader;
  std::string out;
  const std::string chunk(4096, 'z');
  for (int i = 0; i < 256; ++i) {
    out.clear();
    DataReader::Result r = reader.Feed(chunk, out);
    ASSERT_FALSE(r.done);
    ASSERT_EQ(out.size(), chunk.size());  // every byte comes out as soon as it is fed
  }
  EXPECT_EQ(reader.longest_line(), 256u * 4096u);
}

// --- mixed corpus, every split and every three-way split ---

TEST(DataReaderTest, SameResultForEveryThreeWaySplit) {
  const std::string inputs[] = {
      "A: b\r\n\r\n..x\r\n\r.\r\n.\n.\r\n",
      ".\r\n",
      "\r\n.\r\n",
      ".\n.\r.\r\n..\r\n.\r\n",
      "x\r\r\r\n.\r\r\n.\r\nTAIL",
  };
  for (const std::string& in : inputs) {
    const Decoded whole = Feed(in);
    const std::string_view v = in;
    for (size_t i = 0; i <= v.size(); ++i) {
      for (size_t j = i; j <= v.size(); ++j) {
        EXPECT_EQ(FeedChunks({v.substr(0, i), v.substr(i, j - i), v.substr(j)}), whole)
            << "input " << in << " split at " << i << "," << j;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::smtp
