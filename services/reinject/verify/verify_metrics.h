// services/reinject/verify/verify_metrics.h
//
// Recipient verification's metrics (reinject), in one place:
//   sluice_reinject_verify_queries_total{answer}        what Verify answered: deliverable,
//                                                        undeliverable, deferred, unknown
//   sluice_reinject_verify_cache_lookups_total{result}  hit, miss
//   sluice_reinject_verify_probes_total{result}         deliverable, undeliverable, deferred,
//                                                        failed, timeout
//   sluice_reinject_verify_probe_seconds                probe duration (connect to RSET)
//   sluice_reinject_verify_probes_running               probes out now
//   sluice_reinject_verify_cache_entries                addresses cached
//   sluice_reinject_verify_limit_hits_total{limit}      verify_probe_concurrency (a query got
//                                                        "unknown" without a probe),
//                                                        address_verify_cache_max_entries (an
//                                                        entry was dropped to make room)
//
// Never: labels with an address.
#pragma once

#include "lib/observe/metrics.h"

namespace sluice::reinject {

struct VerifyMetrics {
  explicit VerifyMetrics(prometheus::Registry& r);
  observe::Labelled<prometheus::Counter> queries;
  observe::Labelled<prometheus::Counter> cache_lookups;
  observe::Labelled<prometheus::Counter> probes;
  prometheus::Histogram& probe_seconds;
  prometheus::Gauge& probes_running;
  prometheus::Gauge& cache_entries;
  observe::Labelled<prometheus::Counter> limit_hits;
};

}  // namespace sluice::reinject
