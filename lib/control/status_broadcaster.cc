// lib/control/status_broadcaster.cc -- see status_broadcaster.h.
#include "lib/control/status_broadcaster.h"

#include <vector>

namespace sluice::control {

StatusBroadcaster::StatusBroadcaster() : thread_([this] { Run(); }) {}

StatusBroadcaster::~StatusBroadcaster() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StatusBroadcaster::Add(Subscriber* subscriber, absl::Duration interval) {
  {
    std::lock_guard<std::mutex> lock(subs_mu_);
    auto every = std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(interval));
    subs_[subscriber] = Entry{every, Clock::now() + every};
  }
  std::lock_guard<std::mutex> lock(wake_mu_);
  rescan_ = true;  // the thread may be sleeping past the new one's first due time
  wake_.notify_one();
}

void StatusBroadcaster::Remove(Subscriber* subscriber) {
  std::lock_guard<std::mutex> lock(subs_mu_);
  subs_.erase(subscriber);
}

void StatusBroadcaster::Notify() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    notified_ = true;
  }
  wake_.notify_one();
}

size_t StatusBroadcaster::size() const {
  std::lock_guard<std::mutex> lock(subs_mu_);
  return subs_.size();
}

void StatusBroadcaster::Run() {
  bool everyone = false;  // a Notify arrived: push every subscriber
  while (true) {
    Clock::time_point next = Clock::now() + std::chrono::hours(1);
    {
      std::lock_guard<std::mutex> lock(subs_mu_);
      Clock::time_point now = Clock::now();
      for (auto& [sub, entry] : subs_) {
        if (everyone || entry.due <= now) {
          sub->Push();
          entry.due = now + entry.interval;
        }
        if (entry.due < next) next = entry.due;
      }
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_until(lock, next, [this] { return stop_ || notified_ || rescan_; });
    if (stop_) return;
    everyone = notified_;
    notified_ = false;
    rescan_ = false;
  }
}

}  // namespace sluice::control
