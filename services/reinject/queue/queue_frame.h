// services/reinject/queue/queue_frame.h
//
// The unit of the queue's segment files (segment_log.h): a frame, self-checking so that
// recovery can tell a whole frame from a torn or damaged one anywhere in a file.
//
//   0   "SQF1"
//   4   type (1 byte): 1 record, 2 remove, 3 hand-off mark
//   5   id length (1 byte, 1..64)
//   6   flags (1 byte): kFrameFlagReceived on the record frames of an entry a peer handed over
//   7   0 (reserved)
//   8   payload length (4 bytes, little-endian)
//   12  CRC-32 of the payload
//   16  CRC-32 of bytes 0..15 and the id
//   20  the queue id, then the payload
//
// A record frame's payload is a 4-byte length, a sluice.v1.QueueLogRecord (queue_log.proto)
// of that length, then the message content when it travels inline (the commit of a message
// no larger than the writer's buffer: record and content in one frame, one write). A remove
// frame (tombstone) has no payload: the entry is gone. A hand-off mark's payload is a
// sluice.v1.QueueHandoffMark: the entry is on its way to that peer (handoff_sender.h) and
// must not be delivered here; a later record or remove frame of the id ends the mark. For
// one id, the last record or remove frame in log order wins.
//
// No I/O here (the parser is what a fuzzer would link).
// Never: accepts a frame whose either checksum or length does not match; reads outside the
// bytes it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/v1/queue_log.pb.h"

namespace sluice::reinject {

enum class FrameType : uint8_t { kRecord = 1, kRemove = 2, kHandoffMark = 3 };

// Frame flags.
inline constexpr uint8_t kFrameFlagReceived = 1;  // the entry came from a peer replica (hand-off)

inline constexpr size_t kFrameHeaderBytes = 20;
inline constexpr size_t kMaxFrameIdBytes = 64;
inline constexpr size_t kMaxFramePayloadBytes = size_t{1} << 30;

// Where a frame is: segment file number, offset of the frame in it, size of the frame.
struct FrameLocation {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct ParsedFrame {
  FrameType type;
  uint8_t flags = 0;
  std::string_view id;
  std::string_view payload;
  size_t size = 0;  // header + id + payload
};

// The frame at the start of `bytes`. OUT_OF_RANGE: `bytes` ends inside a frame whose header
// is sound (a torn write at the end of a file); DATA_LOSS: not a frame.
absl::StatusOr<ParsedFrame> ParseFrame(std::string_view bytes);
// The first position >= `from` where a whole frame starts; npos when none.
size_t FindNextFrame(std::string_view bytes, size_t from);

// A record frame for `log` (the id is log.record().queue_id()), with `inline_content` after
// the record (empty when the content is elsewhere, log.content says where).
std::string EncodeRecordFrame(const sluice::v1::QueueLogRecord& log, std::string_view inline_content,
                              uint8_t flags = 0);
std::string EncodeRemoveFrame(std::string_view id);
std::string EncodeHandoffMarkFrame(std::string_view id, const sluice::v1::QueueHandoffMark& mark);
// DATA_LOSS when the payload is not a mark.
absl::StatusOr<sluice::v1::QueueHandoffMark> DecodeHandoffMark(std::string_view payload);

struct RecordPayload {
  sluice::v1::QueueLogRecord log;
  size_t content_offset = 0;  // of the inline content, from the start of the payload
  std::string_view content;   // inline content (empty when elsewhere)
};
// DATA_LOSS when the payload is not a record.
absl::StatusOr<RecordPayload> DecodeRecordPayload(std::string_view payload);

// Where the inline content of a record frame of `id` with a `record_bytes`-long record
// starts, from the start of the frame.
size_t InlineContentOffset(std::string_view id, size_t record_bytes);

}  // namespace sluice::reinject
