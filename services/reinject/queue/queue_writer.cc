// services/reinject/queue/queue_writer.cc -- see queue_writer.h.
#include "services/reinject/queue/queue_writer.h"

#include <unistd.h>

#include <cerrno>

#include "asio/associated_executor.hpp"
#include "asio/async_result.hpp"
#include "asio/execution/outstanding_work.hpp"
#include "asio/post.hpp"
#include "asio/prefer.hpp"
#include "asio/use_awaitable.hpp"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_record_file.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

QueueWriter::QueueWriter(QueueStore* store, std::string id, int fd, size_t buffer_bytes)
    : store_(store), id_(std::move(id)), fd_(fd), buffer_bytes_(buffer_bytes) {
  buffer_.reserve(buffer_bytes_);
}

QueueWriter::~QueueWriter() {
  if (state_ == State::kWriting || state_ == State::kFailed) Abandon();
}

void QueueWriter::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    (void)store_->layout_->Unlink(QueueDir::kData, id_);
  }
  if (accounted_ > 0) {
    store_->AddUncommitted(-static_cast<int64_t>(accounted_));
    accounted_ = 0;
  }
  buffer_.clear();
  buffer_.shrink_to_fit();
}

absl::Status QueueWriter::FlushBuffer() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = ErrnoStatus(errno, "write data/" + id_);
      state_ = State::kFailed;
      Abandon();
      return error_;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return absl::OkStatus();
}

absl::Status QueueWriter::Append(std::string_view bytes) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kWriting) return absl::FailedPreconditionError("queue writer already committed");
  size_ += bytes.size();
  // Counted at once, buffered or not: admission sees every byte on its way in.
  store_->AddUncommitted(static_cast<int64_t>(bytes.size()));
  accounted_ += bytes.size();
  while (!bytes.empty()) {
    size_t room = buffer_bytes_ - buffer_.size();
    size_t take = std::min(room, bytes.size());
    buffer_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (buffer_.size() >= buffer_bytes_) {
      absl::Status s = FlushBuffer();
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

namespace {

// Hands the job to the group committer; completes with the commit's Status on the
// caller's executor. A named functor, not a lambda capturing coroutine state: g++ 12
// destroys such captures twice.
struct SubmitCommitOp {
  QueueStore* store;
  template <typename Handler>
  void operator()(Handler handler, CommitJob job, sluice::v1::QueueRecord record) const {
    // Keep the caller's executor alive while the disk works, and resume it there.
    auto ex = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    QueueStore* s = store;
    job.done = [s, record = std::move(record), handler = std::move(handler),
                ex = std::move(ex)](absl::Status status) mutable {
      if (status.ok()) QueueStoreCommitHook::Committed(*s, record);
      asio::post(ex, [handler = std::move(handler), status = std::move(status)]() mutable {
        std::move(handler)(std::move(status));
      });
    };
    QueueStoreCommitHook::Submit(*s, std::move(job));
  }
};

asio::awaitable<absl::Status> SubmitCommit(QueueStore* store, CommitJob job, sluice::v1::QueueRecord record) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(absl::Status)>(
      SubmitCommitOp{store}, asio::use_awaitable, std::move(job), std::move(record));
}

}  // namespace

absl::Status QueueWriter::PrepareCommit(sluice::v1::QueueRecord& record, CommitJob& job) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kWriting) return absl::FailedPreconditionError("queue writer already committed");
  if (record.recipients_size() == 0) {
    state_ = State::kFailed;
    error_ = absl::InvalidArgumentError("queue commit without recipients");
    Abandon();
    return error_;
  }
  absl::Status flushed = FlushBuffer();
  if (!flushed.ok()) return flushed;

  record.set_queue_id(id_);
  record.set_state(record.state() == sluice::v1::HOLD ? sluice::v1::HOLD : sluice::v1::INCOMING);
  record.set_size_bytes(size_);
  record.set_attempts(0);
  if (!record.has_arrived_at()) *record.mutable_arrived_at() = ToProtoTime(store_->clock().Now());
  for (auto& rcpt : *record.mutable_recipients()) {
    if (rcpt.status() == sluice::v1::RECIPIENT_STATUS_UNSPECIFIED) {
      rcpt.set_status(sluice::v1::RECIPIENT_STATUS_PENDING);
    }
  }
  job.id = id_;
  job.data_fd = fd_;
  job.record = EncodeRecord(record);
  job.target = record.state() == sluice::v1::HOLD ? QueueDir::kHold : QueueDir::kIncoming;
  fd_ = -1;  // the committer owns the file now, and undoes it on failure
  state_ = State::kCommitting;
  store_->AddUncommitted(-static_cast<int64_t>(accounted_));
  accounted_ = 0;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return absl::OkStatus();
}

asio::awaitable<absl::StatusOr<std::string>> QueueWriter::Commit(sluice::v1::QueueRecord record) {
  CommitJob job;
  absl::Status prepared = PrepareCommit(record, job);
  if (!prepared.ok()) co_return prepared;
  absl::Status result = co_await SubmitCommit(store_, std::move(job), std::move(record));
  if (!result.ok()) {
    state_ = State::kFailed;
    error_ = result;
    co_return result;
  }
  state_ = State::kDone;
  co_return id_;
}

}  // namespace sluice::reinject
