// services/filter-bridge/relay/bridge_metrics.h
//
// The filter-bridge relay's metrics in one place (the filters' own are in
// filters/filter_metrics.h):
//   sluice_filter_bridge_connections_total{outcome}    accepted, not_authorized, draining
//   sluice_filter_bridge_sessions_active
//   sluice_filter_bridge_transactions_total{verdict}   deliver, reject, tempfail, discard,
//                                                      downstream_error, aborted
//   sluice_filter_bridge_downstream_failures_total{reason}  connect, timeout, lost, protocol,
//                                                      unexpected_reply
//   sluice_filter_bridge_downstream_connections_total{outcome}  opened, reused (kept from the
//                                                      session's last transaction), replaced
//                                                      (the next hop had closed it while idle)
//   sluice_filter_bridge_limit_hits_total{limit}       hop_connection_idle, hop_connection_reuse_count,
//                                                      hop_connection_reuse_time (a next-hop
//                                                      connection closed for a reuse limit),
//                                                      max_sessions (a resting upstream
//                                                      connection ended to make room),
//                                                      bare_newline, nul_character,
//                                                      unauth_pipelining (input refused)
//   sluice_filter_bridge_spool_bytes_total             content bytes spooled
//   sluice_filter_bridge_relay_duration_seconds        end of content to downstream's reply
//
// Never: labels with an address or an id.
#pragma once

#include "lib/observe/metrics.h"

namespace sluice::filter_bridge {

struct BridgeMetrics {
  explicit BridgeMetrics(prometheus::Registry& r);
  observe::Labelled<prometheus::Counter> connections;
  prometheus::Gauge& sessions_active;
  observe::Labelled<prometheus::Counter> transactions;
  observe::Labelled<prometheus::Counter> downstream_failures;
  observe::Labelled<prometheus::Counter> downstream_connections;
  observe::Labelled<prometheus::Counter> limit_hits;
  prometheus::Counter& spool_bytes;
  prometheus::Histogram& relay_seconds;
};

}  // namespace sluice::filter_bridge
