// tests/services/reinject/queue/queue_store_handoff_test.cc -- the queue's side of a hand-off
// (queue_store_handoff.cc) on real files: a marked entry is not scheduled and stays marked
// across restarts -- also once the segment its mark is in holds nothing else live -- until its
// transfer is ended; an entry the peer certainly does not have comes back as it was; an id
// handed over and finished here is recognised when it is offered again.
#include <future>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Commit;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

class QueueStoreHandoffTest : public ::testing::Test {
 protected:
  std::unique_ptr<QueueStore> Open() {
    QueueStoreOptions o;
    o.queue_dir = dir_ / "queue";
    o.clock = &clock_;
    o.segment_bytes = 4096;  // a few frames per segment: segments come and go
    o.maintenance_interval = absl::ZeroDuration();
    auto store = QueueStore::Open(std::move(o));
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::string CommitOne(QueueStore& store) {
    auto id = Commit(io_, store, kMessage, Envelope("alice@example.org", {"bob@example.com"}));
    EXPECT_THAT(id, IsOk());
    return id.ok() ? *id : "";
  }
  static sluice::v1::QueueHandoffMark Mark() {
    sluice::v1::QueueHandoffMark m;
    m.set_peer("10.0.0.8:9103");
    return m;
  }
  bool Due(QueueStore& store, const std::string& id) {
    auto due = store.TakeDue(clock_.Now(), 1000);
    bool found = std::find(due.begin(), due.end(), id) != due.end();
    for (const auto& d : due) store.Unclaim(d);
    return found;
  }

  TempDir dir_;
  FakeClock clock_;
  asio::io_context io_;
};

TEST_F(QueueStoreHandoffTest, AnUnansweredEntryStaysMarkedAcrossRestartsUntilItsPeerTakesIt) {
  std::string id;
  {
    auto store = Open();
    id = CommitOne(*store);
    std::vector<std::string> others;  // the log moves on: the mark goes into a later segment
    for (int i = 0; i < 20; ++i) others.push_back(CommitOne(*store));
    ASSERT_GT(store->log().Segments().size(), 1u);
    ASSERT_EQ(store->TakeForHandoff({id}, nullptr), std::vector<std::string>{id});
    ASSERT_THAT(store->MarkHandoff({id}, Mark()), IsOk());
    store->EndHandoff(id, QueueStore::HandoffEnd::kUnknown, "10.0.0.8:9103");  // sent, no answer
    EXPECT_EQ(store->MarkedCount(), 1u);
    EXPECT_FALSE(Due(*store, id));
    // The mail around the mark goes, and more comes and goes: the mark's segment ends up
    // holding nothing else live, and later segments take over.
    for (const auto& o : others) ASSERT_THAT(store->Delete(o), IsOk());
    for (int i = 0; i < 40; ++i) ASSERT_THAT(store->Delete(CommitOne(*store)), IsOk());
  }
  for (int restart = 0; restart < 2; ++restart) {
    auto store = Open();  // each start removes the segments nobody refers to
    EXPECT_EQ(store->MarkedCount(), 1u) << "restart " << restart;
    EXPECT_FALSE(Due(*store, id)) << "a marked entry was scheduled after restart " << restart;
  }
  {
    auto store = Open();
    auto marked = store->TakeMarked();
    ASSERT_EQ(marked.size(), 1u);
    EXPECT_EQ(marked[0].first, id);
    EXPECT_EQ(marked[0].second.peer(), "10.0.0.8:9103");
    store->EndHandoff(id, QueueStore::HandoffEnd::kSent, "10.0.0.8:9103");  // the peer has it
  }
  auto store = Open();
  EXPECT_THAT(store->Get(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store->MarkedCount(), 0u);
}

TEST_F(QueueStoreHandoffTest, AnEntryThePeerDidNotTakeIsDeliveredHereAsBefore) {
  std::string id;
  {
    auto store = Open();
    id = CommitOne(*store);
    ASSERT_EQ(store->TakeForHandoff({}, nullptr), std::vector<std::string>{id});
    ASSERT_THAT(store->MarkHandoff({id}, Mark()), IsOk());
    store->EndHandoff(id, QueueStore::HandoffEnd::kNotSent, "10.0.0.8:9103");  // REFUSED
    EXPECT_EQ(store->MarkedCount(), 0u);
    EXPECT_TRUE(Due(*store, id));
  }
  auto store = Open();
  EXPECT_EQ(store->MarkedCount(), 0u);
  EXPECT_TRUE(Due(*store, id));
}

TEST_F(QueueStoreHandoffTest, AnIdHandedOverAndFinishedHereIsRecognisedWhenOfferedAgain) {
  auto store = Open();
  const std::string id = "HOVGTEST00000001";
  auto writer = store->BeginIngest(id, QueueStore::IngestOrigin::kPeer, /*retry=*/false);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Append(kMessage), IsOk());
  auto record = Envelope("alice@example.org", {"bob@example.com"});
  record.set_queue_id(id);
  record.set_state(sluice::v1::DEFERRED);
  record.set_size_bytes(std::string(kMessage).size());
  std::promise<absl::Status> committed;
  (*writer)->CommitWhole(record, [&](absl::Status s) { committed.set_value(s); });
  ASSERT_THAT(committed.get_future().get(), IsOk());
  EXPECT_THAT(store->BeginIngest(id, QueueStore::IngestOrigin::kPeer, true).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));  // still queued here
  ASSERT_THAT(store->Delete(id), IsOk());                  // finished here
  EXPECT_THAT(store->BeginIngest(id, QueueStore::IngestOrigin::kPeer, true).status(),
              StatusIs(absl::StatusCode::kAlreadyExists));  // the retry is not queued again
}

}  // namespace
}  // namespace sluice::reinject
