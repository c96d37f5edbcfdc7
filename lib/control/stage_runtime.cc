// lib/control/stage_runtime.cc -- see stage_runtime.h.
#include "lib/control/stage_runtime.h"

#include <utility>

#include "google/protobuf/util/time_util.h"
#include "lib/observe/log.h"

namespace sluice::control {

using sluice::v1::ServingState;
using sluice::v1::StageStatus;

namespace {

google::protobuf::Timestamp ToProto(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

}  // namespace

StageRuntime::Transaction& StageRuntime::Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    End();
    counter_ = other.counter_;
    other.counter_ = nullptr;
  }
  return *this;
}

void StageRuntime::Transaction::End() {
  if (counter_ != nullptr) counter_->fetch_sub(1, std::memory_order_relaxed);
  counter_ = nullptr;
}

StageRuntime::StageRuntime(StageInfo info, LimitsStore& limits,
                           std::shared_ptr<prometheus::Registry> registry)
    : info_(std::move(info)),
      started_at_(absl::Now()),
      limits_(limits),
      registry_(registry ? std::move(registry) : std::make_shared<prometheus::Registry>()),
      metrics_(std::make_unique<ControlMetrics>(*registry_)),
      effective_limits_(std::make_unique<EffectiveLimits>(info_.stage, info_.instance, limits_, registry_.get())),
      sessions_(info_.stage, info_.instance),
      alive_(std::make_shared<Alive>()) {
  alive_->runtime = this;
  metrics_->stage_draining.Set(0);
  metrics_->SetState("serving");
  metrics_->build_info.at({info_.version}).Set(1);
  // Limits change live (max_sessions moves `accepting`); count and announce every change.
  limits_.OnChange([alive = alive_, registry = registry_,
                    counter = &metrics_->limits_updates](const sluice::v1::Limits&) {
    counter->Increment();  // `registry` keeps the counter alive
    std::lock_guard<std::mutex> lock(alive->mu);
    if (alive->runtime != nullptr) alive->runtime->NotifyChanged();
  });
}

StageRuntime::~StageRuntime() {
  std::lock_guard<std::mutex> lock(alive_->mu);
  alive_->runtime = nullptr;
}

StageRuntime::Transaction StageRuntime::BeginTransaction() {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  return Transaction(&in_flight_);
}

ServingState StageRuntime::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) return sluice::v1::DRAINING;
  if (!unavailable_reason_.empty()) return sluice::v1::UNAVAILABLE;
  return sluice::v1::SERVING;
}

bool StageRuntime::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_;
}

void StageRuntime::SetUnavailable(std::string reason) {
  if (reason.empty()) reason = "unavailable";
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unavailable_reason_ == reason) return;
    unavailable_reason_ = reason;
  }
  observe::Warn("stage_unavailable").Kv("reason", reason);
  StateChanged();
}

void StageRuntime::SetAvailable() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unavailable_reason_.empty()) return;
    unavailable_reason_.clear();
  }
  observe::Info("stage_available");
  StateChanged();
}

bool StageRuntime::BeginDrain(absl::Duration timeout) {
  std::vector<std::function<void(absl::Duration)>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) return false;
    draining_ = true;
    drain_deadline_ = absl::Now() + timeout;
    callbacks = on_drain_;
  }
  metrics_->stage_draining.Set(1);
  observe::Info("drain_begin")
      .Kv("timeout_seconds", static_cast<int64_t>(absl::ToInt64Seconds(timeout)))
      .Kv("transactions_in_flight", static_cast<uint64_t>(transactions_in_flight()));
  StateChanged();
  for (auto& cb : callbacks) cb(timeout);
  return true;
}

bool StageRuntime::Resume() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!draining_) return false;
    draining_ = false;
    callbacks = on_resume_;
  }
  metrics_->stage_draining.Set(0);
  observe::Info("drain_resume");
  StateChanged();
  for (auto& cb : callbacks) cb();
  return true;
}

void StageRuntime::OnDrain(std::function<void(absl::Duration)> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_drain_.push_back(std::move(callback));
}

void StageRuntime::SetDrainHandoff(DrainHandoff handoff) {
  auto shared = std::make_shared<const DrainHandoff>(std::move(handoff));
  std::lock_guard<std::mutex> lock(mu_);
  drain_handoff_ = std::move(shared);
}

std::shared_ptr<const StageRuntime::DrainHandoff> StageRuntime::drain_handoff() const {
  std::lock_guard<std::mutex> lock(mu_);
  return drain_handoff_;
}

void StageRuntime::OnResume(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_resume_.push_back(std::move(callback));
}

void StageRuntime::SetStatusHook(std::function<void(StageStatus&)> hook) {
  auto shared = std::make_shared<const std::function<void(StageStatus&)>>(std::move(hook));
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(shared);
}

void StageRuntime::SetAcceptingHook(std::function<bool()> hook) {
  auto shared = std::make_shared<const std::function<bool()>>(std::move(hook));
  std::lock_guard<std::mutex> lock(mu_);
  accepting_hook_ = std::move(shared);
}

bool StageRuntime::Accepting() const {
  std::shared_ptr<const std::function<bool()>> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_ || !unavailable_reason_.empty()) return false;
    hook = accepting_hook_;
  }
  uint32_t max = limits_.Get()->max_sessions();
  if (max != 0 && sessions_.active() >= max) return false;
  return !(hook && *hook) || (*hook)();
}

StageStatus StageRuntime::Status() const {
  StageStatus s;
  s.set_stage(info_.stage);
  s.set_version(info_.version);
  s.set_instance(info_.instance);
  std::shared_ptr<const std::function<void(StageStatus&)>> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) {
      s.set_state(sluice::v1::DRAINING);
      s.set_state_reason("draining until " +
                         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", drain_deadline_, absl::UTCTimeZone()));
    } else if (!unavailable_reason_.empty()) {
      s.set_state(sluice::v1::UNAVAILABLE);
      s.set_state_reason(unavailable_reason_);
    } else {
      s.set_state(sluice::v1::SERVING);
    }
    hook = hook_;
  }
  uint32_t active = static_cast<uint32_t>(sessions_.active());
  uint32_t max = limits_.Get()->max_sessions();
  s.set_sessions_active(active);
  s.set_sessions_max(max);
  s.set_transactions_in_flight(transactions_in_flight());
  s.set_accepting(Accepting());
  s.set_downstream_accepting(true);  // "true when not watched"; the hook says otherwise
  *s.mutable_started_at() = ToProto(started_at_);
  *s.mutable_now() = ToProto(absl::Now());
  if (hook && *hook) (*hook)(s);
  if (s.state() != sluice::v1::SERVING) s.set_accepting(false);  // never through a drain
  return s;
}

void StageRuntime::NotifyChanged() {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  for (auto& [id, fn] : listeners_) fn();
}

void StageRuntime::RecheckAccepting() {
  // Not Status(): that runs the status hook (reinject's scans its queue), once per session.
  int now = Accepting() ? 1 : 0;
  if (last_accepting_.exchange(now, std::memory_order_relaxed) != now) NotifyChanged();
}

void StageRuntime::StateChanged() {
  const ServingState now = state();
  metrics_->SetState(now == sluice::v1::DRAINING      ? "draining"
                     : now == sluice::v1::UNAVAILABLE ? "unavailable"
                                                      : "serving");
  last_accepting_.store(-1, std::memory_order_relaxed);
  NotifyChanged();
}

StageRuntime::ListenerId StageRuntime::AddListener(std::function<void()> on_change) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  ListenerId id = next_listener_++;
  listeners_.emplace_back(id, std::move(on_change));
  return id;
}

void StageRuntime::RemoveListener(ListenerId id) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->first == id) {
      listeners_.erase(it);
      return;
    }
  }
}

}  // namespace sluice::control
