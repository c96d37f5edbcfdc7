// tests/lib/smtp/xforward_test.cc
//
// XFORWARD (Postfix XFORWARD_README): encoding only the announced attributes, within the
// 512-byte command limit, with Postfix's "IPV6:" address form; parsing with [UNAVAILABLE],
// [TEMPUNAVAIL], xtext, and the errors Postfix answers with 501.
//
// Never: checks an encoded command only by parsing it back (the wire text is checked too).
#include "lib/smtp/xforward.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::smtp {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;

const std::vector<std::string> kAll = {"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"};

XforwardAttrs FullAttrs() {
  XforwardAttrs a;
  a.name = "mail.client.example";
  a.addr = "192.0.2.1";
  a.port = "4711";
  a.proto = "ESMTP";
  a.helo = "client.example";
  a.ident = "s-1f2e3d";
  a.source = "REMOTE";
  return a;
}

bool SameAttrs(const XforwardAttrs& a, const XforwardAttrs& b) {
  return a.name == b.name && a.addr == b.addr && a.port == b.port && a.proto == b.proto &&
         a.helo == b.helo && a.ident == b.ident && a.source == b.source;
}

// Parses encoded command lines back, checking each is an XFORWARD command within bounds.
XforwardAttrs ParseCommands(const std::vector<std::string>& commands) {
  XforwardAttrs out;
  for (const std::string& c : commands) {
    EXPECT_LT(c.size() + 2, 512u) << c;
    EXPECT_EQ(c.rfind("XFORWARD ", 0), 0u) << c;
    EXPECT_THAT(ParseXforward(std::string_view(c).substr(9), out), IsOk()) << c;
  }
  return out;
}

TEST(EncodeXforwardTest, EncodesAllAnnouncedAttributesInOneCommand) {
  EXPECT_THAT(EncodeXforward(FullAttrs(), kAll),
              ElementsAre("XFORWARD NAME=mail.client.example ADDR=192.0.2.1 PORT=4711 PROTO=ESMTP "
                          "HELO=client.example IDENT=s-1f2e3d SOURCE=REMOTE"));
}

TEST(EncodeXforwardTest, EmitsOnlyAnnouncedAttributes) {
  // Postfix 2.x announces "XFORWARD NAME ADDR PROTO HELO" (XFORWARD_README example).
  EXPECT_THAT(EncodeXforward(FullAttrs(), {"NAME", "ADDR", "PROTO", "HELO"}),
              ElementsAre("XFORWARD NAME=mail.client.example ADDR=192.0.2.1 PROTO=ESMTP HELO=client.example"));
  EXPECT_THAT(EncodeXforward(FullAttrs(), {"ident"}), ElementsAre("XFORWARD IDENT=s-1f2e3d"));
  EXPECT_TRUE(EncodeXforward(FullAttrs(), {}).empty());
  EXPECT_TRUE(EncodeXforward(FullAttrs(), {"XCLIENT", "LOGIN"}).empty());
}

TEST(EncodeXforwardTest, AnnouncedNamesAreCaseInsensitive) {
  EXPECT_THAT(EncodeXforward(FullAttrs(), {"name", "Addr"}),
              ElementsAre("XFORWARD NAME=mail.client.example ADDR=192.0.2.1"));
}

TEST(EncodeXforwardTest, SkipsUnsetAttributes) {
  XforwardAttrs a;
  a.helo = "client.example";
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD HELO=client.example"));
  EXPECT_TRUE(EncodeXforward(XforwardAttrs(), kAll).empty());
}

TEST(EncodeXforwardTest, PrefixesIpv6AddressesLikePostfix) {
  XforwardAttrs a;
  a.addr = "2001:db8::1";
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD ADDR=IPV6:2001:db8::1"));
  a.addr = "IPv6:2001:db8::2";  // already prefixed: not twice
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD ADDR=IPv6:2001:db8::2"));
}

TEST(EncodeXforwardTest, SendsUnavailableMarkersAsIs) {
  XforwardAttrs a;
  a.name = std::string(kXforwardUnavailable);
  a.addr = "[unavailable]";
  a.helo = std::string(kXforwardTempUnavailable);
  EXPECT_THAT(EncodeXforward(a, kAll),
              ElementsAre("XFORWARD NAME=[UNAVAILABLE] ADDR=[UNAVAILABLE] HELO=[TEMPUNAVAIL]"));
}

TEST(EncodeXforwardTest, XtextEncodesPlusAndEquals) {
  XforwardAttrs a;
  a.ident = "a+b=c";
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD IDENT=a+2Bb+3Dc"));
}

TEST(EncodeXforwardTest, NeutersCharactersAServerMustRefuse) {
  // XFORWARD_README Note 1: no whitespace, controls or non-ASCII after decoding.
  XforwardAttrs a;
  a.helo = "bad helo\r\n\xC3\xB6";
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD HELO=bad?helo????"));
}

TEST(EncodeXforwardTest, SendsUnacceptableValuesAsUnavailable) {
  XforwardAttrs a;
  a.port = "http";
  a.source = "SOMEWHERE";
  a.name = "";
  EXPECT_THAT(EncodeXforward(a, kAll),
              ElementsAre("XFORWARD NAME=[UNAVAILABLE] PORT=[UNAVAILABLE] SOURCE=[UNAVAILABLE]"));
}

TEST(EncodeXforwardTest, SplitsLongSetsBelow512Bytes) {
  XforwardAttrs a = FullAttrs();
  a.name = std::string(250, 'n');
  a.helo = std::string(250, 'h');
  a.ident = std::string(200, 'i');
  const std::vector<std::string> commands = EncodeXforward(a, kAll);
  ASSERT_GE(commands.size(), 2u);
  for (const std::string& c : commands) EXPECT_LT(c.size() + 2, 512u) << c;
  EXPECT_TRUE(SameAttrs(ParseCommands(commands), a));
}

TEST(EncodeXforwardTest, FillsCommandsUpTo511BytesWithCrlf) {
  // NAME= (5) + 250, ADDR= (5) + 235: "XFORWARD " 9 + 255 + 1 + 240 = 505; + CRLF = 507.
  XforwardAttrs a;
  a.name = std::string(250, 'n');
  a.addr = std::string(235, 'a');
  EXPECT_EQ(EncodeXforward(a, kAll).size(), 1u);
  a.addr = std::string(240, 'a');  // 510 + 2 = 512: no longer strictly below the limit
  EXPECT_EQ(EncodeXforward(a, kAll).size(), 2u);
  a.addr = std::string(239, 'a');  // 509 + 2 = 511
  ASSERT_EQ(EncodeXforward(a, kAll).size(), 1u);
  EXPECT_EQ(EncodeXforward(a, kAll)[0].size() + 2, 511u);
}

TEST(EncodeXforwardTest, TruncatesValuesTo255Characters) {
  XforwardAttrs a;
  a.helo = std::string(300, 'h');
  const std::vector<std::string> commands = EncodeXforward(a, kAll);
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0], "XFORWARD HELO=" + std::string(255, 'h'));
}

TEST(EncodeXforwardTest, TruncationNeverSplitsAnEscape) {
  XforwardAttrs a;
  a.ident = std::string(254, 'i') + "+";  // encoded: 254 + "+2B" = 257
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD IDENT=" + std::string(254, 'i')));
  a.ident = std::string(253, 'i') + "+";  // 253 + 3 = 256
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD IDENT=" + std::string(253, 'i')));
  a.ident = std::string(252, 'i') + "+";  // 252 + 3 = 255 fits
  EXPECT_THAT(EncodeXforward(a, kAll), ElementsAre("XFORWARD IDENT=" + std::string(252, 'i') + "+2B"));
}

TEST(EncodeXforwardTest, EveryAttributeAtMaximumLengthStillFits) {
  XforwardAttrs a;
  a.name = std::string(300, 'n');
  a.addr = "2001:db8::" + std::string(300, 'f');
  a.port = "65535";
  a.proto = std::string(64, 'P');
  a.helo = std::string(300, '+');
  a.ident = std::string(300, '=');
  a.source = "LOCAL";
  const std::vector<std::string> commands = EncodeXforward(a, kAll);
  for (const std::string& c : commands) EXPECT_LT(c.size() + 2, 512u);
  const XforwardAttrs back = ParseCommands(commands);
  EXPECT_EQ(back.helo, std::string(85, '+'));  // 85 * "+2B" = 255
  EXPECT_EQ(back.port, "65535");
  EXPECT_EQ(back.source, "LOCAL");
}

TEST(ParseXforwardTest, ParsesPostfixReadmeExample) {
  XforwardAttrs a;
  ASSERT_THAT(ParseXforward("NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP", a), IsOk());
  ASSERT_THAT(ParseXforward("HELO=spike.porcupine.org", a), IsOk());
  EXPECT_EQ(a.name, "spike.porcupine.org");
  EXPECT_EQ(a.addr, "168.100.189.2");
  EXPECT_EQ(a.proto, "ESMTP");
  EXPECT_EQ(a.helo, "spike.porcupine.org");
  EXPECT_FALSE(a.port.has_value());
  EXPECT_FALSE(a.ident.has_value());
  EXPECT_FALSE(a.empty());
}

TEST(ParseXforwardTest, AttributeNamesAreCaseInsensitive) {
  XforwardAttrs a;
  ASSERT_THAT(ParseXforward("name=x.example Port=25 source=local", a), IsOk());
  EXPECT_EQ(a.name, "x.example");
  EXPECT_EQ(a.port, "25");
  EXPECT_EQ(a.source, "LOCAL");
}

TEST(ParseXforwardTest, RemovesIpv6Prefix) {
  XforwardAttrs a;
  ASSERT_THAT(ParseXforward("ADDR=IPV6:2001:db8::1", a), IsOk());
  EXPECT_EQ(a.addr, "2001:db8::1");
  ASSERT_THAT(ParseXforward("ADDR=ipv6:::1", a), IsOk());
  EXPECT_EQ(a.addr, "::1");
}

TEST(ParseXforwardTest, AcceptsUnavailableMarkersInAnyCase) {
  XforwardAttrs a;
  ASSERT_THAT(ParseXforward("NAME=[TEMPUNAVAIL] ADDR=[unavailable] PORT=[UNAVAILABLE] HELO=[UnAvailable] "
                            "PROTO=[UNAVAILABLE] SOURCE=[UNAVAILABLE] IDENT=[UNAVAILABLE]",
                            a),
              IsOk());
  EXPECT_EQ(a.name, kXforwardTempUnavailable);
  EXPECT_EQ(a.addr, kXforwardUnavailable);
  EXPECT_EQ(a.port, kXforwardUnavailable);
  EXPECT_EQ(a.helo, kXforwardUnavailable);
  EXPECT_EQ(a.source, kXforwardUnavailable);
}

TEST(ParseXforwardTest, DecodesXtext) {
  XforwardAttrs a;
  ASSERT_THAT(ParseXforward("IDENT=a+2Bb+3Dc HELO=+5Bx+5D", a), IsOk());
  EXPECT_EQ(a.ident, "a+b=c");
  EXPECT_EQ(a.helo, "[x]");
}

TEST(ParseXforwardTest, LaterCommandsOverwriteEarlierValues) {
  XforwardAttrs a;
  ASSERT_THAT(ParseXforward("NAME=one.example", a), IsOk());
  ASSERT_THAT(ParseXforward("NAME=two.example ADDR=192.0.2.9", a), IsOk());
  EXPECT_EQ(a.name, "two.example");
  EXPECT_EQ(a.addr, "192.0.2.9");
}

TEST(ParseXforwardTest, RejectsUnknownAttribute) {
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("NAME=x.example LOGIN=joe", a), StatusIs(absl::StatusCode::kInvalidArgument, "LOGIN"));
}

TEST(ParseXforwardTest, RejectsMissingValueOrEquals) {
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("   ", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("NAME", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("NAME=", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("=x", a), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseXforwardTest, RejectsBadXtext) {
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("HELO=a+4", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("HELO=a=b", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("HELO=\xC3\xB6", a), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseXforwardTest, RejectsDecodedWhitespaceAndControls) {
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("HELO=a+20b", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("NAME=a+0D+0AX-Header:+20y", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("IDENT=+00", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("IDENT=+C3+B6", a), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseXforwardTest, RejectsValuesOver255Characters) {
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("HELO=" + std::string(255, 'h'), a), IsOk());
  EXPECT_THAT(ParseXforward("HELO=" + std::string(256, 'h'), a), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseXforwardTest, ValidatesPortProtoAndSource) {
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("PORT=65535", a), IsOk());
  EXPECT_THAT(ParseXforward("PORT=65536", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("PORT=25x", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("PORT=1234567", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("PROTO=" + std::string(64, 'P'), a), IsOk());
  EXPECT_THAT(ParseXforward("PROTO=" + std::string(65, 'P'), a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseXforward("SOURCE=REMOTE", a), IsOk());
  EXPECT_THAT(ParseXforward("SOURCE=NEARBY", a), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseXforwardTest, BadCommandChangesNothing) {
  XforwardAttrs a;
  a.name = "kept.example";
  EXPECT_THAT(ParseXforward("NAME=new.example PORT=x", a), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(a.name, "kept.example");
  EXPECT_FALSE(a.port.has_value());
}

TEST(XforwardAttributeListTest, NamesEveryAttributeWeParse) {
  EXPECT_EQ(XforwardAttributeList(), "NAME ADDR PORT PROTO HELO IDENT SOURCE");
  XforwardAttrs a;
  EXPECT_THAT(ParseXforward("NAME=n ADDR=a PORT=1 PROTO=p HELO=h IDENT=i SOURCE=LOCAL", a), IsOk());
}

}  // namespace
}  // namespace sluice::smtp
