// tests/lib/control/admin_server_test.cc
//
// The admin gRPC server with real clients on 127.0.0.1 ephemeral ports: status, health that
// follows the serving state (NOT_SERVING while draining or unavailable), WatchStatus
// (at once, on change, on the interval, ending on cancel and on shutdown), sessions
// (list/get/kill), limits (get/update, invalid values refused), reflection, call metrics.
//
// Never: asserts on timing; sleeps a fixed time (waits poll with generous deadlines).
#include "lib/control/admin_server.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "tests/lib/control/admin_test_support.h"

namespace sluice::control {
namespace {

using ::testing::HasSubstr;
using testing::Context;
using testing::MetricsText;
using testing::TestStage;
using testing::WaitFor;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus Health(const TestStage& stage, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(stage.Channel());
  HealthCheckRequest req;
  req.set_service(service);
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(Context().get(), req, &resp);
  if (!s.ok()) return HealthCheckResponse::UNKNOWN;
  return resp.status();
}

// One WatchStatus stream from the client side; Cancel() ends it and returns how it ended.
class Watch {
 public:
  explicit Watch(sluice::v1::Admin::Stub& stub, uint32_t interval_seconds = 0) : ctx_(Context()) {
    sluice::v1::WatchStatusRequest req;
    req.set_interval_seconds(interval_seconds);
    reader_ = stub.WatchStatus(ctx_.get(), req);
  }
  ~Watch() { Cancel(); }
  bool Next(sluice::v1::StageStatus* status) { return reader_->Read(status); }
  // Reads what is left until the server ends the stream, then its status.
  grpc::Status End() {
    sluice::v1::StageStatus rest;
    while (reader_->Read(&rest)) {
    }
    if (!finished_) status_ = reader_->Finish();
    finished_ = true;
    return status_;
  }
  grpc::Status Cancel() {
    if (!finished_) ctx_->TryCancel();
    return End();
  }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<sluice::v1::StageStatus>> reader_;
  bool finished_ = false;
  grpc::Status status_;
};

TEST(AdminServer, GetStatusReportsTheStage) {
  TestStage stage("filter-bridge", "pod-7");
  stage.Start();
  ASSERT_NE(stage.server->port(), 0);
  auto session = stage.runtime.sessions().Register({});
  stage.runtime.SetStatusHook([](sluice::v1::StageStatus& s) { s.set_filter_capacity(12); });
  sluice::v1::StageStatus status;
  grpc::Status s = stage.Stub()->GetStatus(Context().get(), {}, &status);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(status.stage(), "filter-bridge");
  EXPECT_EQ(status.instance(), "pod-7");
  EXPECT_EQ(status.version(), "0.1.0-test");
  EXPECT_EQ(status.state(), sluice::v1::SERVING);
  EXPECT_EQ(status.sessions_active(), 1u);
  EXPECT_EQ(status.sessions_max(), 100u);  // limits.proto default
  EXPECT_EQ(status.filter_capacity(), 12u);
  EXPECT_TRUE(status.accepting());
}

TEST(AdminServer, HealthIsNotServingWhileDrainingAndServingAfterResume) {
  TestStage stage;
  std::atomic<int64_t> drain_seconds{-1};
  std::atomic<int> resumes{0};
  stage.runtime.OnDrain([&](absl::Duration d) { drain_seconds = absl::ToInt64Seconds(d); });
  stage.runtime.OnResume([&] { ++resumes; });
  stage.Start();
  EXPECT_EQ(Health(stage, ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(stage, "sluice.v1.Admin"), HealthCheckResponse::SERVING);

  sluice::v1::DrainRequest drain;
  drain.set_timeout_seconds(7);
  sluice::v1::StageStatus status;
  ASSERT_TRUE(stage.Stub()->Drain(Context().get(), drain, &status).ok());
  EXPECT_EQ(status.state(), sluice::v1::DRAINING);
  EXPECT_FALSE(status.accepting());
  EXPECT_EQ(drain_seconds.load(), 7);
  EXPECT_EQ(Health(stage, ""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(stage, "sluice.v1.Admin"), HealthCheckResponse::NOT_SERVING);

  ASSERT_TRUE(stage.Stub()->Resume(Context().get(), {}, &status).ok());
  EXPECT_EQ(status.state(), sluice::v1::SERVING);
  EXPECT_EQ(resumes.load(), 1);
  EXPECT_EQ(Health(stage, ""), HealthCheckResponse::SERVING);
}

TEST(AdminServer, DrainWithoutTimeoutTakesTheLimitsDrainTimeout) {
  TestStage stage;
  std::atomic<int64_t> drain_seconds{-1};
  stage.runtime.OnDrain([&](absl::Duration d) { drain_seconds = absl::ToInt64Seconds(d); });
  stage.Start();
  sluice::v1::StageStatus status;
  ASSERT_TRUE(stage.Stub()->Drain(Context().get(), {}, &status).ok());
  EXPECT_EQ(drain_seconds.load(), stage.limits.Get()->drain_timeout_seconds());
  EXPECT_EQ(drain_seconds.load(), 60);
}

TEST(AdminServer, DrainHandoffIsRefusedWithoutDrainingByAStageWithNoQueue) {
  TestStage stage("frontend");
  std::atomic<int> drains{0};
  stage.runtime.OnDrain([&](absl::Duration) { ++drains; });
  stage.Start();
  sluice::v1::DrainRequest drain;
  drain.set_handoff(true);
  sluice::v1::StageStatus status;
  grpc::Status s = stage.Stub()->Drain(Context().get(), drain, &status);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("does not apply to the frontend stage"));
  EXPECT_EQ(drains.load(), 0);
  EXPECT_FALSE(stage.runtime.draining());
}

TEST(AdminServer, DrainHandoffRefusedByItsCheckLeavesTheStageServing) {
  TestStage stage("reinject");
  stage.runtime.SetDrainHandoff({.check = [] { return absl::FailedPreconditionError("no handoff_peers"); },
                                 .run = [](absl::Duration, std::function<void(absl::Status)> done) {
                                   done(absl::OkStatus());
                                 }});
  stage.Start();
  sluice::v1::DrainRequest drain;
  drain.set_handoff(true);
  sluice::v1::StageStatus status;
  grpc::Status s = stage.Stub()->Drain(Context().get(), drain, &status);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("no handoff_peers"));
  EXPECT_FALSE(stage.runtime.draining());
}

TEST(AdminServer, DrainHandoffAnswersWhenTheHandoffEnds) {
  TestStage stage("reinject");
  std::atomic<int64_t> handoff_seconds{-1};
  std::thread worker;
  stage.runtime.SetDrainHandoff({.check = [] { return absl::OkStatus(); },
                                 .run = [&](absl::Duration d, std::function<void(absl::Status)> done) {
                                   handoff_seconds = absl::ToInt64Seconds(d);
                                   worker = std::thread([done = std::move(done)] {
                                     done(absl::DeadlineExceededError("hand-off left 3 entries"));
                                   });
                                 }});
  stage.Start();
  sluice::v1::DrainRequest drain;
  drain.set_handoff(true);
  drain.set_timeout_seconds(4);
  sluice::v1::StageStatus status;
  grpc::Status s = stage.Stub()->Drain(Context().get(), drain, &status);
  if (worker.joinable()) worker.join();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("left 3 entries"));
  EXPECT_EQ(handoff_seconds.load(), 4);
  EXPECT_TRUE(stage.runtime.draining());  // drained whatever the hand-off did, until Resume
}

TEST(AdminServer, HealthIsNotServingWhileUnavailable) {
  TestStage stage("reinject");
  stage.Start();
  stage.runtime.SetUnavailable("queue disk full");
  EXPECT_EQ(Health(stage, ""), HealthCheckResponse::NOT_SERVING);
  sluice::v1::StageStatus status;
  ASSERT_TRUE(stage.Stub()->GetStatus(Context().get(), {}, &status).ok());
  EXPECT_EQ(status.state(), sluice::v1::UNAVAILABLE);
  EXPECT_EQ(status.state_reason(), "queue disk full");
  stage.runtime.SetAvailable();
  EXPECT_EQ(Health(stage, ""), HealthCheckResponse::SERVING);
}

TEST(AdminServer, ListGetAndKillSessions) {
  TestStage stage;
  stage.Start();
  auto& registry = stage.runtime.sessions();
  sluice::v1::SessionMetadata m;
  m.set_session_id("SESSIONA00000001");
  m.set_client_address("192.0.2.1");
  m.set_helo("first.example");
  auto a1 = registry.Register(m);
  m.set_helo("second.example");
  auto a2 = registry.Register(m);  // a second hop of the same client session
  m.set_session_id("SESSIONB00000001");
  m.set_client_address("192.0.2.2");
  auto b = registry.Register(m);
  std::atomic<int> killed_a{0};
  std::atomic<int> killed_b{0};
  a1->SetKiller([&] { ++killed_a; });
  a2->SetKiller([&] { ++killed_a; });
  b->SetKiller([&] { ++killed_b; });
  auto stub = stage.Stub();

  sluice::v1::ListSessionsResponse list;
  ASSERT_TRUE(stub->ListSessions(Context().get(), {}, &list).ok());
  EXPECT_EQ(list.sessions_size(), 3);
  sluice::v1::ListSessionsRequest by_client;
  by_client.set_client_address("192.0.2.2");
  ASSERT_TRUE(stub->ListSessions(Context().get(), by_client, &list).ok());
  ASSERT_EQ(list.sessions_size(), 1);
  EXPECT_EQ(list.sessions(0).session_id(), "SESSIONB00000001");

  sluice::v1::GetSessionRequest get;
  get.set_session_id("SESSIONA00000001");
  sluice::v1::SessionMetadata got;
  ASSERT_TRUE(stub->GetSession(Context().get(), get, &got).ok());
  EXPECT_EQ(got.helo(), "second.example");  // the most recent
  EXPECT_EQ(got.stage(), "frontend");
  get.set_session_id("NOSUCHSESSION000");
  EXPECT_EQ(stub->GetSession(Context().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  get.set_session_id("");
  EXPECT_EQ(stub->GetSession(Context().get(), get, &got).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  sluice::v1::KillSessionRequest kill;
  kill.set_session_id("SESSIONA00000001");
  sluice::v1::KillSessionResponse killed;
  ASSERT_TRUE(stub->KillSession(Context().get(), kill, &killed).ok());
  EXPECT_TRUE(killed.killed());
  EXPECT_EQ(killed_a.load(), 2);
  EXPECT_EQ(killed_b.load(), 0);
  kill.set_session_id("NOSUCHSESSION000");
  ASSERT_TRUE(stub->KillSession(Context().get(), kill, &killed).ok());
  EXPECT_FALSE(killed.killed());

  a1.reset();
  a2.reset();
  get.set_session_id("SESSIONA00000001");
  EXPECT_EQ(stub->GetSession(Context().get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(AdminServer, LimitsAreReadAndChangedLiveAndInvalidValuesRefused) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  sluice::v1::Limits limits;
  ASSERT_TRUE(stub->GetLimits(Context().get(), {}, &limits).ok());
  EXPECT_EQ(limits.max_sessions(), 100u);

  sluice::v1::UpdateLimitsRequest update;
  update.mutable_limits()->set_max_sessions(5);
  update.mutable_update_mask()->add_paths("max_sessions");
  ASSERT_TRUE(stub->UpdateLimits(Context().get(), update, &limits).ok());
  EXPECT_EQ(limits.max_sessions(), 5u);
  sluice::v1::StageStatus status;
  ASSERT_TRUE(stub->GetStatus(Context().get(), {}, &status).ok());
  EXPECT_EQ(status.sessions_max(), 5u);

  update.mutable_limits()->set_max_sessions(0);  // below the schema's minimum of 1
  grpc::Status refused = stub->UpdateLimits(Context().get(), update, &limits);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("max_sessions"));
  ASSERT_TRUE(stub->GetLimits(Context().get(), {}, &limits).ok());
  EXPECT_EQ(limits.max_sessions(), 5u);
  EXPECT_THAT(MetricsText(stage.runtime.registry()), HasSubstr("sluice_limits_updates_total 1"));
}

TEST(AdminServer, WatchStatusSendsAtOnceThenOnEveryChange) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  Watch watch(*stub, /*interval_seconds=*/3600);  // no interval push during the test
  sluice::v1::StageStatus status;
  ASSERT_TRUE(watch.Next(&status));
  EXPECT_EQ(status.state(), sluice::v1::SERVING);
  EXPECT_EQ(status.filter_capacity(), 0u);

  stage.runtime.SetStatusHook([](sluice::v1::StageStatus& s) { s.set_filter_capacity(42); });
  stage.runtime.NotifyChanged();
  ASSERT_TRUE(watch.Next(&status));
  EXPECT_EQ(status.filter_capacity(), 42u);

  stage.runtime.BeginDrain(absl::Seconds(5));  // a state change pushes too
  ASSERT_TRUE(watch.Next(&status));
  EXPECT_EQ(status.state(), sluice::v1::DRAINING);
  EXPECT_FALSE(status.accepting());

  sluice::v1::UpdateLimitsRequest update;  // and so does a live limits change
  update.mutable_limits()->set_max_sessions(9);
  update.mutable_update_mask()->add_paths("max_sessions");
  ASSERT_TRUE(stage.limits.Update(update).ok());
  ASSERT_TRUE(watch.Next(&status));
  EXPECT_EQ(status.sessions_max(), 9u);
}

TEST(AdminServer, WatchStatusSendsEveryIntervalWithoutChanges) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  Watch watch(*stub, /*interval_seconds=*/1);
  std::vector<sluice::v1::StageStatus> got(3);
  for (auto& status : got) ASSERT_TRUE(watch.Next(&status));
  EXPECT_LT(got[0].now().seconds() * 1000000000LL + got[0].now().nanos(),
            got[2].now().seconds() * 1000000000LL + got[2].now().nanos());
}

TEST(AdminServer, WatchStatusEndsWhenTheClientCancels) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  Watch watch(*stub);
  sluice::v1::StageStatus status;
  ASSERT_TRUE(watch.Next(&status));
  EXPECT_TRUE(WaitFor([&] { return stage.server->service().watches() == 1; }));
  EXPECT_EQ(watch.Cancel().error_code(), grpc::StatusCode::CANCELLED);
  // The server side is gone too: the reactor finished and left the broadcaster.
  EXPECT_TRUE(WaitFor([&] { return stage.server->service().watches() == 0; }));
  stage.runtime.NotifyChanged();  // nobody to push to: must not touch the dead stream
}

TEST(AdminServer, WatchStatusEndsWithUnavailableOnShutdown) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  Watch watch(*stub);
  sluice::v1::StageStatus status;
  ASSERT_TRUE(watch.Next(&status));
  // A long grace: the stream must still end at once, by the server closing it.
  std::thread shutdown([&] { stage.server->Shutdown(absl::Seconds(60)); });
  EXPECT_EQ(watch.End().error_code(), grpc::StatusCode::UNAVAILABLE);
  shutdown.join();
  EXPECT_EQ(stage.server->service().watches(), 0u);
}

TEST(AdminServer, ManyWatchersComeAndGo) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        Watch watch(*stub);
        sluice::v1::StageStatus status;
        EXPECT_TRUE(watch.Next(&status));
        stage.runtime.NotifyChanged();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(WaitFor([&] { return stage.server->service().watches() == 0; }));
}

TEST(AdminServer, CallsAreCountedByMethodAndCode) {
  TestStage stage;
  stage.Start();
  auto stub = stage.Stub();
  sluice::v1::StageStatus status;
  ASSERT_TRUE(stub->GetStatus(Context().get(), {}, &status).ok());
  sluice::v1::GetSessionRequest get;
  get.set_session_id("NOSUCHSESSION000");
  sluice::v1::SessionMetadata meta;
  EXPECT_FALSE(stub->GetSession(Context().get(), get, &meta).ok());
  EXPECT_TRUE(WaitFor([&] {
    std::string text = MetricsText(stage.runtime.registry());
    return text.find("sluice_admin_calls_total{code=\"OK\",method=\"GetStatus\"} 1") !=
               std::string::npos &&
           text.find("sluice_admin_calls_total{code=\"NOT_FOUND\",method=\"GetSession\"} 1") !=
               std::string::npos;
  })) << MetricsText(stage.runtime.registry());
  std::string text = MetricsText(stage.runtime.registry());
  // Declared at start-up, never called: present as zero.
  EXPECT_THAT(text, HasSubstr("sluice_admin_calls_total{code=\"UNAUTHENTICATED\",method=\"Drain\"} 0"));
  EXPECT_THAT(text, HasSubstr("sluice_stage_draining 0"));
  // Health probes are not admin calls.
  Health(stage, "");
  EXPECT_THAT(MetricsText(stage.runtime.registry()), ::testing::Not(HasSubstr("method=\"Check\"")));
}

TEST(AdminServer, ReflectionListsTheServices) {
  TestStage stage;
  stage.Start();
  grpc::GenericStub stub(stage.Channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  auto step = [&](intptr_t want) {
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  // ServerReflectionRequest{list_services: "*"} (field 7, a string), encoded by hand: the
  // reflection protos' generated code lives inside libgrpc++_reflection.
  grpc::Slice request(std::string("\x3a\x01*", 3));
  grpc::ByteBuffer out(&request, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(in.Dump(&slices).ok());
  std::string response;
  for (auto& s : slices) response.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_THAT(response, HasSubstr("sluice.v1.Admin"));
  EXPECT_THAT(response, HasSubstr("grpc.health.v1.Health"));
  ctx.TryCancel();
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(AdminServer, ABusyPortOrABadAddressIsAnError) {
  TestStage first;
  first.Start();
  TestStage second;
  AdminServerOptions options;
  options.listen = first.address();
  EXPECT_FALSE(AdminServer::Start(second.runtime, options).ok());
  options.listen = "127.0.0.1";
  EXPECT_FALSE(AdminServer::Start(second.runtime, options).ok());
}

TEST(AdminServer, ShutdownIsIdempotentAndHealthGoesNotServing) {
  TestStage stage;
  stage.Start();
  auto health = grpc::health::v1::Health::NewStub(stage.Channel());
  stage.server->Shutdown(absl::Seconds(1));
  stage.server->Shutdown(absl::Seconds(1));
  HealthCheckResponse resp;
  EXPECT_FALSE(health->Check(Context(absl::Seconds(5)).get(), {}, &resp).ok());
}

TEST(GrpcListenAddress, SpellsAddressesForGrpc) {
  EXPECT_EQ(*GrpcListenAddress("127.0.0.1:9101"), "127.0.0.1:9101");
  EXPECT_EQ(*GrpcListenAddress(":9101"), "[::]:9101");
  EXPECT_EQ(*GrpcListenAddress("[::1]:0"), "[::1]:0");
  EXPECT_FALSE(GrpcListenAddress("nonsense").ok());
}

}  // namespace
}  // namespace sluice::control
