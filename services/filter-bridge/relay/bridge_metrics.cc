// services/filter-bridge/relay/bridge_metrics.cc -- see bridge_metrics.h.
#include "services/filter-bridge/relay/bridge_metrics.h"

namespace sluice::filter_bridge {

BridgeMetrics::BridgeMetrics(prometheus::Registry& r)
    : connections(r, "sluice_filter_bridge_connections_total", "SMTP connections from upstream by outcome.",
                  {{"outcome", {"accepted", "not_authorized", "draining"}}}),
      sessions_active(observe::AddGauge(r, "sluice_filter_bridge_sessions_active", "Upstream SMTP sessions open now.")),
      transactions(r, "sluice_filter_bridge_transactions_total", "Mail transactions by the verdict given upstream.",
                   {{"verdict", {"deliver", "reject", "tempfail", "discard", "downstream_error", "aborted"}}}),
      downstream_failures(r, "sluice_filter_bridge_downstream_failures_total",
                          "Failures talking to the next hop (each gave upstream a 4xx).",
                          {{"reason", {"connect", "timeout", "lost", "protocol", "unexpected_reply", "capacity"}}}),
      downstream_connections(r, "sluice_filter_bridge_downstream_connections_total",
                             "Next-hop connections a transaction started on, by where it came from.",
                             {{"outcome", {"opened", "reused", "replaced"}}}),
      limit_hits(r, "sluice_filter_bridge_limit_hits_total", "Times a limit closed or refused something.",
                 {{"limit", {"hop_connection_idle", "hop_connection_reuse_count", "hop_connection_reuse_time",
                             "max_sessions", "bare_newline", "nul_character", "unauth_pipelining", "spool_space"}}}),
      spool_bytes(observe::AddCounter(r, "sluice_filter_bridge_spool_bytes_total", "Message content bytes spooled.")),
      relay_seconds(observe::AddHistogram(r, "sluice_filter_bridge_relay_duration_seconds",
                                          "From the end of the content to the next hop's final reply, filters included.",
                                          observe::LatencyBucketsSeconds())) {}

}  // namespace sluice::filter_bridge
