// services/frontend/main.cc
//
// sluice-frontend: the public SMTP server. Parses the command line and config (CLI contract
// in DESIGN.md), builds the shared frontend context, starts the admin/metrics servers, the
// watch on the filter stage's capacity and limits (filter_admin: Admin.WatchStatus,
// GetEffectiveLimits), the pool of idle filter connections and the SMTP listener, and runs
// until SIGTERM/SIGINT, which drains.
//
// Never: starts serving with an invalid config (it exits non-zero naming the problem).
#include <cstdio>
#include <iostream>

#include "lib/control/config_check.h"
#include "lib/control/flags.h"
#include "lib/control/service_flags.h"
#include "lib/control/session_id.h"
#include "lib/control/stage_process.h"
#include "lib/control/status_watcher.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"
#include "lib/smtp/relay_hop.h"
#include "lib/smtp/spool_space.h"
#include "lib/smtp/tls_context.h"
#include "services/frontend/config_check.h"
#include "services/frontend/filter_pool.h"
#include "services/frontend/frontend_server.h"
#include "services/frontend/restrictions/checks_from_config.h"
#include "services/frontend/shared_limits.h"

namespace {

// A bad config: exit 2 at start-up, 1 under --check (lib/control/config_check.h).
int Fail(const absl::Status& st, bool checking = false) {
  std::cerr << "sluice-frontend: " << st.message() << "\n";
  return checking ? 1 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  sluice::v1::FrontendConfig config;
  const control::FlagTable table = control::FrontendFlags();
  auto parsed = control::ParseCommandLine(argc, argv, table, &config);
  if (!parsed.ok()) return Fail(parsed.status(), control::CheckRequested(argc, argv));
  if (parsed->action == control::CommandLineAction::kExitSuccess) return 0;
  // The start-up checks beyond the schema; --check stops after them.
  absl::Status valid = frontend::CheckFrontendConfig(config);
  if (parsed->action == control::CommandLineAction::kCheck) {
    return control::ReportCheck(table, config, parsed->check, valid, std::cout, std::cerr);
  }
  if (!valid.ok()) return Fail(valid);
  observe::SetMinLevel(parsed->log_level);

  auto process = control::StageProcess::Create("frontend", config.server(), config.limits());
  if (!process.ok()) return Fail(process.status());
  control::StageProcess& p = **process;

  frontend::FrontendContext ctx;
  ctx.config = config;
  ctx.hostname = p.hostname();
  ctx.proxy_ehlo = config.proxy_ehlo().empty() ? p.hostname() : config.proxy_ehlo();
  auto filter = net::ParseHostPort(config.filter());
  if (!filter.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("filter: ", filter.status().message())));
  ctx.filter = *filter;
  auto filter_tls = smtp::RelayClientTls(config.filter_tls());
  if (!filter_tls.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("filter_tls: ", filter_tls.status().message())));
  ctx.filter_tls = *std::move(filter_tls);
  ctx.limits = &p.limits();
  ctx.effective_limits = &p.runtime().effective_limits();
  auto relay = frontend::RelayPolicy::Create({config.mynetworks().begin(), config.mynetworks().end()},
                                             {config.accepted_domains().begin(), config.accepted_domains().end()});
  if (!relay.ok()) return Fail(relay.status());
  ctx.relay = *std::move(relay);
  auto trusted = net::CidrSet::Parse({config.proxy_protocol_trusted().begin(), config.proxy_protocol_trusted().end()});
  if (!trusted.ok()) return Fail(trusted.status());
  ctx.proxy_protocol_trusted = *std::move(trusted);
  frontend::FrontendMetrics metrics(p.registry());
  ctx.metrics = &metrics;
  smtp::SpoolSpace spool_space(config.spool_dir());
  ctx.spool_space = &spool_space;
  auto verification = frontend::RecipientVerification::Create(config, p.registry());
  if (!verification.ok()) return Fail(verification.status());
  ctx.verification = verification->get();
  // The checks before DATA; their tables are looked at for changes by their own thread.
  frontend::restrictions::TableWatcher table_watcher(
      [&p] { return std::chrono::milliseconds(1000LL * p.limits().Get()->restriction_table_check_seconds()); },
      [&metrics](bool ok) { metrics.TableReload(ok); });
  auto checks = frontend::restrictions::RestrictionsFromConfig(config, ctx.relay, ctx.limits, ctx.verification, &metrics,
                                                                    table_watcher);
  if (!checks.ok()) return Fail(checks.status());
  ctx.restrictions = *std::move(checks);
  table_watcher.Start();
  // Per-client counts shared by every replica naming the same Redis (shared_limits).
  std::unique_ptr<frontend::SharedLimits> shared_limits;
  if (!config.shared_limits().empty()) {
    auto shared = frontend::SharedLimits::Create(config.shared_limits(),
                                                 frontend::SharedLimits::NewReplicaId(p.hostname()), p.pool().next(),
                                                 p.limits(), metrics);
    if (!shared.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("shared_limits: ", shared.status().message())));
    shared_limits = *std::move(shared);
    ctx.admission.set_shared(shared_limits.get());
    p.AddBeforeStop([&shared_limits] { shared_limits->Stop(); });  // after the drain: our counts leave Redis
    shared_limits->Start();
  }
  auto set_exemptions = [&ctx](const sluice::v1::Limits& l) {
    auto set = net::CidrSet::Parse({l.limit_exemptions().begin(), l.limit_exemptions().end()});
    if (set.ok()) ctx.SetLimitExemptions(std::make_shared<net::CidrSet>(*std::move(set)));
  };
  set_exemptions(*p.limits().Get());
  p.limits().OnChange(set_exemptions);

  // Backpressure: watch the filter stage's WatchStatus; while every watched replica says it
  // has no room (or is draining), new sessions get 421 4.3.2 at once. Without a live watch
  // the state is kUnknown and connect errors speak for the filter, as without a watch.
  control::StageRuntime& runtime = p.runtime();
  std::unique_ptr<control::StatusWatcher> watcher;
  if (config.filter_admin_size() > 0) {
    control::StatusWatcherOptions wo;
    wo.targets.assign(config.filter_admin().begin(), config.filter_admin().end());
    auto creds = control::AdminChannelCredentials(config.server().admin_tls());
    if (!creds.ok()) return Fail(absl::InvalidArgumentError(absl::StrCat("filter_admin: ", creds.status().message())));
    wo.client.credentials = *creds;
    wo.fetch_limits = true;  // and learn the limits of the stages behind (effective_limits.h)
    watcher = std::make_unique<control::StatusWatcher>(std::move(wo));
    runtime.effective_limits().SetDownstreamTargets(watcher->description());
    watcher->OnLimits([&runtime](std::vector<control::DownstreamLimits> replicas) {
      if (runtime.effective_limits().SetDownstream(std::move(replicas))) runtime.NotifyChanged();
    });
    watcher->OnChange([&metrics, &runtime](control::Downstream d) {
      metrics.filter_accepting().Set(d == control::Downstream::kFull ? 0 : 1);
      observe::Info("filter_state").Kv("state", std::string(control::DownstreamName(d)));
      runtime.NotifyChanged();  // our own upstream watchers see the change too
    });
    ctx.filter_state = [w = watcher.get()] { return w->state(); };
    watcher->Start();
  }

  // Filter connections outlive transactions (filter_connection_reuse); a drain QUITs the
  // idle ones and parks no more until a resume.
  std::unique_ptr<frontend::FilterPool> filter_pool;
  if (config.filter_connection_reuse()) {
    filter_pool = std::make_unique<frontend::FilterPool>(p.pool(), p.limits(), metrics);
    ctx.filter_pool = filter_pool.get();
    runtime.OnDrain([pool = filter_pool.get()](absl::Duration) { pool->Close(); });
    runtime.OnResume([pool = filter_pool.get()] { pool->Reopen(); });
    p.AddBeforeStop([pool = filter_pool.get()] { pool->Close(); });
  }

  auto tls = smtp::MakeServerTlsContext(config.server().smtp_tls());
  if (!tls.ok()) return Fail(tls.status());

  frontend::FrontendServer server(
      ctx, p.pool(), tls->get(),
      [&runtime](const sluice::v1::SessionMetadata& meta, std::function<void()> kill) {
        std::shared_ptr<control::SessionHandle> handle = runtime.sessions().Register(meta);
        handle->SetKiller(std::move(kill));
        runtime.RecheckAccepting();
        frontend::SessionRegistration reg;
        reg.update = [handle](const std::function<void(sluice::v1::SessionMetadata&)>& fn) { handle->Update(fn); };
        // Deregister, then let the filter-capacity watchers of upstream see the new count.
        reg.keepalive = std::shared_ptr<void>(nullptr, [handle, &runtime](void*) mutable {
          handle.reset();
          runtime.RecheckAccepting();
        });
        return reg;
      },
      [] { return control::NewSessionId(); });

  runtime.SetAcceptingHook([&ctx] { return ctx.filter_state() != control::Downstream::kFull; });
  runtime.SetStatusHook([&ctx](sluice::v1::StageStatus& s) {
    s.set_transactions_in_flight(ctx.transactions_in_flight.load());
    s.set_downstream(ctx.filter.ToString());
    s.set_downstream_accepting(ctx.filter_state() != control::Downstream::kFull);
  });
  smtp::SessionServer& sessions = server.sessions();
  p.SetDrainTarget(control::DrainTargetFor(sessions));

  if (absl::Status st = p.StartControl({}); !st.ok()) return Fail(st);
  auto listen = net::ParseHostPort(config.server().smtp_listen());
  if (!listen.ok()) return Fail(listen.status());
  if (absl::Status st = server.Start(*listen); !st.ok()) return Fail(st);
  observe::Info("listening")
      .Kv("smtp", absl::StrCat(listen->host, ":", server.port()))
      .Kv("filter", ctx.filter.ToString())
      .Kv("admin_port", static_cast<int64_t>(p.admin_port()))
      .Kv("metrics_port", static_cast<int64_t>(p.metrics_port()));
  return p.RunUntilSignal();
}
