// tests/services/frontend/restrictions/dnsbl_test.cc
//
// dnsbl_sites in postscreen_dnsbl_sites syntax (domain, =filter with numbers, [n..m] ranges
// and [a;b] lists, *weight, negative weights), and the reversed query names for IPv4,
// IPv4-mapped IPv6 and IPv6 clients. The lookups themselves are proven against dnsmasq by
// tests/integration/test_frontend_dnsbl.py.
//
// Never: uses the network.
#include "services/frontend/restrictions/dnsbl.h"

#include <gtest/gtest.h>

namespace sluice::frontend::restrictions {
namespace {

TEST(DnsblSite, ParsesPostscreenSyntax) {
  auto plain = ParseDnsblSite("zen.example.test");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->domain, "zen.example.test");
  EXPECT_EQ(plain->weight, 1);
  EXPECT_TRUE(plain->Matches("127.0.0.9"));

  auto weighted = ParseDnsblSite("bl.example.test=127.0.0.[2..11]*3");
  ASSERT_TRUE(weighted.ok()) << weighted.status();
  EXPECT_EQ(weighted->domain, "bl.example.test");
  EXPECT_EQ(weighted->weight, 3);
  EXPECT_TRUE(weighted->Matches("127.0.0.2"));
  EXPECT_TRUE(weighted->Matches("127.0.0.11"));
  EXPECT_FALSE(weighted->Matches("127.0.0.12"));
  EXPECT_FALSE(weighted->Matches("127.0.1.2"));

  auto list = ParseDnsblSite("list.example.test=127.0.[0;1].[4;8..9]*-2");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->weight, -2);
  EXPECT_TRUE(list->Matches("127.0.1.4"));
  EXPECT_TRUE(list->Matches("127.0.0.9"));
  EXPECT_FALSE(list->Matches("127.0.2.4"));
  EXPECT_FALSE(list->Matches("127.0.0.5"));
}

TEST(DnsblSite, RefusesWhatIsNotASite) {
  EXPECT_FALSE(ParseDnsblSite("").ok());
  EXPECT_FALSE(ParseDnsblSite("bl.example=127.0.0").ok());
  EXPECT_FALSE(ParseDnsblSite("bl.example=127.0.0.[9..2]").ok());
  EXPECT_FALSE(ParseDnsblSite("bl.example*x").ok());
  EXPECT_FALSE(ParseDnsblSite("bl.example=127.0.0.256").ok());
}

TEST(DnsblSite, QueryNamesReverseTheAddress) {
  EXPECT_EQ(ReverseAddress("192.0.2.1"), "1.2.0.192");
  EXPECT_EQ(ReverseAddress("::ffff:192.0.2.1"), "1.2.0.192");
  EXPECT_EQ(ReverseAddress("2001:db8::1"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  EXPECT_EQ(ReverseAddress("not an address"), "");
}

}  // namespace
}  // namespace sluice::frontend::restrictions
