// tests/services/reinject/delivery/backoff_test.cc -- Postfix's doubling retry delays.
#include "services/reinject/delivery/backoff.h"

#include <gtest/gtest.h>

namespace sluice::reinject {
namespace {

TEST(BackoffTest, DoublesFromMinimalAndCapsAtMaximal) {
  const absl::Duration min = absl::Seconds(300), max = absl::Seconds(4000);
  EXPECT_EQ(RetryDelay(1, min, max), absl::Seconds(300));
  EXPECT_EQ(RetryDelay(2, min, max), absl::Seconds(600));
  EXPECT_EQ(RetryDelay(3, min, max), absl::Seconds(1200));
  EXPECT_EQ(RetryDelay(4, min, max), absl::Seconds(2400));
  EXPECT_EQ(RetryDelay(5, min, max), absl::Seconds(4000));
  EXPECT_EQ(RetryDelay(6, min, max), absl::Seconds(4000));
  EXPECT_EQ(RetryDelay(1000000, min, max), absl::Seconds(4000));
}

TEST(BackoffTest, ZeroAttemptsIsTheMinimum) {
  EXPECT_EQ(RetryDelay(0, absl::Seconds(300), absl::Seconds(4000)), absl::Seconds(300));
}

TEST(BackoffTest, MaximalBelowMinimalWins) {
  EXPECT_EQ(RetryDelay(3, absl::Seconds(300), absl::Seconds(100)), absl::Seconds(100));
}

}  // namespace
}  // namespace sluice::reinject
