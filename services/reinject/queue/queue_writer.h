// services/reinject/queue/queue_writer.h
//
// One message being written into the queue by the receiver (reinject's after-filter smtpd):
//
//   SLUICE_ASSIGN_OR_RETURN(auto writer, store.Begin());   // an id, nothing on disk yet
//   writer->Append(chunk) ...                              // the message as received, CRLF lines
//   auto id = co_await writer->Commit(std::move(record));  // durable, then "250 ... queued as ID"
//
// The content is the message exactly as it is to be delivered (dot-unstuffed, CRLF line
// ends, with the receiver's own Received:/Message-ID:/Date: already in it); delivery adds
// only Return-Path:/Delivered-To: (Maildir) and never rewrites it. Up to the buffer size
// (64 KiB) the content stays in memory and goes into the segment log inline with its record,
// in one frame, one write; a larger message spills to large/<ID> as it arrives (memory per
// message stays bounded however large it is). Commit hands the frame to the group committer
// and resumes the calling coroutine on its own executor once it is synced.
//
// Never: returns an id before the commit is durable; leaves a file behind after a failed
// Commit or when destroyed without one; is used after Commit (one message per writer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/awaitable.hpp"
#include "services/reinject/queue/group_commit.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

class QueueStore;

class QueueWriter {
 public:
  ~QueueWriter();
  QueueWriter(const QueueWriter&) = delete;
  QueueWriter& operator=(const QueueWriter&) = delete;

  // The queue id this message will have (known from Begin, like Postfix's at MAIL time).
  const std::string& id() const { return id_; }
  // Bytes appended so far.
  uint64_t size() const { return size_; }

  // Adds content. After an error the writer is failed: every later call fails too.
  absl::Status Append(std::string_view bytes);

  // Makes the message durable and returns its queue id. The store fills queue_id,
  // size_bytes, arrived_at (when unset), attempts and each recipient's PENDING status; the
  // caller gives sender, recipients (with ORCPT/NOTIFY), DSN RET/ENVID, body_type,
  // smtputf8, session_id, original_client, peer_address and, for a message the filter stage
  // held, state = HOLD and hold_reason. INVALID_ARGUMENT without recipients; any I/O error
  // fails the commit and removes every file of it.
  asio::awaitable<absl::StatusOr<std::string>> Commit(sluice::v1::QueueRecord record);

  // For a writer from QueueStore::BeginIngest: commits `record` as it is -- its id (the
  // writer's), state (INCOMING, ACTIVE, DEFERRED or HOLD), attempts, times, recipients'
  // statuses, hold reason -- with the content appended, which must be size_bytes long.
  // `done` runs on the committer thread once the entry is synced and indexed (OK), or with
  // the error (nothing of it kept). Callable from any thread; the writer may be destroyed as
  // soon as this returns.
  void CommitWhole(sluice::v1::QueueRecord record, absl::AnyInvocable<void(absl::Status)> done);

 private:
  friend class QueueStore;
  QueueWriter(QueueStore* store, std::string id, size_t buffer_bytes, bool whole = false, uint8_t flags = 0);
  absl::Status FlushBuffer();  // to large/<ID>, created on the first call
  absl::Status PrepareCommit(sluice::v1::QueueRecord& record, CommitJob& job);
  // Moves the content (large/<ID> or the buffer) into `job`; the writer is committing.
  void HandContentTo(CommitJob& job);
  void Abandon();  // drop the buffer, close and remove large/<ID>

  enum class State { kWriting, kFailed, kCommitting, kDone };

  QueueStore* store_;
  std::string id_;
  int fd_ = -1;  // large/<ID> once spilled
  size_t buffer_bytes_;
  std::string buffer_;
  uint64_t size_ = 0;
  uint64_t accounted_ = 0;  // bytes reported to the store's uncommitted total
  State state_ = State::kWriting;
  absl::Status error_;
  bool whole_ = false;  // from BeginIngest: CommitWhole only
  uint8_t flags_ = 0;   // frame flags of a whole entry
};

}  // namespace sluice::reinject
