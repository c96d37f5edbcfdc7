// tests/lib/redis/redis_url_test.cc
//
// redis://HOST:PORT[/DB] as operators write it: names, IPv4, bracketed IPv6, the default port
// and database, and what is refused (another scheme, credentials, a bad port or database).
//
// Never: resolves a name.
#include "lib/redis/redis_url.h"

#include <gtest/gtest.h>

namespace sluice::redis {
namespace {

TEST(RedisUrl, HostPortAndDatabase) {
  auto u = ParseRedisUrl("redis://redis.sluice.svc:6380/2");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "redis.sluice.svc");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->db, 2u);
  EXPECT_EQ(u->ToString(), "redis://redis.sluice.svc:6380/2");
}

TEST(RedisUrl, PortAndDatabaseDefault) {
  auto u = ParseRedisUrl("redis://10.0.0.7");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "10.0.0.7");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0u);
  u = ParseRedisUrl("redis://127.0.0.1:7000/");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->port, 7000);
}

TEST(RedisUrl, BracketedIpv6) {
  auto u = ParseRedisUrl("redis://[::1]:6390/1");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 6390);
  EXPECT_EQ(u->ToString(), "redis://[::1]:6390/1");
  u = ParseRedisUrl("redis://[fd00::5]");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "fd00::5");
  EXPECT_EQ(u->port, 6379);
}

TEST(RedisUrl, RefusesWhatIsNotOne) {
  for (const char* bad : {"", "127.0.0.1:6379", "http://x:1", "redis://", "redis://:6379", "redis://h:0",
                          "redis://h:99999", "redis://h:1/x", "redis://user:secret@h:1", "redis://h:port"}) {
    EXPECT_FALSE(ParseRedisUrl(bad).ok()) << bad;
  }
}

TEST(RedisUrl, TheErrorNamesTheValue) {
  auto u = ParseRedisUrl("redis://h:1/x");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(std::string(u.status().message()).find("redis://h:1/x"), std::string::npos) << u.status();
}

}  // namespace
}  // namespace sluice::redis
