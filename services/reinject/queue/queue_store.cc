// services/reinject/queue/queue_store.cc -- see queue_store.h. Opening, receiving, the
// scheduler's calls and status; the operator calls are in queue_store_admin.cc.
#include "services/reinject/queue/queue_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_metrics.h"
#include "services/reinject/queue/queue_record_file.h"

namespace sluice::reinject {

absl::StatusOr<std::unique_ptr<QueueStore>> QueueStore::Open(QueueStoreOptions options) {
  auto layout = QueueLayout::Open(options.queue_dir, options.metrics);
  if (!layout.ok()) return layout.status();
  std::unique_ptr<QueueStore> store(new QueueStore(std::move(options), std::move(*layout)));
  auto report = RecoverQueue(*store->layout_, store->index_);
  if (!report.ok()) return report.status();
  store->recovery_ = *report;
  (void)store->Counters();  // publishes the gauges
  return store;
}

QueueStore::QueueStore(QueueStoreOptions options, std::unique_ptr<QueueLayout> layout)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock()),
      layout_(std::move(layout)) {
  if (options_.writer_buffer_bytes < 4096) options_.writer_buffer_bytes = 4096;
  committer_ = std::make_unique<GroupCommitter>(
      *layout_, options_.metrics, GroupCommitter::Options{options_.commit_max_batch});
}

QueueStore::~QueueStore() {
  // Finish the commits in flight while the index they report to still exists.
  committer_.reset();
}

// ---------------------------------------------------------------------------------------
// Receiving

absl::StatusOr<std::unique_ptr<QueueWriter>> QueueStore::Begin() {
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string id = ids_.Next();
    int fd = ::openat(layout_->fd(QueueDir::kData), id.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
      if (options_.metrics != nullptr) options_.metrics->received->Increment();
      return std::unique_ptr<QueueWriter>(new QueueWriter(this, std::move(id), fd, options_.writer_buffer_bytes));
    }
    if (errno != EEXIST) return ErrnoStatus(errno, "create data/" + id);
  }
  return absl::InternalError("no unused queue id after 8 tries");
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
  auto free = layout_->DiskFree();
  if (!free.ok()) return absl::UnavailableError(std::string(MessageOf(free.status())));
  if (options_.metrics != nullptr) options_.metrics->disk_free_bytes->Set(static_cast<double>(*free));
  if (*free < limits.queue_min_free_bytes + size_hint) {
    if (count_refusal && options_.metrics != nullptr) options_.metrics->refused_disk_free->Increment();
    return absl::ResourceExhaustedError(absl::StrCat("disk full: ", *free, " bytes free - ", size_hint,
                                                     " < queue_min_free_bytes ", limits.queue_min_free_bytes));
  }
  return absl::OkStatus();
}

void QueueStore::SubmitCommit(CommitJob job) { committer_->Submit(std::move(job)); }

void QueueStore::OnCommitted(const sluice::v1::QueueRecord& record) {
  IndexEntry e;
  e.state = record.state();
  e.file = record.queue_id();
  e.size_bytes = record.size_bytes();
  e.arrived_at = FromProtoTime(record.arrived_at());
  e.hold_reason = record.hold_reason();
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

std::string QueueStore::DataPath(const std::string& id) const {
  return layout_->Path(QueueDir::kData, id);
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
  QueueDir dir = DirOfState(e.state);
  auto record = ReadRecord(*layout_, dir, id);
  absl::Status problem = record.status();
  if (problem.ok()) {
    auto size = layout_->FileSize(QueueDir::kData, id);
    if (!size.ok()) {
      problem = absl::DataLossError(absl::StrCat("data file: ", size.status().message()));
    } else if (*size != record->size_bytes()) {
      problem = absl::DataLossError(absl::StrCat("data file has ", *size, " bytes, record says ",
                                                 record->size_bytes()));
    }
  }
  if (!problem.ok()) {
    MarkCorrupt(id, dir, problem);
    return absl::DataLossError(absl::StrCat("queue id ", id, ": ", problem.message()));
  }
  if (e.state != sluice::v1::ACTIVE) {
    // No fsync: after a crash the record is in one directory or the other, both fine.
    absl::Status s = layout_->Rename(dir, id, QueueDir::kActive);
    if (!s.ok()) {
      Settle(id, [&](IndexEntry& x) { x.due_at = clock_->Now() + absl::Minutes(1); });
      return s;
    }
    std::lock_guard<std::mutex> lock(mu_);
    index_.Update(id, [](IndexEntry& x) { x.state = sluice::v1::ACTIVE; });
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
    RemoveEntry(id, e, "done");
    return sluice::v1::QUEUE_STATE_UNSPECIFIED;
  }
  sluice::v1::QueueState target =
      record.state() == sluice::v1::DEFERRED ? sluice::v1::DEFERRED : sluice::v1::ACTIVE;
  record.set_state(target);
  QueueDir dir = DirOfState(e.state);
  // The new recipient statuses must be durable before anything else: a delivered recipient
  // is never delivered twice because of a crash here.
  absl::Status s = ReplaceRecord(*layout_, dir, id, record);
  if (s.ok() && target != e.state) s = layout_->Rename(dir, id, DirOfState(target));
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
      RemoveEntry(id, snapshot, "deleted by operator");
      return sluice::v1::QUEUE_STATE_UNSPECIFIED;
    }
    if (!hold) {
      if (snapshot.state == sluice::v1::ACTIVE || snapshot.state == sluice::v1::INCOMING) Wake();
      return snapshot.state;
    }
    absl::Status s = MoveRecord(id, snapshot.state, sluice::v1::HOLD,
                                [&](sluice::v1::QueueRecord& r) { r.set_hold_reason(reason); });
    observe::Info("queue_hold").Kv("queue_id", id).Kv("reason", reason).Kv("error", MessageOf(s));
    change = [ok = s.ok(), reason](IndexEntry& x) {
      if (ok) {
        x.state = sluice::v1::HOLD;
        x.hold_reason = reason;
      }
    };
  }
}

void QueueStore::MarkCorrupt(const std::string& id, QueueDir dir, const absl::Status& why) {
  auto name = MoveToCorrupt(*layout_, dir, id, MessageOf(why));
  absl::Time later = clock_->Now() + absl::Minutes(5);
  Settle(id, [&](IndexEntry& x) {
    if (!name.ok()) {
      x.due_at = later;  // left where it is; looked at again later, not in a loop
      return;
    }
    x.state = sluice::v1::CORRUPT;
    x.file = *name;
    x.pending_hold = false;
  });
}

void QueueStore::RemoveEntry(const std::string& id, const IndexEntry& e, std::string_view why) {
  QueueDir dir = DirOfState(e.state);
  std::string file = e.file.empty() ? id : e.file;
  std::string data = DataNameOf(file);
  absl::Status s = layout_->Unlink(dir, file);
  bool data_shared = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A corrupt duplicate (ID.1) shares data/ID with the live entry ID: keep it for that one.
    data_shared = data != id && index_.Find(data) != nullptr;
  }
  if (s.ok() && !data_shared) s = layout_->Unlink(QueueDir::kData, data);
  {
    std::lock_guard<std::mutex> lock(mu_);
    index_.Erase(id);
    UpdateGauges();
  }
  observe::Info("removed").Kv("queue_id", id).Kv("reason", why).Kv("error", MessageOf(s));
}

absl::Status QueueStore::MoveRecord(const std::string& id, sluice::v1::QueueState from,
                                    sluice::v1::QueueState to,
                                    const std::function<void(sluice::v1::QueueRecord&)>& edit) {
  QueueDir from_dir = DirOfState(from), to_dir = DirOfState(to);
  auto record = ReadRecord(*layout_, from_dir, id);
  if (!record.ok()) return record.status();
  if (edit) edit(*record);
  record->set_state(to);
  absl::Status s = ReplaceRecord(*layout_, from_dir, id, *record);
  if (s.ok() && from_dir != to_dir) s = layout_->Rename(from_dir, id, to_dir);
  if (s.ok() && from_dir != to_dir) s = layout_->SyncDir(to_dir);
  return s;
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
  auto free = layout_->DiskFree();
  if (free.ok()) c.disk_free_bytes = *free;
  if (options_.metrics != nullptr) {
    options_.metrics->oldest_age_seconds->Set(absl::ToDoubleSeconds(c.oldest_age));
    options_.metrics->disk_free_bytes->Set(static_cast<double>(c.disk_free_bytes));
  }
  return c;
}

}  // namespace sluice::reinject
