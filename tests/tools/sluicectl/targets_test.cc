// tests/tools/sluicectl/targets_test.cc
//
// Whom a command calls: literals as they are, DNS names as every address they resolve to
// (localhost here; a headless Service in a cluster), the default stage endpoints, and names
// that do not resolve kept as failed targets rather than dropped.
//
// Never: needs anything but the local resolver.
#include "tools/sluicectl/targets.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::ctl {
namespace {

using ::sluice::testing::IsOk;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

Invocation Parsed(std::vector<std::string> args) {
  auto inv = ParseCommandLine(args);
  EXPECT_THAT(inv, IsOk());
  return *inv;
}

std::vector<std::string> Labels(const std::vector<Target>& targets) {
  std::vector<std::string> labels;
  for (const Target& t : targets) labels.push_back(t.label);
  return labels;
}

TEST(TargetsTest, LiteralsAreNotResolved) {
  auto v4 = ResolveHost("192.0.2.10");
  ASSERT_THAT(v4, IsOk());
  EXPECT_THAT(*v4, ElementsAre("192.0.2.10"));
  auto v6 = ResolveHost("2001:db8::1");
  ASSERT_THAT(v6, IsOk());
  EXPECT_THAT(*v6, ElementsAre("2001:db8::1"));
}

TEST(TargetsTest, LocalhostResolvesToEveryLoopbackAddress) {
  auto addresses = ResolveHost("localhost");
  ASSERT_THAT(addresses, IsOk());
  EXPECT_THAT(*addresses, Contains("127.0.0.1"));
  for (const std::string& a : *addresses) EXPECT_TRUE(a == "127.0.0.1" || a == "::1") << a;
  // Each address once, even though getaddrinfo answers per socket type.
  auto sorted = *addresses;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

TEST(TargetsTest, UnresolvableNameIsAnError) {
  EXPECT_FALSE(ResolveHost("no-such-host.invalid").ok());
}

TEST(TargetsTest, DnsNameBecomesOneTargetPerAddressKeepingTheNameForTls) {
  auto targets = TargetsForEndpoint("localhost:9101", "");
  ASSERT_THAT(targets, Not(IsEmpty()));
  for (const Target& t : targets) {
    EXPECT_EQ(t.tls_name, "localhost");
    EXPECT_THAT(t.resolve_error, IsEmpty());
  }
  EXPECT_THAT(Labels(targets), Contains("127.0.0.1:9101"));
  auto v4 = std::find_if(targets.begin(), targets.end(), [](const Target& t) { return t.label == "127.0.0.1:9101"; });
  EXPECT_EQ(v4->grpc_target, "ipv4:127.0.0.1:9101");
}

TEST(TargetsTest, Ipv6LiteralIsBracketed) {
  auto targets = TargetsForEndpoint("[::1]:9103", "reinject");
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].label, "[::1]:9103");
  EXPECT_EQ(targets[0].grpc_target, "ipv6:[::1]:9103");
  EXPECT_EQ(targets[0].tls_name, "");
  EXPECT_EQ(targets[0].stage, "reinject");
}

TEST(TargetsTest, UnresolvableNameStaysAsAFailedTarget) {
  auto targets = TargetsForEndpoint("gone.invalid:9101", "");
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0].label, "gone.invalid:9101");
  EXPECT_THAT(targets[0].resolve_error, Not(IsEmpty()));
}

TEST(TargetsTest, DefaultsAreTheThreeLocalStages) {
  auto targets = ResolveTargets(Parsed({"status"}));
  EXPECT_THAT(Labels(targets), ElementsAre("127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"));
  EXPECT_EQ(targets[0].stage, "frontend");
  EXPECT_EQ(targets[1].stage, "filter-bridge");
  EXPECT_EQ(targets[2].stage, "reinject");
}

TEST(TargetsTest, QueueCommandsGoToReinject) {
  EXPECT_THAT(Labels(ResolveTargets(Parsed({"queue", "list"}))), ElementsAre("127.0.0.1:9103"));
}

TEST(TargetsTest, StagePicksItsDefaultEndpoint) {
  EXPECT_THAT(Labels(ResolveTargets(Parsed({"--stage=filter-bridge", "limits", "get"}))),
              ElementsAre("127.0.0.1:9102"));
}

TEST(TargetsTest, AdminEntriesReplaceTheDefaultsWithoutDuplicates) {
  auto targets = ResolveTargets(Parsed({"--admin=10.0.0.1:9101,10.0.0.2:9101", "--admin=10.0.0.1:9101", "status"}));
  EXPECT_THAT(Labels(targets), ElementsAre("10.0.0.1:9101", "10.0.0.2:9101"));
  EXPECT_EQ(targets[0].stage, "");
}

}  // namespace
}  // namespace sluice::ctl
