// services/reinject/queue/queue_limits.h
//
// The queue and delivery limits of sluice.v1.Limits as plain values, Postfix's defaults
// filled in for fields that are not present (the config loader normally applied them
// already; this keeps the queue correct when handed a bare Limits, e.g. in tests).
// LimitsSource is how the store and the scheduler read the limits in force: a snapshot per
// use, so Admin.UpdateLimits applies live (LimitsStore::Get fits it directly).
//
// Never: caches a snapshot beyond one decision.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::reinject {

using LimitsSource = std::function<std::shared_ptr<const sluice::v1::Limits>()>;

// A source that always answers `limits`.
LimitsSource FixedLimits(sluice::v1::Limits limits);

struct QueueLimits {
  uint64_t queue_max_bytes = 0;          // 0: no limit but the disk
  uint64_t queue_min_free_bytes = 0;     // already resolved: 1.5 x message_size_limit when 0
  uint32_t delivery_concurrency = 20;
  uint32_t destination_concurrency = 20;
  absl::Duration minimal_backoff = absl::Seconds(300);
  absl::Duration maximal_backoff = absl::Seconds(4000);
  absl::Duration maximal_queue_lifetime = absl::Hours(24 * 5);
  absl::Duration queue_run_delay = absl::Seconds(300);
  absl::Duration delivery_timeout = absl::Seconds(600);
  absl::Duration connect_timeout = absl::Seconds(30);   // relay agents: TCP connect + greeting
  uint32_t delivery_connection_reuse_limit = 100;      // messages per relay connection
  absl::Duration handoff_timeout = absl::Seconds(120);           // one hand-off run
  absl::Duration handoff_resolve_interval = absl::Seconds(60);   // unanswered transfers asked after
};

QueueLimits ResolveQueueLimits(const sluice::v1::Limits& limits);
// Reads the source once; a null source or snapshot gives the defaults.
QueueLimits ResolveQueueLimits(const LimitsSource& source);

}  // namespace sluice::reinject
