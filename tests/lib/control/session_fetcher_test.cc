// tests/lib/control/session_fetcher_test.cc
//
// GetSession from the downstream side against a real admin server: a miss calls, a hit
// does not; NOT_FOUND is not cached; entries expire and are evicted least-recently-used;
// a peer that never answers gives DEADLINE_EXCEEDED within the timeout; the async form
// calls back exactly once.
//
// Never: asserts on timing; sleeps a fixed time.
#include "lib/control/session_fetcher.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/lib/control/admin_test_support.h"

namespace sluice::control {
namespace {

using testing::TestStage;

sluice::v1::SessionMetadata Meta(const std::string& id, const std::string& helo) {
  sluice::v1::SessionMetadata m;
  m.set_session_id(id);
  m.set_helo(helo);
  m.set_tls_version("TLSv1.3");
  return m;
}

// Accepts TCP connections (the kernel does, from the backlog) and never says a word.
class SilentPeer {
 public:
  SilentPeer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentPeer() { ::close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_;
  int port_ = 0;
};

TEST(SessionFetcher, AMissCallsTheOwnerAndAHitDoesNot) {
  TestStage owner;
  owner.Start();
  auto session = owner.runtime.sessions().Register(Meta("SESSIONID0000001", "client.example"));
  SessionFetcher fetcher;
  auto first = fetcher.Fetch(owner.address(), "SESSIONID0000001", absl::Seconds(10));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->helo(), "client.example");
  EXPECT_EQ(first->tls_version(), "TLSv1.3");
  EXPECT_EQ(first->stage(), "frontend");
  EXPECT_EQ(fetcher.calls(), 1u);

  session.reset();  // gone at the owner: only the cache can answer now
  auto second = fetcher.Fetch(owner.address(), "SESSIONID0000001", absl::Seconds(10));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->helo(), "client.example");
  EXPECT_EQ(fetcher.calls(), 1u);
  EXPECT_EQ(fetcher.hits(), 1u);
}

TEST(SessionFetcher, NotFoundIsReportedAndNotCached) {
  TestStage owner;
  owner.Start();
  SessionFetcher fetcher;
  auto missing = fetcher.Fetch(owner.address(), "LATESESSION00001", absl::Seconds(10));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto session = owner.runtime.sessions().Register(Meta("LATESESSION00001", "late.example"));
  auto found = fetcher.Fetch(owner.address(), "LATESESSION00001", absl::Seconds(10));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(fetcher.calls(), 2u);
}

TEST(SessionFetcher, EntriesExpire) {
  TestStage owner;
  owner.Start();
  auto session = owner.runtime.sessions().Register(Meta("SESSIONID0000002", "a"));
  SessionFetcherOptions options;
  options.cache_ttl = absl::Nanoseconds(1);
  SessionFetcher fetcher(options);
  ASSERT_TRUE(fetcher.Fetch(owner.address(), "SESSIONID0000002", absl::Seconds(10)).ok());
  ASSERT_TRUE(fetcher.Fetch(owner.address(), "SESSIONID0000002", absl::Seconds(10)).ok());
  EXPECT_EQ(fetcher.calls(), 2u);
  EXPECT_EQ(fetcher.hits(), 0u);
}

TEST(SessionFetcher, TheLeastRecentlyUsedEntryIsEvicted) {
  TestStage owner;
  owner.Start();
  auto a = owner.runtime.sessions().Register(Meta("SESSIONAAAAAAAAA", "a"));
  auto b = owner.runtime.sessions().Register(Meta("SESSIONBBBBBBBBB", "b"));
  SessionFetcherOptions options;
  options.cache_capacity = 1;
  SessionFetcher fetcher(options);
  ASSERT_TRUE(fetcher.Fetch(owner.address(), "SESSIONAAAAAAAAA", absl::Seconds(10)).ok());
  ASSERT_TRUE(fetcher.Fetch(owner.address(), "SESSIONBBBBBBBBB", absl::Seconds(10)).ok());
  ASSERT_TRUE(fetcher.Fetch(owner.address(), "SESSIONBBBBBBBBB", absl::Seconds(10)).ok());
  EXPECT_EQ(fetcher.hits(), 1u);
  ASSERT_TRUE(fetcher.Fetch(owner.address(), "SESSIONAAAAAAAAA", absl::Seconds(10)).ok());
  EXPECT_EQ(fetcher.calls(), 3u);  // A was evicted by B
}

TEST(SessionFetcher, APeerThatNeverAnswersTimesOut) {
  SilentPeer peer;
  SessionFetcher fetcher;
  auto r = fetcher.Fetch(peer.address(), "SESSIONID0000003", absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
}

TEST(SessionFetcher, AsyncCallsBackOnceAndTheCacheAnswersInline) {
  TestStage owner;
  owner.Start();
  auto session = owner.runtime.sessions().Register(Meta("SESSIONID0000004", "async.example"));
  SessionFetcher fetcher;
  std::promise<absl::StatusOr<sluice::v1::SessionMetadata>> promise;
  int calls = 0;
  fetcher.FetchAsync(owner.address(), "SESSIONID0000004", absl::Seconds(10),
                     [&](absl::StatusOr<sluice::v1::SessionMetadata> r) {
                       ++calls;
                       promise.set_value(std::move(r));
                     });
  auto r = promise.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->helo(), "async.example");
  bool inline_hit = false;
  fetcher.FetchAsync(owner.address(), "SESSIONID0000004", absl::Seconds(10),
                     [&](absl::StatusOr<sluice::v1::SessionMetadata> r2) {
                       inline_hit = r2.ok();
                     });
  EXPECT_TRUE(inline_hit);
  EXPECT_EQ(calls, 1);
}

TEST(SessionFetcher, DestructionWaitsForCallsInFlight) {
  SilentPeer peer;
  std::atomic<int> callbacks{0};
  {
    SessionFetcher fetcher;
    for (int i = 0; i < 3; ++i) {
      fetcher.FetchAsync(peer.address(), "SESSIONID000000" + std::to_string(i), absl::Seconds(60),
                         [&](absl::StatusOr<sluice::v1::SessionMetadata> r) {
                           EXPECT_FALSE(r.ok());
                           ++callbacks;
                         });
    }
  }  // cancels the three calls and waits for their callbacks
  EXPECT_EQ(callbacks.load(), 3);
}

TEST(SessionFetcher, AnEmptyIdIsRefusedWithoutACall) {
  SessionFetcher fetcher;
  EXPECT_EQ(fetcher.Fetch("127.0.0.1:1", "", absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fetcher.calls(), 0u);
}

}  // namespace
}  // namespace sluice::control
