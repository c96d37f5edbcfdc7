// services/reinject/queue/clock.h
//
// The wall clock of the queue and the delivery scheduler, behind an interface so tests move
// time by hand (a retry due in 4000 s is due after Advance(4000 s), not after a sleep).
// Arrival times, next-attempt times, backoff and queue lifetime all read it.
//
// Never: used for queue ids (those need the real clock to stay unique across restarts);
// goes backwards in FakeClock unless a test says so.
#pragma once

#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace sluice::reinject {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// absl::Now().
const Clock& SystemClock();

// A clock that only moves when told to; thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}
  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace sluice::reinject
