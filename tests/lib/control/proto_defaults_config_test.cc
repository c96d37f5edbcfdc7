// tests/lib/control/proto_defaults_config_test.cc
//
// The schema's (default_value), (min_value)/(max_value) and (cidr_list) options applied by
// reflection: the Postfix defaults, presence semantics, recursion into sections and lists of
// sections, and validation errors naming the full field path.
//
// Never: restates a default the schema does not document (each value here is Postfix's).
#include "lib/control/proto_defaults.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "google/protobuf/descriptor.pb.h"
#include "lib/status/status_matchers.h"
#include "sluice/v1/admin.pb.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/limits.pb.h"
#include "sluice/v1/options.pb.h"

namespace sluice::control {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;

TEST(ApplyDefaultsTest, LimitsTakeThePostfixDefaults) {
  sluice::v1::Limits l;
  ApplyDefaults(&l);
  EXPECT_EQ(l.max_sessions(), 100u);                    // default_process_limit
  EXPECT_EQ(l.per_client_connection_limit(), 50u);      // smtpd_client_connection_count_limit
  EXPECT_EQ(l.per_client_connection_rate_limit(), 0u);  // off
  EXPECT_EQ(l.rate_time_unit_seconds(), 60u);           // anvil_rate_time_unit
  EXPECT_EQ(l.message_size_limit_bytes(), 10240000u);   // message_size_limit
  EXPECT_EQ(l.max_recipients(), 1000u);                 // smtpd_recipient_limit
  EXPECT_EQ(l.line_length_limit_bytes(), 2048u);        // line_length_limit
  EXPECT_EQ(l.header_size_limit_bytes(), 102400u);      // header_size_limit
  EXPECT_EQ(l.smtpd_timeout_seconds(), 300u);           // smtpd_timeout
  EXPECT_EQ(l.proxy_timeout_seconds(), 100u);           // smtpd_proxy_timeout
  EXPECT_EQ(l.connect_timeout_seconds(), 30u);          // smtp_connect_timeout
  EXPECT_EQ(l.soft_error_limit(), 10u);                 // smtpd_soft_error_limit
  EXPECT_EQ(l.hard_error_limit(), 20u);                 // smtpd_hard_error_limit
  EXPECT_EQ(l.error_sleep_seconds(), 1u);               // smtpd_error_sleep_time
  EXPECT_EQ(l.junk_command_limit(), 100u);              // smtpd_junk_command_limit
  EXPECT_EQ(l.minimal_backoff_seconds(), 300u);         // minimal_backoff_time
  EXPECT_EQ(l.maximal_backoff_seconds(), 4000u);        // maximal_backoff_time
  EXPECT_EQ(l.maximal_queue_lifetime_seconds(), 432000u);  // maximal_queue_lifetime 5d
  EXPECT_EQ(l.queue_run_delay_seconds(), 300u);         // queue_run_delay
  EXPECT_THAT(l.limit_exemptions(), ElementsAre("127.0.0.0/8", "::1/128"));
  // Presence: a defaulted field is present, so it reads as set afterwards.
  EXPECT_TRUE(l.has_per_client_connection_rate_limit());
  EXPECT_THAT(Validate(l), IsOk());
}

TEST(ApplyDefaultsTest, PresentOptionalFieldsKeepTheirValueEvenZero) {
  sluice::v1::Limits l;
  l.set_per_client_connection_limit(0);  // 0 means "no limit": must not become 50
  l.set_max_sessions(7);
  ApplyDefaults(&l);
  EXPECT_EQ(l.per_client_connection_limit(), 0u);
  EXPECT_EQ(l.max_sessions(), 7u);
  EXPECT_EQ(l.max_recipients(), 1000u);
}

TEST(ApplyDefaultsTest, NonPresenceScalarsAreDefaultedWhenZero) {
  sluice::v1::TlsConfig t;
  ApplyDefaults(&t);
  EXPECT_EQ(t.min_version(), "TLSv1.2");
  t.set_min_version("TLSv1.3");
  ApplyDefaults(&t);
  EXPECT_EQ(t.min_version(), "TLSv1.3");
  sluice::v1::GrpcFilterConfig g;
  g.set_chunk_bytes(0);
  ApplyDefaults(&g);
  EXPECT_EQ(g.chunk_bytes(), 65536u);
}

TEST(ApplyDefaultsTest, ListsAreDefaultedOnlyWhenEmpty) {
  sluice::v1::FrontendConfig c;
  ApplyDefaults(&c);
  EXPECT_THAT(c.mynetworks(), ElementsAre("127.0.0.0/8", "::1/128"));
  EXPECT_TRUE(c.accepted_domains().empty());  // no default: stays empty
  sluice::v1::FrontendConfig d;
  d.add_mynetworks("10.0.0.0/8");
  ApplyDefaults(&d);
  EXPECT_THAT(d.mynetworks(), ElementsAre("10.0.0.0/8"));
}

TEST(ApplyDefaultsTest, RecursesIntoSectionsAndCreatesThem) {
  sluice::v1::FrontendConfig c;
  ApplyDefaults(&c);
  EXPECT_TRUE(c.has_limits());
  EXPECT_EQ(c.limits().max_sessions(), 100u);
  EXPECT_EQ(c.server().admin_tls().min_version(), "TLSv1.2");
  EXPECT_EQ(c.server().smtp_tls().min_version(), "TLSv1.2");
  EXPECT_EQ(c.filter(), "127.0.0.1:10025");
  EXPECT_TRUE(c.resolve_client_names());
  sluice::v1::FilterBridgeConfig fb;
  ApplyDefaults(&fb);
  EXPECT_EQ(fb.next_hop(), "127.0.0.1:10026");
  EXPECT_EQ(fb.upstream_admin_port(), 9101u);
  EXPECT_EQ(fb.trace_header(), "X-Sluice-Filter");
  sluice::v1::ReinjectConfig r;
  ApplyDefaults(&r);
  EXPECT_EQ(r.queue_dir(), "var/queue");
  EXPECT_EQ(r.deliver(), "maildir:var/mail");
  EXPECT_EQ(r.bounce_from(), "MAILER-DAEMON");
}

TEST(ApplyDefaultsTest, PresentZeroPortIsKeptOnAnOptionalField) {
  sluice::v1::FilterBridgeConfig fb;
  fb.set_upstream_admin_port(0);  // "do not fetch session records"
  ApplyDefaults(&fb);
  EXPECT_EQ(fb.upstream_admin_port(), 0u);
}

TEST(ApplyDefaultsTest, EntersEveryElementOfAListOfSectionsButNoUnsetOneof) {
  sluice::v1::FilterBridgeConfig fb;
  fb.add_filters()->mutable_milter()->set_address("inet:127.0.0.1:11332");
  fb.add_filters()->mutable_grpc()->set_address("127.0.0.1:50051");
  fb.add_filters()->set_name("empty");
  ApplyDefaults(&fb);
  ASSERT_EQ(fb.filters_size(), 3);
  EXPECT_EQ(fb.filters(0).milter().connect_timeout_seconds(), 30u);
  EXPECT_EQ(fb.filters(0).milter().content_timeout_seconds(), 300u);
  EXPECT_EQ(fb.filters(1).grpc().chunk_bytes(), 65536u);
  EXPECT_EQ(fb.filters(1).grpc().tls().min_version(), "TLSv1.2");
  EXPECT_EQ(fb.filters(2).kind_case(), sluice::v1::FilterConfig::KIND_NOT_SET);
}

TEST(ValidateTest, BelowMinimumNamesTheFullPath) {
  sluice::v1::FrontendConfig c;
  c.mutable_limits()->set_max_sessions(0);
  ApplyDefaults(&c);
  EXPECT_THAT(Validate(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "limits.max_sessions: 0 is below the minimum 1"));
}

TEST(ValidateTest, AboveMaximumNamesTheFullPath) {
  sluice::v1::FrontendConfig c;
  c.mutable_limits()->set_proxy_timeout_seconds(7200);
  ApplyDefaults(&c);
  EXPECT_THAT(Validate(c), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "limits.proxy_timeout_seconds: 7200 is above the maximum 3600"));
}

TEST(ValidateTest, BoundsHoldAtTheEdges) {
  sluice::v1::Limits l;
  ApplyDefaults(&l);
  l.set_max_sessions(1);
  l.set_line_length_limit_bytes(65536);
  EXPECT_THAT(Validate(l), IsOk());
  l.set_line_length_limit_bytes(511);
  EXPECT_THAT(Validate(l), StatusIs(absl::StatusCode::kInvalidArgument, "line_length_limit_bytes: 511"));
}

TEST(ValidateTest, HugeUnsignedIsAboveAnyMaximum) {
  sluice::v1::Limits l;
  ApplyDefaults(&l);
  l.set_spool_memory_bytes(18446744073709551615ull);
  EXPECT_THAT(Validate(l), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "spool_memory_bytes: 18446744073709551615 is above the maximum"));
}

TEST(ValidateTest, BadCidrNamesTheElement) {
  sluice::v1::ReinjectConfig r;
  r.add_xforward_hosts("10.0.0.0/8");
  r.add_xforward_hosts("10.0.0.0/33");
  ApplyDefaults(&r);
  EXPECT_THAT(Validate(r), StatusIs(absl::StatusCode::kInvalidArgument, "xforward_hosts[1]: "));
}

TEST(ValidateTest, NamesFieldsInsideListsOfSections) {
  sluice::v1::FilterBridgeConfig fb;
  fb.add_filters()->mutable_rules();
  auto* m = fb.add_filters()->mutable_rules()->add_rules()->mutable_match();
  m->add_client_cidr("not-a-network");
  ApplyDefaults(&fb);
  EXPECT_THAT(Validate(fb), StatusIs(absl::StatusCode::kInvalidArgument,
                                     "filters[1].rules.rules[0].match.client_cidr[0]: "));
  sluice::v1::FilterBridgeConfig g;
  g.add_filters()->mutable_grpc()->set_chunk_bytes(100);
  EXPECT_THAT(Validate(g), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "filters[0].grpc.chunk_bytes: 100 is below the minimum 1024"));
}

TEST(ValidateTest, AbsentOptionalFieldsAreNotChecked) {
  sluice::v1::Limits l;  // max_sessions absent: 0 would be below the minimum if it were read
  EXPECT_THAT(Validate(l), IsOk());
}

TEST(SchemaTest, EveryConfigTypesOptionsAreConsistent) {
  EXPECT_THAT(CheckSchemaOptions(sluice::v1::FrontendConfig::descriptor()), IsOk());
  EXPECT_THAT(CheckSchemaOptions(sluice::v1::FilterBridgeConfig::descriptor()), IsOk());
  EXPECT_THAT(CheckSchemaOptions(sluice::v1::ReinjectConfig::descriptor()), IsOk());
  EXPECT_THAT(CheckSchemaOptions(sluice::v1::UpdateLimitsRequest::descriptor()), IsOk());
}

TEST(SchemaTest, FullyDefaultedConfigsAreValid) {
  sluice::v1::FrontendConfig f;
  sluice::v1::FilterBridgeConfig fb;
  sluice::v1::ReinjectConfig r;
  ApplyDefaults(&f);
  ApplyDefaults(&fb);
  ApplyDefaults(&r);
  EXPECT_THAT(Validate(f), IsOk());
  EXPECT_THAT(Validate(fb), IsOk());
  EXPECT_THAT(Validate(r), IsOk());
}

// The lint itself catches a broken schema: build one at run time.
class SchemaLintTest : public ::testing::Test {
 protected:
  const google::protobuf::Descriptor* Build(const std::string& default_value, int64_t min_value) {
    google::protobuf::FileDescriptorProto file;
    file.set_name("lint_test.proto");
    file.set_package("linttest");
    file.set_syntax("proto3");
    auto* msg = file.add_message_type();
    msg->set_name("Bad");
    auto* field = msg->add_field();
    field->set_name("count");
    field->set_number(1);
    field->set_type(google::protobuf::FieldDescriptorProto::TYPE_UINT32);
    field->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
    field->mutable_options()->SetExtension(sluice::v1::default_value, default_value);
    field->mutable_options()->SetExtension(sluice::v1::min_value, min_value);
    const google::protobuf::FileDescriptor* fd = pool_.BuildFile(file);
    return fd == nullptr ? nullptr : fd->FindMessageTypeByName("Bad");
  }
  google::protobuf::DescriptorPool pool_;
};

TEST_F(SchemaLintTest, CatchesADefaultThatDoesNotParse) {
  const auto* type = Build("many", 0);
  ASSERT_NE(type, nullptr);
  EXPECT_THAT(CheckSchemaOptions(type), StatusIs(absl::StatusCode::kInternal, "linttest.Bad.count: bad (default_value)"));
}

TEST_F(SchemaLintTest, CatchesADefaultOutsideItsBounds) {
  const auto* type = Build("0", 1);
  ASSERT_NE(type, nullptr);
  EXPECT_THAT(CheckSchemaOptions(type), StatusIs(absl::StatusCode::kInternal, "0 is below the minimum 1"));
}

TEST_F(SchemaLintTest, AcceptsAGoodOne) {
  const auto* type = Build("5", 1);
  ASSERT_NE(type, nullptr);
  EXPECT_THAT(CheckSchemaOptions(type), IsOk());
}

}  // namespace
}  // namespace sluice::control
