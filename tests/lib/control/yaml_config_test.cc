// tests/lib/control/yaml_config_test.cc
//
// YAML onto config messages, strictly: unknown keys, wrong types and bad values fail with
// file:line; durations, enums, lists, oneofs and lists of sections map; files layer.
//
// Never: reads files outside the test's temporary directory.
#include "lib/control/yaml_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "lib/status/status_matchers.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using sluice::v1::FilterBridgeConfig;
using sluice::v1::FrontendConfig;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(YamlConfigTest, MapsSectionsScalarsAndLists) {
  FrontendConfig c;
  ASSERT_THAT(LoadYamlString(R"(
server:
  smtp_listen: 0.0.0.0:25
  hostname: mx.example.com
limits:
  max_sessions: 500
  message_size_limit_bytes: 52428800
filter: filter-bridge:10025
speed_adjust: yes
mynetworks: [10.0.0.0/8, 192.168.0.0/16]
accepted_domains:
  - example.com
  - .example.org
)", "frontend.yaml", &c), IsOk());
  EXPECT_EQ(c.server().smtp_listen(), "0.0.0.0:25");
  EXPECT_EQ(c.server().hostname(), "mx.example.com");
  EXPECT_EQ(c.limits().max_sessions(), 500u);
  EXPECT_EQ(c.limits().message_size_limit_bytes(), 52428800u);
  EXPECT_FALSE(c.limits().has_proxy_timeout_seconds());
  EXPECT_EQ(c.filter(), "filter-bridge:10025");
  EXPECT_TRUE(c.speed_adjust());
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "192.168.0.0/16"));
  EXPECT_THAT(c.accepted_domains(), ElementsAre("example.com", ".example.org"));
}

TEST(YamlConfigTest, UnknownKeyNamesKeyFileLineAndSection) {
  FrontendConfig c;
  EXPECT_THAT(LoadYamlString("server:\n  hostname: a\nlimits:\n  max_sessions: 5\n  max_sesions: 6\n",
                             "frontend.yaml", &c),
              StatusIs(kInvalid, "frontend.yaml:5: unknown key 'max_sesions' in limits (did you mean 'max_sessions'?)"));
  EXPECT_THAT(LoadYamlString("\n\nfliter: x:1\n", "frontend.yaml", &c),
              StatusIs(kInvalid, "frontend.yaml:3: unknown key 'fliter' in FrontendConfig"));
  EXPECT_THAT(LoadYamlString("completely_else: 1\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:1: unknown key 'completely_else' in FrontendConfig"));
}

TEST(YamlConfigTest, AFailedLoadLeavesTheMessageAsItWas) {
  FrontendConfig c;
  c.set_filter("before:1");
  EXPECT_THAT(LoadYamlString("filter: after:2\nbogus: 1\n", "f.yaml", &c), StatusIs(kInvalid));
  EXPECT_EQ(c.filter(), "before:1");
}

TEST(YamlConfigTest, WrongTypesAreErrorsWithLines) {
  FrontendConfig c;
  EXPECT_THAT(LoadYamlString("limits:\n  max_sessions: [1, 2]\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:2: limits.max_sessions: expected a single value, got a list"));
  EXPECT_THAT(LoadYamlString("limits: 5\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:1: limits: expected a section of keys, got a single value"));
  EXPECT_THAT(LoadYamlString("limits:\n  max_sessions: lots\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:2: limits.max_sessions: 'lots' is not a whole number"));
  EXPECT_THAT(LoadYamlString("mynetworks:\n  a: b\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:2: mynetworks: expected a list, got a section of keys"));
  EXPECT_THAT(LoadYamlString("speed_adjust: perhaps\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:1: speed_adjust: 'perhaps' is not a boolean"));
  EXPECT_THAT(LoadYamlString("- a\n- b\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:1: FrontendConfig: expected a section of keys, got a list"));
  EXPECT_THAT(LoadYamlString("accepted_domains:\n  - [nested]\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:2: accepted_domains[0]: expected a single value, got a list"));
}

TEST(YamlConfigTest, DurationsTakeNumbersAndStrings) {
  FrontendConfig c;
  ASSERT_THAT(LoadYamlString("limits:\n  proxy_timeout_seconds: 2m\n  smtpd_timeout_seconds: 120\n"
                             "  session_deadline_seconds: 1h30m\n  connect_timeout_seconds: 250ms\n",
                             "f.yaml", &c), IsOk());
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 120u);
  EXPECT_EQ(c.limits().smtpd_timeout_seconds(), 120u);
  EXPECT_EQ(c.limits().session_deadline_seconds(), 5400u);
  EXPECT_EQ(c.limits().connect_timeout_seconds(), 1u);
  EXPECT_THAT(LoadYamlString("limits:\n  proxy_timeout_seconds: later\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:2: limits.proxy_timeout_seconds: 'later' is not a duration"));
}

TEST(YamlConfigTest, EnumsAcceptShortAndFullNamesInAnyCase) {
  FilterBridgeConfig c;
  ASSERT_THAT(LoadYamlString(R"(
filters:
  - name: local
    on_failure: TempFail
    rules:
      rules:
        - name: no-exe
          match: {attachment_filename_pattern: '\.exe$'}
          action: reject
        - name: tag
          action: RULE_ACTION_ADD_HEADER
          header_name: X-Tag
          header_value: seen
)", "fb.yaml", &c), IsOk());
  ASSERT_EQ(c.filters_size(), 1);
  EXPECT_EQ(c.filters(0).on_failure(), sluice::v1::FAILURE_POLICY_TEMPFAIL);
  ASSERT_EQ(c.filters(0).rules().rules_size(), 2);
  EXPECT_EQ(c.filters(0).rules().rules(0).action(), sluice::v1::RULE_ACTION_REJECT);
  EXPECT_EQ(c.filters(0).rules().rules(0).match().attachment_filename_pattern(), "\\.exe$");
  EXPECT_EQ(c.filters(0).rules().rules(1).action(), sluice::v1::RULE_ACTION_ADD_HEADER);
}

TEST(YamlConfigTest, BadEnumNamesFieldAndLine) {
  FilterBridgeConfig c;
  EXPECT_THAT(LoadYamlString("filters:\n  - name: x\n    on_failure: shrug\n", "fb.yaml", &c),
              StatusIs(kInvalid, "fb.yaml:3: filters[0].on_failure: 'shrug' is not a FailurePolicy (one of: tempfail, accept, reject)"));
}

TEST(YamlConfigTest, OneofTakesExactlyOneKind) {
  FilterBridgeConfig c;
  ASSERT_THAT(LoadYamlString(R"(
filters:
  - name: rspamd
    milter: {address: "inet:rspamd:11332", command_timeout_seconds: 10s}
  - name: scanner
    grpc: {address: "scanner:50051", chunk_bytes: 131072}
    timeout_seconds: 1m
  - name: rules
    rules: {file: /etc/sluice/rules.yaml}
)", "fb.yaml", &c), IsOk());
  ASSERT_EQ(c.filters_size(), 3);
  EXPECT_EQ(c.filters(0).kind_case(), sluice::v1::FilterConfig::kMilter);
  EXPECT_EQ(c.filters(0).milter().command_timeout_seconds(), 10u);
  EXPECT_EQ(c.filters(1).kind_case(), sluice::v1::FilterConfig::kGrpc);
  EXPECT_EQ(c.filters(1).grpc().chunk_bytes(), 131072u);
  EXPECT_EQ(c.filters(1).timeout_seconds(), 60u);
  EXPECT_EQ(c.filters(2).rules().file(), "/etc/sluice/rules.yaml");
  EXPECT_THAT(LoadYamlString("filters:\n  - name: two\n    milter: {address: a}\n    grpc: {address: b}\n",
                             "fb.yaml", &c),
              StatusIs(kInvalid, "fb.yaml:4: filters[0]: 'milter' and 'grpc' are both given"));
}

TEST(YamlConfigTest, ListsOfSectionsMustBeLists) {
  FilterBridgeConfig c;
  EXPECT_THAT(LoadYamlString("filters:\n  name: x\n", "fb.yaml", &c),
              StatusIs(kInvalid, "fb.yaml:2: filters: expected a list of sections, got a section of keys"));
  EXPECT_THAT(LoadYamlString("filters:\n  - nme: x\n", "fb.yaml", &c),
              StatusIs(kInvalid, "fb.yaml:2: unknown key 'nme' in filters[0]"));
}

TEST(YamlConfigTest, SingleScalarForAList) {
  FrontendConfig c;
  ASSERT_THAT(LoadYamlString("accepted_domains: example.com\nmynetworks: 10.0.0.0/8, ::1/128\n", "f.yaml", &c),
              IsOk());
  EXPECT_THAT(c.accepted_domains(), ElementsAre("example.com"));
  // (cidr_list) fields split a comma-separated scalar.
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "::1/128"));
}

TEST(YamlConfigTest, EmptyAndCommentOnlyFilesAreEmptyMessages) {
  FrontendConfig c;
  EXPECT_THAT(LoadYamlString("", "empty.yaml", &c), IsOk());
  EXPECT_THAT(LoadYamlString("# nothing here\n\n", "comments.yaml", &c), IsOk());
  EXPECT_EQ(c.ByteSizeLong(), 0u);
}

TEST(YamlConfigTest, SyntaxErrorsHaveLines) {
  FrontendConfig c;
  absl::Status s = LoadYamlString("limits:\n  max_sessions: 5\n bad indentation: [\n", "f.yaml", &c);
  EXPECT_THAT(s, StatusIs(kInvalid, "f.yaml:"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("YAML syntax"));
}

TEST(YamlConfigTest, DuplicateKeysAndExtraDocumentsAreErrors) {
  FrontendConfig c;
  EXPECT_THAT(LoadYamlString("filter: a:1\nfilter: b:2\n", "f.yaml", &c),
              StatusIs(kInvalid, "f.yaml:2: key 'filter' given twice in FrontendConfig"));
  EXPECT_THAT(LoadYamlString("filter: a:1\n---\nfilter: b:2\n", "f.yaml", &c),
              StatusIs(kInvalid, "more than one YAML document"));
}

TEST(YamlConfigTest, NullClearsAFieldAndOpensAnEmptySection) {
  FrontendConfig c;
  c.add_accepted_domains("example.com");
  c.set_filter("x:1");
  ASSERT_THAT(LoadYamlString("accepted_domains: []\nfilter:\nlimits:\n", "f.yaml", &c), IsOk());
  EXPECT_TRUE(c.accepted_domains().empty());
  EXPECT_EQ(c.filter(), "");
  EXPECT_TRUE(c.has_limits());
}

class YamlFilesTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
};

TEST_F(YamlFilesTest, LaterFilesOverrideScalarsReplaceListsMergeSections) {
  std::string base = Write("base.yaml",
                           "server:\n  smtp_listen: 0.0.0.0:25\n  hostname: mx.example.com\n"
                           "limits:\n  max_sessions: 500\n  max_recipients: 50\n"
                           "mynetworks: [10.0.0.0/8, 172.16.0.0/12]\naccepted_domains: [a.example]\n");
  std::string local = Write("local.yaml",
                            "server:\n  smtp_listen: 127.0.0.1:2525\nlimits:\n  max_sessions: 20\n"
                            "mynetworks: [127.0.0.0/8]\n");
  FrontendConfig c;
  ASSERT_THAT(LoadYamlFiles({base, local}, &c), IsOk());
  EXPECT_EQ(c.server().smtp_listen(), "127.0.0.1:2525");
  EXPECT_EQ(c.server().hostname(), "mx.example.com");
  EXPECT_EQ(c.limits().max_sessions(), 20u);
  EXPECT_EQ(c.limits().max_recipients(), 50u);
  EXPECT_THAT(c.mynetworks(), ElementsAre("127.0.0.0/8"));
  EXPECT_THAT(c.accepted_domains(), ElementsAre("a.example"));
}

TEST_F(YamlFilesTest, ErrorsNameThePathGiven) {
  std::string bad = Write("bad.yaml", "limits:\n  max_sesions: 1\n");
  FrontendConfig c;
  EXPECT_THAT(LoadYamlFile(bad, &c), StatusIs(kInvalid, bad + ":2: unknown key 'max_sesions' in limits"));
  EXPECT_THAT(LoadYamlFile(::testing::TempDir() + "/missing.yaml", &c),
              StatusIs(absl::StatusCode::kNotFound, "missing.yaml"));
  EXPECT_THAT(LoadYamlFile(::testing::TempDir(), &c), StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace sluice::control
