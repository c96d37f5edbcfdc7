// services/frontend/frontend_metrics.cc -- see frontend_metrics.h.
#include "services/frontend/frontend_metrics.h"

namespace sluice::frontend {
namespace {

std::map<std::string, prometheus::Counter*, std::less<>> CounterSet(prometheus::Registry& r, const std::string& name,
                                                                    const std::string& help, const std::string& label,
                                                                    std::initializer_list<const char*> values) {
  auto& family = prometheus::BuildCounter().Name(name).Help(help).Register(r);
  std::map<std::string, prometheus::Counter*, std::less<>> out;
  for (const char* v : values) out[v] = &family.Add({{label, v}});
  return out;
}

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100};

}  // namespace

FrontendMetrics::FrontendMetrics(prometheus::Registry& r)
    : connections_(CounterSet(r, "sluice_frontend_connections_total", "Client connections by admission outcome.",
                              "outcome",
                              {"accepted", "max_sessions", "per_client_limit", "connection_rate", "draining",
                               "backpressure", "proxy_protocol_error"})),
      transactions_(CounterSet(r, "sluice_frontend_transactions_total",
                               "Mail transactions by outcome (the reply the client got at end of DATA).", "outcome",
                               {"delivered", "rejected", "deferred", "aborted"})),
      limit_hits_(CounterSet(r, "sluice_frontend_limit_hits_total", "Times a limit refused something.", "limit",
                             {"max_sessions", "per_client_connections", "connection_rate", "message_rate",
                              "recipient_rate", "max_recipients", "message_size", "header_size", "line_length",
                              "hard_errors", "junk_commands", "timeout", "session_deadline", "bare_newline",
                              "nul_character", "unauth_pipelining", "max_transactions", "hop_connection_idle",
                              "hop_connection_reuse_count", "hop_connection_reuse_time",
                              "client_name_cache_max_entries", "recipient_overshoot", "spool_space"})),
      proxy_failures_(CounterSet(r, "sluice_frontend_proxy_failures_total",
                                 "Failures talking to the filter stage (each gave the client a 4xx).", "reason",
                                 {"connect", "timeout", "lost", "protocol", "unexpected_reply", "backpressure", "spool"})),
      header_fields_removed_(CounterSet(r, "sluice_frontend_header_fields_removed_total",
                                        "Header fields taken out of incoming mail: X-Sluice-* (ours alone to "
                                        "write) and Authentication-Results naming our authserv-id.",
                                        "header", {"x_sluice", "authentication_results"})),
      filter_connections_(CounterSet(r, "sluice_frontend_filter_connections_total",
                                     "Filter connections a transaction started on, by where it came from.", "outcome",
                                     {"opened", "reused", "replaced"})),
      policy_connections_(CounterSet(r, "sluice_frontend_policy_connections_total",
                                     "Policy server connections: opened, reused for a request, and closed by a "
                                     "policy_service_* limit or an error.",
                                     "event",
                                     {"opened", "reused", "closed_request_limit", "closed_max_idle", "closed_max_ttl",
                                      "closed_error"})),
      dnsbl_answers_(CounterSet(r, "sluice_frontend_dnsbl_answers_total",
                                "DNS blocklist answers per site when a client is judged (late: after "
                                "dnsbl_timeout_seconds, counted as not listed).",
                                "result", {"listed", "not_listed", "error", "late"})) {
  restriction_refusals_ = &prometheus::BuildCounter()
                               .Name("sluice_frontend_restriction_refusals_total")
                               .Help("Commands refused by a restriction check before DATA (Postfix smtpd_*_restrictions), "
                                     "by check and action (reject: 5xx, defer: 4xx).")
                               .Register(r);
  auto& reloads = prometheus::BuildCounter()
                      .Name("sluice_frontend_table_reloads_total")
                      .Help("Reloads of restriction tables whose files changed, by outcome (error: the old table stays).")
                      .Register(r);
  table_reload_ok_ = &reloads.Add({{"outcome", "ok"}});
  table_reload_error_ = &reloads.Add({{"outcome", "error"}});
  auto& tls = prometheus::BuildCounter()
                  .Name("sluice_frontend_tls_sessions_total")
                  .Help("STARTTLS handshakes by outcome.")
                  .Register(r);
  tls_ok_ = &tls.Add({{"outcome", "ok"}});
  tls_failed_ = &tls.Add({{"outcome", "failed"}});
  sessions_active_ = &prometheus::BuildGauge()
                          .Name("sluice_frontend_sessions_active")
                          .Help("SMTP sessions open now.")
                          .Register(r)
                          .Add({});
  received_bytes_ = &prometheus::BuildCounter()
                         .Name("sluice_frontend_received_bytes_total")
                         .Help("Message content bytes received from clients.")
                         .Register(r)
                         .Add({});
  proxy_connect_ = &prometheus::BuildHistogram()
                        .Name("sluice_frontend_proxy_connect_duration_seconds")
                        .Help("Time to open a filter connection (connect, greeting, EHLO, XFORWARD, MAIL).")
                        .Register(r)
                        .Add({}, kLatencyBuckets);
  proxy_reply_ = &prometheus::BuildHistogram()
                      .Name("sluice_frontend_proxy_reply_duration_seconds")
                      .Help("Time from the end of the content to the filter's final reply.")
                      .Register(r)
                      .Add({}, kLatencyBuckets);
  filter_accepting_ = &prometheus::BuildGauge()
                           .Name("sluice_frontend_filter_accepting")
                           .Help("1 when the watched filter stage reports room for new sessions (or is not watched).")
                           .Register(r)
                           .Add({});
  filter_accepting_->Set(1);
  shared_limits_configured_ = &prometheus::BuildGauge()
                                   .Name("sluice_frontend_shared_limits_configured")
                                   .Help("1 when shared_limits names a Redis for the per-client counts of every replica.")
                                   .Register(r)
                                   .Add({});
  shared_limits_up_ = &prometheus::BuildGauge()
                           .Name("sluice_frontend_shared_limits_up")
                           .Help("1 while the per-client counts are kept in the shared Redis; 0 while this replica "
                                 "counts alone (Redis down or slow, or shared_limits not set).")
                           .Register(r)
                           .Add({});
  shared_limits_fallbacks_ = CounterSet(r, "sluice_frontend_shared_limits_fallbacks_total",
                                        "Per-client decisions taken from this replica's own counts although "
                                        "shared_limits is set: down, timeout, error.",
                                        "reason", {"down", "timeout", "error"});
  shared_limits_request_ = &prometheus::BuildHistogram()
                                .Name("sluice_frontend_shared_limits_request_duration_seconds")
                                .Help("A session's wait for the shared per-client counts in Redis.")
                                .Register(r)
                                .Add({}, kLatencyBuckets);
}

void FrontendMetrics::HeaderFieldsRemoved(std::string_view header, uint64_t n) {
  auto it = header_fields_removed_.find(header);
  if (it != header_fields_removed_.end() && n > 0) it->second->Increment(static_cast<double>(n));
}

void FrontendMetrics::Inc(std::map<std::string, prometheus::Counter*, std::less<>>& m, std::string_view key) {
  auto it = m.find(key);
  if (it != m.end()) it->second->Increment();
}

void FrontendMetrics::Connection(std::string_view outcome) { Inc(connections_, outcome); }
void FrontendMetrics::Transaction(std::string_view outcome) { Inc(transactions_, outcome); }
void FrontendMetrics::LimitHit(std::string_view limit) { Inc(limit_hits_, limit); }
void FrontendMetrics::DeclareRestriction(std::string_view check) {
  for (const char* action : {"reject", "defer"}) {
    std::string key = std::string(check) + "/" + action;
    if (restriction_children_.count(key) == 0) {
      restriction_children_[key] = &restriction_refusals_->Add({{"check", std::string(check)}, {"action", action}});
    }
  }
}

void FrontendMetrics::RestrictionRefused(std::string_view check, std::string_view action) {
  Inc(restriction_children_, std::string(check) + "/" + std::string(action));
}

void FrontendMetrics::DnsblAnswer(std::string_view result) { Inc(dnsbl_answers_, result); }
void FrontendMetrics::PolicyConnection(std::string_view event) { Inc(policy_connections_, event); }

void FrontendMetrics::ProxyFailure(std::string_view reason) { Inc(proxy_failures_, reason); }
void FrontendMetrics::FilterConnection(std::string_view outcome) { Inc(filter_connections_, outcome); }

}  // namespace sluice::frontend
