// lib/control/stage_process.cc -- see stage_process.h.
#include "lib/control/stage_process.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lib/control/hostname.h"
#include "lib/observe/log.h"

namespace sluice::control {
namespace {

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StageProcess>> StageProcess::Create(std::string stage,
                                                                   const sluice::v1::ServerConfig& server,
                                                                   const sluice::v1::Limits& limits) {
  // Before any thread exists: SIGTERM/SIGINT go to sigwait() in RunUntilSignal only, and a
  // peer closing a socket never kills the process (SIGPIPE).
  sigset_t set = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<StageProcess> p(new StageProcess());
  p->stage_ = std::move(stage);
  p->server_ = server;
  p->hostname_ = server.hostname().empty() ? DefaultHostname() : server.hostname();
  observe::SetStage(p->stage_);
  p->limits_ = std::make_unique<LimitsStore>(limits);
  p->registry_ = std::make_shared<prometheus::Registry>();
  StageInfo info;
  info.stage = p->stage_;
  info.instance = server.instance().empty() || server.instance() == p->stage_ ? p->hostname_ : server.instance();
  info.version = SLUICE_VERSION_STRING;
  p->runtime_ = std::make_unique<StageRuntime>(info, *p->limits_, p->registry_);
  p->pool_ = std::make_unique<net::IoPool>(server.threads());
  p->runtime_->OnDrain([raw = p.get()](absl::Duration timeout) { raw->StartDrainThread(timeout); });
  p->runtime_->OnResume([raw = p.get()] {
    {
      std::lock_guard<std::mutex> lock(raw->mu_);
      ++raw->drain_generation_;
    }
    raw->cv_.notify_all();
    if (raw->target_.resume) raw->target_.resume();
    observe::Info("resumed");
  });
  return p;
}

StageProcess::~StageProcess() {
  if (drain_thread_.joinable()) drain_thread_.join();
}

void StageProcess::SetDrainTarget(DrainTarget target) { target_ = std::move(target); }

absl::Status StageProcess::StartControl(std::vector<AdminServerOptions::ExtraService> extra_services) {
  if (!server_.metrics_listen().empty()) {
    auto m = observe::MetricsServer::Start(server_.metrics_listen(), registry_);
    if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat("metrics_listen: ", m.status().message()));
    metrics_ = *std::move(m);
  }
  AdminServerOptions options;
  options.listen = server_.admin_listen();
  options.tls = server_.admin_tls();
  options.token_file = server_.admin_token_file();
  options.extra_services = std::move(extra_services);
  if (!options.listen.empty()) {
    auto a = AdminServer::Start(*runtime_, std::move(options));
    if (!a.ok()) return absl::Status(a.status().code(), absl::StrCat("admin_listen: ", a.status().message()));
    admin_ = *std::move(a);
  }
  pool_->Start();
  observe::Info("started")
      .Kv("hostname", hostname_)
      .Kv("admin", admin_ ? admin_->address() : std::string("off"))
      .Kv("metrics_port", static_cast<uint64_t>(metrics_port()))
      .Kv("threads", static_cast<uint64_t>(pool_->size()));
  return absl::OkStatus();
}

void StageProcess::StartDrainThread(absl::Duration timeout) {
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = ++drain_generation_;
  }
  cv_.notify_all();
  if (target_.begin) target_.begin();
  observe::Info("draining").Kv("timeout_s", absl::ToInt64Seconds(timeout));
  if (drain_thread_.joinable()) drain_thread_.join();
  drain_thread_ = std::thread([this, timeout, generation] {
    absl::Time deadline = absl::Now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    // Look at the session count every 100 ms; a Resume bumps the generation and wakes us.
    while (drain_generation_ == generation && absl::Now() < deadline) {
      if (target_.active && target_.active() == 0) return;
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    if (drain_generation_ == generation && target_.kill_all) {
      observe::Info("drain_deadline").Kv("sessions", static_cast<uint64_t>(target_.active ? target_.active() : 0));
      target_.kill_all();
    }
  });
}

int StageProcess::RunUntilSignal() {
  sigset_t set = HandledSignals();
  int sig = 0;
  sigwait(&set, &sig);
  observe::Info("signal").Kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  absl::Duration timeout = absl::Seconds(limits_->Get()->drain_timeout_seconds());
  if (!runtime_->draining()) runtime_->BeginDrain(timeout);
  if (drain_thread_.joinable()) drain_thread_.join();
  // After the deadline kill, give the sessions a moment to say 421 and close.
  absl::Time until = absl::Now() + absl::Seconds(5);
  while (target_.active && target_.active() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
  for (auto& before_stop : before_stop_) before_stop();
  if (admin_) admin_->Shutdown(absl::Seconds(1));
  pool_->Stop();
  // prometheus-cpp's Exposer takes 1-2 s to stop its web server; the process is about to
  // exit, which closes the listening socket anyway, so it is left to the exit (held by a
  // static, so LeakSanitizer sees it reachable rather than leaked).
  static observe::MetricsServer* left_to_exit = nullptr;
  left_to_exit = metrics_.release();
  (void)left_to_exit;
  observe::Info("stopped");
  return 0;
}

}  // namespace sluice::control
