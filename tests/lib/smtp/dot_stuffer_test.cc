// tests/lib/smtp/dot_stuffer_test.cc
//
// The client side of DATA (RFC 5321 §4.5.2): dot-stuffing and the end of data, streamed over
// arbitrary chunks; and the round trip DotStuffer -> DataReader on many inputs, which gives
// back the content exactly (plus the CRLF that ends an unterminated last line).
//
// Never: checks the round trip only on inputs without dots.
#include "lib/smtp/dot_stuffer.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "lib/smtp/data_reader.h"

namespace sluice::smtp {
namespace {

std::string StuffChunks(const std::vector<std::string_view>& chunks) {
  DotStuffer stuffer;
  std::string out;
  for (std::string_view c : chunks) stuffer.Feed(c, out);
  stuffer.Finish(out);
  return out;
}

std::string Stuff(std::string_view content) { return StuffChunks({content}); }

// Decodes wire data with DataReader fed in chunks of `step` bytes; "<NOT DONE>" if it never
// ends, "<TRAILING>" if it ends before the last byte.
std::string Read(std::string_view wire, size_t step) {
  DataReader reader;
  std::string out;
  size_t pos = 0;
  while (pos < wire.size()) {
    const std::string_view chunk = wire.substr(pos, step);
    DataReader::Result r = reader.Feed(chunk, out);
    pos += r.consumed;
    if (r.done) return pos == wire.size() ? out : "<TRAILING>";
  }
  return "<NOT DONE>";
}

// What the round trip must give: the content, with a CRLF added to a last line without one.
std::string Expected(std::string_view content) {
  std::string e(content);
  if (!e.empty() && !(e.size() >= 2 && e.substr(e.size() - 2) == "\r\n")) e += "\r\n";
  return e;
}

TEST(DotStufferTest, DoublesALeadingDot) {
  EXPECT_EQ(Stuff(".hidden\r\n"), "..hidden\r\n.\r\n");
  EXPECT_EQ(Stuff("a\r\n.\r\nb\r\n"), "a\r\n..\r\nb\r\n.\r\n");
  EXPECT_EQ(Stuff("..\r\n"), "...\r\n.\r\n");
}

TEST(DotStufferTest, LeavesOtherDotsAlone) {
  EXPECT_EQ(Stuff("a.b\r\nc.\r\n"), "a.b\r\nc.\r\n.\r\n");
}

TEST(DotStufferTest, EmptyContentIsJustTheEnd) {
  EXPECT_EQ(Stuff(""), ".\r\n");
  EXPECT_EQ(StuffChunks({"", ""}), ".\r\n");
}

TEST(DotStufferTest, AddsCrlfToAnUnterminatedLastLine) {
  EXPECT_EQ(Stuff("abc"), "abc\r\n.\r\n");
  EXPECT_EQ(Stuff("abc\r"), "abc\r\r\n.\r\n");
  EXPECT_EQ(Stuff("abc\r\n"), "abc\r\n.\r\n");
}

TEST(DotStufferTest, StuffsALoneDotLineSoItCannotEndTheMessage) {
  EXPECT_EQ(Stuff(".\r\n"), "..\r\n.\r\n");
  EXPECT_EQ(Stuff("."), "..\r\n.\r\n");
}

TEST(DotStufferTest, StuffsDotsAcrossChunkBoundaries) {
  EXPECT_EQ(StuffChunks({"a\r\n", ".b\r\n"}), "a\r\n..b\r\n.\r\n");
  EXPECT_EQ(StuffChunks({"a\r", "\n.b\r\n"}), "a\r\n..b\r\n.\r\n");
  EXPECT_EQ(StuffChunks({"a\r\n", ".", ".", "\r\n"}), "a\r\n...\r\n.\r\n");
  EXPECT_EQ(StuffChunks({"a\r", "\n", "."}), "a\r\n..\r\n.\r\n");
}

TEST(DotStufferTest, StuffsDotsAfterBareNewlinesToo) {
  // A lenient receiver that ends lines at a bare CR or LF must not see a "." line either.
  EXPECT_EQ(Stuff("a\n.\nb\r\n"), "a\n..\nb\r\n.\r\n");
  EXPECT_EQ(Stuff("a\r.\rb\r\n"), "a\r..\rb\r\n.\r\n");
  EXPECT_EQ(StuffChunks({"a\n", ".b\r\n"}), "a\n..b\r\n.\r\n");
  EXPECT_EQ(StuffChunks({"a\r", ".b\r\n"}), "a\r..b\r\n.\r\n");
}

TEST(DotStufferTest, FinishLeavesItReadyForTheNextMessage) {
  DotStuffer stuffer;
  std::string out;
  stuffer.Feed("abc", out);
  stuffer.Finish(out);
  out.clear();
  stuffer.Feed(".x\r\n", out);
  stuffer.Finish(out);
  EXPECT_EQ(out, "..x\r\n.\r\n");
}

TEST(DotStufferTest, ResetForgetsAPartialLine) {
  DotStuffer stuffer;
  std::string out;
  stuffer.Feed("abc", out);
  stuffer.Reset();
  out.clear();
  stuffer.Feed(".", out);
  stuffer.Finish(out);
  EXPECT_EQ(out, "..\r\n.\r\n");
}

// Every content made of up to 4 of these CRLF-only pieces.
std::vector<std::string> SmallContents() {
  const std::string pieces[] = {".", "..", "a", "\r\n", " ", ".\r\n"};
  std::vector<std::string> all = {""};
  std::vector<std::string> level = {""};
  for (int depth = 0; depth < 4; ++depth) {
    std::vector<std::string> next;
    for (const std::string& prefix : level) {
      for (const std::string& p : pieces) next.push_back(prefix + p);
    }
    all.insert(all.end(), next.begin(), next.end());
    level = std::move(next);
  }
  return all;
}

TEST(RoundTripTest, StuffThenReadIsIdentityForSmallContents) {
  const std::vector<std::string> contents = SmallContents();
  ASSERT_GT(contents.size(), 1500u);
  for (const std::string& c : contents) {
    const std::string wire = Stuff(c);
    EXPECT_EQ(Read(wire, wire.size()), Expected(c)) << "content [" << c << "]";
    EXPECT_EQ(Read(wire, 1), Expected(c)) << "content [" << c << "] byte by byte";
  }
}

TEST(RoundTripTest, StuffThenReadIsIdentityForEverySplitOfBothSides) {
  const std::string content =
      ".Subject: dots\r\n\r\n.\r\n..\r\n...x\r\n" + std::string(700, 'L') + "\r\n.\r\n. \r\nend.";
  const std::string_view v = content;
  const std::string expected = Expected(content);
  for (size_t i = 0; i <= v.size(); ++i) {
    const std::string wire = StuffChunks({v.substr(0, i), v.substr(i)});
    ASSERT_EQ(wire, Stuff(content)) << "stuffer split at " << i;
  }
  const std::string wire = Stuff(content);
  for (size_t step = 1; step <= 17; ++step) EXPECT_EQ(Read(wire, step), expected) << step;
}

TEST(RoundTripTest, StuffThenReadIsIdentityForRandomCrlfContent) {
  std::mt19937 rng(51764);  // fixed seed: the same inputs every run
  const std::string alphabet[] = {".", "\r\n", "a", "b c", "..", std::string(100, 'x'), "\t", "\xC3\xB6"};
  for (int n = 0; n < 2000; ++n) {
    std::string content;
    const int pieces = static_cast<int>(rng() % 40);
    for (int k = 0; k < pieces; ++k) content += alphabet[rng() % std::size(alphabet)];
    // Feed the stuffer in random chunks.
    std::vector<std::string_view> chunks;
    for (size_t pos = 0; pos < content.size();) {
      const size_t len = 1 + rng() % 9;
      chunks.push_back(std::string_view(content).substr(pos, len));
      pos += len;
    }
    const std::string wire = StuffChunks(chunks);
    EXPECT_EQ(wire, Stuff(content));
    EXPECT_EQ(Read(wire, 1 + rng() % 13), Expected(content)) << content;
  }
}

TEST(RoundTripTest, StuffedOutputNeverHoldsAnUnstuffedLineInitialDot) {
  // Whatever the content (bare CR/LF included), a dot after CR, LF or at the start is
  // always doubled, except in the final ".\r\n".
  std::mt19937 rng(2023);
  const char alphabet[] = {'.', '\r', '\n', 'a'};
  for (int n = 0; n < 5000; ++n) {
    std::string content;
    const int len = static_cast<int>(rng() % 12);
    for (int k = 0; k < len; ++k) content.push_back(alphabet[rng() % 4]);
    const std::string wire = Stuff(content);
    ASSERT_GE(wire.size(), 3u);
    ASSERT_EQ(wire.substr(wire.size() - 3), ".\r\n");
    const std::string body = wire.substr(0, wire.size() - 3);
    for (size_t p = 0; p < body.size(); ++p) {
      if (body[p] != '.' || (p > 0 && body[p - 1] != '\r' && body[p - 1] != '\n')) continue;
      ASSERT_TRUE(p + 1 < body.size() && body[p + 1] == '.') << "content [" << content << "]";
      ++p;  // skip the stuffed pair
    }
  }
}

}  // namespace
}  // namespace sluice::smtp
