// tests/lib/control/effective_limits_test.cc -- a stage's data-path limits are its own,
// lowered to the smallest of what the replicas behind it report (0 = no limit is the
// largest), never raised; the source names whose setting is in force; a change of the
// stage's own limits is seen at once; a lowered limit shows in the gauge.
#include "lib/control/effective_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/control/proto_defaults.h"

namespace sluice::control {
namespace {

sluice::v1::Limits Defaults() {
  sluice::v1::Limits l;
  ApplyDefaults(&l);
  return l;
}

// A downstream replica's report with one value per data-path limit.
DownstreamLimits Replica(const std::string& source, uint64_t size, uint64_t header, uint64_t rcpts) {
  DownstreamLimits d;
  d.address = "127.0.0.1:9102";
  const uint64_t values[] = {size, header, rcpts};
  for (size_t i = 0; i < DataPathLimitNames().size(); ++i) {
    auto* l = d.limits.add_limits();
    l->set_name(DataPathLimitNames()[i]);
    l->set_value(values[i]);
    l->set_configured(values[i]);
    l->set_source(source);
  }
  return d;
}

const sluice::v1::EffectiveLimit& Find(const sluice::v1::EffectiveLimits& r, const std::string& name) {
  for (const auto& l : r.limits()) {
    if (l.name() == name) return l;
  }
  static sluice::v1::EffectiveLimit none;
  ADD_FAILURE() << "no " << name;
  return none;
}

TEST(EffectiveLimitsTest, WithoutADownstreamTheOwnLimitsAreInForce) {
  LimitsStore store(Defaults());
  EffectiveLimits e("frontend", "fe-1", store, nullptr);
  sluice::v1::EffectiveLimits r = e.Report();
  EXPECT_EQ(r.stage(), "frontend");
  EXPECT_EQ(r.downstream_replicas(), 0u);
  ASSERT_EQ(r.limits_size(), 3);
  const auto& size = Find(r, "message_size_limit_bytes");
  EXPECT_EQ(size.value(), 10240000u);
  EXPECT_EQ(size.configured(), 10240000u);
  EXPECT_EQ(size.source(), "frontend/fe-1");
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 10240000u);
}

TEST(EffectiveLimitsTest, ASmallerDownstreamLimitLowersOursAndNamesItsSource) {
  sluice::v1::Limits own = Defaults();
  own.set_message_size_limit_bytes(20000000);
  LimitsStore store(own);
  prometheus::Registry registry;
  EffectiveLimits e("frontend", "fe-1", store, &registry);
  std::vector<DownstreamLimits> replicas;
  replicas.push_back(Replica("filter-bridge/fb-0", 10240000, 102400, 1000));
  EXPECT_TRUE(e.SetDownstream(replicas));
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 10240000u);
  EXPECT_EQ(e.Get()->smtpd_timeout_seconds(), own.smtpd_timeout_seconds());  // only data-path fields change
  sluice::v1::EffectiveLimits report = e.Report();
  const auto& size = Find(report, "message_size_limit_bytes");
  EXPECT_EQ(size.value(), 10240000u);
  EXPECT_EQ(size.configured(), 20000000u);
  EXPECT_EQ(size.source(), "filter-bridge/fb-0");
  EXPECT_EQ(Find(e.Report(), "max_recipients").source(), "frontend/fe-1");  // equal: ours
  EXPECT_EQ(e.Report().downstream_replicas(), 1u);
  bool seen = false;
  for (const auto& family : registry.Collect()) {
    if (family.name != "sluice_effective_limit_lowered") continue;
    for (const auto& m : family.metric) {
      if (m.label[0].value == "message_size_limit_bytes") {
        EXPECT_EQ(m.gauge.value, 1);
        seen = true;
      } else {
        EXPECT_EQ(m.gauge.value, 0) << m.label[0].value;
      }
    }
  }
  EXPECT_TRUE(seen);
  EXPECT_FALSE(e.SetDownstream(replicas));  // the same again: no change
}

TEST(EffectiveLimitsTest, ALargerDownstreamLimitNeverRaisesOurs) {
  LimitsStore store(Defaults());
  EffectiveLimits e("filter-bridge", "fb-0", store, nullptr);
  std::vector<DownstreamLimits> replicas;
  replicas.push_back(Replica("reinject/rj-0", 50000000, 1000000, 5000));
  e.SetDownstream(replicas);
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 10240000u);
  EXPECT_EQ(e.Get()->max_recipients(), 1000u);
  EXPECT_EQ(Find(e.Report(), "message_size_limit_bytes").source(), "filter-bridge/fb-0");
}

TEST(EffectiveLimitsTest, ZeroIsNoLimitAndTheSmallestReplicaWins) {
  sluice::v1::Limits own = Defaults();
  own.set_message_size_limit_bytes(0);  // no limit of our own
  LimitsStore store(own);
  EffectiveLimits e("frontend", "fe-1", store, nullptr);
  std::vector<DownstreamLimits> replicas;
  replicas.push_back(Replica("filter-bridge/fb-0", 0, 102400, 1000));
  replicas.push_back(Replica("filter-bridge/fb-1", 30000000, 102400, 500));
  replicas.push_back(Replica("filter-bridge/fb-2", 40000000, 102400, 1000));
  e.SetDownstream(replicas);
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 30000000u);
  EXPECT_EQ(Find(e.Report(), "message_size_limit_bytes").source(), "filter-bridge/fb-1");
  EXPECT_EQ(e.Get()->max_recipients(), 500u);
}

TEST(EffectiveLimitsTest, AChangeOfOurOwnLimitsIsSeenAtOnce) {
  LimitsStore store(Defaults());
  EffectiveLimits e("frontend", "fe-1", store, nullptr);
  std::vector<DownstreamLimits> replicas;
  replicas.push_back(Replica("filter-bridge/fb-0", 10240000, 102400, 1000));
  e.SetDownstream(replicas);
  sluice::v1::UpdateLimitsRequest lower;
  lower.mutable_limits()->set_message_size_limit_bytes(5000000);
  lower.mutable_update_mask()->add_paths("message_size_limit_bytes");
  ASSERT_TRUE(store.Update(lower).ok());
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 5000000u);
  EXPECT_EQ(Find(e.Report(), "message_size_limit_bytes").source(), "frontend/fe-1");
  // Downstream gone (no replica heard from any more): our own setting.
  sluice::v1::UpdateLimitsRequest raise;
  raise.mutable_limits()->set_message_size_limit_bytes(20000000);
  raise.mutable_update_mask()->add_paths("message_size_limit_bytes");
  ASSERT_TRUE(store.Update(raise).ok());
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 10240000u);
  e.SetDownstream({});
  EXPECT_EQ(e.Get()->message_size_limit_bytes(), 20000000u);
}

}  // namespace
}  // namespace sluice::control
