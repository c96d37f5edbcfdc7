// tests/lib/net/reverse_name_cache_test.cc
//
// The cache of recent clients' verified reverse names: an answer lives for its time and no
// longer, "unknown" is an answer like a name, and a full cache makes room only from expired
// entries (a refused Put is the limit biting).
//
// Never: sleeps (time is passed in).
#include "lib/net/reverse_name_cache.h"

#include <gtest/gtest.h>

namespace sluice::net {
namespace {

using std::chrono::seconds;

TEST(ReverseNameCache, AnAnswerLivesForItsTimeOnly) {
  ReverseNameCache cache;
  auto t0 = ReverseNameCache::Clock::now();
  EXPECT_EQ(cache.Get("192.0.2.1", t0), std::nullopt);
  EXPECT_TRUE(cache.Put("192.0.2.1", "mail.example.net", seconds(60), 10, t0));
  EXPECT_EQ(cache.Get("192.0.2.1", t0 + seconds(59)), "mail.example.net");
  EXPECT_EQ(cache.Get("192.0.2.1", t0 + seconds(60)), std::nullopt);
  EXPECT_EQ(cache.size(), 0u) << "an expired entry found on a lookup is dropped";
}

TEST(ReverseNameCache, UnknownIsAnAnswerToo) {
  ReverseNameCache cache;
  auto t0 = ReverseNameCache::Clock::now();
  EXPECT_TRUE(cache.Put("192.0.2.2", "unknown", seconds(60), 10, t0));
  EXPECT_EQ(cache.Get("192.0.2.2", t0), "unknown");
}

TEST(ReverseNameCache, AFullCacheTakesNoNewAddressUntilOneExpires) {
  ReverseNameCache cache;
  auto t0 = ReverseNameCache::Clock::now();
  EXPECT_TRUE(cache.Put("192.0.2.1", "a.example", seconds(10), 2, t0));
  EXPECT_TRUE(cache.Put("192.0.2.2", "b.example", seconds(60), 2, t0));
  EXPECT_FALSE(cache.Put("192.0.2.3", "c.example", seconds(60), 2, t0 + seconds(5)));
  EXPECT_EQ(cache.Get("192.0.2.3", t0 + seconds(5)), std::nullopt);
  EXPECT_TRUE(cache.Put("192.0.2.2", "b2.example", seconds(60), 2, t0 + seconds(5))) << "a known address is updated";
  EXPECT_TRUE(cache.Put("192.0.2.3", "c.example", seconds(60), 2, t0 + seconds(11))) << "the expired one made room";
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get("192.0.2.1", t0 + seconds(11)), std::nullopt);
}

}  // namespace
}  // namespace sluice::net
