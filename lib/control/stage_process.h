// lib/control/stage_process.h
//
// What every stage's main does besides serving SMTP: the live limits, the StageRuntime with
// its session registry, the io threads, the Prometheus endpoint, the admin gRPC server, and
// the process's life: SIGTERM/SIGINT (or Admin.Drain) stops accepting, lets in-flight work
// finish up to drain_timeout, ends what is left with 421, and (for signals) exits 0.
//
//   auto p = StageProcess::Create("frontend", cfg.server(), cfg.limits());
//   ... build the stage's server on p->pool(), p->runtime(), p->registry() ...
//   p->SetDrainTarget({.begin = …, .resume = …, .kill_all = …, .active = …});
//   p->StartControl({});            // admin + metrics
//   server.Start(listen);
//   return p->RunUntilSignal();     // 0 after a clean drain
//
// Never: exits before the drain deadline while work is in flight; lets a signal arrive on an
// io thread (signals are blocked before any thread starts and taken by sigwait).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/control/admin_server.h"
#include "lib/control/limits_store.h"
#include "lib/control/stage_runtime.h"
#include "lib/net/io_pool.h"
#include "lib/observe/log.h"
#include "lib/observe/metrics.h"
#include "sluice/v1/config.pb.h"

namespace sluice::control {

// The stage's session server, as drain needs it.
struct DrainTarget {
  std::function<void()> begin;      // stop accepting; idle sessions end
  std::function<void()> resume;     // accept again
  std::function<void()> kill_all;   // the deadline passed: every session ends with 421
  std::function<size_t()> active;   // sessions still open
};

// The drain target of a session server (anything with BeginDrain, Resume -> absl::Status,
// KillAll and active(), e.g. lib/smtp's SessionServer); a failed resume is logged.
template <typename Server>
DrainTarget DrainTargetFor(Server& server) {
  return DrainTarget{
      .begin = [&server] { server.BeginDrain(); },
      .resume =
          [&server] {
            absl::Status st = server.Resume();
            if (!st.ok()) observe::Error("resume_failed").Kv("error", std::string(st.message()));
          },
      .kill_all = [&server] { server.KillAll(); },
      .active = [&server] { return server.active(); },
  };
}

class StageProcess {
 public:
  // Blocks SIGTERM/SIGINT/SIGHUP/SIGPIPE for every thread created afterwards (call first).
  static absl::StatusOr<std::unique_ptr<StageProcess>> Create(std::string stage,
                                                              const sluice::v1::ServerConfig& server,
                                                              const sluice::v1::Limits& limits);
  ~StageProcess();

  LimitsStore& limits() { return *limits_; }
  StageRuntime& runtime() { return *runtime_; }
  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  net::IoPool& pool() { return *pool_; }
  const std::string& hostname() const { return hostname_; }

  void SetDrainTarget(DrainTarget target);
  // Runs after the drain, while the io threads still run (e.g. stop the delivery scheduler);
  // each call adds one, run in the order added.
  void AddBeforeStop(std::function<void()> callback) { before_stop_.push_back(std::move(callback)); }
  // Starts the metrics endpoint and the admin server (plus extra gRPC services) and the io
  // threads. Listening addresses come from the ServerConfig.
  absl::Status StartControl(std::vector<AdminServerOptions::ExtraService> extra_services);
  int admin_port() const { return admin_ ? admin_->port() : 0; }
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }

  // Waits for SIGTERM/SIGINT, drains (see above), shuts everything down; returns the exit code.
  int RunUntilSignal();

 private:
  StageProcess() = default;
  void DrainFor(absl::Duration timeout);  // runs on the drain thread
  void StartDrainThread(absl::Duration timeout);

  std::string stage_;
  std::string hostname_;
  sluice::v1::ServerConfig server_;
  std::unique_ptr<LimitsStore> limits_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<StageRuntime> runtime_;
  std::unique_ptr<net::IoPool> pool_;
  std::unique_ptr<observe::MetricsServer> metrics_;
  std::unique_ptr<AdminServer> admin_;
  DrainTarget target_;
  std::vector<std::function<void()>> before_stop_;

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t drain_generation_ = 0;  // guarded by mu_; a Resume cancels a pending deadline
  std::thread drain_thread_;
};

}  // namespace sluice::control
