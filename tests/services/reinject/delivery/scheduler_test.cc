// tests/services/reinject/delivery/scheduler_test.cc -- the queue manager with a fake clock
// and a scripted agent: backoff 300..4000 s, lifetime then bounce, permanent failure then
// bounce, NOTIFY=NEVER / null sender / bounce-of-a-bounce never reported, success notices
// (NOTIFY=SUCCESS: delivered/relayed, none when NOTIFY went on), held entries never
// delivered, flush, concurrency limits, a slow delivery never blocking commits, recovery of
// active entries, delivery timeout, and the real Maildir agent end to end.
#include "services/reinject/delivery/scheduler.h"

#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "asio/executor_work_guard.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/thread_pool.hpp"
#include "lib/status/status_matchers.h"
#include "services/reinject/delivery/maildir_agent.h"
#include "services/reinject/queue/proto_time.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::CommitAsync;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::Exists;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::RunAwaitable;
using ::sluice::reinject::testing::RunUntil;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

// Answers per recipient address from a script (default: delivered), records every call and
// what it delivered, and can hold calls at a gate. Destination: the recipient's domain.
class ScriptedAgent final : public DeliveryAgent {
 public:
  struct Call {
    std::string queue_id;
    std::string sender;
    bool is_bounce = false;
    std::vector<std::string> recipients;
    std::string content;
    EarlierAttempt earlier = EarlierAttempt::kNone;
  };
  struct Answer {
    DeliveryOutcome outcome;
    std::string reply;
  };

  std::string_view name() const override { return "scripted"; }
  std::string Destination(const sluice::v1::QueueRecord& record, int i) const override {
    const std::string& a = record.recipients(i).address();
    return a.substr(a.find('@') + 1);
  }

  asio::awaitable<std::vector<RecipientResult>> Deliver(const sluice::v1::QueueRecord& record,
                                                        const MessageContent& content,
                                                        const std::vector<int>& indexes,
                                                        EarlierAttempt earlier = EarlierAttempt::kNone) override {
    std::string destination = Destination(record, indexes.at(0));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++in_flight_;
      ++in_flight_by_destination_[destination];
      peak_ = std::max(peak_, in_flight_);
      peak_by_destination_[destination] = std::max(peak_by_destination_[destination], in_flight_by_destination_[destination]);
    }
    if (gated_) {
      asio::steady_timer gate(co_await asio::this_coro::executor);
      gate.expires_at(asio::steady_timer::time_point::max());
      gates_.push_back(&gate);
      co_await gate.async_wait(nothrow);
      gates_.erase(std::find(gates_.begin(), gates_.end(), &gate));
    }
    Call call;
    call.queue_id = record.queue_id();
    call.sender = record.sender();
    call.is_bounce = record.is_bounce();
    call.earlier = earlier;
    auto bytes = content.ReadAll();
    call.content = bytes.ok() ? *bytes : "<unreadable>";
    std::vector<RecipientResult> results;
    for (int i : indexes) {
      const std::string& address = record.recipients(i).address();
      call.recipients.push_back(address);
      RecipientResult r;
      r.index = i;
      r.diagnostic_type = "smtp";
      r.remote_mta = "mx." + destination;
      auto notice = success_.find(address);
      if (notice != success_.end()) r.success = notice->second;
      auto it = script_.find(address);
      if (it == script_.end()) {
        r.outcome = DeliveryOutcome::kDelivered;
        r.reply = "250 2.0.0 Ok";
      } else {
        r.outcome = it->second.outcome;
        r.reply = it->second.reply;
      }
      results.push_back(std::move(r));
    }
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    --in_flight_by_destination_[destination];
    calls_.push_back(std::move(call));
    co_return results;
  }

  void Script(const std::string& address, DeliveryOutcome outcome, const std::string& reply) {
    script_[address] = Answer{outcome, reply};
  }
  void Unscript(const std::string& address) { script_.erase(address); }
  // What a success for `address` means for NOTIFY=SUCCESS (default kDelivered).
  void ScriptSuccess(const std::string& address, SuccessNotice notice) { success_[address] = notice; }
  // Only call while the io_context is not running (the tests run it on their own thread).
  void Gate() { gated_ = true; }
  void OpenGate() {
    gated_ = false;
    for (auto* g : gates_) g->cancel();
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  int in_flight() {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_;
  }
  int peak() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_;
  }
  int peak_for(const std::string& destination) {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_by_destination_[destination];
  }

 private:
  std::map<std::string, Answer> script_;
  std::map<std::string, SuccessNotice> success_;
  bool gated_ = false;
  std::vector<asio::steady_timer*> gates_;
  std::mutex mu_;
  std::vector<Call> calls_;
  int in_flight_ = 0, peak_ = 0;
  std::map<std::string, int> in_flight_by_destination_, peak_by_destination_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  ~SchedulerTest() override {
    agent_.OpenGate();
    if (scheduler_) {
      scheduler_->Stop();
      EXPECT_TRUE(RunUntil(io_, [&] { return !scheduler_->running(); }));
      scheduler_.reset();
    }
    store_.reset();
    pool_.join();
  }

  void OpenStore() {
    QueueStoreOptions o;
    o.queue_dir = dir_ / "queue";
    o.clock = &clock_;
    o.limits = FixedLimits(limits_);
    auto store = QueueStore::Open(std::move(o));
    ASSERT_THAT(store, IsOk());
    store_ = std::move(*store);
  }
  void Start(DeliveryAgent* agent = nullptr) {
    if (!store_) OpenStore();
    SchedulerOptions options;
    options.limits = FixedLimits(limits_);
    options.bounce = BounceOptions{"mx.test", "MAILER-DAEMON"};
    scheduler_ = std::make_unique<Scheduler>(io_.get_executor(), pool_.get_executor(), *store_,
                                             agent != nullptr ? *agent : agent_, clock_, nullptr, options);
    scheduler_->Start();
  }
  // Runs until nothing is in flight or due at the fake clock's now.
  void Settle() { ASSERT_TRUE(RunUntil(io_, [&] { return scheduler_->Idle(); })) << "scheduler never idle"; }
  void AdvanceAndSettle(absl::Duration d) {
    clock_.Advance(d);
    scheduler_->Wake();
    Settle();
  }
  std::string Queue(sluice::v1::QueueRecord record, const std::string& content = kMessage) {
    auto id = RunAwaitable(io_, CommitAsync(*store_, content, std::move(record)));
    EXPECT_THAT(id, IsOk());
    return id.ok() ? *id : "";
  }
  sluice::v1::QueueRecord Record(const std::string& id) {
    auto entry = store_->Get(id);
    EXPECT_THAT(entry, IsOk()) << id;
    return entry.ok() ? entry->record() : sluice::v1::QueueRecord();
  }
  uint64_t Queued() { return store_->List(QueueListFilter()).total_messages; }

  TempDir dir_;
  FakeClock clock_;
  sluice::v1::Limits limits_;
  asio::io_context io_;
  asio::thread_pool pool_{2};
  ScriptedAgent agent_;
  std::unique_ptr<QueueStore> store_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, DeliversAndRemovesTheEntry) {
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example", "carol@other.example"}));
  Settle();
  auto calls = agent_.calls();
  ASSERT_EQ(calls.size(), 2u);  // one per destination
  EXPECT_EQ(calls[0].content, kMessage);
  EXPECT_EQ(Queued(), 0u);
  // The remove frame rides with the committer's next batch: it reaches the segment file.
  EXPECT_TRUE(RunUntil(io_, [&] { return absl::IsNotFound(testing::RecordInLog(dir_ / "queue", id).status()); }));
  EXPECT_EQ(scheduler_->stats().recipients_delivered, 2u);
  (void)id;
}

TEST_F(SchedulerTest, TransientFailureDefersWithDoublingBackoffCappedAt4000) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kTransient, "451 4.3.0 try again later");
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  Settle();
  const int delays[] = {300, 600, 1200, 2400, 4000, 4000, 4000};
  for (size_t attempt = 1; attempt <= std::size(delays); ++attempt) {
    int delay = delays[attempt - 1];
    auto record = Record(id);
    ASSERT_EQ(record.state(), sluice::v1::DEFERRED) << "attempt " << attempt;
    EXPECT_EQ(record.attempts(), attempt);
    EXPECT_EQ(FromProtoTime(record.next_attempt_at()) - FromProtoTime(record.last_attempt_at()), absl::Seconds(delay))
        << "attempt " << attempt;
    EXPECT_EQ(record.recipients(0).status(), sluice::v1::RECIPIENT_STATUS_DEFERRED);
    EXPECT_EQ(record.recipients(0).last_reply(), "451 4.3.0 try again later");
    EXPECT_EQ(record.last_error(), "451 4.3.0 try again later");
    size_t calls = agent_.calls().size();
    AdvanceAndSettle(absl::Seconds(delay - 1));
    EXPECT_EQ(agent_.calls().size(), calls) << "retried before its time, attempt " << attempt;
    AdvanceAndSettle(absl::Seconds(1));
    EXPECT_EQ(agent_.calls().size(), calls + 1) << "not retried when due, attempt " << attempt;
  }
  EXPECT_EQ(scheduler_->stats().reports_queued, 0u);
}

TEST_F(SchedulerTest, MessageOlderThanMaximalQueueLifetimeIsBounced) {
  limits_.set_maximal_queue_lifetime_seconds(1000);
  agent_.Script("bob@remote.example", DeliveryOutcome::kTransient, "451 4.4.1 connection timed out");
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  Settle();                               // t=0: deferred 300
  AdvanceAndSettle(absl::Seconds(300));   // t=300: deferred 600
  AdvanceAndSettle(absl::Seconds(600));   // t=900: deferred 1200
  ASSERT_EQ(Record(id).state(), sluice::v1::DEFERRED);
  AdvanceAndSettle(absl::Seconds(1200));  // t=2100: older than 1000 s: bounced, report delivered
  EXPECT_THAT(store_->Get(id), ::sluice::testing::StatusIs(absl::StatusCode::kNotFound));
  auto calls = agent_.calls();
  ASSERT_EQ(calls.size(), 5u);
  const auto& report = calls.back();
  EXPECT_TRUE(report.is_bounce);
  EXPECT_EQ(report.sender, "");
  EXPECT_EQ(report.recipients, std::vector<std::string>{"alice@origin.example"});
  EXPECT_NE(report.content.find("Action: failed\r\n"), std::string::npos);
  EXPECT_NE(report.content.find("Status: 4.4.1\r\n"), std::string::npos);
  EXPECT_NE(report.content.find("Diagnostic-Code: smtp; 451 4.4.1 connection timed out"), std::string::npos);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, PermanentFailureBouncesAtOnce) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kPermanent, "550 5.1.1 <bob@remote.example>: user unknown");
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  Settle();
  EXPECT_THAT(store_->Get(id), ::sluice::testing::StatusIs(absl::StatusCode::kNotFound));
  auto calls = agent_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[1].is_bounce);
  EXPECT_EQ(calls[1].recipients, std::vector<std::string>{"alice@origin.example"});
  EXPECT_NE(calls[1].content.find("Status: 5.1.1\r\n"), std::string::npos);
  EXPECT_NE(calls[1].content.find("Remote-MTA: dns; mx.remote.example\r\n"), std::string::npos);
  EXPECT_EQ(scheduler_->stats().reports_queued, 1u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, OnlyTheFailedRecipientsAreReportedAndOnlyTheDeferredRetried) {
  agent_.Script("later@b.example", DeliveryOutcome::kTransient, "450 4.2.0 greylisted");
  agent_.Script("bad@c.example", DeliveryOutcome::kPermanent, "550 5.1.1 no such user");
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"ok@a.example", "later@b.example", "bad@c.example"}));
  Settle();
  auto record = Record(id);
  EXPECT_EQ(record.state(), sluice::v1::DEFERRED);
  EXPECT_EQ(record.recipients(0).status(), sluice::v1::RECIPIENT_STATUS_DELIVERED);
  EXPECT_EQ(record.recipients(1).status(), sluice::v1::RECIPIENT_STATUS_DEFERRED);
  EXPECT_EQ(record.recipients(2).status(), sluice::v1::RECIPIENT_STATUS_BOUNCED);
  auto calls = agent_.calls();
  ASSERT_EQ(calls.size(), 4u);  // three destinations, then the report
  EXPECT_TRUE(calls[3].is_bounce);
  EXPECT_NE(calls[3].content.find("Final-Recipient: rfc822; bad@c.example"), std::string::npos);
  EXPECT_EQ(calls[3].content.find("Final-Recipient: rfc822; later@b.example"), std::string::npos);

  agent_.Unscript("later@b.example");
  AdvanceAndSettle(absl::Seconds(300));
  calls = agent_.calls();
  ASSERT_EQ(calls.size(), 5u);
  EXPECT_EQ(calls[4].recipients, std::vector<std::string>{"later@b.example"});
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, NotifyNeverMeansNoReport) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kPermanent, "550 5.1.1 no");
  Start();
  auto record = Envelope("alice@origin.example", {"bob@remote.example"});
  record.mutable_recipients(0)->set_notify("NEVER");
  Queue(record);
  Settle();
  EXPECT_EQ(agent_.calls().size(), 1u);
  EXPECT_EQ(scheduler_->stats().reports_queued, 0u);
  EXPECT_EQ(scheduler_->stats().recipients_bounced, 1u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, NotifySuccessOnlyMeansNoFailureReport) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kPermanent, "550 5.1.1 no");
  Start();
  auto record = Envelope("alice@origin.example", {"bob@remote.example"});
  record.mutable_recipients(0)->set_notify("SUCCESS");
  Queue(record);
  Settle();
  EXPECT_EQ(scheduler_->stats().reports_queued, 0u);
}

TEST_F(SchedulerTest, NullSenderGetsNoReport) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kPermanent, "550 5.1.1 no");
  Start();
  Queue(Envelope("", {"bob@remote.example"}));
  Settle();
  EXPECT_EQ(agent_.calls().size(), 1u);
  EXPECT_EQ(scheduler_->stats().reports_queued, 0u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, AReportIsNeverReportedOn) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kPermanent, "550 5.1.1 no");
  agent_.Script("alice@origin.example", DeliveryOutcome::kPermanent, "550 5.1.1 sender gone too");
  Start();
  Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  Settle();
  // The original bounced, its report bounced too: no third message.
  auto calls = agent_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(calls[1].is_bounce);
  EXPECT_EQ(scheduler_->stats().reports_queued, 1u);
  EXPECT_EQ(Queued(), 0u);

  // Even with a sender set, a record marked is_bounce is never reported on.
  auto odd = Envelope("someone@origin.example", {"bob@remote.example"});
  odd.set_is_bounce(true);
  Queue(odd);
  Settle();
  EXPECT_EQ(scheduler_->stats().reports_queued, 1u);
}

TEST_F(SchedulerTest, HeldEntryIsNeverDeliveredUntilReleased) {
  Start();
  auto record = Envelope("alice@origin.example", {"bob@remote.example"});
  record.set_state(sluice::v1::HOLD);
  record.set_hold_reason("filter");
  std::string id = Queue(record);
  Settle();
  AdvanceAndSettle(absl::Hours(24 * 10));
  EXPECT_TRUE(agent_.calls().empty());
  EXPECT_EQ(Record(id).state(), sluice::v1::HOLD);
  ASSERT_THAT(store_->Release(id), IsOk());
  Settle();
  EXPECT_EQ(agent_.calls().size(), 1u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, FlushRetriesADeferredEntryNow) {
  agent_.Script("bob@remote.example", DeliveryOutcome::kTransient, "451 4.3.0 later");
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  Settle();
  ASSERT_EQ(Record(id).state(), sluice::v1::DEFERRED);
  agent_.Unscript("bob@remote.example");
  ASSERT_THAT(store_->Flush(id), IsOk());  // the clock does not move
  Settle();
  EXPECT_EQ(agent_.calls().size(), 2u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, ConcurrencyLimitsHoldPerDestinationAndInTotal) {
  limits_.set_delivery_concurrency(3);
  limits_.set_destination_concurrency(2);
  agent_.Gate();
  Start();
  for (int i = 0; i < 6; ++i) Queue(Envelope("a@origin.example", {"r" + std::to_string(i) + "@one.example"}));
  for (int i = 0; i < 3; ++i) Queue(Envelope("a@origin.example", {"r" + std::to_string(i) + "@two.example"}));
  ASSERT_TRUE(RunUntil(io_, [&] { return agent_.in_flight() == 3; }));
  // More time changes nothing: every slot is taken.
  io_.restart();
  io_.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(agent_.in_flight(), 3);
  EXPECT_LE(agent_.peak_for("one.example"), 2);
  agent_.OpenGate();
  Settle();
  EXPECT_EQ(agent_.calls().size(), 9u);
  EXPECT_EQ(agent_.peak(), 3);
  EXPECT_EQ(agent_.peak_for("one.example"), 2);
  EXPECT_LE(agent_.peak_for("two.example"), 2);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, SlowDeliveryNeverBlocksCommits) {
  agent_.Gate();
  Start();
  Queue(Envelope("a@origin.example", {"slow@remote.example"}));
  ASSERT_TRUE(RunUntil(io_, [&] { return agent_.in_flight() == 1; }));
  // The delivery hangs; receiving goes on.
  for (int i = 0; i < 5; ++i) {
    auto id = RunAwaitable(io_, CommitAsync(*store_, kMessage, Envelope("a@origin.example", {"x@other.example"})));
    EXPECT_THAT(id, IsOk());
  }
  // The new ones go out beside the stuck one.
  EXPECT_TRUE(RunUntil(io_, [&] { return agent_.in_flight() == 1 + 5; })) << agent_.in_flight();
  agent_.OpenGate();
  Settle();
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, EntryLeftActiveByACrashIsDeliveredAfterRestart) {
  OpenStore();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  ASSERT_EQ(store_->TakeDue(clock_.Now(), 10).size(), 1u);
  ASSERT_THAT(store_->Claim(id), IsOk());  // active, then the crash
  store_.reset();
  Start();
  Settle();
  ASSERT_EQ(agent_.calls().size(), 1u);
  EXPECT_EQ(agent_.calls()[0].queue_id, id);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, DeliveryOverItsTimeLimitIsDeferred) {
  limits_.set_delivery_timeout_seconds(1);
  agent_.Gate();  // never answers on its own
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  Settle();  // about one real second
  auto record = Record(id);
  EXPECT_EQ(record.state(), sluice::v1::DEFERRED);
  EXPECT_EQ(record.recipients(0).last_reply().substr(0, 9), "451 4.4.7");
}

TEST_F(SchedulerTest, StopAndWaitLetsTheDeliveryInFlightFinish) {
  agent_.Gate();
  Start();
  std::string id = Queue(Envelope("alice@origin.example", {"bob@remote.example"}));
  ASSERT_TRUE(RunUntil(io_, [&] { return agent_.in_flight() == 1; }));
  // From here the io_context runs on its own thread, as in sluice-reinject.
  auto guard = asio::make_work_guard(io_);
  io_.restart();
  std::thread io_thread([&] { io_.run(); });
  asio::post(io_, [&] { agent_.OpenGate(); });
  EXPECT_TRUE(scheduler_->StopAndWait(absl::Seconds(30)));
  EXPECT_FALSE(scheduler_->running());
  guard.reset();
  io_.stop();
  io_thread.join();
  EXPECT_EQ(agent_.calls().size(), 1u);
  EXPECT_EQ(Queued(), 0u);
  (void)id;
}

TEST_F(SchedulerTest, MaildirEndToEnd) {
  MaildirAgent maildir(MaildirOptions{dir_ / "mail", "mx.test"}, pool_.get_executor());
  Start(&maildir);
  Queue(Envelope("alice@origin.example", {"Bob@Example.com"}));
  Settle();
  auto files = ListDir(dir_ / "mail/bob@example.com/new");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(ReadFile(dir_ / ("mail/bob@example.com/new/" + files[0])),
            std::string("Return-Path: <alice@origin.example>\r\nDelivered-To: Bob@Example.com\r\n") + kMessage);
  EXPECT_EQ(Queued(), 0u);
}

// ---- success notices (RFC 3461 NOTIFY=SUCCESS) ----

// The reports among the agent's calls (messages from <> marked is_bounce).
std::vector<ScriptedAgent::Call> Reports(const std::vector<ScriptedAgent::Call>& calls) {
  std::vector<ScriptedAgent::Call> out;
  for (const auto& c : calls) {
    if (c.is_bounce) out.push_back(c);
  }
  return out;
}

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST_F(SchedulerTest, SuccessNoticeCoversOnlyTheRecipientsThatAskedForIt) {
  agent_.ScriptSuccess("erin@b.example", SuccessNotice::kRelayed);
  Start();
  auto record =
      Envelope("alice@origin.example", {"bob@a.example", "erin@b.example", "carol@c.example", "dave@d.example"});
  record.mutable_recipients(0)->set_notify("SUCCESS,FAILURE");
  record.mutable_recipients(1)->set_notify("SUCCESS");
  record.mutable_recipients(3)->set_notify("FAILURE");  // and carol has none (FAILURE,DELAY)
  record.set_envid("E-42");
  std::string id = Queue(record);
  Settle();
  auto reports = Reports(agent_.calls());
  ASSERT_EQ(reports.size(), 1u);  // one notice for the attempt
  const auto& notice = reports[0];
  EXPECT_EQ(notice.sender, "");
  EXPECT_EQ(notice.recipients, std::vector<std::string>{"alice@origin.example"});
  EXPECT_TRUE(Has(notice.content, "Subject: Successful Mail Delivery Report\r\n"));
  EXPECT_TRUE(Has(notice.content, "Original-Envelope-Id: E-42\r\n"));
  EXPECT_TRUE(Has(notice.content, "Final-Recipient: rfc822; bob@a.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n"))
      << notice.content;
  EXPECT_TRUE(Has(notice.content, "Final-Recipient: rfc822; erin@b.example\r\nAction: relayed\r\nStatus: 2.0.0\r\n"))
      << notice.content;
  EXPECT_FALSE(Has(notice.content, "carol@c.example"));
  EXPECT_FALSE(Has(notice.content, "dave@d.example"));
  EXPECT_EQ(scheduler_->stats().success_reports_queued, 1u);
  EXPECT_EQ(scheduler_->stats().recipients_delivered, 4u + 1u);  // and the notice itself
  EXPECT_EQ(Queued(), 0u);
  (void)id;
}

TEST_F(SchedulerTest, NoSuccessNoticeWhenNotifyWentOnToADsnCapableNextHop) {
  agent_.ScriptSuccess("bob@remote.example", SuccessNotice::kPassedOn);
  Start();
  auto record = Envelope("alice@origin.example", {"bob@remote.example"});
  record.mutable_recipients(0)->set_notify("SUCCESS,FAILURE");
  Queue(record);
  Settle();
  EXPECT_EQ(agent_.calls().size(), 1u);
  EXPECT_EQ(scheduler_->stats().reports_queued, 0u);
  EXPECT_EQ(scheduler_->stats().recipients_delivered, 1u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, NoSuccessNoticeForTheNullSenderNorForAReport) {
  Start();
  auto null_sender = Envelope("", {"bob@remote.example"});
  null_sender.mutable_recipients(0)->set_notify("SUCCESS");
  Queue(null_sender);
  auto report = Envelope("alice@origin.example", {"bob@remote.example"});
  report.mutable_recipients(0)->set_notify("SUCCESS");
  report.set_is_bounce(true);
  Queue(report);
  Settle();
  EXPECT_EQ(agent_.calls().size(), 2u);
  EXPECT_EQ(scheduler_->stats().reports_queued, 0u);
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, AnAttemptWithFailuresAndSuccessesSendsOneReportOfEachKind) {
  agent_.Script("carol@c.example", DeliveryOutcome::kPermanent, "550 5.1.1 no such user");
  Start();
  auto record = Envelope("alice@origin.example", {"bob@a.example", "carol@c.example"});
  record.mutable_recipients(0)->set_notify("SUCCESS");
  record.mutable_recipients(1)->set_notify("SUCCESS,FAILURE");
  Queue(record);
  Settle();
  auto reports = Reports(agent_.calls());
  ASSERT_EQ(reports.size(), 2u);
  int failures = 0, successes = 0;
  for (const auto& r : reports) {
    if (Has(r.content, "Subject: Undelivered Mail Returned to Sender\r\n")) {
      ++failures;
      EXPECT_TRUE(Has(r.content, "Final-Recipient: rfc822; carol@c.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
      EXPECT_FALSE(Has(r.content, "bob@a.example"));
    } else if (Has(r.content, "Subject: Successful Mail Delivery Report\r\n")) {
      ++successes;
      EXPECT_TRUE(Has(r.content, "Final-Recipient: rfc822; bob@a.example\r\nAction: delivered\r\n"));
      EXPECT_FALSE(Has(r.content, "carol@c.example"));
    }
  }
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(successes, 1);
  EXPECT_EQ(scheduler_->stats().reports_queued, 2u);
  EXPECT_EQ(scheduler_->stats().success_reports_queued, 1u);
}

TEST_F(SchedulerTest, EachAttemptReportsItsOwnSuccesses) {
  agent_.Script("later@b.example", DeliveryOutcome::kTransient, "450 4.2.0 greylisted");
  Start();
  auto record = Envelope("alice@origin.example", {"now@a.example", "later@b.example"});
  record.mutable_recipients(0)->set_notify("SUCCESS");
  record.mutable_recipients(1)->set_notify("SUCCESS");
  Queue(record);
  Settle();
  auto reports = Reports(agent_.calls());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(Has(reports[0].content, "Final-Recipient: rfc822; now@a.example\r\n"));
  EXPECT_FALSE(Has(reports[0].content, "later@b.example"));

  agent_.Unscript("later@b.example");
  AdvanceAndSettle(absl::Seconds(300));
  reports = Reports(agent_.calls());
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_TRUE(Has(reports[1].content, "Final-Recipient: rfc822; later@b.example\r\n"));
  EXPECT_FALSE(Has(reports[1].content, "now@a.example"));
  EXPECT_EQ(Queued(), 0u);
}

TEST_F(SchedulerTest, MaildirDeliveryWithNotifySuccessPutsANoticeInTheSendersMaildir) {
  MaildirAgent maildir(MaildirOptions{dir_ / "mail", "mx.test"}, pool_.get_executor());
  Start(&maildir);
  auto record = Envelope("alice@origin.example", {"bob@example.com"});
  record.mutable_recipients(0)->set_notify("SUCCESS");
  Queue(record);
  Settle();
  ASSERT_EQ(ListDir(dir_ / "mail/bob@example.com/new").size(), 1u);
  auto notices = ListDir(dir_ / "mail/alice@origin.example/new");
  ASSERT_EQ(notices.size(), 1u);
  std::string notice = ReadFile(dir_ / ("mail/alice@origin.example/new/" + notices[0]));
  EXPECT_TRUE(Has(notice, "Return-Path: <>\r\n")) << notice;
  EXPECT_TRUE(Has(notice, "Subject: Successful Mail Delivery Report\r\n"));
  EXPECT_TRUE(Has(notice, "Final-Recipient: rfc822; bob@example.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n"))
      << notice;
  EXPECT_TRUE(Has(notice, "Diagnostic-Code: X-Sluice; 250 2.0.0 delivered to maildir\r\n")) << notice;
  EXPECT_EQ(Queued(), 0u);
}

}  // namespace
}  // namespace sluice::reinject
