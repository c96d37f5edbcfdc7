// tests/services/frontend/admission_test.cc
//
// Admission: the session limit, per-client concurrent connections, per-client connection,
// message and recipient rates in anvil's fixed windows, exemptions, and the sweep that keeps
// the client table as small as the set of active clients. Time is a fake clock.
//
// Never: sleeps; depends on the real clock.
#include "services/frontend/admission.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "lib/net/client_key.h"

namespace sluice::frontend {
namespace {

using Clock = Admission::Clock;

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest() {
    limits_.set_max_sessions(100);
    limits_.set_per_client_connection_limit(0);
    limits_.set_rate_time_unit_seconds(60);
    admission_.set_clock_for_test([this] { return now_; });
  }
  AdmitDecision Admit(const std::string& client, bool exempt = false) {
    std::unique_ptr<Admission::Ticket> t;
    AdmitDecision d = admission_.AdmitLocally(client, exempt, limits_, t);
    EXPECT_EQ(d == AdmitDecision::kAdmit, t != nullptr);
    if (t) tickets_.push_back(std::move(t));
    return d;
  }

  sluice::v1::Limits limits_;
  Admission admission_;
  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1);
  std::vector<std::unique_ptr<Admission::Ticket>> tickets_;
};

TEST_F(AdmissionTest, MaxSessionsRefusesTheNextAndAFreedSlotAdmitsAgain) {
  limits_.set_max_sessions(2);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("192.0.2.2"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("192.0.2.3"), AdmitDecision::kMaxSessions);
  EXPECT_EQ(admission_.sessions(), 2u);
  tickets_.erase(tickets_.begin());
  EXPECT_EQ(admission_.sessions(), 1u);
  EXPECT_EQ(Admit("192.0.2.3"), AdmitDecision::kAdmit);
}

TEST_F(AdmissionTest, MaxSessionsAppliesToExemptClientsToo) {
  limits_.set_max_sessions(1);
  EXPECT_EQ(Admit("127.0.0.1", true), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("127.0.0.1", true), AdmitDecision::kMaxSessions);
}

TEST_F(AdmissionTest, PerClientConnectionLimitCountsEachClientSeparately) {
  limits_.set_per_client_connection_limit(2);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kPerClientConnections);
  EXPECT_EQ(Admit("192.0.2.2"), AdmitDecision::kAdmit);
  EXPECT_EQ(admission_.sessions(), 3u) << "a refused connection gives its session slot back";
  tickets_.erase(tickets_.begin());
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
}

TEST_F(AdmissionTest, ExemptClientsSkipPerClientLimits) {
  limits_.set_per_client_connection_limit(1);
  limits_.set_per_client_connection_rate_limit(1);
  limits_.set_per_client_message_rate_limit(1);
  limits_.set_per_client_recipient_rate_limit(1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Admit("127.0.0.1", true), AdmitDecision::kAdmit);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(admission_.AllowMessageLocally("127.0.0.1", true, limits_));
    EXPECT_TRUE(admission_.AllowRecipientLocally("127.0.0.1", true, limits_));
  }
  EXPECT_EQ(admission_.tracked_clients(), 1u) << "counted while connected, but not limited";
}

TEST_F(AdmissionTest, ConnectionsHeldWhileExemptCountOnceTheExemptionIsLifted) {
  EXPECT_EQ(Admit("127.0.0.2", true), AdmitDecision::kAdmit);
  // limit_exemptions and the limit change live: the connection held counts.
  limits_.set_per_client_connection_limit(1);
  EXPECT_EQ(Admit("127.0.0.2", false), AdmitDecision::kPerClientConnections);
  tickets_.clear();
  EXPECT_EQ(Admit("127.0.0.2", false), AdmitDecision::kAdmit);
}

TEST_F(AdmissionTest, ConnectionRateIsAFixedWindowFromTheFirstEvent) {
  limits_.set_per_client_connection_rate_limit(3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kConnectionRate);
  now_ += std::chrono::seconds(59);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kConnectionRate);
  EXPECT_EQ(Admit("192.0.2.2"), AdmitDecision::kAdmit) << "another client has its own window";
  now_ += std::chrono::seconds(1);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit) << "a new window starts after one time unit";
}

TEST_F(AdmissionTest, MessageAndRecipientRates) {
  limits_.set_per_client_message_rate_limit(2);
  limits_.set_per_client_recipient_rate_limit(3);
  limits_.set_rate_time_unit_seconds(10);
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.1", false, limits_));
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.1", false, limits_));
  EXPECT_FALSE(admission_.AllowMessageLocally("192.0.2.1", false, limits_));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(admission_.AllowRecipientLocally("192.0.2.1", false, limits_));
  EXPECT_FALSE(admission_.AllowRecipientLocally("192.0.2.1", false, limits_));
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.9", false, limits_));
  now_ += std::chrono::seconds(10);
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.1", false, limits_));
  EXPECT_TRUE(admission_.AllowRecipientLocally("192.0.2.1", false, limits_));
}

TEST_F(AdmissionTest, ZeroMeansNoLimit) {
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
    EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.1", false, limits_));
    EXPECT_TRUE(admission_.AllowRecipientLocally("192.0.2.1", false, limits_));
  }
}

TEST_F(AdmissionTest, LimitsChangeLiveForTheNextDecision) {
  limits_.set_per_client_connection_limit(1);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kPerClientConnections);
  limits_.set_per_client_connection_limit(3);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);
}

TEST_F(AdmissionTest, SweepDropsIdleClientsWithExpiredWindowsOnly) {
  limits_.set_per_client_connection_limit(10);
  limits_.set_per_client_message_rate_limit(100);
  EXPECT_EQ(Admit("192.0.2.1"), AdmitDecision::kAdmit);  // stays connected
  EXPECT_EQ(Admit("192.0.2.2"), AdmitDecision::kAdmit);
  tickets_.pop_back();  // 192.0.2.2 disconnects
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.3", false, limits_));  // a live rate window
  EXPECT_EQ(admission_.tracked_clients(), 3u);
  now_ += std::chrono::seconds(61);
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.4", false, limits_));  // fresh window
  EXPECT_EQ(Admit("192.0.2.5"), AdmitDecision::kAdmit);  // triggers the sweep
  // 192.0.2.2 (no connection) and 192.0.2.3 (expired window) are gone.
  EXPECT_EQ(admission_.tracked_clients(), 3u);
  // Releasing after a sweep is harmless and the counts stay right.
  tickets_.clear();
  EXPECT_EQ(admission_.sessions(), 0u);
  now_ += std::chrono::seconds(61);
  EXPECT_EQ(Admit("192.0.2.6"), AdmitDecision::kAdmit);
  EXPECT_EQ(admission_.tracked_clients(), 1u);
}

TEST_F(AdmissionTest, ManyClientsDoNotAccumulate) {
  limits_.set_per_client_connection_limit(10);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(Admit("198.51.100." + std::to_string(i % 250) + "/" + std::to_string(i)), AdmitDecision::kAdmit);
    tickets_.clear();
    now_ += std::chrono::seconds(1);
  }
  EXPECT_LE(admission_.tracked_clients(), 61u);
}

// IPv6 clients are one client per ipv6_client_prefix_length network (Postfix 3.8's
// smtpd_client_ipv6_prefix_length 84): a sender rotating through its network is still limited.
TEST_F(AdmissionTest, Ipv6ClientsAreCountedByTheirPrefix) {
  limits_.set_per_client_connection_limit(2);
  limits_.set_ipv6_client_prefix_length(84);
  EXPECT_EQ(Admit("2001:db8:1:2::1"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("2001:db8:1:2:0:fff:ffff:9"), AdmitDecision::kAdmit);  // same /84
  EXPECT_EQ(Admit("2001:db8:1:2::77"), AdmitDecision::kPerClientConnections);
  EXPECT_EQ(Admit("2001:db8:1:2:0:1000::1"), AdmitDecision::kAdmit);  // the next /84
  limits_.set_ipv6_client_prefix_length(128);
  EXPECT_EQ(Admit("2001:db8:1:2::77"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("2001:db8:1:2::77"), AdmitDecision::kAdmit);
  EXPECT_EQ(Admit("2001:db8:1:2::77"), AdmitDecision::kPerClientConnections);
}

TEST_F(AdmissionTest, Ipv6PrefixAppliesToRatesAndLeavesIpv4Alone) {
  limits_.set_per_client_message_rate_limit(1);
  limits_.set_ipv6_client_prefix_length(64);
  EXPECT_TRUE(admission_.AllowMessageLocally("2001:db8::1", false, limits_));
  EXPECT_FALSE(admission_.AllowMessageLocally("2001:db8::2:3", false, limits_));
  EXPECT_TRUE(admission_.AllowMessageLocally("2001:db8:0:1::1", false, limits_));
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.1", false, limits_));
  EXPECT_TRUE(admission_.AllowMessageLocally("192.0.2.2", false, limits_));
  // An IPv4-mapped address is its IPv4 client.
  EXPECT_FALSE(admission_.AllowMessageLocally("::ffff:192.0.2.2", false, limits_));
}

TEST(ClientKeyTest, NamesTheNetworkOfAnIpv6ClientAndTheAddressOfAnIpv4One) {
  EXPECT_EQ(net::ClientKey("2001:db8:1:2:3:4:5:6", 84), "2001:db8:1:2:3::/84");
  EXPECT_EQ(net::ClientKey("2001:db8:1:2:3:fff4:5:6", 84), "2001:db8:1:2:3:f000::/84");
  EXPECT_EQ(net::ClientKey("2001:db8::1", 128), "2001:db8::1");
  EXPECT_EQ(net::ClientKey("2001:db8::1", 0), "2001:db8::1");
  EXPECT_EQ(net::ClientKey("fe80::1%eth0", 64), "fe80::/64");
  EXPECT_EQ(net::ClientKey("192.0.2.7", 84), "192.0.2.7");
  EXPECT_EQ(net::ClientKey("::ffff:192.0.2.7", 84), "192.0.2.7");
  EXPECT_EQ(net::ClientKey("not-an-address", 84), "not-an-address");
}

}  // namespace
}  // namespace sluice::frontend
