// tests/services/reinject/queue/queue_metrics_test.cc -- every metric and label value
// exists from the start (zeros, not gaps), and the queue moves them.
#include "services/reinject/queue/queue_metrics.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "prometheus/registry.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Commit;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

// name -> set of "label=value" strings present.
std::map<std::string, std::set<std::string>> Collect(prometheus::Registry& registry) {
  std::map<std::string, std::set<std::string>> out;
  for (const auto& family : registry.Collect()) {
    auto& labels = out[family.name];
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) labels.insert(label.name + "=" + label.value);
    }
  }
  return out;
}

double Value(prometheus::Registry& registry, const std::string& name, const std::string& label) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = label.empty();
      for (const auto& l : metric.label) match = match || (l.name + "=" + l.value) == label;
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return metric.counter.value;
      if (family.type == prometheus::MetricType::Gauge) return metric.gauge.value;
      if (family.type == prometheus::MetricType::Histogram) return static_cast<double>(metric.histogram.sample_count);
    }
  }
  return -1;
}

TEST(QueueMetricsTest, EveryMetricAndLabelValueExistsAtStart) {
  prometheus::Registry registry;
  QueueMetrics metrics(registry);
  auto m = Collect(registry);
  EXPECT_EQ(m["sluice_reinject_messages_total"],
            (std::set<std::string>{"outcome=received", "outcome=queued", "outcome=delivered", "outcome=deferred",
                                   "outcome=bounced"}));
  std::set<std::string> states{"state=incoming", "state=active", "state=deferred", "state=hold", "state=corrupt"};
  EXPECT_EQ(m["sluice_reinject_queue_messages"], states);
  EXPECT_EQ(m["sluice_reinject_queue_bytes"], states);
  EXPECT_EQ(m["sluice_reinject_recipients_total"],
            (std::set<std::string>{"outcome=delivered", "outcome=deferred", "outcome=bounced"}));
  EXPECT_EQ(m["sluice_reinject_admission_refused_total"],
            (std::set<std::string>{"reason=queue_max_bytes", "reason=disk_free"}));
  for (const char* name : {"sluice_reinject_queue_oldest_age_seconds", "sluice_reinject_disk_free_bytes",
                           "sluice_reinject_delivery_duration_seconds", "sluice_reinject_fsync_duration_seconds",
                           "sluice_reinject_commit_batch_size", "sluice_reinject_commit_batch_fsyncs"}) {
    EXPECT_EQ(m.count(name), 1u) << name;
  }
}

TEST(QueueMetricsTest, CommitsMoveCountersGaugesAndHistograms) {
  TempDir dir;
  prometheus::Registry registry;
  QueueMetrics metrics(registry);
  FakeClock clock;
  QueueStoreOptions o;
  o.queue_dir = dir / "queue";
  o.metrics = &metrics;
  o.clock = &clock;
  sluice::v1::Limits limits;
  limits.set_queue_max_bytes(10);
  limits.set_queue_min_free_bytes(1);
  o.limits = FixedLimits(limits);
  auto store = QueueStore::Open(std::move(o));
  ASSERT_THAT(store, IsOk());
  asio::io_context io;
  ASSERT_THAT(Commit(io, **store, "12345", Envelope("a@x.example", {"b@y.example"})), IsOk());
  clock.Advance(absl::Seconds(42));
  (void)(*store)->Counters();
  EXPECT_THAT((*store)->CheckAdmission(100), ::sluice::testing::StatusIs(absl::StatusCode::kResourceExhausted));

  EXPECT_EQ(Value(registry, "sluice_reinject_messages_total", "outcome=received"), 1);
  EXPECT_EQ(Value(registry, "sluice_reinject_messages_total", "outcome=queued"), 1);
  EXPECT_EQ(Value(registry, "sluice_reinject_queue_messages", "state=incoming"), 1);
  EXPECT_EQ(Value(registry, "sluice_reinject_queue_bytes", "state=incoming"), 5);
  EXPECT_EQ(Value(registry, "sluice_reinject_queue_oldest_age_seconds", ""), 42);
  EXPECT_GT(Value(registry, "sluice_reinject_disk_free_bytes", ""), 0);
  // The commit: segments/ (a new segment's name) and the segment itself, nothing else.
  EXPECT_EQ(Value(registry, "sluice_reinject_fsync_duration_seconds", ""), 2);
  EXPECT_EQ(Value(registry, "sluice_reinject_commit_batch_fsyncs", ""), 1);  // one batch observed
  EXPECT_EQ(Value(registry, "sluice_reinject_commit_batch_size", ""), 1);
  EXPECT_EQ(Value(registry, "sluice_reinject_admission_refused_total", "reason=queue_max_bytes"), 1);
}

}  // namespace
}  // namespace sluice::reinject
