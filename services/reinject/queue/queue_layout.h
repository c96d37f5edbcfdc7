// services/reinject/queue/queue_layout.h
//
// The queue directory on disk and the few file-system moves the queue is built from:
//
//   QUEUE_DIR/data/<ID>       the message, written once, never moved (removed when done)
//   QUEUE_DIR/incoming/<ID>   the QueueRecord of a committed message the scheduler has not seen
//   QUEUE_DIR/active/<ID>     ... of a message being (or about to be) delivered
//   QUEUE_DIR/deferred/<ID>   ... waiting for its next attempt
//   QUEUE_DIR/hold/<ID>       ... held until an operator releases it
//   QUEUE_DIR/corrupt/<ID>    ... unreadable, or its data file is missing or short
//   QUEUE_DIR/tmp/            records being written (deleted at start-up)
//
// The directory holding a record is its state; a state change is one rename(2) of the small
// record. Directory file descriptors are opened once, every operation is *at()-relative.
//
// Never: moves a data file; leaves a record in two state directories (every state change is
// a rename, and a changed record first replaces itself in place, then moves).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/v1/queue.pb.h"

namespace sluice::reinject {

struct QueueMetrics;

enum class QueueDir { kTmp = 0, kData, kIncoming, kActive, kDeferred, kHold, kCorrupt };
inline constexpr int kQueueDirCount = 7;
// The state directories, in the order recovery scans them.
inline constexpr QueueDir kStateDirs[] = {QueueDir::kIncoming, QueueDir::kActive, QueueDir::kDeferred,
                                          QueueDir::kHold, QueueDir::kCorrupt};

const char* QueueDirName(QueueDir dir);
QueueDir DirOfState(sluice::v1::QueueState state);  // UNSPECIFIED maps to incoming
sluice::v1::QueueState StateOfDir(QueueDir dir);     // tmp/data map to UNSPECIFIED
const char* QueueStateName(sluice::v1::QueueState state);  // "incoming", "active", ...

class QueueLayout {
 public:
  // Creates the directories that are missing (mode 0700) and opens them.
  static absl::StatusOr<std::unique_ptr<QueueLayout>> Open(const std::string& root,
                                                           QueueMetrics* metrics);
  ~QueueLayout();
  QueueLayout(const QueueLayout&) = delete;
  QueueLayout& operator=(const QueueLayout&) = delete;

  const std::string& root() const { return root_; }
  int fd(QueueDir dir) const { return fds_[static_cast<int>(dir)]; }
  std::string Path(QueueDir dir, std::string_view name) const;

  // fsync(2) of a file or directory descriptor, timed into the fsync histogram.
  absl::Status Sync(int fd) const;
  absl::Status SyncDir(QueueDir dir) const { return Sync(fd(dir)); }

  absl::Status Rename(QueueDir from, std::string_view name, QueueDir to) const;
  absl::Status Rename(QueueDir from, std::string_view from_name, QueueDir to,
                      std::string_view to_name) const;
  // ENOENT counts as success (the goal, "gone", holds).
  absl::Status Unlink(QueueDir dir, std::string_view name) const;
  bool Exists(QueueDir dir, std::string_view name) const;
  // NOT_FOUND when absent.
  absl::StatusOr<uint64_t> FileSize(QueueDir dir, std::string_view name) const;
  absl::StatusOr<std::vector<std::string>> List(QueueDir dir) const;
  absl::StatusOr<std::string> ReadFile(QueueDir dir, std::string_view name, size_t max_bytes) const;

  // Bytes available to an unprivileged writer on the queue's file system (statvfs f_bavail).
  absl::StatusOr<uint64_t> DiskFree() const;

 private:
  QueueLayout(std::string root, QueueMetrics* metrics) : root_(std::move(root)), metrics_(metrics) {}

  std::string root_;
  QueueMetrics* metrics_;
  int fds_[kQueueDirCount] = {-1, -1, -1, -1, -1, -1, -1};
};

// An errno as a Status naming what failed: "rename active/ABC -> deferred/ABC: No space left".
absl::Status ErrnoStatus(int err, std::string_view what);

// A Status message as std::string_view (Abseil 20220623's string_view is its own type).
inline std::string_view MessageOf(const absl::Status& s) {
  return std::string_view(s.message().data(), s.message().size());
}

}  // namespace sluice::reinject
