// services/reinject/queue/queue_store.h
//
// The reinject queue: durable storage of accepted messages (see queue_layout.h for the
// directories), the admission check behind "452 4.3.1", and the only code that changes the
// queue's files. Three kinds of callers:
//
//   the receiver   Begin() / QueueWriter::Commit(), CheckAdmission() before and after DATA;
//   the scheduler  TakeDue() -> Claim() -> deliver -> Finish(), Wakeup() to hear of new work;
//   operators      Get, List, Hold, Release, Delete, Flush (the sluice.v1.Queue service).
//
// An entry being worked on is "busy" in the index; operator calls on a busy entry leave a
// request (hold, delete) that the holder applies when it finishes, so a delivery and an
// operator never move the same files at once.
//
// Threading: every method is thread-safe. Begin/Append/CheckAdmission are cheap and may run
// on io threads; the others do blocking disk I/O (renames, fsyncs) and belong on a blocking
// pool or an admin thread. Destroy the store before the io_context its commits resume on.
//
// Never: loses an entry it reported committed; deletes a record that could still be read
// (unreadable ones go to corrupt/); lets two callers move one entry's files at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/reinject/queue/clock.h"
#include "services/reinject/queue/group_commit.h"
#include "services/reinject/queue/queue_id.h"
#include "services/reinject/queue/queue_index.h"
#include "services/reinject/queue/queue_layout.h"
#include "services/reinject/queue/queue_limits.h"
#include "services/reinject/queue/queue_recovery.h"
#include "services/reinject/queue/queue_writer.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct QueueMetrics;

struct QueueStoreOptions {
  std::string queue_dir;
  LimitsSource limits;                     // null: the defaults
  const Clock* clock = &SystemClock();
  QueueMetrics* metrics = nullptr;         // optional
  size_t writer_buffer_bytes = 64 * 1024;  // memory per message being written
  size_t commit_max_batch = 256;
};

struct QueueCounters {
  std::array<uint64_t, 6> messages{};  // by QueueState
  std::array<uint64_t, 6> bytes{};
  uint64_t total_bytes = 0;
  absl::Duration oldest_age = absl::ZeroDuration();  // of entries that are not corrupt
  uint64_t disk_free_bytes = 0;
};

struct QueueListFilter {
  sluice::v1::QueueState state = sluice::v1::QUEUE_STATE_UNSPECIFIED;  // any
  std::string sender;     // substring
  std::string recipient;  // substring of any recipient
  absl::Duration min_age = absl::ZeroDuration();
  size_t limit = 1000;
};

struct QueueListResult {
  std::vector<sluice::v1::QueueRecord> records;
  uint64_t total_messages = 0;  // matches before the limit
  uint64_t total_bytes = 0;
};

class QueueStore {
 public:
  // Opens (creating when needed) and recovers the queue directory.
  static absl::StatusOr<std::unique_ptr<QueueStore>> Open(QueueStoreOptions options);
  ~QueueStore();
  QueueStore(const QueueStore&) = delete;
  QueueStore& operator=(const QueueStore&) = delete;

  // ---- receiving ----
  absl::StatusOr<std::unique_ptr<QueueWriter>> Begin();
  // RESOURCE_EXHAUSTED when the queue plus size_hint would be over queue_max_bytes, or the
  // disk's free space minus size_hint is below queue_min_free_bytes: answer 452 4.3.1.
  absl::Status CheckAdmission(uint64_t size_hint) const;
  // The same check for status and health (nothing is being refused): counts no refusal.
  absl::Status AdmissionState() const;

  // ---- the scheduler ----
  // Called (on whatever thread made the change) whenever an entry becomes eligible for
  // delivery: a commit into incoming/, a release, a flush.
  void SetWakeup(std::function<void()> wakeup);
  // Up to `max` entries due at `now`, oldest first, each now busy for the caller.
  std::vector<std::string> TakeDue(absl::Time now, size_t max);
  bool HasDue(absl::Time now) const;
  absl::Time NextDue() const;  // InfiniteFuture: nothing scheduled
  // Reads the record of a taken entry and moves it to active/. On error the entry is no
  // longer the caller's: NOT_FOUND (deleted meanwhile), FAILED_PRECONDITION (held
  // meanwhile), DATA_LOSS (moved to corrupt/).
  absl::StatusOr<sluice::v1::QueueRecord> Claim(const std::string& id);
  // Ends the caller's work on an entry with its updated record: removed when every recipient
  // is delivered or bounced (or an operator deleted it meanwhile); otherwise rewritten
  // durably and moved to the directory of record.state (DEFERRED, due at next_attempt_at;
  // ACTIVE, due now), or to hold/ when an operator held it meanwhile. Returns the state it
  // ended in (UNSPECIFIED: removed). On an I/O error the entry stays active with its old
  // record and is due again after `retry_after`.
  absl::StatusOr<sluice::v1::QueueState> Finish(const std::string& id, sluice::v1::QueueRecord record,
                                                absl::Duration retry_after = absl::Minutes(5));
  // Gives a taken entry back unchanged (due now).
  void Unclaim(const std::string& id);
  std::string DataPath(const std::string& id) const;

  // ---- operators ----
  // NOT_FOUND for an unknown id; FAILED_PRECONDITION when the call does not apply (release
  // of an entry that is not held, hold or flush of a corrupt one).
  absl::StatusOr<sluice::v1::QueueEntry> Get(const std::string& id) const;
  QueueListResult List(const QueueListFilter& filter) const;
  absl::Status Hold(const std::string& id, const std::string& reason);
  absl::Status Release(const std::string& id);
  absl::Status Delete(const std::string& id);
  absl::Status Flush(const std::string& id);
  // Ids in `state` (UNSPECIFIED: all), oldest first.
  std::vector<std::string> Ids(sluice::v1::QueueState state) const;

  // ---- status ----
  QueueCounters Counters() const;  // also refreshes the gauges
  const RecoveryReport& recovery() const { return recovery_; }
  const GroupCommitter& committer() const { return *committer_; }
  const std::string& queue_dir() const { return layout_->root(); }
  const Clock& clock() const { return *clock_; }

 private:
  friend class QueueWriter;
  friend struct QueueStoreCommitHook;
  QueueStore(QueueStoreOptions options, std::unique_ptr<QueueLayout> layout);

  void SubmitCommit(CommitJob job);
  void OnCommitted(const sluice::v1::QueueRecord& record);
  void AddUncommitted(int64_t delta) { uncommitted_bytes_.fetch_add(delta); }
  void UpdateGauges() const;  // with mu_ held
  absl::Status Admission(uint64_t size_hint, bool count_refusal) const;
  void Wake();
  // Ends the caller's hold on a busy entry: applies `change` to its index entry, then any
  // request an operator left meanwhile (delete, hold), and returns the state it ended in
  // (UNSPECIFIED: removed).
  sluice::v1::QueueState Settle(const std::string& id, std::function<void(IndexEntry&)> change);
  // Moves the record of a busy entry to corrupt/ and settles it there.
  void MarkCorrupt(const std::string& id, QueueDir dir, const absl::Status& why);
  // Removes record and data of an entry that is busy for the caller, and its index entry.
  void RemoveEntry(const std::string& id, const IndexEntry& entry, std::string_view why);
  // Rewrites the record of a busy entry durably and moves it from `from` to `to`.
  absl::Status MoveRecord(const std::string& id, sluice::v1::QueueState from, sluice::v1::QueueState to,
                          const std::function<void(sluice::v1::QueueRecord&)>& edit);
  // Reads an entry's record for Get/List; a stand-in naming the problem when unreadable.
  absl::StatusOr<sluice::v1::QueueRecord> ReadForAdmin(const std::string& id) const;

  QueueStoreOptions options_;
  const Clock* clock_;
  std::unique_ptr<QueueLayout> layout_;
  std::unique_ptr<GroupCommitter> committer_;
  QueueIdGenerator ids_;
  RecoveryReport recovery_;
  std::atomic<int64_t> uncommitted_bytes_{0};

  mutable std::mutex mu_;
  QueueIndex index_;
  std::function<void()> wakeup_;
};

// The group committer's way back into the store (used by QueueWriter::Commit).
struct QueueStoreCommitHook {
  static void Submit(QueueStore& store, CommitJob job) { store.SubmitCommit(std::move(job)); }
  static void Committed(QueueStore& store, const sluice::v1::QueueRecord& record) { store.OnCommitted(record); }
};

}  // namespace sluice::reinject
