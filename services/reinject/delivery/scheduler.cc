// services/reinject/delivery/scheduler.cc -- see scheduler.h.
#include "services/reinject/delivery/scheduler.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/detached.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/experimental/awaitable_operators.hpp"
#include "asio/post.hpp"
#include "asio/use_awaitable.hpp"
#include "lib/observe/log.h"
#include "services/reinject/delivery/backoff.h"
#include "services/reinject/delivery/blocking_call.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_metrics.h"

namespace sluice::reinject {
namespace {

constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
// Gauges (oldest age, disk free) are refreshed at least this often while the loop idles.
constexpr auto kGaugeInterval = std::chrono::seconds(15);

RecipientResult NoResult(int index, std::string reply) {
  RecipientResult r;
  r.index = index;
  r.outcome = DeliveryOutcome::kTransient;
  r.reply = std::move(reply);
  return r;
}

}  // namespace

Scheduler::Scheduler(asio::any_io_executor io, asio::any_io_executor blocking, QueueStore& store,
                     DeliveryAgent& agent, const Clock& clock, QueueMetrics* metrics, SchedulerOptions options)
    : io_(io),
      blocking_(std::move(blocking)),
      strand_(asio::make_strand(io)),
      store_(store),
      agent_(agent),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      timer_(strand_) {
  if (options_.active_limit == 0) options_.active_limit = 1;
}

Scheduler::~Scheduler() { store_.SetWakeup(nullptr); }

void Scheduler::Start() {
  if (started_) return;
  started_ = true;
  loop_running_.store(true);
  store_.SetWakeup([this] { Wake(); });
  asio::co_spawn(strand_, Loop(), asio::detached);
}

void Scheduler::Stop() {
  stopping_.store(true);
  store_.SetWakeup(nullptr);
  asio::post(strand_, [this] { timer_.cancel(); });
}

bool Scheduler::StopAndWait(absl::Duration timeout) {
  Stop();
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (loop_running_.load() || messages_.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool Scheduler::Restart() {
  if (!started_ || loop_running_.load() || messages_.load() > 0) return false;
  started_ = false;
  stopping_.store(false);
  Start();
  return true;
}

void Scheduler::Wake() {
  wake_pending_.store(true);
  asio::post(strand_, [this] { timer_.cancel(); });
}

bool Scheduler::Idle() const {
  return messages_.load() == 0 && !wake_pending_.load() && !store_.HasDue(clock_.Now());
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

asio::awaitable<void> Scheduler::Loop() {
  auto last_gauges = std::chrono::steady_clock::now() - kGaugeInterval;
  while (!stopping_.load()) {
    wake_pending_.store(false);
    Pump();
    if (std::chrono::steady_clock::now() - last_gauges >= kGaugeInterval) {
      (void)store_.Counters();
      last_gauges = std::chrono::steady_clock::now();
    }
    if (wake_pending_.load() || stopping_.load()) continue;
    QueueLimits limits = ResolveQueueLimits(options_.limits);
    absl::Duration wait = std::min(limits.queue_run_delay, absl::FromChrono(kGaugeInterval));
    if (messages_.load() < options_.active_limit) {
      absl::Time next = store_.NextDue();
      if (next != absl::InfiniteFuture()) wait = std::max(absl::ZeroDuration(), std::min(wait, next - clock_.Now()));
    }
    timer_.expires_after(absl::ToChronoNanoseconds(wait));
    co_await timer_.async_wait(nothrow);
  }
  loop_running_.store(false);
}

void Scheduler::Pump() {
  if (stopping_.load()) return;
  size_t in_memory = messages_.load();
  if (in_memory >= options_.active_limit) return;
  size_t room = options_.active_limit - in_memory;
  // Counted before they leave the store's schedule, so Idle() never sees them nowhere.
  messages_.fetch_add(room);
  std::vector<std::string> ids = store_.TakeDue(clock_.Now(), room);
  messages_.fetch_sub(room - ids.size());
  for (std::string& id : ids) asio::co_spawn(strand_, Activate(std::move(id)), asio::detached);
}

asio::awaitable<void> Scheduler::Activate(std::string id) {
  if (stopping_.load()) {
    auto unclaim = [this, id] {
      store_.Unclaim(id);
      return true;
    };
    co_await RunBlocking(blocking_, unclaim);
    messages_.fetch_sub(1);
    co_return;
  }
  // A fresh entry is claimed in memory, here; anything that needs the disk on the pool.
  absl::StatusOr<sluice::v1::QueueRecord> record = store_.ClaimInMemory(id);
  // Only an entry committed by this process and never claimed since is sure never to have
  // been delivered; anything read back from the log may have been (a crash after the
  // delivery, before the entry's end reached the disk).
  EarlierAttempt earlier = EarlierAttempt::kNone;
  if (absl::IsUnavailable(record.status())) {
    earlier = EarlierAttempt::kPossible;
    auto claim = [this, id] { return store_.Claim(id); };
    record = co_await RunBlocking(blocking_, claim);
  }
  if (!record.ok()) {
    observe::Info("delivery_skipped").Kv("queue_id", id).Kv("reason", MessageOf(record.status()));
    messages_.fetch_sub(1);
    co_return;
  }
  auto msg = std::make_unique<ActiveMessage>();
  msg->record = std::move(*record);
  msg->earlier = earlier;
  msg->frozen = std::make_shared<const sluice::v1::QueueRecord>(msg->record);
  auto content = store_.Content(id);
  if (!content.ok()) {
    // Deleted or moved to corrupt/ between the claim and here: nothing to deliver.
    observe::Info("delivery_skipped").Kv("queue_id", id).Kv("reason", MessageOf(content.status()));
    store_.Unclaim(id);
    messages_.fetch_sub(1);
    co_return;
  }
  msg->content = *std::move(content);
  std::map<std::string, std::vector<int>> groups;
  for (int i = 0; i < msg->record.recipients_size(); ++i) {
    auto status = msg->record.recipients(i).status();
    if (status == sluice::v1::RECIPIENT_STATUS_DELIVERED || status == sluice::v1::RECIPIENT_STATUS_BOUNCED) continue;
    groups[agent_.Destination(msg->record, i)].push_back(i);
  }
  msg->jobs_left = groups.size();
  active_[id] = std::move(msg);
  if (groups.empty()) {
    co_await FinishMessage(id);  // every recipient was already done (a crash before removal)
    co_return;
  }
  for (auto& [destination, indexes] : groups) waiting_[destination].push_back(Job{id, destination, std::move(indexes)});
  Dispatch();
}

void Scheduler::Dispatch() {
  QueueLimits limits = ResolveQueueLimits(options_.limits);
  // Round robin over destinations, one job each per pass, so one busy destination cannot
  // take every delivery slot while others wait.
  bool progress = true;
  while (progress && running_ < limits.delivery_concurrency) {
    progress = false;
    for (auto it = waiting_.begin(); it != waiting_.end() && running_ < limits.delivery_concurrency;) {
      uint32_t& busy = running_per_destination_[it->first];
      if (busy < limits.destination_concurrency) {
        Job job = std::move(it->second.front());
        it->second.pop_front();
        ++busy;
        ++running_;
        progress = true;
        {
          std::lock_guard<std::mutex> lock(stats_mu_);
          stats_.peak_deliveries = std::max<uint64_t>(stats_.peak_deliveries, running_);
        }
        asio::co_spawn(strand_, RunJob(std::move(job)), asio::detached);
      }
      if (it->second.empty()) {
        if (busy == 0) running_per_destination_.erase(it->first);
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

asio::awaitable<void> Scheduler::RunJob(Job job) {
  ActiveMessage* msg = active_[job.id].get();
  std::shared_ptr<const sluice::v1::QueueRecord> frozen = msg->frozen;
  MessageContent content = msg->content;
  QueueLimits limits = ResolveQueueLimits(options_.limits);
  asio::steady_timer deadline(strand_);
  deadline.expires_after(absl::ToChronoNanoseconds(limits.delivery_timeout));

  auto start = std::chrono::steady_clock::now();
  std::vector<RecipientResult> results;
  try {
    using namespace asio::experimental::awaitable_operators;
    auto outcome = co_await (asio::co_spawn(io_, agent_.Deliver(*frozen, content, job.indexes, msg->earlier), asio::use_awaitable) ||
                             deadline.async_wait(nothrow));
    if (outcome.index() == 0) {
      results = std::move(std::get<0>(outcome));
    } else {
      for (int i : job.indexes) {
        results.push_back(NoResult(i, absl::StrCat("451 4.4.7 delivery timed out after ",
                                                   absl::ToInt64Seconds(limits.delivery_timeout), " s")));
      }
    }
  } catch (const std::exception& e) {
    results.clear();
    for (int i : job.indexes) results.push_back(NoResult(i, absl::StrCat("451 4.3.0 delivery failed: ", e.what())));
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (metrics_ != nullptr) metrics_->delivery_duration->Observe(seconds);

  // Keep one result per recipient of this job; anything missing failed temporarily.
  std::vector<bool> seen(static_cast<size_t>(msg->record.recipients_size()), false);
  for (RecipientResult& r : results) {
    if (std::find(job.indexes.begin(), job.indexes.end(), r.index) == job.indexes.end()) continue;
    if (seen[static_cast<size_t>(r.index)]) continue;
    seen[static_cast<size_t>(r.index)] = true;
    msg->results.push_back(std::move(r));
  }
  for (int i : job.indexes) {
    if (!seen[static_cast<size_t>(i)]) msg->results.push_back(NoResult(i, "451 4.3.0 delivery agent gave no result"));
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.attempts;
  }
  --running_;
  auto busy = running_per_destination_.find(job.destination);
  if (busy != running_per_destination_.end() && --busy->second == 0 && !waiting_.contains(job.destination)) {
    running_per_destination_.erase(busy);
  }
  Dispatch();
  if (--msg->jobs_left == 0) co_await FinishMessage(job.id);
}

asio::awaitable<void> Scheduler::FinishMessage(std::string id) {
  ActiveMessage& msg = *active_[id];
  sluice::v1::QueueRecord& record = msg.record;
  const absl::Time now = clock_.Now();
  const QueueLimits limits = ResolveQueueLimits(options_.limits);
  const bool attempted = !msg.results.empty();
  if (attempted) {
    record.set_attempts(record.attempts() + 1);
    *record.mutable_last_attempt_at() = ToProtoTime(now);
  }
  const bool expired =
      record.has_arrived_at() && now - FromProtoTime(record.arrived_at()) >= limits.maximal_queue_lifetime;

  std::vector<ReportedRecipient> failed;
  std::vector<bool> failed_expired;
  std::vector<ReportedRecipient> succeeded;  // delivered, and asking us for a success notice
  uint64_t delivered = 0, deferred = 0, bounced = 0;
  std::string first_deferral;
  for (const RecipientResult& r : msg.results) {
    auto* rcpt = record.mutable_recipients(r.index);
    rcpt->set_last_reply(r.reply);
    if (r.outcome == DeliveryOutcome::kDelivered) {
      rcpt->set_status(sluice::v1::RECIPIENT_STATUS_DELIVERED);
      *rcpt->mutable_done_at() = ToProtoTime(now);
      Log(record, *rcpt, "sent", StatusOfReply(r.reply, "2.0.0"), now);
      ++delivered;
      // RFC 3461 §5.2.1: NOTIFY went on with the RCPT to a DSN-capable next hop, which
      // reports success itself; otherwise the notice is ours (§5.2.2, §5.2.3).
      if (r.success != SuccessNotice::kPassedOn && WantsSuccessReport(record, *rcpt)) {
        ReportedRecipient ok;
        ok.index = r.index;
        ok.action = r.success == SuccessNotice::kRelayed ? DsnAction::kRelayed : DsnAction::kDelivered;
        ok.status = StatusOfReply(r.reply, "2.0.0");
        ok.reply = r.reply;
        ok.diagnostic_type = r.diagnostic_type;
        ok.remote_mta = r.remote_mta;
        succeeded.push_back(std::move(ok));
      }
    } else if (r.outcome == DeliveryOutcome::kPermanent || expired) {
      bool permanent = r.outcome == DeliveryOutcome::kPermanent;
      ReportedRecipient f;
      f.index = r.index;
      f.action = DsnAction::kFailed;
      f.status = StatusOfReply(r.reply, permanent ? "5.0.0" : "4.4.7");
      f.reply = r.reply;
      f.diagnostic_type = r.diagnostic_type;
      f.remote_mta = r.remote_mta;
      failed.push_back(std::move(f));
      failed_expired.push_back(!permanent);
    } else {
      rcpt->set_status(sluice::v1::RECIPIENT_STATUS_DEFERRED);
      if (first_deferral.empty()) first_deferral = r.reply;
      ++deferred;
    }
  }

  // A report for the failures that ask for one; the failures stay bounced only once the
  // report is safely queued, otherwise they are retried (and fail, and report) later.
  std::vector<ReportedRecipient> report;
  for (const ReportedRecipient& f : failed) {
    if (WantsFailureReport(record, record.recipients(f.index))) report.push_back(f);
  }
  bool reported = true;
  if (!report.empty()) reported = co_await QueueReport(record, msg.content, ReportKind::kFailure, report, now);
  for (size_t i = 0; i < failed.size(); ++i) {
    auto* rcpt = record.mutable_recipients(failed[i].index);
    if (!reported && WantsFailureReport(record, *rcpt)) {
      rcpt->set_status(sluice::v1::RECIPIENT_STATUS_DEFERRED);
      if (first_deferral.empty()) first_deferral = "451 4.3.0 the failure report could not be queued";
      ++deferred;
      continue;
    }
    rcpt->set_status(sluice::v1::RECIPIENT_STATUS_BOUNCED);
    *rcpt->mutable_done_at() = ToProtoTime(now);
    Log(record, *rcpt, failed_expired[i] ? "expired" : "bounced", failed[i].status, now);
    ++bounced;
  }
  // One success notice for this attempt's successes that asked for it. A delivery cannot be
  // taken back, so a notice that cannot be queued is logged and lost rather than bought
  // with a second delivery (Postfix would defer and deliver again).
  if (!succeeded.empty()) (void)co_await QueueReport(record, msg.content, ReportKind::kSuccess, succeeded, now);

  if (deferred > 0) {
    absl::Duration delay = RetryDelay(record.attempts(), limits.minimal_backoff, limits.maximal_backoff);
    record.set_state(sluice::v1::DEFERRED);
    *record.mutable_next_attempt_at() = ToProtoTime(now + delay);
    record.set_last_error(first_deferral);
    for (const auto& rcpt : record.recipients()) {
      if (rcpt.status() == sluice::v1::RECIPIENT_STATUS_DEFERRED) Log(record, rcpt, "deferred",
                                                                      StatusOfReply(rcpt.last_reply(), "4.0.0"), now);
    }
  }
  if (metrics_ != nullptr) {
    if (delivered > 0) metrics_->delivered->Increment();
    if (deferred > 0) metrics_->deferred->Increment();
    if (bounced > 0) metrics_->bounced->Increment();
    metrics_->recipients_delivered->Increment(static_cast<double>(delivered));
    metrics_->recipients_deferred->Increment(static_cast<double>(deferred));
    metrics_->recipients_bounced->Increment(static_cast<double>(bounced));
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.recipients_delivered += delivered;
    stats_.recipients_deferred += deferred;
    stats_.recipients_bounced += bounced;
  }

  // A finished entry's remove frame needs no wait (it rides with the next batch): here.
  // A record to rewrite waits for its sync: on the pool.
  absl::StatusOr<sluice::v1::QueueState> finished = store_.FinishInMemory(id, record);
  if (absl::IsUnavailable(finished.status())) {
    auto finish = [this, id, record, retry = limits.minimal_backoff] { return store_.Finish(id, record, retry); };
    finished = co_await RunBlocking(blocking_, finish);
  }
  if (!finished.ok()) {
    observe::Error("queue_finish_failed").Kv("queue_id", id).Kv("error", MessageOf(finished.status()));
  }
  active_.erase(id);
  messages_.fetch_sub(1);
  Pump();
}

asio::awaitable<bool> Scheduler::QueueReport(const sluice::v1::QueueRecord& original, const MessageContent& content,
                                             ReportKind kind, const std::vector<ReportedRecipient>& recipients,
                                             absl::Time now) {
  const bool failure = kind == ReportKind::kFailure;
  const char* failed_event = failure ? "bounce_failed" : "success_notice_failed";
  auto begun = store_.Begin();
  if (!begun.ok()) {
    observe::Error(failed_event).Kv("queue_id", original.queue_id()).Kv("error", MessageOf(begun.status()));
    co_return false;
  }
  std::unique_ptr<QueueWriter> writer = std::move(*begun);
  absl::Status written = co_await RunBlocking(blocking_, [&] {
    return WriteDeliveryReport(*writer, original, content, kind, recipients, options_.bounce, now);
  });
  if (!written.ok()) {
    observe::Error(failed_event).Kv("queue_id", original.queue_id()).Kv("error", MessageOf(written));
    co_return false;
  }
  sluice::v1::QueueRecord envelope = ReportEnvelope(original);
  auto id = co_await writer->Commit(std::move(envelope));
  if (!id.ok()) {
    observe::Error(failed_event).Kv("queue_id", original.queue_id()).Kv("error", MessageOf(id.status()));
    co_return false;
  }
  observe::Info(failure ? "bounce_queued" : "success_notice_queued")
      .Kv("queue_id", *id)
      .Kv("orig_queue_id", original.queue_id())
      .Kv("session", original.session_id())
      .Kv("to", original.sender())
      .Kv("nrcpt", static_cast<uint64_t>(recipients.size()));
  std::lock_guard<std::mutex> lock(stats_mu_);
  ++stats_.reports_queued;
  if (!failure) ++stats_.success_reports_queued;
  co_return true;
}

void Scheduler::Log(const sluice::v1::QueueRecord& record, const sluice::v1::QueueRecipient& rcpt,
                    std::string_view status, std::string_view dsn, absl::Time now) const {
  double delay = record.has_arrived_at() ? absl::ToDoubleSeconds(now - FromProtoTime(record.arrived_at())) : 0;
  observe::Info("delivery")
      .Kv("queue_id", record.queue_id())
      .Kv("session", record.session_id())
      .Kv("to", rcpt.address())
      .Kv("relay", agent_.name())
      .Kv("delay", delay)
      .Kv("attempts", record.attempts())
      .Kv("dsn", dsn)
      .Kv("status", status)
      .Kv("reply", rcpt.last_reply())
      .Kv("orig_client", record.original_client().client_address());
}

}  // namespace sluice::reinject
