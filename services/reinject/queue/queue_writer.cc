// services/reinject/queue/queue_writer.cc -- see queue_writer.h.
#include "services/reinject/queue/queue_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "asio/associated_executor.hpp"
#include "asio/async_result.hpp"
#include "asio/execution/outstanding_work.hpp"
#include "asio/post.hpp"
#include "asio/prefer.hpp"
#include "asio/use_awaitable.hpp"
#include "absl/strings/str_cat.h"
#include "services/reinject/queue/proto_time.h"
#include "services/reinject/queue/queue_store.h"

namespace sluice::reinject {

QueueWriter::QueueWriter(QueueStore* store, std::string id, size_t buffer_bytes, bool whole, uint8_t flags)
    : store_(store), id_(std::move(id)), buffer_bytes_(buffer_bytes), whole_(whole), flags_(flags) {}

QueueWriter::~QueueWriter() {
  if (state_ == State::kWriting || state_ == State::kFailed) {
    Abandon();
    if (whole_) QueueStoreCommitHook::IngestEnded(*store_, id_);
  }
}

void QueueWriter::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    (void)store_->layout_->Unlink(QueueDir::kLarge, id_);
  }
  if (accounted_ > 0) {
    store_->AddUncommitted(-static_cast<int64_t>(accounted_));
    accounted_ = 0;
  }
  buffer_.clear();
  buffer_.shrink_to_fit();
}

absl::Status QueueWriter::FlushBuffer() {
  if (fd_ < 0) {
    fd_ = ::openat(store_->layout_->fd(QueueDir::kLarge), id_.c_str(),
                   O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) {
      error_ = ErrnoStatus(errno, "create large/" + id_);
      state_ = State::kFailed;
      Abandon();
      return error_;
    }
  }
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = ErrnoStatus(errno, "write large/" + id_);
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
  store_->AddWritten(bytes.size());
  accounted_ += bytes.size();
  if (buffer_.capacity() == 0) buffer_.reserve(std::min(buffer_bytes_, std::max<size_t>(bytes.size(), 16384)));
  while (!bytes.empty()) {
    if (buffer_.size() >= buffer_bytes_) {
      absl::Status s = FlushBuffer();
      if (!s.ok()) return s;
    }
    size_t room = buffer_bytes_ - buffer_.size();
    size_t take = std::min(room, bytes.size());
    buffer_.append(bytes.data(), take);
    bytes.remove_prefix(take);
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
  void operator()(Handler handler, CommitJob job, std::shared_ptr<const sluice::v1::QueueRecord> record) const {
    // Keep the caller's executor alive while the disk works, and resume it there.
    auto ex = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    QueueStore* s = store;
    uint64_t inline_bytes = job.inline_content.size();
    bool spilled = job.log.content().spilled();
    job.done = [s, record = std::move(record), inline_bytes, spilled, handler = std::move(handler),
                ex = std::move(ex)](absl::Status status, FrameLocation at) mutable {
      if (status.ok()) {
        QueueStoreCommitHook::Committed(*s, std::move(record), at, inline_bytes, spilled);
      } else if (spilled) {
        QueueStoreCommitHook::Failed(*s, record->queue_id());
      }
      asio::post(ex, [handler = std::move(handler), status = std::move(status)]() mutable {
        std::move(handler)(std::move(status));
      });
    };
    QueueStoreCommitHook::Submit(*s, std::move(job));
  }
};

asio::awaitable<absl::Status> SubmitCommit(QueueStore* store, CommitJob job,
                                           std::shared_ptr<const sluice::v1::QueueRecord> record) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(absl::Status)>(
      SubmitCommitOp{store}, asio::use_awaitable, std::move(job), std::move(record));
}

}  // namespace

absl::Status QueueWriter::PrepareCommit(sluice::v1::QueueRecord& record, CommitJob& job) {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kWriting) return absl::FailedPreconditionError("queue writer already committed");
  if (whole_) return absl::FailedPreconditionError("a writer from BeginIngest commits with CommitWhole");
  if (record.recipients_size() == 0) {
    state_ = State::kFailed;
    error_ = absl::InvalidArgumentError("queue commit without recipients");
    Abandon();
    return error_;
  }
  if (fd_ >= 0) {
    absl::Status flushed = FlushBuffer();
    if (!flushed.ok()) return flushed;
  }

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
  job.kind = CommitJob::Kind::kRecord;
  job.id = id_;
  *job.log.mutable_record() = record;
  job.durable = true;
  HandContentTo(job);
  return absl::OkStatus();
}

void QueueWriter::HandContentTo(CommitJob& job) {
  if (fd_ >= 0) {
    job.spill_fd = fd_;  // the committer syncs and closes it; a failed commit removes the file
    job.log.mutable_content()->set_spilled(true);
    job.log.mutable_content()->set_length(size_);
    fd_ = -1;
  } else {
    job.inline_content = std::move(buffer_);
  }
  state_ = State::kCommitting;
  store_->AddUncommitted(-static_cast<int64_t>(accounted_));
  accounted_ = 0;
  buffer_.clear();
  buffer_.shrink_to_fit();
}

void QueueWriter::CommitWhole(sluice::v1::QueueRecord record, absl::AnyInvocable<void(absl::Status)> done) {
  auto fail = [&](absl::Status s) {
    state_ = State::kFailed;
    error_ = s;
    Abandon();
    QueueStoreCommitHook::IngestEnded(*store_, id_);
    state_ = State::kDone;  // nothing left for the destructor
    done(std::move(s));
  };
  if (!whole_) return fail(absl::FailedPreconditionError("CommitWhole needs a writer from BeginIngest"));
  if (state_ == State::kFailed) return fail(error_);
  if (state_ != State::kWriting) return fail(absl::FailedPreconditionError("queue writer already committed"));
  if (record.queue_id() != id_) return fail(absl::InvalidArgumentError("record names queue id " + record.queue_id()));
  if (record.recipients_size() == 0) return fail(absl::InvalidArgumentError("queue id " + id_ + ": no recipient"));
  if (record.size_bytes() != size_) {
    return fail(absl::InvalidArgumentError(absl::StrCat("queue id ", id_, ": record says ", record.size_bytes(),
                                                        " bytes, content has ", size_)));
  }
  switch (record.state()) {
    case sluice::v1::INCOMING:
    case sluice::v1::ACTIVE:
    case sluice::v1::DEFERRED:
    case sluice::v1::HOLD: break;
    case sluice::v1::QUEUE_STATE_UNSPECIFIED: record.set_state(sluice::v1::INCOMING); break;
    default: return fail(absl::InvalidArgumentError("queue id " + id_ + ": cannot take in a corrupt entry"));
  }
  if (fd_ >= 0) {
    absl::Status flushed = FlushBuffer();
    if (!flushed.ok()) return fail(flushed);
  }
  CommitJob job;
  job.kind = CommitJob::Kind::kRecord;
  job.id = id_;
  job.durable = true;
  job.flags = flags_;
  *job.log.mutable_record() = std::move(record);
  HandContentTo(job);
  QueueStore* s = store_;
  uint64_t inline_bytes = job.inline_content.size();
  bool spilled = job.log.content().spilled();
  uint8_t flags = flags_;
  auto record_copy = std::make_shared<sluice::v1::QueueRecord>(job.log.record());
  job.done = [s, record_copy, inline_bytes, spilled, flags, done = std::move(done)](absl::Status status,
                                                                                   FrameLocation at) mutable {
    if (status.ok()) {
      QueueStoreCommitHook::Ingested(*s, *record_copy, at, inline_bytes, spilled, flags);
    } else {
      if (spilled) QueueStoreCommitHook::Failed(*s, record_copy->queue_id());
      QueueStoreCommitHook::IngestEnded(*s, record_copy->queue_id());
    }
    done(std::move(status));
  };
  QueueStoreCommitHook::Submit(*store_, std::move(job));
}

asio::awaitable<absl::StatusOr<std::string>> QueueWriter::Commit(sluice::v1::QueueRecord record) {
  CommitJob job;
  absl::Status prepared = PrepareCommit(record, job);
  if (!prepared.ok()) co_return prepared;
  auto committed = std::make_shared<const sluice::v1::QueueRecord>(std::move(record));
  absl::Status result = co_await SubmitCommit(store_, std::move(job), std::move(committed));
  if (!result.ok()) {
    state_ = State::kFailed;
    error_ = result;
    co_return result;
  }
  state_ = State::kDone;
  co_return id_;
}

}  // namespace sluice::reinject
