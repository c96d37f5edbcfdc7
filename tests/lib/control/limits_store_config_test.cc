// tests/lib/control/limits_store_config_test.cc
//
// Live limits: UpdateLimits with a field mask and without one, reset to default through the
// mask, lists replaced, invalid updates publishing nothing, callbacks, and readers running
// while writers publish.
//
// Never: asserts on timing (the concurrency test checks only that every snapshot is whole).
#include "lib/control/limits_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "lib/control/proto_defaults.h"
#include "lib/observe/log.h"
#include "lib/status/status_matchers.h"

namespace sluice::control {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;
using ::testing::ElementsAre;
using sluice::v1::Limits;
using sluice::v1::UpdateLimitsRequest;

Limits Defaults() {
  Limits l;
  ApplyDefaults(&l);
  return l;
}

TEST(LimitsStoreTest, StartsWithTheInitialLimits) {
  LimitsStore store(Defaults());
  EXPECT_EQ(store.Get()->max_sessions(), 100u);
  EXPECT_EQ(store.updates(), 0u);
}

TEST(LimitsStoreTest, WithoutAMaskPresentFieldsChange) {
  LimitsStore store(Defaults());
  UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(250);
  req.mutable_limits()->set_per_client_connection_limit(0);  // present zero: "no limit"
  auto updated = store.Update(req);
  ASSERT_THAT(updated, IsOk());
  EXPECT_EQ(updated->max_sessions(), 250u);
  auto now = store.Get();
  EXPECT_EQ(now->max_sessions(), 250u);
  EXPECT_EQ(now->per_client_connection_limit(), 0u);
  EXPECT_EQ(now->proxy_timeout_seconds(), 100u);  // untouched
  EXPECT_THAT(now->limit_exemptions(), ElementsAre("127.0.0.0/8", "::1/128"));  // empty list: untouched
  EXPECT_EQ(store.updates(), 1u);
}

TEST(LimitsStoreTest, WithAMaskOnlyNamedFieldsChange) {
  LimitsStore store(Defaults());
  UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(250);
  req.mutable_limits()->set_proxy_timeout_seconds(30);
  req.mutable_update_mask()->add_paths("proxy_timeout_seconds");
  ASSERT_THAT(store.Update(req), IsOk());
  EXPECT_EQ(store.Get()->max_sessions(), 100u);
  EXPECT_EQ(store.Get()->proxy_timeout_seconds(), 30u);
}

TEST(LimitsStoreTest, MaskedButAbsentFieldReturnsToItsDefault) {
  Limits initial = Defaults();
  initial.set_max_recipients(5);
  initial.clear_limit_exemptions();
  initial.add_limit_exemptions("10.0.0.0/8");
  LimitsStore store(initial);
  UpdateLimitsRequest req;
  req.mutable_update_mask()->add_paths("limits.max_recipients");
  req.mutable_update_mask()->add_paths("limit_exemptions");
  ASSERT_THAT(store.Update(req), IsOk());
  EXPECT_EQ(store.Get()->max_recipients(), 1000u);
  EXPECT_THAT(store.Get()->limit_exemptions(), ElementsAre("127.0.0.0/8", "::1/128"));
}

TEST(LimitsStoreTest, ListsAreReplacedNotAppended) {
  LimitsStore store(Defaults());
  UpdateLimitsRequest req;
  req.mutable_limits()->add_limit_exemptions("192.0.2.0/24");
  ASSERT_THAT(store.Update(req), IsOk());
  EXPECT_THAT(store.Get()->limit_exemptions(), ElementsAre("192.0.2.0/24"));
}

TEST(LimitsStoreTest, InvalidUpdatePublishesNothing) {
  LimitsStore store(Defaults());
  int called = 0;
  store.OnChange([&](const Limits&) { ++called; });
  auto before = store.Get();
  UpdateLimitsRequest req;
  req.mutable_limits()->set_max_sessions(500);
  req.mutable_limits()->set_hard_error_limit(0);
  EXPECT_THAT(store.Update(req), StatusIs(absl::StatusCode::kInvalidArgument,
                                          "limits.hard_error_limit: 0 is below the minimum 1"));
  UpdateLimitsRequest cidr;
  cidr.mutable_limits()->add_limit_exemptions("not/a/cidr");
  EXPECT_THAT(store.Update(cidr), StatusIs(absl::StatusCode::kInvalidArgument, "limits.limit_exemptions[0]"));
  EXPECT_EQ(store.Get(), before);  // the very same snapshot
  EXPECT_EQ(store.Get()->max_sessions(), 100u);
  EXPECT_EQ(store.updates(), 0u);
  EXPECT_EQ(called, 0);
}

TEST(LimitsStoreTest, UnknownMaskPathAndEmptyRequestAreRejected) {
  LimitsStore store(Defaults());
  UpdateLimitsRequest req;
  req.mutable_update_mask()->add_paths("max_sesions");
  EXPECT_THAT(store.Update(req), StatusIs(absl::StatusCode::kInvalidArgument,
                                          "update_mask: unknown field 'max_sesions'"));
  EXPECT_THAT(store.Update(UpdateLimitsRequest()),
              StatusIs(absl::StatusCode::kInvalidArgument, "nothing to update"));
  EXPECT_EQ(store.updates(), 0u);
}

TEST(LimitsStoreTest, CallbacksSeeEachPublishedSnapshotInOrder) {
  LimitsStore store(Defaults());
  std::vector<uint32_t> seen;
  store.OnChange([&](const Limits& l) {
    seen.push_back(l.max_sessions());
    EXPECT_EQ(store.Get()->max_sessions(), l.max_sessions());  // already published
  });
  for (uint32_t n : {10u, 20u, 30u}) {
    UpdateLimitsRequest req;
    req.mutable_limits()->set_max_sessions(n);
    ASSERT_THAT(store.Update(req), IsOk());
  }
  EXPECT_THAT(seen, ElementsAre(10u, 20u, 30u));
  EXPECT_EQ(store.updates(), 3u);
}

TEST(LimitsStoreTest, ReadersAlwaysSeeAWholeSnapshotDuringUpdates) {
  // Writers keep max_sessions == max_recipients in every update; a reader seeing them differ
  // would have seen a half-applied update.
  Limits initial = Defaults();
  initial.set_max_sessions(1);
  initial.set_max_recipients(1);
  LimitsStore store(initial);
  observe::SetMinLevel(observe::Level::kWarn);  // 400 limits_updated lines are noise here
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto l = store.Get();
        if (l->max_sessions() != l->max_recipients()) ++torn;
        ++reads;
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (uint32_t n = 1; n <= 200; ++n) {
        UpdateLimitsRequest req;
        req.mutable_limits()->set_max_sessions(n + static_cast<uint32_t>(w) * 1000);
        req.mutable_limits()->set_max_recipients(n + static_cast<uint32_t>(w) * 1000);
        EXPECT_THAT(store.Update(req), IsOk());
      }
    });
  }
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  observe::SetMinLevel(observe::Level::kInfo);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(store.updates(), 400u);
}

}  // namespace
}  // namespace sluice::control
