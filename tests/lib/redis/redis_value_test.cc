// tests/lib/redis/redis_value_test.cc
//
// Replies as hiredis's reader parses them (RESP2 bytes in, a RedisValue out, no I/O): every
// type, nesting, integers in strings (HGET), and what is incomplete or not RESP at all.
//
// Never: opens a socket.
#include "lib/redis/redis_value.h"

#include <gtest/gtest.h>

namespace sluice::redis {
namespace {

using Type = RedisValue::Type;

TEST(RedisValue, EveryType) {
  auto v = ParseReply("+OK\r\n");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->type, Type::kStatus);
  EXPECT_EQ(v->str, "OK");
  v = ParseReply("-NOSCRIPT No matching script\r\n");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->is_error());
  EXPECT_EQ(v->str, "NOSCRIPT No matching script");
  v = ParseReply(":-42\r\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->type, Type::kInteger);
  EXPECT_EQ(v->integer, -42);
  v = ParseReply("$-1\r\n");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->type, Type::kNil);
  v = ParseReply(std::string("$5\r\na\0b\r\n\r\n", 11));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->type, Type::kString);
  EXPECT_EQ(v->str, std::string("a\0b\r\n", 5));
}

TEST(RedisValue, NestedArrays) {
  auto v = ParseReply("*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n:7\r\n");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->type, Type::kArray);
  ASSERT_EQ(v->elements.size(), 3u);
  EXPECT_EQ(v->elements[0].integer, 1);
  ASSERT_EQ(v->elements[1].elements.size(), 2u);
  EXPECT_EQ(v->elements[1].elements[0].str, "x");
  EXPECT_EQ(v->elements[1].elements[1].type, Type::kNil);
  EXPECT_EQ(v->DebugString(), "[(integer) 1, [\"x\", (nil)], (integer) 7]");
}

TEST(RedisValue, IntegersFromStringsOnly) {
  EXPECT_EQ(*ParseReply("$2\r\n12\r\n")->AsInteger(), 12);
  EXPECT_EQ(*ParseReply(":3\r\n")->AsInteger(), 3);
  EXPECT_FALSE(ParseReply("$2\r\nxy\r\n")->AsInteger().ok());
  EXPECT_FALSE(ParseReply("$-1\r\n")->AsInteger().ok());
}

TEST(RedisValue, IncompleteAndBrokenInput) {
  EXPECT_EQ(ParseReply("*2\r\n:1\r\n").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ParseReply("$10\r\nabc").status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ParseReply("?what\r\n").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::redis
