// tests/services/reinject/queue/queue_frame_test.cc -- the frame format of the segment log:
// round trips, every truncation and every flipped byte detected, and the parser finding the
// next sound frame after damage; the received flag and the hand-off mark.
#include "services/reinject/queue/queue_frame.h"

#include <gtest/gtest.h>

#include "lib/status/status_matchers.h"

namespace sluice::reinject {
namespace {

using ::sluice::testing::IsOk;
using ::sluice::testing::StatusIs;

sluice::v1::QueueLogRecord Sample() {
  sluice::v1::QueueLogRecord log;
  auto* r = log.mutable_record();
  r->set_queue_id("0ABCDEFGHIJKLMNO");
  r->set_sender("alice@example.org");
  for (int i = 0; i < 3; ++i) r->add_recipients()->set_address("rcpt" + std::to_string(i) + "@example.com");
  r->set_size_bytes(12);
  return log;
}

TEST(QueueFrameTest, RecordFrameRoundTripsWithInlineContent) {
  std::string frame = EncodeRecordFrame(Sample(), "Subject: x\r\n");
  auto parsed = ParseFrame(frame);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->type, FrameType::kRecord);
  EXPECT_EQ(parsed->id, "0ABCDEFGHIJKLMNO");
  EXPECT_EQ(parsed->size, frame.size());
  auto payload = DecodeRecordPayload(parsed->payload);
  ASSERT_THAT(payload, IsOk());
  EXPECT_EQ(payload->log.record().SerializeAsString(), Sample().record().SerializeAsString());
  EXPECT_EQ(payload->content, "Subject: x\r\n");
  // The content is the end of the frame.
  EXPECT_EQ(frame.substr(frame.size() - 12), "Subject: x\r\n");
}

TEST(QueueFrameTest, TheReceivedFlagTravelsInTheCheckedHeader) {
  std::string frame = EncodeRecordFrame(Sample(), "", kFrameFlagReceived);
  auto parsed = ParseFrame(frame);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->flags, kFrameFlagReceived);
  EXPECT_EQ(ParseFrame(EncodeRecordFrame(Sample(), ""))->flags, 0);
  frame[6] = 0x02;  // an unknown flag: not a frame we wrote
  EXPECT_THAT(ParseFrame(frame), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(QueueFrameTest, HandoffMarkRoundTrips) {
  sluice::v1::QueueHandoffMark mark;
  mark.set_peer("10.0.0.7:9103");
  mark.set_tls_name("sluice-reinject.sluice.svc");
  auto parsed = ParseFrame(EncodeHandoffMarkFrame("0ABC", mark));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->type, FrameType::kHandoffMark);
  EXPECT_EQ(parsed->id, "0ABC");
  auto back = DecodeHandoffMark(parsed->payload);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->peer(), "10.0.0.7:9103");
  EXPECT_EQ(back->tls_name(), "sluice-reinject.sluice.svc");
  EXPECT_THAT(DecodeHandoffMark(""), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(QueueFrameTest, RemoveFrameRoundTrips) {
  auto parsed = ParseFrame(EncodeRemoveFrame("0ABC"));
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->type, FrameType::kRemove);
  EXPECT_EQ(parsed->id, "0ABC");
  EXPECT_TRUE(parsed->payload.empty());
}

TEST(QueueFrameTest, EveryTruncationIsDetected) {
  std::string frame = EncodeRecordFrame(Sample(), "content");
  for (size_t n = 1; n < frame.size(); ++n) {
    EXPECT_FALSE(ParseFrame(std::string_view(frame).substr(0, n)).ok()) << "length " << n;
  }
  // A cut inside the payload of a frame whose header is sound: a torn write.
  EXPECT_THAT(ParseFrame(std::string_view(frame).substr(0, frame.size() - 1)), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(QueueFrameTest, EveryFlippedByteIsDataLoss) {
  std::string frame = EncodeRecordFrame(Sample(), "content");
  for (size_t i = 0; i < frame.size(); ++i) {
    std::string bad = frame;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    EXPECT_FALSE(ParseFrame(bad).ok()) << "byte " << i;
  }
}

TEST(QueueFrameTest, TheNextSoundFrameIsFoundAfterDamage) {
  std::string a = EncodeRecordFrame(Sample(), "one");
  std::string b = EncodeRemoveFrame("0ABCDEFGHIJKLMNO");
  std::string bytes = a + b;
  bytes[30] = static_cast<char>(bytes[30] ^ 0xff);  // inside a
  EXPECT_FALSE(ParseFrame(bytes).ok());
  EXPECT_EQ(FindNextFrame(bytes, 1), a.size());
  EXPECT_EQ(FindNextFrame(std::string(100, '\0'), 0), std::string_view::npos);
}

TEST(QueueFrameTest, RecordWithInlineContentAndAReferenceIsDataLoss) {
  auto log = Sample();
  log.mutable_content()->set_segment(1);
  std::string frame = EncodeRecordFrame(log, "content");
  auto parsed = ParseFrame(frame);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_THAT(DecodeRecordPayload(parsed->payload), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace sluice::reinject
