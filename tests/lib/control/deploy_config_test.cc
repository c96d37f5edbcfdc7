// tests/lib/control/deploy_config_test.cc
//
// The shipped stage configs load strictly and validate: deploy/k8s/base/config/ alone (the
// ConfigMaps) and with the loopback overrides of deploy/local/ on top (`make run`), through
// the same command line the services parse, and give the addresses DESIGN.md promises.
//
// Never: passes when SLUICE_SOURCE_DIR is unset (the harness sets it; a skip would hide a
// broken file).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "lib/control/flags.h"
#include "lib/control/service_flags.h"
#include "lib/control/yaml_config.h"
#include "lib/status/status_matchers.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {
namespace {

using ::sluice::testing::IsOk;
using ::testing::ElementsAre;

std::string SourceDir() {
  const char* dir = std::getenv("SLUICE_SOURCE_DIR");
  return dir == nullptr ? std::string() : std::string(dir);
}

std::string Base(const std::string& stage) { return SourceDir() + "/deploy/k8s/base/config/" + stage + ".yaml"; }
std::string Local(const std::string& stage) { return SourceDir() + "/deploy/local/" + stage + ".yaml"; }

class DeployConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(SourceDir().empty()) << "SLUICE_SOURCE_DIR is not set"; }
};

TEST_F(DeployConfigTest, FrontendBaseIsTheKubernetesSetup) {
  sluice::v1::FrontendConfig c;
  ASSERT_THAT(ParseCommandLine({"--config=" + Base("frontend")}, FrontendFlags(), &c), IsOk());
  EXPECT_EQ(c.server().smtp_listen(), ":25");  // both families
  EXPECT_EQ(c.server().admin_listen(), ":9101");
  EXPECT_EQ(c.server().metrics_listen(), "0.0.0.0:9201");
  EXPECT_EQ(c.filter(), "filter-bridge:10025");
  EXPECT_EQ(c.limits().proxy_timeout_seconds(), 100u);
  EXPECT_EQ(c.limits().smtpd_timeout_seconds(), 300u);
  // Internet-facing: relaying stays loopback-only even in the cluster.
  EXPECT_THAT(c.mynetworks(), ElementsAre("127.0.0.0/8", "::1/128"));
}

TEST_F(DeployConfigTest, FilterBridgeBaseIsTheKubernetesSetup) {
  sluice::v1::FilterBridgeConfig c;
  ASSERT_THAT(ParseCommandLine({"--config=" + Base("filter-bridge")}, FilterBridgeFlags(), &c), IsOk());
  EXPECT_EQ(c.server().smtp_listen(), ":10025");
  EXPECT_EQ(c.server().admin_listen(), ":9102");
  EXPECT_EQ(c.server().metrics_listen(), "0.0.0.0:9202");
  EXPECT_EQ(c.next_hop(), "reinject:10026");
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "fd00::/8"));
  EXPECT_THAT(c.xforward_hosts(), ElementsAre("10.0.0.0/8", "fd00::/8"));
}

TEST_F(DeployConfigTest, ReinjectBaseIsTheKubernetesSetup) {
  sluice::v1::ReinjectConfig c;
  ASSERT_THAT(ParseCommandLine({"--config=" + Base("reinject")}, ReinjectFlags(), &c), IsOk());
  EXPECT_EQ(c.server().smtp_listen(), ":10026");
  EXPECT_EQ(c.server().admin_listen(), ":9103");
  EXPECT_EQ(c.server().metrics_listen(), "0.0.0.0:9203");
  EXPECT_EQ(c.limits().maximal_queue_lifetime_seconds(), 432000u);  // "5d"
  EXPECT_THAT(c.mynetworks(), ElementsAre("10.0.0.0/8", "fd00::/8"));
}

TEST_F(DeployConfigTest, FrontendLocalRunsOnLoopback) {
  sluice::v1::FrontendConfig c;
  ASSERT_THAT(ParseCommandLine({"--config=" + Base("frontend") + "," + Local("frontend")}, FrontendFlags(), &c),
              IsOk());
  EXPECT_EQ(c.server().smtp_listen(), "127.0.0.1:2525");
  EXPECT_EQ(c.server().admin_listen(), "127.0.0.1:9101");
  EXPECT_EQ(c.server().metrics_listen(), "127.0.0.1:9201");
  EXPECT_EQ(c.filter(), "127.0.0.1:10025");
  EXPECT_THAT(c.accepted_domains(), ElementsAre("example.com", "localhost"));
  EXPECT_EQ(c.limits().max_sessions(), 100u);  // from the base, untouched by the overlay
}

TEST_F(DeployConfigTest, FilterBridgeLocalRunsOnLoopback) {
  sluice::v1::FilterBridgeConfig c;
  ASSERT_THAT(ParseCommandLine({"--config", Base("filter-bridge"), "--config", Local("filter-bridge")},
                               FilterBridgeFlags(), &c),
              IsOk());
  EXPECT_EQ(c.server().smtp_listen(), "127.0.0.1:10025");
  EXPECT_EQ(c.server().admin_listen(), "127.0.0.1:9102");
  EXPECT_EQ(c.server().metrics_listen(), "127.0.0.1:9202");
  EXPECT_EQ(c.next_hop(), "127.0.0.1:10026");
  EXPECT_THAT(c.xforward_hosts(), ElementsAre("127.0.0.0/8", "::1/128"));
}

TEST_F(DeployConfigTest, ReinjectLocalRunsOnLoopbackUnderVar) {
  sluice::v1::ReinjectConfig c;
  ASSERT_THAT(ParseCommandLine({"--config=" + Base("reinject") + "," + Local("reinject")}, ReinjectFlags(), &c),
              IsOk());
  EXPECT_EQ(c.server().smtp_listen(), "127.0.0.1:10026");
  EXPECT_EQ(c.server().admin_listen(), "127.0.0.1:9103");
  EXPECT_EQ(c.server().metrics_listen(), "127.0.0.1:9203");
  EXPECT_EQ(c.queue_dir(), "var/queue");
  EXPECT_EQ(c.deliver(), "maildir:var/mail");
}

TEST_F(DeployConfigTest, LocalOverridesAloneAreValidYamlForTheirStage) {
  // Each overlay must also be strict-clean on its own (a typo there would otherwise only
  // show when layered).
  sluice::v1::FrontendConfig f;
  sluice::v1::FilterBridgeConfig fb;
  sluice::v1::ReinjectConfig r;
  EXPECT_THAT(LoadYamlFile(Local("frontend"), &f), IsOk());
  EXPECT_THAT(LoadYamlFile(Local("filter-bridge"), &fb), IsOk());
  EXPECT_THAT(LoadYamlFile(Local("reinject"), &r), IsOk());
}

}  // namespace
}  // namespace sluice::control
