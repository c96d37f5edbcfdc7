// tests/lib/smtp/xtext_test.cc
//
// xtext (RFC 3461 §4): what gets escaped, what decoding refuses, and the round trip for
// every byte value.
//
// Never: compares an encoder's output with the same encoder's output.
#include "lib/smtp/xtext.h"

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::smtp {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

TEST(XtextTest, EncodesPlusEqualsAndNonGraphicCharacters) {
  EXPECT_EQ(XtextEncode("abc"), "abc");
  EXPECT_EQ(XtextEncode("a+b"), "a+2Bb");
  EXPECT_EQ(XtextEncode("e=mc2"), "e+3Dmc2");
  EXPECT_EQ(XtextEncode("a b"), "a+20b");
  EXPECT_EQ(XtextEncode("\r\n"), "+0D+0A");
  EXPECT_EQ(XtextEncode(std::string_view("\0", 1)), "+00");
  EXPECT_EQ(XtextEncode("\x7F\xFF"), "+7F+FF");
  EXPECT_EQ(XtextEncode("!~<>[]"), "!~<>[]");
  EXPECT_EQ(XtextEncode(""), "");
}

TEST(XtextTest, DecodesEscapes) {
  absl::StatusOr<std::string> r = XtextDecode("e+3Dmc2+2Bx+20y");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "e=mc2+x y");
}

TEST(XtextTest, DecodesLowerCaseHexToo) {
  absl::StatusOr<std::string> r = XtextDecode("+2b+3d+ff");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "+=\xFF");
}

TEST(XtextTest, RejectsTruncatedOrBadEscapes) {
  for (const char* bad : {"+", "a+", "a+4", "+G0", "+0G", "+ 1", "++2B"}) {
    EXPECT_THAT(XtextDecode(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(XtextTest, RejectsCharactersOutsideXchar) {
  for (const char* bad : {"a b", "a=b", "a\tb", "a\rb", "a\nb", "\x7F", "\xC3\xB6"}) {
    EXPECT_THAT(XtextDecode(bad), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
  EXPECT_THAT(XtextDecode(std::string_view("a\0b", 3)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(XtextTest, RoundTripsEveryByteValue) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string encoded = XtextEncode(all);
  for (char c : encoded) {
    EXPECT_TRUE(c >= 33 && c <= 126 && c != '=') << static_cast<int>(c);
  }
  absl::StatusOr<std::string> decoded = XtextDecode(encoded);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(*decoded, all);
}

TEST(XtextTest, EncodesOnlyWhatMustBeEscaped) {
  // Every xchar stays itself: 94 graphic characters minus '+' and '='.
  std::string graphic;
  for (int c = 33; c <= 126; ++c) {
    if (c != '+' && c != '=') graphic.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(XtextEncode(graphic), graphic);
}

}  // namespace
}  // namespace sluice::smtp
