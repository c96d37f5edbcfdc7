// services/filter-bridge/config_check.cc -- see config_check.h.
#include "services/filter-bridge/config_check.h"

#include "absl/strings/str_cat.h"
#include "lib/control/admin_channel.h"
#include "lib/control/config_check.h"
#include "lib/net/cidr.h"
#include "lib/net/host_port.h"
#include "lib/smtp/relay_hop.h"
#include "lib/smtp/tls_context.h"
#include "services/filter-bridge/filters/filter_chain.h"

namespace sluice::filter_bridge {
namespace {

absl::Status Named(const char* key, const absl::Status& st) {
  return absl::Status(st.code(), absl::StrCat(key, ": ", st.message()));
}

}  // namespace

absl::Status CheckFilterBridgeConfig(const sluice::v1::FilterBridgeConfig& config) {
  if (absl::Status st = control::CheckServerConfig(config.server()); !st.ok()) return st;
  if (auto tls = smtp::MakeServerTlsContext(config.server().smtp_tls()); !tls.ok()) {
    return Named("server.smtp_tls", tls.status());
  }
  if (auto hop = net::ParseHostPort(config.next_hop()); !hop.ok()) return Named("next_hop", hop.status());
  if (auto tls = smtp::RelayClientTls(config.next_hop_tls()); !tls.ok()) return Named("next_hop_tls", tls.status());
  if (auto nets = net::CidrSet::Parse({config.mynetworks().begin(), config.mynetworks().end()}); !nets.ok()) {
    return Named("mynetworks", nets.status());
  }
  if (auto hosts = net::CidrSet::Parse({config.xforward_hosts().begin(), config.xforward_hosts().end()}); !hosts.ok()) {
    return Named("xforward_hosts", hosts.status());
  }
  if (absl::Status st = control::CheckHostPorts("next_hop_admin", config.next_hop_admin()); !st.ok()) return st;
  if (!config.upstream_admin().empty()) {
    auto hp = net::ParseHostPort(config.upstream_admin());
    if (!hp.ok() || hp->host.empty() || hp->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat("upstream_admin: \"", config.upstream_admin(), "\" is not HOST:PORT"));
    }
  }
  if (auto creds = control::AdminChannelCredentials(config.server().admin_tls()); !creds.ok()) {
    return Named("server.admin_tls", creds.status());
  }
  // The chain as main builds it: rules compiled, filter addresses parsed (nothing connects).
  if (auto chain = FilterChain::Create(config, nullptr); !chain.ok()) return chain.status();
  return absl::OkStatus();
}

}  // namespace sluice::filter_bridge
