// services/reinject/queue/group_commit.cc -- see group_commit.h.
#include "services/reinject/queue/group_commit.h"

#include <unistd.h>

#include <algorithm>
#include <future>

#include "absl/strings/str_cat.h"
#include "lib/observe/log.h"
#include "services/reinject/queue/queue_frame.h"
#include "services/reinject/queue/queue_metrics.h"

namespace sluice::reinject {

GroupCommitter::GroupCommitter(SegmentLog& log, const QueueLayout& layout, QueueMetrics* metrics, Options options)
    : log_(log), layout_(layout), metrics_(metrics), options_(options) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  thread_ = std::thread([this] { Run(); });
}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void GroupCommitter::Submit(CommitJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::pair<absl::Status, FrameLocation> GroupCommitter::SubmitAndWait(CommitJob job) {
  std::promise<std::pair<absl::Status, FrameLocation>> promise;
  auto result = promise.get_future();
  auto then = std::move(job.done);
  job.done = [&promise, then = std::move(then)](absl::Status s, FrameLocation at) mutable {
    if (then) then(s, at);
    promise.set_value({std::move(s), at});
  };
  Submit(std::move(job));
  return result.get();
}

uint64_t GroupCommitter::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

uint64_t GroupCommitter::commits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commits_;
}

uint64_t GroupCommitter::synced_batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_batches_;
}

void GroupCommitter::Run() {
  std::vector<CommitJob> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and nothing left to finish
      size_t n = std::min(pending_.size(), options_.max_batch);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    CommitBatch(batch);
    batch.clear();
    // Segments nobody refers to any more (cheap when there are none).
    log_.RemoveDead();
  }
}

void GroupCommitter::CommitBatch(std::vector<CommitJob>& batch) {
  const size_t n = batch.size();
  std::vector<absl::Status> status(n);
  std::vector<FrameLocation> where(n);
  int fsyncs = 0;

  // 1. Large contents first: a record must never be durable before its content.
  bool spilled = false;
  for (size_t i = 0; i < n; ++i) {
    if (batch[i].spill_fd < 0) continue;
    spilled = true;
    ++fsyncs;
    status[i] = layout_.Sync(batch[i].spill_fd);
    ::close(batch[i].spill_fd);
    batch[i].spill_fd = -1;
  }
  if (spilled) {
    ++fsyncs;
    absl::Status dir = layout_.Sync(layout_.fd(QueueDir::kLarge));
    for (size_t i = 0; i < n; ++i) {
      if (batch[i].log.content().spilled() && status[i].ok()) status[i] = dir;
    }
  }

  // 2. and 3. One append for every frame of the batch.
  std::vector<std::string> frames;
  std::vector<size_t> job_of;
  std::vector<bool> hold_ref;
  frames.reserve(n);
  bool need_sync = false;
  for (size_t i = 0; i < n; ++i) {
    if (!status[i].ok()) continue;
    if (batch[i].kind == CommitJob::Kind::kRecord) {
      frames.push_back(EncodeRecordFrame(batch[i].log, batch[i].inline_content, batch[i].flags));
      hold_ref.push_back(true);
    } else if (batch[i].kind == CommitJob::Kind::kHandoffMark) {
      frames.push_back(EncodeHandoffMarkFrame(batch[i].id, batch[i].mark));
      hold_ref.push_back(true);  // while the mark is in force (QueueStore::MarkHandoff)
    } else {
      frames.push_back(EncodeRemoveFrame(batch[i].id));
      hold_ref.push_back(false);
    }
    job_of.push_back(i);
    need_sync = need_sync || batch[i].durable;
  }
  if (!frames.empty()) {
    std::vector<std::string_view> views(frames.begin(), frames.end());
    auto appended = log_.Append(views, hold_ref);
    if (!appended.ok()) {
      for (size_t k : job_of) status[k] = appended.status();
      need_sync = false;
    } else {
      for (size_t f = 0; f < job_of.size(); ++f) where[job_of[f]] = (*appended)[f];
    }
  }

  // 4. One sync for the batch.
  if (need_sync) {
    auto synced = log_.Sync();
    if (synced.ok()) {
      fsyncs += *synced;
    } else {
      observe::Error("queue_sync_failed").Kv("error", MessageOf(synced.status())).Kv("jobs", n);
      std::vector<std::string> cancels;
      for (size_t k : job_of) {
        if (!status[k].ok()) continue;
        if (batch[k].durable) {
          status[k] = synced.status();
          if (batch[k].kind == CommitJob::Kind::kHandoffMark) log_.Ref(where[k].segment, -1);
          if (batch[k].kind == CommitJob::Kind::kRecord) {
            log_.Ref(where[k].segment, -1);
            // The frame is in the file and might reach the disk later: cancel it.
            cancels.push_back(EncodeRemoveFrame(batch[k].log.record().queue_id()));
          }
        }
      }
      if (!cancels.empty()) {
        std::vector<std::string_view> views(cancels.begin(), cancels.end());
        (void)log_.Append(views, std::vector<bool>(cancels.size(), false));
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (status[i].ok()) continue;
    const std::string& id = batch[i].kind == CommitJob::Kind::kRecord ? batch[i].log.record().queue_id() : batch[i].id;
    status[i] = absl::Status(status[i].code(), absl::StrCat("queue write of ", id, ": ", status[i].message()));
  }
  if (metrics_ != nullptr) {
    metrics_->commit_batch_size->Observe(static_cast<double>(n));
    metrics_->commit_batch_fsyncs->Observe(static_cast<double>(fsyncs));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++batches_;
    if (need_sync) ++synced_batches_;
    commits_ += n;
  }
  // 5. Completions, outside the lock.
  for (size_t i = 0; i < n; ++i) {
    if (batch[i].done) {
      batch[i].done(std::move(status[i]), where[i]);
    } else if (status[i].ok() && batch[i].kind == CommitJob::Kind::kRecord) {
      log_.Ref(where[i].segment, -1);  // nobody took the reference
    }
  }
}

}  // namespace sluice::reinject
