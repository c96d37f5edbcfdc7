// tests/lib/control/yaml_writer_test.cc -- the YAML --check prints loads back to the same
// config (strings YAML would misread are quoted: empty, null, yes, " #", a leading ':' or
// quote, a trailing ':', control bytes), lists and oneof members included; with defaults
// only what differs is written, a section only when something in it differs.
#include "lib/control/yaml_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "google/protobuf/util/message_differencer.h"
#include "lib/control/proto_defaults.h"
#include "lib/control/yaml_config.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

sluice::v1::FilterBridgeConfig RoundTrip(const sluice::v1::FilterBridgeConfig& c) {
  std::string yaml = ConfigToYaml(c, nullptr);
  sluice::v1::FilterBridgeConfig back;
  absl::Status st = LoadYamlString(yaml, "written.yaml", &back);
  EXPECT_TRUE(st.ok()) << st << "\n" << yaml;
  return back;
}

TEST(YamlWriterTest, TrickyStringsLoadBackUnchanged) {
  for (const std::string& s : {std::string(""), std::string("null"), std::string("~"), std::string("yes"),
                               std::string("a # b"), std::string("::1/128"), std::string("ends:"),
                               std::string("\"quoted\""), std::string("tab\there"), std::string("line\nbreak"),
                               std::string("- dash"), std::string("[x]"), std::string("{y}"), std::string("a,b"),
                               std::string("back\\slash"), std::string("\x01"), std::string("mx.example.com")}) {
    sluice::v1::FilterBridgeConfig c;
    c.set_trace_header(s);
    c.add_mynetworks(s);
    EXPECT_EQ(RoundTrip(c).trace_header(), s) << ConfigToYaml(c, nullptr);
    EXPECT_EQ(RoundTrip(c).mynetworks(0), s) << ConfigToYaml(c, nullptr);
  }
}

TEST(YamlWriterTest, AWholeConfigWithListsAndOneofsLoadsBackEqual) {
  sluice::v1::FilterBridgeConfig c;
  ApplyDefaults(&c);
  c.mutable_server()->set_hostname("fb.example");
  c.add_next_hop_admin("reinject-admin:9103");
  auto* f = c.add_filters();
  f->set_name("spam");
  f->mutable_milter()->set_address("inet:127.0.0.1:11332");
  f->set_on_failure(sluice::v1::FAILURE_POLICY_ACCEPT);
  auto* r = c.add_filters();
  r->set_name("rules");
  auto* rule = r->mutable_rules()->add_rules();
  rule->set_name("tag");
  rule->mutable_match()->add_client_cidr("192.0.2.0/24");
  rule->set_action(sluice::v1::RULE_ACTION_ADD_HEADER);
  rule->set_header_value("yes # really");
  sluice::v1::FilterBridgeConfig back = RoundTrip(c);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, c))
      << back.DebugString() << "\nvs\n" << c.DebugString();
  std::string yaml = ConfigToYaml(c, nullptr);
  EXPECT_THAT(yaml, Not(HasSubstr("grpc:")));  // the unset oneof member
  EXPECT_THAT(yaml, HasSubstr("on_failure: accept\n"));
}

TEST(YamlWriterTest, WithDefaultsOnlyWhatDiffersIsWritten) {
  sluice::v1::FrontendConfig defaults;
  ApplyDefaults(&defaults);
  sluice::v1::FrontendConfig c = defaults;
  EXPECT_EQ(ConfigToYaml(c, &defaults), "");
  c.mutable_limits()->set_message_size_limit_bytes(20000000);
  c.add_accepted_domains("example.com");
  EXPECT_EQ(ConfigToYaml(c, &defaults),
            "limits:\n  message_size_limit_bytes: 20000000\naccepted_domains: [example.com]\n");
}

TEST(YamlWriterTest, ListElementsShowOnlyTheirNonDefaultFields) {
  sluice::v1::FilterBridgeConfig defaults;
  ApplyDefaults(&defaults);
  sluice::v1::FilterBridgeConfig c = defaults;
  auto* f = c.add_filters();
  f->set_name("m");
  f->mutable_milter()->set_address("inet:127.0.0.1:11332");
  ApplyDefaults(&c);  // as the loader leaves it: the milter's timeouts at their defaults
  EXPECT_EQ(ConfigToYaml(c, &defaults), "filters:\n  - name: m\n    milter:\n      address: inet:127.0.0.1:11332\n");
}

}  // namespace
}  // namespace sluice::control
