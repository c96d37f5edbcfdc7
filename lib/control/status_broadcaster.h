// lib/control/status_broadcaster.h
//
// The one thread that tells every Admin.WatchStatus stream to send: on every NotifyChanged
// of the stage, and at least every stream's interval when nothing changed. A subscriber's
// Push() only starts a write (or notes that one is due) and returns; the stream's reactor
// does the rest on gRPC's threads.
//
// Never: calls Push on a subscriber after Remove returned (Remove waits for a running Push);
// blocks the stage thread that calls Notify behind a Push.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace sluice::control {

class StatusBroadcaster {
 public:
  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // Called on the broadcaster thread; must not block and must not call Add/Remove.
    virtual void Push() = 0;
  };

  StatusBroadcaster();
  ~StatusBroadcaster();  // every subscriber must have been removed
  StatusBroadcaster(const StatusBroadcaster&) = delete;
  StatusBroadcaster& operator=(const StatusBroadcaster&) = delete;

  // Pushes `subscriber` on every Notify and whenever `interval` passed without a push. The
  // subscriber sends its first message itself.
  void Add(Subscriber* subscriber, absl::Duration interval);
  // After it returns, Push of `subscriber` neither runs nor will run.
  void Remove(Subscriber* subscriber);
  // Every subscriber is pushed soon. Cheap; callable from any thread.
  void Notify();

  size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Clock::duration interval;
    Clock::time_point due;
  };
  void Run();

  mutable std::mutex subs_mu_;  // held while pushing, so Remove waits for a running Push
  absl::flat_hash_map<Subscriber*, Entry> subs_;

  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool notified_ = false;  // guarded by wake_mu_
  bool rescan_ = false;    // guarded by wake_mu_: a subscriber was added
  bool stop_ = false;      // guarded by wake_mu_

  std::thread thread_;
};

}  // namespace sluice::control
