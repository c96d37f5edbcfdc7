// lib/control/stage_runtime.h
//
// What one stage process is, as the admin API shows it: its name, instance and version,
// when it started, the Limits in force, its live sessions, the transactions in flight and
// its serving state -- SERVING, DRAINING (Admin.Drain or SIGTERM: stop taking sessions,
// finish in-flight work) or UNAVAILABLE (up but unable to work: queue disk full, next stage
// gone). The stage's main creates one, wires its own behaviour in through callbacks
// (OnDrain/OnResume, a status hook for stage-specific fields and for `accepting`), and
// hands it to AdminServer. Status() is the StageStatus every Admin call and WatchStatus
// stream reports; NotifyChanged() wakes the streams (upstream backpressure reacts to it).
//
// Never: reports accepting=true unless SERVING; runs a stage callback under its own lock;
// blocks the caller of NotifyChanged beyond running the (short) listeners.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/control/control_metrics.h"
#include "lib/control/effective_limits.h"
#include "lib/control/limits_store.h"
#include "lib/control/session_registry.h"
#include "prometheus/registry.h"
#include "sluice/v1/admin.pb.h"

namespace sluice::control {

struct StageInfo {
  std::string stage;     // "frontend", "filter-bridge", "reinject"
  std::string instance;  // host name / pod name
  std::string version;   // sluice version
};

class StageRuntime {
 public:
  // `limits` must outlive the runtime. `registry`: where the control metrics go (the one
  // MetricsServer serves); null makes a private one.
  StageRuntime(StageInfo info, LimitsStore& limits,
               std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~StageRuntime();
  StageRuntime(const StageRuntime&) = delete;
  StageRuntime& operator=(const StageRuntime&) = delete;

  const StageInfo& info() const { return info_; }
  absl::Time started_at() const { return started_at_; }
  LimitsStore& limits() { return limits_; }
  SessionRegistry& sessions() { return sessions_; }
  const SessionRegistry& sessions() const { return sessions_; }
  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> shared_registry() { return registry_; }
  ControlMetrics& metrics() { return *metrics_; }
  // The data-path limits in force on the SMTP port: own, lowered to the downstream's
  // (Admin.GetEffectiveLimits; a stage with a downstream watch feeds SetDownstream).
  EffectiveLimits& effective_limits() { return *effective_limits_; }

  // --- transactions in flight (MAIL .. final reply), counted by RAII ---
  class Transaction {
   public:
    Transaction() = default;
    Transaction(Transaction&& other) noexcept : counter_(other.counter_) { other.counter_ = nullptr; }
    Transaction& operator=(Transaction&& other) noexcept;
    ~Transaction() { End(); }
    void End();  // early end; the destructor then does nothing

   private:
    friend class StageRuntime;
    explicit Transaction(std::atomic<uint32_t>* counter) : counter_(counter) {}
    std::atomic<uint32_t>* counter_ = nullptr;
  };
  Transaction BeginTransaction();
  uint32_t transactions_in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // --- serving state: DRAINING wins over UNAVAILABLE, which wins over SERVING ---
  sluice::v1::ServingState state() const;
  bool serving() const { return state() == sluice::v1::SERVING; }
  bool draining() const;
  // Up but unable to work (reason for people, e.g. "queue disk full"); SetAvailable clears.
  void SetUnavailable(std::string reason);
  void SetAvailable();

  // Stops taking new sessions: health NOT_SERVING, accepting=false, then every OnDrain
  // callback with `timeout` (in-flight work's deadline). False (and no callbacks) when
  // already draining.
  bool BeginDrain(absl::Duration timeout);
  // Takes sessions again; OnResume callbacks run. False when not draining.
  bool Resume();
  // Callbacks run on the thread calling BeginDrain/Resume (a gRPC thread or the signal
  // handling thread): post to the stage's executor and return.
  void OnDrain(std::function<void(absl::Duration timeout)> callback);
  void OnResume(std::function<void()> callback);

  // Admin.Drain{handoff} (reinject's queue hand-off): `check` says whether this replica can
  // hand off (an error, e.g. FAILED_PRECONDITION without peers, refuses the drain); `run`
  // is called once the drain has begun, must not block, and calls `done` when the hand-off
  // has ended (OK, or why entries are left). Unset: the stage has nothing to hand off.
  struct DrainHandoff {
    std::function<absl::Status()> check;
    std::function<void(absl::Duration timeout, std::function<void(absl::Status)> done)> run;
  };
  void SetDrainHandoff(DrainHandoff handoff);
  std::shared_ptr<const DrainHandoff> drain_handoff() const;

  // Fills stage-specific fields (filter_capacity, queue_*, disk_free_bytes, downstream*).
  // Called by Status() on admin threads: thread-safe, no blocking; it may scan (it is not
  // called per session).
  void SetStatusHook(std::function<void(sluice::v1::StageStatus&)> hook);
  // The stage's own part of `accepting` (downstream full, no filter capacity): O(1), called
  // on every session start and end by RecheckAccepting and by Status().
  void SetAcceptingHook(std::function<bool()> hook);
  // SERVING, sessions_active < sessions_max, and the accepting hook.
  bool Accepting() const;

  sluice::v1::StageStatus Status() const;

  // Something upstream stages care about changed (state, accepting, capacity): every
  // WatchStatus stream sends now.
  void NotifyChanged();
  // NotifyChanged only if `accepting` differs from what the last check saw. Cheap enough
  // to call after every session start and end.
  void RecheckAccepting();

  // Change listeners (AdminServer's health and WatchStatus wiring): run on the thread that
  // calls NotifyChanged or changes the state, must be short and must not call back into
  // the listener API. RemoveListener waits for a running call to finish.
  using ListenerId = uint64_t;
  ListenerId AddListener(std::function<void()> on_change);
  void RemoveListener(ListenerId id);

 private:
  void StateChanged();

  const StageInfo info_;
  const absl::Time started_at_;
  LimitsStore& limits_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ControlMetrics> metrics_;
  std::unique_ptr<EffectiveLimits> effective_limits_;
  SessionRegistry sessions_;
  std::atomic<uint32_t> in_flight_{0};
  std::atomic<int> last_accepting_{-1};  // -1 unknown, 0, 1

  mutable std::mutex mu_;  // state and callbacks
  bool draining_ = false;
  std::string unavailable_reason_;
  absl::Time drain_deadline_;
  std::vector<std::function<void(absl::Duration)>> on_drain_;
  std::vector<std::function<void()>> on_resume_;
  std::shared_ptr<const std::function<void(sluice::v1::StageStatus&)>> hook_;
  std::shared_ptr<const std::function<bool()>> accepting_hook_;
  std::shared_ptr<const DrainHandoff> drain_handoff_;

  std::mutex listeners_mu_;  // held while listeners run
  ListenerId next_listener_ = 1;
  std::vector<std::pair<ListenerId, std::function<void()>>> listeners_;

  // Lets the LimitsStore callback (which cannot be unregistered) outlive this object.
  struct Alive {
    std::mutex mu;
    StageRuntime* runtime;
  };
  std::shared_ptr<Alive> alive_;
};

}  // namespace sluice::control
