// tests/services/frontend/relay_policy_test.cc
//
// Never an open relay: mynetworks may send anywhere; everyone else only to accepted_domains
// ("example.com" exactly, ".example.com" its subdomains), case-insensitively, with a
// trailing root dot naming the same domain; "postmaster" is always accepted (RFC 5321
// §4.5.1); address literals only from trusted clients.
//
// Never: depends on DNS.
#include "services/frontend/relay_policy.h"

#include <gtest/gtest.h>

namespace sluice::frontend {
namespace {

RelayPolicy Policy() {
  auto p = RelayPolicy::Create({"127.0.0.0/8", "2001:db8::/32"}, {"Example.NET", ".sub.example.org"});
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

TEST(RelayPolicy, MynetworksByAddress) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.ClientInMynetworks("127.0.0.1"));
  EXPECT_TRUE(p.ClientInMynetworks("127.255.1.2"));
  EXPECT_TRUE(p.ClientInMynetworks("2001:db8::7"));
  EXPECT_FALSE(p.ClientInMynetworks("192.0.2.1"));
  EXPECT_FALSE(p.ClientInMynetworks("2001:db9::7"));
  EXPECT_FALSE(p.ClientInMynetworks("not-an-address"));
}

TEST(RelayPolicy, TrustedClientsRelayAnywhere) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.RecipientAllowed("anyone@example.com", true));
  EXPECT_TRUE(p.RecipientAllowed("x@[192.0.2.1]", true));
}

TEST(RelayPolicy, ExactDomainMatchesThatNameOnly) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.RecipientAllowed("bob@example.net", false));
  EXPECT_FALSE(p.RecipientAllowed("bob@mail.example.net", false));
  EXPECT_FALSE(p.RecipientAllowed("bob@example.net.evil.test", false));
  EXPECT_FALSE(p.RecipientAllowed("bob@notexample.net", false));
  EXPECT_FALSE(p.RecipientAllowed("bob@example.com", false));
}

TEST(RelayPolicy, DotPatternMatchesSubdomainsOnly) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.RecipientAllowed("a@x.sub.example.org", false));
  EXPECT_TRUE(p.RecipientAllowed("a@deep.x.sub.example.org", false));
  EXPECT_FALSE(p.RecipientAllowed("a@sub.example.org", false));
  EXPECT_FALSE(p.RecipientAllowed("a@xsub.example.org", false));
  EXPECT_FALSE(p.RecipientAllowed("a@example.org", false));
}

TEST(RelayPolicy, CaseAndTrailingDot) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.RecipientAllowed("Bob@EXAMPLE.net", false));
  EXPECT_TRUE(p.DomainAccepted("example.net."));
  EXPECT_TRUE(p.DomainAccepted("X.SUB.Example.Org."));
  EXPECT_FALSE(p.DomainAccepted("."));
  EXPECT_FALSE(p.DomainAccepted(""));
  EXPECT_FALSE(p.RecipientAllowed("bob@", false));
}

TEST(RelayPolicy, PostmasterIsAlwaysAccepted) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.RecipientAllowed("postmaster", false));
  EXPECT_TRUE(p.RecipientAllowed("PostMaster", false));
  EXPECT_FALSE(p.RecipientAllowed("postmaster@example.com", false)) << "only the bare form";
  EXPECT_FALSE(p.RecipientAllowed("bob", false)) << "no domain, not postmaster";
}

TEST(RelayPolicy, AddressLiteralsNeverForOutsiders) {
  RelayPolicy p = Policy();
  EXPECT_FALSE(p.RecipientAllowed("x@[192.0.2.1]", false));
  EXPECT_FALSE(p.RecipientAllowed("x@[IPv6:2001:db8::1]", false));
}

TEST(RelayPolicy, QuotedLocalPartsUseTheirDomain) {
  RelayPolicy p = Policy();
  EXPECT_TRUE(p.RecipientAllowed("\"x@evil.test\"@example.net", false));
  EXPECT_FALSE(p.RecipientAllowed("\"x@example.net\"@evil.test", false));
}

TEST(RelayPolicy, NoAcceptedDomainsMeansOnlyMynetworks) {
  auto p = RelayPolicy::Create({"127.0.0.0/8"}, {});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->RecipientAllowed("bob@example.net", false));
  EXPECT_TRUE(p->RecipientAllowed("bob@example.net", true));
}

TEST(RelayPolicy, BadConfigIsRefused) {
  EXPECT_FALSE(RelayPolicy::Create({"300.0.0.0/8"}, {}).ok());
  EXPECT_FALSE(RelayPolicy::Create({}, {"."}).ok());
}

}  // namespace
}  // namespace sluice::frontend
