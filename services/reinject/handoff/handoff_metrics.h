// services/reinject/handoff/handoff_metrics.h
//
// Every metric of the queue hand-off, declared in one place:
//
//   sluice_reinject_handoff_entries_total{direction,outcome}
//       direction: sent (this replica handing over), received (a peer handing to us)
//       outcome:   stored (the receiver took it), already_had (a retried transfer recognised
//                  by its id), refused (not taken; it stays with the sender), unanswered
//                  (sent, no answer: marked, asked after later; sent only)
//   sluice_reinject_handoff_bytes_total{direction}   content bytes confirmed stored
//   sluice_reinject_handoff_marked                    entries here waiting for a peer's answer
//   sluice_reinject_handoff_duration_seconds          one hand-off run (a drain, a move)
//   sluice_reinject_handoff_timeouts_total            runs that ended at handoff_timeout_seconds
//                                                     with entries left here
//
// Every label value is created here, so dashboards see zeros, never gaps.
// Never: labels with an address, a peer or a queue id.
#pragma once

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace sluice::reinject {

enum class HandoffOutcome { kStored = 0, kAlreadyHad, kRefused, kUnanswered };

struct HandoffMetrics {
  explicit HandoffMetrics(prometheus::Registry& registry);

  prometheus::Counter* sent[4];      // by HandoffOutcome
  prometheus::Counter* received[3];  // stored, already_had, refused
  prometheus::Counter* bytes_sent;
  prometheus::Counter* bytes_received;
  prometheus::Gauge* marked;
  prometheus::Histogram* duration;
  prometheus::Counter* timeouts;
};

}  // namespace sluice::reinject
