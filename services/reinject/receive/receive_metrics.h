// services/reinject/receive/receive_metrics.h
//
// The reinject receiver's metrics, in one place (the queue's own are queue_metrics.h):
//   sluice_reinject_connections_total{outcome}   accepted, not_authorized, draining
//   sluice_reinject_sessions_active
//   sluice_reinject_transactions_total{outcome}  queued, held, queue_full, write_error, aborted
//   sluice_reinject_hold_marks_total{outcome}    honoured, ignored (X-Sluice-Hold not proven ours)
//   sluice_reinject_input_refusals_total{rule}   bare_newline, nul_character, unauth_pipelining
//                                                (what the upstream sent broke an input rule)
//
// Never: labels with an address or an id.
#pragma once

#include <string_view>

#include "lib/observe/metrics.h"

namespace sluice::reinject {

struct ReceiveMetrics {
  explicit ReceiveMetrics(prometheus::Registry& r);
  observe::Labelled<prometheus::Counter> connections;
  prometheus::Gauge& sessions_active;
  observe::Labelled<prometheus::Counter> transactions;
  observe::Labelled<prometheus::Counter> hold_marks;
  observe::Labelled<prometheus::Counter> input_refusals;
};

}  // namespace sluice::reinject
