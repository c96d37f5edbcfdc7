// tests/lib/control/session_registry_test.cc
//
// The live-session registry: ids assigned and indexed, the most recent of several local
// sessions under one id answers Get, kill callbacks run for every match and outside the
// registry's locks, handles deregister on destruction, re-keying when a downstream hop
// learns its id late; and NewSessionId's format and uniqueness.
//
// Never: depends on timing.
#include "lib/control/session_registry.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lib/control/session_id.h"

namespace sluice::control {
namespace {

using sluice::v1::SessionMetadata;

SessionMetadata Meta(const std::string& id, const std::string& client, const std::string& helo = "") {
  SessionMetadata m;
  m.set_session_id(id);
  m.set_client_address(client);
  m.set_helo(helo);
  return m;
}

TEST(SessionRegistry, RegisterAssignsAnIdAndFillsStageAndInstance) {
  SessionRegistry registry("frontend", "pod-1");
  auto h = registry.Register(Meta("", "192.0.2.1"));
  SessionMetadata m = h->Snapshot();
  EXPECT_TRUE(IsSessionId(m.session_id())) << m.session_id();
  EXPECT_EQ(m.stage(), "frontend");
  EXPECT_EQ(m.instance(), "pod-1");
  EXPECT_TRUE(m.has_connected_at());
  EXPECT_EQ(registry.active(), 1u);
  ASSERT_TRUE(registry.Get(m.session_id()).has_value());
}

TEST(SessionRegistry, HandleDeregistersWhenDropped) {
  SessionRegistry registry("frontend", "pod-1");
  auto a = registry.Register(Meta("AAAA", "192.0.2.1"));
  auto b = registry.Register(Meta("BBBB", "192.0.2.2"));
  EXPECT_EQ(registry.active(), 2u);
  a.reset();
  EXPECT_EQ(registry.active(), 1u);
  EXPECT_FALSE(registry.Get("AAAA").has_value());
  EXPECT_TRUE(registry.Get("BBBB").has_value());
  EXPECT_THAT(registry.List({}), ::testing::SizeIs(1));
}

TEST(SessionRegistry, GetAnswersTheMostRecentOfOneId) {
  SessionRegistry registry("filter-bridge", "pod-1");
  auto first = registry.Register(Meta("SAME", "192.0.2.1", "first"));
  auto second = registry.Register(Meta("SAME", "192.0.2.1", "second"));
  EXPECT_EQ(registry.Get("SAME")->helo(), "second");
  second.reset();
  EXPECT_EQ(registry.Get("SAME")->helo(), "first");
}

TEST(SessionRegistry, UpdateChangesTheRecordSeenByReaders) {
  SessionRegistry registry("frontend", "pod-1");
  auto h = registry.Register(Meta("ID1", "192.0.2.1"));
  h->Update([](SessionMetadata& m) {
    m.set_helo("mail.example.com");
    m.set_state("data");
  });
  auto got = registry.Get("ID1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->helo(), "mail.example.com");
  EXPECT_EQ(got->state(), "data");
}

TEST(SessionRegistry, LearningTheIdLaterReindexes) {
  SessionRegistry registry("filter-bridge", "pod-1");
  auto h = registry.Register(Meta("", "192.0.2.1"));
  std::string local = h->session_id();
  h->Update([](SessionMetadata& m) { m.set_session_id("FRONTENDID000001"); });  // XFORWARD IDENT
  EXPECT_FALSE(registry.Get(local).has_value());
  ASSERT_TRUE(registry.Get("FRONTENDID000001").has_value());
  h->Update([](SessionMetadata& m) { m.set_session_id(""); });  // refused: keeps the id
  EXPECT_EQ(h->session_id(), "FRONTENDID000001");
  h.reset();
  EXPECT_FALSE(registry.Get("FRONTENDID000001").has_value());
  EXPECT_EQ(registry.active(), 0u);
}

TEST(SessionRegistry, ListFiltersByClientAddressOldestFirst) {
  SessionRegistry registry("frontend", "pod-1");
  auto a = registry.Register(Meta("A", "192.0.2.1"));
  auto b = registry.Register(Meta("B", "192.0.2.2"));
  auto c = registry.Register(Meta("C", "192.0.2.1"));
  std::vector<SessionMetadata> all = registry.List({});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].session_id(), "A");
  EXPECT_EQ(all[2].session_id(), "C");
  sluice::v1::ListSessionsRequest only;
  only.set_client_address("192.0.2.1");
  std::vector<SessionMetadata> some = registry.List(only);
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[0].session_id(), "A");
  EXPECT_EQ(some[1].session_id(), "C");
}

TEST(SessionRegistry, KillRunsEveryKillerOfTheIdOutsideTheLocks) {
  SessionRegistry registry("filter-bridge", "pod-1");
  auto a = registry.Register(Meta("SAME", "192.0.2.1"));
  auto b = registry.Register(Meta("SAME", "192.0.2.1"));
  auto other = registry.Register(Meta("OTHER", "192.0.2.9"));
  int killed = 0;
  // A killer that reads the registry would deadlock if it ran under a registry lock.
  auto killer = [&] {
    EXPECT_EQ(registry.List({}).size(), 3u);
    ++killed;
  };
  a->SetKiller(killer);
  b->SetKiller(killer);
  bool other_killed = false;
  other->SetKiller([&] { other_killed = true; });
  EXPECT_TRUE(registry.Kill("SAME"));
  EXPECT_EQ(killed, 2);
  EXPECT_FALSE(other_killed);
  EXPECT_FALSE(registry.Kill("NOPE"));
}

TEST(SessionRegistry, KillWithoutAKillerReportsFalse) {
  SessionRegistry registry("frontend", "pod-1");
  auto a = registry.Register(Meta("A", "192.0.2.1"));
  EXPECT_FALSE(registry.Kill("A"));
}

TEST(SessionRegistry, ManyThreadsRegisterUpdateAndDrop) {
  SessionRegistry registry("frontend", "pod-1");
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      registry.List({});
      registry.Get("nothing");
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&registry] {
      for (int i = 0; i < 2000; ++i) {
        auto h = registry.Register(Meta("", "192.0.2.1"));
        h->Update([i](SessionMetadata& m) { m.set_transactions(static_cast<uint32_t>(i)); });
        if (i % 3 == 0) h->Update([](SessionMetadata& m) { m.set_session_id(NewSessionId()); });
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  reader.join();
  EXPECT_EQ(registry.active(), 0u);
  EXPECT_TRUE(registry.List({}).empty());
}

TEST(NewSessionId, IsSixteenXtextSafeCharactersAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) {
    std::string id = NewSessionId();
    ASSERT_EQ(id.size(), 16u);
    ASSERT_TRUE(IsSessionId(id)) << id;
    for (char c : id) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z')) << id;
    }
    ASSERT_TRUE(seen.insert(id).second) << "repeated " << id;
  }
}

TEST(NewSessionId, StartsWithTheTimeSoIdsSortByStart) {
  std::string a = NewSessionId();
  std::string b = NewSessionId();
  EXPECT_LE(a.substr(0, 7), b.substr(0, 7));
  EXPECT_FALSE(IsSessionId("short"));
  EXPECT_FALSE(IsSessionId("0123456789ABCDEI"));  // I is not Crockford base32
}

}  // namespace
}  // namespace sluice::control
