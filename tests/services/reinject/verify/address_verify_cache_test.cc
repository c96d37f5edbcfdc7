// tests/services/reinject/verify/address_verify_cache_test.cc -- the verification cache's
// lifetimes are Postfix's (verify.c): positive answers live 31 d and are refreshed after 7 d,
// negative ones live 3 d and are refreshed after 3 h; a negative answer does not replace a
// live positive one; negative caching can be turned off; the cache is bounded.
#include "services/reinject/verify/address_verify_cache.h"

#include <gtest/gtest.h>

#include "lib/control/proto_defaults.h"

namespace sluice::reinject {
namespace {

VerifyCachePolicy DefaultPolicy(bool negative_cache = true) {
  sluice::v1::Limits limits;
  control::ApplyDefaults(&limits);
  return VerifyCachePolicy::From(limits, negative_cache);
}

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(AddressVerifyCacheTest, DefaultsArePostfixs) {
  VerifyCachePolicy p = DefaultPolicy();
  EXPECT_EQ(p.positive_expire, absl::Hours(24 * 31));
  EXPECT_EQ(p.positive_refresh, absl::Hours(24 * 7));
  EXPECT_EQ(p.negative_expire, absl::Hours(24 * 3));
  EXPECT_EQ(p.negative_refresh, absl::Hours(3));
  EXPECT_TRUE(p.negative_cache);
}

TEST(AddressVerifyCacheTest, PositiveAnswerIsUsedFor31DaysAndRefreshedAfter7) {
  AddressVerifyCache cache;
  VerifyCachePolicy p = DefaultPolicy();
  ASSERT_TRUE(cache.Store("bob@example.com", true, "250 2.1.5 OK", kT0, p));
  auto day6 = cache.Find("bob@example.com", kT0 + absl::Hours(24 * 6), p);
  ASSERT_TRUE(day6.has_value());
  EXPECT_TRUE(day6->answer.deliverable);
  EXPECT_EQ(day6->answer.reply, "250 2.1.5 OK");
  EXPECT_EQ(day6->answer.learned, kT0);
  EXPECT_FALSE(day6->refresh);
  auto day8 = cache.Find("bob@example.com", kT0 + absl::Hours(24 * 8), p);
  ASSERT_TRUE(day8.has_value());
  EXPECT_TRUE(day8->refresh);
  EXPECT_FALSE(cache.Find("bob@example.com", kT0 + absl::Hours(24 * 31), p).has_value());
  EXPECT_EQ(cache.size(), 0u);  // the expired entry is gone
}

TEST(AddressVerifyCacheTest, NegativeAnswerIsUsedFor3DaysAndRefreshedAfter3Hours) {
  AddressVerifyCache cache;
  VerifyCachePolicy p = DefaultPolicy();
  ASSERT_TRUE(cache.Store("nobody@example.com", false, "550 5.1.1 unknown", kT0, p));
  auto early = cache.Find("nobody@example.com", kT0 + absl::Hours(2), p);
  ASSERT_TRUE(early.has_value());
  EXPECT_FALSE(early->answer.deliverable);
  EXPECT_FALSE(early->refresh);
  auto later = cache.Find("nobody@example.com", kT0 + absl::Hours(4), p);
  ASSERT_TRUE(later.has_value());
  EXPECT_TRUE(later->refresh);
  EXPECT_FALSE(cache.Find("nobody@example.com", kT0 + absl::Hours(72), p).has_value());
}

TEST(AddressVerifyCacheTest, ARefreshUnderWayIsNotStartedAgainFor1000Seconds) {
  AddressVerifyCache cache;
  VerifyCachePolicy p = DefaultPolicy();
  cache.Store("nobody@example.com", false, "550 5.1.1 unknown", kT0, p);
  absl::Time t = kT0 + absl::Hours(4);
  ASSERT_TRUE(cache.Find("nobody@example.com", t, p)->refresh);
  cache.MarkRefreshing("nobody@example.com", t);
  EXPECT_FALSE(cache.Find("nobody@example.com", t + absl::Seconds(999), p)->refresh);
  EXPECT_TRUE(cache.Find("nobody@example.com", t + AddressVerifyCache::kRefreshRetry, p)->refresh);
  // A new answer resets it.
  cache.Store("nobody@example.com", false, "550 5.1.1 still unknown", t + absl::Seconds(10), p);
  EXPECT_FALSE(cache.Find("nobody@example.com", t + absl::Seconds(20), p)->refresh);
}

TEST(AddressVerifyCacheTest, NegativeCachingOffKeepsNoNegativeAnswer) {
  AddressVerifyCache cache;
  VerifyCachePolicy off = DefaultPolicy(/*negative_cache=*/false);
  EXPECT_FALSE(cache.Store("nobody@example.com", false, "550 5.1.1 unknown", kT0, off));
  EXPECT_FALSE(cache.Find("nobody@example.com", kT0, off).has_value());
  EXPECT_TRUE(cache.Store("bob@example.com", true, "250 OK", kT0, off));
  EXPECT_TRUE(cache.Find("bob@example.com", kT0, off).has_value());
  // Stored while on, then turned off: no longer answered.
  AddressVerifyCache was_on;
  was_on.Store("nobody@example.com", false, "550 5.1.1 unknown", kT0, DefaultPolicy(true));
  EXPECT_FALSE(was_on.Find("nobody@example.com", kT0 + absl::Seconds(1), off).has_value());
}

TEST(AddressVerifyCacheTest, ANegativeAnswerDoesNotReplaceALivePositiveOne) {
  AddressVerifyCache cache;
  VerifyCachePolicy p = DefaultPolicy();
  cache.Store("bob@example.com", true, "250 OK", kT0, p);
  EXPECT_FALSE(cache.Store("bob@example.com", false, "550 5.1.1 gone", kT0 + absl::Hours(24 * 8), p));
  auto found = cache.Find("bob@example.com", kT0 + absl::Hours(24 * 8), p);
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->answer.deliverable);
  // A positive answer replaces a negative one at once.
  cache.Store("new@example.com", false, "550 5.1.1 unknown", kT0, p);
  EXPECT_TRUE(cache.Store("new@example.com", true, "250 OK", kT0 + absl::Minutes(1), p));
  EXPECT_TRUE(cache.Find("new@example.com", kT0 + absl::Minutes(2), p)->answer.deliverable);
}

TEST(AddressVerifyCacheTest, HoldsAtMostMaxEntriesDroppingTheLeastRecentlyUsed) {
  AddressVerifyCache cache;
  VerifyCachePolicy p = DefaultPolicy();
  p.max_entries = 2;
  cache.Store("a@example.com", true, "250", kT0, p);
  cache.Store("b@example.com", true, "250", kT0, p);
  ASSERT_TRUE(cache.Find("a@example.com", kT0, p).has_value());  // a is now the most recent
  cache.Store("c@example.com", true, "250", kT0, p);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_TRUE(cache.Find("a@example.com", kT0, p).has_value());
  EXPECT_FALSE(cache.Find("b@example.com", kT0, p).has_value());
  EXPECT_TRUE(cache.Find("c@example.com", kT0, p).has_value());
}

TEST(AddressVerifyCacheTest, KeyLowersTheDomainOnly) {
  EXPECT_EQ(VerifyKey("Bob@Example.COM"), "Bob@example.com");
  EXPECT_EQ(VerifyKey("postmaster"), "postmaster");
  EXPECT_EQ(VerifyKey("\"a@b\"@Example.org"), "\"a@b\"@example.org");
}

}  // namespace
}  // namespace sluice::reinject
