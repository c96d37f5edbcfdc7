// services/frontend/frontend_context.h
//
// What every frontend session shares: the parsed config, the live limits, admission, the
// relay policy and the restriction lists, the filter's address, watch and pool of idle
// connections, metrics. Built once by the server.
//
// Never: holds per-session state; is mutated after start-up except through its own
// thread-safe members (LimitsStore, Admission, atomics).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "lib/control/status_watcher.h"
#include "lib/net/cidr.h"
#include "lib/net/host_port.h"
#include "lib/net/reverse_name_cache.h"
#include "lib/smtp/relay_hop.h"
#include "lib/smtp/spool_space.h"
#include "services/frontend/admission.h"
#include "services/frontend/frontend_metrics.h"
#include "services/frontend/recipient_verification.h"
#include "services/frontend/relay_policy.h"
#include "services/frontend/restrictions/restrictions.h"
#include "sluice/v1/config.pb.h"
#include "sluice/v1/limits.pb.h"

namespace sluice::control {
class EffectiveLimits;
class LimitsStore;
}

namespace sluice::frontend {

class FilterPool;

struct FrontendContext {
  sluice::v1::FrontendConfig config;
  std::string hostname;
  std::string proxy_ehlo;
  net::HostPort filter;
  smtp::RelayTls filter_tls;  // STARTTLS towards the filter (config filter_tls); none by default
  control::LimitsStore* limits = nullptr;
  // The SMTP server's data-path limits (size, header size, recipients): `limits` lowered to
  // what the filter stage behind takes (filter_admin). Null: `limits`.
  control::EffectiveLimits* effective_limits = nullptr;
  RelayPolicy relay;
  // The checks before DATA (restrictions/checks_from_config.h); never null once serving.
  std::unique_ptr<restrictions::Restrictions> restrictions;
  Admission admission;
  FrontendMetrics* metrics = nullptr;
  net::CidrSet proxy_protocol_trusted;
  // reject_unverified_recipient (verify_recipients); null when off.
  RecipientVerification* verification = nullptr;
  // Updated when limits change (limit_exemptions is a live limit).
  std::shared_ptr<const net::CidrSet> LimitExemptions() const { return std::atomic_load(&exemptions_); }
  void SetLimitExemptions(std::shared_ptr<const net::CidrSet> s) { std::atomic_store(&exemptions_, std::move(s)); }
  // The filter stage's capacity from the status watch; kUnknown without a watch.
  std::function<control::Downstream()> filter_state = [] { return control::Downstream::kUnknown; };
  // Idle filter connections for the next transaction; null without filter_connection_reuse.
  FilterPool* filter_pool = nullptr;
  // Verified reverse names of recent clients (client_name_cache_seconds).
  net::ReverseNameCache client_names;
  std::atomic<uint32_t> transactions_in_flight{0};
  // The speed_adjust spool's room (spool_max_bytes, spool_min_free_bytes); may be null.
  smtp::SpoolSpace* spool_space = nullptr;

 private:
  std::shared_ptr<const net::CidrSet> exemptions_ = std::make_shared<net::CidrSet>();
};

}  // namespace sluice::frontend
