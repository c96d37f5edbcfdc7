// services/reinject/queue/queue_limits.cc -- see queue_limits.h.
#include "services/reinject/queue/queue_limits.h"

#include <algorithm>

namespace sluice::reinject {

LimitsSource FixedLimits(sluice::v1::Limits limits) {
  auto snapshot = std::make_shared<const sluice::v1::Limits>(std::move(limits));
  return [snapshot] { return snapshot; };
}

QueueLimits ResolveQueueLimits(const sluice::v1::Limits& l) {
  QueueLimits q;
  if (l.has_queue_max_bytes()) q.queue_max_bytes = l.queue_max_bytes();
  uint64_t message_size_limit = l.has_message_size_limit_bytes() ? l.message_size_limit_bytes() : 10240000;
  q.queue_min_free_bytes = l.has_queue_min_free_bytes() ? l.queue_min_free_bytes() : 0;
  if (q.queue_min_free_bytes == 0) q.queue_min_free_bytes = message_size_limit + message_size_limit / 2;
  if (l.has_delivery_concurrency()) q.delivery_concurrency = std::max<uint32_t>(1, l.delivery_concurrency());
  if (l.has_destination_concurrency()) {
    q.destination_concurrency = std::max<uint32_t>(1, l.destination_concurrency());
  }
  if (l.has_minimal_backoff_seconds()) {
    q.minimal_backoff = absl::Seconds(std::max<uint32_t>(1, l.minimal_backoff_seconds()));
  }
  if (l.has_maximal_backoff_seconds()) {
    q.maximal_backoff = absl::Seconds(std::max<uint32_t>(1, l.maximal_backoff_seconds()));
  }
  if (q.maximal_backoff < q.minimal_backoff) q.maximal_backoff = q.minimal_backoff;
  if (l.has_maximal_queue_lifetime_seconds()) {
    q.maximal_queue_lifetime = absl::Seconds(l.maximal_queue_lifetime_seconds());
  }
  if (l.has_queue_run_delay_seconds()) {
    q.queue_run_delay = absl::Seconds(std::max<uint32_t>(1, l.queue_run_delay_seconds()));
  }
  if (l.has_delivery_timeout_seconds()) {
    q.delivery_timeout = absl::Seconds(std::max<uint32_t>(1, l.delivery_timeout_seconds()));
  }
  if (l.has_connect_timeout_seconds()) {
    q.connect_timeout = absl::Seconds(std::max<uint32_t>(1, l.connect_timeout_seconds()));
  }
  if (l.has_handoff_timeout_seconds()) q.handoff_timeout = absl::Seconds(std::max<uint32_t>(1, l.handoff_timeout_seconds()));
  if (l.has_handoff_resolve_interval_seconds()) {
    q.handoff_resolve_interval = absl::Seconds(std::max<uint32_t>(1, l.handoff_resolve_interval_seconds()));
  }
  if (l.has_delivery_connection_reuse_limit()) {
    q.delivery_connection_reuse_limit = std::max<uint32_t>(1, l.delivery_connection_reuse_limit());
  }
  return q;
}

QueueLimits ResolveQueueLimits(const LimitsSource& source) {
  if (!source) return ResolveQueueLimits(sluice::v1::Limits());
  auto snapshot = source();
  if (!snapshot) return ResolveQueueLimits(sluice::v1::Limits());
  return ResolveQueueLimits(*snapshot);
}

}  // namespace sluice::reinject
