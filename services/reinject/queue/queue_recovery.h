// services/reinject/queue/queue_recovery.h
//
// Start-up recovery of the queue, before the first message is accepted or delivered. Every
// segment is read from the oldest to the newest, every frame checked; the last frame of
// each id wins (a remove frame ends the entry). Then every entry is accounted for:
//   - a live record that names its own id, has a recipient and whose content is where it
//     says (inline in a sound frame, or large/<ID> of the recorded size) is indexed in the
//     state it was written in (an entry that was being delivered is simply due again);
//   - a record that fails those checks goes to corrupt/<ID> (the record, its last_error
//     saying why), a remove frame ends it in the log, and a warning names it;
//   - bytes of a segment that are not a sound frame (a torn write at the end, or damage) go
//     to corrupt/<segment>.<offset> with a warning, once; reading goes on at the next sound
//     frame, and the entry they belonged to keeps its previous sound record, if any;
//   - a large/ file no live record refers to (a crash before its commit) is deleted;
//   - every file in corrupt/ is indexed as CORRUPT (listed, deletable by operators);
//   - a hand-off mark after an entry's last record (frame type 3) keeps its peer in the
//     index: the entry is not scheduled until the peer has said whether it has it; a record
//     frame's kFrameFlagReceived (handed over by a peer) is kept in the index too.
//
// Never: deletes a record frame's bytes without a copy in corrupt/; stops on a bad entry;
// leaves a problem unlogged.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "services/reinject/queue/group_commit.h"
#include "services/reinject/queue/queue_index.h"
#include "services/reinject/queue/queue_layout.h"
#include "services/reinject/queue/segment_log.h"

namespace sluice::reinject {

struct RecoveryReport {
  std::array<uint64_t, 6> recovered{};  // by QueueState (CORRUPT: entries found in corrupt/)
  uint64_t orphan_data_deleted = 0;     // large/ files without a record
  uint64_t moved_to_corrupt = 0;        // entries and damaged byte ranges put in corrupt/
  uint64_t damaged_ranges = 0;          // ... of them byte ranges that were not frames
  uint64_t segments = 0;                // segment files read
  uint64_t handoff_marked = 0;          // entries on their way to a peer (hand-off marks)
};

// Fills `index` (and the segments' references) from the log. Fails only when a directory
// or a segment cannot be read at all.
absl::StatusOr<RecoveryReport> RecoverQueue(const QueueLayout& layout, SegmentLog& log, GroupCommitter& committer,
                                            QueueIndex& index);

// A free name in corrupt/ for `id`: the id, else <id>.1, <id>.2, ...
std::string CorruptNameFor(const QueueLayout& layout, const std::string& id);

}  // namespace sluice::reinject
