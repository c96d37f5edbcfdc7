// services/reinject/queue/queue_recovery.h
//
// Start-up recovery of the queue directory, before the first message is accepted or
// delivered. Every entry is accounted for:
//   - tmp/ leftovers (records that were never linked) are deleted;
//   - a record in incoming/ active/ deferred/ hold/ that reads back whole, names its own id
//     and whose data file exists with the recorded size is indexed in the state its
//     directory says (active/ entries are simply active again);
//   - a record that does not parse, names another id, has no recipient, or whose data file
//     is missing or short is moved to corrupt/ with a warning;
//   - a data file with no record in any state directory (a crash before commit) is deleted.
//
// Never: deletes a record; crashes or stops on a bad entry; leaves a problem unlogged.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/reinject/queue/queue_index.h"
#include "services/reinject/queue/queue_layout.h"

namespace sluice::reinject {

struct RecoveryReport {
  std::array<uint64_t, 6> recovered{};  // by QueueState (CORRUPT: entries found in corrupt/)
  uint64_t tmp_deleted = 0;
  uint64_t orphan_data_deleted = 0;
  uint64_t moved_to_corrupt = 0;
};

// Fills `index` from the directories. Fails only when a directory cannot be listed.
absl::StatusOr<RecoveryReport> RecoverQueue(const QueueLayout& layout, QueueIndex& index);

// Moves DIR/<id> to corrupt/ (as <id>, or <id>.<n> when that name is taken or when
// `duplicate`: a second record of a live id must not take the id's name), logs why, and
// returns the name it got there.
absl::StatusOr<std::string> MoveToCorrupt(const QueueLayout& layout, QueueDir from,
                                          const std::string& id, std::string_view reason,
                                          bool duplicate = false);

// The data file a record file name belongs to: "ABC" and "ABC.1" (a renamed corrupt
// duplicate) both belong to data/ABC.
std::string DataNameOf(std::string_view record_file);

}  // namespace sluice::reinject
