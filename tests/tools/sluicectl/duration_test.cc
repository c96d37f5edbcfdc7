// tests/tools/sluicectl/duration_test.cc
//
// Durations of sluicectl's flags: units, combinations, what a plain number means, the shapes
// that must be refused, and the short form tables print.
//
// Never: depends on the clock.
#include "tools/sluicectl/duration.h"

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::ctl {
namespace {

using ::sluice::testing::StatusIs;

TEST(DurationTest, ParsesUnitsAndCombinations) {
  EXPECT_EQ(*ParseDuration("100ms", absl::Seconds(1)), absl::Milliseconds(100));
  EXPECT_EQ(*ParseDuration("5s", absl::Seconds(1)), absl::Seconds(5));
  EXPECT_EQ(*ParseDuration("5m", absl::Seconds(1)), absl::Minutes(5));
  EXPECT_EQ(*ParseDuration("1h30m", absl::Seconds(1)), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("1.5s", absl::Seconds(1)), absl::Milliseconds(1500));
}

TEST(DurationTest, PlainNumberTakesTheGivenUnit) {
  EXPECT_EQ(*ParseDuration("100", absl::Seconds(1)), absl::Seconds(100));
  EXPECT_EQ(*ParseDuration("100", absl::Milliseconds(1)), absl::Milliseconds(100));
  EXPECT_EQ(*ParseDuration("0", absl::Seconds(1)), absl::ZeroDuration());
}

TEST(DurationTest, RefusesBadShapes) {
  for (const char* bad : {"", "s", "-5s", "5x", "5 s", "1h30", "inf", "99999999999999999999"}) {
    EXPECT_THAT(ParseDuration(bad, absl::Seconds(1)), StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
  }
}

TEST(DurationTest, FormatsSecondsShortest) {
  EXPECT_EQ(FormatSeconds(0), "0s");
  EXPECT_EQ(FormatSeconds(45), "45s");
  EXPECT_EQ(FormatSeconds(100), "1m40s");
  EXPECT_EQ(FormatSeconds(3600), "1h");
  EXPECT_EQ(FormatSeconds(432000), "5d");
  EXPECT_EQ(FormatSeconds(90061), "1d1h1m1s");
}

}  // namespace
}  // namespace sluice::ctl
