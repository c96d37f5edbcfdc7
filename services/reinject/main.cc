// services/reinject/main.cc
//
// sluice-reinject: the after-filter smtpd and the queue behind it. Opens (and recovers) the
// queue, serves the Queue and Verify gRPC services beside Admin, receives on the SMTP port,
// delivers from the queue, and runs until SIGTERM/SIGINT, which drains -- and then, with
// handoff_peers, hands every queued entry to the other replicas (handoff/queue_handoff.h).
//
// Never: answers SMTP before the queue is recovered; starts with an invalid config.
#include <atomic>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "lib/control/admin_auth.h"
#include "lib/control/admin_channel.h"
#include "lib/control/config_check.h"
#include "lib/control/flags.h"
#include "lib/control/service_flags.h"
#include "lib/control/stage_process.h"
#include "lib/net/host_port.h"
#include "lib/observe/log.h"
#include "lib/smtp/tls_context.h"
#include "asio/thread_pool.hpp"
#include "services/reinject/config_check.h"
#include "services/reinject/delivery/agent_factory.h"
#include "services/reinject/delivery/scheduler.h"
#include "services/reinject/handoff/drain_handoff.h"
#include "services/reinject/handoff/queue_handoff.h"
#include "services/reinject/queue/clock.h"
#include "services/reinject/queue/queue_metrics.h"
#include "services/reinject/queue/queue_service.h"
#include "services/reinject/queue/queue_store.h"
#include "services/reinject/receive/admission_health.h"
#include "services/reinject/receive/receive_server.h"
#include "services/reinject/verify/recipient_verifier.h"
#include "services/reinject/verify/verify_service.h"

namespace {

// A bad config: exit 2 at start-up, 1 under --check (lib/control/config_check.h).
int Fail(const absl::Status& st, bool checking = false) {
  std::cerr << "sluice-reinject: " << st.message() << "\n";
  return checking ? 1 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  sluice::v1::ReinjectConfig config;
  const control::FlagTable table = control::ReinjectFlags();
  auto parsed = control::ParseCommandLine(argc, argv, table, &config);
  if (!parsed.ok()) return Fail(parsed.status(), control::CheckRequested(argc, argv));
  if (parsed->action == control::CommandLineAction::kExitSuccess) return 0;
  // The start-up checks beyond the schema; --check stops after them.
  absl::Status valid = reinject::CheckReinjectConfig(config);
  if (parsed->action == control::CommandLineAction::kCheck) {
    return control::ReportCheck(table, config, parsed->check, valid, std::cout, std::cerr);
  }
  if (!valid.ok()) return Fail(valid);
  observe::SetMinLevel(parsed->log_level);

  auto process = control::StageProcess::Create("reinject", config.server(), config.limits());
  if (!process.ok()) return Fail(process.status());
  control::StageProcess& p = **process;

  reinject::QueueMetrics queue_metrics(p.registry());
  reinject::QueueStoreOptions qo;
  qo.queue_dir = config.queue_dir();
  control::LimitsStore& limits = p.limits();
  qo.limits = [&limits] { return limits.Get(); };
  qo.metrics = &queue_metrics;
  auto store = reinject::QueueStore::Open(qo);
  if (!store.ok()) return Fail(absl::Status(store.status().code(), absl::StrCat("queue_dir: ", store.status().message())));
  reinject::QueueService queue_service(**store);

  reinject::ReceiveMetrics receive_metrics(p.registry());
  reinject::ReceiveContext ctx;
  ctx.hostname = p.hostname();
  ctx.limits = &p.limits();
  ctx.server = config.server();
  ctx.store = store->get();
  ctx.metrics = &receive_metrics;
  auto mynetworks = net::CidrSet::Parse({config.mynetworks().begin(), config.mynetworks().end()});
  if (!mynetworks.ok()) return Fail(mynetworks.status());
  ctx.mynetworks = *std::move(mynetworks);
  auto xforward = net::CidrSet::Parse({config.xforward_hosts().begin(), config.xforward_hosts().end()});
  if (!xforward.ok()) return Fail(xforward.status());
  ctx.xforward_hosts = *std::move(xforward);
  ctx.trust_verified_client_cert = config.server().trust_verified_client_cert();
  if (!config.hold_mark_key_file().empty()) {
    auto key = smtp::HoldMarkKey::Load(config.hold_mark_key_file());
    if (!key.ok()) return Fail(key.status());
    ctx.hold_mark_key = *std::move(key);
  }
  ctx.runtime = &p.runtime();

  auto tls = smtp::MakeServerTlsContext(config.server().smtp_tls());
  if (!tls.ok()) return Fail(tls.status());
  reinject::ReceiveServer server(ctx, p.runtime(), p.pool(), tls->get());

  reinject::QueueStore& queue = **store;

  // Delivery runs beside receiving: deliveries on the io threads, disk work on its own pool.
  asio::thread_pool blocking(2);
  reinject::AgentContext agent_context;
  agent_context.hostname = config.delivery_ehlo().empty() ? p.hostname() : config.delivery_ehlo();
  agent_context.blocking = blocking.get_executor();
  agent_context.limits = qo.limits;
  agent_context.tls = config.delivery_tls();
  agent_context.temp_dir = config.queue_dir() + "/large";
  auto agent = reinject::MakeDeliveryAgent(config.deliver(), agent_context);
  if (!agent.ok()) return Fail(absl::Status(agent.status().code(), absl::StrCat("deliver: ", agent.status().message())));
  reinject::SchedulerOptions so;
  so.limits = qo.limits;
  so.bounce.hostname = p.hostname();
  so.bounce.bounce_from = config.bounce_from();
  reinject::Scheduler scheduler(p.pool().next().get_executor(), blocking.get_executor(), queue, **agent,
                                reinject::SystemClock(), &queue_metrics, so);
  // Recipient verification (sluice.v1.Verify, for the frontend's RCPT check): probes take the
  // route mail takes, through the same agent, so the route is configured once (deliver).
  reinject::VerifyMetrics verify_metrics(p.registry());
  reinject::RecipientVerifierOptions vo;
  vo.agent = agent->get();
  vo.limits = qo.limits;
  vo.negative_cache = config.address_verify_negative_cache();
  vo.sender = config.address_verify_sender();
  vo.executor = [&p] { return p.pool().next().get_executor(); };
  vo.metrics = &verify_metrics;
  reinject::RecipientVerifier verifier(std::move(vo));
  reinject::VerifyService verify_service(verifier);
  // UNAVAILABLE (health NOT_SERVING, accepting=false) while the queue refuses new mail.
  reinject::AdmissionHealth admission_health(queue, p.runtime(), absl::Seconds(1));
  // Queue hand-off (issue 10): a peer's Transfer stream lands here; on SIGTERM, once the
  // deliveries in flight have ended, every entry goes to handoff_peers.
  reinject::HandoffMetrics handoff_metrics(p.registry());
  asio::thread_pool handoff_pool(1);
  std::atomic<bool> handoff_accepting{true};
  reinject::QueueHandoffOptions ho;
  ho.store = &queue;
  ho.peers.assign(config.handoff_peers().begin(), config.handoff_peers().end());
  ho.own_admin_port = [&p] { return p.admin_port(); };
  auto peer_credentials = control::AdminChannelCredentials(config.server().admin_tls());
  if (!peer_credentials.ok()) return Fail(peer_credentials.status());
  ho.credentials = *peer_credentials;
  if (!config.server().admin_token_file().empty()) {
    auto token = control::AdminAuth::ReadTokenFile(config.server().admin_token_file());
    if (!token.ok()) return Fail(token.status());
    ho.token = *token;
  }
  ho.instance = p.hostname();
  ho.metrics = &handoff_metrics;
  ho.limits = qo.limits;
  ho.receiver_executor = handoff_pool.get_executor();
  ho.accepting = [&handoff_accepting] { return handoff_accepting.load(); };
  reinject::QueueHandoff handoff(std::move(ho));
  queue_service.SetHandoff(&handoff);
  p.AddBeforeStop([&scheduler, &admission_health, &verifier, &handoff, &handoff_accepting] {
    handoff_accepting = false;  // a replica going away takes nothing in
    admission_health.Stop();
    verifier.StopAndWait(absl::Seconds(5));
    scheduler.StopAndWait(absl::Seconds(10));
    handoff.Stop();
    // Nothing delivers any more: the whole queue can go (what is left stays for the next start).
    if (handoff.configured()) handoff.HandOffAll({}, absl::ZeroDuration());
  });
  p.runtime().SetStatusHook([&queue](sluice::v1::StageStatus& s) {
    reinject::QueueCounters c = queue.Counters();
    s.set_queue_bytes(c.total_bytes);
    uint64_t n = 0;
    for (uint64_t m : c.messages) n += m;
    s.set_queue_messages(n);
    s.set_disk_free_bytes(c.disk_free_bytes);
  });
  smtp::SessionServer& sessions = server.sessions();
  p.SetDrainTarget(control::DrainTargetFor(sessions));
  // sluicectl drain --handoff: the same hand-off without exiting; drained until resume.
  reinject::DrainHandoffOptions dho;
  dho.handoff = &handoff;
  dho.store = &queue;
  dho.sessions_active = [&sessions] { return sessions.active(); };
  dho.stop_delivering = [&scheduler] { return scheduler.StopAndWait(absl::Seconds(10)); };
  dho.deliver_again = [&scheduler] { return scheduler.Restart(); };
  dho.accepting = &handoff_accepting;
  reinject::DrainHandoff drain_handoff(std::move(dho));
  control::StageRuntime::DrainHandoff admin_handoff;
  admin_handoff.check = [&drain_handoff] { return drain_handoff.Check(); };
  admin_handoff.run = [&drain_handoff](absl::Duration timeout, std::function<void(absl::Status)> done) {
    drain_handoff.Run(timeout, std::move(done));
  };
  p.runtime().SetDrainHandoff(std::move(admin_handoff));
  p.runtime().OnResume([&drain_handoff] { drain_handoff.Resume(); });
  if (absl::Status st = p.StartControl({{&queue_service, "sluice.v1.Queue"}, {&verify_service, "sluice.v1.Verify"}}); !st.ok()) return Fail(st);
  scheduler.Start();
  admission_health.Start();
  handoff.Start();  // asks after transfers a crash left unanswered
  auto listen = net::ParseHostPort(config.server().smtp_listen());
  if (!listen.ok()) return Fail(listen.status());
  if (absl::Status st = server.Start(*listen); !st.ok()) return Fail(st);
  observe::Info("listening")
      .Kv("smtp", absl::StrCat(listen->host, ":", server.port()))
      .Kv("queue_dir", config.queue_dir())
      .Kv("deliver", config.deliver());
  return p.RunUntilSignal();
}
