// tests/services/reinject/queue/queue_recovery_test.cc -- start-up recovery of the segment
// log after crashes and with damaged bytes: what is sound comes back in the state it was
// written in, what is not goes to corrupt/ (counted, logged, listed), content without a
// record is deleted, removed entries stay removed; and compaction lets old segments go.
#include "services/reinject/queue/queue_recovery.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Commit;
using ::sluice::reinject::testing::ContentOf;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::Exists;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::ListDir;
using ::sluice::reinject::testing::ReadFile;
using ::sluice::reinject::testing::TempDir;
using ::sluice::reinject::testing::WriteFile;
using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

class QueueRecoveryTest : public ::testing::Test {
 protected:
  std::unique_ptr<QueueStore> Open() {
    QueueStoreOptions o;
    o.queue_dir = dir_ / "queue";
    o.clock = &clock_;
    o.segment_bytes = segment_bytes_;
    o.compact_at_segments = 2;
    o.maintenance_interval = absl::ZeroDuration();  // Compact() only when the test says
    auto store = QueueStore::Open(std::move(o));
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::string Q(const std::string& rel) { return dir_ / ("queue/" + rel); }
  std::string CommitTo(QueueStore& store, const std::string& content = kMessage) {
    auto id = Commit(io_, store, content, Envelope("a@x.example", {"b@y.example"}));
    EXPECT_THAT(id, IsOk());
    return id.ok() ? *id : "";
  }
  // Reopens with stderr captured; returns the store, the log in `log`.
  std::unique_ptr<QueueStore> Reopen(std::string* log) {
    ::testing::internal::CaptureStderr();
    auto store = Open();
    *log = ::testing::internal::GetCapturedStderr();
    return store;
  }
  std::string LastSegment() {
    auto names = ListDir(Q("segments"));
    return names.empty() ? "" : Q("segments/" + names.back());
  }
  // Finishes `id` as delivered.
  void Deliver(QueueStore& store, const std::string& id) {
    for (const auto& taken : store.TakeDue(clock_.Now(), 1000)) {
      if (taken != id) store.Unclaim(taken);
    }
    auto record = store.Claim(id);
    ASSERT_THAT(record, IsOk());
    record->mutable_recipients(0)->set_status(sluice::v1::RECIPIENT_STATUS_DELIVERED);
    ASSERT_THAT(store.Finish(id, *record), IsOk());
  }

  TempDir dir_;
  FakeClock clock_;
  asio::io_context io_;
  uint64_t segment_bytes_ = 64 << 20;
};

TEST_F(QueueRecoveryTest, LargeContentWithoutARecordIsDeleted) {
  { auto store = Open(); }
  WriteFile(Q("large/0ABCDEF0123456ZZ"), "half a message");
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().orphan_data_deleted, 1u);
  EXPECT_TRUE(ListDir(Q("large")).empty());
  EXPECT_NE(log.find("queue_orphan_deleted"), std::string::npos) << log;
  EXPECT_NE(log.find("0ABCDEF0123456ZZ"), std::string::npos) << log;
  EXPECT_EQ(store->List(QueueListFilter()).total_messages, 0u);
}

TEST_F(QueueRecoveryTest, TornTailGoesToCorruptOnceAndEveryCommittedEntryComesBack) {
  std::vector<std::string> ids;
  std::string frame;
  {
    auto store = Open();
    ids.push_back(CommitTo(*store));
    ids.push_back(CommitTo(*store));
  }
  {
    // A third commit that was being written when the machine stopped: half a frame.
    sluice::v1::QueueLogRecord log;
    log.mutable_record()->set_queue_id("0TORNTORNTORN000");
    log.mutable_record()->add_recipients()->set_address("c@y.example");
    frame = EncodeRecordFrame(log, kMessage);
    std::ofstream out(LastSegment(), std::ios::binary | std::ios::app);
    out << frame.substr(0, frame.size() / 2);
  }
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 2u);
  EXPECT_EQ(store->recovery().damaged_ranges, 1u);
  EXPECT_EQ(store->recovery().moved_to_corrupt, 1u);
  EXPECT_NE(log.find("event=queue_corrupt"), std::string::npos) << log;
  auto corrupt = ListDir(Q("corrupt"));
  ASSERT_EQ(corrupt.size(), 1u);
  EXPECT_EQ(ReadFile(Q("corrupt/" + corrupt[0])), frame.substr(0, frame.size() / 2));
  for (const auto& id : ids) EXPECT_EQ(ContentOf(*store, id), kMessage);
  EXPECT_THAT(store->Get("0TORNTORNTORN000"), StatusIs(absl::StatusCode::kNotFound));
  // Listed as corrupt, with the reason.
  QueueListFilter f;
  f.state = sluice::v1::CORRUPT;
  auto listed = store->List(f);
  ASSERT_EQ(listed.records.size(), 1u);
  EXPECT_FALSE(listed.records[0].last_error().empty());
  // Saved once, not at every start.
  store.reset();
  store = Open();
  EXPECT_EQ(store->recovery().moved_to_corrupt, 0u);
  EXPECT_EQ(ListDir(Q("corrupt")).size(), 1u);
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 2u);
}

TEST_F(QueueRecoveryTest, DamagedFrameInTheMiddleIsKeptInCorruptAndTheFramesAfterItComeBack) {
  std::string a, b, c;
  {
    auto store = Open();
    a = CommitTo(*store, "message a\r\n");
    b = CommitTo(*store, "message b\r\n");
    c = CommitTo(*store, "message c\r\n");
  }
  std::string seg = ReadFile(LastSegment());
  size_t at = seg.find("message b");
  ASSERT_NE(at, std::string::npos);
  seg[at] = 'M';  // one flipped byte in b's frame
  WriteFile(LastSegment(), seg);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(ContentOf(*store, a), "message a\r\n");
  EXPECT_EQ(ContentOf(*store, c), "message c\r\n");
  EXPECT_THAT(store->Get(b), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(store->recovery().damaged_ranges, 1u);
  EXPECT_EQ(store->Counters().messages[sluice::v1::CORRUPT], 1u);
  EXPECT_NE(log.find("checksum"), std::string::npos) << log;
  auto corrupt = ListDir(Q("corrupt"));
  ASSERT_EQ(corrupt.size(), 1u);
  EXPECT_NE(ReadFile(Q("corrupt/" + corrupt[0])).find("Message b"), std::string::npos);
  // An operator deletes it.
  ASSERT_THAT(store->Delete(corrupt[0]), IsOk());
  EXPECT_TRUE(ListDir(Q("corrupt")).empty());
}

TEST_F(QueueRecoveryTest, RecordWhoseContentIsMissingGoesToCorrupt) {
  std::string id;
  {
    auto store = Open();
    id = CommitTo(*store, std::string(200000, 'L'));  // over the buffer: large/<ID>
  }
  ASSERT_TRUE(Exists(Q("large/" + id)));
  ASSERT_EQ(::unlink(Q("large/" + id).c_str()), 0);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().moved_to_corrupt, 1u);
  EXPECT_TRUE(Exists(Q("corrupt/" + id)));
  EXPECT_NE(log.find("event=queue_corrupt queue_id=" + id), std::string::npos) << log;
  auto entry = store->Get(id);
  ASSERT_THAT(entry, IsOk());
  EXPECT_EQ(entry->record().state(), sluice::v1::CORRUPT);
  EXPECT_EQ(entry->record().sender(), "a@x.example");
  EXPECT_NE(entry->record().last_error().find("large/"), std::string::npos) << entry->record().last_error();
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  // Not found again at the next start: it left the log.
  store.reset();
  store = Open();
  EXPECT_EQ(store->recovery().moved_to_corrupt, 0u);
  EXPECT_EQ(store->recovery().recovered[sluice::v1::CORRUPT], 1u);
}

TEST_F(QueueRecoveryTest, EntryClaimedWhenTheProcessDiedIsDueAgain) {
  std::string id;
  {
    auto store = Open();
    id = CommitTo(*store);
    ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
    ASSERT_THAT(store->Claim(id), IsOk());
  }
  auto store = Open();
  EXPECT_EQ(store->TakeDue(clock_.Now(), 10), std::vector<std::string>{id});
  EXPECT_THAT(store->Claim(id), IsOk());
}

TEST_F(QueueRecoveryTest, DeferredEntryKeepsItsNextAttemptTimeAndRecipientStatuses) {
  std::string id;
  {
    auto store = Open();
    id = CommitTo(*store);
    ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
    auto record = store->Claim(id);
    ASSERT_THAT(record, IsOk());
    record->set_state(sluice::v1::DEFERRED);
    record->mutable_recipients(0)->set_status(sluice::v1::RECIPIENT_STATUS_DEFERRED);
    *record->mutable_next_attempt_at() = ToProtoTime(clock_.Now() + absl::Seconds(600));
    ASSERT_THAT(store->Finish(id, *record), IsOk());
  }
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::DEFERRED], 1u);
  EXPECT_FALSE(store->HasDue(clock_.Now() + absl::Seconds(599)));
  EXPECT_TRUE(store->HasDue(clock_.Now() + absl::Seconds(600)));
  EXPECT_EQ(store->Get(id)->record().recipients(0).status(), sluice::v1::RECIPIENT_STATUS_DEFERRED);
  EXPECT_EQ(ContentOf(*store, id), kMessage);
}

TEST_F(QueueRecoveryTest, DeliveredAndDeletedEntriesStayGone) {
  std::string a, b, c;
  {
    auto store = Open();
    a = CommitTo(*store);
    b = CommitTo(*store);
    c = CommitTo(*store);
    Deliver(*store, a);
    ASSERT_THAT(store->Delete(b), IsOk());
  }
  auto store = Open();
  EXPECT_EQ(store->Ids(sluice::v1::QUEUE_STATE_UNSPECIFIED), std::vector<std::string>{c});
  EXPECT_EQ(store->recovery().moved_to_corrupt, 0u);
}

TEST_F(QueueRecoveryTest, CorruptRecordFoundAtClaimTimeMovesToCorrupt) {
  auto store = Open();
  std::string id = CommitTo(*store);
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  auto record = store->Claim(id);
  ASSERT_THAT(record, IsOk());
  record->set_state(sluice::v1::DEFERRED);
  record->set_last_error("MARKER-OF-THE-SECOND-FRAME");
  ASSERT_THAT(store->Finish(id, *record), IsOk());
  // Damage the record frame the store will read next (the deferred one).
  std::string seg = ReadFile(LastSegment());
  size_t at = seg.rfind("MARKER-OF-THE-SECOND-FRAME");
  ASSERT_NE(at, std::string::npos);
  seg[at] = 'X';
  WriteFile(LastSegment(), seg);
  clock_.Advance(absl::Hours(2));
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  EXPECT_THAT(store->Claim(id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(Exists(Q("corrupt/" + id)));
  EXPECT_EQ(store->Counters().messages[sluice::v1::CORRUPT], 1u);
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  ASSERT_THAT(store->Delete(id), IsOk());
  EXPECT_TRUE(ListDir(Q("corrupt")).empty());
}

TEST_F(QueueRecoveryTest, EveryGoodEntryOfAManyEntryQueueIsRecovered) {
  std::vector<std::string> ids;
  {
    auto store = Open();
    for (int i = 0; i < 50; ++i) ids.push_back(CommitTo(*store, "message " + std::to_string(i)));
  }
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ContentOf(*store, ids[static_cast<size_t>(i)]), "message " + std::to_string(i));
}

TEST_F(QueueRecoveryTest, SegmentsOfDeliveredMailAreRemovedAndLiveEntriesMovedOutOfOldOnes) {
  segment_bytes_ = 4096;  // a few messages per segment
  std::vector<std::string> ids;
  std::string held;
  {
    auto store = Open();
    held = CommitTo(*store, std::string(1500, 'h'));
    ASSERT_THAT(store->Hold(held, "keep me"), IsOk());
    for (int i = 0; i < 30; ++i) ids.push_back(CommitTo(*store, std::string(1500, 'a' + i % 26)));
    EXPECT_GE(store->log().count(), 8u);
    for (const auto& id : ids) Deliver(*store, id);
    // The held entry keeps the oldest segment; compaction moves it, and the dead go.
    EXPECT_GE(store->Compact(), 1u);
    store->Compact();
    EXPECT_LE(store->log().count(), 3u) << "segments left";
    EXPECT_EQ(ContentOf(*store, held), std::string(1500, 'h'));
  }
  auto store = Open();
  EXPECT_EQ(store->Ids(sluice::v1::QUEUE_STATE_UNSPECIFIED), std::vector<std::string>{held});
  EXPECT_EQ(store->Get(held)->record().hold_reason(), "keep me");
  EXPECT_EQ(ContentOf(*store, held), std::string(1500, 'h'));
  EXPECT_EQ(store->recovery().moved_to_corrupt, 0u);
}

}  // namespace
}  // namespace sluice::reinject
