// services/reinject/queue/queue_record_file.h
//
// The on-disk form of a QueueRecord: a 12-byte frame ("SQR1", payload length and CRC-32 of
// the payload, both little-endian) around the serialized protobuf. Protobuf alone would parse
// a record cut short after any complete field (a torn write losing recipients would look
// valid); the frame makes every truncation or flipped byte a DATA_LOSS, and recovery moves
// such a record to corrupt/.
//
// Never: accepts a record whose length or checksum does not match; writes a record in place
// (always tmp/ + fsync + rename).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/reinject/queue/queue_layout.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

std::string EncodeRecord(const sluice::v1::QueueRecord& record);
// DATA_LOSS when the frame, the checksum or the protobuf is bad.
absl::StatusOr<sluice::v1::QueueRecord> DecodeRecord(std::string_view bytes);

// Reads and decodes DIR/<id>. NOT_FOUND when absent, DATA_LOSS when unreadable.
absl::StatusOr<sluice::v1::QueueRecord> ReadRecord(const QueueLayout& layout, QueueDir dir,
                                                   std::string_view id);

// Writes `bytes` to tmp/<id> and fsyncs the file; the caller renames it into place.
absl::Status WriteTmpRecord(const QueueLayout& layout, std::string_view id, std::string_view bytes);

// Durably replaces DIR/<id> with `record`: tmp/<id>, fsync, rename over DIR/<id>, fsync DIR.
absl::Status ReplaceRecord(const QueueLayout& layout, QueueDir dir, std::string_view id,
                           const sluice::v1::QueueRecord& record);

}  // namespace sluice::reinject
