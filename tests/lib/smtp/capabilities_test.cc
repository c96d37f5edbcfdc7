// tests/lib/smtp/capabilities_test.cc
//
// EHLO reply -> Capabilities, from the wire text of a real Postfix 3.7 EHLO reply through
// the reply parser, plus the older "AUTH=" form and odd SIZE values.
//
// Never: builds the Reply by hand where a wire reply can be parsed instead.
#include "lib/smtp/capabilities.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/smtp/reply_parser.h"

namespace sluice::smtp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

Capabilities FromWire(std::string_view wire) {
  Reply r;
  ReplyParseResult res = ParseReply(wire, r);
  EXPECT_EQ(res.status, ReplyStatus::kComplete) << wire;
  EXPECT_EQ(res.consumed, wire.size());
  return ParseCapabilities(r);
}

// Postfix 3.7 smtpd with TLS, SASL (broken_sasl_auth_clients=yes) and xforward_hosts set.
constexpr std::string_view kPostfixEhlo =
    "250-mx.example.org\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250-VRFY\r\n"
    "250-ETRN\r\n"
    "250-STARTTLS\r\n"
    "250-AUTH PLAIN LOGIN\r\n"
    "250-AUTH=PLAIN LOGIN\r\n"
    "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n"
    "250-SMTPUTF8\r\n"
    "250 CHUNKING\r\n";

TEST(CapabilitiesTest, ParsesARealPostfixEhloReply) {
  const Capabilities c = FromWire(kPostfixEhlo);
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.size);
  EXPECT_EQ(c.size_limit, 10240000u);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.enhanced_status_codes);
  EXPECT_TRUE(c.eightbitmime);
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.chunking);
  EXPECT_TRUE(c.xforward);
  EXPECT_THAT(c.xforward_attrs, ElementsAre("NAME", "ADDR", "PROTO", "HELO", "SOURCE", "PORT", "IDENT"));
  EXPECT_THAT(c.auth, ElementsAre("PLAIN", "LOGIN"));  // both forms, no duplicates
}

TEST(CapabilitiesTest, MinimalServerAnnouncesNothing) {
  const Capabilities c = FromWire("250 mx.example.org\r\n");
  EXPECT_FALSE(c.pipelining);
  EXPECT_FALSE(c.size);
  EXPECT_FALSE(c.eightbitmime);
  EXPECT_FALSE(c.enhanced_status_codes);
  EXPECT_FALSE(c.smtputf8);
  EXPECT_FALSE(c.dsn);
  EXPECT_FALSE(c.starttls);
  EXPECT_FALSE(c.chunking);
  EXPECT_FALSE(c.xforward);
  EXPECT_THAT(c.xforward_attrs, IsEmpty());
  EXPECT_THAT(c.auth, IsEmpty());
}

TEST(CapabilitiesTest, GreetingLineIsNotAKeyword) {
  // The first line is the server's name even if it spells a keyword.
  const Capabilities c = FromWire("250-PIPELINING\r\n250 SIZE\r\n");
  EXPECT_FALSE(c.pipelining);
  EXPECT_TRUE(c.size);
}

TEST(CapabilitiesTest, KeywordsAreCaseInsensitive) {
  const Capabilities c = FromWire("250-mx\r\n250-pipelining\r\n250-xforward name addr\r\n250 auth cram-md5\r\n");
  EXPECT_TRUE(c.pipelining);
  EXPECT_THAT(c.xforward_attrs, ElementsAre("NAME", "ADDR"));
  EXPECT_THAT(c.auth, ElementsAre("CRAM-MD5"));
}

TEST(CapabilitiesTest, SizeWithoutOrWithBadNumberMeansNoLimit) {
  EXPECT_EQ(FromWire("250-mx\r\n250 SIZE\r\n").size_limit, 0u);
  EXPECT_TRUE(FromWire("250-mx\r\n250 SIZE\r\n").size);
  EXPECT_EQ(FromWire("250-mx\r\n250 SIZE 10M\r\n").size_limit, 0u);
  EXPECT_EQ(FromWire("250-mx\r\n250 SIZE 99999999999999999999999\r\n").size_limit, 0u);
  EXPECT_EQ(FromWire("250-mx\r\n250 SIZE 0\r\n").size_limit, 0u);
}

TEST(CapabilitiesTest, OnlyOldStyleAuthIsEnough) {
  EXPECT_THAT(FromWire("250-mx\r\n250 AUTH=LOGIN PLAIN\r\n").auth, ElementsAre("LOGIN", "PLAIN"));
}

TEST(CapabilitiesTest, ToleratesExtraSpaces) {
  const Capabilities c = FromWire("250-mx\r\n250-SIZE   5000\r\n250 XFORWARD  NAME   ADDR \r\n");
  EXPECT_EQ(c.size_limit, 5000u);
  EXPECT_THAT(c.xforward_attrs, ElementsAre("NAME", "ADDR"));
}

TEST(CapabilitiesTest, NegativeReplyMeansNoCapabilities) {
  // A server that refuses EHLO (502) is then spoken to with HELO: nothing is announced.
  const Capabilities c = FromWire("502 5.5.2 Error: command not recognized\r\n");
  EXPECT_FALSE(c.pipelining);
  Reply r{554, "", {"mx", "PIPELINING"}};
  EXPECT_FALSE(ParseCapabilities(r).pipelining);
}

}  // namespace
}  // namespace sluice::smtp
