// tests/lib/control/status_watcher_test.cc
//
// Backpressure as the upstream stage sees it, against real admin servers: accepting, full
// (not accepting, draining), unknown once the server is gone -- never stuck on a stale
// answer -- and accepting again when it comes back on the same port; one accepting replica
// among several is enough; a name is resolved to its addresses; a silent stream is
// cancelled and redialled.
//
// Never: asserts on timing; sleeps a fixed time.
#include "lib/control/status_watcher.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/lib/control/admin_test_support.h"

namespace sluice::control {
namespace {

using testing::TestStage;
using testing::WaitFor;

StatusWatcherOptions Fast(std::vector<std::string> targets) {
  StatusWatcherOptions o;
  o.targets = std::move(targets);
  o.interval = absl::Seconds(1);
  o.resolve_every = absl::Milliseconds(200);
  o.backoff_initial = absl::Milliseconds(50);
  o.backoff_max = absl::Milliseconds(200);
  return o;
}

// A TCP port nobody listens on (bound, then closed).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(StatusWatcher, AcceptingFullUnknownAndBackAgain) {
  auto stage = std::make_unique<TestStage>("filter-bridge", "fb-1");
  stage->Start();
  int port = stage->server->port();
  StatusWatcher watcher(Fast({"127.0.0.1:" + std::to_string(port)}));
  std::mutex mu;
  std::vector<Downstream> changes;
  watcher.OnChange([&](Downstream d) {
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back(d);
  });
  EXPECT_EQ(watcher.state(), Downstream::kUnknown);
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kAccepting; }));
  EXPECT_TRUE(watcher.accepting());
  ASSERT_EQ(watcher.last().size(), 1u);
  EXPECT_EQ(watcher.last()[0].instance(), "fb-1");

  // The filter stage fills up.
  stage->runtime.SetStatusHook([](sluice::v1::StageStatus& s) { s.set_accepting(false); });
  stage->runtime.NotifyChanged();
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kFull; }));
  EXPECT_FALSE(watcher.accepting());

  // It goes away: unknown, not "full" forever.
  stage->server->Shutdown(absl::Seconds(1));
  stage.reset();
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kUnknown; }));
  EXPECT_TRUE(watcher.last().empty());

  // It comes back on the same address.
  auto again = std::make_unique<TestStage>("filter-bridge", "fb-1b");
  AdminServerOptions options;
  options.listen = "127.0.0.1:" + std::to_string(port);
  again->Start(options);
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kAccepting; }));
  EXPECT_EQ(watcher.last()[0].instance(), "fb-1b");

  watcher.Stop();
  EXPECT_EQ(watcher.state(), Downstream::kUnknown);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(changes, ::testing::ElementsAre(Downstream::kAccepting, Downstream::kFull,
                                              Downstream::kUnknown, Downstream::kAccepting,
                                              Downstream::kUnknown));
}

TEST(StatusWatcher, ADrainingReplicaIsFull) {
  TestStage stage;
  stage.Start();
  StatusWatcher watcher(Fast({stage.address()}));
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kAccepting; }));
  stage.runtime.BeginDrain(absl::Seconds(5));
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kFull; }));
  stage.runtime.Resume();
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kAccepting; }));
}

TEST(StatusWatcher, OneAcceptingReplicaIsEnough) {
  TestStage full("filter-bridge", "full");
  TestStage open("filter-bridge", "open");
  full.Start();
  open.Start();
  full.runtime.SetStatusHook([](sluice::v1::StageStatus& s) { s.set_accepting(false); });
  // One by IP, one by name.
  StatusWatcher watcher(Fast({full.address(), "localhost:" + std::to_string(open.server->port())}));
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.last().size() == 2; }));
  EXPECT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kAccepting; }));
  open.runtime.SetStatusHook([](sluice::v1::StageStatus& s) { s.set_accepting(false); });
  open.runtime.NotifyChanged();
  EXPECT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kFull; }));
  EXPECT_EQ(watcher.description(), full.address() + ",localhost:" + std::to_string(open.server->port()));
}

TEST(StatusWatcher, UnknownWhileNothingAnswers) {
  StatusWatcher watcher(Fast({"127.0.0.1:" + std::to_string(ClosedPort()), "no-such-host.invalid:9102"}));
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.attempts() >= 3; }));
  EXPECT_EQ(watcher.state(), Downstream::kUnknown);
  EXPECT_EQ(watcher.streams(), 1u);  // the name that does not resolve has none
}

TEST(StatusWatcher, ASilentStreamIsCancelledAndRedialled) {
  TestStage stage;
  stage.Start();
  StatusWatcherOptions options = Fast({stage.address()});
  options.interval = absl::Seconds(60);            // the server stays quiet...
  options.stale_after = absl::Milliseconds(300);   // ...longer than we wait for it
  StatusWatcher watcher(options);
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.attempts() >= 3; }));
}

TEST(StatusWatcher, StopWithoutStartAndTwiceIsFine) {
  StatusWatcher idle(Fast({"127.0.0.1:1"}));
  idle.Stop();
  TestStage stage;
  stage.Start();
  StatusWatcher watcher(Fast({stage.address()}));
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.state() == Downstream::kAccepting; }));
  watcher.Stop();
  watcher.Stop();
  EXPECT_EQ(watcher.state(), Downstream::kUnknown);
}

}  // namespace
}  // namespace sluice::control
