// tests/lib/control/field_path_config_test.cc
//
// Dotted-path setters and the text conversions shared by YAML, flags and schema defaults:
// durations, enums, bools, lists, and errors that name the path.
//
// Never: depends on the schema's default values (proto_defaults_config_test.cc covers them).
#include "lib/control/field_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include "google/protobuf/descriptor.pb.h"
#include "lib/control/hostname.h"
#include "lib/status/status_matchers.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FieldPathTest, SetsNestedIntegerAndCreatesTheSection) {
  sluice::v1::FrontendConfig c;
  ASSERT_THAT(SetFieldFromString(&c, "limits.max_sessions", "250"), IsOk());
  EXPECT_TRUE(c.has_limits());
  EXPECT_TRUE(c.limits().has_max_sessions());
  EXPECT_EQ(c.limits().max_sessions(), 250u);
}

TEST(FieldPathTest, SetsTopLevelAndServerStrings) {
  sluice::v1::FrontendConfig c;
  ASSERT_THAT(SetFieldFromString(&c, "server.smtp_listen", "127.0.0.1:2525"), IsOk());
  ASSERT_THAT(SetFieldFromString(&c, "filter", "filter-bridge:10025"), IsOk());
  EXPECT_EQ(c.server().smtp_listen(), "127.0.0.1:2525");
  EXPECT_EQ(c.filter(), "filter-bridge:10025");
}

TEST(FieldPathTest, DurationStringsConvertToSecondsRoundingUp) {
  sluice::v1::FrontendConfig c;
  const char* path = "limits.proxy_timeout_seconds";
  ASSERT_THAT(SetFieldFromString(&c, path, "5m"), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 300u);
  ASSERT_THAT(SetFieldFromString(&c, path, "1h30m"), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 5400u);
  ASSERT_THAT(SetFieldFromString(&c, path, "100s"), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 100u);
  ASSERT_THAT(SetFieldFromString(&c, path, "250ms"), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 1u);
  ASSERT_THAT(SetFieldFromString(&c, path, "1500ms"), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 2u);
  ASSERT_THAT(SetFieldFromString(&c, path, "42"), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 42u);
}

TEST(FieldPathTest, DurationsTakePostfixDaysAndWeeks) {
  sluice::v1::Limits l;
  ASSERT_THAT(SetFieldFromString(&l, "maximal_queue_lifetime_seconds", "5d"), IsOk());
  EXPECT_EQ(l.maximal_queue_lifetime_seconds(), 432000u);
  ASSERT_THAT(SetFieldFromString(&l, "maximal_queue_lifetime_seconds", "1w1d12h"), IsOk());
  EXPECT_EQ(l.maximal_queue_lifetime_seconds(), 734400u);
  EXPECT_THAT(SetFieldFromString(&l, "maximal_queue_lifetime_seconds", "1.5d"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a duration"));
}

TEST(FieldPathTest, RejectsBadAndNegativeDurations) {
  sluice::v1::FrontendConfig c;
  EXPECT_THAT(SetFieldFromString(&c, "limits.proxy_timeout_seconds", "soon"),
              StatusIs(absl::StatusCode::kInvalidArgument, "limits.proxy_timeout_seconds: 'soon' is not a duration"));
  EXPECT_THAT(SetFieldFromString(&c, "limits.proxy_timeout_seconds", "-5s"),
              StatusIs(absl::StatusCode::kInvalidArgument, "negative"));
  EXPECT_THAT(SetFieldFromString(&c, "limits.proxy_timeout_seconds", "inf"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a duration"));
  EXPECT_FALSE(c.limits().has_proxy_timeout_seconds());
}

TEST(FieldPathTest, DurationStringIsRefusedForAPlainCount) {
  sluice::v1::FrontendConfig c;
  EXPECT_THAT(SetFieldFromString(&c, "limits.max_sessions", "5m"),
              StatusIs(absl::StatusCode::kInvalidArgument, "'5m' is not a whole number"));
}

TEST(FieldPathTest, RejectsOverflowNegativeUnsignedAndFractions) {
  sluice::v1::FrontendConfig c;
  EXPECT_THAT(SetFieldFromString(&c, "limits.max_sessions", "4294967296"),
              StatusIs(absl::StatusCode::kInvalidArgument, "in range [0, 4294967295]"));
  EXPECT_THAT(SetFieldFromString(&c, "limits.max_sessions", "-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "in range"));
  EXPECT_THAT(SetFieldFromString(&c, "limits.max_sessions", "1.5"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a whole number"));
  ASSERT_THAT(SetFieldFromString(&c, "limits.message_size_limit_bytes", "18446744073709551615"), IsOk());
  EXPECT_EQ(c.limits().message_size_limit_bytes(), 18446744073709551615ull);
}

TEST(FieldPathTest, EnumsByShortNameFullNameAnyCase) {
  sluice::v1::Rule r;
  ASSERT_THAT(SetFieldFromString(&r, "action", "reject"), IsOk());
  EXPECT_EQ(r.action(), sluice::v1::RULE_ACTION_REJECT);
  ASSERT_THAT(SetFieldFromString(&r, "action", "RULE_ACTION_TEMPFAIL"), IsOk());
  EXPECT_EQ(r.action(), sluice::v1::RULE_ACTION_TEMPFAIL);
  ASSERT_THAT(SetFieldFromString(&r, "action", "Add-Header"), IsOk());
  EXPECT_EQ(r.action(), sluice::v1::RULE_ACTION_ADD_HEADER);
  sluice::v1::FilterConfig f;
  ASSERT_THAT(SetFieldFromString(&f, "on_failure", "tempfail"), IsOk());
  EXPECT_EQ(f.on_failure(), sluice::v1::FAILURE_POLICY_TEMPFAIL);
}

TEST(FieldPathTest, BadEnumListsTheAcceptedNames) {
  sluice::v1::Rule r;
  absl::Status s = SetFieldFromString(&r, "action", "bounce");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, "action: 'bounce' is not a RuleAction"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("reject"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("tempfail"));
  EXPECT_THAT(std::string(s.message()), ::testing::Not(HasSubstr("unspecified")));
}

TEST(FieldPathTest, BoolsAcceptYamlWords) {
  sluice::v1::FrontendConfig c;
  ASSERT_THAT(SetFieldFromString(&c, "speed_adjust", "yes"), IsOk());
  EXPECT_TRUE(c.speed_adjust());
  ASSERT_THAT(SetFieldFromString(&c, "speed_adjust", "False"), IsOk());
  EXPECT_FALSE(c.speed_adjust());
  ASSERT_THAT(SetFieldFromString(&c, "resolve_client_names", "no"), IsOk());
  EXPECT_TRUE(c.has_resolve_client_names());
  EXPECT_FALSE(c.resolve_client_names());
  EXPECT_THAT(SetFieldFromString(&c, "speed_adjust", "maybe"),
              StatusIs(absl::StatusCode::kInvalidArgument, "speed_adjust: 'maybe' is not a boolean"));
}

TEST(FieldPathTest, ListsAreReplacedBySetAndExtendedByAppend) {
  sluice::v1::FrontendConfig c;
  c.add_mynetworks("192.0.2.0/24");
  ASSERT_THAT(SetFieldFromString(&c, "mynetworks", "10.0.0.0/8, 172.16.0.0/12,"), IsOk());
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "172.16.0.0/12"));
  ASSERT_THAT(AppendFieldFromString(&c, "mynetworks", "::1/128"), IsOk());
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "172.16.0.0/12", "::1/128"));
}

TEST(FieldPathTest, AFailedListSetLeavesTheListAlone) {
  // Our schema has no list of numbers; descriptor.proto does (public_dependency).
  google::protobuf::FileDescriptorProto file;
  file.add_public_dependency(3);
  EXPECT_THAT(SetFieldFromString(&file, "public_dependency", "1,two"),
              StatusIs(absl::StatusCode::kInvalidArgument, "public_dependency: 'two' is not a whole number"));
  EXPECT_THAT(file.public_dependency(), ElementsAre(3));
  ASSERT_THAT(SetFieldFromString(&file, "public_dependency", "1,2"), IsOk());
  EXPECT_THAT(file.public_dependency(), ElementsAre(1, 2));
  sluice::v1::Limits l;
  EXPECT_THAT(AppendFieldFromString(&l, "max_sessions", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_sessions: is not a list"));
}

TEST(FieldPathTest, UnknownPathIsNamed) {
  sluice::v1::FrontendConfig c;
  EXPECT_THAT(SetFieldFromString(&c, "limits.max_sesions", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "limits.max_sesions: unknown field 'max_sesions' in limits"));
  EXPECT_THAT(SetFieldFromString(&c, "nope", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown field 'nope' in FrontendConfig"));
  EXPECT_THAT(SetFieldFromString(&c, "limits", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "limits: is a section"));
  EXPECT_THAT(SetFieldFromString(&c, "filter.x", "1"),
              StatusIs(absl::StatusCode::kInvalidArgument, "filter.x: 'filter' is not a section"));
}

TEST(FieldPathTest, ValueToStringRoundTrips) {
  sluice::v1::FilterBridgeConfig c;
  c.add_mynetworks("10.0.0.0/8");
  c.add_mynetworks("::1/128");
  c.mutable_limits()->set_max_sessions(7);
  auto* f = c.add_filters();
  f->set_on_failure(sluice::v1::FAILURE_POLICY_ACCEPT);
  const auto* d = c.GetDescriptor();
  EXPECT_EQ(FieldValueToString(c, d->FindFieldByName("mynetworks")), "10.0.0.0/8,::1/128");
  EXPECT_EQ(FieldValueToString(c.limits(), c.limits().GetDescriptor()->FindFieldByName("max_sessions")), "7");
  EXPECT_EQ(FieldValueToString(*f, f->GetDescriptor()->FindFieldByName("on_failure")), "accept");
  sluice::v1::FilterConfig back;
  ASSERT_THAT(SetFieldFromString(&back, "on_failure", FieldValueToString(*f, f->GetDescriptor()->FindFieldByName("on_failure"))), IsOk());
  EXPECT_EQ(back.on_failure(), sluice::v1::FAILURE_POLICY_ACCEPT);
}

TEST(HostnameTest, DefaultHostnameIsNeverEmpty) {
  std::string name = DefaultHostname();
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(name.find(' '), std::string::npos);
}

TEST(HostnameTest, SmtpPortDependsOnPrivilege) {
  EXPECT_EQ(DefaultSmtpListen(25, 2525), ::geteuid() == 0 ? ":25" : ":2525");
}

}  // namespace
}  // namespace sluice::control
