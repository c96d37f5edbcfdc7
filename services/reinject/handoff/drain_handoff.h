// services/reinject/handoff/drain_handoff.h
//
// `sluicectl drain --handoff` on one reinject replica (Admin.Drain{handoff}, issue 10):
// after the drain has begun, waits for the SMTP sessions to end (the drain deadline ends
// them), stops delivering and waits for the deliveries in flight, refuses peers' transfers,
// then hands every entry to handoff_peers (QueueHandoff::HandOffAll, bounded by
// handoff_timeout_seconds). The process keeps running, drained, until Admin.Resume, which
// delivers and takes transfers again. Everything runs on one thread of its own, in order:
// a Resume during a hand-off takes effect when the hand-off has ended.
//
// Never: hands off while a delivery may still take the same entry; blocks a gRPC thread;
// accepts a hand-off request on a replica without handoff_peers.
#pragma once

#include <atomic>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "asio/thread_pool.hpp"
#include "services/reinject/handoff/queue_handoff.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

struct DrainHandoffOptions {
  QueueHandoff* handoff = nullptr;
  QueueStore* store = nullptr;
  std::function<size_t()> sessions_active;   // SMTP sessions still open
  std::function<bool()> stop_delivering;     // true once no delivery is in flight
  std::function<bool()> deliver_again;       // after Resume; false: a delivery still ran
  std::atomic<bool>* accepting = nullptr;    // peers' transfers taken (the receiver's switch)
};

class DrainHandoff {
 public:
  explicit DrainHandoff(DrainHandoffOptions options) : options_(std::move(options)) {}
  ~DrainHandoff() { thread_.join(); }
  DrainHandoff(const DrainHandoff&) = delete;
  DrainHandoff& operator=(const DrainHandoff&) = delete;

  // FAILED_PRECONDITION without handoff_peers.
  absl::Status Check() const;
  // Posts the hand-off; `done` gets OK when the queue is empty, else why entries are left.
  void Run(absl::Duration drain_timeout, std::function<void(absl::Status)> done);
  // Admin.Resume: deliver and take transfers again (after a hand-off in progress).
  void Resume();

 private:
  absl::Status HandOff(absl::Duration drain_timeout);

  DrainHandoffOptions options_;
  bool stopped_delivering_ = false;  // only on thread_
  asio::thread_pool thread_{1};
};

}  // namespace sluice::reinject
