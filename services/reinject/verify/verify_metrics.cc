// services/reinject/verify/verify_metrics.cc -- see verify_metrics.h.
#include "services/reinject/verify/verify_metrics.h"

namespace sluice::reinject {

VerifyMetrics::VerifyMetrics(prometheus::Registry& r)
    : queries(r, "sluice_reinject_verify_queries_total", "Recipient verification queries by answer.",
              {{"answer", {"deliverable", "undeliverable", "deferred", "unknown"}}}),
      cache_lookups(r, "sluice_reinject_verify_cache_lookups_total", "Verification cache lookups.",
                    {{"result", {"hit", "miss"}}}),
      probes(r, "sluice_reinject_verify_probes_total", "Verification probes of the delivery route by result.",
             {{"result", {"deliverable", "undeliverable", "deferred", "failed", "timeout"}}}),
      probe_seconds(observe::AddHistogram(r, "sluice_reinject_verify_probe_seconds",
                                          "Duration of verification probes, connect to RSET.",
                                          observe::LatencyBucketsSeconds())),
      probes_running(observe::AddGauge(r, "sluice_reinject_verify_probes_running", "Verification probes out now.")),
      cache_entries(observe::AddGauge(r, "sluice_reinject_verify_cache_entries", "Addresses in the verification cache.")),
      limit_hits(r, "sluice_reinject_verify_limit_hits_total", "Verification limits reached.",
                 {{"limit", {"verify_probe_concurrency", "address_verify_cache_max_entries"}}}) {}

}  // namespace sluice::reinject
