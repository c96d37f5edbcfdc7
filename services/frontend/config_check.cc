// services/frontend/config_check.cc -- see config_check.h.
#include "services/frontend/config_check.h"

#include "absl/strings/str_cat.h"
#include "lib/control/admin_channel.h"
#include "lib/control/config_check.h"
#include "lib/net/cidr.h"
#include "lib/net/host_port.h"
#include "lib/redis/redis_url.h"
#include "lib/smtp/relay_hop.h"
#include "lib/smtp/tls_context.h"
#include "prometheus/registry.h"
#include "lib/control/limits_store.h"
#include "services/frontend/frontend_metrics.h"
#include "services/frontend/recipient_verification.h"
#include "services/frontend/relay_policy.h"
#include "services/frontend/restrictions/checks_from_config.h"

namespace sluice::frontend {
namespace {

absl::Status Named(const char* key, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(key, ": ", st.message()));
}

}  // namespace

absl::Status CheckFrontendConfig(const sluice::v1::FrontendConfig& config) {
  if (absl::Status st = control::CheckServerConfig(config.server()); !st.ok()) return st;
  if (config.enable_chunking()) {
    // A setting that does nothing must not look as if it did (CHUNKING is issue 12).
    return absl::InvalidArgumentError("enable_chunking: CHUNKING (BDAT) is not implemented yet; remove the key");
  }
  if (auto tls = smtp::MakeServerTlsContext(config.server().smtp_tls()); !tls.ok()) {
    return Named("server.smtp_tls", tls.status());
  }
  if (auto filter = net::ParseHostPort(config.filter()); !filter.ok()) return Named("filter", filter.status());
  if (auto tls = smtp::RelayClientTls(config.filter_tls()); !tls.ok()) return Named("filter_tls", tls.status());
  auto relay = RelayPolicy::Create({config.mynetworks().begin(), config.mynetworks().end()},
                                   {config.accepted_domains().begin(), config.accepted_domains().end()});
  if (!relay.ok()) return relay.status();  // names mynetworks or accepted_domains
  auto trusted = net::CidrSet::Parse({config.proxy_protocol_trusted().begin(), config.proxy_protocol_trusted().end()});
  if (!trusted.ok()) return Named("proxy_protocol_trusted", trusted.status());
  if (absl::Status st = control::CheckHostPorts("filter_admin", config.filter_admin()); !st.ok()) return st;
  if (!config.shared_limits().empty()) {
    if (auto url = redis::ParseRedisUrl(config.shared_limits()); !url.ok()) return Named("shared_limits", url.status());
  }
  if (auto creds = control::AdminChannelCredentials(config.server().admin_tls()); !creds.ok()) {
    return Named("server.admin_tls", creds.status());
  }
  prometheus::Registry scratch;  // the check's metrics go nowhere
  auto verification = RecipientVerification::Create(config, scratch);
  if (!verification.ok()) return verification.status();  // names verify_service or verify_domains
  // The restriction lists as main builds them: tables loaded, policy and DNSBL settings
  // parsed (nothing connects; the table watcher is never started).
  control::LimitsStore limits(config.limits());
  FrontendMetrics metrics(scratch);
  restrictions::TableWatcher watcher([] { return std::chrono::milliseconds(1000); }, [](bool) {});
  auto checks = restrictions::RestrictionsFromConfig(config, *relay, &limits, verification->get(), &metrics, watcher);
  if (!checks.ok()) return checks.status();
  return absl::OkStatus();
}

}  // namespace sluice::frontend
