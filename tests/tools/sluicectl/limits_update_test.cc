// tests/tools/sluicectl/limits_update_test.cc
//
// `limits set KEY=VALUE` into UpdateLimitsRequest by reflection: each field type, durations
// where the schema says so, lists, CIDR elements, the schema's bounds, the mask naming exactly
// the keys given -- and the drift view `limits get` builds from several replicas.
//
// Never: hard-codes what the schema already says except the field names it uses.
#include "tools/sluicectl/limits_update.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::ctl {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;

absl::StatusOr<sluice::v1::UpdateLimitsRequest> Parse(std::vector<std::string> assignments) {
  return ParseLimitAssignments(assignments);
}

const google::protobuf::FieldDescriptor* Field(const char* name) {
  return sluice::v1::Limits::descriptor()->FindFieldByName(name);
}

TEST(LimitsUpdateTest, SetsIntegersAndNamesThemInTheMask) {
  auto r = Parse({"per_client_connection_limit=25", "message_size_limit_bytes=52428800"});
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->limits().has_per_client_connection_limit());
  EXPECT_EQ(r->limits().per_client_connection_limit(), 25u);
  EXPECT_EQ(r->limits().message_size_limit_bytes(), 52428800u);
  EXPECT_THAT(r->update_mask().paths(), ElementsAre("per_client_connection_limit", "message_size_limit_bytes"));
  EXPECT_FALSE(r->limits().has_max_sessions());  // nothing else is sent
}

TEST(LimitsUpdateTest, ZeroIsAValueNotAnAbsence) {
  auto r = Parse({"per_client_connection_limit=0"});
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->limits().has_per_client_connection_limit());
  EXPECT_THAT(r->update_mask().paths(), ElementsAre("per_client_connection_limit"));
}

TEST(LimitsUpdateTest, Uint64TakesValuesBeyond32Bits) {
  auto r = Parse({"queue_max_bytes=10000000000"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->limits().queue_max_bytes(), 10000000000u);
}

TEST(LimitsUpdateTest, DurationFieldsTakeUnits) {
  auto r = Parse({"proxy_timeout_seconds=5m", "maximal_queue_lifetime_seconds=2d", "maximal_backoff_seconds=1h30m"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->limits().proxy_timeout_seconds(), 300u);
  EXPECT_EQ(r->limits().maximal_queue_lifetime_seconds(), 172800u);
  EXPECT_EQ(r->limits().maximal_backoff_seconds(), 5400u);
}

TEST(LimitsUpdateTest, DurationFieldPlainNumberIsTheFieldsUnit) {
  auto r = Parse({"proxy_timeout_seconds=100"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->limits().proxy_timeout_seconds(), 100u);
}

TEST(LimitsUpdateTest, DurationRoundsUpToTheFieldsUnitAsTheStagesDo) {
  auto r = Parse({"proxy_timeout_seconds=1500ms"});  // a timeout never becomes zero
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->limits().proxy_timeout_seconds(), 2u);
}

TEST(LimitsUpdateTest, UnitsOnlyWhereTheSchemaSaysDuration) {
  EXPECT_THAT(Parse({"max_sessions=5m"}), StatusIs(absl::StatusCode::kInvalidArgument, "max_sessions: '5m'"));
}

TEST(LimitsUpdateTest, ListsAreCommaSeparatedAndReplaceWhole) {
  auto r = Parse({"limit_exemptions=10.0.0.0/8, 2001:db8::/32"});
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(r->limits().limit_exemptions(), ElementsAre("10.0.0.0/8", "2001:db8::/32"));
  EXPECT_THAT(r->update_mask().paths(), ElementsAre("limit_exemptions"));
}

TEST(LimitsUpdateTest, EmptyListClearsIt) {
  auto r = Parse({"limit_exemptions="});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->limits().limit_exemptions_size(), 0);
  EXPECT_THAT(r->update_mask().paths(), ElementsAre("limit_exemptions"));
}

TEST(LimitsUpdateTest, CidrListElementsAreChecked) {
  EXPECT_THAT(Parse({"limit_exemptions=10.0.0.0/8,not-a-net"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "limit_exemptions"));
}

TEST(LimitsUpdateTest, UnknownKeyIsNamed) {
  EXPECT_THAT(Parse({"max_sessions=5", "max_sesions=5"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown limit key \"max_sesions\""));
}

TEST(LimitsUpdateTest, RefusesMalformedAssignments) {
  EXPECT_THAT(Parse({"max_sessions"}), StatusIs(absl::StatusCode::kInvalidArgument, "KEY=VALUE"));
  EXPECT_THAT(Parse({"=5"}), StatusIs(absl::StatusCode::kInvalidArgument, "KEY=VALUE"));
  EXPECT_THAT(Parse({"max_sessions="}), StatusIs(absl::StatusCode::kInvalidArgument, "needs a value"));
  EXPECT_THAT(Parse({"max_sessions=5", "max_sessions=6"}), StatusIs(absl::StatusCode::kInvalidArgument, "twice"));
}

TEST(LimitsUpdateTest, RefusesWrongTypes) {
  EXPECT_THAT(Parse({"max_sessions=lots"}), StatusIs(absl::StatusCode::kInvalidArgument, "limit max_sessions: 'lots'"));
  EXPECT_THAT(Parse({"max_sessions=-1"}), StatusIs(absl::StatusCode::kInvalidArgument, "max_sessions"));
  EXPECT_THAT(Parse({"per_client_message_rate_limit=4294967296"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "per_client_message_rate_limit"));
}

TEST(LimitsUpdateTest, AppliesTheSchemaBounds) {
  EXPECT_THAT(Parse({"max_sessions=0"}), StatusIs(absl::StatusCode::kInvalidArgument, "below the minimum 1"));
  EXPECT_THAT(Parse({"line_length_limit_bytes=65537"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "above the maximum 65536"));
  EXPECT_THAT(Parse({"proxy_timeout_seconds=2h"}), StatusIs(absl::StatusCode::kInvalidArgument, "maximum 3600"));
  EXPECT_THAT(Parse({"line_length_limit_bytes=65536", "max_sessions=1"}), IsOk());
}

TEST(LimitsUpdateTest, EveryFieldIsListedInNumberOrder) {
  auto fields = LimitFields();
  ASSERT_EQ(static_cast<int>(fields.size()), sluice::v1::Limits::descriptor()->field_count());
  EXPECT_EQ(fields.front()->name(), "max_sessions");
  for (size_t i = 1; i < fields.size(); ++i) EXPECT_LT(fields[i - 1]->number(), fields[i]->number());
}

TEST(LimitsUpdateTest, ValueTextShowsUnsetListsAndDurations) {
  sluice::v1::Limits l;
  EXPECT_EQ(LimitValueText(l, Field("max_sessions")), "-");
  EXPECT_EQ(LimitValueText(l, Field("limit_exemptions")), "(none)");
  l.set_max_sessions(100);
  l.set_proxy_timeout_seconds(100);
  l.set_error_sleep_seconds(1);
  l.add_limit_exemptions("127.0.0.0/8");
  l.add_limit_exemptions("::1/128");
  EXPECT_EQ(LimitValueText(l, Field("max_sessions")), "100");
  EXPECT_EQ(LimitValueText(l, Field("proxy_timeout_seconds")), "100 (1m40s)");
  EXPECT_EQ(LimitValueText(l, Field("error_sleep_seconds")), "1");
  EXPECT_EQ(LimitValueText(l, Field("limit_exemptions")), "127.0.0.0/8,::1/128");
}

TEST(LimitsUpdateTest, DriftNamesTheFieldsThatDiffer) {
  sluice::v1::Limits a, b, c;
  a.set_max_sessions(100);
  b.set_max_sessions(100);
  c.set_max_sessions(200);
  a.set_proxy_timeout_seconds(100);
  b.set_proxy_timeout_seconds(100);
  c.set_proxy_timeout_seconds(100);
  b.add_limit_exemptions("10.0.0.0/8");
  EXPECT_THAT(DriftFields({&a, &b}), ElementsAre("limit_exemptions"));
  EXPECT_THAT(DriftFields({&a, &b, &c}), ElementsAre("max_sessions", "limit_exemptions"));
  EXPECT_THAT(DriftFields({&a}), ElementsAre());
}

}  // namespace
}  // namespace sluice::ctl
