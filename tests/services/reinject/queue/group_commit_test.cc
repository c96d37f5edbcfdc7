// tests/services/reinject/queue/group_commit_test.cc -- concurrent commits share fsync
// batches (asserted on the batch count, never on time), each commit still durable on its own.
#include "services/reinject/queue/group_commit.h"

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "asio/detached.hpp"
#include "lib/status/status_matchers.h"
#include "prometheus/registry.h"
#include "services/reinject/queue/queue_metrics.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::CommitAsync;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

struct Results {
  std::mutex mu;
  std::vector<absl::StatusOr<std::string>> ids;
  std::thread::id resumed_on;
};

asio::awaitable<void> CommitAndRecord(QueueStore& store, int i, Results& out) {
  // (Built before co_await: g++ 12 cannot keep a braced list of literals across a suspension.)
  sluice::v1::QueueRecord record = Envelope("a@x.example", std::vector<std::string>{"b@y.example"});
  std::string content = "message " + std::to_string(i) + "\r\n";
  auto id = co_await CommitAsync(store, std::move(content), std::move(record));
  std::lock_guard<std::mutex> lock(out.mu);
  out.resumed_on = std::this_thread::get_id();
  out.ids.push_back(std::move(id));
}

TEST(GroupCommitTest, ConcurrentCommitsShareBatches) {
  TempDir dir;
  prometheus::Registry registry;
  QueueMetrics metrics(registry);
  QueueStoreOptions o;
  o.queue_dir = dir / "queue";
  o.metrics = &metrics;
  auto store = QueueStore::Open(std::move(o));
  ASSERT_THAT(store, IsOk());

  constexpr int kCommits = 200;
  asio::io_context io;
  Results out;
  auto& results = out.ids;
  for (int i = 0; i < kCommits; ++i) asio::co_spawn(io, CommitAndRecord(**store, i, out), asio::detached);
  // Two io threads, like a 2-core reinject.
  auto start = std::chrono::steady_clock::now();
  std::thread other([&] { io.run(); });
  io.run();
  other.join();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  ASSERT_EQ(results.size(), static_cast<size_t>(kCommits));
  std::set<std::string> ids;
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    ids.insert(*r);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCommits));
  const GroupCommitter& committer = (*store)->committer();
  EXPECT_EQ(committer.commits(), static_cast<uint64_t>(kCommits));
  // The point of group commit: fewer fsync rounds than commits, one sync per batch.
  EXPECT_LT(committer.batches(), committer.commits());
  EXPECT_EQ(committer.synced_batches(), committer.batches());
  // Each sync is one fdatasync of the segment (+ one fsync of segments/ for its name).
  EXPECT_LE((*store)->log().syncs(), committer.synced_batches() + 1);
  EXPECT_EQ((*store)->Counters().messages[sluice::v1::INCOMING], static_cast<uint64_t>(kCommits));
  std::printf("group commit: %llu commits in %llu batches, %llu fsyncs, %.0f ms\n",
              static_cast<unsigned long long>(committer.commits()),
              static_cast<unsigned long long>(committer.batches()),
              static_cast<unsigned long long>((*store)->log().syncs()), ms);

  // Every committed message is there after a reopen.
  store->reset();
  QueueStoreOptions again;
  again.queue_dir = dir / "queue";
  auto reopened = QueueStore::Open(std::move(again));
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ((*reopened)->recovery().recovered[sluice::v1::INCOMING], static_cast<uint64_t>(kCommits));
}

TEST(GroupCommitTest, CompletionResumesOnTheCallersExecutor) {
  TempDir dir;
  QueueStoreOptions o;
  o.queue_dir = dir / "queue";
  auto store = QueueStore::Open(std::move(o));
  ASSERT_THAT(store, IsOk());
  asio::io_context io;
  Results out;
  asio::co_spawn(io, CommitAndRecord(**store, 1, out), asio::detached);
  io.run();  // returns only after the commit resumed: the pending commit kept the io_context busy
  ASSERT_EQ(out.ids.size(), 1u);
  EXPECT_THAT(out.ids[0], IsOk());
  EXPECT_EQ(out.resumed_on, std::this_thread::get_id());
}

}  // namespace
}  // namespace sluice::reinject
