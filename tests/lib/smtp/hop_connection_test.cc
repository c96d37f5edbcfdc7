// tests/lib/smtp/hop_connection_test.cc
//
// When a kept connection between stages may carry one more transaction (the idle, reuse
// count and reuse time limits, with the schema's defaults), and which first failures of a
// transaction on it mean only that the peer closed it while it was idle.
//
// Never: opens a socket (the connection is never connected here).
#include "lib/smtp/hop_connection.h"

#include <gtest/gtest.h>

#include "asio/io_context.hpp"
#include "lib/control/proto_defaults.h"

namespace sluice::smtp {
namespace {

using Clock = HopConnection::Clock;
using std::chrono::seconds;

class HopConnectionTest : public ::testing::Test {
 protected:
  HopConnectionTest() : hop_(std::make_unique<SmtpClient>(io_.get_executor(), ClientTimeouts{})) {
    control::ApplyDefaults(&limits_);
    hop_.opened_at = t0_;
    hop_.idle_since = t0_;
    hop_.transactions = 1;
  }

  asio::io_context io_;
  HopConnection hop_;
  sluice::v1::Limits limits_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(HopConnectionTest, DefaultsArePostfixConnectionCacheLimits) {
  EXPECT_EQ(limits_.hop_connection_idle_limit_seconds(), 2u);       // smtp_connection_cache_time_limit
  EXPECT_EQ(limits_.hop_connection_reuse_count_limit(), 0u);        // smtp_connection_reuse_count_limit
  EXPECT_EQ(limits_.hop_connection_reuse_time_limit_seconds(), 300u);  // smtp_connection_reuse_time_limit
}

TEST_F(HopConnectionTest, IdleLimit) {
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_ + seconds(1)), "");
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_ + seconds(2)), "hop_connection_idle");
  hop_.idle_since = t0_ + seconds(10);  // used again since
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_ + seconds(11)), "");
}

TEST_F(HopConnectionTest, ReuseCountLimitOnlyWhenSet) {
  hop_.transactions = 100000;
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_), "") << "0 means no limit";
  limits_.set_hop_connection_reuse_count_limit(3);
  hop_.transactions = 2;
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_), "");
  hop_.transactions = 3;
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_), "hop_connection_reuse_count");
}

TEST_F(HopConnectionTest, ReuseTimeLimitCountsFromTheOpening) {
  hop_.idle_since = t0_ + seconds(299);
  EXPECT_EQ(ReuseLimitReached(hop_, limits_, t0_ + seconds(300)), "hop_connection_reuse_time");
}

TEST_F(HopConnectionTest, ReusedOnlyFromTheSecondTransaction) {
  EXPECT_FALSE(hop_.reused());
  hop_.transactions = 2;
  EXPECT_TRUE(hop_.reused());
}

TEST(StaleConnectionTest, LostOr421IsStaleAnythingElseIsNot) {
  EXPECT_TRUE(StaleConnection(absl::UnavailableError("reading from x: connection closed")));
  EXPECT_FALSE(StaleConnection(absl::DeadlineExceededError("waiting for x: timeout")));
  EXPECT_FALSE(StaleConnection(absl::InternalError("bad reply")));
  Reply closing;
  closing.code = 421;
  closing.lines.push_back("4.4.2 filter.test Error: timeout exceeded");
  EXPECT_TRUE(StaleConnection(absl::StatusOr<Reply>(closing)));
  Reply refused;
  refused.code = 450;
  refused.lines.push_back("4.7.1 try later");
  EXPECT_FALSE(StaleConnection(absl::StatusOr<Reply>(refused)));
  Reply ok;
  ok.code = 250;
  ok.lines.push_back("2.0.0 Ok");
  EXPECT_FALSE(StaleConnection(absl::StatusOr<Reply>(ok)));
}

}  // namespace
}  // namespace sluice::smtp
