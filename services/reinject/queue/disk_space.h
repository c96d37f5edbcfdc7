// services/reinject/queue/disk_space.h
//
// Free space on the queue's file system for the admission check ("452 4.3.1" below
// queue_min_free_bytes), without a statfs per message: the figure is read with fstatvfs at
// most once per `refresh_interval` (1 s), by whichever caller finds it stale, and between
// two reads every byte the queue writes is taken off it, so a burst of mail cannot run past
// the limit on a stale figure. Space freed meanwhile shows at the next read.
//
// Thread-safe; FreeBytes costs a clock read and two atomic loads while the figure is fresh.
// Never: reports more free space than the last read minus what was written since; calls
// fstatvfs more than once per interval (concurrent callers that find it stale read it once).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice::reinject {

class DiskSpace {
 public:
  // `fd`: any descriptor on the file system (the queue directory); not owned.
  DiskSpace(int fd, absl::Duration refresh_interval);

  // Bytes available to an unprivileged writer, as of the last read minus writes since.
  absl::StatusOr<uint64_t> FreeBytes();
  // The queue wrote (or is about to write) `bytes`.
  void Wrote(uint64_t bytes) { written_.fetch_add(bytes, std::memory_order_relaxed); }
  // Reads the file system now.
  absl::StatusOr<uint64_t> Refresh();
  // fstatvfs calls so far (tests: the figure is cached).
  uint64_t reads() const { return reads_.load(); }

 private:
  const int fd_;
  const std::chrono::steady_clock::duration interval_;
  std::mutex refresh_mu_;
  std::atomic<int64_t> read_at_ns_{0};      // steady clock; 0: never read
  std::atomic<uint64_t> free_at_read_{0};
  std::atomic<uint64_t> written_{0};        // since the last read
  std::atomic<int> last_errno_{0};
  std::atomic<uint64_t> reads_{0};
};

}  // namespace sluice::reinject
