// services/filter-bridge/filters/filter_metrics.h
//
// Every metric of the filter chain, declared in one struct (Envoy style), every label value
// created at start-up so dashboards see zeros, not gaps:
//   sluice_filter_bridge_filter_duration_seconds{filter}          histogram
//   sluice_filter_bridge_filter_results_total{filter,verdict}     verdict: continue accept reject
//                                                                 tempfail discard hold error
//   sluice_filter_bridge_filter_failures_total{filter,reason}     reason: timeout error
// `filter` is the configured filter name (a small closed set, fixed by the config).
//
// Never: creates a label value from message or client data.
#pragma once

#include <string>
#include <vector>

#include "lib/observe/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace sluice::filter_bridge {

struct FilterChainMetrics {
  FilterChainMetrics(prometheus::Registry& registry, const std::vector<std::string>& filters);

  static const std::vector<std::string>& Verdicts();  // the `verdict` label values

  observe::Labelled<prometheus::Histogram> duration;
  observe::Labelled<prometheus::Counter> results;
  observe::Labelled<prometheus::Counter> failures;
};

}  // namespace sluice::filter_bridge
