// services/reinject/queue/queue_layout.h
//
// The queue directory on disk:
//
//   QUEUE_DIR/segments/<N>    the log: numbered append-only segment files of frames (record
//                             frames with the content of messages up to the writer's buffer
//                             inline, remove frames); see segment_log.h and queue_frame.h
//   QUEUE_DIR/large/<ID>      the content of a message larger than the writer's buffer,
//                             written as it arrives, fsynced at its commit
//   QUEUE_DIR/corrupt/<NAME>  what recovery could not queue, kept for inspection: damaged or
//                             torn bytes of a segment (<segment>.<offset>), or the record of
//                             an entry whose content is missing (<ID>)
//
// Directory file descriptors are opened once, every operation is *at()-relative.
//
// Never: follows a symlink inside the queue; creates a file outside these directories.
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

enum class QueueDir { kSegments = 0, kLarge, kCorrupt };
inline constexpr int kQueueDirCount = 3;

const char* QueueDirName(QueueDir dir);
const char* QueueStateName(sluice::v1::QueueState state);  // "incoming", "active", ...

class QueueLayout {
 public:
  // Creates the directories that are missing (mode 0700) and opens them. A queue of the
  // earlier layout (data/ and state directories) beside them is imported by the store
  // (queue_import.h).
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

  // ENOENT counts as success (the goal, "gone", holds).
  absl::Status Unlink(QueueDir dir, std::string_view name) const;
  bool Exists(QueueDir dir, std::string_view name) const;
  // NOT_FOUND when absent.
  absl::StatusOr<uint64_t> FileSize(QueueDir dir, std::string_view name) const;
  absl::StatusOr<std::vector<std::string>> List(QueueDir dir) const;
  absl::StatusOr<std::string> ReadFile(QueueDir dir, std::string_view name, size_t max_bytes) const;
  // Creates DIR/<name> with `bytes` (O_EXCL), fsyncs it and DIR.
  absl::Status WriteNewFile(QueueDir dir, std::string_view name, std::string_view bytes) const;

 private:
  QueueLayout(std::string root, QueueMetrics* metrics) : root_(std::move(root)), metrics_(metrics) {}

  std::string root_;
  QueueMetrics* metrics_;
  int fds_[kQueueDirCount] = {-1, -1, -1};
};

// An errno as a Status naming what failed: "append to segments/0000000000000003: No space left".
absl::Status ErrnoStatus(int err, std::string_view what);

// A Status message as std::string_view (Abseil 20220623's string_view is its own type).
inline std::string_view MessageOf(const absl::Status& s) {
  return std::string_view(s.message().data(), s.message().size());
}

}  // namespace sluice::reinject
