// tests/tools/sluicectl/duration_test.cc
//
// Durations typed by operators: units, combinations, what a plain number means, and the
// shapes that must be refused.
//
// Never: depends on the clock.
#include "tools/sluicectl/duration.h"

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::ctl {
namespace {

using ::sluice::testing::StatusIs;

TEST(DurationTest, ParsesEachUnit) {
  EXPECT_EQ(*ParseDuration("100ms", absl::Seconds(1)), absl::Milliseconds(100));
  EXPECT_EQ(*ParseDuration("5s", absl::Seconds(1)), absl::Seconds(5));
  EXPECT_EQ(*ParseDuration("5m", absl::Seconds(1)), absl::Minutes(5));
  EXPECT_EQ(*ParseDuration("2h", absl::Seconds(1)), absl::Hours(2));
  EXPECT_EQ(*ParseDuration("5d", absl::Seconds(1)), absl::Hours(120));
  EXPECT_EQ(*ParseDuration("1w", absl::Seconds(1)), absl::Hours(168));
}

TEST(DurationTest, AddsCombinedUnits) {
  EXPECT_EQ(*ParseDuration("1h30m", absl::Seconds(1)), absl::Minutes(90));
  EXPECT_EQ(*ParseDuration("1m30s500ms", absl::Seconds(1)), absl::Milliseconds(90500));
}

TEST(DurationTest, PlainNumberTakesTheGivenUnit) {
  EXPECT_EQ(*ParseDuration("100", absl::Seconds(1)), absl::Seconds(100));
  EXPECT_EQ(*ParseDuration("100", absl::Milliseconds(1)), absl::Milliseconds(100));
  EXPECT_EQ(*ParseDuration("0", absl::Seconds(1)), absl::ZeroDuration());
}

TEST(DurationTest, RefusesBadShapes) {
  for (const char* bad : {"", "s", "-5s", "5x", "1.5s", "5 s", "1h30", "99999999999999999999s", "5sm"}) {
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
