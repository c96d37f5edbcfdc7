// tests/services/reinject/queue/queue_record_file_test.cc -- the framed record format:
// every truncation and every flipped byte is detected.
#include "services/reinject/queue/queue_record_file.h"

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::reinject {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

sluice::v1::QueueRecord Sample() {
  sluice::v1::QueueRecord r;
  r.set_queue_id("0ABC");
  r.set_sender("alice@example.org");
  for (int i = 0; i < 3; ++i) {
    auto* rcpt = r.add_recipients();
    rcpt->set_address("rcpt" + std::to_string(i) + "@example.com");
    rcpt->set_notify("FAILURE");
  }
  r.set_size_bytes(1234);
  return r;
}

TEST(QueueRecordFileTest, EncodeDecodeRoundTrips) {
  auto decoded = DecodeRecord(EncodeRecord(Sample()));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->SerializeAsString(), Sample().SerializeAsString());
}

TEST(QueueRecordFileTest, EveryTruncationIsDataLoss) {
  std::string bytes = EncodeRecord(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THAT(DecodeRecord(bytes.substr(0, n)), StatusIs(absl::StatusCode::kDataLoss)) << "length " << n;
  }
}

TEST(QueueRecordFileTest, EveryFlippedPayloadByteIsDataLoss) {
  std::string bytes = EncodeRecord(Sample());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    EXPECT_THAT(DecodeRecord(bad), StatusIs(absl::StatusCode::kDataLoss)) << "byte " << i;
  }
}

TEST(QueueRecordFileTest, TrailingGarbageIsDataLoss) {
  EXPECT_THAT(DecodeRecord(EncodeRecord(Sample()) + "x"), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace sluice::reinject
