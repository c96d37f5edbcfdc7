// services/reinject/queue/queue_store.cc -- see queue_store.h. Opening, receiving, the
// scheduler's calls and status; the operator calls are in queue_store_admin.cc, compaction
// in queue_compaction.cc.
#include "services/reinject/queue/queue_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_metrics.h"

namespace sluice::reinject {

absl::StatusOr<std::unique_ptr<QueueStore>> QueueStore::Open(QueueStoreOptions options) {
  auto layout = QueueLayout::Open(options.queue_dir, options.metrics);
  if (!layout.ok()) return layout.status();
  std::unique_ptr<QueueStore> store(new QueueStore(std::move(options), std::move(*layout)));
  if (absl::Status s = store->log_->Open(); !s.ok()) return s;
  auto report = RecoverQueue(*store->layout_, *store->log_, *store->committer_, store->index_);
  if (!report.ok()) return report.status();
  store->recovery_ = *report;
  // A queue of the earlier layout beside the log: taken in before anything else happens.
  auto imported = ImportEarlierLayout(*store);
  if (!imported.ok()) {
    return absl::Status(imported.status().code(),
                        absl::StrCat("importing the earlier queue layout: ", imported.status().message()));
  }
  store->import_ = *imported;
  store->log_->RemoveDead();
  (void)store->Counters();  // publishes the gauges
  if (store->options_.maintenance_interval > absl::ZeroDuration()) {
    QueueStore* s = store.get();
    store->maintenance_ = std::thread([s] { s->MaintenanceLoop(); });
  }
  return store;
}

QueueStore::QueueStore(QueueStoreOptions options, std::unique_ptr<QueueLayout> layout)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()),
      layout_(std::move(layout)) {
  if (options_.writer_buffer_bytes < 4096) options_.writer_buffer_bytes = 4096;
  if (options_.compact_at_segments < 2) options_.compact_at_segments = 2;
  disk_space_ = std::make_unique<DiskSpace>(layout_->fd(QueueDir::kSegments), options_.disk_free_refresh);
  log_ = std::make_unique<SegmentLog>(*layout_, options_.metrics, SegmentLog::Options{options_.segment_bytes});
  committer_ = std::make_unique<GroupCommitter>(*log_, *layout_, options_.metrics,
                                                GroupCommitter::Options{options_.commit_max_batch});
}

QueueStore::~QueueStore() {
  {
    std::lock_guard<std::mutex> lock(maintenance_mu_);
    stopping_ = true;
  }
  maintenance_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  // Finish the commits in flight while the index they report to still exists.
  committer_.reset();
}

void QueueStore::MaintenanceLoop() {
  std::unique_lock<std::mutex> lock(maintenance_mu_);
  while (!stopping_) {
    maintenance_cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.maintenance_interval));
    if (stopping_) break;
    lock.unlock();
    Compact();
    lock.lock();
  }
}

// ---------------------------------------------------------------------------------------
// Receiving

absl::StatusOr<std::unique_ptr<QueueWriter>> QueueStore::Begin() {
  std::string id = ids_.Next();
  if (options_.metrics != nullptr) options_.metrics->received->Increment();
  return std::unique_ptr<QueueWriter>(new QueueWriter(this, std::move(id), options_.writer_buffer_bytes));
}

absl::Status QueueStore::CheckAdmission(uint64_t size_hint) const { return Admission(size_hint, true); }

absl::Status QueueStore::AdmissionState() const { return Admission(0, false); }

absl::Status QueueStore::Admission(uint64_t size_hint, bool count_refusal) const {
  QueueLimits limits = ResolveQueueLimits(options_.limits);
  uint64_t queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued = index_.totals().total_bytes;
  }
  int64_t uncommitted = uncommitted_bytes_.load();
  if (uncommitted > 0) queued += static_cast<uint64_t>(uncommitted);
  if (limits.queue_max_bytes > 0 && queued + size_hint > limits.queue_max_bytes) {
    if (count_refusal && options_.metrics != nullptr) options_.metrics->refused_queue_max_bytes->Increment();
    return absl::ResourceExhaustedError(absl::StrCat("queue full: ", queued, " bytes queued + ", size_hint,
                                                     " > queue_max_bytes ", limits.queue_max_bytes));
  }
  auto free = disk_space_->FreeBytes();
  if (!free.ok()) return absl::UnavailableError(std::string(MessageOf(free.status())));
  if (options_.metrics != nullptr) {
    options_.metrics->disk_free_bytes->Set(static_cast<double>(*free));
    options_.metrics->disk_min_free_bytes->Set(static_cast<double>(limits.queue_min_free_bytes));
  }
  if (*free < limits.queue_min_free_bytes + size_hint) {
    if (count_refusal && options_.metrics != nullptr) options_.metrics->refused_disk_free->Increment();
    return absl::ResourceExhaustedError(absl::StrCat("disk full: ", *free, " bytes free - ", size_hint,
                                                     " < queue_min_free_bytes ", limits.queue_min_free_bytes));
  }
  return absl::OkStatus();
}

void QueueStore::SubmitCommit(CommitJob job) { committer_->Submit(std::move(job)); }

void QueueStore::OnCommitFailed(const std::string& id) { (void)layout_->Unlink(QueueDir::kLarge, id); }

void QueueStore::OnCommitted(std::shared_ptr<const sluice::v1::QueueRecord> fresh, FrameLocation at,
                             uint64_t inline_bytes, bool spilled) {
  const sluice::v1::QueueRecord& record = *fresh;
  IndexEntry e = EntryOfCommit(record, at, inline_bytes, spilled);
  if (record.state() != sluice::v1::HOLD) e.fresh = fresh;
  {
    std::lock_guard<std::mutex> lock(mu_);
    index_.Insert(record.queue_id(), std::move(e));
    UpdateGauges();
  }
  if (options_.metrics != nullptr) options_.metrics->queued->Increment();
  observe::Info("queued")
      .Kv("queue_id", record.queue_id())
      .Kv("session", record.session_id())
      .Kv("from", record.sender())
      .Kv("nrcpt", record.recipients_size())
      .Kv("size", record.size_bytes())
      .Kv("state", QueueStateName(record.state()))
      .Kv("orig_client", record.original_client().client_address());
  if (record.state() != sluice::v1::HOLD) Wake();
}

// ---------------------------------------------------------------------------------------
// The scheduler

IndexEntry QueueStore::EntryOfCommit(const sluice::v1::QueueRecord& record, FrameLocation at, uint64_t inline_bytes,
                                      bool spilled) {
  IndexEntry e;
  e.state = record.state();
  e.size_bytes = record.size_bytes();
  e.arrived_at = FromProtoTime(record.arrived_at());
  e.hold_reason = record.hold_reason();
  e.record_at = at;  // with the reference the append took for us
  if (spilled) {
    e.content.set_spilled(true);
  } else {
    e.content.set_segment(at.segment);
    e.content.set_offset(at.offset + at.size - inline_bytes);
    log_->Ref(at.segment, +1);
  }
  e.content.set_length(record.size_bytes());
  return e;
}

void QueueStore::SetWakeup(std::function<void()> wakeup) {
  std::lock_guard<std::mutex> lock(mu_);
  wakeup_ = std::move(wakeup);
}

void QueueStore::Wake() {
  std::function<void()> wakeup;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wakeup = wakeup_;
  }
  if (wakeup) wakeup();
}

std::vector<std::string> QueueStore::TakeDue(absl::Time now, size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.TakeDue(now, max);
}

bool QueueStore::HasDue(absl::Time now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.HasDue(now);
}

absl::Time QueueStore::NextDue() const {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.NextDue();
}

absl::StatusOr<MessageContent> QueueStore::Content(const std::string& id) const {
  sluice::v1::QueueContentRef ref;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr || p->state == sluice::v1::CORRUPT) return absl::NotFoundError("queue id " + id + " not found");
    ref = p->content;
  }
  if (ref.spilled()) {
    int fd = ::openat(layout_->fd(QueueDir::kLarge), id.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return ErrnoStatus(errno, "open large/" + id);
    return MessageContent(std::make_shared<SharedFd>(fd), 0, ref.length());
  }
  auto file = log_->File(ref.segment());
  if (!file.ok()) return file.status();
  return MessageContent(*std::move(file), ref.offset(), ref.length());
}

absl::StatusOr<sluice::v1::QueueRecord> QueueStore::ReadRecord(const IndexEntry& e) const {
  if (e.fresh) return *e.fresh;
  auto bytes = log_->Read(e.record_at.segment, e.record_at.offset, e.record_at.size);
  if (!bytes.ok()) return absl::DataLossError(absl::StrCat("record: ", bytes.status().message()));
  auto frame = ParseFrame(*bytes);
  if (!frame.ok()) return absl::DataLossError(absl::StrCat("record frame: ", frame.status().message()));
  auto payload = DecodeRecordPayload(frame->payload);
  if (!payload.ok()) return payload.status();
  return std::move(*payload->log.mutable_record());
}

absl::StatusOr<sluice::v1::QueueRecord> QueueStore::Claim(const std::string& id) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    e = *p;
  }
  if (e.pending_delete || e.pending_hold) {
    Settle(id, nullptr);  // applies the operator's request
    return e.pending_delete ? absl::NotFoundError("queue id " + id + " deleted by an operator")
                            : absl::FailedPreconditionError("queue id " + id + " held by an operator");
  }
  auto record = ReadRecord(e);
  if (record.ok() && record->queue_id() != id) {
    record = absl::DataLossError(absl::StrCat("record names queue id ", record->queue_id()));
  }
  if (!record.ok()) {
    MarkCorrupt(id, record.status());
    return absl::DataLossError(absl::StrCat("queue id ", id, ": ", record.status().message()));
  }
  {
    // Nothing to write: an entry that was active is simply due again after a restart.
    std::lock_guard<std::mutex> lock(mu_);
    index_.Update(id, [](IndexEntry& x) {
      x.state = sluice::v1::ACTIVE;
      x.fresh.reset();
    });
    UpdateGauges();
  }
  record->set_state(sluice::v1::ACTIVE);
  return record;
}

absl::StatusOr<sluice::v1::QueueState> QueueStore::Finish(const std::string& id,
                                                          sluice::v1::QueueRecord record,
                                                          absl::Duration retry_after) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    e = *p;
  }
  bool done = true;
  for (const auto& r : record.recipients()) {
    if (r.status() != sluice::v1::RECIPIENT_STATUS_DELIVERED &&
        r.status() != sluice::v1::RECIPIENT_STATUS_BOUNCED) {
      done = false;
    }
  }
  if (done) {
    RemoveEntry(id, e, "done", /*wait=*/false);
    return sluice::v1::QUEUE_STATE_UNSPECIFIED;
  }
  sluice::v1::QueueState target =
      record.state() == sluice::v1::DEFERRED ? sluice::v1::DEFERRED : sluice::v1::ACTIVE;
  // The new recipient statuses are durable before anything else: a delivered recipient is
  // never delivered twice because of a crash here.
  absl::Status s = RewriteRecord(id, target, nullptr, &record);
  if (!s.ok()) {
    observe::Error("queue_update_failed").Kv("queue_id", id).Kv("error", MessageOf(s));
    Settle(id, [&](IndexEntry& x) { x.due_at = clock_->Now() + retry_after; });
    return s;
  }
  absl::Time due = target == sluice::v1::DEFERRED && record.has_next_attempt_at()
                       ? FromProtoTime(record.next_attempt_at())
                       : absl::InfinitePast();
  return Settle(id, [&](IndexEntry& x) {
    x.state = target;
    x.due_at = due;
  });
}

absl::StatusOr<sluice::v1::QueueRecord> QueueStore::ClaimInMemory(const std::string& id) {
  std::shared_ptr<const sluice::v1::QueueRecord> fresh;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr || !p->fresh || p->pending_delete || p->pending_hold || p->fresh->queue_id() != id) {
      return absl::UnavailableError("needs the disk");
    }
    fresh = p->fresh;
    index_.Update(id, [](IndexEntry& x) {
      x.state = sluice::v1::ACTIVE;
      x.fresh.reset();
    });
    UpdateGauges();
  }
  sluice::v1::QueueRecord record = *fresh;
  record.set_state(sluice::v1::ACTIVE);
  return record;
}

absl::StatusOr<sluice::v1::QueueState> QueueStore::FinishInMemory(const std::string& id,
                                                                  const sluice::v1::QueueRecord& record) {
  for (const auto& r : record.recipients()) {
    if (r.status() != sluice::v1::RECIPIENT_STATUS_DELIVERED && r.status() != sluice::v1::RECIPIENT_STATUS_BOUNCED) {
      return absl::UnavailableError("a record to rewrite");
    }
  }
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr || p->content.spilled() || p->state == sluice::v1::CORRUPT) {
      return absl::UnavailableError("needs the disk");
    }
    e = *p;
  }
  RemoveEntry(id, e, "done", /*wait=*/false);
  return sluice::v1::QUEUE_STATE_UNSPECIFIED;
}

void QueueStore::Unclaim(const std::string& id) { Settle(id, nullptr); }

sluice::v1::QueueState QueueStore::Settle(const std::string& id, std::function<void(IndexEntry&)> change) {
  for (;;) {
    bool remove = false, hold = false;
    std::string reason;
    IndexEntry snapshot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool found = index_.Update(id, [&](IndexEntry& x) {
        if (change) change(x);
        remove = x.pending_delete;
        hold = !remove && x.pending_hold && x.state != sluice::v1::HOLD && x.state != sluice::v1::CORRUPT;
        reason = x.hold_reason;
        x.pending_delete = false;
        x.pending_hold = false;
        x.busy = remove || hold;
      });
      if (!found) return sluice::v1::QUEUE_STATE_UNSPECIFIED;
      snapshot = *index_.Find(id);
      UpdateGauges();
    }
    if (remove) {
      RemoveEntry(id, snapshot, "deleted by operator", /*wait=*/true);
      return sluice::v1::QUEUE_STATE_UNSPECIFIED;
    }
    if (!hold) {
      if (snapshot.state == sluice::v1::ACTIVE || snapshot.state == sluice::v1::INCOMING) Wake();
      return snapshot.state;
    }
    absl::Status s = RewriteRecord(id, sluice::v1::HOLD, [&](sluice::v1::QueueRecord& r) { r.set_hold_reason(reason); });
    observe::Info("queue_hold").Kv("queue_id", id).Kv("reason", reason).Kv("error", MessageOf(s));
    change = [ok = s.ok(), reason](IndexEntry& x) {
      if (ok) {
        x.state = sluice::v1::HOLD;
        x.hold_reason = reason;
      }
    };
  }
}

void QueueStore::MarkCorrupt(const std::string& id, const absl::Status& why) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return;
    e = *p;
  }
  // What the log holds of it, for inspection: the record frame as it is on disk.
  auto bytes = log_->Read(e.record_at.segment, e.record_at.offset, e.record_at.size);
  std::string name = CorruptNameFor(*layout_, id);
  absl::Status saved = layout_->WriteNewFile(QueueDir::kCorrupt, name, bytes.ok() ? *bytes : std::string());
  observe::Warn("queue_corrupt")
      .Kv("queue_id", id)
      .Kv("moved_to", absl::StrCat("corrupt/", name))
      .Kv("reason", MessageOf(why))
      .Kv("move_error", MessageOf(saved));
  if (!saved.ok()) {
    absl::Time later = clock_->Now() + absl::Minutes(5);
    Settle(id, [&](IndexEntry& x) { x.due_at = later; });  // looked at again later, not in a loop
    return;
  }
  CommitJob job;
  job.kind = CommitJob::Kind::kRemove;
  job.id = id;
  job.durable = true;
  (void)committer_->SubmitAndWait(std::move(job));
  ReleaseLocation(e);
  if (e.content.spilled()) (void)layout_->Unlink(QueueDir::kLarge, id);
  uint64_t size = bytes.ok() ? bytes->size() : 0;
  Settle(id, [&](IndexEntry& x) {
    x.state = sluice::v1::CORRUPT;
    x.file = name;
    x.size_bytes = size;
    x.pending_hold = false;
    x.fresh.reset();
    x.content.Clear();
    x.record_at = FrameLocation{};
    x.handoff_peer.clear();  // ReleaseLocation let go of any mark
    x.mark_at = FrameLocation{};
  });
}

void QueueStore::ReleaseLocation(const IndexEntry& e) {
  if (!e.handoff_peer.empty() && e.mark_at.segment != 0) log_->Ref(e.mark_at.segment, -1);
  if (e.record_at.segment != 0) log_->Ref(e.record_at.segment, -1);
  if (!e.content.spilled() && e.content.segment() != 0) log_->Ref(e.content.segment(), -1);
}

void QueueStore::RemoveEntry(const std::string& id, const IndexEntry& e, std::string_view why, bool wait) {
  absl::Status s;
  if (e.state == sluice::v1::CORRUPT) {
    s = layout_->Unlink(QueueDir::kCorrupt, e.file.empty() ? id : e.file);
  } else {
    CommitJob job;
    job.kind = CommitJob::Kind::kRemove;
    job.id = id;
    if (e.content.spilled() || wait) {
      // The large file goes only once the remove frame is on disk: a record that outlived
      // its content would come back as corrupt.
      job.durable = true;
      auto [status, at] = committer_->SubmitAndWait(std::move(job));
      s = status;
      if (s.ok() && e.content.spilled()) s = layout_->Unlink(QueueDir::kLarge, id);
      ReleaseLocation(e);
    } else {
      // Rides along with the next batch that syncs; the segments it lets go of are removed
      // only after a sync (SegmentLog::RemoveDead).
      job.durable = false;
      SegmentLog* log = log_.get();
      IndexEntry where = e;
      job.done = [log, where](absl::Status, FrameLocation) {
        if (!where.handoff_peer.empty() && where.mark_at.segment != 0) log->Ref(where.mark_at.segment, -1);
        if (where.record_at.segment != 0) log->Ref(where.record_at.segment, -1);
        if (where.content.segment() != 0) log->Ref(where.content.segment(), -1);
      };
      committer_->Submit(std::move(job));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    index_.Erase(id);
    if (e.received) {
      if (received_ended_.size() >= kMaxReceivedLedger) received_ended_.clear();
      received_ended_.insert(id);
    }
    UpdateGauges();
  }
  observe::Info("removed").Kv("queue_id", id).Kv("reason", why).Kv("error", MessageOf(s));
}

absl::Status QueueStore::RewriteRecord(const std::string& id, sluice::v1::QueueState to,
                                       const std::function<void(sluice::v1::QueueRecord&)>& edit,
                                       const sluice::v1::QueueRecord* replacement) {
  IndexEntry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const IndexEntry* p = index_.Find(id);
    if (p == nullptr) return absl::NotFoundError("queue id " + id + " not found");
    e = *p;
  }
  CommitJob job;
  job.kind = CommitJob::Kind::kRecord;
  job.durable = true;
  job.flags = e.received ? kFrameFlagReceived : 0;
  if (replacement != nullptr) {
    *job.log.mutable_record() = *replacement;
  } else {
    auto record = ReadRecord(e);
    if (!record.ok()) return record.status();
    *job.log.mutable_record() = std::move(*record);
  }
  sluice::v1::QueueRecord& r = *job.log.mutable_record();
  if (edit) edit(r);
  r.set_state(to);
  *job.log.mutable_content() = e.content;
  auto [status, at] = committer_->SubmitAndWait(std::move(job));
  if (!status.ok()) return status;
  // The new frame's reference replaces the old one; it ends a hand-off mark, too.
  if (e.record_at.segment != 0) log_->Ref(e.record_at.segment, -1);
  if (!e.handoff_peer.empty() && e.mark_at.segment != 0) log_->Ref(e.mark_at.segment, -1);
  std::lock_guard<std::mutex> lock(mu_);
  index_.Update(id, [&](IndexEntry& x) {
    x.record_at = at;
    x.fresh.reset();
    x.handoff_peer.clear();  // the new record frame ends any hand-off mark
    x.mark_at = FrameLocation{};
  });
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------
// Status

void QueueStore::UpdateGauges() const {
  if (options_.metrics == nullptr) return;
  const QueueTotals& t = index_.totals();
  for (int s = sluice::v1::INCOMING; s <= sluice::v1::CORRUPT; ++s) {
    options_.metrics->queue_messages[static_cast<size_t>(s)]->Set(static_cast<double>(t.messages[static_cast<size_t>(s)]));
    options_.metrics->queue_bytes[static_cast<size_t>(s)]->Set(static_cast<double>(t.bytes[static_cast<size_t>(s)]));
  }
}

QueueCounters QueueStore::Counters() const {
  QueueCounters c;
  absl::Time oldest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const QueueTotals& t = index_.totals();
    c.messages = t.messages;
    c.bytes = t.bytes;
    c.total_bytes = t.total_bytes;
    oldest = index_.OldestArrival();
    UpdateGauges();
  }
  if (oldest != absl::InfiniteFuture()) c.oldest_age = std::max(absl::ZeroDuration(), clock_->Now() - oldest);
  auto free = disk_space_->FreeBytes();
  if (free.ok()) c.disk_free_bytes = *free;
  if (options_.metrics != nullptr) {
    options_.metrics->oldest_age_seconds->Set(absl::ToDoubleSeconds(c.oldest_age));
    options_.metrics->disk_free_bytes->Set(static_cast<double>(c.disk_free_bytes));
  }
  return c;
}

}  // namespace sluice::reinject
