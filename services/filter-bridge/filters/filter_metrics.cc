// services/filter-bridge/filters/filter_metrics.cc -- see filter_metrics.h.
#include "services/filter-bridge/filters/filter_metrics.h"

namespace sluice::filter_bridge {

const std::vector<std::string>& FilterChainMetrics::Verdicts() {
  static const std::vector<std::string> kVerdicts = {"continue", "accept", "reject", "tempfail",
                                                     "discard",  "hold",   "error"};
  return kVerdicts;
}

FilterChainMetrics::FilterChainMetrics(prometheus::Registry& registry,
                                       const std::vector<std::string>& filters)
    : duration(registry, "sluice_filter_bridge_filter_duration_seconds",
               "Time one filter of the chain took per message.", {{"filter", filters}},
               observe::LatencyBucketsSeconds()),
      results(registry, "sluice_filter_bridge_filter_results_total",
              "Messages judged by each filter, by verdict (error: the filter failed).",
              {{"filter", filters}, {"verdict", Verdicts()}}),
      failures(registry, "sluice_filter_bridge_filter_failures_total",
               "Filter failures by reason; the filter's on_failure policy decided the message.",
               {{"filter", filters}, {"reason", {"timeout", "error"}}}) {}

}  // namespace sluice::filter_bridge
