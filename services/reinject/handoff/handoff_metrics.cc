// services/reinject/handoff/handoff_metrics.cc -- see handoff_metrics.h.
#include "services/reinject/handoff/handoff_metrics.h"

namespace sluice::reinject {

HandoffMetrics::HandoffMetrics(prometheus::Registry& registry) {
  auto& entries = prometheus::BuildCounter()
                      .Name("sluice_reinject_handoff_entries_total")
                      .Help("Queue entries handed over between replicas, by direction and outcome.")
                      .Register(registry);
  const char* outcomes[] = {"stored", "already_had", "refused", "unanswered"};
  for (int i = 0; i < 4; ++i) sent[i] = &entries.Add({{"direction", "sent"}, {"outcome", outcomes[i]}});
  for (int i = 0; i < 3; ++i) received[i] = &entries.Add({{"direction", "received"}, {"outcome", outcomes[i]}});
  auto& bytes = prometheus::BuildCounter()
                    .Name("sluice_reinject_handoff_bytes_total")
                    .Help("Content bytes of queue entries handed over and confirmed stored, by direction.")
                    .Register(registry);
  bytes_sent = &bytes.Add({{"direction", "sent"}});
  bytes_received = &bytes.Add({{"direction", "received"}});
  marked = &prometheus::BuildGauge()
                .Name("sluice_reinject_handoff_marked")
                .Help("Queue entries here that wait for a peer's answer about a hand-off.")
                .Register(registry)
                .Add({});
  duration = &prometheus::BuildHistogram()
                  .Name("sluice_reinject_handoff_duration_seconds")
                  .Help("Duration of one hand-off run (a drain's, a queue move's).")
                  .Register(registry)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800});
  timeouts = &prometheus::BuildCounter()
                  .Name("sluice_reinject_handoff_timeouts_total")
                  .Help("Hand-off runs that reached handoff_timeout_seconds with entries left in this queue.")
                  .Register(registry)
                  .Add({});
}

}  // namespace sluice::reinject
