// tests/services/reinject/delivery/maildir_crash_test.cc -- issue 11, "local delivery exactly
// once", with real crashes: a child process runs the queue, the scheduler and the real Maildir
// agent; the moment a delivery's files are in new/ (fsynced, renamed) and before the
// scheduler may end the queue entry, the child says so and is SIGKILLed. Again and again,
// with a mail client moving what arrived from new/ to cur/ (":2,S") between some of the
// crashes. At the end every (message, recipient) is in its mailbox exactly once.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "asio/executor_work_guard.hpp"
#include "asio/thread_pool.hpp"
#include "lib/status/status_matchers.h"
#include "services/reinject/delivery/maildir_agent.h"
#include "services/reinject/delivery/scheduler.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

// The real Maildir agent; after its `stop_after`-th delivery call has returned (the files
// are in new/), reports on `report_fd` and blocks forever: the parent kills the process
// right there, before the scheduler can retire the entry.
class StopAfterDelivery final : public DeliveryAgent {
 public:
  StopAfterDelivery(MaildirAgent& inner, int stop_after, int report_fd)
      : inner_(inner), stop_after_(stop_after), report_fd_(report_fd) {}
  std::string_view name() const override { return inner_.name(); }
  std::string Destination(const sluice::v1::QueueRecord& record, int i) const override {
    return inner_.Destination(record, i);
  }
  asio::awaitable<std::vector<RecipientResult>> Deliver(const sluice::v1::QueueRecord& record,
                                                        const MessageContent& content,
                                                        const std::vector<int>& indexes,
                                                        EarlierAttempt earlier = EarlierAttempt::kNone) override {
    auto results = co_await inner_.Deliver(record, content, indexes, earlier);
    if (++calls_ == stop_after_) {
      std::string line = "delivered " + record.queue_id() + "\n";
      (void)!::write(report_fd_, line.data(), line.size());
      for (;;) ::pause();  // the dangerous moment: SIGKILL comes here
    }
    co_return results;
  }

 private:
  MaildirAgent& inner_;
  int stop_after_;
  int report_fd_;
  int calls_ = 0;
};

std::string ReadLine(int fd) {
  std::string out;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') out.push_back(c);
  return out;
}

// Runs the scheduler on the queue with `agent` until the queue is empty (or 60 s).
bool DeliverAll(const std::string& queue_dir, const std::function<DeliveryAgent&(MaildirAgent&)>& agent_for,
                const std::string& maildir) {
  asio::io_context io;
  asio::thread_pool pool(2);
  QueueStoreOptions o;
  o.queue_dir = queue_dir;
  auto store = QueueStore::Open(std::move(o));
  if (!store.ok()) return false;
  MaildirAgent maildir_agent(MaildirOptions{maildir, "mx.test"}, pool.get_executor());
  DeliveryAgent& agent = agent_for(maildir_agent);
  // One delivery at a time: the crash comes after a known number of them, and each round
  // gets some messages through.
  sluice::v1::Limits limits;
  limits.set_delivery_concurrency(1);
  SchedulerOptions options;
  options.limits = FixedLimits(limits);
  Scheduler scheduler(io.get_executor(), pool.get_executor(), **store, agent, SystemClock(), nullptr, options);
  scheduler.Start();
  bool emptied = testing::RunUntil(io, [&] {
    return (*store)->List(QueueListFilter()).total_messages == 0 && scheduler.Idle();
  });
  scheduler.Stop();
  testing::RunUntil(io, [&] { return !scheduler.running(); });
  pool.join();
  return emptied;
}

TEST(MaildirCrashTest, KilledBetweenMaildirWriteAndEntryEndDeliversEachRecipientExactlyOnce) {
  TempDir dir;
  const std::string queue_dir = dir / "queue";
  const std::string maildir = dir / "mail";
  constexpr int kMessages = 24;  // 8 per mailbox, and 2 more to all three
  const std::vector<std::string> rcpts = {"ann@example.com", "bob@example.com", "cy@example.com"};
  std::vector<std::string> ids;
  {
    asio::io_context io;
    QueueStoreOptions o;
    o.queue_dir = queue_dir;
    auto store = QueueStore::Open(std::move(o));
    ASSERT_THAT(store, IsOk());
    // A delivery call covers one mailbox (the destination): most messages have one
    // recipient, so each call ends one; two have all three.
    for (int i = 0; i < kMessages; ++i) {
      auto id = testing::Commit(io, **store, kMessage, Envelope("alice@example.org", {rcpts[i % 3]}));
      ASSERT_THAT(id, IsOk());
      ids.push_back(*id);
    }
    for (int i = 0; i < 2; ++i) {
      auto id = testing::Commit(io, **store, kMessage, Envelope("alice@example.org", rcpts));
      ASSERT_THAT(id, IsOk());
      ids.push_back(*id);
    }
  }

  int crashes = 0;
  int moved_to_cur = 0;
  for (int round = 0; round < 200; ++round) {
    // Is anything left? (Read in the parent with no thread running at fork time.)
    {
      QueueStoreOptions o;
      o.queue_dir = queue_dir;
      o.maintenance_interval = absl::ZeroDuration();
      auto store = QueueStore::Open(std::move(o));
      ASSERT_THAT(store, IsOk());
      if ((*store)->List(QueueListFilter()).total_messages == 0) break;
    }
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const int stop_after = 1 + round % 7;
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::unique_ptr<StopAfterDelivery> stopper;
      bool emptied = DeliverAll(
          queue_dir,
          [&](MaildirAgent& inner) -> DeliveryAgent& {
            stopper = std::make_unique<StopAfterDelivery>(inner, stop_after, fds[1]);
            return *stopper;
          },
          maildir);
      std::string line = emptied ? "empty\n" : "stuck\n";
      (void)!::write(fds[1], line.data(), line.size());
      ::_exit(0);
    }
    ::close(fds[1]);
    std::string line = ReadLine(fds[0]);
    ::close(fds[0]);
    if (line.rfind("delivered ", 0) == 0) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      ++crashes;
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (line == "empty") break;
    ASSERT_EQ(line.rfind("delivered ", 0), 0u) << "child said: " << line;
    // A mail client reads the mailboxes now and then: new/ -> cur/ with the Seen flag.
    if (round % 3 == 1) {
      for (const auto& r : rcpts) {
        std::string box = maildir + "/" + r;
        for (const auto& name : ListDir(box + "/new")) {
          ASSERT_EQ(::rename((box + "/new/" + name).c_str(), (box + "/cur/" + name + ":2,S").c_str()), 0);
          ++moved_to_cur;
        }
      }
    }
  }
  // Whatever is left, delivered without crashes.
  ASSERT_TRUE(DeliverAll(queue_dir, [](MaildirAgent& inner) -> DeliveryAgent& { return inner; }, maildir));

  EXPECT_GE(crashes, 5) << "the test must crash at the dangerous moment, repeatedly";
  EXPECT_GT(moved_to_cur, 0);
  // Exactly one file per (message, recipient), wherever the client put it.
  for (const auto& r : rcpts) {
    std::string box = maildir + "/" + r;
    std::map<std::string, int> per_key;
    for (const char* sub : {"/new", "/cur"}) {
      for (const auto& name : ListDir(box + sub)) ++per_key[MaildirAgent::KeyOfFileName(name)];
    }
    EXPECT_EQ(per_key.size(), static_cast<size_t>(kMessages / 3 + 2)) << r;
    for (const auto& [key, n] : per_key) EXPECT_EQ(n, 1) << r << " " << key;
    EXPECT_TRUE(ListDir(box + "/tmp").empty()) << r;
  }
  std::cout << "crashes at the dangerous moment: " << crashes << ", files moved to cur/ by the 'client': "
            << moved_to_cur << "\n";
}

}  // namespace
}  // namespace sluice::reinject
