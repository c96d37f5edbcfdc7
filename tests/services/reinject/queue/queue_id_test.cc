// tests/services/reinject/queue/queue_id_test.cc -- queue ids: shape, order, uniqueness.
#include "services/reinject/queue/queue_id.h"

#include <set>

#include <gtest/gtest.h>

namespace sluice::reinject {
namespace {

TEST(QueueIdTest, IdsAreSixteenCharactersOfDigitsAndCapitals) {
  QueueIdGenerator gen;
  std::string id = gen.Next();
  EXPECT_EQ(id.size(), QueueIdGenerator::kLength);
  EXPECT_TRUE(QueueIdGenerator::IsValid(id)) << id;
}

TEST(QueueIdTest, IdsStrictlyIncreaseWithinOneGenerator) {
  QueueIdGenerator gen(42);
  std::string last = gen.Next();
  for (int i = 0; i < 20000; ++i) {
    std::string id = gen.Next();
    ASSERT_LT(last, id);
    last = id;
  }
}

TEST(QueueIdTest, GeneratorsOfDifferentRunsDifferEvenAtTheSameMicrosecond) {
  QueueIdGenerator a(1), b(2);
  std::string ia = a.Next(), ib = b.Next();
  EXPECT_NE(ia.substr(10), ib.substr(10));
}

TEST(QueueIdTest, LaterIdsSortAfterEarlierOnesAcrossGenerators) {
  QueueIdGenerator a(999999);
  std::string first = a.Next();
  QueueIdGenerator b(0);
  // Time prefix dominates: b's id minted later sorts later despite the smaller suffix.
  std::string second;
  do {
    second = b.Next();
  } while (second.substr(0, 10) == first.substr(0, 10));
  EXPECT_LT(first, second);
}

TEST(QueueIdTest, IsValidRejectsPathsLowercaseAndEmpty) {
  EXPECT_FALSE(QueueIdGenerator::IsValid(""));
  EXPECT_FALSE(QueueIdGenerator::IsValid("../X"));
  EXPECT_FALSE(QueueIdGenerator::IsValid("abc"));
  EXPECT_FALSE(QueueIdGenerator::IsValid("A/B"));
  EXPECT_FALSE(QueueIdGenerator::IsValid(std::string(33, 'A')));
  EXPECT_TRUE(QueueIdGenerator::IsValid("0AZ9"));
}

}  // namespace
}  // namespace sluice::reinject
