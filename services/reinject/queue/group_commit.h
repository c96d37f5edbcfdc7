// services/reinject/queue/group_commit.h
//
// Group commit: one committer thread turns the queue writes that arrive together into one
// append to the segment log and one sync. A batch (every job waiting when the thread wakes,
// up to max_batch):
//
//   1. fdatasync the large/<ID> file of each job that has one (a message over the writer's
//      buffer), then large/ once: rare, and only for those jobs;
//   2. encode each job's frame (a record frame with its inline content, a remove frame, or a
//      hand-off mark);
//   3. append all of them to the active segment with one write;
//   4. when any job needs durability (a commit before "250", a rewritten record): one
//      Sync() of the log, normally one fdatasync for the whole batch;
//   5. complete each job with its frame's location, OK or its error.
//
// Remove frames (an entry delivered or deleted) need no sync of their own: they ride along
// with the next batch that syncs. A job that fails at any step gets its error; a record
// frame that was appended but not made durable is cancelled by a remove frame, so a failed
// commit never comes back at the next start.
//
// Never: completes a durable job as OK before its frame is synced; runs a completion while
// holding its lock; blocks the submitting (io) thread on disk I/O.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "services/reinject/queue/segment_log.h"
#include "sluice/v1/queue_log.pb.h"

namespace sluice::reinject {

struct QueueMetrics;

struct CommitJob {
  enum class Kind { kRecord, kRemove, kHandoffMark };
  Kind kind = Kind::kRecord;
  std::string id;                  // the queue id (kRemove, kHandoffMark); kRecord takes it from the record
  sluice::v1::QueueLogRecord log;  // kRecord: the record and where its content is (unset: inline)
  std::string inline_content;      // kRecord: the content carried in the frame
  uint8_t flags = 0;               // kRecord: frame flags (kFrameFlagReceived)
  sluice::v1::QueueHandoffMark mark;  // kHandoffMark (its frame holds a segment reference, as a record's)
  int spill_fd = -1;               // large/<ID> to make durable first; the committer closes it
  bool durable = true;             // complete only once synced
  // Runs on the committer thread once the outcome is known. For kRecord on success, the
  // location holds one segment reference (SegmentLog::Append) that the callee now owns.
  absl::AnyInvocable<void(absl::Status, FrameLocation)> done;
};

class GroupCommitter {
 public:
  struct Options {
    size_t max_batch = 256;
  };
  GroupCommitter(SegmentLog& log, const QueueLayout& layout, QueueMetrics* metrics, Options options);
  // Finishes every submitted job, then joins the thread.
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Thread-safe; returns at once.
  void Submit(CommitJob job);
  // Submits and waits (not on an io thread): the job's status and location.
  std::pair<absl::Status, FrameLocation> SubmitAndWait(CommitJob job);

  uint64_t batches() const;  // batches written so far
  uint64_t commits() const;  // jobs finished so far, OK or not
  uint64_t synced_batches() const;  // batches that synced (one Sync each)

 private:
  void Run();
  void CommitBatch(std::vector<CommitJob>& batch);

  SegmentLog& log_;
  const QueueLayout& layout_;
  QueueMetrics* metrics_;
  Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<CommitJob> pending_;
  bool stopping_ = false;
  uint64_t batches_ = 0;
  uint64_t commits_ = 0;
  uint64_t synced_batches_ = 0;
  std::thread thread_;
};

}  // namespace sluice::reinject
