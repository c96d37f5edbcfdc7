// tests/services/reinject/queue/queue_recovery_test.cc -- start-up recovery after crashes at
// every point of a commit and with damaged entries: deleted, or moved to corrupt/, counted
// and logged, never dropped silently.
#include "services/reinject/queue/queue_recovery.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_record_file.h"
#include "services/reinject/queue/queue_store.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Commit;
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
    auto store = QueueStore::Open(std::move(o));
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::string Q(const std::string& rel) { return dir_ / ("queue/" + rel); }
  // A committed entry, the store closed again.
  std::string CommitOne(const std::string& content = kMessage) {
    auto store = Open();
    auto id = Commit(io_, *store, content, Envelope("a@x.example", {"b@y.example"}));
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

  TempDir dir_;
  FakeClock clock_;
  asio::io_context io_;
};

TEST_F(QueueRecoveryTest, DataWrittenButNoRecordIsDeleted) {
  { auto store = Open(); }
  WriteFile(Q("data/0ABCDEF0123456ZZ"), "half a message");
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().orphan_data_deleted, 1u);
  EXPECT_TRUE(ListDir(Q("data")).empty());
  EXPECT_NE(log.find("queue_orphan_deleted"), std::string::npos) << log;
  EXPECT_NE(log.find("0ABCDEF0123456ZZ"), std::string::npos) << log;
}

TEST_F(QueueRecoveryTest, RecordLeftInTmpIsDeletedWithItsData) {
  std::string id = CommitOne();
  // A crash between writing the record and linking it: the record is in tmp/ only.
  ASSERT_EQ(::rename(Q("incoming/" + id).c_str(), Q("tmp/" + id).c_str()), 0);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().tmp_deleted, 1u);
  EXPECT_EQ(store->recovery().orphan_data_deleted, 1u);
  EXPECT_TRUE(ListDir(Q("tmp")).empty());
  EXPECT_TRUE(ListDir(Q("data")).empty());
  EXPECT_EQ(store->Counters().messages[sluice::v1::INCOMING], 0u);
}

TEST_F(QueueRecoveryTest, TruncatedRecordMovesToCorruptAndKeepsItsData) {
  std::string id = CommitOne();
  ASSERT_EQ(::truncate(Q("incoming/" + id).c_str(), 20), 0);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().moved_to_corrupt, 1u);
  EXPECT_EQ(store->recovery().recovered[sluice::v1::CORRUPT], 1u);
  EXPECT_TRUE(Exists(Q("corrupt/" + id)));
  EXPECT_FALSE(Exists(Q("incoming/" + id)));
  EXPECT_EQ(ReadFile(Q("data/" + id)), kMessage);  // kept for inspection
  EXPECT_NE(log.find("queue_corrupt"), std::string::npos) << log;
  EXPECT_NE(log.find(id), std::string::npos) << log;
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  // Listed as corrupt, with the reason.
  QueueListFilter f;
  f.state = sluice::v1::CORRUPT;
  auto listed = store->List(f);
  ASSERT_EQ(listed.records.size(), 1u);
  EXPECT_EQ(listed.records[0].queue_id(), id);
  EXPECT_EQ(listed.records[0].state(), sluice::v1::CORRUPT);
  EXPECT_FALSE(listed.records[0].last_error().empty());
  EXPECT_EQ(store->Counters().messages[sluice::v1::CORRUPT], 1u);
}

TEST_F(QueueRecoveryTest, MissingDataMovesRecordToCorrupt) {
  std::string id = CommitOne();
  ASSERT_EQ(::unlink(Q("data/" + id).c_str()), 0);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_TRUE(Exists(Q("corrupt/" + id)));
  EXPECT_EQ(store->recovery().moved_to_corrupt, 1u);
  EXPECT_NE(log.find("data file"), std::string::npos) << log;
}

TEST_F(QueueRecoveryTest, ShortDataMovesRecordToCorrupt) {
  std::string id = CommitOne();
  ASSERT_EQ(::truncate(Q("data/" + id).c_str(), 10), 0);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_TRUE(Exists(Q("corrupt/" + id)));
  EXPECT_EQ(store->recovery().moved_to_corrupt, 1u);
}

TEST_F(QueueRecoveryTest, RecordNamingAnotherIdMovesToCorrupt) {
  std::string id = CommitOne();
  ASSERT_EQ(::rename(Q("incoming/" + id).c_str(), Q("incoming/0OTHER").c_str()), 0);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_TRUE(Exists(Q("corrupt/0OTHER")));
  EXPECT_NE(log.find("names queue id"), std::string::npos) << log;
  // Its data file belongs to no record now: deleted as an orphan.
  EXPECT_EQ(store->recovery().orphan_data_deleted, 1u);
}

TEST_F(QueueRecoveryTest, FileThatIsNotAQueueIdMovesToCorrupt) {
  { auto store = Open(); }
  WriteFile(Q("deferred/notes.txt"), "hello");
  std::string log;
  auto store = Reopen(&log);
  EXPECT_TRUE(Exists(Q("corrupt/notes.txt")));
  EXPECT_TRUE(ListDir(Q("deferred")).empty());
}

TEST_F(QueueRecoveryTest, SameIdInTwoStateDirectoriesKeepsOneAndMovesTheOther) {
  std::string id = CommitOne();
  std::string record = ReadFile(Q("incoming/" + id));
  WriteFile(Q("deferred/" + id), record);
  std::string log;
  auto store = Reopen(&log);
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 1u);
  EXPECT_TRUE(Exists(Q("corrupt/" + id + ".1")));
  EXPECT_TRUE(Exists(Q("data/" + id)));
  // Deleting the duplicate keeps the live entry's data.
  ASSERT_THAT(store->Delete(id + ".1"), IsOk());
  EXPECT_TRUE(Exists(Q("data/" + id)));
  EXPECT_THAT(store->Get(id), IsOk());
}

TEST_F(QueueRecoveryTest, EntriesInActiveAreActiveAgainAndDue) {
  std::string id = CommitOne();
  ASSERT_EQ(::rename(Q("incoming/" + id).c_str(), Q("active/" + id).c_str()), 0);
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::ACTIVE], 1u);
  EXPECT_EQ(store->TakeDue(clock_.Now(), 10), std::vector<std::string>{id});
  EXPECT_THAT(store->Claim(id), IsOk());
}

TEST_F(QueueRecoveryTest, DeferredEntryKeepsItsNextAttemptTime) {
  std::string id;
  {
    auto store = Open();
    auto c = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
    ASSERT_THAT(c, IsOk());
    id = *c;
    ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
    auto record = store->Claim(id);
    ASSERT_THAT(record, IsOk());
    record->set_state(sluice::v1::DEFERRED);
    *record->mutable_next_attempt_at() = ToProtoTime(clock_.Now() + absl::Seconds(600));
    ASSERT_THAT(store->Finish(id, *record), IsOk());
  }
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::DEFERRED], 1u);
  EXPECT_FALSE(store->HasDue(clock_.Now() + absl::Seconds(599)));
  EXPECT_TRUE(store->HasDue(clock_.Now() + absl::Seconds(600)));
}

TEST_F(QueueRecoveryTest, CorruptEntryFoundAtClaimTimeMovesToCorrupt) {
  auto store = Open();
  auto id = Commit(io_, *store, kMessage, Envelope("a@x.example", {"b@y.example"}));
  ASSERT_THAT(id, IsOk());
  WriteFile(Q("incoming/" + *id), "garbage");
  ASSERT_EQ(store->TakeDue(clock_.Now(), 10).size(), 1u);
  EXPECT_THAT(store->Claim(*id), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(Exists(Q("corrupt/" + *id)));
  EXPECT_EQ(store->Counters().messages[sluice::v1::CORRUPT], 1u);
  EXPECT_FALSE(store->HasDue(clock_.Now()));
  ASSERT_THAT(store->Delete(*id), IsOk());
  EXPECT_TRUE(ListDir(Q("corrupt")).empty());
  EXPECT_TRUE(ListDir(Q("data")).empty());
}

TEST_F(QueueRecoveryTest, EveryGoodEntryOfAManyEntryQueueIsRecovered) {
  std::vector<std::string> ids;
  {
    auto store = Open();
    for (int i = 0; i < 50; ++i) {
      auto id = Commit(io_, *store, "message " + std::to_string(i), Envelope("a@x.example", {"b@y.example"}));
      ASSERT_THAT(id, IsOk());
      ids.push_back(*id);
    }
  }
  auto store = Open();
  EXPECT_EQ(store->recovery().recovered[sluice::v1::INCOMING], 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ReadFile(store->DataPath(ids[static_cast<size_t>(i)])), "message " + std::to_string(i));
}

}  // namespace
}  // namespace sluice::reinject
