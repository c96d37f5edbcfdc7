// services/frontend/frontend_metrics.h
//
// Every metric of the frontend, declared in one place (Envoy style), with every label value
// created at start-up so dashboards and alerts see zeros, not gaps. Names follow
// sluice_frontend_<what>_<unit>; labels are small closed sets.
//
// Never: labels by address, sender, recipient or id (unbounded cardinality).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace sluice::frontend {

class FrontendMetrics {
 public:
  explicit FrontendMetrics(prometheus::Registry& registry);

  // connections_total{outcome}: accepted, max_sessions, per_client_limit, connection_rate,
  // draining, backpressure, proxy_protocol_error.
  void Connection(std::string_view outcome);
  // transactions_total{outcome}: delivered (filter said 2xx), rejected (5xx), deferred (4xx),
  // aborted (client gone, violation, reset before the end).
  void Transaction(std::string_view outcome);
  // limit_hits_total{limit}: every limit of Limits that refused something, and the input
  // rules (bare_newline, nul_character, unauth_pipelining).
  void LimitHit(std::string_view limit);
  // proxy_failures_total{reason}: connect, timeout, lost, protocol, unexpected_reply,
  // backpressure, spool (speed_adjust temporary file).
  void ProxyFailure(std::string_view reason);
  // filter_connections_total{outcome}: opened (a new connection for a transaction), reused
  // (one from the pool), replaced (a pooled one the filter had closed while it was idle; the
  // transaction went on over a new one).
  void FilterConnection(std::string_view outcome);
  // header_fields_removed_total{header}: x_sluice (X-Sluice-* from a client),
  // authentication_results (naming our authserv-id).
  void HeaderFieldsRemoved(std::string_view header, uint64_t n);
  // restriction_refusals_total{check,action}: a restriction check refused a command
  // (action reject: 5xx, defer: 4xx). Every check declares its name at start-up.
  void DeclareRestriction(std::string_view check);
  void RestrictionRefused(std::string_view check, std::string_view action);
  // policy_connections_total{event}: opened, reused, and closed_request_limit,
  // closed_max_idle, closed_max_ttl, closed_error (the policy_service_* limits biting).
  void PolicyConnection(std::string_view event);
  // dnsbl_answers_total{result}: listed, not_listed, error, late (past dnsbl_timeout_seconds:
  // counted as not listed), per site looked at when a client is judged.
  void DnsblAnswer(std::string_view result);
  // table_reloads_total{outcome}: ok, error (a changed restriction table that did not load).
  void TableReload(bool ok) { (ok ? table_reload_ok_ : table_reload_error_)->Increment(); }
  void TlsSession(bool ok) { (ok ? tls_ok_ : tls_failed_)->Increment(); }

  prometheus::Gauge& sessions_active() { return *sessions_active_; }
  prometheus::Counter& received_bytes() { return *received_bytes_; }
  prometheus::Histogram& proxy_connect_seconds() { return *proxy_connect_; }
  prometheus::Histogram& proxy_reply_seconds() { return *proxy_reply_; }
  prometheus::Gauge& filter_accepting() { return *filter_accepting_; }

  // Per-client counts shared across replicas in Redis (shared_limits.h).
  // shared_limits_configured: 1 when shared_limits names a Redis; shared_limits_up: 1 while
  // the counts are kept there, 0 while this replica counts alone.
  prometheus::Gauge& shared_limits_configured() { return *shared_limits_configured_; }
  prometheus::Gauge& shared_limits_up() { return *shared_limits_up_; }
  // shared_limits_fallbacks_total{reason}: decisions taken from this replica's own counts
  // although shared_limits is set: down (Redis known unavailable, no wait), timeout (no
  // answer within shared_limits_timeout_milliseconds), error (an error reply).
  void SharedLimitsFallback(std::string_view reason) { Inc(shared_limits_fallbacks_, reason); }
  // shared_limits_request_duration_seconds: a session's wait for Redis's answer.
  prometheus::Histogram& shared_limits_request_seconds() { return *shared_limits_request_; }

 private:
  static void Inc(std::map<std::string, prometheus::Counter*, std::less<>>& m, std::string_view key);

  std::map<std::string, prometheus::Counter*, std::less<>> connections_;
  std::map<std::string, prometheus::Counter*, std::less<>> transactions_;
  std::map<std::string, prometheus::Counter*, std::less<>> limit_hits_;
  std::map<std::string, prometheus::Counter*, std::less<>> proxy_failures_;
  std::map<std::string, prometheus::Counter*, std::less<>> header_fields_removed_;
  prometheus::Family<prometheus::Counter>* restriction_refusals_;
  std::map<std::string, prometheus::Counter*, std::less<>> restriction_children_;  // "check/action"
  prometheus::Counter* table_reload_ok_;
  prometheus::Counter* table_reload_error_;
  std::map<std::string, prometheus::Counter*, std::less<>> filter_connections_;
  std::map<std::string, prometheus::Counter*, std::less<>> policy_connections_;
  std::map<std::string, prometheus::Counter*, std::less<>> dnsbl_answers_;
  prometheus::Counter* tls_ok_;
  prometheus::Counter* tls_failed_;
  prometheus::Gauge* sessions_active_;
  prometheus::Counter* received_bytes_;
  prometheus::Histogram* proxy_connect_;
  prometheus::Histogram* proxy_reply_;
  prometheus::Gauge* filter_accepting_;
  prometheus::Gauge* shared_limits_configured_;
  prometheus::Gauge* shared_limits_up_;
  std::map<std::string, prometheus::Counter*, std::less<>> shared_limits_fallbacks_;
  prometheus::Histogram* shared_limits_request_;
};

}  // namespace sluice::frontend
