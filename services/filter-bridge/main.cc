// services/filter-bridge/main.cc
//
// sluice-filter-bridge: the content-filter stage. Parses the command line and config, builds
// the filter chain (a config error names the filter), starts admin/metrics and the SMTP
// listener, and runs until SIGTERM/SIGINT, which drains.
//
// Never: starts with a filter chain it could not build.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "lib/control/config_check.h"
#include "lib/control/flags.h"
#include "lib/control/service_flags.h"
#include "lib/control/session_fetcher.h"
#include "lib/control/stage_process.h"
#include "lib/control/status_watcher.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"
#include "lib/smtp/relay_hop.h"
#include "lib/smtp/tls_context.h"
#include "services/filter-bridge/config_check.h"
#include "services/filter-bridge/filters/filter_chain.h"
#include "services/filter-bridge/relay/bridge_server.h"

namespace {

// A bad config: exit 2 at start-up, 1 under --check (lib/control/config_check.h).
int Fail(const absl::Status& st, bool checking = false) {
  std::cerr << "sluice-filter-bridge: " << st.message() << "\n";
  return checking ? 1 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  sluice::v1::FilterBridgeConfig config;
  const control::FlagTable table = control::FilterBridgeFlags();
  auto parsed = control::ParseCommandLine(argc, argv, table, &config);
  if (!parsed.ok()) return Fail(parsed.status(), control::CheckRequested(argc, argv));
  if (parsed->action == control::CommandLineAction::kExitSuccess) return 0;
  // The start-up checks beyond the schema; --check stops after them.
  absl::Status valid = filter_bridge::CheckFilterBridgeConfig(config);
  if (parsed->action == control::CommandLineAction::kCheck) {
    return control::ReportCheck(table, config, parsed->check, valid, std::cout, std::cerr);
  }
  if (!valid.ok()) return Fail(valid);
  observe::SetMinLevel(parsed->log_level);

  auto process = control::StageProcess::Create("filter-bridge", config.server(), config.limits());
  if (!process.ok()) return Fail(process.status());
  control::StageProcess& p = **process;
  config.mutable_server()->set_hostname(p.hostname());

  auto chain = filter_bridge::FilterChain::Create(config, &p.registry());
  if (!chain.ok()) return Fail(chain.status());

  filter_bridge::BridgeMetrics metrics(p.registry());
  filter_bridge::BridgeContext ctx;
  ctx.config = config;
  ctx.hostname = p.hostname();
  ctx.next_hop_ehlo = config.next_hop_ehlo().empty() ? p.hostname() : config.next_hop_ehlo();
  auto next_hop = net::ParseHostPort(config.next_hop());
  if (!next_hop.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("next_hop: ", next_hop.status().message())));
  ctx.next_hop = *next_hop;
  ctx.runtime = &p.runtime();
  ctx.chain = chain->get();
  ctx.metrics = &metrics;
  smtp::SpoolSpace spool_space(config.spool_dir());
  ctx.spool_space = &spool_space;
  auto mynetworks = net::CidrSet::Parse({config.mynetworks().begin(), config.mynetworks().end()});
  if (!mynetworks.ok()) return Fail(mynetworks.status());
  ctx.mynetworks = *std::move(mynetworks);
  auto xforward = net::CidrSet::Parse({config.xforward_hosts().begin(), config.xforward_hosts().end()});
  if (!xforward.ok()) return Fail(xforward.status());
  ctx.xforward_hosts = *std::move(xforward);

  // Backpressure from the next stage: reinject's WatchStatus (queue full, draining).
  control::StageRuntime& runtime = p.runtime();
  std::unique_ptr<control::StatusWatcher> watcher;
  if (config.next_hop_admin_size() > 0) {
    control::StatusWatcherOptions wo;
    wo.targets.assign(config.next_hop_admin().begin(), config.next_hop_admin().end());
    auto creds = control::AdminChannelCredentials(config.server().admin_tls());
    if (!creds.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("next_hop_admin: ", creds.status().message())));
    wo.client.credentials = *creds;
    wo.fetch_limits = true;  // and learn the next stage's limits (effective_limits.h)
    watcher = std::make_unique<control::StatusWatcher>(std::move(wo));
    runtime.effective_limits().SetDownstreamTargets(watcher->description());
    watcher->OnLimits([&runtime](std::vector<control::DownstreamLimits> replicas) {
      // Lowered here means lowered for the frontend too: its watch of us asks again.
      if (runtime.effective_limits().SetDownstream(std::move(replicas))) runtime.NotifyChanged();
    });
    watcher->OnChange([&runtime](control::Downstream d) {
      observe::Info("next_hop_state").Kv("state", std::string(control::DownstreamName(d)));
      runtime.NotifyChanged();  // the frontend's watch of us sees the change at once
    });
    ctx.next_hop_state = [w = watcher.get()] { return w->state(); };
    watcher->Start();
  }

  // The upstream stage owns each session's full record (TLS, SASL, PROXY facts): fetched
  // by the XFORWARD IDENT from <peer address>:<upstream_admin_port>, or upstream_admin.
  std::unique_ptr<control::SessionFetcher> fetcher;
  std::unique_ptr<filter_bridge::SessionLookup> lookup;
  if (config.upstream_admin_port() != 0 || !config.upstream_admin().empty()) {
    control::SessionFetcherOptions fo;
    auto creds = control::AdminChannelCredentials(config.server().admin_tls());
    if (!creds.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("upstream_admin: ", creds.status().message())));
    fo.client.credentials = *creds;
    fetcher = std::make_unique<control::SessionFetcher>(std::move(fo));
    lookup = std::make_unique<filter_bridge::SessionLookup>(*fetcher, config.upstream_admin(),
                                                            config.upstream_admin_port(), absl::Milliseconds(500));
    ctx.session_lookup = lookup.get();
  }

  auto tls = smtp::MakeServerTlsContext(config.server().smtp_tls());
  if (!tls.ok()) return Fail(tls.status());
  // next_hop_tls: a bad file is a config error at start, not a 451 for every session.
  if (auto hop_tls = smtp::RelayClientTls(config.next_hop_tls()); !hop_tls.ok()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("next_hop_tls: ", hop_tls.status().message())));
  }
  filter_bridge::BridgeServer server(ctx, p.pool(), tls->get());

  // Capacity flows upstream: no room for another filter transaction here, or none at the
  // next hop, and the frontend stops admitting.
  runtime.SetAcceptingHook([&runtime, &ctx] {
    auto limits = runtime.limits().Get();
    uint32_t capacity = limits->max_filter_transactions() > 0 ? limits->max_filter_transactions()
                                                              : limits->max_sessions();
    return runtime.transactions_in_flight() < capacity && ctx.next_hop_state() != control::Downstream::kFull;
  });
  runtime.SetStatusHook([&runtime, &ctx](sluice::v1::StageStatus& s) {
    auto limits = runtime.limits().Get();
    uint32_t capacity = limits->max_filter_transactions() > 0 ? limits->max_filter_transactions()
                                                              : limits->max_sessions();
    uint32_t in_flight = runtime.transactions_in_flight();
    s.set_filter_capacity(capacity > in_flight ? capacity - in_flight : 0);
    s.set_downstream(ctx.next_hop.ToString());
    bool next_hop_full = ctx.next_hop_state() == control::Downstream::kFull;
    s.set_downstream_accepting(!next_hop_full);
  });
  smtp::SessionServer& sessions = server.sessions();
  p.SetDrainTarget(control::DrainTargetFor(sessions));
  if (absl::Status st = p.StartControl({}); !st.ok()) return Fail(st);
  auto listen = net::ParseHostPort(config.server().smtp_listen());
  if (!listen.ok()) return Fail(listen.status());
  if (absl::Status st = server.Start(*listen); !st.ok()) return Fail(st);
  observe::Info("listening")
      .Kv("smtp", absl::StrCat(listen->host, ":", server.port()))
      .Kv("next_hop", ctx.next_hop.ToString())
      .Kv("filters", static_cast<uint64_t>((*chain)->size()));
  return p.RunUntilSignal();
}
