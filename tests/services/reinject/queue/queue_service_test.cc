// tests/services/reinject/queue/queue_service_test.cc -- sluice.v1.Queue over a real gRPC
// server on 127.0.0.1:0: List, Get, Hold, Release, Delete, Flush as sluicectl calls them.
#include "services/reinject/queue/queue_service.h"

#include <grpcpp/grpcpp.h>

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"
#include "services/reinject/queue/proto_time.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::Commit;
using ::sluice::reinject::testing::Envelope;
using ::sluice::reinject::testing::RecordInLog;
using ::sluice::reinject::testing::kMessage;
using ::sluice::reinject::testing::TempDir;
using ::sluice::testing::IsOk;

class QueueServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    QueueStoreOptions o;
    o.queue_dir = dir_ / "queue";
    o.clock = &clock_;
    auto store = QueueStore::Open(std::move(o));
    ASSERT_THAT(store, IsOk());
    store_ = std::move(*store);
    service_ = std::make_unique<QueueService>(*store_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    stub_ = sluice::v1::Queue::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  std::string Add(const std::string& sender, const std::string& rcpt) {
    auto id = Commit(io_, *store_, kMessage, Envelope(sender, {rcpt}));
    EXPECT_THAT(id, IsOk());
    return id.ok() ? *id : "";
  }
  sluice::v1::QueueActionResponse Act(
      grpc::Status (sluice::v1::Queue::Stub::*call)(grpc::ClientContext*, const sluice::v1::QueueIdsRequest&,
                                                    sluice::v1::QueueActionResponse*),
      const sluice::v1::QueueIdsRequest& request) {
    grpc::ClientContext ctx;
    sluice::v1::QueueActionResponse response;
    grpc::Status s = ((*stub_).*call)(&ctx, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }
  std::string Q(const std::string& rel) { return dir_ / ("queue/" + rel); }

  TempDir dir_;
  FakeClock clock_;
  asio::io_context io_;
  std::unique_ptr<QueueStore> store_;
  std::unique_ptr<QueueService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<sluice::v1::Queue::Stub> stub_;
};

TEST_F(QueueServiceTest, ListFiltersAndCounts) {
  std::string a = Add("alice@one.example", "x@dest.example");
  std::string b = Add("bob@two.example", "y@dest.example");
  grpc::ClientContext ctx;
  sluice::v1::ListQueueRequest request;
  request.set_sender("two.example");
  sluice::v1::ListQueueResponse response;
  ASSERT_TRUE(stub_->List(&ctx, request, &response).ok());
  ASSERT_EQ(response.records_size(), 1);
  EXPECT_EQ(response.records(0).queue_id(), b);
  EXPECT_EQ(response.total_messages(), 1u);
  EXPECT_EQ(response.total_bytes(), std::string(kMessage).size());

  grpc::ClientContext ctx2;
  sluice::v1::ListQueueRequest all;
  ASSERT_TRUE(stub_->List(&ctx2, all, &response).ok());
  EXPECT_EQ(response.total_messages(), 2u);
  (void)a;
}

TEST_F(QueueServiceTest, GetReturnsRecordAndHeaders) {
  std::string id = Add("alice@one.example", "x@dest.example");
  grpc::ClientContext ctx;
  sluice::v1::GetQueueEntryRequest request;
  request.set_queue_id(id);
  sluice::v1::QueueEntry entry;
  grpc::Status s = stub_->Get(&ctx, request, &entry);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(entry.record().queue_id(), id);
  EXPECT_EQ(entry.record().sender(), "alice@one.example");
  EXPECT_NE(entry.headers().find("Subject: hello"), std::string::npos);
  EXPECT_EQ(entry.headers().find("Body line"), std::string::npos);
}

TEST_F(QueueServiceTest, GetOfUnknownOrMalformedIdFails) {
  grpc::ClientContext ctx;
  sluice::v1::GetQueueEntryRequest request;
  request.set_queue_id("0NOSUCH");
  sluice::v1::QueueEntry entry;
  EXPECT_EQ(stub_->Get(&ctx, request, &entry).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext ctx2;
  request.set_queue_id("../../etc/passwd");
  EXPECT_EQ(stub_->Get(&ctx2, request, &entry).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(QueueServiceTest, HoldReleaseDeleteFlushActOnIdsAndReportUnknownOnes) {
  std::string a = Add("alice@one.example", "x@dest.example");
  std::string b = Add("bob@two.example", "y@dest.example");

  sluice::v1::QueueIdsRequest hold;
  hold.add_queue_ids(a);
  hold.add_queue_ids("0NOSUCH");
  hold.set_reason("looks odd");
  auto r = Act(&sluice::v1::Queue::Stub::Hold, hold);
  ASSERT_EQ(r.affected_size(), 1);
  EXPECT_EQ(r.affected(0), a);
  ASSERT_EQ(r.not_found_size(), 1);
  EXPECT_EQ(r.not_found(0), "0NOSUCH");
  EXPECT_EQ(RecordInLog(dir_ / "queue", a)->state(), sluice::v1::HOLD);
  EXPECT_EQ(store_->Get(a)->record().hold_reason(), "looks odd");

  sluice::v1::QueueIdsRequest release;
  release.add_queue_ids(a);
  release.add_queue_ids(b);  // not held: in neither list
  r = Act(&sluice::v1::Queue::Stub::Release, release);
  ASSERT_EQ(r.affected_size(), 1);
  EXPECT_EQ(r.affected(0), a);
  EXPECT_EQ(r.not_found_size(), 0);
  EXPECT_EQ(RecordInLog(dir_ / "queue", a)->state(), sluice::v1::ACTIVE);

  sluice::v1::QueueIdsRequest flush_all;
  flush_all.set_all(true);
  r = Act(&sluice::v1::Queue::Stub::Flush, flush_all);
  EXPECT_EQ(r.affected_size(), 0);  // nothing deferred

  sluice::v1::QueueIdsRequest del;
  del.add_queue_ids(b);
  r = Act(&sluice::v1::Queue::Stub::Delete, del);
  ASSERT_EQ(r.affected_size(), 1);
  EXPECT_FALSE(RecordInLog(dir_ / "queue", b).ok());
}

TEST_F(QueueServiceTest, AllActsOnEveryEntryTheCallAppliesTo) {
  Add("a@x.example", "1@y.example");
  Add("a@x.example", "2@y.example");
  Add("a@x.example", "3@y.example");
  sluice::v1::QueueIdsRequest all;
  all.set_all(true);
  auto r = Act(&sluice::v1::Queue::Stub::Hold, all);
  EXPECT_EQ(r.affected_size(), 3);
  EXPECT_EQ(store_->Counters().messages[sluice::v1::HOLD], 3u);
  r = Act(&sluice::v1::Queue::Stub::Release, all);
  EXPECT_EQ(r.affected_size(), 3);
  EXPECT_EQ(store_->Counters().messages[sluice::v1::ACTIVE], 3u);
  r = Act(&sluice::v1::Queue::Stub::Delete, all);
  EXPECT_EQ(r.affected_size(), 3);
  EXPECT_EQ(store_->List(QueueListFilter()).total_messages, 0u);
}

TEST_F(QueueServiceTest, FlushMakesADeferredEntryDue) {
  std::string id = Add("a@x.example", "1@y.example");
  ASSERT_EQ(store_->TakeDue(clock_.Now(), 10).size(), 1u);
  auto record = store_->Claim(id);
  ASSERT_THAT(record, IsOk());
  record->set_state(sluice::v1::DEFERRED);
  *record->mutable_next_attempt_at() = ToProtoTime(clock_.Now() + absl::Seconds(4000));
  ASSERT_THAT(store_->Finish(id, *record), IsOk());
  ASSERT_FALSE(store_->HasDue(clock_.Now()));
  sluice::v1::QueueIdsRequest flush;
  flush.add_queue_ids(id);
  auto r = Act(&sluice::v1::Queue::Stub::Flush, flush);
  ASSERT_EQ(r.affected_size(), 1);
  EXPECT_TRUE(store_->HasDue(clock_.Now()));
}

}  // namespace
}  // namespace sluice::reinject
