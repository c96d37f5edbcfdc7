// services/reinject/queue/queue_import.h
//
// The upgrade from the earlier queue layout (one record file per message, before the segment
// log) -- taken into the log at start instead of refused:
//
//   QUEUE_DIR/data/<ID>                              the message
//   QUEUE_DIR/{incoming,active,deferred,hold}/<ID>   its QueueRecord: "SQR1", length and CRC-32
//                                                    (little-endian) of the protobuf, then it;
//                                                    the directory is its state
//   QUEUE_DIR/corrupt/<ID>[.N]                       records the earlier recovery set aside
//                                                    (their data in data/<ID>)
//   QUEUE_DIR/tmp/                                   records being written
//
// ImportEarlierLayout runs inside QueueStore::Open, after the log's own recovery and before
// anything is received or delivered:
//
//   1. each entry of the state directories is committed to the log whole (QueueStore::
//      BeginIngest: its id, state, record and content byte for byte), many per sync; an id the
//      log holds already (imported by a start that died after committing it) is left alone;
//   2. an entry that cannot be queued -- its record does not decode, names another id, has no
//      recipient, its data file is missing or of another size, or its id is in two state
//      directories -- goes to corrupt/<ID> in today's form (a record frame saying why in
//      last_error, with the data inline when there is some), and an event=queue_corrupt
//      warning names it; the earlier recovery's own corrupt/ files are rewritten so too;
//   3. only when every commit of step 1 is synced are the old files removed (records, data,
//      tmp/), each directory fsynced, the directories removed, QUEUE_DIR fsynced.
//
// A crash in step 1 or 2 leaves every old file: the next start imports what the log lacks. A
// crash in step 3 leaves old files whose ids the log holds: skipped, then removed. Nothing is
// delivered before the import is over, so no entry can leave the log and come back from an
// old file: nothing lost, nothing twice.
//
// Never: removes an old file before its entry is durable in the log; imports an id twice;
// drops a record or data file it could not import without a copy in corrupt/.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace sluice::reinject {

class QueueStore;

struct ImportReport {
  bool found = false;          // the directory held the earlier layout
  uint64_t imported = 0;       // entries committed to the log
  uint64_t already_in_log = 0;  // ... skipped: imported by an earlier start
  uint64_t to_corrupt = 0;     // entries (and old corrupt/ files) put in corrupt/ in today's form
  uint64_t files_removed = 0;  // old files removed once the import was durable
};

// True when QUEUE_DIR holds files of the earlier layout.
bool HasEarlierLayout(const std::string& queue_dir);

// Imports QUEUE_DIR's earlier layout into `store` (whose log is open and recovered). Fails
// when an entry cannot be committed (the old files then all stay, for the next start).
absl::StatusOr<ImportReport> ImportEarlierLayout(QueueStore& store);

}  // namespace sluice::reinject
