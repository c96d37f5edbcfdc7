// tests/lib/control/admin_test_support.h
//
// What the admin-side tests share: Limits with the schema's defaults, a stage (LimitsStore +
// StageRuntime) with its AdminServer on an ephemeral 127.0.0.1 port, channels to it, the
// control metrics as text, and waiting on a condition with a generous deadline.
//
// Never: sleeps a fixed time to let something happen; uses a fixed port.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "lib/control/admin_server.h"
#include "lib/control/limits_store.h"
#include "lib/control/proto_defaults.h"
#include "lib/control/stage_runtime.h"
#include "prometheus/text_serializer.h"
#include "sluice/v1/admin.grpc.pb.h"

namespace sluice::control::testing {

inline sluice::v1::Limits DefaultLimits() {
  sluice::v1::Limits limits;
  ApplyDefaults(&limits);
  return limits;
}

// Polls `done` until it holds or `limit` passed; true when it held.
inline bool WaitFor(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline std::string MetricsText(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

// One stage process's control plane: limits, runtime, admin server.
struct TestStage {
  explicit TestStage(std::string stage = "frontend", std::string instance = "test-1")
      : limits(DefaultLimits()),
        runtime(StageInfo{std::move(stage), std::move(instance), "0.1.0-test"}, limits) {}

  // Starts the admin server; `options.listen` defaults to 127.0.0.1:0.
  void Start(AdminServerOptions options = {}) {
    if (options.listen.empty()) options.listen = "127.0.0.1:0";
    auto started = AdminServer::Start(runtime, std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    server = *std::move(started);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  }
  std::unique_ptr<sluice::v1::Admin::Stub> Stub() const { return sluice::v1::Admin::NewStub(Channel()); }

  LimitsStore limits;
  StageRuntime runtime;
  std::unique_ptr<AdminServer> server;  // declared last: shut down first
};

inline std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(30)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

}  // namespace sluice::control::testing
