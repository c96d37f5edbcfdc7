// tests/lib/control/stage_runtime_test.cc
//
// StageRuntime without gRPC: serving state precedence, drain/resume callbacks, the status
// hook and its limits (never accepting unless SERVING), transactions counted by RAII,
// listeners woken on change (and by live limit updates), RecheckAccepting notifying only on
// a flip, and the control metrics it keeps.
//
// Never: depends on timing.
#include "lib/control/stage_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/lib/control/admin_test_support.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using testing::DefaultLimits;
using testing::MetricsText;

struct Runtime {
  Runtime() : limits(DefaultLimits()), runtime({"reinject", "pod-3", "1.2.3"}, limits) {}
  LimitsStore limits;
  StageRuntime runtime;
};

TEST(StageRuntime, StatusCarriesIdentityLoadAndLimits) {
  Runtime r;
  auto s1 = r.runtime.sessions().Register({});
  auto tx = r.runtime.BeginTransaction();
  sluice::v1::StageStatus s = r.runtime.Status();
  EXPECT_EQ(s.stage(), "reinject");
  EXPECT_EQ(s.instance(), "pod-3");
  EXPECT_EQ(s.version(), "1.2.3");
  EXPECT_EQ(s.state(), sluice::v1::SERVING);
  EXPECT_EQ(s.sessions_active(), 1u);
  EXPECT_EQ(s.sessions_max(), r.limits.Get()->max_sessions());
  EXPECT_EQ(s.transactions_in_flight(), 1u);
  EXPECT_TRUE(s.accepting());
  EXPECT_TRUE(s.downstream_accepting());
  EXPECT_TRUE(s.has_started_at());
  EXPECT_TRUE(s.has_now());
}

TEST(StageRuntime, TransactionsAreCountedByScope) {
  Runtime r;
  {
    auto a = r.runtime.BeginTransaction();
    auto b = r.runtime.BeginTransaction();
    EXPECT_EQ(r.runtime.transactions_in_flight(), 2u);
    StageRuntime::Transaction moved = std::move(a);
    EXPECT_EQ(r.runtime.transactions_in_flight(), 2u);
    b.End();
    EXPECT_EQ(r.runtime.transactions_in_flight(), 1u);
  }
  EXPECT_EQ(r.runtime.transactions_in_flight(), 0u);
}

TEST(StageRuntime, NotAcceptingAtMaxSessions) {
  Runtime r;
  sluice::v1::UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(1);
  req.mutable_update_mask()->add_paths("max_sessions");
  ASSERT_TRUE(r.limits.Update(req).ok());
  auto h = r.runtime.sessions().Register({});
  EXPECT_FALSE(r.runtime.Status().accepting());
  h.reset();
  EXPECT_TRUE(r.runtime.Status().accepting());
}

TEST(StageRuntime, DrainRunsCallbacksOnceAndResumeUndoesIt) {
  Runtime r;
  std::vector<absl::Duration> drains;
  int resumes = 0;
  r.runtime.OnDrain([&](absl::Duration d) { drains.push_back(d); });
  r.runtime.OnResume([&] { ++resumes; });
  EXPECT_FALSE(r.runtime.Resume());  // not draining
  EXPECT_TRUE(r.runtime.BeginDrain(absl::Seconds(9)));
  EXPECT_FALSE(r.runtime.BeginDrain(absl::Seconds(1)));  // already draining
  ASSERT_EQ(drains.size(), 1u);
  EXPECT_EQ(drains[0], absl::Seconds(9));
  EXPECT_EQ(r.runtime.state(), sluice::v1::DRAINING);
  EXPECT_FALSE(r.runtime.Status().accepting());
  EXPECT_THAT(MetricsText(r.runtime.registry()), HasSubstr("sluice_stage_draining 1"));
  EXPECT_TRUE(r.runtime.Resume());
  EXPECT_EQ(resumes, 1);
  EXPECT_EQ(r.runtime.state(), sluice::v1::SERVING);
  EXPECT_THAT(MetricsText(r.runtime.registry()), HasSubstr("sluice_stage_draining 0"));
}

TEST(StageRuntime, DrainingWinsOverUnavailable) {
  Runtime r;
  r.runtime.SetUnavailable("queue disk full");
  EXPECT_EQ(r.runtime.state(), sluice::v1::UNAVAILABLE);
  EXPECT_EQ(r.runtime.Status().state_reason(), "queue disk full");
  r.runtime.BeginDrain(absl::Seconds(1));
  EXPECT_EQ(r.runtime.state(), sluice::v1::DRAINING);
  r.runtime.Resume();
  EXPECT_EQ(r.runtime.state(), sluice::v1::UNAVAILABLE);
  r.runtime.SetAvailable();
  EXPECT_EQ(r.runtime.state(), sluice::v1::SERVING);
}

TEST(StageRuntime, HookFillsStageFieldsButCannotAcceptUnlessServing) {
  Runtime r;
  r.runtime.SetStatusHook([](sluice::v1::StageStatus& s) {
    s.set_queue_bytes(4096);
    s.set_disk_free_bytes(1 << 20);
    s.set_accepting(true);
  });
  EXPECT_EQ(r.runtime.Status().queue_bytes(), 4096u);
  r.runtime.SetUnavailable("disk");
  EXPECT_FALSE(r.runtime.Status().accepting());
  r.runtime.SetAvailable();
  r.runtime.SetStatusHook([](sluice::v1::StageStatus& s) { s.set_accepting(false); });
  EXPECT_FALSE(r.runtime.Status().accepting());
}

TEST(StageRuntime, ListenersHearChangesAndLimitUpdates) {
  Runtime r;
  int calls = 0;
  auto id = r.runtime.AddListener([&] { ++calls; });
  r.runtime.NotifyChanged();
  EXPECT_EQ(calls, 1);
  r.runtime.BeginDrain(absl::Seconds(1));
  EXPECT_EQ(calls, 2);
  sluice::v1::UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(7);
  req.mutable_update_mask()->add_paths("max_sessions");
  ASSERT_TRUE(r.limits.Update(req).ok());
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(MetricsText(r.runtime.registry()), HasSubstr("sluice_limits_updates_total 1"));
  r.runtime.RemoveListener(id);
  r.runtime.NotifyChanged();
  EXPECT_EQ(calls, 3);
}

TEST(StageRuntime, RecheckAcceptingNotifiesOnlyOnAFlip) {
  Runtime r;
  sluice::v1::UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(1);
  req.mutable_update_mask()->add_paths("max_sessions");
  ASSERT_TRUE(r.limits.Update(req).ok());
  int calls = 0;
  r.runtime.AddListener([&] { ++calls; });
  r.runtime.RecheckAccepting();  // first look: accepting
  int after_first = calls;
  r.runtime.RecheckAccepting();  // unchanged
  EXPECT_EQ(calls, after_first);
  auto h = r.runtime.sessions().Register({});
  r.runtime.RecheckAccepting();  // full now
  EXPECT_EQ(calls, after_first + 1);
  h.reset();
  r.runtime.RecheckAccepting();  // room again
  EXPECT_EQ(calls, after_first + 2);
}

TEST(StageRuntime, LimitsCallbackOutlivingTheRuntimeIsHarmless) {
  LimitsStore limits(DefaultLimits());
  {
    StageRuntime runtime({"frontend", "pod", "v"}, limits);
  }
  sluice::v1::UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(3);
  req.mutable_update_mask()->add_paths("max_sessions");
  EXPECT_TRUE(limits.Update(req).ok());
}

// sluice_stage_state says the state the stage is in, so an alert can see a reinject that
// refuses mail after it left its Service (no refusals are counted then).
TEST(StageRuntime, StateGaugeFollowsEveryChangeAndBuildInfoNamesTheVersion) {
  Runtime r;
  auto text = [&] { return MetricsText(r.runtime.registry()); };
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"serving\"} 1"));
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"unavailable\"} 0"));
  EXPECT_THAT(text(), HasSubstr("sluice_build_info{version=\"1.2.3\"} 1"));
  r.runtime.SetUnavailable("queue full");
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"unavailable\"} 1"));
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"serving\"} 0"));
  r.runtime.BeginDrain(absl::Seconds(1));
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"draining\"} 1"));
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"unavailable\"} 0"));
  r.runtime.Resume();
  r.runtime.SetAvailable();
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"serving\"} 1"));
  EXPECT_THAT(text(), HasSubstr("sluice_stage_state{state=\"draining\"} 0"));
}

}  // namespace
}  // namespace sluice::control
