// tests/services/reinject/queue/queue_store_test.cc -- committing, reopening, admission and
// the state changes of the reinject queue, on real files in a temporary directory.
#include "services/reinject/queue/queue_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/proto_time.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Commit;
using ::sluice::reinject::testing::ContentOf;
using ::sluice::reinject::testing::RecordInLog;
using ::sluice::reinject::testing::SmallDisk;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::Exists;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

class QueueStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<QueueStore> Open(sluice::v1::Limits limits = {}) {
    QueueStoreOptions o;
    o.queue_dir = dir_ / "queue";
    o.limits = FixedLimits(limits);
    o.clock = &clock_;
    auto store = QueueStore::Open(std::move(o));
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::string Q(const std::string& rel) { return dir_ / ("queue/" + rel); }
  // The entry's record as the segment files say (not the store's memory).
  sluice::v1::QueueRecord OnDisk(const std::string& id) {
    auto r = RecordInLog(dir_ / "queue", id);
    EXPECT_THAT(r, IsOk()) << id;
    return r.ok() ? *r : sluice::v1::QueueRecord();
  }
  // Takes `id` as the scheduler would and finishes it deferred until `due`.
  void Defer(QueueStore& store, const std::string& id, absl::Time due) {
    auto taken = store.TakeDue(clock_.Now(), 100);
    ASSERT_NE(std::find(taken.begin(), taken.end(), id), taken.end());
    auto record = store.Claim(id);
    ASSERT_THAT(record, IsOk());
    record->set_state(sluice::v1::DEFERRED);
    *record->mutable_next_attempt_at() = ToProtoTime(due);
    record->mutable_recipients(0)->set_status(sluice::v1::RECIPIENT_STATUS_DEFERRED);
    ASSERT_THAT(store.Finish(id, *record), IsOk());
  }

  TempDir dir_;
  FakeClock clock_;
  asio::io_context io_;
};

TEST_F(QueueStoreTest, CommitThenReopenRecoversTheEntry) {
  std::string id;
  {
    auto store = Open();
    auto record = Envelope("alice@example.org", {"bob@example.com", "carol@example.com"});
    record.set_envid("ENV1");
    record.set_ret("HDRS");
    record.mutable_recipients(0)->set_orcpt("rfc822;bob@example.com");
    auto committed = Commit(io_, *store, kMessage, record);
    ASSERT_THAT(committed, IsOk());
    id = *committed;
  }
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 1u);
  auto entry = store->Get(id);
  ASSERT_THAT(entry, IsOk());
  const auto& r = entry->record();
  EXPECT_EQ(r.queue_id(), id);
  EXPECT_EQ(r.state(), sluice::v1::INCOMING);
  EXPECT_EQ(r.sender(), "alice@example.org");
  ASSERT_EQ(r.recipients_size(), 2);
  EXPECT_EQ(r.recipients(0).orcpt(), "rfc822;bob@example.com");
  EXPECT_EQ(r.recipients(1).status(), sluice::v1::RECIPIENT_STATUS_PENDING);
  EXPECT_EQ(r.envid(), "ENV1");
  EXPECT_EQ(r.size_bytes(), std::string(kMessage).size());
  EXPECT_EQ(FromProtoTime(r.arrived_at()), clock_.Now());
  EXPECT_EQ(ContentOf(*store, id), kMessage);
  EXPECT_TRUE(store->HasDue(clock_.Now()));
}

TEST_F(QueueStoreTest, CommitReturnsOnlyOnceRecordAndDataAreInPlace) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(OnDisk(*id).queue_id(), *id);
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::INCOMING);
  EXPECT_EQ(ContentOf(*store, *id), kMessage);
  EXPECT_TRUE(ListDir(Q("large")).empty());  // a small message travels inline with its record
  EXPECT_EQ(store->committer().synced_batches(), 1u);
  // One fdatasync of the segment, plus (once per new segment) one fsync of segments/.
  EXPECT_LE(store->log().syncs(), 2u);
}

TEST_F(QueueStoreTest, LargeMessageStreamsToDiskWhileAppending) {
  auto store = Open();
  auto writer = store->Begin();
  ASSERT_THAT(writer, IsOk());
  std::string chunk(1000, 'x');
  chunk += "\r\n";
  for (int i = 0; i < 4000; ++i) ASSERT_THAT((*writer)->Append(chunk), IsOk());
  // All but the last (bounded) buffer is already in the file before Commit.
  struct stat st;
  ASSERT_EQ(::stat(Q("large/" + (*writer)->id()).c_str(), &st), 0);
  EXPECT_GE(static_cast<uint64_t>(st.st_size) + 64 * 1024, (*writer)->size());
  EXPECT_EQ((*writer)->size(), 4000u * 1002u);
  auto id = testing::RunAwaitable(io_, (*writer)->Commit(Envelope("a@x.example", {"b@y.example"})));
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(::stat(Q("large/" + *id).c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 4000u * 1002u);
  EXPECT_EQ(ContentOf(*store, *id).size(), 4000u * 1002u);
  // It survives a restart as any other entry.
  store.reset();
  store = Open();
  std::string again = ContentOf(*store, *id);
  EXPECT_EQ(again.size(), 4000u * 1002u);
  EXPECT_EQ(again.substr(0, 1002), chunk);
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 1u);
}

TEST_F(QueueStoreTest, WriterDestroyedWithoutCommitLeavesNothing) {
  auto store = Open();
  {
    auto writer = store->Begin();
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT((*writer)->Append(std::string(200000, 'y')), IsOk());
    EXPECT_EQ(ListDir(Q("large")).size(), 1u);  // over the buffer: spilled
  }
  EXPECT_TRUE(ListDir(Q("large")).empty());
  EXPECT_EQ(store->List(QueueListFilter()).total_messages, 0u);
  EXPECT_EQ(store->Counters().total_bytes, 0u);
}

TEST_F(QueueStoreTest, CommitWithoutRecipientsFailsAndLeavesNothing) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {}));
  EXPECT_THAT(id, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ListDir(Q("large")).empty());
  EXPECT_EQ(store->List(QueueListFilter()).total_messages, 0u);
  EXPECT_EQ(store->committer().commits(), 0u);  // nothing reached the log
}

TEST_F(QueueStoreTest, FailedCommitLeavesNoPartialEntry) {
  // The queue on a small file system of its own that runs out of space under the commit.
  SmallDisk disk(dir_ / "queue", 1 << 20);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  std::string kept;
  {
    auto store = Open();
    auto first = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
    ASSERT_THAT(first, IsOk());
    kept = *first;
    disk.Fill();
    auto id = Commit(io_, *store, std::string(60000, 'z'), Envelope("a@x.example", {"b@y.example"}));
    EXPECT_THAT(id, StatusIs(absl::StatusCode::kResourceExhausted));
    auto big = Commit(io_, *store, std::string(300000, 'z'), Envelope("a@x.example", {"b@y.example"}));
    EXPECT_FALSE(big.ok());
    EXPECT_TRUE(ListDir(Q("large")).empty());
    EXPECT_EQ(store->Counters().messages[sluice::v1::INCOMING], 1u);
    disk.Free();
  }
  // Nothing of the failed ones comes back, and nothing is taken for damage.
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 1u);
  EXPECT_EQ(store->recovery().moved_to_corrupt, 0u);
  EXPECT_EQ(store->Ids(sluice::v1::QUEUE_STATE_UNSPECIFIED), std::vector<std::string>{kept});
  EXPECT_EQ(ContentOf(*store, kept), kMessage);
}

TEST_F(QueueStoreTest, MessageHeldByTheFilterIsCommittedIntoHold) {
  auto store = Open();
  auto record = Envelope("a@x.example", {"b@y.example"});
  record.set_state(sluice::v1::HOLD);
  record.set_hold_reason("filter: quarantine");
  auto id = Commit(io_, *store, kMessage, record);
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::HOLD);
  EXPECT_EQ(OnDisk(*id).hold_reason(), "filter: quarantine");
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  EXPECT_EQ(store->Counters().messages[sluice::v1::HOLD], 1u);
}

TEST_F(QueueStoreTest, AdmissionRefusesWhenOverQueueMaxBytes) {
  sluice::v1::Limits limits;
  limits.set_queue_max_bytes(1000);
  limits.set_queue_min_free_bytes(1);
  auto store = Open(limits);
  EXPECT_THAT(store->CheckAdmission(900), IsOk());
  EXPECT_THAT(store->CheckAdmission(1001), StatusIs(absl::StatusCode::kResourceExhausted));
  ASSERT_THAT(Commit(io_, *store, std::string(800, 'z'), Envelope("a@x.example", {"b@y.example"})), IsOk());
  EXPECT_THAT(store->CheckAdmission(100), IsOk());
  EXPECT_THAT(store->CheckAdmission(300), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST_F(QueueStoreTest, AdmissionCountsMessagesStillBeingWritten) {
  sluice::v1::Limits limits;
  limits.set_queue_max_bytes(100000);
  limits.set_queue_min_free_bytes(1);
  auto store = Open(limits);
  auto writer = store->Begin();
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*writer)->Append(std::string(90000, 'w')), IsOk());
  EXPECT_THAT(store->CheckAdmission(20000), StatusIs(absl::StatusCode::kResourceExhausted));
  writer->reset();  // abandoned: its bytes no longer count
  EXPECT_THAT(store->CheckAdmission(20000), IsOk());
}

TEST_F(QueueStoreTest, AdmissionRefusesWhenDiskFreeBelowMinimum) {
  sluice::v1::Limits limits;
  limits.set_queue_min_free_bytes(uint64_t{1} << 62);
  auto store = Open(limits);
  EXPECT_THAT(store->CheckAdmission(0), StatusIs(absl::StatusCode::kResourceExhausted, "disk"));
}

TEST_F(QueueStoreTest, AdmissionReadsTheDiskFreeFigureOncePerIntervalNotPerMessage) {
  auto store = Open();
  uint64_t reads = store->disk_space().reads();
  for (int i = 0; i < 100; ++i) ASSERT_THAT(store->CheckAdmission(1000), IsOk());
  EXPECT_LE(store->disk_space().reads(), reads + 1);
}

TEST_F(QueueStoreTest, AdmissionMinimumFreeDefaultsToOneAndAHalfMessageSizeLimits) {
  EXPECT_EQ(ResolveQueueLimits(sluice::v1::Limits()).queue_min_free_bytes, 15360000u);
  sluice::v1::Limits limits;
  limits.set_message_size_limit_bytes(1000);
  EXPECT_EQ(ResolveQueueLimits(limits).queue_min_free_bytes, 1500u);
}

TEST_F(QueueStoreTest, CountersFollowStatesAndBytes) {
  auto store = Open();
  auto a = Commit(io_, *store, "aaaa", Envelope("a@x.example", {"b@y.example"}));
  auto b = Commit(io_, *store, "bbbbbbbb", Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  clock_.Advance(absl::Seconds(90));
  ASSERT_THAT(store->Hold(*b, "test"), IsOk());
  QueueCounters c = store->Counters();
  EXPECT_EQ(c.messages[sluice::v1::INCOMING], 1u);
  EXPECT_EQ(c.bytes[sluice::v1::INCOMING], 4u);
  EXPECT_EQ(c.messages[sluice::v1::HOLD], 1u);
  EXPECT_EQ(c.bytes[sluice::v1::HOLD], 8u);
  EXPECT_EQ(c.total_bytes, 12u);
  EXPECT_EQ(c.oldest_age, absl::Seconds(90));
  EXPECT_GT(c.disk_free_bytes, 0u);
}

TEST_F(QueueStoreTest, ClaimMovesToActiveAndFinishRemovesWhenEveryRecipientIsDone) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example", "c@y.example"}));
  ASSERT_THAT(id, IsOk());
  auto taken = store->TakeDue(clock_.Now(), 10);
  ASSERT_EQ(taken, std::vector<std::string>{*id});
  EXPECT_TRUE(store->TakeDue(clock_.Now(), 10).empty());  // busy: not handed out twice
  auto record = store->Claim(*id);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(store->Get(*id)->record().state(), sluice::v1::ACTIVE);
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::INCOMING);  // a claim writes nothing
  record->mutable_recipients(0)->set_status(sluice::v1::RECIPIENT_STATUS_DELIVERED);
  record->mutable_recipients(1)->set_status(sluice::v1::RECIPIENT_STATUS_BOUNCED);
  auto state = store->Finish(*id, *record);
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ(*state, sluice::v1::QUEUE_STATE_UNSPECIFIED);
  EXPECT_THAT(store->Get(*id), StatusIs(absl::StatusCode::kNotFound));
  store.reset();  // the remove frame rides with the next batch; the store's end writes it
  EXPECT_THAT(RecordInLog(dir_ / "queue", *id), StatusIs(absl::StatusCode::kNotFound));
  store = Open();
  EXPECT_THAT(store->Get(*id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueStoreTest, DeferredEntryIsDueAtItsTimeAndKeepsRecipientStatuses) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  Defer(*store, *id, clock_.Now() + absl::Seconds(300));
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::DEFERRED);
  EXPECT_EQ(OnDisk(*id).recipients(0).status(), sluice::v1::RECIPIENT_STATUS_DEFERRED);
  EXPECT_FALSE(store->HasDue(clock_.Now() + absl::Seconds(299)));
  EXPECT_TRUE(store->HasDue(clock_.Now() + absl::Seconds(300)));
  EXPECT_EQ(store->NextDue(), clock_.Now() + absl::Seconds(300));
}

TEST_F(QueueStoreTest, FlushMakesDeferredEntriesDueNow) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  Defer(*store, *id, clock_.Now() + absl::Seconds(4000));
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  int wakeups = 0;
  store->SetWakeup([&] { ++wakeups; });
  ASSERT_THAT(store->Flush(*id), IsOk());
  EXPECT_TRUE(store->HasDue(clock_.Now()));
  EXPECT_EQ(wakeups, 1);
  EXPECT_THAT(store->Flush("NOSUCHID"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueStoreTest, HoldAndReleaseMoveTheRecordAndGateDelivery) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(store->Hold(*id, "suspicious"), IsOk());
  EXPECT_EQ(OnDisk(*id).hold_reason(), "suspicious");
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::HOLD);
  EXPECT_TRUE(store->TakeDue(clock_.Now() + absl::Hours(1000), 10).empty());
  EXPECT_THAT(store->Flush(*id), StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_THAT(store->Release(*id), IsOk());
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::ACTIVE);
  EXPECT_EQ(OnDisk(*id).hold_reason(), "");
  EXPECT_EQ(store->TakeDue(clock_.Now(), 10), std::vector<std::string>{*id});
  EXPECT_THAT(store->Release(*id), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(QueueStoreTest, HeldEntrySurvivesReopenStillHeld) {
  std::string id;
  {
    auto store = Open();
    auto c = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
    ASSERT_THAT(c, IsOk());
    id = *c;
    ASSERT_THAT(store->Hold(id, "x"), IsOk());
  }
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::HOLD], 1u);
  EXPECT_FALSE(store->HasDue(clock_.Now() + absl::Hours(1000)));
}

TEST_F(QueueStoreTest, DeleteRemovesRecordAndData) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  ASSERT_THAT(store->Delete(*id), IsOk());
  EXPECT_THAT(RecordInLog(dir_ / "queue", *id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store->Delete(*id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(store->HasDue(clock_.Now()));
}

TEST_F(QueueStoreTest, HoldOfAnEntryBeingDeliveredTakesEffectWhenItFinishes) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  auto record = store->Claim(*id);
  ASSERT_THAT(record, IsOk());
  ASSERT_THAT(store->Hold(*id, "operator"), IsOk());
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::INCOMING);  // untouched while the delivery runs
  record->set_state(sluice::v1::DEFERRED);
  *record->mutable_next_attempt_at() = ToProtoTime(clock_.Now() + absl::Seconds(300));
  auto state = store->Finish(*id, *record);
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ(*state, sluice::v1::HOLD);
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::HOLD);
  EXPECT_EQ(OnDisk(*id).hold_reason(), "operator");
}

TEST_F(QueueStoreTest, DeleteOfAnEntryBeingDeliveredTakesEffectWhenItFinishes) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  auto record = store->Claim(*id);
  ASSERT_THAT(record, IsOk());
  ASSERT_THAT(store->Delete(*id), IsOk());
  EXPECT_EQ(ContentOf(*store, *id), kMessage);  // still there while the delivery runs
  record->set_state(sluice::v1::DEFERRED);
  auto state = store->Finish(*id, *record);
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ(*state, sluice::v1::QUEUE_STATE_UNSPECIFIED);
  EXPECT_THAT(RecordInLog(dir_ / "queue", *id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(QueueStoreTest, HoldBetweenTakeAndClaimStopsTheDelivery) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  ASSERT_THAT(store->Hold(*id, "late"), IsOk());
  EXPECT_THAT(store->Claim(*id), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(OnDisk(*id).state(), sluice::v1::HOLD);
}

TEST_F(QueueStoreTest, FailedFinishKeepsTheEntryAndRetriesItLater) {
  SmallDisk disk(dir_ / "queue", 1 << 20);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  auto record = store->Claim(*id);
  ASSERT_THAT(record, IsOk());
  disk.Fill();  // the rewrite of the record cannot happen
  record->set_state(sluice::v1::DEFERRED);
  record->mutable_recipients(0)->set_status(sluice::v1::RECIPIENT_STATUS_DEFERRED);
  record->set_last_error(std::string(16384, 'e'));  // needs new pages of the full disk
  EXPECT_FALSE(store->Finish(*id, *record, absl::Seconds(60)).ok());
  // The old record is still there, still active, due again after the retry delay.
  EXPECT_EQ(OnDisk(*id).recipients(0).status(), sluice::v1::RECIPIENT_STATUS_PENDING);
  disk.Free();
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  EXPECT_TRUE(store->HasDue(clock_.Now() + absl::Seconds(60)));
}

TEST_F(QueueStoreTest, GetShowsTheHeaderBlockOnly) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  auto entry = store->Get(*id);
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->headers(), std::string(kMessage).substr(0, std::string(kMessage).find("\r\n\r\n") + 2));
  EXPECT_EQ(entry->headers().find("Body line"), std::string::npos);
}

TEST_F(QueueStoreTest, ListFiltersByStateSenderRecipientAgeAndLimit) {
  auto store = Open();
  auto a = Commit(io_, *store, "1", Envelope("alice@one.example", {"x@dest.example"}));
  clock_.Advance(absl::Seconds(100));
  auto b = Commit(io_, *store, "22", Envelope("bob@two.example", {"y@dest.example", "z@other.example"}));
  auto c = Commit(io_, *store, "333", Envelope("carol@two.example", {"x@dest.example"}));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(c, IsOk());
  ASSERT_THAT(store->Hold(*c, "h"), IsOk());

  QueueListFilter all;
  auto r = store->List(all);
  EXPECT_EQ(r.total_messages, 3u);
  EXPECT_EQ(r.total_bytes, 6u);
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].queue_id(), *a);  // oldest first

  QueueListFilter held;
  held.state = sluice::v1::HOLD;
  r = store->List(held);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].queue_id(), *c);
  EXPECT_EQ(r.records[0].state(), sluice::v1::HOLD);

  QueueListFilter by_sender;
  by_sender.sender = "two.example";
  EXPECT_EQ(store->List(by_sender).total_messages, 2u);

  QueueListFilter by_rcpt;
  by_rcpt.recipient = "other";
  r = store->List(by_rcpt);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].queue_id(), *b);

  QueueListFilter old;
  old.min_age = absl::Seconds(50);
  r = store->List(old);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].queue_id(), *a);

  QueueListFilter limited;
  limited.limit = 1;
  r = store->List(limited);
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.total_messages, 3u);
  EXPECT_EQ(r.total_bytes, 6u);
}

}  // namespace
}  // namespace sluice::reinject
