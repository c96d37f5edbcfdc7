// services/reinject/queue/group_commit.cc -- see group_commit.h.
#include "services/reinject/queue/group_commit.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <latch>

#include "asio/post.hpp"

#include "absl/strings/str_cat.h"
#include "services/reinject/queue/queue_metrics.h"
#include "services/reinject/queue/queue_record_file.h"

namespace sluice::reinject {

GroupCommitter::GroupCommitter(const QueueLayout& layout, QueueMetrics* metrics, Options options)
    : layout_(layout),
      metrics_(metrics),
      options_(options),
      sync_pool_(options.sync_threads == 0 ? 1 : options.sync_threads) {
  if (options_.max_batch == 0) options_.max_batch = 1;
  if (options_.sync_threads == 0) options_.sync_threads = 1;
  thread_ = std::thread([this] { Run(); });
}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  sync_pool_.join();
}

void GroupCommitter::Submit(CommitJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(job));
  }
  cv_.notify_one();
}

uint64_t GroupCommitter::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

uint64_t GroupCommitter::commits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commits_;
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
  }
}

void GroupCommitter::SyncFiles(std::vector<CommitJob>& batch, std::vector<absl::Status>& status) {
  const size_t n = batch.size();
  const size_t workers = std::min(n, options_.sync_threads);
  std::atomic<size_t> next{0};
  std::latch done(static_cast<std::ptrdiff_t>(workers));
  for (size_t w = 0; w < workers; ++w) {
    asio::post(sync_pool_, [&] {
      for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        // 1. The message content.
        status[i] = layout_.Sync(batch[i].data_fd);
        ::close(batch[i].data_fd);
        batch[i].data_fd = -1;
        // 2. The record, written beside the queue, durable before it gets its name.
        if (status[i].ok()) status[i] = WriteTmpRecord(layout_, batch[i].id, batch[i].record);
      }
      done.count_down();
    });
  }
  done.wait();
}

void GroupCommitter::CommitBatch(std::vector<CommitJob>& batch) {
  const size_t n = batch.size();
  std::vector<absl::Status> status(n);
  std::vector<bool> renamed(n, false);

  SyncFiles(batch, status);
  // 3. The data files' names.
  absl::Status data_dir = layout_.SyncDir(QueueDir::kData);
  // 4. Link each record into its state directory.
  bool uses_dir[kQueueDirCount] = {};
  for (size_t i = 0; i < n; ++i) {
    if (status[i].ok() && !data_dir.ok()) status[i] = data_dir;
    if (!status[i].ok()) continue;
    status[i] = layout_.Rename(QueueDir::kTmp, batch[i].id, batch[i].target);
    if (status[i].ok()) {
      renamed[i] = true;
      uses_dir[static_cast<int>(batch[i].target)] = true;
    }
  }
  // 5. One fsync per state directory for the whole batch.
  absl::Status dir_status[kQueueDirCount];
  for (int d = 0; d < kQueueDirCount; ++d) {
    if (uses_dir[d]) dir_status[d] = layout_.SyncDir(static_cast<QueueDir>(d));
  }
  for (size_t i = 0; i < n; ++i) {
    if (status[i].ok()) status[i] = dir_status[static_cast<int>(batch[i].target)];
  }
  // Undo every failed job completely: no record anywhere, no data file.
  for (size_t i = 0; i < n; ++i) {
    if (status[i].ok()) continue;
    if (renamed[i]) (void)layout_.Unlink(batch[i].target, batch[i].id);
    (void)layout_.Unlink(QueueDir::kTmp, batch[i].id);
    (void)layout_.Unlink(QueueDir::kData, batch[i].id);
    status[i] = absl::Status(status[i].code(),
                             absl::StrCat("queue commit of ", batch[i].id, ": ", status[i].message()));
  }
  if (metrics_ != nullptr) metrics_->commit_batch_size->Observe(static_cast<double>(n));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++batches_;
    commits_ += n;
  }
  // 6. Completions, outside the lock.
  for (size_t i = 0; i < n; ++i) {
    if (batch[i].done) batch[i].done(std::move(status[i]));
  }
}

}  // namespace sluice::reinject
