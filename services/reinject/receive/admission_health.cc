// services/reinject/receive/admission_health.cc -- see admission_health.h.
#include "services/reinject/receive/admission_health.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace sluice::reinject {

AdmissionHealth::AdmissionHealth(const QueueStore& store, control::StageRuntime& runtime, absl::Duration interval)
    : store_(store), runtime_(runtime), interval_(interval) {}

AdmissionHealth::~AdmissionHealth() { Stop(); }

std::string AdmissionHealth::ReasonOf(const absl::Status& refusal) {
  std::string message(refusal.message());
  size_t colon = message.find(':');
  // The store says "queue full: ..." or "disk full: ..."; the numbers change from check to
  // check, so they stay out of the reason (one log line per change, not per check).
  if (refusal.code() == absl::StatusCode::kResourceExhausted && colon != std::string::npos) {
    return message.substr(0, colon);
  }
  return absl::StrCat("queue unavailable: ", message);
}

bool AdmissionHealth::Check() {
  absl::Status state = store_.AdmissionState();
  std::lock_guard<std::mutex> lock(check_mu_);
  if (!state.ok()) {
    runtime_.SetUnavailable(ReasonOf(state));
    declared_ = true;
    return false;
  }
  if (declared_) {
    runtime_.SetAvailable();
    declared_ = false;
  }
  return true;
}

void AdmissionHealth::Start() {
  if (thread_.joinable()) return;
  Check();
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, absl::ToChronoNanoseconds(interval_));
      if (stopping_) break;
      lock.unlock();
      Check();
      lock.lock();
    }
  });
}

void AdmissionHealth::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sluice::reinject
