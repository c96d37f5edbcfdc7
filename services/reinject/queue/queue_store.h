// services/reinject/queue/queue_store.h
//
// The reinject queue: durable storage of accepted messages in an append-only segment log
// (queue_layout.h, segment_log.h, queue_frame.h), the admission check behind "452 4.3.1",
// and the only code that writes the queue. Three kinds of callers:
//
//   the receiver   Begin() / QueueWriter::Commit(), CheckAdmission() before and after DATA;
//   the scheduler  TakeDue() -> Claim() -> deliver (Content()) -> Finish(), Wakeup();
//   operators      Get, List, Hold, Release, Delete, Flush (the sluice.v1.Queue service);
//   whole entries  BeginIngest() -> QueueWriter::CommitWhole(): an entry of the earlier
//                  layout (queue_import.h) or handed over by a peer, under its own id.
//
// A state change appends a record frame (durable before the call returns: a recipient once
// recorded delivered is never delivered again because of a crash); an entry's end (every
// recipient done, or deleted) appends a remove frame that needs no sync of its own. Claiming
// an entry for delivery writes nothing: "active" lives in memory, and at the next start an
// entry that was active is simply due again. The index (queue_index.h) is rebuilt from the
// log at start (queue_recovery.h); Compact() moves the live entries out of old segments so
// that the disk holds little more than the live entries.
//
// An entry being worked on is "busy" in the index; operator calls on a busy entry leave a
// request (hold, delete) that the holder applies when it finishes, so a delivery and an
// operator never change one entry at once.
//
// Threading: every method is thread-safe. Begin/Append/CheckAdmission/TakeDue are cheap and
// may run on io threads; Claim may read a record from disk, and the calls that change an
// entry wait for a sync: those belong on a blocking pool or an admin thread. Destroy the
// store before the io_context its commits resume on.
//
// Never: loses an entry it reported committed; drops bytes it cannot read without putting
// them in corrupt/ and saying so; lets two callers change one entry at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/reinject/queue/clock.h"
#include "services/reinject/queue/disk_space.h"
#include "services/reinject/queue/group_commit.h"
#include "services/reinject/queue/message_content.h"
#include "absl/container/flat_hash_set.h"
#include "services/reinject/queue/queue_id.h"
#include "services/reinject/queue/queue_import.h"
#include "services/reinject/queue/queue_index.h"
#include "services/reinject/queue/queue_layout.h"
#include "services/reinject/queue/queue_limits.h"
#include "services/reinject/queue/queue_recovery.h"
#include "services/reinject/queue/queue_writer.h"
#include "services/reinject/queue/segment_log.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct QueueMetrics;

struct QueueStoreOptions {
  std::string queue_dir;
  LimitsSource limits;                     // null: the defaults
  const Clock* clock = &SystemClock();
  QueueMetrics* metrics = nullptr;         // optional
  size_t writer_buffer_bytes = 64 * 1024;  // memory per message being written; larger spill to large/
  size_t commit_max_batch = 256;
  uint64_t segment_bytes = 64 << 20;       // a new segment file past this size
  // Compact() moves the live entries out of the oldest segment once there are this many.
  size_t compact_at_segments = 4;
  // How often the store's maintenance thread compacts (0: never; tests call Compact()).
  absl::Duration maintenance_interval = absl::Seconds(1);
  // Free disk space is read at most this often (disk_space.h); the admission check in between
  // takes what the queue wrote off the last figure.
  absl::Duration disk_free_refresh = absl::Seconds(1);
  // Tests: called by the earlier layout's import after each entry's commit ("committed", how
  // many so far) and once before the old files are removed ("removing", how many imported).
  std::function<void(std::string_view step, uint64_t n)> import_hook;
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
  // delivery: a commit (not held), a release, a flush.
  void SetWakeup(std::function<void()> wakeup);
  // Up to `max` entries due at `now`, oldest first, each now busy for the caller.
  std::vector<std::string> TakeDue(absl::Time now, size_t max);
  bool HasDue(absl::Time now) const;
  absl::Time NextDue() const;  // InfiniteFuture: nothing scheduled
  // The record of a taken entry, which is active from now on. On error the entry is no
  // longer the caller's: NOT_FOUND (deleted meanwhile), FAILED_PRECONDITION (held
  // meanwhile), DATA_LOSS (moved to corrupt/).
  absl::StatusOr<sluice::v1::QueueRecord> Claim(const std::string& id);
  // Ends the caller's work on an entry with its updated record: removed when every recipient
  // is delivered or bounced (or an operator deleted it meanwhile); otherwise the record is
  // written durably in state record.state (DEFERRED, due at next_attempt_at; ACTIVE, due
  // now), or HOLD when an operator held it meanwhile. Returns the state it ended in
  // (UNSPECIFIED: removed). On an I/O error the entry stays active with its old record and
  // is due again after `retry_after`.
  absl::StatusOr<sluice::v1::QueueState> Finish(const std::string& id, sluice::v1::QueueRecord record,
                                                absl::Duration retry_after = absl::Minutes(5));
  // Claim and Finish for the cases that need no disk (callable on an io thread): a fresh
  // entry with no operator request pending; an entry whose recipients are all done and
  // whose content is in the log. UNAVAILABLE when the call needs the disk: use Claim/Finish.
  absl::StatusOr<sluice::v1::QueueRecord> ClaimInMemory(const std::string& id);
  absl::StatusOr<sluice::v1::QueueState> FinishInMemory(const std::string& id, const sluice::v1::QueueRecord& record);
  // Gives a taken entry back unchanged (due now).
  void Unclaim(const std::string& id);
  // The content of a live entry, readable until the handle is dropped.
  absl::StatusOr<MessageContent> Content(const std::string& id) const;

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

  // ---- taking in whole entries: the earlier layout's import, a peer's hand-off ----
  enum class IngestOrigin { kImport, kPeer };
  // Begins taking in the entry `id` whole, under its own id, state and record (the writer's
  // CommitWhole). ALREADY_EXISTS when the queue holds the id; UNAVAILABLE while it is being
  // taken in by another call; INVALID_ARGUMENT for a bad id.
  absl::StatusOr<std::unique_ptr<QueueWriter>> BeginIngest(const std::string& id, IngestOrigin origin, bool retry);

  // ---- handing entries to a peer replica (queue_store_handoff.cc, handoff/) ----
  // Takes idle entries (incoming, active, deferred, hold; not marked) for a transfer: busy
  // for the caller until EndHandoff. `ids` empty: every such entry, oldest first; otherwise
  // those of `ids` that can go (the others are added to `skipped`).
  std::vector<std::string> TakeForHandoff(const std::vector<std::string>& ids, std::vector<std::string>* skipped);
  // Takes the idle entries that carry a hand-off mark (a transfer without an answer).
  std::vector<std::pair<std::string, sluice::v1::QueueHandoffMark>> TakeMarked();
  size_t MarkedCount() const;
  // Appends a hand-off mark for each taken entry and waits until they are synced (normally
  // one sync for all): from then on the entry is not scheduled here, even after a restart.
  absl::Status MarkHandoff(const std::vector<std::string>& ids, const sluice::v1::QueueHandoffMark& mark);
  // A taken entry whole: its record (state as indexed) and its content.
  absl::StatusOr<std::pair<sluice::v1::QueueRecord, MessageContent>> ReadForHandoff(const std::string& id);
  // kSent: the peer has it durably -- removed here. kNotSent: the peer certainly has not --
  // any mark ended, the entry is as before. kUnknown: sent without an answer -- it stays
  // marked (never delivered here) until asked after again.
  enum class HandoffEnd { kSent, kNotSent, kUnknown };
  void EndHandoff(const std::string& id, HandoffEnd end, const std::string& peer);

  // ---- upkeep ----
  // Moves the live, idle entries of the oldest segment to the active one when the log has
  // compact_at_segments segments or more (so the oldest can be removed). Returns how many
  // entries moved. Runs on the maintenance thread every maintenance_interval.
  size_t Compact();

  // ---- status ----
  QueueCounters Counters() const;  // also refreshes the gauges
  const RecoveryReport& recovery() const { return recovery_; }
  const ImportReport& import_report() const { return import_; }
  const GroupCommitter& committer() const { return *committer_; }
  const SegmentLog& log() const { return *log_; }
  const std::string& queue_dir() const { return layout_->root(); }
  const Clock& clock() const { return *clock_; }
  DiskSpace& disk_space() const { return *disk_space_; }

 private:
  friend class QueueWriter;
  friend struct QueueStoreCommitHook;
  friend absl::StatusOr<ImportReport> ImportEarlierLayout(QueueStore& store);
  QueueStore(QueueStoreOptions options, std::unique_ptr<QueueLayout> layout);

  void SubmitCommit(CommitJob job);
  void OnCommitted(std::shared_ptr<const sluice::v1::QueueRecord> record, FrameLocation at, uint64_t inline_bytes,
                   bool spilled);
  void OnCommitFailed(const std::string& id);
  // The index entry of a record just committed at `at` (takes the content's reference).
  IndexEntry EntryOfCommit(const sluice::v1::QueueRecord& record, FrameLocation at, uint64_t inline_bytes,
                           bool spilled);
  // A whole entry committed (CommitWhole): indexed in its own state; not fresh (a delivery
  // may have been made of it elsewhere or before).
  void OnIngested(const sluice::v1::QueueRecord& record, FrameLocation at, uint64_t inline_bytes, bool spilled,
                  uint8_t flags);
  void OnIngestEnded(const std::string& id);  // committed, failed or abandoned
  // queue_import.cc: an old entry into corrupt/ in today's form; "" when already there.
  std::string ImportToCorrupt(const std::string& id, sluice::v1::QueueRecord record, const std::string& data,
                              std::string_view why, bool* failed);
  void AddUncommitted(int64_t delta) { uncommitted_bytes_.fetch_add(delta); }
  void AddWritten(uint64_t bytes) { disk_space_->Wrote(bytes); }
  void UpdateGauges() const;  // with mu_ held
  absl::Status Admission(uint64_t size_hint, bool count_refusal) const;
  void Wake();
  // Ends the caller's hold on a busy entry: applies `change` to its index entry, then any
  // request an operator left meanwhile (delete, hold), and returns the state it ended in
  // (UNSPECIFIED: removed).
  sluice::v1::QueueState Settle(const std::string& id, std::function<void(IndexEntry&)> change);
  // Copies what is left of a busy entry to corrupt/, ends it in the log, settles it CORRUPT.
  void MarkCorrupt(const std::string& id, const absl::Status& why);
  // Drops the segment references an entry holds.
  void ReleaseLocation(const IndexEntry& e);
  // Ends an entry that is busy for the caller: a remove frame, its index entry erased. With
  // `wait` (an operator's delete) the remove frame is synced before it returns; without (a
  // delivered entry) it rides along with the next batch that syncs.
  void RemoveEntry(const std::string& id, const IndexEntry& entry, std::string_view why, bool wait);
  // The record of a live entry as on disk (or as committed, while fresh).
  absl::StatusOr<sluice::v1::QueueRecord> ReadRecord(const IndexEntry& e) const;
  // Writes a busy entry's record durably with `edit` applied and state `to`, and moves the
  // entry's location to the new frame.
  absl::Status RewriteRecord(const std::string& id, sluice::v1::QueueState to,
                             const std::function<void(sluice::v1::QueueRecord&)>& edit,
                             const sluice::v1::QueueRecord* replacement = nullptr);
  // Reads an entry's record for Get/List; a stand-in naming the problem when unreadable.
  absl::StatusOr<sluice::v1::QueueRecord> ReadForAdmin(const std::string& id) const;
  void MaintenanceLoop();

  QueueStoreOptions options_;
  const Clock* clock_;
  std::unique_ptr<QueueLayout> layout_;
  std::unique_ptr<SegmentLog> log_;
  std::unique_ptr<GroupCommitter> committer_;
  QueueIdGenerator ids_;
  RecoveryReport recovery_;
  ImportReport import_;
  std::atomic<int64_t> uncommitted_bytes_{0};
  std::unique_ptr<DiskSpace> disk_space_;

  mutable std::mutex mu_;
  QueueIndex index_;
  absl::flat_hash_set<std::string> ingesting_;  // ids being taken in whole now
  // Ids handed over by a peer whose entry has ended here (delivered, bounced, deleted): a
  // retried transfer of one is answered "already had", never queued again. In memory,
  // dropped wholesale past kMaxReceivedLedger.
  static constexpr size_t kMaxReceivedLedger = 1 << 20;
  absl::flat_hash_set<std::string> received_ended_;
  std::function<void()> wakeup_;

  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool stopping_ = false;
  std::thread maintenance_;
};

// The group committer's way back into the store (used by QueueWriter::Commit).
struct QueueStoreCommitHook {
  static void Submit(QueueStore& store, CommitJob job) { store.SubmitCommit(std::move(job)); }
  static void Ingested(QueueStore& store, const sluice::v1::QueueRecord& record, FrameLocation at,
                       uint64_t inline_bytes, bool spilled, uint8_t flags) {
    store.OnIngested(record, at, inline_bytes, spilled, flags);
  }
  static void IngestEnded(QueueStore& store, const std::string& id) { store.OnIngestEnded(id); }
  static void Committed(QueueStore& store, std::shared_ptr<const sluice::v1::QueueRecord> record, FrameLocation at,
                        uint64_t inline_bytes, bool spilled) {
    store.OnCommitted(std::move(record), at, inline_bytes, spilled);
  }
  static void Failed(QueueStore& store, const std::string& id) { store.OnCommitFailed(id); }
};

}  // namespace sluice::reinject
