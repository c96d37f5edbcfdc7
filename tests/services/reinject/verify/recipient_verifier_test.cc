// tests/services/reinject/verify/recipient_verifier_test.cc -- recipient verification over
// the real delivery route: the relay agent probing Dovecot's LMTP server (a known user is
// deliverable, an unknown one undeliverable with Dovecot's 550 5.1.1, nothing delivered;
// the second query comes from the cache without a probe; Dovecot stopped is "unknown",
// never a "no", and is not cached), and a next hop that accepts the connection but never
// speaks (a probe is cut at verify_probe_timeout; a query's wait ends first; probes beyond
// verify_probe_concurrency are not started, and that is counted).
#include "services/reinject/verify/recipient_verifier.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"
#include "asio/thread_pool.hpp"
#include "lib/control/proto_defaults.h"
#include "lib/net/host_port.h"
#include "services/reinject/delivery/maildir_agent.h"
#include "services/reinject/delivery/relay_agent.h"
#include "tests/services/reinject/testing/peer_process.h"
#include "tests/services/reinject/testing/queue_test_support.h"

namespace sluice::reinject {
namespace {

using ::sluice::reinject::testing::DovecotLmtp;
using ::sluice::reinject::testing::TempDir;
using ::sluice::v1::VerifyRecipientResponse;
using ::testing::HasSubstr;
using ::testing::StartsWith;

#define REQUIRE_DOVECOT(dv)                                                 \
  if (!DovecotLmtp::Available()) GTEST_SKIP() << "no dovecot-lmtpd";        \
  ASSERT_TRUE((dv).started()) << "dovecot did not start:\n" << (dv).log()

sluice::v1::Limits TestLimits() {
  sluice::v1::Limits limits;
  control::ApplyDefaults(&limits);
  limits.set_connect_timeout_seconds(5);
  return limits;
}

// A next hop that takes the connection (the kernel completes the handshake for the
// backlog) and never says a word.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

class RecipientVerifierTest : public ::testing::Test {
 protected:
  RecipientVerifierTest() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~RecipientVerifierTest() override {
    verifier_.reset();  // needs the io thread: it ends running probes there
    agent_.reset();
    guard_.reset();
    io_.stop();
    thread_.join();
    pool_.join();
  }

  void MakeLmtp(const std::string& target, sluice::v1::Limits limits, bool negative_cache = true) {
    RelayOptions o;
    o.lmtp = true;
    o.next_hop = *net::ParseHostPort(target);
    o.helo_name = "mx.test";
    o.limits = FixedLimits(limits);
    o.blocking = pool_.get_executor();
    auto agent = RelayAgent::Create(std::move(o));
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    MakeVerifier(limits, negative_cache);
  }

  void MakeVerifier(const sluice::v1::Limits& limits, bool negative_cache = true) {
    RecipientVerifierOptions vo;
    vo.agent = agent_.get();
    vo.limits = FixedLimits(limits);
    vo.negative_cache = negative_cache;
    vo.executor = [this] { return io_.get_executor(); };
    vo.metrics = &metrics_;
    verifier_ = std::make_unique<RecipientVerifier>(std::move(vo));
  }

  VerifyRecipientResponse Ask(const std::string& address, absl::Duration wait = absl::Seconds(20)) {
    auto promise = std::make_shared<std::promise<VerifyRecipientResponse>>();
    auto future = promise->get_future();
    verifier_->Verify(address, wait, [promise](VerifyRecipientResponse r) { promise->set_value(std::move(r)); });
    if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      ADD_FAILURE() << "no answer for " << address;
      return {};
    }
    return future.get();
  }

  // Waits (polling) until no probe is running.
  bool Idle() {
    for (int i = 0; i < 6000; ++i) {
      if (verifier_->running() == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir dir_;
  prometheus::Registry registry_;
  VerifyMetrics metrics_{registry_};
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  asio::thread_pool pool_{1};
  std::unique_ptr<DeliveryAgent> agent_;
  std::unique_ptr<RecipientVerifier> verifier_;
};

TEST_F(RecipientVerifierTest, KnownUserIsDeliverableUnknownUserIsNotAndNothingIsDelivered) {
  DovecotLmtp dovecot(dir_, {"bob@example.com"});
  REQUIRE_DOVECOT(dovecot);
  MakeLmtp(dovecot.target(), TestLimits());
  VerifyRecipientResponse bob = Ask("bob@example.com");
  EXPECT_EQ(bob.status(), sluice::v1::ADDRESS_DELIVERABLE);
  EXPECT_THAT(bob.reply(), StartsWith("250"));
  EXPECT_FALSE(bob.from_cache());
  VerifyRecipientResponse nobody = Ask("nobody@example.com");
  EXPECT_EQ(nobody.status(), sluice::v1::ADDRESS_UNDELIVERABLE);
  EXPECT_THAT(nobody.reply(), StartsWith("550 5.1.1"));
  EXPECT_THAT(nobody.reply(), HasSubstr("nobody@example.com"));
  EXPECT_TRUE(dovecot.Mail("bob@example.com").empty());  // a probe sends no message
  EXPECT_EQ(metrics_.probes.at({"deliverable"}).Value(), 1);
  EXPECT_EQ(metrics_.probes.at({"undeliverable"}).Value(), 1);
  EXPECT_EQ(metrics_.probe_seconds.Collect().histogram.sample_count, 2u);
}

TEST_F(RecipientVerifierTest, TheSecondQueryIsAnsweredFromTheCacheWithoutAProbe) {
  DovecotLmtp dovecot(dir_, {"bob@example.com"});
  REQUIRE_DOVECOT(dovecot);
  MakeLmtp(dovecot.target(), TestLimits());
  ASSERT_EQ(Ask("nobody@example.com").status(), sluice::v1::ADDRESS_UNDELIVERABLE);
  ASSERT_EQ(Ask("bob@example.com").status(), sluice::v1::ADDRESS_DELIVERABLE);
  EXPECT_EQ(verifier_->probes_started(), 2u);
  VerifyRecipientResponse again = Ask("nobody@EXAMPLE.com");
  EXPECT_EQ(again.status(), sluice::v1::ADDRESS_UNDELIVERABLE);
  EXPECT_TRUE(again.from_cache());
  EXPECT_THAT(again.reply(), StartsWith("550 5.1.1"));
  EXPECT_TRUE(Ask("bob@example.com").from_cache());
  EXPECT_EQ(verifier_->probes_started(), 2u);
  EXPECT_EQ(metrics_.cache_lookups.at({"hit"}).Value(), 2);
  EXPECT_EQ(metrics_.cache_lookups.at({"miss"}).Value(), 2);
  EXPECT_EQ(verifier_->cached(), 2u);
}

TEST_F(RecipientVerifierTest, WithoutNegativeCachingEveryQueryForAnUnknownUserProbes) {
  DovecotLmtp dovecot(dir_, {"bob@example.com"});
  REQUIRE_DOVECOT(dovecot);
  MakeLmtp(dovecot.target(), TestLimits(), /*negative_cache=*/false);
  EXPECT_EQ(Ask("nobody@example.com").status(), sluice::v1::ADDRESS_UNDELIVERABLE);
  EXPECT_EQ(Ask("nobody@example.com").status(), sluice::v1::ADDRESS_UNDELIVERABLE);
  EXPECT_EQ(verifier_->probes_started(), 2u);
  EXPECT_EQ(verifier_->cached(), 0u);
}

TEST_F(RecipientVerifierTest, ADestinationThatIsDownIsUnknownNeverUndeliverableAndNotCached) {
  auto dovecot = std::make_unique<DovecotLmtp>(dir_, std::vector<std::string>{"bob@example.com"});
  REQUIRE_DOVECOT(*dovecot);
  std::string target = dovecot->target();
  dovecot.reset();  // stopped: connections are refused
  MakeLmtp(target, TestLimits());
  VerifyRecipientResponse r = Ask("bob@example.com");
  EXPECT_EQ(r.status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_THAT(r.reply(), HasSubstr("4.4.1"));
  EXPECT_EQ(verifier_->cached(), 0u);
  EXPECT_EQ(metrics_.probes.at({"failed"}).Value(), 1);
  EXPECT_EQ(Ask("bob@example.com").status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_EQ(verifier_->probes_started(), 2u);  // a failure says nothing: the next query probes again
}

TEST_F(RecipientVerifierTest, AProbeIsCutAtItsTimeoutAndAQueryStopsWaitingFirst) {
  SilentServer silent;
  sluice::v1::Limits limits = TestLimits();
  limits.set_verify_probe_timeout_seconds(1);
  MakeLmtp(silent.target(), limits);
  auto asked = std::chrono::steady_clock::now();
  VerifyRecipientResponse r = Ask("bob@example.com", absl::Milliseconds(100));
  EXPECT_EQ(r.status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_EQ(r.reply(), "Address verification in progress");
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(1));
  EXPECT_EQ(verifier_->running(), 1u);  // the probe goes on after the wait
  ASSERT_TRUE(Idle());
  EXPECT_EQ(metrics_.probes.at({"timeout"}).Value(), 1);
  EXPECT_EQ(verifier_->cached(), 0u);
}

TEST_F(RecipientVerifierTest, ProbesBeyondTheConcurrencyLimitAreNotStarted) {
  SilentServer silent;
  sluice::v1::Limits limits = TestLimits();
  limits.set_verify_probe_concurrency(1);
  limits.set_verify_probe_timeout_seconds(2);
  MakeLmtp(silent.target(), limits);
  EXPECT_EQ(Ask("a@example.com", absl::ZeroDuration()).status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_EQ(Ask("b@example.com", absl::ZeroDuration()).status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_EQ(Ask("a@example.com", absl::ZeroDuration()).status(), sluice::v1::ADDRESS_UNKNOWN);  // joins
  EXPECT_EQ(verifier_->probes_started(), 1u);
  EXPECT_EQ(metrics_.limit_hits.at({"verify_probe_concurrency"}).Value(), 1);
  EXPECT_EQ(metrics_.queries.at({"unknown"}).Value(), 3);
  ASSERT_TRUE(Idle());
}

TEST_F(RecipientVerifierTest, AnAgentThatTakesAnyAddressAnswersDeliverable) {
  agent_ = std::make_unique<MaildirAgent>(MaildirOptions{dir_ / "mail", "mx.test"}, pool_.get_executor());
  MakeVerifier(TestLimits());
  VerifyRecipientResponse r = Ask("anyone@example.com");
  EXPECT_EQ(r.status(), sluice::v1::ADDRESS_DELIVERABLE);
  EXPECT_TRUE(Ask("anyone@example.com").from_cache());
}

TEST_F(RecipientVerifierTest, AfterStopEveryQueryIsUnknown) {
  SilentServer silent;
  MakeLmtp(silent.target(), TestLimits());
  auto promise = std::make_shared<std::promise<VerifyRecipientResponse>>();
  auto future = promise->get_future();
  verifier_->Verify("a@example.com", absl::Seconds(30), [promise](VerifyRecipientResponse r) { promise->set_value(r); });
  verifier_->StopAndWait(absl::Seconds(10));
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);  // the waiter was answered
  EXPECT_EQ(future.get().status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_EQ(Ask("b@example.com").status(), sluice::v1::ADDRESS_UNKNOWN);
  EXPECT_EQ(verifier_->running(), 0u);
}

}  // namespace
}  // namespace sluice::reinject
