// services/reinject/delivery/scheduler.h
//
// The queue manager (Postfix qmgr): takes due entries from the store (incoming, active,
// deferred whose time has come, flushed, released), groups each message's pending
// recipients by the agent's Destination(), and runs deliveries side by side with receiving:
// at most delivery_concurrency at once, at most destination_concurrency per destination,
// each bounded by delivery_timeout. Then per recipient:
//   delivered            -> done; a success DSN when NOTIFY asks for one and the NOTIFY did
//                           not go on to a DSN-capable next hop (one per attempt, bounce.h);
//   permanent (5xx)      -> bounced at once, a DSN queued when NOTIFY asks for one;
//   transient (4xx)      -> deferred, retried after 300, 600, ... 4000 s (backoff.h), or
//                           bounced when the message is older than maximal_queue_lifetime.
// The record (statuses, last replies, attempts, next attempt) is rewritten durably after
// each attempt; the message is removed once every recipient is done.
//
// Runs on a strand of the io executor; the disk work (claim, finish, bounce writing) goes to
// the blocking pool, deliveries run as their own coroutines, so a slow next hop or a slow
// disk never holds up an SMTP session. All times come from the injected Clock: tests
// advance a FakeClock and call Wake() instead of sleeping.
//
// Never: delivers a held entry; delivers a recipient again once its DELIVERED status is on
// disk; reports on a report or to the null sender; exceeds the concurrency limits; delivers
// again because a success notice could not be queued.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "asio/any_io_executor.hpp"
#include "asio/awaitable.hpp"
#include "asio/steady_timer.hpp"
#include "asio/strand.hpp"
#include "services/reinject/delivery/bounce.h"
#include "services/reinject/delivery/delivery_agent.h"
#include "services/reinject/queue/clock.h"
#include "services/reinject/queue/queue_limits.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

struct QueueMetrics;

struct SchedulerOptions {
  LimitsSource limits;  // null: the defaults
  BounceOptions bounce;
  // Messages taken into memory at once (Postfix qmgr_message_active_limit 20000).
  size_t active_limit = 10000;
};

struct SchedulerStats {
  uint64_t attempts = 0;            // agent calls finished
  uint64_t recipients_delivered = 0;
  uint64_t recipients_deferred = 0;
  uint64_t recipients_bounced = 0;
  uint64_t reports_queued = 0;          // DSNs committed (failure and success)
  uint64_t success_reports_queued = 0;  // ... of them success notices (NOTIFY=SUCCESS)
  uint64_t peak_deliveries = 0;     // most agent calls running at once
};

class Scheduler {
 public:
  // `io` runs deliveries, `blocking` the disk work. The store, agent, clock and metrics
  // outlive the scheduler; the scheduler outlives the io_context's run.
  Scheduler(asio::any_io_executor io, asio::any_io_executor blocking, QueueStore& store, DeliveryAgent& agent,
            const Clock& clock, QueueMetrics* metrics, SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Subscribes to the store's wake-ups and starts the loop.
  void Start();
  // No new deliveries; deliveries in flight finish (or are dropped with the io_context, and
  // their entries are found in active/ at the next start).
  void Stop();
  // Stop(), then waits (blocking the caller, which must not be one of the io threads) until
  // the loop has ended and the messages taken have finished, at most `timeout`. True when
  // all is done; the scheduler may be destroyed then. On false, stop the io_context first.
  bool StopAndWait(absl::Duration timeout);
  // After a stop has ended (the loop and the deliveries done): deliver again, as Start
  // (sluicectl resume after drain --handoff). False, doing nothing, while any of it still runs.
  bool Restart();
  // Look for due work now (thread-safe). The store calls it on commits, releases, flushes.
  void Wake();

  // Nothing in flight, nothing waiting to be looked at, nothing due at clock.Now().
  bool Idle() const;
  // The loop runs (between Start and the end of Stop); nothing in flight when false and
  // Idle() (destroy the scheduler then).
  bool running() const { return loop_running_.load(); }
  SchedulerStats stats() const;

 private:
  struct Job {
    std::string id;
    std::string destination;
    std::vector<int> indexes;
  };
  struct ActiveMessage {
    sluice::v1::QueueRecord record;                        // updated as results come in
    std::shared_ptr<const sluice::v1::QueueRecord> frozen;  // what agents read
    MessageContent content;
    EarlierAttempt earlier = EarlierAttempt::kNone;  // may this entry have been delivered before?
    size_t jobs_left = 0;
    std::vector<RecipientResult> results;
  };

  asio::awaitable<void> Loop();
  void Pump();
  asio::awaitable<void> Activate(std::string id);
  void Dispatch();
  asio::awaitable<void> RunJob(Job job);
  asio::awaitable<void> FinishMessage(std::string id);
  // Queues one report of `kind` about `recipients`; false (logged) when it could not be.
  asio::awaitable<bool> QueueReport(const sluice::v1::QueueRecord& original, const MessageContent& content,
                                    ReportKind kind, const std::vector<ReportedRecipient>& recipients, absl::Time now);
  void Log(const sluice::v1::QueueRecord& record, const sluice::v1::QueueRecipient& rcpt, std::string_view status,
           std::string_view dsn, absl::Time now) const;

  asio::any_io_executor io_;
  asio::any_io_executor blocking_;
  asio::strand<asio::any_io_executor> strand_;
  QueueStore& store_;
  DeliveryAgent& agent_;
  const Clock& clock_;
  QueueMetrics* metrics_;
  SchedulerOptions options_;
  asio::steady_timer timer_;

  // Strand-only state.
  absl::flat_hash_map<std::string, std::unique_ptr<ActiveMessage>> active_;
  std::map<std::string, std::deque<Job>> waiting_;  // jobs by destination
  absl::flat_hash_map<std::string, uint32_t> running_per_destination_;
  uint32_t running_ = 0;
  bool started_ = false;

  // Read from any thread.
  std::atomic<bool> stopping_{false};
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> loop_running_{false};
  std::atomic<size_t> messages_{0};  // taken from the store and not yet finished
  mutable std::mutex stats_mu_;
  SchedulerStats stats_;
};

}  // namespace sluice::reinject
