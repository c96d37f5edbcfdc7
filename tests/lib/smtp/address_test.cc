// tests/lib/smtp/address_test.cc
//
// RFC 5321 §4.1.2 path and mailbox syntax, §4.5.3.1 length limits, address literals
// (§4.1.3), source routes (§C) and RFC 6531 UTF-8.
//
// Never: checks only that something parses without checking what came out.
#include "lib/smtp/address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::smtp {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

// Parses a whole path; returns the mailbox or "ERROR".
std::string Path(std::string_view text, bool allow_empty = true, bool utf8 = false, bool lenient = true) {
  absl::StatusOr<std::string> r = ParsePath(text, allow_empty, utf8, lenient);
  return r.ok() ? *r : "ERROR";
}

// A valid domain of exactly `total` octets: the fewest labels of at most 63 octets.
std::string DomainOfLength(size_t total) {
  const size_t labels = (total + 1 + 63) / 64;  // k labels need k-1 dots: 64k >= total+1
  const size_t letters = total - (labels - 1);
  std::string d;
  for (size_t i = 0; i < labels; ++i) {
    if (i > 0) d.push_back('.');
    d.append(letters / labels + (i < letters % labels ? 1 : 0), static_cast<char>('a' + i % 26));
  }
  return d;
}

TEST(ParsePathTest, ParsesSimplePathAndAdvancesPastIt) {
  std::string_view in = "<user@example.org> SIZE=10";
  absl::StatusOr<std::string> r = ParsePath(in, false, false);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "user@example.org");
  EXPECT_EQ(in, " SIZE=10");
}

TEST(ParsePathTest, EmptyPathOnlyWhenAllowed) {
  std::string_view in = "<> RET=FULL";
  absl::StatusOr<std::string> r = ParsePath(in, /*allow_empty=*/true, false);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "");
  EXPECT_EQ(in, " RET=FULL");
  std::string_view in2 = "<>";
  EXPECT_THAT(ParsePath(in2, /*allow_empty=*/false, false), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParsePathTest, DoesNotAdvanceOnError) {
  std::string_view in = "<a@b";
  EXPECT_THAT(ParsePath(in, true, false), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(in, "<a@b");
}

TEST(ParsePathTest, AcceptsDotStringLocalParts) {
  EXPECT_EQ(Path("<first.last@example.org>"), "first.last@example.org");
  EXPECT_EQ(Path("<a!#$%&'*+-/=?^_`{|}~@example.org>"), "a!#$%&'*+-/=?^_`{|}~@example.org");
}

TEST(ParsePathTest, RejectsEmptyAtomsInDotString) {
  EXPECT_EQ(Path("<.a@example.org>"), "ERROR");
  EXPECT_EQ(Path("<a.@example.org>"), "ERROR");
  EXPECT_EQ(Path("<a..b@example.org>"), "ERROR");
  EXPECT_EQ(Path("<@example.org>"), "ERROR");
}

TEST(ParsePathTest, AcceptsQuotedLocalParts) {
  EXPECT_EQ(Path("<\"john doe\"@example.org>"), "\"john doe\"@example.org");
  EXPECT_EQ(Path("<\"a>b@c\"@example.org>"), "\"a>b@c\"@example.org");  // '>' and '@' quoted
  EXPECT_EQ(Path("<\"a\\\"b\"@example.org>"), "\"a\\\"b\"@example.org");  // quoted-pair
  EXPECT_EQ(Path("<\"\"@example.org>"), "\"\"@example.org");
}

TEST(ParsePathTest, RejectsUnbalancedQuotesAndBrackets) {
  EXPECT_EQ(Path("<\"abc@example.org>"), "ERROR");
  EXPECT_EQ(Path("<\"abc\\\"@example.org>"), "ERROR");
  EXPECT_EQ(Path("<a@example.org"), "ERROR");
  EXPECT_EQ(Path("<<a@example.org>>"), "ERROR");
  EXPECT_EQ(Path("a@example.org>"), "ERROR");
  EXPECT_EQ(Path("<a@[192.0.2.1>"), "ERROR");
}

TEST(ParsePathTest, RejectsControlCharacters) {
  EXPECT_EQ(Path("<a\x01@example.org>"), "ERROR");
  EXPECT_EQ(Path("<\"a\x01\"@example.org>"), "ERROR");
  EXPECT_EQ(Path("<\"a\\\x01\"@example.org>"), "ERROR");
  EXPECT_EQ(Path("<a@exam\x7Fple.org>"), "ERROR");
  EXPECT_EQ(Path("<a@example.org\r>"), "ERROR");
  EXPECT_EQ(Path("<\"a\tb\"@example.org>"), "ERROR");
}

TEST(ParsePathTest, RejectsBadDomains) {
  EXPECT_EQ(Path("<a@-example.org>"), "ERROR");
  EXPECT_EQ(Path("<a@example-.org>"), "ERROR");
  EXPECT_EQ(Path("<a@example..org>"), "ERROR");
  EXPECT_EQ(Path("<a@example.org.>"), "ERROR");
  EXPECT_EQ(Path("<a@.example.org>"), "ERROR");
  EXPECT_EQ(Path("<a@exa_mple.org>"), "ERROR");
  EXPECT_EQ(Path("<a@>"), "ERROR");
  EXPECT_EQ(Path("<a>"), "ERROR");
  EXPECT_EQ(Path("<a@b@example.org>"), "ERROR");
}

TEST(ParsePathTest, AcceptsHyphensAndDigitsInsideLabels) {
  EXPECT_EQ(Path("<a@mail-1.ex-ample.org>"), "a@mail-1.ex-ample.org");
  EXPECT_EQ(Path("<a@123.example>"), "a@123.example");
  EXPECT_EQ(Path("<a@localhost>"), "a@localhost");
}

TEST(ParsePathTest, AcceptsIpv4AddressLiteral) {
  EXPECT_EQ(Path("<a@[192.0.2.1]>"), "a@[192.0.2.1]");
  EXPECT_EQ(Path("<a@[0.0.0.0]>"), "a@[0.0.0.0]");
  EXPECT_EQ(Path("<a@[255.255.255.255]>"), "a@[255.255.255.255]");
}

TEST(ParsePathTest, RejectsMalformedIpv4Literal) {
  for (const char* p : {"<a@[256.0.2.1]>", "<a@[192.0.2]>", "<a@[192.0.2.1.5]>", "<a@[192.0.2.]>",
                        "<a@[1920.0.2.1]>", "<a@[]>", "<a@[192.0.2.1 ]>", "<a@[a.b.c.d]>"}) {
    EXPECT_EQ(Path(p), "ERROR") << p;
  }
}

TEST(ParsePathTest, AcceptsIpv6AddressLiteral) {
  EXPECT_EQ(Path("<a@[IPv6:2001:db8::1]>"), "a@[IPv6:2001:db8::1]");
  EXPECT_EQ(Path("<a@[ipv6:::1]>"), "a@[ipv6:::1]");
  EXPECT_EQ(Path("<a@[IPv6:::ffff:192.0.2.1]>"), "a@[IPv6:::ffff:192.0.2.1]");
}

TEST(ParsePathTest, RejectsMalformedOrUnregisteredLiterals) {
  EXPECT_EQ(Path("<a@[IPv6:2001:db8:::1]>"), "ERROR");
  EXPECT_EQ(Path("<a@[IPv6:]>"), "ERROR");
  EXPECT_EQ(Path("<a@[2001:db8::1]>"), "ERROR");  // IPv6 needs its tag
  EXPECT_EQ(Path("<a@[x400:whatever]>"), "ERROR");
}

TEST(ParsePathTest, IgnoresSourceRoute) {
  // RFC 5321 §C: "<@hosta.int,@jkl.org:userc@d.bar.org>"
  EXPECT_EQ(Path("<@hosta.int,@jkl.org:userc@d.bar.org>"), "userc@d.bar.org");
  EXPECT_EQ(Path("<@one.example:u@example.org>"), "u@example.org");
}

TEST(ParsePathTest, RejectsMalformedSourceRoute) {
  EXPECT_EQ(Path("<@hosta.int,jkl.org:u@example.org>"), "ERROR");
  EXPECT_EQ(Path("<@hosta.int u@example.org>"), "ERROR");
  EXPECT_EQ(Path("<@:u@example.org>"), "ERROR");
  EXPECT_EQ(Path("<@hosta.int:>"), "ERROR");
}

TEST(ParsePathTest, LenientAcceptsBareAddress) {
  std::string_view in = "a@example.org SIZE=1";
  absl::StatusOr<std::string> r = ParsePath(in, true, false, /*lenient=*/true);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "a@example.org");
  EXPECT_EQ(in, " SIZE=1");
  EXPECT_EQ(Path("\"x y\"@example.org"), "\"x y\"@example.org");
}

TEST(ParsePathTest, StrictRequiresBrackets) {
  EXPECT_EQ(Path("a@example.org", true, false, /*lenient=*/false), "ERROR");
  EXPECT_EQ(Path("<a@example.org>", true, false, /*lenient=*/false), "a@example.org");
}

TEST(ParsePathTest, RejectsJunkRightAfterThePath) {
  EXPECT_EQ(Path("<a@example.org>x"), "ERROR");
  EXPECT_EQ(Path("<><"), "ERROR");  // found by fuzz_address
  EXPECT_EQ(Path("<>x"), "ERROR");
  EXPECT_EQ(Path("a@example.org>"), "ERROR");
  EXPECT_EQ(Path("a@example.org,b@example.org"), "ERROR");
  EXPECT_EQ(Path(""), "ERROR");
}

TEST(ParsePathTest, LocalPartLimitIs64Octets) {
  EXPECT_EQ(Path("<" + std::string(64, 'l') + "@example.org>"), std::string(64, 'l') + "@example.org");
  EXPECT_EQ(Path("<" + std::string(65, 'l') + "@example.org>"), "ERROR");
  // The quotes count: a quoted local part of 63 characters plus quotes is 65 octets.
  EXPECT_EQ(Path("<\"" + std::string(63, 'l') + "\"@example.org>"), "ERROR");
}

TEST(ParsePathTest, LabelLimitIs63Octets) {
  EXPECT_EQ(Path("<a@" + std::string(63, 'd') + ".org>"), "a@" + std::string(63, 'd') + ".org");
  EXPECT_EQ(Path("<a@" + std::string(64, 'd') + ".org>"), "ERROR");
}

TEST(ParsePathTest, PathLimitIs256OctetsWithBrackets) {
  // "<" + 64 + "@" + 189 + ">" = 256
  const std::string fits = std::string(64, 'l') + "@" + DomainOfLength(189);
  ASSERT_EQ(fits.size() + 2, 256u);
  EXPECT_EQ(Path("<" + fits + ">"), fits);
  const std::string too_long = std::string(64, 'l') + "@" + DomainOfLength(190);
  EXPECT_EQ(Path("<" + too_long + ">"), "ERROR");
  EXPECT_EQ(Path(too_long), "ERROR");  // bare (lenient) paths have the same bound
}

TEST(ParsePathTest, SourceRouteCountsTowardsThePathLimit) {
  const std::string mailbox = "a@" + DomainOfLength(200);
  EXPECT_EQ(Path("<" + mailbox + ">"), mailbox);
  EXPECT_EQ(Path("<@" + DomainOfLength(60) + ":" + mailbox + ">"), "ERROR");
}

TEST(ParsePathTest, Utf8OnlyWhenAllowed) {
  const std::string mailbox = "j\xC3\xB6rg@b\xC3\xBC\x63her.example";
  EXPECT_EQ(Path("<" + mailbox + ">", true, /*utf8=*/true), mailbox);
  EXPECT_EQ(Path("<" + mailbox + ">", true, /*utf8=*/false), "ERROR");
  EXPECT_EQ(Path("<\"\xE2\x82\xAC\"@example.org>", true, true), "\"\xE2\x82\xAC\"@example.org");
  EXPECT_EQ(Path("<\xF0\x9F\x93\xA7@example.org>", true, true), "\xF0\x9F\x93\xA7@example.org");
}

TEST(ParsePathTest, RejectsMalformedUtf8) {
  for (const char* p : {"<\xC0\x80@example.org>",        // overlong NUL
                        "<\xE0\x80\xAF@example.org>",    // overlong '/'
                        "<\xED\xA0\x80@example.org>",    // surrogate
                        "<\xF4\x90\x80\x80@example.org>", // above U+10FFFF
                        "<\xC3@example.org>",            // truncated
                        "<\x80@example.org>",            // lone continuation
                        "<a@\xFF.example>"}) {
    EXPECT_EQ(Path(p, true, true), "ERROR");
  }
}

TEST(IsValidMailboxTest, ValidatesWholeMailbox) {
  EXPECT_TRUE(IsValidMailbox("a@example.org", false));
  EXPECT_FALSE(IsValidMailbox("<a@example.org>", false));
  EXPECT_FALSE(IsValidMailbox("a@example.org ", false));
  EXPECT_FALSE(IsValidMailbox("", false));
  EXPECT_FALSE(IsValidMailbox("j\xC3\xB6rg@example.org", false));
  EXPECT_TRUE(IsValidMailbox("j\xC3\xB6rg@example.org", true));
}

TEST(IsValidMailboxTest, PostmasterOnlyWhenAllowed) {
  EXPECT_TRUE(IsValidMailbox("Postmaster", false, /*allow_postmaster=*/true));
  EXPECT_TRUE(IsValidMailbox("POSTMASTER", false, true));
  EXPECT_FALSE(IsValidMailbox("postmaster", false, false));
  EXPECT_FALSE(IsValidMailbox("webmaster", false, true));
}

TEST(IsValidDomainTest, AcceptsNamesAndLiterals) {
  EXPECT_TRUE(IsValidDomain("example.org", false));
  EXPECT_TRUE(IsValidDomain("[192.0.2.1]", false));
  EXPECT_TRUE(IsValidDomain("[IPv6:2001:db8::1]", false));
  EXPECT_TRUE(IsValidDomain("b\xC3\xBC\x63her.example", true));
  EXPECT_FALSE(IsValidDomain("b\xC3\xBC\x63her.example", false));
  EXPECT_FALSE(IsValidDomain("", false));
  EXPECT_FALSE(IsValidDomain("example.org.", false));
  EXPECT_FALSE(IsValidDomain("exa mple.org", false));
  EXPECT_TRUE(IsValidDomain(DomainOfLength(255), false));
  EXPECT_FALSE(IsValidDomain(DomainOfLength(256), false));
}

TEST(DomainOfTest, ReturnsLowerCasedDomain) {
  EXPECT_EQ(DomainOf("User@Example.ORG"), "example.org");
  EXPECT_EQ(DomainOf("\"a@b\"@Example.org"), "example.org");
  EXPECT_EQ(DomainOf("a@[192.0.2.1]"), "[192.0.2.1]");
}

TEST(DomainOfTest, EmptyForPostmasterOrMalformed) {
  EXPECT_EQ(DomainOf("postmaster"), "");
  EXPECT_EQ(DomainOf("a@"), "");
  EXPECT_EQ(DomainOf("a@b@c"), "");
  EXPECT_EQ(DomainOf(""), "");
}

}  // namespace
}  // namespace sluice::smtp
